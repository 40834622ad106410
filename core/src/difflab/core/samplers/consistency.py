r"""Samplers for models that predict ``x0`` in one step: multistep consistency sampling (LCM, Luo et al.
2023, "Latent Consistency Models", Alg. 3; Song et al. 2023, "Consistency Models", Alg. 1) and
Trajectory Consistency Distillation's strategic stochastic sampling (TCD, Zheng et al. 2024, Sec. 4.3).

**LCM.** At each grid time ``t`` the model gives ``x0_hat`` (optionally through a consistency
boundary condition ``x0_hat <- c_skip(t) x_t + c_out(t) x0_hat``); the next state is a fresh draw of the
forward process at the next grid time,

.. math:: x_{t'} = a(t')\, \hat x_0 + b(t')\, y + s(t')\, z ,

and the last step (onto ``t' = 0`` or the grid's end) returns ``x0_hat`` re-noised to the end time
(no noise at ``t' = 0``). One NFE per step.

**TCD** with ``gamma`` in [0, 1]: from ``t`` the deterministic DDIM step goes to the intermediate time
``u = (1 - gamma) t'`` (on a whole-step chain, diffusers' ``floor((1 - gamma) j')`` of the integer
step), ``x_u = a(u) x0_hat + b(u) y + s(u) eps_hat``, then forward noise takes it from ``u`` up to ``t'``:
``x_{t'} = (a(t') / a(u)) x_u + sqrt(1 - a(t')^2 / a(u)^2) z`` for a VP process (in general the
process's transition from ``u`` to ``t'``). ``gamma = 0`` is DDIM; ``gamma = 1`` is LCM's sampler.
The last step ends at ``x_u`` without noise. One NFE per step.

Shapes: ``x`` (B, ...); ``grid`` (N + 1,) or (N + 1, *t_shape). ``callback`` gets ``{"step", "t",
"x", "x0"}`` after each step.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from difflab.core.broadcast import expand_like
from difflab.core.samplers.base import Callback, Denoiser, SampleResult, noise_like, step_time

Boundary = Callable[[Tensor], tuple[Tensor, Tensor]]
"""``t -> (c_skip, c_out)`` of a consistency model's boundary condition (shape of ``t``)."""


def lcm_boundary(num_steps: int, sigma_data: float = 0.5, timestep_scaling: float = 10.0) -> Boundary:
    """LCM's boundary condition on a ``num_steps`` chain: with ``c = (t T - 1) timestep_scaling``,
    ``c_skip = sigma_data^2 / (c^2 + sigma_data^2)`` and ``c_out = c / sqrt(c^2 + sigma_data^2)``."""

    def scalings(t: Tensor) -> tuple[Tensor, Tensor]:
        c = (t * num_steps - 1) * timestep_scaling
        return sigma_data**2 / (c**2 + sigma_data**2), c / (c**2 + sigma_data**2).sqrt()

    return scalings


def _marginal(denoiser: Denoiser, x0: Tensor, eps: Tensor, t: Tensor) -> Tensor:
    """``a(t) x0 + b(t) y + s(t) eps``."""
    a, b, s = (expand_like(c, x0) for c in denoiser.process.coefficients(t))
    out = a * x0 + s * eps
    return out + b * denoiser.y if denoiser.process.conditional else out


def sample_lcm(
    denoiser: Denoiser,
    x: Tensor,
    grid: Tensor,
    *,
    boundary: Boundary | None = None,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> SampleResult:
    """Multistep consistency sampling from ``x`` at ``grid[0]`` (module docstring)."""
    nfe0, n = denoiser.nfe, grid.shape[0] - 1
    for i in range(n):
        t, t_next = step_time(grid, i, x).to(x.dtype), step_time(grid, i + 1, x).to(x.dtype)
        x0, _ = denoiser(x, t)
        if boundary is not None:
            c_skip, c_out = boundary(t)
            x0 = expand_like(c_skip, x) * x + expand_like(c_out, x) * x0
        last = i == n - 1
        eps = torch.zeros_like(x) if last else noise_like(denoiser.process, x, generator)
        x = _marginal(denoiser, x0, eps, t_next)
        if callback is not None:
            callback({"step": i, "t": t_next, "x": x, "x0": x0})
    return SampleResult(x, denoiser.nfe - nfe0)


def tcd_time(process, t_next: Tensor, gamma: float) -> Tensor:
    """TCD's intermediate time ``(1 - gamma) t'``; on a whole-step chain from the integer step
    ``floor((1 - gamma) j')`` with ``j' = t' T - 1`` (diffusers' timestep), clamped at step 0."""
    if getattr(process, "whole_steps", False) and hasattr(process, "num_steps"):
        num = process.num_steps
        j = torch.floor((1 - gamma) * (torch.round(t_next * num) - 1).clamp_min(0))
        return (j + 1) / num
    return (1 - gamma) * t_next


def sample_tcd(
    denoiser: Denoiser,
    x: Tensor,
    grid: Tensor,
    *,
    gamma: float = 0.3,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> SampleResult:
    """TCD's strategic stochastic sampling from ``x`` at ``grid[0]`` (module docstring)."""
    if not 0 <= gamma <= 1:
        raise ValueError(f"gamma must be in [0, 1], got {gamma!r}")
    process = denoiser.process
    nfe0, n = denoiser.nfe, grid.shape[0] - 1
    for i in range(n):
        t, t_next = step_time(grid, i, x).to(x.dtype), step_time(grid, i + 1, x).to(x.dtype)
        x0, eps = denoiser(x, t)
        u = tcd_time(process, t_next, gamma).to(x.dtype)
        x_u = _marginal(denoiser, x0, eps, u)
        if i == n - 1 or gamma == 0 or math.isclose(gamma, 0.0):
            x = x_u
        else:
            x = _renoise(denoiser, x_u, u, t_next, noise_like(process, x, generator))
        if callback is not None:
            callback({"step": i, "t": t_next, "x": x, "x0": x0})
    return SampleResult(x, denoiser.nfe - nfe0)


def _renoise(denoiser: Denoiser, x_u: Tensor, u: Tensor, t: Tensor, z: Tensor) -> Tensor:
    """A draw of the forward process at ``t`` given its state ``x_u`` at ``u <= t``: for
    ``x_t = a_t x0 + b_t y + s_t eps``,
    ``x_t = (a_t / a_u)(x_u - b_u y) + b_t y + sqrt(s_t^2 - (a_t s_u / a_u)^2) z``."""
    a_u, b_u, s_u = (expand_like(c, x_u) for c in denoiser.process.coefficients(u))
    a_t, b_t, s_t = (expand_like(c, x_u) for c in denoiser.process.coefficients(t))
    y = denoiser.y
    base = x_u - b_u * y if denoiser.process.conditional else x_u
    out = (a_t / a_u) * base + (s_t**2 - (a_t * s_u / a_u) ** 2).clamp_min(0.0).sqrt() * z
    return out + b_t * y if denoiser.process.conditional else out


__all__ = ["lcm_boundary", "sample_lcm", "sample_tcd", "tcd_time"]
