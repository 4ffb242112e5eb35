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

3. **Łojasiewicz (settle).**  The output weights' velocity is single-valued,
   ``da_j/dt = −(1/n) Σ_k r_k σ(<w_j, x_k>)`` (σ is continuous), and so is ``dw_j/dt`` of a
   neuron inside an open activation cone.  With ``J`` the Jacobian of the outputs in those
   coordinates (``n × p``: the columns ``σ(<w_j, x_k>)_k`` of every neuron and
   ``a_j σ'(<w_j, x_k>) x_k`` of the neurons inside a cone), ``‖θ'‖ ≥ ‖J^T r‖ / n ≥ s ‖r‖ / n``
   with ``s = σ_min(J)``.  A loss with ``(∂_1 l)² ≥ 2 μ (l − floor)`` (the square loss:
   ``μ = 1``) gives ``‖r‖² ≥ 2 n μ E``, hence ``‖θ'‖² ≥ κ E``, ``κ = 2 μ s² / n``, and
   ``d√E/dt = −‖θ'‖² / (2 √E) ≤ −‖θ'‖ √κ / 2``: the whole remaining path is at most
   ``2 √(E(t) / κ) = √(2 n E(t) / μ) / s``, whatever the horizon.  ``s`` is taken over a
   ball: ``J`` is ``‖X‖_F``-Lipschitz in ``θ`` (σ is 1-Lipschitz, σ' is constant inside a
   cone), so within ``‖θ' − θ‖ ≤ R`` (``R`` below every such neuron's distance to its
   cone's hyperplanes), ``σ_min(J) ≥ s_0 − ‖X‖_F R``; with ``R`` above the path bound so
   obtained, the flow never leaves the ball (:func:`settle_bound`).  Inside it also
   ``E(T) ≤ E(t) e^{−κ (T − t)}``, so ``∫_t^∞ ‖r‖ ≤ √(2 c n E(t)) · 2 / κ``, and item 2's
   Grönwall argument gives every neuron's relative motion for every horizon:
   ``‖z_j(T) − z_j(t)‖ ≤ ‖z_j(t)‖ (exp((‖X‖_F / n) · 2 √(2 c n E(t)) / κ) − 1)``.

Every bound holds for every solution (also past branch points) and needs only the current
state.  ``E(t)`` is evaluated from the neurons themselves, with the rounding of the output
sums bounded and added, and ``s_0`` with the rounding of ``J J^T`` and of its eigenvalues
subtracted, so the bound is one of the exact flow started at the computed state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .model import Loss, activation, network_output, slopes

__all__ = ["RestBound", "Settle", "describe_rest", "higham_gamma", "output_rounding",
           "rest_bound", "settle_bound"]

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
    settle : float
        Bound of ``‖θ(T) − θ(t)‖`` for every ``T ≥ t`` (Łojasiewicz, :func:`settle_bound`);
        ``inf`` where not certified.
    settle_growth : float
        Bound of every ``‖z_j(T) − z_j(t)‖ / ‖z_j(t)‖`` for every ``T ≥ t`` (the same);
        ``inf`` where not certified.
    sigma : float
        The lower bound of ``σ_min(J)`` behind ``settle`` (0 where not certified).
    """

    t: float
    t_end: float
    excess: float
    path: float
    growth: float
    scale: float
    settle: float = np.inf
    settle_growth: float = np.inf
    sigma: float = 0.0

    @property
    def relative(self) -> float:
        """Bound of ``max_j ‖z_j(t_end) − z_j(t)‖`` relative to the largest neuron:
        ``min(path / scale, settle / scale, growth, settle_growth)``."""
        if self.scale == 0:
            return 0.0
        return min(min(self.path, self.settle) / self.scale, self.growth, self.settle_growth)


def higham_gamma(k: int) -> float:
    """Higham's ``γ_k = k u / (1 − k u)`` (``u`` the unit roundoff): the relative bound of the
    rounding of a sum of ``k`` products in double precision."""
    u = np.finfo(float).eps / 2
    return k * u / (1 - k * u)


def output_rounding(W: Array, a: Array, X: Array) -> Array:
    """Bound of the rounding error of ``h(x_k) = Σ_j a_j σ(<w_j, x_k>)`` computed in double
    precision: ``γ_N Σ_j |a_j| Σ_i |w_ji| |x_ki|`` with ``N = m + d + 2`` (Higham's ``γ_N``
    for the inner products, the activation and the sum over neurons)."""
    return higham_gamma(W.shape[0] + W.shape[1] + 2) * (np.abs(X) @ np.abs(W).T) @ np.abs(a)


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
    settle = Settle()
    if loss.pl_constant is not None:
        settle = settle_bound(W, a, X, gamma, excess, loss.pl_constant, c)
    return RestBound(t=float(t), t_end=float(t_end), excess=excess,
                     path=float(np.sqrt(span * excess)),
                     growth=float(np.expm1(min(rho * span, 700.0))),  # no overflow
                     scale=scale, settle=settle.path, settle_growth=settle.growth,
                     sigma=settle.sigma)


@dataclass(frozen=True)
class Settle:
    """:func:`settle_bound`'s result: bounds for every horizon (``inf``: not certified).

    Attributes
    ----------
    path : float
        Of ``sup_{T ≥ t} ‖θ(T) − θ(t)‖``.
    growth : float
        Of ``sup_{T ≥ t} ‖z_j(T) − z_j(t)‖ / ‖z_j(t)‖``, every neuron.
    sigma : float
        The certified lower bound ``s_0`` of ``σ_min(J)`` at ``θ`` (0: none).
    """

    path: float = np.inf
    growth: float = np.inf
    sigma: float = 0.0


#: neurons per block in :func:`settle_bound` (its temporaries are ``n × block``)
_SETTLE_BLOCK = 1 << 16


def _jacobian_gram(W: Array, a: Array, X: Array, gamma: float, free: NDArray[np.bool_]
                   ) -> tuple[Array, float, float]:
    """``G = J J^T`` (``n × n``) of the single-valued Jacobian of :func:`settle_bound` (the
    columns of every ``a_j``, and of ``w_j`` for ``free`` neurons), with ``‖J‖_F²`` and a
    bound of the rounding of ``J``'s entries in Frobenius norm.  Blocks of neurons keep the
    temporaries at ``n × block``."""
    n, d = X.shape
    u = np.finfo(float).eps / 2
    gd = higham_gamma(d + 1)  # an inner product of length d, and σ
    XX = X @ X.T
    G = np.zeros((n, n))
    err2 = 0.0
    for lo in range(0, W.shape[0], _SETTLE_BLOCK):
        Wb, ab, fb = W[lo:lo + _SETTLE_BLOCK], a[lo:lo + _SETTLE_BLOCK], free[lo:lo + _SETTLE_BLOCK]
        pre = X @ Wb.T
        S = activation(pre, gamma)
        G += S @ S.T
        err2 += float(np.sum((gd * (np.abs(X) @ np.abs(Wb).T)) ** 2))
        if np.any(fb):
            D = slopes(pre[:, fb], gamma) * np.abs(ab[fb])
            G += XX * (D @ D.T)
    xf2 = float(np.sum(X**2))
    jf2 = float(np.trace(G))
    err2 += (2 * u) ** 2 * xf2 * float(np.sum(a[free] ** 2))  # a_j σ' x_k: one product each
    return G, jf2, float(np.sqrt(err2))


def _sigma_min_lower(G: Array, jf2: float, m: int, d: int) -> float:
    """A lower bound of ``λ_min`` of the exact ``J J^T`` from its computed ``G``: the rounding
    of ``G``'s entries (sums of ``2m`` products, each at most ``‖J‖_F²`` in total; Higham's
    ``γ_N``) and of the symmetric eigensolver (backward stable: ``4 n u ‖G‖_F``) are
    subtracted."""
    n = G.shape[0]
    u = np.finfo(float).eps / 2
    lam = float(np.linalg.eigvalsh(G)[0])
    return lam - n * higham_gamma(2 * m + d + 2) * jf2 - 4 * n * u * float(np.linalg.norm(G))


def settle_bound(W: ArrayLike, a: ArrayLike, X: ArrayLike, gamma: float, excess: float,
                 pl_constant: float, curvature: float = 1.0) -> Settle:
    """Bounds of the whole remaining motion of the exact flow, ``sup_{T ≥ t} ‖θ(T) − θ(t)‖``
    and every neuron's relative motion, from the Łojasiewicz inequality of item 3 of the
    module docstring.

    Parameters
    ----------
    W, a, X, gamma
        The neurons ``(m, d)``, ``(m,)``, the data ``(n, d)`` and the leaky slope.
    excess : float
        An upper bound of ``E(t) = L(θ(t)) − L_floor`` (rounding included).
    pl_constant : float
        The loss's ``μ`` (:attr:`pwflow.model.Loss.pl_constant`).
    curvature : float
        A Lipschitz constant ``c`` of ``∂_1 l`` (``‖r‖² ≤ 2 c n E``).

    Returns
    -------
    Settle
        ``path = √(2 n E / μ) / s`` and ``growth = exp(‖X‖_F √(2 c n E) · 2 / (n κ)) − 1``
        with ``s = s_0 − ‖X‖_F R``, ``κ = 2 μ s² / n``, and ``s_0``, the certified lower
        bound of ``σ_min(J)`` at ``θ``; ``inf`` bounds where no ball is certified: ``J`` is
        not of rank ``n`` (fewer useful columns than data points, say), or ``E`` is too
        large for a ball with ``‖X‖_F R ≤ s_0 / 2`` inside the free neurons' cones.

    Notes
    -----
    The ball: with ``P = √(2 n E / μ) / (s_0 / 2)``, ``R = 1.01 P``; inside ``B(θ, R)``
    ``σ_min(J) ≥ s_0 − ‖X‖_F R ≥ s_0 / 2`` (and the free neurons keep their activation
    pattern, their distance to every hyperplane being above ``R``), so the path until the
    flow could leave it is at most ``P < R``: it never does.  A free neuron whose distance
    is below ``R`` is dropped from the free columns and ``s_0`` recomputed (at most twice).
    """
    W, a, X = (np.asarray(v, float) for v in (W, a, X))
    n, d = X.shape
    m = W.shape[0]
    excess = max(float(excess), 0.0)
    xn = np.sqrt(np.sum(X**2, axis=1))
    xf = float(np.sqrt(np.sum(X**2)))
    gd = higham_gamma(d + 1)
    margin = np.full(m, np.inf)
    for lo in range(0, m, _SETTLE_BLOCK):  # distance of each neuron to its cone's walls
        Wb = W[lo:lo + _SETTLE_BLOCK]
        pre = X @ Wb.T
        sure = np.abs(pre) - gd * (np.abs(X) @ np.abs(Wb).T)  # the sign is certain where > 0
        margin[lo:lo + Wb.shape[0]] = np.min(sure / xn[:, None], axis=0, initial=np.inf)
    rnorm = np.sqrt(2.0 * n * excess / float(pl_constant))
    free = margin > 0
    s0 = 0.0
    for _ in range(3):
        G, jf2, jerr = _jacobian_gram(W, a, X, gamma, free)
        lam = _sigma_min_lower(G, jf2, m, d)
        s0 = max(float(np.sqrt(lam)) - jerr, 0.0) if lam > 0 else 0.0
        if s0 == 0.0:
            return Settle()
        R = 1.01 * rnorm / (0.5 * s0)
        if xf * R > 0.5 * s0:
            return Settle(sigma=s0)
        inside = margin > R
        if not np.any(free & ~inside):
            s = s0 - xf * R
            kappa = 2.0 * pl_constant * s * s / n
            drive = xf / n * np.sqrt(2.0 * curvature * n * excess) * 2.0 / kappa
            return Settle(float(rnorm / s), float(np.expm1(min(drive, 700.0))), s0)
        free &= inside
    return Settle(sigma=s0)


def describe_rest(bound: RestBound) -> str:
    """The run's message for a stop at rest."""
    return (f"at rest from t = {bound.t:.6g}: the neurons are kept from there to "
            f"t = {bound.t_end:.6g}; the exact flow moves them by at most {bound.relative:.3g} "
            f"of the largest neuron (loss {bound.excess:.3g} above its floor; pwflow.rest)")
