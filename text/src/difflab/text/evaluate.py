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

DiffuSeq (seq2seq in embedding space) is scored on a JSON-lines file of ``{"src", "trg"}`` pairs
(the ``seq2seq`` verb's format; a plain-text file is a one-line error, as are pairs given to a
language model). A probability-flow density of the target's continuous embeddings alone is no token
likelihood (shrinking the embeddings raises it without changing a token); the number reported is the
variational-dequantisation bound of :mod:`difflab.text.likelihood`,
``-log P(w | src) <= E_q[-log p_theta(x | src) - log p(w | x) + log q(x | w)]`` with
``q(x | w) = N(E(w), s_1^2 I)``, on every target padded to the training data's target length
(``--block_size`` overrides it), per target token (the text's tokens and its [EOS]; the [PAD] tail's
cost is included in the numerator). Each of ``draws`` draws takes one ``x ~ q`` per target and one
set of Hutchinson probes; ``steps`` RK4 steps (16) with ``probes`` probes (1) cost ``4 steps``
decoder evaluations with a backward pass each, per batch and draw.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from difflab.core.errors import UserError
from difflab.core.progress import progress
from difflab.text.data.text import Document, decoded_lines, iter_documents, read_pairs


@dataclass(frozen=True)
class Evaluation:
    """A model's score on a file: ``nll`` nats per token (the bound for diffusion models), its
    standard error over ``draws`` (0 for the exact AR value, NaN for one draw), ``tokens`` scored
    in ``blocks`` blocks of ``block_size`` (``short`` of them shorter; ``of`` blocks in the file when only
    ``blocks`` evenly spaced ones were scored); with ``seq2seq``
    the blocks are the targets of ``blocks`` pairs, padded to ``block_size`` positions."""

    method: str
    exact: bool
    nll: float
    stderr: float
    draws: int
    tokens: int
    blocks: int
    block_size: int
    short: int
    seq2seq: bool = False
    of: int | None = None

    @property
    def perplexity(self) -> float:
        return math.exp(min(self.nll, 700.0))

    def line(self, source: str) -> str:
        where = f"{self.tokens} tokens of {source} in {self.blocks} blocks of {self.block_size}"
        if self.of is not None and self.of > self.blocks:
            where = (
                f"{self.tokens} tokens of {source} in {self.blocks} evenly spaced of its {self.of} blocks of "
                f"{self.block_size}"
            )
        if self.seq2seq:
            where = f"{self.tokens} target tokens of {source} in {self.blocks} pairs (targets of {self.block_size})"
        if self.short:
            where += " (the last one shorter)"
        if self.exact:
            return f"{self.method}: perplexity {self.perplexity:.2f} (exact NLL {self.nll:.4f} nats/token), {where}"
        spread = "one draw, no standard error" if self.draws == 1 else f"standard error {self.stderr:.4f}"
        return (
            f"{self.method}: perplexity <= {self.perplexity:.2f} (NELBO bound {self.nll:.4f} nats/token, "
            f"mean of {self.draws} draws, {spread}), {where}"
        )


CHUNK_DOCS = 1024
"""Documents tokenized per call of the tokenizer while a file is streamed."""


def token_pieces(docs: Iterable[Document], tok, chunk: int = CHUNK_DOCS) -> Iterator[list[int]]:
    """The evaluation token stream (each document's ids followed by [EOS]) in pieces, tokenizing
    ``chunk`` documents at a time: memory is one chunk, whatever the number of documents."""
    texts: list[str] = []

    def piece() -> list[int]:
        out: list[int] = []
        for ids in tok.encode_batch(texts):
            out += [*ids, tok.eos_id]
        return out

    for d in docs:
        texts.append(d.text)
        if len(texts) == chunk:
            yield piece()
            texts = []
    if texts:
        yield piece()


def block_rows(pieces: Iterable[list[int]], inner: int) -> Iterator[list[int]]:
    """The stream of ``pieces`` cut into rows of ``inner`` tokens (the last one shorter when the stream
    is not a multiple of ``inner``), holding one piece and one row at a time."""
    carry: list[int] = []
    for piece in pieces:
        carry += piece
        start = 0
        while len(carry) - start >= inner:
            yield carry[start : start + inner]
            start += inner
        carry = carry[start:]
    if carry:
        yield carry


def _framed(rows: Sequence[list[int]], tok, block_size: int) -> tuple[Tensor, Tensor]:
    """``[BOS] row [EOS] [PAD]...`` blocks (len(rows), block_size) and their attention mask."""
    x0 = torch.full((len(rows), block_size), tok.pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), block_size), dtype=torch.long)
    for r, row in enumerate(rows):
        chunk = [tok.bos_id, *row, tok.eos_id]
        x0[r, : len(chunk)] = torch.tensor(chunk, dtype=torch.long)
        mask[r, : len(chunk)] = 1
    return x0, mask


def evaluation_blocks(docs: Iterable[Document], tok, block_size: int) -> tuple[Tensor, Tensor, int]:
    """``(blocks (M, block_size), attention mask, number of short blocks)`` of the documents (see the module
    doc), all in memory: for small inputs and tests; :func:`evaluate_model` streams."""
    rows = list(block_rows(token_pieces(docs, tok), block_size - 2))
    x0, mask = _framed(rows, tok, block_size)
    return x0, mask, int(bool(rows) and len(rows[-1]) < block_size - 2)


def stratum(i: int, total: int, kept: int) -> int | None:
    """Block ``i`` of ``total`` is scored when ``kept`` evenly spaced blocks (``floor(j total / kept)``,
    ``j < kept``) are: its ``j``, or None."""
    if kept >= total:
        return i
    j = -(-i * kept // total)
    return j if j < kept and j * total // kept == i else None


def stream_batches(docs: Iterable[Document], tok, block_size: int, batch_size: int, total: int, kept: int):
    """``(j (n,) float64, x0 (n, L), attention mask (n, L))`` batches of the scored blocks of a stream of
    ``total`` blocks (``kept`` of them, :func:`stratum`; ``j`` their stratum indices)."""
    rows: list[list[int]] = []
    index: list[int] = []
    for i, row in enumerate(block_rows(token_pieces(docs, tok), block_size - 2)):
        j = stratum(i, total, kept)
        if j is None:
            continue
        rows.append(row)
        index.append(j)
        if len(rows) == batch_size:
            yield (torch.tensor(index, dtype=torch.float64), *_framed(rows, tok, block_size))
            rows, index = [], []
    if rows:
        yield (torch.tensor(index, dtype=torch.float64), *_framed(rows, tok, block_size))


def _score_batches(model, batches, kept: int, draws: int, seed: int, total_batches: int, desc: str):
    """Summed NELBO of the scored blocks for each of ``draws`` independent draws (times stratified over
    the ``kept`` blocks), shape (draws,), the exact NLL (shape (1,)) for AR; and the tokens scored."""
    from difflab.text.models import ARLanguageModel

    exact = isinstance(model, ARLanguageModel)
    runs = 1 if exact else draws
    g = torch.Generator().manual_seed(seed)
    offsets = torch.rand(runs, generator=g, dtype=torch.float64)
    totals = torch.zeros(runs, dtype=torch.float64)
    tokens, short = 0, 0
    for j, x0, am in progress(batches, desc, total=total_batches, unit="batches"):
        x0, am = x0.to(model.device), am.to(model.device)
        tokens += int(am[:, 1:].sum())
        short += int((am.sum(1) < am.shape[1]).sum())
        if exact:
            totals[0] += model.exact_nll(x0, am)[0]
            continue
        for k in range(runs):
            u = (offsets[k] + j / kept) % 1.0
            totals[k] += float(model.nelbo_sum(x0, am, u.to(model.device), g).sum())
    return totals, exact, tokens, short


def evaluate_model(
    model,
    docs: Iterable[Document] | Callable[[], Iterable[Document]],
    *,
    draws: int,
    batch_size: int,
    block_size: int,
    seed: int,
    desc: str,
    max_blocks: int | None = None,
):
    """The :class:`Evaluation` of ``model`` (AR, MDLM or GIDD) on the documents.

    ``docs``: a list, or a function returning a fresh iterator over them (a file read lazily: it is read
    twice, once to count the blocks the stratified times need and once to score them; memory is one
    chunk of documents and one batch of blocks). ``max_blocks``: score only so many evenly spaced blocks
    (:func:`stratum`), an estimate of the whole file's value at a fraction of the cost.
    """
    source = docs if callable(docs) else (lambda: docs)
    inner = block_size - 2
    stream = sum(len(p) for p in token_pieces(source(), model.tokenizer))
    total = -(-stream // inner)
    if total == 0:
        raise UserError(f"{desc}: no text to score")
    kept = total if max_blocks is None else min(total, max_blocks)
    batches = stream_batches(source(), model.tokenizer, block_size, batch_size, total, kept)
    totals, exact, tokens, short = _score_batches(model, batches, kept, draws, seed, -(-kept // batch_size), desc)
    per_token = totals / tokens
    stderr = 0.0 if exact else float(per_token.std() / math.sqrt(draws)) if draws > 1 else math.nan
    method = type(model).__name__
    return Evaluation(
        method, exact, float(per_token.mean()), stderr, 1 if exact else draws, tokens, kept, block_size, short, of=total
    )


def _block_size(model, block_size: int | None) -> int:
    return _length(block_size, model.data_block_size, int(model.network.max_len), "blocks")


def _target_length(model, block_size: int | None) -> int:
    return _length(block_size, model.data_trg_len, int(model.network.max_trg_len), "targets")


def _length(asked: int | None, trained: int | None, max_len: int, what: str) -> int:
    """``--block_size`` if given (at most the network's ``max_len``), else the training data's length."""
    if asked is None:
        return int(trained or max_len)
    if asked > max_len:
        raise UserError(f"--block_size {asked}: the model was trained for {what} of at most {max_len} tokens")
    return asked


def seq2seq_targets(model, pairs: list[tuple[Document, Document]], trg_len: int) -> dict[str, Tensor]:
    """The pairs as a batch dict ``{"x0" (N, trg_len), "src", "src_mask" (N, Ls), "tokens" (N,)}``:
    targets ``trg [EOS] [PAD]...`` as in training, ``tokens`` the text's tokens and its [EOS]."""
    from difflab.text.data.seq2seq import encode_pairs

    max_src = int(model.network.max_src_len)
    fix = f"the model takes sources of at most {max_src} tokens, and --block_size sets the targets' length"
    src, src_mask, trg = encode_pairs(
        model.tokenizer, [p[0] for p in pairs], [p[1] for p in pairs], max_src, trg_len, fix=fix
    )
    assert trg is not None
    tokens = (trg == model.tokenizer.eos_id).long().argmax(1) + 1
    return {"x0": trg, "src": src, "src_mask": src_mask, "tokens": tokens}


def evaluate_seq2seq(
    model, pairs, *, draws: int, batch_size: int, trg_len: int, steps: int, probes: int, seed: int, desc: str
) -> Evaluation:
    """The :class:`Evaluation` of a DiffuSeq on ``(src, trg)`` pairs: the mean over ``draws`` of the
    token bound (:meth:`~difflab.text.models.DiffuSeq.token_nll_bound`) summed over the targets,
    per target token, and its standard error over the draws."""
    data = seq2seq_targets(model, pairs, trg_len)
    n, tokens = data["x0"].shape[0], int(data["tokens"].sum())
    g = torch.Generator().manual_seed(seed)
    totals = torch.zeros(draws, dtype=torch.float64)
    work = ((k, i) for k in range(draws) for i in range(0, n, batch_size))
    for k, i in progress(work, desc, total=draws * math.ceil(n / batch_size), unit="batches"):
        batch = {key: data[key][i : i + batch_size].to(model.device) for key in ("x0", "src", "src_mask")}
        bound = model.token_nll_bound(batch, steps=steps, probes=probes, generator=g)
        totals[k] += float(bound.total.double().sum())
    per_token = totals / tokens
    stderr = float(per_token.std() / math.sqrt(draws)) if draws > 1 else math.nan
    return Evaluation(
        type(model).__name__, False, float(per_token.mean()), stderr, draws, tokens, n, trg_len, 0, seq2seq=True
    )


def _read_scored(file: Path, encoding: str) -> list | Callable[[], Iterator[Document]]:
    """The file's ``(src, trg)`` pairs when it is JSON lines whose first object has ``"src"``; otherwise
    a function streaming its documents (:func:`~difflab.text.data.text.iter_documents`), checked for the
    first document here (so an empty or undecodable start fails before the model is loaded)."""
    if file.suffix.lower() in (".jsonl", ".json"):
        first = next((raw for _, raw in decoded_lines(file, encoding) if raw.strip()), "")
        try:
            obj = json.loads(first)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and "src" in obj:
            return read_pairs(file, encoding)
    next(iter_documents(file, encoding))
    return lambda: iter_documents(file, encoding)


def evaluate(
    file: Path,
    ckpt: str | Path | None = None,
    *,
    encoding: str = "utf-8",
    draws: int = 8,
    batch_size: int = 32,
    block_size: int | None = None,
    seed: int = 0,
    steps: int = 16,
    probes: int = 1,
    max_blocks: int | None = None,
) -> int:
    """Print the perplexity (AR) or the NELBO bound and its perplexity (MDLM, GIDD, and DiffuSeq on
    ``{"src", "trg"}`` pairs with ``steps`` RK4 steps and ``probes`` Hutchinson probes) of ``ckpt`` on ``file``;
    a text file is streamed (:func:`evaluate_model`), ``max_blocks`` evenly spaced blocks of it when given."""
    from difflab.text.inference import load_text_model, resolve_checkpoint
    from difflab.text.models import GIDDLM, ARLanguageModel, DiffuSeq, MaskedDiffusionLM

    docs = _read_scored(file, encoding)  # an undecodable start fails first, before the model is loaded
    model = load_text_model(resolve_checkpoint(ckpt))
    pairs = isinstance(docs, list)
    if isinstance(model, DiffuSeq):
        if not pairs:
            raise UserError(
                f"{file}: text documents, but a DiffuSeq checkpoint is scored on source / target pairs: give "
                'JSON lines {"src": ..., "trg": ...} (the format of `difflab-text seq2seq`)'
            )
        result = evaluate_seq2seq(
            model,
            docs,
            draws=draws,
            batch_size=batch_size,
            trg_len=_target_length(model, block_size),
            steps=steps,
            probes=probes,
            seed=seed,
            desc=f"evaluate {file.name}",
        )
        print(result.line(str(file)))
        return 0
    if not isinstance(model, (MaskedDiffusionLM, GIDDLM, ARLanguageModel)):
        raise UserError(f"{ckpt}: a {type(model).__name__} checkpoint, which evaluate does not score")
    if pairs:
        raise UserError(
            f'{file}: source / target pairs {{"src", "trg"}}, but a {type(model).__name__} checkpoint is scored '
            'on text: give a plain-text file (one document per line) or JSON lines {"text": ...}'
        )
    size = _block_size(model, block_size)
    result = evaluate_model(
        model,
        docs,
        draws=draws,
        batch_size=batch_size,
        block_size=size,
        seed=seed,
        desc=f"evaluate {file.name}",
        max_blocks=max_blocks,
    )
    print(result.line(str(file)))
    return 0


__all__ = ["Evaluation", "evaluate", "evaluate_model", "evaluate_seq2seq", "evaluation_blocks", "seq2seq_targets"]
