r"""DDPD's planned denoising: a planner picks the positions to denoise, a denoiser fills them (Liu et al. 2025).

*Think While You Generate: Discrete Diffusion with Planned Denoising* (ICLR 2025). The generative
process is split into two models over tokens ``x_t`` (B, L):

* a **planner** ``p_phi(z^d = N | x_t)``: the probability that position ``d`` is still noise
  (``noise_logits`` (B, L), a sigmoid gives the probability);
* a **denoiser** ``p_theta(x_0^d | x_t, z^d = N)``: the clean token of a position that is noise
  (``logits`` (B, L, V), [MASK] excluded as in SUBS).

With the linear schedule (a position is noise with probability ``t``; time runs from ``t = 1``,
all noise, to ``t = 0``, clean, the reverse of DDPD's own convention ``t_ddpd = 1 - t``) the reverse
process turns a noise position into a clean one at rate ``1 / t``, so a position ``d`` is denoised at
rate ``p(z^d = N | x_t) / t`` and receives ``x^d ~ p(x_0^d | x_t, z^d = N)``. Simulating one such
jump at a time (pick ``d`` with probability ``∝ p(z^d = N | x_t)``, then draw its token) is exact:
if ``x_t`` has ``m`` noise positions at random places, the result has ``m - 1`` (the planner and
denoiser are then those of the noise level ``t = m / L``). The planner can also pick a position
that was already denoised and redraw it, which is how DDPD corrects its own mistakes under uniform
noise. With masking noise the planner is exact (a position is noise iff it is [MASK]) and DDPD is
masked diffusion sampled in a random order.

Steps from ``t`` to ``s`` on a descending grid (the process's ``default_grid``); with
``f = (alpha_s - alpha_t) / (1 - alpha_t)`` the fraction of the noise positions at ``t`` that are
clean at ``s`` (``(t - s) / t`` for the linear and log-linear schedules):

* ``schedule="adaptive"`` (DDPD's adaptive time: the planner, not the grid, says how much noise is
  left): ``k = max(1, round(f * sum_d p_d))`` positions per sequence, drawn without replacement with
  probabilities ``∝ p_d^(1 / planner_temperature)`` (Gumbel top-k). With ``N`` steps on a grid
  uniform in ``t`` that is the planner's noise count spread over the steps left, ``m_hat / (N - i)``;
  with ``N = L`` and an exact planner it is one position per step, the exact jump chain above.
* ``schedule="tau_leaping"``: every position independently with probability ``min(1, f p_d)``
  (tau-leaping of the rates). With the exact masked planner this is MDLM's ancestral step exactly.

All selected positions of a step are drawn from the denoiser of the same ``x_t`` (in parallel).
After the grid, any [MASK] left (masked processes) is filled by ``final_step`` (``argmax``, as
MDLM's noise removal, or ``sample``).

The anchor implementation picks positions from ``softmax(planner logits / T)``, which weighs the
odds ``p / (1 - p)`` rather than ``p``; here the weights are ``p^(1/T)`` so that ``T = 1`` is the
exact rule above and ``T -> 0`` greedily picks the most likely noise.

Network calls. ``model(x_t, t)`` returns either ``logits`` (B, L, V) or a tuple ``(logits,
noise_logits)`` from one network with two heads (one NFE per step). A separate ``planner(x_t, t) ->
noise_logits`` costs one more evaluation per step (NFE counts both networks). Without a planner and
with a masked process the exact planner ``p_d = [x_t^d = MASK]`` is used (no network). Given tokens
(``keep_mask``) are never picked.

Pure function: randomness only from ``generator``; ``callback({"step", "t", "x", "x0"})`` after each
step (``x0`` the denoiser's most likely tokens at the positions the planner thinks noisy).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor

from difflab.core.samplers.base import Callback, SampleResult, step_time
from difflab.core.samplers.masked import clean_probs, prepare_tokens, sample_categorical

DDPDSchedule = Literal["adaptive", "tau_leaping"]
PlannerFn = Callable[[Tensor, Tensor], Tensor]

__all__ = ["DDPDSchedule", "sample_ddpd", "ddpd_step_counts", "select_positions"]


def _check_options(schedule: str, grid: Tensor, planner_temperature: float, final_step: str) -> None:
    if schedule not in ("adaptive", "tau_leaping"):
        raise ValueError(f"schedule must be 'adaptive' or 'tau_leaping', got {schedule!r}")
    if grid.ndim == 0 or grid.shape[0] < 2:
        raise ValueError(f"grid needs at least two times, got shape {tuple(grid.shape)}")
    if planner_temperature <= 0.0:
        raise ValueError(f"planner_temperature must be > 0, got {planner_temperature}")
    if final_step not in ("argmax", "sample", "none"):
        raise ValueError(f"final_step must be 'argmax', 'sample' or 'none', got {final_step!r}")


def _clean_fraction(process, t: Tensor, s: Tensor) -> Tensor:
    r"""``f = (alpha_s - alpha_t) / (1 - alpha_t)``: the share of the noise at ``t`` gone by ``s``; shape of ``t``."""
    alpha = getattr(process, "alpha", None)
    t64, s64 = t.to(torch.float64), s.to(torch.float64)
    if alpha is None:  # the linear schedule
        return ((t64 - s64) / t64.clamp_min(1e-300)).clamp(0.0, 1.0)
    a_t, a_s = alpha(t64), alpha(s64)
    return ((a_s - a_t) / (1.0 - a_t).clamp_min(1e-300)).clamp(0.0, 1.0)


def ddpd_step_counts(noise_probs: Tensor, fraction: Tensor) -> Tensor:
    r"""DDPD's adaptive number of positions to denoise per sequence: ``max(1, round(f * sum_d p_d))``,
    at most the number of positions with ``p_d > 0``.

    Args:
        noise_probs: (B, L) planner probabilities (0 at given tokens).
        fraction: (B,) or scalar share ``f`` of the remaining noise removed in this step.

    Returns:
        (B,) long counts (0 only where no position can be noise).
    """
    m_hat = noise_probs.to(torch.float64).sum(-1)
    k = torch.round(m_hat * fraction.to(torch.float64)).to(torch.long).clamp_min(1)
    return torch.minimum(k, (noise_probs > 0).sum(-1))


def select_positions(
    noise_probs: Tensor, counts: Tensor, generator: torch.Generator | None = None, temperature: float = 1.0
) -> Tensor:
    r"""``counts[b]`` distinct positions of each row, drawn without replacement ``∝ p_d^(1/temperature)``.

    Gumbel top-k: keys ``log p_d / temperature + G_d`` with ``G_d`` standard Gumbel (float64); the
    ``k`` largest keys are a sequential draw without replacement (Plackett-Luce), so ``k = 1`` picks
    ``d`` with probability ``p_d^(1/T) / sum_e p_e^(1/T)``. Positions with ``p_d = 0`` are never picked.

    Args:
        noise_probs: (B, L) nonnegative weights; counts: (B,) long.

    Returns:
        (B, L) bool, ``counts[b]`` True entries per row (fewer only where fewer weights are positive).
    """
    p = noise_probs.to(torch.float64)
    u = torch.rand(p.shape, dtype=torch.float64, generator=generator, device=p.device)
    gumbel = -torch.log(-torch.log(u.clamp(1e-300, 1.0 - 1e-16)))
    keys = torch.where(p > 0, p.clamp_min(1e-300).log() / temperature + gumbel, torch.full_like(p, -torch.inf))
    order = keys.argsort(-1, descending=True)
    ranks = torch.empty_like(order).scatter_(-1, order, torch.arange(p.shape[-1], device=p.device).expand_as(order))
    return (ranks < counts[:, None]) & (p > 0)


def _evaluate(model, planner: PlannerFn | None, x: Tensor, t: Tensor, process) -> tuple[Tensor, Tensor, int]:
    """``(denoiser logits (B, L, V), noise probabilities (B, L), NFE)`` of one step."""
    out = model(x, t)
    if isinstance(out, tuple):
        if planner is not None:
            raise ValueError("model returned (logits, noise_logits) and a planner was given too; give one planner")
        logits, noise_logits = out
        return logits, torch.sigmoid(noise_logits.to(torch.float64)), 1
    if planner is not None:
        return out, torch.sigmoid(planner(x, t).to(torch.float64)), 2
    mask_id = getattr(process, "mask_id", None)
    if mask_id is None or not getattr(process, "absorbing", False):
        raise ValueError(
            f"sample_ddpd needs a planner for {type(process).__name__}: pass planner=..., or a model returning "
            "(logits, noise_logits); only a masked process has the exact planner [x_t = MASK]"
        )
    return out, (x == mask_id).to(torch.float64), 1


def _select(schedule: str, probs: Tensor, frac: Tensor, generator, temperature: float) -> tuple[Tensor, Tensor]:
    """``(selected (B, L) bool, planner noise estimate (B,))`` of one step."""
    batch = probs.shape[0]
    flat = probs.reshape(batch, -1)
    f = frac.reshape(batch, -1)[:, 0] if frac.ndim else frac.expand(batch)
    if schedule == "adaptive":
        chosen = select_positions(flat, ddpd_step_counts(flat, f), generator, temperature)
    else:
        w = flat.pow(1.0 / temperature) if temperature != 1.0 else flat
        u = torch.rand(flat.shape, dtype=torch.float64, generator=generator, device=flat.device)
        chosen = u < (f[:, None] * w).clamp(max=1.0)
    return chosen.reshape(probs.shape), flat.sum(-1)


def sample_ddpd(
    model: Callable[[Tensor, Tensor], Tensor | tuple[Tensor, Tensor]],
    process,
    x: Tensor,
    grid: Tensor,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    planner: PlannerFn | None = None,
    keep_mask: Tensor | None = None,
    schedule: DDPDSchedule = "adaptive",
    planner_temperature: float = 1.0,
    final_step: Literal["argmax", "sample", "none"] = "argmax",
) -> SampleResult:
    r"""DDPD's plan-and-denoise sampler (module docstring) from tokens ``x`` (B, L) over ``grid``.

    Args:
        model: the denoiser ``model(x_t, t) -> logits`` (B, L, V), or ``-> (logits, noise_logits)``
            for a network with a planner head.
        process: the discrete process (its ``alpha`` gives the per-step fraction ``f``; ``mask_id`` is
            excluded from the denoiser's tokens; a masked process starts from all [MASK]).
        x: (B, L) start tokens: ``process.prior_sample`` (all [MASK], or uniform tokens), given tokens
            where ``keep_mask`` is True.
        grid: descending times (N + 1,) or (N + 1, B); ``t`` handed to the networks is ``grid[i]``.
        planner: ``planner(x_t, t) -> noise_logits`` (B, L) of a separate planner network.
        keep_mask: (B, L) bool given tokens, never selected or changed.
        schedule: ``adaptive`` (DDPD's, ``k = max(1, round(f m_hat))`` per step) or ``tau_leaping``.
        planner_temperature: selection weights ``p^(1/T)``.
        final_step: fill of the [MASK] left after the grid (masked processes): ``argmax``, ``sample``, ``none``.

    Returns:
        ``SampleResult(sample, nfe, info)`` with ``info = {"steps", "denoised": (B,) positions
        denoised, "changed": (B,) of them that changed token, "noise_estimate": (B,) the planner's
        last ``sum_d p_d``, "masks_left"}``.
    """
    _check_options(schedule, grid, planner_temperature, final_step)
    mask_id = getattr(process, "mask_id", None)
    x, keep = prepare_tokens(process, x, keep_mask)
    batch, n = x.shape[0], grid.shape[0] - 1
    denoised = torch.zeros(batch, dtype=torch.long, device=x.device)
    changed = torch.zeros_like(denoised)
    nfe, m_hat, logits = 0, torch.zeros(batch, dtype=torch.float64, device=x.device), None
    for i in range(n):
        t, s = step_time(grid, i, x), step_time(grid, i + 1, x)
        logits, probs, cost = _evaluate(model, planner, x, t, process)
        nfe += cost
        probs = torch.where(keep, torch.zeros_like(probs), probs)
        chosen, m_hat = _select(schedule, probs, _clean_fraction(process, t, s), generator, planner_temperature)
        clean = clean_probs(logits, mask_id)
        drawn = sample_categorical(clean, generator)
        x_new = torch.where(chosen, drawn, x)
        denoised += chosen.reshape(batch, -1).sum(-1)
        changed += (x_new != x).reshape(batch, -1).sum(-1)
        x = x_new
        if callback is not None:
            x0 = torch.where(probs > 0.5, clean.argmax(-1), x)
            callback({"step": i, "t": s, "x": x, "x0": x0})
    remaining = (x == mask_id) & ~keep if mask_id is not None else torch.zeros_like(keep)
    if final_step != "none" and bool(remaining.any()):
        clean = clean_probs(_evaluate(model, planner, x, step_time(grid, n, x), process)[0], mask_id)
        nfe += 1 if planner is None else 2
        fill = clean.argmax(-1) if final_step == "argmax" else sample_categorical(clean, generator)
        x = torch.where(remaining, fill, x)
        remaining = (x == mask_id) & ~keep
    info: dict[str, Any] = {
        "steps": n,
        "denoised": denoised,
        "changed": changed,
        "noise_estimate": m_hat,
        "masks_left": int(remaining.sum()),
    }
    return SampleResult(x, nfe, info)
