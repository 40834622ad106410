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

from difflab.core.progress import artifact


def load_detector(path: str | Path):
    """``(model, info)`` from a checkpoint written by ``fit`` (DiffTAD or DeterministicTAD); ``info`` holds
    ``classes``, ``feature_spec`` and ``default_fps`` saved with it."""
    from difflab.core.lightning import load_checkpoint, read_checkpoint
    from difflab.core.lightning.checkpoint import checkpoint_file
    from difflab.video.models import DeterministicTAD, DiffTAD

    path = checkpoint_file(path)
    model = load_checkpoint(path, (DiffTAD, DeterministicTAD))
    return model, dict(read_checkpoint(path).get("difflab_video") or {})


DEFAULT_NAME = "difftad_mocap"
"""The shipped default ``detect`` uses without ``--ckpt`` (``python scripts/pretrain.py video``)."""

WINDOW = 256
"""Feature steps per detection window of a long video (the training crop length of the shipped configs)."""


def load_features(path: Path, spec: dict[str, Any], input_dim: int) -> np.ndarray:
    """The ``(T, C)`` features of ``path``, memory-mapped (a long file is read window by window), checked."""
    from difflab.video.data.annotations import AnnotationError

    feats = np.load(path, mmap_mode="r")
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
    if feats.shape[0] < 1:
        raise AnnotationError(f"video {vid!r}: features {path} are empty (shape {feats.shape})")
    return feats


def feature_item(
    path: Path, spec: dict[str, Any], fps: float, input_dim: int, *, start: int = 0, stop: int | None = None
) -> dict[str, Any]:
    """A :func:`collate_videos` item for a bare feature file (no annotation: duration from its length),
    or for its window ``[start, stop)`` of feature steps (``meta["offset"] = start``; times stay those
    of the whole video)."""
    from difflab.video.data.annotations import AnnotationError

    all_feats = load_features(path, spec, input_dim)
    total = all_feats.shape[0]
    feats = np.array(all_feats[start : total if stop is None else stop], dtype=np.float32)  # a writable copy
    vid = path.stem
    if not np.isfinite(feats).all():
        where = "" if start == 0 and stop is None else f" (feature steps {start}-{start + len(feats)})"
        raise AnnotationError(f"video {vid!r}: features {path} hold NaN or inf values{where}")
    stride, frames = float(spec.get("feat_stride", 4.0)), float(spec.get("num_frames", 8.0))
    duration = ((total - 1) * stride + frames) / fps
    return {
        "feats": torch.from_numpy(feats),
        "segments": torch.zeros(0, 2),
        "labels": torch.zeros(0, dtype=torch.long),
        "video_id": vid,
        "meta": {
            "duration": duration,
            "fps": fps,
            "length": len(feats),
            "offset": start,
            "feat_stride": stride,
            "num_frames": frames,
            "resize_to": None,
            "gt": [],
        },
    }


def window_starts(length: int, window: int) -> list[int]:
    """Starts of the windows of ``window`` steps covering ``[0, length)`` with half overlap:
    ``0, W/2, W, ...``, the last one ending at ``length``."""
    hop = max(window // 2, 1)
    starts = list(range(0, max(length - window, 0) + 1, hop))
    if starts[-1] + window < length:
        starts.append(length - window)
    return starts


def window_cores(starts: list[int], window: int, length: int) -> list[tuple[float, float]]:
    """The part ``[lo, hi)`` of the video each window answers for: every step belongs to the window whose
    centre is nearest (boundaries halfway between consecutive centres), so a detection is kept by exactly
    one window (the one holding its centre) and overlapping windows give no duplicates."""
    centres = [s + window / 2 for s in starts]
    bounds = [0.0, *((a + b) / 2 for a, b in zip(centres, centres[1:])), float(length)]
    return list(zip(bounds[:-1], bounds[1:]))


def detect_long(
    model, path: Path, info: dict[str, Any], fps: float, options: dict[str, Any], gen, *, window: int, batch_size: int
) -> list[dict]:
    """Detections of one long feature file by overlapping windows of ``window`` steps (:func:`window_starts`).

    Each window is detected on its own (``(B, window, C)`` batches), its proposals with centres outside
    its core (:func:`window_cores`) are dropped, and the rest are post-processed (per-class NMS within the
    window, at most ``max_detections`` per window) in seconds of the whole video. Memory holds one batch of
    windows and the detections, so it does not grow with the video beyond the output.
    """
    from difflab.core.progress import StepProgress
    from difflab.video.data.datamodule import collate_videos
    from difflab.video.models.common import postprocess

    spec = dict(info.get("feature_spec") or {})
    length = load_features(path, spec, model.network.input_dim).shape[0]
    starts = window_starts(length, window)
    cores = window_cores(starts, window, length)
    out: list[dict] = []
    bar = StepProgress(f"detect {path.stem}", len(starts), unit="windows")
    for i in range(0, len(starts), batch_size):
        group = list(range(i, min(i + batch_size, len(starts))))
        items = [
            feature_item(path, spec, fps, model.network.input_dim, start=starts[j], stop=starts[j] + window)
            for j in group
        ]
        batch = collate_videos(items)
        with torch.no_grad():
            model.eval()
            raw = model.raw_detections(batch, gen, **options)
        for j, meta, (seg, prob) in zip(group, batch["meta"], raw):
            centre = seg[:, 0] * meta["length"] + meta["offset"]
            keep = (centre >= cores[j][0]) & (centre < cores[j][1])
            out += postprocess(
                seg[keep],
                prob[keep],
                meta,
                model.class_names(prob.shape[1]),
                nms=model.nms,
                nms_iou=model.nms_iou,
                max_detections=model.max_detections,
            )
        bar.update(len(group))
    bar.close()
    return sorted(out, key=lambda d: -d["score"])


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
    window: int = WINDOW,
) -> dict[str, list[dict]]:
    """``{video_id: detections}``: files of at most ``window`` feature steps in batches, longer ones by
    overlapping windows (:func:`detect_long`)."""
    from difflab.core.progress import progress
    from difflab.video.data.datamodule import collate_videos

    spec = dict(info.get("feature_spec") or {})
    fps = float(fps or info.get("default_fps") or 30.0)
    gen = torch.Generator().manual_seed(seed)
    options = {}
    if hasattr(model, "eval_proposals"):
        options = {"steps": steps, "selective_conditioning": selective, "sampler": sampler}
    lengths = {f: load_features(f, spec, model.network.input_dim).shape[0] for f in files}
    short = [f for f in files if lengths[f] <= window]
    results: dict[str, list[dict]] = {}
    for i in progress(range(0, len(short), batch_size), "detect", unit="batches") if short else []:
        batch = collate_videos([feature_item(f, spec, fps, model.network.input_dim) for f in short[i : i + batch_size]])
        results.update(model.detect(batch, generator=gen, **options))
    for f in files:
        if lengths[f] > window:
            results[f.stem] = detect_long(model, f, info, fps, options, gen, window=window, batch_size=batch_size)
    return {f.stem: results[f.stem] for f in files}


def feature_files(features: Path) -> list[Path]:
    """``features`` itself, or the ``.npy`` files of the folder ``features``."""
    from difflab.core.errors import UserError
    from difflab.core.verbs import folder_inputs

    if features.is_dir():
        return folder_inputs(features, (".npy",), "feature files")
    if features.is_file():
        return [features]
    raise UserError(f"{features}: no such file or folder")


def detector_checkpoint(ckpt: str | Path | None) -> Path:
    """The checkpoint file of ``ckpt`` (a run folder: its newest ``last.ckpt``), or without one the shipped
    default :data:`DEFAULT_NAME` (a note says so)."""
    from difflab.core.lightning.checkpoint import checkpoint_file
    from difflab.core.lightning.pretrained import checkpoint_or_default
    from difflab.core.progress import note

    path = checkpoint_file(checkpoint_or_default(ckpt, "video", DEFAULT_NAME))  # a run folder: its last.ckpt
    if ckpt is None or str(ckpt) == "":
        note(f"--ckpt not given: using the shipped pretrained detector {path.name} (trained on the mocap default data)")
    return path


def detect(
    features: Path,
    ckpt: str | Path | None = None,
    *,
    out: Path = Path("detections.json"),
    steps: int | None = None,
    selective: bool | None = None,
    sampler: str | None = None,
    fps: float | None = None,
    seed: int = 0,
    window: int = WINDOW,
) -> int:
    """Detect actions in a ``(T, C)`` feature file or a folder of them; writes ActivityNet results JSON.

    Without ``ckpt`` the shipped default; ``steps`` / ``sampler`` / ``selective`` not given fall back to the
    sampling recorded with a pretrained checkpoint (``steps`` only when the sampler is the recorded one),
    then to the model's own. Files longer than ``window`` feature steps go by overlapping windows."""
    from difflab.core.lightning.pretrained import recommended_sampling
    from difflab.video.metrics import results_json

    files = feature_files(features)
    ckpt = detector_checkpoint(ckpt)
    rec = recommended_sampling(ckpt)
    if rec and (sampler is None or sampler == rec.get("sampler")):
        sampler = sampler or rec.get("sampler")
        steps = steps if steps is not None else rec.get("steps")
        selective = selective if selective is not None else rec.get("selective_conditioning")
    model, info = load_detector(ckpt)
    results = detect_files(
        model, files, info, fps=fps, steps=steps, selective=selective, sampler=sampler, seed=seed, window=window
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results_json(results), indent=1))
    n = sum(len(v) for v in results.values())
    artifact(out, f"ActivityNet results JSON: {n} detections in {len(results)} videos")
    return 0


__all__ = [
    "DEFAULT_NAME",
    "WINDOW",
    "detect",
    "detect_files",
    "detect_long",
    "detector_checkpoint",
    "feature_files",
    "feature_item",
    "load_detector",
    "load_features",
    "window_cores",
    "window_starts",
]
