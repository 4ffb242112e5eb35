"""Initialisations of Eq. (3)–(5): ``(a_j^0, w_j^0) = (λ/√m) (ã_j, w̃_j)``.

Every draw takes a ``seed``; the same arguments give the same arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "Init", "balanced", "dominated", "unbalanced", "from_arrays", "load_init", "make_init", "INITS",
]

Array = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Init:
    """Initial parameters ``theta^0 = (w_j^0, a_j^0)_j`` with their provenance."""

    W: Array
    a: Array
    kind: str = "explicit"
    scale: float = float("nan")
    seed: int | None = None
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for name in ("W", "a"):
            if np.iscomplexobj(getattr(self, name)):
                raise ValueError(f"{name} is complex; the initial weights must be real numbers")
        W = np.array(self.W, dtype=float, copy=True)
        a = np.array(self.a, dtype=float, copy=True)
        if W.ndim != 2:
            raise ValueError(f"W must have shape (m, d), got shape {W.shape}")
        if a.ndim != 1 or a.shape[0] != W.shape[0]:
            raise ValueError(f"a must have shape (m,) = ({W.shape[0]},), got shape {a.shape}")
        if W.shape[0] < 1:
            raise ValueError("the network needs at least one neuron (m >= 1)")
        if not (np.all(np.isfinite(W)) and np.all(np.isfinite(a))):
            raise ValueError("initial weights contain NaN or infinite values")
        W.setflags(write=False)
        a.setflags(write=False)
        object.__setattr__(self, "W", W)
        object.__setattr__(self, "a", a)

    @property
    def m(self) -> int:
        return int(self.W.shape[0])

    @property
    def d(self) -> int:
        return int(self.W.shape[1])

    @property
    def balancedness(self) -> Array:
        """``a_j² − ‖w_j‖²``, conserved by the flow (Lemma 1)."""
        return self.a**2 - np.einsum("ij,ij->i", self.W, self.W)

    def satisfies_eq4(self) -> bool:
        """Whether ``|a_j| >= ‖w_j‖`` for every neuron (Eq. (4))."""
        return bool(np.all(self.balancedness >= -1e-15 * self.a**2))


def _check(m: int, d: int, scale: float) -> tuple[int, int, float]:
    if isinstance(m, bool) or int(m) != m or m < 1:
        raise ValueError(f"width m must be an integer >= 1, got {m!r}")
    if isinstance(d, bool) or int(d) != d or d < 1:
        raise ValueError(f"input dimension d must be an integer >= 1, got {d!r}")
    scale = float(scale)
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale λ must be positive and finite, got {scale!r}")
    return int(m), int(d), scale


def balanced(m: int, d: int, scale: float, seed: int = 0) -> Init:
    """Appendix B.1: ``w̃ ~ N(0, I_d)``, ``ã = s ‖w̃‖``, ``s = ±1`` with probability ½."""
    m, d, scale = _check(m, d, scale)
    rng = np.random.default_rng(seed)
    Wt = rng.standard_normal((m, d))
    s = rng.choice([-1.0, 1.0], size=m)
    at = s * np.linalg.norm(Wt, axis=1)
    c = scale / np.sqrt(m)
    return Init(c * Wt, c * at, "balanced", scale, seed)


def dominated(m: int, d: int, scale: float, seed: int = 0) -> Init:
    """Section 2's example: ``ã = ±1``, ``w̃`` uniform in the unit ball (``|ã| > ‖w̃‖`` a.s.)."""
    m, d, scale = _check(m, d, scale)
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((m, d))
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    radius = rng.uniform(size=m) ** (1.0 / d)
    Wt = g * radius[:, None]
    at = rng.choice([-1.0, 1.0], size=m)
    c = scale / np.sqrt(m)
    return Init(c * Wt, c * at, "dominated", scale, seed)


def unbalanced(m: int, d: int, scale: float, seed: int = 0) -> Init:
    """Appendix B.2: ``ã ~ N(0, 1)``, ``w̃ ~ N(0, I_d)`` (violates Eq. (4))."""
    m, d, scale = _check(m, d, scale)
    rng = np.random.default_rng(seed)
    Wt = rng.standard_normal((m, d))
    at = rng.standard_normal(m)
    c = scale / np.sqrt(m)
    return Init(c * Wt, c * at, "unbalanced", scale, seed)


def from_arrays(W: ArrayLike, a: ArrayLike) -> Init:
    """Explicit initial weights (validated)."""
    if np.iscomplexobj(W) or np.iscomplexobj(a):
        raise ValueError("W and a must be real numbers, got complex arrays")
    return Init(np.asarray(W, float), np.asarray(a, float), "explicit")


def load_init(path, d: int | None = None) -> Init:
    """Initial weights from an ``.npz`` file with arrays ``W`` (m, d) and ``a`` (m,).

    For example a network exported from another framework.  Validated like the other
    initialisations; ``d``, when given, is the data's input dimension.  ``ValueError`` names
    the file and the problem (missing array, shape, complex or non-finite entries).
    """
    import zipfile
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--init-from {str(path)!r} does not exist or is not a file")
    try:
        with open(path, "rb") as fh:
            f = np.load(fh, allow_pickle=False)
            if not hasattr(f, "files"):
                raise ValueError("a single array, not an .npz archive")
            missing = [k for k in ("W", "a") if k not in f.files]
            if missing:
                raise ValueError(f"needs arrays 'W' of shape (m, d) and 'a' of shape (m,); "
                                 f"missing {', '.join(repr(k) for k in missing)} (it holds "
                                 f"{', '.join(repr(k) for k in f.files) or 'no arrays'})")
            W, a = f["W"], f["a"]
    except ValueError as err:
        msg = str(err)
        if "pickle" in msg:
            msg = "not an .npz archive of arrays"
        raise ValueError(f"--init-from {str(path)!r}: {msg}") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise ValueError(f"--init-from {str(path)!r}: not a readable .npz file "
                         f"({type(err).__name__})") from None
    for name, arr in (("W", W), ("a", a)):
        if arr.dtype.kind not in "biufc":
            raise ValueError(f"--init-from {str(path)!r}: {name} is not numeric "
                             f"(dtype {arr.dtype})")
    if d is not None and (W.ndim != 2 or W.shape[1] != d):
        raise ValueError(f"--init-from {str(path)!r}: W must have shape (m, {d}) for this "
                         f"data (d = {d}), got shape {W.shape}")
    try:
        return Init(W, a, "from-file", float("nan"), None, {"path": str(path)})
    except ValueError as err:
        raise ValueError(f"--init-from {str(path)!r}: {err}") from None


INITS = {"balanced": balanced, "dominated": dominated, "unbalanced": unbalanced}


def make_init(kind: str, m: int, d: int, scale: float, seed: int = 0) -> Init:
    """Resolve an initialisation by name: ``balanced``, ``dominated`` or ``unbalanced``."""
    if kind not in INITS:
        raise ValueError(f"unknown init {kind!r}; allowed: {', '.join(INITS)}")
    return INITS[kind](m, d, scale, seed)
