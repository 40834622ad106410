"""PSNR / SSIM (BasicSR protocol) against scikit-image, and the bicubic baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from difflab.vision.metrics import psnr, rgb_to_y, ssim


def _pair(seed=0, shape=(2, 3, 48, 40)):
    g = torch.Generator().manual_seed(seed)
    hr = torch.rand(shape, generator=g)
    sr = (hr + 0.05 * torch.randn(shape, generator=g)).clamp(0, 1)
    return sr, hr


def _np(x):
    return np.round(x.permute(1, 2, 0).numpy().astype(np.float64) * 255)


@pytest.mark.parametrize("border", [0, 2, 4])
def test_rgb_metrics_match_skimage(border):
    sr, hr = _pair()
    ours_p = psnr(sr, hr, crop_border=border, space="rgb")
    ours_s = ssim(sr, hr, crop_border=border, space="rgb")
    for i in range(2):
        a, b = _np(sr[i]), _np(hr[i])
        if border:
            a, b = a[border:-border, border:-border], b[border:-border, border:-border]
        ref_p = peak_signal_noise_ratio(b, a, data_range=255)
        ref_s = structural_similarity(
            b, a, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, channel_axis=2
        )
        assert abs(float(ours_p[i]) - ref_p) < 1e-9
        assert abs(float(ours_s[i]) - ref_s) < 1e-9


def test_y_metrics_match_skimage_ycbcr():
    sr, hr = _pair(seed=1)
    b = 4
    ya, yb = rgb2ycbcr(_np(sr[0]) / 255)[..., 0], rgb2ycbcr(_np(hr[0]) / 255)[..., 0]
    ya, yb = ya[b:-b, b:-b], yb[b:-b, b:-b]
    assert abs(float(psnr(sr, hr, crop_border=b)[0]) - peak_signal_noise_ratio(yb, ya, data_range=255)) < 1e-9
    ref = structural_similarity(yb, ya, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert abs(float(ssim(sr, hr, crop_border=b)[0]) - ref) < 1e-9


def test_y_channel_range_and_identity():
    white, black = torch.ones(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    assert torch.allclose(rgb_to_y(white.double()), torch.tensor(235.0, dtype=torch.float64))
    assert torch.allclose(rgb_to_y(black.double()), torch.tensor(16.0, dtype=torch.float64))
    x = torch.rand(1, 3, 16, 16)
    assert float(psnr(x, x)) > 90 and abs(float(ssim(x, x)) - 1) < 1e-12
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(x, x[..., :8])


def test_bicubic_baseline_on_heldout_photos():
    """The bicubic x4 baseline of the held-out crops sits in the usual 20-45 dB range, Y above RGB."""
    from difflab.vision.data import SRDataModule
    from difflab.vision.metrics import from_model_range

    batch = next(iter(SRDataModule(scale=4, eval_size=128).val_dataloader()))
    hr, bic = from_model_range(batch["x0"]), from_model_range(batch["y"])
    p_y, p_rgb = psnr(bic, hr, crop_border=4), psnr(bic, hr, crop_border=4, space="rgb")
    assert bool(((p_y > 18) & (p_y < 50)).all()) and bool((p_y > p_rgb).all())
