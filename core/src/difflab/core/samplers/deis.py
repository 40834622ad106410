r"""DEIS (Zhang & Chen 2023, "Fast Sampling of Diffusion Models with Exponential Integrator",
arXiv:2204.13902): the exponential integrator of the probability-flow ODE with a polynomial
extrapolation of the noise prediction in ``log rho`` ("logrho", the paper's tAB-DEIS in the
log-noise-level variable).

On ``x' = x - b y = a x0 + s eps`` and ``rho = s / a`` the ODE is ``d(x'/a)/d rho = eps(x, rho)``.
A step from ``rho_t`` to ``rho_s`` with the last ``p`` noise predictions ``eps_k`` at ``rho_k``
(``k = 0`` the newest) replaces ``eps`` by its Lagrange interpolant in ``u = log rho``:

.. math::

    \frac{x'_s}{a_s} = \frac{x'_t}{a_t} + \sum_{k} c_k\, \epsilon_k, \qquad
    c_k = \int_{\rho_t}^{\rho_s} \ell_k(\log \rho)\, d\rho,

with the integrals in closed form (``\int (\log\rho)^n d\rho = \rho \sum_{j \le n} (-1)^{n-j}
\frac{n!}{j!} (\log \rho)^j``). Order 1 is DDIM (``eta = 0``). The order of step ``i`` is
``min(order, i + 1)``; with ``lower_order_final`` and fewer than 15 steps the last step is order 1
and the one before at most 2 (diffusers' rule), and a step onto ``rho = 0`` is order 1. One NFE per
step. The grid is one time per step for the whole batch (``(N + 1,)``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from difflab.core.broadcast import expand_like
from difflab.core.samplers.base import Callback, Denoiser, SampleResult, prepare_grid, require_shared_grid
from difflab.core.samplers.dpm_solver import step_orders


def _log_power_antiderivative(n: int, rho: float) -> float:
    """``F_n(rho) = rho sum_{j<=n} (-1)^{n-j} n!/j! (log rho)^j``, an antiderivative of ``(log rho)^n``."""
    if rho == 0:
        return 0.0  # the limit of rho (log rho)^j
    u = math.log(rho)
    return rho * sum((-1) ** (n - j) * math.factorial(n) / math.factorial(j) * u**j for j in range(n + 1))


def deis_coefficients(rhos: list[float], rho_from: float, rho_to: float) -> list[float]:
    """``c_k = int_{rho_from}^{rho_to} l_k(log rho) d rho`` for the nodes ``rhos`` (module docstring)."""
    us = [math.log(r) for r in rhos]
    out = []
    for k, u_k in enumerate(us):
        others = [u for j, u in enumerate(us) if j != k]
        poly = np.poly1d(others, r=True) / float(np.prod([u_k - u for u in others])) if others else np.poly1d([1.0])
        coeffs = poly.coeffs[::-1]  # ascending powers of u
        out.append(
            sum(
                float(c) * (_log_power_antiderivative(n, rho_to) - _log_power_antiderivative(n, rho_from))
                for n, c in enumerate(coeffs)
            )
        )
    return out


def sample_deis(
    denoiser: Denoiser,
    x: Tensor,
    grid: Tensor,
    *,
    order: int = 2,
    lower_order_final: bool = True,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> SampleResult:
    """DEIS (logrho) of ``order`` from ``x`` at ``grid[0]`` to ``grid[-1]``; deterministic."""
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order!r}")
    require_shared_grid("deis", grid)
    process, y = denoiser.process, denoiser.y
    nfe0 = denoiser.nfe
    steps = prepare_grid(process, grid, x)
    orders = step_orders(len(steps), order, lower_order_final)
    a_all, _, s_all = process.coefficients(grid.to(torch.float64))
    rho = (s_all / a_all).tolist()
    eps_hist: list[Tensor] = []
    for i in range(len(steps)):
        a_s, b_s, _, a_t, b_t, _ = (expand_like(c, x) for c in steps.parts[i][:6])
        x0, eps = denoiser(x, steps.t[i], coefficients=steps.coefficients_t(i))
        eps_hist = [eps, *eps_hist][:order]
        p = 1 if rho[i + 1] == 0 else min(orders[i], len(eps_hist))
        coeffs = deis_coefficients([rho[i - k] for k in range(p)], rho[i], rho[i + 1])
        xs = x - b_t * y if process.conditional else x
        x = a_s * (xs / a_t + sum(c * e for c, e in zip(coeffs, eps_hist)))
        if process.conditional:
            x = x + b_s * y
        if callback is not None:
            callback({"step": i, "t": steps.s[i], "x": x, "x0": x0})
    return SampleResult(x, denoiser.nfe - nfe0)


__all__ = ["deis_coefficients", "sample_deis"]
