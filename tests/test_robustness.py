"""Issue 14: nothing lost, nothing hung.

Overflow and lack of progress stop a run with a status; SIGTERM/SIGHUP act like Ctrl-C;
stores survive ``kill -9``; runs resume exactly; outputs are never silently overwritten.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import pwflow
from pwflow import cli
from pwflow.integrator import Status, simulate
from pwflow.trajectory import Trajectory

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--width", "20", "--t-max", "5", "--quiet"]
TINY = ["--width", "4", "--t-max", "2", "--quiet"]


def run_cli(capsys, argv):
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(err: str) -> bool:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    return len(lines) == 1 and "Traceback" not in err


def stewart_run(**kw):
    return simulate(pwflow.stewart(seed=0), pwflow.unbalanced(20, 2, 1e-3, 0), 60.0, **kw)


@pytest.fixture(scope="module")
def stewart_ref() -> Trajectory:
    """The uninterrupted run that the interrupted ones are compared with."""
    return stewart_run()


def assert_same_run(a: Trajectory, b: Trajectory, tol: float = 1e-10) -> None:
    for key in a.events:
        np.testing.assert_array_equal(a.events[key], b.events[key], err_msg=key)
    np.testing.assert_array_equal(a.t, b.t)
    scale = max(np.max(np.abs(a.W)), np.max(np.abs(a.a)))
    assert np.max(np.abs(np.asarray(a.W) - np.asarray(b.W))) <= tol * scale
    assert np.max(np.abs(np.asarray(a.a) - np.asarray(b.a))) <= tol * scale
    np.testing.assert_array_equal(a.pattern, b.pattern)
    # the solver of each accepted step (the dense state retraces with it), where both have it
    if a.step_implicit is not None and b.step_implicit is not None:
        np.testing.assert_array_equal(a.step_t, b.step_t)
        np.testing.assert_array_equal(a.step_implicit, b.step_implicit)


# ---------------------------------------------------------------------------- overflow
def test_overflow_in_a_step_stops_with_non_finite_status_quickly():
    """Scale 1e60: the field overflows in the first steps; the run stops (no hang), keeps its
    last finite state and names the quantity."""
    t0 = time.perf_counter()
    tr = simulate(pwflow.three_points(), pwflow.balanced(20, 2, 1e60, 0), 5.0)
    assert time.perf_counter() - t0 < 5
    # either the field overflows (NON_FINITE, naming the quantity) or the steps shrink to
    # rounding first (the step guard, ZENO, naming the time): both stop at once, never hang
    assert tr.status in (Status.NON_FINITE, Status.ZENO), tr.message
    if tr.status == Status.NON_FINITE:
        assert "vector field" in tr.message and "scale" in tr.message
    else:
        assert "consecutive steps" in tr.message
    assert np.all(np.isfinite(tr.W)) and np.all(np.isfinite(tr.step_loss))


def test_overflowing_initial_network_is_bad_input(capsys, tmp_path):
    with pytest.raises(ValueError, match="initial network"):
        simulate(pwflow.three_points(), pwflow.balanced(20, 2, 1e160, 0), 5.0)
    t0 = time.perf_counter()
    rc, _, err = run_cli(capsys, ["simulate", "--width", "20", "--t-max", "5", "--scale",
                                  "1e160", "--out", tmp_path / "x.npz", "--quiet"])
    assert time.perf_counter() - t0 < 5
    assert rc == 2 and one_line_error(err) and "overflow" in err
    assert not (tmp_path / "x.npz").exists()


def test_huge_data_with_bias_stops_with_status(capsys, tmp_path):
    csv = tmp_path / "huge.csv"
    csv.write_text("1e300,1\n-1e300,0\n0.5,1\n")
    out = tmp_path / "h.npz"
    t0 = time.perf_counter()
    rc, _, err = run_cli(capsys, ["simulate", "--dataset", csv, "--bias", "--width", "20",
                                  "--t-max", "5", "--out", out, "--quiet"])
    assert time.perf_counter() - t0 < 5
    assert rc in (1, 2) and "Traceback" not in err and ("overflow" in err or "finite" in err)
    if rc == 1:
        tr = Trajectory.load(out)
        assert tr.status == Status.NON_FINITE and np.all(np.isfinite(tr.W))


def test_no_progress_budget_stops_the_run():
    tr = simulate(pwflow.three_points(), pwflow.balanced(20, 2, 1e-3, 0), 1e12, stall_steps=5)
    assert tr.status == Status.NO_PROGRESS and "no progress" in tr.message
    assert tr.stats["n_steps"] == 5
    with pytest.raises(ValueError, match="stall_steps"):
        simulate(pwflow.three_points(), pwflow.balanced(2, 2, 1e-3, 0), 1.0, stall_steps=0)


def test_gd_with_a_step_longer_than_t_max_is_refused(capsys, tmp_path):
    rc, _, err = run_cli(capsys, ["simulate", "--method", "gd", "--lr", "10", "--t-max", "5",
                                  "--width", "3", "--out", tmp_path / "g.npz", "--quiet"])
    assert rc == 2 and one_line_error(err) and "--lr" in err


# ---------------------------------------------------------------------------- signals + resume
@pytest.fixture
def default_signals():
    """SIGTERM and SIGHUP at their default disposition (``nohup`` would ignore SIGHUP, and
    :func:`pwflow.signals.terminations_as_interrupts` respects that)."""
    old = {s: signal.signal(s, signal.SIG_DFL) for s in (signal.SIGTERM, signal.SIGHUP)}
    yield
    for s, h in old.items():
        signal.signal(s, h)


@pytest.mark.parametrize("signum", [None, signal.SIGTERM, signal.SIGHUP])
def test_interrupted_then_resumed_equals_uninterrupted(signum, stewart_ref, default_signals):
    """Ctrl-C, SIGTERM or SIGHUP (delivered to this process) at a random step, resumed."""
    ref = stewart_ref
    assert ref.status == 0
    stop = int(np.random.default_rng(14 + (signum or 0)).integers(20, ref.stats["n_steps"] - 20))

    def cb(flow):
        if flow.n_steps == stop:
            if signum is None:
                raise KeyboardInterrupt
            signal.raise_signal(signum)

    part = stewart_run(callback=cb)
    assert part.status == Status.INTERRUPTED
    name = "Ctrl-C" if signum is None else signal.Signals(signum).name
    assert name in part.message
    assert part.meta["signal"] == (signum or signal.SIGINT)
    assert part.t[-1] < ref.t[-1]
    assert_same_run(ref, part.resume())


@pytest.fixture
def python_sigint():
    """Python's own Ctrl-C handler, whatever this process inherited (a job started in the
    background by a non-interactive shell ignores SIGINT)."""
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, inherited)


def _interrupted_with_a_second_signal(monkeypatch, second: int):
    """Three points, m = 20: Ctrl-C at step 10, and ``second`` delivered while the
    interrupted run builds its result (the wrap-up after the loop)."""
    import pwflow.trajectory as trajectory

    real = trajectory.Trajectory

    def built_with_a_signal(*args, **kw):
        signal.raise_signal(second)  # a second Ctrl-C, or timeout forwarding its SIGTERM
        return real(*args, **kw)

    monkeypatch.setattr(trajectory, "Trajectory", built_with_a_signal)

    def cb(flow):
        if flow.n_steps == 10:
            signal.raise_signal(signal.SIGINT)

    return simulate(pwflow.three_points(), pwflow.balanced(20, 2, 1e-3, 0), 5.0, callback=cb)


@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM])
def test_a_second_signal_while_the_interrupted_run_is_saved_is_held(
        second, monkeypatch, python_sigint, default_signals):
    """Session 43: a second signal while the interrupted run was being wrapped up (its last
    state materialised, its snapshot taken: up to a second at m = 2·10⁵) raised there and
    lost the partial run (``timeout`` forwards the SIGINT it gets to a child that got it too;
    an impatient user presses Ctrl-C twice).  It is now held and dropped
    (:class:`pwflow.signals.InterruptOnce`), the handlers restored."""
    with pwflow.signals.terminations_as_interrupts():
        part = _interrupted_with_a_second_signal(monkeypatch, second)
    assert part.status == Status.INTERRUPTED and part.stats["n_steps"] == 10
    assert part.meta["signal"] == signal.SIGINT  # the first one's
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_signal_held_while_a_finished_run_is_wrapped_up_acts_at_the_end(monkeypatch,
                                                                             python_sigint):
    """A signal in the wrap-up of a run that was not interrupted is not dropped: it acts when
    :func:`simulate` returns, as it did before the hold (a scheduler's SIGTERM still stops the
    process); the handlers are restored first."""
    import pwflow.trajectory as trajectory

    real = trajectory.Trajectory

    def built_with_a_signal(*args, **kw):
        signal.raise_signal(signal.SIGINT)
        return real(*args, **kw)

    monkeypatch.setattr(trajectory, "Trajectory", built_with_a_signal)
    with pytest.raises(KeyboardInterrupt):
        simulate(pwflow.three_points(), pwflow.balanced(20, 2, 1e-3, 0), 5.0)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_signal_while_saving_lost_the_run_without_the_hold(monkeypatch, python_sigint):
    """The test above fails without the mechanism: with :class:`InterruptOnce` a plain
    context, the second Ctrl-C escapes from :func:`simulate` and nothing is returned."""
    import contextlib

    import pwflow.integrator as integ

    class Plain(contextlib.nullcontext):
        def hold(self):
            pass

    monkeypatch.setattr(integ, "InterruptOnce", lambda: Plain(Plain()))
    with pytest.raises(KeyboardInterrupt):
        _interrupted_with_a_second_signal(monkeypatch, signal.SIGINT)


def test_resume_to_a_later_t_max_continues_the_run():
    data, init = pwflow.three_points(), pwflow.balanced(20, 2, 1e-3, 0)
    short = simulate(data, init, 20.0)
    longer = short.resume(40.0)
    assert longer.status == 0 and longer.t[-1] == 40.0 and longer.meta["t_max"] == 40.0
    k = short.t.size
    np.testing.assert_array_equal(longer.t[:k], short.t)
    np.testing.assert_array_equal(longer.W[:k], short.W)
    ref = simulate(data, init, 40.0)
    np.testing.assert_allclose(longer.W[-1], ref.W[-1], rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match="t_max"):
        longer.resume(1.0)


def test_a_resumed_run_keeps_the_solver_of_each_step():
    """``Trajectory.step_implicit`` (session 60) continues across a resume: the resumed
    run's steps up to the mark are the original's, with their solvers; a trajectory written
    before it was recorded (``None``) resumes without it, not with its steps read as
    DOP853's."""
    import dataclasses

    data, init = pwflow.three_points(), pwflow.balanced(20, 2, 1e-3, 0)
    short = simulate(data, init, 20.0)
    assert short.step_implicit.shape == short.step_t.shape and short.step_implicit.any()
    k = short.meta["resume"]["n_steps_recorded"]
    longer = short.resume(40.0)
    assert longer.step_implicit.shape == longer.step_t.shape
    np.testing.assert_array_equal(longer.step_implicit[:k], short.step_implicit[:k])
    older = dataclasses.replace(short, step_implicit=None).resume(40.0)
    assert older.status == 0 and older.step_implicit is None
    np.testing.assert_array_equal(older.W[-1], longer.W[-1])


def test_killed_store_loads_partial_and_resumes_exactly(tmp_path, stewart_ref):
    """kill -9 leaves the files as they are on disk: copy the store mid-run (after a checkpoint)
    and treat the copy as the killed run."""
    ref = stewart_ref
    store, killed = tmp_path / "run", tmp_path / "killed"
    copied = []

    def cb(flow):
        if not copied and (store / "checkpoint.npz").exists() and flow.n_steps > 60:
            shutil.copytree(store, killed)
            copied.append(flow.t)

    full = stewart_run(store=str(store), checkpoint_every=0.2, callback=cb)
    assert copied and full.status == 0
    assert not (killed / "run.npz").exists()
    part = Trajectory.load(killed)
    assert part.status == Status.PARTIAL and "partial" in part.message
    assert part.t[-1] <= copied[0]
    np.testing.assert_array_equal(part.W, ref.W[: part.t.size])
    resumed = part.resume(store=killed)
    assert resumed.status == 0
    assert_same_run(ref, Trajectory.load(killed))
    assert_same_run(ref, Trajectory.load(store))


def test_resume_cli_on_store_and_file(capsys, tmp_path):
    out = tmp_path / "r.npz"
    rc, _, _ = run_cli(capsys, ["simulate", *SMALL, "--out", out])
    assert rc == 0
    rc, outp, err = run_cli(capsys, ["resume", out, "--t-max", "8", "--quiet"])
    assert rc == 0, err
    assert Trajectory.load(out).t[-1] == 8.0
    store = tmp_path / "s"
    rc, _, _ = run_cli(capsys, ["simulate", *SMALL, "--store", store])
    rc, _, err = run_cli(capsys, ["resume", store, "--t-max", "8", "--quiet"])
    assert rc == 0, err
    tr = Trajectory.load(store)
    assert tr.t[-1] == 8.0 and tr.status == 0
    rc, _, err = run_cli(capsys, ["resume", tmp_path / "nope.npz"])
    assert rc == 2 and one_line_error(err)


def _spawn(args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    def default_signals():  # a background CI job may ignore them; the child must not
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_DFL)

    return subprocess.Popen([sys.executable, "-m", "pwflow", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_signals)


def _wait_for(path: Path, proc, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, f"{path} did not appear"
        time.sleep(0.02)


LONG = ["simulate", "--dataset", "stewart", "--width", "200", "--init", "unbalanced",
        "--t-max", "4000", "--quiet"]
# a run of ~40 s (~4 s at width 200): the signal must find it running even when the test's
# own process is starved on a loaded machine (a CI run saw the width-200 run finish first)
SIGNALLED = [*LONG[:4], "2000", *LONG[5:]]


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_termination_signal_saves_the_run_and_exits_128_plus_signal(tmp_path, sig, code):
    # a run that ended before the signal was sent tests nothing (session 52: a suite run with
    # four jobs on the 2 cores saw the run exit 0 with nothing on stderr, the signal not
    # sent: Popen.send_signal does nothing once the child has exited): it is run again
    for attempt in range(3):
        store = tmp_path / f"run{attempt}"
        proc = _spawn([*SIGNALLED, "--store", str(store)], tmp_path)
        _wait_for(store / "progress.npz", proc)
        if proc.poll() is None:
            break
        proc.communicate(timeout=60)
    else:
        pytest.fail("the run ended before the signal could be sent, three times")
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert signal.Signals(sig).name in err and "Traceback" not in err
    tr = Trajectory.load(store)
    assert tr.status == Status.INTERRUPTED and signal.Signals(sig).name in tr.message


def _signal_after_first_store_write(monkeypatch, sig):
    """The store's snapshot writer sends ``sig`` to this process right after its first
    write returns: the handler runs at the next bytecode, before the run has counted it."""
    from pwflow.integrator import _SnapshotSink
    write = _SnapshotSink.write
    sent = []

    def write_then_signal(self, *args, **kwargs):
        write(self, *args, **kwargs)
        if not sent:
            sent.append(sig)
            os.kill(os.getpid(), sig)
    monkeypatch.setattr(_SnapshotSink, "write", write_then_signal)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_just_after_the_first_snapshot_is_written_leaves_a_status(
        monkeypatch, tmp_path, sig, default_signals):
    """Session 58 (a full-suite run on a loaded machine): the test above's signal, sent as
    soon as ``progress.npz`` appeared, landed between the store's write of the first
    snapshot and the run's count of it; the run found no snapshot to keep and re-raised,
    and the store was left PARTIAL (status −6, no message).  The write and the count are
    now one block for signals (:func:`pwflow.signals.deferred`): the run is INTERRUPTED,
    saved, with the signal named."""
    from pwflow.signals import terminations_as_interrupts
    _signal_after_first_store_write(monkeypatch, sig)
    with terminations_as_interrupts():
        tr = simulate(pwflow.stewart(seed=0, n=40), pwflow.unbalanced(50, 2, 1e-3, seed=0),
                      50.0, store=tmp_path / "run")
    assert tr.status == Status.INTERRUPTED, tr.message
    assert signal.Signals(sig).name in tr.message
    back = Trajectory.load(tmp_path / "run")
    assert back.status == Status.INTERRUPTED and signal.Signals(sig).name in back.message


def test_a_signal_between_the_write_and_the_count_lost_the_status(monkeypatch, tmp_path,
                                                                  default_signals):
    """The mechanism off: with :func:`pwflow.integrator.deferred` doing nothing, the same
    signal leaves the store without a status (PARTIAL) and the call raises."""
    import contextlib

    import pwflow.integrator as integ
    from pwflow.signals import Terminated, terminations_as_interrupts
    monkeypatch.setattr(integ, "deferred", contextlib.nullcontext)
    _signal_after_first_store_write(monkeypatch, signal.SIGTERM)
    with terminations_as_interrupts(), pytest.raises(Terminated):
        simulate(pwflow.stewart(seed=0, n=40), pwflow.unbalanced(50, 2, 1e-3, seed=0), 50.0,
                 store=tmp_path / "run")
    assert Trajectory.load(tmp_path / "run").status == Status.PARTIAL


@pytest.mark.slow
def test_kill_9_store_is_partial_then_resumes(capsys, tmp_path):
    store = tmp_path / "run"
    proc = _spawn([*LONG, "--t-max", "60", "--store", str(store), "--checkpoint-every",
                   "0.05"], tmp_path)
    _wait_for(store / "checkpoint.npz", proc)
    proc.kill()
    proc.communicate(timeout=60)
    if (store / "run.npz").exists():
        pytest.skip("the run finished before it was killed")
    rc, out, err = run_cli(capsys, ["summary", store])
    assert rc == 0 and "partial" in out
    rc, _, err = run_cli(capsys, ["resume", store, "--quiet"])
    assert rc == 0, err
    ref = simulate(pwflow.stewart(seed=0), pwflow.unbalanced(200, 2, 1e-3, 0), 60.0)
    assert_same_run(ref, Trajectory.load(store))


# ---------------------------------------------------------------------------- safe outputs
def test_existing_out_and_store_are_refused_without_force(capsys, tmp_path):
    out = tmp_path / "r.npz"
    assert run_cli(capsys, ["simulate", *TINY, "--out", out])[0] == 0
    before = out.read_bytes()
    rc, _, err = run_cli(capsys, ["simulate", *TINY, "--seed", "3", "--out", out])
    assert rc == 2 and "--force" in err and out.read_bytes() == before
    assert run_cli(capsys, ["simulate", *TINY, "--seed", "3", "--out", out, "--force"])[0] == 0
    assert out.read_bytes() != before
    store = tmp_path / "s"
    assert run_cli(capsys, ["simulate", *TINY, "--store", store])[0] == 0
    rc, _, err = run_cli(capsys, ["simulate", *TINY, "--store", store])
    assert rc == 2 and "--force" in err
    with pytest.raises(ValueError, match="overwrite"):
        simulate(pwflow.three_points(), pwflow.balanced(3, 2, 1e-3, 0), 1.0, store=str(store))
    tr = simulate(pwflow.three_points(), pwflow.balanced(3, 2, 1e-3, 0), 1.0, store=str(store),
                  overwrite=True)
    assert Trajectory.load(store).m == 3 and tr.status == 0


def test_symlinks_are_replaced_not_followed(capsys, tmp_path):
    victim = tmp_path / "other.txt"
    victim.write_text("keep me")
    store = tmp_path / "s"
    assert run_cli(capsys, ["simulate", *TINY, "--store", store])[0] == 0
    (store / "snapshots.npy").unlink()
    (store / "snapshots.npy").symlink_to(victim)
    assert run_cli(capsys, ["simulate", *TINY, "--store", store, "--force"])[0] == 0
    assert victim.read_text() == "keep me"
    assert not (store / "snapshots.npy").is_symlink()
    link = tmp_path / "link.npz"
    link.symlink_to(victim)
    assert run_cli(capsys, ["simulate", *TINY, "--out", link])[0] == 2
    assert run_cli(capsys, ["simulate", *TINY, "--out", link, "--force"])[0] == 0
    assert victim.read_text() == "keep me" and not link.is_symlink()


def test_output_names_are_exact(capsys, tmp_path, small_run):
    rc, _, err = run_cli(capsys, ["simulate", *SMALL, "--out", os.devnull])
    assert rc == 2 and "regular file" in err and not os.path.exists(os.devnull + ".npz")
    rc, _, err = run_cli(capsys, ["plot", small_run, "--out", tmp_path / "name"])
    assert rc == 2 and "suffix" in err and not list(tmp_path.glob("name*"))
    rc, out, _ = run_cli(capsys, ["simulate", *SMALL, "--out", tmp_path / "plain"])
    assert rc == 0 and str(tmp_path / "plain.npz") in out and (tmp_path / "plain.npz").exists()


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("run") / "three.npz"
    assert cli.main(["simulate", *SMALL, "--out", str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def small_store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("store") / "s"
    assert cli.main(["simulate", *SMALL, "--snapshots", "6", "--store", str(path)]) == 0
    return path


# ---------------------------------------------------------------------------- bad input
def test_complex_input_is_refused(capsys, tmp_path):
    with pytest.raises(ValueError, match="complex"):
        pwflow.Dataset(np.array([[1.0 + 1j, 1.0], [2.0, 1.0]]), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="complex"):
        pwflow.Dataset(np.array([[1.0, 1.0], [2.0, 1.0]]), np.array([0.0, 1.0j]))
    with pytest.raises(ValueError, match="complex"):
        pwflow.init.from_arrays(np.ones((2, 2)) * 1j, np.ones(2))
    path = tmp_path / "c.npz"
    np.savez(path, X=np.array([[1.0 + 2j, 1.0], [2.0, 1.0]]), y=np.array([0.0, 1.0]))
    rc, _, err = run_cli(capsys, ["simulate", "--dataset", path, *SMALL, "--out",
                                  tmp_path / "o.npz"])
    assert rc == 2 and one_line_error(err) and "complex" in err


def _corrupt_store(src: Path, dst: Path, how: str) -> Path:
    shutil.copytree(src, dst)
    if how == "truncated-snapshots":
        data = (dst / "snapshots.npy").read_bytes()
        (dst / "snapshots.npy").write_bytes(data[: 128 + 3 * 8 * 20 * 3])
    elif how == "truncated-run":
        data = (dst / "run.npz").read_bytes()
        (dst / "run.npz").write_bytes(data[: len(data) // 2])
    elif how == "format-99":
        with np.load(dst / "run.npz") as f:
            arrays = {k: f[k] for k in f.files}
        rec = json.loads(str(arrays["record"]))
        rec["format_version"] = 99
        arrays["record"] = np.array(json.dumps(rec))
        np.savez(dst / "run.npz", **arrays)
    elif how == "nan-W":
        Z = np.load(dst / "snapshots.npy", mmap_mode="r+")
        Z[1, 0, 0] = np.nan
        Z.flush()
        del Z
    return dst


@pytest.mark.parametrize("how,word", [("truncated-snapshots", "snapshots.npy"),
                                      ("truncated-run", "run.npz"),
                                      ("format-99", "format_version"),
                                      ("nan-W", "NaN")])
def test_corrupted_stores_give_one_clear_line(capsys, tmp_path, small_store, how, word):
    bad = _corrupt_store(small_store, tmp_path / how, how)
    for cmd in (["summary", bad], ["resume", bad]):
        rc, _, err = run_cli(capsys, cmd)
        assert rc == 2 and one_line_error(err) and word in err, (cmd, err)


def test_summary_of_a_csv_does_not_suggest_pickle(capsys, tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("1,2\n3,4\n")
    rc, _, err = run_cli(capsys, ["summary", path])
    assert rc == 2 and one_line_error(err) and "pickle" not in err


def test_format_version_of_a_file_is_checked(capsys, tmp_path, small_run):
    with np.load(small_run) as f:
        arrays = {k: f[k] for k in f.files}
    rec = json.loads(str(arrays["record"]))
    rec["format_version"] = 99
    arrays["record"] = np.array(json.dumps(rec))
    path = tmp_path / "v99.npz"
    np.savez(path, **arrays)
    rc, _, err = run_cli(capsys, ["summary", path])
    assert rc == 2 and "format_version 99" in err


# ---------------------------------------------------------------------------- --init-from
def test_init_from_file_starts_from_the_given_weights(capsys, tmp_path):
    init = pwflow.balanced(7, 2, 1e-3, 5)
    path = tmp_path / "w.npz"
    np.savez(path, W=init.W, a=init.a)
    out = tmp_path / "r.npz"
    rc, _, err = run_cli(capsys, ["simulate", "--init-from", path, "--t-max", "5", "--quiet",
                                  "--out", out])
    assert rc == 0, err
    tr = Trajectory.load(out)
    np.testing.assert_array_equal(tr.W[0], init.W)
    np.testing.assert_array_equal(tr.a[0], init.a)
    ref = simulate(pwflow.three_points(), init, 5.0)
    np.testing.assert_array_equal(tr.W[-1], ref.W[-1])


@pytest.mark.parametrize("arrays,word", [
    ({"W": np.ones((3, 2))}, "missing 'a'"),
    ({"W": np.ones((3, 3)), "a": np.ones(3)}, "shape (m, 2)"),
    ({"W": np.ones((3, 2)), "a": np.ones(4)}, "shape (m,)"),
    ({"W": np.full((3, 2), np.inf), "a": np.ones(3)}, "infinite"),
    ({"W": np.ones((3, 2)) * 1j, "a": np.ones(3)}, "complex"),
])
def test_init_from_bad_files_give_one_line(capsys, tmp_path, arrays, word):
    path = tmp_path / "w.npz"
    np.savez(path, **arrays)
    rc, _, err = run_cli(capsys, ["simulate", "--init-from", path, *SMALL[2:], "--out",
                                  tmp_path / "r.npz"])
    assert rc == 2 and one_line_error(err) and word in err and "w.npz" in err, err


def test_init_from_conflicts_and_missing_file(capsys, tmp_path):
    rc, _, err = run_cli(capsys, ["simulate", "--init-from", tmp_path / "none.npz", "--quiet",
                                  "--out", tmp_path / "r.npz"])
    assert rc == 2 and "none.npz" in err
    path = tmp_path / "w.npz"
    np.savez(path, W=np.ones((3, 2)), a=np.ones(3))
    rc, _, err = run_cli(capsys, ["simulate", "--init-from", path, "--width", "4", "--out",
                                  tmp_path / "r.npz"])
    assert rc == 2 and "--width" in err


# ---------------------------------------------------------------------------- the long one
@pytest.mark.slow
def test_stewart_2000_interrupted_three_ways_and_resumed_equals_uninterrupted(capsys, tmp_path):
    """SIGINT, SIGTERM and kill -9 at random moments of the Stewart m = 2000 run (Appendix B.2,
    unbalanced), each resumed to t = 4000: the same events and final states within 1e-10."""
    ref = simulate(pwflow.stewart(seed=0), pwflow.unbalanced(2000, 2, 1e-3, 0), 4000.0)
    assert ref.status == 0
    rng = np.random.default_rng(2014)
    args = ["simulate", "--dataset", "stewart", "--width", "2000", "--init", "unbalanced",
            "--t-max", "4000", "--quiet", "--checkpoint-every", "1"]
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        store = tmp_path / signal.Signals(sig).name
        proc = _spawn([*args, "--store", str(store)], tmp_path)
        _wait_for(store / "progress.npz", proc, timeout=120)
        time.sleep(float(rng.uniform(1.0, 0.5 * ref.stats["wall_time"])))
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=300)
        if sig == signal.SIGKILL:
            assert proc.returncode == -signal.SIGKILL
            part = Trajectory.load(store)
            assert part.status == Status.PARTIAL, part.message
        else:
            assert proc.returncode == 128 + sig, err
            part = Trajectory.load(store)
            assert part.status == Status.INTERRUPTED and part.t[-1] < 4000.0
        rc, _, err = run_cli(capsys, ["resume", store, "--quiet"])
        assert rc == 0, err
        got = Trajectory.load(store)
        assert got.status == 0 and got.t[-1] == 4000.0
        assert_same_run(ref, got)


def test_termination_handlers_respect_ignored_signals_and_are_restored(default_signals):
    from pwflow.signals import Terminated, exit_status, terminations_as_interrupts

    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    with terminations_as_interrupts():
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        with pytest.raises(Terminated) as info:
            signal.raise_signal(signal.SIGTERM)
    assert exit_status(info.value) == 143 and isinstance(info.value, KeyboardInterrupt)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN


def test_a_signal_while_a_file_is_written_acts_once_it_is_whole(tmp_path):
    """A termination signal or Ctrl-C arriving inside the ``.npz`` writer left the zip
    unclosable and the command line reported that error (rc 2) instead of the interruption
    (seen once in the SIGHUP test on a loaded machine).  ``write_npz`` now holds it until the
    file is whole."""
    from pwflow import signals
    from pwflow.store import write_npz

    for sig, exc in ((signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, signals.Terminated)):
        path = tmp_path / f"x{int(sig)}.npz"

        def write_array(fh, array, **kw):  # the signal arrives in the middle of the write
            os.kill(os.getpid(), sig)
            real_write(fh, array, **kw)

        real_write = np.lib.format.write_array
        np.lib.format.write_array = write_array
        # Python's own Ctrl-C handler, whatever this process inherited (a job started in the
        # background by a non-interactive shell ignores SIGINT, which write_npz honours)
        inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            with signals.terminations_as_interrupts(), pytest.raises(exc):
                write_npz(path, compress=False, a=np.arange(3.0))
        finally:
            np.lib.format.write_array = real_write
            signal.signal(signal.SIGINT, inherited)
        assert path.is_file()  # written whole before the signal acted
        assert not list(tmp_path.glob(".*.tmp"))


def test_resume_memory_carries_the_resolved_residuals_and_the_idle_cut_count():
    """The ``r_k`` resolved to 0 and to nonzero (their hysteresis,
    ``RESOLUTION_HYSTERESIS``) and the
    count of idle face-event cuts (the Zeno guard) are part of the memory a mark records: a
    restart at a resume anchor reads the regime with them, as the uninterrupted run does.
    Three points at a global minimum (m = 200, λ = 0.1): by t = 400 every residual is at its
    resolution."""
    from pwflow.resume import capture, restore

    seen = {}

    def grab(flow):
        if flow.t > 400 and "mem" not in seen and np.any(flow._held_zero):
            flow._idle_cuts = 3  # a value the restore must carry
            seen["mem"] = json.loads(json.dumps(capture(flow)))
            seen["held"] = flow._held_zero.copy()
            seen["live"] = flow._held_live.copy()
            seen["flow"] = flow

    simulate(pwflow.three_points(), pwflow.balanced(200, 2, 0.1, seed=0), 600.0, callback=grab)
    assert "mem" in seen, "no residual was resolved to 0 by t = 600"
    flow = seen["flow"]
    flow._held_zero, flow._held_live, flow._idle_cuts = None, None, 0
    restore(flow, seen["mem"])
    np.testing.assert_array_equal(flow._held_zero, seen["held"])
    np.testing.assert_array_equal(flow._held_live, seen["live"])
    assert flow._idle_cuts == 3


@pytest.mark.parametrize("c", [1.0, -2.0])
def test_a_run_with_snapped_points_saves_loads_and_resumes(tmp_path, c):
    """``x_1 = c x_0`` turned by 5e-11 (below ``SPAN_RTOL``): the flow runs on the snapped data
    (for ``c = 1`` an exact repeat of ``x_0``); ``meta`` keeps the
    original rows, so that a saved run loads with them and resumes to a later ``t_max`` (the
    given data put back and snapped again, to the same numbers) as the run that went there
    at once."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(5, 3))
    X[0] = [1.0, 2.0, -1.0]  # dyadic: snapped with c = 1, x_1 is x_0 exactly
    xi = np.cross(X[0], rng.normal(size=3))
    X[1] = c * X[0] + 5e-11 * abs(c) * np.linalg.norm(X[0]) * xi / np.linalg.norm(xi)
    data = pwflow.Dataset(X, rng.normal(size=5))
    init = pwflow.balanced(8, 3, 0.3, seed=1)
    short = simulate(data, init, 2.0)
    assert short.status == 0 and short.meta["snapped_points"]["points"] == [1]
    assert np.array_equal(short.X[1], short.X[0]) == (c == 1.0)
    assert short.meta["snapped_points"]["original"] == [X[1].tolist()]
    assert "original" not in short.summary()["snapped_points"]
    path = tmp_path / "short.npz"
    short.save(path)
    loaded = Trajectory.load(path)
    assert loaded.meta["snapped_points"] == short.meta["snapped_points"]
    longer = loaded.resume(4.0)
    ref = simulate(data, init, 4.0)
    assert longer.status == 0 and np.array_equal(longer.X, ref.X)
    np.testing.assert_allclose(longer.W[-1], ref.W[-1], rtol=0, atol=1e-9)


def test_resume_memory_carries_the_class_residuals_signs():
    """The signs of the parallel classes' residuals in the regime (their hysteresis,
    ``RegimeMixin._watched_signs``) are part of a mark's memory, as the points' are: collinear
    data, d = 5, a neuron sliding on a class's hyperplane (session 29)."""
    from test_issue10_regressions import AC, WC, XC, YC

    from pwflow.resume import capture, restore

    seen = {}

    def grab(flow):
        held = flow._class_held
        if "mem" not in seen and held is not None and np.any(held != 0):
            seen["mem"] = json.loads(json.dumps(capture(flow)))
            seen["held"], seen["flow"] = held.copy(), flow

    simulate(pwflow.Dataset(XC, YC), pwflow.from_arrays(WC, AC), 3.0, gamma=0.1, callback=grab)
    assert "mem" in seen, "no class residual was watched"
    flow = seen["flow"]
    flow._class_held = None
    restore(flow, seen["mem"])
    np.testing.assert_array_equal(flow._class_held, seen["held"])


def test_resume_memory_carries_the_outputs_noise():
    """The outputs' noise of the last steps (``RegimeMixin._set_step_noise``, read by the
    normal velocities' resolution, with its memory ``NOISE_MEMORY``) is part of a mark's
    memory, bit for bit through JSON: a restart at a resume anchor reads the regime with it,
    as the uninterrupted run does (d = 3 random data, balanced init)."""
    from pwflow.resume import capture, restore

    rng = np.random.default_rng(3)
    data = pwflow.Dataset(rng.normal(size=(6, 3)), rng.normal(size=6))
    seen = {}

    def grab(flow):
        noise = flow.__dict__.get("_step_noise")
        if flow.t > 1.0 and "mem" not in seen and noise is not None and np.any(noise > 0):
            seen["mem"] = json.loads(json.dumps(capture(flow)))
            seen["noise"], seen["flow"] = noise.copy(), flow

    simulate(data, pwflow.balanced(10, 3, 0.1, seed=0), 5.0, callback=grab)
    assert "mem" in seen, "no step noise recorded"
    flow = seen["flow"]
    flow._step_noise = None
    restore(flow, seen["mem"])
    np.testing.assert_array_equal(flow._step_noise, seen["noise"])


@pytest.mark.parametrize("nth", [1, 5])
def test_a_signal_while_a_face_is_registered_leaves_an_interrupted_run(
        monkeypatch, nth, default_signals):
    """Session 64 (a clean-clone CI run): SIGTERM sent as soon as ``progress.npz`` appeared
    made the run exit 2 with "operands could not be broadcast together with shapes (75,)
    (74,)".  A face's registration appended it to the table's pattern list before computing
    its geometry (an SVD), so a signal there left the lists of different lengths, and the
    interrupted run's wrap-up died on the table's arrays.  The geometry is now computed
    first and the face registered in one block that a signal does not split: the signal,
    delivered here inside the ``nth`` geometry computed after the first snapshot, ends the
    run INTERRUPTED, saved, with a consistent table."""
    from pwflow.patterns import PatternTable
    from pwflow.signals import terminations_as_interrupts

    real = PatternTable._face_geometry
    calls = []

    def geometry_with_a_signal(self, u):
        calls.append(1)
        if len(calls) == nth:
            signal.raise_signal(signal.SIGTERM)
        return real(self, u)

    def arm(flow):  # from the first step on: the start's faces are registered before it
        if flow.n_steps == 1:
            calls.clear()
            monkeypatch.setattr(PatternTable, "_face_geometry", geometry_with_a_signal)

    with terminations_as_interrupts():
        tr = simulate(pwflow.stewart(seed=0, n=40), pwflow.unbalanced(200, 2, 1e-3, seed=0),
                      400.0, callback=arm)
    assert len(calls) >= nth  # the signal was sent
    assert tr.status == Status.INTERRUPTED and "SIGTERM" in tr.message, tr.message
    assert tr.patterns.shape[0] > int(np.max(tr.pattern))
