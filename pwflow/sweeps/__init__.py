"""Sweeps: grids of runs on Dask, their summary table, and the phase diagram.

Import-light: Dask, pyarrow, tqdm and matplotlib are imported only when a sweep runs or a
figure is drawn (``pip install -e '.[sweep]'``).  See ``docs/sweeps.md``.
"""

import importlib

#: the axes a phase diagram's y may take (:func:`pwflow.sweeps.plots.phase_diagram`) and the
#: summary columns a sweep plot may draw (:func:`pwflow.sweeps.plots.sweep_plot`); here, not in
#: :mod:`~pwflow.sweeps.plots`, so that the command line's help names them without importing
#: the sweep machinery (20 ms of every ``pwflow`` command)
PHASE_Y_AXES = ("width", "eta", "gamma", "seed", "init", "t_max", "n", "lr", "method")
NUMERIC_COLUMNS = ("final_loss", "excess_loss", "loss_beta_star", "half_loss", "t_final", "tau",
                   "tau2", "tau3", "events", "steps", "lemma1_drift", "wall_time", "status")

#: public name -> submodule that defines it; loaded on first access (PEP 562), so that
#: ``pwflow`` and its command line do not pay for the sweep machinery unless it is used
_WHERE = {
    "COLUMNS": "driver", "SweepResult": "driver", "read_summary": "driver", "sweep": "driver",
    "write_summary": "driver", "Outcome": "run", "classify": "run", "run_point": "run",
    "ClassifyRule": "spec", "DatasetSpec": "spec", "RunOptions": "spec", "RunPoint": "spec",
    "SweepSpec": "spec", "load_spec": "spec", "parse_spec": "spec",
}


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))


# Outcome (importable here) is documented with pwflow.sweeps.run, where it is defined
__all__ = [
    "COLUMNS",
    "ClassifyRule",
    "DatasetSpec",
    "RunOptions",
    "RunPoint",
    "SweepResult",
    "SweepSpec",
    "classify",
    "load_spec",
    "parse_spec",
    "read_summary",
    "run_point",
    "sweep",
    "write_summary",
]
