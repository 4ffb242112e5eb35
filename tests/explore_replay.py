"""Session 23's exploration: random d ≥ 4 problems wide enough for passive faces, against the
reference path.

Not a test module.  ``explore.py``'s and ``campaign.py``'s problems have m ≤ 60, so at d ≥ 4
their runs rarely hold the ``HybridFlow.REPLAY_PASSIVE`` empty faces from which DOP853
integrates the occupied faces alone and replays the others (:mod:`pwflow.replay`, with rows
for the faces met within a step).  Problem ``seed`` draws, from
``numpy.random.default_rng(seed)``: d = 4–6, n = 8–30 Gaussian points (``--dims``,
``--points``: other ranges; session 24 ran d = 3, n = 8–200), m ∈ {50, 100, 200},
the square loss (Gaussian labels) or the logistic loss (±1), ``γ ∈ {0, 0.2}``, scale 1e-2 or
0.1, a balanced or unbalanced init, ``t_max ∈ {2, 5, 10}``.  Each runs twice: the default
path with ``REPLAY_PASSIVE = 0`` (``--replay-passive``: replaying from the first empty face,
so that every such run takes the path), and the reference path (``batch_tol = 0``, no
implicit solver, every face in DOP853's state); one JSON line compares them: the events
other than grazing contacts (the same kinds, neurons and hyperplanes; largest relative time
difference), the final states (largest difference relative to the largest weight), steps,
wall times, the Lemma 1 drift, and whether an event row was logged twice::

    python tests/explore_replay.py 0 32 > replay.jsonl      # seeds 0..31

Findings: ``docs/integrator.md`` (faces met within a step; branch points).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from reference import non_grazing_events, repeated_event_rows

import pwflow
from pwflow.stepper import HybridFlow


def problem(seed: int, dims: tuple[int, int] = (4, 6), points: tuple[int, int] = (8, 30)):
    """The drawn problem: ``(data, init, gamma, loss, t_max, description)``; ``d`` and ``n``
    uniform in the closed ranges ``dims`` and ``points``."""
    rng = np.random.default_rng(seed)
    d, n = int(rng.integers(dims[0], dims[1] + 1)), int(rng.integers(points[0], points[1] + 1))
    m = int(rng.choice([50, 100, 200]))
    loss = str(rng.choice(["square", "logistic"]))
    X = rng.normal(size=(n, d))
    y = rng.normal(size=n) if loss == "square" else rng.choice([-1.0, 1.0], size=n)
    gamma, scale = float(rng.choice([0.0, 0.2])), float(rng.choice([1e-2, 1e-1]))
    balanced = bool(rng.random() < 0.5)
    init = (pwflow.balanced if balanced else pwflow.unbalanced)(m, d, scale, seed=seed)
    t_max = float(rng.choice([2.0, 5.0, 10.0]))
    desc = dict(seed=seed, d=d, n=n, m=m, loss=loss, gamma=gamma, scale=scale,
                init="balanced" if balanced else "unbalanced", t_max=t_max)
    return pwflow.Dataset(X, y), init, gamma, loss, t_max, desc


def compare(seed: int, replay_passive: int | None = 0, dims: tuple[int, int] = (4, 6),
            points: tuple[int, int] = (8, 30)) -> dict:
    data, init, gamma, loss, t_max, desc = problem(seed, dims, points)
    runs, walls = {}, {}
    reference = pwflow.FlowOptions(batch_tol=0, stiff_solver=None)
    default_replay = HybridFlow.REPLAY_PASSIVE
    try:
        for name, replay, opts in (("default", replay_passive, pwflow.FlowOptions()),
                                   ("reference", None, reference)):
            HybridFlow.REPLAY_PASSIVE = replay
            start = time.perf_counter()
            runs[name] = pwflow.simulate(data, init, t_max, gamma=gamma, loss=loss,
                                         n_snapshots=4, options=opts)
            walls[name] = round(time.perf_counter() - start, 2)
    finally:
        HybridFlow.REPLAY_PASSIVE = default_replay
    a, b = runs["default"], runs["reference"]
    ea, eb = non_grazing_events(a), non_grazing_events(b)
    same = (ea["t"].size == eb["t"].size
            and all(np.array_equal(ea[k], eb[k]) for k in ("neuron", "k", "kind")))
    max_dt = (float(np.max(np.abs(ea["t"] - eb["t"]) / np.maximum(1.0, np.abs(eb["t"])),
                           initial=0.0)) if same else None)
    size = max(np.max(np.abs(b.W[-1])), np.max(np.abs(b.a[-1])))
    dz = max(np.max(np.abs(a.W[-1] - b.W[-1])), np.max(np.abs(a.a[-1] - b.a[-1]))) / size
    return dict(desc, status=[int(a.status), int(b.status)],
                non_grazing=[int(ea["t"].size), int(eb["t"].size)], same_events=bool(same),
                max_dt=max_dt, final_state=float(dz),
                steps=[int(a.stats["n_steps"]), int(b.stats["n_steps"])],
                wall=[walls["default"], walls["reference"]],
                drift=float(np.max(a.balancedness_drift())),
                repeated_rows=[len(repeated_event_rows(run)) for run in (a, b)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("start", type=int, help="first seed")
    ap.add_argument("count", type=int, help="number of seeds")
    ap.add_argument("--replay-passive", type=int, default=0,
                    help="HybridFlow.REPLAY_PASSIVE of the default run (0: replay always; "
                         f"the library's default is {HybridFlow.REPLAY_PASSIVE})")
    ap.add_argument("--dims", type=int, nargs=2, default=(4, 6), metavar=("LO", "HI"),
                    help="range of d (default 4 6; the replay runs from d = "
                         f"{HybridFlow.REPLAY_MIN_DIM})")
    ap.add_argument("--points", type=int, nargs=2, default=(8, 30), metavar=("LO", "HI"),
                    help="range of n (default 8 30)")
    args = ap.parse_args()
    for seed in range(args.start, args.start + args.count):
        print(json.dumps(compare(seed, args.replay_passive, tuple(args.dims),
                                 tuple(args.points))), flush=True)


if __name__ == "__main__":
    main()
