"""Cross-check of the Lemma 8 certificate with arb ball arithmetic (python-flint).

The certificate of :mod:`proofs_checks.lemma8` bounds each proof obligation over sub-boxes with
its own vectorised interval arithmetic (numpy, error-free transformations for the outward
rounding).  This module re-evaluates the same obligations — the same sympy margins, lambdified
onto :class:`flint.arb` balls at ``prec`` bits, an independent implementation of rigorous
arithmetic — and checks that the two agree:

* on every sub-box the certificate evaluated whose lower bound is within ``near`` of 0 (where a
  rounding error would change a verdict), and on ``n_sample`` other sub-boxes drawn at random
  (seeded),
* at points of each such box (its centre, its two corners, the corners of its monotonicity
  reduction, and ``n_points`` random points): the numpy lower bound of the box must not exceed
  the arb upper bound of the margin at any point of the box (else the certificate's "lower
  bound" is not one), and the numpy point value must overlap the arb ball at the same point;
* the arb lower bound of the margin over the whole box (natural enclosure on balls) is
  reported next to the numpy one; it is looser (ball products overestimate interval products)
  and is information, not a verdict.

The verdict is ``holds`` when no contradiction is found, ``violated`` otherwise (with the
first offending box).  ``docs/lemma8.md`` states the measured cost of each evaluation.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Iterator

import numpy as np
import sympy as sp
from numpy.typing import NDArray

from . import lemma8 as L8

__all__ = ["ArbCrossCheck", "arb_margin", "check_boxes", "crosscheck_obligation",
           "crosscheck_lemma8"]

Array = NDArray[np.float64]


def _flint():
    try:
        import flint
    except ImportError:
        raise ImportError("the arb cross-check needs python-flint; install it with "
                          "pip install 'pwflow[flint]'") from None
    return flint


@lru_cache(maxsize=None)
def _arb_function(name: str) -> Callable:
    """The margin of obligation ``name`` as a function of ten arb balls (``PARAMS`` and η)."""
    ob = {o.name: o for o in L8.obligations()}
    if name not in ob:
        raise ValueError(f"name must be one of {sorted(ob)}, got {name!r}")
    syms, eta = L8._symbols()
    return sp.lambdify((*syms, eta), ob[name].expr, modules=[{}], cse=True)


def _ball(lo: float, hi: float):
    """An arb ball containing the float interval ``[lo, hi]`` (a point when ``lo == hi``)."""
    arb = _flint().arb
    return arb(float(lo)) if lo == hi else arb(float(lo)).union(arb(float(hi)))


def _bounds(value) -> tuple[float, float]:
    """Float lower and upper bounds of an arb ball (``∓inf`` for a non-finite ball)."""
    arb = _flint().arb
    if not isinstance(value, arb):
        value = arb(value)
    if not value.is_finite():
        return -np.inf, np.inf
    # mid ∓ rad at the context precision (≥ 128 bits here), then one ulp outwards: the
    # conversion to a double rounds to nearest (half an ulp at most)
    mid, rad = value.mid(), value.rad()
    return (float(np.nextafter(float(mid - rad), -np.inf)),
            float(np.nextafter(float(mid + rad), np.inf)))


def arb_margin(name: str, lo: Array, hi: Array, eta: float, prec: int = 128) -> tuple[float, float]:
    """Rigorous bounds of the margin of obligation ``name`` over the box ``[lo, hi]`` with arb.

    ``lo == hi`` gives the value at a point (a ball of radius 0 per parameter, so the result
    is as tight as ``prec`` bits allow).  Returns ``(lower, upper)`` as floats rounded outwards.

    Raises
    ------
    ValueError
        For an unknown obligation or a box of the wrong shape.
    """
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    if lo.shape != (9,) or hi.shape != (9,):
        raise ValueError(f"lo and hi must have shape (9,) {L8.PARAMS}, got {lo.shape}, {hi.shape}")
    f = _arb_function(name)
    flint = _flint()
    old = flint.ctx.prec
    flint.ctx.prec = int(prec)
    try:
        args = [_ball(a, b) for a, b in zip(lo, hi, strict=True)]
        return _bounds(f(*args, flint.arb(float(eta))))
    finally:
        flint.ctx.prec = old


@dataclass(frozen=True)
class ArbCrossCheck:
    """Outcome of the arb cross-check of one obligation.

    Attributes
    ----------
    name : str
        The obligation.
    verdict : str
        ``holds`` (no contradiction between numpy and arb) or ``violated``.
    boxes : int
        Sub-boxes cross-checked (``near_zero`` of them with a numpy lower bound within
        ``near`` of 0, the rest sampled).
    near_zero : int
    points : int
        Points evaluated with arb.
    worst_gap : float
        ``max(numpy lower bound of a box − arb upper bound at a point of it)``; ``<= 0`` when
        the two agree.
    arb_min_lower : float
        Smallest arb lower bound over the near-zero boxes (their whole extent, natural ball
        enclosure; ``nan`` when there are none).
    numpy_seconds, arb_seconds : float
        Time of the certificate's branch and bound and of the arb evaluations.
    message : str
        The first contradiction, or a summary.
    """

    name: str
    verdict: str
    boxes: int
    near_zero: int
    points: int
    worst_gap: float
    arb_min_lower: float
    numpy_seconds: float
    arb_seconds: float
    message: str


def _box_points(lo: Array, hi: Array, rlo: Array, rhi: Array, rng: np.random.Generator,
                n_points: int) -> Array:
    """Points of the box ``[lo, hi]``: centre, corners, reduced corners, random points."""
    pts = [0.5 * (lo + hi), lo, hi, rlo, rhi]
    pts += [lo + rng.random(9) * (hi - lo) for _ in range(n_points)]
    return np.clip(np.array(pts), lo, hi)


def check_boxes(name: str, lo: Array, hi: Array, lb: Array, eta: float, *,
                rlo: Array | None = None, rhi: Array | None = None, near: float = 1e-6,
                n_points: int = 3, seed: int = 0, prec: int = 128) -> tuple[str, dict]:
    """Cross-check numpy lower bounds ``lb`` of obligation ``name`` on boxes ``[lo, hi]`` (rows).

    For each box: the arb upper bound of the margin at each of its points must be ``>= lb``
    (a lower bound is below every value), and the numpy point evaluation must overlap the arb
    ball.  Boxes with ``|lb| <= near`` also get the arb lower bound over the whole box.

    Returns
    -------
    verdict : str
        ``holds`` or ``violated``.
    info : dict
        ``points``, ``worst_gap``, ``arb_min_lower``, ``message``.
    """
    lo, hi, lb = np.atleast_2d(lo), np.atleast_2d(hi), np.asarray(lb, float).ravel()
    if lo.shape != hi.shape or lo.shape[1:] != (9,) or lb.shape != (lo.shape[0],):
        raise ValueError("lo, hi must have shape (k, 9) and lb shape (k,); got "
                         f"{lo.shape}, {hi.shape}, {lb.shape}")
    rlo = lo if rlo is None else np.atleast_2d(rlo)
    rhi = hi if rhi is None else np.atleast_2d(rhi)
    rng = np.random.default_rng(seed)
    f_np, _ = L8._compiled(name)
    worst, n_pts, arb_min = -np.inf, 0, np.inf
    for i in range(lo.shape[0]):
        pts = _box_points(lo[i], hi[i], rlo[i], rhi[i], rng, n_points)
        E = L8.Interval(np.full(len(pts), eta))
        np_val = L8._as_interval(f_np(*[L8.Interval(pts[:, c]) for c in range(9)], E), len(pts))
        for p, v_lo, v_hi in zip(pts, np_val.lo, np_val.hi, strict=True):
            a_lo, a_hi = arb_margin(name, p, p, eta, prec)
            n_pts += 1
            worst = max(worst, lb[i] - a_hi)
            if lb[i] > a_hi:
                return "violated", {
                    "points": n_pts, "worst_gap": float(worst), "arb_min_lower": arb_min,
                    "message": (f"{name}: numpy lower bound {lb[i]!r} of box {i} exceeds the arb "
                                f"upper bound {a_hi!r} of the margin at {tuple(p)}")}
            if v_hi < a_lo or a_hi < v_lo:
                return "violated", {
                    "points": n_pts, "worst_gap": float(worst), "arb_min_lower": arb_min,
                    "message": (f"{name}: at {tuple(p)} numpy encloses the margin in "
                                f"[{v_lo!r}, {v_hi!r}] but arb in [{a_lo!r}, {a_hi!r}]")}
        if abs(lb[i]) <= near:
            arb_min = min(arb_min, arb_margin(name, lo[i], hi[i], eta, prec)[0])
    return "holds", {"points": n_pts, "worst_gap": float(worst),
                     "arb_min_lower": float(arb_min) if np.isfinite(arb_min) else float("nan"),
                     "message": f"{name}: numpy and arb agree on {lo.shape[0]} boxes, "
                                f"{n_pts} points"}


@contextmanager
def _recorded_enclosures() -> Iterator[list]:
    """Record every ``(lo, hi, lower bound, rlo, rhi)`` the certificate's branch and bound
    evaluates (its ``_enclose`` is observed, not changed)."""
    calls: list = []
    original = L8._enclose

    def recording(name, lo, hi, eta):
        out = original(name, lo, hi, eta)
        lb, _, (_, _, rlo, rhi) = out
        calls.append((lo.copy(), hi.copy(), np.array(lb, float), rlo.copy(), rhi.copy()))
        return out

    L8._enclose = recording
    try:
        yield calls
    finally:
        L8._enclose = original


def crosscheck_obligation(name: str, box: L8.Box, *, max_boxes: int = 200_000,
                          n_sample: int = 100, near: float = 1e-6, n_points: int = 3,
                          seed: int = 0, prec: int = 128) -> ArbCrossCheck:
    """Certify obligation ``name`` over ``box`` (numpy) and cross-check it with arb.

    Parameters
    ----------
    name : str
        An obligation of :func:`proofs_checks.lemma8.obligations`.
    box : Box
        E.g. :func:`proofs_checks.lemma8.assumption3_box`.
    max_boxes : int
        Passed to :func:`proofs_checks.lemma8.certify_obligation`.
    n_sample : int
        Sub-boxes drawn at random (seeded) besides all near-zero ones.
    near : float
        A sub-box whose numpy lower bound is within ``near`` of 0 is always cross-checked.
    n_points : int
        Random points per sub-box (besides its centre and four corners).
    seed : int
        Seed of the sampling.
    prec : int
        Precision of the arb balls in bits.
    """
    if int(n_sample) < 0 or int(n_points) < 0 or not near >= 0:
        raise ValueError("n_sample and n_points must be >= 0 and near >= 0, got "
                         f"{n_sample!r}, {n_points!r}, {near!r}")
    _arb_function(name)  # unknown names fail before the long run
    start = time.perf_counter()
    with _recorded_enclosures() as calls:
        L8.certify_obligation(name, box, max_boxes)
    numpy_seconds = time.perf_counter() - start
    lo, hi, lb, rlo, rhi = (np.concatenate([c[i] for c in calls]) for i in range(5))
    rng = np.random.default_rng(seed)
    near_idx = np.flatnonzero(np.abs(lb) <= near)
    rest = np.setdiff1d(np.arange(lb.size), near_idx)
    sample = rng.choice(rest, size=min(int(n_sample), rest.size), replace=False)
    idx = np.concatenate([near_idx, np.sort(sample)])
    start = time.perf_counter()
    verdict, info = check_boxes(name, lo[idx], hi[idx], lb[idx], box.eta, rlo=rlo[idx],
                                rhi=rhi[idx], near=near, n_points=n_points, seed=seed,
                                prec=prec)
    arb_seconds = time.perf_counter() - start
    return ArbCrossCheck(name, verdict, int(idx.size), int(near_idx.size), info["points"],
                         info["worst_gap"], info["arb_min_lower"], numpy_seconds, arb_seconds,
                         info["message"])


def crosscheck_lemma8(eta: float, *, groups: tuple[str, ...] = ("A4", "A5", "A6"),
                      max_boxes: int = 200_000, n_sample: int = 100, near: float = 1e-6,
                      seed: int = 0) -> tuple[ArbCrossCheck, ...]:
    """:func:`crosscheck_obligation` for every obligation of ``groups`` over the Assumption 3
    box of parameter ``eta``."""
    bad = [g for g in groups if g not in L8.GROUPS]
    if bad:
        raise ValueError(f"groups must be a subset of {L8.GROUPS}, got {bad}")
    box = L8.assumption3_box(eta)
    return tuple(crosscheck_obligation(o.name, box, max_boxes=max_boxes, n_sample=n_sample,
                                       near=near, seed=seed)
                 for o in L8.obligations() if o.group in groups)
