"""The watch of neurons held at ``w = 0`` (:mod:`pwflow.origin_watch`): what it may skip.

Its verdicts against gradient descent are tested on stored cases in
``test_issue10_regressions.py`` (``origin_late_departure*``, ``origin_stall``); here, that
the orbits it does not run change nothing.
"""

from __future__ import annotations

import numpy as np
import pytest

import pwflow
import pwflow.origin_watch as origin_watch
from pwflow.events import EventKind


def _dead_arrival(t_max: float = 160.0):
    """Stewart's data, 300 neurons (unbalanced, seed 2): neuron 63 reaches ``w = 0`` at
    t = 130.51 into the cell where no point is active (ReLU) and is held there."""
    data, init = pwflow.stewart(seed=0, n=40), pwflow.unbalanced(300, 2, 1e-3, seed=2)
    return pwflow.simulate(data, init, t_max, n_snapshots=8)


def test_a_dead_neurons_orbit_is_not_run_and_nothing_changes(monkeypatch):
    """A ReLU neuron held at 0 strictly inside the dead cell has an orbit that cannot move
    or escape for any residuals (:meth:`~pwflow.origin_watch.OriginWatchMixin._inert`): the
    watch keeps its record and its verdict (stay) without the map's run.  With the skip off
    and on: the same event log, final state and watch records (the resume mark's), and the
    skip was taken at the step ends after the arrival."""
    reads = []
    real = origin_watch.OriginWatchMixin._inert

    def counted(self, h):
        reads.append(real(self, h))
        return reads[-1]

    monkeypatch.setattr(origin_watch.OriginWatchMixin, "_inert", counted)
    runs = {}
    for flag in (False, True):
        monkeypatch.setattr(origin_watch, "SKIP_INERT_ORBITS", flag)
        reads.clear()
        runs[flag] = (_dead_arrival(), sum(reads))
    (off, skipped_off), (on, skipped_on) = runs[False], runs[True]
    assert skipped_off == 0 and skipped_on > 10
    assert int(np.sum(on.events["kind"] == int(pwflow.EventKind.REACH_ZERO))) == 1
    assert on.n_events == off.n_events
    for key in ("t", "neuron", "k", "kind"):
        assert np.array_equal(on.events[key], off.events[key])
    assert np.array_equal(on.W[-1], off.W[-1]) and np.array_equal(on.a[-1], off.a[-1])
    held = on.meta["resume"]["memory"]["origin_held"]
    assert held and held == off.meta["resume"]["memory"]["origin_held"]


@pytest.mark.parametrize("gamma, state, inert", [
    (0.0, (-1e-3, 0.0), True),     # <ŵ, x_k> = −1e-3 for every k
    (0.1, (-1e-3, 0.0), False),    # a leak: every slope is γ > 0
    (0.0, (-1e-3, -1e-3), False),  # on x_2's hyperplane: its slope is free there
    (0.0, (1e-3, 0.0), False),     # every point active
])
def test_only_a_relu_orbit_strictly_inside_the_dead_cell_is_inert(gamma, state, inert):
    """The predicate against its definition: ReLU, ``<ŵ, x_k> < 0`` for every k, and a
    record of that cell alone."""
    X = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, -1.0]])
    flow = type("Flow", (origin_watch.OriginWatchMixin,), {})()
    flow.gamma, flow.X = gamma, X
    dead = np.full((1, 3), -1, np.int8)

    def held(state, faces=dead, cells=dead):
        return origin_watch.HeldAtOrigin(1.0, np.zeros(3, np.int8), np.zeros(2),
                                         np.array(state, dtype=float), faces, cells,
                                         np.ones(cells.shape[0]) / cells.shape[0])

    assert flow._inert(held(state)) is inert
    assert not flow._inert(origin_watch.HeldAtOrigin(1.0, np.zeros(3, np.int8), np.zeros(2)))
    if inert:  # a record from a run that met other cells, or a −0.0 a step would flip: run
        other = np.array([[-1, -1, -1], [1, -1, -1]], np.int8)
        assert not flow._inert(held(state, faces=other, cells=other))
        assert not flow._inert(held(state, faces=other[1:]))
        assert not flow._inert(held((state[0], -0.0)))


def _span_case():
    """The thorough profile's draw of ``test_neurons_started_in_ker_x_train_as_at_zero_of_the_
    span[gd]`` (session 54, seen since 18818dd), as its span's problem in R^2: dyadic points,
    γ = 0.5, square loss; neuron 1 reaches ``w = 0`` at t = 1.22 and is held there."""
    X = np.array([[-0.25, 0.75], [-1.375, 1.5], [-1.875, -0.25], [-1.0, -0.875],
                  [1.0, 0.125], [0.75, 1.625], [-1.375, 0.5], [0.75, -1.75], [2.0, -0.875]])
    y = np.array([-1.2119969891429365, 0.0, -0.8174781807484914, 0.0, 0.3272844857843942, 0.0,
                  -0.6725769147023442, -0.9860516629109685, 0.0])
    W = np.array([[0.2688428559376803, -0.07961167603753272], [0.0, 0.0],
                  [-0.12213362358813362, 0.0], [0.5281520336755681, 0.0],
                  [0.6251944571496826, 0.0]])
    a = np.array([-0.21800099407624302, 0.7856026813012473, -0.99999, 0.3681328874424725,
                  0.3090034961457095])
    return X, y, W, a


def _first_branch(X, y, W, a, t_max=10.0):
    tr = pwflow.simulate(pwflow.Dataset(X, y), pwflow.from_arrays(W, a), t_max, gamma=0.5,
                         options=pwflow.FlowOptions(branch_policy="gd"))
    assert tr.status == 0, tr.message
    return tr.stats["t_first_branch"]


def test_a_held_neurons_orbit_follows_the_residuals_through_a_step():
    """The orbit of a neuron held at 0 runs through each step at the residuals interpolated
    from the step start's (:data:`~pwflow.origin_watch.ORIGIN_SWEEP_CHUNKS`), as gradient
    descent's iterates do.  Here the orbit's bounded set near 0 gives way to a ray for
    t ≈ 8.15–8.3 only, and the ray turns outwards at t = 8.4258.  Gradient descent at every
    step from 1e-3 to 1.25e-4 is on the ray by t = 8.3 and leaves 0 along it.  Run at the
    step ends' residuals alone, the orbit missed the window (step ends 8.02 and 8.26) and
    the neuron left 0 at 9.4767 (9.0246 with the data turned by 1e-9; 8.4258 turned by 0.1,
    and in R^4); with the sweep every one of these runs leaves at 8.4258."""
    X, y, W, a = _span_case()
    times = []
    for angle in (0.0, 1e-9, 0.1, 1.0):
        R = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        times.append(_first_branch(X @ R.T, y, W @ R.T, a))
    embed = np.eye(4)[:2]  # the draw as drawn: R^4, neuron 1 in ker X
    W4 = W @ embed
    W4[1, 2:] = (0.664320350636233, 0.0591751709536137)
    times.append(_first_branch(X @ embed, y, W4, a))
    assert np.ptp(times) < 1e-6, times
    assert abs(times[0] - 8.4258387) < 1e-6
    # gradient descent (lr 2.5e-4) in the map's units |w_1| / (lr |a_1|): in the bounded set
    # near 0 at t = 8.0, on the ray (about 0.48) by t = 8.4, and leaving from 8.5 on
    lr, n = 2.5e-4, X.shape[0]
    Wg, ag, units = W.copy(), a.copy(), {}
    for i in range(int(round(9.0 / lr)) + 1):
        t = round(i * lr, 6)
        if t in (8.0, 8.4, 9.0):
            units[t] = np.linalg.norm(Wg[1]) / (lr * abs(ag[1]))
        Z = Wg @ X.T
        S = np.where(Z > 0, Z, 0.5 * Z)
        r = ag @ S - y
        Wg, ag = (Wg - lr * (ag[:, None] * (np.where(Z > 0, 1.0, 0.5) * r) @ X) / n,
                  ag - lr * S @ r / n)
    assert units[8.0] < 0.1 and units[8.4] > 0.3 and units[9.0] > 1.5, units


def test_without_the_sweep_the_held_neuron_leaves_late(monkeypatch):
    """The same run with the sweep off (the step ends' residuals alone, before session 55):
    the neuron leaves 0 a unit of time after gradient descent."""
    monkeypatch.setattr(origin_watch, "ORIGIN_SWEEP_CHUNKS", 0)
    X, y, W, a = _span_case()
    assert _first_branch(X, y, W, a) > 9.0


#: the thorough profile's draw of ``test_policies_agree_until_the_first_logged_branch_point
#: [generic]`` (session 59): neuron 0 reaches ``w = 0`` at t = 1.3139 and is held there
_HELD_UNTIL_NO_STAY = dict(
    X=np.array([[0., -2., -1.], [1., 0., 1.], [1., 0., 2.], [-1., 0., 1.], [-1., 2., -1.]]),
    y=np.ones(5), W=np.array([[0., 0., 0.5], [0., 1., -1.]]),
    a=np.array([-1.4142135623730951, 0.07071067811865477]))


def _held_until_no_stay_runs():
    c = _HELD_UNTIL_NO_STAY
    return {policy: pwflow.simulate(pwflow.Dataset(c["X"], c["y"]),
                                    pwflow.from_arrays(c["W"], c["a"]), 10.0, gamma=0.1,
                                    loss="logistic",
                                    options=pwflow.FlowOptions(branch_policy=policy))
            for policy in ("min_norm", "gd")}


def _rows(tr):
    e = tr.events
    return [(round(float(t), 9), int(j), int(k), int(kind))
            for t, j, k, kind in zip(e["t"], e["neuron"], e["k"], e["kind"], strict=True)]


def test_a_departure_from_zero_where_staying_stops_is_no_branch_point_under_either_policy():
    """d = 3, γ = 0.1, logistic loss: neuron 0, held at ``w = 0`` from t = 1.3139, departs at
    t = 4.237937, where staying stops solving Eq. (2) (``0 ∉ 𝔇(0)``) just as gradient
    descent's orbit escapes.  Both policies give the same trajectory (bitwise); the 'gd'
    policy logged the departure as a branch point on four hyperplanes and the minimal-norm
    one as LEAVE_SLIDING rows on three, so the policies seemed to part at a branch point only
    one of them saw.  Now both log the same rows, no branch point."""
    runs = _held_until_no_stay_runs()
    assert all(tr.status == 0 and tr.stats["n_branch_points"] == 0 for tr in runs.values())
    assert _rows(runs["min_norm"]) == _rows(runs["gd"])
    departure = [r for r in _rows(runs["gd"]) if abs(r[0] - 4.237937) < 1e-6]
    assert {r[3] for r in departure} == {EventKind.LEAVE_SLIDING}
    for t in (4.3, 10.0):
        (W1, a1), (W2, a2) = runs["min_norm"].state(t), runs["gd"].state(t)
        assert np.array_equal(W1, W2) and np.array_equal(a1, a2)


def test_a_departure_from_zero_where_staying_stops_was_a_branch_under_gd(monkeypatch):
    """Mechanism off (``ESCAPE_WITHOUT_STAY_IS_NO_BRANCH = False``): the 'gd' policy logs
    the departure as a branch point, the minimal-norm one does not."""
    from pwflow import origin_watch

    monkeypatch.setattr(origin_watch, "ESCAPE_WITHOUT_STAY_IS_NO_BRANCH", False)
    runs = _held_until_no_stay_runs()
    assert runs["gd"].stats["n_branch_points"] > 0 == runs["min_norm"].stats["n_branch_points"]
