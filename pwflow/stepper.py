"""The stepper: one accepted step of the hybrid flow, with its events (:class:`HybridFlow`).

Inside a mode (every neuron's face fixed) the flow is smooth and linear per face
(:mod:`pwflow.vector_field`); it is integrated with DOP853 (:mod:`pwflow.rk`, order 8, dense
output of order 7, :mod:`pwflow.dense`) on the per-face propagators, whose size does not
grow with the width ``m``.  One step:

1. advance the propagators (DOP853, or Radau on quiet stretches);
2. detect the neurons that changed side, the excursions inside the step, the sliding neurons
   whose ``a_j`` changed sign and the sliding faces whose slopes reached a bound
   (:mod:`pwflow.events`);
3. locate those events on the dense output to rounding;
4. choose how many of them to apply before restarting (:mod:`pwflow.batch`);
5. decide at each event where the neuron goes (:mod:`pwflow.filippov`) and apply it;
6. keep sliding neurons on their hyperplanes and check the run's invariants (a violation
   raises :class:`pwflow.options.InvariantError`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from numpy.typing import NDArray

from . import blas
from .batch import choose_cut, cut_coefficients
from .cones import span_split
from .dense import (
    nested,
    nested_derivative,
    pair_polynomials,
    propagator_pairs,
    propagator_rates_at,
    propagators_at,
    quadratic_form_at,
    scan_grid,
    stack_coefficients,
)
from .events import (
    EventKind,
    EventLog,
    ROUNDING_ULPS,
    START_ULPS,
    Located,
    Pending,
    detect_crossings,
    detect_sign_flips,
    detect_zero_crossings,
    first_exit_brackets,
    locate_roots,
    within_rounding,
)
from .filippov import (VELOCITY_RTOL, BranchPolicy, Selection, implied_hyperplanes, select,
                       select_single, slope_codes, through_origin, transition)
from .model import Loss, network_output, output_rate, slopes
from .ode_base import OdeSolver
from .options import FlowOptions, InvariantError, ZenoError
from .patterns import PatternTable
from .radau import BlockLowRank, Radau
from .replay import PassiveFaces
from .rest import RestBound, rest_bound
from .rk import DOP853
from .vector_field import (
    CollectiveField,
    lorentz_inverse,
    lorentz_project,
    moments,
    outputs_from_moments,
)

__all__ = ["HybridFlow"]

Array = NDArray[np.float64]

#: rounding of the outputs relative to the size of their terms (``Σ_j |a_j| ‖w_j‖ ‖x_k‖``):
#: ~20 ulp measured on an output exactly 0 (degenerate campaign camp9), with a margin of 20;
#: far below ``rtol`` so that it decides only where ``h_k`` and ``y_k`` are both ~0
OUTPUT_ROUNDING = 1e-13

#: hysteresis of the resolution of ``r_k`` (:meth:`HybridFlow._resolved_residuals`): an
#: ``r_k`` resolved to 0 at the step start stays 0 until ``|r_k|`` exceeds this many times its
#: resolution.  Without it an ``r_k`` decaying through its resolution (a point being fitted,
#: square loss) was put back above it at every restart by the recomputed moments' rounding
#: (1e-16 on 7e-11), and each step found the same change again 1e-7 later: 3e7 steps to
#: ``t = 5`` (collinear data, d = 4, hypothesis 6.170)
RESOLUTION_HYSTERESIS = 2.0

#: a snapshot read from a step's dense output is kept when the dense output's error there,
#: estimated by integrating its defect from the step start (:meth:`HybridFlow._snapshot_errors`),
#: is at most this many times the solver's tolerance (``atol + rtol |Φ|``, RMS over the occupied
#: faces' propagators); otherwise the step is redone to end at the snapshot.  Without it a
#: DOP853 step at its stability limit near a global minimum (d = 5, fast modes of size 1e-7)
#: gave snapshots 8e-8 off with step ends 1e-12 off.  Measured (random d = 3–5, three points),
#: the snapshot's relative error over ``rtol`` was 0.07–1.1 times the estimate
SNAPSHOT_DEFECT = 1.0

#: largest number of unknowns (occupied faces × ``(d + 1)²``) the implicit solver takes on.
#: Set when its Jacobian was dense (one field evaluation per column, ``O(N³)`` inversions:
#: 0.1 s at N = 512, 0.4 s at 1 024, 2.8 s at 2 048); without the limit d = 40, n = 10, m = 6
#: (N = 10 086) went stiff at t ≈ 1.5–5 and did not return in ten minutes.  Since session 18
#: the Jacobian is structured (``_Restricted.jac``: ``n + 1`` evaluations of the faces'
#: fields, Woodbury solves in ``O(N (q + n))``); the limit is kept, not re-measured above it
STIFF_MAX_DIM = 1024

#: Gauss–Legendre nodes and weights on [−1, 1] for the defect's integral
_GAUSS = np.polynomial.legendre.leggauss(4)

#: event code of a located candidate that is not a hyperplane (``k >= 0``)
ZERO, FLIP = -1, -2


def _inside(times: Array | None, t0: float, t1: float) -> Array:
    """The ``times`` strictly inside ``(t0, t1)``."""
    if times is None:
        return np.zeros(0)
    return np.array([T for T in times if t0 < T < t1], dtype=float)


def _row_norms(A: Array, B: Array | None = None) -> Array:
    """``np.linalg.norm(A, axis=1)`` (or of ``A − B``), bit for bit, without its copies:
    numpy sums rows shorter than 8 in order, as the column loop here does (longer rows:
    numpy itself)."""
    if A.shape[1] >= 8:
        return np.linalg.norm(A if B is None else A - B, axis=1)

    def col(i: int) -> Array:
        if B is None:
            return A[:, i] * A[:, i]
        c = A[:, i] - B[:, i]
        return np.multiply(c, c, out=c)  # in place: one temporary per column, not two

    s = col(0)
    for i in range(1, A.shape[1]):
        s += col(i)
    return np.sqrt(s, out=s)


def _propagate(Phi: Array, pat: NDArray[np.intp], Z: Array) -> Array:
    """``Φ_{u_j} z_j`` for every row: the propagators ``Phi`` (by face) applied to the neurons
    ``Z`` on faces ``pat`` (``np.take`` gathers the ``q × q`` blocks faster than indexing)."""
    return np.einsum("jab,jb->ja", np.take(Phi, pat, axis=0), Z)


class _BelowLimit:
    """The items whose key is at most a limit of their face, found without sorting them.

    Items with ``key <= cap`` are kept apart (in index order, one pass); a query whose limit
    exceeds the cap on a face in ``faces_present`` widens it to twice that limit (one more
    pass), so the answer is always the direct test over all items.  The largest limit asked
    (:attr:`asked`) sets the next start's cap: over a solver's life the limits
    (``‖Φ_p − I‖`` and the like) only grow from 0, and most items stay far beyond them.
    """

    def __init__(self, key: Array, faces: NDArray[np.intp], idx: NDArray[np.intp],
                 faces_present: NDArray[np.intp], cap: float) -> None:
        self._all = (key, faces, idx)
        self.present = faces_present
        self.asked = 0.0
        self._widen(cap)

    @property
    def empty(self) -> bool:
        return self._all[0].size == 0

    def _widen(self, cap: float) -> None:
        key, faces, idx = self._all
        self.cap = cap
        sel = np.flatnonzero(key <= cap)
        self.key, self.face, self.idx = key[sel], faces[sel], idx[sel]

    def below(self, limit: Array) -> NDArray[np.intp]:
        """``idx`` of the items with ``key <= limit[face]``, in index order."""
        if self.present.size:
            need = float(np.max(limit[self.present]))
            self.asked = max(self.asked, need)
            if need > self.cap:
                self._widen(2.0 * need)
        return self.idx[self.key <= limit[self.face]]


def _project_rows(Phi: Array, rows: NDArray[np.intp], done: NDArray[np.intp] | None = None
                  ) -> Array:
    """A copy of the stack ``Phi`` with the propagators ``rows`` Lorentz-projected
    (:func:`~pwflow.vector_field.lorentz_project`, row by row the same numbers as projecting
    the whole stack); the other rows as they are.  ``done``: rows already projected."""
    rows = np.asarray(rows, dtype=np.intp)
    if done is not None:
        rows = np.setdiff1d(rows, done, assume_unique=True)
    out = Phi.copy()
    if rows.size:
        out[rows] = lorentz_project(Phi[rows])
    return out


def _bisect(lo: float, hi: float, changed: Callable[[float], bool], bracket: list) -> float:
    """Bisection of ``[lo, hi]`` to 4 ulp for the first ``t`` with ``changed(t)`` (``changed(hi)``
    is assumed); ``bracket`` is kept equal to the current ``[lo, hi]`` (for a caller that
    evaluates ahead, :func:`_bisection_nodes`).  Returns the final ``hi``."""
    while hi - lo > 4 * np.spacing(max(abs(hi), 1.0)):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if changed(mid):
            hi = mid
        else:
            lo = mid
        bracket[:] = [lo, hi]
    return hi


def _bisect_batched(lo: float, hi: float,
                    changed_at: Callable[[list[float]], NDArray[np.bool_]], levels: int) -> float:
    """:func:`_bisect` with ``changed`` evaluated ahead: every midpoint the bisection may visit
    in its next ``levels`` levels at once (``changed_at`` takes a list of times), so the
    result is the sequential bisection's, bit for bit, in about ``1/levels`` as many calls."""
    seen: dict[float, bool] = {}
    bracket = [lo, hi]

    def changed(t: float) -> bool:
        if t not in seen:
            ts = _bisection_nodes(bracket[0], bracket[1], levels) or [t]
            seen.update(zip(ts, np.asarray(changed_at(ts), dtype=bool).tolist()))
        return seen[t]

    return _bisect(lo, hi, changed, bracket)


def _bisection_nodes(lo: float, hi: float, levels: int) -> list[float]:
    """Every midpoint :func:`_bisect` may evaluate in its next ``levels`` levels from
    ``[lo, hi]`` (at most ``2^levels − 1``; computed by the same arithmetic, so they are
    the bisection's own points)."""
    out: list[float] = []
    level = [(lo, hi)]
    for _ in range(levels):
        nxt = []
        for a, b in level:
            if not b - a > 4 * np.spacing(max(abs(b), 1.0)):
                continue
            mid = 0.5 * (a + b)
            if mid <= a or mid >= b:
                continue
            out.append(mid)
            nxt += [(a, mid), (mid, b)]
        level = nxt
    return out


def _solver_class(name: str) -> type[OdeSolver]:
    """The one-step solver by name: pwflow's ports of scipy's DOP853 (bit-identical) and
    Radau (:mod:`pwflow.rk`, :mod:`pwflow.radau`; scipy.integrate is not imported)."""
    return {"DOP853": DOP853, "Radau": Radau}[name]


@dataclass(frozen=True)
class Candidates:
    """Events suspected in one step: the neuron, what it reaches (a data index ``k``,
    :data:`ZERO` for ``w = 0`` on a ray, :data:`FLIP` for ``a_j = 0`` while sliding), the
    vector ``ℓ`` with ``s(t) = ℓ · z_j(t)``, the side it leaves, ``a_j`` at the step end, and
    optional brackets of the first exit (``nan``: scan for it)."""

    neuron: NDArray[np.intp]
    code: NDArray[np.intp]
    left: Array
    side: NDArray[np.int8]
    a_end: Array
    lo: Array
    hi: Array

    @staticmethod
    def concat(parts: "list[Candidates]") -> "Candidates | None":
        parts = [c for c in parts if c is not None and c.neuron.size]
        if not parts:
            return None
        return Candidates(*(np.concatenate([getattr(c, f) for c in parts])
                            for f in ("neuron", "code", "left", "side", "a_end", "lo", "hi")))


@dataclass(frozen=True)
class Batch:
    """Events applied together at one cut: per event its time (and step fraction), neuron,
    faces before and after, the neuron's state at the event and the located residual;
    ``log`` holds the rows ``(event, k, kind)`` (arrays, ordered by event), one per hyperplane
    whose entry changed (and per branch point)."""

    ts: Array
    xs: Array
    js: NDArray[np.intp]
    ps: NDArray[np.intp]
    p_new: NDArray[np.intp]
    zs: Array
    resid: Array
    log: tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.intp]]


def _last_per_neuron(js: NDArray[np.intp], rows: NDArray[np.intp]) -> NDArray[np.intp]:
    """The last of ``rows`` (in time order) of each neuron ``js[rows]``, in row order: a
    batch may hold several events of one neuron (:meth:`HybridFlow._chained_batch`)."""
    rev = rows[::-1]
    _, first = np.unique(js[rev], return_index=True)
    return np.sort(rev[first])


def _merge_batches(parts: "list[Batch]") -> "Batch":
    """One :class:`Batch` from the generations of a chained batch, its rows in time order
    (a neuron's events in the order they happen) and its log rows following them."""
    if len(parts) == 1:
        return parts[0]
    cat = {f: np.concatenate([getattr(b, f) for b in parts])
           for f in ("ts", "xs", "js", "ps", "p_new", "zs", "resid")}
    order = np.argsort(cat["ts"], kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    offsets = np.cumsum([0] + [b.ts.size for b in parts[:-1]])
    le = rank[np.concatenate([b.log[0] + o for b, o in zip(parts, offsets)])]
    lk = np.concatenate([b.log[1] for b in parts])
    lkind = np.concatenate([b.log[2] for b in parts])
    by_row = np.argsort(le, kind="stable")
    return Batch(**{f: v[order] for f, v in cat.items()},
                 log=(le[by_row], lk[by_row], lkind[by_row]))


class _Restricted:
    """The collective field on the propagators of the faces ``keep`` only (the others: ``I``,
    their field being 0); ``keep`` holds every occupied face."""

    def __init__(self, field_: CollectiveField, keep: NDArray[np.bool_]) -> None:
        self.field = field_
        self.keep = np.flatnonzero(keep)
        self.P = self.keep.size
        q = field_.q
        self._full = np.tile(np.eye(q), (field_.P, 1, 1))
        # rows of the occupied faces among the kept ones (the outputs need only those)
        self._occ = np.searchsorted(self.keep, field_.occupied)
        if not np.array_equal(self.keep[np.minimum(self._occ, self.P - 1)], field_.occupied):
            raise InvariantError("an occupied face is not integrated")

    def expand(self, y: Array, fill: Array | None = None) -> Array:
        """The full ``(P, q, q)`` stack: ``y`` on the kept faces, ``fill`` (default ``I``)
        elsewhere."""
        full = (self._full if fill is None else fill).copy()
        full[self.keep] = y.reshape(self.P, self.field.q, self.field.q)
        return full

    def __call__(self, t: float, y: Array) -> Array:
        f = self.field
        f.nfev += 1
        Phi = y.reshape(self.P, f.q, f.q)
        with np.errstate(over="ignore", invalid="ignore"):  # as CollectiveField.__call__
            G = f.face_fields(Phi[self._occ])[self.keep]
            return f.rates(Phi, G).reshape(-1)

    def jac(self, t: float, y: Array) -> BlockLowRank:
        """The field's Jacobian from its structure: block diagonal plus rank ``n``
        (:class:`pwflow.radau.BlockLowRank`, which the implicit solver inverts by Woodbury).

        ``dΦ_p/dt = M(D_p) Φ_p`` with ``M(D) = [[0, D], [Dᵀ, 0]]`` (:meth:`CollectiveField.rates`),
        and ``D_p`` depends on the propagators only through the residuals ``r``.  So
        ``J = blockdiag(M(D_p) ⊗ I_q) + U V`` with ``U[:, k] = vec(M(∂D_p/∂r_k) Φ_p)`` (the
        fields' derivatives in ``r`` by forward differences: ``n + 1`` evaluations of the
        faces' fields, instead of one full field evaluation per unknown) and
        ``V[k] = ∂_1² l(h_k, y_k) ∂h_k/∂y`` (the outputs are bilinear in each face's
        propagator, :meth:`CollectiveField.outputs`).  The implicit solver only needs an
        approximation for its Newton iterations; against the forward-difference Jacobian of
        the whole field it agrees to ``√eps`` (``tests/test_stepper.py``).
        """
        f = self.field
        q, d, P = f.q, f.d, self.P
        Phi = y.reshape(P, q, q)
        occ = Phi[self._occ]
        with np.errstate(over="ignore", invalid="ignore"):
            h = f.outputs(occ)
            r = f.residuals(occ) if f.frozen_output else f.loss.derivative(h, f.y)
            G = f.fields_of(r)[self.keep]
        M = np.zeros((P, q, q))
        M[:, :d, d], M[:, d, :d] = G, G
        n = r.size
        if f.frozen_output:
            return BlockLowRank(M, np.zeros((P * q * q, 0)), np.zeros((0, P * q * q)))
        step = np.sqrt(np.finfo(float).eps) * np.maximum(1.0, np.abs(r))
        U = np.empty((P * q * q, n))
        with np.errstate(over="ignore", invalid="ignore"):
            for k in range(n):
                rk = r.copy()
                rk[k] += step[k]
                U[:, k] = f.rates(Phi, (f.fields_of(rk)[self.keep] - G) / step[k]).reshape(-1)
        curv = f.loss.derivative_rate(h, f.y, np.ones_like(h))  # ∂_1² l(h_k, y_k)
        # ∂h_k/∂Φ_p: h_k = Σ_p η⁰_{p,k} <x_k, W_p C_p a_p>, W_p = Φ_p[:d], a_p = Φ_p[d]
        C, eta = f._C_occ, f._eta0_occ
        Ca = (C @ occ[:, d, :, None])[..., 0]  # (n_occ, q)
        WC = occ[:, :d, :] @ C  # (n_occ, d, q)
        dH = np.zeros((self._occ.size, n, q, q))
        dH[:, :, :d, :] = (eta[:, :, None, None] * f.X[None, :, :, None]) * Ca[:, None, None, :]
        dH[:, :, d, :] = eta[:, :, None] * np.einsum("ki,pic->pkc", f.X, WC)
        V = np.zeros((n, P, q * q))
        V[:, self._occ, :] = curv[:, None, None] * dH.transpose(1, 0, 2, 3).reshape(n, -1, q * q)
        return BlockLowRank(M, U, V.reshape(n, P * q * q))


class _Recording(_Restricted):
    """:class:`_Restricted` for DOP853 with passive faces (:mod:`pwflow.replay`): also keeps
    the residuals of every evaluation (:meth:`take`), from which the faces left out are
    replayed.  The same operations as the field on the kept rows."""

    def __init__(self, field_: CollectiveField, keep: NDArray[np.bool_]) -> None:
        super().__init__(field_, keep)
        self._record: list[Array] = []
        self._plan = field_.rows_plan(self.keep)  # the kept faces' fields only

    def __call__(self, t: float, y: Array) -> Array:
        f = self.field
        f.nfev += 1
        Phi = y.reshape(self.P, f.q, f.q)
        with np.errstate(over="ignore", invalid="ignore"):  # as CollectiveField.__call__
            r = f.residuals(Phi[self._occ])
            self._record.append(r)
            return f.rates(Phi, f.fields_of(r, self._plan)).reshape(-1)

    def take(self) -> list[Array]:
        """The residuals recorded since the last call, in evaluation order."""
        out, self._record = self._record, []
        return out


@dataclass
class _Phase:
    """Which solver runs the propagators: DOP853 (events) or an implicit one (quiet stretches).

    DOP853 hands over after ``after`` consecutive event-free steps; the implicit solver hands
    back when a step would contain an event (the step is redone), or when, after at least
    ``window`` steps, it has used more than ``factor`` times the field evaluations per time
    unit that DOP853 used over its quiet stretch (evaluations, not wall time, so that the
    trajectory is reproducible; its finite-difference Jacobians and its start-up count too,
    hence ``factor`` > 1: 3 gave the fewest evaluations on three_points among 2, 3, 4, 8).
    ``after`` doubles at each hand-back of the second kind (or a failure), so a wrong guess
    costs a bounded share of the work.  After a hand-back for an event, ``again`` quiet steps
    suffice (DOP853's rate measured before is kept): an isolated event in a quiet stretch
    said nothing about stiffness, and waiting ``after`` (40, 80, ...) steps each time cost
    three points at ``m = 2·10⁴`` 543 steps instead of 307.

    The rate DOP853 is held to is measured on its quiet stretches; a long implicit stretch
    outlives it (the dynamics slow down, or stiffen).  After ``probe`` implicit steps in one
    stretch (doubling at each use) DOP853 takes ``window`` quiet steps to measure its rate
    again, then hands over as usual.  Without it a rate measured early in a run was the
    reference for the rest of it: a logistic-loss run (``tests/explore_long.py`` seed 151)
    kept Radau from t = 43 to 3000, 1 422 steps in all against 239 for DOP853 alone; now
    643.
    """

    after: int
    window: int = 10
    factor: float = 3.0
    again: int = 3
    stiff: bool = False
    count: int = 0
    cost: float = 0.0
    dt: float = 0.0
    rate_explicit: float = np.inf
    h_explicit: float | None = None
    need: int | None = None  # quiet steps before the next hand-over (None: ``after``)
    probe: int = 256  # implicit steps in one stretch before DOP853's rate is measured again
    measure: bool = False  # the current DOP853 stretch measures its rate (a probe)

    def eventful(self) -> None:
        self.count, self.cost, self.dt = 0, 0.0, 0.0

    def quiet(self, cost: float, dt: float, h: float | None) -> bool:
        """Record an event-free step (``cost`` field evaluations); True when the solver must
        change."""
        self.count += 1
        self.cost += cost
        self.dt += dt
        if not self.stiff:
            self.h_explicit = h
            need = self.after if self.need is None else self.need
            if self.count >= need and self.dt > 0:
                if (self.count >= self.after or self.measure
                        or not np.isfinite(self.rate_explicit)):
                    self.rate_explicit = self.cost / self.dt
                self.need, self.measure = None, False
                self.stiff = True
                self.eventful()
                return True
            return False
        if self.count >= self.window and self.cost > self.factor * self.rate_explicit * self.dt:
            self.leave()
            return True
        if self.count >= self.probe:  # DOP853's rate is old: measure it again
            self.probe *= 2
            self.leave(wrong_guess=False)
            self.need, self.measure = min(self.window, self.after), True
            return True
        return False

    def leave(self, wrong_guess: bool = True) -> None:
        """Back to DOP853; ``after`` doubles where the implicit solver was a wrong guess (it
        failed or cost more), not where a step only met an event (events are located on
        DOP853's dense output: meeting one says nothing about stiffness)."""
        self.stiff = False
        if wrong_guess:
            self.after *= 2
            self.need = None
        else:
            self.need = min(self.again, self.after)
        self.eventful()



class HybridFlow:
    """Event-driven integrator of the subgradient flow (Eq. (6)) for one network.

    Use :func:`simulate` for whole runs; this class exposes :meth:`step` for custom drivers.

    Parameters
    ----------
    X, y : arrays
        Data (validated by :class:`pwflow.data.Dataset`).
    W0, a0 : arrays
        Initial neurons.
    t0 : float
        Initial time.
    loss : Loss
    gamma : float
    options : FlowOptions
    """

    def __init__(
        self,
        X: Array,
        y: Array,
        W0: Array,
        a0: Array,
        loss: Loss,
        gamma: float,
        options: FlowOptions,
        t0: float = 0.0,
        patterns: NDArray[np.int8] | None = None,
        table: PatternTable | None = None,
        X_given: Array | None = None,
    ) -> None:
        self.X = np.asarray(X, float)
        #: the data as given, where ``X`` is snapped (:func:`pwflow.subgradient.snap_data`):
        #: the sides gradient descent's first step reads from a start on hyperplanes
        self._X_given = self.X if X_given is None else np.asarray(X_given, float)
        self.y = np.asarray(y, float)
        self.n, self.d = self.X.shape
        self.q = self.d + 1
        self.loss = loss
        #: Lipschitz constant of ``∂_1 l`` over the labels (batch cut, resolution, rest)
        self._curvature = loss.curvature_bound_for(y)
        self.gamma = gamma
        self.opt = options
        self.t = float(t0)
        self._Zcur = np.hstack([np.asarray(W0, float), np.asarray(a0, float)[:, None]])
        self._Phi = None
        self.m = self._Zcur.shape[0]
        self.table = table if table is not None else PatternTable(self.X, gamma)
        #: ``{0}`` is a face of its own (the face ``u = 0``'s dimension, as the table has it)
        self._origin_is_face = span_split(self.X)[0] == self.d
        self.xnorm = np.linalg.norm(self.X, axis=1)
        self.xhat = np.hstack([self.X, np.zeros((self.n, 1))])
        self.events = EventLog()
        self.h_next = None
        self.nfev = 0
        self.n_steps = 0
        self.n_cut = 0
        self._tiny_steps = 0
        #: consecutive steps cut at a face's regime change that logged no event
        self._idle_cuts = 0
        self._recent: list[tuple[float, int, int]] = []
        self._later: dict[int, float] = {}
        self._t_face = np.inf
        #: the last located regime change: time, signs of the watched ``r_k``, residuals, and
        #: the watched hyperplanes then
        self._rsign_at: tuple[float, NDArray[np.int8], Array, NDArray[np.bool_]] | None = None
        #: watched ``r_k`` resolved to 0 in the current regime (:data:`RESOLUTION_HYSTERESIS`)
        self._held_zero: NDArray[np.bool_] | None = None
        #: ``r_k`` resolved to nonzero in the current regime (kept so down to
        #: 1 / :data:`RESOLUTION_HYSTERESIS` of the resolution)
        self._held_live: NDArray[np.bool_] | None = None
        #: the resolved residuals of the last single-time regime (:meth:`_face_regime_at`)
        self._resolved_last: Array | None = None
        #: the time and faces :meth:`_leave_faces` last decided (a restart there keeps them)
        self._left_at: tuple[float, NDArray[np.intp]] = (np.nan, np.zeros(0, np.intp))
        self._solver = None
        self.n_restarts = 0
        self.n_rollbacks = 0
        #: steps redone to end at a snapshot their dense output could not give
        #: (:data:`SNAPSHOT_DEFECT`)
        self.n_snapshot_redos = 0
        #: the snapshot time such a redone step ends at, until reached
        self._snap_bound: float | None = None
        self.n_excursions = 0
        self._seen = np.zeros(0)
        self._mu_state = None
        self._phase = _Phase(options.stiff_after)
        self.policy = BranchPolicy.parse(options.branch_policy)
        self.max_sliding_residual = 0.0
        self.max_lorentz_correction = 0.0
        self.n_branch = 0
        self.t_first_branch = np.inf
        # neurons that sit exactly on the hyperplanes of their initial face, never moved off
        # by an event: gradient descent does not chatter there (the GD branch policy needs it)
        self._at_rest = np.zeros(self.m, dtype=bool)
        #: per data point, whether another one is parallel to it (:meth:`_has_parallel`; -1 unknown)
        self._parallel = np.full(self.n, -1, dtype=np.int8)
        #: set by :meth:`check_rest`: the bound under which the neurons are kept as they are
        self.rest: RestBound | None = None
        if patterns is None:
            self.pat = self._initial_patterns()
        else:
            self.pat = self.table.index_many(patterns)

    # ------------------------------------------------------------------ state
    @property
    def Z(self) -> Array:
        """Neuron states ``(w_j, a_j)`` at the current time, shape ``(m, d + 1)``.

        Between events only the propagators are advanced; the neurons are materialised on
        demand (``Φ_{u_j} z_j`` from the last solver start), then kept on their faces.
        """
        if self._Zcur is None:
            Z = _propagate(self._Phi, self.pat, self._Zs)
            self._Zcur = Z
            self._project_sliding(Z, self.pat)  # in place; may raise after projecting
        return self._Zcur

    @Z.setter
    def Z(self, value: Array) -> None:
        self._Zcur = value

    def mark_projected(self) -> None:
        """Record the current neurons as already on their faces' hyperplanes (a resumed
        state whose mark says so, :func:`pwflow.resume.restore`): the next solver start does not
        project them again, as the uninterrupted run does not."""
        self._projected = (self.Z, self.pat)

    def outputs(self) -> Array:
        """``h_θ(x_k)`` at the current time (from the moments: O(number of faces))."""
        if self._Zcur is None:
            return self._field.outputs(self._Phi)
        # S_p = Σ_{j∈p} a_j w_j by face: O(m d) instead of the O(m n) of σ(<w_j, x_k>) (the
        # slope η⁰ of a face is exact for its neurons; on its own hyperplanes <w, x_k> = 0)
        tab = self.table.arrays()
        C = self._moments()
        return outputs_from_moments(C[:, : self.d, self.d], tab.eta0, self.X)

    def _moments(self) -> Array:
        """:func:`moments` of the current neurons over the registered faces, kept until the
        neurons, their faces or the table change (:meth:`outputs` after a cut and the next
        solver start need the same ones: ``S_p = C_p[:d, d]``)."""
        Z, pat, P = self.Z, self.pat, len(self.table)
        cached = self.__dict__.get("_moments_cache")
        if cached is not None and cached[0] is Z and cached[1] is pat and cached[2] == P:
            return cached[3]
        C = moments(Z, pat, P)
        self._moments_cache = (Z, pat, P, C)
        return C

    # ------------------------------------------------------------------ set-up
    def _residuals_direct(self) -> Array:
        if self.opt.frozen_output:
            return self.loss.derivative(np.zeros_like(self.y), self.y)
        W, a = self.Z[:, : self.d], self.Z[:, self.d]
        S = W @ self.X.T
        h = np.where(S > 0, S, self.gamma * S).T @ a
        return self.loss.derivative(h, self.y)

    def _initial_patterns(self) -> NDArray[np.intp]:
        """Faces of the initial neurons; a neuron starting on hyperplanes is decided by
        :func:`pwflow.filippov.select` (logged as ``INITIAL_FACE`` where it stays)."""
        W = self.Z[:, : self.d]
        S = W @ self.X.T
        # a value within the rounding of a projection onto the hyperplanes is zero: its sign
        # says nothing of the side (a neuron placed on hyperplanes by a floating-point
        # projection lands 1e-16 to 1e-13 off them, on sides that the rounding picked;
        # START_ULPS)
        U = np.where(within_rounding(S, W, self.X, START_ULPS), 0, np.sign(S)).astype(np.int8)
        # the offsets gradient descent's first step reads: on the data as given (a point
        # snapped onto the neuron's hyperplanes was 1e-11 off them, on a side it reads)
        given = S if self._X_given is self.X else W @ self._X_given.T
        on_face = np.flatnonzero(np.any(U == 0, axis=1))
        rows = []
        if on_face.size:
            r = self._residuals_direct()
            # with a_j ≠ 0 the rule depends on the neuron only through its face and sign(a_j)
            # (w orients the motion only where a_j = 0): one solve per distinct pair
            decided: dict[tuple[bytes, float], Selection] = {}
            chosen: dict[int, Selection] = {}
            for j in on_face:
                if np.all(W[j] == 0):
                    continue
                # the signs of the offsets within rounding: gradient descent's first step
                # reads them (filippov._gd_at_rest)
                sides = np.sign(given[j]).astype(np.int8)
                key = (U[j].tobytes(), float(np.sign(self.Z[j, self.d])), sides.tobytes())
                sel = decided.get(key) if key[1] != 0.0 else None
                if sel is None:
                    sel = select(self.Z[j, self.d], U[j], self.X, r, self.gamma,
                                 policy=self.policy, w=W[j], at_rest=True, sides=sides)
                    decided[key] = sel
                chosen[int(j)] = sel
            zero_a = [j for j in chosen if self.Z[j, self.d] == 0.0]
            if zero_a and not self.opt.frozen_output:
                # where da_j/dt = <w_j, D_j> vanishes too, the sign a_j takes next is that of
                # d²a_j/dt², which the other neurons' motion sets through dr/dt
                r_rate = self._initial_residual_rates(U, r, chosen)
                for j in zero_a:
                    chosen[j] = select(0.0, U[j], self.X, r, self.gamma, policy=self.policy,
                                       w=W[j], at_rest=True,
                                       sides=np.sign(given[j]).astype(np.int8),
                                       r_rate=r_rate)
            for j in on_face:
                if np.all(W[j] == 0):
                    U[j] = 0
                    rows.append((int(j), -1, EventKind.REACH_ZERO))
                    sel = self._from_origin(self.Z[j, self.d], r, at_rest=True)
                    if sel is not None:  # it departs from w = 0 at once
                        U[j, sel.K] = sel.signs
                        rows.extend((int(j), int(k), EventKind.BRANCH)
                                    for k in sel.K[sel.branch])
                    continue
                sel = chosen[int(j)]
                U[j, sel.K] = sel.signs
                self._at_rest[j] = bool(np.any(sel.signs == 0))
                if np.any(sel.signs == 0):
                    self.Z[j, : self.d] = self._project_face(W[j], sel.K[sel.signs == 0])
                for k, s, br in zip(sel.K, sel.signs, sel.branch):
                    rows.append((int(j), int(k), EventKind.BRANCH if br
                                 else EventKind.INITIAL_FACE if s == 0 else EventKind.LEAVE_SLIDING))
        pat = self.table.index_many(U)
        for j, k, kind in rows:
            self._log(self.t, j, k, kind, 0.0, -1, int(pat[j]))
        return pat

    def _initial_residual_rates(self, U: NDArray[np.int8], r: Array,
                                chosen: dict[int, Selection]) -> Array:
        """``dr/dt`` at the start, every neuron moving with its field: off its hyperplanes
        the slopes of its sides, on them the selected ``D`` (:func:`pwflow.model.output_rate`).
        """
        W, a = self.Z[:, : self.d], self.Z[:, self.d]
        U = U.copy()
        for j, sel in chosen.items():
            U[j, sel.K] = sel.signs
        D = -((slopes(U, self.gamma) * r) @ self.X) / self.n
        for j, sel in chosen.items():
            D[j] = sel.D
        h = network_output(W, a, self.X, self.gamma)
        return self.loss.derivative_rate(h, self.y, output_rate(W, a, self.X, D, U, self.gamma))

    def _log(self, t: float, j: int, k: int, kind: int, resid: float, frm: int, to: int) -> None:
        self.events.add(t, j, k, kind, resid, frm, to)
        self._recent.append((t, j, k))
        if kind == EventKind.BRANCH:
            self.n_branch += 1
            self.t_first_branch = min(self.t_first_branch, t)

    def _log_many(self, t: Array, j: NDArray, k: NDArray, kind: NDArray, resid: Array,
                  frm: NDArray, to: NDArray) -> None:
        """:meth:`_log` for many rows at once (the rows of one applied batch, in order)."""
        if t.size == 0:
            return
        self.events.extend(t, j, k, kind, resid, frm, to)
        self._recent.extend(zip(t.tolist(), j.tolist(), k.tolist()))
        br = kind == EventKind.BRANCH
        if np.any(br):
            self.n_branch += int(np.sum(br))
            self.t_first_branch = min(self.t_first_branch, float(np.min(t[br])))

    def _has_parallel(self, k: NDArray[np.intp]) -> NDArray[np.bool_]:
        """Whether another data point is parallel to each ``x_k`` to
        :data:`pwflow.cones.SPAN_RTOL` (:func:`pwflow.filippov.implied_hyperplanes` of the face
        ``{x_k}``; computed once per point, on its first one-hyperplane event).

        A neuron reaching ``x_k``'s hyperplane from an open cell then lies on that point's too,
        as the selection rule has it: the event goes to :func:`pwflow.filippov.select`, not to
        the one-hyperplane rule, which held the partner at its side's slope (d = 3, two points
        antiparallel to 1.7e-11: the neuron slid on one hyperplane 1e-12 from the other's and
        ended 0.31 from extrapolated gradient descent, now 6e-10;
        ``test_a_neuron_reaching_one_of_two_antiparallel_points_crosses_both``).
        """
        k = np.asarray(k, dtype=np.intp)
        for kk in np.unique(k[self._parallel[k] < 0]):
            u = np.ones(self.n, dtype=np.int8)
            u[kk] = 0
            self._parallel[kk] = implied_hyperplanes(self.X, u).size > 0
        return self._parallel[k] == 1

    def _from_origin(self, a: float, r: Array, at_rest: bool = False,
                     arrived_on: NDArray[np.int8] | None = None) -> Selection | None:
        """Where a neuron at ``w = 0`` goes, with full-rank data (``{0}`` a face of its own).

        Staying at 0 solves Eq. (2) only where ``0 ∈ 𝔇(0)`` (e.g. ReLU with no two opposite
        points: every slope 0 gives ``D = 0``), and that is where the minimal-norm rule holds
        every hyperplane; elsewhere (``γ > 0``, opposite points) ``dw/dt ∈ a 𝔇(0)`` cannot be
        0 and the neuron departs from 0 at once on the face :func:`pwflow.filippov.select`
        gives.  ``None``: it stays (Condition 1, point 2, holds for it).  Where ``rank X < d``
        the face ``u = 0`` is the null space of ``X`` and moves by its own field: ``None``.

        Where it stays but arrived (on the face ``arrived_on``) at a velocity that passing
        through 0 continues consistently (:func:`pwflow.filippov.through_origin`), the flow
        is not unique there: a branch point, and the ``'gd'`` policy passes through, as
        gradient descent does (ReLU, session 13's exploration, seed 1651).
        """
        if not self._origin_is_face:
            return None
        sel = select(a, np.zeros(self.n, np.int8), self.X, r, self.gamma, policy=self.policy,
                     w=np.zeros(self.d), at_rest=at_rest)
        if np.any(sel.signs != 0):
            return sel
        through = None if arrived_on is None else through_origin(
            a, arrived_on, self.X, r, self.gamma, self.policy)
        if through is None:
            return None
        if self.policy is BranchPolicy.GRADIENT_DESCENT:
            return through
        return Selection(through.K, np.zeros(self.n, np.int8), sel.eta, sel.D, through.branch)

    def _at_origin(self, z: Array, u: NDArray[np.int8]) -> bool:
        """Whether a neuron ``z = (w, a)`` that arrives on the face ``u`` by a hyperplane event
        is at ``w = 0``.

        Only the face ``u = 0`` contains the origin; where ``rank X < d`` it is the null space
        of ``X``, not ``{0}``.  No field moves a neuron along that space (``D ∈ span X``), so a
        neuron arrives there at its own null-space component: at ``w = 0`` where that is zero
        to rounding of ``z`` (d = 3, rank 2: a neuron with ``w ∈ span X`` shrinking onto the
        face was logged as sliding there at ``w ~ 1e-65``, its direction noise), elsewhere on
        the face with ``w ≠ 0``.
        """
        if np.any(u != 0):
            return False
        w = self._project_face(z[: self.d], np.arange(self.n))
        tiny = ROUNDING_ULPS * np.finfo(float).eps * float(np.linalg.norm(z))
        return bool(np.linalg.norm(w) <= tiny)

    def _project_face(self, w: Array, K: NDArray) -> Array:
        """Orthogonal projection of ``w`` onto ``{v : <v, x_k> = 0, k ∈ K}``.

        ``w`` of shape ``(d,)`` with indices ``K``, or a batch ``(E, d)`` with ``K`` of shape
        ``(E, c)``: ``w − X_Kᵀ (X_K X_Kᵀ)^+ X_K w``, vectorised over the batch for ``c = 1``
        (where it is ``w − <w, x_k> x_k / ‖x_k‖²``).
        """
        w = np.asarray(w, float)
        if w.ndim == 1:
            return self._project_face(w[None], np.asarray(K)[None])[0]
        K = np.asarray(K, dtype=np.intp)
        if K.shape[1] == 1:
            XK = self.X[K[:, 0]]
            coef = np.einsum("ed,ed->e", XK, w) / np.einsum("ed,ed->e", XK, XK)
            return w - coef[:, None] * XK
        out = np.empty_like(w)
        for e in range(w.shape[0]):
            XK = self.X[K[e]]
            coef, *_ = np.linalg.lstsq(XK @ XK.T, XK @ w[e], rcond=None)
            out[e] = w[e] - coef @ XK
        return out

    # ------------------------------------------------------------------ one step
    def _start_solver(self, t_bound: float) -> None:
        """(Re)start DOP853 at the current state: new moments, ``Φ = I``."""
        tab = self.table.arrays()
        # materialised first: materialising projects (:attr:`Z`), and a mark read before it
        # projected the neurons a second time, which moves them by rounding, so a run
        # differed bitwise by whether something had read ``Z`` before (the stop-at-rest test)
        Z = self.Z
        done = self.__dict__.get("_projected")
        if done is None or done[0] is not Z or done[1] is not self.pat:
            self._project_sliding(Z, self.pat)
        P = len(tab)
        C = self._moments()
        # Faces integrated: those holding neurons now or within the last ``face_memory`` time
        # units. A face empty for long is dropped: its propagator is not needed unless an event
        # brings a neuron in (that event then cuts the step), and integrating it costs
        # accuracy-limited steps (measured: twice as many steps near convergence).
        counts = np.bincount(self.pat, minlength=P)[:P]
        seen = np.full(P, self.t)  # a face met since the last start counts as just seen
        seen[: self._seen.size] = self._seen
        seen[counts > 0] = self.t
        self._seen = seen
        memory = self.opt.face_memory
        if memory is None:
            memory = 50.0 if self.m < 10_000 else np.inf
        self._integrated = seen >= self.t - memory
        if self._phase.stiff:
            # an implicit step never applies events (it is redone by DOP853 if one occurs), so
            # only the occupied faces' propagators are needed; the empty ones may grow
            # exponentially and would only cost accuracy-limited steps
            self._integrated = counts > 0
        passive = self._integrated & (counts == 0)
        replay = (not self._phase.stiff and self.REPLAY_PASSIVE is not None
                  and self.d >= self.REPLAY_MIN_DIM
                  and np.count_nonzero(passive) >= self.REPLAY_PASSIVE)
        self._field = CollectiveField(tab, C, self.X, self.y, self.loss, self.opt.frozen_output,
                                      active=counts > 0 if replay else self._integrated)
        self._P = P
        self._occupied = np.flatnonzero(counts > 0)
        # occupied faces with free slopes: those whose regime is watched (fixed until the
        # next start, since the neurons' faces change only at a cut)
        self._regime_faces = self._occupied[(tab.nfree[self._occupied] > 0)
                                            & (tab.dim[self._occupied] > 0)]
        self._regime_free = tab.U[self._regime_faces] == 0
        self._regime_watched = np.any(self._regime_free, axis=0)
        self._regime_plan = tab.single_plan_for(self._regime_faces)
        self._Zs = self.Z.copy()
        self._Phi = np.tile(np.eye(self.q), (P, 1, 1))
        self._margins()
        codes, rsign = self._face_regime_at(np.eye(self.q)[None].repeat(P, 0))
        # a sliding slope already beyond its bound where the solver starts (a neuron held on
        # a hyperplane at a bound to rounding, e.g. re-entering the instant after its exit) is
        # an exit due now: counted as inside, its code is a change at the first time the face
        # events look at, located there and left by the exit rule, not missed for good.  Not
        # the faces the exit rule has just decided at this time: it held them
        t_left, left = self._left_at
        due = np.ones(P, dtype=bool)
        if t_left == self.t:
            due[left[left < P]] = False
        if np.any(due[:, None] & (codes != 0)):
            # ... unless only the resolved residuals put it there: the entry that brought the
            # neuron here was decided on the residuals themselves (as the field moves it), and
            # where the two readings differ (residuals at their resolution, near a global
            # minimum) forcing the exit made an enter/leave pair of every step: 5 360 in
            # t ∈ [98.2, 98.6] (d = 4, n = 4, docs/integrator.md).  The resolved code is then
            # the baseline, and only a later change of it is a face event
            due = due[:, None] & (self._face_regime_at(np.eye(self.q)[None].repeat(P, 0),
                                                       raw=True)[0] != 0)
        hint = self._rsign_at
        if hint is not None and hint[0] == self.t and hint[1].shape == rsign.shape:
            # restarting at a located change of some r_k's sign (or of its resolution to 0):
            # r_k is at the threshold there, and the recomputed moments may put it back on its
            # old side; keep the side the location found, or the next step would find the same
            # change again an ulp later
            rsign = np.where(hint[3] & self._regime_watched, hint[1], rsign).astype(np.int8)
        self._set_regime((np.where(due if due.ndim == 2 else due[:, None], 0,
                                   codes).astype(codes.dtype), rsign))
        self._field.hold(self._held_sliding(codes))
        h0 = None if self.h_next is None else min(self.h_next, t_bound - self.t)
        if self._phase.stiff:
            method = _solver_class(self.opt.stiff_solver)
            fun = _Restricted(self._field, counts > 0)
        elif replay:  # DOP853 on the occupied faces; the passive ones replayed on demand
            method, fun = _solver_class("DOP853"), _Recording(self._field, counts > 0)
        else:
            method, fun = _solver_class("DOP853"), self._field
        self._fun = fun
        y0 = np.tile(np.eye(self.q).reshape(-1), fun.P if fun is not self._field else P)
        extra = {"jac": fun.jac} if self._phase.stiff else {}
        self._solver = method(
            fun, self.t, y0, t_bound, rtol=self.opt.rtol, atol=self.opt.atol,
            max_step=self.opt.max_step, first_step=h0, **extra,
        )
        self._passive = None
        if replay:
            self._passive = PassiveFaces(self._field, tab, np.flatnonzero(passive),
                                         self.opt.rtol, self.opt.atol, fun.take()[0])
        self._fresh = True
        self.n_restarts += 1

    def _held_sliding(self, codes: NDArray[np.int8]) -> NDArray[np.intp]:
        """Occupied faces whose neurons stay on their hyperplanes where the solver starts
        (``codes``: :meth:`_face_regime_at` there: every free slope inside ``[γ, 1]``, with
        each free ``r_k`` resolved non-zero, so decided).  The solver's field holds their
        sliding mode (:meth:`CollectiveField.hold`): it is smooth where a slope nears a bound.
        A bound reached within a step is a regime change, located on DOP853's dense output as
        a face event (the step is cut there, and only the part before, where the held and the
        boxed fields agree, is kept), or, in an implicit step, seen at its end (the step is
        then redone by DOP853).  ``docs/integrator.md``, "Sliding modes are held"."""
        tab = self.table
        faces = self._regime_faces
        r = self._resolved_last
        if faces.size == 0 or r is None:
            return np.zeros(0, np.intp)
        decided = ~np.any(self._regime_free & (r == 0), axis=1)
        inside = ~np.any(codes[faces] != 0, axis=1)
        return faces[decided & inside & ~tab.frozen[faces]]

    def _integrated_at(self, p: NDArray) -> NDArray:
        """Whether the faces ``p`` were integrated since the last solver start."""
        p = np.asarray(p)
        ok = p < self._P
        out = np.zeros(p.shape, dtype=bool)
        out[ok] = self._integrated[p[ok]]
        return out

    def _margins(self) -> None:
        """Lower bounds ``μ_j`` of each neuron's distance to the hyperplanes that bound its face
        (and to 0 on rays), at the solver start.

        A neuron can change side during the solver's life only once ``‖Φ_u − I‖ ‖z_j‖``
        reaches this distance; the others are not materialised (see :meth:`step`).  The
        distance ``|<w, x̂_k>|`` is 1-Lipschitz in ``w``, so a neuron that kept its face since
        the last solver start keeps ``μ_j − ‖w_j − w_j^{old}‖`` as a valid bound (O(m d) per
        restart); it is recomputed exactly (O(n d)) where its face changed or the bound fell
        below half its last exact value.  A smaller bound only selects more neurons for the
        exact end-of-step check, so the events found are the same.
        """
        tab = self.table.arrays()
        W = self._Zs[:, : self.d]
        prev = self._mu_state
        if prev is None:
            stale = np.arange(self.m)
            mu = np.empty(self.m)
            exact = np.empty(self.m)
        else:
            W_old, pat_old, mu, exact = prev  # owned by the state alone: updated in place
            mu -= _row_norms(W, W_old)
            stale = np.flatnonzero((self.pat != pat_old) | (mu < 0.5 * exact))
        if stale.size:
            mu[stale] = self._exact_margins(W[stale], self.pat[stale])
            exact[stale] = mu[stale]
        self._mu = mu
        # self._Zs and self.pat are never written to (each start makes a new Z, each cut a
        # new pattern array): both are kept as they are
        self._mu_state = (W, self.pat, mu, exact)
        self._znorm = _row_norms(self._Zs)
        # the neurons a step can bring to a hyperplane: 0.9 μ_j / ‖z_j‖ below the step's
        # bound (:meth:`_near`), found without a pass over all m
        reach = np.multiply(mu, 0.9)
        with np.errstate(divide="ignore", invalid="ignore"):
            np.divide(reach, self._znorm, out=reach)
        reach[~(self._znorm > 0)] = np.inf
        caps = self._caps()
        self._mr = _BelowLimit(reach, self.pat, np.arange(self.m), self._occupied, caps[0])
        # sliding neurons, by |a_j| / ‖z_j‖ at the start: ``a_j`` can change sign only once
        # ‖Φ_u − I‖ reaches that ratio (see :meth:`_flips`)
        sl = self._sliding_of(self.pat)[0]
        ratio = np.abs(self._Zs[sl, self.d]) / np.maximum(self._znorm[sl], np.finfo(float).tiny)
        occ = self._occupied
        self._sl = _BelowLimit(ratio, self.pat[sl], sl, occ[tab.nfree[occ] > 0], caps[1])

    def _caps(self) -> tuple[float, float]:
        """Starting caps of :meth:`_margins`' selections: twice the largest limit the last
        solver asked for (0 at the first start)."""
        old = self.__dict__.get("_mr"), self.__dict__.get("_sl")
        return tuple(0.0 if o is None else 2.0 * o.asked for o in old)

    def _exact_margins(self, W: Array, pat: NDArray[np.intp]) -> Array:
        """``min_k |<w_j, x̂_k>|`` over the hyperplanes bounding each neuron's face (``u_k ≠ 0``),
        and ``‖w_j‖`` on 1-dimensional faces (distance to 0)."""
        tab = self.table
        dist = np.abs(W @ self.X.T) / self.xnorm
        dist[tab.U[pat] == 0] = np.inf
        mu = np.min(dist, axis=1, initial=np.inf)
        on_ray = tab.dim[pat] == 1
        mu[on_ray] = np.minimum(mu[on_ray], np.linalg.norm(W[on_ray], axis=1))
        return mu

    def _near(self, bound: Array) -> NDArray[np.intp]:
        """Neurons with ``bound[u_j] ‖z_j‖ >= 0.9 μ_j``: those whose face propagator moved
        them (``bound``, per face) as far as their margin (:meth:`_margins`), in index order.
        The candidates are those with ``0.9 μ_j / ‖z_j‖`` below the bound (with a relative
        slack of 1e-12, :class:`_BelowLimit`); the test itself is then applied to them, so
        the set is exactly the one of the direct test over all neurons."""
        js = self._mr.below(bound * (1 + 1e-12))
        return js[bound[self.pat[js]] * self._znorm[js] >= 0.9 * self._mu[js]]

    @blas.limited()
    def step(self, t_bound: float, snap_times: Array | None = None) -> None:
        """Advance to the next accepted point (at most ``t_bound``), applying events.

        Between events one DOP853 instance runs on the propagators ``Φ_p`` (from its start,
        where ``Φ = I``); an applied event, a face event, reaching ``t_bound`` or a propagator
        growing past ``1e3`` (conditioning of ``Φ^{-1}``) restarts it from the current neurons.

        ``snap_times`` (sorted, below ``t_bound``) are times at which the caller wants the
        state without restarting the solver there: those inside the step are evaluated on its
        dense output (:meth:`_dense_snapshots`) and left in :attr:`dense_snapshots` as
        ``(t, Z, pat)``; a step whose applied events start before such a time is cut at it,
        so that every snapshot is the state with exactly the events before it applied.  A
        snapshot the dense output cannot give to the tolerance (:meth:`_snapshot_errors`)
        makes the step be redone to end at it (:meth:`_snapshots_inaccurate`).

        BLAS runs on :data:`pwflow.blas.THREADS` threads (one) during the step
        (:func:`pwflow.blas.limited`: threaded reductions wait for busy cores and round by
        their number of threads).
        """
        self.dense_snapshots: list[tuple[float, Array, NDArray[np.intp]]] = []
        bound = self._snap_bound
        if bound is not None:
            if self.t < bound < t_bound:
                t_bound = bound
            else:
                self._snap_bound = None
        if self.rest is not None or t_bound - self.t <= 64 * np.spacing(max(abs(t_bound), 1.0)):
            # at rest (:meth:`check_rest`: the exact flow moves by less than the bound), or an
            # event cut landed within rounding of t_bound (no step can be taken; the state
            # moves by less than 64 ulp of time, far below the tolerance): the neurons stay
            if snap_times is not None:
                self.dense_snapshots = [(float(T), self.Z.copy(), self.pat)
                                        for T in snap_times if self.t < T < t_bound]
            self.t = float(t_bound)
            self._solver = None
            return
        s = self._solver
        if s is None or s.t_bound != t_bound or s.status != "running":
            self._start_solver(t_bound)
        solver, field_, P, q = self._solver, self._field, self._P, self.q
        fev0 = field_.nfev
        try:
            msg = solver.step()
        except (ValueError, np.linalg.LinAlgError) as err:
            if not self._phase.stiff:
                raise
            msg, solver.status = str(err), "failed"
        self.nfev += field_.nfev - fev0
        if solver.status == "failed":
            if self._phase.stiff:
                return self._leave_stiff(t_bound, rollback=True, snap_times=snap_times,
                                         wrong_guess=True)
            raise RuntimeError(f"DOP853 failed at t = {self.t!r}: {msg}")
        t0, t1 = self.t, solver.t
        passive = None if self._phase.stiff else self._passive
        if passive is not None:
            passive.add_step(solver.t_old, solver.h_previous, self._fun.take())
        restricted = self._phase.stiff or passive is not None
        Phi1_raw = self._fun.expand(solver.y) if restricted else solver.y.reshape(P, q, q)
        # the occupied faces' propagators are projected now; the others only where an event
        # brings a neuron in (:meth:`_advance`): nothing else reads them (O(|occupied|), not
        # O(P), where most faces met are empty: P ≈ 2,000 against ~600 occupied at d = 5)
        Phi1 = _project_rows(Phi1_raw, self._occupied)
        self._proj_move = np.zeros(P)
        self._Phi1_size = np.zeros(P)
        occ = self._occupied
        self._proj_move[occ] = np.sqrt(np.sum((Phi1[occ] - Phi1_raw[occ]) ** 2, axis=(1, 2)))
        self._Phi1_size[occ] = np.sqrt(np.sum(Phi1[occ] ** 2, axis=(1, 2)))
        self._check_lorentz(t1)
        self._later = {}
        # ‖dΦ_p/dt‖ within the step: the largest stage derivative (DOP853), or the larger of
        # the mean rate and the end derivative (Radau); with a safety factor 2 (``sweep``) it
        # bounds how far a neuron moved *inside* the step
        if self._phase.stiff:
            speed = np.sqrt(np.sum((Phi1 - self._Phi) ** 2, axis=(1, 2))) / (t1 - t0)
            f_end = self._fun.expand(solver.f, fill=np.zeros_like(Phi1))
            speed = np.maximum(speed, np.sqrt(np.sum(f_end**2, axis=(1, 2))))
        else:
            Kst = solver.K.reshape(solver.K.shape[0], -1, q, q)
            speed = np.sqrt(np.max(np.sum(Kst**2, axis=(2, 3)), axis=0))
            if passive is not None:  # the passive faces' speed is not read (no neurons)
                speed, speed_kept = np.zeros(P), speed
                speed[self._fun.keep] = speed_kept
        h = t1 - t0
        sweep = 2.0 * h * speed
        # only neurons whose face propagator moved them by their margin can have changed side
        move = np.sqrt(np.sum((Phi1 - np.eye(q)) ** 2, axis=(1, 2)))
        near = self._near(move + sweep)
        Z1n = _propagate(Phi1, self.pat[near], self._Zs[near])
        S1n = Z1n[:, : self.d] @ self.X.T  # <w_j, x_k> at the step end, near neurons
        cand = Candidates.concat([self._detect(Z1n, near, S1n), self._flips(Phi1)])
        excursion = self._suspect_excursions(near, Z1n, sweep, lambda: self._bend(Phi1, speed, h),
                                             S1n)
        regime1 = self._face_regime_at(Phi1)
        face_change = self._regime_changed(self._regime, regime1)
        if self._phase.stiff and (cand is not None or face_change
                                  or self._implicit_excursion(excursion, near, solver)):
            # events are located on DOP853's dense output only: redo this step there
            return self._leave_stiff(t_bound, rollback=True, snap_times=snap_times,
                                     wrong_guess=False)
        self.n_steps += 1
        self.h_next = solver.h_abs
        if self._phase.stiff:  # cleared above on the implicit solver's dense output
            excursion = (excursion[0][:0], excursion[1][:0])
        F = None
        if cand is not None or face_change or excursion[0].size:
            F = self._dense_coefficients(solver, Phi1)
        if excursion[0].size:
            cand = Candidates.concat([cand, self._excursions(excursion, Z1n, near, F)])
        if cand is not None:  # |r_k| on the step, for the batch bound (:meth:`_kink_rate`)
            self._r_step = np.maximum(np.abs(field_.residuals(self._Phi)),
                                      np.abs(field_.residuals(Phi1)))
        located = None if cand is None else self._locate_neuron_events(cand, F, t0, t1)
        t_face, exits = (np.inf, {}) if not face_change else self._face_events(F, t0, t1)
        self._t_face = t_face
        if located is None and not exits:
            if F is None and not self._phase.stiff and _inside(snap_times, t0, t1).size:
                F = self._dense_coefficients(solver)
            if self._snapshots_inaccurate(snap_times, t0, t1, F, solver):
                return self.step(t_bound, snap_times)
            self._dense_snapshots(snap_times, t0, t1, F, solver, self.pat)
            self._Phi, self._Zcur, self.t = Phi1, None, float(t1)
            self._fresh = False
            if not face_change:
                # a change seen on the step's end state but not on its dense output (rounding
                # at the very end) is kept pending: it is located in the next step
                self._set_regime(regime1)
            # conditioning of Φ^{-1} matters where neurons are (1e3); the propagators of empty
            # faces (needed when an event brings a neuron in) may grow: keep them finite (1e100)
            big = np.max(np.abs(Phi1[self._occupied]), initial=0.0) > 1e3
            if big or np.max(np.abs(Phi1)) > 1e100:
                self._solver = None
            self._idle_cuts = 0
            self._zeno_guard(t0, t1)
            self._quiet_step(field_.nfev - fev0, t1 - t0)
            return
        Z1 = None  # the neurons at the step end: materialised in _advance if the cut is t1
        t_cut = self._choose_cut(located, t_face, t0, t1)
        if not t0 <= t_cut <= t1:
            raise InvariantError(f"batch cut {t_cut!r} outside the step [{t0!r}, {t1!r}]")
        if self._snapshots_inaccurate(snap_times, t0, t_cut, F, solver):
            return self.step(t_bound, snap_times)
        pending = None if located is None else located.upto(t_cut)
        pat0 = self.pat
        logged = len(self.events)
        t_cut = self._advance(t_cut, t1, Phi1, Z1, F, field_, pending, exits, P)
        # a cut at a regime change that changes nothing, again and again, is a loop
        idle = t_cut == t_face and len(self.events) == logged
        self._idle_cuts = self._idle_cuts + 1 if idle else 0
        self._dense_snapshots(snap_times, t0, t_cut, F, solver, pat0, self._applied)
        if t_cut < t1:
            self.n_cut += 1
            # the next step restarts here: most of a step much longer than the events applied
            # would be located again and cut again, so it starts at twice this span
            self.h_next = min(self.h_next, max(2.0 * (t_cut - t0), 1e-3 * self.h_next))
        self._solver = None
        self._phase.eventful()
        self._zeno_guard(t0, t_cut)

    def check_rest(self, t_end: float, outputs: Array | None = None) -> bool:
        """Whether the run is at rest until ``t_end``; sets :attr:`rest` when it gets there.

        At rest means: the bound of :func:`pwflow.rest.rest_bound` on how far the exact flow
        from the current neurons can move by ``t_end`` (every solution of Eq. (2)) is at most
        ``FlowOptions.rest_budget`` times the largest neuron.  From then on :meth:`step` keeps
        the neurons as they are.  A cheap test on the outputs of the moments (``O(P)``, with a
        factor 2 of slack; ``outputs``: :meth:`outputs`, if the caller has them) comes first:
        it only spares the exact test, which alone decides; the bound itself is evaluated on
        the neurons.
        """
        tol = self.opt.rest_budget
        if self.rest is not None:
            return True
        if tol == 0 or self.loss.floor is None or self.opt.frozen_output or t_end <= self.t:
            return False
        span = t_end - self.t
        h = self.outputs() if outputs is None else outputs
        excess = float(np.mean(self.loss(h, self.y))) - self.loss.floor
        xf2 = float(np.sum(self.X**2))
        rho = float(np.sqrt(xf2 * 2 * self._curvature * max(excess, 0.0) / self.n))
        # the largest neuron at the solver start (it moves by less than 1% within a step here)
        znorm = getattr(self, "_znorm", np.zeros(0))
        hint = 1.01 * float(np.max(znorm, initial=0.0))
        if (np.expm1(min(rho * span, 700.0)) > 2 * tol and span * excess > (2 * tol * hint) ** 2
                and not self._may_settle(excess, znorm, 2 * tol, hint, xf2)):
            return False
        Z = self.Z
        bound = rest_bound(Z[:, : self.d], Z[:, self.d], self.X, self.y, self.loss, self.gamma,
                           self.t, t_end)
        if bound is not None and bound.sigma > 0:
            self._settle_sigma = bound.sigma
        if bound is None or bound.relative > tol:
            return False
        self.rest = bound
        self._solver = None
        return True

    def _may_settle(self, excess: float, znorm: Array, tol: float, scale: float,
                    xf2: float) -> bool:
        """Whether the bounds of :func:`pwflow.rest.settle_bound` can be below ``tol``
        (relative; ``scale``: the largest neuron; ``xf2 = ‖X‖_F²``): a cheap upper bound of
        ``s`` decides
        (``s² ≤ (J J^T)_kk ≤ ‖x_k‖² Σ_j ‖z_j‖²``, and at most twice the last ``s`` computed:
        it spares the ``O(m n²)`` evaluation while the loss is far from it; a wrong guess only
        delays the stop)."""
        mu = self.loss.pl_constant
        if mu is None or znorm.size == 0:
            return False
        s_up = float(np.min(self.xnorm)) * float(np.sqrt(np.sum(znorm**2))) * 1.01
        last = self.__dict__.get("_settle_sigma")
        if last is not None:
            s_up = min(s_up, 2.0 * last)
        if not s_up > 0:  # every neuron at 0: J J^T = 0, no bound
            return False
        excess = max(excess, 0.0)
        path = np.sqrt(2.0 * self.n * excess / mu) / s_up
        drive = (np.sqrt(xf2) * np.sqrt(2.0 * self._curvature * self.n * excess)
                 / (mu * s_up * s_up))
        return path <= tol * scale or drive <= tol

    # ------------------------------------------------------------------ stiff phase
    def _quiet_step(self, nfev: int, dt: float) -> None:
        """Book-keeping after an event-free step: switch between DOP853 and the stiff solver."""
        if self.opt.stiff_solver is None:
            return
        if not self._phase.stiff and self._occupied.size * self.q**2 > STIFF_MAX_DIM:
            return  # a dense Jacobian this large costs more than the steps it saves
        switch = self._phase.quiet(nfev, dt, self.h_next)
        if switch:
            self._solver = None
            if not self._phase.stiff:
                self.h_next = self._phase.h_explicit

    def _leave_stiff(self, t_bound: float, rollback: bool,
                     snap_times: Array | None = None, wrong_guess: bool = True) -> None:
        """Discard the implicit solver's last step and redo it with DOP853 (from ``self.t``);
        ``wrong_guess``: the implicit solver failed (not: its step met an event)."""
        self._phase.leave(wrong_guess)
        self.n_rollbacks += rollback
        self._solver = None
        self.h_next = self._phase.h_explicit
        self.step(t_bound, snap_times)

    def _snapshots_inaccurate(self, snap_times: Array | None, t0: float, t_end: float,
                              F: Array | None, solver) -> bool:
        """Whether a snapshot inside ``(t0, t_end)`` cannot be read from this step's dense
        output (:data:`SNAPSHOT_DEFECT`).  If so the step is discarded (nothing of it has been
        applied yet) and the next one ends at the first such time: the caller redoes it."""
        times = _inside(snap_times, t0, t_end)
        if times.size == 0:
            return False
        bad = np.flatnonzero(self._snapshot_errors(times, t0, F, solver) > SNAPSHOT_DEFECT)
        if bad.size == 0:
            return False
        self.n_steps -= 1
        self.n_snapshot_redos += 1
        self._snap_bound = float(times[bad[0]])
        self._solver = None
        return True

    def _snapshot_errors(self, times: Array, t0: float, F: Array | None, solver) -> Array:
        """The dense output's error at each of ``times``, in units of the solver's tolerance.

        The error ``e`` of an interpolant ``u`` with defect ``δ = u' − f(u)`` obeys
        ``e' = J e + δ``, ``e(t0) = 0``, so ``e(T) ≈ ∫_{t0}^{T} δ`` where ``J`` is small on
        the span (an overestimate where it is stiff and damps ``e``).  The integral is taken
        by 4-point Gauss–Legendre on ``[t0, T]``, on the occupied faces' propagators (the
        neurons' states are theirs applied to the neurons at the solver start), and measured
        as the solver measures its local error: RMS of ``e / (atol + rtol |Φ(T)|)``.
        """
        field_, q = self._field, self.q
        occ = field_.occupied
        if occ.size == 0:  # no neuron moves
            return np.zeros(times.size)
        gx, gw = _GAUSS
        nodes = t0 + (times[:, None] - t0) * (gx[None, :] + 1) / 2  # (k, g)
        at = np.concatenate([nodes.ravel(), times])
        h = solver.t - t0
        if self._phase.stiff:  # the implicit solver's interpolant, on its rows
            dense = solver.dense_output()
            rows = self._fun._occ
            Phi = dense(at).T.reshape(at.size, -1, q, q)[:, rows]
            dPhi = dense.derivative(at).T.reshape(at.size, -1, q, q)[:, rows]
        else:
            if F is None:
                F = self._dense_coefficients(solver)
            x = (at - t0) / h
            Phi = propagators_at(F, x, occ)
            dPhi = propagator_rates_at(F, x, occ) / h
        plan = self._field.rows_plan(occ)  # as the field integrated them (held faces)
        k, g = nodes.shape
        defect = np.empty_like(dPhi[: k * g])  # at the nodes only (Φ(T) sets the scale)
        with np.errstate(over="ignore", invalid="ignore"):
            for e in range(k * g):
                G = field_.fields_of(field_.residuals(Phi[e]), plan)
                defect[e] = dPhi[e] - field_.rates(Phi[e], G)
        integral = np.einsum("g,kg...->k...", gw, defect.reshape(k, g, *defect.shape[1:]))
        integral *= ((times - t0) / 2)[:, None, None, None]
        scale = self.opt.atol + self.opt.rtol * np.abs(Phi[k * g:])
        err = np.sqrt(np.mean((integral / scale) ** 2, axis=(1, 2, 3)))
        return np.where(np.isfinite(err), err, np.inf)

    def _dense_snapshots(self, snap_times: Array | None, t0: float, t_end: float,
                         F: Array | None, solver, pat: NDArray[np.intp],
                         applied: tuple | None = None) -> None:
        """States at the ``snap_times`` strictly inside ``(t0, t_end)`` from the step's dense
        output: ``Φ_p(t)`` (Lorentz-projected, as at a step end) applied to the neurons at the
        solver start, sliding neurons kept on their hyperplanes.

        ``applied`` (times, step fractions, neurons, new faces and states of the events of
        the step's batch, :meth:`_advance`): a neuron whose event precedes ``t`` is on its new
        face there, carried from its event state by that face's propagator, exactly as the
        batch carries it to the cut.
        """
        times = _inside(snap_times, t0, t_end)
        if times.size == 0:
            return
        P, q = self._P, self.q
        if self._phase.stiff:  # the implicit solver's own dense output (restricted faces)
            flat = np.atleast_2d(solver.dense_output()(times).T)
            Phis = np.stack([self._fun.expand(row) for row in flat])
        else:
            if F is None:
                F = self._dense_coefficients(solver)
            Phis = propagators_at(F, (times - t0) / (solver.t - t0))
        inv = None
        if applied is not None and np.any(applied[0] < times[-1]):
            # the events before the last time moved to integrated faces (_advance cuts at an
            # event that enters a face not integrated in the step)
            e = applied[0] < times[-1]
            ts, xs, js, pn, zs = (v[e] for v in applied)
            inv = np.einsum("eab,eb->ea",
                            lorentz_inverse(lorentz_project(propagator_pairs(F, xs, pn))), zs)
        for T, Phi in zip(times, lorentz_project(Phis)):
            Z = _propagate(Phi, pat, self._Zs)
            pat_T = pat
            if inv is not None and np.any(ts < T):
                e = _last_per_neuron(js, np.flatnonzero(ts < T))
                pat_T = pat.copy()
                pat_T[js[e]] = pn[e]
                Z[js[e]] = np.einsum("eab,eb->ea", Phi[pn[e]], inv[e])
            self._project_sliding(Z, pat_T)
            self.dense_snapshots.append((float(T), Z, pat_T))

    def _dense_coefficients(self, solver, Phi1: Array | None = None) -> Array:
        """The step's dense output as ``(8, P, q, q)`` (:func:`stack_coefficients`).  With
        passive faces (:mod:`pwflow.replay`) their rows are ``Φ = I`` until an event enters
        one (:meth:`_enter`); ``Phi1``: the step's end propagators, where the replay writes
        too."""
        passive = None if self._phase.stiff else self._passive
        if passive is None:
            return stack_coefficients(solver.dense_output(), self._P, self.q)
        fun, P, q = self._fun, self._P, self.q
        Fk = stack_coefficients(solver.dense_output(), fun.P, q)
        # np.empty and two fills, not np.zeros: a fresh zeroed block of this size (7 MB at
        # d = 5, P ≈ 3 000) is mapped anew and page-faulted at every step (0.7 ms against 0.3)
        F = np.empty((Fk.shape[0], P, q, q))
        F[0] = np.eye(q)
        F[1:] = 0.0
        F[:, fun.keep] = Fk
        if Phi1 is not None:
            passive.bind(F, Phi1, fun.take())
        return F

    def _enter(self, faces: NDArray[np.intp]) -> None:
        """Replay the passive faces among ``faces`` (those a batch's events enter) on this
        step (:meth:`PassiveFaces.fill`); a face whose replay fails its error estimate is
        treated as not integrated from then on (the event entering it cuts the step)."""
        passive = None if self._phase.stiff else self.__dict__.get("_passive")
        if passive is None:
            return
        failed = passive.fill(faces)
        self._integrated[failed] = False

    # ------------------------------------------------------------------ invariants
    def _check_lorentz(self, t: float) -> None:
        """How far the Lorentz projection moved the occupied propagators (it enforces Lemma 1
        by construction, so its size is what the integrator got wrong): bounded by the
        tolerance, else :class:`InvariantError`."""
        occ = self._occupied
        if occ.size == 0:
            return
        rel = self._proj_move[occ] / np.maximum(self._Phi1_size[occ], 1.0)
        i = int(np.argmax(rel))
        self.max_lorentz_correction = max(self.max_lorentz_correction, float(rel[i]))
        if rel[i] > self._tol_lorentz:
            raise InvariantError(
                f"Lemma 1: the Lorentz projection of face {int(occ[i])}'s propagator moved it by "
                f"{rel[i]:.3g} (relative) at t = {t:.17g}, beyond {self._tol_lorentz:.3g}")

    @property
    def _tol_lorentz(self) -> float:
        return max(1e4 * self.opt.rtol, self.opt.invariant_tol)

    # ------------------------------------------------------------------ events
    def _detect(self, Zn: Array, idx: NDArray, S: Array | None = None) -> "Candidates | None":
        """Candidates among the neurons ``idx`` (states ``Zn``, ``S = W Xᵀ`` if known) at the
        end of a step: pairs ``(j, k)`` that changed side, and neurons of 1-dimensional faces
        that reached ``w = 0``.
        """
        if idx.size == 0:
            return None
        tab = self.table
        d = self.d
        pat = self.pat[idx]
        # sign changes smaller than what the Lorentz projection moved the neuron are not
        # trusted (the located root lives on the unprojected dense output)
        slack = 2 * self._proj_move[pat] * self._znorm[idx]
        jj, kk = detect_crossings(Zn[:, :d], self.X, tab.U[pat], slack, S=S,
                                  xnorm=self.xnorm)
        on_ray = tab.dim[pat] == 1
        line = ~np.any(tab.U[pat[on_ray]] != 0, axis=1)  # u = 0: a line, not a half-line
        tiny = (ROUNDING_ULPS * np.finfo(float).eps * self._znorm[idx] + slack)[on_ray]
        zz = detect_zero_crossings(Zn[:, :d], tab.ray[pat[on_ray]], on_ray, line, tiny)
        if jj.size == 0 and zz.size == 0:
            return None
        nan = np.full(jj.size + zz.size, np.nan)
        return Candidates(
            neuron=np.concatenate([idx[jj], idx[zz]]),
            code=np.concatenate([kk, np.full(zz.size, ZERO)]),
            left=np.concatenate([self.xhat[kk],
                                 np.hstack([tab.ray[pat[zz]], np.zeros((zz.size, 1))])]),
            side=np.concatenate([tab.U[pat[jj], kk], np.ones(zz.size, np.int8)]).astype(np.int8),
            a_end=np.concatenate([Zn[jj, d], Zn[zz, d]]), lo=nan, hi=nan)

    def _flips(self, Phi1: Array) -> "Candidates | None":
        """Sliding neurons whose ``a_j`` changed sign in the step (possible branch points).

        Only neurons with ``|a_j| <= ‖Φ_u − I‖ ‖z_j‖`` (at the solver start, ``Φ`` at either end
        of the step; with a factor 2 against rounding) can have changed sign: the others are
        not evaluated (:class:`_BelowLimit`, :meth:`_margins`).
        """
        if self._sl.empty:
            return None
        eye = np.eye(self.q)
        reach = np.sqrt(np.sum((Phi1 - eye) ** 2, axis=(1, 2)))
        if not self._fresh:
            reach = np.maximum(reach, np.sqrt(np.sum((self._Phi - eye) ** 2, axis=(1, 2))))
        js = self._sl.below(2.0 * reach)
        if js.size == 0:
            return None
        d = self.d
        a1 = np.einsum("jb,jb->j", Phi1[self.pat[js], d, :], self._Zs[js])
        if self._fresh:
            a0 = self._Zs[js, d]
        else:
            a0 = np.einsum("jb,jb->j", self._Phi[self.pat[js], d, :], self._Zs[js])
        hit = detect_sign_flips(a0, a1, np.ones(js.size, bool))
        if hit.size == 0:
            return None
        e = np.zeros((hit.size, self.q))
        e[:, d] = 1.0
        nan = np.full(hit.size, np.nan)
        return Candidates(neuron=js[hit], code=np.full(hit.size, FLIP), left=e,
                          side=np.sign(a0[hit]).astype(np.int8), a_end=a1[hit], lo=nan, hi=nan)

    def _bend(self, Phi1: Array, speed: Array, h: float) -> Array:
        """``h²/8 · sup ‖d²Φ_p/dt²‖`` on the step (with a safety factor 2), per face.

        ``Φ'' = M' Φ + M Φ'``: ``‖M'‖`` from the face fields at both ends, ``‖M‖ ≤ ‖D_p‖``
        and ``‖Φ'‖ <=`` the largest stage derivative. A smooth ``s(t)`` stays within this of
        its chord, so it cannot reach the other side of a hyperplane when both ends are
        farther than that on the right side.
        """
        G0 = self._fields_at_start()
        G1 = self._field.face_fields(Phi1)
        self._fields_end = (Phi1, G1)
        g0, g1 = np.linalg.norm(G0, axis=1), np.linalg.norm(G1, axis=1)
        dG = np.linalg.norm(G1 - G0, axis=1) / h
        size = np.maximum(np.sqrt(np.sum(self._Phi**2, axis=(1, 2))),
                          np.sqrt(np.sum(Phi1**2, axis=(1, 2))))
        return 2.0 * h * h / 8.0 * (dG * size + np.maximum(g0, g1) * speed)

    def _fields_at_start(self) -> Array:
        """The face fields at the step start, ``face_fields(self._Phi)``, without evaluating
        them again where they are known bit for bit: the previous step's end (the same
        propagators), or, at a DOP853 start (``Φ = I``), the field's first evaluation, whose
        rates hold ``D_p`` as they are (``dΦ_p/dt = M_p`` at ``Φ = I``).  Only where every
        integrated face has a closed-form field (warm-started solves may round differently
        from one call to the next)."""
        field_ = self._field
        if field_.closed_form:
            end = self.__dict__.get("_fields_end")
            if end is not None and end[0] is self._Phi:
                return end[1]
            if self._fresh and not self._phase.stiff:
                d = self.d
                G = self._solver.K[0].reshape(-1, self.q, self.q)[:, :d, d].copy()
                if G.shape[0] != self._P:  # passive faces: no field in the solver's plan
                    G, kept = np.zeros((self._P, d)), G
                    G[self._fun.keep] = kept
                return G
        return field_.face_fields(self._Phi).copy()

    def _suspect_excursions(self, near: NDArray, Z1n: Array, sweep: Array,
                            bend: Callable[[], Array], S1n: Array | None = None):
        """Pairs ``(j, k)`` on their side at both ends of the step that may have left it inside.

        A neuron can cross a hyperplane and come back within one step (no sign change at the
        step end). That needs ``|<w_j, x̂_k>|`` at both ends below how far the step moved it,
        ``sweep_p ‖z_j‖`` (``sweep_p`` bounds ``‖Φ_p(t) − Φ_p(t_0)‖`` on the step), and at
        one end at least below how far ``s`` can bend away from its chord, ``bend_p ‖z_j‖``
        (``bend()``, :meth:`_bend`). Returns the positions in ``near`` and the data indices of
        the pairs (``S1n``: ``<w_j, x_k>`` at the step end if known).
        """
        if near.size == 0:
            return np.zeros(0, np.intp), np.zeros(0, np.intp)
        d = self.d
        pat = self.pat[near]
        zn = self._znorm[near]
        reach = (sweep[pat] * zn)[:, None]
        s1 = (Z1n[:, :d] @ self.X.T if S1n is None else S1n) / self.xnorm
        a1 = np.abs(s1)
        rows, kk = np.nonzero(a1 <= reach)  # few: both ends must be close
        U = self.table.U[pat[rows], kk]
        keep = (U != 0) & (np.sign(s1[rows, kk]) == U)
        rows, kk = rows[keep], kk[keep]
        if rows.size == 0:
            return rows, kk
        if self._fresh:  # the step starts at the solver start: Φ = I
            s0 = np.einsum("jd,jd->j", self._Zs[near[rows], :d], self.X[kk]) / self.xnorm[kk]
        else:
            Z0 = _propagate(self._Phi, pat[rows], self._Zs[near[rows]])
            s0 = np.einsum("jd,jd->j", Z0[:, :d], self.X[kk]) / self.xnorm[kk]
        a0 = np.abs(s0)
        keep = a0 <= reach[rows, 0]
        rows, kk, a0 = rows[keep], kk[keep], a0[keep]
        if rows.size:
            keep = np.minimum(a0, a1[rows, kk]) <= bend()[pat[rows]] * zn[rows]
            rows, kk = rows[keep], kk[keep]
        return rows, kk

    def _beyond(self, vals: Array, js: NDArray, kk: NDArray, scale: Array | None = None):
        """Where ``vals`` (``<x_k, w_j>`` on a grid, one row per pair) are on the wrong side of
        the pair's hyperplane by more than the dense output resolves (``rtol ‖z_j‖ ‖x_k‖``,
        and 64 ulp of the polynomial's ``scale``): shallower dips, e.g. of a neuron released
        from a hyperplane with zero normal velocity, are not events."""
        side = self.table.U[self.pat[js], kk].astype(float)
        tol = self.opt.rtol * self._znorm[js] * self.xnorm[kk]
        if scale is not None:
            tol = np.maximum(tol, 64 * np.finfo(float).eps * scale)
        return side[:, None] * vals < -tol[:, None]

    def _implicit_excursion(self, excursion, near: NDArray, solver) -> bool:
        """Whether an implicit step may hide an excursion (then DOP853 redoes it).

        The suspect pairs are scanned on 65 points of the implicit solver's dense output
        (tolerance: :meth:`_beyond`); more than 4096 suspects are not scanned.
        """
        rows, kk = excursion
        if rows.size == 0:
            return False
        if rows.size > 4096:
            return True
        fun = self._fun
        js = near[rows]
        where = np.full(self._P, -1)
        where[fun.keep] = np.arange(fun.P)
        p = where[self.pat[js]]
        if np.any(p < 0):
            return True
        q = self.q
        tg = np.linspace(solver.t_old, solver.t, 65)
        Phi = solver.dense_output()(tg).T.reshape(tg.size, fun.P, q, q)
        vals = np.einsum("gsab,sa,sb->sg", Phi[:, p], self.xhat[kk], self._Zs[js])
        return bool(np.any(self._beyond(vals, js, kk)))

    def _excursions(self, excursion, Z1n: Array, near: NDArray, F: Array) -> "Candidates | None":
        """The suspect pairs whose dense output does leave their side inside the step.

        Each suspect polynomial ``s(x) = <x_k, w_j(x)>`` is evaluated on 65 points of the step
        (``x = 0, 1/64, ..., 1``); a point on the wrong side beyond the dense output's accuracy
        (:meth:`_beyond`) brackets the first exit, located then like any event.
        """
        rows, kk = excursion
        js = near[rows]
        coef = pair_polynomials(F, self.pat[js], self.xhat[kk], self._Zs[js])
        grid, basis = scan_grid(coef.shape[1])
        wrong = self._beyond(coef @ basis, js, kk, np.max(np.abs(coef), axis=1))
        hit = np.flatnonzero(np.any(wrong, axis=1))
        self.n_excursions += hit.size
        if hit.size == 0:
            return None
        first = np.maximum(np.argmax(wrong[hit], axis=1), 1)
        return Candidates(neuron=js[hit], code=kk[hit], left=self.xhat[kk[hit]],
                          side=self.table.U[self.pat[js[hit]], kk[hit]].astype(np.int8),
                          a_end=Z1n[rows[hit], self.d], lo=grid[first - 1], hi=grid[first])

    def _locate_neuron_events(self, cand: Candidates, F: Array, t0: float,
                              t1: float) -> "Located | None":
        """Locate the candidates' first events in the step; one event per neuron (its
        earliest; simultaneous ones merged), the neuron's next one noted in ``self._later``."""
        self._later = {}
        coef = pair_polynomials(F, self.pat[cand.neuron], cand.left, self._Zs[cand.neuron])
        lo, hi = cand.lo.copy(), cand.hi.copy()
        observed = np.zeros(cand.neuron.size, np.int8)
        scan = np.isnan(lo)
        if np.any(scan):
            lo[scan], hi[scan], observed[scan] = first_exit_brackets(coef[scan], cand.side[scan])
        keep = ~np.isnan(lo)
        if not np.any(keep):
            return None
        coef, lo, hi, observed = coef[keep], lo[keep], hi[keep], observed[keep]
        neurons, a_end, code = cand.neuron[keep], cand.a_end[keep], cand.code[keep]
        x, res = locate_roots(coef, lo, hi)
        ds = nested_derivative(coef, x) / (t1 - t0)
        tt = t0 + x * (t1 - t0)
        rate = np.where(code >= 0, self._kink_rate(a_end, ds, np.maximum(code, 0)), 0.0)
        located, self._later = Located.group(neurons, tt, x, code, rate, np.abs(res), observed,
                                             np.sign(a_end))
        return located

    def _set_regime(self, regime: tuple[NDArray[np.int8], NDArray[np.int8]]) -> None:
        """The regime the face events compare with, and the ``r_k`` it has resolved to 0 or
        not (each held so within a factor :data:`RESOLUTION_HYSTERESIS` of its resolution,
        both ways: a Schmitt trigger).  A residual at its resolution changes the fixed part
        of every sliding face's field, and with it the free slopes; without the hysteresis
        on every ``r_k`` (not only the watched ones) it flickered across the threshold
        between a step's start and its dense output, and each flicker was a face event:
        5 360 enter/leave pairs in ``t ∈ [98.2, 98.6]``, d = 4, n = 4, near a global
        minimum (``docs/integrator.md``)."""
        self._regime = regime
        rs = regime[1]
        self._held_zero = (self._regime_watched & (rs == 0) if rs.shape == (self.n,)
                           else np.zeros(self.n, dtype=bool))  # (0,): nothing watched
        r = self._resolved_last
        self._held_live = None
        if r is not None and r.shape == (self.n,):
            self._held_zero = self._held_zero | (r == 0)
            self._held_live = r != 0

    def _resolved_residuals(self, Phi: Array, raw: bool = False) -> tuple[Array, Array]:
        """``r_k`` with those below the integration's resolution set to 0.

        The outputs are known to ``rtol`` relative (the propagators' tolerance, and the
        Lorentz projection moves them by as much at every step), so ``r_k`` is uncertain by
        ``curvature_bound · rtol · max(|h_k|, |y_k|)``, and at least by the rounding of the
        outputs' terms (:meth:`_output_terms`); below that its sign is noise.  Near a
        global minimum (zero loss) every ``r_k`` gets there, and reading the regime of the
        sliding faces from noise made a face event of nearly every step (measured: 20 773
        BRANCH events between t = 300 and 1000 on three points, m = 200, λ = 0.1, at losses
        of 1e-23).  A resolved-to-zero ``r_k`` has no sign (no branch point is read from it)
        and gives its face no free-slope direction.  A watched ``r_k`` the current regime has
        resolved to 0 stays 0 up to :data:`RESOLUTION_HYSTERESIS` times the resolution.
        ``Phi`` may be a stack ``(T, P, q, q)`` (then the result is ``(T, n)``).  Returns
        the residuals and their resolution (zero with a frozen output: exact there);
        ``raw``: the residuals themselves, none set to 0.
        """
        if self.opt.frozen_output:
            r = self._field.residuals(Phi)
            r = np.broadcast_to(r, Phi.shape[:-3] + r.shape)
            return r, np.zeros_like(r)
        h = self._field.outputs(Phi)
        r = self.loss.derivative(h, self.y)
        tol = self._resolution(h)
        return (r if raw else np.where(np.abs(r) <= tol, 0.0, r)), tol

    def _resolution(self, h: Array) -> Array:
        """What the residuals at the outputs ``h`` (``(..., n)``) are known to
        (:meth:`_resolved_residuals`), with the hysteresis of the current regime."""
        c = self._curvature
        tol = c * self.opt.rtol * np.maximum(np.abs(h), np.abs(self.y))
        # and never below the rounding of the outputs' terms (an output exactly 0 in exact
        # arithmetic, every neuron inactive or on the hyperplane, with y_k = 0: its noise,
        # ~20 ulp of the terms, read as signs of r_k made a branch point of every step, Zeno
        # at t ~ 1e-12)
        tol = np.maximum(tol, c * OUTPUT_ROUNDING * self._output_terms())
        if self._held_zero is not None and self._held_zero.shape == tol.shape[-1:]:
            tol = np.where(self._held_zero, RESOLUTION_HYSTERESIS * tol, tol)
        if self._held_live is not None and self._held_live.shape == tol.shape[-1:]:
            tol = np.where(self._held_live, tol / RESOLUTION_HYSTERESIS, tol)
        return tol

    def _velocity_resolution(self, r: Array, r_tol: Array) -> Array:
        """What the normal velocities ``<D, x_k>`` of every face are known to, ``(..., n)``:
        the rounding of their terms, :data:`~pwflow.filippov.VELOCITY_RTOL` ``Σ_l |r_l| ‖x_l‖
        ‖x_k‖ / n``, and what the residuals' resolution ``r_tol`` leaves of them, ``Σ_l
        r_tol_l |<x_l, x_k>| / n`` (every slope is at most 1).
        :func:`~pwflow.filippov.slope_codes` reads a slope as beyond its bound only past it
        (``docs/integrator.md``, "A slope at its bound to resolution")."""
        mag = np.sum(np.abs(r) * self.xnorm, axis=-1) / self.n  # bounds every term of D
        rounding = VELOCITY_RTOL * mag[..., None] * self.xnorm
        return np.maximum(rounding, (r_tol @ self._abs_gram()) / self.n)

    def _abs_gram(self) -> Array:
        """``|<x_i, x_k>|``, ``(n, n)``, computed once."""
        gram = self.__dict__.get("_gram_abs")
        if gram is None:
            gram = self._gram_abs = np.abs(self.X @ self.X.T)
        return gram

    def _output_terms(self) -> Array:
        """Per data point, ``½ Σ_j ‖z_j‖² ‖x_k‖ ≥ Σ_j |a_j| ‖w_j‖ ‖x_k‖`` at the solver start:
        the size of the terms the outputs are sums of, which their rounding scales with (an
        output exactly 0 carries that rounding, not one relative to itself)."""
        cached = self.__dict__.get("_terms_for")
        if cached is None or cached[0] is not self._Zs:
            size = 0.5 * float(np.sum(self._znorm ** 2)) * self.xnorm
            cached = self._terms_for = (self._Zs, size)
        return cached[1]

    def _face_regime_at(self, Phi: Array, raw: bool = False
                        ) -> tuple[NDArray[np.int8], NDArray[np.int8]]:
        """Regime of every sliding slope: ``(P, n)`` codes, 0 where the neuron stays on the
        hyperplane ``k`` (or ``k`` is not free), +1 / −1 where the slope is at (beyond) its upper
        / lower bound; and the signs of the ``r_k`` on the watched hyperplanes.

        One free slope: the side of ``[γ, 1]`` where the unclipped ``η*`` lies (exact).
        Several: from the unique minimal-norm ``D`` (:meth:`_several_slopes_regime`).  Only
        occupied faces with free slopes count.  A change of either between two times is a
        face event (:meth:`_face_events`).

        ``Phi`` may be a stack ``(T, P, q, q)`` of propagators at ``T`` times: the codes are
        then ``(T, P, n)`` and the signs ``(T, n)``, each row the same numbers as a call with
        that row alone (the one-slope case in one vectorised pass, the general one row by row).
        ``raw``: read from the residuals themselves, not resolved (:meth:`_start_solver`).
        """
        tab = self.table
        faces = self._regime_faces
        if raw:
            r, r_tol = self._resolved_residuals(Phi, raw=True)
        else:
            r, r_tol = self._resolved_residuals(Phi)
            self._resolved_last = r if r.ndim == 1 else None
        lead = r.shape[:-1]
        codes = np.zeros(lead + (self._P, self.n), dtype=np.int8)
        if faces.size == 0:
            return codes, np.zeros(lead + (0,), np.int8)
        free, watched = self._regime_free, self._regime_watched
        general = np.ones(lead, dtype=bool)
        if self._regime_plan is not None:  # one free slope each: the side of η* (fast path)
            G, est = tab.single_fields(self._regime_plan, r)
            undecided = np.isnan(est)  # r_k = 0 (resolved): no η*, read from D
            plan = self._regime_plan
            v = np.einsum("...ij,ij->...i", G[..., plan.one, :], plan.xk)  # <D, x_k>, clipped η
            vres = self._velocity_resolution(r, r_tol)
            code1 = slope_codes(est, v, vres[..., plan.k], self.gamma)
            if np.any(undecided):
                code1 = np.where(undecided, self._departures(G, vres), code1)
            codes[..., faces, :] = np.where(free, code1[..., :, None], 0)
            general[...] = False
        for i in (np.ndindex(*lead) if np.any(general) else ()):
            if not general[i]:
                continue
            codes[i + (faces,)] = np.where(
                free, self._several_slopes_regime(r[i], self._velocity_resolution(r[i], r_tol[i])),
                0)
        return codes, np.where(watched, np.sign(r), 0).astype(np.int8)

    def _several_slopes_regime(self, r: Array, vres: Array) -> NDArray[np.int8]:
        """Regime codes ``(len(faces), n)`` of the watched faces for one ``r``, in general:
        one free slope by ``η*``; several from the unique minimal-norm ``D`` — a hyperplane
        with ``<D, x_k> ≠ 0`` beyond its resolution ``vres`` (:meth:`_velocity_resolution`,
        shape ``(n,)``) has its slope at a bound (KKT), the one its slope is nearer to;
        reading the departure from ``D`` also holds where parallel data points make the
        slopes non-unique."""
        G, eta, eta_star = self.table.minimal_norm(self._regime_faces, r)
        one = ~np.isnan(eta_star)
        v = G @ self.X.T  # <D, x_k>
        # one free slope: the side of η*, where the clipped slope's velocity is resolved
        # (the caller keeps the free hyperplane's column)
        code1 = slope_codes(eta_star[:, None], v, vres, self.gamma)
        upper = np.abs(eta - 1.0) <= np.abs(eta - self.gamma)  # which bound (not sign(v): noise)
        codem = np.where(np.abs(v) > vres, np.where(upper, 1, -1), 0)
        return np.where(one[:, None], code1, codem).astype(np.int8)

    def _departures(self, G: Array, vres: Array) -> NDArray[np.int8]:
        """:meth:`_several_slopes_regime`'s code of the free slope of each one-slope face
        whose ``r_k`` is 0 (no ``η*``), for the fields ``G`` (``(..., F, d)``, from
        :meth:`PatternTable.single_fields`) and the velocities' resolution ``vres``
        (``(..., n)``, :meth:`_velocity_resolution`), every time at once: ``z = 0`` there, so
        ``η`` is the middle of ``[γ, 1]`` and the code is whether ``<D, x_k>`` is beyond its
        resolution (the same operations, row by row, as that method)."""
        plan = self._regime_plan
        k = plan.k
        v = (G @ self.X.T)[..., np.arange(k.size), k]  # <D, x_k> on each face's free k
        tol = vres[..., k]
        mid = 0.5 * (self.gamma + 1.0)  # single_slope's η where z = 0
        upper = abs(mid - 1.0) <= abs(mid - self.gamma)
        return np.where(np.abs(v) > tol, 1 if upper else -1, 0)

    @staticmethod
    def _regime_changed(a, b) -> bool:
        return bool(np.any(a[0] != b[0]) or np.any(a[1] != b[1]))

    #: levels of the bisection evaluated at once by :meth:`_face_events` (2⁴ − 1 times; on
    #: three points, m = 2·10⁵, 3, 4, 5, 6 and 7 took 3.9, 3.3, 3.6, 4.1 and 5.2 s for its 645
    #: searches, one level at a time 8.2 s)
    FACE_SEARCH_LEVELS = 4

    #: chained events (:meth:`_chained_batch`): a neuron that a step's batch moves into an
    #: open cell may have further events in the same batch, located on that cell's dense
    #: output.  False: the cut stays before every switched neuron's next event located on
    #: its old face (the earlier rule; kept for comparisons)
    CHAIN_EVENTS = True

    #: from d = REPLAY_MIN_DIM on, DOP853 integrates only the occupied faces where at least
    #: REPLAY_PASSIVE integrated faces are empty; those are replayed from the stored stage
    #: residuals when an event enters one (:mod:`pwflow.replay`).  ``None``: every integrated
    #: face in DOP853's state.  At d = 5, n = 20 the faces met grow to ~1 600 by t = 1
    #: against ~640 occupied.  d = 2 and d = 3 keep the full state (their logs unchanged;
    #: d = 3, n = 8, m = 1000, t = 100 measured 1.13x with it, not verified further)
    REPLAY_PASSIVE: int | None = 64
    REPLAY_MIN_DIM = 4

    def _face_events(self, F: Array, t0: float, t1: float) -> tuple[float, dict]:
        """Earliest time in ``(t0, t1]`` where an occupied sliding face changes regime
        (bisection on the dense output, to 4 ulp), and what changed: ``{face: {k: upper}}``
        for slopes reaching a bound (``upper``: the bound 1), ``{face: {}}`` for a face where
        only a sign of ``r_k`` changed (a possible branch point).

        The bisection is the sequential one (:func:`_bisect`); its midpoints are evaluated
        :attr:`FACE_SEARCH_LEVELS` levels at a time, every midpoint it may visit in those
        levels in one vectorised call of :meth:`_face_regime_at` (about 11 calls instead of
        42), so the time found is the sequential bisection's, bit for bit.
        """
        h = t1 - t0
        r0 = self._regime

        def regime(ts: list[float]):
            return self._face_regime_at(propagators_at(F, (np.array(ts) - t0) / h, rowwise=True))

        def changed_at(ts: list[float]) -> NDArray[np.bool_]:
            codes, rsign = regime(ts)
            new = np.any(codes != r0[0], axis=(1, 2))
            if rsign.shape[1:] == r0[1].shape:
                new |= np.any(rsign != r0[1], axis=1)
            return new

        # several free slopes are solved one time at a time: evaluating ahead would only add work
        levels = self.FACE_SEARCH_LEVELS if self._regime_plan is not None else 1
        hi = _bisect_batched(t0, t1, changed_at, levels)
        codes, rsign = (v[0] for v in regime([hi]))
        self._rsign_at = (hi, rsign, self._field.residuals(propagators_at(F, (hi - t0) / h)),
                          self._regime_watched.copy())
        exits: dict = {}
        for p, k in zip(*np.nonzero((codes != r0[0]) & (codes != 0))):
            exits.setdefault(int(p), {})[int(k)] = bool(codes[p, k] > 0)
        if rsign.shape == r0[1].shape and np.any(rsign != r0[1]):
            ks = np.flatnonzero(rsign != r0[1])
            for p in np.flatnonzero(np.any(self.table.U[: self._P][:, ks] == 0, axis=1)):
                if np.any(self.pat == p):
                    exits.setdefault(int(p), {})
        return hi, exits

    def _choose_cut(self, located: "Located | None", t_face: float, t0: float, t1: float) -> float:
        """Latest admissible cut for the located events (:func:`pwflow.batch.choose_cut`);
        never past a face event or a second event of a neuron switched in this step."""
        # with chained events the switched neurons' next events are found on their new
        # faces (:meth:`_chained_batch`), which applies the rule to the others
        later = np.inf if self.CHAIN_EVENTS else min(self._later.values(), default=np.inf)
        limit = min(t1, t_face, later)
        if located is None:
            return limit
        if t_face <= located.t[0]:
            return t_face
        return choose_cut(located.t, self._cut_coefficients(located.rate), t0, limit, later,
                          self.opt.batch_budget)

    def _kink_rate(self, a: Array, ds: Array, k: NDArray[np.intp]) -> Array:
        """What an event of a neuron (output weight ``a``, ``ds = d<w, x_k>/dt``) reaching the
        hyperplane ``k`` does to the outputs per unit time after it, weighted by ``‖x_i‖``
        (the batch bound's ``rate``, :func:`pwflow.batch.cut_coefficients`): its term's
        slope at ``x_k`` changes, ``(1 − γ) |a ṡ|`` at ``x_k``; and the neuron itself moves
        with its new face's field, which differs by ``(1 − γ) r_k x_k / n``, so ``a w``
        departs from the old face's at ``(1 − γ) a² |r_k| |<x_i, x_k>| / n`` at every
        ``x_i`` (``|r_k|``: the larger at the step's ends).  Each weighted by ``‖x_i‖``
        and summed; the common factor ``1 − γ`` is in the coefficients."""
        xx = self.__dict__.get("_xx_weight")
        if xx is None:  # Σ_i |<x_i, x_k>| ‖x_i‖ per k
            xx = self._xx_weight = self._abs_gram() @ self.xnorm
        return np.abs(a * ds) * self.xnorm[k] + a * a * self._r_step[k] * xx[k] / self.n

    def _cut_coefficients(self, rate: Array) -> Array:
        """The batch bound's coefficients of events with kink rates ``rate``
        (:func:`pwflow.batch.cut_coefficients`), with the margin ``max(1, max_k ‖x_k‖)``."""
        return cut_coefficients(rate, self.gamma, self._curvature, self.n,
                                max(1.0, float(np.max(self.xnorm))))

    # ------------------------------------------------------------------ apply
    def _classify_batch(self, evs: Pending, F: Array, field_: CollectiveField,
                        ps: NDArray[np.intp] | None = None, vs: Array | None = None) -> Batch:
        """States at the event times and where each neuron goes, for a batch of events.

        ``ps``, ``vs``: the face each event is met on and the vector its propagator carries
        (``z = Φ_p(x) v``); by default the neuron's face and state at the solver start (a
        chained event, :meth:`_chained_batch`, is met on the face of its previous event).

        Every decision is :mod:`pwflow.filippov`'s: one hyperplane reached from an open cell
        goes through :func:`~pwflow.filippov.select_single` in one vectorised pass; events on
        lower-dimensional faces, several hyperplanes at once and branch points go through
        :func:`~pwflow.filippov.select` one by one.  No side effects except registering new
        faces.
        """
        d, n, g = self.d, self.n, self.gamma
        tab = self.table
        E = len(evs)
        js, xs = evs.neuron, evs.x
        ps = self.pat[js] if ps is None else ps
        # the states: each event's own face's propagator (a small batch takes it from the
        # product over the occupied faces and its own, whose rounding the logs were fixed on)
        occ = field_.occupied
        if E <= self.INTERPOLATE_AFTER:
            need = np.union1d(occ, ps)
            Phis = propagators_at(F, xs, need)  # (E, |need|, q, q)
            zs = np.einsum("eab,eb->ea",
                           lorentz_project(Phis[np.arange(E), np.searchsorted(need, ps)]),
                           self._Zs[js] if vs is None else vs)
        else:  # a large (chained) batch: O(E) propagators
            zs = np.einsum("eab,eb->ea", lorentz_project(propagator_pairs(F, xs, ps)),
                           self._Zs[js] if vs is None else vs)
        # (E, n), from the step's output polynomial, and their resolution
        R, R_tol = self._residuals_at(F, field_, xs)
        if R.ndim == 1:
            R, R_tol = np.broadcast_to(R, (E, n)), np.broadcast_to(R_tol, (E, n))
        U_prev = tab.U[ps]
        U_new = U_prev.copy()
        zero, flip = evs.zero.copy(), evs.flip
        a_sign = np.where(flip, evs.a_after, np.sign(zs[:, d]))
        branch = np.zeros((E, n), dtype=bool)
        simple = ~zero & ~flip & (evs.n_ks == 1)
        simple &= np.all(U_prev != 0, axis=1)
        simple[simple] = ~self._has_parallel(evs.code[simple])
        if np.any(simple):
            i = np.flatnonzero(simple)
            k = evs.code[i]  # the one hyperplane reached (no further codes: not zero or flip)
            eta = tab.eta0[ps[i]].copy()
            eta[np.arange(i.size), k] = 0.0
            b = -np.einsum("en,en,nd->ed", eta, R[i], self.X) / n
            # an arrival tangent to the resolution enters (stays); within a factor
            # RESOLUTION_HYSTERESIS below what the regime reads as an exit (both ways: an
            # exit, where |v| just passed the resolution, is not an entry again at once)
            vtol = (self._velocity_resolution(R[i], R_tol[i])[np.arange(i.size), k]
                    / RESOLUTION_HYSTERESIS)
            side, _, br = select_single(a_sign[i], b, self.X[k], R[i, k], n, g, self.policy,
                                        w=zs[i, :d], vtol=vtol)
            # at a tangency the first-order rule can say "back to the previous side" while the
            # step showed the neuron leaving to the other side at once: follow the motion
            obs = evs.observed[i]
            override = (obs != 0) & (side == U_prev[i, k])
            side[override] = obs[override]
            U_new[i, k] = side
            branch[i, k] = br
        on_K: dict[int, NDArray[np.intp]] = {}  # hyperplanes select decided (implied ones too)
        for e in np.flatnonzero(~simple):
            ks = evs.ks(e)
            if zero[e]:
                U_new[e] = 0
                continue
            u_face = U_prev[e].copy()
            u_face[list(ks)] = 0
            sel = select(a_sign[e], u_face, self.X, R[e], g, policy=self.policy, w=zs[e, :d],
                         at_rest=bool(self._at_rest[js[e]]) and bool(flip[e]) and not ks)
            U_new[e] = u_face
            U_new[e, sel.K] = sel.signs
            branch[e, sel.K] = sel.branch
            on_K[int(e)] = sel.K
            zero[e] = self._at_origin(zs[e], U_new[e])
        for e in np.flatnonzero(zero):  # at w = 0: frozen there, or it departs at once
            branch[e] = False  # (what the rule said of the face it arrived on is moot)
            sel = self._from_origin(a_sign[e], R[e], arrived_on=U_prev[e])
            if sel is not None:
                U_new[e, sel.K] = sel.signs
                branch[e, sel.K] = sel.branch
        # place each neuron exactly on the hyperplanes it reached or stays on (changes ‖w‖²
        # only at second order in the located residual, so Lemma 1 is unaffected); w = 0: w := 0
        zs[zero, :d] = 0.0
        poly = evs.poly_residual
        xk_max = np.ones(E)
        rows_e, rows_k, rows_kind = [], [], []
        if np.any(simple):
            # one hyperplane from an open cell: it is the only one reached, one log row each
            xk_max[i] = self.xnorm[k]
            zs[i, :d] = self._project_face(zs[i, :d], k[:, None])
            rows_e.append(i)
            rows_k.append(k)
            rows_kind.append(np.where(branch[i, k], int(EventKind.BRANCH),
                                      transition(U_prev[i, k], U_new[i, k])))
        for e in np.flatnonzero(~simple):
            ks = evs.ks(e)
            if ks:
                xk_max[e] = np.max(self.xnorm[list(ks)])
            if zero[e]:
                br = np.flatnonzero(branch[e])  # a departure from w = 0 that is a branch point
                rows_e.append(np.full(br.size + 1, e)), rows_k.append(np.r_[-1, br])
                rows_kind.append(np.r_[int(EventKind.REACH_ZERO),
                                       np.full(br.size, int(EventKind.BRANCH))])
                continue
            reach = U_new[e] == 0
            if not flip[e]:
                reach[list(ks)] = True
            if np.any(reach):
                zs[e, :d] = self._project_face(zs[e:e + 1, :d], np.flatnonzero(reach)[None])[0]
            K = np.union1d(np.union1d(ks, np.flatnonzero(U_prev[e] == 0)), on_K[int(e)])
            K = K.astype(np.intp)
            codes = np.full(n, -1, dtype=np.int8)
            codes[K] = transition(U_prev[e, K], U_new[e, K])
            ks = np.flatnonzero((codes >= 0) | branch[e])
            rows_e.append(np.full(ks.size, e))
            rows_k.append(ks)
            rows_kind.append(np.where(branch[e, ks], int(EventKind.BRANCH), codes[ks]))
        zn = np.maximum(np.linalg.norm(zs, axis=1), 1e-300)
        resid = np.where(zero | flip, 0.0, poly / (xk_max * zn))
        one = np.flatnonzero(simple)
        p_new = tab.index_changed(U_new, ps, one, evs.code[one])
        tab.arrays()
        le = np.concatenate(rows_e).astype(np.intp)
        order = np.argsort(le, kind="stable")
        log = (le[order], np.concatenate(rows_k).astype(np.intp)[order],
               np.concatenate(rows_kind).astype(np.intp)[order])
        return Batch(ts=evs.t.copy(), xs=xs, js=js, ps=ps, p_new=p_new, zs=zs,
                     resid=resid, log=log)

    def _advance(self, t_cut, t1, Phi1, Z1, F, field_, pending, exits, P):
        tab = self.table
        h = t1 - self.t
        todo = None if pending is None else pending.upto(t_cut)
        B = None
        if todo is not None and len(todo):
            if self.CHAIN_EVENTS:
                B, t_cut = self._chained_batch(todo, F, field_, t_cut, h)
            else:
                B = self._classify_batch(todo, F, field_)
                self._enter(B.p_new)
        if B is not None and np.any(~self._integrated_at(B.p_new)):
            # an event entering a face not integrated in this step: cut there
            t_cut = min(t_cut, float(np.min(B.ts[~self._integrated_at(B.p_new)])))
        if t_cut < t1 and exits and t_cut < self._t_face:
            exits = {}
        # the cut is settled on the switched neurons alone; all m are materialised once, at it
        zi = i = None
        while True:
            xc = (t_cut - self.t) / h if h > 0 else 1.0
            # projected: the occupied faces (Phi1: already) and those the events enter
            rows = self._occupied if B is None else np.union1d(self._occupied,
                                                                B.p_new[B.p_new < P])
            Phic = _project_rows(Phi1 if t_cut == t1 else propagators_at(F, xc), rows,
                                 done=self._occupied if t_cut == t1 else None)
            if B is None:
                sel = np.zeros(0, dtype=np.intp)
                break
            sel = np.flatnonzero(B.ts <= t_cut)
            last = _last_per_neuron(B.js, sel)  # = sel unless events were chained
            pn = B.p_new[last]
            move = self._integrated_at(pn) & (B.ts[last] < t_cut)
            if not np.any(move):
                zi = None
                break
            i = np.flatnonzero(move)
            # the new face's propagator at each event time
            Phis_new = lorentz_project(propagator_pairs(F, B.xs[last[i]], pn[i]))
            zi = np.einsum("eab,ebc,ec->ea", Phic[pn[i]], lorentz_inverse(Phis_new),
                           B.zs[last[i]])
            U = tab.U[pn[i]]
            s = np.sign(zi[:, : self.d] @ self.X.T)
            bad = np.any((U != 0) & (s != U), axis=1)
            if not np.any(bad):
                break
            # a switched neuron changed side again before the cut: cut at its event
            t_cut = float(np.min(B.ts[last[i[bad]]]))
            exits = {}
        if t_cut == t1:
            Zc = _propagate(Phi1, self.pat, self._Zs) if Z1 is None else Z1.copy()
        else:
            Zc = _propagate(Phic, self.pat, self._Zs)
        if sel.size:
            Zc[B.js[last]] = B.zs[last]
        if zi is not None:
            Zc[B.js[last[i]]] = zi
        new_pat = self.pat.copy()
        self._applied = None if B is None else (B.ts[sel], B.xs[sel], B.js[sel], B.p_new[sel],
                                                B.zs[sel])
        if B is not None:
            new_pat[B.js[last]] = B.p_new[last]
            moved = B.js[sel][B.p_new[sel] != B.ps[sel]]
            self._at_rest[moved] = False
            le, lk, lkind = B.log
            chosen = np.zeros(B.ts.size, dtype=bool)
            chosen[sel] = True
            keep = chosen[le]  # the log rows of the applied events (np.isin, without its sort)
            le, lk, lkind = le[keep], lk[keep], lkind[keep]
            bad = np.flatnonzero(B.resid[le] > self._tol_event)
            if bad.size:
                e = le[bad[0]]
                self._check_event_residual(float(B.ts[e]), int(B.js[e]), int(lk[bad[0]]),
                                           float(B.resid[e]))
            self._log_many(B.ts[le], B.js[le], lk, lkind, B.resid[le], B.ps[le], B.p_new[le])
        tab.arrays()
        if exits:
            hint = self._rsign_at
            # at the located regime change, the residuals the location saw (the same to
            # rounding, but a r_k that changed sign is zero there to rounding: its side must
            # be the one the location found)
            r_cut = hint[2] if hint is not None and hint[0] == t_cut else field_.residuals(Phic)
            self._leave_faces(exits, Zc, new_pat, r_cut, t_cut)
        # neurons on faces lie on its hyperplanes
        tab.arrays()
        self.t = float(t_cut)
        self._project_sliding(Zc, new_pat)
        self.Z = Zc
        self.pat = new_pat
        return t_cut

    #: batches of more events than this take the states at the event times from their own
    #: faces' propagators alone (:func:`~pwflow.dense.propagator_pairs`); the residuals come
    #: from the outputs' polynomial on the step (:meth:`_residuals_at`) for every batch
    INTERPOLATE_AFTER = 64
    #: the Zeno guard looks for one neuron's ``zeno_events`` events among the last
    #: ``ZENO_SPAN × zeno_events`` events of the run
    ZENO_SPAN = 4

    #: the share of ``FlowOptions.batch_budget`` a batch with chained events may use.  Such a
    #: batch spans many more events, and uses its budget where one without stopped far
    #: below it: on Stewart's data (m = 2000, t = 50) at the full budget its event times
    #: moved by up to 1e-6 relative from the reference path's, at 1/100 by 4e-8 (99.9 %
    #: within 8e-10), as close as before chaining
    CHAIN_BUDGET = 0.01

    def _residuals_at(self, F: Array, field_: CollectiveField,
                      xs: Array) -> tuple[Array, Array]:
        """``r_k`` at the step fractions ``xs``, ``(E, n)``, from the outputs' quadratic form
        on the step (:meth:`CollectiveField.output_polynomial`, computed once per step and
        field: products of ``q × q`` blocks, 64 per occupied face, then O(64 n) per event time),
        and what they are known to (:meth:`_resolution`; zero with a frozen output).

        The propagators are not Lorentz-projected there: on the dense output the projection
        moves the outputs by rounding only (2.5e-15 relative at most on random d = 5 data),
        and the residuals only decide sides (:mod:`pwflow.filippov`), never a state.
        """
        if field_.frozen_output:
            r = np.broadcast_to(field_.residuals(None), (xs.size, self.n))
            return r, np.zeros_like(r)
        cached = self.__dict__.get("_h_poly")
        if cached is None or cached[0] is not F or cached[1] is not field_:
            cached = self._h_poly = (F, field_, field_.output_polynomial(F))
        h = quadratic_form_at(cached[2], xs)
        return self.loss.derivative(h, self.y), self._resolution(h)

    def _chained_batch(self, todo: Pending, F: Array, field_: CollectiveField, t_cut: float,
                       h: float) -> tuple[Batch, float]:
        """The batch up to the cut with the further events of the neurons it moves into open
        cells, and the cut (never later than ``t_cut``).

        A neuron that an event moves into an open cell (a full-dimensional face integrated in
        the step) follows that cell's propagator from its event time; its next event in the
        step is located on that trajectory (:meth:`_next_on_face`) and classified like the
        first, which may move it into another open cell, and so on.  Every event found
        enters the batch bound (:func:`pwflow.batch.choose_cut`), which only moves the cut
        earlier.  A neuron moved elsewhere (a sliding face, ``w = 0``, a face not integrated)
        keeps the earlier rule: the cut stays before its next event located on the face it
        was met on.  Without chaining, a step's batch ended at the second event of any of its
        neurons (measured: most cuts on Stewart's data, where neurons cross hyperplanes in
        quick succession).
        """
        tab = self.table
        times, coeff = todo.t, self._cut_coefficients(todo.rate)
        later, hold = self._later, np.inf
        evs, ps, vs = todo, None, None
        parts = []
        while True:
            B = self._classify_batch(evs, F, field_, ps, vs)
            self._enter(B.p_new)
            parts.append(B)
            chain = (np.all(tab.U[B.p_new] != 0, axis=1) & self._integrated_at(B.p_new)
                     & (B.ts < t_cut) & ~evs.zero & ~evs.flip)
            if later:  # the earliest next event of the neurons not chained
                held = set(B.js[~chain].tolist()).intersection(later)
                hold = min([hold] + [later[j] for j in held])
            nxt, later, start, hold_new = self._next_on_face(B, np.flatnonzero(chain), F, h)
            hold = min(hold, hold_new)
            if nxt is not None:
                times = np.concatenate([times, nxt.t])
                coeff = np.concatenate([coeff, self._cut_coefficients(nxt.rate)])
            order = np.argsort(times, kind="stable")
            budget = self.opt.batch_budget * (1.0 if len(parts) == 1 and nxt is None
                                              else self.CHAIN_BUDGET)
            t_cut = choose_cut(times[order], coeff[order], self.t, t_cut, hold, budget)
            if nxt is None:
                break
            evs = nxt.upto(t_cut)
            if len(evs) == 0:
                break
            ps, vs = start[0][: len(evs)], start[1][: len(evs)]
        return _merge_batches(parts), t_cut

    def _next_on_face(self, B: Batch, rows: NDArray[np.intp], F: Array, h: float):
        """The first event after its batch event of each neuron ``B.js[rows]`` (moved into an
        open cell), on that cell's dense output: every hyperplane's ``s_k(x) = <x_k, w(x)>``
        with ``z(x) = Φ_p(x) Φ_p(x_e)^{-1} z_e``, scanned on the 65-point grid after ``x_e``
        (a point on the wrong side beyond the dense output's resolution, as
        :meth:`_beyond`, brackets the first exit) and located to rounding
        (:func:`pwflow.events.locate_roots`).

        Returns the events (:class:`pwflow.events.Located`, one per neuron, or None), the next
        ones (``{neuron: time}``), each event's face and start vector ``Φ_p(x_e)^{-1} z_e``
        (rows of the events), and a time the cut must stay below: just after ``t_e`` for a
        neuron seen back on the wrong side without a bracket (at once after its event).
        """
        if rows.size == 0:
            return None, {}, None, np.inf
        d, n = self.d, self.n
        js, pn, xe, ze = B.js[rows], B.p_new[rows], B.xs[rows], B.zs[rows]
        Phi_e = lorentz_project(propagator_pairs(F, xe, pn))
        v = np.einsum("eab,eb->ea", lorentz_inverse(Phi_e), ze)
        coef_z = np.einsum("ceab,eb->eca", F[:, pn], v)  # (E, n_coef, q): z(x) in nested form
        coef = (coef_z[:, :, :d] @ self.X.T).transpose(0, 2, 1).reshape(rows.size * n, -1)
        grid, basis = scan_grid(coef.shape[1])
        side = self.table.U[pn].reshape(-1).astype(float)
        e_of = np.repeat(np.arange(rows.size), n)
        k_of = np.tile(np.arange(n), rows.size)
        tol = np.maximum(self.opt.rtol * np.linalg.norm(ze, axis=1)[e_of] * self.xnorm[k_of],
                         64 * np.finfo(float).eps * np.max(np.abs(coef), axis=1))
        # |s(x) − s(x_e)| <= 2 Σ_{i>=1} |coef_i| on [0, 1] (nested form): the pairs that
        # cannot reach the wrong side are not scanned
        s_e = nested(coef, xe[e_of])
        near = np.flatnonzero(side * s_e - 2 * np.sum(np.abs(coef[:, 1:]), axis=1) < -tol)
        coef, side, e_of, k_of, tol = coef[near], side[near], e_of[near], k_of[near], tol[near]
        wrong = (side[:, None] * (coef @ basis) < -tol[:, None]) & (grid > xe[e_of, None])
        hit = np.flatnonzero(np.any(wrong, axis=1))
        if hit.size == 0:
            return None, {}, None, np.inf
        i1 = np.argmax(wrong[hit], axis=1)
        lo, hi = np.maximum(grid[i1 - 1], xe[e_of[hit]]), grid[i1]
        # a bracket needs the right side at its start, beyond the dense output's resolution:
        # else the neuron went back at once (a start within rounding of the hyperplane, e.g.
        # the event state itself, located the same event again at the same time, 51 378
        # times: collinear d = 4, r_k passing through 0 while the neuron grazes)
        ok = side[hit] * nested(coef[hit], lo) > tol[hit]
        hold = np.inf
        if not np.all(ok):
            t_back = self.t + xe[e_of[hit[~ok]]] * h
            hold = float(np.nextafter(np.min(t_back), np.inf))
        hit, lo, hi = hit[ok], lo[ok], hi[ok]
        if hit.size == 0:
            return None, {}, None, hold
        x, res = locate_roots(coef[hit], lo, hi)
        ds = nested_derivative(coef[hit], x) / h
        a = nested(coef_z[e_of[hit], :, d], x)
        k = k_of[hit]
        rate = self._kink_rate(a, ds, k)
        located, later = Located.group(js[e_of[hit]], self.t + x * h, x, k, rate, np.abs(res),
                                       np.zeros(hit.size, np.int8), np.sign(a))
        # each neuron once in ``rows``: its row by neuron
        by_j = np.argsort(js)
        r = by_j[np.searchsorted(js[by_j], located.neuron)]
        return located, later, (pn[r], v[r]), hold

    def _leave_faces(self, exits: dict, Z: Array, new_pat: NDArray, r: Array, t: float) -> None:
        """Neurons of faces whose sliding slopes reached a bound, or whose ``r_k`` changed sign.

        Each neuron is decided by :func:`pwflow.filippov.select` with ``exits`` (the
        hyperplanes whose slope reached a bound, left to the side of
        :func:`~pwflow.filippov.exit_side`); the others stay unless the rule says otherwise.
        """
        tab = self.table
        d = self.d
        self._left_at = (t, np.fromiter(exits, dtype=np.intp, count=len(exits)))
        self._project_leaving(self._left_at[1], Z, new_pat, t)
        for p, ex in exits.items():
            u_face = tab.U[p]
            js = np.flatnonzero(new_pat == p)
            # select depends on the neuron only through the sign of a_j (or, at a_j = 0, of
            # <w_j, D>) and at_rest: one solve per distinct pair, not per neuron
            decided: dict[tuple[float, bool], tuple] = {}
            for j in js:
                at_rest = bool(self._at_rest[j]) and not ex
                key = (float(np.sign(Z[j, d])), at_rest)
                if key[0] == 0.0 or key not in decided:
                    sel = select(Z[j, d], u_face, self.X, r, self.gamma, exits=ex,
                                 policy=self.policy, w=Z[j, :d], at_rest=at_rest)
                    u_new = u_face.copy()
                    u_new[sel.K] = sel.signs
                    decided[key] = (sel, tab.index(u_new), transition(u_face, u_new))
                sel, p_new, codes = decided[key]
                new_pat[j] = p_new
                for i, k in enumerate(sel.K):
                    if sel.branch[i]:
                        self._log(t, int(j), int(k), EventKind.BRANCH, 0.0, p, p_new)
                    elif codes[k] >= 0:
                        self._log(t, int(j), int(k), int(codes[k]), 0.0, p, p_new)

    def _project_leaving(self, faces: NDArray[np.intp], Z: Array, pat: NDArray, t: float) -> None:
        """Project the neurons of ``faces`` (those with exits) onto all of their hyperplanes.

        At the exit they are on them; those that leave depart at second order,
        ``<w, x_k> ∝ (t − t_e)²``, so a drift of the integration left in ``<w, x_k>`` would be
        read as a crossing back an instant later (an entry with the slope beyond its bound).
        """
        tab = self.table
        js = np.flatnonzero(np.isin(pat, faces))
        if js.size:
            self._project_onto(Z, js, np.take(tab.projectors(), pat[js], axis=0), pat[js], t)

    def _check_event_residual(self, t: float, j: int, k: int, resid: float) -> None:
        if resid > self._tol_event:
            raise InvariantError(
                f"event residual: neuron {j} at data point {k}, t = {t:.17g}: the located "
                f"|<w, x_k>| is {resid:.3g} relative to ‖z‖‖x_k‖, beyond {self._tol_event:.3g}")

    @property
    def _tol_event(self) -> float:
        return max(1e3 * self.opt.rtol, self.opt.invariant_tol)

    def _project_sliding(self, Z: Array, pat: NDArray) -> None:
        """Keep neurons of lower-dimensional faces exactly on their hyperplanes.

        The face fields keep ``<w, x_k>`` constant for ``k ∈ K`` (the minimal-norm element is
        tangent while the slopes are inside ``[γ, 1]``); the orthogonal projection onto
        ``{w : <w, x_k> = 0, k ∈ K}`` removes the tolerance-level drift and changes ``‖w‖²``
        only at second order.  The distance it removes is measured first: beyond the
        tolerance the field was not tangent (a neuron held on a hyperplane it should have
        left), and :class:`InvariantError` says so.
        """
        sliding, Pm = self._sliding_of(pat)
        if sliding.size == 0:
            return
        self._project_onto(Z, sliding, Pm, pat[sliding], self.t)
        # the neurons just projected (a solver start after a cut need not project them again)
        self._projected = (Z, pat)

    def _project_onto(self, Z: Array, js: NDArray[np.intp], Pm: Array, faces: NDArray[np.intp],
                      t: float) -> None:
        """Project the neurons ``js`` onto their faces' hyperplanes (``Pm``: the projectors onto
        the spans of the faces' ``x_K``, ``(s, d, d)``), measuring the distance removed first:
        beyond the sliding tolerance, :class:`InvariantError` names the neuron and ``t``."""
        d = self.d
        Zj = Z[js]  # gathered once (the rows' norms and their w)
        w = np.ascontiguousarray(Zj[:, :d])
        off = np.einsum("sij,sj->si", Pm, w)
        dist = _row_norms(off) / np.maximum(_row_norms(Zj), 1e-300)
        i = int(np.argmax(dist))
        self.max_sliding_residual = max(self.max_sliding_residual, float(dist[i]))
        if dist[i] > self._tol_sliding:
            K = np.flatnonzero(self.table.U[faces[i]] == 0).tolist()
            raise InvariantError(
                f"sliding residual: neuron {int(js[i])} on the hyperplanes {K} drifted off "
                f"them by {dist[i]:.3g} (relative to ‖z‖) by t = {t:.17g}, beyond "
                f"{self._tol_sliding:.3g}")
        w -= off
        Z[js, :d] = w
        self._moments_cache = None

    def _sliding_of(self, pat: NDArray[np.intp]) -> tuple[NDArray[np.intp], Array]:
        """The neurons of lower-dimensional faces under ``pat`` and the projectors onto the
        spans of their faces' ``x_K``, ``(s, d, d)``.  The last answer is kept: a cut's new
        faces are projected at the cut and again at the solver start (the same array, never
        written to once installed as :attr:`pat`)."""
        tab = self.table
        cached = self.__dict__.get("_sliding_cache")
        if cached is not None and cached[0] is pat and cached[1] == len(tab):
            return cached[2], cached[3]
        sliding = np.flatnonzero(tab.nfree[pat] > 0)
        Pm = np.take(tab.projectors(), pat[sliding], axis=0)  # (s, d, d): onto span(x_K)
        self._sliding_cache = (pat, len(tab), sliding, Pm)
        return sliding, Pm

    @property
    def _tol_sliding(self) -> float:
        # Φ_p carries a sliding neuron over the whole life of a solver (many steps, each
        # within rtol): 1e4 rtol; a field that is not tangent drifts at first order, far more
        return max(1e4 * self.opt.rtol, self.opt.invariant_tol)


    def _zeno_guard(self, t0: float, t1: float) -> None:
        win = self.opt.zeno_window * (1 + abs(t1))
        if t1 - t0 <= 1e3 * np.spacing(1 + abs(t1)):
            self._tiny_steps += 1
        else:
            self._tiny_steps = 0
        N = int(self.opt.zeno_events)
        keep = self.ZENO_SPAN * N
        if len(self._recent) > keep:
            self._recent = self._recent[-keep:]
        if len(self._recent) >= N and self._recent[-1][0] - self._recent[-N][0] <= win:
            # N events within the window (of any neurons): a neuron with N of the last
            # ZENO_SPAN N events among them chatters (neurons that take turns too: two
            # neurons leaving and re-entering one sliding face 1e-12 apart each, near-parallel
            # data at angle 5e-11, evaded a test of N consecutive events of one neuron)
            recent = np.array(self._recent)
            js, counts = np.unique(recent[:, 1].astype(np.intp), return_counts=True)
            j = int(js[np.argmax(counts)])
            mine = recent[recent[:, 1] == j]
            if mine.shape[0] >= N and mine[-1, 0] - mine[-N, 0] <= win:
                raise ZenoError(
                    f"neuron {j} had {N} events within {mine[-1, 0] - mine[-N, 0]:.3g} time "
                    f"units ending at t = {mine[-1, 0]:.17g}, the last at data point "
                    f"{int(mine[-1, 2])} (chattering)"
                )
        if self._idle_cuts >= N:
            raise ZenoError(
                f"{N} consecutive steps cut at a sliding face's regime change that changed "
                f"nothing, ending at t = {t1:.17g} (the change is found again after each cut)"
            )
        if self._tiny_steps >= N:
            j, k = (self._recent[-1][1], self._recent[-1][2]) if self._recent else (-1, -1)
            raise ZenoError(
                f"{N} consecutive steps of at most 1000 ulp ending at t = {t1:.17g}; last "
                f"event: neuron {j}, data point {k}"
            )


