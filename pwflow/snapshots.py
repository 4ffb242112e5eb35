"""States at requested times read from a step's dense output, without restarting the solver.

Part of :class:`pwflow.stepper.HybridFlow` (:class:`SnapshotsMixin`).  A snapshot inside a
step is the step's propagators at that time applied to the neurons at the solver start
(neurons switched by the step's batch before it carried from their event states); it is kept
where the dense output's error there, estimated from its defect, is within the tolerance
(:data:`SNAPSHOT_DEFECT`), otherwise the step is redone to end at it.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .dense import propagator_pairs, propagator_rates_at, propagators_at
from .invariants import is_tiny_step
from .regime import CutExits, PendingExits
from .rows import last_per_neuron, propagate
from .vector_field import lorentz_inverse, lorentz_project

Array = NDArray[np.float64]


#: a snapshot read from a step's dense output is kept when the dense output's error there,
#: estimated by integrating its defect from the step start (:meth:`HybridFlow._snapshot_errors`),
#: is at most this many times the solver's tolerance (``atol + rtol |Φ|``, RMS over the occupied
#: faces' propagators); otherwise the step is redone to end at the snapshot.  Without it a
#: DOP853 step at its stability limit near a global minimum (d = 5, fast modes of size 1e-7)
#: gave snapshots 8e-8 off with step ends 1e-12 off.  Measured (random d = 3–5, three points),
#: the snapshot's relative error over ``rtol`` was 0.07–1.1 times the estimate
SNAPSHOT_DEFECT = 1.0


#: where a step with a jump exit inside is redone to end (:meth:`HybridFlow._redo_before_exit`):
#: this fraction of its span from the step start to the exit before the exit
EXIT_REDO_MARGIN = 1e-3


#: Gauss–Legendre nodes and weights on [−1, 1] for the defect's integral
_GAUSS = np.polynomial.legendre.leggauss(4)


def times_inside(times: Array | None, t0: float, t1: float) -> Array:
    """The ``times`` strictly inside ``(t0, t1)``."""
    if times is None:
        return np.zeros(0)
    return np.array([T for T in times if t0 < T < t1], dtype=float)


class SnapshotsMixin:
    """Snapshots from the dense output for :class:`pwflow.stepper.HybridFlow` (appends to
    ``dense_snapshots``)."""

    def _snapshots_inaccurate(self, snap_times: Array | None, t0: float, t_end: float,
                              F: Array | None, solver) -> bool:
        """Whether a snapshot inside ``(t0, t_end)`` cannot be read from this step's dense
        output (:data:`SNAPSHOT_DEFECT`).  If so the step is discarded (nothing of it has been
        applied yet) and the next one ends at the first such time: the caller redoes it."""
        times = times_inside(snap_times, t0, t_end)
        if times.size == 0:
            return False
        bad = np.flatnonzero(self._snapshot_errors(times, t0, F, solver) > SNAPSHOT_DEFECT)
        if bad.size == 0:
            return False
        self.n_snapshot_redos += 1
        self._redo_to(float(times[bad[0]]))
        return True

    def _cut_inaccurate(self, t0: float, t_cut: float, t1: float, F: Array | None,
                        solver, exits: dict | None = None) -> bool:
        """Whether the state at a cut inside the step (an event located on the dense output
        before the step's end) cannot be read from the dense output to the tolerance
        (:data:`SNAPSHOT_DEFECT`, the snapshots' test).  If so the step is discarded and the
        next one ends at the cut, where the solver's own error control holds: the caller
        redoes it.  Checked once per step start (a redo from the same time is taken as it
        is), not at a cut within rounding of the step start (:func:`is_tiny_step`: redoing
        it there broke the Zeno guard's count of such steps, and an overflowing run at
        t ~ 1e-118 took 50 000 steps to stop instead of 200), and not on the implicit
        solver's steps (events are located on DOP853's); a non-finite estimate (the field
        overflowing at the nodes) is left to the run's non-finite checks, which stop it with
        its status.  A cut at a jump exit placed on the dense output inside the step is
        redone to end just before it instead (:meth:`_redo_before_exit`): its time, not only
        its state, is what the dense output gives too coarsely there.  ``exits``: the exits
        located at ``t_cut`` (:meth:`RegimeMixin._face_events`), kept
        (:class:`~pwflow.regime.CutExits`) for the step from ``t_cut`` when the step is
        redone: the redone step, ending at their root, does not read them (their normal
        velocity is 0 there)."""
        if (t_cut >= t1 or self._phase.stiff or self._cut_redo_from == t0
                or is_tiny_step(t0, t_cut, self.time_unit)):
            return False
        jump = self._jump_root
        if (jump is not None and jump[:2] == (t0, t_cut) and self._exit_redo_end != t0
                and self._redo_before_exit(t0, t_cut, jump[2])):
            return True
        err = self._snapshot_errors(np.array([t_cut]), t0, F, solver)[0]
        if not SNAPSHOT_DEFECT < err < np.inf:  # within it, or an overflow (not the interpolant's)
            return False
        self.n_cut_redos += 1
        self._cut_redo_from = t0
        if exits and any(exits.values()):
            self._cut_exits = CutExits({p: dict(ex) for p, ex in exits.items() if ex}, t_cut)
        self._redo_to(t_cut)
        return True

    def _redo_before_exit(self, t0: float, t_exit: float, exits: dict) -> bool:
        """Redo the step to end :data:`EXIT_REDO_MARGIN` of its span before a jump exit
        placed at ``t_exit`` on its dense output (:meth:`RegimeMixin._exit_time`), so that
        the next step, from an accurate state, places it near its own start.

        A jump exit (a repulsive mode whose slope reached its bound, ``a r_k < 0``) moves the
        state after it with its time at first order, and its time is the root of the pinned
        gap, which the dense output gives only to its error divided by the gap's rate: on a
        slope reaching its bound slowly (``dη/dt = 3.1e-4``) that was 9.2e-8 early at the
        default tolerance (1e-8 late at ``rtol = 1e-12``), against 2e-13 for the state at
        the step ends, and the state after it 8.3e-10 off (relative; now 4.9e-9 and
        4.4e-11: ``tests/test_integrator.py::test_a_jump_exit_inside_a_step_is_read_from_an_
        accurate_state``).  The dense output's error grows from 0 at the step start; the
        exit is now read 1e-3 of a step after it.  ``exits`` (``{face: {k: upper}}``, those
        found there) are kept pending until the exit's span past ``t_exit`` has run out
        again (:meth:`RegimeMixin._pending_exit_events`), and read in each step with no
        resolution: a step ending before the exit's normal velocity passes its resolution
        does not find it.  Not redone again from the start of such a redo (the exit is
        then near it)."""
        t_lo = t_exit - EXIT_REDO_MARGIN * (t_exit - t0)
        if not t0 < t_lo < t_exit or is_tiny_step(t0, t_lo, self.time_unit):
            return False
        self.n_exit_redos += 1
        self._cut_redo_from, self._exit_redo_end = t0, t_lo
        self._exit_pending = PendingExits(exits, t_exit + (t_exit - t0))
        self._redo_to(t_lo)
        return True

    def _redo_to(self, t_end: float) -> None:
        """Discard the step just taken (nothing of it applied yet): the next one restarts the
        solver at the step start and ends at ``t_end``."""
        self.n_steps -= 1
        self._snap_bound = t_end
        self._solver = None

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
        times = times_inside(snap_times, t0, t_end)
        if times.size == 0:
            return
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
            Z = propagate(Phi, pat, self._Zs, self.by_entries)
            pat_T = pat
            if inv is not None and np.any(ts < T):
                e = last_per_neuron(js, np.flatnonzero(ts < T))
                pat_T = pat.copy()
                pat_T[js[e]] = pn[e]
                Z[js[e]] = np.einsum("eab,eb->ea", Phi[pn[e]], inv[e])
            self._project_sliding(Z, pat_T)
            self.dense_snapshots.append((float(T), Z, pat_T))
