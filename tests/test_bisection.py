"""The batched bisection of the face events (:mod:`pwflow.bisection`) is the sequential one, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pwflow.bisection import bisect, bisect_batched, brent_root


@given(st.floats(0.0, 1e4), st.floats(1e-9, 10.0),
       st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6), st.integers(1, 7))
def test_batched_bisection_is_the_sequential_one(t0, h, switches, levels):
    # a regime that may change and change back (not monotone): the batched search must
    # follow the very path of the sequential bisection, not find "a" change
    t1 = t0 + h
    cuts = np.sort(t0 + h * np.asarray(switches))

    def changed(t: float) -> bool:
        return bool(np.searchsorted(cuts, t, side="right") % 2)

    calls = []

    def changed_at(ts):
        calls.append(len(ts))
        return [changed(t) for t in ts]

    seq = bisect(t0, t1, changed, [t0, t1])
    assert bisect_batched(t0, t1, changed_at, levels) == seq
    assert max(calls) <= 2**levels - 1


def _scipy_brentq_path(f, a, b, xtol, rtol):
    from scipy.optimize import brentq

    seen = []

    def g(t):
        seen.append(t)
        return f(t)

    return brentq(g, a, b, xtol=xtol, rtol=rtol), seen


@given(st.floats(-1e3, 1e3), st.floats(1e-12, 1e2),
       st.lists(st.floats(-3.0, 3.0), min_size=1, max_size=5), st.floats(-1.0, 2.0),
       st.sampled_from([0, 1, 2]), st.booleans(), st.integers(-300, 300))
def test_brent_root_is_scipys_brentq_bit_for_bit(t0, h, coefs, where, tol, flip, exponent):
    # a polynomial in the bracket's own coordinate, with a root forced inside when `where`
    # is in [0, 1], scaled by 10^exponent (tiny values make C's interpolation divide by 0:
    # Python raises where C gives inf); SciPy's compiled brentq is the reference: every
    # point it evaluates and the root it returns must be the same floats
    t1 = t0 + h
    if not t1 > t0:
        return
    c = np.asarray(coefs)

    def f(t):
        s = (t - t0) / h
        v = float(np.polyval(c, s) * (s - where)) * 10.0**exponent
        return -v if flip else v

    fa, fb = f(t0), f(t1)
    xtol, rtol = [(2 * np.spacing(abs(t1)), 4 * np.finfo(float).eps), (1e-12, 1e-10),
                  (1e-6, 1e-8)][tol]
    seen = []

    def g(t):
        seen.append(t)
        return f(t)

    if np.sign(fa) * np.sign(fb) > 0:
        with pytest.raises(ValueError, match="must differ in sign"):
            brent_root(g, t0, t1, fa, fb, xtol, rtol)
        return
    root, ref_seen = _scipy_brentq_path(f, t0, t1, xtol, rtol)
    assert brent_root(g, t0, t1, fa, fb, xtol, rtol) == root
    assert seen == ref_seen[2:]  # SciPy evaluates both ends first; they are given here


def test_brent_root_finds_a_known_root_and_refuses_nan():
    # sqrt(2) to the tolerance asked, independently of SciPy
    r = brent_root(lambda t: t * t - 2.0, 1.0, 2.0, -1.0, 2.0, 1e-15, 4 * np.finfo(float).eps)
    assert abs(r - np.sqrt(2.0)) <= 2e-15
    with pytest.raises(ValueError, match="NaN"):
        brent_root(lambda t: float("nan"), 0.0, 1.0, -1.0, 1.0, 1e-12, 1e-12)
    with pytest.raises(ValueError, match="NaN"):
        brent_root(lambda t: t, 0.0, 1.0, float("nan"), 1.0, 1e-12, 1e-12)


def test_the_time_unit_is_one_for_unit_data_and_the_flows_time_scale_for_fast_data():
    """:func:`time_unit`: 1 where ``1 / (max ‖x_k‖ max(max |y_k|, max ‖x_k‖))`` is at least
    :data:`TIME_UNIT_MAX` (every built-in dataset), that time below it, with labels 0 too
    (``max ‖x_k‖²``); 1 where the data are 0 or not finite.  :func:`time_ulp` is the
    spacing at ``max(|t|, unit)``."""
    from pwflow.bisection import TIME_UNIT_MAX, time_ulp, time_unit

    X, y = np.array([[1.0, 1.0], [-1.0, 1.0], [0.0, 1.0]]), np.array([1.0, -1.0, 0.5])
    assert time_unit(X, y) == 1.0
    for c in (1e2, 1e6, 1e12):
        for labels, rate in ((y, 2.0 * c * c), (10 * y, 10 * np.sqrt(2.0) * c * c),
                             (np.zeros(3), 2.0 * c * c)):
            expected = 1.0 if 1.0 / rate >= TIME_UNIT_MAX else 1.0 / rate
            assert time_unit(c * X, c * labels) == pytest.approx(expected, rel=1e-15)
    assert time_unit(1e6 * X, 1e6 * y) < 1e-12
    assert time_unit(X, np.zeros(3)) == 1.0
    assert time_unit(np.zeros((3, 2)), y) == 1.0
    assert time_ulp(0.0) == np.spacing(1.0) and time_ulp(3.0) == np.spacing(3.0)
    assert time_ulp(0.0, 1e-12) == np.spacing(1e-12)


def test_a_tiny_step_is_a_thousand_of_the_runs_time_resolution():
    """:func:`pwflow.invariants.is_tiny_step` (the Zeno guard's "no progress", the cut check's
    "within rounding of the step start") is ``1000 time_ulp(t1, unit)``: the run's time
    resolution, one formula (it had its own, ``spacing(unit + |t1|)``, up to 2x apart)."""
    from pwflow.bisection import time_ulp
    from pwflow.invariants import is_tiny_step

    for t1, unit in ((0.0, 1.0), (3.0, 1.0), (1e-118, 1.0), (2e-12, 1e-12), (5e3, 1e-12)):
        tiny = 1e3 * time_ulp(t1, unit)
        assert is_tiny_step(t1 - tiny, t1, unit)
        assert not is_tiny_step(t1 - 2.0 * tiny, t1, unit)
    # at t1 = unit the old formula's spacing(2 unit) let twice as long a step count as tiny
    assert not is_tiny_step(1.0 - 1.5e3 * np.spacing(1.0), 1.0, 1.0)
