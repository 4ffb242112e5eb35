"""Crash-consistent run stores (``simulate(store=DIR)``) and safe output files.

Layout of a store folder (``format_version`` 2)::

    snapshots.npy          states (k_max, m, d + 1), memory-mapped, pre-sized
    snapshot_patterns.npy  face index of each neuron (k_max, m)
    progress.npz           snapshot times so far, pattern table, data, metadata record
    checkpoint.npz         event and step logs and the resume mark (at t0, then periodic)
    run.npz                written when the run ends (finished, stopped or interrupted)

Every snapshot written is followed by an atomic rewrite of ``progress.npz`` (temporary file +
``os.replace``), so after ``kill -9`` (or the out-of-memory killer) the store loads up to its
last complete snapshot, with status :attr:`~pwflow.integrator.Status.PARTIAL`.  This
protects against the death of the process (a scheduler's ``kill -9``, the out-of-memory
killer), not against a power loss of the machine: the memory-mapped snapshots are synced to
the disk (``msync``) only at each checkpoint and at the end, and nothing is ``fsync``-ed.
Files are created exclusively (an existing name, a symlink included, is removed first, never
followed) and replaced atomically.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from .signals import deferred

__all__ = ["FORMAT_VERSION", "STORE_FILES", "prepare_store", "write_npz", "StoreWriter",
           "load_store", "check_format", "is_store", "check_finite_states", "step_implicit_of"]

#: Version of the files written; readers accept this and older ones.
FORMAT_VERSION = 2
STORE_FILES = ("snapshots.npy", "snapshot_patterns.npy", "progress.npz", "checkpoint.npz",
               "run.npz")


def check_format(rec: dict, path) -> None:
    """Refuse a record written by a newer (or unknown) format."""
    v = rec.get("format_version")
    if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= FORMAT_VERSION:
        raise ValueError(f"{path}: format_version {v!r} is not supported (this pwflow reads "
                         f"1 to {FORMAT_VERSION}; upgrade pwflow)")


def is_store(directory: Path) -> bool:
    """Whether ``directory`` holds a (complete or partial) store."""
    return (directory / "run.npz").is_file() or (directory / "progress.npz").is_file()


def check_store_folder(directory: str | Path, overwrite: bool = False, name: str = "store",
                       force_hint: str = "overwrite=True (--force)") -> list[str]:
    """Refuse a folder that cannot take a store; return the entries a store write replaces.

    A folder is accepted when it does not exist, is empty, or (``overwrite``) holds only a
    previous store's own files.  ``name`` and ``force_hint`` are how the messages call the
    folder and the way to overwrite (the CLI says ``--store`` and ``--force``).

    Raises
    ------
    ValueError
        The path is a file (or a symlink), or the folder is not empty (without
        ``overwrite``), or it holds files that are not a pwflow store's.
    """
    directory = Path(directory)
    if directory.is_symlink() or (directory.exists() and not directory.is_dir()):
        raise ValueError(f"{name} {str(directory)!r} is a file, not a folder; give a new or "
                         f"empty folder")
    if not directory.is_dir():
        return []
    entries = [p.name for p in directory.iterdir()]
    if entries and not overwrite:
        raise ValueError(f"{name} {str(directory)!r} is not empty; give a new or empty folder "
                         f"or pass {force_hint} to replace a previous run")
    others = [e for e in entries if e not in STORE_FILES and not _leftover(e)
              and e != WRITE_PROBE]
    if others:
        raise ValueError(f"{name} {str(directory)!r} holds files that are not a pwflow "
                         f"store's ({others[0]!r}); refusing to replace it")
    return [e for e in entries if e in STORE_FILES or _leftover(e)]


def prepare_store(directory: str | Path, overwrite: bool = False) -> Path:
    """Create the store folder; refuse an existing non-empty one unless ``overwrite``.

    With ``overwrite`` only the store's own files are removed (symlinks themselves, not their
    targets); a folder that holds anything else is still refused (:func:`check_store_folder`).
    """
    directory = Path(directory)
    for e in check_store_folder(directory, overwrite):
        os.unlink(directory / e)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


#: file the CLI writes and removes to check that a store folder is writable
WRITE_PROBE = ".pwflow-write-test"


def _leftover(name: str) -> bool:
    """A temporary file of a killed writer (``.progress.npz.1234.tmp``, ``.snapshots.npy.grow``)."""
    return name.startswith(".") and any(name.startswith(f".{f}.") for f in STORE_FILES)


def _create(path: Path) -> None:
    """Create ``path`` as a new empty file; an existing entry (even a symlink) is removed."""
    if os.path.lexists(path):
        os.unlink(path)
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0),
                 0o666)
    os.close(fd)


#: zlib level of the compressed ``.npz`` files (:func:`write_npz`).  numpy's
#: ``savez_compressed`` uses 6; on the README's run (m = 2000, 100 snapshots, 6.6 MB of
#: arrays) level 1 writes 2.54 MB in 65 ms against 2.16 MB in 105 ms (the stored weights are
#: nearly incompressible floats: more effort buys little), a tenth of the whole process
NPZ_COMPRESSLEVEL = 1


def _savez(fh, compress: bool, arrays: dict) -> None:
    """``np.savez`` / ``np.savez_compressed``'s archive into the open file ``fh`` (one
    ``NAME.npy`` member per array, read back by ``np.load``), deflated at
    :data:`NPZ_COMPRESSLEVEL` or stored; an object array (pickle, which no run file is read
    with) raises ``ValueError``."""
    kind = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    level = NPZ_COMPRESSLEVEL if compress else None
    with zipfile.ZipFile(fh, mode="w", compression=kind, compresslevel=level,
                         allowZip64=True) as zf:
        for name, value in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)


def write_npz(path: str | Path, compress: bool = True, **arrays) -> Path:
    """Write an ``.npz`` to exactly ``path`` atomically (temporary file, then ``os.replace``).

    Never follows a symlink at ``path`` (the link is replaced), never leaves a truncated file.
    ``compress``: deflate at :data:`NPZ_COMPRESSLEVEL`.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    _create(tmp)
    try:
        with deferred():  # a signal acts once the file is whole (or not written at all)
            with open(tmp, "wb") as fh:  # a file object: numpy appends no suffix
                _savez(fh, compress, arrays)
            os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    return path


def _record(rec: dict) -> NDArray:
    from .trajectory import _json_default

    return np.array(json.dumps(rec, default=_json_default))


class StoreWriter:
    """Writes a store as the run goes (see the module docstring).

    ``resume_rows``: continue an existing store whose first ``resume_rows`` snapshots are kept
    (the files are grown to ``n_max`` rows if needed); otherwise the store is new.
    """

    def __init__(self, directory, n_max: int, m: int, q: int, *, X, y, header: dict,
                 resume_rows: int | None = None, overwrite: bool = False) -> None:
        self.dir = Path(directory)
        self.X, self.y, self.header = np.asarray(X), np.asarray(y), dict(header)
        fmt = np.lib.format
        names = ("snapshots.npy", "snapshot_patterns.npy")
        if resume_rows is None:
            prepare_store(self.dir, overwrite)
            for name in names:
                _create(self.dir / name)
            self.Z = fmt.open_memmap(self.dir / names[0], mode="w+", dtype=float,
                                     shape=(n_max, m, q))
            self.P = fmt.open_memmap(self.dir / names[1], mode="w+", dtype=np.int64,
                                     shape=(n_max, m))
        else:
            for name in ("run.npz",):
                if os.path.lexists(self.dir / name):
                    os.unlink(self.dir / name)
            self.Z = self._grow(names[0], n_max, (m, q), float, resume_rows)
            self.P = self._grow(names[1], n_max, (m,), np.int64, resume_rows)

    def _grow(self, name: str, n_max: int, shape: tuple, dtype, keep: int):
        fmt = np.lib.format
        path = self.dir / name
        old = np.load(path, mmap_mode="r")
        if old.shape[0] >= n_max and old.shape[1:] == shape:
            del old
            return fmt.open_memmap(path, mode="r+")
        tmp = self.dir / f".{name}.grow"
        _create(tmp)
        new = fmt.open_memmap(tmp, mode="w+", dtype=dtype, shape=(n_max, *shape))
        new[:keep] = old[:keep]
        new.flush()
        del old, new
        os.replace(tmp, path)
        return fmt.open_memmap(path, mode="r+")

    def write(self, i: int, Z, pat, times, table: NDArray) -> None:
        """Snapshot ``i``; then the times so far and the metadata, atomically."""
        # no msync here (8 ms each): the pages are in the page cache, which outlives a killed
        # process; they are synced to the disk at each checkpoint and at the end
        self.Z[i] = Z
        self.P[i] = pat
        rec = {"format_version": FORMAT_VERSION, "n_snapshots": int(i + 1), **self.header}
        write_npz(self.dir / "progress.npz", compress=False, t=np.asarray(times, float),
                  patterns=np.asarray(table, np.int8), X=self.X, y=self.y, record=_record(rec))

    def checkpoint(self, mark: dict, events: dict, step_t, step_h, step_implicit,
                   table) -> None:
        """Event and step logs up to a mark (:class:`pwflow.resume.Mark`)."""
        self.Z.flush()
        self.P.flush()
        rec = {"format_version": FORMAT_VERSION, "resume": mark}
        arrays = {f"events_{k}": np.asarray(v) for k, v in events.items()}
        if step_implicit is not None:  # None: a run resumed from a file without it
            arrays["step_implicit"] = np.asarray(step_implicit, bool)
        write_npz(self.dir / "checkpoint.npz", step_t=np.asarray(step_t, float),
                  step_outputs=np.asarray(step_h, float).reshape(len(step_t), -1),
                  patterns=np.asarray(table, np.int8), record=_record(rec), **arrays)

    def views(self, k: int):
        self.Z.flush()
        self.P.flush()
        return self.Z[:k], self.P[:k]


# ---------------------------------------------------------------------------- reading
def read_npz(path: Path, what: str = "", hint: str = "") -> dict:
    """Every array of the ``.npz`` archive ``path``, never unpickling, on our own file handle
    (numpy leaks its own when the archive is truncated); any failure is one ``ValueError``
    naming the file (``what``: what the file should have been, ``hint``: what was expected)."""
    try:
        with open(path, "rb") as fh:
            f = np.load(fh, allow_pickle=False)
            if not hasattr(f, "files"):
                raise ValueError("a single array, not an .npz archive")
            with f:
                return {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, AttributeError,
            zlib.error) as err:
        msg = "not an .npz archive" if "pickle" in str(err) else f"{type(err).__name__}: {err}"
        if what:
            raise ValueError(f"{path} is not {what} ({msg}{hint})") from None
        raise ValueError(f"{path} is corrupted or truncated ({msg})") from None


def step_implicit_of(data: dict, n_steps: int) -> NDArray[np.bool_] | None:
    """The ``step_implicit`` array of a stored run (``None`` where the file predates it, or
    where it does not match the run's ``n_steps`` accepted points)."""
    arr = data.get("step_implicit")
    if arr is None:
        return None
    arr = np.asarray(arr)
    return arr.astype(bool) if arr.shape == (n_steps,) else None


def read_record(data: dict, path: Path, what: str = "a pwflow file") -> dict:
    """The JSON metadata record of a pwflow archive, format version checked."""
    if "record" not in data:
        raise ValueError(f"{path} is not {what} (no metadata record)")
    try:
        rec = json.loads(str(data["record"]))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: the metadata record is not valid JSON ({err})") from None
    if not isinstance(rec, dict):
        raise ValueError(f"{path}: the metadata record is not a JSON object")
    check_format(rec, path)
    return rec


def _snapshot_arrays(directory: Path, k: int, m_q: tuple[int | None, int]):
    out = []
    for name in ("snapshots.npy", "snapshot_patterns.npy"):
        path = directory / name
        if not path.is_file():
            raise ValueError(f"{path} is missing")
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            raise ValueError(f"{path} is corrupted or truncated ({err})") from None
        if arr.shape[0] < k:
            raise ValueError(f"{path} holds {arr.shape[0]} snapshots but the run records {k} "
                             f"(truncated file)")
        out.append(arr[:k])
    Z, P = out
    q = m_q[1]
    if Z.ndim != 3 or Z.shape[2] != q or P.shape != Z.shape[:2]:
        raise ValueError(f"{directory}: snapshot files have shapes {Z.shape} and {P.shape}, "
                         f"which do not match the data (d + 1 = {q})")
    return Z, P


def check_finite_states(W, a, path) -> None:
    """Refuse stored weights with NaN or infinite entries (no run writes them)."""
    with np.errstate(all="ignore"):
        bad = not (np.all(np.isfinite(W)) and np.all(np.isfinite(a)))
    if bad:
        raise ValueError(f"{path}: the stored weights W, a contain NaN or infinite values "
                         f"(corrupted)")


def load_store(directory: Path, loss=None):
    """Read a store folder: complete (``run.npz``) or partial (``progress.npz`` only)."""
    from .integrator import Status
    from .trajectory import Trajectory

    directory = Path(directory)
    run, progress = directory / "run.npz", directory / "progress.npz"
    if not run.is_file() and not progress.is_file():
        raise ValueError(f"{directory} is not a pwflow store (no run.npz or progress.npz in it)")
    if run.is_file():
        data = read_npz(run)
        rec = read_record(data, run)
        partial = False
    else:
        data = read_npz(progress)
        rec = read_record(data, progress)
        partial = True
    try:
        X, y = data["X"], data["y"]
        k = int(rec["n_snapshots"])
        t = data["t"]
        if t.shape != (k,):
            raise ValueError(f"{directory}: {k} snapshots recorded but {t.size} times")
        Z, P = _snapshot_arrays(directory, k, (None, X.shape[1] + 1))
        patterns = data["patterns"]
        gamma, loss_name = float(rec["gamma"]), str(rec["loss_name"])
        meta = dict(rec.get("meta", {}))
    except KeyError as err:
        raise ValueError(f"{directory}: the store lacks {err} (corrupted)") from None
    except (TypeError, AttributeError, IndexError) as err:
        raise ValueError(f"{directory}: the store's metadata is corrupted ({err})") from None
    if P.size and (int(np.max(P)) >= patterns.shape[0] or int(np.min(P)) < 0):
        raise ValueError(f"{directory}: snapshot_patterns.npy refers to faces that the pattern "
                         f"table does not hold (corrupted)")
    d = X.shape[1]
    check_finite_states(Z, Z[:0], directory / "snapshots.npy")
    if not partial:
        events = {key[7:]: v for key, v in data.items() if key.startswith("events_")}
        return Trajectory(
            t=t, W=Z[:, :, :d], a=Z[:, :, d], pattern=P, patterns=patterns,
            step_t=data["step_t"], step_outputs=data["step_outputs"],
            step_loss=data["step_loss"], events=events, X=X, y=y, gamma=gamma,
            loss_name=loss_name, status=int(rec["status"]), message=rec["message"],
            stats=rec["stats"], meta=meta, loss_fn=loss,
            step_implicit=step_implicit_of(data, data["step_t"].size),
        )
    return _partial(directory, t, Z, P, patterns, X, y, gamma, loss_name, meta, loss, Status)


def _partial(directory, t, Z, P, patterns, X, y, gamma, loss_name, meta, loss, Status):
    from .model import activation, get_loss
    from .trajectory import Trajectory

    d = X.shape[1]
    ck_path = directory / "checkpoint.npz"
    events = {"t": np.zeros(0), "neuron": np.zeros(0, np.int64), "k": np.zeros(0, np.int64),
              "kind": np.zeros(0, np.int8), "residual": np.zeros(0),
              "from_pattern": np.zeros(0, np.int64), "to_pattern": np.zeros(0, np.int64)}
    note = "no checkpoint: the event log was lost"
    mark = None
    if ck_path.is_file():
        ck = read_npz(ck_path)
        crec = read_record(ck, ck_path)
        mark = crec.get("resume")
        if mark and int(mark.get("n_snapshots", 10**18)) <= t.size:
            events = {key[7:]: v for key, v in ck.items() if key.startswith("events_")}
            step_t, step_h = ck["step_t"], ck["step_outputs"]
            step_implicit = step_implicit_of(ck, step_t.size)
            if ck["patterns"].shape[0] > patterns.shape[0]:
                patterns = ck["patterns"]
            note = f"events and steps up to the checkpoint at t = {float(mark['t']):.6g}"
        else:
            mark = None
    if mark is None:
        step_t, step_implicit = np.asarray(t, float), None
        step_h = np.stack([activation(X @ np.asarray(Z[i, :, :d]).T, gamma) @ Z[i, :, d]
                           for i in range(t.size)]) if t.size else np.zeros((0, X.shape[0]))
    lf = loss if loss is not None else get_loss(loss_name)
    step_loss = np.mean(lf(step_h, y[None, :]), axis=1) if len(step_t) else np.zeros(0)
    meta = dict(meta)
    if mark is not None:
        meta["resume"] = mark
    message = (f"{Status.PARTIAL}: {len(t)} snapshots up to t = {float(t[-1]):.6g}; {note}; "
               f"continue it with `pwflow resume {directory}`")
    return Trajectory(
        t=t, W=Z[:, :, :d], a=Z[:, :, d], pattern=P, patterns=patterns, step_t=step_t,
        step_outputs=step_h, step_loss=step_loss, events=events, X=X, y=y, gamma=gamma,
        loss_name=loss_name, status=int(Status.PARTIAL), message=message,
        stats={"n_events": int(events["t"].size)}, meta=meta, loss_fn=loss,
        step_implicit=step_implicit,
    )
