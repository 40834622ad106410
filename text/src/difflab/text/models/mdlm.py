r"""Masked diffusion language model (MDLM, Sahoo et al. 2024, arXiv:2406.07524) with DiffusionBERT's spindle.

Forward process: :class:`difflab.core.processes.MaskedDiffusion` — each token becomes [MASK] with
probability ``1 - alpha_t``; log-linear schedule ``alpha_t = 1 - (1 - eps) t`` by default. With
``schedule="spindle"`` the keep probability depends on the token (He et al. 2023, DiffusionBERT:
frequent tokens are masked later), :class:`~difflab.core.processes.SpindleMaskedDiffusion` built
from the training set's token counts.

Objective (continuous-time NELBO with the SUBS parameterisation, MDLM Eq. 10):

.. math::  \mathcal L = \mathbb E_{t}\Big[\frac{-\alpha_t'}{1 - \alpha_t}\sum_{i: x_t^i = [MASK]}
           -\log p_\theta(x_0^i \mid x_t)\Big], \qquad \frac{-\alpha_t'}{1-\alpha_t} = \frac1t
           \text{ (log-linear)},

with stratified (antithetic) times ``t_i = eps + (1 - eps) (U_i/B + i/B mod 1)``
(:func:`difflab.core.discrete_losses.masked_diffusion_loss`, ``antithetic_times``). The mean over
tokens is a bound on the per-token NLL, so ``exp`` of it bounds the perplexity (:meth:`elbo_nll`).

Sampling: core's discrete sampler by name (:func:`difflab.core.samplers.select.run_discrete_sampler`),
by default ``masked`` (:func:`difflab.core.samplers.masked.sample_masked`: ancestral, float64
categorical draws, caching of ``p(x0 | x_t)`` while no token changes, final argmax fill) on the
process's grid ``linspace(1, 1e-5, steps + 1)``. Given tokens (a prefix prompt, or the known parts of an infilling
problem) are passed as ``keep_mask`` and never changed. Every block starts with [BOS], which is
always given.

Batch: ``x0`` (B, L) long, ``attention_mask`` (B, L) (see :mod:`difflab.text.data.lm`).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor

from difflab.core.discrete_losses import antithetic_times, masked_diffusion_loss
from difflab.core.lightning import DiffusionModule, NoiseStream, eval_mode
from difflab.core.processes.discrete import MaskedDiffusion, SpindleMaskedDiffusion
from difflab.core.samplers.base import SampleResult
from difflab.core.samplers.select import DiscreteSamplerName, run_discrete_sampler
from difflab.text.metrics import distinct_n, repetition_rate
from difflab.text.models.base import HeldOutNLL, TokenizerMixin
from difflab.text.networks.transformer import DiffusionTransformer

Schedule = Literal["log_linear", "linear", "cosine", "spindle"]


class MaskedDiffusionLM(HeldOutNLL, TokenizerMixin, DiffusionModule):
    """MDLM on a small bidirectional transformer.

    Validation and test report, besides the one-draw training objective ``loss``, the NELBO per
    token of the held-out blocks, ``nll_bound`` (tokens after [BOS], ``val_draws`` stratified times
    per block; :meth:`elbo_nll`), and its perplexity bound ``ppl_bound = exp(nll_bound)`` over the epoch.

    Args:
        vocab_size: V, at least the tokenizer's size.
        mask_id: id of [MASK] (1 for tokenizers from ``train-tokenizer``).
        bos_id: id of [BOS], always given while sampling (2 for ``train-tokenizer``).
        max_len: longest block.
        dim, depth, heads, dropout: transformer size.
        time_conditioning: give ``t`` to the network (MDLM's default is False, which makes caching exact).
        schedule: ``log_linear`` (MDLM), ``linear``, ``cosine`` or ``spindle`` (DiffusionBERT, on log-linear).
        eps: ``alpha_1`` of the schedule and the smallest training time.
        spindle_lambda: spindle amplitude (DiffusionBERT: 0.3).
        sampler: core's discrete sampler: ``masked`` (MDLM's) or ``gidd`` (its self-correction off by default).
        sample_steps: default sampler steps.
        cache: reuse ``p(x0 | x_t)`` while no token changes (MDLM's ``ddpm_cache``).
        num_val_samples: samples drawn at each validation for distinct-n / repetition.
        val_draws: stratified noise draws per held-out block for ``nll_bound`` / ``ppl_bound``.
        optimizer, lr_scheduler: optimiser factories (default AdamW lr 3e-4 in the configs).
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
        time_conditioning: bool = False,
        schedule: Schedule = "log_linear",
        eps: float = 1e-3,
        spindle_lambda: float = 0.3,
        sampler: DiscreteSamplerName = "masked",
        sample_steps: int = 64,
        cache: bool = True,
        num_val_samples: int = 0,
        val_draws: int = 4,
        optimizer: OptimizerCallable = torch.optim.AdamW,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        if val_draws < 1:
            raise ValueError(f"val_draws must be >= 1, got {val_draws}")
        if schedule not in ("log_linear", "linear", "cosine", "spindle"):
            raise ValueError(f"schedule must be 'log_linear', 'linear', 'cosine' or 'spindle', got {schedule!r}")
        network = DiffusionTransformer(vocab_size, max_len, dim, depth, heads, time_conditioning, dropout=dropout)
        base = "log_linear" if schedule == "spindle" else schedule
        super().__init__(
            network=network,
            process=MaskedDiffusion(vocab_size, mask_id, base, eps),
            prediction="x0",
            optimizer=optimizer,
            lr_scheduler=lr_scheduler,
            sampler=sampler,
            sample_steps=sample_steps,
            num_val_samples=num_val_samples,
        )
        self.vocab_size, self.mask_id, self.bos_id = vocab_size, mask_id, bos_id
        self.schedule, self.eps, self.spindle_lambda, self.cache = schedule, eps, spindle_lambda, cache
        self.val_draws = val_draws
        # training-set token counts (the spindle's word weights); saved with the checkpoint
        self.register_buffer("token_frequencies", torch.zeros(vocab_size, dtype=torch.float64))

    SPECIAL_IDS = ("mask_id", "bos_id")
    NLL_NAMES = ("nll_bound", "ppl_bound")

    # ------------------------------------------------------------------ process / tokenizer
    def special_ids_changed(self) -> None:
        base = "log_linear" if self.schedule == "spindle" else self.schedule
        self.process = MaskedDiffusion(self.vocab_size, self.mask_id, base, self.eps)
        self._build_spindle()

    def _build_spindle(self) -> None:
        if self.schedule == "spindle" and float(self.token_frequencies.sum()) > 0:
            self.process = SpindleMaskedDiffusion(
                self.token_frequencies.cpu(), self.spindle_lambda, mask_id=self.mask_id, eps=self.eps
            )

    def setup(self, stage: str) -> None:
        super().setup(stage)  # the tokenizer first (TokenizerMixin)
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        train_set = getattr(dm, "train_set", None)
        if self.schedule == "spindle" and float(self.token_frequencies.sum()) == 0:
            if train_set is None:
                raise ValueError(
                    "schedule='spindle' needs the training data's token counts (a datamodule with train_set)"
                )
            counts = torch.bincount(train_set.blocks.flatten(), minlength=self.vocab_size).double()
            counts[self.mask_id] = 0.0
            self.token_frequencies.copy_(counts[: self.vocab_size])
        self._build_spindle()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        freq = checkpoint.get("state_dict", {}).get("token_frequencies")
        if freq is not None:
            self.token_frequencies.copy_(freq)
            self._build_spindle()

    # ------------------------------------------------------------------ network
    def network_forward(self, x_t: Tensor, t: Tensor, batch: dict[str, Any] | None = None) -> Tensor:
        mask = batch.get("attention_mask") if batch is not None else None
        return self.network(x_t, t, mask)

    # ------------------------------------------------------------------ loss
    def corrupt(self, x0: Tensor, t: Tensor, generator, attention_mask: Tensor | None = None) -> Tensor:
        if isinstance(self.process, SpindleMaskedDiffusion):
            return self.process.sample_marginal(x0, t, generator, attention_mask=attention_mask)
        return self.process.sample_marginal(x0, t, generator)

    def training_loss(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> Tensor:
        x0 = batch["x0"]
        am = batch.get("attention_mask")
        t = antithetic_times(x0.shape[0], generator, eps=self.eps, device=x0.device)
        x_t = self.corrupt(x0, t, generator, am)
        logits = self.network_forward(x_t, t, batch)
        return masked_diffusion_loss(logits, x0, x_t, t, self.process, am)

    def bound_time(self, u: Tensor) -> Tensor:
        """The time of the bound at ``u`` in [0, 1): ``eps + (1 - eps) u``."""
        return self.eps + (1 - self.eps) * u

    def bound_terms(self, x0: Tensor, am: Tensor, t: Tensor, generator) -> Tensor:
        """NELBO terms (B, L) of blocks ``x0`` at times ``t`` (B,), [BOS] given (its term is 0)."""
        keep = torch.zeros_like(x0, dtype=torch.bool)
        keep[:, 0] = True
        x_t = torch.where(keep, x0, self.corrupt(x0, t, generator, am))
        logits = self.network(x_t, t, am)
        return masked_diffusion_loss(logits, x0, x_t, t, self.process, am, reduction="none")

    @torch.no_grad()
    def nelbo_sum(self, x0: Tensor, attention_mask: Tensor | None, u: Tensor, generator=None) -> Tensor:
        """Summed NELBO (nats) of tokens 1..L-1 of each block ``x0`` (B, L) at the times of ``u`` (B,)
        in [0, 1) (:meth:`bound_time`), shape (B,); one noise draw per block."""
        am = torch.ones_like(x0) if attention_mask is None else attention_mask
        t = self.bound_time(u.double()).to(device=x0.device, dtype=torch.float32)
        per = self.bound_terms(x0, am, t, generator)
        return per[:, 1:].double().sum(1)

    @torch.no_grad()
    def elbo_nll(
        self, x0: Tensor, attention_mask: Tensor | None = None, n_times: int = 8, generator=None
    ) -> tuple[float, int]:
        """``(summed NELBO over tokens 1..L-1, token count)`` of blocks ``x0`` (B, L), [BOS] given.

        ``n_times`` stratified times per block (``u = (U_k + k) / n_times``); exp(sum / count) bounds
        the perplexity from above.
        """
        am = torch.ones_like(x0) if attention_mask is None else attention_mask
        device = generator.device if generator is not None else x0.device
        total = 0.0
        for k in range(n_times):
            u = (torch.rand(x0.shape[0], generator=generator, dtype=torch.float64, device=device) + k) / n_times
            total += float(self.nelbo_sum(x0, am, u.to(x0.device), generator).sum())
        return total / n_times, int(am[:, 1:].sum())

    def held_out_nll(self, batch: dict[str, Any], generator: torch.Generator) -> tuple[float, int]:
        return self.elbo_nll(batch["x0"], batch.get("attention_mask"), self.val_draws, generator)

    # ------------------------------------------------------------------ sampling
    def model_fn(self):
        return lambda x_t, t: self.network(x_t, t)

    def start_tokens(
        self,
        num: int,
        length: int,
        prefix: Tensor | None,
        x: Tensor | None,
        keep_mask: Tensor | None,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """The sampler's start ``(x, keep_mask)``, both (num, length): the prior (drawn with
        ``generator`` where it is random) with [BOS] and the ``prefix`` given, or the infilling input
        ``x`` with its ``keep_mask`` (plus [BOS])."""
        if x is None:
            x = self.process.prior_sample((num, length), generator=generator, device=self.device)
            keep_mask = torch.zeros_like(x, dtype=torch.bool)
            if prefix is not None:
                p = prefix.to(self.device).expand(num, -1) if prefix.ndim == 1 else prefix.to(self.device)
                if p.shape[1] + 1 >= length:
                    raise ValueError(f"prefix of {p.shape[1]} tokens leaves nothing to generate in {length}")
                x[:, 1 : 1 + p.shape[1]] = p
                keep_mask[:, 1 : 1 + p.shape[1]] = True
        else:
            x = x.to(self.device)
            keep_mask = torch.zeros_like(x, dtype=torch.bool) if keep_mask is None else keep_mask.to(self.device)
        x[:, 0] = self.bos_id
        keep_mask = keep_mask.clone()
        keep_mask[:, 0] = True
        return x, keep_mask

    def run_discrete(
        self,
        x: Tensor,
        keep_mask: Tensor,
        steps: int | None,
        generator,
        callback,
        *,
        sampler: DiscreteSamplerName | None = None,
        **options: Any,
    ) -> SampleResult:
        """The module's discrete sampler (by name; ``sampler`` picks another of core's) from ``x`` on the
        process's default grid, in eval mode."""
        with eval_mode(self):
            return run_discrete_sampler(
                sampler or self.sampler_name,
                self.model_fn(),
                self.process,
                x,
                steps=steps or self.sample_steps,
                generator=generator,
                callback=callback,
                keep_mask=keep_mask,
                **options,
            )

    @torch.no_grad()
    def generate(
        self,
        num: int,
        length: int,
        *,
        steps: int | None = None,
        prefix: Tensor | None = None,
        x: Tensor | None = None,
        keep_mask: Tensor | None = None,
        generator: torch.Generator | None = None,
        callback=None,
        **options: Any,
    ) -> SampleResult:
        """Sample ``num`` blocks of ``length`` tokens starting with [BOS].

        Args:
            prefix: (P,) or (num, P) token ids given at positions 1..P (after [BOS]).
            x, keep_mask: infilling: ``x`` (num, length) with the given tokens where ``keep_mask`` is True.
            steps: sampler steps (default ``sample_steps``).
            options: the sampler's options, each defaulting to the module's (:meth:`generate_options`).
        """
        x, keep_mask = self.start_tokens(num, length, prefix, x, keep_mask, generator)
        return self.sample_tokens(x, keep_mask, steps, generator, callback, **options)

    def sample_tokens(
        self, x: Tensor, keep_mask: Tensor, steps: int | None, generator, callback, **options: Any
    ) -> SampleResult:
        """The module's sampler from the start ``(x, keep_mask)`` with :meth:`generate_options`."""
        return self.run_discrete(x, keep_mask, steps, generator, callback, **self.generate_options(**options))

    def generate_options(self, cache: bool | None = None) -> dict[str, Any]:
        """``cache`` (default the module's) for the ``masked`` sampler; no option for the others."""
        return {"cache": self.cache if cache is None else cache} if self.sampler_name == "masked" else {}

    def sample_for_validation(self, batch: dict[str, Any], generator: torch.Generator) -> SampleResult:
        return self.generate(self.num_val_samples, batch["x0"].shape[1], generator=generator)

    def sample_metrics(self, samples: Tensor, batch: dict[str, Any]) -> dict[str, Tensor | float]:
        rows = samples[:, 1:].tolist()
        return {"distinct_2": distinct_n(rows, 2), "rep_4": repetition_rate(rows, 4)}

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        x0 = batch["x0"]
        return self.generate(
            x0.shape[0], x0.shape[1], generator=self.noise_generator(NoiseStream.PREDICT, batch_idx)
        ).sample


__all__ = ["MaskedDiffusionLM"]
