"""Per-face objects of Appendix D.1: 𝔇_u, D_u, η^u, D̃_u, K(u), Z_u, extremality.

For a face ``u ∈ A(ℝ^d)`` and ``r_k = ∂_1 l(0, y_k)``:

* ``𝔇_u = { −(1/n) Σ_k η_k r_k x_k : η_k = 1 (u_k = 1), γ (u_k = −1), ∈ [γ, 1] (u_k = 0) }``
  (Eq. (6) at ``θ = 0``);
* ``D̃_u = −(1/n) Σ_k (1_{u_k=1} + γ 1_{u_k=−1}) r_k x_k``;
* ``Z_u = (1/n)(r_i x_i)_{i ∈ K(u)}`` (Eq. (20)), so that ``𝔇_u = {D̃_u − Z_u η : η ∈ [γ,1]^K}``
  (the paper prints ``D̃_u + Z_u η``; see docs/paper-readings.md);
* ``D_u`` the minimal-norm element of ``𝔇_u`` and ``η^u`` the ``η_K`` attaining it;
* ``𝔇_u`` is *extremal* (Definition 1) if ``D_u ≠ 0`` and ``D_u ∈ A^{-1}(u) ∪ −A^{-1}(u)``
  (by Eq. (17) only ``D_u`` can be an extremal vector of ``𝔇_u``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pwflow.data import Dataset
from pwflow.model import Loss, check_gamma, get_loss
from pwflow.subgradient import face_slopes, fixed_part, minimal_norm_on_face

from .arrangement import Arrangement, Face, enumerate_faces

__all__ = ["FaceData", "Geometry", "face_data", "geometry", "residual_at_zero", "zero_tolerance"]

Array = NDArray[np.float64]
_REL = 1e-9


@dataclass(frozen=True)
class FaceData:
    """The Appendix D.1 quantities of one face ``u``.

    Attributes
    ----------
    face : Face
        Pattern, representative point and dimension.
    D_tilde : ndarray (d,)
        ``D̃_u``.
    Z : ndarray (d, ``|K|``)
        ``Z_u`` of Eq. (20), columns ``r_i x_i / n``.
    D : ndarray (d,)
        ``D_u = argmin_{D ∈ 𝔇_u} ‖D‖``.
    eta : ndarray (n,)
        The full slope vector attaining ``D_u`` (``η_k = 1, γ`` off ``K``).
    zero_in : bool
        ``0 ∈ 𝔇_u`` (i.e. ``D_u = 0`` up to a relative tolerance).
    extremal : int
        ``+1`` if ``D_u ∈ A^{-1}(u)``, ``−1`` if ``D_u ∈ −A^{-1}(u)`` (and ``D_u ≠ 0``), else 0.
    sigma_min_Z : float
        Smallest singular value of ``Z_u`` (``+inf`` when ``K`` is empty).
    """

    face: Face
    D_tilde: Array
    Z: Array
    D: Array
    eta: Array
    zero_in: bool
    extremal: int
    sigma_min_Z: float

    @property
    def u(self) -> NDArray[np.int8]:
        return self.face.u

    @property
    def K(self) -> NDArray[np.intp]:
        return self.face.K

    @property
    def eta_u(self) -> Array:
        """``η^u``: the unique ``η_K`` with ``D_u = D̃_u − Z_u η^u`` (Eq. (21))."""
        return self.eta[self.K]

    @property
    def is_extremal(self) -> bool:
        """``𝔇_u`` is extremal (Appendix D.1)."""
        return self.extremal != 0


@dataclass(frozen=True)
class Geometry:
    """Arrangement plus per-face data for one dataset, loss and ``γ``."""

    X: Array
    y: Array
    r: Array
    gamma: float
    arrangement: Arrangement
    faces: tuple[FaceData, ...]
    tol: float

    @property
    def n(self) -> int:
        return self.X.shape[0]

    def find(self, u: ArrayLike) -> FaceData | None:
        """The :class:`FaceData` of pattern ``u`` (``None`` if ``u ∉ A(ℝ^d)``)."""
        key = tuple(int(v) for v in np.asarray(u))
        for f in self.faces:
            if tuple(int(v) for v in f.u) == key:
                return f
        return None


def residual_at_zero(y: ArrayLike, loss: str | Loss = "square") -> Array:
    """``r_k = ∂_1 l(0, y_k)`` (``−y_k`` for the square loss)."""
    y = np.asarray(y, float)
    return np.asarray(get_loss(loss).derivative(np.zeros_like(y), y), float)


def zero_tolerance(X: Array, r: Array) -> float:
    """Absolute tolerance for ``‖D‖ = 0``: ``1e-9 · (1/n) Σ |r_k| ‖x_k‖``."""
    return _REL * float(np.mean(np.abs(r) * np.linalg.norm(X, axis=1)))


def _sign_pattern(X: Array, v: Array) -> NDArray[np.int8]:
    s = X @ v
    tol = _REL * np.linalg.norm(X, axis=1) * np.linalg.norm(v)
    return np.where(np.abs(s) <= tol, 0, np.sign(s)).astype(np.int8)


def face_data(face: Face, X: Array, r: Array, gamma: float, tol: float) -> FaceData:
    """Compute the :class:`FaceData` of ``face`` (Appendix D.1)."""
    n = X.shape[0]
    u = face.u
    res = minimal_norm_on_face(u, X, r, gamma)
    D_tilde = fixed_part(face_slopes(u, gamma), r, X)
    K = face.K
    Z = (r[K, None] * X[K] / n).T
    zero_in = bool(np.linalg.norm(res.D) <= tol)
    ext = 0
    if not zero_in:
        p = _sign_pattern(X, res.D)
        ext = 1 if np.array_equal(p, u) else (-1 if np.array_equal(p, -u) else 0)
    smin = float(np.linalg.svd(Z, compute_uv=False).min()) if len(K) else np.inf
    if len(K) > X.shape[1]:
        smin = 0.0
    return FaceData(face, D_tilde, Z, res.D, res.eta, zero_in, ext, smin)


def geometry(data: Dataset, loss: str | Loss = "square", gamma: float = 0.0) -> Geometry:
    """Enumerate the faces of ``data`` and their Appendix D.1 quantities."""
    if not isinstance(data, Dataset):
        raise ValueError(f"data must be a pwflow.data.Dataset, got {type(data).__name__}")
    gamma = check_gamma(gamma)
    X = np.asarray(data.X, float)
    r = residual_at_zero(data.y, loss)
    arr = enumerate_faces(X)
    tol = zero_tolerance(X, r)
    faces = tuple(face_data(f, X, r, gamma, tol) for f in arr.faces)
    return Geometry(X, np.asarray(data.y, float), r, gamma, arr, faces, tol)
