"""The Filippov selection rule: where a neuron goes when it lies on hyperplanes ``<w, x_k> = 0``.

This module is the only place where that decision is taken; the integrator calls it for
neurons starting on a face, for events of one neuron reaching hyperplanes, for sliding
slopes reaching a bound and for branch points.  For a neuron on the intersection of the
hyperplanes ``K = {k : <w, x_k> = 0}`` (``|K| <= d − 1`` while ``w ≠ 0``), the minimal-norm
element ``D`` of 𝔇(w, θ) (Eq. (6), :func:`pwflow.subgradient.free_slopes`) gives the
velocity ``dw/dt = a D`` and decides, for every ``k ∈ K``:

* **stay** — ``η_k`` inside ``[γ, 1]``: by the KKT conditions ``<D, x_k> = 0`` (``D`` is
  tangent: the neuron slides, Filippov's convex combination of the two one-sided fields);
* **leave** — ``η_k`` at a bound and the normal velocity ``v_k = a <D, x_k>`` not zero: the
  neuron goes to the side ``sign(v_k)``.  If that side's slope (1 for ``+``, ``γ`` for ``−``)
  is not the bound ``η_k`` sits at, ``η_k`` is fixed to it and the problem is solved again on
  the remaining hyperplanes (at most ``|K|`` rounds; each removes one hyperplane);
* **exit** — at the time a sliding slope ``η_k`` reaches a bound, ``v_k`` is zero to first
  order; just after it the KKT multiplier of the bound gives ``sign(v_k) = sign(a r_k)`` at
  ``η_k = 1`` and ``−sign(a r_k)`` at ``η_k = γ``.

For one hyperplane this is the classical rule: the neuron stays iff the one-sided normal
velocities ``v± = a <D±, x_k>`` satisfy ``v+ v− <= 0`` (the free slope ``η*`` lies in
``[γ, 1]``), and otherwise goes to the side of their common sign.

**Branch points (non-uniqueness).**  The minimal-norm continuation is one solution of Eq. (2)
among possibly several: staying on a hyperplane is *repulsive* when leaving it to a side is
also consistent (``a⟨D₊, x_k⟩ > 0`` with ``η_k = 1``, or ``a⟨D₋, x_k⟩ < 0`` with ``η_k = γ``;
for one hyperplane: ``a r_k < 0``).  :func:`select` reports those hyperplanes, and the
:class:`BranchPolicy` chooses: ``MIN_NORM`` stays (Condition 2 (ii)); ``GRADIENT_DESCENT``
leaves to the side that small-step gradient descent takes for most steps (:func:`gd_side`:
``+`` iff the sliding slope is above the middle of ``[γ, 1]``; gradient descent itself has no
vanishing-step limit there); for a neuron that starts exactly on the
hyperplanes, or arrives on linearly dependent ones, it follows gradient descent's own map at
the scale of its step (:func:`_gd_at_rest`).

**Parallel data points** share one hyperplane: a neuron holds or leaves all of a class, and
their slopes are tied as in the Clarke subdifferential (``docs/paper-readings.md``, N3).
"""

from __future__ import annotations

import enum
import functools
import itertools
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import cones
from .cones import SPAN_RTOL, face_point, span_split  # SPAN_RTOL: see pwflow.cones
from .subgradient import face_slopes, fixed_part, free_slopes, parallel_classes, single_slope

__all__ = [
    "through_origin",
    "gd_through_origin",
    "gd_escape_from_origin",
    "origin_map_starts",
    "gd_origin_orbits",
    "OriginOrbits",
    "escapes_along",
    "in_star",
    "arrival_velocity",
    "fan_walk",
    "FanExit",
    "BranchPolicy",
    "Selection",
    "select",
    "select_single",
    "side_slope",
    "exit_side",
    "slope_codes",
    "gd_side",
    "implied_hyperplanes",
    "Geometry",
    "transition",
    "parallel_classes",
]

Array = NDArray[np.float64]

#: relative size below which a normal velocity ``<D, x_k>`` counts as zero (in units of the
#: magnitude of the terms of ``D`` times ``‖x_k‖``: rounding of the sum, with margin)
VELOCITY_RTOL = 1e-11

#: steps of gradient descent's own map at the scale of its step, from exactly on hyperplanes
#: (:func:`_gd_at_rest`): at most ``GD_MAP_STEPS``, read in chunks of ``GD_MAP_CHUNK`` until two
#: chunks after the first agree
GD_MAP_STEPS = 400
GD_MAP_CHUNK = 50
#: The residuals' move ``τ dr/dt`` on which :func:`_gd_first_order` reads the motion at the
#: rate's speed, relative to the field's magnitude: far above its rounding
#: (:data:`VELOCITY_RTOL`), far below the velocities of the hyperplanes' own fields
RATE_STEP = 1e-6
_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0  # the uneven steps of the map (_gd_at_rest)
#: gradient descent's map near ``w = 0`` (:func:`gd_escape_from_origin`): started
#: ``ORIGIN_MAP_LEAD`` steps before 0 on the arrival, iterated ``ORIGIN_MAP_STEPS`` steps; it
#: has escaped where its norm grew by ``ORIGIN_MAP_GROWTH`` over the second half
ORIGIN_MAP_LEAD = 50.0
ORIGIN_MAP_STEPS = 4000
ORIGIN_MAP_GROWTH = 1.5
#: the map is run from ``ORIGIN_MAP_STARTS`` starts: the arrival's and others within
#: ``ORIGIN_MAP_SPREAD`` of it (relative; fixed directions); gradient descent escapes where
#: at least ``ORIGIN_MAP_CONSENSUS`` of them do.  Near 0 the map can be chaotic: session 40,
#: the integer-data case of ``tests/data/origin_stall.npz``, its orbit escaped from 44 % of
#: the starts within 1e-13 of the arrival's (48–53 % within 1e-9 to 1e-2), so that one start
#: decided by rounding (the run's t_max, a change in the outputs' summation order) while
#: gradient descent stayed at twelve steps
ORIGIN_MAP_STARTS = 16
ORIGIN_MAP_SPREAD = 1e-6
ORIGIN_MAP_CONSENSUS = 0.9

#: fraction of :func:`_zero_tol` above which the normal velocity of the minimal-norm ``D``
#: gives the side of an exit whose slope has no KKT multiplier (``r_k = 0``,
#: :func:`_exit_signs`): the face events find an exit where ``|<D, x_k>|`` passes
#: ``1e-12`` of the terms' magnitude, a tenth of :func:`_zero_tol`'s scale; its sign is read
#: down to a thousandth of that scale (``1e-14``, still ~100 ulp of the terms)
EXIT_READ_RTOL = 1e-3

#: crossed classes up to which :func:`_uncrossed` tries every proper subset of them as not
#: crossed (``2^c − 2`` minimal-norm solves at such an arrival); above, single classes
UNCROSSED_MAX_CLASSES = 6


class BranchPolicy(str, enum.Enum):
    """Which continuation to follow where the flow is not unique (a repulsive sliding mode)."""

    MIN_NORM = "min_norm"
    GRADIENT_DESCENT = "gd"

    @classmethod
    def parse(cls, value: "str | BranchPolicy") -> "BranchPolicy":
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(repr(p.value) for p in cls)
            raise ValueError(f"branch_policy must be one of {allowed}, got {value!r}") from None


@dataclass(frozen=True)
class Selection:
    """Outcome of :func:`select` for one neuron.

    Attributes
    ----------
    K : ndarray of int
        The hyperplanes the neuron lies on at the event.
    signs : ndarray of int8, shape ``(|K|,)``
        New pattern entries on ``K``: 0 stays on the hyperplane, ±1 leaves to that side.
    eta : ndarray, shape (n,)
        Slopes of the subgradient followed after the event (``D = −(1/n) Σ η_k r_k x_k``).
    D : ndarray, shape (d,)
        That subgradient (``dw/dt = a D``).
    branch : ndarray of bool, shape ``(|K|,)``
        Hyperplanes where staying was one continuation among several (repulsive sliding);
        the policy decided there.
    """

    K: NDArray[np.intp]
    signs: NDArray[np.int8]
    eta: Array
    D: Array
    branch: NDArray[np.bool_]


@dataclass(frozen=True)
class FanExit:
    """Outcome of :func:`fan_walk`: the face on which the walk escapes.

    Attributes
    ----------
    face : ndarray of int8, shape (n,)
        Its pattern (zeros: the hyperplanes the neuron slides on as it escapes).
    selection : Selection
        :func:`select` on that face (``D``, slopes).
    entry : ndarray, shape (d,)
        Where the walk entered the face, in the units of the starting point.
    """

    face: NDArray[np.int8]
    selection: Selection
    entry: Array


def side_slope(side: ArrayLike, gamma: float) -> Array:
    """Slope of the side ``±1`` of a hyperplane: 1 on the active side, ``γ`` on the other."""
    return np.where(np.asarray(side) > 0, 1.0, gamma)


def gd_side(eta: ArrayLike, gamma: float) -> NDArray[np.int8]:
    """Side that small-step gradient descent takes, for most steps, at a branch point of a
    hyperplane whose sliding slope is ``η``: ``+`` iff ``η > (1 + γ)/2``.

    Gradient descent chatters across an attractive sliding hyperplane, a fraction
    ``(η − γ)/(1 − γ)`` of its steps on the active side; its one-sided normal steps are
    ``∝ 1 − η`` on ``+`` and ``∝ η − γ`` on ``−``.  When the mode turns repulsive (``a``
    through 0) it leaves to the side it is on when its steps change sign, and the slower
    side, where it spends more steps, is the likelier one.  Which side it takes depends on
    where the step grid falls (the phase of ``t*/lr``), not only on ``η``: gradient descent has
    **no** vanishing-step limit at a branch point (``docs/paper-readings.md``, N5).  Measured:
    Stewart's data, four branch points with ``η = 0.247, 0.758, 0.247, 0.760``: gradient
    descent at lr = 1e-3, 5e-4 and 2.5e-4 leaves to ``−, +, −, +`` in every run
    (``tests/test_issue10_regressions.py``), and at the first to ``−`` at each of eight
    steps from 1e-3 to 3.7e-4 (measured once); a d = 3 branch point with ``η = 0.447``: ``+``
    at five of nine steps from 1e-3 to 3e-4, ``−`` at four
    (``test_gd_side_at_a_branch_point_depends_on_the_step``).
    """
    return np.where(np.asarray(eta, float) > 0.5 * (1.0 + gamma), 1, -1).astype(np.int8)


def exit_side(a_sign: ArrayLike, r_k: ArrayLike, upper: ArrayLike) -> NDArray[np.int8]:
    """Side a neuron leaves to when its sliding slope ``η_k`` reaches a bound.

    Just after ``η_k`` reaches ``1`` (``upper``) the KKT multiplier ``−(r_k/n) <x_k, D> <= 0``
    gives ``sign(a <D, x_k>) = sign(a r_k)``; at ``γ`` the opposite.  Where ``a r_k = 0`` the
    neuron goes to the bound's own side.
    """
    bound = np.where(np.asarray(upper, bool), 1, -1)
    s = np.sign(np.asarray(a_sign, float) * np.asarray(r_k, float)).astype(np.int8) * bound
    return np.where(s == 0, bound, s).astype(np.int8)


def slope_codes(eta_star: ArrayLike, v: ArrayLike, tol: ArrayLike,
                gamma: float) -> NDArray[np.int8]:
    """Regime of a sliding neuron's one free slope: ``+1`` / ``−1`` where ``η*`` lies beyond
    the upper / lower bound of ``[γ, 1]``, 0 where it is inside (the neuron stays).

    Beyond a bound counts only where the normal velocity at the clipped slope, ``v = <D,
    x_k>``, exceeds ``tol``, what the caller knows ``v`` to: at least the rounding of the
    sum, ``VELOCITY_RTOL`` times a bound of its terms times ``‖x_k‖`` (the test
    :func:`select_single` applies on entry, with the smaller ``‖b‖ + ‖z‖``, so a neuron that
    entered is not read as beyond a bound by the same rounding), and in the integrator what
    the residuals' resolution leaves of ``v``.  Within it, staying and leaving are the same
    motion to that accuracy: reading the noise of ``η*`` as an exit made neurons that
    converge onto a hyperplane with ``η* → 1`` or ``η* → γ`` leave it, then graze it or
    re-enter it every few time units for the rest of the run (``docs/integrator.md``, "A
    slope at its bound to resolution").  Arrays broadcast; ``nan`` ``η*`` gives 0.
    """
    eta_star = np.asarray(eta_star, float)
    code = np.where(eta_star > 1.0, 1, np.where(eta_star < gamma, -1, 0))
    return np.where(np.abs(v) > tol, code, 0).astype(np.int8)


def transition(prev: ArrayLike, new: ArrayLike) -> NDArray[np.int8]:
    """Event kind code of a pattern entry going from ``prev`` to ``new`` (−1 if no event).

    Codes are :class:`pwflow.events.EventKind` values: from a side to 0 enters sliding, to the
    other side crosses, back to the same side grazes; from 0 to a side leaves sliding.
    """
    from .events import EventKind

    prev = np.asarray(prev)
    new = np.asarray(new)
    out = np.full(np.broadcast(prev, new).shape, -1, dtype=np.int8)
    out[(prev != 0) & (new == 0)] = EventKind.ENTER_SLIDING
    out[(prev != 0) & (new == -prev)] = EventKind.CROSSING
    out[(prev != 0) & (new == prev)] = EventKind.GRAZING
    out[(prev == 0) & (new != 0)] = EventKind.LEAVE_SLIDING
    return out


def implied_hyperplanes(X: Array, u_face: ArrayLike) -> NDArray[np.intp]:
    """Data points off the face ``u_face`` (``u_l ≠ 0``) whose hyperplane contains the face:
    ``x_l ∈ span{x_k : u_k = 0}`` (to :data:`SPAN_RTOL`), so that every ``w`` on the
    hyperplanes ``K`` lies on ``x_l``'s as well.

    In general position this needs ``|K| >= d``, i.e. ``w = 0``; it happens on degenerate data
    (points in a common lower-dimensional subspace, parallel points) where a neuron reaching
    the intersection of ``K`` reaches ``x_l``'s hyperplane at the same instant.  Its slope
    ``η_l`` is then free in ``[γ, 1]`` (Eq. (6)), not the side's: :func:`select` decides it with
    the others.  (A neuron sliding on three hyperplanes of points spanning a plane in d = 4
    was recorded on two of them, the third held at slope 1 by its side.)
    """
    return _implied_by(X, np.flatnonzero(np.asarray(u_face) == 0))


def _implied_by(X: Array, K: NDArray[np.intp]) -> NDArray[np.intp]:
    """:func:`implied_hyperplanes` of the face whose hyperplanes are exactly ``K``."""
    if K.size == 0:
        return K
    B = _span_basis(X[K])  # the rank the selection and the projectors use
    off_face = np.ones(X.shape[0], dtype=bool)
    off_face[K] = False
    off = np.flatnonzero(off_face)
    Xo = X[off]
    res = Xo - (Xo @ B.T) @ B
    near = np.linalg.norm(res, axis=1) <= SPAN_RTOL * np.linalg.norm(Xo, axis=1)
    return off[near]


class Geometry:
    """The data's geometry on sets ``K`` of hyperplanes, computed once per set for one data
    set ``X``: the hyperplanes ``K`` imply (:func:`implied_hyperplanes`), the classes of
    parallel points in ``K`` (:func:`~pwflow.subgradient.parallel_classes`) and whether those
    classes are linearly dependent.

    Pure functions of ``X`` and ``K`` (SVDs and pairwise angles), which :func:`select` needs for
    every neuron it decides; the stepper keeps one per run and passes it, so that the
    thousands of neurons reaching the same intersection do not recompute them (d = 3, n = 8,
    m = 2·10⁴, t = 10: about 6 of the rule's 16 s were these).  The results are read-only
    arrays.  Memory: at most :attr:`LIMIT` sets (then it starts afresh).
    """

    LIMIT = 1 << 16

    def __init__(self, X: Array) -> None:
        self.X = X
        self._memo: dict[tuple[str, bytes], object] = {}

    def _get(self, kind: str, K: NDArray[np.intp], compute):
        key = (kind, np.asarray(K, dtype=np.intp).tobytes())
        out = self._memo.get(key)
        if out is None:
            if len(self._memo) >= self.LIMIT:
                self._memo.clear()
            out = self._memo[key] = compute()
        return out

    def implied(self, K: NDArray[np.intp]) -> NDArray[np.intp]:
        """Data points off ``K`` whose hyperplane contains the intersection of ``K``'s."""
        return self._get("implied", K, lambda: _read_only(_implied_by(self.X, K)))

    def classes(self, K: NDArray[np.intp]) -> tuple[NDArray[np.intp], NDArray[np.int8]]:
        """:func:`~pwflow.subgradient.parallel_classes` of ``X[K]`` (rows of ``K``)."""
        return self._get("classes", K,
                         lambda: tuple(_read_only(a) for a in parallel_classes(self.X[K])))

    def dependent(self, K: NDArray[np.intp]) -> bool:
        """Whether the classes of ``K`` are linearly dependent (:func:`_dependent`)."""
        def compute():
            rep = self.classes(K)[0]
            return _dependent(self.X[K], np.flatnonzero(rep == np.arange(rep.size)))
        return self._get("dependent", K, compute)


def _read_only(a: NDArray) -> NDArray:
    a.flags.writeable = False
    return a


def _span_basis(XK: Array) -> Array:
    """Orthonormal rows spanning ``span{x_k : k ∈ K}`` at the numerical rank of
    :func:`pwflow.cones.span_split` (:data:`SPAN_RTOL`)."""
    rank, Vt = span_split(XK)
    return Vt[:rank]


def _dependent(XK: Array, heads: NDArray[np.intp]) -> bool:
    """Whether the classes of ``K`` (their first points, ``heads``) are linearly dependent:
    a class in the span of the others cannot leave them alone (its offset ``<w, x_k>`` is
    theirs, combined)."""
    return heads.size > 1 and _span_basis(XK[heads]).shape[0] < heads.size


def _field_magnitude(b: Array, Zrows: Array) -> float:
    """``‖b‖ + Σ_k ‖z_k‖``: bounds every term of ``D`` (the scale of its rounding)."""
    return float(np.linalg.norm(b)) + float(np.sum(np.linalg.norm(Zrows, axis=1)))


def rate_sign(w: Array, b: Array, magnitude: ArrayLike) -> Array:
    """Sign of ``da/dt = <w, b>`` for neurons at ``a = 0`` (the free part of ``D`` is
    orthogonal to ``w``), 0 where it is rounding: ``≤ VELOCITY_RTOL ‖w‖ magnitude``, with
    ``magnitude`` a bound of every term of ``D`` (:func:`_field_magnitude`).  Rows: neurons
    (``w``, ``b`` of shape ``(E, d)``) or one neuron (shape ``(d,)``)."""
    v = np.einsum("...d,...d->...", w, b)
    small = np.abs(v) <= VELOCITY_RTOL * np.linalg.norm(w, axis=-1) * magnitude
    return np.where(small, 0.0, np.sign(v))


def _field_parts(u_face: NDArray, K: NDArray[np.intp], X: Array, r: Array,
                 gamma: float) -> tuple[Array, Array]:
    """``D = b + Σ_{k∈K} η_k z_k`` on the face ``u_face`` (Eq. (6)): the fixed part ``b`` (the
    slopes ``η(u, γ)`` off ``K``) and the rows ``z_k = −r_k x_k / n`` of the free slopes."""
    n = X.shape[0]
    return fixed_part(face_slopes(u_face, gamma), r, X), -(r[K, None] * X[K]) / n


def _sign_after_zero(w: Array, b: Array, Zrows: Array, rate_parts: tuple[Array, Array] | None
                     ) -> float:
    """The sign ``a`` takes next where ``a = 0``: that of ``da/dt = <w, D>`` (``= <w, b>``,
    ``w ⟂ x_K``), or where that is zero to rounding, of ``d²a/dt² = <w, dD/dt>`` (``dw/dt =
    a D = 0``: only the residuals move; ``rate_parts``: :func:`_field_parts` of ``dr/dt``);
    0 where both vanish (or no ``rate_parts``)."""
    for fixed, rows in ((b, Zrows), rate_parts):
        sign = float(rate_sign(w, fixed, _field_magnitude(fixed, rows)))
        if sign != 0.0 or rate_parts is None:
            return sign
    return 0.0


def _zero_tol(b: Array, Zrows: Array, xK: Array) -> Array:
    """Per hyperplane of ``K``: the size below which ``<D, x_k>`` is rounding."""
    mag = _field_magnitude(b, Zrows)
    return VELOCITY_RTOL * mag * np.linalg.norm(xK, axis=1) + 1e-300


def _min_norm(b: Array, Zrows: Array, stay: NDArray[np.bool_], eta: Array, gamma: float,
              start: Array | None, classes: tuple[NDArray[np.intp], NDArray[np.int8]]
              ) -> tuple[Array, Array]:
    """Minimal-norm slopes on the staying hyperplanes (whole classes of parallel points, their
    slopes tied: :func:`~pwflow.subgradient.free_slopes`), the others held at ``eta``."""
    eta = eta.copy()
    base = b + eta[~stay] @ Zrows[~stay]
    if np.any(stay):
        rep, orient = classes
        idx = np.flatnonzero(stay)
        sub = (np.searchsorted(idx, rep[idx]), orient[idx] * orient[rep[idx]])
        eta[stay] = free_slopes(base, Zrows[stay].T, gamma, sub,
                                None if start is None else start[stay])
    return eta, base + eta[stay] @ Zrows[stay]


def select_single(
    a_sign: ArrayLike, b: Array, x: Array, r_k: ArrayLike, n: int, gamma: float,
    policy: BranchPolicy = BranchPolicy.MIN_NORM, w: Array | None = None,
    vtol: ArrayLike | None = None,
) -> tuple[NDArray[np.int8], Array, NDArray[np.bool_]]:
    """:func:`select` for neurons on one hyperplane each, vectorised.

    Parameters
    ----------
    a_sign : array, shape (E,)
        Sign of each neuron's output weight after the event.
    b : array, shape (E, d)
        Fixed part of the subgradient (slopes ``η(u, γ)`` off the hyperplane).
    x : array, shape (E, d)
        The hyperplane's data point ``x_k``.
    r_k : array, shape (E,)
        ``∂_1 l(h(x_k), y_k)``.
    w : array, shape (E, d), optional
        The neurons (orient the motion where ``a = 0``, as in :func:`select`).
    vtol : array, shape (E,), optional
        What the caller knows the normal velocity ``<D, x_k>`` to, where that is more than
        its rounding (the integrator: what the residuals' resolution leaves of it).  A
        velocity within it is tangent: the neuron stays (the same reading as
        :func:`slope_codes`, so that what enters is not read as an exit at once).

    Returns
    -------
    signs : int8 array
        0 (stay), ±1 (leave to that side).
    eta : array
        The slope ``η_k`` followed after the event.
    branch : bool array
        Staying was repulsive (``a r_k < 0``; the policy decided).
    """
    a_sign = np.sign(np.asarray(a_sign, float))
    r_k = np.asarray(r_k, float)
    z = -(r_k / n)[:, None] * x
    fixed = np.zeros(a_sign.shape, dtype=bool)
    if w is not None:  # a = 0: the sign a takes next, that of <w, D> = <w, b>
        mag = np.linalg.norm(b, axis=1) + np.linalg.norm(z, axis=1)
        a_sign = np.where(a_sign == 0, rate_sign(w, b, mag), a_sign)
        fixed = a_sign == 0  # and where that is rounding: a fixed point, held (as select)
    a_sign = np.where(a_sign == 0, 1.0, a_sign)
    eta, eta_star = single_slope(np.einsum("ed,ed->e", b, z), np.einsum("ed,ed->e", z, z),
                                 gamma, 1.0)
    D = b + eta[:, None] * z
    v = a_sign * np.einsum("ed,ed->e", D, x)
    tol = VELOCITY_RTOL * (np.linalg.norm(b, axis=1) + np.linalg.norm(z, axis=1))
    tol = tol * np.linalg.norm(x, axis=1) + 1e-300
    if vtol is not None:
        tol = np.maximum(tol, vtol)
    signs = np.where((np.abs(v) > tol) & ~fixed, np.sign(v), 0).astype(np.int8)
    # a leaving neuron follows its side's slope; with one hyperplane both one-sided velocities
    # then share the sign of v (η* outside [γ, 1]), so no second round is needed
    eta = np.where(signs != 0, side_slope(signs, gamma), eta)
    branch = (signs == 0) & (a_sign * r_k < 0) & np.isfinite(eta_star) & ~fixed
    if policy is BranchPolicy.GRADIENT_DESCENT and np.any(branch):
        i = np.flatnonzero(branch)
        side = gd_side(eta[i], gamma)
        # only where that side's normal velocity points out of the hyperplane (as select:
        # with D tangent there, e.g. D = 0 on the inactive side, gradient descent's iterates
        # stay where they are, which is staying)
        D_side = b[i] + side_slope(side, gamma)[:, None] * z[i]
        out = side * a_sign[i] * np.einsum("ed,ed->e", D_side, x[i]) > tol[i]
        signs[i[out]] = side[out]
        eta[i[out]] = side_slope(side[out], gamma)
    return signs, eta, branch


def select(
    a: float,
    u_face: ArrayLike,
    X: Array,
    r: Array,
    gamma: float,
    *,
    exits: dict[int, bool] | None = None,
    policy: BranchPolicy = BranchPolicy.MIN_NORM,
    start: Array | None = None,
    w: Array | None = None,
    at_rest: bool = False,
    sides: ArrayLike | None = None,
    r_rate: Array | None = None,
    geometry: Geometry | None = None,
    approach: ArrayLike | None = None,
) -> Selection:
    """Where a neuron on the face ``u_face`` goes next (the module's rule, any ``|K|``).

    Parameters
    ----------
    a : float
        Output weight of the neuron; only its sign matters (``dw/dt = a D``).  At a branch
        point where ``a`` passes through 0, pass a number of the sign it takes after.
    u_face : array of int8, shape (n,)
        Pattern at the event (zeros on the hyperplanes the neuron lies on); the hyperplanes
        that contain their intersection (:func:`implied_hyperplanes`) are added to ``K``.
    X, r, gamma
        Data, residual derivatives ``∂_1 l(h(x_k), y_k)`` at the event, slope.
    exits : dict, optional
        Hyperplanes (data indices) whose sliding slope reaches a bound at this event, mapped
        to ``True`` for the bound 1 and ``False`` for ``γ``: the neuron leaves them to the side
        of :func:`exit_side` (its normal velocity is zero at the event itself).
    policy : BranchPolicy
        Continuation at a repulsive sliding mode.
    start : array, optional
        Slopes on ``K`` to warm-start the least-squares solve.
    w : array, optional
        The neuron; where ``a = 0`` the sign ``a`` takes next is that of ``da/dt = <w, D>``
        (``= <w, b>``: the free part is orthogonal to ``w``), which then orients the motion;
        where that is zero too (to rounding), of ``d²a/dt² = <w, dD/dt>`` given ``r_rate``;
        where that is zero as well the neuron is a fixed point to that order and stays on
        all of ``K``, with no branch.
    at_rest : bool
        The neuron sits exactly on the hyperplanes from the start (an initial face), not after
        sliding: gradient descent then does not chatter there but steps with its convention
        ``σ'(0) = γ`` (every free slope ``γ``), and the ``GRADIENT_DESCENT`` policy follows
        that step at a branch point (stays where it is tangent).  Under either policy, where
        that step is a consistent continuation other than the one chosen, the hyperplanes on
        which they differ are flagged ``branch`` (the flow is not unique from there).  A
        neuron arriving (not ``exits``) on hyperplanes whose classes are linearly dependent
        is treated the same way: a class in the span of the others cannot leave alone, and
        gradient descent passes the intersection in a few steps by the same map
        (:func:`_gd_at_rest`).
    sides : array of int, shape (n,), optional
        With ``at_rest``: the signs of the computed ``<w, x_k>`` where the neuron starts, which
        gradient descent's first step reads (``σ'(z) = 1`` for ``z > 0`` even where ``z`` is
        within rounding of 0, and ``γ`` at ``z = 0`` exactly); ``None``: every offset 0.
    r_rate : array of shape (n,), optional
        ``dr/dt`` at the event, for the orientation at ``a = 0`` above (all ``a_j = 0`` at
        the start: ``da_j/dt`` can vanish for a neuron while the others move the residuals),
        and, with ``at_rest``, for where gradient descent goes from a rest (``D = 0``) that
        the residuals' motion ends (:func:`_gd_first_order`; where ``a = 0``, with the sign
        ``a`` takes and the map's steps growing with it).
    geometry : Geometry, optional
        The memo of ``X``'s geometry (the same array object ``X``) that a caller deciding
        many neurons keeps; ``None``: computed for this call.
    approach : array of int, shape (n,), optional
        For a neuron arriving on linearly dependent hyperplanes (not ``at_rest``, no
        ``exits``): the pattern it arrives from (0 on those it slides on), the sides from
        which gradient descent reaches the intersection and which its map starts from
        (:func:`_gd_at_rest`'s ``sides``).  ``None``: every offset 0, as at a rest, where
        every slope reads ``σ'(0) = γ``: a neuron sliding on ``x_5 = 2 x_2 + 2 x_3`` with
        ``x_3`` active and no other active point then read ``D = 0`` at the intersection and
        was held there for good, while gradient descent passes it (``x_2`` active after,
        ``x_3`` inactive, still sliding on ``x_5``; ``docs/integrator.md``, "An arrival on
        dependent hyperplanes").  For any arrival (not ``at_rest``, no ``exits``) it also
        says which hyperplanes were crossed: where two classes or more are, each one whose
        staying on its side is a consistent continuation too is flagged ``branch``
        (:func:`_uncrossed`).
    """
    if geometry is None:
        geometry = Geometry(X)
    elif geometry.X is not X:
        raise ValueError("geometry must be the Geometry of the data X passed to select")
    u_face = np.asarray(u_face)
    implied = geometry.implied(np.flatnonzero(u_face == 0))
    if implied.size:
        u_face = u_face.copy()
        u_face[implied] = 0
    K = np.flatnonzero(u_face == 0)
    b, Zrows = _field_parts(u_face, K, X, r, gamma)
    s_a = float(np.sign(a))
    rep, orient = geometry.classes(K)
    if s_a == 0.0 and w is not None:
        rate_parts = None if r_rate is None else _field_parts(u_face, K, X, r_rate, gamma)
        s_a = _sign_after_zero(np.asarray(w, float), b, Zrows, rate_parts)
        if s_a == 0.0:
            # a = 0 and da/dt = <w, D> = <w, b> = 0 for every slope on K (w ⟂ x_K), and
            # d²a/dt² = <w, dD/dt> too where r_rate is given: the neuron is a fixed point
            # (dw/dt = a D = 0) to that order, on all its hyperplanes
            stay = np.ones(K.size, dtype=bool)
            eta, D = _min_norm(b, Zrows, stay, np.zeros(K.size), gamma, start, (rep, orient))
            full = face_slopes(u_face, gamma)
            full[K] = eta
            return Selection(K, np.zeros(K.size, np.int8), full, D, np.zeros(K.size, bool))
    s_a = s_a or 1.0
    signs = np.zeros(K.size, dtype=np.int8)
    tol = _zero_tol(b, Zrows, X[K])
    if exits:
        signs = _exit_signs(exits, K, s_a, b, Zrows, X[K], gamma, start, (rep, orient), tol)
    eta = side_slope(signs, gamma)
    heads = np.flatnonzero(rep == np.arange(K.size))
    classes = (rep, orient)
    signs, eta, D = _leave_rounds(s_a, b, Zrows, X[K], signs, eta, gamma, start, classes, tol)
    forced = np.zeros(K.size, dtype=bool)
    if exits:
        forced[np.isin(K, list(exits))] = True
    # a later round may turn an earlier leave back (several hyperplanes interacting): then
    # the minimal-norm continuation among the consistent ones, by enumeration (rare)
    signs, eta, D = _consistent_or_enumerated(s_a, b, Zrows, X[K], signs, eta, D, forced,
                                              gamma, tol, classes)
    branch = np.zeros(K.size, dtype=bool)
    settled = False  # gradient descent's continuation from rest, checked and taken
    follow_gd = policy is BranchPolicy.GRADIENT_DESCENT and not at_rest
    for i in heads:
        if signs[i] != 0:  # not held (or left after an earlier branch decision)
            continue
        alt = _alternatives(rep == i, rep, orient, s_a, b, Zrows, X[K[i]], signs, eta, gamma, tol[i])
        if not alt:
            continue
        branch[rep == i] = True
        if not follow_gd:
            continue
        side = int(gd_side(eta[i], gamma))
        if side not in alt:
            # gradient descent's side has no outward normal velocity (its D is tangent there,
            # e.g. the inactive side of a neuron with no other active point: D = 0): its
            # iterates stay on that side of the hyperplane, held there, which is staying
            continue
        # the policy's leave changes D: the hyperplanes still held may have to leave in turn
        members = rep == i
        signs[members] = orient[members] * side
        eta[members] = side_slope(signs[members], gamma)
        signs, eta, D = _leave_rounds(s_a, b, Zrows, X[K], signs, eta, gamma, start, classes, tol)
    if at_rest or (not exits and geometry.dependent(K)):
        # gradient descent does not chatter where it starts exactly on the hyperplanes: its
        # own step (σ'(0) = γ) decides, wherever that is a consistent continuation.  Where it
        # is one and differs, the flow is not unique here whatever the policy (e.g. two
        # orthants both left into, d = 5, a neuron on six hyperplanes of rank 4): a branch.
        # Likewise where the neuron arrives on linearly dependent hyperplanes: a class in the
        # span of the others cannot leave alone, so the single-class departures above miss
        # those that several classes make together, and gradient descent, passing the
        # intersection in a few steps at a field constant to leading order, follows the same
        # map (d = 4, five hyperplanes of rank 2: it leaves four of them and slides on the
        # fifth, where the minimal-norm element stays on all)
        start_sides = sides if at_rest else approach  # where gradient descent's map starts
        z0 = None if start_sides is None else np.asarray(start_sides)[K]
        first = None
        if r_rate is not None and at_rest:
            first = _gd_first_order(s_a, b, Zrows, _field_parts(u_face, K, X, r_rate, gamma),
                                    X[K], gamma, start, classes, tol, z0,
                                    ramp=float(a) == 0.0)
        if first is None:
            drift = (None if r_rate is None or not at_rest or not GD_MAP_DRIFT_AWAY_FROM_REST
                     else _field_parts(u_face, K, X, r_rate, gamma))
            g_signs, g_eta, g_D = _gd_at_rest(s_a, b, Zrows, X[K], gamma, start, classes, tol,
                                              ramp=float(a) == 0.0, sides=z0, drift=drift,
                                              drift_beside_departures=False)
            moving = _consistent(g_signs, s_a * (X[K] @ g_D), tol, forced)
        else:  # checked on the field a time τ later (departures at the rate's speed O(t))
            g_signs, g_eta, g_D, moving = first
        # (and a continuation at all: a class left while the held ones imply it has an
        # offset of rounding, not a departure; d = 6, rank 4, arriving on five hyperplanes)
        if moving and _closed(geometry, K, g_signs):
            branch |= g_signs != signs
            if policy is BranchPolicy.GRADIENT_DESCENT:
                signs, eta, D = g_signs, g_eta, g_D
                settled = True
    if not settled:
        signs, eta, D = _consistent_or_enumerated(s_a, b, Zrows, X[K], signs, eta, D, forced,
                                                  gamma, tol, classes)
    if not _closed(geometry, K, signs):
        # a hyperplane left while the held ones imply it (linearly dependent x_K, e.g. a
        # neuron on a ray in d = 4 held by four hyperplanes of rank 3): no w can do that.
        # Those held at a bound of their slope go with it, to the side of the departure
        before = signs
        signs = _depart_together(X[K], signs, eta, gamma, s_a, Zrows, classes)
        eta = side_slope(signs, gamma)
        eta, D = _min_norm(b, Zrows, signs == 0, eta, gamma, start, classes)
        branch &= signs == 0
        # the hyperplanes that go along because the held ones imply them move off at
        # whatever speed the departure gives them, resolved or not (session 62)
        joined = (signs != 0) & (before == 0)
        if not (JOINED_AT_RESOLUTION
                and _joint_departure(signs, s_a * (X[K] @ D), tol, forced, joined)):
            # where that joint departure is no continuation either (d = 4, five hyperplanes
            # of rank 2, one reaching γ: leaving it alone is not closed, and the departure
            # with it left two hyperplanes against their normal velocity and held one with
            # its velocity off it; the next event put the neuron back, a Zeno loop): the
            # minimal-norm consistent continuation among the faces the arrangement realises
            signs, eta, D = _consistent_or_enumerated(s_a, b, Zrows, X[K], signs, eta, D,
                                                      forced, gamma, tol, classes)
            branch &= signs == 0
    if not _is_face(geometry, K, signs):
        # no consistent continuation, and the rounds' answer is no face at all: the face of
        # the departure that makes their leaves (session 54: a class of opposite points read
        # at its bounds on a ray of dependent hyperplanes, 'gd' policy, left alone while the
        # held ones imply it; the run ended 1.7e-3 off with status 0)
        signs = _face_of_departure(X[K], signs)
        eta = side_slope(signs, gamma)
        eta, D = _min_norm(b, Zrows, signs == 0, eta, gamma, start, classes)
        branch &= signs == 0
        # where that face is no continuation either, its field turning the neuron back
        # across hyperplanes it leaves (session 61: five points of rank 2, d = 3, an exit at
        # a sliding mode at rest, |D| ~ 1e-11; its face's field of 0.1 pointed across four
        # of them, and the next step's detection found the neuron back, a grazing at the
        # same time again and again): the minimal-norm consistent one among the faces
        signs, eta, D = _consistent_or_enumerated(s_a, b, Zrows, X[K], signs, eta, D, forced,
                                                  gamma, tol, classes)
        branch &= signs == 0
    if approach is not None and not at_rest and not exits:
        # several hyperplanes crossed at once: where not crossing one of them (the others as
        # chosen) is a continuation too, the flow is not unique there (d = 5, two hyperplanes
        # met at once from (−, −), every one of (+, +), (+, −), (−, +) consistent)
        branch |= _uncrossed(s_a, b, Zrows, X[K], signs, eta, gamma, start, classes, tol,
                             forced, np.asarray(approach)[K])
    full = face_slopes(u_face, gamma)
    full[K] = eta
    return Selection(K, signs, full, D, branch)


def through_origin(a: float, u_in: ArrayLike, X: Array, r: Array, gamma: float,
                   policy: BranchPolicy = BranchPolicy.MIN_NORM) -> Selection | None:
    """The continuation of a neuron that reaches ``w = 0`` along the face ``u_in`` and passes
    through it, or ``None`` where passing through leads back to 0 (or to rest).

    Where ``0 ∈ 𝔇(0)`` (ReLU), staying at 0 is the minimal-norm continuation (Condition 1,
    point 2), but the neuron reaches 0 with a velocity ``a D ≠ 0`` and gradient descent,
    which never lands on 0 exactly, passes through it.  Near 0 the residuals are frozen to
    leading order and the field is constant on each face of the arrangement of the
    hyperplanes (all through 0): the motion there is scale-invariant and piecewise linear.
    The neuron is followed from the point it reaches past 0, ``q = a D_in`` on the opposite
    face ``−u_in``, along that field (:func:`fan_walk`): a straight line on each face, the
    faces it meets decided by :func:`select` as any event is.  Where the walk reaches a face
    whose motion points into every side it has, that is the departure from 0 it continues on
    (a solution of Eq. (2)); where it returns to 0, comes to rest or does not escape within
    ``4 n`` faces, ``None``.  The opposite face itself is the first face tried (session 13,
    seed 1651); a neuron that cannot stay there walks on (session 14, seed 1961: d = 3, from
    the ray ``x_1^⊥ ∩ x_2^⊥`` it leaves ``x_2``, meets ``x_4`` and departs on the ray
    ``x_1^⊥ ∩ x_4^⊥``, as gradient descent does).  The returned selection covers every data
    point (``K`` = all); ``branch`` flags the hyperplanes the neuron was held on when it
    arrived.
    """
    u_in = np.asarray(u_in, dtype=np.int8)
    if np.sign(a) == 0.0:
        return None
    v = arrival_velocity(a, u_in, X, r, gamma, policy)
    if _held_at_rest(v, X, r):
        return None
    return _departure(fan_walk(a, (-u_in).astype(np.int8), v, X, r, gamma, policy), u_in)


#: :func:`through_origin` and :func:`gd_through_origin` read an arrival at 0 whose velocity
#: is rounding (:func:`arrives_at_rest`) as one at rest; ``False``: passed through on its
#: rounding's direction (before session 59)
ARRIVAL_AT_REST = True


def watched_velocity(v: Array, X: Array, r: Array, came_from: Array) -> Array:
    """The arrival velocity that gradient descent's orbit at 0 (:mod:`pwflow.origin_watch`)
    starts on, its first iterate ``ORIGIN_MAP_LEAD`` steps before 0 against it: ``v``
    (:func:`arrival_velocity`), or for an arrival at rest (:func:`arrives_at_rest`)
    ``came_from`` (the neuron's span part at an earlier time on the face it arrived along)
    reversed, at ``v``'s size.  At rest ``v``'s direction is rounding (the sign of a residual
    that vanished with the neuron: the rank-1 draw of :func:`arrives_at_rest` with ``r_0 =
    −4.3e-16`` pointed ``v`` away from 0, the orbit started on ``x_1``'s active side and
    escaped, a branch point logged at the arrival, the ``'gd'`` policy leaving 3.8e-2 from
    the batched path), while gradient descent's iterates shrink on the side they came from."""
    size = float(np.linalg.norm(came_from))
    if not _held_at_rest(v, X, r) or size == 0.0:
        return v
    return -(float(np.linalg.norm(v)) / size) * came_from


def _held_at_rest(v: Array, X: Array, r: Array) -> bool:
    """:func:`arrives_at_rest` where :data:`ARRIVAL_AT_REST` is on (its three readers)."""
    return ARRIVAL_AT_REST and arrives_at_rest(v, X, r)


def arrives_at_rest(v: Array, X: Array, r: Array) -> bool:
    """Whether a neuron reaches ``w = 0`` with the velocity ``v`` (:func:`arrival_velocity`)
    at rest: ``‖v‖ ≤ VELOCITY_RTOL Σ_k |r_k| ‖x_k‖ / n``, the rounding of the field's terms
    at 0 (every slope free).  The residuals that drive it vanished with it: it approached 0
    exponentially, in infinite time, and the event is the approach reaching rounding.  Not
    a passage through 0 (the residuals frozen near 0 and the field constant there, which
    :func:`through_origin` assumes), nor one gradient descent makes: its iterates shrink
    geometrically on the side they came from.  Rank-1 data in R^4 (two opposite points,
    the targets 0 on the active one): both neurons' offsets decay at rate 4.9; the
    reference path located their arrival at ``ker X`` at t = 8.06 with ``‖v‖ = 8.8e-17``
    against terms of 1.6, and the ``'gd'`` policy passed through to the repulsive side
    (5e-2 off at t = 10; gradient descent stays on its side with offsets of 1e-14)."""
    n, d = X.shape
    _, Zrows = _field_parts(np.zeros(n, dtype=np.int8), np.arange(n), X, r, 0.0)
    return float(np.linalg.norm(v)) <= VELOCITY_RTOL * _field_magnitude(np.zeros(d), Zrows)


def arrival_velocity(a: float, u_in: ArrayLike, X: Array, r: Array, gamma: float,
                     policy: BranchPolicy = BranchPolicy.MIN_NORM) -> Array:
    """``sign(a) D`` of :func:`select` on the face ``u_in`` along which a neuron reaches
    ``w = 0``: near 0 the field on a face is constant (the residuals frozen), so a neuron
    that reaches 0 moves radially, along this velocity, and came from the ray of its
    opposite (:func:`through_origin`, :func:`gd_escape_from_origin`)."""
    return float(np.sign(a)) * select(a, np.asarray(u_in, dtype=np.int8), X, r, gamma,
                                      policy=policy).D


def gd_through_origin(a: float, u_in: ArrayLike, X: Array, r: Array, gamma: float
                      ) -> Selection | None:
    """Where gradient descent goes after a neuron reaches ``w = 0`` along the face ``u_in``
    at which :func:`through_origin` found a consistent departure (a branch point): that
    departure only where gradient descent's own map near 0 escapes
    (:func:`gd_escape_from_origin`), followed from its escaped point by :func:`fan_walk`;
    ``None`` where gradient descent stays within a few steps of 0, the limit of small steps
    staying at 0 (integer data, session 36, seed 1317: the walk through 0 escaped along a
    sliding ray, gradient descent at twelve steps sat at ``|w| ≈ 0.006 lr``)."""
    u_in = np.asarray(u_in, dtype=np.int8)
    s_a = float(np.sign(a))
    if s_a == 0.0:
        return None
    policy = BranchPolicy.GRADIENT_DESCENT
    v = arrival_velocity(a, u_in, X, r, gamma, policy)
    if _held_at_rest(v, X, r):
        return None  # its iterates shrink on the side they came from
    escaped = gd_escape_from_origin(s_a, v, X, r, gamma)
    if escaped is None:
        return None
    return _departure(fan_walk(a, escaped[0], escaped[1], X, r, gamma, policy), u_in)


def _departure(found: FanExit | None, u_in: NDArray[np.int8]) -> Selection | None:
    """The selection of a departure from 0 on the face :func:`fan_walk` escaped along: every
    data point in ``K``; ``branch`` flags the hyperplanes held on arrival, or where none was
    (an arrival from an open cell, shrinking radially) those of the departure face, or else
    those whose side the passage through 0 changes: a branch point is logged on at least one
    hyperplane (session 40, thorough profile of property (f): a neuron reaching 0 from an
    open cell, d = 2, the ``'gd'`` run departed with no row, the default run stayed)."""
    if found is None:
        return None
    sel = found.selection
    branch = u_in == 0
    for more in (found.face == 0, found.face != u_in):
        if np.any(branch):
            break
        branch = more
    return Selection(np.arange(u_in.size), found.face, sel.eta, sel.D, branch)


def gd_escape_from_origin(s_a: float, v_in: Array, X: Array, r: Array, gamma: float
                          ) -> tuple[NDArray[np.int8], Array] | None:
    """Whether gradient descent, arriving at ``w = 0`` at the velocity ``v_in`` (``s_a D``
    of the arrival face), escapes from 0 or stays within a few steps of it.

    Near 0 the residuals and ``a`` are frozen to leading order and the field is constant on
    each face of the arrangement: gradient descent's iterates divided by ``lr |a|`` follow its
    own map ``ŵ ← ŵ + s_a D(ŵ)`` (:func:`gd_origin_orbits`), the same for every small step.
    The map is started :data:`ORIGIN_MAP_LEAD` steps before 0 on the arrival and iterated
    :data:`ORIGIN_MAP_STEPS` steps.  Where it escapes, ``|ŵ|`` grows linearly (the neuron
    departs along a ray); where it stays (a bounded orbit that chatters on several
    hyperplanes near 0: gradient descent sits at ``|w| = O(lr)``, which vanishes with the
    step), its norm over the second half does not grow by :data:`ORIGIN_MAP_GROWTH`.  The
    verdict is read from :data:`ORIGIN_MAP_STARTS` starts about the arrival's
    (:func:`origin_map_starts`): an escape from fewer than :data:`ORIGIN_MAP_CONSENSUS` of
    them is the map's chaos, which rounding decides, not a departure.
    Returns the face and the unit direction of the first escaped iterate, or ``None``.
    """
    starts = origin_map_starts(-ORIGIN_MAP_LEAD * np.asarray(v_in, dtype=float))
    orbit = gd_origin_orbits(np.full(len(starts), s_a), starts, X, r, gamma, ORIGIN_MAP_STEPS)
    if not escapes_by_consensus(orbit.escaped):
        return None
    w = orbit.states[int(np.argmax(orbit.escaped))]
    q = w / np.linalg.norm(w)
    z = X @ q
    u = np.where(np.abs(z) <= SPAN_RTOL * np.linalg.norm(X, axis=1), 0, np.sign(z))
    return u.astype(np.int8), q


def escapes_by_consensus(escaped: NDArray[np.bool_]) -> bool:
    """Whether the map's orbits from :func:`origin_map_starts` (their ``escaped`` flags)
    escape: from at least :data:`ORIGIN_MAP_CONSENSUS` of the starts."""
    return bool(np.mean(escaped) >= ORIGIN_MAP_CONSENSUS)


def origin_map_starts(start: Array) -> Array:
    """``start`` and :data:`ORIGIN_MAP_STARTS` − 1 points within :data:`ORIGIN_MAP_SPREAD`
    of it (relative), in directions fixed per dimension (a seeded draw): the starts of
    :func:`gd_escape_from_origin`'s map, shape ``(ORIGIN_MAP_STARTS, d)``."""
    return start + ORIGIN_MAP_SPREAD * np.linalg.norm(start) * _spread_directions(start.size)


@functools.lru_cache(maxsize=16)
def _spread_directions(d: int) -> Array:
    """The fixed unit directions of :func:`origin_map_starts` (the first row 0)."""
    u = np.random.default_rng(20261205).normal(size=(ORIGIN_MAP_STARTS, d))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    u[0] = 0.0
    u.flags.writeable = False
    return u


@dataclass(frozen=True)
class OriginOrbits:
    """Gradient descent's own map near ``w = 0`` run from several starts
    (:func:`gd_origin_orbits`).

    Attributes
    ----------
    states : ndarray, shape (J, d)
        The last iterates (in the map's units: one step is ``|D|``).
    faces : tuple of ndarray of int8, shape (F_j, n)
        Per start, the faces its second half met: the cells of its iterates and the faces of
        the hyperplanes it crossed between two of them (where these meet away from 0), the
        most met first: where it may escape (:func:`escapes_along`).
    cells : tuple of ndarray of int8, shape (C_j, n)
        Per start, the sign patterns of its iterates in the second half.
    weights : tuple of ndarray, shape (C_j,)
        The fraction of those iterates in each cell.
    escaped : ndarray of bool, shape (J,)
        Whether the norm grew by :data:`ORIGIN_MAP_GROWTH` over the second half.
    """

    states: Array
    faces: tuple[NDArray[np.int8], ...]
    cells: tuple[NDArray[np.int8], ...]
    weights: tuple[Array, ...]
    escaped: NDArray[np.bool_]


def gd_origin_orbits(s_a: Array, starts: Array, X: Array, r: Array, gamma: float, steps: int
                     ) -> OriginOrbits:
    """Gradient descent's own map near ``w = 0`` at frozen residuals ``r``: ``ŵ ← ŵ + s_a
    D(ŵ)``, ``D(ŵ) = −(1/n) Σ_k r_k σ'(<ŵ, x_k>) x_k`` (``σ'(0) = γ``), from each row of
    ``starts`` with the sign ``s_a`` of its ``a``, for ``steps`` steps (uneven, ``1 ± 5e-4``,
    as :func:`_gd_at_rest`'s), all starts at once.

    Gradient descent's iterates divided by ``lr |a|`` follow this map near 0, the same for
    every small step; a neuron held at 0 (:mod:`pwflow.origin_watch`) sits on the map's
    bounded orbit, which follows the residuals as they move (the map relaxes in ``O(1)``
    steps, ``O(lr)`` time).  The faces its second half meets are where it may escape
    (:func:`escapes_along`), and the cells of its iterates say where it chatters."""
    n, d = X.shape
    _, Zrows = _field_parts(np.zeros(n, dtype=np.int8), np.arange(n), X, r, gamma)
    W = np.array(starts, dtype=float).reshape(-1, d)
    s_col = np.asarray(s_a, dtype=float).reshape(-1, 1)
    J, second = W.shape[0], steps - steps // 2
    seen = np.zeros((second, J, n), dtype=np.int8)
    half = np.full(J, np.inf)
    # the slopes of side_slope (1 where <ŵ, x_k> > 0, else γ) and the steps' sizes times
    # s_a at once: the same numbers as one call of each per step, in fewer operations
    coef = _map_steps(steps)[:, None, None] * s_col
    XT, h = X.T, steps // 2
    for i in range(steps):
        z = W @ XT
        if i >= h:
            seen[i - h] = np.sign(z)
        step = np.where(z > 0.0, 1.0, gamma) @ Zrows
        W_next = W + coef[i] * step
        # count_nonzero first: a C call, where _at_fixed_point's np.any costs a few µs
        # per step (a third of this loop's time on the orbits of a neuron held at 0)
        if MAP_FIXED_POINT_EXIT and not np.count_nonzero(step) and _at_fixed_point(
                step, W, W_next):
            # every later iterate is W, bit for bit: its signs fill the rows left
            seen[max(i + 1 - h, 0):] = np.sign(z)
            if i < h:
                half = np.linalg.norm(W, axis=1)
            break
        W = W_next
        if i == h - 1:
            half = np.linalg.norm(W, axis=1)
    size = np.linalg.norm(W, axis=1)
    escaped = (size > 0.0) & (size >= ORIGIN_MAP_GROWTH * half)
    rank = _span_basis(X).shape[0]  # "0": below full rank, ker X (the span's origin)
    parts = [_visited_faces(seen[:, j], X, rank) for j in range(J)]
    return OriginOrbits(W, *(tuple(p[i] for p in parts) for i in range(3)), escaped)


#: end :func:`gd_origin_orbits`'s loop where the map is at a fixed point (the same result, bit
#: for bit: :func:`_at_fixed_point`); off only to show that it changes nothing
MAP_FIXED_POINT_EXIT = True


def _at_fixed_point(step: Array, W: Array, W_next: Array) -> bool:
    """Whether the map of :func:`gd_origin_orbits` stays at ``W`` for every later step, bit
    for bit: its direction ``step`` (``σ'(<ŵ, x_k>)`` against the frozen rows) is exactly 0
    in every row (a neuron at 0 in a cell where no point is active, ReLU: dead), so each
    later increment is a signed zero, and adding it left ``W`` unchanged bit for bit (where
    a ``−0.0`` coordinate turns ``+0.0`` under the first zero increment, one step later).
    Then every later iterate, product ``W Xᵀ`` and sign row is this one's."""
    return (not np.any(step)) and W_next.tobytes() == W.tobytes()


def _visited_faces(seen: NDArray[np.int8], X: Array, rank: int
                   ) -> tuple[NDArray[np.int8], NDArray[np.int8], Array]:
    """From a map's iterates' signs ``seen`` (``(T, n)``): the faces it met (the cells, and
    between two iterates in different cells the face of the hyperplanes crossed, those
    entries 0, where they meet away from 0; each once, the most met first), the cells and
    the fraction of the iterates in each (``rank``: of ``X``, computed once per map run)."""
    cells, counts = _unique_rows(seen)
    moved = np.any(seen[1:] != seen[:-1], axis=1)
    crossed = np.where(seen[1:][moved] != seen[:-1][moved], 0, seen[1:][moved]).astype(np.int8)
    faces, met = _unique_rows(np.concatenate([seen, crossed]))
    keep = [i for i, u in enumerate(faces)
            if not np.any(u == 0) or _span_basis(X[u == 0]).shape[0] < rank]
    order = sorted(keep, key=lambda i: (-met[i], faces[i].tobytes()))
    return faces[order], cells, counts / seen.shape[0]


def _unique_rows(rows: NDArray[np.int8]) -> tuple[NDArray[np.int8], NDArray[np.intp]]:
    """The distinct rows of an array of signs (entries −1, 0, 1) in byte order (``0 < 1 <
    −1``, the order of ``np.unique`` on one opaque item per row) and their counts.

    Each row is read as one key: up to :data:`_BASE3_MAX_COLUMNS` columns its digits
    ``v mod 3`` (0, 1, 2 for 0, 1, −1: the byte order) as a base-3 ``uint64``, whose sort
    is a sort of integers (a map's orbits make a few thousand rows per start); beyond, the
    row's bytes as one opaque item (``np.unique``'s ``axis=0`` form sorts field by field, ten
    times slower).  Both give the same rows in the same order."""
    rows = np.ascontiguousarray(rows)
    n = rows.shape[1]
    if rows.shape[0] and not np.any(rows != rows[0]):  # one row (a map at a fixed point)
        return rows[:1].copy(), np.array([rows.shape[0]], dtype=np.intp)
    if n <= _BASE3_MAX_COLUMNS:
        keys = (rows % 3).astype(np.uint64) @ _base3_weights(n)
        _, first, counts = np.unique(keys, return_index=True, return_counts=True)
        return rows[first], counts
    items, counts = np.unique(rows.view(np.dtype((np.void, n)))[:, 0], return_counts=True)
    return np.frombuffer(items.tobytes(), dtype=np.int8).reshape(-1, n), counts


#: the most columns whose base-3 key fits a ``uint64`` (``3⁴⁰ − 1 < 2⁶⁴``)
_BASE3_MAX_COLUMNS = 40


@functools.lru_cache(maxsize=64)
def _base3_weights(n: int) -> NDArray[np.uint64]:
    """``3^(n−1−k)`` for ``k < n`` (the first column the most significant), read-only."""
    out = np.array([3 ** (n - 1 - k) for k in range(n)], dtype=np.uint64)
    out.flags.writeable = False
    return out


def in_star(cells: NDArray[np.int8], u: NDArray[np.int8]) -> NDArray[np.bool_]:
    """Which ``cells`` (sign patterns, ``(C, n)``) have the face ``u`` in their closure (its
    star): they agree with ``u`` wherever ``u`` is not 0."""
    return np.all((u == 0) | (cells == u), axis=-1)


def escapes_along(a: float, u: NDArray[np.int8], X: Array, r: Array, gamma: float
                  ) -> Selection | None:
    """The departure from ``w = 0`` along the face ``u`` where the motion on it leaves 0:
    :func:`select` (``'gd'`` policy) keeps the neuron on every hyperplane of ``u`` and
    ``sign(a) D`` points strictly into every side of ``u`` (beyond its rounding), so from any
    point of the face the neuron moves away from 0 on it (radially, near 0: the field there
    is constant); ``None`` otherwise.  The selection covers every data point (``K`` = all,
    the signs ``u``)."""
    u = np.asarray(u, dtype=np.int8)
    s_a = float(np.sign(a))
    if s_a == 0.0:
        return None
    sel = select(a, u, X, r, gamma, policy=BranchPolicy.GRADIENT_DESCENT)
    if np.any(sel.signs != 0):
        return None
    v = s_a * sel.D
    tol = _zero_tol(*_field_parts(u, np.flatnonzero(u == 0), X, r, gamma), X)
    side = u != 0
    if not np.any(v != 0.0) or not np.all(u[side] * (X[side] @ v) > tol[side]):
        return None
    full = np.zeros(u.size, dtype=bool)
    full[sel.K] = sel.branch
    return Selection(np.arange(u.size), u.copy(), sel.eta, sel.D, full)


def fan_walk(a: float, u: NDArray[np.int8], q: Array, X: Array, r: Array, gamma: float,
             policy: BranchPolicy = BranchPolicy.MIN_NORM) -> FanExit | None:
    """Follow a neuron from ``q ≠ 0`` on the face ``u`` along the field at frozen residuals
    ``r`` (constant on each face: the motion near ``w = 0``, where it is scale-invariant).

    On each face :func:`select` (with ``w = q``) decides which hyperplanes are left and gives
    ``D``; the neuron moves on the line ``q + s a D`` to the first hyperplane it meets, which
    is added to the face.  Returns the face on which the motion meets no hyperplane (it moves
    away from every side: the neuron escapes along it, its direction tending to ``a D``), or
    ``None`` where the line reaches 0, the neuron rests (``X a D = 0``), or no such face is
    met within ``4 n`` faces.  A side the escaping motion runs parallel to (``<a D, x_k> =
    0`` to rounding) is added to the face: the direction the neuron tends to lies on it.
    """
    s_a = float(np.sign(a))
    n = X.shape[0]
    q = np.asarray(q, dtype=float)
    scale = 1.0  # q is renormalised at every face (only directions matter); entry's units
    u = np.asarray(u, dtype=np.int8).copy()
    for _ in range(4 * n):
        sel = select(a, u, X, r, gamma, policy=policy, w=q)
        u_new = u.copy()
        u_new[sel.K] = sel.signs
        v = s_a * sel.D
        tol = _zero_tol(*_field_parts(u_new, np.flatnonzero(u_new == 0), X, r, gamma), X)
        if np.all(np.abs(X @ v) <= tol):
            return None
        z, dz = X @ q, X @ v
        side = u_new != 0
        toward = side & (u_new * dz < -tol)
        along = side & (np.abs(dz) <= tol)
        if not np.any(toward):
            if not np.any(along):
                return FanExit(u_new, sel, scale * q)
            u_new[along] = 0
            nxt = v
        else:
            # a side q is on by rounding only (its offset of the other sign) is met at once
            s = np.where(toward, np.maximum(-z / np.where(toward, dz, 1.0), 0.0), np.inf)
            s_hit = float(np.min(s))
            nxt = q + s_hit * v
            if np.linalg.norm(nxt) <= SPAN_RTOL * max(np.linalg.norm(q),
                                                      s_hit * np.linalg.norm(v)):
                return None
            u_new[toward & (s <= s_hit * (1.0 + SPAN_RTOL))] = 0
            scale *= float(np.linalg.norm(nxt))
        basis = _span_basis(X[u_new == 0])  # the hyperplanes met: put the neuron on them
        size = np.linalg.norm(nxt)
        nxt = nxt - (nxt @ basis.T) @ basis
        if np.linalg.norm(nxt) <= SPAN_RTOL * size:
            return None  # they meet only at 0 (d = 2: a ray reaching another hyperplane)
        q, u = nxt / np.linalg.norm(nxt), u_new
    return None


def _exit_signs(exits: dict[int, bool], K: NDArray[np.intp], s_a: float, b: Array,
                Zrows: Array, XK: Array, gamma: float, start: Array | None,
                classes: tuple[NDArray[np.intp], NDArray[np.int8]], tol: Array
                ) -> NDArray[np.int8]:
    """Signs on ``K`` of the hyperplanes whose sliding slope reached a bound (``exits``).

    A class's slope parameter (its head's slope) reached the bound; its KKT multiplier is
    that of the summed column, ``∝ −(Σ_members c_k r_k) x_head``, and gives the side
    (:func:`exit_side`).  Where that column is zero (``r_k = 0``: the slope is free and has no
    multiplier; ``D`` does not depend on it) the side is that of the normal velocity of the
    minimal-norm ``D`` over the whole box, read just past the exit where it is not zero: the
    hyperplane is one of linearly dependent ones (d = 4: ``x_1`` in the span of ``x_0, x_2``,
    ``r_1 = 0``), and leaves with them to the side they go (its bound's side, as before, only
    where that velocity is rounding)."""
    rep, orient = classes
    signs = np.zeros(K.size, dtype=np.int8)
    v_star = None
    for i, k in enumerate(K):
        if int(k) not in exits:
            continue
        members = rep == rep[i]
        head = rep[i]
        head_upper = exits[int(k)] if orient[i] > 0 else not exits[int(k)]
        r_class = _class_multiplier(Zrows, XK, members, orient, head)
        side = exit_side(s_a, r_class, head_upper)
        if r_class == 0.0:
            if v_star is None:
                _, D = _min_norm(b, Zrows, np.ones(K.size, dtype=bool), np.zeros(K.size),
                                 gamma, start, classes)
                v_star = s_a * (XK @ D)
            if abs(v_star[head]) > EXIT_READ_RTOL * tol[head]:
                side = np.int8(np.sign(v_star[head]))
        signs[members] = orient[members] * side
    return signs


def _class_multiplier(Zrows: Array, XK: Array, members: NDArray[np.bool_],
                      orient: NDArray[np.int8], head: int) -> float:
    """The residual whose sign gives a class's exit side (:func:`exit_side`): its summed
    column ``Σ_members orient_k z_k`` against the head's point, ``∝ Σ orient_k c_k r_k`` for
    ``x_k = c_k x_head`` (``r_k |x_k|²/n`` for a class of one)."""
    return -float((orient[members] @ Zrows[members]) @ XK[head])


def _depart_together(XK: Array, signs: NDArray[np.int8], eta: Array, gamma: float,
                     s_a: float, Zrows: Array,
                     classes: tuple[NDArray[np.intp], NDArray[np.int8]]) -> NDArray[np.int8]:
    """Signs on ``K`` when the hyperplanes left are implied by the held ones.

    The departure ``δv = X_K δD`` must lie in the range of ``X_K`` (``<w, x_k>`` are tied by
    the linear dependencies of the ``x_k``): the minimal-norm ``δD`` with ``<x_k, δD> =
    signs_k`` on the hyperplanes left and ``0`` on those held with their slope inside
    ``[γ, 1]`` gives it; those held at a bound of their slope leave to the side of their
    ``δv`` where it is not zero (``x_3 = −4 x_2 − x_0``, ``x_2`` left to ``−``, ``x_0``
    held inside: ``x_3`` leaves to ``+``), but only to the side a slope at that bound can
    leave to (:func:`exit_side` with ``s_a`` and the class's residual,
    :func:`_class_multiplier`): one whose ``δv`` points to the other side is held as well
    (``δv = 0`` there) and ``δD`` solved again, as long as the hyperplanes left still get
    their signs (session 46: sliding on ``x_1, x_3, x_4`` of rank 2 with every slope at
    γ = 0, ``x_1`` reaching γ at a residual's root; the minimal-norm ``δD`` sent ``x_4`` to
    its active side, where the field takes it straight back: a leave, then grazings every
    2e-13, Zeno; gradient descent leaves ``x_1`` and ``x_3`` and slides on ``x_4``).

    A class of parallel points (``classes``, :func:`~pwflow.subgradient.parallel_classes`) is
    held or left as one: its members share a hyperplane.  Its slope is at a bound where its
    head's is, and it may leave to the side its summed column's multiplier allows (session
    54: ``x_3 = −x_0`` with ``x_0`` at γ and ``x_3`` at ``1 − 7e-11``, read one at a time,
    had ``x_0`` left and ``x_3`` held, a face no ``w`` lies on, whose ray pointed away from
    the neuron: it was read as at ``w = 0`` and moved there, breaking Lemma 1).

    Held hyperplanes that no ``δD`` holds together with the leaves (the least squares'
    compromise moves one of them) give the first answer, as where the leaves cannot be
    made (session 58: four hyperplanes of rank 2, ``x_0`` left at γ, ``x_1`` held inside
    its box and ``x_2`` held against its bound's side: ``(−, 0, 0, −)``, which no ``w`` has;
    the face read from it sent ``x_1`` to ``+``, where the field took the neurons straight
    back, Zeno; gradient descent slides on ``x_1`` and leaves the others, the first answer).
    """
    rep, orient = classes
    heads = np.flatnonzero(rep == np.arange(rep.size))
    held = signs == 0
    edge = held & _at_box_edge(eta, gamma)[rep]  # a class at a bound where its head is
    may_head = np.zeros(rep.size, dtype=np.int8)
    for h in heads:
        may_head[h] = exit_side(s_a, _class_multiplier(Zrows, XK, rep == h, orient, h),
                                eta[h] >= 1.0)
    may = orient * may_head[rep]  # the side a class at its bound leaves to, per member
    keep = held & ~edge
    first = None
    for _ in range(signs.size + 1):
        rows = (~held) | keep
        target = np.where(held, 0.0, signs.astype(float))[rows]
        dD, *_ = np.linalg.lstsq(XK[rows], target, rcond=None)
        dv, moves = _departure_sides(XK, dD)
        # a class goes where its head's δv is not zero, every member to its own side
        go = edge & ~keep & moves[rep]
        out = signs.copy()
        out[go] = (orient * np.sign(dv[rep]).astype(np.int8))[go]
        if first is None:
            first = out
        if np.any(np.sign(dv[~held]) != signs[~held]) or np.any(moves[keep]):
            # the leaves cannot be made with those held (a held one moves: the least
            # squares' compromise, no δD holds them all): as the plain rule
            return first
        against = go & (out != may)
        if not np.any(against):
            return out
        keep = keep | against[rep]  # (a class: all of it, with its head)
    return first


def _is_face(geometry: Geometry, K: NDArray[np.intp], signs: NDArray[np.int8]) -> bool:
    """Whether some ``w`` has the signs ``signs`` on ``K`` (held: 0).  Every class-consistent
    sign vector is one where the classes are linearly independent; otherwise the arrangement
    decides (:func:`pwflow.cones.face_point`)."""
    rep, orient = geometry.classes(K)
    if not np.array_equal(signs, orient * signs[rep]):
        return False
    if not geometry.dependent(K):
        return True
    return face_point(geometry.X[K], signs, rank_rtol=SPAN_RTOL) is not None


def _face_of_departure(XK: Array, signs: NDArray[np.int8]) -> NDArray[np.int8]:
    """The signs on ``K`` of the minimal-norm direction ``δD`` with ``<x_k, δD> = signs_k`` on
    the hyperplanes left (least squares where no ``δD`` makes them all): the face a neuron
    moving along ``δD`` enters, one that some ``w`` lies on (the hyperplanes it stays on are
    exactly those ``δD`` is parallel to, so they imply no other).  Where the leaves can be
    made, they keep their signs and the held hyperplanes that they imply leave with them."""
    left = signs != 0
    dD, *_ = np.linalg.lstsq(XK[left], signs[left].astype(float), rcond=None)
    dv, moves = _departure_sides(XK, dD)
    return np.where(moves, np.sign(dv), 0).astype(np.int8)


def _departure_sides(XK: Array, dD: Array) -> tuple[Array, NDArray[np.bool_]]:
    """``δv = X_K δD`` and where it is not zero: beyond 1e-9 of ``‖x_k‖ ‖δD‖`` (the
    least-squares solves' rounding), the one reading of a departure's sides of
    :func:`_depart_together` and :func:`_face_of_departure`."""
    dv = XK @ dD
    return dv, np.abs(dv) > 1e-9 * np.linalg.norm(XK, axis=1) * float(np.linalg.norm(dD))


def _consistent_or_enumerated(s_a: float, b: Array, Zrows: Array, XK: Array,
                              signs: NDArray[np.int8], eta: Array, D: Array,
                              forced: NDArray[np.bool_], gamma: float, tol: Array,
                              classes: tuple[NDArray[np.intp], NDArray[np.int8]]
                              ) -> tuple[NDArray[np.int8], Array, Array]:
    """``(signs, eta, D)`` where they are a continuation (:func:`_consistent`); otherwise the
    minimal-norm consistent continuation among the faces the arrangement realises
    (:func:`_enumerate`), or the same three where there is none."""
    if _consistent(signs, s_a * (XK @ D), tol, forced):
        return signs, eta, D
    found = _enumerate(s_a, b, Zrows, XK, signs, forced, gamma, tol, *classes)
    return (signs, eta, D) if found is None else found


def _closed(geometry: Geometry, K: NDArray[np.intp], signs: NDArray[np.int8]) -> bool:
    """Whether the hyperplanes held (``signs == 0``) imply none of those left
    (:func:`implied_hyperplanes` of the face after the event: its hyperplanes are the held
    ones, ``K`` being every hyperplane of the face before)."""
    if np.all(signs == 0) or not np.any(signs == 0):
        return True
    return not np.any(np.isin(geometry.implied(K[signs == 0]), K))


def _leave_rounds(s_a: float, b: Array, Zrows: Array, XK: Array, signs: NDArray[np.int8],
                  eta: Array, gamma: float, start: Array | None,
                  classes: tuple[NDArray[np.intp], NDArray[np.int8]], tol: Array
                  ) -> tuple[NDArray[np.int8], Array, Array]:
    """The rounds of :func:`select`: solve on the held hyperplanes, let those whose normal
    velocity is not zero leave to its side (whole classes of parallel points), repeat (at most
    ``|K|`` rounds; each removes a class).  Returns the signs, slopes and ``D``."""
    rep, orient = classes
    heads = np.flatnonzero(rep == np.arange(rep.size))
    signs = signs.copy()
    for _ in range(rep.size + 1):
        stay = signs == 0
        eta, D = _min_norm(b, Zrows, stay, eta, gamma, start, classes)
        v = s_a * (XK @ D)
        leave_heads = heads[stay[heads] & (np.abs(v[heads]) > tol[heads])]
        if leave_heads.size == 0:  # the solve just made is the answer (the same inputs)
            return signs, eta, D
        leaving_head = np.zeros(rep.size, dtype=bool)
        leaving_head[leave_heads] = True
        leave = leaving_head[rep]  # the classes of the leaving heads
        signs[leave] = orient[leave] * np.sign(v[rep[leave]]).astype(np.int8)
        consistent = np.abs(eta[leave] - side_slope(signs[leave], gamma)) <= 1e-12
        eta[leave] = side_slope(signs[leave], gamma)
        if np.all(consistent):  # the slopes were already at those bounds: D is unchanged
            break
    eta, D = _min_norm(b, Zrows, signs == 0, eta, gamma, start, classes)
    return signs, eta, D


#: a held hyperplane's normal velocity is tangent within this many times its rounding
#: (:func:`_consistent`, and :meth:`VelocityReach.allows`, which must read it the same way)
TANGENT_TOL = 1e3


#: :func:`select`: a joint departure from hyperplanes the held ones imply
#: (:func:`_depart_together`) is taken where the hyperplanes that go along move to their
#: sides, also where their velocity is below its rounding
#: (:func:`_joint_departure`); ``False``: every leave resolved, else the enumeration (before
#: session 62; tests: the mechanism off)
JOINED_AT_RESOLUTION = True


def _joint_departure(signs: NDArray[np.int8], v: Array, tol: Array,
                     forced: NDArray[np.bool_], joined: NDArray[np.bool_]) -> bool:
    """Whether a joint departure (:func:`_depart_together`) is a continuation: as
    :func:`_consistent`, except that the hyperplanes that go along (``joined``: implied by
    the held ones once the others leave) need only move to their sides, ``signs v > 0``.

    Their velocity is the departure's, set by the geometry, not a motion of their own: as
    the minimal-norm element grows from 0 (a residual passing 0), its velocities cross
    their rounding one at a time, and where the first was resolved and the others not, the
    departure was read as inconsistent and the enumeration took a far cell
    (``tests/explore_integer.py`` seed 73995, d = 3, ReLU, a neuron held at 0: at
    ``r_2 = 7.2e-11`` the open cell at ``|D| = 2.8e-3`` instead of the ray
    ``x_0^⊥ ∩ x_1^⊥ ∩ x_4^⊥ ∩ x_5^⊥`` at ``|D| = 1.6e-11``, which the rule gives from
    ``r_2 = 1e-10`` on; the runs at ``rtol ≤ 1e-12`` left 0 into the cell, the default one
    along the ray, 2.3e-3 apart at t = 10; session 62)."""
    return (_consistent(signs, v, tol, forced | joined)
            and bool(np.all(signs[joined] * v[joined] > 0.0)))


def _consistent(signs: NDArray[np.int8], v: Array, tol: Array,
                forced: NDArray[np.bool_]) -> bool:
    """Leaving hyperplanes move to their side by more than rounding (``tol``, as the rounds
    ask of a departure), staying ones are tangent (``forced``: exits, whose velocity is zero
    to first order, are not checked)."""
    leave = (signs != 0) & ~forced
    return bool(np.all(signs[leave] * v[leave] > tol[leave])
                and np.all(np.abs(v[signs == 0]) <= tol[signs == 0] * TANGENT_TOL))


#: :func:`_enumerate` skips a partial assignment that no completion can make consistent
#: (:meth:`VelocityReach.allows`; the same answer, tested against the full search).  A neuron at
#: ``w = 0`` with ``γ > 0`` (every hyperplane held) meets this search where the rounds end
#: inconsistent: twelve integer points in R^6, 52 297 assignments and 22 s per search before,
#: in R^7 133 383 and 51 s (a first layer started at 0: 187 s for six neurons); 8–100 now.
PRUNE_ENUMERATION = True

#: :func:`_enumerate` assigns the classes whose slopes move the normal velocities most first
#: (:meth:`VelocityReach.search_order`): their intervals shrink fastest, so
#: :data:`PRUNE_ENUMERATION` cuts higher in the tree.  The answer does not depend on the order
#: (:func:`_better`).  Twenty Gaussian points at ``W = 0``, γ = 0.1 (session 43): R^5
#: 3.5 → 1.1 s, R^7 145 → 21 s, R^8 241 → 43 s.
ORDER_BY_REACH = True


def _enumerate(s_a: float, b: Array, Zrows: Array, XK: Array, signs0: NDArray[np.int8],
               forced: NDArray[np.bool_], gamma: float, tol: Array, rep: NDArray[np.intp],
               orient: NDArray[np.int8]):
    """The consistent assignment with the smallest ``‖D‖`` over the classes of parallel
    hyperplanes (used only when the rounds above end inconsistent), or ``None`` if there is
    none (then the rounds' answer stands).

    A consistent assignment is the sign vector of the departure ``v = a X_K D`` (zero on the
    hyperplanes held), so only sign vectors the arrangement of ``{x_k : k ∈ K}`` can realise
    are candidates: a depth-first search over the classes (in the order ``0, −, +``, so ties
    are broken as a plain enumeration would) extends a partial assignment only while it is a
    face of the arrangement (:func:`pwflow.cones.face_point`).  The leaves are the faces of a
    central arrangement of ``|K|`` hyperplanes in a space of rank ``r = rank X_K``:
    ``O(|K|^r)`` of them instead of ``3^|K|`` (a neuron ⟂ all twelve points of rank-4 data,
    d = 7: 3¹² = 531 441 solves before, a few hundred now).  Exits (``forced``) keep their
    sign and their velocity is not constrained (it is zero to first order), but the face must
    realise their sign too: an exit from a hyperplane the held ones imply is no departure (d =
    4, five hyperplanes of rank 2, one reaching γ: holding the four others is tangent but not
    a face, and was taken, a Zeno loop).  A partial assignment is also extended only while
    some slopes in the box can still make its assigned hyperplanes' velocities consistent
    (:meth:`VelocityReach.allows`, :data:`PRUNE_ENUMERATION`): at ``w = 0`` (every hyperplane)
    the faces are too many to visit one by one (session 41).
    """
    heads = np.flatnonzero((rep == np.arange(rep.size)) & ~forced)
    exit_heads = np.flatnonzero((rep == np.arange(rep.size)) & forced)
    fixed_rows, fixed_signs = XK[exit_heads], signs0[exit_heads]
    n_fixed = exit_heads.size
    start = np.zeros(XK.shape[1])
    if n_fixed:
        start = face_point(fixed_rows, fixed_signs, rank_rtol=SPAN_RTOL)
        if start is None:
            return None
    # the partial assignment's signs (exits at theirs, every class of a head 0 until
    # assigned) and which hyperplanes are assigned (exits from the start)
    signs = signs0.copy()
    for h in heads:
        signs[rep == h] = 0
    assigned = forced.copy()
    reach = VelocityReach.of(b, Zrows, XK, signs, gamma)
    # the classes in the order of the search, and each one's rank in the plain order (``key``)
    order = reach.search_order(heads, rep) if ORDER_BY_REACH else np.arange(heads.size)
    heads, natural = heads[order], np.argsort(order)
    rows = np.concatenate([fixed_rows, XK[heads]])
    member = [np.flatnonzero(rep == h) for h in heads]  # the hyperplanes of each class
    choice = np.zeros(heads.size, dtype=np.int8)
    best = None

    def visit(level: int, point: Array, lo: Array, hi: Array) -> None:
        nonlocal best
        if level == heads.size:
            found = _assignment(s_a, b, Zrows, XK, signs0, forced, gamma, tol, rep, orient,
                                heads, choice)
            if found is not None:
                found = (*found, _tie_key(choice[natural]))
                if _better(found, best):
                    best = found
            return
        x = rows[n_fixed + level]
        here = float(x @ point)
        # the parent's point lies on one side of (or on) the new hyperplane: that child is a
        # face with the same point; the two others need a least-distance programme
        side = 0 if abs(here) <= SPAN_RTOL * float(np.linalg.norm(x)) else int(np.sign(here))
        cls = member[level]
        assigned[cls] = True
        # the two children off the parent's point are empty together (cones.PAIRED_CHILDREN)
        paired_empty = False
        for c in (0, -1, 1):
            choice[level] = c
            signs[cls] = orient[cls] * c
            lo_c, hi_c = (lo, hi) if c == 0 else reach.fix(lo, hi, cls, signs[cls])
            if PRUNE_ENUMERATION and not reach.allows(s_a, signs, assigned, forced, lo_c,
                                                      hi_c, tol):
                continue  # no assignment below is consistent: a departure to these sides
                # or tangent on these hyperplanes is out of reach of every slope in the box
            if c == side:
                child = point
            elif paired_empty:
                continue
            else:
                child = face_point(rows[:n_fixed + level + 1],
                                   np.concatenate([fixed_signs, choice[:level + 1]]),
                                   rank_rtol=SPAN_RTOL)
                paired_empty = child is None and cones.sibling_empty(side, here)
            if child is not None:
                visit(level + 1, child, lo_c, hi_c)
        choice[level] = 0
        signs[cls] = 0
        assigned[cls] = False

    visit(0, start, *reach.bounds)
    return None if best is None else best[1:4]


def _tie_key(choice: NDArray[np.int8]) -> tuple[int, ...]:
    """An assignment's place in the plain enumeration (classes in index order, each in the
    order ``0, −, +``): the first of several assignments of one ``‖D‖`` is the one with the
    smallest key, whatever order the search visits them in."""
    return tuple((2 * (choice > 0) + (choice < 0)).tolist())


def _better(found: tuple, best: tuple | None) -> bool:
    """Whether the consistent assignment ``found`` (``(‖D‖, signs, eta, D, key)``) replaces
    ``best``: a smaller ``‖D‖`` by more than 1e-12 relative, or one within 1e-12 that comes
    first in the plain enumeration (:func:`_tie_key`): the answer of visiting the assignments
    in that order and keeping the first of the least ``‖D‖``."""
    if best is None or found[0] < best[0] * (1 - 1e-12):
        return True
    return found[0] <= best[0] * (1 + 1e-12) and found[4] < best[4]


@dataclass(frozen=True)
class VelocityReach:
    """What the slopes in the box leave of each normal velocity, for :func:`_enumerate`.

    ``<x_k, D> = x_k·b + Σ_i η_i G[k, i]`` with ``G[k, i] = x_k·z_i``: with the slopes of
    the hyperplanes assigned to a side fixed at their side's slope and every other one free in
    ``[γ, 1]`` (held, or not yet assigned), ``bounds`` is the interval of each velocity (not
    oriented by ``a``), updated as classes are assigned (:meth:`fix`).  Every completion's
    slopes lie in that box (a side's slope is ``γ`` or 1, a held one's in ``[γ, 1]``), so a
    velocity that cannot reach its side there cannot in any completion.  ``low``/``high``:
    each free slope's least and greatest term ``min/max(γ G, G)``, computed once.  ``slack``:
    1e-9 of each sum's terms, for rounding (the intervals are accumulated, not recomputed)."""

    G: Array
    gamma: float
    low: Array
    high: Array
    bounds: tuple[Array, Array]
    slack: Array

    @classmethod
    def of(cls, b: Array, Zrows: Array, XK: Array, signs: NDArray[np.int8],
           gamma: float) -> "VelocityReach":
        """The intervals at the partial assignment ``signs`` (0: free)."""
        xb, G = XK @ b, XK @ Zrows.T
        low, high = np.minimum(gamma * G, G), np.maximum(gamma * G, G)
        free = signs == 0
        base = xb + G[:, ~free] @ side_slope(signs[~free], gamma)
        lo = base + np.sum(low[:, free], axis=1)
        hi = base + np.sum(high[:, free], axis=1)
        slack = 1e-9 * (np.abs(xb) + np.sum(np.abs(G), axis=1)) + 1e-300
        return cls(G, gamma, low, high, (lo, hi), slack)

    def search_order(self, heads: NDArray[np.intp], rep: NDArray[np.intp]) -> NDArray[np.intp]:
        """The classes ``heads`` by decreasing reach of their slopes over the normal
        velocities, ``Σ_k Σ_{i ∈ class} |G[k, i]|`` (ties in index order): the order in which
        :func:`_enumerate` assigns them."""
        reach = np.bincount(rep, weights=np.abs(self.G).sum(axis=0), minlength=rep.size)
        return np.argsort(-reach[heads], kind="stable")

    def fix(self, lo: Array, hi: Array, cols: NDArray[np.intp],
            signs: NDArray[np.int8]) -> tuple[Array, Array]:
        """The intervals once the free hyperplanes ``cols`` are assigned to ``signs`` (±1)."""
        at = self.G[:, cols] @ side_slope(signs, self.gamma)
        return (lo + at - np.sum(self.low[:, cols], axis=1),
                hi + at - np.sum(self.high[:, cols], axis=1))

    def allows(self, s_a: float, signs: NDArray[np.int8], assigned: NDArray[np.bool_],
               forced: NDArray[np.bool_], lo: Array, hi: Array, tol: Array) -> bool:
        """Whether an assignment extending ``signs`` on the ``assigned`` hyperplanes can be
        :func:`_consistent`: each normal velocity ``s_a <x_k, D>`` can still point to its side
        by more than ``tol`` where assigned to one, be tangent (within :data:`TANGENT_TOL`
        times ``tol``) where held.  A necessary condition only: a subtree it refuses has no
        consistent leaf."""
        if s_a < 0:
            lo, hi = -hi, -lo
        slack = self.slack
        edge = TANGENT_TOL * tol + slack
        # each assigned hyperplane's test (a side: a departure beyond ``tol``; held: tangent),
        # in few numpy calls (the search makes 10⁵ of these at w = 0 in R^7); exits unchecked
        ok = np.where(signs > 0, hi > tol - slack,
                      np.where(signs < 0, lo < slack - tol, (lo <= edge) & (hi >= -edge)))
        return bool(np.all(ok[assigned & ((signs == 0) | ~forced)]))


def _assignment(s_a: float, b: Array, Zrows: Array, XK: Array, signs0: NDArray[np.int8],
                forced: NDArray[np.bool_], gamma: float, tol: Array, rep: NDArray[np.intp],
                orient: NDArray[np.int8], heads: NDArray[np.intp], choice: NDArray[np.int8]):
    """``(‖D‖, signs, eta, D)`` of one assignment of the classes ``heads`` (``choice``) if it
    is consistent (:func:`_consistent`, and no held slope at a bound with a normal
    velocity), else ``None``."""
    signs = signs0.copy()
    for h, c in zip(heads, choice):
        signs[rep == h] = orient[rep == h] * c
    eta = side_slope(signs, gamma)
    eta, D = _min_norm(b, Zrows, signs == 0, eta, gamma, None, (rep, orient))
    stay = signs == 0
    if np.any(stay) and np.any(_at_box_edge(eta[stay], gamma)
                               & (np.abs(s_a * (XK[stay] @ D)) > tol[stay])):
        return None
    if not _consistent(signs, s_a * (XK @ D), tol, forced):
        return None
    return float(np.linalg.norm(D)), signs, eta, D


#: :func:`select` at rest passes the residuals' rate to gradient descent's map
#: (:func:`_gd_at_rest`'s ``drift``) also where the neuron is not at rest at its first step
#: (:func:`_gd_first_order` does not apply): once its first steps bring the map to rest,
#: the rate moves it, as it moves gradient descent (session 56: ``x_0`` neutral from its
#: ``−`` side while ``x_1`` slides, ``a = 0``; the rate moves ``x_0`` up and ``x_1`` down to
#: its chatter, and gradient descent leaves ``x_0`` to ``+``, where the map held both).
#: Only once every class rests (``_gd_at_rest``'s ``drift_beside_departures=False``)
GD_MAP_DRIFT_AWAY_FROM_REST = True


def _at_box_edge(eta: Array, gamma: float) -> NDArray[np.bool_]:
    return (eta <= gamma) | (eta >= 1.0)


def _gd_at_rest(s_a: float, b: Array, Zrows: Array, XK: Array, gamma: float,
               start: Array | None, classes: tuple[NDArray[np.intp], NDArray[np.int8]],
               tol: Array, ramp: bool = False, sides: Array | None = None,
               uneven: bool = False, drift: tuple[Array, Array] | None = None,
               drift_beside_departures: bool = True
               ) -> tuple[NDArray[np.int8], Array, Array]:
    """Where gradient descent goes from exactly on the hyperplanes ``K``.

    While ``w`` is within a few steps of the intersection the residuals and the fixed part
    ``b`` of the subgradient do not change to leading order, so the offsets ``z_k = <w, x_k>``
    of gradient descent follow its own map at that scale, exactly, for every small step:
    ``z ← z + h_i s_a X_K (b + Σ_k η_k Z_k)`` with ``η_k = 1`` for ``z_k > 0`` and
    ``σ'(0) = γ`` otherwise (the first step, from ``z = 0``, takes every slope at ``γ``), and
    ``h_i = i`` where ``a`` starts at 0 (``ramp``: ``a`` grows linearly) or 1 otherwise.  The
    map is iterated and read in chunks of :data:`GD_MAP_CHUNK` steps until two chunks after
    the first read the same while no class read on a side still moves back towards its
    hyperplane (at most :data:`GD_MAP_STEPS` steps, vector operations of size ``|K|``; the
    steps at which no offset changes sign, whose slopes are those of the step before, in
    one block, :func:`_map_run`): a
    class that stays on one side leaves to it, one that changes side (gradient
    descent chatters across it) or stays at 0 is held, and the
    held classes are settled by :func:`_leave_rounds` (minimal norm, Filippov).  The previous
    rule, a walk over the orthant fields that held every class changing side within a cycle,
    held classes that gradient descent carries across while it chatters on another one
    (d = 4, five hyperplanes, ``a = 0``: ``tests/test_issue10_regressions.py``).

    ``sides`` (signs of the computed offsets, per hyperplane of ``K``) start the map on the
    side of rounding that gradient descent's first step reads: a neuron at ``<w, x_k> =
    +7e-18`` (decimal weights whose exact dot product is 0) takes ``η_k = 1`` there, not
    ``σ'(0) = γ``, and gradient descent at every step size then leaves to ``+``; starting the
    map at 0 left to ``−``, 3.8e-3 from gradient descent at t = 1 (d = 7).  Each offset is
    ``1e-300`` of its sign: no step of the map is moved by it.

    ``drift`` (:func:`_field_parts` of the residuals' rate, ``(b', z')``,
    :func:`_gd_first_order`) moves the classes of the map at rest (velocity 0) wherever every
    other class departs for good (:func:`_departing`; before session 55 only where every
    velocity was 0, so a class departing at O(1) froze the rest where the first steps had put
    them): along ``s_a <b' + Σ_k η_k z'_k, x_k>``, a speed O(t) against
    O(1) for the hyperplanes' fields, so one step of the map jumps to the next time a class
    reaches its hyperplane from below (:func:`_drift_jump`), a silent class that chatters at
    the rate's scale at its Filippov slope (:func:`_drift_slopes`).  ``uneven`` makes the steps
    ``1 ± 5e-4`` (as gradient descent's velocities drift with the residuals) so that dyadic
    data do not bring a class back to 0 exactly, where it would read ``σ'(0)`` again.
    ``drift_beside_departures=False``: the rate moves the map only once every class rests,
    not beside classes departing (:func:`select` where the neuron moves at its first step,
    :data:`GD_MAP_DRIFT_AWAY_FROM_REST`: there the departures are at O(1), and the rate
    beside them carried a class across that gradient descent sits O(step) below, 7.1e-4
    from it in camp9's case).
    """
    rep, orient = classes
    heads = np.flatnonzero(rep == np.arange(rep.size))
    c0 = XK[heads] @ b
    G = XK[heads] @ Zrows.T  # velocity of head i per unit slope of hyperplane k
    member_head = np.searchsorted(heads, rep)
    z = np.zeros(heads.size) if sides is None else 1e-300 * (orient * sides)[heads]
    if drift is not None:  # the rate's velocity of head i: c1_i + Σ_k G1_ik η_k
        c1, G1 = XK[heads] @ drift[0], XK[heads] @ drift[1].T
        dtol = _zero_tol(*drift, XK[heads])
    seen = np.empty((GD_MAP_CHUNK, heads.size), dtype=np.int8)
    side = prev = None
    moved = np.zeros(heads.size, dtype=bool)  # a nonzero velocity in the chunk
    steps = _map_step_sequence(ramp, uneven)
    i = 0
    while i < GD_MAP_STEPS:
        eta = np.where(orient * np.sign(z)[member_head] > 0, 1.0, gamma)
        v = s_a * (c0 + G @ eta)
        v[np.abs(v) <= tol[heads]] = 0.0
        resting = v == 0.0
        departing = _departing(z, v) if drift_beside_departures else np.zeros_like(resting)
        if drift is not None and np.any(resting) and np.all(resting | departing):
            # at rest but for classes departing for good (moving away from their
            # hyperplanes): the rate moves the resting ones
            eta = _drift_slopes(s_a, eta, z, c1, G1, G, heads, rep, orient, gamma, tol, dtol)
            rate = s_a * (c1 + G1 @ eta)
            v = v.copy()
            v[resting] = _drift_jump(z[resting], np.where(np.abs(rate) <= dtol, 0.0,
                                                          rate)[resting])
            z = z + v  # (a step of 1)
            count, signs = 1, np.sign(z)[None]
        else:
            z, count, signs = _map_run(z, v, steps[i: i + GD_MAP_CHUNK - i % GD_MAP_CHUNK])
        at = i % GD_MAP_CHUNK
        seen[at: at + count] = signs
        moved |= v != 0.0
        i += count
        if i % GD_MAP_CHUNK == 0:  # the chunk's last step taken
            # a chunk's reading: its constant sign, or 0 where the class changed side in it;
            # two equal readings in a row after the first chunk end the map early, unless a
            # class read on a side is still moving back towards its hyperplane: it may yet
            # cross (exploration seed 200 177: the first step kicks x_0 to −, it returns and
            # crosses at step 152, and gradient descent leaves to + on all three; read at
            # step 150 it was held, and the run stayed at rest, 0.07 from gradient descent)
            side = np.where(np.all(seen == seen[0], axis=0), seen[0], 0).astype(np.int8)
            # a class that no longer moves sits at the offset of the first steps, O(step),
            # on a side whose velocity is zero: in the limit of small steps it stays on the
            # hyperplane (d = 5, six hyperplanes: held, not left to that side)
            side = np.where(moved, side, 0).astype(np.int8)
            returning = np.any((side != 0) & (side * v < 0))
            if prev is not None and np.array_equal(side, prev) and not returning:
                break
            prev = None if i <= GD_MAP_CHUNK else side
            moved[:] = False
    # a class read on a side whose velocity points back (given the others) returns and
    # chatters: the map only had not run long enough (a near-tangent side; d = 5, where the
    # return takes ~10⁶ steps at constant residuals and a few hundred as they change): held
    for _ in range(heads.size):
        signs = (orient * side[member_head]).astype(np.int8)
        _, D = _min_norm(b, Zrows, signs == 0, side_slope(signs, gamma), gamma, start, classes)
        back = (side != 0) & (side * s_a * (XK[heads] @ D) < -tol[heads])
        if not np.any(back):
            break
        side = np.where(back, 0, side).astype(np.int8)
    signs = (orient * side[member_head]).astype(np.int8)
    eta = side_slope(signs, gamma)
    return _leave_rounds(s_a, b, Zrows, XK, signs, eta, gamma, start, classes, tol)


def _map_run(z: Array, v: Array, steps: Array) -> tuple[Array, int, Array]:
    """The steps of gradient descent's map (:func:`_gd_at_rest`) at the velocities ``v`` of
    its current slopes, from the offsets ``z``, for as long as every offset keeps its sign
    (the slopes, and so ``v``, then stay the same), at most ``len(steps)`` of them: the
    offsets after the last, the number taken and the signs after each, shape ``(count,
    len(z))``.  The same sums as one step at a time (``z + h_i v``, each added in turn by
    ``np.add.accumulate``), in a few vector operations: near a tangent side the map runs
    its 400 steps at a velocity ~1e-5 that never changes a sign (``tests/explore_integer.py``
    seed 73851 at t > 50: 4.6 ms per call, 0.77 ms in blocks; 70 s of a run of four
    neurons to t = 200)."""
    path = np.add.accumulate(np.vstack([z[None], steps[:, None] * v]), axis=0)[1:]
    signs = np.sign(path)
    kept = np.all(signs[:-1] == np.sign(z), axis=1)  # step j + 1 reads the start's slopes
    count = int(kept.size + 1 if kept.all() else np.argmin(kept) + 1)
    return path[count - 1], count, signs[:count]


@functools.lru_cache(maxsize=4)
def _map_step_sequence(ramp: bool, uneven: bool) -> Array:
    """The :data:`GD_MAP_STEPS` steps ``h_i`` of :func:`_gd_at_rest`'s map: ``i + 1``
    (``ramp``), :func:`_map_step` otherwise; read-only."""
    if uneven and not ramp:
        return _map_steps(GD_MAP_STEPS)
    out = np.arange(GD_MAP_STEPS) + 1.0 if ramp else np.ones(GD_MAP_STEPS)
    out.flags.writeable = False
    return out


def _map_step(i: int, uneven: bool) -> float:
    """Step ``i`` of gradient descent's own map (:func:`_gd_at_rest`,
    :func:`gd_escape_from_origin`): 1, or ``uneven``, ``1 ± 5e-4`` (as gradient descent's
    velocities drift with the residuals) so that dyadic data do not bring a class back to 0
    exactly, where it would read ``σ'(0)`` again."""
    return 1.0 + ((i * _GOLDEN) % 1.0 - 0.5) * 1e-3 if uneven else 1.0


@functools.lru_cache(maxsize=4)
def _map_steps(steps: int) -> Array:
    """:func:`_map_step` (uneven) for ``i < steps``, as one read-only array."""
    out = np.array([_map_step(i, uneven=True) for i in range(steps)])
    out.flags.writeable = False
    return out


def _departing(z: Array, v: Array) -> NDArray[np.bool_]:
    """Classes of a map (:func:`_gd_at_rest`) on a side and moving away from their
    hyperplane."""
    return (z != 0.0) & (np.sign(v) == np.sign(z))


def _drift_slopes(s_a: float, eta: Array, z: Array, c1: Array, G1: Array, G: Array,
                  heads: NDArray[np.intp], rep: NDArray[np.intp], orient: NDArray[np.int8],
                  gamma: float, tol: Array, dtol: Array) -> Array:
    """The slopes of a map at rest (:func:`_gd_at_rest`) as the rate's field sees them: a class
    on its ``+`` side whose own field is silent (its slopes move no velocity of the
    hyperplanes' fields: a repeated point with opposite residuals) and whose rate returns it
    from ``+`` and pushes it back from ``−`` chatters at the rate's scale, as a sliding mode of
    the rate's field: its slope is the one that makes its rate 0 (the Filippov convex
    combination of its sides), not 1.  Held at 1, its rate's field carried another class
    across its hyperplane from below, to a repulsive ``+`` side the neuron never reaches
    (a repeated point with residuals −1 and 1, the rate of the first −1; gradient descent
    holds that class and leaves the other to ``−``: the thorough profile's
    ``test_at_rest_the_gd_policy_takes_gradient_descents_side_with_moving_residuals``).
    """
    member_head = np.searchsorted(heads, rep)
    plus = np.where(orient > 0, 1.0, gamma)  # each member's slope on its head's + side
    minus = np.where(orient > 0, gamma, 1.0)
    jump = (plus - minus)[:, None] * (member_head[:, None] == np.arange(heads.size))  # (K, C)
    silent = np.all(np.abs(G @ jump) <= tol[heads][:, None], axis=0)
    on_plus = z > 0.0
    cand = np.flatnonzero(silent & on_plus)
    if cand.size == 0:
        return eta
    A = s_a * (G1 @ jump)  # (heads, C): the rate of head i per unit of class j's slope
    rate_high = s_a * (c1 + G1 @ eta)[cand]  # each class on its + side (the others as they are)
    rate_low = rate_high - A[cand, cand]  # ... and on its − side
    sliding = cand[(rate_high < -dtol[cand]) & (rate_low > dtol[cand])]
    if sliding.size == 0:
        return eta
    at_low = np.where(np.isin(member_head, sliding), minus, eta)
    rate0 = s_a * (c1 + G1 @ at_low)[sliding]
    theta = np.linalg.lstsq(A[np.ix_(sliding, sliding)], -rate0, rcond=None)[0]
    theta = np.clip(theta, 0.0, 1.0)
    out = at_low
    for j, th in zip(sliding, theta, strict=True):
        members = member_head == j
        out[members] = minus[members] + th * (plus - minus)[members]
    return out


def _drift_jump(z: Array, drift: Array) -> Array:
    """The move of the offsets ``z`` of a map at rest (:func:`_gd_at_rest`) along the rate's
    velocities ``drift`` (speed O(t), against O(1) for the hyperplanes' fields): to the first
    time one of them reaches 0 from below, and just past it (it then reads its ``+`` side);
    where none rises, a unit of the drift."""
    rising = (drift > 0.0) & (z <= 0.0)
    if not np.any(rising):
        return drift.copy()
    times = -z[rising] / drift[rising]
    move = times.min() * drift
    first = np.flatnonzero(rising)[np.argmin(times)]
    # z + move lands on the least float above 0 that the sum can reach (|z| + its spacing
    # is exact, and z plus it is that spacing): 1e-300 − z rounded to −z, so the class
    # landed on 0 exactly, read σ'(0) = γ again and never crossed (session 56)
    zf = float(z[first])
    move[first] = (np.spacing(-zf) if zf < 0.0 else 1e-300) - zf
    return move


def _gd_first_order(s_a: float, b: Array, Zrows: Array, rate_parts: tuple[Array, Array],
                    XK: Array,
                    gamma: float, start: Array | None,
                    classes: tuple[NDArray[np.intp], NDArray[np.int8]], tol: Array,
                    sides: Array | None, ramp: bool = False
                    ) -> tuple[NDArray[np.int8], Array, Array, bool] | None:
    """Where gradient descent goes from rest, moved first by the residuals' rate.

    A neuron at rest on ``K`` (``γ = 0``, no offset read on a ``+`` side, no normal velocity
    on the ``−`` orthant: e.g. ``D = 0``, the residual of its only active point being 0)
    does not move off ``K`` at gradient descent's first step; from the second on the
    residuals have moved by ``h dr/dt`` and it moves by ``h² s_a <b', x_k>`` (``b'``: the
    fixed part of ``dr/dt``).  Those offsets start gradient descent's map (:func:`_gd_at_rest`,
    ``sides``): a hyperplane pushed to its ``+`` side kicks the others by O(h); where one
    lands on the ``+`` side of a *repulsive* hyperplane (``a r_k < 0``) the hyperplanes'
    fields carry the neuron away at speed O(1) and the map reads where.  Where the map is
    at rest again (every offset on a ``−`` side or 0) the rate moves it (``drift``: each
    step of the map jumps to the next time a hyperplane is reached from below), so an
    *attractive* hyperplane (``a r_k > 0``) reached again chatters and is held, kicking the
    others on average as a slope ``η_k = O(t)`` would, and a repulsive one reached crosses.
    Then, on the field a time ``τ`` later (``b + τ b'``, :data:`RATE_STEP`): a side the map
    read where the motion does not leave it (kicked there, no velocity of its own to first
    order) is held, as the map holds a class that stopped moving; a repulsive hyperplane
    held at its bound with no velocity is not slid on (its ``+`` side carries the neuron
    away) but left to the side of its velocity from the ``−`` side; and the rounds
    (:func:`_leave_rounds`) let the held hyperplanes with an outward velocity leave at the
    rate's speed.

    d = 4, a neuron on the hyperplanes of ``x_0`` (attractive) and ``x_5`` (repulsive) with
    ``D = 0``: the rate pushes it to ``(+, −)``; ``η_0 = 1`` kicks it to ``(−, +)``, where
    ``x_5`` repels, and gradient descent leaves both that way at every step from 1e-3 to
    2.5e-4 (``⟨w, x_5⟩ = 0.061`` at t = 1), where the map at rest stood still and held
    both (``test_gd_policy_leaves_a_repulsive_face_where_the_neuron_starts_at_rest``).
    Against gradient descent on one neuron with residuals moving linearly, steps 8e-6 and
    4e-6 extrapolated (``tests/test_filippov.py``): 1 000 drawn cases, d = 2–5, one to four
    hyperplanes, half of them with a point parallel to another.

    Classes of parallel points move together (their head's offset; a class's own field is
    that of its members parallel to the head, at slope 1), and the rate includes that of
    ``r_K`` (``z'``): the fields of a repeated point with opposite residuals cancel, and on
    its ``+`` side that rate alone moves the neuron (back: gradient descent chatters there).

    ``a = 0`` (``ramp``, session 29): ``a`` grows from 0 with the sign ``s_a`` of
    ``d²a/dt²`` (:func:`_sign_after_zero`), so the offsets move by ``a(t) <b', x_k>``, of the
    same sides, and gradient descent's map has steps growing with ``a`` (:func:`_gd_at_rest`'s
    ``ramp``).  Held before, such a start was 345 gaps from extrapolated gradient descent at
    t = 5 (d = 5, ``test_gd_policy_leaves_a_start_at_rest_with_a_zero_like_gradient_descent``);
    a class whose residuals cancel (``ρ_C = 0``) is left, as gradient descent leaves it at
    first (it returns later, pulled back by the rate).

    Returns ``None`` where this does not apply (``γ > 0``, not at rest, a rate of rounding's
    size), else the signs, slopes and ``D`` at the event and whether they
    are a continuation (:func:`_consistent`) on the field a time ``τ`` later, where the
    departures at the rate's speed move too.
    """
    rep, orient = classes
    if gamma != 0.0 or (sides is not None and np.any(sides > 0)):
        return None  # an offset read on a + side takes slope 1 at the first step: the map
    if np.any(np.abs(s_a * (XK @ b)) > tol):
        return None
    b_rate, Z_rate = rate_parts
    rate_size, size = _field_magnitude(b_rate, Z_rate), _field_magnitude(b, Zrows)
    if size == 0.0 or rate_size <= VELOCITY_RTOL * size:
        return None
    tau = RATE_STEP * size / rate_size  # small: the slopes stay in [0, 1]
    rate = tau * b_rate
    vtol = _zero_tol(rate, Zrows, XK)
    v = s_a * (XK @ rate)  # per hyperplane; a class's seed is its head's (orient: members')
    seeds = (orient * np.where(np.abs(v) > vtol, np.sign(v), 0)[rep]).astype(np.int8)
    signs, _, _ = _gd_at_rest(s_a, b, Zrows, XK, gamma, start, classes, tol, sides=seeds,
                              uneven=True, drift=rate_parts, ramp=ramp)
    # on the field a time τ later (b + τ b'): a side read where the motion does not leave it
    # (kicked there, no velocity of its own, to first order) is the hyperplane held, as the
    # map holds a class it stopped moving; then the hyperplanes held at a bound with no
    # velocity move at the rate's speed (the rounds; the departures keep their sides)
    # (the rate of r_K too: a class whose members' fields cancel, a repeated point with
    # opposite residuals, moves on its + side by that rate alone)
    b_tau, Z_tau = b + rate, Zrows + tau * Z_rate
    tol_tau = _zero_tol(b_tau, Z_tau, XK)
    for _ in range(signs.size):
        _, D_tau = _min_norm(b_tau, Z_tau, signs == 0, side_slope(signs, gamma), gamma, start,
                             classes)
        still = (signs != 0) & (signs * s_a * (XK @ D_tau) <= tol_tau)
        if not np.any(still):
            break
        signs = np.where(still, 0, signs).astype(np.int8)
    # a repulsive hyperplane held at its bound with no velocity (a r_k < 0): gradient
    # descent does not slide on it (its + side carries the neuron away) but goes to the side
    # of its velocity from the − side, at the rate's speed
    eta0, _ = _min_norm(b, Zrows, signs == 0, side_slope(signs, gamma), gamma, start, classes)
    # a class's own field on its head's + side: its members parallel to the head at slope 1
    own = np.bincount(rep, weights=(orient > 0) * np.einsum("kd,kd->k", Z_tau, XK[rep]),
                      minlength=rep.size)
    own = s_a * own[rep]  # per member: its class's
    loose = (signs == 0) & (own > 0.0) & (eta0 <= gamma)
    if np.any(loose):
        trial = np.where(loose, -orient, signs).astype(np.int8)
        _, D_tau = _min_norm(b_tau, Z_tau, trial == 0, side_slope(trial, gamma), gamma, start,
                             classes)
        v = s_a * (XK @ D_tau)[rep]  # the head's velocity, for every member of its class
        signs = np.where(loose & (np.abs(v) > tol_tau[rep]), orient * np.sign(v),
                         signs).astype(np.int8)
    signs, eta_tau, D_tau = _leave_rounds(s_a, b_tau, Z_tau, XK, signs,
                                          side_slope(signs, gamma), gamma, start, classes,
                                          tol_tau)
    tied = _repulsive_ties(s_a, b_tau, Z_tau, XK, signs, eta_tau, gamma, classes, tol_tau,
                           seeds)
    if np.any(tied):
        signs = np.where(tied, seeds, signs).astype(np.int8)
        signs, _, D_tau = _leave_rounds(s_a, b_tau, Z_tau, XK, signs,
                                        side_slope(signs, gamma), gamma, start, classes,
                                        tol_tau)
    ok = _consistent(signs, s_a * (XK @ D_tau), tol_tau, np.zeros(signs.size, dtype=bool))
    eta, D = _min_norm(b, Zrows, signs == 0, side_slope(signs, gamma), gamma, start, classes)
    return signs, eta, D, ok


def _repulsive_ties(s_a: float, b: Array, Zrows: Array, XK: Array, signs: NDArray[np.int8],
                    eta: Array, gamma: float, classes: tuple[NDArray[np.intp], NDArray[np.int8]],
                    tol: Array, seeds: NDArray[np.int8]) -> NDArray[np.bool_]:
    """Per hyperplane of ``K``: a class held on the field a time ``τ`` later
    (:func:`_gd_first_order`) whose sliding mode there is repulsive (its velocity points out
    of both sides) and which the rate's first push put on a side (``seeds``).  Its
    hyperplanes' fields moved it by nothing to first order (an exact tie, so gradient
    descent's map never read it on a side), and the rate's field carries it on, away from the
    hyperplane, on the side where it is: gradient descent leaves it there, where the minimal
    norm holds it.  (``a = 0``, three integer points in R^5: ``<x_2, Σ_k r_k x_k> = 0`` with
    the other two on their ``+`` sides; gradient descent leaves x_2 to ``+``, read alike at
    t = 0.04 and 0.1, the thorough profile of
    ``test_at_rest_with_a_zero_the_gd_policy_takes_gradient_descents_side``.)"""
    rep, orient = classes
    out = np.zeros(signs.size, dtype=bool)
    for i in np.flatnonzero((rep == np.arange(rep.size)) & (signs == 0) & (seeds != 0)):
        members = rep == i
        v = []
        for side in (-1, 1):
            e = eta.copy()
            e[members] = side_slope(orient[members] * side, gamma)
            v.append(s_a * float(XK[i] @ (b + e @ Zrows)))
        if v[0] < -tol[i] and v[1] > tol[i]:
            out |= members
    return out


def _uncrossed(s_a: float, b: Array, Zrows: Array, XK: Array, signs: NDArray[np.int8],
               eta: Array, gamma: float, start: Array | None,
               classes: tuple[NDArray[np.intp], NDArray[np.int8]], tol: Array,
               forced: NDArray[np.bool_], approach: NDArray) -> NDArray[np.bool_]:
    """The hyperplanes of ``K`` crossed at an arrival (left to the side opposite
    ``approach``, the side the neuron came from) whose classes staying on the side they
    came from, the other classes as chosen, is a consistent continuation as well: a branch
    point.  Every proper subset of the crossed classes is tried (session 57: with three
    crossed, not crossing two of them can be a continuation where not crossing any one
    is not); not crossing all of them is the field the neuron arrived on, whose normal
    velocities brought it there.  Beyond :data:`UNCROSSED_MAX_CLASSES` crossed classes,
    only single classes are tried (``c`` trials, not ``2^c − 2``)."""
    rep, orient = classes
    crossed = (approach != 0) & (signs == -approach)
    touched = np.unique(rep[crossed])  # classes with a crossed member
    heads = [i for i in touched if np.all(crossed[rep == i])]  # crossed whole: can stay
    out = np.zeros(signs.size, dtype=bool)
    if touched.size < 2:
        return out
    largest = min(len(heads), touched.size - 1) if touched.size <= UNCROSSED_MAX_CLASSES else 1
    for size in range(1, largest + 1):
        for subset in itertools.combinations(heads, size):
            members = np.isin(rep, subset)
            if np.all(out[members]):
                continue  # already a branch: a larger subset adds nothing to flag
            trial = signs.copy()
            trial[members] = approach[members]
            e = eta.copy()
            e[members] = side_slope(trial[members], gamma)
            e, D = _min_norm(b, Zrows, trial == 0, e, gamma, start, classes)
            if _consistent(trial, s_a * (XK @ D), tol, forced):
                out[members] = True
    return out


def _alternatives(members: NDArray[np.bool_], rep: NDArray[np.intp], orient: NDArray[np.int8],
                  s_a: float, b: Array,
                  Zrows: Array, x_rep: Array, signs: NDArray[np.int8], eta: Array, gamma: float,
                  tol: float) -> list[int]:
    """Sides (of the class's first hyperplane) to which leaving the class ``members`` would
    also be a consistent continuation."""
    out = []
    for side in (-1, 1):
        trial = signs.copy()
        trial[members] = orient[members] * side
        e = eta.copy()
        e[members] = side_slope(trial[members], gamma)
        e, D = _min_norm(b, Zrows, trial == 0, e, gamma, None, (rep, orient))
        if side * s_a * float(x_rep @ D) > tol:
            out.append(side)
    return out
