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
from .filippov import BranchPolicy
from .init import Init
from .model import Loss, check_gamma, check_time, get_loss
from .guard import (
    STALL_STEPS,
    NonFinite,
    NoProgress,
    RunGuard,
    describe_overflow,
    finite_state,
    floating_point_checks,
    watch,
)
from .options import FlowOptions, InvariantError, Status, ZenoError
from .progress import Progress
from .rest import describe_rest
from .resume import take_mark
from .signals import describe as describe_interrupt
from .signals import InterruptOnce, deferred, exit_status
from .stepper import HybridFlow
from .subgradient import snap_data
from .store import StoreWriter

if TYPE_CHECKING:
    from .resume import Checkpoint
    from .trajectory import Trajectory

# FlowOptions, Status, HybridFlow, ZenoError, InvariantError and BranchPolicy are
# importable from here too (they are defined in their own modules)
__all__ = ["simulate", "continue_from"]

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


#: number of resume anchors (grid snapshots where the solver restarts) on a default grid
N_ANCHORS = 8


def _anchors(snaps: Array, t_max: float) -> NDArray[np.bool_]:
    """Which snapshot times are resume anchors: the solver restarts there (and a
    :class:`~pwflow.resume.Mark` is taken), the other snapshots are read from the dense output
    of the step that contains them.

    The anchors are the first grid times at or after the :data:`N_ANCHORS` default geometric
    times of ``[0, t_max]``, plus ``0`` and ``t_max``: they depend on ``t_max`` alone up to the
    grid's resolution, so the number of stored snapshots barely changes the steps taken.
    """
    base = _snapshot_times(t_max, 1, 1, None, N_ANCHORS)
    mask = np.zeros(snaps.size, dtype=bool)
    idx = np.searchsorted(snaps, base * (1.0 - 1e-12), side="left")
    mask[np.minimum(idx, snaps.size - 1)] = True
    mask[0] = mask[-1] = True
    return mask


def _no_options_keywords(given: dict) -> None:
    """Refuse :func:`simulate`'s option keywords set away from their defaults (read from its
    signature) together with ``options`` (which holds them all): one would be ignored."""
    import inspect

    defaults = inspect.signature(simulate).parameters
    clash = [name for name, value in given.items()
             if not _same_option(value, defaults[name].default)]
    if clash:
        names = ", ".join(clash)
        raise ValueError(f"{names} given to simulate together with options: set "
                         f"{'it' if len(clash) == 1 else 'them'} in options "
                         f"(FlowOptions({clash[0]}=...)), which holds every option")


def _same_option(value, default) -> bool:
    """Whether a keyword of :func:`simulate` is at its default (an invalid value is not)."""
    if default is None:
        return value is None
    try:
        if isinstance(default, BranchPolicy):
            return BranchPolicy.parse(value) is default
        return bool(value == default)
    except (TypeError, ValueError):
        return False


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
    overwrite: bool = False,
    checkpoint_every: float | None = None,
    stall_steps: int | None = STALL_STEPS,
    resume_from: "Checkpoint | None" = None,
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
        See :class:`FlowOptions`.  With ``options`` they keep their defaults (set them in
        ``options``): one set here too raises ``ValueError``.
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
        (``run.npz``); :meth:`Trajectory.load` reads the directory back.  The store is
        crash-consistent (:mod:`pwflow.store`); an existing non-empty folder is refused
        unless ``overwrite``.
    overwrite : bool
        Replace an existing store.
    checkpoint_every : float, optional
        Seconds between checkpoints of a store (event and step logs and the resume mark, at
        the next snapshot time); default 60 with ``store``.  See :mod:`pwflow.resume`.
    stall_steps : int or None
        Progress budget (:class:`pwflow.guard.RunGuard`): a run whose time advances by less
        than 1e-4 of the remaining interval in this many steps stops with
        ``Status.NO_PROGRESS``; ``None`` disables it.
    resume_from : Checkpoint, optional
        Continue a run (:func:`pwflow.resume.resume`; used by :meth:`Trajectory.resume`).

    Returns
    -------
    Trajectory
        With ``status`` 0 on success; a run stopped by the Zeno guard, a solver failure,
        overflow (``NON_FINITE``, the last finite state kept), the progress budget, a violated
        invariant (``INVARIANT``: Lemma 1, a sliding neuron off its hyperplanes, an event
        residual) or Ctrl-C, SIGTERM or SIGHUP returns what was computed, with ``status`` and
        ``message`` saying why.  Its ``X`` is the data the flow integrated: points parallel
        to within ``SPAN_RTOL`` made exactly parallel, and a point that near the span of
        two to ``d − 1`` earlier points moved onto it (:func:`pwflow.subgradient.snap_data`,
        at most 1e-10 relative; ``meta["snapped_points"]`` lists them, with their rows as
        given).

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
    else:
        _no_options_keywords({"rtol": rtol, "atol": atol, "batch_tol": batch_tol,
                              "max_step": max_step, "frozen_output": frozen_output,
                              "branch_policy": branch_policy})
    options = options.validated()
    q = data.d + 1
    snaps = _snapshot_times(t_max, init.m, q, t_eval, n_snapshots)
    anchor = _anchors(snaps, t_max)
    guard = RunGuard(t_max, stall_steps)
    ck = resume_from
    meta = {
        "method": "flow",
        "dataset": {"name": data.name, **{k: v for k, v in data.meta.items() if _plain(v)}},
        "init": {"kind": init.kind, "scale": init.scale, "seed": init.seed, "m": init.m},
        "options": {
            "rtol": options.rtol, "atol": options.atol, "batch_tol": options.batch_tol,
            "max_step": float(options.max_step),
            "frozen_output": options.frozen_output, "zeno_events": options.zeno_events,
            "zeno_window": options.zeno_window, "face_memory": options.face_memory,
            "stiff_solver": options.stiff_solver, "stiff_after": options.stiff_after,
            "branch_policy": BranchPolicy.parse(options.branch_policy).value,
            "invariant_tol": options.invariant_tol, "rest_tol": options.rest_tol,
        },
        "t_max": t_max,
        "versions": versions(),
    }

    start = time.perf_counter() - (0.0 if ck is None else ck.mark.wall_time)
    try:
        with floating_point_checks():
            # points parallel to within SPAN_RTOL are one class for the selection rule, and a
            # point within it of the span of others is on their intersection: the flow is
            # computed for them made exactly parallel, or moved onto the span (a change
            # of at most 1e-10 relative, recorded)
            X, moved = snap_data(data.X)
            if np.any(moved):
                moved_rows = np.flatnonzero(moved)
                meta["snapped_points"] = {"points": moved_rows.tolist(),
                                          "max_relative_move": float(np.max(moved)),
                                          "original": data.X[moved_rows].tolist()}
            if ck is None:
                flow = HybridFlow(X, data.y, init.W, init.a, loss_fn, gamma, options,
                                  X_given=data.X)
            else:
                flow = ck.make_flow(X, data.y, loss_fn, gamma, options)
                if flow.rest is not None and flow.rest.t_end < t_max:
                    flow.rest = None  # its bound was for a shorter horizon: checked again
    except FloatingPointError as err:
        raise ValueError(f"data: the inputs are too large for double precision ({err} in "
                         f"the norms |x_k| or the initial state); rescale the data") from None
    if ck is None:  # bad input is refused before any file is touched
        with floating_point_checks():
            try:
                h0 = flow.outputs()
                RunGuard(t_max).outputs(h0, loss_fn(h0, data.y), flow.t)
            except (FloatingPointError, NonFinite) as err:
                raise ValueError(
                    f"init: the outputs h(x_k) and the loss of the initial network overflow "
                    f"({err}); reduce the initialisation scale or rescale the data"
                ) from None
    balance = _Balance(flow.Z if ck is None else np.hstack([init.W, init.a[:, None]]),
                       options.invariant_tol)
    snap_t = [] if ck is None else list(ck.snap_t)
    snap_Z = [] if ck is None or ck.snap_Z is None else list(ck.snap_Z)
    snap_pat = [] if ck is None or ck.snap_pat is None else list(ck.snap_pat)
    sink = None
    if store is not None:
        header = {"gamma": gamma, "loss_name": loss_fn.name, "meta": meta}
        sink = _SnapshotSink(store, len(snaps) + 1, init.m, q, X=X, y=data.y,
                             header=header, resume_rows=None if ck is None else len(snap_t),
                             overwrite=overwrite)
        checkpoint_every = 60.0 if checkpoint_every is None else checkpoint_every
    step_t = [] if ck is None else list(ck.step_t)
    step_h = [] if ck is None else list(ck.step_h)
    # the solver of each step (None: a resumed run written before it was recorded)
    step_implicit = ([] if ck is None else None if ck.step_implicit is None
                     else list(ck.step_implicit))
    marks = [ck.mark] if ck is not None else []
    last_ckpt = [time.perf_counter()]

    def record_step() -> None:
        h = flow.outputs()
        guard.outputs(h, loss_fn(h, data.y), flow.t)
        step_t.append(flow.t)
        step_h.append(h)
        if step_implicit is not None:
            step_implicit.append(flow.last_step_implicit)

    def snapshot(i_next: int | None = None, check: bool = True,
                 state: tuple[float, Array, NDArray] | None = None) -> None:
        t, Z, pat = (flow.t, flow.Z, flow.pat) if state is None else state
        if check:
            balance.check(Z, t)
        # the snapshot and the run's count of it together: a signal between the store's
        # write and the count found no snapshot to keep and left the store without a status
        # (PARTIAL: a SIGHUP just after the first snapshot's write, session 58)
        with deferred():
            if sink is not None:
                sink.write(len(snap_t), Z, pat, [*snap_t, t], flow.table.arrays().U)
            else:
                snap_Z.append(Z.copy() if state is None else Z)
                snap_pat.append(pat.copy())
            snap_t.append(t)
        if i_next is not None:  # an anchor: the run can be resumed exactly here
            marks.append(take_mark(flow, snaps, i_next, len(snap_t), len(step_t),
                                   time.perf_counter() - start))
            # the first checkpoint at t0: a run killed before the next one resumes from there
            if sink is not None and (len(marks) == 1 or time.perf_counter() - last_ckpt[0]
                                     >= checkpoint_every):
                sink.checkpoint(marks[-1].to_dict(), flow.events.arrays(), step_t, step_h,
                                step_implicit,
                                flow.table.arrays().U)
                last_ckpt[0] = time.perf_counter()

    # a second signal while the interrupted run is being saved is held, not raised there
    with InterruptOnce() as once:
        status, message = Status.FINISHED, str(Status.FINISHED)
        bar = Progress(progress, t_max)
        try:
            with watch():
                if ck is None:
                    record_step()
                    snapshot(1)
                    i_snap = 1
                else:
                    i_snap = ck.mark.i_snap
                    if sink is not None:
                        sink.checkpoint(ck.mark.to_dict(), flow.events.arrays(), step_t, step_h,
                                        step_implicit,
                                        flow.table.arrays().U)
                while flow.t < t_max:
                    i_anchor = i_snap + int(np.argmax(anchor[i_snap:]))
                    flow.step(snaps[i_anchor], snaps[i_snap:i_anchor])
                    guard.progress(flow.t)
                    record_step()
                    if flow.rest is None and flow.t < t_max:
                        flow.check_rest(t_max, outputs=step_h[-1])
                    for state in flow.dense_snapshots:  # grid times inside the step
                        if state[0] != snaps[i_snap]:
                            raise InvariantError(f"snapshot at t = {state[0]!r} out of order "
                                                 f"(expected t = {snaps[i_snap]!r})")
                        i_snap += 1
                        snapshot(state=state)
                    if flow.t > snaps[i_snap]:
                        raise InvariantError(f"the step to t = {flow.t!r} passed the snapshot time "
                                             f"{snaps[i_snap]!r}")
                    if flow.t == snaps[i_snap]:
                        i_snap += 1
                        snapshot(i_snap if anchor[i_snap - 1] else None)
                    if callback is not None:
                        callback(flow)
                    bar.update(flow)
        except ZenoError as err:
            status, message = Status.ZENO, f"{Status.ZENO}: {err}"
        except InvariantError as err:
            status, message = Status.INVARIANT, f"{Status.INVARIANT}: {err}"
        except NoProgress as err:
            status, message = Status.NO_PROGRESS, f"{Status.NO_PROGRESS}: {err}"
        except NonFinite as err:
            status, message = Status.NON_FINITE, f"{Status.NON_FINITE}: {err}"
        except FloatingPointError as err:
            status = Status.NON_FINITE
            where = describe_overflow(err, flow.t, getattr(flow, "_Zs", None), data.X)
            message = f"{Status.NON_FINITE}: {where}"
        except RuntimeError as err:
            status, message = Status.FAILED, f"{Status.FAILED}: {err}"
        except KeyboardInterrupt as err:
            if not snap_t:  # before the first snapshot: nothing to keep
                raise
            status = Status.INTERRUPTED
            message = f"{describe_interrupt(err)}; the trajectory so far is kept"
            meta["signal"] = exit_status(err) - 128
        once.hold()  # from here on (the last state, the file) every signal waits
        # the last finite state is kept: after an overflow inside a step the integrator's state
        # may be half-updated, so the run ends at its last snapshot and last recorded step
        with np.errstate(all="ignore"):
            try:
                Z_end = flow.Z  # materialising the neurons measures their sliding residual
            except InvariantError as err:  # kept (not projected); the status says why
                if status == Status.FINISHED:
                    status, message = Status.INVARIANT, f"{Status.INVARIANT}: {err}"
                Z_end = flow.Z
            usable = (status != Status.NON_FINITE and finite_state(Z_end)
                      and finite_state(flow.outputs()))
            if usable and step_t[-1] != flow.t:
                try:
                    record_step()
                except NonFinite:
                    usable = False
        if usable and snap_t[-1] != flow.t:
            try:
                snapshot()
            except InvariantError as err:  # the last state is kept, the status says why
                if status == Status.FINISHED:
                    status, message = Status.INVARIANT, f"{Status.INVARIANT}: {err}"
                if snap_t[-1] != flow.t:
                    snapshot(check=False)
        bar.update(flow, force=True)
        wall = time.perf_counter() - start
        if flow.rest is not None and status == Status.FINISHED:
            message = f"{message}; {describe_rest(flow.rest)}"

        if sink is not None:
            Z, pat_arr = sink.views(len(snap_t))
        else:
            Z, pat_arr = np.array(snap_Z), np.array(snap_pat, dtype=np.int64)
        hs = np.array(step_h)
        tab = flow.table.arrays()
        if marks:
            meta["resume"] = marks[-1].to_dict()
        stats = {
            "n_steps": flow.n_steps,
            "nfev": flow.nfev,
            "n_events": len(flow.events),
            "n_cut_steps": flow.n_cut,
            "n_restarts": flow.n_restarts,
            "n_stiff_rollbacks": flow.n_rollbacks,
            "n_snapshot_redos": flow.n_snapshot_redos,
            "n_cut_redos": flow.n_cut_redos,
            "n_exit_redos": flow.n_exit_redos,
            "n_excursions": flow.n_excursions,
            "n_patterns": len(tab),
            "wall_time": wall,
            "n_branch_points": flow.n_branch,
            "t_first_branch": (float(flow.t_first_branch) if np.isfinite(flow.t_first_branch)
                               else None),
            "lemma1_max_drift_checked": balance.max,
            "max_sliding_residual": flow.max_sliding_residual,
            "max_lorentz_correction": flow.max_lorentz_correction,
            "t_rest": None if flow.rest is None else flow.rest.t,
            "rest_bound": None if flow.rest is None else flow.rest.relative,
        }
        traj = Trajectory(
            t=np.array(snap_t), W=Z[:, :, : data.d], a=Z[:, :, data.d],
            pattern=pat_arr, patterns=tab.U.copy(),
            step_t=np.array(step_t), step_outputs=hs,
            step_implicit=(None if step_implicit is None
                           else np.array(step_implicit, dtype=bool)),
            step_loss=np.mean(loss_fn(hs, data.y[None, :]), axis=1),
            events=flow.events.arrays(), X=X.copy(), y=data.y.copy(), gamma=gamma,
            loss_name=loss_fn.name, status=int(status), message=message, stats=stats, meta=meta,
            loss_fn=loss_fn,
        )
        if sink is not None:
            traj.save_store(store)
    return traj


class _SnapshotSink(StoreWriter):
    """Snapshots written to disk as they are taken (``simulate(store=DIR)``).

    Two ``.npy`` files in ``DIR`` (memory-mapped, so a run with many snapshots of many neurons
    never holds them in memory): ``snapshots.npy`` (states, shape ``(k, m, d + 1)``) and
    ``snapshot_patterns.npy`` (face of each neuron, ``(k, m)``); after each snapshot the times
    and the metadata (``progress.npz``), so that a killed run stays readable
    (:class:`pwflow.store.StoreWriter`).
    """



def _plain(v) -> bool:
    return isinstance(v, (int, float, str, bool)) or v is None


def continue_from(traj: "Trajectory", i: int, t: float) -> tuple[Array, Array]:
    """``(W, a)`` at time ``t`` by restarting the flow at snapshot ``i`` of ``traj`` with its
    options (the dense evaluation that :meth:`Trajectory.state` uses).

    Every step tried is the run's own step from the current time (to its next accepted
    point, ``step_t``; the rest of the run's step where the snapshot lies inside one), so
    the restart retraces the run's steps and only its last one is shortened to end at
    ``t``.  With the solver's fresh first-step guess it took steps of its own: on an
    integer d = 4 problem (``tests/explore_integer.py`` seed 70926) the state at t = 20 was
    3.2e-9 from a run ending there, where the runs' own states agree to 2.6e-10 (session
    57).  With the run's first step alone, the solver's next trials were its own: where
    the run's trial had been rejected (0.856 from t = 34.618, error 1 300 times the
    tolerance) and the retrace's, clipped at ``t``, was not (0.627, 0.6 times), the state
    at t = 35.245 was 8.0e-9 (relative) from a run at ``rtol = 1e-13``, where the run's
    two steps of 0.313 were 3.2e-11 from it (session 58).

    Each step is also taken by the run's solver (``traj.step_implicit``; trajectories
    written before it was recorded leave the choice to the hand-over rule), under the
    run's floating-point checks (:func:`pwflow.guard.floating_point_checks`: an
    overflowing trial step is rejected as in the run), and a run that stopped at rest
    (``stats['t_rest']``) keeps its neurons from then on as the run did.
    """
    opt = dict(traj.meta["options"])
    opt = {k: v for k, v in opt.items() if k in FlowOptions.__dataclass_fields__}
    t_i = float(traj.t[i])
    t_rest = (traj.stats or {}).get("t_rest")
    if t_rest is not None:
        if t_i >= float(t_rest):
            return np.array(traj.W[i], dtype=float), np.array(traj.a[i], dtype=float)
        t = min(t, float(t_rest))
    flow = HybridFlow(
        traj.X, traj.y, traj.W[i], traj.a[i], traj._loss(), traj.gamma,
        FlowOptions(**opt).validated(), t0=t_i, patterns=traj.patterns[traj.pattern[i]],
    )
    steps = np.asarray(traj.step_t, dtype=float)
    implicit = traj.step_implicit
    with floating_point_checks():
        while flow.t < t:
            j = _run_step_index(steps, flow.t)
            inside = j < steps.size
            flow.follow_step(float(steps[j] - flow.t) if inside else None,
                             bool(implicit[j]) if inside and implicit is not None else None)
            flow.step(t)
    return flow.Z[:, :-1].copy(), flow.Z[:, -1].copy()


def _run_step_index(step_t: Array, t_i: float) -> int:
    """The run's next accepted point after ``t_i`` (its step from ``t_i``: the whole step
    where ``t_i`` is one, the rest of it where ``t_i`` lies inside it); ``step_t.size``
    past the last accepted point (the solver's own guess)."""
    return int(np.searchsorted(step_t, t_i, side="right"))


def _attach() -> None:
    from . import trajectory

    trajectory.set_dense_evaluator(continue_from)


_attach()
