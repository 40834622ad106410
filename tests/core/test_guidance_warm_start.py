"""Classifier-free / adaptive guidance and warm starts, against closed forms of Gaussian data.

Guidance oracle: for a conditional ``N(mu_c, std^2 I)`` and an unconditional ``N(mu_u, std^2 I)`` the
guided score ``w s_c + (1 - w) s_u`` is at every time the score of the noised
``N(w mu_c + (1 - w) mu_u, std^2 I)``, so guided sampling must produce exactly that Gaussian.
"""

from __future__ import annotations

import pytest
import torch

from difflab.core.guidance import AdaptiveGuidance, ClassifierFreeGuidance, classifier_free_guidance
from difflab.core.processes import VPSDE
from difflab.core.samplers import Denoiser, sample_ddim, time_grid, truncated_grid, warm_start
from difflab.core.toy import GaussianMixture

try:
    from difflab.core.processes.ou import OUVESDE
except ImportError:  # pragma: no cover
    OUVESDE = None

DT = torch.float64
pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------------------------- CFG
def test_cfg_combination_and_ho_salimans_form():
    cond = lambda x, t: 2 * x + 1  # noqa: E731
    uncond = lambda x, t: -x  # noqa: E731
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0), dtype=DT)
    t = torch.full((4,), 0.5, dtype=DT)
    w = 3.0
    out = classifier_free_guidance(cond, uncond, w)(x, t)
    torch.testing.assert_close(out, uncond(x, t) + w * (cond(x, t) - uncond(x, t)))
    wp = w - 1  # Ho & Salimans: (1 + w') eps_c - w' eps_u
    torch.testing.assert_close(out, (1 + wp) * cond(x, t) - wp * uncond(x, t))
    torch.testing.assert_close(classifier_free_guidance(cond, uncond, 1.0)(x, t), cond(x, t))


def test_cfg_nfe_accounting_separate_and_joint():
    proc = VPSDE()
    cond = lambda x, t: 0.5 * x  # noqa: E731
    uncond = lambda x, t: 0.1 * x  # noqa: E731
    calls = []

    def joint(x2, t2):
        calls.append(x2.shape[0])
        b = x2.shape[0] // 2
        return torch.cat([cond(x2[:b], t2[:b]), uncond(x2[b:], t2[b:])])

    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(0), dtype=DT)
    grid = time_grid(10, t_end=0.0)
    sep = Denoiser(classifier_free_guidance(cond, uncond, 2.5), proc)
    res_sep = sample_ddim(sep, x, grid)
    guided = classifier_free_guidance(None, None, 2.5, joint_model=joint)
    res_joint = sample_ddim(Denoiser(guided, proc), x, grid)
    assert res_sep.nfe == 20  # two network calls per step
    assert res_joint.nfe == 10  # one call on the doubled batch counts as one batched NFE
    assert calls == [12] * 10 and guided.evaluations == 20
    torch.testing.assert_close(res_sep.sample, res_joint.sample)
    with pytest.raises(ValueError, match="joint_model"):
        ClassifierFreeGuidance(cond, None, 2.0)


@pytest.mark.parametrize("w", [0.0, 1.0, 3.0])
def test_cfg_samples_the_tilted_gaussian(w):
    proc = VPSDE()
    std = 0.3
    mu_c, mu_u = torch.tensor([1.0, -0.5], dtype=DT), torch.tensor([-0.5, 0.25], dtype=DT)
    cond = GaussianMixture(mu_c[None], std)
    uncond = GaussianMixture(mu_u[None], std)
    den = Denoiser(classifier_free_guidance(cond.exact_model(proc), uncond.exact_model(proc), w), proc)
    x = proc.prior_sample((4000, 2), generator=torch.Generator().manual_seed(0), dtype=DT)
    out = sample_ddim(den, x, time_grid(100, t_end=0.0, kind="log_snr", process=proc)).sample
    target = w * mu_c + (1 - w) * mu_u
    print(f"\nw={w}: mean {out.mean(0).tolist()} (target {target.tolist()}), std {out.std(0).tolist()} (target {std})")
    torch.testing.assert_close(out.mean(0), target, atol=0.02, rtol=0)
    torch.testing.assert_close(out.std(0), torch.full((2,), std, dtype=DT), atol=0.015, rtol=0)


# ---------------------------------------------------------------------------------------- adaptive guidance
def _class_conditional():
    """Unconditional: a 3-component mixture. Conditional (class 0): its first component."""
    gm = GaussianMixture.three_modes_2d(DT)
    return GaussianMixture(gm.means[:1], gm.stds[:1]), gm


def test_adaptive_guidance_drops_the_unconditional_branch_after_agreement():
    gc, gm = _class_conditional()
    proc = VPSDE()
    # 64 samples of 32 points each: the cosine similarity is taken over a sample's 64 elements
    x = proc.prior_sample((64, 32, 2), generator=torch.Generator().manual_seed(0), dtype=DT)
    grid = time_grid(50, t_end=0.0)
    w = 4.0
    full = sample_ddim(Denoiser(classifier_free_guidance(gc.exact_model(proc), gm.exact_model(proc), w), proc), x, grid)
    ag = AdaptiveGuidance(gc.exact_model(proc), gm.exact_model(proc), w, threshold=0.999, warmup=10)
    res = sample_ddim(Denoiser(ag, proc), x, grid)
    k = ag.switched_at
    dev = float((res.sample - full.sample).abs().max())
    print(
        f"\nCFG NFE {full.nfe}, adaptive guidance NFE {res.nfe}, switched after call {k}; "
        f"min cosine similarity per guided call: {[round(s, 4) for s in ag.similarities]}; max deviation {dev:.2e}"
    )
    assert k is not None and 10 <= k < 49
    assert res.nfe == 2 * (k + 1) + (50 - k - 1) < full.nfe
    assert ag.evaluations == res.nfe  # separate calls: batched NFE = evaluations
    assert all(s <= 0.999 for s in ag.similarities[10:-1]) and ag.similarities[-1] > 0.999
    assert dev < 0.02  # the remaining steps barely need guidance
    # reset starts a new run that guides again
    ag.reset()
    assert ag.guiding and ag.calls == 0


def test_adaptive_guidance_joint_model_counts_one_batched_call():
    gc, gm = _class_conditional()
    proc = VPSDE()
    mc, mu = gc.exact_model(proc), gm.exact_model(proc)

    def joint(x2, t2):
        b = x2.shape[0] // 2
        return torch.cat([mc(x2[:b], t2[:b]), mu(x2[b:], t2[b:])])

    x = proc.prior_sample((64, 32, 2), generator=torch.Generator().manual_seed(0), dtype=DT)
    grid = time_grid(50, t_end=0.0)
    sep = AdaptiveGuidance(mc, mu, 4.0, threshold=0.999, warmup=10)
    jnt = AdaptiveGuidance(mc, None, 4.0, threshold=0.999, warmup=10, joint_model=joint)
    r_sep = sample_ddim(Denoiser(sep, proc), x, grid)
    r_jnt = sample_ddim(Denoiser(jnt, proc), x, grid)
    assert sep.switched_at == jnt.switched_at
    assert r_jnt.nfe == 50  # every call is one batched network call
    assert jnt.evaluations == r_sep.nfe  # but only half the batch work after the switch
    torch.testing.assert_close(r_sep.sample, r_jnt.sample)


# ---------------------------------------------------------------------------------------- warm start
def test_warm_start_marginal_statistics():
    proc = VPSDE()
    n = 20000
    x0 = torch.tensor([0.7, -1.2, 2.0], dtype=DT).expand(n, 3)
    t = 0.4
    xt = warm_start(proc, x0, t, generator=torch.Generator().manual_seed(0))
    a, _, s = (float(c) for c in proc.coefficients(torch.tensor(t, dtype=DT)))
    torch.testing.assert_close(xt.mean(0), a * x0[0], atol=4 * s / n**0.5, rtol=0)
    torch.testing.assert_close(xt.std(0), torch.full((3,), s, dtype=DT), atol=0.02 * s, rtol=0)
    noise = torch.randn(n, 3, generator=torch.Generator().manual_seed(1), dtype=DT)
    torch.testing.assert_close(warm_start(proc, x0, t, noise=noise), a * x0 + s * noise)
    same = warm_start(proc, x0, t, renoise=False)
    assert torch.equal(same, x0) and same is not x0
    with pytest.raises(ValueError, match="t_start"):
        warm_start(proc, x0, 1.5)


@pytest.mark.skipif(OUVESDE is None, reason="OUVESDE not available")
def test_warm_start_conditional_mean():
    proc = OUVESDE()
    n = 20000
    x0 = torch.tensor([0.7, -1.2], dtype=DT).expand(n, 2)
    y = torch.tensor([0.1, 0.4], dtype=DT).expand(n, 2)
    t = 0.5
    xt = warm_start(proc, x0, t, y=y, generator=torch.Generator().manual_seed(0))
    a, b, s = (float(c) for c in proc.coefficients(torch.tensor(t, dtype=DT)))
    torch.testing.assert_close(xt.mean(0), a * x0[0] + b * y[0], atol=4 * s / n**0.5, rtol=0)
    torch.testing.assert_close(xt.std(0), torch.full((2,), s, dtype=DT), atol=0.02 * s, rtol=0)


def test_truncated_grid():
    grid = torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0], dtype=DT)
    torch.testing.assert_close(truncated_grid(grid, 0.6), torch.tensor([0.6, 0.5, 0.25, 0.0], dtype=DT))
    torch.testing.assert_close(truncated_grid(grid, 0.5), torch.tensor([0.5, 0.25, 0.0], dtype=DT))
    torch.testing.assert_close(truncated_grid(grid, 1.0), grid)
    with pytest.raises(ValueError, match="t_start"):
        truncated_grid(grid, 0.0)


def test_sdedit_from_exact_marginal_recovers_the_mixture():
    """Noising exact data to t = 0.5 and running DDIM on the rest of the grid gives the data back in law."""
    gm = GaussianMixture(torch.tensor([[1.5, 0.0], [-1.5, 0.0]], dtype=DT), 0.2, torch.tensor([0.7, 0.3]))
    proc = VPSDE()
    g = torch.Generator().manual_seed(0)
    x0 = gm.sample(4000, g)
    xt = warm_start(proc, x0, 0.5, generator=g)
    grid = truncated_grid(time_grid(200, t_end=0.0), 0.5)
    res = sample_ddim(Denoiser(gm.exact_model(proc), proc), xt, grid)
    w, m, c = gm.mode_statistics(res.sample)
    sd = torch.stack([c[k].diagonal().sqrt() for k in range(2)])
    print(f"\nSDEdit from t=0.5: NFE {res.nfe}, weights {w.tolist()}, means {m.tolist()}, stds {sd.tolist()}")
    assert res.nfe == 100
    torch.testing.assert_close(w, gm.weights, atol=0.03, rtol=0)
    torch.testing.assert_close(m, gm.means, atol=0.03, rtol=0)
    torch.testing.assert_close(sd, torch.full_like(sd, 0.2), atol=0.02, rtol=0)


@pytest.mark.parametrize("rescale", [0.0, 0.3, 0.7, 1.0])
def test_guidance_rescale_matches_diffusers(rescale):
    guider_utils = pytest.importorskip("diffusers.guiders.guider_utils")

    g = torch.Generator().manual_seed(0)
    w_c, w_u = torch.randn(4, 4, generator=g), torch.randn(4, 4, generator=g)
    cond_net, uncond_net = (lambda x, t: x @ w_c), (lambda x, t: 2 * x @ w_u)
    x, t = torch.randn(3, 2, 4, generator=g), torch.full((3,), 0.5)
    guided = classifier_free_guidance(cond_net, uncond_net, 5.0, rescale=rescale)(x, t)
    cfg = uncond_net(x, t) + 5.0 * (cond_net(x, t) - uncond_net(x, t))
    expected = guider_utils.rescale_noise_cfg(cfg, cond_net(x, t), guidance_rescale=rescale)
    torch.testing.assert_close(guided, expected, rtol=1e-6, atol=1e-6)
    assert rescale == 0 or not torch.allclose(guided, cfg)
