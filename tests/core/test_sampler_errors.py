"""Samplers and grids refuse inputs they cannot integrate, with an error that says why."""

import pytest
import torch

from difflab.core.processes import VPSDE, FlowMatching
from difflab.core.samplers import Denoiser, sample_euler, time_grid


def test_karras_grid_needs_finite_sigma():
    with pytest.raises(ValueError, match="t_start < 1"):
        time_grid(10, kind="karras", process=FlowMatching())
    grid = time_grid(10, t_start=0.99, kind="karras", process=FlowMatching())
    assert grid.shape == (11,) and grid[0] == 0.99 and grid[-1] == 0


def test_euler_refuses_an_infinite_start_sigma():
    proc = FlowMatching()
    den = Denoiser(lambda x, t: torch.zeros_like(x), proc, "velocity")
    with pytest.raises(ValueError, match="infinite noise level"):
        sample_euler(den, torch.randn(4, 2), torch.linspace(1, 0, 5, dtype=torch.float64))


@pytest.mark.parametrize("steps", [0, -3])
def test_grid_needs_steps(steps):
    with pytest.raises(ValueError, match="steps must be >= 1"):
        time_grid(steps, process=VPSDE())


def test_grid_must_descend():
    with pytest.raises(ValueError, match="greater than"):
        time_grid(5, t_start=0.1, t_end=0.5)


@pytest.mark.parametrize(
    "bad", [torch.tensor([0.1, 1.2, 0.3]), torch.tensor([0.1, 1.0, 0.3]), torch.tensor([0.0, 0.2])]
)
def test_discrete_chain_rejects_betas_outside_the_unit_interval(bad):
    from difflab.core.processes import DiscreteVP

    with pytest.raises(ValueError, match=r"beta\[\d\]"):
        DiscreteVP(betas=bad)


def test_discrete_chain_accepts_zero_terminal_snr():
    from difflab.core.processes import DiscreteVP
    from difflab.core.schedules import linear_betas, rescale_zero_terminal_snr

    proc = DiscreteVP(betas=rescale_zero_terminal_snr(linear_betas(10)))
    a, _, s = proc.coefficients(torch.tensor([1.0], dtype=torch.float64))
    assert a.item() == 0 and s.item() == 1
