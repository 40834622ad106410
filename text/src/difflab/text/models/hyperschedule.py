r"""Hyperschedule language model: a noise schedule per position, optional epsilon-hybrid noise, ACS sampling.

Fathi, Scholak & Noël 2025, "Unifying Autoregressive and Diffusion-Based Sequence Generation"
(arXiv:2504.06416). The math lives in :mod:`difflab.text.hyperschedules` (the sliding-window
hyperschedule ``tau(t, l)``, the epsilon-hybrid noise and their NELBO) and
:mod:`difflab.text.adaptive_correction` (the sampler); this module trains and samples with them on
MDLM's network, tokenizer handling and held-out bound (:class:`~difflab.text.models.mdlm.MaskedDiffusionLM`).

Training: stratified times ``t_i`` in ``[eps, 1)`` (MDLM's), per-position levels ``tau(t_i, l)``
(B, L), the per-position NELBO with each position's weight ``(d tau/dt) / tau``; with ``epsilon > 0``
the tokens are first uniform-noised (``z_0``) and a second network call at ``tau = 0`` adds the
decoder term ``-log x_hat(z_0)[x]`` (minus the constant entropy of the uniform noise), so the loss is
the bound itself. ``window=None`` and ``epsilon=0`` is MDLM, loss and sampler, draw for draw.

Validation / test report the bound per token (``nll_bound``, ``ppl_bound``) as MDLM does, [BOS] given.

Sampling: ACS on the per-position grid ``tau(linspace(1, 1e-5, N + 1), l)``, ``correction`` = eta
(0 for absorbing noise; the reference's 0.015 by default with epsilon-hybrid noise).

Batch: ``x0`` (B, L) long, ``attention_mask`` (B, L).
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor

from difflab.core.discrete_losses import antithetic_times
from difflab.core.lightning import eval_mode
from difflab.core.samplers.base import SampleResult
from difflab.text.adaptive_correction import sample_adaptive_correction
from difflab.text.hyperschedules import EpsilonHybridNoise, SlidingWindowHyperschedule, mean_over_tokens
from difflab.text.models.mdlm import MaskedDiffusionLM

DEFAULT_CORRECTION = 0.015
"""ACS's eta when ``epsilon > 0`` and none is given (the reference sampler's default)."""


class HyperscheduleLM(MaskedDiffusionLM):
    """Masked diffusion with a per-position (sliding-window) schedule and optional epsilon-hybrid noise.

    Args:
        vocab_size, mask_id, bos_id, max_len, dim, depth, heads, dropout: as :class:`MaskedDiffusionLM`
            (the network is not time-conditioned: under absorbing noise the clean-token posterior does
            not depend on the levels, so the model can be sampled on any hyperschedule).
        window: ramp width of the hyperschedule in tokens (> 0; small: close to autoregressive), or
            None for MDLM's shared schedule.
        epsilon: uniform share of the visible tokens (epsilon-hybrid noise; 0: absorbing only).
        correction: ACS's eta, in [0, 1]; None: 0 for epsilon = 0, else 0.015.
        eps: ``alpha_1`` of the log-linear base schedule and the smallest training time.
        sample_steps, cache, num_val_samples, val_draws, optimizer, lr_scheduler: as :class:`MaskedDiffusionLM`.
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
        window: float | None = 8.0,
        epsilon: float = 0.0,
        correction: float | None = None,
        eps: float = 1e-3,
        sample_steps: int = 64,
        cache: bool = True,
        num_val_samples: int = 0,
        val_draws: int = 4,
        optimizer: OptimizerCallable = torch.optim.AdamW,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        eta = (0.0 if epsilon == 0.0 else DEFAULT_CORRECTION) if correction is None else float(correction)
        if not 0.0 <= eta <= 1.0:
            raise ValueError(f"correction must be in [0, 1], got {correction}")
        super().__init__(
            vocab_size=vocab_size,
            mask_id=mask_id,
            bos_id=bos_id,
            max_len=max_len,
            dim=dim,
            depth=depth,
            heads=heads,
            dropout=dropout,
            time_conditioning=False,
            schedule="log_linear",
            eps=eps,
            sample_steps=sample_steps,
            cache=cache,
            num_val_samples=num_val_samples,
            val_draws=val_draws,
            optimizer=optimizer,
            lr_scheduler=lr_scheduler,
        )
        self.hyperschedule = SlidingWindowHyperschedule(window)
        self.noise = EpsilonHybridNoise(self.process, epsilon)
        self.window, self.epsilon, self.correction = window, float(epsilon), eta

    def special_ids_changed(self) -> None:
        super().special_ids_changed()
        self.noise = EpsilonHybridNoise(self.process, self.epsilon)

    # ------------------------------------------------------------------ loss and bound
    def nelbo_terms(self, x0: Tensor, am: Tensor | None, t: Tensor, generator, bos_given: bool) -> Tensor:
        """Per-position NELBO terms (B, L) of blocks ``x0`` at times ``t`` (B,), one noise draw.

        ``bos_given``: position 0 is neither noised nor scored (the bound of :meth:`nelbo_sum`)."""
        tau, rate = self.hyperschedule.tau(t, x0.shape[1])
        z0, z_t = self.noise.sample(x0, tau, generator)
        if bos_given:
            z0 = z0.clone()
            z0[:, 0] = x0[:, 0]
            z_t = z_t.clone()
            z_t[:, 0] = x0[:, 0]
        per = self.noise.diffusion_terms(self.network(z_t, tau, am), z0, z_t, tau, rate)
        if self.epsilon > 0.0:
            per = per + self.noise.decoder_terms(self.network(z0, torch.zeros_like(tau), am), x0)
        if bos_given:
            per = per.clone()
            per[:, 0] = 0.0
        return per if am is None else per * am.to(per.dtype)

    def training_loss(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> Tensor:
        x0, am = batch["x0"], batch.get("attention_mask")
        t = antithetic_times(x0.shape[0], generator, eps=self.eps, device=x0.device)
        return mean_over_tokens(self.nelbo_terms(x0, am, t, generator, bos_given=False), am)

    def bound_terms(self, x0: Tensor, am: Tensor, t: Tensor, generator) -> Tensor:
        """NELBO terms (B, L) at times ``t`` (B,), [BOS] given (its term is 0)."""
        return self.nelbo_terms(x0, am, t, generator, bos_given=True)

    # ------------------------------------------------------------------ sampling
    def sampling_grid(self, steps: int, length: int) -> Tensor:
        """Per-position levels ``(steps + 1, length)`` of MDLM's grid ``linspace(1, 1e-5, steps + 1)``."""
        return self.hyperschedule.grid(self.process.default_grid("masked", steps), length)

    def sample_tokens(
        self, x: Tensor, keep_mask: Tensor, steps: int | None, generator, callback, **options: Any
    ) -> SampleResult:
        """ACS on the hyperschedule's grid from ``(x, keep_mask)`` (what :meth:`generate` runs)."""
        grid = self.sampling_grid(steps or self.sample_steps, x.shape[1])
        with eval_mode(self):
            return sample_adaptive_correction(
                self.model_fn(),
                self.process,
                x,
                grid,
                generator=generator,
                callback=callback,
                keep_mask=keep_mask,
                **self.generate_options(**options),
            )

    def generate_options(self, cache: bool | None = None, correction: float | None = None) -> dict[str, Any]:
        """ACS's options: ``cache`` and ``correction`` (eta), each defaulting to the module's."""
        return {
            "cache": self.cache if cache is None else cache,
            "correction": self.correction if correction is None else correction,
        }


__all__ = ["HyperscheduleLM"]
