"""The two-layer network of Eq. (1), its activation and the losses of Assumption 1.

Everything here is a pure function of arrays; no state.

Notation (Section 2 of the paper): ``W`` has shape ``(m, d)`` (rows ``w_j``), ``a`` has
shape ``(m,)``, ``X`` has shape ``(n, d)`` (rows ``x_k``), ``y`` has shape ``(n,)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "Loss",
    "square_loss",
    "logistic_loss",
    "make_loss",
    "get_loss",
    "LOSSES",
    "check_gamma",
    "check_time",
    "activation",
    "slopes",
    "network_output",
    "empirical_loss",
    "gradient",
    "output_rate",
]

Array = NDArray[np.float64]


def check_gamma(gamma: float) -> float:
    """Validate the leaky-ReLU slope ``gamma`` (``sigma(z) = max(z, gamma z)``)."""
    try:
        g = float(gamma)
    except (TypeError, ValueError):
        raise ValueError(f"gamma must be a number in [0, 1], got {gamma!r}") from None
    if not np.isfinite(g) or g < 0.0 or g > 1.0:
        raise ValueError(f"gamma must be in [0, 1] (0 is ReLU, 1 is linear), got {gamma!r}")
    return g


def check_time(value: float, name: str = "t_max") -> float:
    """Validate a time horizon: a finite number ``>= 0``; ``ValueError`` names ``name``."""
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}") from None
    if not np.isfinite(t) or t < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return t


def activation(z: ArrayLike, gamma: float = 0.0) -> Array:
    """Leaky ReLU ``sigma(z) = max(z, gamma z)`` for ``gamma in [0, 1]`` (Eq. (1))."""
    z = np.asarray(z, dtype=float)
    return np.where(z > 0, z, gamma * z)


def slopes(z: ArrayLike, gamma: float = 0.0, at_zero: float | None = None) -> Array:
    """Slope ``eta`` of the activation: 1 where ``z > 0``, ``gamma`` where ``z < 0``.

    ``at_zero`` is the value used where ``z == 0`` (default ``gamma``, i.e. the convention
    ``sigma'(0) = gamma`` of common implementations; ``sigma'(0) = 0`` for ReLU).
    """
    z = np.asarray(z, dtype=float)
    eta = np.where(z > 0, 1.0, gamma)
    if at_zero is not None:
        eta = np.where(z == 0, at_zero, eta)
    return eta


@dataclass(frozen=True)
class Loss:
    """A loss ``l(y_hat, y)`` with its derivative in the first argument.

    Parameters
    ----------
    name : str
        Identifier stored in trajectory metadata.
    value : callable
        ``value(y_hat, y) -> array``, vectorised.
    derivative : callable
        ``derivative(y_hat, y) -> array``, the derivative ``∂_1 l`` (Assumption 1).
    curvature_bound : float
        A bound on the Lipschitz constant of ``∂_1 l``; Assumption 1 asks for 1.
        Used by the integrator's error estimate for batched events, the resolution of the
        residuals and the rest bound, through :meth:`curvature_bound_for`.
    floor : float or None
        A lower bound of ``l(., y)`` for every label ``y`` (0 for the square and logistic
        losses); ``None``: unknown.  The integrator's stop "at rest" needs it
        (:mod:`pwflow.rest`).
    curvature : callable or None
        ``curvature(y_hat, y) -> array``, the second derivative ``∂_1² l``; ``None``: taken by
        a central difference of ``derivative`` where needed (:meth:`derivative_rate`).
    label_curvature : callable or None
        ``label_curvature(y) -> float``: the Lipschitz constant of ``∂_1 l(·, y)`` over the
        labels ``y`` where it depends on them (the logistic loss: ``max_k y_k² / 4``);
        :meth:`curvature_bound_for` takes the larger of it and ``curvature_bound``.
    pl_constant : float or None
        A ``μ > 0`` with ``∂_1 l(ŷ, y)² >= 2 μ (l(ŷ, y) − floor)`` for every ``ŷ`` and ``y``
        (a Polyak–Łojasiewicz inequality of the loss in its first argument; the square loss:
        ``μ = 1``, with equality); ``None``: none (the logistic loss has none: its
        derivative vanishes faster than the square root of the loss).  With it the stop "at
        rest" has a bound that does not grow with the horizon (:func:`pwflow.rest.settle_bound`).
    """

    name: str
    value: Callable[[Array, Array], Array] = field(repr=False)
    derivative: Callable[[Array, Array], Array] = field(repr=False)
    curvature_bound: float = 1.0
    floor: float | None = None
    curvature: Callable[[Array, Array], Array] | None = field(default=None, repr=False)
    label_curvature: Callable[[Array], float] | None = field(default=None, repr=False)
    pl_constant: float | None = None

    def curvature_bound_for(self, y: ArrayLike) -> float:
        """A bound on the Lipschitz constant of ``∂_1 l(·, y_k)`` for every label ``y_k``:
        :attr:`curvature_bound`, or the labels' own (:attr:`label_curvature`) where larger.
        The logistic loss's ``1/4`` holds for ``|y| <= 1``; its labels may be any reals
        (Assumption 1 asks for ``|y| <= 2``), and at ``|y| = 1.9`` the constant is 0.90."""
        if self.label_curvature is None:
            return self.curvature_bound
        return max(self.curvature_bound, float(self.label_curvature(np.asarray(y, float))))

    def __call__(self, y_hat: ArrayLike, y: ArrayLike) -> Array:
        return self.value(np.asarray(y_hat, float), np.asarray(y, float))

    def derivative_rate(self, y_hat: ArrayLike, y: ArrayLike, rate: ArrayLike) -> Array:
        """``d/dt ∂_1 l(h(t), y)`` where ``dh/dt = rate``: ``∂_1² l(h, y) · rate``.

        Without :attr:`curvature`, a central difference of ``derivative`` along ``rate`` with
        a relative step of ``1e-5`` (exact for a loss quadratic in ``y_hat``).
        """
        h = np.asarray(y_hat, float)
        y = np.asarray(y, float)
        rate = np.asarray(rate, float)
        if self.curvature is not None:
            return self.curvature(h, y) * rate
        eps = 1e-5 * (1.0 + np.abs(h))
        return (self.derivative(h + eps, y) - self.derivative(h - eps, y)) / (2 * eps) * rate

    def check_assumption1(
        self, y: ArrayLike, span: float = 10.0, num: int = 2001
    ) -> "Assumption1Report":
        """Check Assumption 1 for the labels ``y`` on a grid of predictions.

        Checks that ``∂_1 l(., y_k)`` is 1-Lipschitz on ``[-span, span]`` (finite differences on
        ``num`` points; a grid check, not a proof) and that ``∂_1 l(0, y_k) != 0`` when
        ``y_k != 0``.  Returns the measured Lipschitz constant and the smallest ``|∂_1 l(0, y_k)|``
        over nonzero labels, with the verdict.
        """
        y = np.atleast_1d(np.asarray(y, float))
        grid = np.linspace(-span, span, num)
        der = self.derivative(grid[:, None], y[None, :])
        if not np.all(np.isfinite(der)):
            return Assumption1Report(False, np.inf, 0.0, "derivative is not finite on the grid")
        lip = float(np.max(np.abs(np.diff(der, axis=0)) / np.diff(grid)[:, None]))
        at0 = np.abs(self.derivative(np.zeros_like(y), y))
        nonzero = y != 0
        min_at0 = float(np.min(at0[nonzero])) if np.any(nonzero) else np.inf
        ok_lip = lip <= 1.0 + LIPSCHITZ_ROUNDING
        ok_zero = min_at0 > 0
        why = []
        if not ok_lip:
            why.append(f"∂_1 l is not 1-Lipschitz: measured constant {lip:.6g} > 1")
        if not ok_zero:
            why.append("∂_1 l(0, y) = 0 for some label y != 0")
        return Assumption1Report(ok_lip and ok_zero, lip, min_at0, "; ".join(why) or "holds")


#: how far above 1 a Lipschitz constant measured by :meth:`Loss.check_assumption1`'s finite
#: differences may read for a derivative exactly 1-Lipschitz (the square loss's ``p − y``
#: reads 1 to a few ulp): within it the constant is 1, Assumption 1's bound met with equality
LIPSCHITZ_ROUNDING = 1e-9


@dataclass(frozen=True)
class Assumption1Report:
    """Verdict of :meth:`Loss.check_assumption1` with its two margins."""

    holds: bool
    lipschitz: float
    min_abs_derivative_at_zero: float
    message: str


def _square_value(p: Array, y: Array) -> Array:
    return 0.5 * (p - y) ** 2


def _square_derivative(p: Array, y: Array) -> Array:
    return p - y


def _square_curvature(p: Array, y: Array) -> Array:
    return np.ones(np.broadcast(p, y).shape)


def _logistic_value(p: Array, y: Array) -> Array:
    return np.logaddexp(0.0, -p * y)


def _logistic_derivative(p: Array, y: Array) -> Array:
    # d/dp ln(1 + e^{-p y}) = -y / (1 + e^{p y}), written stably with expit.
    from scipy.special import expit

    return -y * expit(-p * y)


def _logistic_curvature(p: Array, y: Array) -> Array:
    from scipy.special import expit

    return y * y * expit(p * y) * expit(-p * y)


def _logistic_label_curvature(y: Array) -> float:
    # sup over ŷ of |∂_1² l(ŷ, y)| = y² expit(ŷy) expit(−ŷy) <= y² / 4
    return 0.25 * float(np.max(y * y, initial=0.0))


#: The square loss ``½ (y_hat − y)²`` of Eq. (10) (note the ½: the paper's L, not the MSE).
square_loss = Loss("square", _square_value, _square_derivative, 1.0, floor=0.0,
                   curvature=_square_curvature, pl_constant=1.0)
#: The logistic loss ``ln(1 + exp(−y_hat y))``, for labels ``y ∈ {−1, +1}`` (Section 2) or any
#: real labels (``∂_1 l`` is then ``max y² / 4``-Lipschitz: :meth:`Loss.curvature_bound_for`).
logistic_loss = Loss("logistic", _logistic_value, _logistic_derivative, 0.25, floor=0.0,
                     curvature=_logistic_curvature,
                     label_curvature=_logistic_label_curvature)

LOSSES: dict[str, Loss] = {"square": square_loss, "logistic": logistic_loss}


def make_loss(
    value: Callable[[Array, Array], Array],
    derivative: Callable[[Array, Array], Array],
    name: str = "custom",
    curvature_bound: float = 1.0,
    floor: float | None = None,
    curvature: Callable[[Array, Array], Array] | None = None,
    pl_constant: float | None = None,
) -> Loss:
    """Build a user-supplied loss from its value and derivative ``∂_1 l``; ``floor``: a lower
    bound of the loss, if known; ``curvature``: its second derivative ``∂_1² l``, if known;
    ``pl_constant``: a ``μ`` with ``(∂_1 l)² >= 2 μ (l − floor)``, if known (see
    :class:`Loss`)."""
    if not callable(value) or not callable(derivative):
        raise ValueError("make_loss: value and derivative must be callables f(y_hat, y)")
    if not (np.isfinite(curvature_bound) and curvature_bound > 0):
        raise ValueError(f"curvature_bound must be positive and finite, got {curvature_bound!r}")
    if floor is not None and not np.isfinite(floor):
        raise ValueError(f"floor must be finite or None, got {floor!r}")
    if curvature is not None and not callable(curvature):
        raise ValueError("make_loss: curvature must be None or a callable f(y_hat, y)")
    if pl_constant is not None and not (np.isfinite(pl_constant) and pl_constant > 0):
        raise ValueError(f"pl_constant must be positive and finite or None, got {pl_constant!r}")
    if pl_constant is not None and floor is None:
        raise ValueError("make_loss: pl_constant needs the floor it is relative to (floor=None)")
    return Loss(str(name), value, derivative, float(curvature_bound),
                None if floor is None else float(floor), curvature,
                pl_constant=None if pl_constant is None else float(pl_constant))


def get_loss(loss: str | Loss) -> Loss:
    """Resolve a loss given by name (``'square'``, ``'logistic'``) or as a :class:`Loss`."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str) and loss in LOSSES:
        return LOSSES[loss]
    raise ValueError(f"unknown loss {loss!r}; allowed: {sorted(LOSSES)} or a pwflow.Loss")


def network_output(W: ArrayLike, a: ArrayLike, X: ArrayLike, gamma: float = 0.0) -> Array:
    """``h_theta(x_k) = sum_j a_j sigma(<w_j, x_k>)`` for every row of ``X`` (Eq. (1))."""
    W = np.asarray(W, float)
    a = np.asarray(a, float)
    X = np.atleast_2d(np.asarray(X, float))
    return activation(X @ W.T, gamma) @ a


def empirical_loss(
    W: ArrayLike, a: ArrayLike, X: ArrayLike, y: ArrayLike, loss: Loss, gamma: float = 0.0
) -> float:
    """``L(theta) = (1/n) sum_k l(h_theta(x_k), y_k)`` (Section 2)."""
    return float(np.mean(loss(network_output(W, a, X, gamma), np.asarray(y, float))))


def gradient(
    W: ArrayLike,
    a: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    loss: Loss,
    gamma: float = 0.0,
    slope_at_zero: float | None = None,
) -> tuple[Array, Array]:
    """Gradient of ``L`` with the convention ``sigma'(0) = slope_at_zero`` (default ``gamma``).

    This is the element of the Clarke subdifferential used by gradient descent in practice
    (``sigma'(0) = 0`` for ReLU, as in the paper's Remark 2).  Returns ``(dL/dW, dL/da)``.
    """
    W = np.asarray(W, float)
    a = np.asarray(a, float)
    X = np.asarray(X, float)
    n = X.shape[0]
    Z = X @ W.T  # (n, m)
    h = activation(Z, gamma) @ a
    r = loss.derivative(h, np.asarray(y, float)) / n  # (n,)
    eta = slopes(Z, gamma, at_zero=slope_at_zero)  # (n, m)
    grad_a = activation(Z, gamma).T @ r
    grad_W = ((eta * r[:, None]).T @ X) * a[:, None]
    return grad_W, grad_a


def output_rate(W: ArrayLike, a: ArrayLike, X: ArrayLike, D: ArrayLike, U: ArrayLike,
                gamma: float = 0.0) -> Array:
    """``d h_theta(x_k)/dt`` along the flow ``dw_j/dt = a_j D_j``, ``da_j/dt = <w_j, D_j>``.

    Eq. (2) with ``D_j = -(1/n) Σ_k η_jk ∂_1 l_k x_k`` the neuron's (Filippov) field.
    ``U`` (shape ``(m, n)``) holds the side of each ``<w_j, x_k>``; where it is 0 the neuron
    is on the hyperplane and ``σ(<w_j, x_k>)`` has the right derivative
    ``σ(d<w_j, x_k>/dt)`` (0 where the neuron slides there: ``<D_j, x_k> = 0``).
    """
    W, a, X, D = (np.asarray(v, float) for v in (W, a, X, D))
    U = np.asarray(U)
    S = np.where(U == 0, 0.0, W @ X.T)  # (m, n)
    S_dot = a[:, None] * (D @ X.T)
    sigma_dot = np.where(U > 0, S_dot, np.where(U < 0, gamma * S_dot, activation(S_dot, gamma)))
    return np.einsum("jd,jd->j", W, D) @ activation(S, gamma) + a @ sigma_dot
