r"""GIDD: generalized interpolating discrete diffusion, masking mixed with uniform noise (von Rütte et al. 2025).

Forward process: :class:`difflab.core.processes.GIDD` — ``q_t(. | x) = alpha_t e_x + (t e_mask +
c_t u) / C_t`` with ``c_t = B t^{gamma/2}(1-t)^{gamma/2}``, ``alpha_t = (1 - t)/C_t``; ``p_u`` is the
share of uniform noise at ``t = 1/2`` (``p_u = 0`` is masked diffusion with the linear schedule).
Because tokens may be replaced by wrong (uniform) tokens, the denoiser must be time-conditioned and
unmasked tokens are not copied: the model can revise them.

Objective: GIDD's ELBO (Thm. 3.6), per token ``w_t(z_t, x)[KL(q_t(.|x) || q_t(.|x_hat)) + r - log r
- 1]`` (:func:`difflab.core.discrete_losses.gidd_elbo`), with ``weighting="dynamic"`` (GIDD's
default training weights) or ``"elbo"``; times ``t_i = (i/B + U) mod 1`` mapped into ``[1e-4, 1 -
1e-4]``. :meth:`GIDDLM.elbo_nll` (and ``nll_bound`` in validation) always evaluates the unweighted bound.

Sampling: core's ``gidd`` sampler (:func:`difflab.core.samplers.masked.sample_gidd`) on the process's
grid ``linspace(1 - eps, eps, N + 1)``, then
optionally GIDD's self-correction (``self_correction_steps``; t0 0.01, temperature 0.1, one token
per iteration, patience 32): resample the position whose proposal the model is most sure of until
nothing changes.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor

from difflab.core.discrete_losses import antithetic_times, gidd_elbo
from difflab.core.processes.discrete import GIDD
from difflab.text.models.mdlm import MaskedDiffusionLM

GIDD_EPS = GIDD.sample_eps


class GIDDLM(MaskedDiffusionLM):
    """GIDD language model (hybrid mask + uniform noise) with the self-correction sampler.

    Args:
        vocab_size, mask_id, bos_id, max_len, dim, depth, heads, dropout: as :class:`MaskedDiffusionLM`.
        p_u: uniform-noise share at ``t = 1/2`` (GIDD: 0.0, 0.1, 0.2).
        gamma: shape exponent of the mixing (1.0).
        weighting: ``dynamic`` (GIDD's training weights) or ``elbo``.
        sample_steps: default sampler steps.
        self_correction_steps: default self-correction iterations after sampling (0: off; GIDD: 128).
        min_p: drop tokens below ``min_p * max`` while sampling (0: off).
        num_val_samples, val_draws, optimizer, lr_scheduler: as :class:`MaskedDiffusionLM`.
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
        p_u: float = 0.1,
        gamma: float = 1.0,
        weighting: Literal["dynamic", "elbo"] = "dynamic",
        sample_steps: int = 64,
        self_correction_steps: int = 0,
        min_p: float = 0.0,
        num_val_samples: int = 0,
        val_draws: int = 4,
        optimizer: OptimizerCallable = torch.optim.AdamW,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        if weighting not in ("dynamic", "elbo"):
            raise ValueError(f"weighting must be 'dynamic' or 'elbo', got {weighting!r}")
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
            eps=GIDD_EPS,
            sampler="gidd",
            sample_steps=sample_steps,
            cache=False,
            num_val_samples=num_val_samples,
            val_draws=val_draws,
            optimizer=optimizer,
            lr_scheduler=lr_scheduler,
        )
        self.process = GIDD(vocab_size, mask_id, p_u, gamma)
        self.p_u, self.gamma, self.weighting = p_u, gamma, weighting
        self.self_correction_steps, self.min_p = self_correction_steps, min_p

    def corrupt(self, x0: Tensor, t: Tensor, generator, attention_mask: Tensor | None = None) -> Tensor:
        return self.process.sample_marginal(x0, t, generator)

    def training_loss(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> Tensor:
        x0 = batch["x0"]
        am = batch.get("attention_mask")
        t = antithetic_times(x0.shape[0], generator, eps=GIDD_EPS, t_max=1 - GIDD_EPS, kind="shifted", device=x0.device)
        x_t = self.corrupt(x0, t, generator)
        logits = self.network_forward(x_t, t, batch)
        return gidd_elbo(logits, x0, x_t, t, self.process, am, weighting=self.weighting).to(logits.dtype)

    def special_ids_changed(self) -> None:
        self.process = GIDD(self.vocab_size, self.mask_id, self.p_u, self.gamma)

    def bound_time(self, u: Tensor) -> Tensor:
        """The time of the bound at ``u`` in [0, 1): ``eps + (1 - 2 eps) u`` (GIDD's range)."""
        return GIDD_EPS + (1 - 2 * GIDD_EPS) * u

    def bound_terms(self, x0: Tensor, am: Tensor, t: Tensor, generator) -> Tensor:
        """Unweighted negative-ELBO terms (B, L) at times ``t`` (B,), [BOS] given."""
        x_t = self.corrupt(x0, t, generator)
        x_t[:, 0] = x0[:, 0]
        logits = self.network(x_t, t, am)
        return gidd_elbo(logits, x0, x_t, t, self.process, am, weighting="elbo", reduction="none")

    def generate_options(self, cache: bool | None = None, self_correction_steps: int | None = None) -> dict[str, Any]:
        """GIDD's sampler options: ``min_p`` and ``self_correction_steps`` (default the module's);
        ``cache`` is ignored (every step changes tokens)."""
        sc = self.self_correction_steps if self_correction_steps is None else self_correction_steps
        return {"min_p": self.min_p, "self_correction_steps": sc}


__all__ = ["GIDDLM"]
