r"""Exponential moving average of the weights with a warmed-up decay.

Diffusion models are evaluated with an EMA of their weights (SGMSE+ and the score-SDE code use
decay 0.999, DDPM 0.9999). With a constant decay :math:`\beta` the average after :math:`n` updates
still holds a weight :math:`\beta^n` of the initial network, which for short runs (a few hundred CPU
steps) means the averaged model is mostly untrained. The warm-up used by ``torch_ema`` and the
score-SDE reference caps the decay early in training:

.. math::
    \beta_n = \min\Big(\beta, \frac{1 + n}{10 + n}\Big), \qquad
    \bar\theta_{n} = \beta_n\, \bar\theta_{n-1} + (1 - \beta_n)\, \theta_n ,

where :math:`n \ge 1` counts the updates before this one (the first update copies the weights).
Long runs see the configured decay after :math:`n \approx 9\beta / (1 - \beta)` updates (about
9,000 for 0.999).

:class:`WarmupEMA` is Lightning's ``EMAWeightAveraging`` with this decay, so it checkpoints, resumes
and swaps the averaged weights in for validation exactly as that callback does::

    trainer:
      callbacks:
      - class_path: difflab.core.lightning.WarmupEMA
        init_args: {decay: 0.999}
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.callbacks import EMAWeightAveraging


def warmup_decay(decay: float, num_averaged: int | torch.Tensor) -> float | torch.Tensor:
    """:math:`\\min(\\beta, (1 + n) / (10 + n))` for ``n = num_averaged`` earlier updates."""
    if torch.is_tensor(num_averaged):
        return torch.clamp((1.0 + num_averaged) / (10.0 + num_averaged), max=decay)
    return min(decay, (1.0 + num_averaged) / (10.0 + num_averaged))


class WarmupEMAAverage:
    """``avg_fn`` for ``torch.optim.swa_utils.AveragedModel``: one EMA step with the warmed-up decay."""

    def __init__(self, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = float(decay)

    def __call__(self, averaged: torch.Tensor, current: torch.Tensor, num_averaged: torch.Tensor) -> torch.Tensor:
        beta = warmup_decay(self.decay, num_averaged)
        if torch.is_tensor(beta):
            beta = beta.to(device=averaged.device, dtype=averaged.dtype if averaged.is_floating_point() else None)
        return beta * averaged + (1.0 - beta) * current


class WarmupEMA(EMAWeightAveraging):
    """Lightning's ``EMAWeightAveraging`` with the warmed-up decay :math:`\\beta_n` (module docstring).

    Args:
        decay: the decay the warm-up approaches (0.999 as in SGMSE+).
        warmup: False gives the constant decay of ``EMAWeightAveraging``.
        **kwargs: ``device``, ``use_buffers``, ``update_every_n_steps``, ``update_starting_at_step``,
            ``update_starting_at_epoch`` as in ``EMAWeightAveraging``.
    """

    def __init__(self, decay: float = 0.999, warmup: bool = True, **kwargs: Any) -> None:
        super().__init__(decay=decay, **kwargs)
        if warmup:
            self._kwargs["avg_fn"] = WarmupEMAAverage(decay)
        self.decay, self.warmup = float(decay), bool(warmup)
