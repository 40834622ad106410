"""Fixtures shared by every package's tests (only torch and pytest: each package's tests also run
in a virtual environment holding core and that package alone)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def seeded():
    """Every test starts from the same global random state (torch, numpy, random), so what it builds
    and draws does not depend on which tests ran before it in the same process."""
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)


def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


@pytest.fixture
def one_thread():
    """Run on one torch thread, then restore the count. Brief training runs and loops of small
    tensor ops are fastest and least noisy that way, and learning-test thresholds were measured so."""
    yield from _one_thread()


@pytest.fixture(scope="module")
def one_thread_module():
    """:func:`one_thread` for a whole module, for module-scoped fixtures that train shared models."""
    yield from _one_thread()
