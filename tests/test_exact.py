import numpy as np
import pytest
import sympy as sp

from proofs_checks.constants import compute_constants
from proofs_checks.exact import exact_box_ls, exact_constants, exact_max_cosine
from proofs_checks.faces import geometry
from pwflow.data import Dataset, three_points

R = sp.Rational
X3 = [[R(-3, 4), 1], [R(-1, 2), 1], [R(1, 8), 1]]
Y3 = [R(11, 10), R(1, 10), R(4, 5)]


def _rel(a, b):
    a, b = float(a), float(b)
    if np.isinf(a) or np.isinf(b):
        return 0.0 if a == b else np.inf
    return abs(a - b) / max(abs(b), 1e-300)


def test_three_points_exact_agrees_with_float():
    e = exact_constants(X3, Y3)
    c = compute_constants(three_points())
    for k in (
        "D_max",
        "D_min",
        "alpha_min",
        "alpha_min_plus",
        "alpha_min_minus",
        "delta0",
        "delta0_prime",
        "delta0_second",
    ):
        assert _rel(getattr(e, k), c[k]) < 1e-12, k
    assert e.D_star == sp.Matrix([R(-31, 120), R(2, 3)])
    assert np.allclose(np.array(e.D_star, float).ravel(), c["D_star"], rtol=1e-12, atol=0)
    assert np.allclose(np.array(e.beta_star, float).ravel(), c["beta_star"], rtol=1e-12, atol=0)
    assert e.D_max == sp.sqrt(7361) / 120  # = ‖D*‖
    geo = geometry(three_points())
    for f in geo.faces:
        De = np.array(e.D_u[tuple(int(v) for v in f.u)], float).ravel()
        assert np.allclose(De, f.D, rtol=1e-12, atol=1e-15)


def test_random_rational_d3_with_gamma():
    rng = np.random.default_rng(4)
    Xi = rng.integers(-6, 7, size=(4, 3))
    yi = rng.integers(-5, 6, size=4)
    yi[yi == 0] = 1
    Xq = [[R(int(v), 4) for v in row] for row in Xi]
    yq = [R(int(v), 3) for v in yi]
    e = exact_constants(Xq, yq, gamma=R(1, 5))
    c = compute_constants(Dataset(Xi / 4, yi / 3), gamma=0.2)
    for k in ("D_max", "D_min", "delta0", "alpha_min"):
        assert _rel(getattr(e, k), c[k]) < 1e-12, k


def test_exact_box_ls_kkt_and_wrong_answer_detected():
    b = sp.Matrix([1, 2])
    Z = sp.Matrix([[1, 0], [1, 1]])
    D, eta = exact_box_ls(b, Z, 0, 1)
    # brute force on a fine rational grid never beats it
    best = min(
        ((b - Z * sp.Matrix([R(i, 20), R(j, 20)])).norm() for i in range(21) for j in range(21)),
        key=float,
    )
    assert float(D.norm()) <= float(best)
    assert D != b  # the unconstrained-at-zero answer is not optimal


def test_exact_max_cosine():
    G = [sp.Matrix([1, 0]), sp.Matrix([1, 1])]
    assert exact_max_cosine(G, sp.Matrix([1, 2])) == 3 / sp.sqrt(10)  # ray (1,1) is best
    assert exact_max_cosine(G, sp.Matrix([2, 1])) == 1  # inside the cone
    with pytest.raises(ValueError, match="generator"):
        exact_max_cosine([], sp.Matrix([1, 0]))
