"""The regime of the sliding faces: which free slopes are inside ``[γ, 1]``, read to the
resolution of the residuals, and the first time in a step at which it changes.

Part of :class:`pwflow.stepper.HybridFlow` (:class:`RegimeMixin`).  For every occupied face
with free slopes the regime code of each hyperplane says whether the neuron stays (the
minimal-norm slope inside its box) or leaves at the upper or lower bound; a change of a
code, or of the sign of a watched ``r_k`` (a possible branch point), is a *face event*,
located by bisection on the step's dense output (:meth:`RegimeMixin._face_events`).  The
residuals are resolved to 0 below what the integration knows them to
(:meth:`RegimeMixin._resolved_residuals`, with a hysteresis), and the normal velocities to
their rounding (:meth:`RegimeMixin._velocity_resolution`):
``docs/integrator.md``, "A slope at its bound to resolution".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .bisection import bisect, bisect_batched, bisection_nodes, brent_root
from .dense import propagators_at, quadratic_form_at
from .filippov import VELOCITY_RTOL, BranchPolicy, select, slope_codes
from .vector_field import CollectiveField

Array = NDArray[np.float64]


@dataclass(frozen=True)
class PendingExits:
    """Jump exits found on a step that was then redone to end just before them
    (:meth:`HybridFlow._redo_before_exit`), searched for, with no resolution, in each step
    that starts before ``until`` (:meth:`RegimeMixin._pending_exit_events`).
    ``exits``: ``{face: {k: upper}}``."""

    exits: dict
    until: float


@dataclass(frozen=True)
class CutExits:
    """Exits located at ``t`` on the dense output of a step that was then redone to end at
    ``t`` for its state's accuracy (:meth:`HybridFlow._cut_inaccurate`).  ``exits``:
    ``{face: {k: upper}}``.  A step starting at ``t`` that reads one of them again places
    it at its root from ``t`` on (:meth:`RegimeMixin._exit_time`), not where its normal
    velocity passes its resolution: this changes the exits to their bound's own side (a
    jump exit is placed so anyway)."""

    exits: dict
    t: float


@dataclass(frozen=True)
class ExitReading:
    """What an exit's side and gap are read from (:meth:`RegimeMixin._exit_gap`): the raw
    residuals ``r0`` at the step start with their resolution ``r_tol0``
    (:meth:`RegimeMixin._resolved_residuals`) and the normal velocities' resolution
    ``vres0`` there (:meth:`RegimeMixin._velocity_resolution`), and the raw residuals
    ``r_hi`` at the time the exit is read."""

    r0: Array
    r_tol0: Array
    vres0: Array
    r_hi: Array


#: rounding of the outputs relative to the size of their terms (``Σ_j |a_j| ‖w_j‖ ‖x_k‖``):
#: ~20 ulp measured on an output exactly 0 (degenerate campaign camp9), with a margin of 20;
#: far below ``rtol`` so that it decides only where ``h_k`` and ``y_k`` are both ~0
OUTPUT_ROUNDING = 1e-13


#: rounding of the pinned gap (:func:`~pwflow.subgradient.pinned_gap`) relative to the size of
#: its terms, ``(‖b‖ + Σ_k ‖z_k‖) ‖z_i‖``: a gap within it of 0 is neither side of 0
#: (:meth:`RegimeMixin._gap_root`; Brent's method reads the gap itself).  On
#: linearly dependent hyperplanes the gap of a slope pinned at its bound is 0 while the neuron
#: is held (the other slopes make up for it: four points of rank 2, d = 4, measured at most
#: 0.75 ulp of that size over t ∈ [0.9, 1.29]; a jump exit due at a step start, 170 ulp);
#: read as ``>= 0`` it made a jump exit due at the step start, up to 0.1 before the
#: regime's change, and as ``< 0`` a root of its noise (session 35, ``tests/test_regime.py``)
GAP_ROUNDING = 1e-13


#: how much of the last step's output noise (:meth:`RegimeMixin._set_step_noise`) the next
#: step keeps: the outputs carry the error of the steps before it, not of the last one
#: alone (session 49: with the last step's noise alone, 62 rows against the tight run's 37
#: on the problem of "Outputs whose terms cancel"; with this memory 48)
NOISE_MEMORY = 0.9


#: hysteresis of the resolution of ``r_k`` (:meth:`HybridFlow._resolved_residuals`): an
#: ``r_k`` resolved to 0 at the step start stays 0 until ``|r_k|`` exceeds this many times its
#: resolution.  Without it an ``r_k`` decaying through its resolution (a point being fitted,
#: square loss) was put back above it at every restart by the recomputed moments' rounding
#: (1e-16 on 7e-11), and each step found the same change again 1e-7 later: 3e7 steps to
#: ``t = 5`` (collinear data, d = 4, hypothesis 6.170)
RESOLUTION_HYSTERESIS = 2.0


def output_noise(error: Array, face_terms: Array, Phi: Array, xnorm: Array) -> Array:
    """What an error of the propagators moves the outputs by, ``(n,)``:
    ``‖x_k‖ Σ_p T_p ‖E_p‖_F ‖Φ_p‖_F / q``.

    ``error``: ``‖E_p‖_F``, the error of each face's propagator ``Φ_p`` (``(F, q, q)``, at
    the step end); ``face_terms``: ``T_p = ½ Σ_{j∈p} ‖z_j‖²`` at the solver start, ``(F,)``.
    Each term ``a_j σ(<w_j, x_k>)`` of an output moves by at most ``‖δz_j‖ ‖z_j‖ ‖x_k‖``
    (to first order), with ``δz_j = E_p z_j(0)`` and ``z_j = Φ_p z_j(0)``: the sum is an
    estimate of that bound (it is the bound over ``2q``; a balanced neuron scaled by its error
    at ``Φ = I`` moves its output by twice it).  Where a fit by large weights has terms that
    cancel to small outputs it is far above ``rtol |h_k|`` (``docs/integrator.md``, "Outputs
    whose terms cancel"); where the steps are cut short by events it is far below it.
    """
    q = Phi.shape[-1]
    size = np.sqrt(np.einsum("pij,pij->p", Phi, Phi))
    return xnorm * float(np.dot(error, face_terms * size)) / q


class RegimeMixin:
    """The sliding faces' regime for :class:`pwflow.stepper.HybridFlow` (reads the faces
    watched since the solver start, ``_regime_faces``; writes ``_regime``, ``_held_zero``,
    ``_held_live``, ``_resolved_last``, ``_rsign_at``)."""

    #: a class's residual ``ρ_C`` (:meth:`_class_weights`) is read non-zero only beyond
    #: what :func:`~pwflow.filippov.select` resolves the class's normal velocity to,
    #: ``VELOCITY_RTOL Σ_{k∈C} |r_k| ‖x_k‖`` (:meth:`_watched_signs`); ``False`` only to
    #: show what it fixes
    CLASS_TOL_AT_EXIT_RULE = True

    #: an exit's side is read from its ``ρ_C`` (or ``r_k``) only beyond its resolution
    #: (:meth:`_exit_gap`); ``False`` only to show what it fixes
    EXIT_SIDE_RESOLVED = True

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
        n = self.n
        n_cls = self._class_weights().shape[0]
        # (0,): nothing watched; the dependent faces' verdicts follow the classes' signs
        watched = rs.shape == (n + n_cls + len(self._dependent_watch()),)
        mine = self._regime_watched if watched else np.zeros(n, dtype=bool)
        self._held_zero = mine & (rs[:n] == 0) if watched else mine
        # the classes' residuals resolved to 0 or not, held so as the points' are
        self._class_held = rs[n:n + n_cls] if watched else None
        r = self._resolved_last
        self._held_live = None
        if r is not None and r.shape == (n,):
            # a watched point is held as the regime reads it, which is the side a located
            # change found where the solver restarts there (:attr:`_rsign_at`), also where
            # the residual recomputed at the restart is read on the other side of its
            # threshold (by rounding); the others as last resolved.  Held both ways, a point
            # had its threshold at 1x its resolution, not 2x, and was read live, then 0 at
            # the next restart, then live again: one branch point logged twice, 2.3e-8
            # apart (``tests/test_regime.py``, session 52)
            self._held_zero = np.where(mine, self._held_zero, r == 0)
            self._held_live = ~self._held_zero

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
        ‖x_k‖ / n``, and what the residuals' uncertainty leaves of them, ``Σ_l tol_l |<x_l,
        x_k>| / n`` (every slope is at most 1).  ``tol_l`` is the larger of the residuals'
        resolution ``r_tol`` and the outputs' noise (:meth:`_set_step_noise`: what the steps'
        errors move the outputs by, far above ``r_tol`` where the outputs' terms cancel).
        :func:`~pwflow.filippov.slope_codes` reads a slope as beyond its bound only past it
        (``docs/integrator.md``, "A slope at its bound to resolution")."""
        mag = np.sum(np.abs(r) * self.xnorm, axis=-1) / self.n  # bounds every term of D
        rounding = VELOCITY_RTOL * mag[..., None] * self.xnorm
        noise = self.__dict__.get("_step_noise")
        if noise is not None and noise.shape == r_tol.shape[-1:]:
            r_tol = np.maximum(r_tol, noise)
        return np.maximum(rounding, (r_tol @ self._abs_gram()) / self.n)

    def _set_step_noise(self, error: Array | None, faces: NDArray[np.intp] | slice,
                        Phi1: Array) -> None:
        """The residuals' noise after the step just accepted, ``(n,)``, read by
        :meth:`_velocity_resolution` until the next step: :func:`output_noise` of the
        step's local error estimates ``error`` (``‖E_p‖_F`` of the faces ``faces``;
        ``None``: the implicit solver's step, no noise) at the step-end propagators
        ``Phi1``, times the loss's curvature bound, with a memory of the steps before
        (:data:`NOISE_MEMORY`)."""
        if error is None or self.opt.frozen_output:
            self._step_noise = None
            return
        Phi = Phi1[faces]
        face_terms = self._face_terms()[faces]
        new = self._curvature * output_noise(error, face_terms, Phi, self.xnorm)
        old = self.__dict__.get("_step_noise")
        if old is not None and old.shape == new.shape:
            new = np.maximum(new, NOISE_MEMORY * old)
        self._step_noise = new

    def _face_terms(self) -> Array:
        """``½ Σ_{j∈p} ‖z_j‖²`` at the solver start, per face ``(P,)`` (:func:`output_noise`)."""
        cached = self.__dict__.get("_face_terms_for")
        if cached is None or cached[0] is not self._Zs:
            size = 0.5 * np.bincount(self.pat, weights=self._znorm ** 2, minlength=self._P)
            cached = self._face_terms_for = (self._Zs, size[: self._P])
        return cached[1]

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

    def _face_regime_at(self, Phi: Array, raw: bool = False, rows: NDArray[np.intp] | None = None
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
        that row alone (one vectorised pass: the one-slope case by the closed form, the
        general one by :meth:`PatternTable.minimal_norm` on the stack, whose rows do not
        depend on each other: a face's BVLS starts at every time from the face's solution
        before the call).
        ``raw``: read from the residuals themselves, not resolved (:meth:`_start_solver`).
        ``rows``: positions in the watched faces (``_regime_faces``) whose several-slope
        regime is solved; the others' codes are 0 there (:meth:`_face_events`: only the faces
        that change in the step are searched; the one-slope fast path reads every face).
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
        free = self._regime_free
        general = True  # the several-slope case: solved at every time at once
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
            general = False
        if rows is not None and rows.size == 0:
            general = False  # no face to solve: the codes stay 0
        if general:
            sel = slice(None) if rows is None else rows
            codes[..., faces[sel], :] = np.where(
                free[sel],
                self._several_slopes_regime(r, self._velocity_resolution(r, r_tol), faces[sel]),
                0)
        return codes, self._watched_signs(r, r_tol)

    def _class_weights(self) -> Array:
        """The classes of two or more parallel data points (:func:`~pwflow.subgradient.
        parallel_classes`: their hyperplanes coincide) as weights ``(n_classes, n)``:
        ``‖x_k‖`` on the class's points, 0 elsewhere (computed once).

        ``ρ_C = Σ_{k∈C} r_k ‖x_k‖`` is what ``r_k`` is for one point: a neuron sliding on the
        class's hyperplane with the class's slopes tied (the two sides' fields, Filippov's
        reading; :mod:`pwflow.filippov`) has one-sided normal velocities ``v₊ − v₋ =
        −(a/n)(1 − γ) ρ_C`` along the unit normal: staying is attractive while ``a ρ_C > 0``
        and repulsive once ``a ρ_C < 0``.  ``ρ_C`` can change sign with every ``r_k`` of the
        class keeping its own (session 29: collinear data, d = 5, a class of four points, two
        of them opposite, ``r = (−0.52, −0.18, 0.33, 0.43)``): its sign is watched as the
        points' are (:meth:`_watched_signs`).
        """
        cached = self.__dict__.get("_class_w")
        if cached is None:
            rep = self.geometry.classes(np.arange(self.n))[0]
            heads, counts = np.unique(rep, return_counts=True)
            heads = heads[counts > 1]
            cached = self._class_w = np.where(rep[None, :] == heads[:, None],
                                              self.xnorm[None, :], 0.0)
        return cached

    def _watched_mask(self) -> NDArray[np.bool_]:
        """Which of :meth:`_watched_signs`' entries are watched: the points on a free
        hyperplane of a watched face, then the classes whose hyperplane is one."""
        Wc = self._class_weights()
        watched = self._regime_watched
        cached = self.__dict__.get("_watched_for")  # fixed until the next solver start
        if cached is None or cached[0] is not watched:
            cached = self._watched_for = (watched, np.concatenate(
                [watched, np.any((Wc > 0) & watched, axis=1),
                 np.ones(len(self._dependent_watch()), dtype=bool)]))
        return cached[1]

    #: faces with more free hyperplanes than this are not watched by :meth:`_dependent_watch`:
    #: each reading is a :func:`~pwflow.filippov.select` per face, whose search of the
    #: arrangement grows with them (twelve hyperplanes of rank 4, d = 7,
    #: ``test_a_neuron_orthogonal_to_twelve_points_of_rank_four_is_decided_in_polynomial_time``:
    #: 5 min with them watched, against seconds); their departures are decided where the
    #: neuron arrives or an exit or a sign change re-decides it, as before session 34
    DEPENDENT_WATCH_MAX = 6

    def _dependent_watch(self) -> list[tuple[int, float, bool]]:
        """The occupied watched faces whose free hyperplanes are linearly dependent (their
        classes' points span less than their number, e.g. four points in a plane and a
        neuron on all four hyperplanes), with each sign of ``a`` among their neurons at the
        solver start and whether the neuron is still at rest where it started (the exit
        rule's ``at_rest``): ``(face, sign, at_rest)``, fixed until the next start.

        On such a face no hyperplane can be left alone, so no slope reaches a bound when a
        joint departure (leave all but one hyperplane, slide along that one away from the
        intersection) becomes a continuation of the flow: the minimal-norm slopes stay
        inside their box.  :func:`~pwflow.filippov.select` sees it (a ``branch``; under the
        ``'gd'`` policy the departure, gradient descent's), and :meth:`_watched_signs` reads
        its verdict at every regime reading, so that its change is a face event located like
        a sign change of ``r_k`` (session 34: a neuron on four hyperplanes of rank 2, d = 4,
        held 1.27 time units where gradient descent left at t = 0.0047).  Under the ``'gd'``
        policy the neurons depart there; under the minimal-norm policy they stay (its
        continuation) and the exit rule logs the branch point, after which that entry is
        watched no more (:attr:`_dependent_logged`; session 39: the two policies' runs are
        one trajectory up to it, and both log it)."""
        faces = self._regime_faces
        cached = self.__dict__.get("_dependent_for")
        if cached is not None and cached[0] is faces:
            return cached[1]
        pairs: set[tuple[int, float, bool]] = set()
        a_start = self._Zs[:, self.d]
        for p in faces[self._dependent_faces(faces)].tolist():
            js = np.flatnonzero(self.pat == p)
            pairs.update((p, float(sg), bool(rest)) for sg, rest in
                         zip(np.sign(a_start[js]).tolist(), self._at_rest[js].tolist(),
                             strict=True) if sg != 0.0)
        out = sorted(pairs - self._dependent_logged)
        self._dependent_for = (faces, out)
        return out

    @property
    def _dependent_logged(self) -> set[tuple[int, float, bool]]:
        """The entries of :meth:`_dependent_watch` whose branch point the minimal-norm policy
        has logged (its neurons stayed): not watched again (the verdict stays "departs"
        while they stay, and each reading is a ``select``)."""
        return self.__dict__.setdefault("_dependent_logged_set", set())

    def _dependent_faces(self, faces: NDArray[np.intp]) -> NDArray[np.bool_]:
        """Which ``faces`` have linearly dependent free hyperplanes (three at least: two are
        dependent only if parallel, one class) meeting in more than ``w = 0`` (a neuron at
        the origin leaves it by :func:`~pwflow.filippov.through_origin`), each face decided
        once (a face's row never changes)."""
        nfree = self.table.nfree[faces]
        # the face on every hyperplane is the origin (of the data's span, below full rank):
        # the watch at 0 has it (:mod:`pwflow.origin_watch`)
        cand = ((nfree >= 3) & (nfree <= self.DEPENDENT_WATCH_MAX) & (self.table.dim[faces] > 0)
                & np.any(self.table.U[faces] != 0, axis=1))
        if not np.any(cand):
            return cand
        memo = self.__dict__.setdefault("_dependent_known", {})
        for i in np.flatnonzero(cand).tolist():
            p = int(faces[i])
            if p not in memo:
                memo[p] = self.geometry.dependent(np.flatnonzero(self.table.U[p] == 0))
            cand[i] = memo[p]
        return cand

    def _dependent_departures(self, r: Array) -> NDArray[np.int8]:
        """Whether :func:`~pwflow.filippov.select` under the ``'gd'`` policy leaves a hyperplane
        (another continuation than staying on all of them exists: a branch under either
        policy) for each entry of :meth:`_dependent_watch`, at the residuals ``r`` (``(...,
        n)``): ``(..., len(entries))``, 1 where it does."""
        pairs = self._dependent_watch()
        out = np.zeros(r.shape[:-1] + (len(pairs),), dtype=np.int8)
        if not pairs:
            return out
        rows = r.reshape(-1, self.n)
        flat = out.reshape(-1, len(pairs))
        for i, row in enumerate(rows):
            for c, (p, sg, rest) in enumerate(pairs):
                sel = select(sg, self.table.U[p], self.X, row, self.gamma,
                             policy=BranchPolicy.GRADIENT_DESCENT, at_rest=rest,
                             geometry=self.geometry)
                flat[i, c] = bool(np.any(sel.signs != 0))
        return out

    def _watched_signs(self, r: Array, r_tol: Array) -> NDArray[np.int8]:
        """Signs of the watched ``r_k`` (resolved ones), then of the classes' residuals
        ``ρ_C`` (:meth:`_class_weights`) beyond their resolution ``Σ_{k∈C} r_tol_k ‖x_k‖``
        and beyond what the exit rule resolves the class's velocity to
        (:attr:`CLASS_TOL_AT_EXIT_RULE`), with the hysteresis of the current regime, as the
        points', and those held at 0 beyond the outputs' noise too (:meth:`_held_noise`);
        shape ``(..., n + n_classes)``, 0 where not watched.  Session 50: at ``rtol = 1e-12``
        a class's sign read past its resolution but not past the exit rule's was a change at
        which the exit rule saw no velocity, and a branch point of repeated points went
        unlogged."""
        mask = self._watched_mask()
        Wc = self._class_weights()
        noise = self._held_noise()
        signs = np.sign(r)
        if noise is not None:  # a sign read as 0 is read again only beyond the outputs' noise
            signs = np.where(self._held_zero & (np.abs(r) <= noise), 0.0, signs)
        parts = [signs]
        if Wc.shape[0]:
            rho, tol = r @ Wc.T, self._weight_resolution(r, r_tol, Wc)
            held = self._class_held
            if held is not None and held.shape == tol.shape[-1:]:
                tol = np.where(held == 0, RESOLUTION_HYSTERESIS * tol,
                               tol / RESOLUTION_HYSTERESIS)
                if noise is not None:
                    tol = np.where(held == 0, np.maximum(tol, noise @ Wc.T), tol)
            parts.append(np.where(np.abs(rho) > tol, np.sign(rho), 0.0))
        if len(self._dependent_watch()):
            parts.append(self._dependent_departures(r))
        signs = np.concatenate(parts, axis=-1) if len(parts) > 1 else parts[0]
        return np.where(mask, signs, 0).astype(np.int8)

    def _held_noise(self) -> Array | None:
        """The outputs' noise (:meth:`_set_step_noise`) where the watched signs held at 0 by
        the current regime are compared with it (:meth:`_watched_signs`), or ``None``.

        A residual resolved to 0 stays 0 until it exceeds :data:`RESOLUTION_HYSTERESIS`
        times its resolution (:meth:`_resolution`) and this noise: a point fitted to the
        noise's level at a local minimum had its sign read 0 at every solver start and ±1 on
        the step's dense output, each reading a face event whose exit rule found a branch
        point (session 49: 32 BRANCH rows to t = 1 000 on the data of
        ``test_integrator.py::test_neurons_converging_to_the_edge_of_their_sliding_region_
        keep_long_implicit_steps``, DOP853 alone; 2 with this, as the ``rtol = 1e-12`` run).
        A sign read ±1 goes to 0 at its resolution, as before: a residual passing through 0
        is first read there (a mode turning repulsive at a root is read beyond the noise,
        its branch point logged then)."""
        noise = self.__dict__.get("_step_noise")
        held = self._held_zero
        return None if noise is None or held is None or held.shape != noise.shape else noise

    def _signs_changed(self, new: NDArray[np.int8], old: NDArray[np.int8]) -> NDArray[np.intp]:
        """The data points whose watched sign changed between two readings of
        :meth:`_watched_signs`: the points themselves and every point of a class whose
        residual's sign changed."""
        diff = new != old
        n = self.n
        ks = diff[:n].copy()
        Wc = self._class_weights()
        n_cls = Wc.shape[0]
        if n_cls:
            ks |= np.any(Wc[diff[n:n + n_cls]] > 0, axis=0)
        for c in np.flatnonzero(diff[n + n_cls:]).tolist():
            # a dependent face's verdict (:meth:`_dependent_departures`): its free points
            ks |= self.table.U[self._dependent_watch()[c][0]] == 0
        return np.flatnonzero(ks)

    def _several_slopes_regime(self, r: Array, vres: Array,
                               faces: NDArray[np.intp] | None = None) -> NDArray[np.int8]:
        """Regime codes ``(len(faces), n)`` of the watched faces (or of ``faces``, some of
        them) for one ``r``, in general:
        one free slope by ``η*``; several from the unique minimal-norm ``D`` — a hyperplane
        with ``<D, x_k> ≠ 0`` beyond its resolution ``vres`` (:meth:`_velocity_resolution`,
        shape ``(n,)``) has its slope at a bound (KKT), the one its slope is nearer to;
        reading the departure from ``D`` also holds where parallel data points make the
        slopes non-unique."""
        faces = self._regime_faces if faces is None else faces
        G, eta, eta_star = self.table.minimal_norm(faces, r, origin=True)
        one = ~np.isnan(eta_star)
        v = G @ self.X.T  # <D, x_k>
        vres = vres[..., None, :]
        # one free slope: the side of η*, where the clipped slope's velocity is resolved
        # (the caller keeps the free hyperplane's column)
        code1 = slope_codes(eta_star[..., None], v, vres, self.gamma)
        upper = np.abs(eta - 1.0) <= np.abs(eta - self.gamma)  # which bound (not sign(v): noise)
        codem = np.where(np.abs(v) > vres, np.where(upper, 1, -1), 0)
        return np.where(one[..., None], code1, codem).astype(np.int8)

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

    #: levels of the bisection whose midpoints are read on every watched face first
    #: (:meth:`_face_events`): the 2³ − 1 = 7 equally spaced times of the step
    FACE_GRID_LEVELS = 3

    def _face_events(self, F: Array, t0: float, t1: float,
                     end: tuple[NDArray[np.int8], NDArray[np.int8]] | None = None
                     ) -> tuple[float, dict]:
        """Earliest time in ``(t0, t1]`` where an occupied sliding face changes regime
        (bisection on the dense output, to 4 ulp), and what changed: ``{face: {k: upper}}``
        for slopes reaching a bound (``upper``: the bound 1), ``{face: {}}`` for a face where
        only a sign of ``r_k`` changed (a possible branch point).

        First every watched face is read at the midpoints of the bisection's first
        :attr:`FACE_GRID_LEVELS` levels (the times ``t0 + j h / 8``): the search continues in
        the first eighth of the step where something differs (the step end, whose regime
        ``end`` the step has read, if none does), which is the bracket the sequential
        bisection reaches there unless a face changes and comes back within the step; such a
        face is now found wherever it is out at one of the seven times, where the bisection
        found it only if one of its own midpoints fell there.  From there the bisection
        reads only the faces that differ at the bracket's end, and the signs of the watched
        ``r_k``: the faces with several free slopes are the costly part of every reading
        (a minimal-norm solve per face and time; d = 10, n = 20, m = 20: 110 searches of ~45
        readings took 7.5 of 20 s with every face solved at every midpoint).

        The bisection is the sequential one (:func:`bisect`); its midpoints are evaluated
        :attr:`FACE_SEARCH_LEVELS` levels at a time, every midpoint it may visit in those
        levels in one vectorised call of :meth:`_face_regime_at`, so the time found is the
        sequential bisection's, bit for bit.  The exits are read from the search's own codes at
        the time found (a second reading there, at the threshold of the codes' resolution,
        may round back).
        """
        h = t1 - t0
        r0 = self._regime
        faces = self._regime_faces
        # the regime reads the propagators through the outputs only: the occupied faces'
        # (``CollectiveField.outputs`` takes them alone), not every face met (P ≈ 3 000
        # against ~600 occupied at d = 5)
        occ = self._field.occupied

        def regime(ts: list[float], rows_: NDArray[np.intp] | None = None):
            return self._face_regime_at(
                propagators_at(F, (np.array(ts) - t0) / h, faces=occ, rowwise=True), rows=rows_)

        def differs(codes: NDArray[np.int8], rsign: NDArray[np.int8],
                    at: NDArray[np.intp]) -> NDArray[np.bool_]:
            new = np.any(codes[:, at] != r0[0][at], axis=(1, 2))
            if rsign.shape[1:] == r0[1].shape:
                new |= np.any(rsign != r0[1], axis=1)
            return new

        lo, hi, last = t0, t1, end
        grid = self._regime_grid(t0, t1)
        read = self.__dict__.pop("_grid_read", None)
        if grid:
            if read is not None and read[0] == (t0, t1):
                codes_g, rsign_g = read[1]  # read by _regime_left_inside on this step
            else:
                codes_g, rsign_g = regime(grid)
            first = np.flatnonzero(differs(codes_g, rsign_g, faces))
            if first.size:
                i = int(first[0])
                lo, hi, last = (grid[i - 1] if i else t0), grid[i], (codes_g[i], rsign_g[i])
            else:
                lo = grid[-1]
        rows = None
        if last is not None and last[0].shape == r0[0].shape:
            rows = np.flatnonzero(np.any(last[0][faces] != r0[0][faces], axis=1))
            if last[1].shape == r0[1].shape and np.any(last[1] != r0[1]):
                # and the faces on whose hyperplanes a watched sign changed: a slope may reach
                # its bound there before the sign changes and be back inside by the bracket's
                # end (the mode turned repulsive), and searching the signs alone found the
                # sign's change, past the exit (session 29: 2.7e-3 later)
                ks = self._signs_changed(last[1], r0[1])
                rows = np.union1d(rows, np.flatnonzero(np.any(self._regime_free[:, ks], axis=1)))
        watch = faces if rows is None else faces[rows]
        searched: dict[float, NDArray[np.int8]] = {}
        if grid:
            searched.update(zip(grid, codes_g[:, watch], strict=True))

        def changed_at(ts: list[float]) -> NDArray[np.bool_]:
            codes, rsign = regime(ts, rows)
            searched.update(zip(ts, codes[:, watch], strict=True))
            return differs(codes, rsign, watch)

        # several free slopes are solved one time at a time: evaluating ahead would only add work
        levels = self.FACE_SEARCH_LEVELS if self._regime_plan is not None else 1
        hi = bisect_batched(lo, hi, changed_at, levels, self.time_unit)
        codes, rsign = (v[0] for v in regime([hi]))
        if hi in searched:
            # the watched faces' codes as the search read them at ``hi``: the time found is
            # where they first differ, at the threshold of their resolution, so a second
            # reading (other faces solved with it, a minimal-norm solve warm-started
            # elsewhere) may round back, and a change found without its exit was a step
            # carried on past it (d = 10: a slope held beyond its bound for 0.27)
            codes[watch] = searched[hi]
        exits: dict = {}
        for p, k in zip(*np.nonzero((codes != r0[0]) & (codes != 0)), strict=True):
            exits.setdefault(int(p), {})[int(k)] = bool(codes[p, k] > 0)
        if rsign.shape == r0[1].shape and np.any(rsign != r0[1]):
            ks = self._signs_changed(rsign, r0[1])
            for p in np.flatnonzero(np.any(self.table.U[: self._P][:, ks] == 0, axis=1)):
                if np.any(self.pat == p):
                    exits.setdefault(int(p), {})
        if rsign.shape == r0[1].shape and np.any(rsign != r0[1]):
            self._unresolved_jump_exits(F, t0, t1, hi, exits)
        placed = self._exit_time(F, t0, t1, hi, exits)
        if placed is not None:  # earlier than the regime reads it: only those exits, there
            hi, exits = placed
            rsign = regime([hi])[1][0]
        self._sign_hint(F, t0, t1, hi, rsign)
        return hi, exits

    def _unresolved_jump_exits(self, F: Array, t0: float, t1: float, hi: float,
                               exits: dict) -> None:
        """Add to ``exits`` the jump exits beyond their bound at ``hi`` but not yet resolved:
        at a time where a watched ``r_k`` changes sign (``hi`` of :meth:`_face_events`).

        A slope of an occupied face whose normal velocity is still within its resolution
        (:meth:`_velocity_resolution`) reads as inside (:func:`~pwflow.filippov.slope_codes`),
        and a jump exit read only once resolved is placed at its root only if that root is
        in the step where it is read (:meth:`_exit_time`).  Where the slope is a multiple of
        the residual whose sign changes (a face on ``x_i`` active on ``x_k`` with ``<x_l,
        x_i> = 0`` for its other terms: ``η_i ∝ r_k``), the slope reaches its bound with
        ``r_k``'s root, and the cuts at that sign change (read to its own resolution) came
        before the exit was resolved: it was then due at a later step's start, placed there
        (late by the steps between, 2.1e-10 and 3.9e-11 beyond its bound in slope: found by
        the thorough profile of ``test_a_jump_exit_leaves_where_the_unconstrained_slope_
        reaches_its_bound``).  Here every free slope of an occupied face not yet exiting is
        read at ``hi`` with no resolution; one out whose exit is a jump
        (:func:`~pwflow.filippov.exit_side`) and whose pinned gap exceeds its rounding
        (:data:`GAP_ROUNDING`) is an exit, placed at its root by :meth:`_exit_time`.
        Exits to the bound's own side keep their resolution (their roots are noise)."""
        faces = self._regime_faces
        # occupied faces of neurons off 0 (a neuron held at 0 departs by the origin watch)
        occ_faces = np.flatnonzero(np.isin(faces, self.pat) & (self.table.dim[faces] > 0))
        rows = [i for i in occ_faces.tolist() if not exits.get(int(faces[i]))]
        if not rows:
            return
        h, occ = t1 - t0, self._field.occupied

        def residuals(t: float) -> Array:
            return self._field.residuals(propagators_at(F, (t - t0) / h, faces=occ))

        reading = self._exit_reading(F, t0, t1, hi)
        sel = faces[np.array(rows)]
        codes = np.where(self._regime_free[rows],
                         self._several_slopes_regime(reading.r_hi, np.zeros(self.n), sel), 0)
        for row, k in zip(*np.nonzero(codes), strict=True):
            p, upper = int(sel[row]), bool(codes[row, k] > 0)
            a_sign = self._a_signs_on(p, F, (hi - t0) / h)
            _, gap, floor = self._exit_gap(p, int(k), upper, a_sign, reading, residuals)
            if floor is not None:
                continue  # to the bound's own side: read to its resolution
            g, e = gap(hi)
            if g > e:
                exits.setdefault(p, {})[int(k)] = upper

    def _a_signs_on(self, p: int, F: Array, x: float) -> Array:
        """The signs of ``a`` of face ``p``'s neurons at the step fraction ``x`` (the
        propagator of ``p`` from the dense output ``F`` applied to them)."""
        js = np.flatnonzero(self.pat == p)
        return np.sign(self._Zs[js] @ propagators_at(F, x, faces=np.array([p]))[0][self.d])

    def _exit_time(self, F: Array, t0: float, t1: float, hi: float, exits: dict
                   ) -> tuple[float, dict] | None:
        """The exact time of the earliest of the exits found at ``hi`` (:meth:`_face_events`),
        and the exits at that time alone; ``None`` where none is earlier than ``hi``.

        A slope is read at its bound (an exit) only once its normal velocity exceeds its
        resolution (:meth:`_velocity_resolution`), which grows from 0 at the exit: the time
        found is late by ``resolution / rate``, the slope beyond its bound by
        ``VELOCITY_RTOL`` times the terms over its column, whatever the tolerance (measured:
        up to 3.1e-7 in time on the three points' zero-loss benchmark row).  Where the
        neuron leaves to the other side than the bound's own (:func:`~pwflow.filippov.
        exit_side`: ``a r_k < 0``, a repulsive mode whose slope reached a bound) its normal
        velocity jumps and the state after it moves with the exit time at first order
        (session 31: 1.5e-7 late, the state 2.5e-9 off); to the bound's own side, at second
        order.  Exits are placed at the root of :func:`~pwflow.subgradient.pinned_gap`
        (smooth through the exit, and of the same sign as the reading on each side of it) in
        ``[t0, hi]``, by Brent's method on the dense output to a few ulp
        (:meth:`_gap_root`); a face's parallel points, whose slopes are tied, exit as one
        (:meth:`_exit_gap`).  A jump exit already due at the step start (its slope out, but
        not resolved, when the step began: a mode turned repulsive by a residual through 0
        at the cut before) is placed one ulp after it, one whose gap is 0 there to its
        rounding (on linearly dependent hyperplanes while the neuron is held) where the gap
        first exceeds that rounding (:meth:`_gap_root`).  An exit to the bound's own side is
        placed so only where its slope was inside its box by more than the resolution at
        the step start: a slope converging to its bound within the resolution has roots of
        noise, and leaving at one, with no normal velocity, made neurons leave and come
        back every few steps (``explore_long`` problem 117: 895 exits to t = 8 000, against
        4 read at the resolution).  An exit whose gap is not positive at ``hi`` (a
        departure read from ``D`` where the slope has no unique value) keeps ``hi``.
        """
        if not any(exits.values()):  # sign changes alone: no exit to place
            return None
        h, occ = t1 - t0, self._field.occupied

        def residuals(t: float) -> Array:
            return self._field.residuals(propagators_at(F, (t - t0) / h, faces=occ))

        reading = self._exit_reading(F, t0, t1, hi)
        roots: dict[tuple[int, int], float] = {}
        jumps: set[tuple[int, int]] = set()
        for p, ex in exits.items():
            if not ex or not np.any(self.pat == p):
                continue
            a_sign = self._a_signs_on(p, F, (hi - t0) / h)
            found: dict[tuple, float | None] = {}  # per (class, bound): the members share it
            for k, upper in ex.items():
                key, gap, floor = self._exit_gap(p, k, upper, a_sign, reading, residuals)
                if key not in found:
                    confirmed = self._located_at_cut(p, k, upper, t0)
                    found[key] = self._gap_root(gap, t0, hi, None if confirmed else floor,
                                                self.time_unit)
                if found[key] is not None:
                    roots[(p, k)] = found[key]
                    if floor is None:
                        jumps.add((p, k))
        if not roots:
            return None
        t_star = min(roots.values())
        if not t0 < t_star < hi:
            return None
        near = 4 * np.spacing(abs(hi))
        kept: dict = {}
        jump = False
        for (p, k), t in roots.items():
            if t <= t_star + near:
                kept.setdefault(p, {})[k] = exits[p][k]
                jump = jump or (p, k) in jumps
        if jump and t_star > np.nextafter(t0, np.inf):
            # a jump exit read off the dense output inside the step (redone before it:
            # :meth:`HybridFlow._redo_before_exit`)
            self._jump_root = (t0, t_star, kept)
        return t_star, kept

    #: an exit located at a cut whose step was redone (:class:`CutExits`) is placed at its
    #: root when the step from the cut reads it again; ``False`` only to show what it fixes
    CUT_EXITS_KEEP_ROOT = True

    def _located_at_cut(self, p: int, k: int, upper: bool, t0: float) -> bool:
        """Whether the exit of the slope on ``x_k`` of face ``p`` at its upper (lower) bound
        was located at ``t0`` by a step redone to end there (:class:`CutExits`): its root is
        the step start, where its slope is at its bound to the resolution, so that the own
        side's rule (placed at the root only from a slope inside its box by more than the
        resolution, :meth:`_gap_root`'s ``floor``) would keep the time the step reads it at,
        late by ``resolution / rate`` (session 53: 5.7e-8 on data scaled by 1e-6, the
        unscaled run 1.2e-9).  It is placed as a jump exit is: where its gap first turns
        positive from ``t0``."""
        cut = self.__dict__.get("_cut_exits")
        return (self.CUT_EXITS_KEEP_ROOT and cut is not None and cut.t == t0
                and cut.exits.get(p, {}).get(k) == upper)

    def _pending_exit_events(self, F: Array, t0: float, t1: float, t_face: float,
                             exits: dict) -> tuple[float, dict, float | None]:
        """The jump exits a redo left pending (:meth:`HybridFlow._redo_before_exit`), placed
        in this step where their pinned gap is positive by its end (or by ``t_face``), and
        what that changes of :meth:`_face_events`' answer ``(t_face, exits)``; also the time
        placed (``None``: none in this step).

        They are read with no resolution, as :meth:`_unresolved_jump_exits` reads them: the
        step after the redo starts just before the exit, and a step ending before the
        exit's normal velocity passes its resolution did not find it, so that it was placed
        at a later step's start (8e-10 late on ``test_a_jump_exit_leaves_where_the_
        unconstrained_slope_reaches_its_bound``'s first example, 8e-6 on the case of
        ``test_a_jump_exit_inside_a_step_is_read_from_an_accurate_state``).  Kept until
        placed, or until the time the redone step's span past the exit runs out."""
        pend = self._exit_pending
        if t0 >= pend.until:
            self._exit_pending = None
            return t_face, exits, None
        kept = pend.exits
        found_here = self._jump_root
        placed = self._exit_time(F, t0, t1, min(t_face, t1), kept)
        self._jump_root = found_here  # these are placed near the step start: as they are
        if placed is None or placed[0] > t_face:
            return t_face, exits, None
        t_star, found = placed
        if t_star < t_face:
            self._sign_hint(F, t0, t1, t_star)
            return t_star, found, t_star
        merged = {p: dict(ex) for p, ex in exits.items()}
        for p, ex in found.items():
            merged.setdefault(p, {}).update(ex)
        return t_face, merged, t_star

    def _sign_hint(self, F: Array, t0: float, t1: float, hi: float,
                   rsign: NDArray[np.int8] | None = None) -> None:
        """Record the watched signs and the resolved residuals at a located face event
        ``hi`` (:attr:`_rsign_at`: the restart there keeps them)."""
        h, occ = t1 - t0, self._field.occupied
        if rsign is None:
            rsign = self._face_regime_at(
                propagators_at(F, (np.array([hi]) - t0) / h, faces=occ, rowwise=True))[1][0]
        # the exit rule decides on the residuals the regime read (resolved): a raw r_k at
        # the time its sign is first read as 0 is still on its old side, and a branch was
        # read from it
        r_hi = self._resolved_residuals(propagators_at(F, (hi - t0) / h, faces=occ))[0]
        self._rsign_at = (hi, rsign, r_hi, self._watched_mask().copy())

    def _exit_reading(self, F: Array, t0: float, t1: float, hi: float) -> ExitReading:
        """The residuals and resolutions the exits found at ``hi`` are read from
        (:class:`ExitReading`), on the step's dense output ``F`` over ``[t0, t1]``."""
        h, occ = t1 - t0, self._field.occupied
        r0, r_tol0 = self._resolved_residuals(propagators_at(F, 0.0, faces=occ), raw=True)
        r_hi = self._field.residuals(propagators_at(F, (hi - t0) / h, faces=occ))
        return ExitReading(r0, r_tol0, self._velocity_resolution(r0, r_tol0), r_hi)

    def _weight_resolution(self, r: Array, r_tol: Array, weights: Array) -> Array:
        """What ``ρ = r @ weights.T`` is known to (a class's residual, :meth:`_class_weights`,
        or one point's ``r_k ‖x_k‖``): the residuals' resolution ``Σ_l r_tol_l w_l``, and
        never finer than the exit rule reads the class's velocity, ``VELOCITY_RTOL Σ_l |r_l|
        w_l`` (:attr:`CLASS_TOL_AT_EXIT_RULE`): the rounding of a sum whose terms cancel
        (``r_0 = −r_3`` on two copies of one point) is that of its terms, not of itself."""
        tol = r_tol @ weights.T
        if self.CLASS_TOL_AT_EXIT_RULE:
            tol = np.maximum(tol, VELOCITY_RTOL * (np.abs(r) @ weights.T))
        return tol

    def _exit_gap(self, p: int, k: int, upper: bool, a_sign: Array,
                  reading: ExitReading, residuals: Callable[[float], Array]
                  ) -> tuple[tuple[int, bool], Callable[[float], tuple[float, float]],
                             float | None]:
        """The exit of the slope on ``x_k`` at its upper (lower) bound on face ``p``, for
        :meth:`_exit_time`: a key shared by the exits that are one (the members of a class
        of parallel points), the pinned gap (:func:`~pwflow.subgradient.pinned_gap`) as a
        function of time, and ``None`` for a jump exit, else what the gap is known to at the
        step start (:meth:`_gap_root`).

        ``reading``: the residuals and the normal velocities' resolution at the step start,
        and the residuals at ``hi`` (:class:`ExitReading`); ``a_sign``: the signs of the
        face's neurons' ``a``.  The side (:func:`~pwflow.filippov.exit_side`) is read from
        ``ρ_C`` (``r_k ‖x_k‖`` for one point) at ``hi`` only beyond its resolution
        (:meth:`_weight_resolution`, at the step start), the bound's own side within it:
        the normal velocity's jump ``−(a/n)(1 − γ) ρ_C`` is then below what the velocities
        are known to.  Session 58: at a stationary point a class of two copies with
        residuals ``±0.063`` and an opposite point fitted to noise (``ρ_C`` ~1e-14) had
        jump exits read from the noise (:meth:`_unresolved_jump_exits`, whose gap's
        rounding is that of the cancelled sum), and two neurons left the class with no
        velocity to leave with.
        The gap of one point is ``(|r_k| / n) |<D, x_k>|``, known to ``|r_k| vres_k / n``.
        Parallel points share one parameter ``t_c`` (:func:`~pwflow.subgradient.
        class_columns`: ``η = t_c`` on the head's orientation, ``1 + γ − t_c`` on the other):
        the class's column is ``−(ρ_C / n) ν`` with ``ρ_C = Σ_{l∈C} r_l ‖x_l‖`` and ``ν`` the
        head's unit normal, so its exit is one point's on the class problem, with ``r_k``
        read as ``ρ_C`` (the jump test ``a ρ_C < 0``, :meth:`_class_weights`) at the bound of
        ``t_c`` (the member's, flipped where its orientation is the head's opposite).
        """
        from .filippov import exit_side
        from .subgradient import class_columns, pinned_gap, subgradient_parts

        tab, gamma = self.table, self.gamma
        u = tab.U[p]
        K = np.flatnonzero(u == 0)
        i = int(np.searchsorted(K, k))
        classes = tab.classes_of(p)
        members, i_par, up = np.array([k]), i, bool(upper)
        if classes is not None:
            rep, orient = classes
            heads = np.flatnonzero(rep == np.arange(rep.size))
            members = K[rep == rep[i]]
            i_par = int(np.searchsorted(heads, rep[i]))
            up = bool(upper) if orient[i] > 0 else not upper
        xn = self.xnorm[members]
        rho = float(np.sum(reading.r_hi[members] * xn))
        tol = self._weight_resolution(reading.r_hi[members], reading.r_tol0[members], xn)
        if self.EXIT_SIDE_RESOLVED and abs(rho) <= tol:
            rho = 0.0  # no side of its own: the bound's
        floor = None  # a jump exit
        if np.all(exit_side(a_sign, rho, up) == (1 if up else -1)):
            head = members[0]  # continuous there: the gap's resolution at the step start
            floor = (abs(np.sum(reading.r0[members] * xn)) * reading.vres0[head]
                     / (self.n * self.xnorm[head]))

        def gap(t: float) -> float:
            b, Z, _ = subgradient_parts(u, self.X, residuals(t), gamma)
            if classes is not None:
                b, Z, _ = class_columns(b, Z, *classes, gamma)
            size = np.linalg.norm(b) + np.sum(np.linalg.norm(Z, axis=0))
            return (pinned_gap(b, Z, i_par, up, gamma, 1.0),
                    GAP_ROUNDING * size * np.linalg.norm(Z[:, i_par]))

        return (i_par, up), gap, floor

    @staticmethod
    def _gap_root(gap: Callable[[float], tuple[float, float]], t0: float, hi: float,
                  floor: float | None = None, unit: float = 1.0) -> float | None:
        """Where the pinned gap turns positive in ``(t0, hi]`` (:meth:`_exit_time`): its root
        by Brent's method to a few ulp; ``None`` where it is not positive at ``hi``.  ``gap``
        returns the gap and its rounding (:data:`GAP_ROUNDING`).  A jump exit (``floor``
        ``None``) whose gap is positive beyond its rounding at ``t0`` is due: one ulp after
        ``t0``; one whose gap is within its rounding of 0 there (the previous cut at its
        root, or a slope on linearly dependent hyperplanes, whose pinned gap is 0 while the
        neuron is held) leaves where the gap first exceeds its rounding (bisection to 4 ulp:
        no sign change to bracket on a gap held at 0).  ``floor``: an exit to the bound's own
        side, placed at the root only where the gap at ``t0`` is below ``−floor``, else
        ``None``.  ``unit``: the run's time unit (:func:`~pwflow.bisection.time_unit`)."""
        (g0, e0), (g1, e1) = gap(t0), gap(hi)
        if not g1 > e1:
            return None
        if g0 < -(e0 if floor is None else max(floor, e0)):
            return brent_root(lambda t: gap(t)[0], t0, hi, g0, g1,
                              xtol=2 * np.spacing(abs(hi)), rtol=4 * np.finfo(float).eps)
        if floor is not None:
            return None
        if g0 > e0:  # due at the step start already: just after it
            return float(np.nextafter(t0, np.inf))

        def positive(t: float) -> bool:
            g, e = gap(t)
            return g > e

        return bisect(t0, hi, positive, [t0, hi], unit)

    def _regime_grid(self, t0: float, t1: float) -> list[float]:
        """The times at which :meth:`_face_events` reads every watched face first: the
        midpoints of the bisection's first :attr:`FACE_GRID_LEVELS` levels on ``[t0, t1]``."""
        return sorted(bisection_nodes(t0, t1, self.FACE_GRID_LEVELS, self.time_unit))

    def _regime_left_inside(self, solver, t0: float, t1: float, F: Array | None = None) -> bool:
        """Whether the regime differs from the step start's at one of the grid times inside
        the step (:meth:`_regime_grid`), where it does not at the step's end: a free slope
        that reached its bound and came back within the step (the exit rule then has the
        neuron leave its hyperplane, and it may come back to it by a crossing later), or a
        watched ``r_k`` whose sign changed and changed back.  Reading the step's ends only
        missed such an exit: session 30, ``tests/data/brief_exit_case.npz`` (d = 2, γ = 0),
        five neurons held on ``x_1``'s hyperplane through a step in which the strict path
        has them leave at ``t = 9.7147`` and return at 10.0970, their states 3.9e-9 off at
        the end.  An exit shorter than an eighth of the step may still be missed.

        The times are read from the step's dense output (DOP853's on the occupied faces'
        rows, ``F`` where the step has computed it, and :meth:`_face_events` starts from this
        reading; the implicit solver's own otherwise, whose step is then redone by DOP853),
        and the resolved residuals of the end's reading (:meth:`_set_regime`) are kept.
        """
        if self._regime_faces.size == 0:
            return False
        grid = self._regime_grid(t0, t1)
        if not grid:
            return False
        times, q = np.array(grid), self.q
        if self._phase.stiff:
            flat = solver.dense_output()(times)
            Phi = flat.T.reshape(len(grid), -1, q, q)[:, self._fun._occ]
        elif F is not None:  # the step's (:meth:`_event_dense_output`)
            Phi = propagators_at(F, (times - t0) / (t1 - t0), faces=self._field.occupied)
        else:
            Phi = propagators_at(self._occupied_coefficients(solver), (times - t0) / (t1 - t0))
        kept = self._resolved_last
        try:
            codes, rsign = self._face_regime_at(Phi)
        finally:
            self._resolved_last = kept
        r0 = self._regime
        changed = np.any(codes != r0[0])
        if rsign.shape[1:] == r0[1].shape:
            changed = changed or np.any(rsign != r0[1])
        if changed and not self._phase.stiff:  # the search starts from this reading
            self._grid_read = ((t0, t1), (codes, rsign))
        return bool(changed)

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
