"""Figures: crops of LR / bicubic / SR / HR side by side, and whole images in a row (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import Tensor

from difflab.core.figures import pyplot


def _img(t: Tensor) -> np.ndarray:
    return t.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def crops_figure(
    *,
    lr: Tensor | None,
    bicubic: Tensor,
    sr: Tensor | dict[str, Tensor],
    hr: Tensor,
    method: str = "ours",
    names: Sequence[str] | None = None,
    psnrs: dict[str, Sequence[float]] | None = None,
):
    """A grid: one row per image, columns LR (nearest upsampled), bicubic, each SR method, HR.

    Args:
        lr: ``(B, 3, h, w)`` in [0, 1] or None.
        bicubic, hr: ``(B, 3, H, W)`` in [0, 1].
        sr: ``(B, 3, H, W)`` in [0, 1], or ``{method name: tensor}`` for several methods.
        method: column title when ``sr`` is one tensor.
        names: row labels.
        psnrs: ``{column title: [PSNR-Y per row]}`` printed under the crops.
    """
    plt = pyplot()
    methods = sr if isinstance(sr, dict) else {method: sr}
    cols: list[tuple[str, Tensor]] = []
    if lr is not None:
        cols.append(("LR", lr))
    cols += [("bicubic", bicubic), *methods.items(), ("HR", hr)]
    rows = hr.shape[0]
    fig, axes = plt.subplots(rows, len(cols), figsize=(2.2 * len(cols), 2.3 * rows), squeeze=False)
    for r in range(rows):
        for c, (title, imgs) in enumerate(cols):
            ax = axes[r, c]
            ax.imshow(_img(imgs[r]), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            label = title
            if psnrs and title in psnrs:
                label += f"\n{psnrs[title][r]:.2f} dB"
            if r == 0 or (psnrs and title in psnrs):
                ax.set_title(label, fontsize=8)
            if c == 0 and names is not None:
                ax.set_ylabel(names[r], fontsize=8)
    fig.tight_layout()
    return fig


def images_row(images: Sequence[tuple[Tensor, str]], figsize: tuple[float, float] = (13, 3.6)):
    """Whole images ``(3, H, W)`` in [0, 1] side by side, each under its title, without axes."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(images), figsize=figsize, squeeze=False)
    for ax, (img, title) in zip(axes[0], images):
        ax.imshow(img.permute(1, 2, 0).numpy())
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    return fig


__all__ = ["crops_figure", "images_row"]
