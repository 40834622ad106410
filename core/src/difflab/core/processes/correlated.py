r"""Correlated Gaussian noise over (possibly irregular) timestamps.

Stochastic Process Diffusion (Bilos et al. 2023, "Modeling Temporal Data as Continuous Functions
with Stochastic Process Diffusion") replaces white noise by a Gaussian process over the series'
timestamps ``t_1..t_L``: ``eps = L z`` with ``L = chol(Sigma)``, the same ``L`` for every channel.

Kernels (jitter ``1e-4`` on the diagonal):

* GP (squared exponential): ``Sigma_ij = exp(-((t_i - t_j) / sigma)^2)`` -- no factor 2;
* OU: ``Sigma_ij = exp(-theta |t_i - t_j|)``.

The OU process is Markov, so for sorted times it is sampled in O(L) by the recursion
``x_1 = z_1``, ``x_k = c_k x_{k-1} + sqrt(1 - c_k^2) z_k`` with ``c_k = exp(-theta (t_k - t_{k-1}))``,
which is exactly ``L z`` for the Cholesky factor of the jitter-free OU kernel.

:class:`CorrelatedNoise` wraps any :class:`LinearGaussianProcess`: the coefficients are the base
process's (``x_t = a x0 + b y + s L z``, DSPD/CSPD), only the standard noise is coloured. Bind the
timestamps of a batch with :meth:`CorrelatedNoise.with_times` before drawing noise.

Shapes: ``times`` is ``(L,)`` (shared) or ``(B, L)`` (per series); data ``x`` is ``(B, L, C)`` with
the time axis at ``time_dim`` (1 by default); kernels and their factors are ``(L, L)`` or ``(B, L, L)``.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor

from difflab.core.broadcast import expand_like
from difflab.core.processes.base import LinearGaussianProcess

Kernel = Literal["gp", "ou"]


def _pairwise_diff(times: Tensor) -> Tensor:
    if times.ndim not in (1, 2):
        raise ValueError(f"times must have shape (L,) or (B, L), got {tuple(times.shape)}")
    t = times.to(torch.float64)
    return t.unsqueeze(-1) - t.unsqueeze(-2)


def _jitter(times: Tensor, jitter: float) -> Tensor:
    n = times.shape[-1]
    return jitter * torch.eye(n, dtype=torch.float64, device=times.device)


def gp_kernel(times: Tensor, length_scale: float = 0.1, jitter: float = 1e-4) -> Tensor:
    r"""Squared-exponential covariance ``Sigma_ij = exp(-((t_i - t_j)/sigma)^2) + jitter delta_ij`` (float64).

    There is no factor 2 in the exponent (SPD's convention). ``times``: ``(L,)`` or ``(B, L)``.
    """
    if length_scale <= 0:
        raise ValueError(f"gp_kernel needs length_scale > 0, got {length_scale}")
    d = _pairwise_diff(times)
    return torch.exp(-((d / length_scale) ** 2)) + _jitter(times, jitter)


def ou_kernel(times: Tensor, theta: float = 0.5, jitter: float = 1e-4) -> Tensor:
    r"""Ornstein-Uhlenbeck covariance ``Sigma_ij = exp(-theta |t_i - t_j|) + jitter delta_ij`` (float64)."""
    if theta <= 0:
        raise ValueError(f"ou_kernel needs theta > 0, got {theta}")
    d = _pairwise_diff(times)
    return torch.exp(-theta * d.abs()) + _jitter(times, jitter)


def kernel_cholesky(sigma: Tensor) -> Tensor:
    """Lower Cholesky factor ``L`` with ``L L^T = Sigma``; a clear error if ``Sigma`` is not positive definite."""
    chol, info = torch.linalg.cholesky_ex(sigma)
    if bool((info != 0).any()):
        raise ValueError("covariance is not positive definite (repeated timestamps with zero jitter?)")
    return chol


def ou_recursion_sample(times: Tensor, theta: float, z: Tensor) -> Tensor:
    r"""O(L) OU sample ``x_1 = z_1``, ``x_k = c_k x_{k-1} + sqrt(1 - c_k^2) z_k``, ``c_k = e^{-theta (t_k - t_{k-1})}``.

    Covariance ``exp(-theta |t_i - t_j|)`` (no jitter). ``times``: ``(L,)`` or ``(B, L)``, strictly
    increasing along the last axis; ``z``: ``(..., L)`` standard normal broadcasting with ``times``
    (time on the last axis). Returns ``x`` of ``z``'s shape.
    """
    if theta <= 0:
        raise ValueError(f"ou_recursion_sample needs theta > 0, got {theta}")
    dt = times.diff(dim=-1)
    if bool((dt <= 0).any()):
        raise ValueError("ou_recursion_sample needs strictly increasing times along the last axis")
    c = torch.exp(-theta * dt.to(torch.float64)).to(z.dtype)
    q = (1 - c**2).sqrt()
    out = [z[..., 0]]
    for k in range(1, z.shape[-1]):
        out.append(c[..., k - 1] * out[-1] + q[..., k - 1] * z[..., k])
    return torch.stack(out, dim=-1)


class CorrelatedNoise(LinearGaussianProcess):
    r"""A base process with GP- or OU-correlated noise along a time axis.

    ``x_t = a(t) x0 + b(t) y + s(t) L z``, ``L = chol(Sigma(times))``: all coefficients, the SDE view,
    the prior mean and the Markov ratio are delegated to ``base``; :meth:`noise_like` draws
    ``L z`` (same ``L`` for every channel), so :meth:`sample_marginal`, :meth:`prior_sample` and
    every sampler's fresh noise are coloured. The fitting target is usually the whitened noise
    ``z = L^{-1} eps`` (:meth:`whiten`, SPD's default) and the score of ``x_t | x0`` is
    ``-Sigma^{-1} eps / s`` (:meth:`score_from_noise`).

    Args:
        base: the process providing ``a, b, s`` (e.g. :class:`~difflab.core.processes.gaussian.VPSDE`
            or a ``DiscreteVP``).
        kernel: ``"gp"`` (squared exponential) or ``"ou"``.
        scale: the GP length scale ``sigma`` (SPD default 0.1) or the OU rate ``theta`` (0.5).
        time_dim: the time axis of the data (1 for ``(B, L, C)``).
        jitter: diagonal added to the kernel (1e-4).
        times: timestamps ``(L,)`` or ``(B, L)``; usually bound later with :meth:`with_times`.
    """

    def __init__(
        self,
        base: LinearGaussianProcess,
        kernel: Kernel = "gp",
        scale: float = 0.1,
        *,
        time_dim: int = 1,
        jitter: float = 1e-4,
        times: Tensor | None = None,
    ) -> None:
        if kernel not in ("gp", "ou"):
            raise ValueError(f"unknown kernel {kernel!r}; expected 'gp' or 'ou'")
        if scale <= 0:
            raise ValueError(f"CorrelatedNoise needs scale > 0, got {scale}")
        if time_dim == 0:
            raise ValueError("time_dim must not be the batch axis 0")
        self.base, self.kernel, self.scale, self.time_dim, self.jitter = (
            base,
            kernel,
            float(scale),
            time_dim,
            float(jitter),
        )
        self.t_min, self.t_max, self.conditional = base.t_min, base.t_max, base.conditional
        self.times: Tensor | None = None
        self._chol: Tensor | None = None
        if times is not None:
            self._bind(times)

    # ------------------------------------------------------------------ timestamps
    def _bind(self, times: Tensor) -> None:
        self.times = times
        self._chol = kernel_cholesky(self.covariance(times))

    def with_times(self, times: Tensor) -> CorrelatedNoise:
        """A copy of this process bound to ``times`` ``(L,)`` or ``(B, L)`` (Cholesky computed once here)."""
        new = CorrelatedNoise(self.base, self.kernel, self.scale, time_dim=self.time_dim, jitter=self.jitter)
        new._bind(times)
        return new

    def covariance(self, times: Tensor | None = None) -> Tensor:
        """The kernel matrix ``Sigma`` (float64) of ``times`` (the bound ones by default)."""
        times = self._require_times() if times is None else times
        if self.kernel == "gp":
            return gp_kernel(times, self.scale, self.jitter)
        return ou_kernel(times, self.scale, self.jitter)

    def cholesky(self) -> Tensor:
        """``L = chol(Sigma)`` of the bound timestamps, ``(L, L)`` or ``(B, L, L)`` (float64)."""
        self._require_times()
        assert self._chol is not None
        return self._chol

    def _require_times(self) -> Tensor:
        if self.times is None:
            raise ValueError("CorrelatedNoise has no timestamps: bind them with process.with_times(times)")
        return self.times

    # ------------------------------------------------------------------ L z and L^{-1} eps along the time axis
    def _apply(self, x: Tensor, op: str) -> Tensor:
        chol = self.cholesky()
        n = chol.shape[-1]
        dim = self.time_dim % x.ndim
        if x.shape[dim] != n:
            raise ValueError(f"data has {x.shape[dim]} steps on axis {dim} but {n} timestamps are bound")
        if chol.ndim == 3 and chol.shape[0] != x.shape[0]:
            raise ValueError(f"timestamps are bound for batch {chol.shape[0]}, data has batch {x.shape[0]}")
        moved = x.movedim(dim, 1)  # (B, L, ...)
        flat = moved.reshape(moved.shape[0], n, -1).to(torch.float64)  # (B, L, K)
        if op == "colour":
            out = chol @ flat
        elif op == "whiten":
            out = torch.linalg.solve_triangular(chol.expand(flat.shape[0], n, n), flat, upper=False)
        else:  # precision: Sigma^{-1} x
            out = torch.cholesky_solve(flat, chol.expand(flat.shape[0], n, n), upper=False)
        return out.to(x.dtype).reshape(moved.shape).movedim(1, dim)

    def colour(self, z: Tensor) -> Tensor:
        """``eps = L z`` along the time axis, for every channel."""
        return self._apply(z, "colour")

    def whiten(self, eps: Tensor) -> Tensor:
        """``z = L^{-1} eps`` along the time axis (triangular solve), the inverse of :meth:`colour`."""
        return self._apply(eps, "whiten")

    def score_from_noise(self, eps: Tensor, std: Tensor) -> Tensor:
        """Score of ``x_t | x0``: ``-Sigma^{-1} eps / s = -L^{-T} L^{-1} eps / s``; ``std`` expands against ``eps``."""
        return -self._apply(eps, "precision") / expand_like(std, eps)

    def noise_like(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Correlated standard noise ``L z`` of ``x``'s shape, ``z ~ N(0, I)`` from ``generator``."""
        z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return self.colour(z)

    # ------------------------------------------------------------------ delegation to the base process
    def coefficients(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.base.coefficients(t)

    def coefficient_derivatives(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.base.coefficient_derivatives(t)

    def sde_coefficients(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.base.sde_coefficients(t)

    def transition_ratio(self, s: Tensor, t: Tensor) -> Tensor:
        return self.base.transition_ratio(s, t)

    def posterior_std(self, s: Tensor, t: Tensor) -> Tensor:
        return self.base.posterior_std(s, t)

    def prior_mean(self, shape: torch.Size, y: Tensor | None, like: Tensor) -> Tensor:
        return self.base.prior_mean(shape, y, like)

    def t_from_sigma(self, sigma: Tensor, iters: int = 60) -> Tensor:
        return self.base.t_from_sigma(sigma, iters)

    def train_times(self, x0: Tensor, generator: torch.Generator | None = None, **kwargs: Any) -> Tensor:
        return self.base.train_times(x0, generator, **kwargs)

    def default_grid(self, sampler: str, steps: int, **kwargs: Any) -> Tensor:
        return self.base.default_grid(sampler, steps, **kwargs)

    def __getattr__(self, name: str) -> Any:
        # schedule-specific helpers of the base (alpha_bar, index, time, ...); only reached for
        # attributes not found on this object
        if name.startswith("_") or "base" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.__dict__["base"], name)
