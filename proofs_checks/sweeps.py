"""Asymptotic checks: every rate the paper states, fitted over a λ sweep.

For each scale ``λ`` of a grid and each seed, the exact flow is run (in a process pool) from
``(a, w) = λ/√m (ã, w̃)``, the quantities below are measured at the phase times, and one
straight line is fitted to all (λ, seed) points with a 95 % confidence interval and a
goodness-of-fit test (:mod:`proofs_checks.fits`).  A claim "slope ≥ q" ``holds`` when the whole
CI is ``≥ q``, is ``violated`` when the whole CI is ``< q`` and is ``not checked``
(inconclusive, reason given) otherwise or when the data are not a straight line.

* ``Lemma 4 (1) rate``: ``max_𝓘 ‖D*‖ − <D*, w/a>`` at ``τ``; slope ``≥ ε``;
* ``Theorem 1 (ii) rate``: ``max_j ‖D‖ − <D, w_j/a_j>`` at ``τ``; slope ``≥ ε min‖D‖/D_max``;
* ``Theorem 1 (i) norm growth``: ``max_j |a_j^τ|/|a_j^0|``; slope ``≥ −2ε``;
* ``Lemma 5 (3) rate``: ``1 − min_𝓘 <𝗐_i, 𝗐_j>`` at ``τ_2``; slope ``≥ 1 − ε``;
* ``Eq. (42) escape time``: ``τ_2 − τ`` against ``x = −ln λ``; slope ``≥ (1 − 2ε)/‖D*‖``;
* ``Lemma 6 (3) rate``: ``max_𝓝 |a_i^{τ_3}|/|a_i^0|``; slope ``≥ −ε``;
* ``Lemma 16``: ``sup_{[τ_2, τ_3]} Σ_𝓘 a²``; slope ``≥ 0``;
* ``Lemma 22 rate``: per run, the tail decay rate of ``L − L_β*``; ``≥ σ_min‖β*‖/2``.

(``x = ln λ`` and ``y = ln(quantity)`` unless stated.)

Exclusion rules (applied here, counted in the result's ``where``):

* **machine precision** — a value ``≤`` :data:`ROUNDOFF` × its scale (``‖D‖`` for
  misalignments, 1 for ``1 − cos``) is round-off, not a rate;
* **neurons in transit** — the early-phase directional dynamics of ``w/a`` do not depend on
  ``λ`` (``h ≈ 0``), so with one seed the same neurons are followed at every ``λ``; a neuron
  not yet in an extremal face at ``τ`` of the **largest** ``λ`` of the sweep (its arrival time
  exceeds that ``τ``) is in transit and is left out of the alignment maxima at every ``λ``
  of that seed, so that each point measures the same neurons (their misalignment then decays
  like ``e^{−‖D‖(τ − t_arrival)}``, the claimed exponent);
* **phase not reached** — a point whose ``τ_2``/``τ_3`` is not reached within the horizon.
"""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from pwflow import theory
from pwflow.data import Dataset
from pwflow.init import make_init
from pwflow.progress import make_bar

from . import checks as C
from .checks import CheckResult, Kind, Verdict
from .fits import Fit, fit_line, rate_verdict

__all__ = ["ROUNDOFF", "RATES", "Point", "measure", "sweep", "fit_exponent",
           "render_rate_table"]

#: Relative size below which a measured value is round-off (64 machine epsilons).
ROUNDOFF = 64 * float(np.finfo(float).eps)


def fit_exponent(lams, values) -> Fit:
    """Exponent ``p`` of ``values ≈ C λ^p`` (log–log line with CI, :func:`fits.fit_line`);
    positive finite points only, at least 3."""
    lams = np.asarray(lams, float)
    values = np.asarray(values, float)
    sel = (values > 0) & np.isfinite(values)
    if sel.sum() < 3:
        raise ValueError("need at least 3 positive values to fit an exponent, "
                         f"got {int(sel.sum())}")
    return fit_line(np.log(lams[sel]), np.log(values[sel]))


@dataclass(frozen=True)
class Point:
    """One (λ, seed) run: ``values[key]`` (``nan`` when excluded) and ``why[key]`` (the
    exclusion rule that removed it, ``""`` if kept), per-neuron arrays ``per`` for the
    alignment rows (misalignments, ``‖D‖``, transit mask at ``τ``), and the wall time."""

    lam: float
    seed: int
    values: dict
    why: dict
    per: dict
    wall: float


def _transit(traj, geo, i: int) -> np.ndarray:
    """Neurons whose face at snapshot ``i`` is not extremal (and not ``D = 0``)."""
    faces = {tuple(int(v) for v in f.u): f for f in geo.faces}
    u = traj.patterns[traj.pattern[i]]
    out = np.zeros(traj.m, bool)
    for j in range(traj.m):
        f = faces.get(tuple(int(v) for v in u[j]))
        out[j] = f is None or (f.extremal == 0 and np.linalg.norm(f.D) > C.ZERO_TOL * geo.D_max)
    return out


def measure(data: Dataset, lam: float, seed: int, *, width: int = 2000,
            init_kind: str = "balanced", epsilon: float = 0.25, alpha0: float = 0.5,
            eps2: float = 0.05, eps3: float = 0.05, delta_prime: float = 0.05,
            n_grid: int = 100) -> Point:
    """One run at scale ``lam`` and seed ``seed``: every quantity of the module table."""
    from .report import Config, run_trajectory

    t0 = time.perf_counter()
    geo = C.geometry(data)
    tau = C.tau_of(lam, epsilon, geo.D_max)
    cfg = Config(epsilon=epsilon, alpha0=alpha0, eps2=eps2, eps3=eps3, delta_prime=delta_prime,
                 t_max=8 * tau + 60.0, n_grid=n_grid)
    traj = run_trajectory(data, make_init(init_kind, width, data.d, lam, seed), geo, cfg)
    i = C._index_at(traj, tau)
    ph = C.locate_phases(traj, geo, lam, epsilon, eps2, eps3, delta_prime)
    W, a = traj.W[i], traj.a[i]
    v: dict = {}
    why: dict = {}
    transit = _transit(traj, geo, i)
    sel1, _ = C.condition1(traj, alpha0)
    nDs = float(np.linalg.norm(ph.D_star))
    nD, g, anti = C._alignment_at_tau(traj, geo, i)
    # per-neuron misalignments (nan where the row does not concern the neuron); the maxima
    # over the neurons that are not in transit are taken in _rate_row
    per = {"lemma4": np.where(ph.I & sel1, nDs - (W @ ph.D_star) / a, np.nan),
           "theorem1": np.where(sel1 & (nD > C.ZERO_TOL * geo.D_max) & (anti > 1e-8),
                                nD - g, np.nan),
           "nD": nD, "transit": transit}
    v["lemma4"] = v["theorem1"] = math.nan  # filled in by _rate_row
    why["lemma4"] = why["theorem1"] = ""
    # Theorem 1 (i) norm growth
    v["growth"] = float(np.max(np.abs(traj.a[i]) / np.abs(traj.a[0])))
    why["growth"] = ""
    # Lemma 5 (3), Eq. (42), Lemma 16, Lemma 6 (3)
    if ph.tau2 is None:
        for k in ("lemma5", "tau2", "lemma16", "lemma6_3"):
            v[k], why[k] = math.nan, "phase not reached"
    else:
        W2, a2 = ph.state2
        Wn = W2[ph.I] / a2[ph.I, None]
        Wn = Wn / np.linalg.norm(Wn, axis=1)[:, None]
        v["lemma5"] = float(1 - np.min(Wn @ Wn.T))
        why["lemma5"] = "" if v["lemma5"] > ROUNDOFF else "machine precision"
        v["tau2"], why["tau2"] = float(ph.tau2 - tau), ""
        if ph.tau3 is None:
            for k in ("lemma16", "lemma6_3"):
                v[k], why[k] = math.nan, "phase not reached"
        else:
            idx = C._window(traj, ph.tau2, ph.tau3)
            v["lemma16"] = max([float(np.sum(ph.state3[1][ph.I] ** 2))]
                               + [float(np.sum(traj.a[j][ph.I] ** 2)) for j in idx])
            a3 = ph.state3[1]
            v["lemma6_3"] = (float(np.max(np.abs(a3[ph.N]) / np.abs(traj.a[0][ph.N])))
                             if ph.N.any() else math.nan)
            why["lemma16"] = why["lemma6_3"] = ""
    # Lemma 22: tail decay rate of the loss gap on [τ_3, T]
    v["lemma22"], why["lemma22"] = math.nan, "phase not reached"
    if ph.tau3 is not None:
        s = C.phase3_series(traj, ph)
        r = C.lemma22_result({}, s["t"], s["gap"], 1.0, 0.0)
        if r.measured is not None:
            v["lemma22"], why["lemma22"] = r.measured, ""
        else:
            why["lemma22"] = "machine precision"
    for k in list(v):
        if why[k]:
            v[k] = math.nan
    return Point(float(lam), int(seed), v, why, per, time.perf_counter() - t0)


def _measure_star(kw):
    return measure(**kw)


#: key -> (row name, x transform, claimed slope as a function of (ε, ‖D*‖, q1), what)
RATES = {
    "lemma4": ("Lemma 4 (1) rate", "log", lambda e, nd, q1: e,
               "max_𝓘 ‖D*‖ − <D*, w/a> at τ = O(λ^ε)"),
    "theorem1": ("Theorem 1 (ii) rate", "log", lambda e, nd, q1: q1,
                 "max_j ‖D‖ − <D, w/a> at τ = O(λ^{ε‖D‖/D_max}), q at the smallest ‖D‖"),
    "growth": ("Theorem 1 (i) norm growth", "log", lambda e, nd, q1: -2 * e,
               "max_j |a_j^τ|/|a_j^0| ≤ λ^{−2ε}"),
    "lemma5": ("Lemma 5 (3) rate", "log", lambda e, nd, q1: 1 - e,
               "1 − min <𝗐_i, 𝗐_j> at τ_2 = O(λ^{1−ε})"),
    "tau2": ("Eq. (42) escape time", "neglog", lambda e, nd, q1: (1 - 2 * e) / nd,
             "τ_2 − τ ≥ −(1−2ε) ln λ/‖D*‖ − O(ln 1/ε_2): slope in −ln λ"),
    "lemma6_3": ("Lemma 6 (3) rate", "log", lambda e, nd, q1: -e,
                 "max_𝓝 |a^{τ_3}|/|a^0| < λ^{−ε}"),
    "lemma16": ("Lemma 16", "log", lambda e, nd, q1: 0.0,
                "sup_{[τ_2,τ_3]} Σ_𝓘 a² = O(1): exponent ≥ 0"),
}


def _alignment_values(key: str, points: list[Point], D_max: float,
                      epsilon: float) -> tuple[list[Point], float]:
    """Fill ``values[key]`` with the max misalignment over the neurons not in transit at the
    largest λ of their seed (module docstring); returns the points and the claim
    ``q = ε min‖D‖/D_max`` over the neurons used (``ε`` for Lemma 4)."""
    out, qs = [], [epsilon]
    for seed in {p.seed for p in points}:
        ps = [p for p in points if p.seed == seed]
        ref = max(ps, key=lambda p: p.lam)
        keep = ~ref.per["transit"]
        for p in ps:
            mis = p.per[key][keep]
            ok = np.isfinite(mis)
            v, why = dict(p.values), dict(p.why)
            if not ok.any():
                v[key], why[key] = math.nan, "in transit"
            else:
                v[key] = float(np.max(mis[ok]))
                scale = D_max
                if not v[key] > ROUNDOFF * scale:
                    v[key], why[key] = math.nan, "machine precision"
                if key == "theorem1":
                    qs.append(epsilon * float(np.min(p.per["nD"][keep][ok])) / D_max)
            out.append(Point(p.lam, p.seed, v, why, p.per, p.wall))
    return out, (min(qs[1:]) if key == "theorem1" and len(qs) > 1 else epsilon)


def _rate_row(key: str, points: list[Point], epsilon: float, nDs: float,
              D_max: float = 1.0) -> CheckResult:
    name, xform, q_of, what = RATES[key]
    q1 = epsilon
    if key in ("lemma4", "theorem1"):
        points, q1 = _alignment_values(key, points, D_max, epsilon)
    lams = np.array([p.lam for p in points])
    vals = np.array([p.values[key] for p in points])
    excluded: dict[str, int] = {}
    for p in points:
        if p.why[key]:
            excluded[p.why[key]] = excluded.get(p.why[key], 0) + 1
    keep = np.isfinite(vals)
    q = float(q_of(epsilon, nDs, q1))
    exc = ", ".join(f"{n} {k}" for k, n in excluded.items()) or "none"
    where = (f"λ ∈ [{lams.min():.0e}, {lams.max():.0e}], {len({p.seed for p in points})} "
             f"seeds; {int(keep.sum())} points used, excluded: {exc}")
    try:
        if xform == "neglog":
            fit = fit_line(-np.log(lams[keep]), vals[keep])
        else:
            fit = fit_line(np.log(lams[keep]), np.log(vals[keep]))
    except ValueError as err:
        return CheckResult(name, {}, Verdict.NOT_APPLICABLE, None, q, None, where,
                           f"{what}; {err}", kind=Kind.ASYMPTOTIC)
    v, why = rate_verdict(fit, q)
    implied = math.exp(fit.intercept) if xform == "log" else fit.intercept
    return CheckResult(name, {}, Verdict(v), fit.slope, q, fit.ci[0] - q, where,
                       f"{what}; fitted {fit.slope:.4g} CI [{fit.ci[0]:.4g}, {fit.ci[1]:.4g}], "
                       f"R² {fit.r2:.4f}, slope change {fit.curvature:.3g}, implied constant "
                       f"{implied:.3g}; {why}", kind=Kind.ASYMPTOTIC)


def _lemma22_row(points: list[Point], a_hi: float) -> CheckResult:
    rates = np.array([p.values["lemma22"] for p in points], float)
    ok = np.isfinite(rates)
    where = f"{int(ok.sum())} runs with a tail fit"
    if not ok.any():
        return CheckResult("Lemma 22 rate", {}, Verdict.NOT_APPLICABLE, None, a_hi, None, where,
                           "no run reached phase 3 above round-off", kind=Kind.ASYMPTOTIC)
    lo = float(np.min(rates[ok]))
    # the rate a > 0 is only bounded above here (σ_min‖β*‖/2; its lower bound c_4/4 is the
    # single run's, :func:`proofs_checks.checks.late.lemma22_result`): a run whose gap does not
    # decay at all (tail rate ≤ 0) contradicts every a > 0
    if lo >= a_hi:
        v = Verdict.HOLDS
    elif lo <= 0.0:
        v = Verdict.VIOLATED
    else:
        v = Verdict.NOT_CHECKED
    return CheckResult("Lemma 22 rate", {}, v, lo, a_hi, lo - a_hi, where,
                       f"smallest per-run tail decay rate of L − L_β* ({lo:.4g}; all: "
                       f"{', '.join(f'{r:.3g}' for r in rates[ok])}) vs σ_min‖β*‖/2 ≥ a "
                       "(λ-independent claim)", kind=Kind.ASYMPTOTIC)


def sweep(data: Dataset, lams, *, seeds=(0, 1, 2), width: int = 2000,
          init_kind: str = "balanced", epsilon: float = 0.25, alpha0: float = 0.5,
          eps2: float = 0.05, eps3: float = 0.05, delta_prime: float = 0.05,
          workers: int | None = 2, progress: bool | None = False) -> list[CheckResult]:
    """Run the λ × seed sweep in a process pool of ``workers`` (``None``/1: in this process)
    and return one asymptotic :class:`CheckResult` per row of the module table."""
    lams = sorted(float(x) for x in lams)
    if len(lams) < 3 or not all(0 < x < 1 for x in lams):
        raise ValueError(f"lams must hold at least 3 values in (0, 1), got {lams}")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    jobs = [dict(data=data, lam=lam, seed=s, width=width, init_kind=init_kind, epsilon=epsilon,
                 alpha0=alpha0, eps2=eps2, eps3=eps3, delta_prime=delta_prime)
            for lam in lams for s in seeds]
    t0 = time.perf_counter()
    with make_bar(len(jobs), progress, desc="λ sweep", unit="run") as bar:
        if workers is None or workers <= 1:
            points = []
            for j in jobs:
                points.append(_measure_star(j))
                bar.update(1)
        else:
            with ProcessPoolExecutor(max_workers=min(workers, os.cpu_count() or 1)) as ex:
                points = []
                for p in ex.map(_measure_star, jobs):
                    points.append(p)
                    bar.update(1)
    geo = C.geometry(data)
    nDs = float(np.linalg.norm(data.y @ data.X / data.X.shape[0]))  # ‖D*‖ (square loss)
    out = [_rate_row(k, points, epsilon, nDs, geo.D_max) for k in RATES]
    beta = theory.beta_star(data.X, data.y)
    H = data.X.T @ data.X / data.X.shape[0]
    a_hi = float(np.linalg.eigvalsh(H)[0] * np.linalg.norm(beta)) / 2
    out.append(_lemma22_row(points, a_hi))
    base = {"all λ < λ*": max(lams) < geo.lambda_star(alpha0, epsilon)}
    a456 = C.assumptions456(data)
    wall = f"; {len(jobs)} runs, {time.perf_counter() - t0:.0f} s wall, {workers or 1} workers"
    rows = []
    for r in out:
        hyp = dict(base)
        upto = SECTION4_NEEDS.get(r.statement)
        if upto is not None:  # Section 4 rows: Appendix F's assumptions on this dataset
            hyp.update({k: v for k, v in a456.items() if int(k[-1]) <= upto})
        rows.append(CheckResult(r.statement, hyp, r.verdict if all(hyp.values())
                                else Verdict.HYPOTHESES_UNMET, r.measured, r.bound, r.margin,
                                r.where + wall, r.note, Kind.ASYMPTOTIC))
    return rows


#: Section 4 rows of the sweep and the highest of Assumptions 4–6 each needs (Appendix F).
SECTION4_NEEDS = {"Lemma 4 (1) rate": 4, "Lemma 5 (3) rate": 5, "Eq. (42) escape time": 5,
                  "Lemma 6 (3) rate": 5, "Lemma 16": 5, "Lemma 22 rate": 6}


def render_rate_table(results: list[CheckResult]) -> str:
    """Markdown rate table: claimed slope, fitted slope with CI, goodness of fit, verdict."""
    head = ["| row | claim | fitted (95 % CI, R², slope change) | points | verdict |",
            "|---|---|---|---|---|"]
    body = []
    for r in results:
        fit = r.note.split("; fitted ")[-1] if "; fitted " in r.note else r.note
        body.append(f"| {r.statement} | ≥ {r.bound:.4g} | {fit} | {r.where} | "
                    f"{r.verdict.value} |".replace("\n", " ") if r.bound is not None else
                    f"| {r.statement} | — | {r.note} | {r.where} | {r.verdict.value} |")
    return "\n".join(head + body)
