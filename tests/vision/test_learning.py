"""Learning test (slow): brief CPU training on the default photographs beats bicubic upsampling.

Measured on an idle 2-core CPU (x2 bicubic, Adam lr 2e-3 with cosine decay to 1e-4, batch 16 of
32 px crops, small U-Net, held-out centred 96 px crops), PSNR-Y gain over bicubic on coffee /
rocket / china with the resumable, per-epoch seeded data order: ResShift-4 (kappa 1) after 600 steps
+0.68 / +1.09 / +0.67 dB (mean +0.81; the nearly flat retina crop, bicubic 52.8 dB, loses 2.4 dB and
is reported, not asserted). The threshold is about half the observed mean gain. After 300 steps the
gain depended on the data order (+0.43 or +0.03 dB), hence the longer run.

The SR3 baseline (residual target, x0 prediction, cosine chain of 1000 steps) after the same 600
steps, mean gain by DDIM step count: 1 step +1.38 dB, 2 steps +1.08, 4 steps +0.87, 10 steps -0.04.
Few deterministic steps stay close to the posterior mean (the PSNR-optimal answer); more steps add
sampled detail that PSNR penalises at this training budget. The test samples with DDIM-4.
"""

from __future__ import annotations

from functools import partial

import pytest
import torch

from difflab.vision.data import HELDOUT_PHOTOS, SRDataModule
from difflab.vision.evaluate import evaluate_heldout, train_briefly
from difflab.vision.models import SR3, ResShiftSR
from difflab.vision.networks import UNet

NATURAL = [i for i, n in enumerate(HELDOUT_PHOTOS) if n != "retina_crop"]
STEPS = 600
RESSHIFT_THRESHOLD = 0.4  # dB, mean PSNR-Y gain over bicubic on coffee, rocket, china
pytestmark = pytest.mark.usefixtures("one_thread")

SR3_THRESHOLD = 0.4  # dB, same images, DDIM-4 (observed +0.87)


def _data(steps: int = STEPS):
    return SRDataModule(
        scale=2, patch_size=32, batch_size=16, eval_size=96, eval_batch_size=4, samples_per_epoch=16 * steps
    )


def _schedule(steps: int = STEPS):
    """Adam at 2e-3 with a cosine decay to 1e-4 over the run (steadier end points than a constant rate)."""
    return dict(
        optimizer=partial(torch.optim.Adam, lr=2e-3),
        lr_scheduler=partial(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=steps, eta_min=1e-4),
    )


def _gain(res) -> float:
    ours, base = res["per_image_psnr_y"], res["per_image_bicubic_psnr_y"]
    return sum(ours[i] - base[i] for i in NATURAL) / len(NATURAL)


@pytest.mark.slow
def test_resshift_beats_bicubic(test_seed, record_property):
    torch.manual_seed(test_seed)
    dm = _data(STEPS)
    model = ResShiftSR(
        UNet.from_preset("small"),
        scale=2,
        num_steps=4,
        kappa=1.0,
        min_noise=0.2,
        **_schedule(STEPS),
    )
    train_briefly(model, dm, max_steps=STEPS, seed=test_seed)
    model.eval()
    res = evaluate_heldout(lambda y, g: model.super_resolve(y, generator=g).sample, dm, 2, seed=test_seed)
    print("ResShift-4 per image", res["per_image_psnr_y"], "bicubic", res["per_image_bicubic_psnr_y"])
    record_property("psnr_y_gain", _gain(res))
    assert _gain(res) > RESSHIFT_THRESHOLD


@pytest.mark.slow
def test_sr3_ddim4_beats_bicubic(test_seed, record_property):
    torch.manual_seed(test_seed)
    dm = _data(STEPS)
    model = SR3(UNet.from_preset("small"), scale=2, schedule="cosine", num_train_steps=1000, **_schedule(STEPS))
    train_briefly(model, dm, max_steps=STEPS, seed=test_seed)
    model.eval()
    res = evaluate_heldout(
        lambda y, g: model.super_resolve(y, steps=4, sampler="ddim", generator=g).sample, dm, 2, seed=test_seed
    )
    print("SR3 DDIM-4 per image", res["per_image_psnr_y"], "bicubic", res["per_image_bicubic_psnr_y"])
    record_property("psnr_y_gain", _gain(res))
    assert _gain(res) > SR3_THRESHOLD
