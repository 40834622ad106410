r"""Residual shifting between a clean signal ``x0`` and a degraded one ``y`` (restoration chains).

All three methods here are :class:`LinearGaussianProcess` es ``x_t = a x0 + b y + s eps`` on a
discrete chain of ``T`` steps, step ``k`` at ``t = k / T`` (``k = 0`` clean); off-grid ``t``
interpolates the tabulated coefficient linearly (in ``log alpha_bar`` for Resfusion), so the
samplers can use any grid and the SDE view is defined.

===========================  ==================  ==================  ====================  ===========
method                       a(t)                b(t)                s(t)                  ratio r(s,t)
===========================  ==================  ==================  ====================  ===========
ResShift (Yue et al. 2023)   1 - eta_t           eta_t               kappa sqrt(eta_t)     1
RDDM (Liu et al. 2024)       1 - abar_t          abar_t              beta_bar_t            1
Resfusion (Shi et al. 2024)  2 sqrt(abar_t) - 1  1 - sqrt(abar_t)    sqrt(1 - abar_t)      sqrt(abar_t/abar_s)
===========================  ==================  ==================  ====================  ===========

``r`` is the multiplier of the Markov kernel ``x_t = r x_s + ...``. ResShift and RDDM add the
residual increment on top of the previous state (``r = 1``), so the base-class posterior
q(x_s | x_t, x0) reproduces their papers' posteriors; Resfusion keeps DDPM's kernel
``x_t = sqrt(alpha_t) x_{t-1} + (1 - sqrt(alpha_t)) R + sqrt(1 - alpha_t) eps`` with
``R = y - x0``, so its posterior is the DDPM step with the residual-shifted noise ``eps_R``.

Note on the SDE view: the base class derives ``dx = (k x + m y) dt + g dW`` with ``k = a'/a`` from the
marginals alone. For ``r = 1`` chains this SDE is not the continuum limit of the chain's own
kernel (which drifts by ``eta' (y - x0)``, depending on ``x0``), but it has the same marginals,
which is all that the reverse SDE and the probability-flow ODE use.

Tensor shapes: ``x0``, ``y`` (the degraded input upsampled/encoded to ``x0``'s shape) and ``x_t``
share a shape such as ``(B, C, H, W)``; ``t`` is ``(B,)`` or broadcasts against ``x``'s leading dims.
"""

from __future__ import annotations

import torch
from torch import Tensor

from difflab.core.processes.base import LinearGaussianProcess, whole_step_times
from difflab.core.schedules import resshift_etas


def _interp_table(table: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    """Piecewise-linear ``table[k]`` at ``t = k / T`` (``len(table) = T + 1``) and its slope in ``t``.

    At a grid point the slope of the segment to the right is returned. Computed in float64 and
    returned in ``t``'s dtype.
    """
    n = table.numel() - 1
    tab = table.to(device=t.device, dtype=torch.float64)
    u = (t.to(torch.float64) * n).clamp(0, n)
    lo = u.floor().long().clamp(max=n - 1)
    w = u - lo
    value = (1 - w) * tab[lo] + w * tab[lo + 1]
    slope = (tab[lo + 1] - tab[lo]) * n
    return value.to(t.dtype), slope.to(t.dtype)


class _ResidualChain(LinearGaussianProcess):
    """Shared pieces of the discrete residual chains: the step/time mapping and ``r = 1``."""

    conditional = True
    num_steps: int

    def time(self, k: Tensor | int) -> Tensor:
        """Continuous time ``t = k / T`` of integer step ``k``."""
        return torch.as_tensor(k, dtype=torch.float64) / self.num_steps

    def index(self, t: Tensor) -> Tensor:
        """Integer step ``k = round(t T)``."""
        return torch.round(t * self.num_steps).long()

    def transition_ratio(self, s: Tensor, t: Tensor) -> Tensor:
        """``r = 1``: the kernel adds the residual increment to the previous state."""
        return torch.ones_like(torch.as_tensor(t) + torch.as_tensor(s))


# ---------------------------------------------------------------------------------------------- ResShift
class ResidualShift(_ResidualChain):
    r"""ResShift (Yue et al. 2023, "ResShift: Efficient Diffusion Model for Image Super-resolution by
    Residual Shifting").

    .. math::  x_t = x_0 + \eta_t (y - x_0) + \kappa\sqrt{\eta_t}\,\varepsilon,
               \qquad a = 1 - \eta_t,\ b = \eta_t,\ s = \kappa\sqrt{\eta_t},

    with Markov kernel ``x_t = x_{t-1} + alpha_t (y - x0) + kappa sqrt(alpha_t) noise``,
    ``alpha_t = eta_t - eta_{t-1}`` (``r = 1``), so the base-class posterior is the paper's

    .. math::  q(x_{t-1} | x_t, x_0) = \mathcal N\Big(\frac{\eta_{t-1}}{\eta_t} x_t + \frac{\alpha_t}{\eta_t} x_0,\;
               \kappa^2 \frac{\eta_{t-1}}{\eta_t}\alpha_t\Big).

    Schedule (:func:`difflab.core.schedules.resshift_etas`): ``sqrt(eta_1) = min(min_noise/kappa,
    min_noise)``, ``sqrt(eta_T) = max_noise``, geometric in the warped index ``((k-1)/(T-1))^p (T-1)``.
    Step ``k`` sits at ``t = k / T`` with ``eta(0) = 0``; ``eta`` is linear between steps.
    The prior (sampling start) is ``y + kappa sqrt(eta_T) z``, dropping ``(1 - eta_T) x0`` as the paper does.

    Args:
        num_steps: ``T`` (15 for v1/v2, 4 for v3).
        kappa: noise scale ``kappa`` (2.0).
        p: warping exponent of the schedule (0.3).
        min_noise: sets ``sqrt(eta_1)`` (0.04; 0.2 for v3).
        max_noise: ``sqrt(eta_T)`` (0.99).
        etas: explicit ``eta_1..eta_T`` (length ``T``, increasing, in (0, 1)) instead of the schedule.
    """

    def __init__(
        self,
        num_steps: int = 15,
        kappa: float = 2.0,
        p: float = 0.3,
        min_noise: float = 0.04,
        max_noise: float = 0.99,
        etas: Tensor | None = None,
    ) -> None:
        if kappa <= 0:
            raise ValueError(f"ResidualShift needs kappa > 0, got kappa={kappa}")
        if etas is None:
            if not 0 < min_noise < max_noise < 1:
                raise ValueError(
                    f"need 0 < min_noise < max_noise < 1, got min_noise={min_noise}, max_noise={max_noise}"
                )
            sqrt_eta1 = min(min_noise / kappa, min_noise)
            etas = resshift_etas(num_steps, kappa, p, sqrt_eta1**2, max_noise**2)
        etas = torch.as_tensor(etas, dtype=torch.float64).flatten()
        if etas.numel() < 1 or bool((etas <= 0).any()) or bool((etas >= 1).any()) or bool((etas.diff() <= 0).any()):
            raise ValueError(f"etas must be increasing in (0, 1), got {etas.tolist()}")
        self.num_steps, self.kappa, self.p, self.min_noise, self.max_noise = (
            int(etas.numel()),
            float(kappa),
            p,
            min_noise,
            max_noise,
        )
        self.etas = torch.cat([etas.new_zeros(1), etas])  # index k = state after k steps, eta_0 = 0

    def train_times(
        self, x0: Tensor, generator: torch.Generator | None = None, *, time_dims: int = 1, t_eps: float | None = None
    ) -> Tensor:
        """ResShift trains at its whole steps: ``t = k / T``, ``k ~ U{1..T}`` (``t_eps`` unused)."""
        if x0.ndim < time_dims:
            raise ValueError(f"x0 of shape {tuple(x0.shape)} has fewer than time_dims = {time_dims} axes")
        return whole_step_times(self.num_steps, tuple(x0.shape[:time_dims]), generator, x0.device, x0.dtype)

    def eta(self, t: Tensor) -> Tensor:
        """Shifting coefficient ``eta(t)``, piecewise linear through ``(k/T, eta_k)``."""
        return _interp_table(self.etas, t)[0]

    def coefficients(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        eta = self.eta(t)
        return 1 - eta, eta, self.kappa * eta.clamp_min(0).sqrt()

    def coefficient_derivatives(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        eta, deta = _interp_table(self.etas, t)
        return -deta, deta, self.kappa * deta / (2 * eta.sqrt())

    def sde_coefficients(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``k = -eta'/(1 - eta)``, ``m = -k``, ``g^2 = kappa^2 eta' (1 + eta)/(1 - eta)`` (finite at ``t = 0``)."""
        eta, deta = _interp_table(self.etas, t)
        k = deta / (1 - eta)
        return -k, k, (self.kappa**2 * k * (1 + eta)).clamp_min(0).sqrt()

    def prior_mean(self, shape: torch.Size, y: Tensor | None, like: Tensor) -> Tensor:
        """ResShift starts from ``y + kappa sqrt(eta_T) z``: the prior mean is ``y``."""
        self._check_y(y)
        assert y is not None
        return y.expand(shape)


# ---------------------------------------------------------------------------------------------- RDDM
class RDDMProcess(_ResidualChain):
    r"""Residual Denoising Diffusion Models (Liu et al. 2024, "Residual Denoising Diffusion Models").

    .. math::  I_t = I_0 + \bar\alpha_t I_{res} + \bar\beta_t \varepsilon, \qquad I_{res} = I_{in} - I_0,

    i.e. ``a = 1 - abar_t``, ``b = abar_t`` (``y = I_in``), ``s = beta_bar_t``; the kernel is
    ``I_t = I_{t-1} + alpha_t I_res + beta_t eps`` (``r = 1``). With ``T`` steps
    (step ``k`` at ``t = k / T``, ``abar_0 = beta_bar_0 = 0``) the default schedule is

    * ``alpha_k = (T + 1 - k) / (T (T + 1) / 2)`` (so ``abar_T = 1``),
    * ``beta_k^2 = k * sum_scale / (T (T + 1) / 2)`` (so ``beta_bar_T^2 = sum_scale``),

    with ``abar`` and ``beta_bar^2`` their cumulative sums; off-grid both are linear in ``t``. The
    base-class posterior with ``r = 1`` is the paper's
    ``mu = c1 I_t + c2 I_res + c3 I_0`` with ``c1 = beta_bar_{t-1}^2 / beta_bar_t^2``,
    ``c2 = (beta_t^2 abar_{t-1} - beta_bar_{t-1}^2 alpha_t) / beta_bar_t^2``,
    ``c3 = beta_t^2 / beta_bar_t^2`` and variance ``beta_t^2 beta_bar_{t-1}^2 / beta_bar_t^2``;
    its ``eta``-posterior is the paper's DDIM form
    ``I_s = I_t - (abar_t - abar_s) I_res - (beta_bar_t - sqrt(beta_bar_s^2 - sigma^2)) eps + sigma z``.
    The prior is ``I_in + sqrt(sum_scale) z``.

    For generation (``I_in = 0``) use :meth:`from_ddim`: with ``1 - abar_t = sqrt(abar^DDIM_t)``
    and ``beta_bar_t^2 = 1 - abar^DDIM_t`` RDDM's deterministic sampler is DDIM's.

    Args:
        num_steps: ``T`` (1000).
        sum_scale: ``beta_bar_T^2`` (0.01 for restoration, 1 for generation).
        alphas_cumsum, betas2_cumsum: explicit ``abar_1..abar_T`` and ``beta_bar_1^2..beta_bar_T^2``
            (length ``T`` each) instead of the default schedule.
        conditional: False drops ``y`` (``I_in = 0``, generation).
    """

    def __init__(
        self,
        num_steps: int = 1000,
        sum_scale: float = 0.01,
        alphas_cumsum: Tensor | None = None,
        betas2_cumsum: Tensor | None = None,
        conditional: bool = True,
    ) -> None:
        if (alphas_cumsum is None) != (betas2_cumsum is None):
            raise ValueError("RDDMProcess: pass both alphas_cumsum and betas2_cumsum, or neither")
        if alphas_cumsum is None:
            if num_steps < 1:
                raise ValueError(f"RDDMProcess needs num_steps >= 1, got {num_steps}")
            if sum_scale <= 0:
                raise ValueError(f"RDDMProcess needs sum_scale > 0, got {sum_scale}")
            T = num_steps
            k = torch.arange(1, T + 1, dtype=torch.float64)
            alphas = (T + 1 - k) / (T * (T + 1) / 2)
            betas2 = k * sum_scale / (T * (T + 1) / 2)
            alphas_cumsum, betas2_cumsum = alphas.cumsum(0), betas2.cumsum(0)
        ac = torch.as_tensor(alphas_cumsum, dtype=torch.float64).flatten()
        bc = torch.as_tensor(betas2_cumsum, dtype=torch.float64).flatten()
        if ac.numel() != bc.numel() or ac.numel() < 1:
            raise ValueError(
                f"alphas_cumsum and betas2_cumsum need one equal length T >= 1, got {ac.numel()} and {bc.numel()}"
            )
        if bool((bc <= 0).any()) or bool((bc.diff() <= 0).any()):
            raise ValueError(f"betas2_cumsum must be positive and increasing, got {bc.tolist()[:5]}...")
        self.num_steps, self.sum_scale, self.conditional = int(ac.numel()), float(bc[-1]), conditional
        self.alphas_cumsum = torch.cat([ac.new_zeros(1), ac])
        self.betas2_cumsum = torch.cat([bc.new_zeros(1), bc])

    @classmethod
    def from_ddim(cls, alphas_cumprod: Tensor) -> RDDMProcess:
        """RDDM for generation equivalent to DDIM on ``alpha_bar^DDIM`` (length ``T``, steps ``1..T``).

        ``abar^RDDM = 1 - sqrt(alpha_bar^DDIM)``, ``beta_bar^2 = 1 - alpha_bar^DDIM``, ``I_in = 0``.
        """
        ab = torch.as_tensor(alphas_cumprod, dtype=torch.float64).flatten()
        return cls(alphas_cumsum=1 - ab.sqrt(), betas2_cumsum=1 - ab, conditional=False)

    def coefficients(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        abar, _ = _interp_table(self.alphas_cumsum, t)
        b2, _ = _interp_table(self.betas2_cumsum, t)
        return 1 - abar, abar, b2.clamp_min(0).sqrt()

    def coefficient_derivatives(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        _, dabar = _interp_table(self.alphas_cumsum, t)
        b2, db2 = _interp_table(self.betas2_cumsum, t)
        return -dabar, dabar, db2 / (2 * b2.sqrt())

    def sde_coefficients(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``k = -abar'/(1 - abar)``, ``m = -k``, ``g^2 = (beta_bar^2)' - 2 k beta_bar^2`` (finite at ``t = 0``)."""
        abar, dabar = _interp_table(self.alphas_cumsum, t)
        b2, db2 = _interp_table(self.betas2_cumsum, t)
        k = -dabar / (1 - abar)
        return k, -k, (db2 - 2 * k * b2).clamp_min(0).sqrt()


# ---------------------------------------------------------------------------------------------- Resfusion
class ResfusionProcess(LinearGaussianProcess):
    r"""Resfusion (Shi et al. 2024, "Resfusion: Denoising Diffusion Probabilistic Models for Image
    Restoration Based on Prior Residual Noise").

    .. math::  x_t = \sqrt{\bar\alpha_t}\,x_0 + (1 - \sqrt{\bar\alpha_t})\,R + \sqrt{1 - \bar\alpha_t}\,\varepsilon,
               \qquad R = y - x_0,

    i.e. ``a = 2 sqrt(abar) - 1``, ``b = 1 - sqrt(abar)``, ``s = sqrt(1 - abar)``, with DDPM's kernel
    ``x_t = sqrt(alpha_t) x_{t-1} + (1 - sqrt(alpha_t)) R + sqrt(1 - alpha_t) eps``
    (``r = sqrt(abar_t / abar_s)``). The reverse step is a standard DDPM step with the
    residual-shifted noise ``eps_R = eps + (1 - sqrt(alpha_t)) sqrt(1 - abar_t) / beta_t * R``.

    Acceleration point: the chain is truncated at the first step ``T'`` whose ``sqrt(abar)`` is
    ``<= 0.5`` and that value is set to exactly 0.5 (the reference snaps it only when it lies more
    than 0.01 below). There ``a = 0`` and the mean is ``0.5 y``, so sampling starts from
    ``0.5 y + sqrt(1 - abar_T') z`` without the clean image. ``t = k / T'``, ``abar(0) = 1``;
    ``log abar`` is linear between steps.

    Args:
        num_steps: ``T`` of the untruncated schedule (12, giving ``T' = 5`` and
            ``sqrt(abar) = 0.996, 0.913, 0.759, 0.557, 0.5``).
        betas: explicit untruncated betas (length ``T``) instead of the default
            ``linspace(1e-4 * 1000/T, 0.02 * 1000/T, T)``.
    """

    conditional = True

    def __init__(self, num_steps: int = 12, betas: Tensor | None = None) -> None:
        if betas is None:
            if num_steps < 1:
                raise ValueError(f"ResfusionProcess needs num_steps >= 1, got {num_steps}")
            scale = 1000.0 / num_steps
            betas = torch.linspace(1e-4 * scale, 0.02 * scale, num_steps, dtype=torch.float64)
        betas = torch.as_tensor(betas, dtype=torch.float64).flatten()
        alphas = 1 - betas
        # a beta >= 1 (large-step linear schedules) only happens past the acceleration point
        sqrt_ab = torch.cumprod(alphas.clamp_min(0), 0).sqrt()
        below = torch.nonzero(sqrt_ab <= 0.5)
        if below.numel() == 0:
            raise ValueError(
                f"schedule never reaches sqrt(alpha_bar) <= 0.5 (last {sqrt_ab[-1].item():.4f}); use more steps"
            )
        k_acc = int(below[0, 0]) + 1  # 1-based step T'
        sqrt_ab = torch.cat([sqrt_ab[: k_acc - 1], sqrt_ab.new_tensor([0.5])])
        self.num_steps = k_acc
        self.alphas_cumprod = torch.cat([sqrt_ab.new_ones(1), sqrt_ab**2])  # index k = after k steps
        self.betas = 1 - self.alphas_cumprod[1:] / self.alphas_cumprod[:-1]
        self._log_ab = self.alphas_cumprod.log()

    def time(self, k: Tensor | int) -> Tensor:
        """Continuous time ``t = k / T'`` of integer step ``k``."""
        return torch.as_tensor(k, dtype=torch.float64) / self.num_steps

    def alpha_bar(self, t: Tensor) -> Tensor:
        """``abar(t)``, log-linear between the steps."""
        return _interp_table(self._log_ab, t)[0].exp()

    def coefficients(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        ab = self.alpha_bar(t)
        r = ab.sqrt()
        return 2 * r - 1, 1 - r, (1 - ab).clamp_min(0).sqrt()

    def coefficient_derivatives(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        la, dla = _interp_table(self._log_ab, t)
        ab = la.exp()
        dr = 0.5 * dla * ab.sqrt()  # d sqrt(abar)/dt
        return 2 * dr, -dr, -dla * ab / (2 * (1 - ab).clamp_min(1e-300).sqrt())

    def sde_coefficients(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``k = a'/a``, ``m = b' - k b``, ``g^2 = (1 - abar)' - 2 k (1 - abar)`` (finite at ``t = 0``)."""
        la, dla = _interp_table(self._log_ab, t)
        ab = la.exp()
        r = ab.sqrt()
        dr = 0.5 * dla * r
        k = 2 * dr / (2 * r - 1)
        m = -dr - k * (1 - r)
        return k, m, (-dla * ab - 2 * k * (1 - ab)).clamp_min(0).sqrt()

    def transition_ratio(self, s: Tensor, t: Tensor) -> Tensor:
        """DDPM's kernel multiplier ``sqrt(abar_t / abar_s)``."""
        return (self.alpha_bar(t) / self.alpha_bar(s)).sqrt()
