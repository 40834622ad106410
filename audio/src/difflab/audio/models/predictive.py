r"""The predictive (deterministic) baseline: one network pass from the noisy to the clean spectrogram.

The same NCSN++-style U-Net as the diffusion models, without time input, trained by regression
in the compressed complex STFT domain:

.. math:: L = \lVert D_\phi(y) - x_0 \rVert^2 .

With ``residual=True`` the network predicts the correction instead, ``x0_hat = y + D_phi(y)``
(the same idea as the diffusion models' ``x0_residual`` preconditioning): an untrained network
(outputs near zero) returns the input itself, so brief training starts from the identity rather
than from a random map of the input, and the outcome depends far less on the initialisation.

It is also StoRM's predictive stage (:mod:`difflab.audio.models.storm`), and the "NCSN++M
predictive" reference of the SGMSE+ / StoRM papers. One network evaluation per utterance.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from difflab.audio.models.base import SpeechEnhancer
from difflab.core.samplers.base import SampleResult
from difflab.core.samplers.select import SamplerName


class PredictiveEnhancer(SpeechEnhancer):
    """Deterministic spectrogram regression; ``network`` maps 2 channels ``y`` to 2 channels ``x0``.

    Args:
        residual: output ``y + network(y)`` (the network predicts the correction) instead of
            ``network(y)``.
        (the rest: see :class:`~difflab.audio.models.base.SpeechEnhancer`.)

    The diffusion arguments of :class:`~difflab.audio.models.base.SpeechEnhancer` are accepted
    for a uniform interface and ignored (there is no sampler: NFE is 1).
    """

    def __init__(
        self,
        network: nn.Module,
        theta: float = 1.5,
        sigma_min: float = 0.05,
        sigma_max: float = 0.5,
        t_eps: float = 0.03,
        sampler: SamplerName = "pc",
        sample_steps: int = 30,
        sampler_options: dict[str, Any] | None = None,
        n_fft: int = 510,
        hop_length: int = 128,
        spec_alpha: float = 0.5,
        spec_beta: float = 0.15,
        sample_rate: int = 16000,
        val_enhance_batches: int = 4,
        val_metrics: list[str] | None = None,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        lr_interval: Literal["step", "epoch"] = "step",
        prediction: Literal["eps", "x0", "x0_precond", "x0_residual"] = "eps",
        sigma_data: float = 0.1,
        residual: bool = False,
    ) -> None:
        super().__init__(
            network,
            theta,
            sigma_min,
            sigma_max,
            t_eps,
            sampler,
            sample_steps,
            sampler_options,
            n_fft,
            hop_length,
            spec_alpha,
            spec_beta,
            sample_rate,
            val_enhance_batches,
            val_metrics,
            optimizer,
            lr_scheduler,
            lr_interval,
            prediction,
            sigma_data,
        )
        self.residual_output = bool(residual)

    def estimate(self, y: Tensor) -> Tensor:
        """The clean-spectrogram estimate ``network(y)``, or ``y + network(y)`` with ``residual``."""
        out = self.network(y, None)
        return y + out if self.residual_output else out

    def training_loss(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> Tensor:
        return (self.estimate(batch["y"]) - batch["x0"]).pow(2).mean()

    def enhance_spec(
        self,
        y: Tensor,
        *,
        sampler: SamplerName | None = None,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> SampleResult:
        return SampleResult(self.estimate(y), 1, {"sampler": "predictive"})


__all__ = ["PredictiveEnhancer"]
