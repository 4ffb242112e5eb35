"""Session 62's comparison of wide networks with gradient descent at two vanishing steps.

Not a test module.  :mod:`explore_wide`'s campaign compares pwflow with itself (default
options, the reference path, a tight tolerance, permuted neurons), which cannot see a rule
that every run applies the same wrong way.  This one takes the same problems
(``explore_wide.draw``: m = 30–200, d = 2–5, n = 4–14, γ ∈ {0, 0.1, 0.5}, square or
logistic loss), or those of :func:`draw_high` (``--dims``: any d; ``--large``: output
weights 1.5–5 times the hidden ones), and compares the flow under the ``'gd'`` branch
policy with gradient descent at steps ``lr`` and ``lr / 2`` (``pwflow.gradient_descent``),
extrapolated (Richardson: ``2 W_{lr/2} − W_lr``), at four times before the first branch
point after the start (``reference.first_branch_after_start``: after it gradient descent's
side depends on the phase of its step grid, not on ``lr → 0``, ``docs/paper-readings.md``
N5; through ``w = 0`` with ``--large`` the policy follows gradient descent's own map and is
compared).  One JSON line per problem: the flow's status, events, branch points and first
branch time (``t_branch``); at each time compared the largest difference of the flow's
neurons from the extrapolation (``err``) and the two descents' gap (``gap``, what the
extrapolation is known to, up to a constant), both relative to ``1 + max |θ|``;
``ratio = max err / gap``; and the verdict ``ok`` (:func:`agrees`)::

    python tests/explore_gd_wide.py 500 100 2                # seeds, count, t_max
    python tests/explore_gd_wide.py 500 100 2 --lr 1e-4
    python tests/explore_gd_wide.py 900 60 2 --dims 6 10     # d = 6–10 (:func:`draw_high`)
    python tests/explore_gd_wide.py 1000 60 5 --large        # |a| = 1.5–5 ‖w‖: through w = 0

Gradient descent's error is ``O(lr)`` with a sawtooth at each kink (where an event falls
between two steps), so the extrapolation is only as good as the gap and the ratio scatters
around 1–2.  Where it exceeds :data:`FLAG`, the problem is checked for convergence: the
flow's distance at the last time compared to descents at ``lr``, ``lr/2``, ``lr/4``,
``lr/8`` (``conv``) and its fitted order (``order``: the least-squares slope of ``log2``
distance against ``log2`` step; 1 where the flow is the limit, about 0 where the two part).
Results: ``docs/integrator.md``, the session 62 section.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

import pwflow

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from explore_wide import draw, draw_rest, relative_gap  # noqa: E402
from reference import first_branch_after_start  # noqa: E402

#: the ratio above which a problem is checked for convergence
FLAG = 3.0
#: the fitted order in the step above which a flagged problem converges to the flow
ORDER_MIN = 0.7


def agrees(rec: dict) -> bool:
    """The campaign's verdict on one line of :func:`compare`: status 0, and the flow within
    :data:`FLAG` gaps of the extrapolation or, where not, gradient descent converging to it
    (fitted order at least :data:`ORDER_MIN`)."""
    if rec.get("status") != 0 or "error" in rec:
        return False
    if "ratio" not in rec:  # a branch point before the first time: nothing compared
        return True
    return rec["ratio"] <= FLAG or rec.get("order", 0.0) >= ORDER_MIN


def _at(g, t: float):
    """Gradient descent's stored state nearest ``t`` (``pwflow.GDResult``)."""
    i = int(np.argmin(np.abs(np.asarray(g.t) - t)))
    return np.asarray(g.W)[i], np.asarray(g.a)[i]


def convergence(data, init, tr, t_max: float, lr: float, gamma: float, loss: str
                ) -> tuple[list[float], float]:
    """The flow's distance at ``t_max`` to gradient descent at ``lr / 2**i``, ``i < 4``
    (relative to ``1 + max |θ|``), and its fitted order in the step (``t_max`` a multiple
    of ``lr / 8``)."""
    Wf, af = tr.state(t_max)
    out = [relative_gap(Wf, af, *_at(pwflow.gradient_descent(
        data, init, lr=lr / 2**i, t_max=t_max, save_times=[t_max], gamma=gamma, loss=loss),
        t_max)) for i in range(4)]
    order = -np.polyfit(np.arange(4.0), np.log2(np.maximum(out, 1e-300)), 1)[0]
    return [float(f"{e:.3g}") for e in out], float(f"{order:.3g}")


def draw_high(seed: int, dims: tuple[int, int], large: bool = False):
    """A problem in ``d`` from ``dims`` (inclusive): n = d + 1 … 3d Gaussian points, m =
    30–120, the rest as :func:`explore_wide.draw_rest` (``large``: output weights 1.5–5
    times the hidden ones; neurons reach ``w = 0``, are held there or pass through it)."""
    rng = np.random.default_rng(seed)
    d = int(rng.integers(dims[0], dims[1] + 1))
    n, m = int(rng.integers(d + 1, 3 * d + 1)), int(rng.integers(30, 121))
    X = rng.normal(size=(n, d))
    return (X,) + draw_rest(rng, X, m, large)


def compare(seed: int, t_max: float, lr: float, dims: tuple[int, int] | None = None,
            large: bool = False) -> dict:
    """The flow of problem ``seed`` (:func:`explore_wide.draw`, or :func:`draw_high` in
    ``dims``, with ``large`` output weights) under ``'gd'`` against extrapolated gradient
    descent."""
    X, y, W, a, gamma, loss = (draw(seed) if dims is None and not large
                               else draw_high(seed, dims or (2, 5), large))
    rec = {"seed": seed, "d": X.shape[1], "n": X.shape[0], "m": W.shape[0], "gamma": gamma,
           "loss": loss}
    data, init = pwflow.Dataset(X, y), pwflow.from_arrays(W, a)
    t0 = time.perf_counter()
    tr = pwflow.simulate(data, init, t_max, gamma=gamma, loss=loss,
                         options=pwflow.FlowOptions(branch_policy="gd"))
    rec.update(status=tr.status, events=tr.n_events, branch=tr.stats.get("n_branch_points"),
               wall_flow=round(time.perf_counter() - t0, 2))
    if tr.status:
        rec["message"] = tr.message[:200]
        rec["ok"] = False
        return rec
    # through w = 0 the 'gd' policy follows gradient descent's own map near 0 (compared)
    t_branch = first_branch_after_start(tr, through_zero=large)
    times = [t for t in np.linspace(0.0, t_max, 5)[1:] if t < t_branch]
    if t_branch < np.inf:
        rec["t_branch"] = float(f"{t_branch:.6g}")
    if not times:
        rec["ok"] = True
        return rec
    runs = [pwflow.gradient_descent(data, init, lr=h, t_max=times[-1], save_times=times,
                                    gamma=gamma, loss=loss) for h in (lr, lr / 2)]
    errs, gaps = [], []
    for t in times:
        (W1, a1), (W2, a2) = (_at(g, t) for g in runs)
        Wf, af = tr.state(t)
        errs.append(relative_gap(Wf, af, 2.0 * W2 - W1, 2.0 * a2 - a1))
        gaps.append(relative_gap(Wf, af, Wf + W2 - W1, af + a2 - a1))  # |θ_{lr/2} − θ_lr|
    ratio = max(e / max(g, 1e-300) for e, g in zip(errs, gaps, strict=True))
    rec.update(err=[float(f"{e:.3g}") for e in errs], gap=[float(f"{g:.3g}") for g in gaps],
               ratio=float(f"{ratio:.3g}"), wall=round(time.perf_counter() - t0, 2))
    if rec["ratio"] > FLAG:
        rec["conv"], rec["order"] = convergence(data, init, tr, times[-1], lr, gamma, loss)
    rec["ok"] = agrees(rec)
    return rec


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("start", type=int)
    ap.add_argument("count", type=int)
    ap.add_argument("t_max", type=float)
    ap.add_argument("--lr", type=float, default=2e-4, help="the larger descent step")
    ap.add_argument("--dims", type=int, nargs=2, default=None, metavar=("LO", "HI"),
                    help="draw d in LO..HI (draw_high) instead of explore_wide's problems")
    ap.add_argument("--large", action="store_true",
                    help="output weights 1.5-5 times the hidden ones (draw_high, d = 2-5 "
                         "unless --dims)")
    args = ap.parse_args(argv)
    dims = None if args.dims is None else tuple(args.dims)
    for seed in range(args.start, args.start + args.count):
        try:
            print(json.dumps(compare(seed, args.t_max, args.lr, dims, args.large)), flush=True)
        except Exception as err:  # a campaign reports, it does not stop
            print(json.dumps({"seed": seed, "error": repr(err)[:300]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
