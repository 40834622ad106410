r"""Feature-wise conditioning layers.

* :class:`FiLM` (Perez et al. 2018, "FiLM: Visual Reasoning with a General Conditioning Layer"):
  a linear map of the condition ``c`` gives a per-channel scale and shift,

  .. math:: (\gamma, \beta) = W c + b, \qquad \mathrm{FiLM}(x, c) = x \odot (1 + \gamma) + \beta .

  The map is zero-initialised, so the layer starts as the identity (the "1 +" keeps the unit gain).
* :class:`AdaLayerNorm` (adaptive layer norm of DiT, Peebles & Xie 2023): a LayerNorm without
  learned affine parameters followed by FiLM on the last (feature) axis,
  ``AdaLN(x, c) = LN(x) (1 + gamma(c)) + beta(c)``.

Broadcasting: the condition has shape ``P + (cond_dim,)`` where ``P`` is a prefix of ``x``'s
non-channel dimensions: ``(B, cond_dim)`` for one condition per example, ``(B, L, cond_dim)`` for one
per token or frame (per-element noise levels). Scale and shift are broadcast over the remaining
dimensions.
"""

from __future__ import annotations

from torch import Tensor, nn


def _broadcast_to_channels(v: Tensor, x: Tensor, channel_axis: int) -> Tensor:
    """Reshape ``v`` of shape ``P + (C,)`` so that it broadcasts against ``x`` with channels at ``channel_axis``."""
    axis = channel_axis % x.ndim
    rest = [d for i, d in enumerate(x.shape) if i != axis]  # x's non-channel dims, in order
    prefix = tuple(v.shape[:-1])
    if len(prefix) > len(rest) or not all(p in (1, r) for p, r in zip(prefix, rest)):
        raise ValueError(
            f"condition of shape {tuple(v.shape)} does not match x of shape {tuple(x.shape)} "
            f"(channel axis {channel_axis}): its leading dims must be a prefix of x's non-channel dims"
        )
    # v: P + (C,) -> P + (1,) * (len(rest) - len(P)) + (C,), then move C to ``axis``
    v = v.reshape(prefix + (1,) * (len(rest) - len(prefix)) + (v.shape[-1],))
    return v.movedim(-1, axis)


class FiLM(nn.Module):
    """Feature-wise linear modulation ``x * (1 + scale(c)) + shift(c)``.

    Args:
        cond_dim: size of the condition vector.
        channels: number of channels of ``x`` that are modulated.
        channel_axis: the axis of ``x`` holding the channels (1 for ``(B, C, ...)`` feature maps,
            -1 for ``(B, ..., C)`` tokens and MLP features).

    Shapes: ``x`` with ``channels`` at ``channel_axis``; ``cond`` of shape ``P + (cond_dim,)`` (see
    module docstring). Returns ``x``'s shape.
    """

    def __init__(self, cond_dim: int, channels: int, *, channel_axis: int = 1) -> None:
        super().__init__()
        if cond_dim < 1 or channels < 1:
            raise ValueError(f"FiLM: cond_dim and channels must be >= 1, got {cond_dim}, {channels}")
        self.channels, self.channel_axis = channels, channel_axis
        self.proj = nn.Linear(cond_dim, 2 * channels)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def scale_shift(self, cond: Tensor) -> tuple[Tensor, Tensor]:
        """``(scale, shift)``, each of shape ``cond.shape[:-1] + (channels,)``."""
        scale, shift = self.proj(cond).chunk(2, dim=-1)
        return scale, shift

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        if x.shape[self.channel_axis] != self.channels:
            raise ValueError(
                f"FiLM: x has {x.shape[self.channel_axis]} channels at axis {self.channel_axis}, "
                f"expected {self.channels}"
            )
        scale, shift = self.scale_shift(cond)
        scale = _broadcast_to_channels(scale, x, self.channel_axis)
        shift = _broadcast_to_channels(shift, x, self.channel_axis)
        return x * (1 + scale) + shift


class AdaLayerNorm(nn.Module):
    """LayerNorm over the last axis whose scale and shift come from a condition (DiT's adaLN).

    Args:
        dim: feature size (last axis of ``x``).
        cond_dim: size of the condition vector.
        eps: LayerNorm epsilon.

    Shapes: ``x`` of shape ``(..., dim)``; ``cond`` of shape ``P + (cond_dim,)`` with ``P`` a prefix of
    ``x.shape[:-1]``. Returns ``x``'s shape. At initialisation it equals a plain LayerNorm.
    """

    def __init__(self, dim: int, cond_dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=eps, elementwise_affine=False)
        self.film = FiLM(cond_dim, dim, channel_axis=-1)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        return self.film(self.norm(x), cond)


__all__ = ["FiLM", "AdaLayerNorm"]
