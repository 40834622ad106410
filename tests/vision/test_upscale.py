"""Tiled upscaling: covers the image, blends without seams, equals the untiled path away from tile borders."""

from __future__ import annotations

import pytest
import torch

from difflab.vision.data.degradations import bicubic_upsample
from difflab.vision.upscale import tile_starts, upscale_tiled


def nearest(lr, _index, s=2):
    return lr.repeat_interleave(s, -2).repeat_interleave(s, -1)


def test_tile_starts_cover():
    assert tile_starts(10, 16, 4) == [0]
    st = tile_starts(100, 32, 8)
    assert st[0] == 0 and st[-1] == 68 and all(b - a <= 24 for a, b in zip(st, st[1:]))
    with pytest.raises(ValueError, match="overlap"):
        tile_starts(100, 32, 32)


def test_pointwise_model_tiled_equals_untiled_exactly():
    lr = torch.rand(1, 3, 45, 70)
    full = nearest(lr, 0)
    tiled = upscale_tiled(nearest, lr, 2, tile=16, overlap=4, tile_batch=3)
    assert torch.allclose(tiled, full, atol=1e-6)


def test_bicubic_tiled_equals_untiled_outside_blend_region():
    """Bicubic upsampling sees 2 LR pixels around each output: tiles differ from the whole image only
    within 2 LR pixels of their borders, which lie inside the blend (overlap) region."""
    torch.manual_seed(0)
    lr = torch.rand(1, 3, 40, 52)
    s, tile, ov = 4, 16, 6
    full = bicubic_upsample(lr, s)
    tiled = upscale_tiled(lambda t, i: bicubic_upsample(t, s), lr, s, tile=tile, overlap=ov)
    mask = torch.ones(40 * s, 52 * s, dtype=torch.bool)
    for starts, length, axis in ((tile_starts(40, tile, ov), 40, 0), (tile_starts(52, tile, ov), 52, 1)):
        for a in starts[1:]:  # the overlap band around every interior tile border
            lo, hi = a * s, min((a + ov) * s, length * s)
            prev_end = [b + tile for b in starts if b < a][-1]
            hi = max(hi, prev_end * s)
            if axis == 0:
                mask[lo:hi] = False
            else:
                mask[:, lo:hi] = False
    diff = (tiled - full).abs()[0].amax(0)
    assert float(diff[mask].max()) < 1e-5
    assert float(diff.max()) < 0.05  # and close everywhere: no seams


def test_small_image_is_one_tile():
    lr = torch.rand(1, 3, 7, 9)
    calls = []

    def fn(t, i):
        calls.append(t.shape)
        return nearest(t, i)

    out = upscale_tiled(fn, lr, 2, tile=16, overlap=4)
    assert out.shape == (1, 3, 14, 18) and calls == [torch.Size([1, 3, 7, 9])]
