r"""Training objectives of discrete (token) diffusion: MDLM's SUBS NELBO and GIDD's ELBO.

Shapes: ``logits`` (B, L, V); ``x0`` and ``x_t`` (B, L) integer tokens; ``t`` (B,) or (B, L) in
[0, 1] (``t = 0`` clean); ``attention_mask`` (B, L), 1 for real tokens and 0 for padding.
Losses are averaged over the attention-mask tokens (MDLM's and GIDD's ``tokenmean``), so the
per-sequence NELBO is ``L`` times the mean; ``reduction="none"`` returns the per-token terms.

References: Sahoo et al. 2024 (MDLM, arXiv:2406.07524), von Rütte et al. 2025 (GIDD,
arXiv:2503.04482).
"""

from __future__ import annotations

import math
from typing import Literal, Protocol

import torch
from torch import Tensor

from difflab.core.processes.discrete import SpindleMaskedDiffusion

Reduction = Literal["mean", "none"]

__all__ = ["subs_log_probs", "masked_diffusion_loss", "gidd_elbo", "antithetic_times"]


class _TokenProcess(Protocol):
    vocab_size: int

    def probs_at(self, x0_probs: Tensor, t: Tensor) -> Tensor: ...

    def marginal_probs(self, x0: Tensor, t: Tensor) -> Tensor: ...

    def elbo_weights(self, x_t: Tensor, x0: Tensor, t: Tensor) -> Tensor: ...


def _reduce(per_token: Tensor, attention_mask: Tensor | None, reduction: Reduction) -> Tensor:
    if reduction == "none":
        return per_token if attention_mask is None else per_token * attention_mask.to(per_token.dtype)
    if reduction != "mean":
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    if attention_mask is None:
        return per_token.mean()
    am = attention_mask.to(per_token.dtype).expand(per_token.shape)
    return (per_token * am).sum() / am.sum().clamp_min(1.0)


def _check_shapes(logits: Tensor, x0: Tensor, x_t: Tensor, vocab_size: int) -> None:
    if logits.shape[:-1] != x0.shape or x_t.shape != x0.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} must be x0.shape + (V,); x0 {tuple(x0.shape)} and x_t "
            f"{tuple(x_t.shape)} must match"
        )
    if logits.shape[-1] != vocab_size:
        raise ValueError(f"logits have {logits.shape[-1]} classes, the process has vocab_size={vocab_size}")


def subs_log_probs(logits: Tensor, x_t: Tensor, mask_id: int) -> Tensor:
    r"""MDLM's SUBS parameterisation: ``log p_theta(x0 | x_t)`` of shape (..., V).

    1. zero masking probability: the [MASK] logit is set to ``-inf``;
    2. ``log_softmax`` over the remaining tokens;
    3. carry-over unmasking: at unmasked positions the output is the log of a one-hot on the observed
       token (0 there, ``-inf`` elsewhere).

    Computed in at least float32.
    """
    dtype = torch.promote_types(logits.dtype, torch.float32)
    lg = logits.to(dtype).clone()
    lg[..., mask_id] = -math.inf
    logp = torch.log_softmax(lg, dim=-1)
    observed = torch.full_like(logp, -math.inf).scatter(-1, x_t[..., None], 0.0)
    unmasked = (x_t != mask_id)[..., None]
    return torch.where(unmasked, observed, logp)


def masked_diffusion_loss(
    logits: Tensor,
    x0: Tensor,
    x_t: Tensor,
    t: Tensor,
    process,
    attention_mask: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""MDLM's continuous-time NELBO with SUBS (Sahoo et al. 2024, Eq. 10):

    .. math::  \mathcal L = \mathbb E_t\Big[\frac{\sigma'(t)}{e^{\sigma(t)} - 1}
               \sum_{i:\, x_t^i = \mathrm{MASK}} -\log p_\theta(x_0^i \mid x_t)\Big],

    the weight being ``process.loss_weight(t)`` (``1/t`` for the log-linear schedule). Each token
    contributes ``w(t) * (-log p(x0 | x_t))`` if masked and 0 otherwise; the mean runs over the
    attention-mask tokens. ``process`` is a :class:`~difflab.core.processes.discrete.MaskedDiffusion`
    (for :class:`~difflab.core.processes.discrete.SpindleMaskedDiffusion` the per-token weights of
    its ``loss_weight(t, x0)`` are used: DiffusionBERT's weighted cross-entropy).
    """
    _check_shapes(logits, x0, x_t, process.vocab_size)
    logp = subs_log_probs(logits, x_t, process.mask_id)
    masked = x_t == process.mask_id
    nll = -logp.gather(-1, x0[..., None])[..., 0]
    t = t.to(device=logits.device)
    if isinstance(process, SpindleMaskedDiffusion):
        w = process.loss_weight(t, x0, attention_mask)
    else:
        w = process.loss_weight(t, x0)
    # Zero both factors off the masked positions so that no inf * 0 reaches the gradient.
    zero = torch.zeros_like(nll)
    per_token = torch.where(masked, w.to(nll.dtype), zero) * torch.where(masked, nll, zero)
    return _reduce(per_token, attention_mask, reduction)


def gidd_elbo(
    logits: Tensor,
    x0: Tensor,
    x_t: Tensor,
    t: Tensor,
    process: _TokenProcess,
    attention_mask: Tensor | None = None,
    weighting: Literal["elbo", "dynamic"] = "elbo",
    reduction: Reduction = "mean",
) -> Tensor:
    r"""GIDD's negative ELBO (von Rütte et al. 2025, Thm. 3.6), computed in float64.

    Per token, with ``x_hat = softmax(logits)`` ([MASK] logit at ``-inf``) and
    ``r = q_t(z_t | x) / q_t(z_t | x_hat)``:

    .. math::  w_t(z_t, x)\,\big[\mathrm{KL}(q_t(\cdot|x) \,\|\, q_t(\cdot|\hat x)) + r - \log r - 1\big].

    ``weighting="elbo"`` uses ``process.elbo_weights`` (the bound itself); ``"dynamic"`` GIDD's
    training weights (1 uniform-noised, 2 masked, ``B/N exp(gamma/2 sigmoid(-t))`` clean, clipped to
    [0, 2]; :class:`~difflab.core.processes.discrete.GIDD` only). Works for any process exposing
    ``probs_at``, ``marginal_probs`` and ``elbo_weights`` (GIDD, masked, uniform); for the masked
    process it equals :func:`masked_diffusion_loss`.

    ``t`` must lie strictly inside (0, 1) (the weights diverge at the ends); sample it with
    :func:`antithetic_times` (GIDD: ``eps = 1e-4``, ``t_max = 1 - 1e-4``).
    """
    _check_shapes(logits, x0, x_t, process.vocab_size)
    if weighting not in ("elbo", "dynamic"):
        raise ValueError(f"weighting must be 'elbo' or 'dynamic', got {weighting!r}")
    t64 = t.to(device=logits.device, dtype=torch.float64)
    lg = logits.to(torch.float64).clone()
    mask_id = getattr(process, "mask_id", None)
    if mask_id is not None:
        lg[..., mask_id] = -math.inf
    x_hat = torch.softmax(lg, dim=-1)
    q_x = process.marginal_probs(x0, t64).to(torch.float64)
    q_hat = process.probs_at(x_hat, t64).to(torch.float64)
    kl = (torch.xlogy(q_x, q_x) - torch.xlogy(q_x, q_hat)).sum(-1)
    qz_x = q_x.gather(-1, x_t[..., None])[..., 0]
    qz_hat = q_hat.gather(-1, x_t[..., None])[..., 0]
    r = qz_x / qz_hat
    bracket = kl + r - torch.log(r) - 1.0
    if weighting == "elbo":
        w = process.elbo_weights(x_t, x0, t64)
    else:
        if not hasattr(process, "dynamic_weights"):
            raise ValueError(f"weighting='dynamic' needs a GIDD process, got {type(process).__name__}")
        w = process.dynamic_weights(x_t, x0, t64)
    per_token = w.to(torch.float64) * bracket
    return _reduce(per_token, attention_mask, reduction)


def antithetic_times(
    batch: int,
    generator: torch.Generator | None = None,
    eps: float = 1e-3,
    *,
    t_max: float = 1.0,
    kind: Literal["stratified", "shifted"] = "stratified",
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    r"""Low-discrepancy diffusion times for a batch, shape ``(batch,)``, in ``[eps, t_max)``.

    ``stratified`` (MDLM): ``u_i = (U_i / n + i / n) mod 1`` with independent ``U_i ~ U[0, 1)``, one
    draw in each stratum ``[i/n, (i+1)/n)``. ``shifted`` (GIDD): ``u_i = (i / n + U) mod 1`` with one
    shared ``U``. Then ``t_i = eps + (t_max - eps) u_i`` (MDLM: ``eps = 1e-3``, ``t_max = 1``; GIDD:
    ``eps = 1e-4``, ``t_max = 1 - 1e-4``).
    """
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    if not 0.0 <= eps < t_max <= 1.0:
        raise ValueError(f"need 0 <= eps < t_max <= 1, got eps={eps}, t_max={t_max}")
    gdev = generator.device if generator is not None else torch.device("cpu")
    i = torch.arange(batch, dtype=torch.float64, device=gdev)
    if kind == "stratified":
        u = (torch.rand(batch, generator=generator, dtype=torch.float64, device=gdev) / batch + i / batch) % 1.0
    elif kind == "shifted":
        u = (i / batch + torch.rand((), generator=generator, dtype=torch.float64, device=gdev)) % 1.0
    else:
        raise ValueError(f"kind must be 'stratified' or 'shifted', got {kind!r}")
    t = eps + (t_max - eps) * u
    return t.to(device=device if device is not None else gdev, dtype=dtype)
