"""Early phase (Section 3, Appendices C–E): Lemma 1, Theorem 1 (i)/(ii), Theorem 3, Conditions
1–2, Lemmas 11–13."""

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

from .results import ZERO_TOL, CheckResult, _result, _verdict  # noqa: F401
from .geometry import *  # noqa: F401,F403
from .geometry import _D_by_pattern, _index_at, _outputs, _pattern_of, _r0, _residual, _check_eps  # noqa: F401
from .dataset import assumption1, lemma12_margin  # noqa: F401


# --------------------------------------------------------------------------------------------
# Trajectory checks: Lemma 1, 11, 12, 13, Theorem 1, Theorem 3, Conditions
# --------------------------------------------------------------------------------------------


def check_lemma1(traj: Trajectory, tol: float = 1e-8) -> CheckResult:
    """Lemma 1 (balancedness): ``a_j² − ‖w_j‖²`` is constant.

    Measured: ``max_j`` of :meth:`Trajectory.balancedness_drift` (relative to the neuron's
    largest size) over the snapshots; bound: ``tol``.
    """
    drift = traj.balancedness_drift()
    j = int(np.argmax(drift))
    return _result("Lemma 1", {"trajectory computed to the end": traj.success},
                   drift[j] <= tol, drift[j], tol, tol - drift[j], f"neuron {j}",
                   "max_t |c_j(t) − c_j(0)| / max_t(a_j² + ‖w_j‖²), c = a² − ‖w‖²")


def _eq4(traj: Trajectory) -> bool:
    return bool(np.all(np.abs(traj.a[0]) >= np.linalg.norm(traj.W[0], axis=1) * (1 - 1e-12)))


def _theorem1_hyp(traj: Trajectory, geo: Geometry, lam: float, lam_star: float,
                  saddle: bool = True) -> dict[str, bool]:
    h = {"Assumption 1": assumption1(traj._loss(), traj.y),
         "Lemmas 2, 9, 10 (genericity)": geo.alpha_min > 0 and geo.D_min > 0 and geo.delta0 > 0,
         "Eq. (4) at init": _eq4(traj),
         "λ < λ*": lam < lam_star}
    if saddle:
        h["G has no saddle point"] = not geo.has_saddle
    return h


def check_theorem1_i(traj: Trajectory, geo: Geometry, lam: float, epsilon: float,
                     alpha0: float, statement: str = "Theorem 1 (i)",
                     rel_tol: float = 1e-9) -> CheckResult:
    """Theorem 1 (i): for ``t ≤ τ`` and all ``j``: ``|a_j^0| λ^{2ε} ≤ |a_j^t| ≤ |a_j^0| λ^{−2ε}``
    and ``‖w_j^t‖ ≤ |a_j^t|`` — at every snapshot ``t ≤ τ`` (the run must store a grid on
    ``[0, τ]``).  Margin: smallest of the log-margins and the relative ``(|a| − ‖w‖)/|a|``
    (+ ``rel_tol`` for rounding)."""
    tau = tau_of(lam, epsilon, geo.D_max)
    sel = traj.t <= tau * (1 + 1e-12)
    a0 = np.abs(traj.a[0])
    A = np.abs(traj.a[sel])
    nw = np.linalg.norm(traj.W[sel], axis=2)
    with np.errstate(divide="ignore"):
        lo = np.log(A / a0) - 2 * epsilon * math.log(lam)  # |a^t| ≥ |a^0| λ^{2ε}
        hi = -2 * epsilon * math.log(lam) - np.log(A / a0)  # |a^t| ≤ |a^0| λ^{−2ε}
        bal = (A - nw) / np.where(A > 0, A, 1.0) + rel_tol
    M = np.minimum(np.minimum(lo, hi), bal)
    k, j = np.unravel_index(int(np.argmin(M)), M.shape)
    hyp = _theorem1_hyp(traj, geo, lam, geo.lambda_star(alpha0, epsilon),
                        saddle=statement.startswith("Theorem 1"))
    reached = bool(traj.t[-1] >= tau * (1 - 1e-12))
    hyp["horizon ≥ τ"] = reached
    return _result(statement, hyp, bool(M[k, j] >= 0), float(A[k, j] / a0[j]),
                   lam ** (-2 * epsilon), float(M[k, j]),
                   f"neuron {j}, t={traj.t[sel][k]:.4g} (τ={tau:.4g}, {int(sel.sum())} snapshots)",
                   "log-margins of λ^{2ε} ≤ |a^t|/|a^0| ≤ λ^{−2ε} and (|a|−‖w‖)/|a|")


def _alignment_at_tau(traj: Trajectory, geo: Geometry, i: int) -> tuple[Array, Array, Array]:
    """Per neuron at snapshot ``i``: ``‖D(w,0)‖``, ``<D(w,0), w/a>``, and the anti-alignment
    ``1 + cos(w, D)`` (0 when ``w/‖w‖ = −D/‖D‖``)."""
    r0 = geo.r0
    Dp = _D_by_pattern(traj, i, r0)
    D = np.array([Dp[int(p)] for p in traj.pattern[i]])
    W, a = traj.W[i], traj.a[i]
    nD = np.linalg.norm(D, axis=1)
    g = np.einsum("md,md->m", D, W) / a
    nW = np.linalg.norm(W, axis=1)
    cos = np.einsum("md,md->m", D, W) / np.where(nD * nW > 0, nD * nW, 1.0)
    return nD, g, 1 + cos


def t2_bound(geo: Geometry, alpha0: float) -> float:
    """``4 D_max / (D_min² min(α_min, α_0)²)``: the proof's bound on the time ``t_2`` after which
    a neuron sits in a critical face (Appendix D.7); the extremality claim of Theorem 1 (ii) is
    proved only when ``t_2 ≤ τ``."""
    return 4 * geo.D_max / (geo.D_min**2 * min(geo.alpha_min, alpha0) ** 2)


def check_theorem1_ii(traj: Trajectory, geo: Geometry, lam: float, epsilon: float,
                      alpha0: float, theorem3: bool = False) -> list[CheckResult]:
    """Theorem 1 (ii) (or Theorem 3 (ii)) at ``τ`` for every neuron satisfying Condition 1
    (Condition 2, point 1), split in two results.

    * ``… alignment``: ``‖D‖ ≥ <D, w/a> ≥ ‖D‖ − c λ^{‖D‖ε/D_max}`` with ``D = D(w_j^τ, 0)`` and
      ``c = c_{α_0}`` of Eq. (37) (``c`` of Eq. (40)), or ``w/‖w‖ = −D/‖D‖``, or ``D = 0``.
      Margin: smallest ``<D, w/a> − (‖D‖ − c λ^{…})``.
    * ``… extremal``: ``D`` is ``0`` or an extremal vector (Thm 3: extremal) whose direction is
      a local max (min) of ``G`` for ``a_j^0 > 0`` (``< 0``); extra hypothesis
      ``τ ≥`` :func:`t2_bound` (the proof's case ``t_2 ≤ τ``; see the catalogue's readings).
      Measured: number of failing neurons.
    """
    statement = "Theorem 3 (ii)" if theorem3 else "Theorem 1 (ii)"
    tau = tau_of(lam, epsilon, geo.D_max)
    i = _index_at(traj, tau)
    if theorem3:
        sel, _ = condition2_point1(traj)
        c, a_eff = geo.c_theorem3(), 1.0
    else:
        sel, _ = condition1(traj, alpha0)
        c, a_eff = geo.c_alpha0(alpha0), alpha0
    hyp = _theorem1_hyp(traj, geo, lam, geo.lambda_star(a_eff, epsilon), saddle=not theorem3)
    names = (statement + " alignment", statement + " extremal")
    if not sel.any():
        return [CheckResult(s, hyp, "not applicable", note="no neuron satisfies the condition")
                for s in names]
    nD, g, anti = _alignment_at_tau(traj, geo, i)
    bound = nD - c * lam ** (nD * epsilon / geo.D_max)
    upper_ok = g <= nD * (1 + ZERO_TOL) + ZERO_TOL * geo.D_max
    anti_ok = anti <= 1e-8
    zeroD = nD <= ZERO_TOL * geo.D_max
    fail_al = sel & ~zeroD & ~anti_ok & ~((g >= bound) & upper_ok)
    margin = np.where(sel & ~zeroD & ~anti_ok, g - bound, np.inf)
    j = int(np.argmin(margin))
    vac = bool(np.all(c * lam ** (nD[sel] * epsilon / geo.D_max) >= 2 * geo.D_max))
    res = [_result(names[0], hyp, not fail_al.any(), float(np.min(nD[sel] - g[sel])),
                   float(c * lam ** (epsilon * np.max(nD[sel]) / geo.D_max)),
                   float(np.min(margin)) if np.isfinite(margin).any() else math.inf,
                   f"neuron {j} at τ={tau:.4g}; {int(sel.sum())} neurons, "
                   f"{int((sel & zeroD).sum())} with D=0, "
                   f"{int((sel & anti_ok).sum())} anti-aligned",
                   f"measured = min ‖D‖ − <D, w/a>; c = {c:.4g} "
                   f"({'Eq. (40)' if theorem3 else 'Eq. (37)'})"
                   + ("; the bound is vacuous here (c λ^{…} ≥ 2 D_max)" if vac else ""))]
    fail_ex = np.zeros(traj.m, bool)
    for j in np.flatnonzero(sel):
        if zeroD[j] and not theorem3:
            continue
        u = traj.patterns[traj.pattern[i, j]]
        f = next((f for f in geo.faces if np.array_equal(f.u, u)), None)
        want = "max" if traj.a[0, j] > 0 else "min"
        fail_ex[j] = f is None or f.extremal == 0 or not (f.kind == want or theorem3)
    hyp2 = dict(hyp)
    tb = t2_bound(geo, a_eff)
    hyp2[f"τ ≥ t_2 bound ({tb:.4g})"] = tau >= tb
    k = int(np.argmax(fail_ex))
    res.append(_result(names[1], hyp2, not fail_ex.any(), int(fail_ex.sum()), 0,
                       -int(fail_ex.sum()),
                       (f"neuron {k}, u={traj.patterns[traj.pattern[i, k]].tolist()}"
                        if fail_ex.any() else f"{int(sel.sum())} neurons") + f", τ={tau:.4g}",
                       "measured = number of neurons whose face at τ is neither D=0 nor an "
                       "extremal face of the right type"))
    return res


def check_condition(traj: Trajectory, alpha0: float, which: int = 1) -> CheckResult:
    """Condition 1 (for ``α_0``) or Condition 2 (point 1) per neuron: measured fraction of
    neurons satisfying it; the worst neuron's margin.  Verdict ``holds`` if every neuron
    satisfies it (a property of the initialisation, not a claim of the paper)."""
    if which == 1:
        ok, margin = condition1(traj, alpha0)
        st = "Condition 1"
    else:
        ok, margin = condition2_point1(traj)
        st = "Condition 2"
    j = int(np.argmin(margin))
    note = ("point 2 (a zero neuron stays zero) checked on snapshots" if which == 1 else
            "point 2 (no spontaneous exit from a face) is the integrator's sliding rule, not "
            "checked")
    return CheckResult(st, {f"all neurons satisfy {st}": bool(ok.all())},
                       "holds" if ok.all() else "hypotheses unmet", float(ok.mean()), 1.0,
                       float(margin[j]), f"neuron {j}; {int(ok.sum())}/{ok.size} satisfy it",
                       note + "; measured = fraction satisfying it (a property of the "
                       "initialisation, not a claim; the theorems are checked on those)")


def check_lemma11(traj: Trajectory, geo: Geometry, delta0: float | None = None) -> CheckResult:
    """Lemma 11 at every snapshot where ``(1/n) Σ ‖h_θ(x_k) x_k‖ < δ_0``: for every face ``u``,
    ``D_u = 0 ⇒ D_u^θ = 0``; ``D_u ∈ A^{-1}(u) ⇒ D_u^θ ∈ A^{-1}(u)``;
    ``D_u ∈ −A^{-1}(u) ⇒ D_u^θ ∈ −A^{-1}(u)``.  ``delta0`` overrides ``geo.delta0`` (to feed a
    wrong constant).  Margin: smallest over checked (snapshot, face) of
    ``min_{u_k≠0} u_k<±D^θ, x_k>/‖x_k‖`` minus ``max_{u_k=0}|<D^θ, x_k>|/‖x_k‖`` (relative)."""
    d0 = geo.delta0 if delta0 is None else float(delta0)
    X = traj.X
    nx = np.linalg.norm(X, axis=1)
    worst, where, checked = math.inf, "", 0
    for i in range(traj.t.size):
        W, a = traj.W[i], traj.a[i]
        h = _outputs(W, a, X, traj.gamma)
        if np.mean(np.abs(h) * nx) >= d0:
            continue
        r = np.asarray(traj._loss().derivative(h, traj.y), float)
        checked += 1
        for f in geo.faces:
            nD = np.linalg.norm(f.D)
            Dt = minimal_norm_on_face(f.u, X, r, traj.gamma).D
            if nD <= ZERO_TOL * geo.D_max:
                m = -np.linalg.norm(Dt) / geo.D_max + ZERO_TOL
            elif f.extremal:
                v = f.extremal * Dt
                s = (X @ v) / nx
                nz = f.u != 0
                inside = float(np.min(f.u[nz] * s[nz])) if nz.any() else math.inf
                on = float(np.max(np.abs(s[~nz]))) if (~nz).any() else 0.0
                m = min(inside, -(on - ZERO_TOL * max(np.linalg.norm(Dt), 1e-300))) / geo.D_max
            else:
                continue
            if m < worst:
                worst, where = m, f"t={traj.t[i]:.4g}, u={f.u.tolist()}"
    if checked == 0:
        return CheckResult("Lemma 11", {}, "not applicable",
                           note="no snapshot satisfies (1/n)Σ‖h x_k‖ < δ_0")
    return _result("Lemma 11", {"δ_0 > 0": d0 > 0}, worst >= 0, worst, 0.0, worst,
                   f"{where} ({checked} snapshots)", "implications 1–3 for every face")


def check_lemma12(traj: Trajectory, geo: Geometry, lam: float, epsilon: float) -> CheckResult:
    """Lemma 12 at ``θ = 0`` and at every snapshot ``t ≤ τ`` satisfying its conditions
    (Lemma 11's and ``|h_θ(x_k)| < |∂_1 l(0, y_k)|``); ``d = 2``: the critical manifolds with a
    nontrivial orthogonal complement are the rays (arcs have ``M̄^⊥ = {0}``)."""
    X = traj.X
    if X.shape[1] != 2:
        return CheckResult("Lemma 12", {}, "not checked",
                           note="critical manifolds with dim M̄^⊥ > 1 (d > 2) not implemented")
    nx = np.linalg.norm(X, axis=1)
    worst, where = lemma12_margin(geo, X, geo.r0)
    where = "θ=0, " + where
    tau = tau_of(lam, epsilon, geo.D_max)
    for i in np.flatnonzero(traj.t <= tau):
        h = _outputs(traj.W[i], traj.a[i], X, traj.gamma)
        if np.mean(np.abs(h) * nx) >= geo.delta0 or np.any(np.abs(h) >= np.abs(geo.r0)):
            continue
        m, wh = lemma12_margin(geo, X, np.asarray(traj._loss().derivative(h, traj.y)))
        if m < worst:
            worst, where = m, f"t={traj.t[i]:.4g}, {wh}"
    if not math.isfinite(worst):
        worst = 0.0
        where = "no critical ray"
    return _result("Lemma 12", {"G has no saddle point": not geo.has_saddle},
                   worst >= -ZERO_TOL * geo.D_max, worst, 0.0, worst, where,
                   "∃ε_M: ε_M <v, D^θ_{u(v)}> ≤ 0 for v = ±J·dir(M) on each critical ray")


def check_lemma13(traj: Trajectory, geo: Geometry, lam: float, epsilon: float) -> CheckResult:
    """Lemma 13 (invariance) on the snapshots ``t ≤ τ``: once
    ``a_j D(w_j^t, θ^t) ∈ A^{-1}(A(w_j^t)) ∪ {0}`` with ``w_j^t ≠ 0``, the face of ``w_j`` stays
    the same at every later snapshot ``≤ τ``.  Measured: number of neurons leaving their face."""
    tau = tau_of(lam, epsilon, geo.D_max)
    idx = np.flatnonzero(traj.t <= tau * (1 + 1e-12))
    X = traj.X
    m = traj.m
    locked = np.full(m, -1)
    bad, where = 0, ""
    for i in idx:
        r = _residual(traj, traj.W[i], traj.a[i])
        Dp = _D_by_pattern(traj, i, r)
        for j in range(m):
            p = int(traj.pattern[i, j])
            if locked[j] >= 0:
                if p != locked[j]:
                    bad += 1
                    where = where or f"neuron {j} leaves u={traj.patterns[locked[j]].tolist()} " \
                                     f"at t={traj.t[i]:.4g}"
                    locked[j] = p
                continue
            u = traj.patterns[p]
            if not np.any(u):
                continue
            v = traj.a[i, j] * Dp[p]
            if np.linalg.norm(v) <= ZERO_TOL * abs(traj.a[i, j]) * geo.D_max or np.array_equal(
                    _pattern_of(v, X), u):
                locked[j] = p
    hyp = _theorem1_hyp(traj, geo, lam, geo.lambda_star(1.0, epsilon))
    return _result("Lemma 13", hyp, bad == 0, bad, 0, -bad,
                   where or f"{int((locked >= 0).sum())} neurons locked on {idx.size} "
                   "snapshots ≤ τ",
                   "face constancy after the inclusion a D(w,θ) ∈ A^{-1}(A(w)) ∪ {0}")
