"""Tests of pwflow.init: the initialisations of Eq. (3)–(5) and Appendix B.

Statistical tolerances: each moment check compares a sample statistic over N i.i.d. draws with
its exact value using 5 standard errors (e.g. ``5/sqrt(N)`` for the mean of a unit-variance
variable, ``5 sqrt(2/N)`` for its sample variance).  For a correct sampler a single check fails
with probability about 6e-7; the seeds are fixed, so the tests are deterministic.  A sampler
with the wrong scale, sign balance or distribution is off by many standard errors.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pwflow.init import Init, balanced, dominated, from_arrays, make_init, unbalanced

KINDS = {"balanced": balanced, "dominated": dominated, "unbalanced": unbalanced}
N = 40_000  # draws for the moment checks


def _tilde(init: Init) -> tuple[np.ndarray, np.ndarray]:
    """Undo the scaling of Eq. (3): ``(ã, w̃) = (√m / λ) (a, w)``."""
    c = np.sqrt(init.m) / init.scale
    return c * init.a, c * init.W


@pytest.mark.parametrize("d", [1, 2, 5])
@pytest.mark.parametrize("scale", [1e-3, 1.0, 7.5])
def test_balanced_is_exactly_balanced(d, scale):
    init = balanced(500, d, scale, seed=1)
    norm2 = np.sum(init.W**2, axis=1)
    np.testing.assert_allclose(init.a**2, norm2, rtol=1e-15, atol=0)
    assert init.satisfies_eq4()
    # a fake "balanced" init with |a| 1% too small fails the same check
    with pytest.raises(AssertionError):
        np.testing.assert_allclose((0.99 * init.a) ** 2, norm2, rtol=1e-15, atol=0)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_dominated_satisfies_eq4_strictly_and_eq5(d):
    init = dominated(2000, d, 0.3, seed=2)
    assert np.all(np.abs(init.a) > np.linalg.norm(init.W, axis=1))
    at, _ = _tilde(init)
    running_mean = np.cumsum(at**2) / np.arange(1, init.m + 1)
    assert np.all(running_mean <= 1 + 1e-12)  # Eq. (5) for every k
    np.testing.assert_allclose(np.abs(at), 1.0, rtol=1e-14)
    # Eq. (5) fails for the unbalanced (Gaussian) init at this seed: the check can fail
    at_u, _ = _tilde(unbalanced(2000, d, 0.3, seed=2))
    assert np.any(np.cumsum(at_u**2) / np.arange(1, 2001) > 1)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_dominated_w_uniform_in_ball(d):
    at, wt = _tilde(dominated(N, d, 1.0, seed=3))
    r = np.linalg.norm(wt, axis=1)
    # uniform in the unit ball: r^d ~ U(0, 1) and the direction is uniform on the sphere
    assert stats.kstest(r**d, "uniform").pvalue > 1e-4
    assert np.all(np.abs(wt.mean(axis=0)) < 5 * np.sqrt(1.0 / N))  # |w̃_i| <= 1
    assert abs(np.mean(at)) < 5 / np.sqrt(N)  # signs ±1 with probability ½


def test_balanced_distribution_appendix_b1():
    at, wt = _tilde(balanced(N, 2, 1e-3, seed=4))
    # w̃ ~ N(0, I_2): per-coordinate mean 0 and variance 1, uncorrelated coordinates
    assert np.all(np.abs(wt.mean(axis=0)) < 5 / np.sqrt(N))
    assert np.all(np.abs(wt.var(axis=0) - 1) < 5 * np.sqrt(2 / N))
    assert abs(np.corrcoef(wt.T)[0, 1]) < 5 / np.sqrt(N)
    # ã = s ‖w̃‖ with s uniform on {−1, 1}, independent of w̃
    s = np.sign(at)
    assert abs(s.mean()) < 5 / np.sqrt(N)
    assert abs(np.corrcoef(s, wt[:, 0])[0, 1]) < 5 / np.sqrt(N)


def test_unbalanced_distribution_appendix_b2():
    at, wt = _tilde(unbalanced(N, 2, 1e-3, seed=5))
    for v in (at, wt[:, 0], wt[:, 1]):
        assert abs(v.mean()) < 5 / np.sqrt(N)
        assert abs(v.var() - 1) < 5 * np.sqrt(2 / N)
        assert stats.kstest(v, "norm").pvalue > 1e-4
    # independence of ã and w̃ (in particular not balanced): correlation of ã² and ‖w̃‖²
    assert abs(np.corrcoef(at**2, np.sum(wt**2, axis=1))[0, 1]) < 5 / np.sqrt(N)
    assert not unbalanced(100, 2, 1.0, seed=5).satisfies_eq4()


def test_moment_checks_can_fail():
    # the same tolerances reject a sampler with variance 1.05 instead of 1
    at, _ = _tilde(unbalanced(N, 2, 1e-3, seed=5))
    assert abs((np.sqrt(1.05) * at).var() - 1) > 5 * np.sqrt(2 / N)


@pytest.mark.parametrize("kind", ["balanced", "unbalanced"])
def test_scaling_lambda_over_sqrt_m(kind):
    f = KINDS[kind]
    base = f(10, 3, 1.0, seed=9)
    # linear in λ (same draws)
    np.testing.assert_allclose(f(10, 3, 2.5, seed=9).W, 2.5 * base.W, rtol=1e-15)
    np.testing.assert_allclose(f(10, 3, 2.5, seed=9).a, 2.5 * base.a, rtol=1e-15)
    # the first w̃ draws do not depend on m, so W √m is the same for the shared rows
    big = f(40, 3, 1.0, seed=9)
    np.testing.assert_allclose(big.W[:10] * np.sqrt(40), base.W * np.sqrt(10), rtol=1e-14)


@pytest.mark.parametrize("m", [1, 4, 1000])
def test_dominated_output_weights_are_lambda_over_sqrt_m(m):
    init = dominated(m, 2, 0.7, seed=0)
    np.testing.assert_allclose(np.abs(init.a), 0.7 / np.sqrt(m), rtol=1e-15)
    assert np.all(np.linalg.norm(init.W, axis=1) < 0.7 / np.sqrt(m))


@pytest.mark.parametrize("kind", list(KINDS))
def test_reproducible_by_seed(kind):
    a, b, c = (make_init(kind, 20, 2, 1.0, seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(a.W, b.W)
    np.testing.assert_array_equal(a.a, b.a)
    assert not np.array_equal(a.W, c.W)
    assert (a.kind, a.scale, a.seed, a.m, a.d) == (kind, 1.0, 1, 20, 2)


def test_from_arrays_and_balancedness():
    init = from_arrays([[3.0, 4.0], [1.0, 0.0]], [5.0, -2.0])
    np.testing.assert_array_equal(init.balancedness, [0.0, 3.0])
    assert init.kind == "explicit" and init.satisfies_eq4()
    assert not from_arrays([[3.0, 4.0]], [4.9]).satisfies_eq4()


_INVALID = {
    "m_zero": (lambda: balanced(0, 2, 1.0), "width m"),
    "m_fractional": (lambda: balanced(1.5, 2, 1.0), "width m"),
    "m_bool": (lambda: dominated(True, 2, 1.0), "width m"),
    "d_zero": (lambda: unbalanced(3, 0, 1.0), "input dimension d"),
    "scale_zero": (lambda: balanced(3, 2, 0.0), "scale"),
    "scale_negative": (lambda: dominated(3, 2, -1.0), "scale"),
    "scale_nan": (lambda: unbalanced(3, 2, float("nan")), "scale"),
    "scale_inf": (lambda: balanced(3, 2, float("inf")), "scale"),
    "unknown_kind": (lambda: make_init("xavier", 3, 2, 1.0), "unknown init 'xavier'"),
    "a_wrong_length": (lambda: from_arrays(np.ones((3, 2)), np.ones(2)), "a must have shape"),
    "W_1d": (lambda: from_arrays(np.ones(3), np.ones(3)), "W must have shape"),
    "no_neuron": (lambda: from_arrays(np.ones((0, 2)), np.ones(0)), "at least one neuron"),
    "nan_W": (lambda: from_arrays([[np.nan, 1.0]], [1.0]), "NaN"),
    "nan_a": (lambda: from_arrays([[1.0, 1.0]], [np.nan]), "NaN"),
}


@pytest.mark.parametrize("build,fragment", list(_INVALID.values()), ids=list(_INVALID))
def test_invalid_inputs(build, fragment):
    with pytest.raises(ValueError, match=fragment):
        build()
