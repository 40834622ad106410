"""Masked (MDLM) and GIDD ancestral samplers with exact denoisers of known distributions.

Oracles: the data distribution itself (masked sampler with the true p(x0 | x_t)); for GIDD with the
posterior-mean denoiser, the marginal of the sampler's reverse chain enumerated exactly over the same
grid (one token, so the chain is a V x V matrix product).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

import difflab.core.samplers.masked as masked_module
from difflab.core.processes.discrete import GIDD, MaskedDiffusion, UniformDiffusion
from difflab.core.samplers import SampleResult, gidd_self_correct, sample_categorical, sample_gidd, sample_masked

V = 5
MASK = 4

# a product distribution over L = 3 positions
P_POS = torch.tensor(
    [[0.5, 0.3, 0.15, 0.05], [0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.4, 0.1]],
    dtype=torch.float64,
)

# a distribution over a handful of length-3 sequences (tokens are dependent)
SEQS = torch.tensor([[0, 1, 2], [0, 1, 3], [2, 2, 0], [3, 0, 1], [1, 3, 3], [0, 2, 2]])
PROBS = torch.tensor([0.25, 0.2, 0.2, 0.15, 0.12, 0.08], dtype=torch.float64)
L_SEQ = 3
STATES = torch.cartesian_prod(*[torch.arange(V)] * L_SEQ)  # all V^L states, masks included


def product_model(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    logits = torch.full(x_t.shape + (V,), -1e9, dtype=torch.float64)
    logits[..., :MASK] = P_POS.log()
    return logits.float()


def sequence_model(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The true p(x0_i | x_t) of the handful-of-sequences distribution (does not depend on t). States that no
    sequence explains (reachable when dependent tokens unmask in the same step) get the data marginals."""
    compat = ((x_t[:, None, :] == SEQS[None]) | (x_t[:, None, :] == MASK)).all(-1)
    post = PROBS[None] * compat
    post = torch.where(compat.any(-1, keepdim=True), post, PROBS[None])
    post = post / post.sum(-1, keepdim=True)
    probs = torch.einsum("bk,klv->blv", post, torch.nn.functional.one_hot(SEQS, V).double())
    return probs.clamp_min(1e-30).log()


def seq_index(x: torch.Tensor) -> torch.Tensor:
    """Index of each row in SEQS, or -1 if it is not one of them."""
    eq = (x[:, None, :] == SEQS[None]).all(-1)
    return torch.where(eq.any(-1), eq.to(torch.int8).argmax(-1), torch.full((x.shape[0],), -1))


def chisquare_pvalue(samples: torch.Tensor, probs: np.ndarray) -> float:
    counts = np.bincount(samples.numpy(), minlength=len(probs))
    assert counts[probs == 0].sum() == 0
    keep = probs > 0
    return float(scipy.stats.chisquare(counts[keep], probs[keep] * counts.sum()).pvalue)


# ------------------------------------------------------------------------------ categorical draws
def test_sample_categorical_is_float64_inverse_cdf():
    g = torch.Generator().manual_seed(0)
    probs = torch.rand(2000, 7, generator=g)  # float32, unnormalised
    probs[:, 3] = 0.0
    got = sample_categorical(probs, torch.Generator().manual_seed(1))
    u = torch.rand(2000, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(1)).numpy()[:, 0]
    p = probs.double().numpy()
    cdf = np.cumsum(p, -1)
    expected = np.array([np.searchsorted(c, ui * c[-1], side="right") for c, ui in zip(cdf, u)])
    np.testing.assert_array_equal(got.numpy(), expected)
    assert not bool((got == 3).any())
    # frequencies
    p = torch.tensor([0.1, 0.0, 0.6, 0.3], dtype=torch.float64)
    draws = sample_categorical(p.expand(50000, 4), torch.Generator().manual_seed(2))
    assert chisquare_pvalue(draws, p.numpy()) > 1e-3


@pytest.mark.parametrize("which", ["masked", "gidd"])
def test_samplers_draw_categoricals_in_float64(monkeypatch, which):
    seen = []
    original = masked_module.sample_categorical

    def spy(probs, generator=None):
        seen.append(probs.dtype)
        return original(probs, generator)

    monkeypatch.setattr(masked_module, "sample_categorical", spy)
    g = torch.Generator().manual_seed(3)
    grid = torch.linspace(1, 1e-3, 6)  # float32 grid and float32 logits
    if which == "masked":
        sample_masked(product_model, MaskedDiffusion(V, MASK), torch.full((8, 3), MASK), grid, generator=g)
    else:
        sample_gidd(product_model, GIDD(V, MASK, 0.2), torch.full((8, 3), MASK), grid, generator=g)
    assert seen and all(d == torch.float64 for d in seen)


# ------------------------------------------------------------------------------ masked sampler
@pytest.mark.parametrize("schedule", ["log_linear", "cosine"])
def test_masked_sampler_product_distribution_is_exact_in_few_steps(schedule):
    n = 20000
    process = MaskedDiffusion(V, MASK, schedule)
    x = process.prior_sample((n, 3))
    res = sample_masked(product_model, process, x, torch.linspace(1, 0, 5), generator=torch.Generator().manual_seed(4))
    assert isinstance(res, SampleResult) and res.info["masks_left"] == 0
    joint = (res.sample[:, 0] * 16 + res.sample[:, 1] * 4 + res.sample[:, 2]).long()
    p = torch.einsum("a,b,c->abc", P_POS[0], P_POS[1], P_POS[2]).reshape(-1).numpy()
    assert chisquare_pvalue(joint, p) > 1e-3


def state_index(x: torch.Tensor) -> torch.Tensor:
    return (x * V ** torch.arange(L_SEQ - 1, -1, -1)).sum(-1)


def masked_chain_distribution(process, model, grid: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
    """Exact distribution of the masked sampler's output: the joint reverse chain over all V^L states, where one
    step moves every token independently by its posterior given the whole state (grid ends at 0: no final step)."""
    dist = torch.zeros(len(STATES), dtype=torch.float64)
    dist[state_index(start)] = 1.0
    probs = torch.softmax(model(STATES, grid[0].expand(len(STATES))).double(), -1)
    for t, s in zip(grid[:-1], grid[1:]):
        post = process.posterior_probs(STATES, probs, s.expand(len(STATES)), t.expand(len(STATES)))  # (S, L, V)
        trans = torch.ones(len(STATES), len(STATES), dtype=torch.float64)
        for i in range(L_SEQ):
            trans = trans * post[:, i, STATES[:, i]]
        dist = dist @ trans
    return dist


def test_enumerated_masked_chain_converges_to_the_data():
    """Few steps unmask dependent tokens together (bias); the bias falls as 1/N with N steps."""
    process = MaskedDiffusion(V, MASK)
    start = torch.full((L_SEQ,), MASK)
    data = torch.zeros(len(STATES), dtype=torch.float64)
    data[state_index(SEQS)] = PROBS

    def tv(steps):
        grid = torch.linspace(1, 0, steps + 1, dtype=torch.float64)
        dist = masked_chain_distribution(process, sequence_model, grid, start)
        assert float(dist.sum()) == pytest.approx(1.0, abs=1e-12)
        return 0.5 * float((dist - data).abs().sum())

    few, mid, many = tv(4), tv(50), tv(200)  # measured: 0.224, 0.0186, 0.0047
    assert few > 0.1
    assert many < 6e-3
    assert 3.5 < mid / many < 4.5


@pytest.mark.parametrize("keep", [None, (False, True, False), (True, False, False)], ids=["free", "infill", "prefix"])
def test_masked_sampler_matches_the_enumerated_chain(keep):
    n, steps = 20000, 4
    process = MaskedDiffusion(V, MASK)
    grid = torch.linspace(1, 0, steps + 1, dtype=torch.float64)
    x = SEQS[[0]].expand(n, L_SEQ).clone()  # non-kept tokens are reset to [MASK]
    keep_mask = None if keep is None else torch.tensor(keep).expand(n, L_SEQ)
    start = SEQS[0] if keep is None else torch.where(torch.tensor(keep), SEQS[0], MASK)
    if keep is None:
        start = torch.full((L_SEQ,), MASK)
    seen = []
    res = sample_masked(
        sequence_model,
        process,
        x,
        grid,
        generator=torch.Generator().manual_seed(5),
        keep_mask=keep_mask,
        callback=lambda d: seen.append(d["x"]),
    )
    assert len(seen) == steps and res.info["masks_left"] == 0
    if keep is not None:
        kept = torch.tensor(keep)
        for xs in seen + [res.sample]:
            assert bool((xs[:, kept] == SEQS[0, kept]).all())  # kept positions never change
    expected = masked_chain_distribution(process, sequence_model, grid, start).numpy()
    assert chisquare_pvalue(state_index(res.sample), expected) > 1e-3


def test_caching_saves_evaluations_and_keeps_samples():
    process = MaskedDiffusion(V, MASK)
    grid = torch.linspace(1, 1e-5, 201, dtype=torch.float64)
    x = process.prior_sample((3, L_SEQ))
    a = sample_masked(sequence_model, process, x, grid, generator=torch.Generator().manual_seed(6), cache=True)
    b = sample_masked(sequence_model, process, x, grid, generator=torch.Generator().manual_seed(6), cache=False)
    assert torch.equal(a.sample, b.sample)
    assert b.nfe >= 200
    assert a.nfe <= 3 * L_SEQ + 2  # at most one evaluation per step that changed a token, plus the final step
    assert a.nfe + a.info["cache_hits"] == 200
    # every other model call counted: the model is called exactly nfe times
    calls = []

    def counting(x_t, t):
        calls.append(1)
        return sequence_model(x_t, t)

    c = sample_masked(counting, process, x, grid, generator=torch.Generator().manual_seed(6))
    assert len(calls) == c.nfe == a.nfe


def test_per_token_grid():
    """Per-element grid rows (1, L): position j runs its own schedule; with a product distribution each
    position is still exact."""
    n, steps = 20000, 6
    process = MaskedDiffusion(V, MASK)
    base = torch.linspace(1, 0, steps + 1, dtype=torch.float64)
    grid = torch.stack([base, base**2, base.sqrt()], -1)[:, None, :]  # (steps + 1, 1, L)
    res = sample_masked(
        product_model, process, process.prior_sample((n, 3)), grid, generator=torch.Generator().manual_seed(9)
    )
    for j in range(3):
        assert chisquare_pvalue(res.sample[:, j], P_POS[j].numpy()) > 1e-3


def test_final_step_options():
    process = MaskedDiffusion(V, MASK, "linear")
    grid = torch.tensor([1.0, 0.5])  # stops half-way: about half the tokens are still masked
    x = process.prior_sample((200, 3))
    none = sample_masked(
        product_model, process, x, grid, generator=torch.Generator().manual_seed(10), final_step="none"
    )
    assert none.info["masks_left"] > 100 and none.nfe == 1
    arg = sample_masked(product_model, process, x, grid, generator=torch.Generator().manual_seed(10))
    assert arg.info["masks_left"] == 0 and arg.nfe == 2  # the step changed tokens: a fresh evaluation fills the rest
    filled = none.sample == MASK
    assert bool((arg.sample[filled] == P_POS.argmax(-1).expand(200, 3)[filled]).all())
    with pytest.raises(ValueError, match="final_step"):
        sample_masked(product_model, process, x, grid, final_step="greedy")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ GIDD sampler
def posterior_mean_model(process, p_pos: torch.Tensor):
    """x_hat_i(z, t) = p(x_i | z_i) for independent positions with marginals p_pos (L, real tokens)."""

    def model(x_t, t):
        tt = t.to(torch.float64)
        tt = tt[:, None].expand(x_t.shape) if tt.ndim == 1 else tt
        n_real = p_pos.shape[1]
        lik = process.marginal_probs(
            torch.arange(n_real).expand(*x_t.shape, n_real), tt[..., None].expand(*x_t.shape, n_real)
        )  # (B, L, x, z)
        lik = lik.gather(-1, x_t[..., None, None].expand(*x_t.shape, n_real, 1))[..., 0]  # (B, L, x)
        post = p_pos[None] * lik
        post = post / post.sum(-1, keepdim=True)
        out = torch.full(x_t.shape + (V,), -1e30, dtype=torch.float64)
        out[..., :n_real] = post.clamp_min(1e-300).log()
        return out

    return model


def reverse_chain_marginal(process, p: torch.Tensor, grid: torch.Tensor, start: torch.Tensor) -> np.ndarray:
    """Exact marginal of the one-token reverse chain over the grid (V x V posterior matrices)."""
    model = posterior_mean_model(process, p[None])
    dist = start.double()
    for t, s in zip(grid[:-1], grid[1:]):
        states = torch.arange(V)[:, None]
        z = states.clone()
        if getattr(process, "mask_id", None) is not None and not process.absorbing:
            z = z.clamp(max=MASK - 1)  # the excluded id is unreachable; any real token will do for its row
        x_hat = torch.softmax(model(z, t.expand(V)), -1)
        dist = dist @ process.posterior_probs(states[:, 0], x_hat[:, 0], s.expand(V), t.expand(V))
    return dist.numpy()


@pytest.mark.parametrize(
    "process",
    [
        GIDD(V, MASK, p_u=0.0),
        GIDD(V, MASK, p_u=0.2),
        GIDD(V, MASK, p_u=0.5, gamma=0.5),
        UniformDiffusion(V, "linear", mask_id=MASK),
    ],
    ids=["gidd-0", "gidd-0.2", "gidd-0.5-g0.5", "uniform"],
)
def test_gidd_sampler_matches_the_enumerated_reverse_chain(process):
    n, steps = 6000, 12
    grid = torch.linspace(1, 0, steps + 1, dtype=torch.float64)
    p = P_POS[1]
    if process.absorbing:
        x, start = process.prior_sample((n, 1)), torch.nn.functional.one_hot(torch.tensor(MASK), V)
    else:
        g0 = torch.Generator().manual_seed(11)
        x, start = process.prior_sample((n, 1), g0), process.uniform()
    res = sample_gidd(
        posterior_mean_model(process, p[None]), process, x, grid, generator=torch.Generator().manual_seed(12)
    )
    assert res.nfe == steps and res.info["masks_left"] == 0
    expected = reverse_chain_marginal(process, p, grid, start)
    assert expected[MASK] < 1e-12
    assert chisquare_pvalue(res.sample[:, 0], expected) > 1e-3
    if isinstance(process, GIDD) and process.p_u == 0.0:  # masked case: the data distribution itself
        np.testing.assert_allclose(expected[:MASK], p.numpy(), atol=1e-12)


def gidd_sequence_model(process: GIDD, keep: torch.Tensor | None = None):
    """Exact p(x0_i | z_t) for the handful-of-sequences distribution under GIDD noise; positions in ``keep`` are
    known to be clean (the exact denoiser of the conditional problem)."""

    def model(z, t):
        tt = t.to(torch.float64)[:, None, None].expand(z.shape[0], len(SEQS), z.shape[1])
        q = process.marginal_probs(SEQS[None].expand(z.shape[0], -1, -1), tt)  # (B, K, L, V)
        lik = q.gather(-1, z[:, None, :, None].expand(-1, len(SEQS), -1, 1))[..., 0]  # (B, K, L)
        if keep is not None:
            exact = (z[:, None, :] == SEQS[None]).to(lik.dtype)
            lik = torch.where(keep.expand(z.shape)[:, None, :], exact, lik)
        post = PROBS[None] * lik.prod(-1)
        post = post / post.sum(-1, keepdim=True)
        probs = torch.einsum("bk,klv->blv", post, torch.nn.functional.one_hot(SEQS, V).double())
        return probs.clamp_min(1e-300).log()

    return model


def test_self_correction_repairs_a_corrupted_token():
    process = GIDD(V, MASK, p_u=0.2)
    model = gidd_sequence_model(process)
    clean = SEQS[[2, 3, 4]]
    corrupted = clean.clone()
    corrupted[0, 0] = 1  # [1, 2, 0]: one token away from [2, 2, 0] only
    corrupted[1, 2] = 0  # [3, 0, 0]: one token away from [3, 0, 1] only
    res = gidd_self_correct(model, process, corrupted, generator=torch.Generator().manual_seed(13), steps=128)
    assert torch.equal(res.sample, clean)
    assert res.info["correction_steps"].tolist() == [1, 1, 0]
    assert res.nfe == 2  # one correcting iteration, one that proposes no change
    assert res.info["self_accuracy"].tolist() == [1.0, 1.0, 1.0]
    # a kept position is never corrected
    keep = torch.zeros(3, L_SEQ, dtype=torch.bool)
    keep[0, 0] = True
    kept = gidd_self_correct(
        model, process, corrupted, generator=torch.Generator().manual_seed(13), steps=128, keep_mask=keep
    )
    assert torch.equal(kept.sample[0], corrupted[0])
    assert torch.equal(kept.sample[1:], clean[1:])


def test_self_correction_patience_and_budget():
    process = GIDD(V, MASK, p_u=0.2)

    def flat(z, t):  # every real token equally likely: proposals keep changing, accuracy does not improve
        return torch.zeros(z.shape + (V,))

    x = torch.zeros(4, 6, dtype=torch.long)
    res = gidd_self_correct(flat, process, x, generator=torch.Generator().manual_seed(14), steps=100, patience=3)
    assert res.nfe < 100
    budget = gidd_self_correct(flat, process, x, generator=torch.Generator().manual_seed(14), steps=2, patience=50)
    assert budget.nfe == 2 and budget.info["correction_steps"].max() <= 2


def test_sample_gidd_with_self_correction_and_infilling():
    process = GIDD(V, MASK, p_u=0.2)
    n = 64
    x = SEQS[[3]].expand(n, L_SEQ).clone()
    keep = torch.tensor([True, False, True])  # x_0 = 3 and x_2 = 1 given: only [3, 0, 1] fits
    model = gidd_sequence_model(process, keep)
    events = []
    res = sample_gidd(
        model,
        process,
        x,
        torch.linspace(1 - 1e-4, 1e-4, 33, dtype=torch.float64),
        generator=torch.Generator().manual_seed(15),
        keep_mask=keep,
        self_correction_steps=16,
        callback=lambda d: events.append(d["step"]),
    )
    assert bool((res.sample[:, 0] == 3).all()) and bool((res.sample[:, 2] == 1).all())
    assert bool((seq_index(res.sample) == 3).all())
    assert res.info["masks_left"] == 0
    assert res.nfe >= 33 and res.info["correction_steps"].shape == (n,)
    assert events[:32] == list(range(32))


def test_bad_sampler_arguments():
    process = GIDD(V, MASK)
    x = process.prior_sample((2, 3))
    with pytest.raises(ValueError, match="t0"):
        sample_gidd(product_model, process, x, torch.linspace(1, 0, 3), self_correction_steps=2, t0=0.0)
    with pytest.raises(ValueError, match="integer token"):
        sample_masked(product_model, MaskedDiffusion(V, MASK), x.float(), torch.linspace(1, 0, 3))
    with pytest.raises(ValueError, match="grid"):
        sample_masked(product_model, MaskedDiffusion(V, MASK), x, torch.tensor([1.0]))
