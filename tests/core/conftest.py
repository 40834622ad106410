"""Shared fixtures of the core tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture
def generator() -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with 0; tests pass generators explicitly."""
    return torch.Generator().manual_seed(0)


@pytest.fixture
def single_thread() -> Iterator[None]:
    """Run a test with one intra-op thread (long loops of small tensor ops are much faster on a busy machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)
