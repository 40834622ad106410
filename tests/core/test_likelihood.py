"""The probability-flow ODE log-likelihood against the exact density of a Gaussian mixture."""

from __future__ import annotations

import math

import pytest
import torch

from difflab.core.likelihood import bits_per_dim, divergence, log_likelihood
from difflab.core.processes import VPSDE
from difflab.core.samplers import Denoiser
from difflab.core.toy import GaussianMixture


def _mixture() -> GaussianMixture:
    means = torch.tensor([[1.0, 0.0], [-1.0, 0.5], [0.0, -1.0]], dtype=torch.float64)
    return GaussianMixture(means, torch.tensor([0.3, 0.2, 0.25], dtype=torch.float64))


def test_exact_divergence_of_a_linear_map_is_its_trace():
    a = torch.tensor([[2.0, 1.0, 0.0], [0.0, -3.0, 1.0], [1.0, 0.0, 0.5]], dtype=torch.float64)
    x = torch.randn(4, 3, dtype=torch.float64)
    out, div = divergence(lambda z: z @ a.T, x)
    torch.testing.assert_close(out, x @ a.T)
    torch.testing.assert_close(div, torch.full((4,), float(torch.trace(a)), dtype=torch.float64))
    _, est = divergence(lambda z: z @ a.T, x, "hutchinson", probes=4000, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(est, div, rtol=0, atol=0.15)


def test_log_likelihood_of_the_exact_score_is_the_true_density():
    mix, process = _mixture(), VPSDE()
    den = Denoiser(mix.exact_model(process, "eps"), process, "eps")
    x = mix.sample(6, generator=torch.Generator().manual_seed(1))
    t0 = 1e-3
    exact_prior = lambda z, t: mix.log_prob_t(z, float(t[0]), process)  # noqa: E731
    ours = log_likelihood(den, x, steps=100, t_start=t0, prior_log_prob=exact_prior)
    truth = mix.log_prob_t(x, t0, process)
    torch.testing.assert_close(ours, truth, rtol=0, atol=2e-3)
    # the default Gaussian prior at T = 1 is close for VPSDE (a(1) = 0.0067)
    default = log_likelihood(den, x, steps=100, t_start=t0)
    torch.testing.assert_close(default, truth, rtol=0, atol=2e-2)


def test_hutchinson_estimate_is_unbiased_and_bits_per_dim():
    mix, process = _mixture(), VPSDE()
    den = Denoiser(mix.exact_model(process, "eps"), process, "eps")
    x = mix.sample(3, generator=torch.Generator().manual_seed(2))
    exact = log_likelihood(den, x, steps=20, t_start=1e-3)
    est = torch.stack(
        [
            log_likelihood(
                den,
                x,
                steps=20,
                t_start=1e-3,
                divergence_method="hutchinson",
                generator=torch.Generator().manual_seed(s),
            )
            for s in range(40)
        ]
    ).mean(0)
    torch.testing.assert_close(est, exact, rtol=0, atol=0.1)
    assert bits_per_dim(torch.tensor([-2 * math.log(2)]), 2).item() == pytest.approx(1.0)
