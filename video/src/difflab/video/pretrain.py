"""The shipped default of difflab-video: DiffTAD on the mocap default data (``python scripts/pretrain.py
video``), used by ``difflab-video detect`` when it gets no ``--ckpt``.

Recipe (seeded): ``difflab-video fit`` of the shipped configs ``difftad_mocap`` and ``detr_mocap`` (the
DETR-style deterministic baseline, same network size), so the defaults are ordinary ``fit`` checkpoints:
the 160 training videos of the mocap default data (``MocapTADDataModule``, data seed 0: 14 DeepMimic
action classes composed into untrimmed sequences; 158-d pose features, stride 4), crops of 256 feature
steps, batch 8, AdamW 5e-4 with cosine decay to 2.5e-5 (:math:`lr_k = lr_{min} + (lr - lr_{min})
(1 + \\cos(\\pi k / K)) / 2`), gradient clipping 1, ``STEPS`` optimiser steps each. Evaluation on the 32
held-out test videos (never trained on) with the package's ActivityNet evaluator
(:func:`~difflab.video.models.common.evaluate_map`: mAP at tIoU 0.5, 0.7, 0.3:0.7 and 0.5:0.95), DiffTAD
with ``SAMPLE_STEPS`` DDIM steps and selective conditioning; the step count with the best mAP@0.5:0.95
(ties: fewer steps) is recorded as the default ``sampling``. Both checkpoints ship:
``difftad_mocap.ckpt`` (the default) and ``detr_mocap.ckpt`` (the baseline, for side-by-side checks).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import torch

STEPS = 600
SAMPLE_STEPS = (1, 2, 4, 8)
DATA = {"n_train": 160, "n_val": 32, "n_test": 32, "data_seed": 0}
KEYS = ("mAP@0.5", "mAP@0.7", "mAP@0.3:0.7", "mAP@0.5:0.95")


def fit_config(name: str, steps: int, seed: int, root: Path, data_root: Path) -> dict[str, Any]:
    """The shipped config ``name`` made the recipe's: steps, cosine decay, no validation, progress lines."""
    import yaml

    from difflab.core.cli import config_dir

    cfg = yaml.safe_load((config_dir("video") / f"{name}.yaml").read_text())
    cfg["seed_everything"] = seed
    tr = cfg["trainer"]
    tr.update(max_steps=steps, default_root_dir=str(root), limit_val_batches=0, num_sanity_val_steps=0)
    tr.update(accelerator="cpu", enable_progress_bar=True, enable_model_summary=False, logger=False)
    tr["callbacks"][0]["init_args"]["every_n_train_steps"] = steps
    tr["callbacks"].append({"class_path": "difflab.core.lightning.LineProgressBar", "init_args": {"every": 5.0}})
    cfg["model"]["init_args"]["lr_scheduler"] = {
        "class_path": "torch.optim.lr_scheduler.CosineAnnealingLR",
        "init_args": {"T_max": steps, "eta_min": 2.5e-5},
    }
    cfg["data"]["init_args"].update(root=str(data_root), seed=seed, **DATA)
    return cfg


def train(name: str, root: Path, data_root: Path, *, seed: int, minutes: float | None) -> Path:
    """``difflab-video fit`` of :func:`fit_config` into ``root``; returns its ``last.ckpt``."""
    import yaml

    from difflab.core.lightning.checkpoint import checkpoint_file
    from difflab.video.cli import main

    cfg = fit_config(name, STEPS, seed, root, data_root)
    if minutes is not None:
        cfg["trainer"]["max_time"] = {"seconds": int(60 * minutes)}
    root.mkdir(parents=True, exist_ok=True)
    path = root / "pretrain.yaml"
    path.write_text(yaml.safe_dump(cfg))
    if main(["fit", "--config", str(path)]) != 0:
        raise RuntimeError(f"pretraining {name} failed")
    return checkpoint_file(root)


def evaluate_detectors(diff, det, dm, seed: int = 0) -> dict[str, dict[str, float]]:
    """Held-out test-video mAP (and detector ms per video) of the baseline and DiffTAD at each step count."""
    from difflab.video.demo import evaluate

    rows = {}
    _, m, ms, post = evaluate(det, dm, seed=seed)
    rows["DETR baseline"] = {**m, "detector_ms": ms, "post_ms": post}
    for k in SAMPLE_STEPS:
        _, m, ms, post = evaluate(diff, dm, steps=k, selective_conditioning=True, seed=seed)
        rows[f"DiffTAD DDIM-{k}"] = {**m, "detector_ms": ms, "post_ms": post}
    _, m, *_ = evaluate("random", dm, seed=seed)
    rows["random proposals"] = {**m, "detector_ms": 0.0, "post_ms": 0.0}
    return rows


def format_rows(rows: dict[str, dict[str, float]]) -> str:
    """Markdown table: mAP (percent) at the four threshold sets and detector ms per video."""
    from difflab.core.tables import markdown_table

    cells = [[n, *(100 * r[k] for k in KEYS), r["detector_ms"]] for n, r in rows.items()]
    return markdown_table(cells, ["detector", *KEYS, "detector ms/video"], ".1f")


def best_steps(rows: dict[str, dict[str, float]]) -> int:
    """The DDIM step count with the highest mAP@0.5:0.95 (ties: fewer steps)."""
    return max(SAMPLE_STEPS, key=lambda k: (round(rows[f"DiffTAD DDIM-{k}"]["mAP@0.5:0.95"], 4), -k))


def pretrain(out_dir: Path, *, seed: int = 0, minutes: float | None = None) -> list[Path]:
    """Train DiffTAD and the baseline, evaluate on the held-out videos, write both into ``out_dir``."""
    from difflab.core.lightning.checkpoint import read_checkpoint
    from difflab.core.lightning.pretrained import write_pretrained
    from difflab.video.data.datamodule import MocapTADDataModule
    from difflab.video.inference import load_detector

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        data_root = Path(tmp) / "data"
        full, wall, models = {}, {}, {}
        for name in ("difftad_mocap", "detr_mocap"):
            t0 = time.perf_counter()
            full[name] = train(name, Path(tmp) / name, data_root, seed=seed, minutes=minutes)
            wall[name] = round((time.perf_counter() - t0) / 60, 2)
            models[name] = load_detector(full[name])[0]
        dm = MocapTADDataModule(root=str(data_root), batch_size=8, seed=seed, **DATA)
        dm.setup()
        rows = evaluate_detectors(models["difftad_mocap"], models["detr_mocap"], dm, seed=seed)
        print(f"\nmocap: {len(dm.test_set)} held-out test videos, {dm.num_classes} classes\n")
        print(format_rows(rows), flush=True)
        k = best_steps(rows)
        common = {
            "command": f"python scripts/pretrain.py video --seed {seed}",
            "seed": seed,
            "data": (
                f"mocap default data (MocapTADDataModule, data seed 0): {DATA['n_train']} training videos, "
                f"{dm.num_classes} classes; evaluated on the {len(dm.test_set)} test videos"
            ),
            "evaluation": {n: {m: round(float(v), 4) for m, v in r.items()} for n, r in rows.items()},
        }
        written = []
        for name in ("difftad_mocap", "detr_mocap"):
            meta = {**common, "steps": int(read_checkpoint(full[name])["global_step"]), "wall_minutes": wall[name]}
            if name == "difftad_mocap":
                meta["sampling"] = {"sampler": "ddim", "steps": k, "selective_conditioning": True}
            written.append(write_pretrained(full[name], models[name], Path(out_dir) / f"{name}.ckpt", meta=meta))
    return written


__all__ = ["STEPS", "best_steps", "evaluate_detectors", "format_rows", "pretrain"]
