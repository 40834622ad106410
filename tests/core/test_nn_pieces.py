"""Time embeddings and FiLM / adaptive LayerNorm: closed-form values, shapes, per-element time."""

import math

import pytest
import torch

from difflab.core.nn import AdaLayerNorm, FiLM, GaussianFourierEmbedding, SinusoidalTimeEmbedding


def test_sinusoidal_matches_formula_float64():
    dim, max_period, scale = 10, 10000.0, 1000.0
    emb = SinusoidalTimeEmbedding(dim, max_period=max_period, scale=scale)
    t = torch.tensor([0.0, 0.0123, 0.5, 1.0], dtype=torch.float64)
    out = emb(t)
    half = dim // 2
    for b, tb in enumerate(t.tolist()):
        for i in range(half):
            w = max_period ** (-i / half)
            assert out[b, i].item() == pytest.approx(math.cos(scale * tb * w), abs=1e-12)
            assert out[b, half + i].item() == pytest.approx(math.sin(scale * tb * w), abs=1e-12)
    assert out.dtype == torch.float64
    # t = 0: cos = 1, sin = 0
    assert torch.equal(out[0, :half], torch.ones(half, dtype=torch.float64))
    assert torch.equal(out[0, half:], torch.zeros(half, dtype=torch.float64))


def test_sinusoidal_odd_dim_pads_zero_and_frequency_range():
    emb = SinusoidalTimeEmbedding(7, max_period=100.0, scale=1.0)
    assert emb(torch.rand(3)).shape == (3, 7)
    assert torch.all(emb(torch.rand(3))[:, -1] == 0)
    f = emb.frequencies()
    assert f[0].item() == 1.0 and f[-1].item() == pytest.approx(100.0 ** (-2 / 3))


@pytest.mark.parametrize("shape", [(5,), (4, 6), ()])
def test_embeddings_per_element_time(shape):
    t = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    for emb in (SinusoidalTimeEmbedding(16), GaussianFourierEmbedding(16, generator=torch.Generator().manual_seed(1))):
        out = emb(t)
        assert out.shape == tuple(shape) + (16,)
        # each element embeds independently: equals the embedding of the flattened times
        flat = emb(t.reshape(-1)).reshape(out.shape)
        assert torch.equal(out, flat)


def test_gaussian_fourier_formula_and_determinism():
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    e1 = GaussianFourierEmbedding(8, scale=16.0, generator=g1)
    e2 = GaussianFourierEmbedding(8, scale=16.0, generator=g2)
    assert torch.equal(e1.W, e2.W)
    ref_w = torch.randn(4, generator=torch.Generator().manual_seed(3)) * 16.0
    assert torch.allclose(e1.W, ref_w)
    t = torch.tensor([0.25, 0.7], dtype=torch.float64)
    out = e1(t)
    w = e1.W.double()
    expect = torch.cat([torch.sin(2 * math.pi * t[:, None] * w), torch.cos(2 * math.pi * t[:, None] * w)], -1)
    assert torch.allclose(out, expect, atol=1e-12)
    # the frequencies are saved with the module and never trained
    assert "W" in e1.state_dict() and not list(e1.parameters())


def test_embedding_argument_errors():
    with pytest.raises(ValueError, match="dim"):
        SinusoidalTimeEmbedding(1)
    with pytest.raises(ValueError, match="even"):
        GaussianFourierEmbedding(5)


def test_film_identity_at_init_and_formula():
    film = FiLM(cond_dim=3, channels=4)
    x = torch.randn(2, 4, 5, 5)
    c = torch.randn(2, 3)
    assert torch.equal(film(x, c), x)
    with torch.no_grad():
        film.proj.weight.normal_()
        film.proj.bias.normal_()
    scale, shift = film.proj(c).chunk(2, -1)
    expect = x * (1 + scale[:, :, None, None]) + shift[:, :, None, None]
    assert torch.allclose(film(x, c), expect)


def test_film_channels_last_per_token_condition():
    film = FiLM(cond_dim=3, channels=4, channel_axis=-1)
    with torch.no_grad():
        film.proj.weight.normal_()
    x = torch.randn(2, 6, 4)
    c_tok = torch.randn(2, 6, 3)
    out = film(x, c_tok)
    scale, shift = film.proj(c_tok).chunk(2, -1)
    assert torch.allclose(out, x * (1 + scale) + shift)
    # one condition per example broadcasts over tokens
    c = torch.randn(2, 3)
    scale, shift = film.proj(c).chunk(2, -1)
    assert torch.allclose(film(x, c), x * (1 + scale[:, None]) + shift[:, None])
    with pytest.raises(ValueError, match="channels"):
        film(torch.randn(2, 6, 5), c)
    with pytest.raises(ValueError, match="prefix"):
        film(x, torch.randn(3, 3))


def test_ada_layer_norm():
    ada = AdaLayerNorm(8, cond_dim=4)
    x = torch.randn(3, 5, 8)
    c = torch.randn(3, 4)
    assert torch.allclose(ada(x, c), torch.nn.functional.layer_norm(x, (8,), eps=1e-6))
    with torch.no_grad():
        ada.film.proj.weight.normal_()
    scale, shift = ada.film.proj(c).chunk(2, -1)
    ln = torch.nn.functional.layer_norm(x, (8,), eps=1e-6)
    assert torch.allclose(ada(x, c), ln * (1 + scale[:, None]) + shift[:, None], atol=1e-6)


class _Res(torch.nn.Module):
    """A residual-block stand-in: a 1x1 conv plus the time embedding's first channel."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(c_in, c_out, 1)

    def forward(self, x, temb):
        return self.conv(x) + temb[:, :1, None, None]


def test_unet_skeleton_levels_skips_and_shapes():
    from difflab.core.nn import UNetLevels, run_unet

    levels = UNetLevels(4, (1, 2, 3), 2, _Res, torch.nn.Identity, (1,))
    down, c, skips = levels.encoder(lambda c: [torch.nn.AvgPool2d(2)])
    # 2 res entries per level, a downsample between levels; skips: stem + one per entry
    assert len(down) == 3 * 2 + 2 and c == 12 and skips == [4, 4, 4, 4, 8, 8, 8, 12, 12]
    assert [len(e) for e in down] == [1, 1, 1, 2, 2, 1, 1, 1]  # attention after each level-1 block
    up, c_out = levels.decoder(lambda c: [torch.nn.Upsample(scale_factor=2)], c, skips)
    assert not skips and c_out == 4 and len(up) == 3 * 3 + 2
    mid = torch.nn.ModuleList([_Res(c, c)])
    h = torch.randn(2, 4, 8, 12)
    out = run_unet(h, down, mid, up, torch.zeros(2, 3), _Res)
    assert out.shape == (2, 4, 8, 12)
