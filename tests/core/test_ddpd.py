"""DDPD's plan-and-denoise sampler against exact planners and denoisers of a known distribution.

Oracles, on a dependent distribution over all V^L = 27 sequences of L = 3 tokens from V = 3:

* masked noise, the exact planner ``[x = MASK]`` and the exact ``p(x0^d | x_t)``: DDPD with one
  position per step reproduces the data distribution; DDPD with tau-leaping steps is MDLM's ancestral
  chain, so at two steps (where both are measurably off the data) its samples and ``sample_masked``'s
  have the same distribution;
* uniform noise, the exact planner ``p(z^d = noise | x_t)`` and denoiser ``p(x0^d | x_t, z^d = noise)``
  at ``m`` noise positions (``t = m / L``), enumerated over all (x0, z): the sampler's output
  distribution is the data distribution; drawing all positions at once (one step) is not.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.stats
import torch

from difflab.core.processes.discrete import MaskedDiffusion, UniformDiffusion
from difflab.core.samplers import sample_ddpd, sample_masked
from difflab.core.samplers.ddpd import ddpd_step_counts, select_positions
from difflab.core.samplers.select import run_discrete_sampler

V, L = 3, 3
MASK = V  # masked toy: tokens 0..2 plus [MASK] = 3
STATES = torch.cartesian_prod(*[torch.arange(V)] * L)  # (27, 3) in index order
_g = torch.Generator().manual_seed(3)
_w = -(torch.log(torch.rand(V**L, generator=_g, dtype=torch.float64)) ** 2)  # peaked, dependent tokens
P_DATA = _w / _w.sum()
N_SAMPLES = 30000
ALPHA = 1e-3


def index(x: torch.Tensor) -> torch.Tensor:
    """Row index in STATES of each sequence (B, L) of real tokens."""
    return (x * torch.tensor([V**2, V, 1])).sum(-1)


def gof_pvalue(samples: torch.Tensor, probs: torch.Tensor) -> float:
    counts = np.bincount(index(samples).numpy(), minlength=V**L)
    expected = probs.numpy() * counts.sum()
    return float(scipy.stats.chisquare(counts, expected).pvalue)


def two_sample_pvalue(a: torch.Tensor, b: torch.Tensor) -> float:
    ca = np.bincount(index(a).numpy(), minlength=V**L)
    cb = np.bincount(index(b).numpy(), minlength=V**L)
    keep = (ca + cb) > 0
    return float(scipy.stats.chi2_contingency(np.stack([ca[keep], cb[keep]]))[1])


# ------------------------------------------------------------------------------------ masked toy
def masked_denoiser(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Exact p(x0^d | x_t) of P_DATA under masking (logits over V + 1 tokens, [MASK] at -inf)."""
    compat = ((x_t[:, None, :] == STATES[None]) | (x_t[:, None, :] == MASK)).all(-1)  # (B, 27)
    post = P_DATA[None] * compat
    post = post / post.sum(-1, keepdim=True)
    probs = torch.einsum("bk,klv->blv", post, torch.nn.functional.one_hot(STATES, V + 1).double())
    return probs.clamp_min(1e-300).log()


def test_masked_one_position_per_step_reproduces_the_data():
    process = MaskedDiffusion(V + 1, MASK)
    x = process.prior_sample((N_SAMPLES, L))
    grid = torch.linspace(1.0, 0.0, L + 1, dtype=torch.float64)
    r = sample_ddpd(masked_denoiser, process, x, grid, generator=torch.Generator().manual_seed(0))
    assert r.nfe == L and bool((r.info["denoised"] == L).all()) and r.info["masks_left"] == 0
    assert gof_pvalue(r.sample, P_DATA) > ALPHA


def test_masked_tau_leaping_is_mdlm_ancestral_sampling_in_distribution():
    process = MaskedDiffusion(V + 1, MASK)
    grid = process.default_grid("ddpd", 2)
    x = process.prior_sample((N_SAMPLES, L))
    ddpd = sample_ddpd(
        masked_denoiser, process, x, grid, schedule="tau_leaping", generator=torch.Generator().manual_seed(1)
    ).sample
    mdlm = sample_masked(masked_denoiser, process, x, grid, cache=False, generator=torch.Generator().manual_seed(2))
    assert two_sample_pvalue(ddpd, mdlm.sample) > ALPHA
    # two steps draw dependent tokens independently: both chains are measurably off the data (the test's power)
    assert gof_pvalue(ddpd, P_DATA) < 1e-6 and gof_pvalue(mdlm.sample, P_DATA) < 1e-6


# ------------------------------------------------------------------------------------ uniform toy
def _uniform_tables() -> tuple[torch.Tensor, torch.Tensor]:
    """PLAN[m] (27, L): p(z^d = noise | x_t, m noise positions); DEN[m] (27, L, V): p(x0^d | x_t, z^d = noise, m).

    Weight of (x0, z) given x_t: P_DATA(x0) [x_t^d = x0^d off z] (V^-m on z, the same for all z of size m).
    """
    plan = torch.zeros(L + 1, V**L, L, dtype=torch.float64)
    den = torch.full((L + 1, V**L, L, V), 1.0 / V, dtype=torch.float64)
    for m in range(1, L + 1):
        for zs in itertools.combinations(range(L), m):
            z = torch.zeros(L, dtype=torch.bool)
            z[list(zs)] = True
            agree = ((STATES[:, None, :] == STATES[None, :, :]) | z).all(-1)  # (x_t, x0)
            w = agree * P_DATA[None]  # (27, 27)
            plan[m] += w.sum(-1, keepdim=True) * z
            onehot = torch.nn.functional.one_hot(STATES, V).double()  # (x0, L, V)
            den[m] += torch.einsum("ab,blv->alv", w, onehot) * z[None, :, None]
        total = plan[m].sum(-1, keepdim=True) / m  # sum over z of the weights
        plan[m] = plan[m] / total
        den[m] = den[m] - 1.0 / V
        norm = den[m].sum(-1, keepdim=True)
        den[m] = torch.where(norm > 0, den[m] / norm.clamp_min(1e-300), torch.full_like(den[m], 1.0 / V))
    return plan, den


PLAN, DEN = _uniform_tables()


def uniform_joint_model(x_t: torch.Tensor, t: torch.Tensor):
    """Exact (denoiser logits, planner logits) at m = round(t L) noise positions."""
    m = torch.round(t * L).long()
    i = index(x_t)
    p = PLAN[m, i].clamp(1e-12, 1 - 1e-12)
    return DEN[m, i].clamp_min(1e-300).log(), torch.log(p) - torch.log1p(-p)


def test_exact_planner_sums_to_the_noise_count():
    for m in range(1, L + 1):
        reachable = PLAN[m].sum(-1) > 0
        assert torch.allclose(PLAN[m].sum(-1)[reachable], torch.full_like(PLAN[m].sum(-1)[reachable], float(m)))


def test_uniform_noise_exact_planner_reproduces_the_data():
    process = UniformDiffusion(V, schedule="linear")
    g = torch.Generator().manual_seed(4)
    x = process.prior_sample((N_SAMPLES, L), generator=g)
    grid = torch.linspace(1.0, 0.0, L + 1, dtype=torch.float64)
    r = sample_ddpd(uniform_joint_model, process, x, grid, generator=g)
    assert r.nfe == L and bool((r.info["denoised"] == L).all())
    assert gof_pvalue(r.sample, P_DATA) > ALPHA
    # all positions at once from the same x_t (one step): the product of marginals, rejected
    one = sample_ddpd(uniform_joint_model, process, x, grid[[0, -1]], generator=g)
    assert gof_pvalue(one.sample, P_DATA) < 1e-6


def test_uniform_noise_separate_planner_network_counts_two_evaluations():
    process = UniformDiffusion(V, schedule="linear")
    x = process.prior_sample((8, L), generator=torch.Generator().manual_seed(5))
    grid = torch.linspace(1.0, 0.0, L + 1, dtype=torch.float64)
    r = sample_ddpd(
        lambda x_t, t: uniform_joint_model(x_t, t)[0],
        process,
        x,
        grid,
        planner=lambda x_t, t: uniform_joint_model(x_t, t)[1],
        generator=torch.Generator().manual_seed(6),
    )
    assert r.nfe == 2 * L
    with pytest.raises(ValueError, match="needs a planner"):
        sample_ddpd(lambda x_t, t: uniform_joint_model(x_t, t)[0], process, x, grid)


# ------------------------------------------------------------------------------------ pieces
def test_select_positions_draws_one_position_with_probability_proportional_to_p():
    p = torch.tensor([[0.1, 0.6, 0.0, 0.3]], dtype=torch.float64).expand(40000, -1)
    chosen = select_positions(p, torch.ones(40000, dtype=torch.long), torch.Generator().manual_seed(7))
    assert bool((chosen.sum(-1) == 1).all()) and not bool(chosen[:, 2].any())
    counts = chosen.sum(0).numpy()
    assert scipy.stats.chisquare(counts[[0, 1, 3]], 40000 * np.array([0.1, 0.6, 0.3])).pvalue > ALPHA


def test_step_counts_and_selection_respect_the_positive_weights():
    p = torch.tensor([[0.9, 0.8, 0.0, 0.9], [0.0, 0.0, 0.0, 0.0], [0.2, 0.1, 0.1, 0.1]], dtype=torch.float64)
    k = ddpd_step_counts(p, torch.tensor([1.0, 1.0, 0.1], dtype=torch.float64))
    assert k.tolist() == [3, 0, 1]
    chosen = select_positions(p, k, torch.Generator().manual_seed(8))
    assert chosen.sum(-1).tolist() == [3, 0, 1] and not bool(chosen[0, 2])


def test_by_name_on_an_mdlm_process_keeps_given_tokens_and_fills_every_mask():
    process = MaskedDiffusion(V + 1, MASK)
    x = process.prior_sample((64, L))
    keep = torch.zeros(64, L, dtype=torch.bool)
    keep[:, 0] = True
    x[:, 0] = 2
    seen = []
    r = run_discrete_sampler(
        "ddpd",
        masked_denoiser,
        process,
        x,
        steps=2,
        keep_mask=keep,
        generator=torch.Generator().manual_seed(9),
        callback=lambda d: seen.append(d["step"]),
    )
    assert r.info["sampler"] == "ddpd" and seen == [0, 1] and r.nfe == 2
    assert bool((r.sample[:, 0] == 2).all()) and bool((r.sample != MASK).all())
    assert bool((r.info["denoised"] == L - 1).all())


def test_bad_options_are_refused_with_the_value():
    process = MaskedDiffusion(V + 1, MASK)
    x = process.prior_sample((2, L))
    grid = process.default_grid("ddpd", 2)
    with pytest.raises(ValueError, match="'greedy'"):
        sample_ddpd(masked_denoiser, process, x, grid, schedule="greedy")
    with pytest.raises(ValueError, match="-1"):
        sample_ddpd(masked_denoiser, process, x, grid, planner_temperature=-1.0)
