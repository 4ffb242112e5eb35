"""Checkers for Assumptions 1–6 of the paper, each returning a verdict with margins.

A margin is positive when the assumption holds (its size says by how much) and ``≤ 0`` when it
fails.  Assumption 2 (a probabilistic statement) is checked through its deterministic
consequences used in the proofs: the two conditions of Lemma 2.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linprog

from pwflow.data import Dataset
from pwflow.model import LIPSCHITZ_ROUNDING, Loss, get_loss

from .constants import D_tilde_beta, Undefined, _mixed, assumption5_margins, beta_star, kappa_set
from .faces import Geometry, geometry

__all__ = [
    "AssumptionResult",
    "check_assumption1",
    "check_assumption2",
    "check_assumption3",
    "check_assumption4",
    "check_assumption5",
    "check_assumption6",
    "check_all",
]

_MARGIN = 1e-9


@dataclass(frozen=True)
class AssumptionResult:
    """Verdict of one assumption: ``holds``, the smallest ``margin`` and ``details``."""

    name: str
    holds: bool
    margin: float
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "holds": self.holds,
            "margin": self.margin,
            "details": self.details,
        }


def check_assumption1(loss: str | Loss, y) -> AssumptionResult:
    """Assumption 1 via :meth:`pwflow.model.Loss.check_assumption1`.

    Margin ``min(1 − Lip, min|∂ℓ(0, y)|)`` (Lip measured on a grid).  ``Lip ≤ 1`` is a
    non-strict bound: a constant within :data:`pwflow.model.LIPSCHITZ_ROUNDING` of 1 (the
    square loss's, exactly 1) is read as 1, and its margin is 0 with the assumption holding
    (met with equality); ``∂ℓ(0, y) ≠ 0`` is strict, a margin 0 there fails.
    """
    rep = get_loss(loss).check_assumption1(np.asarray(y, float))
    lip_margin = 1.0 - rep.lipschitz
    if abs(lip_margin) <= LIPSCHITZ_ROUNDING:
        lip_margin = 0.0  # exactly 1-Lipschitz to the grid's rounding: the bound's equality
    margin = min(lip_margin, rep.min_abs_derivative_at_zero)
    return AssumptionResult(
        "Assumption 1",
        rep.holds,
        float(margin),
        {
            "lipschitz": rep.lipschitz,
            "min_abs_derivative_at_zero": rep.min_abs_derivative_at_zero,
            "message": rep.message,
        },
    )


def _independence_margin(V: np.ndarray) -> float:
    """``min`` over families of ``min(n, d)`` normalised rows of their smallest singular value."""
    n, d = V.shape
    Vn = V / np.maximum(np.linalg.norm(V, axis=1), 1e-300)[:, None]
    m = min(n, d)
    return float(
        min(
            np.linalg.svd(Vn[list(c)], compute_uv=False)[-1]
            for c in itertools.combinations(range(n), m)
        )
    )


def _boundary_margin(geo: Geometry, f, sign: int) -> float:
    """LP: ``max t`` s.t. ``D ∈ 𝔇_u``, ``<D, x_k> = 0 (k ∈ K)``, ``sign u_k <D, x̂_k> ≥ t``.

    ``t* < 0``: ``𝔇_u`` misses ``sign·cl A^{-1}(u)`` (margin ``−t*``); ``t* > 0``: it meets the
    relative interior, and it then misses the boundary iff ``X_K Z_u`` is invertible (the
    intersection is the single point ``D_u``); ``t* = 0``: it touches the boundary (violation).
    """
    K, act = f.K, f.u != 0
    X = geo.X
    if not np.any(act):
        return np.inf
    Xa = sign * f.u[act, None] * X[act] / np.linalg.norm(X[act], axis=1)[:, None]
    p = len(K)
    # D = D̃ − Z η ;  variables (η_K, t)
    A_ub = np.hstack([Xa @ f.Z, np.ones((Xa.shape[0], 1))])
    b_ub = Xa @ f.D_tilde
    A_eq = np.hstack([-(X[K] @ f.Z), np.zeros((p, 1))]) if p else None
    b_eq = -(X[K] @ f.D_tilde) if p else None
    scale = float(np.linalg.norm(f.D_tilde) + np.linalg.norm(f.Z))
    res = linprog(
        np.r_[np.zeros(p), -1.0],
        A_ub=A_ub,
        b_ub=b_ub,
        A_eq=A_eq,
        b_eq=b_eq,
        bounds=[(geo.gamma, 1.0)] * p + [(None, scale)],
        method="highs",
    )
    if res.status == 2:
        return np.inf  # the equalities alone are infeasible: empty intersection
    t = -float(res.fun)
    if t < 0:
        return -t
    if p and (X[K] @ f.Z).shape[0] == p:
        s = np.linalg.svd(X[K] @ f.Z, compute_uv=False)
        return min(t, float(s[-1])) if t > 0 else 0.0
    return t


def check_assumption2(geo: Geometry) -> AssumptionResult:
    """Lemma 2's conditions: (i) every family of ``≤ d`` vectors ``r_k x_k`` is independent;
    (ii) for every ``u`` with ``0 ∉ 𝔇_u``, ``𝔇_u ∩ ±∂ cl A^{-1}(u) = ∅``."""
    ind = _independence_margin(geo.r[:, None] * geo.X)
    worst, where = np.inf, None
    for f in geo.faces:
        if f.zero_in or f.face.dim == 0:
            continue
        for s in (1, -1):
            m = _boundary_margin(geo, f, s)
            if m < worst:
                worst, where = m, (f.u.tolist(), s)
    margin = min(ind, worst)
    return AssumptionResult(
        "Assumption 2",
        bool(margin > _MARGIN),
        float(margin),
        {"independence_margin": ind, "boundary_margin": float(worst), "worst_face": where},
    )


def check_assumption3(data: Dataset, eta: float) -> AssumptionResult:
    """Assumption 3 (three points in the boxes of Section 4) for a given ``η``; margin = the
    smallest signed distance of a coordinate to its interval's ends (open ends need ``> 0``)."""
    if not 0 < eta < 1:
        raise ValueError(f"eta must be in (0, 1), got {eta!r}")
    X, y = np.asarray(data.X, float), np.asarray(data.y, float)
    if X.shape != (3, 2):
        return AssumptionResult(
            "Assumption 3", False, -np.inf, {"reason": f"X has shape {X.shape}, need (3, 2)"}
        )
    # (value, lo, hi, lo_open, hi_open)
    spec = [
        (X[0, 0], -1, -1 + eta, True, False),
        (X[0, 1], 1, 1 + eta, False, False),
        (y[0], 1, 1 + eta, False, False),
        (X[1, 0], -eta, eta, False, False),
        (X[1, 1], 1 - eta, 1 + eta, False, False),
        (y[1], 0, eta, True, False),
        (X[2, 0], 1 - eta, 1, False, True),
        (X[2, 1], 1, 1 + eta, False, False),
        (y[2], 1, 1 + eta, False, False),
    ]
    margins, ok = [], True
    for v, lo, hi, lo_o, hi_o in spec:
        m = min(v - lo, hi - v)
        margins.append(float(m))
        ok &= (v > lo if lo_o else v >= lo) and (v < hi if hi_o else v <= hi)
    return AssumptionResult(
        "Assumption 3", bool(ok), min(margins), {"eta": eta, "margins": margins}
    )


def check_assumption4(geo: Geometry) -> AssumptionResult:
    """Assumption 4: ``<x_k, x_k'> > 0``, ``y_k > 0``, ``n ≥ d``, ``≤ d`` ``x_k`` independent."""
    n, d = geo.X.shape
    gram = geo.X @ geo.X.T
    det = {
        "min_inner_product": float(gram.min()),
        "min_y": float(geo.y.min()),
        "n_minus_d": n - d,
        "independence_margin": _independence_margin(geo.X),
    }
    margin = min(
        det["min_inner_product"], det["min_y"], det["independence_margin"], float(n - d) + 1.0
    )
    ok = (
        det["min_inner_product"] > 0
        and det["min_y"] > 0
        and n >= d
        and det["independence_margin"] > _MARGIN
    )
    return AssumptionResult("Assumption 4", bool(ok), float(margin), det)


def check_assumption5(geo: Geometry) -> AssumptionResult:
    """Assumption 5: for ``k ∈ 𝒦``, ``y_k‖x_k‖² > sqrt(Σ y²) sqrt(Σ_{k'≠k} <x_k', x_k>²)``."""
    m = assumption5_margins(geo)
    margin = min(m.values()) if m else np.inf
    return AssumptionResult(
        "Assumption 5",
        bool(margin > 0),
        float(margin),
        {"kappa_set": kappa_set(geo), "margins": {str(k): v for k, v in m.items()}},
    )


def check_assumption6(geo: Geometry, delta: float = 0.05) -> AssumptionResult:
    """Assumption 6: ``<β*, x_k> < y_k`` for ``k ∈ 𝒦`` and, for every face with ``u_k = 1``,
    ``u_k' = −1``: (1) ``min_{D ∈ 𝔇_u^{β*}} u_k <D, x_k> > 0`` for ``k ∈ 𝒦``, ``u_k ≠ 0`` with
    ``inf_{w ∈ A^{-1}(u)} |cos(w, x_k)| ≤ δ`` (exact: a linear function on a box, minimised at a
    vertex; the infimum of the cosine is exact by :func:`max_cosine`); (2) the sufficient
    condition ``min_{w ∈ cl A^{-1}(u)} cos(w, D̃_u^{β*}) > 0`` (``A_δ^{-1}(u) ⊂ A^{-1}(u)``);
    (2) is reported (``condition2_established``) but does not set the verdict."""
    from .constants import _min_cos_closure

    beta = beta_star(geo)
    if isinstance(beta, Undefined):
        return AssumptionResult("Assumption 6", False, -np.inf, {"reason": beta.reason})
    K = kappa_set(geo)
    res = geo.y - geo.X @ beta
    first = float(min(res[K])) if K else np.inf
    c1, c2 = np.inf, np.inf
    for f in _mixed(geo):
        Dt = D_tilde_beta(geo, f, beta)
        Kf = f.K
        for k in K:
            if f.u[k] == 0 or _min_cos_closure(geo, f, f.u[k] * geo.X[k]) > delta:
                continue
            contrib = f.u[k] * res[Kf] * (geo.X[Kf] @ geo.X[k]) / geo.n  # η ∈ [0,1] on K(u)
            val = float(f.u[k] * Dt @ geo.X[k] + np.minimum(contrib, 0).sum())
            c1 = min(c1, val)
        nD = float(np.linalg.norm(Dt))
        c2 = min(c2, 0.0 if nD == 0 else _min_cos_closure(geo, f, Dt))
    margin = min(first, c1)
    return AssumptionResult(
        "Assumption 6",
        bool(margin > 0),
        float(margin),
        {
            "residual_margin": first,
            "condition1_margin": c1,
            "delta": delta,
            "condition2_sufficient_margin": c2,
            "condition2_established": bool(c2 > 0),
        },
    )


def check_all(
    data: Dataset,
    loss: str | Loss = "square",
    gamma: float = 0.0,
    eta: float | None = None,
    geo: Geometry | None = None,
) -> list[AssumptionResult]:
    """All checkers (Assumption 3 only when ``eta`` is given)."""
    geo = geometry(data, loss, gamma) if geo is None else geo
    out = [check_assumption1(loss, data.y), check_assumption2(geo)]
    if eta is not None:
        out.append(check_assumption3(data, eta))
    out += [check_assumption4(geo), check_assumption5(geo), check_assumption6(geo)]
    return out
