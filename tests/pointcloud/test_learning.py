"""Learning tests (slow): brief CPU training on the offline default data must beat trivial baselines.

IterativePFN (4 modules, 220 steps) filters noisy held-out CGAL shapes (bunny, fandisk, hand, helmet at
2 % noise); PSF (flow 400 steps, 96 pairs of 50 Euler steps, reflow 200, distill 200) generates in one
step. Per ``DIFFLAB_TEST_SEED`` (one thread, 2026-12-06; ``python scripts/learning_spread.py
tests/pointcloud/test_learning.py --seeds 0-4``, same table in pointcloud/README.md):

| seed | PFN CD / noisy | PFN P2M / noisy | PSF 1 step / 1 Euler step (CD) | PSF 1 step / flow 50 (MMD-CD) |
|---|---|---|---|---|
| 0 | 0.764 | 0.378 | 0.326 | 1.045 |
| 1 | 0.761 | 0.357 | 0.279 | 1.080 |
| 2 | 0.734 | 0.302 | 0.258 | 0.986 |
| 3 | 0.759 | 0.383 | 0.305 | 1.041 |
| 4 | 0.751 | 0.337 | 0.257 | 1.044 |
| mean | 0.754 | 0.351 | 0.285 | 1.039 |
| min | 0.734 | 0.302 | 0.257 | 0.986 |
| max | 0.764 | 0.383 | 0.326 | 1.080 |
| seed 0, two threads | 0.757 | 0.374 | 0.321 | 1.039 |
| seed 1, two threads | 0.745 | 0.346 | 0.265 | 1.043 |

Asserted: Chamfer below 0.85 and P2M below 0.5 of the noisy input's (an identity filter gives 1.0);
PSF's one step below 0.5 of one Euler step of the un-reflowed flow; and within 15 % of the flow's 50
Euler steps on MMD-CD (the README's claim that one step is as close to held-out shapes as 50 steps;
worst seed 1.080).
"""

import functools

import numpy as np
import pytest
import torch

from difflab.core.lightning import train_briefly
from difflab.pointcloud.data import FilterDataModule, PairsDataModule, ShapeDataModule, noisy_copy
from difflab.pointcloud.io import sample_mesh
from difflab.pointcloud.metrics import (
    filtering_chamfer,
    filtering_p2m,
    generation_metrics,
    nearest_training_chamfer,
)
from difflab.pointcloud.models import IterativePFN, PointStraightFlow, euler_sample, make_pairs
from difflab.pointcloud.networks import PointSetDenoiser

pytestmark = pytest.mark.usefixtures("one_thread")

CD_RATIO = 0.85  # IterativePFN Chamfer / noisy input's, held-out meshes at 2 % noise
P2M_RATIO = 0.5  # IterativePFN point-to-mesh / noisy input's
ONE_STEP_OVER_EULER = 0.5  # PSF one step / one Euler step of the flow, Chamfer to the nearest training shape
PSF_OVER_FLOW50 = 1.15  # PSF one step / flow 50 Euler steps, MMD-CD to the held-out shapes


@pytest.mark.slow
def test_iterativepfn_lowers_chamfer_and_p2m_on_held_out_shapes(test_seed, record_property):
    dm = FilterDataModule(num_points=4096, patch_size=128, batch_size=8, patches_per_epoch=100_000)
    dm.setup()
    torch.manual_seed(test_seed)
    model = IterativePFN(
        k=8, width=32, layers=2, patch_size=128, optimizer=functools.partial(torch.optim.Adam, lr=2e-3)
    )
    train_briefly(model, dm, max_steps=220, seed=test_seed)
    res = []
    for i, mesh in enumerate(dm.val_meshes_):  # bunny, fandisk, hand, helmet: never seen in training
        clean = sample_mesh(mesh, 4096, rng=100 + i)
        noisy = noisy_copy(clean, 0.02, seed=i)
        out = model.denoise(noisy)
        assert out.shape == noisy.shape and np.isfinite(out).all()
        res.append(
            [
                filtering_chamfer(noisy, clean),
                filtering_chamfer(out, clean),
                filtering_p2m(noisy, mesh),
                filtering_p2m(out, mesh),
            ]
        )
    cd_noisy, cd_out, p2m_noisy, p2m_out = np.mean(res, 0)
    print(f"CD x1e4 {cd_noisy:.2f} -> {cd_out:.2f}; P2M x1e4 {p2m_noisy:.2f} -> {p2m_out:.2f}")
    record_property("cd_ratio", cd_out / cd_noisy)
    record_property("p2m_ratio", p2m_out / p2m_noisy)
    assert cd_out < CD_RATIO * cd_noisy
    assert p2m_out < P2M_RATIO * p2m_noisy


@pytest.mark.slow
def test_psf_reflow_distill_one_step_beats_one_euler_step_of_the_flow(tmp_path, test_seed, record_property):
    n = 256
    opt = functools.partial(torch.optim.Adam, lr=2e-3)
    dm = ShapeDataModule(num_points=n, num_shapes=32, num_val_shapes=16, batch_size=16)
    dm.setup()
    torch.manual_seed(test_seed)
    flow = PointStraightFlow(PointSetDenoiser("tiny"), optimizer=opt)
    train_briefly(flow, dm, max_steps=400, seed=test_seed)
    pairs = make_pairs(flow, 96, n, steps=50, generator=torch.Generator().manual_seed(1 + test_seed))
    torch.save(pairs, tmp_path / "pairs.pt")
    pdm = PairsDataModule(str(tmp_path / "pairs.pt"), batch_size=16)
    model = PointStraightFlow(PointSetDenoiser("tiny"), stage="reflow", optimizer=opt)
    model.load_state_dict(flow.state_dict())
    train_briefly(model, pdm, max_steps=200, seed=test_seed)
    model.stage = "distill"
    train_briefly(model, pdm, max_steps=200, seed=test_seed)
    z = torch.randn(16, n, 3, generator=torch.Generator().manual_seed(123 + test_seed))
    train = dm.train_set.clouds
    one_step, flow_50 = euler_sample(model, z, 1), euler_sample(flow, z, 50)
    before = nearest_training_chamfer(euler_sample(flow, z, 1), train).mean().item()
    after = nearest_training_chamfer(one_step, train).mean().item()
    held_out, cache = dm.val_set.clouds, {}  # the held-out pairwise matrix is computed once
    mmd_psf = generation_metrics(one_step, held_out, metrics=("cd",), ref_cache=cache)["mmd_cd"]
    mmd_flow = generation_metrics(flow_50, held_out, metrics=("cd",), ref_cache=cache)["mmd_cd"]
    print(f"nearest-training Chamfer: flow 1 Euler step {before:.4f}, reflow + distill 1 step {after:.4f}")
    print(f"MMD-CD to the held-out shapes: PSF 1 step {mmd_psf:.4f}, flow 50 Euler steps {mmd_flow:.4f}")
    record_property("one_step_ratio", after / before)
    record_property("mmd_cd_psf_over_flow50", mmd_psf / mmd_flow)
    assert after < ONE_STEP_OVER_EULER * before
    assert mmd_psf < PSF_OVER_FLOW50 * mmd_flow
