"""Learning tests: brief CPU training on synthetic speech must improve *real recorded speech*.

Every method trains the demo's small NCSN++-style network (width 8, three levels) on 0.25 s crops of
the offline default data (160 synthetic utterances, real noise recordings and coloured noise at
-5..15 dB) with the demo's settings (:data:`difflab.audio.demo.TRAINING`), then enhances the 8
real-speech test mixtures (Asterisk prompts with held-out noises; input SI-SDR 6.21 dB, PESQ 1.273).
``DIFFLAB_TEST_SEED`` sets the network initialisation, the batch order and the sampling noise; the
thresholds lie below the worst of seeds 0-4 (one thread) with a margin, and each test's docstring
gives the per-seed numbers (mean, min, max), measured with

    python scripts/learning_spread.py tests/audio/test_learning.py --seeds 0-4 --threads 1 --jobs 1

The trained models are shared through module-scoped fixtures: StoRM starts from the predictive
baseline's trained network (frozen, the StoRM reference's "regen-freeze-denoiser" mode).

SGMSE+ and StoRM are scored with the deterministic probability-flow sampler at few steps
(:data:`difflab.audio.demo.FEW_STEPS`); after a CPU minute the stochastic PC sampler is still below
the input for most seeds (see audio/README.md). The step-collapse guard checks that more PC steps do
not make SGMSE+ much worse.
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
    cfg = TRAINING[method]
    dm = VoiceBankDataModule(str(root), batch_size=TRAINING["batch_size"], crop_samples=DEMO_CROP)
    train_briefly(model, dm, max_steps=cfg["steps"], seed=seed, gradient_clip_val=1.0, ema_decay=cfg.get("ema") or None)
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
    """The predictive baseline (residual output y + D(y), 400 steps, EMA 0.99) beats the input.

    Per seed, one thread (input 6.21 dB / 1.273):

    | seed | 0 | 1 | 2 | 3 | 4 | mean |
    |---|---|---|---|---|---|---|
    | SI-SDR gain (dB) | +3.28 | +3.64 | +3.91 | +2.37 | +3.26 | +3.30 |
    | PESQ gain | +0.126 | +0.150 | +0.165 | +0.095 | +0.135 | +0.134 |

    Before the residual output and the EMA the same network scored 4.73 to 9.56 dB over seeds, below
    the input for some; with the residual output alone 4.75 to 9.51 dB."""
    base, ours = _scores(predictive, learn_root, test_seed)
    _record(record_property, base, ours)
    assert ours["si_sdr"][0] > base["si_sdr"][0] + 1.5
    assert ours["pesq"][0] > base["pesq"][0] + 0.05


@pytest.mark.slow
def test_sgmse_beats_the_input(sgmse, learn_root, test_seed, record_property):
    """SGMSE+ (residual preconditioning, 800 steps, EMA 0.99, probability flow N = 3) beats the input.

    Per seed, one thread (input 6.21 dB / 1.273):

    | seed | 0 | 1 | 2 | 3 | 4 | mean |
    |---|---|---|---|---|---|---|
    | SI-SDR gain (dB) | +2.29 | +2.22 | +2.61 | +2.20 | +2.48 | +2.36 |
    | PESQ gain | +0.062 | +0.064 | +0.077 | +0.050 | +0.069 | +0.065 |

    With the plain EDM preconditioning (x0_precond) the PESQ gain was not reproducible (see
    audio/README.md)."""
    sampler, steps = FEW_STEPS["sgmse"]
    base, ours = _scores(sgmse, learn_root, test_seed, sampler=sampler, steps=steps)
    _record(record_property, base, ours)
    assert ours["si_sdr"][0] > base["si_sdr"][0] + 1.2
    assert ours["pesq"][0] > base["pesq"][0] + 0.025


@pytest.mark.slow
def test_sgmse_more_pc_steps_do_not_degrade(sgmse, learn_root, test_seed, record_property):
    """The regression this guards: with a plain x0 network (no preconditioning, no EMA) SI-SDR fell from
    6.52 dB at N = 5 to 3.19 at N = 30, and without EMA an 800-step x0_precond run fell to -1.75 dB at
    N = 10 and -6.82 at N = 30 (the network's errors on its own off-marginal samples compound). Checked
    on the shipped SGMSE+ recipe (``x0_residual``, 800 steps, EMA 0.99: the model of the test above).

    Per seed, one thread (input 6.21 dB; ``scripts/learning_spread.py
    tests/audio/test_learning.py::test_sgmse_more_pc_steps_do_not_degrade --seeds 0-4,10-15``):

    | seed | 0 | 1 | 2 | 3 | 4 | 10 | 11 | 12 | 13 | 14 | 15 |
    |---|---|---|---|---|---|---|---|---|---|---|---|
    | N = 5 (dB) | 7.06 | 4.62 | 6.94 | 4.46 | 5.76 | 6.21 | 2.97 | 5.49 | 6.44 | 5.31 | 4.16 |
    | N = 20 (dB) | 7.69 | 5.07 | 6.84 | 4.27 | 5.14 | 6.63 | 3.08 | 4.96 | 6.63 | 4.41 | 1.83 |
    | N = 20 - N = 5 | +0.63 | +0.45 | -0.10 | -0.18 | -0.62 | +0.42 | +0.11 | -0.53 | +0.19 | -0.90 | -2.33 |
    | N = 20 - input | +1.48 | -1.14 | +0.63 | -1.93 | -1.06 | +0.42 | -3.12 | -1.25 | +0.42 | -1.80 | -4.37 |

    Two threads (``--threads 2``), seeds 0 / 1: N = 5 7.05 / 4.72 dB, N = 20 6.58 / 4.49 dB (N = 20 -
    N = 5 -0.47 / -0.23; N = 20 - input +0.38 / -1.72). At this budget the stochastic sampler is *below
    the input* at N = 20 for most seeds (PESQ below the input's for all), so "more steps are not worse
    than the input" does not hold here; the model's own probability-flow N = 3 beats the input on every
    seed (test above). Asserted, below the worst seed with a margin and still tight enough to catch the
    collapses above: N = 20 within 3.5 dB of N = 5 (worst -2.33, seed 15) and above the input minus
    6 dB (worst -4.37). This guard used the ``x0_precond`` model (a fixture of its own) with bounds of
    2.5 and 5 dB until that model's seed 14 fell 3.18 dB from N = 5 to N = 20 (4.62 dB below the input)."""
    base, few = _scores(sgmse, learn_root, test_seed, sampler="pc", steps=5)
    _, many = _scores(sgmse, learn_root, test_seed, sampler="pc", steps=20)
    record_property("si_sdr_pc5", few["si_sdr"][0])
    record_property("si_sdr_pc20", many["si_sdr"][0])
    record_property("si_sdr_pc20_gain", many["si_sdr"][0] - base["si_sdr"][0])
    assert many["si_sdr"][0] > few["si_sdr"][0] - 3.5
    assert many["si_sdr"][0] > base["si_sdr"][0] - 6.0


@pytest.mark.slow
def test_storm_beats_the_input_and_stays_near_its_predictor(storm, predictive, learn_root, test_seed, record_property):
    """StoRM (100 steps on the frozen trained predictor, EMA 0.99, probability flow N = 3, NFE 4) beats
    the input on SI-SDR, PESQ and the noise left in the speech pauses, and keeps its predictor's SI-SDR;
    at this budget it adds nothing over its own predictor.

    Per seed, one thread (input 6.21 dB / 1.273 / ESTOI 0.752 / pause noise -18.1 dB; pause noise is
    the residual energy where the clean reference is silent, lower is better; seeds 5-7 from the same
    fixtures and scoring, ESTOI not recorded there):

    | seed | 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 |
    |---|---|---|---|---|---|---|---|---|
    | SI-SDR gain over the input (dB) | +3.03 | +3.62 | +3.54 | +2.04 | +3.17 | +1.81 | +2.56 | +3.11 |
    | PESQ gain over the input | +0.124 | +0.149 | +0.166 | +0.098 | +0.133 | +0.093 | +0.140 | +0.091 |
    | pause noise gain over the input (dB) | -11.0 | -10.1 | -10.6 | -11.4 | -11.1 | -10.5 | -12.5 | -12.0 |
    | SI-SDR over its predictor (dB) | -0.25 | -0.03 | -0.37 | -0.33 | -0.09 | -0.47 | -0.28 | -0.12 |
    | PESQ over its predictor | -0.002 | -0.001 | +0.001 | +0.003 | -0.002 | | | |
    | ESTOI over its predictor | -0.005 | -0.004 | -0.004 | -0.007 | -0.003 | | | |
    | pause noise over its predictor (dB) | +0.22 | +0.10 | -0.19 | +0.22 | +0.27 | | | |

    Two threads, seeds 0 / 1: SI-SDR gain +3.25 / +3.64 dB, PESQ gain +0.141 / +0.135, pause noise
    gain -11.0 / -11.2 dB, SI-SDR over the predictor -0.26 / -0.08 dB. ESTOI is below the input's on every seed, for
    StoRM as for its predictor, and no metric moves consistently over the predictor. At 200 training
    steps (the setting until then) the regeneration lost 2.0-2.6 dB SI-SDR against its predictor on
    seeds 5, 6 and 338, and seed 5 ended 0.36 dB below the input; with 100 steps the loss is at most
    0.47 dB on seeds 0-7. Asserted, each below the worst seed with a margin: SI-SDR above the input by
    0.8 dB (worst +1.81), PESQ by 0.05 (worst +0.091), pause noise at least 6 dB below the input's
    (worst -10.1), SI-SDR within 1.5 dB of the predictor's (worst -0.47) and PESQ within 0.08 of it
    (worst -0.002)."""
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
    assert ours["si_sdr"][0] > base["si_sdr"][0] + 0.8
    assert ours["pesq"][0] > base["pesq"][0] + 0.05
    assert ours["pause_noise"][0] < base["pause_noise"][0] - 6.0
    assert ours["si_sdr"][0] > pred["si_sdr"][0] - 1.5
    assert ours["pesq"][0] > pred["pesq"][0] - 0.08
