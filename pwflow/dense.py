"""Dense output of a DOP853 step on the face propagators, and the polynomials read from it.

scipy's DOP853 represents its order-7 dense output in a nested form (``coef[:, 0] = y_old``,
then ``F_1 … F_7``, alternately multiplied by ``x`` and ``1 − x`` for the step fraction
``x ∈ [0, 1]``).  Everything the integrator reads inside a step goes through here:

* :func:`nested` / :func:`nested_derivative` — evaluate such polynomials (and their
  derivative in ``x``), vectorised over rows;
* :func:`scan_grid` — the 65-point grid and the basis on which steps are scanned for a first
  exit or an excursion;
* :func:`propagators_at` — every face's ``Φ_p`` at given step fractions;
  :func:`propagator_rates_at` its derivative (the dense output's defect, for the snapshot check);
* :func:`pair_polynomials` — coefficients of ``ℓ_c · Φ_{p_c}(x) · z_c`` (e.g. ``<x_k, w_j(x)>``,
  ``a_j(x)`` or a coordinate along a ray) for many pairs at once.
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.typing import NDArray

__all__ = ["nested", "nested_derivative", "nested_with_derivative", "nested_basis", "scan_grid",
           "nested_basis_derivative", "propagators_at", "propagator_rates_at", "propagator_pairs",
           "pair_polynomials", "stack_coefficients", "quadratic_form_at"]

Array = NDArray[np.float64]


def nested(coef: Array, x: Array) -> Array:
    """Evaluate scipy's DOP853 nested dense-output form (``coef[:, 0] = y_old``) at ``x``."""
    y = np.zeros_like(x)
    nF = coef.shape[1] - 1
    for i in range(nF):
        y += coef[:, nF - i]
        y *= x if i % 2 == 0 else (1.0 - x)
    return y + coef[:, 0]


def nested_derivative(coef: Array, x: Array) -> Array:
    """Derivative in ``x`` of :func:`nested` (forward mode, same recursion)."""
    return nested_with_derivative(coef, x)[1]


def nested_with_derivative(coef: Array, x: Array) -> tuple[Array, Array]:
    """:func:`nested` and :func:`nested_derivative` from one recursion (the same operations
    as each, so the same numbers bit for bit)."""
    y = np.zeros_like(x)
    dy = np.zeros_like(x)
    nF = coef.shape[1] - 1
    omx = 1.0 - x
    for i in range(nF):
        y += coef[:, nF - i]
        if i % 2 == 0:
            dy = dy * x + y
            y *= x
        else:
            dy = dy * omx - y
            y *= omx
    return y + coef[:, 0], dy


@functools.lru_cache(maxsize=4)
def scan_grid(n_coef: int) -> tuple[Array, Array]:
    """65 points of ``[0, 1]`` and the nested basis there: ``s(grid) = coef @ basis``."""
    grid = np.linspace(0.0, 1.0, 65)
    return grid, nested_basis(grid, n_coef).T


def stack_coefficients(dense, P: int, q: int) -> Array:
    """The dense output of one DOP853 step as an array ``(8, P, q, q)`` (``y_old``, ``F``)."""
    return np.concatenate([dense.y_old[None], dense.F], axis=0).reshape(-1, P, q, q)


def nested_basis(x: Array, n_coef: int) -> Array:
    """Values at ``x`` of the ``n_coef`` basis polynomials of the nested form: ``s(x) =
    nested_basis(x) @ coef`` (the dense output is linear in its coefficients)."""
    x = np.atleast_1d(np.asarray(x, float))
    # one nested evaluation of the unit coefficient vectors, every (x, basis index) a row
    vals = nested(np.tile(np.eye(n_coef), (x.size, 1)), np.repeat(x, n_coef))
    return vals.reshape(x.size, n_coef)


def nested_basis_derivative(x: Array, n_coef: int) -> Array:
    """Derivatives in ``x`` of the basis of :func:`nested_basis`, shape ``(len(x), n_coef)``."""
    x = np.atleast_1d(np.asarray(x, float))
    _, d = nested_with_derivative(np.tile(np.eye(n_coef), (x.size, 1)), np.repeat(x, n_coef))
    return d.reshape(x.size, n_coef)


def propagators_at(F: Array, x: float | Array, faces: NDArray | None = None,
                   rowwise: bool = False) -> Array:
    """Propagators at step fraction ``x``: all faces, or the given ``faces``.

    ``F`` has shape ``(8, P, q, q)`` (:func:`stack_coefficients`).  Scalar ``x`` gives
    ``(P', q, q)``; an array of ``E`` fractions gives ``(E, P', q, q)``; one matrix product
    with the basis values (:func:`nested_basis`).  ``rowwise``: one product per fraction
    instead, so that each row is bit for bit the scalar call's (BLAS rounds a one-row product
    and a stacked one differently, in the last bit).
    """
    if faces is not None:
        F = F[:, faces]
    n_coef, P, q = F.shape[0], F.shape[1], F.shape[2]
    B = nested_basis(x, n_coef)  # (E, n_coef)
    flat = F.reshape(n_coef, -1)
    if rowwise and np.ndim(x):
        rows = [B[i:i + 1] @ flat for i in range(B.shape[0])]
        out = np.stack(rows).reshape(B.shape[0], P, q, q)
    else:
        out = (B @ flat).reshape(B.shape[0], P, q, q)
    return out[0] if np.ndim(x) == 0 else out


def propagator_rates_at(F: Array, x: Array, faces: NDArray | None = None) -> Array:
    """``dΦ/dx`` (per unit step fraction) at the fractions ``x``, shape ``(E, P', q, q)``:
    the derivative of :func:`propagators_at`'s polynomial."""
    if faces is not None:
        F = F[:, faces]
    n_coef, P, q = F.shape[0], F.shape[1], F.shape[2]
    B = nested_basis_derivative(x, n_coef)
    return (B @ F.reshape(n_coef, -1)).reshape(B.shape[0], P, q, q)


def propagator_pairs(F: Array, x: Array, faces: NDArray) -> Array:
    """``Φ_{faces[e]}(x[e])`` for each ``e``: one face per fraction, shape ``(E, q, q)``."""
    B = nested_basis(x, F.shape[0])  # (E, n_coef)
    return np.einsum("ec,cepq->epq", B, F[:, faces])


def quadratic_form_at(G: Array, x: Array) -> Array:
    """``Σ_{c,c'} b_c(x) b_{c'}(x) G[c, c']`` at the step fractions ``x`` (``b``: the nested
    basis, :func:`nested_basis`), shape ``(len(x),) + G.shape[2:]``: a quantity quadratic in
    the dense output, e.g. the outputs of
    :meth:`pwflow.vector_field.CollectiveField.output_polynomial`."""
    nc = G.shape[0]
    B = nested_basis(x, nc)
    Q = (B[:, :, None] * B[:, None, :]).reshape(B.shape[0], nc * nc)
    return (Q @ G.reshape(nc * nc, -1)).reshape((B.shape[0],) + G.shape[2:])


def pair_polynomials(F: Array, pats: NDArray, left: Array, right: Array) -> Array:
    """Coefficients of ``left_c · Φ_{p_c}(x) · right_c`` in the nested form, one row per pair."""
    return np.einsum("icab,ca,cb->ci", F[:, pats], left, right)
