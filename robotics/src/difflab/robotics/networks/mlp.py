"""Plain MLP from the flattened observation window to a whole action chunk (behaviour cloning)."""

from __future__ import annotations

from torch import Tensor, nn


class ChunkMLP(nn.Module):
    """``(B, To * Do) -> (B, Tp, Da)``: ``depth`` hidden layers of ``width`` units with Mish and LayerNorm.

    Args:
        global_cond_dim: ``To * Do`` (the name the U-Net gives it).
        horizon: ``Tp``.
        action_dim: ``Da``.
        width, depth: hidden size and number of hidden layers.
    """

    def __init__(self, global_cond_dim: int, horizon: int, action_dim: int, width: int = 512, depth: int = 4) -> None:
        super().__init__()
        if depth < 1 or width < 1:
            raise ValueError(f"ChunkMLP: depth and width must be >= 1, got {depth}, {width}")
        layers: list[nn.Module] = []
        d = global_cond_dim
        for _ in range(depth):
            layers += [nn.Linear(d, width), nn.LayerNorm(width), nn.Mish()]
            d = width
        layers.append(nn.Linear(d, horizon * action_dim))
        self.net = nn.Sequential(*layers)
        self.global_cond_dim, self.horizon, self.action_dim = global_cond_dim, horizon, action_dim

    def forward(self, cond: Tensor) -> Tensor:
        if cond.ndim != 2 or cond.shape[1] != self.global_cond_dim:
            raise ValueError(f"cond must have shape (B, {self.global_cond_dim}), got {tuple(cond.shape)}")
        return self.net(cond).reshape(cond.shape[0], self.horizon, self.action_dim)


__all__ = ["ChunkMLP"]
