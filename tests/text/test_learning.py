"""Learning test: brief CPU training on the KJV must beat trivial baselines.

Language models (module fixture ``trained``): 32-token blocks, BPE-1024, transformers of dim 64 with
2 blocks; AR 300 steps at lr 2e-3, MDLM 1,200 steps at lr 1e-3 (as ``difflab-text demo``), GIDD
(p_u 0.1) 800 steps at lr 1e-3; 256 held-out blocks. Per seed (``DIFFLAB_TEST_SEED`` 0-4, one torch
thread), from ``python scripts/learning_spread.py tests/text/test_learning.py --seeds 0-4 --threads 1
--jobs 1`` (mean / min / max; per-seed table in the text README, rerun 2026-12-06 with the same
numbers):

* MDLM ELBO PPL / unigram PPL: 0.456 / 0.388 / 0.584 (AR exact PPL / unigram: 0.202 / 0.192 /
  0.210). At 800 MDLM steps it was 0.666 / 0.584 / 0.736, too close to the 0.8 threshold of
  then, so the steps went up to 1,200. Threshold: ELBO < 0.75 x unigram.
* gen-PPL under the AR scorer of 32-step MDLM samples / shuffled-token text: 0.225 / 0.131 / 0.428
  (0.398 / 0.304 / 0.520 at 800 steps). Threshold: < 0.67 x shuffled.
* GIDD ELBO PPL / unigram PPL: 0.438 / 0.400 / 0.509 (after 500 steps seed 0 was still at 0.74, so
  the steps stay at 800). Threshold: ELBO < 0.7 x unigram.

DDPD (uniform noise, planner and denoiser heads on one transformer of the same size) DDPD_STEPS
steps at lr 1e-3, against two baselines:

* the planner against the best token-blind planner, which knows the noise level ``t`` exactly and
  predicts ``p = t`` everywhere: binary cross-entropy of the noise flags on 256 held-out blocks
  corrupted at stratified times. Threshold: planner BCE < PLANNER_RATIO x token-blind BCE.
* DDPD samples (32 steps, adaptive schedule) against shuffled real tokens: generative perplexity
  under the AR scorer. Threshold: < SAMPLE_RATIO x shuffled.

Per seed (``DIFFLAB_TEST_SEED``), one torch thread, from the spread command above (2026-12-07),
planner BCE / token-blind BCE and DDPD gen-PPL / shuffled gen-PPL:

| seed | planner / token-blind | DDPD / shuffled gen-PPL |
|---|---|---|
| 0 | 0.662 | 0.474 |
| 1 | 0.598 | 0.097 |
| 2 | 0.632 | 0.214 |
| 3 | 0.651 | 0.427 |
| 4 | 0.610 | 0.174 |
| mean | 0.630 | 0.277 |
| min | 0.598 | 0.097 |
| max | 0.662 | 0.474 |

Both thresholds are 0.75. At the earlier 1,200 DDPD steps the samples scored 0.54-0.66 on seeds 0-4
and seed 12 failed (0.767: the quality of the samples jumps between 1,200 and 2,400 steps, at a step
that depends on the seed; seed 0 was 0.605 at 2,000), so the test trains 2,400 steps; seeds 12 and
13 then score 0.23 and 0.20 (2,000 steps), the worst seed of 0-4 clears the threshold by 0.28.
Real held-out text scores 68-73 under the same scorers: DDPD's samples at this
budget are far from fluent (and behind MDLM's at equal NFE, see the text README), but far from
shuffled tokens. Distinct-2 of the samples 0.95-0.96, token entropy 3.24-3.25 nats per sample (31
tokens; real held-out text 3.25).

Two threads (``--threads 2``), seeds 0 / 1: MDLM ELBO / unigram 0.420 / 0.388, AR 0.201 / 0.210, MDLM
samples / shuffled 0.151 / 0.129, GIDD 0.413 / 0.432, planner 0.658 / 0.663, DDPD samples 0.642 /
0.661 (each within 0.003 of one thread).

DiffuSeq's learning test is in ``test_learning_diffuseq.py`` (a file of its own, so that it runs on
another worker than this file's module fixture).
"""

from functools import partial

import pytest
import torch

pytestmark = pytest.mark.slow

MDLM_STEPS = 1200
MDLM_RATIO = 0.75
GIDD_STEPS = 800
GIDD_RATIO = 0.7
DDPD_STEPS = 2400
PLANNER_RATIO = 0.75
SAMPLE_RATIO = 0.75


@pytest.fixture(scope="module")
def trained(one_thread_module, test_seed):
    import lightning as L

    from difflab.core.lightning.train import train_briefly
    from difflab.text.data.lm import LMDataModule
    from difflab.text.models import DDPDLM, GIDDLM, ARLanguageModel, MaskedDiffusionLM

    dm = LMDataModule(corpus="kjv", vocab_size=1024, block_size=32, batch_size=32, seed=0)
    dm.setup()
    size = dict(vocab_size=1024, max_len=32, dim=64, depth=2, heads=4)
    out = {"dm": dm}
    runs = (
        ("ar", ARLanguageModel, 300, 2e-3),
        ("mdlm", MaskedDiffusionLM, MDLM_STEPS, 1e-3),
        ("gidd", partial(GIDDLM, p_u=0.1), GIDD_STEPS, 1e-3),
        ("ddpd", DDPDLM, DDPD_STEPS, 1e-3),
    )
    for name, cls, steps, lr in runs:
        L.seed_everything(test_seed, verbose=False)
        model = cls(**size, optimizer=partial(torch.optim.AdamW, lr=lr))
        secs = train_briefly(model, dm, max_steps=steps, seed=test_seed, gradient_clip_val=1.0)
        out[name], out[name + "_sec"] = model, secs
    return out


def test_mdlm_elbo_perplexity_far_below_unigram(trained, test_seed, record_property):
    from difflab.text.metrics import perplexity_from_nll, unigram_perplexity

    dm, mdlm, ar = trained["dm"], trained["mdlm"], trained["ar"]
    held = dm.val_set.blocks[:256]
    elbo = perplexity_from_nll(*mdlm.elbo_nll(held, n_times=8, generator=torch.Generator().manual_seed(test_seed)))
    exact = perplexity_from_nll(*ar.exact_nll(held))
    uni = unigram_perplexity(dm.train_set.blocks[:, 1:], held[:, 1:], 1024, exclude=(0, 1))
    secs = f"({trained['mdlm_sec']:.0f} s / {trained['ar_sec']:.0f} s)"
    print(f"unigram {uni:.1f}  MDLM ELBO {elbo:.1f}  AR {exact:.1f}  {secs}")
    record_property("elbo_over_unigram", elbo / uni)
    record_property("ar_over_unigram", exact / uni)
    assert exact < uni
    assert elbo < MDLM_RATIO * uni


def test_mdlm_samples_beat_shuffled_text(trained, test_seed, record_property):
    from difflab.text.metrics import generative_perplexity, shuffle_tokens

    dm, mdlm, ar = trained["dm"], trained["mdlm"], trained["ar"]
    scorer = ar.network.eval()
    samples = mdlm.generate(32, 32, steps=32, generator=torch.Generator().manual_seed(1 + test_seed)).sample
    real = dm.val_set.blocks[:32]
    shuffled = shuffle_tokens(real, torch.Generator().manual_seed(0))
    g_s, g_sh, g_r = (generative_perplexity(scorer, x) for x in (samples, shuffled, real))
    print(f"gen-PPL: MDLM samples {g_s:.1f}, shuffled text {g_sh:.1f}, real text {g_r:.1f}")
    record_property("genppl_over_shuffled", g_s / g_sh)
    assert g_s < 0.67 * g_sh


def test_gidd_elbo_perplexity_far_below_unigram(trained, test_seed, record_property):
    from difflab.text.metrics import perplexity_from_nll, unigram_perplexity

    dm, gidd = trained["dm"], trained["gidd"]
    held = dm.val_set.blocks[:256]
    elbo = perplexity_from_nll(*gidd.elbo_nll(held, n_times=8, generator=torch.Generator().manual_seed(test_seed)))
    uni = unigram_perplexity(dm.train_set.blocks[:, 1:], held[:, 1:], 1024, exclude=(0, 1))
    print(f"unigram {uni:.1f}  GIDD (p_u 0.1) ELBO {elbo:.1f}  ({trained['gidd_sec']:.0f} s, {GIDD_STEPS} steps)")
    record_property("elbo_over_unigram", elbo / uni)
    assert elbo < GIDD_RATIO * uni


def test_planner_beats_the_token_blind_planner(trained, test_seed, record_property):
    import torch.nn.functional as F

    dm, ddpd = trained["dm"], trained["ddpd"].eval()
    held = dm.val_set.blocks[:256]
    g = torch.Generator().manual_seed(test_seed)
    t = (torch.rand(held.shape[0], generator=g) + torch.arange(held.shape[0])) / held.shape[0]
    t = 0.01 + 0.98 * t
    with torch.no_grad():
        x_t, flags = ddpd.corrupt_with_flags(held, t, g)
        _, noise_logits = ddpd.heads(x_t, t)
    real = torch.ones_like(held, dtype=torch.bool)
    real[:, 0] = False
    target = flags[real].double()
    bce = float(F.binary_cross_entropy_with_logits(noise_logits[real].double(), target))
    blind = float(F.binary_cross_entropy(t[:, None].expand_as(held)[real].double(), target))
    print(f"planner BCE {bce:.4f}, token-blind (knows t) {blind:.4f} ({trained['ddpd_sec']:.0f} s)")
    record_property("planner_over_blind", bce / blind)
    assert bce < PLANNER_RATIO * blind


def test_ddpd_samples_beat_shuffled_text(trained, test_seed, record_property):
    from difflab.text.metrics import distinct_n, generative_perplexity, sample_entropy, shuffle_tokens

    dm, ddpd, ar = trained["dm"], trained["ddpd"].eval(), trained["ar"]
    scorer = ar.network.eval()
    samples = ddpd.generate(32, 32, steps=32, generator=torch.Generator().manual_seed(1 + test_seed)).sample
    real = dm.val_set.blocks[:32]
    shuffled = shuffle_tokens(real, torch.Generator().manual_seed(0))
    g_s, g_sh, g_r = (generative_perplexity(scorer, x) for x in (samples, shuffled, real))
    rows = samples[:, 1:].tolist()
    print(
        f"gen-PPL: DDPD samples {g_s:.1f}, shuffled text {g_sh:.1f}, real text {g_r:.1f}; "
        f"distinct-2 {distinct_n(rows, 2):.3f}, entropy {sample_entropy(rows):.2f}"
    )
    record_property("genppl_over_shuffled", g_s / g_sh)
    assert g_s < SAMPLE_RATIO * g_sh
