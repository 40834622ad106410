"""Feature caching (``difflab.core.accelerate.feature_cache``): the oracle cases and a learned model.

* threshold 0 computes every block, so the sampler's result is the plain run's, bit for bit;
* a block whose residual does not depend on its input or the time is reused exactly at any threshold;
* a profiled schedule on a residual network fitted to the 2-D mixture reuses blocks and stays close
  to the uncached run (mixture error within a bound of the uncached model's);
* installing and removing the cache leaves the network as it was; passes inside one denoiser call
  (guidance's two passes) keep their own cached features.
"""

import pytest
import torch
from torch import nn

from difflab.core.accelerate import FeatureCache, cache_blocks, profile_and_plan, sample_cached
from difflab.core.lightning.toy import SinusoidalTimeEmbedding
from difflab.core.processes import VPSDE
from difflab.core.samplers import Denoiser, sample_ddim, time_grid
from difflab.core.toy import GaussianMixture, fit_eps_network


class Block(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.film = nn.Linear(hidden, 2 * hidden)
        self.mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, h, c):
        scale, shift = self.film(c).chunk(2, dim=-1)
        return h + self.mlp(self.norm(h) * (1 + scale) + shift)


class ConstantBlock(nn.Module):
    """Adds a learned constant: its residual depends on neither its input nor the time."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.randn(hidden) * 0.1)

    def forward(self, h, c):
        return h + self.bias


class ResNet(nn.Module):
    def __init__(self, hidden: int = 64, depth: int = 3, constant: bool = False) -> None:
        super().__init__()
        self.embed = nn.Sequential(SinusoidalTimeEmbedding(32), nn.Linear(32, hidden), nn.SiLU())
        self.inp = nn.Linear(2, hidden)
        self.blocks = nn.ModuleList(Block(hidden) for _ in range(depth))
        self.extra = nn.ModuleList([ConstantBlock(hidden)]) if constant else nn.ModuleList()
        self.out = nn.Linear(hidden, 2)

    def forward(self, x, t):
        c = self.embed(t.expand(x.shape[0]) if t.ndim == 0 else t)
        h = self.inp(x) + c
        for block in [*self.blocks, *self.extra]:
            h = block(h, c)
        return self.out(h)


def _run(net, x, grid, cache=None):
    den = Denoiser(net, VPSDE())
    with torch.no_grad():
        return sample_ddim(den, x, grid) if cache is None else sample_cached(sample_ddim, den, cache, x, grid)


def test_candidates_are_the_module_list_children_and_a_network_may_name_its_own():
    net = ResNet(depth=2, constant=True)
    assert list(cache_blocks(net)) == ["blocks.0", "blocks.1", "extra.0"]
    net.cache_blocks = lambda: {"b1": net.blocks[1]}
    assert list(FeatureCache(net).blocks) == ["b1"]
    with pytest.raises(ValueError, match="no cache candidates"):
        FeatureCache(nn.Linear(2, 2))


def test_threshold_zero_reproduces_the_plain_sampler_exactly():
    torch.manual_seed(0)
    net, x, grid = ResNet().eval(), torch.randn(64, 2), time_grid(20, t_start=1.0, t_end=1e-3)
    cache = FeatureCache(net)
    schedule = profile_and_plan(sample_ddim, Denoiser(net, VPSDE()), cache, x, grid, threshold=0.0)
    assert schedule.all() and schedule.shape == (20, 3)
    res = _run(net, x, grid, cache)
    assert torch.equal(res.sample, _run(net, x, grid).sample)
    assert res.info["blocks_reused"] == 0 and res.info["blocks_computed"] == 60


def test_a_block_with_a_constant_residual_is_reused_exactly():
    torch.manual_seed(1)
    net, x = ResNet(constant=True).double().eval(), torch.randn(32, 2, dtype=torch.float64)
    grid = time_grid(20, t_start=1.0, t_end=1e-3, dtype=torch.float64)
    cache = FeatureCache(net, {"extra.0": net.extra[0]})
    schedule = profile_and_plan(sample_ddim, Denoiser(net, VPSDE()), cache, x, grid, threshold=0.5, max_reuse=100)
    assert (cache.changes[1:] > 0).all()  # its output moves with its input; its residual does not
    assert not schedule[1:].all()
    res = _run(net, x, grid, cache)
    assert res.info["blocks_reused"] > 0
    torch.testing.assert_close(res.sample, _run(net, x, grid).sample, rtol=0, atol=1e-12)


def test_profiled_reuse_on_a_fitted_network_stays_close_to_the_uncached_run():
    g = torch.Generator().manual_seed(0)
    gm, proc = GaussianMixture.three_modes_2d(torch.float32), VPSDE()
    torch.manual_seed(0)
    net = fit_eps_network(ResNet(), gm, proc, steps=400, generator=g)
    grid = time_grid(50, t_start=1.0, t_end=1e-3)
    x = torch.randn(2000, 2, generator=g)
    cache = FeatureCache(net)
    schedule = profile_and_plan(sample_ddim, Denoiser(net, proc), cache, x[:256], grid, threshold=0.05, max_reuse=3)
    share = float((~schedule).float().mean())
    assert 0.1 < share < 0.6, share  # measured 0.24
    plain, cached = _run(net, x, grid), _run(net, x, grid, cache)
    assert cached.info["blocks_reused"] == int((~schedule).sum()) and cached.nfe == plain.nfe
    assert cached.info["reuse_fraction"] == pytest.approx(share)
    moved = (cached.sample - plain.sample).norm(dim=-1).mean()
    assert moved < 0.08, moved  # measured 0.039; the data's modes are ~2 apart with spreads 0.3-0.5
    assert gm.mode_error(cached.sample) < gm.mode_error(plain.sample) + 0.1  # measured 0.41 vs 0.47


def test_install_and_remove_leave_the_network_as_it_was():
    torch.manual_seed(2)
    net, x, t = ResNet().eval(), torch.randn(8, 2), torch.full((8,), 0.5)
    before = net(x, t)
    with FeatureCache(net) as cache:
        assert all("forward" in b.__dict__ for b in cache.blocks.values())
    assert all("forward" not in b.__dict__ for b in net.blocks)
    assert torch.equal(net(x, t), before)


def test_passes_inside_one_call_keep_their_own_features():
    """A guidance-like model makes two network passes per call on different inputs; with every block
    reused after call 0, each pass must get its own cached residual back, not the other's."""
    torch.manual_seed(3)
    net = ResNet(constant=True).eval()
    cache = FeatureCache(net, {"extra.0": net.extra[0]})
    model = lambda x, t: 0.5 * (net(x, t) + net(-x, t))
    cache.changes = torch.zeros(3, 1)
    cache.plan(threshold=1.0, max_reuse=10)
    x, t = torch.randn(4, 2), torch.full((4,), 0.3)
    with cache, torch.no_grad():
        den = cache.denoiser(Denoiser(model, VPSDE()))
        outs = [den.raw(x, t) for _ in range(3)]
    assert cache.reused == 4 and cache.computed == 2
    for out in outs:
        torch.testing.assert_close(out, model(x, t))


def test_a_block_with_a_skip_output_reuses_its_residual_and_its_skip():
    """WaveNet / CSDI blocks return ``(residual stream, skip)``: a reuse hands on ``in + cached
    residual`` and the cached skip, which is exact for a block whose outputs do not depend on its input."""

    class SkipBlock(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bias = nn.Parameter(torch.tensor([0.5, -1.0]))

        def forward(self, h):
            return h + self.bias, 2 * self.bias.expand_as(h)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.ModuleList([SkipBlock()])

        def forward(self, x, t):
            h, skip = self.layers[0](x * (1 + t[:, None]))
            return h + skip

    net = Net().double()
    cache = FeatureCache(net)
    cache.changes = torch.zeros(3, 1, dtype=torch.float64)
    cache.plan(threshold=1.0)
    x, t = torch.randn(5, 2, dtype=torch.float64), torch.full((5,), 0.2, dtype=torch.float64)
    with cache, torch.no_grad():
        den = cache.denoiser(Denoiser(net, VPSDE()))
        outs = [den.raw(x + k, t) for k in range(3)]
    assert cache.reused == 2
    for k, out in enumerate(outs):
        torch.testing.assert_close(out, net(x + k, t), rtol=0, atol=1e-12)
