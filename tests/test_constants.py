import json
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
from test_cones import _nnls_brute_force


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
    # exact: the projection of v on the cone by enumerating the generators' independent
    # subsets (Moreau: max cos = ‖P‖/‖v‖ where P ≠ 0, else the best generator). Sampling
    # alone came within 0.17 only where the cone is all of R^3 (v = 2g₂ + 4g₃ + 8g₄).
    nv = np.linalg.norm(v)
    dist = _nnls_brute_force(Gen.T, v)
    nP = np.sqrt(max(nv**2 - dist**2, 0.0))  # ‖P‖² + ‖v − P‖² = ‖v‖² at the projection
    exact = nP / nv if nP > 1e-6 * nv else np.max(Gen @ v / (np.linalg.norm(Gen, axis=1) * nv))
    assert c == pytest.approx(exact, abs=1e-6)


@given(d=st.integers(2, 6), data=st.data())
def test_max_cosine_on_a_half_space_given_with_its_lineality_space(d, data):
    """A closed half-space ``{<w, x> >= 0}`` given as ``x`` and ``± a basis of x^⊥`` (how
    :func:`face_generators` gives a face of data with ``n < d``): the largest cosine with
    ``v`` is 1 where ``<v, x> >= 0`` and ``‖v − <v, x̂> x̂‖ / ‖v‖`` otherwise.  scipy's
    ``nnls`` (1.15 on) returned a wrong projection with a zero residual on such ``± pairs``
    (``v = −x``: cosine 1 instead of 0; ``α_min = 0`` on d = 5, n = 1)."""
    x = data.draw(matrices(d, 0), label="x")
    assume(np.linalg.norm(x) > 0.1)
    v = data.draw(st.one_of(matrices(d, 0), st.sampled_from([-1.0, -0.5, 2.0]).map(
        lambda c: c * x)), label="v")
    assume(np.linalg.norm(v) > 0.1)
    xh = x / np.linalg.norm(x)
    L = np.linalg.svd(xh[None])[2][1:]  # orthonormal basis of x^⊥
    G = np.vstack([x, L, -L])
    vx = v @ xh
    expect = 1.0 if vx >= 0 else np.linalg.norm(v - vx * xh) / np.linalg.norm(v)
    assert max_cosine(G, v) == pytest.approx(expect, abs=1e-9)


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
    # general position is not Lemma 2's genericity: drawn small integers (e.g. e₁, e₂, e₃ with
    # y = 1, or (1,0,0), (1,0,1), (1,1,0) with y = (1,1,−1)) pin free slopes at their bounds
    # (δ₀ = 0) and put D_u on face boundaries; fixed irrational offsets break those ties
    X = draw.draw(general_position(n, d))
    X = X + 1e-2 * (np.arange(1.0, 1.0 + n * d) * (np.sqrt(5) - 1) / 2 % 1).reshape(n, d)
    data = Dataset(X, y)
    c = compute_constants(data)
    assert c["D_min"] > 0 and c["delta0"] > 0
    assert len(c.extremal) >= 1
    if isinstance(c["alpha_min"], Undefined):
        # other coincidences of the drawn entries can put some ±D_u on the boundary of its
        # face (then α_min is undefined, and must say where); checked here on signs alone:
        # ±D_u in the closure (pattern conformal to u), not in the face
        reason = c["alpha_min"].reason
        assert "Lemma 2 fails" in reason, reason
        u = np.array(json.loads(reason.split("u=")[1].split(" (")[0]))
        sign = -1.0 if reason.startswith("−") else 1.0
        geo = geometry(data, "square", 0.0)
        D = sign * next(f.D for f in geo.faces if np.array_equal(f.u, u))
        s = data.X @ D
        tol = 1e-9 * np.linalg.norm(D) * np.linalg.norm(data.X, axis=1)
        on = np.abs(s) <= tol
        assert np.all(on | (np.sign(s) == u)), (u, s)
        assert np.any(on & (u != 0)), (u, s)
    else:
        assert c["alpha_min"] > 0


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


def test_constants_dividing_by_alpha_min_are_undefined_where_it_is_zero():
    """d = 1, two points on the same side (``x = 1, 2``, ``y = (1, −1)``): ``α_min = 0``
    (Lemma 9 fails), so ``c_{α₀}`` (Eq. (37)) and ``c`` (Eq. (40)) are undefined and say
    why; ``proofs-checks`` ended with a ZeroDivisionError in ``c_alpha0`` before."""
    c = compute_constants(Dataset(np.array([[1.0], [2.0]]), np.array([1.0, -1.0])))
    assert c["alpha_min"] == 0.0
    for name in ("c_alpha0", "c_theorem3"):
        assert isinstance(c[name], Undefined) and "must be positive (Lemma 9)" in c[name].reason
