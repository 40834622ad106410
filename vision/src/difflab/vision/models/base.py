r"""``SRDiffusion``: what every super-resolution method shares on top of core's ``DiffusionModule``.

* the network sees ``[x_t, y]`` (6 channels) where ``y`` is the bicubically upsampled LR image
  (:meth:`SRDiffusion.network_input` lets a method rescale ``x_t`` first);
* :meth:`SRDiffusion.super_resolve` maps ``y`` ``(B, 3, H, W)`` in [-1, 1] to the SR estimate, used by
  validation, ``predict``, ``upscale`` and the demo;
* validation and test sample the first ``num_val_samples`` images of the first batch and log
  PSNR / SSIM (Y channel, border = scale, BasicSR protocol) with the bicubic baseline beside them,
  plus a figure of crops (LR, bicubic, SR, HR).

Batch keys: ``x0`` HR ``(B, 3, H, W)``, ``y`` upsampled LR ``(B, 3, H, W)``, ``lr`` ``(B, 3, H/s, W/s)``,
all in [-1, 1] (see :mod:`difflab.vision.data.datasets`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from difflab.core.lightning import DiffusionModule
from difflab.core.samplers.base import SampleResult
from difflab.vision.metrics import from_model_range, sr_metrics


class SRDiffusion(DiffusionModule):
    """Base class of the SR methods (not used on its own). ``scale`` is only used for the metrics'
    border crop; see :class:`difflab.core.lightning.DiffusionModule` for the other arguments."""

    scale: int = 4
    DATA_SETTINGS = {"scale": "the model was trained for x{}"}  # the data decides the SR factor

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # A catch-all signature: ``SRDiffusion.load_from_checkpoint`` then passes every saved
        # hyperparameter on to the subclass named in the checkpoint (Lightning filters the keyword
        # arguments by the signature of the class it is called on unless it takes ``**kwargs``).
        super().__init__(*args, **kwargs)

    def network_input(self, x_t: Tensor, t: Tensor) -> Tensor:
        """The noisy state as the network sees it (identity here)."""
        return x_t

    def network_forward(self, x_t: Tensor, t: Tensor, batch: dict[str, Any] | None = None) -> Tensor:
        if batch is None or "y" not in batch:
            raise ValueError(f"{type(self).__name__} needs the upsampled LR image: a batch with a 'y' entry")
        return self.network(torch.cat([self.network_input(x_t, t), batch["y"]], dim=1), t)

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def super_resolve(
        self,
        y: Tensor,
        *,
        steps: int | None = None,
        sampler: str | None = None,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> SampleResult:
        """SR estimate from ``y`` ``(B, 3, H, W)`` (upsampled LR, [-1, 1]); ``.sample`` is in [-1, 1]."""
        result = self.sample(
            tuple(y.shape), batch={"y": y}, y=y, sampler=sampler, steps=steps, generator=generator, **options
        )
        result.sample = result.sample.clamp(-1, 1)
        return result

    def sample_for_validation(self, batch: dict[str, Any], generator: torch.Generator) -> SampleResult:
        return self.super_resolve(batch["y"][: self.num_val_samples], generator=generator)

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """SR images ``(B, 3, H, W)`` in [-1, 1]."""
        from difflab.core.lightning.module import NoiseStream

        return self.super_resolve(batch["y"], generator=self.noise_generator(NoiseStream.PREDICT, batch_idx)).sample

    # ------------------------------------------------------------------ metrics and figures
    def sample_metrics(self, samples: Tensor, batch: dict[str, Any]) -> dict[str, Tensor | float]:
        n = samples.shape[0]
        hr = from_model_range(batch["x0"][:n])
        ours = sr_metrics(from_model_range(samples), hr, self.scale)
        base = sr_metrics(from_model_range(batch["y"][:n]), hr, self.scale)
        out = {k: v.mean() for k, v in ours.items()}
        out.update({f"bicubic_{k}": v.mean() for k, v in base.items()})
        return out

    def log_samples(self, samples: Tensor, batch: dict[str, Any], stage: str) -> None:
        from difflab.vision.figures import crops_figure

        n = samples.shape[0]
        fig = crops_figure(
            lr=from_model_range(batch["lr"][:n]) if "lr" in batch else None,
            bicubic=from_model_range(batch["y"][:n]),
            sr=from_model_range(samples),
            hr=from_model_range(batch["x0"][:n]),
            method=type(self).__name__,
        )
        self.log_figure(f"{stage}/crops", fig)
        import matplotlib.pyplot as plt

        plt.close(fig)


__all__ = ["SRDiffusion"]
