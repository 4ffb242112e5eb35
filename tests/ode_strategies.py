"""Hypothesis strategies for the one-step ODE solvers (``tests/test_rk.py``,
``tests/test_radau.py``): linear systems ``y' = A y + b sin(ω t)`` whose matrix, initial state
and forcing hypothesis draws itself (entries, not seeds), so that a failure shrinks to a
small readable system."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

__all__ = ["LinearSystem", "linear_systems"]


@dataclass(frozen=True)
class LinearSystem:
    """``y' = A y + b sin(ω t)``, ``y(0) = y0``."""

    A: np.ndarray
    y0: np.ndarray
    b: np.ndarray
    omega: float

    @property
    def n(self) -> int:
        return int(self.y0.size)

    def fun(self, t: float, y: np.ndarray) -> np.ndarray:
        return self.A @ y + self.b * np.sin(self.omega * t)

    def jac(self, t: float, y: np.ndarray) -> np.ndarray:
        return self.A


def _entries(draw, size: int) -> np.ndarray:
    vals = draw(st.lists(st.floats(-1.0, 1.0, allow_nan=False, allow_subnormal=False),
                         min_size=size, max_size=size))
    return np.array(vals, dtype=float)


@st.composite
def linear_systems(draw, n_max: int = 8, norm: float = 2.0, shift: float = 0.0,
                   forced: bool = True, symmetric: bool = False) -> LinearSystem:
    """A drawn system with ``‖A − shift I‖_2 = norm`` (the matrix is rescaled) and
    ``‖y0‖ ≥ 0.1``; ``shift < 0`` makes it stiff (eigenvalues around ``shift``);
    ``symmetric``: ``A`` symmetric, so that its largest eigenvalue has modulus ``norm``
    (no nilpotent matrix, on which a method of any order is exact)."""
    n = draw(st.integers(1, n_max))
    M = _entries(draw, n * n).reshape(n, n)
    if symmetric:
        M = M + M.T
    size = np.linalg.norm(M, 2)
    assume(size > 0.1)
    y0 = _entries(draw, n)
    assume(np.linalg.norm(y0) > 0.1)
    b = _entries(draw, n) if forced else np.zeros(n)
    omega = draw(st.floats(0.5, 3.0)) if forced else 0.0
    return LinearSystem(M * (norm / size) + shift * np.eye(n), y0, b, omega)


def fixed_step_error(solver_cls, system: LinearSystem, h: float, T: float = 1.0, **kw) -> float:
    """Error at ``T`` of ``solver_cls`` with the constant step ``h`` (loose tolerances: no
    rejection) on the propagator ``Φ' = A Φ``, ``Φ(0) = I``, against ``expm``; every step
    must be ``h`` (``kw``: e.g. the implicit solver's ``jac``)."""
    import scipy.linalg

    n = system.n
    fun = lambda t, y: (system.A @ y.reshape(n, n)).reshape(-1)  # noqa: E731
    s = solver_cls(fun, 0.0, np.eye(n).reshape(-1), T, rtol=1.0, atol=1.0, first_step=h,
                   max_step=h, **kw)
    steps = 0
    while s.status == "running":
        s.step()
        steps += 1
        assert abs(s.t - s.t_old - h) <= 1e-12 * max(h, abs(s.t))
    assert steps == round(T / h)
    return float(np.linalg.norm(s.y.reshape(n, n) - scipy.linalg.expm(system.A * T)))


def check_fails_on_non_finite_field(solver_cls, bad: float, **kw) -> None:
    """A field that turns ``bad`` (NaN or inf) at t = 0.5 stops the solver with status
    ``'failed'`` and a step-size message, at that time, not with an exception."""

    def fun(t, y):
        return -y if t < 0.5 else np.full_like(y, bad)

    s = solver_cls(fun, 0.0, np.ones(3), 2.0, rtol=1e-8, atol=1e-10, **kw)
    msg = None
    with np.errstate(invalid="ignore", over="ignore"):
        while s.status == "running":
            msg = s.step()
    assert s.status == "failed" and s.t < 0.5 + 1e-6
    assert "step size" in msg
