"""One numerical check per statement of Boursier & Flammarion (Lemmas 1–24, Theorems 1–4,
Conditions 1–2), on exact trajectories computed by :func:`pwflow.integrator.simulate`.

Every check returns a :class:`CheckResult` whose ``verdict`` is one of

* ``holds`` — all checkable hypotheses hold and the checked inequality holds;
* ``violated`` — all checkable hypotheses hold and the checked inequality fails;
* ``hypotheses unmet`` — some checkable hypothesis fails (the measurement is still reported);
* ``not applicable`` — the statement does not concern this input (e.g. no neuron satisfies
  Condition 1, the phase time was not reached within the horizon);
* ``not checked`` — the statement hides its constants (``O(·)``, ``Θ(1)``) and only a
  measurement is reported; its rate is checked by :mod:`proofs_checks.sweeps`.

The activation-cone geometry (faces ``A^{-1}(u)``, ``D_u``, extremal vectors and their type,
``D_max``, ``D_min``, ``α_min``, ``δ_0`` of Eqs. (21)–(24), ``c_{α_0}`` of Eq. (37), ``c`` of
Eq. (40)) comes from :mod:`proofs_checks.faces`, :mod:`proofs_checks.extremal` and
:mod:`proofs_checks.constants` through :func:`geometry` (see ``docs/lemma-catalogue.md``,
"Readings of the paper").
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pwflow.data import Dataset
from pwflow.model import Loss, activation, get_loss
from pwflow.subgradient import activation_pattern, minimal_norm_on_face
from pwflow.trajectory import Trajectory

Array = NDArray[np.float64]

VERDICTS = ("holds", "violated", "hypotheses unmet", "not applicable", "not checked")

#: Relative tolerance for "= 0" tests on exactly computed quantities (inner products, norms).
ZERO_TOL = 1e-9


# --------------------------------------------------------------------------------------------
# Result type
# --------------------------------------------------------------------------------------------


@dataclass
class CheckResult:
    """Outcome of one check.

    Attributes
    ----------
    statement : str
        ``"Lemma 1"``, ``"Theorem 1 (ii)"``, ...
    hypotheses : dict of str to bool
        Each checkable hypothesis and whether it holds on this input.
    verdict : str
        One of :data:`VERDICTS`.
    measured, bound : float or None
        The measured quantity and the bound it is compared with.
    margin : float or None
        Signed margin, positive when the inequality holds (relative where stated in ``note``).
    where : str
        Where on the trajectory / dataset the worst margin occurs.
    note : str
        What exactly was checked.
    """

    statement: str
    hypotheses: dict[str, bool]
    verdict: str
    measured: float | None = None
    bound: float | None = None
    margin: float | None = None
    where: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (floats, bools, strings only)."""
        d = dataclasses.asdict(self)
        for k in ("measured", "bound", "margin"):
            if d[k] is not None:
                d[k] = float(d[k])
        d["hypotheses"] = {k: bool(v) for k, v in d["hypotheses"].items()}
        return d


def _verdict(hyp: dict[str, bool], ok: bool) -> str:
    if not all(hyp.values()):
        return "hypotheses unmet"
    return "holds" if ok else "violated"


def _result(statement, hyp, ok, measured=None, bound=None, margin=None, where="", note=""):
    return CheckResult(statement, {k: bool(v) for k, v in hyp.items()}, _verdict(hyp, ok),
                       _f(measured), _f(bound), _f(margin), where, note)


def _f(x) -> float | None:
    return None if x is None else float(x)


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

    def lambda_star(self, alpha0: float, epsilon: float) -> float:
        """``λ*_{α_0}`` of Eq. (22) (0 when undefined); :func:`constants.lambda_star`."""
        from . import constants as K

        _check_eps(epsilon)
        if self.source is None:
            raise ValueError("this Geometry has no source faces.Geometry")
        v = K.lambda_star(self.source, alpha0, epsilon)
        return float(v) if isinstance(v, float) else 0.0

    def c_alpha0(self, alpha0: float) -> float:
        """``c_{α_0}`` of Eq. (37) (``inf`` when undefined); :func:`constants.c_alpha0`."""
        from . import constants as K

        v = K.c_alpha0(self.source, alpha0)
        return float(v) if isinstance(v, float) else math.inf

    def c_theorem3(self) -> float:
        """``c`` of Eq. (40) (``inf`` when undefined); :func:`constants.c_theorem3`."""
        from . import constants as K

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
    from . import constants as K
    from .arrangement import face_generators
    from .extremal import extremal_vectors
    from .faces import geometry as face_geometry

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
        float(K.delta0(src)), float(np.sum(X**2)), n, src, und, _X=X)
    return geo


# --------------------------------------------------------------------------------------------
# Small helpers on trajectories
# --------------------------------------------------------------------------------------------


def tau_of(lam: float, epsilon: float, D_max: float) -> float:
    """``τ = −ε ln(λ) / D_max`` (Theorem 1)."""
    _check_eps(epsilon)
    if not 0 < lam < 1:
        raise ValueError(f"lam must be in (0, 1), got {lam!r}")
    return -epsilon * math.log(lam) / D_max


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
    zero = np.all(traj.W == 0.0, axis=2)  # (k, m): w_j^t = 0 exactly
    first = np.where(zero.any(axis=0), zero.argmax(axis=0), zero.shape[0])
    ok2 = np.array([np.all(zero[first[j]:, j]) for j in range(zero.shape[1])])
    return ok1 & ok2 & np.isfinite(margin), np.nan_to_num(margin, nan=-np.inf)


def condition2_point1(traj: Trajectory) -> tuple[NDArray[np.bool_], Array]:
    """Per neuron: ``<D(w_j^0, 0), w_j^0/a_j^0> > 0`` (Condition 2, point 1) and its value."""
    r0 = _r0(traj)
    Dp = _D_by_pattern(traj, 0, r0)
    D = np.array([Dp[int(p)] for p in traj.pattern[0]])
    g = np.einsum("md,md->m", D, traj.W[0]) / traj.a[0]
    return g > 0, g


# --------------------------------------------------------------------------------------------
# Dataset checks: Lemmas 2, 3, 9, 10, 12 (at θ = 0), 14; Assumption 1 and Eq. (4)
# --------------------------------------------------------------------------------------------


def assumption1(loss: str | Loss, y: Array) -> bool:
    """Assumption 1 (grid check of :meth:`pwflow.model.Loss.check_assumption1`)."""
    return bool(get_loss(loss).check_assumption1(y).holds)


def check_lemma2(data: Dataset, loss: str | Loss = "square", gamma: float = 0.0) -> CheckResult:
    """Lemma 2: ``𝔇_u ∩ (±∂ closure A^{-1}(u)) = ∅`` or ``0 ∈ 𝔇_u``; families of ≤ d vectors
    ``∂_1 l(0, y_k) x_k`` are linearly independent.

    Checked exactly on every face (``d = 2``): for each open arc with ``D_u ≠ 0`` the angular
    distance of ``±D_u`` from the two boundary rays (the rays and the origin are trivial: the
    boundary of a ray is ``{0}``); ``𝔇_u`` is a segment in ``d = 2`` when one ``η`` is free, so
    also every ``D ∈ 𝔇_u`` of a ray face is tested against the rays' end (the origin).  For the
    linear independence, the smallest singular value over all families of ``≤ d`` vectors.
    Margin: the minimum of both (normalised).
    """
    X, y = np.asarray(data.X, float), np.asarray(data.y, float)
    lossf = get_loss(loss)
    r0 = lossf.derivative(np.zeros_like(y), y)
    V = r0[:, None] * X
    n, d = X.shape
    smin = math.inf
    for size in range(1, min(d, n) + 1):
        for fam in itertools.combinations(range(n), size):
            M = V[list(fam)]
            smin = min(smin, float(np.linalg.svd(M, compute_uv=False)[-1])
                       / max(float(np.linalg.norm(M)), 1e-300))
    if d != 2:
        return CheckResult("Lemma 2", {"Assumption 1": assumption1(lossf, y)}, "not checked",
                           smin, 0.0, smin, "families of ≤ d vectors",
                           "boundary part needs the face enumeration (d = 2 only)")
    try:
        geo = geometry(data, lossf, gamma)
    except ValueError as err:
        return _result("Lemma 2", {"Assumption 1": assumption1(lossf, y)}, False, 0.0, 0.0, 0.0,
                       "dataset", f"degenerate data: {err}")
    worst, where = math.inf, ""
    for f in geo.faces:
        if f.shape != "full" or np.linalg.norm(f.D) <= ZERO_TOL * geo.D_max:
            continue
        ang = math.atan2(f.D[1], f.D[0])
        for s, g in itertools.product((0.0, math.pi), f.gens):
            a = math.atan2(g[1], g[0])
            dist = abs(math.sin(0.5 * math.remainder(ang + s - a, 2 * math.pi)))
            if dist < worst:
                worst, where = dist, f"face u={f.u.tolist()}"
    margin = min(worst, smin)
    return _result("Lemma 2", {"Assumption 1": assumption1(lossf, y)}, margin > 1e-12,
                   margin, 0.0, margin, where or "families of ≤ d vectors",
                   "min over arcs of |sin(½ angle(±D_u, boundary ray))| and min normalised σ_min "
                   "of the families (∂_1 l(0,y_k) x_k)")


def check_lemma3(data: Dataset, loss: str | Loss = "square", gamma: float = 0.0,
                 geo: Geometry | None = None) -> CheckResult:
    """Lemma 3: at least one extremal vector (``D_u ≠ 0``, ``D_u ∈ ±A^{-1}(u)``).

    Measured: number of extremal faces; margin: the largest over extremal faces of the
    smallest ``|<D_u, x_k>| / (‖D_u‖‖x_k‖)`` over ``u_k ≠ 0`` (how robustly inside its cone).
    """
    geo = geo or geometry(data, loss, gamma)
    ext = geo.extremal_faces
    X = np.asarray(data.X, float)
    best = -math.inf
    for f in ext:
        nz = f.u != 0
        v = np.abs(X[nz] @ f.D) / (np.linalg.norm(f.D) * np.linalg.norm(X[nz], axis=1))
        best = max(best, float(np.min(v)))
    return _result("Lemma 3", {"Assumption 1": assumption1(loss, data.y)}, len(ext) >= 1,
                   len(ext), 1, best if ext else -1.0,
                   ", ".join(f"{f.kind}@u={f.u.tolist()}" for f in ext),
                   "number of extremal faces ≥ 1; margin = inner margin of the best one")


def check_lemma9(data: Dataset, loss: str | Loss = "square", gamma: float = 0.0,
                 geo: Geometry | None = None) -> CheckResult:
    """Lemma 9: ``α_min > 0`` and ``D_min > 0`` (Eq. (23)); margin ``min(α_min, D_min)``."""
    geo = geo or geometry(data, loss, gamma)
    m = min(geo.alpha_min, geo.D_min)
    return _result("Lemma 9", {"Assumption 1": assumption1(loss, data.y)}, m > 1e-12, m, 0.0, m,
                   f"α_min={geo.alpha_min:.4g} (+:{geo.alpha_min_plus:.4g}, "
                   f"−:{geo.alpha_min_minus:.4g}), D_min={geo.D_min:.4g}",
                   "Eq. (23)–(24) by exact enumeration of the faces (d = 2)")


def check_lemma10(data: Dataset, loss: str | Loss = "square", gamma: float = 0.0,
                  geo: Geometry | None = None) -> CheckResult:
    """Lemma 10: ``δ_0 > 0`` (Eq. (21))."""
    geo = geo or geometry(data, loss, gamma)
    return _result("Lemma 10", {"Assumption 1": assumption1(loss, data.y)}, geo.delta0 > 1e-12,
                   geo.delta0, 0.0, geo.delta0, "Eq. (21)", "δ_0 = min(δ_0', δ_0'')")


def check_lemma14(geo: Geometry) -> CheckResult:
    """Lemma 14 (quantisation): a critical face with ``D_u ≠ 0`` holding a local max (min)
    of ``G`` has ``D_u ∈ A^{-1}(u)`` (``−A^{-1}(u)``) or is the single ray ``−D_u/‖D_u‖``
    (``+D_u/‖D_u‖``).  Measured: number of extremal faces violating the dichotomy."""
    bad, where = 0, []
    for f in geo.extremal_faces:
        if f.kind not in ("max", "min"):
            continue
        want = 1 if f.kind == "max" else -1
        ok = f.extremal == want or (f.shape == "ray" and f.extremal == -want)
        if not ok:
            bad += 1
            where.append(f"u={f.u.tolist()}")
    return _result("Lemma 14", {"G has no saddle point": not geo.has_saddle}, bad == 0,
                   bad, 0, -bad, "; ".join(where) or "all extremal faces",
                   f"{len(geo.extremal_faces)} extremal faces, type from proofs_checks.extremal")


def _critical_faces(geo: Geometry) -> list[Face]:
    out = []
    for f in geo.faces:
        if f.shape != "origin" and (f.extremal or np.linalg.norm(f.D) <= ZERO_TOL * geo.D_max):
            out.append(f)
    return out


def lemma12_margin(geo: Geometry, X: Array, r: Array) -> tuple[float, str]:
    """Smallest margin of Lemma 12 at residual ``r``: for each critical ray ``M`` and
    ``v = ±J dir(M)``, the values ``s_± = <v, D^θ_{u(v)}>`` must not have opposite strict
    signs (then ``ε_M`` exists).  Margin ``= −min(max(s_+, s_−), −min(s_+, s_−))``, ≥ 0 iff ok."""
    worst, where = math.inf, ""
    for f in _critical_faces(geo):
        if f.shape != "ray":
            continue
        dr = f.point / np.linalg.norm(f.point)
        vals = []
        for s in (1.0, -1.0):
            v = s * np.array([-dr[1], dr[0]])
            uv = np.where(f.u != 0, f.u, np.sign(X @ v)).astype(np.int8)
            vals.append(float(v @ minimal_norm_on_face(uv, X, r, geo.gamma).D))
        m = -min(max(vals), -min(vals))
        if m < worst:
            worst, where = m, f"ray u={f.u.tolist()}"
    return worst, where


# --------------------------------------------------------------------------------------------
# Trajectory checks: Lemma 1, 11, 12, 13, Theorem 1, Theorem 3, Conditions
# --------------------------------------------------------------------------------------------


def check_lemma1(traj: Trajectory, tol: float = 1e-8) -> CheckResult:
    """Lemma 1 (balancedness): ``a_j² − ‖w_j‖²`` is constant.

    Measured: ``max_j`` of :meth:`Trajectory.balancedness_drift` (relative to the neuron's
    largest size) over the snapshots; bound: ``tol``.
    """
    drift = traj.balancedness_drift()
    j = int(np.argmax(drift))
    return _result("Lemma 1", {"trajectory computed to the end": traj.success},
                   drift[j] <= tol, drift[j], tol, tol - drift[j], f"neuron {j}",
                   "max_t |c_j(t) − c_j(0)| / max_t(a_j² + ‖w_j‖²), c = a² − ‖w‖²")


def _eq4(traj: Trajectory) -> bool:
    return bool(np.all(np.abs(traj.a[0]) >= np.linalg.norm(traj.W[0], axis=1) * (1 - 1e-12)))


def _theorem1_hyp(traj: Trajectory, geo: Geometry, lam: float, lam_star: float,
                  saddle: bool = True) -> dict[str, bool]:
    h = {"Assumption 1": assumption1(traj._loss(), traj.y),
         "Lemmas 2, 9, 10 (genericity)": geo.alpha_min > 0 and geo.D_min > 0 and geo.delta0 > 0,
         "Eq. (4) at init": _eq4(traj),
         "λ < λ*": lam < lam_star}
    if saddle:
        h["G has no saddle point"] = not geo.has_saddle
    return h


def check_theorem1_i(traj: Trajectory, geo: Geometry, lam: float, epsilon: float,
                     alpha0: float, statement: str = "Theorem 1 (i)",
                     rel_tol: float = 1e-9) -> CheckResult:
    """Theorem 1 (i): for ``t ≤ τ`` and all ``j``: ``|a_j^0| λ^{2ε} ≤ |a_j^t| ≤ |a_j^0| λ^{−2ε}``
    and ``‖w_j^t‖ ≤ |a_j^t|`` — at every snapshot ``t ≤ τ`` (the run must store a grid on
    ``[0, τ]``).  Margin: smallest of the log-margins and the relative ``(|a| − ‖w‖)/|a|``
    (+ ``rel_tol`` for rounding)."""
    tau = tau_of(lam, epsilon, geo.D_max)
    sel = traj.t <= tau * (1 + 1e-12)
    a0 = np.abs(traj.a[0])
    A = np.abs(traj.a[sel])
    nw = np.linalg.norm(traj.W[sel], axis=2)
    with np.errstate(divide="ignore"):
        lo = np.log(A / a0) - 2 * epsilon * math.log(lam)  # |a^t| ≥ |a^0| λ^{2ε}
        hi = -2 * epsilon * math.log(lam) - np.log(A / a0)  # |a^t| ≤ |a^0| λ^{−2ε}
        bal = (A - nw) / np.where(A > 0, A, 1.0) + rel_tol
    M = np.minimum(np.minimum(lo, hi), bal)
    k, j = np.unravel_index(int(np.argmin(M)), M.shape)
    hyp = _theorem1_hyp(traj, geo, lam, geo.lambda_star(alpha0, epsilon),
                        saddle=statement.startswith("Theorem 1"))
    reached = bool(traj.t[-1] >= tau * (1 - 1e-12))
    hyp["horizon ≥ τ"] = reached
    return _result(statement, hyp, bool(M[k, j] >= 0), float(A[k, j] / a0[j]),
                   lam ** (-2 * epsilon), float(M[k, j]),
                   f"neuron {j}, t={traj.t[sel][k]:.4g} (τ={tau:.4g}, {int(sel.sum())} snapshots)",
                   "log-margins of λ^{2ε} ≤ |a^t|/|a^0| ≤ λ^{−2ε} and (|a|−‖w‖)/|a|")


def _alignment_at_tau(traj: Trajectory, geo: Geometry, i: int) -> tuple[Array, Array, Array]:
    """Per neuron at snapshot ``i``: ``‖D(w,0)‖``, ``<D(w,0), w/a>``, and the anti-alignment
    ``1 + cos(w, D)`` (0 when ``w/‖w‖ = −D/‖D‖``)."""
    r0 = geo.r0
    Dp = _D_by_pattern(traj, i, r0)
    D = np.array([Dp[int(p)] for p in traj.pattern[i]])
    W, a = traj.W[i], traj.a[i]
    nD = np.linalg.norm(D, axis=1)
    g = np.einsum("md,md->m", D, W) / a
    nW = np.linalg.norm(W, axis=1)
    cos = np.einsum("md,md->m", D, W) / np.where(nD * nW > 0, nD * nW, 1.0)
    return nD, g, 1 + cos


def t2_bound(geo: Geometry, alpha0: float) -> float:
    """``4 D_max / (D_min² min(α_min, α_0)²)``: the proof's bound on the time ``t_2`` after which
    a neuron sits in a critical face (Appendix D.7); the extremality claim of Theorem 1 (ii) is
    proved only when ``t_2 ≤ τ``."""
    return 4 * geo.D_max / (geo.D_min**2 * min(geo.alpha_min, alpha0) ** 2)


def check_theorem1_ii(traj: Trajectory, geo: Geometry, lam: float, epsilon: float,
                      alpha0: float, theorem3: bool = False) -> list[CheckResult]:
    """Theorem 1 (ii) (or Theorem 3 (ii)) at ``τ`` for every neuron satisfying Condition 1
    (Condition 2, point 1), split in two results.

    * ``… alignment``: ``‖D‖ ≥ <D, w/a> ≥ ‖D‖ − c λ^{‖D‖ε/D_max}`` with ``D = D(w_j^τ, 0)`` and
      ``c = c_{α_0}`` of Eq. (37) (``c`` of Eq. (40)), or ``w/‖w‖ = −D/‖D‖``, or ``D = 0``.
      Margin: smallest ``<D, w/a> − (‖D‖ − c λ^{…})``.
    * ``… extremal``: ``D`` is ``0`` or an extremal vector (Thm 3: extremal) whose direction is
      a local max (min) of ``G`` for ``a_j^0 > 0`` (``< 0``); extra hypothesis
      ``τ ≥`` :func:`t2_bound` (the proof's case ``t_2 ≤ τ``; see the catalogue's readings).
      Measured: number of failing neurons.
    """
    statement = "Theorem 3 (ii)" if theorem3 else "Theorem 1 (ii)"
    tau = tau_of(lam, epsilon, geo.D_max)
    i = _index_at(traj, tau)
    if theorem3:
        sel, _ = condition2_point1(traj)
        c, a_eff = geo.c_theorem3(), 1.0
    else:
        sel, _ = condition1(traj, alpha0)
        c, a_eff = geo.c_alpha0(alpha0), alpha0
    hyp = _theorem1_hyp(traj, geo, lam, geo.lambda_star(a_eff, epsilon), saddle=not theorem3)
    names = (statement + " alignment", statement + " extremal")
    if not sel.any():
        return [CheckResult(s, hyp, "not applicable", note="no neuron satisfies the condition")
                for s in names]
    nD, g, anti = _alignment_at_tau(traj, geo, i)
    bound = nD - c * lam ** (nD * epsilon / geo.D_max)
    upper_ok = g <= nD * (1 + ZERO_TOL) + ZERO_TOL * geo.D_max
    anti_ok = anti <= 1e-8
    zeroD = nD <= ZERO_TOL * geo.D_max
    fail_al = sel & ~zeroD & ~anti_ok & ~((g >= bound) & upper_ok)
    margin = np.where(sel & ~zeroD & ~anti_ok, g - bound, np.inf)
    j = int(np.argmin(margin))
    vac = bool(np.all(c * lam ** (nD[sel] * epsilon / geo.D_max) >= 2 * geo.D_max))
    res = [_result(names[0], hyp, not fail_al.any(), float(np.min(nD[sel] - g[sel])),
                   float(c * lam ** (epsilon * np.max(nD[sel]) / geo.D_max)),
                   float(np.min(margin)) if np.isfinite(margin).any() else math.inf,
                   f"neuron {j} at τ={tau:.4g}; {int(sel.sum())} neurons, "
                   f"{int((sel & zeroD).sum())} with D=0, "
                   f"{int((sel & anti_ok).sum())} anti-aligned",
                   f"measured = min ‖D‖ − <D, w/a>; c = {c:.4g} "
                   f"({'Eq. (40)' if theorem3 else 'Eq. (37)'})"
                   + ("; the bound is vacuous here (c λ^{…} ≥ 2 D_max)" if vac else ""))]
    fail_ex = np.zeros(traj.m, bool)
    for j in np.flatnonzero(sel):
        if zeroD[j] and not theorem3:
            continue
        u = traj.patterns[traj.pattern[i, j]]
        f = next((f for f in geo.faces if np.array_equal(f.u, u)), None)
        want = "max" if traj.a[0, j] > 0 else "min"
        fail_ex[j] = f is None or f.extremal == 0 or not (f.kind == want or theorem3)
    hyp2 = dict(hyp)
    tb = t2_bound(geo, a_eff)
    hyp2[f"τ ≥ t_2 bound ({tb:.4g})"] = tau >= tb
    k = int(np.argmax(fail_ex))
    res.append(_result(names[1], hyp2, not fail_ex.any(), int(fail_ex.sum()), 0,
                       -int(fail_ex.sum()),
                       (f"neuron {k}, u={traj.patterns[traj.pattern[i, k]].tolist()}"
                        if fail_ex.any() else f"{int(sel.sum())} neurons") + f", τ={tau:.4g}",
                       "measured = number of neurons whose face at τ is neither D=0 nor an "
                       "extremal face of the right type"))
    return res


def check_condition(traj: Trajectory, alpha0: float, which: int = 1) -> CheckResult:
    """Condition 1 (for ``α_0``) or Condition 2 (point 1) per neuron: measured fraction of
    neurons satisfying it; the worst neuron's margin.  Verdict ``holds`` if every neuron
    satisfies it (a property of the initialisation, not a claim of the paper)."""
    if which == 1:
        ok, margin = condition1(traj, alpha0)
        st = "Condition 1"
    else:
        ok, margin = condition2_point1(traj)
        st = "Condition 2"
    j = int(np.argmin(margin))
    note = ("point 2 (a zero neuron stays zero) checked on snapshots" if which == 1 else
            "point 2 (no spontaneous exit from a face) is the integrator's sliding rule, not "
            "checked")
    return CheckResult(st, {f"all neurons satisfy {st}": bool(ok.all())},
                       "holds" if ok.all() else "hypotheses unmet", float(ok.mean()), 1.0,
                       float(margin[j]), f"neuron {j}; {int(ok.sum())}/{ok.size} satisfy it",
                       note + "; measured = fraction satisfying it (a property of the "
                       "initialisation, not a claim; the theorems are checked on those)")


def check_lemma11(traj: Trajectory, geo: Geometry, delta0: float | None = None) -> CheckResult:
    """Lemma 11 at every snapshot where ``(1/n) Σ ‖h_θ(x_k) x_k‖ < δ_0``: for every face ``u``,
    ``D_u = 0 ⇒ D_u^θ = 0``; ``D_u ∈ A^{-1}(u) ⇒ D_u^θ ∈ A^{-1}(u)``;
    ``D_u ∈ −A^{-1}(u) ⇒ D_u^θ ∈ −A^{-1}(u)``.  ``delta0`` overrides ``geo.delta0`` (to feed a
    wrong constant).  Margin: smallest over checked (snapshot, face) of
    ``min_{u_k≠0} u_k<±D^θ, x_k>/‖x_k‖`` minus ``max_{u_k=0}|<D^θ, x_k>|/‖x_k‖`` (relative)."""
    d0 = geo.delta0 if delta0 is None else float(delta0)
    X = traj.X
    nx = np.linalg.norm(X, axis=1)
    worst, where, checked = math.inf, "", 0
    for i in range(traj.t.size):
        W, a = traj.W[i], traj.a[i]
        h = _outputs(W, a, X, traj.gamma)
        if np.mean(np.abs(h) * nx) >= d0:
            continue
        r = np.asarray(traj._loss().derivative(h, traj.y), float)
        checked += 1
        for f in geo.faces:
            nD = np.linalg.norm(f.D)
            Dt = minimal_norm_on_face(f.u, X, r, traj.gamma).D
            if nD <= ZERO_TOL * geo.D_max:
                m = -np.linalg.norm(Dt) / geo.D_max + ZERO_TOL
            elif f.extremal:
                v = f.extremal * Dt
                s = (X @ v) / nx
                nz = f.u != 0
                inside = float(np.min(f.u[nz] * s[nz])) if nz.any() else math.inf
                on = float(np.max(np.abs(s[~nz]))) if (~nz).any() else 0.0
                m = min(inside, -(on - ZERO_TOL * max(np.linalg.norm(Dt), 1e-300))) / geo.D_max
            else:
                continue
            if m < worst:
                worst, where = m, f"t={traj.t[i]:.4g}, u={f.u.tolist()}"
    if checked == 0:
        return CheckResult("Lemma 11", {}, "not applicable",
                           note="no snapshot satisfies (1/n)Σ‖h x_k‖ < δ_0")
    return _result("Lemma 11", {"δ_0 > 0": d0 > 0}, worst >= 0, worst, 0.0, worst,
                   f"{where} ({checked} snapshots)", "implications 1–3 for every face")


def check_lemma12(traj: Trajectory, geo: Geometry, lam: float, epsilon: float) -> CheckResult:
    """Lemma 12 at ``θ = 0`` and at every snapshot ``t ≤ τ`` satisfying its conditions
    (Lemma 11's and ``|h_θ(x_k)| < |∂_1 l(0, y_k)|``); ``d = 2``: the critical manifolds with a
    nontrivial orthogonal complement are the rays (arcs have ``M̄^⊥ = {0}``)."""
    X = traj.X
    if X.shape[1] != 2:
        return CheckResult("Lemma 12", {}, "not checked",
                           note="critical manifolds with dim M̄^⊥ > 1 (d > 2) not implemented")
    nx = np.linalg.norm(X, axis=1)
    worst, where = lemma12_margin(geo, X, geo.r0)
    where = "θ=0, " + where
    tau = tau_of(lam, epsilon, geo.D_max)
    for i in np.flatnonzero(traj.t <= tau):
        h = _outputs(traj.W[i], traj.a[i], X, traj.gamma)
        if np.mean(np.abs(h) * nx) >= geo.delta0 or np.any(np.abs(h) >= np.abs(geo.r0)):
            continue
        m, wh = lemma12_margin(geo, X, np.asarray(traj._loss().derivative(h, traj.y)))
        if m < worst:
            worst, where = m, f"t={traj.t[i]:.4g}, {wh}"
    if not math.isfinite(worst):
        worst = 0.0
        where = "no critical ray"
    return _result("Lemma 12", {"G has no saddle point": not geo.has_saddle},
                   worst >= -ZERO_TOL * geo.D_max, worst, 0.0, worst, where,
                   "∃ε_M: ε_M <v, D^θ_{u(v)}> ≤ 0 for v = ±J·dir(M) on each critical ray")


def check_lemma13(traj: Trajectory, geo: Geometry, lam: float, epsilon: float) -> CheckResult:
    """Lemma 13 (invariance) on the snapshots ``t ≤ τ``: once
    ``a_j D(w_j^t, θ^t) ∈ A^{-1}(A(w_j^t)) ∪ {0}`` with ``w_j^t ≠ 0``, the face of ``w_j`` stays
    the same at every later snapshot ``≤ τ``.  Measured: number of neurons leaving their face."""
    tau = tau_of(lam, epsilon, geo.D_max)
    idx = np.flatnonzero(traj.t <= tau * (1 + 1e-12))
    X = traj.X
    m = traj.m
    locked = np.full(m, -1)
    bad, where = 0, ""
    for i in idx:
        r = _residual(traj, traj.W[i], traj.a[i])
        Dp = _D_by_pattern(traj, i, r)
        for j in range(m):
            p = int(traj.pattern[i, j])
            if locked[j] >= 0:
                if p != locked[j]:
                    bad += 1
                    where = where or f"neuron {j} leaves u={traj.patterns[locked[j]].tolist()} " \
                                     f"at t={traj.t[i]:.4g}"
                    locked[j] = p
                continue
            u = traj.patterns[p]
            if not np.any(u):
                continue
            v = traj.a[i, j] * Dp[p]
            if np.linalg.norm(v) <= ZERO_TOL * abs(traj.a[i, j]) * geo.D_max or np.array_equal(
                    _pattern_of(v, X), u):
                locked[j] = p
    hyp = _theorem1_hyp(traj, geo, lam, geo.lambda_star(1.0, epsilon))
    return _result("Lemma 13", hyp, bad == 0, bad, 0, -bad,
                   where or f"{int((locked >= 0).sum())} neurons locked on {idx.size} "
                   "snapshots ≤ τ",
                   "face constancy after the inclusion a D(w,θ) ∈ A^{-1}(A(w)) ∪ {0}")


# --------------------------------------------------------------------------------------------
# Section 4 / Appendix F: phase times and Lemmas 4–7, 15–24, Theorems 2 and 4, Lemma 8
# --------------------------------------------------------------------------------------------


def assumptions456(data: Dataset) -> dict[str, bool]:
    """Assumptions 4, 5, 6 at the dataset (square loss, ReLU), by the checkers of
    :mod:`proofs_checks.assumptions`."""
    from .assumptions import check_assumption4, check_assumption5, check_assumption6
    from .faces import geometry as face_geometry

    g = face_geometry(data, "square", 0.0)
    return {r.name: bool(r.holds)
            for r in (check_assumption4(g), check_assumption5(g), check_assumption6(g))}


def in_assumption3(data: Dataset, eta: float = 1 / 6) -> bool:
    """Is the data inside the boxes of Assumption 3 for some ``η' < eta``?"""
    X, y = np.asarray(data.X, float), np.asarray(data.y, float)
    if X.shape != (3, 2):
        return False
    e = max(X[0, 0] + 1, X[0, 1] - 1, y[0] - 1, abs(X[1, 0]), abs(X[1, 1] - 1), y[1],
            1 - X[2, 0], X[2, 1] - 1, y[2] - 1)
    ok = (X[0, 0] > -1 and X[0, 1] >= 1 and y[0] >= 1 and y[1] > 0 and X[2, 0] < 1
          and X[2, 1] >= 1 and y[2] >= 1)
    return bool(ok and e < eta)


@dataclass
class Phases:
    """Sets ``𝓘``, ``𝓝``, vectors ``D*``, ``β*`` and the phase times of Section 4.1.

    ``tau2``: first ``t ≥ τ`` with ``Σ_𝓘 a_i² ≥ ε_2`` (Lemma 5); ``tau3``: first ``t ≥ τ_2``
    where one of the four conditions of the definition of ``τ_3`` (proof of Lemma 6) holds;
    ``trigger3``: which (1: ``‖β* − Σ_{𝓘∪𝓝} a w‖ ≤ ε_3``, 2: pairwise alignment
    ``≤ 1 − λ^ε``, 3: ``<𝗐_i, x_k> ≤ δ'‖x_k‖``, 4: ``Σ_𝓝 a² ≥ λ^{2(1−ε)}``).  ``None`` when not
    reached within the horizon.  Located by bisection on the dense solution to ``1e-9``.
    """

    I: NDArray[np.bool_]  # noqa: E741  (the paper's 𝓘)
    N: NDArray[np.bool_]
    D_star: Array
    beta_star: Array
    tau: float
    tau2: float | None
    tau3: float | None
    trigger3: int | None
    state2: tuple[Array, Array] | None
    state3: tuple[Array, Array] | None
    eps2: float
    eps3: float
    delta_prime: float


def _tau3_trigger(W, a, ph_I, ph_N, X, beta, lam, eps, eps3, dprime) -> int:
    """Index (1–4) of the first true condition in the definition of ``τ_3``, 0 if none."""
    if np.linalg.norm(beta - (a[ph_I | ph_N] @ W[ph_I | ph_N])) <= eps3:
        return 1
    Wn = W[ph_I] / a[ph_I, None]
    if Wn.shape[0] and np.min(Wn @ Wn.T) <= 1 - lam**eps:
        return 2
    if Wn.shape[0] and np.any(Wn @ X.T <= dprime * np.linalg.norm(X, axis=1)):
        return 3
    if np.sum(a[ph_N] ** 2) >= lam ** (2 * (1 - eps)):
        return 4
    return 0


def _first_time(traj: Trajectory, t_from: float, pred) -> tuple[float | None, Any]:
    """First time ``≥ t_from`` with ``pred(W, a)`` truthy: snapshot scan then bisection."""
    idx = np.flatnonzero(traj.t >= t_from)
    prev_t = t_from
    prev_state = traj.state(t_from)
    if pred(*prev_state):
        return t_from, prev_state
    for i in idx:
        if pred(traj.W[i], traj.a[i]):
            lo, hi = prev_t, float(traj.t[i])
            hs = (traj.W[i], traj.a[i])
            while hi - lo > 1e-9 * max(1.0, hi):
                mid = 0.5 * (lo + hi)
                s = traj.state(mid)
                if pred(*s):
                    hi, hs = mid, s
                else:
                    lo = mid
            return hi, hs
        prev_t = float(traj.t[i])
    return None, None


def locate_phases(traj: Trajectory, geo: Geometry, lam: float, epsilon: float, eps2: float,
                  eps3: float, delta_prime: float) -> Phases:
    """Locate ``τ``, ``τ_2``, ``τ_3`` of Section 4.1 on the trajectory from their definitions."""
    for name, v in (("eps2", eps2), ("eps3", eps3), ("delta_prime", delta_prime)):
        if not v > 0:
            raise ValueError(f"{name} must be positive, got {v!r}")
    X, y = traj.X, traj.y
    n = X.shape[0]
    I = (traj.a[0] > 0) & np.any(traj.W[0] @ X.T > 0, axis=1)  # noqa: E741  (𝓘)
    N = traj.a[0] < 0
    D_star = y @ X / n
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    tau = tau_of(lam, epsilon, geo.D_max)
    t2, s2 = _first_time(traj, tau, lambda W, a: np.sum(a[I] ** 2) >= eps2)
    t3 = s3 = trig = None
    if t2 is not None:
        t3, s3 = _first_time(traj, t2, lambda W, a: _tau3_trigger(
            W, a, I, N, X, beta, lam, epsilon, eps3, delta_prime) > 0)
        if t3 is not None:
            trig = _tau3_trigger(*s3, I, N, X, beta, lam, epsilon, eps3, delta_prime)
    return Phases(I, N, D_star, beta, tau, t2, t3, trig, s2, s3, eps2, eps3, delta_prime)


#: Assumptions needed by each Section 4 statement in its Appendix F generality.
_NEEDS = {"Lemma 4": 4, "Lemma 15": 4, "Lemma 5": 5, "Lemma 6": 5, "Lemma 16": 5, "Lemma 17": 5,
          "Lemma 18": 5}


def _sec4_hyp(traj: Trajectory, data: Dataset, lam: float, lam_star: float,
              statement: str = "Lemma 7") -> dict[str, bool]:
    """Hypotheses of a Section 4 statement: square loss and ReLU, Assumptions 4 (Lemmas 4, 15),
    4–5 (Lemmas 5, 6, 16–18) or 4–6 (Lemmas 7, 19–24, Theorem 4), Eq. (4), ``λ < λ*_{α_0}``
    (a computable necessary part of ``λ < λ̃``)."""
    upto = _NEEDS.get(statement, 6)
    a = {k: v for k, v in assumptions456(data).items() if int(k[-1]) <= upto}
    return {"square loss, ReLU": traj.loss_name == "square" and traj.gamma == 0.0, **a,
            "Eq. (4) at init": _eq4(traj), "λ < λ*": lam < lam_star}


def check_lemma4(traj: Trajectory, data: Dataset, geo: Geometry, ph: Phases, lam: float,
                 epsilon: float, alpha0: float) -> CheckResult:
    """Lemma 4 at ``τ``: (1) for ``i ∈ 𝓘``: ``‖D*‖ − <D*, w_i/a_i> ≤ c_{α_i} λ^ε`` (the
    ``O(λ^ε)`` made explicit with Theorem 1's Eq. (37), ``α_i`` the neuron's own Condition-1
    level capped by ``α_0``) and ``a_i^0 ≤ a_i^τ ≤ a_i^0 λ^{−2ε}``; (2) ``i ∈ 𝓝``:
    ``a_i^0 ≤ a_i^τ ≤ 0``; (3) the other neurons never move (all snapshots)."""
    i = _index_at(traj, ph.tau)
    W, a = traj.W[i], traj.a[i]
    a0 = traj.a[0]
    mis = np.linalg.norm(ph.D_star) - (W @ ph.D_star) / a
    _, m1 = condition1(traj, alpha0)
    ok1 = np.ones(traj.m, bool)
    margins = np.full(traj.m, np.inf)
    if ph.I.any():
        c = geo.c_alpha0(alpha0)
        bound = c * lam**epsilon
        margins[ph.I] = bound - mis[ph.I]
        ok1[ph.I] = (mis[ph.I] <= bound) & (a[ph.I] >= a0[ph.I] * (1 - 1e-12)) & (
            a[ph.I] <= a0[ph.I] * lam ** (-2 * epsilon))
    ok2 = ~ph.N | ((a >= a0 * (1 + 1e-12)) & (a <= 0))
    rest = ~(ph.I | ph.N)
    ok3 = np.all(traj.W[:, rest] == traj.W[0, rest]) and np.all(traj.a[:, rest] == a0[rest])
    ok = bool(ok1.all() and ok2.all() and ok3)
    hyp = _sec4_hyp(traj, data, lam, geo.lambda_star(alpha0, epsilon), "Lemma 4")
    hyp["every i ∈ 𝓘 satisfies Condition 1(α_0)"] = bool(np.all(m1[ph.I] > 0))
    j = int(np.argmin(margins)) if ph.I.any() else 0
    return _result("Lemma 4", hyp, ok, float(np.max(mis[ph.I])) if ph.I.any() else 0.0,
                   c * lam**epsilon if ph.I.any() else None, float(margins[j]),
                   f"τ={ph.tau:.4g}, neuron {j}; |𝓘|={int(ph.I.sum())}, |𝓝|={int(ph.N.sum())}",
                   "measured = max_𝓘 ‖D*‖ − <D*, w/a>; bound c_{α_0} λ^ε (Eq. 37); items 2, 3 "
                   "explicit; the O(λ^ε) rate itself: --sweep")


def check_lemma5(traj: Trajectory, data: Dataset, geo: Geometry, ph: Phases, lam: float,
                 epsilon: float, alpha0: float) -> CheckResult:
    """Lemma 5 at ``τ_2``: (1) ``τ_2 ∈ (τ, ∞)`` exists with ``Σ_𝓘 a² = ε_2``; (2)
    ``min_{i∈𝓘,k} <w_i/a_i, x_k> > 0`` (its ``Ω(1)`` size is only measured); (3)
    ``1 − min <𝗐_i, 𝗐_j>`` measured against ``λ^{1−ε}`` (``O(·)``: rate in the sweep);
    (4) ``a_i^0 ≤ a_i^{τ_2} ≤ 0`` for ``i ∈ 𝓝``.  The range ``ε_2 ∈ [c'λ^{ε/2}, ε_2*]``
    involves unspecified constants and is not checked."""
    hyp = _sec4_hyp(traj, data, lam, geo.lambda_star(alpha0, epsilon), "Lemma 5")
    if ph.tau2 is None:
        return CheckResult("Lemma 5", hyp, "violated" if all(hyp.values()) and traj.success
                           and traj.t[-1] > 10 * ph.tau else "not applicable",
                           note=f"Σ_𝓘 a² never reached ε_2={ph.eps2:g} by t={traj.t[-1]:.4g}")
    W, a = ph.state2
    Wn = W[ph.I] / a[ph.I, None]
    corr = float(np.min(Wn @ traj.X.T))
    align = float(1 - np.min(Wn @ Wn.T))
    a0 = traj.a[0]
    ok4 = bool(np.all(~ph.N | ((a >= a0 * (1 + 1e-12)) & (a <= 0))))
    ok1 = ph.tau2 > ph.tau and abs(np.sum(a[ph.I] ** 2) - ph.eps2) <= 1e-6 * ph.eps2
    return _result("Lemma 5", hyp, bool(ok1 and corr > 0 and ok4), align, lam ** (1 - epsilon),
                   corr, f"τ_2={ph.tau2:.6g}",
                   f"measured = 1 − min<𝗐_i,𝗐_j> (ratio to λ^(1−ε): "
                   f"{align / lam ** (1 - epsilon):.3g});"
                   f" margin = min <𝗐_i, x_k>; items 1, 4 explicit")


def check_lemma6(traj: Trajectory, data: Dataset, geo: Geometry, ph: Phases, lam: float,
                 epsilon: float, alpha0: float) -> CheckResult:
    """Lemma 6 at ``τ_3``: the first condition of the definition triggers, (1)
    ``‖β* − Σ_𝓘 a w‖ ≤ ε_3``, (2) ``<𝗐_i, x_k> > 0`` (and ``> δ'‖x_k‖``), (3)
    ``a_i^0 λ^{−ε} < a_i^{τ_3} ≤ 0`` on 𝓝.  ``ε_3 ≥ λ^{c_3 ε ε_2}`` (``c_3`` unspecified) not
    checked."""
    hyp = _sec4_hyp(traj, data, lam, geo.lambda_star(alpha0, epsilon), "Lemma 6")
    if ph.tau3 is None:
        return CheckResult("Lemma 6", hyp, "not applicable",
                           note="τ_2 or τ_3 not reached within the horizon")
    W, a = ph.state3
    err = float(np.linalg.norm(ph.beta_star - a[ph.I] @ W[ph.I]))
    Wn = W[ph.I] / a[ph.I, None]
    corr = float(np.min(Wn @ traj.X.T / np.linalg.norm(traj.X, axis=1)))
    a0 = traj.a[0]
    ok3 = bool(np.all(~ph.N | ((a > a0 * lam ** (-epsilon)) & (a <= 0))))
    slack = float(np.sum(a[ph.N] ** 2))  # ‖Σ_𝓝 a w‖ ≤ Σ_𝓝 a² (reading: τ_3 uses 𝓘 ∪ 𝓝)
    ok = (ph.trigger3 == 1 and err <= (ph.eps3 + slack) * (1 + 1e-9) and corr > ph.delta_prime
          and ok3)
    return _result("Lemma 6", hyp, bool(ok), err, ph.eps3 + slack, ph.eps3 + slack - err,
                   f"τ_3={ph.tau3:.6g} (trigger {ph.trigger3})",
                   f"min <𝗐_i, x_k>/‖x_k‖ = {corr:.4g} vs δ'={ph.delta_prime:g}; item 3 explicit")


def _window(traj: Trajectory, t0: float, t1: float) -> NDArray[np.intp]:
    return np.flatnonzero((traj.t >= t0) & (traj.t <= t1))


def check_lemma17_18(traj: Trajectory, data: Dataset, geo: Geometry, ph: Phases, lam: float,
                     epsilon: float, alpha0: float) -> list[CheckResult]:
    """Lemma 17 (``<𝗐_i, x_k> > δ'‖x_k‖`` on ``[τ_2, τ_3]``) and Lemma 18
    (``Σ_𝓘 a² ≥ ε_2`` there), at every snapshot in the window and at ``τ_2``, ``τ_3``."""
    hyp = _sec4_hyp(traj, data, lam, geo.lambda_star(alpha0, epsilon), "Lemma 17")
    if ph.tau3 is None:
        return [CheckResult(s, hyp, "not applicable", note="τ_3 not reached")
                for s in ("Lemma 17", "Lemma 18")]
    states = [ph.state2] + [(traj.W[i], traj.a[i]) for i in _window(traj, ph.tau2, ph.tau3)]
    states.append(ph.state3)
    nx = np.linalg.norm(traj.X, axis=1)
    c17 = min(float(np.min((W[ph.I] / a[ph.I, None]) @ traj.X.T / nx)) for W, a in states)
    s18 = min(float(np.sum(a[ph.I] ** 2)) for _, a in states)
    return [
        _result("Lemma 17", hyp, c17 > ph.delta_prime, c17, ph.delta_prime, c17 - ph.delta_prime,
                f"[τ_2, τ_3], {len(states)} points", "min <𝗐_i, x_k>/‖x_k‖ over 𝓘"),
        _result("Lemma 18", hyp, s18 >= ph.eps2 * (1 - 1e-9), s18, ph.eps2, s18 - ph.eps2,
                f"[τ_2, τ_3], {len(states)} points", "min Σ_𝓘 a_i²"),
    ]


def check_lemma7(traj: Trajectory, data: Dataset, geo: Geometry, ph: Phases, lam: float,
                 epsilon: float, alpha0: float, conv_tol: float = 1e-6,
                 statement: str = "Lemma 7") -> CheckResult:
    """Lemma 7 / Theorem 2 / Theorem 4 at the end of the run (a finite-horizon proxy for
    ``t → ∞``): every neuron is all-active or all-inactive (``<w_i, x_k> ≥ 0 ∀k`` or
    ``≤ 0 ∀k``), ``‖Σ_{active} a_i w_i − β*‖ ≤ conv_tol`` and ``‖h_θ(X) − Xβ*‖_∞ ≤ conv_tol``,
    ``L(θ^T) ≥ L_β* > 0`` (``lim L > 0``) and no ``𝓘`` neuron crosses a data point after
    ``τ_3`` (``τ_4 = ∞`` with ``δ_4 = 0``).  ``ε_4``, ``δ_4`` are ``Θ(1)``: only measured."""
    hyp = _sec4_hyp(traj, data, lam, geo.lambda_star(alpha0, epsilon))
    if statement == "Theorem 2":
        hyp = {k: v for k, v in hyp.items() if not k.startswith("Assumption")}
        hyp["Assumption 3 (η < 1/6)"] = in_assumption3(data)
    X, y = traj.X, traj.y
    W, a = traj.W[-1], traj.a[-1]
    S = W @ X.T
    tol = 1e-12 * np.max(np.abs(S))
    linear = np.all(S >= -tol, axis=1) | np.all(S <= tol, axis=1)
    active = np.all(S > tol, axis=1)
    beta_T = a[active] @ W[active]
    err = float(np.linalg.norm(beta_T - ph.beta_star))
    herr = float(np.max(np.abs(_outputs(W, a, X, traj.gamma) - X @ ph.beta_star)))
    Lb = float(0.5 * np.mean((X @ ph.beta_star - y) ** 2))
    LT = float(traj.step_loss[-1])
    stay = True
    if ph.tau3 is not None:
        idx = _window(traj, ph.tau3, traj.t[-1])
        stay = bool(np.all((traj.W[idx][:, ph.I] @ X.T) > 0))
    ok = bool(linear.all() and err <= conv_tol and herr <= conv_tol and LT >= Lb * (1 - 1e-12)
              and Lb > 0 and stay)
    return _result(statement, hyp, ok, err, conv_tol, conv_tol - err,
                   f"t={traj.t[-1]:.5g}; {int((~linear).sum())} mixed neurons",
                   f"‖β_T − β*‖, ‖h − Xβ*‖_∞={herr:.3g}, L_T − L_β*={LT - Lb:.3g}, L_β*={Lb:.4g}; "
                   "finite-horizon proxy of the limit")


def _fit_rate(t: Array, v: Array) -> tuple[float, float]:
    """Least-squares slope of ``log v`` against ``t`` (decay rate) and its standard error."""
    sel = v > 0
    t, lv = t[sel], np.log(v[sel])
    if t.size < 3:
        return math.nan, math.nan
    A = np.vstack([t, np.ones_like(t)]).T
    coef, res, *_ = np.linalg.lstsq(A, lv, rcond=None)
    dof = max(t.size - 2, 1)
    s2 = float(np.sum((lv - A @ coef) ** 2)) / dof
    se = math.sqrt(s2 / float(np.sum((t - t.mean()) ** 2)))
    return -float(coef[0]), se


def phase3_series(traj: Trajectory, ph: Phases) -> dict[str, Array]:
    """On the snapshots of ``[τ_3, T]``: ``R_t`` (Appendix F.4), ``L − L_β*``, ``‖D^t‖``,
    ``‖θ^t − θ^{τ_3}‖``, ``max |h − Xβ*|``, ``max_𝓘 ‖𝗐_i^t − 𝗐_i^{τ_3}‖`` and the squared
    gradient norm (convention ``σ'(0) = 0``)."""
    from pwflow.model import gradient

    X, y = traj.X, traj.y
    idx = _window(traj, ph.tau3, traj.t[-1])
    W3, a3 = ph.state3
    Lb = 0.5 * np.mean((X @ ph.beta_star - y) ** 2)
    out = {k: [] for k in ("t", "R", "gap", "Dnorm", "dtheta", "herr", "dw", "g2")}
    for i in idx:
        W, a = traj.W[i], traj.a[i]
        S = W @ X.T
        mixed = np.any(S > 0, axis=1) & np.any(S < 0, axis=1)
        h = _outputs(W, a, X, traj.gamma)
        gW, ga = gradient(W, a, X, y, traj._loss(), traj.gamma)
        out["t"].append(traj.t[i])
        out["R"].append(0.5 * np.sum(W[mixed] ** 2))
        out["gap"].append(0.5 * np.mean((h - y) ** 2) - Lb)
        out["Dnorm"].append(np.linalg.norm((y - h) @ X / X.shape[0]))
        out["dtheta"].append(math.sqrt(np.sum((W - W3) ** 2) + np.sum((a - a3) ** 2)))
        out["herr"].append(np.max(np.abs(h - X @ ph.beta_star)))
        out["dw"].append(np.max(np.linalg.norm(W[ph.I] / a[ph.I, None] - W3[ph.I] / a3[ph.I, None],
                                               axis=1)) if ph.I.any() else 0.0)
        out["g2"].append(np.sum(gW**2) + np.sum(ga**2))
    return {k: np.asarray(v, float) for k, v in out.items()}


def check_phase3(traj: Trajectory, data: Dataset, geo: Geometry, ph: Phases, lam: float,
                 epsilon: float, alpha0: float, roundoff: float = 1e-13) -> list[CheckResult]:
    """Lemmas 19–24 on ``[τ_3, T]``.

    * Lemma 21 (explicit part): ``‖g_t‖² ≥ σ_min(H)‖β*‖ (L − L_β*)`` at every snapshot with
      ``L − L_β* > roundoff`` (the ``O(λ^{2(1−ε)} e^{−c_4 t/4})`` correction is dropped: a
      failure there is reported as ``violated`` only if it exceeds ``λ^{2(1−ε)}``).
    * Lemma 22: the fitted decay rate of ``L − L_β*`` must be ``≥ σ_min(H)‖β*‖/2 ≥ a``
      (sufficient); lower rates are ``not checked`` (``c_4`` is not computed here).
    * Lemmas 19, 20, 23, 24: ``O(·)`` only — measured ratios, ``not checked``.
    """
    hyp = _sec4_hyp(traj, data, lam, geo.lambda_star(alpha0, epsilon))
    names = ("Lemma 19", "Lemma 20", "Lemma 21", "Lemma 22", "Lemma 23", "Lemma 24")
    if ph.tau3 is None:
        return [CheckResult(s, hyp, "not applicable", note="τ_3 not reached") for s in names]
    s = phase3_series(traj, ph)
    X = traj.X
    H = X.T @ X / X.shape[0]
    smin = float(np.linalg.eigvalsh(H)[0])
    kappa = smin * float(np.linalg.norm(ph.beta_star))
    eps4 = float(np.max(s["dtheta"]))
    out = []
    out.append(CheckResult("Lemma 19", hyp, "not checked", float(np.max(s["herr"])),
                           ph.eps3 + eps4, None, f"[τ_3, T], ε_4 := sup‖θ−θ^τ3‖ = {eps4:.3g}",
                           "O(ε_3 + ε_4): measured sup |h − Xβ*|"))
    rate_R, se_R = _fit_rate(s["t"], s["R"])
    out.append(CheckResult("Lemma 20", hyp, "not checked", float(np.max(s["R"])),
                           lam ** (2 * (1 - epsilon)), None, "[τ_3, T]",
                           f"sup R_t; fitted decay rate {rate_R:.3g} ± {se_R:.2g} "
                           "(c_4 not computed; R ≡ 0 when no neuron is mixed)"))
    sel = s["gap"] > roundoff
    if sel.any():
        ratio = s["g2"][sel] / s["gap"][sel]
        k = int(np.argmin(ratio))
        slack = (s["g2"][sel] - kappa * s["gap"][sel])[k]
        ok = bool(np.all(s["g2"][sel] - kappa * s["gap"][sel] >= -lam ** (2 * (1 - epsilon))))
        out.append(_result("Lemma 21", hyp, ok, float(ratio[k]), kappa, float(slack),
                           f"t={s['t'][sel][k]:.5g}",
                           "min ‖g‖²/(L − L_β*) vs σ_min(H)‖β*‖ (correction ≤ λ^{2(1−ε)})"))
        rate, se = _fit_rate(s["t"][sel], s["gap"][sel])
        ok22 = rate - 2 * se >= kappa / 2
        out.append(CheckResult("Lemma 22", hyp, _verdict(hyp, True) if ok22 else "not checked",
                               rate, kappa / 2, rate - kappa / 2, "[τ_3, T]",
                               f"fitted decay rate of L − L_β* ({rate:.4g} ± {se:.2g}) vs "
                               "σ_min(H)‖β*‖/2 ≥ a; below it only c_4/4 could decide"))
    else:
        out.append(CheckResult("Lemma 21", hyp, "not applicable", note="L − L_β* at roundoff"))
        out.append(CheckResult("Lemma 22", hyp, "not applicable", note="L − L_β* at roundoff"))
    integral = float(np.trapezoid(s["Dnorm"], s["t"])) if s["t"].size > 1 else 0.0
    out.append(CheckResult("Lemma 23", hyp, "not checked", integral, ph.eps3, None, "[τ_3, T]",
                           f"∫‖D^t‖dt = O(ε_3): ratio {integral / ph.eps3:.3g}"))
    out.append(CheckResult("Lemma 24", hyp, "not checked", float(np.max(s["dw"])), ph.eps3, None,
                           "[τ_3, T]", f"max_𝓘 ‖𝗐^t − 𝗐^τ3‖ = O(ε_3): ratio "
                           f"{np.max(s['dw']) / ph.eps3:.3g}"))
    return out


def check_lemma8(data: Dataset) -> CheckResult:
    """Lemma 8: Assumption 3 with ``η < 1/6`` ⇒ Assumptions 4, 5, 6 — on this dataset (the
    certified check over whole boxes is :func:`proofs_checks.lemma8.certify_lemma8`)."""
    hyp = {"Assumption 3 (η < 1/6)": in_assumption3(data)}
    a = assumptions456(data)
    ok = all(a.values())
    return _result("Lemma 8", hyp, ok, float(sum(a.values())), 3.0, float(sum(a.values())) - 3,
                   "dataset", "Assumptions 4, 5, 6 at this point (proofs_checks.assumptions); "
                   "box-wide: check_lemma8_box")


def check_lemma8_box(eta: float, max_boxes: int = 200_000) -> CheckResult:
    """Lemma 8 over the whole box of Assumption 3 with parameter ``eta`` — the certified
    branch-and-bound of :func:`proofs_checks.lemma8.certify_lemma8` (groups A4–A6).

    ``holds``: every obligation certified; ``violated``: an exact (sympy) counterexample of
    some obligation inside the box; ``not checked``: inconclusive within ``max_boxes``."""
    from proofs_checks.lemma8 import certify_lemma8

    if not 0 < eta < 1:
        raise ValueError(f"eta must be in (0, 1), got {eta!r}")
    cert = certify_lemma8(eta, max_boxes, groups=("A4", "A5", "A6"))
    v = cert.verdict()
    bad = [r for r in cert.results if r.verdict != "certified"]
    exact = [float(r.exact_value) for r in bad if r.exact_value is not None]
    worst = min(exact) if exact else min(r.min_lower_bound for r in cert.results)
    verdict = {"certified": "holds", "counterexample": "violated"}.get(v, "not checked")
    if eta >= 1 / 6:
        verdict = "hypotheses unmet"
    where = "; ".join(f"{r.name}: {r.verdict}" + (f" at {tuple(round(p, 6) for p in r.point)}"
                                                  if r.point else "") for r in bad)
    return CheckResult(f"Lemma 8 (box η={eta:g})", {"η < 1/6": eta < 1 / 6}, verdict,
                       float(len(bad)), 0.0, worst, where or "all obligations certified",
                       "certified interval branch and bound over the box (proofs_checks.lemma8);"
                       " measured = number of uncertified obligations")


def check_lemma15_16(traj: Trajectory, data: Dataset, geo: Geometry, ph: Phases, lam: float,
                     epsilon: float, alpha0: float) -> list[CheckResult]:
    """Lemma 15 (``<𝗐_i^τ, x_k> ≥ <D*/‖D*‖, x_k> − Θ(ε_2)``) and Lemma 16
    (``Σ_𝓘 a² = O(1)`` on ``[τ_2, τ_3]``): hidden constants, measured only."""
    hyp = _sec4_hyp(traj, data, lam, geo.lambda_star(alpha0, epsilon), "Lemma 5")
    i = _index_at(traj, ph.tau)
    W, a = traj.W[i], traj.a[i]
    d = ph.D_star / np.linalg.norm(ph.D_star)
    deficit = (float(np.max(traj.X @ d - (W[ph.I] / a[ph.I, None]) @ traj.X.T))
               if ph.I.any() else 0.0)
    out = [CheckResult("Lemma 15", hyp, "not checked", deficit, ph.eps2, None, f"τ={ph.tau:.4g}",
                       "max_{i,k} <D*/‖D*‖ − 𝗐_i^τ, x_k> (Θ(ε_2) slack unspecified)")]
    if ph.tau3 is None:
        out.append(CheckResult("Lemma 16", hyp, "not applicable", note="τ_3 not reached"))
    else:
        idx = _window(traj, ph.tau2, ph.tau3)
        sup = max([float(np.sum(ph.state3[1][ph.I] ** 2))]
                  + [float(np.sum(traj.a[i][ph.I] ** 2)) for i in idx])
        out.append(CheckResult("Lemma 16", hyp, "not checked", sup, None, None, "[τ_2, τ_3]",
                               "sup Σ_𝓘 a² = O(1): λ-independence is seen in the sweep"))
    return out
