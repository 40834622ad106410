r"""InvSR-style arbitrary-step start (Yue, Liao & Loy, CVPR 2025, "Arbitrary-steps Image
Super-resolution via Diffusion Inversion").

A trained diffusion SR model (the *teacher*, here an :class:`~difflab.vision.models.sr3.SR3`, frozen)
is sampled from an intermediate state instead of pure noise. A noise-predictor network ``g_phi``
looks at the upsampled LR image ``y`` and outputs a (non-zero-mean) noise map that places ``y`` at
time ``tau`` of the teacher's chain (partial noise prediction):

.. math::  z_\tau = \sqrt{\bar\alpha_\tau}\,z_{\mathrm{LR}} + \sqrt{1 - \bar\alpha_\tau}\,g_\phi(y),

with ``z_LR`` the teacher's target-space encoding of the bicubic image (0 for a residual teacher,
``y`` for an image teacher). From ``z_tau`` the teacher runs 1 to 5 deterministic DDIM steps on the
grid ``linspace(tau, 0, steps + 1)`` (``tau = 0.2``: InvSR's timestep 200 of 1000). The predictor is
trained end to end through the frozen teacher's ``train_steps`` sampling steps with an L2 loss on the
HR image (the paper adds LPIPS and a GAN loss, left out here).

Shapes: ``y`` ``(B, 3, H, W)`` in [-1, 1]; the predictor is called ``g_phi(y, t)`` with
``t = tau`` ``(B,)`` and returns ``(B, 3, H, W)``.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from difflab.core.samplers.base import Denoiser, SampleResult
from difflab.core.samplers.ddim import sample_ddim
from difflab.core.samplers.warm_start import warm_start
from difflab.vision.models.base import SRDiffusion
from difflab.vision.models.sr3 import SR3


class InvSRStart(SRDiffusion):
    """Noise-predictor start for a frozen SR3 teacher (module docstring).

    Args:
        network: the noise predictor ``g_phi(y, t)`` (3 input channels).
        teacher: the trained diffusion SR model (its weights are frozen and saved with this module).
        teacher_ckpt: path of an SR3 checkpoint to load as the teacher instead.
        scale: SR factor (metrics' border crop).
        start_t: ``tau`` in (0, 1].
        sample_steps: teacher DDIM steps at inference (1 to 5 in the paper; any number works).
        train_steps: teacher steps unrolled in the training loss.
        optimizer, lr_scheduler, lr_interval: optimisation of the predictor only.
        num_val_samples: images scored per validation epoch.
    """

    def __init__(
        self,
        network: nn.Module,
        teacher: SR3 | None = None,
        teacher_ckpt: str | None = None,
        scale: int = 4,
        start_t: float = 0.2,
        sample_steps: int = 1,
        train_steps: int = 1,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        lr_interval: Literal["step", "epoch"] = "step",
        num_val_samples: int = 4,
    ) -> None:
        if (teacher is None) == (teacher_ckpt is None):
            raise ValueError("InvSRStart: give exactly one of teacher and teacher_ckpt")
        if teacher is None:
            from difflab.core.lightning import load_checkpoint

            teacher = load_checkpoint(teacher_ckpt, SR3)
        if not 0 < start_t <= 1:
            raise ValueError(f"InvSRStart: start_t must lie in (0, 1], got {start_t}")
        if train_steps < 1:
            raise ValueError(f"InvSRStart: train_steps must be >= 1, got {train_steps}")
        with warnings.catch_warnings():  # the teacher is kept out of the hyperparameters just below
            warnings.filterwarnings("ignore", message=".*Attribute 'teacher' is an instance of `nn.Module`.*")
            super().__init__(
                network,
                teacher.process,
                prediction="eps",
                optimizer=optimizer,
                lr_scheduler=lr_scheduler,
                lr_interval=lr_interval,
                sampler="ddim",
                sample_steps=sample_steps,
                num_val_samples=num_val_samples,
            )
        if isinstance(self.hparams.get("teacher"), nn.Module):  # built in Python: weights live in the state dict
            del self.hparams["teacher"]
        self.teacher = teacher
        self.teacher.requires_grad_(False)
        self.scale, self.start_t, self.train_steps = scale, float(start_t), train_steps

    def predicted_noise(self, y: Tensor) -> Tensor:
        """``g_phi(y)`` ``(B, 3, H, W)``."""
        t = torch.full((y.shape[0],), self.start_t, device=y.device, dtype=y.dtype)
        return self.network(y, t)

    def start_state(self, y: Tensor) -> Tensor:
        """``z_tau = a(tau) z_LR + s(tau) g_phi(y)``: core's warm start with the predicted noise."""
        return warm_start(self.process, self.teacher.start_estimate(y), self.start_t, noise=self.predicted_noise(y))

    def run_teacher(self, y: Tensor, steps: int) -> Tensor:
        """Deterministic DDIM with the teacher from ``z_tau`` to ``t = 0``; returns the HR estimate (unclamped)."""
        z = self.start_state(y)
        den = Denoiser(
            lambda x_t, t: self.teacher.network_forward(x_t, t, {"y": y}),
            self.process,
            self.teacher.prediction,
            clip_x0=self.teacher.clip_x0,
        )
        grid = torch.linspace(self.start_t, 0.0, steps + 1, dtype=torch.float64, device=y.device)
        z0 = sample_ddim(den, z, grid, eta=0.0).sample
        return self.teacher.decode(z0, y)

    def training_loss(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> Tensor:
        sr = self.run_teacher(batch["y"], self.train_steps)
        return (sr - batch["x0"]).pow(2).mean()

    @torch.no_grad()
    def super_resolve(self, y: Tensor, *, steps=None, sampler=None, generator=None, **options) -> SampleResult:
        steps = steps or self.sample_steps
        sr = self.run_teacher(y, steps).clamp(-1, 1)
        return SampleResult(sr, steps, {"start_t": self.start_t})

    def trainable_parameters(self):
        """The noise predictor's parameters (the teacher stays frozen)."""
        return self.network.parameters()


__all__ = ["InvSRStart"]
