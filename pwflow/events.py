"""Events of the hybrid flow: detect, locate, classify.

Three small pure functions, as in scipy's ``integrate/_ivp``:

* :func:`detect_crossings` — after a step, the neuron/data pairs whose sign of
  ``<w_j, x_k>`` disagrees with the neuron's activation pattern (one array-valued check over all
  ``(j, k)``), and the neurons of 1-dimensional faces that went through ``w = 0``;
* :func:`locate_roots` — the event times, by safeguarded Newton iterations on the polynomial
  dense output of the step, vectorised over all candidates;
* :func:`classify` — at ``<w, x_k> = 0``, the one-sided fields and the minimal-norm subgradient
  decide what happens: crossing, entering sliding (Filippov), bouncing back (grazing).

The event kinds are an enumeration whose values are the messages written in logs.
"""

from __future__ import annotations

import enum
import itertools

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "EventKind",
    "detect_crossings",
    "detect_zero_crossings",
    "locate_roots",
    "classify",
    "Classification",
]

Array = NDArray[np.float64]


class EventKind(enum.IntEnum):
    """What happened at an event (``str(kind)`` is the message)."""

    CROSSING = 0
    ENTER_SLIDING = 1
    LEAVE_SLIDING = 2
    GRAZING = 3
    REACH_ZERO = 4
    INITIAL_FACE = 5

    def __str__(self) -> str:
        return _MESSAGES[self]


_MESSAGES = {
    EventKind.CROSSING: "crossing: the neuron crosses the hyperplane <w, x_k> = 0",
    EventKind.ENTER_SLIDING: "entering sliding: the neuron stays on <w, x_k> = 0 (Filippov)",
    EventKind.LEAVE_SLIDING: "leaving sliding: a free slope eta_k reached gamma or 1",
    EventKind.GRAZING: "grazing: the neuron touches <w, x_k> = 0 and turns back",
    EventKind.REACH_ZERO: "reaching zero: w = 0, the neuron stays there (Condition 1, point 2)",
    EventKind.INITIAL_FACE: "initial face: the neuron starts on a hyperplane",
}


def detect_crossings(
    W: Array, X: Array, U_of_neuron: NDArray[np.int8], slack: Array | None = None
):
    """Pairs ``(j, k)`` whose sign of ``<w_j, x_k>`` disagrees with ``u_k`` of the neuron's face.

    Parameters
    ----------
    W : array, shape (m, d)
        Neurons at the end of the step.
    X : array, shape (n, d)
        Data.
    U_of_neuron : array, shape (m, n)
        The pattern of each neuron at the start of the step (0 entries are skipped: those
        constraints are held by the face field).
    slack : array, shape (m,), optional
        Per-neuron absolute uncertainty of ``w`` (e.g. how far the Lorentz projection moved
        it); a wrong sign smaller than ``slack ‖x_k‖`` is not trusted as a crossing.

    Returns
    -------
    j, k : int arrays
        The candidate pairs (a zero value at the end of the step counts as a crossing).
    """
    S = W @ X.T
    # values within rounding of zero are not crossings: a neuron that just left a hyperplane
    # (or was cut exactly on it) sits there to rounding; a real crossing shows at a later step
    unc = 16 * np.finfo(float).eps * np.linalg.norm(W, axis=1)
    if slack is not None:
        unc = unc + slack
    tiny = unc[:, None] * np.linalg.norm(X, axis=1)
    bad = (U_of_neuron != 0) & (np.sign(S) != U_of_neuron) & (np.abs(S) > tiny)
    return np.nonzero(bad)


def detect_zero_crossings(W: Array, rays: Array, on_ray: NDArray[np.bool_]):
    """Neurons of 1-dimensional faces whose coordinate ``<w, e_u>`` became ``<= 0``."""
    idx = np.flatnonzero(on_ray)
    if idx.size == 0:
        return idx
    rho = np.einsum("ij,ij->i", W[idx], rays)
    return idx[rho <= 0]


def _nested(coef: Array, x: Array) -> Array:
    """Evaluate scipy's DOP853 nested dense-output form (``coef[:, 0] = y_old``)."""
    y = np.zeros_like(x)
    nF = coef.shape[1] - 1
    for i in range(nF):
        y += coef[:, nF - i]
        y *= x if i % 2 == 0 else (1.0 - x)
    return y + coef[:, 0]


def _nested_derivative(coef: Array, x: Array) -> Array:
    """Derivative in ``x`` of :func:`_nested` (forward-mode, same recursion)."""
    y = np.zeros_like(x)
    dy = np.zeros_like(x)
    nF = coef.shape[1] - 1
    for i in range(nF):
        y += coef[:, nF - i]
        if i % 2 == 0:
            dy = dy * x + y
            y *= x
        else:
            dy = dy * (1.0 - x) - y
            y *= 1.0 - x
    return dy


def locate_roots(
    coef: Array, lo: Array | None = None, hi: Array | None = None, max_iter: int = 100
) -> tuple[Array, Array]:
    """Roots in ``[lo, hi] ⊂ [0, 1]`` of scalar dense-output polynomials, one per row of ``coef``.

    Each row holds ``(s(0), F_1, ..., F_7)`` of a function ``s(x)`` in scipy's nested DOP853
    form with ``s(lo) * s(hi) <= 0`` (default bracket ``[0, 1]``).  Newton steps are kept inside
    a shrinking bracket (bisection when Newton leaves it); iterations stop when the bracket is
    below 4 ulp.  Returns the roots ``x*`` and the residuals ``s(x*)``.
    """
    coef = np.asarray(coef, float)
    c = coef.shape[0]
    lo = np.zeros(c) if lo is None else np.array(lo, float)
    hi = np.ones(c) if hi is None else np.array(hi, float)
    slo = _nested(coef, lo)
    x = np.full(c, 0.5)
    # initial guess: secant through the end values
    shi = _nested(coef, hi)
    with np.errstate(divide="ignore", invalid="ignore"):
        sec = lo + (hi - lo) * slo / (slo - shi)
    x = np.where(np.isfinite(sec) & (sec >= lo) & (sec <= hi), sec, 0.5 * (lo + hi))
    active = np.ones(c, dtype=bool)
    for _ in range(max_iter):
        if not np.any(active):
            break
        ia = np.flatnonzero(active)
        xa = x[ia]
        s = _nested(coef[ia], xa)
        ds = _nested_derivative(coef[ia], xa)
        same = np.sign(s) == np.sign(slo[ia])
        lo[ia] = np.where(same, xa, lo[ia])
        slo[ia] = np.where(same, s, slo[ia])
        hi[ia] = np.where(same, hi[ia], xa)
        with np.errstate(divide="ignore", invalid="ignore"):
            xn = xa - s / ds
        mid = 0.5 * (lo[ia] + hi[ia])
        ok = np.isfinite(xn) & (xn > lo[ia]) & (xn < hi[ia])
        xn = np.where(ok, xn, mid)
        width = hi[ia] - lo[ia]
        done = (s == 0) | (width <= 4 * np.finfo(float).eps * np.maximum(np.abs(xa), 1e-300))
        done |= np.abs(xn - xa) <= 2 * np.finfo(float).eps
        x[ia] = np.where(s == 0, xa, xn)
        active[ia[done]] = False
    res = _nested(coef, x)
    return x, res


class Classification:
    """Outcome of :func:`classify`: the new pattern entries on ``K`` and the event kind."""

    __slots__ = ("signs", "kind", "eta")

    def __init__(self, signs: NDArray[np.int8], kind: EventKind, eta: Array) -> None:
        self.signs = signs
        self.kind = kind
        self.eta = eta

    def __repr__(self) -> str:
        return f"Classification(signs={self.signs.tolist()}, kind={self.kind.name})"


def classify(
    a: float,
    u_face: NDArray[np.int8],
    came_from: NDArray[np.int8],
    X: Array,
    r: Array,
    gamma: float,
) -> Classification:
    """Decide where a neuron on the face ``u_face`` goes next (Filippov / minimal norm).

    For each zero coordinate ``k ∈ K`` of ``u_face`` choose ``s_k ∈ {−1, 0, +1}``: ``±1`` leaves
    the hyperplane to that side with slope ``1`` or ``γ``, ``0`` stays on it with the slope that
    makes ``<D, x_k> = 0``.  An assignment is *consistent* when every leaving coordinate moves
    to its side (``s_k a <D, x_k> > 0``) and every staying slope lies in ``[γ, 1]``.  Among
    consistent assignments the one with minimal ``‖D‖`` is chosen; when the paper's minimal-norm
    subgradient ``D(w, θ)`` is itself consistent, it is this one.  For one hyperplane this is the
    classical rule: both one-sided normal velocities of the same sign → cross (or bounce back),
    attracting from both sides → slide.

    Parameters
    ----------
    a : float
        Output weight of the neuron (its sign orients the motion: ``dw/dt = a D``).
    u_face : array of int8, shape (n,)
        Pattern at the event (zeros on the hyperplanes the neuron lies on).
    came_from : array of int8, shape (n,)
        Pattern before the event, used to name the kind (crossing vs grazing).
    X, r, gamma
        Data, residual derivatives ``∂_1 l(h(x_k), y_k)`` at the event, slope.
    """
    n = X.shape[0]
    K = np.flatnonzero(u_face == 0)
    eta_fixed = np.where(u_face > 0, 1.0, np.where(u_face < 0, gamma, 0.0))
    b = -((eta_fixed * r) @ X) / n
    Z = -(r[K, None] * X[K]) / n  # rows z_k
    best = None
    for assign in itertools.product((-1, 0, 1), repeat=K.size):
        s = np.array(assign, dtype=np.int8)
        eta = np.where(s > 0, 1.0, gamma).astype(float)
        stay = s == 0
        if np.any(stay):
            # <b + Σ_{leave} eta z + Σ_{stay} eta z, x_k> = 0 for k staying
            XS = X[K[stay]]
            A = XS @ Z[stay].T
            rhs = -(XS @ (b + eta[~stay] @ Z[~stay]))
            try:
                sol = np.linalg.solve(A, rhs)
            except np.linalg.LinAlgError:
                sol, *_ = np.linalg.lstsq(A, rhs, rcond=None)
            if np.any(sol < gamma) or np.any(sol > 1):
                continue
            eta[stay] = np.clip(sol, gamma, 1.0)
        D = b + eta @ Z
        vel = a * (X[K] @ D)
        leave = ~stay
        scale = abs(a) * np.linalg.norm(D) * np.linalg.norm(X[K], axis=1) + 1e-300
        if np.any(s[leave] * vel[leave] < -1e-13 * scale[leave]):
            continue
        # ties in norm (a one-sided field that vanishes on the hyperplane) go to staying
        norm = float(np.linalg.norm(D))
        nleave = int(np.sum(leave))
        if best is None:
            better = True
        else:
            tie = abs(norm - best[0]) <= 1e-12 * max(norm, best[0])
            better = (norm < best[0] and not tie) or (tie and nleave < best[3])
        if better:
            best = (norm, s, eta, nleave)
    if best is None:
        # Tangency (a one-sided normal velocity vanishes): keep the neuron on the face.
        s = np.zeros(K.size, dtype=np.int8)
        eta = np.full(K.size, 0.5 * (1 + gamma))
        kind = EventKind.ENTER_SLIDING
    else:
        _, s, eta, _ = best
        prev = came_from[K]
        if np.all(s == 0):
            kind = EventKind.ENTER_SLIDING if np.any(prev != 0) else EventKind.INITIAL_FACE
        elif np.any((s != 0) & (prev != 0) & (s != prev)):
            kind = EventKind.CROSSING
        elif np.all(prev == 0):
            kind = EventKind.LEAVE_SLIDING
        else:
            kind = EventKind.GRAZING
    full_eta = eta_fixed.copy()
    full_eta[K] = eta
    return Classification(s, kind, full_eta)
