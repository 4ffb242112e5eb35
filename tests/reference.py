"""Independent references for the differential tests of the flow (issue 10, item 3).

Not a test module: helpers imported by ``test_differential.py`` and the regression tests.

* :func:`gd_reference` — plain gradient descent (the explicit Euler scheme of Eq. (2) with the
  convention ``σ'(0) = γ``) at two step sizes ``lr`` and ``lr/2``, Richardson-extrapolated
  (Euler has order 1: ``θ_ext = 2 θ(lr/2) − θ(lr)``), with the gap ``|θ(lr) − θ(lr/2)|`` as
  the error estimate.  Written as a tight numpy loop of its own (it shares no code with
  :mod:`pwflow.gd` or the integrator), fast for tiny problems (m ≤ 8, n ≤ 10, d ≤ 5).

  Richardson extrapolation is only valid while the flow is smooth.  Across a crossing or
  along a sliding mode gradient descent has an ``O(lr)`` error whose coefficient oscillates
  with the step (it chatters around the hyperplane), so the extrapolated value is only as good
  as the gap itself there: comparisons are stated as ``|flow − θ_ext| ≤ max(C · gap, atol)``.

* :func:`min_norm_direction` — the minimal-norm element ``D*`` of the set
  ``{D(η) = b + Z η : η ∈ [γ, 1]^|K|}`` of Eq. (6) for a neuron on the hyperplanes ``K``,
  computed by scipy's bounded-variable least squares and certified by its KKT conditions
  (with brute-force enumeration of all ``3^|K|`` lower/upper/free assignments as a fallback
  and a cross-check for small ``|K|``).  It does not call pwflow's subgradient code.

* :func:`filippov_events` — Eq. (2) as a Filippov system by SciPy alone: ``solve_ivp`` on
  ``(W, a)`` with one terminal event function per pair (crossings, sliding entries, exits
  where the sliding slope reaches a bound), restarted at each event; one sliding hyperplane
  per neuron, and it says where it stops modelling.  An independent event locator for the
  times pwflow logs.

* :func:`linear_flow` — for ``γ = 1`` the network is linear in its input and smooth in its
  weights: Eq. (2) is a plain ODE, integrated by scipy's DOP853 at ``rtol = 1e-13`` on the
  full state (a reference with no events, accurate far beyond gradient descent's gap).
"""

from __future__ import annotations

import functools
import itertools
from collections import Counter
from dataclasses import dataclass

import numpy as np
from scipy.optimize import lsq_linear
from scipy.special import expit

__all__ = ["GDReference", "gd_reference", "loss_value", "loss_derivative", "outputs",
           "min_norm_direction", "MinNorm", "linear_flow", "filippov_events", "FilippovRun",
           "compare_with_filippov", "FilippovComparison",
           "sliding_checks", "C_GAP", "ATOL_GD",
           "first_branch_after_start", "finer_gd_agrees", "converging_gd_agrees",
           "gd_from_state_agrees", "last_agreed", "FROM_STATE_LADDER", "FROM_STATE_PIECES",
           "thinnest_wedge", "gd_subsequence_agrees", "SUBSEQUENCE_LRS",
           "subsequence_verdict",
           "wedge_continuation_agrees", "WEDGE_WIDTHS", "WEDGE_ORDER"]

#: the differential comparison: ``|flow − θ_ext| ≤ max(C_GAP · estimate, ATOL_GD (1 + ‖θ‖))``
#: (``test_differential.py`` says how the constants were chosen; :meth:`GDReference.bound`
#: applies them for every test and campaign)
C_GAP = 10.0
ATOL_GD = 1e-7


# ---------------------------------------------------------------------------- the network
def outputs(W: np.ndarray, a: np.ndarray, X: np.ndarray, gamma: float) -> np.ndarray:
    """``h(x_k) = Σ_j a_j σ(<w_j, x_k>)``, ``σ(z) = max(z, γ z)`` (Eq. (1))."""
    Z = X @ W.T
    return np.where(Z > 0, Z, gamma * Z) @ a


def loss_derivative(h: np.ndarray, y: np.ndarray, loss: str) -> np.ndarray:
    """``∂_1 ℓ(h, y)``: square ``h − y``; logistic ``−y / (1 + e^{h y})``."""
    if loss == "square":
        return h - y
    return -y * expit(-h * y)


def loss_value(W: np.ndarray, a: np.ndarray, X: np.ndarray, y: np.ndarray, gamma: float,
               loss: str) -> float:
    """``L(θ) = (1/n) Σ_k ℓ(h(x_k), y_k)`` with ``ℓ = ½(h − y)²`` or ``ln(1 + e^{−h y})``."""
    h = outputs(W, a, X, gamma)
    if loss == "square":
        return float(np.mean(0.5 * (h - y) ** 2))
    return float(np.mean(np.logaddexp(0.0, -h * y)))


# ---------------------------------------------------------------------------- γ = 1
def linear_flow(X, y, W0, a0, loss: str, times, rtol: float = 1e-13) -> tuple[np.ndarray,
                                                                               np.ndarray]:
    """Eq. (2) for ``γ = 1``: ``σ`` is the identity, the network ``h(x) = <Σ_j a_j w_j, x>``
    is smooth in ``θ``, and the flow is the ODE ``dw_j/dt = −a_j g``, ``da_j/dt = −<w_j, g>``
    with ``g = (1/n) Σ_k ∂_1ℓ(h(x_k), y_k) x_k``: integrated on the full state by scipy's
    DOP853 (``rtol``, ``atol = 1e-3 rtol``), with no event and none of pwflow's maths.
    Returns ``W (len(times), m, d)`` and ``a (len(times), m)``."""
    from scipy.integrate import solve_ivp

    X, y = np.asarray(X, float), np.asarray(y, float)
    m, d = np.shape(W0)
    n = X.shape[0]

    def field(_t, z):
        W, a = z[: m * d].reshape(m, d), z[m * d:]
        g = X.T @ loss_derivative(X @ (W.T @ a), y, loss) / n
        return np.concatenate([(-a[:, None] * g[None, :]).ravel(), -(W @ g)])

    times = np.atleast_1d(np.asarray(times, float))
    z0 = np.concatenate([np.asarray(W0, float).ravel(), np.asarray(a0, float)])
    sol = solve_ivp(field, (0.0, float(times[-1])), z0, method="DOP853", t_eval=times,
                    rtol=rtol, atol=1e-3 * rtol)
    if not sol.success:
        raise RuntimeError(f"linear_flow: solve_ivp failed: {sol.message}")
    Z = sol.y.T
    return Z[:, : m * d].reshape(-1, m, d), Z[:, m * d:]


# ---------------------------------------------------------------------------- SciPy's events
#: kinds of :func:`filippov_events`' rows (pwflow's own codes are not used here)
CROSS, ENTER, LEAVE = "cross", "enter", "leave"


@dataclass(frozen=True)
class FilippovRun:
    """What :func:`filippov_events` integrated: the events ``(t, j, k, kind)`` in time order,
    the time it reached, the state ``(m, d + 1)`` there, and why it stopped before ``t_end``
    (``""``: it did not)."""

    events: list
    t: float
    Z: np.ndarray
    stopped: str


def _fixed_slopes(Z: np.ndarray, U: np.ndarray, X, y, gamma: float, loss: str):
    """``σ'`` of the pairs off their hyperplanes on the pattern ``U`` (``+1`` active, ``−1``
    inactive, ``0`` sliding, read as 0 here), and ``r``."""
    d = X.shape[1]
    eta = np.where(U > 0, 1.0, gamma)
    eta[U == 0] = 0.0
    return eta, loss_derivative(((Z[:, :d] @ X.T) * eta).T @ Z[:, d], y, loss)


def _sliding_system(eta: np.ndarray, r: np.ndarray, j: int, K: np.ndarray, X):
    """The slopes ``η_K`` that keep neuron ``j`` on the hyperplanes ``K`` (``<D_j, x_l> = 0``,
    ``l ∈ K``) solve ``G η_K = c`` with ``G_lk = <x_l, x_k> r_k`` and ``c_l = n <b, x_l>``,
    ``b = −(1/n) Σ_{i∉K} η_ji r_i x_i`` (``eta`` from :func:`_fixed_slopes`)."""
    n = X.shape[0]
    XK = X[K]
    b = -((eta[j] * r) @ X) / n
    return (XK @ XK.T) * r[K][None, :], n * (XK @ b)


def _slope_terms(eta: np.ndarray, r: np.ndarray, j: int, K: np.ndarray, i: int, X):
    """``η_{K_i} = N / Δ`` of neuron ``j`` sliding on ``K`` (:func:`_sliding_system`) by
    Cramer's rule: ``Δ = det G`` and ``N`` the determinant with column ``i`` replaced by
    ``c``, both smooth in time (on one hyperplane ``N = n <b, x_k>``, ``Δ = r_k ‖x_k‖²``)."""
    G, c = _sliding_system(eta, r, j, K, X)
    Gi = G.copy()
    Gi[:, i] = c
    return float(np.linalg.det(Gi)), float(np.linalg.det(G))


def _slopes(Z: np.ndarray, U: np.ndarray, X, y, gamma: float, loss: str):
    """``σ'`` of every pair on the pattern ``U``, a neuron's sliding pairs ``K`` (``U = 0``)
    at the values that keep it on their hyperplanes (:func:`_sliding_system`); and ``r``."""
    eta, r = _fixed_slopes(Z, U, X, y, gamma, loss)
    fixed = eta.copy()
    for j in np.flatnonzero(np.any(U == 0, axis=1)).tolist():
        K = np.flatnonzero(U[j] == 0)
        G, c = _sliding_system(fixed, r, j, K, X)
        eta[j, K] = np.linalg.solve(G, c)
    return eta, r


def filippov_events(X, y, W0, a0, gamma: float, loss: str, t_end: float,
                    rtol: float = 1e-12, simultaneous: float = 1e-9,
                    max_step: float = 0.01, fitted: float = 1e-6) -> FilippovRun:
    """Eq. (2) as a Filippov system, by SciPy alone: ``solve_ivp`` (DOP853, ``rtol``,
    ``atol = rtol / 100``) on the full state ``(W, a)`` with the gradient written out here
    (``dw_j/dt = a_j D_j``, ``da_j/dt = <w_j, D_j>``, ``D_j = −(1/n) Σ_k r_k η_jk x_k``), the
    slopes of a neuron sliding on the hyperplanes ``K`` those that hold it on all of them
    (:func:`_sliding_system`).  One terminal event function per pair: ``<w_j, x_k>`` off the
    hyperplane; on it ``η_jk − 1`` and ``η_jk − γ``, read as ``±(N − Δ)`` and
    ``±(N − γ Δ)`` with ``η_jk = N / Δ`` by Cramer's rule (:func:`_slope_terms`: ``η_jk``
    itself has a pole where some ``r_l``, ``l ∈ K``, passes 0, and a step across a bound
    and the pole sees one sign at both ends), ``r_k`` and ``a_j``.  It restarts at each
    event and decides it (Filippov):

    * a neuron off every hyperplane meeting ``x_k``'s: a crossing where the two sides'
      normal velocities ``a_j <D_j^±, x_k>`` agree, a sliding entry where they point at each
      other (the neuron projected onto the hyperplane);
    * a sliding slope reaching a bound: an exit to the bound's side (with every neuron of
      the same pattern: the slopes depend on the pattern alone);
    * a neuron sliding on ``x_K`` meeting ``x_k``'s hyperplane: the minimal-norm rule on
      each side by enumeration (:func:`_sliding_arrival`): across, or onto ``x_k`` too,
      leaving the ``x_K`` whose slopes are at a bound (the neuron projected onto the
      hyperplanes it is held on).

    A start within 512 ulp of a hyperplane is on it, decided by the minimal-norm rule there
    (held, or an exit at t = 0).  It stops (``stopped`` says why) at anything else: a start
    that rule does not decide clearly, two events within ``simultaneous``
    (relative) of each other, a tangent or repulsive arrival, ``a_j = 0`` or ``r_k = 0``
    while sliding, a sliding pair's ``|r_k|`` below ``fitted`` (problem 10 127 of
    ``explore_scipy.py``: its slope read from noise, pwflow logged exits and re-entries
    there that this one did not, states 1.8e-13 apart), an arrival the minimal-norm rule
    does not decide clearly (a slope at a bound whose velocity points back, dependent
    hyperplanes, ``w → 0``).  SciPy reads the
    event functions' signs at its step ends only, so a pair that crosses and comes back
    within one step is not seen: at ``rtol = 1e-12`` DOP853 took steps of 0.28 on smooth
    stretches and missed a crossing followed by a return on the unswitched field (d = 5,
    t = 4.48), hence ``max_step``.  It stops where every ``|r_k|`` falls below ``fitted``:
    near a global minimum a sliding slope ``η* = <b, x_k> n / (r_k ‖x_k‖²)`` is a ratio of
    two vanishing numbers, read from noise by any integrator (d = 7, ``r ~ 1e-8`` at t = 3:
    pwflow and this one log different exits and re-entries there, their states 2.4e-11
    apart); and at an exit whose slope is made of residuals below ``fitted`` alone
    (:func:`_exit_from_noise`).  It shares no code with pwflow."""
    from scipy.integrate import solve_ivp

    X, y = np.asarray(X, float), np.asarray(y, float)
    n, d = X.shape
    m = np.shape(W0)[0]
    S0 = np.asarray(W0, float) @ X.T
    U = np.sign(S0).astype(int)
    # a start within rounding of a hyperplane (512 ulp of ‖w‖ ‖x_k‖: a neuron projected onto
    # hyperplanes in floating point lands 1e-16 to 1e-13 off them) is on it
    U[np.abs(S0) <= 512 * np.finfo(float).eps * np.outer(
        np.linalg.norm(np.asarray(W0, float), axis=1), np.linalg.norm(X, axis=1))] = 0
    Z = np.hstack([np.asarray(W0, float), np.asarray(a0, float)[:, None]])
    t, events = 0.0, []
    switched: set = set()  # pairs sent off their hyperplane at the current time
    last = None  # the last event's (t, j, k)
    slopes = functools.partial(_slopes, X=X, y=y, gamma=gamma, loss=loss)
    fixed = functools.partial(_fixed_slopes, X=X, y=y, gamma=gamma, loss=loss)

    # neurons started on hyperplanes: each decided by the minimal-norm rule over its slopes
    # there (held, or off to a bound's side, logged as an exit at t = 0); unclear: stop
    for j in np.flatnonzero(np.any(U == 0, axis=1)).tolist():
        S = np.flatnonzero(U[j] == 0)
        start = _min_norm_sides(Z, U, j, S, fixed, gamma, simultaneous)
        if start is None or not np.any(Z[j, :d]):
            return FilippovRun(events, 0.0, Z, "a start on hyperplanes not decided clearly")
        U[j, S] = start[1]
        Z[[j], :d] = _onto_hyperplanes(Z[[j], :d], X[S[start[1] == 0]])
        events.extend((0.0, j, int(k), LEAVE) for k in S[start[1] != 0].tolist())
        switched |= {(j, int(k)) for k in S[start[1] != 0].tolist()}

    def velocity(Z, UU, j, k):  # a_j <D_j, x_k> on the pattern UU, and its terms' size
        eta, r = slopes(Z, UU)
        terms = np.sum(np.abs(r) * np.linalg.norm(X, axis=1)) / n
        size = abs(Z[j, d]) * np.linalg.norm(X[k]) * terms
        return Z[j, d] * (-((eta[j] * r) @ X) / n @ X[k]), size, eta

    while t < t_end:
        def field(_t, zz, U=U):
            Zc = zz.reshape(m, d + 1)
            eta, r = slopes(Zc, U)
            D = -((eta * r) @ X) / n
            return np.hstack([Zc[:, d:] * D, np.einsum("ij,ij->i", Zc[:, :d], D)[:, None]]).ravel()

        funcs, what = [], []
        fresh, switched = switched, set()
        for j, k in itertools.product(range(m), range(n)):
            if U[j, k] != 0:
                # a pair switched at this segment's start is at 0 there to rounding, of either
                # sign: read s − s_start + its rounding, of the new side's sign from the start
                # (SciPy missed its return within the first step where the rounding had the
                # old side's sign; without the rounding term a first step that moved s by
                # −1 ulp was a crossing back at the start, again and again)
                s0, eps = 0.0, 0.0
                if (j, k) in fresh:
                    s0 = Z[j, :d] @ X[k]
                    eps = (U[j, k] * 16 * np.finfo(float).eps * np.linalg.norm(Z[j, :d])
                           * np.linalg.norm(X[k]))

                def crossing(_t, zz, j=j, k=k, s0=s0, eps=eps):
                    return zz[j * (d + 1): j * (d + 1) + d] @ X[k] - s0 + eps
                crossing.terminal, crossing.direction = True, -U[j, k]
                funcs.append(crossing)
                what.append((j, k, CROSS, 0))
                continue
            # η_k − bound = (N − bound Δ) / Δ (Cramer, :func:`_slope_terms`): read as
            # ±(N − bound Δ), without the pole where some r_l, l ∈ K, passes 0 (η_k through
            # ±∞ there: a step across the bound and the pole saw one sign at both ends, and
            # missed the exit)
            K = np.flatnonzero(U[j] == 0)
            i = int(np.searchsorted(K, k))
            sgn = 1.0 if _slope_terms(*fixed(Z, U), j, K, i, X)[1] >= 0 else -1.0
            for bound, side in ((1.0, 1), (gamma, -1)):
                def exit_(_t, zz, j=j, K=K, i=i, U=U, bound=bound, sgn=sgn):
                    N, det = _slope_terms(*fixed(zz.reshape(m, d + 1), U), j, K, i, X)
                    return sgn * (N - bound * det)
                exit_.terminal, exit_.direction = True, side
                funcs.append(exit_)
                what.append((j, k, LEAVE, side))

            def pole(_t, zz, k=k, U=U):
                return fixed(zz.reshape(m, d + 1), U)[1][k]
            pole.terminal = True
            funcs.append(pole)
            what.append((j, k, "a sliding pair's residual through 0", 0))

            # a fitted point's slope is a ratio of vanishing numbers (as every slope near a
            # global minimum, below): read from noise by any integrator
            def fit(_t, zz, k=k, U=U):
                return abs(fixed(zz.reshape(m, d + 1), U)[1][k]) - fitted
            fit.terminal = True
            funcs.append(fit)
            what.append((j, k, "a sliding pair's residual below `fitted`", 0))

            def flip(_t, zz, j=j):
                return zz[j * (d + 1) + d]
            flip.terminal = True
            funcs.append(flip)
            what.append((j, k, "a = 0 while sliding", 0))

        def residuals(_t, zz, U=U):
            return np.max(np.abs(slopes(zz.reshape(m, d + 1), U)[1])) - fitted
        residuals.terminal = True
        funcs.append(residuals)
        what.append((-1, -1, "every residual below `fitted`", 0))
        sol = solve_ivp(field, (t, t_end), Z.ravel(), method="DOP853", rtol=rtol,
                        atol=rtol / 100, events=funcs, max_step=max_step)
        if sol.status == -1:
            return FilippovRun(events, t, Z, f"solve_ivp: {sol.message}")
        if sol.status == 0:
            return FilippovRun(events, t_end, sol.y[:, -1].reshape(m, d + 1), "")
        hits = sorted((float(te[0]), i) for i, te in enumerate(sol.t_events) if te.size)
        t, i = hits[0]
        Z = sol.y_events[i][0].reshape(m, d + 1).copy()
        if len(hits) > 1 and hits[1][0] - t <= simultaneous * (1.0 + t):
            return FilippovRun(events, t, Z, "simultaneous events")
        j, k, kind, side = what[i]
        if (t, j, k) == last:  # a guard: the same pair again at its own time, decided already
            return FilippovRun(events, t, Z, "an event found again where it was decided")
        last = (t, j, k)
        if kind not in (LEAVE, CROSS):
            return FilippovRun(events, t, Z, kind)
        # the pairs this event switches: every neuron of the pattern (an exit), or the
        # neuron's exact copies (a crossing: SciPy records one of several terminal events)
        own = (np.all(U == U[j], axis=1) if kind == LEAVE
               else np.all(Z == Z[j], axis=1) & np.all(U == U[j], axis=1))
        # SciPy keeps no event after the first terminal one in a step, however close: any
        # other pair at its own event here (an offset at 0, a sliding slope at a bound)
        # stops the run
        eta = slopes(Z, U)[0]
        busy = np.where(U != 0, U * (Z[:, :d] @ X.T) <= simultaneous * np.outer(
            np.linalg.norm(Z[:, :d], axis=1), np.linalg.norm(X, axis=1)),
            (np.abs(eta - 1.0) <= simultaneous) | (np.abs(eta - gamma) <= simultaneous))
        busy[own, k] = False
        if np.any(busy):
            return FilippovRun(events, t, Z, "simultaneous events")
        copies = np.flatnonzero(own)
        if kind == LEAVE and _exit_from_noise(Z, U, j, fixed, fitted):
            return FilippovRun(events, t, Z, "an exit decided by residuals below `fitted`")
        if kind == LEAVE:
            events.extend((t, int(jj), k, LEAVE) for jj in copies.tolist())
            U[copies, k] = side
            switched |= {(int(jj), k) for jj in copies.tolist()}
            continue
        sliding = np.flatnonzero(U[j] == 0)
        if sliding.size:  # x_k met while sliding on x_K: across, or a minimal-norm choice
            decided = _sliding_arrival(Z, U, j, k, fixed, gamma, simultaneous)
            if decided is None:
                return FilippovRun(events, t, Z, "a sliding neuron meets another hyperplane")
            row, rows = decided
            U[copies] = row
            switched |= {(int(jj), kk) for jj in copies.tolist() for kk, _ in rows
                         if row[kk] != 0}
            Z[copies, :d] = _onto_hyperplanes(Z[copies, :d], X[row == 0])
            events.extend((t, int(jj), kk, kind) for jj in copies.tolist() for kk, kind in rows)
            continue
        plus, minus = U.copy(), U.copy()
        plus[j, k], minus[j, k] = 1, -1
        (vp, scale, _), (vm, _, _) = velocity(Z, plus, j, k), velocity(Z, minus, j, k)
        if min(abs(vp), abs(vm)) <= 1e-8 * scale:
            return FilippovRun(events, t, Z, "tangent")
        if vp * vm > 0:
            U[copies, k] = int(np.sign(vp))
            switched |= {(int(jj), k) for jj in copies.tolist()}
            events.extend((t, int(jj), k, CROSS) for jj in copies.tolist())
        elif vp < 0 < vm:
            U[copies, k] = 0
            Z[copies, :d] = _onto_hyperplanes(Z[copies, :d], X[[k]])
            events.extend((t, int(jj), k, ENTER) for jj in copies.tolist())
        else:
            return FilippovRun(events, t, Z, "repulsive")
    return FilippovRun(events, t, Z, "")


def _exit_from_noise(Z, U, j, fixed, fitted) -> bool:
    """Whether neuron ``j``'s sliding slopes are read from residuals of noise: every ``r_i``
    of the points that move it off its hyperplanes (``i ∉ K`` with ``η_ji ≠ 0``, the terms
    of ``b`` in :func:`_sliding_system`) has ``|r_i| <= fitted``.  Then ``N`` is a sum of
    vanishing numbers, and the exit its sign change in their noise (session 55's draw,
    d = 8, n = 2: ``|r_1| <= 5e-13`` throughout, an exit logged 1.88 after the entry while
    ``D = 0`` held the neuron, the states 1.1e-12 apart)."""
    eta, r = fixed(Z, U)
    return not np.any(np.abs(r[(U[j] != 0) & (eta[j] != 0)]) > fitted)


def _onto_hyperplanes(W: np.ndarray, XS: np.ndarray) -> np.ndarray:
    """The rows of ``W`` projected orthogonally onto ``{w : <w, x> = 0, x ∈ XS}`` (``XS``
    independent; none: ``W`` as it is)."""
    if XS.shape[0] == 0:
        return W
    return W - np.linalg.solve(XS @ XS.T, XS @ W.T).T @ XS


def _min_norm_sides(Z, pattern, j, S, fixed, gamma, simultaneous):
    """The minimal-norm element ``D`` of ``𝔇`` over ``η_S ∈ [γ, 1]^S`` for neuron ``j`` on
    ``pattern`` (Eq. (6), by enumeration, :func:`_enumerate`; the other slopes as the
    pattern has them), and the side each ``l ∈ S`` takes: 0 (held) where ``η_l`` is inside
    ``(γ, 1)``, the bound's side where it is at a bound and its normal velocity points there
    by more than ``1e-8`` of its terms; ``None`` where that is not clear-cut (a slope within
    ``simultaneous`` of a bound, a velocity at a bound pointing back or below the margin,
    ``x_S`` dependent or more than ``d − 1`` of them)."""
    X = fixed.keywords["X"]
    n, d = X.shape
    if S.size > d - 1 or np.linalg.matrix_rank(X[S]) < S.size:
        return None
    eta0, r = fixed(Z, pattern)
    b = -((eta0[j] * r) @ X) / n
    C = -(X[S] * r[S][:, None]).T / n  # D = b + C η_S
    eta = _enumerate(b, C, gamma, 1.0)
    D = b + C @ eta
    xn = np.linalg.norm(X, axis=1)
    scale = abs(Z[j, d]) * xn * np.sum(np.abs(r) * xn) / n  # a velocity's terms, per l
    sides = np.zeros(S.size, dtype=int)
    for i, (kk, e) in enumerate(zip(S.tolist(), eta.tolist(), strict=True)):
        if gamma + simultaneous < e < 1.0 - simultaneous:
            continue
        if e not in (gamma, 1.0) or gamma == 1.0:
            return None
        sides[i] = 1 if e == 1.0 else -1
        if Z[j, d] * (D @ X[kk]) * sides[i] <= 1e-8 * scale[kk]:
            return None
    return D, sides, scale


def _sliding_arrival(Z, U, j, k, fixed, gamma, simultaneous):
    """Neuron ``j``, sliding on ``x_K``, meets ``x_k``'s hyperplane (Filippov, decided by the
    minimal-norm rule on each side, :func:`_min_norm_sides`):

    * across, where on the far side of ``x_k`` the minimal-norm element over ``η_K`` moves
      it on across (a crossing; the ``x_K`` whose slopes are there at a bound are left);
    * otherwise, onto ``x_k`` where the minimal-norm element over ``η_{K ∪ {k}}`` holds it
      there (an entry; again with exits from the ``x_K`` at a bound).

    Returns the new pattern row and the rows ``(l, kind)`` to log, or ``None`` where the
    rule is not clear-cut or sends it back to the side it came from."""
    X = fixed.keywords["X"]
    d = X.shape[1]
    K = np.flatnonzero(U[j] == 0)
    after = U.copy()
    after[j, k] = -U[j, k]
    far = _min_norm_sides(Z, after, j, K, fixed, gamma, simultaneous)
    if far is not None:
        D, sides, scale = far
        if Z[j, d] * (D @ X[k]) * after[j, k] > 1e-8 * scale[k]:
            row = after[j].copy()
            row[K] = sides
            return row, [(k, CROSS)] + [(kk, LEAVE) for kk in K[sides != 0].tolist()]
    on = U.copy()
    KK = np.union1d(K, [k])
    on[j, KK] = 0
    held = _min_norm_sides(Z, on, j, KK, fixed, gamma, simultaneous)
    if held is None or held[1][np.searchsorted(KK, k)] != 0:
        return None
    row = on[j].copy()
    row[KK] = held[1]
    return row, [(k, ENTER)] + [(kk, LEAVE) for kk in K[row[K] != 0].tolist()]


@dataclass(frozen=True)
class FilippovComparison:
    """A run's events against :func:`filippov_events`' up to the first event either does
    not model (:func:`compare_with_filippov`): both lists of ``(t, j, k, kind)`` before the
    ``cut`` (just before the comparison's end ``t``, whose own events are left out), in time
    order, the largest distance of a neuron's state at ``t`` relative to its norm, and why
    the reference stopped (``""``: it did not)."""

    mine: list
    theirs: list
    cut: float
    t: float
    state: float
    stopped: str


def compare_with_filippov(traj, X, y, W0, a0, gamma: float, loss: str,
                          t_max: float) -> FilippovComparison:
    """pwflow's run ``traj`` (to ``t_max``) against :func:`filippov_events` on the same
    problem, up to the first event of a kind the reference does not model (pwflow's kinds
    are read, not its maths) or where the reference stops."""
    from pwflow import EventKind  # the event codes only

    kinds = {EventKind.CROSSING: CROSS, EventKind.ENTER_SLIDING: ENTER,
             EventKind.LEAVE_SLIDING: LEAVE}
    ev = traj.events
    rows = [(float(t), int(j), int(k), kinds.get(EventKind(c)))
            for t, j, k, c in zip(ev["t"], ev["neuron"], ev["k"], ev["kind"], strict=True)]
    t_stop = min([r[0] for r in rows if r[3] is None] + [t_max])
    ref = filippov_events(X, y, W0, a0, gamma, loss, t_stop)
    t_cmp = min(t_stop, ref.t)
    cut = t_cmp - 1e-6 * (1.0 + t_cmp)
    z_ref = ref.Z if ref.t == t_cmp else filippov_events(X, y, W0, a0, gamma, loss, t_cmp).Z
    W, a = traj.state(t_cmp)
    state = float(np.max(np.linalg.norm(np.c_[W, a] - z_ref, axis=1)
                         / np.linalg.norm(z_ref, axis=1)))
    return FilippovComparison(_in_time_order([r for r in rows if r[0] < cut]),
                              _in_time_order([e for e in ref.events if e[0] < cut]), cut,
                              t_cmp, state, ref.stopped)


def _in_time_order(rows: list, tie: float = 1e-9) -> list:
    """``(t, j, k, kind)`` rows by time, rows within ``tie`` (relative, the reference's
    ``simultaneous``) of the one before them taken as simultaneous and ordered by
    ``(j, k, kind)``: an integrator's exact copies of a neuron can be located apart (pwflow's
    copies 3e-16 and 1.1e-11 apart, in the other order than their indices)."""
    rows = sorted(rows)
    groups: list[list] = []
    for r in rows:
        if groups and r[0] - groups[-1][-1][0] <= tie * (1.0 + abs(r[0])):
            groups[-1].append(r)
        else:
            groups.append([r])
    return [r for g in groups for r in sorted(g, key=lambda r: r[1:])]


# ---------------------------------------------------------------------------- gradient descent
def _gd_run(X, y, W0, a0, gamma, loss, lr, save_steps):
    """Gradient descent from ``(W0, a0)``; iterates at the (sorted) ``save_steps``."""
    n = X.shape[0]
    Xt = np.ascontiguousarray(X.T)
    Wt = np.array(W0, dtype=float).T.copy()  # (d, m)
    a = np.array(a0, dtype=float)
    logistic = loss == "logistic"
    out_W, out_a = [], []
    k = 0
    for target in save_steps:
        while k < target:
            Z = X @ Wt  # (n, m)
            pos = Z > 0
            if gamma == 0.0:
                act = Z * pos
                eta = pos
            else:
                act = np.where(pos, Z, gamma * Z)
                eta = np.where(pos, 1.0, gamma)
            h = act @ a
            r = (-y * expit(-h * y) if logistic else h - y) * (lr / n)
            ga = r @ act
            Wt -= (Xt @ (eta * r[:, None])) * a
            a -= ga
            k += 1
        out_W.append(Wt.T.copy())
        out_a.append(a.copy())
    return np.array(out_W), np.array(out_a)


@dataclass(frozen=True)
class GDReference:
    """Richardson-extrapolated gradient descent at the times ``t``, with an error estimate
    from four steps (three nested, one off their grid).

    Attributes
    ----------
    t : (k,) times (multiples of ``lr``)
    W, a : (k, m, d), (k, m) extrapolated states ``2 θ(lr/4) − θ(lr/2)``
    W1, a1, W2, a2 : the runs at ``lr`` and ``lr/2`` (the one at ``lr/4`` enters ``W, a``)
    loss : (k,) loss at the extrapolated states
    loss1, loss2 : (k,) losses of the runs at ``lr`` and ``lr/2``
    gap : (k,) the error estimate: the largest of ``‖θ(lr) − θ(lr/2)‖``, ``‖θ(lr/2) −
        θ(lr/4)‖`` and the distance between the two extrapolations (Euclidean over all of
        ``W`` and ``a``).  Two steps are not enough: where an event falls inside a step, or
        gradient descent chatters across a sliding hyperplane, its error is a sawtooth in
        ``lr`` and one pair of steps can agree by chance (a d = 5 crossing: ``6.4e-7`` at
        ``lr = 1e-3`` against ``2.0e-5`` at ``5e-4``).  Nested steps can also agree for
        every pair: an event just before a multiple of ``lr`` is the same distance from the
        next grid point of all three, so their errors are equal and cancel in every
        difference (a d = 4 crossing at ``t = 0.016955``: ``6.4e-6`` from the flow, gap
        ``5.4e-7``).  Hence a fourth run at ``lr/3.9`` (:data:`OFF_GRID`), whose grid meets
        ``lr``'s only every ``10 lr``: ``‖θ(lr/4) − θ(lr/3.9)‖`` enters the gap too (where
        the times are multiples of that step).
    gap_loss : (k,) ``|L(θ(lr)) − L(θ(lr/2))|``
    band : (k,) the chattering band: gradient descent on a sliding hyperplane jumps across it
        every few steps, so its iterates sit up to one step off the flow's (which stays on
        it), by an offset that is not smooth in ``lr`` and that no extrapolation removes.
        ``sqrt(Σ_j δ_j²)`` over the neurons that lie within one step ``δ_j = lr |a_j| (1/n)
        Σ_k |r_k| ‖x_k‖`` (a bound on the step of ``w_j``; ``a_j``'s step does not depend on
        the side, ``w_j`` being orthogonal to the ``x_k`` it chatters across) of a hyperplane
        in one of the three runs (the residue of ``2 θ(lr/4) − θ(lr/2)`` is at most
        ``2 δ(lr/4) + δ(lr/2) = δ(lr)``); 0 where none does.
    lr : float
    """

    t: np.ndarray
    W: np.ndarray
    a: np.ndarray
    W1: np.ndarray
    a1: np.ndarray
    W2: np.ndarray
    a2: np.ndarray
    loss: np.ndarray
    loss1: np.ndarray
    loss2: np.ndarray
    gap: np.ndarray
    gap_loss: np.ndarray
    band: np.ndarray
    lr: float

    def estimate(self, i: int) -> float:
        """The error estimate at the ``i``-th time: ``gap + 2 band``."""
        return float(self.gap[i] + 2.0 * self.band[i])

    def error(self, W: np.ndarray, a: np.ndarray, i: int) -> float:
        """``‖θ − θ_ext‖`` at the ``i``-th time (Euclidean over ``W`` and ``a``)."""
        return float(np.sqrt(np.sum((W - self.W[i]) ** 2) + np.sum((a - self.a[i]) ** 2)))

    def bound(self, W: np.ndarray, a: np.ndarray, i: int) -> float:
        """What :meth:`error` may reach at the ``i``-th time for a flow state ``(W, a)``:
        ``max(C_GAP · estimate, ATOL_GD · (1 + ‖θ‖))`` (the comparison of every test and
        campaign against extrapolated gradient descent)."""
        size = float(np.sqrt(np.sum(W**2) + np.sum(a**2)))
        return max(C_GAP * self.estimate(i), ATOL_GD * (1.0 + size))


#: the fourth run's step is ``lr / OFF_GRID`` (:attr:`GDReference.gap`)
OFF_GRID = 3.9


def gd_reference(X, y, W0, a0, gamma: float, loss: str, times, lr: float = 1e-3) -> GDReference:
    """Gradient descent at ``lr``, ``lr/2`` and ``lr/4`` from ``(W0, a0)``, extrapolated at
    ``times`` from the two finest (:class:`GDReference`).

    ``times`` are rounded to multiples of ``lr`` (pass multiples of ``lr``).
    """
    X = np.asarray(X, float)
    y = np.asarray(y, float)
    times = np.atleast_1d(np.asarray(times, float))
    steps = np.rint(times / lr).astype(np.int64)
    if np.any(np.abs(steps * lr - times) > 1e-9 * np.maximum(1.0, times)):
        raise ValueError(f"times must be multiples of lr = {lr}, got {times}")
    order = np.argsort(steps)
    if np.any(order != np.arange(order.size)):
        raise ValueError("times must be increasing")
    W1, a1 = _gd_run(X, y, W0, a0, gamma, loss, lr, steps)
    W2, a2 = _gd_run(X, y, W0, a0, gamma, loss, lr / 2, 2 * steps)
    W4, a4 = _gd_run(X, y, W0, a0, gamma, loss, lr / 4, 4 * steps)
    We, ae = 2 * W4 - W2, 2 * a4 - a2

    def dist(Wp, ap, Wq, aq):
        return np.sqrt(np.sum((Wp - Wq) ** 2, axis=(1, 2)) + np.sum((ap - aq) ** 2, axis=1))

    spread = [dist(W1, a1, W2, a2), dist(W2, a2, W4, a4), dist(We, ae, 2 * W2 - W1, 2 * a2 - a1)]
    off = times * OFF_GRID / lr
    if np.all(np.abs(off - np.rint(off)) <= 1e-9 * np.maximum(1.0, off)):
        Wo, ao = _gd_run(X, y, W0, a0, gamma, loss, lr / OFF_GRID, np.rint(off).astype(np.int64))
        spread.append(dist(W4, a4, Wo, ao))
    gap = np.maximum.reduce(spread)
    band = np.array([_chatter_band(X, y, gamma, loss, lr, [(W1[i], a1[i]), (W2[i], a2[i]),
                                                             (W4[i], a4[i])])
                     for i in range(steps.size)])
    L1 = np.array([loss_value(W1[i], a1[i], X, y, gamma, loss) for i in range(steps.size)])
    L2 = np.array([loss_value(W2[i], a2[i], X, y, gamma, loss) for i in range(steps.size)])
    Le = np.array([loss_value(We[i], ae[i], X, y, gamma, loss) for i in range(steps.size)])
    return GDReference(times, We, ae, W1, a1, W2, a2, Le, L1, L2, gap, np.abs(L1 - L2), band,
                       lr)


def gd_refined(X, y, W0, a0, gamma: float, loss: str, t: float, lrs) -> GDReference:
    """Gradient descent at two small steps ``lrs = (lr1, lr2)`` (``lr2 = lr1 / 2``) up to one
    time ``t``, extrapolated ``2 θ(lr2) − θ(lr1)``; ``gap`` is ``‖θ(lr1) − θ(lr2)‖`` (no band:
    the chattering is ``O(lr)``, inside the gap at these steps).  For the rare checks of a
    reference at a coarser step (the cost is ``3 t / lr1`` steps)."""
    X = np.asarray(X, float)
    y = np.asarray(y, float)
    runs = [_gd_run(X, y, W0, a0, gamma, loss, lr, np.array([int(round(t / lr))]))
            for lr in lrs]
    (W1, a1), (W2, a2) = [(Wr[0], ar[0]) for Wr, ar in runs]
    We, ae = 2 * W2 - W1, 2 * a2 - a1
    gap = np.array([np.sqrt(np.sum((W1 - W2) ** 2) + np.sum((a1 - a2) ** 2))])
    L = [np.array([loss_value(Wv, av, X, y, gamma, loss)]) for Wv, av in
         ((We, ae), (W1, a1), (W2, a2))]
    return GDReference(np.array([t]), We[None], ae[None], W1[None], a1[None], W2[None],
                       a2[None], L[0], L[1], L[2], gap, np.abs(L[1] - L[2]), np.zeros(1),
                       float(lrs[0]))


def finer_gd_agrees(X, y, W0, a0, gamma: float, loss: str, traj, t: float, lrs):
    """Whether the run ``traj`` is within ``C_GAP`` gaps (plus ``ATOL_GD``) of gradient descent
    at the steps ``lrs`` (:func:`gd_refined`) at time ``t``; returns ``(agrees, reference)``
    (a failed comparison at a coarser step is then the coarse reference's fault, N6)."""
    fine = gd_refined(X, y, W0, a0, gamma, loss, t, lrs)
    W, a = traj.state(t)
    size = float(np.sqrt(np.sum(W**2) + np.sum(a**2)))
    return fine.error(W, a, 0) <= C_GAP * fine.gap[0] + ATOL_GD * (1 + size), fine


#: the steps of :func:`gd_subsequence_agrees`: ``1e-3 / 20`` halved three times
SUBSEQUENCE_LRS = (5e-5, 2.5e-5, 1.25e-5, 6.25e-6)


def gd_subsequence_agrees(X, y, W0, a0, gamma: float, loss: str, W, a, t: float,
                          lrs=SUBSEQUENCE_LRS) -> tuple[bool, list[float]]:
    """Whether gradient descent at the steps ``lrs`` splits into continuations of which the
    run's state ``(W, a)`` at ``t`` is the limit along a subsequence (``docs/paper-readings.md``,
    N9): with ``d_i`` the distance of gradient descent at ``lrs[i]`` to the run, the runs
    within ``1e-3 max_i d_i`` of it (the *near* ones) are at least two, the others at least
    one (a split: no limit over all steps), and the near ones converge to it (``d`` at the
    finest near step at most half that at the coarsest, as first order gives for a halving
    or more).  Where gradient descent has a limit the ``d_i`` are alike (all far, or all
    near: no split); where the run is off every continuation no step is near.  Returns
    ``(agrees, [d_i])``."""
    d = []
    for lr in lrs:
        Ws, As = _gd_run(np.asarray(X, float), np.asarray(y, float), W0, a0, gamma, loss, lr,
                         np.array([int(round(t / lr))], dtype=np.int64))
        d.append(float(np.sqrt(np.sum((Ws[0] - W) ** 2) + np.sum((As[0] - a) ** 2))))
    return subsequence_verdict(d), d


def subsequence_verdict(d) -> bool:
    """:func:`gd_subsequence_agrees`'s verdict on the distances ``d`` (coarse to fine steps)."""
    dist = np.asarray(d, float)
    near = np.flatnonzero(dist <= 1e-3 * dist.max())
    split = 2 <= near.size < dist.size
    return bool(split and dist[near[-1]] <= 0.5 * dist[near[0]])


#: the most steps, and ``steps × m n d``, :func:`converging_gd_agrees` spends on one
#: further level (about 30 s at the most steps on small problems)
CONVERGING_GD_STEPS, CONVERGING_GD_WORK = 2e6, 2e9


def converging_gd_agrees(X, y, W0, a0, gamma: float, loss: str, traj, t: float, levels,
                         coarse: float, shrink: float = 4.0):
    """:func:`finer_gd_agrees` down a ladder of step pairs ``levels`` (coarse to fine): the
    run agrees at the first level where it is within ``C_GAP`` gaps.  The first level is
    always tried; a further one only while the distance to the run shrank by ``shrink`` or
    more from the level before (``coarse``: the distance at the caller's own step), i.e.
    gradient descent converges to the run, as where it steps over a wedge at the coarser
    steps (N6), and while its cost, ``3 t / lr1`` steps of ``m n d`` work, stays within
    :data:`CONVERGING_GD_STEPS` and :data:`CONVERGING_GD_WORK`.  Returns
    ``(agrees, [(lr1, distance, gap), ...])``."""
    W, a = traj.state(t)
    work = W.shape[0] * W.shape[1] * np.asarray(X).shape[0]
    seen: list[tuple[float, float, float]] = []
    previous = coarse
    for lrs in levels:
        steps = 3 * t / lrs[0]
        if seen and (steps > CONVERGING_GD_STEPS or steps * work > CONVERGING_GD_WORK):
            break
        agrees, fine = finer_gd_agrees(X, y, W0, a0, gamma, loss, traj, t, lrs)
        distance = float(fine.error(W, a, 0))
        seen.append((float(lrs[0]), distance, float(fine.gap[0])))
        if agrees:
            return True, seen
        if distance * shrink > previous:  # not converging to the run: the verdict stands
            break
        previous = distance
    return False, seen


#: the step pairs of :func:`gd_from_state_agrees`, coarse to fine (``1e-3 / 20`` to
#: ``1e-3 / 500``), and the pieces it cuts its interval into
FROM_STATE_LADDER = ((5e-5, 2.5e-5), (1e-5, 5e-6), (2e-6, 1e-6))
FROM_STATE_PIECES = 10


def last_agreed(times, failed) -> float:
    """The last checked time before the first failed one (0: the start), from which
    :func:`gd_from_state_agrees` restarts gradient descent on the run's states."""
    return max((float(t) for t in times if t < failed[0]), default=0.0)


def gd_from_state_agrees(X, y, W0, a0, gamma: float, loss: str, traj, t0: float, t: float,
                         coarse: float, levels=FROM_STATE_LADDER,
                         pieces: int = FROM_STATE_PIECES):
    """Whether the run ``traj`` on ``[t0, t]`` is the vanishing-step limit of gradient descent
    piece by piece: on each of ``pieces`` equal intervals, gradient descent started from the
    run's own state at the interval's start must reach the run's state at its end (for a run
    that agreed with gradient descent from the start up to ``t0``; from ``t0 = 0`` the first
    piece starts from the problem's ``(W0, a0)``, not from the run's state).  A check of the
    run's local error against an independent integrator, as one checks an ODE solver's steps.

    Where gradient descent from the start is not near its limit at usual steps over part of
    the run: a near graze (a neuron turns back ``2.2e-8`` short of a hyperplane, relative
    margin ``1.1e-7``) that gradient descent at ``lr >= 1e-4`` carries across and, restarted
    0.2 before it, turns back as the flow does at ``lr <= 2e-5``; from the start it would need
    ``lr`` near ``1e-6`` over the whole run (hypothesis 6.170, thorough profile, d = 3,
    n = 9, integer data, N6).  Gradient descent's error over a piece is ``O(lr)`` times its
    length, not the run's.  The step pairs ``levels`` are tried coarse to fine while
    ``3 (t − t0) / lr1`` steps stay within :data:`CONVERGING_GD_STEPS` (and ``× m n d``
    within :data:`CONVERGING_GD_WORK`); the run agrees at a level where on every piece the
    refined gradient descent (:func:`gd_refined`) is *sharp*, its gap at most a tenth of
    ``coarse`` (the distance that failed), and the run is within its
    :meth:`GDReference.bound`.  A piece where the two steps part (one crosses, one turns
    back) has a large gap and fails the level.  Returns ``(agrees, [(lr1, worst distance,
    worst gap), ...])``."""
    ends = np.linspace(t0, t, pieces + 1)
    states = [traj.state(float(s)) for s in ends]
    if t0 == 0:
        states[0] = (np.asarray(W0, float), np.asarray(a0, float))
    W, _ = states[-1]
    work = W.shape[0] * W.shape[1] * np.asarray(X).shape[0]
    seen: list[tuple[float, float, float]] = []
    for lrs in levels:
        steps = 3 * (t - t0) / lrs[0]
        if steps > CONVERGING_GD_STEPS or steps * work > CONVERGING_GD_WORK:
            break
        worst, worst_gap, ok = 0.0, 0.0, True
        for (Wa, aa), (Wb, ab) in zip(states[:-1], states[1:], strict=True):
            fine = gd_refined(X, y, Wa, aa, gamma, loss, (t - t0) / pieces, lrs)
            err = fine.error(Wb, ab, 0)
            worst, worst_gap = max(worst, err), max(worst_gap, float(fine.gap[0]))
            ok = ok and fine.gap[0] <= coarse / 10 and err <= fine.bound(Wb, ab, 0)
        seen.append((float(lrs[0]), worst, worst_gap))
        if ok:
            return True, seen
    return False, seen


#: relative widths of :func:`wedge_continuation_agrees`: gradient descent checks the flow at
#: the first; from there the flow's distance to the run under test must shrink with the width
WEDGE_WIDTHS = (1e-3, 1e-4, 1e-5, 1e-6)
#: the least order in the width at which that distance must shrink, ``D(δ') / D(δ) <=
#: (δ' / δ)^WEDGE_ORDER`` (0.50 per decade): linear where the wedge moves the flow smoothly,
#: a square root where a neuron meets the wedge's hyperplane tangentially (the exit time
#: then moves as ``sqrt(δ)``: exploration seed 207 022); a run on another branch stays at
#: its distance
WEDGE_ORDER = 0.3
#: a thin wedge (:func:`thinnest_wedge`): a point within this of a span of others (relative)
WEDGE_MAX = 1e-6


def thinnest_wedge(X, lo: float = 1e-10, hi: float = WEDGE_MAX):
    """``(k, S, width)``: a point ``x_k`` within ``(lo, hi]`` (relative) of the span of other
    points ``x_S`` (``1 <= |S| <= d − 1``, the rows of ``S`` independent); ``None`` if there is
    none.  A *thin wedge*, whose two sides gradient descent at a practical step cannot tell
    apart (N6); ``lo`` is the rank cut below which the flow moves the point onto the span
    (``SPAN_RTOL``).  The smallest such ``S`` is taken (the relation itself, not a larger set
    containing it), and of its points the last (the one the flow's snap would move, and the
    one the exploration families plant), then the nearest span.  Brute force by least squares
    over every subset (for the campaign's small problems, n <= 12)."""
    X = np.asarray(X, float)
    n, d = X.shape
    U = X / np.linalg.norm(X, axis=1)[:, None]
    for size in range(1, min(d - 1, n - 1) + 1):
        best = None
        for S in itertools.combinations(range(n), size):
            A = U[list(S)].T
            if np.linalg.svd(A, compute_uv=False)[-1] <= np.sqrt(hi):
                continue  # the rows of S are (nearly) dependent: a smaller S has the wedge
            coef = np.linalg.lstsq(A, U.T, rcond=None)[0]
            dist = np.linalg.norm(U.T - A @ coef, axis=0)
            for k in range(n):
                if k not in S and lo < dist[k] <= hi and (
                        best is None or (k, -dist[k]) > (best[0], -best[2])):
                    best = (k, S, float(dist[k]))
        if best is not None:
            return best
    return None


def wedge_continuation_agrees(X, y, W0, a0, gamma: float, loss: str, state, t: float,
                              flow_state, lr: float, widths=WEDGE_WIDTHS):
    """Whether the state ``state = (W, a)`` of a flow at time ``t`` is the limit of flows on
    data whose thinnest wedge (:func:`thinnest_wedge`) is widened, the widest checked against
    gradient descent: a reference where gradient descent itself cannot resolve the wedge (N6;
    exploration seeds 300 106, 300 126: wedges 6.9e-10 and 1.4e-9).

    The point ``x_k`` of the wedge is ``p + δ ‖x_k‖ ξ`` (``p`` its projection on the span,
    ``ξ`` a unit vector orthogonal to it).  With ``δ`` replaced by each of ``widths``:

    * ``flow_state(X')`` (the caller's flow on the data ``X'``, its state at ``t``, or
      ``None`` if the run fails) must agree with gradient descent (:func:`gd_reference` at
      ``lr``) at the first width;
    * its distance ``D(δ)`` to ``state`` must fall at least as ``δ^WEDGE_ORDER`` (to at most
      0.50 of its value per decade of ``δ``), down to ``1e-8 (1 + ‖θ‖)``: a flow continuous
      in the data converges, linearly (``D ≈ L δ``) where the wedge moves it smoothly, as
      ``sqrt(δ)`` where a neuron meets the wedge's hyperplane tangentially; a run on
      another branch stays at its distance.

    Returns ``(agrees, why)``."""
    X = np.asarray(X, float)
    found = thinnest_wedge(X)
    if found is None:
        return False, "no thin wedge"
    k, S, _ = found
    Q = np.linalg.qr(X[list(S)].T)[0]
    p = Q @ (Q.T @ X[k])
    xi = (X[k] - p) / np.linalg.norm(X[k] - p)
    W, a = state
    size = float(np.sqrt(np.sum(W**2) + np.sum(a**2)))
    dists = []
    for i, width in enumerate(widths):
        Xw = X.copy()
        Xw[k] = p + width * np.linalg.norm(X[k]) * xi
        other = flow_state(Xw)
        if other is None:
            return False, f"the flow failed at width {width:g}"
        if i == 0:
            ref = gd_reference(Xw, y, W0, a0, gamma, loss, [t], lr)
            err, est = ref.error(*other, 0), ref.estimate(0)
            if err > ref.bound(*other, 0):
                return False, (f"gradient descent at width {width:g}: {err:.2e} from the flow "
                               f"({est:.2e} estimated)")
        dists.append(float(np.sqrt(np.sum((other[0] - W) ** 2) + np.sum((other[1] - a) ** 2))))
    floor = 1e-8 * (1 + size)
    for (w1, d1), (w2, d2) in itertools.pairwise(zip(widths, dists, strict=True)):
        if d2 > max((w2 / w1) ** WEDGE_ORDER * d1, floor):
            return False, (f"not converging: {d1:.2e} at width {w1:g}, {d2:.2e} at {w2:g} "
                           f"(wedge of x_{k} on the span of {list(S)})")
    return True, f"continuation over x_{k}'s wedge on the span of {list(S)}: {dists}"


def first_branch_after_start(traj, through_zero: bool = False) -> float:
    """The time of the run's first branch point after ``t = 0`` (``inf`` if none): there a
    sliding mode turns repulsive while gradient descent chatters across the hyperplane, and
    the side it then leaves to depends on where its step grid falls (the phase of ``t*/lr``),
    not on ``lr → 0``: gradient descent has no vanishing-step limit to compare with after it
    (``test_issue10_regressions.py::test_gd_side_at_a_branch_point_depends_on_the_step``;
    ``docs/paper-readings.md``, N5).  A branch at ``t = 0`` is decided by gradient descent's
    own first steps, not by chattering, and is compared.

    ``through_zero``: the branch points at ``w = 0`` are not counted (a neuron reaching 0
    with a consistent pass-through, logged with its REACH_ZERO, and a neuron leaving 0 after
    being held there, logged from the face ``u = 0``): there gradient descent's limit is
    what its own map near 0 does, which the ``'gd'`` policy claims to follow (sessions 37 and
    38; the held neurons' departures agree to a few hundredths of the error estimate)."""
    from pwflow import EventKind  # the event code only (no maths of pwflow's)

    ev = traj.events
    t, kind = np.asarray(ev["t"]), np.asarray(ev["kind"])
    branch = (kind == EventKind.BRANCH) & (t > 0)
    if through_zero:
        j = np.asarray(ev["neuron"])
        zero = kind == EventKind.REACH_ZERO
        arriving = np.array([bool(np.any(zero & (j == jj) & (t == tt))) for jj, tt in
                             zip(j.tolist(), t.tolist(), strict=True)], dtype=bool)
        from_zero = ~np.any(np.asarray(traj.patterns)[np.asarray(ev["from_pattern"])] != 0,
                            axis=1) if len(t) else np.zeros(0, dtype=bool)
        branch &= ~(arriving | from_zero)
    at = t[branch]
    return float(at.min()) if at.size else np.inf


#: relative displacement of :func:`tangent_start_agrees`'s starts off the hyperplanes
TANGENT_SHIFT = 1e-9


def tangent_starts(X, y, W, a, gamma: float, loss: str, rtol: float = 1e-12):
    """``(j, k)`` pairs where neuron ``j`` starts exactly on ``x_k^⊥`` (``<w_j, x_k> = 0`` as
    computed) and gradient descent's own first step (every slope on those hyperplanes ``γ``,
    ``σ'(0) = γ``) is tangent to it: ``|<D, x_k>| <= rtol Σ_i |r_i| ‖x_i‖² / n`` with ``D`` not
    zero.  There staying and leaving can both solve Eq. (2), and which gradient descent does
    is decided by its floating-point rounding of ``<w, x_k>`` (a random walk of a few ulps on a
    side with no velocity, the other side repulsive), not by its step: on integer data it
    leaves in one problem and stays in another of the same geometry
    (``docs/paper-readings.md``, N8).  Checked on the arrays, not with pwflow's code."""
    X, W, a = (np.asarray(v, float) for v in (X, W, a))
    n = X.shape[0]
    S = W @ X.T
    r = loss_derivative(outputs(W, a, X, gamma), np.asarray(y, float), loss)
    scale = np.sum(np.abs(r) * np.sum(X * X, axis=1)) / n
    out = []
    for j in range(W.shape[0]):
        on = np.flatnonzero(S[j] == 0.0)
        if on.size == 0:
            continue
        eta = np.where(S[j] > 0, 1.0, gamma)
        D = -((eta * r) @ X) / n
        if not np.linalg.norm(D) > rtol * scale:
            continue
        out += [(j, int(k)) for k in on if abs(D @ X[k]) <= rtol * scale]
    return out


def _normal_only(X, w, k: int):
    """Unit direction that moves ``<w, x_k>`` and none of the other offsets ``<w, x_i>`` that
    are 0: ``x_k`` less its projection on those ``x_i`` (the start stays on their hyperplanes;
    the move changes which side of ``x_k^⊥`` it is on, nothing else)."""
    others = [i for i in np.flatnonzero(np.asarray(X) @ w == 0.0) if i != k]
    v = np.array(X[k], dtype=float)
    if others:
        Q = np.linalg.qr(np.asarray(X)[others].T)[0]
        v -= Q @ (Q.T @ v)
    return v / np.linalg.norm(v)


def tangent_start_agrees(X, y, W0, a0, gamma: float, loss: str, state, t: float,
                         pairs) -> bool:
    """Whether the run's ``state = (W, a)`` at time ``t`` is gradient descent's from a start moved
    ``TANGENT_SHIFT ‖w_j‖`` off the hyperplanes of ``pairs`` (:func:`tangent_starts`; moved
    along :func:`_normal_only`, the other offsets that are 0 kept 0), all to the ``−`` side or
    all to the ``+`` side: the two continuations gradient descent's
    rounding chooses between.  Within ``C_GAP`` estimates of gradient descent at
    ``lr = 1e-3 / 20, 1e-3 / 40`` (:func:`gd_refined`, the steps of :func:`finer_gd_agrees`)
    plus ``100 ×`` the shift."""
    X = np.asarray(X, float)
    W, a = state
    size = float(np.sqrt(np.sum(W**2) + np.sum(a**2)))
    for side in (-1.0, 1.0):
        Ws = np.array(W0, dtype=float)
        for j, k in pairs:
            Ws[j] += side * TANGENT_SHIFT * np.linalg.norm(W0[j]) * _normal_only(X, W0[j], k)
        fine = gd_refined(X, y, Ws, a0, gamma, loss, t, (1e-3 / 20, 1e-3 / 40))
        shift = TANGENT_SHIFT * float(np.max(np.linalg.norm(W0, axis=1)))
        if fine.error(W, a, 0) <= C_GAP * fine.gap[0] + ATOL_GD * (1 + size) + 100 * shift:
            return True
    return False


def starts_on_antiparallel_hyperplane(X, W, gamma: float) -> bool:
    """Whether a neuron starts exactly on the hyperplane of two opposite data points
    (``x_l = c x_k``, ``c < 0``) with ``γ < 1``: gradient descent's ``σ'(0) = γ`` gives both
    points the slope ``γ`` there, outside the tied slopes ``η_l = 1 + γ − η_k`` of Clarke's
    subdifferential (``docs/paper-readings.md``, N3), so its iterates need not approximate any
    solution of Eq. (2) (they can stay on the hyperplane where the loss is differentiable
    across it with a non-zero slope).  Checked on the arrays, not with pwflow's code."""
    X = np.asarray(X, float)
    W = np.asarray(W, float)
    if gamma >= 1:
        return False
    norms = np.linalg.norm(X, axis=1)
    G = X @ X.T
    opposite = G <= -(1 - 1e-12) * np.outer(norms, norms)
    ks = np.flatnonzero(np.any(opposite, axis=1))
    return bool(ks.size and np.any(W @ X[ks].T == 0.0))


def _chatter_band(X, y, gamma, loss, lr, runs) -> float:
    """:attr:`GDReference.band` at one time, from the states of the three runs."""
    xn = np.linalg.norm(X, axis=1)
    W, a = runs[0]
    r = loss_derivative(outputs(W, a, X, gamma), y, loss)
    step = lr * np.abs(a) * np.sum(np.abs(r) * xn) / X.shape[0]
    near = np.zeros(a.size, dtype=bool)
    for Wr, _ in runs:
        near |= np.any(np.abs(Wr @ X.T) / xn <= step[:, None], axis=1)
    return float(np.sqrt(np.sum(step[near] ** 2)))


# ---------------------------------------------------------------------------- min-norm element
@dataclass(frozen=True)
class MinNorm:
    """Minimal-norm ``D* = b + Z η*`` over ``η ∈ [γ, 1]^|K|`` for one neuron.

    ``D`` the direction (``dw/dt = a D``), ``eta`` one minimiser (``D`` is unique, ``η`` need
    not be), ``K`` the hyperplane indices, ``normal`` = ``<D*, x_k>`` for ``k ∈ K``,
    ``scale`` = ``(1/n) Σ_k |r_k| ‖x_k‖`` (the size of the field's terms), ``noise`` =
    ``(1/n) Σ_l δ_l |<x_l, x_k>|`` for ``k ∈ K``: what ``<D, x_k>`` may be off by when each
    ``r_l`` is known to ``δ_l`` only (:func:`output_resolution`; 0 unless given).
    """

    D: np.ndarray
    eta: np.ndarray
    K: np.ndarray
    normal: np.ndarray
    scale: float
    noise: np.ndarray | float = 0.0


def _kkt(b, Z, eta, lo, hi, tol):
    g = Z.T @ (b + Z @ eta)
    s = tol * max(np.linalg.norm(Z) * (np.linalg.norm(b) + np.linalg.norm(Z) * (1 + hi)), 1e-300)
    at_lo = eta <= lo + 1e-12
    at_hi = eta >= hi - 1e-12
    free = ~(at_lo | at_hi)
    return bool(np.all(g[at_lo & ~at_hi] >= -s) and np.all(g[at_hi & ~at_lo] <= s)
                and np.all(np.abs(g[free]) <= s))


def _enumerate(b, Z, lo, hi):
    """Brute force: every lower/upper/free assignment, the feasible one of least norm."""
    p = Z.shape[1]
    best, best_eta = np.inf, None
    for assign in itertools.product((0, 1, 2), repeat=p):
        assign = np.array(assign)
        eta = np.where(assign == 0, lo, hi).astype(float)
        free = assign == 2
        if free.any():
            rhs = -(b + Z[:, ~free] @ eta[~free])
            eta[free] = np.linalg.lstsq(Z[:, free], rhs, rcond=None)[0]
            if np.any(eta[free] < lo - 1e-12) or np.any(eta[free] > hi + 1e-12):
                continue
            eta = np.clip(eta, lo, hi)
        v = float(np.linalg.norm(b + Z @ eta))
        if v < best:
            best, best_eta = v, eta
    return best_eta


def _tied_columns(XK, b, Z, gamma):
    """Points of ``K`` that are parallel share one parameter ``θ ∈ [0, 1]`` (the Clarke
    subdifferential, N3 of docs/paper-readings.md): ``η_k = γ + (1 − γ) θ`` for points along the
    class's first point, ``1 − (1 − γ) θ`` for points against it.  Returns ``b'``, ``Z'`` (one
    column per class) and, per point, its class and orientation (written independently of
    ``pwflow.subgradient``: another parameterisation, classes from the cross-Gram)."""
    p = XK.shape[0]
    cls = -np.ones(p, dtype=int)
    sgn = np.ones(p)
    c = 0
    for i in range(p):
        if cls[i] >= 0:
            continue
        for j in range(i, p):
            if cls[j] < 0:
                g = XK[i] @ XK[j]
                if abs(abs(g) - np.linalg.norm(XK[i]) * np.linalg.norm(XK[j])) <= (
                        1e-10 * np.linalg.norm(XK[i]) * np.linalg.norm(XK[j])):
                    cls[j], sgn[j] = c, np.sign(g)
        c += 1
    b2 = b + Z @ np.where(sgn > 0, gamma, 1.0)
    Z2 = np.zeros((Z.shape[0], c))
    for j in range(p):
        Z2[:, cls[j]] += (1 - gamma) * sgn[j] * Z[:, j]
    return b2, Z2, cls, sgn


def output_resolution(W, a, X, gamma: float, rtol: float) -> np.ndarray:
    """How well the outputs of a state integrated to ``rtol`` are known, per data point:
    ``10 rtol Σ_j |a_j| ‖w_j‖ ‖x_l‖``.  The run's states carry a relative error of a few
    ``rtol`` (dense snapshots up to 5e-10 at ``rtol = 1e-10``, measured), and a neuron's term
    ``a_j σ(<w_j, x_l>)`` moves by ``|δa| |<w, x_l>| + |a| ‖δw‖ ‖x_l‖``: its error scales with
    ``|a_j| ‖w_j‖ ‖x_l‖``, not with the term, which may be far smaller (a neuron nearly
    orthogonal to ``x_l``).  Near a zero of the loss the outputs are small differences of such
    terms.  ``∂_1 l`` is 1-Lipschitz for both losses, so ``r_l`` is known to the same."""
    size = np.abs(np.asarray(a, float)) * np.linalg.norm(np.asarray(W, float), axis=1)
    return 10.0 * rtol * float(np.sum(size)) * np.linalg.norm(np.asarray(X, float), axis=1)


def min_norm_direction(w, X, y, W, a, gamma: float, loss: str, K, u=None,
                       resolution: np.ndarray | None = None) -> MinNorm:
    """Minimal-norm direction of Eq. (2) for a neuron ``w`` on the hyperplanes ``K``.

    Eq. (6)'s slopes, with those of parallel points tied (:func:`_tied_columns`).  The slopes
    of the other points are fixed by ``u`` (the face: 1 where ``u_k = 1``, γ where ``u_k =
    −1``), by default the sign of ``<w, x_k>``; the network outputs (hence the residuals
    ``r_k``) are those of the whole state ``(W, a)``; ``resolution`` (per data point, e.g.
    :func:`output_resolution`) sets :attr:`MinNorm.noise`.
    """
    X = np.asarray(X, float)
    n = X.shape[0]
    r = loss_derivative(outputs(W, a, X, gamma), np.asarray(y, float), loss)
    K = np.asarray(K, dtype=np.int64)
    s = X @ w if u is None else np.asarray(u, float)
    eta_fixed = np.where(s > 0, 1.0, gamma)
    eta_fixed[K] = 0.0
    b = -(eta_fixed * r) @ X / n
    Z = (-(r[K, None] * X[K]) / n).T  # (d, |K|)
    if K.size == 0:
        eta = np.zeros(0)
    elif gamma == 1.0:
        eta = np.ones(K.size)
    else:
        b2, Z2, cls, sgn = _tied_columns(X[K], b, Z, gamma)
        res = lsq_linear(Z2, -b2, bounds=(0.0, 1.0), method="bvls", tol=1e-14, lsmr_tol=None)
        theta = np.clip(res.x, 0.0, 1.0)
        if Z2.shape[1] <= 5:
            theta_b = _enumerate(b2, Z2, 0.0, 1.0)
            if np.linalg.norm(b2 + Z2 @ theta_b) < np.linalg.norm(b2 + Z2 @ theta):
                theta = theta_b
        if not _kkt(b2, Z2, theta, 0.0, 1.0, 1e-8):
            raise RuntimeError(f"min-norm reference: KKT not satisfied for K = {K.tolist()}")
        th = theta[cls]
        eta = np.where(sgn > 0, gamma + (1 - gamma) * th, 1 - (1 - gamma) * th)
    D = b + Z @ eta
    scale = float(np.sum(np.abs(r) * np.linalg.norm(X, axis=1)) / n)
    noise = 0.0 if resolution is None else np.abs(X[K] @ X.T) @ resolution / n
    return MinNorm(D, eta, K, X[K] @ D, scale, noise)


def _in_span(V: np.ndarray, B: np.ndarray, rtol: float = 1e-10) -> np.ndarray:
    """Rows of ``V`` in the span of the rows of ``B`` (to ``rtol`` of their norm)."""
    if B.shape[0] == 0:
        return np.zeros(V.shape[0], dtype=bool)
    coef, *_ = np.linalg.lstsq(B.T, V.T, rcond=None)
    res = V - (B.T @ coef).T
    return np.linalg.norm(res, axis=1) <= rtol * np.linalg.norm(V, axis=1)


#: ``|a_j|`` up to this times ``‖w_j‖`` is an exact 0 carried through the integration's rounding
A_ROUNDING = 16 * np.finfo(float).eps


def non_grazing_events(traj) -> dict:
    """The event log without grazing contacts (the kind that differs between any two step
    sequences), sorted by neuron, hyperplane, kind and time: for comparing two paths' events."""
    import pwflow

    keep = np.asarray(traj.events["kind"]) != int(pwflow.EventKind.GRAZING)
    ev = {k: np.asarray(traj.events[k])[keep] for k in ("t", "neuron", "k", "kind")}
    order = np.lexsort((ev["t"], ev["kind"], ev["k"], ev["neuron"]))
    return {k: v[order] for k, v in ev.items()}


def repeated_event_rows(traj) -> list[tuple]:
    """Event rows ``(t, neuron, k, kind)`` that a run logged more than once (none is right: an
    event found again at the next solver start is one event, session 23)."""
    ev = traj.events
    rows = Counter(zip(ev["t"].tolist(), ev["neuron"].tolist(), ev["k"].tolist(),
                       ev["kind"].tolist(), strict=True))
    return [row for row, count in rows.items() if count > 1]


def sliding_checks(traj, i: int, tol_on: float = 1e-10, tol_tangent: float = 1e-7,
                   tol_extra: float = 1e-13):
    """Violations of the sliding invariants at snapshot ``i`` of a trajectory.

    For every neuron whose recorded pattern has zeros ``K`` (and ``w ≠ 0``):
    ``|<w, x_k>| ≤ tol_on ‖w‖ ‖x_k‖`` for ``k ∈ K``; no other ``x_l`` with
    ``|<w, x_l>| ≤ tol_extra ‖w‖ ‖x_l‖`` (rounding: a point parallel to one of ``K``, or
    in the span of ``x_K``) or on the wrong side of its pattern entry is missing from the
    face (it is then added to ``K`` for the next check; one outside that span is a
    hyperplane just left, at second order, which is fine while the face's field does not
    point back to it; ``tol_extra`` is far below ``tol_on`` because a neuron may approach a
    hyperplane exponentially without reaching it); the minimal-norm slopes lie in
    ``[γ, 1]`` (by construction) and ``D*`` is tangent: ``|<D*, x_k>| ≤ tol_tangent · scale ·
    ‖x_k‖ + noise_k``, where ``noise_k`` is what the outputs' resolution at the run's ``rtol``
    allows (:func:`output_resolution`; it matters only near a zero of the loss, where the
    ``r_l`` are small differences of the outputs' terms).  Returns a list of human-readable
    violation strings (empty when all hold).
    """
    X, y = traj.X, traj.y
    W, a = traj.W[i], traj.a[i]
    U = traj.patterns[traj.pattern[i]]
    rtol = float(((traj.meta or {}).get("options") or {}).get("rtol", 1e-10))
    resolution = output_resolution(W, a, X, traj.gamma, rtol)
    out = []
    xn = np.linalg.norm(X, axis=1)
    for j in range(W.shape[0]):
        K = np.flatnonzero(U[j] == 0)
        wn = np.linalg.norm(W[j])
        # w = 0 to rounding (a neuron that reached 0 and stays there, its w 1e-33 of its a:
        # collinear data, thorough profile): its normalised offsets mean nothing
        if K.size == 0 or wn <= 1e-12 * np.hypot(wn, a[j]):
            continue
        on_all = np.abs(X @ W[j]) / (wn * xn)
        for k in K:
            if on_all[k] > tol_on:
                out.append(f"t={traj.t[i]:.6g} neuron {j} off hyperplane k={k}: "
                           f"|<w,x>|/(|w||x|) = {on_all[k]:.3e}")
        # a sliding neuron on a hyperplane its face does not list (e.g. x_l ∥ x_k): the slope
        # of x_l is free too and the face's field is wrong
        # (not at the start or at one of the neuron's events: a neuron that leaves a hyperplane
        # there is still on it, with the face it goes to)
        ev_t = traj.events["t"][traj.events["neuron"] == j]
        t_i = float(traj.t[i])
        at_event = i == 0 or bool(np.any(np.abs(ev_t - t_i) <= 1e-12 * (1 + abs(t_i))))
        wrong = (on_all <= tol_extra) | (np.sign(X @ W[j]) != U[j])
        extra = np.flatnonzero(wrong & (U[j] != 0)) if not at_event else K[:0]
        # on a hyperplane that K does not imply (x_l outside span x_K), to rounding: a neuron
        # that has just left it (an exit departs at second order, <w, x_l> ∝ (t − t_e)², and
        # stays below tol_extra for a while): fine while its face's field does not point back
        departing = extra[(on_all[extra] <= tol_extra) & ~_in_span(X[extra], X[K])]
        for k in extra:
            if k in departing:
                continue
            where = ("also lies on hyperplane" if on_all[k] <= tol_extra
                     else "is on the other side of hyperplane")
            out.append(f"t={traj.t[i]:.6g} neuron {j} on K={K.tolist()} {where} "
                       f"k={k} (<w,x>/(|w||x|) = {(X[k] @ W[j]) / (wn * xn[k]):.1e}) but its "
                       f"face has u_k = {U[j, k]}")
        if departing.size:
            mn0 = min_norm_direction(W[j], X, y, W, a, traj.gamma, traj.loss_name, K, U[j],
                                     resolution)
            v = a[j] * (X[departing] @ mn0.D) * U[j, departing]
            noise = np.abs(X[departing] @ X.T) @ resolution / X.shape[0]
            back = v < -(tol_tangent * mn0.scale * xn[departing] + abs(a[j]) * noise)
            for k in departing[back]:
                out.append(f"t={traj.t[i]:.6g} neuron {j} on K={K.tolist()} lies on hyperplane "
                           f"k={k} with its face on side {U[j, k]}, whose field points back")
        K = np.union1d(K, np.setdiff1d(extra, departing))
        mn = min_norm_direction(W[j], X, y, W, a, traj.gamma, traj.loss_name, K, U[j],
                                resolution)
        tang = np.maximum(np.abs(mn.normal) - mn.noise, 0.0) / (max(mn.scale, 1e-300) * xn[K])
        if abs(a[j]) <= A_ROUNDING * wn and abs(W[j] @ mn.D) <= tol_tangent * mn.scale * wn:
            # a fixed point: dw/dt = a D = 0 and da/dt = <w, D> = 0 (for every slope on K,
            # since w ⟂ x_K): nothing moves it off its hyperplanes, tangent or not.  a = 0 to
            # rounding: integrated, da/dt = <w, D> leaves ~1e-19 where w ⟂ span X (a neuron
            # orthogonal to data of rank < d; camp9 seeds 79, 473 and a multi-active draw;
            # extrapolated GD agrees with the run to 1.5e-9, estimate 4.5e-5)
            tang = np.zeros_like(tang)
        for k, v, e in zip(K, tang, mn.eta):
            if v > tol_tangent:
                out.append(f"t={traj.t[i]:.6g} neuron {j} on K={K.tolist()}, k={k}: "
                           f"min-norm D* not tangent, "
                           f"|<D*,x_k>|/(scale |x_k|) = {v:.3e}, eta*_k = {e:.6g}, "
                           f"a_j = {a[j]:.3e}")
    return out
