"""The minimal-norm subgradient D(w, θ) (Section 3) against brute force, and event primitives."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pwflow.dense import nested as _nested
from pwflow.events import locate_roots
from pwflow.subgradient import (
    activation_pattern,
    box_least_squares,
    face_slopes,
    fixed_part,
    minimal_norm_on_face,
    minimal_norm_on_face_rows,
    minimal_norm_subgradient,
    parallel_classes,
)
from pwflow.vector_field import lorentz_inverse, lorentz_project
from strategies import matrices


@given(data=st.data(), n=st.integers(1, 7), d=st.integers(1, 5), faces=st.integers(1, 5),
       times=st.integers(0, 3), gamma=st.sampled_from([0.0, 0.1, 0.5]))
def test_fixed_part_is_the_sum_over_the_points(data, n, d, faces, times, gamma):
    """``b = −(1/n) Σ_k η_k r_k x_k`` written as a loop over the points, for one face's slopes
    and for a stack of faces, with one residual vector or several (leading axis): every
    layout the stepper, the Filippov rule and the checks use."""
    X = data.draw(matrices(n, d), label="X")
    U = np.sign(data.draw(matrices(faces, n), label="U")).astype(np.int8)  # zeros: free
    R = data.draw(matrices(max(times, 1), n), label="R")
    eta = face_slopes(U, gamma)
    loop = np.zeros((R.shape[0], faces, d))
    for t in range(R.shape[0]):
        for p in range(faces):
            for k in range(n):
                loop[t, p] -= eta[p, k] * R[t, k] * X[k] / n
    tol = 1e-14 * (1.0 + np.abs(eta) @ np.abs(X)).max()
    r = R if times else R[0]
    got = fixed_part(eta, r, X)
    assert got.shape == ((times,) if times else ()) + (faces, d)
    np.testing.assert_allclose(got, loop if times else loop[0], rtol=0, atol=tol)
    one = fixed_part(eta[0], r, X)  # one face: shape (..., d)
    np.testing.assert_allclose(one, loop[:, 0] if times else loop[0, 0], rtol=0, atol=tol)


@given(
    data=st.data(),
    p=st.integers(1, 4),
    d=st.integers(1, 4),
    lo=st.sampled_from([0.0, 0.2, 0.5]),
)
def test_box_least_squares_beats_dense_grid(data, p, d, lo):
    b = data.draw(matrices(d, 0), label="b")
    Z = data.draw(matrices(d, p), label="Z")
    eta = box_least_squares(b, Z, lo, 1.0)
    assert np.all((eta >= lo) & (eta <= 1.0))
    val = np.linalg.norm(b + Z @ eta)
    # a grid of 11^p points of the box: the exact minimum is never above the best grid value
    grid = np.linspace(lo, 1.0, 11)
    best = min(np.linalg.norm(b + Z @ np.array(c)) for c in itertools.product(grid, repeat=p))
    assert val <= best + 1e-12
    # KKT: the gradient Zᵀ(b + Zη) is ≥ 0 at the lower bound, ≤ 0 at the upper, 0 inside
    g = Z.T @ (b + Z @ eta)
    tol = 1e-9 * max(1.0, np.linalg.norm(Z) ** 2)
    assert np.all(g[eta == lo] >= -tol) and np.all(g[eta == 1.0] <= tol)
    inside = (eta > lo) & (eta < 1.0)
    assert np.all(np.abs(g[inside]) <= tol)


def test_box_least_squares_large_uses_bvls_and_passes_kkt():
    rng = np.random.default_rng(1)
    b, Z = rng.normal(size=12), rng.normal(size=(12, 9))
    eta = box_least_squares(b, Z, 0.0, 1.0)
    from scipy.optimize import lsq_linear

    ref = lsq_linear(Z, -b, bounds=(0.0, 1.0), method="trf", tol=1e-14)
    assert np.linalg.norm(b + Z @ eta) <= np.linalg.norm(b + Z @ ref.x) + 1e-10


@given(data=st.data(), d=st.integers(2, 5), n=st.integers(1, 8), s=st.integers(1, 4),
       gamma=st.sampled_from([0.0, 0.1, 0.5]), parallel=st.booleans())
def test_minimal_norm_on_face_rows_is_minimal_norm_on_face_row_by_row(data, d, n, s, gamma,
                                                                      parallel):
    """The batched ``D_u^θ`` (Lemma 11 reads every face at every snapshot) against the
    one-residual function, on any pattern (``|K|`` from 0 to ``n``: the closed forms for one
    and two free slopes, the row-by-row path beyond) with, optionally, a point parallel or
    opposite to another (coupled slopes, N3)."""
    X = data.draw(matrices(n, d, 0.1, 2.0), label="X") * data.draw(
        st.lists(st.sampled_from([-1.0, 1.0]), min_size=n, max_size=n).map(np.array)
    )[:, None]
    if parallel and n >= 2:
        X[-1] = data.draw(st.sampled_from([-2.0, -1.0, 0.5, 3.0]), label="c") * X[0]
    u = np.array(data.draw(st.lists(st.sampled_from([-1, 0, 1]), min_size=n, max_size=n),
                           label="u"))
    R = data.draw(matrices(s, n), label="R")
    D = minimal_norm_on_face_rows(u, X, R, gamma)
    assert D.shape == (s, d)
    scale = 1.0 + np.abs(R) @ np.linalg.norm(X, axis=1) / n
    for i in range(s):
        ref = minimal_norm_on_face(u, X, R[i], gamma).D
        assert np.linalg.norm(D[i] - ref) <= 1e-12 * scale[i], (i, D[i], ref)


def test_minimal_norm_on_face_rows_refuses_a_wrong_shape():
    with pytest.raises(ValueError, match="R must have shape"):
        minimal_norm_on_face_rows([1, 0], np.eye(2), np.ones(3), 0.0)


def test_minimal_norm_subgradient_on_a_hyperplane_is_orthogonal_when_interior():
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    r = np.array([-1.0, -0.5, 0.3])
    w = np.array([0.0, 1.0])  # on x_1^⊥, active on x_2 and x_3
    res = minimal_norm_subgradient(w, X, r, gamma=0.0)
    np.testing.assert_array_equal(res.free, [0])
    # brute force over η_1 ∈ [0, 1]
    etas = np.linspace(0, 1, 100001)
    D = -(etas[:, None] * r[0] * X[0] + r[1] * X[1] + r[2] * X[2]) / 3
    i = np.argmin(np.linalg.norm(D, axis=1))
    np.testing.assert_allclose(res.D, D[i], atol=1e-5)
    if 0 < res.eta[0] < 1:
        assert abs(res.D @ X[0]) <= 1e-14  # Filippov: the neuron stays on the hyperplane


def test_activation_pattern_and_face_agree():
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    u = activation_pattern([1.0, 0.0], X)
    np.testing.assert_array_equal(u, [1, 0])
    a = minimal_norm_on_face(u, X, np.array([-1.0, -1.0]), 0.3)
    b = minimal_norm_subgradient([2.0, 0.0], X, np.array([-1.0, -1.0]), 0.3)
    np.testing.assert_allclose(a.D, b.D)


def test_locate_roots_of_known_polynomials():
    # s(x) = (x − c) in nested form: coefficients chosen so that only the linear part remains
    rng = np.random.default_rng(0)
    roots = rng.uniform(0.05, 0.95, size=50)
    # nested form with F_7 = ... = 0: y = ((F1 x)) ... build s(x) = −c + x via F1 = 1 at i = 6
    coef = np.zeros((50, 8))
    coef[:, 0] = -roots
    coef[:, 1] = 1.0  # the last F multiplies x once (i = 6 is even → times x)
    vals = _nested(coef, np.full(50, 0.3))
    np.testing.assert_allclose(vals, 0.3 - roots)
    x, res = locate_roots(coef)
    np.testing.assert_allclose(x, roots, rtol=0, atol=4e-16)
    assert np.all(np.abs(res) <= 4e-16)


def test_lorentz_projection_restores_the_invariant():
    rng = np.random.default_rng(2)
    g = rng.normal(size=2)
    M = np.zeros((3, 3))
    M[:2, 2] = g
    M[2, :2] = g
    from scipy.linalg import expm

    Phi = expm(M * 0.7)
    J = np.diag([-1.0, -1.0, 1.0])
    noisy = Phi + 1e-9 * rng.normal(size=(3, 3))
    fixed = lorentz_project(noisy)
    assert np.max(np.abs(noisy.T @ J @ noisy - J)) > 1e-10
    assert np.max(np.abs(fixed.T @ J @ fixed - J)) < 1e-15 * 1e3
    np.testing.assert_allclose(lorentz_inverse(Phi) @ Phi, np.eye(3), atol=1e-13)


# ---------------------------------------------------------------------------- parallel points (N3)
def test_parallel_points_share_one_slope():
    """The counterexample of docs/paper-readings.md N3: with x_2 = 2 x_1 and r = (1, −1) the
    loss on the common hyperplane is −σ(<w, x_1>), whose Clarke subdifferential is −[γ, 1] x_1
    (times −1/n): its least-norm element is (γ/n) x_1, while Eq. (6)'s independent slopes
    would reach 0."""
    from pwflow.subgradient import free_slopes, parallel_classes

    X = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    r = np.array([1.0, -1.0, 0.0])
    gamma, n = 0.5, 3
    u = np.array([0, 0, 1], dtype=np.int8)  # w = e_2: on the common hyperplane of x_1, x_2
    res = minimal_norm_on_face(u, X, r, gamma)
    np.testing.assert_allclose(res.D, [gamma / n, 0.0], atol=1e-15)
    assert res.eta[0] == res.eta[1] == gamma
    # the literal reading (independent slopes) is smaller: it is not the Clarke element
    Z = (-(r[:2, None] * X[:2]) / n).T
    literal = box_least_squares(np.zeros(2), Z, gamma, 1.0)
    assert np.linalg.norm(Z @ literal) < 1e-15
    rep, orient = parallel_classes(X[:2])
    assert rep.tolist() == [0, 0] and orient.tolist() == [1, 1]
    np.testing.assert_allclose(free_slopes(np.zeros(2), Z, gamma, (rep, orient)), [gamma, gamma])


@st.composite
def _classes_problem(draw):
    d = draw(st.integers(2, 5))
    heads = draw(st.integers(1, d))
    floats = st.floats(-2.0, 2.0, allow_nan=False).filter(lambda v: abs(v) > 0.05)
    H = np.array(draw(st.lists(st.lists(floats, min_size=d, max_size=d), min_size=heads,
                               max_size=heads)))
    assume(np.linalg.matrix_rank(H) == heads)
    extra = draw(st.lists(st.tuples(st.integers(0, heads - 1),
                                    st.sampled_from([-2.0, -1.0, -0.5, 0.5, 3.0])),
                          min_size=1, max_size=4))
    XK = np.vstack([H] + [c * H[k:k + 1] for k, c in extra])
    p = XK.shape[0]
    r = np.array(draw(st.lists(st.floats(-2.0, 2.0, allow_nan=False), min_size=p, max_size=p)))
    b = np.array(draw(st.lists(st.floats(-2.0, 2.0, allow_nan=False), min_size=d, max_size=d)))
    gamma = draw(st.sampled_from([0.0, 0.1, 0.5]))
    return XK, r, b, gamma


@given(_classes_problem())
def test_free_slopes_against_an_independent_parameterisation(prob):
    """Random classes of parallel points (both orientations): ``free_slopes`` reaches the
    least norm of the reference's own parameterisation (θ ∈ [0, 1] per class, scipy BVLS and
    brute force, tests/reference.py) and its slopes respect the ties."""
    from reference import _enumerate, _tied_columns
    from scipy.optimize import lsq_linear

    from pwflow.subgradient import free_slopes, parallel_classes

    XK, r, b, gamma = prob
    n = XK.shape[0]
    Z = (-(r[:, None] * XK) / n).T
    rep, orient = parallel_classes(XK)
    eta = free_slopes(b, Z, gamma, (rep, orient))
    assert np.all((eta >= gamma) & (eta <= 1.0))
    tied = np.where(orient > 0, eta[rep], 1.0 + gamma - eta[rep])
    np.testing.assert_allclose(eta, tied, atol=1e-12)
    b2, Z2, cls, sgn = _tied_columns(XK, b, Z, gamma)
    assert np.array_equal(cls, np.unique(rep, return_inverse=True)[1])
    theta = np.clip(lsq_linear(Z2, -b2, bounds=(0.0, 1.0), method="bvls", tol=1e-14).x, 0, 1)
    theta_b = _enumerate(b2, Z2, 0.0, 1.0)
    ref = min(np.linalg.norm(b2 + Z2 @ theta), np.linalg.norm(b2 + Z2 @ theta_b))
    got = np.linalg.norm(b + Z @ eta)
    scale = np.linalg.norm(b) + np.sum(np.linalg.norm(Z, axis=0)) + 1e-300
    assert got <= ref + 1e-12 * scale


def test_free_slopes_without_classes_is_the_box_problem():
    from pwflow.subgradient import free_slopes

    rng = np.random.default_rng(0)
    b, Z = rng.normal(size=4), rng.normal(size=(4, 3))
    np.testing.assert_array_equal(free_slopes(b, Z, 0.1), box_least_squares(b, Z, 0.1, 1.0))


@st.composite
def _pair_problems(draw):
    """Rows of two-slope problems ``(b, z1, z2)``: minimisers drawn inside the box, near its
    edges or outside it, ``b`` built from them (plus noise), nearly parallel ``z`` at times."""
    rows, d = draw(st.integers(1, 5)), draw(st.integers(2, 5))
    fl = st.floats(-3, 3, allow_nan=False, allow_subnormal=False)
    z1 = np.array(draw(st.lists(fl, min_size=rows * d, max_size=rows * d))).reshape(rows, d)
    z2 = np.array(draw(st.lists(fl, min_size=rows * d, max_size=rows * d))).reshape(rows, d)
    if draw(st.booleans()):
        z2 = draw(st.floats(-2, 2)) * z1 + draw(st.sampled_from([0.0, 1e-9, 1e-4])) * z2
    eta = np.array(draw(st.lists(st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0, 1.0 + 1e-9,
                                                  -0.3, 1.4, 1e-9, 0.5 + 1e-7]),
                                 min_size=2 * rows, max_size=2 * rows))).reshape(rows, 2)
    noise = draw(st.sampled_from([0.0, 1e-12, 1e-3]))
    b = -(eta[:, :1] * z1 + eta[:, 1:] * z2) + noise * z1[:, ::-1]
    return b, z1, z2


@given(prob=_pair_problems(), lo=st.sampled_from([0.0, 0.1, 0.5]))
def test_pair_slopes_never_beaten_by_an_edge(prob, lo):
    """``pair_slopes`` (which keeps the interior point without comparing it to the edges where
    it clearly wins) is no worse than any edge's minimiser, row by row, and feasible."""
    from pwflow.subgradient import pair_slopes, single_slope

    b, z1, z2 = prob
    eta = pair_slopes(b, z1, z2, lo, 1.0)
    assert np.all((eta >= lo) & (eta <= 1.0))
    val = np.linalg.norm(b + eta[:, :1] * z1 + eta[:, 1:] * z2, axis=1)
    # rounding of the residual's terms (both minima 0 in exact arithmetic: z1 = z2 and
    # b = −1.5 z1 gave 1.4e-15 against 2e-16 under the thorough profile)
    scale = 8 * np.finfo(float).eps * (np.linalg.norm(b, axis=1) + np.linalg.norm(z1, axis=1)
                                       + np.linalg.norm(z2, axis=1))
    for fixed, (zf, zo) in itertools.product([lo, 1.0], [(z1, z2), (z2, z1)]):
        bf = b + fixed * zf
        other = single_slope(np.einsum("ij,ij->i", bf, zo), np.einsum("ij,ij->i", zo, zo),
                             lo, 1.0)[0]
        edge = np.linalg.norm(bf + other[:, None] * zo, axis=1)
        assert np.all(val <= edge * (1 + 1e-12) + scale + 1e-300)


@given(prob=_pair_problems(), lo=st.sampled_from([0.0, 0.1, 0.5]))
def test_pair_slopes_scalar_rows_match_the_array_path(prob, lo):
    """The few-row path in Python floats gives the array path's numbers bit for bit (where
    ``_scalar_order_ok`` says numpy's short sums are reproduced; always on this machine)."""
    from pwflow import subgradient

    b, z1, z2 = prob
    rows = subgradient._SCALAR_ROWS
    try:
        subgradient._SCALAR_ROWS = -1  # the array path for every size
        array = subgradient.pair_slopes(b, z1, z2, lo, 1.0)
    finally:
        subgradient._SCALAR_ROWS = rows
    if subgradient._scalar_order_ok(b.shape[1]):
        assert np.array_equal(subgradient._pair_slopes_rows(b, z1, z2, lo, 1.0), array)
    assert np.array_equal(subgradient.pair_slopes(b, z1, z2, lo, 1.0), array)


def test_box_least_squares_with_a_zero_column_on_its_bound():
    """Degenerate campaign (camp9, seed 46 of its second family): ``r_k = 0`` makes zero
    columns of ``Z``; from this warm start the free solve put one at the bound it sat on
    (``dz = 0``), the step length came out ``0/0`` and ``inf · 0`` gave NaN — under
    ``simulate``'s ``errstate(invalid='raise')`` the run refused the data as "too large"."""
    b = np.array([-0.00775146484375, 0.00775146484375, -0.00775146484375, 0.0])
    Z = np.array([[0, 0, -0.015594482421875, -0.061767578125, 0, 0],
                  [0, 0, 0, 0.007720947265625, 0, 0],
                  [0, 0, 0.015594482421875, 0.023162841796875, 0, 0],
                  [0, 0, -0.015594482421875, -0.0308837890625, 0, 0]])
    start = np.array([7.494005416219807e-16, 0.0, 9.941291585127197e-01, 0.0, 0.0, 0.0])
    with np.errstate(invalid="raise", over="raise"):
        x = box_least_squares(b, Z, 0.0, 1.0, start)
    assert np.all((x >= 0.0) & (x <= 1.0))
    # the minimum over the box, independently (scipy's BVLS)
    from scipy.optimize import lsq_linear

    ref = lsq_linear(Z, -b, bounds=(0.0, 1.0), method="bvls", tol=1e-15).x
    assert np.linalg.norm(b + Z @ x) <= np.linalg.norm(b + Z @ ref) * (1 + 1e-12)



@given(data=st.data(), p=st.integers(3, 6), d=st.integers(2, 5),
       lo=st.sampled_from([0.0, 0.1, 0.5]),
       scale=st.sampled_from([1e-200, 1e-187, 1e-170, 1e-160]), whole=st.booleans())
def test_box_least_squares_at_scales_whose_squares_underflow(data, p, d, lo, scale, whole):
    """The box problem is invariant under ``(b, Z) → (c b, c Z)`` (the same minimisers): at
    scales whose squares underflow, the whole problem or some columns alone (``r_k`` of the
    logistic loss at a margin of 430 is 1e-187), the solver still returns a KKT point of the
    scaled problem, and the whole problem's ``D / c`` is the unscaled one's.  Before
    ``stable_norm``, ``‖Z‖`` came out 0 and the tolerance refused every minimiser:
    ``RuntimeError`` (found by the thorough profile of ``test_patterns``)."""
    from pwflow.subgradient import kkt_tolerance, kkt_violation, stable_norm

    b = data.draw(matrices(d, 0), label="b")
    Z = data.draw(matrices(d, p), label="Z")
    if whole:
        bs, Zs = scale * b, scale * Z
    else:  # a few columns at that scale, the rest as drawn (b too)
        cols = np.array(data.draw(st.lists(st.booleans(), min_size=p, max_size=p), label="cols"))
        bs, Zs = b, np.where(cols, scale * Z, Z)
    with np.errstate(under="ignore"):
        eta = box_least_squares(bs, Zs, lo, 1.0)
        assert np.all((eta >= lo) & (eta <= 1.0))
        tol = kkt_tolerance(stable_norm(bs), stable_norm(Zs), lo, 1.0)
        assert kkt_violation(bs, Zs, eta, lo, 1.0) <= 1e3 * tol
        if whole:
            ref = b + Z @ box_least_squares(b, Z, lo, 1.0)
            size = 1.0 + np.linalg.norm(b) + np.linalg.norm(Z)
            np.testing.assert_allclose((bs + Zs @ eta) / scale, ref, rtol=0, atol=1e-9 * size)


def test_stable_norm_is_the_plain_norm_within_the_normal_squares():
    """``stable_norm``: ``np.linalg.norm``'s own bits where the squares are normal, the scaled
    norm where they underflow or overflow (which the plain norm gives as 0 or inf)."""
    from pwflow.subgradient import stable_norm

    A = np.array([[3.0, -4.0], [1e-3, 2.0]])
    assert stable_norm(A) == float(np.linalg.norm(A))
    for c in (1e-200, 1e200):
        with np.errstate(under="ignore", over="ignore"):
            assert float(np.linalg.norm(c * A)) in (0.0, np.inf)
        assert stable_norm(c * A) == pytest.approx(c * float(np.linalg.norm(A)), rel=1e-14)
    assert stable_norm(np.zeros((2, 2))) == 0.0


@given(d=st.integers(2, 6), exponent=st.integers(-14, -6), sign=st.sampled_from([-1.0, 1.0]),
       coords=st.lists(st.floats(-2.0, 2.0, allow_nan=False), min_size=12, max_size=12))
def test_parallel_classes_agree_with_implied_hyperplanes(d, exponent, sign, coords):
    """Two points at an angle ``δ = 10^exponent`` (same or opposite direction) form one class
    exactly where :func:`pwflow.filippov.implied_hyperplanes` puts each on the other's
    hyperplane: both cut at ``SPAN_RTOL`` on the sine.  (The class test once compared
    ``1 − |cos|`` with 1e-12, i.e. an angle of 1.4e-6: points 1e-8 apart were tied to one slope
    while every span held them apart.)"""
    from pwflow.cones import SPAN_RTOL
    from pwflow.filippov import implied_hyperplanes
    from pwflow.subgradient import parallel_classes

    # exactly at the cut (δ = SPAN_RTOL) the two sines, computed in different orders, may
    # fall on either side of it: that draw decides nothing (thorough profile, d = 3)
    assume(10.0 ** exponent != SPAN_RTOL)
    x = np.array(coords[:d])
    assume(np.linalg.norm(x) > 0.1)
    v = np.array(coords[6:6 + d]) - x * (x @ np.array(coords[6:6 + d])) / (x @ x)
    assume(np.linalg.norm(v) > 0.1)
    delta = 10.0 ** exponent
    x2 = sign * 3.0 * (np.cos(delta) * x / np.linalg.norm(x) + np.sin(delta) * v / np.linalg.norm(v))
    X = np.vstack([x, x2])
    rep, orient = parallel_classes(X)
    together = rep[1] == 0
    implied = implied_hyperplanes(X, np.array([0, 1], dtype=np.int8)).size == 1
    assert together == implied
    if abs(delta) < 0.1 * SPAN_RTOL:
        assert together and orient[1] == sign
    if delta > 10 * SPAN_RTOL:
        assert not together


@settings(suppress_health_check=[HealthCheck.filter_too_much])
@given(d=st.integers(2, 6), data=st.data(),
       angle=st.sampled_from([0.0, 1e-15, 3e-11, 9e-11, 2e-10, 1e-7]),
       c=st.sampled_from([1.0, -1.0, 2.0, -0.3]))
def test_snap_parallel_makes_a_class_exactly_parallel_and_leaves_the_rest(d, data, angle, c):
    """:func:`pwflow.subgradient.snap_parallel`: a point at an angle below ``SPAN_RTOL`` from
    another (a class of :func:`parallel_classes`) becomes its multiple to rounding, moved by
    about that angle (relative); above it, or already parallel to rounding, nothing moves."""
    from pwflow.subgradient import PARALLEL_ROUNDING, snap_parallel

    x0 = data.draw(matrices(d, 0), label="x0")
    xi = data.draw(matrices(d, 0), label="xi")
    assume(np.linalg.norm(x0) > 0.5)
    xi = xi - (xi @ x0) / (x0 @ x0) * x0  # orthogonal to x0: the angle is its length
    assume(np.linalg.norm(xi) > 0.1)
    x1 = c * x0 + angle * abs(c) * np.linalg.norm(x0) * xi / np.linalg.norm(xi)
    other = data.draw(matrices(1, d), label="other")[0]
    assume(np.linalg.norm(other) > 0.1)
    assume(np.linalg.norm(np.outer(other, x0) - np.outer(x0, other)) > 1e-3 * np.linalg.norm(x0))
    X = np.vstack([x0, x1, other])
    out, moved = snap_parallel(X)
    assert np.array_equal(out[[0, 2]], X[[0, 2]]) and moved[0] == moved[2] == 0.0
    if angle <= 1e-15 or angle > 1e-10:
        assert np.array_equal(out[1], X[1]) and moved[1] == 0.0
    else:
        assert abs(moved[1] - angle) <= 1e-3 * angle
        u0 = out[0] / np.linalg.norm(out[0])
        u1 = out[1] / np.linalg.norm(out[1])
        assert np.linalg.norm(u1 - (u1 @ u0) * u0) <= PARALLEL_ROUNDING
        assert np.linalg.norm(out[1] - X[1]) <= 1.001 * angle * np.linalg.norm(X[1])


@given(seed=st.integers(0, 2**32 - 1), d=st.integers(2, 8), n=st.integers(257, 600),
       planted=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6),
                                  st.sampled_from([1.0, -1.0, 3.0, -0.5]),
                                  st.sampled_from([0.0, 1e-14, 5e-11, 9.9e-11, 1.1e-10, 1e-8])),
                        min_size=1, max_size=6))
def test_parallel_classes_of_many_rows_are_those_of_the_dense_comparison(seed, d, n, planted):
    """Above ``_DENSE_CLASSES`` rows :func:`parallel_classes` compares each row only with the
    candidates of a sorted projection; the classes are those of comparing every pair, with
    planted parallel, antiparallel and near-parallel pairs (angles around ``SPAN_RTOL``)."""
    import pwflow.subgradient as sg

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    for i, j, c, angle in planted:
        i, j = i % n, j % n
        if i == j:
            continue
        xi = rng.normal(size=d)
        xi -= (xi @ X[i]) / (X[i] @ X[i]) * X[i]
        X[j] = c * X[i] + angle * abs(c) * np.linalg.norm(X[i]) * xi / np.linalg.norm(xi)
    fast = parallel_classes(X)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sg, "_DENSE_CLASSES", 10**9)
        dense = parallel_classes(X)
    assert np.array_equal(fast[0], dense[0]) and np.array_equal(fast[1], dense[1])


@settings(suppress_health_check=[HealthCheck.filter_too_much])
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(3, 6), n=st.integers(4, 12),
       planted=st.lists(st.tuples(st.lists(st.integers(0, 10**6), min_size=3, max_size=5),
                                  st.sampled_from([0.0, 1e-15, 3e-11, 9e-11, 2e-10, 1e-8])),
                        min_size=1, max_size=3))
def test_snap_dependent_moves_the_later_point_onto_the_nearest_span(seed, d, n, planted):
    """:func:`pwflow.subgradient.snap_dependent` against brute force (least squares on every
    span of ``s = 2 … d − 1`` earlier points, the smallest ``s`` first): a point within
    ``SPAN_RTOL`` of such a span, and not on one to rounding, moves onto the nearest one of
    the smallest size (as its points are after the snap), by that distance; no other point
    moves.  Planted points lie near spans of two to four earlier points."""
    from pwflow.subgradient import PARALLEL_ROUNDING, SPAN_RTOL, snap_dependent

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    for idx, dist in planted:
        pts = sorted({i % n for i in idx})
        if len(pts) < 3 or len(pts) > d:
            continue
        *S, k = pts
        xi = rng.normal(size=d)
        B = np.linalg.qr(X[S].T)[0].T
        xi -= (xi @ B.T) @ B
        X[k] = rng.normal(size=len(S)) @ X[S]
        X[k] += dist * np.linalg.norm(X[k]) * xi / np.linalg.norm(xi)
    out, moved = snap_dependent(X)
    U = X / np.linalg.norm(X, axis=1)[:, None]

    def borderline(dist):  # within rounding of a threshold: either decision is right
        return (0.1 * PARALLEL_ROUNDING < dist < 10 * PARALLEL_ROUNDING
                or 0.99 * SPAN_RTOL < dist < 1.01 * SPAN_RTOL)

    def decide(q):
        """``(distance, S)`` of the smallest size with a span within ``SPAN_RTOL`` (``S``
        ``None`` where ``x_q`` is on one to rounding, or on none), and whether unsure."""
        unsure = False
        for size in range(2, d):
            best, where = np.inf, None
            for S in itertools.combinations(range(q), size):
                A = U[list(S)].T
                low = np.linalg.svd(A, compute_uv=False)[-1]
                unsure |= bool(0.1 * SPAN_RTOL < low < 10 * SPAN_RTOL)
                if low <= SPAN_RTOL:
                    continue  # dependent points: the span of fewer
                dist = np.linalg.norm(U[q] - A @ np.linalg.lstsq(A, U[q], rcond=None)[0])
                unsure |= bool(borderline(dist))
                if dist < best:
                    best, where = dist, S
            if best <= SPAN_RTOL:
                return best, (where if best > PARALLEL_ROUNDING else None), unsure
        return np.inf, None, unsure

    for q in range(n):
        best, where, unsure = decide(q)
        if unsure:
            continue
        if where is None:
            assert moved[q] == 0.0 and np.array_equal(out[q], X[q]), q
            continue
        assert abs(moved[q] - best) <= 1e-3 * best + 1e-15, (q, moved[q], best)
        # on the span of its points as snapped themselves (an earlier point may have moved)
        S = list(where)
        coef = np.linalg.lstsq(out[S].T, out[q], rcond=None)[0]
        assert np.linalg.norm(out[q] - out[S].T @ coef) <= 1e-13 * np.linalg.norm(out[q])
        # by the distance, plus what the span's own points moved (times their weights)
        shift = np.abs(coef) @ np.linalg.norm(out[S] - X[S], axis=1)
        assert np.linalg.norm(out[q] - X[q]) <= 1.001 * best * np.linalg.norm(X[q]) + 1.001 * shift


@st.composite
def _pinned_problems(draw):
    """A box least-squares problem ``(b, Z)`` with its minimiser drawn inside, on or
    outside the box, and one slope ``i`` and bound to pin."""
    d, p = draw(st.integers(2, 5)), draw(st.integers(1, 4))
    p = min(p, d)
    fl = st.floats(-3, 3, allow_nan=False, allow_subnormal=False)
    Z = np.array(draw(st.lists(fl, min_size=d * p, max_size=d * p))).reshape(d, p)
    assume(np.linalg.matrix_rank(Z, tol=1e-6) == p)
    eta = np.array(draw(st.lists(st.sampled_from([-0.4, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0, 1.3]),
                                 min_size=p, max_size=p)))
    b = -Z @ eta
    if draw(st.booleans()):  # off the span: a residual at the minimiser
        b = b + np.array(draw(st.lists(fl, min_size=d, max_size=d)))
    return b, Z, draw(st.integers(0, p - 1)), draw(st.booleans())


@given(prob=_pinned_problems(), lo=st.sampled_from([0.0, 0.1, 0.5]))
def test_pinned_gap_is_nonnegative_exactly_where_the_box_minimiser_sits_on_the_bound(prob, lo):
    """:func:`pinned_gap` against scipy's BVLS (``lsq_linear``): a gap clearly positive has
    the box minimiser's slope on the pinned bound, a gap clearly negative has it off it; for
    one slope it is ``‖z‖² (bound − η*)`` with the sign of the bound's side."""
    from scipy.optimize import lsq_linear

    from pwflow.subgradient import pinned_gap

    b, Z, i, upper = prob
    gap = pinned_gap(b, Z, i, upper, lo, 1.0)
    bound = 1.0 if upper else lo
    ref = lsq_linear(Z, -b, bounds=(lo, 1.0), method="bvls", tol=1e-15).x
    scale = (np.linalg.norm(b) + np.linalg.norm(Z)) * np.linalg.norm(Z[:, i])
    if gap > 1e-6 * scale:
        assert abs(ref[i] - bound) < 1e-6
    elif gap < -1e-6 * scale:
        assert abs(ref[i] - bound) > 1e-9
    if Z.shape[1] == 1:
        z = Z[:, 0]
        eta_star = -(b @ z) / (z @ z)
        expect = (z @ z) * (bound - eta_star) * (-1.0 if upper else 1.0)
        assert abs(gap - expect) <= 1e-9 * scale


def test_pinned_gap_changes_sign_where_the_slope_reaches_its_bound():
    """Along ``b(s) = b₀ + s c``, whose unconstrained minimiser's first slope falls through
    ``lo`` at ``s = 0`` (the other inside), the gap at the lower bound is negative before,
    0 at and positive after, linearly (it is what the integrator finds the root of)."""
    from pwflow.subgradient import pinned_gap

    Z = np.array([[1.0, 0.2], [0.3, 1.0], [0.5, -0.4]])
    eta0 = np.array([0.1, 0.6])
    c = Z @ np.array([1.0, 0.0])  # s moves η₁* by −s
    gaps = [pinned_gap(-Z @ eta0 + s * c, Z, 0, False, 0.1, 1.0) for s in (-1e-3, 0.0, 1e-3)]
    assert gaps[0] < 0 < gaps[2] and abs(gaps[1]) < 1e-15
    assert gaps[2] == pytest.approx(-gaps[0], rel=1e-9)



def _exact_pair_minimiser(b, z1, z2):
    """The unconstrained minimiser of ``‖b + η₁ z₁ + η₂ z₂‖`` in exact rationals."""
    from fractions import Fraction as Fr

    Z1, Z2, B = ([Fr(float(v)) for v in u] for u in (z1, z2, b))
    g11, g22 = sum(v * v for v in Z1), sum(v * v for v in Z2)
    g12 = sum(u * v for u, v in zip(Z1, Z2, strict=True))
    c1 = sum(u * v for u, v in zip(B, Z1, strict=True))
    c2 = sum(u * v for u, v in zip(B, Z2, strict=True))
    det = g11 * g22 - g12 * g12
    return (-c1 * g22 + c2 * g12) / det, (-c2 * g11 + c1 * g12) / det


def test_pair_slopes_keeps_an_interior_minimiser_that_an_edge_ties_by_rounding(monkeypatch):
    """An interior minimiser 4e-9 inside the box ``[0.5, 1]²`` (400 seeded rows, d = 3, the
    residual 1 off the plane of ``z₁, z₂``): the objective grows towards the edge by ~1e-17,
    below the rounding of the norms compared.  :func:`pair_slopes` keeps the interior point
    in every row (the exact rational minimiser, to 1e-12); with the tie margin ``_NORM_TIE``
    set to 0 (the code before session 31) rounding hands some rows to the edge ``η₁ = 0.5``
    (73 of 400 on the development host; which rows depends on the host's rounding, which is
    why the run-level consequence, ``test_integrator.py``'s double exit 3.1e-7 early, was
    seen on one host and not on another)."""
    from pwflow import subgradient

    rng = np.random.default_rng(0)
    n, lo, hi, inside = 400, 0.5, 1.0, 4e-9
    z1, z2 = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    normal = np.cross(z1, z2)
    normal /= np.linalg.norm(normal, axis=1)[:, None]
    b = -((lo + inside) * z1 + 0.75 * z2) + normal
    exact = np.array([[float(v) for v in _exact_pair_minimiser(*rows)]
                      for rows in zip(b, z1, z2, strict=True)])
    assert np.all(exact[:, 0] > lo + 0.9 * inside)  # interior, exactly
    eta = subgradient.pair_slopes(b, z1, z2, lo, hi)
    assert np.all(eta[:, 0] > lo) and np.max(np.abs(eta - exact)) < 1e-12  # measured 8e-15
    monkeypatch.setattr(subgradient, "_NORM_TIE", 0.0)
    assert np.any(subgradient.pair_slopes(b, z1, z2, lo, hi)[:, 0] == lo)


def _exact_box_pair(b, z1, z2, lo, hi):
    """The minimiser of ``‖b + η₁ z₁ + η₂ z₂‖`` over ``[lo, hi]²`` in exact rationals (``z₁, z₂``
    independent: unique): the interior point where it lies in the box, else the best of the
    four edges' one-slope minimisers."""
    from fractions import Fraction as Fr

    Z1, Z2, B = ([Fr(float(v)) for v in u] for u in (z1, z2, b))
    lo, hi = Fr(lo), Fr(hi)
    g11, g22 = sum(v * v for v in Z1), sum(v * v for v in Z2)
    g12 = sum(u * v for u, v in zip(Z1, Z2, strict=True))
    c1 = sum(u * v for u, v in zip(B, Z1, strict=True))
    c2 = sum(u * v for u, v in zip(B, Z2, strict=True))
    e = _exact_pair_minimiser(b, z1, z2)
    if lo <= e[0] <= hi and lo <= e[1] <= hi:
        return e

    def clamp(x):
        return min(max(x, lo), hi)

    def value(e1, e2):
        return 2 * e1 * c1 + 2 * e2 * c2 + e1 * e1 * g11 + 2 * e1 * e2 * g12 + e2 * e2 * g22

    cands = [(f, clamp(-(c2 + f * g12) / g22)) for f in (lo, hi)]
    cands += [(clamp(-(c1 + f * g12) / g11), f) for f in (lo, hi)]
    return min(cands, key=lambda c: value(*c))


#: (b, z₁, z₂) of a neuron on two hyperplanes whose residual r_4 passes through 0 (d = 6,
#: rank 3: ``tests/test_differential.py``'s ``_RANK3_BRANCH_APART`` at t = 5.1898174)
_VANISHING_COLUMN = (
    np.array([-0.016389619740295958, 0.01797045833774644, -0.0061845698152602074,
              0.005729552047459608, -0.006608895217544906, -0.0021324080289432264]),
    np.array([8.982963706346562e-11, 1.2148562158817252e-10, 6.955685259130887e-11,
              -1.5701191717556903e-11, 2.505266236066389e-11, 1.1802751428957473e-11]),
    np.array([-0.0005567773053186511, 0.004008845511100769, 0.013223014078238775,
              0.0004372109285358876, 0.0004794740060054013, -0.0005985087554903532]))


def test_pair_slopes_decides_a_vanishing_column_by_its_gradient(monkeypatch):
    """``‖z₁‖ = 1.7e-10`` against ``‖b‖ = 0.027``: every ``η₁ ∈ [0, 1]`` gives the same
    ``‖D‖`` to rounding, but the exact minimiser is ``η₁ = 0`` (unconstrained −4.0e-8), which
    the gradient reads (``<D, z₁>`` is ``+‖z₁‖²`` at ``η₁ = 1``, rounding at 0).  With the
    tie read from the norms alone (``TIE_BY_GRADIENT = False``, the code before session 59)
    the row gets ``η₁ = 1``: that neuron left to the active side of a hyperplane it stays on
    in exact arithmetic."""
    from pwflow import subgradient

    b, z1, z2 = _VANISHING_COLUMN
    exact = [float(v) for v in _exact_box_pair(b, z1, z2, 0.0, 1.0)]
    assert exact[0] == 0.0 and abs(exact[1]) < 1e-15
    for rows in (1, 2 * subgradient._SCALAR_ROWS):  # the scalar and the array path
        eta = subgradient.pair_slopes(np.tile(b, (rows, 1)), np.tile(z1, (rows, 1)),
                                      np.tile(z2, (rows, 1)), 0.0, 1.0)
        np.testing.assert_allclose(eta, np.tile(exact, (rows, 1)), atol=1e-12)
    monkeypatch.setattr(subgradient, "TIE_BY_GRADIENT", False)
    for rows in (1, 2 * subgradient._SCALAR_ROWS):
        eta = subgradient.pair_slopes(np.tile(b, (rows, 1)), np.tile(z1, (rows, 1)),
                                      np.tile(z2, (rows, 1)), 0.0, 1.0)
        assert np.all(eta[:, 0] == 1.0)


@given(d=st.integers(2, 6), data=st.data(), lo=st.sampled_from([0.0, 0.1, 0.5]),
       scale=st.sampled_from([1.0, 1e-3, 1e-6, 1e-9]),
       off=st.sampled_from([0.0, 1.0, 100.0]))
def test_pair_slopes_is_the_exact_box_minimiser_at_any_column_scale(d, data, lo, scale, off):
    """Against the exact rational minimiser over the box, with one column scaled down by
    ``scale`` and ``b`` far off the plane of ``z₁, z₂`` (``off``): each slope within what
    the data decide it to, ``1e3 eps ‖D‖ / (‖z_k‖ sin²θ)`` (``θ`` the columns' angle; the
    norms alone decide it only to ``sqrt(eps) ‖D‖ / ‖z_k‖``: the whole box at ``scale =
    1e-9``)."""
    from pwflow.subgradient import pair_slopes

    fl = st.floats(-2, 2, allow_nan=False, allow_subnormal=False)
    vec = st.lists(fl, min_size=d, max_size=d).map(np.array)
    z1, z2, u = data.draw(vec), data.draw(vec), data.draw(vec)
    n1, n2 = np.linalg.norm(z1), np.linalg.norm(z2)
    assume(n1 > 0.1 and n2 > 0.1)
    cos = abs(z1 @ z2) / (n1 * n2)
    assume(cos < 0.95)
    z1 = z1 * scale
    target = data.draw(st.tuples(*[st.sampled_from([lo - 0.3, lo, lo + 1e-7, 0.7, 1.0,
                                                     1.0 + 1e-7, 1.4])] * 2))
    Q = np.linalg.qr(np.stack([z1, z2], axis=1))[0]
    normal = u - Q @ (Q.T @ u)  # b's part off the columns' plane
    assume(d == 2 or off == 0.0 or np.linalg.norm(normal) > 0.1)
    b = -(target[0] * z1 + target[1] * z2)
    if off:
        b = b + off * normal / max(np.linalg.norm(normal), 1e-300)
    eta = pair_slopes(b[None], z1[None], z2[None], lo, 1.0)[0]
    exact = [float(v) for v in _exact_box_pair(b, z1, z2, lo, 1.0)]
    size = np.linalg.norm(b) + np.linalg.norm(z1) + np.linalg.norm(z2)
    for k, zk in enumerate((z1, z2)):
        tol = 1e3 * np.finfo(float).eps * size / (np.linalg.norm(zk) * (1 - cos * cos))
        assert abs(eta[k] - exact[k]) <= tol + 1e-12, (k, eta, exact, tol)
