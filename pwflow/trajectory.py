"""The result of a run: snapshots, step-level outputs and loss, the event log, statistics.

Saved to a single ``.npz`` file (no pickle) with a JSON metadata record; dense evaluation at
any time restarts the integrator from the nearest earlier snapshot with the run's tolerances.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from .events import EventKind
from .model import Loss, activation, get_loss
from .store import FORMAT_VERSION, check_finite_states, load_store, write_npz

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas
    import xarray

__all__ = ["Trajectory", "load_trajectory", "versions"]

Array = NDArray[np.float64]


#: ``f(trajectory, i, t) -> (W, a)``: restart the flow at snapshot ``i`` and run it to ``t``.
#: Attached by the driver (:mod:`pwflow.integrator`), so that this module, plain data, does not
#: import the integrator.
_DENSE_EVALUATOR = None


def set_dense_evaluator(fn) -> None:
    """Attach the dense evaluator used by :meth:`Trajectory.state` (done by the driver)."""
    global _DENSE_EVALUATOR
    _DENSE_EVALUATOR = fn


def versions() -> dict[str, str]:
    """Versions recorded in metadata."""
    import scipy

    from . import __version__

    return {
        "pwflow": __version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "python": platform.python_version(),
    }


@dataclass
class Trajectory:
    """A computed trajectory of the flow (or of gradient descent, ``meta['method']``).

    Attributes
    ----------
    t : array (k,)
        Snapshot times (always includes the start and the end).
    W, a : arrays (k, m, d), (k, m)
        Neurons at the snapshot times.
    pattern : array (k, m)
        Face index of each neuron at the snapshot times (rows of ``patterns``).
    patterns : array (P, n) of int8
        Activation patterns ``u = A(w)`` met during the run.
    step_t, step_outputs, step_loss : arrays
        Every accepted point of the integrator, the outputs ``h_θ(x_k)`` and ``L(θ)`` there.
    step_implicit : bool array or None
        Whether the implicit solver took the step to each accepted point (``False``: DOP853,
        or no step); :meth:`state` retraces each step with the run's solver.  ``None`` for
        trajectories written before it was recorded, and for gradient descent's.
    events : dict of arrays
        ``t``, ``neuron``, ``k`` (data index, −1 for ``w = 0``), ``kind``
        (:class:`pwflow.events.EventKind`), ``residual`` (``|<w, x_k>| / (‖w‖ ‖x_k‖)`` at the
        located time), ``from_pattern``, ``to_pattern``.
    X, y : arrays
        The data.
    gamma : float
    loss_name : str
    status : int
        0 finished, −1 failed, −2 Zeno guard, −3 interrupted (see :class:`Status`).
    message : str
    stats : dict
        ``n_steps``, ``nfev``, ``n_events``, ``n_cut_steps``, ``wall_time``.
    meta : dict
        Dataset, initialisation, tolerances, versions.
    """

    t: Array
    W: Array
    a: Array
    pattern: NDArray[np.int64]
    patterns: NDArray[np.int8]
    step_t: Array
    step_outputs: Array
    step_loss: Array
    events: dict
    X: Array
    y: Array
    gamma: float
    loss_name: str
    status: int
    message: str
    stats: dict
    meta: dict = field(default_factory=dict)
    step_implicit: NDArray[np.bool_] | None = None
    loss_fn: Loss | None = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ basics
    @property
    def success(self) -> bool:
        return self.status == 0

    @property
    def m(self) -> int:
        return int(self.W.shape[1])

    @property
    def n_events(self) -> int:
        return int(self.events["t"].size)

    @property
    def loss(self) -> Array:
        """``L(θ^t)`` at the snapshot times."""
        lf = self._loss()
        return np.array([np.mean(lf(self.outputs_of(i), self.y)) for i in range(self.t.size)])

    def _loss(self) -> Loss:
        if self.loss_fn is not None:
            return self.loss_fn
        return get_loss(self.loss_name)

    def outputs_of(self, i: int) -> Array:
        """``h_θ(x_k)`` at snapshot ``i``."""
        return activation(self.X @ self.W[i].T, self.gamma) @ self.a[i]

    def events_by_kind(self) -> dict[str, int]:
        kinds = self.events["kind"]
        return {k.name.lower(): int(np.sum(kinds == k)) for k in EventKind if np.any(kinds == k)}

    def to_xarray(self) -> "xarray.Dataset":
        """The stored states as an :class:`xarray.Dataset` (``w``, ``a``, ``loss``, events).

        See :func:`pwflow.export.to_xarray`; needs ``pip install 'pwflow[xarray]'``.
        ``ds.to_netcdf(path)`` writes it to a netCDF file.
        """
        from .export import to_xarray

        return to_xarray(self)

    def events_frame(self) -> "pandas.DataFrame":
        """The event log as a :class:`pandas.DataFrame` (``t``, ``neuron``, ``point``, ``kind``).

        See :func:`pwflow.export.events_frame`; needs ``pip install 'pwflow[xarray]'``.
        """
        from .export import events_frame

        return events_frame(self)

    def balancedness_drift(self) -> Array:
        """Per neuron: ``max_t |c_j(t) − c_j(0)| / max_t (a_j(t)² + ‖w_j(t)‖²)``, ``c = a² − ‖w‖²``.

        Lemma 1 says ``c_j`` is conserved; this is the measured violation relative to the
        largest size the neuron took (the scale at which ``c_j`` is computed in floating point:
        a neuron that shrinks by 10⁶ cannot carry ``c_j`` to better than 10⁻¹⁶ of its largest
        size).
        """
        wn2 = np.einsum("kmd,kmd->km", self.W, self.W)
        c = self.a**2 - wn2
        scale = np.maximum(np.max(self.a**2 + wn2, axis=0), np.finfo(float).tiny)
        return np.max(np.abs(c - c[0]), axis=0) / scale

    def modes(self, i: int = -1) -> NDArray[np.int8]:
        """Activation pattern of every neuron at snapshot ``i`` (shape ``(m, n)``)."""
        return self.patterns[self.pattern[i]]

    # ------------------------------------------------------------------ dense evaluation
    def state(self, t: float) -> tuple[Array, Array]:
        """``(W, a)`` at time ``t``: restart from the nearest earlier snapshot.

        Exact to the run's tolerance (the integrator is deterministic; only the last step is
        shortened to end at ``t``).  Only for trajectories of the flow.
        """
        t = float(t)
        if not (self.t[0] <= t <= self.t[-1]):
            raise ValueError(f"t = {t!r} is outside the computed interval [{self.t[0]}, {self.t[-1]}]")
        i = int(np.searchsorted(self.t, t, side="right") - 1)
        if self.t[i] == t:
            return self.W[i].copy(), self.a[i].copy()
        if self.meta.get("method", "flow") != "flow":
            raise ValueError("dense evaluation needs a flow trajectory; this one is " + self.meta["method"])
        if _DENSE_EVALUATOR is None:
            raise RuntimeError("no dense evaluator attached: import pwflow (pwflow.integrator)")
        return _DENSE_EVALUATOR(self, i, t)

    def outputs(self, t: float) -> Array:
        """``h_θ(x_k)`` at time ``t`` (dense)."""
        W, a = self.state(t)
        return activation(self.X @ W.T, self.gamma) @ a

    def loss_at(self, t: float) -> float:
        """``L(θ^t)`` at time ``t`` (dense)."""
        return float(np.mean(self._loss()(self.outputs(t), self.y)))

    # ------------------------------------------------------------------ resume
    def resume(self, t_max: float | None = None, *, store: str | Path | None = None,
               progress: bool = False, checkpoint_every: float | None = None,
               stall_steps: int | None = None) -> "Trajectory":
        """Continue the run from its last exact state to ``t_max`` (default: its own).

        The run is truncated to its last grid snapshot (:class:`pwflow.resume.Mark`: state,
        faces, event log, options and the integrator's step-size memory) and continued from
        there, so that an interrupted run resumed equals the uninterrupted one (same events,
        same states).  ``store``: the run's store folder, continued in place.
        """
        from .resume import resume

        return resume(self, t_max, store=store, progress=progress,
                      checkpoint_every=checkpoint_every, stall_steps=stall_steps)

    # ------------------------------------------------------------------ summary
    def summary(self) -> dict:
        drift = self.balancedness_drift()
        return {
            "status": int(self.status),
            "message": self.message,
            "t_final": float(self.t[-1]),
            "m": self.m,
            "n": int(self.X.shape[0]),
            "d": int(self.X.shape[1]),
            "final_loss": float(self.step_loss[-1]) if self.step_loss.size else float("nan"),
            "events": self.n_events,
            "events_by_kind": self.events_by_kind(),
            "lemma1_max_relative_drift": float(np.max(drift)) if drift.size else 0.0,
            "max_event_residual": float(np.max(self.events["residual"], initial=0.0)),
            **{k: v for k, v in self.stats.items()},
            "options": dict((self.meta or {}).get("options", {})),
            "snapped_points": _snapped_summary((self.meta or {}).get("snapped_points")),
        }

    # ------------------------------------------------------------------ storage
    def save(self, path: str | Path) -> Path:
        """Write the trajectory to ``path`` (``.npz``, compressed, no pickle)."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(path.suffix + ".npz") if path.suffix else path.with_suffix(".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "format_version": FORMAT_VERSION,
            "gamma": self.gamma,
            "loss_name": self.loss_name,
            "status": int(self.status),
            "message": self.message,
            "stats": self.stats,
            "meta": self.meta,
        }
        arrays = {f"events_{k}": v for k, v in self.events.items()}
        if self.step_implicit is not None:
            arrays["step_implicit"] = np.asarray(self.step_implicit, dtype=bool)
        write_npz(
            path,
            t=self.t, W=self.W, a=self.a, pattern=self.pattern, patterns=self.patterns,
            step_t=self.step_t, step_outputs=self.step_outputs, step_loss=self.step_loss,
            X=self.X, y=self.y, record=np.array(json.dumps(record, default=_json_default)),
            **arrays,
        )
        return path

    def save_store(self, directory: str | Path) -> Path:
        """Write everything but the snapshots to ``directory/run.npz``.

        Used by ``simulate(store=directory)``, whose snapshots already stream to
        ``directory/snapshots.npy`` and ``directory/snapshot_patterns.npy``.
        """
        directory = Path(directory)
        record = {
            "format_version": FORMAT_VERSION, "gamma": self.gamma, "loss_name": self.loss_name,
            "status": int(self.status), "message": self.message, "stats": self.stats,
            "meta": self.meta, "n_snapshots": int(self.t.size),
        }
        arrays = {f"events_{k}": v for k, v in self.events.items()}
        if self.step_implicit is not None:
            arrays["step_implicit"] = np.asarray(self.step_implicit, dtype=bool)
        write_npz(
            directory / "run.npz", t=self.t, patterns=self.patterns, step_t=self.step_t,
            step_outputs=self.step_outputs, step_loss=self.step_loss, X=self.X, y=self.y,
            record=np.array(json.dumps(record, default=_json_default)), **arrays,
        )
        return directory

    @classmethod
    def _load_store(cls, directory: Path, loss: Loss | None) -> "Trajectory":
        return load_store(directory, loss)

    @classmethod
    def load(cls, path: str | Path, loss: Loss | None = None) -> "Trajectory":
        """Read a trajectory written by :meth:`save`, or a ``simulate(store=...)`` directory.

        A custom loss cannot be stored; pass it as ``loss`` for dense evaluation.  Snapshots
        of a store directory are memory-mapped, not read into memory.
        """
        path = Path(path)
        if path.is_dir():
            return cls._load_store(path, loss)
        if not path.exists():
            raise ValueError(f"no trajectory file at {str(path)!r}")
        from .store import read_npz, read_record, step_implicit_of

        what = "a pwflow trajectory file"
        data = read_npz(path, what, "; expected the .npz written by 'pwflow simulate'")
        rec = read_record(data, path, what)
        for key in ("t", "W", "a", "pattern", "patterns", "step_t", "step_outputs", "step_loss",
                    "X", "y"):
            if key not in data:
                raise ValueError(f"{path} is not a complete pwflow trajectory file (no {key!r})")
        check_finite_states(data["W"], data["a"], path)
        events = {k[len("events_"):]: v for k, v in data.items() if k.startswith("events_")}
        return cls(
            t=data["t"], W=data["W"], a=data["a"], pattern=data["pattern"],
            patterns=data["patterns"], step_t=data["step_t"], step_outputs=data["step_outputs"],
            step_loss=data["step_loss"], events=events, X=data["X"], y=data["y"],
            gamma=float(rec["gamma"]), loss_name=rec["loss_name"], status=int(rec["status"]),
            message=rec["message"], stats=rec["stats"], meta=rec["meta"], loss_fn=loss,
            step_implicit=step_implicit_of(data, data["step_t"].size),
        )


def load_trajectory(path: str | Path, loss: Loss | None = None) -> Trajectory:
    """Shorthand for :meth:`Trajectory.load`."""
    return Trajectory.load(path, loss)


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _snapped_summary(snapped: dict | None) -> dict | None:
    """The points :func:`pwflow.subgradient.snap_data` moved and the largest move, for
    :meth:`Trajectory.summary` (their original rows stay in ``meta``, for resuming)."""
    if not snapped:
        return None
    return {k: v for k, v in snapped.items() if k != "original"}
