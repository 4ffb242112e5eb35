"""What a looser batch budget buys, per input dimension (same process, cases interleaved).

Usage::

    python benchmarks/budget_sensitivity.py                # d = 2 and 5, session 64's table
    python benchmarks/budget_sensitivity.py --cases d3 --n 8 --t-max 300 --budgets 1e-10 1e-9 1e-8
    python benchmarks/budget_sensitivity.py --cases three-points --m 2000 --scale 0.3 --t-max 4000

Each case (``ab_compare.py``'s: ``dD`` random data in dimension D with ``--n`` points,
``three-points`` or ``stewart``) runs at each ``FlowOptions.batch_tol`` of ``--budgets``, the
cases alternating within each budget so that load on a shared machine falls on all alike.
A batch correction that removes a factor ``c`` of a batch's error would act like a budget
``c`` times larger at the same accuracy (``docs/integrator.md``, "Branch speed8-batch"), so
the table says what such a correction could buy, and for which dimension.  One row per case
and budget: status, events, steps, field evaluations, wall time, ms per event, the speed-up
over the first budget's run of the same case (the baseline), the final state's distance to
it (relative to ``1 + max |θ|``), and, from the second case on, the cost per event relative
to the first case's at the same budget (issue 10's item 4 compares d = 3–5 with d = 2).
Session 64's measurement: ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

import numpy as np


@dataclasses.dataclass(frozen=True)
class Run:
    """One case at one budget."""

    case: str
    budget: float
    status: int
    events: int
    steps: int
    nfev: int
    wall: float
    final: np.ndarray

    @property
    def ms_per_event(self) -> float:
        return 1e3 * self.wall / max(self.events, 1)


def _run(pk, case_fn, case: str, args, budget: float) -> Run:
    data, init = case_fn(pk, case, args.m, args.n, args.scale)
    t0 = time.perf_counter()
    tr = pk.simulate(data, init, args.t_max, n_snapshots=8,
                     options=pk.FlowOptions(batch_tol=budget))
    wall = time.perf_counter() - t0
    return Run(case, budget, int(tr.status), int(tr.n_events), int(tr.stats["n_steps"]),
               int(tr.stats["nfev"]), wall, np.c_[tr.W[-1], tr.a[-1]])


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _case_name(text: str) -> str:
    if text in ("three-points", "stewart") or (text[:1] == "d" and text[1:].isdigit()
                                              and int(text[1:]) >= 1):
        return text
    raise argparse.ArgumentTypeError(
        f"expected dD (D >= 1), three-points or stewart, got {text!r}")


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=_case_name, nargs="+", default=["d2", "d5"],
                    help="dD (random data), three-points or stewart (default: d2 d5)")
    ap.add_argument("--n", type=_count, default=20, help="points of the random data (default 20)")
    ap.add_argument("--m", type=_count, default=1000, help="neurons (default 1000)")
    ap.add_argument("--t-max", type=_positive, default=30.0, help="horizon (default 30)")
    ap.add_argument("--scale", type=_positive, default=None,
                    help="initialisation scale (default: ab_compare.py's, 1e-2 for random data)")
    ap.add_argument("--budgets", type=_positive, nargs="+", default=[1e-10, 1e-8, 1e-6],
                    help="batch_tol values; the first is the baseline (default 1e-10 1e-8 1e-6)")
    args = ap.parse_args(argv)
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:0] = [here, os.path.join(here, "..")]
    from ab_compare import _case

    import pwflow

    # warm-up (lazy imports, first-call caches), untimed: the first timed run is not charged
    data, init = _case(pwflow, args.cases[0], args.m, args.n, args.scale)
    pwflow.simulate(data, init, min(args.t_max, 0.1), n_snapshots=2)
    print(f"{'case':<14}{'batch_tol':>10}{'status':>7}{'events':>8}{'steps':>7}{'nfev':>8}"
          f"{'wall s':>9}{'ms/event':>10}{'speed-up':>10}{'state diff':>12}{'x first case':>14}")
    base: dict[str, Run] = {}
    for budget in args.budgets:
        first: Run | None = None
        for case in args.cases:
            r = _run(pwflow, _case, case, args, budget)
            b = base.setdefault(case, r)
            diff = float(np.max(np.abs(r.final - b.final)) / (1 + np.max(np.abs(b.final))))
            vs = "" if first is None else f"{r.ms_per_event / first.ms_per_event:.2f}"
            first = first or r
            print(f"{case:<14}{budget:>10.0e}{r.status:>7}{r.events:>8}{r.steps:>7}{r.nfev:>8}"
                  f"{r.wall:>9.2f}{r.ms_per_event:>10.3f}{b.wall / r.wall:>10.2f}{diff:>12.2e}"
                  f"{vs:>14}", flush=True)


if __name__ == "__main__":
    main()
