"""Checkpoints and resume: continue a run from its last exact state.

The driver of :func:`pwflow.integrator.simulate` restarts the integrator at the resume
anchors of its grid (about 8 snapshot times chosen from ``t_max``; the other snapshots are
read from the dense output), so the state there — the neurons ``(w_j, a_j)``, their faces, the pattern
table, the event log, the time, the options and the integrator's step-size memory (next step,
solver phase, recently seen faces, Zeno-guard history) — determines the rest of the run.  A
:class:`Mark` records that memory at each grid snapshot (a few numbers); a run that stops
(Ctrl-C, SIGTERM, a store's periodic checkpoint) keeps its last mark, and :func:`resume`
truncates the run to it and continues, so that interrupted + resumed reproduces the
uninterrupted run: the same event log and the same states (bit for bit on one machine).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from .regime import CutExits, PendingExits
from .rest import RestBound

if TYPE_CHECKING:
    from .integrator import HybridFlow
    from .trajectory import Trajectory

__all__ = ["Mark", "Checkpoint", "resume", "extend_grid", "capture", "restore"]

#: Integrator attributes that carry its memory across a solver restart (scalars).
_SCALARS = ("h_next", "nfev", "n_steps", "n_cut", "n_restarts", "n_rollbacks",
            "n_snapshot_redos", "n_cut_redos", "n_exit_redos", "_cut_redo_from",
            "_exit_redo_end", "n_excursions", "_tiny_steps",
            "_idle_cuts", "n_branch", "t_first_branch", "max_sliding_residual",
            "max_lorentz_correction")


def capture(flow: "HybridFlow") -> dict[str, Any]:
    """The integrator's memory at a solver restart, as plain JSON-able values."""
    mem: dict[str, Any] = {k: getattr(flow, k) for k in _SCALARS if hasattr(flow, k)}
    for k, v in list(mem.items()):
        mem[k] = None if v is None else (float(v) if isinstance(v, float) else int(v))
    phase = getattr(flow, "_phase", None)
    if phase is not None and dataclasses.is_dataclass(phase):
        mem["_phase"] = {k: _plain(v) for k, v in dataclasses.asdict(phase).items()}
    mem["_recent"] = [[float(t), int(j), int(k)] for t, j, k in getattr(flow, "_recent", [])]
    mem["_seen"] = [float(v) for v in np.asarray(getattr(flow, "_seen", np.zeros(0)))]
    # whether the neurons were already projected onto their faces (the next solver start then
    # does not project them again; projecting twice is not the identity in floating point)
    done = flow.__dict__.get("_projected")
    mem["projected"] = bool(done is not None and done[0] is flow.__dict__.get("_Zcur")
                            and done[1] is flow.pat)
    # the faces the exit rule decided at the mark's time (a restart there keeps their regime)
    t_left, left = getattr(flow, "_left_at", (np.nan, np.zeros(0)))
    mem["left_at"] = [None if np.isnan(t_left) else float(t_left), [int(p) for p in left]]
    # the watched r_k resolved to 0 (their hysteresis carries across the restart)
    held = getattr(flow, "_held_zero", None)
    mem["held_zero"] = None if held is None else [int(k) for k in np.flatnonzero(held)]
    live = getattr(flow, "_held_live", None)  # and those resolved to nonzero
    mem["held_live"] = None if live is None else [int(k) for k in np.flatnonzero(live)]
    # the outputs' noise of the last steps (the normal velocities' resolution carries it)
    noise = flow.__dict__.get("_step_noise")
    mem["step_noise"] = None if noise is None else [float(v) for v in noise]
    # the signs of the parallel classes' residuals in the regime (their hysteresis)
    cls = flow.__dict__.get("_class_held")
    mem["class_held"] = None if cls is None else [int(v) for v in cls]
    # the neurons held at w = 0 and gradient descent's orbits near 0 (pwflow.origin_watch)
    mem["origin_held"] = {str(j): h.to_dict() for j, h in
                          getattr(flow, "_origin_held", {}).items()}
    # the dependent faces whose branch point the minimal-norm policy logged (not watched again)
    mem["dependent_logged"] = [[int(p), float(sg), bool(rest)] for p, sg, rest in
                               sorted(flow.__dict__.get("_dependent_logged_set", set()))]
    # the jump exits a redo left pending (pwflow.regime, _pending_exit_events)
    pend = flow.__dict__.get("_exit_pending")
    mem["exit_pending"] = None if pend is None else [_exit_rows(pend.exits),
                                                     float(pend.until)]
    # the own-side exits located at the cut of a step redone to end there (pwflow.regime)
    cut = flow.__dict__.get("_cut_exits")
    mem["cut_exits"] = None if cut is None else [_exit_rows(cut.exits), float(cut.t)]
    rest = getattr(flow, "rest", None)  # at rest (pwflow.rest): kept so that a resume is exact
    mem["rest"] = None if rest is None else {k: float(v) for k, v in
                                             dataclasses.asdict(rest).items()}
    return mem


def _exit_rows(exits: dict) -> list[list]:
    """``{face: {k: upper}}`` as JSON rows ``[face, k, upper]``."""
    return [[int(p), int(k), bool(up)] for p, ex in exits.items() for k, up in ex.items()]


def _exits_of_rows(rows: list) -> dict:
    """The inverse of :func:`_exit_rows`."""
    exits: dict = {}
    for p, k, up in rows:
        exits.setdefault(int(p), {})[int(k)] = bool(up)
    return exits


def restore(flow: "HybridFlow", mem: dict[str, Any]) -> None:
    """Put back the memory recorded by :func:`capture`."""
    for k in _SCALARS:
        if k in mem:
            setattr(flow, k, mem[k])
    if "_phase" in mem and hasattr(flow, "_phase"):
        fields = {f.name for f in dataclasses.fields(flow._phase)}
        for k, v in mem["_phase"].items():
            if k in fields:
                setattr(flow._phase, k, v)
    if "_recent" in mem:
        flow._recent = [(float(t), int(j), int(k)) for t, j, k in mem["_recent"]]
    if "_seen" in mem:
        flow._seen = np.asarray(mem["_seen"], float)
    if mem.get("rest") is not None:
        flow.rest = RestBound(**mem["rest"])
    if mem.get("projected"):
        flow.mark_projected()
    if mem.get("held_zero") is not None:
        held = np.zeros(flow.n, dtype=bool)
        held[np.asarray(mem["held_zero"], np.intp)] = True
        flow._held_zero = held
    if mem.get("held_live") is not None:
        live = np.zeros(flow.n, dtype=bool)
        live[np.asarray(mem["held_live"], np.intp)] = True
        flow._held_live = live
    if mem.get("exit_pending") is not None:
        rows, until = mem["exit_pending"]
        flow._exit_pending = PendingExits(_exits_of_rows(rows), float(until))
    if mem.get("cut_exits") is not None:
        rows, t_cut = mem["cut_exits"]
        flow._cut_exits = CutExits(_exits_of_rows(rows), float(t_cut))
    if mem.get("step_noise") is not None:
        flow._step_noise = np.asarray(mem["step_noise"], float)
    if mem.get("class_held") is not None:
        flow._class_held = np.asarray(mem["class_held"], np.int8)
    if mem.get("origin_held"):
        from .origin_watch import HeldAtOrigin
        flow._origin_held = {int(j): HeldAtOrigin.from_dict(h)
                             for j, h in mem["origin_held"].items()}
    if mem.get("dependent_logged"):
        flow._dependent_logged_set = {(int(p), float(sg), bool(rest))
                                      for p, sg, rest in mem["dependent_logged"]}
    if mem.get("left_at") is not None:
        t_left, left = mem["left_at"]
        flow._left_at = (np.nan if t_left is None else float(t_left), np.asarray(left, np.intp))


def _plain(v):
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    return v


@dataclass(frozen=True)
class Mark:
    """Where a run can be resumed exactly: its state at a resume anchor (a grid snapshot
    where the solver restarts).

    Attributes
    ----------
    t : float
        Time of the snapshot.
    n_snapshots : int
        Snapshots taken up to and including this one.
    i_snap : int
        Index in ``grid`` of the next snapshot time.
    n_steps_recorded : int
        Accepted points recorded (``step_t``) up to this one.
    n_events : int
        Events logged up to this time.
    n_patterns : int
        Size of the pattern table.
    grid : tuple of float
        The run's snapshot times.
    memory : dict
        The integrator's memory (:func:`capture`).
    wall_time : float
        Wall time spent so far.
    """

    t: float
    n_snapshots: int
    i_snap: int
    n_steps_recorded: int
    n_events: int
    n_patterns: int
    grid: tuple
    memory: dict
    wall_time: float = 0.0

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["grid"] = [float(v) for v in self.grid]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Mark":
        try:
            return cls(t=float(d["t"]), n_snapshots=int(d["n_snapshots"]),
                       i_snap=int(d["i_snap"]), n_steps_recorded=int(d["n_steps_recorded"]),
                       n_events=int(d["n_events"]), n_patterns=int(d["n_patterns"]),
                       grid=tuple(float(v) for v in d["grid"]), memory=dict(d["memory"]),
                       wall_time=float(d.get("wall_time", 0.0)))
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"the run's resume record is unreadable ({err!r})") from None


def take_mark(flow: "HybridFlow", grid, i_snap: int, n_snapshots: int, n_steps_recorded: int,
              wall_time: float) -> Mark:
    """:class:`Mark` of the driver's state right after a grid snapshot."""
    return Mark(t=float(flow.t), n_snapshots=int(n_snapshots), i_snap=int(i_snap),
                n_steps_recorded=int(n_steps_recorded), n_events=len(flow.events),
                n_patterns=len(flow.table), grid=tuple(float(v) for v in grid),
                memory=capture(flow), wall_time=float(wall_time))


def extend_grid(grid: NDArray, t_max: float) -> NDArray:
    """The snapshot grid of a run continued to ``t_max``: the old times up to ``t_max`` and,
    beyond the old end, 20 geometric times per decade."""
    grid = np.asarray(grid, float)
    old = float(grid[-1])
    if t_max <= old:
        return np.unique(np.concatenate([grid[grid < t_max], [t_max]]))
    if old > 0:
        num = max(2, int(math.ceil(20 * math.log10(t_max / old))) + 1)
        ext = np.geomspace(old, t_max, num)[1:]
    else:
        ext = np.array([t_max])
    ext[-1] = t_max
    return np.concatenate([grid, ext])


@dataclass
class Checkpoint:
    """Everything :func:`pwflow.integrator.simulate` needs to continue a run at a mark."""

    mark: Mark
    Z: NDArray  # (m, d + 1) at the mark
    pattern_rows: NDArray  # (m, n) int8 patterns of the neurons at the mark
    table: NDArray  # (P, n) int8 pattern table, in registration order
    events: dict
    step_t: NDArray
    step_h: NDArray
    step_implicit: NDArray | None  # (steps,) bool: the implicit solver took the step
    snap_t: NDArray  # (k,) snapshot times up to the mark
    snap_Z: NDArray | None  # (k, m, q) when the snapshots are held in memory
    snap_pat: NDArray | None

    def make_flow(self, X, y, loss, gamma, options):
        """A :class:`HybridFlow` at the mark, with its memory, table and event log."""
        from .events import EventLog
        from .integrator import HybridFlow
        from .patterns import PatternTable

        table = PatternTable(X, gamma)
        for u in self.table[: self.mark.n_patterns]:
            table.index(u)
        d = np.asarray(X).shape[1]
        flow = HybridFlow(X, y, self.Z[:, :d], self.Z[:, d], loss, gamma, options,
                          t0=self.mark.t, patterns=self.pattern_rows, table=table)
        flow.events = EventLog.from_arrays(self.events, self.mark.n_events)
        # with the memory, whether the state was already projected: the uninterrupted run
        # then does not project it again at the restart (projecting twice is not the identity
        # in floating point: a resumed Stewart m = 2000 run logged 197 more grazing contacts
        # and ended 7.5e-12 from the uninterrupted one)
        restore(flow, self.mark.memory)
        return flow


def checkpoint_of(traj: "Trajectory", in_memory: bool = True) -> Checkpoint:
    """The :class:`Checkpoint` at the last mark of a saved run (``meta['resume']``).

    ``in_memory``: also copy the snapshots up to the mark (not for a store, whose snapshot
    files are continued in place).
    """
    rec = (traj.meta or {}).get("resume")
    if traj.meta.get("method", "flow") != "flow":
        raise ValueError("only runs of the flow can be resumed (this one is "
                         f"{traj.meta.get('method')!r})")
    if not rec:
        raise ValueError("the run has no resume record (written by an older pwflow, or it "
                         "stopped before its first snapshot)")
    mark = Mark.from_dict(rec)
    k = mark.n_snapshots
    if not (1 <= k <= traj.t.size) or traj.t[k - 1] != mark.t:
        raise ValueError(f"the run's resume record does not match its snapshots "
                         f"(snapshot {k} at t = {mark.t})")
    if mark.n_steps_recorded > traj.step_t.size or mark.n_events > traj.n_events:
        raise ValueError("the run's resume record does not match its step and event logs")
    i = k - 1
    Z = np.hstack([np.asarray(traj.W[i], float), np.asarray(traj.a[i], float)[:, None]])
    table = np.asarray(traj.patterns, np.int8)
    pat = np.asarray(traj.pattern[i])
    if mark.n_patterns > table.shape[0] or np.any(pat >= mark.n_patterns):
        raise ValueError("the run's resume record does not match its pattern table")
    n_ev = mark.n_events
    return Checkpoint(
        mark=mark, Z=Z, pattern_rows=table[pat], table=table[: mark.n_patterns],
        events={key: np.asarray(v)[:n_ev] for key, v in traj.events.items()},
        step_t=np.asarray(traj.step_t[: mark.n_steps_recorded], float),
        step_h=np.asarray(traj.step_outputs[: mark.n_steps_recorded], float),
        step_implicit=(None if traj.step_implicit is None  # written before it was recorded
                       else np.asarray(traj.step_implicit[: mark.n_steps_recorded], bool)),
        snap_t=np.asarray(traj.t[:k], float),
        snap_Z=np.concatenate([np.asarray(traj.W[:k]), np.asarray(traj.a[:k])[:, :, None]],
                              axis=2) if in_memory else None,
        snap_pat=np.asarray(traj.pattern[:k], np.int64) if in_memory else None,
    )


def _original_data(X, snapped: dict | None):
    """The data the run was given: the trajectory's ``X`` is the flow's, with the points
    :func:`pwflow.subgradient.snap_data` moved (``meta["snapped_points"]``) put back: the
    resumed run snaps them again, to the same numbers and the same ``meta``, where the
    snapped data would record no move."""
    X = np.array(X, dtype=float, copy=True)
    if snapped and "original" in snapped:
        X[np.asarray(snapped["points"], dtype=np.intp)] = np.asarray(snapped["original"], float)
    return X


def resume(traj: "Trajectory", t_max: float | None = None, *, store: str | Path | None = None,
           progress: bool = False, checkpoint_every: float | None = None,
           stall_steps: int | None = None) -> "Trajectory":
    """Continue ``traj`` from its last mark to ``t_max`` (default: the run's own ``t_max``).

    ``store``: the run's store folder (continued in place); otherwise a new in-memory
    trajectory is returned.  See :meth:`pwflow.trajectory.Trajectory.resume`.
    """
    from .data import Dataset
    from .guard import STALL_STEPS
    from .init import Init
    from .integrator import FlowOptions, simulate
    from .model import check_time

    meta = traj.meta or {}
    ck = checkpoint_of(traj, in_memory=store is None)
    old_t_max = float(meta.get("t_max", ck.mark.grid[-1]))
    t_max = old_t_max if t_max is None else check_time(t_max, "t_max")
    if t_max < ck.mark.t:
        raise ValueError(f"t_max = {t_max:g} is before the run's resume point t = "
                         f"{ck.mark.t:g}; give a later --t-max")
    try:
        opts = dict(meta["options"])
        opts["max_step"] = float(opts.get("max_step", math.inf))
        options = FlowOptions(**opts)
    except (KeyError, TypeError) as err:
        raise ValueError(f"the run's options are unreadable ({err!r})") from None
    ds = meta.get("dataset", {}) if isinstance(meta.get("dataset"), dict) else {}
    data = Dataset(_original_data(traj.X, meta.get("snapped_points")), traj.y,
                   name=str(ds.get("name", "custom")),
                   meta={k: v for k, v in ds.items() if k != "name"})
    ini = meta.get("init", {}) if isinstance(meta.get("init"), dict) else {}
    scale = ini.get("scale")
    init = Init(np.asarray(traj.W[0]), np.asarray(traj.a[0]), str(ini.get("kind", "explicit")),
                float("nan") if scale is None else float(scale), ini.get("seed"))
    grid = extend_grid(np.asarray(ck.mark.grid), t_max)
    return simulate(
        data, init, t_max, gamma=traj.gamma, loss=traj._loss(), options=options,
        t_eval=grid, progress=progress, store=None if store is None else str(store),
        checkpoint_every=checkpoint_every,
        stall_steps=STALL_STEPS if stall_steps is None else stall_steps,
        resume_from=ck,
    )
