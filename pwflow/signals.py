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

__all__ = ["Terminated", "terminations_as_interrupts", "deferred", "InterruptOnce", "exit_status",
           "describe", "HANDLED"]

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
    if got:
        _act_on(got[0], old.get(got[0]))  # now that the file is whole


def _act_on(signum: int, handler: object) -> None:
    """Act on a held signal as ``handler`` would have: call it (it raises
    :class:`Terminated` or :class:`KeyboardInterrupt`) or, at the default action, send the
    signal again."""
    if callable(handler):
        handler(signum, None)
    elif handler == signal.SIG_DFL:
        os.kill(os.getpid(), signum)


class InterruptOnce:
    """Within the block the first Ctrl-C (``SIGINT``), ``SIGTERM`` or ``SIGHUP`` interrupts
    as usual (:class:`KeyboardInterrupt`, :class:`Terminated`) and every later one is held
    and dropped: it asks for what is already happening.  :meth:`hold` holds them all from
    then on, the first included (the run's wrap-up: the last state and the file); one held
    there before any interrupted acts at the block's end, as its handler would have (as
    :func:`deferred` does), unless an exception is already leaving the block.

    A run interrupted once is being saved; a second signal in that window (an impatient
    second Ctrl-C while a wide layer is materialised, or ``timeout`` forwarding the signal it
    got to a child that got it too) raised inside the save and lost the partial run.  Only
    signals at Python's default handling (or at :func:`terminations_as_interrupts`'s) are
    taken over; the handlers are restored on exit.  Outside the main thread it does
    nothing.
    """

    def __init__(self) -> None:
        self.fired = False  # the first signal has interrupted
        self.holding = False
        self.held: list[int] = []
        self._old: dict[int, object] = {}

    def __enter__(self) -> "InterruptOnce":
        if threading.current_thread() is not threading.main_thread():
            return self
        for s in (signal.SIGINT, *HANDLED):
            current = signal.getsignal(s)
            ours = ((signal.default_int_handler,) if s == signal.SIGINT
                    else (_raise, signal.SIG_DFL, None))
            if current in ours:
                self._old[s] = current
                signal.signal(s, self._handle)
        return self

    def _handle(self, signum: int, frame) -> None:  # noqa: ARG002 - handler signature
        if self.fired or self.holding:
            self.held.append(int(signum))
            return
        self.fired = True
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        _raise(signum, frame)

    def hold(self) -> None:
        """From now on every signal is held (and dropped at exit)."""
        self.holding = True

    def __exit__(self, exc_type, exc, tb) -> None:
        old, self._old = self._old, {}
        for s, h in old.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
        if self.fired or not self.held or exc_type is not None:
            return
        # the run was not interrupted: the signal acts now, as the restored handler would
        _act_on(self.held[0], signal.getsignal(self.held[0]))


def exit_status(err: BaseException) -> int:
    """``128 + signal number`` of an interruption (130 for a plain Ctrl-C)."""
    return 128 + int(getattr(err, "signum", signal.SIGINT))


def describe(err: BaseException) -> str:
    """``'interrupted by SIGTERM'`` / ``'interrupted by the user (Ctrl-C)'``."""
    signum = getattr(err, "signum", None)
    if signum is None:
        return "interrupted by the user (Ctrl-C)"
    return f"interrupted by {signal.Signals(signum).name}"
