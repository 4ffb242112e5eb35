"""Row-wise kernels over the neurons: norms, states from their faces' propagators, and the
Lorentz projection of selected propagators.

Used wherever :class:`pwflow.stepper.HybridFlow` touches all ``m`` neurons (``m`` reaches
2·10⁵): each is written so that its numbers are those of the plain numpy expression it
replaces (tested bit for bit in ``tests/test_rows.py``), without that expression's copies.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .vector_field import lorentz_project

Array = NDArray[np.float64]


def row_norms(A: Array, B: Array | None = None) -> Array:
    """``np.linalg.norm(A, axis=1)`` (or of ``A − B``), bit for bit, without its copies:
    numpy sums rows shorter than 8 in order, as the column loop here does (longer rows:
    numpy itself)."""
    if A.shape[1] >= 8:
        return np.linalg.norm(A if B is None else A - B, axis=1)

    def col(i: int) -> Array:
        if B is None:
            return A[:, i] * A[:, i]
        c = A[:, i] - B[:, i]
        return np.multiply(c, c, out=c)  # in place: one temporary per column, not two

    s = col(0)
    for i in range(1, A.shape[1]):
        s += col(i)
    return np.sqrt(s, out=s)


def propagate(Phi: Array, pat: NDArray[np.intp], Z: Array, by_entries: bool = False) -> Array:
    """``Φ_{u_j} z_j`` for every row: the propagators ``Phi`` (by face) applied to the neurons
    ``Z`` on faces ``pat``.

    ``by_entries`` (``q = 3`` only): each entry ``Φ_{ab}`` gathered from a ``P``-long table
    (cache-resident) instead of the ``q × q`` blocks, 1.5x faster than the blocks'
    ``einsum`` at ``m = 2·10⁵`` (the largest item of a restart there) but 3x slower on a
    few rows, and rounded differently (the sums in another order): a run chooses one way
    for all its calls (:attr:`pwflow.stepper.HybridFlow.by_entries`), so that a neuron has
    the same numbers whichever subset is propagated.  Otherwise ``np.take`` of the blocks
    (faster than indexing) and ``einsum``.
    """
    if not by_entries or Phi.shape[-1] != 3:
        return np.einsum("jab,jb->ja", np.take(Phi, pat, axis=0), Z)
    G = Phi.reshape(-1, 9).T.take(pat, axis=1)  # (9, m): entry (a, b) of each neuron's Φ
    Zt = Z.T
    out = np.empty((Z.shape[0], 3))
    col, tmp = np.empty(Z.shape[0]), np.empty(Z.shape[0])
    for a in range(3):
        np.multiply(G[3 * a], Zt[0], out=col)
        col += np.multiply(G[3 * a + 1], Zt[1], out=tmp)
        col += np.multiply(G[3 * a + 2], Zt[2], out=tmp)
        out[:, a] = col
    return out


def project_rows(Phi: Array, rows: NDArray[np.intp], done: NDArray[np.intp] | None = None
                  ) -> Array:
    """A copy of the stack ``Phi`` with the propagators ``rows`` Lorentz-projected
    (:func:`~pwflow.vector_field.lorentz_project`, row by row the same numbers as projecting
    the whole stack); the other rows as they are.  ``done``: rows already projected."""
    rows = np.asarray(rows, dtype=np.intp)
    if done is not None:
        rows = np.setdiff1d(rows, done, assume_unique=True)
    out = Phi.copy()
    if rows.size:
        out[rows] = lorentz_project(Phi[rows])
    return out


def last_per_neuron(js: NDArray[np.intp], rows: NDArray[np.intp]) -> NDArray[np.intp]:
    """The last of ``rows`` (in time order) of each neuron ``js[rows]``, in row order: a
    batch may hold several events of one neuron (:meth:`HybridFlow._chained_batch`)."""
    rev = rows[::-1]
    _, first = np.unique(js[rev], return_index=True)
    return np.sort(rev[first])
