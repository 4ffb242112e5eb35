"""Geometry of ``D(w, 0)`` (Appendix D.1) as the checks use it, and small helpers on
trajectories: snapshot lookup, outputs, residuals, ``D(w, θ)`` per face, Conditions 1 and 2."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pwflow import theory
from pwflow.data import Dataset
from pwflow.events import EventKind
from pwflow.model import Loss, activation
from pwflow.subgradient import activation_pattern, minimal_norm_on_face
from pwflow.trajectory import Trajectory

from .results import ZERO_TOL

Array = NDArray[np.float64]


# --------------------------------------------------------------------------------------------
# Geometry of D(w, 0): a view on proofs_checks.faces / constants / extremal
# --------------------------------------------------------------------------------------------


@dataclass
class Face:
    """One activation face ``A^{-1}(u)`` as used by the checks.

    ``shape``: ``'origin'``, ``'ray'`` (dimension 1), ``'full'`` (dimension ``d``) or
    ``'face'``; ``point``: a unit point of its relative interior; ``gens``: generators of its
    closure (rows); ``D``: ``D_u``; ``eta``: the slopes attaining it; ``extremal``: ``+1`` if
    ``D_u ∈ A^{-1}(u)``, ``−1`` if ``D_u ∈ −A^{-1}(u)``, else 0; ``kind``: ``'max'``, ``'min'``,
    ``'saddle'`` or ``'degenerate'`` for the critical point of ``G`` (extremal faces only).
    """

    u: NDArray[np.int8]
    shape: str
    point: Array
    gens: Array
    D: Array
    eta: Array
    extremal: int = 0
    kind: str = ""


@dataclass
class Geometry:
    """Faces, extremal vectors and the constants of Appendix D.1 (Eqs. (21)–(24)), taken from
    :mod:`proofs_checks.faces`, :mod:`proofs_checks.extremal` and
    :mod:`proofs_checks.constants` (``Undefined`` constants become 0, with ``undefined``
    — read by Lemma 9 and Theorem 1's genericity hypothesis —
    saying why)."""

    faces: list[Face]
    r0: Array
    gamma: float
    D_max: float
    D_min: float
    alpha_min: float
    alpha_min_plus: float
    alpha_min_minus: float
    delta0: float
    sum_x2: float
    n: int
    source: Any = field(default=None, repr=False)
    undefined: dict = field(default_factory=dict)
    _X: Array = field(default=None, repr=False)  # type: ignore[assignment]
    #: :func:`family_independence` (Lemma 2's linear independence; 0: a dependent family)
    independence: float = math.inf

    def lambda_star(self, alpha0: float, epsilon: float) -> float:
        """``λ*_{α_0}`` of Eq. (22) (0 when undefined); :func:`constants.lambda_star`."""
        from .. import constants as K

        _check_eps(epsilon)
        if self.source is None:
            raise ValueError("this Geometry has no source faces.Geometry")
        v = K.lambda_star(self.source, alpha0, epsilon)
        return float(v) if isinstance(v, float) else 0.0

    def c_alpha0(self, alpha0: float) -> float:
        """``c_{α_0}`` of Eq. (37) (``inf`` when undefined); :func:`constants.c_alpha0`."""
        from .. import constants as K

        v = K.c_alpha0(self.source, alpha0)
        return float(v) if isinstance(v, float) else math.inf

    def c_theorem3(self) -> float:
        """``c`` of Eq. (40) (``inf`` when undefined); :func:`constants.c_theorem3`."""
        from .. import constants as K

        v = K.c_theorem3(self.source)
        return float(v) if isinstance(v, float) else math.inf

    @property
    def extremal_faces(self) -> list[Face]:
        return [f for f in self.faces if f.extremal != 0]

    @property
    def has_saddle(self) -> bool:
        """A saddle (or degenerate) critical point of ``G`` exists."""
        return any(f.kind in ("saddle", "degenerate") for f in self.faces)

    def face_of(self, w: Array) -> Face:
        """The face containing ``w``."""
        u = activation_pattern(w, self._X)
        for f in self.faces:
            if np.array_equal(f.u, u):
                return f
        raise ValueError(f"no face with pattern {u.tolist()}")


#: most families of ``≤ d`` vectors :func:`family_independence` examines (above: pairs only)
MAX_FAMILIES = 100_000


def family_independence(X: Array, r0: Array) -> tuple[float, int]:
    """Lemma 2's second part on the data: the smallest normalised ``σ_min`` over the families
    of at most ``d`` vectors ``∂_1 l(0, y_k) x_k`` (0: some family is dependent, e.g. two
    parallel points or a zero label), and the largest family size examined.

    All ``Σ_{s ≤ d} C(n, s)`` families while that is at most :data:`MAX_FAMILIES`, else the
    single vectors and pairs only (parallel points, the common dependence)."""
    V = np.asarray(r0, float)[:, None] * np.asarray(X, float)
    n, d = V.shape
    top = min(d, n)
    if sum(math.comb(n, s) for s in range(1, top + 1)) > MAX_FAMILIES:
        top = min(top, 2)
    smin = math.inf
    for size in range(1, top + 1):
        for fam in itertools.combinations(range(n), size):
            M = V[list(fam)]
            smin = min(smin, float(np.linalg.svd(M, compute_uv=False)[-1])
                       / max(float(np.linalg.norm(M)), 1e-300))
    return smin, top


def _check_eps(epsilon: float) -> float:
    if not 0 < epsilon < 1 / 3:
        raise ValueError(f"epsilon must be in (0, 1/3), got {epsilon!r}")
    return float(epsilon)


_KIND = {"local max": "max", "local min": "min", "saddle": "saddle", "degenerate": "degenerate"}


def _num_or(v, default: float, name: str, undefined: dict) -> float:
    if isinstance(v, (int, float)):
        return float(v)
    undefined[name] = getattr(v, "reason", str(v))
    return default


def geometry(data: Dataset, loss: str | Loss = "square", gamma: float = 0.0) -> Geometry:
    """Faces of ``D(·, 0)`` with extremality, ``G``-type and the constants of Eqs. (21)–(24).

    Built on :func:`proofs_checks.faces.geometry` (face enumeration, ``D_u``),
    :func:`proofs_checks.extremal.extremal_vectors` (type of the critical points) and
    :mod:`proofs_checks.constants`.  Raises ``ValueError`` for data with two collinear
    ``x_k`` in ``d = 2`` (the checks of Lemmas 2 and 12 need distinct rays).
    """
    from .. import constants as K
    from ..arrangement import face_generators
    from ..extremal import extremal_vectors
    from ..faces import geometry as face_geometry

    X = np.asarray(data.X, float)
    n, d = X.shape
    if d == 2:
        nx = np.linalg.norm(X, axis=1)
        for i, j in itertools.combinations(range(n), 2):
            if abs(X[i, 0] * X[j, 1] - X[i, 1] * X[j, 0]) <= 1e-12 * nx[i] * nx[j]:
                raise ValueError("data must have pairwise non-collinear x_k "
                                 f"(x_{i + 1}, x_{j + 1})")
    src = face_geometry(data, loss, gamma)
    kinds = {tuple(int(v) for v in c.face.u): _KIND.get(c.kind, c.kind)
             for c in extremal_vectors(src)}
    faces = []
    for fd in src.faces:
        dim = fd.face.dim
        shape = "origin" if dim == 0 else "ray" if dim == 1 else "full" if dim == d else "face"
        gens = face_generators(src.arrangement, fd.face) if dim else np.zeros((0, d))
        faces.append(Face(np.asarray(fd.u, np.int8), shape, np.asarray(fd.face.point, float),
                          np.asarray(gens, float), np.asarray(fd.D, float),
                          np.asarray(fd.eta, float), int(fd.extremal),
                          kinds.get(tuple(int(v) for v in fd.u), "")))
    und: dict = {}
    geo = Geometry(
        faces, np.asarray(src.r, float), float(src.gamma), K.D_max(src),
        _num_or(K.D_min(src), 0.0, "D_min", und),
        _num_or(K.alpha_min(src), 0.0, "alpha_min", und),
        _num_or(K.alpha_min_plus(src), 0.0, "alpha_min_plus", und),
        _num_or(K.alpha_min_minus(src), 0.0, "alpha_min_minus", und),
        float(K.delta0(src)), float(np.sum(X**2)), n, src, und, _X=X,
        independence=family_independence(X, np.asarray(src.r, float))[0])
    return geo


# --------------------------------------------------------------------------------------------
# Small helpers on trajectories
# --------------------------------------------------------------------------------------------


#: ``τ = −ε ln λ / D_max`` (Theorem 1): the one implementation is :func:`pwflow.theory.tau`.
tau_of = theory.tau


def _index_at(traj: Trajectory, t: float) -> int:
    i = int(np.argmin(np.abs(traj.t - t)))
    if abs(traj.t[i] - t) > 1e-9 * max(1.0, t):
        raise ValueError(f"the trajectory has no snapshot at t = {t!r}; pass it in t_eval")
    return i


def _outputs(W: Array, a: Array, X: Array, gamma: float) -> Array:
    return activation(X @ W.T, gamma) @ a


def _residual(traj: Trajectory, W: Array, a: Array) -> Array:
    h = _outputs(W, a, traj.X, traj.gamma)
    return np.asarray(traj._loss().derivative(h, traj.y), float)


def _D_by_pattern(traj: Trajectory, i: int, r: Array) -> dict[int, Array]:
    """``D(w, θ)`` for each face index present at snapshot ``i`` (``r = ∂_1 l``)."""
    out = {}
    for p in np.unique(traj.pattern[i]):
        out[int(p)] = minimal_norm_on_face(traj.patterns[p], traj.X, r, traj.gamma).D
    return out


def _r0(traj: Trajectory) -> Array:
    return np.asarray(traj._loss().derivative(np.zeros_like(traj.y), traj.y), float)


def _pattern_of(v: Array, X: Array) -> NDArray[np.int8]:
    return activation_pattern(v, X, zero_tol=ZERO_TOL)


def condition1(traj: Trajectory, alpha0: float) -> tuple[NDArray[np.bool_], Array]:
    """Per neuron: Condition 1 for ``α_0`` and the margin of its first point.

    Point 1: ``<D(w_j^0, 0), w_j^0 / a_j^0> > −√(1 − α_0²) ‖D(w_j^0, 0)‖``;
    point 2: once ``w_j^t = 0`` at a snapshot, it stays 0 at all later ones.
    Returns ``(ok, margin)`` with ``margin = g + √(1 − α_0²)‖D‖`` (0 when ``D = 0``: the strict
    inequality fails and ``ok`` is False).
    """
    if not 0 < alpha0 <= 1:
        raise ValueError(f"alpha0 must be in (0, 1], got {alpha0!r}")
    r0 = _r0(traj)
    Dp = _D_by_pattern(traj, 0, r0)
    D = np.array([Dp[int(p)] for p in traj.pattern[0]])
    a0 = traj.a[0]
    g = np.einsum("md,md->m", D, traj.W[0]) / np.where(a0 == 0, np.nan, a0)
    margin = g + math.sqrt(1 - alpha0**2) * np.linalg.norm(D, axis=1)
    ok1 = margin > 0
    return ok1 & condition1_point2(traj) & np.isfinite(margin), np.nan_to_num(margin, nan=-np.inf)


def condition1_point2(traj: Trajectory) -> NDArray[np.bool_]:
    """Per neuron: Condition 1, point 2 — once ``w_j^t = 0`` it stays 0.

    Read from the snapshots (0 at one, nonzero at a later one) and from the event log: a
    REACH_ZERO event whose face is not ``u = 0`` is a neuron that reached 0 and departed at
    once (``𝔇(0) ∌ 0``, e.g. γ > 0; ``docs/paper-readings.md`` N7), between snapshots.  Where
    ``rank X < d`` a REACH_ZERO is ``w`` reaching ``ker X`` (the origin of the data's span),
    ``w = 0`` only for a neuron whose null-space part, constant along the flow, is 0.
    """
    zero = np.all(traj.W == 0.0, axis=2)  # (k, m): w_j^t = 0 exactly
    first = np.where(zero.any(axis=0), zero.argmax(axis=0), zero.shape[0])
    ok = np.array([np.all(zero[first[j]:, j]) for j in range(zero.shape[1])])
    ev = traj.events
    W0 = traj.W[0]
    null = W0 - (W0 @ np.linalg.pinv(traj.X)) @ traj.X  # 0 at full rank
    reaches_zero = np.linalg.norm(null, axis=1) <= 1e-12 * np.linalg.norm(W0, axis=1)
    at_zero = np.flatnonzero(ev["kind"] == EventKind.REACH_ZERO)
    departed = [int(ev["neuron"][i]) for i in at_zero
                if reaches_zero[int(ev["neuron"][i])]
                and np.any(traj.patterns[int(ev["to_pattern"][i])] != 0)]
    ok[departed] = False
    return ok


def condition2_point1(traj: Trajectory) -> tuple[NDArray[np.bool_], Array]:
    """Per neuron: ``<D(w_j^0, 0), w_j^0/a_j^0> > 0`` (Condition 2, point 1) and its value."""
    r0 = _r0(traj)
    Dp = _D_by_pattern(traj, 0, r0)
    D = np.array([Dp[int(p)] for p in traj.pattern[0]])
    g = np.einsum("md,md->m", D, traj.W[0]) / traj.a[0]
    return g > 0, g
