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
