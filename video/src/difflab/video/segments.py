r"""1-D segment operations in plain torch: conversions, temporal IoU / GIoU, NMS and soft-NMS.

Segments are ``(..., 2)`` tensors, either ``(start, end)`` ("se") or ``(centre, width)`` ("cw").
Temporal IoU: :math:`|A \cap B| / |A \cup B|`; temporal GIoU subtracts
:math:`(|C| - |A \cup B|)/|C|` with ``C`` the smallest segment containing both.
"""

from __future__ import annotations

import torch
from torch import Tensor


def cw_to_se(x: Tensor) -> Tensor:
    c, w = x[..., 0], x[..., 1]
    return torch.stack([c - w / 2, c + w / 2], dim=-1)


def se_to_cw(x: Tensor) -> Tensor:
    s, e = x[..., 0], x[..., 1]
    return torch.stack([(s + e) / 2, e - s], dim=-1)


def pairwise_tiou(a: Tensor, b: Tensor) -> Tensor:
    """tIoU of every pair, ``a`` (N, 2) and ``b`` (M, 2) in (start, end) -> (N, M)."""
    inter = (torch.minimum(a[:, None, 1], b[None, :, 1]) - torch.maximum(a[:, None, 0], b[None, :, 0])).clamp_min(0)
    union = (a[:, None, 1] - a[:, None, 0]) + (b[None, :, 1] - b[None, :, 0]) - inter
    return inter / union.clamp_min(1e-12)


def pairwise_giou(a: Tensor, b: Tensor) -> Tensor:
    """Temporal GIoU of every pair (start, end) -> (N, M), in [-1, 1]."""
    inter = (torch.minimum(a[:, None, 1], b[None, :, 1]) - torch.maximum(a[:, None, 0], b[None, :, 0])).clamp_min(0)
    union = (a[:, None, 1] - a[:, None, 0]) + (b[None, :, 1] - b[None, :, 0]) - inter
    hull = torch.maximum(a[:, None, 1], b[None, :, 1]) - torch.minimum(a[:, None, 0], b[None, :, 0])
    return inter / union.clamp_min(1e-12) - (hull - union) / hull.clamp_min(1e-12)


def elementwise_tiou(a: Tensor, b: Tensor) -> Tensor:
    """tIoU of aligned pairs ``(..., 2)`` (start, end) -> ``(...)``."""
    inter = (torch.minimum(a[..., 1], b[..., 1]) - torch.maximum(a[..., 0], b[..., 0])).clamp_min(0)
    union = (a[..., 1] - a[..., 0]) + (b[..., 1] - b[..., 0]) - inter
    return inter / union.clamp_min(1e-12)


def nms_1d(segments: Tensor, scores: Tensor, iou_threshold: float, max_keep: int | None = None) -> Tensor:
    """Greedy NMS: indices kept, by descending score; drops segments with tIoU > threshold to a kept one."""
    order = scores.argsort(descending=True, stable=True)
    keep = []
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    iou = pairwise_tiou(segments[order], segments[order])
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(int(order[i]))
        if max_keep is not None and len(keep) >= max_keep:
            break
        suppressed |= iou[i] > iou_threshold
    return torch.as_tensor(keep, dtype=torch.long)


def soft_nms_1d(
    segments: Tensor,
    scores: Tensor,
    *,
    sigma: float = 0.5,
    iou_threshold: float = 0.0,
    min_score: float = 1e-3,
    max_keep: int | None = None,
    method: str = "gaussian",
) -> tuple[Tensor, Tensor]:
    """Soft-NMS (Bodla et al. 2017): repeatedly take the best segment and decay the others' scores.

    Gaussian decay ``s <- s * exp(-iou^2 / sigma)`` (``method="gaussian"``) or linear
    ``s <- s * (1 - iou)`` for ``iou > iou_threshold``. Returns ``(indices, new scores)``, best first.
    """
    scores = scores.clone().double()
    remaining = torch.arange(len(scores))
    keep, new_scores = [], []
    iou_all = pairwise_tiou(segments, segments).double()
    while remaining.numel() > 0:
        j = int(scores[remaining].argmax())
        best = int(remaining[j])
        if scores[best] < min_score:
            break
        keep.append(best)
        new_scores.append(float(scores[best]))
        if max_keep is not None and len(keep) >= max_keep:
            break
        remaining = torch.cat([remaining[:j], remaining[j + 1 :]])
        iou = iou_all[best, remaining]
        if method == "gaussian":
            decay = torch.exp(-(iou**2) / sigma)
        else:
            decay = torch.where(iou > iou_threshold, 1 - iou, torch.ones_like(iou))
        scores[remaining] = scores[remaining] * decay
    return torch.as_tensor(keep, dtype=torch.long), torch.as_tensor(new_scores, dtype=torch.float32)


def batched_nms_1d(
    segments: Tensor,
    scores: Tensor,
    labels: Tensor,
    *,
    kind: str = "nms",
    iou_threshold: float = 0.5,
    sigma: float = 0.5,
    max_keep: int = 100,
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-class NMS or soft-NMS; returns ``(segments, scores, labels)`` of the kept ones, best first."""
    out_s, out_sc, out_l = [], [], []
    for c in labels.unique():
        idx = (labels == c).nonzero().flatten()
        if kind == "soft":
            k, sc = soft_nms_1d(segments[idx], scores[idx], sigma=sigma, max_keep=max_keep)
        else:
            k = nms_1d(segments[idx], scores[idx], iou_threshold, max_keep)
            sc = scores[idx][k]
        out_s.append(segments[idx][k])
        out_sc.append(sc.to(scores.dtype))
        out_l.append(labels[idx][k])
    if not out_s:
        return segments[:0], scores[:0], labels[:0]
    s, sc, lab = torch.cat(out_s), torch.cat(out_sc), torch.cat(out_l)
    order = sc.argsort(descending=True, stable=True)[:max_keep]
    return s[order], sc[order], lab[order]


__all__ = [
    "batched_nms_1d",
    "cw_to_se",
    "elementwise_tiou",
    "nms_1d",
    "pairwise_giou",
    "pairwise_tiou",
    "se_to_cw",
    "soft_nms_1d",
]
