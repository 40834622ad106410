r"""Euler and Heun samplers of the probability-flow ODE (Karras et al. 2022, arXiv:2206.00364, Alg. 2).

The ODE is solved in VE-scaled coordinates ``x~ = (x - b(t) y) / a(t) = x0 + sigma eps`` with
``sigma = process.sigma(t) = s / a``, where it reads ``dx~/dsigma = (x~ - x0_hat) / sigma``. A step
from ``sigma`` to ``sigma_next``:

.. math::

    \gamma = \min(s_{churn}/N, \sqrt2 - 1) \text{ if } s_{tmin} \le \sigma \le s_{tmax} \text{ else } 0,
    \quad \hat\sigma = \sigma (1 + \gamma), \quad
    \tilde x \leftarrow \tilde x + s_{noise}\sqrt{\hat\sigma^2 - \sigma^2}\, z,

    d = (\tilde x - \hat x_0(\tilde x, \hat\sigma)) / \hat\sigma, \qquad
    \tilde x' = \tilde x + (\sigma_{next} - \hat\sigma) d \quad\text{(Euler)},

    \text{Heun: } d' = (\tilde x' - \hat x_0(\tilde x', \sigma_{next})) / \sigma_{next}, \quad
    \tilde x_{next} = \tilde x + (\sigma_{next} - \hat\sigma)(d + d')/2,

with Euler on a step onto ``sigma_next = 0`` (Heun: 2 NFE per step otherwise). The churned level
``sigma_hat`` is capped at ``process.sigma(t_max)`` and the denoiser is evaluated at
``t_from_sigma(sigma_hat)``. ``s_churn = 0`` (default) is the deterministic sampler; the grid gives
the noise levels (e.g. ``time_grid(..., kind="karras")``).

Shapes: ``x`` (B, ...); ``grid`` (N + 1,) or (N + 1, *t_shape). Elements whose time does not change
in a step keep their state. ``callback`` gets ``{"step", "t", "x", "x0"}`` after each
step, ``t`` being the time of the new ``x``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from difflab.core.broadcast import expand_like
from difflab.core.processes.base import LinearGaussianProcess
from difflab.core.samplers.base import Callback, Denoiser, SampleResult, noise_like, step_time


class _RowCoefficients:
    """``(t, a, b, sigma)`` of every grid row, evaluated once in one call over the whole grid (in
    float64, then cast to ``x``'s dtype); ``a`` and ``b`` shaped to multiply ``x``, ``t`` and ``sigma``
    as the row's time."""

    def __init__(self, process: LinearGaussianProcess, grid: Tensor, x: Tensor) -> None:
        g = grid.to(device=x.device, dtype=torch.float64)
        a, b, s = process.coefficients(g)
        parts = [c.to(x.dtype) for c in (g, a, b, s / a)]
        self.rows = []
        for i in range(g.shape[0]):
            t, a_i, b_i, sig = (step_time(c, i, x) for c in parts)
            self.rows.append((t, expand_like(a_i, x), expand_like(b_i, x), sig))

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return self.rows[i]


def _mix(process: LinearGaussianProcess, xt: Tensor, a: Tensor, b: Tensor, y: Tensor | None) -> Tensor:
    """``x = a x~ + b y`` from VE-scaled coordinates (``a``, ``b`` shaped like ``xt``)."""
    return a * xt + b * y if process.conditional else a * xt


def _sample_karras(
    denoiser: Denoiser,
    x: Tensor,
    grid: Tensor,
    heun: bool,
    s_churn: float,
    s_tmin: float,
    s_tmax: float,
    s_noise: float,
    generator: torch.Generator | None,
    callback: Callback | None,
) -> SampleResult:
    if s_churn < 0 or s_noise < 0:
        raise ValueError(f"s_churn and s_noise must be >= 0, got s_churn={s_churn!r}, s_noise={s_noise!r}")
    process, y = denoiser.process, denoiser.y
    nfe0, n = denoiser.nfe, grid.shape[0] - 1
    gamma = min(s_churn / n, math.sqrt(2) - 1)
    sigma_top = process.sigma(torch.tensor(process.t_max, dtype=x.dtype, device=x.device))
    sigma_start = process.sigma(grid[0].to(device=x.device, dtype=torch.float64))
    if not bool(torch.isfinite(sigma_start).all()):
        raise ValueError(
            f"{type(process).__name__} has an infinite noise level sigma = s/a at t = {grid[0].max().item():g}: "
            "Euler/Heun integrate in sigma, so start the grid below the prior (for flow matching, t_start < 1)"
        )
    rows = _RowCoefficients(process, grid, x)
    for i in range(n):
        (t, a, b, sig), (t_next, a_next, b_next, sig_next) = rows[i], rows[i + 1]
        xt = (x - b * y if process.conditional else x) / a
        t_hat, sig_hat, a_hat, b_hat = t, sig, a, b
        if gamma > 0:
            churn = (sig >= s_tmin) & (sig <= s_tmax)
            sig_hat = torch.where(churn, torch.minimum(sig * (1 + gamma), sigma_top), sig)
            t_hat = torch.where(churn & (sig_hat > sig), process.t_from_sigma(sig_hat), t)
            a_hat, b_hat, _ = (expand_like(c, x) for c in process.coefficients(t_hat))
            extra = expand_like((sig_hat**2 - sig**2).clamp_min(0.0).sqrt(), x)
            xt = xt + s_noise * extra * noise_like(process, x, generator)
        x0, _ = denoiser(_mix(process, xt, a_hat, b_hat, y), t_hat)
        sig_hat_x, sig_next_x = expand_like(sig_hat, x), expand_like(sig_next, x)
        d = (xt - x0) / sig_hat_x
        xt_next = xt + (sig_next_x - sig_hat_x) * d
        if heun and bool((sig_next > 0).any()):
            x0_2, _ = denoiser(_mix(process, xt_next, a_next, b_next, y), t_next)
            d2 = (xt_next - x0_2) / sig_next_x
            xt_next = torch.where(sig_next_x > 0, xt + (sig_next_x - sig_hat_x) * (d + d2) / 2, xt_next)
        x = torch.where(expand_like(t_next == t, x), x, _mix(process, xt_next, a_next, b_next, y))
        if callback is not None:
            callback({"step": i, "t": t_next, "x": x, "x0": x0})
    return SampleResult(x, denoiser.nfe - nfe0)


def sample_euler(
    denoiser: Denoiser,
    x: Tensor,
    grid: Tensor,
    *,
    s_churn: float = 0.0,
    s_tmin: float = 0.0,
    s_tmax: float = float("inf"),
    s_noise: float = 1.0,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> SampleResult:
    """Euler steps in ``sigma`` (Karras Alg. 2 without the correction); one NFE per step."""
    return _sample_karras(denoiser, x, grid, False, s_churn, s_tmin, s_tmax, s_noise, generator, callback)


def sample_heun(
    denoiser: Denoiser,
    x: Tensor,
    grid: Tensor,
    *,
    s_churn: float = 0.0,
    s_tmin: float = 0.0,
    s_tmax: float = float("inf"),
    s_noise: float = 1.0,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> SampleResult:
    """Heun steps in ``sigma`` (Karras Alg. 2); 2 NFE per step, 1 on a step onto ``sigma = 0``."""
    return _sample_karras(denoiser, x, grid, True, s_churn, s_tmin, s_tmax, s_noise, generator, callback)
