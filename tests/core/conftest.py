"""Shared fixtures of the core tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def generator() -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with 0; tests pass generators explicitly."""
    return torch.Generator().manual_seed(0)
