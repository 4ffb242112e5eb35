"""Bisection of a step for the first time a predicate changes, to 4 ulp.

The face events (:meth:`pwflow.regime.RegimeMixin._face_events`) look for the first time
at which an occupied sliding face's regime differs from the step start's.  The regime is a
vectorised function of time, so :func:`bisect_batched` evaluates every midpoint the
sequential bisection may visit in its next few levels at once; the time found is the
sequential one's (:func:`bisect`), bit for bit.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]


def bisect(lo: float, hi: float, changed: Callable[[float], bool], bracket: list) -> float:
    """Bisection of ``[lo, hi]`` to 4 ulp for the first ``t`` with ``changed(t)`` (``changed(hi)``
    is assumed); ``bracket`` is kept equal to the current ``[lo, hi]`` (for a caller that
    evaluates ahead, :func:`bisection_nodes`).  Returns the final ``hi``."""
    while hi - lo > 4 * np.spacing(max(abs(hi), 1.0)):
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
                    changed_at: Callable[[list[float]], NDArray[np.bool_]], levels: int) -> float:
    """:func:`bisect` with ``changed`` evaluated ahead: every midpoint the bisection may visit
    in its next ``levels`` levels at once (``changed_at`` takes a list of times), so the
    result is the sequential bisection's, bit for bit, in about ``1/levels`` as many calls."""
    seen: dict[float, bool] = {}
    bracket = [lo, hi]

    def changed(t: float) -> bool:
        if t not in seen:
            ts = bisection_nodes(bracket[0], bracket[1], levels) or [t]
            seen.update(zip(ts, np.asarray(changed_at(ts), dtype=bool).tolist()))
        return seen[t]

    return bisect(lo, hi, changed, bracket)


def bisection_nodes(lo: float, hi: float, levels: int) -> list[float]:
    """Every midpoint :func:`bisect` may evaluate in its next ``levels`` levels from
    ``[lo, hi]`` (at most ``2^levels − 1``; computed by the same arithmetic, so they are
    the bisection's own points)."""
    out: list[float] = []
    level = [(lo, hi)]
    for _ in range(levels):
        nxt = []
        for a, b in level:
            if not b - a > 4 * np.spacing(max(abs(b), 1.0)):
                continue
            mid = 0.5 * (a + b)
            if mid <= a or mid >= b:
                continue
            out.append(mid)
            nxt += [(a, mid), (mid, b)]
        level = nxt
    return out
