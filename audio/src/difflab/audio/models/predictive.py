r"""The predictive (deterministic) baseline: one network pass from the noisy to the clean spectrogram.

The same NCSN++-style U-Net as the diffusion models, without time input, trained by regression
in the compressed complex STFT domain:

.. math:: L = \lVert D_\phi(y) - x_0 \rVert^2 .

It is also StoRM's predictive stage (:mod:`difflab.audio.models.storm`), and the "NCSN++M
predictive" reference of the SGMSE+ / StoRM papers. One network evaluation per utterance.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from difflab.audio.models.base import SpeechEnhancer
from difflab.core.samplers.base import SampleResult
from difflab.core.samplers.select import SamplerName


class PredictiveEnhancer(SpeechEnhancer):
    """Deterministic spectrogram regression; ``network`` maps 2 channels ``y`` to 2 channels ``x0``.

    The diffusion arguments of :class:`~difflab.audio.models.base.SpeechEnhancer` are accepted
    for a uniform interface and ignored (there is no sampler: NFE is 1).
    """

    def training_loss(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> Tensor:
        out = self.network(batch["y"], None)
        return (out - batch["x0"]).pow(2).mean()

    def enhance_spec(
        self,
        y: Tensor,
        *,
        sampler: SamplerName | None = None,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> SampleResult:
        return SampleResult(self.network(y, None), 1, {"sampler": "predictive"})


__all__ = ["PredictiveEnhancer"]
