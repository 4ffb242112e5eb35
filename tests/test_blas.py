"""BLAS threads during the integration (:mod:`pwflow.blas`): one thread inside a step, the
caller's setting before and after."""

from __future__ import annotations

import numpy as np
import pytest

import pwflow
from pwflow import blas
from pwflow.vector_field import CollectiveField


@pytest.fixture
def two_threads():
    """OpenBLAS set to 2 threads for the test (restored afterwards); skipped where numpy's
    BLAS is not an OpenBLAS this module can find."""
    ctl = blas.controls()
    if not ctl:
        pytest.skip("no OpenBLAS thread control found (numpy uses another BLAS)")
    get, put = ctl[0]
    before = get()
    put(2)
    yield get
    put(before)


def test_limited_sets_one_thread_and_restores(two_threads):
    get = two_threads
    with blas.limited():
        assert get() == 1
        with blas.limited():
            assert get() == 1
        assert get() == 1  # the inner exit leaves the outer setting
    assert get() == 2


def test_limited_restores_after_an_exception(two_threads):
    get = two_threads
    with pytest.raises(RuntimeError):
        with blas.limited():
            raise RuntimeError("inside")
    assert get() == 2


def _threads_seen_by_the_field(monkeypatch, get) -> set[int]:
    """The OpenBLAS thread counts seen by every field evaluation of a small d = 4 run."""
    seen: set[int] = set()
    call = CollectiveField.__call__

    def spy(self, t, y):
        seen.add(get())
        return call(self, t, y)

    monkeypatch.setattr(CollectiveField, "__call__", spy)
    rng = np.random.default_rng(1)
    data = pwflow.Dataset(rng.normal(size=(6, 4)), rng.normal(size=6))
    tr = pwflow.simulate(data, pwflow.balanced(20, 4, 1e-2, seed=1), 0.5, n_snapshots=2)
    assert tr.status == 0 and seen
    return seen


def test_the_stepper_runs_on_one_blas_thread(monkeypatch, two_threads):
    assert _threads_seen_by_the_field(monkeypatch, two_threads) == {1}
    assert two_threads() == 2


def test_threads_none_leaves_blas_alone(monkeypatch, two_threads):
    monkeypatch.setattr(blas, "THREADS", None)
    assert _threads_seen_by_the_field(monkeypatch, two_threads) == {2}


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "1"])
def test_bad_threads_setting_is_one_clear_error(monkeypatch, bad):
    monkeypatch.setattr(blas, "THREADS", bad)
    with pytest.raises(ValueError, match="pwflow.blas.THREADS"):
        with blas.limited():
            pass
