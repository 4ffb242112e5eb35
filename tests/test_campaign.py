"""The seeded campaign of :mod:`campaign` (d = 6–8 and the paper's bias-coordinate data), and
the symmetric (23), copies (24), long-horizon (25), sparse (26) and large-dimension (27)
families of :mod:`explore` by the same check.

The fast test runs two seeds of each family; the slow one 300 more (50 of each family).
"""

from __future__ import annotations

import numpy as np
import pytest
from campaign import TIMES, check, problem, times_of
from explore import LARGE_D_SEEDS, LONG_SEEDS, SPARSE_SEEDS, make

#: two of each family (2006 and 2012 draw a repeated point: 2018 instead); the faults the
#: campaign found at d = 6–8 have their own regression test
#: (``test_issue10_regressions.py::test_gd_policy_at_a_start_within_rounding_*``)
SEEDS = [2000, 2001, 2002, 2003, 2004, 2005, 2007, 2008, 2009, 2010, 2011, 2018]


@pytest.mark.parametrize("seed", SEEDS)
def test_campaign_seed(seed):
    p = problem(seed)
    assert p is not None
    out = check(p)
    assert out.ok, out.why


#: :func:`explore.symmetric_arrays` (session 30, 520 seeds, no failure): opposite pairs
#: ``[B; −B]`` (1 000 336, 1 000 205, 1 000 013, 1 000 449, 1 000 405) and signed basis vectors
#: with neurons exactly on several orthogonal hyperplanes (1 000 229, 1 000 461, 1 000 125;
#: 1 000 499 and 1 000 153 start on the common hyperplane of ``±e_i``, where gradient
#: descent's ``σ'(0)`` is no reference: invariants only), all compared with extrapolated
#: gradient descent otherwise
SYMMETRIC_SEEDS = [1_000_336, 1_000_205, 1_000_013, 1_000_449, 1_000_405, 1_000_229, 1_000_461,
                   1_000_125, 1_000_499, 1_000_153]


@pytest.mark.parametrize("seed", SYMMETRIC_SEEDS)
def test_symmetric_family_seed(seed):
    out = check(make(seed))
    assert out.ok, out.why
    assert out.events > 0


#: :func:`explore.copies_arrays` (session 44, 300 seeds, no failure): d = 1 (1 100 021,
#: 1 100 065, γ = 0.1: neurons reaching ``w = 0``, where every hyperplane meets), d = 2–5
#: with repeated points of their own labels, a neuron's exact copy and an output weight
#: exactly 0 (1 100 088, 1 100 012, 1 100 007, 1 100 041), all with events
COPIES_SEEDS = [1_100_021, 1_100_065, 1_100_088, 1_100_012, 1_100_007, 1_100_041]


@pytest.mark.parametrize("seed", COPIES_SEEDS)
def test_copies_family_seed(seed):
    case = make(seed)
    X, W = case.problem.X, case.problem.W
    assert np.unique(X, axis=0).shape[0] < X.shape[0]  # a repeated point
    assert W.shape[0] == 1 or np.array_equal(W[0], W[1])  # a copied neuron
    out = check(case)
    assert out.ok, out.why
    assert out.events > 0


#: :func:`explore.large_d_arrays` (session 48: seeds 1 400 000 … 1 400 011 and
#: 1 400 300 … 1 400 699, d = 9–16, no failure): sparse points in d = 15 (1 400 000), rank-6
#: points with a bias coordinate in d = 14 (1 400 008), Gaussian points in d = 15 (1 400 010)
LARGE_D_FAST = [1_400_000, 1_400_008, 1_400_010]


@pytest.mark.parametrize("seed", LARGE_D_FAST)
def test_large_dimension_family_seed(seed):
    case = make(seed)
    assert case.problem.d >= 9
    out = check(case)
    assert out.ok, out.why
    assert out.events > 0


def test_a_problem_is_checked_at_its_own_horizon(monkeypatch):
    """``check`` runs a problem to its ``t_max`` and compares it there, not at ``t = 5``
    (:func:`campaign.times_of`: the campaign's times scaled, themselves at ``t_max = 5``).
    The problem is :func:`explore.long_arrays`' seed 1 200 015 (session 45; that family's
    200 first seeds passed, more in the slow test below): issue 10's first reproducer's
    regime (d = 5, square loss, ReLU, scale 1e-2) to t = 20, 19 events."""
    import pwflow

    assert times_of(problem(2004).problem) == TIMES
    case = make(LONG_SEEDS + 15)  # t_max = 20
    assert times_of(case.problem) == (4.0, 10.0, 20.0)
    seen = []
    real = pwflow.simulate

    def spy(*args, **kwargs):
        tr = real(*args, **kwargs)
        seen.append((args[2], tuple(kwargs["t_eval"]), float(tr.t[-1])))
        return tr

    monkeypatch.setattr(pwflow, "simulate", spy)
    out = check(case)
    assert out.ok, out.why
    assert out.events > 0
    assert seen[0] == (20.0, (4.0, 10.0, 20.0), 20.0)


def _explore_failures(seeds) -> list[tuple[int, str]]:
    """The exploration's problems ``seeds`` that fail the campaign's check, with why."""
    return [(seed, out.why) for seed in seeds if not (out := check(make(seed))).ok]


@pytest.mark.slow
def test_sparse_family_slow():
    """Seeds 1 300 100 … 1 300 139 of the sparse dyadic family (t = 20; session 46: seeds
    1 300 000 … 1 300 059 all passed)."""
    failed = _explore_failures(range(SPARSE_SEEDS + 100, SPARSE_SEEDS + 140))
    assert not failed, failed


@pytest.mark.slow
def test_large_dimension_family_slow():
    """Seeds 1 400 100 … 1 400 139 of the large-dimension family (d = 9–16, t = 5 or 20)."""
    failed = _explore_failures(range(LARGE_D_SEEDS + 100, LARGE_D_SEEDS + 140))
    assert not failed, failed


@pytest.mark.slow
def test_long_family_slow():
    """Seeds 1 200 100 … 1 200 159 of the long-horizon family (t = 20, 40, 60)."""
    failed = _explore_failures(range(LONG_SEEDS + 100, LONG_SEEDS + 160))
    assert not failed, failed


def test_a_wrong_flow_fails_the_campaign_check(monkeypatch):
    """The check can fail: the flow started from output weights 5 % off the problem's (a
    correct flow of another problem: invariants hold, gradient descent disagrees)."""
    import pwflow

    real = pwflow.from_arrays
    monkeypatch.setattr(pwflow, "from_arrays", lambda W, a: real(W, 1.05 * a))
    out = check(problem(2004))
    assert not out.ok and out.why.endswith("]") and "gaps from extrapolated gradient" in out.why


@pytest.mark.slow
@pytest.mark.parametrize("block", range(6))
def test_campaign_slow(block):
    """Seeds 10 000 + 50 block … + 50 (block + 1): 300 in all, every family alike."""
    failed = []
    for seed in range(10_000 + 50 * block, 10_000 + 50 * (block + 1)):
        p = problem(seed)
        if p is not None:
            out = check(p)
            if not out.ok:
                failed.append((seed, out.why))
    assert not failed, failed


@pytest.mark.parametrize("seed", [9_603, 1_400_010])
def test_the_default_tolerances_give_the_tight_runs_events(seed):
    """:mod:`explore_refine` (session 48): the run at the default tolerances has the events of
    the run at ``rtol = 1e-13`` in the same order, their times within 1e-9 and every neuron
    within 1e-10 of its state there (d = 5, m = 28, 20 events; d = 15, m = 6, 52 events;
    measured 1.0e-10 and 3.0e-11 in time, 5.4e-12 and 2.0e-12 in state)."""
    from explore_refine import compare

    row = compare(seed)
    assert row["status"] == [0, 0] and row["events"][0] > 0
    assert row["same_log"] and row["max_dt"] <= 1e-9 and row["state"] <= 1e-10, row


#: :mod:`explore_gd_wide` (session 62): a wide network with many events (d = 3, m = 151, 238
#: events; within 1.25 gaps of extrapolated gradient descent) and the campaign's flagged one
#: (d = 4, m = 82: 5.3 gaps, gradient descent's early kinks; its distance to the flow halves
#: with the step, fitted order 0.80)
GD_WIDE_SEEDS = [512, 519]


@pytest.mark.parametrize("seed", GD_WIDE_SEEDS)
def test_a_wide_network_follows_gradient_descent(seed):
    from explore_gd_wide import compare

    row = compare(seed, 2.0, 2e-4)
    assert row["events"] > 10 and row["ok"], row


def test_the_wide_comparison_with_gradient_descent_sees_a_wrong_flow(monkeypatch):
    """The same comparison with the flow started 1e-4 off gradient descent's start (one
    neuron's output weight): the verdict is "disagrees" (many gaps, no convergence)."""
    import explore_gd_wide

    import pwflow

    simulate = pwflow.simulate

    def shifted(data, init, *args, **kwargs):
        a = np.array(init.a, dtype=float)
        a[0] += 1e-4
        return simulate(data, pwflow.from_arrays(np.asarray(init.W), a), *args, **kwargs)

    monkeypatch.setattr(explore_gd_wide.pwflow, "simulate", shifted)
    row = explore_gd_wide.compare(GD_WIDE_SEEDS[0], 1.0, 4e-4)
    assert row["status"] == 0 and not row["ok"] and row["ratio"] > 10 and row["order"] < 0.3, row
