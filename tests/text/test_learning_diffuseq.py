"""Learning test: DiffuSeq on KJV case and punctuation restoration (``difflab.text.demo.brief_diffuseq``: copy path,
one-cycle lr 6e-3, 2,400 steps, batch 64; 295 test verses of at most 31 tokens; 20 DDPM steps per
draw, MBR over 20 draws); copying the source scores BLEU 54.7, a fluent verse that ignores the
source (the next test verse) 0.0. MBR-20 BLEU per seed, one torch thread (``python scripts/learning_spread.py
tests/text/test_learning_diffuseq.py --seeds 0-4 --threads 1``; the rows are from 2026-12-06, when the test
was in ``test_learning.py``):

| seed | BLEU | BLEU - copying |
|---|---|---|
| 0 | 69.9 | +15.25 |
| 1 | 70.9 | +16.17 |
| 2 | 64.5 | +9.81 |
| 3 | 66.1 | +11.36 |
| 4 | 69.1 | +14.44 |
| mean | 68.1 | +13.41 |
| min | 64.5 | +9.81 |
| max | 70.9 | +16.17 |
| 0, two threads | 68.7 | +13.96 |
| 1, two threads | 69.5 | +14.73 |

Thresholds: copying + 2.5 and the unrelated verse + 30. At the earlier 1,600 steps seed 2 fell
below the first (+2.06), so the test trains 2,400 steps (the one-cycle schedule stretched); the worst
seed now clears it by 7 BLEU.
"""

import pytest
import torch

pytestmark = pytest.mark.slow

S2S_STEPS = 2400
S2S_DRAWS = 20
S2S_OVER_COPY = 2.5
S2S_OVER_OTHER = 30.0


def test_diffuseq_bleu_beats_copying_the_source(one_thread, test_seed, record_property):
    """KJV case and punctuation restoration: BLEU above copying the source, far above unrelated text."""
    from difflab.core.lightning.train import train_briefly
    from difflab.text.data.seq2seq import Seq2SeqDataModule
    from difflab.text.demo import brief_diffuseq
    from difflab.text.metrics import corpus_bleu

    dm = Seq2SeqDataModule(vocab_size=1024, src_len=32, trg_len=32, batch_size=64, val_size=200, test_size=1000)
    dm.setup()
    model = brief_diffuseq(S2S_STEPS, seed=test_seed)
    model.attach_tokenizer(dm.tokenizer)
    secs = train_briefly(model, dm, max_steps=S2S_STEPS, seed=test_seed, gradient_clip_val=1.0)
    src, trg = dm.references("test")
    ts = dm.test_set
    g = torch.Generator().manual_seed(test_seed)
    hyps = model.translate_texts(ts.src, ts.src_mask, draws=S2S_DRAWS, steps=20, generator=g)
    bleu, copy = corpus_bleu(hyps, trg), corpus_bleu(src, trg)
    other = corpus_bleu(trg[1:] + trg[:1], trg)  # fluent KJV text that ignores the source
    print(
        f"DiffuSeq (MBR over {S2S_DRAWS}) BLEU {bleu:.1f}; another verse {other:.1f}; copying the source {copy:.1f} "
        f"({len(trg)} verses, {S2S_STEPS} steps, {secs:.0f} s)"
    )
    record_property("bleu_over_copy", bleu - copy)
    record_property("bleu_over_other", bleu - other)
    assert bleu > copy + S2S_OVER_COPY
    assert bleu > other + S2S_OVER_OTHER
