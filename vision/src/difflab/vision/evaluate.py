"""Brief training and held-out evaluation helpers shared by the demo, the benchmark and the tests."""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import Tensor

from difflab.core.lightning.train import train_briefly
from difflab.vision.metrics import from_model_range, sr_metrics


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
