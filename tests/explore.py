"""Session 13's exploration: four seeded families beyond the campaign's (``tests/campaign.py``).

Not a test module.  ``seed % 4`` picks the family, each drawn from
``numpy.random.default_rng(seed)`` with d = 2–5, n = 3–8, m = 1–6, ``γ ∈ {0, 0.1, 0.5}``,
the square or logistic loss and a balanced or unbalanced initialisation:

0. near-parallel pairs, ``x_1 = c x_0 + δ ξ`` with ``c ∈ {1, −1, 2}``, ``δ ∈ {1e-4, 1e-7,
   1e-10}`` (thin wedges between two hyperplanes, and pairs below ``SPAN_RTOL``);
1. neurons projected onto a hyperplane and moved ``ε ∈ {1e-6, 1e-9, 1e-12, 0}`` off it;
2. every ``a_j = 0`` (output layer initialised at zero);
3. wide, m = 20–59 (several neurons reaching ``w = 0`` with unbalanced inits);
4. (seeds from ``HIGH_D_SEEDS`` = 100 000 on, session 14) d = 6–9, n = 4–12, with one point
   in the span of two others in half the problems and neurons started on one or two
   hyperplanes (:func:`high_d_arrays`);
5. (seeds from ``NEAR_DEPENDENT_SEEDS`` = 200 000 on, session 14) a point within 1e-11 to
   1e-9 of the span of two others, neurons started on those two hyperplanes
   (:func:`near_dependent_arrays`);
6. (seeds from ``NEAR_SPAN3_SEEDS`` = 300 000 on, session 15) d = 4–6, a point within 1e-11
   to 1e-9 of the span of three others, neurons started on those three hyperplanes
   (:func:`near_span3_arrays`);
7. (seeds from ``NEAR_SPAN_SEEDS`` = 400 000 on, session 15) d = 4–6, a point 1e-11 (below
   ``SPAN_RTOL``) from the span of ``s = 3 … d − 1`` others, two thirds of the neurons
   started on those ``s`` hyperplanes (:func:`near_span_arrays`);
8. (seeds from ``GRID_SEEDS`` = 500 000 on, session 16) integer coordinates in
   ``{−2, …, 2}``, d = 3–5: exactly dependent triples, parallel pairs, repeated points, a
   bias column in half the problems (:func:`grid_arrays`);
9. (seeds from ``MANY_POINTS_SEEDS`` = 600 000 on, session 16) n = 12–30, d = 3–5,
   m = 4–16, weights' scale 1e-3, 0.1 or 1 (:func:`many_points_arrays`);
10. (seeds from ``SCALES_SEEDS`` = 700 000 on, session 17) any leak ``γ ∈ [0, 1)`` (uniform,
    or 0.9, 0.99, 1/3) and points whose norms span 3.5 decades (:func:`scales_arrays`);
11. (seeds from ``WIDE_SEEDS`` = 800 000 on, session 26) m = 60–200 neurons in d = 3–6,
    n = 6–20, small and large inits (:func:`wide_arrays`);
12. (seeds from ``WIDE_BIAS_SEEDS`` = 900 000 on, session 26) the same widths on points with
    a bias coordinate, d = 3–5, n = 4–16, scales 1e-4 to 1e-2 (:func:`wide_bias_arrays`);
13. (seeds from ``SYMMETRIC_SEEDS`` = 1 000 000 on, session 30) symmetric data, d = 3–5:
    opposite pairs ``±x`` (one hyperplane for two points), or signed basis vectors
    ``±e_i`` with a generic point (orthogonal hyperplanes, several meeting at every start),
    neurons with exact zero coordinates (started on several coordinate hyperplanes at once,
    no rounding) or projected onto the pairs' hyperplanes (:func:`symmetric_arrays`);
14. (seeds from ``COPIES_SEEDS`` = 1 100 000 on, session 44) d = 1 in a third of the
    problems, repeated points with their own labels, a neuron's exact copy, an output weight
    exactly 0, scales up to 3 (:func:`copies_arrays`);
15. (seeds from ``LONG_SEEDS`` = 1 200 000 on, session 45) long horizons, t = 20, 40 or 60
    (the others run to t = 5): d = 2–5, n = 3–8, m = 2–6, Gaussian, bias-coordinate or
    half-integer data, a quarter in the regime of issue 10's first reproducer (square loss,
    ReLU, scale 1e-2), where sliding on several hyperplanes and its exits come late
    (:func:`long_arrays`, :func:`horizon`);
16. (seeds from ``SPARSE_SEEDS`` = 1 300 000 on, session 46) sparse dyadic data and
    neurons (entries 0 or ``±{1/4, 3/8, 1/2, 3/4, 1, 13/8, 2}``, so orthogonal points and
    dependent hyperplanes are common), a zero column in half the problems with neurons
    started in ``ker X``, labels 0 among others, t = 20 (:func:`sparse_arrays`);
17. (seeds from ``LARGE_D_SEEDS`` = 1 400 000 on, session 48) d = 9–16, n = 6–20,
    m = 3–16: Gaussian points, low-rank points with a bias coordinate, or sparse points,
    at init scales 1e-3 to 0.5, t = 5 or 20 (:func:`large_d_arrays`).

Each problem is checked as the campaign checks its own (:func:`campaign.check`)::

    python tests/explore.py 100 400 > explore.jsonl      # seeds 100..499, 120 s each at most

Findings and their tests: ``docs/integrator.md`` (known faults), ``docs/paper-readings.md``
N6 and N7, ``tests/test_issue10_regressions.py`` (``problem_arrays`` below).
"""

from __future__ import annotations

import json
import signal
import sys

import numpy as np

from campaign import Case, check
from strategies import Problem


#: seeds from here on draw the high-dimension family (14) instead of ``seed % 4``
HIGH_D_SEEDS = 100_000
#: seeds from here on draw the near-dependent family (15)
NEAR_DEPENDENT_SEEDS = 200_000
#: seeds from here on draw the near-span-of-three family (16)
NEAR_SPAN3_SEEDS = 300_000
#: seeds from here on draw the near-span family (17)
NEAR_SPAN_SEEDS = 400_000
#: seeds from here on draw the integer-grid family (18)
GRID_SEEDS = 500_000
#: seeds from here on draw the many-points family (19)
MANY_POINTS_SEEDS = 600_000
#: seeds from here on draw the leak-and-scales family (20)
SCALES_SEEDS = 700_000
#: seeds from here on draw the wide family (21)
WIDE_SEEDS = 800_000
#: seeds from here on draw the wide family with a bias coordinate and small inits (22)
WIDE_BIAS_SEEDS = 900_000
#: seeds from here on draw the symmetric family (23)
SYMMETRIC_SEEDS = 1_000_000
#: seeds from here on draw the copies family (24)
COPIES_SEEDS = 1_100_000
#: seeds from here on draw the long-horizon family (25)
LONG_SEEDS = 1_200_000
#: seeds from here on draw the sparse dyadic family (26)
SPARSE_SEEDS = 1_300_000
#: seeds from here on draw the large-dimension family (27)
LARGE_D_SEEDS = 1_400_000


def _output_layer(rng, W):
    """Output weights of random signs: balanced (``|a_j| = ‖w_j‖``) or, with odds ½,
    unbalanced (``|a_j|`` uniform in ``[0.05, 1]`` times the largest ``‖w_j‖``)."""
    m = W.shape[0]
    sign = rng.choice([-1.0, 1.0], size=m)
    return (sign * np.linalg.norm(W, axis=1) if rng.integers(2)
            else sign * rng.uniform(0.05, 1, size=m) * np.max(np.linalg.norm(W, axis=1)))


def _gaussian_arrays(rng, dims: tuple[int, int], points: tuple[int, int],
                     widths: tuple[int, int], scales: tuple[float, ...], bias: bool = False):
    """``(X, y, W, a, gamma, loss)`` with d, n, m uniform in the half-open ``dims``, ``points``,
    ``widths``, ``γ ∈ {0, 0.1, 0.5}``, either loss, Gaussian points (the last coordinate a
    constant 1, the paper's bias, with ``bias``), Gaussian weights at a scale drawn from
    ``scales`` and :func:`_output_layer`: the draws of families 19, 21 and 22, in one order."""
    d, n, m = (int(rng.integers(*dims)), int(rng.integers(*points)),
               int(rng.integers(*widths)))
    gamma, loss = float(rng.choice([0.0, 0.1, 0.5])), str(rng.choice(["square", "logistic"]))
    X = rng.normal(size=(n, d - 1 if bias else d))
    if bias:
        X = np.hstack([X, np.ones((n, 1))])
    y = rng.normal(size=n) if loss == "square" else rng.choice([-1.0, 1.0], size=n)
    W = float(rng.choice(scales)) * rng.normal(size=(m, d))
    a = _output_layer(rng, W)
    return X, y, W, a, gamma, loss


def grid_arrays(seed: int):
    """Family 18 (session 16): exactly degenerate data, integer coordinates in ``{−2, …, 2}``
    (d = 3–5, n = 5–12, a constant last coordinate, the paper's bias, in half the problems):
    exactly dependent triples, parallel and opposite pairs, repeated points; neurons with
    small integer weights in a third of the problems (starts on several hyperplanes at once
    that the data make concurrent), else Gaussian.  Drawn from
    ``default_rng(seed − GRID_SEEDS)``."""
    rng = np.random.default_rng(seed - GRID_SEEDS)
    d, n, m = int(rng.integers(3, 6)), int(rng.integers(5, 13)), int(rng.integers(2, 11))
    gamma, loss = float(rng.choice([0.0, 0.1, 0.5])), str(rng.choice(["square", "logistic"]))
    X = rng.integers(-2, 3, size=(n, d)).astype(float)
    if rng.integers(2):
        X[:, -1] = 1.0
    X[np.all(X == 0, axis=1), 0] = 1.0  # no zero point (refused by Dataset)
    y = rng.normal(size=n) if loss == "square" else rng.choice([-1.0, 1.0], size=n)
    W = (rng.integers(-2, 3, size=(m, d)).astype(float) * 0.1 if rng.integers(3) == 0
         else 0.3 * rng.normal(size=(m, d)))
    W[np.all(W == 0, axis=1), 0] = 0.1
    a = _output_layer(rng, W)
    return X, y, W, a, gamma, loss


def many_points_arrays(seed: int):
    """Family 19 (session 16): n = 12–30 points in d = 3–5, m = 4–16 neurons, the weights'
    scale drawn from ``{1e-3, 0.1, 1}`` (small inits align first; large ones move their
    hyperplanes through many points).  Drawn from ``default_rng(seed − MANY_POINTS_SEEDS)``."""
    rng = np.random.default_rng(seed - MANY_POINTS_SEEDS)
    return _gaussian_arrays(rng, (3, 6), (12, 31), (4, 17), (1e-3, 0.1, 1.0))


def scales_arrays(seed: int):
    """Family 20 (session 17): d = 2–5, n = 3–10, m = 1–8, the leak ``γ`` uniform in
    ``[0, 1)`` or one of 0.9, 0.99 and 1/3 (the other families draw ``γ ∈ {0, 0.1, 0.5}``),
    each point's norm ``10^u`` with ``u`` uniform in ``[−3, 0.5]`` (the square loss's labels
    scaled alike in half the problems), the weights' scale ``10^v``, ``v`` uniform in
    ``[−3, 0]``.  Drawn from ``default_rng(seed − SCALES_SEEDS)``."""
    rng = np.random.default_rng(seed - SCALES_SEEDS)
    d, n, m = int(rng.integers(2, 6)), int(rng.integers(3, 11)), int(rng.integers(1, 9))
    gamma = float(rng.choice([rng.uniform(0, 1), 0.9, 0.99, 1 / 3]))
    loss = str(rng.choice(["square", "logistic"]))
    norms = 10.0 ** rng.uniform(-3, 0.5, size=n)
    X = rng.normal(size=(n, d))
    X *= (norms / np.linalg.norm(X, axis=1))[:, None]
    y = rng.normal(size=n) if loss == "square" else rng.choice([-1.0, 1.0], size=n)
    if loss == "square" and rng.integers(2):
        y *= norms
    W = 10.0 ** rng.uniform(-3, 0) * rng.normal(size=(m, d))
    a = _output_layer(rng, W)
    return X, y, W, a, gamma, loss


def wide_arrays(seed: int):
    """Family 21 (session 26): m = 60–200 neurons in d = 3–6, n = 6–20 Gaussian points, the
    weights' scale drawn from ``{1e-2, 0.1, 0.5}`` (small inits: many neurons aligning at
    once, several hyperplanes met in one step, the batched events and the replayed empty
    faces), checked against gradient descent like the others.  Drawn from
    ``default_rng(seed − WIDE_SEEDS)``."""
    rng = np.random.default_rng(seed - WIDE_SEEDS)
    return _gaussian_arrays(rng, (3, 7), (6, 21), (60, 201), (1e-2, 0.1, 0.5))


def wide_bias_arrays(seed: int):
    """Family 22 (session 26): the paper's setting in higher dimension and width: points
    ``(x, 1)`` with ``x`` Gaussian in d − 1 = 2–4 dimensions (the last coordinate a bias, as
    in Appendix B), n = 4–16, m = 60–200 neurons at the small scales of early alignment
    (``{1e-4, 1e-3, 1e-2}``).  Drawn from ``default_rng(seed − WIDE_BIAS_SEEDS)``."""
    rng = np.random.default_rng(seed - WIDE_BIAS_SEEDS)
    return _gaussian_arrays(rng, (3, 6), (4, 17), (60, 201), (1e-4, 1e-3, 1e-2), bias=True)


def near_span_arrays(seed: int):
    """Family 17 (session 15): d = 4–6, n = 5–9, ``x_s = Σ_{i<s} c_i x_i + 1e-11 ‖x_0‖ ξ``
    with ``3 <= s <= min(d, n) − 1`` (below ``SPAN_RTOL``: the flow moves it onto the span),
    two thirds of the neurons started on ``∩_{i<s} x_i^⊥``.  Drawn from
    ``default_rng(seed − NEAR_SPAN_SEEDS)``."""
    return _near_span_problem(np.random.default_rng(seed - NEAR_SPAN_SEEDS),
                              lambda rng, d, n: (int(rng.integers(3, min(d, n))), 1e-11, 3))


def near_span3_arrays(seed: int):
    """Family 16 (session 15): d = 4–6, n = 5–9, ``x_3 = Σ_{i<3} c_i x_i + δ ‖x_0‖ ξ`` with
    ``δ ∈ {1e-11, 5e-11, 2e-10, 1e-9}``, and half the neurons started on
    ``x_0^⊥ ∩ x_1^⊥ ∩ x_2^⊥`` (where ``x_3``'s hyperplane is implied, or a thin wedge)."""
    return _near_span_problem(
        np.random.default_rng(seed),
        lambda rng, d, n: (3, float(rng.choice([1e-11, 5e-11, 2e-10, 1e-9])), 2))


def _near_span_problem(rng, pick):
    """Families 16 and 17: ``pick(rng, d, n) = (s, δ, odds)`` sets the span's size, the
    distance of ``x_s`` from it and the odds ``1 − 1/odds`` of a neuron starting on the
    ``s`` hyperplanes."""
    d, n, m = int(rng.integers(4, 7)), int(rng.integers(5, 10)), int(rng.integers(2, 7))
    gamma, loss = float(rng.choice([0.0, 0.1, 0.5])), str(rng.choice(["square", "logistic"]))
    X = rng.normal(size=(n, d))
    s, delta, odds = pick(rng, d, n)
    xi = rng.normal(size=d)
    X[s] = rng.normal(size=s) @ X[:s] + delta * np.linalg.norm(X[0]) * xi / np.linalg.norm(xi)
    return (X, *_starts_on_span(rng, X, s, m, loss, odds), gamma, loss)


def _starts_on_span(rng, X, s: int, m: int, loss: str, odds: int):
    """Families 15–17 after the data: labels, weights with each neuron put on
    ``∩_{i<s} x_i^⊥`` with odds ``1 − 1/odds``, and a balanced or unbalanced output layer;
    returns ``(y, W, a)``."""
    n, d = X.shape
    y = rng.normal(size=n) if loss == "square" else rng.choice([-1.0, 1.0], size=n)
    W = 0.3 * rng.normal(size=(m, d))
    for j in range(m):
        if rng.integers(odds):
            B = X[:s]
            W[j] -= B.T @ np.linalg.solve(B @ B.T, B @ W[j])
    a = _output_layer(rng, W)
    return y, W, a


def near_dependent_arrays(seed: int):
    """Family 15 (session 14): d = 3–5, n = 4–8, ``x_2 = c_0 x_0 + c_1 x_1 + δ ‖x_0‖ ξ``
    with ``δ ∈ {1e-11, 5e-11, 2e-10, 1e-9}`` (within ``SPAN_RTOL`` of the span, or just
    beyond: ``x_2``'s hyperplane implied by ``x_0^⊥ ∩ x_1^⊥`` or a thin wedge next to it), and
    half the neurons started on ``x_0^⊥ ∩ x_1^⊥``."""
    rng = np.random.default_rng(seed)
    d, n, m = int(rng.integers(3, 6)), int(rng.integers(4, 9)), int(rng.integers(2, 7))
    gamma, loss = float(rng.choice([0.0, 0.1, 0.5])), str(rng.choice(["square", "logistic"]))
    X = rng.normal(size=(n, d))
    delta = float(rng.choice([1e-11, 5e-11, 2e-10, 1e-9]))
    xi = rng.normal(size=d)
    X[2] = (rng.normal() * X[0] + rng.normal() * X[1]
            + delta * np.linalg.norm(X[0]) * xi / np.linalg.norm(xi))
    return (X, *_starts_on_span(rng, X, 2, m, loss, 2), gamma, loss)


def high_d_arrays(seed: int):
    """Family 14 (session 14): d = 6–9, n = 4–12, m = 1–6, with one point in the span of two
    others in half the problems (hyperplanes implied by an intersection), a few neurons put
    on one or two hyperplanes, and ``a_j = 0`` for one neuron in a quarter of them."""
    rng = np.random.default_rng(seed)
    d, n, m = int(rng.integers(6, 10)), int(rng.integers(4, 13)), int(rng.integers(1, 7))
    gamma, loss = float(rng.choice([0.0, 0.1, 0.5])), str(rng.choice(["square", "logistic"]))
    X = rng.normal(size=(n, d))
    if rng.integers(2):
        X[-1] = rng.normal() * X[0] + rng.normal() * X[1]
    y = rng.normal(size=n) if loss == "square" else rng.choice([-1.0, 1.0], size=n)
    W = 0.3 * rng.normal(size=(m, d))
    for j in range(m):
        if rng.integers(3) == 0:
            ks = rng.choice(n, size=int(rng.integers(1, 3)), replace=False)
            B = X[ks]
            W[j] -= B.T @ np.linalg.lstsq(B @ B.T, B @ W[j], rcond=None)[0]
    balanced = bool(rng.integers(2))
    s = rng.choice([-1.0, 1.0], size=m)
    a = (s * np.linalg.norm(W, axis=1) if balanced
         else s * rng.uniform(0.05, 1, size=m) * np.max(np.linalg.norm(W, axis=1)))
    if rng.integers(4) == 0:
        a[0] = 0.0
    return X, y, W, a, gamma, loss


def symmetric_arrays(seed: int):
    """Family 23 (session 30): symmetric data in d = 3–5.  Half the problems: opposite pairs
    ``[B; −B]`` of 2–4 Gaussian points (each pair one hyperplane, its two sides' fields
    differing), labels odd (``y(−x) = −y(x)``) or B's permuted, a third of the neurons projected
    onto one pair's hyperplane.  The others: 3–2d of the signed basis vectors ``±e_i`` and
    one Gaussian point, neurons whose coordinates are zeroed with odds ½ each (exactly on
    several orthogonal hyperplanes, their intersection a coordinate subspace).  Weights'
    scale 1e-3 or 0.3.  Drawn from ``default_rng(seed − SYMMETRIC_SEEDS)``."""
    rng = np.random.default_rng(seed - SYMMETRIC_SEEDS)
    d, m = int(rng.integers(3, 6)), int(rng.integers(2, 9))
    gamma, loss = float(rng.choice([0.0, 0.1, 0.5])), str(rng.choice(["square", "logistic"]))
    scale = float(rng.choice([1e-3, 0.3]))
    W = scale * rng.normal(size=(m, d))
    if rng.integers(2):
        B = rng.normal(size=(int(rng.integers(2, 5)), d))
        X = np.vstack([B, -B])
        yb = rng.normal(size=B.shape[0]) if loss == "square" else rng.choice([-1.0, 1.0],
                                                                             size=B.shape[0])
        y = np.r_[yb, -yb if rng.integers(2) else rng.permutation(yb)]
        for j in range(m):
            if rng.integers(3) == 0:
                x = B[int(rng.integers(B.shape[0]))]
                W[j] -= (W[j] @ x) / (x @ x) * x
    else:
        signed = np.vstack([np.eye(d), -np.eye(d)])
        pick = rng.choice(2 * d, size=int(rng.integers(3, 2 * d + 1)), replace=False)
        X = np.vstack([signed[pick], rng.normal(size=(1, d))])
        y = (rng.normal(size=X.shape[0]) if loss == "square"
             else rng.choice([-1.0, 1.0], size=X.shape[0]))
        zero = rng.integers(2, size=(m, d)).astype(bool)
        zero[np.all(zero, axis=1), 0] = False  # no neuron at w = 0
        W[zero] = 0.0
    a = _output_layer(rng, W)
    return X, y, W, a, gamma, loss


def copies_arrays(seed: int):
    """Family 24 (session 44): copies and the smallest dimensions.  A third of the problems
    in d = 1 (every hyperplane is ``w = 0``: a neuron meets all of them at once, or none)
    and the others in d = 2–5, n = 2–10 Gaussian points of which 1–3 are exact repeats of
    others (with their own labels: the loss pulls the same output two ways), m = 1–8 neurons
    whose second is an exact copy of the first's ``w`` (its ``a`` drawn apart), and, with
    odds ½, one output weight exactly 0.  Weights' scale 1e-2, 0.3 or 3 (large unbalanced
    inits: the lazy side).  Drawn from ``default_rng(seed − COPIES_SEEDS)``."""
    rng = np.random.default_rng(seed - COPIES_SEEDS)
    d = 1 if rng.integers(3) == 0 else int(rng.integers(2, 6))
    n, m = int(rng.integers(2, 11)), int(rng.integers(1, 9))
    gamma, loss = float(rng.choice([0.0, 0.1, 0.5])), str(rng.choice(["square", "logistic"]))
    X = rng.normal(size=(n, d))
    repeats = min(int(rng.integers(1, 4)), n - 1)
    X[n - repeats:] = X[rng.integers(n - repeats, size=repeats)]
    y = rng.normal(size=n) if loss == "square" else rng.choice([-1.0, 1.0], size=n)
    W = float(rng.choice([1e-2, 0.3, 3.0])) * rng.normal(size=(m, d))
    if m > 1:
        W[1] = W[0]
    a = _output_layer(rng, W)
    if m > 2 and rng.integers(2):
        a[int(rng.integers(m))] = 0.0
    return X, y, W, a, gamma, loss


def long_arrays(seed: int):
    """Family 25 (session 45): problems run to a long horizon (:func:`horizon`), d = 2–5,
    n = 3–8, m = 2–6; ``seed % 4`` picks Gaussian data, a bias coordinate, half-integer
    coordinates (exact zeros and dependent triples), or issue 10's first reproducer's
    regime (Gaussian data, square loss, γ = 0, scale 1e-2); weights' scale 1e-2, 0.1 or 0.5.
    Drawn from ``default_rng(seed − LONG_SEEDS)``; a draw with a zero or repeated point
    moves a point off it."""
    rng = np.random.default_rng(seed - LONG_SEEDS)
    fam = seed % 4
    d, n, m = int(rng.integers(2, 6)), int(rng.integers(3, 9)), int(rng.integers(2, 7))
    gamma, loss = float(rng.choice([0.0, 0.1, 0.5])), str(rng.choice(["square", "logistic"]))
    scale = float(rng.choice([1e-2, 0.1, 0.5]))
    if fam == 1:
        X = np.hstack([rng.uniform(-2, 2, size=(n, d - 1)), np.ones((n, 1))])
    elif fam == 2:
        X = rng.integers(-2, 3, size=(n, d)) / 2.0
        for i in range(n):  # no zero point, no repeat
            while not np.any(X[i]) or any(np.array_equal(X[i], X[k]) for k in range(i)):
                X[i] = rng.integers(-2, 3, size=d) / 2.0
    else:
        X = rng.normal(size=(n, d))
    if fam == 3:
        loss, gamma, scale = "square", 0.0, 1e-2
    y = 0.5 * rng.normal(size=n) if loss == "square" else rng.choice([-1.0, 1.0], size=n)
    W = scale * rng.normal(size=(m, d))
    return X, y, W, _output_layer(rng, W), gamma, loss


#: the nonzero magnitudes of :func:`sparse_arrays`' entries
SPARSE_VALUES = np.array([0.25, 0.375, 0.5, 0.75, 1.0, 1.625, 2.0])


def _sparse(rng, rows: int, d: int, p_zero: float) -> np.ndarray:
    """``rows × d`` entries 0 (with probability ``p_zero``) or ``±`` a :data:`SPARSE_VALUES`."""
    M = rng.choice(SPARSE_VALUES, size=(rows, d)) * rng.choice([-1.0, 1.0], size=(rows, d))
    M[rng.random((rows, d)) < p_zero] = 0.0
    return M


def sparse_arrays(seed: int):
    """Family 26 (session 46): d = 3–5, n = 3–8, m = 4–12, γ ∈ {0, 0, 0.1, 0.5}; sparse
    dyadic points (half their entries 0) and neurons (60 %), scaled by 0.05, 0.25 or 1; in
    half the problems one coordinate is 0 in every point and up to two neurons start on it
    (in ``ker X``); square loss with labels in ``{0, 0, ±1/2, ±1}`` (two thirds) or
    logistic.  Drawn from ``default_rng(seed − SPARSE_SEEDS)``; a zero or repeated point,
    or a zero neuron, is drawn again.  The campaign of this family (default policy) found
    a dependent exit sent against its velocity (``docs/integrator.md``, "A dependent exit
    takes along only what can leave to that side")."""
    rng = np.random.default_rng(seed - SPARSE_SEEDS)
    d, n, m = int(rng.integers(3, 6)), int(rng.integers(3, 9)), int(rng.integers(4, 13))
    gamma = float(rng.choice([0.0, 0.0, 0.1, 0.5]))
    loss = str(rng.choice(["square", "square", "logistic"]))
    zero_col = int(rng.integers(d)) if rng.integers(2) else None
    X = _sparse(rng, n, d, 0.5)
    for i in range(n):
        while True:
            if zero_col is not None:
                X[i, zero_col] = 0.0
            if np.any(X[i]) and not any(np.array_equal(X[i], X[k]) for k in range(i)):
                break
            X[i] = _sparse(rng, 1, d, 0.5)[0]
    y = (rng.choice([0.0, 0.0, 0.5, -0.5, 1.0, -1.0], size=n) if loss == "square"
         else rng.choice([-1.0, 1.0], size=n))
    scale = float(rng.choice([0.05, 0.25, 1.0]))
    W = _sparse(rng, m, d, 0.6)
    for j in range(m):
        while not np.any(W[j]):
            W[j] = _sparse(rng, 1, d, 0.6)[0]
    W *= scale
    if zero_col is not None:
        for j in rng.choice(m, size=int(rng.integers(0, 3)), replace=False):
            W[j] = 0.0
            W[j, zero_col] = scale
    return X, y, W, _output_layer(rng, W), gamma, loss


def large_d_arrays(seed: int):
    """Family 27 (session 48): d = 9–16, n = 6–20, m = 3–16, ``γ ∈ {0, 0.1, 0.5}``, either
    loss; by ``seed % 3`` Gaussian points, points of rank ``r < d − 1`` with a bias
    coordinate (many neurons' faces then meet on dependent hyperplanes), or sparse points
    (entries 0 with odds ½, else ``±½, ±1, 2``); Gaussian weights at scale 1e-3, 1e-2, 0.1
    or 0.5 and :func:`_output_layer`.  Drawn from ``default_rng(seed − LARGE_D_SEEDS)``; a
    zero or repeated point is drawn again.  Runs to t = 5 or 20 (:func:`horizon`)."""
    rng = np.random.default_rng(seed - LARGE_D_SEEDS)
    d, n, m = int(rng.integers(9, 17)), int(rng.integers(6, 21)), int(rng.integers(3, 17))
    gamma, loss = float(rng.choice([0.0, 0.1, 0.5])), str(rng.choice(["square", "logistic"]))
    kind = seed % 3
    rank = int(rng.integers(2, d - 1))  # of the low-rank points (drawn in every kind)
    basis = rng.normal(size=(rank, d - 1))

    def draw(rows: int) -> np.ndarray:
        if kind == 0:
            return rng.normal(size=(rows, d))
        if kind == 1:
            return np.hstack([rng.normal(size=(rows, rank)) @ basis, np.ones((rows, 1))])
        return rng.choice([0.0, 0.0, 0.0, 0.0, -1.0, 1.0, 0.5, -0.5, 2.0], size=(rows, d))

    X = draw(n)
    for i in range(n):
        while not np.any(X[i]) or any(np.array_equal(X[i], X[k]) for k in range(i)):
            X[i] = draw(1)[0]
    y = rng.normal(size=n) if loss == "square" else rng.choice([-1.0, 1.0], size=n)
    W = rng.normal(size=(m, d)) * float(rng.choice([1e-3, 1e-2, 0.1, 0.5]))
    return X, y, W, _output_layer(rng, W), gamma, loss


def horizon(seed: int) -> float:
    """The problem's ``t_max``: 5, except the long-horizon family's 20, 40 or 60, the
    sparse family's 20 and the large-dimension family's 5 or 20."""
    if seed >= LARGE_D_SEEDS:
        return (5.0, 20.0)[seed % 2]
    if seed >= SPARSE_SEEDS:
        return 20.0
    return (20.0, 40.0, 60.0)[seed % 3] if seed >= LONG_SEEDS else 5.0


def problem_arrays(seed: int):
    """``(X, y, W, a, gamma, loss)`` of the exploration's problem ``seed``."""
    if seed >= LARGE_D_SEEDS:
        return large_d_arrays(seed)
    if seed >= SPARSE_SEEDS:
        return sparse_arrays(seed)
    if seed >= LONG_SEEDS:
        return long_arrays(seed)
    if seed >= COPIES_SEEDS:
        return copies_arrays(seed)
    if seed >= SYMMETRIC_SEEDS:
        return symmetric_arrays(seed)
    if seed >= WIDE_BIAS_SEEDS:
        return wide_bias_arrays(seed)
    if seed >= WIDE_SEEDS:
        return wide_arrays(seed)
    if seed >= SCALES_SEEDS:
        return scales_arrays(seed)
    if seed >= MANY_POINTS_SEEDS:
        return many_points_arrays(seed)
    if seed >= GRID_SEEDS:
        return grid_arrays(seed)
    if seed >= NEAR_SPAN_SEEDS:
        return near_span_arrays(seed)
    if seed >= NEAR_SPAN3_SEEDS:
        return near_span3_arrays(seed)
    if seed >= NEAR_DEPENDENT_SEEDS:
        return near_dependent_arrays(seed)
    if seed >= HIGH_D_SEEDS:
        return high_d_arrays(seed)
    rng = np.random.default_rng(seed)
    fam = seed % 4
    d, n, m = int(rng.integers(2, 6)), int(rng.integers(3, 9)), int(rng.integers(1, 7))
    gamma, loss = float(rng.choice([0.0, 0.1, 0.5])), str(rng.choice(["square", "logistic"]))
    X = rng.normal(size=(n, d))
    if fam == 0:
        delta = float(rng.choice([1e-4, 1e-7, 1e-10]))
        X[1] = X[0] * float(rng.choice([1.0, -1.0, 2.0])) + delta * rng.normal(size=d)
    y = rng.normal(size=n) if loss == "square" else rng.choice([-1.0, 1.0], size=n)
    if fam == 3:
        m = int(rng.integers(20, 60))
    W = 0.3 * rng.normal(size=(m, d))
    if fam == 1:
        eps = float(rng.choice([1e-6, 1e-9, 1e-12, 0.0]))
        for j in range(m):
            k = int(rng.integers(n))
            W[j] -= (W[j] @ X[k]) / (X[k] @ X[k]) * X[k]
            W[j] += eps * np.linalg.norm(W[j]) * X[k] / np.linalg.norm(X[k]) * rng.choice([-1, 1])
    balanced = bool(rng.integers(2))
    s = rng.choice([-1.0, 1.0], size=m)
    a = (s * np.linalg.norm(W, axis=1) if balanced
         else s * rng.uniform(0.05, 1, size=m) * np.max(np.linalg.norm(W, axis=1)))
    if fam == 2:
        a = np.zeros(m)
    return X, y, W, a, gamma, loss


def make(seed: int) -> Case:
    """The problem ``seed`` as a campaign case (families numbered 10–27)."""
    X, y, W, a, gamma, loss = problem_arrays(seed)
    starts = (HIGH_D_SEEDS, NEAR_DEPENDENT_SEEDS, NEAR_SPAN3_SEEDS, NEAR_SPAN_SEEDS, GRID_SEEDS,
              MANY_POINTS_SEEDS, SCALES_SEEDS, WIDE_SEEDS,
              WIDE_BIAS_SEEDS, SYMMETRIC_SEEDS, COPIES_SEEDS, LONG_SEEDS,
              SPARSE_SEEDS, LARGE_D_SEEDS)  # families 4, ..., 17
    above = [i for i, start in enumerate(starts) if seed >= start]
    fam = 4 + above[-1] if above else seed % 4
    return Case(seed, 10 + fam, Problem(X, y, W, a, gamma, loss, horizon(seed), f"explore{fam}"))


class _Timeout(Exception):
    pass


def _alarm(*_):
    raise _Timeout


def main(argv: list[str]) -> int:
    lo, count = int(argv[0]), int(argv[1])
    limit = int(argv[2]) if len(argv) > 2 else 120
    signal.signal(signal.SIGALRM, _alarm)
    bad = 0
    for seed in range(lo, lo + count):
        signal.alarm(limit)
        try:
            rec = check(make(seed)).__dict__
        except _Timeout:
            rec = {"seed": seed, "ok": False, "why": f"timeout {limit} s"}
        except Exception as err:  # a crash is a finding too: report it and go on
            rec = {"seed": seed, "ok": False, "why": f"{type(err).__name__}: {err}"}
        finally:
            signal.alarm(0)
        bad += not rec["ok"]
        print(json.dumps(rec, default=float), flush=True)
    print(json.dumps({"problems_failed": bad}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
