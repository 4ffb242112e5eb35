"""Command-line interface: ``pwflow simulate | summary | plot | animate | reproduce | sweep |
phase-diagram | sweep-plot``.

Every subcommand is an entry of :data:`COMMANDS`, a registry ``name -> (add_arguments, run)``:
``add_arguments(parser)`` declares its options on an :class:`argparse.ArgumentParser` and
``run(args) -> int`` executes it and returns the exit status (the first line of ``run``'s
docstring is the subcommand's help).  :func:`register` adds a subcommand.

Exit statuses
-------------
0
    Success.
1
    A run stopped early (Zeno guard, step-size failure; the partial run is saved), a missing
    optional component (``pwflow.figures``), or an unexpected internal error.
2
    Bad input: invalid arguments, unknown dataset, unreadable run file, any ``ValueError``
    raised by the library.  One line ``pwflow: error: ...`` on stderr, never a traceback.
130, 143, 129
    Interrupted by Ctrl-C (SIGINT), SIGTERM or SIGHUP (128 + the signal number).
    ``simulate`` and ``resume`` save what was computed first (status ``-3``).

``--debug`` (before or after the subcommand) prints the traceback of any error.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

__all__ = ["main", "COMMANDS", "register", "build_parser", "CLIError", "load_run"]

PROG = "pwflow"

#: Exit status of a run interrupted by Ctrl-C (128 + SIGINT, the shell convention).
EXIT_INTERRUPTED = 130
#: Exit status of bad input.
EXIT_USAGE = 2
#: Exit status of a run that stopped early or an internal error.
EXIT_FAILURE = 1

BUILTIN_DATASETS = ("three-points", "stewart", "assumption3")


class CLIError(Exception):
    """An error reported as one line ``pwflow: error: ...`` with exit status ``code``."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    """Argument parser that raises :class:`CLIError` instead of printing usage and exiting.

    Negative numbers in exponent notation (``--scale -1e-3``) are read as values, not as
    options, so that they reach the range check with a clear message.  Options are not
    abbreviated: argparse's prefix matching read ``--m 100`` (meant as the width) as
    ``--method 100`` and refused it with a message about ``--method``; an option that is not
    spelled out is now an unrecognised argument, named as such.
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        import re

        self._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")

    def error(self, message: str):  # type: ignore[override]
        raise CLIError(f"{message} (see '{self.prog} --help')")


# ---------------------------------------------------------------------------- argument types
def _number(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def positive_float(text: str) -> float:
    """A finite number ``> 0``."""
    v = _number(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return v


def nonnegative_float(text: str) -> float:
    """A finite number ``>= 0``."""
    v = _number(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return v


def unit_interval(text: str) -> float:
    """A number in ``[0, 1]`` (the leaky-ReLU slope ``γ`` of Eq. (1))."""
    v = _number(text)
    if not 0 <= v <= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text!r}")
    return v


def _int_at_least(text: str, lo: int) -> int:
    """An integer ``>= lo``, also written in scientific notation where its value is an exact
    integer (``--width 2e5``, as the paper writes widths; the sweep spec's TOML accepts ``2e5``
    too); ``2.5`` or ``1e400`` are refused."""
    try:
        v = int(text)
    except ValueError:
        v = _integral_float(text)
        if v is None:
            raise argparse.ArgumentTypeError(
                f"expected an integer >= {lo}, got {text!r}") from None
    if v < lo:
        raise argparse.ArgumentTypeError(f"must be an integer >= {lo}, got {text!r}")
    return v


def _integral_float(text: str) -> int | None:
    """The integer a float literal such as ``2e5`` denotes, or ``None`` where it is not an
    exact integer below 2**53 (where every integer is a float)."""
    try:
        f = float(text)
    except ValueError:
        return None
    if not math.isfinite(f) or f != int(f) or abs(f) > 2.0**53:
        return None
    return int(f)


def positive_int(text: str) -> int:
    """An integer ``>= 1``."""
    return _int_at_least(text, 1)


def seed_int(text: str) -> int:
    """A non-negative integer seed (numpy's ``default_rng`` rejects negative seeds)."""
    return _int_at_least(text, 0)


def time_list(text: str) -> list[float]:
    """Comma-separated finite times ``>= 0``, e.g. ``0,10,100``."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(f"expected comma-separated times, got {text!r}")
    return [nonnegative_float(p) for p in parts]


# ---------------------------------------------------------------------------- registry
AddArguments = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]

#: Subcommands: name -> (add_arguments(parser), run(args) -> int).
COMMANDS: dict[str, tuple[AddArguments, Run]] = {}


def register(name: str, add_arguments: AddArguments, run: Run) -> None:
    """Add (or replace) the subcommand ``name``; the first docstring line of ``run`` is its help."""
    if not name or not name.replace("-", "").isalnum():
        raise ValueError(f"subcommand name must be alphanumeric (dashes allowed), got {name!r}")
    COMMANDS[name] = (add_arguments, run)


def _help_of(run: Run) -> str:
    doc = (run.__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per entry of :data:`COMMANDS`."""
    from . import __version__

    parser = _Parser(
        prog=PROG,
        description="Exact gradient-flow trajectories of two-layer (leaky) ReLU networks.",
        epilog="Exit status: 0 ok, 1 run stopped early / internal error, 2 bad input, "
        "130/143/129 interrupted by SIGINT/SIGTERM/SIGHUP.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (add_arguments, run) in COMMANDS.items():
        help_ = _help_of(run)
        p = sub.add_parser(name, help=help_, description=help_)
        # default=SUPPRESS so that the subparser does not reset a --debug given before it
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show tracebacks of errors")
        add_arguments(p)
        p.set_defaults(_run=run)
    return parser


# ---------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        parser = build_parser()
        try:
            args, extra = parser.parse_known_args(argv)
        except SystemExit as exc:  # --help / --version
            return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
        if extra:  # named with the subcommand's help, not the top level's
            cmd = getattr(args, "command", None)
            raise CLIError(f"unrecognized arguments: {' '.join(extra)} (options are not "
                           f"abbreviated; see '{PROG}{' ' + cmd if cmd else ''} --help')")
        debug = bool(getattr(args, "debug", False))
        if getattr(args, "_run", None) is None:
            raise CLIError(
                f"a subcommand is required: {', '.join(COMMANDS)} (see '{PROG} --help')"
            )
        from .signals import terminations_as_interrupts

        with terminations_as_interrupts():
            return int(args._run(args))
    except CLIError as err:
        if debug:
            traceback.print_exc()
        _error_line(str(err))
        return err.code
    except ValueError as err:
        if debug:
            traceback.print_exc()
        _error_line(str(err))
        return EXIT_USAGE
    except KeyboardInterrupt as err:
        from .signals import describe, exit_status

        if debug:
            traceback.print_exc()
        sys.stderr.write(f"\n{PROG}: {describe(err)}\n")
        return exit_status(err)
    except BrokenPipeError:  # `pwflow summary RUN | head -1`: the reader left, not an error
        _silence_stdout()
        return EXIT_FAILURE
    except MemoryError:
        if debug:
            traceback.print_exc()
        _error_line("out of memory (try a smaller --width or --t-max)")
        return EXIT_FAILURE
    except Exception as err:  # noqa: BLE001 - the CLI never shows a traceback unless asked
        if debug:
            traceback.print_exc()
            _error_line(f"internal error: {type(err).__name__}: {err}")
        else:
            _error_line(
                f"internal error: {type(err).__name__}: {err} "
                f"(run again with --debug for the traceback)"
            )
        return EXIT_FAILURE


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file descriptor (e.g. captured)
        pass


def _error_line(message: str) -> None:
    one_line = " ".join(str(message).split())
    sys.stderr.write(f"{PROG}: error: {one_line}\n")
    sys.stderr.flush()


# ---------------------------------------------------------------------------- shared helpers
def load_run(path: str | Path):
    """Load a trajectory file or ``--store`` folder, turning every failure into :class:`CLIError`."""
    from .trajectory import Trajectory

    path = Path(path)
    if not path.exists():
        raise CLIError(f"run file {str(path)!r} does not exist")
    if path.is_dir() and not any((path / f).is_file() for f in ("run.npz", "progress.npz")):
        raise CLIError(f"run file {str(path)!r} is a directory but not a pwflow store "
                       "(no run.npz or progress.npz in it)")
    try:
        return Trajectory.load(path)
    except ValueError as err:  # Trajectory.load names the file and the reason
        raise CLIError(str(err)) from None
    except Exception as err:  # noqa: BLE001 - missing or mistyped fields, a damaged archive
        raise CLIError(f"{path} is not a readable pwflow trajectory file "
                       f"({type(err).__name__}: {err})") from None


def _check_writable(path: Path, force: bool = False) -> Path:
    """Create the parent folder of ``path`` and check that a file can be written there.

    An existing ``path`` (a symlink included) is refused unless ``force``; a directory or a
    special file (``/dev/null``, a FIFO) always.
    """
    parent = path.parent
    if path.is_dir():
        raise CLIError(f"--out {str(path)!r} is a directory; give a file name")
    if path.exists() and not path.is_file():
        raise CLIError(f"--out {str(path)!r} is not a regular file; give a file name")
    if os.path.lexists(path) and not force:
        raise CLIError(f"--out {str(path)!r} already exists; pass --force to replace it")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CLIError(f"cannot create the folder of --out {str(path)!r}: {err}") from None
    if not os.access(parent, os.W_OK):
        raise CLIError(f"cannot write to the folder {str(parent)!r} of --out")
    return path


def _check_store(path: Path, force: bool = False) -> Path:
    """Create the ``--store`` folder (new or empty, or a previous store with ``force``)."""
    from .store import WRITE_PROBE, check_store_folder

    try:
        check_store_folder(path, force, name="--store", force_hint="--force")
    except ValueError as err:
        raise CLIError(str(err)) from None
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / WRITE_PROBE
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise CLIError(f"cannot write to --store {str(path)!r}: {err.strerror or err}") from None
    return path


def _npz_path(path: Path) -> Path:
    """The file name :meth:`Trajectory.save` writes for ``path`` (``.npz`` appended if needed)."""
    if path.suffix == ".npz":
        return path
    return path.with_suffix(path.suffix + ".npz") if path.suffix else path.with_suffix(".npz")


def _save_atomically(traj, path: Path) -> Path:
    """Write ``traj`` to ``path`` through a temporary file, with Ctrl-C held off meanwhile.

    A second Ctrl-C while the partial run is being written must not leave a truncated file.
    """
    final = _npz_path(path)
    # a plain name (not mkstemp, whose files are private): the run gets the umask's permissions
    tmp = str(final.with_name(f".{final.stem}.{os.getpid()}.tmp.npz"))
    from .signals import HANDLED

    in_main = _is_main_thread()
    held = (signal.SIGINT, *HANDLED)
    old = {s: signal.signal(s, signal.SIG_IGN) for s in held} if in_main else {}
    try:
        traj.save(tmp)
        os.replace(tmp, final)  # replaces a symlink at `final`, never its target
    except OSError as err:
        raise CLIError(f"cannot write {str(final)!r}: {err}") from None
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        for s, h in old.items():  # a handler installed outside Python reads as None
            signal.signal(s, h if h is not None else signal.SIG_DFL)
    return final


def _is_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def summary_dict(traj, path: Path | None = None) -> dict:
    """:meth:`Trajectory.summary` plus provenance (path, method, dataset, init, γ, loss)."""
    s = traj.summary()
    meta = traj.meta or {}
    ds = meta.get("dataset", {})
    out = {
        "path": None if path is None else str(path),
        "method": meta.get("method", "flow"),
        "dataset": ds.get("name") if isinstance(ds, dict) else ds,
        "init": meta.get("init", {}),
        "gamma": float(traj.gamma),
        "loss": traj.loss_name,
        **s,
    }
    if "lr" in meta:
        out["lr"] = meta["lr"]
    return out


def format_summary(s: dict) -> str:
    """Human-readable table of :func:`summary_dict`."""
    init = s.get("init") or {}
    init_txt = ", ".join(f"{k}={_fmt(v)}" for k, v in init.items()) if isinstance(init, dict) else str(init)
    kinds = s.get("events_by_kind") or {}
    kinds_txt = ", ".join(f"{k} {v}" for k, v in kinds.items()) or "none"
    rows = [
        ("run", s.get("path") or "-"),
        ("status", f"{s['status']} ({s['message']})"),
        ("method", s.get("method", "flow") + (f", lr = {_fmt(s['lr'])}" if "lr" in s else "")),
        ("dataset", f"{s.get('dataset')}  (n = {s['n']}, d = {s['d']})"),
        ("init", f"{init_txt}"),
        ("gamma, loss", f"{_fmt(s['gamma'])}, {s['loss']}"),
        ("t final", _fmt(s["t_final"])),
        ("final loss", _fmt(s["final_loss"])),
        ("events", f"{s['events']}  ({kinds_txt})"),
        ("Lemma 1 max drift", _fmt(s["lemma1_max_relative_drift"])),
        ("Lemma 1 enforced", "by the Lorentz projection of the propagators, which moved them by "
         f"at most {_fmt(s['max_lorentz_correction'])}; the drift above is measured on the "
         "stored neurons" if "max_lorentz_correction" in s else "-"),
        ("sliding residual", _fmt(s["max_sliding_residual"]) + "  (distance to the hyperplanes "
         "removed by the projection, relative to ‖z‖)" if "max_sliding_residual" in s else "-"),
        ("branch points", _branch_text(s)),
        ("max event residual", _fmt(s["max_event_residual"])),
        ("steps", str(s.get("n_steps", "-"))),
        ("wall time", f"{s['wall_time']:.3g} s" if "wall_time" in s else "-"),
    ]
    snapped = s.get("snapped_points")
    if snapped:
        rows.insert(4, ("snapped points", f"x_k, k = {snapped['points']}, made exactly parallel "
                        "to their class or onto the span of earlier points (moved "
                        f"{_fmt(snapped['max_relative_move'])} relative at most; the flow is "
                        "exact for the data so snapped)"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _branch_text(s: dict) -> str:
    nb = s.get("n_branch_points")
    if not nb:
        return ("none (every event and watch found one continuation of Eq. (2); see "
                "docs/integrator.md for the faces not watched)") if nb == 0 else "-"
    policy = (s.get("options") or {}).get("branch_policy", "min_norm")
    return (f"{nb}; from t = {_fmt(s['t_first_branch'])} the trajectory is one branch among "
            f"several (Eq. (2) has more than one continuation there), chosen by the "
            f"{policy!r} policy")


def _json_safe(obj):
    """Replace non-finite floats by ``None`` (strict JSON) and numpy scalars by Python ones."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _json_safe(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    return obj


# ---------------------------------------------------------------------------- simulate
def _add_simulate(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data and network")
    g.add_argument("--dataset", default="three-points", metavar="NAME|PATH",
                   help="three-points (Appendix B.1), stewart (Appendix B.2), assumption3 "
                   "(Assumption 3) or a .npz/.csv file (default: three-points)")
    g.add_argument("--width", type=positive_int, default=None, metavar="M",
                   help="number of neurons m, e.g. 2000 or 2e5 (default: 2000)")
    g.add_argument("--scale", type=positive_float, default=None, metavar="λ",
                   help="initialisation scale λ of Eq. (3) (default: 1e-3)")
    g.add_argument("--init", choices=("balanced", "dominated", "unbalanced"), default=None,
                   help="initialisation (default: balanced)")
    g.add_argument("--init-from", type=Path, default=None, metavar="FILE.npz",
                   help="start from the weights in FILE.npz (arrays W of shape (m, d) and a of "
                        "shape (m,)) instead of --init/--width/--scale")
    g.add_argument("--seed", type=seed_int, default=0, metavar="S",
                   help="seed of the initialisation and of random datasets (default: 0)")
    g.add_argument("--gamma", type=unit_interval, default=0.0, metavar="γ",
                   help="leaky-ReLU slope in [0, 1] (default: 0, ReLU)")
    g.add_argument("--loss", choices=("square", "logistic"), default="square",
                   help="square ½(ŷ−y)² or logistic (default: square)")
    g.add_argument("--eta", type=positive_float, default=None, metavar="η",
                   help="box size of Assumption 3, in (0, 1) (assumption3 only; default 0.1)")
    g.add_argument("--n-points", type=positive_int, default=None, metavar="N",
                   help="number of points (stewart only; default 40)")
    g.add_argument("--bias", action="store_true",
                   help="append the bias coordinate 1 to the inputs (dataset files only)")
    r = p.add_argument_group("run")
    r.add_argument("--t-max", type=nonnegative_float, default=4000.0, metavar="T",
                   help="final time (default: 4000)")
    r.add_argument("--method", choices=("flow", "gd"), default="flow",
                   help="exact subgradient flow (default) or plain gradient descent")
    r.add_argument("--lr", type=positive_float, default=None, metavar="LR",
                   help="step size (required with --method gd)")
    r.add_argument("--rtol", type=positive_float, default=None, metavar="R",
                   help="relative tolerance of the flow integrator (default: 1e-10)")
    r.add_argument("--atol", type=positive_float, default=None, metavar="A",
                   help="absolute tolerance of the flow integrator (default: 1e-12)")
    r.add_argument("--frozen-output", action="store_true",
                   help="integrate the idealised dynamics of Eq. (8) (h ≡ 0; flow only)")
    r.add_argument("--branch-policy", choices=("min_norm", "gd"), default=None,
                   help="continuation where a sliding mode turns repulsive and the flow is not "
                        "unique: stay on the hyperplane (min_norm, the default: the minimal-norm "
                        "subgradient, Condition 2 (ii)) or leave it like small-step gradient "
                        "descent (gd); flow only")
    r.add_argument("--snapshots", type=positive_int, default=None, metavar="N",
                   help="number of stored states, at geometric times (flow only; default: "
                        "up to 100, fewer for wide networks)")
    o = r.add_mutually_exclusive_group(required=True)
    o.add_argument("--out", type=Path, metavar="RUN.npz",
                   help="where to write the trajectory (.npz appended if missing)")
    o.add_argument("--store", type=Path, metavar="DIR",
                   help="stream the stored states to memory-mapped files in this new or empty "
                        "folder as they are computed (flow only; for wide or long runs)")
    _add_run_control(r)
    r.add_argument("--force", action="store_true",
                   help="replace an existing --out file or --store run")
    q = r.add_mutually_exclusive_group()
    q.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    q.add_argument("--progress", action="store_true",
                   help="progress bar on stderr even when it is not a terminal (default: only "
                        "on a terminal)")


def _add_run_control(r) -> None:
    """Options shared by ``simulate`` and ``resume``: checkpoints and the progress budget."""
    from .guard import STALL_STEPS

    r.add_argument("--checkpoint-every", type=positive_float, default=None, metavar="SECONDS",
                   help="with --store: write a checkpoint (event and step logs, resume point) "
                        "at the first snapshot time after this many seconds (default: 60)")
    r.add_argument("--stall-steps", type=positive_int, default=STALL_STEPS, metavar="N",
                   help="stop (status -5) when N steps advance t by less than 1e-4 of the "
                        f"remaining interval (default: {STALL_STEPS})")


def _dataset_from_args(args: argparse.Namespace):
    from .data import assumption3, load_dataset, stewart, three_points

    name = args.dataset
    key = name.replace("_", "-")
    if args.eta is not None and key != "assumption3":
        raise CLIError("--eta applies only to --dataset assumption3")
    if args.n_points is not None and key != "stewart":
        raise CLIError("--n-points applies only to --dataset stewart")
    if args.bias and key in BUILTIN_DATASETS:
        raise CLIError(f"--bias applies only to dataset files; {key} already has its bias coordinate")
    if key == "three-points":
        return three_points()
    if key == "stewart":
        return stewart(seed=args.seed, n=40 if args.n_points is None else args.n_points)
    if key == "assumption3":
        eta = 0.1 if args.eta is None else args.eta
        if not eta < 1:
            raise CLIError(f"argument --eta: must be in (0, 1), got {eta!r}")
        return assumption3(eta=eta, seed=args.seed)
    path = Path(name)
    if path.suffix in (".npz", ".csv") or path.exists():
        if not path.exists():
            raise CLIError(f"dataset file {name!r} does not exist")
        if path.is_dir():
            raise CLIError(f"dataset file {name!r} is a directory")
        try:
            return load_dataset(path, bias=args.bias)
        except (OSError, KeyError) as err:
            raise CLIError(f"cannot read dataset file {name!r}: {err}") from None
    raise CLIError(
        f"unknown dataset {name!r}; allowed: {', '.join(BUILTIN_DATASETS)} or a .npz/.csv file"
    )


def _run_simulate(args: argparse.Namespace) -> int:
    """Compute a trajectory (exact flow or gradient descent) and save it to an .npz file."""
    from .init import make_init

    if args.method == "gd":
        if args.lr is None:
            raise CLIError("--method gd needs --lr")
        for opt, val in (("--rtol", args.rtol), ("--atol", args.atol)):
            if val is not None:
                raise CLIError(f"{opt} applies only to --method flow")
        if args.frozen_output:
            raise CLIError("--frozen-output applies only to --method flow")
        if args.branch_policy is not None:
            raise CLIError("--branch-policy applies only to --method flow")
        for opt, val in (("--store", args.store), ("--snapshots", args.snapshots)):
            if val is not None:
                raise CLIError(f"{opt} applies only to --method flow")
    elif args.lr is not None:
        raise CLIError("--lr applies only to --method gd")
    if args.snapshots is not None and args.snapshots < 2:
        raise CLIError(f"argument --snapshots: must be >= 2, got {args.snapshots}")
    if args.method == "gd" and 0 < args.t_max < args.lr:
        raise CLIError(f"argument --lr: {args.lr:g} is larger than --t-max {args.t_max:g}; "
                       f"gradient descent would take no step")
    if args.checkpoint_every is not None and args.store is None:
        raise CLIError("--checkpoint-every applies only to --store runs")
    data = _dataset_from_args(args)
    init = _init_from_args(args, data.d, make_init)
    if args.store is not None:
        store = _check_store(args.store, args.force)
    else:
        if args.out.is_dir():
            raise CLIError(f"--out {str(args.out)!r} is a directory; give a file name")
        if args.out.exists() and not args.out.is_file():
            raise CLIError(f"--out {str(args.out)!r} is not a regular file; give a file name")
        out = _check_writable(_npz_path(args.out), args.force)
    progress = False if args.quiet else (True if args.progress else None)
    if args.method == "flow":
        from .integrator import simulate

        traj = simulate(
            data, init, args.t_max, gamma=args.gamma, loss=args.loss,
            rtol=1e-10 if args.rtol is None else args.rtol,
            atol=1e-12 if args.atol is None else args.atol,
            frozen_output=args.frozen_output, progress=progress,
            branch_policy=args.branch_policy or "min_norm",
            n_snapshots=args.snapshots, store=None if args.store is None else str(store),
            overwrite=args.force, checkpoint_every=args.checkpoint_every,
            stall_steps=args.stall_steps,
        )
    else:
        traj = _gd_trajectory(data, init, args, progress)
    path = store if args.store is not None else _save_atomically(traj, out)
    return _report(traj, path)


def _report(traj, path: Path) -> int:
    """Print the summary of a computed run; the exit status from its status."""
    s = summary_dict(traj, path)
    print(format_summary(s))
    sys.stdout.flush()
    if traj.status == 0:
        return 0
    from .integrator import Status

    if traj.status == int(Status.INTERRUPTED):
        from . import signals

        # gradient descent catches the interruption itself: the handler remembers the signal
        signum = int((traj.meta or {}).get("signal", signals.last_signal or signal.SIGINT))
        hint = (f" (continue it with '{PROG} resume {path}')"
                if (traj.meta or {}).get("method", "flow") == "flow" else "")
        sys.stderr.write(f"{PROG}: {traj.message.split(';')[0]}; the partial run is saved in "
                         f"{path}{hint}\n")
        return 128 + signum
    sys.stderr.write(f"{PROG}: run stopped at t = {traj.t[-1]:.6g}: {traj.message}; "
                     f"the partial run is saved in {path}\n")
    return EXIT_FAILURE


def _init_from_args(args: argparse.Namespace, d: int, make_init):
    """The initialisation: ``--init-from FILE`` or ``--init/--width/--scale/--seed``."""
    if args.init_from is None:
        return make_init(args.init or "balanced", 2000 if args.width is None else args.width,
                         d, 1e-3 if args.scale is None else args.scale, args.seed)
    for opt, val in (("--init", args.init), ("--width", args.width), ("--scale", args.scale)):
        if val is not None:
            raise CLIError(f"{opt} cannot be combined with --init-from (the file gives the "
                           f"weights)")
    from .init import load_init

    return load_init(args.init_from, d)


def _gd_trajectory(data, init, args: argparse.Namespace, progress: bool):
    """Run :func:`pwflow.gd.gradient_descent` and store it as a :class:`Trajectory`.

    The saved iterates become snapshots (``step_t`` = their times, no events); the activation
    patterns are those of the saved iterates (``sign <w_j, x_k>``).
    """
    try:
        from .gd import gradient_descent
    except ImportError as err:
        raise CLIError(f"--method gd needs pwflow.gd, which cannot be imported: {err}",
                       EXIT_FAILURE) from None
    from .integrator import Status
    from .model import activation, get_loss
    from .trajectory import Trajectory, versions

    res = gradient_descent(data, init, lr=args.lr, t_max=args.t_max, gamma=args.gamma,
                           loss=args.loss, progress=progress)
    X, y = np.asarray(data.X, float), np.asarray(data.y, float)
    k, m, _ = res.W.shape
    signs = np.sign(np.einsum("kmd,nd->kmn", res.W, X)).astype(np.int8)
    patterns, inverse = np.unique(signs.reshape(k * m, -1), axis=0, return_inverse=True)
    outputs = np.einsum("kmn,km->kn", activation(np.einsum("kmd,nd->kmn", res.W, X), args.gamma),
                        res.a)
    interrupted = bool(res.meta.get("interrupted", False))
    status = Status.INTERRUPTED if interrupted else Status.FINISHED
    message = f"gradient descent ran {res.steps} steps"
    if interrupted:
        from . import signals

        sig = signals.last_signal
        message = (f"interrupted by {signal.Signals(sig).name}" if sig else
                   "interrupted by the user (Ctrl-C)") + "; the trajectory so far is kept"
    events = {
        "t": np.zeros(0), "neuron": np.zeros(0, np.int64), "k": np.zeros(0, np.int64),
        "kind": np.zeros(0, np.int8), "residual": np.zeros(0),
        "from_pattern": np.zeros(0, np.int64), "to_pattern": np.zeros(0, np.int64),
    }
    meta = {
        "method": "gd",
        "lr": res.lr,
        "dataset": {"name": data.name, **{kk: v for kk, v in data.meta.items()
                                          if isinstance(v, (int, float, str, bool))}},
        "init": {"kind": init.kind, "scale": init.scale, "seed": init.seed, "m": init.m},
        "t_max": float(args.t_max),
        "gd": {"steps_requested": int(res.meta.get("steps_requested", res.steps)),
               "slope_at_zero": res.meta.get("slope_at_zero"), "interrupted": interrupted},
        "versions": versions(),
    }
    stats = {"n_steps": int(res.steps), "n_events": 0, "n_patterns": int(len(patterns)),
             "wall_time": float(res.wall_time)}
    return Trajectory(
        t=np.asarray(res.t, float), W=res.W, a=res.a,
        pattern=inverse.reshape(k, m).astype(np.int64), patterns=patterns,
        step_t=np.asarray(res.t, float), step_outputs=outputs, step_loss=np.asarray(res.loss),
        events=events, X=X, y=y, gamma=float(args.gamma), loss_name=get_loss(args.loss).name,
        status=int(status), message=message, stats=stats, meta=meta,
    )


# ---------------------------------------------------------------------------- resume
def _add_resume(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=Path, metavar="RUN",
                   help="a run file or --store folder written by simulate (partial or finished)")
    p.add_argument("--t-max", type=nonnegative_float, default=None, metavar="T",
                   help="final time (default: the run's own)")
    _add_run_control(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar on stderr")


def _run_resume(args: argparse.Namespace) -> int:
    """Continue an interrupted, killed or finished run (to --t-max) in the same file or store."""
    path = Path(args.run)
    traj = load_run(path)
    store = path if path.is_dir() else None
    if args.checkpoint_every is not None and store is None:
        raise CLIError("--checkpoint-every applies only to --store runs")
    if store is None:
        _check_writable(path, force=True)
    new = traj.resume(args.t_max, store=store, progress=not args.quiet,
                      checkpoint_every=args.checkpoint_every, stall_steps=args.stall_steps)
    out = store if store is not None else _save_atomically(new, path)
    return _report(new, out)


# ---------------------------------------------------------------------------- summary
def _add_summary(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=Path, metavar="RUN",
                   help="a trajectory file or --store folder written by simulate")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _run_summary(args: argparse.Namespace) -> int:
    """Print final loss, events, Lemma 1 drift, residuals, steps, wall time and status of a run."""
    traj = load_run(args.run)
    s = summary_dict(traj, args.run)
    if args.json:
        print(json.dumps(_json_safe(s), indent=2, allow_nan=False))
    else:
        print(format_summary(s))
    return 0


# ---------------------------------------------------------------------------- figures
def _figures():
    """Import :mod:`pwflow.figures` lazily (it needs matplotlib)."""
    import importlib

    try:
        figures = importlib.import_module("pwflow.figures")
    except ImportError as err:
        raise CLIError(
            f"this subcommand needs pwflow.figures (and matplotlib), which cannot be imported: "
            f"{err}",
            EXIT_FAILURE,
        ) from None
    return figures


def _check_times(times: list[float] | None, traj) -> list[float] | None:
    if times is None:
        return None
    lo, hi = float(traj.t[0]), float(traj.t[-1])
    bad = [t for t in times if not lo <= t <= hi]
    if bad:
        raise CLIError(f"argument --times: {bad[0]:g} is outside the run's interval [{lo:g}, {hi:g}]")
    return times


#: Image formats of ``plot --out`` (matplotlib's raster and vector formats).
_IMAGE_SUFFIXES = ("png", "pdf", "svg", "jpg", "jpeg", "eps", "ps", "tif", "tiff", "webp")


def _add_plot(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=Path, metavar="RUN",
                   help="a trajectory file or --store folder written by simulate")
    p.add_argument("--kind", choices=("function", "neurons", "loss", "all"), default="all",
                   help="what to plot (default: all)")
    p.add_argument("--times", type=time_list, default=None, metavar="t1,t2,...",
                   help="snapshot times (within the run's interval)")
    p.add_argument("--out", type=Path, required=True, metavar="FILE",
                   help="image file to write, with its format's suffix (.png, .pdf, .svg)")
    p.add_argument("--force", action="store_true", help="replace an existing --out file")


def _run_plot(args: argparse.Namespace) -> int:
    """Plot a run: the learnt function, the neurons, the loss, or all three."""
    if args.out.suffix.lower().lstrip(".") not in _IMAGE_SUFFIXES:
        raise CLIError(f"argument --out: {str(args.out)!r} needs an image suffix "
                       f"({', '.join('.' + x for x in _IMAGE_SUFFIXES)})")
    figures = _figures()
    traj = load_run(args.run)
    times = _check_times(args.times, traj)
    out = _check_writable(args.out, args.force)
    if os.path.lexists(out):  # --force: replace a symlink itself, never write through it
        os.unlink(out)
    path = figures.plot_run(traj, args.kind, times, out)
    print(path)
    return 0


def _add_animate(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=Path, metavar="RUN",
                   help="a trajectory file or --store folder written by simulate")
    p.add_argument("--kind", choices=("neurons", "function"), default="neurons",
                   help="what to animate (default: neurons)")
    p.add_argument("--out", type=Path, required=True, metavar="FILE.gif|FILE.mp4",
                   help="animation file to write (.gif or .mp4)")
    p.add_argument("--frames", type=positive_int, default=60, metavar="N",
                   help="number of frames (default: 60)")
    p.add_argument("--fps", type=positive_int, default=10, metavar="F",
                   help="frames per second (default: 10)")
    p.add_argument("--force", action="store_true", help="replace an existing --out file")


def _run_animate(args: argparse.Namespace) -> int:
    """Animate a run (neurons or learnt function over time) as a GIF or MP4."""
    if args.out.suffix.lower() not in (".gif", ".mp4"):
        raise CLIError(f"argument --out: must end in .gif or .mp4, got {str(args.out)!r}")
    figures = _figures()
    traj = load_run(args.run)
    out = _check_writable(args.out, args.force)
    if os.path.lexists(out):  # --force: replace a symlink itself, never write through it
        os.unlink(out)
    path = figures.animate_run(traj, args.kind, out, frames=args.frames, fps=args.fps)
    print(path)
    return 0


def _add_reproduce(p: argparse.ArgumentParser) -> None:
    p.add_argument("figure", choices=("figure1", "figure2", "figure3"),
                   help="which figure of the paper")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    p.add_argument("--width", type=positive_int, default=None, metavar="M",
                   help="number of neurons (default: the figure's)")
    p.add_argument("--scale", type=positive_float, default=None, metavar="λ",
                   help="initialisation scale (default: the figure's)")
    p.add_argument("--t-max", type=nonnegative_float, default=None, metavar="T",
                   help="final time (default: the figure's)")
    p.add_argument("--seed", type=seed_int, default=0, metavar="S", help="seed (default: 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bar on stderr")


def _run_reproduce(args: argparse.Namespace) -> int:
    """Recompute a figure of the paper (runs the simulations, writes the images)."""
    figures = _figures()
    if args.out.exists() and not args.out.is_dir():
        raise CLIError(f"argument --out: {str(args.out)!r} exists and is not a directory")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CLIError(f"cannot create --out {str(args.out)!r}: {err}") from None
    paths = figures.reproduce(args.figure, args.out, args.width, args.scale, args.t_max,
                              args.seed, False if args.quiet else None)  # None: on a terminal
    for path in paths:
        print(path)
    return 0


register("simulate", _add_simulate, _run_simulate)
register("resume", _add_resume, _run_resume)
register("summary", _add_summary, _run_summary)
register("plot", _add_plot, _run_plot)
register("animate", _add_animate, _run_animate)
register("reproduce", _add_reproduce, _run_reproduce)

# sweeps (pwflow.sweeps.commands imports no Dask, pyarrow or matplotlib until a command runs)
from .sweeps import commands as _sweeps  # noqa: E402

register("sweep", _sweeps.add_sweep, _sweeps.run_sweep)
register("phase-diagram", _sweeps.add_phase_diagram, _sweeps.run_phase_diagram)
register("sweep-plot", _sweeps.add_sweep_plot, _sweeps.run_sweep_plot)
