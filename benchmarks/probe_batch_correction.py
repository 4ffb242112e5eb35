"""Probe: how much of a batch's error a first-order correction removes (measurement only).

Usage::

    python benchmarks/probe_batch_correction.py three-points 2000 0.3 110 120 130
    python benchmarks/probe_batch_correction.py d3 1000 0.01 40 60 100

From the flow's state at each time ``T0`` (after a cut, ``stiff_solver=None``), one step
applies every located event at its cut (unlimited ``batch_tol``). The strict path
(``batch_tol=0``) runs to the same time. The probe prints the largest error of the neurons the
batch did not switch, relative to each neuron's norm. It prints it before the correction and
after each sweep:

* sweep 0: the first-order correction
  ``δΦ_p(t_c) = Φ_p(t_c) ∫ Φ_p(s)^{-1} [M_p(r + δr) − M_p(r)](s) Φ_p(s) ds``. Here ``δr`` comes
  from the switched neurons' true contributions to the outputs minus their old-face ones, on
  the step's dense output. The integral uses 8 Gauss nodes between consecutive event times.
* sweep k ≥ 1: a Picard sweep that adds the feedback of ``δΦ`` on the outputs,
  ``outputs(Φ + δΦ) − outputs(Φ)``, at the nodes (spectral integration matrix).

The switched neurons are not corrected. That would need their event times moved by
``−δs / ṡ`` and their transport corrected. This is a prototype for ``docs/integrator.md``
("Branch speed8-batch"), not a part of the integrator. It reads the stepper's internals
(``HybridFlow._advance``'s arguments), so it may need updating when they change.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

import pwflow  # noqa: E402
from ab_compare import _case  # noqa: E402
from pwflow.dense import propagators_at  # noqa: E402
from pwflow.model import get_loss  # noqa: E402
from pwflow.stepper import HybridFlow  # noqa: E402
from pwflow.vector_field import lorentz_inverse, lorentz_project  # noqa: E402

GAUSS = 8
_XI, _WI = np.polynomial.legendre.leggauss(GAUSS)


def _integration_matrix() -> np.ndarray:
    """``Q[g, l] = ∫_{-1}^{ξ_g} L_l``: cumulative Gauss–Legendre quadrature at the nodes."""
    Q = np.zeros((GAUSS, GAUSS))
    for l in range(GAUSS):
        c = np.zeros(GAUSS)
        c[l] = 1.0
        integral = np.polynomial.polynomial.polyint(
            np.polynomial.polynomial.polyfit(_XI, c, GAUSS - 1), lbnd=-1)
        Q[:, l] = np.polynomial.polynomial.polyval(_XI, integral)
    return Q


def _capture() -> dict:
    """Record the arguments of every :meth:`HybridFlow._advance` call (the step's dense
    output, field, start state) and the events it applied."""
    cap: dict = {}
    advance = HybridFlow._advance

    def spy(self, t_cut, t1, Phi1, Z1, F, field_, pending, exits):
        cap.update(t0=self.t, Zs0=self._Zs.copy(), pat0=self.pat.copy(), F=F, field=field_,
                   t1=t1)
        out = advance(self, t_cut, t1, Phi1, Z1, F, field_, pending, exits)
        cap.update(tc=self.t, applied=self._applied)
        return out

    HybridFlow._advance = spy
    return cap


def _event_outputs(cap: dict, flow: HybridFlow, allx: np.ndarray, Phi: np.ndarray,
                   xs, js, pn, vs) -> np.ndarray:
    """The switched neurons' true contributions to the outputs minus their old-face ones."""
    eta0, d = cap["field"].eta0, flow.d

    def contrib(z, p):
        return eta0[p] * z[d] * (flow.X @ z[:d])

    dh = np.zeros((allx.size, flow.n))
    for j in np.unique(js):
        e = np.flatnonzero(js == j)
        for i, x in enumerate(allx):
            before = e[xs[e] < x]
            if before.size:
                k = before[-1]
                p0 = cap["pat0"][j]
                dh[i] += (contrib(Phi[i, pn[k]] @ vs[k], pn[k])
                          - contrib(Phi[i, p0] @ cap["Zs0"][j], p0))
    return dh


def corrections(cap: dict, flow: HybridFlow, sweeps: int) -> list[np.ndarray] | None:
    """``δΦ_p(t_c)`` for every face after each sweep (see the module docstring)."""
    F, fld = cap["F"], cap["field"]
    h = cap["t1"] - cap["t0"]
    xc = (cap["tc"] - cap["t0"]) / h
    ts, xs, js, pn, zs = cap["applied"]
    order = np.lexsort((js, xs))
    xs, js, pn, zs = xs[order], js[order], pn[order], zs[order]
    live = xs < xc
    xs, js, pn, zs = xs[live], js[live], pn[live], zs[live]
    if xs.size == 0:
        return None
    Phe = lorentz_project(np.stack([propagators_at(F, np.array([x]))[0][p]
                                    for x, p in zip(xs, pn)]))
    vs = np.einsum("eab,eb->ea", lorentz_inverse(Phe), zs)
    brk = np.unique(np.r_[xs, xc])
    nodes = np.array([a + (_XI + 1) / 2 * (b - a) for a, b in zip(brk[:-1], brk[1:])])
    lens = np.diff(brk)
    allx = nodes.reshape(-1)
    Phi = lorentz_project(propagators_at(F, allx))
    Pinv = lorentz_inverse(Phi)
    h0 = fld.outputs(Phi)
    r0 = fld.loss.derivative(h0, fld.y)
    G0 = np.stack([fld.fields_of(r) for r in r0])
    dh_ev = _event_outputs(cap, flow, allx, Phi, xs, js, pn, vs)
    Q = _integration_matrix()
    Phic = lorentz_project(propagators_at(F, np.array([xc])))[0]
    dPhi = np.zeros_like(Phi)
    out = []
    for sweep in range(sweeps + 1):
        dh = dh_ev + (fld.outputs(Phi + dPhi) - h0 if sweep else 0.0)
        dr = fld.loss.derivative(h0 + dh, fld.y) - r0
        dG = np.stack([fld.fields_of(r0[i] + dr[i]) for i in range(allx.size)]) - G0
        integ = np.stack([Pinv[i] @ fld.rates(Phi[i], dG[i]) for i in range(allx.size)])
        integ = integ.reshape(nodes.shape + Phi.shape[1:])
        J, Jn = np.zeros(Phi.shape[1:]), np.zeros_like(integ)
        for iv in range(nodes.shape[0]):
            half = lens[iv] * h / 2
            Jn[iv] = J + np.einsum("gl,lpab->gpab", Q, integ[iv]) * half
            J = J + np.einsum("l,lpab->pab", _WI, integ[iv]) * half
        dPhi = Phi @ Jn.reshape(Phi.shape)
        out.append(Phic @ J)
    return out


def main() -> None:
    case, m, scale = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    data, init = _case(pwflow, case, m, 8, scale)
    opt = pwflow.FlowOptions(stiff_solver=None)
    # every face in DOP853's state (the dense output ``F`` then covers every face the fields
    # of :meth:`CollectiveField.fields_of` are for); passive faces replayed apart would not be
    HybridFlow.REPLAY_PASSIVE = None
    flow = HybridFlow(data.X, data.y, init.W, init.a, get_loss("square"), 0.0, opt)
    cap = _capture()
    for T0 in (float(x) for x in sys.argv[4:]):
        while flow.t < T0 or flow._solver is not None:
            flow.step(1e9)
        batched = copy.deepcopy(flow)
        batched.opt = dataclasses.replace(opt, batch_tol=1e300)
        cap.clear()
        batched.step(1e9)
        snap = dict(cap)
        strict = copy.deepcopy(flow)
        strict.opt = dataclasses.replace(opt, batch_tol=0.0)
        while strict.t < batched.t:
            strict.step(batched.t)
        cap.clear()
        cap.update(snap)
        if cap.get("applied") is None:
            print(f"T0 {flow.t:.5g}: no batch")
            continue
        switched = np.unique(cap["applied"][2])
        kept = np.setdiff1d(np.arange(flow.m), switched)
        norm = np.linalg.norm(strict.Z, axis=1)
        err = np.linalg.norm(batched.Z - strict.Z, axis=1) / norm
        line = (f"T0 {flow.t:.5g}: step {batched.t - flow.t:.3g}, {len(cap['applied'][0])} "
                f"events | error: kept {err[kept].max():.2e}, switched {err[switched].max():.2e}")
        for sweep, dP in enumerate(corrections(cap, flow, 3) or []):
            Zc = batched.Z.copy()
            Zc[kept] += np.einsum("jab,jb->ja", dP[cap["pat0"][kept]], cap["Zs0"][kept])
            e = np.linalg.norm(Zc - strict.Z, axis=1) / norm
            line += f" | sweep {sweep}: {e[kept].max():.2e}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
