"""Renders: Open3D offscreen rendering puts shaded points where the camera sees them; the matplotlib
fallback takes over, with a logged reason, when the renderer cannot start."""

import logging

import numpy as np
import pytest

from difflab.pointcloud import figures
from difflab.pointcloud.figures import RendererUnavailable, render_grid, render_open3d
from difflab.pointcloud.render_worker import camera_direction


def _read_png(path):
    import matplotlib.pyplot as plt

    img = plt.imread(path)
    return (img[..., :3] * 255).round().astype(np.uint8)


def _half_sphere(side: float, n: int = 3000, other: int = 0, elev: float = 20.0, azim: float = -60.0) -> np.ndarray:
    """Points on the unit sphere on one side (``side`` = +1 right, -1 left) of the camera's screen, plus
    ``other`` points mirrored to the other side (so that the bounding box stays centred)."""
    rng = np.random.default_rng(0)
    p = rng.normal(size=(4 * n, 3))
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    d = camera_direction(elev, azim)
    right = np.cross(-d, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    p = p[side * (p @ right) > 0.2][:n]
    mirrored = p[:other] - 2 * (p[:other] @ right)[:, None] * right
    return np.concatenate([p, mirrored])


@pytest.fixture
def open3d_available():
    try:
        render_open3d([np.zeros((8, 3))], [np.zeros((8, 3))], size=32)
    except RendererUnavailable as err:
        pytest.skip(f"Open3D offscreen renderer unavailable here ({err}); apt-get install mesa-vulkan-drivers")


def test_open3d_renders_points_where_the_camera_sees_them(open3d_available):
    size = 160
    pts = _half_sphere(+1)  # unit sphere, right-hand part of the screen only (prepared frame: z up)
    colors = np.tile([0.8, 0.2, 0.2], (len(pts), 1))
    img = render_open3d([pts, -pts], [colors, colors], size=size)
    assert img.shape == (2, size, size, 3) and img.dtype == np.uint8
    drawn = (img < 235).any(-1)  # anything but the white background
    assert (img[:, :4, :4] >= 250).all() and (img[:, -4:, -4:] >= 250).all()  # white corners
    right, left = drawn[0][:, size // 2 + 4 :].mean(), drawn[0][:, : size // 2 - 4].mean()
    assert right > 0.15 and left < 0.01, (right, left)
    # shaded, not flat: the red points take several brightness levels
    reds = img[0][drawn[0]][:, 0]
    assert reds.std() > 5


def test_render_grid_open3d_png(open3d_available, tmp_path):
    clouds = [_half_sphere(+1, other=30), _half_sphere(-1, other=30)]
    path = render_grid(clouds, tmp_path / "g.png", titles=["right", "left"], ncols=2, up="z", cell=2.0)
    img = _read_png(path)
    assert img.shape[1] == 4 * figures.DPI and abs(img.shape[0] - 2.25 * figures.DPI) <= 1
    drawn = (img < 200).any(-1)
    w = img.shape[1] // 2  # the first cell's points sit in its right half, the second cell's in its left
    assert drawn[:, w // 2 : w].mean() > 5 * drawn[:, : w // 2].mean()
    assert drawn[:, w : w + w // 2].mean() > 5 * drawn[:, w + w // 2 :].mean()


def test_fallback_to_matplotlib_when_the_renderer_cannot_start(tmp_path, monkeypatch, caplog):
    # the render process finds an Open3D that cannot start (as without EGL / a Vulkan device)
    fake = tmp_path / "fake" / "open3d"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('libEGL.so.1: cannot open shared object file')\n")
    monkeypatch.setenv("PYTHONPATH", str(fake.parent))
    monkeypatch.setattr(figures, "_unavailable", None)
    with pytest.raises(RendererUnavailable, match="libEGL"):
        render_grid([_half_sphere(+1)], tmp_path / "strict.png", renderer="open3d")
    with caplog.at_level(logging.WARNING, logger="difflab.pointcloud.figures"):
        path = render_grid(
            [_half_sphere(+1, other=30), _half_sphere(-1, other=30)], tmp_path / "fb.png", ncols=2, up="z", cell=2.0
        )
    assert "libEGL" in caplog.text and "fall back to matplotlib" in caplog.text
    assert figures._unavailable and "libEGL" in figures._unavailable  # not retried in this process
    img = _read_png(path)
    drawn = (img < 200).any(-1)
    w = img.shape[1] // 2
    assert drawn[:, w // 2 : w].mean() > 5 * drawn[:, : w // 2].mean()  # same camera as Open3D
    caplog.clear()
    render_grid([_half_sphere(+1)], tmp_path / "again.png")
    assert "unavailable" not in caplog.text  # warned once


def test_renderer_choice_is_validated(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="renderer must be one of"):
        render_grid([np.zeros((4, 3))], tmp_path / "x.png", renderer="vtk")
    monkeypatch.setenv("DIFFLAB_POINTCLOUD_RENDERER", "matplotlib")
    assert render_grid([_half_sphere(+1)], tmp_path / "m.png").stat().st_size > 1000
