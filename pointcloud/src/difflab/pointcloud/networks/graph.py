"""kNN graphs and EdgeConv (DGCNN, Wang et al. 2019) in plain torch (no custom CUDA ops).

Shapes: points / features ``(B, N, C)``; neighbour indices ``(B, N, k)``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def knn(x: Tensor, k: int, y: Tensor | None = None) -> Tensor:
    """Indices of the ``k`` nearest points of ``y`` (default ``x``, self included) for every point of ``x``:
    ``(B, N, C)`` -> ``(B, N, k)``."""
    y = x if y is None else y
    d = torch.cdist(x, y)
    return d.topk(min(k, y.shape[1]), dim=-1, largest=False).indices


def gather_neighbours(x: Tensor, idx: Tensor) -> Tensor:
    """``x`` (B, M, C) at ``idx`` (B, N, k) -> (B, N, k, C)."""
    b, n, k = idx.shape
    flat = idx.reshape(b, n * k, 1).expand(-1, -1, x.shape[-1])
    return x.gather(1, flat).reshape(b, n, k, x.shape[-1])


class EdgeConv(nn.Module):
    r"""``h_i' = max_{j in kNN(i)} MLP([h_i, h_j - h_i])`` (DGCNN's edge convolution).

    The graph is given (``idx``) or built from ``h`` itself (dynamic graph).

    Args:
        in_dim, out_dim: feature widths.
        k: neighbours when the graph is built here.
    """

    def __init__(self, in_dim: int, out_dim: int, k: int = 16) -> None:
        super().__init__()
        self.k = k
        self.mlp = nn.Sequential(nn.Linear(2 * in_dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim))

    def forward(self, h: Tensor, idx: Tensor | None = None) -> Tensor:
        idx = knn(h, self.k) if idx is None else idx
        nb = gather_neighbours(h, idx)
        centre = h.unsqueeze(2).expand_as(nb)
        return self.mlp(torch.cat([centre, nb - centre], -1)).amax(2)
