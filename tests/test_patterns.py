"""The face table's one-free-slope fast path on a stack of residuals (issue 13).

:meth:`PatternTable.single_fields` takes residuals with a leading time axis, so that the face
events' search evaluates the regime at many times in one call.  Each row must be the very
numbers of a call with that row alone, and of the general minimal-norm solver
(:meth:`PatternTable.fields`), since the event log depends on them to the last bit.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pwflow.patterns import PatternTable


def _floats(lo: float, hi: float):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)


@st.composite
def stacked_problems(draw):
    """Data, a table of faces with at most one free slope each, and residuals at T times."""
    d = draw(st.integers(2, 5))
    n = draw(st.integers(2, 8))
    X = draw(hnp.arrays(float, (n, d), elements=_floats(-2.0, 2.0)))
    X[np.linalg.norm(X, axis=1) < 0.1, 0] = 1.0  # no zero data point
    gamma = draw(st.sampled_from([0.0, 0.1, 0.5]))
    P = draw(st.integers(1, 6))
    U = draw(hnp.arrays(np.int8, (P, n), elements=st.sampled_from([-1, 1])))
    for p in range(P):  # at most one free slope: one zero entry, or none
        k = draw(st.integers(-1, n - 1))
        if k >= 0:
            U[p, k] = 0
    T = draw(st.integers(1, 7))
    R = draw(hnp.arrays(float, (T, n), elements=_floats(-3.0, 3.0)))
    return X, gamma, U, R


@given(stacked_problems())
def test_single_fields_on_a_stack_of_residuals_equal_row_by_row_calls(problem):
    X, gamma, U, R = problem
    table = PatternTable(X, gamma)
    for u in U:
        table.index(u)
    plan = table.single_plan(len(table))
    assert plan is not None
    G, est = table.single_fields(plan, R)
    assert G.shape == (R.shape[0], len(table), X.shape[1])
    assert est.shape == (R.shape[0], plan.one.size)
    for t, r in enumerate(R):
        G1, est1 = table.single_fields(plan, r)
        np.testing.assert_array_equal(G[t], G1)
        np.testing.assert_array_equal(est[t], est1)
        # and the general solver (every face, the minimal-norm problem of each)
        Gf, eta_star = table.fields(r)
        np.testing.assert_array_equal(G1, Gf)
        np.testing.assert_array_equal(est1, eta_star[plan.one])
