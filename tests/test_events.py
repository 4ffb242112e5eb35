"""The event module's pieces: the event log (:class:`pwflow.events.EventLog`, numpy chunks
against a list reference), the crossing test, and the located events up to a cut as arrays.

:meth:`pwflow.events.Located.upto` used to build one record per event (187k of them on three
points at m = 2·10⁵, about a second); it now hands the arrays of the prefix up to the cut.
Each row must say what the per-event record said: the hyperplanes reached (merged coincident
candidates included), ``w = 0``, ``a_j = 0``, the sign taken, the residual and the side seen.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pwflow.dense import nested
from pwflow.events import EVENT_COLUMNS, EventLog, Located, first_exit_brackets, locate_roots

row = st.tuples(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.integers(0, 2**40),
    st.integers(-1, 2**31),
    st.integers(0, 9),
    st.floats(0, 1, allow_nan=False),
    st.integers(-1, 2**40),
    st.integers(0, 2**40),
)

# a batch of rows appended by one call: a single row (add) or a block (extend)
call = st.one_of(
    st.tuples(st.just("add"), st.lists(row, min_size=1, max_size=1)),
    st.tuples(st.just("extend"), st.lists(row, min_size=0, max_size=3000)),
)


def _merged_reference(calls) -> list[list]:
    """The rows a log should hold, as lists: every row in order, except that a CROSSING row
    of a later call at the latest time so far, of a (neuron, k) whose last CROSSING row at
    that time entered the face this one leaves, merges with it into a GRAZING row; and that
    a BRANCH row of a (neuron, k) with a BRANCH row at the latest time so far is dropped."""
    rows: list[list] = []
    latest, cross, branch = -np.inf, {}, set()
    for _, call_rows in calls:
        kept = []
        for r in call_rows:
            t, j, k, kind, _, frm, to = r
            i = cross.get((j, k))
            if kind == 0 and t == latest and i is not None and rows[i][6] == frm:
                del cross[(j, k)]
                rows[i][3], rows[i][6] = 3, to  # GRAZING, to the second row's face
            else:
                kept.append(list(r))
        out = []
        for r in kept:  # the branch points, in order
            t, j, k, kind = r[:4]
            if kind == 6:
                if t == latest and (j, k) in branch:
                    continue
                if t > latest:
                    latest, cross, branch = t, {}, set()
                if t == latest:
                    branch.add((j, k))
            out.append(r)
        base = len(rows)
        rows.extend(out)
        if out and max(r[0] for r in out) >= latest:
            tmax = max(r[0] for r in out)
            if tmax > latest:
                latest, cross, branch = tmax, {}, set()
            for i, r in enumerate(out):
                if r[0] == tmax and r[3] == 0:
                    cross[(r[1], r[2])] = base + i
                elif r[0] == tmax and r[3] == 6:
                    branch.add((r[1], r[2]))
    return rows


@given(st.lists(call, max_size=12))
def test_log_keeps_every_row_in_order(calls):
    """Every row in order, crossings back at the time of a logged crossing merged and branch
    points logged already dropped (:func:`_merged_reference`), whatever the chunks; a prefix
    reloads as it was saved."""
    log = EventLog()
    for how, rows in calls:
        if how == "add":
            log.add(*rows[0])
        else:
            cols = list(zip(*rows)) if rows else [[]] * len(EVENT_COLUMNS)
            log.extend(*(np.asarray(c) for c in cols))
    reference = _merged_reference(calls)
    assert len(log) == len(reference)
    out = log.arrays()
    for i, (name, dtype) in enumerate(EVENT_COLUMNS):
        assert out[name].dtype == dtype and out[name].flags.c_contiguous
        expected = np.asarray([r[i] for r in reference], dtype=dtype)
        np.testing.assert_array_equal(out[name], expected)
    # a resumed run starts from a prefix of the saved columns
    n = len(reference) // 2
    again = EventLog.from_arrays(out, n).arrays()
    for name, _ in EVENT_COLUMNS:
        np.testing.assert_array_equal(again[name], out[name][:n])


def test_log_crosses_chunk_boundaries_and_stays_compact():
    log = EventLog()
    E = 3 * EventLog._MIN_CHUNK + 17
    for i in range(E):
        log.add(float(i), i, i % 5, i % 7, 0.5, i - 1, i + 1)
    log.extend(np.arange(5000.0), np.arange(5000), np.zeros(5000, int), np.ones(5000, int),
               np.zeros(5000), np.arange(5000), np.arange(5000))
    out = log.arrays()
    assert len(log) == E + 5000 == out["t"].size
    np.testing.assert_array_equal(out["neuron"][:E], np.arange(E))
    np.testing.assert_array_equal(out["t"][E:], np.arange(5000.0))
    # the chunks hold the rows plus at most half as many spare slots (geometric growth)
    held = sum(c.size for c in log._chunks) + log._buf.size
    assert held <= 1.5 * len(log) + EventLog._MIN_CHUNK


@st.composite
def crossing_case(draw):
    """Neurons, data, face patterns and slacks; some products exactly 0 or at rounding."""
    m, n, d = draw(st.integers(1, 12)), draw(st.integers(1, 8)), draw(st.integers(1, 4))
    fl = st.floats(-3, 3, allow_nan=False, allow_subnormal=False)
    W = np.array(draw(st.lists(st.lists(fl, min_size=d, max_size=d), min_size=m, max_size=m)))
    X = np.array(draw(st.lists(st.lists(fl, min_size=d, max_size=d), min_size=n, max_size=n)))
    U = np.array(draw(st.lists(st.lists(st.sampled_from([-1, 0, 1]), min_size=n, max_size=n),
                               min_size=m, max_size=m)), dtype=np.int8)
    slack = np.array(draw(st.lists(st.sampled_from([0.0, 1e-14, 1e-3]), min_size=m, max_size=m)))
    S = W @ X.T
    S *= np.array(draw(st.lists(st.lists(st.sampled_from([1.0, 0.0, 1e-18]), min_size=n,
                                         max_size=n), min_size=m, max_size=m)))
    return W, X, U, slack, S


@given(crossing_case())
def test_detect_crossings_matches_the_pairwise_rule(case):
    from pwflow.events import detect_crossings

    W, X, U, slack, S = case
    expected = []
    for j in range(W.shape[0]):
        unc = 16 * np.finfo(float).eps * np.linalg.norm(W[j]) + slack[j]
        for k in range(X.shape[0]):
            tiny = unc * np.linalg.norm(X[k])
            wrong_side = U[j, k] != 0 and np.sign(S[j, k]) != U[j, k]
            if wrong_side and abs(S[j, k]) > tiny:
                expected.append((j, k))
    jj, kk = detect_crossings(W, X, U, slack, S=S)
    assert list(zip(jj.tolist(), kk.tolist())) == expected


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


@given(located_candidates(), st.data())
def test_a_hyperplane_within_rounding_at_the_first_event_is_merged_into_it(cands, data):
    """With each candidate's polynomial (here linear, ``s(x) = c (x − x_root)``) and the
    rounding of its offset, :meth:`Located.group` merges into a neuron's first hyperplane
    event every hyperplane candidate whose offset there is within that rounding, besides
    those within 64 ulp (``w = 0`` and sign-flip candidates only by time)."""
    from pwflow.bisection import time_ulp

    neurons, tt, x, codes, rate, res, observed, a_sign, _ = cands
    c = neurons.size
    slope = data.draw(hnp.arrays(float, c, elements=st.sampled_from([-1e-5, 1e-5, -1.0, 2.0])))
    tol = data.draw(hnp.arrays(float, c, elements=st.sampled_from([0.0, 1e-17, 1e-9, 1e-2])))
    coef = np.stack([-slope * x, slope], axis=1)  # nested form of c (x − x_root)
    located, _ = Located.group(neurons, tt, x, codes, rate, res, observed, a_sign, 1.0,
                               coef, tol)
    for i, j in enumerate(located.neuron.tolist()):
        mine = np.flatnonzero(neurons == j)
        head = mine[np.lexsort((tt[mine],))[0]]
        expect = []
        for o in mine[mine != head].tolist():
            by_time = tt[o] - tt[head] <= 64 * time_ulp(tt[head])
            offset = abs(slope[o] * (x[head] - x[o]))
            by_offset = codes[o] >= 0 and codes[head] >= 0 and offset <= tol[o] * (1 + 1e-12)
            near = codes[o] >= 0 and codes[head] >= 0 and abs(offset - tol[o]) <= 1e-12 * tol[o]
            if near:  # (the nested evaluation's rounding decides a tie: not this test's)
                return
            if by_time or by_offset:
                expect.append(int(codes[o]))
        assert located.code[i] == codes[head]
        assert sorted(located.more.get(i, [])) == sorted(expect)


def test_two_roots_apart_by_their_rounding_are_one_event_with_the_offsets():
    """Session 56's arrival: two hyperplanes met at normal velocity 1e-5, their roots
    located 2.2e-13 apart at t = 6 (64 ulp: 5.7e-14).  By time they are two events; with the
    offset's rounding (16 eps ‖w‖ ‖x_k‖ = 5.5e-17), one event on both."""
    x = np.array([0.3, 0.3 + 2.2e-13])
    coef = np.stack([-1e-5 * x, np.full(2, 1e-5)], axis=1)
    args = (np.array([3, 3]), 5.7 + x, x, np.array([1, 2]), np.ones(2), np.zeros(2),
            np.zeros(2, np.int8), np.ones(2))
    by_time, later = Located.group(*args)
    assert by_time.more == {} and later == {3: 5.7 + x[1]}
    both, later = Located.group(*args, 1.0, coef, np.full(2, 5.5e-17))
    assert both.more == {0: [2]} and later == {}


def test_a_crossing_back_at_the_same_time_is_one_grazing_row():
    """Five aligned neurons cross x_3's hyperplane at t (face 6 → 5) and the next batch takes
    them back at the same t (5 → 6): five GRAZING rows 6 → 6 (explore_long seed 305).  Not
    merged: a crossing back at another time, from another face, of another hyperplane, or a
    second crossing back; the pair is found in a closed chunk and across a reload (a resumed
    run)."""
    CROSS, GRAZE = 0, 3
    t = 1017.4332919984406
    log = EventLog()
    for i in range(EventLog._MIN_CHUNK + 5):  # earlier rows: the crossings land past a chunk
        log.add(float(i) / 10, 99, 0, CROSS, 0.0, 1, 2)
    neurons = np.array([0, 4, 6, 11, 12])
    log.extend(np.full(5, t), neurons, np.full(5, 3), np.full(5, CROSS), np.full(5, 8.7e-12),
               np.full(5, 6), np.full(5, 5))
    log.add(t, 7, 1, CROSS, 1e-12, 6, 5)  # another neuron, really crossing
    first = len(log)
    for _ in range(EventLog._MIN_CHUNK):  # rows of other neurons at t close the chunk
        log.add(t, 50, 2, 1, 0.0, 3, 4)
    log.extend(np.full(5, t), neurons, np.full(5, 3), np.full(5, CROSS), np.zeros(5),
               np.full(5, 5), np.full(5, 6))
    log.add(t, 7, 1, CROSS, 0.0, 9, 6)  # from another face: not the way back
    log.add(t, 0, 3, CROSS, 0.0, 5, 6)  # a second crossing back: nothing left to merge with
    out = log.arrays()
    pair = np.flatnonzero((out["t"] == t) & (out["k"] == 3))
    assert out["kind"][pair[:5]].tolist() == [GRAZE] * 5
    assert out["to_pattern"][pair[:5]].tolist() == [6] * 5
    assert out["residual"][pair[:5]].tolist() == [8.7e-12] * 5
    assert out["kind"][pair[5:]].tolist() == [CROSS] and out["neuron"][pair[5]] == 0
    assert len(log) == first + EventLog._MIN_CHUNK + 2
    later = EventLog()
    later.add(1.0, 0, 3, CROSS, 0.0, 6, 5)
    later.add(2.0, 0, 3, CROSS, 0.0, 5, 6)  # back at another time: a crossing
    assert later.arrays()["kind"].tolist() == [CROSS, CROSS]
    # a run resumed between the two rows merges them as the uninterrupted run does
    saved = EventLog()
    saved.add(1.0, 0, 3, CROSS, 0.0, 6, 5)
    resumed = EventLog.from_arrays(saved.arrays(), 1)
    resumed.add(1.0, 0, 3, CROSS, 0.0, 5, 6)
    assert resumed.arrays()["kind"].tolist() == [GRAZE]


def test_a_branch_point_is_logged_once_at_its_time():
    """A BRANCH row of a (neuron, k) logged already at the latest time is dropped, by
    :meth:`EventLog.add` and by :meth:`EventLog.extend` (also twice in one block), and the
    calls say which rows they kept; the same pair at a later time, another pair at the same
    time, or another kind are rows of their own; a reload keeps a saved log verbatim."""
    BRANCH, LEAVE, ENTER = 6, 2, 1
    t = 5.664456196500709
    log = EventLog()
    assert log.add(t, 2, 1, LEAVE, 0.0, 4, 7)
    assert log.add(t, 2, 2, BRANCH, 0.0, 4, 7)
    kept = log.extend(np.full(4, t), np.array([2, 2, 5, 2]), np.array([1, 2, 2, 2]),
                      np.array([ENTER, BRANCH, BRANCH, BRANCH]), np.zeros(4), np.full(4, 7),
                      np.full(4, 4))
    assert kept.tolist() == [True, False, True, False]
    assert not log.add(t, 2, 2, BRANCH, 0.0, 7, 4)
    assert log.add(t, 2, 2, LEAVE, 0.0, 4, 9)  # another kind: a row of its own
    assert log.add(t + 1.0, 2, 2, BRANCH, 0.0, 4, 7)  # later: a new branch point
    out = log.arrays()
    rows = np.stack([out["neuron"], out["k"], out["kind"]], axis=1).tolist()
    assert rows == [[2, 1, LEAVE], [2, 2, BRANCH], [2, 1, ENTER], [5, 2, BRANCH],
                    [2, 2, LEAVE], [2, 2, BRANCH]]
    twice = {name: np.repeat(col[:2], 2) for name, col in out.items()}
    assert len(EventLog.from_arrays(twice, 4)) == 4  # verbatim, as saved


def _excursion_row(width: float) -> np.ndarray:
    """Nested dense-output coefficients of ``s(x) = x (width − x)``: on its hyperplane at 0,
    on side +1 for ``x < width``, back across it at ``width``."""
    c = np.zeros((1, 8))
    c[0, 1], c[0, 2] = width - 1.0, 1.0  # s = x (c1 + (1 − x) c2)
    return c


@pytest.mark.parametrize("width", [0.3, 0.0096, 1e-6])
def test_a_short_excursion_from_the_hyperplane_is_bracketed_at_its_return(width):
    """A neuron put on its hyperplane by an event at the step start that moves into its side
    and comes back within the step: the event is the return, whether the excursion spans
    several points of the scan grid (0.3), less than its first interval (0.0096, 1/64 = 0.0156:
    the case found by session 53's metamorphic campaign, which was read as leaving at once,
    an empty contact logged at the step start) or 1e-6 of the step."""
    coef = _excursion_row(width)
    np.testing.assert_allclose(nested(coef, np.array([width])), 0.0, atol=1e-15)
    lo, hi, observed = first_exit_brackets(coef, np.array([1], np.int8))
    assert observed[0] == 0 and lo[0] < width <= hi[0], (lo, hi)
    x, _ = locate_roots(coef, lo, hi)
    assert x[0] == pytest.approx(width, rel=1e-12)


def test_a_neuron_leaving_its_hyperplane_at_once_is_still_read_so():
    """The other reading stays: a row on its hyperplane that goes to the other side at once
    (``s = −x``) leaves at ``x = 0``, observed on that side; and a short excursion read
    without the look near the start (``_side_near_start`` off) is that wrong reading."""
    c = np.zeros((1, 8))
    c[0, 1] = -1.0
    lo, hi, observed = first_exit_brackets(c, np.array([1], np.int8))
    assert observed[0] == -1 and hi[0] == 0.0
    from pwflow import events as E
    real = E._side_near_start
    try:
        E._side_near_start = lambda *args: None
        lo, hi, observed = first_exit_brackets(_excursion_row(0.0096), np.array([1], np.int8))
    finally:
        E._side_near_start = real
    assert observed[0] == -1 and hi[0] == 0.0


class _NumpyInterruptedOnce:
    """numpy, except that its first ``empty`` raises :class:`KeyboardInterrupt` (a signal
    while the log allocates its next chunk)."""

    def __init__(self) -> None:
        self.raised = False

    def __getattr__(self, name):
        return getattr(np, name)

    def empty(self, *args, **kwargs):
        if not self.raised:
            self.raised = True
            raise KeyboardInterrupt
        return np.empty(*args, **kwargs)


@given(before=st.integers(1, 40), after=st.integers(0, 10))
def test_a_log_interrupted_while_it_opens_a_chunk_keeps_each_row_once(before, after):
    """Session 64: :meth:`EventLog._flush` appended the full chunk and counted it before
    allocating the next one, so a Ctrl-C or SIGTERM in that allocation left the rows both in
    the chunks and in the buffer still counted as filled: an interrupted run's saved log held
    them twice.  The new chunk list, count and buffer are now installed in one assignment."""
    import pwflow.events as events

    log = EventLog()
    log._buf = np.empty(8, dtype=log._buf.dtype)  # small chunks: a flush within the rows
    for i in range(before):
        log.add(float(i), i, 0, 0, 0.0, 0, 1)
    real, patched = events.np, _NumpyInterruptedOnce()
    events.np = patched
    try:
        for i in range(before, before + 2 * EventLog._MIN_CHUNK):  # a flush, interrupted
            log.add(float(i), i, 0, 0, 0.0, 0, 1)
    except KeyboardInterrupt:
        pass
    finally:
        events.np = real
    assert patched.raised
    n = len(log)
    for i in range(n, n + after):
        log.add(float(i), i, 0, 0, 0.0, 0, 1)
    out = log.arrays()
    assert out["neuron"].tolist() == list(range(n + after)) and len(log) == n + after
