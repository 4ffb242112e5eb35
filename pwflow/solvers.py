"""Which one-step solver runs the propagators, and the field it sees.

DOP853 (:mod:`pwflow.rk`) runs while events happen: they are located on its dense output.
On quiet stretches an implicit solver (:mod:`pwflow.radau`) takes over (:class:`Phase`, the
hand-over rules; :class:`SolverPhaseMixin`, their bookkeeping in the stepper) on the
occupied faces' propagators alone (:class:`Restricted`, with a structured Jacobian).  With
passive faces (:mod:`pwflow.replay`, d ≥ 3) DOP853 also runs on the occupied faces only and
records the residuals of every evaluation (:class:`Recording`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .ode_base import OdeSolver
from .options import InvariantError
from .radau import BlockLowRank, Radau
from .rk import DOP853
from .vector_field import CollectiveField

Array = NDArray[np.float64]


#: largest number of unknowns (occupied faces × ``(d + 1)²``) the implicit solver takes on.
#: Set when its Jacobian was dense (one field evaluation per column, ``O(N³)`` inversions:
#: 0.1 s at N = 512, 0.4 s at 1 024, 2.8 s at 2 048); without the limit d = 40, n = 10, m = 6
#: (N = 10 086) went stiff at t ≈ 1.5–5 and did not return in ten minutes.  Since session 18
#: the Jacobian is structured (``Restricted.jac``: ``n + 1`` evaluations of the faces'
#: fields, Woodbury solves in ``O(N (q + n))``); the limit is kept, not re-measured above it
STIFF_MAX_DIM = 1024


def solver_class(name: str) -> type[OdeSolver]:
    """The one-step solver by name: pwflow's ports of scipy's DOP853 (bit-identical) and
    Radau (:mod:`pwflow.rk`, :mod:`pwflow.radau`; scipy.integrate is not imported)."""
    return {"DOP853": DOP853, "Radau": Radau}[name]


class Restricted:
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


class Recording(Restricted):
    """:class:`Restricted` for DOP853 with passive faces (:mod:`pwflow.replay`): also keeps
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
class Phase:
    """Which solver runs the propagators: DOP853 (events) or an implicit one (quiet stretches).

    DOP853 hands over after ``after`` consecutive event-free steps; the implicit solver hands
    back when a step would contain an event (the step is redone), or when, after at least
    ``window`` steps, it has used more than ``factor`` times the field evaluations per time
    unit that DOP853 used over its quiet stretch (evaluations, not wall time, so that the
    trajectory is reproducible; its finite-difference Jacobians and its start-up count too,
    hence ``factor`` > 1: 3 gave the fewest evaluations on three_points among 2, 3, 4, 8).
    ``after`` doubles at each hand-back of the second kind (or a failure), so a run of wrong
    guesses costs a bounded share of the work; it is back at its first value once the
    implicit solver has held its cost bound over ``window`` steps of a stretch (the stretch
    then ends with an event or a probe): the guesses before it were made on other dynamics.
    Without that, the count of wrong guesses over a whole run only grew, and a long run
    whose flow stiffens late was left to DOP853 at its stability limit
    (``tests/explore_long.py`` seed 608, d = 3, t = 3 000: ``after`` reached 2 560, 9 199
    steps and 126 837 evaluations; now 4 313 and 39 338).  After a hand-back for an event,
    ``again`` quiet steps suffice (DOP853's rate measured before is kept): an isolated event
    in a quiet stretch said nothing about stiffness, and waiting ``after`` (40, 80, ...)
    steps each time cost three points at ``m = 2·10⁴`` 543 steps instead of 307.

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
    first_after: int | None = None  # ``after`` as given (set at construction)
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

    def __post_init__(self) -> None:
        if self.first_after is None:
            self.first_after = self.after

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
        DOP853's dense output: meeting one says nothing about stiffness).  A stretch that has
        held the cost bound over ``window`` steps (every quiet step from the ``window``-th on
        passed it) sets ``after`` back to its first value."""
        if not wrong_guess and self.stiff and self.count >= self.window:
            self.after = self.first_after
        self.stiff = False
        if wrong_guess:
            self.after *= 2
            self.need = None
        else:
            self.need = min(self.again, self.after)
        self.eventful()


class SolverPhaseMixin:
    """The explicit/implicit hand-over of :class:`pwflow.stepper.HybridFlow` (reads and
    writes ``_phase``, ``_solver``, ``h_next``)."""

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
