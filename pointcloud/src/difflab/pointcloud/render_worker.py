"""Open3D offscreen rendering of point clouds, run as a script in a child process by :mod:`figures`.

    python render_worker.py IN.npz OUT.npz

``IN.npz`` holds ``points_i`` (N_i, 3) float64 (centred, z up, inside the unit sphere), ``colors_i``
(N_i, 3) float in [0, 1], ``point_size`` (n,) in pixels, and ``size``, ``elev``, ``azim``, ``fov``
(scalars). ``OUT.npz`` receives ``images`` (n, size, size, 3) uint8: each cloud on a white background, shaded
by a key light above-left of the camera (Lambert on normals estimated from 16 neighbours and turned
to the camera, drawn with the ``defaultUnlit`` shader so that the colours are exact), seen from
elevation ``elev`` and azimuth ``azim`` (degrees) with a perspective camera whose field of view
``fov`` just fits the unit sphere.

One Filament renderer is created for the whole batch and the process then exits, so the caller's
process never hosts a Filament engine (a second engine per process, or one left alive under a test
runner or a forked data loader, is what makes in-process offscreen rendering fragile). This file
imports only numpy and Open3D.
"""

from __future__ import annotations

import sys

import numpy as np

AMBIENT = 0.45  # share of a point's colour that is lit from every side


def camera_direction(elev: float, azim: float) -> np.ndarray:
    """Unit vector from the centre towards the camera (z up): azimuth about z from +x, elevation above xy."""
    e, a = np.deg2rad(elev), np.deg2rad(azim)
    return np.array([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)])


def render(inp: str, out: str) -> None:
    import open3d as o3d
    from open3d.visualization import rendering

    o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
    data = np.load(inp)
    n = sum(1 for k in data.files if k.startswith("points_"))
    size = int(data["size"])
    fov = float(data["fov"])
    d = camera_direction(float(data["elev"]), float(data["azim"]))
    renderer = rendering.OffscreenRenderer(size, size)
    scene = renderer.scene
    scene.view.set_post_processing(False)  # no tone mapping: a pure white background, true colours
    scene.set_background([1.0, 1.0, 1.0, 1.0])
    # key light from above-left of the camera; Lambert shading on estimated normals, drawn unlit
    right = np.cross(d, [0.0, 0.0, 1.0])
    right = right / (np.linalg.norm(right) or 1.0)
    light = d + 0.7 * np.array([0.0, 0.0, 1.0]) - 0.5 * right
    light = light / np.linalg.norm(light)
    dist = 1.05 / np.sin(np.deg2rad(fov / 2))
    images = np.zeros((n, size, size, 3), np.uint8)
    for i in range(n):
        pts = np.asarray(data[f"points_{i}"], np.float64)
        rgb = np.clip(np.asarray(data[f"colors_{i}"], np.float64), 0, 1)
        pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts))
        if len(pts) >= 8:
            pcd.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(min(16, len(pts))))
            pcd.orient_normals_towards_camera_location((d * dist).tolist())
            lambert = np.clip(np.asarray(pcd.normals) @ light, 0.0, 1.0)
            rgb = rgb * (AMBIENT + (1 - AMBIENT) * lambert)[:, None]
        pcd.colors = o3d.utility.Vector3dVector(rgb)
        mat = rendering.MaterialRecord()
        mat.shader = "defaultUnlit"
        mat.point_size = float(data["point_size"][i])
        scene.clear_geometry()
        scene.add_geometry("cloud", pcd, mat)
        renderer.setup_camera(fov, [0.0, 0.0, 0.0], (d * dist).tolist(), [0.0, 0.0, 1.0])
        images[i] = np.asarray(renderer.render_to_image())[..., :3]
    np.savez_compressed(out, images=images)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python render_worker.py IN.npz OUT.npz")
    render(sys.argv[1], sys.argv[2])
