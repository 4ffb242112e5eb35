"""Session 18's exploration: random problems integrated to the proofs-checks horizon (3000).

Not a test module.  ``explore.py``'s families run to short horizons, checked against
gradient descent; this one runs each drawn problem to ``t_max = 3000`` (the default horizon of
``proofs-checks``, ``max(40τ, 3000)``) under a wall-clock limit, to find what long runs meet:
stalls, chatter near a global minimum, invariant failures.  Problem ``seed`` draws, from
``numpy.random.default_rng(seed)``: d = 2–5, n = 1–8, m ∈ {4, 8, 20, 50}; Gaussian points,
a bias column, or rank-2 points; the square loss (Gaussian labels) or the logistic loss (±1);
``γ ∈ {0, 0.2}``; scale ``1e-3``, ``1e-2`` or ``0.3``; a balanced or unbalanced init::

    python tests/explore_long.py 0 100 60 > long.jsonl     # seeds 0..99, 60 s each at most
    python tests/explore_long.py 31 1 600                   # one problem (its event kinds)

Each line is a JSON record: the problem, status, wall time, events, steps, the time at rest,
the final loss, the largest Lemma 1 drift and the number of event rows logged twice.
Findings: ``docs/integrator.md`` (session 18).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from reference import repeated_event_rows

import pwflow
from pwflow.data import Dataset
from pwflow.events import EventKind


def problem(seed: int):
    """The drawn problem: ``(data, init, gamma, loss, description)``."""
    rng = np.random.default_rng(seed)
    d = int(rng.integers(2, 6))
    n = int(rng.integers(1, 9))
    m = int(rng.choice([4, 8, 20, 50]))
    kind = str(rng.choice(["gauss", "bias", "lowrank"]))
    X = rng.normal(size=(n, d))
    if kind == "bias":
        X[:, -1] = 1.0
    if kind == "lowrank" and d > 2:
        X = X[:, :2] @ rng.normal(size=(2, d))
    loss = str(rng.choice(["square", "logistic"]))
    y = rng.normal(size=n) if loss == "square" else rng.choice([-1.0, 1.0], size=n)
    gamma = float(rng.choice([0.0, 0.2]))
    scale = float(rng.choice([1e-3, 1e-2, 0.3]))
    balanced = bool(rng.random() < 0.5)
    make = pwflow.balanced if balanced else pwflow.unbalanced
    desc = dict(seed=seed, d=d, n=n, m=m, kind=kind, loss=loss, gamma=gamma, scale=scale,
                init="balanced" if balanced else "unbalanced")
    return Dataset(X, y), make(m, d, scale, seed=seed), gamma, loss, desc


def run(seed: int, limit: float, t_max: float = 3000.0) -> dict:
    """One problem to ``t_max``, interrupted after ``limit`` seconds (status −3)."""
    data, init, gamma, loss, desc = problem(seed)
    t0 = time.perf_counter()

    def stop_after_limit(flow):
        if time.perf_counter() - t0 > limit:
            raise KeyboardInterrupt

    tr = pwflow.simulate(data, init, t_max, gamma=gamma, loss=loss, n_snapshots=8,
                         callback=stop_after_limit)
    kinds = np.bincount(tr.events["kind"], minlength=len(EventKind))
    return dict(desc, status=int(tr.status), wall=round(time.perf_counter() - t0, 2),
                events=int(tr.n_events), steps=int(tr.stats["n_steps"]), t_end=float(tr.t[-1]),
                t_rest=tr.stats.get("t_rest"), loss_end=float(tr.step_loss[-1]),
                drift=float(np.max(tr.balancedness_drift())),
                kinds={EventKind(i).name: int(c) for i, c in enumerate(kinds) if c},
                repeated_rows=len(repeated_event_rows(tr)),
                message=tr.message if tr.status != 0 else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("start", type=int, help="first seed")
    ap.add_argument("count", type=int, help="number of seeds")
    ap.add_argument("limit", type=float, nargs="?", default=60.0,
                    help="wall-clock seconds per problem (default 60)")
    ap.add_argument("--t-max", type=float, default=3000.0, help="horizon (default 3000)")
    args = ap.parse_args()
    for seed in range(args.start, args.start + args.count):
        print(json.dumps(run(seed, args.limit, args.t_max)), flush=True)


if __name__ == "__main__":
    main()
