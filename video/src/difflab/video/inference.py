"""Loading a trained detector and the domain verb ``detect``: ActivityNet results JSON for feature files.

Checkpoints are read by core's one loader (:func:`difflab.core.lightning.load_checkpoint`, with
``weights_only=True``); the command line in :mod:`difflab.video.cli` only parses arguments.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch


def load_detector(path: str | Path):
    """``(model, info)`` from a checkpoint written by ``fit`` (DiffTAD or DeterministicTAD); ``info`` holds
    ``classes``, ``feature_spec`` and ``default_fps`` saved with it."""
    from difflab.core.lightning import load_checkpoint, read_checkpoint
    from difflab.core.lightning.checkpoint import checkpoint_file
    from difflab.video.models import DeterministicTAD, DiffTAD

    path = checkpoint_file(path)
    model = load_checkpoint(path, (DiffTAD, DeterministicTAD))
    return model, dict(read_checkpoint(path).get("difflab_video") or {})


def feature_item(path: Path, spec: dict[str, Any], fps: float, input_dim: int) -> dict[str, Any]:
    """A :func:`collate_videos` item for a bare feature file (no annotation: duration from its length)."""
    from difflab.video.data.annotations import AnnotationError

    feats = np.load(path)
    vid = path.stem
    if feats.ndim != 2:
        raise AnnotationError(f"video {vid!r}: features {path} must be 2-D (T, C), got shape {feats.shape}")
    if spec.get("transpose"):
        feats = feats.T
    if feats.shape[1] != input_dim:
        raise AnnotationError(
            f"video {vid!r}: features {path} have {feats.shape[1]} channels, the model expects "
            f"{input_dim} (shape {feats.shape})"
        )
    if not np.isfinite(feats).all():
        raise AnnotationError(f"video {vid!r}: features {path} hold NaN or inf values")
    stride, frames = float(spec.get("feat_stride", 4.0)), float(spec.get("num_frames", 8.0))
    length = feats.shape[0]
    duration = ((length - 1) * stride + frames) / fps
    return {
        "feats": torch.from_numpy(feats.astype(np.float32)),
        "segments": torch.zeros(0, 2),
        "labels": torch.zeros(0, dtype=torch.long),
        "video_id": vid,
        "meta": {
            "duration": duration,
            "fps": fps,
            "length": length,
            "offset": 0,
            "feat_stride": stride,
            "num_frames": frames,
            "resize_to": None,
            "gt": [],
        },
    }


def detect_files(
    model,
    files: list[Path],
    info: dict[str, Any],
    *,
    fps: float | None = None,
    steps: int | None = None,
    selective: bool | None = None,
    sampler: str | None = None,
    batch_size: int = 8,
    seed: int = 0,
) -> dict[str, list[dict]]:
    from difflab.core.progress import progress
    from difflab.video.data.datamodule import collate_videos

    spec = dict(info.get("feature_spec") or {})
    fps = fps or info.get("default_fps") or 30.0
    gen = torch.Generator().manual_seed(seed)
    results: dict[str, list[dict]] = {}
    items = [feature_item(f, spec, float(fps), model.network.input_dim) for f in files]
    for i in progress(range(0, len(items), batch_size), "detect", unit="batches"):
        batch = collate_videos(items[i : i + batch_size])
        options = {}
        if hasattr(model, "eval_proposals"):
            options = {"steps": steps, "selective_conditioning": selective, "sampler": sampler}
        results.update(model.detect(batch, generator=gen, **options))
    return results


def feature_files(features: Path) -> list[Path]:
    """``features`` itself, or the ``.npy`` files of the folder ``features``."""
    from difflab.core.errors import UserError

    if features.is_dir():
        files = sorted(features.glob("*.npy"))
        if not files:
            raise UserError(f"{features}: no .npy feature files in this folder")
        return files
    if features.is_file():
        return [features]
    raise UserError(f"{features}: no such file or folder")


def detect(
    features: Path,
    ckpt: str | Path,
    *,
    out: Path = Path("detections.json"),
    steps: int | None = None,
    selective: bool | None = None,
    sampler: str | None = None,
    fps: float | None = None,
    seed: int = 0,
) -> int:
    """Detect actions in a ``(T, C)`` feature file or a folder of them; writes ActivityNet results JSON."""
    from difflab.video.metrics import results_json

    files = feature_files(features)
    model, info = load_detector(ckpt)
    results = detect_files(model, files, info, fps=fps, steps=steps, selective=selective, sampler=sampler, seed=seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results_json(results), indent=1))
    n = sum(len(v) for v in results.values())
    print(f"artifact: {out} | ActivityNet results JSON: {n} detections in {len(results)} videos")
    return 0


__all__ = ["detect", "detect_files", "feature_files", "feature_item", "load_detector"]
