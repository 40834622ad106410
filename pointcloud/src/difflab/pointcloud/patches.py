"""Farthest-point sampling, kNN patches and stitching (IterativePFN's patch pipeline).

A cloud of ``N`` points is covered by patches of ``P`` points around seeds chosen by farthest-point
sampling; each patch is centred at its seed and scaled by ``1 / radius`` (its largest distance to the
seed) so that the network sees patches of unit size. After filtering, every point takes its output
from the patch whose seed is nearest (IterativePFN's stitching), so each input point gets exactly one
output.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor


def farthest_point_sample(x: Tensor, m: int, start: int = 0) -> Tensor:
    """Indices ``(m,)`` of ``m`` farthest-point-sampled points of ``x`` (N, 3)."""
    n = x.shape[0]
    m = min(m, n)
    idx = torch.empty(m, dtype=torch.long)
    dist = torch.full((n,), float("inf"))
    cur = start
    for i in range(m):
        idx[i] = cur
        dist = torch.minimum(dist, (x - x[cur]).pow(2).sum(-1))
        cur = int(dist.argmax())
    return idx


def normalise_patch(patch: Tensor, centre: Tensor) -> tuple[Tensor, Tensor]:
    """``(patch - centre) / radius`` and the radius, per patch: ``patch`` (B, P, 3), ``centre`` (B, 3)."""
    p = patch - centre[:, None]
    r = p.norm(dim=-1).amax(1).clamp_min(1e-8)
    return p / r[:, None, None], r


def filter_cloud(
    points: np.ndarray | Tensor,
    filter_fn,
    patch_size: int = 256,
    coverage: float = 3.0,
    batch: int = 32,
) -> np.ndarray:
    """Filter a whole cloud patch by patch.

    Args:
        points: (N, 3) noisy cloud (any scale).
        filter_fn: maps normalised patches (B, P, 3) to filtered patches (B, P, 3) (normalised units).
        patch_size: points per patch ``P``.
        coverage: seeds = ceil(coverage N / P) (each point lies in about ``coverage`` patches).
        batch: patches per call of ``filter_fn``.

    Returns:
        the filtered cloud (N, 3), each point from the patch with the nearest seed.
    """
    x = torch.as_tensor(np.asarray(points), dtype=torch.float32)
    n = x.shape[0]
    p = min(patch_size, n)
    seeds = farthest_point_sample(x, max(1, math.ceil(coverage * n / p)))
    nb = torch.cdist(x[seeds], x).topk(p, largest=False).indices  # (S, P)
    covered = torch.zeros(n, dtype=torch.bool)
    covered[nb.reshape(-1)] = True
    while not covered.all():  # isolated points: extra seeds among the uncovered points
        rest = (~covered).nonzero()[:, 0]
        extra = rest[farthest_point_sample(x[rest], max(1, math.ceil(len(rest) / p)))]
        nb_extra = torch.cdist(x[extra], x).topk(p, largest=False).indices
        seeds, nb = torch.cat([seeds, extra]), torch.cat([nb, nb_extra])
        covered[nb_extra.reshape(-1)] = True
    centres = x[seeds]
    out = torch.full_like(x, float("nan"))
    # nearest seed of every point; points in no patch of their nearest seed fall back to the nearest
    # seed whose patch holds them
    owner = torch.cdist(x, centres).argsort(1)  # (N, S)
    filtered = []
    with torch.no_grad():
        for s in range(0, len(seeds), batch):
            patch, r = normalise_patch(x[nb[s : s + batch]], centres[s : s + batch])
            y = filter_fn(patch)
            filtered.append(y * r[:, None, None] + centres[s : s + batch, None])
    filtered_t = torch.cat(filtered)  # (S, P, 3)
    member = torch.full((len(seeds), n), -1, dtype=torch.long)
    member.scatter_(1, nb, torch.arange(p).expand(len(seeds), -1))
    for rank in range(owner.shape[1]):
        todo = torch.isnan(out[:, 0])
        if not todo.any():
            break
        cand = owner[todo, rank]
        pos = member[cand, todo.nonzero()[:, 0]]
        ok = pos >= 0
        rows = todo.nonzero()[:, 0][ok]
        out[rows] = filtered_t[cand[ok], pos[ok]]
    return out.numpy()
