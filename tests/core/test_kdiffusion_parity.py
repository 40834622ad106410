"""The samplers that k-diffusion has and diffusers does not (DPM++ 2S ancestral, DPM++ SDE), and the
noise-source option of the stochastic samplers, step for step against k-diffusion's sampling loops.

k-diffusion works in VE coordinates ``x~ = x / a`` with a denoiser ``D(x~, sigma)``; ours is the same
network on the VP state ``a x~`` at ``t = t(sigma)`` (VPSDE's closed-form inverse). Both sides take
their fresh noise from identically seeded generators in the same order (a noise callable), and the
grid is our Karras grid's noise levels. k-diffusion's package imports much more than its sampling
module needs, so the test loads ``k_diffusion/sampling.py`` alone, with the one helper it uses.
"""

from __future__ import annotations

import pytest
import torch

from difflab.core.processes import VPSDE
from difflab.core.samplers import (
    Denoiser,
    sample_dpmpp_2m_sde,
    sample_dpmpp_2s_ancestral,
    sample_dpmpp_3m_sde,
    sample_dpmpp_sde,
    sample_euler_ancestral,
)
from difflab.core.samplers.registry import standard_grid
from difflab.core.testing import kdiffusion_sampling

SHAPE = (3, 2, 6)
PROCESS = VPSDE()


def load_kdiffusion_sampling():
    module = kdiffusion_sampling()
    if module is None:
        pytest.skip("k-diffusion (or torchsde) is not installed")
    return module


def make_net():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(SHAPE[-1], SHAPE[-1], generator=g, dtype=torch.float64) / SHAPE[-1] ** 0.5
    u = torch.randn(SHAPE[-1], generator=g, dtype=torch.float64)

    def net(x, t):  # eps of N(0, 0.25 I) data plus a fixed nonlinearity
        a, _, s = (c.reshape(-1, *([1] * (x.ndim - 1))) for c in PROCESS.coefficients(t))
        return s * x / (a**2 * 0.25 + s**2) + 0.1 * torch.tanh(x @ w + t.reshape(-1, 1, 1) * u)

    return net


def k_model(den: Denoiser):
    def model(x_ve, sigma):
        t = PROCESS.t_from_sigma(sigma)
        a = PROCESS.coefficients(t)[0].reshape(-1, 1, 1)
        return den(a * x_ve, t)[0]

    return model


class Noise:
    """Standard normal draws of the sample's shape from one seeded generator, whatever is asked."""

    def __init__(self, seed: int) -> None:
        self.g = torch.Generator().manual_seed(seed)

    def __call__(self, *_) -> torch.Tensor:
        return torch.randn(SHAPE, generator=self.g, dtype=torch.float64)


def setup(n: int):
    grid = standard_grid("euler_ancestral", PROCESS, n, t_end=0.0, karras_floor=1e-3)
    sigmas = PROCESS.sigma(grid)
    sigmas[-1] = 0.0
    z = torch.randn(SHAPE, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    return grid, sigmas, z


@pytest.mark.parametrize("n", [10, 25])
@pytest.mark.parametrize("eta", [0.5, 1.0])
@pytest.mark.parametrize(
    ("name", "ours"),
    [
        ("sample_dpmpp_2s_ancestral", sample_dpmpp_2s_ancestral),
        ("sample_dpmpp_sde", sample_dpmpp_sde),
        ("sample_euler_ancestral", sample_euler_ancestral),
    ],
)
def test_stochastic_samplers_match_kdiffusion(name, ours, n, eta):
    kd = load_kdiffusion_sampling()
    grid, sigmas, z = setup(n)
    den = Denoiser(make_net(), PROCESS, "eps")
    ref = getattr(kd, name)(k_model(den), z * sigmas[0], sigmas, eta=eta, noise_sampler=Noise(3), disable=True)
    den2 = Denoiser(make_net(), PROCESS, "eps")
    a0 = PROCESS.coefficients(grid[:1])[0]
    out = ours(den2, z * sigmas[0] * a0, grid, eta=eta, noise=Noise(3))
    torch.testing.assert_close(out.sample, ref, rtol=0, atol=1e-6)
    assert out.nfe == (n if name == "sample_euler_ancestral" else 2 * n - 1)


@pytest.mark.parametrize("solver_type", ["midpoint", "heun"])
def test_dpmpp_2m_sde_with_a_noise_callable_matches_kdiffusion(solver_type):
    kd = load_kdiffusion_sampling()
    grid, sigmas, z = setup(12)
    den = Denoiser(make_net(), PROCESS, "eps")
    ref = kd.sample_dpmpp_2m_sde(
        k_model(den), z * sigmas[0], sigmas, noise_sampler=Noise(5), solver_type=solver_type, disable=True
    )
    a0 = PROCESS.coefficients(grid[:1])[0]
    out = sample_dpmpp_2m_sde(
        den, z * sigmas[0] * a0, grid, solver_type=solver_type, lower_order_final=False, noise=Noise(5)
    )
    torch.testing.assert_close(out.sample, ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("n", [10, 25])
@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_dpmpp_3m_sde_matches_kdiffusion(n, prediction):
    """Both sides read the same denoiser's x0 (of an eps or a v network); the warm-up's second-order
    step is k-diffusion's ``phi_2`` form, our ``solver_type="heun"``."""
    kd = load_kdiffusion_sampling()
    grid, sigmas, z = setup(n)
    den = Denoiser(make_net(), PROCESS, prediction)
    ref = kd.sample_dpmpp_3m_sde(k_model(den), z * sigmas[0], sigmas, noise_sampler=Noise(6), disable=True)
    a0 = PROCESS.coefficients(grid[:1])[0]
    out = sample_dpmpp_3m_sde(
        den, z * sigmas[0] * a0, grid, solver_type="heun", lower_order_final=False, noise=Noise(6)
    )
    torch.testing.assert_close(out.sample, ref, rtol=0, atol=1e-6)
