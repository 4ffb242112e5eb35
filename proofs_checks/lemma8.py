"""Lemma 8 (Appendix A), certified over the whole boxes of Assumption 3 (Section 4).

Lemma 8 claims that every dataset of Assumption 3 with ``η < 1/6`` satisfies Assumptions 4, 5
and 6.  In the 3-point, ``d = 2``, ReLU, square-loss setting the three assumptions reduce to
finitely many strict polynomial / rational inequalities ("proof obligations") in the nine
parameters ``p = (a1, b1, a2, b2, a3, b3, y1, y2, y3)`` with ``x_k = (a_k, b_k)``:

* ``A4.ip_kk'``: ``<x_k, x_k'> > 0`` for all ``k <= k'``; ``A4.y_k``: ``y_k > 0``;
  ``A4.indep_ij``: ``-det(x_i, x_j) > 0`` (pairwise linear independence with the orientation
  ``x_1, x_2, x_3`` counter-clockwise; ``n = 3 >= d = 2`` holds trivially).
* ``𝒦 = {1, 3}`` (Assumption 5's set) follows exactly from the three determinant signs: in
  ``d = 2`` the only ``w ⊥ x_k`` are ``±J x_k`` and ``<J x_k, x_k'> = det(x_k, x_k')``.
* ``A5.k`` for ``k ∈ 𝒦``: ``y_k² ||x_k||⁴ − (Σ y²)(Σ_{k'≠k} <x_k', x_k>²) > 0`` (the square of
  Assumption 5; both sides are non-negative).
* ``A6.k`` for ``k ∈ 𝒦``: ``y_k − <β*, x_k> > 0`` with ``β*`` the OLS estimator of Theorem 2;
  ``y − Xβ* = (c·y / c·c) c`` with ``c = X[:,0] × X[:,1] = (det23, −det13, det12)``.
  The second (pattern) condition of Assumption 6 follows from ``A6.1``, ``A6.3`` and the
  determinant signs (see ``docs/lemma8.md``); :func:`assumption6_patterns` checks it point-wise.
* ``Eq13.alpha1``: ``α_1 − η > 0`` and ``Eq13.alpha3``: ``α_3 > 0`` for ``x_2 = α_1 x_1 + α_3 x_3``
  (Eq. 13): auxiliary, the route of the paper's proof, not part of the lemma's conclusion.

Each obligation is certified by branch and bound over the box with rigorous interval arithmetic
(:class:`Interval`: vectorised numpy, exact-aware outward rounding), the natural and mean-value
enclosures, and the monotonicity test.  Open ends of the box (``a1 = −1``, ``a3 = 1``, ``y2 = 0``)
are handled by the open-face rule: a sub-box whose closure has lower bound ``>= 0`` is certified
if the margin is strictly monotone on it, decreasing towards an excluded face.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import numpy as np
import sympy as sp
from numpy.typing import NDArray

from pwflow.data import Dataset

__all__ = [
    "Interval",
    "Box",
    "Obligation",
    "ObligationResult",
    "Lemma8Certificate",
    "ThresholdResult",
    "PARAMS",
    "GROUPS",
    "assumption3_box",
    "obligations",
    "certify_obligation",
    "certify_box",
    "certify_lemma8",
    "find_eta_threshold",
    "obligation_values",
    "kappa_set",
    "assumption6_patterns",
    "exact_margin",
]

Array = NDArray[np.float64]

#: Names of the nine parameters, in order; ``x_k = (a_k, b_k)``.
PARAMS = ("a1", "b1", "a2", "b2", "a3", "b3", "y1", "y2", "y3")
#: Obligation groups; ``Eq13`` is the paper's proof route, not the lemma's conclusion.
GROUPS = ("A4", "A5", "A6", "Eq13")

_SPLIT = 134217729.0  # 2**27 + 1, Dekker's splitting constant
_TINY = 2.0**-960  # below this a product may have underflowed: round outward unconditionally


# --------------------------------------------------------------------------------------------
# Interval arithmetic
# --------------------------------------------------------------------------------------------


def _two_sum(a: Array, b: Array) -> tuple[Array, Array]:
    """Knuth's error-free sum: ``a + b = s + e`` exactly (round-to-nearest, no overflow)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _two_prod(a: Array, b: Array) -> tuple[Array, Array, Array]:
    """Dekker's error-free product ``a b = p + e``; third output flags possible underflow."""
    p = a * b
    ca, cb = _SPLIT * a, _SPLIT * b
    ah, bh = ca - (ca - a), cb - (cb - b)
    al, bl = a - ah, b - bh
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    unsafe = (np.abs(p) < _TINY) & (a != 0) & (b != 0) | ~np.isfinite(e)
    return p, e, unsafe


def _round(v: Array, err: Array, unsafe: Array, down: bool) -> Array:
    """Round ``v`` (with exact error ``err``) to a float on the correct side of ``v + err``."""
    if down:
        return np.where((err < 0) | unsafe, np.nextafter(v, -np.inf), v)
    return np.where((err > 0) | unsafe, np.nextafter(v, np.inf), v)


def _add(a: Array, b: Array, down: bool) -> Array:
    s, e = _two_sum(a, b)
    return _round(s, e, ~np.isfinite(e), down)


def _mul(a: Array, b: Array, down: bool) -> Array:
    p, e, unsafe = _two_prod(a, b)
    return _round(p, e, unsafe, down)


class Interval:
    """Vectorised closed intervals ``[lo, hi]`` with rigorous outward rounding.

    Sums and products are rounded with error-free transformations (TwoSum, Dekker's TwoProduct),
    so an exactly representable result is not widened (needed where a margin's infimum is 0,
    e.g. ``<x_1, x_3>`` at the excluded corner ``a1 = −1, a3 = 1``); reciprocals are widened by
    one ulp each side (IEEE division is correctly rounded).  Supports ``+ − * /``, unary ``−``,
    integer powers, and ints/floats as degenerate intervals.
    """

    __slots__ = ("lo", "hi")
    __array_priority__ = 1000

    def __init__(self, lo: object, hi: object | None = None) -> None:
        lo_a = np.asarray(lo, dtype=float)
        hi_a = lo_a if hi is None else np.asarray(hi, dtype=float)
        if np.any(np.isnan(lo_a)) or np.any(np.isnan(hi_a)):
            raise ValueError("Interval bounds must not be NaN")
        if np.any(lo_a > hi_a):
            raise ValueError("Interval needs lo <= hi elementwise")
        self.lo, self.hi = lo_a, hi_a

    @staticmethod
    def _of(v: object) -> "Interval":
        return v if isinstance(v, Interval) else Interval(v)

    def __repr__(self) -> str:
        return f"Interval({self.lo!r}, {self.hi!r})"

    def __neg__(self) -> "Interval":
        return Interval(-self.hi, -self.lo)

    def __add__(self, other: object) -> "Interval":
        o = self._of(other)
        return Interval(_add(self.lo, o.lo, True), _add(self.hi, o.hi, False))

    __radd__ = __add__

    def __sub__(self, other: object) -> "Interval":
        return self + (-self._of(other))

    def __rsub__(self, other: object) -> "Interval":
        return self._of(other) + (-self)

    def __mul__(self, other: object) -> "Interval":
        o = self._of(other)
        pairs = [(self.lo, o.lo), (self.lo, o.hi), (self.hi, o.lo), (self.hi, o.hi)]
        lo = np.minimum.reduce([_mul(x, y, True) for x, y in pairs])
        hi = np.maximum.reduce([_mul(x, y, False) for x, y in pairs])
        return Interval(lo, hi)

    __rmul__ = __mul__

    def sqr(self) -> "Interval":
        """Tight enclosure of ``x²`` (non-negative even if the interval contains 0)."""
        m = np.where(self.lo > 0, self.lo, np.where(self.hi < 0, -self.hi, 0.0))
        big = np.maximum(np.abs(self.lo), np.abs(self.hi))
        return Interval(np.maximum(_mul(m, m, True), 0.0), _mul(big, big, False))

    def __pow__(self, n: int) -> "Interval":
        if isinstance(n, (int, np.integer)) and n >= 1:
            n = int(n)
            if n == 1:
                return self
            if n % 2 == 0:
                return self.sqr() ** (n // 2)
            return self * self ** (n - 1)
        if isinstance(n, (int, np.integer)) and n < 0:
            return 1 / self ** (-n)
        raise ValueError(f"Interval power needs a nonzero integer exponent, got {n!r}")

    def reciprocal(self) -> "Interval":
        """``1/x`` for an interval not containing 0 (raises ``ValueError`` otherwise)."""
        if np.any((self.lo <= 0) & (self.hi >= 0)):
            raise ValueError("Interval division by an interval containing 0")
        with np.errstate(over="ignore"):  # 1/subnormal -> inf: still an enclosure
            return Interval(
                np.nextafter(1.0 / self.hi, -np.inf), np.nextafter(1.0 / self.lo, np.inf)
            )

    def __truediv__(self, other: object) -> "Interval":
        return self * self._of(other).reciprocal()

    def __rtruediv__(self, other: object) -> "Interval":
        return self._of(other) * self.reciprocal()

    def contains(self, v: object) -> NDArray[np.bool_]:
        """Whether ``v`` lies in ``[lo, hi]`` (elementwise)."""
        v = np.asarray(v, dtype=float)
        return (self.lo <= v) & (v <= self.hi)


# --------------------------------------------------------------------------------------------
# Boxes and obligations
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Box:
    """A box in the nine parameters ``PARAMS``; ``lo_open[i]`` excludes the end ``lo[i]``.

    ``exact`` optionally holds the exact rational bounds (sympy) that define the box; the float
    bounds ``lo``/``hi`` enclose them (outward rounded).  ``eta`` is the ``η`` of Assumption 3
    used by the ``Eq13.alpha1`` obligation.
    """

    lo: Array
    hi: Array
    lo_open: NDArray[np.bool_]
    hi_open: NDArray[np.bool_]
    eta: float
    exact: tuple = field(default=(), compare=False)

    def __post_init__(self) -> None:
        for name in ("lo", "hi", "lo_open", "hi_open"):
            arr = np.asarray(getattr(self, name))
            if arr.shape != (9,):
                raise ValueError(f"Box.{name} must have shape (9,), got {arr.shape}")
        if np.any(~np.isfinite(self.lo)) or np.any(~np.isfinite(self.hi)):
            raise ValueError("Box bounds must be finite")
        if np.any(np.asarray(self.lo) > np.asarray(self.hi)):
            raise ValueError("Box needs lo <= hi for every parameter")

    def contains_exact(self, point: tuple) -> bool:
        """Exact (sympy rational) membership of ``point`` in the half-open box."""
        bounds = self.exact or tuple(
            (sp.Rational(float(lo)), sp.Rational(float(hi))) for lo, hi in zip(self.lo, self.hi)
        )
        for i, (v, (lo, hi)) in enumerate(zip(point, bounds)):
            v = sp.Rational(v)
            if v < lo or v > hi:
                return False
            if (self.lo_open[i] and v == lo) or (self.hi_open[i] and v == hi):
                return False
        return True


def assumption3_box(eta: float, y2_max: float | None = None) -> Box:
    """The parameter box of Assumption 3 (Section 4) for a given ``η``.

    ``x1 ∈ (−1, −1+η] × [1, 1+η]``, ``x2 ∈ [−η, η] × [1−η, 1+η]``, ``x3 ∈ [1−η, 1) × [1, 1+η]``,
    ``y1, y3 ∈ [1, 1+η]``, ``y2 ∈ (0, η]``.  The float bounds are rounded outwards from the exact
    rational ones.  ``y2_max`` (default ``η``) replaces the upper end of ``y2`` (to build
    boxes violating the assumptions).
    """
    eta = float(eta)
    if not np.isfinite(eta) or not 0 < eta < 1:
        raise ValueError(f"eta must be in (0, 1), got {eta!r}")
    y2_hi = eta if y2_max is None else float(y2_max)
    if not np.isfinite(y2_hi) or y2_hi <= 0:
        raise ValueError(f"y2_max must be a positive finite float, got {y2_max!r}")
    e = sp.Rational(eta)
    one = sp.Integer(1)
    exact = (
        (-one, -one + e), (one, one + e),
        (-e, e), (one - e, one + e),
        (one - e, one), (one, one + e),
        (one, one + e), (sp.Integer(0), sp.Rational(y2_hi)), (one, one + e),
    )
    E = Interval(eta)
    lo = [-1.0, 1.0, -eta, (1 - E).lo, (1 - E).lo, 1.0, 1.0, 0.0, 1.0]
    hi = [(-1 + E).hi, (1 + E).hi, eta, (1 + E).hi, 1.0, (1 + E).hi, (1 + E).hi, y2_hi,
          (1 + E).hi]
    lo_open = np.zeros(9, bool)
    hi_open = np.zeros(9, bool)
    lo_open[[0, 7]] = True  # a1 > −1, y2 > 0
    hi_open[4] = True  # a3 < 1
    return Box(np.array(lo, float), np.array(hi, float), lo_open, hi_open, eta, exact)


@dataclass(frozen=True)
class Obligation:
    """One strict inequality ``margin(p) > 0`` (``statement`` in words, ``group`` in GROUPS)."""

    name: str
    statement: str
    group: str
    expr: sp.Expr


def _symbols() -> tuple[tuple[sp.Symbol, ...], sp.Symbol]:
    return sp.symbols(" ".join(PARAMS), real=True), sp.Symbol("eta", positive=True)


@lru_cache(maxsize=1)
def obligations() -> tuple[Obligation, ...]:
    """The proof obligations of Lemma 8 as sympy margins in ``PARAMS`` and ``eta``."""
    (a1, b1, a2, b2, a3, b3, y1, y2, y3), eta = _symbols()
    x = {1: (a1, b1), 2: (a2, b2), 3: (a3, b3)}
    y = {1: y1, 2: y2, 3: y3}

    def ip(i: int, j: int) -> sp.Expr:
        return x[i][0] * x[j][0] + x[i][1] * x[j][1]

    def det(i: int, j: int) -> sp.Expr:
        return x[i][0] * x[j][1] - x[i][1] * x[j][0]

    obs: list[Obligation] = []
    for i in (1, 2, 3):
        for j in range(i, 4):
            obs.append(Obligation(f"A4.ip{i}{j}", f"<x{i}, x{j}> > 0", "A4", ip(i, j)))
    for k in (1, 2, 3):
        obs.append(Obligation(f"A4.y{k}", f"y{k} > 0", "A4", y[k]))
    for i, j in ((1, 2), (1, 3), (2, 3)):
        obs.append(Obligation(
            f"A4.indep{i}{j}",
            f"det(x{i}, x{j}) < 0 (x{i}, x{j} independent; signs give 𝒦 = {{1, 3}})",
            "A4", -det(i, j)))
    sum_y2 = y1**2 + y2**2 + y3**2
    for k in (1, 3):
        others = sum(ip(j, k) ** 2 for j in (1, 2, 3) if j != k)
        obs.append(Obligation(
            f"A5.k{k}",
            f"y{k}² ||x{k}||⁴ > (Σ y²)(Σ_{{k'≠{k}}} <x_k', x{k}>²)  (Assumption 5 squared)",
            "A5", y[k] ** 2 * ip(k, k) ** 2 - sum_y2 * others))
    c = (det(2, 3), -det(1, 3), det(1, 2))
    cy = c[0] * y1 + c[1] * y2 + c[2] * y3
    cc = c[0] ** 2 + c[1] ** 2 + c[2] ** 2
    for k in (1, 3):
        obs.append(Obligation(
            f"A6.k{k}", f"y{k} − <β*, x{k}> > 0  (β* = OLS, Assumption 6)", "A6",
            c[k - 1] * cy / cc))
    obs.append(Obligation("Eq13.alpha1", "α1 > η in x2 = α1 x1 + α3 x3 (Eq. 13)", "Eq13",
                          det(2, 3) / det(1, 3) - eta))
    obs.append(Obligation("Eq13.alpha3", "α3 > 0 in x2 = α1 x1 + α3 x3 (Eq. 13)", "Eq13",
                          det(1, 2) / det(1, 3)))
    return tuple(obs)


@lru_cache(maxsize=None)
def _compiled(name: str) -> tuple[Callable, list[Callable]]:
    """Interval-evaluable margin and gradient (sympy ``lambdify`` onto :class:`Interval`)."""
    ob = {o.name: o for o in obligations()}[name]
    syms, eta = _symbols()
    args = (*syms, eta)
    f = sp.lambdify(args, ob.expr, modules=[{}], cse=True)
    grads = [sp.lambdify(args, sp.diff(ob.expr, s), modules=[{}], cse=True) for s in syms]
    return f, grads


def _as_interval(value: object, n: int) -> Interval:
    """Broadcast a lambdified result (an Interval or a plain constant) to ``n`` entries."""
    if isinstance(value, Interval):
        return Interval(np.broadcast_to(value.lo, (n,)), np.broadcast_to(value.hi, (n,)))
    return Interval(np.full(n, float(value)))


def exact_margin(name: str, point: tuple, eta: float) -> sp.Expr:
    """The margin of obligation ``name`` at ``point`` in exact rational arithmetic (sympy)."""
    ob = {o.name: o for o in obligations()}
    if name not in ob:
        raise ValueError(f"name must be one of {sorted(ob)}, got {name!r}")
    if len(point) != 9:
        raise ValueError(f"point must have 9 coordinates {PARAMS}, got {len(point)}")
    syms, e = _symbols()
    subs = {s: sp.Rational(float(v)) for s, v in zip(syms, point)}
    subs[e] = sp.Rational(float(eta))
    return sp.Rational(ob[name].expr.subs(subs))


# --------------------------------------------------------------------------------------------
# Branch and bound
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObligationResult:
    """Outcome of certifying one obligation over a box.

    ``verdict``: ``certified`` (margin > 0 on the whole half-open box), ``counterexample``
    (``point`` with exact margin ``exact_value`` <= 0 inside the box, sympy-checked) or
    ``inconclusive`` (``max_boxes`` exhausted).  ``min_lower_bound``: the smallest certified
    lower bound over the leaves processed (a rigorous lower bound of the infimum when
    certified); ``boxes``: number of sub-boxes evaluated; ``open_face_boxes``: leaves certified
    by the open-face rule.
    """

    name: str
    statement: str
    group: str
    verdict: str
    min_lower_bound: float
    boxes: int
    open_face_boxes: int = 0
    point: tuple | None = None
    exact_value: sp.Rational | None = None


def _enclose(name: str, lo: Array, hi: Array, eta: float) -> tuple[Array, Interval, list]:
    """Lower bounds of the margin on each box ``[lo, hi]`` (rows) and the gradient enclosure.

    The bound is the best of the natural and mean-value forms on the box and on the box reduced
    by the monotonicity test (coordinates with a signed partial derivative fixed at the
    minimising end; the minimum over the box is attained there).
    """
    f, grads = _compiled(name)
    n = lo.shape[0]
    E = Interval(np.full(n, eta))
    X = [Interval(lo[:, i], hi[:, i]) for i in range(9)]
    G = [_as_interval(g(*X, E), n) for g in grads]
    nat = _as_interval(f(*X, E), n).lo
    inc = np.stack([g.lo > 0 for g in G], axis=1)
    dec = np.stack([g.hi < 0 for g in G], axis=1)
    rlo = np.where(dec, hi, lo)
    rhi = np.where(inc, lo, hi)
    best = nat
    for blo, bhi in ((lo, hi), (rlo, rhi)):
        c = 0.5 * (blo + bhi)
        c = np.minimum(np.maximum(c, blo), bhi)
        fc = _as_interval(f(*[Interval(c[:, i]) for i in range(9)], E), n)
        mv = fc
        for i in range(9):
            mv = mv + G[i] * (Interval(blo[:, i], bhi[:, i]) - Interval(c[:, i]))
        best = np.maximum(best, mv.lo)
    red = _as_interval(f(*[Interval(rlo[:, i], rhi[:, i]) for i in range(9)], E), n).lo
    return np.maximum(best, red), G, [inc, dec, rlo, rhi]


def _candidates(lo: Array, hi: Array, lo_open: NDArray, hi_open: NDArray,
                rlo: Array, rhi: Array) -> list[Array]:
    """Points where a counterexample is sought: box centres and monotone minimisers."""
    centre = 0.5 * (lo + hi)
    corner = 0.5 * (rlo + rhi)
    bad = (lo_open & (corner == lo)) | (hi_open & (corner == hi))
    corner = np.where(bad, centre, corner)
    return [centre, corner]


def certify_obligation(name: str, box: Box, max_boxes: int = 200_000) -> ObligationResult:
    """Certify ``margin > 0`` for obligation ``name`` on the whole half-open ``box``.

    Branch and bound: a sub-box is certified when its lower bound is ``> 0``, or ``>= 0`` with
    the margin strictly monotone on it and decreasing towards an excluded (open) face of
    ``box`` (then every admissible point is strictly above the face value).  Otherwise the
    margin is evaluated at candidate points (rigorous intervals; a negative or zero upper bound
    is confirmed in exact rational arithmetic) and the sub-box is bisected along the coordinate
    with the largest ``|∂margin/∂p_i| · width_i``.
    """
    ob = {o.name: o for o in obligations()}
    if name not in ob:
        raise ValueError(f"name must be one of {sorted(ob)}, got {name!r}")
    if int(max_boxes) < 1:
        raise ValueError(f"max_boxes must be a positive integer, got {max_boxes!r}")
    o = ob[name]
    f, _ = _compiled(name)
    lo, hi = box.lo[None, :].copy(), box.hi[None, :].copy()
    lo_open, hi_open = box.lo_open[None, :].copy(), box.hi_open[None, :].copy()
    used, n_face, min_lb = 0, 0, np.inf
    while lo.shape[0]:
        if used + lo.shape[0] > max_boxes:
            return ObligationResult(name, o.statement, o.group, "inconclusive",
                                    float(min(min_lb, np.inf)), used, n_face)
        used += lo.shape[0]
        lb, G, (inc, dec, rlo, rhi) = _enclose(name, lo, hi, box.eta)
        by_face = (lb >= 0) & np.any((inc & lo_open) | (dec & hi_open), axis=1)
        done = (lb > 0) | by_face
        n_face += int(np.sum(by_face & ~(lb > 0)))
        if np.any(done):
            min_lb = min(min_lb, float(lb[done].min()))
        keep = ~done
        lo, hi, lo_open, hi_open = lo[keep], hi[keep], lo_open[keep], hi_open[keep]
        G = [Interval(g.lo[keep], g.hi[keep]) for g in G]
        rlo, rhi = rlo[keep], rhi[keep]
        if not lo.shape[0]:
            break
        n = lo.shape[0]
        E = Interval(np.full(n, box.eta))
        for pts in _candidates(lo, hi, lo_open, hi_open, rlo, rhi):
            val = _as_interval(f(*[Interval(pts[:, i]) for i in range(9)], E), n)
            for r in np.argsort(val.hi)[:3]:
                if val.hi[r] > 0:
                    break
                point = tuple(float(v) for v in pts[r])
                exact = exact_margin(name, point, box.eta)
                if exact <= 0 and box.contains_exact(point):
                    return ObligationResult(name, o.statement, o.group, "counterexample",
                                            float(min_lb), used, n_face, point, exact)
        width = hi - lo
        score = np.stack([np.maximum(np.abs(g.lo), np.abs(g.hi)) for g in G], axis=1) * width
        score = np.where(width > 0, np.nan_to_num(score, nan=np.inf) + 1e-300, -1.0)
        dim = np.argmax(score, axis=1)
        rows = np.arange(n)
        mid = 0.5 * (lo[rows, dim] + hi[rows, dim])
        llo, lhi, rlo2, rhi2 = lo.copy(), hi.copy(), lo.copy(), hi.copy()
        lhi[rows, dim] = mid
        rlo2[rows, dim] = mid
        l_hopen = hi_open.copy()
        l_hopen[rows, dim] = False
        r_lopen = lo_open.copy()
        r_lopen[rows, dim] = False
        lo = np.concatenate([llo, rlo2])
        hi = np.concatenate([lhi, rhi2])
        lo_open = np.concatenate([lo_open, r_lopen])
        hi_open = np.concatenate([l_hopen, hi_open])
    return ObligationResult(name, o.statement, o.group, "certified", float(min_lb), used,
                            n_face)


@dataclass(frozen=True)
class Lemma8Certificate:
    """Per-obligation results for one box; ``eta`` is the Assumption 3 parameter."""

    eta: float
    results: tuple[ObligationResult, ...]

    def verdict(self, groups: tuple[str, ...] = ("A4", "A5", "A6")) -> str:
        """``certified`` if all obligations of ``groups`` are, ``counterexample`` if one fails."""
        rs = [r for r in self.results if r.group in groups]
        if any(r.verdict == "counterexample" for r in rs):
            return "counterexample"
        if all(r.verdict == "certified" for r in rs):
            return "certified"
        return "inconclusive"

    @property
    def kappa_certified(self) -> bool:
        """``𝒦 = {1, 3}`` on the whole box (the three signed determinant obligations)."""
        return all(r.verdict == "certified" for r in self.results
                   if r.name.startswith("A4.indep"))

    def by_name(self, name: str) -> ObligationResult:
        """The result of obligation ``name``."""
        for r in self.results:
            if r.name == name:
                return r
        raise ValueError(f"no obligation named {name!r}")

    def table(self) -> str:
        """Plain-text summary, one line per obligation."""
        lines = [f"Lemma 8 over the Assumption 3 box, eta = {self.eta!r}"]
        for r in self.results:
            cx = "" if r.point is None else f"  point={r.point} exact={r.exact_value}"
            lines.append(f"{r.name:12s} {r.verdict:15s} min_lb={r.min_lower_bound:.6g} "
                         f"boxes={r.boxes} open_face={r.open_face_boxes}{cx}")
        return "\n".join(lines)


def certify_box(box: Box, max_boxes: int = 200_000,
                groups: tuple[str, ...] = GROUPS) -> Lemma8Certificate:
    """Certify every obligation of ``groups`` over ``box`` (see :func:`certify_obligation`)."""
    bad = [g for g in groups if g not in GROUPS]
    if bad:
        raise ValueError(f"groups must be a subset of {GROUPS}, got {bad}")
    res = tuple(certify_obligation(o.name, box, max_boxes)
                for o in obligations() if o.group in groups)
    return Lemma8Certificate(box.eta, res)


def certify_lemma8(eta: float, max_boxes: int = 200_000,
                   groups: tuple[str, ...] = GROUPS) -> Lemma8Certificate:
    """Certify Lemma 8's obligations over the whole box of Assumption 3 with parameter ``eta``."""
    return certify_box(assumption3_box(eta), max_boxes, groups)


@dataclass(frozen=True)
class ThresholdResult:
    """Bisection bracket: all obligations certified at ``eta_certified``; at ``eta_failed`` some
    obligation (``binding``) has a counterexample or is inconclusive."""

    eta_certified: float
    eta_failed: float
    binding: str
    groups: tuple[str, ...]
    steps: int


def find_eta_threshold(groups: tuple[str, ...] = ("A4", "A5", "A6"), lo: float = 1e-3,
                       hi: float = 0.6, tol: float = 1e-3,
                       max_boxes: int = 100_000) -> ThresholdResult:
    """Largest ``η`` (to ``tol``) for which all obligations of ``groups`` are certified.

    The boxes of Assumption 3 grow with ``η`` and the only explicit ``η`` (``Eq13.alpha1``)
    makes the margin decrease with it, so certifiability is monotone and bisection applies.
    ``lo`` must certify and ``hi`` must not (``ValueError`` otherwise); an inconclusive run
    counts as a failure, so ``eta_certified`` is always rigorous.
    """
    if not 0 < lo < hi < 1 or not tol > 0:
        raise ValueError(f"need 0 < lo < hi < 1 and tol > 0, got lo={lo}, hi={hi}, tol={tol}")

    def failing(eta: float) -> str | None:
        for o in obligations():
            if o.group in groups:
                r = certify_obligation(o.name, assumption3_box(eta), max_boxes)
                if r.verdict != "certified":
                    return f"{o.name} ({r.verdict})"
        return None

    if failing(lo) is not None:
        raise ValueError(f"lo={lo} is not certified; choose a smaller lo")
    binding = failing(hi)
    if binding is None:
        raise ValueError(f"hi={hi} is certified; choose a larger hi")
    steps = 0
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        why = failing(mid)
        if why is None:
            lo = mid
        else:
            hi, binding = mid, why
        steps += 1
    return ThresholdResult(lo, hi, binding, tuple(groups), steps)


# --------------------------------------------------------------------------------------------
# Point-wise evaluation (independent numpy implementation)
# --------------------------------------------------------------------------------------------


def _check_dataset(data: Dataset) -> tuple[Array, Array]:
    if not isinstance(data, Dataset):
        raise ValueError(f"data must be a pwflow.data.Dataset, got {type(data).__name__}")
    if data.X.shape != (3, 2):
        raise ValueError(f"data must have 3 points in d = 2 (Assumption 3), got X {data.X.shape}")
    return data.X, data.y


def kappa_set(data: Dataset) -> set[int]:
    """The set 𝒦 of Assumption 5, **0-based** like :func:`pwflow.theory.kappa_set` (the paper's
    ``{1, 3}`` is ``{0, 2}``), by its definition: ``k ∈ 𝒦`` iff some ``w ≠ 0``
    with ``<w, x_k> = 0`` has ``<w, x_k'> >= 0`` for all ``k'``; in ``d = 2``, ``w = ±J x_k``."""
    X, _ = _check_dataset(data)
    out = set()
    for k in range(3):
        others = [j for j in range(3) if j != k]
        # <J x_k, x_j> = det(x_k, x_j) elementwise (<J x_k, x_k> = 0 exactly, not via BLAS)
        dets = X[k, 0] * X[others, 1] - X[k, 1] * X[others, 0]
        for s in (1.0, -1.0):
            if np.all(s * dets >= 0):
                out.add(k)
    return out


def obligation_values(data: Dataset, eta: float) -> dict[str, float]:
    """Float margins of all obligations at a concrete dataset (same definitions as
    :func:`obligations`, computed independently: Gram matrix, ``np.linalg.det``,
    ``np.linalg.lstsq`` for ``β*``, ``np.linalg.solve`` for Eq. (13))."""
    X, y = _check_dataset(data)
    gram = X @ X.T
    out: dict[str, float] = {}
    for i in range(3):
        for j in range(i, 3):
            out[f"A4.ip{i + 1}{j + 1}"] = float(gram[i, j])
    for k in range(3):
        out[f"A4.y{k + 1}"] = float(y[k])
    for i, j in ((0, 1), (0, 2), (1, 2)):
        out[f"A4.indep{i + 1}{j + 1}"] = float(-np.linalg.det(X[[i, j]]))
    for k in (0, 2):
        others = np.delete(gram[k], k)
        out[f"A5.k{k + 1}"] = float(y[k] ** 2 * gram[k, k] ** 2 - (y @ y) * (others @ others))
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    for k in (0, 2):
        out[f"A6.k{k + 1}"] = float(y[k] - X[k] @ beta)
    alpha = np.linalg.solve(X[[0, 2]].T, X[1])
    out["Eq13.alpha1"] = float(alpha[0] - eta)
    out["Eq13.alpha3"] = float(alpha[1])
    return out


def assumption6_patterns(data: Dataset, delta: float = 1e-2, n_angles: int = 20_000) -> float:
    """Brute-force check of the second part of Assumption 6 (Eq. 12) on a concrete dataset.

    Samples ``n_angles`` unit directions ``w``; for each mixed activation pattern
    ``u = sign(Xw)`` (some ``u_k = 1`` and some ``u_k' = −1``) computes ``D̃_u^{β*}`` (Eq. 12)
    and returns the minimum of (condition 2) ``<D̃_u, w>`` over ``w ∈ A_δ^{-1}(u)`` and
    (condition 1) ``u_k <D̃_u, x_k>`` for ``k ∈ 𝒦`` with ``|cos(w, x_k)| <= δ`` at a sampled
    ``w`` of the pattern.  Both conditions hold on the samples iff the result is ``> 0``.
    """
    X, y = _check_dataset(data)
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta!r}")
    if int(n_angles) < 8:
        raise ValueError(f"n_angles must be an integer >= 8, got {n_angles!r}")
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    res = y - X @ beta
    K = sorted(kappa_set(data))
    t = np.linspace(0, 2 * np.pi, int(n_angles), endpoint=False)
    W = np.stack([np.cos(t), np.sin(t)], axis=1)
    S = W @ X.T
    U = np.sign(S)
    cos = S / np.linalg.norm(X, axis=1)
    worst = np.inf
    mixed = np.any(U == 1, axis=1) & np.any(U == -1, axis=1)
    for u in np.unique(U[mixed], axis=0):
        rows = np.all(U == u, axis=1)
        D = ((u == 1) * res) @ X / 3
        kk = K
        sel = rows & np.any(cos[:, kk] >= delta, axis=1) & np.any(cos[:, kk] <= -delta, axis=1)
        if np.any(sel):
            worst = min(worst, float(np.min(W[sel] @ D)))
        for k in kk:
            if u[k] != 0 and np.any(np.abs(cos[rows, k]) <= delta):
                worst = min(worst, float(u[k] * D @ X[k]))
    return worst
