"""Radau IIA of order 5: the implicit, L-stable solver of the quiet stretches (:class:`Radau`).

A port of SciPy's ``scipy/integrate/_ivp/radau.py`` (SciPy 1.17, Copyright (c) 2001-2002
Enthought, Inc. 2003, SciPy Developers; BSD 3-clause licence; after Hairer and Wanner,
Solving ODEs II, Sec. IV.8), restricted to what :mod:`pwflow.stepper` uses
(:mod:`pwflow.ode_base`): the same simplified Newton iterations on the collocation system
(real and complex blocks after the transformation ``T``), the same stopping rules, error
estimate, step-size control (Gustafsson's predictive controller), Jacobian re-use rule and
cubic dense output (:class:`RadauDenseOutput`, callable on an array of times).

How it differs from SciPy's ``Radau``:

* the Jacobian must be given as a callable ``jac(t, y)`` returning a dense ``(n, n)`` array
  (no finite-difference ``num_jac``, no sparse matrices);
* the linear systems ``(μ/h) I − J`` (one real, one complex) are not LU-factorised
  (``scipy.linalg``) but inverted with ``numpy.linalg.inv`` each time SciPy would factorise
  them (new Jacobian or new step size); each solve is then a product with the inverse, the
  complex one in real arithmetic (OpenBLAS threads complex matrix-vector products from
  n ≈ 90 on: 15 ms each on a loaded 2-core machine, against 3 µs single-threaded).  The
  results agree with SciPy's to rounding, not bitwise (``tests/test_radau.py``: the same
  accepted steps, states to ~1e-13 relative).  A singular system raises
  ``numpy.linalg.LinAlgError`` where SciPy's LU would only warn;
* no vectorised or complex fields, forward integration only;
* the Jacobian may instead be a :class:`BlockLowRank` (block diagonal with Kronecker blocks,
  plus a low-rank term: the hybrid flow's field has that structure); the systems are then
  solved by the Woodbury identity in ``O(N (q + r))`` per solve (``N`` unknowns, blocks
  ``q × q``, rank ``r``) after ``O(N q r + r³)`` per factorisation, instead of ``O(N²)`` and
  ``O(N³)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from numpy.typing import NDArray

from .ode_base import EPS, DenseOutput, OdeSolver, rms_norm

__all__ = ["BlockLowRank", "Radau", "RadauDenseOutput"]

Array = NDArray[np.float64]

S6 = 6 ** 0.5
C = np.array([(4 - S6) / 10, (4 + S6) / 10, 1])  # the nodes
E = np.array([-13 - 7 * S6, -13 + 7 * S6, -1]) / 3  # error estimator
# eigenvalues of the inverse of the method's matrix, and the transformation to its
# block-diagonal (real, complex) form: SciPy's constants
MU_REAL = 3 + 3 ** (2 / 3) - 3 ** (1 / 3)
MU_COMPLEX = (3 + 0.5 * (3 ** (1 / 3) - 3 ** (2 / 3))
              - 0.5j * (3 ** (5 / 6) + 3 ** (7 / 6)))
T = np.array([
    [0.09443876248897524, -0.14125529502095421, 0.03002919410514742],
    [0.25021312296533332, 0.20412935229379994, -0.38294211275726192],
    [1, 1, 0]])
TI = np.array([
    [4.17871859155190428, 0.32768282076106237, 0.52337644549944951],
    [-4.17871859155190428, -0.32768282076106237, 0.47662355450055044],
    [0.50287263494578682, -2.57192694985560522, 0.59603920482822492]])
TI_REAL = TI[0]
TI_COMPLEX = TI[1] + 1j * TI[2]
# the dense output's polynomial coefficients
P = np.array([
    [13 / 3 + 7 * S6 / 3, -23 / 3 - 22 * S6 / 3, 10 / 3 + 5 * S6],
    [13 / 3 - 7 * S6 / 3, -23 / 3 + 22 * S6 / 3, 10 / 3 - 5 * S6],
    [1 / 3, -8 / 3, 10 / 3]])

@dataclass(frozen=True)
class BlockLowRank:
    """A Jacobian ``J = blockdiag(K_p ⊗ I_q) + U V`` on ``N = P q²`` unknowns (row-major
    ``(P, q, q)``): block ``p`` acts on the ``q × q`` matrix ``Y_p`` as ``K_p Y_p``.

    Attributes
    ----------
    K : array, shape (P, q, q)
    U : array, shape (N, r)
    V : array, shape (r, N)
    """

    K: Array
    U: Array
    V: Array

    def __post_init__(self) -> None:
        if self.K.ndim != 3 or self.K.shape[1] != self.K.shape[2]:
            raise ValueError(f"K must have shape (P, q, q), got {self.K.shape}")
        N = self.shape[0]
        r = self.U.shape[1] if self.U.ndim == 2 else -1
        if self.U.shape != (N, r) or self.V.shape != (r, N):
            raise ValueError(f"U and V must have shapes (N, r) and (r, N) with N = {N}, got "
                             f"{self.U.shape} and {self.V.shape}")

    @property
    def shape(self) -> tuple[int, int]:
        P, q = self.K.shape[0], self.K.shape[1]
        return (P * q * q, P * q * q)

    def dense(self) -> Array:
        """The matrix itself (tests, small systems)."""
        P, q = self.K.shape[0], self.K.shape[1]
        J = np.zeros((P, q * q, P, q * q))
        eye = np.eye(q)
        for i in range(P):
            J[i, :, i, :] = np.kron(self.K[i], eye)
        return J.reshape(self.shape) + self.U @ self.V

    def shifted_solver(self, c: complex) -> "_ShiftedSolve":
        """A solver of ``(c I − J) x = b`` (Woodbury)."""
        return _ShiftedSolve(self, c)


class _ShiftedSolve:
    """``(c I − J)^{-1}`` for a :class:`BlockLowRank` ``J``: with ``A = c I − blockdiag``,
    ``(A − U V)^{-1} = A^{-1} + A^{-1} U (I − V A^{-1} U)^{-1} V A^{-1}``, ``A^{-1}`` block by
    block (``(c I_q − K_p)^{-1} ⊗ I_q``)."""

    def __init__(self, J: BlockLowRank, c: complex) -> None:
        P, q = J.K.shape[0], J.K.shape[1]
        dtype = complex if isinstance(c, complex) else float
        self.Kinv = np.linalg.inv(c * np.eye(q, dtype=dtype) - J.K)
        self.P, self.q = P, q
        self.AinvU = self._block(J.U.T.astype(dtype)).T  # (N, r)
        cap = np.eye(J.V.shape[0], dtype=dtype) - J.V @ self.AinvU
        self.capinv = np.linalg.inv(cap)
        self.V = J.V

    def _block(self, b: Array) -> Array:
        """``A^{-1}`` applied to the rows of ``b`` (``(..., N)``)."""
        lead = b.shape[:-1]
        Y = b.reshape(lead + (self.P, self.q, self.q))
        return (self.Kinv @ Y).reshape(lead + (self.P * self.q * self.q,))

    def solve(self, b: Array) -> Array:
        y = self._block(b)
        return y + self.AinvU @ (self.capinv @ (self.V @ y))


def _solve_real(inv_real, b: Array) -> Array:
    """``((μ_r/h) I − J)^{-1} b``: a product with the dense inverse, or a structured solve."""
    if isinstance(inv_real, _ShiftedSolve):
        return inv_real.solve(b)
    return np.dot(inv_real, b)


NEWTON_MAXITER = 6
MIN_FACTOR = 0.2
MAX_FACTOR = 10


def _solve_collocation(fun, t: float, y: Array, h: float, Z0: Array, scale: Array, tol: float,
                       inv_real: Array, inv_complex: tuple[Array, Array]
                       ) -> tuple[bool, int, Array, float | None]:
    """Simplified Newton iterations on the collocation system (SciPy's
    ``solve_collocation_system``): ``(converged, iterations, Z, rate)``; ``inv_complex``:
    real and imaginary parts of the complex system's inverse."""
    n = y.shape[0]
    M_real = MU_REAL / h
    M_complex = MU_COMPLEX / h
    W = TI.dot(Z0)
    Z = Z0
    F = np.empty((3, n))
    ch = h * C
    dW_norm_old = None
    dW = np.empty_like(W)
    converged = False
    rate = None
    for k in range(NEWTON_MAXITER):
        for i in range(3):
            F[i] = fun(t + ch[i], y + Z[i])
        if not np.all(np.isfinite(F)):
            break
        f_real = F.T.dot(TI_REAL) - M_real * W[0]
        f_complex = F.T.dot(TI_COMPLEX) - M_complex * (W[1] + 1j * W[2])
        dW[0] = _solve_real(inv_real, f_real)
        if isinstance(inv_complex, _ShiftedSolve):
            dz = inv_complex.solve(f_complex)
            dW[1], dW[2] = dz.real, dz.imag
        else:
            # the complex solve in real arithmetic: OpenBLAS threads a complex matrix-vector
            # product from n ≈ 90 on, which cost 15 ms per product on a loaded 2-core machine
            fr, fi = f_complex.real, f_complex.imag
            dW[1] = np.dot(inv_complex[0], fr) - np.dot(inv_complex[1], fi)
            dW[2] = np.dot(inv_complex[0], fi) + np.dot(inv_complex[1], fr)
        dW_norm = rms_norm(dW / scale)
        if dW_norm_old is not None:
            rate = dW_norm / dW_norm_old
        if rate is not None and (rate >= 1 or
                                 rate ** (NEWTON_MAXITER - k) / (1 - rate) * dW_norm > tol):
            break
        W += dW
        Z = T.dot(W)
        if dW_norm == 0 or rate is not None and rate / (1 - rate) * dW_norm < tol:
            converged = True
            break
        dW_norm_old = dW_norm
    return converged, k + 1, Z, rate


def _predict_factor(h_abs: float, h_abs_old: float | None, error_norm: float,
                    error_norm_old: float | None) -> float:
    """Gustafsson's predictive step-size factor (SciPy's ``predict_factor``)."""
    if error_norm_old is None or h_abs_old is None or error_norm == 0:
        multiplier = 1
    else:
        multiplier = h_abs / h_abs_old * (error_norm_old / error_norm) ** 0.25
    with np.errstate(divide="ignore"):
        factor = min(1, multiplier) * np.float64(error_norm) ** -0.25
    return factor


class Radau(OdeSolver):
    """Implicit Runge–Kutta method Radau IIA of order 5 (3 stages), error estimator of
    order 3, cubic dense output.

    Parameters are those of :class:`pwflow.ode_base.OdeSolver`, plus

    jac : callable
        ``jac(t, y)``: the field's Jacobian, a float array of shape ``(n, n)`` or a
        :class:`BlockLowRank`.  Its evaluations count in ``njev``, not in ``nfev``.
    """

    error_estimator_order = 3

    def __init__(self, fun, t0: float, y0, t_bound: float, rtol: float = 1e-3,
                 atol: float | Array = 1e-6, max_step: float = np.inf,
                 first_step: float | None = None,
                 jac: Callable[[float, Array], Array] | None = None) -> None:
        if not callable(jac):
            raise ValueError(f"jac must be a callable jac(t, y), got {type(jac).__name__}")
        super().__init__(fun, t0, y0, t_bound, rtol, atol, max_step, first_step)
        self.y_old: Array | None = None
        self.h_abs_old: float | None = None
        self.error_norm_old: float | None = None
        self.newton_tol = max(10 * EPS / self.rtol, min(0.03, self.rtol ** 0.5))
        self.sol: RadauDenseOutput | None = None
        self.jac = jac
        self.J = self._jacobian(self.t, self.y)
        self.njev = 1
        self.nlu = 0
        self.I: Array | None = None  # allocated for a dense Jacobian only
        self.current_jac = True
        self.inv_real: Array | None = None
        self.inv_complex: tuple[Array, Array] | None = None
        self.Z: Array | None = None

    def _jacobian(self, t: float, y: Array) -> "Array | BlockLowRank":
        J = self.jac(t, y)
        if not isinstance(J, BlockLowRank):
            J = np.asarray(J, dtype=float)
        if J.shape != (self.n, self.n):
            raise ValueError(f"jac must return shape {(self.n, self.n)}, got {J.shape}")
        return J

    def _inverses(self, h: float, J: "Array | BlockLowRank"):
        """``((μ_r/h) I − J)^{-1}`` and the real and imaginary parts of
        ``((μ_c/h) I − J)^{-1}`` (SciPy: their LU factors); for a :class:`BlockLowRank`
        ``J``, their structured solvers."""
        self.nlu += 2
        if isinstance(J, BlockLowRank):
            return J.shifted_solver(float(MU_REAL / h)), J.shifted_solver(complex(MU_COMPLEX / h))
        if self.I is None:
            self.I = np.identity(self.n)
        inv_complex = np.linalg.inv(MU_COMPLEX / h * self.I - J)
        return (np.linalg.inv(MU_REAL / h * self.I - J),
                (np.ascontiguousarray(inv_complex.real), np.ascontiguousarray(inv_complex.imag)))

    def _step_impl(self) -> tuple[bool, str | None]:
        t, y, f = self.t, self.y, self.f
        atol, rtol = self.atol, self.rtol
        min_step = self.min_step()
        if self.h_abs > self.max_step:
            h_abs, h_abs_old, error_norm_old = self.max_step, None, None
        elif self.h_abs < min_step:
            h_abs, h_abs_old, error_norm_old = min_step, None, None
        else:
            h_abs, h_abs_old, error_norm_old = self.h_abs, self.h_abs_old, self.error_norm_old
        J, current_jac = self.J, self.current_jac
        inv_real, inv_complex = self.inv_real, self.inv_complex
        rejected = False
        while True:
            if h_abs < min_step:
                return False, self.TOO_SMALL_STEP
            t_new, h, h_abs = self.trial(t, h_abs)
            Z0 = np.zeros((3, y.shape[0])) if self.sol is None else self.sol(t + h * C).T - y
            scale = atol + np.abs(y) * rtol
            converged = False
            while not converged:
                if inv_real is None or inv_complex is None:
                    inv_real, inv_complex = self._inverses(h, J)
                converged, n_iter, Z, rate = _solve_collocation(
                    self.fun, t, y, h, Z0, scale, self.newton_tol, inv_real, inv_complex)
                self.nfev += 3 * n_iter
                if not converged:
                    if current_jac:
                        break
                    J = self._jacobian(t, y)
                    self.njev += 1
                    current_jac = True
                    inv_real = inv_complex = None
            if not converged:
                h_abs *= 0.5
                inv_real = inv_complex = None
                continue
            y_new = y + Z[-1]
            ZE = Z.T.dot(E) / h
            error = _solve_real(inv_real, f + ZE)
            scale = atol + np.maximum(np.abs(y), np.abs(y_new)) * rtol
            error_norm = rms_norm(error / scale)
            safety = 0.9 * (2 * NEWTON_MAXITER + 1) / (2 * NEWTON_MAXITER + n_iter)
            if rejected and error_norm > 1:
                error = _solve_real(inv_real, self.fun(t, y + error) + ZE)
                self.nfev += 1
                error_norm = rms_norm(error / scale)
            if error_norm > 1:
                factor = _predict_factor(h_abs, h_abs_old, error_norm, error_norm_old)
                h_abs *= max(MIN_FACTOR, safety * factor)
                inv_real = inv_complex = None
                rejected = True
            else:
                break
        self._accept(t, y, t_new, y_new, h_abs, h_abs_old, error_norm, error_norm_old,
                     safety, n_iter, rate, Z, J, current_jac, inv_real, inv_complex)
        return True, None

    def _accept(self, t, y, t_new, y_new, h_abs, h_abs_old, error_norm, error_norm_old,
                safety, n_iter, rate, Z, J, current_jac, inv_real, inv_complex) -> None:
        """Book-keeping of an accepted step: next step size, Jacobian re-use, dense output."""
        recompute_jac = n_iter > 2 and rate > 1e-3
        factor = _predict_factor(h_abs, h_abs_old, error_norm, error_norm_old)
        factor = min(MAX_FACTOR, safety * factor)
        if not recompute_jac and factor < 1.2:
            factor = 1
        else:
            inv_real = inv_complex = None
        f_new = self.fun(t_new, y_new)
        self.nfev += 1
        if recompute_jac:
            J = self._jacobian(t_new, y_new)
            self.njev += 1
            current_jac = True
        else:
            current_jac = False
        self.h_abs_old, self.error_norm_old = self.h_abs, error_norm
        self.h_abs = h_abs * factor
        self.y_old, self.t, self.y, self.f, self.Z = y, t_new, y_new, f_new, Z
        self.inv_real, self.inv_complex = inv_real, inv_complex
        self.current_jac, self.J, self.t_old = current_jac, J, t
        self.sol = RadauDenseOutput(t, t_new, y, np.dot(Z.T, P))

    def _dense_output_impl(self) -> "RadauDenseOutput":
        if self.sol is None:  # no step was taken (t0 == t_bound)
            return RadauDenseOutput(self.t_old, self.t, self.y, np.zeros((self.n, 3)))
        return self.sol


class RadauDenseOutput(DenseOutput):
    """Radau's cubic interpolant: ``y_old + Q (x, x², x³)``, ``x = (t − t_old)/h``."""

    def __init__(self, t_old: float, t: float, y_old: Array, Q: Array) -> None:
        super().__init__(t_old, t, y_old)
        self.Q = Q
        self.order = Q.shape[1] - 1

    def _call_impl(self, t: Array) -> Array:
        x = (t - self.t_old) / self.h
        if t.ndim == 0:
            p = np.cumprod(np.tile(x, self.order + 1))
        else:
            p = np.cumprod(np.tile(x, (self.order + 1, 1)), axis=0)
        y = np.dot(self.Q, p)
        if y.ndim == 2:
            y += self.y_old[:, None]
        else:
            y += self.y_old
        return y

    def _derivative_impl(self, t: Array) -> Array:
        x = (t - self.t_old) / self.h
        k = np.arange(1, self.order + 2)[:, None]
        return np.dot(self.Q, k * x[None] ** (k - 1)) / self.h
