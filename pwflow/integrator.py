"""The driver: :func:`simulate` runs the hybrid flow of Eq. (2)/(6) from an initialisation to
``t_max`` and returns a :class:`~pwflow.trajectory.Trajectory`.

The pieces it drives live in their own modules, as in scipy's ``integrate/_ivp``:

* :mod:`pwflow.options` — :class:`FlowOptions` and :class:`Status`;
* :mod:`pwflow.patterns`, :mod:`pwflow.vector_field` — the face table and the collective field;
* :mod:`pwflow.dense` — the dense output of a step;
* :mod:`pwflow.events` — detect and locate events; :mod:`pwflow.filippov` — decide them;
* :mod:`pwflow.batch` — the batch cut and its error bound;
* :mod:`pwflow.stepper` — :class:`HybridFlow`, one step;
* :mod:`pwflow.trajectory` — the result, as plain data (dense evaluation is attached here).

The driver also checks Lemma 1 on the neurons themselves at every snapshot (``a_j² − ‖w_j‖²``
against its initial value): the Lorentz projection of the propagators enforces it by
construction, but the placements on hyperplanes do not, so a neuron held on a hyperplane it
should have left shows up here (see ``docs/integrator.md``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .data import Dataset
from .events import EventKind
from .filippov import BranchPolicy
from .init import Init
from .model import Loss, check_gamma, check_time, get_loss
from .options import FlowOptions, InvariantError, Status, ZenoError
from .progress import Progress
from .stepper import HybridFlow

if TYPE_CHECKING:
    from .trajectory import Trajectory

__all__ = ["FlowOptions", "Status", "HybridFlow", "simulate", "ZenoError", "InvariantError",
           "EventKind", "BranchPolicy", "continue_from"]

Array = NDArray[np.float64]


class _Balance:
    """Lemma 1 measured on the neurons: ``|c_j(t) − c_j(0)| / max_s (a_j² + ‖w_j‖²)(s)`` with
    ``c_j = a_j² − ‖w_j‖²``, checked against ``tol`` at each snapshot."""

    def __init__(self, Z: Array, tol: float) -> None:
        self.c0 = Z[:, -1] ** 2 - np.einsum("ij,ij->i", Z[:, :-1], Z[:, :-1])
        self.scale = np.maximum(np.einsum("ij,ij->i", Z, Z), np.finfo(float).tiny)
        self.tol = tol
        self.max = 0.0

    def check(self, Z: Array, t: float) -> None:
        wn2 = np.einsum("ij,ij->i", Z[:, :-1], Z[:, :-1])
        self.scale = np.maximum(self.scale, Z[:, -1] ** 2 + wn2)
        rel = np.abs(Z[:, -1] ** 2 - wn2 - self.c0) / self.scale
        j = int(np.argmax(rel)) if rel.size else 0
        if rel.size and not np.isfinite(rel[j]):
            raise InvariantError(f"Lemma 1: neuron {j} is not finite at t = {t:.17g}")
        self.max = max(self.max, float(rel[j]) if rel.size else 0.0)
        if rel.size and rel[j] > self.tol:
            raise InvariantError(
                f"Lemma 1: neuron {j}'s a² − ‖w‖² drifted by {rel[j]:.3g} (relative) by "
                f"t = {t:.17g}, beyond {self.tol:.3g}")


def _snapshot_times(
    t_max: float, m: int, q: int, t_eval: ArrayLike | None, n_snapshots: int | None
) -> Array:
    if t_eval is not None:
        te = np.asarray(t_eval, float).ravel()
        if not np.all(np.isfinite(te)) or np.any(te < 0) or np.any(te > t_max):
            raise ValueError(f"t_eval must lie in [0, t_max] = [0, {t_max}]")
        return np.unique(np.concatenate([[0.0], te, [t_max]]))
    if n_snapshots is None:
        # keep the stored snapshots under ~400 MB
        n_snapshots = int(np.clip(4e8 / (8 * m * q), 8, 100))
    if int(n_snapshots) != n_snapshots or n_snapshots < 2:
        raise ValueError(f"n_snapshots must be an integer >= 2, got {n_snapshots!r}")
    if t_max == 0:
        return np.array([0.0])
    first = min(1e-2, t_max / 10)
    grid = np.geomspace(first, t_max, max(int(n_snapshots) - 1, 1))
    return np.unique(np.concatenate([[0.0], grid, [t_max]]))


def simulate(
    data: Dataset,
    init: Init,
    t_max: float,
    *,
    gamma: float = 0.0,
    loss: str | Loss = "square",
    rtol: float = 1e-10,
    atol: float = 1e-12,
    batch_tol: float | None = None,
    frozen_output: bool = False,
    t_eval: ArrayLike | None = None,
    n_snapshots: int | None = None,
    max_step: float = np.inf,
    progress: bool | None = False,
    callback: Callable[[HybridFlow], None] | None = None,
    options: FlowOptions | None = None,
    store: str | None = None,
    branch_policy: str | BranchPolicy = BranchPolicy.MIN_NORM,
) -> "Trajectory":
    """Compute the trajectory of the subgradient flow (Eq. (2)/(6)) exactly, cone by cone.

    Parameters
    ----------
    data : Dataset
        Training data ``(x_k, y_k)``.
    init : Init
        Initial neurons ``(w_j^0, a_j^0)`` (Eq. (3)).
    t_max : float
        Final time (``>= 0``).
    gamma : float
        Leaky-ReLU slope in ``[0, 1]``.
    loss : str or Loss
        ``'square'`` (``½(ŷ − y)²``), ``'logistic'`` or a :class:`pwflow.model.Loss`.
    rtol, atol, batch_tol, frozen_output, max_step, branch_policy
        See :class:`FlowOptions`; ``options`` overrides them all.
    t_eval : array, optional
        Times at which to store the neurons (plus 0 and ``t_max``); default geometric.
    n_snapshots : int, optional
        Number of geometric snapshot times when ``t_eval`` is not given.
    progress : bool or None
        A tqdm progress bar on stderr (:class:`pwflow.progress.Progress`); ``None``: only
        when stderr is a terminal.
    callback : callable, optional
        Called with the integrator after every step.
    store : path, optional
        A directory: snapshots are streamed there as they are taken (memory-mapped ``.npy``
        files, never held in memory) and the rest of the run is written at the end
        (``run.npz``); :meth:`Trajectory.load` reads the directory back.

    Returns
    -------
    Trajectory
        With ``status`` 0 on success; a run stopped by the Zeno guard, a solver failure, a
        violated invariant (:attr:`Status.INVARIANT`: Lemma 1, a sliding neuron off its
        hyperplanes, an event residual) or Ctrl-C returns what was computed, with ``status``
        and ``message`` saying why.

    Raises
    ------
    ValueError
        For invalid input (the message names the argument).
    """
    from .trajectory import Trajectory, versions

    if not isinstance(data, Dataset):
        raise ValueError(f"data must be a pwflow.Dataset, got {type(data).__name__}")
    if not isinstance(init, Init):
        raise ValueError(f"init must be a pwflow.Init, got {type(init).__name__}")
    if init.d != data.d:
        raise ValueError(f"init has neurons in dimension {init.d} but the data has d = {data.d}")
    t_max = check_time(t_max, "t_max")
    gamma = check_gamma(gamma)
    loss_fn = get_loss(loss)
    if options is None:
        options = FlowOptions(rtol, atol, batch_tol, max_step, frozen_output,
                              branch_policy=branch_policy)
    options = options.validated()
    q = data.d + 1
    snaps = _snapshot_times(t_max, init.m, q, t_eval, n_snapshots)

    start = time.perf_counter()
    flow = HybridFlow(data.X, data.y, init.W, init.a, loss_fn, gamma, options)
    balance = _Balance(flow.Z, options.invariant_tol)
    snap_t, snap_Z, snap_pat = [], [], []
    sink = _SnapshotSink(store, len(snaps) + 1, init.m, q) if store is not None else None
    step_t, step_h = [], []

    def record_step() -> None:
        step_t.append(flow.t)
        step_h.append(flow.outputs())

    def snapshot() -> None:
        balance.check(flow.Z, flow.t)
        snap_t.append(flow.t)
        if sink is not None:
            sink.write(len(snap_t) - 1, flow.Z, flow.pat)
        else:
            snap_Z.append(flow.Z.copy())
            snap_pat.append(flow.pat.copy())

    status, message = Status.FINISHED, str(Status.FINISHED)
    bar = Progress(progress, t_max)
    record_step()
    i_snap = 1
    try:
        snapshot()
        while flow.t < t_max:
            target = snaps[i_snap]
            flow.step(target)
            record_step()
            if flow.t >= target:
                snapshot()
                i_snap += 1
            if callback is not None:
                callback(flow)
            bar.update(flow)
    except ZenoError as err:
        status, message = Status.ZENO, f"{Status.ZENO}: {err}"
    except InvariantError as err:
        status, message = Status.INVARIANT, f"{Status.INVARIANT}: {err}"
    except RuntimeError as err:
        status, message = Status.FAILED, f"{Status.FAILED}: {err}"
    except KeyboardInterrupt:
        status, message = Status.INTERRUPTED, str(Status.INTERRUPTED)
    if not snap_t or snap_t[-1] != flow.t:
        try:
            snapshot()
        except InvariantError as err:  # the last state is kept, the status says why
            if status == Status.FINISHED:
                status, message = Status.INVARIANT, f"{Status.INVARIANT}: {err}"
            if not snap_t or snap_t[-1] != flow.t:
                _store_anyway(snap_t, snap_Z, snap_pat, sink, flow)
    bar.update(flow, force=True)
    wall = time.perf_counter() - start

    if sink is not None:
        Z, pat_arr = sink.views(len(snap_t))
    else:
        Z, pat_arr = np.array(snap_Z), np.array(snap_pat, dtype=np.int64)
    hs = np.array(step_h)
    tab = flow.table.arrays()
    meta = {
        "method": "flow",
        "dataset": {"name": data.name, **{k: v for k, v in data.meta.items() if _plain(v)}},
        "init": {"kind": init.kind, "scale": init.scale, "seed": init.seed, "m": init.m},
        "options": {
            "rtol": options.rtol, "atol": options.atol, "batch_tol": options.batch_tol,
            "max_step": float(options.max_step) if np.isfinite(options.max_step) else None,
            "frozen_output": options.frozen_output, "zeno_events": options.zeno_events,
            "zeno_window": options.zeno_window, "face_memory": options.face_memory,
            "stiff_solver": options.stiff_solver, "stiff_after": options.stiff_after,
            "branch_policy": BranchPolicy.parse(options.branch_policy).value,
            "invariant_tol": options.invariant_tol,
        },
        "t_max": t_max,
        "versions": versions(),
    }
    if meta["options"]["max_step"] is None:
        meta["options"]["max_step"] = float("inf")
    stats = {
        "n_steps": flow.n_steps,
        "nfev": flow.nfev,
        "n_events": len(flow.events),
        "n_cut_steps": flow.n_cut,
        "n_restarts": flow.n_restarts,
        "n_stiff_rollbacks": flow.n_rollbacks,
        "n_excursions": flow.n_excursions,
        "n_patterns": len(tab),
        "wall_time": wall,
        "n_branch_points": flow.n_branch,
        "t_first_branch": float(flow.t_first_branch) if np.isfinite(flow.t_first_branch) else None,
        "lemma1_max_drift_checked": balance.max,
        "max_sliding_residual": flow.max_sliding_residual,
        "max_lorentz_correction": flow.max_lorentz_correction,
    }
    traj = Trajectory(
        t=np.array(snap_t), W=Z[:, :, : data.d], a=Z[:, :, data.d],
        pattern=pat_arr, patterns=tab.U.copy(),
        step_t=np.array(step_t), step_outputs=hs,
        step_loss=np.mean(loss_fn(hs, data.y[None, :]), axis=1),
        events=flow.events.arrays(), X=data.X.copy(), y=data.y.copy(), gamma=gamma,
        loss_name=loss_fn.name, status=int(status), message=message, stats=stats, meta=meta,
        loss_fn=loss_fn,
    )
    if sink is not None:
        traj.save_store(store)
    return traj


class _SnapshotSink:
    """Snapshots written to disk as they are taken (``simulate(store=DIR)``).

    Two ``.npy`` files in ``DIR`` (memory-mapped, so a run with many snapshots of many neurons
    never holds them in memory): ``snapshots.npy`` (states, shape ``(k, m, d + 1)``) and
    ``snapshot_patterns.npy`` (face of each neuron, ``(k, m)``).
    """

    def __init__(self, store, n_max: int, m: int, q: int) -> None:
        from pathlib import Path

        self.dir = Path(store)
        self.dir.mkdir(parents=True, exist_ok=True)
        fmt = np.lib.format
        self.Z = fmt.open_memmap(self.dir / "snapshots.npy", mode="w+", dtype=float,
                                 shape=(n_max, m, q))
        self.P = fmt.open_memmap(self.dir / "snapshot_patterns.npy", mode="w+", dtype=np.int64,
                                 shape=(n_max, m))

    def write(self, i: int, Z: Array, pat: NDArray) -> None:
        self.Z[i] = Z
        self.P[i] = pat
        self.Z.flush()
        self.P.flush()

    def views(self, k: int):
        return self.Z[:k], self.P[:k]


def _plain(v) -> bool:
    return isinstance(v, (int, float, str, bool)) or v is None


def _store_anyway(snap_t, snap_Z, snap_pat, sink, flow) -> None:
    """Record the final state without the invariant check (it failed; the status says so)."""
    snap_t.append(flow.t)
    if sink is not None:
        sink.write(len(snap_t) - 1, flow.Z, flow.pat)
    else:
        snap_Z.append(flow.Z.copy())
        snap_pat.append(flow.pat.copy())


def continue_from(traj: "Trajectory", i: int, t: float) -> tuple[Array, Array]:
    """``(W, a)`` at time ``t`` by restarting the flow at snapshot ``i`` of ``traj`` with its
    options (the dense evaluation that :meth:`Trajectory.state` uses)."""
    opt = dict(traj.meta["options"])
    opt = {k: v for k, v in opt.items() if k in FlowOptions.__dataclass_fields__}
    flow = HybridFlow(
        traj.X, traj.y, traj.W[i], traj.a[i], traj._loss(), traj.gamma,
        FlowOptions(**opt).validated(), t0=float(traj.t[i]),
        patterns=traj.patterns[traj.pattern[i]],
    )
    while flow.t < t:
        flow.step(t)
    return flow.Z[:, :-1].copy(), flow.Z[:, -1].copy()


def _attach() -> None:
    from . import trajectory

    trajectory.set_dense_evaluator(continue_from)


_attach()
