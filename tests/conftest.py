"""Fixtures shared by every package's tests (only torch and pytest: each package's tests also run
in a virtual environment holding core and that package alone)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def one_thread():
    """Run on one torch thread, then restore the count. Brief training runs and loops of small
    tensor ops are fastest and least noisy that way, and learning-test thresholds were measured so."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)
