r"""The deterministic baseline: the DiffTAD network with learned queries and no diffusion.

The same encoder and decoder as :class:`~difflab.video.models.difftad.DiffTAD`, but the decoder
starts from ``num_queries`` learned (content, reference proposal) pairs (DETR / Deformable DETR)
instead of noisy proposals, has no time conditioning, and runs once per video. Same set loss,
same post-processing.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor

from difflab.core.lightning import TrainedModule
from difflab.video.matching import set_loss
from difflab.video.models.common import TADMixin
from difflab.video.networks.detr_tad import DetrTADNet


class DeterministicTAD(TADMixin, TrainedModule):
    """DETR-style detector with learned queries (see the module docstring).

    Args:
        network: :class:`DetrTADNet` with ``num_queries > 0`` and ``time_conditioned=False``.
        nms, nms_iou, max_detections, classes, w_cls, w_l1, w_giou: as for DiffTAD.
        optimizer, lr_scheduler: optimiser factories (default ``torch.optim.AdamW``; the configs use
            lr 5e-4, weight decay 1e-4).
    """

    def __init__(
        self,
        network: DetrTADNet,
        nms: Literal["nms", "soft", "none"] = "soft",
        nms_iou: float = 0.5,
        max_detections: int = 100,
        classes: list[str] | None = None,
        w_cls: float = 2.0,
        w_l1: float = 5.0,
        w_giou: float = 2.0,
        optimizer: OptimizerCallable = torch.optim.AdamW,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__(optimizer, lr_scheduler)
        if network.num_queries < 1:
            raise ValueError("DeterministicTAD: the network needs num_queries >= 1 (learned queries)")
        if nms not in ("nms", "soft", "none"):
            raise ValueError(f"DeterministicTAD: nms must be 'nms', 'soft' or 'none', got {nms!r}")
        self.save_init_hyperparameters(("network", "optimizer", "lr_scheduler"))
        self.network = network
        self.nms, self.nms_iou, self.max_detections = nms, nms_iou, max_detections
        self.classes = list(classes) if classes else None
        self.w = dict(w_cls=w_cls, w_l1=w_l1, w_giou=w_giou)

    def training_loss(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> Tensor:
        out = self.network(batch["feats"], batch["mask"])
        losses = set_loss(
            out["logits"], out["segments"], batch["gt_segments"], batch["gt_labels"], batch["gt_valid"], **self.w
        )
        return losses["loss"]

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        loss = self.training_loss(batch)
        self.log("train/loss_step", loss, prog_bar=True, batch_size=len(batch["video_id"]))
        return loss

    @torch.no_grad()
    def raw_detections(
        self, batch: dict[str, Any], generator: torch.Generator | None = None, **options: Any
    ) -> list[tuple[Tensor, Tensor]]:
        out = self.network(batch["feats"], batch["mask"])
        seg, prob = out["segments"][-1], torch.sigmoid(out["logits"][-1])
        return [(seg[i], prob[i]) for i in range(seg.shape[0])]


__all__ = ["DeterministicTAD"]
