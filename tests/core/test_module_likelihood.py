"""``DiffusionModule.log_likelihood``: the module's PF-ODE likelihood is core's ``log_likelihood`` on the
module's denoiser, and for an exact Gaussian score it is the closed-form density."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from difflab.core.lightning import DiffusionModule
from difflab.core.lightning.toy import ToyMLP
from difflab.core.likelihood import log_likelihood
from difflab.core.processes import OUVESDE, VPSDE, DiscreteVP
from difflab.core.processes.discrete import MaskedDiffusion
from difflab.core.samplers import Denoiser
from difflab.core.samplers.select import DISCRETE_SAMPLER_NAMES


class ExactGaussianEps(nn.Module):
    """The exact eps of data ``N(mu, v I)`` under a ``b = 0`` process: ``x_t ~ N(a mu, (a^2 v + s^2) I)``,
    ``eps = s (x - a mu) / (a^2 v + s^2)``. One dummy parameter (a module needs one to be frozen)."""

    def __init__(self, process, mu: float, var: float) -> None:
        super().__init__()
        self.process, self.mu, self.var = process, mu, var
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        a, _, s = self.process.coefficients_like(t, x)
        return s * (x - a * self.mu) / (a**2 * self.var + s**2) + 0 * self.dummy


def _gauss_log_prob(x: Tensor, mean: Tensor | float, var: Tensor | float) -> Tensor:
    var = torch.as_tensor(var, dtype=x.dtype)
    d = x[0].numel()
    return (-0.5 * (x - mean) ** 2 / var).reshape(len(x), -1).sum(1) - 0.5 * d * torch.log(2 * math.pi * var)


def test_module_method_equals_core_function_on_a_tiny_module():
    torch.manual_seed(0)
    module = DiffusionModule(ToyMLP(dim=3, hidden=16, depth=2, embed_dim=8).double(), VPSDE())
    x = torch.randn(4, 3, dtype=torch.float64)
    calls = []
    ours = module.log_likelihood({"x0": x}, steps=6, divergence="exact", callback=calls.append)
    assert [c["step"] for c in calls] == list(range(6))
    den = Denoiser(module.network, module.process, "eps")
    direct = log_likelihood(den, x, steps=6, t_start=module.t_eps, divergence_method="exact")
    torch.testing.assert_close(ours, direct)
    assert module.training  # mode restored
    assert all(p.requires_grad for p in module.parameters()) and all(p.grad is None for p in module.parameters())
    # hutchinson with the same generator seed equals the direct call too
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    h1 = module.log_likelihood({"x0": x}, steps=4, probes=2, generator=g1)
    h2 = log_likelihood(den, x, steps=4, t_start=module.t_eps, divergence_method="hutchinson", probes=2, generator=g2)
    torch.testing.assert_close(h1, h2)


def test_conditional_process_takes_y_from_the_batch():
    torch.manual_seed(1)
    process = OUVESDE()
    net = ToyMLP(dim=2, hidden=16, depth=2, embed_dim=8).double()
    module = DiffusionModule(net, process)
    x, y = torch.randn(3, 2, dtype=torch.float64), torch.randn(3, 2, dtype=torch.float64)
    ours = module.log_likelihood({"x0": x, "y": y}, steps=4, divergence="exact")
    direct = log_likelihood(Denoiser(net, process, "eps", y=y), x, steps=4, t_start=module.t_eps)
    torch.testing.assert_close(ours, direct)


@pytest.mark.parametrize("process", [VPSDE(), DiscreteVP("linear", 200, whole_steps=False)])
def test_exact_gaussian_score_gives_the_closed_form_density(process):
    mu, var = 0.5, 0.3**2
    module = DiffusionModule(ExactGaussianEps(process, mu, var), process, t_eps=1e-3)
    x = mu + 0.3 * torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    t0 = torch.tensor([1e-3], dtype=torch.float64)
    a0, _, s0 = process.coefficients(t0)
    truth = _gauss_log_prob(x, a0 * mu, a0**2 * var + s0**2)

    def exact_prior(z: Tensor, t: Tensor) -> Tensor:
        a, _, s = process.coefficients(t[:1])
        return _gauss_log_prob(z, a * mu, a**2 * var + s**2)

    ours = module.log_likelihood({"x0": x}, steps=64, divergence="exact", prior_log_prob=exact_prior)
    torch.testing.assert_close(ours, truth, rtol=0, atol=1e-3)


def test_discrete_token_process_is_refused_in_one_line():
    module = DiffusionModule(
        nn.Linear(2, 2), MaskedDiffusion(vocab_size=5, mask_id=4), sampler=DISCRETE_SAMPLER_NAMES[0]
    )
    with pytest.raises(ValueError, match="discrete token process"):
        module.log_likelihood({"x0": torch.zeros(2, 3, dtype=torch.long)})


def test_works_inside_inference_mode_as_in_lightning_test():
    torch.manual_seed(2)
    module = DiffusionModule(ToyMLP(dim=2, hidden=16, depth=2, embed_dim=8).double(), VPSDE())
    x = torch.randn(3, 2, dtype=torch.float64)
    expected = module.log_likelihood({"x0": x}, steps=3, divergence="exact")
    with torch.inference_mode():
        got = module.log_likelihood({"x0": x.clone()}, steps=3, divergence="exact")
    torch.testing.assert_close(got, expected)
