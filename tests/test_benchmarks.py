"""The benchmark scripts still run (on tiny cases): they read pwflow's internals, and two of
them had stopped working without any test noticing (``run_benchmarks.py --any-d`` died on a
lazy package attribute, ``solver_overhead.py`` on the structured Jacobian, and
``probe_batch_correction.py`` on a changed signature).  The timings themselves are not
checked here (speed is measured by the scripts, not by tests); what is checked is that each
case runs to its end and prints its row, and that ``ab_compare.py`` finds a version
identical to itself (and ``ab_explore_long.py`` likewise)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"


def _run(script: str, *args: str, timeout: float = 300) -> str:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout


def test_run_benchmarks_prints_a_row_per_case():
    out = _run("run_benchmarks.py", "--datasets", "three-points", "random-d3", "--sizes", "40",
               "--t-max", "3", "--naive-budget", "2")
    rows = {line.split()[0]: line.split() for line in out.splitlines()
            if line.startswith(("three-points", "random-d3"))}
    assert set(rows) == {"three-points", "random-d3"}, out
    for row in rows.values():
        assert row[1] == "40" and float(row[2]) > 0 and int(row[3]) > 0, out  # m, wall, events
    assert "ms per event" in out  # the random rows' cost per event


def test_ab_compare_finds_a_version_identical_to_itself(tmp_path):
    shutil.copytree(ROOT / "pwflow", tmp_path / "pwflow_base",
                    ignore=shutil.ignore_patterns("__pycache__"))
    out = _run("ab_compare.py", str(tmp_path), "d3", "20", "2", "--n", "6")
    assert "identical log: True" in out and "final state difference 0 " in out, out
    assert len(re.findall(r"^(base|new): [0-9.]+ s, status 0", out, re.M)) == 2, out


def test_solver_overhead_times_both_solvers_on_both_fields():
    out = _run("solver_overhead.py", "--reps", "1")
    labels = re.findall(r"^(DOP853|Radau), (trivial|propagator) field .* scipy / pwflow = "
                        r"[0-9.]+$", out, re.M)
    assert sorted(labels) == [("DOP853", "propagator"), ("DOP853", "trivial"),
                              ("Radau", "propagator"), ("Radau", "trivial")], out


def test_probe_batch_correction_measures_a_batch():
    out = _run("probe_batch_correction.py", "d3", "60", "0.01", "20")
    line = next(x for x in out.splitlines() if x.startswith("T0"))
    assert "no batch" in line or re.search(r"error: kept [0-9.e+-]+, .*sweep 3: ", line), out


def test_ab_explore_long_finds_a_version_identical_to_itself(tmp_path):
    shutil.copytree(ROOT / "pwflow", tmp_path / "pwflow_base",
                    ignore=shutil.ignore_patterns("__pycache__"))
    out = _run("ab_explore_long.py", str(tmp_path), "3", "2", "--t-max", "20")
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [r["seed"] for r in rows] == [3, 4], out
    for r in rows:
        assert r["same_events"] and r["state"] == 0.0, r
        assert r.get("dt_max", 0.0) == 0.0 and r["base"]["status"] == r["new"]["status"] == 0, r
        assert r["base"]["nfev"] == r["new"]["nfev"] > 0, r


def test_budget_sensitivity_prints_a_row_per_case_and_budget():
    out = _run("budget_sensitivity.py", "--cases", "d2", "d3", "--n", "5", "--m", "20",
               "--t-max", "2", "--budgets", "1e-10", "1e-6")
    rows = [line.split() for line in out.splitlines() if line.startswith(("d2 ", "d3 "))]
    assert [(r[0], float(r[1])) for r in rows] == [("d2", 1e-10), ("d3", 1e-10),
                                                  ("d2", 1e-6), ("d3", 1e-6)], out
    for r in rows:
        assert r[2] == "0" and int(r[3]) > 0 and int(r[4]) > 0, out  # status, events, steps
    # the baseline is each case's own first run: no difference from itself, speed-up 1
    assert [float(r[9]) for r in rows[:2]] == [0.0, 0.0] and rows[0][8] == "1.00", out
    assert len(rows[1]) == 11 and len(rows[0]) == 10, out  # 'x first case' from the 2nd case


def test_budget_sensitivity_rejects_a_bad_budget_in_one_line():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, str(BENCH / "budget_sensitivity.py"), "--budgets",
                           "0"], capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "argument --budgets: expected a positive number, got '0'" in proc.stderr
