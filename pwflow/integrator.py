"""The hybrid integrator for the subgradient flow of Eq. (2)/(6).

Inside a mode (every neuron's face fixed) the flow is smooth and linear per face
(:mod:`pwflow.vector_field`); it is integrated with scipy's DOP853 (order 8, dense output of
order 7) on the per-face propagators, whose size does not grow with the width ``m``.  After each
step, one vectorised check over all pairs ``(j, k)`` finds the neurons that changed side
(:mod:`pwflow.events`); their event times are located on the dense output to rounding, events
are processed in time order, and the step is cut at the last event that may be applied without
restarting (see :func:`HybridFlow._choose_cut` and ``docs/integrator.md`` for the error
control).  At each event the one-sided fields and the minimal-norm subgradient decide between
crossing, sliding and bouncing back; faces with free slopes (sliding faces) are watched for their
slopes reaching ``γ`` or ``1``.
"""

from __future__ import annotations

import enum
import functools
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.integrate import DOP853, Radau

from .data import Dataset
from .events import (
    EventKind,
    _nested,
    _nested_derivative,
    classify,
    detect_crossings,
    detect_zero_crossings,
    locate_roots,
)
from .guard import (
    STALL_STEPS,
    NonFinite,
    NoProgress,
    RunGuard,
    describe_overflow,
    finite_state,
    watch,
)
from .init import Init
from .model import Loss, check_gamma, check_time, get_loss
from .patterns import PatternTable
from .resume import take_mark
from .signals import describe as describe_interrupt
from .signals import exit_status
from .store import StoreWriter
from .vector_field import CollectiveField, lorentz_inverse, lorentz_project, moments

if TYPE_CHECKING:
    from .resume import Checkpoint
    from .trajectory import Trajectory

__all__ = ["FlowOptions", "Status", "HybridFlow", "simulate", "ZenoError"]

Array = NDArray[np.float64]

_STIFF_SOLVERS = {None: None, "Radau": Radau}


class Status(enum.IntEnum):
    """Outcome of a run; ``str(status)`` is the message."""

    RUNNING = 1
    FINISHED = 0
    FAILED = -1
    ZENO = -2
    INTERRUPTED = -3
    NON_FINITE = -4
    NO_PROGRESS = -5
    PARTIAL = -6

    def __str__(self) -> str:
        return {
            Status.RUNNING: "running",
            Status.FINISHED: "the integration reached t_max",
            Status.FAILED: "the step-size controller failed",
            Status.ZENO: "stopped: too many events in too short a time (Zeno / chattering)",
            Status.INTERRUPTED: "interrupted by the user; the trajectory so far is kept",
            Status.NON_FINITE: "stopped: a quantity of the run is infinite or NaN (overflow)",
            Status.NO_PROGRESS: "stopped: no progress within the step budget",
            Status.PARTIAL: "partial store: the run was killed; read up to its last snapshot",
        }[self]


class ZenoError(RuntimeError):
    """Raised inside the integrator when events accumulate (chattering)."""


@dataclass(frozen=True)
class FlowOptions:
    """Tolerances and guards of the hybrid integrator.

    Attributes
    ----------
    rtol, atol : float
        DOP853 tolerances on the per-face propagators (each step starts from ``Φ = I``, so these
        bound the relative error of every neuron's one-step map).
    batch_tol : float or None
        Budget for the error of applying an event at the end of a step instead of restarting at
        it (an explicit bound, see ``docs/integrator.md``); ``None`` uses ``rtol``; ``0`` restarts
        at every event (the reference "strict" mode).
    max_step : float
        Largest step.
    frozen_output : bool
        Integrate Eq. (8)'s idealised dynamics (``h ≡ 0``).
    zeno_events : int
        A run stops when this many consecutive events involve one neuron within ``zeno_window``
        (relative to ``1 + t``) — chattering — or when this many consecutive steps are shorter
        than 1000 ulp of ``t``.
    zeno_window : float
        See ``zeno_events``.
    face_memory : float or None
        Faces that held no neuron for this long are not integrated (speed only: an event
        entering such a face cuts the step at its time, so the result does not depend on it).
        ``None`` (default): 50 time units below 10 000 neurons, never above (there a cut and
        restart costs O(m), more than the steps it saves; see ``docs/benchmarks.md``).
    stiff_solver : {'Radau', None}
        Implicit solver for quiet stretches (speed only). After ``stiff_after`` consecutive
        DOP853 steps without any event, the propagators are integrated by this solver (near
        convergence the flow is stiff and DOP853's step is limited by stability, not by
        accuracy). Any implicit step that would contain an event is discarded and redone by
        DOP853, so every event is still located on DOP853's dense output; the implicit solver
        is also left when it costs more than 3 times the field evaluations per time unit that
        DOP853 did (see ``docs/integrator.md``). ``None``: DOP853 only (the reference path,
        with ``batch_tol=0``).
    stiff_after : int
        See ``stiff_solver``; doubled after each return to DOP853.
    """

    rtol: float = 1e-10
    atol: float = 1e-12
    batch_tol: float | None = None
    max_step: float = np.inf
    frozen_output: bool = False
    zeno_events: int = 200
    zeno_window: float = 1e-10
    face_memory: float | None = None
    stiff_solver: str | None = "Radau"
    stiff_after: int = 20

    def validated(self) -> "FlowOptions":
        for name in ("rtol", "atol"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be positive and finite, got {v!r}")
        if self.rtol < 1e-14:
            raise ValueError(
                f"rtol must be >= 1e-14 (DOP853 in double precision), got {self.rtol!r}")
        if self.batch_tol is not None and not (self.batch_tol >= 0 and np.isfinite(self.batch_tol)):
            raise ValueError(f"batch_tol must be >= 0 and finite, got {self.batch_tol!r}")
        if not self.max_step > 0:
            raise ValueError(f"max_step must be positive, got {self.max_step!r}")
        if self.face_memory is not None and not self.face_memory >= 0:
            raise ValueError(f"face_memory must be >= 0 or None, got {self.face_memory!r}")
        if self.stiff_solver not in _STIFF_SOLVERS:
            allowed = ", ".join(repr(k) for k in _STIFF_SOLVERS)
            raise ValueError(f"stiff_solver must be one of {allowed}, got {self.stiff_solver!r}")
        if int(self.stiff_after) != self.stiff_after or self.stiff_after < 1:
            raise ValueError(f"stiff_after must be an integer >= 1, got {self.stiff_after!r}")
        if int(self.zeno_events) < 2:
            raise ValueError(f"zeno_events must be >= 2, got {self.zeno_events!r}")
        return self

    @property
    def batch_budget(self) -> float:
        return self.rtol if self.batch_tol is None else self.batch_tol


@dataclass
class EventLog:
    """Growing event log (columns as numpy arrays after :meth:`arrays`)."""

    t: list = field(default_factory=list)
    neuron: list = field(default_factory=list)
    k: list = field(default_factory=list)
    kind: list = field(default_factory=list)
    residual: list = field(default_factory=list)
    from_pattern: list = field(default_factory=list)
    to_pattern: list = field(default_factory=list)

    def add(self, t, neuron, k, kind, residual, frm, to) -> None:
        self.t.append(t)
        self.neuron.append(neuron)
        self.k.append(k)
        self.kind.append(int(kind))
        self.residual.append(residual)
        self.from_pattern.append(frm)
        self.to_pattern.append(to)

    def __len__(self) -> int:
        return len(self.t)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "t": np.asarray(self.t, float),
            "neuron": np.asarray(self.neuron, np.int64),
            "k": np.asarray(self.k, np.int64),
            "kind": np.asarray(self.kind, np.int8),
            "residual": np.asarray(self.residual, float),
            "from_pattern": np.asarray(self.from_pattern, np.int64),
            "to_pattern": np.asarray(self.to_pattern, np.int64),
        }


@dataclass
class _Pending:
    """One neuron event located inside the current step."""

    t: float
    x: float
    neuron: int
    ks: list
    rate: float  # |a ds/dt| summed over the ks (kink of the outputs, for the batch estimate)
    zero: bool = False
    poly_residual: float = 0.0  # |<w, x_k>| of the dense output at the located time
    observed: int = 0  # side the neuron was seen to go to at once (tangency), else 0


@dataclass
class _Located:
    """Neuron events located in one step: one per neuron (its earliest), sorted by time.

    Arrays are per event; ``more_ks`` maps an event's row to the further hyperplanes it
    reaches at the same time (rare). :meth:`upto` makes the :class:`_Pending` records of the
    events up to the cut only (most located events of a step are beyond it).
    """

    t: Array
    x: Array
    neuron: NDArray[np.intp]
    k: NDArray[np.intp]
    rate: Array
    zero: NDArray[np.bool_]
    residual: Array
    observed: NDArray[np.int8]
    more_ks: dict

    @classmethod
    def group(cls, neurons, tt, x, kinds, rate, res, observed) -> "tuple[_Located, dict]":
        """Group candidates per neuron: the earliest is the event, candidates within 64 ulp
        of it are merged into it, the next later one goes to the returned ``later`` map."""
        order = np.lexsort((tt, neurons))
        ns, ts, ko = neurons[order], tt[order], kinds[order]
        head = np.r_[True, ns[1:] != ns[:-1]]
        rank = np.cumsum(head) - 1
        first = np.flatnonzero(head)[rank]
        t_first = ts[first]
        coinc = ~head & (ts - t_first <= 64 * np.spacing(np.maximum(np.abs(t_first), 1.0)))
        h_rate, h_res = rate[order][head], res[order][head]
        h_zero = ko[head] < 0
        merge_k = np.flatnonzero(coinc & (ko >= 0))
        np.add.at(h_rate, rank[merge_k], rate[order][merge_k])
        np.maximum.at(h_res, rank[merge_k], res[order][merge_k])
        h_zero[rank[coinc & (ko < 0)]] = True
        rest = np.flatnonzero(~head & ~coinc)
        uniq, idx = np.unique(ns[rest], return_index=True)
        later = dict(zip(uniq.tolist(), ts[rest][idx].tolist()))
        hsel = order[head]
        by_t = np.argsort(tt[hsel], kind="stable")
        row_of = np.empty_like(by_t)
        row_of[by_t] = np.arange(by_t.size)
        more: dict = {}
        for i in merge_k:
            more.setdefault(int(row_of[rank[i]]), []).append(int(ko[i]))
        located = cls(
            t=tt[hsel][by_t], x=x[hsel][by_t], neuron=neurons[hsel][by_t], k=kinds[hsel][by_t],
            rate=h_rate[by_t], zero=h_zero[by_t], residual=h_res[by_t],
            observed=observed[hsel][by_t], more_ks=more,
        )
        return located, later

    def upto(self, t_cut: float) -> list[_Pending]:
        rows = np.flatnonzero(self.t <= t_cut)
        return [
            _Pending(float(self.t[i]), float(self.x[i]), int(self.neuron[i]),
                     [int(self.k[i])] + self.more_ks.get(int(i), []), float(self.rate[i]),
                     bool(self.zero[i]), float(self.residual[i]), int(self.observed[i]))
            for i in rows
        ]


@functools.lru_cache(maxsize=4)
def _scan_grid(n_coef: int) -> tuple[Array, Array]:
    """65 points of ``[0, 1]`` and the nested dense-output basis there: ``s(grid) = coef @ B``
    (the grid on which steps are scanned for a first exit or an excursion)."""
    grid = np.linspace(0.0, 1.0, 65)
    eye = np.eye(n_coef)
    basis = np.stack([_nested(np.repeat(eye[i:i + 1], grid.size, 0), grid) for i in range(n_coef)])
    return grid, basis


class _Restricted:
    """The collective field on the propagators of the faces ``keep`` only (the others: ``I``)."""

    def __init__(self, field_: CollectiveField, keep: NDArray[np.bool_]) -> None:
        self.field = field_
        self.keep = np.flatnonzero(keep)
        self.P = self.keep.size
        q = field_.q
        self._full = np.tile(np.eye(q), (field_.P, 1, 1))

    def expand(self, y: Array, fill: Array | None = None) -> Array:
        """The full ``(P, q, q)`` stack: ``y`` on the kept faces, ``fill`` (default ``I``)
        elsewhere."""
        full = (self._full if fill is None else fill).copy()
        full[self.keep] = y.reshape(self.P, self.field.q, self.field.q)
        return full

    def __call__(self, t: float, y: Array) -> Array:
        q = self.field.q
        out = self.field(t, self.expand(y).reshape(-1)).reshape(-1, q, q)
        return out[self.keep].reshape(-1)

    def jac(self, t: float, y: Array) -> Array:
        """Forward-difference Jacobian (scipy's adaptive ``num_jac`` diverges on the exactly
        zero columns this field has at convergence; the implicit solver only needs an
        approximation for its Newton iterations)."""
        f0 = self(t, y)
        J = np.empty((y.size, y.size))
        for c in range(y.size):
            dy = np.sqrt(np.finfo(float).eps) * max(1.0, abs(y[c]))
            yc = y.copy()
            yc[c] += dy
            J[:, c] = (self(t, yc) - f0) / dy
        return J


@dataclass
class _Phase:
    """Which solver runs the propagators: DOP853 (events) or an implicit one (quiet stretches).

    DOP853 hands over after ``after`` consecutive event-free steps; the implicit solver hands
    back when a step would contain an event (the step is redone), or when, after at least
    ``window`` steps, it has used more than ``factor`` times the field evaluations per time
    unit that DOP853 used over its quiet stretch (evaluations, not wall time, so that the
    trajectory is reproducible; its finite-difference Jacobians and its start-up count too,
    hence ``factor`` > 1: 3 gave the fewest evaluations on three_points among 2, 3, 4, 8).
    ``after`` doubles at each hand-back, so a wrong guess costs a bounded share of the work.
    """

    after: int
    window: int = 10
    factor: float = 3.0
    stiff: bool = False
    count: int = 0
    cost: float = 0.0
    dt: float = 0.0
    rate_explicit: float = np.inf
    h_explicit: float | None = None

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
            if self.count >= self.after and self.dt > 0:
                self.rate_explicit = self.cost / self.dt
                self.stiff = True
                self.eventful()
                return True
            return False
        if self.count >= self.window and self.cost > self.factor * self.rate_explicit * self.dt:
            self.leave()
            return True
        return False

    def leave(self) -> None:
        self.stiff = False
        self.after *= 2
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
    ) -> None:
        self.X = np.asarray(X, float)
        self.y = np.asarray(y, float)
        self.n, self.d = self.X.shape
        self.q = self.d + 1
        self.loss = loss
        self.gamma = gamma
        self.opt = options
        self.t = float(t0)
        self._Zcur = np.hstack([np.asarray(W0, float), np.asarray(a0, float)[:, None]])
        self._Phi = None
        self.m = self._Zcur.shape[0]
        self.table = table if table is not None else PatternTable(self.X, gamma)
        self.xnorm = np.linalg.norm(self.X, axis=1)
        self.xhat = np.hstack([self.X, np.zeros((self.n, 1))])
        self.events = EventLog()
        self.h_next = None
        self.nfev = 0
        self.n_steps = 0
        self.n_cut = 0
        self._tiny_steps = 0
        self._recent: list[tuple[float, int, int]] = []
        self._later: dict[int, float] = {}
        self._t_face = np.inf
        self._solver = None
        self.n_restarts = 0
        self.n_rollbacks = 0
        self.n_excursions = 0
        self._seen = np.zeros(0)
        self._phase = _Phase(options.stiff_after)
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
            Z = np.einsum("jab,jb->ja", self._Phi[self.pat], self._Zs)
            self._project_sliding(Z, self.pat)
            self._Zcur = Z
        return self._Zcur

    @Z.setter
    def Z(self, value: Array) -> None:
        self._Zcur = value

    def outputs(self) -> Array:
        """``h_θ(x_k)`` at the current time (from the moments: O(number of faces))."""
        if self._Zcur is None:
            return self._field.outputs(self._Phi)
        W, a = self._Zcur[:, : self.d], self._Zcur[:, self.d]
        S = W @ self.X.T
        return np.where(S > 0, S, self.gamma * S).T @ a

    # ------------------------------------------------------------------ set-up
    def _residuals_direct(self) -> Array:
        if self.opt.frozen_output:
            return self.loss.derivative(np.zeros_like(self.y), self.y)
        W, a = self.Z[:, : self.d], self.Z[:, self.d]
        S = W @ self.X.T
        h = np.where(S > 0, S, self.gamma * S).T @ a
        return self.loss.derivative(h, self.y)

    def _initial_patterns(self) -> NDArray[np.intp]:
        W = self.Z[:, : self.d]
        U = np.sign(W @ self.X.T).astype(np.int8)
        on_face = np.flatnonzero(np.any(U == 0, axis=1))
        if on_face.size:
            r = self._residuals_direct()
            for j in on_face:
                u = U[j].copy()
                if np.all(W[j] == 0):
                    self.events.add(self.t, int(j), -1, EventKind.REACH_ZERO, 0.0, -1, -1)
                    continue
                c = classify(self.Z[j, self.d], u, u, self.X, r, self.gamma)
                K = np.flatnonzero(u == 0)
                U[j, K] = c.signs
                if np.all(c.signs == 0):
                    self.Z[j, : self.d] = self._project_face(W[j], K)
                self.events.add(self.t, int(j), int(K[0]), c.kind, 0.0, -1, -1)
        pat = self.table.index_many(U)
        ev = self.events
        for i in range(len(ev)):
            ev.to_pattern[i] = int(pat[ev.neuron[i]])
        return pat

    def _project_face(self, w: Array, K: NDArray) -> Array:
        XK = self.X[K]
        coef, *_ = np.linalg.lstsq(XK @ XK.T, XK @ w, rcond=None)
        return w - coef @ XK

    # ------------------------------------------------------------------ one step
    def _start_solver(self, t_bound: float) -> None:
        """(Re)start DOP853 at the current state: new moments, ``Φ = I``."""
        tab = self.table.arrays()
        self._project_sliding(self.Z, self.pat)
        P = len(tab)
        C = moments(self.Z, self.pat, P)
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
        self._field = CollectiveField(tab, C, self.X, self.y, self.loss, self.opt.frozen_output,
                                      active=self._integrated)
        self._P = P
        self._occupied = np.flatnonzero(np.bincount(self.pat, minlength=P)[:P] > 0)
        self._Zs = self.Z.copy()
        self._Phi = np.tile(np.eye(self.q), (P, 1, 1))
        self._margins()
        h0 = None if self.h_next is None else min(self.h_next, t_bound - self.t)
        if self._phase.stiff:
            method, fun = _STIFF_SOLVERS[self.opt.stiff_solver], _Restricted(self._field, counts > 0)
        else:
            method, fun = DOP853, self._field
        self._fun = fun
        y0 = np.tile(np.eye(self.q).reshape(-1), fun.P if fun is not self._field else P)
        extra = {"jac": fun.jac} if self._phase.stiff else {}
        self._solver = method(
            fun, self.t, y0, t_bound, rtol=self.opt.rtol, atol=self.opt.atol,
            max_step=self.opt.max_step, first_step=h0, **extra,
        )
        self._regime = self._face_regime_at(np.eye(self.q)[None].repeat(P, 0))
        self._fresh = True
        self.n_restarts += 1

    def _integrated_at(self, p: NDArray) -> NDArray:
        """Whether the faces ``p`` were integrated since the last solver start."""
        p = np.asarray(p)
        ok = p < self._P
        out = np.zeros(p.shape, dtype=bool)
        out[ok] = self._integrated[p[ok]]
        return out

    def _margins(self) -> None:
        """Distance of each neuron to the hyperplanes that bound its face (and to 0 on rays).

        A neuron can change side during the solver's life only once ``‖Φ_u − I‖ ‖z_j‖``
        reaches this distance; the others are not materialised (see :meth:`_detect`).
        """
        tab = self.table.arrays()
        W = self._Zs[:, : self.d]
        self._s_start = (W @ self.X.T) / self.xnorm  # <w_j, x̂_k> at the solver start
        dist = np.abs(self._s_start)
        U = tab.U[self.pat]
        dist[U == 0] = np.inf
        mu = np.min(dist, axis=1)
        on_ray = tab.dim[self.pat] == 1
        mu[on_ray] = np.minimum(mu[on_ray], np.linalg.norm(W[on_ray], axis=1))
        self._mu = mu
        self._znorm = np.linalg.norm(self._Zs, axis=1)

    def step(self, t_bound: float) -> None:
        """Advance to the next accepted point (at most ``t_bound``), applying events.

        Between events one DOP853 instance runs on the propagators ``Φ_p`` (from its start,
        where ``Φ = I``); an applied event, a face event, reaching ``t_bound`` or a propagator
        growing past ``1e3`` (conditioning of ``Φ^{-1}``) restarts it from the current neurons.
        """
        if t_bound - self.t <= 64 * np.spacing(max(abs(t_bound), 1.0)):
            # an event cut landed within rounding of t_bound: no step can be taken; the
            # state moves by less than 64 ulp of time, far below the tolerance
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
                return self._leave_stiff(t_bound, rollback=True)
            raise RuntimeError(f"DOP853 failed at t = {self.t!r}: {msg}")
        t0, t1 = self.t, solver.t
        Phi1_raw = self._fun.expand(solver.y) if self._phase.stiff else solver.y.reshape(P, q, q)
        Phi1 = lorentz_project(Phi1_raw)
        self._proj_move = np.sqrt(np.sum((Phi1 - Phi1_raw) ** 2, axis=(1, 2)))
        dense = None
        F = None
        self._later = {}
        # ‖dΦ_p/dt‖ within the step: the largest stage derivative (DOP853), or the larger of
        # the mean rate and the end derivative (Radau); with a safety factor 2 (``sweep``) it
        # bounds how far a neuron moved *inside* the step
        if self._phase.stiff:
            speed = np.sqrt(np.sum((Phi1 - self._Phi) ** 2, axis=(1, 2))) / (t1 - t0)
            f_end = self._fun.expand(solver.f, fill=np.zeros_like(Phi1))
            speed = np.maximum(speed, np.sqrt(np.sum(f_end**2, axis=(1, 2))))
        else:
            Kst = solver.K.reshape(-1, P, q, q)
            speed = np.sqrt(np.max(np.sum(Kst**2, axis=(2, 3)), axis=0))
        h = t1 - t0
        sweep = 2.0 * h * speed
        # only neurons whose face propagator moved them by their margin can have changed side
        move = np.sqrt(np.sum((Phi1 - np.eye(q)) ** 2, axis=(1, 2)))
        near = np.flatnonzero((move + sweep)[self.pat] * self._znorm >= 0.9 * self._mu)
        Z1n = np.einsum("jab,jb->ja", Phi1[self.pat[near]], self._Zs[near])
        cand = self._detect(Z1n, near)
        excursion = self._suspect_excursions(near, Z1n, sweep, lambda: self._bend(Phi1, speed, h))
        regime1 = self._face_regime_at(Phi1)
        face_change = bool(np.any(regime1 != self._regime))
        if self._phase.stiff and (cand is not None or face_change
                                  or self._implicit_excursion(excursion, near, solver)):
            # events are located on DOP853's dense output only: redo this step there
            return self._leave_stiff(t_bound, rollback=True)
        self.n_steps += 1
        self.h_next = solver.h_abs
        if self._phase.stiff:  # cleared above on the implicit solver's dense output
            excursion = (excursion[0][:0], excursion[1][:0])
        if cand is not None or face_change or excursion[0].size:
            dense = solver.dense_output()
            F = np.concatenate([dense.y_old[None], dense.F], axis=0).reshape(-1, P, q, q)
        if excursion[0].size:
            cand = self._excursions(cand, excursion, Z1n, near, F)
        located = None if cand is None else self._locate_neuron_events(cand, F, t0, t1)
        t_face, faces = (np.inf, []) if not face_change else self._face_events(dense, t0, t1, P)
        self._t_face = t_face
        if located is None and not faces:
            self._Phi, self._Zcur, self.t = Phi1, None, float(t1)
            self._fresh = False
            self._regime = regime1
            # conditioning of Φ^{-1} matters where neurons are (1e3); the propagators of empty
            # faces (needed when an event brings a neuron in) may grow: keep them finite (1e100)
            big = np.max(np.abs(Phi1[self._occupied]), initial=0.0) > 1e3
            if big or np.max(np.abs(Phi1)) > 1e100:
                self._solver = None
            self._zeno_guard(t0, t1)
            self._quiet_step(field_.nfev - fev0, t1 - t0)
            return
        Z1 = np.einsum("jab,jb->ja", Phi1[self.pat], self._Zs)
        t_cut = self._choose_cut(located, t_face, t0, t1)
        assert t0 <= t_cut <= t1, (t0, t_cut, t1)
        pending = [] if located is None else located.upto(t_cut)
        t_cut = self._advance(t_cut, t1, Phi1, Z1, F, field_, pending, faces, P)
        if t_cut < t1:
            self.n_cut += 1
            # the next step restarts here: most of a step much longer than the events applied
            # would be located again and cut again, so it starts at twice this span
            self.h_next = min(self.h_next, max(2.0 * (t_cut - t0), 1e-3 * self.h_next))
        self._solver = None
        self._phase.eventful()
        self._zeno_guard(t0, t_cut)

    # ------------------------------------------------------------------ stiff phase
    def _quiet_step(self, nfev: int, dt: float) -> None:
        """Book-keeping after an event-free step: switch between DOP853 and the stiff solver."""
        if self.opt.stiff_solver is None:
            return
        switch = self._phase.quiet(nfev, dt, self.h_next)
        if switch:
            self._solver = None
            if not self._phase.stiff:
                self.h_next = self._phase.h_explicit

    def _leave_stiff(self, t_bound: float, rollback: bool) -> None:
        """Discard the implicit solver's last step and redo it with DOP853 (from ``self.t``)."""
        self._phase.leave()
        self.n_rollbacks += rollback
        self._solver = None
        self.h_next = self._phase.h_explicit
        self.step(t_bound)

    # ------------------------------------------------------------------ events
    def _poly(self, F: Array, pats: NDArray, left: Array, right: Array) -> Array:
        """Coefficients of ``left_c · Φ_{p_c}(t) · right_c`` in the nested dense form."""
        return np.einsum("icab,ca,cb->ci", F[:, pats], left, right)

    def _detect(self, Zn: Array, idx: NDArray):
        """Candidate pairs among the neurons ``idx`` (states ``Zn``) at the end of a step.

        Returns global neuron indices ``jj``, data indices ``kk``, the neurons ``zz`` of
        1-dimensional faces that reached ``w = 0``, and their states ``(a_j)`` at step end.
        """
        if idx.size == 0:
            return None
        tab = self.table
        d = self.d
        pat = self.pat[idx]
        # sign changes smaller than what the Lorentz projection moved the neuron are not
        # trusted (the located root lives on the unprojected dense output)
        slack = 2 * self._proj_move[pat] * self._znorm[idx]
        jj, kk = detect_crossings(Zn[:, :d], self.X, tab.U[pat], slack)
        on_ray = tab.dim[pat] == 1
        zz = detect_zero_crossings(Zn[:, :d], tab.ray[pat[on_ray]], on_ray)
        if jj.size == 0 and zz.size == 0:
            return None
        a_end = np.concatenate([Zn[jj, d], Zn[zz, d]])
        return idx[jj], kk, idx[zz], a_end

    def _bend(self, Phi1: Array, speed: Array, h: float) -> Array:
        """``h²/8 · sup ‖d²Φ_p/dt²‖`` on the step (with a safety factor 2), per face.

        ``Φ'' = M' Φ + M Φ'``: ``‖M'‖`` from the face fields at both ends, ``‖M‖ ≤ ‖D_p‖``
        and ``‖Φ'‖ <=`` the largest stage derivative. A smooth ``s(t)`` stays within this of
        its chord, so it cannot reach the other side of a hyperplane when both ends are
        farther than that on the right side.
        """
        G0 = self._field.face_fields(self._Phi).copy()
        G1 = self._field.face_fields(Phi1)
        g0, g1 = np.linalg.norm(G0, axis=1), np.linalg.norm(G1, axis=1)
        dG = np.linalg.norm(G1 - G0, axis=1) / h
        size = np.maximum(np.sqrt(np.sum(self._Phi**2, axis=(1, 2))),
                          np.sqrt(np.sum(Phi1**2, axis=(1, 2))))
        return 2.0 * h * h / 8.0 * (dG * size + np.maximum(g0, g1) * speed)

    def _suspect_excursions(self, near: NDArray, Z1n: Array, sweep: Array,
                            bend: Callable[[], Array]):
        """Pairs ``(j, k)`` on their side at both ends of the step that may have left it inside.

        A neuron can cross a hyperplane and come back within one step (no sign change at the
        step end). That needs ``|<w_j, x̂_k>|`` at both ends below how far the step moved it,
        ``sweep_p ‖z_j‖`` (``sweep_p`` bounds ``‖Φ_p(t) − Φ_p(t_0)‖`` on the step), and at
        one end at least below how far ``s`` can bend away from its chord, ``bend_p ‖z_j‖``
        (``bend()``, :meth:`_bend`). Returns the positions in ``near`` and the data indices of
        the pairs.
        """
        if near.size == 0:
            return np.zeros(0, np.intp), np.zeros(0, np.intp)
        d = self.d
        pat = self.pat[near]
        zn = self._znorm[near]
        reach = (sweep[pat] * zn)[:, None]
        s1 = (Z1n[:, :d] @ self.X.T) / self.xnorm
        a1 = np.abs(s1)
        rows, kk = np.nonzero(a1 <= reach)  # few: both ends must be close
        U = self.table.U[pat[rows], kk]
        keep = (U != 0) & (np.sign(s1[rows, kk]) == U)
        rows, kk = rows[keep], kk[keep]
        if rows.size == 0:
            return rows, kk
        if self._fresh:  # the step starts at the solver start: Φ = I
            s0 = self._s_start[near[rows], kk]
        else:
            Z0 = np.einsum("jab,jb->ja", self._Phi[pat[rows]], self._Zs[near[rows]])
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

    def _excursions(self, cand, excursion, Z1n: Array, near: NDArray, F: Array):
        """Add to ``cand`` the suspect pairs whose dense output does leave their side.

        Each suspect polynomial ``s(x) = <x_k, w_j(x)>`` is evaluated on 65 points of the step
        (``x = 0, 1/64, ..., 1``); a point on the wrong side beyond the dense output's accuracy
        (:meth:`_beyond`) brackets the first exit, located then like any event.
        """
        rows, kk = excursion
        js = near[rows]
        coef = self._poly(F, self.pat[js], self.xhat[kk], self._Zs[js])
        grid, basis = _scan_grid(coef.shape[1])
        wrong = self._beyond(coef @ basis, js, kk, np.max(np.abs(coef), axis=1))
        hit = np.flatnonzero(np.any(wrong, axis=1))
        self.n_excursions += hit.size
        if hit.size == 0:
            return cand
        first = np.maximum(np.argmax(wrong[hit], axis=1), 1)
        lo, hi = grid[first - 1], grid[first]
        jx, kx = js[hit], kk[hit]
        a_x = Z1n[rows[hit], self.d]
        if cand is None:
            cand = (np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0))
        jj, kc, zz, a_end = cand[:4]
        return (jj, kc, zz, a_end, (jx, kx, lo, hi, a_x))

    @staticmethod
    def _brackets(coef: Array, side: NDArray) -> tuple[Array, Array, Array]:
        """Brackets of the first exit from the pattern's side ``side`` (±1) on ``[0, 1]``.

        A neuron that starts the step on its hyperplane (placed there by a previous event) may
        first move into its side and come back within the step: the event is then that
        return, not ``x = 0``.  Such rows are scanned on a grid; a row that never shows its
        side leaves it at once — ``observed`` is then the side it goes to (else 0).
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
        grid, basis = _scan_grid(coef.shape[1])
        grid, vals = grid[1:], coef[rows] @ basis[:, 1:]
        ok = np.sign(vals) == side[rows, None]
        for i, row in enumerate(rows):
            first = np.flatnonzero(ok[i])
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

    def _locate_neuron_events(self, cand, F: Array, t0: float, t1: float) -> "_Located | None":
        """Locate the candidates' first crossings in the step; one event per neuron (its
        earliest; simultaneous ones merged), the neuron's next one noted in ``self._later``."""
        tab = self.table
        jj, kk, zz, a_end = cand[:4]
        self._later = {}
        neurons = np.concatenate([jj, zz])
        left = np.concatenate(
            [self.xhat[kk], np.hstack([tab.ray[self.pat[zz]], np.zeros((zz.size, 1))])]
        )
        coef = self._poly(F, self.pat[neurons], left, self._Zs[neurons])
        lo, hi, observed = self._brackets(
            coef, np.concatenate([tab.U[self.pat[jj], kk], np.ones(zz.size, np.int8)]))
        kk_all = np.concatenate([kk, np.full(zz.size, -1)])
        if len(cand) > 4:  # excursions inside the step, with their brackets (:meth:`_excursions`)
            jx, kx, lox, hix, a_x = cand[4]
            neurons = np.concatenate([neurons, jx])
            coef = np.concatenate([coef, self._poly(F, self.pat[jx], self.xhat[kx], self._Zs[jx])])
            lo, hi = np.concatenate([lo, lox]), np.concatenate([hi, hix])
            observed = np.concatenate([observed, np.zeros(jx.size, np.int8)])
            a_end = np.concatenate([a_end, a_x])
            kk_all = np.concatenate([kk_all, kx])
        keep = ~np.isnan(lo)
        if not np.any(keep):
            return None
        coef, lo, hi, observed = coef[keep], lo[keep], hi[keep], observed[keep]
        neurons, a_end = neurons[keep], a_end[keep]
        kk_all = kk_all[keep]
        x, res = locate_roots(coef, lo, hi)
        ds = _nested_derivative(coef, x) / (t1 - t0)
        tt = t0 + x * (t1 - t0)
        a = np.abs(a_end)
        kinds = kk_all
        rate = np.where(kinds >= 0, a * np.abs(ds) * self.xnorm[np.maximum(kinds, 0)], 0.0)
        located, self._later = _Located.group(neurons, tt, x, kinds, rate, np.abs(res), observed)
        return located

    def _face_regime_at(self, Phi: Array) -> NDArray:
        """Regime code of every face: 0 while its free slopes are interior to ``[γ, 1]``.

        For faces with one free slope the code is the side of ``[γ, 1]`` where the unclipped
        minimiser ``η*`` lies; with several, the active set of the box problem.  Only occupied
        faces with free slopes count (others get 0).
        """
        tab = self.table
        P = self._P
        codes = np.zeros(P, dtype=np.int64)
        occupied = np.bincount(self.pat, minlength=P)[:P] > 0
        faces = np.flatnonzero(occupied & (np.sum(tab.U[:P] == 0, axis=1) > 0) & (tab.dim[:P] > 0))
        if faces.size == 0:
            return codes
        r = self._field.residuals(Phi)
        _, eta_star = tab.fields(r)
        for p in faces:
            if not np.isnan(eta_star[p]):
                codes[p] = -1 if eta_star[p] < self.gamma else (1 if eta_star[p] > 1 else 0)
            elif np.sum(tab.U[p] == 0) > 1:
                e = tab.free_slopes(p, r)[tab.U[p] == 0]
                w = 3 ** np.arange(e.size)
                codes[p] = int(np.sum(w * np.where(e <= self.gamma, 1, np.where(e >= 1.0, 2, 0))))
        return codes

    def _face_events(self, dense, t0, t1, P):
        """Earliest time in (t0, t1] where an occupied sliding face changes regime (bisection)."""
        q = self.q

        def regime(t):
            return self._face_regime_at(dense(t).reshape(P, q, q))

        r0 = self._regime
        lo, hi = t0, t1
        while hi - lo > 4 * np.spacing(max(abs(hi), 1.0)):
            mid = 0.5 * (lo + hi)
            if mid <= lo or mid >= hi:
                break
            if np.any(regime(mid) != r0):
                hi = mid
            else:
                lo = mid
        rh = regime(hi)
        return hi, [int(p) for p in np.flatnonzero(rh != r0)]

    def _choose_cut(self, located: "_Located | None", t_face, t0, t1):
        """Latest admissible cut time for the batch of located events.

        An event of neuron ``j`` at ``t*`` applied at the cut ``t_c > t*`` leaves the outputs
        wrong on ``(t*, t_c]`` by at most ``(1 − γ) |a_j ds/dt| (t − t*)`` to first order (the
        neuron's term ``a_j σ(<w_j, x_k>)`` changes slope there), which perturbs every
        propagator by at most ``c_l (1 − γ) |a_j ṡ| ‖x_k‖ max_i ‖x_i‖ (t_c − t*)² / (2 n)``
        (``c_l`` the Lipschitz constant of ``∂_1 l``, 1 by Assumption 1).  The cut is the latest
        event time (or ``t1``) at which the sum of these bounds stays below ``batch_tol``.  It
        never goes past a face event or a second event of a neuron switched in this step.
        """
        limit = min(t1, t_face)
        for tl in self._later.values():
            limit = min(limit, tl)
        if located is None:
            return limit
        times = located.t
        if t_face <= times[0]:
            return t_face
        coeff = located.rate.copy()
        coeff *= (1.0 - self.gamma) * self.loss.curvature_bound * np.max(self.xnorm) / (2 * self.n)
        budget = self.opt.batch_budget
        later_limit = min(self._later.values(), default=np.inf)
        cands = np.append(times, limit)
        cands = cands[(cands <= limit) & (cands >= times[0]) & (cands < later_limit)]
        if cands.size == 0:
            return float(times[0])
        # B(t_c) = Σ_{t_i <= t_c} c_i (t_c − t_i)², by prefix sums (times sorted, shifted to t0
        # against cancellation); B is non-decreasing in t_c, so the admissible cuts are a prefix
        cands = np.sort(cands)
        tau, tc = times - t0, cands - t0
        c0, c1, c2 = np.cumsum(coeff), np.cumsum(coeff * tau), np.cumsum(coeff * tau * tau)
        i = np.searchsorted(tau, tc, side="right") - 1
        bound = tc * tc * c0[i] - 2 * tc * c1[i] + c2[i]
        ok = np.flatnonzero(bound <= budget)
        for j in ok[::-1]:  # confirm with the direct sum (rounding of the prefix sums)
            sel = tau <= tc[j]
            if np.sum(coeff[sel] * (tc[j] - tau[sel]) ** 2) <= budget:
                return float(cands[j])
        return float(times[0])

    # ------------------------------------------------------------------ apply
    def _phi_at(self, F: Array, P: int, x: float | Array) -> Array:
        """Propagators of all faces at step fraction ``x`` (scalar: ``(P, q, q)``; array of
        ``E`` fractions: ``(E, P, q, q)``, evaluated in chunks to keep temporaries small)."""
        coef = F.reshape(F.shape[0], -1).T  # (P q q, 8)
        xs = np.atleast_1d(np.asarray(x, float))
        out = np.empty((xs.size, P, self.q, self.q))
        for s in range(0, xs.size, 256):
            xx = xs[s : s + 256]
            vals = _nested(np.tile(coef, (xx.size, 1)), np.repeat(xx, coef.shape[0]))
            out[s : s + 256] = vals.reshape(xx.size, P, self.q, self.q)
        return out[0] if np.ndim(x) == 0 else out

    def _classify_batch(
        self, evs: list[_Pending], F: Array, field_: CollectiveField, P: int
    ) -> dict:
        """States at the event times and where each neuron goes, for a batch of events.

        The common case — one hyperplane reached from an open cell — is decided in one
        vectorised pass by the one-sided normal velocities ``v± = a <D±, x_k>`` (the rule of
        :func:`pwflow.events.classify` for one hyperplane); events on lower-dimensional faces,
        several hyperplanes at once, tangencies (``|v±|`` at rounding level) and ``w = 0`` go
        through :func:`pwflow.events.classify` one by one.  No side effects except registering
        new faces.
        """
        d, n, g = self.d, self.n, self.gamma
        tab = self.table
        E = len(evs)
        js = np.array([e.neuron for e in evs])
        xs = np.array([e.x for e in evs])
        ps = self.pat[js]
        Phis = lorentz_project(self._phi_at(F, P, xs))
        zs = np.einsum("eab,eb->ea", Phis[np.arange(E), ps], self._Zs[js])
        R = field_.residuals(Phis)  # (E, n)
        if R.ndim == 1:
            R = np.broadcast_to(R, (E, n))
        U_prev = tab.U[ps]
        U_new = U_prev.copy()
        kinds = np.zeros(E, dtype=np.int8)
        k_log = np.array([e.ks[0] if not e.zero else -1 for e in evs])
        resid = np.zeros(E)
        simple = np.array([(not e.zero) and len(e.ks) == 1 for e in evs])
        simple &= np.all(U_prev != 0, axis=1)
        if np.any(simple):
            i = np.flatnonzero(simple)
            k = k_log[i]
            xk = self.X[k]
            eta = np.where(U_prev[i] > 0, 1.0, g)
            eta[np.arange(i.size), k] = 0.0
            b = -np.einsum("en,en,nd->ed", eta, R[i], self.X) / n
            z = -(R[i, k] / n)[:, None] * xk
            a = zs[i, d]
            Dp, Dm = b + z, b + g * z
            vp = a * np.einsum("ed,ed->e", Dp, xk)
            vm = a * np.einsum("ed,ed->e", Dm, xk)
            # staying is consistent iff the slope making <D, x_k> = 0 lies in [γ, 1], i.e.
            # v+ v− <= 0; it is then the minimal-norm choice. Otherwise both one-sided
            # velocities agree and the neuron leaves to their side.
            side = np.where(vp * vm <= 0, 0, np.sign(vp)).astype(np.int8)
            prev = U_prev[i, k]
            kd = np.where(side == 0, EventKind.ENTER_SLIDING,
                          np.where(side == -prev, EventKind.CROSSING, EventKind.GRAZING))
            # at a tangency the first-order rule can say "back to the previous side" while the
            # step showed the neuron leaving to the other side at once: follow the motion
            obs = np.array([evs[e].observed for e in i], dtype=np.int8)
            override = (obs != 0) & (side == prev)
            side[override] = obs[override]
            kd[override] = EventKind.CROSSING
            U_new[i, k] = side
            kinds[i] = kd
        for e in np.flatnonzero(~simple):
            ev = evs[e]
            if ev.zero:
                U_new[e] = 0
                kinds[e] = EventKind.REACH_ZERO
                continue
            u_face = U_prev[e].copy()
            u_face[ev.ks] = 0
            c = classify(zs[e, d], u_face, U_prev[e], self.X, R[e], g)
            U_new[e] = u_face
            U_new[e, u_face == 0] = c.signs
            kinds[e] = c.kind
        # place each neuron exactly on the hyperplanes it reached (changes ‖w‖² only at second
        # order in the located residual, so Lemma 1 is unaffected); w = 0 events: w := 0
        zero = np.array([ev.zero for ev in evs])
        zs[zero, :d] = 0.0
        xk_max = np.array([np.max(self.xnorm[ev.ks]) if not ev.zero else 1.0 for ev in evs])
        poly = np.array([ev.poly_residual for ev in evs])
        wn = np.maximum(np.linalg.norm(zs[:, :d], axis=1), 1e-300)
        resid = np.where(zero, 0.0, poly / (xk_max * wn))
        reach = np.zeros((E, n), dtype=bool)
        reach[np.arange(E)[~zero], k_log[~zero]] = True
        for e in np.flatnonzero(np.array([len(ev.ks) > 1 for ev in evs]) & ~zero):
            reach[e, evs[e].ks] = True
        reach |= (U_new == 0) & ~zero[:, None]
        one = np.sum(reach, axis=1) == 1
        if np.any(one):
            i = np.flatnonzero(one)
            k = np.argmax(reach[i], axis=1)
            xk = self.X[k]
            zs[i, :d] -= (np.einsum("ed,ed->e", zs[i, :d], xk) / self.xnorm[k] ** 2)[:, None] * xk
        for e in np.flatnonzero(np.sum(reach, axis=1) > 1):
            zs[e, :d] = self._project_face(zs[e, :d], np.flatnonzero(reach[e]))
        p_new = tab.index_many(U_new)
        tab.arrays()
        return {"js": js, "ts": np.array([e.t for e in evs]), "ps": ps, "p_new": p_new,
                "zs": zs, "Phis": Phis, "kinds": kinds, "k_log": k_log, "resid": resid}

    def _advance(self, t_cut, t1, Phi1, Z1, F, field_, pending, faces, P):
        tab = self.table
        h = t1 - self.t
        todo = [e for e in pending if e.t <= t_cut]
        B = self._classify_batch(todo, F, field_, P) if todo else None
        if B is not None and np.any(~self._integrated_at(B["p_new"])):
            # an event entering a face not integrated in this step: cut there
            t_cut = min(t_cut, float(np.min(B["ts"][~self._integrated_at(B["p_new"])])))
        if t_cut < t1 and faces and t_cut < self._t_face:
            faces = []
        while True:
            xc = (t_cut - self.t) / h if h > 0 else 1.0
            Phic = Phi1 if t_cut == t1 else lorentz_project(self._phi_at(F, P, xc))
            Zc = Z1.copy() if t_cut == t1 else np.einsum("jab,jb->ja", Phic[self.pat], self._Zs)
            if B is None:
                sel = np.zeros(0, dtype=np.intp)
                break
            sel = np.flatnonzero(B["ts"] <= t_cut)
            js, pn, zs = B["js"][sel], B["p_new"][sel], B["zs"][sel]
            move = self._integrated_at(pn) & (B["ts"][sel] < t_cut)
            Zc[js] = zs
            if not np.any(move):
                break
            i = np.flatnonzero(move)
            Phis_new = B["Phis"][sel[i], pn[i]]
            Zc[js[i]] = np.einsum("eab,ebc,ec->ea", Phic[pn[i]], lorentz_inverse(Phis_new), zs[i])
            U = tab.U[pn[i]]
            s = np.sign(Zc[js[i], : self.d] @ self.X.T)
            bad = np.any((U != 0) & (s != U), axis=1)
            if not np.any(bad):
                break
            # a switched neuron changed side again before the cut: cut at its event
            t_cut = float(np.min(B["ts"][sel[i[bad]]]))
            faces = []
        new_pat = self.pat.copy()
        if B is not None:
            new_pat[B["js"][sel]] = B["p_new"][sel]
            for e in sel:
                self.events.add(float(B["ts"][e]), int(B["js"][e]), int(B["k_log"][e]),
                                int(B["kinds"][e]), float(B["resid"][e]), int(B["ps"][e]),
                                int(B["p_new"][e]))
                self._recent.append((float(B["ts"][e]), int(B["js"][e]), int(B["k_log"][e])))
        # neurons on faces (including those about to leave one at t_cut) lie on its hyperplanes
        tab.arrays()
        self._project_sliding(Zc, new_pat)
        if faces:
            self._leave_faces(faces, Zc, new_pat, field_.residuals(Phic), t_cut)
        tab.arrays()
        self.Z = Zc
        self.pat = new_pat
        self.t = float(t_cut)
        return t_cut

    def _leave_faces(self, faces, Z: Array, new_pat: NDArray, r: Array, t: float) -> None:
        """Move the neurons of faces whose free slope left ``[γ, 1]`` off their hyperplane.

        With one free slope, ``<D(η), x_k> = (η* − η) r_k ‖x_k‖² / n``: once ``η* > 1`` both
        one-sided normal velocities ``a <D(η), x_k>`` have the sign of ``a r_k`` (of ``−a r_k``
        once ``η* < γ``), so the neuron leaves to that side — where the field is consistent.
        At the event time itself that velocity is zero, so the rule is applied to the sign
        rather than to a numerical velocity.  Faces with several free slopes are classified by
        :func:`pwflow.events.classify`.
        """
        tab = self.table
        d = self.d
        _, eta_star = tab.fields(r)
        for p in faces:
            members = np.flatnonzero(new_pat == p)
            u_face = tab.U[p].copy()
            K = np.flatnonzero(u_face == 0)
            for j in members:
                u_new = u_face.copy()
                if K.size == 1 and not np.isnan(eta_star[p]) and r[K[0]] != 0:
                    # which bound η* went through (it is within rounding of it here)
                    out = 1.0 if eta_star[p] > 0.5 * (1.0 + self.gamma) else -1.0
                    u_new[K[0]] = int(np.sign(Z[j, d] * r[K[0]]) * out) or int(out)
                else:
                    c = classify(Z[j, d], u_face, u_face, self.X, r, self.gamma)
                    u_new[K] = c.signs
                p_new = tab.index(u_new)
                if p_new != p:
                    new_pat[j] = p_new
                    self.events.add(t, int(j), int(K[0]), EventKind.LEAVE_SLIDING, 0.0, p, p_new)
                    self._recent.append((t, int(j), int(K[0])))

    def _project_sliding(self, Z: Array, pat: NDArray) -> None:
        """Keep neurons of lower-dimensional faces exactly on their hyperplanes.

        The face fields keep ``<w, x_k>`` constant for ``k ∈ K``; this removes the rounding-
        and tolerance-level drift (orthogonal projection onto ``{w : <w, x_k> = 0, k ∈ K}``,
        which changes ``‖w‖²`` only at second order, so Lemma 1 is unaffected).
        """
        tab = self.table
        d = self.d
        on_face = tab.nfree[pat] > 0
        if not np.any(on_face):
            return
        sliding = np.flatnonzero(on_face)
        Pm = tab.projectors()[pat[sliding]]  # (s, d, d): projection onto span(x_K)
        Z[sliding, :d] -= np.einsum("sij,sj->si", Pm, Z[sliding, :d])



    def _zeno_guard(self, t0: float, t1: float) -> None:
        win = self.opt.zeno_window * (1 + abs(t1))
        if t1 - t0 <= 1e3 * np.spacing(1 + abs(t1)):
            self._tiny_steps += 1
        else:
            self._tiny_steps = 0
        N = int(self.opt.zeno_events)
        if len(self._recent) > N:
            self._recent = self._recent[-N:]
        if len(self._recent) == N:
            ts = [e[0] for e in self._recent]
            js = {e[1] for e in self._recent}
            if len(js) == 1 and ts[-1] - ts[0] <= win:
                _, j, k = self._recent[-1]
                raise ZenoError(
                    f"neuron {j} had {N} events at data point {k} within {ts[-1] - ts[0]:.3g} "
                    f"time units ending at t = {ts[-1]:.17g} (chattering)"
                )
        if self._tiny_steps >= N:
            j, k = (self._recent[-1][1], self._recent[-1][2]) if self._recent else (-1, -1)
            raise ZenoError(
                f"{N} consecutive steps of at most 1000 ulp ending at t = {t1:.17g}; last "
                f"event: neuron {j}, data point {k}"
            )



def _snapshot_times(
    t_max: float, m: int, q: int, t_eval: ArrayLike | None, n_snapshots: int | None
) -> Array:
    if t_eval is not None:
        te = np.asarray(t_eval, float).ravel()
        if not np.all(np.isfinite(te)) or np.any(te < 0) or np.any(te > t_max):
            raise ValueError(f"t_eval must lie in [0, t_max] = [0, {t_max}]")
        return np.unique(np.concatenate([[0.0], te, [t_max]]))
    if n_snapshots is None:
        # keep the stored snapshots under ~400 MB
        n_snapshots = int(np.clip(4e8 / (8 * m * q), 8, 100))
    if int(n_snapshots) != n_snapshots or n_snapshots < 2:
        raise ValueError(f"n_snapshots must be an integer >= 2, got {n_snapshots!r}")
    if t_max == 0:
        return np.array([0.0])
    first = min(1e-2, t_max / 10)
    grid = np.geomspace(first, t_max, max(int(n_snapshots) - 1, 1))
    return np.unique(np.concatenate([[0.0], grid, [t_max]]))


class _Progress:
    def __init__(self, enabled: bool, t_max: float) -> None:
        import sys

        self.enabled = enabled and t_max > 0
        self.t_max = t_max
        self.stream = sys.stderr
        self.last = 0.0
        self.start = time.perf_counter()

    def update(self, flow: "HybridFlow", force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self.last < 0.5:
            return
        self.last = now
        frac = flow.t / self.t_max
        bar = "#" * int(30 * frac)
        self.stream.write(
            f"\r[{bar:<30}] t = {flow.t:.4g}/{self.t_max:.4g}  steps {flow.n_steps}  "
            f"events {len(flow.events)}  {now - self.start:.1f}s"
        )
        if force:
            self.stream.write("\n")
        self.stream.flush()


def simulate(
    data: Dataset,
    init: Init,
    t_max: float,
    *,
    gamma: float = 0.0,
    loss: str | Loss = "square",
    rtol: float = 1e-10,
    atol: float = 1e-12,
    batch_tol: float | None = None,
    frozen_output: bool = False,
    t_eval: ArrayLike | None = None,
    n_snapshots: int | None = None,
    max_step: float = np.inf,
    progress: bool = False,
    callback: Callable[[HybridFlow], None] | None = None,
    options: FlowOptions | None = None,
    store: str | None = None,
    overwrite: bool = False,
    checkpoint_every: float | None = None,
    stall_steps: int | None = STALL_STEPS,
    resume_from: "Checkpoint | None" = None,
) -> "Trajectory":
    """Compute the trajectory of the subgradient flow (Eq. (2)/(6)) exactly, cone by cone.

    Parameters
    ----------
    data : Dataset
        Training data ``(x_k, y_k)``.
    init : Init
        Initial neurons ``(w_j^0, a_j^0)`` (Eq. (3)).
    t_max : float
        Final time (``>= 0``).
    gamma : float
        Leaky-ReLU slope in ``[0, 1]``.
    loss : str or Loss
        ``'square'`` (``½(ŷ − y)²``), ``'logistic'`` or a :class:`pwflow.model.Loss`.
    rtol, atol, batch_tol, frozen_output, max_step
        See :class:`FlowOptions`; ``options`` overrides them all.
    t_eval : array, optional
        Times at which to store the neurons (plus 0 and ``t_max``); default geometric.
    n_snapshots : int, optional
        Number of geometric snapshot times when ``t_eval`` is not given.
    progress : bool
        Print a progress bar to stderr.
    callback : callable, optional
        Called with the integrator after every step.
    store : path, optional
        A directory: snapshots are streamed there as they are taken (memory-mapped ``.npy``
        files, never held in memory) and the rest of the run is written at the end
        (``run.npz``); :meth:`Trajectory.load` reads the directory back.  The store is
        crash-consistent (:mod:`pwflow.store`); an existing non-empty folder is refused
        unless ``overwrite``.
    overwrite : bool
        Replace an existing store.
    checkpoint_every : float, optional
        Seconds between checkpoints of a store (event and step logs and the resume mark, at
        the next snapshot time); default 60 with ``store``.  See :mod:`pwflow.resume`.
    stall_steps : int or None
        Progress budget (:class:`pwflow.guard.RunGuard`): a run whose time advances by less
        than 1e-4 of the remaining interval in this many steps stops with
        ``Status.NO_PROGRESS``; ``None`` disables it.
    resume_from : Checkpoint, optional
        Continue a run (:func:`pwflow.resume.resume`; used by :meth:`Trajectory.resume`).

    Returns
    -------
    Trajectory
        With ``status`` 0 on success; a run stopped by the Zeno guard, a solver failure,
        overflow (``NON_FINITE``, the last finite state kept), the progress budget or Ctrl-C,
        SIGTERM or SIGHUP returns what was computed, with ``status`` and ``message`` saying why.

    Raises
    ------
    ValueError
        For invalid input (the message names the argument).
    """
    from .trajectory import Trajectory, versions

    if not isinstance(data, Dataset):
        raise ValueError(f"data must be a pwflow.Dataset, got {type(data).__name__}")
    if not isinstance(init, Init):
        raise ValueError(f"init must be a pwflow.Init, got {type(init).__name__}")
    if init.d != data.d:
        raise ValueError(f"init has neurons in dimension {init.d} but the data has d = {data.d}")
    t_max = check_time(t_max, "t_max")
    gamma = check_gamma(gamma)
    loss_fn = get_loss(loss)
    if options is None:
        options = FlowOptions(rtol, atol, batch_tol, max_step, frozen_output)
    options = options.validated()
    q = data.d + 1
    snaps = _snapshot_times(t_max, init.m, q, t_eval, n_snapshots)
    guard = RunGuard(t_max, stall_steps)
    ck = resume_from
    meta = {
        "method": "flow",
        "dataset": {"name": data.name, **{k: v for k, v in data.meta.items() if _plain(v)}},
        "init": {"kind": init.kind, "scale": init.scale, "seed": init.seed, "m": init.m},
        "options": {
            "rtol": options.rtol, "atol": options.atol, "batch_tol": options.batch_tol,
            "max_step": float(options.max_step),
            "frozen_output": options.frozen_output, "zeno_events": options.zeno_events,
            "zeno_window": options.zeno_window, "face_memory": options.face_memory,
            "stiff_solver": options.stiff_solver, "stiff_after": options.stiff_after,
        },
        "t_max": t_max,
        "versions": versions(),
    }

    start = time.perf_counter() - (0.0 if ck is None else ck.mark.wall_time)
    try:
        with np.errstate(over="raise", invalid="raise"):
            if ck is None:
                flow = HybridFlow(data.X, data.y, init.W, init.a, loss_fn, gamma, options)
            else:
                flow = ck.make_flow(data.X, data.y, loss_fn, gamma, options)
    except FloatingPointError as err:
        raise ValueError(f"data: the inputs are too large for double precision ({err} in "
                         f"the norms |x_k| or the initial state); rescale the data") from None
    if ck is None:  # bad input is refused before any file is touched
        with np.errstate(over="raise", invalid="raise"):
            try:
                h0 = flow.outputs()
                RunGuard(t_max).outputs(h0, loss_fn(h0, data.y), flow.t)
            except (FloatingPointError, NonFinite) as err:
                raise ValueError(
                    f"init: the outputs h(x_k) and the loss of the initial network overflow "
                    f"({err}); reduce the initialisation scale or rescale the data"
                ) from None
    snap_t = [] if ck is None else list(ck.snap_t)
    snap_Z = [] if ck is None or ck.snap_Z is None else list(ck.snap_Z)
    snap_pat = [] if ck is None or ck.snap_pat is None else list(ck.snap_pat)
    sink = None
    if store is not None:
        header = {"gamma": gamma, "loss_name": loss_fn.name, "meta": meta}
        sink = _SnapshotSink(store, len(snaps) + 1, init.m, q, X=data.X, y=data.y,
                             header=header, resume_rows=None if ck is None else len(snap_t),
                             overwrite=overwrite)
        checkpoint_every = 60.0 if checkpoint_every is None else checkpoint_every
    step_t = [] if ck is None else list(ck.step_t)
    step_h = [] if ck is None else list(ck.step_h)
    marks = [ck.mark] if ck is not None else []
    last_ckpt = [time.perf_counter()]

    def record_step() -> None:
        h = flow.outputs()
        guard.outputs(h, loss_fn(h, data.y), flow.t)
        step_t.append(flow.t)
        step_h.append(h)

    def snapshot(i_next: int | None = None) -> None:
        if sink is not None:
            sink.write(len(snap_t), flow.Z, flow.pat, [*snap_t, flow.t], flow.table.arrays().U)
        else:
            snap_Z.append(flow.Z.copy())
            snap_pat.append(flow.pat.copy())
        snap_t.append(flow.t)
        if i_next is not None:  # a grid snapshot: the run can be resumed exactly here
            marks.append(take_mark(flow, snaps, i_next, len(snap_t), len(step_t),
                                   time.perf_counter() - start))
            # the first checkpoint at t0: a run killed before the next one resumes from there
            if sink is not None and (len(marks) == 1 or time.perf_counter() - last_ckpt[0]
                                     >= checkpoint_every):
                sink.checkpoint(marks[-1].to_dict(), flow.events.arrays(), step_t, step_h,
                                flow.table.arrays().U)
                last_ckpt[0] = time.perf_counter()

    status, message = Status.FINISHED, str(Status.FINISHED)
    bar = _Progress(progress, t_max)
    try:
        with watch():
            if ck is None:
                record_step()
                snapshot(1)
                i_snap = 1
            else:
                i_snap = ck.mark.i_snap
                if sink is not None:
                    sink.checkpoint(ck.mark.to_dict(), flow.events.arrays(), step_t, step_h,
                                    flow.table.arrays().U)
            while flow.t < t_max:
                target = snaps[i_snap]
                flow.step(target)
                guard.progress(flow.t)
                record_step()
                if flow.t >= target:
                    i_snap += 1
                    snapshot(i_snap)
                if callback is not None:
                    callback(flow)
                bar.update(flow)
    except ZenoError as err:
        status, message = Status.ZENO, f"{Status.ZENO}: {err}"
    except NoProgress as err:
        status, message = Status.NO_PROGRESS, f"{Status.NO_PROGRESS}: {err}"
    except NonFinite as err:
        status, message = Status.NON_FINITE, f"{Status.NON_FINITE}: {err}"
    except FloatingPointError as err:
        status = Status.NON_FINITE
        where = describe_overflow(err, flow.t, getattr(flow, "_Zs", None), data.X)
        message = f"{Status.NON_FINITE}: {where}"
    except RuntimeError as err:
        status, message = Status.FAILED, f"{Status.FAILED}: {err}"
    except KeyboardInterrupt as err:
        if not snap_t:  # before the first snapshot: nothing to keep
            raise
        status = Status.INTERRUPTED
        message = f"{describe_interrupt(err)}; the trajectory so far is kept"
        meta["signal"] = exit_status(err) - 128
    # the last finite state is kept: after an overflow inside a step the integrator's state
    # may be half-updated, so the run ends at its last snapshot and last recorded step
    with np.errstate(all="ignore"):
        usable = (status != Status.NON_FINITE and finite_state(flow.Z)
                  and finite_state(flow.outputs()))
        if usable and step_t[-1] != flow.t:
            try:
                record_step()
            except NonFinite:
                usable = False
    if usable and snap_t[-1] != flow.t:
        snapshot()
    bar.update(flow, force=True)
    wall = time.perf_counter() - start

    if sink is not None:
        Z, pat_arr = sink.views(len(snap_t))
    else:
        Z, pat_arr = np.array(snap_Z), np.array(snap_pat, dtype=np.int64)
    hs = np.array(step_h)
    tab = flow.table.arrays()
    if marks:
        meta["resume"] = marks[-1].to_dict()
    stats = {
        "n_steps": flow.n_steps,
        "nfev": flow.nfev,
        "n_events": len(flow.events),
        "n_cut_steps": flow.n_cut,
        "n_restarts": flow.n_restarts,
        "n_stiff_rollbacks": flow.n_rollbacks,
        "n_excursions": flow.n_excursions,
        "n_patterns": len(tab),
        "wall_time": wall,
    }
    traj = Trajectory(
        t=np.array(snap_t), W=Z[:, :, : data.d], a=Z[:, :, data.d],
        pattern=pat_arr, patterns=tab.U.copy(),
        step_t=np.array(step_t), step_outputs=hs,
        step_loss=np.mean(loss_fn(hs, data.y[None, :]), axis=1),
        events=flow.events.arrays(), X=data.X.copy(), y=data.y.copy(), gamma=gamma,
        loss_name=loss_fn.name, status=int(status), message=message, stats=stats, meta=meta,
        loss_fn=loss_fn,
    )
    if sink is not None:
        traj.save_store(store)
    return traj


class _SnapshotSink(StoreWriter):
    """Snapshots written to disk as they are taken (``simulate(store=DIR)``).

    Two ``.npy`` files in ``DIR`` (memory-mapped, so a run with many snapshots of many neurons
    never holds them in memory): ``snapshots.npy`` (states, shape ``(k, m, d + 1)``) and
    ``snapshot_patterns.npy`` (face of each neuron, ``(k, m)``); after each snapshot the times
    and the metadata (``progress.npz``), so that a killed run stays readable
    (:class:`pwflow.store.StoreWriter`).
    """


def _plain(v) -> bool:
    return isinstance(v, (int, float, str, bool)) or v is None
