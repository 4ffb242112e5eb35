"""Where each located event takes its neuron, and the batch of events applied at a cut.

Part of :class:`pwflow.stepper.HybridFlow` (:class:`ClassifyMixin`).  A step's located
events (:class:`pwflow.events.Pending`) are classified in one pass
(:meth:`ClassifyMixin._classify_batch`): the neuron's state at its event time, the residuals
there (from the step's output polynomial), and the Filippov rule of :mod:`pwflow.filippov`
(:func:`~pwflow.filippov.select_single` for one hyperplane from an open cell, vectorised;
:func:`~pwflow.filippov.select` otherwise).  The batch cut (:func:`pwflow.batch.choose_cut`)
decides how many to apply; neurons moved into open cells have their next events located and
chained (:meth:`ClassifyMixin._chained_batch`); :meth:`ClassifyMixin._advance` applies the
batch at the cut, and :meth:`ClassifyMixin._leave_faces` decides the neurons of sliding
faces whose slopes reached a bound.  The result of one classification is a :class:`Batch`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .batch import choose_cut, cut_coefficients
from .dense import nested, nested_derivative, propagator_pairs, propagators_at, scan_grid
from .events import EventKind, Located, Pending, locate_roots
from .filippov import (
    BranchPolicy,
    arrival_velocity,
    select,
    select_single,
    transition,
    watched_velocity,
)
from .origin_watch import HeldAtOrigin
from .regime import RESOLUTION_HYSTERESIS
from .rows import last_per_neuron, project_rows, propagate
from .vector_field import CollectiveField, lorentz_inverse, lorentz_project

Array = NDArray[np.float64]


@dataclass(frozen=True)
class Batch:
    """Events applied together at one cut: per event its time (and step fraction), neuron,
    faces before and after, the neuron's state at the event and the located residual;
    ``log`` holds the rows ``(event, k, kind)`` (arrays, ordered by event), one per hyperplane
    whose entry changed (and per branch point).  ``arrived``: for an event that brings its
    neuron to ``w = 0`` to stay under the ``'gd'`` policy, its velocity on arrival
    (:func:`pwflow.filippov.arrival_velocity`: where the watch of :mod:`pwflow.origin_watch`
    starts gradient descent's map); NaN rows elsewhere."""

    ts: Array
    xs: Array
    js: NDArray[np.intp]
    ps: NDArray[np.intp]
    p_new: NDArray[np.intp]
    zs: Array
    resid: Array
    log: tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.intp]]
    arrived: Array


def merge_batches(parts: "list[Batch]") -> "Batch":
    """One :class:`Batch` from the generations of a chained batch, its rows in time order
    (a neuron's events in the order they happen) and its log rows following them."""
    if len(parts) == 1:
        return parts[0]
    cat = {f: np.concatenate([getattr(b, f) for b in parts])
           for f in ("ts", "xs", "js", "ps", "p_new", "zs", "resid", "arrived")}
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


class ClassifyMixin:
    """Classification and application of a step's events for
    :class:`pwflow.stepper.HybridFlow` (writes ``Z``, ``pat``, ``t`` at the cut; logs the
    events)."""

    #: chained events (:meth:`_chained_batch`): a neuron that a step's batch moves into an
    #: open cell may have further events in the same batch, located on that cell's dense
    #: output.  False: the cut stays before every switched neuron's next event located on
    #: its old face (the earlier rule; kept for comparisons)
    CHAIN_EVENTS = True

    #: batches of more events than this take the states at the event times from their own
    #: faces' propagators alone (:func:`~pwflow.dense.propagator_pairs`); the residuals come
    #: from the outputs' polynomial on the step (:meth:`_residuals_at`) for every batch
    INTERPOLATE_AFTER = 64

    #: the share of ``FlowOptions.batch_budget`` a batch with chained events may use.  Such a
    #: batch spans many more events, and uses its budget where one without stopped far
    #: below it: on Stewart's data (m = 2000, t = 50) at the full budget its event times
    #: moved by up to 1e-6 relative from the reference path's, at 1/100 by 4e-8 (99.9 %
    #: within 8e-10), as close as before chaining
    CHAIN_BUDGET = 0.01

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
            if self._meets_at_origin(u_face):
                zero[e] = True  # the hyperplanes reached meet only at w = 0: it reached it
                U_new[e] = 0
                continue
            sel = select(a_sign[e], u_face, self.X, R[e], g, policy=self.policy, w=zs[e, :d],
                         at_rest=bool(self._at_rest[js[e]]) and bool(flip[e]) and not ks,
                         geometry=self.geometry, approach=U_prev[e])
            U_new[e] = u_face
            U_new[e, sel.K] = sel.signs
            branch[e, sel.K] = sel.branch
            on_K[int(e)] = sel.K
            zero[e] = self._at_origin(zs[e], U_new[e])
        arrived = np.full((E, d), np.nan)
        for e in np.flatnonzero(zero):  # at w = 0: frozen there, or it departs at once
            branch[e] = False  # (what the rule said of the face it arrived on is moot)
            sel = self._from_origin(a_sign[e], R[e], arrived_on=U_prev[e])
            if sel is not None:
                U_new[e, sel.K] = sel.signs
                branch[e, sel.K] = sel.branch
            if self._watches_arrival(sel):  # gradient descent's orbit starts on its velocity
                v = arrival_velocity(a_sign[e], U_prev[e], self.X, R[e], g,
                                     BranchPolicy.GRADIENT_DESCENT)
                before = (self._Zs[js[e]] if vs is None else vs[e])[:d]
                arrived[e] = watched_velocity(v, self.X, R[e],
                                              before - self._origin_part(before[None])[0])
        # place each neuron exactly on the hyperplanes it reached or stays on (changes ‖w‖²
        # only at second order in the located residual, so Lemma 1 is unaffected); w = 0: w := 0
        zs[zero, :d] = self._origin_part(zs[zero, :d])
        # and a sign flip at its located root a_j = 0 (changes a_j² by the located residual
        # squared): left at ±rounding on the old side, the restarted solver found the same
        # flip again at its start and logged the branch point twice (d = 5, replaying)
        zs[flip & ~zero, d] = 0.0
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
                     resid=resid, log=log, arrived=arrived)

    def _advance(self, t_cut: float, t1: float, Phi1: Array, Z1: Array | None, F: Array,
                 field_: CollectiveField, pending: Pending | None, exits: dict) -> float:
        """Apply the step's events up to the cut and move every neuron there; returns the cut.

        The events up to ``t_cut`` are classified (chained, :meth:`_chained_batch`); the cut
        moves earlier to an event that enters a face not integrated in the step, and to an
        event of a switched neuron that is back on the wrong side of its new face before the
        cut.  Every neuron is then carried to the cut (switched ones from their event
        states on their new faces' propagators), the events are logged (their located
        residuals checked), the neurons of faces with exits at the cut are decided
        (:meth:`_leave_faces`), and the sliding neurons are projected onto their hyperplanes.
        ``Phi1``, ``Z1``: the propagators (and neurons, if known) at the step end ``t1``;
        ``F``: the step's dense output (both with rows for the faces registered in the step,
        :meth:`HybridFlow._event_dense_output`).
        """
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
            rows = self._occupied if B is None else np.union1d(
                self._occupied, B.p_new[B.p_new < Phi1.shape[0]])
            Phic = project_rows(Phi1 if t_cut == t1 else propagators_at(F, xc), rows,
                                 done=self._occupied if t_cut == t1 else None)
            if B is None:
                sel = np.zeros(0, dtype=np.intp)
                break
            sel = np.flatnonzero(B.ts <= t_cut)
            last = last_per_neuron(B.js, sel)  # = sel unless events were chained
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
            Zc = propagate(Phi1, self.pat, self._Zs, self.by_entries) if Z1 is None else Z1.copy()
        else:
            Zc = propagate(Phic, self.pat, self._Zs, self.by_entries)
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
            for e in last[~np.isnan(B.arrived[last, 0])].tolist():  # held at w = 0: watched
                self._hold_at_origin(int(B.js[e]), HeldAtOrigin(
                    float(np.sign(B.zs[e, self.d])), tab.U[B.ps[e]].copy(), B.arrived[e]))
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
        t_new = float(t_cut)
        self._project_sliding(Zc, new_pat, t_new)
        # the new state in one assignment, no call between its stores (so no signal handler):
        # the time was set first, and a Ctrl-C or SIGTERM before the neurons left the run
        # at t_cut with the step start's neurons, which its wrap-up saved as the state there
        self._Zcur, self.pat, self.t = Zc, new_pat, t_new
        return t_cut

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
        return merge_batches(parts), t_cut

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
        located, later = Located.group(
            js[e_of[hit]], self.t + x * h, x, k, rate, np.abs(res), np.zeros(hit.size, np.int8),
            np.sign(a), self.time_unit, coef[hit],
            self._offset_rounding(np.linalg.norm(ze, axis=1)[e_of[hit]], k))
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
            if self._origin_held and not np.any(u_face):
                js = self._leave_origin(js, new_pat, r, t)  # the watched ones decided
            # select depends on the neuron only through the sign of a_j (or, at a_j = 0, of
            # <w_j, D>) and at_rest: one solve per distinct pair, not per neuron
            decided: dict[tuple[float, bool], tuple] = {}
            for j in js:
                at_rest = bool(self._at_rest[j]) and not ex
                key = (float(np.sign(Z[j, d])), at_rest)
                if key[0] == 0.0 or key not in decided:
                    sel = select(Z[j, d], u_face, self.X, r, self.gamma, exits=ex,
                                 policy=self.policy, w=Z[j, :d], at_rest=at_rest,
                                 geometry=self.geometry)
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
            if self.policy is BranchPolicy.MIN_NORM:
                # a dependent face's branch logged where its neurons stay: watched no more
                self._dependent_logged.update(
                    (int(p), key[0], key[1]) for key, (sel, p_new, _) in decided.items()
                    if p_new == p and np.any(sel.branch))
