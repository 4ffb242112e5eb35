"""Faces of the central arrangement (:mod:`pwflow.cones`) against a linear programme."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from strategies import low_rank_rows, matrices

from pwflow.cones import face_point, nonnegative_least_squares


def _lp_margin(rows: np.ndarray, signs: np.ndarray) -> float:
    """Independent reference: ``max t`` s.t. ``s_k <x̂_k, w> >= t`` on the signed rows,
    ``<x̂_k, w> = 0`` on the others, ``|w|_∞ <= 1`` (scipy's HiGHS)."""
    from scipy.optimize import linprog

    units = rows / np.linalg.norm(rows, axis=1)[:, None]
    d = rows.shape[1]
    s, z = signs != 0, signs == 0
    c = np.zeros(d + 1)
    c[-1] = -1.0
    kw = {}
    if s.any():
        kw.update(A_ub=np.hstack([-signs[s, None] * units[s], np.ones((int(s.sum()), 1))]),
                  b_ub=np.zeros(int(s.sum())))
    if z.any():
        kw.update(A_eq=np.hstack([units[z], np.zeros((int(z.sum()), 1))]),
                  b_eq=np.zeros(int(z.sum())))
    lp = linprog(c, bounds=[(-1, 1)] * d + [(None, 1)], method="highs", **kw)
    assert lp.status == 0
    return -lp.fun


@given(low_rank_rows(), st.data())
def test_a_sign_vector_is_a_face_iff_a_linear_programme_finds_a_margin(rows, data):
    """The least-distance programme decides as the linear programme does, and the point it
    returns has the signs asked (zero to rounding on the zero rows)."""
    signs = np.array(data.draw(st.lists(st.sampled_from([-1, 0, 1]), min_size=rows.shape[0],
                                        max_size=rows.shape[0])), dtype=np.int8)
    margin = _lp_margin(rows, signs)
    assume(not 1e-9 < margin < 1e-6)  # a margin at the rounding of the rows: not decided here
    w = face_point(rows, signs)
    if not np.any(signs):
        np.testing.assert_array_equal(w, 0.0)
        return
    assert (w is not None) == (margin > 1e-6)
    if w is not None:
        assert abs(np.linalg.norm(w) - 1.0) <= 1e-12
        v = (rows @ w) / np.linalg.norm(rows, axis=1)
        assert np.all(np.abs(v[signs == 0]) <= 1e-12)
        assert np.all(signs[signs != 0] * v[signs != 0] > 0)


@pytest.mark.parametrize("eps, want", [(1e-4, True), (1e-8, True), (1e-11, False), (0.0, False)])
def test_a_thin_face_is_found_down_to_the_span_tolerance(eps, want):
    """``x_0 = (1, 0)``, ``x_1 = (1, ε)``: the sector ``(+, −)`` has margin ``~ε/2``, the ray
    ``(+, 0)`` margin ``ε``; both are faces down to ``ε = 1e-8`` (the point found has the signs
    asked, though ``1 − Σu`` of the least-distance residual is rounding there), neither below
    1e-10 (``x_1`` is then on ``x_0``'s hyperplane to the span tolerance) nor at ``ε = 0``."""
    rows = np.array([[1.0, 0.0], [1.0, eps]])
    for signs in ([1, -1], [1, 0]):
        w = face_point(rows, np.array(signs))
        assert (w is not None) is want
        if want:
            v = rows @ w
            assert v[0] > 0 and (v[1] < 0 if signs[1] < 0 else abs(v[1]) <= 1e-15)


def _nnls_brute_force(A: np.ndarray, b: np.ndarray) -> float:
    """Independent reference for ``min_{x >= 0} ‖A x − b‖``: by Carathéodory the optimal
    point of the cone is a nonnegative combination of linearly independent columns, so the
    least of the residuals of the unconstrained least squares on every independent subset
    of columns whose solution is nonnegative (and ``‖b‖``, the empty subset) is the minimum."""
    import itertools

    best = float(np.linalg.norm(b))
    for size in range(1, min(A.shape) + 1):
        for S in itertools.combinations(range(A.shape[1]), size):
            As = A[:, S]
            if np.linalg.matrix_rank(As) < size:
                continue
            x = np.linalg.lstsq(As, b, rcond=None)[0]
            if np.all(x >= -1e-12):
                best = min(best, float(np.linalg.norm(As @ np.maximum(x, 0) - b)))
    return best


@given(data=st.data(), m=st.integers(1, 6), k=st.integers(1, 5), pairs=st.booleans())
def test_nonnegative_least_squares_against_brute_force(data, m, k, pairs):
    """``min_{x >= 0} ‖A x − b‖`` against the enumeration of the column subsets, with columns
    in ``±`` pairs in half the draws (a face's lineality space): the residual is the
    minimum, and it is the one of the returned ``x``."""
    A = data.draw(matrices(m, k), label="A")
    if pairs:
        A = np.hstack([A, -A])
    b = data.draw(matrices(m, 0), label="b")
    x, rho = nonnegative_least_squares(A, b)
    assert np.all(x >= 0) and rho == pytest.approx(np.linalg.norm(A @ x - b), abs=1e-15)
    assert rho == pytest.approx(_nnls_brute_force(A, b), abs=1e-9)


def test_nonnegative_least_squares_where_scipy_nnls_reports_a_false_zero():
    """A half-space ``{<w, x> >= 0}`` of R^5 given as ``x`` and ``± a basis of x^⊥``; ``b =
    −x`` is at distance ``‖x‖`` from it.  scipy 1.15–1.17's ``nnls`` returned a point at
    distance 2.2 with a residual of 0 (scipy issue 25389); the checked solve gives ``‖x‖``."""
    x = np.array([-0.42097099, 0.2407868, 0.09914843, 0.7345802, 0.7062745])
    L = np.linalg.svd(x[None])[2][1:]
    A = np.vstack([x / np.linalg.norm(x), L, -L]).T
    from scipy.optimize import nnls

    import pwflow.cones as cones

    raw = nnls(A, -x)[0]
    scipy_wrong = abs(np.linalg.norm(A @ raw + x) - np.linalg.norm(x)) > 1e-9
    before = cones.NNLS_FALLBACKS[0]
    x_opt, rho = nonnegative_least_squares(A, -x)
    assert rho == pytest.approx(np.linalg.norm(x), rel=1e-12)
    assert np.linalg.norm(A @ x_opt) <= 1e-12
    # the fallback is taken exactly where scipy's answer is wrong (scipy 1.17.1: it is)
    assert cones.NNLS_FALLBACKS[0] - before == int(scipy_wrong)
