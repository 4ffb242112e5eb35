"""Session 25's exploration: d = 6–10, against the reference path at two tolerances.

Not a test module.  Problem ``seed`` draws, from ``numpy.random.default_rng(seed)``: d = 6–10
(``--dims``), n = 8–20 Gaussian points, m ∈ {10, 20, 40}, ``γ ∈ {0, 0.2}``, the square loss
(Gaussian labels) or the logistic loss (±1), scale 1e-2 or 0.1, a balanced or unbalanced init,
``t_max ∈ {10, 30}``.  Each runs three times: the default path, the reference path
(``batch_tol = 0``, no implicit solver, every face in DOP853's state: no replay) at
``rtol = 1e-10``, and the reference path at ``rtol = 1e-12, atol = 1e-14``; one JSON line
per problem gives, for the first two, the status, the events, the Lemma 1 drift, the final
state's distance to the ``1e-12`` run (relative to its largest weight) and the number of
violations of the independent sliding checks (:func:`reference.sliding_checks`: on the
hyperplanes, slopes in the box, ``D*`` tangent) at the snapshots::

    python tests/explore_high_d.py 0 40 > high_d.jsonl      # seeds 0..39

This comparison found, while the face-event search was being restricted to the faces that
change in a step (session 25), a slope held beyond its bound for 0.27 time units with status
0 (d = 10: the final state 4e-5 from the 1e-12 run, where the two reference tolerances agreed
to 3e-11; ``docs/integrator.md``, "The search's order").
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from reference import sliding_checks

import pwflow
from pwflow.stepper import HybridFlow


def problem(seed: int, dims: tuple[int, int] = (6, 10)):
    """The drawn problem: ``(data, init, gamma, loss, t_max, description)``."""
    rng = np.random.default_rng(seed)
    d, n = int(rng.integers(dims[0], dims[1] + 1)), int(rng.integers(8, 21))
    m = int(rng.choice([10, 20, 40]))
    gamma, loss = float(rng.choice([0.0, 0.2])), str(rng.choice(["square", "logistic"]))
    X = rng.normal(size=(n, d))
    y = rng.normal(size=n) if loss == "square" else np.sign(rng.normal(size=n))
    scale, balanced = float(rng.choice([1e-2, 0.1])), bool(rng.integers(2))
    init = (pwflow.balanced if balanced else pwflow.unbalanced)(m, d, scale, seed=seed)
    t_max = float(rng.choice([10.0, 30.0]))
    desc = dict(seed=seed, d=d, n=n, m=m, gamma=gamma, loss=loss, scale=scale,
                balanced=balanced, T=t_max)
    return pwflow.Dataset(X, y), init, gamma, loss, t_max, desc


def compare(seed: int, dims: tuple[int, int] = (6, 10)) -> dict:
    data, init, gamma, loss, t_max, res = problem(seed, dims)
    runs = {}
    default_replay = HybridFlow.REPLAY_PASSIVE
    for name, opt in (("default", None),
                      ("ref", pwflow.FlowOptions(batch_tol=0, stiff_solver=None)),
                      ("ref12", pwflow.FlowOptions(batch_tol=0, stiff_solver=None, rtol=1e-12,
                                                   atol=1e-14))):
        start = time.perf_counter()
        HybridFlow.REPLAY_PASSIVE = default_replay if opt is None else None
        try:
            tr = pwflow.simulate(data, init, t_max, gamma=gamma, loss=loss, n_snapshots=6,
                                 options=opt)
        finally:
            HybridFlow.REPLAY_PASSIVE = default_replay
        runs[name] = tr
        res[name] = {"wall": round(time.perf_counter() - start, 2), "status": int(tr.status),
                     "events": int(tr.stats["n_events"]),
                     "drift": float(tr.stats["lemma1_max_drift_checked"] or 0.0)}
    fine = np.c_[runs["ref12"].W[-1], runs["ref12"].a[-1]]
    size = np.max(np.abs(fine))
    for name in ("default", "ref"):
        tr = runs[name]
        res[name]["vs_ref12"] = float(np.max(np.abs(np.c_[tr.W[-1], tr.a[-1]] - fine)) / size)
        res[name]["sliding_bad"] = sum(len(sliding_checks(tr, i)) for i in range(tr.t.size))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("start", type=int, help="first seed")
    ap.add_argument("count", type=int, help="number of seeds")
    ap.add_argument("--dims", type=int, nargs=2, default=(6, 10), metavar=("LO", "HI"),
                    help="range of d (default 6 10)")
    args = ap.parse_args()
    for seed in range(args.start, args.start + args.count):
        print(json.dumps(compare(seed, tuple(args.dims))), flush=True)


if __name__ == "__main__":
    main()
