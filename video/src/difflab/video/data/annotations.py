r"""ActionFormer / ActivityNet annotation JSON and per-video ``.npy`` features.

Annotation file::

    {"database": {VIDEO_ID: {"subset": "training"|"validation"|"testing"|...,
                              "duration": seconds, "fps": frames per second (optional),
                              "annotations": [{"label": str, "segment": [start_s, end_s]}, ...]}}}

Features: ``FEATURE_DIR/<prefix><VIDEO_ID><suffix>`` (default ``<VIDEO_ID>.npy``), a ``(T, C)``
array (``transpose=True`` for ``(C, T)`` releases).

Time axis, as in ActionFormer: feature ``i`` covers frames ``[i * feat_stride, i * feat_stride +
num_frames)``, so its centre is at frame ``i * feat_stride + num_frames / 2`` and

.. math:: \mathrm{grid} = \mathrm{sec} \cdot \mathrm{fps} / \mathrm{feat\_stride}
          - 0.5 \cdot \mathrm{num\_frames} / \mathrm{feat\_stride},
          \qquad \mathrm{sec} = (\mathrm{grid} + 0.5\,\mathrm{num\_frames}/\mathrm{feat\_stride})
          \cdot \mathrm{feat\_stride} / \mathrm{fps}.

THUMOS14 I3D: ``feat_stride 4, num_frames 16, default_fps 30``. ActivityNet releases whose features
were resized to a fixed length (``resize_to``, e.g. 192 or 128) use ``grid = sec / duration * T``
instead. Segments are then normalised by ``T`` to ``[0, 1]`` (as (centre, width) for the model).

Errors name the video and the problem: a segment outside ``[0, duration]`` (tolerance ``tol_s``),
an end before its start, a label not in the class list, a missing feature file, and a feature array
that is not 2-D, has the wrong channel count, is empty or holds non-finite values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from difflab.core.errors import UserError


class AnnotationError(UserError, ValueError):
    """Bad annotation or feature input; the message names the video and the problem (a user error:
    the command line prints it in one line)."""


@dataclass
class VideoRecord:
    """One video of the annotation file (segments in seconds)."""

    video_id: str
    subset: str
    duration: float
    fps: float
    segments: np.ndarray  # (n, 2) seconds
    labels: list[str] = field(default_factory=list)


def read_annotations(path: str | Path, default_fps: float | None = None, tol_s: float = 0.05) -> list[VideoRecord]:
    """Parse and check an ActivityNet/ActionFormer annotation JSON (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"{path}: annotation file does not exist")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise AnnotationError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("database"), dict):
        raise AnnotationError(f"{path}: expected a top-level object with a 'database' mapping")
    records = []
    for vid, entry in data["database"].items():
        where = f"{path}: video {vid!r}"
        for key in ("subset", "duration"):
            if key not in entry:
                raise AnnotationError(f"{where}: missing field {key!r}")
        duration = float(entry["duration"])
        if not duration > 0:
            raise AnnotationError(f"{where}: duration must be > 0, got {entry['duration']!r}")
        fps = entry.get("fps", default_fps)
        if fps is None or not float(fps) > 0:
            raise AnnotationError(f"{where}: no positive 'fps' and no default_fps given (got {fps!r})")
        segs, labels = [], []
        for k, ann in enumerate(entry.get("annotations", [])):
            if "segment" not in ann or "label" not in ann:
                raise AnnotationError(f"{where}: annotation {k} needs 'segment' and 'label', got keys {sorted(ann)}")
            s, e = (float(v) for v in ann["segment"])
            if not (np.isfinite(s) and np.isfinite(e)) or e <= s:
                raise AnnotationError(
                    f"{where}: annotation {k} ({ann['label']}) has segment [{s}, {e}] with end <= start"
                )
            if s < -tol_s or e > duration + tol_s:
                raise AnnotationError(
                    f"{where}: annotation {k} ({ann['label']}) segment [{s}, {e}] lies outside the video "
                    f"[0, {duration}]"
                )
            segs.append((max(s, 0.0), min(e, duration)))
            labels.append(str(ann["label"]))
        records.append(
            VideoRecord(
                str(vid),
                str(entry["subset"]),
                duration,
                float(fps),
                np.asarray(segs, dtype=np.float64).reshape(-1, 2),
                labels,
            )
        )
    return records


@dataclass
class FeatureSpec:
    """How feature files are found and placed on the time axis (see the module docstring)."""

    feature_dir: str | Path
    feat_stride: float = 4.0
    num_frames: float = 16.0
    prefix: str = ""
    suffix: str = ".npy"
    transpose: bool = False
    input_dim: int | None = None
    resize_to: int | None = None

    def path(self, video_id: str) -> Path:
        return Path(self.feature_dir) / f"{self.prefix}{video_id}{self.suffix}"

    def load(self, video_id: str) -> np.ndarray:
        """The ``(T, C)`` float32 features of ``video_id`` (resized when ``resize_to``), checked."""
        path = self.path(video_id)
        if not path.is_file():
            raise AnnotationError(f"video {video_id!r}: feature file {path} is missing")
        feats = np.load(path)
        if feats.ndim != 2:
            raise AnnotationError(f"video {video_id!r}: features {path} must be 2-D (T, C), got shape {feats.shape}")
        if self.transpose:
            feats = feats.T
        if feats.shape[0] < 1:
            raise AnnotationError(f"video {video_id!r}: features {path} are empty, shape {feats.shape}")
        if self.input_dim is not None and feats.shape[1] != self.input_dim:
            raise AnnotationError(
                f"video {video_id!r}: features {path} have {feats.shape[1]} channels, expected {self.input_dim} "
                f"(shape {feats.shape}; set transpose for (C, T) files)"
            )
        if not np.isfinite(feats).all():
            raise AnnotationError(f"video {video_id!r}: features {path} hold NaN or inf values")
        feats = feats.astype(np.float32)
        if self.resize_to is not None and feats.shape[0] != self.resize_to:
            src = np.linspace(0, 1, feats.shape[0])
            dst = np.linspace(0, 1, self.resize_to)
            feats = np.stack([np.interp(dst, src, feats[:, c]) for c in range(feats.shape[1])], 1).astype(np.float32)
        return feats

    def sec_to_grid(self, sec: np.ndarray, fps: float, duration: float, length: int) -> np.ndarray:
        if self.resize_to is not None:
            return np.asarray(sec) / duration * length
        return np.asarray(sec) * fps / self.feat_stride - 0.5 * self.num_frames / self.feat_stride

    def grid_to_sec(self, grid: np.ndarray, fps: float, duration: float, length: int) -> np.ndarray:
        if self.resize_to is not None:
            return np.asarray(grid) / length * duration
        return (np.asarray(grid) + 0.5 * self.num_frames / self.feat_stride) * self.feat_stride / fps


def class_list(records: list[VideoRecord], subsets: list[str]) -> list[str]:
    """Sorted labels appearing in ``subsets``."""
    return sorted({lab for r in records if r.subset in subsets for lab in r.labels})


__all__ = ["AnnotationError", "FeatureSpec", "VideoRecord", "class_list", "read_annotations"]
