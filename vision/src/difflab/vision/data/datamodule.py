"""``SRDataModule``: the LightningDataModule of every SR method (batch contract in :mod:`.datasets`).

Sources:

* ``photos`` (default, offline): the photographs shipped in scikit-image / scikit-learn /
  matplotlib (:mod:`.photos`); random crops for training, a fixed held-out split for validation.
* ``hr_folder``: folders of HR images (``train_gt``, ``val_gt``), degraded on the fly.
* ``paired``: BasicSR-style GT / LQ folders (``train_gt`` + ``train_lq``, ``val_gt`` + ``val_lq``,
  ``filename_tmpl``), e.g. DIV2K HR with its ``LR_bicubic/X4`` folder.

What the data decides: the SR factor ``scale`` goes to the model when training starts (a trained
model must match it); the training crop ``patch_size`` and the evaluation crop ``eval_size`` are
rounded down to a multiple of the scale and to the smallest image (:mod:`.sizes`, with a note);
whole evaluation images of several sizes are evaluated one at a time. Every image is RGB to the
networks: greyscale is replicated to three channels and an alpha channel is left out
(:func:`~difflab.vision.data.io.read_image`).
"""

from __future__ import annotations

from typing import Literal

from torch.utils.data import Dataset

from difflab.core.lightning.data import SplitDataModule
from difflab.vision.data.datasets import Degradation, DegradedImageDataset, PairedFolderDataset, folder_sources
from difflab.vision.data.io import ImageDataError, list_images, to_rgb_array
from difflab.vision.data.photos import HELDOUT_PHOTOS, TRAIN_PHOTOS
from difflab.vision.data.sizes import eval_batch_size_for, fit_crop, sizes_of


def _photo_sources(table):
    return [(name, (lambda load=load, name=name: to_rgb_array(load(), name).rgb)) for name, load in table.items()]


class SRDataModule(SplitDataModule):
    """Super-resolution data.

    Args:
        source: ``photos``, ``hr_folder`` or ``paired`` (see the module docstring).
        scale: SR factor.
        degradation: on-the-fly degradation for ``photos`` / ``hr_folder``: ``bicubic`` or ``realesrgan``.
        patch_size: HR training crop size (rounded down to a multiple of ``scale`` and to the
            smallest training image, with a note).
        batch_size: training batch size.
        eval_batch_size: validation / test / predict batch size.
        samples_per_epoch: training crops per epoch.
        eval_size: centred HR crop of validation images (rounded as ``patch_size``; None: whole
            images, evaluated one at a time when their sizes differ).
        mod_crop: crop whole evaluation HR images to a multiple of ``scale`` instead of an error.
        train_gt, val_gt: HR folders (``hr_folder``, ``paired``).
        train_lq, val_lq: LR folders (``paired``).
        filename_tmpl: LQ stem from the GT stem (``paired``), e.g. ``"{}x4"`` for DIV2K.
        seed: seed of the evaluation degradations.
        num_workers: DataLoader workers.
    """

    def __init__(
        self,
        source: Literal["photos", "hr_folder", "paired"] = "photos",
        scale: int = 4,
        degradation: Degradation = "bicubic",
        patch_size: int = 64,
        batch_size: int = 16,
        eval_batch_size: int = 4,
        samples_per_epoch: int = 1024,
        eval_size: int | None = 128,
        mod_crop: bool = False,
        train_gt: str | None = None,
        train_lq: str | None = None,
        val_gt: str | None = None,
        val_lq: str | None = None,
        filename_tmpl: str = "{}",
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if source not in ("photos", "hr_folder", "paired"):
            raise ValueError(f"SRDataModule: source must be 'photos', 'hr_folder' or 'paired', got {source!r}")
        if source in ("hr_folder", "paired") and (train_gt is None or val_gt is None):
            raise ImageDataError(
                f"--data.init_args.source {source}: needs train_gt and val_gt folders "
                "(--data.init_args.train_gt, --data.init_args.val_gt)"
            )
        if source == "paired" and (train_lq is None or val_lq is None):
            raise ImageDataError(
                "--data.init_args.source paired: needs train_lq and val_lq folders "
                "(--data.init_args.train_lq, --data.init_args.val_lq)"
            )
        self.save_hyperparameters()
        self.source, self.scale, self.degradation = source, scale, degradation
        self.patch_size, self.batch_size, self.eval_batch_size = patch_size, batch_size, eval_batch_size
        self.samples_per_epoch, self.eval_size, self.mod_crop = samples_per_epoch, eval_size, mod_crop
        self.train_gt, self.train_lq, self.val_gt, self.val_lq = train_gt, train_lq, val_gt, val_lq
        self.filename_tmpl, self.seed, self.num_workers = filename_tmpl, seed, num_workers
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.val_set is not None:
            return
        if self.source == "paired":
            self.patch_size = fit_crop(_PATCH, self.patch_size, sizes_of(list_images(self.train_gt)), self.scale)
            self.eval_batch_size = eval_batch_size_for(self.eval_batch_size, sizes_of(list_images(self.val_gt)), _EVAL)
            self.train_set = PairedFolderDataset(
                self.train_gt, self.train_lq, self.scale, self.filename_tmpl, patch_size=self.patch_size, train=True
            )
            self.val_set = PairedFolderDataset(self.val_gt, self.val_lq, self.scale, self.filename_tmpl)
            return
        if self.source == "photos":
            train_src, val_src = _photo_sources(TRAIN_PHOTOS), _photo_sources(HELDOUT_PHOTOS)
            train_sizes, val_sizes = [], [(name, *load().shape[:2]) for name, load in val_src]
        else:
            train_src, val_src = folder_sources(self.train_gt), folder_sources(self.val_gt)
            train_sizes, val_sizes = sizes_of([n for n, _ in train_src]), sizes_of([n for n, _ in val_src])
        self.patch_size = fit_crop(_PATCH, self.patch_size, train_sizes, self.scale)
        if self.eval_size is not None:
            self.eval_size = fit_crop("--data.init_args.eval_size", self.eval_size, val_sizes, self.scale)
        else:
            self.eval_batch_size = eval_batch_size_for(self.eval_batch_size, val_sizes, _EVAL)
        common = dict(scale=self.scale, degradation=self.degradation, seed=self.seed)
        self.train_set = DegradedImageDataset(
            train_src, patch_size=self.patch_size, train=True, samples_per_epoch=self.samples_per_epoch, **common
        )
        self.val_set = DegradedImageDataset(
            val_src, train=False, eval_size=self.eval_size, mod_crop=self.mod_crop, **common
        )


_PATCH, _EVAL = "--data.init_args.patch_size", "--data.init_args.eval_batch_size"


__all__ = ["SRDataModule"]
