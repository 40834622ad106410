"""Shared helpers of the difflab-vision tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test of this package on one torch thread (tests/conftest.py)."""
