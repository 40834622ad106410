r"""Ancestral samplers of discrete diffusion: MDLM's masked sampler (with caching) and GIDD's (with self-correction).

Both run a descending grid ``grid[0] > grid[1] > ... > grid[N]`` (MDLM: ``linspace(1, 1e-5, N + 1)``;
GIDD: ``linspace(1 - eps, eps, N + 1)``) and call ``model(x_t, t) -> logits`` with ``x_t`` integer
tokens of shape (B, L) and ``t`` of shape (B,) (or the grid row's per-element shape, e.g. (B, L));
logits have shape (B, L, V). Each step draws ``x_s ~ process.posterior_probs(x_t, x0_probs, s, t)``
(the per-token posterior with the model's clean-token distribution plugged in).

Categorical draws are made in float64 by inverse-CDF sampling (:func:`sample_categorical`): lower
precision truncates the tail of the distribution and lowers sample entropy (the float32 Gumbel-max
issue reported for MDLM samplers).

Conditioning: positions where ``keep_mask`` is True are given context (a prompt prefix, or the
known parts of an infilling problem). They are never changed, never re-drawn and never touched by
self-correction; with an absorbing process (masked, GIDD) every other position is reset to [MASK]
before sampling.

Pure functions: randomness only from ``generator``, ``callback({"step", "t", "x", "x0"})`` after
each step (``x0`` the model's most likely clean tokens), NFE reported in the result.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor

from difflab.core.samplers.base import Callback, SampleResult, step_time

TokenModel = Callable[[Tensor, Tensor], Tensor]
FinalStep = Literal["argmax", "sample", "none"]

__all__ = ["sample_categorical", "sample_masked", "sample_gidd", "gidd_self_correct"]


def sample_categorical(probs: Tensor, generator: torch.Generator | None = None) -> Tensor:
    r"""Draw one index per row of ``probs`` (..., V) by inverse-CDF sampling in float64.

    ``probs`` need not be normalised. With ``U ~ U[0, 1)`` drawn in float64, the result is the first
    index ``k`` with ``cdf_k > U * cdf_V``, so zero-probability tokens are never drawn and every
    token keeps its probability down to float64 resolution. One uniform per row is consumed.
    """
    p = probs.to(torch.float64)
    cdf = p.cumsum(-1)
    total = cdf[..., -1:]
    u = torch.rand(p.shape[:-1] + (1,), dtype=torch.float64, generator=generator, device=p.device)
    idx = torch.searchsorted(cdf.contiguous(), (u * total).contiguous(), right=True)[..., 0]
    vocab = p.shape[-1]
    over = idx >= vocab
    if bool(over.any()):  # u * total rounded up to total: take the last token with positive mass
        last = vocab - 1 - torch.flip(p > 0, dims=(-1,)).to(torch.int8).argmax(-1)
        idx = torch.where(over, last, idx)
    return idx


def prepare_tokens(process, x: Tensor, keep_mask: Tensor | None) -> tuple[Tensor, Tensor]:
    """``(x, keep)``: integer tokens ``x`` with every position outside ``keep_mask`` set to [MASK]
    (absorbing processes), and the boolean ``keep`` mask expanded to ``x``'s shape."""
    if x.is_floating_point():
        raise ValueError(f"x must hold integer token ids, got dtype {x.dtype}")
    if keep_mask is None:
        keep = torch.zeros_like(x, dtype=torch.bool)
    else:
        keep = keep_mask.to(device=x.device, dtype=torch.bool).expand(x.shape)
    mask_id = getattr(process, "mask_id", None)
    if mask_id is not None and getattr(process, "absorbing", True):
        x = torch.where(keep, x, torch.full_like(x, mask_id))
    return x.clone(), keep


def clean_probs(logits: Tensor, mask_id: int | None, temperature: float = 1.0) -> Tensor:
    """Float64 softmax of the logits with the [MASK] logit at ``-inf`` (SUBS zero-masking)."""
    lg = logits.to(torch.float64)
    if temperature != 1.0:
        lg = lg / temperature
    if mask_id is not None:
        lg = lg.clone()
        lg[..., mask_id] = -math.inf
    return torch.softmax(lg, dim=-1)


def _x0_tokens(probs: Tensor, x: Tensor, mask_id: int | None) -> Tensor:
    best = probs.argmax(-1)
    return best if mask_id is None else torch.where(x == mask_id, best, x)


def sample_masked(
    model: TokenModel,
    process,
    x: Tensor,
    grid: Tensor,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    cache: bool = True,
    keep_mask: Tensor | None = None,
    final_step: FinalStep = "argmax",
) -> SampleResult:
    r"""MDLM's ancestral sampler for :class:`~difflab.core.processes.discrete.MaskedDiffusion` (Sahoo et al. 2024).

    Each step from ``t`` to ``s``: SUBS probabilities ``p = softmax(logits)`` with [MASK] excluded;
    masked tokens are drawn from ``∝ p (alpha_s - alpha_t)`` on real tokens and ``1 - alpha_s`` on
    [MASK]; unmasked tokens are copied. After the grid, ``final_step`` fills every [MASK] that is
    left (``argmax`` as MDLM's noise removal, ``sample`` a draw from ``p``, ``none`` leaves them).

    Caching (MDLM's ``ddpm_cache``): when a step changes no token, the next step reuses the previous
    model output without calling the model, and NFE does not grow. This is exact when the model does
    not depend on ``t`` given ``x_t``, as MDLM's default (no time conditioning) and the true
    masked-diffusion denoiser ``p(x0 | x_t)``. The random draws are the same with and without
    caching, so both give identical samples for the same generator.

    Args:
        model: ``model(x_t, t) -> logits`` (B, L, V).
        process: a masked process (``mask_id``, ``posterior_probs``).
        x: (B, L) tokens; positions outside ``keep_mask`` are set to [MASK] first, so pass
            ``process.prior_sample((B, L))`` for unconditional generation.
        grid: descending times (N + 1,) or (N + 1, *t_shape).
        keep_mask: (B, L) bool, the given tokens (prefix / infilling context); None: nothing given.
        final_step: ``argmax``, ``sample`` or ``none``.

    Returns:
        ``SampleResult(sample, nfe, info)`` with ``info = {"steps", "cache_hits", "masks_left"}``.
    """
    if final_step not in ("argmax", "sample", "none"):
        raise ValueError(f"final_step must be 'argmax', 'sample' or 'none', got {final_step!r}")
    if grid.ndim == 0 or grid.shape[0] < 2:
        raise ValueError(f"grid needs at least two times, got shape {tuple(grid.shape)}")
    mask_id = process.mask_id
    x, keep = prepare_tokens(process, x, keep_mask)
    nfe, hits, probs = 0, 0, None
    n = grid.shape[0] - 1
    for i in range(n):
        t, s = step_time(grid, i, x), step_time(grid, i + 1, x)
        if probs is None:
            probs = clean_probs(model(x, t), mask_id)
            nfe += 1
        else:
            hits += 1
        post = process.posterior_probs(x, probs, s, t)
        drawn = sample_categorical(post, generator)
        x_new = torch.where((x == mask_id) & ~keep, drawn, x)
        if not cache or bool((x_new != x).any()):
            probs = None
        x = x_new
        if callback is not None:
            x0 = _x0_tokens(probs, x, mask_id) if probs is not None else x
            callback({"step": i, "t": s, "x": x, "x0": x0})
    remaining = (x == mask_id) & ~keep
    if final_step != "none" and bool(remaining.any()):
        if probs is None:
            probs = clean_probs(model(x, step_time(grid, n, x)), mask_id)
            nfe += 1
        fill = probs.argmax(-1) if final_step == "argmax" else sample_categorical(probs, generator)
        x = torch.where(remaining, fill, x)
        remaining = (x == mask_id) & ~keep
    info: dict[str, Any] = {"steps": n, "cache_hits": hits, "masks_left": int(remaining.sum())}
    return SampleResult(x, nfe, info)


def _min_p_filter(probs: Tensor, min_p: float) -> Tensor:
    if min_p <= 0.0:
        return probs
    keep = probs >= min_p * probs.amax(-1, keepdim=True)
    p = probs * keep
    return p / p.sum(-1, keepdim=True)


def _check_gidd_options(
    final_step: str, grid: Tensor, corrections: int, t0: float, temperature: float, tokens_per_step: int, min_p: float
) -> None:
    """The option checks of :func:`sample_gidd` (each error shows the bad value)."""
    if final_step not in ("argmax", "sample", "none"):
        raise ValueError(f"final_step must be 'argmax', 'sample' or 'none', got {final_step!r}")
    if grid.ndim == 0 or grid.shape[0] < 2:
        raise ValueError(f"grid needs at least two times, got shape {tuple(grid.shape)}")
    if corrections < 0:
        raise ValueError(f"self_correction_steps must be >= 0, got {corrections}")
    _check_correction_options(t0, temperature, tokens_per_step)
    if not 0.0 <= min_p < 1.0:
        raise ValueError(f"min_p must be in [0, 1), got {min_p}")


def _check_correction_options(t0: float, temperature: float, tokens_per_step: int) -> None:
    """The self-correction options shared by :func:`sample_gidd` and :func:`gidd_self_correct`."""
    if not 0.0 < t0 < 1.0:
        raise ValueError(f"t0 must be in (0, 1), got {t0}")
    if temperature <= 0.0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if tokens_per_step < 1:
        raise ValueError(f"tokens_per_step must be >= 1, got {tokens_per_step}")


def _fill_masks(
    model: TokenModel, x: Tensor, keep: Tensor, t: Tensor, mask_id: int, min_p: float, final_step: str, generator
) -> tuple[Tensor, int]:
    """Fill the [MASK] tokens left at the grid's end (``argmax`` or a draw); returns ``(x, NFE used)``."""
    remaining = (x == mask_id) & ~keep
    if not bool(remaining.any()):
        return x, 0
    probs = _min_p_filter(clean_probs(model(x, t), mask_id), min_p)
    fill = probs.argmax(-1) if final_step == "argmax" else sample_categorical(probs, generator)
    return torch.where(remaining, fill, x), 1


def sample_gidd(
    model: TokenModel,
    process,
    x: Tensor,
    grid: Tensor,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    keep_mask: Tensor | None = None,
    min_p: float = 0.0,
    final_step: FinalStep = "argmax",
    self_correction_steps: int = 0,
    t0: float = 0.01,
    temperature: float = 0.1,
    tokens_per_step: int = 1,
    patience: int = 32,
) -> SampleResult:
    r"""GIDD's ancestral sampler with its self-correction loop (von Rütte et al. 2025).

    Denoising: at each step ``x_hat = softmax(logits)`` ([MASK] excluded, optional ``min_p``
    filter: tokens below ``min_p * max`` dropped) and ``z_s ~ q_{t|s}(z_t | z_s) q_s(z_s | x_hat) /
    q_t(z_t | x_hat)`` (``process.posterior_probs``). Unlike the masked sampler, already decoded
    tokens can change (uniform noise). One NFE per step. ``final_step`` then fills any [MASK] left
    when the grid ends above 0 (a grid ending at 0 leaves none).

    Self-correction (GIDD Sec. 5, the reference sampler's loop): :func:`gidd_self_correct` for at
    most ``self_correction_steps`` iterations at the fixed time ``t0`` (0.01), with ``temperature``
    (0.1), ``tokens_per_step`` (1) and ``patience`` (32), each sequence stopping on its own.

    Works for :class:`~difflab.core.processes.discrete.GIDD` and, without [MASK], for
    :class:`~difflab.core.processes.discrete.UniformDiffusion` (start from ``process.prior_sample``).

    Returns:
        ``SampleResult(sample, nfe, info)``; ``info`` has ``steps``, ``masks_left``,
        ``correction_steps`` (B,) iterations that changed each sequence and ``self_accuracy`` (B,).
    """
    _check_gidd_options(final_step, grid, self_correction_steps, t0, temperature, tokens_per_step, min_p)
    mask_id = getattr(process, "mask_id", None)
    x, keep = prepare_tokens(process, x, keep_mask)
    nfe, n = 0, grid.shape[0] - 1
    probs = None
    for i in range(n):
        t, s = step_time(grid, i, x), step_time(grid, i + 1, x)
        probs = _min_p_filter(clean_probs(model(x, t), mask_id), min_p)
        nfe += 1
        post = process.posterior_probs(x, probs, s, t)
        x = torch.where(keep, x, sample_categorical(post, generator))
        if callback is not None:
            callback({"step": i, "t": s, "x": x, "x0": probs.argmax(-1)})
    if mask_id is not None and final_step != "none":
        x, extra = _fill_masks(model, x, keep, step_time(grid, n, x), mask_id, min_p, final_step, generator)
        nfe += extra

    info: dict[str, Any] = {"steps": n}
    if self_correction_steps > 0:
        corrected = gidd_self_correct(
            model,
            process,
            x,
            generator=generator,
            keep_mask=keep,
            steps=self_correction_steps,
            t0=t0,
            temperature=temperature,
            tokens_per_step=tokens_per_step,
            patience=patience,
            callback=callback,
            step_offset=n,
            time_dtype=grid.dtype,
        )
        x, nfe = corrected.sample, nfe + corrected.nfe
        info.update(corrected.info)
    info["masks_left"] = 0 if mask_id is None else int(((x == mask_id) & ~keep).sum())
    return SampleResult(x, nfe, info)


def gidd_self_correct(
    model: TokenModel,
    process,
    x: Tensor,
    *,
    generator: torch.Generator | None = None,
    keep_mask: Tensor | None = None,
    steps: int = 128,
    t0: float = 0.01,
    temperature: float = 0.1,
    tokens_per_step: int = 1,
    patience: int = 32,
    callback: Callback | None = None,
    step_offset: int = 0,
    time_dtype: torch.dtype = torch.float32,
) -> SampleResult:
    r"""GIDD's self-correction of finished sequences ``x`` (B, L) at the fixed time ``t0``.

    Per iteration and sequence: ``p = softmax(logits(x, t0) / temperature)`` ([MASK] excluded), a
    proposal ``x'_i ~ p_i`` everywhere, scores ``p_i(x'_i)`` where ``x'_i != x_i`` (and outside
    ``keep_mask``), the ``tokens_per_step`` best-scoring positions replaced. A sequence stops,
    discarding that iteration's proposal, when it would not change, or when its self-accuracy
    (fraction of positions equal to ``argmax p``) has not beaten its best for more than ``patience``
    iterations; at most ``steps`` iterations in all (GIDD: 128 steps, patience 32, t0 0.01,
    temperature 0.1, one token per step). One NFE per iteration (the whole batch).

    Returns ``SampleResult`` with ``info = {"correction_steps": (B,) applied iterations,
    "self_accuracy": (B,) best self-accuracy}``.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    _check_correction_options(t0, temperature, tokens_per_step)
    if patience < 0:
        raise ValueError(f"patience must be >= 0, got {patience}")
    if x.is_floating_point():
        raise ValueError(f"x must hold integer token ids, got dtype {x.dtype}")
    mask_id = getattr(process, "mask_id", None)
    batch, shape = x.shape[0], x.shape
    keep = torch.zeros_like(x, dtype=torch.bool) if keep_mask is None else keep_mask.to(x.device, torch.bool)
    flat_keep = keep.expand(shape).reshape(batch, -1)
    k = min(tokens_per_step, flat_keep.shape[1])
    changed_steps = torch.zeros(batch, dtype=torch.long, device=x.device)
    best_acc = torch.zeros(batch, dtype=torch.float64, device=x.device)
    stale = torch.zeros(batch, dtype=torch.long, device=x.device)
    active = torch.ones(batch, dtype=torch.bool, device=x.device)
    t_fix = torch.full((batch,), t0, dtype=time_dtype, device=x.device)
    nfe = 0
    for j in range(steps):
        if not bool(active.any()):
            break
        logits = model(x, t_fix)
        nfe += 1
        p = clean_probs(logits, mask_id, temperature).reshape(batch, -1, logits.shape[-1])
        z = x.reshape(batch, -1)
        proposal = sample_categorical(p, generator)
        score = p.gather(-1, proposal[..., None])[..., 0]
        score = torch.where((proposal != z) & ~flat_keep, score, torch.full_like(score, -1.0))
        top_val, top_idx = torch.topk(score, k, dim=-1)
        new_vals = torch.where(top_val > 0, proposal.gather(-1, top_idx), z.gather(-1, top_idx))
        z_next = z.scatter(-1, top_idx, new_vals)
        greedy = p.argmax(-1)  # temperature does not move the argmax
        acc = (z_next == greedy).to(torch.float64).mean(-1)
        improved = acc > best_acc
        best_acc = torch.where(active & improved, acc, best_acc)
        stale = torch.where(improved, torch.zeros_like(stale), stale + 1)
        stop = (stale > patience) | (z_next == z).all(-1)
        apply = active & ~stop
        x = torch.where(apply[:, None], z_next, z).reshape(shape)
        changed_steps += apply.to(torch.long)
        active = apply
        if callback is not None:
            callback({"step": step_offset + j, "t": t_fix, "x": x, "x0": greedy.reshape(shape)})
    return SampleResult(x, nfe, {"correction_steps": changed_steps, "self_accuracy": best_acc})
