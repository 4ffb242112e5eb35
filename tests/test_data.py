"""Tests of pwflow.data: the paper's datasets (Assumption 3, Appendix B), I/O and validation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pwflow.data import (
    STEWART_KNOTS,
    Dataset,
    assumption3,
    get_dataset,
    load_dataset,
    stewart,
    three_points,
    with_bias,
)


def test_three_points_values_appendix_b1():
    ds = three_points()
    np.testing.assert_array_equal(ds.X, [[-0.75, 1.0], [-0.5, 1.0], [0.125, 1.0]])
    np.testing.assert_array_equal(ds.y, [1.1, 0.1, 0.8])
    assert (ds.n, ds.d, ds.name) == (3, 2, "three_points")
    for name in ("three-points", "three_points"):
        np.testing.assert_array_equal(get_dataset(name).X, ds.X)
        np.testing.assert_array_equal(get_dataset(name).y, ds.y)


def test_dataset_arrays_are_read_only(three):
    with pytest.raises(ValueError):
        three.X[0, 0] = 5.0


def _in_assumption3_boxes(ds: Dataset, eta: float) -> bool:
    """Membership in the boxes of Assumption 3, written independently of the sampler."""
    (x1, x2, x3), (y1, y2, y3) = ds.X, ds.y
    return bool(
        -1 < x1[0] <= -1 + eta and 1 <= x1[1] <= 1 + eta and 1 <= y1 <= 1 + eta
        and -eta <= x2[0] <= eta and 1 - eta <= x2[1] <= 1 + eta and 0 < y2 <= eta
        and 1 - eta <= x3[0] < 1 and 1 <= x3[1] <= 1 + eta and 1 <= y3 <= 1 + eta
    )


@given(
    eta=st.floats(1e-6, 0.5, exclude_min=True, exclude_max=True),
    seed=st.integers(0, 2**32 - 1),
)
def test_assumption3_draws_lie_in_the_boxes(eta, seed):
    ds = assumption3(eta=eta, seed=seed)
    assert ds.n == 3 and ds.d == 2
    assert _in_assumption3_boxes(ds, eta)


def test_assumption3_box_check_can_fail():
    # the box check rejects data that is the Assumption 3 draw for a larger eta
    ds = assumption3(eta=0.4, seed=1)
    assert _in_assumption3_boxes(ds, 0.4) and not _in_assumption3_boxes(ds, 0.01)
    assert not _in_assumption3_boxes(three_points(), 1 / 6)


def test_assumption3_fills_the_boxes():
    # uniform draws: over many seeds each coordinate covers most of its interval
    eta = 0.1
    draws = np.array([np.append(assumption3(eta, s).X.ravel(), assumption3(eta, s).y)
                      for s in range(300)])
    spans = draws.max(axis=0) - draws.min(axis=0)
    widths = np.array([eta, eta, 2 * eta, 2 * eta, eta, eta, eta, eta, eta])
    assert np.all(spans > 0.9 * widths)


@pytest.mark.parametrize("seed", [0, 1, 7])
@pytest.mark.parametrize("n", [1, 40, 200])
def test_stewart_labels_are_the_knot_interpolation(seed, n):
    ds = stewart(seed=seed, n=n)
    x = ds.X[:, 0]
    assert ds.n == n and np.all(ds.X[:, 1] == 1.0)
    assert np.all((-1 <= x) & (x <= 1))
    kx, ky = STEWART_KNOTS
    # reference: explicit segment search and linear formula
    for xi, yi in zip(x, ds.y):
        i = min(int(np.searchsorted(kx, xi, side="right")) - 1, len(kx) - 2)
        lam = (xi - kx[i]) / (kx[i + 1] - kx[i])
        assert yi == pytest.approx((1 - lam) * ky[i] + lam * ky[i + 1], abs=1e-14)


def test_stewart_knots_match_appendix_b2_teacher_shape():
    kx, ky = STEWART_KNOTS
    assert kx[0] == -1 and kx[-1] == 1 and np.all(np.diff(kx) > 0)
    assert ky[0] == 0 and ky[-1] == 0 and len(kx) == 9


@pytest.mark.parametrize(
    "make",
    [lambda s: stewart(seed=s), lambda s: assumption3(0.1, seed=s)],
    ids=["stewart", "assumption3"],
)
def test_reproducibility(make):
    a, b, c = make(3), make(3), make(4)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.X, c.X)


def test_get_dataset_passes_seed():
    np.testing.assert_array_equal(get_dataset("stewart", seed=5).X, stewart(seed=5).X)
    np.testing.assert_array_equal(
        get_dataset("assumption3", seed=2, eta=0.05).y, assumption3(0.05, seed=2).y
    )


def test_a_repeated_point_is_data():
    """Repeated inputs (with labels of their own) are kept as given, not refused."""
    data = Dataset([[1.0, 2.0], [3.0, 1.0], [1.0, 2.0]], [1.0, 2.0, 3.0])
    assert data.n == 3 and np.array_equal(data.X[0], data.X[2])


def test_with_bias():
    np.testing.assert_array_equal(with_bias([1.0, 2.0]), [[1.0, 1.0], [2.0, 1.0]])
    np.testing.assert_array_equal(with_bias([[1.0, 3.0]]), [[1.0, 3.0, 1.0]])


def test_npz_round_trip(tmp_path):
    ds = stewart(seed=2, n=10)
    path = tmp_path / "s.npz"
    ds.save(path)
    back = load_dataset(path)
    np.testing.assert_array_equal(back.X, ds.X)
    np.testing.assert_array_equal(back.y, ds.y)
    assert back.name == "s"
    np.testing.assert_array_equal(get_dataset(str(path)).X, ds.X)


@pytest.mark.parametrize("header", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_csv_round_trip(tmp_path, header, bias):
    x = np.array([-0.75, -0.5, 0.125])
    y = np.array([1.1, 0.1, 0.8])
    path = tmp_path / "d.csv"
    rows = [f"{float(a)!r},{float(b)!r}" for a, b in zip(x, y)]
    lines = (["x,y"] if header else []) + ["# a comment"] + rows
    path.write_text("\n".join(lines) + "\n")
    ds = load_dataset(path, bias=bias)
    np.testing.assert_array_equal(ds.X, with_bias(x) if bias else x[:, None])
    np.testing.assert_array_equal(ds.y, y)
    if bias:
        np.testing.assert_array_equal(ds.X, three_points().X)


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


# One table of invalid inputs: (callable building the dataset, message fragment).
_INVALID = {
    "nan_in_X": (lambda t: Dataset([[np.nan, 1.0]], [1.0]), "X contains NaN"),
    "inf_in_X": (lambda t: Dataset([[np.inf, 1.0]], [1.0]), "X contains NaN or infinite"),
    "nan_in_y": (lambda t: Dataset([[1.0, 1.0]], [np.nan]), "y contains NaN"),
    "shape_mismatch": (lambda t: Dataset([[1.0], [2.0]], [1.0]), "2 rows but y has 1"),
    "y_2d": (lambda t: Dataset([[1.0], [2.0]], [[1.0], [2.0]]), "y must be a 1-D"),
    "X_3d": (lambda t: Dataset(np.ones((1, 1, 1)), [1.0]), "X must be a 2-D"),
    "empty": (lambda t: Dataset(np.zeros((0, 2)), np.zeros(0)), "empty"),
    "zero_vector": (lambda t: Dataset([[1.0, 1.0], [0.0, 0.0]], [1.0, 2.0]), "x_1 is the zero"),
    "unknown_name": (lambda t: get_dataset("mnist"), "unknown dataset 'mnist'"),
    "missing_file": (lambda t: load_dataset(t / "nope.npz"), "does not exist"),
    "bad_extension": (lambda t: load_dataset(_write(t, "d.txt", "1,2\n")), "unsupported"),
    "npz_without_y": (
        lambda t: (np.savez(t / "b.npz", X=np.ones((2, 1))), load_dataset(t / "b.npz")),
        "needs arrays 'X' and 'y'",
    ),
    "csv_non_numeric": (lambda t: load_dataset(_write(t, "c.csv", "a,b\nc,d\n")), "non-numeric"),
    "csv_one_column": (lambda t: load_dataset(_write(t, "e.csv", "1\n2\n")), "two columns"),
    # session 43: a ragged file read its numeric first line as a header and dropped it
    "csv_ragged": (lambda t: load_dataset(_write(t, "r.csv", "1,2,3\n4,5\n")),
                   "CSV line 2 has 2 values where the first data line has 3"),
    "csv_ragged_after_header": (lambda t: load_dataset(_write(t, "h.csv", "a,b,y\n1,2,3\n"
                                                                          "# note\n4,5,6,7\n")),
                                "CSV line 4 has 4 values"),
    "csv_non_numeric_later": (lambda t: load_dataset(_write(t, "n.csv", "1,2\n3,x\n")),
                              "non-numeric entry in CSV line 2"),
    "eta_zero": (lambda t: assumption3(eta=0.0), "eta must be in"),
    "eta_negative": (lambda t: assumption3(eta=-0.1), "eta must be in"),
    "eta_nan": (lambda t: assumption3(eta=float("nan")), "eta must be in"),
    "eta_one": (lambda t: assumption3(eta=1.0), "eta must be in"),
    "n_zero": (lambda t: stewart(n=0), "n must be a positive integer"),
    "n_fractional": (lambda t: stewart(n=2.5), "n must be a positive integer"),
}


@pytest.mark.parametrize("build,fragment", list(_INVALID.values()), ids=list(_INVALID))
def test_invalid_inputs(tmp_path, build, fragment):
    with pytest.raises(ValueError, match=fragment):
        build(tmp_path)
