r"""Pseudo numerical methods (PNDM, Liu et al. 2022, arXiv:2202.09778): linear multistep and
Runge-Kutta combinations of noise predictions, each step carried by the DDIM transfer.

The transfer ``phi(x, e, t -> s)`` is the deterministic DDIM step with the noise prediction ``e``
(the paper's Eq. 11, the same map as ``DDIM(eta=0)``) on ``x' = x - b(t) y``:

.. math:: \phi(x, e, t \to s) = a_s \frac{x' - s_t e}{a_t} + s_s e .

* ``warmup="plms"`` (diffusers' ``PNDMScheduler(skip_prk_steps=True)``): the first step is a
  pseudo-Heun step (``e_1`` at ``t_0``, ``e_2`` at ``phi(x, e_1, t_0 -> t_1)``, then
  ``phi(x, (e_1 + e_2) / 2, t_0 -> t_1)``); every later step evaluates ``e`` at its start and uses
  the Adams-Bashforth combination of the last (up to four) start predictions:
  ``(3 e_0 - e_1) / 2``, ``(23 e_0 - 16 e_1 + 5 e_2) / 12``,
  ``(55 e_0 - 59 e_1 + 37 e_2 - 9 e_3) / 24``. NFE = N + 1.
* ``warmup="prk"`` (F-PNDM, diffusers' ``skip_prk_steps=False``): the first three steps are
  pseudo Runge-Kutta steps with four predictions each, at ``t``, twice at the midpoint
  ``(t + s) / 2`` and at ``s``, combined ``(e_1 + 2 e_2 + 2 e_3 + e_4) / 6``; then fourth-order
  pseudo linear multistep with the start predictions. NFE = N + 9.

diffusers combines raw model outputs and converts the combination to a noise prediction with the
step's start state; we combine noise predictions (each converted at its own state and time), which
is the paper's method and the same thing for eps-prediction models.

Shapes: ``x`` (B, ...); ``grid`` (N + 1,) or (N + 1, *t_shape). ``callback`` gets
``{"step", "t", "x", "x0"}`` after each step.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from difflab.core.broadcast import expand_like
from difflab.core.samplers.base import Callback, Denoiser, SampleResult, keep_still, step_time

AB_WEIGHTS = {1: (1.0,), 2: (1.5, -0.5), 3: (23 / 12, -16 / 12, 5 / 12), 4: (55 / 24, -59 / 24, 37 / 24, -9 / 24)}
"""Adams-Bashforth weights of the newest first start predictions, by the number available."""


def sample_pndm(
    denoiser: Denoiser,
    x: Tensor,
    grid: Tensor,
    *,
    warmup: Literal["plms", "prk"] = "plms",
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> SampleResult:
    """PLMS / F-PNDM from ``x`` at ``grid[0]`` to ``grid[-1]``; deterministic (``generator`` unused).
    See the module docstring."""
    if warmup not in ("plms", "prk"):
        raise ValueError(f"warmup must be 'plms' or 'prk', got {warmup!r}")
    nfe0 = denoiser.nfe
    history: list[Tensor] = []
    for i in range(grid.shape[0] - 1):
        t, s = step_time(grid, i, x).to(x.dtype), step_time(grid, i + 1, x).to(x.dtype)
        e = _eps(denoiser, x, t)
        history = [e, *history[:3]]
        if warmup == "prk" and i < 3:
            e = _runge_kutta(denoiser, x, t, s, e)
        elif warmup == "plms" and i == 0:
            e = 0.5 * (e + _eps(denoiser, transfer(denoiser, x, e, t, s), s))
        else:
            e = sum(w * h for w, h in zip(AB_WEIGHTS[len(history)], history))
        x_new = transfer(denoiser, x, e, t, s)
        x = keep_still(None if grid.ndim == 1 else (s == t), x, x_new)
        if callback is not None:
            callback({"step": i, "t": s, "x": x, "x0": _x0(denoiser, x_new, e, s)})
    return SampleResult(x, denoiser.nfe - nfe0)


def _eps(denoiser: Denoiser, x: Tensor, t: Tensor) -> Tensor:
    return denoiser(x, t)[1]


def _runge_kutta(denoiser: Denoiser, x: Tensor, t: Tensor, s: Tensor, e1: Tensor) -> Tensor:
    """The pseudo fourth-order Runge-Kutta combination of noise predictions over ``t -> s``."""
    mid = 0.5 * (t + s)
    e2 = _eps(denoiser, transfer(denoiser, x, e1, t, mid), mid)
    e3 = _eps(denoiser, transfer(denoiser, x, e2, t, mid), mid)
    e4 = _eps(denoiser, transfer(denoiser, x, e3, t, s), s)
    return (e1 + 2 * e2 + 2 * e3 + e4) / 6


def transfer(denoiser: Denoiser, x: Tensor, e: Tensor, t: Tensor, s: Tensor) -> Tensor:
    """The DDIM transfer ``phi(x, e, t -> s)`` of the module docstring."""
    process, y = denoiser.process, denoiser.y
    a_t, b_t, s_t = (expand_like(c, x) for c in process.coefficients(t))
    a_s, b_s, s_s = (expand_like(c, x) for c in process.coefficients(s))
    xs = x - b_t * y if process.conditional else x
    out = a_s * (xs - s_t * e) / a_t + s_s * e
    return out + b_s * y if process.conditional else out


def _x0(denoiser: Denoiser, x: Tensor, e: Tensor, s: Tensor) -> Tensor:
    """The clean estimate implied by the step's noise prediction at the new state (for callbacks)."""
    process, y = denoiser.process, denoiser.y
    a, b, sd = (expand_like(c, x) for c in process.coefficients(s))
    xs = x - b * y if process.conditional else x
    return (xs - sd * e) / a


__all__ = ["AB_WEIGHTS", "sample_pndm", "transfer"]
