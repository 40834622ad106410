r"""The adaptive correction sampler (ACS) on a per-position time grid (Fathi et al. 2025, arXiv:2504.06416).

MDLM's ancestral sampler, each position on its own clock, plus the paper's correction of tokens that
are already revealed. A step takes every position ``l`` from level ``t_l`` to ``s_l`` (one row of a
grid ``(N + 1, L)`` to the next, :meth:`~difflab.text.hyperschedules.SlidingWindowHyperschedule.grid`):

* a [MASK] token is revealed with probability ``(alpha(s_l) - alpha(t_l)) / (1 - alpha(t_l))``, its
  value drawn from the denoiser ``x_hat`` ([MASK] excluded; core's
  :meth:`~difflab.core.processes.discrete.MaskedDiffusion.posterior_probs`);
* a token revealed before the step (and not given) is re-drawn from ``x_hat`` with probability

  .. math::  \eta\, \frac{1 - \alpha(s_l)}{1 - \alpha(t_l)}

  (0 where ``alpha(t_l) = 1``: a position whose schedule has reached 0 is settled). For the shared
  log-linear schedule this is the reference's ``eta * s / t``: corrections fade as the sequence fills.

This is the paper's simplified, MDLM-like form of ACS: the redraw uses the same denoiser call as the
step (no extra NFE) and ``x_hat`` of a network trained with epsilon-hybrid noise, which has learned
to doubt visible tokens. With ``eta = 0`` the sampler is core's
:func:`~difflab.core.samplers.masked.sample_masked` on the per-position grid (same draws, same
result); with the shared schedule it is MDLM's sampler exactly. Categorical draws are float64
inverse-CDF draws (:func:`~difflab.core.samplers.masked.sample_categorical`).

Shapes: ``x`` (B, L) tokens; ``grid`` (N + 1, L) or (N + 1, B, L) descending noise levels;
``model(x_t, t) -> logits`` (B, L, V) with ``t`` (B, L).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from difflab.core.samplers.base import Callback, SampleResult
from difflab.core.samplers.masked import TokenModel, clean_probs, prepare_tokens, sample_categorical

__all__ = ["sample_adaptive_correction"]


def _row(grid: Tensor, i: int, x: Tensor) -> Tensor:
    """Grid row ``i`` as (B, L) levels on ``x``'s device."""
    return grid[i].expand(x.shape).to(x.device)


def _correct(x: Tensor, revealed: Tensor, probs: Tensor, ratio: Tensor, eta: float, generator) -> tuple[Tensor, int]:
    """Re-draw each revealed token from ``probs`` with probability ``eta * ratio``; returns ``(x, count)``."""
    u = torch.rand(x.shape, generator=generator, device=x.device, dtype=torch.float64)
    pick = revealed & (u < eta * ratio)
    redrawn = sample_categorical(probs, generator)
    return torch.where(pick, redrawn, x), int((pick & (redrawn != x)).sum())


def sample_adaptive_correction(
    model: TokenModel,
    process,
    x: Tensor,
    grid: Tensor,
    *,
    correction: float = 0.0,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    cache: bool = True,
    keep_mask: Tensor | None = None,
) -> SampleResult:
    """ACS from ``x`` (B, L) over the per-position ``grid``; positions outside ``keep_mask`` start as [MASK].

    Args:
        process: the masked process (``mask_id``, ``alpha``, ``posterior_probs``).
        correction: ``eta`` in [0, 1] (the reference samples with 0.01-0.015); 0: plain ancestral.
        cache: reuse the denoiser output while no token changes (exact for a time-blind network).

    Returns:
        ``SampleResult(x, nfe, info)``, ``info = {"steps", "cache_hits", "masks_left", "corrections"}``
        (corrections: re-draws that changed a token). Any [MASK] left after the grid is filled with
        the denoiser's argmax, as MDLM's final step.
    """
    if not 0.0 <= correction <= 1.0:
        raise ValueError(f"correction must be in [0, 1], got {correction}")
    if grid.ndim < 2 or grid.shape[0] < 2:
        raise ValueError(f"grid must be (N + 1, L) with N >= 1, got shape {tuple(grid.shape)}")
    mask_id = process.mask_id
    x, keep = prepare_tokens(process, x, keep_mask)
    nfe, hits, fixed, probs = 0, 0, 0, None
    n = grid.shape[0] - 1
    for i in range(n):
        t, s = _row(grid, i, x), _row(grid, i + 1, x)
        if probs is None:
            probs = clean_probs(model(x, t), mask_id)
            nfe += 1
        else:
            hits += 1
        drawn = sample_categorical(process.posterior_probs(x, probs, s, t), generator)
        masked = x == mask_id
        x_new = torch.where(masked & ~keep, drawn, x)
        if correction > 0.0:
            a_t, a_s = process.alpha(t.to(torch.float64)), process.alpha(s.to(torch.float64))
            ratio = torch.where(a_t < 1.0, (1.0 - a_s) / (1.0 - a_t).clamp_min(1e-300), torch.zeros_like(a_t))
            x_new, changed = _correct(x_new, ~masked & ~keep, probs, ratio, correction, generator)
            fixed += changed
        if not cache or bool((x_new != x).any()):
            probs = None
        x = x_new
        if callback is not None:
            x0 = torch.where(x == mask_id, probs.argmax(-1), x) if probs is not None else x
            callback({"step": i, "t": s, "x": x, "x0": x0})
    remaining = (x == mask_id) & ~keep
    if bool(remaining.any()):
        if probs is None:
            probs = clean_probs(model(x, _row(grid, n, x)), mask_id)
            nfe += 1
        x = torch.where(remaining, probs.argmax(-1), x)
    info: dict[str, Any] = {"steps": n, "cache_hits": hits, "masks_left": 0, "corrections": fixed}
    return SampleResult(x, nfe, info)
