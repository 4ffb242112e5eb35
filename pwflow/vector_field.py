"""The collective vector field: per-face propagators driven by the n network outputs.

Inside a step every neuron ``z_j = (w_j, a_j)`` on face ``p`` moves as ``z_j(t) = Φ_p(t) z_j(t_0)``
with ``dΦ_p/dt = M_p(t) Φ_p``, ``Φ_p(t_0) = I`` and ``M_p = [[0, D_p], [D_pᵀ, 0]]``
(:mod:`pwflow.patterns`).  The neurons enter the vector field only through the outputs

    h_θ(x_k) = Σ_p η⁰_{p,k} <x_k, S_p>,   S_p = Σ_{j∈p} a_j w_j = [Φ_p C_p Φ_pᵀ]_{w,a},

with ``C_p = Σ_{j∈p} z_j z_jᵀ`` the second moments at ``t_0`` (``η⁰`` is the slope, 0 on the
face's own hyperplanes where ``<w, x_k> = 0``).  The state of the ODE is the stack of ``Φ_p``
— its size depends on the number of faces, not on the width ``m``.

``M_p`` is in the Lie algebra of the Lorentz group O(d, 1): ``M_pᵀ J + J M_p = 0`` with
``J = diag(−I_d, 1)``; hence ``Φ_pᵀ J Φ_p = J``, which is Lemma 1 (``a² − ‖w‖²`` is conserved).
:func:`lorentz_project` restores this identity after each step (a projection method that keeps
the order of the integrator and makes the invariant hold to rounding).
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.typing import NDArray

from .model import Loss
from .patterns import FacePlan, PatternTable

__all__ = ["moments", "outputs_from_moments", "CollectiveField", "lorentz_project", "lorentz_inverse"]

Array = NDArray[np.float64]


def moments(Z: Array, pat: NDArray[np.intp], P: int) -> Array:
    """``C_p = Σ_{j: pat_j = p} z_j z_jᵀ`` for ``p < P``; shape ``(P, q, q)``, ``q = d + 1``."""
    q = Z.shape[1]
    C = np.empty((P, q, q))
    for i in range(q):
        for k in range(i, q):
            col = np.bincount(pat, weights=Z[:, i] * Z[:, k], minlength=P)
            C[:, i, k] = col
            C[:, k, i] = col
    return C


def outputs_from_moments(S: Array, eta0: Array, X: Array) -> Array:
    """``h_k = Σ_p η⁰_{p,k} <x_k, S_p>`` with ``S`` of shape ``(P, d)``."""
    return np.einsum("pk,pk->k", eta0, S @ X.T)


def lorentz_project(Phi: Array) -> Array:
    """One Newton correction of ``Φ`` towards O(d, 1): ``Φ (I − ½ (J Φᵀ J Φ − I))``."""
    q = Phi.shape[-1]
    E = lorentz_inverse(Phi) @ Phi  # J Φᵀ J Φ
    E.reshape(E.shape[:-2] + (q * q,))[..., :: q + 1] -= 1.0  # − I, on a view of the diagonal
    out = Phi @ E
    out *= 0.5
    return np.subtract(Phi, out, out=out)


def lorentz_inverse(Phi: Array) -> Array:
    """``Φ^{-1} = J Φᵀ J`` for ``Φ`` in O(d, 1)."""
    return np.swapaxes(Phi * _lorentz_signs(Phi.shape[-1]), -1, -2)


@functools.lru_cache(maxsize=8)
def _lorentz_signs(q: int) -> Array:
    """``s_a s_b`` with ``J = diag(s) = diag(−1, …, −1, 1)``: ``(J Φᵀ J)_{ab} = s_a s_b Φ_{ba}``
    (products by ±1 are exact, so one multiplication gives the two of ``J Φᵀ J``)."""
    sgn = np.ones(q)
    sgn[:-1] = -1.0
    S = np.outer(sgn, sgn)
    S.flags.writeable = False
    return S


class CollectiveField:
    """Right-hand side ``dΦ/dt`` for one step, given the moments at the step start.

    Parameters
    ----------
    table : PatternTable
        Registered faces (their number ``P`` is frozen for the step).
    C : array, shape (P, q, q)
        Second moments at the start of the step.
    X, y : arrays
        Data.
    loss : Loss
        The loss.
    frozen_output : bool
        If true, ``h ≡ 0`` (Eq. (8)'s idealised dynamics): the fields are constant.
    active : bool array, shape (P,), optional
        Faces whose propagators are integrated; the others keep ``Φ = I``.
    """

    def __init__(
        self,
        table: PatternTable,
        C: Array,
        X: Array,
        y: Array,
        loss: Loss,
        frozen_output: bool = False,
        active: NDArray[np.bool_] | None = None,
    ) -> None:
        self.table = table.arrays()
        self.P = C.shape[0]
        self.q = C.shape[1]
        self.d = self.q - 1
        self.C = C
        self._occ = np.flatnonzero(np.any(C != 0, axis=(1, 2)))
        self._C_occ = C[self._occ]
        self.X = X
        self.y = y
        self.loss = loss
        self.eta0 = table.eta0[: self.P]
        self._eta0_occ = self.eta0[self._occ]
        self.frozen_output = frozen_output
        self.nfev = 0
        # the fast path: the faces' cases (one, two, more free slopes) sorted once
        self._plan = table.face_plan(self.P, active)
        self.held = np.zeros(0, np.intp)  # faces whose sliding mode is held (:meth:`hold`)
        #: every integrated face's field is a closed form (no warm-started solve): the same
        #: propagators always give the same fields, bit for bit
        self.closed_form = frozen_output or self._plan.many.size == 0
        if frozen_output:
            r0 = loss.derivative(np.zeros_like(y), y)
            self._G_frozen = table.plan_fields(self._plan, r0)

    def outputs(self, Phi: Array) -> Array:
        """``h_θ(x_k)`` for propagators ``Phi`` (shape ``(P, q, q)`` or ``(T, P, q, q)``, or
        the :attr:`occupied` faces' only; rows past ``P``, faces registered later, are not
        read)."""
        d = self.d
        # faces without neurons have C_p = 0 and add nothing; a stack of the occupied faces'
        # propagators only (:attr:`occupied`) is used as it is
        if Phi.shape[-3] != self._occ.size:  # every face (and maybe rows past P)
            Phi = Phi[..., self._occ, :, :]
        # S_p = Φ_w C Φ_aᵀ  (row block of w, row of a)
        T = self._C_occ @ Phi[..., d, :, None]
        S = (Phi[..., :d, :] @ T)[..., 0]
        return ((S @ self.X.T) * self._eta0_occ).sum(axis=-2)

    def output_polynomial(self, F: Array) -> Array:
        """The outputs on a step as a quadratic form in the dense output's basis.

        With ``Φ_p(x) = Σ_c b_c(x) F_{c,p}`` (``F`` of shape ``(n_coef, P, q, q)``, or of the
        :attr:`occupied` faces only; :func:`pwflow.dense.propagators_at`), the outputs of
        :meth:`outputs` on the unprojected propagators are

            h_k(x) = Σ_{c,c'} b_c(x) b_{c'}(x) G[c, c', k],
            G[c, c', k] = Σ_p η⁰_{p,k} <x_k, [F_{c,p} C_p F_{c',p}ᵀ]_{w,a}>.

        Returns ``G``, shape ``(n_coef, n_coef, n)``: n_occ(n_coef² q²) per occupied face, once
        per step, instead of a Lorentz projection and a product per face and event time.  (The
        projection moves the outputs by the dense output's Lorentz defect, which is
        rounding-level: 2.5e-15 relative at most on random d = 5 data.)
        """
        d, q, nc = self.d, self.q, F.shape[0]
        # one gather into the layout (face, row i, coefficient c, column): every product
        # below is then a plain (batched) matrix product on contiguous blocks
        if F.shape[1] != self._occ.size:
            F = F[:, self._occ]
        Ft = np.ascontiguousarray(F.transpose(1, 2, 0, 3))
        n_occ = Ft.shape[0]
        V = self._C_occ @ Ft[:, d].transpose(0, 2, 1)  # V[p, :, c'] = C_p F_{c',p}[a, :]ᵀ
        M = Ft.reshape(n_occ, q * nc, q) @ V  # M[p, (i, c), c'] = F_{c,p}[i, :] V[p, :, c']
        weights = self.__dict__.get("_xeta")
        if weights is None:  # η⁰_{p,k} x_{k,i} at rows (p, i); 0 at the row i = d (a)
            weights = np.zeros((n_occ, q, self.X.shape[0]))
            weights[:, :d] = self._eta0_occ[:, None, :] * self.X.T[None]
            weights = self._xeta = weights.reshape(n_occ * q, self.X.shape[0])
        return (M.reshape(n_occ * q, nc * nc).T @ weights).reshape(nc, nc, -1)

    @property
    def occupied(self) -> NDArray[np.intp]:
        """The faces with non-zero moments (sorted): :meth:`outputs` and :meth:`residuals`
        also accept propagators of these faces only, shape ``(..., len(occupied), q, q)``."""
        return self._occ

    def residuals(self, Phi: Array) -> Array:
        """``r_k = ∂_1 l(h_θ(x_k), y_k)``."""
        if self.frozen_output:
            return self.loss.derivative(np.zeros_like(self.y), self.y)
        return self.loss.derivative(self.outputs(Phi), self.y)

    def face_fields(self, Phi: Array) -> Array:
        """``D_p^θ`` for every integrated face (0 for the others), shape ``(P, d)``."""
        if self.frozen_output:
            return self._G_frozen
        return self.fields_of(self.residuals(Phi))

    def fields_of(self, r: Array, plan=None) -> Array:
        """``D_p^θ`` for the residuals ``r`` (:meth:`residuals`): of every integrated face, or
        of the faces of ``plan`` (:meth:`PatternTable.face_plan`); 0 for the others."""
        if self.frozen_output:
            return self._G_frozen if plan is None else self.table.plan_fields(plan, r)
        return self.table.plan_fields(self._plan if plan is None else plan, r)

    def hold(self, faces: NDArray[np.intp]) -> None:
        """Hold the sliding mode of ``faces`` (:meth:`PatternTable.holding`): from now on this
        field's :meth:`fields_of` and :meth:`rows_plan` give them the fixed part projected onto
        the face (:meth:`HybridFlow._held_sliding` chooses them at the solver start)."""
        faces = np.asarray(faces, dtype=np.intp)
        if faces.size and not self.frozen_output:  # frozen: constant fields, no kink
            self.held = faces
            self._plan = self.table.holding(self._plan, faces)

    def rows_plan(self, faces: NDArray[np.intp]) -> FacePlan:
        """:meth:`PatternTable.rows_plan` of ``faces``, with this field's held faces held: the
        fields of a few faces as this field computes them."""
        plan = self.table.rows_plan(faces)
        return self.table.holding(plan, self.held) if self.held.size else plan

    def rates(self, Phi: Array, G: Array) -> Array:
        """``dΦ_p/dt = M_p Φ_p`` for propagators ``Phi`` (shape ``(R, q, q)``) and their faces'
        fields ``G`` (the same rows, shape ``(R, d)``)."""
        d = self.d
        dPhi = np.empty_like(Phi)
        dPhi[:, :d, :] = G[:, :, None] * Phi[:, d, None, :]
        dPhi[:, d, :] = (G[:, None, :] @ Phi[:, :d, :])[:, 0, :]
        return dPhi

    def __call__(self, t: float, yflat: Array) -> Array:
        self.nfev += 1
        Phi = yflat.reshape(self.P, self.q, self.q)
        # a rejected trial step may overflow; DOP853 then shrinks the step (non-finite error)
        with np.errstate(over="ignore", invalid="ignore"):
            return self.rates(Phi, self.face_fields(Phi)).reshape(-1)
