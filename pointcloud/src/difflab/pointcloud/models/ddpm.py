r"""DDPM point diffusion (the PVD-style baseline; Zhou et al. 2021, "3D Shape Generation and Completion
through Point-Voxel Diffusion"), through core.

Core :class:`~difflab.core.processes.DiscreteVP` chain (linear betas 1e-4 -> 0.02, ``T`` steps),
:math:`x_k = \sqrt{\bar\alpha_k} x_0 + \sqrt{1 - \bar\alpha_k}\,\varepsilon`, eps-prediction with the
MSE loss; sampled with core ``ddpm`` (ancestral) or ``ddim``. PVD's PVCNN backbone needs compiled
voxel ops; here the same :class:`~difflab.pointcloud.networks.PointSetDenoiser` as PSF is used.
Batch dict: ``x0`` (B, N, 3), ``label`` (B,) optional.

With ``test_nll_steps > 0`` the ``test`` stage also logs ``test/nll_per_point``: the negative
log-likelihood of the held-out clouds in nats per point through the probability-flow ODE
(:mod:`difflab.pointcloud.likelihood`; ``test_nll_steps`` RK4 steps, one Hutchinson probe).
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor

from difflab.core.lightning import NoiseStream
from difflab.core.processes import DiscreteVP
from difflab.core.samplers.select import SamplerName
from difflab.pointcloud.models.psf import PointCloudDiffusion
from difflab.pointcloud.networks.point_denoiser import PointSetDenoiser


class PointDDPM(PointCloudDiffusion):
    """Args:
    network: the point-set network (eps prediction).
    num_steps: ``T`` of the chain (PVD 1000).
    beta_start, beta_end: linear schedule ends.
    sampler, sample_steps: default core sampler and steps.
    test_nll_steps: RK4 steps of the PF-ODE likelihood logged in ``test`` (0: not computed; it costs
        ``4 * test_nll_steps`` network evaluations and backward passes per test batch).
    label_dropout: classifier-free guidance's condition dropout (see :class:`PointCloudDiffusion`).
    """

    def __init__(
        self,
        network: PointSetDenoiser,
        num_steps: int = 1000,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        sampler: SamplerName = "ddpm",
        sample_steps: int = 100,
        num_val_samples: int = 0,
        init_from: str | None = None,
        test_nll_steps: int = 0,
        label_dropout: float = 0.0,
    ) -> None:
        if test_nll_steps < 0:
            raise ValueError(f"PointDDPM: test_nll_steps must be >= 0, got {test_nll_steps}")
        super().__init__(
            network,
            DiscreteVP("linear", num_steps, beta_start, beta_end, whole_steps=False),  # trained at continuous t
            "eps",
            optimizer,
            lr_scheduler,
            init_from=init_from,
            label_dropout=label_dropout,
            sampler=sampler,
            sample_steps=sample_steps,
            num_val_samples=num_val_samples,
            t_eps=1.0 / num_steps,
        )
        self.test_nll_steps = test_nll_steps

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        loss = super().test_step(batch, batch_idx)
        if self.test_nll_steps > 0:
            x0 = batch["x0"]
            g = self.noise_generator(NoiseStream.TEST, batch_idx, 1)
            log_p = self.log_likelihood(batch, steps=self.test_nll_steps, generator=g)
            nll = -log_p / x0.shape[1]
            self.log("test/nll_per_point", nll.mean(), sync_dist=True, batch_size=x0.shape[0])
        return loss
