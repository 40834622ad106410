r"""Noisy / clean patch pairs for point-cloud filtering.

Clean clouds are uniform surface samples of meshes, normalised to the unit sphere; noise is isotropic
Gaussian with std ``sigma`` drawn uniformly in ``noise_range`` (fractions of the bounding-sphere radius,
1 to 3 % by default, as the denoising protocol).

A training item is one patch: a seed point of the clean cloud, the ``2 P`` clean points nearest to it
are jittered, and the ``P`` noisy points nearest to the (noisy) seed form the noisy patch; the ``P``
clean points nearest to the seed form the clean patch (the target surface, not paired point by
point). Both are centred at the noisy seed and divided by the noisy patch's radius
(:func:`difflab.pointcloud.patches.normalise_patch`).

Batch dict: ``y`` (B, P, 3) noisy patch, ``x0`` (B, P, 3) clean patch, ``sigma`` (B,) the noise std in
patch units. Items are drawn from ``(seed, index)`` so every epoch and every resumed run sees the
same patches.

Default meshes: Debian libcgal-demo (:data:`~difflab.pointcloud.data.sources.CGAL_TRAIN_MESHES` for
training, :data:`~difflab.pointcloud.data.sources.CGAL_TEST_MESHES` held out); or a ShapeNet / ModelNet
mesh folder; or one's own clean clouds (``pointfolder``: a folder of point files of any size, each
with at least ``patch_size`` points, see :func:`point_folder_clouds`).

The data decides the patch size: the command line links ``patch_size`` into the filter, whose
checkpoint records it (:data:`difflab.pointcloud.cli.LINKS`).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from difflab.core.errors import UserError
from difflab.core.lightning import SplitDataModule
from difflab.pointcloud.io import (
    CLOUD_FORMATS,
    Mesh,
    PointCloudError,
    normalize_mesh,
    normalize_unit_sphere,
    read_mesh,
    read_points,
    sample_mesh,
)
from difflab.pointcloud.patches import normalise_patch


def load_meshes(source: str, names: list[str] | None, root: str | None, split: str) -> list[Mesh]:
    """Meshes normalised to the unit sphere."""
    from difflab.pointcloud.data import sources
    from difflab.pointcloud.data.shapes import mesh_folder_items

    if source == "cgal":
        names = names or list(sources.CGAL_TRAIN_MESHES if split == "train" else sources.CGAL_TEST_MESHES)
        return [normalize_mesh(read_mesh(sources.cgal_mesh_path(n))) for n in names]
    if source == "pybullet":
        start, count = (0, 64) if split == "train" else (900, 8)
        return [normalize_mesh(m) for m in sources.readable_pybullet_meshes(count, start)[0]]
    paths, _, _ = mesh_folder_items(root, split, names)
    return [normalize_mesh(read_mesh(p)) for p in paths]


def point_folder_files(root: str | Path, split: str, num_val: int | None = None) -> list[Path]:
    """The clean clouds of ``split`` (``train`` or ``test``) in a folder of point files (``CLOUD_FORMATS``).

    ``root/train`` and ``root/test`` (or ``root/val``) when they exist; otherwise the files of ``root``
    with the last ``num_val`` (default: a fifth, at least one) held out for validation and testing.
    A folder of one cloud validates on patches of that cloud (a warning says so)."""
    root = Path(root)
    if not root.is_dir():
        raise PointCloudError(f"{root}: no such folder (--data.init_args.root)")
    held = next((root / d for d in ("test", "val") if (root / d).is_dir()), None)
    folder = (root / "train" if split == "train" else held) if (root / "train").is_dir() and held else root
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in CLOUD_FORMATS and p.is_file())
    if not files:
        raise PointCloudError(f"{folder}: no point files ({', '.join(CLOUD_FORMATS)}) (--data.init_args.root)")
    if folder != root:
        return files
    if len(files) == 1:
        if split != "train":
            warnings.warn(
                f"{root}: one cloud, so the validation patches come from the training cloud "
                "(put held-out clouds in root/test and training clouds in root/train)",
                stacklevel=2,
            )
        return files
    nv = min(len(files) - 1, num_val or max(1, len(files) // 5))
    return files[:-nv] if split == "train" else files[-nv:]


def point_folder_clouds(files: list[Path], num_points: int, patch_size: int, seed: int = 0) -> list[np.ndarray]:
    """Each file's cloud normalised to the unit sphere, randomly thinned to ``num_points`` when it has
    more (never padded); a cloud with fewer than ``patch_size`` points is a :class:`PointCloudError`."""
    clouds = []
    for i, path in enumerate(files):
        pts = read_points(path)
        if len(pts) < patch_size:
            raise PointCloudError(
                f"{path}: {len(pts)} points, fewer than a patch of --data.init_args.patch_size {patch_size}; "
                f"pass --data.init_args.patch_size {len(pts)} or less, or leave this cloud out"
            )
        if len(pts) > num_points:
            pts = pts[np.sort(np.random.default_rng([seed, i]).choice(len(pts), num_points, replace=False))]
        try:
            clouds.append(normalize_unit_sphere(pts)[0])
        except PointCloudError as err:
            raise PointCloudError(f"{path}: {err}") from None
    return clouds


class NoisyPatchDataset(Dataset):
    """Args:
    clouds: clean clouds, list of (N_i, 3) arrays in the unit sphere.
    length: patches per epoch.
    patch_size: ``P``.
    noise_range: (min, max) noise std, fraction of the unit radius.
    seed: base seed; item ``i`` is drawn from ``(seed, i)``.
    """

    def __init__(
        self,
        clouds: list[np.ndarray],
        length: int,
        patch_size: int = 256,
        noise_range: tuple[float, float] = (0.01, 0.03),
        seed: int = 0,
    ) -> None:
        self.clouds = [torch.as_tensor(c, dtype=torch.float32) for c in clouds]
        self.length, self.patch_size, self.noise_range, self.seed = length, patch_size, noise_range, seed

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(int(np.random.SeedSequence([self.seed, i]).generate_state(1)[0]))
        c = self.clouds[int(torch.randint(len(self.clouds), (1,), generator=g))]
        p = self.patch_size
        if len(c) < p:
            raise PointCloudError(f"a cloud of {len(c)} points is smaller than a patch of {p} points")
        s = int(torch.randint(len(c), (1,), generator=g))
        lo, hi = self.noise_range
        sigma = lo + (hi - lo) * float(torch.rand((), generator=g))
        d = (c - c[s]).pow(2).sum(-1)
        near = d.topk(min(2 * p, len(c)), largest=False).indices
        noisy = c[near] + sigma * torch.randn(len(near), 3, generator=g)
        seed_pt = noisy[0]  # near[0] is the seed itself
        noisy = noisy[(noisy - seed_pt).pow(2).sum(-1).topk(p, largest=False).indices]
        clean = c[(c - seed_pt).pow(2).sum(-1).topk(p, largest=False).indices]
        y, r = normalise_patch(noisy[None], seed_pt[None])
        x0 = (clean[None] - seed_pt) / r
        return {"y": y[0], "x0": x0[0], "sigma": torch.tensor(sigma) / r[0]}


class FilterDataModule(SplitDataModule):
    """Noisy / clean patches from meshes (module docstring).

    Args:
        source: ``cgal`` (offline default: Debian libcgal-demo meshes), ``pybullet``, ``meshfolder`` or
            ``pointfolder`` (one's own clean clouds: :func:`point_folder_files`).
        meshes: mesh names (``cgal``) or categories (``meshfolder``); default: the built-in split.
        val_meshes: held-out mesh names (``cgal``).
        root: mesh folder for ``meshfolder``, folder of clean clouds for ``pointfolder``.
        num_points: clean points sampled per mesh (``pointfolder``: at most this many per cloud).
        patch_size: points per patch (the filter takes it from here).
        noise_range: noise std range, fraction of the bounding-sphere radius.
        patches_per_epoch, val_patches: dataset lengths.
    """

    def __init__(
        self,
        source: Literal["cgal", "pybullet", "meshfolder", "pointfolder"] = "cgal",
        meshes: list[str] | None = None,
        val_meshes: list[str] | None = None,
        root: str | None = None,
        num_points: int = 8192,
        patch_size: int = 256,
        noise_range: tuple[float, float] = (0.01, 0.03),
        patches_per_epoch: int = 2048,
        val_patches: int = 64,
        batch_size: int = 16,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if source not in ("cgal", "pybullet", "meshfolder", "pointfolder"):
            raise ValueError(f"FilterDataModule: unknown source {source!r}")
        if not 0 < noise_range[0] <= noise_range[1]:
            raise ValueError(f"FilterDataModule: noise_range must satisfy 0 < min <= max, got {noise_range}")
        self.save_hyperparameters()
        self.source, self.meshes, self.val_meshes, self.root = source, meshes, val_meshes, root
        self.num_points, self.patch_size, self.noise_range = num_points, patch_size, tuple(noise_range)
        self.patches_per_epoch, self.val_patches = patches_per_epoch, val_patches
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed

    def clouds(self, split: str) -> tuple[list[Mesh], list[np.ndarray]]:
        """The clean clouds of ``split`` (``train`` or ``test``) and the meshes they were sampled from
        (none for ``pointfolder``)."""
        if self.source == "pointfolder":
            files = point_folder_files(self.root, split)
            return [], point_folder_clouds(files, self.num_points, self.patch_size, self.seed + (split == "train"))
        names = self.meshes if split == "train" else self.val_meshes
        meshes = load_meshes(self.source, names, self.root, split if split == "train" else "test")
        clouds = [
            sample_mesh(m, self.num_points, rng=np.random.default_rng([self.seed, i, split == "train"]))
            for i, m in enumerate(meshes)
        ]
        return meshes, clouds

    def check_settings(self) -> None:
        """One-line errors for settings that cannot work (checked when the data is set up: an error
        raised while the command line builds the module would not be one line)."""
        if self.source in ("meshfolder", "pointfolder") and self.root is None:
            raise UserError(f"--data.init_args.source {self.source}: needs the folder, --data.init_args.root")
        if self.patch_size < 2 or self.num_points < self.patch_size:
            raise UserError(
                f"--data.init_args.patch_size {self.patch_size}: must be at least 2 and at most "
                f"--data.init_args.num_points {self.num_points}"
            )

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        self.check_settings()
        _, train = self.clouds("train")
        self.val_meshes_, val = self.clouds("test")
        self.train_set = NoisyPatchDataset(train, self.patches_per_epoch, self.patch_size, self.noise_range, self.seed)
        self.val_set = NoisyPatchDataset(val, self.val_patches, self.patch_size, self.noise_range, self.seed + 1)
        self.test_set = self.val_set


def noisy_copy(points: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """``points`` plus isotropic Gaussian noise of std ``sigma`` (same units as ``points``)."""
    rng = np.random.default_rng(seed)
    return (points + rng.normal(0, sigma, points.shape)).astype(np.float32)


def scan_paths() -> list[Path]:
    from difflab.pointcloud.data import sources

    return [sources.cgal_scan_path(n) for n in sources.CGAL_SCANS]
