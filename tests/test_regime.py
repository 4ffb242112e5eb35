"""The regime of the sliding faces (:mod:`pwflow.regime`): residuals from the step's output
polynomial, the face-event search and the fast path of one-slope faces, each against the
direct computation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from strategies import matrices

import pwflow
from pwflow.bisection import bisect
from pwflow.dense import propagators_at, quadratic_form_at
from pwflow.integrator import simulate
from pwflow.model import get_loss
from pwflow.patterns import PatternTable
from pwflow.stepper import HybridFlow
from pwflow.vector_field import CollectiveField, lorentz_project, moments


@pytest.mark.parametrize("name", ["stewart", "random-d5"])
def test_residuals_from_the_output_polynomial_equal_the_face_by_face_ones(name):
    # the outputs on a step are a quadratic form in the dense output's basis: at any event
    # time they are the outputs of the Lorentz-projected propagators, to rounding
    if name == "stewart":
        data, init = pwflow.stewart(seed=0, n=40), pwflow.unbalanced(40, 2, 1e-3, seed=0)
    else:  # d = 5: passive faces replayed, the dense output holds the occupied faces' rows
        rng = np.random.default_rng(0)
        data = pwflow.Dataset(rng.normal(size=(20, 5)), rng.normal(size=20))
        init = pwflow.balanced(300, 5, 1e-2, seed=0)
    flow = HybridFlow(data.X, data.y, init.W, init.a, get_loss("square"), 0.0,
                      pwflow.FlowOptions())
    for _ in range(3 if name == "stewart" else 80):
        flow.step(5.0)
        if flow.__dict__.get("_passive") is not None:  # d = 5: once faces are replayed
            break
    flow._start_solver(5.0)
    assert (name == "stewart") == (flow.__dict__.get("_passive") is None)
    flow._solver.step()
    F = flow._dense_coefficients(flow._solver)
    xs = np.r_[0.0, 1.0, np.random.default_rng(1).uniform(0, 1, 200)]
    field_ = flow._field
    direct = field_.residuals(lorentz_project(propagators_at(F, xs, field_.occupied)))
    poly = flow._residuals_at(F, field_, xs)[0]
    h = field_.outputs(lorentz_project(propagators_at(F, xs, field_.occupied)))
    # (r = h − y: plus the rounding of that difference)
    tol = 1e-13 * np.max(np.abs(h)) + 4 * np.finfo(float).eps * np.max(np.abs(direct))
    assert np.max(np.abs(poly - direct)) <= tol


@settings(deadline=None)
@given(data=st.data(), d=st.integers(1, 5), n=st.integers(1, 9),
       m=st.integers(1, 30), empty=st.integers(0, 10), occupied_only=st.booleans())
def test_output_polynomial_equals_the_outputs_of_the_dense_output(data, d, n, m, empty,
                                                                   occupied_only):
    # h(x) = Σ b_c b_c' G[c, c'] against CollectiveField.outputs on Φ(x) = Σ b_c F_c, at
    # drawn fractions: every face (empty ones too) and the occupied faces' rows alone
    X, y = data.draw(matrices(n, d), label="X"), data.draw(matrices(n, 0), label="y")
    table = PatternTable(X, 0.1)
    Z = data.draw(matrices(m, d + 1), label="Z")
    pat = table.index_many(np.sign(Z[:, :d] @ X.T).astype(np.int8))
    table.index_many(np.sign(data.draw(matrices(empty, d), label="W_empty") @ X.T)
                     .astype(np.int8))
    P, q = len(table), d + 1
    field_ = CollectiveField(table.arrays(), moments(Z, pat, P), X, y, get_loss("square"))
    F = data.draw(hnp.arrays(np.float64, (8, P, q, q),
                             elements=st.floats(-2.0, 2.0, allow_subnormal=False)), label="F")
    F *= (0.5 ** np.arange(8))[:, None, None, None]
    F[0] += np.eye(q)
    if occupied_only:
        F = F[:, field_.occupied]
    xs = np.array(data.draw(st.lists(st.floats(0.0, 1.0), min_size=20, max_size=20),
                            label="fractions"))
    h = quadratic_form_at(field_.output_polynomial(F), xs)
    direct = field_.outputs(propagators_at(F, xs))
    # the rounding scale: the same sums on absolute values
    absf = CollectiveField(table.arrays(), np.abs(moments(Z, pat, P)), np.abs(X), y,
                           get_loss("square"))
    scale = absf.outputs(np.abs(propagators_at(np.abs(F), xs)))
    np.testing.assert_array_less(np.abs(h - direct), 1e-13 * scale + 1e-300)


def _sequential_face_events(flow: HybridFlow, F, t0, t1):
    """The face-event search before issue 13: one scalar regime evaluation per midpoint."""
    h = t1 - t0
    r0 = flow._regime
    hi = bisect(t0, t1, lambda t: flow._regime_changed(
        flow._face_regime_at(propagators_at(F, (t - t0) / h)), r0), [t0, t1])
    return hi, flow._face_regime_at(propagators_at(F, (hi - t0) / h))


@pytest.mark.parametrize("lam, seed, m, t_max", [(1e-3, 0, 40, 100.0), (0.1, 3, 50, 60.0)])
def test_face_events_and_stacked_regimes_equal_the_sequential_search(lam, seed, m, t_max,
                                                                   monkeypatch):
    # Stewart's data: 4 face events by t = 100 (λ = 1e-3), and 9 with branch points (λ = 0.1)
    data, init = pwflow.stewart(seed=0, n=40), pwflow.unbalanced(m, 2, lam, seed=seed)
    batched = HybridFlow._face_events
    seen = {"searches": 0, "rows": 0}

    def both(self, F, t0, t1):
        hi_seq, (codes, rsign) = _sequential_face_events(self, F, t0, t1)
        hi, exits = batched(self, F, t0, t1)
        assert hi == hi_seq
        np.testing.assert_array_equal(self._rsign_at[1], rsign)
        # the regime on a stack of times: each row that of the scalar call
        xs = np.linspace(0.0, 1.0, 9)
        c, r = self._face_regime_at(propagators_at(F, xs, rowwise=True))
        for i, x in enumerate(xs):
            c1, r1 = self._face_regime_at(propagators_at(F, float(x)))
            np.testing.assert_array_equal(c[i], c1)
            np.testing.assert_array_equal(r[i], r1)
        seen["searches"] += 1
        return hi, exits

    monkeypatch.setattr(HybridFlow, "_face_events", both)
    tr = simulate(data, init, t_max, n_snapshots=4)
    assert tr.status == 0
    assert seen["searches"] >= 4


@pytest.fixture(scope="module")
def sliding_flow() -> HybridFlow:
    """A run at a global minimum (three points, λ = 0.3) whose last solver start watches
    one-slope sliding faces (the regime's fast path)."""
    flows = []
    simulate(pwflow.three_points(), pwflow.balanced(60, 2, 0.3, seed=0), 150.0, n_snapshots=2,
             callback=lambda f: flows.append(f) if not flows else None)
    flow = flows[0]
    assert flow._regime_plan is not None and flow._regime_faces.size >= 2
    return flow


@pytest.mark.parametrize("resolution", [0.0, 1e-6, 1e-2])
@given(R=hnp.arrays(float, st.tuples(st.integers(1, 6), st.just(3)),
                    elements=st.one_of(st.just(0.0),
                                       st.floats(-1.0, 1.0, allow_subnormal=False))))
def test_undecided_one_slope_regimes_equal_the_general_rule(sliding_flow, R, resolution):
    # where r_k = 0 a one-slope face has no η*: its regime comes from D (the general rule,
    # row by row); the fast path reads it for every time at once, with the same numbers,
    # whatever the residuals' resolution (0: rounding alone)
    flow = sliding_flow
    plan = flow._regime_plan
    G, est = flow.table.single_fields(plan, R)
    r_tol = resolution * np.abs(R) + resolution
    vres = flow._velocity_resolution(R, r_tol)
    fast = flow._departures(G, vres)
    assert fast.shape == est.shape
    free = flow._regime_free
    for t, r in enumerate(R):
        general = flow._several_slopes_regime(r, flow._velocity_resolution(r, r_tol[t]))
        undecided = np.flatnonzero(np.isnan(est[t]))
        np.testing.assert_array_equal(fast[t, undecided], general[undecided, plan.k[undecided]])
        assert np.all(free[undecided, plan.k[undecided]])
