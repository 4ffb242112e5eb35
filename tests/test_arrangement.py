import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proofs_checks.arrangement import cover_count, enumerate_faces, face_generators, zaslavsky_count
from pwflow.data import stewart
from strategies import general_position


def _patterns(X, W):
    s = W @ X.T
    return {tuple(int(v) for v in row) for row in np.sign(s).astype(int)}


@settings(deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(st.integers(1, 6), st.integers(2, 3), st.data())
def test_counts_and_sampled_patterns(n, d, data):
    X = data.draw(general_position(n, d))
    rng = np.random.default_rng(0)  # the sampler of the check, not the data
    arr = enumerate_faces(X)
    assert len(arr) == zaslavsky_count(n, d)
    assert sum(f.dim == d for f in arr.faces) == cover_count(n, d)
    # every sampled full-dimensional pattern is enumerated
    W = rng.normal(size=(2000, d))
    assert _patterns(X, W) <= {tuple(int(v) for v in f.u) for f in arr.faces}
    # representatives realise their pattern
    for f in arr.faces:
        s = X @ f.point
        assert np.all(np.sign(np.where(np.abs(s) < 1e-9, 0, s)) == f.u)


@settings(deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(st.integers(1, 9), st.integers(3, 5), st.booleans(), st.data())
def test_skipping_the_paired_empty_child_finds_the_same_faces(n, d, integer, data):
    """Session 43 (:data:`pwflow.cones.PAIRED_CHILDREN`): the two children of a face off its
    point are empty together, so the second programme is skipped where the first found its
    face empty.  The faces and their points are those of the enumeration that solves every
    programme, on generic and on integer data (dependent rows, points exactly on
    hyperplanes)."""
    import proofs_checks.arrangement as ar
    from pwflow import cones

    if integer:
        X = np.array(data.draw(st.lists(st.lists(st.integers(-2, 2), min_size=d, max_size=d),
                                        min_size=n, max_size=n)), dtype=float)
        X = X[np.linalg.norm(X, axis=1) > 0]
        if X.shape[0] == 0:
            return
    else:
        X = data.draw(general_position(n, d))
    got = {}
    try:
        for paired in (False, True):
            cones.PAIRED_CHILDREN = paired
            got[paired] = ar._incremental(X)
    finally:
        cones.PAIRED_CHILDREN = True
    assert [u.tolist() for u, _ in got[True]] == [u.tolist() for u, _ in got[False]]
    for (_, p), (_, q) in zip(got[True], got[False], strict=True):
        np.testing.assert_array_equal(p, q)


@pytest.mark.slow
@settings(deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(st.integers(1, 8), st.integers(2, 4), st.data())
def test_counts_large(n, d, data):
    X = data.draw(general_position(n, d))
    assert len(enumerate_faces(X)) == zaslavsky_count(n, d)


def test_lower_dim_faces_sampled_on_hyperplanes():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(5, 3))
    arr = enumerate_faces(X)
    pats = {tuple(int(v) for v in f.u) for f in arr.faces}
    for k in range(5):
        W = rng.normal(size=(500, 3))
        W -= np.outer(W @ X[k], X[k]) / (X[k] @ X[k])
        s = W @ X.T
        P = np.where(np.abs(s) < 1e-9, 0, np.sign(s)).astype(int)
        assert {tuple(r) for r in P} <= pats


def test_stewart_fast():
    import time

    t = time.time()
    arr = enumerate_faces(stewart().X)
    assert time.time() - t < 2
    assert len(arr) == 161


def test_generators_of_full_cone_2d():
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    arr = enumerate_faces(X)
    G = face_generators(arr, arr.find([1, 1]))
    assert G.shape == (2, 2) and np.all(G >= -1e-12)


@settings(deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(st.integers(1, 5), st.integers(2, 4), st.data())
def test_generators_span_each_closed_face_also_with_fewer_points_than_dimensions(n, d, data):
    """``cone(face_generators)`` is ``cl A^{-1}(u)``: every generator is nonzero and in the
    closure (its pattern conformal to ``u``), and the representative point of every face
    conformal to ``u`` is a nonnegative combination of them (NNLS, an independent solver).
    With ``n < d`` the lineality space ``ker X`` is not ``{0}`` and the face ``u = 0`` (dim
    ``d − n``) has the point 0: the generators were that zero point alone before."""
    from scipy.optimize import nnls

    X = data.draw(general_position(n, d))
    arr = enumerate_faces(X)
    for f in arr.faces:
        G = face_generators(arr, f)
        if f.dim == 0:
            continue
        assert len(G) and np.all(np.linalg.norm(G, axis=1) > 0.5), (f.u, G)
        s = G @ X.T
        sg = np.where(np.abs(s) <= 1e-9 * np.linalg.norm(X, axis=1), 0, np.sign(s))
        assert np.all((sg == 0) | (sg == f.u)), (f.u, G)
        for g in arr.faces:
            if np.all((g.u == 0) | (g.u == f.u)) and g.dim:
                c, res = nnls(G.T, g.point)
                assert res <= 1e-9 * max(1.0, np.linalg.norm(g.point)), (f.u, g.u, res)


def test_an_arrangement_is_kept_by_its_data_s_bytes():
    """The report asks for one dataset's faces several times (Lemma 3, Assumptions 4–6): the
    second call returns the same arrangement; other data (one bit changed) gets its own; a
    caller writing to its array afterwards changes neither."""
    X = np.array([[1.0, 0.2, -0.3], [0.1, 1.0, 0.4], [-0.5, 0.3, 1.0], [0.7, -0.6, 0.2]])
    a = enumerate_faces(X)
    assert enumerate_faces(X.copy()) is a
    Y = X.copy()
    Y[0, 0] = np.nextafter(1.0, 2.0)
    b = enumerate_faces(Y)
    assert b is not a and len(b) == len(a)
    X[0, 0] = 5.0
    assert a.X[0, 0] == 1.0 and enumerate_faces(X) is not a


def test_bad_input():
    with pytest.raises(ValueError, match="X"):
        enumerate_faces(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="X"):
        enumerate_faces(np.zeros(3))
