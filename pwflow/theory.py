"""Formulas of the paper shared by :mod:`pwflow` and :mod:`proofs_checks`, each written once.

* :func:`tau` — the end of the early phase ``τ = −ε ln(λ) / D_max`` (Theorem 1, Lemma 4);
* :func:`D_max` — ``D_max = max_w ‖D(w, 0)‖ = max_u ‖D_u‖`` (Theorem 1) from the ``D_u`` of the
  faces;
* :func:`beta_star` — the least-squares vector ``β* = (XᵀX)^{-1} Xᵀ y`` (Theorem 2);
* :func:`kappa_set` — the set ``𝒦`` of Assumption 5 (**0-based** indices; the paper is 1-based)
  from the face patterns;
* :func:`assumption3_eta` — the smallest ``η`` whose boxes of Assumption 3 contain the data.

Pure functions of numbers and arrays: no face enumeration here (that is
:mod:`proofs_checks.faces`), so ``pwflow`` can use them without ``proofs_checks``.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["tau", "D_max", "beta_star", "kappa_set", "assumption3_eta"]

Array = NDArray[np.float64]


def tau(lam: float, epsilon: float, D_max: float) -> float:
    """``τ = −ε ln(λ) / D_max`` (Theorem 1).

    Parameters
    ----------
    lam : float
        Initialisation scale ``λ ∈ (0, 1)``.
    epsilon : float
        ``ε ∈ (0, 1/3)`` of Theorem 1.
    D_max : float
        ``max_w ‖D(w, 0)‖ > 0``.

    Raises
    ------
    ValueError
        Naming the argument out of range.
    """
    lam, epsilon, D_max = float(lam), float(epsilon), float(D_max)
    if not 0 < lam < 1:
        raise ValueError(f"lam must be in (0, 1), got {lam!r}")
    if not 0 < epsilon < 1 / 3:
        raise ValueError(f"epsilon must be in (0, 1/3), got {epsilon!r}")
    if not (D_max > 0 and math.isfinite(D_max)):
        raise ValueError(f"D_max must be positive and finite, got {D_max!r}")
    return -epsilon * math.log(lam) / D_max


def D_max(D_faces: Iterable[ArrayLike]) -> float:
    """``D_max = max_u ‖D_u‖`` over the minimal-norm vectors ``D_u`` of every face (Theorem 1;
    ``D(w, 0) = D_{A(w)}`` so this is ``max_w ‖D(w, 0)‖``)."""
    norms = [float(np.linalg.norm(np.asarray(D, float))) for D in D_faces]
    if not norms:
        raise ValueError("D_faces must hold at least one vector D_u")
    return max(norms)


def beta_star(X: ArrayLike, y: ArrayLike) -> Array | None:
    """``β* = (XᵀX)^{-1} Xᵀ y`` (Theorem 2); ``None`` when ``X`` has rank ``< d`` (not unique)."""
    X = np.asarray(X, float)
    y = np.asarray(y, float)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise ValueError(f"X must be (n, d) and y (n,), got {X.shape} and {y.shape}")
    if np.linalg.matrix_rank(X) < X.shape[1]:
        return None
    return np.linalg.solve(X.T @ X, X.T @ y)


def kappa_set(patterns: Iterable[ArrayLike], n: int, full_rank: bool = True) -> list[int]:
    """``𝒦`` of Assumption 5, **0-based**: ``k`` such that some nonzero face pattern
    ``u ∈ {0, 1}^n`` (a face of the closed cone ``{Xw ≥ 0}`` other than ``{0}``) has
    ``u_k = 0``; every ``k`` when ``X`` is rank deficient (``ker X`` lies in every ``x_k^⊥``).

    ``patterns``: the patterns ``u`` of the faces of dimension ``≥ 1``.
    """
    if not full_rank:
        return list(range(int(n)))
    ks: set[int] = set()
    for u in patterns:
        u = np.asarray(u)
        if np.all(u >= 0):
            ks.update(int(k) for k in np.flatnonzero(u == 0))
    return sorted(ks)


def assumption3_eta(X: ArrayLike, y: ArrayLike) -> float:
    """The smallest ``η`` such that ``(X, y)`` lies in the (closed) boxes of Assumption 3
    (Section 4): ``x_1 ∈ (−1, −1+η] × [1, 1+η]``, ``y_1 ∈ [1, 1+η]``,
    ``x_2 ∈ [−η, η] × [1−η, 1+η]``, ``y_2 ∈ (0, η]``, ``x_3 ∈ [1−η, 1) × [1, 1+η]``,
    ``y_3 ∈ [1, 1+η]``; ``inf`` if no ``η`` works (wrong shape or a one-sided bound fails)."""
    X = np.asarray(X, float)
    y = np.asarray(y, float)
    if X.shape != (3, 2) or y.shape != (3,):
        return math.inf
    ok = (X[0, 0] > -1 and X[0, 1] >= 1 and y[0] >= 1 and y[1] > 0 and X[2, 0] < 1
          and X[2, 1] >= 1 and y[2] >= 1)
    if not ok:
        return math.inf
    return float(max(X[0, 0] + 1, X[0, 1] - 1, y[0] - 1, abs(X[1, 0]), abs(X[1, 1] - 1), y[1],
                     1 - X[2, 0], X[2, 1] - 1, y[2] - 1))
