"""Brief, quiet training runs for demos, learning tests and benchmarks."""

from __future__ import annotations

import os
import time
from typing import Any

QUIET: dict[str, Any] = dict(
    devices=1,
    logger=False,
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
    limit_val_batches=0,
    num_sanity_val_steps=0,
)
"""Trainer arguments of a quiet run: one device, no logger, checkpoints, progress bar, model summary
or validation."""


def quiet_trainer(**overrides: Any) -> Any:
    """A Lightning ``Trainer`` with :data:`QUIET`'s arguments; ``overrides`` change or add arguments."""
    import lightning.pytorch as pl

    return pl.Trainer(**{**QUIET, **overrides})


def train_briefly(
    model: Any,
    datamodule: Any,
    *,
    max_steps: int,
    max_time_s: float | None = None,
    seed: int = 0,
    checkpoint: str | os.PathLike | None = None,
    ema_decay: float | None = None,
    ema_warmup: bool = False,
    progress_every: float | None = None,
    **trainer_kw: Any,
) -> float:
    """Fit ``model`` on ``datamodule`` for ``max_steps`` optimiser steps on one CPU device.

    No logger, checkpoints, progress bar or validation; ``seed_everything(seed)`` first, so the
    training (batch order, noise draws) is reproducible. The network's initialisation happened when
    ``model`` was built: seed before building it (``torch.manual_seed``) for a reproducible run.
    ``trainer_kw`` overrides or adds Trainer arguments (``gradient_clip_val``, ``callbacks``...).
    ``checkpoint``: also write a Lightning checkpoint there after training (one that
    ``load_from_checkpoint`` and the domains' inference verbs read). Returns the wall time of ``fit``
    in seconds.

    ``ema_decay``: also keep an exponential moving average of the weights with this decay (core's
    :class:`~difflab.core.lightning.ema.WarmupEMA`, appended to ``callbacks``); when ``fit`` ends the
    averaged weights are copied into ``model``, so the model (and ``checkpoint``) holds them. With
    ``ema_warmup=False`` (the default) the decay is constant, exactly Lightning's
    ``EMAWeightAveraging(decay=ema_decay)``; ``True`` caps it early in training (see ``ema.py``).

    ``progress_every``: print a progress line (step, loss, elapsed and remaining time) every so many
    seconds (core's :class:`~difflab.core.lightning.callbacks.LineProgressBar`), for long runs such as
    the pretraining recipes; ``None`` keeps the run silent.
    """
    import lightning.pytorch as pl

    pl.seed_everything(seed, verbose=False)
    kw: dict[str, Any] = dict(max_steps=max_steps, accelerator="cpu")
    if max_time_s is not None:
        kw["max_time"] = {"seconds": max_time_s}
    kw.update(trainer_kw)
    if ema_decay is not None:
        from difflab.core.lightning.ema import WarmupEMA

        kw["callbacks"] = [*(kw.get("callbacks") or []), WarmupEMA(decay=ema_decay, warmup=ema_warmup)]
    if progress_every is not None:
        from difflab.core.lightning.callbacks import LineProgressBar

        kw["enable_progress_bar"] = True
        kw["callbacks"] = [*(kw.get("callbacks") or []), LineProgressBar(every=progress_every)]
    start = time.perf_counter()
    trainer = quiet_trainer(**kw)
    trainer.fit(model, datamodule=datamodule)
    seconds = time.perf_counter() - start
    if checkpoint is not None:
        trainer.save_checkpoint(checkpoint)
    return seconds


__all__ = ["QUIET", "quiet_trainer", "train_briefly"]
