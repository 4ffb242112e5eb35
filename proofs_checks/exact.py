"""Exact mode: the constants of Appendix D.1 in rational / algebraic arithmetic (sympy).

The combinatorics (which patterns ``u`` are faces) comes from :func:`enumerate_faces`; every
quantity is then recomputed exactly from rational data:

* ``D_u``: box-constrained least squares solved by enumerating the active sets (lower bound,
  upper bound, free) with exact linear solves and an exact KKT check;
* generators of ``cl A^{-1}(u)``: exact null spaces of ``X_K`` for the 1-dimensional faces;
* ``max cos`` over a cone: exact projection (active-set NNLS with exact KKT check), Moreau;
* ``D_max``, ``D_min``, ``α_min,±``, ``δ₀', δ₀''``, ``D*``, ``β*``.

Only sensible for small ``n`` (the enumeration is ``3^{|K|}``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import sympy as sp

from .arrangement import enumerate_faces

__all__ = ["ExactConstants", "exact_constants", "to_rational", "exact_box_ls", "exact_max_cosine"]


def to_rational(a) -> sp.Matrix:
    """A sympy matrix of Rationals (floats converted via ``Rational(str(x))``)."""
    arr = np.atleast_2d(np.asarray(a, dtype=object))
    return sp.Matrix(
        [[sp.Rational(str(v)) if not isinstance(v, sp.Basic) else v for v in row] for row in arr]
    )


def exact_box_ls(b: sp.Matrix, Z: sp.Matrix, lo, hi) -> tuple[sp.Matrix, sp.Matrix]:
    """Exact ``argmin_{η ∈ [lo, hi]^p} ‖b − Z η‖``: returns ``(D, η)`` with ``D = b − Z η``."""
    p = Z.shape[1]
    if p == 0:
        return b, sp.zeros(0, 1)
    for assign in itertools.product((0, 1, 2), repeat=p):
        eta = sp.Matrix([lo if a == 0 else hi for a in assign])
        F = [i for i, a in enumerate(assign) if a == 2]
        if F:
            ZF = Z[:, F]
            M = ZF.T * ZF
            if M.det() == 0:
                continue
            fixed = [i for i in range(p) if i not in F]
            rest = b - (Z[:, fixed] * eta.extract(fixed, [0]) if fixed else sp.zeros(*b.shape))
            sol = M.LUsolve(ZF.T * rest)
            if any(v < lo or v > hi for v in sol):
                continue
            for j, i in enumerate(F):
                eta[i] = sol[j]
        D = b - Z * eta
        g = -(Z.T * D)  # gradient of ½‖b − Zη‖² is −Zᵀ(b − Zη) ... with sign: d/dη = −Zᵀ D
        ok = all(
            (g[i] >= 0 if a == 0 else g[i] <= 0 if a == 1 else g[i] == 0)
            for i, a in enumerate(assign)
        )
        if ok:
            return D, eta
    raise RuntimeError("exact_box_ls: no KKT point (cannot happen for a convex problem)")


def _norm(v: sp.Matrix):
    return sp.sqrt((v.T * v)[0])


def exact_max_cosine(G: list[sp.Matrix], v: sp.Matrix):
    """Exact ``max_{w ∈ cone(G)} cos(w, v)`` (projection by active-set NNLS, Moreau)."""
    m = len(G)
    if m == 0 or all(c == 0 for c in v):
        raise ValueError("exact_max_cosine needs a nonzero v and at least one generator")
    for r in range(m, 0, -1):
        for S in itertools.combinations(range(m), r):
            GS = sp.Matrix.hstack(*[G[i] for i in S])
            M = GS.T * GS
            if M.det() == 0:
                continue
            c = M.LUsolve(GS.T * v)
            if any(ci <= 0 for ci in c):
                continue
            P = GS * c
            res = v - P
            if all((g.T * res)[0] <= 0 for g in G):
                return sp.sqrt((P.T * P)[0] / (v.T * v)[0])
    # projection is 0: maximum on a generator
    return max(((g.T * v)[0] / (_norm(g) * _norm(v)) for g in G), key=lambda e: float(e))


@dataclass
class ExactConstants:
    """Exact values (sympy expressions) of the Appendix D.1 constants and Section 4's D*, β*."""

    D_u: dict
    D_max: sp.Expr
    D_min: sp.Expr
    alpha_min_plus: sp.Expr
    alpha_min_minus: sp.Expr
    alpha_min: sp.Expr
    delta0_prime: sp.Expr
    delta0_second: sp.Expr
    delta0: sp.Expr
    D_star: sp.Matrix
    beta_star: sp.Matrix


def _sign(e) -> int:
    e = sp.nsimplify(e) if not isinstance(e, sp.Basic) else e
    return int(sp.sign(e))


def exact_constants(X, y, gamma=0, r=None) -> ExactConstants:
    """Exact constants for rational data ``X`` (n×d), labels ``y``, square loss by default
    (``r = −y``; pass ``r`` for another loss's ``∂_1 l(0, y)``)."""
    Xr = to_rational(X)
    yr = to_rational(np.reshape(np.asarray(y, dtype=object), (1, -1))).T
    rr = -yr if r is None else to_rational(np.reshape(np.asarray(r, dtype=object), (1, -1))).T
    g = sp.Rational(str(gamma)) if not isinstance(gamma, sp.Basic) else gamma
    n, d = Xr.shape
    Xf = np.array(Xr.tolist(), dtype=float)
    arr = enumerate_faces(Xf)
    rows = [Xr.row(k).T for k in range(n)]
    # exact rays (1-dimensional faces)
    rays = []
    for f in arr.faces:
        if f.dim != 1:
            continue
        ns = sp.Matrix.vstack(*[rows[k].T for k in f.K]).nullspace()[0]
        s = next(_sign((rows[k].T * ns)[0]) * int(f.u[k]) for k in range(n) if f.u[k] != 0)
        rays.append((f.u, s * ns))
    lin = Xr.nullspace()
    Du, data = {}, []
    for f in arr.faces:
        u = f.u
        b = sp.zeros(d, 1)
        for k in range(n):
            if u[k] == 1:
                b -= rr[k] * rows[k] / n
            elif u[k] == -1:
                b -= g * rr[k] * rows[k] / n
        K = list(f.K)
        Z = sp.Matrix.hstack(*[rr[k] * rows[k] / n for k in K]) if K else sp.zeros(d, 0)
        D, eta = exact_box_ls(b, Z, g, 1)
        zero = all(v == 0 for v in D)
        pat = [_sign((rows[k].T * D)[0]) for k in range(n)]
        ext = 0 if zero else (1 if pat == list(u) else -1 if pat == [-v for v in u] else 0)
        Du[tuple(int(v) for v in u)] = D
        data.append((f, D, eta, Z, zero, ext))
    norms = [_norm(D) for _, D, *_ in data]
    D_max = max(norms, key=float)
    D_min = min((nm for nm, t in zip(norms, data, strict=True) if not t[4]), key=float)

    def alpha(sign):
        cs = []
        for f, D, _eta, _Z, zero, ext in data:
            if zero or ext == sign or f.dim == 0:
                continue
            G = [ray for ru, ray in rays if np.all((ru == 0) | (ru == f.u))]
            G += [v for v in lin] + [-v for v in lin]
            cs.append(exact_max_cosine(G, sign * D))
        if not cs:
            return sp.Integer(1)
        c = max(cs, key=float)
        return sp.sqrt(1 - c**2)

    ap, am = alpha(1), alpha(-1)
    d1, d2 = [], []
    for f, D, eta, Z, _zero, ext in data:
        if not ext:
            continue
        if Z.shape[1]:
            smin = sp.sqrt(min((Z.T * Z).eigenvals().keys(), key=float))
            d1 += [smin * sp.Min(e - g, 1 - e) for e in eta]
        d2 += [sp.Abs((rows[k].T * D)[0]) / _norm(rows[k]) for k in range(n) if f.u[k] != 0]
    dp = min(d1, key=float) if d1 else sp.oo
    ds = min(d2, key=float) if d2 else sp.oo
    D_star = -(Xr.T * rr) / n
    beta = (Xr.T * Xr).LUsolve(Xr.T * yr)
    return ExactConstants(
        Du,
        sp.nsimplify(D_max),
        D_min,
        ap,
        am,
        min(ap, am, key=float),
        dp,
        ds,
        min(dp, ds, key=float),
        D_star,
        beta,
    )
