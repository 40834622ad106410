r"""Two-stage stochastic DPM-Solver++ samplers (k-diffusion's ``sample_dpmpp_2s_ancestral`` and
``sample_dpmpp_sde``; Lu et al. 2022, arXiv:2211.01095).

Both work in VE-scaled coordinates ``x~ = (x - b y) / a = x0 + sigma eps`` with the half log-SNR
``lambda = -log sigma``; the first-order DPM-Solver++ move from ``sigma`` to ``sigma'`` with a data
prediction ``D`` is ``x~' = (sigma' / sigma) x~ + (1 - sigma' / sigma) D``.

**DPM++ 2S ancestral** (``eta``, ``s_noise``): with ``(sigma_down, sigma_up)`` of
:func:`~difflab.core.samplers.ancestral.ancestral_step`, a second-order single step to
``sigma_down`` through the midpoint ``sigma_mid = sqrt(sigma sigma_down)`` (``r = 1/2`` in
``lambda``): ``u = move(x~, sigma -> sigma_mid, x0_hat(sigma))``, then
``x~' = move(x~, sigma -> sigma_down, x0_hat(u, sigma_mid))``, plus ``s_noise sigma_up z``.
A step with ``sigma_down = 0`` (onto ``sigma = 0``) is one Euler step. NFE 2 per step (1 onto 0).

**DPM++ SDE** (``eta``, ``s_noise``, ``r`` = 1/2): with ``lambda_s = lambda + r h`` between
``sigma`` and ``sigma_next``: an ancestral first-order move to ``sigma_s`` (noise ``z_1`` for the
move ``sigma -> sigma_s``), ``D = (1 - 1/(2r)) x0_hat(sigma) + 1/(2r) x0_hat(sigma_s)``, then the
ancestral move ``sigma -> sigma_next`` with ``D`` (noise ``z_2`` for ``sigma -> sigma_next``). With
a Brownian noise source (``noise="brownian"``) ``z_1`` and ``z_2`` are increments of one path, so
they are correlated as the SDE requires and the result converges as the step count grows.

``noise`` is ``"white"``, ``"brownian"`` or a ``(t, t_next) -> z`` callable
(:func:`~difflab.core.samplers.brownian.noise_source`). Shapes: ``x`` (B, ...); ``grid`` (N + 1,)
or (N + 1, *t_shape) (white noise). ``callback`` gets ``{"step", "t", "x", "x0"}`` after each step.
"""

from __future__ import annotations

import torch
from torch import Tensor

from difflab.core.broadcast import expand_like
from difflab.core.samplers.ancestral import ancestral_step
from difflab.core.samplers.base import Callback, Denoiser, SampleResult, step_time
from difflab.core.samplers.brownian import NoiseSampler, noise_source


class _VE:
    """The move between the sampler's state ``x`` at time ``t`` and VE coordinates ``x~``."""

    def __init__(self, denoiser: Denoiser, like: Tensor) -> None:
        self.process, self.y, self.like = denoiser.process, denoiser.y, like

    def to_ve(self, x: Tensor, t: Tensor) -> Tensor:
        a, b, _ = (expand_like(c, x) for c in self.process.coefficients(t))
        return (x - b * self.y if self.process.conditional else x) / a

    def from_ve(self, xt: Tensor, t: Tensor) -> Tensor:
        a, b, _ = (expand_like(c, xt) for c in self.process.coefficients(t))
        return a * xt + b * self.y if self.process.conditional else a * xt

    def time(self, sigma: Tensor, fallback: Tensor) -> Tensor:
        """The time of noise level ``sigma`` (``fallback`` where ``sigma`` is 0, whose result is unused)."""
        return torch.where(sigma > 0, self.process.t_from_sigma(torch.where(sigma > 0, sigma, 1.0)), fallback)


def _move(xt: Tensor, x0: Tensor, sigma: Tensor, sigma_to: Tensor) -> Tensor:
    """First-order DPM-Solver++ in VE coordinates: ``(sigma' / sigma) x~ + (1 - sigma' / sigma) D``."""
    ratio = expand_like(sigma_to / sigma, xt)
    return ratio * xt + (1 - ratio) * x0


def sample_dpmpp_2s_ancestral(
    denoiser: Denoiser,
    x: Tensor,
    grid: Tensor,
    *,
    eta: float = 1.0,
    s_noise: float = 1.0,
    noise: str | NoiseSampler = "white",
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> SampleResult:
    """DPM++ 2S ancestral from ``x`` at ``grid[0]`` to ``grid[-1]`` (module docstring)."""
    if eta < 0 or s_noise < 0:
        raise ValueError(f"eta and s_noise must be >= 0, got eta={eta!r}, s_noise={s_noise!r}")
    ve, process, nfe0 = _VE(denoiser, x), denoiser.process, denoiser.nfe
    draw = noise_source(noise, process, x, grid, generator)
    for i in range(grid.shape[0] - 1):
        t, t_next = step_time(grid, i, x).to(x.dtype), step_time(grid, i + 1, x).to(x.dtype)
        sig, sig_next = process.sigma(t), process.sigma(t_next)
        xt, (x0, _) = ve.to_ve(x, t), denoiser(x, t)
        down, up = ancestral_step(sig, sig_next, eta)
        new = x0  # sigma_down = 0: one Euler step onto x0_hat
        if bool((down > 0).any()):
            mid = (sig * down).sqrt()
            t_mid = ve.time(mid, t)
            x0_mid, _ = denoiser(ve.from_ve(_move(xt, x0, sig, mid), t_mid), t_mid)
            new = torch.where(expand_like(down > 0, x), _move(xt, x0_mid, sig, down), x0)
        if bool((up > 0).any()):
            new = new + s_noise * expand_like(up, x) * draw(t, t_next)
        x = torch.where(expand_like(t_next == t, x), x, ve.from_ve(new, t_next))
        if callback is not None:
            callback({"step": i, "t": t_next, "x": x, "x0": x0})
    return SampleResult(x, denoiser.nfe - nfe0)


def sample_dpmpp_sde(
    denoiser: Denoiser,
    x: Tensor,
    grid: Tensor,
    *,
    eta: float = 1.0,
    s_noise: float = 1.0,
    r: float = 0.5,
    noise: str | NoiseSampler = "brownian",
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> SampleResult:
    """DPM++ SDE from ``x`` at ``grid[0]`` to ``grid[-1]`` (module docstring); a Brownian path by default
    (k-diffusion's choice), ``noise="white"`` for independent draws."""
    if eta < 0 or s_noise < 0 or not 0 < r <= 1:
        raise ValueError(f"need eta >= 0, s_noise >= 0 and 0 < r <= 1, got eta={eta!r}, s_noise={s_noise!r}, r={r!r}")
    ve, process, nfe0 = _VE(denoiser, x), denoiser.process, denoiser.nfe
    draw = noise_source(noise, process, x, grid, generator)
    for i in range(grid.shape[0] - 1):
        t, t_next = step_time(grid, i, x).to(x.dtype), step_time(grid, i + 1, x).to(x.dtype)
        sig, sig_next = process.sigma(t), process.sigma(t_next)
        xt, (x0, _) = ve.to_ve(x, t), denoiser(x, t)
        live = sig_next > 0
        new = x0.clone()  # a step onto sigma = 0 is one Euler step onto x0_hat
        if bool(live.any()):
            safe_next = torch.where(live, sig_next, sig)
            sig_s = sig * (safe_next / sig) ** r  # lambda_s = lambda + r h
            t_s = ve.time(sig_s, t)
            down, up = ancestral_step(sig, sig_s, eta)
            u = _move(xt, x0, sig, down) + s_noise * expand_like(up, x) * _draw_where(draw, t, t_s, up)
            x0_s, _ = denoiser(ve.from_ve(u, t_s), t_s)
            d = (1 - 0.5 / r) * x0 + (0.5 / r) * x0_s
            down, up = ancestral_step(sig, safe_next, eta)
            step = _move(xt, d, sig, down) + s_noise * expand_like(up, x) * _draw_where(draw, t, t_next, up)
            new = torch.where(expand_like(live, x), step, x0)
        x = torch.where(expand_like(t_next == t, x), x, ve.from_ve(new, t_next))
        if callback is not None:
            callback({"step": i, "t": t_next, "x": x, "x0": x0})
    return SampleResult(x, denoiser.nfe - nfe0)


def _draw_where(draw: NoiseSampler, t: Tensor, t_to: Tensor, up: Tensor) -> Tensor | float:
    """Noise for the move ``t -> t_to``, drawn only if some element adds any (``sigma_up > 0``)."""
    return draw(t, t_to) if bool((up > 0).any()) else 0.0


__all__ = ["sample_dpmpp_2s_ancestral", "sample_dpmpp_sde"]
