r"""Linear multistep (LMS) sampler of the probability-flow ODE in noise level (k-diffusion's
``sample_lms``, Karras et al. 2022's ODE ``dx~/dsigma = (x~ - x0_hat) / sigma``).

In VE-scaled coordinates ``x~ = (x - b y) / a`` the derivative ``d_i = (x~_i - x0_hat_i) / sigma_i``
is kept for the last ``order`` steps, and a step from ``sigma_i`` to ``sigma_{i+1}`` is the
Adams–Bashforth rule in ``sigma``:

.. math::

    \tilde x_{i+1} = \tilde x_i + \sum_{j=0}^{p-1} c_j\, d_{i-j}, \qquad
    c_j = \int_{\sigma_i}^{\sigma_{i+1}}
          \prod_{k \ne j} \frac{\tau - \sigma_{i-k}}{\sigma_{i-j} - \sigma_{i-k}}\, d\tau,

with ``p = min(order, i + 1)`` (the Lagrange basis integrated exactly). One NFE per step. The grid
is one time per step for the whole batch (``(N + 1,)``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from difflab.core.broadcast import expand_like
from difflab.core.samplers.base import Callback, Denoiser, SampleResult, require_shared_grid, step_time


def lms_coefficients(sigmas: list[float], lo: float, hi: float) -> list[float]:
    """``c_j`` for the nodes ``sigmas`` (newest first): the Lagrange basis polynomial of node ``j``
    integrated from ``lo`` to ``hi``."""
    out = []
    for j, s_j in enumerate(sigmas):
        others = [s for k, s in enumerate(sigmas) if k != j]
        poly = np.poly1d(others, r=True) / float(np.prod([s_j - s for s in others])) if others else np.poly1d([1.0])
        integral = np.polyint(poly)
        out.append(float(integral(hi) - integral(lo)))
    return out


def sample_lms(
    denoiser: Denoiser,
    x: Tensor,
    grid: Tensor,
    *,
    order: int = 4,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> SampleResult:
    """LMS of ``order`` from ``x`` at ``grid[0]`` to ``grid[-1]``; deterministic (``generator`` unused)."""
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order!r}")
    require_shared_grid("lms", grid)
    process, y = denoiser.process, denoiser.y
    nfe0 = denoiser.nfe
    sigmas = process.sigma(grid.to(torch.float64)).tolist()
    history: list[Tensor] = []
    for i in range(grid.shape[0] - 1):
        t, t_next = step_time(grid, i, x).to(x.dtype), step_time(grid, i + 1, x).to(x.dtype)
        a, b, _ = (expand_like(c, x) for c in process.coefficients(t))
        xt = (x - b * y if process.conditional else x) / a
        x0, _ = denoiser(x, t)
        history = [(xt - x0) / sigmas[i], *history][:order]
        coeffs = lms_coefficients([sigmas[i - k] for k in range(len(history))], sigmas[i], sigmas[i + 1])
        xt = xt + sum(c * d for c, d in zip(coeffs, history))
        a_n, b_n, _ = (expand_like(c, x) for c in process.coefficients(t_next))
        x = a_n * xt + b_n * y if process.conditional else a_n * xt
        if callback is not None:
            callback({"step": i, "t": t_next, "x": x, "x0": x0})
    return SampleResult(x, denoiser.nfe - nfe0)


__all__ = ["lms_coefficients", "sample_lms"]
