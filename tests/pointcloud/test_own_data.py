"""One's own clouds: the smoke filters train on a folder of clean clouds of other sizes and formats
with no model overrides, the data decides the patch size (kept in the checkpoint, checked by test
and denoise in one line), bad files are one-line errors naming them, a big cloud shows progress,
and the README's commands run as written."""

import re
from pathlib import Path

import lightning.pytorch  # noqa: F401  (its log handlers bind to the session's stderr, not one test's capture)
import numpy as np
import pytest

from difflab.core.testing import run_readme_commands, user_error_line
from difflab.pointcloud.cli import main

README = Path(__file__).resolve().parents[2] / "pointcloud" / "README.md"
PATCH = 24  # the smoke configs' patches hold 32 points of 512-point mesh samples


def sphere(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def torus(rng: np.random.Generator, n: int) -> np.ndarray:
    a, b = rng.uniform(0, 2 * np.pi, (2, n))
    r = 1 + 0.4 * np.cos(b)
    return np.stack([r * np.cos(a), r * np.sin(a), 0.4 * np.sin(b)], 1)


def box(rng: np.random.Generator, n: int) -> np.ndarray:
    p = rng.uniform(-1, 1, (n, 3))
    face = rng.integers(0, 3, n)
    p[np.arange(n), face] = np.sign(p[np.arange(n), face])
    return p


def write_own_clouds(root: Path) -> tuple[Path, Path]:
    """``root/clean``: three clean clouds of 250-400 points in .xyz, .ply and .npy; ``root/noisy``: two
    noisy clouds to filter (.xyz and the vertices of an .off file)."""
    from difflab.pointcloud.io import write_points

    rng = np.random.default_rng(0)
    clean, noisy = root / "clean", root / "noisy"
    write_points(clean / "sphere.xyz", sphere(rng, 300))
    write_points(clean / "torus.ply", torus(rng, 400))
    write_points(clean / "box.npy", box(rng, 250))
    write_points(noisy / "scan.xyz", torus(rng, 200) + rng.normal(0, 0.02, (200, 3)))
    ring = sphere(rng, 120) + rng.normal(0, 0.02, (120, 3))
    (noisy / "ring.off").write_text("OFF\n120 0 0\n" + "".join(f"{x} {y} {z}\n" for x, y, z in ring))
    return clean, noisy


def own_data(clean: Path) -> list[str]:
    return ["--data.init_args.source", "pointfolder", "--data.init_args.root", str(clean)]


def quiet() -> list[str]:
    return ["--trainer.enable_progress_bar", "false"]


def one_line_error(capsys, argv: list[str]) -> str:
    return user_error_line(main, capsys, argv, keep=lambda line: line.startswith("difflab-pointcloud: error: "))


@pytest.mark.parametrize("config", ["smoke_iterativepfn", "smoke_score"])
def test_smoke_config_trains_on_own_clouds_and_denoises(config, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    clean, noisy = write_own_clouds(tmp_path / "my")
    base = ["--config", config, *own_data(clean), *quiet()]
    assert main(["fit", *base, "--data.init_args.patch_size", str(PATCH)]) == 0
    from difflab.pointcloud.inference import load_model
    from difflab.pointcloud.io import read_points

    run = tmp_path / "outputs/pointcloud" / config
    model = load_model(run)
    assert model.patch_size == PATCH and model.hparams["patch_size"] == PATCH
    assert main(["denoise", str(noisy), "filtered", "--ckpt", str(run)]) == 0
    for name, n in (("scan", 200), ("ring", 120)):
        out = read_points(tmp_path / "filtered" / f"{name}.ply")
        assert out.shape == (n, 3) and np.isfinite(out).all()
        assert (tmp_path / "filtered" / f"{name}.png").is_file()
    err = one_line_error(capsys, ["test", *base, "--data.init_args.patch_size", "16", "--ckpt_path", "last"])
    assert "--data.init_args.patch_size 16" in err and f"patches of {PATCH} points" in err
    np.save(tmp_path / "small.npy", sphere(np.random.default_rng(1), PATCH - 4))
    err = one_line_error(capsys, ["denoise", "small.npy", "small.ply", "--ckpt", str(run)])
    assert "small.npy" in err and f"{PATCH - 4} points" in err and f"--data.init_args.patch_size {PATCH}" in err
    assert not (tmp_path / "small.ply").exists()


def test_training_clouds_smaller_than_a_patch_or_broken_are_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    clean, _ = write_own_clouds(tmp_path / "my")
    fit = ["fit", "--config", "smoke_iterativepfn", *own_data(clean), *quiet()]
    err = one_line_error(capsys, [*fit, "--data.init_args.patch_size", "300"])
    assert "box.npy" in err and "250 points" in err and "--data.init_args.patch_size 300" in err
    err = one_line_error(capsys, [*fit, "--data.init_args.patch_size", "600"])
    assert "--data.init_args.patch_size 600" in err and "--data.init_args.num_points 512" in err
    bad = box(np.random.default_rng(2), 100)
    bad[7, 2] = np.nan
    np.save(clean / "box.npy", bad)
    err = one_line_error(capsys, fit)
    assert "box.npy" in err and "non-finite" in err
    err = one_line_error(capsys, ["fit", "--config", "smoke_iterativepfn", *own_data(tmp_path / "none"), *quiet()])
    assert "none" in err and "--data.init_args.root" in err


PLY_HEADER = (
    "ply\nformat ascii 1.0\nelement vertex 5\nproperty float x\nproperty float y\nproperty float z\nend_header\n"
)


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("junk.ply", b"not a ply file\n", "not a PLY file"),
        ("empty.ply", b"", "not a PLY file"),
        ("cut.ply", (PLY_HEADER + "1 2 3\n4 5\n").encode(), "not a readable file"),
        ("empty.xyz", b"", "0 points"),
        ("text.xyz", b"a b c\n", "not a table of numbers"),
        ("two.xyz", b"1 2\n3 4\n", "3 columns"),
        ("nan.xyz", b"1 2 3\nnan 1 1\n", "non-finite"),
        ("text.npy", b"1 2 3\n", "not a .npy file"),
        ("flat.npy", None, "shape (N, 3)"),
        ("junk.off", b"OFF\nx y z\n1 2 3\n", "OFF"),
        ("empty.off", b"", "not an OFF file"),
    ],
)
def test_unreadable_clouds_are_one_line_naming_the_file(name, content, needle, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    if content is None:
        np.save(tmp_path / name, np.zeros((5, 2)))
    else:
        (tmp_path / name).write_bytes(content)
    (tmp_path / "model.ckpt").write_bytes(b"")  # inputs are read before the checkpoint
    err = one_line_error(capsys, ["denoise", name, "out.ply", "--ckpt", "model.ckpt"])
    assert name in err and needle in err, err
    assert not (tmp_path / "out.ply").exists()


def test_a_big_cloud_shows_progress_over_its_patches(monkeypatch, capsys):
    from difflab.pointcloud.patches import PROGRESS_BATCHES, filter_cloud

    monkeypatch.setenv("DIFFLAB_PROGRESS_SECONDS", "0")
    points = sphere(np.random.default_rng(0), 4000).astype(np.float32)
    out = filter_cloud(points, lambda p: p, patch_size=32, batch=8, desc="denoise big.ply")
    np.testing.assert_allclose(out, points, atol=1e-5)
    done = re.findall(r"denoise big\.ply: (\d+)/(\d+) batch", capsys.readouterr().err)
    assert len(done) > 1 and done[-1][0] == done[-1][1] and int(done[-1][1]) > PROGRESS_BATCHES
    out = filter_cloud(points[:500], lambda p: p, patch_size=32, batch=8, desc="denoise small.ply")
    assert "small.ply" not in capsys.readouterr().err  # a small cloud takes few batches: no progress


def test_readme_own_data_commands(tmp_path, monkeypatch, capsys):
    """The README's commands from a folder of clean clouds to filtered ones, as written, on the smoke
    recipe (two steps)."""
    monkeypatch.chdir(tmp_path)
    write_own_clouds(tmp_path / "my")
    run_readme_commands(README, main, "difflab-pointcloud", parts={"iterativepfn_cgal": "smoke_iterativepfn"})
    assert sorted(p.name for p in (tmp_path / "filtered").iterdir()) == ["ring.ply", "ring.png", "scan.ply", "scan.png"]


def write_mesh_folder(root: Path) -> Path:
    """A ModelNet-style folder of two categories (tetrahedra and octahedra, two meshes per split)."""
    from difflab.pointcloud.io import Mesh, write_mesh

    tetra = Mesh(
        np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], float),
        np.array([[0, 1, 2], [0, 3, 1], [0, 2, 3], [1, 3, 2]]),
    )
    octa_v = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float)
    octa_f = np.array([[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]])
    for cat, mesh in (("tetra", tetra), ("octa", Mesh(octa_v, octa_f))):
        for split in ("train", "test"):
            for i in range(2):
                write_mesh(root / cat / split / f"{cat}_{i}.off", Mesh(mesh.vertices * (1 + 0.2 * i), mesh.triangles))
    return root


def test_the_categories_decide_the_classes_of_a_conditional_generator(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    root = write_mesh_folder(tmp_path / "shapes")
    fit = [
        "fit",
        "--config",
        "smoke_ddpm",
        "--data.init_args.source",
        "meshfolder",
        "--data.init_args.root",
        str(root),
        *quiet(),
    ]
    option = "--model.init_args.network.init_args.num_classes"
    err = one_line_error(capsys, [*fit, option, "3"])
    assert f"{option} 3" in err and "2 categories ['octa', 'tetra']" in err and f"{option} 2" in err
    with pytest.warns(UserWarning, match="the data has 2 categories"):
        assert main(fit) == 0
    assert main([*fit, option, "2"]) == 0
    run = tmp_path / "outputs/pointcloud/smoke_ddpm"
    capsys.readouterr()
    assert main(["sample", "--ckpt", str(run), "--num", "2", "--points", "32", "--label", "1", "samples"]) == 0
    assert "sample 2 clouds: 2/2 steps" in capsys.readouterr().err  # progress per sampler step
    err = one_line_error(capsys, ["sample", "--ckpt", str(run), "--num", "2", "--label", "2", "more"])
    assert "--label 2" in err and "2 classes" in err
    err = one_line_error(capsys, ["sample", "--ckpt", str(run), "--num", "2", "--label", "1", "--guidance", "2", "g"])
    assert "--guidance" in err and "label dropout" in err and "--model.label_dropout" in err


def test_a_generator_fit_with_label_dropout_samples_with_classifier_free_guidance(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    root = write_mesh_folder(tmp_path / "shapes")
    fit = ["fit", "--config", "smoke_ddpm", "--data.init_args.source", "meshfolder", "--data.init_args.root"]
    classes = ["--model.init_args.network.init_args.num_classes", "2", "--model.init_args.label_dropout", "0.2"]
    assert main([*fit, str(root), *classes, *quiet()]) == 0
    run = tmp_path / "outputs/pointcloud/smoke_ddpm"
    sample = ["sample", "--ckpt", str(run), "--num", "2", "--points", "32", "--label", "0"]
    capsys.readouterr()
    assert main([*sample, "plain"]) == 0
    plain = capsys.readouterr().out
    assert main([*sample, "--guidance", "2", "guided"]) == 0
    guided = capsys.readouterr().out
    nfe = lambda text: int(text.split("NFE ")[1].split()[0])
    assert nfe(guided) == 2 * nfe(plain)  # the conditional and the unconditional pass per step
    assert main([*sample, "--guidance", "2", "--adaptive_guidance", "0.5", "adaptive"]) == 0
    assert nfe(plain) < nfe(capsys.readouterr().out) <= nfe(guided)
    err = one_line_error(capsys, ["sample", "--ckpt", str(run), "--num", "2", "--guidance", "2", "x"])
    assert "--guidance: needs --label" in err
