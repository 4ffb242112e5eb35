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


def propagate(Phi: Array, pat: NDArray[np.intp], Z: Array) -> Array:
    """``Φ_{u_j} z_j`` for every row: the propagators ``Phi`` (by face) applied to the neurons
    ``Z`` on faces ``pat`` (``np.take`` gathers the ``q × q`` blocks faster than indexing)."""
    return np.einsum("jab,jb->ja", np.take(Phi, pat, axis=0), Z)


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
