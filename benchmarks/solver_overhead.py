"""Per-step cost of pwflow's DOP853 / Radau (:mod:`pwflow.rk`, :mod:`pwflow.radau`) against
scipy's, in one process (ratios on a shared machine).

Usage::

    python benchmarks/solver_overhead.py [--reps 5]

Two fields: a trivial one (``f(t, y) = −y`` on 117 unknowns, so that the time is the
solvers' own overhead) and the real propagator field of the README run (three points,
m = 2000, captured at the first solver start after t = 50).  Each solver takes steps from
the same start; the best of ``--reps`` is reported, as µs per step and the ratio
scipy / pwflow.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import scipy.integrate  # noqa: E402

import pwflow  # noqa: E402
import pwflow.stepper  # noqa: E402
from pwflow.radau import Radau  # noqa: E402
from pwflow.rk import DOP853  # noqa: E402


def _captured_field():
    """(fun, y0, t0, t_bound, kwargs) of a DOP853 and of a Radau start of the README run."""
    got: dict[str, tuple] = {}
    ours = pwflow.stepper.solver_class

    def spy(name):
        cls = ours(name)

        def make(fun, t0, y0, t_bound, **kw):
            if t0 > 50 and name not in got:
                got[name] = (fun, y0.copy(), t0, t_bound, dict(kw))
            return cls(fun, t0, y0, t_bound, **kw)
        return make

    pwflow.stepper.solver_class = spy
    try:
        pwflow.simulate(pwflow.three_points(), pwflow.balanced(2000, 2, 1e-3, seed=0), 4000.0,
                        n_snapshots=8)
    finally:
        pwflow.stepper.solver_class = ours
    return got


def _per_step(cls, fun, y0, t0, t_bound, kw, steps: int, reps: int) -> float:
    best = np.inf
    for _ in range(reps):
        s = cls(fun, t0, y0, t_bound, **kw)
        k = 0
        t_start = time.perf_counter()
        while s.status == "running" and k < steps:
            s.step()
            k += 1
        best = min(best, (time.perf_counter() - t_start) / k)
    return best


def _dense_jacobian(jac):
    """``jac`` returning dense matrices (scipy's Radau) where pwflow's returns a structured
    :class:`pwflow.radau.BlockLowRank`."""
    def dense(t, y):
        J = jac(t, y)
        return J.dense() if hasattr(J, "dense") else np.asarray(J)
    return dense


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    got = _captured_field()
    n = 117
    trivial = (lambda t, y: -y, np.ones(n), 0.0, 1e9,
               dict(rtol=1e-10, atol=1e-12, first_step=1e-3))
    trivial_radau = (trivial[0], trivial[1], 0.0, 1e9,
                     dict(trivial[4], jac=lambda t, y: -np.eye(n)))
    cases = [("DOP853, trivial field", DOP853, scipy.integrate.DOP853, trivial),
             ("DOP853, propagator field", DOP853, scipy.integrate.DOP853, got["DOP853"]),
             ("Radau, trivial field", Radau, scipy.integrate.Radau, trivial_radau),
             ("Radau, propagator field", Radau, scipy.integrate.Radau, got["Radau"])]
    for label, ours, ref, (fun, y0, t0, t_bound, kw) in cases:
        a = b = np.inf
        kw_ref = dict(kw)
        if "jac" in kw and ref is scipy.integrate.Radau:
            # pwflow's Jacobian is structured (BlockLowRank, solved by Woodbury); scipy's
            # Radau takes the dense matrix
            kw_ref["jac"] = _dense_jacobian(kw["jac"])
        for _ in range(args.reps):  # alternated, best of each
            a = min(a, _per_step(ours, fun, y0, t0, t_bound, kw, 200, 1))
            b = min(b, _per_step(ref, fun, y0, t0, t_bound, kw_ref, 200, 1))
        print(f"{label:28s} n = {y0.size:4d}: pwflow {a * 1e6:8.1f} µs/step, scipy "
              f"{b * 1e6:8.1f} µs/step, scipy / pwflow = {b / a:.2f}", flush=True)


if __name__ == "__main__":
    main()
