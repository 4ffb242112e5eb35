"""Produce ``stewart_branch_reference.npz``: extrapolated gradient descent on issue 10's Stewart case.

Stewart data (``pwflow.stewart(seed=0, n=40)``), unbalanced init ``m = 50``, ``λ = 0.1``,
``seed = 3``, ReLU (``γ = 0``), square loss.  Gradient descent (``σ'(0) = 0``) at ``lr = 1e-3``
and ``5e-4`` with :func:`tests.reference.gd_reference` (its own numpy loop, independent of
pwflow), Richardson-extrapolated at the times ``T``.  Stored: both runs, the extrapolated
state, the gap ``‖θ(lr) − θ(lr/2)‖`` and the losses.

Run from the repository root::

    python tests/data/make_stewart_branch_reference.py

(about 40 s on one busy core).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent.parent))

import pwflow  # noqa: E402
from reference import gd_reference  # noqa: E402

T = (20.0, 37.0, 40.0, 60.0, 100.0, 200.0)
LR = 1e-3


def main() -> None:
    data = pwflow.stewart(seed=0, n=40)
    init = pwflow.unbalanced(50, 2, 0.1, seed=3)
    t0 = time.perf_counter()
    ref = gd_reference(data.X, data.y, init.W, init.a, 0.0, "square", T, lr=LR)
    wall = time.perf_counter() - t0
    np.savez_compressed(
        HERE / "stewart_branch_reference.npz",
        t=ref.t, W=ref.W, a=ref.a, W1=ref.W1, a1=ref.a1, W2=ref.W2, a2=ref.a2,
        loss=ref.loss, loss1=ref.loss1, loss2=ref.loss2, gap=ref.gap, gap_loss=ref.gap_loss,
        lr=np.array(LR), X=data.X, y=data.y, W0=init.W, a0=init.a,
    )
    for i, t in enumerate(ref.t):
        print(f"t = {t:6.1f}  L_ext = {ref.loss[i]:.10f}  gap = {ref.gap[i]:.3e}  "
              f"<w13, x34>_ext = {ref.W[i][13] @ data.X[34]:+.3e}")
    print(f"{wall:.1f} s")


if __name__ == "__main__":
    main()
