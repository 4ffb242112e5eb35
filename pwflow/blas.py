"""BLAS threads while the integrator steps (:func:`limited`).

numpy's BLAS (OpenBLAS in the wheels) splits a level-1/2 operation over its threads once the
vectors are long enough (about 10⁴ numbers).  From ``d = 4`` on the integrator's state is that
long (the propagators of ~2 000 faces, 72 000 numbers at ``d = 5``), and DOP853's stage sums,
its error norm and dense output are such operations.  On a machine whose cores are busy (a
shared machine, or parallel runs: a sweep, several engineers) a threaded call waits for threads
that get no core: measured on 2 shared cores at load 2–3, ``np.linalg.norm`` of 30 000 numbers
took 5.6 ms threaded against 0.027 ms on one thread, and a whole ``d = 5`` run (m = 1000,
n = 20, t = 1) 34.0 s against 9.6 s (``docs/benchmarks.md``, branch speed7-d5).  Threads buy
little on these memory-bound vectors even on idle cores, and a threaded reduction rounds by
its number of threads: the ``d = 5`` event times differed in the last bits (255 of 2 023, up
to 6e-15 relative) between one and two threads.  One thread makes the run the same on every
machine.

:meth:`pwflow.stepper.HybridFlow.step` therefore runs inside :func:`limited`: OpenBLAS is set
to :data:`THREADS` threads for the step and set back afterwards (two calls of OpenBLAS's own
``openblas_set_num_threads``, about 1 µs).  ``pwflow.blas.THREADS = None`` leaves BLAS as it
is.  The OpenBLAS libraries are found among the loaded shared objects (``/proc/self/maps``)
or in numpy's wheel folders; where none is found (another BLAS), nothing is changed.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import glob
import os
import threading
from typing import Callable, Iterator

import numpy as np

__all__ = ["THREADS", "limited", "controls"]

#: BLAS threads while the integrator steps (``None``: leave BLAS as it is)
THREADS: int | None = 1

_PREFIXES = ("scipy_openblas", "openblas")
_SUFFIXES = ("64_", "")


def _loaded_paths() -> list[str]:
    """Paths of the OpenBLAS libraries this process has loaded (Linux), else those of
    numpy's wheel folders."""
    paths: set[str] = set()
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split()[-1] if line.strip() else ""
                if "openblas" in os.path.basename(path).lower():
                    paths.add(path)
    except OSError:
        pass
    if not paths:
        root = os.path.dirname(np.__file__)
        for folder in (os.path.join(root, os.pardir, "numpy.libs"), os.path.join(root, ".dylibs")):
            paths.update(glob.glob(os.path.join(folder, "*openblas*")))
    return sorted(paths)


def _control(path: str) -> tuple[Callable[[], int], Callable[[int], None]] | None:
    """OpenBLAS's ``get`` / ``set_num_threads`` pair of the library at ``path`` (None if it
    has none)."""
    try:
        lib = ctypes.CDLL(path)
    except OSError:
        return None
    for prefix in _PREFIXES:
        for suffix in _SUFFIXES:
            get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            put = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            if get is not None and put is not None:
                get.restype, get.argtypes = ctypes.c_int, []
                put.restype, put.argtypes = None, [ctypes.c_int]
                return get, put
    return None


@functools.lru_cache(maxsize=1)
def controls() -> tuple[tuple[Callable[[], int], Callable[[int], None]], ...]:
    """The thread controls ``(get, set)`` of the OpenBLAS libraries found (found once)."""
    found = (_control(p) for p in _loaded_paths())
    return tuple(c for c in found if c is not None)


_lock = threading.Lock()
_depth = 0
_saved: list[int] = []


@contextlib.contextmanager
def limited() -> Iterator[None]:
    """Run the block with OpenBLAS on :data:`THREADS` threads, then set back what was there.

    Nested uses (and uses from several Python threads) share one setting: the first to enter
    sets it, the last to leave restores it.  Also a decorator (``@limited()``).
    """
    global _depth
    threads = THREADS
    if threads is None:
        yield
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"pwflow.blas.THREADS must be an integer >= 1 or None, got {threads!r}")
    with _lock:
        if _depth == 0:
            ctl = controls()
            _saved[:] = [get() for get, _ in ctl]
            for (_, put), before in zip(ctl, _saved):
                if before != threads:
                    put(int(threads))
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                for (_, put), before in zip(controls(), _saved):
                    put(before)
