r"""ResShift (Yue, Wang & Loy, NeurIPS 2023, "ResShift: Efficient Diffusion Model for Image
Super-resolution by Residual Shifting").

A Markov chain of ``T`` steps shifts the residual ``e0 = y0 - x0`` between the HR image ``x0`` and
the upsampled LR image ``y0`` while adding noise (core's
:class:`~difflab.core.processes.ResidualShift`; step ``k`` at ``t = k / T``):

.. math::  q(x_t | x_0, y_0) = \mathcal N(x_0 + \eta_t e_0,\ \kappa^2 \eta_t I),

with ``sqrt(eta_t)`` growing geometrically (exponent warp ``p``) from ``sqrt(eta_1) =
min(min_noise / kappa, min_noise)`` to ``sqrt(eta_T) = max_noise``. Sampling starts from
``x_T = y0 + kappa sqrt(eta_T) z`` and runs the reverse posterior

.. math::  p(x_{t-1} | x_t) = \mathcal N\Big(\frac{\eta_{t-1}}{\eta_t} x_t + \frac{\alpha_t}{\eta_t} \hat x_0,\
           \kappa^2 \frac{\eta_{t-1}}{\eta_t} \alpha_t\Big), \quad \alpha_t = \eta_t - \eta_{t-1},

which is core's ancestral sampler ``sample_ddpm`` on the uniform grid of the ``T`` steps
(``--sampler ddpm``; ``ddim`` with ``eta = 0`` gives the deterministic variant).

The network predicts ``x0`` (MSE loss; ``loss_type="l1"``: ``mean |x0_hat - x0|``, the L1 loss in
``x0`` space, which is less pulled by the few large errors of textured crops, so that flat regions,
where ``x0_hat`` should equal ``y0``, weigh more) from ``[x_t / sqrt(kappa^2 eta_t + 1), y0]`` (the paper's
input scaling keeps the input variance near 1). With ``residual_skip`` the network's output is
added to ``y0``, i.e. it predicts ``x0 - y0`` (still an ``x0`` prediction, a reparameterised head
that starts training at the bicubic image). Training times are the chain's steps ``k ~ U{1..T}``.

Presets: ``num_steps=15, min_noise=0.04`` (v1/v2) and ``num_steps=4, min_noise=0.2`` (v3), both with
``kappa = 2``, ``p = 0.3``, ``max_noise = 0.99`` (configs ``resshift15_*.yaml`` / ``resshift4_*.yaml``).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from difflab.core.broadcast import expand_like
from difflab.core.processes import ResidualShift
from difflab.core.samplers.select import SamplerName
from difflab.vision.models.base import SRDiffusion

RESSHIFT_PRESETS: dict[int, dict[str, float]] = {
    15: dict(kappa=2.0, p=0.3, min_noise=0.04, max_noise=0.99),
    4: dict(kappa=2.0, p=0.3, min_noise=0.2, max_noise=0.99),
}


class ResShiftSR(SRDiffusion):
    """ResShift super-resolution (module docstring).

    Args:
        network: ``network(cat([x_t_scaled, y0]), t) -> (B, 3, H, W)``, e.g. :class:`~difflab.vision.networks.UNet`
            with 6 input channels.
        scale: SR factor (for the metrics' border crop).
        num_steps: ``T`` (15 or 4 in the paper).
        kappa: noise strength ``kappa``.
        p: exponent of the schedule warp.
        min_noise: sets ``sqrt(eta_1) = min(min_noise / kappa, min_noise)``.
        max_noise: ``sqrt(eta_T)``.
        input_scaling: feed ``x_t / sqrt(kappa^2 eta_t + 1)`` to the network.
        residual_skip: the network predicts ``x0 - y0`` (added back before the sampler sees it).
        optimizer, lr_scheduler, lr_interval: optimisation (see ``DiffusionModule``).
        sampler: core sampler name (``ddpm``: the paper's ancestral sampler).
        sample_steps: sampler steps; None = ``num_steps`` (the chain's own grid).
        sampler_options: extra sampler options.
        num_val_samples: images sampled and scored per validation epoch.
        clip_x0: clamp ``x0_hat`` to ``[-clip_x0, clip_x0]`` while sampling (1: the image range).
        loss_type: ``mse`` (the paper's) or ``l1``, both on the ``x0`` prediction.
    """

    def __init__(
        self,
        network: nn.Module,
        scale: int = 4,
        num_steps: int = 15,
        kappa: float = 2.0,
        p: float = 0.3,
        min_noise: float = 0.04,
        max_noise: float = 0.99,
        input_scaling: bool = True,
        residual_skip: bool = True,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        lr_interval: Literal["step", "epoch"] = "step",
        sampler: SamplerName = "ddpm",
        sample_steps: int | None = None,
        sampler_options: dict[str, Any] | None = None,
        num_val_samples: int = 4,
        clip_x0: float | None = 1.0,
        loss_type: Literal["mse", "l1"] = "mse",
    ) -> None:
        if loss_type not in ("mse", "l1"):
            raise ValueError(f"ResShiftSR: loss_type must be 'mse' or 'l1', got {loss_type!r}")
        process = ResidualShift(num_steps=num_steps, kappa=kappa, p=p, min_noise=min_noise, max_noise=max_noise)
        super().__init__(
            network,
            process,
            prediction="x0",
            optimizer=optimizer,
            lr_scheduler=lr_scheduler,
            lr_interval=lr_interval,
            t_eps=0.0,
            sampler=sampler,
            sample_steps=sample_steps or num_steps,
            sampler_options=sampler_options,
            num_val_samples=num_val_samples,
            clip_x0=clip_x0,
        )
        self.scale = scale
        self.input_scaling, self.residual_skip = input_scaling, residual_skip
        self.num_steps, self.kappa, self.loss_type = num_steps, kappa, loss_type

    def network_input(self, x_t: Tensor, t: Tensor) -> Tensor:
        if not self.input_scaling:
            return x_t
        eta = self.process.eta(t)
        return x_t / expand_like((self.kappa**2 * eta + 1).sqrt(), x_t)

    def network_forward(self, x_t: Tensor, t: Tensor, batch: dict[str, Any] | None = None) -> Tensor:
        out = super().network_forward(x_t, t, batch)
        return out + batch["y"] if self.residual_skip else out

    def diffusion_loss(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> Tensor:
        """The ``x0`` regression loss: ``t ~ U{1..T}``, ``x_t ~ q(x_t | x0, y0)``, MSE or L1 of ``x0_hat``."""
        if self.loss_type == "mse":
            return super().diffusion_loss(batch, generator)
        x0, y = batch["x0"], batch["y"]
        t = self.sample_time(x0, generator)
        x_t, _ = self.process.sample_marginal(x0, t, y, generator=generator)
        return (self.network_forward(x_t, t, batch) - x0).abs().mean()


__all__ = ["ResShiftSR", "RESSHIFT_PRESETS"]
