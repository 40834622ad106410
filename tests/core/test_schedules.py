"""Schedules against diffusers' DDPMScheduler, conversion round trips and grid invariants."""

from __future__ import annotations

import math

import pytest
import torch

from difflab.core import schedules as S
from difflab.core.processes import VESDE, VPSDE, DiscreteVP
from difflab.core.samplers import time_grid

diffusers = pytest.importorskip("diffusers")
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy:DeprecationWarning")

# our name, diffusers' name, (beta_start, beta_end) or None for the defaults
NAMED = [
    ("linear", "linear", (1e-4, 0.02)),
    ("scaled_linear", "scaled_linear", (0.00085, 0.012)),
    ("cosine", "squaredcos_cap_v2", None),
    ("sigmoid", "sigmoid", (1e-4, 0.02)),
]


@pytest.mark.parametrize("T", [1000, 100])
@pytest.mark.parametrize(("ours", "theirs", "ends"), NAMED)
def test_betas_and_alphas_cumprod_match_diffusers(ours, theirs, ends, T):
    kw = {} if ends is None else {"beta_start": ends[0], "beta_end": ends[1]}
    ref = diffusers.DDPMScheduler(num_train_timesteps=T, beta_schedule=theirs, **kw)
    betas = S.make_betas(ours, T, *(ends or (None, None)))
    assert betas.shape == (T,) and betas.dtype == torch.float64
    # diffusers builds them in float32: agreement to float32 rounding
    torch.testing.assert_close(betas, ref.betas.double(), rtol=5e-7, atol=0)
    ab = S.alphas_cumprod(betas)
    torch.testing.assert_close(ab, torch.cumprod(1 - ref.betas.double(), 0), rtol=2e-5, atol=1e-9)
    torch.testing.assert_close(ab, ref.alphas_cumprod.double(), rtol=2e-5, atol=1e-9)
    # the process view: diffusers timestep j is t = (j + 1) / T, and alpha_bar(0) = 1
    proc = DiscreteVP(ours, T, *(ends or (None, None)))
    t = (torch.arange(T, dtype=torch.float64) + 1) / T
    torch.testing.assert_close(proc.alpha_bar(t), ab, rtol=1e-12, atol=0)
    assert proc.alpha_bar(torch.zeros(1, dtype=torch.float64)).item() == 1.0


def test_cosine_betas_follow_the_continuous_alpha_bar_and_are_capped():
    T = 1000
    betas = S.cosine_betas(T)
    assert betas.max().item() == pytest.approx(0.999)
    i = torch.arange(T, dtype=torch.float64)
    ratio = S.cosine_alpha_bar((i + 1) / T) / S.cosine_alpha_bar(i / T)
    uncapped = betas < 0.999
    torch.testing.assert_close(betas[uncapped], (1 - ratio)[uncapped], rtol=1e-10, atol=1e-15)
    assert S.cosine_alpha_bar(torch.zeros(1, dtype=torch.float64)).item() == pytest.approx(1.0, abs=1e-15)


def test_sqrt_betas_reproduce_diffusion_lm_alpha_bar():
    """Diffusion-LM / DiffuSeq: alpha_bar(tau) = 1 - sqrt(tau + 1e-4) at tau = k / T, k = 1..T."""
    T = 2000
    betas = S.make_betas("sqrt", T)
    ab = S.alphas_cumprod(betas)
    k = torch.arange(1, T + 1, dtype=torch.float64)
    closed = 1 - torch.sqrt(k / T + 1e-4)
    uncapped = (betas < 0.999).cumprod(0).bool()  # the product is exact until the first capped step
    torch.testing.assert_close(ab[uncapped], (closed / (1 - 1e-2))[uncapped], rtol=1e-10, atol=1e-15)
    assert betas.max().item() <= 0.999


def test_zero_terminal_snr_matches_diffusers():
    from diffusers.schedulers.scheduling_ddpm import rescale_zero_terminal_snr

    betas = S.make_betas("scaled_linear", 1000)
    ours = S.rescale_zero_terminal_snr(betas)
    torch.testing.assert_close(ours, rescale_zero_terminal_snr(betas.clone()), rtol=1e-12, atol=1e-15)
    ab = S.alphas_cumprod(ours)
    assert ab[-1].item() == pytest.approx(0.0, abs=1e-20)
    assert ab[0].item() == pytest.approx(S.alphas_cumprod(betas)[0].item(), rel=1e-12)


def test_make_betas_rejects_unknown_names_and_bad_T():
    with pytest.raises(ValueError, match="quadratic"):
        S.make_betas("quadratic", 10)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="0"):
        S.make_betas("linear", 0)


# ------------------------------------------------------------------ conversions
def test_conversions_round_trip_and_agree_with_processes():
    ab = torch.linspace(1e-6, 1 - 1e-9, 501, dtype=torch.float64)
    sigma = S.alpha_bar_to_sigma(ab)
    torch.testing.assert_close(S.sigma_to_alpha_bar(sigma), ab, rtol=1e-12, atol=0)
    lam = S.alpha_bar_to_log_snr(ab)
    torch.testing.assert_close(S.log_snr_to_alpha_bar(lam), ab, rtol=1e-9, atol=0)
    torch.testing.assert_close(lam, -2 * sigma.log(), rtol=1e-12, atol=1e-12)
    assert (sigma[1:] < sigma[:-1]).all() and (lam[1:] > lam[:-1]).all()

    proc = DiscreteVP("linear", 1000)
    t = torch.linspace(0.001, 1, 200, dtype=torch.float64)
    torch.testing.assert_close(proc.sigma(t), S.alpha_bar_to_sigma(proc.alpha_bar(t)), rtol=1e-12, atol=0)
    torch.testing.assert_close(proc.log_snr(t), S.alpha_bar_to_log_snr(proc.alpha_bar(t)), rtol=1e-10, atol=1e-12)
    for p in (proc, VPSDE(), VESDE()):
        torch.testing.assert_close(p.t_from_sigma(p.sigma(t)), t, rtol=1e-7, atol=1e-9)


def test_log_linear_sigma_and_its_derivative():
    t = torch.linspace(0.0, 1.0, 101, dtype=torch.float64, requires_grad=True)
    sig = S.log_linear_sigma(t)
    (grad,) = torch.autograd.grad(sig.sum(), t)
    torch.testing.assert_close(grad, S.log_linear_dsigma(t.detach()), rtol=1e-12, atol=0)
    # mask probability 1 - exp(-sigma) = (1 - eps) t
    torch.testing.assert_close(-torch.expm1(-sig.detach()), (1 - 1e-3) * t.detach(), rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------------ grids
@pytest.mark.parametrize("n", [1, 2, 10, 40])
def test_karras_sigmas_invariants_and_diffusers_formula(n):
    smin, smax = 0.002, 80.0
    s = S.karras_sigmas(n, smin, smax)
    assert s.shape == (n + 1,)
    assert s[0].item() == pytest.approx(smax, rel=1e-12)
    assert s[-1].item() == 0.0
    if n > 1:
        assert s[-2].item() == pytest.approx(smin, rel=1e-12)
    assert (s[1:] < s[:-1]).all()
    assert S.karras_sigmas(n, smin, smax, append_zero=False).shape == (n,)
    # diffusers' Karras conversion uses the same ramp (rho = 7)
    ref = diffusers.EulerDiscreteScheduler()._convert_to_karras(torch.tensor([smax, smin], dtype=torch.float64), n)
    torch.testing.assert_close(s[:-1], torch.as_tensor(ref, dtype=torch.float64), rtol=1e-10, atol=0)


@pytest.mark.parametrize("kind", ["uniform", "quadratic", "karras", "log_snr"])
@pytest.mark.parametrize("proc", [DiscreteVP("linear", 1000), VPSDE(), VESDE()], ids=repr)
@pytest.mark.parametrize("t_end", [0.0, 1e-3])
def test_time_grid_invariants(kind, proc, t_end):
    steps = 12
    g = time_grid(steps, t_start=1.0, t_end=t_end, kind=kind, process=proc)
    assert g.shape == (steps + 1,)
    assert g[0].item() == 1.0 and g[-1].item() == t_end
    assert (g[1:] < g[:-1]).all()
    if kind == "karras" and t_end > 0:
        sig = proc.sigma(g)
        ref = S.karras_sigmas(steps + 1, proc.sigma(g[-1:]).item(), proc.sigma(g[:1]).item(), append_zero=False)
        torch.testing.assert_close(sig, ref, rtol=1e-6, atol=0)
    if kind == "karras" and t_end == 0 and not isinstance(proc, VESDE):  # VE keeps sigma_min at t = 0
        assert proc.sigma(g[-1:]).item() == 0.0
    if kind == "log_snr":  # equal log-SNR steps (the last one ends at t_end exactly, infinite at t = 0)
        lam = proc.log_snr(g[:-1] if t_end == 0 else g)
        dl = lam[1:] - lam[:-1]
        torch.testing.assert_close(dl, dl.mean().expand(dl.numel()), rtol=1e-5, atol=0)


def test_time_grid_errors_show_the_value():
    with pytest.raises(ValueError, match="0"):
        time_grid(0)
    with pytest.raises(ValueError, match="0.5"):
        time_grid(4, t_start=0.5, t_end=0.5)
    with pytest.raises(ValueError, match="karras"):
        time_grid(4, kind="karras")
    with pytest.raises(ValueError, match="cubic"):
        time_grid(4, kind="cubic", process=VPSDE())  # type: ignore[arg-type]


def test_resshift_etas_monotone_with_given_ends():
    for T, eta_1, eta_T, p in [(15, 0.04**2, 0.999, 0.3), (4, 1e-6, 0.99, 0.8), (1000, 1e-4, 0.5, 1.0)]:
        e = S.resshift_etas(T, p=p, eta_1=eta_1, eta_T=eta_T)
        assert e.shape == (T,)
        assert e[0].item() == pytest.approx(eta_1, rel=1e-12)
        assert e[-1].item() == pytest.approx(eta_T, rel=1e-12)
        assert (e[1:] > e[:-1]).all()
    # p = 1: sqrt(eta) is geometric in t
    e = S.resshift_etas(10, p=1.0, eta_1=1e-4, eta_T=0.9)
    r = (e[1:] / e[:-1]).sqrt()
    torch.testing.assert_close(r, r.mean().expand(9), rtol=1e-12, atol=0)
    assert math.isclose(r[0].item(), (0.9 / 1e-4) ** (1 / 18), rel_tol=1e-12)
    with pytest.raises(ValueError, match="1"):
        S.resshift_etas(1)


def test_whole_step_grid_stays_on_training_steps():
    from difflab.core.processes.gaussian import DiscreteVP, whole_step_grid

    g = whole_step_grid(50, 10)
    assert len(g) == 11 and g[0] == 1 and g[-1] == 0
    k = g * 50
    torch.testing.assert_close(k, k.round())  # whole steps only, never between k = 0 and 1
    assert torch.all(k[:-1] > k[1:])
    assert len(whole_step_grid(10, 30)) == 11  # never more steps than the chain has
    torch.testing.assert_close(
        DiscreteVP("cosine", 100).step_grid(3, start=3), torch.tensor([0.03, 0.02, 0.01, 0.0], dtype=torch.float64)
    )
    with pytest.raises(ValueError, match="start"):
        whole_step_grid(10, 2, start=11)


def test_processes_own_their_training_times():
    from difflab.core.processes import VPSDE, CorrelatedNoise, DiscreteVP, ResidualShift

    x0 = torch.zeros(5000, 3)
    for proc in (DiscreteVP("linear", 20), CorrelatedNoise(DiscreteVP("linear", 20), "gp", 2.0), ResidualShift(20)):
        t = proc.train_times(x0, torch.Generator().manual_seed(0))
        k = t * 20
        assert t.shape == (5000,) and t.dtype == x0.dtype and torch.equal(k, k.round())
        assert set(k.round().long().tolist()) == set(range(1, 21))  # every whole step 1..T, never 0
    g = torch.Generator().manual_seed(1)
    t = VPSDE().train_times(torch.zeros(4, 6, 2), g, time_dims=2, t_eps=0.1)
    u = torch.rand((4, 6), generator=torch.Generator().manual_seed(1))
    assert torch.equal(t, 0.1 + (1.0 - 0.1) * u)  # U(t_eps, t_max), one time per (example, token)
    cont = DiscreteVP("linear", 20, whole_steps=False).train_times(x0, torch.Generator().manual_seed(0), t_eps=0.05)
    assert cont.min() >= 0.05 and not torch.equal(cont * 20, (cont * 20).round())
    with pytest.raises(ValueError, match="time_dims"):
        DiscreteVP("linear", 20).train_times(torch.zeros(3), time_dims=2)
