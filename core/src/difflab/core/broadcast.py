"""Broadcasting helpers shared by processes, samplers and the domains' own diffusion code.

Time in difflab is per element: ``t`` has shape ``(B,)`` or any shape that broadcasts against the
*leading* dimensions of ``x`` (for example ``(B, L)`` for one noise level per token of an
``(B, L, D)`` tensor). :func:`expand_like` appends trailing singleton dimensions so that ``t`` (or a
coefficient computed from it) multiplies ``x`` element-wise.
"""

from __future__ import annotations

import torch
from torch import Tensor


def expand_like(t: Tensor, x: Tensor) -> Tensor:
    """Reshape ``t`` of shape ``x.shape[:k]`` (or broadcastable to it) to ``t.shape + (1,) * (x.ndim - k)``.

    A 0-d ``t`` is returned unchanged (it already broadcasts).
    """
    if t.ndim == 0:
        return t
    if t.ndim > x.ndim:
        raise ValueError(f"time has shape {tuple(t.shape)}, more dimensions than x {tuple(x.shape)}")
    return t.reshape(t.shape + (1,) * (x.ndim - t.ndim))


def as_time(t: float | Tensor, x: Tensor) -> Tensor:
    """A time tensor of shape ``(B,)`` for a scalar ``t``, on ``x``'s device in float64-safe dtype."""
    if isinstance(t, Tensor):
        return t.to(device=x.device)
    return torch.full((x.shape[0],), float(t), device=x.device, dtype=x.dtype)
