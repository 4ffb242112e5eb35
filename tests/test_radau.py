"""pwflow's Radau IIA (:mod:`pwflow.radau`) against scipy's and against closed forms.

The port inverts the Newton matrices with numpy where scipy LU-factorises them, so it agrees
with ``scipy.integrate.Radau`` to rounding, not bitwise: the same accepted steps (counts,
field and Jacobian evaluations) on classic stiff problems, states to ~1e-13 relative; on
drawn linear systems with a fixed step, the same times and states to rounding.  Against
closed forms: fitted order 5, dense output to its (cubic) accuracy; and the common
contract: ``t_bound`` reached exactly, failure status on a non-finite field, ValueError
naming the argument.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
from hypothesis import given
from hypothesis import strategies as st
from ode_strategies import (LinearSystem, check_fails_on_non_finite_field, fixed_step_error,
                            linear_systems)

import pwflow
import pwflow.stepper
from pwflow.radau import Radau
from pwflow.rk import DOP853


def _robertson(t, y):
    return np.array([-0.04 * y[0] + 1e4 * y[1] * y[2],
                     0.04 * y[0] - 1e4 * y[1] * y[2] - 3e7 * y[1] ** 2,
                     3e7 * y[1] ** 2])


def _robertson_jac(t, y):
    return np.array([[-0.04, 1e4 * y[2], 1e4 * y[1]],
                     [0.04, -1e4 * y[2] - 6e7 * y[1], -1e4 * y[1]],
                     [0.0, 6e7 * y[1], 0.0]])


def _van_der_pol(t, y, mu=1000.0):
    return np.array([y[1], mu * (1 - y[0] ** 2) * y[1] - y[0]])


def _van_der_pol_jac(t, y, mu=1000.0):
    return np.array([[0.0, 1.0], [-2 * mu * y[0] * y[1] - 1, mu * (1 - y[0] ** 2)]])


def _run(cls, fun, jac, y0, t_bound, **kw):
    s = cls(fun, 0.0, y0, t_bound, jac=jac, **kw)
    ts = []
    while s.status == "running":
        s.step()
        ts.append(s.t)
    return s, np.array(ts)


@pytest.mark.parametrize("fun, jac, y0, t_bound", [
    (_robertson, _robertson_jac, np.array([1.0, 0.0, 0.0]), 1e3),
    (_van_der_pol, _van_der_pol_jac, np.array([2.0, 0.0]), 3000.0),
])
def test_same_steps_as_scipy_on_stiff_problems(fun, jac, y0, t_bound):
    """Robertson (95 steps) and van der Pol at μ = 1000 (1187 steps), rtol 1e-6."""
    kw = dict(rtol=1e-6, atol=1e-8)
    ours, t_ours = _run(Radau, fun, jac, y0, t_bound, **kw)
    ref, t_ref = _run(scipy.integrate.Radau, fun, jac, y0, t_bound, **kw)
    assert ours.status == ref.status == "finished" and ours.t == t_bound
    assert t_ours.size == t_ref.size
    assert (ours.nfev, ours.njev, ours.nlu) == (ref.nfev, ref.njev, ref.nlu)
    # the same decisions (steps, evaluations, factorisations); the step times agree to the
    # rounding that 1187 steps of van der Pol accumulate, which depends on the machine's BLAS
    # kernels: 1e-6 measured on one machine, 1.4e-5 on an AMD EPYC
    np.testing.assert_allclose(t_ours, t_ref, rtol=1e-4)
    assert np.max(np.abs(ours.y - ref.y)) <= 1e-12 * np.max(np.abs(ref.y))


@given(system=linear_systems(n_max=8, norm=3.0, shift=-20.0),
       steps=st.integers(4, 40))
def test_fixed_steps_agree_with_scipy_to_rounding(system: LinearSystem, steps: int):
    """With the step pinned (``first_step = max_step``, loose tolerances) both solvers take
    the same times; every state agrees to rounding (linear field, exact Jacobian)."""
    h = 1.0 / 8
    kw = dict(rtol=1.0, atol=1.0, first_step=h, max_step=h, jac=system.jac)
    ours = Radau(system.fun, 0.0, system.y0, steps * h, **kw)
    ref = scipy.integrate.Radau(system.fun, 0.0, system.y0, steps * h, **kw)
    while ref.status == "running":
        ours.step()
        ref.step()
        assert ours.t == ref.t and ours.status == ref.status
        scale = max(np.max(np.abs(ref.y)), 1e-3 * np.max(np.abs(system.y0)))
        assert np.max(np.abs(ours.y - ref.y)) <= 1e-13 * scale
        tt = np.linspace(ref.t_old, ref.t, 5)
        inside = ref.dense_output()(tt)
        # inside the step the interpolant can be far larger than at its end (a forced mode
        # decaying from 0.03 to 7.5e-4 over the step: 2.2e-16 apart, thorough profile)
        scale = max(scale, np.max(np.abs(inside)))
        assert np.max(np.abs(ours.dense_output()(tt) - inside)) <= 1e-13 * scale


@given(system=linear_systems(n_max=6, norm=2.0, shift=-30.0))
def test_adaptive_run_agrees_with_scipy(system: LinearSystem):
    """Adaptive steps on a drawn stiff forced system: the step sequences may part at a
    rounding-sized step-size decision, but the end states agree far below the tolerance."""
    kw = dict(rtol=1e-8, atol=1e-10)
    ours, t_ours = _run(Radau, system.fun, system.jac, system.y0, 5.0, **kw)
    ref, t_ref = _run(scipy.integrate.Radau, system.fun, system.jac, system.y0, 5.0, **kw)
    assert ours.status == "finished" and ours.t == 5.0
    assert abs(t_ours.size - t_ref.size) <= max(2, t_ref.size // 50)
    scale = max(np.max(np.abs(ref.y)), np.max(np.abs(system.y0)))
    assert np.max(np.abs(ours.y - ref.y)) <= 1e-10 * scale


@given(system=linear_systems(n_max=4, norm=4.0, forced=False, symmetric=True))
def test_fitted_order_is_5(system: LinearSystem):
    hs = np.array([1 / 8, 1 / 16, 1 / 32])
    big = np.kron(system.A, np.eye(system.n))
    errs = np.array([fixed_step_error(Radau, system, h, jac=lambda t, y: big) for h in hs])
    slope = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    assert 4.5 <= slope <= 5.8, (errs, slope)


@given(system=linear_systems(n_max=6, norm=2.0, shift=-10.0, forced=False))
def test_dense_output_accuracy(system: LinearSystem):
    """The cubic interpolant, called on arrays of times, against ``expm(A t) y0``."""
    s = Radau(system.fun, 0.0, system.y0, 2.0, rtol=1e-7, atol=1e-9, jac=system.jac)
    worst, k = 0.0, 0
    while s.status == "running":
        s.step()
        k += 1
        if k % 8 and s.status == "running":  # expm is slow: every 8th step and the last
            continue
        dense = s.dense_output()
        tt = np.linspace(s.t_old, s.t, 5)
        vals = dense(tt)
        assert vals.shape == (system.n, tt.size)
        np.testing.assert_allclose(vals[:, 3], dense(tt[3]), rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(vals[:, -1], s.y, rtol=1e-12, atol=1e-14)
        exact = np.stack([scipy.linalg.expm(system.A * t) @ system.y0 for t in tt], axis=1)
        worst = max(worst, np.max(np.abs(vals - exact)))
    assert worst <= 1e-5 * np.max(np.abs(system.y0)), worst


@given(system=linear_systems(n_max=6, norm=2.0, shift=-10.0, forced=False))
def test_dense_output_derivative(system: LinearSystem):
    """``derivative`` is the cubic's slope: at the step end (the last collocation node) the
    field there, to the Newton iteration's tolerance; inside, a central difference of the
    interpolant."""
    s = Radau(system.fun, 0.0, system.y0, 1.0, rtol=1e-8, atol=1e-10, jac=system.jac)
    while s.status == "running":
        s.step()
        dense = s.dense_output()
        size = max(np.max(np.abs(s.f)), 1.0)
        np.testing.assert_allclose(dense.derivative(np.array([s.t]))[:, 0], s.f,
                                   atol=1e-5 * size)
        tt = np.linspace(s.t_old, s.t, 5)[1:-1]
        eps = 1e-5 * (s.t - s.t_old)
        fd = (dense(tt + eps) - dense(tt - eps)) / (2 * eps)
        np.testing.assert_allclose(dense.derivative(tt), fd, atol=1e-7 * size)


@given(t_bound=st.floats(1e-6, 1e3))
def test_t_bound_is_reached_exactly(t_bound):
    s = Radau(lambda t, y: -y, 0.0, np.ones(2), t_bound, rtol=1e-8, atol=1e-10,
              jac=lambda t, y: -np.eye(2))
    while s.status == "running":
        assert s.step() is None
        assert s.t <= t_bound
    assert s.status == "finished" and s.t == t_bound
    assert s.y == pytest.approx(np.exp(-t_bound) * np.ones(2), rel=1e-5, abs=1e-9)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_field_fails_with_a_status(bad):
    check_fails_on_non_finite_field(Radau, bad, jac=lambda t, y: -np.eye(3))


@pytest.mark.parametrize("change, name", [
    (dict(jac=None), "jac"),
    (dict(jac=lambda t, y: np.eye(3)), "jac"),
    (dict(y0=np.ones((2, 1))), "y0"),
    (dict(t_bound=-1.0), "t_bound"),
    (dict(atol=np.ones(5)), "atol"),
    (dict(first_step=-1.0), "first_step"),
])
def test_invalid_input_names_the_argument(change, name):
    kw = {**dict(fun=lambda t, y: -y, t0=0.0, y0=np.ones(2), t_bound=1.0,
                 jac=lambda t, y: -np.eye(2)), **change}
    with pytest.raises(ValueError, match=name):
        Radau(kw.pop("fun"), kw.pop("t0"), kw.pop("y0"), kw.pop("t_bound"), **kw)


def test_run_with_pwflow_solvers_matches_scipy_solvers(monkeypatch):
    """A real run with Radau on the quiet stretches (three points, t = 400): with pwflow's
    solvers (the structured Jacobian solved by Woodbury) and with scipy's (the same Jacobian
    as a dense matrix, LU-factorised), the same events (times to 1e-9) and end state
    (1e-10)."""
    data, init = pwflow.three_points(), pwflow.balanced(200, 2, 1e-3, seed=0)
    names, ours_class = [], pwflow.stepper.solver_class
    monkeypatch.setattr(pwflow.stepper, "solver_class",
                        lambda name: names.append(name) or ours_class(name))
    ours = pwflow.simulate(data, init, 400.0, n_snapshots=4)
    assert ours_class("Radau") is Radau and "Radau" in names
    def scipy_radau(fun, t0, y0, t_bound, jac=None, **kw):  # scipy wants the matrix itself
        return scipy.integrate.Radau(fun, t0, y0, t_bound, jac=lambda t, y: jac(t, y).dense(),
                                     **kw)

    scipy_classes = {"DOP853": scipy.integrate.DOP853, "Radau": scipy_radau}
    monkeypatch.setattr(pwflow.stepper, "solver_class", scipy_classes.__getitem__)
    ref = pwflow.simulate(data, init, 400.0, n_snapshots=4)
    assert ours.status == ref.status == 0
    assert ours.n_events == ref.n_events > 0
    for key in ("neuron", "k", "kind"):
        assert np.array_equal(ours.events[key], ref.events[key])
    np.testing.assert_allclose(ours.events["t"], ref.events["t"], rtol=1e-9, atol=1e-12)
    scale = max(np.max(np.abs(ref.W[-1])), np.max(np.abs(ref.a[-1])))
    assert np.max(np.abs(ours.W[-1] - ref.W[-1])) <= 1e-10 * scale
    assert np.max(np.abs(ours.a[-1] - ref.a[-1])) <= 1e-10 * scale


def test_dop853_and_radau_share_the_contract():
    """The stepper reads the same attributes from both."""
    for cls, kw in ((DOP853, {}), (Radau, dict(jac=lambda t, y: -np.eye(2)))):
        s = cls(lambda t, y: -y, 0.0, np.ones(2), 1.0, rtol=1e-8, atol=1e-10, **kw)
        s.step()
        for attr in ("t", "t_old", "y", "f", "h_abs", "status", "nfev", "t_bound"):
            assert hasattr(s, attr)
        assert callable(s.dense_output())


# ------------------------------------------------------------- structured Jacobians (Woodbury)
@given(st.integers(1, 6), st.integers(2, 5), st.integers(0, 4), st.integers(0, 2**32 - 1))
def test_block_low_rank_solves_agree_with_dense_ones(P, q, r, seed):
    """``(c I − J) x = b`` by :class:`BlockLowRank`'s Woodbury solve against
    ``numpy.linalg.solve`` on the dense matrix, for a real and a complex shift (those Radau
    uses), random blocks and rank 0 to 4."""
    from pwflow.radau import BlockLowRank

    rng = np.random.default_rng(seed)
    N = P * q * q
    J = BlockLowRank(rng.normal(size=(P, q, q)), 0.3 * rng.normal(size=(N, r)),
                     0.3 * rng.normal(size=(r, N)))
    D = J.dense()
    b = rng.normal(size=N)
    for c in (3.7 + 0.0, 2.1 - 1.4j):
        x = J.shifted_solver(c).solve(b)
        ref = np.linalg.solve(c * np.eye(N) - D, b)
        assert np.allclose(x, ref, rtol=1e-9, atol=1e-9 * np.max(np.abs(ref)))


def test_radau_with_a_block_low_rank_jacobian_takes_the_dense_one_s_steps():
    """A linear system ``y' = J y`` with ``J`` block diagonal (Kronecker blocks) plus rank 2:
    Radau given the structure and Radau given the dense matrix take the same steps (to 1e-6:
    the error estimate's cancellation amplifies the solves' rounding), the same number of
    field evaluations, and their states agree to 1e-9 of the start."""
    from pwflow.radau import BlockLowRank

    rng = np.random.default_rng(1)
    P, q, r = 3, 3, 2
    N = P * q * q
    K = rng.normal(size=(P, q, q)) - 3.0 * np.eye(q)
    J = BlockLowRank(K, 0.5 * rng.normal(size=(N, r)), 0.5 * rng.normal(size=(r, N)))
    D = J.dense()
    y0 = rng.normal(size=N)
    runs = []
    for jac in (lambda t, y: J, lambda t, y: D, lambda t, y: 0.5 * D):
        s = Radau(lambda t, y: D @ y, 0.0, y0, 5.0, rtol=1e-8, atol=1e-10, jac=jac)
        ts = []
        while s.status == "running":
            s.step()
            ts.append(s.t)
        runs.append((np.array(ts), s.y.copy(), s.nfev))
    (t_s, y_s, nfev_s), (t_d, y_d, nfev_d), (_, _, nfev_wrong) = runs
    assert t_s.size == t_d.size and np.allclose(t_s, t_d, rtol=1e-6)
    assert np.max(np.abs(y_s - y_d)) <= 1e-9 * np.max(np.abs(y0))
    # the Newton iterations converge as fast as with the dense matrix (a wrong Jacobian,
    # half of it, needs more field evaluations)
    assert abs(nfev_s - nfev_d) <= 0.02 * nfev_d < nfev_wrong - nfev_d


def test_block_low_rank_refuses_inconsistent_shapes():
    from pwflow.radau import BlockLowRank

    K = np.zeros((2, 3, 3))
    with pytest.raises(ValueError, match="K must have shape"):
        BlockLowRank(np.zeros((2, 3, 4)), np.zeros((18, 1)), np.zeros((1, 18)))
    with pytest.raises(ValueError, match="U and V"):
        BlockLowRank(K, np.zeros((17, 1)), np.zeros((1, 18)))
    with pytest.raises(ValueError, match="U and V"):
        BlockLowRank(K, np.zeros((18, 2)), np.zeros((1, 18)))
    assert BlockLowRank(K, np.zeros((18, 0)), np.zeros((0, 18))).shape == (18, 18)
