"""Brief training and held-out evaluation helpers shared by the demo, the benchmark and the tests.

:data:`BRIEF_TRAINING` is the short CPU training recipe of the demo and the learning tests (x2
bicubic, batch 16 of 32 px crops, the 16-channel U-Net of :data:`BRIEF_NETWORK`, the L1 loss on the
``x0`` prediction): Adam with a cosine decay of the learning rate over the run and an exponential
moving average of the weights (Lightning's ``EMAWeightAveraging``), whose averaged weights are the
ones evaluated. These are the shipped pretrained recipe's choices (:mod:`difflab.vision.pretrain`)
at a budget of one to two CPU minutes. :func:`build_resshift4` builds the demo's ResShift-4 model
and data from the shipped config ``resshift4_photos_x2``; :func:`build_sr3` the SR3 model of the
learning tests on the same network and data; :func:`brief_schedule` gives any model the schedule.
"""

from __future__ import annotations

import time
from functools import partial
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


BRIEF_TRAINING: dict[str, Any] = dict(steps=600, lr=2e-3, lr_min=1e-4, ema_decay=0.99)
"""Steps, peak and final learning rate (cosine decay) and EMA decay of the demo's and tests' runs."""
BRIEF_NETWORK: dict[str, Any] = dict(
    channels=16, channel_mults=(1, 2), num_res_blocks=1, attention_levels=(), mid_attention=False
)
"""The U-Net of the brief runs (the shipped recipe's; ``resshift4_photos_x2`` names the same one)."""


def brief_schedule(steps: int, lr: float | None = None, lr_min: float | None = None) -> dict[str, Any]:
    """``optimizer`` / ``lr_scheduler`` arguments of a model: Adam at ``lr``, cosine decay to ``lr_min``
    over ``steps`` optimiser steps (defaults from :data:`BRIEF_TRAINING`)."""
    lr = BRIEF_TRAINING["lr"] if lr is None else lr
    lr_min = BRIEF_TRAINING["lr_min"] if lr_min is None else lr_min
    return dict(
        optimizer=partial(torch.optim.Adam, lr=lr),
        lr_scheduler=partial(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=steps, eta_min=lr_min),
    )


def build_resshift4(*, steps: int | None = None, seed: int = 0, eval_size: int = 96, extra: list[str] | None = None):
    """ResShift-4 (x2, small U-Net) and the photo DataModule of the demo and the learning test.

    Built from the shipped config ``resshift4_photos_x2`` through the command line's parser, with the
    learning rate's cosine decay set to ``steps`` (default ``BRIEF_TRAINING["steps"]``) and one epoch
    long enough for the run. ``seed`` seeds the network's initialisation. Returns ``(model, datamodule)``;
    train with ``train_briefly(model, dm, max_steps=steps, seed=seed, ema_decay=BRIEF_TRAINING["ema_decay"])``.
    """
    from difflab.core.cli import run_cli
    from difflab.vision.data.datamodule import SRDataModule
    from difflab.vision.models.base import SRDiffusion

    steps = BRIEF_TRAINING["steps"] if steps is None else steps
    cli = run_cli(
        SRDiffusion,
        SRDataModule,
        package="vision",
        args=[
            "--config",
            "resshift4_photos_x2",
            f"--seed_everything={seed}",
            f"--model.init_args.optimizer.init_args.lr={BRIEF_TRAINING['lr']}",
            f"--model.init_args.lr_scheduler.init_args.T_max={steps}",
            f"--model.init_args.lr_scheduler.init_args.eta_min={BRIEF_TRAINING['lr_min']}",
            f"--data.init_args.eval_size={eval_size}",
            f"--data.init_args.samples_per_epoch={16 * max(steps, 1)}",  # one epoch of batches of 16 (config)
            "--trainer.callbacks=[]",
            *(extra or []),
        ],
        run=False,
    )
    return cli.model, cli.datamodule


def build_sr3(*, steps: int | None = None, seed: int = 0, eval_size: int = 96):
    """SR3 (x2, :data:`BRIEF_NETWORK`, residual target ``2 (x0 - y)``, x0-prediction, L1 loss, cosine
    chain of 1000 steps) and the photo DataModule of the learning test, on the schedule of
    :func:`brief_schedule` over ``steps``; ``seed`` seeds the network's initialisation. It samples with
    DDIM in one step: from pure noise at ``t = 1`` that returns the ``x0`` estimate."""
    from difflab.vision.data.datamodule import SRDataModule
    from difflab.vision.models.sr3 import SR3
    from difflab.vision.networks import UNet

    steps = BRIEF_TRAINING["steps"] if steps is None else steps
    torch.manual_seed(seed)
    network = UNet(in_channels=6, out_channels=3, **BRIEF_NETWORK)
    model = SR3(network, scale=2, num_train_steps=1000, sample_steps=1, loss_type="l1", **brief_schedule(steps))
    dm = SRDataModule(
        scale=2, patch_size=32, batch_size=16, eval_size=eval_size, eval_batch_size=4, samples_per_epoch=16 * steps
    )
    return model, dm


__all__ = [
    "train_briefly",
    "evaluate_heldout",
    "BRIEF_TRAINING",
    "BRIEF_NETWORK",
    "build_sr3",
    "brief_schedule",
    "build_resshift4",
]
