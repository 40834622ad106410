r"""Autoregressive transformer language model: the baseline and the generative-perplexity scorer.

Next-token cross-entropy on the same blocks and tokenizer as the diffusion models; the first token
([BOS]) is given, so :meth:`ARLanguageModel.exact_nll` scores tokens ``1..L-1`` exactly like
:meth:`MaskedDiffusionLM.elbo_nll <difflab.text.models.mdlm.MaskedDiffusionLM.elbo_nll>`.

Batch: ``x0`` (B, L) long, ``attention_mask`` (B, L).
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor

from difflab.core.lightning import TrainedModule, eval_mode
from difflab.text.metrics import ar_nll
from difflab.text.models.base import HeldOutNLL, TokenizerMixin
from difflab.text.networks.transformer import ARTransformer


class ARLanguageModel(HeldOutNLL, TokenizerMixin, TrainedModule):
    """Causal transformer LM of the same size as the denoiser.

    Validation and test report the exact NLL per token of the held-out blocks over the epoch,
    ``nll`` (tokens after [BOS]), and the perplexity ``ppl = exp(nll)``.

    Args:
        vocab_size: V.
        max_len, dim, depth, heads, dropout: transformer size.
        bos_id: id of [BOS] (the given first token when generating).
        optimizer, lr_scheduler: optimiser factories.
    """

    def __init__(
        self,
        vocab_size: int = 1024,
        max_len: int = 128,
        dim: int = 128,
        depth: int = 4,
        heads: int = 4,
        dropout: float = 0.0,
        bos_id: int = 2,
        optimizer: OptimizerCallable = torch.optim.AdamW,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__(optimizer, lr_scheduler)
        self.save_init_hyperparameters()
        self.network = ARTransformer(vocab_size, max_len, dim, depth, heads, dropout)
        self.vocab_size, self.bos_id, self.mask_id = vocab_size, bos_id, None

    SPECIAL_IDS = ("bos_id",)

    def forward(self, x: Tensor) -> Tensor:
        return self.network(x)

    def loss(self, batch: dict[str, Any]) -> Tensor:
        x0 = batch["x0"]
        logits = self.network(x0)[:, :-1]
        target = x0[:, 1:]
        am = batch.get("attention_mask")
        nll = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="none"
        )
        if am is None:
            return nll.mean()
        m = am[:, 1:].reshape(-1).to(nll.dtype)
        return (nll * m).sum() / m.sum().clamp_min(1.0)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        loss = self.loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["x0"].shape[0])
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        loss = self.loss(batch)
        self.log("val/loss", loss, prog_bar=True, batch_size=batch["x0"].shape[0])
        self._add_held_out(batch, batch_idx, "val")
        return loss

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        loss = self.loss(batch)
        self.log("test/loss", loss, batch_size=batch["x0"].shape[0])
        self._add_held_out(batch, batch_idx, "test")
        return loss

    def held_out_nll(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> tuple[float, int]:
        """The exact ``(summed NLL, count)`` of the batch's tokens after [BOS] (no noise)."""
        return self.exact_nll(batch["x0"], batch.get("attention_mask"))

    def exact_nll(self, x0: Tensor, attention_mask: Tensor | None = None) -> tuple[float, int]:
        """``(summed NLL of tokens 1..L-1, count)`` under the model (eval mode)."""
        with eval_mode(self):
            return ar_nll(
                self.network, x0.to(self.device), None if attention_mask is None else attention_mask.to(self.device)
            )

    @torch.no_grad()
    def generate(self, num: int, length: int, prefix: Tensor | None = None, generator=None) -> Tensor:
        """``num`` blocks of ``length`` tokens: [BOS] (+ prefix) then ancestral sampling."""
        start = torch.full((num, 1), self.bos_id, dtype=torch.long, device=self.device)
        if prefix is not None:
            p = prefix.to(self.device).expand(num, -1) if prefix.ndim == 1 else prefix.to(self.device)
            start = torch.cat([start, p], 1)
        with eval_mode(self):
            return self.network.generate(start, length, generator=generator)

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        x0 = batch["x0"]
        return self.generate(x0.shape[0], x0.shape[1])


__all__ = ["ARLanguageModel"]
