"""Termination signals handled like Ctrl-C.

A batch scheduler ends a job with ``SIGTERM`` at its wall-time limit and a closed terminal
sends ``SIGHUP``; both must leave the partial run saved with a status and a message, exactly
as Ctrl-C (``SIGINT``) does.  :func:`terminations_as_interrupts` turns them into
:class:`Terminated`, a subclass of :class:`KeyboardInterrupt`, so that every ``except
KeyboardInterrupt`` path (the integrator's driver, the command line) handles them; the exit
status of the command line is ``128 + signal number`` (130 SIGINT, 143 SIGTERM, 129 SIGHUP).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Iterator

__all__ = ["Terminated", "terminations_as_interrupts", "deferred", "exit_status", "describe",
           "HANDLED"]

#: Signals handled like Ctrl-C (those that exist on this platform).
HANDLED: tuple[int, ...] = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when a handled termination signal arrives."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by {signal.Signals(signum).name}")
        self.signum = int(signum)


#: The last handled termination signal of this process (``None``: none yet).
last_signal: int | None = None


def _raise(signum: int, frame) -> None:  # noqa: ARG001 - signal handler signature
    global last_signal
    last_signal = int(signum)
    raise Terminated(signum)


@contextlib.contextmanager
def terminations_as_interrupts() -> Iterator[None]:
    """Within the block, ``SIGTERM``/``SIGHUP`` raise :class:`Terminated` (main thread only).

    Handlers set by the caller (anything but the default action) are left alone, and the
    previous handlers are restored on exit.  Outside the main thread this does nothing (Python
    delivers signals to the main thread only).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {}
    for s in HANDLED:
        current = signal.getsignal(s)
        if current in (signal.SIG_DFL, None):
            old[s] = current
            signal.signal(s, _raise)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold Ctrl-C and the termination signals until the block ends, then act on the first
    one as the handler in force would have (a file being written is finished first: a
    signal raised inside ``zipfile`` left it unclosable and replaced the interruption by an
    error).  Outside the main thread this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []
    old = {}
    for s in (signal.SIGINT, *HANDLED):
        old[s] = signal.getsignal(s)
        signal.signal(s, lambda signum, frame: got.append(int(signum)))
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
    if not got:
        return
    signum, handler = got[0], old.get(got[0])
    if callable(handler):
        handler(signum, None)  # raises Terminated / KeyboardInterrupt
    elif handler == signal.SIG_DFL:
        os.kill(os.getpid(), signum)  # the default action, now that the file is whole


def exit_status(err: BaseException) -> int:
    """``128 + signal number`` of an interruption (130 for a plain Ctrl-C)."""
    return 128 + int(getattr(err, "signum", signal.SIGINT))


def describe(err: BaseException) -> str:
    """``'interrupted by SIGTERM'`` / ``'interrupted by the user (Ctrl-C)'``."""
    signum = getattr(err, "signum", None)
    if signum is None:
        return "interrupted by the user (Ctrl-C)"
    return f"interrupted by {signal.Signals(signum).name}"
