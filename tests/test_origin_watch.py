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
