"""DOP853: Dormand and Prince's explicit Runge–Kutta method of order 8 (:class:`DOP853`).

A port of SciPy's ``scipy/integrate/_ivp/rk.py`` (SciPy 1.17, Copyright (c) 2001-2002
Enthought, Inc. 2003, SciPy Developers; BSD 3-clause licence; itself after E. Hairer's
``dop853.f``), restricted to DOP853 and to what :mod:`pwflow.stepper` uses
(:mod:`pwflow.ode_base`).  The arithmetic is SciPy's, operation for operation: the same
stages (``np.dot`` of the same arrays), the same error estimate (the 5th- and 3rd-order
estimators combined as in Hairer's code), the same step-size control (safety 0.9, factor in
``[0.2, 10]``, no increase right after a rejection), the same first step
(:func:`pwflow.ode_base.select_initial_step`) and the same dense output, so that every step
(``t``, ``y``, ``h_abs``, the stages ``K``, the dense coefficients ``F``) is bit-identical to
``scipy.integrate.DOP853`` (``tests/test_rk.py``).

The dense output keeps SciPy's nested form (``y_old`` and ``F``, shape ``(7, n)``), which
:mod:`pwflow.dense` reads directly.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from . import dop853_coefficients as coef
from .dense import nested_with_derivative
from .ode_base import DenseOutput, OdeSolver

__all__ = ["DOP853", "Dop853DenseOutput", "combined_error"]

Array = NDArray[np.float64]

SAFETY = 0.9  # multiplies the step predicted from the error's asymptotics
MIN_FACTOR = 0.2  # smallest step decrease
MAX_FACTOR = 10  # largest step increase


def _stages(A: Array, C: Array, first: int) -> tuple[tuple[int, Array, float], ...]:
    """Per stage ``s = first, first + 1, …`` (row ``s − first`` of ``A`` and ``C``): ``s``,
    the row restricted to the ``s`` previous stages, the node."""
    return tuple((first + i, A[i, : first + i], C[i]) for i in range(len(C)))


def combined_error(h: float, err5_norm_2, err3_norm_2, size: int):
    """Hairer's combination of the 5th- and 3rd-order estimates (squared norms, relative to
    the scale) of ``size`` components: ``|h| e5² / √((e5² + 0.01 e3²) size)``."""
    denom = err5_norm_2 + 0.01 * err3_norm_2
    return np.abs(h) * err5_norm_2 / np.sqrt(denom * size)


class DOP853(OdeSolver):
    """Explicit Runge–Kutta method of order 8 with a 5(3) error estimator and a 7th-order
    dense output (:class:`Dop853DenseOutput`).

    Parameters are those of :class:`pwflow.ode_base.OdeSolver`.  After each step, ``K``
    (shape ``(13, n)``) holds the stage derivatives of the step (the last row:
    ``fun(t, y)`` at its end).
    """

    n_stages = coef.N_STAGES
    order = 8
    error_estimator_order = 7
    A = coef.A[:n_stages, :n_stages]
    B = coef.B
    C = coef.C[:n_stages]
    E3 = coef.E3
    E5 = coef.E5
    D = coef.D
    A_EXTRA = coef.A[n_stages + 1:]
    C_EXTRA = coef.C[n_stages + 1:]
    _STAGES = _stages(A[1:], C[1:], 1)
    _EXTRA = _stages(A_EXTRA, C_EXTRA, n_stages + 1)
    _EXPONENT = -1 / (error_estimator_order + 1)
    #: A trial step whose stages or error estimate overflow (``FloatingPointError`` under
    #: :func:`pwflow.guard.watch`) is rejected and shrunk by ``MIN_FACTOR``, as SciPy's
    #: solvers treat a non-finite error estimate; ``False`` lets it raise (tests).
    REJECT_OVERFLOWING_TRIALS = True

    def __init__(self, fun, t0: float, y0, t_bound: float, rtol: float = 1e-3,
                 atol: float | Array = 1e-6, max_step: float = np.inf,
                 first_step: float | None = None) -> None:
        super().__init__(fun, t0, y0, t_bound, rtol, atol, max_step, first_step)
        self.y_old: Array | None = None
        self.h_previous: float | None = None
        self.K_extended = np.empty((coef.N_STAGES_EXTENDED, self.n))
        self.K = self.K_extended[: self.n_stages + 1]

    def _rk_step(self, t: float, y: Array, h: float) -> tuple[Array, Array]:
        """One trial step (SciPy's ``rk_step``): fills ``K``, returns ``y_new`` and
        ``f_new``."""
        K = self.K
        K[0] = self.f
        y_new, f_new = self.stages(self.fun, t, y, h, K)
        self.nfev += self.n_stages
        return y_new, f_new

    @classmethod
    def stages(cls, fun, t: float, y: Array, h: float, K: Array) -> tuple[Array, Array]:
        """The stages of one step from ``(t, y)`` of size ``h`` (``K[0]``: ``fun(t, y)``,
        given): fills ``K[1:]`` and returns the end state and ``fun`` there (``K[-1]``).
        Also what :mod:`pwflow.replay` runs on the rows of faces left out of the solver."""
        for s, a, c in cls._STAGES:
            dy = np.dot(K[:s].T, a) * h
            K[s] = fun(t + c * h, y + dy)
        y_new = y + h * np.dot(K[:-1].T, cls.B)
        f_new = fun(t + h, y_new)
        K[-1] = f_new
        return y_new, f_new

    def _error_norm(self, h: float, scale: Array) -> float:
        """Hairer's combined 5th/3rd-order error estimate (RMS norm, relative to ``scale``)."""
        K = self.K
        err5 = np.dot(K.T, self.E5) / scale
        err3 = np.dot(K.T, self.E3) / scale
        err5_norm_2 = np.linalg.norm(err5) ** 2
        err3_norm_2 = np.linalg.norm(err3) ** 2
        if err5_norm_2 == 0 and err3_norm_2 == 0:
            return 0.0
        return combined_error(h, err5_norm_2, err3_norm_2, len(scale))

    @classmethod
    def error_norms(cls, K: Array, h: float, scale: Array, size: int) -> Array:
        """:meth:`_error_norm` of each block of ``size`` consecutive components (``K`` of
        shape ``(13, B * size)``): the error estimate of each block alone (0 where both
        estimators vanish)."""
        err5 = (np.dot(K.T, cls.E5) / scale).reshape(-1, size)
        err3 = (np.dot(K.T, cls.E3) / scale).reshape(-1, size)
        e5 = np.einsum("bi,bi->b", err5, err5)
        e3 = np.einsum("bi,bi->b", err3, err3)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = combined_error(h, e5, e3, size)
        return np.where((e5 == 0) & (e3 == 0), 0.0, out)

    def _step_impl(self) -> tuple[bool, str | None]:
        t, y = self.t, self.y
        rtol, atol = self.rtol, self.atol
        min_step = self.min_step()
        h_abs = min(max(self.h_abs, min_step), self.max_step)
        rejected = False
        while True:
            if h_abs < min_step:
                return False, self.TOO_SMALL_STEP
            t_new, h, h_abs = self.trial(t, h_abs)
            try:
                y_new, f_new = self._rk_step(t, y, h)
                scale = atol + np.maximum(np.abs(y), np.abs(y_new)) * rtol
                error_norm = self._error_norm(h, scale)
            except FloatingPointError:
                if not self.REJECT_OVERFLOWING_TRIALS:
                    raise
                # the trial step is too long for the field: its stages overflow (a field
                # that grows fast from a small start, e.g. a neuron leaving 0). Rejected,
                # as SciPy rejects a non-finite error estimate; a field that is not finite
                # at the accepted state itself still raises (``fun(t, y)`` is evaluated
                # outside the trial)
                error_norm = np.inf
            if error_norm < 1:
                factor = (MAX_FACTOR if error_norm == 0
                          else min(MAX_FACTOR, SAFETY * error_norm ** self._EXPONENT))
                if rejected:
                    factor = min(1, factor)
                h_abs *= factor
                break
            h_abs *= max(MIN_FACTOR, SAFETY * error_norm ** self._EXPONENT)
            rejected = True
        self.h_previous, self.y_old = h, y
        self.t, self.y, self.h_abs, self.f = t_new, y_new, h_abs, f_new
        return True, None

    def _dense_output_impl(self) -> "Dop853DenseOutput":
        """The 7th-order interpolant of the last step (3 more stages, evaluated once per
        step: a second call on the same step returns the same interpolant)."""
        K, h, fun = self.K_extended, self.h_previous, self.fun
        t_old, y_old = self.t_old, self.y_old
        if h is None or self.t == t_old:  # no step was taken (t0 == t_bound)
            return Dop853DenseOutput(t_old, self.t, self.y,
                                     np.zeros((coef.INTERPOLATOR_POWER, self.n)))
        cached = self.__dict__.get("_dense_last")
        if cached is not None and cached.t_old == t_old and cached.t == self.t:
            return cached
        self.nfev += len(self._EXTRA)
        F = self.dense_coefficients(fun, t_old, y_old, self.y, h, K)
        self._dense_last = Dop853DenseOutput(t_old, self.t, y_old, F)
        return self._dense_last

    @classmethod
    def dense_coefficients(cls, fun, t_old: float, y_old: Array, y: Array, h: float,
                           K: Array) -> Array:
        """The interpolant's ``F`` (shape ``(7, n)``) of the step ``y_old → y`` of size ``h``
        whose stages are ``K[:13]`` (``K[12]``: the field at the end): fills the 3 extra
        stages ``K[13:]`` (``K`` of shape ``(16, n)``)."""
        for s, a, c in cls._EXTRA:
            dy = np.dot(K[:s].T, a) * h
            K[s] = fun(t_old + c * h, y_old + dy)
        F = np.empty((coef.INTERPOLATOR_POWER, y.size))
        f_old = K[0]
        delta_y = y - y_old
        F[0] = delta_y
        F[1] = h * f_old - delta_y
        F[2] = 2 * delta_y - h * (K[cls.n_stages] + f_old)
        F[3:] = h * np.dot(cls.D, K)
        return F


class Dop853DenseOutput(DenseOutput):
    """DOP853's interpolant in SciPy's nested form: with ``x = (t − t_old)/h``,
    ``y = y_old + x (F_0 + (1 − x)(F_1 + x (F_2 + …)))`` (``F`` of shape ``(7, n)``;
    :func:`pwflow.dense.nested` evaluates the same form on coefficient rows)."""

    def __init__(self, t_old: float, t: float, y_old: Array, F: Array) -> None:
        super().__init__(t_old, t, y_old)
        self.F = F

    def _call_impl(self, t: Array) -> Array:
        x = (t - self.t_old) / self.h
        if t.ndim == 0:
            y = np.zeros_like(self.y_old)
        else:
            x = x[:, None]
            y = np.zeros((len(x), len(self.y_old)))
        for i, f in enumerate(reversed(self.F)):
            y += f
            if i % 2 == 0:
                y *= x
            else:
                y *= 1 - x
        y += self.y_old
        return y.T

    def _derivative_impl(self, t: Array) -> Array:
        x = (t - self.t_old) / self.h
        coef = np.concatenate([self.y_old[None], self.F]).T  # rows: components
        rows = np.repeat(coef, x.size, axis=0)
        _, d = nested_with_derivative(rows, np.tile(x, coef.shape[0]))
        return d.reshape(coef.shape[0], x.size) / self.h
