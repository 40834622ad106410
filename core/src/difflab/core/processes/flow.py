r"""Flow matching / rectified flow, and FlowSE's conditional flow, as linear Gaussian processes.

Direction: difflab's ``t = 0`` is data and ``t = 1`` the prior sample ``x1 ~ N(0, I)``:

.. math::  x_t = (1 - t)\,x_0 + t\,x_1, \qquad u = \frac{dx_t}{dt} = x_1 - x_0 .

Anchors disagree on this direction. diffusers' ``FlowMatchEulerDiscreteScheduler`` uses the same
one (``sigma = t``, ``x = (1 - sigma) x0 + sigma noise``, velocity ``noise - x0``), but integrates
from ``sigma = 1`` to 0. Rectified flow as in Liu et al. 2022 and PSF writes
``x_t = t x1 + (1 - t) z0`` with *data at t = 1* and velocity ``data - noise``: convert with
``t_difflab = 1 - t_psf`` and ``u_difflab = -v_psf``. Lipman et al. 2023 (conditional OT paths)
also put data at ``t = 1``.

Samplers integrate the probability-flow ODE from ``t = 1`` to 0; a network predicting the velocity
is used with ``prediction="velocity"`` (:mod:`difflab.core.parameterization`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from difflab.core.processes.base import LinearGaussianProcess


class FlowMatching(LinearGaussianProcess):
    r"""Linear-interpolation flow ``x_t = (1 - t) x0 + (sigma_min + (1 - sigma_min) t) x1``.

    ``a = 1 - t``, ``b = 0``, ``s = t`` (``sigma_min = 0``: rectified flow, Liu et al. 2022) or
    ``s = sigma_min + (1 - sigma_min) t`` (Lipman et al. 2023's OT path, flipped to difflab's
    direction). The regression target is the velocity
    ``u = dx_t/dt = (1 - sigma_min) x1 - x0`` (``x1 - x0`` for ``sigma_min = 0``); see
    :meth:`velocity_target`. The prior is ``N(0, I)`` (``s(1) = 1``).

    Args:
        sigma_min: noise std left at ``t = 0`` (0 by default).
        t_min: smallest sampling time (0).
    """

    def __init__(self, sigma_min: float = 0.0, t_min: float = 0.0) -> None:
        if not 0 <= sigma_min < 1:
            raise ValueError(f"FlowMatching needs 0 <= sigma_min < 1, got sigma_min={sigma_min}")
        self.sigma_min, self.t_min = float(sigma_min), float(t_min)

    def coefficients(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return 1 - t, torch.zeros_like(t), self.sigma_min + (1 - self.sigma_min) * t

    def coefficient_derivatives(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return -torch.ones_like(t), torch.zeros_like(t), torch.full_like(t, 1 - self.sigma_min)

    def velocity_target(self, x0: Tensor, x1: Tensor) -> Tensor:
        """``u = (1 - sigma_min) x1 - x0`` (independent of ``t``)."""
        return (1 - self.sigma_min) * x1 - x0

    def t_from_sigma(self, sigma: Tensor, iters: int = 0) -> Tensor:
        """Invert ``sigma = s/a = (sigma_min + (1 - sigma_min) t)/(1 - t)``."""
        sig = sigma.to(torch.float64)
        return ((sig - self.sigma_min) / (sig + 1 - self.sigma_min)).to(sigma.dtype)


def reflow_pairs(sample_fn: Callable[[Tensor], Any], noise: Tensor) -> tuple[Tensor, Tensor]:
    r"""Coupled pairs for rectified-flow *reflow* (Liu et al. 2022, "Flow Straight and Fast").

    ``sample_fn`` integrates the learned ODE from the prior sample ``noise`` (``t = 1``) to data
    (``t = 0``) deterministically; it may return a tensor or a
    :class:`~difflab.core.samplers.base.SampleResult`. Returns ``(noise, sample)``: in difflab's
    direction the pair ``(x1, x0)``, on which a new flow is trained with ``x_t = (1 - t) x0 + t x1``
    and target ``x1 - x0``. Runs without gradients. Shapes: both as ``noise``, e.g. ``(B, C, H, W)``.
    """
    with torch.no_grad():
        out = sample_fn(noise)
    sample = out.sample if hasattr(out, "sample") else out
    if not isinstance(sample, Tensor) or sample.shape != noise.shape:
        got = tuple(sample.shape) if isinstance(sample, Tensor) else type(sample).__name__
        raise ValueError(
            f"reflow_pairs: sample_fn must return a tensor of the noise's shape {tuple(noise.shape)}, got {got}"
        )
    return noise, sample.detach()


class ConditionalFlow(LinearGaussianProcess):
    r"""FlowSE's conditional flow (Lee et al. 2025, "FlowSE: Efficient and High-Quality Speech
    Enhancement via Flow Matching") between clean ``x0`` (``t = 0``) and noisy ``y`` (``t = 1``):

    .. math::  x_t = (1 - t)\,x_0 + t\,y + \big((1 - t)\sigma_{\min} + t\,\sigma_{\max}\big)\,z,

    ``a = 1 - t``, ``b = t``, ``s = (1 - t) sigma_min + t sigma_max``; the velocity target is
    ``u = (sigma_max - sigma_min) z + (y - x0)`` (:meth:`velocity_target`) and sampling starts at
    ``y + sigma_max z``. Shapes: ``x0``, ``y``, ``z`` alike, e.g. complex STFTs ``(B, C, F, T)``.

    Args:
        sigma_min: std at ``t = 0`` (0).
        sigma_max: std at ``t = 1`` (0.487).
        t_min: smallest sampling time (0.03).
    """

    conditional = True

    def __init__(self, sigma_min: float = 0.0, sigma_max: float = 0.487, t_min: float = 0.03) -> None:
        if not 0 <= sigma_min <= sigma_max or sigma_max <= 0:
            raise ValueError(
                f"ConditionalFlow needs 0 <= sigma_min <= sigma_max, sigma_max > 0, got {sigma_min}, {sigma_max}"
            )
        self.sigma_min, self.sigma_max, self.t_min = float(sigma_min), float(sigma_max), float(t_min)

    def coefficients(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return 1 - t, t.clone(), (1 - t) * self.sigma_min + t * self.sigma_max

    def coefficient_derivatives(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return -torch.ones_like(t), torch.ones_like(t), torch.full_like(t, self.sigma_max - self.sigma_min)

    def velocity_target(self, x0: Tensor, y: Tensor, z: Tensor) -> Tensor:
        """``u = (sigma_max - sigma_min) z + (y - x0)``."""
        return (self.sigma_max - self.sigma_min) * z + (y - x0)
