"""Per-point displacement network for point-cloud filtering (one IterativePFN iteration module, and
the score network of the score-based baseline).

A stack of EdgeConv layers (Wang et al. 2019): the first on the kNN graph of the input coordinates,
the others on dynamic graphs in feature space (IterativePFN's DynamicEdgeConv), dense connections
between them, a global max-pooled context, and an MLP head giving a 3-vector per point.

Input ``(B, N, 3)`` patch coordinates; output ``(B, N, 3)``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from difflab.pointcloud.networks.graph import EdgeConv, knn


class DisplacementNet(nn.Module):
    """Args:
    k: neighbours of every graph (IterativePFN uses 32; 16 is enough for 256-point patches).
    width: feature width of every EdgeConv.
    layers: number of EdgeConv layers.
    dynamic: rebuild the graph from the features after the first layer (else reuse the coordinate graph).
    """

    def __init__(self, k: int = 16, width: int = 64, layers: int = 3, dynamic: bool = True) -> None:
        super().__init__()
        if layers < 1 or width < 4 or k < 2:
            raise ValueError(f"DisplacementNet: need layers >= 1, width >= 4, k >= 2; got {layers}, {width}, {k}")
        self.k, self.dynamic = k, dynamic
        self.convs = nn.ModuleList(EdgeConv(3 if i == 0 else width * i, width, k) for i in range(layers))
        total = width * layers
        self.head = nn.Sequential(
            nn.Linear(2 * total, 2 * width), nn.SiLU(), nn.Linear(2 * width, width), nn.SiLU(), nn.Linear(width, 3)
        )
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, x: Tensor) -> Tensor:
        idx = knn(x, self.k)
        feats: list[Tensor] = []
        h = x
        for i, conv in enumerate(self.convs):
            g = idx if (i == 0 or not self.dynamic) else None
            h = conv(h if i == 0 else torch.cat(feats, -1), g)
            feats.append(h)
        f = torch.cat(feats, -1)
        glob = f.amax(1, keepdim=True).expand_as(f)
        return self.head(torch.cat([f, glob], -1))
