"""Options and outcome of a run: :class:`FlowOptions`, :class:`Status` and the run's exceptions.

The options are validated once (:meth:`FlowOptions.validated`, ``ValueError`` naming the field)
and then travel unchanged through the stepper; a run ends with a :class:`Status` whose ``str``
is its message.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass

import numpy as np

from .filippov import BranchPolicy

__all__ = ["FlowOptions", "Status", "ZenoError", "InvariantError", "STIFF_SOLVERS"]

#: implicit solvers for quiet stretches, by name (resolved lazily: scipy.integrate is heavy)
STIFF_SOLVERS = (None, "Radau")


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
    INVARIANT = -7

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
            Status.INVARIANT: "stopped: an invariant of the flow was violated beyond its tolerance",
        }[self]


class ZenoError(RuntimeError):
    """Raised inside the integrator when events accumulate (chattering)."""


class InvariantError(RuntimeError):
    """Raised when a run breaks an invariant beyond its tolerance (the message names the
    neuron, the time and the quantity): Lemma 1's balancedness, a sliding neuron's distance
    to its hyperplanes, or an event's residual."""


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
        A run stops when one neuron has this many events within ``zeno_window`` (relative to
        ``1 + t``), among the last ``4 ×`` this many events of the run (several neurons may
        take turns) — chattering — or when this many consecutive steps are shorter than 1000
        ulp of ``t``.
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
        DOP853 did (see ``docs/integrator.md``). Not used while the occupied faces' unknowns
        (faces × ``(d + 1)²``) exceed :data:`pwflow.solvers.STIFF_MAX_DIM` (1 024): its
        Jacobian is dense. ``None``: DOP853 only (the reference path, with ``batch_tol=0``).
    stiff_after : int
        See ``stiff_solver``; doubled at each wrong guess of the implicit solver (a return
        to DOP853 for its cost or a failure), back to this value after an implicit stretch
        that held its cost bound (:class:`pwflow.solvers.Phase`).
    branch_policy : {'min_norm', 'gd'}
        Continuation at a branch point (a sliding mode that turns repulsive, where Eq. (2) has
        several solutions; see :mod:`pwflow.filippov`): ``'min_norm'`` keeps the neuron on the
        hyperplane (the minimal-norm selection, Condition 2 (ii)); ``'gd'`` leaves to the side
        that small-step gradient descent takes for most step sizes (it has no vanishing-step
        limit there: ``docs/paper-readings.md``, N5).  Both log a ``BRANCH`` event.
    invariant_tol : float
        Tolerance of the run's invariant checks (relative): Lemma 1's ``a_j² − ‖w_j‖²``
        (measured on the neurons themselves at every snapshot, see ``docs/integrator.md``),
        a sliding neuron's distance to its hyperplanes before it is projected back, and the
        residual of located events.  A run that exceeds it stops with
        :attr:`Status.INVARIANT` and a message naming the neuron, the time and the quantity.
    rest_tol : float or None
        Stop "at rest": once a bound on how far the *exact* flow can still move until
        ``t_max`` (:mod:`pwflow.rest`: ``min(√((t_max − t) E), ‖z‖ (e^{ρ (t_max − t)} − 1))``
        with ``E`` the loss above its floor, and for the square loss the Łojasiewicz bound
        ``√(2 n E) / σ_min(J)``, which holds for every horizon) is at most ``rest_tol``
        times the largest neuron, the neurons are kept as they are up to ``t_max`` (near a
        global minimum the remaining motion is below the integration's own error, and
        integrating it costs thousands of steps of rounding-level dynamics).  ``None``
        (default): ``rtol``; ``0``: never (the reference path).  The time and the bound are in
        ``Trajectory.stats`` (``t_rest``, ``rest_bound``) and in the message.
    """

    rtol: float = 1e-10
    atol: float = 1e-12
    batch_tol: float | None = None
    max_step: float = np.inf
    frozen_output: bool = False
    zeno_events: int = 200
    zeno_window: float = 1e-8
    face_memory: float | None = None
    stiff_solver: str | None = "Radau"
    stiff_after: int = 20
    branch_policy: BranchPolicy | str = BranchPolicy.MIN_NORM
    invariant_tol: float = 1e-10
    rest_tol: float | None = None

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
        if self.stiff_solver not in STIFF_SOLVERS:
            allowed = ", ".join(repr(k) for k in STIFF_SOLVERS)
            raise ValueError(f"stiff_solver must be one of {allowed}, got {self.stiff_solver!r}")
        if int(self.stiff_after) != self.stiff_after or self.stiff_after < 1:
            raise ValueError(f"stiff_after must be an integer >= 1, got {self.stiff_after!r}")
        if int(self.zeno_events) < 2:
            raise ValueError(f"zeno_events must be >= 2, got {self.zeno_events!r}")
        if not (np.isfinite(self.invariant_tol) and self.invariant_tol > 0):
            raise ValueError(f"invariant_tol must be positive and finite, got {self.invariant_tol!r}")
        if self.rest_tol is not None and not (np.isfinite(self.rest_tol) and self.rest_tol >= 0):
            raise ValueError(f"rest_tol must be >= 0 and finite or None, got {self.rest_tol!r}")
        policy = BranchPolicy.parse(self.branch_policy)
        if policy is not self.branch_policy:
            return dataclasses.replace(self, branch_policy=policy)
        return self

    @property
    def rest_budget(self) -> float:
        """Relative bound under which a run stops at rest (0: never)."""
        return self.rtol if self.rest_tol is None else self.rest_tol

    @property
    def batch_budget(self) -> float:
        return self.rtol if self.batch_tol is None else self.batch_tol


