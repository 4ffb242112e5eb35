"""The Filippov selection rule (:mod:`pwflow.filippov`) against brute force.

The reference enumerates every assignment ``s ∈ {−1, 0, +1}^K`` (leave to a side / stay) and
solves each by plain least squares: independent of the active-set solver and of the rule's
rounds.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisDeprecationWarning, UnsatisfiedAssumption
from hypothesis.extra.numpy import arrays

import pwflow
from pwflow.events import EventKind
from pwflow.filippov import (VELOCITY_RTOL, BranchPolicy, exit_side, parallel_classes, select,
                             select_single, slope_codes, transition)
from pwflow.subgradient import face_slopes
from strategies import general_position, low_rank_rows, matrices

finite = st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False)


def _brute_force(a, u_face, X, r, gamma):
    """All consistent assignments with their ``D`` (stays tangent with η in the box, leaves
    moving to their side), by enumeration and dense least squares."""
    n = X.shape[0]
    K = np.flatnonzero(u_face == 0)
    base = np.where(u_face > 0, 1.0, np.where(u_face < 0, gamma, 0.0))
    out = []
    for s in itertools.product((-1, 0, 1), repeat=K.size):
        s = np.array(s)
        eta = np.where(s > 0, 1.0, gamma)
        stay = s == 0
        b = -((base * r) @ X) / n - (eta[~stay] * r[K[~stay]]) @ X[K[~stay]] / n
        Zs = -(r[K[stay], None] * X[K[stay]]).T / n
        if stay.any():
            A = X[K[stay]] @ Zs
            sol, *_ = np.linalg.lstsq(A, -X[K[stay]] @ b, rcond=None)
            if np.any(sol < gamma - 1e-9) or np.any(sol > 1 + 1e-9):
                continue
            D = b + Zs @ sol
            if np.any(np.abs(X[K[stay]] @ D) > 1e-9 * (1 + np.linalg.norm(b))):
                continue
        else:
            D = b
        v = np.sign(a) * (X[K] @ D)
        if np.any(s[~stay] * v[~stay] <= 0):
            continue
        out.append((s, D))
    return out


@st.composite
def face_problems(draw, min_p: int = 1):
    d = draw(st.integers(min_p + 1, 5))
    p = draw(st.integers(min_p, max(min_p, min(d - 1, 3))))
    n = draw(st.integers(p, p + 4))
    X = draw(arrays(float, (n, d), elements=finite))
    assume(np.all(np.linalg.norm(X, axis=1) > 0.1))
    assume(np.linalg.matrix_rank(X[:p], tol=1e-3) == p)
    r = draw(arrays(float, (n,), elements=finite))
    assume(np.all(np.abs(r[:p]) > 1e-3))
    u = draw(arrays(np.int8, (n,), elements=st.sampled_from([-1, 1])))
    u[:p] = 0
    # a point in the span of the face's points would lie on the face's hyperplanes too (e.g. a
    # duplicate of one), so a side for it is not a face (least squares, not pwflow's test);
    # such faces are test_select_decides_every_implied_hyperplane's
    coef, *_ = np.linalg.lstsq(X[:p].T, X[p:].T, rcond=None)
    assume(np.all(np.linalg.norm(X[p:].T - X[:p].T @ coef, axis=0)
                  > 1e-10 * np.linalg.norm(X[p:], axis=1)))
    a = draw(st.sampled_from([-1.0, 1.0])) * draw(st.floats(0.1, 2.0))
    gamma = draw(st.sampled_from([0.0, 0.1, 0.5]))
    return a, u, X, r, gamma


@given(face_problems())
@settings(suppress_health_check=[HealthCheck.filter_too_much])  # face_problems filters much
def test_selection_is_a_consistent_continuation(prob):
    a, u, X, r, gamma = prob
    sel = select(a, u, X, r, gamma)
    n = X.shape[0]
    D = -((sel.eta * r) @ X) / n
    np.testing.assert_allclose(D, sel.D, atol=1e-12)
    v = np.sign(a) * (X[sel.K] @ sel.D)
    scale = 1e-9 * (1 + np.linalg.norm(D)) * np.linalg.norm(X[sel.K], axis=1)
    stay = sel.signs == 0
    assert np.all(np.abs(v[stay]) <= scale[stay])          # tangent on the staying hyperplanes
    assert np.all(sel.signs[~stay] * v[~stay] > 0)          # leaving ones move to their side
    eta_K = sel.eta[sel.K]
    assert np.all((eta_K >= gamma - 1e-12) & (eta_K <= 1 + 1e-12))
    np.testing.assert_allclose(eta_K[~stay], np.where(sel.signs[~stay] > 0, 1.0, gamma))
    # the brute force finds the same assignment among the consistent ones
    found = _brute_force(a, u, X, r, gamma)
    assert any(np.array_equal(s, sel.signs) for s, _ in found)


@given(face_problems())
@settings(suppress_health_check=[HealthCheck.filter_too_much])  # face_problems filters much
def test_selection_is_the_minimal_norm_element_when_that_is_consistent(prob):
    a, u, X, r, gamma = prob
    sel = select(a, u, X, r, gamma)
    from scipy.optimize import lsq_linear

    n = X.shape[0]
    K = sel.K
    b = -((np.where(u > 0, 1.0, np.where(u < 0, gamma, 0.0)) * r) @ X) / n
    Z = -(r[K, None] * X[K]).T / n
    ref = lsq_linear(Z, -b, bounds=(gamma, 1.0), method="bvls", tol=1e-15).x
    D_ref = b + Z @ ref
    v = np.sign(a) * (X[K] @ D_ref)
    at_hi, at_lo = ref >= 1 - 1e-7, ref <= gamma + 1e-7
    # a normal velocity between rounding and 1e-9 of the field's scale is ambiguous here (the
    # rule resolves it at 1e-11): such draws are not decided by this property
    scale = np.sum(np.abs(r) * np.linalg.norm(X, axis=1)) / n * np.linalg.norm(X[K], axis=1)
    bound = at_hi | at_lo
    assume(not np.any(bound & (np.abs(v) > 1e-13 * scale) & (np.abs(v) < 1e-9 * scale)))
    leave_ok = np.all(v[at_hi] >= -1e-9 * scale[at_hi]) and np.all(v[at_lo] <= 1e-9 * scale[at_lo])
    if leave_ok:  # min-norm is itself consistent: it is the selection
        np.testing.assert_allclose(sel.D, D_ref, atol=1e-7 * (1 + np.linalg.norm(D_ref)))


@pytest.mark.parametrize(
    "r, a, came, want",
    [
        # both one-sided normal velocities positive: from − it crosses, from + it bounces back
        (np.array([-1.0, -1.0]), 1.0, -1, EventKind.CROSSING),
        (np.array([-1.0, -1.0]), 1.0, 1, EventKind.GRAZING),
        (np.array([-1.0, -1.0]), -1.0, 1, EventKind.CROSSING),
        # attracting from both sides → slide (Filippov)
        (np.array([1.0, -1.0]), 1.0, 1, EventKind.ENTER_SLIDING),
    ],
)
def test_one_hyperplane_matches_the_one_sided_velocities(r, a, came, want):
    X = np.array([[1.0, 0.0], [1.0, 1.0]])
    u_face = np.array([0, 1], dtype=np.int8)
    sel = select(a, u_face, X, r, 0.0)
    D = lambda eta: -(eta * r[0] * X[0] + r[1] * X[1]) / 2  # noqa: E731
    vp, vm = a * D(1.0) @ X[0], a * D(0.0) @ X[0]
    expect = 0 if vp * vm <= 0 else int(np.sign(vp))
    assert sel.signs[0] == expect
    assert transition(np.int8(came), sel.signs[0]) == want


def test_repulsive_sliding_is_a_branch_point_and_the_policy_decides():
    # one hyperplane, a r_k < 0 with the free slope inside [γ, 1]: repulsive
    X = np.array([[1.0, 0.0], [0.3, 1.0]])
    r = np.array([-1.0, 0.2])
    u = np.array([0, 1], dtype=np.int8)
    a = 1.0
    assert a * r[0] < 0
    sel = select(a, u, X, r, 0.0)
    assert sel.signs[0] == 0 and sel.branch[0]
    gd = select(a, u, X, r, 0.0, policy=BranchPolicy.GRADIENT_DESCENT)
    assert gd.signs[0] == -1 and gd.branch[0]
    # both one-sided continuations are consistent (the independent enumeration agrees)
    sides = {int(s[0]) for s, _ in _brute_force(a, u, X, r, 0.0)}
    assert sides == {-1, 0, 1}
    # attractive (a r_k > 0): not a branch point
    assert not select(-a, u, X, r, 0.0).branch[0]


def test_gd_policy_stays_where_gradient_descents_side_has_no_normal_velocity():
    # repulsive (a r_0 < 0), but the inactive side's field is D = 0 (the neuron is inactive on
    # every other point, γ = 0): gradient descent's side (η = 0 < 1/2: "−") does not move it
    # off the hyperplane, so its iterates stay there, frozen.  Found by the thorough profile
    # of test_differential (d = 4); the policy used to take the other side ("+") instead.
    X = np.array([[1.0, 0.0], [0.3, 1.0]])
    r = np.array([-1.0, 0.2])
    u = np.array([0, -1], dtype=np.int8)
    a = 1.0
    gd = select(a, u, X, r, 0.0, policy=BranchPolicy.GRADIENT_DESCENT)
    assert gd.branch[0]  # "+" is a consistent continuation as well
    assert gd.signs[0] == 0 and np.array_equal(gd.D, np.zeros(2))
    assert {int(s[0]) for s, _ in _brute_force(a, u, X, r, 0.0)} == {0, 1}


@given(face_problems(), st.booleans())
@settings(suppress_health_check=[HealthCheck.filter_too_much])  # (face_problems' assumes:
# the thorough profile's random draws met the health check, 9 kept of 59, session 57)
def test_exit_side_is_the_side_the_velocity_points_to_just_after(prob, upper):
    """At a slope reaching a bound, the first-order rule agrees with the velocity of the
    minimal-norm field a moment later (the slope pushed past the bound)."""
    a, u, X, r, gamma = prob
    k = int(np.flatnonzero(u == 0)[0])
    u1 = u.copy()
    u1[u == 0] = np.where(np.arange(np.sum(u == 0)) == 0, 0, 1)  # one free slope: k
    n = X.shape[0]
    eta = np.where(u1 > 0, 1.0, np.where(u1 < 0, gamma, 0.0))
    b = -((eta * r) @ X) / n
    z = -(r[k] / n) * X[k]
    bound = 1.0 if upper else gamma
    # shift b so that η* sits just beyond the bound (by 1e-3 of the box)
    target = bound + (1e-3 if upper else -1e-3) * (1 - gamma + 1e-3)
    b = b - (target + (b @ z) / (z @ z)) * z
    eta_star = -(b @ z) / (z @ z)
    assert (eta_star > 1) if upper else (eta_star < gamma)
    v = np.sign(a) * ((b + bound * z) @ X[k])
    assert exit_side(np.sign(a), r[k], upper) == np.sign(v)


@given(st.floats(0.0, 1.0), st.sampled_from([0.0, 0.1, 0.5]))
def test_gd_side_is_the_majority_side_of_the_chattering(eta, gamma):
    """``+`` iff gradient descent spends more than half its chattering steps on the active
    side, a fraction ``(η − γ)/(1 − γ)`` of them."""
    from pwflow.filippov import gd_side

    eta = gamma + eta * (1 - gamma)
    frac = (eta - gamma) / (1 - gamma)
    assume(abs(frac - 0.5) > 1e-9)
    assert gd_side(eta, gamma) == (1 if frac > 0.5 else -1)


@given(face_problems(min_p=2))
@settings(suppress_health_check=[HealthCheck.filter_too_much])  # run alone, the health check
# counted 50 draws filtered for 7 kept (in the full suite it passed): face_problems' own filter
def test_two_slopes_reaching_their_bounds_at_once_leave_both(prob):
    """Leaving two hyperplanes at once: each goes to its KKT side (exit_side), the others are
    decided by the rule, and the result is a consistent continuation for the remaining ones."""
    a, u, X, r, gamma = prob
    K = np.flatnonzero(u == 0)  # the first two rows are independent (face_problems)
    exits = {int(K[0]): True, int(K[1]): False}
    sel = select(a, u, X, r, gamma, exits=exits)
    assert sel.signs[0] == exit_side(np.sign(a), r[K[0]], True)
    assert sel.signs[1] == exit_side(np.sign(a), r[K[1]], False)
    stay = sel.signs == 0
    v = np.sign(a) * (X[sel.K] @ sel.D)
    scale = 1e-9 * (1 + np.linalg.norm(sel.D)) * np.linalg.norm(X[sel.K], axis=1)
    assert np.all(np.abs(v[stay]) <= scale[stay])


@st.composite
def parallel_face_problems(draw):
    """:func:`face_problems` with signed multiples of the face's points appended (they share
    its hyperplanes: classes of parallel points, N3)."""
    a, u, X, r, gamma = draw(face_problems())
    p = int(np.sum(u == 0))
    extra = draw(st.lists(st.tuples(st.integers(0, p - 1),
                                    st.sampled_from([-2.0, -1.0, -0.5, 0.5, 2.0])),
                          min_size=0, max_size=3))
    rows = [c * X[k] for k, c in extra]
    rx = draw(arrays(float, (len(rows),), elements=finite))
    if rows:
        X = np.vstack([X, rows])
        r = np.concatenate([r, rx])
        u = np.concatenate([u, np.zeros(len(rows), np.int8)])
    return a, u, X, r, gamma


@pytest.mark.parametrize("at_rest", [False, True])
@pytest.mark.parametrize("policy", list(BranchPolicy))
@given(prob=parallel_face_problems())
def test_every_policy_gives_a_consistent_continuation(prob, policy, at_rest):
    """Whatever the policy decides at branch points, the held hyperplanes are tangent to the
    field that follows, the left ones move to their side, and parallel points are held or
    left together with tied slopes (the GD policy once held a class whose slope sat at a
    bound after it had left a branch hyperplane)."""
    a, u, X, r, gamma = prob
    sel = select(a, u, X, r, gamma, policy=policy, at_rest=at_rest)
    n = X.shape[0]
    D = -((sel.eta * r) @ X) / n
    np.testing.assert_allclose(D, sel.D, atol=1e-12)
    v = np.sign(a) * (X[sel.K] @ sel.D)
    scale = 1e-9 * (1 + np.sum(np.abs(r) * np.linalg.norm(X, axis=1)) / n)
    scale = scale * np.linalg.norm(X[sel.K], axis=1)
    stay = sel.signs == 0
    assert np.all(np.abs(v[stay]) <= scale[stay]), (sel.signs, v)
    assert np.all(sel.signs[~stay] * v[~stay] > -scale[~stay]), (sel.signs, v)
    eta_K = sel.eta[sel.K]
    assert np.all((eta_K >= gamma - 1e-12) & (eta_K <= 1 + 1e-12))
    XK = X[sel.K] / np.linalg.norm(X[sel.K], axis=1)[:, None]
    cos = XK @ XK.T
    for i, j in zip(*np.nonzero(np.abs(cos) >= 1 - 1e-12)):
        o = np.sign(cos[i, j])
        assert sel.signs[j] == o * sel.signs[i]
        tied = eta_K[i] if o > 0 else 1 + gamma - eta_K[i]
        assert abs(eta_K[j] - tied) <= 1e-9


# ---------------------------------------------------------------------------- implied hyperplanes
def test_implied_hyperplanes_are_those_containing_the_face():
    """x_4 lies in the plane of x_2 and x_3 (d = 4): a neuron on both their hyperplanes is on
    x_4's.  Points in general position imply nothing; a parallel point is implied."""
    from pwflow.filippov import implied_hyperplanes

    X = np.array([[0.0, 0.0, -0.375, -0.625], [0.0, -0.375, -0.75, -1.5],
                  [-0.625, -0.625, 0.0, 0.0], [1.375, 1.0, 0.0, 0.0], [1.75, -1.25, 0.0, 0.0]])
    u = np.array([-1, -1, 0, 0, 1], dtype=np.int8)
    assert implied_hyperplanes(X, u).tolist() == [4]
    assert implied_hyperplanes(X, np.array([-1, -1, 0, 1, 1], dtype=np.int8)).size == 0
    Xp = np.vstack([X, -2.5 * X[2]])
    assert implied_hyperplanes(Xp, np.array([-1, -1, 0, 1, 1, 1], dtype=np.int8)).tolist() == [5]
    assert implied_hyperplanes(X, np.ones(5, dtype=np.int8)).size == 0


@settings(suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(st.integers(3, 6), st.integers(1, 3), st.data(), st.sampled_from([-1.0, 1.0]))
def test_select_decides_every_implied_hyperplane(d, k, data, a):
    """Drawn data with one point in the span of the face's points: :func:`select` puts it in
    ``K`` and the continuation keeps it consistent (staying on the face's hyperplanes keeps
    the neuron on the implied one); a point off the span is left out."""
    from pwflow.filippov import implied_hyperplanes

    k = min(k, d - 1)
    XK = data.draw(matrices(k, d), label="XK")
    assume(np.linalg.matrix_rank(XK) == k and np.min(np.linalg.norm(XK, axis=1)) > 0.1)
    coef = data.draw(matrices(k, 0), label="coef")
    inside = coef @ XK
    assume(np.linalg.norm(inside) > 0.1)
    others = data.draw(matrices(2, d), label="others")
    X = np.vstack([XK, inside, others])
    # the others off the span (else they are implied too)
    off = others - others @ np.linalg.pinv(XK) @ XK
    assume(np.min(np.linalg.norm(off, axis=1)) > 0.1)
    n = X.shape[0]
    w = data.draw(matrices(d, 0), label="w")
    w -= XK.T @ np.linalg.lstsq(XK.T, w, rcond=None)[0]  # onto the face's hyperplanes
    s = X @ w
    assume(np.linalg.norm(w) > 0.1 and np.min(np.abs(s[k + 1:])) > 1e-3)
    u = np.sign(s).astype(np.int8)
    u[:k] = 0
    u[k] = 1
    assert k in implied_hyperplanes(X, u).tolist()
    assert implied_hyperplanes(X, u).tolist() == [k]
    r = data.draw(matrices(n, 0), label="r")
    sel = select(a, u, X, r, 0.0)
    assert k in sel.K.tolist()
    stays = sel.signs[: k] == 0
    if np.all(stays):
        assert sel.signs[list(sel.K).index(k)] == 0


def test_a_neuron_with_a_zero_that_cannot_move_stays_on_all_its_hyperplanes():
    """``a = 0`` and ``w ⟂ span(x_1, x_2, x_3)``: ``dw/dt = a D = 0`` and ``da/dt = <w, D> = 0``
    for every slope, a fixed point.  It was read as moving with the default sign ``a > 0``,
    leaving a hyperplane it lies on for good, and logged as a branch point."""
    X = np.array([[1.0, 0.0, 0.0], [0.5, 1.0, 0.0], [-1.0, 0.3, 0.0]])
    r = np.array([0.7, -1.1, 0.4])
    w = np.array([0.0, 0.0, 1.0])
    for gamma in (0.0, 0.3):
        for policy in BranchPolicy:
            sel = select(0.0, np.zeros(3, np.int8), X, r, gamma, w=w, policy=policy, at_rest=True)
            assert sel.signs.tolist() == [0, 0, 0] and not np.any(sel.branch)
            assert abs(w @ sel.D) == 0.0
    tr = pwflow.simulate(pwflow.Dataset(X, np.array([1.0, -1.0, 0.5])),
                         pwflow.from_arrays(np.array([w, [0.3, 0.2, 0.1]]), np.array([0.0, 0.4])),
                         5.0, gamma=0.0)
    assert tr.status == 0, tr.message
    mine = tr.events["neuron"] == 0
    assert np.all(tr.events["kind"][mine] == pwflow.EventKind.INITIAL_FACE)
    assert np.array_equal(tr.W[-1][0], w) and tr.a[-1][0] == 0.0


@given(data=st.data(), gamma=st.sampled_from([0.0, 0.1, 0.5]))
def test_at_a_zero_with_no_first_order_motion_the_residual_rates_orient(data, gamma):
    """``a = 0`` and ``<w, b> = 0`` (the first-order rate of ``a`` vanishes) on the
    hyperplanes of ``x_0, x_1``: the sign ``a`` takes next is that of ``<w, dD/dt>``, set by
    ``r_rate``, and the neuron then goes where a neuron with that sign of ``a`` goes; with no
    ``r_rate`` (or ``<w, dD/dt> = 0``) it is held on both as a fixed point."""
    X = data.draw(matrices(5, 3))
    assume(np.linalg.matrix_rank(X[:2], tol=0.1) == 2)
    w = np.cross(X[0], X[1])
    w /= np.linalg.norm(w)
    z = X[2:] @ w
    assume(np.min(np.abs(z)) > 0.05)
    X[4] *= np.sign(z[2])  # x_4 active (its slope 1): it balances <w, b>
    z = X[2:] @ w
    u = np.sign(X @ w).astype(np.int8)
    u[:2] = 0
    eta = np.where(u > 0, 1.0, gamma)
    r = data.draw(matrices(5, 0))
    r[4] = -(r[2] * eta[2] * z[0] + r[3] * eta[3] * z[1]) / (eta[4] * z[2])  # <w, b> = 0
    assume(abs(r[4]) < 10)
    r_rate = data.draw(matrices(5, 0))
    lead = -(eta * r_rate)[2:] @ z / 5  # <w, dD/dt>
    assume(abs(lead) > 1e-3)
    held = select(0.0, u, X, r, gamma, w=w)
    assert held.signs.tolist() == [0, 0]
    oriented = select(0.0, u, X, r, gamma, w=w, r_rate=r_rate)
    expected = select(float(np.sign(lead)), u, X, r, gamma, w=w)
    assert oriented.signs.tolist() == expected.signs.tolist()
    np.testing.assert_array_equal(oriented.D, expected.D)
    other = select(0.0, u, X, r, gamma, w=w, r_rate=-r_rate)
    assert other.signs.tolist() == select(-float(np.sign(lead)), u, X, r, gamma, w=w).signs.tolist()


@given(data=st.data(), gamma=st.sampled_from([0.0, 0.1, 0.5]),
       a=st.sampled_from([-1.0, 0.0, 1.0]), policy=st.sampled_from(list(BranchPolicy)),
       balance=st.booleans())
def test_select_single_is_select_on_one_hyperplane(data, gamma, a, policy, balance):
    """The vectorised one-hyperplane rule (the batch's fast path) decides as the general
    rule: side, slope and branch flag, also at ``a = 0`` (oriented by ``<w, b>``; held as a
    fixed point where that is zero, drawn with ``balance``)."""
    d = data.draw(st.integers(2, 5))
    X = data.draw(matrices(4, d))
    assume(np.min(np.linalg.norm(X, axis=1)) > 0.1)
    w = data.draw(matrices(1, d))[0]
    w = w - (w @ X[0]) / (X[0] @ X[0]) * X[0]  # on x_0's hyperplane
    assume(np.linalg.norm(w) > 0.1)
    z = X[1:] @ w
    assume(np.min(np.abs(z)) > 1e-2 * np.linalg.norm(X[1:], axis=1).min())
    r = data.draw(matrices(4, 0))
    assume(abs(r[0]) > 1e-3)
    u = np.sign(X @ w).astype(np.int8)
    u[0] = 0
    eta = face_slopes(u, gamma)
    if balance and a == 0.0:  # <w, b> = 0: no first-order motion of a
        assume(np.max(np.abs(eta[1:] * z)) > 1e-2)
        k = 1 + int(np.argmax(np.abs(eta[1:] * z)))
        rest = [i for i in range(1, 4) if i != k]
        r[k] = -(eta[rest] * r[rest]) @ z[[i - 1 for i in rest]] / (eta[k] * z[k - 1])
    b = -((eta * r) @ X) / 4
    sel = select(a, u, X, r, gamma, w=w, policy=policy)
    signs, eta0, branch = select_single(np.array([a]), b[None], X[:1], r[:1], 4, gamma,
                                        policy, w=w[None])
    assert signs.tolist() == sel.signs.tolist()
    assert branch.tolist() == sel.branch.tolist()
    np.testing.assert_allclose(eta0, sel.eta[:1], rtol=1e-12, atol=1e-12)


@example(at="upper", free=0.0, r=1.0, nudge=1e-13, gamma=0.0, a=1.0)  # η* = 1 + 1e-13
@example(at="lower", free=0.0, r=-1.0, nudge=-1e-13, gamma=0.2, a=-1.0)  # η* = γ − 1e-13
@given(at=st.sampled_from(["upper", "lower", "anywhere"]), free=st.floats(-2.0, 3.0),
       r=st.floats(-2.0, 2.0).filter(lambda v: abs(v) > 1e-3),
       nudge=st.sampled_from([0.0, 1e-14, -1e-14, 1e-13, -1e-13, 1e-6, -1e-6, 0.3, -0.3]),
       gamma=st.sampled_from([0.0, 0.1, 0.5]), a=st.sampled_from([-1.0, 1.0]))
def test_slope_codes_read_a_bound_as_crossed_only_beyond_the_velocity_tolerance(
        at, free, r, nudge, gamma, a):
    """One free slope on ``x_k = (1, 0)`` with ``η*`` at a bound or anywhere, nudged, and a
    fixed part ``b`` with ``−<b, z>/‖z‖² = η*`` (``n = 1``): the regime code is the side of
    ``[γ, 1]`` where ``η*`` lies exactly where the clipped slope's normal velocity exceeds
    the tolerance, and 0 otherwise; a neuron the entry rule (:func:`select_single`, rounding
    tolerance) keeps on the hyperplane is never read as beyond a bound with that tolerance or
    a larger one (no exit right after an entry)."""
    eta_star = {"upper": 1.0, "lower": gamma, "anywhere": free}[at] + nudge
    x = np.array([1.0, 0.0])
    z = -r * x
    b = np.array([eta_star * r, 1.0])  # −<b, z>/‖z‖² = η* (to rounding)
    eta = min(max(eta_star, gamma), 1.0)
    v = (b + eta * z) @ x
    rounding = VELOCITY_RTOL * (np.linalg.norm(b) + np.linalg.norm(z)) * np.linalg.norm(x)
    for tol in (0.0, rounding, 10 * rounding, 1e-3):
        code = int(slope_codes(eta_star, v, tol, gamma))
        if abs(v) <= tol:
            assert code == 0
        else:
            assert code == (1 if eta_star > 1 else -1 if eta_star < gamma else 0)
    signs, _, _ = select_single(np.array([a]), b[None], x[None], np.array([r]), 1, gamma)
    if signs[0] == 0:
        for tol in (rounding, 1e-3):
            assert slope_codes(eta_star, v, tol, gamma) == 0
    assert slope_codes(np.nan, 1.0, 0.0, gamma) == 0  # z = 0: no η*, no code from it


def test_hyperplanes_held_imply_none_of_those_left():
    """A neuron on four hyperplanes of rank 3 (x_3 = −4 x_2 − x_0) whose exit is read on x_2
    (r_2 = 0): leaving x_2 alone while x_0 and x_3 are held is no motion of w at all."""
    from pwflow.filippov import implied_hyperplanes

    X = np.array([[0.0, 0.0, 0.0, 0.125], [0.0, 0.0, 0.125, 0.0], [0.125, 0.0, 0.0, 0.0],
                  [-0.5, 0.0, 0.0, -0.125], [0.75, -0.25, 0.0, 0.0]])
    r = np.array([-0.6315789473684, 0.0, 0.0, -1.0 / 3.0, -2.0 / 9.0])
    u = np.array([0, 0, 0, 0, 1], dtype=np.int8)
    w = np.array([0.0, -0.94, 0.0, 0.0])
    sel = select(-0.94, u, X, r, 0.0, exits={2: False}, w=w)
    u_new = u.copy()
    u_new[sel.K] = sel.signs
    # x_2 leaves to −, so <w, x_3> = −4 <w, x_2> − <w, x_0> grows: x_3 leaves to + with it
    assert sel.signs.tolist() == [0, 0, -1, 1]
    assert not np.any(np.isin(implied_hyperplanes(X, u_new), sel.K)), u_new


#: session 46's case (``tests/data/dependent_exit_at_a_root.npz``, found by a campaign of
#: sparse dyadic data): a neuron (a < 0) slides on x_1, x_3, x_4 (rank 2) with every slope
#: at γ = 0, until x_1's reaches γ at r_0's root; r_0 = 0 there (resolved)
ROOT_EXIT_X = np.array([[-2.0, 0.0, 0.0, 0.25], [0.0, 0.0, -0.375, -2.0], [2.0, 0.0, -0.5, 0.75],
                        [0.0, 0.0, -2.0, -2.0], [0.0, 0.0, 0.5, 0.0], [1.0, 0.0, -1.0, -1.625]])
ROOT_EXIT_R = np.array([0.0, -0.5090922117041929, -0.1553223373213298, -0.10622111478791346,
                        -0.08284556781022155, 0.6420931424331635])


def test_a_dependent_exit_takes_along_only_hyperplanes_that_can_leave_to_that_side():
    """The exit from x_1 above is not closed (x_3 and x_4 held imply x_1): the hyperplanes
    held at a bound of their slope go with it (``_depart_together``).  The minimal-norm
    departure sent x_4 (slope at γ, ``a r_4 > 0``: it can leave only to its inactive side,
    :func:`exit_side`) to its active side, where its normal velocity points back (the run
    then grazed x_1, x_3, x_4 every 2e-13: Zeno, status −2).  Now x_4 is held and the
    departure solved again: x_1 and x_3 leave to −, x_4 stays, as gradient descent does
    (``tests/test_integrator.py::test_a_dependent_exit_at_a_residuals_root_is_gradient_descents``);
    on that face x_4's normal velocity is 0, not against its side."""
    u = np.array([1, 0, -1, 0, 0, -1], dtype=np.int8)
    w = np.array([-0.2469321840260671, -0.25, 0.0, 0.0])
    a = -0.3513908130669941
    sel = select(a, u, ROOT_EXIT_X, ROOT_EXIT_R, 0.0, exits={1: False}, w=w)
    assert sel.K.tolist() == [1, 3, 4]
    assert sel.signs.tolist() == [-1, -1, 0]
    assert abs(np.sign(a) * ROOT_EXIT_X[4] @ sel.D) <= 1e-15


#: session 54's case: the data of ``tests/data/span_lemma1_drift.npz`` (R^3; x_0, x_3 = −x_0,
#: x_4 and x_7 in the plane e_3 = 0), neuron 4 on the e_3 axis (a > 0) sliding on those four
#: hyperplanes, at t = 7.4119 where the free slopes reach a vertex of their box (η_0 = γ = 0,
#: η_3 = η_7 = 1): the residuals there
OPPOSITE_EXIT_R = np.array([0.6912959759282404, -0.04382677992599179, -0.18975678232838433,
                            -0.3007412669145441, 0.3399238246636258, -0.01205013441882724,
                            0.06495565675382534, 0.1906725632854092, -0.04382677992599179])


def test_a_dependent_departure_leaves_a_class_of_opposite_points_whole():
    """The departure from the vertex above is along ``(1, 2, 0)`` (the minimal-norm ``D``'s
    part off the axis, 1.8e-12 against a resolution of 8e-12 on x_0, 9e-12 on x_7): it leaves
    x_0 to −, x_3 = −x_0 to +, x_7 to + and slides on x_4 ⟂ (1, 2, 0), the signs of
    ``X_K (1, 2, 0)`` — a face with room for a ``w``, and gradient descent's map from rest.
    ``_depart_together`` read the class {x_0, x_3} one member at a time (x_3's own residual
    says its slope at 1 can leave only to −) and held x_3 while x_0 left: ``x_0`` on − and
    on its own hyperplane at once, a face no ``w`` lies on, whose ray pointed away from the
    neuron; the run read it as at ``w = 0`` and moved it there (Lemma 1 broken by 0.139,
    :func:`test_differential.test_the_span_problem_of_a_rank_deficient_draw_keeps_lemma1`)."""
    from pathlib import Path

    X = np.load(Path(__file__).parent / "data" / "span_lemma1_drift.npz")["X"]
    u = np.array([0, -1, 1, 0, 0, -1, 1, 0, -1], dtype=np.int8)
    w = np.array([-9.529260380355498e-18, -6.788724813846224e-19, -2.630733798477424e-01])
    sel = select(0.6614449904657617, u, X, OPPOSITE_EXIT_R, 0.0, exits={}, w=w)
    assert sel.K.tolist() == [0, 3, 4, 7]
    expected = np.sign(np.round(X[sel.K] @ np.array([1.0, 2.0, 0.0]), 12)).astype(np.int8)
    assert expected.tolist() == [-1, 1, 0, 1]
    assert sel.signs.tolist() == expected.tolist()


def test_an_exit_whose_rule_gives_no_face_takes_the_face_of_its_departure(monkeypatch):
    """Session 54's integer campaign, ``'gd'`` policy
    (``tests/data/gd_dependent_exit_fallback.npz``: the data embedded in R^5): a neuron on
    the ray of x_0, x_4, x_6, x_7 (x_6 = x_0 − x_4, x_7 = −x_0: rank 2 in R^3) reads the
    class {x_0, x_7} at its bounds.  The rule's answer leaves x_0 to − and x_7 to + while
    holding x_4 and x_6, which imply x_0: no ``w`` has those signs (a linear programme finds
    no direction).  ``select`` then takes the face of the departure ``δD ∝ −x_0``: the signs
    of ``X_K (−x_0)``, every hyperplane left.  With the rule's answer kept (``_is_face``
    patched to accept it) the run left x_0 and x_7 alone and ended 1.7e-3 from the
    unembedded run (``test_differential.py::test_an_embedded_run_whose_exit_rule_gives_no_
    face_is_the_same_run``)."""
    from pathlib import Path

    from scipy.optimize import linprog

    from pwflow import filippov

    z = np.load(Path(__file__).parent / "data" / "gd_dependent_exit_fallback.npz")
    X, u = z["sel_X"], z["sel_u"].astype(np.int8)
    K = np.flatnonzero(u == 0)
    assert K.tolist() == [0, 4, 6, 7]
    rule = np.array([-1, 0, 0, 1])
    lp = linprog(np.zeros(X.shape[1]), A_ub=-(rule[[0, 3], None] * X[[0, 7]]), b_ub=-np.ones(2),
                 A_eq=X[[4, 6]], b_eq=np.zeros(2), bounds=(None, None), method="highs")
    assert lp.status == 2  # infeasible: not a face
    expected = np.sign(np.round(X[K] @ -X[0], 9)).astype(np.int8)
    assert expected.tolist() == [-1, -1, -1, 1]
    kw = dict(exits={0: False, 7: True}, policy=BranchPolicy.GRADIENT_DESCENT, w=z["sel_w"])
    sel = select(float(z["sel_a"]), u, X, z["sel_r"], float(z["gamma"]), **kw)
    assert sel.signs.tolist() == expected.tolist()
    monkeypatch.setattr(filippov, "_is_face", lambda *args: True)
    kept = select(float(z["sel_a"]), u, X, z["sel_r"], float(z["gamma"]), **kw)
    assert kept.signs.tolist() == rule.tolist()  # what the rule alone answers


@st.composite
def dependent_zero_residual_exits(draw):
    """:func:`face_problems` with one more point on the face, in the span of its points and
    with ``r = 0`` (its slope has no KKT multiplier), flagged as an exit at a drawn bound."""
    a, u, X, r, gamma = draw(face_problems(min_p=2))
    K = np.flatnonzero(u == 0)
    c = draw(arrays(float, (K.size,), elements=st.floats(-2.0, 2.0).filter(lambda v: abs(v) > 0.1)))
    x_dep = c @ X[K]
    assume(np.linalg.norm(x_dep) > 0.1)
    X = np.vstack([X, x_dep])
    r = np.append(r, 0.0)
    u = np.append(u, np.int8(0))
    return a, u, X, r, gamma, draw(st.booleans())


@settings(suppress_health_check=[HealthCheck.filter_too_much])
@given(dependent_zero_residual_exits())
def test_exit_without_multiplier_goes_where_the_motion_goes(prob):
    """An exit read on a hyperplane whose ``r_k = 0`` (its slope has no KKT multiplier, so the
    bound it is said to reach tells nothing) goes to the side of the minimal-norm motion (brute
    force, :func:`_brute_force`'s least squares), not to the bound's side; the face reached
    must be one that some ``w`` lies on.  (Thorough profile, d = 4: the exit was read on
    ``x_1`` with ``r_1 = 0``, dependent on ``x_0, x_2``; it went to its bound's side while the
    motion went to the other, re-entered at once, and drifted off by 1.4e-5.)"""
    from scipy.optimize import lsq_linear

    from pwflow.filippov import implied_hyperplanes

    a, u, X, r, gamma, upper = prob
    n = X.shape[0]
    K = np.flatnonzero(u == 0)
    b = -((np.where(u > 0, 1.0, np.where(u < 0, gamma, 0.0)) * r) @ X) / n
    Z = -(r[K, None] * X[K]).T / n
    D_star = b + Z @ lsq_linear(Z, -b, bounds=(gamma, 1.0), method="bvls", tol=1e-15).x
    v = np.sign(a) * float(X[-1] @ D_star)
    scale = np.sum(np.abs(r) * np.linalg.norm(X, axis=1)) / n * np.linalg.norm(X[-1])
    assume(abs(v) > 1e-9 * scale)  # a clear motion (else the bound's side is the convention)
    sel = select(a, u, X, r, gamma, exits={n - 1: upper})
    assert sel.signs[-1] == np.sign(v)
    u_new = u.copy()
    u_new[sel.K] = sel.signs
    assert not np.any(np.isin(implied_hyperplanes(X, u_new), sel.K)), u_new


def test_two_orthants_left_into_from_rest_are_a_branch_under_either_policy():
    """Degenerate campaign (camp9): d = 5, six data points of rank 4 and a neuron (a < 0)
    orthogonal to all of them.  Leaving every hyperplane is consistent into two orthants
    (x_0, x_1 to (+, −) or to (−, +)); the minimal-norm rule took the first and logged no
    branch, gradient descent (σ'(0) = γ) takes the second.  Both policies now flag x_0 and x_1
    (the minimal-norm one keeps its continuation)."""
    X = np.array([[-0.625, 0.0, 0.5, 0.625, 0.75], [0.25, 0.0, -0.25, -0.5, -0.25],
                  [0.25, 0.75, -0.25, 0.25, -0.25], [-0.375, -1.0, 0.75, 0.75, -0.125],
                  [0.25, 0.25, -0.5, 0.25, 0.25], [0.5, 0.5, -0.5, -0.5, -0.5]])
    y = np.array([-1.0, 1.0, -1.0, 1.0, 1.0, -1.0])
    W = np.array([[0.0546875, 0.046875, 0.0546875, -0.0078125, 0.015625],
                  [0.125, -0.03125, 0.0625, 0.03125, 0.0],
                  [0.109375, 0.00390625, 0.03125, 0.03125, 0.015625],
                  [0.1328125, 0.0078125, 0.09375, -0.0078125, 0.0546875]])
    a = np.array([0.078125, -0.078125, 0.0, -0.109375])
    gamma = 0.1
    S = X @ W.T
    h = np.where(S > 0, S, gamma * S) @ a
    r = pwflow.model.LOSSES["logistic"].derivative(h, y)
    assert np.all(S[:, 3] == 0.0)
    u = np.zeros(6, dtype=np.int8)
    mn = select(a[3], u, X, r, gamma, w=W[3], at_rest=True)
    gd = select(a[3], u, X, r, gamma, w=W[3], at_rest=True,
                policy=BranchPolicy.GRADIENT_DESCENT)
    for sel in (mn, gd):  # both consistent: every hyperplane left, to the side of its motion
        assert np.all(sel.signs != 0)
        assert np.all(sel.signs * np.sign(a[3] * (X @ sel.D)) > 0)
    assert mn.signs.tolist() == [1, -1, 1, -1, 1, 1]
    assert gd.signs.tolist() == [-1, 1, 1, -1, 1, 1]
    assert mn.branch.tolist() == gd.branch.tolist() == [True, True, False, False, False, False]


# ------------------------------------------------------------ enumeration over realisable patterns
@st.composite
def enumeration_problems(draw):
    """Inputs of :func:`pwflow.filippov._enumerate` on low-rank hyperplanes ``K``."""
    from pwflow.filippov import _zero_tol

    XK = draw(low_rank_rows(d=st.integers(2, 6)))
    p, d = XK.shape
    n = p + draw(st.integers(0, 3))
    rK = draw(arrays(float, (p,), elements=finite))
    b = draw(arrays(float, (d,), elements=finite)) / n
    Zrows = -(rK[:, None] * XK) / n
    gamma = draw(st.sampled_from([0.0, 0.1, 0.5]))
    s_a = draw(st.sampled_from([-1.0, 1.0]))
    tol = _zero_tol(b, Zrows, XK)
    return s_a, b, Zrows, XK, gamma, tol


def _rounding_leave_case():
    """Hypothesis 6.170: residuals ~1e-229 make every normal velocity ~1e-232; holding
    ``x_0`` and ``x_2`` while "leaving" ``x_5 = x_0 + x_2`` passed as consistent (``v > 0``),
    though no ``w`` does that; a departure must now exceed the rounding."""
    from pwflow.filippov import _zero_tol

    XK = np.array([[0.25, 0, 0], [0.25, 0, 0], [0, 0, 0.25], [0.25, 0, 0], [0.25, 0, 0],
                   [0.25, 0, 0.25]])
    Zrows = -4.4e-232 * (XK > 0)
    b = np.array([0.0, 1 / 6, 0.0])
    return -1.0, b, Zrows, XK, 0.0, _zero_tol(b, Zrows, XK)


@example(_rounding_leave_case())
@given(enumeration_problems())
def test_pruned_enumeration_finds_the_minimum_of_the_plain_one(prob):
    """The depth-first search over realisable sign patterns returns what the plain ``3^classes``
    enumeration returns (the consistent assignment of least ``‖D‖``, the first one on ties), and
    every consistent assignment's pattern is a face of the arrangement (the fact the pruning
    stands on)."""
    from pwflow.cones import face_point
    from pwflow.filippov import _assignment, _enumerate

    s_a, b, Zrows, XK, gamma, tol = prob
    p = XK.shape[0]
    rep, orient = parallel_classes(XK)
    signs0 = np.zeros(p, dtype=np.int8)
    forced = np.zeros(p, dtype=bool)
    heads = np.flatnonzero(rep == np.arange(p))
    best = None
    for choice in itertools.product((0, -1, 1), repeat=heads.size):
        choice = np.array(choice, dtype=np.int8)
        found = _assignment(s_a, b, Zrows, XK, signs0, forced, gamma, tol, rep, orient, heads,
                            choice)
        if found is None:
            continue
        assert face_point(XK[heads], choice) is not None, (choice, s_a * (XK @ found[3]))
        if best is None or found[0] < best[0] * (1 - 1e-12):
            best = found
    got = _enumerate(s_a, b, Zrows, XK, signs0, forced, gamma, tol, rep, orient)
    if best is None:
        assert got is None
    else:
        assert got is not None
        np.testing.assert_array_equal(got[0], best[1])
        np.testing.assert_allclose(got[2], best[3], atol=1e-12)


@st.composite
def origin_enumeration_problems(draw):
    """Inputs of :func:`pwflow.filippov._enumerate` as :func:`~pwflow.filippov.select` makes
    them, mostly at ``w = 0`` (every hyperplane held, full rank; integer data for exact
    coincidences), sometimes on part of the hyperplanes, with exits (forced signs) or not."""
    from pwflow.filippov import _field_parts, _zero_tol

    d = draw(st.integers(2, 5))
    n = draw(st.integers(d, 7))
    integer = draw(st.booleans())
    elements = st.integers(-2, 2).map(float) if integer else finite
    X = draw(arrays(float, (n, d), elements=elements))
    assume(np.all(np.linalg.norm(X, axis=1) > 0.1))
    r = draw(arrays(float, (n,), elements=finite))
    u_face = np.zeros(n, np.int8)
    if draw(st.booleans()):  # part of the hyperplanes (the others on a side)
        u_face = draw(arrays(np.int8, (n,), elements=st.sampled_from([-1, 0, 0, 1])))
        assume(np.any(u_face == 0))
    K = np.flatnonzero(u_face == 0)
    gamma = draw(st.sampled_from([0.0, 0.1, 0.5]))
    b, Zrows = _field_parts(u_face, K, X, r, gamma)
    rep, orient = parallel_classes(X[K])
    signs0 = np.zeros(K.size, np.int8)
    forced = np.zeros(K.size, bool)
    singles = [int(h) for h in np.flatnonzero(rep == np.arange(K.size))
               if np.count_nonzero(rep == h) == 1]
    for h in draw(st.lists(st.sampled_from(singles), max_size=2, unique=True)
                  if singles else st.just([])):
        forced[h], signs0[h] = True, draw(st.sampled_from([-1, 1]))
    s_a = draw(st.sampled_from([-1.0, 1.0]))
    return s_a, b, Zrows, X[K], signs0, forced, gamma, _zero_tol(b, Zrows, X[K]), rep, orient


@given(prob=origin_enumeration_problems())
def test_enumeration_pruned_by_the_velocities_reach_is_the_full_search(prob):
    """Session 41: the search skips a partial assignment whose assigned hyperplanes'
    velocities no slopes in the box can make consistent (:meth:`VelocityReach.allows`).  The
    answer is the unpruned search's, bit for bit (the same leaf, the same solve), on the
    problems of ``w = 0`` where it matters, with and without exits; and it solves no more
    assignments."""
    import pwflow.filippov as fl

    calls = {True: 0, False: 0}
    real = fl._assignment
    got = {}
    try:
        for prune in (False, True):
            fl.PRUNE_ENUMERATION = prune

            def counted(*args, prune=prune):
                calls[prune] += 1
                return real(*args)

            fl._assignment = counted
            got[prune] = fl._enumerate(*prob)
    finally:
        fl.PRUNE_ENUMERATION, fl._assignment = True, real
    event("consistent" if got[False] is not None else "none consistent")
    if got[False] is None:
        assert got[True] is None
    else:
        np.testing.assert_array_equal(got[True][0], got[False][0])
        np.testing.assert_array_equal(got[True][1], got[False][1])
        np.testing.assert_array_equal(got[True][2], got[False][2])
    assert calls[True] <= calls[False]


@pytest.mark.parametrize("flag", ["ORDER_BY_REACH", "cones.PAIRED_CHILDREN"])
@given(prob=origin_enumeration_problems())
def test_enumeration_in_the_order_of_reach_is_the_plain_order_search(flag, prob):
    """Session 43: the search assigns the classes whose slopes move the velocities most first
    (:data:`~pwflow.filippov.ORDER_BY_REACH`), which prunes higher in the tree, and does not
    ask the least-distance programme for a child face whose partner off the parent's point it
    found empty (:data:`~pwflow.cones.PAIRED_CHILDREN`).  With either off the answer is the
    same, bit for bit: the least ``‖D‖``, and on a tie (within 1e-12) the assignment the index
    order meets first (:func:`~pwflow.filippov._better`)."""
    import pwflow.filippov as fl

    owner = fl.cones if flag.startswith("cones.") else fl
    name = flag.removeprefix("cones.")
    got = {}
    try:
        for ordered in (False, True):
            setattr(owner, name, ordered)
            got[ordered] = fl._enumerate(*prob)
    finally:
        setattr(owner, name, True)
    if got[False] is None:
        assert got[True] is None
    else:
        for plain, ordered in zip(got[False], got[True], strict=True):
            np.testing.assert_array_equal(ordered, plain)


def test_a_tie_goes_to_the_assignment_the_plain_order_meets_first():
    """:func:`~pwflow.filippov._better` on hand-made candidates: a smaller ``‖D‖`` wins; within
    1e-12 the smaller key (the plain enumeration's ``0, −, +`` per class, in index order)
    wins whichever comes first; beyond 1e-12 the key does not matter."""
    from pwflow.filippov import _better, _tie_key

    first = _tie_key(np.array([0, -1, 1], np.int8))
    later = _tie_key(np.array([0, 1, -1], np.int8))
    assert first < later
    a = (1.0, None, None, None, first)
    b = (1.0 + 1e-13, None, None, None, later)
    assert _better(a, b) and not _better(b, a)  # a tie: the first in plain order
    c = (1.0 - 1e-9, None, None, None, later)
    assert _better(c, a) and not _better(a, c)  # a smaller norm, whatever the key
    assert _better(a, None)


_ZERO_LAYER_X = np.array(
    [[0, -1, -1, -2, -2, -2, -2], [2, 1, 2, 0, 1, 2, 1], [1, 0, 0, 2, -1, 2, 1],
     [-2, -1, 2, 0, -2, 1, 1], [2, -2, -2, 2, -2, 0, -2], [-1, 0, 0, 0, -2, -2, -2],
     [-2, 1, 0, 1, -1, 1, 1], [-1, 0, 2, 2, 2, -1, 1], [2, 1, 2, 1, 1, -1, 2],
     [-2, 0, 1, 2, 0, -1, -1], [0, 0, 1, 2, -2, 2, 0], [-1, 1, 0, -1, -1, 1, 0]], dtype=float)
_ZERO_LAYER_R = -np.array([0.781, 0.264, -0.314, 1.458, 1.96, 1.802, 1.315, 0.357, -1.208,
                           -0.004, 0.656, -1.288])


def test_enumeration_at_zero_visits_few_of_the_faces(monkeypatch):
    """A neuron at ``w = 0`` on twelve integer points in R^7 with γ = 0.1 (session 41: a first
    layer started at 0, six neurons, 187 s).  The rounds end inconsistent; the unpruned search
    solved 133 383 assignments (51 s) for this neuron, the pruned one solves 8 and returns the
    same signs (measured once; the equality is the hypothesis test's above).  The answer is
    checked here on its own: it leaves to the side of its motion, holds where tangent."""
    import pwflow.filippov as fl

    X, r = _ZERO_LAYER_X, _ZERO_LAYER_R
    calls = []
    real = fl._assignment
    monkeypatch.setattr(fl, "_assignment", lambda *args: calls.append(1) or real(*args))
    sel = select(1.0, np.zeros(12, np.int8), X, r, 0.1, w=np.zeros(7), at_rest=True)
    assert 0 < len(calls) <= 100
    assert sel.signs.tolist() == [1, -1, 1, 1, 1, 1, 1, -1, -1, 1, 1, 1]  # as unpruned
    v = X @ sel.D  # consistent: leaves to the side of its motion, held ones tangent
    assert np.all(sel.signs[sel.signs != 0] * v[sel.signs != 0] > 0)
    assert np.all(np.abs(v[sel.signs == 0]) <= 1e-9 * np.linalg.norm(sel.D) * 3)


def test_enumeration_grows_with_the_faces_not_with_three_to_the_classes(monkeypatch):
    """Twelve hyperplanes of rank 3 (a neuron ⟂ all twelve points, camp9 family 1, seed 10 had
    rank 4 in d = 7): 3¹² = 531 441 assignments before; the faces of the arrangement now."""
    import pwflow.filippov as fl

    rng = np.random.default_rng(10)
    XK = rng.integers(-2, 3, size=(12, 3)).astype(float) @ rng.normal(size=(3, 5))
    r = rng.normal(size=12)
    Zrows = -(r[:, None] * XK) / 12
    b = rng.normal(size=5) / 12
    rep, orient = parallel_classes(XK)
    heads = int(np.sum(rep == np.arange(12)))
    calls = []
    real = fl._assignment
    monkeypatch.setattr(fl, "_assignment", lambda *args: calls.append(1) or real(*args))
    fl._enumerate(1.0, b, Zrows, XK, np.zeros(12, np.int8), np.zeros(12, bool), 0.1,
                  fl._zero_tol(b, Zrows, XK), rep, orient)
    # one solve per face of the central arrangement of h planes of rank 3: the origin, at most
    # h (h − 1) rays, 2 h (h − 1) planar sectors and h² − h + 2 regions
    assert heads >= 8
    assert 0 < len(calls) <= 4 * heads**2 - 4 * heads + 3 < 3**heads


# d = 4, five data points of rank 2 (x_0, x_1, x_2, x_3, x_6 in span(e_0, e_3)); neuron 0
# slides on all five when the slope of x_3 reaches γ = 0 (thorough profile,
# test_snapshots_agree_with_runs_ending_there[multi_active], logistic loss, t ≈ 8.2148)
_X_RANK2 = np.array([[-0.625, 0.0, 0.0, 0.0], [-1.625, 0.0, 0.0, -0.125],
                     [-2.0, 0.0, 0.0, -2.0], [-1.625, 0.0, 0.0, 1.875],
                     [1.0, 1.125, -0.625, 0.75], [1.5, -1.875, 0.125, 0.625],
                     [-1.875, 0.0, 0.0, -1.75]])
_R_RANK2 = np.array([0.4682360915786511, 0.425739386743935, -0.5, 0.3092126003225062,
                     -0.49991386729537907, 0.11825919440399738, -0.5])


def _consistent_continuations(X, r, u_face, K, gamma, a_sign, forced):
    """Every sign vector on ``K`` that the arrangement of ``x_K`` realises, with the forced
    signs, whose field (scipy's BVLS on the held slopes) moves the neuron into it: brute force
    over ``3^|K|``, independent of pwflow's rule."""
    from scipy.optimize import lsq_linear

    from pwflow.cones import face_point

    n, out = X.shape[0], []
    for s in itertools.product((-1, 0, 1), repeat=len(K)):
        s = np.array(s)
        if any(s[i] != v for i, v in forced.items()) or face_point(X[K], s) is None:
            continue
        u = u_face.copy()
        u[K] = s
        eta = np.where(u > 0, 1.0, np.where(u < 0, gamma, 0.0))
        b = -((eta * r) @ X) / n
        held = [k for k, v in zip(K, s) if v == 0]
        D = b
        if held:
            Z = (-(r[held, None] * X[held]) / n).T
            D = b + Z @ lsq_linear(Z, -b, bounds=(gamma, 1.0), method="bvls", tol=1e-14).x
        vel = a_sign * (X[K] @ D)
        free = [i for i in range(len(K)) if i not in forced]
        if all((s[i] == 0 and abs(vel[i]) < 1e-12) or (s[i] != 0 and np.sign(vel[i]) == s[i])
               for i in free):
            out.append((tuple(int(v) for v in s), float(np.linalg.norm(D))))
    return out


def test_an_exit_from_dependent_hyperplanes_departs_to_a_realisable_consistent_face():
    """Leaving x_3 alone is tangent but no face (x_3 is in the span of the others); the joint
    departure the rule then made left x_0, x_1 against their normal velocity and held x_6
    with a velocity off it, and the next event put the neuron back: a Zeno loop (200 events
    in 3e-11).  The rule now takes the minimal-norm consistent continuation among the faces
    the arrangement realises: sliding on x_2 alone, as the brute force finds."""
    u_face = np.array([0, 0, 0, 0, 1, 1, 0], dtype=np.int8)
    w = np.array([0.0, -0.12793537820193274, -0.37402840213745464, -1.262177448353619e-29])
    sel = select(0.0038349186652405073, u_face, _X_RANK2, _R_RANK2, 0.0, exits={3: False},
                 w=w)
    K = sel.K.tolist()
    assert K == [0, 1, 2, 3, 6]
    found = _consistent_continuations(_X_RANK2, _R_RANK2, u_face, sel.K, 0.0, 1.0, {3: -1})
    assert found, "the brute force finds a continuation"
    chosen = tuple(int(v) for v in sel.signs)
    assert chosen in [s for s, _ in found], (chosen, found)
    assert np.linalg.norm(sel.D) <= min(norm for _, norm in found) * (1 + 1e-9)
    assert chosen == (-1, -1, 0, -1, -1)


def test_the_rank_2_exit_runs_to_the_end():
    """The run that looped (d = 4, logistic, γ = 0; Zeno at t = 8.2148) reaches t = 20 with
    its invariants."""
    W = np.array([[0.0, -0.125, -0.375, 0.0], [0.0, 0.0, 0.0, 0.3125],
                  [-0.0, -0.40625, 0.0, 0.0], [-0.0, -0.40625, 0.0, 0.0]])
    a = np.array([0.0, 0.0, -0.38146931, -0.35216169])
    y = np.array([-1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0])
    tr = pwflow.simulate(pwflow.Dataset(_X_RANK2, y), pwflow.from_arrays(W, a), 20.0,
                         gamma=0.0, loss="logistic")
    assert tr.status == 0, tr.message
    assert tr.summary()["lemma1_max_relative_drift"] <= 1e-10


def _frozen_gd(a, q, X, r, gamma, step, grow):
    """Gradient descent at frozen residuals ``r`` from ``q`` (``σ'(0) = γ``), each step
    ``step ‖w‖`` long (the field is constant on each face and the motion scale-invariant, so
    only the step's direction and its size relative to ``‖w‖`` matter), until ``‖w‖``
    reaches ``grow`` or the gradient vanishes: ``(w, smallest ‖w‖ met)``."""
    n = X.shape[0]
    w = np.array(q, float)
    smallest = float(np.linalg.norm(w))
    for _ in range(100_000):
        slope = np.where(X @ w > 0, 1.0, gamma)
        g = a * ((slope * r) @ X) / n
        size = float(np.linalg.norm(g))
        if size == 0.0:
            break
        w = w - step * float(np.linalg.norm(w)) * g / size
        norm = float(np.linalg.norm(w))
        smallest = min(smallest, norm)
        if norm >= grow:
            break
    return w, smallest


@settings(suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
          deadline=None)
@given(data=st.data(), gamma=st.sampled_from([0.0, 0.1, 0.5]),
       a=st.sampled_from([-1.0, 1.0]))
def test_fan_walk_ends_where_gradient_descent_at_frozen_residuals_goes(data, gamma, a):
    """:func:`pwflow.filippov.fan_walk` (the motion near ``w = 0``, piecewise linear, faces
    decided by :func:`select`) against plain gradient descent at the same frozen residuals,
    from a point ``q`` in general position, d = 2–5.  Where the walk escapes on a face,
    gradient descent (steps of ``2e-3 ‖w‖``), once 200 times as far out as the walk's entry
    into that face (or as ``1e-2 ‖q‖``), is on it (held hyperplanes at offsets
    ``< 1e-2 ‖w‖ ‖x_k‖``, the others on their side); where the walk returns ``None`` gradient
    descent comes back near 0 or does not get 20 times as far out."""
    from pwflow.filippov import fan_walk

    d = data.draw(st.integers(2, 5), label="d")
    n = data.draw(st.integers(2, 6), label="n")
    X = data.draw(general_position(n, d, min_sine=0.1), label="X")
    r = data.draw(matrices(n, 0), label="r")
    assume(np.all(np.abs(r) > 0.05))
    q = data.draw(matrices(d, 0), label="q")
    size = float(np.linalg.norm(q))
    assume(size > 0.1)
    z = X @ q
    assume(np.all(np.abs(z) > 0.05 * np.linalg.norm(X, axis=1) * size))
    found = fan_walk(a, np.sign(z).astype(np.int8), q, X, r, gamma)
    if found is None:
        w, smallest = _frozen_gd(a, q, X, r, gamma, step=2e-3, grow=20.0 * size)
        assert smallest < 0.2 * size or np.linalg.norm(w) < 20.0 * size
        return
    v = np.sign(a) * (X @ found.selection.D)
    margin = np.abs(v) / (np.linalg.norm(X, axis=1) * np.linalg.norm(found.selection.D))
    assume(np.all(margin[found.face != 0] > 0.05))  # gradient descent reads the side clearly
    # out to 200 times the entry (a walk can pass close to 0 first: the entry 0.0032 from a
    # start at 1, then sliding out slowly, gradient descent chattering across the hyperplane)
    far = 200.0 * max(1e-2 * size, float(np.linalg.norm(found.entry)))
    w, _ = _frozen_gd(a, q, X, r, gamma, step=2e-3, grow=far)
    norm = float(np.linalg.norm(w))
    assert norm >= far
    offset = (X @ w) / (np.linalg.norm(X, axis=1) * norm)
    held = found.face == 0
    assert np.all(np.abs(offset[held]) < 1e-2), (offset, found.face)
    assert np.all(found.face[~held] * offset[~held] > 0), (offset, found.face)


@pytest.mark.parametrize("r1, escapes", [(-1.0, True), (1.0, False)])
def test_gd_escape_from_origin_in_closed_form_on_two_opposite_points(r1, escapes):
    """d = 1, ``x_0 = 1``, ``x_1 = −1``, ReLU, ``a > 0``, residual ``r_0 = 1``: a neuron at
    ``w > 0`` moves at ``D = −r_0/2 = −1/2`` to 0.  Past 0 only ``x_1`` is active and
    ``D = r_1/2``: with ``r_1 = −1`` the step keeps going down, and gradient descent passes
    through and escapes on ``w < 0`` (the face ``(−, +)``) at the arrival's speed; with
    ``r_1 = +1`` each step on ``w < 0`` brings it back and it jumps across 0 for ever, at
    most a step from it (the limit of small steps stays at 0)."""
    from pwflow.filippov import gd_escape_from_origin

    X = np.array([[1.0], [-1.0]])
    r = np.array([1.0, r1])
    # no motion at all (an arrival at zero velocity, ReLU: every slope 0 at 0) is no escape
    assert gd_escape_from_origin(1.0, np.zeros(1), X, r, 0.0) is None
    found = gd_escape_from_origin(1.0, np.array([-0.5]), X, r, 0.0)
    if not escapes:
        assert found is None
        return
    face, q = found
    assert face.tolist() == [-1, 1] and q.tolist() == [-1.0]


@pytest.mark.parametrize("s_a", [1.0, -1.0])
@pytest.mark.parametrize("r0, r1", [(1.0, 1.0), (-1.0, 1.0), (1.0, -1.0), (-1.0, -1.0)])
def test_gd_orbit_at_zero_and_its_escapes_in_closed_form_on_two_opposite_points(s_a, r0, r1):
    """d = 1, ``x_0 = 1``, ``x_1 = −1``, ReLU.  On ``w > 0`` (the cell ``(+, −)``) only ``x_0``
    is active and ``s_a D = −s_a r_0 / 2``; on ``w < 0`` (``(−, +)``), ``s_a D = s_a r_1 / 2``.
    The motion leaves 0 along a cell iff its velocity points into it:
    ``(+, −)`` iff ``s_a r_0 < 0``, ``(−, +)`` iff ``s_a r_1 < 0``
    (:func:`~pwflow.filippov.escapes_along`).  Gradient descent's map near 0 from ``ŵ = ±0.3``
    escapes iff the cell it is in or jumps to does (its norm grows by 1/2 a step, every step),
    and otherwise jumps across 0 for ever, visiting both cells
    (:func:`~pwflow.filippov.gd_origin_orbits`; ``{0}``, where the two hyperplanes meet, is
    not one of its faces)."""
    from pwflow.filippov import escapes_along, gd_origin_orbits

    X = np.array([[1.0], [-1.0]])
    r = np.array([r0, r1])
    up, down = np.array([1, -1], np.int8), np.array([-1, 1], np.int8)
    esc_up, esc_down = s_a * r0 < 0, s_a * r1 < 0
    for u, expected in ((up, esc_up), (down, esc_down)):
        sel = escapes_along(s_a, u, X, r, 0.0)
        assert (sel is not None) == expected
        if expected:
            assert sel.signs.tolist() == u.tolist() and sel.K.tolist() == [0, 1]
            assert np.sign(s_a * sel.D[0]) == u[0]
    orbit = gd_origin_orbits(np.array([s_a, s_a]), np.array([[0.3], [-0.3]]), X, r, 0.0, 400)
    for i in range(2):
        # from a cell that escapes it goes on; else it jumps to the other cell, which escapes
        # or sends it back
        first = esc_up if i == 0 else esc_down
        other = esc_down if i == 0 else esc_up
        assert bool(orbit.escaped[i]) == (first or other)
        if not (first or other):
            assert sorted(f.tolist() for f in orbit.faces[i]) == [[-1, 1], [1, -1]]
            assert abs(orbit.states[i, 0]) <= 0.5 * 1.001


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), gamma=st.sampled_from([0.0, 0.0, 0.1]),
       steps=st.sampled_from([7, 400, 1001]))
def test_the_map_near_zero_ends_at_a_fixed_point_with_the_orbit_unchanged(
        data, gamma, steps, monkeypatch):
    """:func:`~pwflow.filippov.gd_origin_orbits` stops iterating where the map is at a fixed
    point (a neuron at 0 in a cell where no point is active, ReLU: its direction exactly 0),
    and its orbit — last iterates, faces, cells, weights, escapes — is bit for bit the one of
    every step iterated (``MAP_FIXED_POINT_EXIT`` off).  Half the starts are drawn in the dead
    cell ``<ŵ, x_k> ≤ 0`` for all k (some coordinates ``−0.0``), residuals of either sign."""
    import pwflow.filippov as fl

    n, d = data.draw(st.integers(1, 8)), data.draw(st.integers(1, 4))
    X = data.draw(matrices(n, d))
    r = np.array(data.draw(st.lists(st.floats(-2, 2), min_size=n, max_size=n)))
    J = data.draw(st.integers(1, 4))
    starts = np.array(data.draw(st.lists(st.lists(st.floats(-1, 1), min_size=d, max_size=d),
                                         min_size=J, max_size=J)))
    starts = starts * 10.0 ** data.draw(st.integers(-9, 0))
    if data.draw(st.booleans()):  # into the dead cell: every point on the inactive side
        v = -np.sign(X[0]) * np.abs(starts)  # a guess: corrected below where it fails
        starts = np.where(np.all(v @ X.T <= 0, axis=1, keepdims=True), v, starts)
        starts[:, 0] = np.where(starts[:, 0] == 0, -0.0, starts[:, 0])
    s_a = np.array(data.draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=J, max_size=J)))
    hits = []
    real = fl._at_fixed_point
    monkeypatch.setattr(fl, "_at_fixed_point", lambda *a: hits.append(real(*a)) or hits[-1])
    orbits = []
    for flag in (True, False):
        monkeypatch.setattr(fl, "MAP_FIXED_POINT_EXIT", flag)
        orbits.append(fl.gd_origin_orbits(s_a, starts, X, r, gamma, steps))
    a, b = orbits
    event(f"fixed point reached: {any(hits)}")
    assert a.states.tobytes() == b.states.tobytes()
    assert np.array_equal(a.escaped, b.escaped)
    for field in ("faces", "cells", "weights"):
        for x, y in zip(getattr(a, field), getattr(b, field), strict=True):
            assert x.dtype == y.dtype and x.tobytes() == y.tobytes()


@given(st.integers(1, 45).flatmap(lambda n: arrays(
    np.int8, st.tuples(st.integers(1, 300), st.just(n)), elements=st.sampled_from([-1, 0, 1]))))
def test_unique_sign_rows_are_the_opaque_items_rows_in_byte_order(rows):
    """:func:`pwflow.filippov._unique_rows` (base-3 keys up to 40 columns) gives the rows and
    counts of ``np.unique`` on one opaque item per row (bytes: ``0 < 1 < −1``), the order
    the orbits' cells and faces were read in before the keys, rows and counts alike."""
    from pwflow.filippov import _unique_rows

    rows[: rows.shape[0] // 3] = rows[-1]  # repeated rows too
    items, counts = np.unique(np.ascontiguousarray(rows).view(
        np.dtype((np.void, rows.shape[1])))[:, 0], return_counts=True)
    ref = np.frombuffer(items.tobytes(), dtype=np.int8).reshape(-1, rows.shape[1])
    got, got_counts = _unique_rows(rows)
    assert got.dtype == np.int8 and got.tobytes() == ref.tobytes() and got.shape == ref.shape
    np.testing.assert_array_equal(got_counts, counts)


@pytest.mark.parametrize("start, reads", [((-1e-6, -2e-7), [True]),
                                          ((-1e-6, -0.0), [False, True])])
def test_the_map_in_a_dead_cell_stops_at_its_first_steps(start, reads, monkeypatch):
    """ReLU, two points on one side: from ``start`` no point is active, the map's direction is
    exactly 0 and :func:`~pwflow.filippov.gd_origin_orbits` ends at its first step, one cell,
    one face, weight 1, not escaped; a ``−0.0`` coordinate becomes ``+0.0`` at the first
    step (``−0.0 + 0.0``), so the fixed point is read at the second."""
    import pwflow.filippov as fl

    X = np.array([[1.0, 0.5], [0.7, -0.2]])
    assert np.all(np.array(start) @ X.T < 0)
    calls = []
    real = fl._at_fixed_point
    monkeypatch.setattr(fl, "MAP_FIXED_POINT_EXIT", True)
    monkeypatch.setattr(fl, "_at_fixed_point", lambda *a: calls.append(real(*a)) or calls[-1])
    orbit = fl.gd_origin_orbits(np.array([1.0]), np.array([start]), X, np.array([0.3, -1.0]),
                                0.0, 1000)
    assert calls == reads
    assert orbit.states.tolist() == [list(start)]
    assert start[1] != 0 or not np.signbit(orbit.states[0, 1])  # −0.0 turned +0.0
    assert not orbit.escaped[0]
    assert orbit.cells[0].tolist() == [[-1, -1]] and orbit.weights[0].tolist() == [1.0]
    assert orbit.faces[0].tolist() == [[-1, -1]]


@given(prob=face_problems(), aim=st.integers(0, 3), cell=st.booleans())
def test_escapes_along_a_face_is_its_motion_staying_on_it_and_leaving_zero(prob, aim, cell):
    """:func:`~pwflow.filippov.escapes_along` against its definition, from
    :func:`~pwflow.filippov.select` and the data alone: a face escapes iff the rule keeps the
    neuron on every hyperplane of it and ``sign(a) <D, x_k>`` has the sign ``u_k`` on every
    other point (beyond a margin: near-ties are not drawn).  Then the motion from any point
    of the face, ``q + s sign(a) D``, stays on it and its norm grows.  ``aim``: the drawn
    sides are first set ``aim`` times to those of the motion on the face (a drawn face
    rarely escapes: 0.1 % of them); ``cell``: the face's hyperplanes are given sides too (an
    open cell)."""
    from pwflow.filippov import escapes_along

    a, u, X, r, gamma = prob
    if cell:
        u = np.where(u == 0, np.int8(1), u).astype(np.int8)
    side = u != 0
    for _ in range(aim):
        vel = np.sign(a) * (X[side] @ select(a, u, X, r, gamma).D)
        u[side] = np.where(vel != 0, np.sign(vel), u[side])
    sel = select(a, u, X, r, gamma, policy=BranchPolicy.GRADIENT_DESCENT)
    v = np.sign(a) * sel.D
    margin = u[side] * (X[side] @ v) / (np.linalg.norm(X[side], axis=1) * (1 + np.linalg.norm(v)))
    assume(margin.size == 0 or np.min(np.abs(margin)) > 1e-9)
    expected = not np.any(sel.signs != 0) and np.all(margin > 0) and np.any(v != 0)
    event("escapes" if expected else "does not escape")
    got = escapes_along(a, u, X, r, gamma)
    assert (got is not None) == expected
    if got is None:
        return
    np.testing.assert_array_equal(got.signs, u)
    np.testing.assert_allclose(got.D, sel.D, rtol=0, atol=0)
    # a point of the face: a feasible point moves along v, sides kept, away from 0
    K = np.flatnonzero(u == 0)
    basis = np.linalg.svd(X[K])[2][np.linalg.matrix_rank(X[K]):] if K.size else np.eye(X.shape[1])
    q = v @ basis.T @ basis  # v itself lies on the face: its projection is v
    np.testing.assert_allclose(q, v, atol=1e-9 * (1 + np.linalg.norm(v)))
    for s in (0.5, 1.0, 4.0):
        w = q + s * v
        assert np.all(np.sign(X[side] @ w) == u[side])
        assert np.linalg.norm(w) > np.linalg.norm(q)


# ------------------------------------------------------------------------------ geometry memo
@pytest.mark.parametrize("at_rest", [False, True])
@given(prob=parallel_face_problems(), reuse=st.integers(1, 3))
def test_select_with_a_geometry_memo_is_select_without(prob, at_rest, reuse):
    """:class:`pwflow.filippov.Geometry` (the stepper's memo of the data's implied
    hyperplanes, parallel classes and dependence per set ``K``) changes nothing: the same
    selection bit for bit, with the memo fresh or already holding the sets from earlier calls
    (``reuse``); its arrays are those of the direct functions and read-only; a memo of other
    data is refused."""
    from pwflow.filippov import Geometry, implied_hyperplanes

    a, u, X, r, gamma = prob
    plain = select(a, u, X, r, gamma, at_rest=at_rest)
    geo = Geometry(X)
    for _ in range(reuse):
        sel = select(a, u, X, r, gamma, at_rest=at_rest, geometry=geo)
        for field in ("K", "signs", "eta", "D", "branch"):
            np.testing.assert_array_equal(getattr(sel, field), getattr(plain, field))
    K0 = np.flatnonzero(u == 0)
    np.testing.assert_array_equal(geo.implied(K0), implied_hyperplanes(X, u))
    rep, orient = geo.classes(plain.K)
    want = parallel_classes(X[plain.K])
    np.testing.assert_array_equal(rep, want[0])
    np.testing.assert_array_equal(orient, want[1])
    with pytest.raises(ValueError):
        rep[0] = 1
    with pytest.raises(ValueError, match="geometry"):
        select(a, u, X.copy(), r, gamma, geometry=geo)


# ------------------------------------------------- a neuron at rest: gradient descent's second step
@st.composite
def at_rest_problems(draw, zero_a: bool = False):
    """A neuron ``w = e_d`` exactly on the hyperplanes of ``p`` points (last coordinate 0;
    in half the problems one of them a positive multiple of another), with
    active and inactive points whose residuals are 0 at the start (``γ = 0``: ``D = 0``, the
    first gradient step does not move it) and a drawn rate ``dr/dt`` of every residual."""
    d = draw(st.integers(2, 5), label="d")
    p = draw(st.integers(1, min(d - 1, 3)), label="p")
    q = draw(st.integers(1, 3), label="active and inactive points")
    XK = draw(general_position(p, d - 1), label="X_K")
    if draw(st.booleans(), label="a point parallel to one of them"):
        c = draw(st.sampled_from([0.5, 1.0, 2.0]), label="c")
        XK = np.vstack([XK, c * XK[draw(st.integers(0, p - 1), label="which")]])
        p += 1
    other = draw(matrices(q, d - 1), label="others")
    heights = np.array(draw(st.lists(st.sampled_from([-1.0, -0.5, 0.5, 1.0]), min_size=q,
                                     max_size=q)))
    X = np.vstack([np.column_stack([XK, np.zeros(p)]), np.column_stack([other, heights])])
    rK = np.array(draw(st.lists(st.sampled_from([-1.0, -0.5, 0.5, 1.0]), min_size=p,
                                max_size=p)))
    r = np.concatenate([rK, np.zeros(q)])
    r_rate = draw(matrices(p + q, 0), label="dr/dt")
    assume(np.any(r_rate[p:][heights > 0] != 0))
    # zero_a: a = 0, which then grows by da/dt = <w, D> (0 at the start; d²a/dt² = <w, b'>
    # sets its sign, b' the fixed part of dr/dt)
    a = 0.0 if zero_a else draw(st.sampled_from([-1.0, 1.0]), label="a")
    return X, r, r_rate, a, p


def _gd_sides_with_moving_residuals(X, r, r_rate, a, p, horizons=(4e-2, 1e-1)):
    """Gradient descent on the neuron alone from ``w = e_d``, the residuals moving linearly
    (``r + t dr/dt``), ``σ'(0) = 0``, at the steps 8e-6 and 4e-6: the side of each of the
    ``p`` hyperplanes (0: held), and whether that reading is clear.  The mean offset over
    the last third of a horizon is a drift of the small-step limit plus the chatter's bias,
    O(h): Richardson's ``2 m(h/2) − m(h)`` keeps the drift.  A class is left to the drift's
    side where that is three times the change between the steps, held where it is below
    half of it (or the class never moves); anything between is not read, nor a reading
    that differs between the horizons t = 0.04 and 0.1 (a first-order near-tie: a class
    that drifts away at first and comes back to chatter; at t = 0.01 a chatter's mean was
    not yet linear in the step).  Nor is a class read as left whose offsets change sign in
    the window at both steps, its drift within a tenth of the chatter's amplitude: a
    chatter's mean need not be linear in the step (session 55).

    Nor is a reading clear that changes where gradient descent starts a hair inside the
    held hyperplanes' inactive side (offsets ``−10⁻¹⁰ ‖x_k‖``, which its ``σ'(0) = 0`` reads
    as the same cell as 0), where that start exists and ``a ≠ 0`` (the offsets grow as
    ``t²``: the rate crosses such a start within 30 steps; with ``a = 0`` they grow as
    ``t⁴`` and it would take a quarter of the horizon): at exactly 0 the second step can put a
    class that the rate drives, and whose own field is 0 at the start (a repeated point of
    opposite residuals), wholly on its ``+`` side for one step, and that step kicks a
    repulsive neighbour across at the same order ``h²`` as the rate's push on it (session
    57: the neighbour leaves to ``+`` from 0, stays on ``−`` from ``−10⁻¹¹``; the flow's
    class slides, its average field pushes the neighbour to ``−``)."""
    d = X.shape[1]
    start = np.eye(d)[-1]
    sides = [_gd_sides_from(X, r, r_rate, a, p, start, horizons)]
    norms = np.linalg.norm(X[:p], axis=1)
    v = np.linalg.lstsq(X[:p], norms, rcond=None)[0]  # <x_k, v> = ‖x_k‖ where it can be
    if a != 0.0 and np.allclose(X[:p] @ v, norms, rtol=1e-12, atol=0.0):
        sides.append(_gd_sides_from(X, r, r_rate, a, p, start - 1e-10 * v, horizons))
    side = sides[0][0][0]
    clear = all(c and np.array_equal(s, side) for reading in sides for s, c in reading)
    return side, clear


def _gd_offsets(X, r, r_rate, a, p, w0, h, t_end):
    """Gradient descent on the neuron alone from ``w0`` at the step ``h`` to ``t_end``: the
    offsets ``<w, x_k>`` of the first ``p`` points after each step, and ``‖w − w0‖``."""
    n = X.shape[0]
    steps = int(round(t_end / h))
    w = w0.copy()
    zs = np.empty((steps, p))
    moved = np.empty(steps)
    a_i = a
    for i in range(steps):
        D = -((r + i * h * r_rate) * (X @ w > 0)) @ X / n
        # a moves only where it starts at 0 (else held: its motion is second order here)
        w, a_i = w + h * a_i * D, (a_i + h * (w @ D) if a == 0.0 else a_i)
        zs[i] = X[:p] @ w
        moved[i] = np.linalg.norm(w - w0)
    return h, zs, moved


def _window_means(run, t):
    """The mean offsets of ``run`` over ``[2t/3, t]``, and that window."""
    h, zs, _ = run
    window = zs[int(round(2 * t / (3 * h))):int(round(t / h))]
    return np.mean(window, axis=0), window


def _gd_sides_from(X, r, r_rate, a, p, w0, horizons):
    """:func:`_gd_sides_with_moving_residuals` from the start ``w0``: the sides and whether
    they are clear at each horizon."""
    z0 = X[:p] @ w0
    runs = [_gd_offsets(X, r, r_rate, a, p, w0, h, horizons[-1]) for h in (8e-6, 4e-6)]
    norms = np.linalg.norm(X[:p], axis=1)
    readings = []
    for t in horizons:
        (m0, w0_), (m1, w1_) = (_window_means(run, t) for run in runs[:2])
        windows = [w0_, w1_]
        drift = 2.0 * m1 - m0
        change = np.abs(m1 - m0)
        still = np.all([np.all(z == z0, axis=0) for z in windows], axis=0)
        left, held = np.abs(drift) > 3.0 * change, still | (np.abs(drift) < 0.5 * change)
        # a class that chatters across its hyperplane at both steps, its drift within a
        # tenth of the chatter's amplitude, is not read as left: the mean of a chatter need
        # not be linear in h at these steps (a sliding mode of the rate's field, velocities
        # ±0.3 t: the mean is −5.6e-10 at h = 8e-6 … 1e-6 while the amplitude halves from
        # 8e-8 to 1e-8, so the extrapolation read a drift where the flow slides), nor can
        # such a drift be told from one too slow to read (a hyperplane kicked across by its
        # neighbour's chatter, departing at 1e-4 of the rate's speed): neither side is clear
        # (test_the_reference_does_not_read_a_drift_below_the_chatter)
        chatter = np.all([(z.min(axis=0) < 0.0) & (z.max(axis=0) > 0.0) for z in windows],
                         axis=0)
        amplitude = np.abs(windows[1]).max(axis=0)
        left = left & ~(chatter & (np.abs(drift) < 0.1 * amplitude))
        # a drift below 5 % of the neuron's motion by then (on x_k's scale) is read as left
        # only where the extrapolation from the steps 4e-6 and 2e-6 gives it too, within a
        # fifth: with a = 0 the motion is O(t⁴), and a neutral hyperplane's offsets under
        # its neighbour's chatter were −6.7e-10, −1.2e-9, −3.4e-10, −7.9e-11 at h = 8e-6 …
        # 1e-6, 0.4 % of it (session 57), which two steps' extrapolation read as a departure
        # (slow departures behind a fast one, t² against t, are 1.4 % and extrapolate alike)
        moved = runs[1][2][int(round(t / runs[1][0])) - 1]
        slow = left & (np.abs(drift) < 0.05 * norms * moved)
        if np.any(slow):
            if len(runs) < 3:
                runs.append(_gd_offsets(X, r, r_rate, a, p, w0, 2e-6, horizons[-1]))
            drift_fine = 2.0 * _window_means(runs[2], t)[0] - m1
            left &= ~slow | (np.abs(drift_fine - drift) <= 0.2 * np.abs(drift))
        readings.append((np.where(left & ~still, np.sign(drift), 0).astype(np.int8),
                         bool(np.all(left | held))))
    return readings


@given(at_rest_problems())
@settings(suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
def test_at_rest_the_gd_policy_takes_gradient_descents_side_with_moving_residuals(prob):
    """A neuron at rest on ``p`` hyperplanes (``D = 0``: its active residuals are 0 at the
    start) is moved first by ``dr/dt``: gradient descent's second step puts it on a side of
    each hyperplane, from which the fixed residuals ``r_K`` take over.  ``select`` with
    ``r_rate`` and the ``'gd'`` policy leaves to the sides gradient descent takes (one neuron,
    residuals linear in ``t``, steps 8e-6 and 4e-6, the drift of the mean offsets
    extrapolated to a vanishing step, read alike at t = 0.04 and 0.1); without ``r_rate`` it has
    no motion to read and holds every hyperplane.  (Opposite points are not drawn: off their
    common hyperplane one of them is active and its field moves the neuron at O(1) to the
    side where both fields point, which the selection takes; gradient descent from exactly
    on it reads ``σ'(0) = 0`` for both and never moves, a convention, not a limit.)"""
    _check_at_rest_against_gradient_descent(prob)


@given(at_rest_problems(zero_a=True))
@settings(suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
def test_at_rest_with_a_zero_the_gd_policy_takes_gradient_descents_side(prob):
    """The same where ``a`` starts at 0 too (session 29): ``da/dt = <w, D> = 0`` at the
    start, ``a`` takes the sign of ``<w, b'>`` and grows as ``t²``; the residuals' rate moves
    the offsets by ``a(t) <b', x_k>``, of the sides of the ``a ≠ 0`` case, and gradient
    descent's map follows with steps growing as ``a`` (the map's ``ramp``).  Gradient
    descent's reference moves ``a`` by its own gradient.  Before, ``'gd'`` held every such
    start (the thorough profile of ``tests/test_differential.py``: d = 5, two neurons with
    ``a = 0``, one on x_0's hyperplane, 345 gaps from extrapolated gradient descent at
    t = 5, now 0.0)."""
    _check_at_rest_against_gradient_descent(prob)


def _slow_departures(X, r, r_rate, u, signs, p, b_rate, tau=1e-6):
    """Per hyperplane of the ``p`` at rest: left (``signs``) at a normal speed below 2 % of
    the rate's scale ``τ |b'| |x_k|`` on the field a time ``τ`` later, the held ones sliding
    (their slopes solved, unconstrained, for tangency): a departure gradient descent at the
    reference's steps cannot read."""
    n = X.shape[0]
    rt = r + tau * r_rate
    active = (u > 0).astype(float)
    active[:p] = signs > 0
    D = -(rt * active) @ X / n
    held = np.flatnonzero(signs == 0)
    if held.size:
        Zh = -(rt[held, None] * X[held]) / n
        eta = np.linalg.lstsq(X[held] @ Zh.T, -(X[held] @ D), rcond=None)[0]
        D = D + eta @ Zh
    v = np.abs(X[:p] @ D)
    scale = tau * np.linalg.norm(b_rate) * np.linalg.norm(X[:p], axis=1)
    return (signs != 0) & (v < 0.02 * scale)


def _check_at_rest_against_gradient_descent(prob):
    X, r, r_rate, a, p = prob
    n = X.shape[0]
    u = np.where(X[:, -1] > 0, 1, -1).astype(np.int8)
    u[:p] = 0
    w = np.eye(X.shape[1])[-1]
    held = select(a, u, X, r, 0.0, policy=BranchPolicy.GRADIENT_DESCENT, w=w, at_rest=True)
    assert np.all(held.signs == 0)
    sel = select(a, u, X, r, 0.0, policy=BranchPolicy.GRADIENT_DESCENT, w=w, at_rest=True,
                 r_rate=r_rate)
    # a departure at a speed the rate overtakes within the reference's horizon (t = 0.1)
    # returns there: gradient descent reads the later motion, not the limit t → 0+
    b_rate = -(r_rate * (u > 0)) @ X / n
    speed = np.abs(X[:p] @ sel.D)
    assume(not np.any((speed > 0) & (speed < 0.4 * np.linalg.norm(b_rate)
                                      * np.linalg.norm(X[:p], axis=1))))
    # nor one at a speed the rate sets too small for it to read: a hyperplane the rate moves
    # at 1e-3 of its scale (a coordinate 0.001) chatters, and kicks another away at that
    # speed, which gradient descent shows from t ≈ 1 on (6.5e-5, halving steps: the same)
    rate_v = np.abs(X[:p] @ b_rate)
    assume(not np.any((rate_v > 0) & (rate_v < 0.02 * np.linalg.norm(b_rate)
                                      * np.linalg.norm(X[:p], axis=1))))
    # nor a departure at such a speed once the held hyperplanes slide (the rate's push and a
    # sliding neighbour's kick cancel to 0.4 %: x_2 ≈ −x_1, a = 0; gradient descent keeps x_1
    # on its − side at offsets O(h), which the reference reads as held, session 55)
    assume(not np.any(_slow_departures(X, r, r_rate, u, sel.signs, p, b_rate)))
    # nor a hyperplane held (its own field attracts) whose slope the rate pushes to its bound
    # within the reference's horizon: the slope grows as t <b', x_k> / <z_k, x_k> and reaches
    # 1 at t = own / rate, where the run leaves it (a face event); gradient descent read at
    # t = 0.04 and 0.1 has left by then (thorough profile, session 30: d = 2, x_0 held with
    # own = 0.0104 and rate 1/3, its bound reached at t = 0.031, read on + at both
    # horizons; the same with a = 0, where a(t) scales both).  Session 55: the slope starts
    # where the selection holds it, not at 0, and b' includes the rates of the residuals of
    # the hyperplanes left to + (active from then on): a = 0, x_0 held at slope 0.95 by the
    # kick of x_1, left to +, whose residual's rate pushes it on (own = 0.35, rate 0.67: the
    # bound at t ≈ 0.026); gradient descent reads x_0 on + at t = 0.04 and 0.1
    # Session 56: the held hyperplanes slide together, so their slopes' rates solve the
    # joint system M dη_H = <x_H, b'> (M_lk = r_k <x_l, x_k> / n); read one by one, x_0 and
    # x_1 held with <x_0, x_1> = −1, ‖x_0‖² = 1.0625 grew at 1.9 each where together they
    # grow at 32 and reach 1 at t = 0.031 (gradient descent reads x_0 on + at 0.04 and 0.1)
    left_up = np.zeros(n, dtype=bool)
    left_up[:p] = sel.signs > 0
    push = X[:p] @ (-(r_rate * ((u > 0) | left_up)) @ X / n)  # <x_k, b'>
    H = np.flatnonzero(sel.signs == 0)
    deta = np.zeros(p)
    if H.size:
        # d/dt of Σ_k η_k r_k <x_l, x_k> / n = <x_l, D_fixed>: M dη + Ṁ η = <x_H, b'>, with Ṁ
        # from the held residuals' own rates (session 57: r_2 falling at 2 from 0.5 moved
        # η_2 at 3.8, not 0.36, to its bound at t = 0.037)
        G = X[H] @ X[H].T / n
        M, M_rate = G * r[H][None, :], G * r_rate[H][None, :]
        deta[H] = np.linalg.lstsq(M, push[H] - M_rate @ sel.eta[H], rcond=None)[0]  # dη/dt
        silent = H[r[H] == 0.0]  # no own field: pushed off at once by any rate
        deta[silent] = np.inf * push[silent]
    with np.errstate(divide="ignore", invalid="ignore"):
        room = np.where(deta > 0, 1.0 - sel.eta[:p], sel.eta[:p])  # to the bound it moves to
        t_bound = np.where(deta != 0, room / np.abs(deta), np.inf)
    assume(not np.any((sel.signs == 0) & (t_bound < 0.2)))
    # nor a departure whose velocity the residuals' rate turns back within the horizon
    # (session 56: a = 0, x_1 left to + at <x_1, D> = −0.012 while its own residual's rate
    # moves that velocity at <x_1, b'> = +0.61, so it turns at t = 0.02 and x_1 slides
    # again; gradient descent reads it held at t = 0.04 and 0.1)
    v_dep, v_rate = X[:p] @ sel.D, X[:p] @ (-(r_rate * ((u > 0) | left_up)) @ X / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_turn = np.where(v_dep * v_rate < 0, np.abs(v_dep / v_rate), np.inf)
    assume(not np.any((sel.signs != 0) & (t_turn < 0.2)))
    if a == 0.0:
        # a class of parallel points whose residuals cancel (ρ_C = 0: its own field is 0, its
        # rate alone pulls it back) is kicked away by the others and returns within the
        # reference's horizon: gradient descent leaves it as the selection does and reads as
        # holding it by t = 0.04
        # (test_gd_at_rest_with_a_zero_leaves_a_cancelling_class_as_gradient_descent_first_does)
        rep = parallel_classes(X[:p])[0]
        rho = np.bincount(rep, weights=r[:p] * np.linalg.norm(X[:p], axis=1), minlength=p)
        assume(not np.any((np.bincount(rep, minlength=p) > 1) & (rho == 0.0)))
    side, clear = _gd_sides_with_moving_residuals(X, r, r_rate, a, p)
    assume(clear)
    event(f"hyperplanes left: {np.count_nonzero(side)} of {p}")
    assert sel.signs.tolist() == side.tolist(), (sel.signs, side)
    assert np.array_equal(sel.K, np.arange(p)) and n > p


def test_the_reference_does_not_read_a_neutral_hyperplane_under_a_chatter_as_left():
    """The thorough profile's draw of
    :func:`test_at_rest_with_a_zero_the_gd_policy_takes_gradient_descents_side` (session 57):
    d = 4, ``a = 0``, ``x_2 = x_0 + e_4 / 2`` active with ``dr_2/dt = −1``, ``x_1 = 2 e_2``.
    The rate ``b' = x_2 / 3`` pushes ``x_0`` to ``+``, where its own field holds it (it
    slides at slope ``2t``), and with ``x_0`` sliding ``D = t (x_2 − x_0) / 3`` is
    orthogonal to ``x_1``: its velocity is exactly 0, and the selection holds both.
    Gradient descent's offsets of ``x_1`` at t = 0.1 (below ``x_0``'s chatter, which pushes
    it only down) vanish with the step, irregularly; from the steps 8e-6 and 4e-6 alone the
    extrapolation read a departure to ``−``.  The reference now checks such a slow drift
    (below 5 % of the neuron's motion) against the steps 4e-6 and 2e-6."""
    X = np.array([[0.328125, -0.21875, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0],
                  [0.328125, -0.21875, 0.0, 0.5]])
    r, r_rate = np.array([0.5, 0.5, 0.0]), np.array([0.0, 0.0, -1.0])
    u = np.array([0, 0, 1], np.int8)
    sel = select(0.0, u, X, r, 0.0, policy=BranchPolicy.GRADIENT_DESCENT, w=np.eye(4)[-1],
                 at_rest=True, r_rate=r_rate)
    assert sel.signs.tolist() == [0, 0]
    D = 0.1 * (X[2] - X[0]) / 3  # x_0 sliding at t = 0.1
    assert X[1] @ D == 0.0
    z1 = [_gd_offsets(X, r, r_rate, 0.0, 2, np.eye(4)[-1], h, 0.1)[1][-1, 1]
          for h in (8e-6, 4e-6, 2e-6, 1e-6)]
    assert abs(z1[3]) < 0.1 * abs(z1[1]) and abs(z1[2]) < abs(z1[1])
    # the two steps' extrapolation alone (the reference before): a clear departure to −
    m0, m1 = (_window_means(_gd_offsets(X, r, r_rate, 0.0, 2, np.eye(4)[-1], h, 0.1), 0.1)[0][1]
              for h in (8e-6, 4e-6))
    assert 2.0 * m1 - m0 < 0.0 and abs(2.0 * m1 - m0) > 3.0 * abs(m1 - m0)
    assert not _gd_sides_with_moving_residuals(X, r, r_rate, 0.0, 2)[1]


def test_at_rest_a_held_slope_moved_by_its_own_residuals_rate_reaches_its_bound_in_the_horizon():
    """The thorough profile's draw of
    :func:`test_at_rest_with_a_zero_the_gd_policy_takes_gradient_descents_side` (session 57):
    d = 4, ``a = 0``; the selection leaves ``x_0`` to ``+``, ``x_1`` to ``−`` and holds
    ``x_2`` (slope 0.86: ``x_0``'s kick against its own field), gradient descent at t = 0.04
    and 0.1 reads ``x_2`` on ``+``.  Both are right: ``r_2`` falls at 2 from 0.5, so the
    held slope grows at ``(<x_2, b'> − η ṙ_2 ‖x_2‖² / n) / (r_2 ‖x_2‖² / n)`` = 3.8, and
    reaches 1 between t = 0.03 and 0.035, a face event after which ``x_2`` leaves to ``+``.
    The property test's filter for such draws read the slope's rate from the pushes alone
    (0.36); it now includes the held residuals' own rates."""
    X = np.array([[0.0, -2.0, -0.125, 0.0], [0.0, 1.0, 0.0, 0.0],
                  [0.96875, -0.9375, -1.75, 0.0], [0.0, 0.0, -1.0, 0.5],
                  [0.0, 0.0, 0.0, -1.0], [0.0, 0.0, 0.0, -1.0]])
    r = np.array([-1.0, -1.0, 0.5, 0.0, 0.0, 0.0])
    r_rate = np.array([0.0, 0.0, -2.0, -0.5, 0.0, 0.0])
    u = np.array([0, 0, 0, 1, -1, -1], np.int8)
    sel = select(0.0, u, X, r, 0.0, policy=BranchPolicy.GRADIENT_DESCENT, w=np.eye(4)[-1],
                 at_rest=True, r_rate=r_rate)
    assert sel.signs.tolist() == [1, -1, 0]
    side, clear = _gd_sides_with_moving_residuals(X, r, r_rate, 0.0, 3)
    assert clear and side.tolist() == [1, -1, 1]
    # x_2 on the face the selection chose, at the residuals of later times (a > 0 there)
    on_face = np.array([1, -1, 0, 1, -1, -1], np.int8)
    held = [select(1.0, on_face, X, r + t * r_rate, 0.0).signs[0] for t in (0.0, 0.03, 0.035)]
    assert held == [0, 0, 1]
    # the slope's rate from the pushes alone (the filter before): its bound only at t ≈ 0.4
    g22, push = X[2] @ X[2] / 6, -r_rate[3] * (X[2] @ X[3]) / 6  # <x_2, b'>, b' = −ṙ_3 x_3 / n
    assert (1.0 - sel.eta[2]) / (push / (r[2] * g22)) > 0.2
    with warnings.catch_warnings():  # (assume outside @given: the filter itself is tested)
        warnings.simplefilter("ignore", HypothesisDeprecationWarning)
        with pytest.raises(UnsatisfiedAssumption):
            _check_at_rest_against_gradient_descent((X, r, r_rate, 0.0, 3))


def test_gd_at_rest_with_a_zero_leaves_a_cancelling_class_as_gradient_descent_first_does():
    # found by the thorough profile of the a = 0 property test above: x_2 = 2 x_1 with
    # r = (1, −0.5) (ρ_C = 0: the class's own field is 0) and a rate on r_2.  The selection
    # leaves the class to + (x_0, which leaves to + first, kicks it there); gradient descent
    # does so too at first, and from t ≈ 0.015, where r_2's rate pulls the class back harder
    # than x_0 kicks it, returns and chatters: read at t = 0.04 and 0.1 (the property test's
    # horizons) it is held.  The selection decides the limit t → 0+; the return is a later
    # event of the run.  The property test leaves such classes out (a reversal within its
    # horizon, like the fast-reversing departures it filters)
    X = np.array([[0.0, 1.0, 0.0, 1.0, 0.0], [2.0, 0.5, 0.0, 0.0, 0.0], [4.0, 1.0, 0.0, 0.0, 0.0],
                  [0.0, 0.0, 0.0, 1.0, 0.5], [0.0, 0.0, 0.0, 0.0, -1.0],
                  [0.0, 0.0, 0.0, 0.0, -1.0]])
    r = np.array([-0.5, 1.0, -0.5, 0.0, 0.0, 0.0])
    r_rate = np.array([0.0, 0.0, 2.0, -0.25, 0.0, 0.0])
    u = np.array([0, 0, 0, 1, -1, -1], dtype=np.int8)
    sel = select(0.0, u, X, r, 0.0, policy=BranchPolicy.GRADIENT_DESCENT, w=np.eye(5)[-1],
                 at_rest=True, r_rate=r_rate)
    assert sel.signs.tolist() == [1, 1, 1]

    def offsets(t_end, h):  # gradient descent on the neuron, a moved by its own gradient
        w, a = np.eye(5)[-1], 0.0
        for i in range(int(round(t_end / h))):
            D = -((r + i * h * r_rate) * (X @ w > 0)) @ X / X.shape[0]
            w, a = w + h * a * D, a + h * (w @ D)
        return X[:3] @ w

    for t_end in (0.004, 0.01):  # the class on +, alike at two steps
        z1, z2 = offsets(t_end, t_end / 10000), offsets(t_end, t_end / 20000)
        assert np.all(z1 > 0) and np.all(z2 > 0)
        np.testing.assert_allclose(z1, z2, rtol=0.02)
    # back on its hyperplane by t = 0.04 (chattering: a tenth of its offset at t = 0.01 at
    # most), x_0 gone on
    z = offsets(0.04, 2e-6)
    assert np.all(np.abs(z[1:]) < 0.1 * z2[1:]) and z[0] > 10 * z2[0]


def test_gd_at_rest_with_a_tie_and_a_repeated_point_of_opposite_residuals():
    # found by the thorough profile of the a ≠ 0 property test above under another draw
    # distribution: x_1 = x_3 with r = (−1, +1) (the rate on r_3), and x_0's kick on x_2 equal
    # to x_2's own field (<x_2, x_0> = ‖x_2‖²): gradient descent leaves all four hyperplanes
    # to +, the selection left x_0 only: their offsets grow as t² (1.7e-7 at t = 0.001,
    # 2.7e-6 at 0.004, 1.7e-5 at 0.01, alike at two steps).  A strict xfail from session 29
    # to 55: x_0 departs at O(1), and the map at rest never let the rate move the others
    # while it did; now the rate moves the resting classes beside a departing one
    # (filippov._departing; with the old condition, every velocity 0: [1, 0, 0, 0])
    X = np.array([[1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0],
                  [1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, -1.0], [0.0, 1.0, 0.0, 0.5]])
    r = np.array([1.0, -1.0, -1.0, 1.0, 0.0, 0.0])
    r_rate = np.array([0.0, 0.0, 0.0, 1.0, 0.0, 1.0])
    u = np.array([0, 0, 0, 0, -1, 1], dtype=np.int8)
    sel = select(-1.0, u, X, r, 0.0, policy=BranchPolicy.GRADIENT_DESCENT, w=np.eye(4)[-1],
                 at_rest=True, r_rate=r_rate)
    side, clear = _gd_sides_with_moving_residuals(X, r, r_rate, -1.0, 4)
    assert clear and side.tolist() == [1, 1, 1, 1]
    assert sel.signs.tolist() == side.tolist()


def test_gd_at_rest_holds_a_silent_class_that_the_rate_returns():
    # the thorough profile of
    # test_at_rest_the_gd_policy_takes_gradient_descents_side_with_moving_residuals (session
    # 54, pre-existing): x_0 = x_2 with residuals −1 and +1 (their fields cancel), the rate of
    # r_0 (−1) returns the class from its + side, the active point's rate pushes it there from
    # −: it chatters at the rate's scale, held.  Gradient descent holds it and leaves x_1 to −.
    # The map at rest had held the class's slope at 1 on its + side, where the rate's field
    # carried x_1 across from below to its repulsive + side: [−1, +1, −1].  Now the class's
    # slope in the rate's field is its Filippov one (filippov._drift_slopes)
    X = np.array([[0, 2, -2, 0], [0, 0, 1, 0], [0, 2, -2, 0], [0, 0, 0, -1], [0, 0, 0, -1],
                  [0, 0, 2, 0.5]], dtype=float)
    r = np.array([-1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    r_rate = np.array([-1.0, 0.0, 0.0, 0.0, 0.0, -0.75])
    u = np.array([0, 0, 0, -1, -1, 1], dtype=np.int8)
    sel = select(-1.0, u, X, r, 0.0, policy=BranchPolicy.GRADIENT_DESCENT, w=np.eye(4)[-1],
                 at_rest=True, r_rate=r_rate)
    side, clear = _gd_sides_with_moving_residuals(X, r, r_rate, -1.0, 3)
    assert clear and side.tolist() == [0, -1, 0]
    assert sel.signs.tolist() == side.tolist()


def test_gd_at_rest_lets_the_rate_move_the_resting_hyperplanes_beside_a_departing_one():
    # the thorough profile of
    # test_at_rest_the_gd_policy_takes_gradient_descents_side_with_moving_residuals (session
    # 55, the same on session 54's code): x_3 = x_0 / 2 with residuals −1/2 and 1 (a silent
    # class), x_2 repulsive (leaves to + at O(1)), x_1 attractive.  The rate pushes x_1 to +,
    # whose field kicks the class to + at O(1) in gradient descent's first steps; on its +
    # side the class's own rate carries it away.  Gradient descent: [+, 0, +, +].  The map
    # at rest moved the rest by the rate only where every velocity was 0, never while x_2
    # departed: it held the class and x_1, and the rounds then left the class to −,
    # [−1, 0, 1, −1].  Now the rate moves the resting classes whenever the others depart for
    # good (filippov._departing)
    X = np.array([[0, -1, 1, 0, 0], [0, 0, -1, 1, 0], [-1, 0, 0, 0, 0], [0, -0.5, 0.5, 0, 0],
                  [-1, 1, 0, 1, 0.5]], dtype=float)
    r = np.array([-0.5, 0.5, -1.0, 1.0, 0.0])
    r_rate = np.array([0.0, 0.0, 0.0, -1.0, -1.0])
    u = np.array([0, 0, 0, 0, 1], dtype=np.int8)
    sel = select(1.0, u, X, r, 0.0, policy=BranchPolicy.GRADIENT_DESCENT, w=np.eye(5)[-1],
                 at_rest=True, r_rate=r_rate)
    side, clear = _gd_sides_with_moving_residuals(X, r, r_rate, 1.0, 4)
    assert clear and side.tolist() == [1, 0, 1, 1]
    assert sel.signs.tolist() == side.tolist()


def test_gd_at_rest_with_a_zero_leaves_a_tie_to_the_side_the_rate_put_it_on():
    # the thorough profile of test_at_rest_with_a_zero_the_gd_policy_takes_gradient_descents_side
    # (session 54, pre-existing): a = 0, three integer points on the neuron's hyperplanes,
    # the rate of the active point pushes all three to +; on their + sides x_0's and x_2's
    # velocities vanish (<x_2, r_0 x_0 + r_2 x_2> = 0), x_1 leaves at O(1).  Gradient
    # descent leaves all three to +; the selection held x_2 (slope 1 − 2τ on the field a
    # time τ later, a repulsive sliding mode).  Now the tie goes to its rate's side
    # (filippov._repulsive_ties; without it: [1, 1, 0])
    X = np.array([[0.5, 0, 0, 1, 0], [0, 0, 1, 1, 0], [1, 0, 0, 0, 0], [1, 0, 0, 1, 0.5]],
                 dtype=float)
    r = np.array([-1.0, 1.0, 0.5, 0.0])
    r_rate = np.array([0.0, 0.0, 0.0, 1.0])
    u = np.array([0, 0, 0, 1], dtype=np.int8)
    sel = select(0.0, u, X, r, 0.0, policy=BranchPolicy.GRADIENT_DESCENT, w=np.eye(5)[-1],
                 at_rest=True, r_rate=r_rate)
    side, clear = _gd_sides_with_moving_residuals(X, r, r_rate, 0.0, 3)
    assert clear and side.tolist() == [1, 1, 1]
    assert sel.signs.tolist() == side.tolist()


def test_the_reference_does_not_read_a_drift_below_the_chatter():
    # the thorough profile of
    # test_at_rest_the_gd_policy_takes_gradient_descents_side_with_moving_residuals (session
    # 55): x_2 = 2 x_1 with residuals 1 and −1/2 (a silent class), x_0 left to − by the
    # class's rate; the class slides in the rate's field (velocity +0.254 t from −, −0.339 t
    # from +, x_0 at −), which the selection holds.  Gradient descent chatters across it at
    # every step; the mean offsets read −7.1e-10, −6.2e-10 and −6.3e-10 at h = 8e-6, 4e-6,
    # 2e-6, which the extrapolation alone took for a departure to − (the test failed).  The
    # same means come out of the one-dimensional chatter of those two velocities, whose
    # amplitude halves with the step: a mean bounded by a vanishing amplitude, not a drift
    X = np.array([[0.0, 0.0, 1.0, 0.0, 0.0],
                  [-0.5386103998142227, 0.0, 1.0807428954134757, 0.9016516892599786, 0.0],
                  [-1.0772207996284453, 0.0, 2.1614857908269514, 1.8033033785199573, 0.0],
                  [-0.06786264, 0.0, 0.0, 1.2421875, 0.5],
                  [0.0, 0.0, 0.0, 0.0, -1.0], [0.0, 0.0, 0.0, 0.0, -1.0]])
    r = np.array([-1.0, 1.0, -0.5, 0.0, 0.0, 0.0])
    r_rate = np.array([0.0, -1.6493611550037146, 0.04215194242117822, 1.3170785861298215,
                       0.0, 0.0])
    n = X.shape[0]
    # the class's velocity per unit t in the rate's field (a = −1), x_0 at −, x_3 active
    v = [float(-(X[1] @ (-(r_rate * np.array([0, s, s, 1, 0, 0])) @ X / n))) for s in (0, 1)]
    assert v[0] > 0.2 and v[1] < -0.3  # pushed up from −, back from +: a sliding mode
    side, clear = _gd_sides_with_moving_residuals(X, r, r_rate, -1.0, 3)
    assert not clear
    u = np.array([0, 0, 0, 1, -1, -1], dtype=np.int8)
    sel = select(-1.0, u, X, r, 0.0, policy=BranchPolicy.GRADIENT_DESCENT, w=np.eye(5)[-1],
                 at_rest=True, r_rate=r_rate)
    assert sel.signs.tolist() == [-1, 0, 0]
    # the one-dimensional chatter: the mean about constant, the amplitude halving
    means, amplitudes = [], []
    for h in (8e-6, 4e-6, 2e-6):
        z, zs = 0.0, np.empty(int(0.04 / h))
        for i in range(zs.size):
            z += h * (i * h) * (v[1] if z > 0 else v[0])
            zs[i] = z
        window = zs[2 * zs.size // 3:]
        means.append(window.mean())
        amplitudes.append(np.abs(window).max())
    assert np.ptp(means) < 0.1 * abs(means[-1]) and abs(means[-1]) < 0.05 * amplitudes[-1]
    assert amplitudes[0] / amplitudes[-1] > 3.5
    # and a hyperplane kicked across by its neighbour's chatter (a = 0, x_2 almost
    # −4/3 x_1): its offsets change sign at every step, while the flow leaves it at 1e-4 of
    # the rate's speed (−8e-11 at t = 0.1): a first form of the rule, which read every such
    # chatter as held, failed the selection here under the thorough profile
    X = np.array([[0, 0, 1, 0], [1.5, 0, 0, 0], [-2, 0.0234375, 0, 0], [-1, 0, 0, 0.5]],
                 dtype=float)
    side, clear = _gd_sides_with_moving_residuals(X, np.array([-1.0, 1.0, 1.0, 0.0]),
                                                  np.array([0.0, 0.0, 0.0, -1.0]), 0.0, 3)
    assert not clear


def test_gd_at_rest_with_a_zero_leaving_a_third_hyperplane():
    # found when a change to at_rest_problems shifted the default profile's draws (the change
    # was not kept): the check of
    # test_at_rest_with_a_zero_the_gd_policy_takes_gradient_descents_side on this draw,
    # d = 5, three points on the neuron's hyperplanes, every r_K = −1, a = 0, only the
    # inactive point's residual moving: gradient descent leaves x_0, x_1 to + and x_2 to −,
    # read alike at t = 0.04 and 0.1 (steps 8e-6, 4e-6).  The selection held x_2 (a strict
    # xfail from session 46 to 55): on the field a time τ later its sliding mode is
    # repulsive and the rate's first push put it on −, which it now leaves to
    # (filippov._repulsive_ties; without it: [1, 1, 0])
    X = np.array([[0.0, 0.0, 0.0, 1.0, 0.0], [1.5, 0.0, 1.0, 1.0, 0.0],
                  [1.0, 0.0, 0.5, -1.0, 0.0], [0.0, 0.0, 0.0, 0.0, -1.0],
                  [0.0, 0.0, 0.0, 1.0, 0.5]])
    r = np.array([-1.0, -1.0, -1.0, 0.0, 0.0])
    r_rate = np.array([0.0, 0.0, 0.0, 0.0, -1.0])
    u = np.array([0, 0, 0, -1, 1], dtype=np.int8)
    sel = select(0.0, u, X, r, 0.0, policy=BranchPolicy.GRADIENT_DESCENT, w=np.eye(5)[-1],
                 at_rest=True, r_rate=r_rate)
    side, clear = _gd_sides_with_moving_residuals(X, r, r_rate, 0.0, 3)
    assert clear and side.tolist() == [1, 1, -1]
    assert sel.signs.tolist() == side.tolist()


@st.composite
def dependent_faces_with_an_opposite_pair(draw):
    """A neuron on ``q + 1`` hyperplanes whose points span only ``ρ < q`` dimensions
    (``ρ <= d − 1``: the face is not ``w = 0``), one of them the opposite of another
    (``x_q = −c x_0``), two points off their span, drawn residuals, an optional exit, the
    branch policy and, without an exit, whether the neuron starts there (``at_rest``)."""
    d = draw(st.integers(3, 5), label="d")
    rho = draw(st.integers(1, d - 1), label="rank")
    q = draw(st.integers(rho + 1, rho + 3), label="q")
    basis = draw(matrices(rho, d), label="basis")
    assume(np.linalg.matrix_rank(basis, tol=1e-3) == rho)
    XK = draw(matrices(q, rho), label="coef") @ basis
    assume(np.min(np.linalg.norm(XK, axis=1)) > 0.1)
    c = draw(st.floats(0.25, 4.0), label="c")
    others = draw(matrices(2, d), label="others")
    off = others - others @ np.linalg.pinv(basis) @ basis
    assume(np.min(np.linalg.norm(off, axis=1)) > 0.1)
    X = np.vstack([XK, -c * XK[:1], others])
    w = draw(matrices(d, 0), label="w")
    w -= basis.T @ np.linalg.lstsq(basis.T, w, rcond=None)[0]  # onto the face's hyperplanes
    s = others @ w
    assume(np.linalg.norm(w) > 0.1 and np.min(np.abs(s)) > 1e-3)
    u = np.zeros(X.shape[0], dtype=np.int8)
    u[q + 1:] = np.sign(s)
    r = draw(matrices(X.shape[0], 0), label="r")
    assume(np.min(np.abs(r)) > 1e-3)  # (r = 0 on K: D = 0, the neuron at rest)
    a = draw(st.sampled_from([-1.0, 1.0]), label="a") * draw(st.floats(0.1, 2.0), label="|a|")
    gamma = draw(st.sampled_from([0.0, 0.1, 0.5]), label="gamma")
    exits = draw(st.none() | st.dictionaries(st.integers(0, q), st.booleans(), min_size=1,
                                              max_size=1), label="exits")
    policy = draw(st.sampled_from(list(BranchPolicy)), label="policy")
    at_rest = exits is None and draw(st.booleans(), label="at_rest")
    return a, u, X, r, gamma, w, exits, policy, at_rest


@settings(suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(dependent_faces_with_an_opposite_pair())
def test_a_class_of_parallel_points_is_held_or_left_whole(prob):
    """Whatever :func:`select` decides on linearly dependent hyperplanes, a class of parallel
    points (here ``x_0`` and its opposite) is held or left as one, each member to its own
    side, and the face reached is one that some ``w`` lies on (a linear programme finds a
    direction into it).  Session 54: ``_depart_together`` read a class one member at a time
    and left ``x_0`` while holding ``x_3 = −x_0`` (a face no ``w`` lies on, then read as
    ``w = 0``: Lemma 1 broken, ``test_the_span_problem_of_a_rank_deficient_draw_keeps_lemma1``)."""
    from scipy.optimize import linprog

    a, u, X, r, gamma, w, exits, policy, at_rest = prob
    sel = select(a, u, X, r, gamma, exits=exits, w=w, policy=policy, at_rest=at_rest)
    rep, orient = parallel_classes(X[sel.K])
    assert np.array_equal(sel.signs, orient * sel.signs[rep]), (sel.K, sel.signs)
    # some direction v keeps <x_k, v> = 0 on the held and moves s_k <x_k, v> >= 1 off the left
    # (a linear programme, not pwflow's span test; select ends with that test by construction)
    held, left = sel.K[sel.signs == 0], sel.K[sel.signs != 0]
    feasible = linprog(np.zeros(X.shape[1]),
                       A_ub=-(sel.signs[sel.signs != 0, None] * X[left]) if left.size else None,
                       b_ub=-np.ones(left.size) if left.size else None,
                       A_eq=X[held] if held.size else None,
                       b_eq=np.zeros(held.size) if held.size else None,
                       bounds=(None, None), method="highs")
    assert feasible.status == 0, (sel.K, sel.signs, feasible.message)


def _cell_field(u: np.ndarray, X: np.ndarray, r: np.ndarray, gamma: float) -> np.ndarray:
    """``D`` on the open cell ``u`` (every entry ±1): ``−(1/n) Σ_k r_k η(u_k) x_k``, Eq. (6)."""
    return -((np.where(u > 0, 1.0, gamma) * r) @ X) / X.shape[0]


def _arrival_velocities(approach, X, r, gamma, s_a, p=2):
    """``s_a <D, x_k> / scale`` for k < p on the open cell ``approach``."""
    size = (np.sum(np.abs(r) * np.linalg.norm(X, axis=1)) / X.shape[0]
            * np.linalg.norm(X[:p], axis=1))
    return s_a * (X[:p] @ _cell_field(approach, X, r, gamma)) / size


@st.composite
def hyperplane_arrivals(draw, p: int = 2):
    """A neuron on the hyperplanes of x_0 … x_{p−1} (only those: d = p + 1 … 5, the points in
    general position) and a cell it arrives from: that cell's field moves it towards all of
    them (by more than 1e-6 of the field's scale)."""
    d = draw(st.integers(p + 1, 5))
    n = draw(st.integers(p, p + 4))
    X = draw(general_position(n, d))  # (no other hyperplane through their intersection)
    r = draw(matrices(n, 0))
    assume(np.all(np.abs(r[:p]) > 1e-3))
    u = draw(arrays(np.int8, (n,), elements=st.sampled_from([-1, 1])))
    u[:p] = 0
    a = draw(st.sampled_from([-1.0, 1.0])) * draw(st.floats(0.1, 2.0))
    gamma = draw(st.sampled_from([0.0, 0.1, 0.5]))
    cells = []
    for s in itertools.product((-1, 1), repeat=p):
        approach = u.copy()
        approach[:p] = s
        v = _arrival_velocities(approach, X, r, gamma, np.sign(a), p=p)
        if np.all(-approach[:p] * v > 1e-6):
            cells.append(approach)
    assume(cells)
    return a, u, X, r, gamma, draw(st.sampled_from(cells))


#: neuron 3 of test_integrator.py's codimension-two arrival at t = 6.016478 (its x_1, x_2
#: first): crossing both, and not crossing either one, are all continuations
_CODIMENSION_TWO_ARRIVAL = (
    -1.0, np.array([0, 0, 1], np.int8),
    np.array([[0, 0, -0.125, 0, -0.125], [0.125, 0.125, 0.125, -0.25, 0],
              [0.125, 0, 0, 0, -0.125]]),
    np.array([0.49986835, 0.499919, 0.49985566]), 0.0, np.array([-1, -1, 1], np.int8))


@given(hyperplane_arrivals(), st.sampled_from(list(BranchPolicy)))
@example(_CODIMENSION_TWO_ARRIVAL, BranchPolicy.MIN_NORM)
@example(_CODIMENSION_TWO_ARRIVAL, BranchPolicy.GRADIENT_DESCENT)
def test_two_hyperplanes_crossed_at_once_branch_where_not_crossing_one_is_a_continuation(
        prob, policy):
    """A neuron meeting the hyperplanes of x_0 and x_1 at once from the cell ``approach``.
    Where it crosses both, the selection flags x_k as a branch wherever staying on the side
    of x_k it came from, crossing the other, is a consistent continuation too (read here on
    the two open cells' fields directly: no hyperplane is held).  And every branch it flags
    is one: the brute force finds a consistent continuation that differs there."""
    _check_branches_of_a_simultaneous_arrival(prob, policy, 2)


def _check_branches_of_a_simultaneous_arrival(prob, policy, p):
    """Every flagged branch is one (brute force); where all ``p`` hyperplanes are crossed,
    each set of them whose not being crossed (the others crossed) is consistent on its open
    cell's field is flagged."""
    a, u, X, r, gamma, approach = prob
    sel = select(a, u, X, r, gamma, policy=policy, approach=approach)
    found = _brute_force(a, u, X, r, gamma)
    for k in np.flatnonzero(sel.branch):
        assert any(s[k] != sel.signs[k] for s, _ in found), k
    crossed = np.array_equal(sel.signs, -approach[:p])
    event(f"crosses all {p}: {crossed}")
    if not crossed:
        return
    for size in range(1, p):
        for S in itertools.combinations(range(p), size):
            cell = -approach.copy()
            cell[p:] = u[p:]
            cell[list(S)] = approach[list(S)]  # S not crossed, the others crossed
            v = _arrival_velocities(cell, X, r, gamma, np.sign(a), p=p) * cell[:p]  # > 0: into it
            assume(np.all(np.abs(v) > 1e-8))
            event(f"not crossing {size} of {p} consistent: {bool(np.all(v > 0))}")
            if np.all(v > 0):
                assert np.all(sel.branch[list(S)]), (S, v, sel.branch)


#: found by a random search (session 57): crossing all three is chosen, and not crossing
#: x_1 and x_2 together is a continuation where not crossing any one of them is not
_NOT_CROSSING_A_PAIR = (
    -1.0, np.array([0, 0, 0, 1], np.int8),
    np.array([[-0.5, 0.25, 0.0, -0.75, 1.0], [-0.5, -0.25, 0.0, 0.0, -1.0],
              [-1.0, -0.75, -1.0, 0.25, -0.5], [0.5, -0.75, 0.25, -0.75, -0.5]]),
    np.array([1.0, -0.25, 1.0, 0.0]), 0.1, np.array([-1, -1, -1, 1], np.int8))


@given(hyperplane_arrivals(p=3), st.sampled_from(list(BranchPolicy)))
@example(_NOT_CROSSING_A_PAIR, BranchPolicy.MIN_NORM)
@example(_NOT_CROSSING_A_PAIR, BranchPolicy.GRADIENT_DESCENT)
@settings(suppress_health_check=[HealthCheck.filter_too_much])
def test_three_hyperplanes_crossed_at_once_branch_where_not_crossing_some_is_a_continuation(
        prob, policy):
    """As the two-hyperplane test above, with three met at once: where the selection crosses
    all three, every hyperplane of every set ``S`` (one or two of them) whose not being
    crossed, the others crossed, is a consistent continuation (on the open cell's field) is
    flagged a branch; and every flagged branch is one (brute force).  Before session 57 only
    single hyperplanes were tried, and a pair such as :data:`_NOT_CROSSING_A_PAIR` was not
    flagged."""
    _check_branches_of_a_simultaneous_arrival(prob, policy, 3)


def test_not_crossing_a_pair_is_missed_with_single_classes_only(monkeypatch):
    """The mechanism off: with :data:`pwflow.filippov.UNCROSSED_MAX_CLASSES` below the three
    crossed classes, only single classes are tried, and :data:`_NOT_CROSSING_A_PAIR`'s
    pair goes unflagged, as before session 57."""
    import pwflow.filippov as fl
    a, u, X, r, gamma, approach = _NOT_CROSSING_A_PAIR
    sel = select(a, u, X, r, gamma, approach=approach)
    assert sel.signs.tolist() == [1, 1, 1] and sel.branch.tolist() == [False, True, True]
    monkeypatch.setattr(fl, "UNCROSSED_MAX_CLASSES", 2)
    assert not select(a, u, X, r, gamma, approach=approach).branch.any()


@given(arrays(float, st.integers(1, 5), elements=st.floats(-10.0, 10.0)),
       arrays(float, 5, elements=st.one_of(st.just(0.0), st.floats(1e-12, 1e-3),
                                           st.floats(-1e-3, -1e-12))))
def test_the_rates_jump_lands_the_first_class_to_arrive_just_above_its_hyperplane(z, drift):
    """:func:`pwflow.filippov._drift_jump`: the class that the rate brings to its hyperplane
    first (from below) lands strictly on its ``+`` side, at most a spacing of its offset
    above 0 (session 56: ``1e-300 − z`` rounded to ``−z`` and it landed on 0, read
    ``σ'(0) = γ`` again and never crossed); the others move by the same time's drift."""
    from pwflow.filippov import _drift_jump

    drift = drift[: z.size]
    rising = (drift > 0.0) & (z <= 0.0)
    move = _drift_jump(z, drift)
    if not np.any(rising):
        np.testing.assert_array_equal(move, drift)
        return
    times = -z[rising] / drift[rising]
    first = np.flatnonzero(rising)[np.argmin(times)]
    landed = z[first] + move[first]
    assert 0.0 < landed <= max(np.spacing(abs(z[first])), 1e-300)
    others = np.arange(z.size) != first
    np.testing.assert_array_equal(move[others], times.min() * drift[others])


def test_gd_at_rest_with_a_zero_leaves_x1_whose_velocity_the_rate_turns_back_later():
    """The thorough profile's draw of
    :func:`test_at_rest_with_a_zero_the_gd_policy_takes_gradient_descents_side` (session 56):
    d = 5, ``a = 0`` (``s_a = −1`` from ``d²a/dt²``), the neuron on ``x_0`` and ``x_1``, ``r
    = (1, −0.5)``, ``dr_1/dt = −1``.  The selection leaves both to ``+``; gradient descent
    read at t = 0.04 and 0.1 holds ``x_1``.  Both are right: on ``(+, +)`` ``x_1``'s velocity
    ``s_a <D, x_1>`` is +0.012 at t = 0 and its own residual's rate turns it at t = 0.02,
    after which ``x_1`` slides (its ``−`` side pushes back up).  The reference's filter now
    skips such draws (a departure turned back within its horizon)."""
    X = np.array([[-0.8125, -1.0, 0.0, 0.0, 0.0], [-1.5625, 0.0, 0.0, 0.0, 0.0],
                  [0.0, -1.0, 0.0, 0.0, 0.5], [0.0, 0.0, 0.0, 0.0, -1.0]])
    r, r_rate = np.array([1.0, -0.5, 0.0, 0.0]), np.array([0.0, -1.0, 0.0625, 0.0])
    u = np.array([0, 0, 1, -1], np.int8)
    sel = select(0.0, u, X, r, 0.0, policy=BranchPolicy.GRADIENT_DESCENT,
                 w=np.eye(5)[-1], at_rest=True, r_rate=r_rate)
    assert sel.signs.tolist() == [1, 1]

    def v1(t, cell):  # s_a <D, x_1> on the cell of x_0, x_1 (x_2 active), s_a = −1
        eta = np.array([1.0 if c > 0 else 0.0 for c in cell] + [1.0, 0.0])
        return (((r + t * r_rate) * eta) @ X / 4) @ X[1]

    assert v1(0.0, (1, 1)) > 0.01 and v1(0.019, (1, 1)) > 0 > v1(0.021, (1, 1))
    assert v1(0.04, (1, 1)) < 0 < v1(0.04, (1, -1))  # attractive from both sides: it slides


def test_gd_at_rest_with_a_repeated_point_of_opposite_residuals_among_four():
    """The thorough profile's draw of
    :func:`test_at_rest_the_gd_policy_takes_gradient_descents_side_with_moving_residuals`
    (session 56, a strict xfail until session 57): d = 4, ``a = 1``, the neuron on four
    hyperplanes, ``x_0 = x_3`` with residuals −1 and +1 (a silent class), ``dr_3/dt = 2``,
    the active points' rates ``b' = −(1, 0, 1, 0)/7``.

    The flow: ``b'`` pushes the class to ``+``, where its own field ``−2t x_0 / 7`` pushes
    it back four times harder: it slides at slope 1/4.  ``x_1`` and ``x_2`` are repulsive
    on ``+`` (their own fields, ``r = −1``) and pushed to ``−``: ``x_1`` by ``b'``, ``x_2``
    by ``b'`` and the sliding class together (``−t/7 + t/14``).  The selection: ``(0, −1,
    −1, 0)``.

    Gradient descent from exactly 0 reads ``(−1, −1, +1, −1)``: its second step puts the
    class wholly on ``+`` for one step, whose field kicks ``x_2`` (``<x_0, x_2> = −1``)
    across by ``h²/7`` against the ``−h²/7`` that ``b'`` had moved it, and there its own
    field carries it away at O(1).  That is a race within one step, scaled alike at every
    step (the same at 8e-6, 4e-6, 2e-6).  From offsets ``−10⁻¹¹ ‖x_k‖``, a cell that
    ``σ'(0) = 0`` reads as the same as 0, gradient descent reads the selection's sides.
    The reference now reports such a reading as not clear, and the property test skips
    the draw."""
    X = np.array([[0.0, 1.0, -1.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0],
                  [0.0, 1.0, -1.0, 0.0], [0.0, 0.0, -1.0, 0.5], [0.0, 0.0, 0.0, -1.0],
                  [1.0, 0.0, 0.0, 0.5]])
    r = np.array([-1.0, -1.0, -1.0, 1.0, 0.0, 0.0, 0.0])
    r_rate = np.array([0.0, 0.0, 0.0, 2.0, -1.0, 0.0, 1.0])
    u = np.array([0, 0, 0, 0, 1, -1, 1], dtype=np.int8)
    sel = select(1.0, u, X, r, 0.0, policy=BranchPolicy.GRADIENT_DESCENT, w=np.eye(4)[-1],
                 at_rest=True, r_rate=r_rate)
    assert sel.signs.tolist() == [0, -1, -1, 0]
    horizons = (4e-2, 1e-1)
    at_zero = _gd_sides_from(X, r, r_rate, 1.0, 4, np.eye(4)[-1], horizons)
    assert all(c and s.tolist() == [-1, -1, 1, -1] for s, c in at_zero)
    inside = np.array([-1.0, -1.0 - np.sqrt(2.0), -1.0, 1e11]) * 1e-11  # <x_k, w> = −1e-11 ‖x_k‖
    np.testing.assert_allclose(X[:4] @ inside, -1e-11 * np.linalg.norm(X[:4], axis=1))
    assert all(c and s.tolist() == [0, -1, -1, 0]
               for s, c in _gd_sides_from(X, r, r_rate, 1.0, 4, inside, horizons))
    assert not _gd_sides_with_moving_residuals(X, r, r_rate, 1.0, 4)[1]


def test_an_arrival_at_zero_with_a_velocity_of_rounding_is_at_rest():
    """``through_origin`` on rank-1 data (``x_1 = −2 x_0``), arriving from ``x_0``'s active
    side: with ``r_0 = 0.1`` the arrival velocity ``−r_0 x_0 / n`` is real and the passage to
    ``x_1``'s active side (``r_1 = −1``: repulsive there) is a consistent continuation; with
    ``r_0 = 1.1e-16`` (the residual vanished with the offsets: an exponential approach) the
    velocity is rounding and there is no passage (:func:`~pwflow.filippov.arrives_at_rest`),
    under either policy and for gradient descent's map."""
    from pwflow import filippov

    X = np.array([[1.0, 0.0, 0.75, 1.0], [-2.0, -0.0, -1.5, -2.0]])
    u_in = np.array([1, -1], dtype=np.int8)
    moving = filippov.through_origin(1.0, u_in, X, np.array([0.1, -1.0]), 0.0)
    assert moving is not None and list(moving.signs) == [-1, 1]
    r = np.array([1.10297147e-16, -1.0])
    v = filippov.arrival_velocity(1.0, u_in, X, r, 0.0)
    assert filippov.arrives_at_rest(v, X, r)
    assert not filippov.arrives_at_rest(
        filippov.arrival_velocity(1.0, u_in, X, np.array([0.1, -1.0]), 0.0), X,
        np.array([0.1, -1.0]))
    for policy in BranchPolicy:
        assert filippov.through_origin(1.0, u_in, X, r, 0.0, policy) is None
    assert filippov.gd_through_origin(1.0, u_in, X, r, 0.0) is None


def _one_map_step(z, v, steps):
    """The map of ``filippov._gd_at_rest`` one step at a time (its loop before session 61)."""
    z = z + steps[0] * v
    return z, 1, np.sign(z)[None]


def _map_run_step_by_step(z, v, steps):
    """``filippov._map_run``'s reference: steps ``z ← z + h_i v`` one at a time, up to and
    including the first whose offsets' signs differ from the start's."""
    start, signs = np.sign(z), []
    for h in steps:
        z = z + h * v
        signs.append(np.sign(z))
        if not np.array_equal(signs[-1], start):
            break
    return z, len(signs), np.array(signs)


@given(data=st.data(), k=st.integers(1, 5), kind=st.sampled_from(["one", "ramp", "uneven"]))
def test_the_maps_block_is_its_steps_one_at_a_time(data, k, kind):
    """``_map_run`` (session 61: gradient descent's map at rest takes the steps at which no
    offset changes sign in one block) gives the offsets, the count and the signs after each
    step of the map taken one step at a time, bit for bit (the same sums in the same order),
    on drawn offsets and velocities (zeros and signs changing at any step among them) and
    each kind of step (1, a ramp ``i + 1``, the uneven ``1 ± 5e-4``)."""
    from pwflow.filippov import _map_run, _map_step_sequence

    num = st.sampled_from([0.0, 1e-300, -1e-300]) | st.floats(-1.0, 1.0)
    z = np.array(data.draw(st.lists(num, min_size=k, max_size=k), label="z"))
    v = np.array(data.draw(st.lists(num, min_size=k, max_size=k), label="v"))
    i0 = data.draw(st.integers(0, 349), label="first step")
    steps = _map_step_sequence(kind == "ramp", kind == "uneven")[i0: i0 + 50 - i0 % 50]
    got, ref = _map_run(z, v, steps), _map_run_step_by_step(z, v, steps)
    np.testing.assert_array_equal(got[0], ref[0])
    assert got[1] == ref[1]
    np.testing.assert_array_equal(got[2], ref[2])


def test_the_map_runs_a_steady_orthant_in_one_block():
    """``_map_run`` on a velocity that changes no sign for the whole chunk takes every step
    at once, with the offsets of repeated addition; where a sign changes it stops at that
    step."""
    from pwflow.filippov import _map_run

    z0, v = np.array([-0.2, 0.19, 0.0]), np.array([1.95e-5, -1.51e-5, 0.0])
    z, count, signs = _map_run(z0, v, np.ones(50))
    ref = z0.copy()
    for _ in range(50):
        ref = ref + v
    assert count == 50 and np.array_equal(z, ref)
    assert np.array_equal(signs, np.tile(np.sign(z0), (50, 1)))
    # a class reaching the other side at step 4 (-0.1 + 4 × 0.03 > 0): four steps, the last
    # one read on its new side
    z, count, signs = _map_run(np.array([-0.1, 0.5]), np.array([0.03, 0.01]), np.ones(50))
    assert count == 4 and signs[-1].tolist() == [1, 1] and signs[-2].tolist() == [-1, 1]


def test_gd_at_rest_near_a_tangent_side_runs_its_chunks_in_blocks():
    """The map that made a run of four neurons take 70 s (``tests/explore_integer.py`` seed
    73851, t = 200, session 61; its 1 595 calls at t ≤ 100 all ran the 400 steps): a neuron
    on three dependent hyperplanes at a critical point (the rows of ``XK``: the third is
    half the second minus the first), the watch's reading at t ≈ 98.  The map cycles
    through three orthants for seven steps, then sits in ``(−, −, +)`` at velocities ~2e-5
    pointing back, which no step of the 400 reaches.  In blocks: the same output as step by
    step, bit for bit, in 11 calls of ``_map_run`` (400 with one step each)."""
    from unittest import mock

    import pwflow.filippov as filippov

    XK = np.array([[-1.0, 0.0, 0.0], [2.0, 2.0, 2.0], [2.0, 1.0, 1.0]])
    b = np.array([-0.2989955087402132, -0.256281547603999, -0.25628265721064214])
    Zrows = np.array([[-0.09311647577173804, 0.0, 0.0], [0.33393405869028703] * 3,
                      [0.17860623302597003, 0.08930311651298502, 0.08930311651298502]])
    classes = (np.arange(3), np.ones(3, dtype=np.int8))
    tol = np.array([1.3601046442505921e-11, 4.711540694904837e-11, 3.331562375203589e-11])
    calls = []
    blocks = filippov._map_run

    def counted(run):
        def call(*args):
            calls.append(args[2].size)
            return run(*args)
        return call

    outs = []
    for run in (blocks, _one_map_step):
        calls.clear()
        with mock.patch.object(filippov, "_map_run", counted(run)):
            outs.append(filippov._gd_at_rest(-1.0, b, Zrows, XK, 0.5, None, classes, tol,
                                             sides=np.array([1, 0, -1], dtype=np.int8),
                                             drift_beside_departures=False))
        outs.append(len(calls))
    fast, n_fast, slow, n_slow = outs
    for x, y in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(x, y)
    assert n_slow == filippov.GD_MAP_STEPS and n_fast <= 20, (n_fast, n_slow)


#: session 61, ``tests/explore_wide.py`` seed 158 at ``rtol = 1e-11``: neuron 27 (a > 0) on
#: the hyperplanes of x_1, x_3, x_5, x_8 and x_13 (five points in the plane x = y, rank 2,
#: ``x_13 = −2 x_1``) at a sliding mode at rest (``|<D, x_k>| ~ 1e-11``), its slope on x_3
#: at the bound 1; the face and the residuals at that exit
_EXIT_AT_REST_ON_RANK_TWO = dict(
    X=np.array([[1, -1, 0], [1, 1, -1], [2, -1, -1], [2, 2, 2], [-2, -1, 2], [0, 0, 2],
                [-2, -1, 0], [2, -2, -1], [1, 1, -2], [2, -1, 0], [1, 0, 1], [-1, 1, 2],
                [-2, 0, -2], [-2, -2, 2]], dtype=float),
    u=np.array([1, 0, 1, 0, -1, 0, -1, 1, 0, 1, 1, -1, -1, 0], dtype=np.int8),
    r=np.array([0.3506016721003508, 0.49846913044612895, 0.29200729262735986,
                0.15890795092304286, -0.6750840505294523, 0.2950718554884766,
                0.4225536416324103, 0.21131372354496492, -0.38962357835072475,
                -0.6795392593693398, -0.5883822603720106, 0.22961852215166745,
                -0.2262550216888756, 0.2580553459190033]),
    a=0.17385547204762558, w=np.array([0.12293438323126385, -0.12293438323126381, 5.1e-19]),
    gamma=0.1)


@pytest.mark.parametrize("policy", list(BranchPolicy))
def test_an_exit_whose_face_of_departure_turns_back_takes_a_consistent_face(policy):
    """An exit from dependent hyperplanes whose rounds end on no face is mapped to the face
    of its departure (session 54); where that face's own field turns the neuron back across
    hyperplanes it leaves, it is no continuation either, and the minimal-norm consistent
    face is taken (session 61).  Before: the signs (−, +, +, −, +) on x_1, x_3, x_5, x_8,
    x_13, whose field has velocities (+0.11, +0.13, −0.045, +0.13, −0.22): the next step
    found the neuron across four of them, a grazing at the same time again and again, and
    the run stopped at the Zeno guard (status −2).  Now a face (some ``w`` lies on it) whose
    left hyperplanes move to their sides and whose held ones are tangent."""
    c = _EXIT_AT_REST_ON_RANK_TWO
    X = c["X"]
    sel = select(c["a"], c["u"], X, c["r"], c["gamma"], exits={3: True}, policy=policy,
                 w=c["w"])
    assert sel.K.tolist() == [1, 3, 5, 8, 13]
    v = X[sel.K] @ sel.D  # a > 0: <dw/dt, x_k> has the sign of <D, x_k>
    left = sel.signs != 0
    scale = np.max(np.abs(v))
    assert np.all(sel.signs[left] * v[left] > 1e-6 * scale), (sel.signs, v)
    assert np.all(np.abs(v[~left]) <= 1e-9 * scale), (sel.signs, v)
    # a face: a direction keeps the held offsets at 0 and moves each left one to its side
    held = X[sel.K[~left]]
    basis = np.linalg.svd(held)[2][np.linalg.matrix_rank(held):] if held.size else np.eye(3)
    coef, *_ = np.linalg.lstsq(sel.signs[left, None] * X[sel.K[left]] @ basis.T,
                               np.ones(int(left.sum())), rcond=None)
    assert np.all(sel.signs[left] * (X[sel.K[left]] @ (basis.T @ coef)) > 0.5)


def test_a_run_leaving_five_dependent_hyperplanes_at_rest_at_a_tight_tolerance_finishes():
    """The run of ``tests/explore_wide.py`` seed 158 at ``rtol = 1e-11`` (the Zeno stop of
    session 61, 200 grazings within 2.9e-13 time units at t = 7.254134): it reaches t = 8
    with status 0, neuron 27 off x_1, x_3, x_8 and x_13 to the sides of its face."""
    from explore_wide import draw

    X, y, W, a, gamma, loss = draw(158)
    tr = pwflow.simulate(pwflow.Dataset(X, y), pwflow.from_arrays(W, a), 8.0, gamma=gamma,
                         loss=loss, options=pwflow.FlowOptions(rtol=1e-11, atol=1e-14))
    assert tr.status == 0, tr.message
    W8, _ = tr.state(8.0)
    offsets = W8[27] @ X[[1, 3, 8, 13]].T
    assert np.all(np.sign(offsets) == [1, 1, 1, -1]) and np.min(np.abs(offsets)) > 1e-6


#: session 62, ``tests/explore_integer.py`` seed 73995 (d = 3, ReLU, square loss): neuron 3
#: (a < 0) held at ``w = 0`` since t = 3.47, the residuals where its face's regime read an
#: exit (t = 8.27367074 at ``rtol = 1e-13``), ``r_2`` just past 0.  x_0, x_1, x_4, x_5 are
#: coplanar (``x_1 = −x_0 − 4 x_4``, ``x_5 = x_0 + x_4``): their hyperplanes meet on the ray
#: spanned by (1, 0, 2)
_ORIGIN_AS_R2_PASSES_ZERO = dict(
    X=np.array([[2, -2, -1], [-2, -2, 1], [2, -1, 1], [-2, 0, -1], [0, 1, 0], [2, -1, -1],
                [-4, 2, -2], [-4, 2, -2]], dtype=float),
    r=np.array([0.5407876146939479, -0.17864521892816398, 7.181649719356642e-11,
                -0.5648040432594117, 0.02451585683072155, -0.6926578411663163,
                -0.5247818488474243, 0.5234144140455665]),
    a=-0.20138881340565262)
_THE_RAY = [0, 0, 1, -1, 0, 0, -1, -1]


def _ray_field(X, r):
    """The minimal-norm ``D`` on the ray's face (x_2 active, x_3, x_6, x_7 inactive, the
    other four free in [0, 1]), by scipy's BVLS (not pwflow's solver)."""
    from scipy.optimize import lsq_linear

    n = X.shape[0]
    b = -(r[2] * X[2]) / n
    Z = -(r[[0, 1, 4, 5], None] * X[[0, 1, 4, 5]]).T / n
    eta = lsq_linear(Z, -b, bounds=(0.0, 1.0), method="bvls", tol=1e-15).x
    return b + Z @ eta


@pytest.mark.parametrize("r2", [1e-12, 5e-11, 7.181649719356642e-11, 7.2e-11, 9e-11, 1e-10,
                                1e-8, 1e-6, 1e-4])
@pytest.mark.parametrize("exit_hint", [None, {3: False}])
def test_a_departure_from_zero_as_its_residual_passes_zero_is_the_ray_at_every_scale(
        r2, exit_hint):
    """As ``r_2`` passes 0 the minimal-norm element of ``𝔇(0)`` grows from 0 along the ray
    (``|D| ∝ r_2``), its normal velocities crossing their rounding one at a time.  The rule
    stays (all below) or departs on the ray, whose departure the held hyperplanes x_0, x_1,
    x_4, x_5 force on x_2, x_6, x_7 along with x_3; never the open cell (−, −, −, −, +, −,
    +, +) at ``|D| = 2.8e-3`` (before session 62, for ``r_2`` in about (7.18e-11, 1e-10):
    the ray was read as inconsistent where x_3's velocity was resolved and x_2's not, and
    the enumeration took that cell; the runs at ``rtol ≤ 1e-12`` left 0 into it).  The
    ray's field is checked against scipy's BVLS, and its direction against the signs."""
    c = _ORIGIN_AS_R2_PASSES_ZERO
    X, r = c["X"], c["r"].copy()
    r[2] = r2
    sel = select(c["a"], np.zeros(8, np.int8), X, r, 0.0, exits=exit_hint, w=np.zeros(3))
    if exit_hint is None and not np.any(sel.signs):
        assert r2 < 1e-10, "the departure resolved on every hyperplane"
        return
    assert sel.signs.tolist() == _THE_RAY, sel.signs
    D = _ray_field(X, r)
    assert np.linalg.norm(sel.D - D) <= 1e-9 * np.linalg.norm(D) + 1e-25
    assert np.linalg.norm(D) <= 0.3 * r2  # |D| = r_2 √5 / 10 here, not 2.8e-3
    v = c["a"] * (X @ D)  # the velocities of the offsets
    ray = np.array(_THE_RAY)
    assert np.all(ray[ray != 0] * v[ray != 0] > 0)
    assert np.all(np.abs(v[ray == 0]) <= 1e-12 * np.max(np.abs(v)))


def test_a_neuron_leaving_zero_at_a_residuals_root_takes_the_same_ray_at_every_tolerance():
    """``tests/explore_integer.py`` seed 73995 to t = 10: the default run and the runs at
    ``rtol = 1e-12`` and ``1e-13`` log the same rows (neuron 3 leaves 0 along the ray at
    t = 8.27367, a branch point on x_0) and end within 1e-11 (measured 7.0e-13; before
    session 62 the tight runs left 0 into an open cell, 2.3e-3 from the default one)."""
    from explore_integer import draw

    X, y, W, a, gamma, loss, _ = draw(73995)
    runs = [pwflow.simulate(pwflow.Dataset(X, y), pwflow.from_arrays(W, a), 10.0, gamma=gamma,
                            loss=loss, options=pwflow.FlowOptions(**opts))
            for opts in ({}, {"rtol": 1e-12, "atol": 1e-15}, {"rtol": 1e-13, "atol": 1e-16})]
    rows = [list(zip(tr.events["neuron"].tolist(), tr.events["k"].tolist(),
                     tr.events["kind"].tolist(), strict=True)) for tr in runs]
    assert all(tr.status == 0 for tr in runs) and rows[1] == rows[0] and rows[2] == rows[0]
    assert (3, 0, int(EventKind.BRANCH)) in rows[0]
    W0, a0 = runs[0].state(10.0)
    for tr in runs[1:]:
        W1, a1 = tr.state(10.0)
        assert max(np.max(np.abs(W1 - W0)), np.max(np.abs(a1 - a0))) <= 1e-11
