"""Rate checks by λ sweeps for the statements whose constants are hidden in ``O(·)``.

For each scale ``λ`` of a grid, the exact flow is run from the same normalised initialisation
(same seed, ``(a, w) = λ/√m (ã, w̃)``), the quantity is measured at the phase time, and the
exponent ``p`` of ``quantity ≈ C λ^p`` is fitted by least squares on ``log``–``log`` with its
standard error.  The claim ``quantity = O(λ^q)`` is reported ``holds`` when ``p ≥ q − 2 se``
(the fit does not show a slower rate), ``violated`` when ``p < q − 2 se``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pwflow.data import Dataset
from pwflow.init import make_init
from pwflow.integrator import simulate
from pwflow.progress import make_bar

from . import checks as C
from .checks import CheckResult


@dataclass(frozen=True)
class Fit:
    """``log y = p log λ + b``: exponent ``p``, its standard error ``se``, points used."""

    p: float
    se: float
    lams: tuple[float, ...]
    values: tuple[float, ...]


def fit_exponent(lams, values) -> Fit:
    """Least-squares exponent of ``values ≈ C λ^p`` (positive finite points only, ≥ 3)."""
    lams = np.asarray(lams, float)
    values = np.asarray(values, float)
    sel = (values > 0) & np.isfinite(values)
    if sel.sum() < 3:
        raise ValueError("need at least 3 positive values to fit an exponent, "
                         f"got {int(sel.sum())}")
    x, yv = np.log(lams[sel]), np.log(values[sel])
    A = np.vstack([x, np.ones_like(x)]).T
    coef, *_ = np.linalg.lstsq(A, yv, rcond=None)
    dof = max(x.size - 2, 1)
    s2 = float(np.sum((yv - A @ coef) ** 2)) / dof
    se = math.sqrt(s2 / float(np.sum((x - x.mean()) ** 2)))
    return Fit(float(coef[0]), se, tuple(lams[sel]), tuple(values[sel]))


def measure(data: Dataset, lam: float, *, width: int, init_kind: str, seed: int,
            epsilon: float, alpha0: float, eps2: float) -> dict[str, float]:
    """One run: Lemma 4 misalignment at ``τ`` (max over 𝓘 of ``‖D*‖ − <D*, w/a>``), Theorem 1
    (ii) misalignment (max over Condition-1 neurons with ``D ≠ 0``, not anti-aligned, of
    ``‖D‖ − <D, w/a>``), Lemma 5's ``1 − min <𝗐_i, 𝗐_j>`` at ``τ_2`` and ``Σ_𝓘 a²`` sup
    (Lemma 16 proxy: value at ``τ_2``)."""
    geo = C.geometry(data)
    tau = C.tau_of(lam, epsilon, geo.D_max)
    t_max = 3 * tau / epsilon + 20.0
    init = make_init(init_kind, width, data.d, lam, seed)
    traj = simulate(data, init, t_max, t_eval=np.linspace(0, t_max, 400).tolist() + [tau])
    i = C._index_at(traj, tau)
    ph = C.locate_phases(traj, geo, lam, epsilon, eps2, 1e-3, 1e-3)
    W, a = traj.W[i], traj.a[i]
    out = {"lemma4": float(np.max(np.linalg.norm(ph.D_star) - (W[ph.I] @ ph.D_star) / a[ph.I]))}
    sel, _ = C.condition1(traj, alpha0)
    nD, g, anti = C._alignment_at_tau(traj, geo, i)
    m = sel & (nD > C.ZERO_TOL * geo.D_max) & (anti > 1e-8)
    out["theorem1"] = float(np.max(nD[m] - g[m])) if m.any() else math.nan
    if ph.tau2 is not None:
        W2, a2 = ph.state2
        Wn = W2[ph.I] / a2[ph.I, None]
        out["lemma5"] = float(1 - np.min(Wn @ Wn.T))
    else:
        out["lemma5"] = math.nan
    return out


#: Claimed exponents ``q`` of ``O(λ^q)`` per key (functions of ε).
CLAIMS = {
    "lemma4": ("Lemma 4 rate", lambda e: e, "‖D*‖ − <D*, w_i^τ/a_i^τ> = O(λ^ε)"),
    "theorem1": ("Theorem 1 (ii) rate", lambda e: e,
                 "‖D‖ − <D, w/a> = O(λ^{ε‖D‖/D_max}) (q = ε for ‖D‖ = D_max; smaller ‖D‖ "
                 "give a smaller q, so q = ε is the strictest)"),
    "lemma5": ("Lemma 5 rate", lambda e: 1 - e, "1 − <𝗐_i^τ2, 𝗐_j^τ2> = O(λ^{1−ε})"),
}


def sweep(data: Dataset, lams, *, width: int = 50, init_kind: str = "balanced", seed: int = 0,
          epsilon: float = 0.25, alpha0: float = 0.5, eps2: float = 0.05,
          progress: bool | None = False) -> list[CheckResult]:
    """Run the λ sweep and return one :class:`CheckResult` per claimed rate.

    ``progress``: a tqdm bar on stderr (``None``: only when stderr is a terminal).
    """
    lams = sorted(float(x) for x in lams)
    if len(lams) < 3 or not all(0 < x < 1 for x in lams):
        raise ValueError(f"lams must hold at least 3 values in (0, 1), got {lams}")
    rows = []
    bar = make_bar(len(lams), progress, desc="λ sweep", unit="run")
    for lam in lams:
        bar.set_postfix_str(f"λ = {lam:g}", refresh=False)
        rows.append(measure(data, lam, width=width, init_kind=init_kind, seed=seed,
                            epsilon=epsilon, alpha0=alpha0, eps2=eps2))
        bar.update(1)
    bar.close()
    geo = C.geometry(data)
    lam_star = geo.lambda_star(alpha0, epsilon)
    out = []
    for key, (name, q_of, what) in CLAIMS.items():
        vals = [r[key] for r in rows]
        q = q_of(epsilon)
        hyp = {"all λ < λ*": max(lams) < lam_star}
        try:
            fit = fit_exponent(lams, vals)
        except ValueError as err:
            out.append(CheckResult(name, hyp, "not applicable", note=str(err)))
            continue
        ok = fit.p >= q - 2 * fit.se
        out.append(C._result(name, hyp, ok, fit.p, q, fit.p - q,
                             f"λ ∈ [{min(lams):.3g}, {max(lams):.3g}], {len(fit.lams)} points",
                             f"{what}; fitted exponent {fit.p:.3f} ± {2 * fit.se:.3f} (2 se); "
                             f"values {', '.join(f'{v:.3g}' for v in fit.values)}"))
    return out
