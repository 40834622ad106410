r"""Super-resolution datasets: HR images degraded on the fly, and BasicSR-style paired folders.

Every item is a dict (the batch contract of :class:`difflab.core.lightning.DiffusionModule`):

========  ====================  ===============================================================
key       shape                 meaning
========  ====================  ===============================================================
``x0``    ``(3, H, W)``         the HR image in [-1, 1]
``y``     ``(3, H, W)``         the LR image bicubically upsampled to ``H x W``, in [-1, 1]
                                (ResShift's ``y0``, SR3's condition)
``lr``    ``(3, H/s, W/s)``     the LR image in [-1, 1]
``index`` ``()`` int64          item index (names are in :attr:`names`)
========  ====================  ===============================================================

Training items are random ``patch_size`` crops (HR pixels) with random flips and 90-degree
rotations, drawn from torch's global generator (seeded by ``--seed_everything``). Evaluation items
are deterministic: a centred ``eval_size`` crop (or the whole image), and for the Real-ESRGAN
degradation a generator seeded by ``(seed, index)``.

Bad input raises an error naming the file and the sizes: an image smaller than the crop, an HR
image whose size is not divisible by the scale (pass ``mod_crop=True`` to crop it instead, as
BasicSR does at test time), mismatched GT / LQ sizes in paired folders.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from difflab.vision.data.degradations import RealESRGANDegradation, bicubic_downsample, bicubic_upsample
from difflab.vision.data.io import ImageDataError, list_images, read_image

Degradation = Literal["bicubic", "realesrgan"]
ImageSource = tuple[str, Callable[[], np.ndarray]]  # (name, loader -> (H, W, 3) float32 in [0, 1])


def to_tensor(rgb: np.ndarray) -> Tensor:
    """``(H, W, 3)`` array in [0, 1] -> ``(3, H, W)`` float32 tensor in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float()


def make_item(hr01: Tensor, lr01: Tensor, scale: int, index: int) -> dict[str, Tensor]:
    """The batch item of an HR / LR pair given in [0, 1]."""
    y = bicubic_upsample(lr01, scale)
    return {"x0": hr01 * 2 - 1, "y": y * 2 - 1, "lr": lr01 * 2 - 1, "index": torch.tensor(index)}


def augment(t: Tensor, flip: bool, rot: int) -> Tensor:
    if flip:
        t = t.flip(-1)
    return torch.rot90(t, rot, dims=(-2, -1)) if rot else t


def _random_draws() -> tuple[int, bool, int]:
    seed = int(torch.randint(0, 2**31 - 1, ()).item())
    flip = bool(torch.randint(0, 2, ()).item())
    rot = int(torch.randint(0, 4, ()).item())
    return seed, flip, rot


class DegradedImageDataset(Dataset):
    """HR images degraded on the fly (bicubic or Real-ESRGAN second-order).

    Args:
        sources: ``[(name, loader)]``; the loader returns the HR image ``(H, W, 3)`` in [0, 1].
        scale: SR factor (2 or 4 typically).
        degradation: ``bicubic`` or ``realesrgan``.
        patch_size: HR crop size for training (a multiple of ``scale``).
        train: random crops / augmentation (True) or a fixed evaluation crop (False).
        samples_per_epoch: length of the training set (crops are drawn afresh every time).
        eval_size: centred HR crop for evaluation (a multiple of ``scale``); None = whole image.
        mod_crop: crop evaluation images to a multiple of ``scale`` instead of raising an error.
        seed: seed of the evaluation degradations.
        cache: keep decoded images in memory.
    """

    def __init__(
        self,
        sources: Sequence[ImageSource],
        scale: int = 4,
        degradation: Degradation = "bicubic",
        *,
        patch_size: int = 64,
        train: bool = True,
        samples_per_epoch: int = 1024,
        eval_size: int | None = None,
        mod_crop: bool = False,
        seed: int = 0,
        cache: bool = True,
    ) -> None:
        if scale < 1:
            raise ValueError(f"scale must be >= 1, got {scale}")
        if degradation not in ("bicubic", "realesrgan"):
            raise ValueError(f"degradation must be 'bicubic' or 'realesrgan', got {degradation!r}")
        if train and patch_size % scale:
            raise ValueError(f"patch_size {patch_size} is not divisible by the scale {scale}")
        if eval_size is not None and eval_size % scale:
            raise ValueError(f"eval_size {eval_size} is not divisible by the scale {scale}")
        if not sources:
            raise ValueError("DegradedImageDataset: no images")
        self.sources = list(sources)
        self.names = [n for n, _ in self.sources]
        self.scale, self.degradation, self.patch_size, self.train = scale, degradation, patch_size, train
        self.samples_per_epoch, self.eval_size, self.mod_crop, self.seed = samples_per_epoch, eval_size, mod_crop, seed
        self.cache = cache
        self._cache: dict[int, Tensor] = {}
        self._realesrgan = RealESRGANDegradation() if degradation == "realesrgan" else None

    def __len__(self) -> int:
        return self.samples_per_epoch if self.train else len(self.sources)

    def image(self, i: int) -> Tensor:
        """HR image ``i`` as ``(3, H, W)`` in [0, 1]."""
        if i in self._cache:
            return self._cache[i]
        img = to_tensor(self.sources[i][1]())
        if self.cache:
            self._cache[i] = img
        return img

    def degrade(self, hr: Tensor, rng: np.random.Generator, name: str) -> Tensor:
        if self._realesrgan is not None:
            return self._realesrgan(hr, self.scale, rng, name=name)
        return bicubic_downsample(hr, self.scale, name=name)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        if self.train:
            i = index % len(self.sources)
            name, hr = self.names[i], self.image(i)
            p = self.patch_size
            h, w = hr.shape[-2:]
            if h < p or w < p:
                raise ImageDataError(f"{name}: image is {h}x{w}, smaller than the crop size {p}x{p}")
            seed, flip, rot = _random_draws()
            rng = np.random.default_rng(seed)
            top, left = int(rng.integers(0, h - p + 1)), int(rng.integers(0, w - p + 1))
            hr = augment(hr[:, top : top + p, left : left + p], flip, rot)
        else:
            i = index
            name, hr = self.names[i], self.image(i)
            h, w = hr.shape[-2:]
            if self.eval_size is not None:
                e = self.eval_size
                if h < e or w < e:
                    raise ImageDataError(f"{name}: image is {h}x{w}, smaller than the evaluation crop {e}x{e}")
                top, left = (h - e) // 2, (w - e) // 2
                hr = hr[:, top : top + e, left : left + e]
            elif h % self.scale or w % self.scale:
                if not self.mod_crop:
                    raise ImageDataError(
                        f"{name}: size {h}x{w} is not divisible by the scale {self.scale} "
                        "(pass --data.init_args.mod_crop true to crop it)"
                    )
                hr = hr[:, : h - h % self.scale, : w - w % self.scale]
            rng = np.random.default_rng([self.seed, index])
        lr = self.degrade(hr, rng, name)
        return make_item(hr, lr, self.scale, i)


def _scale_hint(H: int, W: int, h: int, w: int, scale: int) -> str:
    """``"; pass --data.init_args.scale N"`` when the GT is another whole factor of the LQ."""
    for n in range(1, 17):
        if n != scale and 0 <= H - h * n < n and 0 <= W - w * n < n:
            return f" (the pair is x{n}: pass --data.init_args.scale {n})"
    return " (--data.init_args.scale)"


def folder_sources(folder: str | Path) -> list[ImageSource]:
    """``[(path, loader)]`` for the images of ``folder`` (greyscale -> RGB, alpha dropped for training)."""
    return [(str(p), (lambda p=p: read_image(p).rgb)) for p in list_images(folder)]


class PairedFolderDataset(Dataset):
    """BasicSR-style paired folders: ``gt_dir/NAME.ext`` and ``lq_dir/<filename_tmpl.format(NAME)>.ext``.

    DIV2K works as is: ``DIV2K_train_HR/0001.png`` with ``DIV2K_train_LR_bicubic/X4/0001x4.png`` and
    ``filename_tmpl="{}x4"``. The GT must be ``scale`` times the LQ (a GT up to ``scale - 1`` pixels
    larger is cropped to ``lq * scale``, BasicSR's test-time rule); anything else is an error that
    names both files and their sizes.

    Args:
        gt_dir: folder of HR images.
        lq_dir: folder of LR images.
        scale: SR factor.
        filename_tmpl: LQ file stem from the GT stem (``"{}"`` or ``"{}x4"``).
        patch_size: HR crop size for training (None: whole images, evaluation).
        train: random paired crops and flips / rotations.
    """

    def __init__(
        self,
        gt_dir: str | Path,
        lq_dir: str | Path,
        scale: int = 4,
        filename_tmpl: str = "{}",
        *,
        patch_size: int | None = None,
        train: bool = False,
    ) -> None:
        if "{}" not in filename_tmpl:
            raise ValueError(f"filename_tmpl must contain '{{}}', got {filename_tmpl!r}")
        if train and (patch_size is None or patch_size % scale):
            raise ValueError(f"training needs a patch_size divisible by the scale {scale}, got {patch_size}")
        self.gt_paths = list_images(gt_dir)
        lq_by_stem = {p.stem: p for p in list_images(lq_dir)}
        self.lq_paths = []
        for g in self.gt_paths:
            stem = filename_tmpl.format(g.stem)
            if stem not in lq_by_stem:
                raise ImageDataError(f"{g}: no LQ image named {stem}.* in {lq_dir} (--data.init_args.filename_tmpl)")
            self.lq_paths.append(lq_by_stem[stem])
        self.names = [str(p) for p in self.gt_paths]
        self.scale, self.patch_size, self.train = scale, patch_size, train

    def __len__(self) -> int:
        return len(self.gt_paths)

    def pair(self, i: int) -> tuple[Tensor, Tensor]:
        """GT ``(3, H, W)`` and LQ ``(3, h, w)`` in [0, 1], GT cropped to ``lq * scale``."""
        gt = to_tensor(read_image(self.gt_paths[i]).rgb)
        lq = to_tensor(read_image(self.lq_paths[i]).rgb)
        s = self.scale
        (H, W), (h, w) = gt.shape[-2:], lq.shape[-2:]
        if not (0 <= H - h * s < s and 0 <= W - w * s < s):
            raise ImageDataError(
                f"GT {self.gt_paths[i]} is {H}x{W} but LQ {self.lq_paths[i]} is {h}x{w}: "
                f"expected GT = LQ x {s} = {h * s}x{w * s}{_scale_hint(H, W, h, w, s)}"
            )
        return gt[:, : h * s, : w * s], lq

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        gt, lq = self.pair(index)
        s = self.scale
        if self.train:
            assert self.patch_size is not None
            p, q = self.patch_size, self.patch_size // s
            h, w = lq.shape[-2:]
            if h < q or w < q:
                raise ImageDataError(
                    f"{self.lq_paths[index]}: LQ image is {h}x{w}, smaller than the LQ crop {q}x{q} "
                    f"(patch {p} / scale {s})"
                )
            seed, flip, rot = _random_draws()
            rng = np.random.default_rng(seed)
            top, left = int(rng.integers(0, h - q + 1)), int(rng.integers(0, w - q + 1))
            lq = augment(lq[:, top : top + q, left : left + q], flip, rot)
            gt = augment(gt[:, top * s : (top + q) * s, left * s : (left + q) * s], flip, rot)
        return make_item(gt, lq, s, index)


__all__ = ["DegradedImageDataset", "PairedFolderDataset", "folder_sources", "make_item", "to_tensor", "Degradation"]
