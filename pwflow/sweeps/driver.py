"""The sweep driver: folder bookkeeping, Dask submission, progress, the summary table.

Folder layout of a sweep ``DIR``::

    DIR/sweep.json        identity of the sweep (dataset, fixed values, options) + version
    DIR/spec.toml         a copy of the last SPEC run in DIR (when given as a file)
    DIR/runs/<id>/        one finished run: the simulate --store layout + row.json
    DIR/failed/<id>.json  a run whose task raised after its retries (retried on resume)
    DIR/summary.parquet   one row per grid point of the SPEC (see docs/sweeps.md)

The run folders are the record: the summary is rebuilt from them, so an interrupted sweep
loses at most the runs in flight, and the same command resumes it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from .run import BLAS_ENV, ROW_FILE, Outcome, classify, run_point
from .spec import AXES, RunPoint, SweepSpec, load_spec, parse_spec

__all__ = ["SweepResult", "sweep", "read_summary", "COLUMNS", "SCHEMA_TYPES"]

#: Summary columns and their Arrow types ("string", "int64", "float64").
SCHEMA_TYPES: dict[str, str] = {
    "run_id": "string", "dataset": "string",
    "scale": "float64", "width": "int64", "gamma": "float64", "init": "string",
    "seed": "int64", "eta": "float64", "n": "int64", "t_max": "float64", "method": "string",
    "lr": "float64", "loss": "string",
    "status": "int64", "message": "string", "outcome": "string",
    "final_loss": "float64", "half_loss": "float64", "zero_loss": "float64",
    "loss_beta_star": "float64", "excess_loss": "float64", "t_final": "float64",
    "tau": "float64", "tau2": "float64", "tau3": "float64",
    "events": "int64", "steps": "int64", "lemma1_drift": "float64", "wall_time": "float64",
    "pwflow_version": "string", "options": "string",
}
COLUMNS = tuple(SCHEMA_TYPES)

IDENTITY_FILE = "sweep.json"
SUMMARY_FILE = "summary.parquet"


@dataclass(frozen=True)
class SweepResult:
    """What :func:`sweep` did: the folder, counts, wall time and the summary rows."""

    out: Path
    n_runs: int
    n_skipped: int
    n_done: int
    n_failed: int
    wall_time: float
    rows: tuple[dict, ...]

    @property
    def summary_path(self) -> Path:
        return self.out / SUMMARY_FILE


# ---------------------------------------------------------------------------- folder
def _check_folder(out: Path) -> None:
    """Refuse a file, or a non-empty folder that is not a sweep folder (nothing is written)."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} is a file; give a folder")
    if out.is_dir() and not (out / IDENTITY_FILE).is_file() \
            and any(p.name != ".lock" for p in out.iterdir()):
        raise ValueError(f"--out {str(out)!r} is not empty and is not a sweep folder "
                         f"(no {IDENTITY_FILE}); give a new or empty folder")


def _prepare(out: Path, spec: SweepSpec, new: bool) -> None:
    """Create ``out`` or check that it holds a sweep with the same identity."""
    from .. import __version__

    _check_folder(out)
    ident_path = out / IDENTITY_FILE
    identity = spec.identity()
    if ident_path.is_file() and not new:
        try:
            old = json.loads(ident_path.read_text()).get("identity")
        except (OSError, ValueError) as err:
            raise ValueError(f"cannot read {ident_path}: {err}; pass --new to start over") from None
        diff = _identity_difference(old or {}, _jsonable(identity))
        if diff:
            raise ValueError(f"the SPEC's fixed options differ from those of the sweep in "
                             f"{str(out)!r} ({diff}); pass --new to accept them (runs of the old "
                             "options stay in runs/ but leave the summary)")
    try:
        (out / "runs").mkdir(parents=True, exist_ok=True)
        (out / "failed").mkdir(exist_ok=True)
        _write_atomic(ident_path, json.dumps(
            {"identity": _jsonable(identity), "pwflow_version": __version__}, indent=2))
    except OSError as err:
        raise ValueError(f"cannot write to --out {str(out)!r}: {err.strerror or err}") from None
    if spec.source not in ("<dict>",) and Path(spec.source).is_file():
        shutil.copyfile(spec.source, out / "spec.toml")


def _identity_difference(old: dict, new: dict) -> str:
    """The first difference of dataset, run options, or a value fixed in both sweeps.

    An axis fixed in one and swept in the other is not a difference: turning a fixed value
    into a grid axis that contains it extends the sweep, and the runs made stay valid.
    """
    of, nf = old.get("fixed", {}), new.get("fixed", {})
    common = set(of) & set(nf)
    return _first_difference(
        {"dataset": old.get("dataset"), "options": old.get("options"),
         "fixed": {k: of[k] for k in common}},
        {"dataset": new.get("dataset"), "options": new.get("options"),
         "fixed": {k: nf[k] for k in common}})


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, sort_keys=True))


def _first_difference(old: dict, new: dict, prefix: str = "") -> str:
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            d = _first_difference(a, b, f"{prefix}{k}.")
            if d:
                return d
        elif a != b:
            return f"{prefix}{k}: was {a!r}, now {b!r}"
    return ""


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:6]}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Hold ``out/.lock`` (one driver per sweep folder); no-op where ``fcntl`` is missing."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fh = open(out / ".lock", "w")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ValueError(f"another sweep is running in {str(out)!r} (its .lock is held)") \
                from None
        yield
    finally:
        fh.close()


def _clean_tmp(runs: Path) -> None:
    """Remove half-written run folders left by workers that died (we hold the lock)."""
    for p in runs.glob(".tmp-*"):
        shutil.rmtree(p, ignore_errors=True)


def _stored_row(out: Path, point: RunPoint) -> dict | None:
    path = out / "runs" / point.run_id / ROW_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------- rows, table
def _failure_row(point: RunPoint, err: BaseException) -> dict:
    from .. import __version__

    msg = " ".join(f"error: {type(err).__name__}: {err}".split())
    return {"run_id": point.run_id, "dataset": point.dataset.label, **point.params(),
            "loss": point.options.loss, "status": -1, "message": msg,
            "pwflow_version": __version__}


def _finish_row(row: dict, spec: SweepSpec) -> dict:
    out = {k: row.get(k) for k in COLUMNS}
    out["outcome"] = str(classify(row, spec.classify))
    return out


def _table(rows: list[dict]):
    import pyarrow as pa

    schema = pa.schema([(k, getattr(pa, t)()) for k, t in SCHEMA_TYPES.items()])
    return pa.Table.from_pylist(rows, schema=schema)


def write_summary(out: Path, rows: list[dict]) -> Path:
    """Write ``out/summary.parquet`` atomically (temporary file, then rename)."""
    import pyarrow.parquet as pq

    path = out / SUMMARY_FILE
    tmp = out / f".{SUMMARY_FILE}.{os.getpid()}.tmp"
    pq.write_table(_table(rows), tmp)
    os.replace(tmp, path)
    return path


def read_summary(out: str | Path) -> list[dict]:
    """The rows of ``out/summary.parquet`` (or of the file ``out`` itself) as dicts."""
    import pyarrow.parquet as pq

    out = Path(out)
    path = out / SUMMARY_FILE if out.is_dir() else out
    if not path.is_file():
        raise ValueError(f"no sweep summary at {str(path)!r} (run 'pwflow sweep' first)")
    try:
        return pq.read_table(path).to_pylist()
    except Exception as err:  # noqa: BLE001 - any unreadable file
        raise ValueError(f"{path} is not a readable summary table ({err})") from None


# ---------------------------------------------------------------------------- client
@contextlib.contextmanager
def _client(client, scheduler: str | None, workers: int | None) -> Iterator[Any]:
    if client is not None:
        yield client
        return
    from dask.distributed import Client

    address = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if address:
        try:
            c = Client(address, timeout="30s")
        except (OSError, TimeoutError) as err:
            raise ValueError(f"cannot connect to the Dask scheduler at {address!r}: {err}") \
                from None
        with c:
            yield c
        return
    from dask.distributed import LocalCluster

    from ._dask import IgnoreSigint

    n = workers or os.cpu_count() or 1
    # workers started with SIGINT ignored (inherited), and the plugin keeps it so for
    # restarted ones: Ctrl-C is the driver's to handle, workers must not print tracebacks
    with _sigint_ignored():
        # the dashboard on a free port: several sweeps on one machine must not collide on 8787
        # silence_logs=ERROR: on Ctrl-C the workers log a WARNING per cancelled run
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               env=dict(BLAS_ENV), dashboard_address=":0",
                               silence_logs=logging.ERROR)
    log = logging.getLogger("distributed")
    level = log.level
    try:
        with cluster, Client(cluster) as c:
            c.register_plugin(IgnoreSigint())
            try:
                yield c
            except KeyboardInterrupt:
                # the cluster closes with runs in progress, and a worker's heartbeat that
                # meets the closing scheduler logs an ERROR with a traceback (seen once in the
                # Ctrl-C test): the user asked to stop, only the driver's one line should
                # show.  The workers, and this process (scheduler, nannies), until closed
                c.run(_quiet_distributed, on_error="ignore")
                _quiet_distributed()
                raise
    finally:
        log.setLevel(level)


def _quiet_distributed() -> None:
    """Silence ``distributed``'s loggers in this process (below CRITICAL)."""
    logging.getLogger("distributed").setLevel(logging.CRITICAL)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old if old is not None else signal.SIG_DFL)


# ---------------------------------------------------------------------------- sweep
def sweep(
    spec: SweepSpec | str | Path | dict,
    out: str | Path | None = None,
    *,
    client=None,
    scheduler: str | None = None,
    workers: int | None = None,
    new: bool = False,
    retries: int | None = None,
    progress: bool = True,
    callback: Callable[[dict], None] | None = None,
) -> SweepResult:
    """Run every grid point of ``spec`` on Dask; store runs and ``out/summary.parquet``.

    Parameters
    ----------
    spec : SweepSpec, path of a TOML SPEC, or the SPEC as a dict
        Validated before anything starts (:func:`pwflow.sweeps.load_spec`).
    out : path, optional
        The sweep folder (default: the SPEC's ``[sweep] out``).  Finished runs in it are
        skipped (resume); a folder holding a sweep
        with other fixed options is refused unless ``new``.
    client : dask.distributed.Client, optional
        Use this client (not closed).  Otherwise ``scheduler`` (or the environment variable
        ``DASK_SCHEDULER_ADDRESS``) names a running scheduler, else a ``LocalCluster`` with
        ``workers`` (default: one per core) single-threaded worker processes is started.
    retries : int, optional
        Retries of a run whose task raised (default: the SPEC's ``[sweep] retries``, 2).
        Runs on a worker that died are rescheduled by Dask.
    progress : bool
        A tqdm bar on stderr: runs done, failed, running, time left.
    callback : callable, optional
        Called with each finished row (in the driver).

    Returns
    -------
    SweepResult
    """
    t0 = time.perf_counter()
    if isinstance(spec, (str, Path)):
        spec = load_spec(spec)
    elif isinstance(spec, dict):
        spec = parse_spec(spec)
    elif not isinstance(spec, SweepSpec):
        raise ValueError(f"spec must be a SweepSpec, a SPEC path or a dict, got "
                         f"{type(spec).__name__}")
    if out is None:
        if spec.out is None:
            raise ValueError("out: give the sweep folder (or out in the SPEC's [sweep] table)")
        out = spec.out
    out = Path(out)
    points = spec.points()
    _check_folder(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"cannot create --out {str(out)!r}: {err.strerror or err}") from None
    with _locked(out):
        _prepare(out, spec, new)
        _clean_tmp(out / "runs")
        rows: dict[str, dict] = {}
        todo = []
        for p in points:
            r = _stored_row(out, p)
            if r is None:
                todo.append(p)
            else:
                rows[p.run_id] = r
        n_skipped = len(rows)
        n_failed = 0
        try:
            if todo:
                n_failed = _run_all(spec, todo, out, rows, client, scheduler, workers,
                                    spec.retries if retries is None else retries, progress,
                                    callback, n_skipped, len(points))
        finally:
            for p in points:  # the run folders are the record: also runs stored but not
                if p.run_id not in rows:  # yet reported when the sweep was interrupted
                    r = _stored_row(out, p)
                    if r is not None:
                        rows[p.run_id] = r
            final = [_finish_row(rows[p.run_id], spec) for p in points if p.run_id in rows]
            write_summary(out, final)
    return SweepResult(out, len(points), n_skipped, len(todo), n_failed,
                       time.perf_counter() - t0, tuple(final))


def _run_all(spec, todo, out, rows, client, scheduler, workers, retries, progress, callback,
             n_skipped, n_total) -> int:
    from dask.distributed import as_completed
    from tqdm.auto import tqdm

    runs_dir = str(out / "runs")
    token = uuid.uuid4().hex[:8]
    n_failed = 0
    with _client(client, scheduler, workers) as c:
        by_key = {}
        futures = []
        for p in todo:
            key = f"pwflow-run-{p.run_id}-{token}"
            f = c.submit(run_point, p, runs_dir, key=key, retries=retries, pure=False)
            by_key[f.key] = p
            futures.append(f)
        bar = tqdm(total=n_total, initial=n_skipped, unit="run", desc="sweep",
                   disable=not progress, file=sys.stderr, dynamic_ncols=True)
        last_write = time.monotonic()
        try:
            for f in as_completed(futures):
                p = by_key[f.key]
                try:
                    row = f.result()
                except Exception as err:  # noqa: BLE001 - recorded, the sweep goes on
                    row = _failure_row(p, err)
                    _write_atomic(out / "failed" / f"{p.run_id}.json", json.dumps(row))
                else:
                    (out / "failed" / f"{p.run_id}.json").unlink(missing_ok=True)
                if row.get("status") != 0:
                    n_failed += 1
                rows[p.run_id] = row
                f.release()
                bar.update(1)
                bar.set_postfix(failed=n_failed, running=_running(c, token), refresh=False)
                if callback is not None:
                    callback(row)
                if time.monotonic() - last_write > 30:
                    write_summary(out, [_finish_row(r, spec) for r in rows.values()])
                    last_write = time.monotonic()
        except BaseException:
            c.cancel(futures)
            raise
        finally:
            bar.close()
    return n_failed


def _running(c, token: str) -> int:
    """Runs executing now: tasks assigned to workers, at most one per worker thread."""
    try:
        proc = c.processing()
        threads = c.nthreads()
    except Exception:  # noqa: BLE001 - progress only
        return 0
    return sum(min(threads.get(w, 1), sum(1 for k in keys if token in str(k)))
               for w, keys in proc.items())


def axis_values(rows: list[dict], axis: str) -> list:
    """Distinct values of an axis column in ``rows``, sorted (``None`` left out)."""
    if axis not in AXES:
        raise ValueError(f"unknown axis {axis!r}; allowed: {', '.join(AXES)}")
    return sorted({r[axis] for r in rows if r.get(axis) is not None})


__all__ += ["axis_values", "write_summary", "Outcome"]
