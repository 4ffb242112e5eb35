"""Trajectories as labelled arrays: an :mod:`xarray` Dataset and a :mod:`pandas` event table.

For analysis in notebooks with the usual tools (optional extra ``pip install 'pwflow[xarray]'``
brings xarray, pandas and a netCDF engine).  The functions here only *read* a
:class:`pwflow.trajectory.Trajectory`; they are reached through
:meth:`Trajectory.to_xarray <pwflow.trajectory.Trajectory.to_xarray>` and
:meth:`Trajectory.events_frame <pwflow.trajectory.Trajectory.events_frame>`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .events import EventKind

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas
    import xarray

    from .trajectory import Trajectory

__all__ = ["EVENT_KIND_NAMES", "events_frame", "flat_attributes", "to_xarray"]

#: Lower-case names of :class:`pwflow.events.EventKind`, in code order (the keys of
#: :meth:`Trajectory.events_by_kind <pwflow.trajectory.Trajectory.events_by_kind>`).
EVENT_KIND_NAMES: tuple[str, ...] = tuple(k.name.lower() for k in EventKind)


def _require(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"this export needs {module}; install it with pip install 'pwflow[xarray]'"
        ) from None


def _attr_value(v: Any) -> Any:
    """A value netCDF can store as an attribute (``None`` is dropped by the caller)."""
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    return str(v)


def flat_attributes(traj: "Trajectory") -> dict[str, Any]:
    """The run's description as flat ``name -> number or string`` attributes.

    ``lambda`` is the initialisation scale λ of Eq. (3), ``m`` the width, ``gamma`` the
    leaky-ReLU slope γ of Eq. (1), ``seed`` the initialisation seed, ``dataset`` its name,
    ``loss`` the loss name, ``rtol`` / ``atol`` the integrator tolerances and ``version`` the
    pwflow version that computed the run; then ``status``, ``message``, ``method``,
    ``init_kind``, ``t_max`` and the numbers of ``stats``.  Entries the run does not record
    are left out (netCDF has no ``None``).
    """
    meta = traj.meta
    init = meta.get("init", {})
    options = meta.get("options", {})
    dataset = meta.get("dataset", {})
    attrs: dict[str, Any] = {
        "lambda": init.get("scale"),
        "m": traj.m,
        "gamma": traj.gamma,
        "seed": init.get("seed"),
        "dataset": dataset.get("name") if isinstance(dataset, dict) else dataset,
        "loss": traj.loss_name,
        "rtol": options.get("rtol"),
        "atol": options.get("atol"),
        "version": meta.get("versions", {}).get("pwflow"),
        "status": int(traj.status),
        "message": traj.message,
        "method": meta.get("method", "flow"),
        "init_kind": init.get("kind"),
        "t_max": meta.get("t_max"),
    }
    for key, value in traj.stats.items():
        if isinstance(value, (int, float, np.integer, np.floating)):
            attrs.setdefault(key, value)
    return {k: _attr_value(v) for k, v in attrs.items() if v is not None}


def to_xarray(traj: "Trajectory") -> "xarray.Dataset":
    """The stored states of ``traj`` as an :class:`xarray.Dataset`.

    Variables: ``w(time, neuron, dim)``, ``a(time, neuron)``, ``loss(time)`` (``L(θ^t)``,
    Section 2, at the stored times), ``face(time, neuron)`` (row of ``patterns`` the neuron
    is in), ``patterns(face_id, point)`` (activation patterns ``A(w)``), the data
    ``x(point, dim)`` and ``y(point)``, and the event log along ``event``
    (``event_t``, ``event_neuron``, ``event_point`` — ``-1`` for ``w = 0`` — and
    ``event_kind``, the :class:`pwflow.events.EventKind` codes with CF ``flag_values`` /
    ``flag_meanings``).  Coordinates ``time``, ``neuron``, ``dim``, ``point``.  Attributes
    from :func:`flat_attributes`.  The arrays are not copied where numpy allows it (a run
    stored with ``simulate(store=...)`` stays memory-mapped).

    Raises
    ------
    ImportError
        If xarray is not installed (``pip install 'pwflow[xarray]'``).
    """
    xr = _require("xarray")
    _, m, d = traj.W.shape
    n = traj.X.shape[0]
    ev = traj.events
    kind_codes = np.array([int(c) for c in EventKind], dtype=np.int64)
    data_vars = {
        "w": (("time", "neuron", "dim"), traj.W,
              {"long_name": "input weights w_j (Eq. (1))"}),
        "a": (("time", "neuron"), traj.a, {"long_name": "output weights a_j (Eq. (1))"}),
        "loss": (("time",), np.asarray(traj.loss, dtype=float),
                 {"long_name": "empirical loss L(theta) (Section 2)"}),
        "face": (("time", "neuron"), np.asarray(traj.pattern, dtype=np.int64),
                 {"long_name": "row of `patterns` holding the neuron's activation pattern"}),
        "patterns": (("face_id", "point"), np.asarray(traj.patterns, dtype=np.int8),
                     {"long_name": "activation patterns A(w) met during the run"}),
        "x": (("point", "dim"), traj.X, {"long_name": "data points x_k"}),
        "y": (("point",), traj.y, {"long_name": "labels y_k"}),
        "event_t": (("event",), np.asarray(ev["t"], dtype=float),
                    {"long_name": "time of the event"}),
        "event_neuron": (("event",), np.asarray(ev["neuron"], dtype=np.int64),
                         {"long_name": "neuron j"}),
        "event_point": (("event",), np.asarray(ev["k"], dtype=np.int64),
                        {"long_name": "data index k of the hyperplane <w, x_k> = 0 "
                                      "(-1: the neuron reached w = 0)"}),
        "event_kind": (("event",), np.asarray(ev["kind"], dtype=np.int64),
                       {"long_name": "what happened (pwflow.events.EventKind)",
                        "flag_values": kind_codes,
                        "flag_meanings": " ".join(EVENT_KIND_NAMES)}),
    }
    coords = {
        "time": ("time", np.asarray(traj.t, dtype=float), {"long_name": "time t of the flow"}),
        "neuron": ("neuron", np.arange(m, dtype=np.int64)),
        "dim": ("dim", np.arange(d, dtype=np.int64)),
        "point": ("point", np.arange(n, dtype=np.int64)),
    }
    return xr.Dataset(data_vars, coords=coords, attrs=flat_attributes(traj))


def events_frame(traj: "Trajectory") -> "pandas.DataFrame":
    """The event log of ``traj`` as a :class:`pandas.DataFrame`, one row per event.

    Columns ``t``, ``neuron``, ``point`` (data index ``k`` of the hyperplane
    ``<w_j, x_k> = 0``, ``-1`` when the neuron reached ``w = 0``), ``kind`` (a categorical
    with the lower-case names of :class:`pwflow.events.EventKind`, so that
    ``frame.groupby("kind", observed=True).size()`` gives
    :meth:`Trajectory.events_by_kind <pwflow.trajectory.Trajectory.events_by_kind>`), and,
    where the run records them, ``residual``, ``from_pattern``, ``to_pattern``.

    Raises
    ------
    ImportError
        If pandas is not installed (``pip install 'pwflow[xarray]'``).
    """
    pd = _require("pandas")
    ev = traj.events
    position = np.zeros(max(int(c) for c in EventKind) + 1, dtype=np.int64)
    position[[int(c) for c in EventKind]] = np.arange(len(EventKind))
    codes = position[np.asarray(ev["kind"], dtype=np.int64)]
    kind = pd.Categorical.from_codes(codes, categories=list(EVENT_KIND_NAMES))
    columns = {
        "t": np.asarray(ev["t"], dtype=float),
        "neuron": np.asarray(ev["neuron"], dtype=np.int64),
        "point": np.asarray(ev["k"], dtype=np.int64),
        "kind": kind,
    }
    for extra in ("residual", "from_pattern", "to_pattern"):
        if extra in ev:
            columns[extra] = np.asarray(ev[extra])
    return pd.DataFrame(columns)
