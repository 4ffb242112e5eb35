"""Faces of the central hyperplane arrangement {x_k^⊥} (Section 3, activation cones).

Every activation pattern ``u ∈ A(ℝ^d) ⊂ {−1, 0, 1}^n`` is the sign vector of one face
``A^{-1}(u) = {w : sign <w, x_k> = u_k ∀k}`` of the central arrangement of the hyperplanes
``x_k^⊥``, lower-dimensional faces (and the face ``{w : Xw = 0}``, pattern ``0``) included.

* ``d = 2``: exact angular sweep (the rays ``x_k^⊥`` sorted by angle, the open sectors between).
* ``d ≥ 3``: incremental construction: the faces for ``x_1..x_j`` are refined by ``x_{j+1}``,
  each candidate child tested by a least-distance programme in the null space of the face's
  equalities (:func:`pwflow.cones.face_point`, shared with the Filippov rule); its solution,
  the direction of largest margin, is a well-centred representative point.

For generic data (every ``min(n, d)`` vectors independent) the number of faces is
Zaslavsky's count ``Σ_j f_j`` with ``f_j`` the number of ``j``-dimensional faces
(:func:`zaslavsky_count`); the number of full-dimensional ones is Cover's
``2 Σ_{i<d} C(n−1, i)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from math import comb

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.linalg import null_space

from pwflow import cones
from pwflow.cones import face_point

__all__ = [
    "Face",
    "Arrangement",
    "enumerate_faces",
    "cover_count",
    "zaslavsky_count",
    "face_generators",
]

Array = NDArray[np.float64]
_TOL = 1e-9


@dataclass(frozen=True)
class Face:
    """One face ``A^{-1}(u)`` of the arrangement.

    Attributes
    ----------
    u : ndarray of int8, shape (n,)
        The activation pattern (sign vector).
    point : ndarray, shape (d,)
        A representative point in the relative interior (unit norm; zero for the face ``{0}``).
    dim : int
        Dimension of the face (``d − rank X_K`` with ``K = {k : u_k = 0}``).
    """

    u: NDArray[np.int8]
    point: Array
    dim: int

    @property
    def K(self) -> NDArray[np.intp]:
        """``K(u) = {k : u_k = 0}`` (Appendix D.1)."""
        return np.flatnonzero(self.u == 0)

    def inequalities(self, X: ArrayLike) -> tuple[Array, Array]:
        """``(A_eq, A_gt)``: the face is ``{w : A_eq w = 0, A_gt w > 0}``."""
        X = np.asarray(X, float)
        return X[self.u == 0], self.u[self.u != 0, None] * X[self.u != 0]


@dataclass(frozen=True)
class Arrangement:
    """All faces of the arrangement of ``X``'s rows, with lookup by pattern."""

    X: Array
    faces: tuple[Face, ...]
    index: dict = field(repr=False)

    def find(self, u: ArrayLike) -> Face | None:
        """The face with pattern ``u`` or ``None`` if ``u ∉ A(ℝ^d)``."""
        return self.index.get(tuple(int(v) for v in np.asarray(u)))

    def __len__(self) -> int:
        return len(self.faces)

    @cached_property
    def _rays(self) -> tuple[NDArray[np.int8], Array]:
        """Patterns and points of the faces one dimension above the lineality space ``ker X``
        (the rays where ``X`` has full column rank), computed once: every
        :func:`face_generators` call reads them."""
        low = _dim(self.X, np.zeros(self.X.shape[0], np.int8)) + 1
        rays = [f for f in self.faces if f.dim == low]
        if not rays:
            return np.zeros((0, self.X.shape[0]), np.int8), np.zeros((0, self.X.shape[1]))
        return np.array([f.u for f in rays]), np.array([f.point for f in rays])

    @cached_property
    def _lineality(self) -> Array:
        """``± basis`` of ``ker X``, the lineality space of every closed face (rows)."""
        L = null_space(self.X).T
        return np.stack([L, -L], axis=1).reshape(-1, self.X.shape[1])


def _check_X(X: ArrayLike) -> Array:
    X = np.asarray(X, float)
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"X must be a non-empty (n, d) array, got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X must be finite")
    if np.any(np.linalg.norm(X, axis=1) == 0):
        raise ValueError("X must have nonzero rows (x_k = 0 gives no hyperplane)")
    return X


def _dim(X: Array, u: NDArray) -> int:
    XK = X[u == 0]
    return X.shape[1] - (np.linalg.matrix_rank(XK) if len(XK) else 0)


def _pattern(X: Array, w: Array) -> NDArray[np.int8]:
    s = X @ w
    tol = _TOL * np.linalg.norm(X, axis=1) * max(np.linalg.norm(w), 1e-300)
    return np.where(np.abs(s) <= tol, 0, np.sign(s)).astype(np.int8)


def _interior_point(X: Array, u: NDArray) -> Array | None:
    """A unit point of the face ``u`` of the arrangement of ``X`` (zero for ``u = 0``) or
    ``None``: :func:`pwflow.cones.face_point` (least-distance programme), margin ``_TOL``."""
    return face_point(X, u, margin=_TOL)


def _cross2(a: Array, b: Array) -> float:
    return float(a[0] * b[1] - a[1] * b[0])


def _sweep_2d(X: Array) -> list[tuple[NDArray, Array]]:
    """Exact angular sweep for ``d = 2``: rays of ``x_k^⊥`` and the open sectors between."""
    n = X.shape[0]
    normals = np.stack([-X[:, 1], X[:, 0]], axis=1)  # x_k^⊥ direction
    dirs = np.concatenate([normals, -normals])
    ang = np.mod(np.arctan2(dirs[:, 1], dirs[:, 0]), 2 * np.pi)
    order = np.argsort(ang, kind="stable")
    # merge coincident rays (parallel x_k): exact test on cross products
    unit = dirs / np.linalg.norm(dirs, axis=1)[:, None]
    rays: list[Array] = []
    for i in order:
        if rays and abs(_cross2(rays[-1], unit[i])) <= 1e-14 and rays[-1] @ unit[i] > 0:
            continue
        rays.append(unit[i])
    if len(rays) > 1 and abs(_cross2(rays[-1], rays[0])) <= 1e-14 and rays[-1] @ rays[0] > 0:
        rays.pop()
    out: list[tuple[NDArray, Array]] = [(np.zeros(n, np.int8), np.zeros(2))]
    m = len(rays)
    for i, r in enumerate(rays):
        out.append((_pattern(X, r), r))
        a0 = np.arctan2(r[1], r[0])
        nxt = rays[(i + 1) % m]
        a1 = np.arctan2(nxt[1], nxt[0])
        span = np.mod(a1 - a0, 2 * np.pi)
        if m == 1 or span == 0:
            span = 2 * np.pi
        mid = a0 + span / 2
        w = np.array([np.cos(mid), np.sin(mid)])
        out.append((_pattern(X, w), w))
    return out


def _incremental(X: Array) -> list[tuple[NDArray, Array]]:
    n, d = X.shape
    faces: list[tuple[NDArray, Array]] = [(np.zeros(0, np.int8), np.zeros(d))]
    for j in range(n):
        new: list[tuple[NDArray, Array]] = []
        for u, w in faces:
            s_rep = 0 if np.linalg.norm(w) == 0 else int(_pattern(X[j : j + 1], w)[0])
            empty = False  # the two children off w are empty together (PAIRED_CHILDREN)
            for s in (-1, 0, 1):
                child = np.append(u, s).astype(np.int8)
                if s == s_rep and (np.linalg.norm(w) > 0 or s == 0):
                    new.append((child, w))
                    continue
                if empty:
                    continue
                p = _interior_point(X[: j + 1], child)
                if p is not None:
                    new.append((child, p))
                else:
                    empty = cones.sibling_empty(s_rep, float(X[j] @ w))
        faces = new
    return faces


def enumerate_faces(X: ArrayLike) -> Arrangement:
    """All faces of the central arrangement ``{x_k^⊥}`` with a representative point each.

    Parameters
    ----------
    X : array, shape (n, d)
        Data points (nonzero rows).

    Returns
    -------
    Arrangement
        Faces sorted by decreasing dimension then pattern; ``A(ℝ^d)`` is their patterns.
        The last eight are kept (by the bytes of ``X``) and returned again when asked.
    """
    X = _check_X(X)
    key = (X.shape, X.tobytes())
    if key in _ARRANGEMENTS:  # the report asks for one dataset's faces several times
        return _ARRANGEMENTS[key]
    arr = _enumerate(X.copy())  # (a caller may write to its X later)
    _ARRANGEMENTS[key] = arr
    while len(_ARRANGEMENTS) > 8:
        del _ARRANGEMENTS[next(iter(_ARRANGEMENTS))]
    return arr


#: the last eight arrangements, by their data's bytes (frozen: shared safely)
_ARRANGEMENTS: dict[tuple, Arrangement] = {}


def _enumerate(X: Array) -> Arrangement:
    raw = _sweep_2d(X) if X.shape[1] == 2 else _incremental(X)
    index: dict = {}
    faces = []
    for u, w in raw:
        key = tuple(int(v) for v in u)
        if key in index:
            continue
        f = Face(u.astype(np.int8), w, _dim(X, u))
        index[key] = f
        faces.append(f)
    faces.sort(key=lambda f: (-f.dim, tuple(f.u)))
    index = {tuple(int(v) for v in f.u): f for f in faces}
    return Arrangement(X, tuple(faces), index)


def face_generators(arr: Arrangement, face: Face) -> Array:
    """Generators (rows) of the closed cone ``cl A^{-1}(u)``.

    The closure is the union of the faces ``u'`` conformal to ``u`` (``u'_k ∈ {0, u_k}``).  Its
    lineality space ``L = ker X`` enters as ``± basis`` vectors; modulo ``L`` its extreme rays
    are the conformal faces of dimension ``dim L + 1`` (1-dimensional faces when ``X`` has
    full column rank; with ``n < d`` points, the 1-dimensional face is ``L`` itself, whose
    representative point is 0, and the rays are 2-dimensional or more).
    """
    U, P = arr._rays
    ok = np.all((U == 0) | (U == face.u[None, :]), axis=1)
    return np.concatenate([P[ok], arr._lineality])


def zaslavsky_count(n: int, d: int) -> int:
    """Number of faces of a central arrangement of ``n`` generic hyperplanes in ``ℝ^d``.

    Faces of dimension ``j ≥ 1`` lie in the intersection of ``d − j`` hyperplanes (a
    ``j``-dimensional subspace cut by the other ``n − d + j`` hyperplanes in general position:
    ``C(n, d−j) · 2 Σ_{i<j} C(n−d+j−1, i)`` regions), plus the origin.
    """
    if n < 0 or d < 1:
        raise ValueError(f"need n >= 0 and d >= 1, got n={n}, d={d}")
    total = 1 if n >= d else 0  # the face {0} (for n < d the face ker X is counted below)
    for j in range(1, d + 1):
        if d - j > n:
            continue
        m = n - (d - j)
        total += comb(n, d - j) * cover_count(m, j)
    return total


def cover_count(n: int, d: int) -> int:
    """Cover's count ``2 Σ_{i<d} C(n−1, i)`` of regions of ``n`` generic central hyperplanes."""
    if n == 0:
        return 1
    return 2 * sum(comb(n - 1, i) for i in range(d))
