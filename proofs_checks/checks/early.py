"""Early phase (Section 3, Appendices C–E): Lemma 1, Theorem 1 (i)/(ii), Theorem 3, Conditions
1–2, Lemmas 11–13."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from pwflow.data import Dataset
from pwflow.subgradient import minimal_norm_on_face_rows
from pwflow.trajectory import Trajectory

from .dataset import assumption1, lemma12_margin
from .geometry import (
    Geometry,
    _D_by_pattern,
    _index_at,
    _outputs,
    _pattern_of,
    _residual,
    condition1,
    condition2_point1,
    tau_of,
)
from .results import ZERO_TOL, CheckResult, Verdict, _result

Array = NDArray[np.float64]


# --------------------------------------------------------------------------------------------
# Trajectory checks: Lemma 1, 11, 12, 13, Theorem 1, Theorem 3, Conditions
# --------------------------------------------------------------------------------------------


def check_lemma1(traj: Trajectory, tol: float = 1e-8) -> CheckResult:
    """Lemma 1 (balancedness, Appendix C.1): ``a_j² − ‖w_j‖²`` is constant — on the package's
    trajectory.

    ``by construction`` when the drift is below ``tol``: the integrator propagates each face
    with the exact (Lorentz) solution and projects on the balancedness invariant, so this
    measures the projection, not the flow; the independent row is :func:`check_lemma1_gd`.
    ``violated`` when the drift exceeds ``tol`` (the construction is broken).
    Measured: ``max_j`` of :meth:`Trajectory.balancedness_drift` (relative to the neuron's
    largest size) over the snapshots.
    """
    drift = traj.balancedness_drift()
    j = int(np.argmax(drift))
    hyp = {"trajectory computed to the end": traj.success}
    where = f"neuron {j}"
    note = "max_t |c_j(t) − c_j(0)| / max_t(a_j² + ‖w_j‖²), c = a² − ‖w‖²"
    if all(hyp.values()) and drift[j] <= tol:
        return CheckResult("Lemma 1", hyp, Verdict.BY_CONSTRUCTION, drift[j], tol,
                           tol - drift[j], where, note,
                           detail="the integrator's face propagators conserve a² − ‖w‖² "
                                  "(Lorentz projection); independent row: Lemma 1 (GD drift "
                                  "order)")
    return _result("Lemma 1", hyp, drift[j] <= tol, drift[j], tol, tol - drift[j], where, note)


def balancedness_drift(W: Array, a: Array) -> Array:
    """Per neuron: ``max_t |c_j(t) − c_j(0)| / max_t (a_j² + ‖w_j‖²)`` with
    ``c_j = a_j² − ‖w_j‖²`` (Lemma 1) over snapshots ``W`` (k, m, d), ``a`` (k, m); 0 for a
    neuron that is 0 throughout."""
    W = np.asarray(W, float)
    a = np.asarray(a, float)
    nw2 = np.einsum("kmd,kmd->km", W, W)
    c = a**2 - nw2
    size = np.max(a**2 + nw2, axis=0)
    dev = np.max(np.abs(c - c[0]), axis=0)
    return np.where(size > 0, dev / np.where(size > 0, size, 1.0), 0.0)


#: Drift below this (relative) is round-off: no order can be fitted from it.
GD_ROUNDOFF = 1e-12


def lemma1_gd_runs(data: Dataset, init, t_max: float, lrs=(2e-2, 1e-2, 5e-3),
                   gamma: float = 0.0, loss: str = "square") -> list:
    """Plain gradient descent (:func:`pwflow.gd.gradient_descent`) from ``init`` on
    ``[0, t_max]`` at each step size of ``lrs`` (same 50 save times), for
    :func:`check_lemma1_gd`.  Independent of the integrator."""
    from pwflow.gd import gradient_descent

    if len(lrs) < 2 or any(not lr > 0 for lr in lrs):
        raise ValueError(f"lrs must hold at least 2 positive step sizes, got {lrs!r}")
    t_max = float(t_max)
    save = np.linspace(0.0, t_max - 2 * max(lrs), 50)  # inside every run's last step
    return [gradient_descent(data, init, lr=float(lr), t_max=t_max, gamma=gamma, loss=loss,
                             save_times=save) for lr in lrs]


def check_lemma1_gd(runs, min_order: float = 0.75) -> CheckResult:
    """Lemma 1 measured on a path no projection touches: gradient descent (the explicit Euler
    scheme of Eq. (2)) at several step sizes ``lr``.  Per step ``c_j = a_j² − ‖w_j‖²`` changes by
    ``lr² (<w_j, D>² − a_j²‖D‖²)``, so if the flow conserves ``c_j`` the drift over a fixed
    horizon is ``O(lr)``: the fitted order ``p`` of ``drift ≈ C lr^p`` must be ``≥ min_order``
    (a flow that does not conserve ``c_j`` leaves an ``O(1)`` drift, ``p ≈ 0``).

    ``runs``: :class:`pwflow.gd.GDResult` objects (``t``, ``W``, ``a``, ``lr``) at ≥ 2 step
    sizes over the same horizon.  ``not applicable`` when the largest drift is round-off
    (below :data:`GD_ROUNDOFF`: nothing moved).
    """
    runs = sorted(runs, key=lambda r: -r.lr)
    if len(runs) < 2:
        raise ValueError(f"runs must hold GD results at >= 2 step sizes, got {len(runs)}")
    lrs = np.array([r.lr for r in runs])
    drifts = np.array([float(np.max(balancedness_drift(r.W, r.a))) for r in runs])
    name = "Lemma 1 (GD drift order)"
    hyp = {"same horizon": bool(np.ptp([r.t[-1] for r in runs]) <= 1.01 * lrs.max())}
    where = ", ".join(f"lr={lr:g}: {d:.3g}" for lr, d in zip(lrs, drifts, strict=True))
    if drifts[0] <= GD_ROUNDOFF:
        return CheckResult(name, hyp, Verdict.NOT_APPLICABLE, drifts[0], GD_ROUNDOFF, None,
                           where, "GD drift at round-off: no neuron moved enough to fit an order")
    with np.errstate(divide="ignore"):
        ld = np.log(np.maximum(drifts, 1e-300))
    p = float(np.polyfit(np.log(lrs), ld, 1)[0])
    return _result(name, hyp, p >= min_order, p, min_order, p - min_order,
                   where + f" (t ≤ {runs[0].t[-1]:.4g})",
                   "fitted order p of max_j drift ≈ C lr^p; the flow conserves a² − ‖w‖² iff "
                   "the GD drift → 0 (p ≈ 1)")


def _eq4(traj: Trajectory) -> bool:
    return bool(np.all(np.abs(traj.a[0]) >= np.linalg.norm(traj.W[0], axis=1) * (1 - 1e-12)))


def _theorem1_hyp(traj: Trajectory, geo: Geometry, lam: float, lam_star: float,
                  saddle: bool = True) -> dict[str, bool]:
    h = {"Assumption 1": assumption1(traj._loss(), traj.y),
         "Lemmas 2, 9, 10 (genericity)": (geo.alpha_min > 0 and geo.D_min > 0
                                          and geo.delta0 > 0 and not geo.undefined
                                          and geo.independence > 1e-12),
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
    ``[0, τ]``).  Margin: smallest of the log-margins and the relative ``(|a| − ‖w‖)/|a|``.
    ``‖w‖ ≤ |a|`` is met with equality by a balanced neuron (Lemma 1 conserves
    ``a² − ‖w‖² = 0``): a relative gap within ``rel_tol`` of 0 (the run's rounding) is read as
    0, which holds (before session 53 the margin was the gap plus ``rel_tol``: 9.999e-10 for
    a balanced run, a margin that only the tolerance gave)."""
    tau = tau_of(lam, epsilon, geo.D_max)
    sel = traj.t <= tau * (1 + 1e-12)
    a0 = np.abs(traj.a[0])
    A = np.abs(traj.a[sel])
    nw = np.linalg.norm(traj.W[sel], axis=2)
    with np.errstate(divide="ignore"):
        lo = np.log(A / a0) - 2 * epsilon * math.log(lam)  # |a^t| ≥ |a^0| λ^{2ε}
        hi = -2 * epsilon * math.log(lam) - np.log(A / a0)  # |a^t| ≤ |a^0| λ^{−2ε}
        bal = (A - nw) / np.where(A > 0, A, 1.0)
    bal = np.where(np.abs(bal) <= rel_tol, 0.0, bal)  # the bound's equality, to rounding
    growth = np.minimum(lo, hi)
    M = np.minimum(growth, bal)
    # the smallest margin; among ties (a balanced run's equality, 0 everywhere) the tightest
    # growth bound, so that the row reports where |a^t|/|a^0| comes nearest its bounds
    k, j = np.unravel_index(int(np.lexsort((growth.ravel(), M.ravel()))[0]), M.shape)
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


def t2_bound(geo: Geometry, alpha0: float, theorem3: bool = False) -> float:
    """The proof's bound on the time ``t_2`` after which a neuron sits in a critical face:
    ``4 D_max / (D_min² min(α_min, α_0)²)`` (Appendix D.7), ``2 D_max / (D_min² α_min²)`` for
    Theorem 3 (Appendix E.2); infinite where ``D_min`` or ``α_min`` is 0.  Reported, not a
    hypothesis: the statement claims extremality for every ``λ < λ*`` (see
    docs/paper-readings.md, "Theorem 1 (ii) extremality")."""
    num, alpha = (2, geo.alpha_min) if theorem3 else (4, min(geo.alpha_min, alpha0))
    den = geo.D_min**2 * alpha**2
    # D_min = 0 or α_min = 0 (e.g. data with parallel or dependent points): no finite bound
    return num * geo.D_max / den if den > 0 else math.inf


def vacuity(bound: Array, trivial: Array) -> Array:
    """Per entry: is the stated bound at least the trivial a-priori bound (so it cannot fail
    unless the trivial one does)?"""
    return np.asarray(bound, float) >= np.asarray(trivial, float)


def alignment_result(name: str, hyp: dict[str, bool], mis: Array, nD: Array, bound: Array,
                     sel: Array, where_of, note: str, cname: str) -> CheckResult:
    """Literal verdict of an alignment inequality ``0 ≤ ‖D‖ − <D, w/a> ≤ bound`` per neuron
    (Theorem 1 (ii), Theorem 3 (ii), Lemma 4 item 1).

    The trivial bound is ``2‖D‖`` (Cauchy–Schwarz with ``‖w‖ ≤ |a|`` of Theorem 1 (i)).  If the
    stated bound exceeds it for every neuron in ``sel`` the verdict is ``vacuous`` (or
    ``violated`` when even ``0 ≤ ‖D‖ − <D, w/a> ≤ 2‖D‖`` fails); otherwise the non-vacuous
    neurons decide ``holds``/``violated``.  Measured: the **largest** misalignment (worst
    neuron), bound at that neuron, margin = smallest ``bound − misalignment``.
    """
    tol = ZERO_TOL * max(float(np.max(nD)) if nD.size else 0.0, 1e-300)
    trivial = 2 * nD
    vac = vacuity(bound, trivial)
    bad_trivial = sel & ((mis < -tol) | (mis > trivial + tol))
    live = sel & ~vac
    bad = bad_trivial | (live & (mis > bound + tol))
    if not sel.any():
        return CheckResult(name, hyp, Verdict.NOT_APPLICABLE, note="no neuron to check")
    pool = live if live.any() else sel
    j = int(np.flatnonzero(pool)[np.argmax(mis[pool])])
    if bad.any():
        j = int(np.flatnonzero(bad)[np.argmax(mis[bad])])
    marg = np.where(pool, bound - mis, np.inf)
    jm = int(np.argmin(marg))
    where = where_of(j) + f"; smallest margin at neuron {jm}"
    if live.any() or bad_trivial.any():
        return _result(name, hyp, not bad.any(), mis[j], bound[j], marg[jm], where, note)
    factor = float(np.min(bound[sel] / np.where(trivial[sel] > 0, trivial[sel], 1e-300)))
    detail = (f"{cname} ≥ {float(np.min(bound[sel])):.3g} exceeds the trivial bound "
              f"2‖D‖ ≤ {float(np.max(trivial[sel])):.3g} (Cauchy–Schwarz with ‖w‖ ≤ |a|) by a "
              f"factor ≥ {factor:.3g} for all {int(sel.sum())} neurons; only the trivial bound "
              "could fail")
    verdict = Verdict.VACUOUS if all(hyp.values()) else Verdict.HYPOTHESES_UNMET
    return CheckResult(name, hyp, verdict, mis[j], bound[j], marg[jm], where, note,
                       detail=detail)


def check_theorem1_ii(traj: Trajectory, geo: Geometry, lam: float, epsilon: float,
                      alpha0: float, theorem3: bool = False) -> list[CheckResult]:
    """Theorem 1 (ii) (or Theorem 3 (ii)) at ``τ`` for every neuron satisfying Condition 1
    (Condition 2, point 1), split in two literal results.

    * ``… alignment``: ``‖D‖ ≥ <D, w/a> ≥ ‖D‖ − c λ^{‖D‖ε/D_max}`` with ``D = D(w_j^τ, 0)`` and
      ``c = c_{α_0}`` of Eq. (37) (``c`` of Eq. (40)), or ``w/‖w‖ = −D/‖D‖``, or ``D = 0``;
      :func:`alignment_result` (``vacuous`` when ``c λ^{…} ≥ 2‖D‖`` for every neuron).
    * ``… extremal``: ``D`` is ``0`` or an extremal vector (Theorem 3: extremal) whose direction
      is a local max (min) of ``G`` for ``a_j^0 > 0`` (``< 0``), **as stated** (for every
      ``λ < λ*``).  The proof covers only ``τ ≥ t_2`` (:func:`t2_bound`, reported in ``note``),
      so a violation at larger ``λ`` is a gap of the proof (docs/paper-readings.md).
      Measured: number of failing neurons; ``where``: the first one and the faces.
    """
    statement = "Theorem 3 (ii)" if theorem3 else "Theorem 1 (ii)"
    tau = tau_of(lam, epsilon, geo.D_max)
    i = _index_at(traj, tau)
    if theorem3:
        sel, _ = condition2_point1(traj)
        c, a_eff, cname = geo.c_theorem3(), 1.0, "c λ^{ε‖D‖/D_max} (Eq. (40))"
    else:
        sel, _ = condition1(traj, alpha0)
        c, a_eff, cname = geo.c_alpha0(alpha0), alpha0, "c_{α₀} λ^{ε‖D‖/D_max} (Eq. (37))"
    hyp = _theorem1_hyp(traj, geo, lam, geo.lambda_star(a_eff, epsilon), saddle=not theorem3)
    names = (statement + " alignment", statement + " extremal")
    if not sel.any():
        return [CheckResult(s, hyp, Verdict.NOT_APPLICABLE,
                            note="no neuron satisfies the condition") for s in names]
    nD, g, anti = _alignment_at_tau(traj, geo, i)
    with np.errstate(over="ignore"):
        bound = c * lam ** (nD * epsilon / geo.D_max)
    anti_ok = anti <= 1e-8
    zeroD = nD <= ZERO_TOL * geo.D_max
    chk = sel & ~zeroD & ~anti_ok
    res = [alignment_result(
        names[0], hyp, nD - g, nD, bound, chk,
        lambda j: f"neuron {j} at τ={tau:.4g}",
        f"measured = max_j ‖D‖ − <D, w_j/a_j> over {int(chk.sum())} neurons "
        f"({int((sel & zeroD).sum())} with D=0, {int((sel & anti_ok).sum())} anti-aligned "
        f"excluded: the statement's alternatives)", cname)]
    u_tau = traj.patterns[traj.pattern[i]]
    faces = {tuple(int(v) for v in f.u): f for f in geo.faces}
    fail_ex = np.zeros(traj.m, bool)
    for j in np.flatnonzero(sel):
        if zeroD[j] and not theorem3:
            continue
        f = faces.get(tuple(int(v) for v in u_tau[j]))
        want = "max" if traj.a[0, j] > 0 else "min"
        fail_ex[j] = f is None or f.extremal == 0 or not (f.kind == want or theorem3)
    tb = t2_bound(geo, a_eff, theorem3)
    nfail = int(fail_ex.sum())
    if nfail:
        k = int(np.argmax(fail_ex))
        pats, counts = np.unique(u_tau[fail_ex], axis=0, return_counts=True)
        pos = int((fail_ex & (traj.a[0] > 0)).sum())
        where = (f"neuron {k}; {pos} positive, {nfail - pos} negative; faces "
                 + ", ".join(f"{p.tolist()}×{c}" for p, c in zip(pats, counts, strict=True))
                 + f"; τ={tau:.4g}")
    else:
        where = f"{int(sel.sum())} neurons, τ={tau:.4g}"
    res.append(_result(names[1], hyp, nfail == 0, nfail, 0, -nfail, where,
                       "measured = number of neurons whose face at τ is neither D=0 nor an "
                       "extremal face of the right type; the proof needs τ ≥ t_2 bound "
                       f"{tb:.4g} (τ = {tau:.4g}" + ((", proof gap: see paper-readings)" if nfail
                                                       else "; holds beyond the proof's case)")
                                                      if tau < tb else ")")))
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
    note = ("point 2 (a zero neuron stays zero) checked on snapshots and the event log"
            if which == 1 else
            "point 2 (no spontaneous exit from a face) is the integrator's sliding rule, not "
            "checked")
    return CheckResult(st, {f"all neurons satisfy {st}": bool(ok.all())},
                       "holds" if ok.all() else "hypotheses unmet", float(ok.mean()), 1.0,
                       float(margin[j]), f"neuron {j}; {int(ok.sum())}/{ok.size} satisfy it",
                       note + "; measured = fraction satisfying it (a property of the "
                       "initialisation, not a claim; the theorems are checked on those)")


def _lemma11_margins(f, X: Array, nx: Array, R: Array, gamma: float, D_max: float) -> Array:
    """Lemma 11's margin on the face ``f`` at each residual row of ``R`` (see
    :func:`check_lemma11`): ``−‖D^θ‖/D_max`` (+ tolerance) where ``D_u = 0``; else, for
    ``D_u ∈ ±A^{-1}(u)``, the least of ``u_k <±D^θ, x̂_k>`` (``u_k ≠ 0``) and
    ``−|<D^θ, x̂_k>|`` (``u_k = 0``) over ``D_max``."""
    Dt = minimal_norm_on_face_rows(f.u, X, R, gamma)
    nDt = np.linalg.norm(Dt, axis=1)
    if np.linalg.norm(f.D) <= ZERO_TOL * D_max:
        return -nDt / D_max + ZERO_TOL
    s = (f.extremal * Dt @ X.T) / nx
    nz = f.u != 0
    inside = np.min(f.u[nz] * s[:, nz], axis=1) if nz.any() else np.full(len(R), math.inf)
    on = np.max(np.abs(s[:, ~nz]), axis=1) if (~nz).any() else np.zeros(len(R))
    return np.minimum(inside, -(on - ZERO_TOL * np.maximum(nDt, 1e-300))) / D_max


def check_lemma11(traj: Trajectory, geo: Geometry, delta0: float | None = None) -> CheckResult:
    """Lemma 11 at every snapshot where ``(1/n) Σ ‖h_θ(x_k) x_k‖ < δ_0``: for every face ``u``,
    ``D_u = 0 ⇒ D_u^θ = 0``; ``D_u ∈ A^{-1}(u) ⇒ D_u^θ ∈ A^{-1}(u)``;
    ``D_u ∈ −A^{-1}(u) ⇒ D_u^θ ∈ −A^{-1}(u)``.  ``delta0`` overrides ``geo.delta0`` (to feed a
    wrong constant).  Margin: smallest over checked (snapshot, face) of
    ``min_{u_k≠0} u_k<±D^θ, x_k>/‖x_k‖`` minus ``max_{u_k=0}|<D^θ, x_k>|/‖x_k‖`` (relative)."""
    d0 = geo.delta0 if delta0 is None else float(delta0)
    X = traj.X
    nx = np.linalg.norm(X, axis=1)
    snaps, R = [], []
    for i in range(traj.t.size):
        h = _outputs(traj.W[i], traj.a[i], X, traj.gamma)
        if np.mean(np.abs(h) * nx) < d0:
            snaps.append(i)
            R.append(np.asarray(traj._loss().derivative(h, traj.y), float))
    checked, R = len(snaps), np.array(R).reshape(len(snaps), X.shape[0])
    # margins, one row per face, one column per checked snapshot (+inf: face not checked)
    M = np.full((len(geo.faces), checked), math.inf)
    for row, f in enumerate(geo.faces):
        if not checked or not (np.linalg.norm(f.D) <= ZERO_TOL * geo.D_max or f.extremal):
            continue
        M[row] = _lemma11_margins(f, X, nx, R, traj.gamma, geo.D_max)
    M[np.isnan(M)] = math.inf  # (a NaN margin never counted as the worst, as before)
    worst, where = math.inf, ""
    if checked and np.isfinite(M).any():
        # the first worst in snapshot-major order, as the loop over snapshots found it
        col, row = divmod(int(np.argmin(M.T)), len(geo.faces))
        worst = float(M[row, col])
        where = f"t={traj.t[snaps[col]]:.4g}, u={geo.faces[row].u.tolist()}"
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
