r"""PSNR and SSIM under the BasicSR protocol (the numbers SR papers report), in torch.

Protocol (``XPixelGroup/BasicSR`` ``calculate_psnr`` / ``calculate_ssim``):

* images are compared on the 0-255 scale in float64, after 8-bit rounding of the output
  (``quantize=True``: the metric of the saved PNG);
* ``crop_border`` pixels (the SR scale) are removed on every side;
* ``Y`` channel: ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` with RGB in [0, 1] (ITU-R BT.601,
  MATLAB's ``rgb2ycbcr``), or all three RGB channels;
* PSNR ``= 10 log10(255^2 / MSE)`` per image;
* SSIM (Wang et al. 2004) with an 11 x 11 Gaussian window (sigma 1.5), 'valid' filtering,
  ``C1 = (0.01 * 255)^2``, ``C2 = (0.03 * 255)^2``; per channel, averaged over channels.

Inputs: ``(B, 3, H, W)`` tensors in [0, 1] (use :func:`from_model_range` for [-1, 1] data). Outputs
are ``(B,)`` float64 tensors, one value per image.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

Space = Literal["y", "rgb"]


def from_model_range(x: Tensor) -> Tensor:
    """[-1, 1] -> [0, 1], clamped."""
    return ((x + 1) / 2).clamp(0, 1)


def rgb_to_y(img: Tensor) -> Tensor:
    """BT.601 luma of ``(B, 3, H, W)`` RGB in [0, 1], returned on the 16-235 scale as ``(B, 1, H, W)``."""
    w = torch.tensor([65.481, 128.553, 24.966], dtype=img.dtype, device=img.device).view(1, 3, 1, 1)
    return 16.0 + (img * w).sum(1, keepdim=True)


def _prepare(img: Tensor, crop_border: int, space: Space, quantize: bool) -> Tensor:
    if img.ndim == 3:
        img = img[None]
    if img.ndim != 4 or img.shape[1] != 3:
        raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(img.shape)}")
    x = img.to(torch.float64).clamp(0, 1)
    if quantize:
        x = torch.round(x * 255) / 255
    x = rgb_to_y(x) if space == "y" else x * 255.0
    if crop_border:
        x = x[..., crop_border:-crop_border, crop_border:-crop_border]
    return x


def _check(sr: Tensor, hr: Tensor, space: str) -> None:
    if sr.shape != hr.shape:
        raise ValueError(f"SR {tuple(sr.shape)} and HR {tuple(hr.shape)} differ in shape")
    if space not in ("y", "rgb"):
        raise ValueError(f"space must be 'y' or 'rgb', got {space!r}")


def psnr(sr: Tensor, hr: Tensor, *, crop_border: int = 0, space: Space = "y", quantize: bool = True) -> Tensor:
    """PSNR in dB per image, ``(B,)`` (BasicSR protocol, module docstring)."""
    _check(sr, hr, space)
    a = _prepare(sr, crop_border, space, quantize)
    b = _prepare(hr, crop_border, space, quantize)
    mse = (a - b).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(255.0**2 / mse.clamp_min(1e-10))


def _gaussian_window(size: int = 11, sigma: float = 1.5, dtype=torch.float64, device=None) -> Tensor:
    r = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(sr: Tensor, hr: Tensor, *, crop_border: int = 0, space: Space = "y", quantize: bool = True) -> Tensor:
    """SSIM per image, ``(B,)`` (BasicSR protocol, module docstring)."""
    _check(sr, hr, space)
    a = _prepare(sr, crop_border, space, quantize)
    b = _prepare(hr, crop_border, space, quantize)
    c = a.shape[1]
    win = _gaussian_window(dtype=a.dtype, device=a.device).expand(c, 1, 11, 11)
    if min(a.shape[-2:]) < 11:
        raise ValueError(f"SSIM needs images of at least 11x11 after the border crop, got {tuple(a.shape[-2:])}")

    def filt(x: Tensor) -> Tensor:
        return F.conv2d(x, win, groups=c)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = filt(a), filt(b)
    s_aa = filt(a * a) - mu_a**2
    s_bb = filt(b * b) - mu_b**2
    s_ab = filt(a * b) - mu_a * mu_b
    m = ((2 * mu_a * mu_b + c1) * (2 * s_ab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (s_aa + s_bb + c2))
    return m.flatten(2).mean(2).mean(1)


def sr_metrics(sr: Tensor, hr: Tensor, scale: int) -> dict[str, Tensor]:
    """``psnr_y``, ``ssim_y`` (border ``scale``) and ``psnr_rgb``, ``ssim_rgb`` per image, inputs in [0, 1]."""
    return {
        "psnr_y": psnr(sr, hr, crop_border=scale, space="y"),
        "ssim_y": ssim(sr, hr, crop_border=scale, space="y"),
        "psnr_rgb": psnr(sr, hr, crop_border=scale, space="rgb"),
        "ssim_rgb": ssim(sr, hr, crop_border=scale, space="rgb"),
    }


__all__ = ["psnr", "ssim", "rgb_to_y", "sr_metrics", "from_model_range"]
