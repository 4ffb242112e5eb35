"""Tests of :mod:`pwflow.sweeps`: SPEC validation, classification, and sweeps on a real
``LocalCluster`` with 2 worker processes (matches one-by-one runs, survives a killed worker,
resumes an interrupted sweep to the same table), and the figure subcommands."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dask.distributed")
pytest.importorskip("pyarrow")
pytest.importorskip("tqdm")

import pwflow  # noqa: E402
from pwflow import cli  # noqa: E402
from pwflow.sweeps import (  # noqa: E402
    ClassifyRule,
    Outcome,
    classify,
    load_spec,
    parse_spec,
    read_summary,
    run_point,
    sweep,
)
from pwflow.sweeps.driver import COLUMNS  # noqa: E402
from pwflow.sweeps.run import BLAS_ENV  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

TINY = textwrap.dedent("""
    [dataset]
    name = "three-points"

    [grid]
    scale = [1e-3, 0.5]
    width = [6, 12]
    seed = [0, 1]

    [fixed]
    t_max = 150
    snapshots = 5
""")

#: Columns that differ between two computations of the same run (timing).
VOLATILE = ("wall_time",)


def _write(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def _stable(rows):
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in rows]


# ---------------------------------------------------------------------------- SPEC parsing
def test_spec_grid_expansion_and_ids(tmp_path):
    spec = load_spec(_write(tmp_path, """
        [dataset]
        name = "assumption3"
        [grid]
        scale = { log = [1e-6, 1e-2], num = 5 }
        eta = [0.05, 0.1]
        seed = [0, 1, 2]
        [fixed]
        width = 50
    """))
    pts = spec.points()
    assert len(pts) == 5 * 2 * 3
    np.testing.assert_allclose(sorted({p.scale for p in pts}), [1e-6, 1e-5, 1e-4, 1e-3, 1e-2])
    assert {p.width for p in pts} == {50}
    assert {p.t_max for p in pts} == {4000.0}  # the default
    ids = [p.run_id for p in pts]
    assert len(set(ids)) == len(ids)
    assert ids == [p.run_id for p in load_spec(tmp_path / "spec.toml").points()]  # stable
    # the id depends on the fixed options, not on the position in the grid
    other = parse_spec({"dataset": {"name": "assumption3"},
                        "grid": {"scale": [1e-4], "eta": [0.1], "seed": [2]},
                        "fixed": {"width": 50}})
    assert other.points()[0].run_id in ids
    changed = parse_spec({"dataset": {"name": "assumption3"},
                          "grid": {"scale": [1e-4], "eta": [0.1], "seed": [2]},
                          "fixed": {"width": 50, "rtol": 1e-9}})
    assert changed.points()[0].run_id not in ids


def test_spec_width_log_range_is_integer(tmp_path):
    spec = parse_spec({"dataset": {"name": "three-points"},
                       "grid": {"width": {"log": [10, 1000], "num": 3}}})
    assert [p.width for p in spec.points()] == [10, 100, 1000]


@pytest.mark.parametrize("body, match", [
    ('[grid]\nlambda = [1e-3]', r"\[grid\] unknown axis 'lambda'.*allowed: scale, width"),
    ('[grid]\nscale = []', r"\[grid\] scale: empty list"),
    ('[grid]\nscale = [1e-3, -1e-2]', r"\[grid\] scale: must be > 0, got -0.01"),
    ('[grid]\nscale = { log = [0, 1], num = 3 }', r"log range needs lo, hi > 0"),
    ('[grid]\nwidth = [2.5]', r"\[grid\] width: expected an integer >= 1"),
    ('[grid]\ngamma = [2]', r"gamma: must be in \[0, 1\]"),
    ('[grid]\ninit = ["xavier"]', r"init: got 'xavier'; allowed: balanced"),
    ('[grid]\neta = [0.1]', r"eta applies only to dataset assumption3"),
    ('[grid]\nrtol = [1e-9]', r"unknown axis 'rtol' \(a fixed option: put it in \[fixed\]\)"),
    ('[fixed]\nmethod = "gd"', r"method gd needs lr"),
    ('[fixed]\nfoo = 1', r"\[fixed\]: unknown key 'foo'"),
    ('[grid]\nseed = [0]\n[fixed]\nseed = 1', r"\[fixed\] seed: also a \[grid\] axis"),
    ('[plot]\nx = 1', r"unknown table \[plot\]"),
    ('[classify]\nglobal_tol = -1', r"\[classify\] global_tol: must be > 0"),
])
def test_bad_spec_one_clear_error(tmp_path, body, match):
    path = _write(tmp_path, '[dataset]\nname = "three-points"\n' + body)
    with pytest.raises(ValueError, match=match) as info:
        load_spec(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_bad_spec_files(tmp_path):
    with pytest.raises(ValueError, match=r"SPEC file '.*nothing.toml' does not exist"):
        load_spec(tmp_path / "nothing.toml")
    with pytest.raises(ValueError, match=r"dataset file '.*missing.npz' does not exist"):
        load_spec(_write(tmp_path, '[dataset]\nname = "missing.npz"\n'))
    with pytest.raises(ValueError, match=r"unknown dataset 'mnist'"):
        load_spec(_write(tmp_path, '[dataset]\nname = "mnist"\n'))
    with pytest.raises(ValueError, match=r"is not valid TOML"):
        load_spec(_write(tmp_path, '[dataset\nname = 1\n'))
    with pytest.raises(ValueError, match=r"\[dataset\] is required"):
        load_spec(_write(tmp_path, '[grid]\nscale = [1e-3]\n'))


def test_dataset_file_relative_to_spec(tmp_path):
    (tmp_path / "d").mkdir()
    pwflow.three_points().save(tmp_path / "d" / "pts.npz")
    spec = load_spec(_write(tmp_path / "d", '[dataset]\nname = "pts.npz"\n'))
    assert spec.dataset.path == str((tmp_path / "d" / "pts.npz").resolve())


def test_cli_bad_spec_starts_nothing(tmp_path, capsys):
    spec = _write(tmp_path, '[dataset]\nname = "three-points"\n[grid]\nscale = [-1.0]\n')
    out = tmp_path / "out"
    assert cli.main(["sweep", str(spec), "--out", str(out)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pwflow: error: SPEC ")
    assert "scale: must be > 0" in err
    assert not out.exists()


# ---------------------------------------------------------------------------- classification
def _row(**kw):
    base = {"status": 0, "zero_loss": 0.3, "final_loss": 0.0875, "half_loss": 0.0875,
            "loss_beta_star": 0.0875}
    return {**base, **kw}


def test_classify_rule():
    rule = ClassifyRule(global_tol=1e-4, spurious_tol=1e-3)
    assert classify(_row(), rule) is Outcome.SPURIOUS
    assert classify(_row(final_loss=1e-9), rule) is Outcome.GLOBAL
    assert classify(_row(status=-2), rule) is Outcome.FAILED
    # still decreasing: not converged even though it is at L_β* now
    assert classify(_row(half_loss=0.2), rule) is Outcome.NOT_CONVERGED
    # stalled away from L_β*: not the spurious point of Theorem 2
    assert classify(_row(final_loss=0.05, half_loss=0.05), rule) is Outcome.NOT_CONVERGED
    # no L_β* (logistic loss): never spurious
    assert classify(_row(loss_beta_star=None), rule) is Outcome.NOT_CONVERGED
    assert classify(_row(final_loss=float("nan")), rule) is Outcome.NOT_CONVERGED


# ---------------------------------------------------------------------------- cluster
@pytest.fixture(scope="module")
def client():
    from dask.distributed import Client, LocalCluster

    from pwflow.sweeps.run import BLAS_ENV

    # dashboard on a free port: with the default 8787 a second cluster on the machine warns
    # "Port 8787 is already in use", which filterwarnings=error turns into a failure
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, env=dict(BLAS_ENV),
                      dashboard_address=":0", death_timeout=60) as cluster, \
            Client(cluster, timeout=60) as c:
        c.wait_for_workers(2, timeout=60)
        yield c


@pytest.fixture(scope="module")
def reference(tmp_path_factory, client):
    """The tiny sweep run once on the cluster: (spec path, its folder, its rows)."""
    tmp = tmp_path_factory.mktemp("sweep-ref")
    spec = _write(tmp, TINY)
    res = sweep(spec, tmp / "out", client=client, progress=False)
    return spec, tmp / "out", res.rows


def test_sweep_matches_runs_made_one_by_one(reference):
    spec, out, rows = reference
    assert len(rows) == 8 and list(rows[0]) == list(COLUMNS)
    assert _stable(read_summary(out)) == _stable(rows)
    assert [r["run_id"] for r in rows] == [p.run_id for p in load_spec(spec).points()]
    outcomes = {r["outcome"] for r in rows}
    assert str(Outcome.SPURIOUS) in outcomes  # λ = 1e-3 on the three points: Theorem 2's point
    # the same runs through the public API, one by one, in a process with the workers' BLAS
    # settings (one thread: another thread count changes the rounding, hence the step count)
    script = textwrap.dedent("""
        import json, sys, pwflow
        data = pwflow.three_points()
        out = []
        for m, lam, seed, t_max in json.loads(sys.argv[1]):
            init = pwflow.balanced(m, data.d, lam, seed=seed)
            s = pwflow.simulate(data, init, t_max, n_snapshots=5).summary()
            out.append([s["status"], s["final_loss"], s["events"], s["n_steps"]])
        print(json.dumps(out))
    """)
    pts = [[r["width"], r["scale"], r["seed"], r["t_max"]] for r in rows]
    env = {**os.environ, **BLAS_ENV,
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", script, json.dumps(pts)], env=env,
                          capture_output=True, text=True, timeout=120, check=True)
    one_by_one = json.loads(proc.stdout)
    assert [[r["status"], r["final_loss"], r["events"], r["steps"]] for r in rows] == one_by_one
    data = pwflow.three_points()
    lb = {r["loss_beta_star"] for r in rows}
    assert len(lb) == 1  # L_β* of the least-squares fit, independent of the run
    X, y = data.X, data.y
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    assert lb.pop() == pytest.approx(0.5 * np.mean((X @ beta - y) ** 2), rel=1e-12)


def test_resume_skips_finished_runs(reference, client):
    spec, out, rows = reference
    res = sweep(spec, out, client=client, progress=False)
    assert (res.n_skipped, res.n_done) == (8, 0)
    assert res.rows == rows  # not recomputed: identical, wall times included


def test_interrupted_sweep_resumed_gives_same_table(tmp_path, reference, client):
    spec, _, rows = reference
    out = tmp_path / "out"
    seen = []

    def stop_after_three(row):
        seen.append(row)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweep(spec, out, client=client, progress=False, callback=stop_after_three)
    partial = read_summary(out)
    # what finished is in the table (runs the workers were finishing may be stored too)
    assert 3 <= len(partial) <= 8
    res = sweep(spec, out, client=client, progress=False)
    assert res.n_skipped >= 3 and res.n_skipped + res.n_done == 8
    assert not list((out / "runs").glob(".tmp-*"))
    assert _stable(read_summary(out)) == _stable(rows)


def test_killed_worker_loses_nothing(tmp_path, reference, client):
    spec, _, rows = reference
    out = tmp_path / "out"
    pids = client.run(os.getpid)  # worker address -> pid
    killed = []

    def kill_one(row):
        if not killed:
            busy = [w for w, keys in client.processing().items() if keys]
            victim = busy[0] if busy else next(iter(pids))
            os.kill(pids[victim], signal.SIGKILL)
            killed.append(victim)

    res = sweep(spec, out, client=client, progress=False, callback=kill_one)
    assert killed and res.n_failed == 0
    assert _stable(res.rows) == _stable(rows)
    assert all(r["status"] == 0 for r in res.rows)
    assert not list((out / "failed").iterdir())
    client.wait_for_workers(2, timeout=60)  # the nanny restarted it


def test_failed_run_is_recorded_and_sweep_goes_on(tmp_path, client):
    pwflow.three_points().save(tmp_path / "pts.npz")
    spec = load_spec(_write(tmp_path, """
        [dataset]
        name = "pts.npz"
        [grid]
        scale = [1e-3, 0.5]
        [fixed]
        width = 4
        t_max = 20
        [sweep]
        retries = 0
    """))
    (tmp_path / "pts.npz").unlink()  # vanishes after validation: every task raises
    res = sweep(spec, tmp_path / "out", client=client, progress=False)
    assert res.n_failed == 2
    assert all(r["status"] == -1 and r["outcome"] == str(Outcome.FAILED) for r in res.rows)
    assert all("does not exist" in r["message"] for r in res.rows)
    assert len(list((tmp_path / "out" / "failed").glob("*.json"))) == 2


def test_changed_fixed_options_refused_unless_new(tmp_path, reference, client):
    spec, out, _ = reference
    other = tmp_path / "other.toml"
    other.write_text(TINY.replace("snapshots = 5", "snapshots = 6").replace(
        "seed = [0, 1]", "seed = [0]").replace("width = [6, 12]", "width = [6]").replace(
        "scale = [1e-3, 0.5]", "scale = [1e-3]"))
    with pytest.raises(ValueError, match=r"fixed options differ.*snapshots: was 5, now 6.*--new"):
        sweep(other, out, client=client, progress=False)
    # an axis fixed now but swept before (or the reverse) extends or restricts the sweep
    narrow = tmp_path / "narrow.toml"
    narrow.write_text(TINY.replace("width = [6, 12]\n", "").replace(
        "[fixed]\n", "[fixed]\nwidth = 6\n"))
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(out, copy)
    res = sweep(narrow, copy, client=client, progress=False)
    assert (res.n_runs, res.n_skipped, res.n_done) == (4, 4, 0)
    res = sweep(other, copy, client=client, progress=False, new=True)
    assert res.n_runs == 1 and res.n_done == 1
    assert json.loads((copy / "sweep.json").read_text())["identity"]["options"]["snapshots"] == 6
    assert len(read_summary(copy)) == 1


def test_run_point_is_idempotent(tmp_path):
    p = load_spec(_write(tmp_path, TINY)).points()[0]
    first = run_point(p, str(tmp_path / "runs"))
    again = run_point(p, str(tmp_path / "runs"))
    assert again == first  # read back, not rerun
    assert sorted(os.listdir(tmp_path / "runs" / p.run_id)) == [
        "checkpoint.npz", "progress.npz", "row.json", "run.npz", "snapshot_patterns.npy",
        "snapshots.npy"]


def test_refuses_foreign_folder(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"not empty and is not a sweep folder"):
        sweep(_write(tmp_path, TINY), tmp_path / "out", progress=False)


# ---------------------------------------------------------------------------- figures
def test_phase_diagram_and_sweep_plot_cli(reference, tmp_path, capsys):
    _, out, _ = reference
    fig = tmp_path / "pd.png"
    assert cli.main(["phase-diagram", str(out), "--x", "scale", "--y", "width",
                     "--out", str(fig)]) == 0
    assert fig.stat().st_size > 1000
    fig2 = tmp_path / "tau.png"
    assert cli.main(["sweep-plot", str(out), "--y", "final_loss", "--x", "scale", "--hue",
                     "width", "--out", str(fig2)]) == 0
    assert fig2.stat().st_size > 1000
    capsys.readouterr()
    assert cli.main(["phase-diagram", str(out), "--y", "eta", "--out", str(fig)]) == 2
    assert "already exists; pass --force" in capsys.readouterr().err  # no silent overwrite
    assert cli.main(["phase-diagram", str(out), "--y", "eta", "--out", str(fig), "--force"]) == 2
    assert "no values of 'eta'" in capsys.readouterr().err
    assert cli.main(["sweep-plot", str(out), "--y", "message", "--out", str(fig2),
                     "--force"]) == 2
    assert "not a numeric summary column" in capsys.readouterr().err
    assert cli.main(["phase-diagram", str(tmp_path / "none"), "--out", str(fig)]) == 2


def test_thresholds_from_constants(reference):
    from proofs_checks.constants import lambda_star
    from proofs_checks.faces import geometry
    from pwflow.sweeps.plots import ETA5, thresholds

    _, _, rows = reference
    th = {t.label.split(" ")[0].replace("$\\lambda^*_{\\alpha_0}$", "λ*_α₀"): t
          for t in thresholds(list(rows), "scale", "eta")}
    expect = lambda_star(geometry(pwflow.three_points()), 0.5, 0.25)
    assert th["λ*_α₀"].value == pytest.approx(expect)
    assert th["η₅"].value == ETA5
    assert th["λ̃"].value is None and "not drawn" in th["λ̃"].note


@pytest.mark.parametrize("name, n_runs", [("three_points.toml", 64), ("assumption3.toml", 112),
                                          ("three_points_refine.toml", 48), ("tiny.toml", 12)])
def test_shipped_example_specs_parse(name, n_runs):
    spec = load_spec(ROOT / "examples" / "sweeps" / name)
    assert len(spec.points()) == n_runs


def test_cli_lists_sweep_commands_and_stays_import_light():
    code = ("import sys, pwflow.cli as c; "
            "assert {'sweep', 'phase-diagram', 'sweep-plot'} <= set(c.COMMANDS); "
            "heavy = [m for m in sys.modules if m.split('.')[0] in "
            "('dask', 'distributed', 'pyarrow', 'tqdm', 'matplotlib')]; "
            "assert not heavy, heavy")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT),
                                                        os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)


def test_cli_sweep_on_existing_scheduler(tmp_path, client, monkeypatch, capsys):
    """``DASK_SCHEDULER_ADDRESS`` (as ``--scheduler``) runs on that cluster; exit 0; summary."""
    spec = _write(tmp_path, TINY.replace("width = [6, 12]", "width = [6]").replace(
        "seed = [0, 1]", "seed = [0]"))
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", client.scheduler.address)
    out = tmp_path / "out"
    assert cli.main(["sweep", str(spec), "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "2 runs (0 already done, 2 run now)" in text and "summary.parquet" in text
    assert len(read_summary(out)) == 2
    assert cli.main(["sweep", str(spec), "--out", str(out), "--quiet", "--workers", "2",
                     "--scheduler", client.scheduler.address]) == 2
    assert "--workers applies only to the LocalCluster" in capsys.readouterr().err


def test_tau_without_phases(tmp_path):
    """τ of Theorem 1 always (λ < 1); τ₂, τ₃ only with ``phases = true`` (null otherwise)."""
    from proofs_checks.constants import D_max, tau
    from proofs_checks.faces import geometry

    grid = {"dataset": {"name": "assumption3"}, "grid": {"scale": [1e-3]},
            "fixed": {"width": 6, "t_max": 60, "snapshots": 10}}
    row = run_point(parse_spec(grid).points()[0], str(tmp_path))
    data = pwflow.assumption3(eta=0.1, seed=0)
    assert row["tau"] == pytest.approx(tau(1e-3, 0.25, D_max(geometry(data))), rel=1e-12)
    assert row["tau2"] is None and row["tau3"] is None


@pytest.mark.slow  # ~5 s: the bisections of locate_phases restart the integrator ~60 times
def test_phase_times_on_assumption3(tmp_path):
    """``phases = true``: τ ≤ τ₂ ≤ τ₃, the values of locate_phases on the stored run."""
    from proofs_checks.checks import geometry, locate_phases

    grid = {"dataset": {"name": "assumption3"}, "grid": {"scale": [1e-3]},
            "fixed": {"width": 6, "t_max": 60, "snapshots": 10, "phases": True}}
    p = parse_spec(grid).points()[0]
    row = run_point(p, str(tmp_path / "on"))
    assert 0 < row["tau"] <= row["tau2"] <= row["tau3"] <= 60
    traj = pwflow.Trajectory.load(tmp_path / "on" / p.run_id)
    data = pwflow.assumption3(eta=0.1, seed=0)
    ph = locate_phases(traj, geometry(data), 1e-3, 0.25, 0.05, 0.05, 0.05)
    assert (row["tau2"], row["tau3"]) == pytest.approx((ph.tau2, ph.tau3), rel=1e-6)


def test_one_driver_per_folder(tmp_path):
    fcntl = pytest.importorskip("fcntl")
    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another driver holds the folder
        with pytest.raises(ValueError, match=r"another sweep is running in"):
            sweep(_write(tmp_path, TINY), out, progress=False)
    assert not (out / "runs").exists()


def test_gradient_descent_point(tmp_path):
    """``method = "gd"``: the store has the simulate --store layout and loads back; GD with a
    small step follows the flow (independent reference) on a short horizon."""
    spec = parse_spec({"dataset": {"name": "three-points"},
                       "grid": {"method": ["gd"], "scale": [0.5]},
                       "fixed": {"width": 6, "t_max": 20, "lr": 1e-3}})
    p = spec.points()[0]
    row = run_point(p, str(tmp_path))
    assert row["method"] == "gd" and row["lr"] == 1e-3 and row["status"] == 0
    traj = pwflow.Trajectory.load(tmp_path / p.run_id)
    assert traj.meta["method"] == "gd" and traj.t[-1] == pytest.approx(20)
    flow = pwflow.simulate(pwflow.three_points(),
                           pwflow.balanced(6, 2, 0.5, seed=0), 20)
    assert row["final_loss"] == pytest.approx(flow.summary()["final_loss"], rel=1e-2)
    flow_spec = parse_spec({"dataset": {"name": "three-points"},
                            "grid": {"method": ["flow", "gd"]}, "fixed": {"lr": 0.1}})
    assert [q.lr for q in flow_spec.points()] == [None, 0.1]  # lr is a GD-only parameter


@pytest.mark.slow  # ~20 s: two LocalClusters in subprocesses
def test_ctrl_c_in_a_terminal_then_resume(tmp_path):
    """SIGINT to the whole process group (a terminal's Ctrl-C): exit 130, one line, no worker
    traceback, finished runs kept; the same command completes the sweep.  The runs finish
    over about 5 s after the first (widths 400 and 800 to t = 4000); where the whole sweep
    has ended before the signal could be sent, the test starts again with four times the
    widths.  The sweep starts with SIGINT at its default disposition, as under a terminal:
    the exit 0 seen in sessions 16–18 came from test runs started in the background by a
    non-interactive shell (``cmd &``), which inherit SIGINT ignored, and the sweep keeps an
    ignored signal ignored (``pwflow.signals``), so it ran to its end."""
    import time

    for widths in ("[400, 800]", "[1600, 3200]", "[6400, 12800]"):
        spec = _write(tmp_path, TINY.replace("t_max = 150", "t_max = 4000").replace(
            "width = [6, 12]", f"width = {widths}"))
        out = tmp_path / "out"
        shutil.rmtree(out, ignore_errors=True)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT),
                                                            os.environ.get("PYTHONPATH", "")])}
        cmd = [sys.executable, "-m", "pwflow", "sweep", str(spec), "--out", str(out),
               "--workers", "2", "--quiet"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            runs = list((out / "runs").glob("[0-9a-f]*")) if (out / "runs").is_dir() else []
            if runs:
                break
            time.sleep(0.1)
        if proc.poll() is None:
            break  # the premise: the sweep is still running
        proc.communicate(timeout=300)
    else:
        pytest.fail("every sweep ended before the signal could be sent")
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == cli.EXIT_INTERRUPTED, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "pwflow: interrupted by the user (Ctrl-C)"
    done = len(read_summary(out))
    assert 1 <= done
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    # runs the workers were finishing when Ctrl-C came may still have been stored
    import re

    k = int(re.search(r"8 runs \((\d+) already done", res.stdout).group(1))
    assert done <= k < 8 and f"{8 - k} run now" in res.stdout
    assert len(read_summary(out)) == 8
