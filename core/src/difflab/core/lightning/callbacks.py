"""Trainer callbacks of every difflab command line.

* :class:`ResumableCheckpoint`: Lightning's ``ModelCheckpoint`` whose ``last.ckpt`` always holds the
  final step of ``fit`` (Lightning's writes ``last.ckpt`` only when a periodic checkpoint is due, so a
  run of 1500 steps checkpointed every 200 steps ends with the ``last.ckpt`` of step 1400).
  Without ``dirpath`` it writes under the run's own version folder
  (``<default_root_dir>/lightning_logs/version_N/checkpoints``), so two runs never share a file.
* :class:`LineProgressBar`: without a terminal, one line of training progress every few seconds
  (steps, loss, time left) instead of a bar; :func:`progress_bar` picks it or Lightning's tqdm bar.
* :class:`MetricsSummary`: at the end of ``fit``, the validation metrics in one line, so a run ends
  with the numbers it reached (``validate`` and ``test`` print Lightning's own table).
"""

from __future__ import annotations

import sys
import time
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar, TQDMProgressBar

from difflab.core.progress import interval_seconds


class ResumableCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that also writes ``last.ckpt`` when ``fit`` ends, whatever the step.

    ``enable_version_counter`` defaults to False: a run has its own folder, so several of these
    callbacks of one run (every few steps, every epoch) keep one ``last.ckpt``, the newest.
    """

    def __init__(self, *args: Any, enable_version_counter: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, enable_version_counter=enable_version_counter, **kwargs)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self.save_last or self._should_skip_saving_checkpoint(trainer):
            return
        if self._last_global_step_saved != trainer.global_step or not self.last_model_path:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


def _scalar(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def metrics_text(metrics: dict[str, Any], prefix: str) -> str:
    """``prefix/a = 1.23, prefix/b = 4.56`` of the scalar metrics whose names start with ``prefix/``."""
    cells = []
    for key in sorted(metrics):
        value = _scalar(metrics[key])
        if key.startswith(f"{prefix}/") and value is not None:
            cells.append(f"{key} = {value:.4g}")
    return ", ".join(cells)


class LineProgressBar(ProgressBar):
    """Training progress as a line every ``every`` seconds (for logs and pipes, where bars are noise)."""

    def __init__(self, every: float | None = None) -> None:
        super().__init__()
        self.every = interval_seconds() if every is None else every
        self._enabled = True
        self._start = self._last = 0.0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start = self._last = time.monotonic()

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        now = time.monotonic()
        if not self._enabled or now - self._last < self.every:
            return
        self._last = now
        self.print(self.line(trainer, now - self._start))

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._enabled:
            self.print(self.line(trainer, time.monotonic() - self._start))

    def line(self, trainer: Trainer, elapsed: float) -> str:
        """``fit: step 120/2000 (epoch 3), train/loss_step = 0.0412, 31 s elapsed, about 490 s left``."""
        step, total = trainer.global_step, trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else None
        head = f"fit: step {step}/{total}" if total else f"fit: step {step}"
        parts = [f"{head} (epoch {trainer.current_epoch})"]
        loss = metrics_text(trainer.progress_bar_metrics, "train")
        if loss:
            parts.append(loss)
        parts.append(f"{elapsed:.0f} s elapsed")
        if total and step:
            parts.append(f"about {elapsed / step * (total - step):.0f} s left")
        return ", ".join(parts)


def progress_bar() -> ProgressBar:
    """Lightning's tqdm bar on a terminal, :class:`LineProgressBar` otherwise."""
    return TQDMProgressBar() if sys.stderr.isatty() else LineProgressBar()


class MetricsSummary(Callback):
    """Print the last validation metrics when ``fit`` ends, in one line, on the main process."""

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._report(trainer, "val", f"after {trainer.global_step} steps")

    def _report(self, trainer: Trainer, prefix: str, when: str) -> None:
        text = metrics_text(trainer.callback_metrics, prefix)
        if text and trainer.is_global_zero:
            print(f"{prefix} metrics {when}: {text}", flush=True)


__all__ = ["LineProgressBar", "MetricsSummary", "ResumableCheckpoint", "metrics_text", "progress_bar"]
