"""Datasets: validation, the bias coordinate, and the paper's examples (Section 4, Appendix B).

A :class:`Dataset` holds ``X`` of shape ``(n, d)`` (rows ``x_k``) and labels ``y`` of shape
``(n,)``.  For 1-D data with a bias, ``x̃ = (x, 1)`` (Section 2): use :func:`with_bias`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "Dataset",
    "with_bias",
    "three_points",
    "assumption3",
    "stewart",
    "STEWART_KNOTS",
    "load_dataset",
    "get_dataset",
    "DATASETS",
]

Array = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Dataset:
    """Validated training data ``(x_k, y_k)_{k in [n]}``.

    Raises ``ValueError`` on non-finite values, inconsistent shapes, an empty set or a zero
    feature vector (it lies on every hyperplane and has no activation cone).

    Repeated points are data like any other (a repeated input with two labels, say): their
    hyperplanes coincide, and the flow treats them as one class of parallel points, one slope
    on the common hyperplane (``docs/paper-readings.md``, N3).  With the square loss, ``q``
    copies of ``x`` with labels ``y_i`` train as the one point ``√q x`` with label ``√q ȳ``
    (``ȳ`` their mean) in their place: that run reaches at time ``t (n − q + 1) / n`` the
    state of this one at ``t`` (tested).
    """

    X: Array
    y: Array
    name: str = "custom"
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for name in ("X", "y"):
            if np.iscomplexobj(getattr(self, name)):
                raise ValueError(f"{name} is complex; the data must be real numbers")
        X = np.array(self.X, dtype=float, copy=True)
        y = np.array(self.y, dtype=float, copy=True)
        if X.ndim == 1:
            X = X[:, None]
        if X.ndim != 2:
            raise ValueError(f"X must be a 2-D array of shape (n, d), got shape {X.shape}")
        if y.ndim != 1:
            raise ValueError(f"y must be a 1-D array of shape (n,), got shape {y.shape}")
        if X.shape[0] != y.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]} labels")
        if X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(f"the dataset is empty (X has shape {X.shape})")
        if not np.all(np.isfinite(X)):
            raise ValueError("X contains NaN or infinite values")
        if not np.all(np.isfinite(y)):
            raise ValueError("y contains NaN or infinite values")
        zero = np.all(X == 0, axis=1)  # not via the norm, which overflows for |x| > 1e154
        if np.any(zero):
            k = int(np.flatnonzero(zero)[0])
            raise ValueError(f"x_{k} is the zero vector: it has no activation hyperplane")
        X.setflags(write=False)
        y.setflags(write=False)
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y)

    @property
    def n(self) -> int:
        """Number of data points."""
        return int(self.X.shape[0])

    @property
    def d(self) -> int:
        """Input dimension (including the bias coordinate if any)."""
        return int(self.X.shape[1])

    def save(self, path: str | Path) -> None:
        """Write ``X``, ``y`` and the name to an ``.npz`` file (no pickle)."""
        np.savez(Path(path), X=self.X, y=self.y, name=np.array(self.name))


def with_bias(x: ArrayLike) -> Array:
    """Append the bias coordinate 1 to each input: ``x̃ = (x, 1)`` (Section 2)."""
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    return np.hstack([x, np.ones((x.shape[0], 1))])


def three_points() -> Dataset:
    """The 3-point example of Section 6 / Appendix B.1.

    ``x = (−0.75, −0.5, 0.125)``, ``y = (1.1, 0.1, 0.8)``, with bias coordinate 1.
    """
    x = np.array([-0.75, -0.5, 0.125])
    y = np.array([1.1, 0.1, 0.8])
    return Dataset(with_bias(x), y, name="three_points", meta={"source": "Appendix B.1"})


def assumption3(eta: float = 0.1, seed: int = 0) -> Dataset:
    """Three points drawn uniformly in the boxes of Assumption 3 (Section 4).

    ``x_1 ∈ (−1, −1+η] × [1, 1+η]``, ``y_1 ∈ [1, 1+η]``; ``x_2 ∈ [−η, η] × [1−η, 1+η]``,
    ``y_2 ∈ (0, η]``; ``x_3 ∈ [1−η, 1) × [1, 1+η]``, ``y_3 ∈ [1, 1+η]``.
    Theorem 2 needs ``η < 1/6``.
    """
    eta = float(eta)
    if not np.isfinite(eta) or not 0 < eta < 1:
        raise ValueError(f"eta must be in (0, 1), got {eta!r}")
    rng = np.random.default_rng(seed)
    u = rng.uniform(size=9)
    x1 = [-1 + eta * (1 - u[0]), 1 + eta * u[1]]  # (−1, −1+η]
    x2 = [-eta + 2 * eta * u[2], 1 - eta + 2 * eta * u[3]]
    x3 = [1 - eta * (1 - u[4]) if u[4] < 1 else 1 - eta, 1 + eta * u[5]]  # [1−η, 1)
    x3[0] = min(x3[0], np.nextafter(1.0, 0.0))
    x1[0] = max(x1[0], np.nextafter(-1.0, 0.0))
    y = [1 + eta * u[6], eta * (1 - u[7]) if u[7] < 1 else eta, 1 + eta * u[8]]  # y2 ∈ (0, η]
    y[1] = max(y[1], np.finfo(float).tiny)
    return Dataset(
        np.array([x1, x2, x3]),
        np.array(y),
        name="assumption3",
        meta={"eta": eta, "seed": seed, "source": "Assumption 3"},
    )


#: Knots of the piecewise-linear teacher of Appendix B.2.
STEWART_KNOTS = (
    np.array([-1.0, -0.7, -0.55, -0.4, 0.0, 0.5, 0.6, 0.7, 1.0]),
    np.array([0.0, 0.7, 0.5, 1.0, 0.0, 1.0, 0.6, 0.7, 0.0]),
)


def stewart(seed: int = 0, n: int = 40) -> Dataset:
    """The Stewart et al. example of Appendix B.2.

    ``n`` inputs uniform in ``[−1, 1]``, labels by piecewise-linear interpolation through
    :data:`STEWART_KNOTS`, bias coordinate 1.
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, size=int(n))
    y = np.interp(x, *STEWART_KNOTS)
    return Dataset(with_bias(x), y, name="stewart", meta={"seed": seed, "n": int(n)})


def load_dataset(path: str | Path, bias: bool = False) -> Dataset:
    """Load a dataset from ``.npz`` (arrays ``X``, ``y``) or ``.csv`` (last column is ``y``).

    With ``bias=True`` the coordinate 1 is appended to every input.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"dataset file {str(path)!r} does not exist")
    if path.suffix == ".npz":
        X, y = _read_npz_dataset(path)
    elif path.suffix == ".csv":
        table = _csv_table(path)
        if table.ndim != 2 or table.shape[1] < 2:
            raise ValueError(f"{path}: a CSV dataset needs at least two columns (x..., y)")
        X, y = table[:, :-1], table[:, -1]
    else:
        raise ValueError(f"{path}: unsupported dataset format {path.suffix!r}; use .npz or .csv")
    try:
        if bias:
            X = with_bias(X)
        return Dataset(X, y, name=path.stem, meta={"path": str(path)})
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


def _csv_table(path: Path) -> np.ndarray:
    """The numbers of a CSV dataset, one row per line (blank lines and lines starting with
    ``#`` skipped; a first line that is not numeric is a header).  A non-numeric entry or a
    row of another length raises ``ValueError`` naming the file and the line: a ragged file
    once read its numeric first line as a header and dropped it."""
    try:
        with path.open(newline="") as fh:
            reader = csv.reader(fh)
            rows = [(reader.line_num, r) for r in reader
                    if r and not r[0].lstrip().startswith("#")]
    except (UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"{path}: not a readable CSV text file ({err})") from None
    parsed = []
    for i, (line, r) in enumerate(rows):
        try:
            parsed.append([float(v) for v in r])
        except ValueError as err:
            if i == 0:  # one header line
                continue
            raise ValueError(f"{path}: non-numeric entry in CSV line {line} ({err})") from None
        if len(parsed[-1]) != len(parsed[0]):
            raise ValueError(f"{path}: CSV line {line} has {len(parsed[-1])} values where the "
                             f"first data line has {len(parsed[0])} (inputs and the label)")
    return np.array(parsed)


def _read_npz_dataset(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Arrays ``X`` and ``y`` of an ``.npz`` dataset; every failure names the file."""
    from .store import read_npz

    f = read_npz(path, "an .npz dataset")
    if "X" not in f or "y" not in f:
        raise ValueError(f"{path}: an .npz dataset needs arrays 'X' and 'y'")
    X, y = f["X"], f["y"]
    for name, arr in (("X", X), ("y", y)):
        if arr.dtype.kind not in "biufc":
            raise ValueError(f"{path}: {name} is not numeric (dtype {arr.dtype})")
    return X, y


DATASETS = ("three-points", "stewart", "assumption3")


def get_dataset(name: str, seed: int = 0, **kwargs) -> Dataset:
    """Resolve a built-in dataset by CLI name, or load a file path."""
    key = name.replace("_", "-")
    if key == "three-points":
        return three_points()
    if key == "stewart":
        return stewart(seed=seed, **kwargs)
    if key == "assumption3":
        return assumption3(seed=seed, **kwargs)
    if Path(name).suffix in (".npz", ".csv"):
        return load_dataset(name, **kwargs)
    raise ValueError(
        f"unknown dataset {name!r}; allowed: {', '.join(DATASETS)} or a path to .npz/.csv"
    )
