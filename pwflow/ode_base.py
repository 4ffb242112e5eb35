"""What the one-step ODE solvers of :mod:`pwflow.rk` and :mod:`pwflow.radau` share.

A trimmed port of SciPy's ``scipy/integrate/_ivp/base.py`` and ``common.py`` (SciPy 1.17,
Copyright (c) 2001-2002 Enthought, Inc. 2003, SciPy Developers; BSD 3-clause licence), kept
to what the stepper (:mod:`pwflow.stepper`) uses: forward integration of a real, non-empty
state from ``t0`` to ``t_bound``, one accepted step per :meth:`OdeSolver.step`, the attributes
``t``, ``t_old``, ``y``, ``f``, ``h_abs``, ``status``, ``nfev``, ``t_bound`` and
:meth:`OdeSolver.dense_output`.  Dropped from SciPy: vectorised and complex fields, backward
integration, events, the ``fun`` wrapper that converts every field value (``fun`` must
return a float array of the state's shape; it is checked once, at the start).

Why vendored (``docs/integrator.md``): importing ``scipy.integrate`` cost 0.45 s of a 1.4 s
``pwflow simulate`` process (it imports ``scipy.special``, ``scipy.optimize`` ...), and its
wrappers add Python calls to every field evaluation.
"""

from __future__ import annotations

import math
import warnings
from typing import Callable

import numpy as np
from numpy.typing import NDArray

__all__ = ["OdeSolver", "DenseOutput", "EPS", "rms_norm", "select_initial_step"]

Array = NDArray[np.float64]
Field = Callable[[float, Array], Array]

EPS = np.finfo(float).eps


def rms_norm(x: Array) -> float:
    """Root-mean-square norm (SciPy's ``common.norm``, same operations)."""
    return np.linalg.norm(x) / x.size ** 0.5


def select_initial_step(fun: Field, t0: float, y0: Array, t_bound: float, max_step: float,
                        f0: Array, order: int, rtol: float, atol: float | Array) -> float:
    """First step size by Hairer, Nørsett and Wanner's rule (Solving ODEs I, Sec. II.4),
    as SciPy's ``common.select_initial_step`` (forward direction)."""
    interval_length = abs(t_bound - t0)
    if interval_length == 0.0:
        return 0.0
    scale = atol + np.abs(y0) * rtol
    d0 = rms_norm(y0 / scale)
    d1 = rms_norm(f0 / scale)
    h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    h0 = min(h0, interval_length)
    f1 = fun(t0 + h0, y0 + h0 * f0)
    d2 = rms_norm((f1 - f0) / scale) / h0
    if d1 <= 1e-15 and d2 <= 1e-15:
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / max(d1, d2)) ** (1 / (order + 1))
    return min(100 * h0, h1, interval_length, max_step)


def _finite_float(value, name: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return out


def _validate_tol(rtol, atol, n: int) -> tuple[float, float | Array]:
    """``rtol`` (raised to ``100 eps`` with a warning, as SciPy does) and ``atol`` (scalar
    or shape ``(n,)``, non-negative)."""
    rtol = _finite_float(rtol, "rtol")
    if not rtol >= 0:
        raise ValueError(f"rtol must be non-negative, got {rtol!r}")
    if rtol < 100 * EPS:
        warnings.warn(f"rtol = {rtol!r} is below 100 eps: using rtol = {100 * EPS!r}",
                      stacklevel=4)
        rtol = max(rtol, 100 * EPS)
    atol_arr = np.asarray(atol, dtype=float)
    if atol_arr.ndim > 0 and atol_arr.shape != (n,):
        raise ValueError(f"atol must be a scalar or have shape ({n},), got shape "
                         f"{atol_arr.shape}")
    if not np.all(np.isfinite(atol_arr)) or np.any(atol_arr < 0):
        raise ValueError(f"atol must be finite and non-negative, got {atol!r}")
    return rtol, (float(atol_arr) if atol_arr.ndim == 0 else atol_arr)


class OdeSolver:
    """Base of the forward one-step solvers (SciPy's ``OdeSolver``, trimmed).

    Parameters
    ----------
    fun : callable
        The field ``fun(t, y)``, returning a float array of ``y``'s shape.
    t0, t_bound : float
        Start and end of the integration, ``t_bound >= t0``; the last step ends exactly at
        ``t_bound``.
    y0 : array_like, shape (n,)
        Initial state: real, finite, non-empty.
    rtol, atol : float
        Tolerances of the local error (``atol`` may also have shape ``(n,)``).
    max_step : float
        Largest step (positive, may be ``inf``).
    first_step : float or None
        First step size (in ``(0, t_bound − t0]``); ``None`` chooses it
        (:func:`select_initial_step`).

    Attributes
    ----------
    t, y, f : the current time, state and ``fun(t, y)``;
    t_old : the previous accepted time (``None`` before the first step);
    h_abs : the size proposed for the next step;
    status : ``'running'``, ``'finished'`` (``t == t_bound``) or ``'failed'``;
    nfev : field evaluations so far (Jacobian evaluations excluded).
    """

    TOO_SMALL_STEP = "Required step size is less than spacing between numbers."
    #: error-estimator order used by :func:`select_initial_step`
    error_estimator_order: int = NotImplemented

    def __init__(self, fun: Field, t0: float, y0, t_bound: float, rtol: float = 1e-3,
                 atol: float | Array = 1e-6, max_step: float = np.inf,
                 first_step: float | None = None) -> None:
        if not callable(fun):
            raise ValueError(f"fun must be callable, got {type(fun).__name__}")
        t0 = _finite_float(t0, "t0")
        t_bound = _finite_float(t_bound, "t_bound")
        if t_bound < t0:
            raise ValueError(f"t_bound must be >= t0 (forward integration only), got "
                             f"t0 = {t0!r}, t_bound = {t_bound!r}")
        y0 = np.asarray(y0)
        if y0.ndim != 1 or y0.size == 0:
            raise ValueError(f"y0 must be a non-empty 1-D array, got shape {y0.shape}")
        if not (np.issubdtype(y0.dtype, np.floating) or np.issubdtype(y0.dtype, np.integer)):
            raise ValueError(f"y0 must be real, got dtype {y0.dtype}")
        y0 = y0.astype(float, copy=False)
        if not np.all(np.isfinite(y0)):
            raise ValueError("y0 must be finite")
        try:
            max_step = float(max_step)
        except (TypeError, ValueError):
            raise ValueError(f"max_step must be a positive number, got {max_step!r}") from None
        if not max_step > 0:
            raise ValueError(f"max_step must be positive, got {max_step!r}")
        self.fun = fun
        self.t, self.y, self.t_bound, self.t_old = t0, y0, t_bound, None
        self.n = y0.size
        self.max_step = max_step
        self.rtol, self.atol = _validate_tol(rtol, atol, self.n)
        self.status = "running"
        self.nfev = 1
        self.f = fun(t0, y0)
        if not (isinstance(self.f, np.ndarray) and self.f.shape == y0.shape
                and self.f.dtype == np.float64):
            raise ValueError(f"fun must return a float64 array of shape {y0.shape}, got "
                             f"{getattr(self.f, 'dtype', type(self.f).__name__)} of shape "
                             f"{np.shape(self.f)}")
        if first_step is None:
            self.nfev += 1
            self.h_abs = select_initial_step(fun, t0, y0, t_bound, max_step, self.f,
                                             self.error_estimator_order, self.rtol, self.atol)
        else:
            first_step = _finite_float(first_step, "first_step")
            if not 0 < first_step <= t_bound - t0:
                raise ValueError(f"first_step must be in (0, t_bound - t0] = (0, "
                                 f"{t_bound - t0!r}], got {first_step!r}")
            self.h_abs = first_step

    def step(self) -> str | None:
        """Take one accepted step (or reach ``t_bound``); returns a message on failure.

        Raises
        ------
        RuntimeError
            If the solver is not running (finished or failed).
        """
        if self.status != "running":
            raise RuntimeError("Attempt to step on a failed or finished solver.")
        t = self.t
        if t == self.t_bound:
            self.t_old, self.status = t, "finished"
            return None
        success, message = self._step_impl()
        if not success:
            self.status = "failed"
        else:
            self.t_old = t
            if self.t - self.t_bound >= 0:
                self.status = "finished"
        return message

    def trial(self, t: float, h_abs: float) -> tuple[float, float, float]:
        """The next trial step from ``t`` of size ``h_abs``, not past ``t_bound``:
        ``(t_new, h, |h|)`` (scipy's rule, shared by the one-step methods)."""
        t_new = t + h_abs
        if t_new - self.t_bound > 0:
            t_new = self.t_bound
        h = t_new - t
        return t_new, h, np.abs(h)

    def min_step(self) -> float:
        """The smallest step allowed at ``t`` (10 ulp of time, as SciPy)."""
        t = self.t
        return 10 * abs(math.nextafter(t, math.inf) - t)

    def dense_output(self) -> "DenseOutput":
        """The interpolant over the last accepted step.

        Raises
        ------
        RuntimeError
            Before the first step.
        """
        if self.t_old is None:
            raise RuntimeError("Dense output is available after a successful step was made.")
        return self._dense_output_impl()

    def _step_impl(self) -> tuple[bool, str | None]:
        raise NotImplementedError

    def _dense_output_impl(self) -> "DenseOutput":
        raise NotImplementedError


class DenseOutput:
    """Interpolant over one step ``[t_old, t]``; calling it on a time (array of ``k`` times)
    gives the state, shape ``(n,)`` (``(n, k)``)."""

    def __init__(self, t_old: float, t: float, y_old: Array) -> None:
        self.t_old, self.t, self.y_old = t_old, t, y_old
        self.h = t - t_old

    def __call__(self, t: float | Array) -> Array:
        t = np.asarray(t, dtype=float)
        if t.ndim > 1:
            raise ValueError("t must be a float or a 1-D array")
        if self.h == 0:
            return self.y_old.copy() if t.ndim == 0 else np.repeat(self.y_old[:, None],
                                                                    t.size, axis=1)
        return self._call_impl(t)

    def _call_impl(self, t: Array) -> Array:
        raise NotImplementedError

    def derivative(self, t: Array) -> Array:
        """``dy/dt`` of the interpolant at the times ``t`` (1-D), shape ``(n, len(t))``: what
        its defect ``dy/dt − f(t, y)`` is measured with."""
        t = np.atleast_1d(np.asarray(t, dtype=float))
        if self.h == 0:
            return np.zeros((self.y_old.size, t.size))
        return self._derivative_impl(t)

    def _derivative_impl(self, t: Array) -> Array:
        raise NotImplementedError
