"""Brief training and held-out evaluation helpers shared by the demo, the benchmark and the tests."""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import Tensor

from difflab.vision.metrics import from_model_range, sr_metrics


def train_briefly(
    model, datamodule, *, max_steps: int, max_time_s: float | None = None, seed: int = 0, **trainer_kw
) -> float:
    """Fit ``model`` on ``datamodule`` for ``max_steps`` optimiser steps on CPU (no checkpoints,
    logger or validation); returns the wall time in seconds."""
    import lightning.pytorch as pl

    pl.seed_everything(seed, verbose=False)
    kw: dict[str, Any] = dict(
        max_steps=max_steps,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
    )
    if max_time_s is not None:
        kw["max_time"] = {"seconds": max_time_s}
    kw.update(trainer_kw)
    start = time.perf_counter()
    pl.Trainer(**kw).fit(model, datamodule=datamodule)
    return time.perf_counter() - start


@torch.no_grad()
def evaluate_heldout(
    sr_fn,
    datamodule,
    scale: int,
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """Score ``sr_fn(y, generator) -> (B, 3, H, W) in [-1, 1]`` on the datamodule's validation set.

    Returns ``{"sr": {...metric: mean}, "bicubic": {...}, "time_s": float, "outputs": Tensor}``
    with outputs in [0, 1].
    """
    datamodule.setup("validate")
    ours: dict[str, list[Tensor]] = {}
    base: dict[str, list[Tensor]] = {}
    outs = []
    elapsed = 0.0
    g = torch.Generator().manual_seed(seed)
    for batch in datamodule.val_dataloader():
        t0 = time.perf_counter()
        sr = sr_fn(batch["y"], g)
        elapsed += time.perf_counter() - t0
        hr = from_model_range(batch["x0"])
        for k, v in sr_metrics(from_model_range(sr), hr, scale).items():
            ours.setdefault(k, []).append(v)
        for k, v in sr_metrics(from_model_range(batch["y"]), hr, scale).items():
            base.setdefault(k, []).append(v)
        outs.append(from_model_range(sr))
    return {
        "sr": {k: float(torch.cat(v).mean()) for k, v in ours.items()},
        "bicubic": {k: float(torch.cat(v).mean()) for k, v in base.items()},
        "per_image_psnr_y": torch.cat(ours["psnr_y"]).tolist(),
        "per_image_bicubic_psnr_y": torch.cat(base["psnr_y"]).tolist(),
        "time_s": elapsed,
        "outputs": torch.cat(outs),
    }


__all__ = ["train_briefly", "evaluate_heldout"]
