import numpy as np
import pytest

from proofs_checks.assumptions import (
    check_all,
    check_assumption1,
    check_assumption2,
    check_assumption3,
    check_assumption4,
    check_assumption5,
    check_assumption6,
)
from proofs_checks.faces import geometry
from pwflow.data import Dataset, assumption3, three_points
from pwflow.model import make_loss


def test_assumption1_square_and_bad_loss():
    assert check_assumption1("square", [1.0, 2.0]).holds
    steep = make_loss(
        lambda p, y: (p - y) ** 2, lambda p, y: 2 * (p - y), name="steep", curvature_bound=2.0
    )
    r = check_assumption1(steep, [1.0])
    assert not r.holds and r.margin < 0


@pytest.mark.parametrize("slope, holds, margin", [
    (1.0, True, 0.0),  # the square loss: 1-Lipschitz with equality
    (1.0 + 1e-6, False, -1e-6),  # just above the bound: measured, not rounded away
    (0.5, True, 0.5),
])
def test_assumption1_margin_is_the_measured_distance_to_its_bound(slope, holds, margin):
    """The Lipschitz part of Assumption 1's margin is ``1 − Lip`` as measured: 0 for a
    derivative exactly 1-Lipschitz (before session 53 the square loss read 9.999e-10, the
    grid's tolerance added to it), negative just above the bound."""
    loss = make_loss(lambda p, y: slope * (p - y) ** 2 / 2, lambda p, y: slope * (p - y),
                     name=f"slope {slope}", curvature_bound=slope)
    r = check_assumption1(loss, [3.0, -2.0])
    assert r.holds is holds
    assert r.margin == pytest.approx(margin, abs=1e-12)
    if holds and margin == 0.0:
        assert r.margin == 0.0 and check_assumption1("square", [3.0, -2.0]).margin == 0.0
    zero_at_0 = check_assumption1(loss, [0.0, 1.0])  # y = 0 is allowed; the others are nonzero
    assert zero_at_0.holds is holds


def test_assumption2_generic_vs_degenerate():
    rng = np.random.default_rng(0)
    ok = check_assumption2(geometry(Dataset(rng.normal(size=(5, 3)), rng.normal(size=5))))
    assert ok.holds and ok.margin > 0
    collinear = Dataset(np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]]), np.array([1.0, 1.0, -1.0]))
    bad = check_assumption2(geometry(collinear))
    assert not bad.holds and bad.details["independence_margin"] < 1e-12


def test_assumption2_boundary_condition_fails_when_D_u_on_boundary():
    # D_u for u = (1, 1) is (x_1 + x_2)/2 ∝ (1, 0): on the hyperplane x_3^⊥ with x_3 = (0, 1)
    X = np.array([[1.0, 1.0], [1.0, -1.0], [0.0, 1.0], [0.0, -1.0]])
    data = Dataset(X, np.array([1.0, 1.0, 0.5, 0.5]))
    r = check_assumption2(geometry(data))
    assert not r.holds
    assert r.details["boundary_margin"] <= 1e-12 or r.details["independence_margin"] <= 1e-12


@pytest.mark.parametrize("seed", range(3))
def test_assumption3_box(seed):
    d = assumption3(0.1, seed)
    assert check_assumption3(d, 0.1).holds
    assert not check_assumption3(d, 0.01).holds  # smaller box excludes the points
    moved = Dataset(d.X + np.array([[0.0, 0.0], [0.5, 0.0], [0.0, 0.0]]), d.y)
    assert not check_assumption3(moved, 0.1).holds
    with pytest.raises(ValueError, match="eta"):
        check_assumption3(d, 1.5)


@pytest.mark.parametrize("seed", range(3))
def test_lemma8_conclusions_on_samples(seed):
    geo = geometry(assumption3(0.1, seed))
    for chk in (check_assumption4, check_assumption5, check_assumption6):
        r = chk(geo)
        assert r.holds and r.margin > 0, (r.name, r.details)


def test_assumption4_5_6_fail_on_wrong_input():
    neg = Dataset(np.array([[1.0, 0.1], [-1.0, 0.2], [0.1, 1.0]]), np.array([1.0, 1.0, 1.0]))
    assert not check_assumption4(geometry(neg)).holds
    neg_y = Dataset(three_points().X, np.array([1.1, -0.1, 0.8]))
    assert not check_assumption4(geometry(neg_y)).holds
    # three_points violates Assumption 5 (the paper's Section 6 example is outside Assumption 3)
    assert not check_assumption5(geometry(three_points())).holds
    # a middle point above the regression line breaks <β*, x_k> < y_k for the extreme points
    up = Dataset(three_points().X, np.array([1.1, 3.0, 0.8]))
    assert not check_assumption6(geometry(up)).holds


def test_check_all_lists_every_assumption():
    names = [r.name for r in check_all(assumption3(0.1, 0), eta=0.1)]
    assert names == [f"Assumption {i}" for i in range(1, 7)]
