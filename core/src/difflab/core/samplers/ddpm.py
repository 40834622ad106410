r"""Ancestral sampling (DDPM, Ho et al. 2020, arXiv:2006.11239) for any linear Gaussian process.

Each step from ``t`` to ``s < t`` samples the Gaussian posterior q(x_s | x_t, x0) with the model's
clean estimate plugged in:

.. math::

    x_s = a_s \hat x_0 + b_s y + \sqrt{s_s^2 - \tilde\sigma^2}\,\hat\varepsilon + \sigma z,
    \qquad \tilde\sigma^2 = s_s^2 \, \frac{s_t^2 - r^2 s_s^2}{s_t^2},

with ``r = process.transition_ratio(s, t)`` (``a_t / a_s``; 1 for ResShift). For a VP chain this is
DDPM's mean ``sqrt(abar_s) beta / (1 - abar_t) x0 + sqrt(alpha) (1 - abar_s) / (1 - abar_t) x_t``.
``variance="fixed_small"`` takes ``sigma = tilde sigma`` (DDPM's beta-tilde), ``"fixed_large"``
the transition variance ``sigma^2 = s_t^2 - r^2 s_s^2`` (DDPM's beta_t). The step onto the grid's
end adds no noise. Skipped steps (a coarse grid) use the same formula with ``r`` of the whole gap.

Shapes: ``x`` (B, ...); ``grid`` (N + 1,) or (N + 1, *t_shape) with ``t_shape`` broadcasting
against the leading dimensions of ``x`` (e.g. (B,) or (B, L)). Elements whose time does not change
in a step keep their state. ``callback`` gets ``{"step", "t", "x", "x0"}`` after each
step, ``t`` being the time of the new ``x``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from difflab.core.broadcast import expand_like
from difflab.core.samplers.base import Callback, Denoiser, SampleResult, noise_like, prepare_grid

Variance = Literal["fixed_small", "fixed_large"]


def sample_ddpm(
    denoiser: Denoiser,
    x: Tensor,
    grid: Tensor,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    variance: Variance = "fixed_small",
) -> SampleResult:
    """Run the ancestral sampler from ``x`` at ``grid[0]`` to ``grid[-1]``; one NFE per step."""
    if variance not in ("fixed_small", "fixed_large"):
        raise ValueError(f"variance must be 'fixed_small' or 'fixed_large', got {variance!r}")
    process, y = denoiser.process, denoiser.y
    nfe0 = denoiser.nfe
    steps = prepare_grid(process, grid, x)
    n = len(steps)
    for i in range(n):
        x0, eps = denoiser(x, steps.t[i], coefficients=steps.coefficients_t(i))
        mean, std = process.posterior_from_parts(steps.parts[i], x, x0, y, eps=eps, eta=1.0)
        if variance == "fixed_large":
            s, t = steps.s[i], steps.t[i]
            sd_s, sd_t = steps.parts[i][2], steps.parts[i][5]
            r = process.transition_ratio(s, t)
            std = expand_like((sd_t**2 - r**2 * sd_s**2).clamp_min(0.0).sqrt(), x)
        x_new = mean + std * noise_like(process, x, generator) if i < n - 1 else mean
        x = steps.end_step(i, x, x_new, x0, callback)
    return SampleResult(x, denoiser.nfe - nfe0)
