"""
Figure 3: the Stewart et al. example
====================================

Appendix B.2: 40 points uniform in ``[−1, 1]`` labelled by a piecewise-linear teacher, with an
unbalanced initialisation (independent Gaussians) of scale ``λ = 10⁻³``.  The loss goes down in
several drops separated by plateaus, as neurons align with successive extremal directions and
grow.

**Reduced size**: ``m = 100`` neurons and the horizon ``t = 1000`` instead of the paper's
``m = 200,000`` and ``t = 4000`` (``pwflow reproduce figure3`` runs ``m = 1000`` to
``t = 4000`` in about 20 s; see *Figures* in the how-to guides).
"""

import matplotlib.pyplot as plt

import pwflow
import pwflow.figures as F

data = pwflow.stewart(seed=0, n=40)
init = pwflow.unbalanced(m=100, d=data.d, scale=1e-3, seed=0)
traj = pwflow.simulate(data, init, t_max=1000.0)
print(traj.message)
print(f"final loss {traj.step_loss[-1]:.4g}; {traj.n_events} events")
print("loss drops (start, end):", [(round(a), round(b)) for a, b in
                                   F.loss_drops(traj.step_t, traj.step_loss)])

fig = F.make_figure(traj, "all")
fig.tight_layout()
plt.show()
