r"""DDIM (Song, Meng & Ermon 2021, arXiv:2010.02502) for any linear Gaussian process.

Each step from ``t`` to ``s < t`` uses the model's ``(x0_hat, eps_hat)``:

.. math::

    x_s = a_s \hat x_0 + b_s y + \sqrt{s_s^2 - \eta^2\tilde\sigma^2}\,\hat\varepsilon + \eta\tilde\sigma z,
    \qquad \tilde\sigma^2 = s_s^2 \, \frac{s_t^2 - r^2 s_s^2}{s_t^2},

with ``r = process.transition_ratio(s, t)``. For a VP chain ``eta * tilde sigma`` is DDIM's
``eta sqrt((1 - abar_s)/(1 - abar_t) (1 - abar_t/abar_s))``. ``eta = 0`` is the deterministic DDIM
sampler (a first-order solver of the probability-flow ODE, equal to DPM-Solver-1 and to Euler in
``sigma = s/a``); ``eta = 1`` matches ancestral DDPM sampling.

Shapes: ``x`` (B, ...); ``grid`` (N + 1,) or (N + 1, *t_shape). Elements whose time does not change
in a step keep their state. ``callback`` gets ``{"step", "t", "x", "x0"}`` after each
step, ``t`` being the time of the new ``x``.

``step_hook`` lets a method change the state between steps (DiffusionDet's proposal renewal,
DiffTAD's selective conditioning): it receives ``{"step", "t", "x", "x0", "parts"}`` right after
the posterior draw of step ``i`` (``x`` the new state at ``t``, ``parts`` the step's
:meth:`~difflab.core.processes.base.LinearGaussianProcess.posterior_parts`, so ``parts[0]`` is
``a_s``) and returns the state the sampler continues from.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from difflab.core.samplers.base import Callback, Denoiser, SampleResult, noise_like, prepare_grid


def sample_ddim(
    denoiser: Denoiser,
    x: Tensor,
    grid: Tensor,
    *,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    step_hook: Callable[[dict[str, Any]], Tensor] | None = None,
) -> SampleResult:
    """Run DDIM from ``x`` at ``grid[0]`` to ``grid[-1]``; one NFE per step, fresh noise only if ``eta > 0``."""
    if not eta >= 0:
        raise ValueError(f"eta must be >= 0, got {eta!r}")
    process, y = denoiser.process, denoiser.y
    nfe0 = denoiser.nfe
    steps = prepare_grid(process, grid, x)
    for i in range(len(steps)):
        x0, eps = denoiser(x, steps.t[i], coefficients=steps.coefficients_t(i))
        mean, std = process.posterior_from_parts(steps.parts[i], x, x0, y, eps=eps, eta=eta)
        x_new = mean + std * noise_like(process, x, generator) if eta > 0 else mean
        if step_hook is not None:
            x_new = step_hook({"step": i, "t": steps.s[i], "x": x_new, "x0": x0, "parts": steps.parts[i]})
        x = steps.end_step(i, x, x_new, x0, callback)
    return SampleResult(x, denoiser.nfe - nfe0)
