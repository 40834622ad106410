r"""Text metrics: perplexities, diversity, and BLEU / ROUGE-L for sequence-to-sequence.

Perplexities (all in nats per token, ``PPL = exp(mean NLL)``):

* :func:`perplexity_from_nll` turns a summed negative log-likelihood (or a diffusion NELBO, which
  bounds it from above, so its PPL is an upper bound) and a token count into a perplexity.
* :func:`ar_nll` is the exact NLL of token blocks under an autoregressive model
  ``logits = model(x)`` (``logits[:, i]`` predicts ``x[:, i + 1]``); the first token ([BOS]) is
  given. :func:`generative_perplexity` is the same score applied to generated samples (MDLM's
  gen-PPL, here under the AR baseline trained on the same tokenizer, so no re-tokenisation).
* :func:`unigram_perplexity`: the baseline that knows only token frequencies (add-one smoothed
  counts from the training blocks).

Diversity: :func:`distinct_n` (Li et al. 2016: distinct n-grams / all n-grams over a set of
samples) and :func:`repetition_rate` (per sequence ``1 - unique n-grams / n-grams``, Welleck et al.
2019's seq-rep-n, averaged): degenerate samples have low distinct-n and high repetition.

Sequence to sequence, computed by the field's libraries (required dependencies of difflab-text):
:func:`corpus_bleu` (Papineni et al. 2002; corpus-level, 4-gram, brevity penalty, no smoothing) is
sacrebleu's ``BLEU`` with ``13a`` tokenisation (or ``none`` on pre-tokenised text);
:func:`sentence_bleu` and :func:`mbr_select` score with sacrebleu's add-one smoothed BLEU; and
:func:`rouge_l` is rouge-score's ROUGE-L F-measure (Lin 2004) averaged over pairs.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

# ------------------------------------------------------------------------------------ perplexity


def perplexity_from_nll(nll_sum: float | Tensor, n_tokens: float | Tensor) -> float:
    """``exp(nll_sum / n_tokens)``."""
    n = float(n_tokens)
    if n <= 0:
        raise ValueError(f"n_tokens must be > 0, got {n}")
    return math.exp(float(nll_sum) / n)


@torch.no_grad()
def ar_nll(model: Callable[[Tensor], Tensor], x: Tensor, attention_mask: Tensor | None = None) -> tuple[float, int]:
    """``(summed NLL, number of predicted tokens)`` of ``x`` (B, L) under an AR model.

    ``model(x)`` returns logits (B, L, V) where position ``i`` predicts token ``i + 1``. Tokens
    ``1..L-1`` are scored (where ``attention_mask`` is 1).
    """
    logits = model(x)[:, :-1].float()
    target = x[:, 1:]
    nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="none")
    m = torch.ones_like(target, dtype=torch.bool) if attention_mask is None else attention_mask[:, 1:].bool()
    nll = nll.view_as(target)[m]
    return float(nll.sum()), int(m.sum())


def generative_perplexity(model: Callable[[Tensor], Tensor], samples: Tensor, batch_size: int = 64) -> float:
    """Perplexity of generated token blocks (B, L) under the AR scorer (first token given)."""
    total, count = 0.0, 0
    for i in range(0, samples.shape[0], batch_size):
        s, n = ar_nll(model, samples[i : i + batch_size])
        total, count = total + s, count + n
    return perplexity_from_nll(total, count)


def unigram_perplexity(
    train_tokens: Tensor, eval_tokens: Tensor, vocab_size: int, exclude: Sequence[int] = ()
) -> float:
    """Perplexity of ``eval_tokens`` under add-one smoothed unigram counts of ``train_tokens``.

    Tokens in ``exclude`` (e.g. [PAD], [MASK]) are neither counted nor scored.
    """
    counts = torch.bincount(train_tokens.flatten(), minlength=vocab_size).double() + 1.0
    keep = torch.ones(vocab_size, dtype=torch.bool)
    for i in exclude:
        keep[i] = False
    counts = counts * keep
    logp = torch.log(counts / counts.sum())
    ev = eval_tokens.flatten()
    ev = ev[keep[ev]]
    return perplexity_from_nll(float(-logp[ev].sum()), ev.numel())


def shuffle_tokens(x: Tensor, generator: torch.Generator | None = None, keep_first: int = 1) -> Tensor:
    """Each row of ``x`` (B, L) with its tokens after the first ``keep_first`` randomly permuted.

    The shuffled-token baseline: the same unigram statistics as real text, no word order.
    """
    out = x.clone()
    for b in range(x.shape[0]):
        perm = torch.randperm(x.shape[1] - keep_first, generator=generator) + keep_first
        out[b, keep_first:] = x[b, perm]
    return out


# ------------------------------------------------------------------------------------ diversity


def _ngrams(seq: Sequence, n: int) -> list[tuple]:
    return [tuple(seq[i : i + n]) for i in range(len(seq) - n + 1)]


def distinct_n(sequences: Sequence[Sequence], n: int = 2) -> float:
    """Distinct n-grams / all n-grams over all sequences (token ids or words); 0 if none."""
    grams = [g for s in sequences for g in _ngrams(list(s), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def sample_entropy(sequences: Sequence[Sequence]) -> float:
    r"""Mean over sequences of the entropy (nats) of each sequence's own token histogram,
    ``-sum_v c_v/n log(c_v/n)``: low when a sample repeats a few tokens (the entropy that MDLM's and
    ReMDM's authors report next to generative perplexity); at most ``log n`` for ``n`` tokens."""
    values = []
    for seq in sequences:
        counts = torch.tensor(list(Counter(seq).values()), dtype=torch.float64)
        if counts.numel() == 0:
            continue
        p = counts / counts.sum()
        values.append(float(-(p * p.log()).sum()))
    return sum(values) / len(values) if values else 0.0


def repetition_rate(sequences: Sequence[Sequence], n: int = 4) -> float:
    """Mean over sequences of ``1 - unique n-grams / n-grams`` within the sequence (seq-rep-n)."""
    rates = []
    for s in sequences:
        g = _ngrams(list(s), n)
        if g:
            rates.append(1.0 - len(set(g)) / len(g))
    return sum(rates) / len(rates) if rates else 0.0


# ------------------------------------------------------------------------------------ BLEU


def _sacrebleu():
    try:
        import sacrebleu
    except ImportError as err:  # pragma: no cover - a required dependency of difflab-text
        raise ImportError("BLEU needs sacrebleu: pip install 'sacrebleu>=2.4,<3'") from err
    return sacrebleu


@functools.lru_cache(maxsize=1)
def _tokenizer_13a() -> Callable[[str], str]:
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    _sacrebleu()
    return Tokenizer13a()


def tokenize_13a(line: str) -> str:
    """sacrebleu's default ``13a`` tokenisation (mteval-v13a): punctuation split off, symbols spaced."""
    return _tokenizer_13a()(line)


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str], tokenize: str = "13a", max_n: int = 4) -> float:
    """Corpus BLEU in [0, 100] with one reference per hypothesis: sacrebleu's ``BLEU`` without smoothing.

    ``BLEU = BP exp(mean_n log p_n)``, ``p_n`` the clipped n-gram precision summed over the corpus,
    ``BP = min(1, exp(1 - r / c))`` with ``r``, ``c`` the total reference and hypothesis lengths; 0
    when some order has no match. ``tokenize``: ``13a`` or ``none`` (split on whitespace only).
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    if tokenize not in ("13a", "none"):
        raise ValueError(f"tokenize must be '13a' or 'none', got {tokenize!r}")
    bleu = _sacrebleu().metrics.BLEU(tokenize=tokenize, smooth_method="none", max_ngram_order=max_n)
    return float(bleu.corpus_score(list(hypotheses), [list(references)]).score)


def _bleu_counts(text: str, max_n: int = 4) -> tuple[int, list[Counter]]:
    """13a token count and the n-gram counts (n = 1..max_n) of one sentence."""
    words = tokenize_13a(text).split()
    return len(words), [Counter(_ngrams(words, n)) for n in range(1, max_n + 1)]


def _clipped_matches(a: list[Counter], b: list[Counter]) -> list[int]:
    """Clipped n-gram matches per order; symmetric in ``a`` and ``b``."""
    return [sum(min(c, cb[g]) for g, c in ca.items()) for ca, cb in zip(a, b, strict=True)]


def _sentence_bleu_from(hyp_len: int, ref_len: int, matches: Sequence[int]) -> float:
    """Add-one smoothed sentence BLEU from the lengths and the clipped matches (see :func:`sentence_bleu`),
    by sacrebleu's ``BLEU.compute_bleu``."""
    if not hyp_len or not ref_len or not matches[0]:
        return 0.0
    max_n = len(matches)
    totals = [max(hyp_len - n + 1, 0) for n in range(1, max_n + 1)]
    score = _sacrebleu().metrics.BLEU.compute_bleu(
        list(matches), totals, hyp_len, ref_len, smooth_method="add-k", smooth_value=1, max_ngram_order=max_n
    )
    return float(score.score)


def sentence_bleu(hypothesis: str, reference: str, max_n: int = 4) -> float:
    """Sentence BLEU in [0, 100] with add-one smoothing of the n > 1 precisions (Lin & Och 2004).

    13a tokens, every order counted (no effective order), as sacrebleu's
    ``BLEU(smooth_method="add-k", smooth_value=1)``; used as the utility of minimum-Bayes-risk
    selection (:func:`mbr_select`), where unsmoothed BLEU would be zero for most short pairs.
    """
    hl, hc = _bleu_counts(hypothesis, max_n)
    rl, rc = _bleu_counts(reference, max_n)
    return _sentence_bleu_from(hl, rl, _clipped_matches(hc, rc))


def mbr_select(candidates: Sequence[Sequence[str]]) -> list[str]:
    """Minimum-Bayes-risk choice among several outputs per source (DiffuSeq's MBR decoding).

    ``candidates[k][i]`` is draw ``k`` for source ``i``; for each source the draw with the highest
    mean sentence BLEU against the other draws is kept (the draws stand in for the model's output
    distribution). Ties keep the earlier draw. Returns one string per source.

    The scores are those of :func:`sentence_bleu`, computed with each draw tokenised once and the
    clipped matches of each pair counted once (they are symmetric; the brevity penalty and the
    precisions' denominators are not, so both directions are scored).
    """
    if not candidates:
        raise ValueError("mbr_select needs at least one set of candidates")
    n = len(candidates[0])
    if any(len(c) != n for c in candidates):
        raise ValueError(f"mbr_select: candidate sets differ in length: {[len(c) for c in candidates]}")
    out = []
    for i in range(n):
        hyps = [c[i] for c in candidates]
        stats = [_bleu_counts(h) for h in hyps]
        scores = [0.0] * len(hyps)
        for k in range(len(hyps)):
            for j in range(k + 1, len(hyps)):
                (lk, ck), (lj, cj) = stats[k], stats[j]
                m = _clipped_matches(ck, cj) if lk and lj else [0, 0, 0, 0]
                scores[k] += _sentence_bleu_from(lk, lj, m)
                scores[j] += _sentence_bleu_from(lj, lk, m)
        out.append(hyps[max(range(len(hyps)), key=lambda k: (scores[k], -k))])
    return out


def sacrebleu_score(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """``sacrebleu.corpus_bleu(hypotheses, [references]).score``: sacrebleu's defaults (``exp`` smoothing)."""
    return float(_sacrebleu().corpus_bleu(list(hypotheses), [list(references)]).score)


# ------------------------------------------------------------------------------------ ROUGE-L


@functools.lru_cache(maxsize=1)
def _rouge_l_scorer():
    try:
        from rouge_score.rouge_scorer import RougeScorer
    except ImportError as err:  # pragma: no cover - a required dependency of difflab-text
        raise ImportError("ROUGE-L needs rouge-score: pip install 'rouge-score>=0.1.2'") from err
    return RougeScorer(["rougeL"])


def rouge_l(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Mean ROUGE-L F1 (LCS-based; ``F = 2PR/(P+R)``) over pairs, in [0, 1]: rouge-score's ``rougeL``
    with its default tokenisation (lower case, runs of ``[a-z0-9]``, no stemming)."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    scorer = _rouge_l_scorer()
    scores = [scorer.score(r, h)["rougeL"].fmeasure for h, r in zip(hypotheses, references, strict=True)]
    return sum(scores) / len(scores) if scores else 0.0


__all__ = [
    "perplexity_from_nll",
    "ar_nll",
    "generative_perplexity",
    "unigram_perplexity",
    "shuffle_tokens",
    "distinct_n",
    "sample_entropy",
    "repetition_rate",
    "tokenize_13a",
    "corpus_bleu",
    "sacrebleu_score",
    "sentence_bleu",
    "mbr_select",
    "rouge_l",
]
