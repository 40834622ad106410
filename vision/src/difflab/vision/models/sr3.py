r"""SR3-style conditional DDPM for super-resolution (Saharia et al. 2021, "Image Super-Resolution via
Iterative Refinement"), sampled with core's DDIM / DPM-Solver++ at a chosen number of steps.

A standard variance-preserving chain (core's :class:`~difflab.core.processes.DiscreteVP`, cosine or
linear betas, ``T`` steps at ``t = k / T``) runs on a target ``z0`` and the network sees
``[z_t, y]`` with ``y`` the bicubically upsampled LR image. SR3 predicts the noise,

.. math::  z_t = \sqrt{\bar\alpha_t}\,z_0 + \sqrt{1 - \bar\alpha_t}\,\varepsilon,
           \qquad L = \lVert \varepsilon_\theta([z_t, y], t) - \varepsilon \rVert^2 ;

here the default is the equivalent ``x0`` parameterisation (regress ``z0``), which learns far faster
on a CPU budget (see ``prediction``); core's samplers convert either to what they need. SR3 writes
the objective with an ``L_p`` norm, ``p in {1, 2}``: ``loss_type="l1"`` takes ``p = 1``,
``L = mean |f_theta([z_t, y], t) - target|`` for the chosen parameterisation's target (``z0`` for
``x0``), whose gradient does not vanish for the small errors on flat regions, as the MSE's does.

``target="image"`` is SR3 proper (``z0`` = HR image). ``target="residual"`` (the default) is the
SRDiff / SAM-DiffSR form ``z0 = residual_scale * (x0 - y)`` (``residual_scale = 2``), which learns
much faster on small data; the SR image is ``y + z0_hat / residual_scale``. Sampling starts from
``N(0, I)``; the sampler is chosen by name (``--model.sampler ddim --model.sample_steps 10``).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from difflab.core.parameterization import Prediction, from_x0_eps
from difflab.core.processes import DiscreteVP
from difflab.core.samplers.base import SampleResult
from difflab.core.samplers.select import SamplerName
from difflab.vision.models.base import SRDiffusion


class SR3(SRDiffusion):
    """Conditional DDPM super-resolution (module docstring).

    Args:
        network: ``network(cat([z_t, y]), t) -> (B, 3, H, W)`` (6 input channels).
        scale: SR factor (metrics' border crop).
        schedule: beta schedule of the chain (``cosine`` or ``linear``; see core's ``DiscreteVP``).
        num_train_steps: ``T`` of the chain.
        target: ``residual`` (``residual_scale * (x0 - y)``) or ``image`` (``x0``).
        residual_scale: multiplier of the residual target.
        prediction: network parameterisation: ``x0`` (default; why: the README's *Notes*), ``eps``
            (SR3's choice) or ``v``.
        optimizer, lr_scheduler, lr_interval: optimisation.
        sampler: core sampler name (``ddim``, ``dpm_solver``, ``ddpm``, ...).
        sample_steps: sampler steps.
        sampler_options: extra sampler options (``eta`` for DDIM, ``order`` for DPM-Solver++).
        num_val_samples: images sampled and scored per validation epoch.
        clip_x0: clamp the clean estimate while sampling; None = 1 for ``image``, ``2 * residual_scale``
            for ``residual``.
        loss_type: ``mse`` (``p = 2``) or ``l1`` (``p = 1``) on the parameterisation's target.
    """

    def __init__(
        self,
        network: nn.Module,
        scale: int = 4,
        schedule: Literal["cosine", "linear"] = "cosine",
        num_train_steps: int = 1000,
        target: Literal["residual", "image"] = "residual",
        residual_scale: float = 2.0,
        prediction: Prediction = "x0",
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        lr_interval: Literal["step", "epoch"] = "step",
        sampler: SamplerName = "ddim",
        sample_steps: int = 50,
        sampler_options: dict[str, Any] | None = None,
        num_val_samples: int = 4,
        clip_x0: float | None = None,
        loss_type: Literal["mse", "l1"] = "mse",
    ) -> None:
        if loss_type not in ("mse", "l1"):
            raise ValueError(f"{type(self).__name__}: loss_type must be 'mse' or 'l1', got {loss_type!r}")
        if target not in ("residual", "image"):
            raise ValueError(f"{type(self).__name__}: target must be 'residual' or 'image', got {target!r}")
        if residual_scale <= 0:
            raise ValueError(f"{type(self).__name__}: residual_scale must be > 0, got {residual_scale}")
        if clip_x0 is None:
            clip_x0 = 1.0 if target == "image" else 2.0 * residual_scale
        super().__init__(
            network,
            DiscreteVP(schedule, num_train_steps, whole_steps=False),  # trained at continuous times
            prediction=prediction,
            optimizer=optimizer,
            lr_scheduler=lr_scheduler,
            lr_interval=lr_interval,
            t_eps=1.0 / num_train_steps,
            sampler=sampler,
            sample_steps=sample_steps,
            sampler_options=sampler_options,
            num_val_samples=num_val_samples,
            clip_x0=clip_x0,
        )
        self.scale, self.target, self.residual_scale = scale, target, residual_scale
        self.loss_type = loss_type

    # ------------------------------------------------------------------ target space
    def encode(self, x0: Tensor, y: Tensor) -> Tensor:
        """HR image -> diffusion target ``z0``."""
        return self.residual_scale * (x0 - y) if self.target == "residual" else x0

    def decode(self, z0: Tensor, y: Tensor) -> Tensor:
        """Diffusion target -> HR image."""
        return y + z0 / self.residual_scale if self.target == "residual" else z0

    def start_estimate(self, y: Tensor) -> Tensor:
        """``z0`` of the bicubic image itself (0 for ``residual``, ``y`` for ``image``)."""
        return torch.zeros_like(y) if self.target == "residual" else y

    def target_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {**batch, "x0": self.encode(batch["x0"], batch["y"])}

    def training_loss(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> Tensor:
        batch = self.target_batch(batch)
        if self.loss_type == "mse":
            return self.diffusion_loss(batch, generator)
        return self.l1_loss(batch, generator)

    def l1_loss(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> Tensor:
        """SR3's ``p = 1`` objective: ``t ~ U(t_eps, 1)``, ``z_t = sqrt(abar_t) z0 + sqrt(1 - abar_t) eps``,
        ``mean |f([z_t, y], t) - target|`` with ``target`` of the parameterisation (``z0``, ``eps`` or ``v``)."""
        z0 = batch["x0"]
        t = self.sample_time(z0, generator)
        z_t, eps = self.process.sample_marginal(z0, t, None, generator=generator)
        target = from_x0_eps(self.process, self.prediction, z0, eps, t, None)
        return (self.network_forward(z_t, t, batch) - target).abs().mean()

    @torch.no_grad()
    def super_resolve(self, y: Tensor, *, steps=None, sampler=None, generator=None, **options) -> SampleResult:
        result = self.sample(
            tuple(y.shape), batch={"y": y}, sampler=sampler, steps=steps, generator=generator, **options
        )
        result.sample = self.decode(result.sample, y).clamp(-1, 1)
        return result


__all__ = ["SR3"]
