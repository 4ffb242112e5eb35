"""Late phase (Section 4.1 Phase 3, Appendix F.4): Lemma 7, Theorems 2 and 4, Lemmas 19–24."""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pwflow.data import Dataset
from pwflow.model import Loss, activation, get_loss
from pwflow.subgradient import activation_pattern, minimal_norm_on_face
from pwflow.trajectory import Trajectory

Array = NDArray[np.float64]

from .results import ZERO_TOL, CheckResult, Kind, Verdict, _result, _verdict  # noqa: F401
from .geometry import *  # noqa: F401,F403
from .geometry import _index_at, _outputs  # noqa: F401
from .dataset import in_assumption3  # noqa: F401
from .phases import Phases, _sec4_hyp, _window  # noqa: F401


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


def _fit_rate(t: Array, v: Array) -> tuple[float, float]:
    """Least-squares slope of ``log v`` against ``t`` (decay rate) and its standard error."""
    sel = v > 0
    t, lv = t[sel], np.log(v[sel])
    if t.size < 3:
        return math.nan, math.nan
    A = np.vstack([t, np.ones_like(t)]).T
    coef, res, *_ = np.linalg.lstsq(A, lv, rcond=None)
    dof = max(t.size - 2, 1)
    s2 = float(np.sum((lv - A @ coef) ** 2)) / dof
    se = math.sqrt(s2 / float(np.sum((t - t.mean()) ** 2)))
    return -float(coef[0]), se


def phase3_series(traj: Trajectory, ph: Phases) -> dict[str, Array]:
    """On the snapshots of ``[τ_3, T]``: ``R_t`` (Appendix F.4), ``L − L_β*``, ``‖D^t‖``,
    ``‖θ^t − θ^{τ_3}‖``, ``max |h − Xβ*|``, ``max_𝓘 ‖𝗐_i^t − 𝗐_i^{τ_3}‖`` and the squared
    gradient norm (convention ``σ'(0) = 0``)."""
    from pwflow.model import gradient

    X, y = traj.X, traj.y
    idx = _window(traj, ph.tau3, traj.t[-1])
    W3, a3 = ph.state3
    Lb = 0.5 * np.mean((X @ ph.beta_star - y) ** 2)
    out = {k: [] for k in ("t", "R", "gap", "Dnorm", "dtheta", "herr", "dw", "g2")}
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
    return {k: np.asarray(v, float) for k, v in out.items()}


def check_phase3(traj: Trajectory, data: Dataset, geo: Geometry, ph: Phases, lam: float,
                 epsilon: float, alpha0: float, roundoff: float = 1e-13) -> list[CheckResult]:
    """Lemmas 19–24 on ``[τ_3, T]``.

    * Lemma 21 (explicit part): ``‖g_t‖² ≥ σ_min(H)‖β*‖ (L − L_β*)`` at every snapshot with
      ``L − L_β* > roundoff`` (the ``O(λ^{2(1−ε)} e^{−c_4 t/4})`` correction is dropped: a
      failure there is reported as ``violated`` only if it exceeds ``λ^{2(1−ε)}``).
    * Lemma 22: the fitted decay rate of ``L − L_β*`` must be ``≥ σ_min(H)‖β*‖/2 ≥ a``
      (sufficient); lower rates are ``not checked`` (``c_4`` is not computed here).
    * Lemmas 19, 20, 23, 24: ``O(·)`` only — measured ratios, ``not checked``.
    """
    hyp = _sec4_hyp(traj, data, lam, geo.lambda_star(alpha0, epsilon))
    names = ("Lemma 19", "Lemma 20", "Lemma 21", "Lemma 22", "Lemma 23", "Lemma 24")
    if ph.tau3 is None:
        return [CheckResult(s, hyp, "not applicable", note="τ_3 not reached") for s in names]
    s = phase3_series(traj, ph)
    X = traj.X
    H = X.T @ X / X.shape[0]
    smin = float(np.linalg.eigvalsh(H)[0])
    kappa = smin * float(np.linalg.norm(ph.beta_star))
    eps4 = float(np.max(s["dtheta"]))
    out = []
    out.append(CheckResult("Lemma 19", hyp, "not checked", float(np.max(s["herr"])),
                           ph.eps3 + eps4, None, f"[τ_3, T], ε_4 := sup‖θ−θ^τ3‖ = {eps4:.3g}",
                           "O(ε_3 + ε_4): measured sup |h − Xβ*|"))
    rate_R, se_R = _fit_rate(s["t"], s["R"])
    out.append(CheckResult("Lemma 20", hyp, "not checked", float(np.max(s["R"])),
                           lam ** (2 * (1 - epsilon)), None, "[τ_3, T]",
                           f"sup R_t; fitted decay rate {rate_R:.3g} ± {se_R:.2g} "
                           "(c_4 not computed; R ≡ 0 when no neuron is mixed)"))
    sel = s["gap"] > roundoff
    if sel.any():
        ratio = s["g2"][sel] / s["gap"][sel]
        k = int(np.argmin(ratio))
        slack = (s["g2"][sel] - kappa * s["gap"][sel])[k]
        ok = bool(np.all(s["g2"][sel] - kappa * s["gap"][sel] >= -lam ** (2 * (1 - epsilon))))
        out.append(_result("Lemma 21", hyp, ok, float(ratio[k]), kappa, float(slack),
                           f"t={s['t'][sel][k]:.5g}",
                           "min ‖g‖²/(L − L_β*) vs σ_min(H)‖β*‖ (correction ≤ λ^{2(1−ε)})"))
        rate, se = _fit_rate(s["t"][sel], s["gap"][sel])
        ok22 = rate - 2 * se >= kappa / 2
        out.append(CheckResult("Lemma 22", hyp, _verdict(hyp, True) if ok22 else "not checked",
                               rate, kappa / 2, rate - kappa / 2, "[τ_3, T]",
                               f"fitted decay rate of L − L_β* ({rate:.4g} ± {se:.2g}) vs "
                               "σ_min(H)‖β*‖/2 ≥ a; below it only c_4/4 could decide"))
    else:
        out.append(CheckResult("Lemma 21", hyp, "not applicable", note="L − L_β* at roundoff"))
        out.append(CheckResult("Lemma 22", hyp, "not applicable", note="L − L_β* at roundoff"))
    integral = float(np.trapezoid(s["Dnorm"], s["t"])) if s["t"].size > 1 else 0.0
    out.append(CheckResult("Lemma 23", hyp, "not checked", integral, ph.eps3, None, "[τ_3, T]",
                           f"∫‖D^t‖dt = O(ε_3): ratio {integral / ph.eps3:.3g}"))
    out.append(CheckResult("Lemma 24", hyp, "not checked", float(np.max(s["dw"])), ph.eps3, None,
                           "[τ_3, T]", f"max_𝓘 ‖𝗐^t − 𝗐^τ3‖ = O(ε_3): ratio "
                           f"{np.max(s['dw']) / ph.eps3:.3g}"))
    return out
