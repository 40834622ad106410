import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Batch-1 policy inference and tiny training runs are fastest (and least noisy) on one thread."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
