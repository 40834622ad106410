"""Learning tests: brief CPU training on synthetic speech must improve *real recorded speech*.

Each method trains a small NCSN++-style network (width 8, three levels) for 400 steps on 0.25 s
crops of the offline default data (160 synthetic utterances, real noise recordings and coloured
noise at -5..15 dB), then enhances the 8 real-speech test mixtures (Asterisk prompts with
held-out noises). SI-SDR and wideband PESQ must beat the unprocessed input by about half of the
gain measured when the thresholds were set (see each test). Only the predictive baseline beats the
input at this budget; SGMSE+ and StoRM do not yet (measured numbers in audio/README.md). SGMSE+ is
held to what it does reach: more sampler steps do not make it worse. It uses the
preconditioned data prediction (``x0_precond``): with a plain ``x0`` network the quality *fell*
as the sampler steps grew (the network cannot reproduce its near-clean input at small ``t``, and
the last steps pull the sample onto that worse estimate); with the skip it no longer does.
"""

from __future__ import annotations

import pytest
import torch

from difflab.audio.data import VoiceBankDataModule
from difflab.audio.demo import DEMO_CROP, enhance_test_set
from difflab.audio.metrics import evaluate
from difflab.audio.models import SGMSE, PredictiveEnhancer
from difflab.audio.networks import NCSNpp
from difflab.core.lightning import train_briefly

STEPS = 400


@pytest.fixture(scope="module")
def learn_root(tmp_path_factory):
    from difflab.audio.data.synth import make_dataset

    root = tmp_path_factory.mktemp("learn") / "denoise"
    make_dataset(root, "denoise", num_train=160, num_valid=2, num_test=8, seed=0, verbose=False)
    return root


def _net(cin: int, time_conditional: bool = True) -> NCSNpp:
    return NCSNpp(cin, 2, channels=8, channel_mults=(1, 2, 2), num_res_blocks=1, time_conditional=time_conditional)


def _gain(model, root) -> tuple[dict, dict]:
    dm = VoiceBankDataModule(str(root), batch_size=4, crop_samples=DEMO_CROP)
    train_briefly(model, dm, max_steps=STEPS, gradient_clip_val=1.0)
    clean, noisy, enhanced, _, _, _ = enhance_test_set(model, dm, seed=0)
    res = evaluate({"model": enhanced}, clean, noisy, metrics=("pesq", "si_sdr"))
    print({k: {m: round(v[0], 3) for m, v in r.items()} for k, r in res.items()})
    return res["unprocessed"], res["model"]


def _opt(params):
    return torch.optim.Adam(params, lr=2e-3)


@pytest.mark.slow
def test_predictive_baseline_learns(learn_root):
    torch.manual_seed(0)
    base, ours = _gain(PredictiveEnhancer(_net(2, False), optimizer=_opt), learn_root)
    # measured at 400 steps (two runs): SI-SDR 6.21 -> 8.07 and 8.31 dB, PESQ 1.27 -> 1.35 and 1.34
    assert ours["si_sdr"][0] > base["si_sdr"][0] + 0.9
    assert ours["pesq"][0] > base["pesq"][0] + 0.04


def _si_sdr_at(model, root, steps: int) -> tuple[float, float]:
    """(unprocessed, enhanced) SI-SDR on the real-speech test mixtures with ``steps`` sampler steps."""
    dm = VoiceBankDataModule(str(root), batch_size=4, crop_samples=DEMO_CROP)
    clean, noisy, enhanced, _, _, _ = enhance_test_set(model, dm, seed=0, steps=steps)
    res = evaluate({"model": enhanced}, clean, noisy, metrics=("si_sdr",))
    return res["unprocessed"]["si_sdr"][0], res["model"]["si_sdr"][0]


@pytest.mark.slow
def test_sgmse_more_steps_do_not_degrade(learn_root):
    """SGMSE+ (preconditioned data prediction) after a CPU minute: 30 PC steps are at least as good as 5,
    and the output stays near the input's quality (it does not yet beat it at this budget: measured
    SI-SDR 6.21 -> 5.73 / 6.13 / 6.50 / 6.34 dB at N = 5 / 10 / 30 / 50; this test: 6.04 at N = 5, 7.07
    at N = 30). With a plain x0 network the
    same run fell from 6.52 dB at N = 5 to 3.19 at N = 30: the regression this guards against."""
    torch.manual_seed(0)
    model = SGMSE(_net(4), optimizer=_opt, sample_steps=10, prediction="x0_precond")
    dm = VoiceBankDataModule(str(learn_root), batch_size=4, crop_samples=DEMO_CROP)
    train_briefly(model, dm, max_steps=STEPS, gradient_clip_val=1.0)
    base, few = _si_sdr_at(model, learn_root, 5)
    _, many = _si_sdr_at(model, learn_root, 30)
    print(f"unprocessed {base:.2f}  N=5 {few:.2f}  N=30 {many:.2f}")
    assert many > few - 0.4
    assert many > base - 1.0
