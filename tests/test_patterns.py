"""The face table's fast paths against the general minimal-norm solver (issues 10 and 13).

* :meth:`PatternTable.plan_fields` (the vector field's :class:`FacePlan`: one, two and more
  free slopes sorted once per solver start) against :meth:`PatternTable.fields`, bitwise;
* :meth:`PatternTable.single_fields` on a stack of residuals (a leading time axis, so that the
  face events' search evaluates the regime at many times in one call): each row must be the
  very numbers of a call with that row alone, and of the general solver, since the event log
  depends on them to the last bit.
"""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import assume, example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pwflow.patterns import PatternTable
from pwflow.subgradient import parallel_classes


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
    plan = table.face_plan(len(table)).single  # at most one free slope per face
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


@st.composite
def _faces(draw):
    """Data (some points parallel, so that faces are coupled), patterns with 0–4 free slopes,
    which of the first ``P`` are integrated, and residuals."""
    d = draw(st.integers(2, 5))
    n = draw(st.integers(2, 8))
    coords = st.floats(-2.0, 2.0, allow_nan=False, allow_subnormal=False)
    X = np.array(draw(st.lists(st.lists(coords, min_size=d, max_size=d), min_size=n, max_size=n)))
    for k in range(1, n):
        if draw(st.booleans()) and draw(st.booleans()):  # x_k a multiple of an earlier point
            X[k] = draw(st.sampled_from([-2.0, -0.5, 0.5, 3.0])) * X[draw(st.integers(0, k - 1))]
    X[np.all(np.abs(X) < 1e-3, axis=1), 0] = 1.0  # no zero data point
    free = st.integers(0, min(4, n))
    rows = []
    for _ in range(draw(st.integers(1, 12))):
        u = np.array(draw(st.lists(st.sampled_from([-1, 1]), min_size=n, max_size=n)), np.int8)
        u[draw(st.permutations(range(n)))[: draw(free)]] = 0
        if not any(np.array_equal(u, v) for v in rows):  # each face registered once
            rows.append(u)
    P = draw(st.integers(1, len(rows)))
    active = np.array(draw(st.lists(st.booleans(), min_size=P, max_size=P)))
    r = np.array(draw(st.lists(coords, min_size=n, max_size=n)))
    gamma = draw(st.sampled_from([0.0, 0.1, 0.5]))
    return X, np.array(rows), P, active, r, gamma


def _table(X, U, gamma):
    tab = PatternTable(X, gamma)
    for u in U:
        tab.index(u)
    return tab.arrays()


@given(_faces())
def test_plan_fields_are_the_general_fields_bitwise(case):
    """Faces with one, two and more free slopes, coupled (parallel points) or not, frozen or
    not integrated: the plan gives the general path's numbers exactly (both fed the same
    warm starts: two tables)."""
    X, U, P, active, r, gamma = case
    fast, general = _table(X, U, gamma), _table(X, U, gamma)
    G = fast.plan_fields(fast.face_plan(P, active), r)
    # the general path on the same P rows: a matrix product's rounding may depend on its
    # number of rows (BLAS blocking), so ``fields`` on all registered faces is not bitwise
    ref = general.minimal_norm(np.arange(P), r)[0]
    ref[~active] = 0.0
    assert G.shape == ref.shape
    np.testing.assert_array_equal(G, ref)
    plan = fast.face_plan(P, active)
    cases = np.concatenate([plan.single.one, plan.two, plan.many, plan.single.zero])
    assert np.unique(cases).size == cases.size  # each face in one case at most
    none = np.setdiff1d(np.arange(P), cases)
    assert np.all(fast.nfree[none] == 0)  # the others have no free slope: η⁰ is their field



@given(_faces(), st.data())
def test_minimal_norm_on_a_stack_of_residuals_equals_row_by_row_calls(case, data):
    """``minimal_norm`` with residuals at ``T`` times (the face events' search reads the
    several-slope faces' regime at every time of a level in one call): each row the very
    numbers — field, slopes, ``η*`` — of a call with that row alone, from the same (cold)
    warm starts, for faces with one, two and more free slopes, coupled or not."""
    X, U, P, active, r, gamma = case
    coords = st.floats(-2.0, 2.0, allow_nan=False, allow_subnormal=False)
    more = data.draw(st.lists(st.lists(coords, min_size=r.size, max_size=r.size), max_size=4),
                     label="more residuals")
    R = np.array([r] + more)
    faces = np.arange(P)
    G, eta, est = _table(X, U, gamma).minimal_norm(faces, R)
    assert G.shape == (R.shape[0], P, X.shape[1]) and eta.shape == (R.shape[0], P, X.shape[0])
    for t in range(R.shape[0]):
        G1, eta1, est1 = _table(X, U, gamma).minimal_norm(faces, R[t])
        np.testing.assert_array_equal(G[t], G1)
        np.testing.assert_array_equal(eta[t], eta1)
        np.testing.assert_array_equal(est[t], est1)


@given(_faces(), st.data())
def test_held_sliding_faces_get_the_tangent_field_and_agree_inside_the_box(case, data):
    """:meth:`PatternTable.holding`: a held face's field is its fixed part projected onto the
    face, ``(I − P_K) b``, tangent to every free hyperplane whatever the size of the ``r_k``;
    where the box's minimiser is tangent too (its slopes inside) the two agree to rounding,
    and every face not held keeps its field bit for bit.  A slope outside the box must
    differ (the box is seen)."""
    X, U, P, active, r, gamma = case
    held_tab, plain_tab = _table(X, U, gamma), _table(X, U, gamma)
    plan = held_tab.face_plan(P)
    free = np.flatnonzero((held_tab.nfree[:P] > 0) & ~held_tab.frozen[:P])
    faces = np.array(data.draw(st.lists(st.sampled_from(free.tolist()), unique=True))
                     if free.size else [], dtype=np.intp)
    G = held_tab.plan_fields(held_tab.holding(plan, faces), r)
    ref = plain_tab.plan_fields(plain_tab.face_plan(P), r)
    np.testing.assert_array_equal(np.delete(G, faces, axis=0), np.delete(ref, faces, axis=0))
    ones = plan.single.one
    _, est = plain_tab.single_fields(plain_tab.face_plan(P).single, r)
    n = X.shape[0]
    for p in faces:
        K = np.flatnonzero(held_tab.U[p] == 0)
        b = -(held_tab.eta0[p] * r) @ X / n  # the fixed part
        size = np.abs(held_tab.eta0[p] * r) @ np.abs(X) @ np.abs(X[K]).T / n
        tangent = (np.eye(X.shape[1]) - held_tab.projectors()[p]) @ b
        np.testing.assert_allclose(G[p], tangent, rtol=0, atol=1e-12 * (1 + np.linalg.norm(b)))
        assert np.all(np.abs(G[p] @ X[K].T) <= 1e-12 * (1 + size))
        if np.all(np.abs(ref[p] @ X[K].T) <= 1e-13 * (1 + size)):  # the box's D is tangent
            np.testing.assert_allclose(G[p], ref[p], rtol=0,
                                       atol=1e-10 * (1 + np.linalg.norm(b)))
        if K.size == 1 and not gamma <= est[np.flatnonzero(ones == p)[0]] <= 1.0:
            if abs(ref[p] @ X[K[0]]) > 1e-10 * (1 + size[0]):
                assert not np.allclose(G[p], ref[p], rtol=0, atol=1e-12 * (1 + size[0]))


def test_a_held_face_is_differentiable_where_its_slope_reaches_a_bound():
    """The point of holding: the clipped field has a kink where ``η*`` crosses 1 (its
    one-sided derivatives differ by ``|∂η*/∂r| ‖z‖``), the held one none (both sides agree to
    the differences' rounding); the implicit solver's Newton iterations met that kink."""
    X = np.array([[1.0, 0.0], [0.6, 0.8], [-0.3, 1.0]])
    U = np.array([[1, 0, 1]], np.int8)
    tab = _table(X, U, 0.0)
    plan = tab.face_plan(1)
    # η* = −(r_0 <x_0, x_1> + r_2 <x_2, x_1>) / (r_1 ‖x_1‖²) = 1 at r_1 = −0.116
    r = np.array([0.4, -0.116, -0.2])
    assert abs(tab.single_fields(plan.single, r)[1][0] - 1.0) < 1e-14
    e = np.array([0.0, 1.0, 0.0])
    for held, kinked in ((tab.holding(plan, np.array([0])), False), (plan, True)):
        def f(c, plan=held):
            return tab.plan_fields(plan, r + c * e)[0]
        h = 1e-6
        right, left = (f(h) - f(0.0)) / h, (f(0.0) - f(-h)) / h
        gap = np.max(np.abs(right - left))
        assert (gap > 1e-3) == kinked, (held is plan, gap)


@st.composite
def pattern_changes(draw):
    """Faces already met, then batches of rows: most of them a face with one entry changed
    (the face, the entry), the others any row, as events on several hyperplanes."""
    n = draw(st.integers(1, 6))
    P = draw(st.integers(1, 5))
    U0 = draw(hnp.arrays(np.int8, (P, n), elements=st.sampled_from([-1, 0, 1])))
    batches = []
    for _ in range(draw(st.integers(1, 3))):
        E = draw(st.integers(1, 30))
        p_prev = draw(hnp.arrays(np.intp, E, elements=st.integers(0, P - 1)))
        k = draw(hnp.arrays(np.intp, E, elements=st.integers(0, n - 1)))
        v = draw(hnp.arrays(np.int8, E, elements=st.sampled_from([-1, 0, 1])))
        U = U0[p_prev].copy()
        U[np.arange(E), k] = v
        one = draw(hnp.arrays(bool, E))
        other = draw(hnp.arrays(np.int8, (E, n), elements=st.sampled_from([-1, 0, 1])))
        U[~one] = other[~one]
        batches.append((p_prev, U, np.flatnonzero(one), k[one]))
    return U0, batches


@given(pattern_changes())
def test_index_changed_is_index_many_with_the_same_registration_order(case):
    # the face numbers enter the solver's state vector: a new face must get the number that
    # index_many would give it, in every batch, whether the change was looked up or not
    U0, batches = case
    n = U0.shape[1]
    X = np.eye(max(n, 2))[:n]
    X[:, 0] += 0.5
    lookup, direct = PatternTable(X, 0.0), PatternTable(X, 0.0)
    face = [t.index_many(U0) for t in (lookup, direct)][0]  # U0's rows as face numbers
    for row, U, rows, k in batches:  # later batches meet the lookups the earlier ones made
        got = lookup.index_changed(U, face[row], rows, k)
        np.testing.assert_array_equal(got, direct.index_many(U))
        np.testing.assert_array_equal(lookup.arrays().U, direct.arrays().U)


@given(_faces())
def test_rows_plan_gives_those_faces_fields(case):
    """A plan of some faces only (one row each, :meth:`PatternTable.rows_plan`, used by the
    replay of passive faces): the full plan's rows of those faces (both fed the same warm
    starts: two tables)."""
    X, U, P, active, r, gamma = case
    rows, full = _table(X, U, gamma), _table(X, U, gamma)
    faces = np.flatnonzero(active)
    G = rows.plan_fields(rows.rows_plan(faces), r)
    ref = full.plan_fields(full.face_plan(P), r)[faces]
    assert G.shape == ref.shape == (faces.size, X.shape[1])
    # to rounding: the products have other numbers of rows (BLAS blocking may differ)
    terms = np.abs(r) @ np.abs(X) / X.shape[0]
    np.testing.assert_allclose(G, ref, rtol=0, atol=8 * np.finfo(float).eps * terms.max())


@given(st.integers(1, 45).flatmap(lambda n: hnp.arrays(
    np.int8, st.tuples(st.integers(257, 600), st.just(n)),
    elements=st.sampled_from([-1, 0, 1]))))
def test_index_many_registers_the_rows_in_numpys_row_order(U):
    # index_many keys each row as bytes (_unique_rows); the faces must be numbered as
    # np.unique(axis=0) orders the rows (that order fixes the face numbers of a run), and
    # each row must get its own face (more than 256 rows: the sorting path)
    U[: U.shape[0] // 2, U.shape[1] // 2:] = 1  # repeated rows too
    table = PatternTable(np.ones((U.shape[1], 2)), 0.25)
    ids = table.index_many(U)
    uniq, inverse = np.unique(U, axis=0, return_inverse=True)
    np.testing.assert_array_equal(table.arrays().U, uniq)
    np.testing.assert_array_equal(ids, np.ravel(inverse))


@st.composite
def registrations(draw):
    """Data (with a parallel pair in some draws, so that faces are coupled), and faces
    registered in batches: patterns with free slopes, ``u = 0`` and full cells."""
    d = draw(st.integers(2, 5))
    n = draw(st.integers(2, 8))
    X = draw(hnp.arrays(float, (n, d), elements=_floats(-2.0, 2.0)))
    X[np.linalg.norm(X, axis=1) < 0.1, 0] = 1.0
    if draw(st.booleans()):
        X[-1] = -X[0]  # opposite points: coupled slopes on faces holding both
    gamma = draw(st.sampled_from([0.0, 0.1, 0.5]))
    U = draw(hnp.arrays(np.int8, (draw(st.integers(1, 24)), n),
                        elements=st.sampled_from([-1, 0, 1])))
    cuts = sorted(draw(st.lists(st.integers(0, U.shape[0]), max_size=5)))
    return X, gamma, U, cuts


@given(registrations())
def test_arrays_extended_batch_by_batch_equal_a_table_built_at_once(case):
    """:meth:`PatternTable._refresh` appends the arrays of the faces registered since the
    last refresh: after registering in batches (refreshing in between) every array is the
    one a table that registered all the faces first and refreshed once has, bit for bit."""
    X, gamma, U, cuts = case
    grown, whole = PatternTable(X, gamma), PatternTable(X, gamma)
    for lo, hi in zip([0, *cuts], [*cuts, U.shape[0]], strict=True):
        for u in U[lo:hi]:  # one by one: the same order of registration in both tables
            grown.index(u)
        grown.arrays()
    for u in U:
        whole.index(u)
    whole.arrays()
    for name in ("U", "eta0", "dim", "ray", "nfree", "frozen", "coupled", "single",
                 "single_k", "_single_x", "_single_xx", "multi"):
        a, b = getattr(grown, name), getattr(whole, name)
        assert a.shape == b.shape and a.dtype == b.dtype, name
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), name


@st.composite
def _several_slope_faces(draw):
    """Data mostly in general position (d = 4–6; the draw can still give parallel points,
    e.g. ``x_4 = −x_0 / 3``, whose slopes the table ties), faces with 3 to d − 1 free slopes
    (a line or more of neurons ``w ≠ 0``: ``d`` hyperplanes in general position meet only at
    ``w = 0``, a frozen face), residuals at T times; with some of them the interior solution
    lies in the box, with others slopes are at their bounds (the BVLS fallback)."""
    d = draw(st.integers(4, 6))
    n = draw(st.integers(d, d + 4))
    X = draw(hnp.arrays(float, (n, d), elements=_floats(-2.0, 2.0)))
    X += 3.0 * np.eye(n, d)  # well away from parallel or dependent points
    X[np.linalg.norm(X, axis=1) < 0.5, 0] += 1.0  # and from 0 (a hyperplane at rounding)
    rows = []
    for _ in range(draw(st.integers(1, 5))):
        u = np.array(draw(st.lists(st.sampled_from([-1, 1]), min_size=n, max_size=n)), np.int8)
        u[draw(st.permutations(range(n)))[: draw(st.integers(3, d - 1))]] = 0
        if not any(np.array_equal(u, v) for v in rows):
            rows.append(u)
    T = draw(st.integers(1, 4))
    R = draw(hnp.arrays(float, (T, n), elements=_floats(-3.0, 3.0)))
    gamma = draw(st.sampled_from([0.0, 0.1, 0.5]))
    return X, np.array(rows), R, gamma


@given(_several_slope_faces())
@example(case=(  # found by the thorough profile (session 30): an opposite point's tied slope
    np.array([[3.0, 0, 0, 0], [0, 3.0, 0, 0], [0, 0, 3.0, 0], [0, 0, 0, 3.0], [-1.0, 0, 0, 0],
              [1.0, 0, 0, 0]]),
    np.array([[0, -1, 0, -1, 0, -1]], np.int8),
    np.array([[0.0] * 6, [0.0] * 6, [0.0, 0, 0, 0, 1.0, 0]]), 0.1))
@example(case=(  # found by the thorough profile (session 45): residuals of 1e-187 (the logistic
    # loss at margins of 430) made every free column's norm 0 and BVLS raise RuntimeError
    np.array([[3.0, 1.30203446e-80, 0, 0], [0, 3.0, 0, 0], [0, 0, 3.0, 0], [0, 0, 0, 3.0],
              [1.0, 0, 0, 0]]),
    np.array([[1, 0, 0, 0, -1], [0, 0, 0, -1, -1]], np.int8),
    np.array([[1.0] + [-2.28121664e-187] * 4]), 0.0))
def test_faces_with_several_free_slopes_against_the_bounded_least_squares(case):
    """The table's minimal-norm fields of faces with 3 or more free slopes (the interior
    solution where it is certified, BVLS elsewhere) against ``minimal_norm_on_face``
    (``free_slopes``, bounded least squares on each face alone): the same ``D`` to
    rounding, every slope in ``[γ, 1]``, ``D`` tangent to the hyperplanes whose slope is
    inside the box."""
    from pwflow.subgradient import minimal_norm_on_face

    X, U, R, gamma = case
    tab = _table(X, U, gamma)
    faces = np.arange(len(U))
    G, eta, _ = tab.minimal_norm(faces, R)
    for t, r in enumerate(R):
        for p, u in enumerate(U):
            ref = minimal_norm_on_face(u, X, r, gamma)
            scale = 1e-12 * (1.0 + np.abs(r) @ np.linalg.norm(X, axis=1))
            np.testing.assert_allclose(G[t, p], ref.D, rtol=0, atol=scale)
            K = u == 0
            assert np.all((eta[t, p, K] >= gamma) & (eta[t, p, K] <= 1.0))
            # (a slope within 1e-12 of a bound is at it, as the selection's rounds read it:
            # the tied slope of an opposite point is 1 + γ − 1 = γ + 9e-17 there)
            inside = (K & (eta[t, p] > gamma + 1e-12) & (eta[t, p] < 1.0 - 1e-12)
                      & (np.abs(r) > 1e-9))
            assert np.all(np.abs(X[inside] @ G[t, p]) <= scale * np.linalg.norm(X[inside], axis=1))


def test_a_wrong_interior_map_is_caught_by_the_certificate():
    """The interior solution is accepted only on its KKT certificate, not on the cached
    pseudo-inverse: with that map corrupted, the fields are still the bounded least
    squares' (every row falls back), and with it intact the interior path is taken."""
    from pwflow.subgradient import minimal_norm_on_face

    rng = np.random.default_rng(3)
    X = rng.normal(size=(6, 4)) + 3.0 * np.eye(6, 4)
    u = np.array([0, 0, 0, 1, -1, 1], np.int8)
    while True:  # residuals whose minimiser on the face is interior (every slope free)
        r = rng.normal(size=6)
        ref = minimal_norm_on_face(u, X, r, 0.0)
        if np.all((ref.eta[:3] > 0.05) & (ref.eta[:3] < 0.95)):
            break
    ref = ref.D
    tab = _table(X, u[None], 0.0)
    b = tab.minimal_norm(np.array([0]), np.zeros_like(r))[0]  # (registers the map)
    calls = []
    tab.__dict__["_interior_slopes"] = lambda *a: calls.append(
        PatternTable._interior_slopes(tab, *a)) or calls[-1]
    G = tab.minimal_norm(np.array([0]), r)[0][0]
    assert calls and bool(calls[-1][2].all())  # certified: the interior path gave D
    np.testing.assert_allclose(G, ref, rtol=0, atol=1e-14)
    good = tab._interior[0]
    for wrong in (0.3, 1e-3):  # a wrong (X_Kᵀ)⁺: far off, or slopes still in the box
        tab._interior[0] = good + wrong
        tab._interior_plans.clear()  # ... in the plans built from it
        G = tab.minimal_norm(np.array([0]), r)[0][0]
        assert not bool(calls[-1][2].any())  # not certified: every row went to BVLS
        np.testing.assert_allclose(G, ref, rtol=0, atol=1e-14)
    # the small error leaves the slopes in the box: only the KKT test refuses them
    e = calls[-1][0][0, 0]
    assert np.all((e > 0.0) & (e < 1.0))
    del b


@st.composite
def _point_face_problems(draw):
    """The face ``{0}`` (every slope free) of data in general position (no two points
    parallel: their slopes would be tied, and the warm solve leaves such faces to BVLS),
    d = 2–4, n = d + 1 to
    d + 6 points, ``γ ∈ {0.1, 0.5}`` (``{0}`` solved: not a resting face); residuals ``r0``
    that seed the warm start (in half the draws with ``0 ∈ 𝔇(0)``, as where a neuron rests
    at 0), then ``T`` residuals each ``r0`` moved by a drawn amount (1e-12 to 1: the small
    ones keep ``0 ∈ 𝔇(0)`` or the free set, the large ones not)."""
    d = draw(st.integers(2, 4))
    n = draw(st.integers(d + 1, d + 6))
    X = draw(hnp.arrays(float, (n, d), elements=_floats(-2.0, 2.0)))
    X += 3.0 * np.eye(n, d)
    X[np.linalg.norm(X, axis=1) < 0.5, 0] += 1.0
    rep, _ = parallel_classes(X)
    assume(np.array_equal(rep, np.arange(n)))  # parallel points tie slopes (N3): BVLS alone
    gamma = draw(st.sampled_from([0.1, 0.5]))
    r0 = draw(hnp.arrays(float, n, elements=_floats(-3.0, 3.0)))
    if draw(st.booleans()):  # 0 ∈ 𝔇(0), as for a neuron resting at 0: Σ r_k η_k x_k = 0
        eta = draw(hnp.arrays(float, n, elements=_floats(gamma + 0.01, 0.99)))
        M = (eta[:, None] * X).T
        r0 = r0 - np.linalg.pinv(M) @ (M @ r0)
    T = draw(st.integers(1, 7))
    size = draw(st.sampled_from([1e-12, 1e-6, 1e-3, 0.1, 1.0]))
    R = r0 + size * draw(hnp.arrays(float, (T, n), elements=_floats(-1.0, 1.0)))
    return X, r0, R, gamma


def _point_table(X, gamma, r0, warm_solve):
    tab = _table(X, np.zeros((1, X.shape[0]), np.int8), gamma)
    tab.WARM_POINT_SOLVE = warm_solve
    tab.minimal_norm(np.array([0]), r0, origin=True)  # the warm start: BVLS at r0
    return tab


#: found by the thorough profile (session 46): the third time's residual on x_2 underflows the
#: normal equations of the one free slope (4e-280 squared), a singular row that sent the
#: other two rows to BVLS as well (D = 3.7e-30 read together, 0 alone)
SINGULAR_ROW = (np.array([[2.5, -0.5], [-0.5, 2.5], [-0.5, -0.5]]),
                np.full(3, 3.9929590313989436e-280),
                np.array([[1e-12, 1e-12, 1e-12], [1e-12, 1e-12, 1e-12],
                          [1e-12, 1e-12, 3.9929590313989436e-280]]),
                0.1)


@given(_point_face_problems())
@example(case=SINGULAR_ROW)
def test_the_point_face_from_its_last_slopes_is_the_bounded_least_squares(case):
    """The face ``{0}``'s minimal-norm ``D`` (read by the regime of neurons held at 0),
    solved from its last solution's free slopes at every time at once (the warm solve,
    :meth:`PatternTable._warm_point_slopes`), against bounded least squares on the face
    alone (``minimal_norm_on_face``) and against the table with the warm solve off: the
    same ``D`` to rounding, every slope in ``[γ, 1]``, the KKT conditions met; and each row
    the very numbers of a call with that row alone from the same warm start."""
    from pwflow.subgradient import kkt_tolerance, kkt_violation, minimal_norm_on_face

    X, r0, R, gamma = case
    n = X.shape[0]
    face = np.array([0])
    G, eta, _ = _point_table(X, gamma, r0, True).minimal_norm(face, R, origin=True)
    G_off = _point_table(X, gamma, r0, False).minimal_norm(face, R, origin=True)[0]
    for t, r in enumerate(R):
        ref = minimal_norm_on_face(np.zeros(n, np.int8), X, r, gamma).D
        scale = 1e-12 * (1.0 + np.abs(r) @ np.linalg.norm(X, axis=1))
        np.testing.assert_allclose(G[t, 0], ref, rtol=0, atol=scale)
        np.testing.assert_allclose(G[t, 0], G_off[t, 0], rtol=0, atol=scale)
        assert np.all((eta[t, 0] >= gamma) & (eta[t, 0] <= 1.0))
        Z = (-(r[:, None] * X) / n).T
        tol = kkt_tolerance(0.0, float(np.linalg.norm(Z)), gamma, 1.0)
        assert kkt_violation(np.zeros(X.shape[1]), Z, eta[t, 0], gamma, 1.0) <= 1e3 * tol
        np.testing.assert_allclose(Z @ eta[t, 0], G[t, 0], rtol=0, atol=scale)
        G1, eta1, _ = _point_table(X, gamma, r0, True).minimal_norm(face, r, origin=True)
        np.testing.assert_array_equal(G[t], G1)
        np.testing.assert_array_equal(eta[t], eta1)


def test_a_singular_row_of_the_warm_solve_is_its_own(monkeypatch):
    """``_solve_rows`` (the warm solve's normal equations): a singular matrix gives NaN in
    its own row, and every other row is what it is solved alone, bit for bit; and on
    :data:`SINGULAR_ROW`, the two regular times are accepted by the warm solve read together
    with the singular one, as each is alone (before session 46 all three went to BVLS)."""
    from pwflow import patterns

    rng = np.random.default_rng(46)
    N = rng.normal(size=(4, 2, 2))
    N[2] = 0.0
    v = rng.normal(size=(4, 2))
    out = patterns._solve_rows(N, v)
    assert np.all(np.isnan(out[2]))
    for i in (0, 1, 3):
        alone = np.linalg.solve(N[i:i + 1], v[i:i + 1, :, None])[0, :, 0]
        assert out[i].tobytes() == alone.tobytes()
    X, r0, R, gamma = SINGULAR_ROW
    tab = _point_table(X, gamma, r0, True)
    accepted = []
    real = PatternTable._warm_point_slopes

    def record(self, G2, r2, rows, faces, eta2, solved, starts):
        real(self, G2, r2, rows, faces, eta2, solved, starts)
        accepted.append(solved[:, 0].tolist())

    monkeypatch.setattr(PatternTable, "_warm_point_slopes", record)
    G = tab.minimal_norm(np.array([0]), R, origin=True)[0]
    assert accepted == [[True, True, False]]
    assert np.all(G[:2] == 0.0)


class _NumpyRaisingAtConcatenate:
    """numpy, except that its ``at``-th ``concatenate`` raises :class:`KeyboardInterrupt`
    (a signal between two of :meth:`PatternTable._refresh`'s arrays)."""

    def __init__(self, at: int) -> None:
        self.at, self.calls = at, 0

    def __getattr__(self, name):
        return getattr(np, name)

    def concatenate(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return np.concatenate(*args, **kwargs)


@given(at=st.integers(1, 8), first=st.integers(1, 6), more=st.integers(1, 6))
def test_a_refresh_interrupted_between_two_arrays_leaves_the_table_whole(at, first, more):
    """Session 64: the refresh set the table's arrays one by one, so an interruption between
    two left them of different lengths, and the next refresh extended the extended ones
    again (the wrap-up of an interrupted run then died on them).  Now every array is
    computed before any is set: after the interruption the table refreshes to the arrays
    of a table built in one go."""
    import pwflow.patterns as patterns

    X = np.array([[1.0, 0.2], [-0.3, 1.0], [0.5, -0.8], [1.0, 1.0]])
    rows = np.array(list(itertools.product([-1, 0, 1], repeat=4)), dtype=np.int8)
    rows = rows[np.random.default_rng(at).permutation(len(rows))][: first + more]
    table, whole = PatternTable(X, 0.1), PatternTable(X, 0.1)
    table.index_many(rows[:first])
    table.arrays()
    table.index_many(rows[first:])
    real = patterns.np
    patterns.np = _NumpyRaisingAtConcatenate(at)
    try:
        table.arrays()
    except KeyboardInterrupt:
        pass
    finally:
        patterns.np = real
    whole.index_many(rows[:first])  # the same faces, registered in the same order
    whole.index_many(rows[first:])
    for name in ("U", "eta0", "dim", "nfree", "frozen", "rests", "coupled", "single",
                 "single_k", "multi", "iterative"):
        np.testing.assert_array_equal(getattr(table.arrays(), name), getattr(whole.arrays(), name),
                                      err_msg=name)
