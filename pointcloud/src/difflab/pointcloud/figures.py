"""Point-cloud renders: Open3D offscreen rendering (Filament), composed into titled grids with matplotlib.

:func:`render_grid` draws clouds side by side. With the ``open3d`` renderer every cloud is rendered by
Open3D's ``OffscreenRenderer`` (shaded points: normals estimated from 16 neighbours, ``defaultLit``
shader, perspective camera, white background) and the images are laid out with titles by matplotlib.
The rendering runs in a child process (:mod:`difflab.pointcloud.render_worker`, one renderer per
figure, all of the figure's clouds in one batch): a Filament engine is never created in the caller's
process, where a second engine or one alive under a test runner or forked data loaders is fragile,
and a renderer that crashes or cannot start (no EGL / GL / Vulkan device) cannot take the caller
down. If it cannot start, ``renderer="auto"`` (the default) logs a warning naming the reason once per
process and falls back to matplotlib scatter plots shaded by depth, seen from the same camera.

Renderer choice: the ``renderer`` argument, else ``$DIFFLAB_POINTCLOUD_RENDERER``
(``auto`` | ``open3d`` | ``matplotlib``), else ``auto``.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Literal

import numpy as np

from difflab.core.figures import pyplot
from difflab.pointcloud.render_worker import camera_direction

logger = logging.getLogger(__name__)

RENDERERS = ("auto", "open3d", "matplotlib")
DPI = 110
FOV = 24.0  # degrees: a mild perspective
_WORKER = Path(__file__).with_name("render_worker.py")
_unavailable: str | None = None  # why the Open3D renderer could not start in this process (cached)


class RendererUnavailable(RuntimeError):
    """Open3D's offscreen renderer could not start or failed; the message says why."""


def _prepare(points: np.ndarray, up: str) -> np.ndarray:
    """Points as float64, turned z-up, centred on the bounding-box centre, scaled into the unit sphere."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if up == "y":
        pts = pts[:, [0, 2, 1]] * np.array([1.0, -1.0, 1.0])
    elif up != "z":
        raise ValueError(f"up must be 'y' or 'z', got {up!r}")
    pts = pts - (pts.max(0) + pts.min(0)) / 2
    r = float(np.linalg.norm(pts, axis=1).max()) if len(pts) else 0.0
    return pts / r if r > 0 else pts


def _point_colors(pts: np.ndarray, scalars: np.ndarray | None) -> np.ndarray:
    """RGB in [0, 1] per point: height through ``viridis`` by default, given scalars through ``inferno``."""
    import matplotlib

    if scalars is None:
        v, cmap, lo, hi = pts[:, 2], "viridis", 0.2, 0.95
    else:
        v, cmap, lo, hi = np.asarray(scalars, np.float64).reshape(-1), "inferno", 0.0, 0.9
        if v.shape[0] != len(pts):
            raise ValueError(f"colors: {v.shape[0]} values for a cloud of {len(pts)} points")
    span = float(np.ptp(v)) if len(v) else 0.0
    u = (v - v.min()) / span if span > 0 else np.full_like(v, 0.5)
    return matplotlib.colormaps[cmap](lo + (hi - lo) * u)[:, :3]


def auto_point_size(num_points: int, image_size: int) -> float:
    """Point size in pixels for the Open3D renderer: 3.5 px for 4096 points in 400 px, larger for sparser clouds."""
    return float(np.clip(3.5 * image_size / 400 * (4096 / max(num_points, 1)) ** (1 / 3), 1.5, 14.0))


def render_open3d(
    clouds: list[np.ndarray],
    colors: list[np.ndarray],
    size: int = 400,
    elev: float = 20.0,
    azim: float = -60.0,
    point_sizes: list[float] | None = None,
    timeout: float | None = None,
) -> np.ndarray:
    """Render prepared clouds (centred, z up, unit sphere; see :func:`_prepare`) with Open3D's offscreen
    renderer in a child process: ``(n, size, size, 3)`` uint8 images. Raises :class:`RendererUnavailable`
    with the reason when the renderer cannot start or fails."""
    if point_sizes is None:
        point_sizes = [auto_point_size(len(c), size) for c in clouds]
    with tempfile.TemporaryDirectory(prefix="difflab-render-") as tmp:
        inp, out = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        arrays = {f"points_{i}": np.asarray(c, np.float64) for i, c in enumerate(clouds)}
        arrays |= {f"colors_{i}": np.asarray(c, np.float64) for i, c in enumerate(colors)}
        np.savez(
            inp, **arrays, point_size=np.asarray(point_sizes, np.float64), size=size, elev=elev, azim=azim, fov=FOV
        )
        cmd = [sys.executable, str(_WORKER), str(inp), str(out)]
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout or 60 + 2 * len(clouds), check=False
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise RendererUnavailable(f"the render process failed: {err}") from None
        if proc.returncode != 0 or not out.is_file():
            lines = [ln for ln in (proc.stderr or "").splitlines() if ln.strip()]
            how = f"killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exit code {proc.returncode}"
            raise RendererUnavailable(f"{how}: {lines[-1] if lines else 'no error message'}")
        return np.load(out)["images"]


def _scatter(ax, pts: np.ndarray, rgb: np.ndarray, elev: float, azim: float, point_size: float | None) -> None:
    """The fallback: a perspective-free scatter from the same camera direction, far points drawn first,
    shaded by depth."""
    d = camera_direction(elev, azim)
    right = np.cross(-d, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right) or 1.0
    screen_up = np.cross(right, -d)
    x, y, depth = pts @ right, pts @ screen_up, pts @ d
    order = np.argsort(depth)
    shade = 0.55 + 0.45 * (depth - depth.min()) / (np.ptp(depth) or 1.0)
    s = point_size if point_size is not None else float(np.clip(3.0 * (4096 / max(len(pts), 1)) ** (1 / 3), 1, 12))
    ax.scatter(x[order], y[order], c=(rgb * shade[:, None])[order], s=s, linewidths=0)
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(-1.05, 1.05)
    ax.set_aspect("equal")


def render_grid(
    clouds: list[np.ndarray],
    path: str | Path,
    titles: list[str] | None = None,
    ncols: int = 4,
    point_size: float | None = None,
    elev: float = 20.0,
    azim: float = -60.0,
    up: str = "y",
    suptitle: str | None = None,
    colors: list[np.ndarray | None] | None = None,
    cell: float = 3.0,
    renderer: Literal["auto", "open3d", "matplotlib"] | None = None,
) -> Path:
    """Render clouds ``(N_i, 3)`` side by side into a PNG (``ncols`` per row, ``cell`` inches each).

    ``up``: the data axis drawn vertically (``y`` for most meshes, ``z`` for pybullet's objects).
    ``elev`` / ``azim``: camera elevation and azimuth in degrees. ``colors``: optional per-point
    scalars per cloud (e.g. errors, through ``inferno``); by default points are coloured by height.
    ``point_size``: pixels for Open3D, matplotlib marker area for the fallback (default: from the
    number of points). ``renderer``: see the module docstring.
    """
    plt = pyplot()
    choice = renderer or os.environ.get("DIFFLAB_POINTCLOUD_RENDERER", "auto")
    if choice not in RENDERERS:
        raise ValueError(f"renderer must be one of {RENDERERS}, got {choice!r}")
    n = len(clouds)
    if n == 0:
        raise ValueError("render_grid needs at least one cloud")
    prepared = [_prepare(c, up) for c in clouds]
    rgb = [_point_colors(p, None if colors is None else colors[i]) for i, p in enumerate(prepared)]
    size = 2 * int(round(cell * DPI))  # rendered at twice the figure's resolution, downsampled smoothly
    sizes = None if point_size is None else [point_size] * n
    images = _open3d_images(choice, prepared, rgb, size=size, elev=elev, azim=azim, point_sizes=sizes)

    ncols = min(ncols, n)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(cell * ncols, (cell + (0.25 if titles else 0)) * nrows + (0.35 if suptitle else 0)),
        squeeze=False,
        layout="constrained",
    )
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= n:
            continue
        if images is not None:
            ax.imshow(images[i], interpolation="antialiased")
        else:
            _scatter(ax, prepared[i], rgb[i], elev, azim, point_size)
        if titles and titles[i]:
            ax.set_title(titles[i], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    fig.savefig(buf, dpi=DPI, facecolor="white", format="png")
    plt.close(fig)
    _save_palette_png(buf, path)
    return path


def _open3d_images(choice: str, prepared, rgb, **view) -> np.ndarray | None:
    """Open3D renders of the prepared clouds, or ``None`` where matplotlib draws them instead.

    ``choice="auto"`` tries Open3D once per process: after one failure (no offscreen context) it warns
    and every later grid goes straight to matplotlib; ``choice="open3d"`` raises the failure.
    """
    global _unavailable
    if not (choice == "open3d" or (choice == "auto" and _unavailable is None)):
        return None
    try:
        return render_open3d(prepared, rgb, **view)
    except RendererUnavailable as err:
        if choice == "open3d":
            raise
        _unavailable = str(err)
        logger.warning("Open3D offscreen rendering is unavailable (%s); point renders fall back to matplotlib", err)
        return None


def _save_palette_png(buf: io.BytesIO, path: Path) -> None:
    """Write the rendered figure as a 256-colour PNG (a third of the size of the RGBA one; point renders
    use few colours)."""
    from PIL import Image

    buf.seek(0)
    with Image.open(buf) as img:
        img.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
