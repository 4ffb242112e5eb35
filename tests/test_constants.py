import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from proofs_checks.arrangement import face_generators
from proofs_checks.constants import (
    Undefined,
    alpha_eq49,
    compute_constants,
    lambda_star,
    max_cosine,
    tau,
)
from proofs_checks.faces import geometry
from pwflow.data import Dataset, three_points
from strategies import general_position, matrices


@settings(deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(st.integers(1, 4), st.integers(2, 4), st.data())
def test_max_cosine_vs_dense_sampling(p, d, data):
    Gen = data.draw(general_position(p, d), label="generators")
    v = data.draw(matrices(d, 0), label="v")
    assume(np.linalg.norm(v) > 0.1)
    rng = np.random.default_rng(0)  # the sampler of the check, not the data
    c = max_cosine(Gen, v)
    W = rng.exponential(size=(20000, p)) ** 3 @ Gen  # points of the cone
    W = np.vstack([W, Gen])
    samples = W @ v / (np.linalg.norm(W, axis=1) * np.linalg.norm(v))
    assert samples.max() <= c + 1e-12  # sampling is a lower bound
    assert c - samples.max() < 0.05  # and comes close


def test_max_cosine_negative_case_exact():
    Gen = np.array([[1.0, 0.0], [1.0, 1.0]])
    v = np.array([-1.0, -0.2])
    # the cone lies in the polar of v: best is the generator closest in angle
    expect = max(Gen @ v / (np.linalg.norm(Gen, axis=1) * np.linalg.norm(v)))
    assert max_cosine(Gen, v) == pytest.approx(expect, abs=1e-15)
    with pytest.raises(ValueError, match="nonzero v"):
        max_cosine(Gen, np.zeros(2))


def test_three_points_values():
    data = three_points()
    c = compute_constants(data, epsilon=0.25, alpha0=0.5)
    Dstar = data.y @ data.X / data.n
    assert np.allclose(c["D_star"], Dstar)
    assert c["D_max"] == pytest.approx(np.linalg.norm(Dstar), rel=1e-12)
    assert np.allclose(c["beta_star"], np.linalg.lstsq(data.X, data.y, rcond=None)[0])
    # λ* of Eq. (22) recomputed by hand from the reported ingredients
    sx = np.sum(data.X**2)
    inner = min(
        data.n / sx * min(c["alpha_min"] ** 2 / 8 * c["D_min"], 0.25 / 4 * c["D_min"], c["delta0"]),
        np.min(np.abs(data.y) / np.linalg.norm(data.X, axis=1)),
    )
    assert c["lambda_star_alpha0"] == pytest.approx(inner ** (1 / (2 - 4 * 0.25)), rel=1e-12)
    print("three_points λ*_{1/2} (ε=1/4) =", c["lambda_star_alpha0"])
    assert 0 < c["lambda_star_alpha0"] < 1
    assert c["tau_at_lambda_star"] == pytest.approx(
        -0.25 * math.log(c["lambda_star_alpha0"]) / c["D_max"]
    )
    assert c["kappa"] == pytest.approx(np.sqrt(np.linalg.cond(data.X.T @ data.X)))


@settings(deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(st.integers(3, 6), st.integers(2, 3), st.data())
def test_lemmas_9_10_on_generic_data(n, d, draw):
    y = draw.draw(matrices(n, 0), label="y")
    assume(np.all(np.abs(y) > 0.05))
    data = Dataset(draw.draw(general_position(n, d)), y)
    c = compute_constants(data)
    assert c["alpha_min"] > 0 and c["D_min"] > 0 and c["delta0"] > 0
    assert len(c.extremal) >= 1


def test_D_min_and_D_max_vs_sampling():
    rng = np.random.default_rng(5)
    data = Dataset(rng.normal(size=(5, 3)), rng.normal(size=5))
    geo = geometry(data)
    c = compute_constants(data, geo=geo)
    from pwflow.subgradient import minimal_norm_subgradient

    W = rng.normal(size=(3000, 3))
    norms = [np.linalg.norm(minimal_norm_subgradient(w, geo.X, geo.r).D) for w in W]
    assert max(norms) <= c["D_max"] + 1e-12
    assert min(norms) >= c["D_min"] - 1e-12


def test_alpha_eq49_vs_sampling():
    data = three_points()
    geo = geometry(data)
    a = alpha_eq49(geo)
    th = np.linspace(0, 2 * np.pi, 200001)
    W = np.stack([np.cos(th), np.sin(th)], 1)
    ok = np.all(W @ data.X.T >= 0, axis=1)
    vals = (W[ok] @ data.X.T).mean(1)
    assert a <= vals.min() + 1e-12 and vals.min() - a < 1e-4


def test_degenerate_data_reports_reason():
    # a data point on a boundary: x_2 ∥ x_1 (collinear points) makes D_u touch a face boundary
    X = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    data = Dataset(X, np.array([1.0, 1.0, -1.0]))
    c = compute_constants(data)
    bad = [k for k in ("alpha_min", "lambda_star_alpha0") if isinstance(c[k], Undefined)]
    assert bad, c.values
    assert "Lemma 2" in c["alpha_min"].reason


def test_bad_parameters():
    geo = geometry(three_points())
    with pytest.raises(ValueError, match="epsilon"):
        lambda_star(geo, 0.5, 0.4)
    with pytest.raises(ValueError, match="alpha0"):
        lambda_star(geo, -1.0, 0.25)
    with pytest.raises(ValueError, match="lam"):
        tau(2.0, 0.25, 1.0)


def test_alpha_minus_reading():
    """Literal condition under α_min,− (D_u ∉ A^{-1}(u)) would include negative extremal faces,
    whose −D_u lies in the cone: cosine 1, α_min,− = 0. The chosen reading excludes them."""
    from proofs_checks.constants import _cos_faces

    rng = np.random.default_rng(0)
    geo = geometry(Dataset(rng.normal(size=(5, 3)), rng.normal(size=5)))
    neg = [f for f in geo.faces if f.extremal == -1]
    assert neg
    literal = [max_cosine(face_generators(geo.arrangement, f.face), -f.D) for f in neg]
    assert max(literal) == pytest.approx(1.0, abs=1e-9)
    chosen = max(c for _, c in _cos_faces(geo, -1))
    assert chosen < 1 - 1e-6
