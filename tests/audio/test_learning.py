"""Learning tests: brief CPU training on synthetic speech must improve *real recorded speech*.

Every method trains the demo's small NCSN++-style network (width 8, three levels) on 0.25 s crops of
the offline default data (160 synthetic utterances, real noise recordings and coloured noise at
-5..15 dB) with the demo's settings (:data:`difflab.audio.demo.TRAINING`), then enhances the 8
real-speech test mixtures (Asterisk prompts with held-out noises). SI-SDR and wideband PESQ must beat
the unprocessed input by about half of the gain measured when the thresholds were set (numbers in
each test). The trained models are shared through module-scoped fixtures: StoRM starts from the
predictive baseline's trained network (frozen, the StoRM reference's "regen-freeze-denoiser" mode).

SGMSE+ and StoRM are scored with the deterministic probability-flow sampler at few steps
(:data:`difflab.audio.demo.FEW_STEPS`); after a CPU minute the stochastic PC sampler at N = 30 is
still below the input's PESQ (see audio/README.md). The step-collapse guard checks that more PC
steps do not make SGMSE+ worse. The margins depend on the network initialisation (numbers in each
test): with one thread and these seeds the runs are deterministic.
"""

from __future__ import annotations

import copy

import pytest
import torch

from difflab.audio.data import VoiceBankDataModule
from difflab.audio.demo import DEMO_CROP, FEW_STEPS, TRAINING, enhance_test_set
from difflab.audio.metrics import evaluate
from difflab.audio.models import SGMSE, PredictiveEnhancer, StoRM
from difflab.audio.networks import NCSNpp
from difflab.core.lightning import train_briefly

# The thresholds were measured with one thread; brief training is chaotic enough that another thread
# count (a different floating-point summation order) can change the outcome.
pytestmark = pytest.mark.usefixtures("one_thread_module")


@pytest.fixture(scope="module")
def learn_root(tmp_path_factory):
    from difflab.audio.data.synth import make_dataset

    root = tmp_path_factory.mktemp("learn") / "denoise"
    make_dataset(root, "denoise", num_train=160, num_valid=2, num_test=8, seed=0, verbose=False)
    return root


def _net(cin: int, time_conditional: bool = True) -> NCSNpp:
    return NCSNpp(cin, 2, channels=8, channel_mults=(1, 2, 2), num_res_blocks=1, time_conditional=time_conditional)


def _opt(params):
    return torch.optim.Adam(params, lr=TRAINING["lr"])


def _train(model, root, method: str, seed: int):
    from lightning.pytorch.callbacks import EMAWeightAveraging

    cfg = TRAINING[method]
    dm = VoiceBankDataModule(str(root), batch_size=TRAINING["batch_size"], crop_samples=DEMO_CROP)
    callbacks = [EMAWeightAveraging(decay=cfg["ema"])] if cfg.get("ema") else []
    train_briefly(model, dm, max_steps=cfg["steps"], seed=seed, gradient_clip_val=1.0, callbacks=callbacks)
    return model.eval()


def _scores(model, root, seed: int, metrics=("pesq", "si_sdr"), **options) -> tuple[dict, dict]:
    """(unprocessed, enhanced) ``{"pesq": (mean, std), "si_sdr": ...}`` on the real-speech test mixtures."""
    dm = VoiceBankDataModule(str(root), batch_size=4, crop_samples=DEMO_CROP)
    clean, noisy, enhanced, _, _, _ = enhance_test_set(model, dm, seed=seed, **options)
    res = evaluate({"model": enhanced}, clean, noisy, metrics=metrics)
    print(options, {k: {m: round(v[0], 3) for m, v in r.items()} for k, r in res.items()})
    return res["unprocessed"], res["model"]


def _record(record_property, base, ours) -> None:
    """Gains over the input, for the per-seed table (``scripts/learning_spread.py``)."""
    for m in ("si_sdr", "pesq"):
        record_property(m, ours[m][0])
        record_property(f"{m}_gain", ours[m][0] - base[m][0])


@pytest.fixture(scope="module")
def predictive(learn_root, test_seed):
    torch.manual_seed(test_seed)
    model = PredictiveEnhancer(_net(2, False), optimizer=_opt, residual=TRAINING["predictive"]["residual"])
    return _train(model, learn_root, "predictive", test_seed)


@pytest.fixture(scope="module")
def sgmse(learn_root, test_seed):
    cfg = TRAINING["sgmse"]
    torch.manual_seed(test_seed)
    model = SGMSE(_net(4), optimizer=_opt, prediction=cfg["prediction"], sigma_data=cfg["sigma_data"])
    return _train(model, learn_root, "sgmse", test_seed)


@pytest.fixture(scope="module")
def sgmse_precond(learn_root, test_seed):
    """SGMSE+ with the plain EDM preconditioning: the model whose PC sampler once collapsed with N."""
    torch.manual_seed(test_seed)
    model = SGMSE(_net(4), optimizer=_opt, prediction="x0_precond", sigma_data=0.1)
    return _train(model, learn_root, "sgmse", test_seed)


@pytest.fixture(scope="module")
def storm(learn_root, predictive, test_seed):
    cfg = TRAINING["storm"]
    torch.manual_seed(test_seed)
    model = StoRM(
        _net(6),
        copy.deepcopy(predictive.network),
        optimizer=_opt,
        prediction=cfg["prediction"],
        sigma_data=cfg["sigma_data"],
        training_mode=cfg["training_mode"],
        predictor_residual=TRAINING["predictive"]["residual"],
    )
    return _train(model, learn_root, "storm", test_seed)


@pytest.mark.slow
def test_predictive_baseline_learns(predictive, learn_root, test_seed, record_property):
    base, ours = _scores(predictive, learn_root, test_seed)
    # measured at 400 steps: SI-SDR 6.21 -> 8.31 dB, PESQ 1.273 -> 1.342 (another generation of the
    # training data: 8.07 / 1.350). The margin depends on the network initialisation: seed 1 gave
    # 4.73 dB / 1.223 (with EMA 0.99: 6.64 dB / 1.315).
    _record(record_property, base, ours)
    assert ours["si_sdr"][0] > base["si_sdr"][0] + 0.9
    assert ours["pesq"][0] > base["pesq"][0] + 0.04


@pytest.mark.slow
def test_sgmse_beats_the_input(sgmse, learn_root, test_seed, record_property):
    """SGMSE+ (residual preconditioning, 800 steps, EMA 0.99, probability flow N = 3) beats the input.

    Measured on these 8 mixtures (input 6.21 dB / 1.273): this test 8.23 dB / 1.341; with seeds 1 / 2
    (initialisation and batch order) 8.35 / 1.341 and 8.91 / 1.353. On training data written with two
    threads, seeds 0 / 1: 8.50 / 1.340 and 8.28 / 1.335 here, 8.04 / 1.304 and 7.78 / 1.295 on 24
    real-speech mixtures (input 6.68 dB / 1.227). With the plain EDM preconditioning (x0_precond) the
    PESQ gain was not reproducible (1.310 / 1.259 here, 1.258 / 1.210 on the 24; see audio/README.md)."""
    sampler, steps = FEW_STEPS["sgmse"]
    base, ours = _scores(sgmse, learn_root, test_seed, sampler=sampler, steps=steps)
    _record(record_property, base, ours)
    assert ours["si_sdr"][0] > base["si_sdr"][0] + 1.0
    assert ours["pesq"][0] > base["pesq"][0] + 0.03


@pytest.mark.slow
def test_sgmse_more_pc_steps_do_not_degrade(sgmse_precond, learn_root, test_seed, record_property):
    """The regression this guards: with a plain x0 network (no preconditioning, no EMA) SI-SDR fell from
    6.52 dB at N = 5 to 3.19 at N = 30, and without EMA an 800-step x0_precond run fell to -1.75 dB at
    N = 10 and -6.82 at N = 30 (the network's errors on its own off-marginal samples compound). Checked
    on the x0_precond model: with the residual preconditioning the PC sampler is flat in N at this
    budget and below the input (4.97 / 5.34 / 4.66 dB at N = 5 / 10 / 20 for network seed 1; it rises
    with longer training: 7.22 / 8.02 / 7.85 dB at N = 5 / 20 / 30 after 2400 steps, network seed 0)."""
    base, few = _scores(sgmse_precond, learn_root, test_seed, sampler="pc", steps=5)
    _, many = _scores(sgmse_precond, learn_root, test_seed, sampler="pc", steps=20)
    record_property("si_sdr_pc5", few["si_sdr"][0])
    record_property("si_sdr_pc20", many["si_sdr"][0])
    record_property("si_sdr_pc20_gain", many["si_sdr"][0] - base["si_sdr"][0])
    # measured: 6.31 dB at N = 5, 7.36 at N = 20 (on another generation of the training data 5.99 / 7.09;
    # a network initialised with seed 1 still fell, 4.96 dB at N = 5 -> 2.15 at N = 30)
    assert many["si_sdr"][0] > few["si_sdr"][0] - 0.5
    assert many["si_sdr"][0] > base["si_sdr"][0]  # and not below the input


@pytest.mark.slow
def test_storm_beats_the_input(storm, predictive, learn_root, test_seed, record_property):
    sampler, steps = FEW_STEPS["storm"]
    metrics = ("pesq", "si_sdr", "estoi", "pause_noise")
    base, ours = _scores(storm, learn_root, test_seed, metrics, sampler=sampler, steps=steps)
    _, pred = _scores(predictive, learn_root, test_seed, metrics)  # StoRM's frozen predictor alone
    _record(record_property, base, ours)
    for m in ("estoi", "pause_noise"):
        record_property(m, ours[m][0])
        record_property(f"{m}_gain", ours[m][0] - base[m][0])
    for m in metrics:
        record_property(f"{m}_over_predictor", ours[m][0] - pred[m][0])
    # measured (200 steps from the trained predictor, EMA 0.99, probability flow N = 3, NFE 4): this test
    # SI-SDR 6.21 -> 8.30 dB, PESQ 1.273 -> 1.342 (its predictor alone: 8.31 dB / 1.342; another StoRM
    # network initialisation on it: 8.20 / 1.364). From predictors trained with seeds 1 / 2 (9.56 dB /
    # 1.419, 7.31 / 1.298): 9.49 / 1.425 and 7.56 / 1.302. After
    # 400 steps instead: 8.03 / 1.335, 9.93 / 1.395 and 6.15 / 1.231, the last below the input, which is
    # why the demo's setting is 200 (see audio/README.md). From a predictor below the input (4.73 dB /
    # 1.223, on older data) StoRM stayed below the input: 4.53 dB / 1.163.
    assert ours["si_sdr"][0] > base["si_sdr"][0] + 1.0
    assert ours["pesq"][0] > base["pesq"][0] + 0.035
