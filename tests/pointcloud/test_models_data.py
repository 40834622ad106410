"""Data modules, patches, networks and the methods' math (small and fast)."""

import numpy as np
import pytest
import torch

from difflab.pointcloud.data import FilterDataModule, ShapeDataModule, mesh_folder_items
from difflab.pointcloud.io import Mesh, write_mesh, write_points
from difflab.pointcloud.models import IterativePFN, PointDDPM, PointStraightFlow, ScoreDenoiser, euler_sample
from difflab.pointcloud.models.iterativepfn import nearest_target, seed_weights
from difflab.pointcloud.networks import DisplacementNet, PointSetDenoiser
from difflab.pointcloud.patches import farthest_point_sample, filter_cloud


def tetra(scale=1.0) -> Mesh:
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float64) * scale
    return Mesh(v, np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]]))


def test_mesh_folder_layout_and_class_conditional(tmp_path):
    for cat in ("chair", "lamp"):
        for split in ("train", "test"):
            for i in range(3):
                write_mesh(tmp_path / cat / split / f"{cat}_{i}.off", tetra(1 + i))
    paths, labels, cats = mesh_folder_items(tmp_path, "train")
    assert cats == ["chair", "lamp"] and labels == [0, 0, 0, 1, 1, 1] and len(paths) == 6
    dm = ShapeDataModule(source="meshfolder", root=str(tmp_path), num_points=32, batch_size=2)
    dm.setup()
    assert dm.num_classes == 2 and len(dm.val_set) == 6
    b = next(iter(dm.train_dataloader()))
    assert b["x0"].shape == (2, 32, 3) and b["label"].dtype == torch.long
    assert torch.allclose(b["x0"].norm(dim=-1).amax(1), torch.ones(2), atol=1e-5)  # unit sphere
    net = PointSetDenoiser("tiny", num_classes=dm.num_classes)
    model = PointStraightFlow(net, sample_steps=2)
    loss = model.training_loss(b)
    assert torch.isfinite(loss)
    out = model.generate(2, 16, label=torch.tensor([0, 1]), generator=torch.Generator().manual_seed(0))
    assert out.sample.shape == (2, 16, 3) and out.nfe == 2
    with pytest.raises(FileNotFoundError, match="no 'val' folder|no 'test'"):
        mesh_folder_items(tmp_path, "val")


def test_point_folder_resamples_small_clouds(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(6):
        write_points(tmp_path / f"s{i}.xyz", rng.normal(size=(20 if i == 0 else 100, 3)))
    dm = ShapeDataModule(source="pointfolder", root=str(tmp_path), num_points=50, batch_size=2)
    with pytest.warns(UserWarning, match="s0.xyz: 20 points, fewer than the 50"):
        dm.setup()
    assert len(dm.train_set) + len(dm.val_set) == 6


def test_filter_patches_are_normalised_and_deterministic():
    dm = FilterDataModule(source="pybullet", num_points=1024, patch_size=64, patches_per_epoch=8, val_patches=2)
    dm.setup()
    a, b = dm.train_set[3], dm.train_set[3]
    assert torch.equal(a["y"], b["y"]) and a["y"].shape == (64, 3)
    assert a["y"].norm(dim=-1).max() == pytest.approx(1.0, abs=1e-5)
    assert 0 < a["sigma"] < 1
    with pytest.raises(ValueError, match="noise_range"):
        FilterDataModule(noise_range=(0.03, 0.01))


def test_fps_and_stitching():
    x = torch.rand(500, 3)
    idx = farthest_point_sample(x, 10)
    assert len(set(idx.tolist())) == 10
    pts = np.random.default_rng(0).normal(size=(700, 3)).astype(np.float32)
    assert np.allclose(filter_cloud(pts, lambda p: p, patch_size=64), pts, atol=1e-5)  # identity filter
    shifted = filter_cloud(pts * 5, lambda p: p * 0.5, patch_size=64)
    assert np.isfinite(shifted).all() and shifted.shape == pts.shape


def test_iterativepfn_targets_and_loss():
    p = torch.tensor([[[0.0, 0, 0], [1, 0, 0]]])
    t = torch.tensor([[[0.0, 0, 0.1], [2, 0, 0]]])
    assert torch.allclose(nearest_target(p, t), torch.tensor([[[0, 0, 0.1], [1, 0, 0]]]))
    w = seed_weights(torch.tensor([[[0.0, 0, 0], [1, 0, 0]]]))
    assert torch.allclose(w.sum(1), torch.ones(1)) and w[0, 0] > w[0, 1]
    model = IterativePFN(num_iterations=3, k=4, width=8, layers=1)
    y = torch.randn(2, 32, 3)
    batch = {"y": y, "x0": y * 0.9, "sigma": torch.tensor([0.05, 0.1])}
    loss = model.training_loss(batch, torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss) and all(m.head[-1].weight.grad is not None for m in model.modules_)
    assert len(model.iterate(y)) == 3
    with pytest.raises(ValueError, match="decay"):
        IterativePFN(decay=1.0)


def test_score_target_points_to_clean_neighbours():
    model = ScoreDenoiser(k=4, width=8, layers=1, num_neighbours=1, steps=5)
    clean = torch.zeros(1, 4, 3) + torch.tensor([0.0, 0, 1])
    x = torch.zeros(1, 2, 3)
    assert torch.allclose(model.score_target(x, clean), torch.tensor([[[0.0, 0, 1], [0, 0, 1]]]))
    assert model.filter_patches(torch.randn(2, 16, 3)).shape == (2, 16, 3)


def test_euler_sampler_is_exact_euler_for_the_flow():
    net = PointSetDenoiser("tiny")
    model = PointStraightFlow(net)
    z = torch.randn(2, 16, 3)
    one = euler_sample(model, z, 1)
    with torch.no_grad():
        expect = z - net(z, torch.ones(2))
    assert torch.allclose(one, expect, atol=1e-5)


def test_reflow_and_distill_losses_and_ddpm():
    net = PointSetDenoiser("tiny", depth=1)
    batch = {"x0": torch.randn(2, 16, 3), "x1": torch.randn(2, 16, 3)}
    for stage in ("reflow", "distill"):
        assert torch.isfinite(PointStraightFlow(net, stage=stage).training_loss(batch))
    with pytest.raises(ValueError, match="pairs"):
        PointStraightFlow(net, stage="reflow").training_loss({"x0": batch["x0"]})
    with pytest.raises(ValueError, match="stage"):
        PointStraightFlow(net, stage="nope")
    ddpm = PointDDPM(net, num_steps=50, sample_steps=3)
    assert torch.isfinite(ddpm.training_loss(batch))
    assert ddpm.generate(2, 8).sample.shape == (2, 8, 3)


def test_networks_shapes():
    assert DisplacementNet(k=4, width=8, layers=2)(torch.randn(2, 20, 3)).shape == (2, 20, 3)
    for preset in ("tiny", "small"):
        out = PointSetDenoiser(preset, k=4)(torch.randn(2, 20, 3), torch.rand(2))
        assert out.shape == (2, 20, 3)
    with pytest.raises(ValueError, match="preset"):
        PointSetDenoiser("huge")


def test_pybullet_source_skips_the_broken_object():
    """pybullet_data's object 168 has non-finite vertices: it is skipped with a warning, the split
    still has the requested size and the held-out objects start after the last training object."""
    from difflab.pointcloud.data.sources import readable_pybullet_meshes

    with pytest.warns(UserWarning, match=r"168\.obj: mesh has non-finite"):
        meshes, nxt = readable_pybullet_meshes(3, 167)
    assert len(meshes) == 3 and nxt == 171
    dm = ShapeDataModule(source="pybullet", num_points=32, num_shapes=2, num_val_shapes=2, batch_size=2)
    dm.setup("fit")
    assert dm.train_set.clouds.shape == (2, 32, 3) and dm.val_set.clouds.shape == (2, 32, 3)
    assert bool(torch.isfinite(dm.train_set.clouds).all())


def test_label_dropout_trains_the_no_class_label_and_only_in_training():
    """``label_dropout = p`` hands the network its "no class" label for a share ``p`` of the examples in
    training, never in eval; ``null_condition`` exists only for such a model."""
    seen = []

    class Spy(PointSetDenoiser):
        def forward(self, x, t, label=None):
            seen.append(label.clone())
            return super().forward(x, t, label)

    torch.manual_seed(0)
    model = PointDDPM(Spy("tiny", num_classes=3), num_steps=100, label_dropout=0.25)
    batch = {"label": torch.randint(0, 3, (4000,))}
    x, t = torch.zeros(4000, 2, 3), torch.full((4000,), 0.5)
    model.train()
    model.network_forward(x, t, batch)
    dropped = seen[-1] == 3
    assert abs(float(dropped.float().mean()) - 0.25) < 0.03
    assert torch.equal(seen[-1][~dropped], batch["label"][~dropped])
    model.eval()
    model.network_forward(x, t, batch)
    assert torch.equal(seen[-1], batch["label"])
    assert torch.equal(model.null_condition(batch)["label"], torch.full((4000,), 3))
    assert PointDDPM(PointSetDenoiser("tiny", num_classes=3)).null_condition(batch) is None
    with pytest.raises(ValueError, match="label_dropout"):
        PointDDPM(PointSetDenoiser("tiny", num_classes=3), label_dropout=1.0)
