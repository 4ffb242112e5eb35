"""Events of the hybrid flow: detect, locate, classify.

Small pure functions, as in scipy's ``integrate/_ivp``:

* :func:`detect_crossings` — after a step, the neuron/data pairs whose sign of
  ``<w_j, x_k>`` disagrees with the neuron's activation pattern (one array-valued check over all
  ``(j, k)``); :func:`detect_zero_crossings` — the neurons of 1-dimensional faces that went
  through ``w = 0``; :func:`detect_sign_flips` — sliding neurons whose ``a_j`` changed sign
  (a possible branch point, :mod:`pwflow.filippov`);
* :func:`first_exit_brackets` and :func:`locate_roots` — the event times, bracketed on a grid
  where needed and located by safeguarded Newton iterations on the polynomial dense output of
  the step (:mod:`pwflow.dense`), vectorised over all candidates;
* :class:`Located` — the located events of a step, one per neuron (its earliest).

What happens at an event is decided in :mod:`pwflow.filippov`.  The event kinds are an
enumeration whose ``str`` is the message written in logs; :class:`EventLog` is the run's log.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .bisection import time_ulp
from .dense import nested, nested_with_derivative, scan_grid
from .rows import row_norms

__all__ = [
    "EventKind",
    "EventLog",
    "Located",
    "Pending",
    "detect_crossings",
    "detect_zero_crossings",
    "detect_sign_flips",
    "first_exit_brackets",
    "locate_roots",
    "within_rounding",
    "offset_rounding",
    "coincident_offsets",
    "ROUNDING_ULPS",
    "START_ULPS",
]

Array = NDArray[np.float64]

#: ``|<w, x_k>|`` up to ``ROUNDING_ULPS · eps · ‖w‖ ‖x_k‖`` is the rounding of the product
#: itself: zero, its sign meaningless (:func:`within_rounding`, :func:`detect_crossings`)
ROUNDING_ULPS = 16
#: a neuron starts on the hyperplane of ``x_k`` where ``|<w, x_k>|`` is at most this many ulps
#: of ``‖w‖ ‖x_k‖``: a start put on several hyperplanes by a floating-point projection lands
#: up to about ``cond · eps`` off them (268 ulps seen, exploration seed 200 338), a distance
#: no practical gradient-descent step resolves (it reads the sign only, as the ``'gd'``
#: policy's ``sides`` do); 512 ulps is 1.1e-13, well below the starts drawn 1e-12 off a
#: hyperplane on purpose (exploration family 1)
START_ULPS = 512


class EventKind(enum.IntEnum):
    """What happened at an event (``str(kind)`` is the message)."""

    CROSSING = 0
    ENTER_SLIDING = 1
    LEAVE_SLIDING = 2
    GRAZING = 3
    REACH_ZERO = 4
    INITIAL_FACE = 5
    BRANCH = 6

    def __str__(self) -> str:
        return _MESSAGES[self]


_MESSAGES = {
    EventKind.CROSSING: "crossing: the neuron crosses the hyperplane <w, x_k> = 0",
    EventKind.ENTER_SLIDING: "entering sliding: the neuron stays on <w, x_k> = 0 (Filippov)",
    EventKind.LEAVE_SLIDING: "leaving sliding: a free slope eta_k reached gamma or 1",
    EventKind.GRAZING: "grazing: the neuron touches <w, x_k> = 0 and turns back",
    EventKind.REACH_ZERO: ("reaching zero: w = 0 (where rank X < d: w in ker X, every "
                           "<w, x_k> = 0, its null-space part kept); the neuron stays there "
                           "where 0 is in its subgradient set (Condition 1, point 2), else "
                           "departs at once; passing through is logged as a branch point "
                           "where consistent"),
    EventKind.INITIAL_FACE: "initial face: the neuron starts on a hyperplane",
    EventKind.BRANCH: ("branch point: sliding on <w, x_k> = 0 turned repulsive; the flow is not "
                       "unique from here and the branch policy chose the continuation"),
}


def detect_crossings(
    W: Array, X: Array, U_of_neuron: NDArray[np.int8], slack: Array | None = None,
    S: Array | None = None, xnorm: Array | None = None,
):
    """Pairs ``(j, k)`` whose sign of ``<w_j, x_k>`` disagrees with ``u_k`` of the neuron's face.

    Parameters
    ----------
    W : array, shape (m, d)
        Neurons at the end of the step.
    X : array, shape (n, d)
        Data.
    U_of_neuron : array, shape (m, n)
        The pattern of each neuron at the start of the step (0 entries are skipped: those
        constraints are held by the face field).
    slack : array, shape (m,), optional
        Per-neuron absolute uncertainty of ``w`` (e.g. how far the Lorentz projection moved
        it); a wrong sign smaller than ``slack ‖x_k‖`` is not trusted as a crossing.
    S, xnorm : arrays, optional
        ``W Xᵀ`` and the norms ``‖x_k‖`` where the caller has them already.

    Returns
    -------
    j, k : int arrays
        The candidate pairs (a zero value at the end of the step counts as a crossing).
    """
    S = W @ X.T if S is None else S
    # values within rounding of zero are not crossings: a neuron that just left a hyperplane
    # (or was cut exactly on it) sits there to rounding; a real crossing shows at a later step
    unc = offset_rounding(row_norms(W))
    if slack is not None:
        unc = unc + slack
    tiny = unc[:, None] * (np.linalg.norm(X, axis=1) if xnorm is None else xnorm)
    # u_k ∈ {−1, 1}: u_k S < −tiny says "opposite sign and |S| > tiny" in one pass (u_k = 0
    # gives 0, never below −tiny <= 0; nan compares false)
    return np.nonzero(U_of_neuron * S < -tiny)


def detect_zero_crossings(W: Array, rays: Array, on_ray: NDArray[np.bool_],
                          line: NDArray[np.bool_] | None = None, tiny: Array | None = None):
    """Neurons of 1-dimensional faces whose coordinate ``<w, e_u>`` became ``<= 0``.

    ``line`` (per row of ``rays``): the face is a whole line, ``u = 0`` with ``rank X =
    d − 1`` (no data point orients ``e_u``).  No field moves a neuron along it (``D ∈ span X``),
    so ``<w, e_u>`` is constant there: a neuron on it is at ``w = 0`` only where that
    coordinate is zero to ``tiny`` (it arrived at the origin), not on the half-line that
    ``e_u``'s sign happens to leave out (a fixed neuron ``w = −e_u/8``, ``a = 0`` was set to
    0 there, breaking Lemma 1).  A neuron already at ``w = 0`` (placed there by an earlier
    event) reaches nothing: on a line it would be found again at every step."""
    idx = np.flatnonzero(on_ray)
    if idx.size == 0:
        return idx
    rho = np.einsum("ij,ij->i", W[idx], rays)
    hit = (rho <= 0) & np.any(W[idx] != 0, axis=1)
    if line is not None and np.any(line):
        hit &= ~line | (np.abs(rho) <= tiny)
    return idx[hit]


def detect_sign_flips(a_start: Array, a_end: Array, sliding: NDArray[np.bool_]):
    """Sliding neurons whose output weight ``a_j`` changed sign during the step.

    On a sliding face the normal velocities ``a_j <D±, x_k>`` all change sign with ``a_j``:
    an attractive sliding mode turns repulsive there (a branch point of Eq. (2)).
    """
    flip = sliding & (np.sign(a_end) != np.sign(a_start)) & (a_start != 0)
    return np.flatnonzero(flip)


def locate_roots(
    coef: Array, lo: Array | None = None, hi: Array | None = None, max_iter: int = 100
) -> tuple[Array, Array]:
    """Roots in ``[lo, hi] ⊂ [0, 1]`` of scalar dense-output polynomials, one per row of ``coef``.

    Each row holds ``(s(0), F_1, ..., F_7)`` of a function ``s(x)`` in scipy's nested DOP853
    form with ``s(lo) * s(hi) <= 0`` (default bracket ``[0, 1]``).  Newton steps are kept inside
    a shrinking bracket (bisection when Newton leaves it); iterations stop when the bracket is
    below 4 ulp.  Returns the roots ``x*`` and the residuals ``s(x*)``.
    """
    coef = np.asarray(coef, float)
    c = coef.shape[0]
    lo = np.zeros(c) if lo is None else np.array(lo, float)
    hi = np.ones(c) if hi is None else np.array(hi, float)
    slo = nested(coef, lo)
    # initial guess: secant through the end values
    shi = nested(coef, hi)
    eps = np.finfo(float).eps
    with np.errstate(divide="ignore", invalid="ignore"):
        sec = lo + (hi - lo) * slo / (slo - shi)
    x = np.where(np.isfinite(sec) & (sec >= lo) & (sec <= hi), sec, 0.5 * (lo + hi))
    # the rows still iterating, compacted (each row's arithmetic is independent of the others:
    # the same numbers as iterating on all rows with a mask)
    ia = np.arange(c)
    ca, xa, la, ha, sla = coef, x.copy(), lo, hi, slo
    for _ in range(max_iter):
        if ia.size == 0:
            break
        s, ds = nested_with_derivative(ca, xa)
        same = np.sign(s) == np.sign(sla)
        la = np.where(same, xa, la)
        sla = np.where(same, s, sla)
        ha = np.where(same, ha, xa)
        with np.errstate(divide="ignore", invalid="ignore"):
            xn = xa - s / ds
        mid = 0.5 * (la + ha)
        ok = np.isfinite(xn) & (xn > la) & (xn < ha)
        xn = np.where(ok, xn, mid)
        width = ha - la
        zero = s == 0
        done = zero | (width <= 4 * eps * np.maximum(np.abs(xa), 1e-300))
        done |= np.abs(xn - xa) <= 2 * eps
        xa = np.where(zero, xa, xn)
        x[ia] = xa
        if np.any(done):
            keep = ~done
            ia, ca, xa = ia[keep], ca[keep], xa[keep]
            la, ha, sla = la[keep], ha[keep], sla[keep]
    res = nested(coef, x)
    return x, res


def within_rounding(S: Array, W: Array, X: Array, ulps: float = ROUNDING_ULPS
                    ) -> NDArray[np.bool_]:
    """Entries of ``S = W Xᵀ`` that are zero to rounding: ``|<w_j, x_k>| <= ulps · eps ·
    ‖w_j‖ ‖x_k‖``; with the default :data:`ROUNDING_ULPS`, the size of the rounding error of
    the floating-point product itself (its sign says nothing about the side of the
    hyperplane)."""
    tiny = offset_rounding(np.outer(_scaled_norms(W), _scaled_norms(X)), ulps)
    return np.abs(S) <= tiny


def offset_rounding(size: ArrayLike, ulps: float = ROUNDING_ULPS) -> Array:
    """The rounding of an offset ``<w, x_k>`` whose terms have size ``size`` (``‖w‖ ‖x_k‖``,
    or ``‖w‖`` for a caller that multiplies by ``‖x_k‖`` after): ``ulps · eps · size``, with
    the default :data:`ROUNDING_ULPS` that of the floating-point product itself.  The one
    formula behind :func:`within_rounding`, :func:`detect_crossings` and the detection's
    tolerances."""
    return ulps * np.finfo(float).eps * np.asarray(size, float)


def coincident_offsets(coef: Array, x_first: Array, tol: Array, code: NDArray[np.intp],
                       code_first: NDArray[np.intp]) -> NDArray[np.bool_]:
    """Hyperplane candidates met at their neuron's first hyperplane event: ``|s_k(x_first)|
    <= tol``, with ``s_k`` the candidate's polynomial ``<x_k, w(x)>`` in nested form and
    ``tol`` the rounding of that offset (both ``code`` and ``code_first`` data indices, not
    ``w = 0`` or a sign flip of ``a``)."""
    on = (code >= 0) & (code_first >= 0)
    out = np.zeros(code.shape, dtype=bool)
    if np.any(on):
        out[on] = np.abs(nested(coef[on], x_first[on])) <= tol[on]
    return out


def _scaled_norms(A: Array) -> Array:
    """Row norms without overflow for huge entries (``‖a‖ = max|a_i| ‖a / max|a_i|‖``)."""
    big = np.max(np.abs(A), axis=1)
    safe = np.where(big > 0, big, 1.0)
    return big * np.linalg.norm(A / safe[:, None], axis=1)


def first_exit_brackets(coef: Array, side: NDArray) -> tuple[Array, Array, Array]:
    """Brackets of the first exit from the pattern's side ``side`` (±1) on ``[0, 1]``.

    A neuron that starts the step on its hyperplane (placed there by a previous event) may
    first move into its side and come back within the step: the event is then that
    return, not ``x = 0``.  Such rows are scanned on a grid; a row that never shows its
    side leaves it at once — ``observed`` is then the side it goes to (else 0).  A row
    starting on its hyperplane whose excursion into its side is shorter than the grid's
    first interval is looked for at ``x = 2^{-i}`` of it (:func:`_side_near_start`): read
    as leaving at once, a crossing's neuron that came back 0.96 % of the step later (to
    slide there) had a second, empty contact logged at the crossing's time, a GRAZING row
    (a metamorphic campaign, session 53: the rotated problem logged one row fewer).
    """
    c = coef.shape[0]
    lo, hi = np.zeros(c), np.ones(c)
    observed = np.zeros(c, dtype=np.int8)
    s0 = coef[:, 0]
    scale = np.max(np.abs(coef), axis=1)
    start_on = np.abs(s0) <= 64 * np.finfo(float).eps * scale
    on_wrong = np.sign(s0) == -side
    rows = np.flatnonzero(start_on | on_wrong)
    if rows.size == 0:
        return lo, hi, observed
    grid, basis = scan_grid(coef.shape[1])
    grid, vals = grid[1:], coef[rows] @ basis[:, 1:]
    ok = np.sign(vals) == side[rows, None]
    for i, row in enumerate(rows):
        first = np.flatnonzero(ok[i])
        near = None
        if first.size == 0 and start_on[row]:
            near = _side_near_start(coef[row], int(side[row]), grid[0],
                                    64 * np.finfo(float).eps * scale[row])
        if near is not None:
            lo[row], hi[row] = near
            continue
        if first.size == 0:
            observed[row] = -side[row]
            hi[row] = 0.0
            continue
        after = np.flatnonzero(~ok[i, first[0]:])
        if after.size == 0:  # back on its side at x = 1 (rounding): no event in this step
            lo[row] = hi[row] = np.nan
            continue
        i1 = first[0] + after[0]
        lo[row], hi[row] = grid[i1 - 1], grid[i1]
    return lo, hi, observed


def _side_near_start(c: Array, side: int, x_first: float, tiny: float
                     ) -> tuple[float, float] | None:
    """For a row of :func:`first_exit_brackets` on its hyperplane at ``x = 0`` that shows no
    side ``side`` on the scan grid: the bracket ``[x, 2x]`` of its return, ``x`` the largest
    of ``x_first / 2, x_first / 4, …, x_first / 2^40`` where it is on its side by more than
    ``tiny`` (its rounding at the start), ``2x`` not on it; ``None`` where it is at none
    (it leaves at once)."""
    xs = x_first * 0.5 ** np.arange(1, 41)
    vals = nested(np.broadcast_to(c, (xs.size, c.size)), xs)
    on = (np.sign(vals) == side) & (np.abs(vals) > tiny)
    hit = np.flatnonzero(on)
    if hit.size == 0:
        return None
    i = int(hit[0])
    return float(xs[i]), float(xs[i - 1] if i else x_first)


#: the columns of an event log and their dtypes (as saved in a trajectory's ``events``)
EVENT_COLUMNS = (("t", np.float64), ("neuron", np.int64), ("k", np.int64), ("kind", np.int8),
                 ("residual", np.float64), ("from_pattern", np.int64), ("to_pattern", np.int64))
_EVENT_DTYPE = np.dtype(list(EVENT_COLUMNS))


class EventLog:
    """Growing event log, stored in numpy chunks (49 bytes per event).

    Rows are appended by :meth:`add` (one) or :meth:`extend` (arrays, in order); :meth:`arrays`
    returns the columns as contiguous arrays.  A log of Python lists took about three times
    the memory (a float or int object per entry): ~2·10⁶ events are expected on Stewart's
    data at ``m = 2·10⁵``.

    A ``CROSSING`` of a neuron back over a hyperplane at the very time of its logged
    ``CROSSING`` over it (the second row leaving the face the first entered) is one contact
    that spent no time on the other side: the two rows become one ``GRAZING`` row (the first's
    time and residual, from the first's face to the second's).  Long runs met such pairs at
    the resolution, several aligned neurons at once, each logged as two crossings by two
    consecutive batches (``docs/integrator.md``, session 24).

    A branch point is one ``(t, neuron, k)``: a ``BRANCH`` row of a pair already logged as a
    branch point at the latest time is not logged again.  A neuron that leaves a face and
    comes back to it at the same instant is decided twice, and each decision named the same
    branch point (a sparse d = 5 campaign, session 47: a slope touching its bound at a
    residual's root).  :meth:`add` and :meth:`extend` say which rows they kept.
    """

    _MIN_CHUNK = 1024
    _MAX_CHUNK = 1 << 20

    def __init__(self) -> None:
        self._chunks: list[np.ndarray] = []  # full chunks
        self._buf = np.empty(self._MIN_CHUNK, dtype=_EVENT_DTYPE)
        self._fill = 0
        self._done = 0  # rows in the full chunks
        # the CROSSING rows at the latest time logged, by (neuron, k): their row numbers
        self._cross_t = -np.inf
        self._cross: dict[tuple[int, int], int] = {}
        # the (neuron, k) of the BRANCH rows at the latest time logged
        self._branch: set[tuple[int, int]] = set()

    def __len__(self) -> int:
        return self._done + self._fill

    def _flush(self, need: int) -> None:
        """Close the current chunk and open one with room for at least ``need`` rows."""
        size = max(need, min(max(self._MIN_CHUNK, len(self) // 2), self._MAX_CHUNK))
        buf = np.empty(size, dtype=_EVENT_DTYPE)
        chunks = self._chunks + [self._buf[: self._fill]] if self._fill else self._chunks
        # one assignment, no call between its stores (so no signal handler): a Ctrl-C or
        # SIGTERM between the chunk's append and the counts' update logged its rows twice
        self._chunks, self._done, self._buf, self._fill = chunks, len(self), buf, 0

    def add(self, t: float, neuron: int, k: int, kind: int, residual: float, frm: int,
            to: int) -> bool:
        """Append one row (or merge it: a crossing back; or drop it: a branch point logged
        already; see the class).  Returns whether it was appended as a row of its own."""
        if kind == EventKind.CROSSING and t == self._cross_t and self._merge(neuron, k, frm, to):
            return False
        if kind == EventKind.BRANCH and self._logged_branch(t, neuron, k):
            return False
        if self._fill == self._buf.size:
            self._flush(1)
        self._buf[self._fill] = (t, neuron, k, int(kind), residual, frm, to)
        self._fill += 1
        if self._at_latest(t):
            if kind == EventKind.CROSSING:
                self._cross[(int(neuron), int(k))] = len(self) - 1
            elif kind == EventKind.BRANCH:
                self._branch.add((int(neuron), int(k)))
        return True

    def extend(self, t, neuron, k, kind, residual, frm, to) -> NDArray[np.bool_]:
        """:meth:`add` for arrays of rows, in order; returns which rows were appended."""
        t = np.asarray(t, float).reshape(-1)
        E = t.size
        keep = np.ones(E, dtype=bool)
        if E == 0:
            return keep
        cols = [t] + [np.asarray(c).reshape(E) for c in (neuron, k, kind, residual, frm, to)]
        if self._cross:  # rows crossing back at the time of a logged crossing: merged
            back = np.flatnonzero((cols[3] == EventKind.CROSSING) & (t == self._cross_t))
            merged = [i for i in back.tolist()
                      if self._merge(int(cols[1][i]), int(cols[2][i]), int(cols[5][i]),
                                     int(cols[6][i]))]
            keep[merged] = False
        for i in np.flatnonzero(cols[3] == EventKind.BRANCH).tolist():
            # a branch point logged already at this time (or twice in these rows): once
            keep[i] = not self._logged_branch(float(t[i]), int(cols[1][i]), int(cols[2][i]))
            if keep[i] and self._at_latest(float(t[i])):
                self._branch.add((int(cols[1][i]), int(cols[2][i])))
        if not np.all(keep):
            cols = [c[keep] for c in cols]
            t, E = cols[0], int(np.count_nonzero(keep))
            if E == 0:
                return keep
        if self._fill + E > self._buf.size:
            self._flush(E)
        rows = self._buf[self._fill: self._fill + E]
        for (name, _), col in zip(EVENT_COLUMNS, cols):
            rows[name] = col
        self._fill += E
        self._index(t, cols[1], cols[2], cols[3], len(self) - E)
        return keep

    def _index(self, t: Array, neuron, k, kind, first: int) -> None:
        """Record the CROSSING and BRANCH rows among rows ``first, first + 1, …`` (times
        ``t``) that lie at the latest time logged."""
        tmax = float(np.max(t))
        if not self._at_latest(tmax):
            return
        for i in np.flatnonzero((t == tmax) & (kind == EventKind.CROSSING)).tolist():
            self._cross[(int(neuron[i]), int(k[i]))] = first + i
        for i in np.flatnonzero((t == tmax) & (kind == EventKind.BRANCH)).tolist():
            self._branch.add((int(neuron[i]), int(k[i])))

    def _logged_branch(self, t: float, neuron: int, k: int) -> bool:
        """Whether ``(neuron, k)`` is logged as a branch point at ``t``, the latest time."""
        return t == self._cross_t and (int(neuron), int(k)) in self._branch

    def _at_latest(self, t: float) -> bool:
        """Whether ``t`` is the latest time logged (a later one starts the indexes afresh)."""
        if t > self._cross_t:
            self._cross_t, self._cross, self._branch = t, {}, set()
        return t == self._cross_t

    def _merge(self, neuron: int, k: int, frm: int, to: int) -> bool:
        """Turn the CROSSING row of ``(neuron, k)`` at the latest time into a GRAZING row if
        a crossing back from the face it entered (``frm``) is logged at that time."""
        pos = self._cross.get((neuron, k))
        if pos is None:
            return False
        rows, i = self._locate(pos)
        if int(rows["to_pattern"][i]) != frm:
            return False
        rows["kind"][i] = EventKind.GRAZING
        rows["to_pattern"][i] = to
        del self._cross[(neuron, k)]
        return True

    def _locate(self, pos: int) -> tuple[np.ndarray, int]:
        """The chunk holding row ``pos`` and the row's index in it."""
        if pos >= self._done:
            return self._buf, pos - self._done
        start = 0
        for chunk in self._chunks:
            if pos < start + chunk.size:
                return chunk, pos - start
            start += chunk.size
        raise IndexError(pos)

    def arrays(self) -> dict[str, np.ndarray]:
        """The columns (``t``, ``neuron``, ``k``, ``kind``, ``residual``, ``from_pattern``,
        ``to_pattern``) as contiguous arrays of the dtypes of :data:`EVENT_COLUMNS`."""
        parts = self._chunks + [self._buf[: self._fill]]
        rows = np.concatenate(parts) if len(parts) > 1 else parts[0]
        return {name: np.ascontiguousarray(rows[name]) for name, _ in EVENT_COLUMNS}

    @classmethod
    def from_arrays(cls, columns: dict, n: int) -> "EventLog":
        """A log holding the first ``n`` rows of saved columns (``arrays()``'s keys)."""
        log = cls()
        if n:  # verbatim (no row merged or dropped), then indexed as if just logged
            cols = [np.asarray(columns[name])[:n] for name, _ in EVENT_COLUMNS]
            log._flush(n)
            for (name, _), col in zip(EVENT_COLUMNS, cols, strict=True):
                log._buf[name][:n] = col
            log._fill = n
            log._index(cols[0], cols[1], cols[2], cols[3], 0)
        return log


@dataclass(frozen=True)
class Pending:
    """The neuron events located inside the current step up to the cut, as arrays (one row
    per event, sorted by time).

    ``code`` is the first data index reached (−1: ``w = 0`` on a ray, −2: a sliding neuron's
    ``a_j`` reaching 0) and ``more`` maps a row to the further codes reached at the same time
    (rare); :meth:`ks` gives the hyperplanes a row reaches, :attr:`zero` / :attr:`flip` mark
    ``w = 0`` and ``a_j = 0`` (then ``a_after`` is the sign ``a_j`` takes).  ``rate`` is ``|a
    ds/dt| ‖x_k‖`` summed over the hyperplanes, plus the neuron's own field change (the kink of
    the outputs, for the batch bound: ``HybridFlow._kink_rate``),
    ``poly_residual`` the dense output's ``|<w, x_k>|`` at the located time and ``observed``
    the side the neuron was seen to go to at once (a tangency), else 0.
    """

    t: Array
    x: Array
    neuron: NDArray[np.intp]
    code: NDArray[np.intp]
    rate: Array
    a_after: Array
    poly_residual: Array
    observed: NDArray[np.int8]
    more: dict

    def __len__(self) -> int:
        return self.t.size

    def _codes(self, i: int) -> list[int]:
        return [int(self.code[i])] + self.more.get(i, [])

    def ks(self, i: int) -> tuple:
        """The hyperplanes (data indices, sorted) that row ``i`` reaches (empty for a pure
        ``w = 0`` or branch candidate)."""
        return tuple(sorted({c for c in self._codes(i) if c >= 0}))

    @property
    def n_ks(self) -> NDArray[np.intp]:
        """How many hyperplanes each row reaches."""
        n = (self.code >= 0).astype(np.intp)
        for i in self.more:
            n[i] = len(self.ks(i))
        return n

    def _has(self, c: int) -> NDArray[np.bool_]:
        out = self.code == c
        for i in self.more:
            out[i] = c in self._codes(i)
        return out

    @property
    def zero(self) -> NDArray[np.bool_]:
        return self._has(-1)

    @property
    def flip(self) -> NDArray[np.bool_]:
        return self._has(-2)

    def upto(self, t_cut: float) -> "Pending":
        """The rows at or before ``t_cut`` (a prefix: the rows are sorted by time)."""
        k = int(np.searchsorted(self.t, t_cut, side="right"))
        if k == self.t.size:
            return self
        return Pending(self.t[:k], self.x[:k], self.neuron[:k], self.code[:k], self.rate[:k],
                       self.a_after[:k], self.poly_residual[:k], self.observed[:k],
                       {i: c for i, c in self.more.items() if i < k})


@dataclass(frozen=True)
class Located:
    """Neuron events located in one step: one per neuron (its earliest), sorted by time.

    Arrays are per event; ``code`` is the data index reached, or −1 (``w = 0``) / −2 (``a_j =
    0`` while sliding); ``more`` maps an event's row to the further codes reached at the same
    time (rare).  :meth:`upto` makes the :class:`Pending` records of the events up to the cut
    only (most located events of a step are beyond it).
    """

    t: Array
    x: Array
    neuron: NDArray[np.intp]
    code: NDArray[np.intp]
    rate: Array
    residual: Array
    observed: NDArray[np.int8]
    a_sign: Array
    more: dict

    @classmethod
    def group(cls, neurons, tt, x, codes, rate, res, observed, a_sign, unit: float = 1.0,
              coef: Array | None = None, offset_tol: Array | None = None
              ) -> "tuple[Located, dict]":
        """Group candidates per neuron: the earliest is the event, candidates within 64 ulp
        of it (:func:`pwflow.bisection.time_ulp` in ``unit``) are merged into it, the next
        later one goes to the returned ``later`` map.

        With ``coef`` (each candidate's polynomial ``s_k(x) = <x_k, w(x)>``, as located) and
        ``offset_tol`` (the rounding of that offset, :data:`ROUNDING_ULPS` ``· eps ‖z‖
        ‖x_k‖``), a hyperplane candidate whose offset at its neuron's first hyperplane event
        is within that rounding is merged too (:func:`coincident_offsets`): the event state
        cannot tell it from the hyperplane, so whether two hyperplanes are met at once does
        not depend on where the roots' rounding put them (at a normal velocity of 1e-5 two
        roots of offsets equal bit for bit lay 4.6e-14 or 2.2e-13 apart by the step
        pattern, against 64 ulp = 5.7e-14 at t = 6: one run crossed both hyperplanes at
        once, the other one only, session 56)."""
        order = np.lexsort((tt, neurons))
        ns, ts, ko = neurons[order], tt[order], codes[order]
        head = np.r_[True, ns[1:] != ns[:-1]]
        rank = np.cumsum(head) - 1
        first = np.flatnonzero(head)[rank]
        t_first = ts[first]
        coinc = ~head & (ts - t_first <= 64 * time_ulp(t_first, unit))
        if coef is not None:
            coinc |= ~head & coincident_offsets(coef[order], x[order][first], offset_tol[order],
                                                ko, ko[first])
        h_rate, h_res = rate[order][head], res[order][head]
        merge = np.flatnonzero(coinc)
        np.add.at(h_rate, rank[merge], rate[order][merge])
        np.maximum.at(h_res, rank[merge], np.where(ko[merge] >= 0, res[order][merge], 0.0))
        rest = np.flatnonzero(~head & ~coinc)
        uniq, idx = np.unique(ns[rest], return_index=True)
        later = dict(zip(uniq.tolist(), ts[rest][idx].tolist()))
        hsel = order[head]
        by_t = np.argsort(tt[hsel], kind="stable")
        row_of = np.empty_like(by_t)
        row_of[by_t] = np.arange(by_t.size)
        more: dict = {}
        for i in merge:
            more.setdefault(int(row_of[rank[i]]), []).append(int(ko[i]))
        located = cls(
            t=tt[hsel][by_t], x=x[hsel][by_t], neuron=neurons[hsel][by_t],
            code=codes[hsel][by_t], rate=h_rate[by_t], residual=h_res[by_t],
            observed=observed[hsel][by_t], a_sign=a_sign[hsel][by_t], more=more,
        )
        return located, later

    def upto(self, t_cut: float) -> Pending:
        """The events at or before ``t_cut`` (rows of the arrays, a prefix since they are
        sorted by time: no per-event objects)."""
        return Pending(self.t, self.x, self.neuron, self.code, self.rate, self.a_sign,
                       self.residual, self.observed, self.more).upto(t_cut)
