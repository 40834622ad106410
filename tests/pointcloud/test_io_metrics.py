"""I/O with Open3D, bad-input errors, and the metrics against POT / closed forms."""

import numpy as np
import pytest
import torch

from difflab.pointcloud.io import (
    Mesh,
    PointCloudError,
    estimate_normals,
    normalize_unit_sphere,
    point_to_mesh_distance,
    read_cloud,
    read_mesh,
    read_points,
    resample,
    sample_mesh,
    voxel_down_sample,
    write_mesh,
    write_points,
)
from difflab.pointcloud.metrics import (
    chamfer_distance,
    emd,
    filtering_chamfer,
    filtering_p2m,
    generation_metrics,
    mmd_cov,
    one_nna,
)


def cube_mesh() -> Mesh:
    v = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)
    f = np.array(
        [
            [0, 1, 3],
            [0, 3, 2],
            [4, 6, 7],
            [4, 7, 5],
            [0, 4, 5],
            [0, 5, 1],
            [2, 3, 7],
            [2, 7, 6],
            [0, 2, 6],
            [0, 6, 4],
            [1, 5, 7],
            [1, 7, 3],
        ]
    )
    return Mesh(v, f, "cube")


@pytest.mark.parametrize("ext", [".ply", ".pcd", ".xyz"])
def test_points_round_trip(tmp_path, ext):
    pts = np.random.default_rng(0).normal(size=(100, 3)).astype(np.float32)
    back = read_points(write_points(tmp_path / f"a{ext}", pts))
    assert np.allclose(back, pts, atol=1e-5)


@pytest.mark.parametrize("ext", [".ply", ".pcd"])
def test_colours_round_trip(tmp_path, ext):
    rng = np.random.default_rng(1)
    pts, rgb = rng.normal(size=(50, 3)).astype(np.float32), rng.uniform(size=(50, 3)).astype(np.float32)
    back, colours = read_cloud(write_points(tmp_path / f"a{ext}", pts, colors=rgb))
    assert np.allclose(back, pts, atol=1e-5) and np.allclose(colours, rgb, atol=1 / 255)
    assert read_cloud(write_points(tmp_path / f"b{ext}", pts))[1] is None


def test_text_points_with_commas_and_rgb_columns(tmp_path):
    """ModelNet40's resampled ``x,y,z,nx,ny,nz`` text and ``.xyzrgb`` with 0..255 colours."""
    pts = np.random.default_rng(2).normal(size=(20, 3)).astype(np.float32)
    normals = pts / np.linalg.norm(pts, axis=1, keepdims=True)
    np.savetxt(tmp_path / "airplane_0001.txt", np.concatenate([pts, normals], 1), fmt="%.6f", delimiter=",")
    back, colours = read_cloud(tmp_path / "airplane_0001.txt")
    assert np.allclose(back, pts, atol=1e-5) and colours is None
    np.savetxt(tmp_path / "c.xyzrgb", np.concatenate([pts, np.full((20, 3), 255.0)], 1), fmt="%.6f")
    back, colours = read_cloud(tmp_path / "c.xyzrgb")
    assert np.allclose(back, pts, atol=1e-5) and np.allclose(colours, 1.0)


@pytest.mark.parametrize("ext", [".obj", ".off", ".ply"])
def test_mesh_round_trip_and_sampling(tmp_path, ext):
    m = read_mesh(write_mesh(tmp_path / f"c{ext}", cube_mesh()))
    assert m.triangles.shape == (12, 3)
    pts = sample_mesh(m, 2000, rng=0)
    assert np.allclose(np.abs(pts).max(1), 1, atol=1e-5)  # every point on a face of the cube
    assert np.allclose(pts, sample_mesh(m, 2000, rng=0))  # seeded
    # distance to the surface: 0 for surface points, closed form for inner points
    assert point_to_mesh_distance(pts, m).max() < 1e-5
    assert np.allclose(point_to_mesh_distance(np.array([[0, 0, 0.0], [0.5, 0, 0]]), m), [1.0, 0.5], atol=1e-6)


def test_bad_inputs_name_the_file(tmp_path):
    (tmp_path / "a.xyz").write_text("")
    with pytest.raises(PointCloudError, match="a.xyz.*empty"):
        read_points(tmp_path / "a.xyz")
    (tmp_path / "b.xyz").write_text("0 0 0\nnan 1 2\n")
    with pytest.raises(PointCloudError, match="b.xyz.*non-finite"):
        read_points(tmp_path / "b.xyz")
    (tmp_path / "c.foo").write_text("1 2 3")
    with pytest.raises(PointCloudError, match="c.foo.*unknown"):
        read_points(tmp_path / "c.foo")
    write_points(tmp_path / "d.ply", np.zeros((5, 3)) + np.arange(5)[:, None])
    with pytest.raises(PointCloudError, match="d.ply.*no faces"):
        read_mesh(tmp_path / "d.ply")
    with pytest.warns(UserWarning, match="fewer than the 64"):
        out = resample(np.random.default_rng(0).normal(size=(10, 3)), 64, source="few.ply")
    assert out.shape == (64, 3)


def test_geometry_helpers():
    pts = sample_mesh(cube_mesh(), 4000, rng=1)
    n, c, s = normalize_unit_sphere(pts * 3 + 5)
    assert np.allclose(np.linalg.norm(n, axis=1).max(), 1, atol=1e-6) and np.allclose(c, 5, atol=0.05)
    assert len(voxel_down_sample(pts, 0.5)) < len(pts)
    normals = estimate_normals(pts)
    top = (pts[:, 2] > 0.999) & (np.abs(pts[:, :2]).max(1) < 0.7)
    assert np.abs(normals[top, 2]).min() > 0.9


def test_chamfer_closed_form_and_brute_force():
    x = torch.tensor([[0.0, 0, 0], [1, 0, 0]])
    y = torch.tensor([[0.0, 0, 0]])
    # x->y: (0 + 1)/2 ; y->x: 0
    assert torch.allclose(chamfer_distance(x, y), torch.tensor([0.5]))
    assert torch.allclose(chamfer_distance(x, y, squared=False), torch.tensor([0.5]))
    a, b = torch.randn(3, 50, 3), torch.randn(3, 70, 3)
    d = ((a[:, :, None] - b[:, None]) ** 2).sum(-1)
    ref = d.min(2).values.mean(1) + d.min(1).values.mean(1)
    assert torch.allclose(chamfer_distance(a, b), ref, atol=1e-5)


@pytest.mark.parametrize("squared", [False, True])
def test_emd_matches_pot(squared):
    ot = pytest.importorskip("ot")
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 40, 3, generator=g), torch.randn(4, 40, 3, generator=g) + 0.3
    got = emd(a, b, squared=squared)
    for i in range(4):
        m = ot.dist(a[i].double().numpy(), b[i].double().numpy(), metric="sqeuclidean" if squared else "euclidean")
        w = np.full(40, 1 / 40)
        assert got[i].item() == pytest.approx(ot.emd2(w, w, m), rel=1e-9)


def test_generation_metrics_closed_forms():
    d_gr = torch.tensor([[0.1, 0.9, 0.8], [0.2, 0.7, 0.9]])  # 2 generated x 3 references
    mmd, cov = mmd_cov(d_gr)
    assert mmd == pytest.approx((0.1 + 0.7 + 0.8) / 3) and cov == pytest.approx(1 / 3)
    ref = torch.randn(6, 32, 3)
    m = generation_metrics(ref.clone(), ref, metrics=("cd",))
    assert m["mmd_cd"] == pytest.approx(0, abs=1e-6) and m["cov_cd"] == 1
    # well-separated sets: 1-NNA = 1; identical copies: each point's nearest neighbour is its twin
    far = generation_metrics(ref + 10, ref, metrics=("cd",))
    assert far["1nna_cd"] == 1.0
    d = torch.rand(4, 4)
    d = d + d.T
    assert one_nna(d, d, d.clone().fill_diagonal_(0)) == 0.0


def test_filtering_metrics_scale_invariant():
    m = cube_mesh()
    clean = sample_mesh(m, 1000, rng=0)
    noisy = clean + np.random.default_rng(1).normal(0, 0.02, clean.shape).astype(np.float32)
    cd, p2m = filtering_chamfer(noisy, clean), filtering_p2m(noisy, m)
    m10 = Mesh(m.vertices * 10 + 3, m.triangles)
    assert filtering_chamfer(noisy * 10 + 3, clean * 10 + 3) == pytest.approx(cd, rel=1e-4)
    assert filtering_p2m(noisy * 10 + 3, m10) == pytest.approx(p2m, rel=1e-4)
    # noise std 0.02 on a cube of radius sqrt(3): mean squared normal offset (0.02/sqrt(3))^2 ~ 1.33e-4
    assert p2m == pytest.approx(1e4 * (0.02 / np.sqrt(3)) ** 2, rel=0.2)
