r"""Shape collections for generation: ShapeNet / ModelNet mesh folders, folders of point files, and
the offline default (pybullet_data's procedural objects).

Every shape becomes one cloud of ``num_points`` surface points normalised to the unit sphere
(bounding-box centre at 0, farthest point at radius 1) and scaled by ``scale``.

Batch dict: ``x0`` (B, N, 3) float32 points; ``label`` (B,) long category index (0 when the data
has no categories).

Mesh-folder layout (ShapeNet / ModelNet style): ``root/<category>/<split>/<name>.{obj,off,ply}``
(ModelNet40's ``airplane/train/airplane_0001.off``), also ``root/<category>/<split>/<name>/model.obj``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from difflab.core.lightning import SplitDataModule
from difflab.pointcloud.io import (
    MESH_FORMATS,
    POINT_FORMATS,
    Mesh,
    PointCloudError,
    normalize_unit_sphere,
    read_mesh,
    read_points,
    resample,
    sample_mesh,
)


def mesh_folder_items(
    root: str | Path, split: str, categories: list[str] | None = None
) -> tuple[list[Path], list[int], list[str]]:
    """``(mesh paths, labels, category names)`` of ``root/<category>/<split>/**``."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: mesh folder not found")
    cats = categories or sorted(p.name for p in root.iterdir() if p.is_dir())
    paths, labels = [], []
    for c, cat in enumerate(cats):
        d = root / cat / split
        if not d.is_dir():
            raise FileNotFoundError(f"{d}: category {cat!r} has no {split!r} folder (layout root/category/split/mesh)")
        found = sorted(p for p in d.rglob("*") if p.suffix.lower() in MESH_FORMATS and p.is_file())
        paths += found
        labels += [c] * len(found)
    if not paths:
        raise FileNotFoundError(f"{root}: no meshes ({', '.join(MESH_FORMATS)}) under */{split}/")
    return paths, labels, cats


def clouds_from_meshes(meshes: list[Path | Mesh], num_points: int, seed: int = 0) -> np.ndarray:
    """One normalised ``(num_points, 3)`` surface sample per mesh (a path or a read mesh) -> (S, N, 3)."""
    out = []
    for i, m in enumerate(meshes):
        mesh = read_mesh(m) if isinstance(m, (str, Path)) else m
        pts = sample_mesh(mesh, num_points, rng=np.random.default_rng([seed, i]))
        out.append(normalize_unit_sphere(pts)[0])
    return np.stack(out)


def clouds_from_point_files(paths: list[Path], num_points: int, seed: int = 0) -> np.ndarray:
    out = []
    for i, p in enumerate(paths):
        pts = resample(read_points(p), num_points, rng=np.random.default_rng([seed, i]), source=str(p))
        out.append(normalize_unit_sphere(pts)[0])
    return np.stack(out)


class CloudDataset(Dataset):
    """Clouds ``(S, N, 3)`` and labels ``(S,)`` as ``{"x0", "label"}`` items."""

    def __init__(self, clouds: np.ndarray | torch.Tensor, labels: np.ndarray | list[int] | None = None) -> None:
        self.clouds = torch.as_tensor(np.asarray(clouds), dtype=torch.float32)
        lab = np.zeros(len(self.clouds), dtype=np.int64) if labels is None else np.asarray(labels, dtype=np.int64)
        self.labels = torch.as_tensor(lab)

    def __len__(self) -> int:
        return len(self.clouds)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x0": self.clouds[i], "label": self.labels[i]}


class ShapeDataModule(SplitDataModule):
    """Point clouds for generation.

    Args:
        source: ``pybullet`` (offline default: pybullet_data's procedural objects), ``meshfolder``
            (ShapeNet / ModelNet layout under ``root``) or ``pointfolder`` (``root`` holds point files;
            ``root/<split>/`` if present).
        root: folder for ``meshfolder`` / ``pointfolder``.
        categories: categories to use (``meshfolder``; default all). With several, labels are set and
            a class-conditional network gets ``num_classes = len(categories)``.
        num_points: points per cloud (too few in a point file: resampled with a warning).
        num_shapes: training shapes (``pybullet``: objects ``0 .. num_shapes - 1``; others: at most).
        num_val_shapes: held-out shapes (``pybullet``: the objects after the training ones).
        scale: factor applied after unit-sphere normalisation.
        batch_size, num_workers, seed: loader settings.
    """

    def __init__(
        self,
        source: Literal["pybullet", "meshfolder", "pointfolder"] = "pybullet",
        root: str | None = None,
        categories: list[str] | None = None,
        num_points: int = 512,
        num_shapes: int = 200,
        num_val_shapes: int = 32,
        scale: float = 1.0,
        batch_size: int = 16,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if source not in ("pybullet", "meshfolder", "pointfolder"):
            raise ValueError(f"ShapeDataModule: unknown source {source!r}")
        if source != "pybullet" and root is None:
            raise ValueError(f"ShapeDataModule: source {source!r} needs root")
        if num_points < 8:
            raise ValueError(f"ShapeDataModule: num_points must be >= 8, got {num_points}")
        self.save_hyperparameters()
        self.source, self.root, self.categories = source, root, categories
        self.num_points, self.num_shapes, self.num_val_shapes = num_points, num_shapes, num_val_shapes
        self.scale, self.batch_size, self.num_workers, self.seed = scale, batch_size, num_workers, seed
        self.class_names: list[str] = []

    def _load(self, split: str) -> CloudDataset:
        from difflab.pointcloud.data.sources import readable_pybullet_meshes

        if self.source == "pybullet":
            if split == "train":
                meshes, self._pybullet_next = readable_pybullet_meshes(self.num_shapes, 0)
            else:  # held-out objects start after the last training object
                start = getattr(self, "_pybullet_next", None)
                if start is None:
                    start = readable_pybullet_meshes(self.num_shapes, 0)[1]
                meshes, _ = readable_pybullet_meshes(self.num_val_shapes, start)
            return CloudDataset(clouds_from_meshes(meshes, self.num_points, self.seed) * self.scale)
        if self.source == "meshfolder":
            paths, labels, self.class_names = mesh_folder_items(
                self.root, split if split == "train" else "test", self.categories
            )
            if split != "train" and not paths:
                paths, labels, self.class_names = mesh_folder_items(self.root, "train", self.categories)
            limit = self.num_shapes if split == "train" else self.num_val_shapes
            rng = np.random.default_rng(self.seed)
            keep = np.sort(rng.permutation(len(paths))[:limit])
            paths, labels = [paths[i] for i in keep], [labels[i] for i in keep]
            return CloudDataset(clouds_from_meshes(paths, self.num_points, self.seed) * self.scale, labels)
        root = Path(self.root)
        d = root / split if (root / split).is_dir() else root
        files = sorted(p for p in d.iterdir() if p.suffix.lower() in POINT_FORMATS + (".off", ".obj"))
        if not files:
            raise FileNotFoundError(f"{d}: no point files ({', '.join(POINT_FORMATS)})")
        if d == root:  # no split folders: hold out the last files
            nv = min(self.num_val_shapes, max(1, len(files) // 5))
            files = files[:-nv] if split == "train" else files[-nv:]
        return CloudDataset(clouds_from_point_files(files, self.num_points, self.seed) * self.scale)

    @property
    def num_classes(self) -> int:
        return len(self.class_names) if len(self.class_names) > 1 else 0

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set = self._load("train")
            self.val_set = self._load("val")
            self.test_set = self.val_set


class PairsDataModule(SplitDataModule):
    """(noise, sample) pairs from a flow's ODE for reflow and distillation (``make-pairs`` writes them).

    The ``.pt`` file holds ``noise`` (S, N, 3), ``sample`` (S, N, 3) and optionally ``label`` (S,).
    Batch dict: ``x0`` (B, N, 3) the ODE sample (t = 0), ``x1`` (B, N, 3) its noise (t = 1), ``label`` (B,).

    Args:
        pairs: the ``.pt`` file.
        val_fraction: share of pairs held out.
    """

    def __init__(
        self, pairs: str, val_fraction: float = 0.1, batch_size: int = 16, num_workers: int = 0, seed: int = 0
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.pairs, self.val_fraction = pairs, val_fraction
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        path = Path(self.pairs)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: pairs file not found (write it with: difflab-pointcloud make-pairs)")
        d = torch.load(path, map_location="cpu", weights_only=True)
        for key in ("noise", "sample"):
            if key not in d:
                raise PointCloudError(f"{path}: pairs file has no {key!r} entry")
        n = len(d["noise"])
        nv = max(1, int(round(self.val_fraction * n)))
        label = d.get("label", torch.zeros(n, dtype=torch.long))
        self.train_set = PairDataset(d["noise"][nv:], d["sample"][nv:], label[nv:])
        self.val_set = PairDataset(d["noise"][:nv], d["sample"][:nv], label[:nv])
        self.test_set = self.val_set


class PairDataset(Dataset):
    def __init__(self, noise: torch.Tensor, sample: torch.Tensor, label: torch.Tensor) -> None:
        self.noise, self.sample, self.label = noise.float(), sample.float(), label.long()

    def __len__(self) -> int:
        return len(self.noise)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x0": self.sample[i], "x1": self.noise[i], "label": self.label[i]}
