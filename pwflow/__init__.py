"""pwflow: exact gradient-flow trajectories of two-layer (leaky) ReLU networks.

See ``docs/`` and Boursier & Flammarion, *Early alignment in two-layer networks training is a
two-edged sword*, for the notation (equation numbers in docstrings refer to that paper).
"""

import importlib

__version__ = "0.1.0"

#: where each public name lives; imported on first use (PEP 562), so that ``import pwflow``
#: and ``pwflow --help`` do not load the integrator, scipy or sympy before they are needed
_LAZY = {
    "Dataset": "data", "assumption3": "data", "get_dataset": "data", "load_dataset": "data",
    "stewart": "data", "three_points": "data", "with_bias": "data",
    "Init": "init", "balanced": "init", "dominated": "init", "from_arrays": "init",
    "make_init": "init", "unbalanced": "init",
    "EventKind": "events",
    "BranchPolicy": "filippov",
    "gradient_descent": "gd",
    "FlowOptions": "integrator", "simulate": "integrator",
    "Status": "options",
    "Loss": "model", "get_loss": "model", "logistic_loss": "model", "make_loss": "model",
    "square_loss": "model",
    "Trajectory": "trajectory", "load_trajectory": "trajectory",
    "sweep": "sweeps",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = sorted(_LAZY)
