"""``proofs-checks``: command-line entry point of the verification package.

Subcommands are registered in :data:`SUBCOMMANDS` as ``name -> (add_arguments, run, help)``;
another module adds one by inserting its pair (``lemmas`` is picked up from
:mod:`proofs_checks.lemmas_cli` when that module exists).

Example::

    proofs-checks constants --dataset three-points --epsilon 0.25 --alpha0 0.5 --json

Exit status: 0 every verdict holds or is certified; 1 a verdict failed ("violated",
"counterexample"), is "inconclusive", or the computation failed; 2 bad input (one line
naming the option or file, never a traceback unless ``--debug``); 130/143/129 interrupted.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import traceback
from typing import Callable

import numpy as np

from pwflow.data import Dataset, get_dataset, load_dataset

from .assumptions import check_all
from .constants import Undefined, compute_constants
from .faces import geometry

__all__ = ["main", "SUBCOMMANDS"]


class _ArgError(Exception):
    pass


def _float_in(
    lo: float, hi: float, name: str, open_lo=True, open_hi=True
) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        ok = (v > lo if open_lo else v >= lo) and (v < hi if open_hi else v <= hi)
        if not (math.isfinite(v) and ok):
            raise argparse.ArgumentTypeError(
                f"{name} must be in {'(' if open_lo else '['}{lo}, "
                f"{hi}{')' if open_hi else ']'}, got {text!r}"
            )
        return v

    return parse


def _load(name: str, seed: int, eta: float | None) -> Dataset:
    key = name.replace("-", "_")
    if key in ("three_points", "stewart"):
        return get_dataset(key, seed=seed)
    if key == "assumption3":
        from pwflow.data import assumption3

        return assumption3(eta if eta is not None else 0.1, seed)
    try:
        data = load_dataset(name)
    except (OSError, ValueError) as e:
        raise _ArgError(
            f"--dataset: cannot load {name!r} (expected three-points, stewart, "
            f"assumption3 or a data file): {e}"
        ) from None
    return _check_magnitude(data, name)


#: Largest ``|x_k|`` accepted: the constants square and multiply inner products of the data.
MAX_ABS_X = 1e100


def _check_magnitude(data: Dataset, name: str) -> Dataset:
    big = float(np.max(np.abs(data.X)))
    if big > MAX_ABS_X:
        raise _ArgError(f"--dataset {name!r}: |x_k| reaches {big:.3g}; the constants need "
                        f"|x_k| <= {MAX_ABS_X:g} (products of the data overflow): rescale it")
    return data


def add_constants_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``proofs-checks constants``."""
    p.add_argument(
        "--dataset", default="three-points", help="three-points | stewart | assumption3 | PATH"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--eta",
        type=_float_in(0, 1, "--eta"),
        default=None,
        help="η of Assumption 3 (dataset assumption3 and the Assumption 3 check)",
    )
    p.add_argument("--epsilon", type=_float_in(0, 1 / 3, "--epsilon"), default=0.25)
    p.add_argument("--alpha0", type=_float_in(0, 1e100, "--alpha0", True, False), default=0.5)
    p.add_argument("--gamma", type=_float_in(0, 1, "--gamma", False, False), default=0.0)
    p.add_argument("--loss", choices=("square", "logistic"), default="square")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def _fmt(v) -> str:
    if isinstance(v, Undefined):
        return f"undefined ({v.reason})"
    if isinstance(v, np.ndarray):
        return np.array2string(v, precision=6)
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def run_constants(args: argparse.Namespace) -> int:
    """Print every constant, the extremal vectors with their type and the assumption verdicts."""
    data = _load(args.dataset, args.seed, args.eta)
    geo = geometry(data, args.loss, args.gamma)
    c = compute_constants(data, args.loss, args.gamma, args.epsilon, args.alpha0, geo=geo)
    eta = args.eta if args.eta is not None else (0.1 if args.dataset == "assumption3" else None)
    verdicts = check_all(data, args.loss, args.gamma, eta=eta, geo=geo)
    if args.json:
        out = c.to_dict()
        out["dataset"] = data.name
        out["assumptions"] = [json.loads(json.dumps(r.to_dict(), default=str)) for r in verdicts]
        print(json.dumps(out, indent=2, default=str))
        return 0
    print(
        f"dataset {data.name}: n={data.n}, d={data.d}, loss={args.loss}, γ={args.gamma}, "
        f"{c.n_faces} faces"
    )
    for k, v in c.values.items():
        print(f"  {k:22s} {_fmt(v)}")
    print("extremal vectors:")
    for e in c.extremal:
        print(f"  u={e.face.u.tolist()} D={_fmt(e.D)} sign={e.sign:+d} G={e.value:.6g} {e.kind}")
    print("assumptions:")
    for r in verdicts:
        print(f"  {r.name}: {'holds' if r.holds else 'FAILS'} (margin {r.margin:.4g})")
    return 0


def add_lemma8_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--eta", type=_float_in(0.0, 1.0, "--eta"), default=0.1,
                   help="box parameter of Assumption 3 (default 0.1)")
    p.add_argument("--max-boxes", type=int, default=200_000, help="subdivision budget")
    p.add_argument("--threshold", action="store_true",
                   help="also bisect for the largest η at which Assumptions 4-6 are certified")


def run_lemma8(args: argparse.Namespace) -> int:
    """Certify Lemma 8's obligations over the whole box (interval arithmetic, subdivision)."""
    from .lemma8 import certify_lemma8, find_eta_threshold

    if args.max_boxes < 1:
        raise ValueError(f"--max-boxes must be >= 1, got {args.max_boxes}")
    cert = certify_lemma8(args.eta, max_boxes=args.max_boxes)
    print(cert.table())
    verdict = cert.verdict(("A4", "A5", "A6"))
    print(f"Assumptions 4, 5, 6 over the whole box: {verdict}")
    if args.threshold:
        th = find_eta_threshold(max_boxes=min(args.max_boxes, 100_000))
        print(f"certified up to eta = {th.eta_certified:.6g}; fails at {th.eta_failed:.6g} "
              f"({th.binding})")
    failed = [r for r in cert.results if r.verdict != "certified"]
    if failed:
        kinds = sorted({r.verdict for r in failed})
        print(f"proofs-checks: lemma8: {len(failed)} obligation(s) not certified "
              f"({', '.join(kinds)}; first: {failed[0].name})", file=sys.stderr)
        return 1
    return 0


SUBCOMMANDS: dict[str, tuple[Callable, Callable, str]] = {
    "constants": (add_constants_arguments, run_constants, "data-dependent constants of the paper"),
    "lemma8": (add_lemma8_arguments, run_lemma8,
               "certify Lemma 8 over the boxes of Assumption 3 (interval arithmetic)"),
}

try:  # the lemma checks of a later issue, when present
    from . import lemmas_cli as _lemmas

    SUBCOMMANDS["lemmas"] = (_lemmas.add_arguments, _lemmas.run, "statement checks on a trajectory")
except ImportError:  # pragma: no cover
    pass


class _Parser(argparse.ArgumentParser):
    """Argument parser whose errors are one line (:func:`main`); options are not abbreviated
    (a prefix such as ``--m`` is not silently read as another option)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # no usage dump + SystemExit(2) handled in main
        raise _ArgError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="proofs-checks", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (add, _run, help_) in SUBCOMMANDS.items():
        add(sub.add_parser(name, help=help_))
    return p


def _error(message: str) -> None:
    print(f"proofs-checks: error: {' '.join(str(message).split())}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (2 on bad input, 1 on a failed computation; one
    line on stderr, a traceback only with ``--debug``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    try:
        from pwflow.signals import terminations_as_interrupts

        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help
            return int(exc.code or 0) if not isinstance(exc.code, str) else 2
        with terminations_as_interrupts():
            return int(SUBCOMMANDS[args.command][1](args))
    except (_ArgError, ValueError) as e:
        if debug:
            traceback.print_exc()
        _error(e)
        return 2
    except KeyboardInterrupt as e:
        from pwflow.signals import describe, exit_status

        print(f"\nproofs-checks: {describe(e)}", file=sys.stderr)
        return exit_status(e)
    except BrokenPipeError:
        return 1
    except (ArithmeticError, MemoryError) as e:
        if debug:
            traceback.print_exc()
        where = traceback.extract_tb(e.__traceback__)[-1].name if e.__traceback__ else "?"
        _error(f"the computation failed ({type(e).__name__} in {where}: {e}); the data may be "
               f"degenerate for these constants (rerun with --debug for the traceback)")
        return 1
    except Exception as e:  # noqa: BLE001 - no traceback unless asked
        if debug:
            traceback.print_exc()
        _error(f"internal error: {type(e).__name__}: {e} (rerun with --debug for the traceback)")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
