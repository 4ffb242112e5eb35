"""``proofs-checks lemmas``: run every statement check for one configuration and print the
verdict table (terminal), optionally JSON (``--json``) and Markdown (``--markdown FILE``);
``--sweep`` adds the λ-sweep rate checks.  Exit status 1 if any statement is ``violated``.

Example::

    proofs-checks lemmas --dataset three-points --width 2000 --scale 1e-3 --init balanced
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from pwflow.cli import positive_float, positive_int, seed_int
from pwflow.data import get_dataset
from pwflow.init import INITS

from . import checks as C
from . import report as R
from . import sweeps as S


def _eps(text: str) -> float:
    v = positive_float(text)
    if not v < 1 / 3:
        raise argparse.ArgumentTypeError(f"must be in (0, 1/3), got {text!r}")
    return v


def _alpha(text: str) -> float:
    v = positive_float(text)
    if not v <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text!r}")
    return v


def _scales(text: str) -> list[float]:
    vals = [positive_float(p) for p in text.split(",") if p.strip()]
    if len(vals) < 3 or any(v >= 1 for v in vals):
        raise argparse.ArgumentTypeError(f"need ≥ 3 comma-separated scales in (0, 1), got {text!r}")
    return vals


def _seeds(text: str) -> list[int]:
    vals = [seed_int(p) for p in text.split(",") if p.strip()]
    if not vals:
        raise argparse.ArgumentTypeError(f"need at least one seed, got {text!r}")
    return vals


def _scale(text: str) -> float:
    v = positive_float(text)
    if not v < 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1) (the small-initialisation regime), "
                                         f"got {text!r}")
    return v


def _markdown_path(text: str) -> Path:
    """The ``--markdown`` file, checked before the (long) computation."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a directory; give a file name")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"the folder {str(path.parent)!r} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise argparse.ArgumentTypeError(f"cannot write to the folder {str(path.parent)!r}")
    return path


def _gamma(text: str) -> float:
    v = float(text)
    if not (math.isfinite(v) and 0 <= v < 1):
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text!r}")
    return v


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of the ``lemmas`` subcommand."""
    p.add_argument("--dataset", default="three-points",
                   help="three-points, assumption3, stewart or a .npz/.csv path")
    p.add_argument("--eta", type=positive_float, default=0.1, help="η of assumption3")
    p.add_argument("--data-seed", type=seed_int, default=0, help="seed of the dataset draw")
    p.add_argument("--width", type=positive_int, default=200, help="number of neurons m")
    p.add_argument("--scale", type=_scale, default=1e-3, help="initialisation scale λ, in (0, 1)")
    p.add_argument("--init", choices=sorted(INITS), default="balanced")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the initialisation")
    p.add_argument("--gamma", type=_gamma, default=0.0, help="leaky slope γ")
    p.add_argument("--loss", choices=("square", "logistic"), default="square")
    p.add_argument("--epsilon", type=_eps, default=0.25, help="ε of Theorem 1, in (0, 1/3)")
    p.add_argument("--alpha0", type=_alpha, default=0.5, help="α_0 of Condition 1")
    p.add_argument("--eps2", type=positive_float, default=0.05, help="ε_2 of Lemma 5")
    p.add_argument("--eps3", type=positive_float, default=0.05, help="ε_3 of Lemma 6")
    p.add_argument("--delta-prime", type=positive_float, default=0.05, help="δ' of τ_3")
    p.add_argument("--t-max", type=positive_float, default=None,
                   help="horizon (default max(40 τ, 3000))")
    p.add_argument("--grid", type=positive_int, default=200,
                   help="snapshots on [0, τ] and on [τ, t_max] each")
    p.add_argument("--certify-lemma8", type=positive_float, default=None, metavar="ETA",
                   help="also certify Lemma 8 over the whole Assumption 3 box of this η (~10 s)")
    p.add_argument("--section4-seeds", type=_seeds, default=[0],
                   help="data seeds of the assumption3(η=0.05) draws that carry the Section 4 "
                        "rows when --dataset fails Assumptions 4–6 (default 0)")
    p.add_argument("--section4-scale", type=positive_float, default=1e-6,
                   help="λ of those Section 4 runs (default 1e-6)")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--markdown", metavar="FILE", type=_markdown_path, default=None,
                   help="also write a Markdown table")
    p.add_argument("--sweep", action="store_true", help="add the λ-sweep rate checks")
    p.add_argument("--sweep-scales", type=_scales,
                   default=[1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10],
                   help="comma-separated λ values of the sweep (default: 5 decades)")
    p.add_argument("--sweep-width", type=positive_int, default=2000, help="m of the sweep runs")
    p.add_argument("--sweep-seeds", type=_seeds, default=[0, 1, 2],
                   help="comma-separated initialisation seeds of the sweep (default 0,1,2)")
    p.add_argument("--sweep-workers", type=positive_int, default=2,
                   help="processes of the sweep pool (default 2)")
    p.add_argument("--rate-table", metavar="FILE", default=None,
                   help="with --sweep: also write the Markdown rate table")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    """Check Lemmas 1–24, Theorems 1–4 and Conditions 1–2 on an exact trajectory."""
    kw = {"eta": args.eta} if args.dataset.replace("_", "-") == "assumption3" else {}
    data = get_dataset(args.dataset, seed=args.data_seed, **kw)
    cfg = R.Config(epsilon=args.epsilon, alpha0=args.alpha0, eps2=args.eps2, eps3=args.eps3,
                   delta_prime=args.delta_prime, t_max=args.t_max, n_grid=max(args.grid, 2),
                   gamma=args.gamma, loss=args.loss, certify_lemma8=args.certify_lemma8,
                   section4_seeds=tuple(args.section4_seeds),
                   section4_scale=args.section4_scale)
    init = R.make_init_for(args.init, args.width, data.d, args.scale, args.seed)
    progress = False if args.no_progress or args.json else None  # None: on a terminal
    results, _ = R.run_all(data, init, cfg, progress=progress)
    rates = []
    if args.sweep:
        rates = S.sweep(data, args.sweep_scales, seeds=args.sweep_seeds, width=args.sweep_width,
                        init_kind=args.init, epsilon=args.epsilon, alpha0=args.alpha0,
                        eps2=args.eps2, eps3=args.eps3, delta_prime=args.delta_prime,
                        workers=args.sweep_workers, progress=progress)
        results += rates
        if args.rate_table:
            Path(args.rate_table).write_text(S.render_rate_table(rates) + "\n", encoding="utf-8")
    meta = {"dataset": data.name, "width": args.width, "scale": args.scale, "init": args.init,
            "seed": args.seed, "gamma": args.gamma, "loss": args.loss, "epsilon": args.epsilon,
            "alpha0": args.alpha0, "eps2": args.eps2, "eps3": args.eps3,
            "delta_prime": args.delta_prime}
    if args.json:
        print(R.render_json(results, meta))
    else:
        print(R.render_table(results))
    if args.markdown:
        Path(args.markdown).write_text(R.render_markdown(results) + "\n", encoding="utf-8")
    if not args.json:
        print(C.render_header(results), file=sys.stderr)
    return R.exit_status(results)
