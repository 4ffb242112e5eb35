"""Sweeps: grids of runs on Dask, their summary table, and the phase diagram.

Import-light: Dask, pyarrow, tqdm and matplotlib are imported only when a sweep runs or a
figure is drawn (``pip install -e '.[sweep]'``).  See ``docs/sweeps.md``.
"""

from .driver import COLUMNS, SweepResult, read_summary, sweep, write_summary
from .run import Outcome as Outcome  # re-exported, documented in pwflow.sweeps.run
from .run import classify, run_point
from .spec import ClassifyRule, DatasetSpec, RunOptions, RunPoint, SweepSpec, load_spec, parse_spec

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
