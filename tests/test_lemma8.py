"""Tests for proofs_checks.lemma8: Lemma 8 (Appendix A) certified over the Assumption 3 boxes."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

from proofs_checks import lemma8 as L
from pwflow.data import Dataset, assumption3

#: Root of the A5.k1 margin at the worst corner of the box (exact polynomial, see docs).
ETA_A5 = 0.0976541304678381


# ---------------------------------------------------------------- independent exact references


def _exact(point: tuple) -> tuple[sp.Matrix, sp.Matrix]:
    q = [sp.Rational(float(v)) for v in point]
    X = sp.Matrix([[q[0], q[1]], [q[2], q[3]], [q[4], q[5]]])
    y = sp.Matrix(q[6:])
    return X, y


def _exact_a5(point: tuple, k: int) -> sp.Rational:
    """Assumption 5 squared, from the statement: y_k² ||x_k||⁴ − Σy² Σ_{k'≠k} <x_k', x_k>²."""
    X, y = _exact(point)
    G = X * X.T
    others = sum(G[j, k] ** 2 for j in range(3) if j != k)
    return y[k] ** 2 * G[k, k] ** 2 - (y.T * y)[0] * others


def _exact_residual(point: tuple) -> sp.Matrix:
    """y − X β* with β* = (XᵀX)⁻¹Xᵀy in exact arithmetic (Theorem 2)."""
    X, y = _exact(point)
    beta = (X.T * X).inv() * X.T * y
    return y - X * beta


# ---------------------------------------------------------------- interval primitives

finite = st.floats(-1e3, 1e3, allow_nan=False)


def _iv(a: float, b: float) -> L.Interval:
    return L.Interval(min(a, b), max(a, b))


def _inside(iv: L.Interval, q: Fraction) -> bool:
    return Fraction(float(iv.lo)) <= q <= Fraction(float(iv.hi))


@given(finite, finite, finite, finite, st.floats(0, 1), st.floats(0, 1))
def test_interval_ops_enclose_exact_rational_results(a, b, c, d, s, t):
    x, y = _iv(a, b), _iv(c, d)
    # exact rational points inside each interval
    px = Fraction(float(x.lo)) + Fraction(s) * (Fraction(float(x.hi)) - Fraction(float(x.lo)))
    py = Fraction(float(y.lo)) + Fraction(t) * (Fraction(float(y.hi)) - Fraction(float(y.lo)))
    assert _inside(x + y, px + py)
    assert _inside(x - y, px - py)
    assert _inside(x * y, px * py)
    assert _inside(x**2, px**2)
    assert _inside(x**3, px**3)
    assert float((x**2).lo) >= 0
    if y.lo > 1e-150 or y.hi < -1e-150:
        assert _inside(x / y, px / py)


def test_interval_rounding_is_outward_only_when_inexact():
    s = L.Interval(0.1) + L.Interval(0.2)
    exact = Fraction(0.1) + Fraction(0.2)
    assert Fraction(float(s.lo)) < exact < Fraction(float(s.hi))  # inexact: widened
    z = L.Interval(-1.0) * L.Interval(1.0) + 1
    assert float(z.lo) == 0.0 == float(z.hi)  # exact: not widened
    p = L.Interval(3.0) * L.Interval(1.0 / 3.0)
    assert _inside(p, Fraction(3) * Fraction(1.0 / 3.0)) and float(p.lo) < float(p.hi)


def test_interval_bad_input():
    with pytest.raises(ValueError, match="lo <= hi"):
        L.Interval(1.0, 0.0)
    with pytest.raises(ValueError, match="containing 0"):
        L.Interval(1.0) / L.Interval(-1.0, 1.0)
    with pytest.raises(ValueError, match="integer exponent"):
        L.Interval(1.0) ** 0.5


# ---------------------------------------------------------------- certification

def test_certified_below_a5_threshold():
    cert = L.certify_lemma8(0.05, max_boxes=20_000)
    assert cert.verdict(("A4", "A5", "A6", "Eq13")) == "certified"
    assert cert.kappa_certified
    # the two strict inequalities whose infimum (0) sits on an excluded face
    assert cert.by_name("A4.ip13").open_face_boxes >= 1
    assert cert.by_name("A4.y2").open_face_boxes >= 1
    for r in cert.results:
        assert r.min_lower_bound >= 0


@pytest.mark.parametrize("eta", [0.1, 1 / 6 - 1e-3])
def test_lemma8_assumption5_fails_inside_the_box(eta):
    """A4, 𝒦 = {1, 3}, A6 (and Eq. 13) are certified, but Assumption 5 is not: exact
    counterexample, rechecked independently from the statement of Assumption 5."""
    cert = L.certify_lemma8(eta, max_boxes=20_000)
    assert cert.verdict(("A4", "A6", "Eq13")) == "certified"
    assert cert.kappa_certified
    assert cert.verdict() == "counterexample"
    box = L.assumption3_box(eta)
    for k, name in ((0, "A5.k1"), (2, "A5.k3")):
        r = cert.by_name(name)
        assert r.verdict == "counterexample"
        assert box.contains_exact(r.point)
        assert _exact_a5(r.point, k) == r.exact_value < 0
    # and at the worst corner of the box, closed form (docs/lemma8.md)
    e = sp.Rational(eta)
    corner = (-1 + e, 1, -e, 1 + e, 1 - e, 1 + e, 1, e, 1 + e)
    assert _exact_a5(corner, 0) < 0


def test_eta_slightly_below_corner_root_is_certified():
    cert = L.certify_lemma8(ETA_A5 - 2e-3, max_boxes=50_000, groups=("A5",))
    assert cert.verdict(("A5",)) == "certified"


def test_large_eta_gives_exact_counterexample():
    cert = L.certify_lemma8(0.6, max_boxes=20_000, groups=("A4",))
    r = cert.by_name("A4.indep12")
    assert r.verdict == "counterexample"
    X, _ = _exact(r.point)
    assert X[0, 0] * X[1, 1] - X[0, 1] * X[1, 0] >= 0  # det(x1, x2) >= 0: wrong orientation
    assert L.assumption3_box(0.6).contains_exact(r.point)


def test_large_y2_violates_assumption6_exactly():
    box = L.assumption3_box(0.1, y2_max=3.0)
    cert = L.certify_box(box, max_boxes=20_000, groups=("A6",))
    for k, name in ((0, "A6.k1"), (2, "A6.k3")):
        r = cert.by_name(name)
        assert r.verdict == "counterexample"
        assert box.contains_exact(r.point)
        assert _exact_residual(r.point)[k] == r.exact_value <= 0


def test_closed_box_is_not_certified_for_ip13():
    """Without the open ends a1 > −1, a3 < 1, <x1, x3> = 0 at a corner: the certifier must fail."""
    box = L.assumption3_box(0.1)
    closed = L.Box(box.lo, box.hi, np.zeros(9, bool), np.zeros(9, bool), box.eta, box.exact)
    r = L.certify_obligation("A4.ip13", closed, max_boxes=1_000)
    assert r.verdict == "counterexample" and r.exact_value == 0
    assert L.certify_obligation("A4.ip13", box).verdict == "certified"


def test_budget_exhaustion_is_inconclusive():
    r = L.certify_obligation("A5.k1", L.assumption3_box(ETA_A5 - 2e-3), max_boxes=3)
    assert r.verdict == "inconclusive"


def test_bad_arguments():
    with pytest.raises(ValueError, match="eta"):
        L.assumption3_box(1.5)
    with pytest.raises(ValueError, match="y2_max"):
        L.assumption3_box(0.1, y2_max=-1.0)
    with pytest.raises(ValueError, match="name"):
        L.certify_obligation("A7", L.assumption3_box(0.1))
    with pytest.raises(ValueError, match="max_boxes"):
        L.certify_obligation("A4.y1", L.assumption3_box(0.1), max_boxes=0)
    with pytest.raises(ValueError, match="groups"):
        L.certify_lemma8(0.1, groups=("A9",))
    with pytest.raises(ValueError, match="3 points"):
        L.obligation_values(Dataset(np.eye(2), np.ones(2)), 0.1)
    with pytest.raises(ValueError, match="delta"):
        L.assumption6_patterns(assumption3(0.1, 0), delta=2.0)


# ---------------------------------------------------------------- point-wise cross-checks


@given(st.floats(0.01, 1 / 6 - 1e-6), st.integers(0, 2**32 - 1))
def test_random_assumption3_datasets_satisfy_obligations(eta, seed):
    data = assumption3(eta, seed)
    vals = L.obligation_values(data, eta)
    assert L.kappa_set(data) == {0, 2}  # 0-based: the paper's {1, 3}
    assert L.assumption6_patterns(data, delta=0.05, n_angles=2_000) > 0
    for name, v in vals.items():
        if not name.startswith("A5"):
            assert v > 0, name
    if eta < ETA_A5:
        assert vals["A5.k1"] > 0 and vals["A5.k3"] > 0


@pytest.fixture(scope="module")
def cert_016() -> L.Lemma8Certificate:
    return L.certify_lemma8(0.16, max_boxes=20_000, groups=("A4", "A6", "Eq13"))


@given(st.integers(0, 2**32 - 1))
def test_point_values_lie_above_certified_bounds(cert_016, seed):
    vals = L.obligation_values(assumption3(0.16, seed), 0.16)
    for r in cert_016.results:
        assert r.verdict == "certified"
        assert vals[r.name] >= r.min_lower_bound, r.name


@given(st.floats(0.01, 0.5), st.integers(0, 2**32 - 1), st.floats(1e-6, 0.1))
def test_enclosure_of_subbox_is_below_point_values(eta, seed, width):
    """For a random sub-box containing a random dataset, the interval lower bound of every
    obligation (incl. A5) is <= the independent float value at the dataset."""
    data = assumption3(eta, seed)
    p = np.concatenate([data.X.ravel(), data.y])
    rng = np.random.default_rng(seed)
    lo = (p - width * rng.uniform(size=9))[None, :]
    hi = (p + width * rng.uniform(size=9))[None, :]
    vals = L.obligation_values(data, eta)
    for ob in L.obligations():
        if ob.name.startswith(("A6", "Eq13")) and width > 0.01:
            continue  # determinants may straddle 0 on wide boxes: division undefined
        lb = L._enclose(ob.name, lo, hi, eta)[0][0]
        assert lb <= vals[ob.name] + 1e-9 * max(1.0, abs(vals[ob.name])), ob.name


def test_point_values_match_exact_formulas():
    data = assumption3(0.1, 3)
    vals = L.obligation_values(data, 0.1)
    point = tuple(np.concatenate([data.X.ravel(), data.y]))
    for ob in L.obligations():
        assert float(L.exact_margin(ob.name, point, 0.1)) == pytest.approx(vals[ob.name],
                                                                           rel=1e-9, abs=1e-12)
    assert float(_exact_residual(point)[0]) == pytest.approx(vals["A6.k1"], rel=1e-9)


def test_kappa_and_patterns_detect_violations():
    # x2 outside the cone of x1, x3: 𝒦 = {1, 2}... and 3 not extreme
    bad = Dataset(np.array([[-1.0, 1.0], [1.0, 1.0], [0.0, 1.0]]), np.array([1.0, 0.1, 1.0]))
    assert L.kappa_set(bad) == {0, 1}
    # y2 large: the OLS over-predicts x1 and x3, Assumption 6 fails and so does its pattern form
    high = Dataset(np.array([[-0.95, 1.0], [0.0, 1.0], [0.95, 1.0]]), np.array([1.0, 3.0, 1.0]))
    vals = L.obligation_values(high, 0.1)
    assert vals["A6.k1"] < 0 and vals["A6.k3"] < 0
    assert L.assumption6_patterns(high, delta=0.05, n_angles=2_000) < 0


# ---------------------------------------------------------------- threshold (slow)


@pytest.mark.slow
def test_threshold_brackets_the_corner_root():
    res = L.find_eta_threshold(("A4", "A5", "A6"), lo=0.05, hi=0.2, tol=1e-3, max_boxes=100_000)
    assert res.eta_certified <= ETA_A5 <= res.eta_failed
    assert res.binding.startswith("A5")
    assert res.eta_failed - res.eta_certified <= 1e-3


@pytest.mark.slow
def test_threshold_without_assumption5_is_above_one_sixth():
    res = L.find_eta_threshold(("A4", "A6"), lo=0.1, hi=0.6, tol=1e-2, max_boxes=100_000)
    assert res.eta_certified > 1 / 6
