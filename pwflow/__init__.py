"""pwflow: exact gradient-flow trajectories of two-layer (leaky) ReLU networks.

See ``docs/`` and Boursier & Flammarion, *Early alignment in two-layer networks training is a
two-edged sword*, for the notation (equation numbers in docstrings refer to that paper).
"""

from .data import Dataset, assumption3, get_dataset, load_dataset, stewart, three_points, with_bias
from .init import Init, balanced, dominated, from_arrays, make_init, unbalanced
from .events import EventKind
from .filippov import BranchPolicy
from .gd import gradient_descent
from .integrator import FlowOptions, simulate
from .options import Status
from .model import Loss, get_loss, logistic_loss, make_loss, square_loss
from .trajectory import Trajectory, load_trajectory

__version__ = "0.1.0"


def __getattr__(name: str):
    # pwflow.sweep is loaded on first use (the sweep machinery is not needed to simulate)
    if name == "sweep":
        from .sweeps import sweep

        globals()["sweep"] = sweep
        return sweep
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "BranchPolicy",
    "Dataset",
    "EventKind",
    "Status",
    "gradient_descent",
    "FlowOptions",
    "Trajectory",
    "load_trajectory",
    "simulate",
    "Init",
    "Loss",
    "assumption3",
    "balanced",
    "dominated",
    "from_arrays",
    "get_dataset",
    "get_loss",
    "load_dataset",
    "logistic_loss",
    "make_init",
    "make_loss",
    "square_loss",
    "stewart",
    "sweep",
    "three_points",
    "unbalanced",
    "with_bias",
]
