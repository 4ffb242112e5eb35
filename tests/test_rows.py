"""Row-wise kernels over neurons (:mod:`pwflow.rows`): each against the direct numpy computation it replaces."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pwflow.rows import last_per_neuron, propagate, row_norms


def test_last_event_per_neuron():
    js = np.array([4, 2, 4, 7, 2, 4])
    np.testing.assert_array_equal(last_per_neuron(js, np.arange(6)), [3, 4, 5])
    np.testing.assert_array_equal(last_per_neuron(js, np.array([0, 1, 2])), [1, 2])


_finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, allow_subnormal=False)


@given(hnp.arrays(float, st.tuples(st.integers(0, 50), st.integers(1, 10)), elements=_finite))
def test_row_norms_are_linalg_norm_bit_for_bit(A):
    np.testing.assert_array_equal(row_norms(A), np.linalg.norm(A, axis=1))
    B = A[::-1].copy()  # and of a difference, without forming it
    np.testing.assert_array_equal(row_norms(A, B), np.linalg.norm(A - B, axis=1))


@given(st.data())
def test_propagate_applies_each_neurons_face_propagator(data):
    P, q = data.draw(st.integers(1, 6)), data.draw(st.integers(2, 6))
    m = data.draw(st.integers(0, 40))
    Phi = data.draw(hnp.arrays(float, (P, q, q), elements=_finite))
    Z = data.draw(hnp.arrays(float, (m, q), elements=_finite))
    pat = data.draw(hnp.arrays(np.intp, m, elements=st.integers(0, P - 1)))
    expect = np.array([Phi[p] @ z for p, z in zip(pat, Z)]).reshape(m, q)
    atol = 1e-12 * max(1.0, np.max(np.abs(Phi), initial=0.0) * np.max(np.abs(Z), initial=0.0))
    for by_entries in (False, True):  # entry by entry at q = 3 (large runs), blocks otherwise
        out = propagate(Phi, pat, Z, by_entries)
        assert out.shape == (m, q) and out.flags.c_contiguous
        np.testing.assert_allclose(out, expect, rtol=1e-12, atol=atol)
        # a neuron has the same numbers whichever subset is propagated
        np.testing.assert_array_equal(propagate(Phi, pat[::2], Z[::2], by_entries), out[::2])
