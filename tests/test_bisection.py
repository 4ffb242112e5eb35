"""The batched bisection of the face events (:mod:`pwflow.bisection`) is the sequential one, bit for bit."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from pwflow.bisection import bisect, bisect_batched


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
