"""What a folder of images decides about the crops: the data module's patch and evaluation sizes
against the SR factor and the sizes of the images, read from their headers before any pixel is
decoded.

A crop is a multiple of the scale (the LR crop is ``crop / scale`` pixels) and fits in every image.
:func:`fit_crop` makes a configured size obey both, with a note that names the option, the value
used and the image or factor that decided it, so a shipped config trains unchanged on images of any
size and at any scale. Evaluating whole images of several sizes needs batches of one image
(:func:`eval_batch_size_for`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from difflab.core.progress import note
from difflab.vision.data.io import ImageDataError, image_size

Size = tuple[str, int, int]  # (name, height, width)


def sizes_of(paths: Sequence[str | Path]) -> list[Size]:
    """``[(name, height, width)]`` of image files, from their headers."""
    return [(str(p), *image_size(p)) for p in paths]


def fit_crop(option: str, value: int, sizes: Sequence[Size], scale: int) -> int:
    """``value`` rounded down to a multiple of ``scale`` and to the smallest side among ``sizes``
    (a note says why when it changes); an error naming the image when no crop of at least two LR
    pixels fits."""
    crop, reason = value - value % scale, f"not a multiple of the scale {scale}"
    if sizes:
        name, h, w = min(sizes, key=lambda s: min(s[1], s[2]))
        side = min(h, w) - min(h, w) % scale
        if side < crop:
            crop, reason = side, f"{name} is {h}x{w}"
        if crop < 2 * scale:
            raise ImageDataError(
                f"{name}: image is {h}x{w}, too small for crops of at least {2 * scale} px at x{scale} ({option})"
            )
    if crop != value:
        note(f"{option} {value}: {reason}; using {crop}x{crop} crops")
    return crop


def eval_batch_size_for(batch_size: int, sizes: Sequence[Size], option: str) -> int:
    """``batch_size``, or 1 with a note when whole images of several sizes are evaluated."""
    if batch_size > 1 and len({(h, w) for _, h, w in sizes}) > 1:
        note(f"{option} {batch_size}: the evaluation images differ in size and are evaluated whole; batches of 1")
        return 1
    return batch_size


__all__ = ["Size", "eval_batch_size_for", "fit_crop", "sizes_of"]
