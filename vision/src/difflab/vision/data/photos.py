"""The offline default data: real photographs shipped inside the scikit-image, scikit-learn and
matplotlib wheels (no download), with a fixed held-out split.

Held out for evaluation (never cropped for training): scikit-image's ``coffee`` and ``rocket``, a
256 x 256 crop of ``retina`` around the optic disc (rows 560-816, columns 150-406; training uses
only rows 0-500 of that image) and scikit-learn's ``china``. Everything else listed in :data:`TRAIN_PHOTOS` is training
data. Greyscale photographs (camera, brick, moon, ...) are replicated to RGB.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from difflab.vision.data.io import to_rgb_array


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        try:
            import skimage.data
        except ImportError as err:  # pragma: no cover - a declared dependency
            raise ImportError("the default photos need scikit-image: pip install scikit-image") from err
        return getattr(skimage.data, name)()

    return load


def _sklearn(index: int) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        try:
            from sklearn.datasets import load_sample_images
        except ImportError as err:
            raise ImportError("the default photos need scikit-learn: pip install scikit-learn") from err
        return load_sample_images().images[index]

    return load


def _grace_hopper() -> np.ndarray:
    import matplotlib.cbook
    from PIL import Image

    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as im:
        return np.asarray(im.convert("RGB"))


def _motorcycle(side: int) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        return skimage.data.stereo_motorcycle()[side]

    return load


def _retina_train() -> np.ndarray:
    import skimage.data

    return skimage.data.retina()[:500]


def _retina_heldout() -> np.ndarray:
    import skimage.data

    return skimage.data.retina()[560:816, 150:406]


TRAIN_PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": _skimage("astronaut"),
    "brick": _skimage("brick"),
    "camera": _skimage("camera"),
    "cat": _skimage("cat"),
    "coins": _skimage("coins"),
    "grass": _skimage("grass"),
    "gravel": _skimage("gravel"),
    "hubble_deep_field": _skimage("hubble_deep_field"),
    "immunohistochemistry": _skimage("immunohistochemistry"),
    "moon": _skimage("moon"),
    "text": _skimage("text"),
    "page": _skimage("page"),
    "clock": _skimage("clock"),
    "colorwheel": _skimage("colorwheel"),
    "motorcycle_left": _motorcycle(0),
    "motorcycle_right": _motorcycle(1),
    "retina_top": _retina_train,
    "flower": _sklearn(1),
    "grace_hopper": _grace_hopper,
}
"""Training photographs: name -> loader returning the raw array."""

HELDOUT_PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "coffee": _skimage("coffee"),
    "rocket": _skimage("rocket"),
    "retina_crop": _retina_heldout,
    "china": _sklearn(0),
}
"""Held-out photographs for PSNR / SSIM: name -> loader."""


def load_photos(split: str) -> list[tuple[str, np.ndarray]]:
    """``[(name, rgb float32 (H, W, 3) in [0, 1])]`` of the ``train`` or ``heldout`` split."""
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    table = TRAIN_PHOTOS if split == "train" else HELDOUT_PHOTOS
    return [(name, to_rgb_array(load(), name).rgb) for name, load in table.items()]


__all__ = ["TRAIN_PHOTOS", "HELDOUT_PHOTOS", "load_photos"]
