"""
Figure 1: data satisfying Assumption 3
======================================

The paper's Figure 1 shows three points drawn in the boxes of Assumption 3 (here with
``η = 1/6``), the least-squares line ``β*`` that early alignment leads the network to, and a
two-neuron ReLU network that interpolates the data with loss 0 — the global minimum the flow
misses.  ``pwflow reproduce figure1 --out DIR`` writes it; this page runs the same function and
shows the image.
"""

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

import pwflow.figures as F

out = Path(tempfile.mkdtemp())
(path,) = F.reproduce("figure1", out, None, None, None, seed=0, progress=False)

data = F.figure1_data(eta=1 / 6, seed=0)
print("points x_k:", data.X[:, 0].round(3), " labels y_k:", data.y.round(3))
print("least-squares loss L(β*) =", round(F.least_squares_loss(data.X, data.y), 4))

fig, ax = plt.subplots(figsize=(6, 4.8))
ax.imshow(plt.imread(path))
ax.set_axis_off()
plt.show()
