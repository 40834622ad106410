"""What the text models share: the tokenizer kept with the checkpoint and the checks against the data.

The data decides the vocabulary: the command line links the data module's tokenizer size into
``vocab_size`` (:data:`difflab.text.cli.LINKS`), the model takes the tokenizer's special-token ids,
and a checkpoint restored onto data tokenized otherwise is refused (one line naming both).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from difflab.core.errors import UserError
from difflab.core.lightning import NoiseStream
from difflab.text.tokenizer import TextTokenizer


class TokenizerMixin:
    """Keeps the data module's tokenizer with the model and checks it against the model.

    At ``setup`` the tokenizer of ``trainer.datamodule`` is taken over: its vocabulary must fit
    ``vocab_size`` and the model takes its special-token ids (``SPECIAL_IDS``, recorded in the
    hyper-parameters). It is written to every checkpoint under ``"difflab_tokenizer"`` (with the data's block
    length under ``"difflab_text"``) so ``generate`` / ``evaluate`` / ``seq2seq`` need only the
    checkpoint; a checkpoint restored by ``fit`` / ``validate`` / ``test`` must carry the data's tokenizer.

    The mixin's ``setup``, ``on_save_checkpoint`` and ``on_load_checkpoint`` run the LightningModule's
    hook first (``super()``), then the tokenizer's part; a model that keeps more extends them.
    """

    SPECIAL_IDS: tuple[str, ...] = ()
    """The special-token ids the model is built with (``mask_id``, ``bos_id``, ...), as tokenizer attributes."""

    tokenizer: TextTokenizer | None = None
    data_block_size: int | None = None
    vocab_size: int
    mask_id: int | None = None

    def attach_tokenizer(self, tok: TextTokenizer) -> None:
        if tok.vocab_size > self.vocab_size:
            raise UserError(
                f"{tok.source}: the tokenizer has {tok.vocab_size} tokens but the model was built for vocab_size="
                f"{self.vocab_size} (--model.init_args.vocab_size); give a tokenizer of at most {self.vocab_size} "
                "tokens (--data.init_args.tokenizer)"
            )
        changed = [name for name in self.SPECIAL_IDS if getattr(tok, name) != getattr(self, name)]
        for name in changed:  # the tokenizer decides; a restored checkpoint must carry this tokenizer
            setattr(self, name, getattr(tok, name))
            self.hparams[name] = getattr(tok, name)  # type: ignore[attr-defined]
            initial = getattr(self, "_hparams_initial", None)
            if initial is not None:  # what the loggers record
                initial[name] = getattr(tok, name)
        if changed:
            self.special_ids_changed()
        self.tokenizer = tok

    def special_ids_changed(self) -> None:
        """Rebuild what depends on the special-token ids (the masked process); called after a fresh model takes them."""

    def setup(self, stage: str) -> None:
        super().setup(stage)  # type: ignore[misc]
        self._setup_tokenizer()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)  # type: ignore[misc]
        self._save_tokenizer(checkpoint)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)  # type: ignore[misc]
        self._load_tokenizer(checkpoint)

    def _setup_tokenizer(self) -> None:
        trainer = getattr(self, "_trainer", None)
        dm = getattr(trainer, "datamodule", None) if trainer is not None else None
        if dm is not None and getattr(dm, "tokenizer", None) is None and hasattr(dm, "setup"):
            dm.setup()
        tok = getattr(dm, "tokenizer", None) if dm is not None else None
        if tok is not None:
            self.attach_tokenizer(tok)
        block, max_len = getattr(dm, "block_size", None), getattr(getattr(self, "network", None), "max_len", None)
        if isinstance(block, int) and isinstance(max_len, int) and block > max_len:
            raise UserError(
                f"--data.init_args.block_size {block}: longer than the model's max_len={max_len}; "
                f"set --model.init_args.max_len {block} or a smaller block_size"
            )
        if isinstance(block, int):
            self.data_block_size = block

    def _save_tokenizer(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["difflab_class"] = f"{type(self).__module__}.{type(self).__qualname__}"
        if self.tokenizer is not None:
            checkpoint["difflab_tokenizer"] = self.tokenizer.to_str()
        checkpoint["difflab_text"] = {"block_size": self.data_block_size}

    def _load_tokenizer(self, checkpoint: dict[str, Any]) -> None:
        text = checkpoint.get("difflab_tokenizer")
        if text:
            saved = TextTokenizer.from_str(text, "<checkpoint>")
            if self.tokenizer is not None and not saved.same_as(self.tokenizer):
                raise UserError(_other_tokenizer(saved, self.tokenizer))
            self.tokenizer = saved
        block = (checkpoint.get("difflab_text") or {}).get("block_size")
        if block is not None:
            self.data_block_size = int(block)


def _other_tokenizer(saved: TextTokenizer, data: TextTokenizer) -> str:
    """The one-line error for a checkpoint restored onto data tokenized by another tokenizer."""
    if saved.vocab_size != data.vocab_size:
        what = f"a tokenizer of {saved.vocab_size} tokens, the data's ({data.source}) has {data.vocab_size}"
    else:
        what = f"another tokenizer than the data's ({data.source}; both have {data.vocab_size} tokens)"
    return (
        f"--ckpt_path: the checkpoint was trained with {what}; give the data the checkpoint's tokenizer "
        "(--data.init_args.tokenizer CHECKPOINT), or train on this data in a new run"
    )


class HeldOutNLL:
    """Validation and test report the per-token NLL of the held-out blocks over the whole epoch and
    its perplexity, as ``<stage>/<NLL_NAMES[0]>`` (nats per token) and ``<stage>/<NLL_NAMES[1]>``.

    A model gives ``held_out_nll(batch, generator) -> (summed NLL, token count)`` (the exact NLL, or a
    bound averaged over several noise draws); the sums of all batches (and devices) are divided once
    at the end of the epoch, so the perplexity is ``exp`` of the epoch's mean, not a mean of ``exp``.
    """

    NLL_NAMES: tuple[str, str] = ("nll", "ppl")

    def held_out_nll(self, batch: dict[str, Any], generator: torch.Generator) -> tuple[float, int]:
        raise NotImplementedError

    def _add_held_out(self, batch: dict[str, Any], batch_idx: int, stage: str) -> None:
        stream = NoiseStream.VAL if stage == "val" else NoiseStream.TEST
        total, count = self.held_out_nll(batch, self.noise_generator(stream, batch_idx, 1))  # type: ignore[attr-defined]
        sums = self.__dict__.setdefault("_held_out_sums", {})
        done = sums.get(stage, (0.0, 0))
        sums[stage] = (done[0] + total, done[1] + count)

    def _log_held_out(self, stage: str) -> None:
        total, count = self.__dict__.setdefault("_held_out_sums", {}).pop(stage, (0.0, 0))
        both = torch.tensor([total, float(count)], dtype=torch.float64, device=self.device)  # type: ignore[attr-defined]
        both = self.trainer.strategy.reduce(both, reduce_op="sum")  # type: ignore[attr-defined]
        if float(both[1]) <= 0:
            return
        nll = float(both[0] / both[1])
        self.log(f"{stage}/{self.NLL_NAMES[0]}", nll)  # type: ignore[attr-defined]
        self.log(f"{stage}/{self.NLL_NAMES[1]}", math.exp(min(nll, 700.0)))  # type: ignore[attr-defined]

    def on_validation_epoch_start(self) -> None:
        self.__dict__.setdefault("_held_out_sums", {}).pop("val", None)

    def on_test_epoch_start(self) -> None:
        self.__dict__.setdefault("_held_out_sums", {}).pop("test", None)

    def validation_step(self, batch: dict[str, Any], batch_idx: int):
        loss = super().validation_step(batch, batch_idx)  # type: ignore[misc]
        self._add_held_out(batch, batch_idx, "val")
        return loss

    def test_step(self, batch: dict[str, Any], batch_idx: int):
        loss = super().test_step(batch, batch_idx)  # type: ignore[misc]
        self._add_held_out(batch, batch_idx, "test")
        return loss

    def on_validation_epoch_end(self) -> None:
        self._log_held_out("val")

    def on_test_epoch_end(self) -> None:
        self._log_held_out("test")
