"""Faces of the central arrangement of the hyperplanes ``x_k^⊥`` (the activation cones).

A sign vector ``s ∈ {−1, 0, +1}^p`` is a face of the arrangement of the rows ``x_1..x_p`` when
some ``w`` has ``sign <x_k, w> = s_k`` for every ``k``.  :func:`face_point` decides it and
returns a point of the face: the selection rule (:mod:`pwflow.filippov`) uses it to search
only the sign patterns a departure can have, and ``proofs_checks.arrangement`` to enumerate
the faces ``A(ℝ^d)``.

The test is Lawson and Hanson's least-distance programme (*Solving Least Squares Problems*,
1974, ch. 23).  In the null space ``N`` of the rows with ``s_k = 0`` the face is
``{z : g_k·z > 0}`` with ``g_k = s_k P_N x_k / ‖x_k‖``, which is not empty iff the origin is
not in the convex hull of the ``g_k`` (Gordan).  The non-negative least squares
``min_{u >= 0} ‖E u − e‖``, ``E = [G^T; 1^T]``, ``e = (0, …, 0, 1)``, has residual ``ρ = 0``
exactly when ``G z >= 1`` has no solution; otherwise ``z = −r_{:-1} / r_{-1}`` (``r`` the
residual vector) is its minimal-norm solution and ``ρ = μ / sqrt(1 + μ²)``, ``μ = max_{‖z‖ = 1} min_k g_k·z`` (the
face's margin: the angle, in radians for small ``μ``, by which the point clears the nearest
of the face's hyperplanes).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["face_point", "nonnegative_least_squares", "span_split", "span_projector",
           "FACE_MARGIN", "SPAN_RTOL"]

Array = NDArray[np.float64]

#: smallest margin ``μ`` (see the module docstring) of a face that counts as one: a smaller one
#: is the rounding of the rows (``x_l`` within 1e-10 of the span of others is on their
#: intersection, as :data:`SPAN_RTOL` has it)
FACE_MARGIN = 1e-10

#: relative distance of ``x_l`` to ``span{x_k : k ∈ K}`` below which a neuron on the
#: hyperplanes ``K`` lies on ``x_l``'s too (:func:`pwflow.filippov.implied_hyperplanes`): then
#: ``|<w, x_l>| <= 1e-10 ‖w‖ ‖x_l‖``, the distance at which a neuron counts as on a hyperplane.
#: The numerical rank of ``x_K`` (:func:`span_split`) uses the same scale, so that the span a
#: neuron is projected off is the one the selection rule and the implied hyperplanes saw
SPAN_RTOL = 1e-10


#: Of a face ``F`` (relatively open in its span ``L``, convex) and a new hyperplane ``x``, the
#: two children that the parent's point is not in are empty together: with the point on
#: ``x``'s side ``s``, ``F`` meets ``x^⊥`` iff it reaches the side ``−s``; with the point on
#: ``x^⊥``, ``F`` reaches one side iff ``x`` is not orthogonal to ``L``, and then both.  The
#: face searches that build faces hyperplane by hyperplane (:func:`pwflow.filippov._enumerate`,
#: ``proofs_checks.arrangement``) skip the second :func:`face_point` where the first found
#: its face empty (session 43: a third of the programmes, the same faces); the second case
#: only where the point is on ``x^⊥`` exactly (a point within the side test's tolerance of
#: it may lie in a face that touches ``x^⊥`` without crossing it)
PAIRED_CHILDREN = True


def sibling_empty(side: int, offset: float) -> bool:
    """Whether the other child off the parent's point is empty too, once one of them was
    found empty (:data:`PAIRED_CHILDREN`): ``side`` is the point's side of the new
    hyperplane (0 within the side test's tolerance), ``offset`` its exact ``<x, point>``."""
    return PAIRED_CHILDREN and (side != 0 or offset == 0.0)


def span_split(X: ArrayLike, rtol: float = SPAN_RTOL) -> tuple[int, Array]:
    """Numerical rank of the rows ``X`` and their right singular vectors.

    Parameters
    ----------
    X : array, shape (p, d), p >= 1
        Nonzero rows ``x_k``.
    rtol : float
        Singular values at most ``rtol`` times the largest count as zero (a row within about
        ``rtol`` of the span of the others adds no rank); :func:`span_projector` has the same
        rank.

    Returns
    -------
    rank : int
    vt : ndarray of shape (d, d)
        Orthonormal rows: ``vt[:rank]`` spans the rows, ``vt[rank:]`` their null space.
    """
    _, sv, vt = np.linalg.svd(np.asarray(X, dtype=float))
    return int(np.sum(sv > rtol * sv[0])), vt


def span_projector(X: ArrayLike, rtol: float = SPAN_RTOL) -> Array:
    """Orthogonal projector ``X⁺ X`` onto the numerical span of the rows ``X``, ``(d, d)``: the
    pseudo-inverse drops the singular values :func:`span_split` counts as zero."""
    X = np.asarray(X, dtype=float)
    return np.linalg.pinv(X, rcond=rtol) @ X


def face_point(X: ArrayLike, signs: ArrayLike, margin: float = FACE_MARGIN,
               rank_rtol: float = SPAN_RTOL) -> Array | None:
    """A unit point of the face with sign vector ``signs`` of the rows ``X``, or ``None``.

    Parameters
    ----------
    X : array, shape (p, d)
        Nonzero rows ``x_k`` (normals of the hyperplanes through the origin).
    signs : array of int, shape (p,)
        The sign ``sign <x_k, w>`` asked for each row.
    margin : float
        Faces whose margin ``μ`` is at most this are taken as empty (rounding).
    rank_rtol : float
        Singular values of the zero rows below ``rank_rtol`` times the largest count as zero
        (the null space ``N`` in which the point is sought).

    Returns
    -------
    ndarray of shape (d,) or None
        A point ``w`` with ``‖w‖ = 1`` in the relative interior of the face (the zero vector
        for the all-zero pattern, the face ``{w : X w = 0}`` then containing the origin), or
        ``None`` where no ``w`` has these signs.
    """
    X = np.asarray(X, dtype=float)
    signs = np.asarray(signs)
    units = X / np.linalg.norm(X, axis=1)[:, None]
    signed = signs != 0
    if not np.any(signed):
        return np.zeros(X.shape[1])
    basis = np.eye(X.shape[1])
    if not np.all(signed):
        rank, vt = span_split(units[~signed], rank_rtol)
        basis = vt[rank:].T
    if basis.shape[1] == 0:
        return None
    G = signs[signed, None] * (units[signed] @ basis)
    z = _least_distance(G, margin)
    if z is None:
        return None
    w = basis @ z
    return w / np.linalg.norm(w)


#: fallbacks taken by :func:`nonnegative_least_squares` in this process (scipy's ``nnls``
#: failed its KKT check); read by the tests
NNLS_FALLBACKS = [0]


def nonnegative_least_squares(A: ArrayLike, b: ArrayLike) -> tuple[Array, float]:
    """``argmin_{x >= 0} ‖A x − b‖`` and the residual, checked.

    Lawson–Hanson (``scipy.optimize.nnls``), then its KKT conditions (the gradient
    ``g = Aᵀ(A x − b)`` is ``>= 0``, and 0 where ``x > 0``, to ``1e-9 ‖A‖ (‖A‖ ‖x‖ + ‖b‖)``).
    scipy's reimplementation (1.12 on) can return a wrong point with a residual reported as 0
    (scipy issue 25389; here, generators of a closed face with ``± ker X`` pairs): where the
    check fails, the bounded-variable solver ``lsq_linear(method="bvls")`` is used and
    checked alike.  The residual returned is ``‖A x − b‖`` recomputed, never the solver's.

    Raises
    ------
    RuntimeError
        If neither solver satisfies the KKT conditions.
    """
    from scipy.optimize import lsq_linear, nnls

    A = np.asarray(A, dtype=float)
    b = np.asarray(b, dtype=float)
    x = nnls(A, b)[0]
    if _nnls_kkt_ok(A, b, x):
        return x, float(np.linalg.norm(A @ x - b))
    NNLS_FALLBACKS[0] += 1
    x = np.maximum(lsq_linear(A, b, bounds=(0.0, np.inf), method="bvls", tol=1e-15).x, 0.0)
    if _nnls_kkt_ok(A, b, x):
        return x, float(np.linalg.norm(A @ x - b))
    raise RuntimeError("nonnegative_least_squares: no solver met the KKT conditions "
                       "(non-finite input?)")


def _nnls_kkt_ok(A: Array, b: Array, x: Array) -> bool:
    """KKT conditions of ``min_{x >= 0} ½‖A x − b‖²`` at ``x``, to a relative ``1e-9``."""
    g = A.T @ (A @ x - b)
    nA = math.sqrt(float(np.vdot(A, A)))
    tol = 1e-9 * nA * (nA * math.sqrt(float(x @ x)) + math.sqrt(float(b @ b))) + 1e-300
    # (few numpy calls: the arrangement of d = 5, n = 12 makes 3·10⁵ of these checks; a NaN
    # fails every comparison below)
    return bool(x.min(initial=0.0) >= 0.0 and g.min(initial=0.0) >= -tol
                and np.abs(g[x > 0]).max(initial=0.0) <= tol)


def _least_distance(G: Array, margin: float) -> Array | None:
    """The direction of the minimal-norm ``z`` with ``G z >= 1`` by non-negative least
    squares (Lawson–Hanson), or ``None`` where the residual ``ρ`` says the margin is at most
    ``margin``."""
    E = np.vstack([G.T, np.ones(G.shape[0])])
    e = np.zeros(E.shape[0])
    e[-1] = 1.0
    u, rho = nonnegative_least_squares(E, e)
    if not rho > margin / np.sqrt(1.0 + margin**2):
        return None
    # z = −r_{:-1} / r_{-1} = G^T u / (1 − Σu) loses its digits on a thin face (ρ = 1e-8:
    # 1 − Σu = ρ² is rounding); it is also the minimal-norm solution of g_k·z = 1 on the
    # constraints active at the solution (u_k > 0), which keeps them
    active = u > 0
    z = np.linalg.lstsq(G[active], np.ones(int(active.sum())), rcond=None)[0]
    if not np.min(G @ z) > 0.0:
        return None
    return z
