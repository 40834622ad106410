r"""Set prediction loss with Hungarian matching (DETR, Carion et al. 2020; DiffusionDet weights).

Matching cost between query ``i`` and ground truth ``j`` (DiffusionDet / Deformable DETR):

.. math:: C_{ij} = w_{cls}\,[\alpha (1-p)^\gamma (-\log p) - (1-\alpha) p^\gamma (-\log(1-p))]_{i, c_j}
          + w_{L1} \lVert b_i - b_j \rVert_1 - w_{giou}\,\mathrm{GIoU}(b_i, b_j)

with ``p = sigmoid(logits)``, ``b`` = (centre, width); solved per video by
``scipy.optimize.linear_sum_assignment``. Losses over matched pairs, normalised by the number of
ground-truth segments: sigmoid focal loss (Lin et al. 2017) on all queries (targets one-hot on matched
queries), L1 on (centre, width), and ``1 - GIoU`` of (start, end). Default weights: focal 2, L1 5,
GIoU 2 (DiffusionDet). Applied to every decoder layer (deep supervision).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from difflab.video.segments import cw_to_se, pairwise_giou


def sigmoid_focal_loss(logits: Tensor, targets: Tensor, alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """Element-wise sigmoid focal loss (same shape as ``logits``)."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss


@torch.no_grad()
def hungarian_match(
    logits: Tensor,
    segments: Tensor,
    gt_segments: Tensor,
    gt_labels: Tensor,
    *,
    w_cls: float = 2.0,
    w_l1: float = 5.0,
    w_giou: float = 2.0,
    alpha: float = 0.25,
    gamma: float = 2.0,
) -> tuple[Tensor, Tensor]:
    """Optimal assignment for one video: ``logits`` (N, K), ``segments`` (N, 2), ``gt`` (M, 2) / (M,).

    Returns ``(query indices, gt indices)``, each (min(N, M),).
    """
    if gt_segments.shape[0] == 0:
        empty = torch.zeros(0, dtype=torch.long)
        return empty, empty
    p = torch.sigmoid(logits.float())
    neg = (1 - alpha) * p**gamma * (-(1 - p + 1e-8).log())
    pos = alpha * (1 - p) ** gamma * (-(p + 1e-8).log())
    c_cls = (pos - neg)[:, gt_labels]
    c_l1 = torch.cdist(segments.float(), gt_segments.float(), p=1)
    c_giou = -pairwise_giou(cw_to_se(segments.float()), cw_to_se(gt_segments.float()))
    cost = w_cls * c_cls + w_l1 * c_l1 + w_giou * c_giou
    rows, cols = linear_sum_assignment(np.nan_to_num(cost.cpu().numpy(), nan=1e6))
    return torch.as_tensor(rows, dtype=torch.long), torch.as_tensor(cols, dtype=torch.long)


def set_loss(
    logits: Tensor,
    segments: Tensor,
    gt_segments: Tensor,
    gt_labels: Tensor,
    gt_valid: Tensor,
    *,
    w_cls: float = 2.0,
    w_l1: float = 5.0,
    w_giou: float = 2.0,
) -> dict[str, Tensor]:
    """Matched set loss summed over decoder layers.

    Args:
        logits: (L, B, N, K); segments: (L, B, N, 2) (centre, width).
        gt_segments: (B, M, 2); gt_labels: (B, M); gt_valid: (B, M).

    Returns:
        ``{"loss", "focal", "l1", "giou"}`` (the three parts summed over layers, unweighted).
    """
    n_layers, b, n, k = logits.shape
    num_gt = max(float(gt_valid.sum()), 1.0)
    totals = {"focal": logits.new_zeros(()), "l1": logits.new_zeros(()), "giou": logits.new_zeros(())}
    for layer in range(n_layers):
        target = torch.zeros_like(logits[layer])
        pred_m, gt_m = [], []
        for i in range(b):
            v = gt_valid[i]
            gs, gl = gt_segments[i][v], gt_labels[i][v]
            qi, gi = hungarian_match(
                logits[layer, i], segments[layer, i], gs, gl, w_cls=w_cls, w_l1=w_l1, w_giou=w_giou
            )
            qi, gi = qi.to(logits.device), gi.to(logits.device)
            target[i, qi, gl[gi]] = 1.0
            pred_m.append(segments[layer, i, qi])
            gt_m.append(gs[gi])
        totals["focal"] = totals["focal"] + sigmoid_focal_loss(logits[layer], target).sum() / num_gt
        pm, gm = torch.cat(pred_m), torch.cat(gt_m)
        if pm.shape[0]:
            totals["l1"] = totals["l1"] + (pm - gm).abs().sum() / num_gt
            giou = torch.diagonal(pairwise_giou(cw_to_se(pm), cw_to_se(gm)))
            totals["giou"] = totals["giou"] + (1 - giou).sum() / num_gt
    loss = w_cls * totals["focal"] + w_l1 * totals["l1"] + w_giou * totals["giou"]
    return {"loss": loss, **totals}


__all__ = ["hungarian_match", "set_loss", "sigmoid_focal_loss"]
