"""Reading and writing images, with greyscale and alpha handled explicitly.

:func:`read_image` returns float32 RGB in [0, 1], shape ``(H, W, 3)``, plus the alpha channel
``(H, W)`` when the file has one. Greyscale files are replicated to three channels; palette and
16-bit files are converted (:func:`write_image` writes a greyscale file's result grey again). What
was done is reported in :attr:`LoadedImage.note` so that commands can say so. Unreadable files
raise :class:`ImageReadError` naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from difflab.core.errors import UserError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class ImageReadError(UserError, ValueError):
    """A file that could not be read as an image (the message names it; a user error: the command
    line prints it in one line)."""


class ImageDataError(UserError, ValueError):
    """Images that do not fit what the data module or the model needs (too small for the scale,
    a GT / LQ pair of other sizes, a missing folder or partner); the message names the file(s), the
    sizes and the option to change (a user error: the command line prints it in one line)."""


@dataclass
class LoadedImage:
    """An image as float32 arrays.

    Attributes:
        rgb: ``(H, W, 3)`` float32 in [0, 1].
        alpha: ``(H, W)`` float32 in [0, 1], or None when the file has no alpha channel.
        note: what conversion was applied ("" when the file was plain 8-bit RGB).
        grey: the file was greyscale (its three RGB channels are equal); ``upscale`` writes it grey.
    """

    rgb: np.ndarray
    alpha: np.ndarray | None = None
    note: str = ""
    grey: bool = False


def to_rgb_array(array: np.ndarray, name: str = "<array>") -> LoadedImage:
    """Convert a uint8 / uint16 / bool / float array of shape ``(H, W)``, ``(H, W, 1|2|3|4)`` to RGB."""
    a = np.asarray(array)
    if a.dtype == bool:
        a = a.astype(np.float32)
    elif a.dtype == np.uint8:
        a = a.astype(np.float32) / 255.0
    elif a.dtype == np.uint16:
        a = a.astype(np.float32) / 65535.0
    else:
        a = a.astype(np.float32)
        lo, hi = float(a.min()), float(a.max())
        if lo < 0 or hi > 1:  # e.g. float phantoms: rescale to [0, 1]
            a = (a - lo) / max(hi - lo, 1e-12)
    note = ""
    alpha = None
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise ImageReadError(f"{name}: expected an image of shape (H, W[, 1-4]), got {tuple(np.shape(array))}")
    if a.shape[2] in (2, 4):
        alpha = a[..., -1].copy()
        a = a[..., :-1]
        note = "alpha channel kept aside and upscaled separately"
    grey = a.shape[2] == 1
    if grey:
        a = np.repeat(a, 3, axis=2)
        note = "greyscale, processed as RGB" + (f"; {note}" if note else "")
    return LoadedImage(np.ascontiguousarray(a, dtype=np.float32), alpha, note, grey)


def read_image(path: str | Path) -> LoadedImage:
    """Read ``path`` with Pillow; see the module docstring for the conversions."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file")
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode == "P":
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                im = im.convert("RGB")
            elif mode == "1":
                im = im.convert("L")
            arr = np.array(im)
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ImageReadError(f"{path}: cannot read as an image ({err})") from err
    if mode in ("I", "I;16", "I;16B", "I;16L") and arr.dtype != np.uint8:
        arr = arr.astype(np.float64) / (65535.0 if arr.max() > 255 else 255.0)
        arr = arr.clip(0, 1)
    loaded = to_rgb_array(arr, str(path))
    if mode == "P":
        loaded.note = ("palette image converted; " + loaded.note).rstrip("; ")
    return loaded


def write_image(path: str | Path, rgb: np.ndarray, alpha: np.ndarray | None = None, grey: bool = False) -> None:
    """Write ``rgb`` ``(H, W, 3)`` in [0, 1] (or uint8, written as is) and optional ``alpha`` ``(H, W)``
    as 8-bit PNG/JPEG; ``grey`` writes the luma (ITU-R 601, Pillow's ``convert("L")``) as a greyscale image."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    levels = rgb if rgb.dtype == np.uint8 else np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    image = Image.fromarray(np.ascontiguousarray(levels), "RGB")
    if grey:
        image = image.convert("L")
    if alpha is not None:
        image.putalpha(Image.fromarray(np.round(np.clip(alpha, 0, 1) * 255).astype(np.uint8), "L"))
    image.save(path)


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted; an error if there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageDataError(f"{folder}: no such folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise ImageDataError(f"{folder}: no image files ({', '.join(IMAGE_EXTENSIONS)})")
    return files


def image_size(path: str | Path) -> tuple[int, int]:
    """``(height, width)`` of an image from its header (the pixels are not decoded), or
    :class:`ImageReadError` naming the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            width, height = im.size
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ImageReadError(f"{path}: cannot read as an image ({err})") from None
    return height, width


__all__ = [
    "ImageDataError",
    "ImageReadError",
    "image_size",
    "LoadedImage",
    "read_image",
    "write_image",
    "to_rgb_array",
    "list_images",
    "IMAGE_EXTENSIONS",
]
