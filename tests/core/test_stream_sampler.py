"""Streaming denoising (core/samplers/stream.py) against the ordinary samplers and an exact score.

Oracles:

* a network that treats tokens independently (a nonlinear function of each token and its own time):
  every emitted token equals core's ``sample_ddim`` run on that token alone over the same grid
  (exactly, float64), and with the same noise, ``sample_ddpm`` (the stream draws the noise of a
  whole buffer per call, so the test hands both the same per-token noise table);
* i.i.d. tokens from a 2-D Gaussian mixture with the exact (Bayes-optimal) denoiser: the emitted
  stream has the mixture's mode weights, per-mode means and spreads, and consecutive emitted tokens
  are uncorrelated. Tolerances as tests/core/test_exact_score_oracle.py (4000 tokens: weights 0.04,
  means 0.05, spread ratio 0.12) on a 100-step Karras grid, where plain DDPM / DDIM reach spread
  ratios 0.91-0.99 / 0.97-1.04 (with 40 steps DDPM stays at 0.8-0.9 for this narrow mixture, a
  property of the sampler, not of streaming).
"""

from __future__ import annotations

import pytest
import torch

from difflab.core.processes import VPSDE, DiscreteVP
from difflab.core.samplers import Denoiser, sample_ddim, sample_ddpm, time_grid
from difflab.core.samplers.stream import (
    StreamState,
    chain_ladder_grid,
    ladder_times,
    stream_start,
    stream_step,
)
from difflab.core.toy import GaussianMixture

DT = torch.float64
pytestmark = pytest.mark.usefixtures("one_thread")


def token_model(x, t):
    """An eps-network acting on each token alone: depends on the token and its own time only."""
    tt = t.to(x.dtype).reshape(*t.shape, *([1] * (x.ndim - t.ndim)))
    return torch.tanh(0.7 * x + 0.3) * (0.5 + tt) + 0.1 * x * tt**2


def stream_tokens(den, x_init, grid, chunk, calls, **kw):
    """Run start + ``calls`` steps; the emitted tokens in order, (B, calls * chunk, D), and the tails used."""
    state, _ = stream_start(den, x_init, grid, chunk=chunk, **kw)
    out, tails = [], []
    g = torch.Generator().manual_seed(7)
    for _ in range(calls):
        tail = torch.randn(x_init.shape[0], chunk, x_init.shape[-1], generator=g, dtype=DT)
        step = stream_step(den, state, tail=tail, **kw)
        assert step.nfe == 1
        out.append(step.emitted)
        tails.append(tail)
        state = step.state
    return torch.cat(out, 1), torch.cat(tails, 1)


# ------------------------------------------------------------------ ladder
def test_ladder_of_tedi_on_a_100_step_chain():
    grid = chain_ladder_grid(100, 15)
    k = (grid * 100).round().long().tolist()
    assert k == [100, 93, 86, 80, 73, 66, 60, 53, 46, 40, 33, 26, 20, 13, 6, 0]
    times = ladder_times(grid, chunk=2)
    assert times.shape == (30,)
    torch.testing.assert_close(times[:2], grid[[14, 14]])  # head chunk one step from clean
    torch.testing.assert_close(times[-2:], grid[[0, 0]])  # tail chunk pure noise
    assert StreamState(torch.zeros(1, 30, 1), grid, 2).levels == 15


# ------------------------------------------------------------------ oracle: ordinary samplers
@pytest.mark.parametrize("chunk", [1, 3])
def test_ddim_stream_equals_ddim_on_each_token(chunk):
    proc = DiscreteVP("cosine", 100)
    grid = chain_ladder_grid(100, 5)
    B, D, n = 2, 3, 5
    x_init = torch.randn(B, n * chunk, D, generator=torch.Generator().manual_seed(0), dtype=DT)
    den = Denoiser(token_model, proc, "eps", clip_x0=1.0)
    calls = 2 * n
    emitted, tails = stream_tokens(den, x_init, grid, chunk, calls)
    starts = torch.cat([x_init, tails], 1)  # token j's pure noise at grid[0]
    for j in range(calls * chunk):
        ref = sample_ddim(den, starts[:, j : j + 1], grid).sample
        torch.testing.assert_close(emitted[:, j : j + 1], ref, rtol=1e-12, atol=1e-12)


class TableNoise(DiscreteVP):
    """A chain whose ``noise_like`` hands out a prepared sequence (for the DDPM reference)."""

    def __init__(self, draws):
        super().__init__("cosine", 100)
        self.draws = list(draws)

    def noise_like(self, x, generator=None):
        return self.draws.pop(0).reshape(x.shape)


def test_ddpm_stream_equals_ddpm_on_each_token_with_the_same_noise():
    grid = chain_ladder_grid(100, 4)
    B, D, n = 2, 2, 4
    g = torch.Generator().manual_seed(3)
    x_init = torch.randn(B, n, D, generator=g, dtype=DT)
    proc = DiscreteVP("cosine", 100)
    den = Denoiser(token_model, proc, "eps")
    state, _ = stream_start(den, x_init, grid, eta=1.0, generator=g)
    calls = 3 * n
    # token n + c enters at call c and is denoised by calls c + 1 .. c + n; its k-th step uses z[token][k]
    z = torch.randn(n + calls, n, B, D, generator=g, dtype=DT)
    tails = torch.randn(calls, B, 1, D, generator=g, dtype=DT)
    emitted = {}
    for c in range(calls):
        first = c  # buffer slot i holds token c + i; slot i is on rung n-1-i, i.e. makes its step n - 1 - i
        noise = torch.stack([z[first + i, n - 1 - i] for i in range(n)], dim=1)
        step = stream_step(den, state, eta=1.0, noise=noise, tail=tails[c])
        emitted[first] = step.emitted
        state = step.state
    for c in range(1, calls - n + 1):  # tokens that entered at the tail: their whole chain ran in stream steps
        token = n - 1 + c
        start = tails[c - 1]
        ref_proc = TableNoise([z[token, k][:, None] for k in range(n)])
        ref = sample_ddpm(Denoiser(token_model, ref_proc, "eps"), start, grid).sample
        torch.testing.assert_close(emitted[token], ref, rtol=1e-12, atol=1e-12)


def test_stream_hands_the_network_per_token_times_and_one_nfe_per_call():
    proc = DiscreteVP("cosine", 100)
    grid = chain_ladder_grid(100, 4)
    seen = []

    def model(x, t):
        seen.append(t.clone())
        return torch.zeros_like(x)

    den = Denoiser(model, proc, "eps")
    x = torch.randn(3, 8, 2, dtype=DT)
    state, nfe = stream_start(den, x, grid, chunk=2)
    assert nfe == 3 and len(seen) == 3
    before = state.x.clone()
    out = stream_step(den, state, generator=torch.Generator().manual_seed(0))
    assert out.nfe == 1 and out.emitted.shape == (3, 2, 2) and out.state.x.shape == (3, 8, 2)
    torch.testing.assert_close(seen[-1], state.times.to(DT).expand(3, -1))
    torch.testing.assert_close(state.x, before)  # the old state is not changed
    assert out.state.steps_taken == 1
    _, nfe = stream_start(den, x, grid, chunk=2, init="renoise", generator=torch.Generator().manual_seed(0))
    assert nfe == 4


def test_bad_input_raises_with_the_value():
    proc = DiscreteVP("cosine", 100)
    den = Denoiser(lambda x, t: x, proc, "eps")
    with pytest.raises(ValueError, match="strictly descending"):
        stream_start(den, torch.zeros(1, 2, 1), torch.tensor([1.0, 1.0, 0.0]))
    with pytest.raises(ValueError, match=r"L = 3 levels x 1 tokens = 3"):
        stream_start(den, torch.zeros(1, 2, 1), chain_ladder_grid(100, 3))
    with pytest.raises(ValueError, match="'warm'"):
        stream_start(den, torch.zeros(1, 3, 1), chain_ladder_grid(100, 3), init="warm")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"levels must lie in \[1, 100\], got 0"):
        chain_ladder_grid(100, 0)


# ------------------------------------------------------------------ exact score: i.i.d. mixture tokens
@pytest.mark.parametrize(
    ("eta", "init"), [(1.0, "ladder"), (0.0, "ladder"), (1.0, "renoise")], ids=["ddpm", "ddim", "ddpm-renoise"]
)
def test_exact_score_stream_emits_the_token_distribution(eta, init):
    gm = GaussianMixture.three_modes_2d(DT)
    proc = VPSDE()
    n, B = 100, 1000
    grid = time_grid(n, kind="karras", process=proc).to(DT)  # the ordinary samplers reach the mixture here
    g = torch.Generator().manual_seed(0)
    den = Denoiser(gm.exact_model(proc, "eps"), proc, "eps")
    x = proc.prior_sample((B, n, 2), generator=g, dtype=DT)
    state, _ = stream_start(den, x, grid, eta=eta, init=init, generator=g)
    out = []
    for _ in range(4):
        step = stream_step(den, state, eta=eta, generator=g)
        out.append(step.emitted[:, 0])
        state = step.state
    samples = torch.cat(out)  # 4000 tokens
    w, mu, cov = gm.mode_statistics(samples)
    sd = cov.diagonal(dim1=-2, dim2=-1).sqrt()
    print(init, eta, w.tolist(), (mu - gm.means).abs().max().item(), (sd / gm.stds[:, None]).tolist())
    assert (w - gm.weights).abs().max() <= 0.04
    assert (mu - gm.means).abs().max() <= 0.05
    assert ((sd / gm.stds[:, None]) - 1).abs().max() <= 0.12
    # consecutive emitted tokens of one stream are independent (the tokens are i.i.d.)
    a, b = out[0] - out[0].mean(0), out[1] - out[1].mean(0)
    corr = (a * b).mean(0) / (a.std(0) * b.std(0))
    assert corr.abs().max() < 0.1
