"""Shared pytest configuration: hypothesis profiles and small fixtures.

Hypothesis profiles (select with the environment variable ``HYPOTHESIS_PROFILE``):

* ``ci`` (default): few examples, derandomised (reproducible runs), no deadline.
* ``thorough``: 500 examples per property, no deadline.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import settings

import pwflow.data

settings.register_profile(
    "ci", max_examples=15, deadline=None, derandomize=True, print_blob=True
)
settings.register_profile("thorough", max_examples=500, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def three() -> pwflow.data.Dataset:
    """The 3-point dataset of Appendix B.1 (with bias coordinate)."""
    return pwflow.data.three_points()


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator for test-local random draws."""
    return np.random.default_rng(20240229)
