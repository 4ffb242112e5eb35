"""How far the exact flow can still move: the bound behind the stop "at rest".

Along any solution of Eq. (2) (``dθ/dt = −v``, ``v`` in the conservative field of the
network's backpropagation, slopes ``σ'(0) ∈ [γ, 1]``; the minimal-norm selection of Eq. (6)
is one), the loss obeys the chain rule ``dL/dt = −‖dθ/dt‖²`` for almost every ``t``
(Bolte & Pauwels 2021, Thm 1 / Davis et al. 2020: ``L`` is path-differentiable, being a
``C¹`` loss of a semialgebraic network).  Write ``E(t) = L(θ(t)) − L_floor ≥ 0``, with
``L_floor`` a lower bound of the loss (0 for the square and logistic losses).  Then, for
every ``T ≥ t`` and every neuron ``j``:

1. **Energy.** ``‖θ(T) − θ(t)‖ ≤ ∫_t^T ‖θ'‖ ≤ √(T − t) (∫_t^T ‖θ'‖²)^{1/2}
   = √((T − t)(E(t) − E(T))) ≤ √((T − t) E(t))`` (Cauchy–Schwarz).
2. **Grönwall.** ``d‖z_j‖/dt ≤ ‖D_j‖ ‖z_j‖`` with ``‖D_j‖ ≤ (1/n) Σ_k |r_k| ‖x_k‖
   ≤ (1/n) ‖r‖₂ ‖X‖_F``, and ``‖r(s)‖₂² ≤ 2 c n E(s) ≤ 2 c n E(t)`` for ``s ≥ t``
   (``|ℓ'|² ≤ 2 c (ℓ − inf ℓ)`` for a ``c``-smooth ``ℓ``; ``E`` does not increase).  So
   ``‖z_j(T) − z_j(t)‖ ≤ ‖z_j(t)‖ (exp(ρ (T − t)) − 1)``, ``ρ = ‖X‖_F √(2 c E(t) / n)``.

Both hold for every solution (also past branch points) and need only the current state.
``E(t)`` is evaluated from the neurons themselves, with the rounding of the output sums
bounded and added, so the bound is one of the exact flow started at the computed state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .model import Loss, network_output

__all__ = ["RestBound", "describe_rest", "output_rounding", "rest_bound"]

Array = NDArray[np.float64]


@dataclass(frozen=True)
class RestBound:
    """A bound on how far the exact flow moves from the state at ``t`` until ``t_end``.

    Attributes
    ----------
    t, t_end : float
        The interval.
    excess : float
        Upper bound of ``E(t) = L(θ(t)) − L_floor`` (rounding included).
    path : float
        ``√((t_end − t) E)``: bound of ``‖θ(t_end) − θ(t)‖`` (all parameters, Euclidean).
    growth : float
        ``exp(ρ (t_end − t)) − 1``: bound of every ``‖z_j(t_end) − z_j(t)‖ / ‖z_j(t)‖``.
    scale : float
        ``max_j ‖z_j(t)‖``, the largest neuron.
    """

    t: float
    t_end: float
    excess: float
    path: float
    growth: float
    scale: float

    @property
    def relative(self) -> float:
        """Bound of ``max_j ‖z_j(t_end) − z_j(t)‖`` relative to the largest neuron:
        ``min(path / scale, growth)``."""
        if self.scale == 0:
            return 0.0
        return min(self.path / self.scale, self.growth)


def output_rounding(W: Array, a: Array, X: Array) -> Array:
    """Bound of the rounding error of ``h(x_k) = Σ_j a_j σ(<w_j, x_k>)`` computed in double
    precision: ``γ_N Σ_j |a_j| Σ_i |w_ji| |x_ki|`` with ``N = m + d + 2`` (Higham's ``γ_N``
    for the inner products, the activation and the sum over neurons)."""
    N = W.shape[0] + W.shape[1] + 2
    u = np.finfo(float).eps / 2
    gamma_N = N * u / (1 - N * u)
    return gamma_N * (np.abs(X) @ np.abs(W).T) @ np.abs(a)


def rest_bound(W: Array, a: Array, X: Array, y: Array, loss: Loss, gamma: float, t: float,
               t_end: float) -> RestBound | None:
    """:class:`RestBound` of the exact flow of Eq. (2) from ``(W, a)`` at ``t`` until
    ``t_end`` (see the module docstring); ``None`` when the loss has no known lower bound
    (``loss.floor is None``)."""
    if loss.floor is None:
        return None
    h = network_output(W, a, X, gamma)
    e = output_rounding(W, a, X)
    r = loss.derivative(h, y)
    c = loss.curvature_bound_for(y)
    # ℓ(h_exact) ≤ ℓ(h) + |ℓ'(h)| e + c e² / 2 (ℓ' is c-Lipschitz), plus ℓ's own rounding
    ell = loss(h, y) * (1 + 4 * np.finfo(float).eps) + np.abs(r) * e + 0.5 * c * e**2
    excess = max(float(np.mean(ell)) - loss.floor, 0.0)
    span = max(float(t_end) - float(t), 0.0)
    n = X.shape[0]
    rho = float(np.sqrt(np.sum(X**2))) * np.sqrt(2 * c * excess / n)
    scale = float(np.sqrt(np.max(np.sum(W**2, axis=1) + a**2, initial=0.0)))
    return RestBound(t=float(t), t_end=float(t_end), excess=excess,
                     path=float(np.sqrt(span * excess)),
                     growth=float(np.expm1(min(rho * span, 700.0))),  # no overflow
                     scale=scale)


def describe_rest(bound: RestBound) -> str:
    """The run's message for a stop at rest."""
    return (f"at rest from t = {bound.t:.6g}: the neurons are kept from there to "
            f"t = {bound.t_end:.6g}; the exact flow moves them by at most {bound.relative:.3g} "
            f"of the largest neuron (loss {bound.excess:.3g} above its floor; pwflow.rest)")
