r"""UniPC (Zhao et al. 2023, arXiv:2302.04867): a unified predictor-corrector multistep solver of the
probability-flow ODE in data prediction, any order, with the UniC corrector.

On ``x' = x - b(t) y = a x0 + s eps`` and the half log-SNR ``lambda = log(a / s)``, a step from ``t``
(state ``x'_t``, prediction ``m_0 = x0_hat(t)``) to ``s`` with ``h = lambda_s - lambda_t`` uses the
earlier predictions ``m_k`` at ``lambda_k`` through ``r_k = (lambda_k - lambda_t) / h`` and
``D_k = (m_k - m_0) / r_k`` (``k = 1 .. p - 1`` for order ``p``). With ``hh = -h``,
``phi_1 = e^{hh} - 1``, ``B(h) = hh`` (``bh1``) or ``e^{hh} - 1`` (``bh2``), and the vector
``g_i = i!\, h\phi_{i+1}(hh) / B(h)`` (``h\phi_{k+1} = h\phi_k / hh - 1/(k+1)!``, starting from
``phi_1 / hh - 1``),

.. math::

    \text{UniP:}\quad x'_s = \frac{s_s}{s_t} x'_t - a_s \phi_1 m_0 - a_s B(h) \sum_k \rho^p_k D_k,
    \qquad R\,\rho^p = g \ \text{(first } p-1 \text{ rows)}, \ R_{ik} = r_k^{i-1},

with ``rho^p = 1/2`` for order 2. Once the model has been evaluated at the new point,
``m_s = x0_hat(s)``, UniC corrects the same step with one more term (``r = 1`` for the new point):

.. math::

    \text{UniC:}\quad x'^c_s = \frac{s_s}{s_t} x'_t - a_s \phi_1 m_0
        - a_s B(h) \Big(\sum_k \rho^c_k D_k + \rho^c_p (m_s - m_0)\Big), \qquad R\,\rho^c = g,

with ``rho^c = 1/2`` for order 1; the corrected state replaces the predicted one before the next
step (no extra NFE: the corrector reuses the prediction the next step needs). The order of step
``i`` is ``min(order, i + 1)`` and, with ``lower_order_final``, at most the number of steps left
(diffusers' warm-up and final rule). ``disable_corrector`` lists steps whose result is not corrected.
One NFE per step.

Shapes: ``x`` (B, ...); ``grid`` (N + 1,) or (N + 1, *t_shape). Elements whose time does not change
in a step keep their state. ``callback`` gets ``{"step", "t", "x", "x0"}`` after each step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

from difflab.core.broadcast import expand_like
from difflab.core.samplers.base import Callback, Denoiser, SampleResult, prepare_grid


def unipc_weights(rks: list[Tensor], hh: Tensor, solver_type: str, corrector: bool) -> tuple[Tensor, Tensor]:
    """``(rho, B(h))``: the weights of the differences ``D_k`` (and, for the corrector, of the new
    point last), shape ``(*t_shape, len(rks) [+ 1])``, and ``B(h)`` (module docstring)."""
    order = len(rks) + 1
    b_h = hh if solver_type == "bh1" else torch.expm1(hh)
    if order == 1 and not corrector:
        return hh.new_zeros((*hh.shape, 0)), b_h
    if order == 1 and corrector:
        return torch.full((*hh.shape, 1), 0.5, dtype=hh.dtype, device=hh.device), b_h
    if order == 2 and not corrector:
        return torch.full((*hh.shape, 1), 0.5, dtype=hh.dtype, device=hh.device), b_h
    r = torch.stack([*rks, torch.ones_like(hh)], dim=-1)  # (*t, order)
    h_phi_k = torch.expm1(hh) / hh - 1
    rows, g = [], []
    factorial = 1
    for i in range(1, order + 1):
        rows.append(r ** (i - 1))
        g.append(h_phi_k * factorial / b_h)
        factorial *= i + 1
        h_phi_k = h_phi_k / hh - 1 / factorial
    mat, rhs = torch.stack(rows, dim=-2), torch.stack(g, dim=-1)  # (*t, order, order), (*t, order)
    if not corrector:
        mat, rhs = mat[..., :-1, :-1], rhs[..., :-1]
    return torch.linalg.solve(mat, rhs.unsqueeze(-1)).squeeze(-1), b_h


def _unipc_update(
    xs: Tensor, m0: Tensor, hist: list[tuple[Tensor, Tensor]], lam_t, lam_s, parts, solver_type, m_new
) -> Tensor:
    """UniP (``m_new`` None) or UniC step from ``t`` to ``s``; ``hist`` = ``[(m_k, lambda_k)]`` of the
    earlier predictions, newest first; ``parts`` = ``(a_s, s_s, s_t)`` broadcast to ``x``."""
    a_s, sd_s, sd_t = parts
    h = lam_s - lam_t
    h = torch.where(h == 0, torch.ones_like(h), h)  # elements that do not move: any finite value
    rks = [(lam_k - lam_t) / h for _, lam_k in hist]
    hh = -h
    rho, b_h = unipc_weights(rks, hh, solver_type, corrector=m_new is not None)
    out = (sd_s / sd_t) * xs - a_s * expand_like(torch.expm1(hh), xs) * m0
    if not hist and m_new is None:  # first order: no correction terms (B(h) may be infinite onto s = 0)
        return out
    res = torch.zeros_like(xs)
    for k, ((m_k, _), r_k) in enumerate(zip(hist, rks)):
        res = res + expand_like(rho[..., k] / r_k, xs) * (m_k - m0)
    if m_new is not None:
        res = res + expand_like(rho[..., -1], xs) * (m_new - m0)
    return out - a_s * expand_like(b_h, xs) * res


def sample_unipc(
    denoiser: Denoiser,
    x: Tensor,
    grid: Tensor,
    *,
    order: int = 2,
    solver_type: Literal["bh1", "bh2"] = "bh2",
    lower_order_final: bool = True,
    disable_corrector: Sequence[int] = (),
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> SampleResult:
    """UniPC (UniP-``order`` with UniC) from ``x`` at ``grid[0]`` to ``grid[-1]``; deterministic."""
    if order < 1 or solver_type not in ("bh1", "bh2"):
        raise ValueError(f"order must be >= 1 and solver_type 'bh1' or 'bh2', got {order!r}, {solver_type!r}")
    process, y = denoiser.process, denoiser.y
    nfe0 = denoiser.nfe
    steps = prepare_grid(process, grid, x)
    n = len(steps)
    hist: list[tuple[Tensor, Tensor]] = []  # (x0_hat, lambda) of the evaluated points, newest first
    prev = None  # (xs, lambda, parts, order) of the last predictor step, for the corrector
    for i in range(n):
        a_s, _, sd_s, a_t, b_t, sd_t = (expand_like(c, x) for c in steps.parts[i][:6])
        lam_t = steps.parts[i][3].log() - steps.parts[i][5].log()
        x0, _ = denoiser(x, steps.t[i], coefficients=steps.coefficients_t(i))
        if prev is not None and (i - 1) not in disable_corrector:
            p_xs, p_lam, p_parts, p_order = prev
            xc = _unipc_update(p_xs, hist[0][0], hist[1:p_order], p_lam, lam_t, p_parts, solver_type, x0)
            x = xc + b_t * y if process.conditional else xc
        hist = [(x0, lam_t), *hist][: max(order, 1)]
        this_order = min(order, n - i) if lower_order_final else order
        this_order = min(this_order, len(hist))
        xs = x - b_t * y if process.conditional else x
        lam_s = steps.parts[i][0].log() - steps.parts[i][2].log()
        if bool((steps.parts[i][2] == 0).any()):  # a step onto s = 0 returns a_s x0_hat
            this_order = 1
        x_new = _unipc_update(xs, x0, hist[1:this_order], lam_t, lam_s, (a_s, sd_s, sd_t), solver_type, None)
        prev = (xs, lam_t, (a_s, sd_s, sd_t), this_order)
        x = steps.end_step(i, x, x_new, x0, callback, shift=y if process.conditional else None)
    return SampleResult(x, denoiser.nfe - nfe0)


__all__ = ["sample_unipc", "unipc_weights"]
