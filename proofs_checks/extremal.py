"""The function ``G(w) = <w, D(w, 0)>`` on the sphere (Eq. (7)) and its critical points.

``G(w) = −(1/n) Σ_k r_k σ(<w, x_k>)`` (``σ`` the leaky ReLU, ``r_k = ∂_1 l(0, y_k)``) is
piecewise linear and positively homogeneous.  Its critical points on the sphere with
``G ≠ 0`` are the normalised extremal vectors (Definition 1, proof of Lemma 3):
``w* = ε D_u / ‖D_u‖`` with ``ε = ±1`` the extremal sign of ``𝔇_u``, ``G(w*) = ε ‖D_u‖``.

Classification (exact, from one-sided directional derivatives).  For a tangent direction
``v ⊥ w*`` with ``s_k = <v, x_k>``, using ``<D_u, v> = 0``,

    G'(w*; v) = Σ_{k∈K(u)} a_k φ_k(s_k),   a_k = −r_k / n,
    φ_k(s) = (1 − η_k^u) max(s, 0) + (η_k^u − γ) max(−s, 0) ≥ 0,

and along ``v ⊥ {w*} ∪ {x_k}_{k∈K}`` (a space of dimension ``d − 1 − rank X_K``) the first
derivative vanishes and ``G(w(t)) = G(w*)(1 − t²/2) + O(t³)``.  Hence an ascent direction
exists iff some ``a_k > 0`` (with ``φ_k ≢ 0``) or (``G(w*) < 0`` and that space is non-trivial);
a descent direction iff some ``a_k < 0`` or (``G(w*) > 0`` and the space is non-trivial).
No ascent: local maximum; no descent: local minimum; both: saddle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .faces import FaceData, Geometry

__all__ = ["CriticalPoint", "G", "G_directional_derivative", "extremal_vectors", "classify"]

Array = NDArray[np.float64]


@dataclass(frozen=True)
class CriticalPoint:
    """An extremal vector ``D_u`` and the critical point ``w*`` of ``G`` it defines.

    Attributes
    ----------
    face : FaceData
    sign : int
        ``+1`` (``D_u ∈ A^{-1}(u)``) or ``−1`` (``D_u ∈ −A^{-1}(u)``).
    w : ndarray
        ``w* = sign · D_u / ‖D_u‖ ∈ A^{-1}(u)``.
    value : float
        ``G(w*) = sign · ‖D_u‖``.
    kind : str
        ``'local max'``, ``'local min'``, ``'saddle'`` or ``'degenerate'`` (some ``η_k^u`` at a
        bound, so that ``φ_k`` vanishes on a half-line: excluded under Assumption 2).
    ascent, descent : bool
        Whether an ascent / descent tangent direction exists.
    """

    face: FaceData
    sign: int
    w: Array
    value: float
    kind: str
    ascent: bool
    descent: bool

    @property
    def D(self) -> Array:
        return self.face.D

    def to_dict(self) -> dict:
        return {
            "u": [int(v) for v in self.face.u],
            "D": self.D.tolist(),
            "w": self.w.tolist(),
            "sign": self.sign,
            "G": self.value,
            "kind": self.kind,
        }


def G(w: ArrayLike, X: ArrayLike, r: ArrayLike, gamma: float = 0.0) -> Array:
    """``G(w) = <w, D(w, 0)> = −(1/n) Σ_k r_k σ(<w, x_k>)`` (Eq. (7)); vectorised over rows of w."""
    w = np.asarray(w, float)
    z = w @ np.asarray(X, float).T
    return -(np.where(z > 0, z, gamma * z) @ np.asarray(r, float)) / len(r)


def G_directional_derivative(
    w: ArrayLike,
    v: ArrayLike,
    X: ArrayLike,
    r: ArrayLike,
    gamma: float = 0.0,
    zero_tol: float = 1e-12,
) -> float:
    """One-sided derivative ``lim_{t↓0} (G(w + t v) − G(w)) / t`` of the homogeneous extension."""
    X = np.asarray(X, float)
    z = X @ np.asarray(w, float)
    s = X @ np.asarray(v, float)
    zero = np.abs(z) <= zero_tol * np.linalg.norm(X, axis=1) * np.linalg.norm(w)
    slope = np.where(zero, np.where(s > 0, 1.0, gamma), np.where(z > 0, 1.0, gamma))
    return float(-(slope * s) @ np.asarray(r, float) / len(r))


def classify(face: FaceData, geo: Geometry) -> tuple[str, bool, bool]:
    """Classify the critical point of the extremal face ``face`` (see module docstring)."""
    if not face.is_extremal:
        raise ValueError("face must be extremal (Definition 1)")
    K = face.K
    a = -geo.r[K] / geo.n
    eta = face.eta_u
    g = geo.gamma
    value = face.extremal * float(np.linalg.norm(face.D))
    rank = int(np.linalg.matrix_rank(geo.X[K])) if len(K) else 0
    free = geo.X.shape[1] - 1 - rank  # tangent directions with s_K = 0
    # φ_k(s) > 0 for s > 0 iff η_k < 1; for s < 0 iff η_k > γ.
    up_pos = (1 - eta) > 1e-12
    up_neg = (eta - g) > 1e-12
    degenerate = bool(np.any(~up_pos | ~up_neg))
    ascent = bool(np.any((a > 0) & (up_pos | up_neg))) or (value < 0 and free > 0)
    descent = bool(np.any((a < 0) & (up_pos | up_neg))) or (value > 0 and free > 0)
    if ascent and descent:
        kind = "saddle"
    elif degenerate:
        kind = "degenerate"
    elif not ascent:
        kind = "local max"
    else:
        kind = "local min"
    return kind, ascent, descent


def extremal_vectors(geo: Geometry) -> list[CriticalPoint]:
    """All extremal vectors (Definition 1) with the type of the critical point of ``G``."""
    out = []
    for f in geo.faces:
        if not f.is_extremal:
            continue
        w = f.extremal * f.D / np.linalg.norm(f.D)
        kind, asc, desc = classify(f, geo)
        out.append(
            CriticalPoint(
                f, f.extremal, w, float(f.extremal * np.linalg.norm(f.D)), kind, asc, desc
            )
        )
    return out
