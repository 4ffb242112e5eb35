"""The set 𝔇(w, θ) of Eq. (6) and its minimal-norm element D(w, θ) (Section 3).

For a neuron ``w`` and residual derivatives ``r_k = ∂_1 l(h_θ(x_k), y_k)``,

    𝔇(w, θ) = { −(1/n) Σ_k η_k r_k x_k :  η_k = 1 if <w, x_k> > 0,
                                          η_k = γ if <w, x_k> < 0,
                                          η_k ∈ [γ, 1] if <w, x_k> = 0 }.

Writing ``K = {k : <w, x_k> = 0}``, ``b`` the fixed part and ``z_k = −(1/n) r_k x_k``,
the minimal-norm element solves the box-constrained least-squares problem

    min_{η_K ∈ [γ, 1]^K} ‖b + Σ_{k∈K} η_k z_k‖² .

``D`` is unique (strict convexity of the norm); ``η_K`` is unique when the ``z_k`` are linearly
independent.  This module is the only place where that problem is solved:

* :func:`face_slopes` — the fixed slopes ``η(u, γ)`` of a pattern ``u`` (1, γ, and 0 on ``K``);
* :func:`single_slope` — the closed form for ``|K| = 1``, vectorised over many problems;
  :func:`pair_slopes` — the closed form for ``|K| = 2`` (interior or one of four edges);
* :func:`box_least_squares` — any ``|K|``: a bounded-variable active-set method (Stark & Parker's
  BVLS; polynomial in ``|K|``, warm-started from a previous solution), verified by the KKT
  conditions, with scipy's BVLS as a fallback;
* :func:`free_slopes` — the slopes on ``K`` where some data points are parallel: such points
  share one hyperplane and, in the Clarke subdifferential of Eq. (2), one slope parameter
  (:func:`parallel_classes`; ``docs/paper-readings.md``, N3).  Every solve of the problem goes
  through it.

:mod:`pwflow.filippov` decides from this element where a neuron goes at an event.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .cones import SPAN_RTOL, span_split
from .model import slopes

__all__ = [
    "MinNormResult",
    "activation_pattern",
    "box_least_squares",
    "face_slopes",
    "fixed_part",
    "free_slopes",
    "kkt_tolerance",
    "kkt_departure",
    "kkt_violation",
    "pair_slopes",
    "parallel_classes",
    "pinned_gap",
    "single_slope",
    "minimal_norm_subgradient",
    "minimal_norm_on_face",
    "minimal_norm_on_face_rows",
    "subgradient_parts",
]

Array = NDArray[np.float64]


@dataclass(frozen=True)
class MinNormResult:
    """The minimal-norm subgradient ``D`` and the slopes ``η`` attaining it.

    Attributes
    ----------
    D : ndarray, shape (d,)
        ``D(w, θ)``.
    eta : ndarray, shape (n,)
        The ``η_k`` with ``D = −(1/n) Σ_k η_k r_k x_k``.
    free : ndarray of int
        ``K``: the indices with ``<w, x_k> = 0`` (whose ``η_k`` were optimised).
    """

    D: Array
    eta: Array
    free: NDArray[np.intp]


def activation_pattern(w: ArrayLike, X: ArrayLike, zero_tol: float = 0.0) -> NDArray[np.int8]:
    """``A(w) = (sign <w, x_k>)_k`` with ``sign(0) = 0`` (Section 3).

    ``zero_tol`` treats ``|<w, x_k>| <= zero_tol ‖w‖ ‖x_k‖`` as zero.
    """
    w = np.asarray(w, float)
    X = np.asarray(X, float)
    s = X @ w
    tol = zero_tol * np.linalg.norm(w) * np.linalg.norm(X, axis=1)
    return np.where(np.abs(s) <= tol, 0, np.sign(s)).astype(np.int8)


def subgradient_parts(
    u: ArrayLike, X: ArrayLike, r: ArrayLike, gamma: float
) -> tuple[Array, Array, NDArray[np.intp]]:
    """Fixed part ``b``, free columns ``Z`` (``d × |K|``) and ``K`` for the face ``u``.

    ``r`` may also be a stack of residuals, shape ``(s, n)``: then ``b`` is ``(s, d)`` and
    ``Z`` is ``(s, d, |K|)``, row by row the same expressions."""
    u = np.asarray(u)
    X = np.asarray(X, float)
    r = np.asarray(r, float)
    n = X.shape[0]
    b = fixed_part(face_slopes(u, gamma), r, X)
    K = np.flatnonzero(u == 0)
    Z = np.swapaxes(-(r[..., K, None] * X[K]) / n, -1, -2)
    return b, Z, K


def face_slopes(U: ArrayLike, gamma: float) -> Array:
    """``η(u, γ)``: 1 where ``u_k > 0``, ``γ`` where ``u_k < 0``, 0 on the face's hyperplanes.

    The fixed part of the slopes of Eq. (6) for a pattern (or a stack of patterns) ``U``; the
    free slopes on ``K = {k : u_k = 0}`` come from :func:`box_least_squares`.
    """
    return slopes(U, gamma, at_zero=0.0)


def fixed_part(eta: Array, r: Array, X: Array) -> Array:
    """``b = −(1/n) Σ_k η_k r_k x_k``: the part of ``D`` in Eq. (6) set by the slopes ``η``
    (:func:`face_slopes`; the free slopes' columns are added to it).

    ``eta`` is one face's slopes (shape ``(n,)``) or one row per face (``(P, n)``); ``r`` may
    carry leading axes (shape ``(..., n)``, e.g. the residuals at several times).  Returns
    shape ``(..., d)`` or ``(..., P, d)``.  The products ``r_k x_k`` are formed once for all
    faces (``η @ (r x)``: n·d multiplications instead of the P·n of ``(η r) @ X``; at
    P = 1 000 faces and n = 500 points 5x faster, 18x for 13 residual vectors at once).  The
    only place this sum is written: the stepper's fields, the Filippov rule and the checks
    all call it, so the same slopes and residuals give the same ``b`` everywhere.
    """
    return -(eta @ (r[..., :, None] * X)) / X.shape[0]


def single_slope(bz: ArrayLike, zz: ArrayLike, lo: float, hi: float) -> tuple[Array, Array]:
    """Closed-form minimiser of ``‖b + η z‖`` over ``η ∈ [lo, hi]``, vectorised.

    Parameters
    ----------
    bz, zz : arrays
        ``<b, z>`` and ``‖z‖²`` of each problem.

    Returns
    -------
    eta : array
        The minimiser (``(lo + hi) / 2`` where ``z = 0``: every ``η`` is optimal then).
    eta_star : array
        The unconstrained minimiser ``η* = −<b, z>/‖z‖²`` (``nan`` where ``z = 0``).
    """
    bz = np.asarray(bz, float)
    zz = np.asarray(zz, float)
    pos = zz > 0
    if bz.ndim and pos.all():  # the common case (the same numbers, fewer calls: hot path)
        eta_star = -bz / zz
        return np.minimum(np.maximum(eta_star, lo), hi), eta_star
    eta_star = np.divide(-bz, zz, out=np.full(np.shape(bz), np.nan), where=pos)
    # (a NaN η* only where z = 0, replaced there; ±inf clips to the bounds)
    eta = np.where(pos, np.minimum(np.maximum(eta_star, lo), hi), 0.5 * (lo + hi))
    return eta, eta_star


def pair_slopes(b: Array, z1: Array, z2: Array, lo: float, hi: float) -> Array:
    """Closed-form minimiser of ``‖b + η₁ z₁ + η₂ z₂‖`` over ``[lo, hi]²``, vectorised over rows.

    The problem is convex: its minimum is the unconstrained one where that lies inside the box
    (and is unique), else on one of the four edges, each a one-slope problem
    (:func:`single_slope`).  Where ``z₁, z₂`` are parallel a line of minimisers that meets the
    box also meets its boundary, so the edges suffice.  Returns ``(rows, 2)``.

    A few rows (the vector field's common case from d = 3 on: a handful of faces with two free
    slopes per evaluation) are solved in Python floats by :func:`_pair_slopes_rows`, the same
    operations in the same order, where :func:`_scalar_order_ok` finds numpy's order of the
    short sums reproduced (about 10× less time than the array calls on 3 rows).
    """
    if b.shape[0] <= _SCALAR_ROWS and _scalar_order_ok(b.shape[1]):
        return _pair_slopes_rows(b, z1, z2, lo, hi)
    g11 = np.einsum("ij,ij->i", z1, z1)
    g22 = np.einsum("ij,ij->i", z2, z2)
    g12 = np.einsum("ij,ij->i", z1, z2)
    c1 = np.einsum("ij,ij->i", b, z1)
    c2 = np.einsum("ij,ij->i", b, z2)
    det = g11 * g22 - g12 * g12
    ok = det > 1e-14 * np.maximum(g11 * g22, 1e-300)
    safe = np.where(ok, det, 1.0)
    e1 = (-c1 * g22 + c2 * g12) / safe
    e2 = (-c2 * g11 + c1 * g12) / safe
    # one step of iterative refinement on the residual (the normal equations square the
    # condition number; the refined D is tangent to rounding, which the regime test needs)
    res = b + e1[:, None] * z1 + e2[:, None] * z2
    r1 = np.einsum("ij,ij->i", res, z1)
    r2 = np.einsum("ij,ij->i", res, z2)
    e1 = e1 - (r1 * g22 - r2 * g12) / safe
    e2 = e2 - (r2 * g11 - r1 * g12) / safe
    inside = ok & (e1 >= lo) & (e1 <= hi) & (e2 >= lo) & (e2 <= hi)
    size = (np.sqrt(np.einsum("ij,ij->i", b, b))
            + max(abs(lo), abs(hi)) * (np.sqrt(g11) + np.sqrt(g22)))
    # rows where the interior point beats every edge candidate by far more than the rounding
    # of the norms compared below keep it without that comparison (which would choose it):
    # an edge point is at least ``dist`` from it, and the objective grows there by at least
    # λ_min dist² ≥ det / (g11 + g22) · dist², against rounding of order eps ‖residual‖²
    if np.all(inside):
        dist = np.minimum(np.minimum(e1 - lo, hi - e1), np.minimum(e2 - lo, hi - e2))
        if np.all(_clearly_interior(det, g11 + g22, dist, size)):
            return np.stack([e1, e2], axis=1)
    # candidates (rows, 5, 2): the interior point, then the edges η₁ = lo, η₂ = lo, η₁ = hi,
    # η₂ = hi, each with the other slope from the one-slope closed form (one call for all four)
    rows = c1.size
    edge = single_slope(np.concatenate([c2 + lo * g12, c1 + lo * g12, c2 + hi * g12, c1 + hi * g12]),
                        np.concatenate([g22, g11, g22, g11]), lo, hi)[0].reshape(4, rows)
    E = np.empty((rows, 5, 2))
    E[:, 0, 0], E[:, 0, 1] = e1, e2
    E[:, 1, 0], E[:, 1, 1] = lo, edge[0]
    E[:, 2, 0], E[:, 2, 1] = edge[1], lo
    E[:, 3, 0], E[:, 3, 1] = hi, edge[2]
    E[:, 4, 0], E[:, 4, 1] = edge[3], hi
    Dc = b[:, None, :] + E[..., :1] * z1[:, None, :] + E[..., 1:] * z2[:, None, :]
    val = np.linalg.norm(Dc, axis=2)
    best = 1 + np.argmin(val[:, 1:], axis=1)
    at = np.arange(rows)
    if TIE_BY_GRADIENT:
        best = _ties_by_gradient(E[:, 1:], Dc[:, 1:], val[:, 1:], best - 1, z1, z2, g11, g22,
                                 size, lo, hi) + 1
    # an inside interior point is kept unless an edge beats it by more than the norms'
    # rounding (a tie read by rounding put the slope on its bound 3.9e-9 early, session 31)
    keep = inside & (val[:, 0] <= val[at, best] + _NORM_TIE * size)
    return E[at, np.where(keep, 0, best)]


def _kkt_gaps(E: Array, g1: Array, g2: Array, g11: ArrayLike, g22: ArrayLike, lo: float,
              hi: float) -> Array:
    """How far candidates ``E`` (``(..., 2)``: ``(η₁, η₂)``) are from the box's KKT
    conditions: the largest slope change each one's gradient ``g_k = <b + Z η, z_k>`` asks
    for, ``|g_k| / ‖z_k‖²`` (only its part pointing into the box where ``η_k`` sits on a
    bound: :func:`kkt_departure`; 0 where ``z_k = 0``, whose slope does not matter)."""
    gaps = np.zeros(np.shape(g1))
    for e, g, gkk in ((E[..., 0], g1, g11), (E[..., 1], g2, g22)):
        into = np.maximum(kkt_departure(e, g, lo, hi), 0.0)
        pos = np.asarray(gkk) > 0
        gaps = np.maximum(gaps, np.where(pos, into / np.where(pos, gkk, 1.0), 0.0))
    return gaps


def _ties_by_gradient(E: Array, D: Array, val: Array, best: NDArray[np.intp], z1: Array,
                      z2: Array, g11: Array, g22: Array, size: Array, lo: float, hi: float
                      ) -> NDArray[np.intp]:
    """:func:`pair_slopes`' choice among its edge candidates (``E``, ``D = b + Z η``, norms
    ``val``; shapes ``(rows, 4, ...)``) where several tie the least norm ``best`` to its
    rounding (``_NORM_TIE size``): the first of them nearest the KKT conditions
    (:func:`_kkt_gaps`), where it is nearer than ``best``.

    The norms decide a slope only to ``sqrt(eps) ‖D‖ / ‖z_k‖`` (they compare ``‖D‖²`` to
    ``eps ‖D‖²``); the gradient decides it to ``eps ‖D‖ / ‖z_k‖``.  A column far below ``D``
    (``r_k`` passing through 0) ties its whole interval: a neuron on two hyperplanes with
    ``‖z_4‖ = 1.7e-10``, ``‖D‖ = 0.027`` read its slope's bound 1 (gradient ``+‖z_4‖²``,
    against 1e-27 at the bound 0, the exact minimiser) and left to the active side (d = 6,
    rank 3; ``docs/integrator.md``, "A tie of a vanishing column")."""
    at = np.arange(len(best))
    tied = val <= (val[at, best] + _NORM_TIE * size)[:, None]
    rows = np.flatnonzero(np.count_nonzero(tied, axis=1) > 1)
    if rows.size == 0:
        return best
    d = D.shape[-1]
    Dr = D[rows].reshape(-1, d)  # einsum("ij,ij->i"): the order _dot reproduces
    g1 = np.einsum("ij,ij->i", Dr, np.repeat(z1[rows], 4, axis=0)).reshape(-1, 4)
    g2 = np.einsum("ij,ij->i", Dr, np.repeat(z2[rows], 4, axis=0)).reshape(-1, 4)
    gaps = np.where(tied[rows], _kkt_gaps(E[rows], g1, g2, g11[rows, None], g22[rows, None],
                                          lo, hi), np.inf)
    new = np.argmin(gaps, axis=1)
    i = np.arange(rows.size)
    best = best.copy()
    best[rows] = np.where(gaps[i, new] < gaps[i, best[rows]], new, best[rows])
    return best


def _dot(u: list, v: list) -> float:
    """``Σ u_i v_i`` in the order of numpy's ``einsum("ij,ij->i")`` for a few terms on this
    machine (two interleaved partial sums, an odd last term added to the first; checked once
    per length by :func:`_scalar_order_ok`)."""
    s0 = s1 = 0.0
    n = len(u)
    for i in range(0, n - 1, 2):
        s0 += u[i] * v[i]
        s1 += u[i + 1] * v[i + 1]
    if n % 2:
        s0 += u[-1] * v[-1]
    return s0 + s1


#: an interior minimiser inside the box is kept unless an edge's residual norm is smaller by
#: more than this times the size of the terms (:func:`pair_slopes`): their rounding
_NORM_TIE = 4 * np.finfo(float).eps

#: :func:`pair_slopes` decides edge candidates whose norms tie to rounding by the KKT
#: conditions (:func:`_ties_by_gradient`); ``False``: the first least norm as read (before
#: session 59)
TIE_BY_GRADIENT = True

#: largest number of rows :func:`pair_slopes` solves in Python floats
_SCALAR_ROWS = 6


@functools.lru_cache(maxsize=None)
def _scalar_order_ok(d: int) -> bool:
    """Whether :func:`_dot` and :func:`_sum_squares` give numpy's ``einsum("ij,ij->i")`` and
    ``np.linalg.norm(axis=-1)`` (as :func:`pair_slopes` calls them) bit for bit for length ``d`` (on 256 fixed random rows); if
    not, :func:`pair_slopes` keeps the array path."""
    if d > 7:
        return False
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=(2, 256, d)) * 10.0 ** rng.integers(-3, 4, size=(2, 256, 1))
    dots = np.einsum("ij,ij->i", u, v)
    norms = np.linalg.norm(np.stack([u, v, u, v, u], axis=1), axis=2)[:, 0]  # as pair_slopes
    return all(_dot(a, c) == x and math.sqrt(_sum_squares(a)) == y
               for a, c, x, y in zip(u.tolist(), v.tolist(), dots.tolist(), norms.tolist()))


def _clearly_interior(det, trace, dist, size):
    """Whether an interior minimiser at distance ``dist`` from the box's edges beats every edge
    point by far more than the rounding of the norms :func:`pair_slopes` compares: the
    objective grows towards an edge by at least ``λ_min dist² ≥ det / trace · dist²``, against
    rounding of order ``eps · size²`` (``size`` bounds every candidate's residual).  Floats or
    arrays."""
    return det / trace * dist * dist > 1e-8 * size * size


def _sum_squares(u: list) -> float:
    """``Σ u_i²`` left to right (numpy's ``add.reduce`` of a few terms, as in
    ``np.linalg.norm``)."""
    acc = 0.0
    for a in u:
        acc += a * a
    return acc


def _clip(x: float, lo: float, hi: float) -> float:
    """``np.minimum(np.maximum(x, lo), hi)`` on floats (NaN propagates)."""
    if x != x:
        return x
    return hi if x > hi else (lo if x < lo else x)


def _pair_slopes_rows(b: Array, z1: Array, z2: Array, lo: float, hi: float) -> Array:
    """:func:`pair_slopes` on a few rows in Python floats: the same operations in the same
    order (the same numbers, checked against the vectorised path in
    ``tests/test_subgradient.py``), without numpy's per-call overhead on tiny arrays."""
    out = np.empty((len(b), 2))
    for i, (bb, u, v) in enumerate(zip(b.tolist(), z1.tolist(), z2.tolist())):
        g11, g22, g12 = _dot(u, u), _dot(v, v), _dot(u, v)
        c1, c2 = _dot(bb, u), _dot(bb, v)
        det = g11 * g22 - g12 * g12
        ok = det > 1e-14 * max(g11 * g22, 1e-300)
        safe = det if ok else 1.0
        e1 = (-c1 * g22 + c2 * g12) / safe
        e2 = (-c2 * g11 + c1 * g12) / safe
        res = [x + e1 * y + e2 * w for x, y, w in zip(bb, u, v)]
        r1, r2 = _dot(res, u), _dot(res, v)
        e1 = e1 - (r1 * g22 - r2 * g12) / safe
        e2 = e2 - (r2 * g11 - r1 * g12) / safe
        inside = ok and lo <= e1 <= hi and lo <= e2 <= hi
        size = math.sqrt(_dot(bb, bb)) + max(abs(lo), abs(hi)) * (math.sqrt(g11)
                                                                   + math.sqrt(g22))
        if inside:  # as the array path: the edges only where the interior may not win
            dist = min(e1 - lo, hi - e1, e2 - lo, hi - e2)
            if _clearly_interior(det, g11 + g22, dist, size):
                out[i] = e1, e2
                continue
        mid = 0.5 * (lo + hi)
        edge = [_clip(-c / g, lo, hi) if g > 0 else mid
                for c, g in ((c2 + lo * g12, g22), (c1 + lo * g12, g11),
                             (c2 + hi * g12, g22), (c1 + hi * g12, g11))]
        cands = [(e1, e2), (lo, edge[0]), (edge[1], lo), (hi, edge[2]), (edge[3], hi)]
        Ds = [[x + a1 * y + a2 * w for x, y, w in zip(bb, u, v)] for a1, a2 in cands]
        vals = [math.sqrt(_sum_squares(D)) for D in Ds]
        best, best_val = 1, vals[1]
        for c in range(2, 5):
            if best_val != best_val:  # numpy's argmin stops at the first NaN
                break
            if vals[c] < best_val or vals[c] != vals[c]:
                best, best_val = c, vals[c]
        tied = [c for c in range(1, 5) if vals[c] <= best_val + _NORM_TIE * size]
        if TIE_BY_GRADIENT and len({cands[c] for c in tied}) > 1:  # as _ties_by_gradient
            gaps = _kkt_gaps(np.array([cands[c] for c in tied]),
                             np.array([_dot(Ds[c], u) for c in tied]),
                             np.array([_dot(Ds[c], v) for c in tied]), g11, g22, lo, hi)
            new = int(np.argmin(gaps))
            if gaps[new] < gaps[tied.index(best)]:
                best, best_val = tied[new], vals[tied[new]]
        keep = inside and vals[0] <= best_val + _NORM_TIE * size
        out[i] = cands[0 if keep else best]
    return out


def rows_matvec(A: Array, v: Array) -> Array:
    """``A v`` row by row (``A`` of shape ``(..., d, p)``, ``v`` ``(..., p)``), each row's
    numbers independent of the others and of how many there are: a product and a sum over
    the last, contiguous axis (a stacked ``matmul`` may take BLAS for one stack and its own
    loop for another, which round differently)."""
    return np.sum(A * v[..., None, :], axis=-1)


def kkt_tolerance(b_norm: ArrayLike, Z_norm: ArrayLike, lo: float, hi: float) -> ArrayLike:
    """The KKT tolerance a solution of :func:`box_least_squares` must meet (in units of the
    gradient ``Zᵀ(b + Zη)``): ``64 eps ‖Z‖ (‖b‖ + ‖Z‖ max(|lo|, |hi|))`` (+ 1e-300), the
    rounding of that gradient; ``‖Z‖`` the Frobenius norm.  Floats or arrays (one problem
    per entry)."""
    return 64 * np.finfo(float).eps * Z_norm * (b_norm + Z_norm * max(abs(lo), abs(hi))) + 1e-300


def stable_norm(A: ArrayLike) -> float:
    """The Frobenius norm ``‖A‖``, also where the squares of ``A``'s entries underflow or
    overflow: ``np.linalg.norm`` itself where the largest entry lies within 1e-150 to 1e150
    (its squares are normal numbers; the same bits), else that entry times the norm of ``A``
    scaled by it.  A residual of the logistic loss at a margin of 430 is 1e-187: a plain
    norm of its column was 0, and a tolerance proportional to it (:func:`kkt_tolerance`)
    rejected every minimiser (session 45)."""
    A = np.asarray(A, float)
    top = float(np.max(np.abs(A), initial=0.0))
    if top == 0.0 or 1e-150 <= top <= 1e150 or not np.isfinite(top):
        return float(np.linalg.norm(A))
    return top * float(np.linalg.norm(A / top))


def kkt_violation(b: Array, Z: Array, eta: Array, lo: float, hi: float) -> float:
    """Largest violation of the KKT conditions of :func:`box_least_squares` at ``eta``.

    The gradient ``g = Zᵀ(b + Zη)`` of ``½‖b + Zη‖²`` must be ``>= 0`` where ``η = lo``,
    ``<= 0`` where ``η = hi`` and 0 in between; returns the largest departure (0 at the
    minimiser, in units of ``g``).
    """
    return float(np.max(kkt_departure(eta, Z.T @ (b + Z @ eta), lo, hi), initial=0.0))


def kkt_departure(eta: ArrayLike, g: ArrayLike, lo: float, hi: float) -> Array:
    """Per slope, how far the gradient ``g`` of ``½‖b + Zη‖²`` departs from the KKT
    conditions of the box ``[lo, hi]`` at ``η`` (elementwise): ``−g`` where ``η`` is at
    ``lo``, ``g`` where at ``hi``, ``|g|`` in between; ``<= 0`` where they hold."""
    g = np.asarray(g)
    return np.where(eta <= lo, -g, np.where(eta >= hi, g, np.abs(g)))


def _free_solve(b: Array, Z: Array, x: Array, free: NDArray[np.bool_]) -> Array:
    """Unconstrained least-squares values of the free variables, the others held at ``x``."""
    rhs = -(b + Z[:, ~free] @ x[~free])
    sol, *_ = np.linalg.lstsq(Z[:, free], rhs, rcond=None)
    return sol


def _bvls(b: Array, Z: Array, lo: float, hi: float, x: Array, tol: float) -> Array | None:
    """Stark–Parker bounded-variable least squares from the feasible point ``x``.

    ``state`` is −1 (held at ``lo``), +1 (held at ``hi``) or 0 (free).  The inner loop
    minimises over the free variables, stepping back to the first bound met when the
    unconstrained minimiser leaves the box; the outer loop frees the bound variable whose KKT
    multiplier is most violated.  Each outer iteration lowers the objective, so it ends in at
    most a few ``p`` iterations in practice; ``None`` after ``10 p + 20`` (then the caller falls
    back to scipy).
    """
    p = x.size
    state = np.where(x <= lo, -1, np.where(x >= hi, 1, 0))
    last_freed = -1
    for _ in range(10 * p + 20):
        for _inner in range(p + 1):
            free = state == 0
            if not np.any(free):
                break
            z = _free_solve(b, Z, x, free)
            if np.all((z > lo) & (z < hi)):
                x[free] = z
                break
            xf = x[free]
            dz = z - xf
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                alpha = np.where(z <= lo, (lo - xf) / dz, np.where(z >= hi, (hi - xf) / dz, np.inf))
            # a variable whose unconstrained value is the bound it sits on (dz = 0, 0/0: e.g.
            # a zero column, r_k = 0) meets that bound at once; the others inside never do
            stuck = ((z <= lo) | (z >= hi)) & (dz == 0)
            alpha = np.where(np.isfinite(alpha), np.clip(alpha, 0.0, 1.0),
                             np.where(stuck, 0.0, np.inf))
            step = float(np.min(alpha))
            idx = np.flatnonzero(free)
            x[idx] = np.clip(xf + step * dz, lo, hi)
            hit = idx[alpha <= step]
            state[hit] = np.where(z[alpha <= step] <= lo, -1, 1)
            x[hit] = np.where(state[hit] < 0, lo, hi)
        g = Z.T @ (b + Z @ x)
        viol = np.where(state < 0, -g, np.where(state > 0, g, -np.inf))
        i = int(np.argmax(viol))
        if viol[i] <= tol:
            return x
        if i == last_freed:  # freeing it again makes no progress (degenerate rounding)
            return x if kkt_violation(b, Z, x, lo, hi) <= 10 * tol else None
        state[i] = 0
        last_freed = i
    return None


def _power_of_two_scaled(b: Array, Z: Array) -> tuple[Array, Array]:
    """``(b, Z)`` times the power of two that brings their largest entry near 1, where it lies
    outside ``2^±500`` (else as they are): the box problem's minimisers are unchanged, the
    scaling is exact, and the gradient ``Zᵀ(b + Zη)`` that the KKT test reads no longer
    underflows (every ``r_k`` of the logistic loss at margins of 430 is about 1e-187, and
    that gradient 1e-374: 0, which passed any ``η``) or overflows."""
    top = max(float(np.max(np.abs(b), initial=0.0)), float(np.max(np.abs(Z), initial=0.0)))
    if top == 0.0 or not np.isfinite(top) or 2.0**-500 <= top <= 2.0**500:
        return b, Z
    k = -int(np.frexp(top)[1])
    return np.ldexp(b, k), np.ldexp(Z, k)


def box_least_squares(
    b: ArrayLike, Z: ArrayLike, lo: float, hi: float, start: ArrayLike | None = None
) -> Array:
    """Exact minimiser ``η ∈ [lo, hi]^p`` of ``‖b + Z η‖`` (``Z`` has shape ``(d, p)``).

    Closed form for ``p = 1`` (:func:`single_slope`); otherwise the active-set method
    :func:`_bvls` (cost polynomial in ``p``; ``start``, e.g. the previous event's slopes,
    warm-starts it), checked against the KKT conditions, with scipy's BVLS as the fallback;
    a problem whose entries all lie below ``2^-500`` or above ``2^500`` is first scaled by a
    power of two (:func:`_power_of_two_scaled`), and the tolerance reads norms that do not
    underflow (:func:`stable_norm`).  Returns one minimiser (the minimal-norm ``b + Z η`` is
    unique).

    Raises
    ------
    RuntimeError
        If no method reaches the KKT conditions (never observed; it would signal a
        non-finite input).
    """
    b = np.asarray(b, float)
    Z = np.asarray(Z, float)
    p = Z.shape[1]
    if p == 0:
        return np.zeros(0)
    if p == 1:
        z = Z[:, 0]
        return single_slope(b @ z, z @ z, lo, hi)[0].reshape(1)
    if p == 2:
        return pair_slopes(b[None], Z[None, :, 0], Z[None, :, 1], lo, hi)[0]
    b, Z = _power_of_two_scaled(b, Z)
    # a column of subnormal entries (r_k subnormal) changes ‖b + Zη‖ by less than the
    # smallest normal number: zero, or least squares would divide by it (an infinite free
    # solve, then NaN)
    Z = np.where(np.max(np.abs(Z), axis=0) < np.finfo(float).tiny, 0.0, Z)
    tol = kkt_tolerance(stable_norm(b), stable_norm(Z), lo, hi)
    if start is None:
        x0 = np.clip(np.linalg.lstsq(Z, -b, rcond=None)[0], lo, hi)
    else:
        x0 = np.clip(np.asarray(start, float).copy(), lo, hi)
    x = _bvls(b, Z, lo, hi, x0, tol)
    if x is not None:
        return x
    from scipy.optimize import lsq_linear

    res = lsq_linear(Z, -b, bounds=(lo, hi), method="bvls", tol=1e-14)
    x = np.clip(res.x, lo, hi)
    if kkt_violation(b, Z, x, lo, hi) <= 1e3 * tol:
        return x
    raise RuntimeError("box_least_squares: no KKT point found (non-finite input?)")


def pinned_gap(b: ArrayLike, Z: ArrayLike, i: int, upper: bool, lo: float, hi: float) -> float:
    """How far the slope ``η_i`` is from leaving its box at a bound: the KKT multiplier of
    ``min ‖b + Z η‖²/2`` over ``[lo, hi]^p`` with ``η_i`` pinned at that bound (``hi`` if
    ``upper``, else ``lo``) and the other slopes minimised (:func:`box_least_squares`).

    ``<D, z_i>`` at the pinned minimiser ``D``, signed so that the pinned point is the box's
    minimiser (the slope has left, KKT) where the gap is ``>= 0`` and not where it is ``< 0``
    (moving ``η_i`` into the box lowers the norm there).  Unlike the minimiser's own slope,
    which sits at the bound from the exit on, or its normal velocity, 0 until then, the gap
    is smooth in ``b, Z`` through the exit and changes sign there (for one slope: ``‖z‖²
    (bound − η*)``, signed): the integrator locates every exit at its root
    (:meth:`pwflow.regime.RegimeMixin._exit_time`)."""
    b = np.asarray(b, float)
    Z = np.asarray(Z, float)
    zi = Z[:, i]
    rest = np.delete(Z, i, axis=1)
    bp = b + (hi if upper else lo) * zi
    D = bp + rest @ box_least_squares(bp, rest, lo, hi) if rest.shape[1] else bp
    mu = float(D @ zi)
    return -mu if upper else mu


def parallel_classes(XK: ArrayLike, tol: float = SPAN_RTOL) -> tuple[NDArray[np.intp], NDArray[np.int8]]:
    """Group data points that are parallel (their hyperplanes coincide).

    Two points are parallel where the sine of their angle is at most ``tol``
    (:data:`pwflow.cones.SPAN_RTOL`, the rank cut of every span and projector, so that a point
    is in a class exactly where :func:`pwflow.filippov.implied_hyperplanes` puts it on the
    class's hyperplane).  Returns, per row of ``XK``, the index of its class's first row (the
    class *head*) and its orientation ``sign <x_k, x_head>``: a neuron lies on all of a class
    or on none, and the side ``s`` of the head's hyperplane is the side ``orientation × s`` of
    the member's (``x_k = c x_l`` with ``c < 0`` puts the two on opposite sides).
    """
    XK = np.asarray(XK, float)
    p = XK.shape[0]
    rep = np.arange(p)
    orient = np.ones(p, dtype=np.int8)
    if p < 2:
        return rep, orient
    U = XK / np.maximum(np.linalg.norm(XK, axis=1), 1e-300)[:, None]
    near = _near_parallel_candidates(U, tol)
    for i in range(p):
        if rep[i] != i:
            continue
        later = near(i)
        later = later[(later > i) & (rep[later] == later)]
        cos = U[later] @ U[i]
        # the sine of the angle, as a residual (1 - |cos| would lose it below ~1e-8)
        sine = np.linalg.norm(U[later] - cos[:, None] * U[i], axis=1)
        rep[later[sine <= tol]] = i
        orient[later[sine <= tol]] = np.where(cos[sine <= tol] < 0, -1, 1).astype(np.int8)
    return rep, orient


#: above this many rows, :func:`parallel_classes` compares each row only with the rows whose
#: projection on a fixed direction is close to its own (or to its opposite), not with all
_DENSE_CLASSES = 256


def _near_parallel_candidates(U: Array, tol: float):
    """``i ↦`` indices of the unit rows that may be parallel to ``U[i]`` (a superset).

    For a few rows, all of them.  For many (a whole dataset, e.g. ``snap_parallel`` on
    thousands of points), those whose projection ``s_j = <u_j, g>`` on a fixed unit direction
    ``g`` lies within ``4 tol`` of ``±s_i``: a sine at most ``tol`` puts ``u_j`` within
    ``tol + tol²`` of ``±u_i``, so no parallel row is missed, and time and memory stay
    ``O(p log p)`` plus the candidates (``p²`` for the Gram matrix before: 800 MB at
    ``p = 10⁴``)."""
    p = U.shape[0]
    if p <= _DENSE_CLASSES:
        every = np.arange(p)
        return lambda i: every
    g = np.random.default_rng(0).normal(size=U.shape[1])
    proj = U @ (g / np.linalg.norm(g))
    order = np.argsort(proj, kind="stable")
    ordered = proj[order]
    width = 4.0 * tol + 1e-12

    def near(i: int) -> NDArray[np.intp]:
        found = [order[np.searchsorted(ordered, c - width, "left"):
                       np.searchsorted(ordered, c + width, "right")]
                 for c in (proj[i], -proj[i])]
        return np.unique(np.concatenate(found))

    return near


#: sine of the angle below which two points of one class (:func:`parallel_classes`) count as
#: exactly parallel already: their directions differ by rounding, not by a wedge
PARALLEL_ROUNDING = 64 * np.finfo(float).eps


def snap_parallel(X: ArrayLike, tol: float = SPAN_RTOL) -> tuple[Array, Array]:
    """The data with every point of a class of parallel points (:func:`parallel_classes`)
    replaced by its projection onto the class head's direction, and how far each moved.

    The selection rule treats the points of a class as parallel (one slope parameter, one
    hyperplane); their offsets ``<w, x_k>`` must then vanish together.  Points at an angle
    between :data:`PARALLEL_ROUNDING` and ``tol`` (``SPAN_RTOL``, 1e-10) do not: a neuron
    put on the class's hyperplane sits ``~1e-11 ‖w‖ ‖x_k‖`` off one of them, on the wrong
    side of it after leaving, and the next event put it back (a Zeno chatter: exploration
    seeds 252, 1100, 1168, 1320).  The flow is computed for the snapped data, a change of at
    most ``tol ‖x_k‖`` per point (and in the outputs ``h(x_k)`` of that order, relative),
    exactly.  Returns ``(X_snapped, moved)``, ``moved[k] = ‖x_k − x_k'‖ / ‖x_k‖`` (0 for
    points left as they are).
    """
    X = np.asarray(X, float)
    rep, _ = parallel_classes(X, tol)
    out = X.copy()
    moved = np.zeros(X.shape[0])
    for k in np.flatnonzero(rep != np.arange(X.shape[0])):
        head = X[rep[k]]
        proj = (float(X[k] @ head) / float(head @ head)) * head
        size = float(np.linalg.norm(X[k]))
        gap = float(np.linalg.norm(X[k] - proj)) / size
        if gap > PARALLEL_ROUNDING:
            out[k] = proj
            moved[k] = gap
    return out, moved


#: :func:`snap_dependent` examines the spans of ``s`` earlier points for each size ``s`` with at
#: most this many subsets ``C(n, s)`` (every pair up to n = 200; triples up to n = 50; sets of
#: four up to n = 26; of five up to n = 20)
DEPENDENT_SNAP_MAX_SUBSETS = 20_000

#: subsets per vectorised block in :func:`_nearest_spans`
_SUBSET_BLOCK = 2048


def snap_dependent(X: ArrayLike, tol: float = SPAN_RTOL,
                   max_subsets: int = DEPENDENT_SNAP_MAX_SUBSETS) -> tuple[Array, Array]:
    """The data with every point that lies within ``tol`` (relative) of the span of ``s``
    earlier points (``2 <= s <= d − 1``), but not on it to rounding, moved onto that span;
    and how far each moved.

    The analogue of :func:`snap_parallel` for dependent points: a neuron on ``∩_{i∈S} x_i^⊥``
    is on ``x_l^⊥`` too where ``x_l`` is within ``SPAN_RTOL`` of ``span(x_S)``
    (:func:`pwflow.filippov.implied_hyperplanes`), but its offset ``<w, x_l>`` is ``~1e-11
    ‖w‖ ‖x_l‖``, not 0, and after leaving the neuron sat on the wrong side of ``x_l`` and the
    next event put it back (exploration seed 200 067: ``x_2`` 1.75e-11 from the plane of
    ``x_0, x_1``, d = 4; 33 347 events for t = 1.1e-4, then the no-progress guard).  Moved
    onto the plane it runs to t = 5 in 14 events, 0.06 estimates from gradient descent.
    Likewise for larger spans (exploration family 17, seed 400 185: ``x_3`` 1e-11 from the
    span of three points, d = 4: 664 events, then the Zeno guard; moved, 24 events, within
    the estimate of gradient descent).

    Sizes ``s = 2, 3, …`` are examined in turn while ``C(n, s) <= max_subsets``, on the data
    as given: a point is decided by the smallest size with a span of earlier points of full
    numerical rank (:func:`pwflow.cones.span_split`) within ``tol``, the nearest of that size;
    it stays where that span is within rounding (:data:`PARALLEL_ROUNDING`).  The points then
    move in index order, each onto the span of its points as moved themselves (the later point
    moves, as a class member moves onto its head).  Points near a span of more points than the
    budget allows are not moved.
    """
    X = np.array(X, dtype=float, copy=True)
    n, d = X.shape
    moved = np.zeros(n)
    decided = np.zeros(n, dtype=bool)
    onto: dict[int, NDArray[np.intp]] = {}
    for s in range(2, d):
        if s >= n or math.comb(n, s) > max_subsets:
            break
        best, where = _nearest_spans(X, s, tol, ~decided)
        for k in np.flatnonzero((best > PARALLEL_ROUNDING) & (best <= tol)):
            onto[int(k)], moved[k] = where[k], best[k]
        decided |= best <= tol
    for k in sorted(onto):
        B = span_split(X[onto[k]])[1][: onto[k].size]
        X[k] = (X[k] @ B.T) @ B
    return X, moved


def _nearest_spans(X: Array, s: int, tol: float, open_: NDArray[np.bool_]
                   ) -> tuple[Array, NDArray[np.intp]]:
    """For each point ``k`` with ``open_[k]``: the smallest relative distance of ``x_k`` to
    the span of ``s`` earlier points of full numerical rank, if at most ``tol`` (``inf``
    otherwise), and those points (rows of shape ``(n, s)``)."""
    n = X.shape[0]
    U = X / np.linalg.norm(X, axis=1)[:, None]
    best = np.full(n, np.inf)
    where = np.zeros((n, s), dtype=np.intp)
    combos = np.fromiter(itertools.chain.from_iterable(itertools.combinations(range(n), s)),
                         dtype=np.intp).reshape(-1, s)
    for lo in range(0, combos.shape[0], _SUBSET_BLOCK):
        C = combos[lo:lo + _SUBSET_BLOCK]
        Q, ok = _orthonormal_rows(U[C], tol)
        coef = np.einsum("nd,csd->csn", U, Q)
        # a cheap filter (1 − |P u|² loses the distance below ~1e-8), then the residual;
        # the later point moves, onto earlier ones
        near = 1.0 - np.einsum("csn,csn->cn", coef, coef) <= 1e-12
        near &= ok[:, None] & (np.arange(n)[None] > C[:, -1:]) & open_[None]
        c, k = np.nonzero(near)
        if not c.size:
            continue
        res = U[k] - np.einsum("ps,psd->pd", coef[c, :, k], Q[c])
        dist = np.linalg.norm(res, axis=1)
        sv = np.linalg.svd(X[C[c]], compute_uv=False)  # span_split's rank, on the raw rows
        dist[np.sum(sv > tol * sv[:, :1], axis=1) < s] = np.inf
        order = np.lexsort((dist, k))  # by point, nearest first
        first = order[np.r_[True, k[order][1:] != k[order][:-1]]]
        better = first[dist[first] < best[k[first]]]
        best[k[better]], where[k[better]] = dist[better], C[c[better]]
    return best, where


def _orthonormal_rows(A: Array, tol: float) -> tuple[Array, NDArray[np.bool_]]:
    """Orthonormal bases of the rows of each ``A[c]`` (shape ``(c, s, d)``) by Gram–Schmidt
    twice (Kahan, Parlett), all subsets at once, and whether the rows are independent (each
    row's part off the previous ones above ``tol``; unit rows)."""
    Q = np.zeros_like(A)
    ok = np.ones(A.shape[0], dtype=bool)
    for i in range(A.shape[1]):
        v = A[:, i].copy()
        for _ in range(2):
            v -= np.einsum("ci,cid->cd", np.einsum("cid,cd->ci", Q[:, :i], v), Q[:, :i])
        size = np.linalg.norm(v, axis=1)
        ok &= size > tol
        Q[:, i] = v / np.where(size > 0, size, 1.0)[:, None]
    return Q, ok


def snap_data(X: ArrayLike) -> tuple[Array, Array]:
    """:func:`snap_parallel`, then :func:`snap_dependent`: the data a run integrates, and
    how far each point moved (relative; 0 for points left as they are)."""
    X, moved = snap_parallel(X)
    X, moved2 = snap_dependent(X)
    return X, np.maximum(moved, moved2)


def class_columns(b: Array, Z: Array, rep: NDArray[np.intp], orient: NDArray[np.int8],
                  gamma: float) -> tuple[Array, Array, NDArray[np.intp]]:
    """The box problem in the class parameters: fixed part, one column per class, heads.

    A class (parallel points, :func:`parallel_classes`) has one parameter ``t ∈ [γ, 1]``, the
    slope of its head; a member of orientation ``+`` has slope ``t`` and one of orientation
    ``−`` (on the other side of the common hyperplane) ``1 + γ − t`` (N3).  So
    ``b + Σ_k η_k z_k = b' + Σ_c t_c z'_c`` with ``b' = b + (1 + γ) Σ_{−} z_k`` and
    ``z'_c = Σ_{+} z_k − Σ_{−} z_k`` over the class.
    """
    heads = np.flatnonzero(rep == np.arange(rep.size))
    col = np.searchsorted(heads, rep)
    Zc = np.zeros((Z.shape[0], heads.size))
    np.add.at(Zc.T, col, (Z * orient).T)
    neg = orient < 0
    b2 = b + (1.0 + gamma) * Z[:, neg].sum(axis=1)
    return b2, Zc, heads


def free_slopes(b: ArrayLike, Z: ArrayLike, gamma: float,
                classes: tuple[NDArray[np.intp], NDArray[np.int8]] | None = None,
                start: ArrayLike | None = None) -> Array:
    """Minimal-norm free slopes ``η_K`` of Eq. (6), parallel points coupled (N3).

    Parameters
    ----------
    b : array, shape (d,)
        Fixed part of the subgradient.
    Z : array, shape (d, p)
        Free columns ``z_k = −(1/n) r_k x_k``, ``k ∈ K``.
    gamma : float
        Lower bound of the slopes.
    classes : (rep, orient), optional
        :func:`parallel_classes` of the points ``x_K`` (they cannot be read off ``Z``, whose
        columns vanish where ``r_k = 0``).  Omitted: no two points of ``K`` are parallel, the
        slopes are independent.
    start : array, optional
        Warm start (slopes on ``K``).

    Returns
    -------
    eta : array, shape (p,)
        Slopes minimising ``‖b + Z η‖`` over ``η ∈ [γ, 1]^p`` with, inside each class, the
        slopes of parallel points tied as in :func:`class_columns`.
    """
    b = np.asarray(b, float)
    Z = np.asarray(Z, float)
    if classes is None or np.all(classes[0] == np.arange(Z.shape[1])):
        return box_least_squares(b, Z, gamma, 1.0, start)
    rep, orient = classes
    b2, Zc, heads = class_columns(b, Z, rep, orient, gamma)
    t0 = None if start is None else np.asarray(start, float)[heads]
    t = box_least_squares(b2, Zc, gamma, 1.0, t0)[np.searchsorted(heads, rep)]
    return np.where(orient > 0, t, 1.0 + gamma - t)


def minimal_norm_on_face(
    u: ArrayLike, X: ArrayLike, r: ArrayLike, gamma: float
) -> MinNormResult:
    """``D_u^θ`` of Appendix D.1: the minimal-norm element of 𝔇 on the face ``A^{-1}(u)``."""
    u = np.asarray(u)
    b, Z, K = subgradient_parts(u, X, r, gamma)
    etaK = free_slopes(b, Z, gamma, parallel_classes(np.asarray(X, float)[K]))
    eta = face_slopes(u, gamma)
    eta[K] = etaK
    return MinNormResult(b + Z @ etaK, eta, K)


def minimal_norm_on_face_rows(u: ArrayLike, X: ArrayLike, R: ArrayLike, gamma: float) -> Array:
    """``D_u^θ`` of Appendix D.1 on one face for many residuals: row ``i`` is
    :func:`minimal_norm_on_face` ``(u, X, R[i], gamma).D`` (to rounding).

    For checks that read every face at every snapshot (Lemma 11): the face's free set ``K`` and
    its parallel classes are found once, the fixed parts ``b`` are one matrix product, and the
    one- and two-slope problems are solved for all rows at once (:func:`single_slope`,
    :func:`pair_slopes`, the closed forms :func:`box_least_squares` uses); three or more free
    slopes, or parallel points in ``K``, go row by row through :func:`free_slopes`.

    Parameters
    ----------
    u : array, shape (n,)
        The face's pattern.
    X : array, shape (n, d)
        Data.
    R : array, shape (s, n)
        ``∂_1 l(h_θ(x_k), y_k)`` for each of ``s`` parameters ``θ``.
    gamma : float
        Leaky-ReLU slope.

    Returns
    -------
    D : array, shape (s, d)
    """
    u = np.asarray(u)
    X = np.asarray(X, float)
    R = np.asarray(R, float)
    if R.ndim != 2 or R.shape[1] != X.shape[0]:
        raise ValueError(f"R must have shape (s, n) with n = {X.shape[0]}, got {R.shape}")
    B, Z, K = subgradient_parts(u, X, R, gamma)  # Z: (s, d, |K|)
    if K.size == 0 or R.shape[0] == 0:
        return B
    classes = parallel_classes(X[K])
    coupled = not np.all(classes[0] == np.arange(K.size))
    if K.size == 1:
        z = Z[:, :, 0]
        eta = single_slope(np.einsum("sd,sd->s", B, z), np.einsum("sd,sd->s", z, z),
                           gamma, 1.0)[0][:, None]
    elif K.size == 2 and not coupled:
        eta = pair_slopes(B, Z[:, :, 0], Z[:, :, 1], gamma, 1.0)
    else:
        eta = np.stack([free_slopes(B[i], Z[i], gamma, classes) for i in range(R.shape[0])])
    return B + np.einsum("sdk,sk->sd", Z, eta)


def minimal_norm_subgradient(
    w: ArrayLike, X: ArrayLike, r: ArrayLike, gamma: float = 0.0, zero_tol: float = 0.0
) -> MinNormResult:
    """``D(w, θ)``: the minimal-norm element of 𝔇(w, θ) (Section 3).

    Parameters
    ----------
    w : array, shape (d,)
        The neuron.
    X : array, shape (n, d)
        Data.
    r : array, shape (n,)
        ``∂_1 l(h_θ(x_k), y_k)``; at ``θ = 0`` this is ``∂_1 l(0, y_k)`` and the result is
        ``D(w, 0)`` of Eq. (7).
    gamma : float
        Leaky-ReLU slope.
    zero_tol : float
        Relative tolerance below which ``<w, x_k>`` counts as zero.
    """
    return minimal_norm_on_face(activation_pattern(w, X, zero_tol), X, r, gamma)
