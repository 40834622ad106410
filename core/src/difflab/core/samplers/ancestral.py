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
``c = a_s ((1 - e^{-2h}) / (-2h) + 1)`` (``"heun"``). The 3M SDE (``order=3``) replaces ``c D_1`` by
``a_s ((1 - e^{-2h}) / (-2h) + 1) D1' + a_s ((1 - e^{-2h} - 2h) / (2h)^2 + 1/2) D2`` with ``D1'``,
``D2`` of :func:`~difflab.core.samplers.dpm_solver.third_order_terms` (the ``D2`` weight is ``h/3 + O(h^2)``,
k-diffusion's ``-phi_3``). The first step, a step onto ``s_s = 0`` and, with ``lower_order_final`` and
fewer than 15 steps, the final step are first order (``c = 0``). One NFE per step; diffusers'
``DPMSolverMultistepScheduler(algorithm_type="sde-dpmsolver++")`` is the same loop at order 2 (at order 3
it weights ``D2`` by ``... - 1/2``, which tends to -1 as ``h -> 0`` and does not converge).

``noise`` is ``"white"`` (fresh draws from ``generator``), ``"brownian"`` (increments of one Brownian
path, :mod:`~difflab.core.samplers.brownian`) or a ``(t, t_next) -> z`` callable.

Shapes: ``x`` (B, ...); ``grid`` (N + 1,) or (N + 1, *t_shape). Elements whose time does not change
in a step keep their state. ``callback`` gets ``{"step", "t", "x", "x0"}`` after each step.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from difflab.core.broadcast import expand_like
from difflab.core.samplers.base import Callback, Denoiser, SampleResult, prepare_grid, step_time
from difflab.core.samplers.brownian import NoiseSampler, noise_source
from difflab.core.samplers.dpm_solver import step_orders, third_order_terms


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
    noise: str | NoiseSampler = "white",
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> SampleResult:
    """Euler ancestral steps in ``sigma`` from ``x`` at ``grid[0]`` to ``grid[-1]`` (module docstring)."""
    if eta < 0 or s_noise < 0:
        raise ValueError(f"eta and s_noise must be >= 0, got eta={eta!r}, s_noise={s_noise!r}")
    process, y = denoiser.process, denoiser.y
    nfe0 = denoiser.nfe
    draw = noise_source(noise, process, x, grid, generator)
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
            xt_next = xt_next + s_noise * expand_like(up, x) * draw(t, t_next)
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
    order: Literal[1, 2, 3] = 2,
    solver_type: Literal["midpoint", "heun"] = "midpoint",
    lower_order_final: bool = True,
    s_noise: float = 1.0,
    noise: str | NoiseSampler = "white",
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> SampleResult:
    """DPM-Solver++ 2M SDE (``order=3``: 3M SDE) from ``x`` at ``grid[0]`` to ``grid[-1]`` (module docstring)."""
    if solver_type not in ("midpoint", "heun"):
        raise ValueError(f"solver_type must be 'midpoint' or 'heun', got {solver_type!r}")
    if order not in (1, 2, 3):
        raise ValueError(f"order must be 1, 2 or 3, got {order!r}")
    process, y = denoiser.process, denoiser.y
    nfe0 = denoiser.nfe
    steps = prepare_grid(process, grid, x)
    orders = step_orders(len(steps), order, lower_order_final)
    draw = noise_source(noise, process, x, grid, generator)
    x0s: list[Tensor] = []
    lams: list[Tensor] = []
    for i in range(len(steps)):
        a_s, _, sd_s, a_t, b_t, sd_t = (expand_like(c, x) for c in steps.parts[i][:6])
        x0, _ = denoiser(x, steps.t[i], coefficients=steps.coefficients_t(i))
        xs = x - b_t * y if process.conditional else x
        decay2 = (a_t * sd_s / (sd_t * a_s)) ** 2  # e^{-2h}, 0 when s_s = 0
        x0s, lams = [x0, *x0s[:2]], [a_t.log() - sd_t.log(), *lams[:2]]
        x_new = (sd_s / sd_t) * decay2.sqrt() * xs + a_s * (1 - decay2) * x0
        if orders[i] >= 2:
            x_new = x_new + _higher_order(orders[i], solver_type, x0s, lams, a_s, sd_s, decay2, x_new)
        if bool((sd_s > 0).any()):
            x_new = x_new + s_noise * sd_s * (1 - decay2).clamp_min(0.0).sqrt() * draw(steps.t[i], steps.s[i])
        x = steps.end_step(i, x, x_new, x0, callback, shift=y if process.conditional else None)
    return SampleResult(x, denoiser.nfe - nfe0)


def _higher_order(
    order: int, solver_type: str, x0s: list, lams: list, a_s: Tensor, sd_s: Tensor, decay2: Tensor, like: Tensor
) -> Tensor:
    """The second- (and third-) order terms of an SDE step, 0 where the history does not allow them."""
    h = a_s.log() - sd_s.log() - lams[0]
    second = (sd_s > 0) & (lams[0] != lams[1])
    d1 = (x0s[0] - x0s[1]) * h / (lams[0] - lams[1])
    extra = torch.where(second, _second_order_coefficient(solver_type, a_s, decay2, h) * d1, torch.zeros_like(like))
    if order == 3:
        t1, t2 = third_order_terms(x0s, lams, h)
        # phi_3 = (1 - e^{-2h} - 2h) / (2h)^2 + 1/2 = 2h/6 + O(h^2): k-diffusion's -phi_3 of its 3M SDE
        # (diffusers' sde-dpmsolver++ order 3 writes - 1/2, a coefficient that tends to -1, not 0, as h -> 0)
        term = a_s * ((1 - decay2) / (-2 * h) + 1) * t1 + a_s * ((1 - decay2 - 2 * h) / (2 * h) ** 2 + 0.5) * t2
        extra = torch.where(second & (lams[1] != lams[2]), term, extra)
    return extra


def sample_dpmpp_3m_sde(denoiser: Denoiser, x: Tensor, grid: Tensor, **options) -> SampleResult:
    """DPM-Solver++ 3M SDE: :func:`sample_dpmpp_2m_sde` with ``order=3``."""
    return sample_dpmpp_2m_sde(denoiser, x, grid, order=3, **options)


__all__ = ["ancestral_step", "sample_dpmpp_2m_sde", "sample_dpmpp_3m_sde", "sample_euler_ancestral"]
