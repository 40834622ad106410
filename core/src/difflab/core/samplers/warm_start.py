r"""Warm starts: begin sampling at an intermediate time from an estimate of the clean signal.

SDEdit (Meng et al. 2022) noises a guess ``x0_est`` (a sketch, a degraded input, a base forecast,
the previous action chunk) to an intermediate time ``t_start`` with the forward marginal and runs
any sampler from there:

.. math:: x_{t_0} = a(t_0)\,\hat x_0 + b(t_0)\,y + s(t_0)\,\varepsilon .

With ``renoise=False`` the estimate is used as the state at ``t_start`` unchanged (RTI-DP's
shifted previous chunk, or an estimate that is already noisy, such as InvSR's
``z_0 + sigma_tau eps_hat``). :func:`truncated_grid` cuts a sampler's full grid to start at
``t_start``; then ``sample_xxx(denoiser, warm_start(...), truncated_grid(grid, t_start))`` runs
the remainder of the chain.

Shapes: ``x0_estimate`` ``(B, ...)``; ``t_start`` a float or per-element time ``(B,)`` / ``(B, L)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from difflab.core.processes.base import LinearGaussianProcess


def warm_start(
    process: LinearGaussianProcess,
    x0_estimate: Tensor,
    t_start: float | Tensor,
    *,
    y: Tensor | None = None,
    noise: Tensor | None = None,
    generator: torch.Generator | None = None,
    renoise: bool = True,
) -> Tensor:
    """The start state at ``t_start`` from a clean estimate.

    Args:
        process: the forward process.
        x0_estimate: estimate of the clean signal, ``(B, ...)``.
        t_start: the intermediate time (scalar, ``(B,)`` or per element).
        y: the process condition (conditional processes).
        noise: standard noise to use (the process's own noise from ``generator`` if omitted).
        generator: source of the noise.
        renoise: draw ``x_t ~ q(x_t | x0_estimate[, y])`` (SDEdit); ``False`` returns the estimate
            unchanged as the state at ``t_start`` (RTI-DP style).

    Returns:
        the state at ``t_start``, shape of ``x0_estimate``.
    """
    if not renoise:
        return x0_estimate.clone()
    t = torch.as_tensor(t_start, dtype=x0_estimate.dtype, device=x0_estimate.device)
    if t.ndim == 0:
        t = t.expand(x0_estimate.shape[0])
    if bool(((t < 0) | (t > process.t_max)).any()):
        raise ValueError(f"t_start must lie in [0, {process.t_max}], got {t_start}")
    x_t, _ = process.sample_marginal(x0_estimate, t, y, noise=noise, generator=generator)
    return x_t


def truncated_grid(grid: Tensor, t_start: float, *, atol: float = 1e-9) -> Tensor:
    """The part of a descending 1-D ``grid`` below ``t_start``, starting exactly at ``t_start``.

    Grid points at or above ``t_start`` are dropped and ``t_start`` is prepended (a grid point within
    ``atol`` of ``t_start`` is taken as it). E.g. ``[1, .75, .5, .25, 0]`` cut at 0.6 gives
    ``[.6, .5, .25, 0]``.
    """
    if grid.ndim != 1:
        raise ValueError(f"truncated_grid needs a 1-D grid, got shape {tuple(grid.shape)}")
    if not float(grid[-1]) < t_start <= float(grid[0]) + atol:
        raise ValueError(f"t_start={t_start} must lie in ({float(grid[-1])}, {float(grid[0])}]")
    rest = grid[grid < t_start - atol]
    head = torch.tensor([t_start], dtype=grid.dtype, device=grid.device)
    return torch.cat([head, rest])


__all__ = ["warm_start", "truncated_grid"]
