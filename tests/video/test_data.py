"""Mocap composition, the ActionFormer/ActivityNet loader, its time axis and its errors."""

import json

import numpy as np
import pytest
import torch

from difflab.video.data import AnnotationError, FeatureSpec, TADDataModule, collate_videos, mocap, read_annotations


def write_set(root, database, feats):
    (root / "features").mkdir(parents=True, exist_ok=True)
    for vid, arr in feats.items():
        np.save(root / "features" / f"{vid}.npy", arr)
    path = root / "ann.json"
    path.write_text(json.dumps({"database": database}))
    return path


def entry(subset, duration, anns, fps=30.0):
    return {
        "subset": subset,
        "duration": duration,
        "fps": fps,
        "annotations": [{"label": lab, "segment": [s, e]} for lab, s, e in anns],
    }


def test_clips_load_and_compose_with_exact_segments():
    clips = mocap.load_clips(("kick", "run", "walk"))
    assert clips["kick"].poses.shape[1] == 43 and not clips["kick"].loops and clips["run"].loops
    rng = np.random.default_rng(0)
    poses, segs = mocap.compose_sequence(clips, ["kick", "run"], rng, num_actions=(3, 3))
    assert len(segs) == 3 and all(lab in ("kick", "run") for _, _, lab in segs)
    ends = [0.0] + [e for _, e, _ in segs]
    assert all(s >= prev for (s, _, _), prev in zip(segs, ends))  # ordered, with background between
    assert segs[-1][1] < len(poses) / mocap.FPS
    f = mocap.pose_features(poses, 4, 8, rng)
    assert f.shape == ((len(poses) - 8) // 4 + 1, 158) and np.isfinite(f).all()


def test_make_dataset_layout_and_loader(tmp_path):
    path = mocap.make_dataset(tmp_path, n_train=3, n_val=2, n_test=2, classes=["kick", "punch", "jump"], seed=1)
    data = json.loads(path.read_text())
    assert len(data["database"]) == 7
    vid, e = next(iter(data["database"].items()))
    assert {"subset", "duration", "fps", "annotations"} <= set(e)
    feats = np.load(tmp_path / "features" / f"{vid}.npy")
    assert feats.ndim == 2 and feats.shape[1] == 158
    dm = TADDataModule(
        str(path),
        train_subsets=["training"],
        val_subsets=["validation"],
        test_subsets=["testing"],
        feat_stride=4,
        num_frames=8,
        batch_size=2,
    )
    dm.setup()
    train_labels = {
        a["label"] for v in data["database"].values() if v["subset"] == "training" for a in v["annotations"]
    }
    assert dm.classes == sorted(train_labels) and set(dm.classes) <= {"kick", "punch", "jump"}
    batch = collate_videos([dm.val_set[0], dm.val_set[1]])
    assert batch["feats"].shape[0] == 2 and batch["mask"].dtype == torch.bool
    seg = batch["gt_segments"][batch["gt_valid"]]
    assert ((seg[:, 0] > 0) & (seg[:, 0] < 1) & (seg[:, 1] > 0)).all()


def test_actionformer_time_axis_round_trip():
    spec = FeatureSpec(".", feat_stride=4, num_frames=16)  # THUMOS14 I3D
    sec = np.array([1.0, 10.0])
    grid = spec.sec_to_grid(sec, 30.0, 100.0, 700)
    assert np.allclose(grid, sec * 30 / 4 - 0.5 * 16 / 4)
    assert np.allclose(spec.grid_to_sec(grid, 30.0, 100.0, 700), sec)
    resized = FeatureSpec(".", resize_to=192)  # ActivityNet features resized to a fixed length
    assert np.allclose(resized.sec_to_grid(np.array([50.0]), 30.0, 100.0, 192), [96.0])


def test_segments_normalised_from_seconds(tmp_path):
    path = write_set(
        tmp_path,
        {"v": entry("training", 10.0, [("a", 2.0, 4.0)])},
        {"v": np.zeros(((300 - 8) // 4 + 1, 5), np.float32)},
    )
    dm = TADDataModule(str(path), val_subsets=["training"], test_subsets=["training"], feat_stride=4, num_frames=8)
    dm.setup()
    item = dm.val_set[0]
    t = item["feats"].shape[0]
    s, e = (2.0 * 30 / 4 - 1) / t, (4.0 * 30 / 4 - 1) / t
    assert torch.allclose(item["segments"][0], torch.tensor([(s + e) / 2, e - s]), atol=1e-6)


@pytest.mark.parametrize(
    "database, feats, message",
    [
        ({"v1": entry("training", 10.0, [("a", 2.0, 12.0)])}, {"v1": np.zeros((70, 5))}, "v1.*outside the video"),
        ({"v1": entry("training", 10.0, [("a", 5.0, 3.0)])}, {"v1": np.zeros((70, 5))}, "v1.*end <= start"),
        ({"v1": entry("training", 10.0, [("a", 1.0, 3.0)])}, {}, "v1.*feature file .* is missing"),
        ({"v1": entry("training", 10.0, [("a", 1.0, 3.0)])}, {"v1": np.zeros((70,))}, "v1.*must be 2-D"),
        ({"v1": entry("training", 10.0, [("a", 1.0, 3.0)])}, {"v1": np.full((70, 5), np.nan)}, "v1.*NaN"),
        (
            {"v1": entry("training", 10.0, [("a", 1.0, 3.0)]), "v2": entry("validation", 10.0, [("zzz", 1.0, 3.0)])},
            {"v1": np.zeros((70, 5)), "v2": np.zeros((70, 5))},
            "v2.*unknown labels.*zzz",
        ),
        (
            {"v1": entry("training", 10.0, [("a", 1.0, 3.0)]), "v2": entry("validation", 10.0, [("a", 1.0, 3.0)])},
            {"v1": np.zeros((70, 5)), "v2": np.zeros((70, 6))},
            "v2.*channels",
        ),
    ],
)
def test_bad_input_names_the_video(tmp_path, database, feats, message):
    path = write_set(tmp_path, database, feats)
    dm = TADDataModule(
        str(path), train_subsets=["training"], val_subsets=["validation", "training"], test_subsets=["training"]
    )
    with pytest.raises(AnnotationError, match=message):
        dm.setup()


def test_wrong_channel_count_and_missing_fps(tmp_path):
    path = write_set(tmp_path, {"v1": entry("training", 10.0, [("a", 1.0, 3.0)])}, {"v1": np.zeros((70, 5))})
    spec = FeatureSpec(tmp_path / "features", input_dim=2048)
    with pytest.raises(AnnotationError, match="v1.*5 channels, expected 2048"):
        spec.load("v1")
    raw = json.loads(path.read_text())
    del raw["database"]["v1"]["fps"]
    path.write_text(json.dumps(raw))
    with pytest.raises(AnnotationError, match="v1.*fps"):
        read_annotations(path, default_fps=None)
    assert read_annotations(path, default_fps=25.0)[0].fps == 25.0


@pytest.mark.slow
def test_rendered_features(tmp_path):
    clips = mocap.load_clips(("kick", "walk"))
    poses, _ = mocap.compose_sequence(clips, ["kick"], np.random.default_rng(0), num_actions=(1, 1))
    feats = mocap.render_features(poses[:40], 4, 8, size=32, cells=8)
    assert feats.shape == ((40 - 8) // 4 + 1, 2 * 2 * 64) and np.isfinite(feats).all() and feats.std() > 0
