"""The set 𝔇(w, θ) of Eq. (6) and its minimal-norm element D(w, θ) (Section 3).

For a neuron ``w`` and residual derivatives ``r_k = ∂_1 l(h_θ(x_k), y_k)``,

    𝔇(w, θ) = { −(1/n) Σ_k η_k r_k x_k :  η_k = 1 if <w, x_k> > 0,
                                          η_k = γ if <w, x_k> < 0,
                                          η_k ∈ [γ, 1] if <w, x_k> = 0 }.

Writing ``K = {k : <w, x_k> = 0}``, ``b`` the fixed part and ``z_k = −(1/n) r_k x_k``,
the minimal-norm element solves the box-constrained least-squares problem

    min_{η_K ∈ [γ, 1]^K} ‖b + Σ_{k∈K} η_k z_k‖² .

``D`` is unique (strict convexity of the norm); ``η_K`` is unique when the ``z_k`` are linearly
independent.  The problem is solved exactly: closed form for ``|K| = 1``, enumeration of the
active sets for small ``|K|`` and a bounded-variable least-squares solve (scipy's BVLS) polished
by an exact least-squares solve on its free set and verified by the KKT conditions otherwise.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "MinNormResult",
    "activation_pattern",
    "box_least_squares",
    "minimal_norm_subgradient",
    "minimal_norm_on_face",
    "subgradient_parts",
]

Array = NDArray[np.float64]

_ENUMERATE_UP_TO = 6


@dataclass(frozen=True)
class MinNormResult:
    """The minimal-norm subgradient ``D`` and the slopes ``η`` attaining it.

    Attributes
    ----------
    D : ndarray, shape (d,)
        ``D(w, θ)``.
    eta : ndarray, shape (n,)
        The ``η_k`` with ``D = −(1/n) Σ_k η_k r_k x_k``.
    free : ndarray of int
        ``K``: the indices with ``<w, x_k> = 0`` (whose ``η_k`` were optimised).
    """

    D: Array
    eta: Array
    free: NDArray[np.intp]


def activation_pattern(w: ArrayLike, X: ArrayLike, zero_tol: float = 0.0) -> NDArray[np.int8]:
    """``A(w) = (sign <w, x_k>)_k`` with ``sign(0) = 0`` (Section 3).

    ``zero_tol`` treats ``|<w, x_k>| <= zero_tol ‖w‖ ‖x_k‖`` as zero.
    """
    w = np.asarray(w, float)
    X = np.asarray(X, float)
    s = X @ w
    tol = zero_tol * np.linalg.norm(w) * np.linalg.norm(X, axis=1)
    return np.where(np.abs(s) <= tol, 0, np.sign(s)).astype(np.int8)


def subgradient_parts(
    u: ArrayLike, X: ArrayLike, r: ArrayLike, gamma: float
) -> tuple[Array, Array, NDArray[np.intp]]:
    """Fixed part ``b``, free columns ``Z`` (``d × |K|``) and ``K`` for the face ``u``."""
    u = np.asarray(u)
    X = np.asarray(X, float)
    r = np.asarray(r, float)
    n = X.shape[0]
    eta_fixed = np.where(u > 0, 1.0, np.where(u < 0, gamma, 0.0))
    b = -(eta_fixed * r) @ X / n
    K = np.flatnonzero(u == 0)
    Z = (-(r[K, None] * X[K]) / n).T
    return b, Z, K


def _kkt_ok(b: Array, Z: Array, eta: Array, lo: float, hi: float, tol: float) -> bool:
    D = b + Z @ eta
    g = Z.T @ D  # gradient of ½‖D‖² in η
    scale = tol * max(1.0, float(np.linalg.norm(Z)) * max(float(np.linalg.norm(D)), 1e-300))
    at_lo = eta <= lo
    at_hi = eta >= hi
    free = ~(at_lo | at_hi)
    return bool(
        np.all(g[at_lo] >= -scale) and np.all(g[at_hi] <= scale) and np.all(np.abs(g[free]) <= scale)
    )


def _solve_free(b: Array, Z: Array, eta: Array, free: NDArray[np.bool_]) -> Array:
    eta = eta.copy()
    if np.any(free):
        rhs = -(b + Z[:, ~free] @ eta[~free])
        sol, *_ = np.linalg.lstsq(Z[:, free], rhs, rcond=None)
        eta[free] = sol
    return eta


def box_least_squares(b: ArrayLike, Z: ArrayLike, lo: float, hi: float) -> Array:
    """Exact minimiser ``η ∈ [lo, hi]^p`` of ``‖b + Z η‖`` (``Z`` has shape ``(d, p)``).

    Returns one minimiser (the minimal-norm ``b + Z η`` is unique).  Raises ``RuntimeError``
    if no candidate passes the KKT check (never observed; it would signal a degenerate input).
    """
    b = np.asarray(b, float)
    Z = np.asarray(Z, float)
    p = Z.shape[1]
    if p == 0:
        return np.zeros(0)
    if p == 1:
        z = Z[:, 0]
        zz = float(z @ z)
        if zz == 0.0:
            return np.array([0.5 * (lo + hi)])
        return np.array([min(max(-float(b @ z) / zz, lo), hi)])
    if p <= _ENUMERATE_UP_TO:
        best, best_val = None, np.inf
        for assign in itertools.product((0, 1, 2), repeat=p):  # lo, hi, free
            a = np.array(assign)
            eta = np.where(a == 0, lo, hi).astype(float)
            free = a == 2
            eta = _solve_free(b, Z, eta, free)
            if np.any(eta < lo - 1e-12) or np.any(eta > hi + 1e-12):
                continue
            eta = np.clip(eta, lo, hi)
            val = float(np.linalg.norm(b + Z @ eta))
            if val < best_val - 1e-15 * max(1.0, val):
                best, best_val = eta, val
        assert best is not None  # the all-bounds assignments are always feasible
        return best
    from scipy.optimize import lsq_linear

    res = lsq_linear(Z, -b, bounds=(lo, hi), method="bvls", tol=1e-14)
    eta = np.clip(res.x, lo, hi)
    span = hi - lo
    free = (eta > lo + 1e-9 * span) & (eta < hi - 1e-9 * span)
    eta = np.where(free, eta, np.where(eta - lo < hi - eta, lo, hi))
    polished = np.clip(_solve_free(b, Z, eta, free), lo, hi)
    for cand in (polished, eta, np.clip(res.x, lo, hi)):
        if _kkt_ok(b, Z, cand, lo, hi, 1e-10):
            return cand
    raise RuntimeError("box_least_squares: no KKT point found (degenerate problem?)")


def minimal_norm_on_face(
    u: ArrayLike, X: ArrayLike, r: ArrayLike, gamma: float
) -> MinNormResult:
    """``D_u^θ`` of Appendix D.1: the minimal-norm element of 𝔇 on the face ``A^{-1}(u)``."""
    u = np.asarray(u)
    b, Z, K = subgradient_parts(u, X, r, gamma)
    etaK = box_least_squares(b, Z, gamma, 1.0)
    eta = np.where(u > 0, 1.0, np.where(u < 0, gamma, 0.0))
    eta[K] = etaK
    return MinNormResult(b + Z @ etaK, eta, K)


def minimal_norm_subgradient(
    w: ArrayLike, X: ArrayLike, r: ArrayLike, gamma: float = 0.0, zero_tol: float = 0.0
) -> MinNormResult:
    """``D(w, θ)``: the minimal-norm element of 𝔇(w, θ) (Section 3).

    Parameters
    ----------
    w : array, shape (d,)
        The neuron.
    X : array, shape (n, d)
        Data.
    r : array, shape (n,)
        ``∂_1 l(h_θ(x_k), y_k)``; at ``θ = 0`` this is ``∂_1 l(0, y_k)`` and the result is
        ``D(w, 0)`` of Eq. (7).
    gamma : float
        Leaky-ReLU slope.
    zero_tol : float
        Relative tolerance below which ``<w, x_k>`` counts as zero.
    """
    return minimal_norm_on_face(activation_pattern(w, X, zero_tol), X, r, gamma)
