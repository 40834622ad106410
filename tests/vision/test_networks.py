"""The time-conditioned U-Net."""

import pytest
import torch

from difflab.vision.networks import UNET_PRESETS, UNet


def test_shapes_any_size_and_zero_init():
    net = UNet(channels=8, channel_mults=(1, 2, 2), num_res_blocks=1, attention_levels=(2,))
    for h, w in [(16, 16), (13, 21), (1, 5)]:
        out = net(torch.randn(2, 6, h, w), torch.rand(2))
        assert out.shape == (2, 3, h, w)
        assert torch.equal(out, torch.zeros_like(out))  # zero-initialised head


def test_time_conditioning_matters():
    net = UNet(channels=8, channel_mults=(1, 2))
    torch.nn.init.normal_(net.out.weight, std=0.1)
    for m in net.modules():
        if hasattr(m, "proj") and isinstance(m.proj, torch.nn.Linear):
            torch.nn.init.normal_(m.proj.weight, std=0.1)
    x = torch.randn(1, 6, 8, 8)
    assert not torch.allclose(net(x, torch.tensor([0.1])), net(x, torch.tensor([0.9])))


def test_presets_and_errors():
    small = UNet.from_preset("small")
    n_small = sum(p.numel() for p in small.parameters())
    assert 0.5e6 < n_small < 2e6
    assert UNET_PRESETS["large"]["channels"] > UNET_PRESETS["small"]["channels"]
    with pytest.raises(ValueError, match="unknown UNet preset"):
        UNet.from_preset("huge")
    with pytest.raises(ValueError, match="attention_levels"):
        UNet(channel_mults=(1, 2), attention_levels=(3,))
    with pytest.raises(ValueError, match=r"expects \(B, 6, H, W\)"):
        small(torch.randn(1, 3, 8, 8), torch.rand(1))


def test_without_mid_attention_the_network_is_convolutional():
    net = UNet(6, 3, channels=8, channel_mults=(1, 2), mid_attention=False)
    assert not any(type(m).__name__ == "Attention" for m in net.modules())
    assert net(torch.randn(2, 6, 33, 47), torch.rand(2)).shape == (2, 3, 33, 47)
    with_attention = UNet(6, 3, channels=8, channel_mults=(1, 2))
    assert sum(p.numel() for p in with_attention.parameters()) > sum(p.numel() for p in net.parameters())
