"""
Sliding on a hyperplane, and gradient descent chattering across it
==================================================================

When the minimal-norm subgradient of Eq. (6) points into the hyperplane ``⟨w_j, x_k⟩ = 0``
from both sides, the exact flow makes the neuron *slide* along it (a Filippov solution):
``⟨w_j, x_k⟩`` stays 0 — to rounding — while ``w_j`` keeps moving.  Gradient descent, with
``σ'(0) = 0``, cannot stay there: a step from one side overshoots to the other, and the
iterate chatters across the hyperplane with an amplitude proportional to the step size.

This page runs the flow on the Stewart et al. data (Appendix B.2, 30 neurons), picks a neuron
that enters sliding and stays, and draws the normalised margin
``⟨w_j, x_k⟩ / (‖w_j‖ ‖x_k‖)`` of the flow and of gradient descent from the same
initialisation (step sizes 0.2 and 0.05); on the right, a short window with every step of
gradient descent.
"""

import matplotlib.pyplot as plt
import numpy as np

import pwflow
from pwflow.gd import gradient_descent

T = 200.0
data = pwflow.stewart(seed=0, n=40)
init = pwflow.unbalanced(m=30, d=data.d, scale=1e-3, seed=0)
grid = np.linspace(0.0, T, 401)
flow = pwflow.simulate(data, init, t_max=T, t_eval=grid[1:-1])

# a neuron that enters sliding after the first few time units and never leaves
events = flow.events_frame()
left = set(events.neuron[events.kind == "leave_sliding"])
entries = events[(events.kind == "enter_sliding") & (events.t > 15) & ~events.neuron.isin(left)]
first = entries.iloc[0]
j, k, t_in = int(first.neuron), int(first.point), float(first.t)
print(f"neuron {j} enters sliding on <w, x_{k}> = 0 at t = {t_in:.4g}")
x = data.X[k]


def margin(W):
    """<w_j, x_k> / (‖w_j‖ ‖x_k‖) at the stored times."""
    w = W[:, j, :]
    return (w @ x) / (np.linalg.norm(w, axis=1) * np.linalg.norm(x))


colours = {0.2: "#E69F00", 0.05: "#0072B2"}
fig, (ax, zoom) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [2, 1]})
for lr, colour in colours.items():
    gd = gradient_descent(data, init, lr=lr, t_max=T, save_times=grid)
    ax.plot(gd.t, margin(gd.W), lw=0.6, color=colour, label=f"gradient descent, lr {lr}")
    t0 = 150.0
    steps = gradient_descent(data, init, lr=lr, t_max=t0 + 2.0,
                             save_times=np.arange(t0, t0 + 2.0, lr))
    window = steps.t >= t0  # step 0 is always stored too
    zoom.plot(steps.t[window], margin(steps.W)[window], ".-", ms=3, lw=0.6, color=colour)
ax.plot(flow.t, margin(flow.W), color="k", lw=1.5, label="exact flow")
zoom.axhline(0.0, color="k", lw=1.5)
for a in (ax, zoom):
    a.axhline(0.0, color="0.7", lw=0.5)
    a.set_xlabel("t")
ax.axvline(t_in, color="0.5", ls=":", lw=1)
ax.set_xlim(t_in - 5, T)
ax.set_ylim(-2.5e-3, 2.5e-3)
ax.set_ylabel(r"$\langle w_j, x_k\rangle / (\|w_j\|\,\|x_k\|)$")
ax.set_title(f"neuron {j} on the hyperplane of x_{k}", fontsize=9)
ax.legend(fontsize=8)
zoom.set_title("t in [150, 152]: every step", fontsize=9)
after = flow.t > t_in
print(f"flow: largest |margin| after entry {np.abs(margin(flow.W)[after]).max():.1e}")
fig.tight_layout()
plt.show()
