"""Fixtures shared by every package's tests (only torch and pytest: each package's tests also run
in a virtual environment holding core and that package alone).

Learning tests (marked ``slow``) draw every seed they use (data order, network initialisation,
sampling noise) from one value, ``DIFFLAB_TEST_SEED`` (default 0), through the ``test_seed`` fixture:
they must pass for any value. ``DIFFLAB_TEST_THREADS`` (default 1) sets the torch thread count of
the ``one_thread`` fixtures, so the spread of a learning test over thread counts can be measured.

``make test`` runs the test files in parallel (pytest-xdist, one worker per core, a file's tests on
one worker so module fixtures are shared). Each worker then starts with its share of the cores as its
torch thread count, so that workers do not oversubscribe the machine; the learning tests set their own.
"""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, str(default))
    try:
        return int(raw)
    except ValueError:
        raise pytest.UsageError(f"{name} must be an integer, got {raw!r}") from None


def pytest_configure(config):
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(workers)))


@pytest.fixture
def record_property(record_property):
    """pytest's ``record_property`` taking numpy scalars too (as plain numbers: the parallel workers
    send every recorded value to the main process, which accepts only built-in types)."""

    def record(name: str, value) -> None:
        record_property(name, value.item() if isinstance(value, np.generic) else value)

    return record


def pytest_report_header(config):
    return (
        f"DIFFLAB_TEST_SEED={_env_int('DIFFLAB_TEST_SEED', 0)} "
        f"DIFFLAB_TEST_THREADS={_env_int('DIFFLAB_TEST_THREADS', 1)}"
    )


@pytest.fixture(scope="session")
def test_seed() -> int:
    """The seed of the learning tests: ``DIFFLAB_TEST_SEED`` (default 0). A test adds it to its own
    base seeds (``base + test_seed``), so seed 0 reproduces the runs its docstring reports."""
    return _env_int("DIFFLAB_TEST_SEED", 0)


@pytest.fixture(autouse=True)
def seeded():
    """Every test starts from the same global random state (torch, numpy, random), so what it builds
    and draws does not depend on which tests ran before it in the same process."""
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)


def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(_env_int("DIFFLAB_TEST_THREADS", 1))
    try:
        yield
    finally:
        torch.set_num_threads(n)


@pytest.fixture
def one_thread():
    """Run on one torch thread (``DIFFLAB_TEST_THREADS`` overrides it), then restore the count. Brief
    training runs and loops of small tensor ops are fastest and least noisy that way."""
    yield from _one_thread()


@pytest.fixture(scope="module")
def one_thread_module():
    """:func:`one_thread` for a whole module, for module-scoped fixtures that train shared models."""
    yield from _one_thread()
