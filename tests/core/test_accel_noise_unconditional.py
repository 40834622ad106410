"""Noise-unconditional denoisers (Sun et al. 2025) on the exact-score Gaussian mixture in D = 64.

The Bayes-optimal noise-unconditional model is the conditional optimum averaged over the posterior of
the noise level, ``R(x) = E_{p(t|x)}[R(x, t)]`` (closed-form mixture marginals, 128-point quadrature).
Run from the same prior noise, the paper's error analysis bounds how far its samples drift from the
noise-conditional ones. As in the paper, DDIM with an eps-prediction network is hurt most (the
``s/a`` factor of ``x0 = (x - s eps)/a`` amplifies the eps error near the prior), while flow matching
(velocity, Euler) and the EDM-style ``x0``-prediction Euler sampler degrade gracefully.

``DIFFLAB_TEST_SEED`` draws the mixture's means, the prior noise and the premise check's data. rms
displacement from the conditional samples (n = 200, 50 steps; the within-mode spread is ~3.4) over
seeds 0-9, one thread (``python scripts/learning_spread.py <this test> --seeds 0-9``): DDIM-eps
1.39-1.51 (mean 1.45), flow Euler 0.34-0.40 (0.37), EDM Euler 0.33-0.44 (0.39); DDIM-eps over the
worse of the other two 3.3-4.1 x. Asserted: DDIM-eps >= 1.0 and more than 2.5 x the others; flow and
EDM <= 0.6. The option itself: :class:`NoiseUnconditional` hides ``t``.
"""

from __future__ import annotations

import math

import pytest
import torch

from difflab.core.accelerate import NoiseUnconditional, noise_level_posterior, noise_unconditional_oracle
from difflab.core.processes import VPSDE
from difflab.core.processes.flow import FlowMatching
from difflab.core.samplers import Denoiser, sample_ddim, sample_euler, time_grid
from difflab.core.toy import GaussianMixture

DT = torch.float64
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.slow
def test_ddim_eps_fails_without_noise_conditioning_while_flow_and_edm_degrade_gracefully(test_seed, record_property):
    d = 64
    g = torch.Generator().manual_seed(1 + test_seed)
    means = torch.randn(3, d, generator=g, dtype=DT)
    gm = GaussianMixture(2.0 * means / means.norm(dim=1, keepdim=True), 0.3, torch.tensor([0.5, 0.3, 0.2], dtype=DT))
    x = torch.randn(200, d, generator=g, dtype=DT)
    vp, fm = VPSDE(), FlowMatching()
    times = lambda p: p.t_min + (p.t_max - p.t_min) * (torch.arange(128, dtype=DT) + 0.5) / 128
    cases = {
        "ddim_eps": (vp, "eps", sample_ddim, time_grid(50, t_start=1.0, t_end=1e-3)),
        "flow_euler": (fm, "velocity", sample_ddim, time_grid(50, t_start=1.0, t_end=0.0)),
        "edm_euler_x0": (vp, "x0", sample_euler, time_grid(50, t_start=1.0, t_end=1e-3, kind="karras", process=vp)),
    }
    dev = {}
    for name, (proc, pred, sampler, grid) in cases.items():
        cond = sampler(Denoiser(gm.exact_model(proc, pred), proc, pred), x, grid).sample
        unc_model = noise_unconditional_oracle(gm, proc, pred, times=times(proc))
        unc = sampler(Denoiser(unc_model, proc, pred), x, grid).sample
        dev[name] = float((unc - cond).norm(dim=-1).pow(2).mean().sqrt())
    print("\nrms displacement, noise-unconditional vs conditional:", {k: round(v, 3) for k, v in dev.items()})
    for name, value in dev.items():
        record_property(name, value)
    assert dev["ddim_eps"] >= 1.0
    assert dev["ddim_eps"] > 2.5 * max(dev["flow_euler"], dev["edm_euler_x0"])
    assert dev["flow_euler"] <= 0.6 and dev["edm_euler_x0"] <= 0.6
    # the premise: in high dimension p(t | x_t) is concentrated (here at t = 0.1)
    x0 = gm.sample(20, g)
    xt, _ = vp.sample_marginal(x0, torch.full((20,), 0.1, dtype=DT), generator=g)
    ts = torch.linspace(5e-4, 0.9995, 1000, dtype=DT)
    post = noise_level_posterior(gm, vp, xt, ts)
    mean = (post * ts).sum(-1)
    sd = ((post * ts**2).sum(-1) - mean**2).clamp_min(0).sqrt()
    assert float(sd.max()) < 0.05 and float((mean - 0.1).abs().max()) < 0.1
    assert math.isclose(float(post.sum(-1).min()), 1.0, rel_tol=1e-9)


def test_noise_unconditional_wrapper_hides_the_time():
    seen = []

    class Net(torch.nn.Module):
        def forward(self, x, t, scale=1.0):
            seen.append(t.clone())
            return scale * x * (1 + t[:, None])

    net = NoiseUnconditional(Net(), t_value=0.25)
    x = torch.ones(3, 2)
    out = net(x, torch.tensor([0.1, 0.5, 0.9]), scale=2.0)
    torch.testing.assert_close(out, torch.full((3, 2), 2.5))
    torch.testing.assert_close(seen[0], torch.full((3,), 0.25))
    assert "t_value=0.25" in repr(net)


def test_the_wrapper_reads_the_wrapped_networks_attributes():
    from torch import nn

    from difflab.core.accelerate import NoiseUnconditional

    net = nn.Linear(2, 2)
    net.num_classes = 3
    wrapped = NoiseUnconditional(net)
    assert wrapped.num_classes == 3 and wrapped.network is net and wrapped.in_features == 2
    with pytest.raises(AttributeError):
        _ = wrapped.missing
