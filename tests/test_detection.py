"""Event detection (:mod:`pwflow.detection`): the selection of neurons near their margins is the direct test."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pwflow.detection import BelowLimit


@given(st.data())
def test_below_limit_is_the_direct_test_over_all_items(data):
    m = data.draw(st.integers(0, 60))
    P = data.draw(st.integers(1, 5))
    key = data.draw(hnp.arrays(float, m, elements=st.floats(0.0, 10.0) | st.just(np.inf)))
    faces = data.draw(hnp.arrays(np.intp, m, elements=st.integers(0, P - 1)))
    idx = np.arange(m) * 3  # item ids other than positions
    cap = data.draw(st.floats(0.0, 5.0))
    sel = BelowLimit(key, faces, idx, np.unique(faces), cap)
    for _ in range(data.draw(st.integers(1, 6))):  # limits that grow, as over a solver's life
        limit = data.draw(hnp.arrays(float, P, elements=st.floats(0.0, 12.0)))
        np.testing.assert_array_equal(sel.below(limit), idx[key <= limit[faces]])
    assert sel.asked <= max(sel.cap, 0.0) or m == 0


def _parallel_neurons_case():
    from pathlib import Path

    case = np.load(Path(__file__).parent / "data" / "parallel_neurons_cut_at_the_first.npz")
    return case["X"], case["y"], case["W"], case["a"], float(case["gamma"])


def _reference_and_default(monkeypatch, exits_at_start: bool):
    import pwflow
    from pwflow.detection import DetectionMixin
    from pwflow.options import FlowOptions

    monkeypatch.setattr(DetectionMixin, "EXCURSION_EXITS_AT_START", exits_at_start)
    X, y, W, a, gamma = _parallel_neurons_case()
    data, init = pwflow.Dataset(X, y), pwflow.from_arrays(W, a)
    ref = pwflow.simulate(data, init, 20.0, gamma=gamma,
                          options=FlowOptions(batch_tol=0.0, stiff_solver=None))
    fast = pwflow.simulate(data, init, 20.0, gamma=gamma)
    return ref, fast


def test_parallel_neurons_restarted_at_the_first_ones_event_exit_at_the_start(monkeypatch):
    """Found by the thorough profile of ``test_batched_equals_strict_on_random_problems``
    (session 45; ``tests/data/parallel_neurons_cut_at_the_first.npz``: bias data, γ = 0, eight
    neurons ``w = (c, 0)``): four parallel neurons cross ``x_0``'s hyperplane together at
    t = 4.751880353.  The reference path (``batch_tol = 0``) cuts at the first; the three
    others, located 1e-12 later, are already across by 2e-13 in the states at the cut, and
    the next step flags them as excursions (on their side at its end) whose bracket
    ``[0, 1/64]`` held no sign change: they were placed at 1/64 of the step, 7e-3 late, with a
    residual of 6.5e-7, and the run stopped (status −7).  Such a pair exits at the step start
    (:meth:`DetectionMixin._excursions`): both paths log the same events, and the four
    crossings at the same time."""
    ref, fast = _reference_and_default(monkeypatch, True)
    assert ref.status == 0 and fast.status == 0, ref.message
    assert ref.n_events == fast.n_events == 28
    for path in (ref, fast):
        ev = path.events
        at = np.isclose(ev["t"], 4.751880353, rtol=0, atol=1e-8) & (ev["k"] == 0)
        assert sorted(ev["neuron"][at].tolist()) == [1, 5, 8, 10]
    np.testing.assert_allclose(ref.W[-1], fast.W[-1], rtol=0, atol=1e-7)
    ref_off, _ = _reference_and_default(monkeypatch, False)  # the mechanism off
    assert ref_off.status == -7 and "event residual" in ref_off.message
