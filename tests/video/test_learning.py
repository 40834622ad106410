"""Learning tests: brief CPU training on the mocap default data beats random proposals by a wide margin.

80 training steps each, one thread, 160 training and 32 held-out videos, 14 classes, DiffTAD sampled
with 2 DDIM steps. Random proposals reach mAP@0.5 0.008. Over ``DIFFLAB_TEST_SEED`` 0-4 (one thread;
``python scripts/learning_spread.py tests/video/test_learning.py --seeds 0-4``, rerun 2026-12-06
with the same numbers), mAP@0.5:

| seed | DiffTAD | deterministic baseline |
|---|---|---|
| 0 | 0.824 | 0.983 |
| 1 | 0.776 | 0.989 |
| 2 | 0.722 | 0.998 |
| 3 | 0.815 | 0.993 |
| 4 | 0.775 | 1.000 |
| mean | 0.782 | 0.993 |
| min | 0.722 | 0.983 |
| max | 0.824 | 1.000 |

Seeds 5-25 (``--seeds 5-25``, 2026-12-07): DiffTAD 0.639-0.865 (mean 0.746; 0.639 at seed 13,
0.644 at seed 7), the baseline 0.970-1.000. Two threads, seeds 0-1: see video/README.md. Thresholds:
DiffTAD 0.50 and the baseline 0.90, about 0.14 and 0.07 below the worst of the 26 seeds and far above
random proposals. DiffTAD's bound was 0.60, set from seeds 0-4, until seed 13 came within 0.04 of it.
"""

import pytest
import torch

from difflab.video.data import MocapTADDataModule
from difflab.video.demo import evaluate, fit, small_models

STEPS = 80
DIFFTAD_THRESHOLD = 0.50
BASELINE_THRESHOLD = 0.90


@pytest.fixture(scope="module")
def trained(tmp_path_factory, one_thread_module, test_seed):  # one thread: fastest on a shared 2-core machine
    root = tmp_path_factory.mktemp("mocap")
    dm = MocapTADDataModule(root=str(root), n_train=160, n_val=16, n_test=32, batch_size=8, seed=0)
    dm.setup()
    torch.manual_seed(test_seed)
    diff, det = small_models(dm.input_dim, dm.num_classes, dm.classes)
    fit(diff, dm, STEPS, seed=test_seed)
    fit(det, dm, STEPS, seed=test_seed)
    _, random_map, *_ = evaluate("random", dm)
    return dm, diff, det, random_map["mAP@0.5"]


@pytest.mark.slow
def test_difftad_beats_random_proposals(trained, test_seed, record_property):
    dm, diff, _, random_map = trained
    _, m, *_ = evaluate(diff, dm, steps=2, selective_conditioning=True, seed=test_seed)
    record_property("map50", m["mAP@0.5"])
    record_property("random_map50", random_map)
    assert random_map < 0.05
    assert m["mAP@0.5"] > DIFFTAD_THRESHOLD, (m, random_map)


@pytest.mark.slow
def test_deterministic_baseline_beats_random_proposals(trained, record_property):
    dm, _, det, random_map = trained
    _, m, *_ = evaluate(det, dm)
    record_property("map50", m["mAP@0.5"])
    assert m["mAP@0.5"] > BASELINE_THRESHOLD, (m, random_map)
