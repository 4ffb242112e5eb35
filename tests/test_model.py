"""Tests of pwflow.model: activation, losses (Assumption 1), network output Eq. (1), gradient."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from pwflow import model
from pwflow.model import (
    activation,
    check_gamma,
    empirical_loss,
    get_loss,
    gradient,
    logistic_loss,
    make_loss,
    network_output,
    output_rate,
    slopes,
    square_loss,
)
from strategies import matrices

GAMMAS = [0.0, 0.1, 0.5, 1.0]


@pytest.mark.parametrize("gamma", GAMMAS)
def test_activation_is_max_z_gamma_z(gamma):
    z = np.linspace(-3, 3, 61)
    expected = [max(v, gamma * v) for v in z]
    np.testing.assert_array_equal(activation(z, gamma), expected)


@pytest.mark.parametrize("gamma", GAMMAS)
def test_slopes_away_from_zero_and_at_zero(gamma):
    z = np.array([-2.0, -1e-300, 0.0, 1e-300, 3.0])
    np.testing.assert_array_equal(slopes(z, gamma), [gamma, gamma, gamma, 1.0, 1.0])
    np.testing.assert_array_equal(slopes(z, gamma, at_zero=0.7), [gamma, gamma, 0.7, 1.0, 1.0])
    # away from 0 the slope is the derivative of the activation (central differences)
    zz = np.array([-2.0, -0.3, 0.4, 2.5])
    h = 1e-6
    fd = (activation(zz + h, gamma) - activation(zz - h, gamma)) / (2 * h)
    np.testing.assert_allclose(slopes(zz, gamma), fd, rtol=1e-8)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "x", None])
def test_check_gamma_rejects(bad):
    with pytest.raises(ValueError, match="gamma"):
        check_gamma(bad)


def test_square_loss_closed_form_and_derivative():
    p = np.linspace(-4, 4, 33)[:, None]
    y = np.array([-1.0, 0.0, 0.3, 2.0])[None, :]
    np.testing.assert_allclose(square_loss(p, y), 0.5 * (p - y) ** 2, rtol=1e-15)
    np.testing.assert_allclose(square_loss.derivative(p, y), p - y, rtol=1e-15, atol=0)
    h = 1e-5
    fd = (square_loss(p + h, y) - square_loss(p - h, y)) / (2 * h)
    np.testing.assert_allclose(square_loss.derivative(p, y), fd, rtol=1e-8, atol=1e-9)


def test_logistic_loss_closed_form_and_derivative():
    p = np.linspace(-6, 6, 49)[:, None]
    y = np.array([-1.0, 1.0])[None, :]
    closed = np.vectorize(lambda u, v: math.log1p(math.exp(-u * v)))(p, y)
    np.testing.assert_allclose(logistic_loss(p, y), closed, rtol=1e-14)
    closed_der = np.vectorize(lambda u, v: -v / (1 + math.exp(u * v)))(p, y)
    np.testing.assert_allclose(logistic_loss.derivative(p, y), closed_der, rtol=1e-14)
    h = 1e-5
    fd = (logistic_loss(p + h, y) - logistic_loss(p - h, y)) / (2 * h)
    np.testing.assert_allclose(logistic_loss.derivative(p, y), fd, rtol=1e-8, atol=1e-10)


def test_logistic_loss_is_stable_for_large_margins():
    # filterwarnings = error: an overflow in exp would fail this test
    p = np.array([-1e4, 1e4])
    y = np.array([1.0, 1.0])
    np.testing.assert_allclose(logistic_loss(p, y), [1e4, 0.0], atol=1e-300)
    np.testing.assert_allclose(logistic_loss.derivative(p, y), [-1.0, 0.0], atol=1e-300)


def _brute_output(W, a, X, gamma):
    out = []
    for x in X:
        s = 0.0
        for wj, aj in zip(W, a):
            z = sum(wi * xi for wi, xi in zip(wj, x))
            s += aj * (z if z > 0 else gamma * z)
        out.append(s)
    return np.array(out)


@given(data=st.data(), m=st.integers(1, 7), d=st.integers(1, 3), n=st.integers(1, 5),
       gamma=st.sampled_from(GAMMAS))
def test_network_output_matches_brute_force(data, m, d, n, gamma):
    W, a, X = data.draw(matrices(m, d)), data.draw(matrices(m, 0)), data.draw(matrices(n, d))
    np.testing.assert_allclose(
        network_output(W, a, X, gamma), _brute_output(W, a, X, gamma), rtol=1e-12, atol=1e-14
    )


def test_empirical_loss_is_mean_of_losses(three):
    W, a = np.array([[0.3, 0.2], [-0.1, 0.4]]), np.array([1.0, -0.5])
    h = _brute_output(W, a, three.X, 0.0)
    expected = np.mean(0.5 * (h - three.y) ** 2)
    assert empirical_loss(W, a, three.X, three.y, square_loss) == pytest.approx(expected, 1e-14)


def _fd_gradient(W, a, X, y, loss, gamma, h=1e-6):
    def L(Wv, av):
        return empirical_loss(Wv, av, X, y, loss, gamma)

    gW, ga = np.zeros_like(W), np.zeros_like(a)
    for idx in np.ndindex(W.shape):
        E = np.zeros_like(W)
        E[idx] = h
        gW[idx] = (L(W + E, a) - L(W - E, a)) / (2 * h)
    for j in range(a.size):
        e = np.zeros_like(a)
        e[j] = h
        ga[j] = (L(W, a + e) - L(W, a - e)) / (2 * h)
    return gW, ga


@settings(suppress_health_check=[HealthCheck.filter_too_much])  # draws near a kink are skipped
@given(
    data=st.data(),
    gamma=st.sampled_from(GAMMAS),
    loss=st.sampled_from(["square", "logistic"]),
)
def test_gradient_matches_central_differences(data, gamma, loss):
    m, d, n = 4, 3, 5
    W, a, X = data.draw(matrices(m, d)), data.draw(matrices(m, 0)), data.draw(matrices(n, d))
    y = data.draw(matrices(n, 0))
    if loss == "logistic":
        y = np.where(y >= 0, 1.0, -1.0)
    # L is smooth near theta only if no <w_j, x_k> is near 0 (the FD step moves it by ~1e-6)
    assume(np.min(np.abs(X @ W.T)) > 1e-3)
    lo = get_loss(loss)
    gW, ga = gradient(W, a, X, y, lo, gamma)
    fW, fa = _fd_gradient(W, a, X, y, lo, gamma)
    np.testing.assert_allclose(gW, fW, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ga, fa, rtol=1e-6, atol=1e-8)


def test_gradient_uses_slope_at_zero_on_the_kink():
    # x = (1, 0), w = (0, 1): <w, x> = 0 exactly, so only the sigma'(0) convention matters
    X, y = np.array([[1.0, 0.0]]), np.array([1.0])
    W, a = np.array([[0.0, 1.0]]), np.array([2.0])
    g0, _ = gradient(W, a, X, y, square_loss, 0.0, slope_at_zero=0.0)
    g1, _ = gradient(W, a, X, y, square_loss, 0.0, slope_at_zero=1.0)
    np.testing.assert_array_equal(g0, [[0.0, 0.0]])
    np.testing.assert_array_equal(g1, [[-2.0, 0.0]])  # a * r * x = 2 * (0 − 1) * (1, 0)


def test_assumption1_holds_for_square_and_logistic():
    rep = square_loss.check_assumption1([-1.0, 0.5, 2.0])
    assert rep.holds and rep.lipschitz == pytest.approx(1.0) and rep.message == "holds"
    rep = logistic_loss.check_assumption1([-1.0, 1.0])
    assert rep.holds and rep.lipschitz == pytest.approx(0.25, rel=1e-3)


def test_assumption1_fails_for_2_lipschitz_derivative():
    # the paper's "(ŷ − y)²" without the ½: derivative 2(ŷ − y) is 2-Lipschitz
    mse = make_loss(lambda p, y: (p - y) ** 2, lambda p, y: 2 * (p - y), "mse", 2.0)
    rep = mse.check_assumption1([1.0, 2.0])
    assert not rep.holds and rep.lipschitz == pytest.approx(2.0)
    assert "not 1-Lipschitz" in rep.message


def test_assumption1_fails_when_derivative_vanishes_at_zero():
    # l(ŷ, y) = ½ ŷ² ignores y: ∂_1 l(0, y) = 0 for y != 0
    flat = make_loss(lambda p, y: 0.5 * p**2 + 0 * y, lambda p, y: p + 0 * y, "flat")
    rep = flat.check_assumption1([1.0, -2.0])
    assert not rep.holds and rep.min_abs_derivative_at_zero == 0.0
    assert "∂_1 l(0, y) = 0" in rep.message


def test_make_loss_builds_a_working_loss():
    lo = make_loss(lambda p, y: np.abs(p - y), lambda p, y: np.sign(p - y), "abs", 1.0)
    assert lo.name == "abs" and lo(np.array([3.0]), np.array([1.0]))[0] == 2.0
    assert get_loss(lo) is lo
    assert get_loss("square") is square_loss and get_loss("logistic") is logistic_loss


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        (dict(value=1.0, derivative=lambda p, y: p), "callables"),
        (dict(value=lambda p, y: p, derivative=None), "callables"),
        (dict(value=lambda p, y: p, derivative=lambda p, y: p, curvature_bound=0.0), "curvature"),
        (dict(value=lambda p, y: p, derivative=lambda p, y: p, curvature_bound=-1), "curvature"),
        (dict(value=lambda p, y: p, derivative=lambda p, y: p, curvature_bound=np.inf), "curv"),
        (dict(value=lambda p, y: p, derivative=lambda p, y: p, curvature=2.0), "curvature must"),
    ],
)
def test_make_loss_rejects(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        make_loss(**kwargs)


@pytest.mark.parametrize("bad", ["hinge", "Square", 3, None])
def test_get_loss_rejects(bad):
    with pytest.raises(ValueError, match="unknown loss"):
        get_loss(bad)


def test_losses_registry():
    assert set(model.LOSSES) == {"square", "logistic"}


@settings(suppress_health_check=[HealthCheck.filter_too_much])  # off the kinks
@given(data=st.data(), gamma=st.sampled_from(GAMMAS), m=st.integers(1, 5),
       d=st.integers(1, 4), n=st.integers(1, 5))
def test_output_rate_matches_central_differences_along_the_flow(data, gamma, m, d, n):
    """Off the hyperplanes: d h / dt along dw_j = a_j D_j, da_j = <w_j, D_j> is the central
    difference of the output along that direction."""
    W, a, X = data.draw(matrices(m, d)), data.draw(matrices(m, 0)), data.draw(matrices(n, d))
    D = data.draw(matrices(m, d))
    assume(np.min(np.abs(W @ X.T)) > 1e-2)
    U = np.sign(W @ X.T).astype(np.int8)
    eps = 1e-6
    dW, da = a[:, None] * D, np.einsum("jd,jd->j", W, D)
    fd = (network_output(W + eps * dW, a + eps * da, X, gamma)
          - network_output(W - eps * dW, a - eps * da, X, gamma)) / (2 * eps)
    np.testing.assert_allclose(output_rate(W, a, X, D, U, gamma), fd, rtol=1e-6, atol=1e-7)


@settings(suppress_health_check=[HealthCheck.filter_too_much])  # off the kinks
@given(data=st.data(), gamma=st.sampled_from(GAMMAS), side=st.sampled_from([-1.0, 1.0]))
def test_output_rate_on_a_hyperplane_is_the_right_derivative(data, gamma, side):
    """A neuron on the hyperplane of x_0 (U = 0) that leaves it: the rate is the one-sided
    difference forward in time, whichever side it leaves to."""
    X, w = data.draw(matrices(3, 3)), data.draw(matrices(1, 3))[0]
    assume(np.linalg.norm(X[0]) > 0.1)
    w = w - (w @ X[0]) / (X[0] @ X[0]) * X[0]  # on x_0's hyperplane
    assume(np.min(np.abs(X[1:] @ w)) > 1e-2)
    D = data.draw(matrices(1, 3))[0]
    D = D + (side - D @ X[0]) / (X[0] @ X[0]) * X[0]  # <D, x_0> = side: leaves to that side
    a = np.array([0.7])
    U = np.sign(X @ w).astype(np.int8)[None]
    U[0, 0] = 0
    eps = 1e-7
    fwd = (network_output(w[None] + eps * a[0] * D[None], a + eps * (w @ D), X, gamma)
           - network_output(w[None], a, X, gamma)) / eps
    np.testing.assert_allclose(output_rate(w[None], a, X, D[None], U, gamma), fwd,
                               rtol=1e-5, atol=1e-6)


@given(data=st.data(), loss=st.sampled_from(["square", "logistic"]))
def test_derivative_rate_matches_the_difference_of_the_derivative(data, loss):
    """The closed-form curvature of the built-in losses, and the central difference a custom
    loss falls back to, both against a finer difference of ``derivative``."""
    h, rate = data.draw(matrices(6, 0, -4.0, 4.0)), data.draw(matrices(6, 0))
    y = data.draw(matrices(6, 0))
    lo = get_loss(loss)
    if loss == "logistic":
        y = np.where(y >= 0, 1.0, -1.0)
    eps = 1e-6
    fd = (lo.derivative(h + eps * rate, y) - lo.derivative(h - eps * rate, y)) / (2 * eps)
    np.testing.assert_allclose(lo.derivative_rate(h, y, rate), fd, rtol=1e-6, atol=1e-8)
    custom = make_loss(lo.value, lo.derivative)
    assert custom.curvature is None
    np.testing.assert_allclose(custom.derivative_rate(h, y, rate), fd, rtol=1e-6, atol=1e-8)


@settings(deadline=None)
@given(y=st.floats(-2.0, 2.0, allow_subnormal=False),
       p=st.lists(st.floats(-8.0, 8.0, allow_subnormal=False), min_size=2, max_size=2),
       loss=st.sampled_from(["square", "logistic"]))
@example(y=1.9, p=[0.0, 0.1], loss="logistic")
def test_curvature_bound_for_the_labels_bounds_the_derivative_s_lipschitz_constant(y, p, loss):
    """``|∂_1 l(p, y) − ∂_1 l(p', y)| <= c |p − p'|`` with ``c = curvature_bound_for(labels)``,
    for labels ``|y| <= 2`` (Assumption 1).  The logistic loss's fixed ``1/4`` fails from
    ``|y| > 1`` on (at ``y = 1.9``, ``p = 0``: slope 0.90); the batch cut, the residuals'
    resolution and the rest bound read this bound."""
    lo = get_loss(loss)
    labels = np.array([y, 0.5 * y])
    c = lo.curvature_bound_for(labels)
    p0, p1 = p
    assume(abs(p0 - p1) > 1e-6)
    d0, d1 = (float(lo.derivative(np.array([v]), np.array([y]))[0]) for v in (p0, p1))
    assert abs(d0 - d1) <= c * abs(p0 - p1) * (1 + 1e-9) + 1e-15
    if loss == "logistic" and abs(y) > 1.2:
        slope = abs(float(lo.derivative(np.array([1e-7]), np.array([y]))[0]
                          - lo.derivative(np.array([-1e-7]), np.array([y]))[0])) / 2e-7
        assert slope > lo.curvature_bound  # the fixed 1/4 alone would not bound it


def test_pl_constant_of_the_losses_and_its_validation():
    """The square loss's ``μ = 1`` holds with equality (``(h − y)² = 2 · ½ (h − y)²``) on a
    grid; the logistic loss declares none (its derivative vanishes faster than √loss: the
    ratio ``ℓ'² / ℓ`` tends to 0).  ``make_loss`` refuses a non-positive or non-finite ``μ``,
    and a ``μ`` without the floor it is relative to."""
    from pwflow.model import logistic_loss, square_loss

    h = np.linspace(-5.0, 5.0, 201)
    y = np.full_like(h, 0.7)
    mu = square_loss.pl_constant
    assert mu == 1.0
    np.testing.assert_allclose(square_loss.derivative(h, y) ** 2,
                               2 * mu * (square_loss(h, y) - square_loss.floor), rtol=1e-12)
    assert logistic_loss.pl_constant is None
    far = np.array([10.0, 20.0, 30.0])
    ratio = logistic_loss.derivative(far, 1.0) ** 2 / logistic_loss(far, 1.0)
    assert np.all(np.diff(ratio) < 0) and ratio[-1] < 1e-12
    value, der = square_loss.value, square_loss.derivative
    assert make_loss(value, der, floor=0.0, pl_constant=0.5).pl_constant == 0.5
    for bad in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="pl_constant"):
            make_loss(value, der, floor=0.0, pl_constant=bad)
    with pytest.raises(ValueError, match="pl_constant needs the floor"):
        make_loss(value, der, pl_constant=1.0)
