"""The demo end to end at reduced size (``difflab-pointcloud demo --fast``): tables, ``artifact:`` lines
and the files they name."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from difflab.pointcloud.cli import main
from difflab.pointcloud.io import read_points

ARTIFACT = re.compile(r"^artifact: (?P<path>\S+) \| (?P<what>\S.*)$")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.slow
def test_demo_fast_writes_every_artifact_it_announces(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--fast", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    lines = [ln for ln in text.splitlines() if ln.startswith("artifact:")]
    assert lines and all(ARTIFACT.match(ln) for ln in lines), lines
    paths = [ARTIFACT.match(ln)["path"] for ln in lines]
    assert [p.rsplit("/", 1)[-1] for p in paths] == [
        "pairs.pt",
        "generation.png",
        "psf_sample_0.ply",
        "filtering_bunny.png",
        "filtering_kitten.png",
        "metrics.json",
    ]
    for p in paths:
        assert Path(p).parent == out and Path(p).stat().st_size > 0, p
    import matplotlib.pyplot as plt

    for name in ("generation.png", "filtering_bunny.png", "filtering_kitten.png"):
        img = plt.imread(out / name)[..., :3]
        drawn = (img < 0.8).any(-1).mean()
        assert 0.01 < drawn < 0.6, (name, drawn)  # points on a mostly white page
    for i in range(4):
        assert read_points(out / f"psf_sample_{i}.ply").shape == (256, 3)
    pairs = torch.load(out / "pairs.pt")
    assert pairs["noise"].shape == pairs["sample"].shape and pairs["noise"].shape[1:] == (256, 3)
    metrics = json.loads((out / "metrics.json").read_text())
    assert [r["method"] for r in metrics["generation"]][0] == "PSF 1 step (reflow + distill)"
    assert all(np.isfinite(r[k]) for r in metrics["generation"] for k in ("mmd_cd", "mmd_emd", "1nna_emd"))
    assert {r["method"] for r in metrics["filtering"]} >= {"noisy input", "IterativePFN (4 modules)"}
    assert "| method | nfe | seconds | mmd_cd" in text and "Filtering (held-out CGAL meshes bunny" in text
