"""Session 61's campaign on wide networks: m = 30–200 neurons in d = 2–5, where steps carry
batches of events (the batch cut, its error budget) that the campaigns with m ≤ 12 rarely
exercise.

Not a test module.  Seed ``s`` draws d in 2–5, n in 4–14 (Gaussian data, or integer data in
``{−2, …, 2}``), m in 30–200, γ ∈ {0, 0.1, 0.5}, the square or logistic loss, weights of
scale 1e-3, 1e-2, 0.1 or 0.5, balanced or not.  Each problem is run four ways to t_max: the
default options (``def``), the reference path (``batch_tol = 0``, ``rest_tol = 0``: ``ref``),
that at ``rtol = 1e-13``, ``atol = 1e-16`` (``tight``), and with its neurons permuted
(``perm``).  One JSON line per problem: statuses, events, branch points, the Lemma 1 drift,
the largest rise of the loss between snapshots, and where every run ends with status 0 the
largest difference at five times (relative to ``1 + max |θ|``) of the default and the
reference runs from the tight one and of the permuted run from the default::

    python tests/explore_wide.py 100 300 10      # seeds, count, t_max

Session 61, seeds 100–286 (187 problems, 49 637 events in the default runs, 32 with branch
points): every default, reference and permuted run status 0; the default within 1.4e-10 of
the tight run (seed 252), the reference path within 1.4e-10, the permuted within 6.5e-11;
drift at most 1.8e-14; the loss never rose.  Seed 158's tight run stopped with status −2
(Zeno): a neuron on five hyperplanes of rank 2 (d = 3), at a sliding mode at rest, was sent
at ``rtol ≤ 1e-11`` to a face whose field turned it back (fixed in ``filippov.select``:
``docs/integrator.md``, the session 61 section).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

import pwflow

TIGHT = {"batch_tol": 0, "rest_tol": 0, "rtol": 1e-13, "atol": 1e-16}


def draw(seed: int):
    """The problem of ``seed``: ``X, y, W, a, gamma, loss``."""
    rng = np.random.default_rng(seed)
    d, n, m = int(rng.integers(2, 6)), int(rng.integers(4, 15)), int(rng.integers(30, 201))
    if rng.random() < 0.5:
        X = rng.normal(size=(n, d))
    else:
        X = rng.integers(-2, 3, size=(n, d)).astype(float)
        X[np.linalg.norm(X, axis=1) < 0.5, 0] = 1.0
    return (X,) + draw_rest(rng, X, m)


def draw_rest(rng, X, m: int, large: bool = False):
    """The rest of a problem on the data ``X`` with ``m`` neurons, from ``rng``: ``y, W, a,
    gamma, loss`` (γ ∈ {0, 0.1, 0.5}, the square loss with Gaussian labels or the logistic
    loss with ±1, weights of scale 1e-3 … 0.5, balanced or not; ``large``: output weights
    1.5–5 times the hidden ones, as :func:`explore_integer.draw`'s ``large`` kind)."""
    n, d = X.shape
    gamma = float(rng.choice([0.0, 0.1, 0.5]))
    loss = str(rng.choice(["square", "logistic"]))
    y = rng.normal(size=n) if loss == "square" else rng.choice([-1.0, 1.0], size=n)
    scale = float(rng.choice([1e-3, 1e-2, 0.1, 0.5]))
    W = rng.normal(size=(m, d)) * scale
    if large:
        a = (rng.choice([-1.0, 1.0], size=m) * rng.uniform(1.5, 5.0, size=m)
             * np.linalg.norm(W, axis=1))
    elif rng.random() < 0.5:
        a = rng.choice([-1.0, 1.0], size=m) * np.linalg.norm(W, axis=1)
    else:
        a = rng.normal(size=m) * scale
    return y, W, a, gamma, loss


def relative_gap(W1, a1, W2, a2) -> float:
    """``max |θ_2 − θ_1|`` relative to ``1 + max |θ_1|``."""
    size = 1.0 + max(np.max(np.abs(W1)), np.max(np.abs(a1)))
    return max(np.max(np.abs(W2 - W1)), np.max(np.abs(a2 - a1))) / size


def apart(tr1, tr2, times, perm=None) -> float:
    """The largest difference of two runs' states at ``times``, relative to ``1 + max |θ|``
    (``perm``: the neurons of ``tr2`` are ``tr1``'s in that order)."""
    inv = None if perm is None else np.argsort(perm)
    out = 0.0
    for t in times:
        (W1, a1), (W2, a2) = tr1.state(t), tr2.state(t)
        if inv is not None:
            W2, a2 = W2[inv], a2[inv]
        out = max(out, relative_gap(W1, a1, W2, a2))
    return out


def compare(seed: int, t_max: float) -> dict:
    """The four runs of problem ``seed`` (see the module)."""
    X, y, W, a, gamma, loss = draw(seed)
    rec = {"seed": seed, "d": X.shape[1], "n": X.shape[0], "m": W.shape[0], "gamma": gamma,
           "loss": loss}
    data = pwflow.Dataset(X, y)
    pi = np.random.default_rng(seed + 7).permutation(W.shape[0])
    t0 = time.perf_counter()

    def run(W_, a_, **opts):
        return pwflow.simulate(data, pwflow.from_arrays(W_, a_), t_max, gamma=gamma, loss=loss,
                               options=pwflow.FlowOptions(**opts))

    runs = {"def": run(W, a)}
    rec["wall_def"] = round(time.perf_counter() - t0, 2)
    runs.update(ref=run(W, a, batch_tol=0, rest_tol=0), tight=run(W, a, **TIGHT),
                perm=run(W[pi], a[pi]))
    for key, tr in runs.items():
        rec.update({f"st_{key}": tr.status, f"ev_{key}": tr.n_events,
                    f"br_{key}": tr.stats.get("n_branch_points")})
        if tr.status:
            rec[f"msg_{key}"] = tr.message[:200]
    rec["drift"] = float(np.max(runs["def"].balancedness_drift(), initial=0.0))
    rec["loss_up"] = float(np.max(np.diff(np.asarray(runs["def"].loss)), initial=0.0))
    if all(tr.status == 0 for tr in runs.values()):
        # branch points too: every run decides them by the same rule
        times = np.linspace(0.0, t_max, 6)[1:]
        rec.update(off_def=apart(runs["tight"], runs["def"], times),
                   off_ref=apart(runs["tight"], runs["ref"], times),
                   off_perm=apart(runs["def"], runs["perm"], times, pi))
    rec["wall"] = round(time.perf_counter() - t0, 2)
    return rec


def main(argv: list[str]) -> int:
    start, count, t_max = int(argv[0]), int(argv[1]), float(argv[2])
    for seed in range(start, start + count):
        try:
            print(json.dumps(compare(seed, t_max)), flush=True)
        except Exception as err:  # a campaign reports, it does not stop
            print(json.dumps({"seed": seed, "error": repr(err)[:300]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
