"""Dask pieces that import ``distributed`` at module level (imported only when a sweep runs)."""

from __future__ import annotations

import signal
import threading

from distributed import WorkerPlugin

__all__ = ["IgnoreSigint"]


class IgnoreSigint(WorkerPlugin):
    """Make a LocalCluster worker ignore SIGINT.

    Ctrl-C in a terminal signals the whole foreground process group, workers included; the
    driver handles it (cancels, writes the summary, closes the cluster), so the workers must
    not die with a ``KeyboardInterrupt`` traceback of their own.
    """

    name = "pwflow-ignore-sigint"

    def setup(self, worker) -> None:  # noqa: D102 - WorkerPlugin API
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
