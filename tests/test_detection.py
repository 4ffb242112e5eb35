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
