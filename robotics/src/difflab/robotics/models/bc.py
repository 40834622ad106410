"""Deterministic behaviour cloning: regress the normalised action chunk from the observations.

The baseline the diffusion policy is compared with: same data windows, normalisation, horizons and
receding-horizon execution, a :class:`~difflab.robotics.networks.ChunkMLP` of similar size, and the
mean squared error ``|| f(o) - a_{chunk} ||^2`` in normalised units (one network call per chunk).
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from difflab.core.lightning import TrainedModule, eval_mode
from difflab.core.samplers.base import SampleResult
from difflab.robotics.models.diffusion_policy import PolicyIOMixin


class BCPolicy(PolicyIOMixin, TrainedModule):
    """Args:
    network: ``network(cond (B, To*Do)) -> (B, Tp, Da)`` (a ChunkMLP).
    obs_dim, action_dim, horizon, n_obs_steps, n_action_steps: as for the diffusion policy.
    optimizer, lr_scheduler: factories.
    """

    def __init__(
        self,
        network: nn.Module,
        obs_dim: int = 39,
        action_dim: int = 4,
        horizon: int = 16,
        n_obs_steps: int = 2,
        n_action_steps: int = 8,
        optimizer: OptimizerCallable = torch.optim.AdamW,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__(optimizer, lr_scheduler)
        self.save_init_hyperparameters(("network", "optimizer", "lr_scheduler"))
        self.network = network
        self._init_io(obs_dim, action_dim, horizon, n_obs_steps, n_action_steps)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        self._setup_normalizers()

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        cond, nact = self.normalize_batch(batch)
        return (self.network(cond) - nact).pow(2).mean()

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = self.loss(batch)
        self.log("train/loss_step", loss, prog_bar=True, batch_size=batch["obs"].shape[0])
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = self.loss(batch)
        self.log("val/loss", loss, prog_bar=True, batch_size=batch["obs"].shape[0])
        return loss

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = self.loss(batch)
        self.log("test/loss", loss, batch_size=batch["obs"].shape[0])
        return loss

    @torch.no_grad()
    def sample_chunk(self, obs: Tensor, **_: Any) -> SampleResult:
        """The normalised chunk ``(B, Tp, Da)`` (one network evaluation)."""
        cond, _ = self.normalize_batch({"obs": obs})
        with eval_mode(self):
            return SampleResult(self.network(cond), 1, {"sampler": "bc"})

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        return self.action_normalizer.unnormalize(self.sample_chunk(batch["obs"]).sample)


__all__ = ["BCPolicy"]
