"""``Trajectory.to_xarray()`` and ``Trajectory.events_frame()`` (pwflow.export)."""

from __future__ import annotations

import numpy as np
import pytest

import pwflow
from pwflow.events import EventKind

xr = pytest.importorskip("xarray")
pd = pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def three_run() -> pwflow.Trajectory:
    """The three-point run of the README (m = 2000, λ = 1e-3, seed 0, t = 4000), 30 snapshots."""
    data = pwflow.three_points()
    init = pwflow.balanced(m=2000, d=data.d, scale=1e-3, seed=0)
    return pwflow.simulate(data, init, t_max=4000.0, n_snapshots=30)


def test_dataset_holds_the_trajectory(three_run):
    traj = three_run
    ds = traj.to_xarray()
    assert ds["w"].dims == ("time", "neuron", "dim")
    assert ds["a"].dims == ("time", "neuron") and ds["loss"].dims == ("time",)
    np.testing.assert_array_equal(ds["time"].values, traj.t)
    np.testing.assert_array_equal(ds["neuron"].values, np.arange(traj.m))
    np.testing.assert_array_equal(ds["w"].values, traj.W)
    np.testing.assert_array_equal(ds["a"].values, traj.a)
    np.testing.assert_array_equal(ds["x"].values, traj.X)
    # the loss recomputed independently from the stored neurons: (1/n) sum ½(h − y)²
    h = np.einsum("knd,pd->kpn", traj.W, traj.X)
    h = np.einsum("kpn,kn->kp", np.maximum(h, 0.0), traj.a)
    ref = 0.5 * np.mean((h - traj.y) ** 2, axis=1)
    np.testing.assert_allclose(ds["loss"].values, ref, rtol=1e-12, atol=1e-300)
    # label-based selection works like indexing the arrays
    i = traj.t.size // 2
    np.testing.assert_array_equal(ds["w"].sel(time=traj.t[i], neuron=3).values, traj.W[i, 3])
    assert ds.attrs["lambda"] == 1e-3 and ds.attrs["m"] == 2000 and ds.attrs["gamma"] == 0.0
    assert ds.attrs["seed"] == 0 and ds.attrs["dataset"] == traj.meta["dataset"]["name"]
    assert ds.attrs["loss"] == "square" and ds.attrs["rtol"] == 1e-10
    assert ds.attrs["atol"] == 1e-12 and ds.attrs["version"] == pwflow.__version__
    assert all(isinstance(v, (int, float, str)) for v in ds.attrs.values())
    assert ds.sizes["event"] == traj.n_events


def test_netcdf_round_trip(three_run, tmp_path):
    pytest.importorskip("h5netcdf")
    ds = three_run.to_xarray()
    path = tmp_path / "three.nc"
    ds.to_netcdf(path, engine="h5netcdf")
    with xr.open_dataset(path, engine="h5netcdf") as back:
        back.load()
        xr.testing.assert_identical(back, ds)
        assert back["w"].dtype == np.float64 and back["event_kind"].dtype == np.int64
        np.testing.assert_array_equal(back["w"].values, three_run.W)
        assert back.attrs == ds.attrs


def test_events_frame_matches_events_by_kind(three_run):
    traj = three_run
    frame = traj.events_frame()
    assert list(frame.columns[:4]) == ["t", "neuron", "point", "kind"]
    assert len(frame) == traj.n_events > 0
    counts = frame.groupby("kind", observed=True).size()
    assert {str(k): int(v) for k, v in counts.items()} == traj.events_by_kind()
    assert {"crossing", "enter_sliding"} <= set(counts.index)
    np.testing.assert_array_equal(frame["t"].to_numpy(), traj.events["t"])
    np.testing.assert_array_equal(frame["point"].to_numpy(), traj.events["k"])
    kinds = [EventKind(c).name.lower() for c in traj.events["kind"]]
    assert list(frame["kind"].astype(str)) == kinds


def test_events_frame_of_a_run_without_events():
    data = pwflow.three_points()
    traj = pwflow.simulate(data, pwflow.balanced(4, data.d, 1e-3, seed=1), t_max=0.0)
    frame = traj.events_frame()
    assert len(frame) == traj.n_events
    assert frame.groupby("kind", observed=True).size().to_dict() == {
        k: v for k, v in traj.events_by_kind().items()}
    assert traj.to_xarray().sizes["time"] == traj.t.size


def test_store_directory_exports(tmp_path):
    data = pwflow.three_points()
    traj = pwflow.simulate(data, pwflow.balanced(8, data.d, 1e-3, seed=2), t_max=50.0,
                           store=tmp_path / "run")
    back = pwflow.Trajectory.load(tmp_path / "run")
    xr.testing.assert_identical(back.to_xarray(), traj.to_xarray())
