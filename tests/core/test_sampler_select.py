"""Sampler selection by name: dispatch, default grids, option forwarding, errors."""

import math

import pytest
import torch

from difflab.core.processes import VESDE, VPSDE, DiscreteVP, FlowMatching
from difflab.core.samplers.base import Denoiser, time_grid
from difflab.core.samplers.select import SAMPLER_NAMES, default_grid, run_sampler, sampler_function
from difflab.core.toy import GaussianMixture

pytestmark = pytest.mark.usefixtures("one_thread")


def _ring(k=8, std=0.05):
    ang = 2 * math.pi * torch.arange(k, dtype=torch.float64) / k
    return GaussianMixture(torch.stack([ang.cos(), ang.sin()], -1), std)


STEPS = {
    "ddpm": 100,
    "ddim": 30,
    "dpm_solver": 20,
    "dpm_solver_singlestep": 20,
    "pndm": 30,
    "dpmpp_2s_ancestral": 30,
    "dpmpp_sde": 30,
    "euler": 30,
    "heun": 15,
    "euler_ancestral": 60,
    "dpmpp_2m_sde": 40,
    "dpmpp_3m_sde": 40,
    "unipc": 20,
    "lms": 30,
    "deis": 20,
    "lcm": 200,  # an exact (undistilled) denoiser: the last point before 0 must be near 0
    "tcd": 200,
    "probability_flow": 30,
    "euler_maruyama": 200,
    "pc": 100,
    "adaptive": 0,
    "paradigms": 30,
}


def test_every_name_resolves_to_its_function():
    import difflab.core.samplers.ddim as ddim
    import difflab.core.samplers.karras as karras

    assert sampler_function("ddim") is ddim.sample_ddim
    assert sampler_function("heun") is karras.sample_heun
    for name in SAMPLER_NAMES:
        assert callable(sampler_function(name)), name


def test_unknown_name_is_a_value_error():
    with pytest.raises(ValueError, match="'dddim'"):
        sampler_function("dddim")


@pytest.mark.parametrize("name", SAMPLER_NAMES)
def test_exact_denoiser_samples_land_on_the_modes(name):
    """With the Bayes-optimal denoiser every sampler's output lies on the mixture's modes."""
    mix = _ring()
    process = VPSDE()
    denoiser = Denoiser(mix.exact_model(process, "eps"), process, "eps")
    x = process.prior_sample((500, 2), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    result = run_sampler(name, denoiser, x, steps=STEPS[name], generator=torch.Generator().manual_seed(1))
    assert result.sample.shape == (500, 2)
    assert result.info["sampler"] == name
    assert result.nfe >= denoiser.nfe > 0  # ParaDiGMS counts per-position evaluations of its batched calls
    dist = mix.distance_to_nearest_mode(result.sample, relative=False)
    assert (dist < 3 * 0.05).double().mean() > 0.75, name
    assert (mix.mode_weights(result.sample) - mix.weights).abs().max() < 0.06


def test_default_grids():
    vp = VPSDE()
    # deterministic solvers: uniform in log-SNR from t_max down to t_min, then one step onto 0
    g = default_grid("ddim", vp, 10)
    assert g.shape == (11,) and g[0] == 1 and g[-2] == vp.t_min and g[-1] == 0
    lam = vp.log_snr(g[:-1])
    assert torch.allclose(lam.diff(), torch.full((9,), float(lam[1] - lam[0]), dtype=torch.float64), rtol=1e-6)
    # ... and uniform in t where the log-SNR is infinite at the start (flow matching)
    g = default_grid("dpm_solver", FlowMatching(), 10)
    assert torch.allclose(g, torch.linspace(1, 0, 11, dtype=torch.float64))
    g = default_grid("ddim", vp, 10, grid_kind="uniform")
    assert torch.allclose(g, torch.linspace(1, 0, 11, dtype=torch.float64))
    g = default_grid("euler_maruyama", vp, 10)
    assert g[0] == 1 and g[-1] == vp.t_min and g.shape == (11,)
    g = default_grid("adaptive", vp, 10)
    assert g.tolist() == [1.0, vp.t_min]
    # Karras grid ending at 0: sigma_max .. sigma(t_min) on `steps` points (rho = 7), then 0
    g = default_grid("heun", vp, 10)
    assert g.shape == (11,) and g[-1] == 0
    sig = vp.sigma(g[:-1])
    smax, smin = vp.sigma(torch.tensor([1.0, vp.t_min], dtype=torch.float64))
    i = torch.arange(10, dtype=torch.float64) / 9
    expect = (smax ** (1 / 7) + i * (smin ** (1 / 7) - smax ** (1 / 7))) ** 7
    assert torch.allclose(sig, expect, rtol=1e-6)
    # a continuous-time process with t_min = 0 falls back to time_grid's own Karras grid (to sigma(1e-6))
    dvp = DiscreteVP(whole_steps=False)
    assert torch.allclose(default_grid("euler", dvp, 8), time_grid(8, kind="karras", process=dvp))
    # a whole-step chain stops at its smallest trained level sigma(1 / T), then 0
    chain = DiscreteVP()
    g = default_grid("euler", chain, 8)
    head = time_grid(7, t_end=1 / chain.num_steps, kind="karras", process=chain)
    assert torch.equal(g, torch.cat([head, torch.zeros(1, dtype=torch.float64)]))
    # overrides
    g = default_grid("ddim", vp, 4, grid_kind="quadratic", t_end=0.1)
    assert torch.allclose(g, time_grid(4, t_end=0.1, kind="quadratic"))


def test_options_reach_the_sampler_and_a_ready_grid_wins():
    mix = _ring()
    process = VESDE(sigma_max=5.0)
    denoiser = Denoiser(mix.exact_model(process, "eps"), process, "eps")
    x = process.prior_sample((64, 2), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    grid = torch.linspace(1.0, 0.0, 6, dtype=torch.float64)
    r = run_sampler("ddim", denoiser, x, steps=100, grid=grid)
    assert r.nfe == 5 and torch.equal(r.info["grid"], grid)
    # eta > 0 makes DDIM stochastic: different generators give different samples
    a = run_sampler("ddim", denoiser, x, steps=5, eta=1.0, generator=torch.Generator().manual_seed(1)).sample
    b = run_sampler("ddim", denoiser, x, steps=5, eta=1.0, generator=torch.Generator().manual_seed(2)).sample
    c = run_sampler("ddim", denoiser, x, steps=5, eta=1.0, generator=torch.Generator().manual_seed(1)).sample
    assert not torch.equal(a, b) and torch.equal(a, c)
    with pytest.raises(TypeError):
        run_sampler("ddim", denoiser, x, steps=5, etaa=1.0)


def test_sampler_names_are_the_registries_keys():
    from typing import get_args

    from difflab.core.samplers.select import (
        _DISCRETE_SAMPLERS,
        _SAMPLERS,
        DISCRETE_SAMPLER_NAMES,
        DiscreteSamplerName,
        SamplerName,
    )

    assert get_args(SamplerName) == SAMPLER_NAMES == tuple(_SAMPLERS)
    assert (
        get_args(DiscreteSamplerName)
        == DISCRETE_SAMPLER_NAMES
        == tuple(_DISCRETE_SAMPLERS)
        == ("masked", "gidd", "ddpd")
    )


@pytest.mark.parametrize("name", ["masked", "gidd"])
def test_discrete_samplers_by_name_equal_the_functions_on_the_process_grid(name):
    from difflab.core.processes import GIDD, MaskedDiffusion
    from difflab.core.samplers.masked import sample_gidd, sample_masked
    from difflab.core.samplers.select import discrete_sampler_function, run_discrete_sampler

    V, mask = 12, 0
    process = MaskedDiffusion(V, mask) if name == "masked" else GIDD(V, mask, p_u=0.1)
    fn = sample_masked if name == "masked" else sample_gidd
    assert discrete_sampler_function(name) is fn
    weights = torch.randn(V, V, generator=torch.Generator().manual_seed(0))

    def model(x, t):
        return weights[x]

    x = process.prior_sample((3, 7))
    grid = process.default_grid(name, 6)
    ends = (1.0, 1e-5) if name == "masked" else (1 - 1e-4, 1e-4)
    torch.testing.assert_close(grid, torch.linspace(*ends, 7, dtype=torch.float64))
    ours = run_discrete_sampler(name, model, process, x.clone(), steps=6, generator=torch.Generator().manual_seed(1))
    ref = fn(model, process, x.clone(), grid, generator=torch.Generator().manual_seed(1))
    assert torch.equal(ours.sample, ref.sample) and ours.nfe == ref.nfe
    assert ours.info["sampler"] == name and torch.equal(ours.info["grid"], grid)
    with pytest.raises(ValueError, match="unknown discrete sampler 'ddpm'"):
        run_discrete_sampler("ddpm", model, process, x, steps=6)


def test_module_sampler_names_follow_the_process_kind():
    from difflab.core.lightning import DiffusionModule
    from difflab.core.processes import MaskedDiffusion

    net = torch.nn.Linear(2, 2)
    assert DiffusionModule(net, MaskedDiffusion(5, 0), sampler="masked").sampler_name == "masked"
    with pytest.raises(ValueError, match="sampler must be one of .*'masked'.* for MaskedDiffusion, got 'ddpm'"):
        DiffusionModule(net, MaskedDiffusion(5, 0), sampler="ddpm")
    with pytest.raises(ValueError, match="for VPSDE, got 'masked'"):
        DiffusionModule(net, sampler="masked")
