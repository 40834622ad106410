r"""Score-based point-cloud denoising (the baseline; Luo & Hu 2021, "Score-Based Point Cloud Denoising").

A network (:class:`~difflab.pointcloud.networks.DisplacementNet`) estimates at every noisy point the
score-like vector field pointing to the clean surface; training regresses the target
:math:`s^*(x) = \bar c(x) - x` with :math:`\bar c(x)` the mean of the 4 clean points nearest to ``x``.
Denoising runs noise-free Langevin-type gradient ascent on the patch,
:math:`x \leftarrow x + \alpha_k\, s_\theta(x)` with :math:`\alpha_k = \alpha_0\, \gamma^k` for ``steps``
steps (score-denoise: 30 steps, 0.2 * 0.95^k), with optional Langevin noise
(:func:`langevin_ascent`).

Batch dict as :class:`~difflab.pointcloud.models.iterativepfn.IterativePFN`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor

from difflab.pointcloud.models.iterativepfn import PointFilter
from difflab.pointcloud.networks.filter_net import DisplacementNet
from difflab.pointcloud.networks.graph import gather_neighbours, knn


def langevin_ascent(
    score: Callable[[Tensor], Tensor],
    x: Tensor,
    steps: int,
    step_size: float,
    decay: float = 1.0,
    noise: float = 0.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""``x <- x + a_k score(x) + sqrt(2 a_k) noise z`` with ``a_k = step_size * decay**k`` (noise 0:
    score-denoise's deterministic ascent). Belongs with core's Langevin correctors, which are tied to a
    diffusion process's marginal score; this one takes any score field."""
    for k in range(steps):
        a = step_size * decay**k
        x = x + a * score(x)
        if noise > 0:
            x = x + (2 * a) ** 0.5 * noise * torch.randn(x.shape, generator=generator, device=x.device)
    return x


class ScoreDenoiser(PointFilter):
    """Args:
    k, width, layers: size of the score network.
    num_neighbours: clean points averaged for the target (4).
    steps, step_size, step_decay: the ascent schedule (30, 0.2, 0.95).
    patch_size: points per patch when filtering whole clouds (the command line takes it from the data).
    """

    def __init__(
        self,
        k: int = 16,
        width: int = 64,
        layers: int = 3,
        num_neighbours: int = 4,
        steps: int = 30,
        step_size: float = 0.2,
        step_decay: float = 0.95,
        patch_size: int = 256,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__(optimizer, lr_scheduler)
        self.save_init_hyperparameters()
        self.network = DisplacementNet(k, width, layers)
        self.num_neighbours, self.steps, self.step_size, self.step_decay = num_neighbours, steps, step_size, step_decay
        self.patch_size = patch_size

    def score_target(self, x: Tensor, clean: Tensor) -> Tensor:
        idx = knn(x, self.num_neighbours, clean)
        return gather_neighbours(clean, idx).mean(2) - x

    def filter_patches(self, patches: Tensor) -> Tensor:
        with torch.no_grad():
            return langevin_ascent(self.network, patches, self.steps, self.step_size, self.step_decay)

    def training_loss(self, batch: dict[str, Tensor], generator: torch.Generator | None = None) -> Tensor:
        y, x0 = batch["y"], batch["x0"]
        return (self.network(y) - self.score_target(y, x0)).pow(2).sum(-1).mean()

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = self.training_loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["y"].shape[0])
        return loss
