r"""Gaussian VP, sub-VP and VE processes, continuous (score SDEs) and discrete (DDPM chains).

Time runs from ``t = 0`` (clean) to ``t = 1`` (prior). All are :class:`LinearGaussianProcess`
with ``b = 0``:

* :class:`VPSDE` (Song et al. 2021): ``beta(t) = beta_0 + t (beta_1 - beta_0)``,
  ``a(t) = exp(-t^2 (beta_1 - beta_0)/4 - t beta_0 / 2)``, ``s = sqrt(1 - a^2)``,
  drift ``-beta(t) x / 2``, diffusion ``sqrt(beta(t))``.
* :class:`SubVPSDE`: same mean, ``s = 1 - a^2`` (not square-rooted), diffusion
  ``sqrt(beta(t) (1 - a^4))``.
* :class:`VESDE`: ``a = 1``, ``s = sigma_min (sigma_max/sigma_min)^t``, diffusion
  ``s(t) sqrt(2 log(sigma_max/sigma_min))``.
* :class:`CosineVP`: continuous cosine ``alpha_bar`` (Nichol & Dhariwal), truncated at ``t_max``.
* :class:`DiscreteVP`: a DDPM chain of ``T`` steps from a beta schedule, step ``k`` at
  ``t_k = k / T``, ``alpha_bar(t_0) = 1``; off-grid ``t`` interpolates ``log alpha_bar`` linearly.
  The diffusers timestep ``j`` (0-based) corresponds to ``t = (j + 1) / T``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from difflab.core.processes.base import LinearGaussianProcess, whole_step_times
from difflab.core.schedules import (
    BetaSchedule,
    alphas_cumprod,
    cosine_alpha_bar,
    make_betas,
    rescale_zero_terminal_snr,
)


class VPSDE(LinearGaussianProcess):
    """Variance-preserving SDE with a linear ``beta(t)``.

    Args:
        beta_min: ``beta(0)`` (0.1 in score_sde).
        beta_max: ``beta(1)`` (20 in score_sde).
        t_min: smallest sampling time (1e-3 in score_sde).
    """

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0, t_min: float = 1e-3) -> None:
        if not 0 <= beta_min < beta_max:
            raise ValueError(f"need 0 <= beta_min < beta_max, got {beta_min}, {beta_max}")
        self.beta_min, self.beta_max, self.t_min = beta_min, beta_max, t_min

    def _log_a(self, t: Tensor) -> Tensor:
        return -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def beta(self, t: Tensor) -> Tensor:
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def coefficients(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        la = self._log_a(t)
        return la.exp(), torch.zeros_like(t), (-torch.expm1(2 * la)).sqrt()

    def coefficient_derivatives(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        a, _, s = self.coefficients(t)
        da = -0.5 * self.beta(t) * a
        return da, torch.zeros_like(t), -a * da / s

    def sde_coefficients(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        b = self.beta(t)
        return -0.5 * b, torch.zeros_like(t), b.sqrt()

    def t_from_sigma(self, sigma: Tensor, iters: int = 0) -> Tensor:
        # log a = -log(1 + sigma^2)/2 ; solve quadratic  (bd/4) t^2 + (b0/2) t - log(1+s^2)/2 = 0
        c = 0.5 * torch.log1p(sigma.to(torch.float64) ** 2)
        bd = self.beta_max - self.beta_min
        t = (-0.5 * self.beta_min + torch.sqrt(0.25 * self.beta_min**2 + bd * c)) / (0.5 * bd)
        return t.to(sigma.dtype)


class SubVPSDE(VPSDE):
    """Sub-VP SDE: VP's mean with ``std = 1 - a^2`` and diffusion ``sqrt(beta (1 - a^4))``."""

    def coefficients(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        la = self._log_a(t)
        return la.exp(), torch.zeros_like(t), -torch.expm1(2 * la)

    def coefficient_derivatives(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        a, _, _ = self.coefficients(t)
        da = -0.5 * self.beta(t) * a
        return da, torch.zeros_like(t), -2 * a * da

    def sde_coefficients(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        b = self.beta(t)
        a4 = torch.exp(4 * self._log_a(t))
        return -0.5 * b, torch.zeros_like(t), (b * (1 - a4)).sqrt()

    def t_from_sigma(self, sigma: Tensor, iters: int = 60) -> Tensor:
        return LinearGaussianProcess.t_from_sigma(self, sigma, iters)


class VESDE(LinearGaussianProcess):
    """Variance-exploding SDE: ``x_t = x_0 + sigma(t) z`` with a geometric ``sigma(t)``.

    Args:
        sigma_min: ``sigma(0)`` (0.01 in score_sde).
        sigma_max: ``sigma(1)``; the prior is ``N(0, sigma_max^2 I)`` (50 for CIFAR-10 in score_sde).
        t_min: smallest sampling time (1e-5 in score_sde).
    """

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 50.0, t_min: float = 1e-5) -> None:
        if not 0 < sigma_min < sigma_max:
            raise ValueError(f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
        self.sigma_min, self.sigma_max, self.t_min = sigma_min, sigma_max, t_min
        self._log_ratio = math.log(sigma_max / sigma_min)

    def coefficients(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        s = self.sigma_min * torch.exp(t * self._log_ratio)
        return torch.ones_like(t), torch.zeros_like(t), s

    def coefficient_derivatives(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        _, _, s = self.coefficients(t)
        return torch.zeros_like(t), torch.zeros_like(t), s * self._log_ratio

    def sde_coefficients(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        _, _, s = self.coefficients(t)
        return torch.zeros_like(t), torch.zeros_like(t), s * math.sqrt(2 * self._log_ratio)

    def t_from_sigma(self, sigma: Tensor, iters: int = 0) -> Tensor:
        return torch.log(sigma / self.sigma_min) / self._log_ratio


class CosineVP(LinearGaussianProcess):
    """VP with the continuous cosine ``alpha_bar`` (``s = 0.008``), time rescaled so ``t = 1`` is ``t_max_raw``.

    ``alpha_bar`` reaches 0 at raw time 1, so the prior end is truncated at ``t_max_raw`` (0.9946
    keeps ``alpha_bar(1)`` near 1e-5, a log-SNR of about -11.5).
    """

    def __init__(self, s: float = 0.008, t_max_raw: float = 0.9946, t_min: float = 0.0) -> None:
        self.s, self.t_max_raw, self.t_min = s, t_max_raw, t_min

    def alpha_bar(self, t: Tensor) -> Tensor:
        return cosine_alpha_bar(t * self.t_max_raw, self.s).clamp(1e-12, 1.0)

    def coefficients(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        ab = self.alpha_bar(t)
        return ab.sqrt(), torch.zeros_like(t), (1 - ab).clamp_min(0).sqrt()


def whole_step_grid(num_steps: int, steps: int, start: int | None = None) -> Tensor:
    """Descending times on a ``num_steps`` chain's whole steps: ``min(steps, start)`` steps spaced evenly
    in ``k`` from ``start`` (default ``num_steps``) down to 0, as ``t = k / num_steps`` (DDIM's
    sub-sequence of the training steps), float64 of shape ``(min(steps, start) + 1,)``.

    A network trained only at ``k = 1..T`` should be evaluated there: a grid uniform in log-SNR puts
    fractional steps between ``k = 0`` and ``1`` that it never saw.
    """
    start = num_steps if start is None else int(start)
    if steps < 1 or not 1 <= start <= num_steps:
        raise ValueError(f"whole_step_grid needs steps >= 1 and start in [1, {num_steps}], got {steps}, {start}")
    k = torch.linspace(float(start), 0.0, min(int(steps), start) + 1, dtype=torch.float64).round()
    return k / num_steps


SPACINGS = ("leading", "trailing", "linspace")
"""diffusers' named timestep spacings (``timestep_spacing``) of a chain's sampling steps."""


def spaced_step_grid(num_steps: int, steps: int, spacing: str, steps_offset: int = 0) -> Tensor:
    """The whole-step grid diffusers' schedulers use for ``timestep_spacing = spacing``, as times
    ``t = (j + 1) / T`` of their timesteps ``j`` followed by ``t = 0``, float64 ``(steps + 1,)``:

    * ``leading``: ``j = i * (T // n) + steps_offset`` for ``i = n-1 .. 0`` (DDPM / DDIM's default);
    * ``trailing``: ``j = round(T - i T / n) - 1`` for ``i = 0 .. n-1`` (starts at ``j = T - 1``);
    * ``linspace``: ``j = round(linspace(0, T - 1, n))``, descending.
    """
    if spacing not in SPACINGS:
        raise ValueError(f"spacing must be one of {SPACINGS}, got {spacing!r}")
    if not 1 <= steps <= num_steps:
        raise ValueError(f"steps must be in [1, {num_steps}] for spacing {spacing!r}, got {steps}")
    i = torch.arange(steps, dtype=torch.float64)
    if spacing == "leading":
        j = (i * (num_steps // steps)).round().flip(0) + steps_offset
    elif spacing == "trailing":
        j = (num_steps - i * num_steps / steps).round() - 1
    else:
        j = torch.linspace(0, num_steps - 1, steps, dtype=torch.float64).round().flip(0)
    return torch.cat([(j + 1) / num_steps, torch.zeros(1, dtype=torch.float64)])


class DiscreteVP(LinearGaussianProcess):
    """A DDPM chain of ``T`` steps; step ``k`` is at ``t = k / T`` with ``alpha_bar_0 = 1``.

    Args:
        schedule: ``linear``, ``scaled_linear``, ``cosine`` or ``sigmoid`` (see :mod:`schedules`).
        num_steps: ``T``, the number of training steps (1000 for DDPM, 100 for Diffusion Policy).
        beta_start, beta_end: schedule end points (ignored by ``cosine``).
        betas: explicit betas of length ``T`` instead of a named schedule.
        whole_steps: the chain is trained and sampled at its whole steps ``k = 1..T`` only (DDPM):
            :meth:`train_times` draws ``k ~ U{1..T}``, and :meth:`default_grid` puts the DDPM /
            DDIM / DPM-Solver / ParaDiGMS chains on whole steps (:func:`whole_step_grid`, as
            diffusers' schedulers) and ends a Karras grid at the smallest trained noise level
            ``sigma(1 / T)`` (as k-diffusion and diffusers). ``False`` treats the chain as a
            continuous-time process (``log alpha_bar`` interpolated) trained at any
            ``t ~ U(t_eps, 1)`` and sampled on the samplers' standard grids.
        zero_terminal_snr: rescale the betas so that ``alpha_bar_T = 0`` (Lin et al. 2023, Alg. 1,
            :func:`~difflab.core.schedules.rescale_zero_terminal_snr`).
        terminal_alpha_bar: replace ``alpha_bar_T`` by this small positive value (diffusers' Euler
            uses ``2^-24`` with zero terminal SNR), so that ``sigma(1)`` is finite and samplers that
            step in ``sigma`` (Euler, Karras grids) can start at ``t = 1``.
    """

    CHAIN_SAMPLERS = (
        "ddpm",
        "ddim",
        "dpm_solver",
        "dpmpp_2m_sde",
        "dpmpp_3m_sde",
        "unipc",
        "deis",
        "lcm",
        "tcd",
        "paradigms",
    )

    def __init__(
        self,
        schedule: BetaSchedule = "linear",
        num_steps: int = 1000,
        beta_start: float | None = None,
        beta_end: float | None = None,
        betas: Tensor | None = None,
        whole_steps: bool = True,
        zero_terminal_snr: bool = False,
        terminal_alpha_bar: float | None = None,
    ) -> None:
        betas = make_betas(schedule, num_steps, beta_start, beta_end) if betas is None else betas.to(torch.float64)
        if zero_terminal_snr:
            betas = rescale_zero_terminal_snr(betas)
        if terminal_alpha_bar is not None and not 0 < terminal_alpha_bar < 1:
            raise ValueError(f"terminal_alpha_bar must lie in (0, 1), got {terminal_alpha_bar!r}")
        bad = ~torch.isfinite(betas) | (betas <= 0) | (betas > 1)
        bad[:-1] |= betas[:-1] >= 1  # beta = 1 (alpha_bar = 0) only as the last step (zero terminal SNR)
        if bool(bad.any()):
            k = int(bad.nonzero()[0])
            raise ValueError(
                f"betas must lie in (0, 1) (1 allowed only for the last step); beta[{k}] = {betas[k].item():g} "
                f"(schedule {schedule!r}, {betas.numel()} steps)"
            )
        self.schedule, self.num_steps, self.whole_steps = schedule, int(betas.numel()), bool(whole_steps)
        self.betas = betas
        ab = alphas_cumprod(betas)
        if terminal_alpha_bar is not None:
            if len(ab) > 1 and not terminal_alpha_bar < ab[-2]:
                raise ValueError(
                    f"terminal_alpha_bar {terminal_alpha_bar:g} must lie below alpha_bar of step T - 1 "
                    f"({ab[-2].item():g}) for the noise level to grow with t"
                )
            ab[-1] = terminal_alpha_bar
            betas = betas.clone()
            betas[-1] = 1 - ab[-1] / ab[-2] if len(ab) > 1 else 1 - ab[-1]
            self.betas = betas
        self.alphas_cumprod = torch.cat([ab.new_ones(1), ab])  # index k = state after k steps
        self._log_ab = self.alphas_cumprod.log()

    def index(self, t: Tensor) -> Tensor:
        """Integer step ``k = round(t T)``."""
        return torch.round(t * self.num_steps).long()

    def step_grid(self, steps: int, start: int | None = None) -> Tensor:
        """:func:`whole_step_grid` of this chain: pass it as ``grid=`` to a sampler."""
        return whole_step_grid(self.num_steps, steps, start)

    def time(self, k: Tensor | int) -> Tensor:
        """Continuous time of integer step ``k``."""
        return torch.as_tensor(k, dtype=torch.float64) / self.num_steps

    def train_times(
        self, x0: Tensor, generator: torch.Generator | None = None, *, time_dims: int = 1, t_eps: float | None = None
    ) -> Tensor:
        """Whole steps ``t = k / T``, ``k ~ U{1..T}`` (``t_eps`` unused), of shape ``x0.shape[:time_dims]``;
        the continuous law of the base class when ``whole_steps`` is False."""
        if not self.whole_steps:
            return super().train_times(x0, generator, time_dims=time_dims, t_eps=t_eps)
        if x0.ndim < time_dims:
            raise ValueError(f"x0 of shape {tuple(x0.shape)} has fewer than time_dims = {time_dims} axes")
        return whole_step_times(self.num_steps, tuple(x0.shape[:time_dims]), generator, x0.device, x0.dtype)

    def default_grid(
        self,
        sampler: str,
        steps: int,
        *,
        grid_kind: str | None = None,
        t_start: float | None = None,
        t_end: float | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> Tensor:
        """The sampler's grid on this chain (see ``whole_steps``): whole steps for the DDPM-family chains
        unless a grid override is given; a Karras grid down to ``sigma(1 / T)``, then 0. ``grid_kind``
        may also name one of diffusers' spacings (``leading``, ``trailing``, ``linspace``; see
        :func:`spaced_step_grid`), for any sampler."""
        from difflab.core.samplers.registry import standard_grid

        if grid_kind in SPACINGS:
            return spaced_step_grid(self.num_steps, steps, grid_kind).to(dtype)
        if not self.whole_steps:
            return super().default_grid(sampler, steps, grid_kind=grid_kind, t_start=t_start, t_end=t_end, dtype=dtype)
        if sampler in self.CHAIN_SAMPLERS and grid_kind is None and t_start is None and t_end is None:
            return self.step_grid(steps).to(dtype)
        return standard_grid(
            sampler,
            self,
            steps,
            grid_kind=grid_kind,
            t_start=t_start,
            t_end=t_end,
            karras_floor=1.0 / self.num_steps,
            dtype=dtype,
        )

    def alpha_bar(self, t: Tensor) -> Tensor:
        u = (t.to(torch.float64) * self.num_steps).clamp(0, self.num_steps)
        lo = u.floor().long().clamp(max=self.num_steps - 1)
        w = u - lo
        la = self._log_ab.to(t.device)
        return torch.exp((1 - w) * la[lo] + w * la[lo + 1]).to(t.dtype)

    def coefficients(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        ab = self.alpha_bar(t)
        return ab.sqrt(), torch.zeros_like(t), (1 - ab).clamp_min(0).sqrt()

    def coefficient_derivatives(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        # piecewise-linear log alpha_bar: derivative of the segment containing t
        u = (t.to(torch.float64) * self.num_steps).clamp(0, self.num_steps)
        lo = u.floor().long().clamp(max=self.num_steps - 1)
        la = self._log_ab.to(t.device)
        dla = ((la[lo + 1] - la[lo]) * self.num_steps).to(t.dtype)
        a, _, s = self.coefficients(t)
        da = 0.5 * dla * a
        return da, torch.zeros_like(t), -a * da / s.clamp_min(1e-12)

    def t_from_sigma(self, sigma: Tensor, iters: int = 0) -> Tensor:
        """Invert ``sigma = sqrt((1 - abar)/abar)`` by interpolating ``log alpha_bar``."""
        target = -torch.log1p(sigma.to(torch.float64) ** 2)  # log abar
        la = self._log_ab.to(sigma.device)
        # la is decreasing; searchsorted on the negated (increasing) sequence
        idx = torch.searchsorted(-la, -target).clamp(1, self.num_steps)
        lo, hi = la[idx - 1], la[idx]
        w = ((lo - target) / (lo - hi)).clamp(0, 1)
        return ((idx - 1 + w) / self.num_steps).to(sigma.dtype)
