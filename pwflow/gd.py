"""Plain fixed-step gradient descent on the two-layer network of Eq. (1).

This is what practitioners run (Appendix B.1: learning rate ``1e-3``, ``2·10⁶`` iterations),
provided so that the exact flow of Eq. (2) can be compared with it on the same data, the same
initialisation (Eq. (3)) and the same loss.  Step ``k`` is identified with the flow time
``t = k · lr``: gradient descent with step ``lr`` is the explicit Euler scheme of Eq. (2) with the
subgradient selected by the convention ``sigma'(0) = slope_at_zero``.

Only the iterates at the steps nearest to ``save_times`` are stored, so memory is
``O(len(save_times) · m · d)``, never ``O(steps · m)``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .data import Dataset
from .init import Init
from .model import Loss, check_gamma, check_time, get_loss
from .progress import make_bar, show_bar

__all__ = ["GDResult", "gradient_descent", "time_per_step", "default_save_times"]

Array = NDArray[np.float64]


@dataclass(frozen=True)
class GDResult:
    """Saved iterates of :func:`gradient_descent`.

    Attributes
    ----------
    t : ndarray, shape (k,)
        Times ``step · lr`` of the saved iterates (increasing, starts at 0).
    W : ndarray, shape (k, m, d)
        Hidden-layer weights ``w_j`` at the saved times.
    a : ndarray, shape (k, m)
        Output weights ``a_j`` at the saved times.
    loss : ndarray, shape (k,)
        Empirical loss ``L(theta)`` (Section 2) at the saved times.
    steps : int
        Number of steps actually performed (fewer than requested if interrupted).
    lr : float
        The step size.
    wall_time : float
        Seconds spent in the loop.
    meta : dict
        ``loss``, ``gamma``, ``slope_at_zero``, ``init`` kind/scale/seed, ``dataset`` name,
        ``steps_requested``, ``interrupted`` and ``saved_steps``.
    """

    t: Array
    W: Array
    a: Array
    loss: Array
    steps: int
    lr: float
    wall_time: float
    meta: dict = field(default_factory=dict, compare=False)


def _check_lr(lr: float) -> float:
    try:
        v = float(lr)
    except (TypeError, ValueError):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}") from None
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    return v


def _n_steps(lr: float, t_max: float | None, steps: int | None) -> int:
    """Number of steps from exactly one of ``t_max`` (``floor(t_max/lr)``) and ``steps``."""
    if (t_max is None) == (steps is None):
        raise ValueError("give exactly one of t_max and steps")
    if steps is not None:
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
            raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
        return int(steps)
    tm = check_time(t_max, "t_max")
    # floor with a relative tolerance so that t_max = k·lr up to rounding gives k steps
    return int(np.floor(tm / lr * (1 + 1e-12)))


def default_save_times(t_final: float, t_first: float, num: int = 100) -> Array:
    """``0`` followed by ``num`` geometrically spaced times from ``t_first`` to ``t_final``."""
    if t_final <= 0:
        return np.zeros(1)
    return np.concatenate([[0.0], np.geomspace(min(t_first, t_final), t_final, num)])


def _save_steps(save_times: ArrayLike | None, lr: float, n: int) -> NDArray[np.int64]:
    """Sorted unique step indices nearest to ``save_times`` (always includes 0 and ``n``)."""
    if save_times is None:
        times = default_save_times(n * lr, lr)
    else:
        times = np.atleast_1d(np.asarray(save_times, dtype=float))
        if times.ndim != 1 or times.size == 0 or not np.all(np.isfinite(times)):
            raise ValueError("save_times must be a non-empty 1-D array of finite times")
        if np.any(times < 0) or np.any(times > n * lr * (1 + 1e-12) + 1e-300):
            raise ValueError(
                f"save_times must lie in [0, {n * lr!r}] (the time steps·lr of the last step)"
            )
    k = np.clip(np.rint(times / lr), 0, n).astype(np.int64)
    return np.unique(np.concatenate([[0, n], k]))


def _check_shapes(data: Dataset, init: Init) -> None:
    if not isinstance(data, Dataset):
        raise ValueError(f"data must be a pwflow.Dataset, got {type(data).__name__}")
    if not isinstance(init, Init):
        raise ValueError(f"init must be a pwflow.Init, got {type(init).__name__}")
    if data.d != init.d:
        raise ValueError(
            f"init has input dimension d = {init.d} but data has d = {data.d} "
            "(did you forget the bias coordinate?)"
        )


class _Stepper:
    """One gradient step, vectorised over neurons, on transposed weights ``Wt`` (d, m).

    Same arithmetic as :func:`pwflow.model.gradient` (tested against it), laid out so that
    every product is a BLAS call over the ``m`` neurons: cost ``O(m n d)`` per step.
    """

    def __init__(self, X: Array, y: Array, loss: Loss, gamma: float, at_zero: float) -> None:
        self.X, self.y, self.loss = X, y, loss
        self.gamma, self.at_zero = gamma, at_zero
        self.n = X.shape[0]

    def forward(self, Wt: Array, a: Array) -> tuple[Array, Array, Array]:
        """Pre-activations ``Z = X Wt`` (n, m), activations, outputs ``h`` (n,)."""
        Z = self.X @ Wt
        # gamma in [0, 1]: max(z, gamma z) is the leaky ReLU of Eq. (1)
        act = np.maximum(Z, 0.0) if self.gamma == 0 else np.maximum(Z, self.gamma * Z)
        return Z, act, act @ a

    def value(self, h: Array) -> float:
        """``L(theta)`` from the outputs ``h``."""
        return float(np.mean(self.loss.value(h, self.y)))

    def grads(self, Z: Array, act: Array, h: Array, a: Array) -> tuple[Array, Array]:
        """``(dL/dWt, dL/da)`` with ``sigma'(0) = at_zero``."""
        r = self.loss.derivative(h, self.y) / self.n  # (n,)
        pos = Z > 0
        if self.gamma == 0:
            eta_r = pos * r[:, None]
        else:
            eta_r = np.where(pos, 1.0, self.gamma) * r[:, None]
        if self.at_zero != self.gamma:
            zero = Z == 0
            if zero.any():
                eta_r[zero] = (self.at_zero * np.broadcast_to(r[:, None], Z.shape))[zero]
        grad_a = r @ act  # (m,)
        grad_Wt = (self.X.T @ eta_r) * a  # (d, m)
        return grad_Wt, grad_a

    def step(self, Wt: Array, a: Array, lr: float) -> tuple[Array, Array, float]:
        """One update; returns the new ``(Wt, a)`` and ``L`` at the *old* point."""
        Z, act, h = self.forward(Wt, a)
        gW, ga = self.grads(Z, act, h, a)
        return Wt - lr * gW, a - lr * ga, self.value(h)


def _make_stepper(
    data: Dataset, loss: str | Loss, gamma: float, slope_at_zero: float | None
) -> _Stepper:
    gamma = check_gamma(gamma)
    at_zero = gamma if slope_at_zero is None else float(slope_at_zero)
    if not np.isfinite(at_zero):
        raise ValueError(f"slope_at_zero must be a finite number or None, got {slope_at_zero!r}")
    return _Stepper(np.asarray(data.X, float), np.asarray(data.y, float), get_loss(loss), gamma,
                    at_zero)


def gradient_descent(
    data: Dataset,
    init: Init,
    *,
    lr: float,
    t_max: float | None = None,
    steps: int | None = None,
    gamma: float = 0.0,
    loss: str | Loss = "square",
    slope_at_zero: float | None = None,
    save_times: ArrayLike | None = None,
    progress: bool | None = False,
) -> GDResult:
    """Run ``theta_{k+1} = theta_k − lr · g(theta_k)`` from ``init`` on ``data``.

    ``g`` is the gradient of ``L(theta) = (1/n) sum_k l(h_theta(x_k), y_k)`` (Section 2) with
    the convention ``sigma'(0) = slope_at_zero`` (default ``gamma``; ``0`` for ReLU, as in common
    implementations and the paper's Remark 2).  This is the explicit Euler scheme of the
    subgradient flow Eq. (2): step ``k`` corresponds to time ``t = k · lr``.

    Parameters
    ----------
    data : Dataset
        Training data ``X`` (n, d), ``y`` (n,).
    init : Init
        Initial weights ``W`` (m, d), ``a`` (m,), e.g. from :func:`pwflow.init.balanced`.
    lr : float
        Step size, positive and finite.
    t_max, steps : float or int
        Exactly one: the final time (``floor(t_max / lr)`` steps are run) or the step count.
    gamma : float
        Leaky-ReLU slope in ``[0, 1]`` (Eq. (1)).
    loss : str or Loss
        ``'square'`` (``½(ŷ−y)²``, the paper's convention), ``'logistic'`` or a :class:`Loss`.
    slope_at_zero : float or None
        Value of ``sigma'(0)``; ``None`` means ``gamma``.
    save_times : array_like or None
        Times in ``[0, steps·lr]``; the iterate at the nearest step is stored.  Default:
        0 and 100 geometrically spaced times in ``(0, steps·lr]``.  Step 0 and the last step
        are always stored.
    progress : bool or None
        A tqdm progress bar on stderr (``None``: only when stderr is a terminal).  With or
        without it, ``KeyboardInterrupt`` during the loop returns the partial result with
        ``meta['interrupted'] = True``.

    Returns
    -------
    GDResult
    """
    lr = _check_lr(lr)
    n_steps = _n_steps(lr, t_max, steps)
    _check_shapes(data, init)
    stepper = _make_stepper(data, loss, gamma, slope_at_zero)
    save = _save_steps(save_times, lr, n_steps)

    Wt = np.ascontiguousarray(np.asarray(init.W, float).T)  # (d, m), copy
    a = np.array(init.a, dtype=float)
    # one tuple per saved step, appended atomically (safe under KeyboardInterrupt)
    saved: list[tuple[int, Array, Array, float]] = []
    next_i = 0
    every = max(n_steps // 200, 1)
    interrupted = False
    k = 0
    t0 = time.perf_counter()
    bar = make_bar(n_steps, progress, desc="gd", unit="step",
                   bar_format="{desc}: step {n_fmt}/{total_fmt} {percentage:3.0f}%|{bar}| "
                              "[{elapsed}<{remaining}{postfix}]")
    try:
        while True:
            Z, act, h = stepper.forward(Wt, a)
            L = stepper.value(h)
            if next_i < save.size and save[next_i] == k:
                saved.append((k, Wt.T.copy(), a.copy(), L))
                next_i += 1
            if k % every == 0 or k == n_steps:
                bar.set_postfix_str(f"L = {L:.6g}", refresh=False)
                bar.update(k - bar.n)
            if k == n_steps:
                break
            gW, ga = stepper.grads(Z, act, h, a)
            Wt, a, k = Wt - lr * gW, a - lr * ga, k + 1  # one rebinding: (Wt, a, k) consistent
    except KeyboardInterrupt:
        interrupted = True
        if not saved or saved[-1][0] != k:
            saved.append((k, Wt.T.copy(), a.copy(), stepper.value(stepper.forward(Wt, a)[2])))
    wall = time.perf_counter() - t0
    bar.close()
    if interrupted and show_bar(progress):
        sys.stderr.write("gd: interrupted\n")
    ks = np.asarray([s[0] for s in saved], dtype=np.int64)
    meta = {
        "loss": stepper.loss.name,
        "gamma": stepper.gamma,
        "slope_at_zero": stepper.at_zero,
        "init": {"kind": init.kind, "scale": init.scale, "seed": init.seed},
        "dataset": data.name,
        "steps_requested": n_steps,
        "saved_steps": ks,
        "interrupted": interrupted,
    }
    return GDResult(
        t=ks * lr,
        W=np.stack([s[1] for s in saved]),
        a=np.stack([s[2] for s in saved]),
        loss=np.asarray([s[3] for s in saved], dtype=float),
        steps=int(k),
        lr=lr,
        wall_time=wall,
        meta=meta,
    )


def time_per_step(
    data: Dataset,
    init: Init,
    lr: float,
    gamma: float = 0.0,
    loss: str | Loss = "square",
    n_steps: int = 200,
) -> float:
    """Measured wall-clock seconds per gradient step (median of 3 runs of ``n_steps`` steps).

    Useful to extrapolate the cost of the paper's ``2·10⁶`` steps with ``m = 200 000``
    (Appendix B.1).
    """
    lr = _check_lr(lr)
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise ValueError(f"n_steps must be an integer >= 1, got {n_steps!r}")
    _check_shapes(data, init)
    stepper = _make_stepper(data, loss, gamma, None)
    runs = []
    for _ in range(3):
        Wt = np.ascontiguousarray(np.asarray(init.W, float).T)
        a = np.array(init.a, dtype=float)
        t0 = time.perf_counter()
        for _ in range(int(n_steps)):
            Wt, a, _L = stepper.step(Wt, a, lr)
        runs.append((time.perf_counter() - t0) / n_steps)
    return float(np.median(runs))
