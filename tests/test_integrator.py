"""The hybrid integrator against independent references.

References: piecewise matrix exponentials (frozen output, Eq. (8)), gradient descent with a
vanishing step, tolerance refinement, the least-squares solution of Theorem 2, and a strict
(restart-at-every-event) run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.linalg import expm
from scipy.optimize import brentq

import pwflow
from pwflow.data import Dataset, with_bias
from pwflow.events import EventKind
from pwflow.init import from_arrays
from pwflow.integrator import FlowOptions, Status, simulate
from pwflow.model import gradient, network_output


# ----------------------------------------------------------------------------- references
def _frozen_field(u, X, y, gamma):
    """Minimal-norm field of face u at θ = 0 (square loss: r = −y), written out by hand."""
    n = X.shape[0]
    eta = np.where(u > 0, 1.0, np.where(u < 0, gamma, 0.0))
    b = (eta * y) @ X / n
    K = np.flatnonzero(u == 0)
    if K.size == 0:
        return b
    assert K.size == 1
    z = y[K[0]] * X[K[0]] / n
    e = np.clip(-(b @ z) / (z @ z), gamma, 1.0)
    return b + e * z


def _M(D):
    d = D.size
    M = np.zeros((d + 1, d + 1))
    M[:d, d] = D
    M[d, :d] = D
    return M


def _reference_frozen(z0, X, y, gamma, t_max):
    """One neuron of Eq. (8): piecewise z(t) = expm(M_u t) z, events by brentq on expm."""
    d = X.shape[1]
    t, z = 0.0, z0.copy()
    u = np.sign(X @ z[:d]).astype(int)
    events = []
    while True:
        M = _M(_frozen_field(u, X, y, gamma))
        f = lambda s, k, M=M, z=z: X[k] @ (expm(M * s) @ z)[:d]  # noqa: E731
        # earliest sign change on a fine grid, then brentq to full precision
        grid = np.linspace(0.0, t_max - t, 301)[1:]
        first = None
        for k in np.flatnonzero(u != 0):
            vals = np.array([f(s, k) for s in grid])
            bad = np.flatnonzero(np.sign(vals) != u[k])
            if bad.size:
                lo = 0.0 if bad[0] == 0 else grid[bad[0] - 1]
                s = brentq(f, lo, grid[bad[0]], args=(k,), xtol=1e-300, rtol=1e-15, maxiter=500)
                if first is None or s < first[0]:
                    first = (s, k)
        if first is None:
            return events, expm(M * (t_max - t)) @ z
        s, k = first
        z = expm(M * s) @ z
        t += s
        # one-sided normal velocities decide: cross or slide (Filippov)
        up, um = u.copy(), u.copy()
        up[k], um[k] = 1, -1
        vp = z[d] * X[k] @ _frozen_field(up, X, y, gamma)
        vm = z[d] * X[k] @ _frozen_field(um, X, y, gamma)
        if vp <= 0 <= vm:  # attracting from both sides (a zero side field: the neuron stops)
            u[k] = 0
            z[:d] -= (X[k] @ z[:d]) / (X[k] @ X[k]) * X[k]
            events.append((t, k, "slide"))
        else:
            assert np.sign(vp) == np.sign(vm)
            u[k] = int(np.sign(vp))
            events.append((t, k, "cross"))


def _gd(X, y, W, a, lr, steps, gamma=0.0):
    loss = pwflow.square_loss
    for _ in range(steps):
        gW, ga = gradient(W, a, X, y, loss, gamma, slope_at_zero=gamma)
        W = W - lr * gW
        a = a - lr * ga
    return W, a


# ----------------------------------------------------------------------------- tests
def test_frozen_output_matches_matrix_exponential():
    data = pwflow.three_points()
    init = pwflow.dominated(20, 2, 1.0, seed=3)
    t_max = 3.0
    tr = simulate(data, init, t_max, frozen_output=True, rtol=1e-12, atol=1e-14, batch_tol=0.0)
    assert tr.success
    ev = tr.events
    n_checked = 0
    for j in range(init.m):
        z0 = np.append(init.W[j], init.a[j])
        ref_events, zT = _reference_frozen(z0, data.X, data.y, 0.0, t_max)
        mine = np.flatnonzero(ev["neuron"] == j)
        assert len(mine) == len(ref_events), f"neuron {j}"
        for i, (t_ref, k_ref, kind) in zip(mine, ref_events):
            assert ev["k"][i] == k_ref
            want = EventKind.ENTER_SLIDING if kind == "slide" else EventKind.CROSSING
            assert ev["kind"][i] == want
            assert abs(ev["t"][i] - t_ref) <= 1e-10 * t_ref
            n_checked += 1
        zT_mine = np.append(tr.W[-1, j], tr.a[-1, j])
        np.testing.assert_allclose(zT_mine, zT, rtol=1e-10, atol=1e-10 * np.linalg.norm(zT))
    assert n_checked >= 10  # the test exercises crossings and sliding entries
    assert {EventKind.CROSSING, EventKind.ENTER_SLIDING} <= set(ev["kind"].tolist())


def test_excursion_inside_one_step_is_found_at_closed_form_times():
    """A neuron that crosses a hyperplane and comes back within one solver step.

    With ``y_2 = 0`` the hyperplane of ``x_2`` does not change the frozen field
    ``D = (y_1/n) x_1``, so ``w_1(t) = R cosh(t/2 − τ)`` (``R² = w_1(0)² − a(0)²``,
    ``tanh τ = −a(0)/w_1(0)``) and ``w_2`` is constant: ``<w, x_2> = w_1 + w_2`` dips below 0
    on ``2(τ ± arccosh(1 + δ/R))`` when ``w_2 = −(R + δ)``. For ``δ <= 1e-5`` the dip is
    shorter than a step and invisible at the step ends (measured: without the in-step scan
    these neurons log no event). Times to what the propagators' accuracy allows: an error
    ``rtol ‖z‖`` in ``s`` moves a root by ``rtol ‖z‖ / |s'|`` (``|s'| = (R/2) sinh(half)``
    there), with a factor 4; at least 1e-9 relative.  (Until snapshots stopped restarting the
    solver, the default 100 snapshot restarts kept the steps short enough for 1e-9 at
    ``δ = 1e-2``; with 8 snapshots the old code measured 3.0e-9 there, the bound is 8.9e-9.)
    """
    data = Dataset(np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([1.0, 0.0]))
    w10, a0 = 1.0, -0.6
    R, tau = np.sqrt(w10**2 - a0**2), np.arctanh(-a0 / w10)
    deltas = np.array([1e-2, 1e-3, 1e-4, 1e-5, 1e-6])
    W = np.column_stack([np.full(deltas.size, w10), -(R + deltas)])
    tr = simulate(data, from_arrays(W, np.full(deltas.size, a0)), 3.0, frozen_output=True)
    assert tr.success and tr.stats["n_excursions"] >= 2
    for j, delta in enumerate(deltas):
        half = np.arccosh(1 + delta / R)
        exact = 2 * (tau + np.array([-half, half]))
        mine = tr.events["neuron"] == j
        np.testing.assert_array_equal(tr.events["k"][mine], [1, 1])
        np.testing.assert_array_equal(tr.events["kind"][mine], [EventKind.CROSSING] * 2)
        slope = R / 2 * np.sinh(half)
        bound = np.maximum(1e-9 * exact, 4 * 1e-10 * np.linalg.norm([w10, R + delta, a0]) / slope)
        assert np.all(np.abs(tr.events["t"][mine] - exact) <= bound)


@pytest.fixture(scope="module")
def three_runs():
    data = pwflow.three_points()
    init = pwflow.balanced(200, 2, 1e-3, seed=0)
    coarse = simulate(data, init, 40.0, t_eval=[10.0, 20.0])
    fine = simulate(data, init, 40.0, rtol=1e-12, atol=1e-14, t_eval=[10.0, 20.0])
    return data, init, coarse, fine


def test_events_are_exact(three_runs):
    _, _, coarse, fine = three_runs
    ev, evf = coarse.events, fine.events
    assert ev["t"].size > 100
    # located to rounding: |<w_j, x_k>| <= 1e-12 ‖w_j‖ ‖x_k‖ at every logged event
    assert np.max(ev["residual"]) <= 1e-12
    # same events with a 100x tighter tolerance, times within 1e-9 relative
    key = lambda e: np.lexsort((e["t"], e["neuron"]))  # noqa: E731
    a, b = key(ev), key(evf)
    assert ev["t"].size == evf["t"].size
    np.testing.assert_array_equal(ev["neuron"][a], evf["neuron"][b])
    np.testing.assert_array_equal(ev["k"][a], evf["k"][b])
    np.testing.assert_array_equal(ev["kind"][a], evf["kind"][b])
    np.testing.assert_allclose(ev["t"][a], evf["t"][b], rtol=1e-9)


def test_lemma1_balancedness_conserved(three_runs):
    _, _, coarse, _ = three_runs
    assert np.max(coarse.balancedness_drift()) <= 1e-10


def test_lemma1_unbalanced_stewart():
    data = pwflow.stewart(seed=0, n=40)
    init = pwflow.unbalanced(60, 2, 0.1, seed=1)
    tr = simulate(data, init, 30.0)
    assert tr.success and tr.n_events > 20
    assert np.max(tr.balancedness_drift()) <= 1e-10
    assert np.max(tr.events["residual"]) <= 1e-12


def test_tolerance_refinement_converges(three_runs):
    data, init, _, fine = three_runs
    errs = []
    for rtol in (1e-6, 1e-8, 1e-10):
        tr = simulate(data, init, 40.0, rtol=rtol, atol=rtol * 1e-2, t_eval=[10.0, 20.0])
        scale = np.max(np.abs(fine.a[-1]))
        errs.append(np.max(np.abs(tr.a[-1] - fine.a[-1])) / scale)
    assert errs[0] > errs[1] > errs[2]
    assert errs[2] <= 1e-8


def test_strict_and_batched_agree(three_runs):
    data, init, coarse, _ = three_runs
    strict = simulate(data, init, 40.0, batch_tol=0.0, t_eval=[10.0, 20.0])
    assert strict.stats["n_cut_steps"] >= coarse.stats["n_cut_steps"]
    np.testing.assert_allclose(np.sort(strict.events["t"]), np.sort(coarse.events["t"]), rtol=1e-9)
    scale = np.max(np.abs(strict.a[-1]))
    assert np.max(np.abs(strict.a[-1] - coarse.a[-1])) <= 1e-8 * scale


def test_quiet_stretches_implicit_solver_matches_dop853():
    """Near convergence the propagators go to an implicit solver; the trajectory is unchanged.

    Reference: the same run with DOP853 only. The late phase (t > 200) has no event and is
    stiff: DOP853's step is bounded by stability, so the implicit run must need far fewer
    steps. Tolerance 1e-9 of the scale: both runs are accurate to ~rtol = 1e-10 per step.
    """
    data = pwflow.three_points()
    init = pwflow.balanced(200, 2, 1e-3, seed=0)
    ref = simulate(data, init, 2000.0, n_snapshots=6, options=FlowOptions(stiff_solver=None))
    tr = simulate(data, init, 2000.0, n_snapshots=6, options=FlowOptions(stiff_solver="Radau"))
    assert tr.success and ref.success
    assert tr.stats["n_steps"] < 0.5 * ref.stats["n_steps"]
    np.testing.assert_array_equal(tr.events["neuron"], ref.events["neuron"])
    np.testing.assert_allclose(tr.events["t"], ref.events["t"], rtol=1e-12)
    scale = np.max(np.abs(ref.a))
    assert np.max(np.abs(tr.a - ref.a)) <= 1e-9 * scale
    assert np.max(np.abs(tr.W - ref.W)) <= 1e-9 * scale
    assert np.max(tr.balancedness_drift()) <= 1e-12


def _without_resolution_grazings(tr, other) -> dict:
    """``tr``'s events without the GRAZING rows that ``other`` does not log (same neuron and
    data point within 1e-6 in time); those must be contacts at the dense output's
    resolution (located depth <= 100 rtol) and at most 1 % of the events."""
    ev = tr.events
    graze = np.flatnonzero(ev["kind"] == EventKind.GRAZING)
    o = other.events
    lone = [i for i in graze if not np.any((o["kind"] == EventKind.GRAZING)
                                           & (o["neuron"] == ev["neuron"][i])
                                           & (o["k"] == ev["k"][i])
                                           & np.isclose(o["t"], ev["t"][i], rtol=1e-6))]
    assert len(lone) <= 0.01 * ev["t"].size, len(lone)
    assert np.all(ev["residual"][lone] <= 100 * FlowOptions().rtol), ev["residual"][lone]
    keep = np.setdiff1d(np.arange(ev["t"].size), lone)
    return {key: val[keep] for key, val in ev.items()}


@pytest.mark.slow  # moved out of CI's time (session 47: CI at 876 of 900 s)
def test_implicit_step_containing_an_event_is_redone_by_dop853():
    """With ``stiff_after = 1`` Radau takes over after every event-free step, so its steps
    often contain events: each is discarded and redone by DOP853 (same event log as the
    DOP853-only run, event times as accurate as that run's)."""
    data = pwflow.stewart(seed=0, n=40)
    init = pwflow.unbalanced(60, 2, 0.1, seed=1)
    ref = simulate(data, init, 30.0, options=FlowOptions(stiff_solver=None))
    tr = simulate(data, init, 30.0, options=FlowOptions(stiff_after=1))
    tight = simulate(data, init, 30.0, options=FlowOptions(stiff_solver=None, rtol=1e-13,
                                                           atol=1e-15))
    assert tr.stats["n_stiff_rollbacks"] > 0
    # grazing contacts at the dense output's resolution (a neuron released from a hyperplane
    # with zero normal velocity dips by ~rtol ‖w‖‖x_k‖) depend on the steps taken: one that
    # only one run logs must be such a contact, and rare; it changes no pattern
    ev_tr, ev_ref = _without_resolution_grazings(tr, ref), _without_resolution_grazings(ref, tr)
    ev_tight = _without_resolution_grazings(tight, ref)
    ka = np.lexsort((ev_tr["t"], ev_tr["neuron"]))
    kb = np.lexsort((ev_ref["t"], ev_ref["neuron"]))
    kc = np.lexsort((ev_tight["t"], ev_tight["neuron"]))
    np.testing.assert_array_equal(ev_tr["neuron"][ka], ev_ref["neuron"][kb])
    np.testing.assert_array_equal(ev_tight["neuron"][kc], ev_ref["neuron"][kb])
    # Against a run at 1000× tighter tolerance, the implicit path must locate the events as
    # accurately as the DOP853-only run: measured, both have a median error of 1.3e-9 and a
    # 99th percentile of 7e-9 relative; near-tangential contacts are ill-conditioned (a small
    # normal speed turns a rtol-size error in <w, x_k> into a larger one in time: the
    # DOP853-only run is 1.9e-7 off at an ENTER_SLIDING at t = 1.6406, the implicit path 4.8e-8)
    close = np.isclose(ev_tr["t"][ka], ev_ref["t"][kb], rtol=1e-8, atol=0)
    assert np.mean(close) >= 0.99
    t_exact = ev_tight["t"][kc]
    err_tr = np.abs(ev_tr["t"][ka] - t_exact) / t_exact
    err_ref = np.abs(ev_ref["t"][kb] - t_exact) / t_exact
    assert np.median(err_tr) <= 2 * np.median(err_ref) + 1e-12
    assert np.quantile(err_tr, 0.99) <= 2 * np.quantile(err_ref, 0.99) + 1e-12
    assert np.max(err_tr) <= max(2e-8, np.max(err_ref)), (np.max(err_tr), np.max(err_ref))
    assert np.max(np.abs(tr.a[-1] - ref.a[-1])) <= 1e-8 * np.max(np.abs(ref.a[-1]))
    assert np.max(ev_tr["residual"]) <= 1e-12


def test_gradient_descent_converges_to_flow_with_order_one():
    data = pwflow.three_points()
    rng = np.random.default_rng(5)
    W0 = rng.normal(size=(4, 2)) * 0.5
    a0 = np.linalg.norm(W0, axis=1) * np.array([1, -1, 1, 1])
    T = 2.0
    tr = simulate(data, from_arrays(W0, a0), T, rtol=1e-12, atol=1e-14)
    assert not np.any(tr.events["kind"] == EventKind.ENTER_SLIDING)  # a case without sliding
    assert np.any(tr.events["kind"] == EventKind.CROSSING)  # ... but with crossings
    ref = np.hstack([tr.W[-1].ravel(), tr.a[-1]])
    lrs = np.array([4e-3, 2e-3, 1e-3, 5e-4])
    errs = []
    for lr in lrs:
        W, a = _gd(data.X, data.y, W0, a0, lr, int(round(T / lr)))
        errs.append(np.linalg.norm(np.hstack([W.ravel(), a]) - ref))
    slope = np.polyfit(np.log(lrs), np.log(errs), 1)[0]
    assert 0.9 <= slope <= 1.1, (slope, errs)


def _sliding_data():
    return Dataset(with_bias(np.array([-1.0, -0.3, 0.4, 1.0])), np.array([1.0, -1.0, 1.0, -0.5]))


@pytest.mark.slow  # moved out of CI's time (session 47: CI at 836 of 900 s)
def test_leaky_relu_sliding_stays_on_hyperplane_and_gd_chatters():
    data = _sliding_data()
    gamma = 0.2
    init = pwflow.balanced(30, 2, 1e-2, seed=1)
    T = 30.0
    tr = simulate(data, init, T, gamma=gamma, t_eval=np.linspace(1, T, 30))
    kinds = tr.events["kind"]
    assert np.sum(kinds == EventKind.ENTER_SLIDING) >= 5
    from pwflow.patterns import PatternTable

    table = PatternTable(data.X, gamma)
    n_on = 0
    for i in range(tr.t.size):
        U = tr.patterns[tr.pattern[i]]
        h = network_output(tr.W[i], tr.a[i], data.X, gamma)
        r = h - data.y
        for j in np.flatnonzero(np.any(U == 0, axis=1)):
            K = np.flatnonzero(U[j] == 0)
            w = tr.W[i, j]
            s = np.abs(data.X[K] @ w) / (np.linalg.norm(data.X[K], axis=1) * np.linalg.norm(w))
            assert np.max(s) <= 1e-14  # no drift off the hyperplane
            eta = table.minimal_norm(np.array([table.index(U[j])]), r)[1][0][K]
            assert np.all((eta >= gamma) & (eta <= 1.0))
            n_on += 1
    assert n_on > 50
    # gradient descent with a tiny step chatters around the sliding path
    lr = 2e-4
    W, a = init.W.copy(), init.a.copy()
    slider = int(tr.events["neuron"][np.flatnonzero(kinds == EventKind.ENTER_SLIDING)[0]])
    k_sl = int(tr.events["k"][np.flatnonzero(kinds == EventKind.ENTER_SLIDING)[0]])
    signs = []
    for _ in range(int(T / lr)):
        gW, ga = gradient(W, a, data.X, data.y, pwflow.square_loss, gamma, slope_at_zero=gamma)
        W, a = W - lr * gW, a - lr * ga
        signs.append(np.sign(data.X[k_sl] @ W[slider]))
    flips = np.sum(np.diff(np.array(signs)) != 0)
    assert flips > 100  # GD crosses the hyperplane back and forth: chattering
    h_flow = network_output(tr.W[-1], tr.a[-1], data.X, gamma)
    h_gd = network_output(W, a, data.X, gamma)
    assert np.max(np.abs(h_flow - h_gd)) <= 1e-2 * np.max(np.abs(h_flow))


def _theorem2_check(m):
    data = pwflow.three_points()
    init = pwflow.balanced(m, 2, 1e-3, seed=0)
    tr = simulate(data, init, 4000.0)
    assert tr.success
    beta, *_ = np.linalg.lstsq(data.X, data.y, rcond=None)
    L_beta = 0.5 * np.mean((data.X @ beta - data.y) ** 2)
    assert abs(tr.step_loss[-1] - L_beta) <= 1e-10
    h = network_output(tr.W[-1], tr.a[-1], data.X)
    assert np.max(np.abs(h - data.X @ beta)) <= 1e-6
    # the learnt function is x -> <x, beta*> (checked on a grid of inputs)
    xs = with_bias(np.linspace(-2, 2, 41))
    assert np.max(np.abs(network_output(tr.W[-1], tr.a[-1], xs) - xs @ beta)) <= 1e-6
    # every neuron is active on all points or on none (Figure 2(h))
    S = tr.W[-1] @ data.X.T
    # neurons sliding on a boundary of the inactive cone carry <w, x_k> = 0 up to rounding
    tol = 1e-12 * np.linalg.norm(tr.W[-1], axis=1)[:, None] * np.linalg.norm(data.X, axis=1)
    assert np.all(np.all(S > tol, axis=1) | np.all(S <= tol, axis=1))
    assert np.max(tr.balancedness_drift()) <= 1e-10


def test_theorem2_three_points_m500():
    _theorem2_check(500)


@pytest.mark.slow
def test_stewart_m500_same_events_as_tight_reference():
    """Stewart (n = 40), m = 500, unbalanced, t = 4000: the default run (batching, Radau on
    quiet stretches, rtol 1e-10) logs the same multiset of (neuron, point, kind) events as the
    reference path (DOP853 only) at rtol 1e-12, grazing contacts apart. Before in-step
    excursions were detected, it missed a 0.47-time-unit excursion of neuron 482 through x_6
    (two events). States: 1e-8 of the scale (measured 1.3e-9, now 4.6e-11: late event times
    on sliding faces whose η* touches 1 are ill-conditioned; see docs/benchmarks.md)."""
    from collections import Counter

    data = pwflow.stewart(seed=0, n=40)
    init = pwflow.unbalanced(500, 2, 1e-3, seed=0)
    ref = simulate(data, init, 4000.0, n_snapshots=4,
                   options=FlowOptions(rtol=1e-12, atol=1e-14, stiff_solver=None))
    tr = simulate(data, init, 4000.0, n_snapshots=4)
    assert tr.success and ref.success

    def multiset(e, grazing):
        sel = (e["kind"] == pwflow.EventKind.GRAZING) == grazing
        return Counter(zip(e["neuron"][sel].tolist(), e["k"][sel].tolist(),
                           e["kind"][sel].tolist()))

    # every crossing, entry and exit; not the grazing contacts (a touch at the dense output's
    # resolution that leaves the pattern unchanged), which depend on the step grid: since the
    # chained events the default run logs 9, the reference 110, none the same (measured)
    assert multiset(tr.events, False) == multiset(ref.events, False)
    assert np.max(np.abs(tr.W[-1] - ref.W[-1])) <= 1e-8 * np.max(np.abs(ref.W[-1]))
    assert abs(tr.step_loss[-1] - ref.step_loss[-1]) <= 1e-11


@pytest.mark.slow
def test_theorem2_three_points_m2000():
    _theorem2_check(2000)


def test_reproducible():
    data = pwflow.three_points()
    init = pwflow.balanced(50, 2, 1e-3, seed=7)
    a = simulate(data, init, 20.0)
    b = simulate(data, init, 20.0)
    np.testing.assert_array_equal(a.W, b.W)
    np.testing.assert_array_equal(a.events["t"], b.events["t"])


def test_save_load_and_dense_state(tmp_path, three_runs):
    data, init, coarse, _ = three_runs
    path = coarse.save(tmp_path / "run.npz")
    back = pwflow.Trajectory.load(path)
    np.testing.assert_array_equal(back.W, coarse.W)
    for k in coarse.events:
        np.testing.assert_array_equal(back.events[k], coarse.events[k])
    assert back.summary()["events"] == coarse.summary()["events"]
    assert back.meta["options"]["rtol"] == 1e-10
    # the solver of each step (the retrace takes the run's); a file written before it was
    # recorded loads without it, and its dense state leaves the solver to the hand-over rule
    assert coarse.step_implicit.dtype == bool and coarse.step_implicit.shape == coarse.step_t.shape
    np.testing.assert_array_equal(back.step_implicit, coarse.step_implicit)
    simulate(data, init, 40.0, t_eval=[10.0, 20.0], store=str(tmp_path / "store"))
    stored = pwflow.Trajectory.load(tmp_path / "store")
    np.testing.assert_array_equal(stored.step_implicit, coarse.step_implicit)
    from pwflow.store import read_npz, write_npz
    old = read_npz(path)
    del old["step_implicit"]
    write_npz(tmp_path / "old.npz", **old)
    older = pwflow.Trajectory.load(tmp_path / "old.npz")
    assert older.step_implicit is None
    np.testing.assert_allclose(older.state(15.0)[1], back.state(15.0)[1], rtol=0, atol=1e-9)
    # dense evaluation at t = 15 agrees with a run that stores a snapshot there
    W, a = back.state(15.0)
    ref = simulate(data, init, 40.0, t_eval=[10.0, 15.0, 20.0])
    i = int(np.flatnonzero(ref.t == 15.0)[0])
    np.testing.assert_allclose(a, ref.a[i], rtol=1e-8, atol=1e-8 * np.max(np.abs(ref.a[i])))


def _seed_70926_run():
    """``tests/explore_integer.py``'s problem 70926 (d = 4, n = 8, m = 4, γ = 0.1, square
    loss) to t = 40.  Before session 57 the dense state missed the run's recorded outputs by
    up to 2.5e-8 (median 5.9e-11; 7.4e-9 and 1.7e-11 relative to ``1 + max |h|``), and its
    embedded copy's state at t = 20 was 3.1e-9 off a run at rtol 1e-13 (3.8e-10 now, the
    run's own error there)."""
    X = np.array([[2, 0, 1, 2], [1, -2, 1, 0], [0, -1, 2, 0], [-1, -1, -1, 0], [1, 1, 0, -2],
                  [1, -2, -2, 0], [-2, -1, 2, -1], [-1, 0, -1, 0]], dtype=float)
    y = np.array([1.0416889961970641, 0.8645814514158596, 0.3852199515715196,
                  0.6141378723899268, -1.0762593010588188, 0.28674191268196714,
                  -1.2697513894562844, 0.5471482877784996])
    W = np.array([[1.279333446369478, 1.5804096482408359, -0.8578179387948683,
                   0.08083673923142108],
                  [-0.981485075168374, -0.3615720773784921, -1.6248266953884027,
                   -0.16419561116617795],
                  [0.501064708298813, -0.9995724511953089, -2.024373626135102,
                   -0.6559569418842546],
                  [-0.1112332001665507, 0.38710613843848024, -0.057052738405738934,
                   -1.1966501870583726]])
    a = np.array([0.5611381075601636, -0.8693520204661619, 0.11981570423145078,
                  0.2656503239929448])
    return simulate(Dataset(X, y), from_arrays(W, a), 40.0, gamma=0.1, loss="square")


def _retraced_outputs_offsets(run):
    """``|outputs(t) − step_outputs|`` at the run's accepted points that are not snapshots,
    relative to ``1 + max |h|``."""
    st, recorded = np.asarray(run.step_t), np.asarray(run.step_outputs)
    inside = [i for i in range(1, st.size - 1) if st[i] not in set(run.t.tolist())]
    assert len(inside) > 100
    off = np.array([np.max(np.abs(run.outputs(st[i]) - recorded[i])) for i in inside])
    return off / (1.0 + np.max(np.abs(recorded)))


def _retrace_points(monkeypatch, run, times):
    """For each ``t`` of ``times``: the largest distance of a point the retrace of
    ``run.state(t)`` accepted (other than ``t``) to the run's own accepted points."""
    import pwflow.stepper as stepper
    points: list[float] = []
    step = stepper.HybridFlow.step

    def recorded(self, *args, **kwargs):
        out = step(self, *args, **kwargs)
        points.append(self.t)
        return out
    monkeypatch.setattr(stepper.HybridFlow, "step", recorded)
    st = np.asarray(run.step_t)
    worst = []
    for t in times:
        points.clear()
        run.state(float(t))
        worst.append(max((float(np.min(np.abs(st - p))) for p in points if p != t),
                         default=0.0))
    return np.array(worst)


def test_dense_state_retraces_the_runs_own_steps(monkeypatch):
    """:meth:`Trajectory.state` restarts at the snapshot before ``t`` with the run's own step
    from there (:func:`pwflow.integrator.continue_from`), so it retraces the run's steps:
    every point it accepts on the way to ``t`` is one of the run's accepted points (within
    1e-11; measured 7.4e-13, an event cut located on the restarted propagators), and the
    outputs it gives at the run's accepted points are the ones the run recorded there
    (``step_outputs``; each step's truncation error differs from the run's at the tolerance,
    the propagators starting at the snapshot, not at the run's solver start)."""
    run = _seed_70926_run()
    assert run.status == 0 and run.n_events == 3
    worst = _retrace_points(monkeypatch, run, np.linspace(run.t[1], run.t[-1], 41)[1:-1])
    assert np.max(worst) <= 1e-11, np.max(worst)
    off = _retraced_outputs_offsets(run)
    assert np.median(off) <= 1e-13 and np.max(off) <= 1e-9, (np.median(off), np.max(off))


def test_dense_state_with_the_solvers_first_step_guess_does_not_retrace(monkeypatch):
    """The mechanism off: restarted with the solver's own first-step guess, the dense state
    takes steps of its own (session 57: up to 7.4e-9 from the run's outputs, relative to
    ``1 + max |h|``)."""
    import pwflow.integrator as integ
    monkeypatch.setattr(integ, "_run_step_index", lambda step_t, t_i: step_t.size)
    run = _seed_70926_run()
    worst = _retrace_points(monkeypatch, run, np.linspace(run.t[1], run.t[-1], 41)[1:-1])
    assert np.sum(worst > 1e-6) >= 10


def test_dense_state_with_the_runs_first_step_alone_takes_a_step_the_run_rejected(monkeypatch):
    """The run's own step at every trial, not only the first (session 58): with the first
    alone (:meth:`HybridFlow.follow_step` setting the next solver start's step only), the
    solver's next trials are its own, and where the run's trial was rejected and the
    retrace's, clipped at ``t``, is not, it accepts a point the run never had (session 58,
    from t = 34.618: the run tried 0.856, error 1 300 times the tolerance, and took 0.313
    twice; the retrace to t = 35.245 took 0.627 in one, 8.0e-9 from a run at
    ``rtol = 1e-13``).  Which trials are rejected goes with the host's rounding; on session
    60's: 8 of the 39 retraces accept a point up to 0.09 off the run's."""
    import pwflow.stepper as stepper

    def first_only(self, h, implicit=None):
        if h is not None and self._solver is None:
            self.h_next = h
    monkeypatch.setattr(stepper.HybridFlow, "follow_step", first_only)
    run = _seed_70926_run()
    worst = _retrace_points(monkeypatch, run, np.linspace(run.t[1], run.t[-1], 41)[1:-1])
    assert np.sum(worst > 1e-6) >= 3, worst


def _seed_72930_run():
    """``tests/explore_integer.py``'s problem 72930 (d = 5, n = 6 with ``x_5 = x_0`` and
    ``y_5 ≠ y_0``, m = 3, γ = 0.5, square loss) to t = 20.  The other residuals reach
    rounding by t ≈ 4.6 (a critical point with ``r_0 = −r_5 = −0.12``); from t = 4.4 to 20
    the run takes 88 of its 235 steps with the implicit solver (the last three of 7.5, 2.65
    and 2.65 time units)."""
    X = np.array([[-2, -1, -1, 0, 0], [1, 0, -1, 2, 0], [1, 2, 0, 1, 0], [2, 0, 2, 1, 0],
                  [2, 1, 1, 0, 0], [-2, -1, -1, 0, 0]], dtype=float)
    y = np.array([0.6045458572423407, -0.5099532104666493, -0.5444015407125703,
                  0.9018848212502811, 1.2211964891340308, 0.3637670177559592])
    W = np.array([[0.42641546844652084, 0.0726725311330782, 0.5405098111620196,
                   1.4127125818181334, 0.41357650870226614],
                  [-0.6237683166222079, 2.062115047298244, 2.5289029604330335,
                   1.8175442857931978, -0.1048062479464783],
                  [0.8487935899988375, 0.9863691295944644, 1.5332310686482566,
                   -0.04785232926555074, -1.3054243675803532]])
    a = np.array([3.947389279297255, 9.158142734381359, 6.317382062097477])
    return simulate(Dataset(X, y), from_arrays(W, a), 20.0, gamma=0.5, loss="square")


def _retrace_steps(monkeypatch, run, t):
    """``run.state(t)`` with every ``HybridFlow.step`` of the retrace counted, warnings as
    errors; returns the state and the count."""
    import warnings

    import pwflow.stepper as stepper
    calls = []
    step = stepper.HybridFlow.step

    def counted(self, *args, **kwargs):
        calls.append(self.t)
        return step(self, *args, **kwargs)
    monkeypatch.setattr(stepper.HybridFlow, "step", counted)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        W, a = run.state(t)
    return W, a, len(calls)


def test_dense_state_takes_each_step_with_the_runs_solver(monkeypatch):
    """Session 60: the retrace takes each of the run's steps with the run's solver
    (``Trajectory.step_implicit``).  From the snapshot at t = 15.848 to t = 16.888, inside
    the run's implicit step from 14.695 to 17.347, it takes at most three steps (the run's
    step, clipped, and what Radau's error control makes of it), with no floating-point
    warning, and lands within 1e-12 (relative) of a run at ``rtol = 1e-13`` that ends there;
    the outputs it gives at the run's implicit accepted points are the recorded ones to a
    median of 1e-13."""
    run = _seed_72930_run()
    assert run.status == 0 and run.step_implicit.shape == run.step_t.shape
    assert 50 <= int(np.sum(run.step_implicit)) < run.step_t.size
    j = int(np.searchsorted(run.step_t, 16.0))
    assert run.step_implicit[j] and run.step_t[j - 1] < 15.85 < 16.9 < run.step_t[j]
    t = 16.888461538461538
    W, a, steps = _retrace_steps(monkeypatch, run, t)
    assert steps <= 3
    tight = simulate(Dataset(run.X, run.y), from_arrays(run.W[0], run.a[0]), t, gamma=0.5,
                     loss="square", options=FlowOptions(rtol=1e-13, atol=1e-15))
    size = 1.0 + max(np.max(np.abs(tight.W[-1])), np.max(np.abs(tight.a[-1])))
    assert max(np.max(np.abs(W - tight.W[-1])), np.max(np.abs(a - tight.a[-1]))) <= 1e-12 * size
    st, recorded = np.asarray(run.step_t), np.asarray(run.step_outputs)
    snaps = set(run.t.tolist())
    inside = [i for i in range(1, st.size - 1) if run.step_implicit[i] and st[i] not in snaps]
    assert len(inside) > 40
    off = np.array([np.max(np.abs(run.outputs(st[i]) - recorded[i])) for i in inside])
    assert np.median(off) <= 1e-13 * (1.0 + np.max(np.abs(recorded)))


def test_dense_state_without_the_runs_solver_takes_dop853_through_a_stiff_stretch(monkeypatch):
    """The mechanism off (a trajectory without ``step_implicit``, as written before session
    60): the retrace starts DOP853 at the snapshot and keeps it through the run's implicit
    stretch, stability-limited: more than 20 steps where the run took one."""
    import dataclasses

    run = dataclasses.replace(_seed_72930_run(), step_implicit=None)
    W, a, steps = _retrace_steps(monkeypatch, run, 16.888461538461538)
    assert steps > 20


def test_dense_state_runs_under_the_runs_floating_point_regime(monkeypatch):
    """The retrace runs under :func:`pwflow.guard.floating_point_checks`, as the run does:
    an overflowing trial step raises inside the solver, which rejects it.  The mechanism off
    (no checks; and DOP853 through the stiff stretch, where trials overflow): the
    retrace's overflowing stages reach ``RuntimeWarning: invalid value encountered in dot``
    in the error estimate (session 60: 170 such warnings in retracing seed 73166's steps)."""
    import contextlib
    import dataclasses

    import pwflow.integrator as integ
    run = dataclasses.replace(_seed_72930_run(), step_implicit=None)
    _retrace_steps(monkeypatch, run, 16.888461538461538)  # no warning under the checks
    monkeypatch.setattr(integ, "floating_point_checks", contextlib.nullcontext)
    with pytest.raises(RuntimeWarning, match="invalid value"):
        _retrace_steps(monkeypatch, run, 16.888461538461538)


def test_dense_state_at_rest_is_the_runs_kept_state():
    """A run that stops at rest keeps its neurons from ``t_rest`` on (``FlowOptions.rest_tol``);
    its dense state there is that state, bit for bit, as its snapshots are (session 60; the
    retrace integrated the rounding-level dynamics from the snapshot and moved 1.1e-11 off
    it).  Before ``t_rest`` it is a retrace to ``t``, and between a snapshot before
    ``t_rest`` and a ``t`` after it, the retrace to ``t_rest``."""
    import dataclasses

    run = simulate(pwflow.three_points(), pwflow.balanced(200, 2, 0.3, seed=0), 4000.0)
    t_rest = run.stats["t_rest"]
    assert t_rest is not None and run.t[-1] > t_rest
    i = int(np.searchsorted(run.t, t_rest)) + 2
    t = 0.5 * (run.t[i] + run.t[i + 1])
    W, a = run.state(t)
    np.testing.assert_array_equal(W, run.W[i])
    np.testing.assert_array_equal(a, run.a[i])
    k = int(np.searchsorted(run.t, t_rest)) - 1  # the snapshot before t_rest
    W0, a0 = run.state(0.5 * (t_rest + run.t[k + 1]))
    scale = np.max(np.abs(run.W[k + 1]))
    assert np.max(np.abs(W0 - run.W[k + 1])) <= 1e-12 * scale
    # the mechanism off: without t_rest the retrace integrates from the snapshot
    moving = dataclasses.replace(run, stats={**run.stats, "t_rest": None})
    Wm, am = moving.state(t)
    assert 0 < np.max(np.abs(Wm - run.W[i])) <= 1e-9


def test_zeno_guard_names_neuron_point_and_time():
    # one neuron crossing many hyperplanes in a row; a guard window that makes it "too many"
    angles = np.linspace(0.1, np.pi - 0.1, 8)
    X = np.c_[np.cos(angles), np.sin(angles)]
    data = Dataset(X, np.ones(8))
    init = from_arrays([[0.3, -1.0]], [1.0])
    from pwflow.integrator import FlowOptions

    opts = FlowOptions(zeno_events=3, zeno_window=1e6, frozen_output=True)
    tr = simulate(data, init, 5.0, gamma=0.5, options=opts)
    assert tr.status == Status.ZENO
    assert "neuron 0" in tr.message and "data point" in tr.message and "t =" in tr.message
    assert tr.t[-1] < 5.0 and tr.n_events >= 3  # what was computed is kept


def test_reach_zero_on_a_ray_matches_closed_form_and_freezes():
    """A neuron sliding on a ray (1-D face) with |a| > ‖w‖ shrinking towards the origin.

    x_1 = (−0.5, 1), x_2 = (1, 1), y = (−1, 1), frozen output (h ≡ 0): on the ray x_1^⊥ ∩
    {<w, x_2> > 0}, spanned by e = (1, 0.5)/‖·‖, the minimal-norm slope is η_1 = 0.4 and
    D = (0.6, 0.3) ∥ e, so ρ = <w, e> and a follow ρ' = c a, a' = c ρ with c = ‖D‖:
    ρ(t) = ρ₀ cosh(ct) + a₀ sinh(ct) vanishes at t* = artanh(−ρ₀/a₀)/c.
    """
    X = np.array([[-0.5, 1.0], [1.0, 1.0]])
    data = Dataset(X, np.array([-1.0, 1.0]))
    e = np.array([1.0, 0.5]) / np.linalg.norm([1.0, 0.5])
    rho0, a0 = 0.3, -1.0
    tr = simulate(data, from_arrays([rho0 * e], [a0]), 2.0, frozen_output=True, rtol=1e-12,
                  atol=1e-14)
    kinds = tr.events["kind"].tolist()
    # a r_1 < 0: the sliding mode is repulsive (leaving to either side is also a solution of
    # Eq. (2)); the minimal-norm policy stays on the ray and logs the branch point
    assert kinds[0] == EventKind.BRANCH and EventKind.REACH_ZERO in kinds
    assert tr.stats["t_first_branch"] == 0.0
    c = np.linalg.norm([0.6, 0.3])
    t_star = np.arctanh(-rho0 / a0) / c
    i = kinds.index(EventKind.REACH_ZERO)
    assert abs(tr.events["t"][i] - t_star) <= 1e-10 * t_star
    # at w = 0 (r = (1, −1), a < 0) the ray v = (−1, 1) of x_2^⊥ with x_1 active escapes:
    # the slope η_2 = <x_1, x_2>/‖x_2‖² = 1/4 ∈ [0, 1] keeps it tangent, and −D = (x_1 − x_2/4)/2
    # = (3/8)(−1, 1) = ‖·‖ v/‖v‖ points out along it (and <v, x_1> = 3/2 > 0): leaving 0 there
    # solves Eq. (2) too.  Gradient descent's orbit near 0 leaves along it, and the
    # minimal-norm run, which stays, logs that branch point at t* on the hyperplane it arrived
    # on (x_1) and the one it would leave along (x_2) (session 39)
    later = np.flatnonzero(tr.events["kind"] == EventKind.BRANCH)[1:]
    assert sorted(tr.events["k"][later].tolist()) == [0, 1]
    np.testing.assert_allclose(tr.events["t"][later], t_star, rtol=1e-10)
    assert tr.stats["n_branch_points"] == 3
    assert np.all(tr.W[-1] == 0.0)  # frozen at w = 0 (Condition 1, point 2) ...
    a_star = a0 * np.cosh(c * t_star) + rho0 * np.sinh(c * t_star)
    np.testing.assert_allclose(tr.a[-1, 0], a_star, rtol=1e-10)  # ... with a constant after


INVALID = [
    (lambda: simulate(pwflow.three_points(), pwflow.balanced(3, 2, 1.0), -1.0), "t_max"),
    (lambda: simulate(pwflow.three_points(), pwflow.balanced(3, 2, 1.0), float("nan")), "t_max"),
    (lambda: simulate(pwflow.three_points(), pwflow.balanced(3, 2, 1.0), 1.0, gamma=1.5), "gamma"),
    (lambda: simulate(pwflow.three_points(), pwflow.balanced(3, 2, 1.0), 1.0, gamma=-0.1), "gamma"),
    (lambda: simulate(pwflow.three_points(), pwflow.balanced(3, 3, 1.0), 1.0), "dimension"),
    (lambda: simulate(pwflow.three_points(), pwflow.balanced(3, 2, 1.0), 1.0, rtol=0.0), "rtol"),
    (lambda: simulate(pwflow.three_points(), pwflow.balanced(3, 2, 1.0), 1.0, loss="hinge"), "loss"),
    (lambda: simulate(pwflow.three_points(), "init", 1.0), "init"),
    (lambda: simulate(np.zeros((3, 2)), pwflow.balanced(3, 2, 1.0), 1.0), "data"),
    (lambda: simulate(pwflow.three_points(), pwflow.balanced(3, 2, 1.0), 1.0, t_eval=[2.0]), "t_eval"),
    (lambda: simulate(pwflow.three_points(), pwflow.balanced(3, 2, 1.0), 1.0,
                      options=FlowOptions(stiff_solver="BDF")), "stiff_solver"),
    (lambda: simulate(pwflow.three_points(), pwflow.balanced(3, 2, 1.0), 1.0,
                      options=FlowOptions(stiff_after=0)), "stiff_after"),
    # an option given both ways was silently ignored (session 30: rtol=1e-13 with options)
    (lambda: simulate(pwflow.three_points(), pwflow.balanced(3, 2, 1.0), 1.0, rtol=1e-13,
                      options=FlowOptions(stiff_after=2)), "rtol given to simulate together"),
    (lambda: simulate(pwflow.three_points(), pwflow.balanced(3, 2, 1.0), 1.0,
                      branch_policy="gd", options=FlowOptions()), "branch_policy"),
    (lambda: pwflow.balanced(3, 2, 0.0), "scale"),
    (lambda: pwflow.balanced(0, 2, 1.0), "width"),
    (lambda: pwflow.get_dataset("four-points"), "unknown dataset"),
    (lambda: Dataset(np.array([[np.nan, 1.0]]), np.array([1.0])), "NaN"),
]


@pytest.mark.parametrize("call, fragment", INVALID)
def test_invalid_input_raises_clear_error(call, fragment):
    with pytest.raises(ValueError, match=fragment):
        call()


from hypothesis import HealthCheck, assume, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from reference import (  # noqa: E402
    C_GAP,
    CROSS,
    ENTER,
    LEAVE,
    _gd_run,
    compare_with_filippov,
    first_branch_after_start,
    gd_reference,
    loss_derivative,
    outputs,
)
from strategies import Problem, matrices, multi_active_problems, problems  # noqa: E402


@given(p=problems(t_max=5.0, d_values=(2, 3, 4, 5, 6, 7, 8)))
def test_crossings_entries_and_exits_are_scipys_event_locations(p):
    # Up to the first event that either side does not model (pwflow: a kind other than a
    # crossing, a sliding entry or exit; the reference: an arrival its minimal-norm rule does
    # not decide clearly, two events at once, a = 0 while sliding, a tangent arrival, …),
    # the run's events are those of an independent Filippov integrator
    # (reference.filippov_events: SciPy's solve_ivp and event location, sliding on several
    # hyperplanes since session 51): the same (neuron, point, kind) in time order, crossing
    # and entry times to 1e-8 plus their conditioning (_arrival_time_tolerance), and the
    # state there to 1e-8 relative.  Exits are compared to 1e-3 (_exit_time_tolerance): an
    # exit's time is ill-conditioned (the slope η* = <b, x_k> n / (r_k ‖x_k‖²) reaches its
    # bound at a rate η̇, and the outputs are known to rtol |h|, so its time to
    # rtol |h| / (|r_k| η̇): 5.9e-8 early with r_k = 3.4e-4 and η̇ = 0.07); one whose slope
    # nears its bound within the velocities' resolution at the step start is placed where its
    # normal velocity is resolved, late by resolution / rate (docs/integrator.md,
    # RegimeMixin._exit_time); either way the state moves with it at second order only, and
    # the state check holds it.  Measured on 1 450 seeded problems (session 51, d = 2–8,
    # t = 5 and 10): 9 314 crossings, 3 488 entries and 1 193 exits, crossings within
    # 2.8e-9, entries within 6.9e-9 but one (2.8e-8, a slow arrival), exits within 1.0e-4
    # but one (2.4e-3, near a fit), states within 1.2e-10
    tr = simulate(p.data(), p.init(), p.t_max, gamma=p.gamma, loss=p.loss)
    assert tr.status == 0, tr.message
    c = compare_with_filippov(tr, p.X, p.y, p.W, p.a, p.gamma, p.loss, p.t_max)
    assume(c.t > 1e-6)
    both = min(len(c.mine), len(c.theirs))
    extra = c.mine[both:] + c.theirs[both:]  # one of the two is empty
    # an exit up to 1e-3 off may fall on the other side of the cut than its counterpart
    assert all(e[3] == LEAVE and e[0] > c.cut - 2e-3 for e in extra), c
    assert [r[1:] for r in c.mine[:both]] == [e[1:] for e in c.theirs[:both]], c
    _assert_times_agree(tr, c.mine[:both], c.theirs[:both], p.X,
                        lambda t, k: _exit_time_tolerance(tr, t, k, p))
    assert c.state <= 1e-8, c


def _assert_times_agree(tr, mine, theirs, X, exit_tolerance):
    """Each row's time against its counterpart's: crossings and entries to
    :func:`_arrival_time_tolerance`, exits to ``exit_tolerance(t, k)``."""
    for (t, j, k, kind), (t_ref, *_) in zip(mine, theirs, strict=True):
        tol = (exit_tolerance(t, k) if kind == LEAVE
               else _arrival_time_tolerance(tr, t, j, k, X))
        assert abs(t - t_ref) <= tol, (t, t_ref, kind, tol)


def _exit_time_tolerance(tr, t: float, k: int, p) -> float:
    """``1e-3``, and ``1e-3 · 1e-3 / |r_k|`` where the residual of the exit's point is below
    ``1e-3``: a slope moves at a rate proportional to the residuals, so near a fit its exit
    time is known to what its resolution over that rate gives (seed 5 284 of
    ``tests/explore_scipy.py``: an exit at ``|r_k| = 1.7e-4`` read 2.4e-3 after the
    reference's, the slope 2.6e-5 past its bound, the states 2.0e-12 apart where the
    comparison ends)."""
    W, a = tr.state(t)
    r_k = loss_derivative(outputs(W, a, p.X, p.gamma), p.y, p.loss)[k]
    return 1e-3 * max(1.0, 1e-3 / max(abs(r_k), 1e-300))


def _arrival_time_tolerance(tr, t: float, j: int, k: int, X) -> float:
    """How well the time at which neuron ``j`` reaches ``x_k``'s hyperplane is determined:
    ``1e-8`` plus ``10 rtol ‖w_j‖ ‖x_k‖ / |ṡ|`` (the offset ``s = <w_j, x_k>`` is known to
    ``rtol ‖w_j‖ ‖x_k‖``; ``ṡ`` from the run's dense output, ``10⁻⁶`` before ``t``).  A slow
    arrival is ill-conditioned: seed 8 200 of ``tests/explore_scipy.py`` enters at a rate
    ``1.4e-4 ‖w‖ ‖x‖``, 2.8e-8 from the reference, the states 3.5e-12 apart."""
    delta = min(1e-6, t)
    w0, w1 = tr.state(t - delta)[0][j], tr.state(t)[0][j]
    rate = abs((w1 - w0) @ X[k]) / max(delta, 1e-300)
    return 1e-8 + 1e-9 * np.linalg.norm(w1) * np.linalg.norm(X[k]) / max(rate, 1e-300)


def test_an_exit_just_before_its_residual_passes_zero_is_the_references():
    # explore_scipy.py's problem 7 065 (d = 4, n = 5, m = 11, γ = 0.1): neuron 0 slides on
    # x_0's hyperplane while r_0 → 0, so η* = N / R runs to +∞; it reaches 1 at t = 0.72099
    # and r_0 passes 0 at 0.72601, within one of SciPy's steps.  Read as η* − 1 the reference
    # saw the same sign at both step ends and left at the pole instead, 5.0e-3 late, to the
    # other side (an exit and a crossing); read as ±(N − R) (reference._slope_terms) it finds
    # pwflow's exit, 2.3e-10 apart
    from explore_scipy import draw

    X, y, W, a, gamma, loss = draw(7065)
    tr = simulate(Dataset(X, y), from_arrays(W, a), 1.0, gamma=gamma, loss=loss)
    c = compare_with_filippov(tr, X, y, W, a, gamma, loss, 1.0)
    assert [e[1:] for e in c.theirs] == [r[1:] for r in c.mine] and len(c.mine) == 8
    assert c.mine[-1][1:] == (0, 0, LEAVE) and abs(c.mine[-1][0] - 0.7209878) < 1e-6
    assert max(abs(r[0] - e[0]) for r, e in zip(c.mine, c.theirs, strict=True)) < 1e-8
    assert c.state <= 1e-8


@pytest.mark.parametrize("seed, rows", [
    (7009, {(2, 3, ENTER), (2, 5, LEAVE)}),  # onto x_3, off x_5 at once (d = 3)
    (7011, {(1, 8, ENTER), (1, 4, LEAVE)}),  # the same in d = 7
    (7017, {(3, 1, CROSS), (3, 0, LEAVE)}),  # across x_1, off x_0 at once (d = 5)
    (7106, {(3, 0, CROSS), (3, 3, LEAVE)}),  # the same, γ = 0.5 (d = 4)
    (8167, {(0, 1, CROSS), (0, 1, ENTER)}),  # across x_1 and back onto it 5.5e-3 later
])
def test_sliding_neurons_meeting_hyperplanes_are_the_references(seed, rows):
    # explore_scipy.py's problems where a neuron sliding on one hyperplane meets another and
    # the minimal-norm rule moves it onto the new one, or across it, while it leaves the old
    # one at the same time (or it crosses and comes back within one of SciPy's steps): the
    # reference (reference._sliding_arrival, by enumeration) follows all five to t = 10 with
    # pwflow's events.  Session 50's reference stopped at the first four ("a sliding neuron
    # meets another hyperplane") and missed the fifth's return (its states 10 % apart at
    # t = 10: the rounding at the crossing had the old side's sign)
    from explore_scipy import draw

    X, y, W, a, gamma, loss = draw(seed)
    tr = simulate(Dataset(X, y), from_arrays(W, a), 10.0, gamma=gamma, loss=loss)
    assert tr.status == 0, tr.message
    c = compare_with_filippov(tr, X, y, W, a, gamma, loss, 10.0)
    assert c.stopped == "" and c.t == 10.0, c.stopped
    assert [e[1:] for e in c.theirs] == [r[1:] for r in c.mine]
    assert rows <= {r[1:] for r in c.mine}
    _assert_times_agree(tr, c.mine, c.theirs, X, lambda t, k: 1e-3)
    assert c.state <= 1e-8


def test_two_slopes_at_their_bounds_together_stop_the_reference():
    # explore_scipy.py's problem 5 205 (d = 8, γ = 0): neuron 5 slides on x_5 and x_7, and
    # both slopes reach 0 at once where the one active point's residual r_10 passes 0.  SciPy
    # keeps only the first of several terminal events in a step: the reference left x_5 and
    # stayed on x_7 to t = 0.99 (states 1.0e-5 apart at t = 10).  It now stops there
    # ("simultaneous events"); pwflow leaves x_7 at the root and x_5 1.6e-6 later (its exit
    # read where the slope's velocity is resolved), both past the comparison's cut
    from explore_scipy import draw

    X, y, W, a, gamma, loss = draw(5205)
    tr = simulate(Dataset(X, y), from_arrays(W, a), 1.0, gamma=gamma, loss=loss)
    c = compare_with_filippov(tr, X, y, W, a, gamma, loss, 1.0)
    assert c.stopped == "simultaneous events" and abs(c.t - 0.6114335695) < 1e-8
    assert [e[1:] for e in c.theirs] == [r[1:] for r in c.mine] and len(c.mine) == 25
    ev = tr.events
    mine = sorted(zip(ev["t"][ev["neuron"] == 5], ev["k"][ev["neuron"] == 5], strict=True))[-2:]
    assert [k for _, k in mine] == [7, 5] and abs(mine[0][0] - c.t) < 1e-8
    assert 0 < mine[1][0] - mine[0][0] < 1e-4
    assert c.state <= 1e-8


def test_an_exit_read_from_residuals_of_noise_stops_the_reference():
    # session 55's thorough draw of test_crossings_entries_and_exits_are_scipys_event_locations
    # (d = 8, n = 2, y_1 = 0, γ = 0): neuron 2 enters x_0's hyperplane at t = 0.2325, where
    # its one other term is r_1, 0 to rounding (|r_1| <= 5e-13) throughout.  The reference
    # logged an exit 1.88 later, the sign change of its slope's numerator in that noise, while
    # pwflow holds it with D = 0 to t = 5 (states 1.1e-12 apart).  It now stops there
    # (reference._exit_from_noise), with the entry alike and the states within 1e-8
    X = np.array([[-0.19140625, 1.0, 0.3905542269603237, 0, 0, 0, 1.25, 0.75],
                  [0, 0.375, 0, 1.5, -0.44140625, -2.0, 0, -2.0]])
    y = np.array([-1.4765625, 0.0])
    W = np.zeros((6, 8))
    W[0, 7], W[1, [0, 4]], W[2, [5, 7]] = 0.66015625, (1.0, -1.0), (-1.0, 0.25)
    W[3, [1, 3]], W[4, 1], W[5, 7] = (0.5, -0.75), -1.0, -0.375
    a = np.linalg.norm(W, axis=1) * np.array([-1, -1, 1, -1, -1, 1])  # balanced
    tr = simulate(Dataset(X, y), from_arrays(W, a), 5.0, gamma=0.0, loss="square")
    assert tr.status == 0, tr.message
    c = compare_with_filippov(tr, X, y, W, a, 0.0, "square", 5.0)
    # which reading of the noise stops the reference first goes with the host's rounding:
    # session 55's, the exit at t = 2.1125; session 60's (the same exit not read), a pair's
    # residual below `fitted` at t = 4.2123
    assert c.stopped in ("an exit decided by residuals below `fitted`",
                         "a sliding pair's residual below `fitted`"), c
    assert 2.1 < c.t < 5.0
    assert [e[1:] for e in c.theirs] == [r[1:] for r in c.mine] == [(2, 0, ENTER)]
    assert c.state <= 1e-8
    ev = tr.events  # pwflow: held to the end
    assert not np.any((ev["neuron"] == 2) & (ev["t"] > 1.0))


@st.composite
def _bias_problems(draw):
    """The paper's data (``x = (x̃, 1)``, ``x̃`` increasing in ``[−1, 1]`` by drawn gaps) and a
    balanced initialisation of 20 neurons (drawn angles and norms), every entry drawn."""
    n = draw(st.integers(3, 6))
    gaps = np.array(draw(st.lists(st.floats(0.02, 1.0), min_size=n, max_size=n)))
    xs = -1.0 + 2.0 * np.cumsum(gaps) / np.sum(gaps) - gaps[0] / np.sum(gaps)
    y = draw(matrices(n, 0, -1.5, 1.5))
    angle = np.array(draw(st.lists(st.floats(-np.pi, np.pi), min_size=20, max_size=20)))
    radius = np.array(draw(st.lists(st.floats(0.1, 1.0), min_size=20, max_size=20)))
    W = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    signs = np.array(draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=20, max_size=20)))
    return Dataset(with_bias(xs), y), W, signs * np.linalg.norm(W, axis=1)


@settings(deadline=None)
@given(
    problem=_bias_problems(),
    gamma=st.sampled_from([0.0, 0.3]),
    scale=st.sampled_from([1e-2, 1e-1]),
    stiff_after=st.sampled_from([2, 20]),
)
def test_batched_equals_strict_on_random_problems(problem, gamma, scale, stiff_after):
    """The fast path (batched events, implicit quiet stretches) reproduces the reference
    (DOP853 only, restart at every event; Sections "Batching" and "Quiet stretches").

    Tolerances: event times 1e-8 relative (both located to rounding on dense outputs whose
    error is ~rtol = 1e-10, amplified by the dynamics over t ≤ 20), exits from sliding 1e-6
    (see below); states 1e-7 of their scale.
    ``stiff_after = 2`` hands quiet stretches to Radau almost at once, so many of its steps
    would contain events and are redone by DOP853 (the roll-back path).
    """
    data, W, a = problem
    init = from_arrays(scale * W, scale * a)
    fast = simulate(data, init, 20.0, gamma=gamma, options=FlowOptions(stiff_after=stiff_after))
    ref = simulate(data, init, 20.0, gamma=gamma,
                   options=FlowOptions(batch_tol=0.0, stiff_solver=None))
    assert fast.success and ref.success
    ka, kb = np.lexsort((fast.events["t"], fast.events["neuron"])), np.lexsort((ref.events["t"], ref.events["neuron"]))
    assert fast.n_events == ref.n_events
    np.testing.assert_array_equal(fast.events["neuron"][ka], ref.events["neuron"][kb])
    np.testing.assert_array_equal(fast.events["kind"][ka], ref.events["kind"][kb])
    # an exit (a sliding slope reaching its bound) is located where η*(t) crosses the bound,
    # as well conditioned as that crossing is steep: four exits at t = 18.78 put 3.5e-8
    # apart with the states at the end 5e-13 apart (thorough profile); crossings stay at 1e-8.
    # Where η* reaches the bound nearly tangentially, or a neuron crosses a hyperplane slowly,
    # the time is ill-conditioned and the state is not (session 30, thorough profile: two
    # exits at t = 5.6059 put 5.5e-5 apart by the batch's error, the reference at
    # rtol = 1e-13 at 5.60590072, the strict path 1.3e-7 from it, the states 7e-12 apart;
    # a crossing at t = 0.93629 put 8.3e-8 apart): such an event is checked by the neuron's
    # state just after it, and its time to 1e-4
    exits = fast.events["kind"][ka] == EventKind.LEAVE_SLIDING
    scale_a = np.max(np.abs(ref.a[-1]))
    t_f, t_r = fast.events["t"][ka], ref.events["t"][kb]
    close = np.abs(t_f - t_r) <= np.where(exits, 1e-6, 1e-8) * np.abs(t_r)
    for j, tf, tr_ in zip(fast.events["neuron"][ka][~close], t_f[~close], t_r[~close],
                          strict=True):
        assert abs(tf - tr_) <= 1e-4 * tr_, (j, tf, tr_)
        after = min(1.01 * max(tf, tr_), 20.0)  # (an event near the end: its end state)
        (Wf, af), (Wr, ar) = fast.state(after), ref.state(after)
        dz = max(np.max(np.abs(Wf[j] - Wr[j])), abs(af[j] - ar[j]))
        assert dz <= 1e-7 * scale_a, (j, tf, tr_, dz)
    np.testing.assert_allclose(fast.a[-1], ref.a[-1], rtol=0, atol=1e-7 * scale_a)


def test_a_tangential_exit_is_ill_conditioned_in_time_not_in_state():
    """The thorough profile's case of the test above (session 30; ``tests/data/
    tangential_exit.npz``, d = 2, m = 20, scale 1e-2): neurons 14 and 18 leave a sliding
    mode where η* reaches its bound nearly tangentially.  The batched path puts the exit
    5.5e-5 before the reference at rtol = 1e-13 (5.6059006765447), and its states are within
    1e-11 of the tight reference's, at the end and just after the exit.  The strict path
    agrees with the reference to 4.4e-13 since session 33 (every exit placed at the root of
    its pinned gap, :meth:`~pwflow.regime.RegimeMixin._exit_time`); before, it was 1.3e-7
    after it, and the reference itself 4.4e-8 late (5.60590072: the exit read once the
    normal velocity passed its resolution, at any tolerance)."""
    case = np.load(Path(__file__).parent / "data" / "tangential_exit.npz")
    data = Dataset(case["X"], case["y"])
    init = from_arrays(1e-2 * case["W"], 1e-2 * case["a"])
    runs = [simulate(data, init, 8.0, options=FlowOptions(stiff_after=2)),
            simulate(data, init, 8.0, options=FlowOptions(batch_tol=0.0, stiff_solver=None)),
            simulate(data, init, 8.0, options=FlowOptions(rtol=1e-13, atol=1e-15, batch_tol=0.0,
                                                          stiff_solver=None))]
    times = []
    for tr in runs:
        ev = tr.events
        at = (ev["kind"] == EventKind.LEAVE_SLIDING) & (np.abs(ev["t"] - 5.6059) < 1e-3)
        assert sorted(ev["neuron"][at].tolist()) == [14, 18]
        times.append(float(ev["t"][at][0]))
    fast, strict, tight = times
    assert abs(tight - 5.6059006765447) < 1e-11
    assert abs(strict - tight) < 1e-11 and 1e-5 < tight - fast < 1e-4
    for tr in runs[:2]:
        for t in (tight * 1.0001, 8.0):
            (W, a), (W_ref, a_ref) = tr.state(t), runs[2].state(t)
            assert max(np.max(np.abs(W - W_ref)), np.max(np.abs(a - a_ref))) < 1e-11


@pytest.mark.parametrize("placed", [True, False])
def test_an_exit_to_the_bounds_own_side_leaves_where_its_slope_reaches_the_bound(
        monkeypatch, placed):
    """The tangential case above on the strict path: neurons 14 and 18 leave ``x_k``'s
    hyperplane to the bound's own side (continuous field).  At the logged time their
    unconstrained slope (an independent least-squares solve on the state there,
    :func:`_exit_slopes`) is at its bound to 1e-12 of the terms over the column since
    session 33 (measured 3.4e-17; :meth:`~pwflow.regime.RegimeMixin._exit_time`); read
    once the normal velocity passed its resolution, it was beyond by 3.9e-11 of them
    (``VELOCITY_RTOL`` = 1e-11, and the search's overshoot), 1.7e-7 later in time, as the run
    without the placement still is (``placed=False``)."""
    from pwflow import regime

    if not placed:
        monkeypatch.setattr(regime.RegimeMixin, "_exit_time", lambda *args: None)
    case = np.load(Path(__file__).parent / "data" / "tangential_exit.npz")
    prob = Problem(case["X"], case["y"], 1e-2 * case["W"], 1e-2 * case["a"], 0.0, "square",
                   8.0, "tangential exit")
    tr = simulate(prob.data(), prob.init(), 8.0,
                  options=FlowOptions(batch_tol=0.0, stiff_solver=None))
    ev = tr.events
    at = np.flatnonzero((ev["kind"] == EventKind.LEAVE_SLIDING) & (np.abs(ev["t"] - 5.6059) < 1e-3))
    assert sorted(ev["neuron"][at].tolist()) == [14, 18]
    for i in at:
        t, j, k = float(ev["t"][i]), int(ev["neuron"][i]), int(ev["k"][i])
        found = _exit_slopes(prob, *tr.state(t), j, [k])
        assert found is not None
        (eta, a_r), = found[0].values()
        assert a_r > 0  # the bound's own side: no jump of the normal velocity
        gap = min(abs(eta - 1.0), abs(eta))
        if placed:
            assert gap <= 1e-12 * found[1], (t, j, eta, found[1])
        else:
            assert gap > 5e-12 * found[1], (t, j, eta, found[1])


def test_a_brief_exit_and_return_within_a_long_step_is_found(monkeypatch):
    """The thorough profile's second case of ``test_batched_equals_strict_on_random_problems``
    (session 30; ``tests/data/brief_exit_case.npz``, d = 2, n = 5, m = 20, scale 0.1, γ = 0):
    neurons 5, 6, 9, 10 and 14 slide on x_1 from t ≈ 3.0; the strict path (and the one at
    rtol = 1e-13) has them leave at t = 9.7147 and slide again from 10.0970.  The default
    path's step [9.4169, 9.9803] holds the exit and the slope's return inside its box, so
    its two ends read the same regime: it held them throughout, 45 events against 55, the
    final states 3.9e-9 apart.  The regime is now also read at the step's grid times
    (:meth:`HybridFlow._regime_left_inside`)."""
    case = np.load(Path(__file__).parent / "data" / "brief_exit_case.npz")
    data = Dataset(case["X"], case["y"])
    init = from_arrays(0.1 * case["W"], 0.1 * case["a"])
    fast = simulate(data, init, 20.0, options=FlowOptions(stiff_after=2))
    strict = simulate(data, init, 20.0, options=FlowOptions(batch_tol=0.0, stiff_solver=None))
    assert strict.n_events == 55
    assert fast.n_events == strict.n_events
    at = (fast.events["kind"] == EventKind.LEAVE_SLIDING) & (np.abs(fast.events["t"] - 9.7147)
                                                             < 1e-3)
    assert sorted(fast.events["neuron"][at].tolist()) == [5, 6, 9, 10, 14]
    scale = np.linalg.norm(strict.W[-1]) + np.linalg.norm(strict.a[-1])
    gap = np.linalg.norm(fast.W[-1] - strict.W[-1]) + np.linalg.norm(fast.a[-1] - strict.a[-1])
    assert gap <= 1e-10 * scale
    # the reading inside the step is what finds it
    from pwflow.stepper import HybridFlow

    monkeypatch.setattr(HybridFlow, "_regime_left_inside", lambda *args, **kw: False)
    assert simulate(data, init, 20.0, options=FlowOptions(stiff_after=2)).n_events == 45


def _restarted_at_every_snapshot(data, init, grid, options):
    """The path of the driver before snapshots were read from the dense output: the solver
    runs to each snapshot time as its bound and restarts there."""
    from pwflow.model import get_loss
    from pwflow.stepper import HybridFlow

    flow = HybridFlow(data.X, data.y, init.W, init.a, get_loss("square"), 0.0,
                      options.validated())
    Z = [flow.Z.copy()]
    for T in grid[1:]:
        while flow.t < T:
            flow.step(T)
        Z.append(flow.Z.copy())
    return np.array(Z), flow.events.arrays(), flow


@pytest.mark.parametrize("rtol, tol", [(1e-13, 1e-12), (1e-10, 1e-9)])
def test_dense_snapshots_agree_with_restarting_at_each_snapshot(rtol, tol):
    """Snapshots read from the dense output between events (the solver restarts only at the
    resume anchors) against the old path that restarted the solver at every snapshot time,
    both on the reference path (restart at every event, DOP853 only).

    The two paths take different steps, so they agree to the integration error, not to
    rounding: measured 6.3e-14 (rtol 1e-13) and 5.5e-12 (rtol 1e-10) relative to the
    largest neuron on Stewart's data (m = 50, t = 50; 8.3e-13 at 1e-12: the gap scales
    with rtol, it is not a bias of the dense evaluation). The event log is the same:
    neurons, data points and kinds equal, times to the same tolerance.
    """
    data = pwflow.stewart(seed=0, n=40)
    init = pwflow.unbalanced(50, 2, 1e-3, seed=0)
    opt = FlowOptions(rtol=rtol, atol=1e-2 * rtol, batch_tol=0.0, stiff_solver=None)
    tr = simulate(data, init, 50.0, options=opt, n_snapshots=30)
    Z_ref, ev_ref, flow = _restarted_at_every_snapshot(data, init, tr.t, opt)
    assert tr.success and tr.t.size == 30
    assert tr.stats["n_restarts"] < flow.n_restarts  # fewer restarts: the point of it
    Z = np.concatenate([tr.W, tr.a[..., None]], axis=2)
    scale = np.max(np.linalg.norm(Z_ref, axis=2), axis=1)[:, None, None]
    assert np.max(np.abs(Z - Z_ref) / scale) <= tol
    assert tr.n_events == ev_ref["t"].size > 100
    for key in ("neuron", "k", "kind"):
        np.testing.assert_array_equal(tr.events[key], ev_ref[key])
    np.testing.assert_allclose(tr.events["t"], ev_ref["t"], rtol=tol, atol=tol)


def test_number_of_snapshots_barely_changes_the_work():
    """Snapshots are read from the dense output between events: only the resume anchors
    (about 8, chosen from ``t_max``) restart the solver, and the snapshots the dense output
    cannot give to the tolerance (:data:`pwflow.snapshots.SNAPSHOT_DEFECT`: that step is redone
    to end there, two restarts).  Measured on three points, m = 300: 2,388 field
    evaluations with 8 snapshots, 2,647 with 100 (12 steps redone), 4,097 with 400 (78);
    restarting at every snapshot, as before, cost 395 steps against 227 on the README run."""
    data, init = pwflow.three_points(), pwflow.balanced(300, 2, 1e-3, seed=0)
    few = simulate(data, init, 4000.0, n_snapshots=8)
    assert few.success and few.stats["n_snapshot_redos"] == 0
    for n_snap, factor in ((100, 1.25), (400, 2.0)):
        many = simulate(data, init, 4000.0, n_snapshots=n_snap)
        assert many.success and many.t.size == n_snap
        redos = many.stats["n_snapshot_redos"]
        assert many.stats["n_restarts"] <= few.stats["n_restarts"] + 2 * redos + 4
        assert many.stats["nfev"] <= factor * few.stats["nfev"]
        assert many.n_events == few.n_events
        assert abs(many.step_loss[-1] - few.step_loss[-1]) <= 1e-12


@pytest.mark.parametrize("n_snapshots", [2, 3, 17])
def test_snapshot_grid_always_ends_at_t_max(n_snapshots):
    tr = simulate(pwflow.three_points(), pwflow.balanced(5, 2, 1e-2, seed=0), 3.0,
                  n_snapshots=n_snapshots)
    assert tr.t[0] == 0.0 and tr.t[-1] == 3.0 and tr.success


def test_long_run_with_few_snapshots_stays_finite():
    """Few restarts: empty faces' propagators grow (e^{‖D‖t}) but must not overflow into h."""
    data = pwflow.three_points()
    tr = simulate(data, pwflow.balanced(100, 2, 1e-3, seed=0), 4000.0, n_snapshots=2)
    beta, *_ = np.linalg.lstsq(data.X, data.y, rcond=None)
    L_beta = 0.5 * np.mean((data.X @ beta - data.y) ** 2)
    assert tr.success and np.all(np.isfinite(tr.step_loss))
    assert abs(tr.step_loss[-1] - L_beta) <= 1e-10


def test_store_streams_snapshots_to_disk_and_loads_back(tmp_path):
    data = pwflow.three_points()
    init = pwflow.balanced(60, 2, 1e-3, seed=3)
    mem = simulate(data, init, 30.0, n_snapshots=12)
    disk = simulate(data, init, 30.0, n_snapshots=12, store=tmp_path / "run")
    assert isinstance(disk.W.base, np.memmap) or isinstance(disk.W, np.memmap)
    np.testing.assert_array_equal(disk.W, mem.W)
    np.testing.assert_array_equal(disk.pattern, mem.pattern)
    back = pwflow.Trajectory.load(tmp_path / "run")
    np.testing.assert_array_equal(np.asarray(back.a), mem.a)
    np.testing.assert_array_equal(back.events["t"], mem.events["t"])
    assert back.summary()["events"] == mem.summary()["events"]
    W, a = back.state(12.5)  # dense evaluation works from the memory-mapped snapshots
    np.testing.assert_allclose(a, mem.state(12.5)[1], rtol=1e-12, atol=1e-18)
    with pytest.raises(ValueError, match="not a pwflow store"):
        pwflow.Trajectory.load(tmp_path)


# ---------------------------------------------------------------------------- issue 10
_X10 = np.array([[1.3597475403099617, 1.2247210785859324, -0.5103070767876675],
                 [-0.2979695111064471, -0.5273841930334252, 0.5697263575719601],
                 [-0.05606443904561759, 0.7468856162565439, -1.8473247989741095],
                 [1.5665487746995206, -0.09643216015562055, 0.6803784532741461]])
_y10 = np.array([-0.13656633397682774, -0.3790985670748533, 0.46311015859758675,
                 0.824513527530113])
_W10 = np.array([[0.00017096383626592, 0.00679873770154981, 0.00612360539292966],
                 [-0.00255153538393834, -0.00148984755553224, -0.00263692096516713],
                 [0.0028486317878598, -0.00028032219522809, 0.00373442808128272],
                 [-0.00923662399487055, 0.0078327438734976, -0.0004821608007781]])
_a10 = np.array([-0.00915153571681293, 0.00396021852058099, 0.00470523503028443,
                 -0.01212021363047036])


def test_issue10_reproducer_leaves_x4_when_its_slope_reaches_1():
    """d = 3: neuron 0 slides on x₄ and x₃; when η₄ reaches 1 it must leave x₄ (it was held
    there until t = 25.78 with status 0 and a Lemma 1 drift of 0.22).  Checked against
    gradient descent at lr = 1e-3 and 5e-4, Richardson-extrapolated (GD is Euler, order 1)."""
    from pwflow.gd import gradient_descent

    data = Dataset(_X10, _y10)
    init = from_arrays(_W10, _a10)
    tr = simulate(data, init, 60.0, t_eval=[20.0, 60.0])
    assert tr.status == 0, tr.message
    ev = tr.events
    mine = (ev["neuron"] == 0) & (ev["kind"] == EventKind.LEAVE_SLIDING) & (ev["k"] == 3)
    t_leave = ev["t"][mine]
    assert t_leave.size >= 1 and 17.7 < t_leave[0] < 17.9
    assert np.max(tr.balancedness_drift()) <= 1e-10
    runs = [gradient_descent(data, init, lr=lr, t_max=60.0, save_times=[20.0, 60.0])
            for lr in (1e-3, 5e-4)]
    for t in (20.0, 60.0):
        W, a = tr.state(t)
        i = [int(np.argmin(np.abs(r.t - t))) for r in runs]
        Z1 = np.hstack([runs[0].W[i[0]], runs[0].a[i[0], :, None]])
        Z2 = np.hstack([runs[1].W[i[1]], runs[1].a[i[1], :, None]])
        extrapolated = 2 * Z2 - Z1
        gap = np.max(np.abs(Z2 - Z1))
        err = np.max(np.abs(np.hstack([W, a[:, None]]) - extrapolated))
        assert err <= gap, (t, err, gap)
    # <w₀, x₄> has left 0 at t = 20 (GD: +1.2e-3)
    W20, _ = tr.state(20.0)
    assert 1.0e-3 < W20[0] @ _X10[3] < 1.4e-3


def test_a_neuron_held_on_a_hyperplane_it_should_leave_is_reported(monkeypatch):
    """The honest status can fail: with the exit rule switched off (the neuron kept on x₄ when
    its slope reaches 1, the pre-issue-10 behaviour) the run stops with Status.INVARIANT and a
    message naming the neuron, the hyperplanes and the time, instead of status 0."""
    import dataclasses

    import pwflow.classify as classify

    real = classify.select

    def keep_on_exits(*args, **kwargs):
        sel = real(*args, **kwargs)
        exits = kwargs.get("exits") or {}
        signs = sel.signs.copy()
        signs[np.isin(sel.K, list(exits))] = 0
        return dataclasses.replace(sel, signs=signs)

    monkeypatch.setattr(classify, "select", keep_on_exits)
    tr = simulate(Dataset(_X10, _y10), from_arrays(_W10, _a10), 60.0)
    assert tr.status == Status.INVARIANT
    import re

    # the first neuron held past its exit is named (here neuron 2 on x₂, t = 14.498)
    assert re.search(r"sliding residual: neuron \d+ on the hyperplanes \[[\d, ]+\] drifted off "
                     r"them by [\d.e-]+ .* by t = [\d.]+", tr.message), tr.message
    assert tr.t[-1] < 60.0
    assert np.all(np.isfinite(tr.W))


def test_invariant_tolerance_is_an_option_and_is_validated():
    with pytest.raises(ValueError, match="invariant_tol"):
        FlowOptions(invariant_tol=0.0).validated()
    with pytest.raises(ValueError, match="branch_policy"):
        FlowOptions(branch_policy="random").validated()
    assert FlowOptions(branch_policy="gd").validated().branch_policy.value == "gd"


def test_reach_zero_on_an_intersection_of_two_hyperplanes_in_d3():
    """d = 3: a neuron on the ray x₁^⊥ ∩ x₃^⊥ (two hyperplanes at once) shrinking to w = 0.

    Frozen output (h ≡ 0, r = −y = (1, −1, 1)): the minimal-norm slopes are η₁ = 0.4 and
    η₃ = 0.5 (both interior), D = (0.4, 0.2, 0) ∥ e = (1, 0.5, 0)/‖·‖, so ρ = <w, e> and a follow
    ρ' = c a, a' = c ρ with c = ‖D‖: ρ vanishes at t* = artanh(−ρ₀/a₀)/c.
    """
    X = np.array([[-0.5, 1.0, 0.0], [1.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    data = Dataset(X, np.array([-1.0, 1.0, -1.0]))
    e = np.array([1.0, 0.5, 0.0]) / np.linalg.norm([1.0, 0.5])
    rho0, a0 = 0.3, -1.0
    tr = simulate(data, from_arrays([rho0 * e], [a0]), 2.0, frozen_output=True, rtol=1e-12,
                  atol=1e-14)
    assert tr.status == 0, tr.message
    ev = tr.events
    U0 = tr.patterns[tr.pattern[0]][0]
    np.testing.assert_array_equal(U0, [0, 1, 0])  # starts sliding on both hyperplanes
    zero = np.flatnonzero(ev["kind"] == EventKind.REACH_ZERO)
    assert zero.size == 1
    c = np.linalg.norm([0.4, 0.2, 0.0])
    t_star = np.arctanh(-rho0 / a0) / c
    assert abs(ev["t"][zero[0]] - t_star) <= 1e-9 * t_star
    W, a = tr.state(2.0)
    assert np.all(W[0] == 0.0)
    assert np.max(tr.balancedness_drift()) <= 1e-10


def test_reach_zero_with_a_leaky_relu_departs_at_once_in_closed_form():
    """The ray of ``test_reach_zero_on_a_ray_matches_closed_form_and_freezes`` with γ = 0.2:
    at ``w = 0`` the slopes are in ``[0.2, 1]``, so ``𝔇(0) ∌ 0`` (``x_1, x_2`` independent)
    and staying at 0 is no solution of Eq. (2).  The neuron departs at once onto the ray
    ``{<w, x_1> > 0} ∩ x_2^⊥``, where the minimal-norm slope is ``η_2 = <x_1, x_2>/‖x_2‖² =
    0.25`` and ``D = (x_2 η_2 − x_1)/2 = (0.375, −0.375)`` (constant: frozen output).  From
    ``w = 0``, ``a = a*``: ``w = a* sinh(cτ) D/c``, ``a = a* cosh(cτ)``, ``c = ‖D‖``."""
    X = np.array([[-0.5, 1.0], [1.0, 1.0]])
    data = Dataset(X, np.array([-1.0, 1.0]))
    e = np.array([1.0, 0.5]) / np.linalg.norm([1.0, 0.5])
    rho0, a0 = 0.3, -1.0
    tr = simulate(data, from_arrays([rho0 * e], [a0]), 3.0, gamma=0.2, frozen_output=True,
                  rtol=1e-12, atol=1e-14)
    assert tr.status == 0, tr.message
    ev = tr.events
    i = int(np.flatnonzero(ev["kind"] == EventKind.REACH_ZERO)[0])
    c0 = np.linalg.norm([0.6, 0.3])  # the first ray's field, as in the γ = 0 case
    t_star = np.arctanh(-rho0 / a0) / c0
    assert abs(ev["t"][i] - t_star) <= 1e-10 * t_star
    np.testing.assert_array_equal(tr.patterns[ev["to_pattern"][i]], [1, 0])
    a_star = a0 * np.cosh(c0 * t_star) + rho0 * np.sinh(c0 * t_star)
    D = (0.25 * X[1] - X[0]) / 2
    c = np.linalg.norm(D)
    for t in (1.0, 3.0):
        W, a = tr.state(t)
        tau = t - t_star
        np.testing.assert_allclose(W[0], a_star * np.sinh(c * tau) * D / c, rtol=1e-9)
        np.testing.assert_allclose(a[0], a_star * np.cosh(c * tau), rtol=1e-10)
    assert np.max(tr.balancedness_drift()) <= 1e-10
    # ReLU: every slope 0 gives D = 0 ∈ 𝔇(0); it stays at 0 (Condition 1, point 2)
    relu = simulate(data, from_arrays([rho0 * e], [a0]), 3.0, gamma=0.0, frozen_output=True,
                    rtol=1e-12, atol=1e-14)
    assert np.all(relu.state(3.0)[0] == 0.0)


def test_a_zero_hidden_layer_with_a_leaky_relu_leaves_zero_as_gradient_descent():
    """``W = 0``, ``a ≠ 0`` (a zero-initialised first layer), γ = 0.3, d = 3: ``𝔇(0) ∌ 0``, so
    every neuron leaves ``w = 0`` at t = 0.  Neuron 1 (``a < 0``) has more than one consistent
    departure: a branch point, logged under either policy; under ``'gd'`` the flow follows
    gradient descent (``σ'(0) = γ``), extrapolated from three steps (measured: 6e-6 against
    an estimate of 1e-3), and the minimal-norm one departs elsewhere (3e-2 from it)."""
    rng = np.random.default_rng(7)
    X, y = rng.normal(size=(5, 3)), rng.normal(size=5)
    a0 = np.array([0.4, -0.3, 0.2])
    ref = gd_reference(X, y, np.zeros((3, 3)), a0, 0.3, "square", [1.0, 2.0], lr=1e-3)
    for policy in ("gd", "min_norm"):
        tr = simulate(Dataset(X, y), from_arrays(np.zeros((3, 3)), a0), 2.0, gamma=0.3,
                      options=FlowOptions(branch_policy=policy))
        assert tr.status == 0, tr.message
        ev = tr.events
        at0 = ev["t"] == 0.0
        assert sorted(ev["neuron"][at0 & (ev["kind"] == EventKind.REACH_ZERO)]) == [0, 1, 2]
        assert set(ev["neuron"][at0 & (ev["kind"] == EventKind.BRANCH)]) == {1}
        W, a = tr.state(2.0)
        assert np.all(np.linalg.norm(W, axis=1) > 1e-2)
        errors = [ref.error(*tr.state(t), i) / ref.estimate(i) for i, t in enumerate((1.0, 2.0))]
        if policy == "gd":
            assert max(errors) <= C_GAP, errors
        else:
            assert min(errors) > C_GAP, errors


@pytest.mark.slow  # single scenario, moved out of CI's 15 minutes (session 50)
def test_global_minimum_residuals_below_resolution_make_no_face_events():
    """At a global minimum every ``r_k`` falls to the outputs' resolution (``rtol``), where its
    sign, and the free slopes' regime read from it, are noise: read as such, they made a face
    event of nearly every step (this case took 5 652 steps and 100 s to reach t = 721 before;
    now about 840 steps to t = 1000).  The run still converges (loss < 1e-20) to the reference
    path's final state, to the integration error.  Both runs integrate to the end
    (``rest_tol=0``: the stop at rest would skip the stretch at rounding level tested here;
    it is tested in ``tests/test_rest.py``)."""
    data, init = pwflow.three_points(), pwflow.balanced(60, 2, 0.3, seed=0)
    tr = simulate(data, init, 1000.0, n_snapshots=8, options=FlowOptions(rest_tol=0.0))
    ref = simulate(data, init, 1000.0, n_snapshots=8,
                   options=FlowOptions(batch_tol=0.0, stiff_solver=None, rest_tol=0.0))
    assert tr.success and ref.success
    assert tr.stats["n_steps"] < 2000 and ref.stats["n_steps"] < 2000
    assert tr.step_loss[-1] < 1e-20 and ref.step_loss[-1] < 1e-20
    scale = np.max(np.abs(ref.a[-1]))
    assert np.max(np.abs(tr.a[-1] - ref.a[-1])) <= 1e-9 * scale


#: d = 4, n = 4 (a drawn report of tests/test_report.py): two neurons slide on x_2's
#: hyperplane while every residual decays to its resolution (zero loss)
_RESOLUTION_X = np.array([
    [0.0, -1.4707257839457712, 1.3805127028706066, 1.9999999999999998],
    [-0.5501891780365546, -0.9138601724623887, -1.5306221049997504, 0.0],
    [-1.2364026985929664, -0.5882560490318018, -0.5501891780365546, -0.7708569749541183],
    [-1.0, 0.15339031842471362, 1.7500912799552966, -0.7739643581206355]])
_RESOLUTION_Y = np.array([-0.5464113657754139, 1.435601263341033, -1.3805127028706066,
                          -0.9805464821385299])


def test_residuals_at_their_resolution_do_not_make_neurons_enter_and_leave_in_turn():
    """From t ≈ 97 every ``r_k`` is at its resolution (``rtol · |y_k|``).  The entry of a
    neuron into x_2's hyperplane is decided on the residuals themselves (the field moves it
    with them), the sliding regime on the resolved ones; where the two readings differed,
    each entry was undone the same instant, and residuals flickering across their
    resolution made a face event of every step: 7 675 events by t = 98.6 in 25 s before.
    Now the run to t = 120 has a few dozen events, and it agrees with the reference path
    (``batch_tol=0``, DOP853 only) to the integration error.  With the stop at rest, the
    horizon of proofs-checks (3000) is reached, at rest from t < 110 (the Łojasiewicz bound
    of ``pwflow.rest`` does not grow with the horizon), within that bound of the run."""
    data = Dataset(_RESOLUTION_X, _RESOLUTION_Y)
    init = pwflow.balanced(4, 4, 1e-2, seed=0)

    def guard(flow):  # the old code's Zeno-like stall, cut short
        if len(flow.events) > 2000:
            raise KeyboardInterrupt

    runs = [simulate(data, init, 120.0, gamma=0.2, n_snapshots=8, callback=guard,
                     options=FlowOptions(rest_tol=0.0, **kw))
            for kw in ({}, {"batch_tol": 0.0, "stiff_solver": None})]
    for tr in runs:
        assert tr.status == Status.FINISHED, tr.message
        assert tr.n_events < 200 and tr.step_loss[-1] < 1e-20
    tr, ref = runs
    Z = np.c_[tr.W[-1], tr.a[-1]]
    scale = np.max(np.linalg.norm(Z, axis=1))
    assert np.max(np.abs(Z - np.c_[ref.W[-1], ref.a[-1]])) <= 1e-10 * scale
    far = simulate(data, init, 3000.0, gamma=0.2, n_snapshots=8, callback=guard)
    assert far.status == Status.FINISHED and far.stats["t_rest"] < 110.0
    moved = np.max(np.linalg.norm(np.c_[far.W[-1], far.a[-1]] - Z, axis=1))
    assert moved <= far.stats["rest_bound"] * scale + 1e-10 * scale


# tests/explore_long.py's problem 14: d = 2 (a bias column), n = 7, square loss, γ = 0
_EDGE_X = np.c_[[-1.5734903329477068, -0.35323216358269055, 0.03307262346929485,
                 1.0232382136634648, 2.6522866971695453, 0.3735530621878692,
                 -0.11425241215164042], np.ones(7)]
_EDGE_Y = np.array([0.33452648360440757, -2.1266836963811473, -0.6468087625992227,
                    1.694093202177908, 0.21132613280362944, -0.24039851728557995,
                    0.372928487050425])


@pytest.mark.slow  # moved out of CI's time (session 47: CI at 876 of 900 s)
def test_neurons_converging_to_the_edge_of_their_sliding_region_keep_long_implicit_steps():
    """Sliding neurons whose free slope tends to its bound (``η* → 1`` or ``→ γ`` as the run
    converges to a local minimum, loss 0.1635): the clipped field has a kink at the limit,
    and the implicit solver's Newton iterates straddled it (contraction 0.5 per iteration,
    failures, halved steps), and neurons grazed the hyperplane every 0.9 time units: 10 630
    steps and 1 855 grazing events to t = 3000 (50 s) before.  Holding the sliding mode of
    the faces whose neurons stay (``PatternTable.holding``) keeps the field smooth: about
    1 000 steps.  To ``t = 1000`` (other steps) a neuron settled beside a hyperplane instead,
    after an exit read from ``η*``'s noise at its bound, and grazed it 369 times (3 152
    steps): a slope is now read as beyond its bound only past the resolution of its normal
    velocity (:func:`pwflow.filippov.slope_codes`; measured: 827 steps to t = 3000, 859 to
    t = 1000, no grazing).  The run agrees with DOP853 alone (no implicit solver) at
    t = 1000."""
    data = Dataset(_EDGE_X, _EDGE_Y)
    init = pwflow.balanced(20, 2, 1e-2, seed=14)

    def guard(flow):  # the old code's thousands of steps, cut short
        if flow.n_steps > 4000:
            raise KeyboardInterrupt

    far = simulate(data, init, 3000.0, gamma=0.0, n_snapshots=8, callback=guard)
    assert far.status == Status.FINISHED, far.message
    assert far.stats["n_steps"] < 1500
    assert np.count_nonzero(far.events["kind"] == EventKind.GRAZING) < 10
    assert abs(far.step_loss[-1] - 0.163548286835444) < 1e-9
    runs = [simulate(data, init, 1000.0, gamma=0.0, n_snapshots=8,
                     options=FlowOptions(**kw)) for kw in ({}, {"stiff_solver": None})]
    assert runs[0].stats["n_steps"] < 1500
    assert np.count_nonzero(runs[0].events["kind"] == EventKind.GRAZING) < 10
    # DOP853 alone: no grazing on the hosts of sessions 20–33; 20 on session 34's (ten neurons
    # at t = 792.49 and 921.80, whose <w, x_k> sit at ~1e-13 after leaving a sliding mode:
    # a host-dependent reading at the resolution, noted in docs/integrator.md); the old
    # failure this guards was 369 to 1 855
    assert np.count_nonzero(runs[1].events["kind"] == EventKind.GRAZING) < 100
    # ... and 468 BRANCH rows of neurons 0 and 5 on x_4's hyperplane there, 458 of them the
    # exit rule reading r_4 (fitted to ~1e-11) on the raw residuals where its sign had been
    # resolved to 0 (session 35, ``test_regime.py::test_a_repulsive_mode_turning_attractive_
    # is_not_a_branch_point``): 10 since.  Session 49 (the outputs' noise in the normal
    # velocities' resolution and in the hysteresis of the signs held at 0): 2, and the
    # rtol = 1e-12 run's events (24 entries and 12 exits, against 28 and 26 and 20 grazing
    # contacts before)
    assert np.count_nonzero(runs[1].events["kind"] == EventKind.BRANCH) <= 20
    Z, ref = (np.c_[tr.W[-1], tr.a[-1]] for tr in runs)
    scale = np.max(np.linalg.norm(ref, axis=1))
    assert np.max(np.abs(Z - ref)) <= 2e-9 * scale


@pytest.mark.slow
def test_signs_held_at_zero_are_read_again_beyond_the_outputs_noise(monkeypatch):
    """The data of the test above, DOP853 alone to t = 1 000 (session 49): neurons 0 and 5
    stay on x_4's hyperplane while r_4, fitted to ~1e-11, sits below the outputs' noise
    (~2e-9).  Its sign was read 0 at every solver start and +1 on the step's dense output,
    and each reading was a face event whose exit rule found the pair's mode repulsive: 32
    BRANCH rows.  A sign held at 0 is now read again only beyond the noise
    (``RegimeMixin._held_noise``): the events of the rtol = 1e-12 run, 2 BRANCH rows.
    Mechanism off: the 32 again."""
    from pwflow.regime import RegimeMixin

    data = Dataset(_EDGE_X, _EDGE_Y)
    init = pwflow.balanced(20, 2, 1e-2, seed=14)

    def branch_rows(**options):
        tr = simulate(data, init, 1000.0, gamma=0.0, n_snapshots=8,
                      options=FlowOptions(stiff_solver=None, **options))
        assert tr.status == 0, tr.message
        kinds = tr.events["kind"]
        return tr, np.count_nonzero(kinds == EventKind.BRANCH), sorted(
            zip(tr.events["neuron"].tolist(), tr.events["k"].tolist(), kinds.tolist(), strict=True))

    tr, branches, rows = branch_rows()
    tight, tight_branches, tight_rows = branch_rows(rtol=1e-12, atol=1e-14)
    assert branches <= 4 and rows == tight_rows
    Z, ref = (np.c_[t.W[-1], t.a[-1]] for t in (tr, tight))
    assert np.max(np.abs(Z - ref)) <= 1e-11 * np.max(np.linalg.norm(ref, axis=1))
    monkeypatch.setattr(RegimeMixin, "_held_noise", lambda self: None)
    assert branch_rows()[1] >= 20


@pytest.mark.slow  # single scenario, moved out of CI's 15 minutes (session 50)
def test_slopes_converging_to_their_bounds_are_not_exits_read_from_noise():
    """``tests/explore_long.py`` problem 117 (d = 2, n = 8, m = 8, loss 0.3045 at a local
    minimum): neurons 3, 6 and 7 slide on ``x_0``'s hyperplane with ``η* → 1`` (``1 − η*``
    about 1e-9 at t = 1600, decaying), neurons 0 and 1 on ``x_4``'s with ``η* → γ = 0``.  Once
    the distance to the bound is below what the residuals resolve, ``η*``'s noise read as an
    exit made them leave and re-enter every 1–4 time units, or leave for good and graze the
    hyperplane once per time unit: 1 316 grazing and 45 leave events to t = 3000 (6 569 steps).
    Read only past the velocity's resolution (:func:`pwflow.filippov.slope_codes`): 38
    events to t = 8 000, 4 LEAVE_SLIDING, about 4 500–4 900 steps.  The run passes a plateau
    (loss 0.30841) that it leaves after neurons reach ``w = 0`` at ill-conditioned times
    (t ≈ 568–619 across versions and snapshot counts, the 31 events before them within
    1.3e-9), so at t = 3 000 it is on the plateau or past it depending on the last bit of
    the fixed part's products (session 24); by t = 8 000 every version has
    converged: 0.30454776705810244 (session 23's code) and ...240 (session 24's)."""
    from explore_long import problem

    data, init, gamma, loss, _ = problem(117)
    tr = simulate(data, init, 8000.0, gamma=gamma, loss=loss, n_snapshots=8)
    assert tr.status == Status.FINISHED, tr.message
    kinds = tr.events["kind"]
    assert np.count_nonzero(kinds == EventKind.GRAZING) < 10
    assert np.count_nonzero(kinds == EventKind.LEAVE_SLIDING) < 10
    assert tr.stats["n_steps"] < 6000
    assert abs(tr.step_loss[-1] - 0.3045477670581) < 1e-12
    assert np.max(tr.balancedness_drift()) < 1e-12


@pytest.mark.parametrize("offset", [2.0**-56, -(2.0**-56)])
def test_a_neuron_within_rounding_of_a_hyperplane_starts_on_it(offset):
    """``<w, x_0> = ±2^-56`` for ``‖w‖ ≈ 0.6``: below the rounding of the product (the size a
    floating-point projection onto the hyperplane leaves), so its sign says nothing of the
    side.  The neuron starts on x_0's hyperplane and the rule decides (before: the sign of
    the rounding picked its side, and a branch point there went unseen)."""
    from pwflow.events import within_rounding

    X = np.array([[1.0, 0.0, 0.0], [0.5, 1.0, 0.0], [-0.25, 0.5, 1.0]])
    y = np.array([1.0, -0.5, 0.25])
    W = np.array([[offset, 0.5, 0.25], [0.3, -0.2, 0.4]])
    a = np.array([-0.6, 0.5])
    assert within_rounding(W @ X.T, W, X)[0].tolist() == [True, False, False]
    tr = simulate(Dataset(X, y), from_arrays(W, a), 1.0, gamma=0.0)
    assert tr.status == 0, tr.message
    ev = tr.events
    at0 = (ev["t"] == 0.0) & (ev["neuron"] == 0) & (ev["k"] == 0)
    assert np.count_nonzero(at0) == 1, ev
    kind = ev["kind"][at0][0]
    assert kind in (EventKind.INITIAL_FACE, EventKind.LEAVE_SLIDING, EventKind.BRANCH)
    if kind == EventKind.INITIAL_FACE:  # held: put on the hyperplane exactly
        assert tr.W[0][0] @ X[0] == 0.0
    # both offsets are the same start to the arithmetic's resolution: the same decision
    other = simulate(Dataset(X, y), from_arrays(W * [[-1, 1, 1], [1, 1, 1]], a), 1.0, gamma=0.0)
    assert other.events_by_kind() == tr.events_by_kind()


# ---------------------------------------------------------------------------- snapshots


@pytest.mark.parametrize("kind", ["generic", "multi_active"])
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                HealthCheck.filter_too_much])
@given(data=st.data())
def test_snapshots_agree_with_runs_ending_there(kind, data):
    """A snapshot read inside a step (dense output, :data:`pwflow.snapshots.SNAPSHOT_DEFECT`)
    is the state a run ending at that time returns, to the integration tolerance: drawn
    problems in d = 2–5 (``multi_active``: several hyperplanes active at once, d = 3–5), three
    drawn times, compared up to the first branch point (after it the two runs may take
    different solutions of Eq. (2)).

    Where the two differ by more than that, the snapshot is held to the state itself (a run
    at rtol = 1e-13) as closely as the run ending there is: an ill-conditioned event before
    ``T`` puts both off by more than the tolerance, each by its own steps (session 35,
    thorough profile: d = 5, n = 3, a jump exit at t = 1.80694 whose pinned gap rises at
    8e-6 per unit time, the exit 1.7e-8 late at rtol = 1e-10 and the state 4.9e-9 off
    afterwards, the snapshot and the end 1.05e-8 apart)."""
    prob = data.draw(problems(20.0) if kind == "generic" else multi_active_problems(20.0))
    fracs = sorted(data.draw(st.lists(st.floats(0.05, 0.95), min_size=3, max_size=3,
                                      unique=True)))
    times = np.array(fracs) * prob.t_max

    def run(t_max, t_eval=None):
        return simulate(prob.data(), prob.init(), t_max, gamma=prob.gamma, loss=prob.loss,
                        t_eval=t_eval)

    tr = run(prob.t_max, times)
    assert tr.status == 0, tr.message
    for T in times[times < first_branch_after_start(tr)]:
        i = int(np.flatnonzero(tr.t == T)[0])
        _assert_is_the_state_of_a_run_ending_at(prob, float(T), tr.W[i], tr.a[i])


def _assert_is_the_state_of_a_run_ending_at(prob, T: float, W, a) -> None:
    """``(W, a)`` is the state a run of ``prob`` ending at ``T`` returns, within 1e-9 of its
    size; where it is not, it is as close to a run at ``rtol = 1e-13`` as that run is (twice
    its distance).  Nothing is compared past a branch point of either reference run."""
    def run(options=None):
        return simulate(prob.data(), prob.init(), T, gamma=prob.gamma, loss=prob.loss,
                        options=options)

    end = run()
    assert end.status == 0, end.message
    if first_branch_after_start(end) <= T:
        return
    z, z_end = np.concatenate([W.ravel(), a]), np.concatenate([end.W[-1].ravel(), end.a[-1]])
    tol = 1e-9 * (1.0 + np.linalg.norm(z_end))
    if np.linalg.norm(z - z_end) <= tol:
        return
    tight = run(FlowOptions(rtol=1e-13, atol=1e-15))
    if first_branch_after_start(tight) <= T:
        return  # the reference meets a branch point the two runs do not
    z_ref = np.concatenate([tight.W[-1].ravel(), tight.a[-1]])
    own = np.linalg.norm(z_end - z_ref)
    assert np.linalg.norm(z - z_ref) <= max(tol, 2.0 * own), (T, own, prob)


@pytest.mark.parametrize("kind", ["generic", "multi_active"])
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                HealthCheck.filter_too_much])
@given(data=st.data())
def test_dense_state_agrees_with_runs_ending_there(kind, data):
    """:meth:`Trajectory.state` at drawn times between the snapshots (the retrace from the
    snapshot before, with the run's steps and solvers, :func:`pwflow.integrator.continue_from`)
    is the state a run ending at that time returns, to the integration tolerance, under the
    run's floating-point checks (no warning: warnings are errors in this suite), up to the
    first branch point; where the two differ by more, it is as close to a run at
    ``rtol = 1e-13`` as the run ending there (:func:`_assert_is_the_state_of_a_run_ending_at`,
    the criteria of :func:`test_snapshots_agree_with_runs_ending_there`)."""
    prob = data.draw(problems(20.0) if kind == "generic" else multi_active_problems(20.0))
    fracs = sorted(data.draw(st.lists(st.floats(0.05, 0.95), min_size=2, max_size=2,
                                      unique=True)))
    times = np.array(fracs) * prob.t_max

    tr = simulate(prob.data(), prob.init(), prob.t_max, gamma=prob.gamma, loss=prob.loss)
    assert tr.status == 0, tr.message
    assert tr.step_implicit.shape == tr.step_t.shape
    for T in times[times < first_branch_after_start(tr)]:
        _assert_is_the_state_of_a_run_ending_at(prob, float(T), *tr.state(float(T)))


#: the thorough profile of ``test_snapshots_agree_with_runs_ending_there[multi_active]``
#: (session 53): d = 3, n = 6, m = 4, γ = 0, square loss; neuron 1 starts on x_0's and
#: x_1's hyperplanes (a branch point on x_0, a repulsive mode) and leaves x_0 at t ≈ 6.1313
#: when its slope reaches γ = 0, slowly (dη/dt = 3.1e-4): a jump exit
JUMP_EXIT_CASE = dict(
    X=np.array([[-1.75, -1.125, -1.25], [-1.5, 1.125, 0], [1.125, 2, 2], [0, 0, -1.875],
                [0, 1.25, -1.375], [0, 0, -1.25]]),
    y=np.array([-0.3889650935783737, 0, -0.9042660256581196, -0.26816263687844666, 0, 0]),
    W=np.array([[1, 0.5, 0.75], [-0.3515625, -0.46875, 0.9140625],
                [0.38671875, 0.515625, 0.46875], [0.77734375, -0.6015625, -0.546875]]),
    a=np.array([-0.673145600891813, -0.673145600891813, 0.799360401059028, 0.0]))


def _jump_exit_row(run) -> int:
    ev = run.events
    rows = np.flatnonzero((ev["kind"] == EventKind.LEAVE_SLIDING) & (ev["neuron"] == 1)
                          & (ev["k"] == 0) & (ev["t"] > 1.0))
    assert rows.size == 1, ev
    return int(rows[0])


def _slope_on_x0(run, t: float) -> float:
    """Neuron 1's minimal-norm slope on x_0 at ``t``, written out here (square loss, γ = 0):
    ``η* = −<b, x_0> / <z, x_0>`` with ``b = −(1/n) Σ_{k≠0} r_k 1[<w, x_k> > 0] x_k`` and
    ``z = −(r_0 / n) x_0``."""
    X, y = JUMP_EXIT_CASE["X"], JUMP_EXIT_CASE["y"]
    W, a = run.state(t)
    pre = W @ X.T
    r = np.maximum(pre, 0.0).T @ a - y
    on = (pre[1] > 0).astype(float)
    on[0] = 0.0
    b = -(r * on) @ X / len(y)
    z = -(r[0] / len(y)) * X[0]
    return float(-(b @ X[0]) / (z @ X[0]))


def test_a_step_with_a_jump_exit_inside_is_redone_before_it_once():
    """:meth:`HybridFlow._cut_inaccurate` at a jump exit placed inside the step (the record
    :meth:`RegimeMixin._exit_time` leaves): redone to end :data:`~pwflow.snapshots.
    EXIT_REDO_MARGIN` of the span before it, whatever the defect estimate, and counted as an
    exit redo; not again from the start of that redo (the exit is then read near its start),
    nor where the cut is not that exit (another event, or the exit of another step)."""
    import types

    from pwflow.regime import PendingExits
    from pwflow.snapshots import EXIT_REDO_MARGIN, SnapshotsMixin

    exits = {3: {1: False}}

    def flow(jump_root, redo_end=None):
        redone: list[float] = []
        ns = types.SimpleNamespace(
            _phase=types.SimpleNamespace(stiff=False), _cut_redo_from=None, n_cut_redos=0,
            n_exit_redos=0, _jump_root=jump_root, _exit_redo_end=redo_end, _exit_pending=None,
            _snapshot_errors=lambda times, t0, F, solver: np.array([0.0]),
            _redo_to=redone.append, time_unit=1.0, redone=redone)
        ns._redo_before_exit = lambda *args: SnapshotsMixin._redo_before_exit(ns, *args)
        return ns

    f = flow((1.0, 1.5, exits))
    assert SnapshotsMixin._cut_inaccurate(f, 1.0, 1.5, 2.0, None, None) is True
    assert f.redone == [1.5 - EXIT_REDO_MARGIN * 0.5] and f.n_exit_redos == 1
    assert f._exit_redo_end == f.redone[0] and f.n_cut_redos == 0
    # read with no resolution until 1.5 + 0.5
    assert f._exit_pending == PendingExits(exits, 2.0)
    for f in (flow((1.0, 1.5, exits), redo_end=1.0), flow((1.0, 1.25, exits)),
              flow((0.5, 1.5, exits)), flow(None)):
        assert SnapshotsMixin._cut_inaccurate(f, 1.0, 1.5, 2.0, None, None) is False
        assert f.redone == [] and f.n_exit_redos == 0 and f._exit_pending is None


def test_a_cut_redone_for_its_state_keeps_its_exits_for_the_step_from_it():
    """:meth:`HybridFlow._cut_inaccurate` redoing a step to end at a cut whose state the
    dense output cannot give keeps the exits located there (:class:`~pwflow.regime.CutExits`,
    the sign-only entries dropped); none where the cut is not redone or has no exit.
    :meth:`RegimeMixin._located_at_cut` answers for those exits alone, from the cut's time
    alone, with the bound they were read at; and a resume carries them."""
    import types

    from pwflow.regime import CutExits, RegimeMixin
    from pwflow.resume import capture, restore
    from pwflow.snapshots import SnapshotsMixin

    def flow(defect):
        redone: list[float] = []
        return types.SimpleNamespace(
            _phase=types.SimpleNamespace(stiff=False), _cut_redo_from=None, n_cut_redos=0,
            _jump_root=None, _cut_exits=None, CUT_EXITS_KEEP_ROOT=True,
            _snapshot_errors=lambda times, t0, F, solver: np.array([defect]),
            _redo_to=redone.append, time_unit=1.0, redone=redone)

    exits = {3: {1: False, 4: True}, 5: {}}
    f = flow(10.0)
    assert SnapshotsMixin._cut_inaccurate(f, 1.0, 1.5, 2.0, None, None, exits) is True
    assert f.redone == [1.5] and f.n_cut_redos == 1
    assert f._cut_exits == CutExits({3: {1: False, 4: True}}, 1.5)
    at = RegimeMixin._located_at_cut
    assert at(f, 3, 1, False, 1.5) and at(f, 3, 4, True, 1.5)
    assert not (at(f, 3, 1, True, 1.5) or at(f, 3, 2, False, 1.5) or at(f, 5, 1, False, 1.5)
                or at(f, 3, 1, False, np.nextafter(1.5, 2.0)))
    f.CUT_EXITS_KEEP_ROOT = False
    assert not at(f, 3, 1, False, 1.5)
    back = types.SimpleNamespace(n=6)
    restore(back, capture(f))
    assert back._cut_exits == f._cut_exits
    for defect, ex in ((0.5, exits), (10.0, {5: {}}), (10.0, None)):
        g = flow(defect)
        SnapshotsMixin._cut_inaccurate(g, 1.0, 1.5, 2.0, None, None, ex)
        assert g._cut_exits is None


@pytest.mark.parametrize("redo", [True, False])
def test_a_jump_exit_inside_a_step_is_read_from_an_accurate_state(monkeypatch, redo):
    """A jump exit (a repulsive mode whose slope reached its bound: the normal velocity
    jumps, and the state after it moves with the exit time at first order) located on a
    step's dense output is read again from a step redone to end just before it
    (:meth:`HybridFlow._redo_before_exit`).  On :data:`JUMP_EXIT_CASE` the slope reaches 0
    at 3.1e-4 per unit time, and the root found on the dense output of a step of 0.42 was
    9.2e-8 early (its error there, 1e-12, over that rate) while the state at the step ends
    was 2e-13 off: the state at t = 15 was 8.3e-10 (relative) from the run at
    ``rtol = 1e-13``.  Now 4.9e-9 and 4.4e-11.  The reference's own exit is checked
    independently: the slope written out here is 0 there to 1e-12 (it moves by 3e-12 in
    1e-8).  ``redo=False`` switches the redo off and sees the old error."""
    if not redo:
        monkeypatch.setattr(pwflow.stepper.HybridFlow, "_redo_before_exit",
                            lambda self, t0, t_exit, exits: False)
    data = Dataset(JUMP_EXIT_CASE["X"], JUMP_EXIT_CASE["y"])
    init = from_arrays(JUMP_EXIT_CASE["W"], JUMP_EXIT_CASE["a"])
    run = simulate(data, init, 15.0, gamma=0.0)
    tight = simulate(data, init, 15.0, gamma=0.0, options=FlowOptions(rtol=1e-13, atol=1e-15))
    assert run.status == 0 and tight.status == 0, (run.message, tight.message)
    t_ref = float(tight.events["t"][_jump_exit_row(tight)])
    assert abs(_slope_on_x0(tight, t_ref)) <= 1e-12
    assert abs(_slope_on_x0(tight, t_ref - 1e-3)) >= 1e-7  # reaching it, not at it
    late = abs(float(run.events["t"][_jump_exit_row(run)]) - t_ref)
    Z, Z_ref = (np.concatenate([r.W[-1].ravel(), r.a[-1]]) for r in (run, tight))
    off = np.linalg.norm(Z - Z_ref) / np.linalg.norm(Z_ref)
    if redo:
        assert run.stats["n_exit_redos"] >= 1
        assert late <= 2e-8 and off <= 2e-10, (late, off)
    else:
        assert run.stats["n_exit_redos"] == 0
        assert late > 5e-8 and off > 4e-10, (late, off)


@pytest.mark.parametrize("look", [True, False])
def test_a_crossing_whose_neuron_comes_back_early_in_the_next_step_logs_no_empty_contact(
        monkeypatch, look):
    """Found by session 53's metamorphic campaign (``tests/explore_scipy.py``'s draw 30116:
    d = 8, n = 7, m = 6, γ = 0, square loss): neuron 5 crosses x_1's hyperplane at
    t = 3.4611186 and comes back to it 0.0038 later, 0.96 % into the next step, to slide
    there.  Its excursion fell inside the scan grid's first interval (1/64), and the return was
    read as leaving at once: a GRAZING row at the crossing's own time (an empty contact) and
    a step of length 0; the run on the rotated data (``X Q``, ``W Q``) and the run at
    ``rtol = 1e-13`` log neither.  Now the events are the tight run's, kind for kind, at
    times within 1e-7 (an exit to its bound's own side at t = 5.94 is read 4.5e-8 late, by
    its resolution: "Exits to the bound's own side" in ``docs/integrator.md``), the
    crossing and the entry after it within 1e-9.  ``look=False`` switches off the look near
    the step start
    (:func:`pwflow.events._side_near_start`) and sees the extra row."""
    from explore_scipy import draw

    from pwflow import events as E

    if not look:
        monkeypatch.setattr(E, "_side_near_start", lambda *args: None)
    X, y, W, a, gamma, loss = draw(30116)
    data, init = Dataset(X, y), from_arrays(W, a)
    run = simulate(data, init, 10.0, gamma=gamma, loss=loss)
    tight = simulate(data, init, 10.0, gamma=gamma, loss=loss,
                     options=FlowOptions(rtol=1e-13, atol=1e-15))
    assert run.status == 0 and tight.status == 0
    ev, ref = run.events, tight.events
    grazing = (ev["kind"] == EventKind.GRAZING) & (ev["neuron"] == 5) & (ev["k"] == 1)
    if look:
        assert not np.any(grazing)
        np.testing.assert_array_equal(ev["kind"], ref["kind"])
        np.testing.assert_array_equal(ev["neuron"], ref["neuron"])
        np.testing.assert_allclose(ev["t"], ref["t"], rtol=0, atol=1e-7)
        pair = np.flatnonzero((ev["neuron"] == 5) & (ev["k"] == 1) & (ev["t"] > 3.0))
        assert ev["kind"][pair].tolist() == [EventKind.CROSSING, EventKind.ENTER_SLIDING]
        np.testing.assert_allclose(ev["t"][pair], ref["t"][pair], rtol=0, atol=1e-9)
    else:
        assert np.count_nonzero(grazing) == 1 and len(ev["t"]) == len(ref["t"]) + 1


def test_the_state_at_an_event_inside_a_long_step_is_within_tolerance(monkeypatch):
    """Found by the thorough profile of the test above (``tests/data/long_step_event_state.npz``:
    d = 5, n = 10, m = 2, dyadic data, snapshots at 7.46 and 10.69): the step from the snapshot
    at 10.6885 is long (h = 1.70) and the crossing of neuron 1 at t = 12.1894 is located
    inside it.  Read from that step's dense output (whose defect there is 386 times the
    tolerance), the state at the crossing was 5.1e-9 (relative) from the run at
    rtol = 1e-13, and the run stayed 2.5e-9 off to its end (1e-12 at the step start).  The
    step is now redone to end at the cut (:meth:`HybridFlow._cut_inaccurate`): the state at
    the end is 2.0e-10 off."""
    case = np.load(Path(__file__).parent / "data" / "long_step_event_state.npz")
    data, init = Dataset(case["X"], case["y"]), from_arrays(case["W"], case["a"])
    run = simulate(data, init, 13.0, t_eval=case["t_eval"][:2])
    tight = simulate(data, init, 13.0, options=FlowOptions(rtol=1e-13, atol=1e-15))
    assert run.status == 0 and tight.status == 0, (run.message, tight.message)
    assert run.stats["n_cut_redos"] >= 1
    np.testing.assert_allclose(run.events["t"], tight.events["t"], rtol=1e-9)
    Z, Z_tight = (np.concatenate([r.W[-1], r.a[-1][:, None]], axis=1) for r in (run, tight))
    assert np.linalg.norm(Z - Z_tight) <= 1e-9 * np.linalg.norm(Z_tight)
    # the redo is what does it
    from pwflow.stepper import HybridFlow

    monkeypatch.setattr(HybridFlow, "_cut_inaccurate", lambda *args, **kw: False)
    unchecked = simulate(data, init, 13.0, t_eval=case["t_eval"][:2])
    Z = np.concatenate([unchecked.W[-1], unchecked.a[-1][:, None]], axis=1)
    assert np.linalg.norm(Z - Z_tight) > 5e-9 * np.linalg.norm(Z_tight)


@pytest.mark.parametrize("estimate, redo", [(0.5, False), (2.0, True), (np.inf, False)])
def test_a_cut_is_redone_on_a_finite_estimate_above_the_defect_only(estimate, redo):
    """:meth:`HybridFlow._cut_inaccurate`'s decision on the defect estimate at the cut (in
    units of :data:`~pwflow.snapshots.SNAPSHOT_DEFECT`): within it the cut is taken; above
    it the step is redone to end at the cut, counted once; a non-finite estimate (the field
    overflowing at the quadrature nodes) is left to the run's non-finite checks, which stop
    it with its status, not redone (a redo there would repeat the overflow)."""
    import types

    from pwflow.snapshots import SNAPSHOT_DEFECT, SnapshotsMixin

    redone = []
    flow = types.SimpleNamespace(
        _phase=types.SimpleNamespace(stiff=False), _cut_redo_from=None, n_cut_redos=0,
        _jump_root=None, _exit_redo_end=None,
        _snapshot_errors=lambda times, t0, F, solver: np.array([estimate * SNAPSHOT_DEFECT]),
        _redo_to=redone.append, time_unit=1.0)
    assert SnapshotsMixin._cut_inaccurate(flow, 1.0, 1.5, 2.0, None, None) is redo
    assert flow.n_cut_redos == int(redo) and redone == ([1.5] if redo else [])
    if redo:  # once per step start: the redone step's cut is taken as it is
        assert flow._cut_redo_from == 1.0
        assert SnapshotsMixin._cut_inaccurate(flow, 1.0, 1.5, 2.0, None, None) is False


def _double_exit_problem():
    """Session 31's repulsive double exit (d = 4, n = 4, m = 8, γ = 0.5, logistic loss)."""
    X = np.array([[1.125, -1.625, 0.0, -2.0], [-1.0, -0.25, 0.0, -0.625],
                  [0.75, -0.875, 0.0, -1.375], [0.75, 0.125, 0.25, 0.25]])
    y = np.array([1.0, -1.0, -1.0, 1.0])
    W = np.zeros((8, 4))
    W[[0, 5], 3], W[[1, 7], 3], W[4, 3] = 0.25, -0.25, 0.375
    W[2, 0], W[3, 2], W[6, 2] = 0.25, 0.234375, -0.23828125
    a = np.array([-0.25, -0.25, -0.25, 0.234375, -0.375, -0.25, -0.23828125, 0.25])
    return Dataset(X, y), from_arrays(W, a)


def _double_exit_time(rtol: float) -> float:
    data, init = _double_exit_problem()
    tr = simulate(data, init, 1.0, gamma=0.5, loss="logistic",
                  options=FlowOptions(rtol=rtol, atol=1e-2 * rtol))
    assert tr.status == 0, tr.message
    ev = tr.events
    out = (ev["neuron"] == 3) & (ev["kind"] == EventKind.LEAVE_SLIDING) & (ev["t"] > 0.5)
    assert sorted(ev["k"][out].tolist()) == [0, 2]
    return float(ev["t"][out][0])


def _double_exit_reference() -> float:
    """Where neuron 3's unconstrained minimal-norm slope on x_0 reaches γ, from its states
    on its sliding arc before the exit (a straight least-squares solve on the face, the
    logistic residuals written out), extrapolated linearly from 1e-5 before the exit."""
    data, init = _double_exit_problem()
    X, y, gamma = data.X, data.y, 0.5
    ts = np.array([0.77199, 0.772])
    tr = simulate(data, init, 0.77201, gamma=gamma, loss="logistic",
                  options=FlowOptions(rtol=1e-13, atol=1e-15), t_eval=ts)
    gaps = []
    for t in ts:
        i = int(np.flatnonzero(tr.t == t)[0])
        W, a = tr.W[i], tr.a[i]
        pre = X @ W.T
        r = -y / (1.0 + np.exp(y * (np.maximum(pre, gamma * pre) @ a)))
        on = np.abs(pre[:, 3]) < 1e-12
        assert np.flatnonzero(on).tolist() == [0, 2]  # still sliding on both
        slope = np.where(pre[:, 3] > 0, 1.0, gamma)
        fixed = ((slope * r)[~on, None] * X[~on]).sum(axis=0)
        eta = np.linalg.lstsq((r[on, None] * X[on]).T, -fixed, rcond=None)[0]
        gaps.append(eta[0] - gamma)
    assert 0 < gaps[1] < gaps[0]
    return float(ts[1] + gaps[1] * (ts[1] - ts[0]) / (gaps[0] - gaps[1]))


def test_a_repulsive_double_exit_is_located_independently_of_the_tolerance():
    """Found by the thorough profile of ``test_snapshots_agree_with_runs_ending_there``
    (session 31; d = 4, n = 4, m = 8, γ = 0.5, logistic loss, dyadic data): neuron 3 slides
    on x_0 and x_2 (cos 0.997 between them) from t = 0; its slope on x_0 falls to γ at rate
    0.0126 and reaches it at t = 0.772007174 (an independent least-squares solve on the
    states before it, :func:`_double_exit_reference`), where the mode, repulsive, ends: the
    neuron crosses to the active side of both with a jump of its normal velocity (0.0465),
    so the state after it moves with the exit time at first order.  It was found 1.8e-7 late
    at rtol 1e-10 to 1e-12 (an exit is read once its normal velocity passes its resolution;
    :meth:`~pwflow.regime.RegimeMixin._exit_time` now places an exit at the root of
    :func:`~pwflow.subgradient.pinned_gap`) and 3.1e-7 early at rtol = 1e-13
    (``pair_slopes`` picked the edge ``η_0 = γ`` over an interior minimiser 3.9e-9 inside
    the box by rounding of the compared norms; now only an edge better by more than their
    rounding wins)."""
    ref = _double_exit_reference()
    times = [_double_exit_time(rtol) for rtol in (1e-10, 1e-11, 1e-12, 1e-13)]
    # measured: 1.3e-12 to 3.9e-12 off the reference (before: 1.8e-7 late, 3.1e-7 early)
    assert max(abs(t - ref) for t in times) < 5e-11, (times, ref)


def _exit_slopes(prob, W, a, j, ks):
    """Neuron ``j``'s unconstrained minimal-norm slopes on the hyperplanes it sits on, from
    ``(W, a)`` alone (a plain least-squares solve, the residuals written out), with its
    ``a_j ρ_k`` on ``ks`` (``ρ_k = r_k ‖x_k‖``, summed over the points parallel to ``x_k``);
    ``None`` where one of the other slopes is at a bound (the unconstrained solve is not the
    face's minimiser then).

    Parallel points (one hyperplane) are grouped here by their angle, not by pwflow's
    classes, and share one unknown: the slope ``t`` of the group's first point, ``1 + γ −
    t`` on a point opposite to it (the two sides of the hyperplane swap), so the group's
    column is ``Σ ± r_l x_l`` and its normal velocity's jump ``ρ = Σ r_l ‖x_l‖``."""
    X, y, gamma = prob.X, prob.y, prob.gamma
    pre = X @ W.T
    h = np.maximum(pre, gamma * pre) @ a
    r = h - y if prob.loss == "square" else -y / (1.0 + np.exp(y * h))
    w = W[j]
    xn = np.linalg.norm(X, axis=1)
    on = np.abs(X @ w) <= 1e-12 * np.linalg.norm(w) * xn
    K = np.flatnonzero(on)
    U = X[K] / xn[K, None]
    group = [int(np.flatnonzero(np.abs(U @ U[i]) >= 1.0 - 1e-12)[0]) for i in range(K.size)]
    heads = sorted(set(group))
    orient = np.array([np.sign(U[i] @ U[group[i]]) for i in range(K.size)])
    col = np.abs(r) * xn
    rho = {h_: float(sum(r[K[i]] * xn[K[i]] for i in range(K.size) if group[i] == h_))
           for h_ in heads}
    if (not set(ks) <= set(K.tolist()) or any(abs(v) <= 1e-6 * col.sum() for v in rho.values())
            or np.linalg.matrix_rank(X[K[heads]]) < len(heads)):
        return None  # a column ~0, or dependent hyperplanes: slopes undetermined
    slope = np.where(X @ w > 0, 1.0, gamma)
    fixed = ((slope * r)[~on, None] * X[~on]).sum(axis=0)
    fixed = fixed + (1.0 + gamma) * ((r[K] * (orient < 0))[:, None] * X[K]).sum(axis=0)
    cols = np.array([((r[K] * orient * (np.array(group) == h_))[:, None] * X[K]).sum(axis=0)
                     for h_ in heads])
    sol = dict(zip(heads, np.linalg.lstsq(cols.T, -fixed, rcond=None)[0], strict=True))
    eta = {int(K[i]): sol[group[i]] if orient[i] > 0 else 1.0 + gamma - sol[group[i]]
           for i in range(K.size)}
    pos = {int(K[i]): i for i in range(K.size)}
    mine = {group[pos[k]] for k in ks}
    inside = [sol[h_] for h_ in heads if h_ not in mine]
    if any(not gamma + 1e-6 < e < 1.0 - 1e-6 for e in inside):
        return None
    # what a slope error moves the normal velocity by, against the terms of the field
    ratio = col.sum() / min(abs(rho[h_]) for h_ in mine)
    return {k: (eta[k], a[j] * rho[group[pos[k]]]) for k in ks}, ratio


def _check_jump_exits(prob) -> int:
    """The check of :func:`test_a_jump_exit_leaves_where_the_unconstrained_slope_reaches_its_bound`
    on one problem; returns how many jump exits it checked."""
    tr = simulate(prob.data(), prob.init(), prob.t_max, gamma=prob.gamma, loss=prob.loss,
                  options=FlowOptions(rtol=1e-13, atol=1e-15))
    assert tr.status == 0, tr.message
    ev = tr.events
    checked = 0
    leave = ev["kind"] == EventKind.LEAVE_SLIDING
    exits = zip(ev["t"][leave], ev["neuron"][leave], strict=True)
    for t, j in sorted({(float(t), int(j)) for t, j in exits}):
        same = (ev["t"] == t) & (ev["neuron"] == j)
        if t == tr.t[0] or np.any(same & ~leave):
            continue  # decided at the start, or on an arrival
        ks = ev["k"][same].tolist()
        found = _exit_slopes(prob, *tr.state(t), j, ks)
        if found is None:
            continue
        slopes, ratio = found
        # the exit that triggered the others: the slope nearest its bound
        gap, a_r = min((min(abs(e - 1.0), abs(e - prob.gamma)), ar) for e, ar in slopes.values())
        if a_r >= 0:
            continue  # no jump: the field is continuous at the exit
        assert gap <= 1e-12 * ratio, (t, j, slopes, ratio)
        checked += 1
    return checked




#: the thorough profile's draw of the test above (session 58, the same on ``3ed87bd``): four
#: hyperplanes of rank 2 (``x_0 … x_3`` in the plane of ``e_1, e_2``), neurons 0, 1 and 3 on
#: all four (``w ⟂ e_1, e_2``) with ``a`` of both signs, ``γ = 0.5``
DEPENDENT_CHATTER = dict(
    X=np.array([[0.875, -1.125, 0, 0], [1.25, 1.125, 0, 0], [0, -0.375, 0, 0], [0.5, -1.0, 0, 0],
                [-1.375, 0.25, 1.875, 1.625]]),
    y=np.array([1.1604577674211045, 0.9009764460990457, 0.0, 0.15336237658328056,
                0.3235396080115551]),
    a=np.array([0.0, -0.34181569297909786, 0.34199859571880276, -0.3407918012806057]),
    W=[[0, 0, 0.078125, 0.25], [0, 0, 0.25, 0.3125], [0, 0, -0.375, -0.125],
       [0, 0, 0.298828125, -0.09375]],
    W_other=[[0, 0, -0.298828125, 0], [0, 0, 0.25, 0.3125], [0, 0, -0.375, 0],
             [0, 0, 0.298828125, 0]])


def _dependent_chatter_run(W, policy="min_norm", t_max=5.0):
    c = DEPENDENT_CHATTER
    return simulate(Dataset(c["X"], c["y"]), from_arrays(np.asarray(W, float), c["a"]), t_max,
                    gamma=0.5, loss="square",
                    options=FlowOptions(rtol=1e-13, atol=1e-15, branch_policy=policy))


def test_an_exit_from_four_dependent_hyperplanes_leaves_to_a_face():
    """The thorough profile's draw of the test above (session 58).  At t = 0.2865367 the
    slope of ``x_0`` on the face of neurons 0, 1, 3 reaches its bound γ (neurons 1 and 3:
    ``a < 0``, the bound's own side ``−``).  :func:`~pwflow.filippov._depart_together` held
    ``x_1`` (slope 0.516, inside) and, since ``x_2``'s bound side (``+``, ``a r_2 < 0``) is
    not where its ``δv`` points, held ``x_2`` too: no ``δD`` holds both in their plane, the
    least squares' compromise returned ``(−, 0, 0, −)``, which no ``w`` has, and the face
    read from it, ``(−, +, −, −)``, had the field take the neurons straight back: an entry
    in the same batch, a leave 1.3e-10 later, then grazings until the Zeno guard stopped
    the run (status −2); with other first layers the run passed and its dense state raised
    :class:`~pwflow.options.ZenoError`.  A held set that no ``δD`` holds now gives the
    plain rule's answer, ``(−, 0, −, −)``: slide on ``x_1``, leave the others (left at
    t = 0.3625).  Gradient descent (the ``'gd'`` policy: neuron 0's branch points) agrees:
    the flow is within 1.5 times gradient descent's own step difference (measured 1.0)."""
    c = DEPENDENT_CHATTER
    tr = _dependent_chatter_run(c["W"])
    assert tr.status == 0, tr.message
    ev = tr.events
    rows = {(int(j), int(k), int(kind)) for t, j, k, kind in
            zip(ev["t"], ev["neuron"], ev["k"], ev["kind"], strict=True) if 0.2865 < t < 0.2866}
    for j in (1, 3):
        assert {(j, k, EventKind.LEAVE_SLIDING) for k in (0, 2, 3)} <= rows
        assert not any(row[0] == j and row[1] == 1 for row in rows)
    assert np.max(tr.balancedness_drift()) <= 1e-10
    other = _dependent_chatter_run(c["W_other"])
    assert other.status == 0, other.message
    for t in sorted({float(t) for t, kind in zip(other.events["t"], other.events["kind"],
                                                 strict=True)
                     if kind == EventKind.LEAVE_SLIDING and t > 0}):
        other.state(t)  # the dense state retraces the run without chattering
    times = np.array([0.3, 0.5])
    gd = _dependent_chatter_run(c["W"], policy="gd", t_max=0.5)
    assert gd.status == 0, gd.message
    coarse, fine = (_gd_run(c["X"], c["y"], c["W"], c["a"], 0.5, "square", lr,
                            np.rint(times / lr).astype(np.int64)) for lr in (2e-5, 1e-5))
    for i, t in enumerate(times):
        Wf, af = gd.state(float(t))
        off = max(np.max(np.abs(Wf - fine[0][i])), np.max(np.abs(af - fine[1][i])))
        step = max(np.max(np.abs(coarse[0][i] - fine[0][i])),
                   np.max(np.abs(coarse[1][i] - fine[1][i])))
        assert off <= 1.5 * step, (t, off, step)


def test_the_exit_rule_on_four_dependent_hyperplanes_returns_a_face():
    """The exit rule alone at the draw's exit (the residuals of the run above at t =
    0.2865367, ``a < 0``, ``x_0`` at its bound γ): :func:`~pwflow.filippov.select` leaves
    to ``(−, 0, −, −)``, a face (:func:`~pwflow.cones.face_point`); the rule before session
    58 returned ``(−, +, −, −)``, read from ``(−, 0, 0, −)``, which is none: ``x_1`` and
    ``x_2`` are independent in the plane of ``x_0 … x_3``."""
    from pwflow.cones import face_point
    from pwflow.filippov import select
    X = DEPENDENT_CHATTER["X"]
    r = np.array([-1.1496371796144329, -0.89103933876156749, 7.5776719028176356e-04,
                  -0.14645750051253315, -0.81033960304467478])
    sel = select(-0.2953, np.array([0, 0, 0, 0, 1], np.int8), X, r, 0.5, exits={0: False})
    assert sel.signs.tolist() == [-1, 0, -1, -1]
    assert face_point(X[:4], sel.signs) is not None
    assert face_point(X[:4], np.array([-1, 0, 0, -1], np.int8)) is None


#: neuron 5 slides on x_0's hyperplane, active on x_1 and x_2 ⟂ x_0: its slope is
#: ``η_0 = −1.625 r_1 / (0.375 r_0)`` and reaches γ = 0 with ``r_1``'s root (t ≈ 2.8917), a
#: jump exit (``a r_1 < 0`` after it); neurons 2 and 4 (in ker X) make branch cuts at that
#: root, before the exit's normal velocity is resolved (session 46)
ZERO_ROOT_EXIT = Problem(
    X=np.array([[0.0, 0.375, 0.0], [0.0, 1.625, 0.75], [0.0, 0.0, 0.375]]),
    y=np.zeros(3),
    W=np.array([[0.0, 0.0, -0.25], [0.0, 0.0, -0.25], [0.28125, 0.0, 0.0], [0.0, 0.0, -0.25],
                [0.25, 0.0, 0.0], [0.0, 0.0, 0.375], [0.0, 0.0, -0.25], [0.0, 0.25, 0.0]]),
    a=np.array([-0.25, -0.25, -0.28125, -0.25, -0.25, -0.375, -0.25, 0.25]),
    gamma=0.0, loss="square", t_max=5.0, kind="balanced/multi-active")


def test_an_exit_at_a_residuals_root_is_off_without_the_unresolved_reading(monkeypatch):
    """:data:`ZERO_ROOT_EXIT`'s exit is placed at its root (``_check_jump_exits`` passes:
    one jump exit checked), and with :meth:`~pwflow.regime.RegimeMixin.
    _unresolved_jump_exits` switched off it is read at a later step's start, 3.9e-11 beyond
    its bound against the 3.2e-12 the check allows."""
    from pwflow import regime

    assert _check_jump_exits(ZERO_ROOT_EXIT) >= 1
    monkeypatch.setattr(regime.RegimeMixin, "_unresolved_jump_exits",
                        lambda self, *args: None)
    with pytest.raises(AssertionError):
        _check_jump_exits(ZERO_ROOT_EXIT)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                HealthCheck.filter_too_much])
@given(prob=multi_active_problems(5.0))
@example(prob=Problem(  # an exit due at a step start (found by the thorough profile)
    X=np.array([[0.0, 0.625, 0, 0, 0], [0.125, 0.625, 0, 0, 0], [0.125, 0, 0.125, 0, 0]]),
    y=np.array([1.0, 0.0625, -1.0]),
    W=np.array([[0, 0, 0, 0, 0.125], [0, 0, -0.078125, 0, 0], [0.078125, 0, -0.078125, 0, 0],
                [0, 0.125, 0, 0, 0], [0, 0, 0, 0, 0.125], [0, 0, 0, 0, 0.125]]),
    a=np.array([-0.125, -0.078125, -0.11048543, 0.125, -0.125, -0.125]),
    gamma=0.0, loss="square", t_max=5.0, kind="balanced/multi-active"))
@example(prob=ZERO_ROOT_EXIT)  # an exit at a residual's root (found by the thorough profile)
def test_a_jump_exit_leaves_where_the_unconstrained_slope_reaches_its_bound(prob):
    """Every exit from sliding whose normal velocity jumps (``a_j r_k < 0``: a repulsive
    mode whose slope reached a bound, :func:`pwflow.filippov.exit_side`) is logged where the
    neuron's unconstrained minimal-norm slope on that hyperplane — an independent
    least-squares solve on the state there, at rtol = 1e-13 — is at the bound to 1e-12 in
    units of the field's terms over the hyperplane's column, ``Σ_l |r_l| ‖x_l‖ / (|r_k|
    ‖x_k‖)``: a tenth of the velocity resolution's floor (:data:`pwflow.filippov.VELOCITY_RTOL`)
    in slope.  Before session 32 such exits were read once their normal velocity passed that
    resolution (2.3e-9 late in slope on session 31's case).  Exits at the start, exits
    that share their time with another event of the neuron (a departure decided on an
    arrival) and exits whose other slopes sit at a bound are not this case and are
    skipped; of the exits logged together
    the one whose slope is nearest its bound triggered the others and is the one checked.
    Found by its thorough profile: an exit already due at a step start (d = 5, n = 3: the
    slope on x_2 is proportional to r_1 and leaves its box as r_1 goes through 0, at the cut
    of that sign change) was read 3.5e-9 later, 4.3e-11 beyond its bound; it is now placed
    just after the step start."""
    _check_jump_exits(prob)


#: symmetric problems (``tests/explore.py``'s family 13: opposite pairs ``±x``, one hyperplane
#: for two points) in which a neuron slides on such a pair and leaves it with a jump of its
#: normal velocity, with the time of that exit (session 33)
PAIR_JUMP_EXITS = {1000010: 8.112, 1000016: 7.458, 1000017: 6.161, 1000027: 1.497}


def _pair_jump_problem(seed: int) -> Problem:
    from explore import problem_arrays

    X, y, W, a, gamma, loss = problem_arrays(seed)
    return Problem(X, y, W, a, gamma, loss, PAIR_JUMP_EXITS[seed] + 0.25, "symmetric")


@pytest.mark.parametrize("seed", sorted(PAIR_JUMP_EXITS))
def test_a_jump_exit_of_a_pair_leaves_where_its_shared_slope_reaches_its_bound(seed):
    """The check of the property test above on exits from a class of parallel points (their
    slopes tied, one parameter ``t``: ``η = t`` and ``1 + γ − t`` on the two sides,
    :func:`~pwflow.subgradient.class_columns`), whose hyperplane is one: the class's
    unconstrained slope, from an independent least-squares solve that groups the points by
    their angle, is at its bound to 1e-12 of the terms over the class's column ``|Σ r_l
    ‖x_l‖|``.  Until session 33 such exits kept the time they were read at (their normal
    velocity past its resolution): 2.0e-11 to 8.1e-11 beyond the bound, against thresholds
    of 1.9e-12 to 8.1e-12; each time also moved with the tolerance (4.5e-10 between rtol 1e-10
    and 1e-13 on seed 1000027)."""
    assert _check_jump_exits(_pair_jump_problem(seed)) >= 1


def test_a_pair_exit_read_late_fails_the_check(monkeypatch):
    """With the class exit left at the time it is read (the code before session 33: faces
    with tied slopes skipped), the check above fails: it can see the delay it guards."""
    from pwflow import regime

    real = regime.RegimeMixin._exit_gap

    def skip_classes(self, p, *args):
        key, gap, floor = real(self, p, *args)
        if self.table.classes_of(p) is not None:
            gap = lambda t: (0.0, 0.0)  # noqa: E731 (not positive at the read time: kept there)
        return key, gap, floor

    monkeypatch.setattr(regime.RegimeMixin, "_exit_gap", skip_classes)
    with pytest.raises(AssertionError):
        _check_jump_exits(_pair_jump_problem(1000027))


def test_the_double_exit_is_off_without_its_placement(monkeypatch):
    """The same exit with :meth:`~pwflow.regime.RegimeMixin._exit_time` switched off is read
    once its normal velocity passes its resolution: late by more than the test above allows.
    (The other half of the cure, the tie margin of ``pair_slopes``, decided the rtol = 1e-13
    run on session 31's host only, where rounding handed the edge the tie: on session 34's
    host the run is the same without it.  Its mechanism-off check is on ``pair_slopes``
    itself, host-independently: ``tests/test_subgradient.py::
    test_pair_slopes_keeps_an_interior_minimiser_that_an_edge_ties_by_rounding``.)"""
    from pwflow import regime

    monkeypatch.setattr(regime.RegimeMixin, "_exit_time", lambda *args: None)
    assert abs(_double_exit_time(1e-10) - _double_exit_reference()) > 1e-7


@pytest.mark.parametrize("d", [2, 4])
def test_all_neurons_at_zero_stay_there_with_snapshots_inside_steps(d):
    """``W = 0, a = 0`` is a fixed point: no face holds a moving neuron (no occupied face),
    which the snapshot check (:data:`pwflow.snapshots.SNAPSHOT_DEFECT`) and the dense output's
    helpers must take as it is (it raised on empty arrays when the check came in)."""
    X = np.random.default_rng(0).normal(size=(5, d))
    tr = simulate(Dataset(X, np.ones(5)), from_arrays(np.zeros((3, d)), np.zeros(3)), 5.0)
    assert tr.status == 0, tr.message
    assert tr.t.size > 2 and not np.any(tr.W) and not np.any(tr.a)


@settings(suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
          deadline=None)
@given(prob=problems(t_max=2.0), data=st.data(),
       angle=st.sampled_from([2e-11, 7e-11]), c=st.sampled_from([1.0, -1.0, 2.0, -0.5]))
def test_a_pair_parallel_below_the_rank_cut_runs_as_the_exactly_parallel_pair(prob, data, angle,
                                                                               c):
    """A drawn problem with ``x_1`` replaced by ``c x_0`` turned by ``angle`` (below
    ``SPAN_RTOL``): :func:`simulate` runs it as the exactly parallel pair (the same events and
    states, bit for bit, as the data snapped by hand; for ``c = 1`` the snapped pair is a
    repeated point), records the move, ends with status 0 and keeps Lemma 1 to
    1e-10."""
    from pwflow.subgradient import snap_parallel

    assume(prob.X.shape[0] >= 3)
    X = prob.X.copy()
    xi = data.draw(matrices(X.shape[1], 0), label="xi")
    xi = xi - (xi @ X[0]) / (X[0] @ X[0]) * X[0]
    assume(np.linalg.norm(xi) > 0.1)
    X[1] = c * X[0] + angle * abs(c) * np.linalg.norm(X[0]) * xi / np.linalg.norm(xi)
    assume(np.all(np.abs(prob.W @ X[1]) > 1e-3 * np.linalg.norm(prob.W, axis=1)))
    snapped, moved = snap_parallel(X)
    assert moved[1] > 0 and np.count_nonzero(moved) == 1
    kw = dict(gamma=prob.gamma, loss=prob.loss, options=FlowOptions(branch_policy="gd"))
    tr = simulate(Dataset(X, prob.y), from_arrays(prob.W, prob.a), prob.t_max, **kw)
    assert tr.status == 0, tr.message
    assert tr.meta["snapped_points"]["points"] == [1]
    assert np.max(tr.balancedness_drift()) <= 1e-10
    assert np.array_equal(tr.X, snapped)
    by_hand = simulate(Dataset(snapped, prob.y), from_arrays(prob.W, prob.a), prob.t_max, **kw)
    assert np.array_equal(tr.events["t"], by_hand.events["t"])
    assert np.array_equal(tr.W, by_hand.W) and np.array_equal(tr.a, by_hand.a)


@settings(suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
          deadline=None)
@given(prob=problems(t_max=2.0), data=st.data(), dist=st.sampled_from([2e-11, 7e-11]))
def test_a_point_near_the_span_of_several_runs_as_the_point_on_it(prob, data, dist):
    """A drawn problem (d >= 4) with ``x_s`` replaced by a combination of ``x_0 … x_{s−1}``
    (``3 <= s <= d − 1``) moved ``dist`` (below ``SPAN_RTOL``) off their span:
    :func:`simulate` runs it as the data with the point on the span (the same events and
    states, bit for bit, as the data moved by hand), records the move, ends with status 0 and
    keeps Lemma 1 to 1e-10."""
    from pwflow.subgradient import snap_data

    n, d = prob.X.shape
    assume(d >= 4 and n >= 4)
    s = data.draw(st.integers(3, min(d, n) - 1), label="s")
    X = prob.X.copy()
    Q = np.linalg.qr(X[:s].T)[0]
    assume(np.linalg.svd(X[:s], compute_uv=False)[-1] > 1e-3 * np.linalg.norm(X[:s], 2))
    coef = data.draw(matrices(s, 0), label="coef")
    assume(np.linalg.norm(coef) > 0.1)
    xi = data.draw(matrices(d, 0), label="xi")
    xi = xi - Q @ (Q.T @ xi)
    assume(np.linalg.norm(xi) > 0.1)
    X[s] = coef @ X[:s]
    X[s] += dist * np.linalg.norm(X[s]) * xi / np.linalg.norm(xi)
    assume(np.all(np.abs(prob.W @ X[s]) > 1e-3 * np.linalg.norm(prob.W, axis=1)
                  * np.linalg.norm(X[s])))
    snapped, moved = snap_data(X)
    assume(np.count_nonzero(moved) == 1 and moved[s] > 0)  # no other near relation drawn
    kw = dict(gamma=prob.gamma, loss=prob.loss, options=FlowOptions(branch_policy="gd"))
    tr = simulate(Dataset(X, prob.y), from_arrays(prob.W, prob.a), prob.t_max, **kw)
    assert tr.status == 0, tr.message
    assert tr.meta["snapped_points"]["points"] == [s]
    assert np.max(tr.balancedness_drift()) <= 1e-10
    assert np.array_equal(tr.X, snapped)
    B = np.linalg.qr(snapped[:s].T)[0]
    assert np.linalg.norm(snapped[s] - B @ (B.T @ snapped[s])) <= 1e-14 * np.linalg.norm(X[s])
    by_hand = simulate(Dataset(snapped, prob.y), from_arrays(prob.W, prob.a), prob.t_max, **kw)
    assert np.array_equal(tr.events["t"], by_hand.events["t"])
    assert np.array_equal(tr.W, by_hand.W) and np.array_equal(tr.a, by_hand.a)


#: the thorough profile of the test below (session 53): d = 5, n = 6, m = 7, γ = 0.5, y = 0;
#: neurons 3 and 4 leave x_5's hyperplane at t = 2.4394142 (their slope reaches its bound)
SCALED_EXIT = Problem(
    X=np.array([[0, 0, 0, 2, 0.5], [2, 0, 1.5, 0, 0.5], [2, 0, 0, 0, 2], [0, 1, 1, 0.5, 0.5],
                [0, 0, 0, 1, 1], [0, 0, 2, 1.5, 1]], dtype=float),
    y=np.zeros(6),
    W=np.array([[0, 0, 0, 0, 0.5], [0, 0, 0, 0, 0.5], [0, 0, 0, -0.875, -0.5],
                [0, 0, 0, -0.59375, 1], [0, 0, 0.375, -0.7890625, 1], [0.6875, 0, 0, 0.25, 0],
                [0, -0.625, 1, -0.5, -0.875]]),
    a=np.array([-0.5, -0.5, -1.00778222, -1.16298713, -1.32787222, -0.73154374, -1.55120921]),
    gamma=0.5, loss="square", t_max=5.0, kind="balanced")


def test_exits_at_a_cut_whose_step_is_redone_keep_their_root():
    """Found by the thorough profile of the test below (:data:`SCALED_EXIT`, data scaled by
    1e-6).  The step cut at two exits found on its dense output (neurons 3, 4 leaving x_5's
    hyperplane at t = 2.4394142) is redone to end at the cut (:meth:`HybridFlow.
    _cut_inaccurate`: the state there not accurate); the redone step does not find them
    again (their normal velocity below its resolution at its end), and the next one,
    starting at their root, keeps the time it reads them at: 5.7e-8 (in scaled time) after
    the unscaled run's exit, which needed no redo; the states agree (the exits are to their
    bounds' own side, second order).  Applying the exits at the redone step's end was tried
    (1.2e-9) and not kept: the rtol = 1e-12 run of
    ``test_signs_held_at_zero_are_read_again_beyond_the_outputs_noise`` then left and
    re-entered its faces (103 events against 69, 239 redone steps against 20).  Since
    session 58 the exits located at the cut are kept (:class:`~pwflow.regime.CutExits`),
    and the step from the cut that reads them again places them at their root from its
    start (9.6e-10 after the unscaled run's)."""
    off = _scaled_exit_offset()
    assert off <= 5e-9, off


def _scaled_exit_offset() -> float:
    """The run of :data:`SCALED_EXIT` on data scaled by 1e-6, its last two exits' offset in
    unscaled time from the unscaled run's."""
    p, c = SCALED_EXIT, 1e-6
    init = from_arrays(p.W, p.a)
    ref = simulate(Dataset(p.X, p.y), init, p.t_max, gamma=p.gamma)
    run = simulate(Dataset(c * p.X, c * p.y), init, p.t_max / c**2, gamma=p.gamma)
    assert ref.status == 0 and run.status == 0 and run.stats["n_cut_redos"] >= 1
    assert run.n_events == ref.n_events == 12
    return float(np.max(np.abs(np.asarray(run.events["t"][-2:]) * c**2 - ref.events["t"][-2:])))


def test_exits_at_a_redone_cut_read_again_late_without_their_root(monkeypatch):
    """The mechanism off (:attr:`RegimeMixin.CUT_EXITS_KEEP_ROOT`): the step from the cut
    places the exits where it reads them, 5.7e-8 late."""
    from pwflow.regime import RegimeMixin
    monkeypatch.setattr(RegimeMixin, "CUT_EXITS_KEEP_ROOT", False)
    assert _scaled_exit_offset() > 5e-9


@given(problems(t_max=5.0), st.sampled_from([1e-6, 1e3, 1e6, 1e12]))
def test_a_run_on_scaled_data_is_the_same_run_in_scaled_time(p, c):
    """Square loss: the flow on ``(c x, c y)`` is the flow on ``(x, y)`` at time ``t c²``
    (``h`` is homogeneous in ``x``, the loss scales by ``c²``).  So the run to ``t / c²`` on the
    scaled data ends where the run to ``t`` on the data does, with the same events at times
    scaled by ``1 / c²``.  With a resolution in time of 1 whatever the data (before session
    45), data scaled by 1e6 ended 3e-3 off with status 0 and by 1e8 never moved
    (:func:`pwflow.bisection.time_unit`)."""
    data, init = Dataset(p.X, p.y), from_arrays(p.W, p.a)
    ref = simulate(data, init, p.t_max, gamma=p.gamma, loss="square")
    run = simulate(Dataset(c * p.X, c * p.y), init, p.t_max / c**2, gamma=p.gamma,
                   loss="square")
    assert ref.status == 0 and run.status == 0, run.message
    size = max(np.max(np.abs(ref.W[-1])), np.max(np.abs(ref.a[-1])))
    assert np.max(np.abs(run.W[-1] - ref.W[-1])) <= 1e-8 * size
    assert np.max(np.abs(run.a[-1] - ref.a[-1])) <= 1e-8 * size
    if run.n_events == ref.n_events:  # (a grazing contact may be met in one and not the other)
        ev = ref.events
        tol = np.array([_scaled_exit_tolerance(ref, t, j, k, p) if kind == LEAVE_SLIDING
                        else 1e-8 * p.t_max for t, j, k, kind in zip(
                            ev["t"], ev["neuron"], ev["k"], ev["kind"], strict=True)])
        off = np.abs(np.asarray(run.events["t"]) * c**2 - ev["t"])
        assert np.all(off <= tol), (off, tol)


def test_data_with_zero_labels_scaled_by_1e12_move_in_scaled_time():
    """The thorough profile's draw of the test above (session 56): labels 0, so the residuals
    are the outputs, and data scaled by 1e12.  The time unit read the labels alone (1), the
    run to ``t = 5·10⁻²⁴`` was "within rounding" of its start and did not move, status 0,
    2.3e-5 from the unit run.  With ``‖x‖²`` standing in for the labels' size it is the unit
    run in scaled time (:func:`pwflow.bisection.time_unit`)."""
    X = np.array([[0.0, 0, 1, 0, 0], [0, 0, 1, 0, 1]])
    W, a = np.array([[0, 0, 0.1, 0, 0], [0, 0, 0.1, 0, 0]]), np.array([0.005, 0.005])
    ref = simulate(Dataset(X, np.zeros(2)), from_arrays(W, a), 5.0, loss="square")
    run = simulate(Dataset(1e12 * X, np.zeros(2)), from_arrays(W, a), 5.0e-24, loss="square")
    assert ref.status == 0 and run.status == 0
    assert np.max(np.abs(ref.W[-1] - W)) > 1e-5  # it moves
    np.testing.assert_allclose(run.W[-1], ref.W[-1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(run.a[-1], ref.a[-1], rtol=0, atol=1e-12)


LEAVE_SLIDING = int(EventKind.LEAVE_SLIDING)


def _scaled_exit_tolerance(tr, t: float, j: int, k: int, p) -> float:
    """How well an exit's time is determined: ``1e-8 t_max``, plus the normal velocity's
    resolution over its rate.  An exit is placed where ``<w_j, x_k>``'s velocity passes what
    the outputs' noise leaves of it: the outputs are known to ``rtol`` times the size of
    their terms, ``H_l = Σ_i |a_i| ‖w_i‖ ‖x_l‖`` (not ``|h_l|``: the terms can cancel), so
    ``v_res = 10 rtol |a_j| Σ_l (H_l + |r_l|) |<x_l, x_k>| / n``; the velocity grows at
    ``|s̈|`` (read off the run ``δ = 1e-4`` after ``t``: ``s(δ) = s̈ δ² / 2``), so the time
    is known to ``v_res / |s̈|``.  Session 55's thorough draw: the second of two exits of
    one neuron, 4.8e-7 after the first, ``s̈ = 2.7e-4 ‖w‖ ‖x_k‖``: 2.0e-7 between the run
    and its copy on data scaled by 1e-6.  Session 56's: 9.1e-8, where ``rtol |h|`` allowed
    4.1e-8 over ``1e-8 t_max``."""
    delta = 1e-4
    W, a = tr.state(t)
    W1, _ = tr.state(min(t + delta, tr.t[-1]))
    r = loss_derivative(outputs(W, a, p.X, p.gamma), p.y, p.loss)
    terms = np.abs(a) @ (np.linalg.norm(W, axis=1)[:, None] * np.linalg.norm(p.X, axis=1))
    v_res = (10 * FlowOptions().rtol * abs(a[j])
             * np.sum((terms + np.abs(r)) * np.abs(p.X @ p.X[k])) / p.X.shape[0])
    rate = 2 * abs(W1[j] @ p.X[k]) / delta**2
    return 1e-8 * p.t_max + v_res / max(rate, 1e-300)


def _codimension_two_runs():
    """The arrival of :func:`test_a_codimension_two_arrival_is_decided_alike_by_two_step_patterns`
    run with snapshots at t = 5, 10, 15 and to t = 10: neuron 3's two hyperplane offsets are
    equal bit for bit until it meets both at t = 6.016478."""
    X = np.array([[0.125, 0, 0, 0, -0.125], [0, 0, -0.125, 0, -0.125],
                  [0.125, 0.125, 0.125, -0.25, 0]])
    W = np.array([[0, 0, 0, 0, 0.125], [0, 0, 0, 0, -0.125], [0, 0.125, 0, 0, 0],
                  [0.0625, -0.0625, 0, 0, 0], [0, 0, 0, 0, 0.125]])
    a = np.array([0.0, 0.0, 0.0, 0.00390625, 0.0])
    data, init = Dataset(X, -np.ones(3)), from_arrays(W, a)
    snap = simulate(data, init, 20.0, gamma=0.0, loss="logistic", t_eval=[5.0, 10.0, 15.0])
    end = simulate(data, init, 10.0, gamma=0.0, loss="logistic")
    assert snap.status == 0 and end.status == 0
    i = int(np.flatnonzero(snap.t == 10.0)[0])
    off = max(np.max(np.abs(snap.W[i] - end.W[-1])), np.max(np.abs(snap.a[i] - end.a[-1])))
    return snap, end, off


def test_a_codimension_two_arrival_is_decided_alike_by_two_step_patterns():
    """Found by the thorough profile of :func:`test_snapshots_agree_with_runs_ending_there`
    (``multi_active``, session 55): d = 5, three dyadic points, four of five ``a_j = 0``,
    logistic loss.  At t = 6.016478 neuron 3 meets the hyperplanes of x_1 and x_2 at once,
    from (−, −) at normal velocities 1.0e-5 each.  Its two roots were located 4.6e-14
    apart in one run (merged: 64 ulp is 5.7e-14) and 2.2e-13 in the other, which crossed
    x_1 only: x_2's velocity on (+, −) is −2.6e-10, so the neuron stayed below x_2 (offset
    −3.8e-9 at t = 10 against +4.8e-4); 1.09e-3 apart at t = 10, status 0, no branch.
    (+, +), (+, −) and (−, +) are all consistent continuations: a branch point.  Now the
    hyperplane within rounding of the first one's event state is met with it in both runs
    (:func:`pwflow.events.coincident_offsets`), both cross both, and both log the branch
    on x_1 and x_2 (:func:`pwflow.filippov._uncrossed`)."""
    snap, end, off = _codimension_two_runs()
    assert off <= 1e-12, off
    for tr in (snap, end):
        ev = tr.events
        at = (ev["neuron"] == 3) & (np.abs(ev["t"] - 6.016477582906) < 1e-9)
        assert sorted(ev["k"][at].tolist()) == [1, 2]
        assert np.all(ev["kind"][at] == EventKind.BRANCH)
        assert tr.stats["t_first_branch"] == pytest.approx(6.016477582906, abs=1e-9)
        W, _ = tr.state(10.0)
        assert np.all(tr.X @ W[3] > 1e-4)  # on (+, +) of both, and x_0 active


def test_a_codimension_two_arrival_without_the_offset_merge_parts_by_step_pattern(monkeypatch):
    """The merge off (:func:`pwflow.events.coincident_offsets` says no): the run to t = 10
    meets x_1 alone and parts from the snapshot run, as before session 56."""
    import pwflow.events as events_mod

    monkeypatch.setattr(events_mod, "coincident_offsets",
                        lambda coef, x, tol, code, code_first: np.zeros(code.shape, bool))
    _, end, off = _codimension_two_runs()
    assert off > 1e-4
    W, _ = end.state(10.0)
    assert abs(end.X[2] @ W[3]) < 1e-7


def test_a_codimension_two_arrival_without_the_uncrossed_check_logs_no_branch(monkeypatch):
    """The branch check off (:func:`pwflow.filippov._uncrossed` finds nothing): both runs
    cross both hyperplanes with CROSSING rows and no branch point."""
    import pwflow.filippov as filippov_mod

    monkeypatch.setattr(filippov_mod, "_uncrossed",
                        lambda *args: np.zeros(args[4].size, bool))
    snap, end, off = _codimension_two_runs()
    assert off <= 1e-12
    assert snap.stats["t_first_branch"] is None and end.stats["n_branch_points"] == 0


def _gd_agrees(case, tr, times) -> None:
    """``tr`` against extrapolated gradient descent from the same state (the campaign's test)."""
    ref = gd_reference(case["X"], case["y"], case["W"], case["a"], 0.0, "square", times)
    for i, t in enumerate(times):
        W, a = tr.state(t)
        assert ref.error(W, a, i) <= ref.bound(W, a, i), t


def test_a_dependent_exit_at_a_residuals_root_is_gradient_descents():
    """``tests/data/dependent_exit_at_a_root.npz`` (session 46, a campaign of sparse dyadic
    data, d = 4, n = 6, m = 10, at t = 10.132 of its run): neuron 9 slides on x_1, x_3, x_4
    (rank 2, every slope at γ = 0) and x_1's slope reaches γ at r_0's root, 8.568e-5 later.
    Its departure sent x_4 to the active side, against its normal velocity, and the run
    stopped on Zeno (status −2, 229 events in 2e-12; the campaign's minimal-norm run
    earlier, at t = 10.132085683); now it leaves x_1 and x_3 and slides on x_4 (``<w, x_4>``
    = 0 to the end) under either policy, and agrees with extrapolated gradient descent."""
    from pathlib import Path

    case = np.load(Path(__file__).parent / "data" / "dependent_exit_at_a_root.npz")
    X, y = case["X"], case["y"]
    times = (0.02, 0.05)
    for policy in ("min_norm", "gd"):
        tr = simulate(pwflow.Dataset(X, y), pwflow.from_arrays(case["W"], case["a"]), 0.05,
                      gamma=0.0, loss="square", options=FlowOptions(branch_policy=policy))
        assert tr.status == 0, tr.message
        ev = tr.events
        left = ev["t"][(ev["neuron"] == 9) & (ev["kind"] == EventKind.LEAVE_SLIDING)]
        assert left.size and abs(left[0] - 8.568e-5) < 1e-8
        W, _ = tr.state(0.05)
        z = X[[1, 3, 4]] @ W[9]
        assert z[0] < 0 and z[1] < 0 and z[2] == 0.0
        _gd_agrees(case, tr, times)


def test_a_neuron_back_on_its_face_at_once_logs_its_branch_point_once():
    """Session 47 (campaign of sparse dyadic data, seed 1629, d = 5, n = 3, m = 6): at
    t = 5.6644562 r_0 reaches 0 with a kink (neuron 5 leaves x_1's hyperplane there) and
    neuron 2's slope on x_1 touches γ = 0. The neuron is decided twice at that instant (it
    leaves x_1, and is back on it at once), and each decision named the branch point on
    x_2: the log held that BRANCH row twice. Now once, and the run's branch count agrees
    with its rows; neuron 2 stays on x_1 and x_2, as before."""
    from reference import repeated_event_rows, sliding_checks

    X = np.array([[1.625, 0.0, 0.0, 0.75, 0.0], [0.0, 0.0, 0.0, 0.75, -0.5],
                  [0.0, 0.0, -0.375, 0.0, 0.0]])
    y = np.array([0.5, 0.5, -0.5])
    W = np.array([[0.5, 0.09375, 0.0, 0.0, 0.40625], [-0.1875, 0.0, 0.0, 0.0, 0.0625],
                  [0.0625, 0.125, 0.0, 0.0, 0.0], [0.40625, 0.0, 0.0, 0.0, 0.0625],
                  [0.125, 0.0, -0.0625, 0.0, 0.0625], [0.5, 0.0, -0.0625, 0.0, 0.0]])
    a = np.linalg.norm(W, axis=1) * np.array([1.0, 1.0, -1.0, 1.0, -1.0, 1.0])
    tr = simulate(Dataset(X, y), from_arrays(W, a), 6.0, t_eval=np.linspace(0, 6, 13))
    assert tr.status == 0, tr.message
    ev = tr.events
    t_star = ev["t"][(ev["neuron"] == 5) & (ev["kind"] == EventKind.LEAVE_SLIDING)]
    assert t_star.size == 1 and abs(t_star[0] - 5.6644562) < 1e-7  # r_0's root (ill-posed)
    at = (ev["t"] == t_star[0]) & (ev["neuron"] == 2)
    assert sorted(ev["kind"][at].tolist()) == [EventKind.ENTER_SLIDING,
                                               EventKind.LEAVE_SLIDING, EventKind.BRANCH]
    assert repeated_event_rows(tr) == []
    assert tr.stats["n_branch_points"] == np.count_nonzero(ev["kind"] == EventKind.BRANCH)
    assert np.all(np.abs(tr.W[-1][2] @ X[1:].T) <= 1e-12)
    assert [msg for i in range(tr.t.size) for msg in sliding_checks(tr, i)] == []


def _empty_contacts(traj) -> list[tuple]:
    """Pairs ``(t, neuron, k)`` with both a CROSSING and a GRAZING row at one time: a second,
    empty contact logged at a crossing's own time (none is right)."""
    ev = traj.events
    kinds: dict[tuple, set] = {}
    for t, j, k, kind in zip(ev["t"].tolist(), ev["neuron"].tolist(), ev["k"].tolist(),
                             ev["kind"].tolist(), strict=True):
        kinds.setdefault((t, j, k), set()).add(kind)
    both = {int(EventKind.CROSSING), int(EventKind.GRAZING)}
    return [key for key, ks in kinds.items() if both <= ks]


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                               HealthCheck.filter_too_much])
@given(prob=problems(t_max=10.0), data=st.data())
def test_a_rotated_and_permuted_problem_is_the_same_run(prob, data):
    """Metamorphic (session 53): the flow on ``(X[σ] Q, y[σ])`` from ``(W[π] Q, a[π])``, for
    a drawn rotation ``Q`` (QR of a drawn matrix) and drawn permutations of the points and
    the neurons, is the flow on ``(X, y)`` from ``(W, a)``: ``<w_j, x_k>`` is the same.  The
    final states agree to 1e-8 (relative), the logs have the same events (neuron, point,
    kind; grazing contacts, which one run may meet and not the other, apart) and neither
    logs an empty contact at a crossing's own time.  Session 53's metamorphic campaign (700
    problems) found one: ``explore_scipy``'s draw 30116, rotated, logged one row fewer
    (``test_a_crossing_whose_neuron_comes_back_early_in_the_next_step_logs_no_empty_contact``)."""
    n, d = prob.X.shape
    m = prob.W.shape[0]
    Q, R = np.linalg.qr(data.draw(matrices(d, d), label="M"))
    assume(np.min(np.abs(np.diag(R))) > 0.1)  # a well-conditioned draw: Q is orthogonal
    pj = np.array(data.draw(st.permutations(range(m)), label="neurons"))
    pk = np.array(data.draw(st.permutations(range(n)), label="points"))
    kw = dict(gamma=prob.gamma, loss=prob.loss)
    run = simulate(Dataset(prob.X, prob.y), from_arrays(prob.W, prob.a), prob.t_max, **kw)
    other = simulate(Dataset(prob.X[pk] @ Q, prob.y[pk]), from_arrays(prob.W[pj] @ Q, prob.a[pj]),
                     prob.t_max, **kw)
    assert run.status == 0 and other.status == 0, (run.message, other.message)
    assert _empty_contacts(run) == [] and _empty_contacts(other) == []
    Z = np.concatenate([run.W[-1], run.a[-1][:, None]], axis=1)
    Zo = np.concatenate([other.W[-1] @ Q.T, other.a[-1][:, None]], axis=1)[np.argsort(pj)]
    assert np.linalg.norm(Zo - Z) <= 1e-8 * (1.0 + np.linalg.norm(Z))

    def events(r, jmap, kmap):
        ev = r.events
        keep = ev["kind"] != EventKind.GRAZING
        k = ev["k"][keep]
        k = np.where(k >= 0, kmap[np.maximum(k, 0)], k)  # k < 0: no data point (w = 0, a)
        return sorted(zip(jmap[ev["neuron"][keep]].tolist(), k.tolist(),
                          ev["kind"][keep].tolist(), strict=True))

    if min(first_branch_after_start(run), first_branch_after_start(other)) > prob.t_max:
        same = np.arange(max(m, n))
        assert events(run, same, same) == events(other, pj, pk)
