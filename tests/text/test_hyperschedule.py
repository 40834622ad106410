"""Hyperschedules and epsilon-hybrid noise: oracles against MDLM and closed forms, and a learning test."""

import itertools
import math
from functools import partial

import pytest
import torch

from difflab.core.processes.discrete import MaskedDiffusion
from difflab.text.hyperschedules import EpsilonHybridNoise, SlidingWindowHyperschedule
from difflab.text.models import HyperscheduleLM, MaskedDiffusionLM


def _pair(**kw):
    """An MDLM and a hyperschedule model with the same weights."""
    size = dict(vocab_size=64, max_len=16, dim=32, depth=1, heads=2)
    torch.manual_seed(0)
    mdlm = MaskedDiffusionLM(**size)
    hyper = HyperscheduleLM(**size, **kw)
    hyper.load_state_dict(mdlm.state_dict())
    return mdlm, hyper


def test_shared_schedule_is_mdlm_loss_bound_and_sampler():
    mdlm, hyper = _pair(window=None, epsilon=0.0)
    x0 = torch.randint(3, 64, (6, 16))
    x0[:, 0] = 2
    am = torch.ones_like(x0)
    am[0, 12:] = 0
    batch = {"x0": x0, "attention_mask": am}
    for m in (mdlm, hyper):
        m.train()
    a = mdlm.training_loss(batch, torch.Generator().manual_seed(3))
    b = hyper.training_loss(batch, torch.Generator().manual_seed(3))
    assert torch.allclose(a, b, rtol=0, atol=1e-6)
    u = torch.rand(6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    sa = mdlm.nelbo_sum(x0, am, u, torch.Generator().manual_seed(4))
    sb = hyper.nelbo_sum(x0, am, u, torch.Generator().manual_seed(4))
    assert torch.allclose(sa, sb, rtol=0, atol=1e-6)
    for cache in (True, False):
        ra = mdlm.generate(5, 16, steps=12, cache=cache, generator=torch.Generator().manual_seed(7))
        rb = hyper.generate(5, 16, steps=12, cache=cache, generator=torch.Generator().manual_seed(7))
        assert torch.equal(ra.sample, rb.sample) and ra.nfe == rb.nfe


def test_hyperschedule_family_and_its_limits():
    t = torch.linspace(0, 1, 101, dtype=torch.float64)
    tau, rate = SlidingWindowHyperschedule(None).tau(t, 9)
    assert torch.equal(tau, t[:, None].expand(101, 9)) and bool((rate[1:] == 1).all())
    tau, rate = SlidingWindowHyperschedule(3.0).tau(t, 9)
    assert bool((tau[0] == 0).all()) and bool((tau[-1] == 1).all())
    assert bool((tau[1:] >= tau[:-1]).all())  # every position's level rises with t
    assert bool((tau[:, 1:] >= tau[:, :-1]).all())  # later positions are noisier
    inside = (tau > 0) & (tau < 1)
    assert int(inside[50].sum()) in (3, 4)  # the ramp covers about `window` positions
    # d tau / dt integrates to 1 for every position (the weights of a valid bound)
    fine = torch.linspace(0, 1, 200001, dtype=torch.float64)
    _, r = SlidingWindowHyperschedule(3.0).tau(fine, 9)
    assert torch.allclose(r.mean(0), torch.ones(9, dtype=torch.float64), atol=1e-3)
    # window -> 0: the step of an autoregressive order, position l revealed at t = 1 - l / (L - 1)
    tau, _ = SlidingWindowHyperschedule(1e-6).tau(t, 11)
    step = (t[:, None] > 1 - torch.arange(11, dtype=torch.float64) / 10).to(torch.float64)
    off_edges = (t[:, None] - (1 - torch.arange(11) / 10)).abs() > 1e-3
    assert torch.equal(tau[off_edges], step[off_edges])
    with pytest.raises(ValueError, match="window"):
        SlidingWindowHyperschedule(0.0)


def _exact_bound(joint: torch.Tensor, x: tuple, hs: SlidingWindowHyperschedule, n_t: int = 4001) -> float:
    """Per-position NELBO of ``x`` under the exact denoiser of ``joint`` (V^L table), by quadrature over t
    and enumeration of the masks, through :meth:`EpsilonHybridNoise.diffusion_terms` (linear schedule)."""
    vocab, length = joint.shape[0] + 1, joint.ndim
    noise = EpsilonHybridNoise(MaskedDiffusion(vocab, vocab - 1, "linear"), 0.0)
    x0 = torch.tensor([x])
    t = (torch.arange(n_t, dtype=torch.float64) + 0.5) / n_t  # midpoint rule
    total = 0.0
    for masked in itertools.product((False, True), repeat=length):
        m = torch.tensor([masked])
        z = torch.where(m, torch.full_like(x0, vocab - 1), x0)
        logits = torch.full((1, length, vocab), -math.inf, dtype=torch.float64)
        for pos in range(length):  # the exact p(x_pos | visible tokens)
            cond = joint
            for q in reversed(range(length)):
                cond = cond.sum(q, keepdim=True) if masked[q] and q != pos else cond
            idx = tuple(slice(None) if (masked[q] or q == pos) else x[q] for q in range(length))
            p = cond[idx].reshape(-1)
            logits[0, pos, : vocab - 1] = torch.log(p / p.sum())
        tau, rate = hs.tau(t, length)
        prob = torch.where(m, tau, 1 - tau).prod(-1)  # P(this mask pattern | t)
        per = noise.diffusion_terms(logits.expand(n_t, -1, -1), x0.expand(n_t, -1), z.expand(n_t, -1), tau, rate)
        total += float((prob * per.sum(-1)).mean())
    return total


@pytest.mark.parametrize("window", [None, 1.5, 0.3])
def test_exact_denoiser_bound_is_the_nll(window):
    """Closed form: for the exact denoiser the per-position NELBO is -log p(x), for any hyperschedule."""
    g = torch.Generator().manual_seed(0)
    joint = torch.rand(3, 3, 3, generator=g, dtype=torch.float64) ** 3
    joint = joint / joint.sum()
    hs = SlidingWindowHyperschedule(window)
    for x in ((0, 1, 2), (2, 2, 0), (1, 0, 1)):
        bound = _exact_bound(joint, x, hs)
        assert math.isfinite(bound) and bound > 0
        assert bound == pytest.approx(-math.log(float(joint[x])), rel=2e-3)


def _exact_model(joint: torch.Tensor):
    """``model(z, t) -> logits`` of the exact denoiser of ``joint`` ([MASK] = the last id), any batch."""
    vocab, length = joint.shape[0] + 1, joint.ndim

    def model(z, t):
        logits = torch.full(z.shape + (vocab,), -math.inf, dtype=torch.float64)
        for b in range(z.shape[0]):
            masked = [bool(v) for v in (z[b] == vocab - 1)]
            for pos in range(length):
                cond = joint
                for q in reversed(range(length)):
                    cond = cond.sum(q, keepdim=True) if masked[q] and q != pos else cond
                idx = tuple(slice(None) if (masked[q] or q == pos) else int(z[b, q]) for q in range(length))
                logits[b, pos, : vocab - 1] = torch.log(cond[idx].reshape(-1))
        return logits

    return model


@pytest.mark.parametrize("window", [None, 0.5])
def test_sampler_with_exact_denoiser_draws_the_data(window):
    """Each position on its own clock (per-position grid), the exact denoiser: samples follow the joint."""
    from difflab.text.adaptive_correction import sample_adaptive_correction

    g = torch.Generator().manual_seed(0)
    joint = torch.rand(3, 3, 3, generator=g, dtype=torch.float64) ** 3
    joint = joint / joint.sum()
    process = MaskedDiffusion(4, 3, "log_linear", 1e-3)
    grid = SlidingWindowHyperschedule(window).grid(process.default_grid("masked", 12), 3)
    table = {}
    model = _exact_model(joint)
    cached = lambda z, t: table.setdefault(tuple(z.flatten().tolist()), model(z, t))  # noqa: E731
    n = 4000
    x = process.prior_sample((n, 3))
    rows = [sample_adaptive_correction(cached, process, x[i : i + 1], grid, generator=g).sample for i in range(n)]
    seqs = torch.cat(rows)
    freq = torch.bincount(seqs[:, 0] * 9 + seqs[:, 1] * 3 + seqs[:, 2], minlength=27).double() / n
    assert float((freq - joint.flatten()).abs().sum()) / 2 < 0.05  # total variation (MC error about 0.02)


def test_epsilon_hybrid_marginals_match_closed_form():
    base = MaskedDiffusion(6, 5, "log_linear", 1e-3)
    noise = EpsilonHybridNoise(base, 0.2)
    x0 = torch.tensor([0, 3]).repeat(100000, 1)
    tau = torch.tensor([0.3, 0.7], dtype=torch.float64).expand(x0.shape)
    _, z = noise.sample(x0, tau, torch.Generator().manual_seed(0))
    want = noise.marginal_probs(x0[:1], tau[:1])[0]
    for pos in range(2):
        freq = torch.bincount(z[:, pos], minlength=6).double() / z.shape[0]
        assert torch.allclose(freq, want[pos], atol=4e-3)
    a = 1 - 0.999 * 0.3
    assert float(want[0, 0]) == pytest.approx(a * (0.8 + 0.2 / 5))
    assert float(want[0, 5]) == pytest.approx(1 - a)
    assert float(want[0].sum()) == pytest.approx(1.0)
    assert noise.initial_entropy() == pytest.approx(
        float(
            -(
                want.new_tensor([0.84, 0.04, 0.04, 0.04, 0.04]).log() * want.new_tensor([0.84, 0.04, 0.04, 0.04, 0.04])
            ).sum()
        )
    )


def test_hybrid_bound_finite_positive_and_sampler_corrects():
    _, hyper = _pair(window=4.0, epsilon=0.05)
    assert hyper.correction == pytest.approx(0.015)
    x0 = torch.randint(3, 64, (4, 16))
    x0[:, 0] = 2
    total, count = hyper.elbo_nll(x0, n_times=4, generator=torch.Generator().manual_seed(0))
    assert math.isfinite(total) and total > 0 and count == 4 * 15
    loss = hyper.training_loss({"x0": x0}, torch.Generator().manual_seed(0))
    loss.backward()
    assert all(p.grad is not None for p in hyper.network.parameters() if p.requires_grad)
    r = hyper.generate(4, 16, steps=16, correction=0.5, generator=torch.Generator().manual_seed(0))
    assert not (r.sample == hyper.mask_id).any() and (r.sample[:, 0] == 2).all()
    assert r.info["corrections"] > 0
    prefix = torch.tensor([10, 11, 12])
    r = hyper.generate(3, 16, steps=8, prefix=prefix, correction=1.0, generator=torch.Generator().manual_seed(1))
    assert (r.sample[:, 1:4] == prefix).all()


HYPER_STEPS = 1200
HYPER_RATIO = 0.88


@pytest.mark.slow
def test_hyperschedule_bound_beats_unigram(one_thread, test_seed, record_property):
    """Brief CPU training on the KJV (32-token blocks, BPE-1024, dim 64, 2 blocks, 1,200 steps at lr
    1e-3, as MDLM's learning test): the held-out NELBO bound (256 blocks, 8 draws) of a hyperschedule
    model with a 32-token window (absorbing noise) must beat the unigram model for every seed.

    Seed 0 (2-core CPU shared with other jobs), bound / unigram PPL at 1,200 steps by window: MDLM's
    shared schedule 0.420, window 32 0.506, 16 0.607, 8 0.670 (at 600 steps 0.903, 0.852, -, 0.897):
    at this budget a narrow window learns more slowly, since fewer positions carry loss per sample.
    Bound / unigram PPL per seed (``DIFFLAB_TEST_SEED``), one torch thread, 2-core CPU shared with
    other jobs, from ``python scripts/learning_spread.py
    tests/text/test_hyperschedule.py::test_hyperschedule_bound_beats_unigram --seeds 0-4 --threads 1
    --jobs 2`` (2026-12-07; the 2026-12-06 run gave 0.782 / 0.585 for seeds 1 / 2 and did not
    reproduce): 0.506 / 0.784 / 0.583 / 0.561 / 0.508 for seeds 0-4 (mean 0.588). Seed 1 is far
    behind the rest, so the threshold is 0.88, 0.10 above the worst seed. Two threads (seeds 0-1): 0.506
    / 0.783, the same to the third digit.
    Same table in the text README."""
    import lightning as L

    from difflab.core.lightning.train import train_briefly
    from difflab.text.data.lm import LMDataModule
    from difflab.text.metrics import perplexity_from_nll, unigram_perplexity

    dm = LMDataModule(corpus="kjv", vocab_size=1024, block_size=32, batch_size=32, seed=0)
    dm.setup()
    L.seed_everything(test_seed, verbose=False)
    model = HyperscheduleLM(
        vocab_size=1024,
        max_len=32,
        dim=64,
        depth=2,
        heads=4,
        window=32.0,
        epsilon=0.0,
        optimizer=partial(torch.optim.AdamW, lr=1e-3),
    )
    secs = train_briefly(model, dm, max_steps=HYPER_STEPS, seed=test_seed, gradient_clip_val=1.0)
    held = dm.val_set.blocks[:256]
    bound = perplexity_from_nll(*model.elbo_nll(held, n_times=8, generator=torch.Generator().manual_seed(test_seed)))
    uni = unigram_perplexity(dm.train_set.blocks[:, 1:], held[:, 1:], 1024, exclude=(0, 1))
    print(f"unigram {uni:.1f}  hyperschedule bound {bound:.1f}  ({secs:.0f} s, {HYPER_STEPS} steps)")
    record_property("bound_over_unigram", bound / uni)
    assert bound < HYPER_RATIO * uni
