r"""Noise schedules and conversions between alpha-bar, sigma and log-SNR.

Discrete schedules return ``betas`` of length ``T`` for steps ``1..T`` (the diffusers convention:
index ``j`` of ``alphas_cumprod`` is the state after ``j + 1`` noising steps). In difflab's time
convention step ``k`` sits at ``t_k = k / T`` with ``alpha_bar(t_0) = 1`` (clean data), see
:class:`difflab.core.processes.gaussian.DiscreteVP`.

References: Ho et al. 2020 (linear), Nichol & Dhariwal 2021 (cosine, ``s = 0.008``, betas clipped
at 0.999), Jabri et al. 2022 (sigmoid), Karras et al. 2022 (EDM sigma grid), Sahoo et al. 2024
(MDLM log-linear), Yue et al. 2023 (ResShift eta schedule), Li et al. 2022 (Diffusion-LM sqrt, used by
DiffuSeq).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

BetaSchedule = Literal["linear", "scaled_linear", "cosine", "sigmoid", "sqrt"]


def linear_betas(T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> Tensor:
    """``beta = linspace(beta_start, beta_end, T)`` (DDPM)."""
    return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)


def scaled_linear_betas(T: int, beta_start: float = 0.00085, beta_end: float = 0.012) -> Tensor:
    """``beta = linspace(sqrt(beta_start), sqrt(beta_end), T)^2`` (latent diffusion)."""
    return torch.linspace(beta_start**0.5, beta_end**0.5, T, dtype=torch.float64) ** 2


def cosine_alpha_bar(t: Tensor, s: float = 0.008) -> Tensor:
    r"""Continuous cosine ``alpha_bar(t) = cos^2((t + s)/(1 + s) pi/2) / cos^2(s/(1 + s) pi/2)``."""
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    return f / math.cos(s / (1 + s) * math.pi / 2) ** 2


def cosine_betas(T: int, s: float = 0.008, max_beta: float = 0.999) -> Tensor:
    """``beta_i = min(1 - abar((i+1)/T) / abar(i/T), max_beta)`` (squaredcos_cap_v2)."""
    i = torch.arange(T, dtype=torch.float64)
    f = lambda u: torch.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    return (1 - f(i + 1) / f(i)).clamp(max=max_beta)


def sigmoid_betas(T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> Tensor:
    """``beta = sigmoid(linspace(-6, 6, T)) (beta_end - beta_start) + beta_start``."""
    return torch.sigmoid(torch.linspace(-6, 6, T, dtype=torch.float64)) * (beta_end - beta_start) + beta_start


def sqrt_betas(T: int, s: float = 1e-4, max_beta: float = 0.999) -> Tensor:
    r"""Diffusion-LM's sqrt schedule: ``beta_i = min(1 - abar((i+1)/T) / abar(i/T), max_beta)`` with
    ``abar(tau) = 1 - sqrt(tau + s)``; noise rises fast at first, as text embeddings need (DiffuSeq, T 2000)."""
    tau = torch.arange(T + 1, dtype=torch.float64) / T
    ab = 1 - torch.sqrt(tau + s)
    return (1 - ab[1:] / ab[:-1]).clamp(max=max_beta)


def make_betas(kind: BetaSchedule, T: int, beta_start: float | None = None, beta_end: float | None = None) -> Tensor:
    """Betas of a named schedule; ``beta_start``/``beta_end`` default per schedule (ignored by cosine, sqrt)."""
    if T < 1:
        raise ValueError(f"number of steps T must be >= 1, got {T}")
    if kind == "linear":
        return linear_betas(T, beta_start or 1e-4, beta_end or 0.02)
    if kind == "scaled_linear":
        return scaled_linear_betas(T, beta_start or 0.00085, beta_end or 0.012)
    if kind == "cosine":
        return cosine_betas(T)
    if kind == "sigmoid":
        return sigmoid_betas(T, beta_start or 1e-4, beta_end or 0.02)
    if kind == "sqrt":
        return sqrt_betas(T)
    raise ValueError(f"unknown beta schedule {kind!r}; expected linear, scaled_linear, cosine, sigmoid or sqrt")


def alphas_cumprod(betas: Tensor) -> Tensor:
    """``alpha_bar_j = prod_{i <= j} (1 - beta_i)``."""
    return torch.cumprod(1 - betas, dim=0)


def rescale_zero_terminal_snr(betas: Tensor) -> Tensor:
    """Lin et al. 2023, Alg. 1: shift/scale sqrt(alpha_bar) so the last is 0 and the first is kept."""
    ab_sqrt = alphas_cumprod(betas).sqrt()
    first, last = ab_sqrt[0].clone(), ab_sqrt[-1].clone()
    ab_sqrt = (ab_sqrt - last) * first / (first - last)
    ab = ab_sqrt**2
    alphas = torch.cat([ab[:1], ab[1:] / ab[:-1]])
    return 1 - alphas


# ---------------------------------------------------------------- conversions
def alpha_bar_to_sigma(alpha_bar: Tensor) -> Tensor:
    """VE-scaled noise level ``sigma = sqrt((1 - abar) / abar)``."""
    return ((1 - alpha_bar) / alpha_bar).sqrt()


def sigma_to_alpha_bar(sigma: Tensor) -> Tensor:
    """``abar = 1 / (1 + sigma^2)``."""
    return 1 / (1 + sigma**2)


def alpha_bar_to_log_snr(alpha_bar: Tensor) -> Tensor:
    """``lambda = log(abar / (1 - abar))``."""
    return alpha_bar.log() - torch.log1p(-alpha_bar)


def log_snr_to_alpha_bar(log_snr: Tensor) -> Tensor:
    """``abar = sigmoid(lambda)``."""
    return torch.sigmoid(log_snr)


# ---------------------------------------------------------------- continuous grids
def karras_sigmas(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0, append_zero: bool = True) -> Tensor:
    """EDM grid ``sigma_i = (smax^(1/rho) + i/(n-1) (smin^(1/rho) - smax^(1/rho)))^rho``, then 0."""
    i = torch.arange(n, dtype=torch.float64) / max(n - 1, 1)
    s = (sigma_max ** (1 / rho) + i * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return torch.cat([s, s.new_zeros(1)]) if append_zero else s


def log_linear_sigma(t: Tensor, eps: float = 1e-3) -> Tensor:
    r"""MDLM's log-linear total noise ``sigma(t) = -log(1 - (1 - eps) t)``; mask probability ``(1 - eps) t``."""
    return -torch.log1p(-(1 - eps) * t)


def log_linear_dsigma(t: Tensor, eps: float = 1e-3) -> Tensor:
    """Derivative ``sigma'(t) = (1 - eps) / (1 - (1 - eps) t)``."""
    return (1 - eps) / (1 - (1 - eps) * t)


def resshift_etas(T: int, kappa: float = 2.0, p: float = 0.3, eta_1: float = 0.001**2, eta_T: float = 0.999) -> Tensor:
    r"""ResShift's shifting schedule (Yue et al. 2023, Eq. 10).

    ``sqrt(eta_t) = sqrt(eta_1) * b0^(beta_t)`` with ``b0 = exp(log(eta_T/eta_1) / (2 (T-1)))`` and
    ``beta_t = ((t-1)/(T-1))^p (T-1)``, ``t = 1..T``; ``sqrt(eta_1) = min(0.04 / kappa, 0.001)`` in
    the paper's default. Returns ``eta_1..eta_T`` (length ``T``, increasing). ``kappa`` only enters
    through the caller's choice of ``eta_1``; it is accepted here for symmetry with the paper.
    """
    if T < 2:
        raise ValueError(f"ResShift needs T >= 2 steps, got {T}")
    b0 = math.exp(math.log(eta_T / eta_1) / (2 * (T - 1)))
    beta = (torch.arange(T, dtype=torch.float64) / (T - 1)) ** p * (T - 1)
    return (math.sqrt(eta_1) * b0**beta) ** 2
