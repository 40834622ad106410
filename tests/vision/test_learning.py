"""Learning test (slow): brief CPU training on the default photographs against bicubic upsampling.

Recipe (the demo's, :data:`difflab.vision.evaluate.BRIEF_TRAINING`): x2 bicubic, small U-Net, batch
16 of 32 px crops, 300 Adam steps at 2e-3 with a cosine decay to 1e-4, EMA of the weights (decay
0.99, the averaged weights are evaluated); ResShift-4 from the shipped config
``resshift4_photos_x2`` (kappa 0.5, min_noise 0.2, ancestral sampler); SR3 with the residual target
(scale 2), x0-prediction, cosine chain of 1000 steps, sampled with DDIM-4. Score: PSNR-Y gain over
bicubic averaged over ALL four held-out centred 96 px crops (coffee, rocket, retina, china).

Measured with ``python scripts/learning_spread.py tests/vision/test_learning.py --seeds 0-4
--threads 1 --jobs 1`` on a shared, loaded 2-core CPU (the 2-thread rows, ``--seeds 0-1 --threads
2``, are still to be measured); dB, ``psnr_y_gain`` is the mean over the four crops:

`test_resshift_stays_above_its_floor_against_bicubic` (PSNR-Y gain over bicubic, dB):

| seed | threads | coffee | rocket | retina | china | mean of 4 |
|---|---|---|---|---|---|---|
| 0 | 1 | -1.65 | +0.66 | -8.59 | +0.01 | -2.39 |
| 1 | 1 | +0.60 | +0.45 | -7.55 | +0.28 | -1.55 |
| 2 | 1 | +1.00 | +0.44 | -2.94 | +0.21 | -0.32 |
| 3 | 1 | -1.43 | +0.46 | -2.70 | +0.46 | -0.80 |
| 4 | 1 | +0.12 | +0.57 | -2.75 | +0.36 | -0.43 |
| mean | all | -0.27 | +0.51 | -4.91 | +0.27 | -1.10 |
| min | all | -1.65 | +0.44 | -8.59 | +0.01 | -2.39 |
| max | all | +1.00 | +0.66 | -2.70 | +0.46 | -0.32 |

`test_sr3_ddim4_stays_above_its_floor_against_bicubic` (PSNR-Y gain over bicubic, dB):

| seed | threads | coffee | rocket | retina | china | mean of 4 |
|---|---|---|---|---|---|---|
| 0 | 1 | +0.60 | +0.91 | -4.78 | +0.48 | -0.70 |
| 1 | 1 | -0.41 | +0.58 | -4.39 | +0.37 | -0.96 |
| 2 | 1 | -0.48 | +0.43 | -2.48 | -0.04 | -0.64 |
| 3 | 1 | +1.05 | +0.64 | -3.48 | +0.58 | -0.30 |
| 4 | 1 | -0.97 | +0.96 | -3.14 | +0.35 | -0.70 |
| mean | all | -0.04 | +0.70 | -3.65 | +0.35 | -0.66 |
| min | all | -0.97 | +0.43 | -4.78 | -0.04 | -0.96 |
| max | all | +1.05 | +0.96 | -2.48 | +0.58 | -0.30 |

Neither method beats bicubic averaged over the four crops at this budget on any seed: the nearly
flat retina crop (bicubic 52.8 dB, residual std 0.006 in [-1, 1]) loses 2.5 to 8.6 dB, because
errors of a few 1/255 in the briefly trained network's output, deterministic ones included (SR3
fed a zero noise map loses 3.8 dB there), flip the 8-bit rounding of an image bicubic already
gets almost exactly right, while the natural crops gain only tenths of a dB. Recipe changes
tried on seed 1 (ResShift kappa 1 / 0.5 / 0.1 / 0.03: mean -2.32 / -1.56 / -1.67 / -2.91 dB; SR3
residual scale 8 instead of 2: -1.01 vs -0.96) did not close the gap within the one-to-two CPU
minute budget of a learning test. So each test asserts what the recipe does reach, with a margin
below the worst seed (the floors: mean gains over all four crops and over the three natural crops),
which catches a recipe or sampler that degrades the images, and record the mean gain (SR3 beat
bicubic at seed 339). That the recipe beats bicubic is not asserted, because it does not on most
seeds; nor do these tests show learning: both networks start with a zero output, so the untrained
models return bicubic exactly (gain 0.0 dB on every crop).
"""

from __future__ import annotations

import pytest
import torch

from difflab.vision.data import HELDOUT_PHOTOS, SRDataModule
from difflab.vision.evaluate import (
    BRIEF_TRAINING,
    brief_schedule,
    build_resshift4,
    evaluate_heldout,
    train_briefly,
)
from difflab.vision.models import SR3
from difflab.vision.networks import UNet

STEPS = BRIEF_TRAINING["steps"]
NATURAL = ("coffee", "rocket", "china")
"""The held-out crops with texture (the retina crop is nearly flat)."""
# dB floors, below the worst of seeds 0-4 with a margin (module docstring): (all four crops, natural crops)
RESSHIFT_FLOORS = (-4.0, -1.5)  # measured -2.39 to -0.32 and -0.33 to +0.55
SR3_FLOORS = (-2.5, -1.0)  # measured -0.96 to -0.30 and -0.03 to +0.76
pytestmark = pytest.mark.usefixtures("one_thread")


def _check(res, record_property, floors: tuple[float, float]) -> None:
    """Record the per-image PSNR-Y gains over bicubic; assert the floors of their means over all crops
    and over the natural crops."""
    gains = dict(zip(HELDOUT_PHOTOS, (s - b for s, b in zip(res["per_image_psnr_y"], res["per_image_bicubic_psnr_y"]))))
    for name, g in gains.items():
        record_property(f"gain_{name}", g)
    mean = sum(gains.values()) / len(gains)
    natural = sum(gains[n] for n in NATURAL) / len(NATURAL)
    record_property("psnr_y_gain", mean)
    record_property("psnr_y_gain_natural", natural)
    assert mean > floors[0] and natural > floors[1], (mean, natural)


@pytest.mark.slow
def test_resshift_stays_above_its_floor_against_bicubic(test_seed, record_property):
    model, dm = build_resshift4(steps=STEPS, seed=test_seed)  # the demo's model, data and recipe
    train_briefly(model, dm, max_steps=STEPS, seed=test_seed, ema_decay=BRIEF_TRAINING["ema_decay"])
    model.eval()
    res = evaluate_heldout(lambda y, g: model.super_resolve(y, generator=g).sample, dm, 2, seed=test_seed)
    print("ResShift-4 per image", res["per_image_psnr_y"], "bicubic", res["per_image_bicubic_psnr_y"])
    _check(res, record_property, RESSHIFT_FLOORS)


@pytest.mark.slow
def test_sr3_ddim4_stays_above_its_floor_against_bicubic(test_seed, record_property):
    torch.manual_seed(test_seed)
    dm = SRDataModule(
        scale=2, patch_size=32, batch_size=16, eval_size=96, eval_batch_size=4, samples_per_epoch=16 * STEPS
    )
    model = SR3(
        UNet.from_preset("small"),
        scale=2,
        schedule="cosine",
        num_train_steps=1000,
        **brief_schedule(STEPS),
    )
    train_briefly(model, dm, max_steps=STEPS, seed=test_seed, ema_decay=BRIEF_TRAINING["ema_decay"])
    model.eval()
    res = evaluate_heldout(
        lambda y, g: model.super_resolve(y, steps=4, sampler="ddim", generator=g).sample, dm, 2, seed=test_seed
    )
    print("SR3 DDIM-4 per image", res["per_image_psnr_y"], "bicubic", res["per_image_bicubic_psnr_y"])
    _check(res, record_property, SR3_FLOORS)
