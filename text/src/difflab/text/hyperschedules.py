r"""Hyperschedules (a noise schedule per token position) and the epsilon-hybrid token noise.

Fathi, Scholak & Noël 2025, "Unifying Autoregressive and Diffusion-Based Sequence Generation"
(arXiv:2504.06416). Time ``t`` in [0, 1] (0 clean, 1 prior), positions ``l = 0..L-1``; shapes
``x0``, ``z`` (B, L) token ids, ``logits`` (B, L, V), times ``t`` (B,) and noise levels ``tau`` (B, L).

Hyperschedule. Position ``l`` has its own noise level ``tau(t, l)`` in [0, 1] and keeps its clean
token with probability ``alpha(tau(t, l))``, ``alpha`` MDLM's log-linear schedule
``alpha(tau) = 1 - (1 - eps) tau``. :class:`SlidingWindowHyperschedule` is the paper's sliding-window
("annealing") family in continuous time: a linear ramp ``window`` tokens wide slides from the first
position to the last,

.. math::  \tau(t, l) = \mathrm{clip}\Big(\frac{t - a_l}{\omega}, 0, 1\Big), \quad
           a_l = (1 - \omega)\Big(1 - \frac{l}{L - 1}\Big), \quad \omega = \frac{w}{L - 1 + w},

so at any ``t`` the positions left of the ramp are clean, those right of it fully noised, and the
ramp covers ``w`` positions. ``w -> inf`` (``window=None``) gives ``tau = t`` for every position:
MDLM's shared schedule. ``w -> 0`` gives the step ``tau = [t > 1 - l/(L-1)]``: positions are revealed
one at a time from left to right, an autoregressive model.

Per-position NELBO (absorbing noise). Each position is an absorbing chain on its own clock, so the
continuous-time bound is MDLM's with each position's own weight (chain rule through ``tau``):

.. math::  \mathcal L = \int_0^1 \mathbb E_{z_t} \sum_{l:\, z_t^l = m}
           \frac{-\partial_t \alpha(\tau(t,l))}{1 - \alpha(\tau(t,l))}\,
           \big(-\log \hat x_\theta(z_t)_l[x_l]\big)\, dt, \qquad
           \frac{-\partial_t \alpha}{1 - \alpha} = \frac{\partial_t \tau(t, l)}{\tau(t, l)}
           \text{ (log-linear)},

with ``d tau / dt = 1/omega`` inside the ramp and 0 outside (clean and fully noised positions add
nothing). For an exact denoiser the bound equals ``-log p(x)`` whatever the hyperschedule (eps = 0).

Epsilon-hybrid noise (the paper's ε-hybrid: the evolution operator of the absorbing process applied
to a uniform-noised token). A token is [MASK] with probability ``1 - alpha``, else it is a uniform
non-[MASK] token with probability ``alpha eps`` and the clean token with ``alpha (1 - eps)``:

.. math::  q_\tau(\cdot \mid x) = \alpha(\tau) \big[(1 - \varepsilon) e_x + \varepsilon u\big]
           + (1 - \alpha(\tau)) e_m ,

``u`` uniform over the ``N = V - 1`` non-[MASK] ids. Equivalently ``z_0 ~ q_0(. | x) = (1 - eps) e_x
+ eps u`` and then absorbing noise on ``z_0``, which gives a bound written here (the ELBO through the
latent ``z_0``):

.. math::  -\log p(x) \le \mathbb E_{z_0}\Big[\sum_l -\log \hat x_\theta(z_0)_l[x_l]
           + \mathcal L_{\text{diff}}(z_0)\Big] - \sum_l H(q_0(\cdot \mid x_l)),

``L_diff`` the per-position NELBO above with the target ``z_0`` and the model's distribution of it,
``(1 - eps) x_hat + eps u``. The first term is the denoiser at ``tau = 0`` reading the uniform-noised
sequence: it trains the network to find and fix wrong tokens, which the adaptive correction sampler
(:mod:`difflab.text.adaptive_correction`) uses. ``eps = 0`` is pure absorbing noise (both extra terms
vanish for a model that copies visible tokens).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from difflab.core.discrete_losses import masked_diffusion_loss
from difflab.core.processes.discrete import MaskedDiffusion

__all__ = ["SlidingWindowHyperschedule", "EpsilonHybridNoise", "mean_over_tokens"]


class SlidingWindowHyperschedule:
    """The sliding-window hyperschedule ``tau(t, l)`` of the module docstring.

    Args:
        window: ramp width ``w`` in tokens (> 0); ``None``: one shared schedule ``tau = t`` (MDLM).
    """

    def __init__(self, window: float | None = None) -> None:
        if window is not None and not (window > 0 and math.isfinite(window)):
            raise ValueError(f"window must be a positive number of tokens or None (shared schedule), got {window}")
        self.window = None if window is None else float(window)

    def omega(self, length: int) -> float:
        """The ramp's duration in ``t``, ``omega = w / (L - 1 + w)`` (1 for the shared schedule)."""
        if self.window is None or length < 2:
            return 1.0
        return self.window / (length - 1 + self.window)

    def starts(self, length: int, device=None, dtype=torch.float64) -> Tensor:
        """``a_l = (1 - omega)(1 - l / (L - 1))``, shape (L,)."""
        pos = torch.arange(length, device=device, dtype=dtype) / max(length - 1, 1)
        return (1.0 - self.omega(length)) * (1.0 - pos)

    def tau(self, t: Tensor, length: int) -> tuple[Tensor, Tensor]:
        """``(tau(t, l), d tau / dt)`` of times ``t`` (...) for ``length`` positions, both shape ``t.shape + (L,)``."""
        omega = self.omega(length)
        a = self.starts(length, t.device, t.dtype)
        raw = (t[..., None] - a) / omega
        tau = raw.clamp(0.0, 1.0)
        rate = torch.where((raw > 0) & (raw <= 1), torch.full_like(raw, 1.0 / omega), torch.zeros_like(raw))
        return tau, rate

    def grid(self, times: Tensor, length: int) -> Tensor:
        """Per-position grid ``(N + 1, L)`` of a descending time grid ``times`` (N + 1,)."""
        return self.tau(times, length)[0]

    def __repr__(self) -> str:
        return f"SlidingWindowHyperschedule(window={self.window})"


class EpsilonHybridNoise:
    r"""The epsilon-hybrid token noise on top of a masked process (``alpha`` of its schedule).

    Args:
        base: the absorbing process (:class:`~difflab.core.processes.discrete.MaskedDiffusion`).
        epsilon: uniform share of the visible tokens, in [0, 1).
    """

    def __init__(self, base: MaskedDiffusion, epsilon: float = 0.0) -> None:
        if not 0.0 <= epsilon < 1.0:
            raise ValueError(f"epsilon must be in [0, 1), got {epsilon}")
        self.base, self.epsilon = base, float(epsilon)
        self.vocab_size, self.mask_id = base.vocab_size, base.mask_id
        self.n_tokens = self.vocab_size - 1

    def marginal_probs(self, x0: Tensor, tau: Tensor) -> Tensor:
        """``q_tau(z | x0)`` of the module docstring, shape ``x0.shape + (V,)`` (float64)."""
        alpha = self.base.alpha(tau.to(torch.float64)).expand(x0.shape)[..., None]
        u = torch.full((self.vocab_size,), 1.0 / self.n_tokens, dtype=torch.float64, device=x0.device)
        u[self.mask_id] = 0.0
        onehot = torch.nn.functional.one_hot(x0, self.vocab_size).to(torch.float64)
        out = alpha * ((1.0 - self.epsilon) * onehot + self.epsilon * u)
        out[..., self.mask_id] += 1.0 - alpha[..., 0]
        return out

    def shuffle(self, x0: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``z_0 ~ q_0(. | x0)``: each token replaced by a uniform non-[MASK] id with probability eps.

        Draws nothing when ``eps = 0`` (so the random stream equals MDLM's)."""
        if self.epsilon == 0.0:
            return x0
        flip = torch.rand(x0.shape, generator=generator, device=x0.device, dtype=torch.float64) < self.epsilon
        noise = torch.randint(0, self.n_tokens, x0.shape, generator=generator, device=x0.device)
        noise = noise + (noise >= self.mask_id).to(noise.dtype)
        return torch.where(flip, noise, x0)

    def sample(self, x0: Tensor, tau: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``(z_0, z_tau)``: the uniform-noised tokens and their masked version at levels ``tau`` (B, L)."""
        z0 = self.shuffle(x0, generator)
        return z0, self.base.sample_marginal(z0, tau, generator)

    def initial_entropy(self) -> float:
        """``H(q_0(. | x))`` in nats (the same for every ``x``)."""
        e, n = self.epsilon, self.n_tokens
        if e == 0.0:
            return 0.0
        p_x = 1.0 - e + e / n
        return -(p_x * math.log(p_x)) - (n - 1) * (e / n) * math.log(e / n)

    def diffusion_terms(self, logits: Tensor, z0: Tensor, z_t: Tensor, tau: Tensor, rate: Tensor) -> Tensor:
        """Per-position NELBO integrand (B, L) at one ``t``: ``rate / tau * -log p(z_0 | z_t)`` where masked
        and ``rate > 0`` (0 elsewhere).

        With eps = 0 it is core's :func:`~difflab.core.discrete_losses.masked_diffusion_loss` (SUBS)
        times ``d tau / dt``; with eps > 0 the model's ``z_0`` distribution is ``(1 - eps) x_hat + eps u``.
        """
        if self.epsilon == 0.0:
            per = masked_diffusion_loss(logits, z0, z_t, tau, self.base, reduction="none")
            return torch.where(rate > 0, per * rate.to(per.dtype), torch.zeros_like(per))
        lg = logits.to(torch.promote_types(logits.dtype, torch.float32)).clone()
        lg[..., self.mask_id] = -math.inf
        log_hat = torch.log_softmax(lg, -1).gather(-1, z0[..., None])[..., 0]
        log_mix = torch.logaddexp(
            log_hat + math.log1p(-self.epsilon), torch.full_like(log_hat, math.log(self.epsilon / self.n_tokens))
        )
        masked = (z_t == self.mask_id) & (rate > 0)  # no weight (and no 0 * inf) off a position's ramp
        zero = torch.zeros_like(log_hat)
        w = (self.base.loss_weight(tau, z0) * rate).to(log_hat.dtype)
        return torch.where(masked, w, zero) * torch.where(masked, -log_mix, zero)

    def decoder_terms(self, logits0: Tensor, x0: Tensor) -> Tensor:
        """``-log x_hat(z_0)_l[x_l] - H(q_0)`` per position (B, L) from the logits at ``tau = 0``."""
        lg = logits0.to(torch.promote_types(logits0.dtype, torch.float32)).clone()
        lg[..., self.mask_id] = -math.inf
        nll = -torch.log_softmax(lg, -1).gather(-1, x0[..., None])[..., 0]
        return nll - self.initial_entropy()


def mean_over_tokens(per_token: Tensor, attention_mask: Tensor | None) -> Tensor:
    """Mean of per-token terms over the attention-mask tokens (MDLM's ``tokenmean``)."""
    if attention_mask is None:
        return per_token.mean()
    am = attention_mask.to(per_token.dtype).expand(per_token.shape)
    return (per_token * am).sum() / am.sum().clamp_min(1.0)
