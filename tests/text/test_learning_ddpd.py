"""Learning test of DDPD: brief CPU training on the KJV, one torch thread.

32-token blocks, BPE-1024, transformers of dim 64 with 2 blocks (as tests/text/test_learning.py);
the AR scorer 300 steps at lr 2e-3, DDPD (uniform noise, planner and denoiser heads) DDPD_STEPS
steps at lr 1e-3. Two baselines:

* the planner against the best token-blind planner, which knows the noise level ``t`` exactly and
  predicts ``p = t`` everywhere: binary cross-entropy of the noise flags on 256 held-out blocks
  corrupted at stratified times. Threshold: planner BCE < PLANNER_RATIO x token-blind BCE.
* DDPD samples (32 steps, adaptive schedule) against shuffled real tokens: generative perplexity
  under the AR scorer. Threshold: < SAMPLE_RATIO x shuffled.

Per seed (``DIFFLAB_TEST_SEED``), one torch thread, 2-core CPU shared with other jobs
(``DIFFLAB_TEST_SEED=s pytest tests/text/test_learning_ddpd.py -s``), planner BCE / token-blind BCE
and DDPD gen-PPL / shuffled gen-PPL (DDPD samples' gen-PPL, shuffled text's):

* seed 0: 0.3400 / 0.5167 = 0.658; 1407.8 / 2194.6 = 0.641
* seed 1: 0.3370 / 0.5081 = 0.663; 1552.1 / 2349.6 = 0.661
* seed 2: 0.3323 / 0.5072 = 0.655; 1505.1 / 2272.0 = 0.662

The spread over seeds is small (0.655-0.663 and 0.641-0.662); both thresholds are 0.75, about 0.09
above the worst seed. Real held-out text scores 68-73 under the same scorers: DDPD's samples at this
budget are far from fluent (and behind MDLM's at equal NFE, see the text README), but far from
shuffled tokens. Distinct-2 of the samples 0.95-0.96, token entropy 3.24-3.25 nats per sample (31
tokens; real held-out text 3.25). Seeds 3-4 and two threads are not measured.
"""

from functools import partial

import pytest
import torch

pytestmark = pytest.mark.slow

DDPD_STEPS = 1200
PLANNER_RATIO = 0.75
SAMPLE_RATIO = 0.75


@pytest.fixture(scope="module")
def trained(one_thread_module, test_seed):
    import lightning as L

    from difflab.core.lightning.train import train_briefly
    from difflab.text.data.lm import LMDataModule
    from difflab.text.models import DDPDLM, ARLanguageModel

    dm = LMDataModule(corpus="kjv", vocab_size=1024, block_size=32, batch_size=32, seed=0)
    dm.setup()
    size = dict(vocab_size=1024, max_len=32, dim=64, depth=2, heads=4)
    out = {"dm": dm}
    for name, cls, steps, lr in (("ar", ARLanguageModel, 300, 2e-3), ("ddpd", DDPDLM, DDPD_STEPS, 1e-3)):
        L.seed_everything(test_seed, verbose=False)
        model = cls(**size, optimizer=partial(torch.optim.AdamW, lr=lr))
        out[name + "_sec"] = train_briefly(model, dm, max_steps=steps, seed=test_seed, gradient_clip_val=1.0)
        out[name] = model.eval()
    return out


def test_planner_beats_the_token_blind_planner(trained, test_seed, record_property):
    import torch.nn.functional as F

    dm, ddpd = trained["dm"], trained["ddpd"]
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

    dm, ddpd, ar = trained["dm"], trained["ddpd"], trained["ar"]
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
