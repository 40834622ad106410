r"""Discrete (token) corruption processes: absorbing [MASK], uniform, and their hybrid (GIDD).

Tokens take values in ``{0, ..., V - 1}``. Every process here corrupts each token independently, so
its marginal is a categorical distribution per token,

.. math::  q_t(\cdot \mid x) = \alpha_t\, e_x + \beta_t \pi_t ,

where ``e_x`` is the one-hot vector of the clean token, ``alpha_t`` the probability of keeping it
and ``beta_t pi_t`` (a vector summing to ``1 - alpha_t``) where the corrupted mass goes:

==========================  ==============================  ======================================
process                     ``alpha_t``                     ``beta_t pi_t``
==========================  ==============================  ======================================
:class:`MaskedDiffusion`    schedule (MDLM)                 ``(1 - alpha_t) e_mask``
:class:`UniformDiffusion`   schedule (D3PM uniform)         ``(1 - alpha_t) u``, u uniform
:class:`GIDD`               ``(1 - t) / C_t``               ``(t e_mask + c_t u) / C_t``
==========================  ==============================  ======================================

Time: ``t`` in [0, 1], ``t = 0`` clean data, ``t = 1`` fully corrupted (all [MASK] for the masked
and hybrid processes, up to ``eps`` for the ``log_linear`` and ``cosine`` schedules). DDPD's planner
uses the opposite direction (``t = 1`` clean); convert with ``t = 1 - t_ddpd``.

Per-element time: ``t`` may be a float, a tensor of shape ``(B,)`` or any shape broadcasting against
the leading dimensions of the token tensor ``x0`` of shape ``(B, L)`` (or ``(B, ...)``), for example
``(B, L)`` for one noise level per token. Probability tensors have shape ``x0.shape + (V,)``.

Forward transitions. For ``s < t`` every process here is Markov with
``q_{t|s}(\cdot | z_s) = alpha_{t|s} e_{z_s} + beta_{t|s} pi_{t|s}``, ``alpha_{t|s} = alpha_t / alpha_s``
and ``beta_{t|s} pi_{t|s} = beta_t pi_t - alpha_{t|s} beta_s pi_s`` (von Rütte et al. 2025). In
continuous time a token leaves its state at rate ``-alpha_t'/alpha_t`` and jumps to ``y`` at rate
``rho_t(y) = (beta_t pi_t)'_y - (alpha_t'/alpha_t) (beta_t pi_t)_y``.

Model posteriors. Given a network's clean-token distribution ``x_hat`` (shape ``(..., V)``),
:meth:`posterior_probs` returns ``p(z_s | z_t) ∝ q_{t|s}(z_t | z_s) q_s(z_s | x_hat)`` with
``q_s(. | x_hat) = alpha_s x_hat + beta_s pi_s`` (D3PM's x0-parameterisation, GIDD's sampler). For a
one-hot ``x_hat`` this is Bayes' rule ``q(z_s | z_t, x0)``; for the masked process it equals the
mixture ``sum_x0 x_hat(x0) q(z_s | z_t, x0)`` because ``q_t([MASK] | x0)`` does not depend on ``x0``.

ELBO weights. With the rates above, the continuous-time negative ELBO of one token is

.. math::  \int_0^1 \mathbb E_{z_t \sim q_t(\cdot|x)}\, w_t(z_t, x)\,
           \big[\mathrm{KL}(q_t(\cdot|x) \,\|\, q_t(\cdot|\hat x)) + r - \log r - 1\big]\, dt,
           \qquad w_t(z, x) = \frac{\rho_t(z)}{q_t(z \mid x)},\;
           r = \frac{q_t(z|x)}{q_t(z|\hat x)}

(GIDD's ELBO; for the masked process it reduces to MDLM's ``sigma'/(e^sigma - 1)`` weighted
cross-entropy). :meth:`elbo_weights` returns ``w_t(z_t, x)``; the loss lives in
:mod:`difflab.core.discrete_losses`.

References: Austin et al. 2021 (D3PM), Sahoo et al. 2024 (MDLM, arXiv:2406.07524), He et al. 2023
(DiffusionBERT, spindle schedule), von Rütte et al. 2025 (GIDD, arXiv:2503.04482).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from difflab.core.broadcast import expand_like

MaskSchedule = Literal["log_linear", "linear", "cosine"]

__all__ = ["MaskSchedule", "MaskedDiffusion", "SpindleMaskedDiffusion", "UniformDiffusion", "GIDD", "DiscreteProcess"]


# ---------------------------------------------------------------------------------------- helpers
def _as_time(t: float | Tensor, like: Tensor | None = None) -> Tensor:
    """``t`` as a floating tensor on ``like``'s device (a float becomes a 0-d float64 tensor)."""
    device = like.device if like is not None else (t.device if isinstance(t, Tensor) else None)
    if isinstance(t, Tensor):
        if not t.is_floating_point():
            t = t.to(torch.get_default_dtype())
        return t.to(device=device)
    return torch.tensor(float(t), dtype=torch.float64, device=device)


def _per_token(coef: Tensor, x0: Tensor) -> Tensor:
    """Broadcast a coefficient of ``t``'s shape to ``x0``'s shape (leading-dimension broadcasting)."""
    return expand_like(coef, x0).expand(x0.shape)


def _prob_dtype(*tensors: Tensor) -> torch.dtype:
    floats = [t.dtype for t in tensors if t.is_floating_point()]
    if not floats:
        return torch.get_default_dtype()
    out = floats[0]
    for d in floats[1:]:
        out = torch.promote_types(out, d)
    return out


def _check_tokens(x: Tensor, vocab_size: int, name: str) -> None:
    if x.is_floating_point() or x.is_complex():
        raise ValueError(f"{name} must be an integer token tensor, got dtype {x.dtype}")
    if x.numel() and (int(x.min()) < 0 or int(x.max()) >= vocab_size):
        raise ValueError(
            f"{name} has token ids in [{int(x.min())}, {int(x.max())}], outside the vocabulary [0, {vocab_size})"
        )


def _schedule(schedule: MaskSchedule, t: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """``(alpha_t, alpha_t')`` of the masking schedules, elementwise in ``t``."""
    if schedule == "log_linear":
        return 1.0 - (1.0 - eps) * t, torch.full_like(t, -(1.0 - eps))
    if schedule == "linear":
        return 1.0 - t, torch.full_like(t, -1.0)
    if schedule == "cosine":
        half = 0.5 * math.pi * t
        return eps + (1.0 - eps) * torch.cos(half), -(1.0 - eps) * 0.5 * math.pi * torch.sin(half)
    raise ValueError(f"schedule must be 'log_linear', 'linear' or 'cosine', got {schedule!r}")


def _uniform_ids(shape: torch.Size, n: int, skip: int | None, generator, device) -> Tensor:
    """Uniform ids over ``{0..n}`` minus ``skip`` (``n`` choices after skipping)."""
    r = torch.randint(0, n, shape, generator=generator, device=device)
    if skip is not None:
        r = r + (r >= skip).to(r.dtype)
    return r


def _rand(shape: torch.Size, generator, device) -> Tensor:
    return torch.rand(shape, generator=generator, device=device, dtype=torch.float64)


def _posterior_from_mixture(x_t: Tensor, q_s: Tensor, a_ts: Tensor, bp_ts_at_zt: Tensor, vocab_size: int) -> Tensor:
    r"""``∝ q_{t|s}(z_t | v) q_s(v)`` over ``v`` for transitions ``a_ts e_v + beta_{t|s} pi_{t|s}``.

    ``q_{t|s}(z_t | v) = a_ts [v = z_t] + (beta_{t|s} pi_{t|s})(z_t)`` with the second term evaluated
    at the observed ``z_t`` (``bp_ts_at_zt``, shape of ``x_t``). Shapes: ``q_s`` (..., V), others (...).
    """
    onehot = torch.nn.functional.one_hot(x_t, vocab_size).to(q_s.dtype)
    lik = a_ts[..., None] * onehot + bp_ts_at_zt[..., None]
    unnorm = lik * q_s
    z = unnorm.sum(-1, keepdim=True)
    # z > 0 whenever z_t is reachable; fall back to keeping z_t otherwise.
    return torch.where(z > 0, unnorm / z.clamp_min(torch.finfo(q_s.dtype).tiny), onehot)


# ---------------------------------------------------------------------------------------- masked
def _linspace_grid(t_start: float, t_end: float, steps: int) -> Tensor:
    """``steps + 1`` descending times from ``t_start`` to ``t_end``, float64."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return torch.linspace(t_start, t_end, steps + 1, dtype=torch.float64)


class MaskedDiffusion:
    r"""Absorbing-state (masked) diffusion, MDLM's continuous-time formulation.

    Each token independently becomes [MASK] (id ``mask_id``) with probability ``1 - alpha_t``,
    ``alpha_t = exp(-sigma(t))``:

    * ``log_linear`` (MDLM default): ``sigma(t) = -log(1 - (1 - eps) t)``, so ``alpha_t = 1 - (1-eps) t``
      and ``alpha_1 = eps``;
    * ``linear``: ``alpha_t = 1 - t`` (the ``eps = 0`` limit; what GIDD with ``p_u = 0`` reduces to);
    * ``cosine`` (MDLM's): ``alpha_t = eps + (1 - eps) cos(pi t / 2)``.

    The NELBO weight :meth:`loss_weight` is ``sigma'(t) / (exp(sigma(t)) - 1) = -alpha_t' / (1 - alpha_t)``.
    For ``log_linear`` it equals ``1 / t`` *exactly for every eps* (``sigma' = (1-eps)/(1-(1-eps)t)`` and
    ``e^sigma - 1 = (1-eps)t/(1-(1-eps)t)``); likewise for ``linear``. For ``cosine`` it is
    ``(pi/2) sin(pi t/2) / (1 - cos(pi t/2))``.

    Args:
        vocab_size: V, including the mask token.
        mask_id: id of [MASK] in ``[0, V)``.
        schedule: ``log_linear``, ``linear`` or ``cosine``.
        eps: ``alpha_1`` of the ``log_linear`` and ``cosine`` schedules (MDLM: 1e-3).
    """

    t_min: float = 0.0
    t_max: float = 1.0
    absorbing: bool = True  # [MASK] is the prior state samplers start from
    sample_t_end: float = 1e-5  # the last time of MDLM's sampling grid

    def __init__(self, vocab_size: int, mask_id: int, schedule: MaskSchedule = "log_linear", eps: float = 1e-3) -> None:
        if vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2 (tokens plus [MASK]), got {vocab_size}")
        if not 0 <= mask_id < vocab_size:
            raise ValueError(f"mask_id must be in [0, {vocab_size}), got {mask_id}")
        if schedule not in ("log_linear", "linear", "cosine"):
            raise ValueError(f"schedule must be 'log_linear', 'linear' or 'cosine', got {schedule!r}")
        if not 0.0 <= eps < 1.0:
            raise ValueError(f"eps must be in [0, 1), got {eps}")
        self.vocab_size = int(vocab_size)
        self.mask_id = int(mask_id)
        self.schedule = schedule
        self.eps = float(eps)

    def default_grid(self, sampler: str, steps: int) -> Tensor:
        """MDLM's sampling grid ``linspace(1, 1e-5, steps + 1)`` (float64), for any discrete ``sampler``."""
        return _linspace_grid(self.t_max, self.sample_t_end, steps)

    # ------------------------------------------------------------------ schedule
    def alpha(self, t: Tensor) -> Tensor:
        """Keep probability ``alpha_t = exp(-sigma(t))``, shape of ``t``."""
        return _schedule(self.schedule, t, self.eps)[0]

    def dalpha(self, t: Tensor) -> Tensor:
        """``d alpha_t / dt``, shape of ``t``."""
        return _schedule(self.schedule, t, self.eps)[1]

    def sigma(self, t: Tensor) -> Tensor:
        """Total noise ``sigma(t) = -log alpha_t``."""
        return -torch.log(self.alpha(t))

    def dsigma(self, t: Tensor) -> Tensor:
        """``sigma'(t) = -alpha_t' / alpha_t``."""
        return -self.dalpha(t) / self.alpha(t)

    def loss_weight(self, t: Tensor, x0: Tensor | None = None) -> Tensor:
        """NELBO weight ``sigma'(t)/(exp(sigma(t)) - 1) = -alpha_t'/(1 - alpha_t)`` (``1/t`` for log-linear).

        Shape of ``t``, or of ``x0`` when it is given (per-token; used by :class:`SpindleMaskedDiffusion`).
        """
        t = _as_time(t, x0)
        if self.schedule in ("log_linear", "linear"):
            w = 1.0 / t
        else:
            a, da = self.alpha(t), self.dalpha(t)
            w = -da / (1.0 - a)
        return w if x0 is None else _per_token(w, x0)

    # ------------------------------------------------------------------ per-token keep probabilities
    def keep_prob(self, t: float | Tensor, x0: Tensor) -> Tensor:
        """Probability that each clean token of ``x0`` is still unmasked at ``t``; shape ``x0.shape``.

        The hook per-token schedules override (DiffusionBERT's spindle): here ``alpha_t`` broadcast.
        """
        t = _as_time(t, x0)
        return _per_token(self.alpha(t), x0)

    def keep_prob_table(self, t: float | Tensor, x_like: Tensor) -> Tensor:
        """Keep probability of every candidate clean token, broadcastable to ``x_like.shape + (V,)``.

        Here ``alpha_t`` of shape ``(..., 1)``; per-token schedules return ``(..., V)``.
        """
        t = _as_time(t, x_like)
        return _per_token(self.alpha(t), x_like)[..., None]

    # ------------------------------------------------------------------ marginals
    def probs_at(self, x0_probs: Tensor, t: float | Tensor) -> Tensor:
        r"""``q_t(\cdot | \hat x) = sum_x \hat x(x) q_t(\cdot | x)`` for a distribution ``x0_probs`` (..., V).

        Mass that ``x0_probs`` already puts on [MASK] stays there.
        """
        t = _as_time(t, x0_probs)
        keep = self.keep_prob_table(t, x0_probs[..., 0]).to(_prob_dtype(x0_probs, t))
        p = x0_probs.to(keep.dtype)
        not_mask = torch.ones(self.vocab_size, dtype=p.dtype, device=p.device)
        not_mask[self.mask_id] = 0.0
        real = p * not_mask
        out = keep * real
        out[..., self.mask_id] = p[..., self.mask_id] + ((1.0 - keep) * real).sum(-1)
        return out

    def marginal_probs(self, x0: Tensor, t: float | Tensor) -> Tensor:
        """``q_t(x_t | x0)``: probability ``keep`` on ``x0``, ``1 - keep`` on [MASK]; shape ``x0.shape + (V,)``."""
        _check_tokens(x0, self.vocab_size, "x0")
        t = _as_time(t, x0)
        keep = self.keep_prob(t, x0).to(_prob_dtype(t))
        out = torch.nn.functional.one_hot(x0, self.vocab_size).to(keep.dtype) * keep[..., None]
        out[..., self.mask_id] += 1.0 - keep
        return out

    def sample_marginal(self, x0: Tensor, t: float | Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``x_t ~ q_t(. | x0)``: each token becomes [MASK] with probability ``1 - keep``."""
        _check_tokens(x0, self.vocab_size, "x0")
        t = _as_time(t, x0)
        keep = self.keep_prob(t, x0).to(torch.float64)
        u = _rand(x0.shape, generator, x0.device)
        return torch.where(u < keep, x0, torch.full_like(x0, self.mask_id))

    def prior_sample(
        self, shape: tuple[int, ...] | torch.Size, generator: torch.Generator | None = None, device=None
    ) -> Tensor:
        """The all-[MASK] sequence of ``shape`` (the ``t = 1`` state samplers start from)."""
        return torch.full(tuple(shape), self.mask_id, dtype=torch.long, device=device)

    # ------------------------------------------------------------------ reverse step
    def posterior_probs(self, x_t: Tensor, x0_probs: Tensor, s: float | Tensor, t: float | Tensor) -> Tensor:
        r"""Ancestral posterior ``p(x_s | x_t)`` for ``s < t`` with the model's ``x0_probs`` (..., V).

        Masked positions: ``∝ x0_probs(v) (alpha_s - alpha_t)`` for real tokens ``v`` and ``1 - alpha_s``
        for [MASK], i.e. ``x0_probs (alpha_s - alpha_t)/(1 - alpha_t) + e_mask (1 - alpha_s)/(1 - alpha_t)``
        (MDLM Eq. 7; the [MASK] entry of ``x0_probs`` is ignored and the rest renormalised, as with
        SUBS). Unmasked positions are copied (one-hot on ``x_t``). Returns probabilities ``x_t.shape + (V,)``.
        """
        _check_tokens(x_t, self.vocab_size, "x_t")
        s, t = _as_time(s, x_t), _as_time(t, x_t)
        keep_s = self.keep_prob_table(s, x_t)
        keep_t = self.keep_prob_table(t, x_t)
        return self._masked_posterior(x_t, x0_probs, keep_s, keep_t)

    def _masked_posterior(self, x_t: Tensor, x0_probs: Tensor, keep_s: Tensor, keep_t: Tensor) -> Tensor:
        dtype = _prob_dtype(x0_probs, keep_s, keep_t)
        tiny = torch.finfo(dtype).tiny
        p = x0_probs.to(dtype)
        real = torch.ones(self.vocab_size, dtype=dtype, device=p.device)
        real[self.mask_id] = 0.0
        p = p * real
        p = p / p.sum(-1, keepdim=True).clamp_min(tiny)
        keep_s, keep_t = keep_s.to(dtype), keep_t.to(dtype)
        denom = (1.0 - keep_t).clamp_min(tiny)
        unmask = (keep_s - keep_t).clamp_min(0.0) / denom
        stay = (1.0 - keep_s) / denom
        post = p * unmask
        post[..., self.mask_id] = (p * stay).sum(-1)
        z = post.sum(-1, keepdim=True)
        onehot = torch.nn.functional.one_hot(x_t, self.vocab_size).to(dtype)
        # Unmasked positions are copied; z = 0 only when x0_probs has no mass on real tokens (stay masked).
        use_post = (x_t == self.mask_id)[..., None] & (z > 0)
        return torch.where(use_post, post / z.clamp_min(tiny), onehot)

    # ------------------------------------------------------------------ ELBO
    def elbo_weights(self, x_t: Tensor, x0: Tensor, t: float | Tensor) -> Tensor:
        r"""GIDD-form ELBO weight ``w_t(z_t, x) = rho_t(z_t)/q_t(z_t|x)``.

        It is ``-alpha'/(alpha (1-alpha))`` on [MASK] and 0 elsewhere.

        With it the GIDD bracket ``KL + r - log r - 1`` of a masked token is ``-alpha_t log x_hat(x)``,
        which gives back MDLM's ``-alpha'/(1 - alpha) (-log x_hat(x))``. Shape ``x_t.shape``.
        """
        t = _as_time(t, x_t)
        a, da = _per_token(self.alpha(t), x_t), _per_token(self.dalpha(t), x_t)
        w = -da / (a * (1.0 - a))
        return torch.where(x_t == self.mask_id, w, torch.zeros_like(w))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(vocab_size={self.vocab_size}, mask_id={self.mask_id}, "
            f"schedule={self.schedule!r}, eps={self.eps})"
        )


class SpindleMaskedDiffusion(MaskedDiffusion):
    r"""DiffusionBERT's spindle schedule: informative (rare) tokens are masked earlier, frequent ones later.

    Per-token keep probability (He et al. 2023, Eq. 9, with continuous ``t`` for ``t/T``):

    .. math::  \alpha_t^i = \mathrm{clip}\big(\alpha_t + \lambda \sin(\pi t)\,(w_{x_i} - \bar w),\; 0,\; 0.999\big),
               \qquad w_v = \frac{\log(f_v + 1)}{\max_u \log(f_u + 1)},

    with ``f_v`` the corpus frequency of token ``v``, ``alpha_t`` the base schedule and ``\bar w`` the
    mean of ``w`` over the sequence's tokens (DiffusionBERT centres per sequence, optionally over the
    ``attention_mask`` positions). The upper clip at 0.999 applies at every ``t``, so even ``t = 0``
    masks a token with probability 1e-3 (as DiffusionBERT's discrete chain after its first step).

    Reverse steps do not know the clean sequence, so :meth:`posterior_probs` and :meth:`probs_at`
    take the centre as an argument and default to its expectation under the unigram distribution,
    ``E_f[w] = sum_v f_v w_v / sum_v f_v``. :meth:`loss_weight` with ``x0`` gives the per-token
    ``-d alpha_t^i/dt / (1 - alpha_t^i)``; the weighted cross-entropy with these weights is
    DiffusionBERT's surrogate, not an exact ELBO (the exact continuous-time bound has an extra term
    when ``alpha`` depends on the token), so :meth:`elbo_weights` is not defined here.

    Args:
        token_frequencies: (V,) non-negative counts (the [MASK] count is normally 0).
        lam: spindle amplitude ``lambda`` (DiffusionBERT: 0.3).
        mask_id, schedule, eps: as :class:`MaskedDiffusion`; ``vocab_size = len(token_frequencies)``.
        max_keep: the upper clip (0.999).
    """

    def __init__(
        self,
        token_frequencies: Tensor,
        lam: float = 0.3,
        *,
        mask_id: int,
        schedule: MaskSchedule = "log_linear",
        eps: float = 1e-3,
        max_keep: float = 0.999,
    ) -> None:
        freq = torch.as_tensor(token_frequencies, dtype=torch.float64).flatten()
        if freq.numel() < 2:
            raise ValueError(f"token_frequencies needs one entry per vocabulary token, got {freq.numel()}")
        if bool((freq < 0).any()) or not bool(torch.isfinite(freq).all()):
            raise ValueError("token_frequencies must be finite and non-negative")
        if float(freq.max()) <= 0:
            raise ValueError("token_frequencies are all zero")
        if not 0.0 < max_keep <= 1.0:
            raise ValueError(f"max_keep must be in (0, 1], got {max_keep}")
        super().__init__(freq.numel(), mask_id, schedule, eps)
        self.lam = float(lam)
        self.max_keep = float(max_keep)
        logf = torch.log1p(freq)
        self.word_weight = logf / logf.max()  # (V,) in [0, 1]
        self.unigram_centre = float((freq * self.word_weight).sum() / freq.sum())

    def _bump(self, t: Tensor) -> Tensor:
        return self.lam * torch.sin(math.pi * t)

    def _centre(self, x0: Tensor, attention_mask: Tensor | None) -> Tensor:
        w = self.word_weight.to(x0.device)[x0]
        if x0.ndim == 1:
            return w.mean().reshape(())
        dims = tuple(range(1, x0.ndim))
        if attention_mask is None:
            return w.mean(dim=dims)
        am = attention_mask.to(w.dtype).expand(x0.shape)
        return (w * am).sum(dims) / am.sum(dims).clamp_min(1.0)

    def keep_prob(self, t: float | Tensor, x0: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Per-token keep probability ``alpha_t^i`` of ``x0``'s tokens, centred per sequence; shape ``x0.shape``."""
        _check_tokens(x0, self.vocab_size, "x0")
        t = _as_time(t, x0)
        centre = _per_token(self._centre(x0, attention_mask), x0)
        w = self.word_weight.to(x0.device)[x0]
        a = _per_token(self.alpha(t), x0) + _per_token(self._bump(t), x0) * (w - centre)
        return a.clamp(0.0, self.max_keep)

    def keep_prob_table(self, t: float | Tensor, x_like: Tensor, centre: float | Tensor | None = None) -> Tensor:
        """Keep probability of every candidate token ``(..., V)`` with the given centre (default: unigram mean)."""
        t = _as_time(t, x_like)
        c = torch.as_tensor(
            self.unigram_centre if centre is None else centre, dtype=torch.float64, device=x_like.device
        )
        c = _per_token(c, x_like)[..., None] if c.ndim else c
        w = self.word_weight.to(x_like.device)
        a = _per_token(self.alpha(t), x_like)[..., None] + _per_token(self._bump(t), x_like)[..., None] * (w - c)
        return a.clamp(0.0, self.max_keep)

    def marginal_probs(self, x0: Tensor, t: float | Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """``q_t(x_t | x0)`` with the sequence-centred per-token keep probability; shape ``x0.shape + (V,)``."""
        t = _as_time(t, x0)
        keep = self.keep_prob(t, x0, attention_mask)
        out = torch.nn.functional.one_hot(x0, self.vocab_size).to(keep.dtype) * keep[..., None]
        out[..., self.mask_id] += 1.0 - keep
        return out

    def sample_marginal(
        self,
        x0: Tensor,
        t: float | Tensor,
        generator: torch.Generator | None = None,
        attention_mask: Tensor | None = None,
    ) -> Tensor:
        """Draw ``x_t``: token ``i`` becomes [MASK] with probability ``1 - alpha_t^i``."""
        t = _as_time(t, x0)
        keep = self.keep_prob(t, x0, attention_mask)
        u = _rand(x0.shape, generator, x0.device)
        return torch.where(u < keep, x0, torch.full_like(x0, self.mask_id))

    def probs_at(self, x0_probs: Tensor, t: float | Tensor, centre: float | Tensor | None = None) -> Tensor:
        t = _as_time(t, x0_probs)
        keep = self.keep_prob_table(t, x0_probs[..., 0], centre)
        p = x0_probs.to(_prob_dtype(x0_probs, keep))
        real = p.clone()
        real[..., self.mask_id] = 0.0
        out = keep * real
        out[..., self.mask_id] = p[..., self.mask_id] + ((1.0 - keep) * real).sum(-1)
        return out

    def posterior_probs(
        self,
        x_t: Tensor,
        x0_probs: Tensor,
        s: float | Tensor,
        t: float | Tensor,
        centre: float | Tensor | None = None,
    ) -> Tensor:
        r"""Mixture of exact per-token posteriors ``sum_v x0_probs(v) q(x_s | x_t, x0 = v)``.

        A masked token whose clean value is ``v`` unmasks with probability
        ``(alpha_s^v - alpha_t^v)^+/(1 - alpha_t^v)`` (negative differences, possible where the spindle
        makes ``alpha^v`` non-monotone, are clipped at 0). ``centre``: the sequence centre ``\bar w``
        (a float, or a tensor broadcasting against ``x_t``'s leading dims); default the unigram mean.
        """
        _check_tokens(x_t, self.vocab_size, "x_t")
        s, t = _as_time(s, x_t), _as_time(t, x_t)
        keep_s = self.keep_prob_table(s, x_t, centre)
        keep_t = self.keep_prob_table(t, x_t, centre)
        return self._masked_posterior(x_t, x0_probs, keep_s, keep_t)

    def loss_weight(self, t: Tensor, x0: Tensor | None = None, attention_mask: Tensor | None = None) -> Tensor:
        """Per-token ``-d alpha_t^i/dt / (1 - alpha_t^i)`` (0 where the clip is active); needs ``x0``."""
        if x0 is None:
            raise ValueError("SpindleMaskedDiffusion.loss_weight needs x0: the weight depends on the token")
        t = _as_time(t, x0)
        centre = _per_token(self._centre(x0, attention_mask), x0)
        w = self.word_weight.to(x0.device)[x0]
        raw = _per_token(self.alpha(t), x0) + _per_token(self._bump(t), x0) * (w - centre)
        slope = _per_token(self.dalpha(t), x0) + _per_token(self.lam * math.pi * torch.cos(math.pi * t), x0) * (
            w - centre
        )
        inside = (raw > 0.0) & (raw < self.max_keep)
        a = raw.clamp(0.0, self.max_keep)
        weight = (-slope).clamp_min(0.0) / (1.0 - a).clamp_min(torch.finfo(a.dtype).tiny)
        return torch.where(inside, weight, torch.zeros_like(weight))

    def elbo_weights(self, x_t: Tensor, x0: Tensor, t: float | Tensor) -> Tensor:
        raise NotImplementedError(
            "SpindleMaskedDiffusion has token-dependent rates; use masked_diffusion_loss (DiffusionBERT's surrogate)"
        )


# ---------------------------------------------------------------------------------------- uniform
class UniformDiffusion:
    r"""Uniform-transition diffusion (D3PM uniform; the corruption of DDPD's planner).

    ``q_t(. | x0) = alpha_t e_{x0} + (1 - alpha_t) u`` with ``u`` uniform over the ``N`` support tokens
    (all ``V``, or all but ``mask_id`` when it is given). ``alpha_t`` follows the same schedules as
    :class:`MaskedDiffusion`. One step from ``s`` to ``t`` keeps the token with ``alpha_t/alpha_s``
    and otherwise redraws it uniformly; Bayes' rule gives the closed-form posterior

    .. math::  q(x_s = v \mid x_t, x_0) \propto \big[\alpha_{t|s}[v = x_t] + (1-\alpha_{t|s}) u_{x_t}\big]
               \big[\alpha_s [v = x_0] + (1 - \alpha_s) u_v\big].

    DDPD (Liu et al. 2025) writes time the other way round (``t = 1`` clean, a position noised with
    probability ``1 - t``): use ``t = 1 - t_ddpd`` with the ``linear`` schedule. Its planner target is
    "was this position resampled", coincidental matches included: :meth:`sample_marginal` returns it
    with ``return_flags=True``.
    """

    t_min: float = 0.0
    t_max: float = 1.0
    absorbing: bool = False  # mask_id, if given, is only excluded from the noise
    sample_eps: float = 1e-4  # the sampling grid runs from 1 - sample_eps to sample_eps (as GIDD's)

    def default_grid(self, sampler: str, steps: int) -> Tensor:
        """``linspace(1 - sample_eps, sample_eps, steps + 1)`` (float64), for any discrete ``sampler``."""
        return _linspace_grid(1 - self.sample_eps, self.sample_eps, steps)

    def __init__(
        self,
        vocab_size: int,
        schedule: MaskSchedule = "log_linear",
        eps: float = 1e-3,
        mask_id: int | None = None,
    ) -> None:
        if vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2, got {vocab_size}")
        if mask_id is not None and not 0 <= mask_id < vocab_size:
            raise ValueError(f"mask_id must be in [0, {vocab_size}) or None, got {mask_id}")
        if schedule not in ("log_linear", "linear", "cosine"):
            raise ValueError(f"schedule must be 'log_linear', 'linear' or 'cosine', got {schedule!r}")
        if not 0.0 <= eps < 1.0:
            raise ValueError(f"eps must be in [0, 1), got {eps}")
        self.vocab_size = int(vocab_size)
        self.mask_id = None if mask_id is None else int(mask_id)
        self.n_support = self.vocab_size - (0 if mask_id is None else 1)
        self.schedule = schedule
        self.eps = float(eps)

    def alpha(self, t: Tensor) -> Tensor:
        return _schedule(self.schedule, t, self.eps)[0]

    def dalpha(self, t: Tensor) -> Tensor:
        return _schedule(self.schedule, t, self.eps)[1]

    def uniform(self, dtype: torch.dtype = torch.float64, device=None) -> Tensor:
        """The (V,) uniform vector ``u`` (0 on ``mask_id``)."""
        u = torch.full((self.vocab_size,), 1.0 / self.n_support, dtype=dtype, device=device)
        if self.mask_id is not None:
            u[self.mask_id] = 0.0
        return u

    def probs_at(self, x0_probs: Tensor, t: float | Tensor) -> Tensor:
        t = _as_time(t, x0_probs)
        dtype = _prob_dtype(x0_probs, t)
        a = _per_token(self.alpha(t), x0_probs[..., 0]).to(dtype)[..., None]
        return a * x0_probs.to(dtype) + (1.0 - a) * self.uniform(dtype, x0_probs.device)

    def marginal_probs(self, x0: Tensor, t: float | Tensor) -> Tensor:
        _check_tokens(x0, self.vocab_size, "x0")
        t = _as_time(t, x0)
        return self.probs_at(torch.nn.functional.one_hot(x0, self.vocab_size).to(_prob_dtype(t)), t)

    def sample_marginal(
        self,
        x0: Tensor,
        t: float | Tensor,
        generator: torch.Generator | None = None,
        return_flags: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Draw ``x_t``; with ``return_flags`` also the bool tensor of positions that were resampled."""
        _check_tokens(x0, self.vocab_size, "x0")
        t = _as_time(t, x0)
        keep = _per_token(self.alpha(t), x0).to(torch.float64)
        u = _rand(x0.shape, generator, x0.device)
        noise = _uniform_ids(x0.shape, self.n_support, self.mask_id, generator, x0.device)
        flags = u >= keep
        x_t = torch.where(flags, noise, x0)
        return (x_t, flags) if return_flags else x_t

    def prior_sample(
        self, shape: tuple[int, ...] | torch.Size, generator: torch.Generator | None = None, device=None
    ) -> Tensor:
        """Uniform tokens over the support (the ``alpha = 0`` limit)."""
        return _uniform_ids(torch.Size(shape), self.n_support, self.mask_id, generator, device)

    def posterior_probs(self, x_t: Tensor, x0_probs: Tensor, s: float | Tensor, t: float | Tensor) -> Tensor:
        """``∝ q(x_t | x_s) q_s(x_s | x0_probs)``: Bayes' rule for one-hot ``x0_probs``; shape ``x_t.shape + (V,)``."""
        _check_tokens(x_t, self.vocab_size, "x_t")
        s, t = _as_time(s, x_t), _as_time(t, x_t)
        dtype = _prob_dtype(x0_probs, s, t)
        a_s = _per_token(self.alpha(s), x_t).to(dtype)
        a_t = _per_token(self.alpha(t), x_t).to(dtype)
        a_ts = a_t / a_s
        u = self.uniform(dtype, x_t.device)
        q_s = self.probs_at(x0_probs.to(dtype), s)
        return _posterior_from_mixture(x_t, q_s, a_ts, (1.0 - a_ts) * u[x_t], self.vocab_size)

    def elbo_weights(self, x_t: Tensor, x0: Tensor, t: float | Tensor) -> Tensor:
        r"""``w_t(z, x) = rho_t(z)/q_t(z|x)`` with ``rho_t(z) = -(alpha'/alpha) u_z``; shape ``x_t.shape``."""
        t = _as_time(t, x_t)
        a, da = _per_token(self.alpha(t), x_t), _per_token(self.dalpha(t), x_t)
        uz = self.uniform(a.dtype, x_t.device)[x_t]
        q = a * (x_t == x0).to(a.dtype) + (1.0 - a) * uz
        return (-da / a) * uz / q.clamp_min(torch.finfo(a.dtype).tiny)

    def __repr__(self) -> str:
        return (
            f"UniformDiffusion(vocab_size={self.vocab_size}, schedule={self.schedule!r}, eps={self.eps}, "
            f"mask_id={self.mask_id})"
        )


# ---------------------------------------------------------------------------------------- GIDD
class GIDD:
    r"""Generalized interpolating discrete diffusion with the hybrid mask + uniform mixing (von Rütte et al. 2025).

    .. math::

        c_t = B\, t^{\gamma/2} (1-t)^{\gamma/2}, \quad B = \frac{2^\gamma p_u}{1 - p_u}, \quad C_t = 1 + c_t,

        \alpha_t = \frac{1 - t}{C_t}, \qquad \beta_t \pi_t = \frac{t\, e_{mask} + c_t\, u}{C_t},

    with ``u`` uniform over the ``N = V - 1`` non-mask tokens. At ``t = 1/2`` the uniform share
    ``c_t/C_t`` equals ``p_u``; ``p_u = 0`` gives ``B = 0`` exactly and recovers
    :class:`MaskedDiffusion` with the ``linear`` schedule. (For ``p_u > 0``, ``log B`` is clipped at
    -20 as in the reference code.) ``0 < gamma <= 2`` keeps the forward process a valid Markov chain
    (``beta_{t|s} pi_{t|s} >= 0``).

    ELBO weights (``c_t' = (gamma/2)(1 - 2t)/(t(1-t)) c_t``):

    * ``z_t = x``: ``(c_t + (1-t) c_t')/N / ((1-t)(1 - t + c_t/N))``;
    * ``z_t = [MASK]``: ``1/(t(1-t))``;
    * ``z_t`` another token: ``(c_t + (1-t) c_t')/((1-t) c_t) = (1 + (gamma/2)(1-2t)/t)/(1-t)``.

    Args:
        vocab_size: V including [MASK].
        mask_id: id of [MASK].
        p_u: uniform share at ``t = 1/2``, in [0, 1).
        gamma: shape exponent, in (0, 2].
    """

    t_min: float = 0.0
    t_max: float = 1.0
    absorbing: bool = True
    sample_eps: float = 1e-4  # GIDD's eps: its sampling grid runs from 1 - eps to eps

    def default_grid(self, sampler: str, steps: int) -> Tensor:
        """GIDD's sampling grid ``linspace(1 - eps, eps, steps + 1)`` (float64), for any discrete ``sampler``."""
        return _linspace_grid(1 - self.sample_eps, self.sample_eps, steps)

    def __init__(self, vocab_size: int, mask_id: int, p_u: float = 0.0, gamma: float = 1.0) -> None:
        if vocab_size < 3:
            raise ValueError(f"vocab_size must be >= 3 (two tokens plus [MASK]), got {vocab_size}")
        if not 0 <= mask_id < vocab_size:
            raise ValueError(f"mask_id must be in [0, {vocab_size}), got {mask_id}")
        if not 0.0 <= p_u < 1.0:
            raise ValueError(f"p_u must be in [0, 1), got {p_u}")
        if not 0.0 < gamma <= 2.0:
            raise ValueError(f"gamma must be in (0, 2], got {gamma}")
        self.vocab_size = int(vocab_size)
        self.mask_id = int(mask_id)
        self.n_tokens = self.vocab_size - 1
        self.p_u = float(p_u)
        self.gamma = float(gamma)
        if p_u == 0.0:
            self.B = 0.0
        else:
            self.B = math.exp(max(math.log(2.0**gamma * p_u / (1.0 - p_u)), -20.0))

    # ------------------------------------------------------------------ schedule
    def c(self, t: Tensor) -> Tensor:
        """``c_t = B t^(gamma/2) (1 - t)^(gamma/2)``."""
        g = self.gamma / 2
        return self.B * t.clamp(0.0, 1.0).pow(g) * (1.0 - t).clamp(0.0, 1.0).pow(g)

    def dc(self, t: Tensor) -> Tensor:
        """``c_t' = B (gamma/2)(1 - 2t) t^(gamma/2 - 1)(1 - t)^(gamma/2 - 1)`` (no division by ``c_t``)."""
        g = self.gamma / 2
        return self.B * g * (1.0 - 2.0 * t) * t.pow(g - 1.0) * (1.0 - t).pow(g - 1.0)

    def alpha(self, t: Tensor) -> Tensor:
        """``alpha_t = (1 - t)/C_t``."""
        return (1.0 - t) / (1.0 + self.c(t))

    def uniform(self, dtype: torch.dtype = torch.float64, device=None) -> Tensor:
        u = torch.full((self.vocab_size,), 1.0 / self.n_tokens, dtype=dtype, device=device)
        u[self.mask_id] = 0.0
        return u

    def mixing(self, t: float | Tensor, x_like: Tensor) -> tuple[Tensor, Tensor]:
        """``(alpha_t, beta_t pi_t)`` with shapes ``x_like.shape`` and ``x_like.shape + (V,)``."""
        t = _per_token(_as_time(t, x_like), x_like)
        C = 1.0 + self.c(t)
        a = (1.0 - t) / C
        e_mask = torch.zeros(self.vocab_size, dtype=t.dtype, device=t.device)
        e_mask[self.mask_id] = 1.0
        bp = (t[..., None] * e_mask + self.c(t)[..., None] * self.uniform(t.dtype, t.device)) / C[..., None]
        return a, bp

    # ------------------------------------------------------------------ marginals
    def probs_at(self, x0_probs: Tensor, t: float | Tensor) -> Tensor:
        """``q_t(. | x_hat) = alpha_t x_hat + beta_t pi_t`` for a distribution ``x0_probs`` (..., V)."""
        t = _as_time(t, x0_probs)
        dtype = _prob_dtype(x0_probs, t)
        a, bp = self.mixing(t.to(dtype), x0_probs[..., 0])
        return a[..., None] * x0_probs.to(dtype) + bp

    def marginal_probs(self, x0: Tensor, t: float | Tensor) -> Tensor:
        _check_tokens(x0, self.vocab_size, "x0")
        t = _as_time(t, x0)
        return self.probs_at(torch.nn.functional.one_hot(x0, self.vocab_size).to(_prob_dtype(t)), t)

    def sample_marginal(self, x0: Tensor, t: float | Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``z_t``: keep ``x0`` w.p. ``alpha_t``, [MASK] w.p. ``t/C_t``, else a uniform non-mask token."""
        _check_tokens(x0, self.vocab_size, "x0")
        t = _per_token(_as_time(t, x0).to(torch.float64), x0)
        C = 1.0 + self.c(t)
        a, m = (1.0 - t) / C, t / C
        u = _rand(x0.shape, generator, x0.device)
        noise = _uniform_ids(x0.shape, self.n_tokens, self.mask_id, generator, x0.device)
        out = torch.where(u < a + m, torch.full_like(x0, self.mask_id), noise)
        return torch.where(u < a, x0, out)

    def prior_sample(
        self, shape: tuple[int, ...] | torch.Size, generator: torch.Generator | None = None, device=None
    ) -> Tensor:
        """All [MASK] (``alpha_1 = c_1 = 0``)."""
        return torch.full(tuple(shape), self.mask_id, dtype=torch.long, device=device)

    # ------------------------------------------------------------------ reverse step
    def posterior_probs(self, x_t: Tensor, x0_probs: Tensor, s: float | Tensor, t: float | Tensor) -> Tensor:
        r"""``p(z_s | z_t) = q_{t|s}(z_t | z_s) q_s(z_s | x_hat) / q_t(z_t | x_hat)`` (GIDD's sampler), ``s < t``.

        ``alpha_{t|s} = alpha_t/alpha_s`` and ``beta_{t|s} pi_{t|s} = beta_t pi_t - alpha_{t|s} beta_s pi_s``.
        Shapes: ``x_t`` (...), ``x0_probs`` (..., V) -> (..., V).
        """
        _check_tokens(x_t, self.vocab_size, "x_t")
        s, t = _as_time(s, x_t), _as_time(t, x_t)
        dtype = _prob_dtype(x0_probs, s, t)
        a_s, bp_s = self.mixing(s.to(dtype), x_t)
        a_t, bp_t = self.mixing(t.to(dtype), x_t)
        a_ts = a_t / a_s
        bp_ts = (bp_t - a_ts[..., None] * bp_s).clamp_min(0.0)
        q_s = a_s[..., None] * x0_probs.to(dtype) + bp_s
        bp_ts_zt = bp_ts.gather(-1, x_t[..., None])[..., 0]
        return _posterior_from_mixture(x_t, q_s, a_ts, bp_ts_zt, self.vocab_size)

    # ------------------------------------------------------------------ ELBO
    def elbo_weights(self, x_t: Tensor, x0: Tensor, t: float | Tensor) -> Tensor:
        """The three ELBO weights above, selected by the state of each token; shape ``x_t.shape``."""
        t = _per_token(_as_time(t, x_t), x_t)
        g = self.gamma / 2
        c = self.c(t)
        shape = 1.0 + g * (1.0 - 2.0 * t) / t  # (c_t + (1 - t) c_t') / c_t
        w_x = c * shape / self.n_tokens / ((1.0 - t) * (1.0 - t + c / self.n_tokens))
        w_m = 1.0 / (t * (1.0 - t))
        w_u = shape / (1.0 - t)
        is_m = x_t == self.mask_id
        is_x = x_t == x0
        return torch.where(is_m, w_m, torch.where(is_x, w_x, w_u))

    def dynamic_weights(self, x_t: Tensor, x0: Tensor, t: float | Tensor, w_max: float = 2.0) -> Tensor:
        """GIDD's ``dynamic`` training weights: 1 on uniform-noised tokens, 2 on [MASK],
        ``B/N exp(gamma/2 sigmoid(-t))`` on clean tokens, clipped to ``[0, w_max]``."""
        t = _per_token(_as_time(t, x_t), x_t)
        x_scale = self.B / self.n_tokens * torch.exp(self.gamma / 2 * torch.sigmoid(-t))
        is_m = (x_t == self.mask_id).to(t.dtype)
        is_x = (x_t == x0).to(t.dtype)
        w = (1.0 - is_x) * ((1.0 - is_m) + 2.0 * is_m) + is_x * x_scale
        return w.clamp(0.0, w_max)

    def __repr__(self) -> str:
        return f"GIDD(vocab_size={self.vocab_size}, mask_id={self.mask_id}, p_u={self.p_u}, gamma={self.gamma})"


DiscreteProcess = MaskedDiffusion | UniformDiffusion | GIDD
"""Any discrete token process (what :func:`difflab.core.samplers.select.run_discrete_sampler` runs)."""
