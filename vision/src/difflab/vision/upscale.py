r"""Upscaling images of any size with overlapping tiles blended without seams.

The LR image is cut into ``tile x tile`` tiles (LR pixels) that overlap by ``overlap`` pixels; the
last tile of a row / column is moved inwards so every tile has the full size (an image smaller than
a tile is one tile). Each tile is super-resolved on its own (``tile_batch`` at a time, so memory is
bounded by a batch of tiles plus the output image), and the HR tiles are averaged with weights that ramp
linearly from ``1 / (2 R)`` to 1 across the ``R = overlap * scale`` HR pixels of every side that has a
neighbour (weight 1 elsewhere). Weights of overlapping tiles sum to a positive value everywhere, so
the result is a convex combination: where the tiles agree (away from their own borders, for any
network whose receptive field is smaller than the overlap) the tiled result equals the untiled one.

The alpha channel of RGBA inputs is upscaled bicubically and put back; greyscale inputs are
processed as RGB and written as RGB (both are reported).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from difflab.vision.data.degradations import bicubic_upsample


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``[0, length)`` with at least ``overlap`` overlap."""
    if tile >= length:
        return [0]
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must lie in [0, tile), got overlap={overlap}, tile={tile}")
    stride = tile - overlap
    starts = list(range(0, length - tile, stride)) + [length - tile]
    return sorted(set(starts))


def tile_count(h: int, w: int, tile: int, overlap: int) -> int:
    """Tiles :func:`upscale_tiled` cuts an ``h x w`` LR image into."""
    th, tw = min(tile, h), min(tile, w)
    return len(tile_starts(h, th, min(overlap, th - 1))) * len(tile_starts(w, tw, min(overlap, tw - 1)))


def _ramp(n: int, ramp: int, low: bool, high: bool) -> Tensor:
    w = torch.ones(n, dtype=torch.float64)
    r = min(ramp, n)
    if r > 0:
        up = (torch.arange(r, dtype=torch.float64) + 0.5) / r
        if low:
            w[:r] = torch.minimum(w[:r], up)
        if high:
            w[n - r :] = torch.minimum(w[n - r :], up.flip(0))
    return w


def blend_weights(length: int, tile: int, starts: list[int], ramp: int) -> Tensor:
    """Sum over the tiles starting at ``starts`` of their 1-D blend ramps, ``(length,)`` float64.

    The 2-D weight of a tile is the outer product of its row and column ramps, and the tiles form the
    grid ``rows x columns``, so the summed weight image is the outer product of the two 1-D sums:
    it needs no image-sized buffer."""
    total = torch.zeros(length, dtype=torch.float64)
    for a in starts:
        total[a : a + tile] += _ramp(tile, ramp, a > 0, a + tile < length)
    return total


def upscale_tiled(
    sr_fn: Callable[[Tensor, int], Tensor],
    lr: Tensor,
    scale: int,
    *,
    tile: int = 64,
    overlap: int = 16,
    tile_batch: int = 4,
    out_dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Super-resolve ``lr`` ``(1, C, h, w)`` tile by tile (module docstring).

    Memory: the output image (``C x h s x w s`` in ``out_dtype``, where the weighted tiles are summed
    in place), one batch of ``tile_batch`` tiles through ``sr_fn`` and two 1-D weight vectors; a
    2048 x 2048 input at x4 needs the 8192 x 8192 x 3 float32 output (768 MiB) and nothing else of
    that size.

    Args:
        sr_fn: ``sr_fn(lr_tiles (B, C, t, t), first_tile_index) -> (B, C, t * scale, t * scale)``.
        lr: the LR image.
        scale: SR factor.
        tile, overlap: tile size and overlap in LR pixels.
        tile_batch: tiles per ``sr_fn`` call.
        out_dtype: dtype of the output (and of the sum it is accumulated in).

    Returns:
        ``(1, C, h * scale, w * scale)`` in ``out_dtype`` on the CPU.
    """
    if lr.ndim != 4 or lr.shape[0] != 1:
        raise ValueError(f"upscale_tiled expects one image (1, C, h, w), got {tuple(lr.shape)}")
    _, c, h, w = lr.shape
    th, tw = min(tile, h), min(tile, w)
    ys, xs = tile_starts(h, th, min(overlap, th - 1)), tile_starts(w, tw, min(overlap, tw - 1))
    boxes = [(y, x) for y in ys for x in xs]
    out = torch.zeros(1, c, h * scale, w * scale, dtype=out_dtype)
    ramp = overlap * scale
    for i in range(0, len(boxes), tile_batch):
        chunk = boxes[i : i + tile_batch]
        tiles = torch.cat([lr[:, :, y : y + th, x : x + tw] for y, x in chunk])
        hr = sr_fn(tiles, i).detach().to("cpu", torch.float64)
        if hr.shape[-2:] != (th * scale, tw * scale):
            raise ValueError(
                f"sr_fn returned tiles of shape {tuple(hr.shape)}, expected (*, {c}, {th * scale}, {tw * scale})"
            )
        for k, (y, x) in enumerate(chunk):
            wy = _ramp(th * scale, ramp, y > 0, y + th < h)
            wx = _ramp(tw * scale, ramp, x > 0, x + tw < w)
            Y, X = y * scale, x * scale
            out[0, :, Y : Y + th * scale, X : X + tw * scale] += (hr[k] * (wy[:, None] * wx[None, :])).to(out_dtype)
    wy = blend_weights(h * scale, th * scale, [y * scale for y in ys], ramp)
    wx = blend_weights(w * scale, tw * scale, [x * scale for x in xs], ramp)
    out.mul_(wy.reciprocal().to(out_dtype)[:, None]).mul_(wx.reciprocal().to(out_dtype)[None, :])
    return out


def model_sr_fn(model, scale: int, *, steps: int | None = None, sampler: str | None = None, seed: int = 0):
    """``sr_fn`` for :func:`upscale_tiled` from a trained SR model; LR tiles in [-1, 1]."""

    def fn(lr_tiles: Tensor, index: int) -> Tensor:
        y = bicubic_upsample(lr_tiles.to(model.device, model.dtype), scale)
        g = torch.Generator(device=model.device).manual_seed(seed * 1_000_003 + index)
        kw = {"steps": steps, "generator": g}
        if sampler is not None:
            kw["sampler"] = sampler
        return model.super_resolve(y, **kw).sample

    return fn


__all__ = ["blend_weights", "upscale_tiled", "tile_count", "tile_starts", "model_sr_fn"]
