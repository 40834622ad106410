r"""Temporal action detection datasets and data modules.

Batch dict (:func:`collate_videos`), ``B`` videos padded to the longest ``T`` of the batch:

===============  ===========  ===================================================================
key              shape        meaning
===============  ===========  ===================================================================
``feats``        (B, T, C)    features, zero-padded
``mask``         (B, T)       True on real time steps
``lengths``      (B,)         T of each video
``gt_segments``  (B, M, 2)    ground truth (centre, width), normalised by the video's T, padded
``gt_labels``    (B, M)       class index (long), -1 on padding
``gt_valid``     (B, M)       True on real segments
``video_id``     list[str]    ids
``meta``         list[dict]   ``duration``, ``fps`` and ``length`` for converting back to seconds
===============  ===========  ===================================================================
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from difflab.core.lightning import SplitDataModule
from difflab.video.data.annotations import AnnotationError, FeatureSpec, VideoRecord, class_list, read_annotations


class TADDataset(Dataset):
    """Videos of one or more subsets with their features and normalised (centre, width) segments.

    Args:
        records: parsed annotations (:func:`read_annotations`).
        spec: where features live and how they sit on the time axis.
        classes: the class list; a label outside it raises :class:`AnnotationError` naming the video.
        max_seq_len: longer videos are cropped to a random window of this many steps when ``crop``
            (training) and kept whole otherwise.
        crop: random cropping (training) instead of keeping whole videos.
        seed: seed of the crops.
        preload: read all feature files once (small data sets).
    """

    def __init__(
        self,
        records: list[VideoRecord],
        spec: FeatureSpec,
        classes: list[str],
        *,
        max_seq_len: int | None = None,
        crop: bool = False,
        seed: int = 0,
        preload: bool = True,
    ) -> None:
        self.records, self.spec, self.classes = records, spec, list(classes)
        self.index = {c: i for i, c in enumerate(self.classes)}
        self.max_seq_len, self.crop = max_seq_len, crop
        self.rng = np.random.default_rng(seed)
        for r in records:
            bad = sorted(set(r.labels) - set(self.index))
            if bad:
                raise AnnotationError(f"video {r.video_id!r}: unknown labels {bad} (known classes: {self.classes})")
        self.cache: dict[str, np.ndarray] = {}
        if preload:
            first_dim = None
            for r in records:
                f = spec.load(r.video_id)
                if first_dim is None:
                    first_dim = f.shape[1]
                elif f.shape[1] != first_dim:
                    raise AnnotationError(
                        f"video {r.video_id!r}: features have {f.shape[1]} channels, the first video has {first_dim}"
                    )
                self.cache[r.video_id] = f

    def __len__(self) -> int:
        return len(self.records)

    def features(self, video_id: str) -> np.ndarray:
        f = self.cache.get(video_id)
        return f if f is not None else self.spec.load(video_id)

    def __getitem__(self, i: int) -> dict[str, Any]:
        r = self.records[i]
        feats = self.features(r.video_id)
        length = feats.shape[0]
        grid = self.spec.sec_to_grid(r.segments, r.fps, r.duration, length).reshape(-1, 2)
        labels = np.asarray([self.index[lab] for lab in r.labels], dtype=np.int64)
        start = 0
        if self.max_seq_len is not None and length > self.max_seq_len and self.crop:
            start = int(self.rng.integers(0, length - self.max_seq_len + 1))
            feats = feats[start : start + self.max_seq_len]
            grid = grid - start
            length = self.max_seq_len
        grid = grid.clip(0, length)
        keep = (grid[:, 1] - grid[:, 0]) > 1e-3
        grid, labels = grid[keep], labels[keep]
        se = grid / length
        seg = np.stack([(se[:, 0] + se[:, 1]) / 2, se[:, 1] - se[:, 0]], axis=1) if len(se) else np.zeros((0, 2))
        return {
            "feats": torch.from_numpy(np.ascontiguousarray(feats)),
            "segments": torch.as_tensor(seg, dtype=torch.float32),
            "labels": torch.as_tensor(labels),
            "video_id": r.video_id,
            "meta": {
                "duration": r.duration,
                "fps": r.fps,
                "length": length,
                "offset": start,
                "feat_stride": self.spec.feat_stride,
                "num_frames": self.spec.num_frames,
                "resize_to": self.spec.resize_to,
                "gt": [{"label": lab, "segment": [float(s), float(e)]} for (s, e), lab in zip(r.segments, r.labels)],
            },
        }


def collate_videos(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Pad a list of :class:`TADDataset` items into the batch dict of the module docstring."""
    b = len(items)
    t = max(it["feats"].shape[0] for it in items)
    c = items[0]["feats"].shape[1]
    m = max(1, max(it["segments"].shape[0] for it in items))
    feats = torch.zeros(b, t, c)
    mask = torch.zeros(b, t, dtype=torch.bool)
    segs = torch.zeros(b, m, 2)
    labels = torch.full((b, m), -1, dtype=torch.long)
    valid = torch.zeros(b, m, dtype=torch.bool)
    for i, it in enumerate(items):
        n, k = it["feats"].shape[0], it["segments"].shape[0]
        feats[i, :n] = it["feats"]
        mask[i, :n] = True
        segs[i, :k] = it["segments"]
        labels[i, :k] = it["labels"]
        valid[i, :k] = True
    return {
        "feats": feats,
        "mask": mask,
        "lengths": mask.sum(1),
        "gt_segments": segs,
        "gt_labels": labels,
        "gt_valid": valid,
        "video_id": [it["video_id"] for it in items],
        "meta": [it["meta"] for it in items],
    }


class TADDataModule(SplitDataModule):
    """Temporal action detection data in the ActionFormer / ActivityNet layout.

    Args:
        annotation_file: the annotation JSON (see :mod:`difflab.video.data.annotations`).
        feature_dir: folder of the per-video feature files.
        train_subsets, val_subsets, test_subsets: subset names of each split (THUMOS14:
            ``[validation]`` / ``[test]``; ActivityNet: ``[training]`` / ``[validation]``).
        classes: class list (default: the sorted labels of the training subsets).
        feat_stride, num_frames, default_fps, resize_to, prefix, suffix, transpose, input_dim:
            see :class:`~difflab.video.data.annotations.FeatureSpec`.
        max_seq_len: training crop length in feature steps.
        batch_size, eval_batch_size, num_workers, seed: loader settings.
    """

    def __init__(
        self,
        annotation_file: str = "outputs/data/video/mocap/annotations.json",
        feature_dir: str | None = None,
        train_subsets: list[str] | None = None,
        val_subsets: list[str] | None = None,
        test_subsets: list[str] | None = None,
        classes: list[str] | None = None,
        feat_stride: float = 4.0,
        num_frames: float = 8.0,
        default_fps: float | None = 30.0,
        resize_to: int | None = None,
        prefix: str = "",
        suffix: str = ".npy",
        transpose: bool = False,
        input_dim: int | None = None,
        max_seq_len: int = 256,
        batch_size: int = 8,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if batch_size < 1 or max_seq_len < 1:
            raise ValueError(f"TADDataModule: batch_size and max_seq_len must be >= 1, got {batch_size}, {max_seq_len}")
        self.save_hyperparameters()
        self.annotation_file = annotation_file
        self.feature_dir = feature_dir
        self.train_subsets = list(train_subsets or ["training"])
        self.val_subsets = list(val_subsets or ["validation"])
        self.test_subsets = list(test_subsets or ["testing"])
        self.classes = list(classes) if classes else None
        self.spec_kwargs = dict(
            feat_stride=feat_stride,
            num_frames=num_frames,
            prefix=prefix,
            suffix=suffix,
            transpose=transpose,
            input_dim=input_dim,
            resize_to=resize_to,
        )
        self.default_fps = default_fps
        self.max_seq_len = max_seq_len
        self.batch_size, self.eval_batch_size, self.num_workers, self.seed = (
            batch_size,
            eval_batch_size,
            num_workers,
            seed,
        )
        self.collate_fn = collate_videos
        self.spec: FeatureSpec | None = None

    def prepare_files(self) -> None:
        """Hook for subclasses that generate their data (the default mocap set)."""

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        self.prepare_files()
        path = Path(self.annotation_file)
        records = read_annotations(path, self.default_fps)
        self.spec = FeatureSpec(self.feature_dir or str(path.parent / "features"), **self.spec_kwargs)
        if self.classes is None:
            self.classes = class_list(records, self.train_subsets)
        if not self.classes:
            raise AnnotationError(f"{path}: no labelled segments in the training subsets {self.train_subsets}")

        def pick(subsets: list[str]) -> list[VideoRecord]:
            chosen = [r for r in records if r.subset in subsets]
            if not chosen:
                found = sorted({r.subset for r in records})
                raise AnnotationError(f"{path}: no videos in subsets {subsets} (the file has {found})")
            return chosen

        self.train_set = TADDataset(
            pick(self.train_subsets), self.spec, self.classes, max_seq_len=self.max_seq_len, crop=True, seed=self.seed
        )
        self.val_set = TADDataset(pick(self.val_subsets), self.spec, self.classes)
        self.test_set = TADDataset(pick(self.test_subsets), self.spec, self.classes)

    @property
    def num_classes(self) -> int:
        self.setup()
        return len(self.classes)

    @property
    def input_dim(self) -> int:
        self.setup()
        return int(self.train_set[0]["feats"].shape[1])

    def ground_truth(self, split: str = "test") -> dict[str, list[dict[str, Any]]]:
        """``{video_id: [{"label", "segment": [s, e]}]}`` of a split, in seconds."""
        self.setup()
        ds = {"train": self.train_set, "val": self.val_set, "test": self.test_set}[split]
        return {
            r.video_id: [{"label": lab, "segment": [float(s), float(e)]} for (s, e), lab in zip(r.segments, r.labels)]
            for r in ds.records
        }


class MocapTADDataModule(TADDataModule):
    """The offline default: mocap action videos written by :func:`~difflab.video.data.mocap.make_dataset`.

    The files are generated into ``root`` on first use (seconds) unless present with the same settings.

    Args:
        root: folder of ``annotations.json`` and ``features/``.
        n_train, n_val, n_test: videos per subset.
        actions: action classes (default: all 14 DeepMimic actions).
        num_actions: (min, max) action instances per video.
        render: features from frames rendered by pybullet instead of poses (slower).
        data_seed: seed of the composition.
        **kwargs: :class:`TADDataModule` options (batch size, ...).
    """

    def __init__(
        self,
        root: str = "outputs/data/video/mocap",
        n_train: int = 160,
        n_val: int = 32,
        n_test: int = 32,
        actions: list[str] | None = None,
        num_actions: tuple[int, int] = (2, 4),
        render: bool = False,
        data_seed: int = 0,
        max_seq_len: int = 256,
        batch_size: int = 8,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        from difflab.video.data.mocap import ACTIONS

        super().__init__(
            annotation_file=str(Path(root) / "annotations.json"),
            train_subsets=["training"],
            val_subsets=["validation"],
            test_subsets=["testing"],
            classes=list(actions or ACTIONS),
            feat_stride=4.0,
            num_frames=8.0,
            default_fps=30.0,
            max_seq_len=max_seq_len,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            seed=seed,
        )
        self.save_hyperparameters()
        self.root = Path(root)
        self.gen = dict(
            n_train=n_train,
            n_val=n_val,
            n_test=n_test,
            classes=list(actions or ACTIONS),
            num_actions=tuple(num_actions),
            render=render,
            seed=data_seed,
        )

    def prepare_files(self) -> None:
        import json

        from difflab.video.data.mocap import make_dataset

        path = self.root / "annotations.json"
        want = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.gen.items()}
        if path.is_file():
            try:
                have = json.loads(path.read_text()).get("meta", {}).get("settings")
            except json.JSONDecodeError:
                have = None
            if have == want:
                return
        make_dataset(self.root, **self.gen)
        data = json.loads(path.read_text())
        data["meta"]["settings"] = want
        path.write_text(json.dumps(data, indent=1))

    def prepare_data(self) -> None:
        self.prepare_files()


def batch_to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in batch.items()}


__all__ = ["MocapTADDataModule", "TADDataModule", "TADDataset", "batch_to_device", "collate_videos"]
