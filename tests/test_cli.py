"""Tests of the command line (``pwflow.cli``): in-process via ``main([...])`` and once through
``python -m pwflow`` in a subprocess.

The numbers printed by ``summary`` are checked against quantities recomputed here from the
saved arrays (the loss from the final neurons, event counts from the raw event log, the Lemma 1
drift from ``a² − ‖w‖²``), and the trajectory written by ``simulate`` against a direct call of
the library with the same arguments.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

import pwflow
from pwflow import cli
from pwflow.events import EventKind
from pwflow.integrator import HybridFlow, Status, ZenoError
from pwflow.model import empirical_loss, get_loss
from pwflow.trajectory import Trajectory

SMALL = ["--width", "20", "--t-max", "5", "--quiet"]


def run_cli(capsys, argv):
    """``main(argv)`` with captured (stdout, stderr)."""
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    """One small flow run on the three-point data, written by the CLI."""
    path = tmp_path_factory.mktemp("run") / "three.npz"
    assert cli.main(["simulate", *SMALL, "--out", str(path)]) == 0
    return path


def independent_summary(traj: Trajectory) -> dict:
    """The summary's numbers recomputed from the stored arrays, not through ``summary()``."""
    loss = get_loss(traj.loss_name)
    final = empirical_loss(traj.W[-1], traj.a[-1], traj.X, traj.y, loss, traj.gamma)
    kinds = traj.events["kind"]
    counts = {EventKind(k).name.lower(): int(np.count_nonzero(kinds == k)) for k in np.unique(kinds)}
    c = traj.a**2 - np.sum(traj.W**2, axis=2)
    size = np.max(traj.a**2 + np.sum(traj.W**2, axis=2), axis=0)
    drift = float(np.max(np.abs(c - c[0]) / size))
    resid = float(np.max(traj.events["residual"])) if traj.events["residual"].size else 0.0
    return {"final_loss": final, "events_by_kind": counts, "events": int(kinds.size),
            "drift": drift, "residual": resid}


# ---------------------------------------------------------------------------- simulate
@pytest.mark.parametrize(
    "argv, dataset, init_kind, gamma, loss",
    [
        ([], pwflow.three_points(), "balanced", 0.0, "square"),
        (["--dataset", "stewart", "--n-points", "7", "--init", "dominated", "--gamma", "0.2",
          "--seed", "3", "--scale", "0.01"],
         pwflow.stewart(seed=3, n=7), "dominated", 0.2, "square"),
        (["--dataset", "assumption3", "--eta", "0.05", "--init", "unbalanced", "--loss",
          "logistic", "--rtol", "1e-8", "--atol", "1e-10", "--seed", "1"],
         pwflow.assumption3(eta=0.05, seed=1), "unbalanced", 0.0, "logistic"),
    ],
)
def test_simulate_matches_library_call(capsys, tmp_path, argv, dataset, init_kind, gamma, loss):
    out = tmp_path / "sub" / "run.npz"
    rc, stdout, stderr = run_cli(capsys, ["simulate", *SMALL, *argv, "--out", out])
    assert rc == 0, stderr
    assert "Traceback" not in stderr and stderr == ""  # --quiet: no progress bar
    traj = Trajectory.load(out)
    seed = int(argv[argv.index("--seed") + 1]) if "--seed" in argv else 0
    scale = float(argv[argv.index("--scale") + 1]) if "--scale" in argv else 1e-3
    rtol = float(argv[argv.index("--rtol") + 1]) if "--rtol" in argv else 1e-10
    atol = float(argv[argv.index("--atol") + 1]) if "--atol" in argv else 1e-12
    init = pwflow.make_init(init_kind, 20, dataset.d, scale, seed)
    ref = pwflow.simulate(dataset, init, 5.0, gamma=gamma, loss=loss, rtol=rtol, atol=atol)
    np.testing.assert_array_equal(traj.X, dataset.X)
    np.testing.assert_array_equal(traj.y, dataset.y)
    np.testing.assert_array_equal(traj.W[0], init.W)
    np.testing.assert_array_equal(traj.a[0], init.a)
    np.testing.assert_array_equal(traj.t, ref.t)
    np.testing.assert_array_equal(traj.W[-1], ref.W[-1])
    np.testing.assert_array_equal(traj.step_loss, ref.step_loss)
    assert (traj.gamma, traj.loss_name, traj.status) == (gamma, loss, 0)
    assert traj.meta["init"] == {"kind": init_kind, "scale": scale, "seed": seed, "m": 20}
    assert traj.meta["options"]["rtol"] == rtol and traj.meta["options"]["atol"] == atol
    assert f"{ref.step_loss[-1]:.6g}" in stdout and str(out) in stdout


def test_simulate_progress_bar_on_stderr_only(capsys, tmp_path):
    rc, stdout, stderr = run_cli(
        capsys, ["simulate", "--width", "5", "--t-max", "2", "--out", tmp_path / "r.npz",
                 "--progress"]
    )
    assert rc == 0
    assert "t = 2/2" in stderr and "\r" in stderr
    assert "\r" not in stdout and "final loss" in stdout


def test_simulate_progress_bar_only_on_a_terminal_by_default(capsys, tmp_path):
    # pytest's captured stderr is not a terminal: no bar unless --progress asks for it
    rc, stdout, stderr = run_cli(
        capsys, ["simulate", "--width", "5", "--t-max", "2", "--out", tmp_path / "r.npz"]
    )
    assert rc == 0 and stderr == "" and "final loss" in stdout
    rc, _, stderr = run_cli(capsys, ["simulate", "--width", "5", "--t-max", "2", "--quiet",
                                     "--progress", "--out", tmp_path / "r.npz"])
    assert rc == 2 and "not allowed with argument" in stderr and "Traceback" not in stderr


def test_an_abbreviated_option_is_refused_with_the_subcommands_help(capsys, tmp_path):
    """argparse's prefix matching read ``--m 100`` (meant as the width) as ``--method 100``
    and refused it with a message about ``--method``; options are now spelled out, and the
    one line names the argument and the subcommand's help."""
    out = tmp_path / "r.npz"
    rc, stdout, stderr = run_cli(capsys, ["simulate", "--m", "100", "--t-max", "2", "--out", out])
    assert rc == 2 and stdout == "" and not out.exists()
    assert stderr.strip() == ("pwflow: error: unrecognized arguments: --m 100 (options are not "
                              "abbreviated; see 'pwflow simulate --help')")
    rc, _, stderr = run_cli(capsys, ["simulate", "--wid", "5", "--t-max", "2", "--out", out])
    assert rc == 2 and "unrecognized arguments: --wid 5" in stderr and "Traceback" not in stderr
    assert run_cli(capsys, ["simulate", "--width", "5", "--t-max", "2", "--quiet",
                            "--out", out])[0] == 0  # spelled out: accepted


def test_simulate_appends_npz_suffix(capsys, tmp_path):
    rc, stdout, _ = run_cli(capsys, ["simulate", *SMALL, "--out", tmp_path / "noext"])
    assert rc == 0
    assert (tmp_path / "noext.npz").exists() and str(tmp_path / "noext.npz") in stdout
    assert not list(tmp_path.glob(".noext*"))  # the temporary file is gone
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "noext.npz").stat().st_mode & 0o777 == 0o666 & ~umask


def test_simulate_store_streams_to_a_folder_that_summary_reads(capsys, tmp_path):
    """``--store DIR`` equals the in-memory run (same snapshots) and other commands read it."""
    store = tmp_path / "run"
    rc, out, _ = run_cli(capsys, ["simulate", *SMALL, "--snapshots", "4", "--store", store])
    assert rc == 0 and str(store) in out
    assert sorted(p.name for p in store.iterdir()) == [
        "checkpoint.npz", "progress.npz", "run.npz", "snapshot_patterns.npy", "snapshots.npy"]
    ref = pwflow.simulate(pwflow.three_points(), pwflow.balanced(20, 2, 1e-3, 0), 5.0,
                          n_snapshots=4)
    got = Trajectory.load(store)
    assert isinstance(got.W, np.memmap) or isinstance(got.W.base, np.memmap)
    np.testing.assert_array_equal(got.t, ref.t)
    np.testing.assert_array_equal(got.W, ref.W)
    np.testing.assert_array_equal(got.events["t"], ref.events["t"])
    rc, out, _ = run_cli(capsys, ["summary", store, "--json"])
    assert rc == 0 and json.loads(out)["events"] == ref.n_events


def test_simulate_frozen_output_and_csv_with_bias(capsys, tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_text("x,y\n-0.5,1.0\n0.25,0.3\n0.75,0.9\n")
    out = tmp_path / "r.npz"
    rc, _, err = run_cli(capsys, ["simulate", *SMALL, "--dataset", csv, "--bias",
                                  "--frozen-output", "--out", out])
    assert rc == 0, err
    traj = Trajectory.load(out)
    np.testing.assert_array_equal(traj.X, [[-0.5, 1.0], [0.25, 1.0], [0.75, 1.0]])
    assert traj.meta["options"]["frozen_output"] is True


def test_simulate_gd_matches_gradient_descent(capsys, tmp_path):
    gd = pytest.importorskip("pwflow.gd")
    out = tmp_path / "gd.npz"
    rc, stdout, err = run_cli(capsys, ["simulate", *SMALL, "--method", "gd", "--lr", "0.01",
                                       "--out", out])
    assert rc == 0, err
    traj = Trajectory.load(out)
    data, init = pwflow.three_points(), pwflow.balanced(20, 2, 1e-3, 0)
    ref = gd.gradient_descent(data, init, lr=0.01, t_max=5.0)
    np.testing.assert_array_equal(traj.t, ref.t)
    np.testing.assert_array_equal(traj.W, ref.W)
    np.testing.assert_array_equal(traj.step_loss, ref.loss)
    assert traj.meta["method"] == "gd" and traj.stats["n_steps"] == 500 and traj.n_events == 0
    # the stored patterns are the sign patterns of the stored iterates
    np.testing.assert_array_equal(traj.patterns[traj.pattern], np.sign(traj.W @ traj.X.T))
    rc, stdout, _ = run_cli(capsys, ["summary", out, "--json"])
    s = json.loads(stdout)
    ind = independent_summary(traj)
    assert s["method"] == "gd" and s["lr"] == 0.01
    assert s["final_loss"] == pytest.approx(ind["final_loss"], rel=1e-12)
    assert s["lemma1_max_relative_drift"] == pytest.approx(ind["drift"], rel=1e-12)


# ---------------------------------------------------------------------------- summary
def test_summary_json_consistent_with_trajectory(capsys, small_run):
    rc, stdout, stderr = run_cli(capsys, ["summary", small_run, "--json"])
    assert rc == 0 and stderr == ""
    s = json.loads(stdout)
    traj = Trajectory.load(small_run)
    ind = independent_summary(traj)
    assert ind["events"] > 0  # the run has events, so the counts below are not vacuous
    assert s["status"] == 0 and s["message"] == str(Status.FINISHED)
    assert s["t_final"] == 5.0 and (s["m"], s["n"], s["d"]) == (20, 3, 2)
    assert s["final_loss"] == pytest.approx(ind["final_loss"], rel=1e-12)
    assert s["events_by_kind"] == ind["events_by_kind"]
    assert s["events"] == ind["events"] == sum(s["events_by_kind"].values())
    assert s["lemma1_max_relative_drift"] == pytest.approx(ind["drift"], rel=1e-12)
    assert s["lemma1_max_relative_drift"] < 1e-12  # Lemma 1
    assert s["max_event_residual"] == ind["residual"]
    assert s["n_steps"] == traj.stats["n_steps"] == traj.step_t.size - 1
    assert s["wall_time"] == traj.stats["wall_time"] > 0
    assert s["dataset"] == "three_points" and s["method"] == "flow"


def test_summary_table_shows_the_numbers(capsys, small_run):
    rc, stdout, _ = run_cli(capsys, ["summary", small_run])
    assert rc == 0
    traj = Trajectory.load(small_run)
    ind = independent_summary(traj)
    lines = dict(line.split(None, 1) if not line.startswith(("final", "max", "Lemma", "wall", "t f"))
                 else (line[:20].strip(), line[20:].strip()) for line in stdout.splitlines())
    assert lines["final loss"] == f"{ind['final_loss']:.6g}"
    assert lines["Lemma 1 max drift"] == f"{ind['drift']:.6g}"
    assert lines["max event residual"] == f"{ind['residual']:.6g}"
    assert lines["steps"] == str(traj.stats["n_steps"])
    for kind, count in ind["events_by_kind"].items():
        assert f"{kind} {count}" in stdout
    assert f"{ind['events']}  (" in stdout and "status" in lines


# ---------------------------------------------------------------------------- bad input
def _bad_files(tmp: Path) -> dict[str, Path]:
    (tmp / "garbage.npz").write_bytes(b"this is not a zip file")
    np.savez(tmp / "dataset.npz", X=np.ones((2, 2)), y=np.ones(2))
    (tmp / "text.csv").write_text("a,b\nfoo,bar\nbaz,qux\n")
    (tmp / "afile").write_text("x")
    (tmp / "adir").mkdir()
    (tmp / "full").mkdir()
    (tmp / "full" / "x").write_text("x")
    return {}


BAD = [
    ([], "subcommand is required"),
    (["frobnicate"], "invalid choice"),
    (["simulate"], "--out"),
    (["simulate", "--dataset", "mnist", "--out", "{tmp}/r.npz"], "unknown dataset 'mnist'"),
    (["simulate", "--scale", "0", "--out", "{tmp}/r.npz"], "--scale: must be > 0"),
    (["simulate", "--scale", "-1e-3", "--out", "{tmp}/r.npz"], "--scale: must be > 0"),
    (["simulate", "--scale", "nan", "--out", "{tmp}/r.npz"], "--scale: expected a finite"),
    (["simulate", "--scale", "big", "--out", "{tmp}/r.npz"], "--scale: expected a number"),
    (["simulate", "--width", "0", "--out", "{tmp}/r.npz"], "--width: must be an integer >= 1"),
    (["simulate", "--width", "2.5", "--out", "{tmp}/r.npz"], "--width: expected an integer"),
    (["simulate", "--width", "2.5e0", "--out", "{tmp}/r.npz"], "--width: expected an integer"),
    (["simulate", "--width", "1e400", "--out", "{tmp}/r.npz"], "--width: expected an integer"),
    (["simulate", "--width", "1e17", "--out", "{tmp}/r.npz"], "--width: expected an integer"),
    (["simulate", "--width", "0e3", "--out", "{tmp}/r.npz"], "--width: must be an integer >= 1"),
    (["simulate", "--gamma", "1.5", "--out", "{tmp}/r.npz"], "--gamma: must be in [0, 1]"),
    (["simulate", "--gamma=-0.1", "--out", "{tmp}/r.npz"], "--gamma: must be in [0, 1]"),
    (["simulate", "--t-max=-1", "--out", "{tmp}/r.npz"], "--t-max: must be >= 0"),
    (["simulate", "--t-max", "inf", "--out", "{tmp}/r.npz"], "--t-max: expected a finite"),
    (["simulate", "--rtol", "0", "--out", "{tmp}/r.npz"], "--rtol: must be > 0"),
    (["simulate", "--rtol", "1e-20", "--out", "{tmp}/r.npz"], "rtol must be >= 1e-14"),
    (["simulate", "--seed=-1", "--out", "{tmp}/r.npz"], "--seed: must be an integer >= 0"),
    (["simulate", "--init", "xavier", "--out", "{tmp}/r.npz"], "invalid choice: 'xavier'"),
    (["simulate", "--loss", "hinge", "--out", "{tmp}/r.npz"], "invalid choice: 'hinge'"),
    (["simulate", "--dataset", "assumption3", "--eta", "2", "--out", "{tmp}/r.npz"],
     "--eta: must be in (0, 1)"),
    (["simulate", "--eta", "0.1", "--out", "{tmp}/r.npz"], "--eta applies only"),
    (["simulate", "--n-points", "5", "--out", "{tmp}/r.npz"], "--n-points applies only"),
    (["simulate", "--bias", "--out", "{tmp}/r.npz"], "--bias applies only"),
    (["simulate", "--dataset", "{tmp}/missing.csv", "--out", "{tmp}/r.npz"], "does not exist"),
    (["simulate", "--dataset", "{tmp}/text.csv", "--out", "{tmp}/r.npz"], "non-numeric"),
    (["simulate", "--dataset", "{tmp}/afile", "--out", "{tmp}/r.npz"], "unsupported dataset"),
    (["simulate", "--method", "gd", "--out", "{tmp}/r.npz"], "--method gd needs --lr"),
    (["simulate", "--lr", "0.1", "--out", "{tmp}/r.npz"], "--lr applies only"),
    (["simulate", "--method", "gd", "--lr", "0.1", "--rtol", "1e-6", "--out", "{tmp}/r.npz"],
     "--rtol applies only"),
    (["simulate", "--out", "{tmp}/afile/r.npz"], "cannot create the folder"),
    (["simulate", "--out", "{tmp}/adir"], "is a directory"),
    (["summary", "{tmp}/missing.npz"], "does not exist"),
    (["summary", "{tmp}/garbage.npz"], "not a pwflow trajectory file"),
    (["summary", "{tmp}/dataset.npz"], "no metadata record"),
    (["summary", "{tmp}/adir"], "is a directory but not a pwflow store"),
    (["simulate", "--store", "{tmp}/afile"], "is a file"),
    (["simulate", "--store", "{tmp}/full"], "is not empty"),
    (["simulate", "--store", "{tmp}/s", "--out", "{tmp}/r.npz"], "not allowed with"),
    (["simulate", "--method", "gd", "--lr", "0.1", "--store", "{tmp}/s"], "--store applies only"),
    (["simulate", "--snapshots", "1", "--out", "{tmp}/r.npz"], "--snapshots: must be >= 2"),
    (["summary"], "required: RUN"),
    (["plot", "{tmp}/missing.npz", "--times", "1,-2", "--out", "{tmp}/p.png"],
     "--times: must be >= 0"),
    (["plot", "{tmp}/missing.npz", "--kind", "phase", "--out", "{tmp}/p.png"], "invalid choice"),
    (["animate", "{tmp}/missing.npz", "--out", "{tmp}/a.png"], "must end in .gif or .mp4"),
    (["animate", "{tmp}/missing.npz", "--frames", "0", "--out", "{tmp}/a.gif"],
     "--frames: must be an integer >= 1"),
    (["reproduce", "figure4", "--out", "{tmp}/figs"], "invalid choice: 'figure4'"),
]


@pytest.mark.parametrize("argv, fragment", BAD, ids=[" ".join(a[:4]) or "empty" for a, _ in BAD])
def test_bad_invocations_exit_2_with_one_line(capsys, tmp_path, argv, fragment):
    _bad_files(tmp_path)
    rc, stdout, stderr = run_cli(capsys, [a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert rc == 2
    assert "Traceback" not in stderr
    assert stderr.startswith("pwflow: error: ") and stderr.count("\n") == 1, stderr
    assert fragment in stderr
    assert stdout == ""
    assert not (tmp_path / "r.npz").exists()


def test_simulate_accepts_a_repeated_point(capsys, tmp_path):
    """A CSV with one input twice (two labels) is data, not an error: the run ends with
    status 0 and keeps both rows."""
    (tmp_path / "rep.csv").write_text("-0.75,1,1.1\n-0.5,1,0.1\n0.125,1,0.8\n-0.5,1,0.3\n")
    rc, _, stderr = run_cli(capsys, ["simulate", "--dataset", tmp_path / "rep.csv", "--width", 20,
                                     "--t-max", 50, "--out", tmp_path / "r.npz"])
    assert rc == 0, stderr
    traj = Trajectory.load(tmp_path / "r.npz")
    assert traj.status == 0 and traj.X.shape == (4, 2)
    assert np.array_equal(traj.X[1], traj.X[3]) and traj.y[1] != traj.y[3]


@pytest.mark.parametrize("text, value", [("2e5", 200_000), ("1E3", 1000), ("2.0e1", 20),
                                         ("7", 7), (" 12 ", 12), ("9007199254740992", 2**53)])
def test_a_count_may_be_written_as_the_paper_writes_it(text, value):
    """``--width 2e5`` is the integer 200 000 (the paper's notation; the sweep spec's TOML
    accepts it too); a non-integral value is refused (``BAD``)."""
    assert cli.positive_int(text) == value and isinstance(cli.positive_int(text), int)
    assert cli.seed_int(text) == value


def test_help_and_version(capsys):
    rc, out, _ = run_cli(capsys, ["--help"])
    assert rc == 0 and all(name in out for name in cli.COMMANDS)
    rc, out, _ = run_cli(capsys, ["simulate", "--help"])
    assert rc == 0 and "--t-max" in out and "--frozen-output" in out
    rc, out, _ = run_cli(capsys, ["--version"])
    assert rc == 0 and pwflow.__version__ in out


def test_public_names_load_on_first_use():
    """``pwflow``'s exports (PEP 562): each name in ``__all__`` and ``dir(pwflow)`` is the
    object its module defines; an unknown name is an ``AttributeError``."""
    import importlib

    assert set(pwflow.__all__) <= set(dir(pwflow))
    for name in pwflow.__all__:
        module = importlib.import_module(f"pwflow.{pwflow._LAZY[name]}")
        assert getattr(pwflow, name) is getattr(module, name)
    with pytest.raises(AttributeError, match="no_such_name"):
        pwflow.no_such_name  # noqa: B018


def _modules_loaded_by(argv: list[str], cwd: Path) -> set[str]:
    """Top-level and pwflow modules imported by ``python -m pwflow ARGV`` (a subprocess)."""
    probe = ("import atexit, runpy, sys\n"
             "atexit.register(lambda: print('MODULES', ' '.join(sorted(sys.modules))))\n"
             f"sys.argv = ['pwflow', *{argv!r}]\n"
             "runpy.run_module('pwflow', run_name='__main__', alter_sys=True)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(pwflow.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=cwd, env=env, timeout=300)
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("MODULES ")]
    assert line, res.stdout + res.stderr
    return set(line[-1].split()[1:])


@pytest.mark.parametrize("argv", [["--help"], ["simulate", *SMALL, "--out", "r.npz"]])
def test_command_line_start_up_stays_light(argv, tmp_path):
    # start-up is most of a short run (issue 13): the heavy optional stacks load only in
    # the subcommands that need them
    loaded = _modules_loaded_by(argv, tmp_path)
    heavy = {"sympy", "matplotlib", "dask", "distributed", "pyarrow", "xarray", "flint",
             "pwflow.sweeps.driver", "pwflow.sweeps.plots", "pwflow.sweeps.run",
             "pwflow.sweeps.spec", "pwflow.figures"}
    assert not heavy & loaded, sorted(heavy & loaded)
    if argv == ["--help"]:  # nor the integrator (pwflow's names load on first use)
        assert not {"scipy", "pwflow.integrator", "pwflow.stepper"} & loaded


# ---------------------------------------------------------------------------- interrupts, stops
def _raise_on_call(monkeypatch, n: int, exc: BaseException) -> None:
    """Make the ``n``-th call of ``HybridFlow.step`` raise ``exc`` (as Ctrl-C would)."""
    real = HybridFlow.step
    calls = {"n": 0}

    def step(self, *args):
        calls["n"] += 1
        if calls["n"] == n:
            raise exc
        return real(self, *args)

    monkeypatch.setattr(HybridFlow, "step", step)


def test_interrupt_saves_partial_run_and_exits_130(capsys, tmp_path, monkeypatch):
    # (the full run takes 30 steps since snapshots no longer restart the solver)
    _raise_on_call(monkeypatch, 20, KeyboardInterrupt())
    out = tmp_path / "partial.npz"
    rc, stdout, stderr = run_cli(capsys, ["simulate", *SMALL, "--out", out])
    assert rc == 130
    assert "interrupted" in stderr and str(out) in stderr and "Traceback" not in stderr
    part = Trajectory.load(out)
    assert part.status == int(Status.INTERRUPTED) == -3
    assert 0 < part.t[-1] < 5.0 and part.stats["n_steps"] == 19
    monkeypatch.undo()
    # what was saved is the beginning of the full run (the integrator is deterministic)
    full = pwflow.simulate(pwflow.three_points(), pwflow.balanced(20, 2, 1e-3, 0), 5.0)
    k = part.step_t.size
    np.testing.assert_array_equal(part.step_t, full.step_t[:k])
    np.testing.assert_array_equal(part.step_loss, full.step_loss[:k])
    rc, stdout, _ = run_cli(capsys, ["summary", out, "--json"])
    assert rc == 0 and json.loads(stdout)["status"] == -3


@pytest.mark.skipif(os.name != "posix", reason="SIGINT delivery")
def test_second_ctrl_c_while_saving_does_not_lose_the_run(capsys, tmp_path, monkeypatch):
    # CI may start us with SIGINT ignored (background job): install Python's handler for the test
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _second_ctrl_c(capsys, tmp_path, monkeypatch)
    finally:
        signal.signal(signal.SIGINT, previous)


def _second_ctrl_c(capsys, tmp_path, monkeypatch):
    _raise_on_call(monkeypatch, 20, KeyboardInterrupt())
    real_save = Trajectory.save

    def save_with_sigint(self, path):
        os.kill(os.getpid(), signal.SIGINT)  # delivered while writing: must be ignored
        return real_save(self, path)

    monkeypatch.setattr(Trajectory, "save", save_with_sigint)
    out = tmp_path / "partial.npz"
    rc, _, stderr = run_cli(capsys, ["simulate", *SMALL, "--out", out])
    assert rc == 130 and "Traceback" not in stderr
    assert Trajectory.load(out).status == -3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_interrupt_before_the_run_exits_130_without_file(capsys, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("pwflow.init.make_init", boom)
    rc, stdout, stderr = run_cli(capsys, ["simulate", *SMALL, "--out", tmp_path / "r.npz"])
    assert rc == 130 and "pwflow: interrupted" in stderr and "Traceback" not in stderr
    assert not (tmp_path / "r.npz").exists()


@pytest.mark.parametrize(
    "exc, status, fragment",
    [(ZenoError("neuron 3 chattering"), Status.ZENO, "neuron 3 chattering"),
     (RuntimeError("DOP853 failed"), Status.FAILED, "DOP853 failed")],
)
def test_zeno_or_failure_saves_and_exits_1(capsys, tmp_path, monkeypatch, exc, status, fragment):
    _raise_on_call(monkeypatch, 10, exc)
    out = tmp_path / "stopped.npz"
    rc, stdout, stderr = run_cli(capsys, ["simulate", *SMALL, "--out", out])
    assert rc == 1 and fragment in stderr and "Traceback" not in stderr
    traj = Trajectory.load(out)
    assert traj.status == int(status) and fragment in traj.message
    assert f"{int(status)} (" in stdout


# ---------------------------------------------------------------------------- internal errors
def test_unexpected_error_has_no_traceback_unless_debug(capsys, monkeypatch, small_run):
    def broken(args):
        """Broken."""
        raise TypeError("boom")

    add, _ = cli.COMMANDS["summary"]
    monkeypatch.setitem(cli.COMMANDS, "summary", (add, broken))
    rc, _, err = run_cli(capsys, ["summary", small_run])
    assert rc == 1 and "Traceback" not in err
    assert "internal error: TypeError: boom" in err and "--debug" in err
    for argv in (["--debug", "summary", small_run], ["summary", small_run, "--debug"]):
        rc, _, err = run_cli(capsys, argv)
        assert rc == 1 and "Traceback" in err and "TypeError: boom" in err


@pytest.mark.parametrize(
    "exc, stderr_expected",
    [(BrokenPipeError(32, "Broken pipe"), ""),  # `pwflow summary RUN | head`: silent
     (MemoryError(), "pwflow: error: out of memory (try a smaller --width or --t-max)\n")],
)
def test_broken_pipe_and_memory_error(capsys, monkeypatch, small_run, exc, stderr_expected):
    def broken(args):
        """Broken."""
        raise exc

    add, _ = cli.COMMANDS["summary"]
    monkeypatch.setitem(cli.COMMANDS, "summary", (add, broken))
    rc, _, err = run_cli(capsys, ["summary", small_run])
    assert rc == 1 and err == stderr_expected


def test_debug_shows_traceback_of_bad_input(capsys, tmp_path):
    rc, _, err = run_cli(capsys, ["--debug", "summary", tmp_path / "missing.npz"])
    assert rc == 2 and "Traceback" in err and err.rstrip().endswith("missing.npz' does not exist")


# ---------------------------------------------------------------------------- registry, figures
def test_registry_adds_a_subcommand(capsys, monkeypatch):
    monkeypatch.setattr(cli, "COMMANDS", dict(cli.COMMANDS))
    seen = {}

    def add(p):
        p.add_argument("--n", type=cli.positive_int, required=True)

    def run(args):
        """Echo a number."""
        seen["n"] = args.n
        return 7

    cli.register("echo", add, run)
    rc, out, _ = run_cli(capsys, ["--help"])
    assert "echo" in out and "Echo a number." in out
    assert run_cli(capsys, ["echo", "--n", "3"])[0] == 7 and seen == {"n": 3}
    assert run_cli(capsys, ["echo", "--n", "0"])[0] == 2
    with pytest.raises(ValueError, match="subcommand name"):
        cli.register("bad name", add, run)


@pytest.fixture
def fake_figures(monkeypatch):
    """A stand-in for ``pwflow.figures`` that records its calls and writes small files."""
    calls = []
    mod = types.ModuleType("pwflow.figures")

    def plot_run(traj, kind, times, out):
        calls.append(("plot_run", traj, kind, times, out))
        out.write_text("png")
        return out

    def animate_run(traj, kind, out, frames=60, fps=10):
        calls.append(("animate_run", traj, kind, out, frames, fps))
        out.write_text("gif")
        return out

    def reproduce(figure, out_dir, width, scale, t_max, seed, progress):
        calls.append(("reproduce", figure, out_dir, width, scale, t_max, seed, progress))
        if figure == "figure3":
            raise ValueError("figure3 needs t_max > 0")
        return [out_dir / f"{figure}.png"]

    mod.plot_run, mod.animate_run, mod.reproduce = plot_run, animate_run, reproduce
    monkeypatch.setitem(sys.modules, "pwflow.figures", mod)
    return calls


def test_plot_animate_reproduce_call_figures(capsys, tmp_path, small_run, fake_figures):
    rc, out, err = run_cli(capsys, ["plot", small_run, "--kind", "neurons", "--times", "0,1.5,5",
                                    "--out", tmp_path / "a" / "p.png"])
    assert rc == 0, err
    name, traj, kind, times, path = fake_figures[-1]
    assert (name, kind, times, path) == ("plot_run", "neurons", [0.0, 1.5, 5.0],
                                         tmp_path / "a" / "p.png")
    assert isinstance(traj, Trajectory) and traj.t[-1] == 5.0 and out.strip() == str(path)

    rc, _, err = run_cli(capsys, ["plot", small_run, "--times", "6", "--out", tmp_path / "p.png"])
    assert rc == 2 and "outside the run's interval [0, 5]" in err

    rc, out, _ = run_cli(capsys, ["animate", small_run, "--kind", "function", "--frames", "7",
                                  "--fps", "3", "--out", tmp_path / "a.gif"])
    assert rc == 0
    assert fake_figures[-1][2:] == ("function", tmp_path / "a.gif", 7, 3)

    rc, out, _ = run_cli(capsys, ["reproduce", "figure1", "--out", tmp_path / "figs", "--width",
                                  "50", "--scale", "1e-2", "--t-max", "10", "--seed", "4",
                                  "--quiet"])
    assert rc == 0 and (tmp_path / "figs").is_dir()
    assert fake_figures[-1] == ("reproduce", "figure1", tmp_path / "figs", 50, 0.01, 10.0, 4,
                                False)
    assert out.strip() == str(tmp_path / "figs" / "figure1.png")
    rc, out, _ = run_cli(capsys, ["reproduce", "figure2", "--out", tmp_path / "figs"])
    assert rc == 0 and fake_figures[-1][3:] == (None, None, None, 0, None)  # bar on a terminal

    rc, _, err = run_cli(capsys, ["reproduce", "figure3", "--out", tmp_path / "figs"])
    assert rc == 2 and "pwflow: error: figure3 needs t_max > 0" in err and "Traceback" not in err


def test_missing_figures_module_is_a_clear_error(capsys, tmp_path, small_run, monkeypatch):
    monkeypatch.setitem(sys.modules, "pwflow.figures", None)  # import fails
    for argv in (["plot", small_run, "--out", tmp_path / "p.png"],
                 ["animate", small_run, "--out", tmp_path / "a.gif"],
                 ["reproduce", "figure1", "--out", tmp_path / "f"]):
        rc, _, err = run_cli(capsys, argv)
        assert rc == 1 and "needs pwflow.figures" in err and "Traceback" not in err


# ---------------------------------------------------------------------------- subprocess
def _python_m(*args, cwd: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pwflow", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120, **kw)


def test_python_m_pwflow_end_to_end(tmp_path):
    p = _python_m("simulate", "--width", "20", "--t-max", "5", "--out", "runs/r.npz",
                  "--dataset", "stewart", "--n-points", "6", "--progress", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "t = 5/5" in p.stderr and "Traceback" not in p.stderr
    traj = Trajectory.load(tmp_path / "runs" / "r.npz")
    p = _python_m("summary", "runs/r.npz", "--json", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    ind = independent_summary(traj)
    assert s["final_loss"] == pytest.approx(ind["final_loss"], rel=1e-12)
    assert s["events_by_kind"] == ind["events_by_kind"] and s["n"] == 6


@pytest.mark.slow
def test_python_m_pwflow_bad_input_has_no_traceback(tmp_path):
    p = _python_m("simulate", "--width", "0", "--out", "x.npz", cwd=tmp_path)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr == "pwflow: error: argument --width: must be an integer >= 1, got '0' " \
                       "(see 'pwflow simulate --help')\n"


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="SIGINT delivery")
def test_real_ctrl_c_saves_partial_run(tmp_path):
    """A real SIGINT during a long run: exit 130 and a loadable partial trajectory."""
    proc = subprocess.Popen(
        # Stewart's data (~20 s): the default three points finish in 0.5 s, before the signal
        [sys.executable, "-m", "pwflow", "simulate", "--dataset", "stewart", "--init",
         "unbalanced", "--width", "2000", "--t-max", "4000", "--out", "r.npz", "--progress"],
        cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        # a background CI job may ignore SIGINT; the child must see the default disposition
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    buf = b""
    while b"steps" not in buf and time.monotonic() < deadline:  # the progress bar has started
        buf += os.read(proc.stderr.fileno(), 4096)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    assert b"Traceback" not in err and b"interrupted" in err
    traj = Trajectory.load(tmp_path / "r.npz")
    assert traj.status == -3 and 0 < traj.t[-1] < 4000


def test_simulate_names_the_points_it_snapped(capsys, tmp_path):
    """Two points 4e-12 apart in angle (below ``SPAN_RTOL``): the summary says which point
    was made exactly parallel and by how much; a run without such points has no such row."""
    csv = tmp_path / "near.csv"
    csv.write_text("1.0,2.0,0.3\n1.00000000001,2.0,1.0\n-0.5,1.0,-0.2\n0.3,-1.0,0.5\n")
    rc, out, _ = run_cli(capsys, ["simulate", "--dataset", csv, "--bias", "--width", "10",
                                  "--t-max", "2", "--out", tmp_path / "near.npz"])
    assert rc == 0
    row = next(line for line in out.splitlines() if line.startswith("snapped points"))
    assert "k = [1]" in row and "3.72678e-12" in row
    rc, out, _ = run_cli(capsys, ["simulate", *SMALL[:-1], "--out", tmp_path / "three.npz"])
    assert rc == 0 and "snapped points" not in out
