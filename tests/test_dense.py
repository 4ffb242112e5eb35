"""The dense-output helpers of :mod:`pwflow.dense`: the nested basis, its derivative, and the
propagators and their rates read through them (drawn coefficients: the helpers are linear)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from pwflow.dense import (nested, nested_basis, nested_basis_derivative, nested_derivative,
                          propagator_rates_at, propagators_at)


def _coefficients(entries: np.ndarray) -> np.ndarray:
    """``(8, P, q, q)`` coefficients (P = 2 faces, q = 2) from 64 drawn entries."""
    return entries.reshape(8, 2, 2, 2)


coefficient_arrays = st.lists(st.floats(-2.0, 2.0, allow_nan=False, allow_subnormal=False),
                              min_size=64, max_size=64).map(lambda v: np.array(v))


@given(v=coefficient_arrays, x=st.floats(0.0, 1.0))
def test_basis_derivative_is_the_derivative_of_the_basis(v, x):
    """The basis's derivative against a central difference, and the stacked propagators'
    rates against :func:`nested_derivative` on each entry."""
    F = _coefficients(v)
    eps = 1e-6
    fd = (nested_basis(np.array([x + eps]), 8) - nested_basis(np.array([x - eps]), 8)) / (2 * eps)
    np.testing.assert_allclose(nested_basis_derivative(np.array([x]), 8), fd, atol=1e-7)
    rates = propagator_rates_at(F, np.array([x]))[0]
    per_entry = nested_derivative(F.reshape(8, -1).T, np.full(8, x)).reshape(2, 2, 2)
    np.testing.assert_allclose(rates, per_entry, rtol=1e-13, atol=1e-13)
    # the values, for the same faces, through the same basis
    vals = propagators_at(F, x, np.array([1]))
    np.testing.assert_allclose(vals[0], nested(F[:, 1].reshape(8, -1).T, np.full(4, x))
                               .reshape(2, 2), rtol=1e-13, atol=1e-13)
