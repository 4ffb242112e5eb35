"""Figures of a run: the learnt function, the neurons in polar coordinates, the loss.

The paper's Figures 1–3 (Section 4, Section 6, Appendix B) are recomputed by :func:`reproduce`
from exact trajectories of the flow.  Every artist is drawn from a pure helper that returns the
data behind it (:func:`neuron_polar_data`, :func:`cone_boundary_angles`, :func:`function_curve`,
:func:`phase_times`, ...), so that tests check numbers, not pixels.

Conventions (after the authors' plots, see ``docs/figures.md``):

* neurons: angle of ``w_j`` (its projection on the top-2 right singular vectors of ``X`` when
  ``d > 2``), radius ``r0 + ‖w_j‖ / N`` with ``N`` the largest norm over the panels of a figure,
  so the circle of radius ``r0`` is the zero norm, shifted off the origin; colour by
  ``sign(a_j)`` (Okabe–Ito palette: blue ``a_j > 0``, vermillion ``a_j < 0``, grey ``a_j = 0``);
  data directions ``x_k`` as black crosses, activation-cone boundaries (``±x_k^⊥``) dashed green;
* function: ``h_θ(x)`` for 1-D inputs with a bias (``X[:, -1] == 1``), the data, the least-squares
  line ``x ↦ (x, 1)·β*`` and the best fit when known;
* loss: ``L(θ^t)`` against ``t`` (log axes), event times as a rug, ``L(β*)`` dashed and the
  phase times of :func:`phase_times` as vertical lines.

matplotlib is used with the Agg backend; no LaTeX.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import animation  # noqa: E402
from numpy.typing import ArrayLike, NDArray  # noqa: E402

from .data import STEWART_KNOTS, Dataset, assumption3, stewart, three_points  # noqa: E402
from .init import balanced, unbalanced  # noqa: E402
from .model import activation, get_loss  # noqa: E402
from .progress import show_bar  # noqa: E402
from .subgradient import minimal_norm_on_face  # noqa: E402
from .theory import D_max, beta_star, tau  # noqa: E402
from .trajectory import Trajectory  # noqa: E402

__all__ = [
    "POSITIVE", "NEGATIVE", "ZERO", "PLOT_KINDS", "ANIMATE_KINDS", "FIGURES", "PAPER",
    "NeuronPolar", "has_bias_1d", "projection_basis", "neuron_polar_data", "cone_boundary_angles",
    "data_angles", "function_grid", "function_curve", "least_squares", "least_squares_loss",
    "three_point_interpolant", "best_fit", "face_patterns_2d", "d_max", "alignment_time",
    "output_norms", "phase_times", "loss_drops", "default_times", "frame_times", "state_at",
    "make_figure", "plot_run", "animate_run", "reproduce", "figure1_data",
]

Array = NDArray[np.float64]

#: Okabe–Ito colours (colour-blind safe): ``a_j > 0``, ``a_j < 0``, ``a_j = 0``.
POSITIVE, NEGATIVE, ZERO = "#0072B2", "#D55E00", "#999999"
CONE_COLOUR, LS_COLOUR, FIT_COLOUR, CURVE_COLOUR = "#009E73", "#CC79A7", "#E69F00", "#000000"
PLOT_KINDS = ("function", "neurons", "loss", "all")
ANIMATE_KINDS = ("neurons", "function")
FIGURES = ("figure1", "figure2", "figure3")
#: The paper's settings (Appendix B): width, scale λ, flow time in the paper's units.
PAPER = {
    "figure2": {"width": 200_000, "scale": 1e-3, "t_max": 4000.0},
    "figure3": {"width": 200_000, "scale": 1e-3, "t_max": 4000.0},
}
#: Our defaults (see docs/figures.md, "Run times").
DEFAULTS = {
    "figure2": {"width": 2000, "scale": 1e-3, "t_max": 4000.0},
    # width 2000 stops on the Zeno guard at t ≈ 11.19 with seed 0 (docs/figures.md)
    "figure3": {"width": 1000, "scale": 1e-3, "t_max": 4000.0},
}
EPSILON = 0.25  # ε of τ = −ε ln λ / D_max (Theorem 1, ε ∈ (0, 1/3))
DPI = 100


# ---------------------------------------------------------------------------- neurons
@dataclass(frozen=True)
class NeuronPolar:
    """Data behind the polar plot of the neurons.

    Attributes
    ----------
    theta : array (m,)
        Angle of ``P w_j`` in ``(−π, π]`` (``P`` from :func:`projection_basis`).
    radius : array (m,)
        ``r0 + ‖w_j‖ / norm_max`` (``r0`` is the zero-norm circle).
    colours : list of str
        :data:`POSITIVE`, :data:`NEGATIVE` or :data:`ZERO` from ``sign(a_j)``.
    sign : array (m,)
        ``sign(a_j)``.
    """

    theta: Array
    radius: Array
    colours: list
    sign: Array


def projection_basis(X: ArrayLike) -> Array:
    """Rows spanning the plane in which neurons are drawn.

    ``d = 2``: the identity.  ``d > 2``: the top-2 right singular vectors of ``X`` (each with
    the sign making its largest-magnitude entry positive, so the basis is deterministic).
    ``d = 1``: ``[[1], [0]]`` (neurons on the horizontal axis).
    """
    X = np.asarray(X, float)
    if X.ndim != 2:
        raise ValueError(f"X must have shape (n, d), got shape {X.shape}")
    d = X.shape[1]
    if d == 1:
        return np.array([[1.0], [0.0]])
    if d == 2:
        return np.eye(2)
    _, _, Vt = np.linalg.svd(X, full_matrices=False)
    V = Vt[:2].copy()
    if V.shape[0] < 2:  # n == 1: complete with any orthogonal direction
        q, _ = np.linalg.qr(np.vstack([V, np.eye(d)]).T)
        V = q[:, :2].T
    flip = np.sign(V[np.arange(2), np.argmax(np.abs(V), axis=1)])
    return V * flip[:, None]


def neuron_polar_data(
    W: ArrayLike, a: ArrayLike, X: ArrayLike | None = None, r0: float = 1.0,
    norm_max: float | None = None,
) -> NeuronPolar:
    """Angles, radii and colours of the neurons ``(w_j, a_j)`` (Figure 2, right column).

    Parameters
    ----------
    W, a : arrays (m, d), (m,)
    X : array (n, d), optional
        Data, needed only when ``d > 2`` (projection basis).
    r0 : float
        Radius of the zero-norm circle (> 0).
    norm_max : float, optional
        Norm drawn at radius ``r0 + 1``; default ``max_j ‖w_j‖`` (``1`` if all are zero).
    """
    W = np.asarray(W, float)
    a = np.asarray(a, float)
    if W.ndim != 2 or a.shape != (W.shape[0],):
        raise ValueError(f"W must have shape (m, d) and a shape (m,), got {W.shape} and {a.shape}")
    if not (np.isfinite(r0) and r0 > 0):
        raise ValueError(f"r0 must be positive, got {r0!r}")
    if W.shape[1] > 2 and X is None:
        raise ValueError("X is needed to project neurons of dimension d > 2")
    P = projection_basis(X if X is not None else np.eye(W.shape[1]))
    Q = W @ P.T
    theta = np.arctan2(Q[:, 1], Q[:, 0])
    norms = np.linalg.norm(W, axis=1)
    if norm_max is None:
        norm_max = float(norms.max(initial=0.0))
    if not np.isfinite(norm_max) or norm_max < 0:
        raise ValueError(f"norm_max must be finite and >= 0, got {norm_max!r}")
    radius = r0 + norms / (norm_max if norm_max > 0 else 1.0)
    sign = np.sign(a)
    colours = [POSITIVE if s > 0 else NEGATIVE if s < 0 else ZERO for s in sign]
    return NeuronPolar(theta, radius, colours, sign)


def data_angles(X: ArrayLike) -> Array:
    """Angles of the (projected) data directions ``x_k``."""
    X = np.asarray(X, float)
    Q = X @ projection_basis(X).T
    return np.arctan2(Q[:, 1], Q[:, 0])


def cone_boundary_angles(X: ArrayLike) -> Array:
    """Angles in ``(−π, π]`` of the activation-cone boundaries for ``d = 2``, sorted.

    The cones ``A^{-1}(u)`` (Section 3) are delimited by the lines ``<w, x_k> = 0``, i.e. the
    two directions ``±x_k^⊥`` with ``x_k^⊥ = (−x_{k,2}, x_{k,1})``; duplicates (collinear data)
    are merged.
    """
    X = np.asarray(X, float)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"cone boundaries are drawn for d = 2 only; X has shape {X.shape}")
    perp = np.stack([-X[:, 1], X[:, 0]], axis=1)
    ang = np.concatenate([np.arctan2(perp[:, 1], perp[:, 0]), np.arctan2(-perp[:, 1], -perp[:, 0])])
    ang = np.sort(ang)
    keep = np.concatenate([[True], np.diff(ang) > 1e-12])
    return ang[keep]


# ---------------------------------------------------------------------------- function
def has_bias_1d(X: ArrayLike) -> bool:
    """Whether ``X`` is 1-D data with a bias column (``d = 2`` and ``X[:, 1] == 1``)."""
    X = np.asarray(X, float)
    return X.ndim == 2 and X.shape[1] == 2 and bool(np.all(X[:, 1] == 1.0))


def function_grid(X: ArrayLike, num: int = 400, pad: float = 0.1) -> Array:
    """``num`` points covering the data range ``[min x, max x]`` widened by ``pad`` on each side."""
    x = np.asarray(X, float)[:, 0]
    lo, hi = float(x.min()), float(x.max())
    span = hi - lo if hi > lo else 1.0
    return np.linspace(lo - pad * span, hi + pad * span, int(num))


def function_curve(W: ArrayLike, a: ArrayLike, xs: ArrayLike, gamma: float = 0.0) -> Array:
    """``h_θ(x) = Σ_j a_j σ(<w_j, (x, 1)>)`` (Eq. (1)) at the 1-D inputs ``xs``."""
    W = np.asarray(W, float)
    xs = np.asarray(xs, float)
    Xs = np.stack([xs, np.ones_like(xs)], axis=1)
    return activation(Xs @ W.T, gamma) @ np.asarray(a, float)


def least_squares(X: ArrayLike, y: ArrayLike) -> Array:
    """``β*`` of Theorem 2 (:func:`pwflow.theory.beta_star`); the minimal-norm least-squares
    solution where ``X`` has rank ``< d`` (``β*`` is then not unique; the fit is)."""
    beta = beta_star(X, y)
    if beta is None:
        beta, *_ = np.linalg.lstsq(np.asarray(X, float), np.asarray(y, float), rcond=None)
    return beta


def least_squares_loss(X: ArrayLike, y: ArrayLike) -> float:
    """``L(β*) = (1/n) Σ ½ (<β*, x_k> − y_k)²`` (Eq. (10)), the limit in Theorem 2."""
    X = np.asarray(X, float)
    y = np.asarray(y, float)
    return float(0.5 * np.mean((X @ least_squares(X, y) - y) ** 2))


def three_point_interpolant(X: ArrayLike, y: ArrayLike) -> tuple[Array, Array] | None:
    """A 2-neuron ReLU network fitting three 1-D points exactly (loss 0), or ``None``.

    With ``x_1 < x_2 < x_3`` and ``y_1 > y_2 > 0 < y_3`` (the situation of Assumption 3 and of
    Appendix B.1): ``h(x) = a_1 σ(c_1 − x) + a_2 σ(x − x_2)`` with ``a_1 = (y_1 − y_2)/(x_2 − x_1)``,
    ``c_1 = x_2 + y_2/a_1`` and ``a_2 = y_3/(x_3 − x_2)``, valid when ``c_1 <= x_3``.  Returned as
    ``(W, a)`` with ``W = [(−1, c_1), (1, −x_2)]`` (bias in the second coordinate).
    """
    X = np.asarray(X, float)
    y = np.asarray(y, float)
    if not (has_bias_1d(X) and X.shape[0] == 3):
        return None
    order = np.argsort(X[:, 0])
    (x1, x2, x3), (y1, y2, y3) = X[order, 0], y[order]
    if not (x1 < x2 < x3 and y1 > y2 > 0 and y3 > 0):
        return None
    a1 = (y1 - y2) / (x2 - x1)
    c1 = x2 + y2 / a1
    if c1 > x3:
        return None
    a2 = y3 / (x3 - x2)
    return np.array([[-1.0, c1], [1.0, -x2]]), np.array([a1, a2])


def best_fit(traj: Trajectory) -> tuple[str, object] | None:
    """The best fit drawn with the learnt function: the 2-neuron interpolant or the teacher."""
    if traj.meta.get("dataset", {}).get("name") == "stewart":
        return "teacher", lambda xs: np.interp(xs, *STEWART_KNOTS)
    net = three_point_interpolant(traj.X, traj.y)
    if net is not None:
        W, a = net
        return "2-neuron interpolant (loss 0)", lambda xs: function_curve(W, a, xs, 0.0)
    return None


# ---------------------------------------------------------------------------- constants
def face_patterns_2d(X: ArrayLike) -> NDArray[np.int8]:
    """Every activation pattern ``u = A(w)`` met by ``w ∈ R² \\ {0}``, plus ``u = 0`` (``w = 0``).

    Open cones are sampled at the mid-angle of consecutive boundaries of
    :func:`cone_boundary_angles`; a boundary ray takes the sign its two neighbours share and ``0``
    where they differ.
    """
    X = np.asarray(X, float)
    b = cone_boundary_angles(X)
    mids = (b + np.diff(np.concatenate([b, [b[0] + 2 * np.pi]])) / 2)
    dirs = np.stack([np.cos(mids), np.sin(mids)], axis=1)
    arcs = np.sign(dirs @ X.T).astype(np.int8)  # arc i lies between b[i] and b[i+1]
    prev = np.roll(arcs, 1, axis=0)  # arc before ray i
    rays = np.where(arcs == prev, arcs, 0).astype(np.int8)
    return np.unique(np.vstack([arcs, rays, np.zeros((1, X.shape[0]), np.int8)]), axis=0)


def d_max(X: ArrayLike, y: ArrayLike, loss: str = "square", gamma: float = 0.0) -> float:
    """``D_max = max_w ‖D(w, 0)‖`` (Theorem 1) for ``d = 2``, exactly.

    ``D(w, 0)`` (Eq. (7)) is constant on each face ``A^{-1}(u)``; it is the minimal-norm element
    :func:`pwflow.subgradient.minimal_norm_on_face` with ``r_k = ∂_1 l(0, y_k)``, maximised over
    the faces of :func:`face_patterns_2d`.
    """
    X = np.asarray(X, float)
    y = np.asarray(y, float)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"d_max is computed here for d = 2 only; X has shape {X.shape}")
    r = get_loss(loss).derivative(np.zeros_like(y), y)
    return D_max(minimal_norm_on_face(u, X, r, gamma).D for u in face_patterns_2d(X))


def alignment_time(lam: float, dmax: float, epsilon: float = EPSILON) -> float:
    """``τ = −ε ln(λ) / D_max`` (Theorem 1, Lemma 4): :func:`pwflow.theory.tau` with the
    figures' default ``ε``."""
    return tau(lam, epsilon, dmax)


# ---------------------------------------------------------------------------- phase times
def output_norms(traj: Trajectory) -> Array:
    """``‖h(t)‖ = ((1/n) Σ_k h_θ(x_k)²)^{1/2}`` at every integrator step."""
    return np.sqrt(np.mean(traj.step_outputs**2, axis=1))


def _first(t: Array, mask: NDArray[np.bool_], after: float) -> float:
    idx = np.flatnonzero(mask & (t >= after))
    return float(t[idx[0]]) if idx.size else float(t[-1])


def phase_times(
    traj: Trajectory, align_frac: float = 0.01, growth_frac: float = 0.5, conv_frac: float = 1e-3,
) -> dict[str, float]:
    """Measurable moments of a run (documented in ``docs/figures.md``).

    * ``init``: 0.
    * ``align`` (end of the early alignment phase): first step time with
      ``‖h(t)‖ >= align_frac · ‖h(T)‖`` (:func:`output_norms`): the outputs leave ``≈ 0``.
    * ``growth`` (norm growth): first time after ``align`` with ``‖h(t)‖ >= growth_frac ‖h(T)‖``.
    * ``convergence``: first time after ``growth`` with ``L(t) − L(T) <= conv_frac (L(0) − L(T))``.
    * ``tau``: ``τ = −ε ln λ / D_max`` with ``ε = 1/4`` (Theorem 1), when ``λ`` is known
      (``meta['init']['scale']``), ``d = 2`` and the loss is a named one; absent otherwise.

    A threshold never reached gives the final time ``T``.
    """
    t = traj.step_t
    hn = output_norms(traj)
    L = traj.step_loss
    align = _first(t, hn >= align_frac * hn[-1], 0.0)
    growth = _first(t, hn >= growth_frac * hn[-1], align)
    conv = _first(t, L - L[-1] <= conv_frac * (L[0] - L[-1]), growth)
    out = {"init": float(t[0]), "align": align, "growth": growth, "convergence": conv}
    scale = float(traj.meta.get("init", {}).get("scale", float("nan")) or float("nan"))
    if traj.X.shape[1] == 2 and np.isfinite(scale) and 0 < scale < 1:
        try:
            dm = d_max(traj.X, traj.y, traj.loss_name, traj.gamma)
        except ValueError:
            dm = 0.0
        if dm > 0:
            out["tau"] = alignment_time(scale, dm)
    return out


def loss_drops(t: ArrayLike, L: ArrayLike, frac: float = 0.05, num: int = 400) -> list[tuple[float, float]]:
    """Intervals ``[t_start, t_end]`` on which the loss falls fast in log-time.

    ``L`` is resampled at ``num`` log-spaced times between the first positive step time and
    ``T``; a drop is a maximal run of grid intervals on which
    ``−ΔL / Δ ln t > frac · (L(0) − L(T))``.  Returns ``[]`` when the loss does not decrease.
    """
    t = np.asarray(t, float)
    L = np.asarray(L, float)
    if t.shape != L.shape or t.ndim != 1:
        raise ValueError(f"t and L must be 1-D arrays of equal length, got {t.shape} and {L.shape}")
    pos = t > 0
    total = float(L[0] - L[-1])
    if np.count_nonzero(pos) < 2 or not total > 0:
        return []
    g = np.geomspace(t[pos][0], t[-1], int(num))
    Lg = np.interp(g, t, L)
    rate = -np.diff(Lg) / np.diff(np.log(g))
    fast = np.concatenate([[False], rate > frac * total, [False]])
    starts = np.flatnonzero(~fast[:-1] & fast[1:])
    ends = np.flatnonzero(fast[:-1] & ~fast[1:])
    return [(float(g[a]), float(g[b])) for a, b in zip(starts, ends)]


def default_times(traj: Trajectory) -> list[float]:
    """Panel times: initialisation, end of alignment, norm growth, convergence (:func:`phase_times`).

    When the loss falls in several separate drops (:func:`loss_drops`, e.g. the Stewart data),
    the end of every drop but the last that comes after ``growth`` (by a factor ≥ 1.5 in time)
    is added: the plateaus between successive norm growths (Figure 3).
    """
    p = phase_times(traj)
    drops = loss_drops(traj.step_t, traj.step_loss)
    extra = [end for _, end in drops[:-1] if 1.5 * p["growth"] <= end < p["convergence"]]
    return sorted({p["init"], p["align"], p["growth"], *extra, p["convergence"]})


def frame_times(traj: Trajectory, frames: int) -> Array:
    """``frames`` times: 0, then geometric from ``T/1000`` to ``T`` (log-time animation; ``[T]`` for one)."""
    if int(frames) != frames or frames < 1:
        raise ValueError(f"frames must be a positive integer, got {frames!r}")
    T = float(traj.t[-1])
    if frames == 1:
        return np.array([T])
    if T == 0:  # nothing moves; frames are still labelled by their index
        return np.zeros(int(frames))
    return np.concatenate([[float(traj.t[0])], np.geomspace(T * 1e-3, T, int(frames) - 1)])


def state_at(traj: Trajectory, t: float) -> tuple[Array, Array]:
    """``(W, a)`` at time ``t``: dense for flow runs, the last snapshot ``<= t`` otherwise."""
    if traj.meta.get("method", "flow") == "flow":
        return traj.state(t)
    if not traj.t[0] <= t <= traj.t[-1]:
        raise ValueError(f"t = {t!r} is outside the computed interval [{traj.t[0]}, {traj.t[-1]}]")
    i = int(np.searchsorted(traj.t, t, side="right") - 1)
    return traj.W[i].copy(), traj.a[i].copy()


# ---------------------------------------------------------------------------- drawing
def _check_times(traj: Trajectory, times) -> list[float]:
    if times is None:
        return default_times(traj)
    times = [float(t) for t in times]
    if not times:
        raise ValueError("times must contain at least one time")
    lo, hi = float(traj.t[0]), float(traj.t[-1])
    for t in times:
        if not lo <= t <= hi:
            raise ValueError(f"times: {t:g} is outside the run's interval [{lo:g}, {hi:g}]")
    return times


def _draw_neurons(ax, traj: Trajectory, W: Array, a: Array, t: float, norm_max: float,
                  r0: float = 1.0) -> None:
    pd = neuron_polar_data(W, a, traj.X, r0=r0, norm_max=norm_max)
    top = r0 + 1.08
    circle = np.linspace(-np.pi, np.pi, 200)
    ax.plot(circle, np.full_like(circle, r0), color="0.6", lw=0.6, gid="zero-circle")
    if traj.X.shape[1] == 2 and traj.X.shape[0] <= 12:
        for phi in cone_boundary_angles(traj.X):
            ax.plot([phi, phi], [0, top], ls="--", color=CONE_COLOUR, lw=0.8, gid="cone")
    if traj.X.shape[0] <= 12:
        th = data_angles(traj.X)
        ax.scatter(th, np.full_like(th, r0 + 1.0), marker="x", color="k", s=30, zorder=3,
                   gid="data")
    ax.scatter(pd.theta, pd.radius, c=pd.colours, marker="*", s=14, linewidths=0, zorder=4,
               gid="neurons")
    ax.set_ylim(0, top)
    ax.set_yticks([])
    ax.set_xticks(np.linspace(0, 2 * np.pi, 8, endpoint=False))
    ax.tick_params(labelsize=6)
    ax.set_title(f"neurons, t = {t:.4g}", fontsize=8)


def _draw_function(ax, traj: Trajectory, W: Array, a: Array, t: float, legend: bool) -> None:
    if has_bias_1d(traj.X):
        xs = function_grid(traj.X)
        ax.plot(xs, function_curve(W, a, xs, traj.gamma), color=CURVE_COLOUR, lw=1.4,
                label=r"$h_\theta$", gid="h")
        beta = least_squares(traj.X, traj.y)
        ax.plot(xs, beta[0] * xs + beta[1], ls="--", color=LS_COLOUR, lw=1.0,
                label="least squares", gid="ls")
        fit = best_fit(traj)
        if fit is not None:
            ax.plot(xs, fit[1](xs), ls=":", color=FIT_COLOUR, lw=1.2, label=fit[0], gid="fit")
        ax.scatter(traj.X[:, 0], traj.y, color="k", s=14, zorder=3, label="data", gid="data")
        ax.set_xlabel("x", fontsize=7)
    else:  # no 1-D picture: outputs against labels
        h = activation(traj.X @ W.T, traj.gamma) @ a
        ax.scatter(traj.y, h, color="k", s=10, gid="h")
        lim = [float(min(traj.y.min(), h.min())), float(max(traj.y.max(), h.max()))]
        ax.plot(lim, lim, ls="--", color=LS_COLOUR, lw=1.0)
        ax.set_xlabel("y_k", fontsize=7)
        ax.set_ylabel("h(x_k)", fontsize=7)
    ax.tick_params(labelsize=6)
    ax.set_title(f"function, t = {t:.4g}", fontsize=8)
    if legend and has_bias_1d(traj.X):
        ax.legend(fontsize=6, loc="best")


def _draw_loss(ax, traj: Trajectory) -> dict[str, float]:
    pos = traj.step_t > 0
    ax.plot(traj.step_t[pos], traj.step_loss[pos], color=CURVE_COLOUR, lw=1.2,
            label=r"$L(\theta^t)$", gid="loss")
    ax.set_xscale("log")
    ax.set_yscale("log")
    if traj.loss_name == "square":
        ax.axhline(least_squares_loss(traj.X, traj.y), ls="--", color=LS_COLOUR, lw=1.0,
                   label=r"$L(\beta^*)$", gid="ls-loss")
    ev = traj.events["t"][traj.events["t"] > 0]
    if ev.size:
        ax.plot(ev, np.full(ev.size, 0.03), "|", color="0.4", ms=6, alpha=0.5,
                transform=ax.get_xaxis_transform(), gid="events", label="events")
    phases = phase_times(traj)
    styles = {"tau": ("#56B4E9", "-"), "align": ("0.3", ":"), "growth": ("0.3", "-."),
              "convergence": ("0.3", "--")}
    for name, (col, ls) in styles.items():
        if name in phases and phases[name] > 0:
            ax.axvline(phases[name], color=col, ls=ls, lw=1.0, gid=f"phase:{name}",
                       label=f"{name} = {phases[name]:.4g}")
    ax.set_xlabel("t (flow time, L with ½)", fontsize=7)
    ax.tick_params(labelsize=6)
    ax.legend(fontsize=6, loc="lower left", ncol=2)
    ax.set_title("loss", fontsize=8)
    return phases


def _norm_max(states) -> float:
    m = max((float(np.linalg.norm(W, axis=1).max(initial=0.0)) for W, _ in states), default=0.0)
    return m if m > 0 else 1.0


def make_figure(traj: Trajectory, kind: str, times: list[float] | None = None):
    """The matplotlib figure of :func:`plot_run` (not saved; the caller closes it).

    Artists carry a ``gid`` naming what they show: ``h``, ``ls``, ``fit``, ``data``,
    ``neurons``, ``cone``, ``zero-circle``, ``loss``, ``ls-loss``, ``events``, ``phase:<name>``.
    """
    if kind not in PLOT_KINDS:
        raise ValueError(f"kind must be one of {', '.join(PLOT_KINDS)}; got {kind!r}")
    if kind == "loss":
        fig, ax = plt.subplots(figsize=(6, 4))
        _draw_loss(ax, traj)
        return fig
    times = _check_times(traj, times)
    states = [state_at(traj, t) for t in times]
    nmax = _norm_max(states)
    k = len(times)
    rows = {"function": 1, "neurons": 1, "all": 3}[kind]
    fig = plt.figure(figsize=(3 * k, 3 * rows))
    gs = fig.add_gridspec(rows, k)
    for i, (t, (W, a)) in enumerate(zip(times, states)):
        if kind in ("function", "all"):
            _draw_function(fig.add_subplot(gs[0, i]), traj, W, a, t, legend=i == 0)
        if kind in ("neurons", "all"):
            r = 1 if kind == "all" else 0
            _draw_neurons(fig.add_subplot(gs[r, i], projection="polar"), traj, W, a, t, nmax)
    if kind == "all":
        _draw_loss(fig.add_subplot(gs[2, :]), traj)
    return fig


def plot_run(traj: Trajectory, kind: str, times: list[float] | None, out: Path) -> Path:
    """Draw a run and write it to ``out`` (format from the suffix, e.g. ``.png``, 100 dpi).

    Parameters
    ----------
    traj : Trajectory
    kind : {'function', 'neurons', 'loss', 'all'}
        ``all``: the function (top row) and the neurons (middle row) at each time, the loss below.
    times : list of float, optional
        Panel times within the run; default :func:`default_times`.
    out : Path

    Returns
    -------
    Path
        ``out``.
    """
    return _save(make_figure(traj, kind, times), Path(out))


def _save(fig, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=DPI)
    plt.close(fig)
    return out


def animate_run(traj: Trajectory, kind: str, out: Path, frames: int = 60, fps: int = 10) -> Path:
    """Animate the neurons or the learnt function over log-spaced times (:func:`frame_times`).

    ``.gif`` is written with Pillow; ``.mp4`` needs ffmpeg on the ``PATH``.  Each frame is
    labelled with its index and time (so that no two frames are identical and the GIF keeps all
    ``frames`` of them).
    """
    if kind not in ANIMATE_KINDS:
        raise ValueError(f"kind must be one of {', '.join(ANIMATE_KINDS)}; got {kind!r}")
    if int(fps) != fps or fps < 1:
        raise ValueError(f"fps must be a positive integer, got {fps!r}")
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix == ".gif":
        writer = animation.PillowWriter(fps=int(fps))
    elif suffix == ".mp4":
        if not (shutil.which("ffmpeg") and animation.writers.is_available("ffmpeg")):
            raise ValueError(f"out: writing {out.name} needs ffmpeg, which is not installed; "
                             "use a .gif file")
        writer = animation.FFMpegWriter(fps=int(fps))
    else:
        raise ValueError(f"out must end in .gif or .mp4, got {str(out)!r}")
    ts = frame_times(traj, frames)
    states = [state_at(traj, t) for t in ts]
    nmax = _norm_max(states)
    polar = kind == "neurons"
    fig = plt.figure(figsize=(4, 4))
    out.parent.mkdir(parents=True, exist_ok=True)
    with writer.saving(fig, str(out), dpi=80):
        for i, (t, (W, a)) in enumerate(zip(ts, states)):
            fig.clf()
            ax = fig.add_subplot(111, projection="polar" if polar else None)
            if polar:
                _draw_neurons(ax, traj, W, a, t, nmax)
            else:
                _draw_function(ax, traj, W, a, t, legend=True)
            fig.suptitle(f"frame {i + 1}/{len(ts)}", fontsize=7)
            writer.grab_frame()
    plt.close(fig)
    return out


# ---------------------------------------------------------------------------- paper figures
def figure1_data(eta: float = 1 / 6, seed: int = 0) -> Dataset:
    """Figure 1: three points in the boxes of Assumption 3 with second coordinate 1 (bias)."""
    d = assumption3(eta, seed)
    X = d.X.copy()
    X[:, 1] = 1.0
    return Dataset(X, d.y, name="figure1", meta={"eta": eta, "seed": seed})


def _figure1(out_dir: Path, seed: int) -> list[Path]:
    eta = 1 / 6
    data = figure1_data(eta, seed)
    fig, ax = plt.subplots(figsize=(5, 4))
    boxes = [((-1, -1 + eta), (1, 1 + eta)), ((-eta, eta), (0, eta)), ((1 - eta, 1), (1, 1 + eta))]
    for k, ((x0, x1), (y0, y1)) in enumerate(boxes):
        ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="0.4", ls="--",
                                   gid=f"box{k}"))
    xs = np.linspace(-1.1, 1.1, 400)
    beta = least_squares(data.X, data.y)
    ax.plot(xs, beta[0] * xs + beta[1], ls="--", color=LS_COLOUR, label="least squares β*")
    net = three_point_interpolant(data.X, data.y)
    if net is not None:
        ax.plot(xs, function_curve(*net, xs), ls=":", color=FIT_COLOUR,
                label="2-neuron interpolant (loss 0)")
    ax.scatter(data.X[:, 0], data.y, color="k", zorder=3, label="data")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(f"Assumption 3 with η = 1/6 (seed {seed})", fontsize=9)
    ax.legend(fontsize=7)
    return [_save(fig, Path(out_dir) / "figure1.png")]


def _note(message: str) -> None:
    """A note for the user on stderr (stdout carries the paths written)."""
    print(f"note: {message}", file=sys.stderr)


def _simulated_figure(figure: str, out_dir: Path, width, scale, t_max, seed, progress) -> list[Path]:
    from .integrator import simulate

    p = {**DEFAULTS[figure]}
    for key, val in (("width", width), ("scale", scale), ("t_max", t_max)):
        if val is not None:
            p[key] = val
    paper = PAPER[figure]
    if p["width"] < paper["width"]:
        _note(f"{figure}: width m = {p['width']} (the paper: {paper['width']:,})")
    if p["t_max"] < paper["t_max"]:
        _note(f"{figure}: horizon t = {p['t_max']:g} (the paper: {paper['t_max']:g})")
    if figure == "figure2":
        data = three_points()
        init = balanced(int(p["width"]), 2, float(p["scale"]), seed)
    else:
        data = stewart(seed=seed, n=40)
        init = unbalanced(int(p["width"]), 2, float(p["scale"]), seed)
    start = time.perf_counter()
    traj = simulate(data, init, float(p["t_max"]), progress=progress)
    if not traj.success:
        _note(f"{figure}: the run stopped early ({traj.message}) at t = {traj.t[-1]:.6g}")
    if show_bar(progress):
        print(f"{figure}: simulated in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    out_dir = Path(out_dir)
    paths = [traj.save(out_dir / f"{figure}.npz")]
    paths.append(plot_run(traj, "all", None, out_dir / f"{figure}.png"))
    return paths


def reproduce(figure: str, out_dir: Path, width: int | None, scale: float | None,
              t_max: float | None, seed: int, progress: bool | None) -> list[Path]:
    """Recompute a figure of the paper; returns the files written.

    ``progress``: the simulation's progress bar (``None``: only when stderr is a terminal).

    * ``figure1``: the data of Figure 1 (Assumption 3 with ``η = 1/6``, boxes drawn) with the
      least-squares line and the 2-neuron interpolant: ``figure1.png``.
    * ``figure2``: Appendix B.1 (three points, balanced, ``λ = 1e-3``, ``t ≤ 4000``), default
      width 2000: ``figure2.npz`` (the trajectory) and ``figure2.png`` (panels at
      :func:`default_times`, loss below).
    * ``figure3``: Appendix B.2 (Stewart, ``n = 40``, unbalanced), likewise.

    A note goes to stderr when the width or horizon is below the paper's.
    """
    if figure not in FIGURES:
        raise ValueError(f"figure must be one of {', '.join(FIGURES)}; got {figure!r}")
    if width is not None and (int(width) != width or width < 1):
        raise ValueError(f"width must be a positive integer, got {width!r}")
    if scale is not None and not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be positive, got {scale!r}")
    if t_max is not None and not (np.isfinite(t_max) and t_max >= 0):
        raise ValueError(f"t_max must be >= 0, got {t_max!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if figure == "figure1":
        if any(v is not None for v in (width, scale, t_max)):
            _note("figure1 shows data only; width, scale and t_max are ignored")
        return _figure1(out_dir, seed)
    return _simulated_figure(figure, out_dir, width, scale, t_max, seed, progress)
