"""Root location on a step: bisection for the first time a predicate changes, to 4 ulp, and
Brent's method for the root of a continuous function (:func:`brent_root`).

The face events (:meth:`pwflow.regime.RegimeMixin._face_events`) look for the first time
at which an occupied sliding face's regime differs from the step start's.  The regime is a
vectorised function of time, so :func:`bisect_batched` evaluates every midpoint the
sequential bisection may visit in its next few levels at once; the time found is the
sequential one's (:func:`bisect`), bit for bit.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]


#: below this, :func:`time_unit` is the data's time scale; above, 1 (the unit every run had)
TIME_UNIT_MAX = 1e-3


def time_unit(X: Array, y: Array) -> float:
    """The unit of a run's time resolution (:func:`time_ulp`): 1, or for data whose flow is
    much faster, ``1 / (max_k ‖x_k‖ · max(max_k |y_k|, max_k ‖x_k‖))``, where that is below
    :data:`TIME_UNIT_MAX`.  ``1 / (max ‖x_k‖ max |y_k|)`` is the time in which the field of
    a neuron moves it by its own size while the residuals are the labels; the flow on ``(c
    x, c y)`` is the flow on ``(x, y)`` at time ``t c²`` (square loss), and both terms
    scale as ``c²``.  With a unit of 1, data scaled by 1e6 ran to ``t = 5·10⁻¹²`` with its
    events located to 1e-2 of its own time and a state 3e-3 off, status 0, and by 1e8 not
    at all (every step "within rounding"; session 45).  ``‖x‖²`` stands in where the labels
    are small, the residuals then the outputs, of a size the data do not give: with
    labels 0 and data scaled by 1e12 the unit was 1 and the run to ``t = 5·10⁻²⁴`` did not
    move, status 0 (session 56).  A smaller unit only refines the resolution below it.
    From the data alone, so that a resumed run has the same unit."""
    X, y = np.asarray(X, float), np.asarray(y, float)
    xmax = float(np.max(np.linalg.norm(X, axis=1), initial=0.0))
    rate = xmax * max(float(np.max(np.abs(y), initial=0.0)), xmax)
    if not (rate > 0.0 and np.isfinite(rate)) or 1.0 / rate >= TIME_UNIT_MAX:
        return 1.0
    return 1.0 / rate


def time_ulp(t, unit: float = 1.0):
    """The spacing of floats at ``max(|t|, unit)``: the run's resolution in time near ``t``
    (the bisections stop within 4 of it, events within 64 of each other are one, a step
    shorter than 64 is not taken); ``unit``: :func:`time_unit`."""
    return np.spacing(np.maximum(np.abs(t), unit))


def bisect(lo: float, hi: float, changed: Callable[[float], bool], bracket: list,
           unit: float = 1.0) -> float:
    """Bisection of ``[lo, hi]`` to 4 ulp for the first ``t`` with ``changed(t)`` (``changed(hi)``
    is assumed); ``bracket`` is kept equal to the current ``[lo, hi]`` (for a caller that
    evaluates ahead, :func:`bisection_nodes`).  Returns the final ``hi``.  ``unit``: of the
    ulp (:func:`time_ulp`)."""
    while hi - lo > 4 * time_ulp(hi, unit):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if changed(mid):
            hi = mid
        else:
            lo = mid
        bracket[:] = [lo, hi]
    return hi


def bisect_batched(lo: float, hi: float,
                    changed_at: Callable[[list[float]], NDArray[np.bool_]], levels: int,
                    unit: float = 1.0) -> float:
    """:func:`bisect` with ``changed`` evaluated ahead: every midpoint the bisection may visit
    in its next ``levels`` levels at once (``changed_at`` takes a list of times), so the
    result is the sequential bisection's, bit for bit, in about ``1/levels`` as many calls."""
    seen: dict[float, bool] = {}
    bracket = [lo, hi]

    def changed(t: float) -> bool:
        if t not in seen:
            ts = bisection_nodes(bracket[0], bracket[1], levels, unit) or [t]
            seen.update(zip(ts, np.asarray(changed_at(ts), dtype=bool).tolist()))
        return seen[t]

    return bisect(lo, hi, changed, bracket, unit)


def bisection_nodes(lo: float, hi: float, levels: int, unit: float = 1.0) -> list[float]:
    """Every midpoint :func:`bisect` may evaluate in its next ``levels`` levels from
    ``[lo, hi]`` (at most ``2^levels − 1``; computed by the same arithmetic, so they are
    the bisection's own points)."""
    out: list[float] = []
    level = [(lo, hi)]
    for _ in range(levels):
        nxt = []
        for a, b in level:
            if not b - a > 4 * time_ulp(b, unit):
                continue
            mid = 0.5 * (a + b)
            if mid <= a or mid >= b:
                continue
            out.append(mid)
            nxt += [(a, mid), (mid, b)]
        level = nxt
    return out


def brent_root(f: Callable[[float], float], a: float, b: float, fa: float, fb: float,
               xtol: float, rtol: float, maxiter: int = 100) -> float:
    """The root of ``f`` in ``[a, b]`` by Brent's method (inverse quadratic or linear
    interpolation, safeguarded by bisection), given ``fa = f(a)`` and ``fb = f(b)`` of opposite
    signs; stops where the bracket is below ``xtol + rtol·|x|``.

    The arithmetic, and so every point evaluated and the root, is that of SciPy's
    ``brentq`` (``scipy/optimize/Zeros/brentq.c``, C. Harris; BSD 3-clause), bit for bit
    (``tests/test_bisection.py``): written here because importing ``scipy.optimize`` took
    0.31–0.35 s of the first run that needed one exit root in a process.

    Raises
    ------
    ValueError
        If ``fa`` and ``fb`` are not of opposite signs (a zero counts as a root), or ``f``
        returns NaN (as SciPy's ``brentq`` does since 1.11).
    RuntimeError
        If ``maxiter`` iterations do not reach the tolerance.
    """
    x_pre, x_cur, f_pre, f_cur = float(a), float(b), float(fa), float(fb)
    xtol, rtol = float(xtol), float(rtol)  # Python floats: IEEE overflow to inf, no warning
    if math.isnan(f_pre) or math.isnan(f_cur):
        raise ValueError(f"brent_root: f is NaN at an end of [{x_pre!r}, {x_cur!r}]")
    if f_pre == 0:
        return x_pre
    if f_cur == 0:
        return x_cur
    if math.copysign(1.0, f_pre) == math.copysign(1.0, f_cur):
        raise ValueError(f"brent_root: f(a) = {f_pre!r} and f(b) = {f_cur!r} must differ in sign")
    x_blk = f_blk = s_pre = s_cur = 0.0
    for _ in range(maxiter):
        if f_pre != 0 and f_cur != 0 and (
                math.copysign(1.0, f_pre) != math.copysign(1.0, f_cur)):
            x_blk, f_blk = x_pre, f_pre  # the bracket's other end
            s_pre = s_cur = x_cur - x_pre
        if abs(f_blk) < abs(f_cur):  # x_cur: the end with the smaller |f|
            x_pre, x_cur, x_blk = x_cur, x_blk, x_cur
            f_pre, f_cur, f_blk = f_cur, f_blk, f_cur
        delta = (xtol + rtol * abs(x_cur)) / 2
        s_bis = (x_blk - x_cur) / 2
        if f_cur == 0 or abs(s_bis) < delta:
            return x_cur
        step = s_bis
        if abs(s_pre) > delta and abs(f_cur) < abs(f_pre):
            try:
                if x_pre == x_blk:  # secant
                    s_try = -f_cur * (x_cur - x_pre) / (f_cur - f_pre)
                else:  # inverse quadratic
                    d_pre = (f_pre - f_cur) / (x_pre - x_cur)
                    d_blk = (f_blk - f_cur) / (x_blk - x_cur)
                    s_try = (-f_cur * (f_blk * d_blk - f_pre * d_pre)
                             / (d_blk * d_pre * (f_blk - f_pre)))
            except ZeroDivisionError:  # C's ±inf or NaN, which the test below refuses
                s_try = math.inf
            if 2 * abs(s_try) < min(abs(s_pre), 3 * abs(s_bis) - delta):
                s_pre, step = s_cur, s_try  # a short interpolated step
            else:
                s_pre = s_bis
        else:
            s_pre = s_bis
        s_cur = step
        x_pre, f_pre = x_cur, f_cur
        x_cur += step if abs(step) > delta else (delta if s_bis > 0 else -delta)
        f_cur = float(f(x_cur))
        if math.isnan(f_cur):
            raise ValueError(f"brent_root: f is NaN at {x_cur!r}")
    raise RuntimeError(f"brent_root: no convergence in {maxiter} iterations")
