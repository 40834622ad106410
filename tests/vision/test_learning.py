"""Learning test (slow): brief CPU training on the default photographs must beat bicubic upsampling.

Recipe (the demo's, :data:`difflab.vision.evaluate.BRIEF_TRAINING`; the shipped pretrained recipe's
choices at a one-to-two-minute budget): x2 bicubic, batch 16 of 32 px crops, a 16-channel U-Net
without attention (:data:`~difflab.vision.evaluate.BRIEF_NETWORK`), 600 Adam steps at 2e-3 with a
cosine decay to 1e-4, EMA of the weights (decay 0.99, the averaged weights are evaluated), the L1
loss on the ``x0`` prediction; ResShift-4 from the shipped config ``resshift4_photos_x2`` (kappa
0.5, min_noise 0.2) sampled with the ancestral sampler on 2 of its 4 steps; SR3 with the residual
target (scale 2), x0-prediction, cosine chain of 1000 steps, sampled with DDIM in one step. Score:
PSNR-Y gain over bicubic averaged over ALL four held-out centred 96 px crops (coffee, rocket,
retina, china). Both networks start with a zero output, so an untrained model returns bicubic
exactly (gain 0.0 dB on every crop) and fails the assertion.

Measured with ``python scripts/learning_spread.py tests/vision/test_learning.py --seeds 0-4
--threads 1 --jobs 2`` (2026-12-07, 2-core Xeon with AVX-512; the one-thread rows of 2026-12-06 did
not reproduce on this code, seed 0 then +0.82 / +0.75, now +0.85 / +0.88, while the two-thread rows
of ``--seeds 0-1 --threads 2`` reproduce to the digit); 150 to 180 s per seed for both tests. dB,
``psnr_y_gain`` is the mean over the four crops:

`test_resshift_beats_bicubic` (ResShift-4, DDPM-2; PSNR-Y gain over bicubic, dB):

| seed | threads | coffee | rocket | retina | china | mean of 4 |
|---|---|---|---|---|---|---|
| 0 | 1 | +1.97 | +0.70 | +0.19 | +0.52 | +0.85 |
| 1 | 1 | +1.56 | +0.76 | +0.08 | +0.61 | +0.75 |
| 2 | 1 | +1.70 | +0.70 | +0.07 | +0.47 | +0.74 |
| 3 | 1 | +1.28 | +0.47 | +0.11 | +0.50 | +0.59 |
| 4 | 1 | +1.86 | +0.91 | +0.16 | +0.54 | +0.87 |
| 0 | 2 | +1.59 | +0.74 | +0.20 | +0.49 | +0.75 |
| 1 | 2 | +1.45 | +0.98 | +0.02 | +0.56 | +0.75 |
| mean | 1 | +1.67 | +0.71 | +0.12 | +0.53 | +0.76 |
| min | all | +1.28 | +0.47 | +0.02 | +0.47 | +0.59 |
| max | all | +1.97 | +0.98 | +0.20 | +0.61 | +0.87 |

`test_sr3_ddim1_beats_bicubic` (SR3, DDIM-1; PSNR-Y gain over bicubic, dB):

| seed | threads | coffee | rocket | retina | china | mean of 4 |
|---|---|---|---|---|---|---|
| 0 | 1 | +2.17 | +0.88 | +0.00 | +0.46 | +0.88 |
| 1 | 1 | +1.84 | +0.76 | -0.13 | +0.49 | +0.74 |
| 2 | 1 | +1.54 | +0.65 | -0.20 | +0.42 | +0.60 |
| 3 | 1 | +1.83 | +0.73 | +0.12 | +0.64 | +0.83 |
| 4 | 1 | +0.88 | +0.56 | -0.08 | +0.40 | +0.44 |
| 0 | 2 | +1.88 | +0.78 | -0.07 | +0.48 | +0.77 |
| 1 | 2 | +1.57 | +0.78 | -0.19 | +0.51 | +0.67 |
| mean | 1 | +1.65 | +0.72 | -0.06 | +0.48 | +0.70 |
| min | all | +0.88 | +0.56 | -0.20 | +0.40 | +0.44 |
| max | all | +2.17 | +0.88 | +0.12 | +0.64 | +0.88 |

Every seed beats bicubic on the mean over all four crops (worst +0.59 dB for ResShift, +0.44 dB for
SR3), and on each natural crop; the nearly flat retina crop (bicubic 52.8 dB, residual std 0.006 in
[-1, 1]) stays within about 0.2 dB of bicubic. The earlier recipe (32-channel U-Net with middle
attention, MSE loss, 300 steps; ResShift DDPM-4, SR3 DDIM-4) lost 2.5 to 8.6 dB on that crop,
because errors of a few 1/255 flip the 8-bit rounding of an image bicubic already gets almost
exactly right, and so lost -0.30 to -2.39 dB on the mean on every seed. What closed the gap are the
shipped pretrained recipe's choices: the L1 loss on the ``x0`` prediction (its gradient does not
vanish on the small residual errors of flat regions, as the MSE's does; SR3 with the MSE at this
budget, seeds 0 and 1: retina -4.8 / -2.6 dB, mean -0.51 / -0.02 dB with DDIM-1), a 16-channel
network without attention, which costs a quarter of the 32-channel one per step, so twice the steps
fit the same CPU time, and few-step sampling of the ``x0`` estimate (ResShift seeds 0 / 1: DDPM-2
+0.82 / +0.70, DDIM-1 +0.75 / +0.60, DDPM-4 +0.72 / +0.63 dB; SR3 with L1: DDIM-1 +0.75 / +0.69,
DDIM-4 +1.10 / +0.05 dB). The floors (+0.3 dB for both) sit 0.14 dB (SR3) and 0.29 dB (ResShift)
below the worst seed and well above the untrained model's 0.0 dB.
"""

from __future__ import annotations

import pytest

from difflab.vision.data import HELDOUT_PHOTOS
from difflab.vision.evaluate import BRIEF_TRAINING, build_resshift4, build_sr3, evaluate_heldout, train_briefly

STEPS = BRIEF_TRAINING["steps"]
# dB, mean PSNR-Y gain over bicubic on the four crops: below the worst of seeds 0-4 with a margin (docstring)
RESSHIFT_FLOOR = 0.3  # measured +0.59 to +0.87
SR3_FLOOR = 0.3  # measured +0.44 to +0.88
pytestmark = pytest.mark.usefixtures("one_thread")


def _check(res, record_property, floor: float) -> None:
    """Record the per-image PSNR-Y gains over bicubic and their mean over all four crops; assert the mean."""
    gains = dict(zip(HELDOUT_PHOTOS, (s - b for s, b in zip(res["per_image_psnr_y"], res["per_image_bicubic_psnr_y"]))))
    for name, g in gains.items():
        record_property(f"gain_{name}", g)
    mean = sum(gains.values()) / len(gains)
    record_property("psnr_y_gain", mean)
    assert mean > floor, gains


@pytest.mark.slow
def test_resshift_beats_bicubic(test_seed, record_property):
    model, dm = build_resshift4(steps=STEPS, seed=test_seed)  # the demo's model, data and recipe
    train_briefly(model, dm, max_steps=STEPS, seed=test_seed, ema_decay=BRIEF_TRAINING["ema_decay"])
    model.eval()
    res = evaluate_heldout(lambda y, g: model.super_resolve(y, generator=g).sample, dm, 2, seed=test_seed)
    print("ResShift-4 DDPM-2 per image", res["per_image_psnr_y"], "bicubic", res["per_image_bicubic_psnr_y"])
    _check(res, record_property, RESSHIFT_FLOOR)


@pytest.mark.slow
def test_sr3_ddim1_beats_bicubic(test_seed, record_property):
    model, dm = build_sr3(steps=STEPS, seed=test_seed)
    train_briefly(model, dm, max_steps=STEPS, seed=test_seed, ema_decay=BRIEF_TRAINING["ema_decay"])
    model.eval()
    res = evaluate_heldout(lambda y, g: model.super_resolve(y, generator=g).sample, dm, 2, seed=test_seed)
    print("SR3 DDIM-1 per image", res["per_image_psnr_y"], "bicubic", res["per_image_bicubic_psnr_y"])
    _check(res, record_property, SR3_FLOOR)
