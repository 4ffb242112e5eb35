"""Activation patterns (faces of the arrangement {x_k^⊥}) and their vector fields.

A neuron ``w`` lies on the face ``A^{-1}(u)`` with ``u = A(w) ∈ {−1, 0, 1}^n`` (Section 3).
All neurons on one face share one linear vector field (Eq. (6) with the minimal-norm selection):

    d/dt (w, a) = M_u(t) (w, a),     M_u = [[0, D_u^θ], [D_u^θᵀ, 0]],

where ``D_u^θ = −(1/n) Σ_k η_k^u r_k x_k`` with ``r_k = ∂_1 l(h_θ(x_k), y_k)``, ``η_k^u = 1`` if
``u_k = 1``, ``γ`` if ``u_k = −1`` and, for ``u_k = 0``, the slopes of the minimal-norm element
(:mod:`pwflow.subgradient`).  On a face with free slopes in ``(γ, 1)`` the minimal-norm element
is orthogonal to the free ``x_k`` — the Filippov sliding field that keeps the neuron on the
hyperplanes.  The face ``{0}`` is frozen (Condition 1, point 2).

:class:`PatternTable` registers the faces met during a run and evaluates ``D_u^θ`` for all of
them at once (vectorised over faces with one free slope, the common case).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .subgradient import box_least_squares, face_slopes, pair_slopes, single_slope

__all__ = ["PatternTable"]

Array = NDArray[np.float64]


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
        self._arrays_for = -1
        self._warm: dict[int, Array] = {}

    # ------------------------------------------------------------------ registry
    def __len__(self) -> int:
        return len(self._U)

    def index(self, u: NDArray) -> int:
        """Index of pattern ``u`` (registered on first use)."""
        u = np.asarray(u, dtype=np.int8)
        key = u.tobytes()
        idx = self._index.get(key)
        if idx is None:
            idx = len(self._U)
            self._index[key] = idx
            self._U.append(u.copy())
            dim, ray = self._face_geometry(u)
            self._dim.append(dim)
            self._ray.append(ray)
        return idx

    def index_many(self, U: NDArray) -> NDArray[np.intp]:
        """Indices of the rows of ``U`` (registering new ones)."""
        U = np.ascontiguousarray(U, dtype=np.int8)
        if U.shape[0] <= 256:  # a batch of events: dictionary look-ups beat a row sort
            ids = [self._index.get(row.tobytes()) for row in U]
            if None not in ids:
                return np.array(ids, dtype=np.intp)
        uniq, inverse = np.unique(U, axis=0, return_inverse=True)
        ids = np.array([self.index(row) for row in uniq], dtype=np.intp)
        return ids[np.ravel(inverse)]

    def _face_geometry(self, u: NDArray[np.int8]) -> tuple[int, Array]:
        """Dimension of the face and, for 1-dimensional faces, its unit direction."""
        K = np.flatnonzero(u == 0)
        if K.size == 0:
            return self.d, np.full(self.d, np.nan)
        XK = self.X[K]
        _, s, vt = np.linalg.svd(XK)
        rank = int(np.sum(s > 1e-12 * s[0]))
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
        if self._arrays_for == len(self._U):
            return
        U = np.array(self._U, dtype=np.int8).reshape(-1, self.n)
        self.U = U
        self.eta0 = face_slopes(U, self.gamma)
        self.dim = np.array(self._dim, dtype=np.intp)
        self.ray = np.array(self._ray, dtype=float).reshape(-1, self.d)
        nfree = np.sum(U == 0, axis=1)
        self.nfree = nfree
        self.frozen = self.dim == 0
        one = (nfree == 1) & ~self.frozen
        self.single = np.flatnonzero(one)
        self.single_k = np.argmax(U[self.single] == 0, axis=1) if self.single.size else np.zeros(0, int)
        self._single_x = self.X[self.single_k]
        self._arrays_for = len(self._U)

    def arrays(self) -> "PatternTable":
        """Refresh and return ``self`` (attributes ``U``, ``eta0``, ``dim``, ``ray``, ...)."""
        self._refresh()
        return self

    # ------------------------------------------------------------------ fields
    def _minimal_norm(self, r: Array, faces: NDArray[np.intp] | None,
                      solve: NDArray[np.bool_] | None = None) -> tuple[Array, Array, Array]:
        """``D_u^θ``, the slopes and (one free slope) the unclipped ``η*`` of the given faces.

        The only place where the faces' minimal-norm problems are solved: vectorised closed
        form for faces with one free slope, :func:`~pwflow.subgradient.box_least_squares`
        (warm-started from the last solution of the same face) for several; frozen faces
        (``{0}``) get ``D = 0``.  ``faces=None``: all registered faces (the hot path of the
        vector field, on precomputed index arrays); ``solve`` (a mask over them) limits the
        faces with several free slopes that are solved (the others keep their fixed part
        only: the caller does not use them).
        """
        X, n, g = self.X, self.n, self.gamma
        if faces is None:
            faces = np.arange(len(self._U))
            eta = self.eta0.copy()
            one, k, xk = self.single, self.single_k, self._single_x
        else:
            eta = self.eta0[faces].copy()
            one = np.flatnonzero((self.nfree[faces] == 1) & ~self.frozen[faces])
            k = np.argmax(self.U[faces[one]] == 0, axis=1)
            xk = X[k]
        G = -((eta * r) @ X) / n
        eta_star = np.full(faces.size, np.nan)
        nfree = self.nfree[faces]
        if one.size:
            z = -(r[k] / n)[:, None] * xk
            e, est = single_slope(np.einsum("ij,ij->i", G[one], z), np.einsum("ij,ij->i", z, z),
                                  g, 1.0)
            G[one] += e[:, None] * z
            eta[one, k] = e
            eta_star[one] = est
        multi = (nfree > 1) & ~self.frozen[faces]
        if solve is not None:
            multi &= solve[faces]
        two = np.flatnonzero(multi & (nfree == 2))
        if two.size:
            Ks = np.nonzero(self.U[faces[two]] == 0)[1].reshape(-1, 2)
            z1 = -(r[Ks[:, 0]] / n)[:, None] * X[Ks[:, 0]]
            z2 = -(r[Ks[:, 1]] / n)[:, None] * X[Ks[:, 1]]
            e = pair_slopes(G[two], z1, z2, g, 1.0)
            G[two] += e[:, :1] * z1 + e[:, 1:] * z2
            eta[two[:, None], Ks] = e
        for i in np.flatnonzero(multi & (nfree > 2)):
            p = int(faces[i])
            K = np.flatnonzero(self.U[p] == 0)
            Z = (-(r[K, None] * X[K]) / n).T
            e = box_least_squares(G[i], Z, g, 1.0, self._warm.get(p))
            self._warm[p] = e
            G[i] += Z @ e
            eta[i, K] = e
        G[self.frozen[faces]] = 0.0
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

    def minimal_norm(self, faces: NDArray[np.intp], r: Array) -> tuple[Array, Array, Array]:
        """``D_u^θ`` (shape ``(len(faces), d)``), the minimal-norm slopes ``η`` (``(len(faces),
        n)``) of the given faces, and the unclipped ``η*`` of those with one free slope (``nan``
        elsewhere)."""
        self._refresh()
        return self._minimal_norm(r, np.asarray(faces, dtype=np.intp))

    def projectors(self) -> Array:
        """Orthogonal projectors onto ``span(x_k : u_k = 0)`` for every face, ``(P, d, d)``."""
        self._refresh()
        cached = getattr(self, "_proj", np.zeros((0, self.d, self.d)))
        if cached.shape[0] == len(self._U):
            return cached
        out = np.zeros((len(self._U), self.d, self.d))
        out[: cached.shape[0]] = cached  # only the faces registered since are new
        for p in range(cached.shape[0], len(self._U)):
            XK = self.X[self._U[p] == 0]
            if XK.shape[0]:
                out[p] = np.linalg.pinv(XK) @ XK
        self._proj = out
        return out
