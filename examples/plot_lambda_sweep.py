"""
A small λ-sweep
===============

The paper's statements are about small initialisation scales ``λ``.  This sweep runs the exact
flow on the three-point data from the *same* normalised initialisation (30 neurons, seed 0)
at ``λ = 10⁻², …, 10⁻⁷`` with :func:`proofs_checks.sweeps.measure`, and fits exponents with
:func:`proofs_checks.sweeps.fit_exponent`:

* left: Lemma 4's misalignment at ``τ = −ε ln λ / D_max``, ``max_𝓘 ‖D*‖ − ⟨D*, w_i/a_i⟩``,
  claimed ``O(λ^ε)`` with ``ε = 1/4``; the fit gives the measured exponent;
* right: Lemma 5's ``1 − min ⟨𝗐_i, 𝗐_j⟩`` at ``τ_2``, claimed ``O(λ^{1−ε})``.

``proofs-checks lemmas --sweep`` makes the same fits over several seeds and reports a verdict
on the fitted exponent's confidence interval and the fit's goodness (``docs/lemma-catalogue.md``).
"""

import matplotlib.pyplot as plt
import numpy as np

import pwflow
from proofs_checks.sweeps import fit_exponent, measure

epsilon = 0.25
data = pwflow.three_points()
lams = np.array([1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7])
rows = [measure(data, lam, 0, width=30, init_kind="balanced", epsilon=epsilon,
                alpha0=0.5, eps2=0.05) for lam in lams]


def value(point, key):
    """The measured quantity of one run (Lemma 4: the worst misalignment over the neurons)."""
    if key == "lemma4":
        mis = point.per["lemma4"]
        return float(np.nanmax(mis)) if np.any(np.isfinite(mis)) else np.nan
    return point.values[key]



fig, axes = plt.subplots(1, 2, figsize=(10, 4))
for ax, key, q, label in (
    (axes[0], "lemma4", epsilon, "Lemma 4: ‖D*‖ − <D*, w/a> at τ"),
    (axes[1], "lemma5", 1 - epsilon, "Lemma 5: 1 − min <w_i, w_j> at τ₂"),
):
    values = np.array([value(r, key) for r in rows])
    fit = fit_exponent(lams, values)
    lo, hi = fit.ci
    print(f"{key}: fitted exponent {fit.slope:.3f} [{lo:.3f}, {hi:.3f}] (claimed ≥ {q:g})")
    ax.loglog(lams, values, "o", color="#0072B2", label="measured")
    ref = np.exp(fit.intercept) * lams**fit.slope
    ax.loglog(lams, ref, "-", color="#0072B2", lw=0.8, label=f"fit: λ^{fit.slope:.2f}")
    claim = values[0] * (lams / lams[0]) ** q
    ax.loglog(lams, claim, "--", color="#D55E00", lw=0.8, label=f"claimed rate λ^{q:g}")
    ax.set_xlabel("λ")
    ax.set_title(label, fontsize=9)
    ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
