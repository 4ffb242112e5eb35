"""Activation patterns (faces of the arrangement {x_k^⊥}) and their vector fields.

A neuron ``w`` lies on the face ``A^{-1}(u)`` with ``u = A(w) ∈ {−1, 0, 1}^n`` (Section 3).
All neurons on one face share one linear vector field (Eq. (6) with the minimal-norm selection):

    d/dt (w, a) = M_u(t) (w, a),     M_u = [[0, D_u^θ], [D_u^θᵀ, 0]],

where ``D_u^θ = −(1/n) Σ_k η_k^u r_k x_k`` with ``r_k = ∂_1 l(h_θ(x_k), y_k)``, ``η_k^u = 1`` if
``u_k = 1``, ``γ`` if ``u_k = −1`` and, for ``u_k = 0``, the slopes of the minimal-norm element
(:mod:`pwflow.subgradient`).  On a face with free slopes in ``(γ, 1)`` the minimal-norm element
is orthogonal to the free ``x_k`` — the Filippov sliding field that keeps the neuron on the
hyperplanes.  The face ``{0}`` is frozen: a neuron stays there only where ``0 ∈ 𝔇(0)``
(Condition 1, point 2); elsewhere it departs at once (``HybridFlow._from_origin``), and a
neuron held there departs when ``0`` leaves ``𝔇(0)`` (the regime reads the face's minimal-norm
element: :meth:`PatternTable.minimal_norm` with ``origin=True``).

:class:`PatternTable` registers the faces met during a run and evaluates ``D_u^θ`` for all of
them at once (vectorised over faces with one free slope, the common case).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from .cones import span_projector, span_split
from .signals import deferred
from .subgradient import (
    face_slopes,
    fixed_part,
    free_slopes,
    kkt_tolerance,
    pair_slopes,
    parallel_classes,
    rows_matvec,
    single_slope,
)

__all__ = ["FacePlan", "PatternTable", "SinglePlan"]

Array = NDArray[np.float64]


@dataclass(frozen=True)
class SinglePlan:
    """Precomputed index arrays for the fields of faces ``0 … P−1`` when none of the
    integrated ones has several free slopes (the common case): the fast path of
    :meth:`PatternTable.single_fields`, built once per solver start.

    Attributes
    ----------
    eta0 : array, shape (P, n)
        Fixed slopes ``η(u, γ)`` of the faces.
    one, k : int arrays, shape (S,)
        Faces with one free slope and their free data index.
    xk : array, shape (S, d)
        ``x_k`` of those faces; ``xx`` its squared norm.
    zero : int array
        Faces whose field is set to 0: frozen (``{0}``) or not integrated.
    """

    eta0: Array
    one: NDArray[np.intp]
    k: NDArray[np.intp]
    xk: Array
    xx: Array
    zero: NDArray[np.intp]


@dataclass(frozen=True)
class FacePlan:
    """Precomputed index arrays for the fields of faces ``0 … P−1``, any number of free
    slopes: the fast path of :meth:`PatternTable.plan_fields` (the vector field's), built once
    per solver start.

    Attributes
    ----------
    single : SinglePlan
        The fixed slopes, the one-free-slope faces and the faces set to 0.
    two : int array, shape (T,)
        Integrated faces with two free slopes (and no parallel data points among them).
    k1, k2 : int arrays, shape (T,)
        Their free data indices (increasing); ``x1``, ``x2`` (shape ``(T, d)``) those ``x_k``.
    many : int array
        Integrated faces with more free slopes, or with parallel free data points: solved one
        by one (:func:`~pwflow.subgradient.free_slopes`).
    faces : int array or None
        The face of each row (:meth:`PatternTable.rows_plan`; the indices above are then
        rows); ``None``: row ``p`` is face ``p``.
    held : int array
        Rows of faces whose sliding mode is held (:meth:`PatternTable.holding`): their field
        is the fixed part projected onto the face, ``(I − P_K) b``; they are in none of
        ``single.one``, ``two`` and ``many``.
    held_proj : array, shape (len(held), d, d)
        Those faces' projectors ``P_K`` (:meth:`PatternTable.projectors`).
    """

    single: SinglePlan
    two: NDArray[np.intp]
    k1: NDArray[np.intp]
    k2: NDArray[np.intp]
    x1: Array
    x2: Array
    many: NDArray[np.intp]
    faces: NDArray[np.intp] | None = None
    held: NDArray[np.intp] = field(default_factory=lambda: np.zeros(0, np.intp))
    held_proj: Array | None = None


def _unique_rows(U: NDArray[np.int8]) -> tuple[NDArray[np.int8], NDArray[np.intp]]:
    """``np.unique(U, axis=0, return_inverse=True)`` for sign patterns (entries −1, 0, 1), the
    same rows in the same (lexicographic) order, each row read as one opaque key: ``u + 1``
    viewed as ``n`` bytes, whose byte-wise order is the signed row order.  numpy's row
    sort compares structured fields one by one (m = 2·10⁵: 0.17 s at n = 3, 1.6 s at
    n = 40; this: 0.03 and 0.04 s)."""
    V = np.ascontiguousarray(U + np.int8(1)).view(np.dtype((np.void, U.shape[1])))[:, 0]
    _, first, inverse = np.unique(V, return_index=True, return_inverse=True)
    return U[first], np.ravel(inverse)


def _solve_rows(N: Array, v: Array) -> Array:
    """``N⁻¹ v`` for each row (``N`` ``(T, f, f)``, ``v`` ``(T, f)``), one LAPACK solve per
    matrix; NaN in the rows whose matrix is singular."""
    try:
        return np.linalg.solve(N, v[..., None])[..., 0]
    except np.linalg.LinAlgError:
        out = np.full(v.shape, np.nan)
        for i in range(N.shape[0]):
            try:
                out[i] = np.linalg.solve(N[i:i + 1], v[i:i + 1, :, None])[0, :, 0]
            except np.linalg.LinAlgError:
                pass
        return out


class PatternTable:
    """Registry of activation patterns with vectorised face fields.

    Parameters
    ----------
    X : array, shape (n, d)
        Data.
    gamma : float
        Leaky-ReLU slope.
    """

    def __init__(self, X: Array, gamma: float) -> None:
        self.X = np.asarray(X, float)
        self.n, self.d = self.X.shape
        self.gamma = float(gamma)
        self._index: dict[bytes, int] = {}
        self._U: list[NDArray[np.int8]] = []
        self._ray: list[Array] = []
        self._dim: list[int] = []
        self._classes: list[tuple[NDArray[np.intp], NDArray[np.int8]] | None] = []
        self._arrays_for = -1
        self._warm: dict[int, Array] = {}
        # plans already built for the registered faces (a run restarts its solver thousands
        # of times on the same few face sets); emptied when a face is registered
        self._plans: dict[tuple, FacePlan | SinglePlan | None] = {}

    # ------------------------------------------------------------------ registry
    def __len__(self) -> int:
        return len(self._U)

    def index(self, u: NDArray) -> int:
        """Index of pattern ``u`` (registered on first use)."""
        u = np.asarray(u, dtype=np.int8)
        key = u.tobytes()
        idx = self._index.get(key)
        if idx is None:
            # computed first, then registered in one block that a signal does not split:
            # a Ctrl-C or SIGTERM inside the geometry's SVD left the face in ``_U`` and not
            # in ``_dim``, and the interrupted run's wrap-up died on the table's arrays of
            # different lengths instead of saving the run (reproduced by injection,
            # test_robustness; the error a CI run's SIGTERM met in session 64)
            dim, ray = self._face_geometry(u)
            rep, orient = parallel_classes(self.X[u == 0])
            coupled = bool(np.any(rep != np.arange(rep.size)))
            with deferred():
                idx = len(self._U)
                self._U.append(u.copy())
                self._dim.append(dim)
                self._ray.append(ray)
                self._classes.append((rep, orient) if coupled else None)
                self._index[key] = idx
        return idx

    def classes_of(self, p: int) -> tuple[NDArray[np.intp], NDArray[np.int8]] | None:
        """:func:`~pwflow.subgradient.parallel_classes` of face ``p``'s free points (positions
        in ``K = {k : u_k = 0}``), ``None`` where no two of them are parallel."""
        return self._classes[p]

    def index_many(self, U: NDArray) -> NDArray[np.intp]:
        """Indices of the rows of ``U`` (registering new ones)."""
        U = np.ascontiguousarray(U, dtype=np.int8)
        if U.shape[0] <= 256:  # a batch of events: dictionary look-ups beat a row sort
            ids = [self._index.get(row.tobytes()) for row in U]
            if None not in ids:
                return np.array(ids, dtype=np.intp)
        uniq, inverse = _unique_rows(U)
        ids = np.array([self.index(row) for row in uniq], dtype=np.intp)
        return ids[inverse]

    def index_changed(self, U: NDArray, p_prev: NDArray[np.intp], rows: NDArray[np.intp],
                      k: NDArray[np.intp]) -> NDArray[np.intp]:
        """Indices of the rows of ``U`` (as :meth:`index_many`), where each row ``rows[i]``
        is face ``p_prev[rows[i]]`` with entry ``k[i]`` changed (one hyperplane crossed,
        entered or left): those are looked up by ``(face, k, new sign)`` in a table kept
        across calls, O(1) each.  The others, and the first sight of each change, go through
        :meth:`index_many` together, so new faces are registered in the same order."""
        U = np.asarray(U)
        out = np.full(U.shape[0], -1, dtype=np.intp)
        if rows.size:
            key = (p_prev[rows] * self.n + k) * 3 + (U[rows, k].astype(np.intp) + 1)
            table = self.__dict__.get("_changed")
            if table is None or table.size <= int(key.max()):
                grown = np.full(max(2 * int(key.max()) + 1, 3 * self.n * 64), -1, np.intp)
                if table is not None:
                    grown[: table.size] = table
                table = self._changed = grown
            out[rows] = table[key]
        miss = np.flatnonzero(out < 0)
        if miss.size:
            out[miss] = self.index_many(U[miss])
            if rows.size:
                table[key] = out[rows]
        return out

    def _face_geometry(self, u: NDArray[np.int8]) -> tuple[int, Array]:
        """Dimension of the face and, for 1-dimensional faces, its unit direction."""
        K = np.flatnonzero(u == 0)
        if K.size == 0:
            return self.d, np.full(self.d, np.nan)
        rank, vt = span_split(self.X[K])
        dim = self.d - rank
        ray = np.full(self.d, np.nan)
        if dim == 1:
            e = vt[-1]
            signs = np.sign(self.X @ e)
            nz = u != 0
            if np.any(nz) and np.all(signs[nz] == -u[nz]):
                e = -e
            ray = e / np.linalg.norm(e)
        return dim, ray

    # ------------------------------------------------------------------ arrays
    def _refresh(self) -> None:
        """The table's arrays for the registered faces: those of the faces registered since
        the last refresh are computed and appended (a run at d = 5 registers ~3 000 faces
        one batch at a time; rebuilding every array from the lists each time was O(P) Python
        work per registration: 2.6 s of a 40 s run at n = 20, m = 1 000, t = 10); the index
        arrays of the cases are then derived from the whole arrays."""
        P = len(self._U)
        if self._arrays_for == P:
            return
        old = self._arrays_for if 0 <= self._arrays_for <= P else 0
        U = np.array(self._U[old:], dtype=np.int8).reshape(-1, self.n)
        nfree = np.sum(U == 0, axis=1)
        dim = np.array(self._dim[old:], dtype=np.intp)
        # {0}, and for γ = 0 the face u = 0 whatever its dimension (the null space of X where
        # rank X < d) unless two of its points are opposite: every point is on its hyperplane,
        # so η = 0 ∈ [γ, 1]^n gives D = 0, the minimal-norm element, exactly (integrated, its
        # slopes left rounding that moved w = 0).  Opposite points tie their slopes to
        # η_l = 1 + γ − η_k (N3), so 0 need not be reachable (camp9 family 2, seed 95).
        # Where rank X < d and the face is not frozen, its minimal-norm field moves the neuron
        # off ker X where 0 ∉ 𝔇 (its regime is watched: stepper._watched_faces)
        classes = self._classes[old:]
        same_side = np.array([c is None or bool(np.all(c[1] > 0)) for c in classes], dtype=bool)
        rests = (nfree == self.n) & (self.gamma == 0.0) & same_side
        rows = {
            "U": U,
            "eta0": face_slopes(U, self.gamma),
            "dim": dim,
            "ray": np.array(self._ray[old:], dtype=float).reshape(-1, self.d),
            "nfree": nfree,
            "frozen": (dim == 0) | rests,
            #: faces on every hyperplane where ``0 ∈ 𝔇(0)`` whatever the residuals (η = 0)
            "rests": rests,
            #: faces on which parallel data points tie free slopes (solved by ``free_slopes``)
            "coupled": np.array([c is not None for c in classes], dtype=bool),
        }
        new = {name: value if old == 0 else np.concatenate([getattr(self, name), value])
               for name, value in rows.items()}
        one = (new["nfree"] == 1) & ~new["frozen"]
        single = np.flatnonzero(one)
        single_k = (np.argmax(new["U"][single] == 0, axis=1) if single.size
                    else np.zeros(0, int))
        single_x = self.X[single_k]
        multi = (new["nfree"] > 1) & ~new["frozen"]
        new.update(
            single=single, single_k=single_k, _single_x=single_x,
            _single_xx=np.einsum("ij,ij->i", single_x, single_x), multi=multi,
            #: faces whose field is an iterative solve (:func:`~pwflow.subgradient.free_slopes`,
            #: :meth:`_many_slopes`): more than two free slopes, or parallel points among them
            iterative=multi & ((new["nfree"] > 2) | new["coupled"]),
            _plans={}, _arrays_for=P)
        # every array of the refresh at once, in one call that runs no Python code (so no
        # signal handler) in between: a Ctrl-C or SIGTERM between two of them left the table
        # with arrays of different lengths (U extended, frozen not), which the next refresh
        # extended again, and the interrupted run's wrap-up died on them (session 64)
        self.__dict__.update(new)

    def arrays(self) -> "PatternTable":
        """Refresh and return ``self`` (attributes ``U``, ``eta0``, ``dim``, ``ray``, ...)."""
        self._refresh()
        return self

    # ------------------------------------------------------------------ fields
    def face_plan(self, P: int, active: NDArray[np.bool_] | None = None) -> FacePlan:
        """:class:`FacePlan` of faces ``0 … P−1`` (``active``: those integrated, the others
        get ``D = 0``): the faces of :meth:`_minimal_norm`'s cases, sorted once."""
        self._refresh()
        act = np.ones(P, bool) if active is None else np.asarray(active, bool)[:P]
        key = ("face", P, act.tobytes())
        plan = self._plans.get(key)
        if plan is None:
            plan = self._remember(key, self._face_plan(P, act))
        return plan

    def _remember(self, key: tuple, plan):
        if len(self._plans) >= 64:  # bounded: a long run may meet many face sets
            self._plans.clear()
        self._plans[key] = plan
        return plan

    def _face_plan(self, P: int, act: NDArray[np.bool_]) -> FacePlan:
        sel = self.single < P
        sel[sel] &= act[self.single[sel]]
        single = SinglePlan(eta0=self.eta0[:P], one=self.single[sel], k=self.single_k[sel],
                            xk=self._single_x[sel], xx=self._single_xx[sel],
                            zero=np.flatnonzero(self.frozen[:P] | ~act))
        multi = self.multi[:P] & act
        coupled = multi & self.coupled[:P]
        two = np.flatnonzero(multi & (self.nfree[:P] == 2) & ~coupled)
        Ks = np.nonzero(self.U[two] == 0)[1].reshape(-1, 2)
        return FacePlan(single=single, two=two, k1=Ks[:, 0], k2=Ks[:, 1], x1=self.X[Ks[:, 0]],
                        x2=self.X[Ks[:, 1]],
                        many=np.flatnonzero(self.iterative[:P] & act))

    def plan_fields(self, plan: FacePlan, r: Array) -> Array:
        """``D_u^θ`` of the faces of ``plan`` (shape ``(P, d)``, or one row per face of a
        :meth:`rows_plan`): the fast path of :meth:`fields` (the same closed forms,
        :meth:`_one_slope`, :meth:`_two_slopes` and :meth:`_many_slopes`, on the plan's index
        arrays: the same numbers)."""
        G = self.single_fields(plan.single, r)[0]
        if plan.held.size:
            b = G[plan.held]
            G[plan.held] = b - (plan.held_proj @ b[:, :, None])[:, :, 0]
        if plan.two.size:
            self._two_slopes(G, r, plan.two, plan.k1, plan.k2, plan.x1, plan.x2)
        if plan.many.size:
            self._many_slopes(G, r, plan.many,
                              plan.many if plan.faces is None else plan.faces[plan.many])
        return G

    def holding(self, plan: FacePlan, faces: NDArray[np.intp]) -> FacePlan:
        """``plan`` with the sliding mode of ``faces`` held: their field is the fixed part
        ``b`` projected onto the face, ``(I − P_K) b`` with the face's projector
        (:meth:`projectors`): the unconstrained minimiser of ``‖b + Σ η_k z_k‖`` (one free
        slope: the unclipped ``η* = −<b, z>/‖z‖²``), tangent to every hyperplane of the face,
        whatever the size of the ``r_k``, instead of the minimiser over ``[γ, 1]^K``.

        The two agree while the slopes lie in the box, where the neuron stays on the
        hyperplanes; the box makes the field non-differentiable where a slope reaches a
        bound.  The caller holds a face only while its regime says the neuron stays (every
        slope inside, decided, :meth:`HybridFlow._face_regime_at`) and watches that regime,
        so a bound reached is a regime change, as before: what changes is the field's
        smoothness within a step, which the solvers' error estimates and an implicit solver's
        Newton iterations rely on.  A neuron converging to the edge of its sliding region
        (``η* → 1`` as ``t → ∞``, a local minimum at the kink) made Radau's iterates straddle
        the kink: they contracted by 0.5 per iteration instead of 1e-4, failed, and halved the
        step (``docs/integrator.md``, "Sliding modes are held")."""
        def face_of(rows):
            return rows if plan.faces is None else plan.faces[rows]

        held_face = np.zeros(len(self._U), dtype=bool)  # a mask: O(P), not a sort (isin)
        held_face[faces] = True
        single = plan.single
        one = held_face[face_of(single.one)]
        two = held_face[face_of(plan.two)]
        many = held_face[face_of(plan.many)]
        held = np.concatenate([single.one[one], plan.two[two], plan.many[many]]).astype(np.intp)
        keep = ~one
        single = replace(single, one=single.one[keep], k=single.k[keep], xk=single.xk[keep],
                         xx=single.xx[keep])
        return replace(plan, single=single,
                       two=plan.two[~two], k1=plan.k1[~two], k2=plan.k2[~two],
                       x1=plan.x1[~two], x2=plan.x2[~two], many=plan.many[~many],
                       held=held, held_proj=self.projectors()[face_of(held)])

    def rows_plan(self, faces: NDArray[np.intp]) -> FacePlan:
        """:class:`FacePlan` of the given faces only, row ``i`` for face ``faces[i]``: the
        fields of a few faces without the others' rows (:mod:`pwflow.replay`; the same
        closed forms as :meth:`face_plan`, to rounding)."""
        self._refresh()
        faces = np.asarray(faces, dtype=np.intp)
        key = ("rows", faces.tobytes())
        plan = self._plans.get(key)
        if plan is None:
            plan = self._remember(key, self._rows_plan(faces))
        return plan

    def _rows_plan(self, faces: NDArray[np.intp]) -> FacePlan:
        row = np.full(len(self), -1, dtype=np.intp)
        row[faces] = np.arange(faces.size)
        sel = row[self.single] >= 0
        single = SinglePlan(eta0=self.eta0[faces], one=row[self.single[sel]],
                            k=self.single_k[sel], xk=self._single_x[sel],
                            xx=self._single_xx[sel], zero=np.flatnonzero(self.frozen[faces]))
        multi = self.multi[faces]
        coupled = multi & self.coupled[faces]
        two = np.flatnonzero(multi & (self.nfree[faces] == 2) & ~coupled)
        Ks = np.nonzero(self.U[faces[two]] == 0)[1].reshape(-1, 2)
        return FacePlan(single=single, two=two, k1=Ks[:, 0], k2=Ks[:, 1], x1=self.X[Ks[:, 0]],
                        x2=self.X[Ks[:, 1]],
                        many=np.flatnonzero(self.iterative[faces]),
                        faces=faces)

    def single_plan_for(self, faces: NDArray[np.intp]) -> SinglePlan | None:
        """:class:`SinglePlan` of the given faces (rows in that order), or ``None`` unless
        each has exactly one free slope and is not frozen."""
        self._refresh()
        faces = np.asarray(faces, dtype=np.intp)
        key = ("single", faces.tobytes())
        if key not in self._plans:
            return self._remember(key, self._single_plan_for(faces))
        return self._plans[key]

    def _single_plan_for(self, faces: NDArray[np.intp]) -> SinglePlan | None:
        if np.any(self.nfree[faces] != 1) or np.any(self.frozen[faces]):
            return None
        k = np.argmax(self.U[faces] == 0, axis=1)
        xk = self.X[k]
        return SinglePlan(eta0=self.eta0[faces], one=np.arange(faces.size), k=k, xk=xk,
                          xx=np.einsum("ij,ij->i", xk, xk), zero=np.zeros(0, np.intp))

    def single_fields(self, plan: SinglePlan, r: Array) -> tuple[Array, Array]:
        """``D_u^θ`` of the faces of ``plan`` (shape ``(P, d)``) and the unclipped ``η*`` of
        its one-slope faces (``plan.one``): the fast path of :meth:`fields` (same closed form,
        :meth:`_one_slope`, without the general case's per-call index work).

        ``r`` may carry leading axes (shape ``(..., n)``, e.g. the residuals at ``T`` times):
        the results then have them too (``(..., P, d)`` and ``(..., S)``), each row computed
        with the same operations as a single ``r``.
        """
        G = fixed_part(plan.eta0, r, self.X)  # as in _minimal_norm
        est = np.zeros(r.shape[:-1] + (0,))
        if plan.one.size:
            _, est = self._one_slope(G, r, plan.one, plan.k, plan.xk, plan.xx)
        if plan.zero.size:
            G[..., plan.zero, :] = 0.0
        return G, est

    def _one_slope(self, G: Array, r: Array, one: NDArray[np.intp], k: NDArray[np.intp],
                   xk: Array, xx: Array) -> tuple[Array, Array]:
        """Faces ``one`` with the single free slope ``k``: ``G[one] += η z`` in place, with
        ``z = −(r_k/n) x_k`` and ``η`` the closed form :func:`~pwflow.subgradient.single_slope`;
        returns ``(η, η*)``.  ``G`` of shape ``(..., P, d)`` and ``r`` of shape ``(..., n)``
        with the same leading axes (none, or e.g. one per time)."""
        c = r[..., k] / self.n  # z = −c x_k
        Gone = G[..., one, :]
        gx = np.einsum("...ij,ij->...i", Gone, xk)
        e, est = single_slope(-c * gx, c * c * xx, self.gamma, 1.0)
        Gone -= (e * c)[..., None] * xk
        G[..., one, :] = Gone
        return e, est

    def _two_slopes(self, G: Array, r: Array, two: NDArray[np.intp], k1: NDArray[np.intp],
                    k2: NDArray[np.intp], x1: Array, x2: Array) -> Array:
        """Faces ``two`` with the free slopes ``k1 < k2`` (``x1``, ``x2`` their ``x_k``):
        ``G[..., two, :] += η₁ z₁ + η₂ z₂`` in place, with ``z_i = −(r_{k_i}/n) x_{k_i}`` and
        ``η`` the closed form :func:`~pwflow.subgradient.pair_slopes`; returns ``η``, shape
        ``(..., T, 2)`` (leading axes of ``G`` and ``r`` as in :meth:`_one_slope`)."""
        n, d = self.n, self.d
        z1 = -(r[..., k1] / n)[..., None] * x1
        z2 = -(r[..., k2] / n)[..., None] * x2
        b = G[..., two, :]
        e = pair_slopes(b.reshape(-1, d), z1.reshape(-1, d), z2.reshape(-1, d), self.gamma,
                        1.0).reshape(b.shape[:-1] + (2,))
        G[..., two, :] = b + (e[..., :1] * z1 + e[..., 1:] * z2)
        return e

    def _many_slopes(self, G: Array, r: Array, rows: NDArray[np.intp], faces: NDArray[np.intp],
                     eta: Array | None = None) -> None:
        """Rows ``rows`` of ``G`` (faces ``faces``: several free slopes, or parallel free
        points): ``G[..., rows, :] += Z η`` in place and, if given, the slopes written into
        ``eta`` (``(..., P, n)``); leading axes of ``G`` and ``r`` as in :meth:`_one_slope`.

        Faces without parallel points first try the interior solution, every face and
        leading index with the same number of free slopes at once (:meth:`_interior_slopes`);
        the others, and faces with parallel points (slopes tied, N3), are solved one by one by
        :func:`~pwflow.subgradient.free_slopes` (BVLS), warm-started from the face's last
        solution (at several times: the same start for all, and the last time's solution
        kept)."""
        if rows.size == 0:
            return
        n = self.n
        G2 = G.reshape((-1,) + G.shape[-2:])
        r2 = r.reshape(-1, n)
        eta2 = None if eta is None else eta.reshape((-1,) + eta.shape[-2:])
        solved = np.zeros((r2.shape[0], rows.size), dtype=bool)
        last = []  # the interior solutions at the last leading index, kept after the BVLS
        for sel, K, XK, A in self._interior_plan(rows, faces):
            rq = rows[sel]
            Z = np.swapaxes(-(r2[:, K, None] * XK) / n, -1, -2)  # (T, S, d, q)
            e, D, ok = self._interior_slopes(G2[:, rq], Z, r2[:, K], A)
            t_ok, s_ok = np.nonzero(ok)
            G2[t_ok, rq[s_ok]] = D[t_ok, s_ok]
            if eta2 is not None:
                eta2[t_ok[:, None], rq[s_ok][:, None], K[s_ok]] = e[t_ok, s_ok]
            last.extend((int(faces[sel[s]]), e[-1, s]) for s in np.flatnonzero(ok[-1]).tolist())
            solved[:, sel] = ok
        if not np.all(solved):
            starts = {p: self._warm.get(p) for p in faces[np.nonzero(~solved)[1]].tolist()}
            self._warm_point_slopes(G2, r2, rows, faces, eta2, solved, starts)
        if not np.all(solved):
            # BVLS warm-started from the faces' solutions before this call, the same start at
            # every leading index (a row's numbers do not depend on the others')
            todo = np.nonzero(~solved)
            for t, i in zip(*todo, strict=True):
                p = int(faces[i])
                K = np.flatnonzero(self.U[p] == 0)
                Z = (-(r2[t, K, None] * self.X[K]) / n).T
                e = free_slopes(G2[t, rows[i]], Z, self.gamma, self._classes[p], starts[p])
                self._warm[p] = e
                G2[t, rows[i]] += Z @ e
                if eta2 is not None:
                    eta2[t, rows[i], K] = e
        self._warm.update(last)

    #: solve the face ``{0}``'s minimal-norm problem first from its last solution's free
    #: slopes, every leading index at once (:meth:`_warm_point_slopes`); ``False``: BVLS
    #: alone, one leading index at a time
    WARM_POINT_SOLVE = True

    def _warm_point_slopes(self, G2: Array, r2: Array, rows: NDArray[np.intp],
                           faces: NDArray[np.intp], eta2: Array | None,
                           solved: NDArray[np.bool_], starts: dict) -> None:
        """The face ``{0}`` (every slope free; read by the regime of neurons held at ``w = 0``,
        :meth:`minimal_norm` with ``origin``) from its last solution ``η⁰``, at every leading
        index at once: the slopes strictly inside ``(γ, 1)`` in ``η⁰`` are solved for by
        least squares (:meth:`_least_change`: at most ``d`` of them, their exact solution; more,
        the one nearest ``η⁰``) with the others held where ``η⁰`` has them,
        and the row is accepted where that ``η`` lies in ``[γ, 1]^n`` and is a free minimiser
        to :func:`~pwflow.subgradient.kkt_tolerance` (``|Zᵀ(b + Zη)|`` below it in every
        slope, :meth:`_free_certificate`, as on the interior path: convexity makes it a minimiser of
        ``‖b + Zη‖`` over the box, and the minimal-norm ``D`` is unique).  While a neuron rests
        at 0, ``0 ∈ 𝔇(0)`` and the last free slopes mostly still solve it (99 % of the rows on
        Stewart's data with γ = 0.1, ``docs/integrator.md``); the others go to BVLS
        (:meth:`_many_slopes`).  Writes ``G2``, ``eta2``, ``solved`` and the face's
        warm start (the last leading index's slopes) in place.  Each row's numbers are its
        own (products and sums over its own axes, one LAPACK solve per matrix)."""
        if not self.WARM_POINT_SOLVE:
            return
        n = self.n
        for i in np.flatnonzero(~np.all(solved, axis=0)).tolist():
            p = int(faces[i])
            start = starts.get(p)
            if start is None or self._dim[p] != 0 or self._classes[p] is not None:
                continue
            free = (start > self.gamma) & (start < 1.0)
            if not np.any(free) or free.size != n:
                continue
            ts = np.flatnonzero(~solved[:, i])
            b = G2[ts, rows[i]]  # (T, d): the fixed part (no slope is fixed at {0})
            Z = np.swapaxes(-(r2[ts, :, None] * self.X) / n, -1, -2)  # (T, d, n)
            held = np.where(free, 0.0, start)
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                rhs = -(b + rows_matvec(Z, held))
                # NaN in a singular row: not inside the box, BVLS decides it
                sol = self._least_change(Z[:, :, free], rhs, start[free])
            e = np.broadcast_to(start, sol.shape[:1] + start.shape).copy()
            e[:, free] = sol
            res, ok = self._free_certificate(b, Z, e)
            t_ok = ts[ok]
            G2[t_ok, rows[i]] = res[ok]
            if eta2 is not None:
                eta2[t_ok, rows[i]] = e[ok]
            solved[t_ok, i] = True
            if ok[-1] and ts[-1] == solved.shape[0] - 1:
                self._warm[p] = e[-1]

    @staticmethod
    def _least_change(A: Array, rhs: Array, x0: Array) -> Array:
        """A least-squares solution of ``A x = rhs`` for each row (``A`` ``(T, d, f)``):
        with ``f <= d`` the normal equations' (full column rank), with ``f > d`` the one
        nearest ``x0``, ``x0 + Aᵀ (A Aᵀ)⁻¹ (rhs − A x0)`` (full row rank); one LAPACK solve
        per row and sums over its own axes.  NaN in a row whose system is singular (its
        column underflowing, say), and in that row alone: each row's numbers are those of a
        call with that row alone (a singular row used to send every row of the call to BVLS,
        so a row's ``D`` depended on the rows read with it: 3.7e-30 against 0, the thorough
        profile of ``test_the_point_face_from_its_last_slopes_is_the_bounded_least_squares``)."""
        if A.shape[-1] <= A.shape[-2]:
            N = np.sum(A[:, :, :, None] * A[:, :, None, :], axis=1)
            return _solve_rows(N, np.sum(A * rhs[:, :, None], axis=1))
        N = np.sum(A[:, :, None, :] * A[:, None, :, :], axis=-1)
        y = _solve_rows(N, rhs - rows_matvec(A, x0))
        return x0 + np.sum(A * y[:, :, None], axis=1)

    def _interior_plan(self, rows: NDArray[np.intp], faces: NDArray[np.intp]) -> list:
        """The groups of :meth:`_many_slopes`'s faces without parallel points, by their
        number ``q`` of free slopes: positions in ``faces``, free data indices ``(S, q)``,
        their points ``(S, q, d)`` and the faces' interior maps (:meth:`_interior_map`);
        kept per (rows, faces), apart from the face plans: the regime's searches read many
        subsets of the faces, which would evict those at every start."""
        plans = self.__dict__.setdefault("_interior_plans", {})
        key = (rows.tobytes(), faces.tobytes())
        plan = plans.get(key)
        if plan is None:
            # not {0} (dimension 0): its fixed part is 0, so its interior solution is η = 0,
            # never in [γ, 1] where {0} is solved (γ > 0; with γ = 0 only opposite points,
            # coupled, keep it from resting): :meth:`_warm_point_slopes` starts it instead
            plain = np.flatnonzero(~self.coupled[faces] & (self.dim[faces] > 0))
            nfree = self.nfree[faces[plain]]
            plan = []
            for q in np.unique(nfree).tolist():
                sel = plain[nfree == q]
                K = np.nonzero(self.U[faces[sel]] == 0)[1].reshape(-1, q)
                plan.append((sel, K, self.X[K], self._interior_map(faces[sel])))
            if len(plans) >= 256:  # bounded: a long run meets many face sets
                plans.clear()
            plans[key] = plan
        return plan

    def _interior_slopes(self, b: Array, Z: Array, rK: Array, A: Array
                         ) -> tuple[Array, Array, NDArray[np.bool_]]:
        """The slopes and fields ``D = b + Z η`` of faces with ``q`` free slopes (no two of
        their points parallel) where the minimiser of ``‖b + Z η‖`` over ``[γ, 1]^q`` is
        interior, and where it is.

        ``b`` ``(T, S, d)``, ``Z`` ``(T, S, d, q)`` (columns ``z_k = −(r_k/n) x_k``), ``rK``
        ``(T, S, q)``, ``A`` ``(S, q, d)``.  Where every slope is free the minimiser makes
        ``Z η`` the projection of ``−b`` onto ``span(x_K)``: ``η = n A_p b / r_K`` with
        ``A_p = (X_Kᵀ)⁺`` fixed per face (:meth:`_interior_map`).  A row is accepted where
        that ``η`` lies in ``[γ, 1]^q`` and meets the KKT conditions of a free minimiser,
        ``|Zᵀ(b + Zη)| <=`` the tolerance
        :func:`~pwflow.subgradient.box_least_squares` accepts (its certificate: convexity
        makes it the minimiser whatever ``A_p``'s rounding); the rest go to BVLS.  Each row's
        numbers are its own (products and sums over its last axes)."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            e = self.n * rows_matvec(A, b) / rK
        return (e, *self._free_certificate(b, Z, e))

    def _free_certificate(self, b: Array, Z: Array, e: Array) -> tuple[Array, NDArray[np.bool_]]:
        """``D = b + Zη`` and whether each row's ``η`` (``e``) is a certified minimiser of
        ``‖b + Zη‖`` over ``[γ, 1]^q``: inside the box and a free minimiser to
        :func:`~pwflow.subgradient.kkt_tolerance` (``|Zᵀ(b + Zη)|`` below it in every slope;
        convexity makes it the minimiser whatever rounding produced ``η``).  Rows outside the
        box get ``D = b``; each row's numbers are its own (sums over its last axes)."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            ok = np.all((e >= self.gamma) & (e <= 1.0), axis=-1)  # NaN, inf: not inside
            res = b + rows_matvec(Z, np.where(ok[..., None], e, 0.0))
            g = rows_matvec(np.swapaxes(Z, -1, -2), res)  # Zᵀ(b + Zη)
            tol = kkt_tolerance(np.sqrt(np.sum(b * b, axis=-1)),
                                np.sqrt(np.sum(Z * Z, axis=(-2, -1))), self.gamma, 1.0)
            ok &= np.all(np.abs(g) <= tol[..., None], axis=-1)
        return res, ok

    def _interior_map(self, faces: NDArray[np.intp]) -> Array:
        """``A_p = (X_Kᵀ)⁺`` (``q × d``, ``K`` the face's free data points) of each face,
        stacked; computed once per face."""
        cache = self.__dict__.setdefault("_interior", {})
        out = []
        for p in faces.tolist():
            A = cache.get(p)
            if A is None:
                A = cache[p] = np.linalg.pinv(self.X[self.U[p] == 0].T)
            out.append(A)
        return np.array(out).reshape(len(out), -1, self.d)

    def _minimal_norm(self, r: Array, faces: NDArray[np.intp] | None,
                      solve: NDArray[np.bool_] | None = None, origin: bool = False
                      ) -> tuple[Array, Array, Array]:
        """``D_u^θ``, the slopes and (one free slope) the unclipped ``η*`` of the given faces.

        The only place where the faces' minimal-norm problems are solved: vectorised closed
        form for faces with one or two free slopes; for more, or where points are parallel,
        :meth:`_many_slopes` (the certified interior solution of every such face at once,
        else BVLS warm-started from the last solution of the same face; parallel data points
        share a slope parameter); frozen faces
        (``{0}``) get ``D = 0``.  ``faces=None``: all registered faces (the hot path of the
        vector field, on precomputed index arrays); ``solve`` (a mask over them) limits the
        faces with several free slopes that are solved (the others keep their fixed part
        only: the caller does not use them).  ``r`` may carry leading axes (``(..., n)``,
        e.g. the residuals at several times): the results then have them too.
        """
        X = self.X
        lead = r.shape[:-1]
        if faces is None:
            faces = np.arange(len(self._U))
            eta0 = self.eta0
            one, k, xk, xx = self.single, self.single_k, self._single_x, self._single_xx
            frozen = self.frozen
        else:
            eta0 = self.eta0[faces]
            frozen = self.frozen[faces]
            if origin:  # {0} solved (minimal_norm)
                frozen = frozen & ~((self.dim[faces] == 0) & (self.nfree[faces] == self.n)
                                    & ~self.rests[faces])
            one = np.flatnonzero((self.nfree[faces] == 1) & ~frozen)
            k = np.argmax(self.U[faces[one]] == 0, axis=1)
            xk = X[k]
            xx = np.einsum("ij,ij->i", xk, xk)
        G = fixed_part(eta0, r, X)
        eta = np.broadcast_to(eta0, lead + eta0.shape).copy()
        eta_star = np.full(lead + (faces.size,), np.nan)
        nfree = self.nfree[faces]
        if one.size:
            e, est = self._one_slope(G, r, one, k, xk, xx)
            eta[..., one, k] = e
            eta_star[..., one] = est
        multi = (nfree > 1) & ~frozen
        if solve is not None:
            multi &= solve[faces]
        coupled = multi & self.coupled[faces]
        two = np.flatnonzero(multi & (nfree == 2) & ~coupled)
        if two.size:
            Ks = np.nonzero(self.U[faces[two]] == 0)[1].reshape(-1, 2)
            e = self._two_slopes(G, r, two, Ks[:, 0], Ks[:, 1], X[Ks[:, 0]], X[Ks[:, 1]])
            eta[..., two[:, None], Ks] = e
        many = np.flatnonzero(multi & ((nfree > 2) | coupled))
        self._many_slopes(G, r, many, faces[many], eta)
        G[..., frozen, :] = 0.0
        return G, eta, eta_star

    def fields(self, r: Array, solve: NDArray[np.bool_] | None = None) -> tuple[Array, Array]:
        """``D_u^θ`` for every registered face, and the unclipped free slopes.

        Parameters
        ----------
        r : array, shape (n,)
            ``∂_1 l(h_θ(x_k), y_k)``.
        solve : bool array, optional
            Faces whose field is needed (default: all); faces with several free slopes
            outside it are not solved (their row is then meaningless).

        Returns
        -------
        G : array, shape (P, d)
            The minimal-norm subgradient of each face.
        eta_star : array, shape (P,)
            For faces with one free slope: the unconstrained minimiser ``η*`` (the face
            is a sliding face while ``γ <= η* <= 1``); ``nan`` elsewhere.
        """
        self._refresh()
        G, _, eta_star = self._minimal_norm(r, None, solve)
        return G, eta_star

    def minimal_norm(self, faces: NDArray[np.intp], r: Array, origin: bool = False
                     ) -> tuple[Array, Array, Array]:
        """``D_u^θ`` (shape ``(len(faces), d)``), the minimal-norm slopes ``η`` (``(len(faces),
        n)``) of the given faces, and the unclipped ``η*`` of those with one free slope (``nan``
        elsewhere).  ``origin``: the face ``{0}`` (every hyperplane, dimension 0) is solved
        too, not frozen: its ``D`` is the minimal-norm element of ``𝔇(0)``, 0 exactly where
        staying at 0 is a solution (the regime's reading of a neuron held there); not where
        that holds whatever the residuals (``γ = 0``, no two opposite points: ``rests``)."""
        self._refresh()
        return self._minimal_norm(r, np.asarray(faces, dtype=np.intp), origin=origin)

    def projectors(self) -> Array:
        """Orthogonal projectors onto ``span(x_k : u_k = 0)`` for every face, ``(P, d, d)``: its
        numerical span (:func:`pwflow.cones.span_split`), the one the selection rule saw (a
        point within 1e-13 of the span of the others counted as rank one more in a plain
        pseudo-inverse, and a neuron on the face was projected to 0: status -7)."""
        self._refresh()
        cached = getattr(self, "_proj", np.zeros((0, self.d, self.d)))
        if cached.shape[0] == len(self._U):
            return cached
        out = np.zeros((len(self._U), self.d, self.d))
        out[: cached.shape[0]] = cached  # only the faces registered since are new
        for p in range(cached.shape[0], len(self._U)):
            XK = self.X[self._U[p] == 0]
            if XK.shape[0]:
                out[p] = span_projector(XK)
        self._proj = out
        return out
