"""Hypothesis strategies for the differential tests (issue 10, item 3).

The strategies draw the data and the weights themselves (never a seed), so that hypothesis can
shrink a failure to a small readable example.  A drawn :class:`Problem` is printed by
hypothesis as plain lists, which is a reproducer.

Variants
--------
* :func:`problems` — generic, well-scaled: ``d ∈ {2,3,4,5}`` (or ``d_values``), ``n ≤ 10``,
  ``m ≤ 8``, ``γ ∈ {0, 0.1, 0.5}``, square or logistic loss, balanced or unbalanced init;
  rows of ``X`` and ``W`` of norm ≥ 0.25 (resp. ≥ 0.1 · scale), no two data points nearly
  parallel, no neuron starting on a hyperplane, entries below 1e-3 in magnitude snapped to 0.
  With ``gammas=NEAR_LINEAR_GAMMAS``, ``γ ∈ {0.9, 0.99, 1}``: kinks of jump ``1 − γ`` small
  or zero (``γ = 1`` has its own reference, :func:`reference.linear_flow`).
* :func:`multi_active_problems` — several hyperplanes active at once: data on a dyadic grid
  (so that dot products are exact), a few points in a common ``(d−2)``-dimensional coordinate
  subspace ``S`` (their hyperplanes all contain ``S^⊥``, a codimension-(d−2) set where three or
  more hyperplanes meet), and neurons initialised exactly on the intersection of two
  hyperplanes (or on ``S^⊥``).
* :func:`collinear_problems` — points that are (signed, power-of-two) multiples of others, or
  repeated, so that several data points share one hyperplane exactly.
* :func:`repeated_point_problems` — a generic problem with one point repeated with labels of
  its own (square loss), for the exact merge identity of :class:`pwflow.Dataset`.
* :func:`integer_problems` — data with integer entries in ``{−2, …, 2}``: repeated,
  opposite and linearly dependent rows by the dozen (``x_5 = 2 x_2 + 2 x_3``), so that
  neurons meet intersections of dependent hyperplanes *during* the run; the neurons start
  off every hyperplane (session 36: a campaign of such data found the ``'gd'`` policy held at
  an intersection that gradient descent passes).
* :func:`span_problems` — rank-deficient data: ``n`` points of ``R^r`` (generic or integer)
  placed in ``R^d``, ``d > r``, by orthonormal columns ``B``; the problem comes with ``B``, so
  that a test can run its span's problem ``(X B, W B)`` next to it (session 40: a neuron at
  ``w ∈ ker X`` was not watched as one at ``w = 0`` is, and a branch went unlogged).
* :func:`ker_x_start_problems` — rank-deficient data in a coordinate subspace (``B`` the first
  ``r`` unit vectors, so that the offsets are exact) with one or more neurons started in
  ``ker X`` (``w ≠ 0``, every offset 0 exactly), the others anywhere off the hyperplanes
  (session 42: such a start was decided on its face and not watched, and its branch point
  was logged half a unit of time after its span's run).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

import pwflow

__all__ = ["Problem", "problems", "NEAR_LINEAR_GAMMAS", "multi_active_problems",
           "collinear_problems", "repeated_point_problems", "integer_problems", "span_problems",
           "ker_x_start_problems", "matrices",
           "general_position"]

GAMMAS = (0.0, 0.1, 0.5)
#: slopes near and at the linear network (``γ = 1``: σ is the identity, no kink at all; the
#: box ``[γ, 1]`` of the free slopes is thin or a point)
NEAR_LINEAR_GAMMAS = (0.9, 0.99, 1.0)
LOSSES = ("square", "logistic")


@dataclass(frozen=True)
class Problem:
    """One drawn problem: data, initial weights, slope, loss and a short horizon."""

    X: np.ndarray
    y: np.ndarray
    W: np.ndarray
    a: np.ndarray
    gamma: float
    loss: str
    t_max: float
    kind: str

    @property
    def d(self) -> int:
        return int(self.X.shape[1])

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    @property
    def m(self) -> int:
        return int(self.W.shape[0])

    def data(self) -> pwflow.Dataset:
        return pwflow.Dataset(self.X, self.y)

    def init(self) -> pwflow.Init:
        return pwflow.from_arrays(self.W, self.a)

    def describe(self) -> str:
        """A self-contained reproducer (``repr`` of every array)."""
        return (f"Problem(kind={self.kind!r}, d={self.d}, n={self.n}, m={self.m}, "
                f"gamma={self.gamma}, loss={self.loss!r}, t_max={self.t_max},\n"
                f"  X={self.X.tolist()},\n  y={self.y.tolist()},\n"
                f"  W={self.W.tolist()},\n  a={self.a.tolist()})")

    def __repr__(self) -> str:  # hypothesis prints falsifying examples with repr
        return self.describe()


def matrices(rows: int, cols: int, lo: float = -2.0, hi: float = 2.0) -> st.SearchStrategy:
    """A drawn ``(rows, cols)`` float matrix (``cols = 0``: a vector of length ``rows``),
    entries in ``[lo, hi]`` with magnitudes below 1e-3 snapped to 0: for the tests of the
    maths on arbitrary small inputs (the entries, not a seed, so that a failure shrinks)."""
    def build(vals):
        a = _snap(np.array(vals, dtype=float))
        return a if cols == 0 else a.reshape(rows, cols)

    size = rows * max(cols, 1)
    return st.lists(_floats(lo, hi), min_size=size, max_size=size).map(build)


@st.composite
def general_position(draw, n: int, d: int, min_sine: float = 1e-2) -> np.ndarray:
    """``n`` drawn points of ``R^d`` in general position: every ``min(n, d)`` of them span a
    subspace of that dimension with a well-conditioned frame (the volume of their normalised
    rows at least ``min_sine``), as the counts of a generic arrangement assume."""
    import itertools

    X = draw(matrices(n, d), label="X")
    norms = np.linalg.norm(X, axis=1)
    assume(np.all(norms > 0.1))
    U = X / norms[:, None]
    k = min(n, d)
    for rows in itertools.combinations(range(n), k):
        sub = U[list(rows)]
        assume(np.sqrt(abs(np.linalg.det(sub @ sub.T))) >= min_sine)
    return X


# ---------------------------------------------------------------------------- pieces
def _floats(lo: float, hi: float):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False,
                     width=64)


def _snap(v: np.ndarray, tiny: float = 1e-3) -> np.ndarray:
    """Well-scaled entries: magnitudes below ``tiny`` become exact zeros (no 1e-300 entries,
    whose products make a neuron start 1e-70 off a hyperplane: a degenerate case of its own)."""
    return np.where(np.abs(v) < tiny, 0.0, v)


def _matrix(draw, rows: int, cols: int, lo: float, hi: float) -> np.ndarray:
    return _snap(np.array(draw(st.lists(st.lists(_floats(lo, hi), min_size=cols, max_size=cols),
                                        min_size=rows, max_size=rows)), dtype=float))


def _dyadic_matrix(draw, rows: int, cols: int, num: int = 16, den: int = 8) -> np.ndarray:
    """Entries ``k / den`` with ``|k| ≤ num``: products and sums of a few are exact."""
    ints = draw(st.lists(st.lists(st.integers(-num, num), min_size=cols, max_size=cols),
                         min_size=rows, max_size=rows))
    return np.array(ints, dtype=float) / den


def _labels(draw, n: int, loss: str) -> np.ndarray:
    if loss == "logistic":
        return np.array(draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=n, max_size=n)))
    return _snap(np.array(draw(st.lists(_floats(-1.5, 1.5), min_size=n, max_size=n))))


def _output_weights(draw, W: np.ndarray, balanced: bool, min_abs: float = 0.05) -> np.ndarray:
    """``a_j = ±‖w_j‖`` (balanced) or ``a_j = s_j · c_j · max‖w‖`` with ``|c_j| ∈ [min_abs, 1]``.

    ``min_abs = 0`` allows ``a_j = 0`` (a neuron whose hidden weights start at rest).
    """
    m = W.shape[0]
    norms = np.linalg.norm(W, axis=1)
    if balanced:
        s = np.array(draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=m, max_size=m)))
        return s * norms
    c = _snap(np.array(draw(st.lists(_floats(-1.0, 1.0), min_size=m, max_size=m))), 1e-3)
    c = np.where(np.abs(c) < min_abs, np.where(c < 0, -min_abs, min_abs), c) if min_abs else c
    return c * max(float(np.max(norms)), 1e-3)


def _well_separated(X: np.ndarray, min_norm: float = 0.25, max_cos: float = 0.99) -> bool:
    xn = np.linalg.norm(X, axis=1)
    if np.any(xn < min_norm):
        return False
    C = (X @ X.T) / np.outer(xn, xn)
    np.fill_diagonal(C, 0.0)
    return bool(np.all(np.abs(C) <= max_cos))


def _off_hyperplanes(W: np.ndarray, X: np.ndarray, tol: float = 1e-3) -> bool:
    """No neuron starts on (or within ``tol`` relative of) a hyperplane: a start on a
    repulsive face is a non-uniqueness of Eq. (2), drawn deliberately by the other variants."""
    S = np.abs(W @ X.T) / np.outer(np.linalg.norm(W, axis=1), np.linalg.norm(X, axis=1))
    return bool(np.all(S > tol))


def _common(draw, d_values=(2, 3, 4, 5), gammas=GAMMAS):
    d = draw(st.sampled_from(d_values))
    n = draw(st.integers(2, 10))
    m = draw(st.integers(1, 8))
    gamma = draw(st.sampled_from(gammas))
    loss = draw(st.sampled_from(LOSSES))
    balanced = draw(st.booleans())
    scale = draw(st.sampled_from([0.1, 0.3, 1.0]))
    return d, n, m, gamma, loss, balanced, scale


# ---------------------------------------------------------------------------- strategies
@st.composite
def problems(draw, t_max: float = 5.0, gammas: tuple[float, ...] = GAMMAS,
             d_values: tuple[int, ...] = (2, 3, 4, 5)) -> Problem:
    """Generic well-scaled problems (see the module docstring); ``γ`` drawn from ``gammas``
    (:data:`NEAR_LINEAR_GAMMAS`: the kinks' jumps ``1 − γ`` small or zero), ``d`` from
    ``d_values``."""
    d, n, m, gamma, loss, balanced, scale = _common(draw, d_values=d_values, gammas=gammas)
    X = _matrix(draw, n, d, -2.0, 2.0)
    assume(_well_separated(X))
    y = _labels(draw, n, loss)
    W = _matrix(draw, m, d, -1.0, 1.0) * scale
    assume(np.all(np.linalg.norm(W, axis=1) >= 0.1 * scale))
    assume(_off_hyperplanes(W, X))
    a = _output_weights(draw, W, balanced)
    return Problem(X, y, W, a, gamma, loss, t_max, "balanced" if balanced else "unbalanced")


@st.composite
def multi_active_problems(draw, t_max: float = 5.0) -> Problem:
    """Several hyperplanes active at once (exactly, in floating point)."""
    d, n, m, gamma, loss, balanced, scale = _common(draw, (3, 4, 5))
    n = max(n, 3)
    X = _dyadic_matrix(draw, n, d)
    # a few points in the coordinate subspace S = span(e_0 .. e_{d-3}) (dimension d − 2), after
    # a drawn permutation of the coordinates: their hyperplanes all contain S^⊥
    perm = np.array(draw(st.permutations(range(d))))
    p = draw(st.integers(0, min(n, d)))
    X[:p, perm[d - 2:]] = 0.0
    assume(np.all(np.linalg.norm(X, axis=1) > 0))
    assume(np.unique(X, axis=0).shape[0] == n)
    y = _labels(draw, n, loss)
    W = _dyadic_matrix(draw, m, d, num=8, den=8)
    for j in range(m):
        how = draw(st.sampled_from(["free", "pair", "S_perp"] if p else ["free", "pair"]))
        if how == "pair":
            k, l = draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=2, unique=True))
            c = perm[:3]  # three coordinates: the cross product of the restrictions is exact
            w = np.zeros(d)
            w[c] = np.cross(X[k, c], X[l, c])
            if d > 3 and np.all(X[k, perm[3:]] == 0) and np.all(X[l, perm[3:]] == 0):
                w[perm[3:]] = W[j, perm[3:]]  # still orthogonal to x_k and x_l
            W[j] = w
        elif how == "S_perp":
            W[j, perm[: d - 2]] = 0.0
    norms = np.linalg.norm(W, axis=1)
    assume(np.all(norms > 0))
    # rescale by powers of two (exact) to a norm near `scale`
    W = W * (2.0 ** np.round(np.log2(scale / norms)))[:, None]
    a = _output_weights(draw, W, balanced, min_abs=0.0)  # a_j = 0 deliberately possible
    return Problem(X, y, W, a, gamma, loss, t_max,
                   ("balanced" if balanced else "unbalanced") + "/multi-active")


@st.composite
def collinear_problems(draw, t_max: float = 5.0) -> Problem:
    """Points that are exact multiples (±½, ±2, ±1: repeated points too) of other points:
    shared hyperplanes."""
    d, n, m, gamma, loss, balanced, scale = _common(draw)
    n = max(n, 2)
    base = draw(st.integers(1, n - 1))
    Xb = _matrix(draw, base, d, -2.0, 2.0)
    assume(_well_separated(Xb))
    rows = [Xb]
    for _ in range(n - base):
        k = draw(st.integers(0, base - 1))
        c = draw(st.sampled_from([-2.0, -1.0, -0.5, 0.5, 1.0, 2.0]))
        rows.append(c * Xb[k : k + 1])
    X = np.vstack(rows)
    y = _labels(draw, n, loss)
    W = _matrix(draw, m, d, -1.0, 1.0) * scale
    assume(np.all(np.linalg.norm(W, axis=1) >= 0.1 * scale))
    a = _output_weights(draw, W, balanced)
    return Problem(X, y, W, a, gamma, loss, t_max,
                   ("balanced" if balanced else "unbalanced") + "/collinear")


@st.composite
def integer_problems(draw, t_max: float = 5.0) -> Problem:
    """Integer data in ``{−2, …, 2}^d`` (no zero row), generic weights off every hyperplane."""
    d, n, m, gamma, loss, balanced, scale = _common(draw, (3, 4, 5))
    n = max(n, 3)
    X = np.array(draw(st.lists(st.lists(st.integers(-2, 2), min_size=d, max_size=d),
                               min_size=n, max_size=n)), dtype=float)
    assume(np.all(np.any(X != 0, axis=1)))
    y = _labels(draw, n, loss)
    W = _matrix(draw, m, d, -1.0, 1.0) * scale
    assume(np.all(np.linalg.norm(W, axis=1) >= 0.1 * scale))
    assume(_off_hyperplanes(W, X))
    a = _output_weights(draw, W, balanced)
    return Problem(X, y, W, a, gamma, loss, t_max,
                   ("balanced" if balanced else "unbalanced") + "/integer")


@st.composite
def large_output_problems(draw, t_max: float = 10.0) -> Problem:
    """Generic data and small hidden weights with output weights 1.5 to 10 times as large:
    ``a_j² − ‖w_j‖² > 0`` (Lemma 1) lets ``w_j`` reach 0 with ``a_j ≠ 0``, where the neuron
    is held, passes through, or leaves later (``docs/integrator.md``, sessions 37–38; one
    problem in fifteen of the campaign that found those cases reaches 0 by t = 20).
    d = 2, 3, 4 with three neurons at least: in d = 5 few draws reach 0 (the campaign's
    cases of d = 4, 5 are its own).  Few of these draws reach 0 (5 of 500 in the thorough
    profile, against a quarter of numpy's uniform draws in d = 2); the property still
    compares the ``'gd'`` policy in this regime."""
    d, _, m, gamma, loss, _, _ = _common(draw, (2, 3, 4))
    # more points than dimensions (a neuron reaches 0 down a ray, on d − 1 hyperplanes), at
    # least 2° apart (ten points in the plane are rarely 8° apart)
    n, m = draw(st.integers(d + 1, 2 * d + 4)), max(m, 3)
    X = _matrix(draw, n, d, -2.0, 2.0)
    assume(_well_separated(X, max_cos=0.9995))
    y = _labels(draw, n, loss)
    scale = draw(st.sampled_from([0.01, 0.1]))
    W = _matrix(draw, m, d, -1.0, 1.0) * scale
    assume(np.all(np.linalg.norm(W, axis=1) >= 0.1 * scale))
    assume(_off_hyperplanes(W, X))
    # |a_j| / ‖w_j‖ in [1.5, 10] for every neuron (a² − ‖w‖² > 0: each one can reach 0)
    s = np.array(draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=m, max_size=m)))
    ratio = np.array(draw(st.lists(st.floats(1.5, 10.0), min_size=m, max_size=m)))
    a = s * ratio * np.linalg.norm(W, axis=1)
    return Problem(X, y, W, a, gamma, loss, t_max, "large output")


@st.composite
def repeated_point_problems(draw, t_max: float = 5.0) -> Problem:
    """A generic problem (square loss) with one of its points repeated ``q − 1`` more times
    (``q = 2, 3``), each copy with a label of its own, the copies at drawn places."""
    prob = draw(problems(t_max))
    n = prob.X.shape[0]
    k = draw(st.integers(0, n - 1))
    q = draw(st.integers(2, 3))
    X, y = prob.X, prob.y
    for _ in range(q - 1):
        at = draw(st.integers(0, X.shape[0]))
        X = np.insert(X, at, prob.X[k], axis=0)
        y = np.insert(y, at, draw(_floats(-1.0, 1.0)))
    return Problem(X, y, prob.W, prob.a, prob.gamma, "square", t_max,
                   prob.kind + "/repeated point")


@st.composite
def low_rank_rows(draw, max_rows: int = 6, d=st.integers(2, 6)) -> np.ndarray:
    """Rows ``C B`` with ``B`` (dyadic) of rank ``r <= d`` and small integer ``C``: exactly
    dependent directions, as in rank-deficient data where several hyperplanes ``x_k^⊥`` meet
    in more than a codimension-``|K|`` set."""
    d = draw(d)
    rank = draw(st.integers(1, d))
    p = draw(st.integers(1, max_rows))
    B = np.array(draw(st.lists(st.integers(-4, 4), min_size=rank * d, max_size=rank * d)),
                 dtype=float).reshape(rank, d) / 4
    assume(np.linalg.matrix_rank(B) == rank)
    C = np.array(draw(st.lists(st.integers(-2, 2), min_size=p * rank, max_size=p * rank)),
                 dtype=float).reshape(p, rank)
    rows = C @ B
    assume(np.all(np.linalg.norm(rows, axis=1) > 0))
    return rows


def _span_sizes(draw, extra_max: int, m_min: int) -> tuple:
    """``r ∈ {1, 2, 3}``, ``d = r + (1 … extra_max)``, ``n ∈ 2…9``, ``m ∈ m_min…8``, γ, the
    loss and the weights' scale, for the rank-deficient strategies."""
    r = draw(st.integers(1, 3))
    d = r + draw(st.integers(1, extra_max))
    n = draw(st.integers(2, 9))
    m = draw(st.integers(m_min, 8))
    gamma = draw(st.sampled_from(GAMMAS))
    loss = draw(st.sampled_from(LOSSES))
    scale = draw(st.sampled_from([0.1, 0.3, 1.0]))
    return r, d, n, m, gamma, loss, scale


@st.composite
def span_problems(draw, t_max: float = 10.0) -> tuple[Problem, np.ndarray]:
    """Rank-deficient data and the orthonormal basis ``B`` (``d × r``) of its span (see the
    module docstring): ``X = X_r Bᵀ`` with ``X_r`` generic (entries in [−2, 2]) or integer
    (entries in {−2, …, 2}: dependent rows), ``r ∈ {1, 2, 3}``, ``d − r ∈ {1, 2, 3}``; the
    neurons anywhere in ``R^d`` (a null-space part of their own), off every hyperplane; the
    output weights balanced, unbalanced, or 1.5 to 10 times the hidden weights' part in the
    span (so that neurons reach ``ker X``, the span's origin, and are held or leave there)."""
    r, d, n, m, gamma, loss, scale = _span_sizes(draw, 3, 1)
    if draw(st.booleans()):
        Xr = np.array(draw(st.lists(st.lists(st.integers(-2, 2), min_size=r, max_size=r),
                                    min_size=n, max_size=n)), dtype=float)
    else:
        Xr = _matrix(draw, n, r, -2.0, 2.0)
    Xr[np.linalg.norm(Xr, axis=1) < 0.25, 0] = 1.0  # no zero row (a rejection costs draws)
    B = np.linalg.qr(_matrix(draw, d, d, -1.0, 1.0) + 3.0 * np.eye(d))[0][:, :r]
    X = Xr @ B.T
    W = _matrix(draw, m, d, -1.0, 1.0) * scale
    assume(np.all(np.linalg.norm(W @ B, axis=1) >= 0.1 * scale))
    assume(_off_hyperplanes(W, X))
    outputs = draw(st.sampled_from(["balanced", "unbalanced", "large"]))
    if outputs == "large":  # |a_j| above ‖B ᵀw_j‖: the neuron can reach ker X (Lemma 1)
        ratio = np.array(draw(st.lists(st.floats(1.5, 10.0), min_size=m, max_size=m)))
        s = np.array(draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=m, max_size=m)))
        a = s * ratio * np.linalg.norm(W @ B, axis=1)
    else:
        a = _output_weights(draw, W, outputs == "balanced")
    return Problem(X, _labels(draw, n, loss), W, a, gamma, loss, t_max, "span"), B


@st.composite
def ker_x_start_problems(draw, t_max: float = 10.0) -> tuple[Problem, np.ndarray]:
    """Rank-deficient data in the first ``r`` coordinates (``B`` their unit vectors), some
    neurons started in ``ker X`` (their first ``r`` entries 0, the rest not all 0), the
    others off every hyperplane; output weights of size 0.1 to 1 times ``scale`` (see the
    module docstring).  Returns the problem and ``B``, as :func:`span_problems`."""
    r, d, n, m, gamma, loss, scale = _span_sizes(draw, 2, 2)
    Xr = _dyadic_matrix(draw, n, r)
    Xr[np.linalg.norm(Xr, axis=1) < 0.25, 0] = 1.0
    B = np.eye(d)[:, :r]
    X = Xr @ B.T
    W = _matrix(draw, m, d, -1.0, 1.0) * scale
    held = np.array(draw(st.lists(st.booleans(), min_size=m, max_size=m)))
    assume(np.any(held) and not np.all(held))
    W[held, :r] = 0.0
    assume(np.all(np.linalg.norm(W, axis=1) >= 0.1 * scale))
    assume(_off_hyperplanes(W[~held], X))
    c = np.array(draw(st.lists(st.floats(0.1, 1.0), min_size=m, max_size=m)))
    s = np.array(draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=m, max_size=m)))
    return Problem(X, _labels(draw, n, loss), W, s * c * scale, gamma, loss, t_max,
                   "ker_x_start"), B
