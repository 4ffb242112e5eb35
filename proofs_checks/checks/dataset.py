"""Dataset statements (no trajectory): Lemmas 2, 3, 9, 10, 14 (Section 3 / Appendix D), the
Lemma 12 margin at a residual, Lemma 8 (Appendix A) and the Assumption 3–6 tests."""

from __future__ import annotations

import itertools
import math

import numpy as np
from numpy.typing import NDArray

from pwflow import theory
from pwflow.data import Dataset
from pwflow.model import Loss, get_loss
from pwflow.subgradient import minimal_norm_on_face

from .geometry import Face, Geometry, family_independence, geometry
from .results import ZERO_TOL, CheckResult, _result

Array = NDArray[np.float64]


# --------------------------------------------------------------------------------------------
# Dataset checks: Lemmas 2, 3, 9, 10, 12 (at θ = 0), 14; Assumption 1 and Eq. (4)
# --------------------------------------------------------------------------------------------


def assumption1(loss: str | Loss, y: Array) -> bool:
    """Assumption 1 (grid check of :meth:`pwflow.model.Loss.check_assumption1`)."""
    return bool(get_loss(loss).check_assumption1(y).holds)


def check_lemma2(data: Dataset, loss: str | Loss = "square", gamma: float = 0.0) -> CheckResult:
    """Lemma 2: ``𝔇_u ∩ (±∂ closure A^{-1}(u)) = ∅`` or ``0 ∈ 𝔇_u``; families of ≤ d vectors
    ``∂_1 l(0, y_k) x_k`` are linearly independent.

    Checked exactly on every face (``d = 2``): for each open arc with ``D_u ≠ 0`` the angular
    distance of ``±D_u`` from the two boundary rays (the rays and the origin are trivial: the
    boundary of a ray is ``{0}``); ``𝔇_u`` is a segment in ``d = 2`` when one ``η`` is free, so
    also every ``D ∈ 𝔇_u`` of a ray face is tested against the rays' end (the origin).  For the
    linear independence, the smallest singular value over all families of ``≤ d`` vectors.
    Margin: the minimum of both (normalised).
    """
    X, y = np.asarray(data.X, float), np.asarray(data.y, float)
    lossf = get_loss(loss)
    r0 = lossf.derivative(np.zeros_like(y), y)
    d = X.shape[1]
    smin, top = family_independence(X, r0)
    fams = f"families of ≤ {top} vectors"
    if d != 2:
        if not smin > 1e-12:  # the independence part alone fails the lemma
            return _result("Lemma 2", {"Assumption 1": assumption1(lossf, y)}, False, smin,
                           0.0, smin, fams, "a dependent family (∂_1 l(0,y_k) x_k); the "
                           "boundary part needs the face enumeration (d = 2 only)")
        return CheckResult("Lemma 2", {"Assumption 1": assumption1(lossf, y)}, "not checked",
                           smin, 0.0, smin, fams,
                           "boundary part needs the face enumeration (d = 2 only)")
    try:
        geo = geometry(data, lossf, gamma)
    except ValueError as err:
        return _result("Lemma 2", {"Assumption 1": assumption1(lossf, y)}, False, 0.0, 0.0, 0.0,
                       "dataset", f"degenerate data: {err}")
    worst, where = math.inf, ""
    for f in geo.faces:
        if f.shape != "full" or np.linalg.norm(f.D) <= ZERO_TOL * geo.D_max:
            continue
        ang = math.atan2(f.D[1], f.D[0])
        for s, g in itertools.product((0.0, math.pi), f.gens):
            a = math.atan2(g[1], g[0])
            dist = abs(math.sin(0.5 * math.remainder(ang + s - a, 2 * math.pi)))
            if dist < worst:
                worst, where = dist, f"face u={f.u.tolist()}"
    margin = min(worst, smin)
    return _result("Lemma 2", {"Assumption 1": assumption1(lossf, y)}, margin > 1e-12,
                   margin, 0.0, margin, where or fams,
                   "min over arcs of |sin(½ angle(±D_u, boundary ray))| and min normalised σ_min "
                   "of the families (∂_1 l(0,y_k) x_k)")


def check_lemma3(data: Dataset, loss: str | Loss = "square", gamma: float = 0.0,
                 geo: Geometry | None = None) -> CheckResult:
    """Lemma 3: at least one extremal vector (``D_u ≠ 0``, ``D_u ∈ ±A^{-1}(u)``).

    Measured: number of extremal faces; margin: the largest over extremal faces of the
    smallest ``|<D_u, x_k>| / (‖D_u‖‖x_k‖)`` over ``u_k ≠ 0`` (how robustly inside its cone).
    """
    geo = geo or geometry(data, loss, gamma)
    ext = geo.extremal_faces
    X = np.asarray(data.X, float)
    best = -math.inf
    for f in ext:
        nz = f.u != 0
        v = np.abs(X[nz] @ f.D) / (np.linalg.norm(f.D) * np.linalg.norm(X[nz], axis=1))
        best = max(best, float(np.min(v)))
    return _result("Lemma 3", {"Assumption 1": assumption1(loss, data.y)}, len(ext) >= 1,
                   len(ext), 1, best if ext else -1.0,
                   ", ".join(f"{f.kind}@u={f.u.tolist()}" for f in ext),
                   "number of extremal faces ≥ 1; margin = inner margin of the best one")


def check_lemma9(data: Dataset, loss: str | Loss = "square", gamma: float = 0.0,
                 geo: Geometry | None = None) -> CheckResult:
    """Lemma 9: ``α_min > 0`` and ``D_min > 0`` (Eq. (23)); margin ``min(α_min, D_min)``.

    An undefined constant (``constants.Undefined``, e.g. ``D_u`` on the boundary of its cone,
    Lemma 2 failing) is a failure of the claim: ``violated``, with the reason in ``note``."""
    geo = geo or geometry(data, loss, gamma)
    und = {k: v for k, v in geo.undefined.items() if k in ("alpha_min", "D_min")}
    m = min(geo.alpha_min, geo.D_min)
    ok = m > 1e-12 and not und
    note = (f"Eq. (23)–(24) by exact enumeration of the {len(geo.faces)} faces "
            f"(d = {np.asarray(data.X).shape[1]})")
    if und:
        note += "; undefined: " + "; ".join(f"{k}: {v}" for k, v in und.items())
    return _result("Lemma 9", {"Assumption 1": assumption1(loss, data.y)}, ok, m, 0.0, m,
                   f"α_min={geo.alpha_min:.4g} (+:{geo.alpha_min_plus:.4g}, "
                   f"−:{geo.alpha_min_minus:.4g}), D_min={geo.D_min:.4g}", note)


def check_lemma10(data: Dataset, loss: str | Loss = "square", gamma: float = 0.0,
                  geo: Geometry | None = None) -> CheckResult:
    """Lemma 10: ``δ_0 > 0`` (Eq. (21))."""
    geo = geo or geometry(data, loss, gamma)
    return _result("Lemma 10", {"Assumption 1": assumption1(loss, data.y)}, geo.delta0 > 1e-12,
                   geo.delta0, 0.0, geo.delta0, "Eq. (21)", "δ_0 = min(δ_0', δ_0'')")


def check_lemma14(geo: Geometry) -> CheckResult:
    """Lemma 14 (quantisation): a critical face with ``D_u ≠ 0`` holding a local max (min)
    of ``G`` has ``D_u ∈ A^{-1}(u)`` (``−A^{-1}(u)``) or is the single ray ``−D_u/‖D_u‖``
    (``+D_u/‖D_u‖``).  Measured: number of extremal faces violating the dichotomy."""
    bad, where = 0, []
    for f in geo.extremal_faces:
        if f.kind not in ("max", "min"):
            continue
        want = 1 if f.kind == "max" else -1
        ok = f.extremal == want or (f.shape == "ray" and f.extremal == -want)
        if not ok:
            bad += 1
            where.append(f"u={f.u.tolist()}")
    return _result("Lemma 14", {"G has no saddle point": not geo.has_saddle}, bad == 0,
                   bad, 0, -bad, "; ".join(where) or "all extremal faces",
                   f"{len(geo.extremal_faces)} extremal faces, type from proofs_checks.extremal")


def _critical_faces(geo: Geometry) -> list[Face]:
    out = []
    for f in geo.faces:
        if f.shape != "origin" and (f.extremal or np.linalg.norm(f.D) <= ZERO_TOL * geo.D_max):
            out.append(f)
    return out


def lemma12_margin(geo: Geometry, X: Array, r: Array) -> tuple[float, str]:
    """Smallest margin of Lemma 12 at residual ``r``: for each critical ray ``M`` and
    ``v = ±J dir(M)``, the values ``s_± = <v, D^θ_{u(v)}>`` must not have opposite strict
    signs (then ``ε_M`` exists).  Margin ``= −min(max(s_+, s_−), −min(s_+, s_−))``, ≥ 0 iff ok."""
    worst, where = math.inf, ""
    for f in _critical_faces(geo):
        if f.shape != "ray":
            continue
        dr = f.point / np.linalg.norm(f.point)
        vals = []
        for s in (1.0, -1.0):
            v = s * np.array([-dr[1], dr[0]])
            uv = np.where(f.u != 0, f.u, np.sign(X @ v)).astype(np.int8)
            vals.append(float(v @ minimal_norm_on_face(uv, X, r, geo.gamma).D))
        m = -min(max(vals), -min(vals))
        if m < worst:
            worst, where = m, f"ray u={f.u.tolist()}"
    return worst, where


# --------------------------------------------------------------------------------------------
# Section 4 / Appendix F: phase times and Lemmas 4–7, 15–24, Theorems 2 and 4, Lemma 8
# --------------------------------------------------------------------------------------------


def assumptions456(data: Dataset) -> dict[str, bool]:
    """Assumptions 4, 5, 6 at the dataset (square loss, ReLU), by the checkers of
    :mod:`proofs_checks.assumptions`.

    Every Section 4 statement reads them (ten per report): they are computed once per
    dataset, its arrays' bytes the key (the last eight datasets are kept)."""
    from ..assumptions import check_assumption4, check_assumption5, check_assumption6
    from ..faces import geometry as face_geometry

    X, y = np.asarray(data.X, float), np.asarray(data.y, float)
    key = (X.shape, X.tobytes(), y.tobytes())
    if key not in _ASSUMPTIONS456:
        g = face_geometry(data, "square", 0.0)
        _ASSUMPTIONS456[key] = {r.name: bool(r.holds) for r in (
            check_assumption4(g), check_assumption5(g), check_assumption6(g))}
        while len(_ASSUMPTIONS456) > 8:
            del _ASSUMPTIONS456[next(iter(_ASSUMPTIONS456))]
    return dict(_ASSUMPTIONS456[key])


_ASSUMPTIONS456: dict[tuple, dict[str, bool]] = {}


def in_assumption3(data: Dataset, eta: float = 1 / 6) -> bool:
    """Is the data inside the boxes of Assumption 3 for some ``η' < eta``
    (:func:`pwflow.theory.assumption3_eta`)?"""
    return bool(theory.assumption3_eta(data.X, data.y) < eta)


def check_lemma8(data: Dataset) -> CheckResult:
    """Lemma 8: Assumption 3 with ``η < 1/6`` ⇒ Assumptions 4, 5, 6 — on this dataset (the
    certified check over whole boxes is :func:`proofs_checks.lemma8.certify_lemma8`)."""
    hyp = {"Assumption 3 (η < 1/6)": in_assumption3(data)}
    a = assumptions456(data)
    ok = all(a.values())
    return _result("Lemma 8", hyp, ok, float(sum(a.values())), 3.0, float(sum(a.values())) - 3,
                   "dataset", "Assumptions 4, 5, 6 at this point (proofs_checks.assumptions); "
                   "box-wide: check_lemma8_box")


def check_lemma8_box(eta: float, max_boxes: int = 200_000) -> CheckResult:
    """Lemma 8 over the whole box of Assumption 3 with parameter ``eta`` — the certified
    branch-and-bound of :func:`proofs_checks.lemma8.certify_lemma8` (groups A4–A6).

    ``holds``: every obligation certified; ``violated``: an exact (sympy) counterexample of
    some obligation inside the box; ``not checked``: inconclusive within ``max_boxes``."""
    from ..lemma8 import certify_lemma8

    if not 0 < eta < 1:
        raise ValueError(f"eta must be in (0, 1), got {eta!r}")
    cert = certify_lemma8(eta, max_boxes, groups=("A4", "A5", "A6"))
    v = cert.verdict()
    bad = [r for r in cert.results if r.verdict != "certified"]
    exact = [float(r.exact_value) for r in bad if r.exact_value is not None]
    worst = min(exact) if exact else min(r.min_lower_bound for r in cert.results)
    verdict = {"certified": "holds", "counterexample": "violated"}.get(v, "not checked")
    if eta >= 1 / 6:
        verdict = "hypotheses unmet"
    where = "; ".join(f"{r.name}: {r.verdict}" + (f" at {tuple(round(p, 6) for p in r.point)}"
                                                  if r.point else "") for r in bad)
    return CheckResult(f"Lemma 8 (box η={eta:g})", {"η < 1/6": eta < 1 / 6}, verdict,
                       float(len(bad)), 0.0, worst, where or "all obligations certified",
                       "certified interval branch and bound over the box (proofs_checks.lemma8);"
                       " measured = number of uncertified obligations")
