"""Which solver runs the propagators (:mod:`pwflow.solvers`): the implicit solver's size
limit, its structured Jacobian, and the hand-over rules."""

from __future__ import annotations

import numpy as np
import pytest

import pwflow
from pwflow.integrator import simulate


class _TooLarge(Exception):
    pass


@pytest.mark.slow  # moved out of CI's time (session 47: CI at 876 of 900 s)
def test_the_implicit_solver_is_not_started_on_a_dense_jacobian_too_large(monkeypatch):
    """d = 40, n = 10, m = 6: the occupied faces' propagators have N = 6 · 41² = 10 086
    unknowns.  The quiet stretch after t ≈ 1.5 used to hand over to Radau, whose dense
    finite-difference Jacobian (N field evaluations) and two O(N³) inverses did not finish in
    ten minutes.  Above :data:`pwflow.solvers.STIFF_MAX_DIM` the stretch stays with DOP853:
    no Radau is built, and the run agrees with the DOP853-only run (``stiff_solver=None``).
    With the limit lifted, Radau is built on N > the limit (caught here before it works).
    Every face in DOP853's state: with the passive faces replayed (their fields are iterative
    solves) the run has no such quiet stretch (71 steps against 206, 1.1 s against 7.2 s)."""
    import pwflow.radau as radau
    import pwflow.solvers as solvers
    from pwflow.stepper import HybridFlow

    monkeypatch.setattr(HybridFlow, "REPLAY_PASSIVE", None)

    built = []
    original = radau.Radau.__init__

    def init(self, fun, t0, y0, *args, **kwargs):
        built.append(np.size(y0))
        if np.size(y0) > 1024:
            raise _TooLarge(np.size(y0))
        original(self, fun, t0, y0, *args, **kwargs)

    monkeypatch.setattr(radau.Radau, "__init__", init)
    rng = np.random.default_rng(6)
    X, y = rng.normal(size=(10, 40)), rng.normal(size=10)
    W, a = 0.1 * rng.normal(size=(6, 40)), 0.1 * rng.normal(size=6)

    def run(**kw):
        return simulate(pwflow.Dataset(X, y), pwflow.from_arrays(W, a), 8.0, **kw)

    tr = run()
    assert tr.status == 0 and all(n <= solvers.STIFF_MAX_DIM for n in built), built
    ref = run(options=pwflow.FlowOptions(stiff_solver=None))
    np.testing.assert_allclose(tr.W[-1], ref.W[-1], rtol=0, atol=1e-8)
    monkeypatch.setattr(solvers, "STIFF_MAX_DIM", 10**9)
    with pytest.raises(_TooLarge):
        run()


@pytest.mark.parametrize("d,n,loss", [(2, 5, "square"), (3, 6, "square"), (5, 6, "logistic")])
def test_the_implicit_solver_s_jacobian_is_the_field_s(d, n, loss):
    """The structured Jacobian of the collective field (block diagonal plus rank n,
    ``Restricted.jac``) against forward differences of the whole field, column by column,
    at a state of a quiet stretch (where Radau takes over): equal to the differences' own
    error, ``√eps`` of the largest entry."""
    from pwflow.solvers import Restricted

    rng = np.random.default_rng(d)
    y = rng.normal(size=n) if loss == "square" else rng.choice([-1.0, 1.0], size=n)
    data = pwflow.Dataset(rng.normal(size=(n, d)), y)
    seen = {}

    def grab(flow):
        fun = getattr(flow, "_fun", None)
        if isinstance(fun, Restricted) and flow._solver is not None and "J" not in seen:
            yv = flow._solver.y.copy()
            Js = fun.jac(0.0, yv).dense()
            f0 = fun(0.0, yv)
            Jf = np.empty_like(Js)
            for c in range(yv.size):
                dy = np.sqrt(np.finfo(float).eps) * max(1.0, abs(yv[c]))
                yc = yv.copy()
                yc[c] += dy
                Jf[:, c] = (fun(0.0, yc) - f0) / dy
            seen["J"] = (Js, Jf)

    simulate(data, pwflow.balanced(8, d, 0.5, seed=d), 300.0, loss=loss, n_snapshots=4,
             callback=grab)
    assert "J" in seen, "no quiet stretch reached"
    Js, Jf = seen["J"]
    assert np.max(np.abs(Js - Jf)) <= 1e-6 * max(1.0, np.max(np.abs(Jf)))


def test_a_long_implicit_stretch_measures_the_explicit_rate_again():
    """``Phase``: DOP853 measures its rate (evaluations per time unit) on a quiet stretch and
    hands over; the implicit solver is held to that rate.  After ``probe`` implicit steps in
    one stretch DOP853 takes ``window`` quiet steps to measure it again (the probe doubles),
    so that a rate measured long ago does not keep the implicit solver where the explicit one
    has become cheap: with the new, lower rate the implicit solver is a wrong guess at its
    next ``window`` steps (``after`` doubles)."""
    from pwflow.solvers import Phase

    ph = Phase(after=20)
    assert [ph.quiet(12.0, 0.1, 0.1) for _ in range(20)] == [False] * 19 + [True]
    assert ph.stiff and ph.rate_explicit == pytest.approx(120.0)
    # implicit steps at 50 evaluations per time unit: within 3 × 120, kept until the probe
    switched = [ph.quiet(5.0, 0.1, None) for _ in range(ph.probe)]
    assert switched == [False] * 255 + [True]
    assert not ph.stiff and ph.measure and ph.need == ph.window and ph.probe == 512
    assert ph.after == 20  # a probe is not a wrong guess
    # DOP853 is now cheap (12 evaluations per 10 time units): measured over `window` steps
    assert [ph.quiet(12.0, 10.0, 10.0) for _ in range(10)] == [False] * 9 + [True]
    assert ph.stiff and ph.rate_explicit == pytest.approx(1.2) and not ph.measure
    assert [ph.quiet(5.0, 0.1, None) for _ in range(10)] == [False] * 9 + [True]
    assert not ph.stiff and ph.after == 40  # a wrong guess


def test_an_implicit_stretch_that_holds_its_cost_bound_sets_after_back():
    """``Phase``: each wrong guess of the implicit solver doubles ``after`` (the quiet DOP853
    steps before the next hand-over); a later implicit stretch that holds the cost bound
    over ``window`` steps sets it back to its first value when it ends (an event, a probe),
    since the guesses before it were made on other dynamics.  A stretch ended by an event
    before ``window`` steps says nothing about the cost: ``after`` stays."""
    from pwflow.solvers import Phase

    ph = Phase(after=20)
    assert [ph.quiet(12.0, 0.1, 0.1) for _ in range(20)] == [False] * 19 + [True]
    assert ph.rate_explicit == pytest.approx(120.0)
    for after in (40, 80):  # two wrong guesses: 500 evaluations per time unit > 3 × 120
        assert [ph.quiet(50.0, 0.1, None) for _ in range(10)] == [False] * 9 + [True]
        assert not ph.stiff and ph.after == after
        assert [ph.quiet(12.0, 0.1, 0.1) for _ in range(after)] == [False] * (after - 1) + [True]
    # an event before `window` implicit steps: no verdict on the cost, `after` kept
    assert [ph.quiet(5.0, 0.1, None) for _ in range(9)] == [False] * 9
    ph.leave(wrong_guess=False)
    assert not ph.stiff and ph.after == 80 and ph.need == ph.again
    assert [ph.quiet(12.0, 0.1, 0.1) for _ in range(3)] == [False, False, True]
    # a stretch that held the bound (50 per time unit) for `window` steps, then an event
    assert [ph.quiet(5.0, 0.1, None) for _ in range(12)] == [False] * 12
    ph.leave(wrong_guess=False)
    assert not ph.stiff and ph.after == 20 and ph.need == ph.again
    # the next wrong guess doubles from there
    assert [ph.quiet(12.0, 0.1, 0.1) for _ in range(3)] == [False, False, True]
    assert [ph.quiet(50.0, 0.1, None) for _ in range(10)] == [False] * 9 + [True]
    assert ph.after == 40


def test_a_slow_logistic_run_is_not_left_to_the_implicit_solver_on_an_old_rate():
    """``tests/explore_long.py`` problem 151 (d = 4, n = 4, m = 50, logistic loss, no rest):
    its dynamics slow down for good after t ≈ 43, where DOP853 takes one step per hundreds of
    time units.  The implicit solver, held to DOP853's rate of the early transient, kept the
    run from t = 43 to 3000: 1 422 steps (DOP853 alone: 239).  With the rate measured again
    after 256 implicit steps: 643 steps, the same 132 events, and the final state 7.3e-14
    (relative) from DOP853 alone."""
    from explore_long import problem

    data, init, gamma, loss, _ = problem(151)
    tr = simulate(data, init, 3000.0, gamma=gamma, loss=loss, n_snapshots=8)
    assert tr.status == 0, tr.message
    assert tr.stats["n_steps"] < 900
    assert tr.n_events == 132
    ref = simulate(data, init, 3000.0, gamma=gamma, loss=loss, n_snapshots=8,
                   options=pwflow.FlowOptions(stiff_solver=None))
    Z, Zr = np.c_[tr.W[-1], tr.a[-1]], np.c_[ref.W[-1], ref.a[-1]]
    assert np.max(np.abs(Z - Zr)) <= 1e-9 * np.max(np.abs(Zr))  # measured 7.3e-14


@pytest.mark.slow  # 5–10 s
def test_a_flow_that_stiffens_late_gets_the_implicit_solver_back():
    """``tests/explore_long.py`` problem 608 (d = 3, n = 5, m = 8, γ = 0.2, square loss,
    t = 3 000): seven wrong guesses of the implicit solver early in the run doubled ``after``
    to 2 560, and DOP853 then took the stiff stretches at its stability limit (9 199 steps,
    126 837 field evaluations; DOP853 alone: 145 091 steps).  With ``after`` set back after
    each implicit stretch that held its cost bound: 4 313 steps, 39 338 evaluations, the
    same 56 events, the final state 6.7e-12 (relative) from the previous code's."""
    from explore_long import problem

    data, init, gamma, loss, _ = problem(608)
    tr = simulate(data, init, 3000.0, gamma=gamma, loss=loss, n_snapshots=8)
    assert tr.status == 0, tr.message
    assert tr.n_events == 56
    assert tr.stats["n_steps"] < 6000  # 9 199 when `after` only doubles
    assert np.max(tr.balancedness_drift()) <= 1e-12
