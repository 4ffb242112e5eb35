"""The stepper: one accepted step of the hybrid flow, with its events (:class:`HybridFlow`).

Inside a mode (every neuron's face fixed) the flow is smooth and linear per face
(:mod:`pwflow.vector_field`); it is integrated with DOP853 (:mod:`pwflow.rk`, order 8, dense
output of order 7, :mod:`pwflow.dense`) on the per-face propagators, whose size does not
grow with the width ``m``.  One step (:meth:`HybridFlow.step`), and the module that owns
each part:

1. advance the propagators: DOP853, or Radau on quiet stretches (:mod:`pwflow.solvers`);
2. detect the neurons that changed side, the excursions inside the step and the sliding
   neurons whose ``a_j`` changed sign, and locate them on the dense output to rounding
   (:mod:`pwflow.detection`, on :mod:`pwflow.events`); find the first time a sliding face's
   slopes reach a bound or a watched ``r_k`` changes sign (:mod:`pwflow.regime`);
3. decide at each event where the neuron goes (:mod:`pwflow.classify`, by the rule of
   :mod:`pwflow.filippov`), choose how many events to apply before restarting
   (:mod:`pwflow.batch`) and apply them at the cut;
4. keep sliding neurons on their hyperplanes and check the run's invariants
   (:mod:`pwflow.invariants`; a violation raises :class:`pwflow.options.InvariantError`);
5. read the snapshots inside the step from its dense output (:mod:`pwflow.snapshots`).

The initial faces and the rule at ``w = 0`` are in :mod:`pwflow.start_faces`.  Each of those
modules holds one concern of :class:`HybridFlow` as a mixin class; the state they share (the
neurons at the last solver start, their faces, the step's propagators) is kept here.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from . import blas
from .bisection import time_ulp, time_unit
from .classify import ClassifyMixin
from .cones import span_split
from .dense import stack_coefficients
from .detection import Candidates, DetectionMixin
from .events import EventKind, EventLog
from .filippov import BranchPolicy, Geometry
from .invariants import InvariantsMixin
from .model import Loss
from .options import FlowOptions, InvariantError
from .origin_watch import OriginWatchMixin
from .patterns import PatternTable
from .regime import CutExits, PendingExits, RegimeMixin
from .replay import PassiveFaces
from .rest import RestBound, rest_bound
from .rk import DOP853
from .rows import project_rows, propagate
from .snapshots import SnapshotsMixin, times_inside
from .solvers import Phase, Recording, Restricted, SolverPhaseMixin, solver_class
from .start_faces import StartFacesMixin
from .vector_field import CollectiveField, moments, outputs_from_moments

__all__ = ["HybridFlow"]

Array = NDArray[np.float64]


#: the face ``{0}`` (every hyperplane, dimension 0) is watched like the others where neurons
#: with ``a ≠ 0`` are held there (:meth:`HybridFlow._watched_faces`); ``False`` restores the
#: frozen face of session 41 (tests: the mechanism off)
WATCH_ORIGIN_FACE = True


class HybridFlow(StartFacesMixin, DetectionMixin, RegimeMixin, ClassifyMixin, InvariantsMixin,
                 SnapshotsMixin, SolverPhaseMixin, OriginWatchMixin):
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
        #: the data's geometry on sets of hyperplanes, computed once per set for the whole
        #: run (:class:`pwflow.filippov.Geometry`; every call of the rule passes it)
        self.geometry = Geometry(self.X)
        #: the data as given, where ``X`` is snapped (:func:`pwflow.subgradient.snap_data`):
        #: the sides gradient descent's first step reads from a start on hyperplanes
        self._X_given = self.X if X_given is None else np.asarray(X_given, float)
        self.y = np.asarray(y, float)
        #: the unit of the run's resolution in time (:func:`pwflow.bisection.time_unit`: 1,
        #: or the time scale of data whose flow is more than a thousand times faster)
        self.time_unit = time_unit(self.X, self.y)
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
        #: neurons propagated entry by entry (:func:`pwflow.rows.propagate`): at ``q = 3`` from
        #: ``BY_ENTRIES_M`` neurons on, one way for the whole run
        self.by_entries = self.q == 3 and self.m >= self.BY_ENTRIES_M
        self.table = table if table is not None else PatternTable(self.X, gamma)
        #: the data's span: its dimension and orthonormal rows ``(rank, d)``.  The face
        #: ``u = 0`` (every hyperplane) is ``ker X``, the origin of the span: ``{0}`` at full
        #: rank; below it a neuron there keeps its null-space part (``D ∈ span X``) and is
        #: otherwise a neuron at ``w = 0`` of the span's problem (session 40)
        rank, vt = span_split(self.X)
        self._span_rank, self._span_rows = rank, vt[:rank]
        self._origin_is_face = rank == self.d
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
        #: the watched hyperplanes (and classes) then
        self._rsign_at: tuple[float, NDArray[np.int8], Array, NDArray[np.bool_]] | None = None
        #: watched ``r_k`` resolved to 0 in the current regime
        #: (:data:`pwflow.regime.RESOLUTION_HYSTERESIS`)
        self._held_zero: NDArray[np.bool_] | None = None
        #: ``r_k`` resolved to nonzero in the current regime (kept so down to
        #: 1 / :data:`pwflow.regime.RESOLUTION_HYSTERESIS` of the resolution)
        self._held_live: NDArray[np.bool_] | None = None
        #: signs of the parallel classes' residuals in the current regime (their hysteresis;
        #: :meth:`RegimeMixin._watched_signs`)
        self._class_held: NDArray[np.int8] | None = None
        #: the resolved residuals of the last single-time regime (:meth:`_face_regime_at`)
        self._resolved_last: Array | None = None
        #: the time and faces :meth:`_leave_faces` last decided (a restart there keeps them)
        self._left_at: tuple[float, NDArray[np.intp]] = (np.nan, np.zeros(0, np.intp))
        self._solver = None
        self.n_restarts = 0
        self.n_rollbacks = 0
        #: steps redone to end at a snapshot their dense output could not give
        #: (:data:`pwflow.snapshots.SNAPSHOT_DEFECT`)
        self.n_snapshot_redos = 0
        #: steps redone to end at an inner cut whose state the dense output could not give
        #: to the tolerance (:meth:`_cut_inaccurate`), and the start of the last one
        self.n_cut_redos = 0
        self._cut_redo_from: float | None = None
        #: steps redone to end just before a jump exit located on the dense output inside the
        #: step (:meth:`_cut_inaccurate`), and that exit's step start and time in this step
        self.n_exit_redos = 0
        self._jump_root: tuple[float, float, dict] | None = None
        self._exit_redo_end: float | None = None
        #: the exits a redo left pending, and until when (:meth:`_pending_exit_events`)
        self._exit_pending: PendingExits | None = None
        #: the exits located at the cut of the last step redone for its state's accuracy
        self._cut_exits: CutExits | None = None
        #: the time a redone step ends at (a snapshot's or a cut's), until reached
        self._snap_bound: float | None = None
        self.n_excursions = 0
        self._seen = np.zeros(0)
        self._mu_state = None
        self._phase = Phase(options.stiff_after)
        #: whether the implicit solver took the last accepted step (``False``: DOP853, or no
        #: solver: at rest, or a step within rounding of its bound); the run records it per
        #: step (``Trajectory.step_implicit``) so that a retrace takes the same solver
        self.last_step_implicit = False
        self.policy = BranchPolicy.parse(options.branch_policy)
        self.max_sliding_residual = 0.0
        self.max_lorentz_correction = 0.0
        self.n_branch = 0
        self.t_first_branch = np.inf
        # neurons that sit exactly on the hyperplanes of their initial face, never moved off
        # by an event: gradient descent does not chatter there (the GD branch policy needs it)
        self._at_rest = np.zeros(self.m, dtype=bool)
        #: neurons held at w = 0 since they arrived there, watched for a departure that
        #: appears later (either policy, :mod:`pwflow.origin_watch`), and the verdicts of
        #: the last located departure
        self._origin_held: dict = {}
        self._origin_before: dict = {}
        self._origin_r_from = None  # the residuals at the watched step's start
        self._origin_at = None
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
            Z = propagate(self._Phi, self.pat, self._Zs, self.by_entries)
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

    def _log(self, t: float, j: int, k: int, kind: int, resid: float, frm: int, to: int) -> None:
        if not self.events.add(t, j, k, kind, resid, frm, to) and kind == EventKind.BRANCH:
            return  # a branch point logged already (:class:`pwflow.events.EventLog`)
        self._recent.append((t, j, k))
        if kind == EventKind.BRANCH:
            self.n_branch += 1
            self.t_first_branch = min(self.t_first_branch, t)

    def _log_many(self, t: Array, j: NDArray, k: NDArray, kind: NDArray, resid: Array,
                  frm: NDArray, to: NDArray) -> None:
        """:meth:`_log` for many rows at once (the rows of one applied batch, in order)."""
        if t.size == 0:
            return
        kept = self.events.extend(t, j, k, kind, resid, frm, to)
        # a branch point logged already is not counted again (a merged crossing still is a
        # contact: it stays in the Zeno guard's record)
        kept |= kind != EventKind.BRANCH
        if not np.all(kept):  # rare: copy only then
            t, j, k, kind = t[kept], j[kept], k[kept], kind[kept]
        self._recent.extend(zip(t.tolist(), j.tolist(), k.tolist()))
        br = kind == EventKind.BRANCH
        if np.any(br):
            self.n_branch += int(np.sum(br))
            self.t_first_branch = min(self.t_first_branch, float(np.min(t[br])))

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
        # passive faces replayed (:mod:`pwflow.replay`) from REPLAY_PASSIVE of them on, or
        # as soon as one's field is an iterative solve (a bounded least squares per stage)
        replay = (not self._phase.stiff and self.REPLAY_PASSIVE is not None
                  and self.d >= self.REPLAY_MIN_DIM
                  and (np.count_nonzero(passive) >= self.REPLAY_PASSIVE
                       or np.any(passive & tab.iterative[:P])))
        self._field = CollectiveField(tab, C, self.X, self.y, self.loss, self.opt.frozen_output,
                                      active=counts > 0 if replay else self._integrated)
        self._P = P
        self._occupied = np.flatnonzero(counts > 0)
        # occupied faces with free slopes: those whose regime is watched (fixed until the
        # next start, since the neurons' faces change only at a cut)
        self._regime_faces = self._watched_faces(P)
        self._regime_free = tab.U[self._regime_faces] == 0
        # the face {0} (dimension 0) is read from its minimal-norm D alone (0 ∉ 𝔇(0): it
        # departs); its points' residual signs are not watched for it (a sign change there
        # re-decided neurons held at 0, and logged their branch again at every change)
        point = tab.dim[self._regime_faces] == 0
        self._regime_watched = np.any(self._regime_free[~point], axis=0)
        self._regime_plan = tab.single_plan_for(self._regime_faces)
        self._Zs = self.Z.copy()
        self._Phi = np.tile(np.eye(self.q), (P, 1, 1))
        self._margins()
        # Φ = I: the regime reads the propagators through the outputs, the occupied faces' only
        eye = np.broadcast_to(np.eye(self.q), (self._field.occupied.size, self.q, self.q))
        codes, rsign = self._face_regime_at(eye)
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
            due = due[:, None] & (self._face_regime_at(eye,
                                                       raw=True)[0] != 0)
        hint = self._rsign_at
        if hint is not None and hint[0] == self.t and hint[1].shape == rsign.shape:
            # restarting at a located change of some r_k's sign (or of its resolution to 0):
            # r_k is at the threshold there, and the recomputed moments may put it back on its
            # old side; keep the side the location found, or the next step would find the same
            # change again an ulp later
            rsign = np.where(hint[3] & self._watched_mask(), hint[1], rsign).astype(np.int8)
        self._set_regime((np.where(due if due.ndim == 2 else due[:, None], 0,
                                   codes).astype(codes.dtype), rsign))
        self._field.hold(self._held_sliding(codes))
        h0 = None if self.h_next is None else min(self.h_next, t_bound - self.t)
        if self._phase.stiff:
            method = solver_class(self.opt.stiff_solver)
            fun = Restricted(self._field, counts > 0)
        elif replay:  # DOP853 on the occupied faces; the passive ones replayed on demand
            method, fun = solver_class("DOP853"), Recording(self._field, counts > 0)
        else:
            method, fun = solver_class("DOP853"), self._field
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

    def _step_errors(self, solver, P: int) -> tuple[Array | None, NDArray[np.intp] | slice]:
        """The accepted DOP853 step's error of each integrated face's propagator, ``‖E_p‖_F``
        (:meth:`RegimeMixin._set_step_noise`), and those faces; ``(None, ...)`` on the
        implicit solver's steps.

        The step is accepted with its error within the tolerance, ``rtol ‖Φ_p‖`` on face
        ``p``: that bound, scaled by the solver's estimate of the face's error in units of
        its tolerance (:meth:`DOP853.error_norms` on the face's block, the measure of its
        step control) where that is below 1: a step cut short by an event is known far
        better.  Not above 1: a block of near-zero entries is measured against ``atol`` and
        reads up to 46 times its tolerance without being less accurate (session 49; read
        as such, a slow exit came 2·10⁻⁵ late), and an estimate in absolute terms, the
        step end's alone, is below what the dense output inside the step is off by (the
        problem of ``docs/integrator.md``, "Outputs whose terms cancel": 111 rows against
        the tight run's 37, the fault's 185; with this bound, 38; both before the signs held
        at 0 were read against the noise too, :meth:`RegimeMixin._held_noise`)."""
        if self._phase.stiff:
            return None, slice(None)
        q = self.q
        scale = solver.atol + np.maximum(np.abs(solver.y_old), np.abs(solver.y)) * solver.rtol
        err = DOP853.error_norms(solver.K, solver.h_previous, scale, q * q)
        Phi = solver.y.reshape(-1, q, q)
        error = np.minimum(err, 1.0) * solver.rtol * np.sqrt(np.einsum("pij,pij->p", Phi, Phi))
        rows = self._fun.keep if self._fun is not self._field else slice(0, P)
        return error, rows

    def _integrated_at(self, p: NDArray) -> NDArray:
        """Whether the faces ``p`` were integrated since the last solver start."""
        p = np.asarray(p)
        ok = p < self._integrated.size  # faces registered in the step: rows past P (_enter)
        out = np.zeros(p.shape, dtype=bool)
        out[ok] = self._integrated[p[ok]]
        return out

    def _watched_faces(self, P: int) -> NDArray[np.intp]:
        """The occupied faces whose regime is watched (:meth:`_face_regime_at`): those with
        free slopes, of positive dimension, except a face on every hyperplane whose neurons
        all have ``a_j = 0``.  There ``w ⟂ span(X)`` and ``D ∈ span(X)`` give ``dw/dt = −a D
        = 0`` and ``da/dt = −<w, D> = 0``: a fixed point, which the rule keeps (``a_j`` and
        ``<w_j, D>`` both 0), while its slopes read at a bound made a face event of every
        step that changed nothing (rank-2 data in d = 4, a neuron with ``a = 0`` orthogonal
        to them: 3 286 steps to t = 4, 0.71 s without it against 32 s).  Where ``rank X < d``
        a face on every hyperplane is ``ker X``, the origin of the data's span: watched here
        (where it is not frozen, its field moves a neuron off it once ``0 ∉ 𝔇(0)``) and by
        the watch at 0 (:mod:`pwflow.origin_watch`, session 40).  The face ``{0}`` itself
        (dimension 0, its field frozen at 0) is watched too where neurons with ``a_j ≠ 0``
        are held there (:data:`WATCH_ORIGIN_FACE`): its regime is read from the minimal-norm
        element of ``𝔇(0)`` (:meth:`PatternTable.minimal_norm` with ``origin``), so that a
        held neuron departs once staying no longer solves Eq. (2) (session 42: it stayed)."""
        tab, occ = self.table, self._occupied
        moving = np.bincount(self.pat[self.Z[:, self.d] != 0], minlength=P)[:P] > 0
        origin = tab.nfree[occ] == self.n
        # {0} where 0 may leave 𝔇(0) (not with γ = 0 and no two opposite points: η = 0)
        point = origin & WATCH_ORIGIN_FACE & ~tab.rests[occ]
        return occ[(tab.nfree[occ] > 0) & ((tab.dim[occ] > 0) | point)
                   & (~origin | moving[occ])]

    @blas.limited()
    def step(self, t_bound: float, snap_times: Array | None = None) -> None:
        """Advance to the next accepted point (at most ``t_bound``), applying events.

        Between events one DOP853 instance runs on the propagators ``Φ_p`` (from its start,
        where ``Φ = I``); an applied event, a face event, reaching ``t_bound`` or a propagator
        whose conditioning passes :attr:`RESTART_CONDITION` restarts it from the current
        neurons.

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
        self.__dict__.pop("_grid_read", None)  # a grid reading is the step's own
        bound = self._snap_bound
        if bound is not None:
            if self.t < bound < t_bound:
                t_bound = bound
            else:
                self._snap_bound = None
        if self.rest is not None or t_bound - self.t <= 64 * time_ulp(t_bound, self.time_unit):
            # at rest (:meth:`check_rest`: the exact flow moves by less than the bound), or an
            # event cut landed within rounding of t_bound (no step can be taken; the state
            # moves by less than 64 ulp of time, far below the tolerance): the neurons stay
            if snap_times is not None:
                self.dense_snapshots = [(float(T), self.Z.copy(), self.pat)
                                        for T in snap_times if self.t < T < t_bound]
            self.t = float(t_bound)
            self._solver = None
            self.last_step_implicit = False
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
        step_fev = field_.nfev - fev0  # the step's own (not its dense output's, read below)
        self.nfev += step_fev
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
        Phi1 = project_rows(Phi1_raw, self._occupied)
        self._proj_move = np.zeros(P)
        self._Phi1_size = np.zeros(P)
        occ = self._occupied
        self._proj_move[occ] = np.sqrt(np.sum((Phi1[occ] - Phi1_raw[occ]) ** 2, axis=(1, 2)))
        self._Phi1_size[occ] = np.sqrt(np.sum(Phi1[occ] ** 2, axis=(1, 2)))
        self._check_lorentz(t1)
        self._set_step_noise(*self._step_errors(solver, P), Phi1)
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
        Z1n = propagate(Phi1, self.pat[near], self._Zs[near], self.by_entries)
        S1n = Z1n[:, : self.d] @ self.X.T  # <w_j, x_k> at the step end, near neurons
        cand = Candidates.concat([self._detect(Z1n, near, S1n), self._flips(Phi1)])
        excursion = self._suspect_excursions(near, Z1n, sweep, lambda: self._bend(Phi1, speed, h),
                                             S1n)
        regime1 = self._face_regime_at(Phi1)
        face_change = self._regime_changed(self._regime, regime1)
        # a neuron held at w = 0 that gradient descent leaves by the step end
        watching = bool(self._origin_held)
        leaves_zero = watching and self._origin_escapes(field_.residuals(Phi1), t1,
                                                        field_.residuals(self._Phi))
        if self._phase.stiff and (cand is not None or face_change or leaves_zero
                                  or self._exit_pending is not None
                                  or self._implicit_excursion(excursion, near, solver)
                                  or self._regime_left_inside(solver, t0, t1)):
            # events are located on DOP853's dense output only: redo this step there, the
            # orbits at 0 as they were at its start (the redo runs them on over it once)
            if watching:
                self._origin_held.update(self._origin_before)
            return self._leave_stiff(t_bound, rollback=True, snap_times=snap_times,
                                     wrong_guess=False)
        self.n_steps += 1
        self.h_next = solver.h_abs
        if self._phase.stiff:  # cleared above on the implicit solver's dense output
            excursion = (excursion[0][:0], excursion[1][:0])
        F = None
        if cand is not None or face_change or excursion[0].size:
            F, Phi1_rows = self._event_dense_output(solver, Phi1)
        if not (face_change or self._phase.stiff):  # a slope's exit and return inside the step
            face_change = self._regime_left_inside(solver, t0, t1, F)
        if (face_change or leaves_zero) and F is None:
            F, Phi1_rows = self._event_dense_output(solver, Phi1)
        if excursion[0].size:
            cand = Candidates.concat([cand, self._excursions(excursion, Z1n, near, F)])
        if cand is not None:  # |r_k| on the step, for the batch bound (:meth:`_kink_rate`)
            self._r_step = np.maximum(np.abs(field_.residuals(self._Phi)),
                                      np.abs(field_.residuals(Phi1)))
        located = None if cand is None else self._locate_neuron_events(cand, F, t0, t1)
        self._jump_root = None
        t_face, exits = (np.inf, {}) if not face_change else self._face_events(F, t0, t1, regime1)
        if leaves_zero:
            t_zero, p_zero = self._origin_event(F, t0, t1)
            if t_zero < t_face:
                t_face, exits = t_zero, {p_zero: {}}
            elif t_zero == t_face:
                exits = {**exits, p_zero: {}}
        placed_pending = None
        if self._exit_pending is not None:
            if F is None:
                F, Phi1_rows = self._event_dense_output(solver, Phi1)
            t_face, exits, placed_pending = self._pending_exit_events(F, t0, t1, t_face, exits)
        self._t_face = t_face
        if located is None and not exits:
            if F is None and not self._phase.stiff and times_inside(snap_times, t0, t1).size:
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
            # the conditioning of Φ matters where neurons are (RESTART_CONDITION); the
            # propagators of empty faces (needed when an event brings a neuron in) may grow:
            # keep them finite (1e100)
            big = np.max(np.abs(Phi1[self._occupied]), initial=0.0) ** 2 > self.RESTART_CONDITION
            if big or np.max(np.abs(Phi1)) > 1e100:
                self._solver = None
            self._idle_cuts = 0
            self._zeno_guard(t0, t1)
            self.last_step_implicit = self._phase.stiff  # before the hand-over below
            self._quiet_step(step_fev, t1 - t0)
            return
        Z1 = None  # the neurons at the step end: materialised in _advance if the cut is t1
        t_cut = self._choose_cut(located, t_face, t0, t1)
        if not t0 <= t_cut <= t1:
            raise InvariantError(f"batch cut {t_cut!r} outside the step [{t0!r}, {t1!r}]")
        if (self._snapshots_inaccurate(snap_times, t0, t_cut, F, solver)
                or self._cut_inaccurate(t0, t_cut, t1, F, solver,
                                        exits if t_cut == t_face else None)):
            return self.step(t_bound, snap_times)
        if placed_pending is not None and t_cut >= placed_pending:
            self._exit_pending = None  # applied at this cut
        pending = None if located is None else located.upto(t_cut)
        pat0 = self.pat
        logged = len(self.events)
        t_cut = self._advance(t_cut, t1, Phi1_rows, Z1, F, field_, pending, exits)
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
        self.last_step_implicit = self._phase.stiff  # False: events are DOP853's (above)
        self._phase.eventful()
        self._zeno_guard(t0, t_cut)

    def follow_step(self, h: float | None, implicit: bool | None = None) -> None:
        """Try ``h`` as the next step (the step of a run being retraced,
        :func:`pwflow.integrator.continue_from`): the running solver's next trial, or the
        first step of the next solver start; ``None`` leaves the solver's own choice.  The
        solver's error control still applies (a trial it rejects is shortened).

        ``implicit``: the solver the run took that step with (``Trajectory.step_implicit``);
        where it is not the current one, the next step starts that solver (``None``: the
        hand-over rule decides, as in a run).  A retrace from a snapshot starts with DOP853:
        where the run was in an implicit stretch, DOP853 took the run's step of 1.5 time
        units as 60 steps of 0.02, its trials overflowing (``tests/explore_integer.py`` seed
        72930, t = 15.85 … 16.89, session 60)."""
        if implicit is not None and bool(implicit) != self._phase.stiff:
            self._phase.stiff = bool(implicit)
            self._phase.eventful()
            self._solver = None
        if h is None:
            return
        self.h_next = h
        solver = self._solver
        if solver is not None and solver.status == "running":
            solver.h_abs = h

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

    def _dense_coefficients(self, solver, extra: int = 0) -> Array:
        """The step's dense output as ``(8, P, q, q)`` (:func:`stack_coefficients`).  With
        passive faces (:mod:`pwflow.replay`) their rows are ``Φ = I`` until an event enters
        one (:meth:`_enter`), and ``extra`` more rows (``Φ = I``) follow for faces registered
        within the step."""
        passive = None if self._phase.stiff else self._passive
        if passive is None:
            return stack_coefficients(solver.dense_output(), self._P, self.q)
        fun, P, q = self._fun, self._P, self.q
        Fk = stack_coefficients(solver.dense_output(), fun.P, q)
        # np.empty and two fills, not np.zeros: a fresh zeroed block of this size (7 MB at
        # d = 5, P ≈ 3 000) is mapped anew and page-faulted at every step (0.7 ms against 0.3)
        F = np.empty((Fk.shape[0], P + extra, q, q))
        F[0] = np.eye(q)
        F[1:] = 0.0
        F[:, fun.keep] = Fk
        return F

    def _occupied_coefficients(self, solver) -> Array:
        """The step's DOP853 dense output on the occupied faces' rows alone, ``(8, |occ|, q,
        q)``: those rows of :meth:`_dense_coefficients`, without stacking the others."""
        dense, q = solver.dense_output(), self.q
        rows = self._fun._occ if self._fun is not self._field else self._field.occupied
        y_old = dense.y_old.reshape(-1, q, q)[rows]
        return np.concatenate([y_old[None], dense.F.reshape(dense.F.shape[0], -1, q, q)[:, rows]])

    def _event_dense_output(self, solver, Phi1: Array) -> tuple[Array, Array]:
        """The step's dense output and end propagators where its events are located and
        applied.  With passive faces both have :attr:`NEW_FACE_ROWS` rows past the ``P``
        faces of the solver start, for faces that the step's events register (faces met for
        the first time), and are bound to the replay (:meth:`PassiveFaces.bind`), which
        writes the rows of the faces the events enter (:meth:`_enter`)."""
        passive = None if self._phase.stiff else self._passive
        if passive is None:
            return self._dense_coefficients(solver), Phi1
        F = self._dense_coefficients(solver, extra=self.NEW_FACE_ROWS)
        rows = np.empty((F.shape[1],) + Phi1.shape[1:])
        rows[: self._P] = Phi1
        rows[self._P:] = np.eye(self.q)
        passive.bind(F, rows, self._fun.take())
        self._integrated = np.r_[self._integrated[: self._P],
                                 np.zeros(self.NEW_FACE_ROWS, dtype=bool)]
        return F, rows

    def _enter(self, faces: NDArray[np.intp]) -> None:
        """Replay the passive faces among ``faces`` (those a batch's events enter) on this
        step (:meth:`PassiveFaces.fill`), faces registered within the step among them (the
        rows past ``P``: a face met for the first time is, until then, an empty face whose
        propagator since the solver start the stored stages give); a face whose replay fails
        its error estimate is treated as not integrated from then on (the event entering it
        cuts the step)."""
        passive = None if self._phase.stiff else self.__dict__.get("_passive")
        if passive is None:
            return
        faces = np.asarray(faces, dtype=np.intp)
        failed = passive.fill(faces)
        new = faces[(faces >= self._P) & (faces < self._integrated.size)]
        self._integrated[new] = True
        self._integrated[failed] = False

    #: rows of a step's dense output for faces its events register (:meth:`_event_dense_output`;
    #: with passive faces only).  An event entering a face registered within the step cut the
    #: step there before: 744 of 1 216 cuts at d = 5, n = 20, m = 1 000, t = 10 (a step
    #: registers a few such faces: 2 948 faces in 1 818 steps); beyond these rows it still does
    NEW_FACE_ROWS = 64
    #: from this many neurons on (at ``q = 3``) :func:`pwflow.rows.propagate` goes entry by
    #: entry: 1.0x the blocks' einsum at m = 1 000, 1.9x at 2·10⁴, 1.5x at 2·10⁵, 3x slower
    #: on a few rows (three points, m = 2 000, λ = 0.3: 0.95x with it)
    BY_ENTRIES_M = 10_000

    #: from d = REPLAY_MIN_DIM on, DOP853 integrates only the occupied faces where at least
    #: REPLAY_PASSIVE integrated faces are empty (or one of them is solved iteratively,
    #: :attr:`PatternTable.iterative`); those are replayed from the stored stage residuals
    #: when an event enters one (:mod:`pwflow.replay`).  ``None``: every integrated face in
    #: DOP853's state.  At d = 5, n = 20 the faces met grow to ~1 600 by t = 1 against ~640
    #: occupied; at d = 3, n = 200, m = 100 to ~1 200 against ~100 (2.1x faster with the
    #: replay, session 24).  From the first empty face on (session 26; 64 before): a handful
    #: of empty faces still cost DOP853 their stages and their kinks cut its steps (d = 3,
    #: n = 8, m = 50, t = 100 2.0x; ``docs/integrator.md``).  d = 2 keeps the full state
    #: (its logs unchanged; its fields are cheap: n = 200, m = 100, t = 8 measured 1.06x
    #: with the replay)
    REPLAY_PASSIVE: int | None = 1
    REPLAY_MIN_DIM = 3

    #: a solver run restarts (``Φ = I`` from the current neurons) once an occupied face's
    #: propagator may amplify the solver's error, relative to a neuron it carries, by more than
    #: this.  ``Φ`` is a Lorentz transformation (``Φ⁻¹ = J Φᵀ J``), so a neuron in its
    #: contracting direction shrinks by the factor the other direction grows by, and its
    #: relative error grows as ``cond(Φ) ≈ max |Φ|²``.  The bound was on ``max |Φ|`` until
    #: session 31: a balanced neuron shrinking by 1 200 without an event, carried by one DOP853
    #: run, was 4.1e-6 off (relative) at rtol = 1e-13, now 6.2e-8 (gradient descent's own
    #: accuracy there; ``test_a_shrinking_neuron_keeps_its_relative_accuracy``); the benchmark
    #: rows' logs are bit for bit the same (their runs restart at events first)
    RESTART_CONDITION = 1e3


