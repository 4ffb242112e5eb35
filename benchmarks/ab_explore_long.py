"""Same-process A/B of two versions of pwflow on ``tests/explore_long.py``'s problems.

Usage::

    git archive BASE pwflow | tar -x -C /tmp/base && mv /tmp/base/pwflow /tmp/base/pwflow_base
    python benchmarks/ab_explore_long.py /tmp/base 0 200            # seeds 0..199, t = 3000
    python benchmarks/ab_explore_long.py /tmp/base 400 60 --t-max 500

Each problem (``explore_long.problem``: d = 2–5, n = 1–8, m ∈ {4, 8, 20, 50}, square or
logistic loss, γ ∈ {0, 0.2}, three scales, balanced or not) runs on the base version
(imported as ``pwflow_base``) and on the working tree, with default options and 8
snapshots.  One JSON line per problem: for each version the wall time, status, steps, field
evaluations (``nfev``, the deterministic cost), events and implicit steps; whether the two
logs hold the same events in the same order (neuron, hyperplane, kind) and, if so, their
largest time difference; the largest difference of the final neurons relative to
``1 + max |θ|``; and the branch points of each.  Session 63's comparison of the implicit
solver's hand-over rule (``docs/integrator.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base_dir", help="directory holding the base version as pwflow_base/")
    ap.add_argument("start", type=int, help="first seed")
    ap.add_argument("count", type=int, help="number of seeds")
    ap.add_argument("--t-max", type=float, default=3000.0, help="horizon (default 3000)")
    args = ap.parse_args()
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    sys.path[:0] = [args.base_dir, root, os.path.join(root, "tests"),
                    os.path.dirname(os.path.abspath(__file__))]
    import pwflow_base
    from ab_logs import compare_runs
    from explore_long import problem

    import pwflow

    for seed in range(args.start, args.start + args.count):
        data, init, gamma, loss, desc = problem(seed)
        out = dict(seed=seed, d=desc["d"], n=desc["n"], m=desc["m"])
        runs = {}
        for name, pk in (("base", pwflow_base), ("new", pwflow)):
            t0 = time.perf_counter()
            tr = pk.simulate(pk.Dataset(data.X, data.y), pk.from_arrays(init.W, init.a),
                             args.t_max, gamma=gamma, loss=loss, n_snapshots=8)
            runs[name] = tr
            out[name] = dict(wall=round(time.perf_counter() - t0, 2), status=int(tr.status),
                             steps=int(tr.stats["n_steps"]), nfev=int(tr.stats["nfev"]),
                             ev=int(tr.n_events), impl=int(np.sum(tr.step_implicit)))
        a, b = runs["base"], runs["new"]
        cmp = compare_runs(a, b)
        out["same_events"] = cmp.same_rows
        if cmp.same_rows and a.n_events:
            out["dt_max"] = cmp.dt_max
        out["state"] = cmp.state / (1 + cmp.scale)
        out["branch"] = [int(a.stats["n_branch_points"]), int(b.stats["n_branch_points"])]
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
