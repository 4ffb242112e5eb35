"""Guards of a run's driver loop: non-finite state and lack of progress.

The integrator's step-size controller cannot recover from an infinite or NaN field value
(scipy's controllers then shrink the step by a NaN factor forever), so the driver of
:func:`pwflow.integrator.simulate` runs inside :func:`watch`: floating-point overflow and
invalid operations raise :class:`FloatingPointError` at the operation that produced them, and
the outputs and the loss of every accepted point are checked.  A run whose time advances too
little over a window of steps stops with its own status (:class:`NoProgress`).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np
from numpy.typing import NDArray

from .signals import terminations_as_interrupts

__all__ = ["NonFinite", "NoProgress", "RunGuard", "watch", "describe_overflow",
           "floating_point_checks"]

#: Default window of the progress check (steps).
STALL_STEPS = 50_000
#: A window of ``stall_steps`` steps must advance time by this fraction of what remains.
STALL_FRACTION = 1e-4


class NonFinite(ArithmeticError):
    """A quantity of the run became infinite or NaN (the message names it)."""


class NoProgress(RuntimeError):
    """The run's time advanced too little over the progress window."""


def floating_point_checks() -> np.errstate:
    """The run's floating-point regime: overflow and invalid operations raise
    :class:`FloatingPointError` (an overflowing trial step is then rejected,
    :data:`pwflow.rk.DOP853.REJECT_OVERFLOWING_TRIALS`, and a non-finite state stops the
    run); every computation of the flow runs under it, the dense state's retrace too."""
    return np.errstate(over="raise", invalid="raise")


@contextlib.contextmanager
def watch() -> Iterator[None]:
    """:func:`floating_point_checks`; SIGTERM/SIGHUP are handled like Ctrl-C."""
    with floating_point_checks(), terminations_as_interrupts():
        yield


def describe_overflow(err: FloatingPointError, t: float, Z: NDArray | None, X: NDArray) -> str:
    """One line for a floating-point error raised inside a step at time ``t``."""
    with np.errstate(all="ignore"):
        size = float(np.max(np.abs(Z))) if Z is not None and Z.size else float("nan")
        xmax = float(np.max(np.abs(X)))
    return (f"the vector field of Eq. (6) is not finite in the step from t = {t:.6g} ({err}); "
            f"the neuron states (w_j, a_j) reach {size:.3g} and the data |x_k| {xmax:.3g}: "
            f"reduce the initialisation scale or rescale the data")


class RunGuard:
    """Checks of :func:`simulate`'s driver after every accepted point.

    Parameters
    ----------
    t_max : float
        Final time of the run.
    stall_steps : int or None
        Progress window: the run stops (:class:`NoProgress`) when this many consecutive steps
        advance the time by less than ``stall_fraction`` of the time that remained at the
        window's start (at that rate it would need more than ``stall_steps / stall_fraction``
        steps).  ``None`` disables the check.
    stall_fraction : float
    """

    def __init__(self, t_max: float, stall_steps: int | None = STALL_STEPS,
                 stall_fraction: float = STALL_FRACTION) -> None:
        if stall_steps is not None and (int(stall_steps) != stall_steps or stall_steps < 1):
            raise ValueError(f"stall_steps must be an integer >= 1 or None, got {stall_steps!r}")
        if not (0 < stall_fraction < 1):
            raise ValueError(f"stall_fraction must be in (0, 1), got {stall_fraction!r}")
        self.t_max = float(t_max)
        self.stall_steps = None if stall_steps is None else int(stall_steps)
        self.stall_fraction = float(stall_fraction)
        self._count = 0
        self._t_window = None

    def outputs(self, h: NDArray, loss_values: NDArray, t: float) -> None:
        """Raise :class:`NonFinite` unless the outputs ``h_θ(x_k)`` and the loss are finite."""
        for name, v in (("the network outputs h(x_k)", h), ("the loss L(θ)", loss_values)):
            with np.errstate(all="ignore"):
                bad = not np.all(np.isfinite(v))
            if bad:
                raise NonFinite(f"{name} are not finite at t = {t:.6g} (overflow); the last "
                                f"finite state is kept: reduce the initialisation scale or "
                                f"rescale the data")

    def progress(self, t: float) -> None:
        """Count one step ending at ``t``; raise :class:`NoProgress` after a stalled window."""
        if self.stall_steps is None:
            return
        if self._t_window is None:
            self._t_window = t
        self._count += 1
        if self._count < self.stall_steps:
            return
        t0 = self._t_window
        if t - t0 < self.stall_fraction * (self.t_max - t0):
            raise NoProgress(
                f"no progress: {self._count} steps advanced t from {t0:.6g} to {t:.6g}, "
                f"less than {self.stall_fraction:g} of the remaining interval to t_max = "
                f"{self.t_max:.6g} (stall_steps = {self.stall_steps}); the partial run is kept"
            )
        self._count, self._t_window = 0, t


def finite_state(Z: NDArray) -> bool:
    """Whether every neuron state is finite (no warning on inf/NaN)."""
    with np.errstate(all="ignore"):
        return bool(np.all(np.isfinite(Z)))
