r"""Single-step DPM-Solver and DPM-Solver++ (Lu et al. 2022, arXiv:2206.00927, Alg. 1-2; arXiv:2211.01095).

A single-step solver of order ``k`` takes one step of the probability-flow ODE from a group start
``t_g`` to a target ``t`` with ``k`` model evaluations at intermediate times. As in diffusers'
``DPMSolverSinglestepScheduler``, the intermediate times are the grid's own points: the grid is cut
into groups by an order list (:func:`singlestep_orders`, e.g. ``[1, 2, 3, 1, 2, 3, ..., 1, 2, 1]``),
and the step of order ``k`` at grid point ``i`` restarts from the state at the group start
(``i - k + 1``) with the ``k`` predictions of the group, so every grid point is one NFE.

With ``h = lambda_t - lambda_g`` in half log-SNR and the coefficients ``scale, c0, c1, c2`` of
:func:`~difflab.core.samplers.dpm_solver.exp_coefficients` (data predictions ``D = x0_hat`` for
``dpmsolver++``, noise predictions ``D = eps_hat`` for ``dpmsolver``), predictions ``m_g`` (group
start), ``m_1``, ``m_2`` (newest) at ``r_j = (lambda_j - lambda_g) / h``:

* order 1: ``x'_t = scale x'_g + c0 m_g``;
* order 2: ``+ c0 / 2 D1`` (``solver_type="midpoint"``) or ``+ c1 D1`` (``"heun"``),
  ``D1 = (m_1 - m_g) / r_1``;
* order 3: ``midpoint``: ``+ c1 (m_2 - m_g) / r_2``; ``heun``: ``+ c1 D1 + c2 D2`` with
  ``D1 = (r_2 E_1 - r_1 E_2) / (r_2 - r_1)``, ``D2 = 2 (E_2 - E_1) / (r_2 - r_1)``,
  ``E_j = (m_j - m_g) / r_j``.

On ``x' = x - b(t) y`` (conditional processes covered). A step whose group would need a history the
element does not have (its time did not move) falls back to a lower order; a step onto ``s = 0`` is
order 1. Shapes: ``x`` (B, ...); ``grid`` (N + 1,) or (N + 1, *t_shape). ``callback`` gets
``{"step", "t", "x", "x0"}`` after each step.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from difflab.core.broadcast import expand_like
from difflab.core.samplers.base import Callback, Denoiser, SampleResult, prepare_grid
from difflab.core.samplers.dpm_solver import check_solver_options, exp_coefficients


def singlestep_orders(n: int, order: int, lower_order_final: bool = True, final_to_zero: bool = True) -> list[int]:
    """The order of each of ``n`` grid steps of a single-step solver (diffusers' rule): repeated
    ``[1, .., order]`` groups; with ``lower_order_final`` the tail is the shorter group that fits
    (for order 3 and ``n % 3 == 0`` the last group is ``[1, 2], [1]``; for order 2 and even ``n``
    the last is ``[1], [1]``); without it a tail that does not fill a group is ``[1, 2, ..]`` cut short.
    A grid ending at ``t = 0`` ends with an order-1 step."""
    if order not in (1, 2, 3):
        raise ValueError(f"order must be 1, 2 or 3, got {order!r}")
    group = list(range(1, order + 1))
    full, rest = divmod(n, order)
    if order == 1:
        orders = [1] * n
    elif lower_order_final and rest == 0:
        orders = group * (full - 1) + ([1, 2, 1] if order == 3 else [1, 1])
    else:
        orders = group * full + group[:rest]
    if final_to_zero and orders:
        orders[-1] = 1
    return orders


def sample_dpm_solver_singlestep(
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
    """Single-step DPM-Solver(++) of order 1-3 from ``x`` at ``grid[0]`` to ``grid[-1]``, one NFE per
    grid step; deterministic (``generator`` unused). See the module docstring."""
    check_solver_options(order, solver_type, algorithm)
    process, y = denoiser.process, denoiser.y
    nfe0 = denoiser.nfe
    steps = prepare_grid(process, grid, x)
    orders = singlestep_orders(len(steps), order, lower_order_final, bool((grid[-1] == 0).all()))
    ms: list[Tensor] = []
    lams: list[Tensor] = []
    start: tuple[Tensor, Tensor, Tensor] | None = None  # x' and (a, s) at the group start
    for i in range(len(steps)):
        a_s, _, sd_s, a_t, b_t, sd_t = (expand_like(c, x) for c in steps.parts[i][:6])
        x0, eps = denoiser(x, steps.t[i], coefficients=steps.coefficients_t(i))
        m = x0 if algorithm == "dpmsolver++" else eps
        if orders[i] == 1 or start is None:
            start, ms, lams = (x - b_t * y if process.conditional else x, a_t, sd_t), [], []
        ms, lams = [*ms, m], [*lams, a_t.log() - sd_t.log()]
        scale, c0, c1, c2, h = exp_coefficients(algorithm, a_s, sd_s, start[1], start[2])
        x_new = scale * start[0] + c0 * ms[0] + _group_terms(ms, lams, h, c0, c1, c2, solver_type, sd_s > 0)
        x = steps.end_step(i, x, x_new, x0, callback, shift=y if process.conditional else None)
    return SampleResult(x, denoiser.nfe - nfe0)


def _group_terms(
    ms: list[Tensor], lams: list[Tensor], h: Tensor, c0, c1, c2, solver_type: str, live: Tensor
) -> Tensor | float:
    """The second- or third-order terms of a group's step (module docstring); 0 where the group's
    times coincide or the step lands on ``s = 0``."""
    if len(ms) == 1:
        return 0.0
    zero = torch.zeros_like(ms[0])
    r1 = (lams[1] - lams[0]) / h
    e1 = (ms[1] - ms[0]) / r1
    ok1 = live & (lams[1] != lams[0])
    if len(ms) == 2:
        return torch.where(ok1, (0.5 * c0 if solver_type == "midpoint" else c1) * e1, zero)
    r2 = (lams[2] - lams[0]) / h
    e2 = (ms[2] - ms[0]) / r2
    ok2 = ok1 & (lams[2] != lams[1])
    if solver_type == "midpoint":
        third = c1 * e2
    else:
        d1 = (r2 * e1 - r1 * e2) / (r2 - r1)
        d2 = 2 * (e2 - e1) / (r2 - r1)
        third = c1 * d1 + c2 * d2
    second = (0.5 * c0 if solver_type == "midpoint" else c1) * e1
    return torch.where(ok2, third, torch.where(ok1, second, zero))


__all__ = ["sample_dpm_solver_singlestep", "singlestep_orders"]
