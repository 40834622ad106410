r"""``difflab-text evaluate``: a trained model's perplexity (AR) or perplexity bound (diffusion) on a text file.

Blocks. The file's documents (one per non-empty line, or JSON lines ``{"text"}``) are tokenized
with the checkpoint's tokenizer and packed as in training (MDLM's wrapping): documents joined with
[EOS], cut into ``block_size - 2`` tokens, each block ``[BOS] ... [EOS]``; ``block_size`` is the
training data's (kept in the checkpoint). The tokens left after the last whole block form one
shorter block, padded (attention mask 0), so every token of the file is scored and a file shorter
than one block is one short block. Tokens ``1..L-1`` of each block are scored ([BOS] is given).

AR baseline: the exact negative log-likelihood, perplexity ``exp(NLL / tokens)``.

Masked diffusion (MDLM) and GIDD: the negative ELBO (MDLM Eq. 10; GIDD's unweighted ELBO), the
field's bound on the NLL. One draw of the estimator gives every block one time and one corruption,
the times stratified over the whole file, ``t_i = eps + (1 - eps) ((U + i / M) mod 1)`` for block
``i`` of ``M`` (MDLM's antithetic sampling, an unbiased estimate of the bound with low variance);
``draws`` independent draws are averaged and their spread gives the standard error of the mean.
The result is the bound per token and ``exp`` of it, an upper bound on the perplexity.

DiffuSeq (seq2seq in embedding space) is refused, in one line, and scored by BLEU with ``seq2seq``.
Its probability-flow ODE would give a density of the target's *continuous embeddings* given the
source, not a likelihood of its tokens: the number moves with the scale and dimension of the learned
embeddings (shrinking them raises it without changing a single generated token), so it could not sit
beside the perplexities and bounds above. A token bound would add the rounding term and the
dequantisation ``q(x | w) = N(E(w), s_1^2 I)`` (Diffusion-LM's ELBO), and the self-conditioned
sampler (each step reads the previous estimate) is not one ODE in ``(x, t)``; neither is built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from difflab.core.errors import UserError
from difflab.core.progress import progress
from difflab.text.data.text import Document, read_documents


@dataclass(frozen=True)
class Evaluation:
    """A model's score on a file: ``nll`` nats per token (the bound for diffusion models), its
    standard error over ``draws`` (0 for the exact AR value, NaN for one draw), ``tokens`` scored
    in ``blocks`` blocks of ``block_size`` (the last ``short`` of them shorter)."""

    method: str
    exact: bool
    nll: float
    stderr: float
    draws: int
    tokens: int
    blocks: int
    block_size: int
    short: int

    @property
    def perplexity(self) -> float:
        return math.exp(min(self.nll, 700.0))

    def line(self, source: str) -> str:
        where = f"{self.tokens} tokens of {source} in {self.blocks} blocks of {self.block_size}"
        if self.short:
            where += " (the last one shorter)"
        if self.exact:
            return f"{self.method}: perplexity {self.perplexity:.2f} (exact NLL {self.nll:.4f} nats/token), {where}"
        spread = "one draw, no standard error" if self.draws == 1 else f"standard error {self.stderr:.4f}"
        return (
            f"{self.method}: perplexity <= {self.perplexity:.2f} (NELBO bound {self.nll:.4f} nats/token, "
            f"mean of {self.draws} draws, {spread}), {where}"
        )


def evaluation_blocks(docs: list[Document], tok, block_size: int) -> tuple[Tensor, Tensor, int]:
    """``(blocks (M, block_size), attention mask, number of short blocks)`` of the documents (see the module doc)."""
    inner = block_size - 2
    stream: list[int] = []
    for ids in tok.encode_batch([d.text for d in docs]):
        stream += [*ids, tok.eos_id]
    rows, masks = [], []
    for start in range(0, len(stream), inner):
        chunk = [tok.bos_id, *stream[start : start + inner], tok.eos_id]
        masks.append([1] * len(chunk) + [0] * (block_size - len(chunk)))
        rows.append(chunk + [tok.pad_id] * (block_size - len(chunk)))
    short = int(len(stream) % inner != 0)
    return torch.tensor(rows, dtype=torch.long), torch.tensor(masks, dtype=torch.long), short


def _batches(blocks: Tensor, mask: Tensor, batch_size: int):
    for i in range(0, blocks.shape[0], batch_size):
        yield i, blocks[i : i + batch_size], mask[i : i + batch_size]


def _draw_totals(model, blocks: Tensor, mask: Tensor, draws: int, batch_size: int, seed: int, desc: str):
    """Summed NELBO of all blocks for each of ``draws`` independent stratified draws, shape (draws,)."""
    from difflab.text.models import ARLanguageModel

    n_batches = math.ceil(blocks.shape[0] / batch_size)
    exact = isinstance(model, ARLanguageModel)
    runs = 1 if exact else draws
    g = torch.Generator().manual_seed(seed)
    offsets = torch.rand(runs, generator=g, dtype=torch.float64)
    totals = torch.zeros(runs, dtype=torch.float64)
    work = ((k, b) for k in range(runs) for b in _batches(blocks, mask, batch_size))
    for k, (i, x0, am) in progress(work, desc, total=runs * n_batches, unit="batches"):
        x0, am = x0.to(model.device), am.to(model.device)
        if exact:
            totals[k] += model.exact_nll(x0, am)[0]
            continue
        index = torch.arange(i, i + x0.shape[0], dtype=torch.float64)
        u = (offsets[k] + index / blocks.shape[0]) % 1.0
        totals[k] += float(model.nelbo_sum(x0, am, u.to(model.device), g).sum())
    return totals, exact


def evaluate_model(model, docs: list[Document], *, draws: int, batch_size: int, block_size: int, seed: int, desc: str):
    """The :class:`Evaluation` of ``model`` (AR, MDLM or GIDD) on the documents."""
    blocks, mask, short = evaluation_blocks(docs, model.tokenizer, block_size)
    tokens = int(mask[:, 1:].sum())
    totals, exact = _draw_totals(model, blocks, mask, draws, batch_size, seed, desc)
    per_token = totals / tokens
    stderr = 0.0 if exact else float(per_token.std() / math.sqrt(draws)) if draws > 1 else math.nan
    method = type(model).__name__
    return Evaluation(method, exact, float(per_token.mean()), stderr, 1 if exact else draws, tokens, *mask.shape, short)


def _block_size(model, block_size: int | None) -> int:
    max_len = int(model.network.max_len)
    if block_size is None:
        return int(model.data_block_size or max_len)
    if block_size > max_len:
        raise UserError(f"--block_size {block_size}: the model was trained for blocks of at most {max_len} tokens")
    return block_size


def evaluate(
    file: Path,
    ckpt: str | Path,
    *,
    encoding: str = "utf-8",
    draws: int = 8,
    batch_size: int = 32,
    block_size: int | None = None,
    seed: int = 0,
) -> int:
    """Print the perplexity (AR) or the NELBO bound and its perplexity (MDLM, GIDD) of ``ckpt`` on ``file``."""
    from difflab.text.inference import load_text_model
    from difflab.text.models import GIDDLM, ARLanguageModel, MaskedDiffusionLM

    docs = read_documents(file, encoding)  # decoding errors first, before the model is loaded
    model = load_text_model(ckpt)
    if not isinstance(model, (MaskedDiffusionLM, GIDDLM, ARLanguageModel)):
        raise UserError(
            f"{ckpt}: a {type(model).__name__} checkpoint (seq2seq in continuous embeddings) has no token "
            "likelihood: its probability-flow density is over learned embedding vectors, whose scale sets the "
            "number, so it is not comparable to a perplexity; score it with `difflab-text seq2seq` (BLEU)"
        )
    size = _block_size(model, block_size)
    result = evaluate_model(
        model, docs, draws=draws, batch_size=batch_size, block_size=size, seed=seed, desc=f"evaluate {file.name}"
    )
    print(result.line(str(file)))
    return 0


__all__ = ["Evaluation", "evaluate", "evaluate_model", "evaluation_blocks"]
