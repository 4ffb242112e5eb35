"""The outputs from per-face sums (:mod:`pwflow.vector_field`) are Eq. (1)'s network outputs."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from pwflow.model import network_output
from pwflow.vector_field import outputs_from_moments


@st.composite
def neurons_and_data(draw):
    d = draw(st.integers(1, 6))
    n = draw(st.integers(1, 12))
    m = draw(st.integers(1, 30))
    seed = draw(st.integers(0, 2**32 - 1))
    gamma = draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    W = rng.normal(size=(m, d))
    if draw(st.booleans()):  # neurons sharing their activation patterns (few faces)
        W = np.repeat(W[: -(-m // 5)], 5, axis=0)[:m] * rng.uniform(0.5, 2, size=(m, 1))
    return X, W, rng.normal(size=m), gamma


@given(neurons_and_data())
def test_outputs_from_per_face_sums_are_the_network_outputs(case):
    # group the neurons by their activation pattern: S_p = Σ_{j∈p} a_j w_j and the slope of
    # face p on x_k is 1 on the active side, γ on the other; h must be Eq. (1)'s
    X, W, a, gamma = case
    signs = X @ W.T > 0  # (n, m)
    faces, face_of = np.unique(signs.T, axis=0, return_inverse=True)
    face_of = np.ravel(face_of)
    S = np.zeros((len(faces), W.shape[1]))
    np.add.at(S, face_of, a[:, None] * W)
    eta0 = np.where(faces, 1.0, gamma)  # (P, n)
    h = network_output(W, a, X, gamma)
    scale = max(1.0, float(np.abs(a) @ np.linalg.norm(W, axis=1)) * np.linalg.norm(X, axis=1).max())
    np.testing.assert_allclose(outputs_from_moments(S, eta0, X), h, rtol=0, atol=1e-13 * scale)
