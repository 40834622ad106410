"""A user's own features: the data decides the feature dimension and the classes (no model
overrides), the README's commands run as written, and the command line refuses what would give a
silent wrong result (a test split without ground truth, a checkpoint of other classes)."""

import json
from pathlib import Path

import numpy as np
import pytest

from difflab.core.testing import run_readme_commands
from difflab.video.cli import main

README = Path(__file__).resolve().parents[2] / "video" / "README.md"
CLASSES = ["close", "open", "wave"]
DIM = 12  # the mocap default is 158-d with 14 classes


def write_own_data(root: Path, *, annotated_test: bool = True) -> tuple[Path, Path]:
    """Ten 20 s videos of 12-d features with up to three of three classes, ActivityNet layout."""
    rng = np.random.default_rng(0)
    feats_dir = root / "features"
    feats_dir.mkdir(parents=True)
    database = {}
    for subset, n in (("training", 6), ("validation", 2), ("testing", 2)):
        for i in range(n):
            vid, t = f"{subset}_{i}", 150
            feats = rng.normal(size=(t, DIM)).astype(np.float32)
            anns = []
            for j, label in enumerate(CLASSES[: 1 + i % 3]):
                start = 1.0 + 6.0 * j
                feats[int(start * 7.5) : int((start + 4) * 7.5), j] += 3.0
                anns.append({"label": label, "segment": [start, start + 4.0]})
            if subset == "testing" and not annotated_test:
                anns = []
            np.save(feats_dir / f"{vid}.npy", feats)
            database[vid] = {"subset": subset, "duration": 149 * 4 / 30 + 8 / 30, "fps": 30.0, "annotations": anns}
    ann = root / "annotations.json"
    ann.write_text(json.dumps({"database": database}))
    return ann, feats_dir


def data_args(ann: Path, feats: Path) -> list[str]:
    return [
        "--data.class_path",
        "difflab.video.data.TADDataModule",
        "--data.init_args.annotation_file",
        str(ann),
        "--data.init_args.feature_dir",
        str(feats),
    ]


def quiet() -> list[str]:
    return ["--trainer.enable_progress_bar", "false"]


@pytest.mark.parametrize("config", ["smoke_difftad", "smoke_detr"])
def test_smoke_config_trains_on_features_of_another_dimension_and_class_count(config, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    ann, feats = write_own_data(tmp_path / "my")
    assert main(["fit", "--config", config, *data_args(ann, feats), *quiet()]) == 0
    from difflab.video.inference import load_detector

    model, info = load_detector(tmp_path / "outputs/video" / config)
    assert model.network.input_dim == DIM and model.network.num_classes == len(CLASSES)
    assert model.classes == CLASSES and info["classes"] == CLASSES
    out = tmp_path / "det.json"
    assert main(["detect", str(feats), "--ckpt", str(tmp_path / "outputs/video" / config), "--out", str(out)]) == 0
    results = json.loads(out.read_text())["results"]
    assert len(results) == 10
    assert {d["label"] for dets in results.values() for d in dets} <= set(CLASSES)


def test_validation_map_uses_class_names_from_the_first_step(tmp_path, monkeypatch):
    """The class names come from the data when the run starts, not when a checkpoint is written."""
    monkeypatch.chdir(tmp_path)
    ann, feats = write_own_data(tmp_path / "my")
    cli = main(["fit", "--config", "smoke_detr", *data_args(ann, feats), *quiet()])
    assert cli == 0
    from difflab.video.models.common import TADMixin

    seen = []
    original = TADMixin._eval_end

    def spy(self, stage):
        seen.append(list(self.classes or []))
        return original(self, stage)

    monkeypatch.setattr(TADMixin, "_eval_end", spy)
    args = ["validate", "--config", "smoke_detr", *data_args(ann, feats), *quiet()]
    assert main(args) == 0
    assert seen and seen[0] == CLASSES


def test_a_test_split_without_ground_truth_is_an_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    ann, feats = write_own_data(tmp_path / "my", annotated_test=False)
    assert main(["fit", "--config", "smoke_detr", *data_args(ann, feats), *quiet()]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(["test", "--config", "smoke_detr", *data_args(ann, feats), *quiet(), "--ckpt_path", "last"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "annotations.json" in err and "no ground-truth" in err and "test_subsets" in err


def test_a_checkpoint_of_other_classes_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    ann, feats = write_own_data(tmp_path / "my")
    assert main(["fit", "--config", "smoke_detr", *data_args(ann, feats), *quiet()]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(["test", "--config", "smoke_detr", *quiet(), "--ckpt_path", "last"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "['close', 'open', 'wave']" in err and "backflip" in err


def test_readme_own_data_commands(tmp_path, monkeypatch):
    """The README's commands for one's own data, as written, on the smoke recipe (two steps)."""
    monkeypatch.chdir(tmp_path)
    write_own_data(tmp_path / "my")
    smoke = {"difftad_mocap": "smoke_difftad"}
    run_readme_commands(
        README, main, "difflab-video", smoke, {"outputs/video/difftad_mocap": "outputs/video/smoke_difftad"}
    )
    results = json.loads((tmp_path / "detections.json").read_text())["results"]
    assert len(results) == 10
    written = list((tmp_path / "outputs/video/smoke_difftad").glob("lightning_logs/*/samples/test_detections.json"))
    assert len(written) == 1 and len(json.loads(written[0].read_text())["results"]) == 2  # the testing subset
