r"""Training losses of continuous diffusion and flow models.

Every loss reduces by the *mean over the non-batch dimensions* of the (weighted) squared error,
giving a per-sample loss of shape ``(B,)``; ``reduction="mean"`` then averages over the batch and
``reduction="none"`` returns the per-sample vector. Weights may be per element: a time ``t`` of
shape ``(B, L)`` gives a weight per token that multiplies that token's error before the mean.

* :func:`denoising_score_matching` (Song et al. 2021, score_sde). With ``x_t = a x0 + s z``, the
  conditional score is ``-z / s``;

  - ``weighting="sigma2"`` (``lambda = s^2``): ``|| s * score + z ||^2``;
  - ``weighting="likelihood"`` (``lambda = g^2``, Song et al. 2021b): ``g^2 || score + z / s ||^2``.

* :func:`regression_loss`: ``w(t) || pred - target ||^2`` for a network predicting ``eps``, ``x0``
  or ``v = a eps - s x0``. Each weighting is defined by its *x0-equivalent* weight ``lambda(t)``
  (the weight the loss puts on ``|| x0_hat - x0 ||^2``), with ``SNR = a^2 / s^2``:

  ======================  ====================  ==========================================
  weighting               lambda (x0-equiv.)    source
  ======================  ====================  ==========================================
  ``none``                (w = 1 on the target) plain MSE of the chosen kind
  ``snr`` / ``sigma2``    SNR                   eps-MSE (DDPM's L_simple); score_sde's
                                                ``lambda = s^2`` gives the same loss
  ``min_snr``             min(SNR, gamma)       Hang et al. 2023, "Efficient Diffusion
                                                Training via Min-SNR Weighting Strategy"
  ``truncated_snr``       max(SNR, 1)           Salimans & Ho 2022 (progressive distillation)
  ======================  ====================  ==========================================

  Because ``eps_hat - eps = -(a/s)(x0_hat - x0)`` and
  ``v_hat - v = -((a^2 + s^2)/s)(x0_hat - x0)``, the weight applied to each kind's own MSE is
  ``w = lambda / c_kind`` with ``c_x0 = 1``, ``c_eps = SNR``, ``c_v = (a^2 + s^2)^2 / s^2``
  (``= SNR + 1`` for VP processes, where ``a^2 + s^2 = 1``). Min-SNR-gamma therefore reads

  - x0:  ``w = min(SNR, gamma)``
  - eps: ``w = min(SNR, gamma) / SNR = min(1, gamma / SNR)``
  - v:   ``w = min(SNR, gamma) s^2 / (a^2 + s^2)^2``  (VP: ``min(SNR, gamma) / (SNR + 1)``),

  exactly Hang et al.'s weights for VP processes.

* :func:`time_weighted_mse`: the loss of :class:`~difflab.core.lightning.DiffusionModule`: the
  squared error averaged per time element (per example, or per token / frame for a time of shape
  ``(B, L)``), multiplied by a per-time weight ``w(t)`` and averaged.

* :func:`flow_matching_loss`: ``|| v_pred - ((1 - sigma_min) x1 - x0) ||^2`` in difflab's direction
  (``x_t = (1 - t) x0 + t x1``, ``t = 1`` noise); see :mod:`difflab.core.processes.flow`.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from difflab.core.broadcast import expand_like
from difflab.core.processes.base import LinearGaussianProcess

Reduction = Literal["mean", "none"]
Weighting = Literal["none", "snr", "min_snr", "truncated_snr", "sigma2"]
RegressionKind = Literal["eps", "x0", "v"]


def _reduce(per_elem: Tensor, reduction: Reduction) -> Tensor:
    """Mean over non-batch dims to ``(B,)``, then the batch mean (``"mean"``) or nothing (``"none"``)."""
    if per_elem.ndim == 0:
        raise ValueError("loss needs a batch dimension; got a 0-d tensor")
    per_sample = per_elem.reshape(per_elem.shape[0], -1).mean(dim=1)
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "none":
        return per_sample
    raise ValueError(f"unknown reduction {reduction!r}; expected 'mean' or 'none'")


def denoising_score_matching(
    score: Tensor,
    eps: Tensor,
    std: Tensor,
    weighting: Literal["sigma2", "likelihood"] = "sigma2",
    g: Tensor | None = None,
    *,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Denoising score matching for ``x_t = mean + std * eps`` (score_sde).

    Args:
        score: network score ``s_theta(x_t, t)``, shape of the data ``(B, ...)``.
        eps: the standard noise ``z`` that produced ``x_t``, same shape.
        std: marginal std ``s(t)``: ``(B,)``, per element, or the data's shape.
        weighting: ``"sigma2"`` gives ``|| std * score + z ||^2``; ``"likelihood"`` gives
            ``g^2 || score + z / std ||^2`` (needs ``g``, the diffusion coefficient at ``t``).
        g: ``g(t)``, shaped like ``std``; only for ``"likelihood"``.
        reduction: ``"mean"`` (scalar) or ``"none"`` (per-sample ``(B,)``); the mean over non-batch
            dims is taken in both (score_sde's ``reduce_mean=True``).
    """
    sd = expand_like(std, score)
    if weighting == "sigma2":
        err = (sd * score + eps) ** 2
    elif weighting == "likelihood":
        if g is None:
            raise ValueError("denoising_score_matching: weighting='likelihood' needs the diffusion coefficient g")
        err = expand_like(g, score) ** 2 * (score + eps / sd) ** 2
    else:
        raise ValueError(f"unknown weighting {weighting!r}; expected 'sigma2' or 'likelihood'")
    return _reduce(err, reduction)


def snr_weight(
    process: LinearGaussianProcess,
    t: Tensor,
    kind: RegressionKind,
    weighting: Weighting,
    gamma: float = 5.0,
) -> Tensor:
    r"""The weight ``w(t)`` multiplying the MSE of a ``kind`` prediction (shape of ``t``).

    ``w = lambda / c_kind`` with the x0-equivalent ``lambda`` of ``weighting`` (module docstring).
    Written without dividing by a vanishing ``a`` or ``s`` where the limit is finite.
    """
    if kind not in ("eps", "x0", "v"):
        raise ValueError(f"unknown regression kind {kind!r}; expected 'eps', 'x0' or 'v'")
    if weighting == "none":
        return torch.ones_like(t)
    if weighting not in ("snr", "min_snr", "truncated_snr", "sigma2"):
        raise ValueError(f"unknown weighting {weighting!r}; expected one of none, snr, min_snr, truncated_snr, sigma2")
    if weighting == "min_snr" and gamma <= 0:
        raise ValueError(f"min_snr needs gamma > 0, got gamma={gamma}")
    a, _, s = process.coefficients(t)
    a2, s2 = a**2, s**2
    # lambda = num / s^2 with num = a^2 (snr), min(a^2, gamma s^2) (min_snr), max(a^2, s^2) (truncated)
    if weighting in ("snr", "sigma2"):
        num = a2
    elif weighting == "min_snr":
        num = torch.minimum(a2, gamma * s2)
    else:
        num = torch.maximum(a2, s2)
    if kind == "x0":
        return num / s2
    if kind == "v":
        return num / (a2 + s2) ** 2
    # eps: w = num / a^2, taken in the limit a -> 0 as well
    if weighting in ("snr", "sigma2"):
        return torch.ones_like(a2)
    if weighting == "min_snr":
        return (gamma * s2 / a2).clamp(max=1.0)
    return (s2 / a2).clamp(min=1.0)


def regression_loss(
    pred: Tensor,
    target: Tensor,
    kind: RegressionKind,
    process: LinearGaussianProcess,
    t: Tensor,
    weighting: Weighting = "none",
    gamma: float = 5.0,
    *,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""``w(t) || pred - target ||^2`` for an ``eps``, ``x0`` or ``v`` prediction.

    Args:
        pred, target: prediction and its target (:func:`difflab.core.parameterization.from_x0_eps`),
            shape ``(B, ...)``.
        kind: what ``pred`` is: ``"eps"``, ``"x0"`` or ``"v"``.
        process: the forward process (gives ``a(t)`` and ``s(t)``, hence the SNR).
        t: times, ``(B,)`` or per element (e.g. ``(B, L)``).
        weighting: ``none``, ``snr``, ``min_snr``, ``truncated_snr`` or ``sigma2`` (module docstring;
            :func:`snr_weight` computes ``w``).
        gamma: the Min-SNR clip (5.0).
        reduction: ``"mean"`` (scalar) or ``"none"`` (per-sample ``(B,)``).
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred shape {tuple(pred.shape)} differs from target shape {tuple(target.shape)}")
    w = expand_like(snr_weight(process, t, kind, weighting, gamma), pred)
    return _reduce(w * (pred - target) ** 2, reduction)


def time_weighted_mse(pred: Tensor, target: Tensor, t: Tensor, weight: Tensor | None = None) -> Tensor:
    r"""``mean_i w_i e_i`` with ``e_i = mean ||pred - target||^2`` over the elements of time entry ``i``.

    Args:
        pred, target: ``(B, ...)`` of the same shape.
        t: the times, ``(B,)`` or per element ``(B, L)`` over the leading axes of ``pred``; only its
            shape is used (it groups the error).
        weight: ``w(t)`` of ``t``'s shape, or ``None`` for 1.

    Returns:
        a scalar; with ``weight=None`` and ``t`` of shape ``(B,)`` it is the plain mean squared error.
    """
    if pred.shape != target.shape:
        raise ValueError(f"network output has shape {tuple(pred.shape)}, the target {tuple(target.shape)}")
    err = (pred - target).pow(2).reshape(*t.shape, -1).mean(-1)
    return (err if weight is None else weight * err).mean()


def flow_matching_loss(
    v_pred: Tensor, x0: Tensor, x1: Tensor, sigma_min: float = 0.0, *, reduction: Reduction = "mean"
) -> Tensor:
    r"""``|| v_pred - ((1 - sigma_min) x1 - x0) ||^2``: conditional flow matching with ``x1`` the noise.

    ``x_t = (1 - t) x0 + (sigma_min + (1 - sigma_min) t) x1`` (difflab's direction, ``t = 0`` data);
    the target is ``x1 - x0`` for ``sigma_min = 0`` (rectified flow). Shapes ``(B, ...)``.
    """
    if not (v_pred.shape == x0.shape == x1.shape):
        raise ValueError(f"shapes differ: v_pred {tuple(v_pred.shape)}, x0 {tuple(x0.shape)}, x1 {tuple(x1.shape)}")
    return _reduce((v_pred - ((1 - sigma_min) * x1 - x0)) ** 2, reduction)
