r"""DDPD: discrete diffusion with planned denoising (Liu et al. 2025, *Think While You Generate*).

Forward process: uniform noise, :class:`difflab.core.processes.UniformDiffusion` with the linear
schedule: each token (not [BOS], never [MASK]) is replaced by a uniformly drawn token with
probability ``t`` (``z^d = 1``: "resampled", coincidental matches included, as DDPD's planner target).
Time runs from ``t = 1`` (all noise) to ``t = 0`` (clean), DDPD's ``1 - t``.

One transformer with two heads (the width ``V + 1`` output layer: ``V`` denoiser logits and one
planner logit), time-conditioned by adaLN:

* planner ``p_phi(z^d = 1 | x_t) = sigmoid(l^d)``, trained by the binary cross-entropy of the flags,
* denoiser ``p_theta(x_0^d | x_t, z^d = 1) = softmax(logits^d)`` ([MASK] excluded), trained by the
  cross-entropy of the clean token on the noised positions only,

.. math::  \mathcal L = \mathbb E_t\Big[\frac{1}{|\{d: z^d = 1\}|}\sum_{d: z^d = 1} -\log p_\theta(x_0^d \mid x_t)
           + \lambda\, \frac1{L}\sum_d \mathrm{BCE}\big(\sigma(l^d), z^d\big)\Big]

(means over the batch's real tokens; ``lambda = planner_weight``; stratified ``t`` in ``[eps, 1]``).
Sharing the trunk makes one network evaluation serve one sampling step, so DDPD and MDLM compare at
equal NFE; the paper trains the two as separate networks.

Sampling: core's ``ddpd`` sampler (:func:`difflab.core.samplers.ddpd.sample_ddpd`) from uniform
tokens on the process's grid ``linspace(1 - 1e-4, 1e-4, N + 1)``; each step the planner picks
``k = max(1, round(f * sum_d p_d))`` positions (DDPD's adaptive time: the planner's own estimate of
the noise left, spread over the steps left) and the denoiser redraws them, already decoded tokens
included, which is DDPD's self-correction.

Likelihood: ``evaluate`` and the validation bound are refused. The paper gives no bound for the
planner-driven process; the uniform-diffusion ELBO of the posterior mean ``(1 - p) e_{x_t} + p
p_theta`` would bound a different sampler (the x0-parameterised one), not the samples scored here.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor

from difflab.core.discrete_losses import antithetic_times
from difflab.core.errors import UserError
from difflab.core.processes.discrete import UniformDiffusion
from difflab.core.samplers.ddpd import DDPDSchedule
from difflab.text.models.mdlm import MaskedDiffusionLM
from difflab.text.networks.transformer import DiffusionTransformer

DDPD_EPS = 1e-3
"""The smallest training time (at ``t -> 0`` almost no token is noise and the denoiser term is empty)."""

NO_BOUND = (
    "DDPD has no likelihood bound here: its samples come from the planner-driven jump process, for which "
    "no ELBO is built (the paper reports none); compare it by generative perplexity (benchmarks/text.py)"
)


class DDPDLM(MaskedDiffusionLM):
    """DDPD language model: a planner head and a denoiser head on one time-conditioned transformer.

    Args:
        vocab_size, mask_id, bos_id, max_len, dim, depth, heads, dropout: as :class:`MaskedDiffusionLM`.
        planner_weight: ``lambda``, the weight of the planner's BCE against the denoiser's CE.
        schedule: the sampler's step schedule, ``adaptive`` (DDPD's) or ``tau_leaping``.
        planner_temperature: selection weights ``p^(1/T)`` (1: the exact rule).
        sample_steps: default sampler steps (one network evaluation each).
        num_val_samples: samples drawn at each validation for distinct-n / repetition.
        optimizer, lr_scheduler: optimiser factories.
    """

    def __init__(
        self,
        vocab_size: int = 1024,
        mask_id: int = 1,
        bos_id: int = 2,
        max_len: int = 128,
        dim: int = 128,
        depth: int = 4,
        heads: int = 4,
        dropout: float = 0.0,
        planner_weight: float = 1.0,
        schedule: DDPDSchedule = "adaptive",
        planner_temperature: float = 1.0,
        sample_steps: int = 64,
        num_val_samples: int = 0,
        optimizer: OptimizerCallable = torch.optim.AdamW,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        if schedule not in ("adaptive", "tau_leaping"):
            raise ValueError(f"schedule must be 'adaptive' or 'tau_leaping', got {schedule!r}")
        if planner_weight < 0:
            raise ValueError(f"planner_weight must be >= 0, got {planner_weight}")
        if planner_temperature <= 0:
            raise ValueError(f"planner_temperature must be > 0, got {planner_temperature}")
        super().__init__(
            vocab_size=vocab_size,
            mask_id=mask_id,
            bos_id=bos_id,
            max_len=max_len,
            dim=dim,
            depth=depth,
            heads=heads,
            dropout=dropout,
            time_conditioning=True,
            schedule="linear",
            eps=DDPD_EPS,
            sampler="ddpd",
            sample_steps=sample_steps,
            cache=False,
            num_val_samples=num_val_samples,
            optimizer=optimizer,
            lr_scheduler=lr_scheduler,
        )
        # V denoiser logits + 1 planner logit (the embedding's extra row is never used)
        self.network = DiffusionTransformer(vocab_size + 1, max_len, dim, depth, heads, True, dropout=dropout)
        self.process = UniformDiffusion(vocab_size, schedule="linear", mask_id=mask_id)
        self.planner_weight, self.sample_schedule, self.planner_temperature = (
            planner_weight,
            schedule,
            planner_temperature,
        )

    NLL_NAMES = ("nll_bound", "ppl_bound")

    def special_ids_changed(self) -> None:
        self.process = UniformDiffusion(self.vocab_size, schedule="linear", mask_id=self.mask_id)

    def _build_spindle(self) -> None:
        """No spindle schedule here."""

    # ------------------------------------------------------------------ network
    def heads(self, x_t: Tensor, t: Tensor, attention_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(denoiser logits (B, L, V) with [MASK] at -inf, planner logits (B, L))``."""
        out = self.network(x_t, t, attention_mask)
        logits = out[..., : self.vocab_size].clone()
        logits[..., self.mask_id] = float("-inf")
        return logits, out[..., self.vocab_size]

    def model_fn(self):
        return lambda x_t, t: self.heads(x_t, t)

    # ------------------------------------------------------------------ loss
    def corrupt_with_flags(self, x0: Tensor, t: Tensor, generator) -> tuple[Tensor, Tensor]:
        """``(x_t, z)`` (B, L): uniform noise with probability ``t`` per token, [BOS] (position 0) kept."""
        x_t, flags = self.process.sample_marginal(x0, t, generator, return_flags=True)
        x_t[:, 0], flags[:, 0] = x0[:, 0], False
        return x_t, flags

    def loss_parts(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``(denoiser CE on the noised tokens, planner BCE on all tokens)``, both means over real tokens."""
        x0 = batch["x0"]
        am = batch.get("attention_mask")
        real = torch.ones_like(x0, dtype=torch.bool) if am is None else am.bool()
        real = real.clone()
        real[:, 0] = False
        t = antithetic_times(x0.shape[0], generator, eps=DDPD_EPS, device=x0.device)
        x_t, flags = self.corrupt_with_flags(x0, t, generator)
        logits, noise_logits = self.heads(x_t, t, am)
        noised = flags & real
        ce = F.cross_entropy(logits[noised], x0[noised]) if bool(noised.any()) else logits.sum() * 0.0
        bce = F.binary_cross_entropy_with_logits(noise_logits[real], flags[real].to(noise_logits.dtype))
        return ce, bce

    def training_loss(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> Tensor:
        ce, bce = self.loss_parts(batch, generator)
        return ce + self.planner_weight * bce

    # ------------------------------------------------------------------ no bound
    def nelbo_sum(self, x0: Tensor, attention_mask: Tensor | None, u: Tensor, generator=None) -> Tensor:
        raise UserError(NO_BOUND)

    def elbo_nll(self, x0: Tensor, attention_mask: Tensor | None = None, n_times: int = 8, generator=None):
        raise UserError(NO_BOUND)

    def held_out_nll(self, batch: dict[str, Any], generator: torch.Generator) -> tuple[float, int]:
        return 0.0, 0  # nothing to log: no bound (see NO_BOUND)

    # ------------------------------------------------------------------ sampling
    def generate_options(
        self,
        cache: bool | None = None,
        schedule: DDPDSchedule | None = None,
        planner_temperature: float | None = None,
    ) -> dict[str, Any]:
        """DDPD's sampler options, ``schedule`` and ``planner_temperature`` (default the module's);
        ``cache`` is ignored. The start is uniform tokens drawn with the caller's generator."""
        return {
            "schedule": schedule or self.sample_schedule,
            "planner_temperature": planner_temperature or self.planner_temperature,
        }


__all__ = ["DDPDLM", "NO_BOUND"]
