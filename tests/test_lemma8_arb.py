"""The arb (python-flint) cross-check of the Lemma 8 certificate (proofs_checks.lemma8_arb)."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

from proofs_checks import lemma8 as L8

pytest.importorskip("flint")
from proofs_checks import lemma8_arb as A  # noqa: E402

NAMES = [o.name for o in L8.obligations()]


@given(st.sampled_from(NAMES), st.lists(st.floats(0.0, 1.0), min_size=9, max_size=9))
def test_arb_point_value_contains_the_exact_margin(name, fractions):
    box = L8.assumption3_box(0.1)
    p = box.lo + np.array(fractions) * (box.hi - box.lo)
    lo, hi = A.arb_margin(name, p, p, 0.1)
    exact = L8.exact_margin(name, tuple(p), 0.1)
    assert sp.Rational(lo) <= exact <= sp.Rational(hi)
    assert hi - lo <= 1e-12 * max(1.0, abs(float(exact)))


def test_arb_box_bounds_enclose_sampled_values():
    box = L8.assumption3_box(0.05)
    lo, hi = A.arb_margin("A5.k1", box.lo, box.hi, 0.05)
    rng = np.random.default_rng(3)
    for _ in range(20):
        p = box.lo + rng.random(9) * (box.hi - box.lo)
        v = float(L8.exact_margin("A5.k1", tuple(p), 0.05))
        assert lo <= v <= hi


@pytest.mark.parametrize("eta", [0.05, 0.09])
def test_certificate_and_arb_agree(eta):
    results = A.crosscheck_lemma8(eta, groups=("A4", "A5", "A6"), n_sample=20)
    assert {r.name for r in results} == {o.name for o in L8.obligations()
                                         if o.group in ("A4", "A5", "A6")}
    for r in results:
        assert r.verdict == "holds", r.message
        assert r.worst_gap <= 0 and r.points >= 5 * r.boxes
        assert r.numpy_seconds > 0 and r.arb_seconds > 0
    # the margins whose infimum is 0 on an open face have near-zero boxes, checked with arb
    ip13 = next(r for r in results if r.name == "A4.ip13")
    assert ip13.near_zero >= 1 and ip13.arb_min_lower <= 1e-6


def test_a_lower_bound_above_a_value_is_violated():
    box = L8.assumption3_box(0.05)
    p = 0.5 * (box.lo + box.hi)
    value = float(L8.exact_margin("A5.k1", tuple(p), 0.05))
    verdict, info = A.check_boxes("A5.k1", p[None], p[None], np.array([value + 1e-9]), 0.05)
    assert verdict == "violated" and "exceeds the arb upper bound" in info["message"]
    verdict, _ = A.check_boxes("A5.k1", p[None], p[None], np.array([value - 1e-9]), 0.05)
    assert verdict == "holds"


def test_disagreeing_arithmetic_is_violated(monkeypatch):
    """An arb evaluation of a different margin (shifted by 1) must be caught at the points."""
    syms, eta = L8._symbols()
    expr = {o.name: o.expr for o in L8.obligations()}["A4.y1"] - 1
    shifted = sp.lambdify((*syms, eta), expr, modules=[{}])
    monkeypatch.setattr(A, "_arb_function", lambda name: shifted)
    box = L8.assumption3_box(0.05)
    verdict, info = A.check_boxes("A4.y1", box.lo[None], box.hi[None], np.array([-1.0]), 0.05)
    assert verdict == "violated" and "numpy encloses the margin" in info["message"]


def test_the_recorder_leaves_the_certificate_unchanged():
    box = L8.assumption3_box(0.09)
    before = L8.certify_obligation("A5.k3", box)
    r = A.crosscheck_obligation("A5.k3", box, n_sample=5)
    after = L8.certify_obligation("A5.k3", box)
    assert before == after and L8._enclose.__name__ == "_enclose"
    assert r.boxes <= before.boxes


@pytest.mark.parametrize("call, fragment", [
    (lambda: A.arb_margin("nope", np.zeros(9), np.zeros(9), 0.1), "name must be one of"),
    (lambda: A.arb_margin("A4.y1", np.zeros(8), np.zeros(8), 0.1), "shape (9,)"),
    (lambda: A.crosscheck_obligation("A4.y1", L8.assumption3_box(0.1), n_sample=-1),
     "n_sample"),
    (lambda: A.crosscheck_lemma8(0.1, groups=("A7",)), "groups must be a subset"),
    (lambda: A.check_boxes("A4.y1", np.zeros((2, 9)), np.zeros((2, 9)), np.zeros(3), 0.1),
     "lb shape"),
])
def test_bad_input_is_a_value_error(call, fragment):
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        call()
