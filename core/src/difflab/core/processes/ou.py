r"""Mean-reverting Ornstein-Uhlenbeck SDE with variance-exploding diffusion (OUVE).

SGMSE+ (Richter et al. 2023, "Speech Enhancement and Dereverberation with Diffusion-based
Generative Models") corrupts clean speech ``x0`` towards the noisy mixture ``y``:

.. math::  dx = \theta\,(y - x)\,dt + g(t)\,dW, \qquad
           g(t) = \sigma_{\min}\Big(\frac{\sigma_{\max}}{\sigma_{\min}}\Big)^{t}\sqrt{2L},
           \qquad L = \log\frac{\sigma_{\max}}{\sigma_{\min}}.

Its marginal, with ``x(0) = x0``, is Gaussian:

.. math::  \mu(t) = e^{-\theta t} x_0 + (1 - e^{-\theta t})\,y,
.. math::  s(t)^2 = \int_0^t e^{-2\theta(t-u)} g(u)^2\,du
           = \frac{\sigma_{\min}^2 L}{\theta + L}\,\big(e^{2(\theta+L)t} - 1\big)\,e^{-2\theta t},

so in the :class:`LinearGaussianProcess` form ``a = e^{-theta t}``, ``b = 1 - e^{-theta t}``,
``s`` as above. The prior used for sampling is ``y + s(1) z`` (the residual ``e^{-theta} (x0 - y)``
of the mean at ``t = 1`` is ignored, as in SGMSE+).

StoRM (Lemercier et al. 2023, "StoRM: A Diffusion-based Stochastic Regeneration Model for Speech
Enhancement and Dereverberation") uses this very process with the mean drifting towards the
predictive network's estimate ``y_hat = D_phi(y)`` instead of ``y``: an OU process *towards a
predicted mean*. Nothing in the process changes; pass ``y_hat`` wherever the condition ``y`` is
asked for (:meth:`~LinearGaussianProcess.sample_marginal`, :meth:`prior_sample`, :meth:`drift`,
the sampler's ``Denoiser(..., y=y_hat)``). That the score network also sees ``y`` is a matter of its
input, not of the process.

Tensor shapes: ``x0``, ``y``, ``x_t`` share one shape, e.g. complex STFTs as ``(B, C, F, T)``;
``t`` is ``(B,)`` or broadcasts against the leading dimensions of ``x``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from difflab.core.processes.base import LinearGaussianProcess


class OUVESDE(LinearGaussianProcess):
    r"""SGMSE+'s OUVE SDE ``dx = theta (y - x) dt + g(t) dW`` (conditional on ``y``).

    Args:
        theta: stiffness of the mean reversion (1.5 for 16 kHz speech, 2.0 at 48 kHz).
        sigma_min: ``sigma(0)`` of the diffusion's geometric schedule (0.05; 0.1 at 48 kHz).
        sigma_max: ``sigma(1)`` (0.5; 1.0 at 48 kHz).
        t_min: smallest sampling time ``t_eps`` (0.03 in SGMSE+).

    Closed forms (``L = log(sigma_max / sigma_min)``):

    * coefficients ``a = e^{-theta t}``, ``b = 1 - a``,
      ``s^2 = sigma_min^2 L / (theta + L) * (e^{2 L t} - e^{-2 theta t})``;
    * derivatives ``a' = -theta a``, ``b' = theta a``, ``s' = (g^2 - 2 theta s^2) / (2 s)``;
    * SDE ``k = -theta``, ``m = theta``, ``g(t) = sigma_min e^{L t} sqrt(2 L)``;
    * ``sigma = s / a`` inverts as ``t = log(1 + sigma^2 (theta + L) / (sigma_min^2 L)) / (2 (theta + L))``.

    For StoRM pass the predictive estimate ``y_hat`` as ``y`` (see the module docstring).
    """

    conditional = True

    def __init__(
        self, theta: float = 1.5, sigma_min: float = 0.05, sigma_max: float = 0.5, t_min: float = 0.03
    ) -> None:
        if not theta > 0:
            raise ValueError(f"OUVESDE needs theta > 0, got theta={theta}")
        if not 0 < sigma_min < sigma_max:
            raise ValueError(
                f"OUVESDE needs 0 < sigma_min < sigma_max, got sigma_min={sigma_min}, sigma_max={sigma_max}"
            )
        if not 0 <= t_min < 1:
            raise ValueError(f"OUVESDE needs 0 <= t_min < 1, got t_min={t_min}")
        self.theta, self.sigma_min, self.sigma_max, self.t_min = (
            float(theta),
            float(sigma_min),
            float(sigma_max),
            float(t_min),
        )
        self._log_ratio = math.log(sigma_max / sigma_min)

    # ------------------------------------------------------------------ closed forms
    def variance(self, t: Tensor) -> Tensor:
        r"""Marginal variance ``s(t)^2 = sigma_min^2 L/(theta+L) (e^{2(theta+L)t} - 1) e^{-2 theta t}``."""
        lam, th = self._log_ratio, self.theta
        c = self.sigma_min**2 * lam / (th + lam)
        # e^{2Lt} (1 - e^{-2(theta+L)t}), accurate near t = 0
        return c * torch.exp(2 * lam * t) * (-torch.expm1(-2 * (th + lam) * t))

    def g(self, t: Tensor) -> Tensor:
        """Diffusion coefficient ``g(t) = sigma_min (sigma_max/sigma_min)^t sqrt(2 log(sigma_max/sigma_min))``."""
        return self.sigma_min * torch.exp(self._log_ratio * t) * math.sqrt(2 * self._log_ratio)

    def coefficients(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        a = torch.exp(-self.theta * t)
        b = -torch.expm1(-self.theta * t)
        return a, b, self.variance(t).sqrt()

    def coefficient_derivatives(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(a', b', s')``; ``s'`` is infinite at ``t = 0`` where ``s ~ sqrt(t)``."""
        a = torch.exp(-self.theta * t)
        var = self.variance(t)
        ds = (self.g(t) ** 2 - 2 * self.theta * var) / (2 * var.sqrt())
        return -self.theta * a, self.theta * a, ds

    def sde_coefficients(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return torch.full_like(t, -self.theta), torch.full_like(t, self.theta), self.g(t)

    def prior_mean(self, shape: torch.Size, y: Tensor | None, like: Tensor) -> Tensor:
        """The prior is centred on ``y`` itself (``y_hat`` for StoRM): ``x_1 = y + s(1) z``."""
        self._check_y(y)
        assert y is not None
        return y.expand(shape)

    def t_from_sigma(self, sigma: Tensor, iters: int = 0) -> Tensor:
        """Closed-form inverse of ``sigma(t) = s(t)/a(t) = sqrt(sigma_min^2 L/(theta+L) (e^{2(theta+L)t} - 1))``."""
        lam, th = self._log_ratio, self.theta
        c = self.sigma_min**2 * lam / (th + lam)
        sig = sigma.to(torch.float64)
        return (torch.log1p(sig**2 / c) / (2 * (th + lam))).to(sigma.dtype)
