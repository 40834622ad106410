"""``difflab-video detect``: run a trained detector on feature files and write ActivityNet results JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch


def load_detector(path: str | Path):
    """``(model, info)`` from a checkpoint written by ``fit`` (DiffTAD or DeterministicTAD); ``info`` holds
    ``classes``, ``feature_spec`` and ``default_fps`` saved with it."""
    from difflab.video.models import DeterministicTAD, DiffTAD

    ckpt = torch.load(str(path), map_location="cpu", weights_only=False)
    class_path = (ckpt.get("hyper_parameters") or {}).get("_class_path", "")
    cls = DeterministicTAD if class_path.endswith("DeterministicTAD") else DiffTAD
    model = cls.load_from_checkpoint(str(path), map_location="cpu")
    model.eval()
    return model, dict(ckpt.get("difflab_video") or {})


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
    batch_size: int = 8,
    seed: int = 0,
) -> dict[str, list[dict]]:
    from difflab.video.data.datamodule import collate_videos

    spec = dict(info.get("feature_spec") or {})
    fps = fps or info.get("default_fps") or 30.0
    gen = torch.Generator().manual_seed(seed)
    results: dict[str, list[dict]] = {}
    items = [feature_item(f, spec, float(fps), model.network.input_dim) for f in files]
    for i in range(0, len(items), batch_size):
        batch = collate_videos(items[i : i + batch_size])
        options = {}
        if hasattr(model, "eval_proposals"):
            options = {"steps": steps, "selective_conditioning": selective}
        results.update(model.detect(batch, generator=gen, **options))
    return results


def detect_main(argv: list[str]) -> int:
    """detect actions in FEATURES.npy or a folder of .npy files; writes ActivityNet results JSON"""
    from difflab.video.metrics import results_json

    p = argparse.ArgumentParser(prog="difflab-video detect", description=detect_main.__doc__)
    p.add_argument("features", type=Path, help="a (T, C) .npy feature file or a folder of them")
    p.add_argument("--ckpt", required=True, help="checkpoint written by fit")
    p.add_argument("--steps", type=int, default=None, help="DDIM steps (DiffTAD; default: the model's)")
    p.add_argument(
        "--selective",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="cross-step selective conditioning (DiffTAD; default: the model's)",
    )
    p.add_argument("--fps", type=float, default=None, help="frames per second (default: the training data's)")
    p.add_argument("--out", type=Path, default=Path("detections.json"), help="results JSON")
    p.add_argument("--seed", type=int, default=0)
    ns = p.parse_args(argv)
    if ns.features.is_dir():
        files = sorted(ns.features.glob("*.npy"))
        if not files:
            raise SystemExit(f"difflab-video detect: no .npy files in {ns.features}")
    elif ns.features.is_file():
        files = [ns.features]
    else:
        raise SystemExit(f"difflab-video detect: {ns.features} does not exist")
    model, info = load_detector(ns.ckpt)
    results = detect_files(model, files, info, fps=ns.fps, steps=ns.steps, selective=ns.selective, seed=ns.seed)
    ns.out.parent.mkdir(parents=True, exist_ok=True)
    ns.out.write_text(json.dumps(results_json(results), indent=1))
    n = sum(len(v) for v in results.values())
    print(f"artifact: {ns.out} | ActivityNet results JSON: {n} detections in {len(results)} videos")
    return 0


__all__ = ["detect_files", "detect_main", "feature_item", "load_detector"]
