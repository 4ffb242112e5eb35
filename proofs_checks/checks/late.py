"""Late phase (Section 4.1 Phase 3, Appendix F.4): Lemma 7, Theorems 2 and 4, Lemmas 19–24."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from numpy.typing import NDArray

from pwflow.data import Dataset
from pwflow.trajectory import Trajectory

from .dataset import in_assumption3
from .geometry import Geometry, _D_by_pattern, _outputs, _residual
from .phases import Phases, _sec4_hyp, _window
from .results import CheckResult, Kind, Verdict, _result

#: the trapezoid rule: ``numpy.trapezoid`` from NumPy 2.0 on, ``numpy.trapz`` before it (the
#: declared minimum is NumPy 1.24; NumPy 2 deprecates ``trapz``)
_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # noqa: NPY201 (NumPy < 2 only)

Array = NDArray[np.float64]


def check_lemma7(traj: Trajectory, data: Dataset, geo: Geometry, ph: Phases, lam: float,
                 epsilon: float, alpha0: float, conv_tol: float = 1e-6,
                 statement: str = "Lemma 7") -> CheckResult:
    """Lemma 7 / Theorem 2 / Theorem 4 at the end of the run (a finite-horizon proxy for
    ``t → ∞``): every neuron is all-active or all-inactive (``<w_i, x_k> ≥ 0 ∀k`` or
    ``≤ 0 ∀k``), ``‖Σ_{active} a_i w_i − β*‖ ≤ conv_tol`` and ``‖h_θ(X) − Xβ*‖_∞ ≤ conv_tol``,
    ``L(θ^T) ≥ L_β* > 0`` (``lim L > 0``) and no ``𝓘`` neuron crosses a data point after
    ``τ_3`` (``τ_4 = ∞`` with ``δ_4 = 0``).  ``ε_4``, ``δ_4`` are ``Θ(1)``: only measured."""
    hyp = _sec4_hyp(traj, data, lam, geo.lambda_star(alpha0, epsilon))
    if statement == "Theorem 2":
        hyp = {k: v for k, v in hyp.items() if not k.startswith("Assumption")}
        hyp["Assumption 3 (η < 1/6)"] = in_assumption3(data)
    X, y = traj.X, traj.y
    W, a = traj.W[-1], traj.a[-1]
    S = W @ X.T
    tol = 1e-12 * np.max(np.abs(S))
    linear = np.all(S >= -tol, axis=1) | np.all(S <= tol, axis=1)
    active = np.all(S > tol, axis=1)
    beta_T = a[active] @ W[active]
    err = float(np.linalg.norm(beta_T - ph.beta_star))
    herr = float(np.max(np.abs(_outputs(W, a, X, traj.gamma) - X @ ph.beta_star)))
    Lb = float(0.5 * np.mean((X @ ph.beta_star - y) ** 2))
    LT = float(traj.step_loss[-1])
    stay = True
    if ph.tau3 is not None:
        idx = _window(traj, ph.tau3, traj.t[-1])
        stay = bool(np.all((traj.W[idx][:, ph.I] @ X.T) > 0))
    ok = bool(linear.all() and err <= conv_tol and herr <= conv_tol and LT >= Lb * (1 - 1e-12)
              and Lb > 0 and stay)
    return _result(statement, hyp, ok, err, conv_tol, conv_tol - err,
                   f"t={traj.t[-1]:.5g}; {int((~linear).sum())} mixed neurons",
                   f"‖β_T − β*‖, ‖h − Xβ*‖_∞={herr:.3g}, L_T − L_β*={LT - Lb:.3g}, L_β*={Lb:.4g}; "
                   "finite-horizon proxy of the limit")


def _min_norm_grad2(traj: Trajectory, i: int) -> float:
    """``min_{g ∈ ∂L(θ)} ‖g‖²`` at snapshot ``i`` (Eq. (2)): per neuron the ``w``-block is
    ``−a_j D`` with ``D`` ranging over ``𝔇(w_j, θ)`` and the ``a``-block ``−<w_j, D>`` (the same
    for every ``D``, since ``<w_j, x_k> = 0`` on the free slopes), so the minimum takes the
    minimal-norm ``D`` of each face."""
    W, a = traj.W[i], traj.a[i]
    r = _residual(traj, W, a)
    Dp = _D_by_pattern(traj, i, r)
    D = np.array([Dp[int(p)] for p in traj.pattern[i]])
    return float(np.sum(a**2 * np.einsum("md,md->m", D, D))
                 + np.sum(np.einsum("md,md->m", W, D) ** 2))


def phase3_series(traj: Trajectory, ph: Phases) -> dict[str, Array]:
    """On the snapshots of ``[τ_3, T]``: ``R_t`` (Appendix F.4), ``L − L_β*``, ``‖D^t‖``,
    ``‖θ^t − θ^{τ_3}‖``, ``max |h − Xβ*|``, ``max_𝓘 ‖𝗐_i^t − 𝗐_i^{τ_3}‖`` and the squared
    gradient norm (convention ``σ'(0) = 0``)."""
    from pwflow.model import gradient

    X, y = traj.X, traj.y
    idx = _window(traj, ph.tau3, traj.t[-1])
    W3, a3 = ph.state3
    Lb = 0.5 * np.mean((X @ ph.beta_star - y) ** 2)
    out = {k: [] for k in ("t", "R", "gap", "Dnorm", "dtheta", "herr", "dw", "g2", "g2min")}
    for i in idx:
        W, a = traj.W[i], traj.a[i]
        S = W @ X.T
        mixed = np.any(S > 0, axis=1) & np.any(S < 0, axis=1)
        h = _outputs(W, a, X, traj.gamma)
        gW, ga = gradient(W, a, X, y, traj._loss(), traj.gamma)
        out["t"].append(traj.t[i])
        out["R"].append(0.5 * np.sum(W[mixed] ** 2))
        out["gap"].append(0.5 * np.mean((h - y) ** 2) - Lb)
        out["Dnorm"].append(np.linalg.norm((y - h) @ X / X.shape[0]))
        out["dtheta"].append(math.sqrt(np.sum((W - W3) ** 2) + np.sum((a - a3) ** 2)))
        out["herr"].append(np.max(np.abs(h - X @ ph.beta_star)))
        out["dw"].append(np.max(np.linalg.norm(W[ph.I] / a[ph.I, None] - W3[ph.I] / a3[ph.I, None],
                                               axis=1)) if ph.I.any() else 0.0)
        out["g2"].append(np.sum(gW**2) + np.sum(ga**2))
        out["g2min"].append(_min_norm_grad2(traj, i))
    return {k: np.asarray(v, float) for k, v in out.items()}


#: Lemma 21 is checked where its main term is at least this multiple of ``λ^{2(1−ε)}`` (the
#: scale of its ``O(λ^{2(1−ε)} e^{−c_4 t/4})`` term, whose constant is hidden).
O_TERM_FACTOR = 1.0


def _decay_fit(t: Array, v: Array):
    """Fit ``log v ≈ −rate·t + b``; returns the :class:`proofs_checks.fits.Fit` of the
    *rate* (slope and CI negated)."""
    from ..fits import fit_line

    f = fit_line(t, np.log(v))
    return dataclasses.replace(f, slope=-f.slope, ci=(-f.ci[1], -f.ci[0]))


def check_phase3(traj: Trajectory, data: Dataset, geo: Geometry, ph: Phases, lam: float,
                 epsilon: float, alpha0: float, roundoff: float = 1e-13) -> list[CheckResult]:
    """Lemmas 19–24 on ``[τ_3, T]``.

    * Lemma 20: ``R_t = O(λ^{2(1−ε)} e^{−c_4 (t−τ_3)})`` — ``holds`` when no neuron is mixed
      (``R ≡ 0`` meets any constant); otherwise its decay rate is fitted (asymptotic row)
      against the computable lower bound of ``c_4`` (``constants.c4_lower``).
    * Lemma 21: ``‖g‖² ≥ σ_min(H)‖β*‖ (L − L_β*) + O(λ^{2(1−ε)} e^{−c_4 t/4})`` for **every**
      ``g ∈ ∂L``, i.e. for the minimal-norm one (:func:`_min_norm_grad2`), with no slack, at the
      snapshots where the main term is ``≥`` :data:`O_TERM_FACTOR` ``· λ^{2(1−ε)}`` (elsewhere
      the hidden ``O`` term could dominate; those points are excluded and counted).
    * Lemma 22: ``L − L_β* = O(ε_3² e^{−a (t−τ_3)})``, ``a = min(σ_min‖β*‖/2, c_4/4)``: the decay
      rate fitted on ``[τ_3, T]`` (points above round-off), with CI and goodness of fit
      (:func:`proofs_checks.fits.rate_verdict`): ``holds`` if ``≥ σ_min‖β*‖/2 ≥ a``,
      ``violated`` if below the computable lower bound ``min(σ_min‖β*‖/2, c4_lower/4) ≤ a``.
    * Lemmas 19, 23, 24: ``O(ε_3 + ε_4)``, ``O(ε_3)`` with constants that the paper does not
      give — measured ratios, ``not checked`` (an ``ε_3`` sweep would be needed).
    """
    from .. import constants as K
    from ..fits import rate_verdict

    hyp = _sec4_hyp(traj, data, lam, geo.lambda_star(alpha0, epsilon))
    names = ("Lemma 19", "Lemma 20", "Lemma 21", "Lemma 22", "Lemma 23", "Lemma 24")
    if ph.tau3 is None:
        return [CheckResult(s, hyp, Verdict.NOT_APPLICABLE, note="τ_3 not reached")
                for s in names]
    s = phase3_series(traj, ph)
    X = traj.X
    H = X.T @ X / X.shape[0]
    smin = float(np.linalg.eigvalsh(H)[0])
    kappa = smin * float(np.linalg.norm(ph.beta_star))
    c4 = K.c4_lower(geo.source) if geo.source is not None else 0.0
    c4 = max(float(c4), 0.0) if isinstance(c4, float) and math.isfinite(c4) else 0.0
    eps4 = float(np.max(s["dtheta"]))
    NC = Verdict.NOT_CHECKED
    unmet = not all(hyp.values())
    out = [CheckResult("Lemma 19", hyp, NC, float(np.max(s["herr"])), ph.eps3 + eps4, None,
                       f"[τ_3, T], ε_4 := sup‖θ−θ^τ3‖ = {eps4:.3g}",
                       "O(ε_3 + ε_4) with a constant the paper does not give: measured "
                       "sup |h − Xβ*|; its dependence on ε_3 is the asymptotic row "
                       "'Lemma 19 (ε_3 sweep)'")]
    Rmax = float(np.max(s["R"]))
    if Rmax == 0.0:
        out.append(_result("Lemma 20", hyp, True, 0.0, lam ** (2 * (1 - epsilon)), 0.0,
                           "[τ_3, T]", "no mixed neuron on [τ_3, T]: R_t ≡ 0 meets the bound "
                           "for any constant"))
    else:
        sel = s["R"] > 0
        lr = np.log(s["R"][sel])
        change = float(np.ptp(lr)) if lr.size else 0.0
        if change < 1e-8:
            out.append(CheckResult(
                "Lemma 20", hyp, Verdict.HYPOTHESES_UNMET if unmet else NC, Rmax,
                lam ** (2 * (1 - epsilon)), None, f"[τ_3, T] = [{ph.tau3:.4g}, {traj.t[-1]:.4g}]",
                f"R_t = {Rmax:.3g} is constant to round-off (relative change {change:.2g}): the "
                "mixed neurons have size ~λ and move at relative speed |a|‖D‖; the claimed "
                "decay e^{−c_4(t−τ_3)} needs c_4, of which only the lower bound "
                f"c4_lower = {c4:.3g} is computable (see paper-readings)", kind=Kind.ASYMPTOTIC))
        else:
            try:
                f = _decay_fit(s["t"][sel], s["R"][sel])
                v, why = rate_verdict(f, c4)
                out.append(CheckResult("Lemma 20", hyp, Verdict.HYPOTHESES_UNMET if unmet else v,
                                       f.slope, c4, f.ci[0] - c4, "[τ_3, T]",
                                       f"decay rate of R_t vs c4_lower = {c4:.3g} (≤ c_4): {why}",
                                       kind=Kind.ASYMPTOTIC))
            except ValueError as err:
                out.append(CheckResult("Lemma 20", hyp, NC, Rmax, None, None, "[τ_3, T]",
                                       f"R_t > 0 at too few points to fit a rate: {err}",
                                       kind=Kind.ASYMPTOTIC))
    out.append(lemma21_result(hyp, s, kappa, lam, epsilon, roundoff))
    out.append(lemma22_result(hyp, s["t"], s["gap"], kappa, c4, roundoff))
    integral = float(_trapezoid(s["Dnorm"], s["t"])) if s["t"].size > 1 else 0.0
    out.append(CheckResult("Lemma 23", hyp, NC, integral, ph.eps3, None, "[τ_3, T]",
                           f"∫‖D^t‖dt = O(ε_3), constant not given: ratio "
                           f"{integral / ph.eps3:.3g}; its ε_3 dependence: asymptotic row "
                           "'Lemma 23 (ε_3 sweep)'"))
    out.append(lemma24_result(hyp, eps3_quantities(traj, ph)))
    out += eps3_sweep_rows(traj, geo, ph, lam, epsilon, hyp)
    return out


def lemma21_result(hyp: dict[str, bool], s: dict[str, Array], kappa: float, lam: float,
                   epsilon: float, roundoff: float = 1e-13) -> CheckResult:
    """Lemma 21's verdict on the series of :func:`phase3_series` (see :func:`check_phase3`);
    ``kappa = σ_min(H)‖β*‖``."""
    main = kappa * s["gap"]
    chk = (s["gap"] > roundoff) & (main >= O_TERM_FACTOR * lam ** (2 * (1 - epsilon)))
    if not chk.any():
        return CheckResult("Lemma 21", hyp, Verdict.NOT_APPLICABLE,
                           note="L − L_β* below the O(λ^{2(1−ε)}) scale at every snapshot")
    ratio = s["g2min"][chk] / s["gap"][chk]
    k = int(np.argmin(ratio))
    slack = s["g2min"][chk] - main[chk]
    return _result("Lemma 21", hyp, bool(np.all(slack >= 0)), float(ratio[k]), kappa,
                   float(np.min(slack)), f"t={s['t'][chk][k]:.5g}; {int(chk.sum())} "
                   f"points, {int((~chk).sum())} excluded",
                   "min over snapshots of min_{g∈∂L}‖g‖²/(L − L_β*) vs σ_min(H)‖β*‖; "
                   f"points with σ_min‖β*‖(L − L_β*) < {O_TERM_FACTOR:g}·λ^{{2(1−ε)}} "
                   "excluded (hidden O term)")


def lemma22_result(hyp: dict[str, bool], t: Array, gap: Array, kappa: float, c4: float,
                   roundoff: float = 1e-13) -> CheckResult:
    """Lemma 22's verdict from the loss gap ``L − L_β*`` sampled at times ``t`` (see
    :func:`check_phase3`); ``kappa = σ_min(H)‖β*‖``, ``c4`` a lower bound of ``c_4``."""
    from ..fits import rate_verdict

    idx = np.flatnonzero(gap > roundoff)
    idx = idx[idx.size // 2:] if idx.size >= 6 else idx  # the tail decides an O(e^{−at}) bound
    sel = np.zeros(gap.shape, bool)
    sel[idx] = True
    a_hi = kappa / 2
    a_lo = min(a_hi, c4 / 4)
    if sel.sum() < 3:
        return CheckResult("Lemma 22", hyp, Verdict.NOT_APPLICABLE, note="L − L_β* at round-off",
                           kind=Kind.ASYMPTOTIC)
    f = _decay_fit(t[sel], gap[sel])
    v_hi, why_hi = rate_verdict(f, a_hi)
    v_lo, why_lo = rate_verdict(f, a_lo)
    if v_hi == "holds":
        v, why = Verdict.HOLDS, f"rate ≥ σ_min‖β*‖/2 = {a_hi:.3g} ≥ a: {why_hi}"
    elif v_lo == "violated":
        v, why = Verdict.VIOLATED, (f"rate < min(σ_min‖β*‖/2, c4_lower/4) = {a_lo:.3g} ≤ a: "
                                    + why_lo)
    else:
        v, why = Verdict.NOT_CHECKED, (f"rate between the computable lower bound {a_lo:.3g} of "
                                       f"a and σ_min‖β*‖/2 = {a_hi:.3g} (c_4 is only bounded "
                                       f"below), or: {why_hi}")
    if not all(hyp.values()):
        v = Verdict.HYPOTHESES_UNMET
    return CheckResult("Lemma 22", hyp, v, f.slope, a_hi, f.ci[0] - a_hi,
                       f"[τ_3, T], tail: {int(sel.sum())} last points above round-off",
                       f"fitted decay rate of L − L_β*: {f.slope:.4g}, CI [{f.ci[0]:.3g}, "
                       f"{f.ci[1]:.3g}], R² {f.r2:.4f}; {why}", kind=Kind.ASYMPTOTIC)


#: ε_3 values of the sweep of Lemmas 19, 23, 24 (one trajectory: only τ_3 moves with ε_3).
EPS3_GRID = (0.2, 0.1, 0.05, 0.025, 0.0125)


def eps3_quantities(traj: Trajectory, ph: Phases) -> dict[str, float]:
    """On ``[τ_3, T]`` (the state at ``τ_3`` included): ``sup |h − Xβ*|`` (Lemma 19),
    ``ε_4 := sup ‖θ − θ^{τ_3}‖``, ``∫‖D^t‖dt`` (trapezoid, Lemma 23) and
    ``max_𝓘 ‖𝗐^t − 𝗐^{τ_3}‖`` (Lemma 24)."""
    X, y = traj.X, traj.y
    W3, a3 = ph.state3
    idx = _window(traj, ph.tau3, traj.t[-1])
    states = [(ph.tau3, W3, a3)] + [(float(traj.t[i]), traj.W[i], traj.a[i]) for i in idx]
    t, herr, dth, Dn, dw = [], [], [], [], []
    w3 = W3[ph.I] / a3[ph.I, None]
    for ti, W, a in states:
        h = _outputs(W, a, X, traj.gamma)
        t.append(ti)
        herr.append(float(np.max(np.abs(h - X @ ph.beta_star))))
        dth.append(math.sqrt(float(np.sum((W - W3) ** 2) + np.sum((a - a3) ** 2))))
        Dn.append(float(np.linalg.norm((y - h) @ X / X.shape[0])))
        dw.append(float(np.max(np.linalg.norm(W[ph.I] / a[ph.I, None] - w3, axis=1)))
                  if ph.I.any() else 0.0)
    integ = np.concatenate([[0.0], np.cumsum(np.diff(t) * (np.array(Dn[1:]) + Dn[:-1]) / 2)])
    k = 1 + int(np.argmax(np.array(dw[1:]) - integ[1:])) if len(t) > 1 else 0
    return {"lemma19": max(herr), "eps4": max(dth), "lemma23": float(integ[-1]),
            "lemma24": max(dw), "lemma24_slack": float(integ[k] - dw[k]), "lemma24_t": t[k]}


def lemma24_result(hyp: dict[str, bool], q: dict[str, float], tol: float = 1e-9
                   ) -> CheckResult:
    """Lemma 24 (3), ``‖𝗐_i^t − 𝗐_i^{τ_3}‖ = O(ε_3)`` on 𝓘, with the explicit constant of its
    proof: ``‖d𝗐_i/dt‖ = ‖D^t − <𝗐_i, D^t>𝗐_i‖ ≤ ‖D^t‖`` (``‖𝗐_i‖ ≤ 1``), so
    ``‖𝗐_i^t − 𝗐_i^{τ_3}‖ ≤ ∫_{τ_3}^t ‖D^s‖ds`` at every snapshot (Lemma 23 then gives
    ``O(ε_3)``).  ``q`` from :func:`eps3_quantities`; margin = smallest
    ``∫‖D‖ − ‖Δ𝗐‖`` (trapezoid on the snapshots, ``tol`` for its error)."""
    ok = q["lemma24_slack"] >= -tol
    return _result("Lemma 24 (3)", hyp, ok, q["lemma24"], q["lemma23"], q["lemma24_slack"],
                   f"t={q['lemma24_t']:.5g} (smallest margin)",
                   "max_𝓘 ‖𝗐^t − 𝗐^τ3‖ vs ∫_{τ_3}^t ‖D‖ (the proof's bound, constant 1); "
                   "∫‖D‖ = O(ε_3) is the asymptotic row 'Lemma 23 (ε_3 sweep)'")


def eps3_sweep_rows(traj: Trajectory, geo: Geometry, ph: Phases, lam: float, epsilon: float,
                    hyp: dict[str, bool], eps3s=EPS3_GRID) -> list[CheckResult]:
    """Asymptotic rows of Lemmas 19 and 23 in ``ε_3`` (Lemma 24 (3) follows from Lemma 23 with
    the proof's explicit constant 1 and is checked literally by :func:`lemma24_result`): on
    the same trajectory ``τ_3`` is
    relocated for each ``ε_3`` of ``eps3s`` and the fitted log–log slope of the quantity
    against ``ε_3`` (Lemma 19: against ``ε_3 + ε_4``) must be ``≥ 1`` (``O(ε_3)``) by the rule
    of :func:`proofs_checks.fits.rate_verdict`.  Exclusion rules: ``τ_3`` not ended by its first
    condition (then ``ε_3`` is not what stopped the phase), value at round-off."""
    from ..fits import fit_line, rate_verdict
    from .phases import locate_phases

    pts, excl = [], {}
    for e3 in eps3s:
        pe = locate_phases(traj, geo, lam, epsilon, ph.eps2, e3, ph.delta_prime)
        if pe.tau3 is None or pe.trigger3 != 1:
            excl["τ_3 not ended by condition 1"] = excl.get("τ_3 not ended by condition 1",
                                                            0) + 1
            continue
        pts.append((e3, eps3_quantities(traj, pe)))
    rows = []
    for key, name, what in (("lemma19", "Lemma 19 (ε_3 sweep)", "sup |h − Xβ*| = O(ε_3 + ε_4)"),
                            ("lemma23", "Lemma 23 (ε_3 sweep)", "∫‖D^t‖dt = O(ε_3)")):
        x = np.array([e + (q["eps4"] if key == "lemma19" else 0.0) for e, q in pts])
        v = np.array([q[key] for _, q in pts])
        ok = v > 64 * np.finfo(float).eps
        ex = dict(excl)
        if (~ok).any():
            ex["machine precision"] = int((~ok).sum())
        where = (f"ε_3 ∈ {{{', '.join(f'{e:g}' for e, _ in pts)}}}; {int(ok.sum())} points, "
                 "excluded: " + (", ".join(f"{n} {k}" for k, n in ex.items()) or "none"))
        try:
            f = fit_line(np.log(x[ok]), np.log(v[ok]))
        except ValueError as err:
            rows.append(CheckResult(name, hyp, Verdict.NOT_APPLICABLE, None, 1.0, None, where,
                                    f"{what}: {err}", kind=Kind.ASYMPTOTIC))
            continue
        verdict, why = rate_verdict(f, 1.0)
        if not all(hyp.values()):
            verdict = Verdict.HYPOTHESES_UNMET
        rows.append(CheckResult(name, hyp, verdict, f.slope, 1.0, f.ci[0] - 1.0, where,
                                f"{what}: fitted exponent in "
                                f"{'ε_3 + ε_4' if key == 'lemma19' else 'ε_3'}"
                                f" {f.slope:.4g} CI [{f.ci[0]:.4g}, {f.ci[1]:.4g}], implied "
                                f"constant {math.exp(f.intercept):.3g}; {why}",
                                kind=Kind.ASYMPTOTIC))
    return rows
