"""The batch cut: how many located events of a step may be applied without restarting at each.

An event of neuron ``j`` at ``t*`` applied at the cut ``t_c > t*`` leaves the outputs wrong on
``(t*, t_c]`` by at most ``(1 − γ) |a_j ds/dt| (t − t*)`` to first order (the neuron's term
``a_j σ(<w_j, x_k>)`` changes slope there), which perturbs every propagator by at most
``c_l (1 − γ) |a_j ṡ| ‖x_k‖ (t_c − t*)² / (2 n)`` (``c_l`` the Lipschitz constant of
``∂_1 l``, 1 by Assumption 1): a residual error ``δr_k`` changes the face fields
``M_p = [[0, D_p], [D_pᵀ, 0]]``, ``D_p = −(1/n) Σ_k r_k η_{p,k} x_k``, by at most
``|δr_k| ‖x_k‖ / n`` in operator norm.  This bound is invariant under rescaling the data,
``(x, y) → (c x, c y)`` with time ``t → t / c²`` (the propagators are unchanged).  The cut
uses it times ``margin = max(1, max_i ‖x_i‖)``: before the eighth session the factor was
``max_i ‖x_i‖``, too small for ``‖x‖ < 1`` (on three points scaled by 1/8 the measured batch
error exceeded it, ``tests/test_stepper.py``); above 1 it is kept as a margin, since dropping it
moved event times away from the reference path's (``docs/integrator.md``).
:func:`choose_cut` returns the latest event time (or the step end) at which the sum of these
bounds stays below the budget ``batch_tol`` (``docs/integrator.md``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["cut_coefficients", "choose_cut"]

Array = NDArray[np.float64]


def cut_coefficients(rate: Array, gamma: float, curvature: float, n: int,
                     margin: float = 1.0) -> Array:
    """``c_i = margin · c_l (1 − γ) rate_i / (2 n)``: the bound per event is ``c_i (t_c − t_i)²``
    (``rate`` is ``|a ds/dt| ‖x_k‖`` summed over the event's hyperplanes, plus the neuron's own
    field change, ``a² |r_k| Σ_i |<x_i, x_k>| ‖x_i‖ / n``: ``HybridFlow._kink_rate``;
    ``margin >= 1`` a safety factor)."""
    if not margin >= 1.0:
        raise ValueError(f"margin must be >= 1, got {margin!r}")
    return rate * (margin * (1.0 - gamma) * curvature / (2 * n))


def choose_cut(times: Array, coeff: Array, t0: float, limit: float, later_limit: float,
               budget: float) -> float:
    """Latest admissible cut time for events at sorted ``times`` with bound coefficients ``coeff``.

    The cut never goes past ``limit`` (the step end, a face event, the next event of a neuron
    switched in this step) nor reaches ``later_limit``; it is at least the first event time.
    ``B(t_c) = Σ_{t_i <= t_c} c_i (t_c − t_i)²`` is evaluated by prefix sums (times shifted to
    ``t0`` against cancellation) and confirmed by the direct sum.
    """
    cands = np.append(times, limit)
    cands = cands[(cands <= limit) & (cands >= times[0]) & (cands < later_limit)]
    if cands.size == 0:
        return float(times[0])
    # B is non-decreasing in t_c, so the admissible cuts are a prefix
    cands = np.sort(cands)
    tau, tc = times - t0, cands - t0
    c0, c1, c2 = np.cumsum(coeff), np.cumsum(coeff * tau), np.cumsum(coeff * tau * tau)
    i = np.searchsorted(tau, tc, side="right") - 1
    bound = tc * tc * c0[i] - 2 * tc * c1[i] + c2[i]
    ok = np.flatnonzero(bound <= budget)
    for j in ok[::-1]:  # confirm with the direct sum (rounding of the prefix sums)
        sel = tau <= tc[j]
        if np.sum(coeff[sel] * (tc[j] - tau[sel]) ** 2) <= budget:
            return float(cands[j])
    return float(times[0])
