"""Event detection: which neurons a step may have moved across a hyperplane, and where.

Part of :class:`pwflow.stepper.HybridFlow` (:class:`DetectionMixin`).  At each solver start
every neuron gets a lower bound ``μ_j`` of its distance to the hyperplanes bounding its face
(:meth:`DetectionMixin._margins`, carried from start to start); at a step end only the
neurons whose face propagator moved them that far are evaluated (:class:`BelowLimit`).
Among those: sign changes at the step end (:func:`pwflow.events.detect_crossings`), ``w``
reaching 0 on a ray, sliding neurons whose ``a_j`` changed sign, and excursions out and back
inside the step (scanned on the dense output).  The candidates (:class:`Candidates`) are
then located to rounding on the step's dense output
(:meth:`DetectionMixin._locate_neuron_events`, :func:`pwflow.events.locate_roots`).
Where each neuron goes at its event is decided later (:mod:`pwflow.classify`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from numpy.typing import NDArray

from .dense import nested_derivative, pair_polynomials, scan_grid
from .events import (
    Located,
    detect_crossings,
    detect_sign_flips,
    detect_zero_crossings,
    first_exit_brackets,
    locate_roots,
    offset_rounding,
)
from .rows import propagate, row_norms

Array = NDArray[np.float64]


#: event code of a located candidate that is not a hyperplane (``k >= 0``)
ZERO, FLIP = -1, -2


class BelowLimit:
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


class DetectionMixin:
    """Event detection and location for :class:`pwflow.stepper.HybridFlow` (writes the
    margins ``_mu``, ``_mr``, ``_sl``, ``_znorm`` at each solver start; reads the step's
    propagators)."""

    #: an excursion whose pair is not strictly on its side at the step start exits there
    #: (:meth:`_excursions`); ``False`` only to show what it fixes
    EXCURSION_EXITS_AT_START = True

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
            mu -= row_norms(W, W_old)
            stale = np.flatnonzero((self.pat != pat_old) | (mu < 0.5 * exact))
        if stale.size:
            mu[stale] = self._exact_margins(W[stale], self.pat[stale])
            exact[stale] = mu[stale]
        self._mu = mu
        # self._Zs and self.pat are never written to (each start makes a new Z, each cut a
        # new pattern array): both are kept as they are
        self._mu_state = (W, self.pat, mu, exact)
        self._znorm = row_norms(self._Zs)
        # the neurons a step can bring to a hyperplane: 0.9 μ_j / ‖z_j‖ below the step's
        # bound (:meth:`_near`), found without a pass over all m
        reach = np.multiply(mu, 0.9)
        with np.errstate(divide="ignore", invalid="ignore"):
            np.divide(reach, self._znorm, out=reach)
        reach[~(self._znorm > 0)] = np.inf
        caps = self._caps()
        self._mr = BelowLimit(reach, self.pat, np.arange(self.m), self._occupied, caps[0])
        # sliding neurons, by |a_j| / ‖z_j‖ at the start: ``a_j`` can change sign only once
        # ‖Φ_u − I‖ reaches that ratio (see :meth:`_flips`)
        sl = self._sliding_of(self.pat)[0]
        ratio = np.abs(self._Zs[sl, self.d]) / np.maximum(self._znorm[sl], np.finfo(float).tiny)
        occ = self._occupied
        self._sl = BelowLimit(ratio, self.pat[sl], sl, occ[tab.nfree[occ] > 0], caps[1])

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
        if dist.shape[1] > 16:
            mu = np.min(dist, axis=1, initial=np.inf)
        else:  # the rows' minimum by columns (the same numbers): 3x faster on short rows
            mu = np.full(W.shape[0], np.inf)
            for col in dist.T:
                np.minimum(mu, col, out=mu)
        on_ray = tab.dim[pat] == 1
        mu[on_ray] = np.minimum(mu[on_ray], row_norms(W[on_ray]))
        return mu

    def _near(self, bound: Array) -> NDArray[np.intp]:
        """Neurons with ``bound[u_j] ‖z_j‖ >= 0.9 μ_j``: those whose face propagator moved
        them (``bound``, per face) as far as their margin (:meth:`_margins`), in index order.
        The candidates are those with ``0.9 μ_j / ‖z_j‖`` below the bound (with a relative
        slack of 1e-12, :class:`BelowLimit`); the test itself is then applied to them, so
        the set is exactly the one of the direct test over all neurons."""
        js = self._mr.below(bound * (1 + 1e-12))
        return js[bound[self.pat[js]] * self._znorm[js] >= 0.9 * self._mu[js]]

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
        tiny = (offset_rounding(self._znorm[idx]) + slack)[on_ray]
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
        not evaluated (:class:`BelowLimit`, :meth:`_margins`).
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
            Z0 = propagate(self._Phi, pat[rows], self._Zs[near[rows]], self.by_entries)
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
        side = self.table.U[self.pat[js[hit]], kk[hit]].astype(np.int8)
        lo, hi = grid[first - 1], grid[first]
        # a pair not strictly on its side at the step start (across by rounding, within the
        # dense output's accuracy: parallel neurons restarted at a cut at the first one's
        # event, session 45) has no sign change to bracket: it exits at the start
        if self.EXCURSION_EXITS_AT_START:
            across = side * coef[hit, 0] <= 0
            lo[across] = hi[across] = 0.0
        return Candidates(neuron=js[hit], code=kk[hit], left=self.xhat[kk[hit]], side=side,
                          a_end=Z1n[rows[hit], self.d], lo=lo, hi=hi)

    def _offset_rounding(self, znorm: Array, code: NDArray[np.intp]) -> Array:
        """The rounding of ``<x_k, w>`` (:func:`pwflow.events.offset_rounding` of ``‖z‖``,
        times ``‖x_k‖``) for neurons of norm ``znorm`` and data indices ``code`` (0 where
        ``code < 0``)."""
        xk = np.where(code >= 0, self.xnorm[np.maximum(code, 0)], 0.0)
        return offset_rounding(znorm) * xk

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
        located, self._later = Located.group(
            neurons, tt, x, code, rate, np.abs(res), observed, np.sign(a_end), self.time_unit,
            coef, self._offset_rounding(self._znorm[neurons], code))
        return located
