"""Subcommands ``pwflow sweep``, ``pwflow phase-diagram`` and ``pwflow sweep-plot``.

Registered by :mod:`pwflow.cli`; this module imports only the standard library and numpy
(through :mod:`pwflow.sweeps`): Dask, pyarrow, tqdm and matplotlib are imported when a
subcommand runs.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

__all__ = ["add_sweep", "run_sweep", "add_phase_diagram", "run_phase_diagram",
           "add_sweep_plot", "run_sweep_plot"]


def _need(*modules: str) -> None:
    """Fail with one line (exit 1) when an optional dependency of the sweeps is missing."""
    import importlib

    from ..cli import EXIT_FAILURE, CLIError

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise CLIError(f"this subcommand needs {name} ({err}); install the sweep extra: "
                           "pip install -e '.[sweep]'", EXIT_FAILURE) from None


def add_sweep(p: argparse.ArgumentParser) -> None:
    from ..cli import positive_int, seed_int

    p.add_argument("spec", type=Path, metavar="SPEC", help="the sweep's TOML file "
                   "(docs/sweeps.md)")
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="sweep folder: runs/<id>/, summary.parquet; reused to resume "
                        "(default: the SPEC's [sweep] out)")
    p.add_argument("--new", action="store_true",
                   help="accept changed fixed options for an existing DIR")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="address of a running Dask scheduler (default: $DASK_SCHEDULER_ADDRESS, "
                        "else a LocalCluster)")
    p.add_argument("--workers", type=positive_int, default=None, metavar="N",
                   help="LocalCluster worker processes (default: one per core)")
    p.add_argument("--retries", type=seed_int, default=None, metavar="R",
                   help="retries of a run whose task raised (default: the SPEC's, 2)")
    p.add_argument("--quiet", action="store_true", help="no progress bar on stderr")


def run_sweep(args: argparse.Namespace) -> int:
    """Run a grid of runs (a TOML SPEC) on Dask, resumable; write DIR/summary.parquet."""
    from ..cli import EXIT_FAILURE, PROG, CLIError
    from .driver import sweep
    from .spec import load_spec

    if args.scheduler is not None and args.workers is not None:
        raise CLIError("--workers applies only to the LocalCluster (not with --scheduler)")
    spec = load_spec(args.spec)  # a bad SPEC fails here, before anything starts
    if args.out is None and spec.out is None:
        raise CLIError("--out DIR is required (the SPEC has no [sweep] out)")
    _need("dask.distributed", "pyarrow", "tqdm")
    res = sweep(spec, args.out, scheduler=args.scheduler, workers=args.workers, new=args.new,
                retries=args.retries, progress=not args.quiet)
    counts = Counter(r["outcome"] for r in res.rows)
    print(f"sweep {res.out}: {res.n_runs} runs ({res.n_skipped} already done, {res.n_done} "
          f"run now) in {res.wall_time:.1f} s")
    for outcome, k in sorted(counts.items()):
        print(f"  {outcome:28s}{k}")
    print(f"summary: {res.summary_path}")
    if res.n_failed:
        sys.stderr.write(f"{PROG}: {res.n_failed} run(s) failed; see the status and message "
                         f"columns of {res.summary_path}\n")
        return EXIT_FAILURE
    return 0


def _rows(path: Path) -> list[dict]:
    from ..cli import CLIError
    from .driver import read_summary

    _need("pyarrow")
    if not path.exists():
        raise CLIError(f"sweep folder {str(path)!r} does not exist")
    rows = read_summary(path)
    if not rows:
        raise CLIError(f"the summary of {str(path)!r} has no rows")
    return rows


def add_phase_diagram(p: argparse.ArgumentParser) -> None:
    from . import PHASE_Y_AXES

    p.add_argument("dir", type=Path, metavar="DIR", help="a sweep folder (or summary.parquet)")
    p.add_argument("--x", default="scale", metavar="AXIS", help="x axis (default: scale)")
    p.add_argument("--y", default="width", metavar="AXIS",
                   help=f"y axis: {', '.join(PHASE_Y_AXES)} (default: width)")
    p.add_argument("--out", type=Path, required=True, metavar="FIG.png", help="image to write")
    p.add_argument("--title", default=None, help="figure title")
    p.add_argument("--force", action="store_true", help="replace an existing --out file")


def run_phase_diagram(args: argparse.Namespace) -> int:
    """Draw the fraction of runs per outcome (global / spurious / not converged) per grid cell."""
    from ..cli import _check_writable
    from .plots import phase_diagram

    rows = _rows(args.dir)
    _need("matplotlib")
    out = _check_writable(args.out, args.force)
    print(phase_diagram(rows, args.x, args.y, out, args.title))
    return 0


def add_sweep_plot(p: argparse.ArgumentParser) -> None:
    from . import NUMERIC_COLUMNS

    p.add_argument("dir", type=Path, metavar="DIR", help="a sweep folder (or summary.parquet)")
    p.add_argument("--y", required=True, metavar="COLUMN",
                   help=f"summary column: {', '.join(NUMERIC_COLUMNS)}")
    p.add_argument("--x", default="scale", metavar="AXIS", help="x axis (default: scale)")
    p.add_argument("--hue", default=None, metavar="AXIS", help="one line per value of this axis")
    p.add_argument("--linear-y", action="store_true", help="linear y axis (default: log when "
                   "all values are positive)")
    p.add_argument("--out", type=Path, required=True, metavar="FIG.png", help="image to write")
    p.add_argument("--force", action="store_true", help="replace an existing --out file")


def run_sweep_plot(args: argparse.Namespace) -> int:
    """Plot a summary column against a grid axis, seeds as error bars."""
    from ..cli import _check_writable
    from .plots import sweep_plot

    rows = _rows(args.dir)
    _need("matplotlib")
    out = _check_writable(args.out, args.force)
    print(sweep_plot(rows, args.y, args.x, out, args.hue, False if args.linear_y else None))
    return 0
