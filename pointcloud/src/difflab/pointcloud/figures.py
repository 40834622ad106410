"""Point-cloud renders with matplotlib (Agg): scatter plots coloured by depth, in a grid.

Open3D's offscreen renderer works headless on this machine, but a Filament renderer per process is
fragile under test runners; matplotlib is used for every figure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _view(points: np.ndarray, elev: float, azim: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    e, a = np.deg2rad(elev), np.deg2rad(azim)
    # z-up points: rotate about z by azim, tilt about x by elev; screen (x, z), depth y
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(e), -np.sin(e)], [0, np.sin(e), np.cos(e)]])
    p = points @ rz.T @ rx.T
    return p[:, 0], p[:, 2], p[:, 1]


def render_grid(
    clouds: list[np.ndarray],
    path: str | Path,
    titles: list[str] | None = None,
    ncols: int = 4,
    point_size: float = 3.0,
    elev: float = 20.0,
    azim: float = 35.0,
    up: str = "y",
    suptitle: str | None = None,
    colors: list[np.ndarray | None] | None = None,
    cell: float = 3.0,
) -> Path:
    """Render clouds ``(N_i, 3)`` side by side (orthographic, shaded by depth) into a PNG.

    ``up``: the data axis drawn vertically (``y`` for most meshes and the pybullet objects' ``z``
    after their export). ``colors``: optional per-point scalars (e.g. errors) per cloud.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(clouds)
    ncols = min(ncols, n)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(cell * ncols, cell * nrows + (0.4 if suptitle else 0)), squeeze=False
    )
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= n:
            continue
        pts = np.asarray(clouds[i], dtype=np.float64)
        if up == "y":  # to a z-up frame
            pts = pts[:, [0, 2, 1]] * np.array([1.0, -1.0, 1.0])
        c = pts - (pts.max(0) + pts.min(0)) / 2
        x, y, depth = _view(c, elev, azim)
        order = np.argsort(depth)
        val = depth if colors is None or colors[i] is None else np.asarray(colors[i])
        cmap = "viridis" if colors is None or colors[i] is None else "inferno"
        ax.scatter(x[order], y[order], c=val[order], s=point_size, cmap=cmap, linewidths=0)
        r = max(np.abs(x).max(), np.abs(y).max()) * 1.05 or 1.0
        ax.set_xlim(-r, r)
        ax.set_ylim(-r, r)
        ax.set_aspect("equal")
        if titles:
            ax.set_title(titles[i], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
