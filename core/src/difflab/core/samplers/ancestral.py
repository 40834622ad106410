r"""Ancestral and SDE solvers: Euler ancestral (k-diffusion, Karras et al. 2022) and DPM-Solver++ 2M SDE
(Lu et al. 2022, arXiv:2211.01095, Sec. 5).

**Euler ancestral.** In VE-scaled coordinates ``x~ = (x - b y) / a = x0 + sigma eps`` a step from
``sigma`` to ``sigma_next`` splits the target level into a deterministic part and fresh noise,

.. math::

    \sigma_{up} = \min\Big(\sigma_{next},\ \eta \sqrt{\sigma_{next}^2 (\sigma^2 - \sigma_{next}^2) / \sigma^2}\Big),
    \qquad \sigma_{down} = \sqrt{\sigma_{next}^2 - \sigma_{up}^2},

    \tilde x' = \tilde x + (\sigma_{down} - \sigma)\,(\tilde x - \hat x_0)/\sigma
              + s_{noise}\, \sigma_{up}\, z .

``eta = 1`` is ancestral sampling of the reverse chain, ``eta = 0`` plain Euler; the cap at
``sigma_next`` keeps ``eta > 1`` from asking for more noise than the next level holds. No noise is
drawn on a step onto ``sigma = 0``. One NFE per step.

**DPM-Solver++ 2M SDE.** On ``x' = x - b(t) y = a x0 + s eps``, with ``h = lambda_s - lambda_t`` the
step in half log-SNR ``lambda = log(a / s)`` from ``t`` to ``s < t``:

.. math::

    x'_s = \frac{s_s}{s_t} e^{-h} x'_t + a_s (1 - e^{-2h}) D_0 + c\, D_1 + s_s \sqrt{1 - e^{-2h}}\, z,

with ``D_0 = x0_hat(t)``, ``D_1 = (D_0 - x0_hat(t_prev)) / r_0``, ``r_0 = (lambda_t - lambda_prev) / h``
and ``c = a_s (1 - e^{-2h}) / 2`` (``solver_type="midpoint"``) or
``c = a_s ((1 - e^{-2h}) / (-2h) + 1)`` (``"heun"``). The first step, a step onto ``s_s = 0`` and, with
``lower_order_final`` and fewer than 15 steps, the final step are first order (``c = 0``). One NFE per
step; diffusers' ``DPMSolverMultistepScheduler(algorithm_type="sde-dpmsolver++")`` is the same loop.

Shapes: ``x`` (B, ...); ``grid`` (N + 1,) or (N + 1, *t_shape). Elements whose time does not change
in a step keep their state. ``callback`` gets ``{"step", "t", "x", "x0"}`` after each step.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from difflab.core.broadcast import expand_like
from difflab.core.samplers.base import Callback, Denoiser, SampleResult, keep_still, noise_like, prepare_grid, step_time


def ancestral_step(sigma: Tensor, sigma_next: Tensor, eta: float) -> tuple[Tensor, Tensor]:
    """``(sigma_down, sigma_up)`` of a step from ``sigma`` to ``sigma_next`` (module docstring)."""
    var = (sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2).clamp_min(0.0)
    sigma_up = torch.minimum(sigma_next, eta * var.sqrt())
    sigma_down = (sigma_next**2 - sigma_up**2).clamp_min(0.0).sqrt()
    return sigma_down, sigma_up


def sample_euler_ancestral(
    denoiser: Denoiser,
    x: Tensor,
    grid: Tensor,
    *,
    eta: float = 1.0,
    s_noise: float = 1.0,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> SampleResult:
    """Euler ancestral steps in ``sigma`` from ``x`` at ``grid[0]`` to ``grid[-1]`` (module docstring)."""
    if eta < 0 or s_noise < 0:
        raise ValueError(f"eta and s_noise must be >= 0, got eta={eta!r}, s_noise={s_noise!r}")
    process, y = denoiser.process, denoiser.y
    nfe0 = denoiser.nfe
    for i in range(grid.shape[0] - 1):
        t, t_next = step_time(grid, i, x).to(x.dtype), step_time(grid, i + 1, x).to(x.dtype)
        a, b, _ = (expand_like(c, x) for c in process.coefficients(t))
        xt = (x - b * y if process.conditional else x) / a
        sig, sig_next = process.sigma(t), process.sigma(t_next)
        x0, _ = denoiser(x, t)
        down, up = ancestral_step(sig, sig_next, eta)
        sig_x = expand_like(sig, x)
        xt_next = xt + (expand_like(down, x) - sig_x) * (xt - x0) / sig_x
        if bool((up > 0).any()):
            xt_next = xt_next + s_noise * expand_like(up, x) * noise_like(process, x, generator)
        a_n, b_n, _ = (expand_like(c, x) for c in process.coefficients(t_next))
        x_new = a_n * xt_next + b_n * y if process.conditional else a_n * xt_next
        x = torch.where(expand_like(t_next == t, x), x, x_new)
        if callback is not None:
            callback({"step": i, "t": t_next, "x": x, "x0": x0})
    return SampleResult(x, denoiser.nfe - nfe0)


def _second_order_coefficient(solver_type: str, a_s: Tensor, decay2: Tensor, h: Tensor) -> Tensor:
    if solver_type == "midpoint":
        return 0.5 * a_s * (1 - decay2)
    return a_s * ((1 - decay2) / (-2 * h) + 1)


def sample_dpmpp_2m_sde(
    denoiser: Denoiser,
    x: Tensor,
    grid: Tensor,
    *,
    solver_type: Literal["midpoint", "heun"] = "midpoint",
    lower_order_final: bool = True,
    s_noise: float = 1.0,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> SampleResult:
    """DPM-Solver++ 2M SDE from ``x`` at ``grid[0]`` to ``grid[-1]`` (module docstring)."""
    if solver_type not in ("midpoint", "heun"):
        raise ValueError(f"solver_type must be 'midpoint' or 'heun', got {solver_type!r}")
    process, y = denoiser.process, denoiser.y
    nfe0 = denoiser.nfe
    steps = prepare_grid(process, grid, x)
    n = len(steps)
    x0_prev = lam_prev = None
    for i in range(n):
        a_s, b_s, sd_s, a_t, b_t, sd_t = (expand_like(c, x) for c in steps.parts[i][:6])
        x0, _ = denoiser(x, steps.t[i], coefficients=steps.coefficients_t(i))
        xs = x - b_t * y if process.conditional else x
        decay = a_t * sd_s / (sd_t * a_s)  # e^{-h}, 0 when s_s = 0
        decay2 = decay**2
        lam_t = a_t.log() - sd_t.log()
        x_new = (sd_s / sd_t) * decay * xs + a_s * (1 - decay2) * x0
        if x0_prev is not None and not (i == n - 1 and lower_order_final and n < 15):
            h = a_s.log() - sd_s.log() - lam_t
            second = (sd_s > 0) & (lam_t != lam_prev)
            d1 = (x0 - x0_prev) * h / (lam_t - lam_prev)
            coeff = _second_order_coefficient(solver_type, a_s, decay2, h)
            x_new = x_new + torch.where(second, coeff * d1, torch.zeros_like(x_new))
        if bool((sd_s > 0).any()):
            x_new = x_new + s_noise * sd_s * (1 - decay2).clamp_min(0.0).sqrt() * noise_like(process, x, generator)
        if process.conditional:
            x_new = x_new + b_s * y
        x = keep_still(steps.still[i], x, x_new)
        x0_prev, lam_prev = x0, lam_t
        if callback is not None:
            callback({"step": i, "t": steps.s[i], "x": x, "x0": x0})
    return SampleResult(x, denoiser.nfe - nfe0)


__all__ = ["ancestral_step", "sample_dpmpp_2m_sde", "sample_euler_ancestral"]
