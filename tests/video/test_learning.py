"""Learning tests: brief CPU training on the mocap default data beats random proposals by a wide margin.

Measured on 2026-11-27 (80 training steps each, one thread, 32 held-out videos, 14 classes): random
proposals reach mAP@0.5 0.008, DiffTAD (2 DDIM steps) 0.82, the deterministic baseline 0.98. The
thresholds are about half of each detector's observed gain over random proposals.
"""

import pytest
import torch

from difflab.video.data import MocapTADDataModule
from difflab.video.demo import evaluate, fit, small_models

STEPS = 80
DIFFTAD_THRESHOLD = 0.40
BASELINE_THRESHOLD = 0.49


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
