"""Same-process A/B timing of two versions of pwflow on one case (ratios on a shared machine).

Usage::

    git archive BASE pwflow | tar -x -C /tmp/base && cp -r /tmp/base/pwflow /tmp/base/pwflow_base
    python benchmarks/ab_compare.py /tmp/base stewart 20000 2      # dataset, m, t_max
    python benchmarks/ab_compare.py /tmp/base d3 1000 300 --n 8    # random data, d = 3
    python benchmarks/ab_compare.py /tmp/base three-points 2000 4000 --scale 0.3  # zero loss
    python benchmarks/ab_compare.py /tmp/base stewart 2000 4000 --gamma 0.1  # leaky, w = 0

The base version is imported as ``pwflow_base`` from the given directory (the package only
uses relative imports), the working tree as ``pwflow``; the two runs alternate ``--reps``
times in one process.  Prints each wall time, the ratio of the fastest runs, and whether the
event logs and the final states agree (bitwise, else the largest differences).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np


def _case(pk, kind: str, m: int, n: int, scale: float | None = None):
    if kind == "stewart":
        return pk.stewart(seed=0, n=40), pk.unbalanced(m, 2, scale or 1e-3, seed=0)
    if kind == "three-points":
        return pk.three_points(), pk.balanced(m, 2, scale or 1e-3, seed=0)
    d = int(kind[1:])
    rng = np.random.default_rng(0)
    return (pk.Dataset(rng.normal(size=(n, d)), rng.normal(size=n)),
            pk.balanced(m, d, scale or 1e-2, seed=0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base_dir", help="directory holding the base version as pwflow_base/")
    ap.add_argument("case", help="stewart, three-points or dD (random data in dimension D)")
    ap.add_argument("m", type=int)
    ap.add_argument("t_max", type=float)
    ap.add_argument("--n", type=int, default=8, help="data points of the random data")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--scale", type=float, default=None,
                    help="initialisation scale λ (default 1e-3; 1e-2 for random data)")
    ap.add_argument("--gamma", type=float, default=0.0, help="leaky slope γ (default 0)")
    args = ap.parse_args()
    sys.path.insert(0, args.base_dir)
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import pwflow_base
    from ab_logs import compare_runs, same_prefix

    import pwflow

    walls: dict[str, list[float]] = {"base": [], "new": []}
    runs = {}
    for _ in range(args.reps):
        for name, pk in (("base", pwflow_base), ("new", pwflow)):
            data, init = _case(pk, args.case, args.m, args.n, args.scale)
            t0 = time.perf_counter()
            tr = pk.simulate(data, init, args.t_max, gamma=args.gamma, n_snapshots=8)
            walls[name].append(time.perf_counter() - t0)
            runs[name] = tr
            print(f"{name}: {walls[name][-1]:.2f} s, status {tr.status}, {tr.n_events} events, "
                  f"{tr.stats['n_steps']} steps", flush=True)
    b, n = runs["base"], runs["new"]
    cmp = compare_runs(b, n)
    dt = float("nan") if cmp.dt_max is None else cmp.dt_max
    print(f"base / new = {min(walls['base']) / min(walls['new']):.2f}; identical log: "
          f"{cmp.identical}; max |dt| {dt:.3g}; final state difference "
          f"{cmp.state / cmp.scale:.3g} (relative)")
    t_rest = n.stats.get("t_rest")
    if t_rest is not None:  # the new run stopped at rest: the logs up to there, the bound
        after = int(np.sum(np.asarray(b.events["t"]) > t_rest))
        print(f"new: at rest from t = {t_rest:.6g} (bound {n.stats['rest_bound']:.3g}); base "
              f"events after it: {after}; identical log up to it: {same_prefix(b, n, t_rest)}")


if __name__ == "__main__":
    main()
