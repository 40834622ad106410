"""What the text models share: the tokenizer kept with the checkpoint and the vocabulary checks."""

from __future__ import annotations

from typing import Any

from difflab.core.errors import UserError
from difflab.text.tokenizer import TextTokenizer


class TokenizerMixin:
    """Keeps the data module's tokenizer with the model and checks it against the model's vocabulary.

    At ``setup`` the tokenizer of ``trainer.datamodule`` is taken over (its vocabulary must fit
    ``vocab_size`` and its special-token ids must equal the model's); it is written to every
    checkpoint under ``"difflab_tokenizer"`` so ``generate`` / ``seq2seq`` need only the checkpoint.
    """

    tokenizer: TextTokenizer | None = None
    vocab_size: int
    mask_id: int | None = None

    def attach_tokenizer(self, tok: TextTokenizer) -> None:
        if tok.vocab_size > self.vocab_size:
            raise UserError(
                f"{tok.source}: the tokenizer has {tok.vocab_size} tokens but the model was built for vocab_size="
                f"{self.vocab_size}; set --model.init_args.vocab_size {tok.vocab_size}"
            )
        if self.mask_id is not None and tok.mask_id != self.mask_id:
            raise UserError(
                f"{tok.source}: [MASK] has id {tok.mask_id} but the model uses mask_id={self.mask_id}; "
                f"set --model.init_args.mask_id {tok.mask_id}"
            )
        self.tokenizer = tok

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

    def _save_tokenizer(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["difflab_class"] = f"{type(self).__module__}.{type(self).__qualname__}"
        if self.tokenizer is not None:
            checkpoint["difflab_tokenizer"] = self.tokenizer.to_str()

    def _load_tokenizer(self, checkpoint: dict[str, Any]) -> None:
        if checkpoint.get("difflab_tokenizer"):
            self.tokenizer = TextTokenizer.from_str(checkpoint["difflab_tokenizer"], "<checkpoint>")
