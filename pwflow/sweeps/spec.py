"""The SPEC of a sweep: a TOML file naming a dataset, grid axes and fixed options.

Parsing validates everything before any run starts: a bad SPEC raises one
:class:`ValueError` whose message names the file, the table and key, what was given and what
is allowed.  See ``docs/sweeps.md`` for the format.

Example::

    [dataset]
    name = "three-points"          # three-points | assumption3 | stewart | a .npz/.csv path

    [grid]                         # every combination is one run
    scale = { log = [1e-7, 1.0], num = 8 }
    width = [200, 2000]
    seed = [0, 1, 2, 3]

    [fixed]                        # the same for every run
    t_max = 4000
    init = "balanced"
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

__all__ = [
    "AXES",
    "OPTIONS",
    "ClassifyRule",
    "DatasetSpec",
    "RunOptions",
    "RunPoint",
    "SweepSpec",
    "load_spec",
    "parse_spec",
]

BUILTIN = ("three-points", "assumption3", "stewart")
METHODS = ("flow", "gd")
LOSSES = ("square", "logistic")
INITS = ("balanced", "dominated", "unbalanced")


# ------------------------------------------------------------------------- value checkers
def _real(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"expected a number, got {v!r}")
    v = float(v)
    if not math.isfinite(v):
        raise ValueError(f"expected a finite number, got {v!r}")
    return v


def _positive(v: Any) -> float:
    v = _real(v)
    if v <= 0:
        raise ValueError(f"must be > 0, got {v!r}")
    return v


def _nonnegative(v: Any) -> float:
    v = _real(v)
    if v < 0:
        raise ValueError(f"must be >= 0, got {v!r}")
    return v


def _unit(v: Any) -> float:
    v = _real(v)
    if not 0 <= v <= 1:
        raise ValueError(f"must be in [0, 1], got {v!r}")
    return v


def _open_unit(v: Any) -> float:
    v = _real(v)
    if not 0 < v < 1:
        raise ValueError(f"must be in (0, 1), got {v!r}")
    return v


def _epsilon(v: Any) -> float:
    v = _real(v)
    if not 0 < v < 1 / 3:
        raise ValueError(f"must be in (0, 1/3), got {v!r}")
    return v


def _int_at_least(lo: int):
    def check(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or int(v) != v:
            raise ValueError(f"expected an integer >= {lo}, got {v!r}")
        if v < lo:
            raise ValueError(f"must be an integer >= {lo}, got {v!r}")
        return int(v)

    return check


def _choice(allowed: tuple[str, ...]):
    def check(v: Any) -> str:
        if v not in allowed:
            raise ValueError(f"got {v!r}; allowed: {', '.join(allowed)}")
        return str(v)

    return check


def _boolean(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"expected true or false, got {v!r}")
    return v


#: Grid axes: name -> (checker, default, meaning).  ``None`` defaults mean "not applicable".
AXES: dict[str, tuple[Any, Any, str]] = {
    "scale": (_positive, 1e-3, "initialisation scale λ of Eq. (3), > 0"),
    "width": (_int_at_least(1), 2000, "number of neurons m, integer >= 1"),
    "gamma": (_unit, 0.0, "leaky-ReLU slope γ in [0, 1]"),
    "init": (_choice(INITS), "balanced", "initialisation: " + ", ".join(INITS)),
    "seed": (_int_at_least(0), 0, "seed of the initialisation and of random datasets, >= 0"),
    "eta": (_open_unit, None, "box size η of Assumption 3 in (0, 1) (assumption3 only)"),
    "n": (_int_at_least(1), None, "number of points (stewart only)"),
    "t_max": (_nonnegative, 4000.0, "final time, >= 0"),
    "method": (_choice(METHODS), "flow", "flow (exact) or gd (gradient descent)"),
    "lr": (_positive, None, "step size of gradient descent, > 0 (method gd only)"),
}

#: Fixed-only options: name -> (checker, default, meaning).
OPTIONS: dict[str, tuple[Any, Any, str]] = {
    "loss": (_choice(LOSSES), "square", "square ½(ŷ−y)² or logistic"),
    "rtol": (_positive, 1e-10, "relative tolerance of the flow integrator"),
    "atol": (_positive, 1e-12, "absolute tolerance of the flow integrator"),
    "snapshots": (_int_at_least(2), 40, "number of stored states (flow only)"),
    "frozen_output": (_boolean, False, "integrate the idealised dynamics of Eq. (8)"),
    "phases": (_boolean, False, "locate τ₂, τ₃ of Section 4.1 (square loss, ReLU; slower)"),
    "epsilon": (_epsilon, 0.25, "ε of Theorem 1 for τ = −ε ln λ / D_max, in (0, 1/3)"),
    "eps2": (_positive, 0.05, "ε₂ of Lemma 5 (τ₂)"),
    "eps3": (_positive, 0.05, "ε₃ of Lemma 6 (τ₃)"),
    "delta_prime": (_positive, 0.05, "δ' of Lemma 6 (τ₃)"),
}

#: Classification tolerances: name -> (checker, default, meaning).
CLASSIFY: dict[str, tuple[Any, Any, str]] = {
    "global_tol": (_positive, 1e-4, "global minimum: L(T) <= global_tol · L(0-function)"),
    "spurious_tol": (_positive, 1e-3,
                     "spurious: |L(T) − L_β*|, L(T/2) − L(T) <= spurious_tol · L(0-function)"),
}

def _folder(v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise ValueError(f"expected a folder path, got {v!r}")
    return v


SWEEP: dict[str, tuple[Any, Any, str]] = {
    "retries": (_int_at_least(0), 2, "retries of a run whose task raised"),
    "out": (_folder, None, "default sweep folder (relative to the SPEC file) when --out is "
                           "not given"),
}

TABLES = ("dataset", "grid", "fixed", "classify", "sweep")


# ------------------------------------------------------------------------- frozen records
@dataclass(frozen=True)
class DatasetSpec:
    """The dataset of a sweep: a built-in name or a resolved file path (and ``bias``)."""

    name: str
    path: str | None = None
    bias: bool = False

    @property
    def label(self) -> str:
        return self.name if self.path is None else Path(self.path).name


@dataclass(frozen=True)
class RunOptions:
    """Options fixed across the sweep that are not grid axes (see :data:`OPTIONS`)."""

    loss: str = "square"
    rtol: float = 1e-10
    atol: float = 1e-12
    snapshots: int = 40
    frozen_output: bool = False
    phases: bool = False
    epsilon: float = 0.25
    eps2: float = 0.05
    eps3: float = 0.05
    delta_prime: float = 0.05


@dataclass(frozen=True)
class ClassifyRule:
    """Tolerances of the outcome classification (see :func:`pwflow.sweeps.classify`)."""

    global_tol: float = 1e-4
    spurious_tol: float = 1e-3


@dataclass(frozen=True)
class RunPoint:
    """One grid point: everything a worker needs to build the data, the init and run."""

    dataset: DatasetSpec
    scale: float
    width: int
    gamma: float
    init: str
    seed: int
    eta: float | None
    n: int | None
    t_max: float
    method: str
    lr: float | None
    options: RunOptions

    def params(self) -> dict:
        """The axis values (plain types), one entry per axis of :data:`AXES`."""
        return {k: getattr(self, k) for k in AXES}

    @property
    def run_id(self) -> str:
        """Stable id: 16 hex digits of the SHA-256 of the point's canonical JSON."""
        blob = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SweepSpec:
    """A parsed, validated SPEC: dataset, grid axes (tuples of values), fixed values."""

    dataset: DatasetSpec
    axes: tuple[tuple[str, tuple], ...]
    fixed: tuple[tuple[str, Any], ...]
    options: RunOptions = field(default_factory=RunOptions)
    classify: ClassifyRule = field(default_factory=ClassifyRule)
    retries: int = 2
    source: str = "<dict>"
    out: str | None = None

    def points(self) -> list[RunPoint]:
        """All grid points, in the order of the axes (the last axis varies fastest)."""
        fixed = dict(self.fixed)
        names = [k for k, _ in self.axes]
        out = []
        for combo in itertools.product(*(v for _, v in self.axes)):
            vals = {**fixed, **dict(zip(names, combo, strict=True))}
            if vals["method"] == "flow":
                vals["lr"] = None
            out.append(RunPoint(dataset=self.dataset, options=self.options, **vals))
        return out

    def identity(self) -> dict:
        """What must not change when a sweep folder is reused: dataset, fixed values, options."""
        return {"dataset": asdict(self.dataset), "fixed": dict(self.fixed),
                "options": asdict(self.options)}

    @property
    def axis_names(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.axes)


# ------------------------------------------------------------------------- parsing
def _toml():
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    return tomllib


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a SPEC file (TOML); every problem is one :class:`ValueError` line."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"SPEC file {str(path)!r} does not exist")
    if path.is_dir():
        raise ValueError(f"SPEC file {str(path)!r} is a directory; give a .toml file")
    try:
        with path.open("rb") as fh:
            raw = _toml().load(fh)
    except OSError as err:
        raise ValueError(f"cannot read SPEC file {str(path)!r}: {err.strerror or err}") from None
    except Exception as err:  # noqa: BLE001 - tomllib.TOMLDecodeError, without importing it
        raise ValueError(f"SPEC file {str(path)!r} is not valid TOML: {err}") from None
    return parse_spec(raw, source=str(path), base=path.parent)


def _expand(name: str, value: Any, where: str) -> tuple:
    """A grid axis value: a list, a scalar, or ``{log|lin = [lo, hi], num = N}``."""
    if isinstance(value, Mapping):
        kinds = [k for k in ("log", "lin") if k in value]
        extra = set(value) - {"log", "lin", "num"}
        if len(kinds) != 1 or extra or "num" not in value:
            raise ValueError(f"{where}: a range is {{log = [lo, hi], num = N}} or "
                             f"{{lin = [lo, hi], num = N}}, got {dict(value)!r}")
        kind = kinds[0]
        ends, num = value[kind], value["num"]
        if not (isinstance(ends, list) and len(ends) == 2):
            raise ValueError(f"{where}: '{kind}' must be a list [lo, hi], got {ends!r}")
        lo, hi = (_real(e) for e in ends)
        if isinstance(num, bool) or not isinstance(num, int) or num < 1:
            raise ValueError(f"{where}: 'num' must be an integer >= 1, got {num!r}")
        if kind == "log" and not (lo > 0 and hi > 0):
            raise ValueError(f"{where}: a log range needs lo, hi > 0, got [{lo!r}, {hi!r}]")
        vals = np.geomspace(lo, hi, num) if kind == "log" else np.linspace(lo, hi, num)
        if name in ("width", "n", "seed"):
            vals = np.unique(np.rint(vals)).astype(int)
        items = [v.item() for v in vals]
    elif isinstance(value, list):
        items = value
    else:
        items = [value]
    if not items:
        raise ValueError(f"{where}: empty list; an axis needs at least one value")
    return tuple(items)


def _checked(table: dict, name: str, value: Any, where: str) -> Any:
    check = table[name][0]
    try:
        return check(value)
    except ValueError as err:
        raise ValueError(f"{where}: {err}; allowed: {table[name][2]}") from None


def _unknown(key: str, allowed, where: str) -> ValueError:
    return ValueError(f"{where}: unknown key {key!r}; allowed: {', '.join(allowed)}")


def _dataset(raw: Any, src: str, base: Path | None) -> DatasetSpec:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{src}: [dataset] is required, with name = one of "
                         f"{', '.join(BUILTIN)} or a .npz/.csv file path")
    for k in raw:
        if k not in ("name", "bias"):
            raise _unknown(k, ("name", "bias"), f"{src}: [dataset]")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{src}: [dataset] name must be one of {', '.join(BUILTIN)} or a "
                         f".npz/.csv file path, got {name!r}")
    bias = raw.get("bias", False)
    if not isinstance(bias, bool):
        raise ValueError(f"{src}: [dataset] bias must be true or false, got {bias!r}")
    key = name.replace("_", "-")
    if key in BUILTIN:
        if bias:
            raise ValueError(f"{src}: [dataset] bias applies only to dataset files; {key} "
                             "already has its bias coordinate")
        return DatasetSpec(key)
    path = Path(name)
    if not path.is_absolute() and base is not None:
        path = base / path
    if path.suffix not in (".npz", ".csv"):
        raise ValueError(f"{src}: [dataset] unknown dataset {name!r}; allowed: "
                         f"{', '.join(BUILTIN)} or a .npz/.csv file")
    if not path.is_file():
        raise ValueError(f"{src}: [dataset] dataset file {str(path)!r} does not exist")
    from ..data import load_dataset

    try:
        load_dataset(path, bias=bias)
    except (ValueError, OSError, KeyError) as err:
        raise ValueError(f"{src}: [dataset] cannot read {str(path)!r}: {err}") from None
    return DatasetSpec(path.stem, str(path.resolve()), bias)


def _section(raw: Mapping, name: str, src: str) -> Mapping:
    sec = raw.get(name, {})
    if not isinstance(sec, Mapping):
        raise ValueError(f"{src}: [{name}] must be a table, got {sec!r}")
    return sec


def parse_spec(raw: Mapping, source: str = "<dict>", base: Path | None = None) -> SweepSpec:
    """Validate a parsed SPEC (the TOML as a dict); see :func:`load_spec`."""
    src = f"SPEC {source}"
    if not isinstance(raw, Mapping):
        raise ValueError(f"{src}: expected a table of tables, got {type(raw).__name__}")
    for k in raw:
        if k not in TABLES:
            raise ValueError(f"{src}: unknown table [{k}]; allowed: "
                             + ", ".join(f"[{t}]" for t in TABLES))
    dataset = _dataset(raw.get("dataset"), src, base)
    grid, fixed_raw = _section(raw, "grid", src), _section(raw, "fixed", src)
    classify_raw, sweep_raw = _section(raw, "classify", src), _section(raw, "sweep", src)

    axes: dict[str, tuple] = {}
    for k, v in grid.items():
        if k not in AXES:
            extra = " (a fixed option: put it in [fixed])" if k in OPTIONS else ""
            raise ValueError(f"{src}: [grid] unknown axis {k!r}{extra}; allowed: "
                             + ", ".join(AXES))
        where = f"{src}: [grid] {k}"
        vals = tuple(_checked(AXES, k, x, where) for x in _expand(k, v, where))
        axes[k] = tuple(dict.fromkeys(vals))  # drop repeated values, keep order
    fixed: dict[str, Any] = {}
    opts: dict[str, Any] = {}
    for k, v in fixed_raw.items():
        where = f"{src}: [fixed] {k}"
        if k in AXES:
            if k in axes:
                raise ValueError(f"{where}: also a [grid] axis; give it in one table only")
            fixed[k] = _checked(AXES, k, v, where)
        elif k in OPTIONS:
            opts[k] = _checked(OPTIONS, k, v, where)
        else:
            raise _unknown(k, (*AXES, *OPTIONS), f"{src}: [fixed]")
    cls = {}
    for k, v in classify_raw.items():
        if k not in CLASSIFY:
            raise _unknown(k, CLASSIFY, f"{src}: [classify]")
        cls[k] = _checked(CLASSIFY, k, v, f"{src}: [classify] {k}")
    sw = {}
    for k, v in sweep_raw.items():
        if k not in SWEEP:
            raise _unknown(k, SWEEP, f"{src}: [sweep]")
        sw[k] = _checked(SWEEP, k, v, f"{src}: [sweep] {k}")

    _fill_defaults(dataset, axes, fixed, src)
    _check_consistency(dataset, axes, fixed, opts, src)
    options = RunOptions(**opts)
    out = sw.get("out")
    if out is not None and base is not None and not Path(out).is_absolute():
        out = str(base / out)
    spec = SweepSpec(dataset, tuple(axes.items()), tuple(sorted(fixed.items())), options,
                     ClassifyRule(**cls), sw.get("retries", 2), source, out)
    if not spec.points():  # pragma: no cover - every axis has >= 1 value
        raise ValueError(f"{src}: the grid is empty")
    return spec


def _fill_defaults(dataset: DatasetSpec, axes: dict, fixed: dict, src: str) -> None:
    for k, (_, default, _) in AXES.items():
        if k in axes or k in fixed:
            continue
        if k == "eta" and dataset.name == "assumption3":
            fixed[k] = 0.1
        elif k == "n" and dataset.name == "stewart":
            fixed[k] = 40
        else:
            fixed[k] = default


def _values(name: str, axes: dict, fixed: dict) -> tuple:
    return axes[name] if name in axes else (fixed[name],)


def _check_consistency(dataset: DatasetSpec, axes: dict, fixed: dict, opts: dict,
                       src: str) -> None:
    where = lambda k: f"[grid] {k}" if k in axes else f"[fixed] {k}"  # noqa: E731
    if dataset.name != "assumption3" and _values("eta", axes, fixed) != (None,):
        raise ValueError(f"{src}: {where('eta')} applies only to dataset assumption3")
    if dataset.name != "stewart" and _values("n", axes, fixed) != (None,):
        raise ValueError(f"{src}: {where('n')} applies only to dataset stewart")
    methods = _values("method", axes, fixed)
    lrs = _values("lr", axes, fixed)
    if "gd" in methods and None in lrs:
        raise ValueError(f"{src}: method gd needs lr (in [fixed] or [grid])")
    if "flow" in methods and "gd" not in methods and lrs != (None,):
        raise ValueError(f"{src}: {where('lr')} applies only to method gd")
    if "method" in axes and "lr" in axes:
        raise ValueError(f"{src}: [grid] has both method and lr; sweep lr in a gd-only SPEC")
    if "gd" in methods and opts.get("frozen_output"):
        raise ValueError(f"{src}: [fixed] frozen_output applies only to method flow")
