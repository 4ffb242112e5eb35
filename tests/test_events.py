"""The located events up to a cut as arrays (issue 13).

:meth:`pwflow.events.Located.upto` used to build one record per event (187k of them on three
points at m = 2·10⁵, about a second); it now hands the arrays of the prefix up to the cut.
Each row must say what the per-event record said: the hyperplanes reached (merged coincident
candidates included), ``w = 0``, ``a_j = 0``, the sign taken, the residual and the side seen.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pwflow.events import Located


@st.composite
def located_candidates(draw):
    """Candidates of one step: several per neuron, some at the very same time (merged)."""
    c = draw(st.integers(1, 40))
    neurons = draw(hnp.arrays(np.intp, c, elements=st.integers(0, 9)))
    base = draw(hnp.arrays(float, c, elements=st.floats(0.0, 1.0)))
    same = draw(hnp.arrays(bool, c))  # a candidate at the time of its neuron's first one
    first = {}
    for i, j in enumerate(neurons.tolist()):
        first.setdefault(j, base[i])
        if same[i]:
            base[i] = first[j]
    codes = draw(hnp.arrays(np.intp, c, elements=st.integers(-2, 5)))
    rate = draw(hnp.arrays(float, c, elements=st.floats(0.0, 2.0)))
    res = draw(hnp.arrays(float, c, elements=st.floats(0.0, 1e-15)))
    observed = draw(hnp.arrays(np.int8, c, elements=st.sampled_from([-1, 0, 1])))
    a_sign = draw(hnp.arrays(float, c, elements=st.sampled_from([-1.0, 1.0])))
    t_cut = draw(st.floats(0.0, 1.0))
    return neurons, 2.0 + base, base, codes, rate, res, observed, a_sign, 2.0 + t_cut


@given(located_candidates())
def test_upto_rows_say_what_the_per_event_records_said(cands):
    *args, t_cut = cands
    located, _ = Located.group(*args)
    pend = located.upto(t_cut)
    rows = np.flatnonzero(located.t <= t_cut)  # the old records: one per row up to the cut
    assert len(pend) == rows.size
    zero, flip, n_ks = pend.zero, pend.flip, pend.n_ks
    for e, i in enumerate(rows):
        codes = [int(located.code[i])] + located.more.get(int(i), [])
        ks = tuple(sorted({c for c in codes if c >= 0}))
        assert pend.ks(e) == ks and n_ks[e] == len(ks)
        assert zero[e] == (-1 in codes) and flip[e] == (-2 in codes)
        assert (pend.t[e], pend.x[e], pend.neuron[e], pend.rate[e]) == (
            located.t[i], located.x[i], located.neuron[i], located.rate[i])
        assert (pend.a_after[e], pend.poly_residual[e], pend.observed[e]) == (
            located.a_sign[i], located.residual[i], located.observed[i])
    # a further cut inside is the prefix of the prefix
    if rows.size:
        inner = pend.upto(float(pend.t[rows.size // 2]))
        assert len(inner) >= rows.size // 2 + 1
        assert all(inner.ks(e) == pend.ks(e) for e in range(len(inner)))
