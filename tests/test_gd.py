"""Tests of pwflow.gd: fixed-step gradient descent (explicit Euler for Eq. (2))."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from pwflow import model
from pwflow.data import Dataset
from pwflow.gd import GDResult, _make_stepper, gradient_descent, time_per_step
from pwflow.init import balanced, from_arrays, unbalanced


def _exact_one_step(w, a, lr, at_zero):
    """One GD step on three_points with one ReLU neuron, in exact rational arithmetic."""
    X = [(Fraction(-3, 4), 1), (Fraction(-1, 2), 1), (Fraction(1, 8), 1)]
    y = [Fraction("1.1"), Fraction("0.1"), Fraction("0.8")]
    z = [w[0] * x[0] + w[1] * x[1] for x in X]
    relu = [max(zk, 0) for zk in z]
    slope = [1 if zk > 0 else (at_zero if zk == 0 else 0) for zk in z]
    r = [(a * relu[k] - y[k]) / 3 for k in range(3)]  # square loss ½(ŷ−y)²
    a_new = a - lr * sum(r[k] * relu[k] for k in range(3))
    w_new = [w[i] - lr * a * sum(r[k] * slope[k] * X[k][i] for k in range(3)) for i in range(2)]
    return w_new, a_new


@pytest.mark.parametrize("at_zero", [0, 1])
def test_one_step_equals_exact_rational_update(three, at_zero):
    # w = (1/2, 1/4): <w, x> = (−1/8, 0, 5/16): one inactive point, one on the kink, one active.
    w, a, lr = [Fraction(1, 2), Fraction(1, 4)], Fraction(1, 2), Fraction(1, 10)
    w_new, a_new = _exact_one_step(w, a, lr, Fraction(at_zero))
    res = gradient_descent(
        three, from_arrays([[0.5, 0.25]], [0.5]), lr=0.1, steps=1, slope_at_zero=at_zero
    )
    np.testing.assert_allclose(res.W[-1, 0], [float(v) for v in w_new], rtol=1e-15, atol=1e-16)
    np.testing.assert_allclose(res.a[-1], [float(a_new)], rtol=1e-15)
    assert res.steps == 1 and res.t.tolist() == [0.0, 0.1]


def test_kink_convention_changes_the_step(three):
    # Guard that the previous test can fail: sigma'(0) = 0 and 1 give different updates here.
    init = from_arrays([[0.5, 0.25]], [0.5])
    r0 = gradient_descent(three, init, lr=0.1, steps=1, slope_at_zero=0.0)
    r1 = gradient_descent(three, init, lr=0.1, steps=1, slope_at_zero=1.0)
    assert not np.allclose(r0.W[-1], r1.W[-1])


@pytest.mark.parametrize("gamma,loss", [(0.0, "square"), (0.3, "square"), (0.1, "logistic")])
def test_inline_step_matches_model_gradient(gamma, loss):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((7, 3))
    y = np.sign(rng.standard_normal(7)) if loss == "logistic" else rng.standard_normal(7)
    data = Dataset(X, y)
    init = unbalanced(50, 3, 1.0, seed=4)
    st = _make_stepper(data, loss, gamma, None)
    Z, act, h = st.forward(init.W.T.copy(), init.a)
    gWt, ga = st.grads(Z, act, h, init.a)
    ref_W, ref_a = model.gradient(init.W, init.a, X, y, model.get_loss(loss), gamma)
    np.testing.assert_allclose(gWt.T, ref_W, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(ga, ref_a, rtol=1e-13, atol=1e-15)
    assert st.value(h) == pytest.approx(
        model.empirical_loss(init.W, init.a, X, y, model.get_loss(loss), gamma), rel=1e-14
    )


def test_loss_decreases_for_small_lr(three):
    init = balanced(40, 2, 0.5, seed=1)
    res = gradient_descent(three, init, lr=1e-2, steps=3000, save_times=np.arange(0, 30.001, 0.1))
    assert np.all(np.diff(res.loss) <= 1e-12)
    assert res.loss[-1] < 0.5 * res.loss[0]
    # saved losses are the losses of the saved weights
    for i in (0, 57, -1):
        assert res.loss[i] == pytest.approx(
            model.empirical_loss(res.W[i], res.a[i], three.X, three.y, model.square_loss), rel=1e-12
        )


def test_time_correspondence_and_saving(three):
    init = balanced(30, 2, 1e-2, seed=0)
    res = gradient_descent(three, init, lr=0.01, t_max=2.0, save_times=[0.0, 0.505, 1.0, 2.0])
    assert res.steps == 200
    np.testing.assert_array_equal(res.meta["saved_steps"], res.t / 0.01)
    # 0.505 / 0.01 = 50.5 rounds to a neighbouring step; 0, 100, 200 exactly
    assert res.t[0] == 0.0 and res.t[-1] == pytest.approx(2.0)
    assert len(res.t) == 4 and abs(res.t[1] - 0.505) <= 0.005 + 1e-12
    assert res.W.shape == (4, 30, 2) and res.a.shape == (4, 30) and res.loss.shape == (4,)
    # the stored iterate at t = 1.0 is what a 100-step run ends at
    short = gradient_descent(three, init, lr=0.01, steps=100)
    np.testing.assert_array_equal(short.W[-1], res.W[2])
    assert isinstance(res, GDResult) and res.meta["interrupted"] is False


def test_default_save_times_bound_memory(three):
    init = balanced(10, 2, 1e-2, seed=0)
    res = gradient_descent(three, init, lr=1e-3, steps=20000)
    assert len(res.t) <= 102 and res.t[0] == 0.0 and res.t[-1] == pytest.approx(20.0)
    assert np.all(np.diff(res.t) > 0)


def test_zero_steps_returns_init(three):
    init = balanced(5, 2, 1.0, seed=2)
    res = gradient_descent(three, init, lr=0.1, t_max=0.0)
    assert res.steps == 0 and res.t.tolist() == [0.0]
    np.testing.assert_array_equal(res.W[0], init.W)


def _cone_reference(theta0, X, y, T):
    """Flow of L for one neuron active on every point: a smooth ODE (solve_ivp, DOP853)."""
    n = len(y)

    def rhs(_t, th):
        w, a = th[:2], th[2]
        z = X @ w
        r = (a * z - y) / n
        return np.concatenate([-a * (X.T @ r), [-(r @ z)]])

    sol = solve_ivp(rhs, (0.0, T), theta0, method="DOP853", rtol=1e-12, atol=1e-14)
    assert sol.success
    return sol.y[:, -1]


def test_gd_converges_with_order_one_to_the_flow(three):
    # One neuron with <w, x_k> > 0 for all k and a > 0: the flow is the smooth ODE of that
    # activation cone as long as the cone is not left (checked on every GD iterate).
    X, y, T = np.asarray(three.X), np.asarray(three.y), 2.0
    theta0 = np.array([0.0, 0.5, 0.5])
    ref = _cone_reference(theta0, X, y, T)
    lrs = np.array([1e-2, 5e-3, 2.5e-3, 1.25e-3])
    errs = []
    for lr in lrs:
        n = int(round(T / lr))
        res = gradient_descent(
            three, from_arrays([theta0[:2]], theta0[2:]), lr=lr, steps=n,
            save_times=np.arange(n + 1) * lr,
        )
        assert len(res.t) == n + 1
        assert np.all(np.einsum("kd,td->tk", X, res.W[:, 0]) > 0.05)  # stays in the cone
        assert np.all(res.a[:, 0] > 0)
        errs.append(np.linalg.norm(np.append(res.W[-1, 0], res.a[-1, 0]) - ref))
    slope = np.polyfit(np.log(lrs), np.log(errs), 1)[0]
    assert 0.9 <= slope <= 1.1, (slope, errs)
    assert errs[-1] < 1e-2  # and the errors are small, not just of the right order


def test_keyboard_interrupt_returns_partial_result(three):
    calls = {"n": 0}

    def derivative(p, y):
        calls["n"] += 1
        if calls["n"] == 51:
            raise KeyboardInterrupt
        return p - y

    loss = model.make_loss(lambda p, y: 0.5 * (p - y) ** 2, derivative, name="interruptible")
    init = balanced(8, 2, 0.1, seed=0)
    res = gradient_descent(three, init, lr=0.01, steps=1000, loss=loss)
    assert res.meta["interrupted"] is True and res.steps == 50
    assert res.t[-1] == pytest.approx(0.5)
    full = gradient_descent(three, init, lr=0.01, steps=50)
    np.testing.assert_array_equal(res.W[-1], full.W[-1])


def test_progress_line_on_stderr(three, capsys):
    gradient_descent(three, balanced(4, 2, 0.1), lr=0.01, steps=10, progress=True)
    err = capsys.readouterr().err
    assert "gd: step 10/10" in err


def test_time_per_step_is_positive_and_small(three):
    s = time_per_step(three, balanced(100, 2, 1e-3), lr=1e-3, n_steps=20)
    assert 0 < s < 0.05


_BAD = [
    (dict(lr=0.0, steps=1), "lr"),
    (dict(lr=-1.0, steps=1), "lr"),
    (dict(lr=float("nan"), steps=1), "lr"),
    (dict(lr=float("inf"), steps=1), "lr"),
    (dict(lr="fast", steps=1), "lr"),
    (dict(lr=0.1), "exactly one of t_max and steps"),
    (dict(lr=0.1, steps=1, t_max=1.0), "exactly one of t_max and steps"),
    (dict(lr=0.1, t_max=-1.0), "t_max"),
    (dict(lr=0.1, t_max=float("nan")), "t_max"),
    (dict(lr=0.1, steps=-1), "steps"),
    (dict(lr=0.1, steps=1.5), "steps"),
    (dict(lr=0.1, steps=True), "steps"),
    (dict(lr=0.1, steps=10, save_times=[0.0, 5.0]), "save_times"),
    (dict(lr=0.1, steps=10, save_times=[-0.1]), "save_times"),
    (dict(lr=0.1, steps=10, save_times=[float("nan")]), "save_times"),
    (dict(lr=0.1, steps=1, gamma=2.0), "gamma"),
    (dict(lr=0.1, steps=1, loss="hinge"), "unknown loss"),
    (dict(lr=0.1, steps=1, slope_at_zero=float("nan")), "slope_at_zero"),
]


@pytest.mark.parametrize("kwargs,fragment", _BAD)
def test_invalid_arguments(three, kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        gradient_descent(three, balanced(3, 2, 1.0), **kwargs)


def test_dimension_mismatch(three):
    with pytest.raises(ValueError, match="input dimension d = 3"):
        gradient_descent(three, balanced(3, 3, 1.0), lr=0.1, steps=1)
    with pytest.raises(ValueError, match="data must be a pwflow.Dataset"):
        gradient_descent((three.X, three.y), balanced(3, 2, 1.0), lr=0.1, steps=1)


@pytest.mark.parametrize("n_steps", [0, -3, 2.5])
def test_time_per_step_invalid(three, n_steps):
    with pytest.raises(ValueError, match="n_steps"):
        time_per_step(three, balanced(3, 2, 1.0), lr=0.1, n_steps=n_steps)


@pytest.mark.parametrize("gamma,at_zero", [(0.0, 0.0), (0.0, 0.5), (0.3, None), (0.3, 0.8)])
def test_inline_step_on_kinks_matches_model_gradient(gamma, at_zero):
    # integer data and weights: many <w_j, x_k> are exactly 0
    rng = np.random.default_rng(11)
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, -1.0]])
    y = np.array([1.0, -0.5, 2.0, 0.3])
    W = rng.integers(-2, 3, size=(30, 2)).astype(float)
    a = rng.integers(-2, 3, size=30).astype(float)
    assert np.sum(X @ W.T == 0) >= 10
    st = _make_stepper(Dataset(X, y), "square", gamma, at_zero)
    Z, act, h = st.forward(W.T.copy(), a)
    gWt, ga = st.grads(Z, act, h, a)
    ref_W, ref_a = model.gradient(W, a, X, y, model.square_loss, gamma, slope_at_zero=at_zero)
    np.testing.assert_allclose(gWt.T, ref_W, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(ga, ref_a, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("t_max,expected", [(0.25, 2), (0.3, 3), (0.29999, 2), (1.0, 10)])
def test_t_max_gives_floor_of_t_max_over_lr_steps(three, t_max, expected):
    # 0.3 / 0.1 = 2.9999999999999996 in floating point: the rounding tolerance gives 3 steps
    res = gradient_descent(three, balanced(3, 2, 1.0), lr=0.1, t_max=t_max)
    assert res.steps == expected and res.t[-1] == pytest.approx(expected * 0.1)
