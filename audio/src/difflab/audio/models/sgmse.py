r"""SGMSE+ (Richter, Welker, Lemercier, Lay, Gerkmann 2023, "Speech Enhancement and Dereverberation
with Diffusion-based Generative Models", IEEE/ACM TASLP).

Forward process: the OUVE SDE on the compressed complex STFT, drifting from the clean ``x0``
towards the noisy ``y``:

.. math:: dx_t = \theta\,(y - x_t)\,dt + \sigma_{\min}\Big(\frac{\sigma_{\max}}{\sigma_{\min}}\Big)^t
          \sqrt{2\log\frac{\sigma_{\max}}{\sigma_{\min}}}\;dw,

with ``theta = 1.5``, ``sigma_min = 0.05``, ``sigma_max = 0.5`` (:func:`~difflab.audio.models.base.complex_ouve`).

Training (denoising score matching): ``t ~ U(t_eps, 1)``, ``x_t = mu(x0, y, t) + s(t) z`` and the
network, fed ``[x_t, y]`` as 4 real channels ``(B, 4, F, T)``, predicts ``z``, i.e. the score is
``-net / s(t)``; the loss ``|net - z|^2`` is SGMSE+'s ``|s(t) score + z|^2``.

Enhancement: start at ``x_1 = y + s(1) z`` and run the reverse process to ``t_eps``, by default with
the predictor-corrector sampler (reverse-diffusion predictor, annealed Langevin corrector,
``N = 30``, ``snr = 0.5``: 60 network evaluations). Any core sampler can be chosen by name.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from difflab.audio.models.base import SpeechEnhancer, tile


class SGMSE(SpeechEnhancer):
    """SGMSE+ score-based enhancement; ``network`` takes 4 channels ``[x_t, y]`` and returns 2.

    Args: see :class:`~difflab.audio.models.base.SpeechEnhancer`.
    """

    def network_forward(self, x_t: Tensor, t: Tensor, batch: dict[str, Any] | None = None) -> Tensor:
        if batch is None or "y" not in batch:
            raise ValueError("SGMSE needs the noisy spectrogram batch['y'] as network input")
        y = tile(batch["y"], x_t)
        return self.to_x0(self.network(torch.cat([x_t, y], dim=1), t), x_t, t, y)


__all__ = ["SGMSE"]
