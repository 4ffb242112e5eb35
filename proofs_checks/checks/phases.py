"""Section 4.1 phases (Appendix F.1–F.3): phase times ``τ``, ``τ_2``, ``τ_3``; Lemmas 4, 5, 6,
15–18."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pwflow import theory
from pwflow.data import Dataset
from pwflow.trajectory import Trajectory

from .dataset import assumptions456
from .early import _eq4
from .geometry import (
    Geometry,
    _index_at,
    condition1,
    tau_of,
)
from .results import CheckResult, Verdict, _result

Array = NDArray[np.float64]


@dataclass
class Phases:
    """Sets ``𝓘``, ``𝓝``, vectors ``D*``, ``β*`` and the phase times of Section 4.1.

    ``tau2``: first ``t ≥ τ`` with ``Σ_𝓘 a_i² ≥ ε_2`` (Lemma 5); ``tau3``: first ``t ≥ τ_2``
    where one of the four conditions of the definition of ``τ_3`` (proof of Lemma 6) holds;
    ``trigger3``: which (1: ``‖β* − Σ_{𝓘∪𝓝} a w‖ ≤ ε_3``, 2: pairwise alignment
    ``≤ 1 − λ^ε``, 3: ``<𝗐_i, x_k> ≤ δ'‖x_k‖``, 4: ``Σ_𝓝 a² ≥ λ^{2(1−ε)}``).  ``None`` when not
    reached within the horizon.  Located by bisection on the dense solution to ``1e-9``.
    """

    I: NDArray[np.bool_]  # noqa: E741  (the paper's 𝓘)
    N: NDArray[np.bool_]
    D_star: Array
    beta_star: Array
    tau: float
    tau2: float | None
    tau3: float | None
    trigger3: int | None
    state2: tuple[Array, Array] | None
    state3: tuple[Array, Array] | None
    eps2: float
    eps3: float
    delta_prime: float


def _tau3_trigger(W, a, ph_I, ph_N, X, beta, lam, eps, eps3, dprime,
                  conds: tuple[int, ...] = (1, 2, 3, 4)) -> int:
    """Index (1–4) of the first true condition (among ``conds``) in the definition of
    ``τ_3`` (proof of Lemma 6), 0 if none."""
    if 1 in conds and np.linalg.norm(beta - (a[ph_I | ph_N] @ W[ph_I | ph_N])) <= eps3:
        return 1
    Wn = W[ph_I] / a[ph_I, None]
    if 2 in conds and Wn.shape[0] and np.min(Wn @ Wn.T) <= 1 - lam**eps:
        return 2
    if 3 in conds and Wn.shape[0] and np.any(Wn @ X.T <= dprime * np.linalg.norm(X, axis=1)):
        return 3
    if 4 in conds and np.sum(a[ph_N] ** 2) >= lam ** (2 * (1 - eps)):
        return 4
    return 0


def paper_tau2(traj: Trajectory, ph: "Phases", lam: float) -> tuple[float | None, Any, int]:
    """``τ_2`` by the paper's own definition (proof of Lemma 5):
    ``inf{t ≥ τ : Σ_𝓘 a² ≥ ε_2 or Σ_𝓝 a² ≥ 2λ²}``; returns ``(τ_2, state, which)`` with
    ``which`` 1 (the 𝓘 condition) or 2 (the 𝓝 condition), ``(None, None, 0)`` if never."""
    def pred(W, a):
        return np.sum(a[ph.I] ** 2) >= ph.eps2 or np.sum(a[ph.N] ** 2) >= 2 * lam**2

    t, st = _first_time(traj, ph.tau, pred)
    if t is None:
        return None, None, 0
    return t, st, 1 if np.sum(st[1][ph.I] ** 2) >= ph.eps2 * (1 - 1e-9) else 2


def _first_time(traj: Trajectory, t_from: float, pred) -> tuple[float | None, Any]:
    """First time ``≥ t_from`` with ``pred(W, a)`` truthy: snapshot scan then bisection."""
    idx = np.flatnonzero(traj.t >= t_from)
    prev_t = t_from
    prev_state = traj.state(t_from)
    if pred(*prev_state):
        return t_from, prev_state
    for i in idx:
        if pred(traj.W[i], traj.a[i]):
            lo, hi = prev_t, float(traj.t[i])
            hs = (traj.W[i], traj.a[i])
            while hi - lo > 1e-9 * max(1.0, hi):
                mid = 0.5 * (lo + hi)
                s = traj.state(mid)
                if pred(*s):
                    hi, hs = mid, s
                else:
                    lo = mid
            return hi, hs
        prev_t = float(traj.t[i])
    return None, None


def locate_phases(traj: Trajectory, geo: Geometry, lam: float, epsilon: float, eps2: float,
                  eps3: float, delta_prime: float) -> Phases:
    """Locate ``τ``, ``τ_2``, ``τ_3`` of Section 4.1 on the trajectory from their definitions."""
    for name, v in (("eps2", eps2), ("eps3", eps3), ("delta_prime", delta_prime)):
        if not v > 0:
            raise ValueError(f"{name} must be positive, got {v!r}")
    X, y = traj.X, traj.y
    n = X.shape[0]
    I = (traj.a[0] > 0) & np.any(traj.W[0] @ X.T > 0, axis=1)  # noqa: E741  (𝓘)
    N = traj.a[0] < 0
    D_star = y @ X / n
    beta = theory.beta_star(X, y)
    if beta is None:
        raise ValueError("the data matrix X is rank deficient: β* (Theorem 2) is not unique")
    tau = tau_of(lam, epsilon, geo.D_max)
    t2, s2 = _first_time(traj, tau, lambda W, a: np.sum(a[I] ** 2) >= eps2)
    t3 = s3 = trig = None
    if t2 is not None:
        t3, s3 = _first_time(traj, t2, lambda W, a: _tau3_trigger(
            W, a, I, N, X, beta, lam, epsilon, eps3, delta_prime) > 0)
        if t3 is not None:
            trig = _tau3_trigger(*s3, I, N, X, beta, lam, epsilon, eps3, delta_prime)
    return Phases(I, N, D_star, beta, tau, t2, t3, trig, s2, s3, eps2, eps3, delta_prime)


#: Assumptions needed by each Section 4 statement in its Appendix F generality.
_NEEDS = {"Lemma 4": 4, "Lemma 15": 4, "Lemma 5": 5, "Lemma 6": 5, "Lemma 16": 5, "Lemma 17": 5,
          "Lemma 18": 5}


def _sec4_hyp(traj: Trajectory, data: Dataset, lam: float, lam_star: float,
              statement: str = "Lemma 7") -> dict[str, bool]:
    """Hypotheses of a Section 4 statement: square loss and ReLU, Assumptions 4 (Lemmas 4, 15),
    4–5 (Lemmas 5, 6, 16–18) or 4–6 (Lemmas 7, 19–24, Theorem 4), Eq. (4), ``λ < λ*_{α_0}``
    (a computable necessary part of ``λ < λ̃``)."""
    upto = _NEEDS.get(statement, 6)
    a = {k: v for k, v in assumptions456(data).items() if int(k[-1]) <= upto}
    return {"square loss, ReLU": traj.loss_name == "square" and traj.gamma == 0.0, **a,
            "Eq. (4) at init": _eq4(traj), "λ < λ*": lam < lam_star}


def check_lemma4(traj: Trajectory, data: Dataset, geo: Geometry, ph: Phases, lam: float,
                 epsilon: float, alpha0: float) -> list[CheckResult]:
    """Lemma 4 at ``τ``, two literal rows.

    * ``Lemma 4 (1) alignment``: for ``i ∈ 𝓘``: ``‖D*‖ − <D*, w_i/a_i> ≤ c_{α_0} λ^ε`` (the
      ``O(λ^ε)`` made explicit with Theorem 1's Eq. (37)) — :func:`early.alignment_result`,
      ``vacuous`` when ``c_{α_0} λ^ε ≥ 2‖D*‖``; the rate is the asymptotic row of the sweep.
    * ``Lemma 4 (1) norms, (2), (3)``: ``a_i^0 ≤ a_i^τ ≤ a_i^0 λ^{−2ε}`` on 𝓘;
      ``a_i^0 ≤ a_i^τ ≤ 0`` on 𝓝; the other neurons never move (all snapshots, exactly).
    """
    from .early import alignment_result

    i = _index_at(traj, ph.tau)
    W, a = traj.W[i], traj.a[i]
    a0 = traj.a[0]
    nDs = float(np.linalg.norm(ph.D_star))
    mis = nDs - (W @ ph.D_star) / a
    _, m1 = condition1(traj, alpha0)
    hyp = _sec4_hyp(traj, data, lam, geo.lambda_star(alpha0, epsilon), "Lemma 4")
    hyp["every i ∈ 𝓘 satisfies Condition 1(α_0)"] = bool(np.all(m1[ph.I] > 0))
    c = geo.c_alpha0(alpha0)
    with np.errstate(over="ignore"):
        bound = np.full(traj.m, c * lam**epsilon)
    al = alignment_result("Lemma 4 (1) alignment", hyp, mis, np.full(traj.m, nDs), bound, ph.I,
                          lambda j: f"neuron {j} at τ={ph.tau:.4g}",
                          f"measured = max_𝓘 ‖D*‖ − <D*, w/a> (|𝓘|={int(ph.I.sum())}); "
                          "bound c_{α₀} λ^ε (Eq. (37)); the O(λ^ε) rate: asymptotic row",
                          "c_{α₀} λ^ε (Eq. (37))")
    lo = np.where(ph.I, a / a0 - 1, np.inf)  # a^τ ≥ a^0 on 𝓘
    hi = np.where(ph.I, lam ** (-2 * epsilon) - a / a0, np.inf)
    ok2 = ~ph.N | ((a >= a0 * (1 + 1e-12)) & (a <= 0))
    rest = ~(ph.I | ph.N)
    moved = np.any(traj.W[:, rest] != traj.W[0, rest], axis=(0, 2)) | np.any(
        traj.a[:, rest] != a0[rest], axis=0)
    marg = np.minimum(lo + 1e-12, hi)
    j = int(np.argmin(marg))
    ok = bool(np.all(marg >= 0) and ok2.all() and not moved.any())
    nbad = int((marg < 0).sum() + (~ok2).sum() + moved.sum())
    where = (f"neuron {j} (𝓘 norms), {int((~ok2).sum())} 𝓝 neurons out of [a⁰, 0], "
             f"{int(moved.sum())} other neurons moved; τ={ph.tau:.4g}")
    return [al, _result("Lemma 4 (1) norms, (2), (3)", hyp, ok, nbad, 0,
                        float(marg[j]) if ph.I.any() else 0.0, where,
                        "measured = number of failing neurons; margin = min over 𝓘 of "
                        "min(a^τ/a⁰ − 1, λ^{−2ε} − a^τ/a⁰)")]


def check_lemma5(traj: Trajectory, data: Dataset, geo: Geometry, ph: Phases, lam: float,
                 epsilon: float, alpha0: float) -> list[CheckResult]:
    """Lemma 5 at ``τ_2``, three rows.

    * ``Lemma 5 (1)``: ``Σ_𝓘 a² = ε_2`` at the package's ``τ_2`` — ``by construction`` (that
      ``τ_2`` is the first ``t ≥ τ`` with ``Σ_𝓘 a² ≥ ε_2``).
    * ``Lemma 5 (1) paper τ_2`` (independent): ``τ_2`` by the paper's definition,
      ``inf{t ≥ τ : Σ_𝓘 a² ≥ ε_2 or Σ_𝓝 a² ≥ 2λ²}`` (:func:`paper_tau2`), exists and is ended
      by the 𝓘 condition (the proof shows the 𝓝 one cannot break first).  Margin:
      ``1 − Σ_𝓝 a² / (2λ²)`` at that time.
    * ``Lemma 5 (2), (4)``: ``min_{i∈𝓘,k} <𝗐_i, x_k> > 0`` (its ``Ω(1)`` size measured) and
      ``a_i^0 ≤ a_i^{τ_2} ≤ 0`` on 𝓝.  Item 3 (``O(λ^{1−ε})``) is the asymptotic row.

    The range ``ε_2 ∈ [c'λ^{ε/2}, ε_2*]`` involves unspecified constants and is not checked."""
    hyp = _sec4_hyp(traj, data, lam, geo.lambda_star(alpha0, epsilon), "Lemma 5")
    names = ("Lemma 5 (1)", "Lemma 5 (1) paper τ_2", "Lemma 5 (2), (4)")
    if ph.tau2 is None:
        long = all(hyp.values()) and traj.success and traj.t[-1] > 10 * ph.tau
        return [CheckResult(s, hyp, Verdict.VIOLATED if long else Verdict.NOT_APPLICABLE,
                            note=f"Σ_𝓘 a² never reached ε_2={ph.eps2:g} by t={traj.t[-1]:.4g}")
                for s in names]
    W, a = ph.state2
    s1 = float(np.sum(a[ph.I] ** 2))
    ok1 = ph.tau2 > ph.tau and abs(s1 - ph.eps2) <= 1e-6 * ph.eps2
    out = []
    if ok1 and all(hyp.values()):
        out.append(CheckResult(names[0], hyp, Verdict.BY_CONSTRUCTION, s1, ph.eps2,
                               ph.eps2 - s1, f"τ_2={ph.tau2:.6g}", "Σ_𝓘 a² at τ_2",
                               detail="τ_2 is located as the first t ≥ τ with Σ_𝓘 a² ≥ ε_2; "
                                      "independent row: Lemma 5 (1) paper τ_2"))
    else:
        out.append(_result(names[0], hyp, ok1, s1, ph.eps2, ph.eps2 - s1, f"τ_2={ph.tau2:.6g}",
                           "Σ_𝓘 a² at τ_2"))
    tp, stp, which = paper_tau2(traj, ph, lam)
    if tp is None:
        out.append(_result(names[1], hyp, False, note="the paper's τ_2 is not reached"))
    else:
        sn = float(np.sum(stp[1][ph.N] ** 2))
        out.append(_result(names[1], hyp, which == 1 and tp > ph.tau, sn, 2 * lam**2,
                           1 - sn / (2 * lam**2),
                           f"τ_2={tp:.6g} ended by the {'𝓘' if which == 1 else '𝓝'} condition",
                           "measured = Σ_𝓝 a² at the paper's τ_2 (must stay < 2λ², "
                           "Σ_𝓘 a² reaching ε_2 first)"))
    Wn = W[ph.I] / a[ph.I, None]
    corr = float(np.min(Wn @ traj.X.T))
    align = float(1 - np.min(Wn @ Wn.T))
    a0 = traj.a[0]
    bad4 = ph.N & ~((a >= a0 * (1 + 1e-12)) & (a <= 0))
    out.append(_result(names[2], hyp, bool(corr > 0 and not bad4.any()), corr, 0.0, corr,
                       f"τ_2={ph.tau2:.6g}; {int(bad4.sum())} 𝓝 neurons out of [a⁰, 0]",
                       f"measured = min_{{i∈𝓘,k}} <𝗐_i, x_k>; item 3: 1 − min<𝗐_i,𝗐_j> = "
                       f"{align:.3g} (ratio to λ^(1−ε): {align / lam ** (1 - epsilon):.3g}), "
                       "its O(λ^{1−ε}) rate is the asymptotic row"))
    return out


def check_lemma6(traj: Trajectory, data: Dataset, geo: Geometry, ph: Phases, lam: float,
                 epsilon: float, alpha0: float) -> list[CheckResult]:
    """Lemma 6 at ``τ_3``, three rows.

    * ``Lemma 6 (1)``: ``‖β* − Σ_𝓘 a w‖ ≤ ε_3`` (+ ``Σ_𝓝 a²``, reading 5) — ``by construction``
      when the first condition of ``τ_3``'s definition is the one that fired;
    * ``Lemma 6 (1) first condition fires`` (independent): among the four conditions of the
      paper's definition of ``τ_3`` the first one fires (the proof shows 2–4 cannot);
    * ``Lemma 6 (3)``: ``a_i^0 λ^{−ε} < a_i^{τ_3} ≤ 0`` on 𝓝 (item 2, ``> δ'``, is condition 3
      of the stopping rule: see Lemma 17's independent row).

    ``ε_3 ≥ λ^{c_3 ε ε_2}`` (``c_3`` unspecified) is not checked."""
    hyp = _sec4_hyp(traj, data, lam, geo.lambda_star(alpha0, epsilon), "Lemma 6")
    names = ("Lemma 6 (1)", "Lemma 6 (1) first condition fires", "Lemma 6 (3)")
    if ph.tau3 is None:
        return [CheckResult(s, hyp, Verdict.NOT_APPLICABLE,
                            note="τ_2 or τ_3 not reached within the horizon") for s in names]
    W, a = ph.state3
    err = float(np.linalg.norm(ph.beta_star - a[ph.I] @ W[ph.I]))
    slack = float(np.sum(a[ph.N] ** 2))  # ‖Σ_𝓝 a w‖ ≤ Σ_𝓝 a² (reading: τ_3 uses 𝓘 ∪ 𝓝)
    bound = ph.eps3 + slack
    ok1 = err <= bound * (1 + 1e-9)
    where = f"τ_3={ph.tau3:.6g} (trigger {ph.trigger3})"
    if ok1 and ph.trigger3 == 1 and all(hyp.values()):
        r1 = CheckResult(names[0], hyp, Verdict.BY_CONSTRUCTION, err, bound, bound - err, where,
                         "‖β* − Σ_𝓘 a w‖ at τ_3",
                         detail="condition 1 of τ_3's stopping rule is ‖β* − Σ_{𝓘∪𝓝} a w‖ ≤ "
                                "ε_3; independent row: Lemma 6 (1) first condition fires")
    else:
        r1 = _result(names[0], hyp, ok1, err, bound, bound - err, where, "‖β* − Σ_𝓘 a w‖ at τ_3")
    r2 = _result(names[1], hyp, ph.trigger3 == 1, ph.trigger3, 1, 1.0 if ph.trigger3 == 1
                 else -1.0, where, "which of the four conditions of τ_3 fired first (1: ‖β* − "
                 "Σ a w‖ ≤ ε_3, 2: pairwise alignment ≤ 1 − λ^ε, 3: <𝗐_i, x_k> ≤ δ'‖x_k‖, "
                 "4: Σ_𝓝 a² ≥ λ^{2(1−ε)})")
    a0 = traj.a[0]
    bad3 = ph.N & ~((a > a0 * lam ** (-epsilon)) & (a <= 0))
    r3 = _result(names[2], hyp, not bad3.any(), int(bad3.sum()), 0, -int(bad3.sum()), where,
                 "number of 𝓝 neurons outside (a⁰λ^{−ε}, 0]")
    return [r1, r2, r3]


def _window(traj: Trajectory, t0: float, t1: float) -> NDArray[np.intp]:
    return np.flatnonzero((traj.t >= t0) & (traj.t <= t1))


def _min_corr(states, sel, X) -> tuple[float, int]:
    """Smallest ``<𝗐_i, x_k>/‖x_k‖`` over the neurons ``sel`` and the states, and where."""
    nx = np.linalg.norm(X, axis=1)
    vals = [float(np.min((W[sel] / a[sel, None]) @ X.T / nx)) for W, a in states]
    k = int(np.argmin(vals))
    return vals[k], k


def check_lemma17_18(traj: Trajectory, data: Dataset, geo: Geometry, ph: Phases, lam: float,
                     epsilon: float, alpha0: float) -> list[CheckResult]:
    """Lemma 17 (``<𝗐_i, x_k> > δ'‖x_k‖`` on ``[τ_2, τ_3]``) and Lemma 18
    (``Σ_𝓘 a² ≥ ε_2`` there), at every snapshot in the window and at ``τ_2``, ``τ_3``.

    Lemma 17 on ``[τ_2, τ_3]`` is ``by construction``: ``τ_3``'s condition 3 is its negation.
    Independent row ``Lemma 17 (τ_3 without condition 3)``: ``τ_3'`` = first ``t ≥ τ_2`` at
    which condition 1, 2 or 4 holds, and the inequality is checked on ``[τ_2, τ_3']``."""
    hyp = _sec4_hyp(traj, data, lam, geo.lambda_star(alpha0, epsilon), "Lemma 17")
    names = ("Lemma 17", "Lemma 17 (τ_3 without condition 3)", "Lemma 18")
    if ph.tau3 is None:
        return [CheckResult(s, hyp, Verdict.NOT_APPLICABLE, note="τ_3 not reached")
                for s in names]
    states = [ph.state2] + [(traj.W[i], traj.a[i]) for i in _window(traj, ph.tau2, ph.tau3)]
    states.append(ph.state3)
    c17, _ = _min_corr(states, ph.I, traj.X)
    s18 = min(float(np.sum(a[ph.I] ** 2)) for _, a in states)
    where = f"[τ_2, τ_3] = [{ph.tau2:.5g}, {ph.tau3:.5g}], {len(states)} points"
    note17 = "min <𝗐_i, x_k>/‖x_k‖ over 𝓘"
    if c17 > ph.delta_prime and all(hyp.values()):
        r17 = CheckResult(names[0], hyp, Verdict.BY_CONSTRUCTION, c17, ph.delta_prime,
                          c17 - ph.delta_prime, where, note17,
                          detail="condition 3 of τ_3's stopping rule is <𝗐_i, x_k> ≤ δ'‖x_k‖ "
                                 "with the same δ'; independent row: Lemma 17 (τ_3 without "
                                 "condition 3)")
    else:
        r17 = _result(names[0], hyp, c17 > ph.delta_prime, c17, ph.delta_prime,
                      c17 - ph.delta_prime, where, note17)
    X = traj.X
    t3b, s3b = _first_time(traj, ph.tau2, lambda W, a: _tau3_trigger(
        W, a, ph.I, ph.N, X, ph.beta_star, lam, epsilon, ph.eps3, ph.delta_prime,
        conds=(1, 2, 4)) > 0)
    t_end = traj.t[-1] if t3b is None else t3b
    st = [ph.state2] + [(traj.W[i], traj.a[i]) for i in _window(traj, ph.tau2, t_end)]
    if s3b is not None:
        st.append(s3b)
    cb, _ = _min_corr(st, ph.I, X)
    r17b = _result(names[1], hyp, cb > ph.delta_prime, cb, ph.delta_prime, cb - ph.delta_prime,
                   f"[τ_2, τ_3'] = [{ph.tau2:.5g}, {t_end:.5g}], {len(st)} points",
                   note17 + "; τ_3' stops on conditions 1, 2, 4 only")
    r18 = _result(names[2], hyp, s18 >= ph.eps2 * (1 - 1e-9), s18, ph.eps2, s18 - ph.eps2,
                  where, "min Σ_𝓘 a_i²")
    return [r17, r17b, r18]


def check_lemma15_16(traj: Trajectory, data: Dataset, geo: Geometry, ph: Phases, lam: float,
                     epsilon: float, alpha0: float) -> list[CheckResult]:
    """Lemma 15 (``<𝗐_i^τ, x_k> ≥ <D*/‖D*‖, x_k> − Θ(ε_2)``) and Lemma 16
    (``Σ_𝓘 a² = O(1)`` on ``[τ_2, τ_3]``): hidden constants, measured only."""
    hyp = _sec4_hyp(traj, data, lam, geo.lambda_star(alpha0, epsilon), "Lemma 5")
    i = _index_at(traj, ph.tau)
    W, a = traj.W[i], traj.a[i]
    d = ph.D_star / np.linalg.norm(ph.D_star)
    deficit = (float(np.max(traj.X @ d - (W[ph.I] / a[ph.I, None]) @ traj.X.T))
               if ph.I.any() else 0.0)
    out = [CheckResult("Lemma 15", hyp, "not checked", deficit, ph.eps2, None, f"τ={ph.tau:.4g}",
                       "max_{i,k} <D*/‖D*‖ − 𝗐_i^τ, x_k>; the slack Θ(ε_2) and the constant c' of "
                       "ε_2 ≥ c'λ^{ε/2} are not given, so no single run can settle it (its "
                       "consequence, Lemma 5 (2), is checked)")]
    if ph.tau3 is None:
        out.append(CheckResult("Lemma 16", hyp, "not applicable", note="τ_3 not reached"))
    else:
        idx = _window(traj, ph.tau2, ph.tau3)
        sup = max([float(np.sum(ph.state3[1][ph.I] ** 2))]
                  + [float(np.sum(traj.a[i][ph.I] ** 2)) for i in idx])
        out.append(CheckResult("Lemma 16", hyp, "not checked", sup, None, None, "[τ_2, τ_3]",
                               "sup Σ_𝓘 a² = O(1): an O(1) bound with a hidden constant cannot be "
                               "decided at one λ; its λ-exponent (≥ 0) is the asymptotic row "
                               "'Lemma 16' of --sweep"))
    return out
