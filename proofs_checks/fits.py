"""Straight-line fits with a confidence interval and a goodness-of-fit test, and the verdict
rule for a fitted rate (used by :mod:`proofs_checks.sweeps` for ``O(λ^q)`` exponents and by
:mod:`proofs_checks.checks.late` for exponential decay rates).

Rule (stated once, applied by :func:`rate_verdict`) for a claim "the fitted slope is ``≥ q``":

* the fit must pass the goodness-of-fit test (:func:`fit_line`): no significant curvature —
  the slope of a quadratic fit changes over the data range by at most
  ``CURV_REL · |slope| + CURV_ABS`` (data that are not a power law fail it).  ``R²`` is
  reported, not used: a flat line (slope 0, the typical way a rate claim fails) has
  ``R² ≈ 0`` however good the fit;
* ``holds`` if the lower end of the 95 % confidence interval is ``≥ q − RATE_TOL`` (a tight
  claim such as ``O(1)`` or ``O(ε_3)`` met exactly, up to slow logarithmic corrections over
  the fitted range, is accepted); ``violated`` if the upper end
  is ``< q``; ``not checked`` (inconclusive, with the reason) otherwise or when the
  goodness of fit fails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

__all__ = ["Fit", "fit_line", "rate_verdict", "CURV_REL", "CURV_ABS", "LEVEL", "RATE_TOL"]

#: Confidence level of the intervals.
LEVEL = 0.95
#: Largest accepted change of the local slope across the data range (relative, absolute).
CURV_REL, CURV_ABS = 0.25, 0.05
#: Tolerance below a claimed slope within which a fit still ``holds``.
RATE_TOL = 0.05


@dataclass(frozen=True)
class Fit:
    """``y ≈ slope · x + intercept`` by least squares.

    ``se``: standard error of the slope; ``ci``: its ``LEVEL`` confidence interval
    (Student t, ``n − 2`` degrees of freedom); ``r2``; ``curvature``: change of the local slope
    of a quadratic fit across ``[min x, max x]``; ``gof``: goodness of fit passed; ``why``:
    the reason when it did not; ``n``: points used.
    """

    slope: float
    intercept: float
    se: float
    ci: tuple[float, float]
    r2: float
    curvature: float
    gof: bool
    why: str
    n: int


def fit_line(x: ArrayLike, y: ArrayLike) -> Fit:
    """Least-squares line with CI and goodness of fit; needs ≥ 3 finite points and ≥ 2
    distinct ``x`` (``ValueError`` otherwise)."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 3 or np.unique(x).size < 2:
        raise ValueError(f"need at least 3 finite points at 2 distinct x to fit, got {x.size}")
    A = np.vstack([x, np.ones_like(x)]).T
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    res = y - A @ coef
    dof = x.size - 2
    sxx = float(np.sum((x - x.mean()) ** 2))
    s2 = float(res @ res) / max(dof, 1)
    se = math.sqrt(s2 / sxx)
    tq = float(stats.t.ppf(0.5 + LEVEL / 2, max(dof, 1)))
    syy = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(res @ res) / syy if syy > 0 else 1.0
    curv = 0.0
    if np.unique(x).size >= 3:
        c2 = np.polyfit(x, y, 2)[0]
        curv = float(abs(2 * c2 * (x.max() - x.min())))
    slope = float(coef[0])
    why = []
    if curv > CURV_REL * abs(slope) + CURV_ABS:
        why.append(f"local slope changes by {curv:.3g} across the range (not a straight line)")
    return Fit(slope, float(coef[1]), se, (slope - tq * se, slope + tq * se), r2, curv,
               not why, "; ".join(why), int(x.size))


def rate_verdict(fit: Fit, q: float) -> tuple[str, str]:
    """``(verdict, reason)`` of the claim ``slope ≥ q`` (module docstring rule)."""
    lo, hi = fit.ci
    if not fit.gof:
        return "not checked", f"goodness of fit fails: {fit.why}"
    if lo >= q - RATE_TOL:
        return "holds", f"CI [{lo:.3g}, {hi:.3g}] ≥ {q:.3g} − {RATE_TOL}"
    if hi < q:
        return "violated", f"CI [{lo:.3g}, {hi:.3g}] < {q:.3g}"
    return "not checked", f"inconclusive: CI [{lo:.3g}, {hi:.3g}] contains {q:.3g}"
