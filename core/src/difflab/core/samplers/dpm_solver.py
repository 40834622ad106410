r"""DPM-Solver++ (Lu et al. 2022, arXiv:2211.01095): data-prediction solvers of the probability-flow ODE.

On ``x' = x - b(t) y = a x0 + s eps`` (so conditional processes are covered) the probability-flow
ODE is exactly integrable in the half log-SNR ``lambda = log(a / s)`` for a constant ``x0``. With
``h = lambda_s - lambda_t`` for a step from ``t`` to ``s < t``:

.. math::

    x'_s = \frac{s_s}{s_t} x'_t + a_s (1 - e^{-h}) D,

* order 1 (equal to DDIM with ``eta = 0``): ``D = x0_hat(t)``;
* order 2 multistep, midpoint form ("2M"): ``D = m0 + (m0 - m1) / (2 r0)`` with ``m0 = x0_hat(t)``,
  ``m1 = x0_hat(t_prev)`` and ``r0 = (lambda_t - lambda_prev) / h``.

The first step is order 1 (no history). A step onto ``s_s = 0`` (``lambda = inf``) is order 1 and
returns ``a_s x0_hat + b_s y``. With ``lower_order_final`` and fewer than 15 steps the final step is
order 1 as well (diffusers' rule); an element whose previous step did not move also falls back to
order 1. One NFE per step.

Shapes: ``x`` (B, ...); ``grid`` (N + 1,) or (N + 1, *t_shape). Elements whose time does not change
in a step keep their state. ``callback`` gets ``{"step", "t", "x", "x0"}`` after each
step, ``t`` being the time of the new ``x``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from difflab.core.broadcast import expand_like
from difflab.core.samplers.base import Callback, Denoiser, SampleResult, keep_still, prepare_grid


def sample_dpm_solver(
    denoiser: Denoiser,
    x: Tensor,
    grid: Tensor,
    *,
    order: Literal[1, 2] = 2,
    lower_order_final: bool = True,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> SampleResult:
    """Run DPM-Solver++ (1 or 2M) from ``x`` at ``grid[0]`` to ``grid[-1]``; deterministic (``generator`` unused)."""
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order!r}")
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
        lam_t = a_t.log() - sd_t.log()
        d = x0
        if order == 2 and x0_prev is not None and not (i == n - 1 and lower_order_final and n < 15):
            h = a_s.log() - sd_s.log() - lam_t
            r0 = (lam_t - lam_prev) / h
            second = (sd_s > 0) & (lam_t != lam_prev)
            d = torch.where(second, x0 + (x0 - x0_prev) / (2 * r0), x0)
        x_new = (sd_s / sd_t) * xs + a_s * (1 - decay) * d
        if process.conditional:
            x_new = x_new + b_s * y
        x = keep_still(steps.still[i], x, x_new)
        x0_prev, lam_prev = x0, lam_t
        if callback is not None:
            callback({"step": i, "t": steps.s[i], "x": x, "x0": x0})
    return SampleResult(x, denoiser.nfe - nfe0)
