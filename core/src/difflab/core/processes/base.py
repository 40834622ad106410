r"""The linear Gaussian process: the one interface every continuous forward process implements.

Every continuous corruption in difflab has the marginal

.. math::  x_t = a(t)\,x_0 + b(t)\,y + s(t)\,\varepsilon, \qquad \varepsilon \sim \mathcal N(0, I),

with ``t`` in [0, 1], ``t = 0`` clean data and ``t = 1`` the prior. ``y`` is an optional condition
(the noisy speech of SGMSE+, the upsampled low-resolution image of ResShift); processes without one
have ``b = 0``. Examples:

=====================  ==================  ===================  ===================
process                a(t)                b(t)                 s(t)
=====================  ==================  ===================  ===================
VP (DDPM)              sqrt(abar)          0                    sqrt(1 - abar)
VE (NCSN)              1                   0                    sigma(t)
OUVE (SGMSE+)          exp(-theta t)       1 - exp(-theta t)    closed form
residual (ResShift)    1 - eta             eta                  kappa sqrt(eta)
flow matching          1 - t               0                    t
=====================  ==================  ===================  ===================

From the three coefficients alone this base class derives everything the samplers need:

* the marginal and its sample (:meth:`marginal`, :meth:`sample_marginal`);
* the Markov transition q(x_t | x_s) with multiplier ``r(s, t)`` (default ``a_t / a_s``; ResShift
  overrides it with ``r = 1``) and the Gaussian posterior q(x_s | x_t, x_0) of the DDPM / DDIM
  family (:meth:`posterior`);
* the SDE whose marginals these are, ``dx = [k(t) x + m(t) y] dt + g(t) dW`` with
  ``k = a'/a``, ``m = b' - k b`` and ``g^2 = (s^2)' - 2 k s^2`` (:meth:`drift`, :meth:`diffusion`),
  its reverse SDE and probability-flow ODE (:meth:`reverse_drift`);
* the VE-scaled noise level ``sigma = s / a`` and its inverse (for Karras grids), and log-SNR.

Derivatives of the coefficients come from autograd unless a subclass gives a closed form.
Per-element time: ``t`` may have shape ``(B,)`` or any shape broadcasting against the leading
dimensions of ``x`` (see :func:`difflab.core.broadcast.expand_like`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from difflab.core.broadcast import expand_like


class LinearGaussianProcess:
    """Base class: subclasses implement :meth:`coefficients` and, if they have one, :meth:`prior_mean`.

    Attributes:
        t_min: smallest time a sampler should integrate to (``t_eps``: 0 for VP chains,
            0.03 for OUVE, 1e-5 for VE SDEs).
        t_max: the prior time, normally 1.
        conditional: True when ``b(t) != 0`` so that ``y`` is required.
    """

    t_min: float = 0.0
    t_max: float = 1.0
    conditional: bool = False

    # ------------------------------------------------------------------ coefficients
    def coefficients(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Return ``(a(t), b(t), s(t))``, each of ``t``'s shape."""
        raise NotImplementedError

    def coefficient_derivatives(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Return ``(a'(t), b'(t), s'(t))``; autograd by default."""
        with torch.enable_grad():
            tt = t.detach().to(torch.float64).requires_grad_(True)
            outs = self.coefficients(tt)
            ders = []
            for c in outs:
                if not c.requires_grad:
                    ders.append(torch.zeros_like(tt))
                else:
                    (d,) = torch.autograd.grad(c.sum(), tt, retain_graph=True, allow_unused=True)
                    ders.append(torch.zeros_like(tt) if d is None else d)
        return tuple(d.to(t.dtype).detach() for d in ders)  # type: ignore[return-value]

    def coefficients_like(self, t: Tensor, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(a(t), b(t), s(t))`` shaped to multiply ``x`` (:func:`~difflab.core.broadcast.expand_like`)."""
        a, b, s = self.coefficients(t)
        return expand_like(a, x), expand_like(b, x), expand_like(s, x)

    # ------------------------------------------------------------------ training times and sampling grids
    def train_times(
        self, x0: Tensor, generator: torch.Generator | None = None, *, time_dims: int = 1, t_eps: float | None = None
    ) -> Tensor:
        """Training times ``t ~ U(t_eps, t_max)`` of shape ``x0.shape[:time_dims]`` (one per example, or
        per token / frame), in ``x0``'s dtype and device; ``t_eps`` defaults to ``t_min`` (1e-5 if 0)."""
        if x0.ndim < time_dims:
            raise ValueError(f"x0 of shape {tuple(x0.shape)} has fewer than time_dims = {time_dims} axes")
        if t_eps is None:
            t_eps = self.t_min if self.t_min > 0 else 1e-5
        u = torch.rand(x0.shape[:time_dims], generator=generator, device=x0.device, dtype=x0.dtype)
        return t_eps + (self.t_max - t_eps) * u

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
        """The time grid ``(steps + 1,)`` (descending) on which ``sampler`` runs this process: the
        sampler's standard grid (:func:`difflab.core.samplers.registry.standard_grid`; ``grid_kind``,
        ``t_start``, ``t_end`` override it). Chains with whole training steps override this."""
        from difflab.core.samplers.registry import standard_grid

        return standard_grid(sampler, self, steps, grid_kind=grid_kind, t_start=t_start, t_end=t_end, dtype=dtype)

    # ------------------------------------------------------------------ marginal
    def _check_y(self, y: Tensor | None) -> None:
        if self.conditional and y is None:
            raise ValueError(f"{type(self).__name__} is conditional: pass the condition y")

    def mean(self, x0: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        """Marginal mean ``a(t) x0 + b(t) y``."""
        a, b, _ = self.coefficients_like(t, x0)
        m = a * x0
        if self.conditional:
            self._check_y(y)
            m = m + b * y
        return m

    def marginal(self, x0: Tensor, t: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Return ``(mean, std)``; ``std`` has ``t``'s shape expanded against ``x0``."""
        _, _, s = self.coefficients_like(t, x0)
        return self.mean(x0, t, y), s

    def noise_like(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The process's standard noise of ``x``'s shape: white ``N(0, I)`` by default.

        Processes with correlated noise (GP / OU kernels over timestamps) override this, and
        every sampler draws its fresh noise through it.
        """
        return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)

    def sample_marginal(
        self,
        x0: Tensor,
        t: Tensor,
        y: Tensor | None = None,
        *,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Draw ``x_t ~ q(x_t | x0[, y])``. Returns ``(x_t, eps)`` with ``eps`` the standard noise used."""
        if noise is None:
            noise = self.noise_like(x0, generator)
        mean, std = self.marginal(x0, t, y)
        return mean + std * noise, noise

    def prior_mean(self, shape: torch.Size, y: Tensor | None, like: Tensor) -> Tensor:
        """Mean of the prior at ``t_max``: ``b(1) y`` (the data mean term is taken as 0)."""
        if self.conditional:
            self._check_y(y)
            t1 = torch.full((shape[0],), self.t_max, dtype=like.dtype, device=like.device)
            _, b, _ = self.coefficients_like(t1, y)
            return b * y
        return torch.zeros(shape, dtype=like.dtype, device=like.device)

    def prior_sample(
        self,
        shape: tuple[int, ...] | torch.Size,
        *,
        y: Tensor | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """Sample the prior ``b(1) y + s(1) z`` (``a(1) x0`` is assumed negligible or absorbed)."""
        shape = torch.Size(shape)
        if y is not None:
            device, dtype = y.device, y.dtype
        like = torch.empty(0, device=device, dtype=dtype)
        z = self.noise_like(torch.empty(shape, device=device, dtype=dtype), generator)
        t1 = torch.full((shape[0],), self.t_max, device=device, dtype=dtype)
        _, _, s = self.coefficients(t1)
        return self.prior_mean(shape, y, like) + expand_like(s, z) * z

    # ------------------------------------------------------------------ Markov transition and posterior
    def transition_ratio(self, s: Tensor, t: Tensor) -> Tensor:
        """Multiplier ``r`` of the Markov kernel ``x_t = r x_s + ... + noise`` (``s < t``); ``a_t / a_s``."""
        a_s, _, _ = self.coefficients(s)
        a_t, _, _ = self.coefficients(t)
        return a_t / a_s

    def posterior_std(self, s: Tensor, t: Tensor) -> Tensor:
        r"""Std of q(x_s | x_t, x_0): ``s_s * sqrt(s_t^2 - r^2 s_s^2) / s_t`` (DDPM's beta-tilde for VP)."""
        _, _, sd_s = self.coefficients(s)
        _, _, sd_t = self.coefficients(t)
        r = self.transition_ratio(s, t)
        var = sd_s**2 * (sd_t**2 - r**2 * sd_s**2).clamp_min(0.0) / sd_t**2
        return var.sqrt()

    def posterior_parts(self, s: Tensor, t: Tensor) -> tuple[Tensor, ...]:
        """``(a_s, b_s, s_s, a_t, b_t, s_t, tilde sigma)`` with each coefficient evaluated once.

        Element-wise in ``s`` and ``t``, so a sampler can evaluate a whole grid in one call
        (``posterior_parts(grid[1:], grid[:-1])``) and pass each step's slice to
        :meth:`posterior_from_parts`. Uses :meth:`transition_ratio` / :meth:`posterior_std` when a
        subclass overrides them.
        """
        a_s, b_s, sd_s = self.coefficients(s)
        a_t, b_t, sd_t = self.coefficients(t)
        if type(self).posterior_std is not LinearGaussianProcess.posterior_std:
            return a_s, b_s, sd_s, a_t, b_t, sd_t, self.posterior_std(s, t)
        if type(self).transition_ratio is LinearGaussianProcess.transition_ratio:
            r = a_t / a_s
        else:
            r = self.transition_ratio(s, t)
        var = sd_s**2 * (sd_t**2 - r**2 * sd_s**2).clamp_min(0.0) / sd_t**2
        return a_s, b_s, sd_s, a_t, b_t, sd_t, var.sqrt()

    def posterior(
        self,
        x_t: Tensor,
        x0: Tensor,
        s: Tensor,
        t: Tensor,
        y: Tensor | None = None,
        *,
        eps: Tensor | None = None,
        eta: float = 1.0,
    ) -> tuple[Tensor, Tensor]:
        r"""Mean and std of the DDIM-family posterior q_eta(x_s | x_t, x_0).

        .. math:: x_s = a_s x_0 + b_s y + \sqrt{s_s^2 - \eta^2\tilde\sigma^2}\;\hat\varepsilon + \eta\tilde\sigma z,
                  \qquad \hat\varepsilon = (x_t - a_t x_0 - b_t y)/s_t

        with :math:`\tilde\sigma` = :meth:`posterior_std`. ``eta = 1`` is the exact Markov posterior
        (DDPM ancestral step), ``eta = 0`` the deterministic DDIM step. ``eps`` may be passed to
        use the model's own noise estimate instead of the one implied by ``x0``.
        Returns ``(mean, std)`` with ``std`` expanded against ``x_t``.
        """
        return self.posterior_from_parts(self.posterior_parts(s, t), x_t, x0, y, eps=eps, eta=eta)

    def posterior_from_parts(
        self,
        parts: tuple[Tensor, ...],
        x_t: Tensor,
        x0: Tensor,
        y: Tensor | None = None,
        *,
        eps: Tensor | None = None,
        eta: float = 1.0,
    ) -> tuple[Tensor, Tensor]:
        """:meth:`posterior` with the coefficients of :meth:`posterior_parts` already evaluated."""
        a_s, b_s, sd_s, a_t, b_t, sd_t, sig = (expand_like(c, x_t) for c in parts)
        m_s = a_s * x0
        if self.conditional:
            self._check_y(y)
            m_s = m_s + b_s * y
        if eps is None:
            m_t = a_t * x0 + b_t * y if self.conditional else a_t * x0
            eps = (x_t - m_t) / sd_t
        sig = eta * sig
        mean = m_s + (sd_s**2 - sig**2).clamp_min(0.0).sqrt() * eps
        return mean, sig

    # ------------------------------------------------------------------ SDE view
    def sde_coefficients(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(k, m, g)`` of ``dx = (k x + m y) dt + g dW`` with these marginals."""
        a, b, s = self.coefficients(t)
        da, db, ds = self.coefficient_derivatives(t)
        k = da / a
        m = db - k * b
        g2 = 2 * s * ds - 2 * k * s**2
        return k, m, g2.clamp_min(0.0).sqrt()

    def drift(self, x: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        """Forward drift ``f(x, t) = k(t) x + m(t) y``."""
        k, m, _ = self.sde_coefficients(t)
        f = expand_like(k, x) * x
        if self.conditional:
            self._check_y(y)
            f = f + expand_like(m, x) * y
        return f

    def diffusion(self, t: Tensor) -> Tensor:
        """Diffusion coefficient ``g(t)`` (shape of ``t``)."""
        return self.sde_coefficients(t)[2]

    def reverse_drift(
        self, x: Tensor, t: Tensor, score: Tensor, y: Tensor | None = None, *, probability_flow: bool = False
    ) -> Tensor:
        r"""Drift of the reverse-time SDE ``f - g^2 score`` or of the PF-ODE ``f - g^2 score / 2``."""
        g = expand_like(self.diffusion(t), x)
        w = 0.5 if probability_flow else 1.0
        return self.drift(x, t, y) - w * g**2 * score

    # ------------------------------------------------------------------ noise levels
    def sigma(self, t: Tensor) -> Tensor:
        """VE-scaled noise level ``s(t) / a(t)``."""
        a, _, s = self.coefficients(t)
        return s / a

    def log_snr(self, t: Tensor) -> Tensor:
        """``lambda(t) = log(a^2 / s^2)``."""
        a, _, s = self.coefficients(t)
        return 2 * (a.log() - s.log())

    def t_from_sigma(self, sigma: Tensor, iters: int = 60) -> Tensor:
        """Invert the monotone ``sigma(t)`` on ``[0, t_max]`` by bisection (subclasses may override)."""
        sig = sigma.to(torch.float64)
        lo = torch.zeros_like(sig)
        hi = torch.full_like(sig, self.t_max)
        for _ in range(iters):
            mid = (lo + hi) / 2
            up = self.sigma(mid) < sig
            lo = torch.where(up, mid, lo)
            hi = torch.where(up, hi, mid)
        return ((lo + hi) / 2).to(sigma.dtype)

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_") and not isinstance(v, Tensor)
        )
        return f"{type(self).__name__}({fields})"


def whole_step_times(
    num_steps: int, shape: tuple[int, ...], generator: torch.Generator | None, device, dtype: torch.dtype
) -> Tensor:
    """Times ``t = k / T`` of whole chain steps ``k ~ U{1..T}`` (``T = num_steps``), of the given shape."""
    k = torch.randint(1, num_steps + 1, shape, generator=generator, device=device)
    return k.to(dtype) / num_steps
