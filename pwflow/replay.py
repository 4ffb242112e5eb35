"""Passive faces: propagators of empty faces computed on demand from the stored stages.

From ``d = 3`` on most faces the solver integrates hold no neuron (at ``d = 5``, ``n = 20``:
~1 400 of ~2 000; at ``d = 3``, ``n = 200``, ``m = 100``: ~1 100 of ~1 200).  Their
propagators ``Φ_p`` are needed only when an event brings a neuron in, and an empty face
does not feed back into the outputs: its field ``D_p`` depends only on the residuals ``r``
(of the occupied faces) and on its own geometry.  So DOP853 integrates the
occupied faces alone (:class:`pwflow.stepper.HybridFlow`, ``REPLAY_PASSIVE``), the residuals
of every stage of each accepted step are kept (12 stages, and the 3 of the dense output where
it is computed), and an empty face that an event enters is *replayed*: the same Butcher
tableau (:meth:`pwflow.rk.DOP853.stages`, :meth:`~pwflow.rk.DOP853.dense_coefficients`) on
its rows, each stage's field from the stored residuals — the arithmetic of integrating it with
the others, step by step since the solver start.  Each replayed step's own embedded error
estimate (:meth:`~pwflow.rk.DOP853.error_norms`, the face's components alone) must pass the
tolerance, and its propagator stay below ``1e100``; a face that fails is reported, and the
stepper then treats it as a face not integrated (the event entering it cuts the step).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .patterns import PatternTable
from .rk import DOP853
from .vector_field import CollectiveField

__all__ = ["PassiveFaces"]

Array = NDArray[np.float64]

#: a replayed propagator beyond this is not kept (the solver's own limit on empty faces)
GROWTH_LIMIT = 1e100


class PassiveFaces:
    """The faces ``faces`` (empty, integrated) of one solver's life, replayed on demand.

    Parameters
    ----------
    field_ : CollectiveField
        The solver's field (its ``rates`` and ``fields_of``).
    table : PatternTable
        The face table (the replayed faces' field plans).
    faces : int array
        The passive faces (sorted).
    rtol, atol : float
        The solver's tolerances (the replayed steps' error estimates).
    r_start : array, shape (n,)
        The residuals at the solver start (its first field evaluation).
    """

    def __init__(self, field_: CollectiveField, table: PatternTable, faces: NDArray[np.intp],
                 rtol: float, atol: float, r_start: Array) -> None:
        self.field, self.table = field_, table
        self.P, self.q = field_.P, field_.q
        self.faces = np.asarray(faces, dtype=np.intp)
        self.passive = np.zeros(self.P, dtype=bool)
        self.passive[self.faces] = True
        self.rtol, self.atol = rtol, atol
        #: ``(t_old, h, R)`` of each accepted step, ``R`` the residuals of its 13 stages
        self.steps: list[tuple[float, float, Array]] = []
        self._r_end = r_start
        self._extra: Array | None = None  # the current step's 3 dense-output stages
        self._done = np.zeros(self.P, dtype=np.intp)  # steps replayed, per face
        self._state: dict[int, Array] = {}  # Φ_p after them (absent: I)
        self._filled = np.zeros(0, dtype=np.intp)  # faces written into this step's arrays
        self.failed = np.zeros(self.P, dtype=bool)
        self._F = self._Phi1 = None
        self.n_replayed = 0

    def add_step(self, t_old: float, h: float, stage_residuals: list[Array]) -> None:
        """Record an accepted step: the residuals of its 12 stages after the first (the last:
        the end), in evaluation order (the solver's field evaluations since the last record:
        a rejected trial's come first and are dropped)."""
        R = np.stack([self._r_end, *stage_residuals[-12:]])
        self.steps.append((t_old, h, R))
        self._r_end = R[-1]
        self._extra, self._filled = None, np.zeros(0, dtype=np.intp)
        self._F = self._Phi1 = None

    def bind(self, F: Array, Phi1: Array, extra: list[Array]) -> None:
        """This step's dense coefficients ``(8, P', q, q)`` and end propagators ``(P', q, q)``,
        where :meth:`fill` writes the replayed faces, and the residuals of the dense output's
        3 stages.  Rows past the ``P`` faces of the solver start are for faces registered
        within the step (:meth:`fill` takes them as passive faces)."""
        self._F, self._Phi1 = F, Phi1
        self._extra = np.stack(extra[-3:])

    def fill(self, faces: NDArray[np.intp]) -> NDArray[np.intp]:
        """Replay the passive faces among ``faces`` up to the current step and write their
        dense coefficients and end propagators into the bound arrays; returns the faces whose
        replay failed (error estimate or growth), which were not written."""
        if self._F is None:
            raise RuntimeError("PassiveFaces.fill before bind: no dense output of the step")
        faces = np.unique(np.asarray(faces, dtype=np.intp))
        faces = faces[faces < self._F.shape[1]]
        if faces.size and faces[-1] >= self.passive.size:
            self._grow(self._F.shape[1])
        faces = faces[self.passive[faces] & ~self.failed[faces]]
        faces = np.setdiff1d(faces, self._filled, assume_unique=True)
        if faces.size == 0:
            return faces
        self.n_replayed += faces.size
        bad = []
        for start in np.unique(self._done[faces]):
            group = faces[self._done[faces] == start]
            bad.append(self._replay(group, int(start)))
        bad = np.concatenate(bad)
        self.failed[bad] = True
        self._filled = np.union1d(self._filled, faces)
        return bad

    def _grow(self, size: int) -> None:
        """Faces ``P … size − 1``, registered after the solver start (by an event of the
        current step), as passive faces: empty since the start, replayed from it."""
        extra = size - self.passive.size
        self.passive = np.r_[self.passive, np.ones(extra, dtype=bool)]
        self.failed = np.r_[self.failed, np.zeros(extra, dtype=bool)]
        self._done = np.r_[self._done, np.zeros(extra, dtype=np.intp)]

    def _replay(self, group: NDArray[np.intp], start: int) -> NDArray[np.intp]:
        """Steps ``start …`` (the last with its dense output) of the faces ``group``, from
        their stored states; returns the faces that failed."""
        q, k = self.q, group.size
        eye = np.eye(q)
        y = np.concatenate([self._state.get(int(p), eye)[None] for p in group]).reshape(-1)
        plan = self.table.rows_plan(group)  # these faces' fields only
        ok = np.ones(k, dtype=bool)
        last = len(self.steps) - 1
        F = None
        for i in range(start, last + 1):
            t_old, h, R = self.steps[i]
            K = np.empty((16 if i == last else 13, y.size))
            rate = self._rate(group, plan)
            K[0] = rate(R[0], y)
            it = iter(R[1:])
            y_new, _ = DOP853.stages(lambda t, z: rate(next(it), z), t_old, y, h, K[:13])
            scale = self.atol + np.maximum(np.abs(y), np.abs(y_new)) * self.rtol
            with np.errstate(over="ignore", invalid="ignore"):
                err = DOP853.error_norms(K[:13], h, scale, q * q)
                size = np.max(np.abs(y_new.reshape(k, q * q)), axis=1)
            ok &= (err < 1) & (size <= GROWTH_LIMIT)
            if i == last:
                ex = iter(self._extra)
                F = DOP853.dense_coefficients(lambda t, z: rate(next(ex), z), t_old, y, y_new,
                                              h, K)
            y_old, y = y, y_new
        Y = y.reshape(k, q, q)
        good = group[ok]
        for p, row in zip(group[ok], Y[ok]):
            self._state[int(p)] = row.copy()
        self._done[group] = last + 1
        # this step's rows, as :func:`pwflow.dense.stack_coefficients` lays them out
        self._F[0, good] = y_old.reshape(k, q, q)[ok]
        self._F[1:, good] = F.reshape(-1, k, q, q)[:, ok]
        self._Phi1[good] = Y[ok]
        return group[~ok]

    def _rate(self, group: NDArray[np.intp], plan):
        """``dΦ/dt`` of the faces ``group`` (flat rows, fields from ``plan``:
        :meth:`PatternTable.rows_plan`) for stored residuals ``r``."""
        field_, q, k = self.field, self.q, group.size

        def rate(r: Array, y: Array) -> Array:
            G = field_.fields_of(r, plan)
            with np.errstate(over="ignore", invalid="ignore"):
                return field_.rates(y.reshape(k, q, q), G).reshape(-1)

        return rate
