"""
Figure 2: the three-point example
=================================

Appendix B.1: three points ``x = (−0.75, −0.5, 0.125)`` with a bias coordinate, labels
``y = (1.1, 0.1, 0.8)``, ReLU, balanced initialisation of scale ``λ = 10⁻³``.  Top row: the
learnt function at the phase times (end of alignment, growth, convergence) with the
least-squares line (dashed) and the zero-loss interpolant (dotted); middle row: the neurons in
polar coordinates (angle of ``w_j``, radius ``1 + ‖w_j‖/N``, colour the sign of ``a_j``); below:
the loss with the events as a rug.

**Reduced size**: ``m = 300`` neurons instead of the paper's 200,000 (the exact flow with
``m = 2000``, ``pwflow reproduce figure2``, takes a few seconds; the picture is the same: the
network converges to the least-squares fit, not to the interpolant).
"""

import matplotlib.pyplot as plt

import pwflow
import pwflow.figures as F

data = pwflow.three_points()
init = pwflow.balanced(m=300, d=data.d, scale=1e-3, seed=0)
traj = pwflow.simulate(data, init, t_max=4000.0)
print(traj.message)
print(f"final loss {traj.step_loss[-1]:.6g}; "
      f"least squares {F.least_squares_loss(data.X, data.y):.6g}")
print("events:", traj.events_by_kind())

fig = F.make_figure(traj, "all")
fig.tight_layout()
plt.show()
