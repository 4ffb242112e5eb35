"""The faces of the initial neurons, and where a neuron at ``w = 0`` goes.

Part of :class:`pwflow.stepper.HybridFlow` (:class:`StartFacesMixin`).  A neuron that starts
on hyperplanes (within the rounding of a projection, :data:`pwflow.events.START_ULPS`) is
decided by :func:`pwflow.filippov.select` (logged as ``INITIAL_FACE`` where it stays); a
neuron at ``w = 0`` stays there or departs at once (:meth:`StartFacesMixin._from_origin`),
also when it arrives there by an event.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .events import START_ULPS, EventKind, within_rounding
from .filippov import (
    BranchPolicy,
    Selection,
    gd_through_origin,
    implied_hyperplanes,
    select,
    through_origin,
)
from .model import network_output, output_rate, slopes
from .origin_watch import HeldAtOrigin
from .subgradient import fixed_part

Array = NDArray[np.float64]

#: a neuron started at ``w = 0`` that stays there is watched for a departure that appears
#: later, as one that arrived there by an event (:mod:`pwflow.origin_watch`); ``False``
#: restores session 41's start, which held it with no watch (tests: the mechanism off)
WATCH_STARTS_AT_ORIGIN = True

#: below full rank, a neuron that starts in ``ker X`` (every offset 0 exactly, ``w ≠ 0``) is
#: a neuron at ``w = 0`` of the span's problem: decided by the rule at 0 and watched, its
#: null-space part kept, as one that arrives there (session 40); ``False``: decided on its
#: initial face and not watched, as before session 42 (tests: the mechanism off)
KER_X_STARTS_AT_ORIGIN = True


class StartFacesMixin:
    """Initial faces and the origin for :class:`pwflow.stepper.HybridFlow` (sets ``pat`` at
    construction; writes ``_at_rest`` and ``_parallel``)."""

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
            # at the origin: w = 0, or below full rank a w in ker X whose offsets on the data
            # as given are 0 exactly (gradient descent reads no side there: a neuron at w = 0
            # of the span's problem, decided and watched as one; session 42) and a_j ≠ 0
            # (with a_j = 0 it is a fixed point: dw/dt = a D = 0, da/dt = <w, D> = 0)
            origin = {int(j) for j in on_face if np.all(W[j] == 0) or (
                KER_X_STARTS_AT_ORIGIN and not self._origin_is_face
                and self.Z[j, self.d] != 0.0 and np.all(given[j] == 0.0))}
            starts = [int(j) for j in on_face if int(j) not in origin]
            chosen = self._decide_starts(starts, U, r, given)
            # where da_j/dt = <w_j, D_j> vanishes too, the sign a_j takes next is that of
            # d²a_j/dt², which the other neurons' motion sets through dr/dt; and a neuron held
            # on hyperplanes on which gradient descent's first step does not move it goes
            # where dr/dt takes it at the next step (filippov._gd_first_order: only with
            # γ = 0; otherwise the second pass would repeat the first)
            again = [j for j, sel in chosen.items() if self.Z[j, self.d] == 0.0
                     or (self.gamma == 0.0 and np.any(sel.signs == 0))]
            if again and not self.opt.frozen_output:
                r_rate = self._initial_residual_rates(U, r, chosen)
                chosen.update(self._decide_starts(again, U, r, given, r_rate))
            # at w = 0 the rule reads the neuron only through sign(a_j) (the residuals are
            # every neuron's): one decision per sign (a first layer started at 0 put every
            # neuron there; the search over the arrangement at 0 is the costly part)
            at_origin: dict[float, Selection | None] = {}
            for j in on_face:
                if int(j) in origin:
                    U[j] = 0
                    self.Z[j, : self.d] = self._origin_part(W[j][None])[0]
                    rows.append((int(j), -1, EventKind.REACH_ZERO))
                    key = float(np.sign(self.Z[j, self.d]))
                    if key not in at_origin:
                        at_origin[key] = self._from_origin(self.Z[j, self.d], r, at_rest=True)
                    sel = at_origin[key]
                    if sel is not None:  # it departs from w = 0 at once
                        U[j, sel.K] = sel.signs
                        rows.extend((int(j), int(k), EventKind.BRANCH)
                                    for k in sel.K[sel.branch])
                    elif WATCH_STARTS_AT_ORIGIN and self._watches_arrival(None):
                        # it stays: watched like a neuron that arrived at 0 by an event, its
                        # gradient descent's map run from 0 itself (a first layer started at
                        # 0 was held there while the residuals moved and gradient descent
                        # left at t = 9.5; session 42, seed 42052)
                        self._hold_at_origin(int(j), HeldAtOrigin(
                            key, np.zeros(self.n, np.int8), np.zeros(self.d)))
                    continue
                sel = chosen[int(j)]
                U[j, sel.K] = sel.signs
                self._at_rest[j] = bool(np.any(sel.signs == 0))
                if np.any(sel.signs == 0):
                    self.Z[j, : self.d] = self._project_face(W[j], sel.K[sel.signs == 0])
                for k, s, br in zip(sel.K, sel.signs, sel.branch, strict=True):
                    kind = (EventKind.BRANCH if br else EventKind.INITIAL_FACE if s == 0
                            else EventKind.LEAVE_SLIDING)
                    rows.append((int(j), int(k), kind))
        pat = self.table.index_many(U)
        for j, k, kind in rows:
            self._log(self.t, j, k, kind, 0.0, -1, int(pat[j]))
        return pat

    def _decide_starts(self, starts: list[int], U: NDArray[np.int8], r: Array, given: Array,
                       r_rate: Array | None = None) -> dict[int, Selection]:
        """:func:`pwflow.filippov.select` for the neurons ``starts`` on their initial faces
        ``U`` (``given``: ``<w_j, x_k>`` on the data as given, whose signs gradient descent's
        first step reads; ``r_rate``: ``dr/dt``, for the second pass).  With ``a_j ≠ 0`` the
        rule depends on the neuron only through its face, ``sign(a_j)`` and those signs
        (``w`` orients the motion only where ``a_j = 0``): one solve per distinct key."""
        W = self.Z[:, : self.d]
        decided: dict[tuple[bytes, float, bytes], Selection] = {}
        chosen: dict[int, Selection] = {}
        for j in starts:
            sides = np.sign(given[j]).astype(np.int8)
            key = (U[j].tobytes(), float(np.sign(self.Z[j, self.d])), sides.tobytes())
            sel = decided.get(key) if key[1] != 0.0 else None
            if sel is None:
                sel = select(self.Z[j, self.d], U[j], self.X, r, self.gamma, policy=self.policy,
                             w=W[j], at_rest=True, sides=sides, r_rate=r_rate,
                             geometry=self.geometry)
                decided[key] = sel
            chosen[j] = sel
        return chosen

    def _initial_residual_rates(self, U: NDArray[np.int8], r: Array,
                                chosen: dict[int, Selection]) -> Array:
        """``dr/dt`` at the start, every neuron moving with its field: off its hyperplanes
        the slopes of its sides, on them the selected ``D`` (:func:`pwflow.model.output_rate`).
        """
        W, a = self.Z[:, : self.d], self.Z[:, self.d]
        U = U.copy()
        for j, sel in chosen.items():
            U[j, sel.K] = sel.signs
        D = fixed_part(slopes(U, self.gamma), r, self.X)
        for j, sel in chosen.items():
            D[j] = sel.D
        h = network_output(W, a, self.X, self.gamma)
        return self.loss.derivative_rate(h, self.y, output_rate(W, a, self.X, D, U, self.gamma))

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
        gives.  ``None``: it stays (Condition 1, point 2, holds for it); a selection that
        holds every hyperplane: it stays at a branch point (``sel.branch``).  Where ``rank X < d``
        the face ``u = 0`` is the null space of ``X``, the origin of the data's span: the same
        rule, on the span's problem (the null-space part of ``w`` does not move: ``D ∈ span
        X``; session 40, before which such a neuron was not decided here nor watched).

        Where it stays but arrived (on the face ``arrived_on``) at a velocity that passing
        through 0 continues consistently (:func:`pwflow.filippov.through_origin`), the flow
        is not unique there: a branch point.  The ``'gd'`` policy passes through where
        gradient descent does (:func:`pwflow.filippov.gd_through_origin`: ReLU, session 13's
        exploration, seed 1651) and stays, as gradient descent does, where its own map near 0
        stays within a few steps of it (session 36, seed 1317); a neuron it holds is then
        watched for a departure that appears later (:mod:`pwflow.origin_watch`).
        """
        sel = self._select_at_origin(a, r, at_rest, self.policy)
        gd = self.policy is BranchPolicy.GRADIENT_DESCENT and arrived_on is not None
        rule_branch = False  # the rule at 0 departs where staying is the minimal-norm choice
        if np.any(sel.signs != 0):
            if not gd:
                return sel
            stay = self._select_at_origin(a, r, at_rest, BranchPolicy.MIN_NORM)
            if np.any(stay.signs != 0):
                return sel  # no staying (0 ∉ 𝔇(0)): it departs, on gradient descent's face
            sel, rule_branch = stay, True
        through = None if arrived_on is None else through_origin(
            a, arrived_on, self.X, r, self.gamma, self.policy)
        if gd and (through is not None or rule_branch):
            # a branch point: gradient descent departs only where its own map from the
            # arrival escapes; where it stays, the branch is logged as by the minimal-norm
            # policy
            gone = gd_through_origin(a, arrived_on, self.X, r, self.gamma)
            if gone is not None:
                return gone
        if through is None:
            if at_rest and np.any(sel.branch):
                # it starts at 0 and stays, where gradient descent's first step (σ'(0) = γ)
                # is a consistent departure: a branch point, logged (a first layer started
                # at 0 under the minimal-norm policy held every neuron there with no row
                # while gradient descent left; session 41).  Not watched: the row says the
                # flow parts from gradient descent here
                return sel
            return None
        return Selection(through.K, np.zeros(self.n, np.int8), sel.eta, sel.D, through.branch)

    def _select_at_origin(self, a: float, r: Array, at_rest: bool, policy: BranchPolicy
                          ) -> Selection:
        """:func:`~pwflow.filippov.select` for a neuron at ``w = 0`` (every hyperplane)."""
        return select(a, np.zeros(self.n, np.int8), self.X, r, self.gamma, policy=policy,
                      w=np.zeros(self.d), at_rest=at_rest, geometry=self.geometry)

    def _meets_at_origin(self, u: NDArray[np.int8]) -> bool:
        """Whether the hyperplanes ``u = 0`` meet only at ``w = 0`` (``x_K`` spanning the data's
        span: every other hyperplane implied; below full rank, "0" is ``ker X``, the origin
        of the span, :meth:`_from_origin`).  A neuron on a ray (d − 1 of them)
        that reaches another hyperplane has reached 0, whichever of the two coinciding roots
        (the ray's end, that hyperplane's offset) the step located first (d = 2, γ = 0.1,
        session 37 seed 5476: the offset's, and the ``'gd'`` policy went on along the
        hyperplane's ray from ``|w| = 1e-9`` as if passing an intersection)."""
        K = np.flatnonzero(u == 0)
        if K.size < self._span_rank:
            return False
        return K.size + self.geometry.implied(K).size == self.n

    def _at_origin(self, z: Array, u: NDArray[np.int8]) -> bool:
        """Whether a neuron that arrives on the face ``u`` by a hyperplane event is at the
        origin: ``u = 0``, every hyperplane.  Where ``rank X < d`` that face is ``ker X``, the
        origin of the data's span: no field moves a neuron along it (``D ∈ span X``), so the
        neuron arrives there at its own null-space component (:meth:`_origin_part`), and is
        otherwise a neuron at ``w = 0`` of the span's problem (session 40: it was logged as
        sliding on every hyperplane, neither decided by :meth:`_from_origin` nor watched)."""
        return not np.any(u != 0)

    def _origin_part(self, W: Array) -> Array:
        """Where neurons ``W`` (rows) that reached the origin are: ``0``, or below full rank
        their null-space part ``W − (W V) Vᵀ`` (``V``: the span's orthonormal rows)."""
        if self._origin_is_face:
            return np.zeros_like(W)
        return W - (W @ self._span_rows.T) @ self._span_rows
