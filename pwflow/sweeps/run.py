"""One grid point, run on a worker: build data and init from the parameters, run, store.

:func:`run_point` is the task sent to Dask.  It takes only the small frozen
:class:`~pwflow.sweeps.spec.RunPoint` (no arrays travel in the task graph), writes the run
store to a temporary folder next to its final place and renames it into ``runs/<id>/`` when
complete (a rename within one filesystem is atomic: a folder ``runs/<id>/`` is always a whole
run).  It is idempotent: if ``runs/<id>/`` exists (a retry after the worker died between the
rename and its report), the stored row is returned.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
import uuid
from dataclasses import asdict
from enum import Enum
from functools import lru_cache
from pathlib import Path

import numpy as np

from .spec import ClassifyRule, DatasetSpec, RunPoint

__all__ = ["Outcome", "classify", "run_point", "build_dataset", "ROW_FILE", "BLAS_ENV"]

#: File of a finished run folder holding its summary row (JSON).
ROW_FILE = "row.json"

#: Environment variables that pin BLAS / OpenMP thread pools to one thread in workers.
BLAS_ENV = {v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                             "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")}


class Outcome(str, Enum):
    """Where a run ended (see :func:`classify`)."""

    GLOBAL = "global minimum"
    SPURIOUS = "spurious stationary point"
    NOT_CONVERGED = "not converged"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


def classify(row: dict, rule: ClassifyRule) -> Outcome:
    """The outcome of a run from its summary row (a pure function of the row).

    With ``L₀ = (1/n) Σ ℓ(0, y_k)`` the loss of the zero network (the scale of the problem),
    ``L(T)`` the final loss, ``L(T/2)`` the loss at half the horizon and ``L_β*`` the loss of
    the least-squares linear fit ``x ↦ <β*, x>`` (Theorem 2's spurious value; square loss and
    full-rank ``X`` only):

    1. ``status ≠ 0`` (Zeno guard, solver failure, an exception): **failed**;
    2. ``L(T) ≤ global_tol · L₀``: **global minimum**;
    3. ``|L(T) − L_β*| ≤ spurious_tol · L₀`` and
       ``L(T/2) − L(T) ≤ spurious_tol · L₀``
       (the loss sits at ``L_β*`` and has stopped decreasing): **spurious stationary point**;
    4. otherwise: **not converged** (still decreasing at ``T``, or stalled elsewhere).

    The classification is at the finite horizon ``T = t_max``: a run on a long plateau near
    ``L_β*`` that would leave it after ``T`` is reported spurious.
    """
    if row.get("status") != 0:
        return Outcome.FAILED
    L0, LT = row.get("zero_loss"), row.get("final_loss")
    if L0 is None or LT is None or not math.isfinite(LT):
        return Outcome.NOT_CONVERGED
    if LT <= rule.global_tol * L0:
        return Outcome.GLOBAL
    Lb, Lh = row.get("loss_beta_star"), row.get("half_loss")
    tol = rule.spurious_tol * L0
    if Lb is not None and Lh is not None and abs(LT - Lb) <= tol and Lh - LT <= tol:
        return Outcome.SPURIOUS
    return Outcome.NOT_CONVERGED


def build_dataset(ds: DatasetSpec, seed: int, eta: float | None, n: int | None):
    """The :class:`pwflow.Dataset` of a grid point (random datasets drawn with ``seed``)."""
    from .. import data as D

    if ds.name == "three-points":
        return D.three_points()
    if ds.name == "assumption3":
        return D.assumption3(eta=0.1 if eta is None else eta, seed=seed)
    if ds.name == "stewart":
        return D.stewart(seed=seed, n=40 if n is None else n)
    return D.load_dataset(ds.path, bias=ds.bias)


@lru_cache(maxsize=32)
def _theory(ds: DatasetSpec, seed: int, eta: float | None, n: int | None, loss: str,
            gamma: float) -> tuple[float | None, float | None, object]:
    """``(L_β*, D_max, geometry)`` of a dataset, from :mod:`proofs_checks.constants`."""
    from proofs_checks.constants import D_max, Undefined, beta_star
    from proofs_checks.faces import geometry

    data = build_dataset(ds, seed, eta, n)
    try:
        geo = geometry(data, loss, gamma)
    except (ValueError, ArithmeticError):
        return None, None, None
    dmax = float(D_max(geo))
    lb = None
    if loss == "square":
        beta = beta_star(geo)
        if not isinstance(beta, Undefined):
            lb = float(np.mean(0.5 * (data.X @ beta - data.y) ** 2))
    return lb, dmax, geo


def _zero_loss(data, loss: str) -> float:
    from ..model import get_loss

    return float(np.mean(get_loss(loss)(np.zeros(data.n), np.asarray(data.y, float))))


@contextlib.contextmanager
def _one_thread():
    """Pin BLAS to one thread when threadpoolctl is there (workers also get :data:`BLAS_ENV`)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(1):
        yield


def run_point(point: RunPoint, runs_dir: str) -> dict:
    """Run one grid point into ``runs_dir/<id>/`` and return its summary row (a dict).

    The store has the layout of ``pwflow simulate --store`` (``run.npz``, ``snapshots.npy``,
    ``snapshot_patterns.npy``) plus ``row.json``.  Raises on an exception in the run (Dask
    retries it); a run that stops early (status ≠ 0) is a finished run and is stored.
    """
    final = Path(runs_dir) / point.run_id
    if (final / ROW_FILE).is_file():
        return json.loads((final / ROW_FILE).read_text())
    tmp = Path(runs_dir) / f".tmp-{point.run_id}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        t0 = time.perf_counter()
        with _one_thread():
            traj, data = _simulate(point, tmp)
            row = _row(point, traj, data, time.perf_counter() - t0)
        (tmp / ROW_FILE).write_text(json.dumps(row, allow_nan=True))
        try:
            os.rename(tmp, final)
        except OSError:  # another attempt finished first: keep its folder
            if not (final / ROW_FILE).is_file():
                raise
            return json.loads((final / ROW_FILE).read_text())
        return row
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _simulate(point: RunPoint, store: Path):
    from ..init import make_init

    data = build_dataset(point.dataset, point.seed, point.eta, point.n)
    init = make_init(point.init, point.width, data.d, point.scale, point.seed)
    o = point.options
    if point.method == "flow":
        from ..integrator import simulate

        traj = simulate(data, init, point.t_max, gamma=point.gamma, loss=o.loss, rtol=o.rtol,
                        atol=o.atol, frozen_output=o.frozen_output, n_snapshots=o.snapshots,
                        store=str(store))
        return traj, data
    from types import SimpleNamespace

    from ..cli import _gd_trajectory

    args = SimpleNamespace(lr=point.lr, t_max=point.t_max, gamma=point.gamma, loss=o.loss)
    traj = _gd_trajectory(data, init, args, False)
    np.save(store / "snapshots.npy", np.concatenate([traj.W, traj.a[:, :, None]], axis=2))
    np.save(store / "snapshot_patterns.npy", traj.pattern.astype(np.int64))
    traj.save_store(store)
    return traj, data


def _finite(v) -> float | None:
    return float(v) if v is not None and math.isfinite(float(v)) else None


def _row(point: RunPoint, traj, data, wall: float) -> dict:
    from .. import __version__

    s = traj.summary()
    o = point.options
    lb, dmax, geo = _theory(point.dataset, point.seed, point.eta, point.n, o.loss, point.gamma)
    T = float(traj.t[-1])
    half = float(np.interp(T / 2, traj.step_t, traj.step_loss)) if traj.step_t.size else None
    tau = tau2 = tau3 = None
    if dmax and 0 < point.scale < 1:
        from proofs_checks.constants import tau as tau_of

        tau = tau_of(point.scale, o.epsilon, dmax)
        if o.phases and geo is not None and o.loss == "square" and point.gamma == 0.0:
            tau2, tau3 = _phases(traj, geo, point, tau)
    final = _finite(s["final_loss"])
    return {
        "run_id": point.run_id,
        "dataset": point.dataset.label,
        **point.params(),
        "loss": o.loss,
        "status": int(s["status"]),
        "message": str(s["message"]),
        "final_loss": final,
        "half_loss": _finite(half),
        "zero_loss": _zero_loss(data, o.loss),
        "loss_beta_star": lb,
        "excess_loss": None if lb is None or final is None else final - lb,
        "t_final": T,
        "tau": tau,
        "tau2": tau2,
        "tau3": tau3,
        "events": int(s.get("events", 0)),
        "steps": int(s.get("n_steps", 0)),
        "lemma1_drift": _finite(s.get("lemma1_max_relative_drift")),
        "wall_time": float(wall),
        "pwflow_version": __version__,
        "options": json.dumps(asdict(o), sort_keys=True),
    }


def _phases(traj, geo, point: RunPoint, tau: float) -> tuple[float | None, float | None]:
    """``τ₂``, ``τ₃`` of Section 4.1 by :func:`proofs_checks.checks.locate_phases`."""
    from proofs_checks.checks import geometry, locate_phases

    o = point.options
    if tau > float(traj.t[-1]):
        return None, None
    data = build_dataset(point.dataset, point.seed, point.eta, point.n)
    geo = geometry(data, o.loss, point.gamma)
    ph = locate_phases(traj, geo, point.scale, o.epsilon, o.eps2, o.eps3, o.delta_prime)
    return ph.tau2, ph.tau3
