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

from typing import Any

import torch
from torch import Tensor, nn

from difflab.audio.models.base import SpeechEnhancer
from difflab.core.lightning import eval_mode
from difflab.core.samplers.base import SampleResult


class PredictiveEnhancer(SpeechEnhancer):
    """Deterministic spectrogram regression; ``network`` maps 2 channels ``y`` to 2 channels ``x0``.

    Args:
        residual: output ``y + network(y)`` (the network predicts the correction) instead of
            ``network(y)``.
        (the rest: see :class:`~difflab.audio.models.base.SpeechEnhancer`.)

    The diffusion arguments of :class:`~difflab.audio.models.base.SpeechEnhancer` are accepted
    for a uniform interface and ignored (there is no sampler: NFE is 1).
    """

    def __init__(self, network: nn.Module, residual: bool = False, **kwargs: Any) -> None:
        super().__init__(network, **kwargs)
        self.residual_output = bool(residual)

    def estimate(self, y: Tensor) -> Tensor:
        """The clean-spectrogram estimate ``network(y)``, or ``y + network(y)`` with ``residual``."""
        out = self.network(y, None)
        return y + out if self.residual_output else out

    def training_loss(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> Tensor:
        return (self.estimate(batch["y"]) - batch["x0"]).pow(2).mean()

    def sample(self, shape=None, *, batch=None, y=None, **kwargs: Any) -> SampleResult:
        """The one-step estimate of ``batch["y"]`` (or ``y``), the noisy spectrogram; sampler options are ignored."""
        noisy = y if y is not None else (batch or {}).get("y")
        if noisy is None:
            raise ValueError("PredictiveEnhancer.sample needs the noisy spectrogram y (or a batch holding it)")
        with eval_mode(self):
            return SampleResult(self.estimate(noisy), 1, {"sampler": "predictive"})


__all__ = ["PredictiveEnhancer"]
