r"""Exact log-likelihood of a diffusion model through its probability-flow ODE (Song et al. 2021,
"Score-Based Generative Modeling through SDEs", Sec. 4.3 and App. D.2; Chen et al. 2018 for the
instantaneous change of variables).

The probability-flow ODE ``dx/dt = v(x, t) = f(x, t) - g(t)^2 score(x, t) / 2`` carries the model's
marginal ``p_t``; along its solution from ``t_0`` (near the data) to ``T``

.. math:: \log p_{t_0}(x(t_0)) = \log p_T(x(T)) + \int_{t_0}^{T} \nabla\cdot v(x(t), t)\, dt .

:func:`log_likelihood` integrates ``x`` and the divergence together with fixed-step RK4 on a grid
uniform in ``t`` and adds the prior's log-density at ``T`` (by default the process's prior
``N(b(T) y, s(T)^2 I)``; pass ``prior_log_prob`` for another). The divergence is exact (one
vector-Jacobian product per data dimension: small dimensions) or Hutchinson's unbiased estimate
``E[z^T (dv/dx) z]`` with Rademacher ``z`` (one product per probe, any dimension). Results are in
nats per example; :func:`bits_per_dim` converts.

Shapes: ``x`` (B, *D); returns ``(B,)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

from difflab.core.samplers.base import Denoiser


def _velocity(denoiser: Denoiser, x: Tensor, t: Tensor) -> Tensor:
    _, eps = denoiser(x, t)
    _, _, s = denoiser.process.coefficients_like(t, x)
    return denoiser.process.reverse_drift(x, t, -eps / s, denoiser.y, probability_flow=True)


def divergence(
    fn: Callable[[Tensor], Tensor],
    x: Tensor,
    method: Literal["exact", "hutchinson"] = "exact",
    probes: int = 1,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """``(fn(x), div fn(x))`` per example ``(B,)``: exact (sum of the Jacobian's diagonal) or
    Hutchinson's estimate averaged over ``probes`` Rademacher probes."""
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        out = fn(xg)
        flat = out.reshape(out.shape[0], -1)
        if method == "exact":
            div = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
            for j in range(flat.shape[1]):
                (grad,) = torch.autograd.grad(flat[:, j].sum(), xg, retain_graph=True)
                div = div + grad.reshape(x.shape[0], -1)[:, j]
        else:
            div = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
            for _ in range(probes):
                z = torch.randint(0, 2, x.shape, generator=generator, device=x.device).to(x.dtype) * 2 - 1
                (grad,) = torch.autograd.grad(out, xg, grad_outputs=z, retain_graph=True)
                div = div + (grad * z).reshape(x.shape[0], -1).sum(1)
            div = div / probes
    return out.detach(), div.detach()


def gaussian_prior_log_prob(denoiser: Denoiser, x: Tensor, t: Tensor) -> Tensor:
    """``log N(x; b(t) y, s(t)^2 I)`` per example (the process's prior at ``t``)."""
    _, b, s = denoiser.process.coefficients_like(t, x)
    mean = b * denoiser.y if denoiser.process.conditional else torch.zeros_like(x)
    z = ((x - mean) / s).reshape(x.shape[0], -1)
    log_s = torch.log(s).expand_as(x).reshape(x.shape[0], -1)
    return -0.5 * (z**2).sum(1) - log_s.sum(1) - 0.5 * z.shape[1] * math.log(2 * math.pi)


def log_likelihood(
    denoiser: Denoiser,
    x: Tensor,
    *,
    steps: int = 100,
    t_start: float | None = None,
    t_end: float | None = None,
    divergence_method: Literal["exact", "hutchinson"] = "exact",
    probes: int = 1,
    prior_log_prob: Callable[[Tensor, Tensor], Tensor] | None = None,
    generator: torch.Generator | None = None,
    callback: Callable[[dict], None] | None = None,
    grid: Tensor | None = None,
    inset: float = 0.0,
) -> Tensor:
    """``log p_{t_start}(x)`` per example ``(B,)`` under the model's probability-flow ODE (module docstring).

    Args:
        denoiser: the model (its process gives ``f``, ``g`` and the prior).
        x: data ``(B, *D)`` at ``t_start``.
        steps: RK4 steps from ``t_start`` (default ``process.t_min``, else 1e-5) to ``t_end``
            (default ``process.t_max``); 4 NFE per step (and the divergence's products).
        divergence_method: ``exact`` or ``hutchinson`` (``probes`` Rademacher probes per evaluation).
        prior_log_prob: ``(x_T, T) -> log p_T(x_T)`` per example; the process's Gaussian prior if None.
        generator: randomness of the Hutchinson probes.
        callback: called after every RK4 step with ``{"step", "t", "x"}`` (progress).
        grid: increasing times ``(N + 1,)`` of the RK4 steps, from the data's time to the prior's
            (then ``steps``, ``t_start`` and ``t_end`` are not used): a non-uniform grid for a
            schedule that is steep somewhere.
        inset: the first and last stage of a step are evaluated this far inside the step at an inner
            grid point, so that a process whose coefficients are piecewise in ``t`` (a discrete chain's
            interpolation, which takes the next piece's slope at a knot) is read on the piece the step
            integrates when the grid points are its knots.
    """
    process = denoiser.process
    if grid is None:
        t0 = float(t_start) if t_start is not None else (float(process.t_min) or 1e-5)
        t1 = float(t_end) if t_end is not None else float(process.t_max)
        grid = torch.linspace(t0, t1, steps + 1, dtype=torch.float64)
    else:
        grid = grid.detach().to(dtype=torch.float64, device="cpu")
        if grid.ndim != 1 or grid.shape[0] < 2 or not bool((grid[1:] > grid[:-1]).all()):
            raise ValueError(f"log_likelihood: grid must be increasing times (N + 1,), got {tuple(grid.shape)}")
        steps, t1 = grid.shape[0] - 1, float(grid[-1])
    x = x.detach()
    total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)

    def rhs(x_: Tensor, t_: float) -> tuple[Tensor, Tensor]:
        t = torch.full((x_.shape[0],), t_, dtype=x_.dtype, device=x_.device)
        return divergence(lambda z: _velocity(denoiser, z, t), x_, divergence_method, probes, generator)

    for i in range(steps):
        t, h = float(grid[i]), float(grid[i + 1] - grid[i])
        lo, hi = (inset if i > 0 else 0.0), (inset if i + 1 < steps else 0.0)
        k1, d1 = rhs(x, t + lo)
        k2, d2 = rhs(x + 0.5 * h * k1, t + 0.5 * h)
        k3, d3 = rhs(x + 0.5 * h * k2, t + 0.5 * h)
        k4, d4 = rhs(x + h * k3, t + h - hi)
        x = x + h * (k1 + 2 * k2 + 2 * k3 + k4) / 6
        total = total + h * (d1 + 2 * d2 + 2 * d3 + d4) / 6
        if callback is not None:
            callback({"step": i, "t": t + h, "x": x})
    t_final = torch.full((x.shape[0],), t1, dtype=x.dtype, device=x.device)
    prior = (prior_log_prob or (lambda z, tt: gaussian_prior_log_prob(denoiser, z, tt)))(x, t_final)
    return prior + total


def bits_per_dim(log_prob: Tensor, dims: int, shift: float = 0.0) -> Tensor:
    """``-(log_prob + shift) / (dims log 2)``: nats per example to bits per dimension (``shift``
    for a change of variables, e.g. ``dims log(127.5)`` for images scaled from [0, 255] to [-1, 1])."""
    return -(log_prob + shift) / (dims * math.log(2))


__all__ = ["bits_per_dim", "divergence", "gaussian_prior_log_prob", "log_likelihood"]
