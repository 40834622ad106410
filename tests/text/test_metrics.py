"""Metrics against their reference implementations (sacrebleu, rouge-score) and closed forms."""

import math
import random

import pytest
import torch

from difflab.text import metrics as M

REFS = [
    "In the beginning God created the heaven and the earth.",
    "And the earth was without form, and void; and darkness was upon the face of the deep.",
    "And God said, Let there be light: and there was light.",
    "And God saw the light, that it was good: and God divided the light from the darkness.",
    "And God called the light Day, and the darkness he called Night.",
    "It costs $3.50 (about 4-5 euros) & that's \"fine\", isn't it?",
]


def _hyps():
    rnd = random.Random(0)
    out = []
    for i, r in enumerate(REFS):
        w = r.split()
        if i % 3 == 0:
            out.append(r.lower())
        elif i % 3 == 1:
            out.append(" ".join(rnd.sample(w, len(w))[:-2]))
        else:
            out.append(r.replace("light", "night") + " and more words here")
    return out


def test_bleu_matches_sacrebleu():
    sacrebleu = pytest.importorskip("sacrebleu")
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    hyps = _hyps()
    ref = sacrebleu.corpus_bleu(hyps, [REFS]).score
    assert M.corpus_bleu(hyps, REFS) == pytest.approx(ref, abs=1e-9)
    assert M.sacrebleu_score(hyps, REFS) == pytest.approx(ref, abs=1e-9)
    tok = Tokenizer13a()
    assert all(M.tokenize_13a(s) == tok(s) for s in REFS + hyps)
    pre = [tok(s) for s in hyps]
    assert M.corpus_bleu(pre, [tok(r) for r in REFS], tokenize="none") == pytest.approx(
        sacrebleu.corpus_bleu(pre, [[tok(r) for r in REFS]], tokenize="none").score, abs=1e-9
    )
    assert M.corpus_bleu(REFS, REFS) == pytest.approx(100.0)


def test_rouge_l_matches_rouge_score():
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
    sc = rouge_scorer.RougeScorer(["rougeL"])
    hyps = _hyps()
    ref = sum(sc.score(r, h)["rougeL"].fmeasure for h, r in zip(hyps, REFS)) / len(REFS)
    assert M.rouge_l(hyps, REFS) == pytest.approx(ref, abs=1e-12)


# the values of the hand-written BLEU / ROUGE-L that the library calls replaced (same cases as above)
OLD_CORPUS_BLEU = {"all": 58.53986394963634, "first3": 43.94144494852765, "none": 49.43262320332848}
OLD_SENTENCE_BLEU = [66.73543072574891, 27.233096682194237, 50.56233739478989, 76.0235283836325, 23.618189362022804]
OLD_ROUGE_L = [1.0, 0.5, 0.6923076923076923, 1.0, 0.3636363636363636, 0.8750000000000001]


def test_library_backed_bleu_and_rouge_keep_the_old_numbers():
    hyps = _hyps()
    assert M.corpus_bleu(hyps, REFS) == pytest.approx(OLD_CORPUS_BLEU["all"], abs=1e-9)
    assert M.corpus_bleu(hyps[:3], REFS[:3]) == pytest.approx(OLD_CORPUS_BLEU["first3"], abs=1e-9)
    assert M.corpus_bleu(hyps, REFS, tokenize="none") == pytest.approx(OLD_CORPUS_BLEU["none"], abs=1e-9)
    # no 4-gram match and empty hypotheses: 0 without smoothing
    assert M.corpus_bleu(["the cat sat", "a dog ran far"], ["the cat sat on the mat", "a dog ran home"]) == 0.0
    assert M.corpus_bleu(["", ""], REFS[:2]) == 0.0
    for h, r, old in zip(hyps, REFS, OLD_SENTENCE_BLEU):
        assert M.sentence_bleu(h, r) == pytest.approx(old, abs=1e-9)
    short = [("light", "let there be light"), ("be light", "let there be light"), ("", "x"), ("x y z", "x y z")]
    expect = [4.978706836786395, 36.787944117144235, 0.0, 100.0]
    assert [M.sentence_bleu(h, r) for h, r in short] == pytest.approx(expect, abs=1e-9)
    assert [M.rouge_l([h], [r]) for h, r in zip(hyps, REFS)] == pytest.approx(OLD_ROUGE_L, abs=1e-12)
    assert M.rouge_l(["", "..."], ["a b", "c"]) == 0.0
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        M.rouge_l(["a", "b"], ["a"])


def test_perplexities_closed_form():
    assert M.perplexity_from_nll(10 * math.log(7), 10) == pytest.approx(7.0)
    # a uniform AR model over V tokens has perplexity V
    V = 13
    model = lambda x: torch.zeros(*x.shape, V)  # noqa: E731
    x = torch.randint(0, V, (4, 9))
    assert M.generative_perplexity(model, x) == pytest.approx(V)
    # unigram: add-one counts
    train = torch.tensor([0, 0, 0, 1])
    ppl = M.unigram_perplexity(train, torch.tensor([0, 1]), 2)
    assert ppl == pytest.approx(math.exp(-(math.log(4 / 6) + math.log(2 / 6)) / 2))


def test_diversity():
    assert M.distinct_n([[1, 2, 3, 4]], 2) == 1.0
    assert M.distinct_n([[1, 1, 1, 1]], 2) == pytest.approx(1 / 3)
    assert M.repetition_rate([[1, 2, 1, 2, 1, 2]], 2) == pytest.approx(1 - 2 / 5)
    x = torch.arange(20).view(2, 10)
    s = M.shuffle_tokens(x, torch.Generator().manual_seed(0))
    assert (s[:, 0] == x[:, 0]).all() and (s.sort(1).values == x.sort(1).values).all()


def test_sentence_bleu_matches_sacrebleu_add_one():
    sacrebleu = pytest.importorskip("sacrebleu")
    for h, r in zip(_hyps(), REFS, strict=True):
        ref = sacrebleu.sentence_bleu(h, [r], smooth_method="add-k", smooth_value=1).score
        assert M.sentence_bleu(h, r) == pytest.approx(ref, abs=1e-9)
    assert M.sentence_bleu("", REFS[0]) == 0.0


def test_mbr_select_keeps_the_consensus_draw():
    a, b, c = "and god said let there be light", "and god said let there be night", "the earth was void"
    # per source: the draw closest to the others wins; ties keep the earlier draw
    assert M.mbr_select([[a, c], [b, c], [c, a]]) == [a, c]
    assert M.mbr_select([[b], [a], [a]]) == [a]
    assert M.mbr_select([[c]]) == [c]
    with pytest.raises(ValueError, match="differ in length"):
        M.mbr_select([[a], [a, b]])


def test_mbr_select_equals_the_sentence_bleu_definition():
    """The fast selection (each draw tokenised once, each pair's matches counted once) picks exactly
    the draw that the highest summed :func:`sentence_bleu` against the other draws picks."""
    rng = random.Random(0)
    words = "And God said , Let there be light : and there was light . the LORD unto him of".split()
    cands = [[" ".join(rng.choice(words) for _ in range(rng.randint(0, 12))) for _ in range(40)] for _ in range(6)]
    expect = []
    for i in range(40):
        hyps = [c[i] for c in cands]
        scores = [sum(M.sentence_bleu(h, o) for j, o in enumerate(hyps) if j != k) for k, h in enumerate(hyps)]
        expect.append(hyps[max(range(len(hyps)), key=lambda k: (scores[k], -k))])
    assert M.mbr_select(cands) == expect
