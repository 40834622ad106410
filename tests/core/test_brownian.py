"""The Brownian noise source: one path whose values depend on (seed, t) alone, with the increments of
Brownian motion, and which makes DPM++ SDE converge as the step count grows."""

from __future__ import annotations

import math

import pytest
import torch

from difflab.core.processes import VPSDE
from difflab.core.samplers import BrownianTree, Denoiser, run_sampler, sample_dpmpp_sde

LIKE = torch.zeros(40_000, dtype=torch.float64)


def test_values_depend_on_the_seed_and_time_only():
    a, b = BrownianTree(LIKE, 0.1, 5.0, seed=7), BrownianTree(LIKE, 0.1, 5.0, seed=7)
    times = [0.3, 4.2, 1.7, 2.5]
    first = {t: a(t).clone() for t in times}
    for t in reversed(times):
        torch.testing.assert_close(b(t), first[t], rtol=0, atol=0)
    assert not torch.equal(BrownianTree(LIKE, 0.1, 5.0, seed=8)(1.7), first[1.7])
    torch.testing.assert_close(a(0.1), torch.zeros_like(LIKE))


def test_increments_have_brownian_covariance():
    tree = BrownianTree(LIKE, 0.0, 10.0, seed=3)
    inc = tree(6.0) - tree(1.0)
    assert abs(inc.var().item() / 5.0 - 1) < 0.03 and abs(inc.mean().item()) < 0.03
    z = tree.normalised_increment(2.0, 2.001)  # a short step, still standard normal
    assert abs(z.var().item() - 1) < 0.03
    disjoint = torch.corrcoef(torch.stack([tree(3.0) - tree(1.0), tree(9.0) - tree(4.0)]))[0, 1]
    nested = torch.corrcoef(torch.stack([tree(2.0) - tree(1.0), tree(5.0) - tree(1.0)]))[0, 1]
    assert abs(disjoint.item()) < 0.03
    assert abs(nested.item() - math.sqrt(1 / 4)) < 0.03


def _net(x, t):  # exact eps of N(0, 0.25 I) data under VPSDE
    a, _, s = (c.reshape(-1, 1) for c in VPSDE().coefficients(t))
    return s * x / (a**2 * 0.25 + s**2)


@pytest.mark.parametrize("seed", [0, 1])
def test_a_brownian_path_makes_the_sde_solution_independent_of_the_step_count(seed):
    """On one Brownian path DPM++ SDE at 15, 60 and 240 steps approaches one solution; with fresh
    white noise per step the runs are unrelated samples."""
    process = VPSDE()
    z = torch.randn(256, 4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)

    def run(steps, noise):
        den = Denoiser(_net, process, "eps")
        return run_sampler(
            "dpmpp_sde",
            den,
            z * process.coefficients(torch.ones(1))[2],
            steps=steps,
            noise=noise,
            generator=torch.Generator().manual_seed(seed + 10),
        ).sample

    brown = {n: run(n, "brownian") for n in (15, 60, 240)}
    white = {n: run(n, "white") for n in (15, 240)}
    far = (brown[15] - brown[240]).pow(2).mean().sqrt()
    near = (brown[60] - brown[240]).pow(2).mean().sqrt()
    unrelated = (white[15] - white[240]).pow(2).mean().sqrt()
    assert near < 0.6 * far and far < 0.3 * unrelated, (near, far, unrelated)


def test_brownian_noise_refuses_per_element_grids():
    den = Denoiser(_net, VPSDE(), "eps")
    grid = torch.linspace(1, 0, 5, dtype=torch.float64)[:, None].expand(5, 2).contiguous()
    with pytest.raises(ValueError, match="one time per step"):
        sample_dpmpp_sde(den, torch.zeros(2, 4, dtype=torch.float64), grid, noise="brownian")
