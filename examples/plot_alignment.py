"""
Early alignment towards the extremal vectors
============================================

During the first phase of the flow (Theorem 1), while the neurons are still of size ``O(λ)``,
each neuron's direction ``w_j/‖w_j‖`` moves towards a critical direction of
``G(w) = ⟨D(w), w⟩`` on the sphere: an *extremal vector* ``D_u/‖D_u‖`` of Definition 1
(computed exactly by :func:`proofs_checks.extremal_vectors`).  The alignment time is
``τ = −ε ln λ / D_max`` (``ε = 1/4``).

The left panel draws, for every neuron, the cosine between ``w_j(t)`` and the closest
extremal vector of the sign that attracts it (``G > 0`` for ``a_j > 0``, ``G < 0`` for
``a_j < 0``), against time on a log axis; the right panel the norms ``‖w_j(t)‖``.  The neurons
that align grow once they are aligned; the others shrink or, in a cone where no data point is
active, do not move.  The three-point data have a single extremal vector (with ``G > 0``), so
only the neurons with ``a_j > 0`` have a target on the left.  60 neurons, ``λ = 10⁻⁶`` (a long
alignment phase).
"""

import matplotlib.pyplot as plt
import numpy as np

import pwflow
from proofs_checks import compute_constants, extremal_vectors, geometry

lam, epsilon = 1e-6, 0.25
data = pwflow.three_points()
init = pwflow.balanced(m=60, d=data.d, scale=lam, seed=0)
dmax = compute_constants(data, epsilon=epsilon)["D_max"]
tau = -epsilon * np.log(lam) / dmax
times = np.geomspace(1e-2, 40 * tau, 120)
traj = pwflow.simulate(data, init, t_max=float(times[-1]), t_eval=times[:-1])

critical = extremal_vectors(geometry(data))
for c in critical:
    print(f"extremal vector {np.round(c.w, 3)}: G = {c.value:+.4f} ({c.kind})")
up = np.array([c.w for c in critical if c.value > 0])
down = np.array([c.w for c in critical if c.value < 0])

unit = traj.W / np.maximum(np.linalg.norm(traj.W, axis=2, keepdims=True), 1e-300)
sign = np.sign(traj.a[0])
cos_up = (unit @ up.T).max(axis=2) if up.size else np.full(unit.shape[:2], np.nan)
cos_down = (unit @ down.T).max(axis=2) if down.size else np.full(unit.shape[:2], np.nan)
cos = np.where(sign > 0, cos_up, cos_down)

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
t = np.maximum(traj.t, times[0])
for j in range(traj.m):
    colour = "#0072B2" if sign[j] > 0 else "#D55E00"
    left.plot(t, cos[:, j], color=colour, lw=0.7, alpha=0.8)
    right.plot(t, np.linalg.norm(traj.W[:, j], axis=1), color=colour, lw=0.7, alpha=0.8)
for ax in (left, right):
    ax.axvline(tau, color="0.3", ls="--", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("t")
left.text(tau, -0.95, " τ", fontsize=9)
left.set_ylabel("cosine with the closest extremal vector")
left.set_ylim(-1.02, 1.02)
right.set_yscale("log")
right.set_ylabel("‖w_j(t)‖")
fig.suptitle("blue: a_j > 0, vermillion: a_j < 0", fontsize=9)
aligned = cos[np.searchsorted(traj.t, tau)] > 0.99
print(f"τ = {tau:.3g}: {aligned.sum()} of {traj.m} neurons within cos 0.99 of an extremal vector")
fig.tight_layout()
plt.show()
