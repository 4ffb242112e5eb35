"""Issue 14: fuzzing the command lines with bad arguments and corrupted stores.

Properties: the exit status is one of 0, 1, 2, 130, 143; no traceback; no file changes except
the requested output.  Every valid combination the strategies can draw is a tiny run (width
and horizon come from short lists), so each example takes well under a second.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proofs_checks import cli as pc_cli
from pwflow import cli
from pwflow.store import STORE_FILES

ALLOWED = {0, 1, 2, 130, 143}
FUZZ = settings(suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow], deadline=None)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """Inputs the fuzzer refers to: a run, a store, data files good and bad."""
    d = tmp_path_factory.mktemp("fuzz")
    base = ["--width", "3", "--t-max", "0.5", "--quiet"]
    assert cli.main(["simulate", *base, "--out", str(d / "run.npz")]) == 0
    assert cli.main(["simulate", *base, "--snapshots", "4", "--store", str(d / "store")]) == 0
    (d / "data.csv").write_text("0.5,1\n-0.5,0\n0.25,2\n")
    (d / "huge.csv").write_text("1e300,1\n-1e300,0\n0.125,1\n")
    (d / "text.csv").write_text("a,b\nc,d\n")
    np.savez(d / "complex.npz", X=np.array([[1 + 1j, 1.0], [2.0, 1.0]]), y=np.ones(2))
    np.savez(d / "w.npz", W=np.ones((3, 2)) * 1e-3, a=np.ones(3) * 1e-3)
    np.savez(d / "wbad.npz", W=np.ones((3, 5)))
    (d / "trunc.npz").write_bytes((d / "run.npz").read_bytes()[:200])
    (d / "sub").mkdir()
    return d


def tree(d: Path) -> dict[str, str]:
    out = {}
    for p in sorted(d.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(d))] = hashlib.sha1(p.read_bytes()).hexdigest()
    return out


def run(main, argv) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, err.getvalue()


NUMBERS = ["0", "-1", "-1e-3", "1e308", "1e400", "nan", "inf", "-inf", "abc", "", "1e-300",
           "0x10", "1,2", "3", "0.5", "1e160", "1e60", "2.5"]
FILES = ["run.npz", "store", "data.csv", "huge.csv", "text.csv", "complex.npz", "w.npz",
         "wbad.npz", "trunc.npz", "sub", "missing.npz", "/dev/null", "", "store/run.npz"]


def simulate_args(d: Path):
    opt_num = st.sampled_from(["--width", "--scale", "--t-max", "--seed", "--gamma", "--lr",
                               "--rtol", "--atol", "--snapshots", "--eta", "--n-points",
                               "--checkpoint-every", "--stall-steps"])
    opt_file = st.sampled_from(["--dataset", "--init-from"])
    opt_flag = st.sampled_from(["--bias", "--frozen-output", "--force", "--debug", "--bogus"])
    opt_choice = st.tuples(st.sampled_from(["--init", "--loss", "--method"]),
                           st.sampled_from(["balanced", "unbalanced", "gd", "flow",
                                            "logistic", "nope", ""]))
    pair = st.one_of(
        st.tuples(opt_num, st.sampled_from(NUMBERS)).map(list),
        st.tuples(opt_file, st.sampled_from(FILES).map(lambda f: str(d / f) if f else f)
                  ).map(list),
        opt_flag.map(lambda f: [f]),
        opt_choice.map(list),
        st.sampled_from([["--dataset", "stewart"], ["--dataset", "assumption3"],
                         ["--dataset", "nope"]]),
    )
    return st.lists(pair, max_size=4).map(lambda ps: [tok for p in ps for tok in p])


@FUZZ
@given(data=st.data())
def test_fuzz_pwflow_command_lines(workdir, data):
    d = workdir
    out = d / "fuzz-out.npz"
    cmd = data.draw(st.sampled_from(["simulate", "summary", "plot", "resume", "bogus", ""]))
    if cmd == "simulate":
        target = data.draw(st.sampled_from(
            [["--out", str(out)], ["--store", str(d / "fuzz-store")], ["--out", str(d / "sub")],
             ["--out", str(d / "run.npz")], ["--store", str(d / "store")], []]))
        argv = ["simulate", "--width", "3", "--t-max", "0.5", "--quiet",
                *data.draw(simulate_args(d)), *target]
        # the requested output may change (an existing one only with --force)
        allowed = {str(out), str(d / "fuzz-store")}
        if target:
            tgt = Path(target[1])
            allowed |= {str(tgt), str(tgt.with_suffix(".npz"))}
            allowed |= {str(tgt / name) for name in STORE_FILES}
    elif cmd in ("summary", "resume", "plot"):
        f = data.draw(st.sampled_from(FILES))
        argv = [cmd, str(d / f) if f else f]
        if cmd == "plot":
            argv += data.draw(st.sampled_from([["--out", str(d / "fuzz.png")],
                                               ["--out", str(d / "noext")], []]))
            argv += data.draw(st.sampled_from([[], ["--kind", "bad"], ["--times", "-1"],
                                               ["--times", "1e9"]]))
        if cmd == "resume":
            argv += data.draw(st.sampled_from([[], ["--t-max", "-1"], ["--t-max", "nan"],
                                               ["--t-max", "0.25"]]))
        allowed = {str(d / "fuzz.png")}
        if cmd == "resume":  # a resume writes into the run it continues
            allowed |= {str(d / "run.npz")} | {str(d / "store" / name) for name in STORE_FILES}
    else:
        argv = [cmd] if cmd else []
        allowed = set()
    before = tree(d)
    rc, err = run(cli.main, argv)
    assert rc in ALLOWED, (argv, rc, err)
    assert "Traceback" not in err or "--debug" in argv, (argv, err)
    after = tree(d)
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    changed = {str(d / k) for k in changed}
    assert all(c in allowed or c.startswith(str(d / "fuzz-store")) for c in changed), (
        argv, changed)
    for p in (out, d / "fuzz.png"):
        p.unlink(missing_ok=True)
    shutil.rmtree(d / "fuzz-store", ignore_errors=True)


@FUZZ
@given(data=st.data())
def test_fuzz_proofs_checks_command_lines(workdir, data):
    d = workdir
    cmd = data.draw(st.sampled_from(["constants", "lemma8", "bogus"]))
    opts = {"constants": ["--epsilon", "--alpha0", "--gamma", "--eta", "--seed"],
            "lemma8": ["--eta", "--max-boxes"], "bogus": ["--x"]}[cmd]
    pairs = data.draw(st.lists(st.tuples(st.sampled_from(opts), st.sampled_from(NUMBERS)),
                               max_size=3))
    argv = [cmd, *[t for p in pairs for t in p]]
    if cmd == "constants":
        argv += ["--dataset", str(d / data.draw(st.sampled_from(FILES[2:6] + ["missing.csv"])))]
    if cmd == "lemma8":
        argv += ["--max-boxes", data.draw(st.sampled_from(["1", "0", "-5", "x", "20"]))]
    before = tree(d)
    rc, err = run(pc_cli.main, argv)
    assert rc in ALLOWED, (argv, rc, err)
    assert "Traceback" not in err, (argv, err)
    assert tree(d) == before


CORRUPTIONS = st.tuples(
    st.sampled_from(["run.npz", "snapshots.npy", "snapshot_patterns.npy", "progress.npz"]),
    st.sampled_from(["truncate", "flip", "delete", "garbage", "empty"]),
    st.floats(0, 1),
)


@FUZZ
@given(how=CORRUPTIONS)
def test_fuzz_corrupted_stores(workdir, tmp_path_factory, how):
    name, op, frac = how
    dst = tmp_path_factory.mktemp("corrupt") / "store"
    shutil.copytree(workdir / "store", dst)
    path = dst / name
    raw = path.read_bytes()
    pos = min(int(frac * len(raw)), len(raw) - 1)
    if op == "truncate":
        path.write_bytes(raw[:pos])
    elif op == "flip":
        path.write_bytes(raw[:pos] + bytes([raw[pos] ^ 0xFF]) + raw[pos + 1:])
    elif op == "delete":
        path.unlink()
    elif op == "garbage":
        path.write_bytes(b"not a pwflow file\n" * 3)
    else:
        path.write_bytes(b"")
    before = tree(dst.parent)
    for argv in (["summary", dst], ["summary", dst, "--json"]):
        rc, err = run(cli.main, argv)
        assert rc in ALLOWED, (how, rc, err)
        assert "Traceback" not in err, (how, err)
        if rc != 0:
            assert len(err.strip().splitlines()) == 1, (how, err)
    assert tree(dst.parent) == before
