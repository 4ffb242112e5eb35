"""
Animation frames as a strip
===========================

``pwflow animate RUN --kind neurons`` writes a GIF of the neurons over log-spaced times
(:func:`pwflow.figures.frame_times`).  A printed page cannot move, so here are eight of its
frames side by side, drawn on one scale: the neurons (polar plot: angle of ``w_j``, radius
``1 + ‖w_j‖/N``, blue ``a_j > 0``, vermillion ``a_j < 0``) first turn towards a few directions
while staying tiny — early alignment — and only then grow.  The dashed green lines bound the
activation cones of the data.
"""

import matplotlib.pyplot as plt

import pwflow
import pwflow.figures as F

data = pwflow.three_points()
init = pwflow.balanced(m=200, d=data.d, scale=1e-3, seed=0)
traj = pwflow.simulate(data, init, t_max=4000.0)

times = F.frame_times(traj, 8)
print("frame times:", [f"{t:.3g}" for t in times])
fig = F.make_figure(traj, "neurons", times=list(times))
fig.set_size_inches(16, 2.6)
fig.tight_layout()
plt.show()
