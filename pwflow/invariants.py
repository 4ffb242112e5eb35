"""Neurons kept on their faces' hyperplanes, and the run's invariants checked.

Part of :class:`pwflow.stepper.HybridFlow` (:class:`InvariantsMixin`).  The orthogonal
projection onto a face (:meth:`InvariantsMixin._project_face`) places a neuron on the
hyperplanes it reached; sliding neurons are projected back at every materialisation, after
the distance removed is measured (:meth:`InvariantsMixin._project_onto`).  Each check raises
:class:`pwflow.options.InvariantError` beyond its tolerance, naming the neuron (or face),
the time and the quantity: the Lorentz projection's move (Lemma 1), the sliding residual,
the located event residual.  The Zeno guard raises :class:`pwflow.options.ZenoError` on
chattering.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .bisection import time_ulp
from .options import InvariantError, ZenoError
from .rows import row_norms

Array = NDArray[np.float64]


def is_tiny_step(t0: float, t1: float, unit: float = 1.0) -> bool:
    """Whether ``[t0, t1]`` spans at most 1000 of the run's time resolution at ``t1``
    (:func:`pwflow.bisection.time_ulp`): a step the Zeno guard counts as making no progress
    (``zeno_events`` of them in a row stop the run), and one whose dense output is not
    checked at a cut (:meth:`HybridFlow._cut_inaccurate`); ``unit``: the run's
    (:func:`pwflow.bisection.time_unit`)."""
    return t1 - t0 <= 1e3 * time_ulp(t1, unit)


class InvariantsMixin:
    """Projections onto faces and invariant checks for :class:`pwflow.stepper.HybridFlow`
    (updates ``max_sliding_residual``, ``max_lorentz_correction``)."""

    def _project_face(self, w: Array, K: NDArray) -> Array:
        """Orthogonal projection of ``w`` onto ``{v : <v, x_k> = 0, k ∈ K}``.

        ``w`` of shape ``(d,)`` with indices ``K``, or a batch ``(E, d)`` with ``K`` of shape
        ``(E, c)``: ``w − X_Kᵀ (X_K X_Kᵀ)^+ X_K w``, vectorised over the batch for ``c = 1``
        (where it is ``w − <w, x_k> x_k / ‖x_k‖²``).
        """
        w = np.asarray(w, float)
        if w.ndim == 1:
            return self._project_face(w[None], np.asarray(K)[None])[0]
        K = np.asarray(K, dtype=np.intp)
        if K.shape[1] == 1:
            XK = self.X[K[:, 0]]
            coef = np.einsum("ed,ed->e", XK, w) / np.einsum("ed,ed->e", XK, XK)
            return w - coef[:, None] * XK
        out = np.empty_like(w)
        for e in range(w.shape[0]):
            XK = self.X[K[e]]
            coef, *_ = np.linalg.lstsq(XK @ XK.T, XK @ w[e], rcond=None)
            out[e] = w[e] - coef @ XK
        return out

    def _check_lorentz(self, t: float) -> None:
        """How far the Lorentz projection moved the occupied propagators (it enforces Lemma 1
        by construction, so its size is what the integrator got wrong): bounded by the
        tolerance, else :class:`InvariantError`."""
        occ = self._occupied
        if occ.size == 0:
            return
        rel = self._proj_move[occ] / np.maximum(self._Phi1_size[occ], 1.0)
        i = int(np.argmax(rel))
        self.max_lorentz_correction = max(self.max_lorentz_correction, float(rel[i]))
        if rel[i] > self._tol_lorentz:
            raise InvariantError(
                f"Lemma 1: the Lorentz projection of face {int(occ[i])}'s propagator moved it by "
                f"{rel[i]:.3g} (relative) at t = {t:.17g}, beyond {self._tol_lorentz:.3g}")

    @property
    def _tol_lorentz(self) -> float:
        return max(1e4 * self.opt.rtol, self.opt.invariant_tol)

    def _project_leaving(self, faces: NDArray[np.intp], Z: Array, pat: NDArray, t: float) -> None:
        """Project the neurons of ``faces`` (those with exits) onto all of their hyperplanes.

        At the exit they are on them; those that leave depart at second order,
        ``<w, x_k> ∝ (t − t_e)²``, so a drift of the integration left in ``<w, x_k>`` would be
        read as a crossing back an instant later (an entry with the slope beyond its bound).
        """
        tab = self.table
        js = np.flatnonzero(np.isin(pat, faces))
        if js.size:
            self._project_onto(Z, js, np.take(tab.projectors(), pat[js], axis=0), pat[js], t)

    def _check_event_residual(self, t: float, j: int, k: int, resid: float) -> None:
        if resid > self._tol_event:
            raise InvariantError(
                f"event residual: neuron {j} at data point {k}, t = {t:.17g}: the located "
                f"|<w, x_k>| is {resid:.3g} relative to ‖z‖‖x_k‖, beyond {self._tol_event:.3g}")

    @property
    def _tol_event(self) -> float:
        return max(1e3 * self.opt.rtol, self.opt.invariant_tol)

    def _project_sliding(self, Z: Array, pat: NDArray, t: float | None = None) -> None:
        """Keep neurons of lower-dimensional faces exactly on their hyperplanes (``Z`` at
        time ``t``, by default the flow's).

        The face fields keep ``<w, x_k>`` constant for ``k ∈ K`` (the minimal-norm element is
        tangent while the slopes are inside ``[γ, 1]``); the orthogonal projection onto
        ``{w : <w, x_k> = 0, k ∈ K}`` removes the tolerance-level drift and changes ``‖w‖²``
        only at second order.  The distance it removes is measured first: beyond the
        tolerance the field was not tangent (a neuron held on a hyperplane it should have
        left), and :class:`InvariantError` says so.
        """
        sliding, Pm = self._sliding_of(pat)
        if sliding.size == 0:
            return
        self._project_onto(Z, sliding, Pm, pat[sliding], self.t if t is None else t)
        # the neurons just projected (a solver start after a cut need not project them again)
        self._projected = (Z, pat)

    def _project_onto(self, Z: Array, js: NDArray[np.intp], Pm: Array, faces: NDArray[np.intp],
                      t: float) -> None:
        """Project the neurons ``js`` onto their faces' hyperplanes (``Pm``: the projectors onto
        the spans of the faces' ``x_K``, ``(s, d, d)``), measuring the distance removed first:
        beyond the sliding tolerance, :class:`InvariantError` names the neuron and ``t``."""
        d = self.d
        Zj = Z[js]  # gathered once (the rows' norms and their w)
        w = np.ascontiguousarray(Zj[:, :d])
        off = np.einsum("sij,sj->si", Pm, w)
        dist = row_norms(off) / np.maximum(row_norms(Zj), 1e-300)
        i = int(np.argmax(dist))
        self.max_sliding_residual = max(self.max_sliding_residual, float(dist[i]))
        if dist[i] > self._tol_sliding:
            K = np.flatnonzero(self.table.U[faces[i]] == 0).tolist()
            raise InvariantError(
                f"sliding residual: neuron {int(js[i])} on the hyperplanes {K} drifted off "
                f"them by {dist[i]:.3g} (relative to ‖z‖) by t = {t:.17g}, beyond "
                f"{self._tol_sliding:.3g}")
        w -= off
        Z[js, :d] = w
        self._moments_cache = None

    def _sliding_of(self, pat: NDArray[np.intp]) -> tuple[NDArray[np.intp], Array]:
        """The neurons of lower-dimensional faces under ``pat`` and the projectors onto the
        spans of their faces' ``x_K``, ``(s, d, d)``.  The last answer is kept: a cut's new
        faces are projected at the cut and again at the solver start (the same array, never
        written to once installed as :attr:`pat`)."""
        tab = self.table
        cached = self.__dict__.get("_sliding_cache")
        if cached is not None and cached[0] is pat and cached[1] == len(tab):
            return cached[2], cached[3]
        sliding = np.flatnonzero(tab.nfree[pat] > 0)
        Pm = np.take(tab.projectors(), pat[sliding], axis=0)  # (s, d, d): onto span(x_K)
        self._sliding_cache = (pat, len(tab), sliding, Pm)
        return sliding, Pm

    @property
    def _tol_sliding(self) -> float:
        # Φ_p carries a sliding neuron over the whole life of a solver (many steps, each
        # within rtol): 1e4 rtol; a field that is not tangent drifts at first order, far more
        return max(1e4 * self.opt.rtol, self.opt.invariant_tol)

    #: the Zeno guard looks for one neuron's ``zeno_events`` events among the last
    #: ``ZENO_SPAN × zeno_events`` events of the run
    ZENO_SPAN = 4

    def _zeno_guard(self, t0: float, t1: float) -> None:
        win = self.opt.zeno_window * (self.time_unit + abs(t1))
        if is_tiny_step(t0, t1, self.time_unit):
            self._tiny_steps += 1
        else:
            self._tiny_steps = 0
        N = int(self.opt.zeno_events)
        keep = self.ZENO_SPAN * N
        if len(self._recent) > keep:
            self._recent = self._recent[-keep:]
        if len(self._recent) >= N and self._recent[-1][0] - self._recent[-N][0] <= win:
            # N events within the window (of any neurons): a neuron with N of the last
            # ZENO_SPAN N events among them chatters (neurons that take turns too: two
            # neurons leaving and re-entering one sliding face 1e-12 apart each, near-parallel
            # data at angle 5e-11, evaded a test of N consecutive events of one neuron)
            recent = np.array(self._recent)
            js, counts = np.unique(recent[:, 1].astype(np.intp), return_counts=True)
            j = int(js[np.argmax(counts)])
            mine = recent[recent[:, 1] == j]
            if mine.shape[0] >= N and mine[-1, 0] - mine[-N, 0] <= win:
                raise ZenoError(
                    f"neuron {j} had {N} events within {mine[-1, 0] - mine[-N, 0]:.3g} time "
                    f"units ending at t = {mine[-1, 0]:.17g}, the last at data point "
                    f"{int(mine[-1, 2])} (chattering)"
                )
        if self._idle_cuts >= N:
            raise ZenoError(
                f"{N} consecutive steps cut at a sliding face's regime change that changed "
                f"nothing, ending at t = {t1:.17g} (the change is found again after each cut)"
            )
        if self._tiny_steps >= N:
            j, k = (self._recent[-1][1], self._recent[-1][2]) if self._recent else (-1, -1)
            raise ZenoError(
                f"{N} consecutive steps of at most 1000 ulp ending at t = {t1:.17g}; last "
                f"event: neuron {j}, data point {k}"
            )
