"""Session 50's comparison with the independent Filippov integrator (``reference.
filippov_events``) on seeded random problems.

Not a test module (``test_integrator.py::test_crossings_entries_and_exits_are_scipys_event_
locations`` is its hypothesis form).  Seed ``s`` draws ``d`` in 2–8, ``n`` in 2–11, ``m`` in
1–12, ``γ ∈ {0, 0.1, 0.5}``, the square or logistic loss, uniform data in ``[−2, 2]^d``,
weights of scale 0.1, 0.3 or 1, balanced or not.  Each problem is run by pwflow and compared
up to the first event either side does not model: one JSON line per problem with the events
of each kind compared, the largest time difference of each kind, the state difference there
(relative) and why the comparison ended::

    python tests/explore_scipy.py 0 400 5        # seeds 0..399, t = 5
    python tests/explore_scipy.py 5000 300 10    # seeds 5000..5299, t = 10

Session 50 (these two): 3 875 crossings, 971 entries and 177 exits, the same events in the
same order in all 700 problems; times within 1.6e-9, 2.5e-9 and 1.0e-4; states within
1.1e-10 (``docs/integrator.md``, "An independent Filippov integrator").  Session 51, with
the reference sliding on several hyperplanes (``docs/integrator.md``, "Sliding on several
hyperplanes in the independent integrator"), these two and ``7000 250 10``, ``8000 500 10``
(1 450 problems): 9 314 crossings, 3 488 entries and 1 193 exits, the same events in the
same order in all; crossings within 2.8e-9, entries within 2.8e-8, exits within 2.4e-3
(near a fit); states within 1.2e-10.  1 287 comparisons reach the horizon (of the first
700: 639, against 490 in session 50).  ``10000 300 10`` and ``9000 100 30``: no difference
either.
"""

from __future__ import annotations

import json
import sys

import numpy as np
from reference import CROSS, ENTER, LEAVE, compare_with_filippov

import pwflow


def draw(seed: int):
    """The problem of ``seed``: ``X, y, W, a, gamma, loss``."""
    rng = np.random.default_rng(seed)
    d, n, m = int(rng.integers(2, 9)), int(rng.integers(2, 12)), int(rng.integers(1, 13))
    gamma = float(rng.choice([0.0, 0.1, 0.5]))
    loss = str(rng.choice(["square", "logistic"]))
    X = rng.uniform(-2, 2, size=(n, d))
    y = rng.uniform(-1, 1, size=n) if loss == "square" else rng.choice([-1.0, 1.0], size=n)
    scale = float(rng.choice([0.1, 0.3, 1.0]))
    W = rng.uniform(-1, 1, size=(m, d)) * scale
    a = (np.linalg.norm(W, axis=1) * rng.choice([-1, 1], size=m) if rng.integers(2)
         else rng.uniform(-1, 1, size=m) * scale)
    return X, y, W, a, gamma, loss


def compare(seed: int, t_max: float) -> dict:
    """pwflow against :func:`reference.filippov_events` on problem ``seed`` (see the module)."""
    X, y, W, a, gamma, loss = draw(seed)
    tr = pwflow.simulate(pwflow.Dataset(X, y), pwflow.from_arrays(W, a), t_max, gamma=gamma,
                         loss=loss)
    c = compare_with_filippov(tr, X, y, W, a, gamma, loss, t_max)
    same = [r[1:] for r in c.mine] == [e[1:] for e in c.theirs]
    counts = {kind: sum(r[3] == kind for r in c.mine) for kind in (CROSS, ENTER, LEAVE)}
    dt = {kind: max([abs(r[0] - e[0]) for r, e in zip(c.mine, c.theirs, strict=True)
                     if r[3] == kind], default=0.0) if same else None
          for kind in (CROSS, ENTER, LEAVE)}
    ended = c.stopped or ("pwflow event" if c.t < t_max else "horizon")
    return {"seed": seed, "d": X.shape[1], "n": X.shape[0], "m": W.shape[0], "gamma": gamma,
            "loss": loss, "t": c.t, "ended": ended, "same_events": same, "counts": counts,
            "max_dt": dt, "state": c.state}


def main(argv: list[str]) -> int:
    start, count = int(argv[0]), int(argv[1])
    t_max = float(argv[2]) if len(argv) > 2 else 5.0
    for seed in range(start, start + count):
        print(json.dumps(compare(seed, t_max)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
