"""The tqdm progress bars (pwflow.progress): shown, hidden, or only on a terminal."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest

from pwflow.progress import Progress, make_bar, show_bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _flow(t: float, steps: int, events: int) -> SimpleNamespace:
    return SimpleNamespace(t=t, n_steps=steps, events=[None] * events)


def _run(enabled, t_max: float = 2.0) -> None:
    bar = Progress(enabled, t_max)
    bar.update(_flow(0.5, 3, 1))
    bar.update(_flow(t_max, 7, 4), force=True)


@pytest.mark.parametrize("stream, enabled, shown", [
    (io.StringIO, True, True), (io.StringIO, None, False), (io.StringIO, False, False),
    (_Terminal, True, True), (_Terminal, None, True), (_Terminal, False, False),
])
def test_bar_shown_when_asked_or_on_a_terminal(monkeypatch, stream, enabled, shown):
    err = stream()
    monkeypatch.setattr("sys.stderr", err)
    _run(enabled)
    text = err.getvalue()
    if shown:
        assert "t = 2/2" in text and "steps 7, events 4" in text and "\r" in text
    else:
        assert text == ""


def test_zero_horizon_draws_nothing(monkeypatch):
    err = _Terminal()
    monkeypatch.setattr("sys.stderr", err)
    _run(True, t_max=0.0)
    assert err.getvalue() == ""


def test_bad_setting_is_a_value_error():
    with pytest.raises(ValueError, match="progress must be True, False or None"):
        show_bar("yes")
    with pytest.raises(ValueError, match="progress"):
        make_bar(3, 1.5)
