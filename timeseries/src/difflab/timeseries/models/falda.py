r"""Decomposition in the spirit of FALDA (Fourier Adaptive Noise-Separated Diffusion, arXiv 2505.11306):
a deterministic component carries the mean, and the diffusion models only what is left, so that the
diffusion spends its capacity on the uncertainty.

For a window with context ``c`` ``(C, D)`` and horizon ``(H, D)`` (scaled values):

* **Fourier separation of the history**: the context's real FFT keeps the mean and its ``top_k``
  largest-amplitude frequencies (per series), giving the smooth part ``c_low``; the rest
  ``c - c_low`` is the history's *noise component*.
* **deterministic backbone**: a linear map over time (shared by the series, as NLinear / DLinear)
  from the context to the horizon, ``m_H = W c + b``, trained with the mean squared error on the
  observed horizon values.
* **diffusion on the residual**: the mean ``m = [c_low ; m_H]`` is subtracted from the window (and
  detached), and :class:`~difflab.timeseries.models.spd.StochasticProcessDiffusion` learns the
  residual conditioned on the history's noise component ``c - c_low``. Forecasts are ``m + r``.

This is forecasting only (the decomposition needs the context / horizon split of
:mod:`~difflab.timeseries.data.windows`). FALDA's exact backbone and its AdaLN-MLP denoiser are not
reproduced (no reference code exists); the denoiser here is the CSDI-style network.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from difflab.core.samplers.select import SamplerName
from difflab.timeseries.models.spd import DiffusionKind, NoiseKind, StochasticProcessDiffusion


def fourier_lowpass(x: Tensor, mask: Tensor, top_k: int) -> Tensor:
    """Keep the mean and the ``top_k`` strongest frequencies of ``x`` ``(B, C, D)`` along time (missing = 0)."""
    n = x.shape[1]
    spec = torch.fft.rfft(x * mask, dim=1)  # (B, F, D)
    amp = spec.abs()
    amp[:, 0] = float("inf")  # always keep the mean
    k = min(top_k + 1, spec.shape[1])
    idx = amp.topk(k, dim=1).indices
    keep = torch.zeros_like(amp, dtype=torch.bool).scatter_(1, idx, True)
    return torch.fft.irfft(torch.where(keep, spec, torch.zeros_like(spec)), n=n, dim=1)


class DecomposedDiffusion(StochasticProcessDiffusion):
    """Deterministic Fourier / linear mean + stochastic-process diffusion on the residual.

    Args:
        network: the CSDI-style denoiser.
        context_length, prediction_length: ``C`` and ``H`` of the windows (the data decides: the command
            line links them from the data module; the backbone forecasts only these lengths).
        top_k: frequencies kept in the smooth part of the history.
        backbone_weight: weight of the backbone's mean squared error in the loss.
        (the others as :class:`~difflab.timeseries.models.spd.StochasticProcessDiffusion`)
    """

    FIXED_LENGTHS = True

    def __init__(
        self,
        network: nn.Module,
        context_length: int = 96,
        prediction_length: int = 48,
        top_k: int = 4,
        backbone_weight: float = 1.0,
        noise: NoiseKind = "gp",
        kernel_scale: float = 2.0,
        diffusion: DiffusionKind = "discrete",
        num_steps: int = 50,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        lr_interval: Literal["step", "epoch"] = "step",
        sampler: SamplerName = "ddpm",
        sample_steps: int | None = None,
        sampler_options: dict[str, Any] | None = None,
        ddpm_variance: Literal["fixed_small", "fixed_large"] = "fixed_large",
        num_samples: int = 100,
        val_samples: int = 16,
        sample_chunk: int = 512,
        frequency: str | None = None,
        series_names: list[str] | None = None,
        test_nll_steps: int = 0,
    ) -> None:
        super().__init__(
            network,
            noise,
            kernel_scale,
            diffusion,
            num_steps,
            optimizer=optimizer,
            lr_scheduler=lr_scheduler,
            lr_interval=lr_interval,
            sampler=sampler,
            sample_steps=sample_steps,
            sampler_options=sampler_options,
            ddpm_variance=ddpm_variance,
            num_samples=num_samples,
            val_samples=val_samples,
            sample_chunk=sample_chunk,
            context_length=context_length,
            prediction_length=prediction_length,
            frequency=frequency,
            series_names=series_names,
            test_nll_steps=test_nll_steps,
        )
        if context_length < 1 or prediction_length < 1 or top_k < 0:
            raise ValueError(
                f"DecomposedDiffusion: need context_length, prediction_length >= 1 and top_k >= 0, got "
                f"{context_length}, {prediction_length}, {top_k}"
            )
        self.context_length, self.prediction_length, self.top_k = context_length, prediction_length, top_k
        self.backbone_weight = backbone_weight
        self.backbone = nn.Linear(context_length, prediction_length)
        nn.init.zeros_(self.backbone.weight)
        nn.init.zeros_(self.backbone.bias)

    def mean_component(self, batch: dict[str, Tensor]) -> Tensor:
        x0, cm = batch["x0"], batch["cond_mask"]
        c, h = self.context_length, self.prediction_length
        if x0.shape[1] != c + h:
            raise ValueError(f"DecomposedDiffusion was built for windows of {c} + {h} steps, got {x0.shape[1]}")
        ctx, mask = x0[:, :c], cm[:, :c]
        low = fourier_lowpass(ctx, mask, self.top_k)
        horizon = self.backbone((ctx * mask).transpose(1, 2)).transpose(1, 2)  # (B, H, D)
        return torch.cat([low, horizon], dim=1)

    def extra_loss(self, batch: dict[str, Tensor], mean: Tensor | None) -> Tensor:
        m = batch["target_mask"]
        err = ((batch["x0"] - mean) ** 2 * m).sum() / m.sum().clamp_min(1.0)
        self.log("train/backbone_mse", err, batch_size=batch["x0"].shape[0]) if self._trainer is not None else None
        return self.backbone_weight * err


__all__ = ["DecomposedDiffusion", "fourier_lowpass"]
