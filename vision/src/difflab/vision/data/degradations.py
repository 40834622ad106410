r"""Degradations that make a low-resolution (LR) image from a high-resolution (HR) one.

* :func:`bicubic_downsample`: the classical x2 / x4 bicubic degradation (antialiased bicubic, Keys
  cubic with ``a = -0.5``, the kernel of MATLAB's ``imresize`` and Pillow), the setting of SR3,
  SRDiff and the Set5 / DIV2K bicubic tracks.
* :class:`RealESRGANDegradation`: the second-order "high-order" degradation of Real-ESRGAN
  (Wang et al. 2021), ResShift's training degradation for real-world SR. Two rounds of

      blur (isotropic / anisotropic / generalised / plateau Gaussian, or a sinc) -> random resize
      (up / down / keep, area / bilinear / bicubic) -> Gaussian or Poisson noise (colour or grey)
      -> JPEG

  followed by the final resize to ``HR / scale`` combined, in random order, with an optional sinc
  filter and a last JPEG, then 8-bit quantisation. Every random choice comes from a
  ``numpy.random.Generator`` so a seed reproduces the LR image exactly.

Images are float32 torch tensors ``(3, H, W)`` in [0, 1] (the data pipeline's layout).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


# ---------------------------------------------------------------------------------------------- resizing
def resize(img: Tensor, size: tuple[int, int], mode: str = "bicubic") -> Tensor:
    """Resize ``(C, H, W)`` or ``(B, C, H, W)`` to ``size = (h, w)``; antialiased when shrinking."""
    batched = img.ndim == 4
    x = img if batched else img[None]
    if mode == "area":
        out = F.interpolate(x, size=size, mode="area")
    else:
        shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
        out = F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=shrink)
    return out if batched else out[0]


def bicubic_downsample(hr: Tensor, scale: int, *, name: str = "image") -> Tensor:
    """Bicubic ``1/scale`` downsampling of ``hr`` ``(C, H, W)``; ``H`` and ``W`` must divide by ``scale``."""
    h, w = hr.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f"{name}: size {h}x{w} is not divisible by the scale {scale}")
    return resize(hr, (h // scale, w // scale), "bicubic").clamp(0, 1)


def bicubic_upsample(lr: Tensor, scale: int) -> Tensor:
    """Bicubic ``x scale`` upsampling of ``lr`` ``(C, h, w)`` or ``(B, C, h, w)`` (no clamping)."""
    h, w = lr.shape[-2:]
    return resize(lr, (h * scale, w * scale), "bicubic")


# ---------------------------------------------------------------------------------------------- kernels
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    r = np.arange(size, dtype=np.float64) - size // 2
    return np.meshgrid(r, r, indexing="xy")


def _inverse_covariance(sx: float, sy: float, theta: float) -> np.ndarray:
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    cov = rot @ np.diag([sx**2, sy**2]) @ rot.T
    return np.linalg.inv(cov)


def gaussian_kernel(
    size: int, sx: float, sy: float, theta: float, beta: float = 1.0, kind: str = "gaussian"
) -> np.ndarray:
    """Normalised ``size x size`` kernel from the quadratic form ``q = u^T Sigma^{-1} u``.

    ``gaussian``: ``exp(-q / 2)``; ``generalized``: ``exp(-(q)^beta / 2)`` (shape ``beta``);
    ``plateau``: ``1 / (1 + q^beta)``.
    """
    xx, yy = _grid(size)
    inv = _inverse_covariance(sx, sy, theta)
    q = inv[0, 0] * xx**2 + (inv[0, 1] + inv[1, 0]) * xx * yy + inv[1, 1] * yy**2
    if kind == "gaussian":
        k = np.exp(-0.5 * q)
    elif kind == "generalized":
        k = np.exp(-0.5 * np.power(q, beta))
    elif kind == "plateau":
        k = 1.0 / (1.0 + np.power(q, beta))
    else:
        raise ValueError(f"unknown kernel kind {kind!r}")
    return k / k.sum()


def sinc_kernel(size: int, cutoff: float) -> np.ndarray:
    """Circular low-pass (2-D sinc / jinc) ``cutoff * J1(cutoff r) / (2 pi r)``, normalised."""
    from scipy.special import j1

    xx, yy = _grid(size)
    r = np.sqrt(xx**2 + yy**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = cutoff * j1(cutoff * r) / (2 * np.pi * r)
    k[r == 0] = cutoff**2 / (4 * np.pi)
    return k / k.sum()


def filter2d(img: Tensor, kernel: np.ndarray) -> Tensor:
    """Convolve ``(C, H, W)`` with a 2-D kernel, reflect padding."""
    k = torch.as_tensor(kernel, dtype=img.dtype)
    pad = k.shape[-1] // 2
    x = F.pad(img[None], (pad, pad, pad, pad), mode="reflect" if min(img.shape[-2:]) > pad else "replicate")
    c = img.shape[0]
    return F.conv2d(x, k.expand(c, 1, *k.shape), groups=c)[0]


def jpeg(img: Tensor, quality: int) -> Tensor:
    """JPEG round trip with Pillow at ``quality``."""
    from PIL import Image

    arr = (img.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        out = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(out).permute(2, 0, 1).contiguous()


# ---------------------------------------------------------------------------------------------- Real-ESRGAN
@dataclass
class BlurStage:
    """Random blur of one degradation round (Real-ESRGAN's first / second blur)."""

    kernel_range: tuple[int, int] = (7, 21)
    kinds: tuple[str, ...] = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
    probs: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    sigma: tuple[float, float] = (0.2, 3.0)
    beta_generalized: tuple[float, float] = (0.5, 4.0)
    beta_plateau: tuple[float, float] = (1.0, 2.0)
    sinc_prob: float = 0.1

    def kernel(self, rng: np.random.Generator) -> np.ndarray:
        size = int(rng.choice(np.arange(self.kernel_range[0], self.kernel_range[1] + 1, 2)))
        if rng.random() < self.sinc_prob:
            cutoff = rng.uniform(math.pi / 3, math.pi) if size < 13 else rng.uniform(math.pi / 5, math.pi)
            return sinc_kernel(size, cutoff)
        kind = str(rng.choice(self.kinds, p=np.asarray(self.probs) / sum(self.probs)))
        sx = rng.uniform(*self.sigma)
        sy, theta = (
            (sx, 0.0)
            if kind.endswith("iso") and not kind.endswith("aniso")
            else (
                rng.uniform(*self.sigma),
                rng.uniform(-math.pi, math.pi),
            )
        )
        if kind.startswith("generalized"):
            return gaussian_kernel(size, sx, sy, theta, rng.uniform(*self.beta_generalized), "generalized")
        if kind.startswith("plateau"):
            return gaussian_kernel(size, sx, sy, theta, rng.uniform(*self.beta_plateau), "plateau")
        return gaussian_kernel(size, sx, sy, theta)


@dataclass
class NoiseResizeStage:
    """Random resize, noise and JPEG of one degradation round."""

    resize_probs: tuple[float, float, float] = (0.2, 0.7, 0.1)  # up, down, keep
    resize_range: tuple[float, float] = (0.15, 1.5)
    gaussian_noise_prob: float = 0.5
    noise_range: tuple[float, float] = (1.0, 30.0)  # sigma on the 0-255 scale
    poisson_scale_range: tuple[float, float] = (0.05, 3.0)
    gray_noise_prob: float = 0.4
    jpeg_range: tuple[int, int] = (30, 95)


def add_noise(img: Tensor, rng: np.random.Generator, stage: NoiseResizeStage) -> Tensor:
    """Gaussian (sigma on the 0-255 scale) or Poisson (256 intensity levels, scaled) noise, colour or grey."""
    c, h, w = img.shape
    gray = rng.random() < stage.gray_noise_prob
    shape = (1, h, w) if gray else (c, h, w)
    if rng.random() < stage.gaussian_noise_prob:
        sigma = rng.uniform(*stage.noise_range) / 255.0
        noise = torch.from_numpy(rng.standard_normal(shape).astype(np.float32)) * sigma
    else:
        scale = rng.uniform(*stage.poisson_scale_range)
        base = img.mean(0, keepdim=True) if gray else img
        levels = 256.0
        counts = rng.poisson(base.clamp(0, 1).numpy().astype(np.float64) * levels)
        noise = (torch.from_numpy(counts.astype(np.float32)) / levels - base) * scale
    return (img + noise).clamp(0, 1)


def random_resize(img: Tensor, rng: np.random.Generator, stage: NoiseResizeStage) -> Tensor:
    kind = rng.choice(3, p=np.asarray(stage.resize_probs) / sum(stage.resize_probs))
    factor = (
        rng.uniform(1.0, stage.resize_range[1])
        if kind == 0
        else (rng.uniform(stage.resize_range[0], 1.0) if kind == 1 else 1.0)
    )
    mode = str(rng.choice(["area", "bilinear", "bicubic"]))
    h, w = img.shape[-2:]
    size = (max(4, int(round(h * factor))), max(4, int(round(w * factor))))
    return resize(img, size, mode).clamp(0, 1)


@dataclass
class RealESRGANDegradation:
    """Real-ESRGAN's second-order degradation (defaults are the paper's / ResShift's settings).

    Call as ``degrade(hr, scale, rng)`` with ``hr`` ``(3, H, W)`` in [0, 1] (``H``, ``W`` divisible by
    ``scale``) and a ``numpy.random.Generator``; returns the 8-bit-quantised LR ``(3, H/scale, W/scale)``.
    """

    blur1: BlurStage = field(default_factory=BlurStage)
    stage1: NoiseResizeStage = field(default_factory=NoiseResizeStage)
    second_blur_prob: float = 0.8
    blur2: BlurStage = field(default_factory=lambda: BlurStage(sigma=(0.2, 1.5), beta_generalized=(0.5, 4.0)))
    stage2: NoiseResizeStage = field(
        default_factory=lambda: NoiseResizeStage(
            resize_probs=(0.3, 0.4, 0.3),
            resize_range=(0.3, 1.2),
            noise_range=(1.0, 25.0),
            poisson_scale_range=(0.05, 2.5),
        )
    )
    final_sinc_prob: float = 0.8

    def __call__(self, hr: Tensor, scale: int, rng: np.random.Generator, *, name: str = "image") -> Tensor:
        h, w = hr.shape[-2:]
        if h % scale or w % scale:
            raise ValueError(f"{name}: size {h}x{w} is not divisible by the scale {scale}")
        x = filter2d(hr, self.blur1.kernel(rng)).clamp(0, 1)
        x = random_resize(x, rng, self.stage1)
        x = add_noise(x, rng, self.stage1)
        x = jpeg(x, int(rng.integers(self.stage1.jpeg_range[0], self.stage1.jpeg_range[1] + 1)))
        if rng.random() < self.second_blur_prob:
            x = filter2d(x, self.blur2.kernel(rng)).clamp(0, 1)
        # the second resize is relative to the target LR size, as in Real-ESRGAN
        kind = rng.choice(3, p=np.asarray(self.stage2.resize_probs) / sum(self.stage2.resize_probs))
        factor = (
            rng.uniform(1.0, self.stage2.resize_range[1])
            if kind == 0
            else (rng.uniform(self.stage2.resize_range[0], 1.0) if kind == 1 else 1.0)
        )
        mode = str(rng.choice(["area", "bilinear", "bicubic"]))
        size = (max(4, int(round(h / scale * factor))), max(4, int(round(w / scale * factor))))
        x = resize(x, size, mode).clamp(0, 1)
        x = add_noise(x, rng, self.stage2)
        target = (h // scale, w // scale)
        quality = int(rng.integers(self.stage2.jpeg_range[0], self.stage2.jpeg_range[1] + 1))
        sinc = (
            sinc_kernel(int(rng.choice(np.arange(7, 22, 2))), rng.uniform(math.pi / 3, math.pi))
            if (rng.random() < self.final_sinc_prob)
            else None
        )
        mode = str(rng.choice(["area", "bilinear", "bicubic"]))
        if rng.random() < 0.5:  # resize + sinc, then JPEG
            x = resize(x, target, mode).clamp(0, 1)
            if sinc is not None:
                x = filter2d(x, sinc).clamp(0, 1)
            x = jpeg(x, quality)
        else:  # JPEG, then resize + sinc
            x = jpeg(x, quality)
            x = resize(x, target, mode).clamp(0, 1)
            if sinc is not None:
                x = filter2d(x, sinc).clamp(0, 1)
        return (x.clamp(0, 1) * 255).round() / 255


__all__ = [
    "resize",
    "bicubic_downsample",
    "bicubic_upsample",
    "gaussian_kernel",
    "sinc_kernel",
    "filter2d",
    "jpeg",
    "add_noise",
    "RealESRGANDegradation",
    "BlurStage",
    "NoiseResizeStage",
]
