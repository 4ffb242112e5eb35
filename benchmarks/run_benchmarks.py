"""Benchmarks of the exact flow against gradient descent and a naive event-restarting solver.

Usage::

    python benchmarks/run_benchmarks.py                 # three_points and stewart, m = 2e3, 2e4, 2e5
    python benchmarks/run_benchmarks.py --quick         # m = 2e3 only
    python benchmarks/run_benchmarks.py --sizes 2000 20000 --datasets three-points
    python benchmarks/run_benchmarks.py --any-d     # random data, d = 2–5, n = 8 and 20, m = 1000
    python benchmarks/run_benchmarks.py --global-min    # three points, lambda = 0.3 (zero loss)
    python benchmarks/run_benchmarks.py --startup       # README's first command, pwflow --help
    python benchmarks/run_benchmarks.py --quick --base /tmp/base   # also the base version: before / after

Each case runs in a fresh process (peak memory = that process's max RSS). Printed columns:

* ``wall``: wall time of :func:`pwflow.simulate` (s);
* ``events``, ``steps``;
* ``peak MB``: max RSS of the process;
* ``loss err``: ``|L(θ^T) − L_ref|`` where ``L_ref`` is ``L_β*`` (three points: Theorem 2's
  limit) or the final loss of the reference path (DOP853 only, restart at every event) at
  tolerance 1e-12 (Stewart, m = 2e3 only);
* ``GD time``: numpy gradient descent with the paper's step (lr = 2e-3 on L, i.e. 1e-3 on the
  authors' MSE), time per step measured in the same process and scaled to ``t_max / lr``
  steps (the paper's 2·10⁶ at ``t_max = 4000``); ``ratio GD`` = GD time / wall;
* ``naive``: scipy ``solve_ivp`` (DOP853, same tolerance) on the full state with one event
  function per (neuron, point) pair, restarted at every event — measured only where it finishes
  in ``--naive-budget`` seconds (otherwise ``>budget``); ``ratio naive`` = naive / wall.

Machines are shared and noisy: compare ratios, not seconds.
"""

from __future__ import annotations

import argparse
import os
import multiprocessing as mp
import queue
import resource
import time

import numpy as np


#: random data in any dimension (issue 10): name -> (d, n); standard normal X and y, seed 0
RANDOM = {"random-d2": (2, 8), "random-d3": (3, 8), "random-d2-n20": (2, 20),
          "random-d3-n20": (3, 20), "random-d4-n20": (4, 20), "random-d5": (5, 20)}


#: package under test: ``pwflow`` (the working tree) or ``pwflow_base`` (``--base``)
PACKAGE = "pwflow"


def _pk():
    import importlib

    return importlib.import_module(PACKAGE)


def _dataset(name: str):
    pwflow = _pk()
    if name in RANDOM:
        d, n = RANDOM[name]
        rng = np.random.default_rng(0)
        return pwflow.Dataset(rng.normal(size=(n, d)), rng.normal(size=n), name=name)
    return pwflow.three_points() if name == "three-points" else pwflow.stewart(seed=0, n=40)


#: initialisation scale of the three points' global-minimum case (``--global-min``)
GLOBAL_MIN_SCALE = 0.3


def _init(name: str, m: int, scale: float | None = None):
    pwflow = _pk()
    if name in RANDOM:
        return pwflow.balanced(m, RANDOM[name][0], 1e-2, seed=0)
    if name == "three-points":
        return pwflow.balanced(m, 2, 1e-3 if scale is None else scale, seed=0)
    return pwflow.unbalanced(m, 2, 1e-3, seed=0)


def _flow_case(name: str, m: int, t_max: float, q: mp.Queue, scale: float | None = None,
               package: str = "pwflow") -> None:
    global PACKAGE
    PACKAGE = package
    import importlib

    pwflow = _pk()
    # the submodule by name: the package's attributes are lazy (``pwflow.gd`` exists only
    # once something has imported it)
    time_per_step = importlib.import_module(f"{PACKAGE}.gd").time_per_step
    data, init = _dataset(name), _init(name, m, scale)
    t0 = time.perf_counter()
    tr = pwflow.simulate(data, init, t_max, n_snapshots=8)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    gd_step = time_per_step(data, init, lr=2e-3, n_steps=20 if m >= 100000 else 100)
    q.put({
        "wall": wall, "events": tr.n_events, "steps": tr.stats["n_steps"], "peak": peak,
        "final_loss": float(tr.step_loss[-1]), "status": tr.status, "message": tr.message,
        "t_end": float(tr.t[-1]), "gd": gd_step * t_max / 2e-3,
        "drift": float(np.max(tr.balancedness_drift())),
    })


def _naive_full_state(data, init, t_max, rtol, atol, budget):
    """solve_ivp on (W, a) with one event per (j, k) pair, restarted at every event."""
    from scipy.integrate import solve_ivp

    X, y = data.X, data.y
    n, d = X.shape
    m = init.m
    z = np.hstack([init.W, init.a[:, None]]).ravel()
    t = 0.0
    start = time.perf_counter()
    n_events = 0
    while t < t_max:
        W = z.reshape(m, d + 1)[:, :d]
        eta = (W @ X.T > 0).astype(float)  # ReLU pattern, fixed until the next event

        def rhs(_t, zz, eta=eta):
            Z = zz.reshape(m, d + 1)
            Wc, a = Z[:, :d], Z[:, d]
            h = ((Wc @ X.T) * eta).T @ a
            g = -((eta * (h - y)) @ X) / n  # (m, d): D_j
            out = np.empty_like(Z)
            out[:, :d] = a[:, None] * g
            out[:, d] = np.einsum("ij,ij->i", Wc, g)
            return out.ravel()

        events = []
        for j in range(m):
            for k in range(n):
                def ev(_t, zz, j=j, k=k):
                    return zz[j * (d + 1): j * (d + 1) + d] @ X[k]
                ev.terminal = True
                events.append(ev)
        sol = solve_ivp(rhs, (t, t_max), z, method="DOP853", rtol=rtol, atol=atol, events=events)
        z, t = sol.y[:, -1], sol.t[-1]
        if sol.status == 1:
            n_events += 1
            t = np.nextafter(t, np.inf)
        if time.perf_counter() - start > budget:
            return None, n_events
    return time.perf_counter() - start, n_events


def _naive_case(name: str, m: int, t_max: float, budget: float, q: mp.Queue) -> None:
    data, init = _dataset(name), _init(name, m)
    wall, nev = _naive_full_state(data, init, t_max, 1e-10, 1e-12, budget)
    q.put({"naive": wall, "naive_events": nev})


def _global_min_case(name: str, m: int, t_max: float, q: mp.Queue, package: str = "pwflow") -> None:
    _flow_case(name, m, t_max, q, scale=GLOBAL_MIN_SCALE, package=package)


#: the README's first command (without ``pip install``): simulate, then summary
README_SIMULATE = ["simulate", "--dataset", "three-points", "--width", "2000", "--scale", "1e-3",
                   "--init", "balanced", "--seed", "0", "--t-max", "4000", "--out"]


def _startup(repeats: int = 3, base: str | None = None) -> None:
    """Whole-process wall times (fresh interpreters): ``pwflow --help`` and the README's
    first command (``simulate`` then ``summary``); the median of ``repeats`` runs.  With
    ``base`` (a folder holding the base version as ``pwflow/``), the base's times too."""
    import os
    import sys

    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    roots = [here] + ([base] if base else [])
    times = _startup_times(repeats, roots)
    now, before = times[0], (times[1] if base else None)
    for label, key in (("pwflow --help", 0), ("README simulate", 1), ("README summary", 2),
                       ("README first command", 3)):
        line = f"{label:<24} {now[key]:6.2f} s"
        if before:
            line += f"   (base {before[key]:6.2f} s, base / now {before[key] / now[key]:.2f})"
        print(line, flush=True)
    sys.stdout.flush()


def _startup_times(repeats: int, roots: list[str]) -> list[tuple[float, float, float, float]]:
    """Median whole-process times of ``--help``, simulate, summary, and simulate + summary,
    for the ``pwflow`` found in each of ``roots`` (the versions alternate run by run)."""
    import os
    import subprocess
    import sys
    import tempfile

    runs = {root: ([], [], []) for root in roots}
    with tempfile.TemporaryDirectory() as tmp:
        def timed(args: list[str], root: str) -> float:
            # run from the temporary folder: ``-m`` puts the working directory first on
            # sys.path, which would shadow the pwflow chosen by PYTHONPATH
            env = {**os.environ, "PYTHONPATH": os.path.abspath(root)}
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "pwflow", *args], check=True, cwd=tmp,
                           stdout=subprocess.DEVNULL, env=env)
            return time.perf_counter() - t0

        for i in range(repeats):
            for v, root in enumerate(roots):
                helps, sims, sums = runs[root]
                out = os.path.join(tmp, f"three{i}-{v}.npz")
                helps.append(timed(["--help"], root))
                sims.append(timed([*README_SIMULATE, out], root))
                sums.append(timed(["summary", out], root))
    med = lambda v: float(np.median(v))  # noqa: E731
    return [(med(h), med(a), med(b), med(a) + med(b)) for h, a, b in runs.values()]


def _run(target, *args):
    """``target(*args, queue)`` in a fresh process (its own peak memory); a trailing package
    name in ``args`` is passed as ``package``."""
    q: mp.Queue = mp.Queue()
    kw = {}
    if args and args[-1] in ("pwflow", "pwflow_base"):
        args, kw = args[:-1], {"package": args[-1]}
    p = mp.Process(target=target, args=(*args, q), kwargs=kw)
    p.start()
    while True:  # a case that dies (its traceback on stderr) ends the script, not a hang
        try:
            out = q.get(timeout=1.0)
            break
        except queue.Empty:
            if not p.is_alive() and q.empty():
                raise SystemExit(f"benchmark case {getattr(target, '__name__', target)}"
                                 f"{args} failed (exit code {p.exitcode})") from None
    p.join()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000, 200000])
    ap.add_argument("--datasets", nargs="+", default=["three-points", "stewart"])
    ap.add_argument("--quick", action="store_true", help="m = 2000 only")
    ap.add_argument("--any-d", action="store_true",
                    help="random data in d = 2–5, n = 8 and 20 (m = 1000, t = 300): the cost "
                         "per event against d, and its ratio to d = 2 at the same n")
    ap.add_argument("--global-min", action="store_true",
                    help=f"three points at scale {GLOBAL_MIN_SCALE} (the run reaches zero loss; "
                         "m = 2000 unless --sizes)")
    ap.add_argument("--startup", action="store_true",
                    help="whole-process times of the README's first command and pwflow --help")
    ap.add_argument("--t-max", type=float, default=4000.0)
    ap.add_argument("--naive-budget", type=float, default=120.0)
    ap.add_argument("--base", metavar="DIR", default=None,
                    help="also run every case with a base version (DIR holds it as pwflow/ and "
                         "pwflow_base/, as for ab_compare.py): a 'before' row and the ratio")
    args = ap.parse_args()
    import sys

    # the working tree's pwflow first (the script may run without an installed pwflow); the
    # base version (``--base``) is imported by its own name, pwflow_base, from the end
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    if args.base:
        sys.path.append(args.base)
    if args.startup:
        _startup(base=args.base)
        return
    sizes = [2000] if args.quick else args.sizes
    case = _flow_case
    if args.global_min:
        args.datasets, case = ["three-points"], _global_min_case
        if args.sizes == ap.get_default("sizes"):
            sizes = [2000]
    if args.any_d:
        args.datasets, sizes, args.t_max = list(RANDOM), [1000], 300.0
    header = (f"{'dataset':<13}{'m':>8}{'wall s':>9}{'events':>9}{'steps':>7}{'peak MB':>9}"
              f"{'loss err':>11}{'drift':>9}{'GD s':>10}{'ratio GD':>10}{'naive s':>9}{'ratio naive':>12}")
    print(header)
    print("-" * len(header))
    import pwflow

    per_event_d2: dict[int, float] = {}  # wall per event of the d = 2 random rows, by n
    for name in args.datasets:
        rows: list[dict] = []
        data = _dataset(name)
        if name in RANDOM:
            L_ref = float("nan")
        elif args.global_min:
            L_ref = 0.0  # the run reaches a global minimum (zero loss)
        elif name == "three-points":
            beta, *_ = np.linalg.lstsq(data.X, data.y, rcond=None)
            L_ref = 0.5 * np.mean((data.X @ beta - data.y) ** 2)
        elif 2000 not in sizes:
            L_ref = float("nan")  # the reference is run (and compared) at m = 2000 only
        else:
            # the reference path: DOP853 only, restarted at every event, tolerance 1e-12
            opts = pwflow.FlowOptions(rtol=1e-12, atol=1e-14, batch_tol=0.0, stiff_solver=None)
            ref = pwflow.simulate(data, _init(name, 2000), args.t_max, n_snapshots=4, options=opts)
            L_ref = float(ref.step_loss[-1])
        for m in sizes:
            before = _run(case, name, m, args.t_max, "pwflow_base") if args.base else None
            r = _run(case, name, m, args.t_max)
            naive = "-"
            ratio_n = "-"
            if m <= 2000 and name not in RANDOM and not args.global_min:
                nv = _run(_naive_case, name, min(m, 200), args.t_max, args.naive_budget)
                if nv["naive"] is None:
                    naive = f">{args.naive_budget:.0f}"
                    ratio_n = f">{args.naive_budget / r['wall']:.0f}x (m={min(m, 200)})"
                else:
                    naive = f"{nv['naive']:.1f}"
                    ratio_n = f"{nv['naive'] / r['wall']:.1f}x (m={min(m, 200)})"
            err = abs(r["final_loss"] - L_ref) if (name == "three-points" or m == 2000) else float("nan")
            print(f"{name:<13}{m:>8}{r['wall']:>9.2f}{r['events']:>9}{r['steps']:>7}{r['peak']:>9.0f}"
                  f"{err:>11.2e}{r['drift']:>9.1e}{r['gd']:>10.0f}{r['gd'] / r['wall']:>9.0f}x"
                  f"{naive:>9} {ratio_n:>18}", flush=True)
            if before is not None:
                print(f"   ^ before (base): {before['wall']:.2f} s, {before['events']} events, "
                      f"{before['steps']} steps, {before['peak']:.0f} MB, status "
                      f"{before['status']}; before / after {before['wall'] / r['wall']:.2f}",
                      flush=True)
            if name in RANDOM:
                per_event = r["wall"] / max(r["events"], 1)
                d, n = RANDOM[name]
                if d == 2:
                    per_event_d2[n] = per_event
                ratio = (f" ({per_event / per_event_d2[n]:.2f}× d = 2 at n = {n}, same m)"
                         if d > 2 and n in per_event_d2 else "")
                print(f"   ^ {1e3 * per_event:.2f} ms per event{ratio}", flush=True)
            if r["status"] != 0:  # a partial run is not a result: say so next to its row
                print(f"   ^ stopped at t = {r['t_end']:.6g}: {r['message']}", flush=True)
            else:
                rows.append(r | {"m": m})
        _print_scaling(name, rows)


def scaling_slopes(m, events, wall) -> tuple[float, float]:
    """Least-squares slopes of ``log wall`` against ``log m`` and against ``log events``
    (wall ∝ m^a, wall ∝ events^b): the scaling the issue asks to be shown."""
    lw = np.log(np.asarray(wall, float))
    a = float(np.polyfit(np.log(np.asarray(m, float)), lw, 1)[0])
    b = float(np.polyfit(np.log(np.asarray(events, float)), lw, 1)[0])
    return a, b


def _print_scaling(name: str, rows: list[dict]) -> None:
    """The fitted slopes of one dataset's finished rows (two widths or more)."""
    if len(rows) < 2:
        return
    a, b = scaling_slopes([r["m"] for r in rows], [r["events"] for r in rows],
                          [r["wall"] for r in rows])
    ms = ", ".join(f"{r['m']:g}" for r in rows)
    print(f"   scaling of {name} over m = {ms}: wall ∝ m^{a:.2f}, wall ∝ events^{b:.2f}",
          flush=True)


if __name__ == "__main__":
    main()
