r"""Two-dimensional toy data for diffusion models, and a shuffling sampler that survives resuming.

:class:`ToyDataModule` generates its data from a seed, so it needs no files:

* ``mixture``: a Gaussian mixture of ``num_modes`` components with means on a circle of radius
  ``radius`` (``mu_k = r (cos 2 pi k / K, sin 2 pi k / K)``), a shared std ``mode_std`` and weights
  ``mode_weights`` (uniform by default). Its exact law is :attr:`ToyDataModule.mixture`
  (:class:`difflab.core.toy.GaussianMixture`), so samples can be scored against known modes.
* ``moons``: two interleaving half circles (the classic "two moons"): with ``theta ~ U(0, pi)`` the
  upper moon is ``(cos theta, sin theta)`` and the lower ``(1 - cos theta, 1/2 - sin theta)``, each
  point with isotropic Gaussian noise of std ``moons_noise``, centred at ``(1/2, 1/4)``.

Batches are dicts ``{"x0": (B, 2) float32}`` (the :class:`~difflab.core.lightning.module.DiffusionModule`
contract).

Shuffling that resumes exactly. The training order of epoch ``e`` is the permutation drawn from
``seed + e`` (:class:`EpochShuffleSampler`, a ``DistributedSampler`` so that Lightning keeps it in
multi-device runs instead of replacing it, sharded over ``world_size`` ranks). The sampler counts
its own epochs (each pass over it is the next epoch) and ignores Lightning's ``set_epoch`` calls:
after a resume from a checkpoint written at the end of an epoch Lightning numbers the next epoch one
too high, which would skip a permutation. :meth:`ToyDataModule.train_dataloader` reads the position
of the restored fit loop (epoch, and batches already done when the checkpoint was written mid-epoch)
and starts the sampler there. A run stopped at any checkpoint and resumed sees the same batches, in
the same order, as the run that was never stopped.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from difflab.core.toy import GaussianMixture


class PointDataset(Dataset):
    """Rows of a ``(N, D)`` tensor as ``{"x0": (D,)}`` items."""

    def __init__(self, points: Tensor) -> None:
        self.points = points

    def __len__(self) -> int:
        return self.points.shape[0]

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {"x0": self.points[i]}


class EpochShuffleSampler(DistributedSampler):
    """Permutation of epoch ``e`` drawn from ``seed + e``, split over ranks, optionally starting mid-epoch.

    Args:
        dataset: the dataset (only its length is used).
        seed: base seed; the order of epoch ``e`` depends only on ``seed + e``.
        num_replicas: number of ranks (1 on one device).
        rank: this process's rank.
        shuffle: permute (True) or keep the dataset order.
        drop_last: drop the tail that does not divide evenly over ranks (otherwise it is padded by
            repeating indices, as ``DistributedSampler`` does).
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        seed: int,
        num_replicas: int = 1,
        rank: int = 0,
        shuffle: bool = True,
        drop_last: bool = False,
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last)
        self._skip = 0
        self._next_epoch = 0

    def start_at(self, epoch: int, skip: int = 0) -> None:
        """Make the next pass epoch ``epoch``, skipping its first ``skip`` indices of this rank (once)."""
        self._next_epoch = int(epoch)
        self._skip = int(skip)

    def set_epoch(self, epoch: int) -> None:
        """Ignored: each pass is the next epoch after the one :meth:`start_at` set (module docstring)."""

    def __iter__(self):
        self.epoch, self._next_epoch = self._next_epoch, self._next_epoch + 1
        indices = list(super().__iter__())
        skip, self._skip = self._skip, 0
        return iter(indices[skip:])


class ResumableLoader(DataLoader):
    """The training DataLoader; resumable because its position comes from the restored fit loop.

    Its checkpointed state records the data order's identity (seed, dataset size, batch size, ranks)
    so that resuming with different data settings is reported instead of silently changing the order.
    """

    def state_dict(self) -> dict[str, Any]:
        s = self.sampler
        return {"seed": s.seed, "size": len(self.dataset), "batch_size": self.batch_size, "replicas": s.num_replicas}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        now = self.state_dict()
        changed = {k: (state.get(k), v) for k, v in now.items() if state.get(k) != v}
        if changed:
            warnings.warn(
                f"resuming with different training-data settings {changed} (saved, now): the data order "
                "differs from the interrupted run",
                stacklevel=2,
            )


def fit_position(trainer: Any) -> tuple[int, int]:
    """``(epoch, batches already done in it)`` of the (possibly just restored) fit loop."""
    loop = getattr(trainer, "fit_loop", None)
    if loop is None:
        return 0, 0
    ep = loop.epoch_progress.current
    epoch = int(ep.processed)
    if ep.processed < ep.started:  # the checkpoint was written inside an epoch
        bp = loop.epoch_loop.batch_progress
        if bp.is_last_batch:  # ... after its last batch: the next epoch starts from its beginning
            return epoch + 1, 0
        return epoch, int(bp.current.processed)
    return epoch, 0


def resumable_train_loader(
    dataset: Dataset,
    *,
    trainer: Any,
    seed: int,
    batch_size: int,
    num_workers: int = 0,
    drop_last: bool = True,
    shuffle: bool = True,
    **loader_kwargs: Any,
) -> ResumableLoader:
    """The training DataLoader every difflab data module uses: seeded per epoch, split over ranks,
    and resumable mid-epoch.

    The order of epoch ``e`` depends only on ``seed + e``; on resume the loader starts at the epoch
    and batch of the restored fit loop (:func:`fit_position`), so a resumed run sees exactly the
    batches the interrupted run would have seen. ``trainer`` may be ``None`` (outside a Trainer).
    Extra keyword arguments (``collate_fn``, ``pin_memory``...) go to ``DataLoader``.
    """
    world, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
    sampler = EpochShuffleSampler(
        dataset, seed=seed, num_replicas=world, rank=rank, drop_last=drop_last, shuffle=shuffle
    )
    epoch, done = fit_position(trainer) if trainer is not None else (0, 0)
    sampler.start_at(epoch, done * batch_size)
    return ResumableLoader(
        dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last, num_workers=num_workers, **loader_kwargs
    )


class SplitDataModule(LightningDataModule):
    """Loaders shared by every difflab data module: subclasses build the datasets, this serves them.

    A subclass sets, in ``__init__``, ``batch_size``, ``seed`` and ``num_workers`` (and optionally
    ``eval_batch_size`` and ``collate_fn``), and in ``setup`` the datasets ``train_set``, ``val_set``
    and optionally ``test_set`` (the validation set stands in for a missing one). The training
    loader is :func:`resumable_train_loader` (seeded per epoch, split over ranks, resumable
    mid-epoch); evaluation loaders keep the dataset order. Prediction uses the test set.
    """

    train_set: Dataset | None = None
    val_set: Dataset | None = None
    test_set: Dataset | None = None
    eval_batch_size: int | None = None
    collate_fn: Any = None
    num_workers: int = 0

    def train_dataloader(self) -> DataLoader:
        self.setup("fit")
        return resumable_train_loader(
            self.train_set,
            trainer=self.trainer,
            seed=self.seed,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            collate_fn=self.collate_fn,
        )

    def _eval_loader(self, dataset: Dataset | None) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.eval_batch_size or self.batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=self.collate_fn,
        )

    def val_dataloader(self) -> DataLoader:
        self.setup("validate")
        return self._eval_loader(self.val_set)

    def test_dataloader(self) -> DataLoader:
        self.setup("test")
        return self._eval_loader(self.test_set if self.test_set is not None else self.val_set)

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()


def moons(n: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` points of the two-moons set, ``(n, 2)``, centred at the origin (see module docstring)."""
    n_up = n // 2 + n % 2
    th = rng.uniform(0.0, math.pi, size=n)
    up = np.arange(n) < n_up
    x = np.where(up, np.cos(th), 1.0 - np.cos(th))
    y = np.where(up, np.sin(th), 0.5 - np.sin(th))
    pts = np.stack([x, y], axis=-1) + noise * rng.standard_normal((n, 2))
    pts = pts - np.array([0.5, 0.25])
    return pts[rng.permutation(n)]


class ToyDataModule(SplitDataModule):
    """Seeded 2-D toy data: a Gaussian mixture on a circle or two moons.

    Args:
        kind: ``mixture`` or ``moons``.
        n_train: number of training points.
        n_val: number of validation points (also the test and predict sets).
        batch_size: batch size per device.
        seed: seed of the data and of the training order (epoch ``e`` uses ``seed + e``).
        num_modes: mixture components (``mixture`` only).
        radius: radius of the circle of means (``mixture`` only).
        mode_std: std of every component (``mixture`` only).
        mode_weights: component weights (normalised; uniform if None) (``mixture`` only).
        moons_noise: std of the noise around the moons (``moons`` only).
        num_workers: DataLoader workers.
    """

    def __init__(
        self,
        kind: Literal["mixture", "moons"] = "mixture",
        n_train: int = 8192,
        n_val: int = 2048,
        batch_size: int = 256,
        seed: int = 0,
        num_modes: int = 8,
        radius: float = 1.0,
        mode_std: float = 0.05,
        mode_weights: list[float] | None = None,
        moons_noise: float = 0.05,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if kind not in ("mixture", "moons"):
            raise ValueError(f"ToyDataModule: kind must be 'mixture' or 'moons', got {kind!r}")
        sizes = {"n_train": n_train, "n_val": n_val, "batch_size": batch_size, "num_modes": num_modes}
        for name, value in sizes.items():
            if value < 1:
                raise ValueError(f"ToyDataModule: {name} must be >= 1, got {value}")
        if mode_std <= 0 or radius <= 0 or moons_noise < 0:
            raise ValueError(
                "ToyDataModule: need mode_std > 0, radius > 0, moons_noise >= 0; "
                f"got {mode_std}, {radius}, {moons_noise}"
            )
        if mode_weights is not None and len(mode_weights) != num_modes:
            raise ValueError(f"ToyDataModule: mode_weights has {len(mode_weights)} entries, num_modes is {num_modes}")
        self.save_hyperparameters()
        self.kind = kind
        self.n_train, self.n_val, self.batch_size, self.seed = n_train, n_val, batch_size, seed
        self.num_workers = num_workers
        self.moons_noise = moons_noise
        self.mixture: GaussianMixture | None = None
        if kind == "mixture":
            ang = 2 * math.pi * torch.arange(num_modes, dtype=torch.float64) / num_modes
            means = radius * torch.stack([ang.cos(), ang.sin()], dim=-1)
            w = None if mode_weights is None else torch.tensor(mode_weights, dtype=torch.float64)
            self.mixture = GaussianMixture(means, mode_std, w)
        self.train_set: PointDataset | None = None
        self.val_set: PointDataset | None = None

    def generate(self, n: int, seed: int) -> Tensor:
        """``n`` fresh points ``(n, 2)`` float32 from the data law, deterministic in ``seed``."""
        if self.mixture is not None:
            return self.mixture.sample(n, torch.Generator().manual_seed(seed)).to(torch.float32)
        return torch.from_numpy(moons(n, self.moons_noise, np.random.default_rng(seed))).to(torch.float32)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set = PointDataset(self.generate(self.n_train, self.seed))
            self.val_set = PointDataset(self.generate(self.n_val, self.seed + 1_000_003))


__all__ = [
    "EpochShuffleSampler",
    "PointDataset",
    "ResumableLoader",
    "SplitDataModule",
    "ToyDataModule",
    "fit_position",
    "moons",
    "resumable_train_loader",
]
