"""Progress bars (tqdm) for the integrator and the other long loops.

``tqdm.auto`` draws a text bar on a terminal and a widget in a notebook.  Every bar here takes
``enabled``: ``True`` shows it (also when stderr is not a terminal: the caller asked),
``False`` hides it, ``None`` shows it only when stderr is a terminal (what the command line
does unless ``--quiet``).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # pragma: no cover - typing only
    from tqdm import tqdm as _tqdm

__all__ = ["Progress", "make_bar", "show_bar"]


def show_bar(enabled: bool | None) -> bool:
    """Whether a bar with this ``enabled`` setting is drawn now (``None``: stderr is a terminal)."""
    if enabled is None:
        isatty = getattr(sys.stderr, "isatty", None)
        return bool(isatty is not None and isatty())
    if not isinstance(enabled, (bool, int)):
        raise ValueError(f"progress must be True, False or None, got {enabled!r}")
    return bool(enabled)


def make_bar(total: float, enabled: bool | None, *, desc: str | None = None,
             unit: str = "it", bar_format: str | None = None) -> "_tqdm":
    """A ``tqdm.auto`` bar on stderr, disabled unless :func:`show_bar` says otherwise."""
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not show_bar(enabled), file=sys.stderr, desc=desc,
                unit=unit, bar_format=bar_format, dynamic_ncols=True, leave=True,
                mininterval=0.5)


class _Flow(Protocol):
    t: float
    n_steps: int
    events: object


class Progress:
    """Progress of a flow integration: time ``t`` out of ``t_max``, steps and events.

    Parameters
    ----------
    enabled : bool or None
        ``True`` show, ``False`` hide, ``None`` show only when stderr is a terminal.
    t_max : float
        Final time of the run (the bar's total).
    """

    FORMAT = ("{l_bar}{bar}| t = {n:.4g}/{total:.4g} [{elapsed}<{remaining}{postfix}]")

    def __init__(self, enabled: bool | None, t_max: float) -> None:
        self.t_max = float(t_max)
        self.enabled = show_bar(enabled) and self.t_max > 0
        self.bar = make_bar(self.t_max, self.enabled, bar_format=self.FORMAT) if self.enabled \
            else None

    def update(self, flow: _Flow, force: bool = False) -> None:
        """Move the bar to ``flow.t``; ``force=True`` draws it now and closes it (end of run)."""
        if self.bar is None:
            return
        self.bar.set_postfix_str(f"steps {flow.n_steps}, events {len(flow.events)}",
                                 refresh=False)
        self.bar.update(min(float(flow.t), self.t_max) - self.bar.n)
        if force:
            self.bar.refresh()
            self.bar.close()
            self.bar = None
