"""Continuous training losses against hand-computed closed forms, Min-SNR weights against the
formulas of Hang et al. 2023, and the DSM minimiser against the true score of a Gaussian."""

from __future__ import annotations

import math

import pytest
import torch

from difflab.core.losses import denoising_score_matching, flow_matching_loss, regression_loss, snr_weight
from difflab.core.parameterization import from_x0_eps
from difflab.core.processes import VESDE, VPSDE, FlowMatching

F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_dsm_sigma2_and_likelihood_by_hand():
    score = torch.tensor([[1.0, 2.0], [0.5, -1.0]], dtype=F64)
    eps = torch.tensor([[0.2, -0.4], [1.0, 0.0]], dtype=F64)
    std = torch.tensor([0.5, 2.0], dtype=F64)
    g = torch.tensor([3.0, 0.1], dtype=F64)
    # sample 0: (0.5*1 + 0.2)^2 = 0.49, (0.5*2 - 0.4)^2 = 0.36 -> 0.425
    # sample 1: (2*0.5 + 1)^2 = 4, (2*(-1) + 0)^2 = 4 -> 4
    per = denoising_score_matching(score, eps, std, reduction="none")
    assert torch.allclose(per, torch.tensor([0.425, 4.0], dtype=F64))
    assert denoising_score_matching(score, eps, std).item() == pytest.approx((0.425 + 4.0) / 2)
    # likelihood: g^2 (s + z/std)^2; sample 0: 9 * ((1 + 0.4)^2 + (2 - 0.8)^2)/2 = 9 * (1.96 + 1.44)/2 = 15.3
    # sample 1: 0.01 * ((0.5 + 0.5)^2 + (-1)^2)/2 = 0.01
    per = denoising_score_matching(score, eps, std, "likelihood", g, reduction="none")
    assert torch.allclose(per, torch.tensor([15.3, 0.01], dtype=F64))
    with pytest.raises(ValueError, match="g"):
        denoising_score_matching(score, eps, std, "likelihood")
    with pytest.raises(ValueError, match="weighting"):
        denoising_score_matching(score, eps, std, "snr")  # type: ignore[arg-type]


@pytest.mark.parametrize("weighting", ["sigma2", "likelihood"])
def test_dsm_is_minimised_by_the_true_score_of_a_gaussian(weighting):
    """x0 ~ N(mu, tau^2), x_t = a x0 + s z: among scores c * S_true the DSM loss is smallest at c = 1.

    The loss is quadratic in c, so three evaluations give its minimiser exactly (for these samples)."""
    proc = VPSDE()
    n = 400000
    mu, tau = 1.5, 0.7
    t = torch.full((n,), 0.35, dtype=F64)
    x0 = mu + tau * torch.randn(n, 1, generator=_gen(1), dtype=F64)
    xt, z = proc.sample_marginal(x0, t, generator=_gen(2))
    a, _, s = proc.coefficients(t[:1])
    true_score = -(xt - a * mu) / (a**2 * tau**2 + s**2)  # score of the marginal N(a mu, a^2 tau^2 + s^2)
    g = proc.diffusion(t)
    loss = lambda c: denoising_score_matching(c * true_score, z, s.expand(n), weighting, g).item()  # noqa: E731
    l0, l1, l2 = loss(0.0), loss(1.0), loss(2.0)
    A, B = (l2 - 2 * l1 + l0) / 2, (4 * l1 - 3 * l0 - l2) / 2  # l(c) = A c^2 + B c + l0
    c_star = -B / (2 * A)
    assert c_star == pytest.approx(1.0, abs=0.01)
    # and a wrong Gaussian (scaled variance) scores worse than the true one
    wrong = -(xt - a * mu) / (1.3 * (a**2 * tau**2 + s**2))
    assert denoising_score_matching(wrong, z, s.expand(n), weighting, g) > l1


def _vp_snr(t: torch.Tensor, b0=0.1, b1=20.0) -> torch.Tensor:
    log_a = -0.25 * t**2 * (b1 - b0) - 0.5 * t * b0
    a2 = torch.exp(2 * log_a)
    return a2 / (1 - a2)


def test_min_snr_weights_equal_the_formula():
    proc = VPSDE()
    t = torch.tensor([0.02, 0.1, 0.3, 0.6, 0.95], dtype=F64)
    snr = _vp_snr(t)
    gamma = 5.0
    m = torch.minimum(snr, torch.full_like(snr, gamma))
    # Hang et al. 2023: x0 -> min(SNR, g); eps -> min(SNR, g)/SNR; v -> min(SNR, g)/(SNR + 1)
    assert torch.allclose(snr_weight(proc, t, "x0", "min_snr", gamma), m)
    assert torch.allclose(snr_weight(proc, t, "eps", "min_snr", gamma), m / snr)
    assert torch.allclose(snr_weight(proc, t, "v", "min_snr", gamma), m / (snr + 1))
    # truncated SNR (Salimans & Ho 2022): x0-equivalent max(SNR, 1)
    tr = torch.maximum(snr, torch.ones_like(snr))
    assert torch.allclose(snr_weight(proc, t, "x0", "truncated_snr"), tr)
    assert torch.allclose(snr_weight(proc, t, "eps", "truncated_snr"), tr / snr)
    assert torch.allclose(snr_weight(proc, t, "v", "truncated_snr"), tr / (snr + 1))
    # snr: eps-MSE unweighted
    assert torch.allclose(snr_weight(proc, t, "eps", "snr"), torch.ones_like(t))
    assert torch.allclose(snr_weight(proc, t, "x0", "snr"), snr)
    for kind in ("eps", "x0", "v"):
        assert torch.equal(snr_weight(proc, t, kind, "none"), torch.ones_like(t))
        assert torch.equal(snr_weight(proc, t, kind, "sigma2"), snr_weight(proc, t, kind, "snr"))


def test_weights_are_finite_at_the_ends_of_a_flow():
    fm = FlowMatching()
    t = torch.tensor([0.0, 0.5, 1.0], dtype=F64)  # SNR = inf, 1, 0
    assert torch.allclose(snr_weight(fm, t, "eps", "min_snr", 5.0), torch.tensor([0.0, 1.0, 1.0], dtype=F64))
    # v: min(a^2, g s^2) / (a^2 + s^2)^2 -> 0 at t = 0, 0.25/0.25 = 1 at t = 0.5, 0 at t = 1
    assert torch.allclose(snr_weight(fm, t, "v", "min_snr", 5.0), torch.tensor([0.0, 1.0, 0.0], dtype=F64))
    assert torch.allclose(snr_weight(fm, t, "eps", "truncated_snr"), torch.tensor([1.0, 1.0, math.inf], dtype=F64))


@pytest.mark.parametrize("proc", [VPSDE(), VESDE(), FlowMatching()], ids=["vp", "ve", "flow"])
@pytest.mark.parametrize("weighting", ["snr", "min_snr", "truncated_snr"])
def test_weighted_losses_agree_across_kinds(proc, weighting):
    """The weights are x0-equivalent: one (x0_hat, eps_hat) pair read as x0, eps or v gives one loss."""
    g = _gen(3)
    B = 6
    t = torch.rand(B, generator=g, dtype=F64) * 0.9 + 0.05
    x0, eps = torch.randn(B, 3, 4, generator=g, dtype=F64), torch.randn(B, 3, 4, generator=g, dtype=F64)
    xt, _ = proc.sample_marginal(x0, t, noise=eps)
    a, _, s = (c[:, None, None] for c in proc.coefficients(t))
    x0_hat = x0 + 0.1 * torch.randn(B, 3, 4, generator=g, dtype=F64)
    eps_hat = (xt - a * x0_hat) / s  # consistent with the same x_t
    losses = [
        regression_loss(
            from_x0_eps(proc, kind, x0_hat, eps_hat, t),
            from_x0_eps(proc, kind, x0, eps, t),
            kind,
            proc,
            t,
            weighting,
            reduction="none",
        )
        for kind in ("x0", "eps", "v")
    ]
    assert torch.allclose(losses[0], losses[1], rtol=1e-10) and torch.allclose(losses[0], losses[2], rtol=1e-10)


def test_sigma2_regression_is_score_sde_dsm():
    proc = VPSDE()
    g = _gen(4)
    t = torch.rand(5, generator=g, dtype=F64) * 0.9 + 0.05
    eps, eps_hat = torch.randn(5, 7, generator=g, dtype=F64), torch.randn(5, 7, generator=g, dtype=F64)
    s = proc.coefficients(t)[2]
    dsm = denoising_score_matching(-eps_hat / s[:, None], eps, s, reduction="none")
    reg = regression_loss(eps_hat, eps, "eps", proc, t, "sigma2", reduction="none")
    assert torch.allclose(dsm, reg)


def test_regression_loss_by_hand_and_per_element_time():
    proc = VPSDE()
    pred = torch.tensor([[1.0, 3.0], [0.0, 0.0]], dtype=F64)
    target = torch.tensor([[0.0, 1.0], [2.0, 0.0]], dtype=F64)
    t = torch.tensor([0.2, 0.7], dtype=F64)
    per = regression_loss(pred, target, "x0", proc, t, "none", reduction="none")
    assert torch.allclose(per, torch.tensor([2.5, 2.0], dtype=F64))
    per = regression_loss(pred, target, "x0", proc, t, "min_snr", gamma=5.0, reduction="none")
    w = torch.minimum(_vp_snr(t), torch.tensor(5.0, dtype=F64))
    assert torch.allclose(per, w * torch.tensor([2.5, 2.0], dtype=F64))
    # per-token time (B, L) on (B, L, D): each token's error is weighted by its own weight
    tt = torch.tensor([[0.1, 0.5, 0.9]], dtype=F64)
    p3, q3 = torch.ones(1, 3, 2, dtype=F64), torch.zeros(1, 3, 2, dtype=F64)
    got = regression_loss(p3, q3, "eps", proc, tt, "min_snr", reduction="none")
    snr = _vp_snr(tt[0])
    assert got.item() == pytest.approx((torch.clamp(5.0 / snr, max=1.0)).mean().item())
    with pytest.raises(ValueError, match="kind"):
        regression_loss(pred, target, "score", proc, t)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="weighting"):
        regression_loss(pred, target, "eps", proc, t, "p2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reduction"):
        regression_loss(pred, target, "eps", proc, t, reduction="sum")  # type: ignore[arg-type]


def test_flow_matching_loss_by_hand():
    x0 = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=F64)
    x1 = torch.tensor([[0.0, 1.0], [1.0, 1.0]], dtype=F64)
    v = torch.tensor([[-1.0, 1.0], [0.0, 0.0]], dtype=F64)
    # target x1 - x0 = [[-1, 1], [1, -1]] -> errors 0 and (1 + 1)/2 = 1
    assert torch.allclose(flow_matching_loss(v, x0, x1, reduction="none"), torch.tensor([0.0, 1.0], dtype=F64))
    assert flow_matching_loss(v, x0, x1).item() == pytest.approx(0.5)
    # sigma_min: target (1 - sigma_min) x1 - x0, the process's velocity
    fm = FlowMatching(sigma_min=0.2)
    u = from_x0_eps(fm, "velocity", x0, x1, torch.tensor([0.3, 0.6], dtype=F64))
    assert flow_matching_loss(u, x0, x1, sigma_min=0.2).item() == pytest.approx(0.0, abs=1e-15)


def test_time_weighted_mse_groups_by_time_and_weights():
    from difflab.core.losses import time_weighted_mse

    g = _gen(4)
    pred, target = torch.randn(3, 4, 5, generator=g), torch.randn(3, 4, 5, generator=g)
    t = torch.rand(3, generator=g)
    assert torch.allclose(time_weighted_mse(pred, target, t), (pred - target).pow(2).mean())
    w = torch.tensor([1.0, 2.0, 0.5])
    per = (pred - target).pow(2).mean((1, 2))
    assert torch.allclose(time_weighted_mse(pred, target, t, w), (w * per).mean())
    tl = torch.rand(3, 4, generator=g)  # one time per token: weights per (example, token)
    wl = torch.rand(3, 4, generator=g)
    assert torch.allclose(time_weighted_mse(pred, target, tl, wl), (wl * (pred - target).pow(2).mean(2)).mean())
    with pytest.raises(ValueError, match="network output has shape"):
        time_weighted_mse(pred, target[:, :2], t)
