"""How two runs of the same problem compare: the one comparison of ``ab_compare.py`` and
``ab_explore_long.py``.

Both scripts run a base version and the working tree on the same problem and ask the same
questions of the two :class:`pwflow.Trajectory` objects: do the logs hold the same events in
the same order (neuron, hyperplane, kind), are they identical bit for bit (times too), how
far apart are their times where the rows agree, and how far apart are the final states.
"""

from __future__ import annotations

import dataclasses

import numpy as np

ROW_FIELDS = ("neuron", "k", "kind")


@dataclasses.dataclass(frozen=True)
class LogComparison:
    """The comparison of two runs' event logs and final states.

    Attributes
    ----------
    same_rows : bool
        The same events in the same order: neuron, hyperplane and kind of every row.
    identical : bool
        ``same_rows`` and the same times, bit for bit.
    dt_max : float or None
        The largest difference of the event times where ``same_rows`` (0 for two empty
        logs), else ``None``.
    state : float
        The largest difference of the final neurons' entries ``(w_j, a_j)``.
    scale : float
        The largest final entry of the first run, ``max |θ|``, for relative differences.
    """

    same_rows: bool
    identical: bool
    dt_max: float | None
    state: float
    scale: float


def _rows(tr) -> list[tuple]:
    return list(zip(*(np.asarray(tr.events[f]).tolist() for f in ROW_FIELDS), strict=True))


def _final(tr) -> np.ndarray:
    return np.c_[np.asarray(tr.W[-1]), np.asarray(tr.a[-1])]


def compare_runs(a, b) -> LogComparison:
    """Compare two trajectories of one problem (the first is the reference of ``scale``)."""
    same = _rows(a) == _rows(b)
    ta, tb = np.asarray(a.events["t"], dtype=float), np.asarray(b.events["t"], dtype=float)
    dt = float(np.max(np.abs(ta - tb), initial=0.0)) if same else None
    Za, Zb = _final(a), _final(b)
    return LogComparison(same_rows=same, identical=same and bool(np.array_equal(ta, tb)),
                         dt_max=dt, state=float(np.max(np.abs(Za - Zb))),
                         scale=float(np.max(np.abs(Za))))


def same_prefix(a, b, t_end: float) -> bool:
    """Whether ``b``'s whole log is ``a``'s log up to ``t_end``, bit for bit (a run stopped
    at rest against one that went on)."""
    cut = np.asarray(a.events["t"]) <= t_end
    return b.n_events == int(np.sum(cut)) and all(
        np.array_equal(np.asarray(a.events[f])[cut], np.asarray(b.events[f]))
        for f in ("t", *ROW_FIELDS))
