"""Neurons held at ``w = 0``, watched for a departure that appears later (either policy).

Part of :class:`pwflow.stepper.HybridFlow` (:class:`OriginWatchMixin`).  A neuron that
reaches ``w = 0`` by an event and stays there (:meth:`pwflow.start_faces.StartFacesMixin.
_from_origin`) has ``dw/dt = 0`` and ``da/dt = <w, D> = 0``: staying is a solution of
Eq. (2) for as long as ``0 ∈ 𝔇(0)``, and the minimal-norm one.  Gradient descent sits within
``O(lr)`` of 0, on the bounded orbit of its own map near 0 (:func:`pwflow.filippov.
gd_origin_orbits`), which follows the residuals as they move.  Where a face that orbit
chatters on turns into one along which the motion leaves 0 (:func:`pwflow.filippov.
escapes_along`), gradient descent leaves 0 along it: a branch point that appears at a time,
not at an event.

Each such neuron (full-rank data, ``a ≠ 0``, either policy) carries its orbit: the map is
run from the arrival (:data:`pwflow.filippov.ORIGIN_MAP_STEPS` steps) at the first step end,
and on from its last iterate at every step end after: through the step at the residuals
interpolated from its start's (:data:`ORIGIN_SWEEP_CHUNKS`, as gradient descent's iterates
follow them), then :data:`ORIGIN_TRACK_STEPS` steps at the residuals there.  At every
step end the faces of the orbit whose star holds :data:`ORIGIN_STAR_FRACTION` of its
iterates are tested; where one escapes, the time is
located by bisection on the step's dense output (the orbit run on from the step start at
each time), the step is cut there and the neuron departs on that face (``'gd'`` policy) or
stays (minimal-norm policy), logged as a branch point either way.  A ReLU neuron whose
orbit has come to rest inside the cell where no point is active cannot move nor escape for
any residuals: its map is not run again (:meth:`OriginWatchMixin._inert`).
``docs/integrator.md``,
"A departure from 0 that appears later (session 38)" and "The same departure from 0, logged
by the minimal-norm policy (session 39)"."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from .bisection import bisect
from .dense import propagators_at
from .events import EventKind
from .filippov import (
    ORIGIN_MAP_LEAD,
    ORIGIN_MAP_STARTS,
    ORIGIN_MAP_STEPS,
    BranchPolicy,
    Selection,
    escapes_along,
    gd_origin_orbits,
    in_star,
    origin_map_starts,
    transition,
)

Array = NDArray[np.float64]

#: steps of gradient descent's map near 0 run at each step end from the orbit's last
#: iterate (:func:`~pwflow.filippov.gd_origin_orbits`): the map relaxes onto its orbit in a
#: few tens of steps (session 38, seed 5026: six neurons arrived on two rays at t = 1.05–4.25
#: share one orbit of three to seven faces by t = 10, as gradient descent's iterates do)
ORIGIN_TRACK_STEPS = 1000

#: before its run at a step end the orbit follows the residuals through the step, as gradient
#: descent's iterates do: :data:`ORIGIN_SWEEP_CHUNKS` runs of :data:`ORIGIN_SWEEP_STEPS` steps
#: at the residuals interpolated from the step start's to the step end's.  At the step-end
#: residuals alone a window in which the orbit's bounded set near 0 leaves for a ray (and
#: returns after it) is skipped by a step that spans it, and the orbit stays where gradient
#: descent does not (session 55: thorough profile of ``test_neurons_started_in_ker_x_train_as_
#: at_zero_of_the_span[gd]``, R^2, the window t ≈ 8.15–8.3 between step ends 8.02 and 8.26;
#: gradient descent at every step from 1e-3 to 1.25e-4 is on the ray by t = 8.3 and leaves 0
#: along it once it turns outwards at 8.4258; the run stayed at 0 to 9.4767, in R^4 it left
#: at 8.4258)
ORIGIN_SWEEP_CHUNKS = 10
ORIGIN_SWEEP_STEPS = 50

#: the fraction of the orbit's iterates that must lie in the star of a face (the cells whose
#: closure holds it) for the neuron to leave 0 along it once the motion on it turns outwards.
#: Gradient descent then chatters about that face and drifts out with it; where the orbit
#: only passes by, it leaves the face's star before the drift can carry it away (session 38,
#: campaign with large output weights, seed 5181: a ray met by 4 % of the iterates turned
#: outwards at t = 2.06 and gradient descent stayed; the three cases that leave had 100 %)
ORIGIN_STAR_FRACTION = 0.9


#: skip the orbits that cannot move (:meth:`OriginWatchMixin._inert`); off only to show that
#: the watch's verdicts and records are the same
SKIP_INERT_ORBITS = True

#: a watched neuron that gradient descent's orbit takes off 0 where staying is no solution
#: (``0 ∉ 𝔇(0)``) departs on the rule's face with no branch point under either policy
#: (:meth:`OriginWatchMixin._leave_origin`); ``False``: the ``'gd'`` policy logged BRANCH rows
#: there (before session 59)
ESCAPE_WITHOUT_STAY_IS_NO_BRANCH = True


def _bounded_first(escaped: NDArray[np.bool_]) -> int:
    """Which of a neuron's first orbits (from :func:`~pwflow.filippov.origin_map_starts`)
    it carries: the first that stays bounded, the arrival's own where it does.  Near 0 the
    map can be chaotic, its orbit from one start escaping by rounding (session 40,
    ``tests/data/origin_stall.npz``: from 44 % of the starts within 1e-13 of the
    arrival's); an escaped orbit's iterates fill the star of its escape ray, and the watch
    read that as a departure at the arrival time, after :func:`~pwflow.filippov.
    gd_escape_from_origin` had found no consensus to escape.  Where every orbit escaped
    (the minimal-norm policy holds the neuron; gradient descent departs), the first."""
    stays = np.flatnonzero(~np.asarray(escaped, dtype=bool))
    return int(stays[0]) if stays.size else 0


@dataclass(frozen=True)
class HeldAtOrigin:
    """A neuron held at ``w = 0`` since it arrived there by an event, with gradient descent's
    orbit near 0 (:func:`~pwflow.filippov.gd_origin_orbits`).

    Attributes
    ----------
    sign : float
        The sign of its ``a`` (constant at ``w = 0``).
    arrived_on : ndarray of int8, shape (n,)
        The face it arrived along.
    velocity : ndarray, shape (d,)
        Its velocity on arrival (:func:`~pwflow.filippov.arrival_velocity`); the map starts
        :data:`~pwflow.filippov.ORIGIN_MAP_LEAD` steps before 0 on it.
    state : ndarray, shape (d,), or None
        The orbit's last iterate (``None``: not run yet).
    faces : ndarray of int8, shape (F, n)
        The faces the orbit meets, the most met first (:attr:`pwflow.filippov.OriginOrbits.
        faces`).
    cells, weights : ndarray of int8, shape (C, n), and ndarray, shape (C,)
        The cells of its iterates and the fraction of them in each.
    """

    sign: float
    arrived_on: NDArray[np.int8]
    velocity: Array
    state: Array | None = None
    faces: NDArray[np.int8] | None = None
    cells: NDArray[np.int8] | None = None
    weights: Array | None = None

    def star_weight(self, u: NDArray[np.int8]) -> float:
        """The fraction of the orbit's iterates in the star of the face ``u``."""
        return float(np.sum(self.weights[in_star(self.cells, u)]))

    def to_dict(self) -> dict:
        def plain(v):
            return None if v is None else v.tolist()

        return {"sign": self.sign, "arrived_on": self.arrived_on.tolist(),
                "velocity": self.velocity.tolist(), "state": plain(self.state),
                "faces": plain(self.faces), "cells": plain(self.cells),
                "weights": plain(self.weights)}

    @classmethod
    def from_dict(cls, d: dict) -> "HeldAtOrigin":
        def arr(v, dtype):
            return None if v is None else np.asarray(v, dtype)

        return cls(float(d["sign"]), np.asarray(d["arrived_on"], np.int8),
                   np.asarray(d["velocity"], float), arr(d["state"], float),
                   arr(d["faces"], np.int8), arr(d["cells"], np.int8), arr(d["weights"], float))


@dataclass(frozen=True)
class OriginDepartures:
    """The watch's verdicts at one time: per watched neuron, where it departs (``None``: it
    stays)."""

    t: float
    by_neuron: dict[int, Selection | None]

    def any(self) -> bool:
        return any(sel is not None for sel in self.by_neuron.values())


class OriginWatchMixin:
    """The watch of the neurons held at ``w = 0`` for :class:`pwflow.stepper.HybridFlow`
    (writes ``_origin_held``, ``_origin_before`` and ``_origin_at``)."""

    def _watches_origin(self) -> bool:
        """Whether neurons held at ``w = 0`` are watched: always, under either policy (below
        full rank, at ``ker X``, the origin of the data's span: session 40).  The ``'gd'``
        policy follows gradient descent off 0; the minimal-norm policy stays (its
        continuation) and logs the branch point where gradient descent leaves (session 39:
        staying is then one solution of Eq. (2) among several, and the two runs part
        there)."""
        return True

    def _watches_arrival(self, sel: Selection | None) -> bool:
        """Whether a neuron that reached ``w = 0`` with the rule's selection ``sel`` there
        (:meth:`pwflow.start_faces.StartFacesMixin._from_origin`; ``None``: it stays) is
        watched: where it stays, and under the minimal-norm policy only where its arrival is
        not a branch point already (the trajectory is one branch among several from there
        on; a second row for the same neuron would say nothing new)."""
        if not self._watches_origin():
            return False
        if self.policy is BranchPolicy.MIN_NORM:
            return sel is None
        return sel is None or not np.any(sel.signs != 0)

    def _hold_at_origin(self, j: int, held: HeldAtOrigin) -> None:
        """Watch neuron ``j``, which reached ``w = 0`` and stays there; not where ``a_j = 0``
        (``dw/dt = a D = 0`` and ``da/dt = <w, D> = 0``: no motion leaves ``(0, 0)``, and
        :func:`~pwflow.filippov.escapes_along` never says so)."""
        if held.sign != 0.0:
            self._origin_held[int(j)] = held

    def _origin_watched(self) -> dict[int, HeldAtOrigin]:
        """The watched neurons still at ``w = 0`` (those moved off it are dropped)."""
        held = self._origin_held
        if held:
            U = self.table.U
            for j in [j for j in held if np.any(U[self.pat[j]] != 0)]:
                del held[j]
        return held

    def _inert(self, h: HeldAtOrigin) -> bool:
        """Whether the orbit of ``h`` can neither move nor escape, whatever the residuals:
        ReLU, its iterate strictly inside the cell where no point is active (``<ŵ, x_k> < 0``
        for every k) and its record that cell's alone (its last run ended there: one cell,
        one face, the iterate with no ``−0.0`` coordinate that a zero step would turn
        ``+0.0``).  There every slope is 0, the map's direction is 0 for every ``r``, so its
        run from the iterate gives back the same record, bit for bit (a fixed point,
        :func:`~pwflow.filippov.gd_origin_orbits`), and the motion along that open cell is
        ``D = 0`` (:func:`~pwflow.filippov.escapes_along` finds no escape).  Its record is
        kept and its verdict is to stay, without the map's run."""
        if not SKIP_INERT_ORBITS or self.gamma != 0.0 or h.state is None or h.faces is None:
            return False
        dead = np.full(self.X.shape[0], -1, dtype=np.int8)
        return bool(np.all(self.X @ h.state < 0.0)
                    and h.cells.shape[0] == 1 and np.array_equal(h.cells[0], dead)
                    and h.faces.shape[0] == 1 and np.array_equal(h.faces[0], dead)
                    and not np.any(np.signbit(h.state) & (h.state == 0.0)))

    def _tracked(self, held: dict[int, HeldAtOrigin], r: Array,
                 r_from: Array | None = None) -> dict[int, HeldAtOrigin]:
        """The records ``held`` with gradient descent's map near 0 run on at the residuals
        ``r``: from the arrival where it has not run yet (:data:`~pwflow.filippov.
        ORIGIN_MAP_STEPS`), on from its last iterate otherwise (:data:`ORIGIN_TRACK_STEPS`),
        every neuron of each kind at once; there, with ``r_from`` (the residuals at the step
        start), after following the residuals from ``r_from`` to ``r``
        (:data:`ORIGIN_SWEEP_CHUNKS`)."""
        out = dict(held)
        for fresh in (True, False):
            # neurons whose maps are the same (sign and start: a first layer started at 0
            # holds every neuron of one sign on one orbit) share one run
            groups: dict[tuple[float, bytes], list[int]] = {}
            for j, h in held.items():
                if (h.state is None) == fresh and not self._inert(h):
                    v = h.velocity if fresh else h.state
                    groups.setdefault((h.sign, v.tobytes()), []).append(j)
            if not groups:
                continue
            lead = [js[0] for js in groups.values()]
            per = ORIGIN_MAP_STARTS if fresh else 1
            starts = np.concatenate([
                origin_map_starts(-ORIGIN_MAP_LEAD * held[j].velocity) if fresh
                else held[j].state[None] for j in lead])
            signs = np.repeat([held[j].sign for j in lead], per)
            if not fresh and r_from is not None:
                for c in range(ORIGIN_SWEEP_CHUNKS):
                    r_c = r_from + (c / ORIGIN_SWEEP_CHUNKS) * (r - r_from)
                    starts = gd_origin_orbits(signs, starts, self.X, r_c, self.gamma,
                                              ORIGIN_SWEEP_STEPS).states
            orbit = gd_origin_orbits(signs, starts, self.X, r, self.gamma,
                                     ORIGIN_MAP_STEPS if fresh else ORIGIN_TRACK_STEPS)
            for i, js in enumerate(groups.values()):
                o = i * per + _bounded_first(orbit.escaped[i * per:(i + 1) * per])
                for j in js:
                    out[j] = replace(held[j], state=orbit.states[o], faces=orbit.faces[o],
                                     cells=orbit.cells[o], weights=orbit.weights[o])
        return out

    def _origin_departures(self, r: Array, t: float,
                           held: dict[int, HeldAtOrigin] | None = None) -> OriginDepartures:
        """Per watched neuron (of ``held``, default the current records), the first face of
        its orbit whose star holds :data:`ORIGIN_STAR_FRACTION` of the orbit's iterates and
        along which the motion leaves 0 at the residuals ``r`` (:func:`~pwflow.filippov.
        escapes_along`; each face and sign tested once), or ``None``."""
        tested: dict[tuple[float, bytes], Selection | None] = {}
        out: dict[int, Selection | None] = {}
        # neurons that share one orbit (the same arrays: :meth:`_tracked`) share the verdict
        shared: dict[tuple[float, int, int], Selection | None] = {}
        for j, h in (self._origin_watched() if held is None else held).items():
            out[j] = None
            if h.faces is None or self._inert(h):  # arrived at this cut: its orbit runs from
                continue                                # the next step end; or it cannot move
            orbit = (h.sign, id(h.faces), id(h.cells))
            if orbit in shared:
                out[j] = shared[orbit]
                continue
            for u in h.faces:
                if h.star_weight(u) < ORIGIN_STAR_FRACTION:
                    continue
                key = (h.sign, u.tobytes())
                if key not in tested:
                    tested[key] = escapes_along(h.sign, u, self.X, r, self.gamma)
                if tested[key] is not None:
                    out[j] = tested[key]
                    break
            shared[orbit] = out[j]
        return OriginDepartures(t, out)

    def _origin_escapes(self, r: Array, t: float, r_from: Array | None = None) -> bool:
        """At a step end (time ``t``, residuals ``r``; ``r_from`` at the step start): the
        orbits run on there, and whether a watched neuron leaves ``w = 0``.  The records and
        the residuals at the step start are kept for :meth:`_origin_event`."""
        self._origin_before = dict(self._origin_watched())
        self._origin_r_from = r_from
        self._origin_held.update(self._tracked(self._origin_before, r, r_from))
        return self._origin_departures(r, t).any()

    def _origin_event(self, F: Array, t0: float, t1: float) -> tuple[float, int]:
        """The first time in ``(t0, t1]`` at which a watched neuron leaves ``w = 0``, by
        bisection on the step's dense output ``F`` to 4 ulp: at each time the orbits are run
        on from the step start at the residuals there (the orbit moves with them inside the
        step: session 38, seed 5394, it came into the star of a ray that had turned outwards
        between two step ends; with the step end's orbit held through the bisection the
        neuron left at t = 8.68 instead of 9.288).  The time ``t1`` is read again on the
        dense output (its orbit run once more), so that the bisection's ends agree.  The
        verdicts and orbits at the time found are kept for :meth:`_leave_origin`.  Returns
        the time and the face the neurons at 0 are on; ``inf`` where the dense output's end
        does not leave (the step end's own reading did, to rounding)."""
        h, occ = t1 - t0, self._field.occupied
        before = self._origin_before
        found: dict[float, tuple[OriginDepartures, dict[int, HeldAtOrigin]]] = {}

        def leaves(t: float) -> bool:
            r = self._field.residuals(propagators_at(F, (t - t0) / h, faces=occ))
            held = self._tracked(before, r, self._origin_r_from)
            found[t] = (self._origin_departures(r, t, held), held)
            return found[t][0].any()

        p0 = int(self.pat[next(iter(before))])
        if not leaves(t1):
            return np.inf, p0
        t = bisect(t0, t1, leaves, [t0, t1], self.time_unit)
        self._origin_at, held = found[t]
        self._origin_held.update(held)
        return t, p0

    def _leave_origin(self, js: NDArray[np.intp], new_pat: NDArray[np.intp], r: Array,
                      t: float) -> NDArray[np.intp]:
        """Decide the watched neurons among ``js`` (at ``w = 0``) at time ``t``: each departs
        where :meth:`_origin_departures` says so (as located by :meth:`_origin_event` at
        ``t``, else at ``r``), on the face it escapes along, logged as a branch point on the
        hyperplanes it arrived on and those it departs on (``k = −1`` where there are none);
        under the minimal-norm policy it stays, the same rows logged, and is watched no more;
        where staying is no solution (``0 ∉ 𝔇(0)``) it departs on the rule's face at 0, with
        no branch point, also where gradient descent escapes at that time
        (:data:`ESCAPE_WITHOUT_STAY_IS_NO_BRANCH`).
        Returns the neurons of ``js`` not watched (the exit rule decides them)."""
        at = self._origin_at
        if at is None or at.t != t:
            at = self._origin_departures(r, t)
        tab = self.table
        rest = []
        # the rule at 0 reads a neuron only through sign(a_j): one solve per sign and policy
        rule: dict[tuple[float, BranchPolicy], Selection] = {}

        def at_origin(a: float, policy: BranchPolicy) -> Selection:
            key = (float(np.sign(a)), policy)
            if key not in rule:
                rule[key] = self._select_at_origin(a, r, False, policy)
            return rule[key]

        for j in js.tolist():
            held = self._origin_held.get(j)
            if held is None:
                rest.append(j)
                continue
            sel = at.by_neuron.get(j)
            u_new = np.zeros(self.n, dtype=np.int8)
            p0 = int(new_pat[j])
            a = float(self.Z[j, self.d])
            if (sel is not None and (self.policy is BranchPolicy.MIN_NORM
                                     or ESCAPE_WITHOUT_STAY_IS_NO_BRANCH)
                    and np.any(at_origin(a, BranchPolicy.MIN_NORM).signs != 0)):
                # gradient descent escapes, but staying is no solution either (0 ∉ 𝔇(0): the
                # regime of the face at 0 read the exit, session 42): no branch point, the
                # rule departs, on the policy's face (session 59: the 'gd' policy logged
                # the same departure as a branch point, the minimal-norm one did not)
                sel = None
            if sel is not None:  # a branch point: staying is a continuation too
                u_new[sel.K] = sel.signs
                rows = {k: int(EventKind.BRANCH) for k in
                        np.flatnonzero((held.arrived_on == 0) | (u_new == 0)).tolist() or [-1]}
                if self.policy is BranchPolicy.MIN_NORM:  # it stays, the branch logged once
                    del self._origin_held[j]
                    for k, kind in rows.items():
                        self._log(t, j, int(k), kind, 0.0, p0, p0)
                    continue
            else:
                if not np.any(at_origin(a, BranchPolicy.MIN_NORM).signs != 0):
                    continue  # it stays (a continuation: 0 ∈ 𝔇(0))
                sel = at_origin(a, self.policy)
                u_new[sel.K] = sel.signs
                codes = transition(np.zeros(self.n, dtype=np.int8), u_new)
                rows = {k: int(EventKind.BRANCH if br else codes[k])
                        for k, br in zip(sel.K.tolist(), sel.branch.tolist(), strict=True)
                        if br or codes[k] >= 0}
            new_pat[j] = p_new = tab.index(u_new)
            del self._origin_held[j]
            for k, kind in rows.items():
                self._log(t, j, int(k), kind, 0.0, p0, p_new)
        return np.asarray(rest, dtype=np.intp)
