r"""DPM-Solver++ (Lu et al. 2022, arXiv:2211.01095) and DPM-Solver (Lu et al. 2022, arXiv:2206.00927):
multistep exponential-integrator solvers of the probability-flow ODE.

On ``x' = x - b(t) y = a x0 + s eps`` (so conditional processes are covered) the probability-flow
ODE is exactly integrable in the half log-SNR ``lambda = log(a / s)`` for a constant ``x0``. With
``h = lambda_s - lambda_t`` for a step from ``t`` to ``s < t``:

.. math::

    x'_s = \frac{s_s}{s_t} x'_t + a_s (1 - e^{-h}) D,

* order 1 (equal to DDIM with ``eta = 0``): ``D = x0_hat(t)``;
* order 2 multistep, midpoint form ("2M"): ``D = m0 + (m0 - m1) / (2 r0)`` with ``m0 = x0_hat(t)``,
  ``m1 = x0_hat(t_prev)`` and ``r0 = (lambda_t - lambda_prev) / h``; ``solver_type="heun"`` weights
  the same difference by ``((e^{-h} - 1) / h + 1) / (1 - e^{-h})`` instead of ``1/2``;
* order 3 multistep ("3M", Lu et al. 2022, Alg. 2 of arXiv:2206.00927 in data prediction):
  ``x'_s = (s_s / s_t) x'_t + a_s (1 - e^{-h}) m0 + a_s ((e^{-h} - 1) / h + 1) D1
  - a_s ((e^{-h} - 1 + h) / h^2 - 1/2) D2`` with ``D1``, ``D2`` of :func:`third_order_terms`.

``algorithm="dpmsolver"`` is the same family on noise predictions: ``x'_s = (a_s / a_t) x'_t -
s_s (e^h - 1) D`` with ``D = eps_hat`` at order 1, the second-order term ``- s_s (e^h - 1) D1 / 2``
(midpoint) or ``- s_s ((e^h - 1) / h - 1) D1`` (heun), and the third ``- s_s ((e^h - 1 - h) / h^2 -
1/2) D2`` (:func:`exp_coefficients`).

The first step is order 1 and the second at most order 2 (history). A step onto ``s_s = 0``
(``lambda = inf``) is order 1 and returns ``a_s x0_hat + b_s y``. With ``lower_order_final`` and
fewer than 15 steps the final step is order 1 and the one before at most order 2 (diffusers' rule,
:func:`step_orders`); an element whose earlier steps did not move falls back to a lower order. One
NFE per step.

Shapes: ``x`` (B, ...); ``grid`` (N + 1,) or (N + 1, *t_shape). Elements whose time does not change
in a step keep their state. ``callback`` gets ``{"step", "t", "x", "x0"}`` after each
step, ``t`` being the time of the new ``x``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from difflab.core.broadcast import expand_like
from difflab.core.samplers.base import Callback, Denoiser, SampleResult, prepare_grid


def step_orders(n: int, order: int, lower_order_final: bool) -> list[int]:
    """The order of each of ``n`` multistep steps (diffusers' rule): limited by the history (step ``i``
    has ``i`` earlier predictions), and with ``lower_order_final`` and fewer than 15 steps the last
    step is order 1 and the one before at most order 2."""
    orders = [min(order, i + 1) for i in range(n)]
    if lower_order_final and n < 15:
        orders[-1] = 1
        if n >= 2:
            orders[-2] = min(orders[-2], 2)
    return orders


def third_order_terms(x0s: list[Tensor], lams: list[Tensor], h: Tensor) -> tuple[Tensor, Tensor]:
    """``(D1, D2)`` of a third-order multistep step from the last three predictions ``x0s = [m0, m1,
    m2]`` at half log-SNRs ``lams`` (newest first) and the step ``h``: with ``r0 = (lambda_0 -
    lambda_1) / h`` and ``r1 = (lambda_1 - lambda_2) / h``, ``D1_0 = (m0 - m1) / r0``, ``D1_1 = (m1 -
    m2) / r1``, ``D1 = D1_0 + r0 (D1_0 - D1_1) / (r0 + r1)``, ``D2 = (D1_0 - D1_1) / (r0 + r1)``."""
    m0, m1, m2 = x0s
    r0, r1 = (lams[0] - lams[1]) / h, (lams[1] - lams[2]) / h
    d1_0, d1_1 = (m0 - m1) / r0, (m1 - m2) / r1
    return d1_0 + r0 / (r0 + r1) * (d1_0 - d1_1), (d1_0 - d1_1) / (r0 + r1)


def exp_coefficients(algorithm: str, a_n: Tensor, s_n: Tensor, a_c: Tensor, s_c: Tensor) -> tuple[Tensor, ...]:
    """``(scale, c0, c1, c2, h)`` of an exponential-integrator step from the current ``(a_c, s_c)`` to the
    next ``(a_n, s_n)``: ``x'_n = scale x'_c + c0 D0 [+ c0 / 2 D1 | + c1 D1 [+ c2 D2]]`` (module
    docstring), ``h = lambda_n - lambda_c``. ``dpmsolver++`` takes data predictions (``D0 = x0_hat``),
    ``dpmsolver`` noise predictions (``D0 = eps_hat``); ``s_n e^h = a_n s_c / a_c`` keeps a step onto
    ``s_n = 0`` finite."""
    h = a_n.log() - s_n.log() - (a_c.log() - s_c.log())
    if algorithm == "dpmsolver++":
        decay = a_c * s_n / (s_c * a_n)  # e^{-h}, 0 when s_n = 0
        return s_n / s_c, a_n * (1 - decay), a_n * ((decay - 1) / h + 1), -a_n * ((decay - 1 + h) / h**2 - 0.5), h
    grow = a_n * s_c / a_c - s_n  # s_n (e^h - 1)
    return a_n / a_c, -grow, -(grow / h - s_n), -((grow - h * s_n) / h**2 - 0.5 * s_n), h


def check_solver_options(order: int, solver_type: str, algorithm: str) -> None:
    """Reject an order, second-order form or algorithm the DPM-Solvers do not have."""
    if order not in (1, 2, 3):
        raise ValueError(f"order must be 1, 2 or 3, got {order!r}")
    if solver_type not in ("midpoint", "heun"):
        raise ValueError(f"solver_type must be 'midpoint' or 'heun', got {solver_type!r}")
    if algorithm not in ("dpmsolver++", "dpmsolver"):
        raise ValueError(f"algorithm must be 'dpmsolver++' or 'dpmsolver', got {algorithm!r}")


def sample_dpm_solver(
    denoiser: Denoiser,
    x: Tensor,
    grid: Tensor,
    *,
    order: Literal[1, 2, 3] = 2,
    solver_type: Literal["midpoint", "heun"] = "midpoint",
    algorithm: Literal["dpmsolver++", "dpmsolver"] = "dpmsolver++",
    lower_order_final: bool = True,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> SampleResult:
    """Run multistep DPM-Solver++ (or DPM-Solver with ``algorithm="dpmsolver"``) of order 1, 2 or 3
    from ``x`` at ``grid[0]`` to ``grid[-1]``; deterministic (``generator`` unused).
    ``solver_type`` is the second-order form (module docstring)."""
    check_solver_options(order, solver_type, algorithm)
    process, y = denoiser.process, denoiser.y
    nfe0 = denoiser.nfe
    steps = prepare_grid(process, grid, x)
    n = len(steps)
    orders = step_orders(n, order, lower_order_final)
    ms: list[Tensor] = []
    lams: list[Tensor] = []
    for i in range(n):
        a_s, _, sd_s, a_t, b_t, sd_t = (expand_like(c, x) for c in steps.parts[i][:6])
        x0, eps = denoiser(x, steps.t[i], coefficients=steps.coefficients_t(i))
        xs = x - b_t * y if process.conditional else x
        scale, c0, c1, c2, h = exp_coefficients(algorithm, a_s, sd_s, a_t, sd_t)
        lam_t = a_t.log() - sd_t.log()
        m = x0 if algorithm == "dpmsolver++" else eps
        ms, lams = [m, *ms[:2]], [lam_t, *lams[:2]]
        x_new = scale * xs + c0 * m
        if orders[i] >= 2:
            second = (sd_s > 0) & (lam_t != lams[1])
            d1 = (m - ms[1]) * h / (lam_t - lams[1])
            x_new = torch.where(second, x_new + (0.5 * c0 if solver_type == "midpoint" else c1) * d1, x_new)
        if orders[i] == 3:
            d1, d2 = third_order_terms(ms, lams, h)
            x_new = torch.where(second & (lams[1] != lams[2]), scale * xs + c0 * m + c1 * d1 + c2 * d2, x_new)
        x = steps.end_step(i, x, x_new, x0, callback, shift=y if process.conditional else None)
    return SampleResult(x, denoiser.nfe - nfe0)
