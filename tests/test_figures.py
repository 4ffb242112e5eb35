"""Tests of pwflow.figures: the data behind the artists, checked against independent formulas."""

from __future__ import annotations

import matplotlib.colors as mcolors
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from scipy.special import expit

from pwflow import figures
from pwflow.data import Dataset, assumption3, stewart, three_points, with_bias
from pwflow.init import balanced
from pwflow.integrator import simulate
from pwflow.model import network_output
from strategies import general_position
from pwflow.trajectory import Trajectory


@pytest.fixture(scope="module")
def small_run() -> Trajectory:
    """Three points, 30 balanced neurons, λ = 1e-3, up to t = 200 (converged)."""
    return simulate(three_points(), balanced(30, 2, 1e-3, seed=1), 200.0)


def _relu_net(W, a, xs):
    """Independent h_θ on 1-D inputs with bias: Σ_j a_j max(0, w_j0 x + w_j1)."""
    return np.array([sum(aj * max(0.0, wj[0] * x + wj[1]) for wj, aj in zip(W, a)) for x in xs])


def _by_gid(fig, gid):
    return [a for ax in fig.axes for a in ax.get_children() if a.get_gid() == gid]


# ---------------------------------------------------------------------------- neurons
def test_neuron_polar_data_angles_radii_colours():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((50, 2))
    a = rng.standard_normal(50)
    a[3] = 0.0
    pd = figures.neuron_polar_data(W, a, r0=0.5)
    np.testing.assert_allclose(pd.theta, np.angle(W[:, 0] + 1j * W[:, 1]), atol=1e-15)
    norms = np.hypot(W[:, 0], W[:, 1])
    np.testing.assert_allclose(pd.radius, 0.5 + norms / norms.max(), rtol=1e-15)
    assert pd.radius.min() > 0.5 and pd.radius.max() == pytest.approx(1.5)
    expect = ["#0072B2" if v > 0 else "#D55E00" if v < 0 else "#999999" for v in a]
    assert pd.colours == expect
    assert pd.colours[3] == figures.ZERO
    # an explicit norm_max: the zero-norm circle is r0 and norm_max sits at r0 + 1
    pd2 = figures.neuron_polar_data(np.zeros((2, 2)) + [[0, 0], [3, 4]], [1, -1], norm_max=10.0)
    np.testing.assert_allclose(pd2.radius, [1.0, 1.5])


def test_neuron_polar_projection_for_d_above_2():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((20, 5)) @ np.diag([3, 2, 0.1, 0.1, 0.1])
    P = figures.projection_basis(X)
    np.testing.assert_allclose(P @ P.T, np.eye(2), atol=1e-12)
    # independent: top-2 eigenvectors of XᵀX span the same plane
    _, vecs = np.linalg.eigh(X.T @ X)
    top = vecs[:, -2:]
    np.testing.assert_allclose(top @ top.T, P.T @ P, atol=1e-10)
    # a neuron along x_k is drawn at the angle of x_k
    pd = figures.neuron_polar_data(X[:4], np.ones(4), X=X)
    np.testing.assert_allclose(pd.theta, figures.data_angles(X)[:4], atol=1e-12)
    with pytest.raises(ValueError, match="X is needed"):
        figures.neuron_polar_data(X[:4], np.ones(4))


def test_neuron_polar_data_rejects_bad_shapes():
    with pytest.raises(ValueError, match="shape"):
        figures.neuron_polar_data(np.ones((3, 2)), np.ones(2))
    with pytest.raises(ValueError, match="r0"):
        figures.neuron_polar_data(np.ones((3, 2)), np.ones(3), r0=0.0)


@settings(suppress_health_check=[HealthCheck.filter_too_much])
@given(st.integers(1, 5), st.data())
def test_cone_boundaries_are_the_hyperplanes(n, data):
    X = data.draw(general_position(n, 2))
    b = figures.cone_boundary_angles(X)
    assert b.size == 2 * X.shape[0]  # generic data: no two x_k collinear
    u = np.stack([np.cos(b), np.sin(b)], axis=1)
    # each boundary direction is orthogonal to some x_k
    cosines = np.abs(u @ X.T) / np.linalg.norm(X, axis=1)
    assert np.all(cosines.min(axis=1) < 1e-12)
    # dense sampling: the activation pattern changes exactly at the boundaries
    phi = np.linspace(-np.pi, np.pi, 20_001)[:-1] + 1e-7
    pats = np.sign(np.stack([np.cos(phi), np.sin(phi)], axis=1) @ X.T)
    change = np.flatnonzero(np.any(pats != np.roll(pats, 1, axis=0), axis=1))
    assert change.size == b.size
    gaps = np.abs(np.angle(np.exp(1j * (phi[change][:, None] - b[None, :])))).min(axis=1)
    assert np.all(gaps < 2 * np.pi / 20_000 + 1e-6)


def test_cone_boundaries_three_points_and_collinear():
    X = three_points().X
    b = figures.cone_boundary_angles(X)
    perp = np.angle(-X[:, 1] + 1j * X[:, 0])
    expect = np.sort(np.angle(np.exp(1j * np.concatenate([perp, perp + np.pi]))))
    np.testing.assert_allclose(b, expect, atol=1e-15)
    assert figures.cone_boundary_angles(np.array([[1.0, 1.0], [2.0, 2.0]])).size == 2
    with pytest.raises(ValueError, match="d = 2"):
        figures.cone_boundary_angles(np.ones((3, 3)))


# ---------------------------------------------------------------------------- constants
@pytest.mark.parametrize("data", [three_points(), stewart(seed=3, n=8), assumption3(0.1, seed=2)])
def test_d_max_against_dense_sampling(data):
    X, y = data.X, data.y
    r = -y  # ∂_1 l(0, y) for the square loss
    phi = np.linspace(-np.pi, np.pi, 200_000, endpoint=False)
    act = (np.stack([np.cos(phi), np.sin(phi)], axis=1) @ X.T) > 0
    D = -(act * r) @ X / X.shape[0]  # D(w, 0) in the open cones (no zero scalar products)
    sampled = np.linalg.norm(D, axis=1).max()
    assert figures.d_max(X, y) == pytest.approx(sampled, rel=1e-12)
    # the all-active cone of the three points gives D* = (1/n) Σ y_k x_k
    if data.name == "three_points":
        assert figures.d_max(X, y) >= np.linalg.norm(y @ X / 3)


def test_face_patterns_include_rays_and_origin():
    X = three_points().X
    U = figures.face_patterns_2d(X)
    assert U.shape == (2 * 2 * 3 + 1, 3)  # 6 open arcs, 6 rays, w = 0
    assert np.any(np.all(U == 0, axis=1))
    assert np.all(np.sum(U == 0, axis=1)[np.any(U != 0, axis=1)] <= 1)


def test_alignment_time_formula_and_errors():
    assert figures.alignment_time(1e-3, 2.0, 0.25) == pytest.approx(0.25 * np.log(1e3) / 2)
    with pytest.raises(ValueError, match="lam"):
        figures.alignment_time(2.0, 1.0)
    with pytest.raises(ValueError, match="D_max"):
        figures.alignment_time(0.1, 0.0)


# ---------------------------------------------------------------------------- function
def test_three_point_interpolant_fits_exactly():
    for data in [three_points()] + [figures.figure1_data(seed=s) for s in range(5)]:
        W, a = figures.three_point_interpolant(data.X, data.y)
        np.testing.assert_allclose(network_output(W, a, data.X), data.y, atol=1e-14)
        assert W.shape == (2, 2)
    # a point above the line through its neighbours cannot be fitted this way
    assert figures.three_point_interpolant(with_bias([-1.0, 0.0, 1.0]), np.array([0, 1, 0.0])) is None
    assert figures.three_point_interpolant(stewart(n=4).X, stewart(n=4).y) is None


def test_least_squares_matches_normal_equations():
    X, y = three_points().X, three_points().y
    beta = np.linalg.solve(X.T @ X, X.T @ y)
    np.testing.assert_allclose(figures.least_squares(X, y), beta, rtol=1e-12)
    assert figures.least_squares_loss(X, y) == pytest.approx(0.5 * np.mean((X @ beta - y) ** 2))


def test_function_plot_curve_equals_network(small_run):
    t = 37.5  # not a snapshot: dense evaluation
    fig = figures.make_figure(small_run, "function", [t])
    (line,) = _by_gid(fig, "h")
    xs, ys = line.get_data()
    W, a = small_run.state(t)
    np.testing.assert_allclose(ys, _relu_net(W, a, xs), rtol=1e-12, atol=1e-15)
    # the least-squares line and the data markers
    (ls,) = _by_gid(fig, "ls")
    beta = np.linalg.solve(small_run.X.T @ small_run.X, small_run.X.T @ small_run.y)
    np.testing.assert_allclose(ls.get_ydata(), beta[0] * xs + beta[1], rtol=1e-12)
    (pts,) = _by_gid(fig, "data")
    np.testing.assert_array_equal(pts.get_offsets(), np.c_[small_run.X[:, 0], small_run.y])
    (fit,) = _by_gid(fig, "fit")
    assert np.min(np.abs(fit.get_ydata())) < 0.05  # the interpolant dips to ~0 between x_1, x_2
    figures.plt.close(fig)


def test_function_curve_at_data_equals_trajectory_outputs(small_run):
    i = small_run.t.size // 2
    h = figures.function_curve(small_run.W[i], small_run.a[i], small_run.X[:, 0])
    np.testing.assert_allclose(h, small_run.outputs_of(i), rtol=1e-13, atol=1e-16)


# ---------------------------------------------------------------------------- neuron plot
def test_neuron_plot_markers_and_cones(small_run):
    times = [0.0, 50.0]
    fig = figures.make_figure(small_run, "neurons", times)
    scatters = _by_gid(fig, "neurons")
    assert len(scatters) == 2
    states = [small_run.state(t) for t in times]
    nmax = max(np.linalg.norm(W, axis=1).max() for W, _ in states)
    for sc, (W, a) in zip(scatters, states):
        off = sc.get_offsets()
        assert off.shape == (small_run.m, 2)  # one marker per neuron
        np.testing.assert_allclose(off[:, 0], np.arctan2(W[:, 1], W[:, 0]), atol=1e-15)
        np.testing.assert_allclose(off[:, 1], 1 + np.linalg.norm(W, axis=1) / nmax, rtol=1e-14)
        want = np.array([mcolors.to_rgba("#0072B2" if v > 0 else "#D55E00") for v in a])
        np.testing.assert_allclose(sc.get_facecolors(), want)
    cones = _by_gid(fig, "cone")
    got = np.unique(np.round([c.get_xdata()[0] for c in cones], 14))
    np.testing.assert_allclose(got, figures.cone_boundary_angles(small_run.X), atol=1e-13)
    figures.plt.close(fig)


# ---------------------------------------------------------------------------- loss plot
def test_loss_plot_phase_markers(small_run):
    fig = figures.make_figure(small_run, "loss")
    phases = figures.phase_times(small_run)
    dmax = figures.d_max(small_run.X, small_run.y)
    tau = -0.25 * np.log(1e-3) / dmax
    assert phases["tau"] == pytest.approx(tau, rel=1e-14)
    for name in ("tau", "align", "growth", "convergence"):
        (line,) = _by_gid(fig, f"phase:{name}")
        assert line.get_xdata()[0] == phases[name]
    (loss,) = _by_gid(fig, "loss")
    pos = small_run.step_t > 0
    np.testing.assert_array_equal(loss.get_xdata(), small_run.step_t[pos])
    (ls,) = _by_gid(fig, "ls-loss")
    assert ls.get_ydata()[0] == pytest.approx(figures.least_squares_loss(small_run.X, small_run.y))
    (rug,) = _by_gid(fig, "events")
    assert rug.get_xdata().size == np.count_nonzero(small_run.events["t"] > 0)
    figures.plt.close(fig)


def test_phase_times_definitions(small_run):
    p = figures.phase_times(small_run)
    t, L = small_run.step_t, small_run.step_loss
    hn = np.sqrt(np.mean(small_run.step_outputs**2, axis=1))
    assert 0 == p["init"] < p["align"] <= p["growth"] <= p["convergence"] <= t[-1]
    assert np.all(hn[t < p["align"]] < 0.01 * hn[-1]) and hn[t == p["align"]][0] >= 0.01 * hn[-1]
    assert np.all(hn[(t >= p["align"]) & (t < p["growth"])] < 0.5 * hn[-1])
    assert L[t == p["convergence"]][0] - L[-1] <= 1e-3 * (L[0] - L[-1])
    assert figures.default_times(small_run) == [p["init"], p["align"], p["growth"], p["convergence"]]


def test_loss_drops_on_two_sigmoids():
    t = np.concatenate([[0.0], np.geomspace(1e-2, 1e4, 5000)])
    s = np.log(np.maximum(t, 1e-300))
    L = 1.0 - 0.6 * expit(8 * (s - np.log(10))) - 0.3 * expit(8 * (s - np.log(1000)))
    drops = figures.loss_drops(t, L)
    assert len(drops) == 2
    (a0, b0), (a1, b1) = drops
    assert a0 < 10 < b0 < a1 < 1000 < b1
    # a single sigmoid gives one drop; a constant loss none
    assert len(figures.loss_drops(t, 1.0 - 0.6 * expit(8 * (s - np.log(10))))) == 1
    assert figures.loss_drops(t, np.ones_like(t)) == []
    with pytest.raises(ValueError, match="equal length"):
        figures.loss_drops(t, L[:-1])


# ---------------------------------------------------------------------------- files
def test_plot_run_writes_png(small_run, tmp_path):
    for kind in figures.PLOT_KINDS:
        times = None if kind == "all" else [0.0, float(small_run.t[-1])]  # snapshots: no restart
        out = figures.plot_run(small_run, kind, times, tmp_path / f"{kind}.png")
        assert out.stat().st_size < 300_000
        with Image.open(out) as im:
            assert im.format == "PNG"


def test_plot_run_rejects_bad_input(small_run, tmp_path):
    with pytest.raises(ValueError, match="kind"):
        figures.plot_run(small_run, "weights", None, tmp_path / "x.png")
    with pytest.raises(ValueError, match="outside"):
        figures.plot_run(small_run, "function", [1e6], tmp_path / "x.png")
    with pytest.raises(ValueError, match="at least one"):
        figures.plot_run(small_run, "function", [], tmp_path / "x.png")


@pytest.mark.parametrize("kind", figures.ANIMATE_KINDS)
def test_animate_writes_requested_frames(small_run, tmp_path, kind):
    out = figures.animate_run(small_run, kind, tmp_path / "a.gif", frames=5, fps=4)
    with Image.open(out) as im:
        assert im.format == "GIF"
        assert im.n_frames == 5


def test_animate_rejects_bad_input(small_run, tmp_path):
    with pytest.raises(ValueError, match="out"):
        figures.animate_run(small_run, "neurons", tmp_path / "a.avi", frames=3)
    with pytest.raises(ValueError, match="kind"):
        figures.animate_run(small_run, "loss", tmp_path / "a.gif", frames=3)
    with pytest.raises(ValueError, match="frames"):
        figures.animate_run(small_run, "neurons", tmp_path / "a.gif", frames=0)
    if figures.shutil.which("ffmpeg") is None:
        with pytest.raises(ValueError, match="ffmpeg"):
            figures.animate_run(small_run, "neurons", tmp_path / "a.mp4", frames=3)


def test_frame_times_distinct_and_span(small_run):
    ts = figures.frame_times(small_run, 7)
    assert ts.size == 7 and ts[0] == 0 and ts[-1] == pytest.approx(small_run.t[-1])
    assert np.all(np.diff(ts) > 0)


# ---------------------------------------------------------------------------- reproduce
def test_figure1_data_in_the_boxes(tmp_path):
    eta = 1 / 6
    for seed in range(5):
        d = figures.figure1_data(seed=seed)
        (x1, x2, x3), (y1, y2, y3) = d.X[:, 0], d.y
        assert np.all(d.X[:, 1] == 1)
        assert -1 < x1 <= -1 + eta and -eta <= x2 <= eta and 1 - eta <= x3 < 1
        assert 1 <= y1 <= 1 + eta and 0 < y2 <= eta and 1 <= y3 <= 1 + eta
    (png,) = figures.reproduce("figure1", tmp_path, None, None, None, 0, False)
    assert png.name == "figure1.png" and png.stat().st_size < 300_000


def test_reproduce_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="figure"):
        figures.reproduce("figure4", tmp_path, None, None, None, 0, False)
    with pytest.raises(ValueError, match="width"):
        figures.reproduce("figure2", tmp_path, 0, None, None, 0, False)


def _check_figure2_dynamics(traj: Trajectory) -> None:
    """Lemma 4 and Theorem 2 on a figure-2 trajectory (Appendix B.1 data)."""
    X, y = traj.X, traj.y
    phases = figures.phase_times(traj)
    W0, a0 = traj.W[0], traj.a[0]
    positive = (a0 > 0) & np.any(X @ W0.T > 0, axis=0)  # the set I of Section 4.1.1
    negative = a0 < 0  # the set N
    d_star = y @ X / len(y)
    # after the alignment phase, positive neurons point along D*
    W, a = traj.state(phases["align"])
    cos = W[positive] @ d_star / np.linalg.norm(W[positive], axis=1) / np.linalg.norm(d_star)
    assert cos.min() > 0.99
    W, a = traj.state(phases["tau"])
    cos = W[positive] @ d_star / np.linalg.norm(W[positive], axis=1) / np.linalg.norm(d_star)
    assert np.median(cos) > 0.9
    # negative neurons' norm decreased: a_i^0 <= a_i^τ <= 0 (Lemma 4, 2.)
    assert np.all(a[negative] >= a0[negative] * (1 + 1e-12)) and np.all(a[negative] <= 0)
    # at the end, every neuron is active on all points or on none (recorded faces, and the
    # scalar products recomputed up to rounding)
    U = traj.modes(-1)
    all_on = np.all(U == 1, axis=1)
    none_on = ~np.any(U == 1, axis=1)
    assert np.all(all_on | none_on) and all_on.any()
    S = X @ traj.W[-1].T
    tol = 1e-12 * np.linalg.norm(traj.W[-1], axis=1) * np.linalg.norm(X, axis=1)[:, None]
    assert np.all(np.all(S > tol, axis=0) | np.all(S <= tol, axis=0))
    # the learnt function is the least-squares line (Theorem 2)
    beta = np.linalg.solve(X.T @ X, X.T @ y)
    np.testing.assert_allclose(traj.outputs_of(-1), X @ beta, atol=1e-8)
    WT, aT = traj.W[-1], traj.a[-1]
    np.testing.assert_allclose((aT[all_on, None] * WT[all_on]).sum(axis=0), beta, atol=1e-8)


def test_reproduce_figure2_small(tmp_path, capsys):
    paths = figures.reproduce("figure2", tmp_path, 100, None, 400.0, 0, False)
    assert [p.name for p in paths] == ["figure2.npz", "figure2.png"]
    assert "width m = 100" in capsys.readouterr().err
    _check_figure2_dynamics(Trajectory.load(paths[0]))


@pytest.mark.slow
def test_reproduce_figure2_default_width(tmp_path):
    import time

    start = time.perf_counter()
    paths = figures.reproduce("figure2", tmp_path, 2000, None, None, 0, False)
    assert time.perf_counter() - start < 60
    assert paths[1].stat().st_size < 300_000
    traj = Trajectory.load(paths[0])
    assert traj.success and traj.m == 2000 and traj.t[-1] == 4000.0
    _check_figure2_dynamics(traj)


def test_check_figure2_dynamics_can_fail(small_run):
    """The dynamics check rejects a run that has not converged (t = 5: still at h ≈ 0)."""
    short = simulate(three_points(), balanced(30, 2, 1e-3, seed=1), 5.0)
    with pytest.raises(AssertionError):
        _check_figure2_dynamics(short)


def test_non_bias_data_function_panel(tmp_path):
    data = Dataset(np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [1.0, 1.0, 0.0]]), np.ones(3))
    from pwflow.init import unbalanced

    traj = simulate(data, unbalanced(5, 3, 0.1, seed=0), 1.0)
    fig = figures.make_figure(traj, "all", [0.5])
    (sc,) = _by_gid(fig, "h")
    W, a = traj.state(0.5)
    np.testing.assert_allclose(sc.get_offsets()[:, 1], np.maximum(data.X @ W.T, 0) @ a, atol=1e-15)
    assert not _by_gid(fig, "cone")
    figures.plt.close(fig)


def test_state_at_uses_snapshots_for_non_flow_runs(small_run):
    import dataclasses

    gd = dataclasses.replace(small_run, meta={**small_run.meta, "method": "gd"})
    i = small_run.t.size // 2
    t = 0.5 * (small_run.t[i] + small_run.t[i + 1])
    W, a = figures.state_at(gd, t)
    np.testing.assert_array_equal(W, small_run.W[i])
    np.testing.assert_array_equal(a, small_run.a[i])
    W2, _ = figures.state_at(small_run, t)  # the flow run is evaluated densely
    assert not np.array_equal(W2, small_run.W[i])
    with pytest.raises(ValueError, match="outside"):
        figures.state_at(gd, -1.0)


@pytest.mark.slow
def test_reproduce_figure3_default(tmp_path):
    """Appendix B.2: successive norm growths, then a stationary point that does not fit the data."""
    paths = figures.reproduce("figure3", tmp_path, None, None, None, 0, False)
    traj = Trajectory.load(paths[0])
    assert traj.success and traj.m == 1000 and paths[1].stat().st_size < 300_000
    L_ls = figures.least_squares_loss(traj.X, traj.y)
    drops = figures.loss_drops(traj.step_t, traj.step_loss)
    assert len(drops) >= 2  # more than the single growth of the three-point example
    # a plateau at the least-squares loss between the first two drops
    t_mid = np.sqrt(drops[0][1] * drops[1][0])
    i = np.searchsorted(traj.step_t, t_mid)
    assert traj.step_loss[i] == pytest.approx(L_ls, rel=1e-3)
    # the end: well below L(β*), yet not a global minimum (the teacher fits the data exactly)
    assert 1e-4 < traj.step_loss[-1] < 0.1 * L_ls
    assert len(figures.default_times(traj)) == 5
