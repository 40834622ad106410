"""Reading and writing point clouds and meshes with Open3D, and the geometry helpers around them.

Points are ``(N, 3)`` float32 numpy arrays; meshes are :class:`Mesh` (vertices ``(V, 3)``, triangles
``(F, 3)``). Bad input raises :class:`PointCloudError` naming the file and the problem: unknown
format, unreadable file, empty point set, non-finite coordinates, a mesh without faces.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from difflab.core.errors import UserError

POINT_FORMATS = (".ply", ".pcd", ".xyz", ".xyzn", ".xyzrgb", ".pts", ".pwn", ".txt", ".npy")
CLOUD_FORMATS = (*POINT_FORMATS, ".off", ".obj")
"""What :func:`read_points` reads: point files, and the vertices of ``.off`` / ``.obj`` meshes."""
MESH_FORMATS = (".obj", ".off", ".ply", ".stl")
WRITE_FORMATS = (".ply", ".pcd", ".xyz", ".npy")
"""What :func:`write_points` writes."""


class PointCloudError(UserError, ValueError):
    """Bad point-cloud or mesh input; the message names the file and the problem (a user error: the
    command line prints it in one line)."""


@dataclass
class Mesh:
    """A triangle mesh: ``vertices`` (V, 3) float64 and ``triangles`` (F, 3) int64."""

    vertices: np.ndarray
    triangles: np.ndarray
    name: str = ""

    def to_open3d(self):
        import open3d as o3d

        return o3d.geometry.TriangleMesh(
            o3d.utility.Vector3dVector(self.vertices.astype(np.float64)),
            o3d.utility.Vector3iVector(self.triangles.astype(np.int32)),
        )


def _o3d():
    try:
        import open3d as o3d
    except ImportError as err:  # pragma: no cover
        raise ImportError("difflab.pointcloud needs Open3D: pip install open3d") from err
    o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
    return o3d


def check_points(points: np.ndarray, source: str = "<array>") -> np.ndarray:
    """``points`` as a float32 ``(N, 3)`` array; raises for a wrong shape, an empty or non-finite set."""
    pts = np.asarray(points)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise PointCloudError(f"{source}: expected points of shape (N, 3), got {pts.shape}")
    if pts.shape[0] == 0:
        raise PointCloudError(f"{source}: empty point set (0 points)")
    bad = ~np.isfinite(pts).all(axis=1)
    if bad.any():
        raise PointCloudError(f"{source}: {int(bad.sum())} of {len(pts)} points have non-finite coordinates")
    return pts.astype(np.float32)


def _text_delimiter(path: Path) -> str | None:
    """``","`` when the first data row of a text point file is comma-separated (ModelNet40's resampled
    ``x,y,z,nx,ny,nz`` files), else ``None`` (white space)."""
    with path.open(errors="replace") as f:
        for line in f:
            row = line.strip()
            if row and not row.startswith(("#", "//")):
                return "," if "," in row else None
    return None


def _read_xyz_text(path: Path) -> np.ndarray:
    """Text with at least 3 columns per row (x y z [nx ny nz | r g b ...]), separated by white space
    or commas."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": reported below
            data = np.loadtxt(path, ndmin=2, comments=("#", "//"), delimiter=_text_delimiter(path))
    except ValueError as err:
        raise PointCloudError(f"{path}: not a table of numbers ({err})") from None
    if data.size == 0:
        raise PointCloudError(f"{path}: empty point set (0 points)")
    if data.shape[1] < 3:
        raise PointCloudError(f"{path}: rows need at least 3 columns (x y z), got {data.shape[1]}")
    return data


def read_points(path: str | Path) -> np.ndarray:
    """Read a point set (``.ply``, ``.pcd``, ``.npy`` (an ``(N, 3+)`` array), ``.xyz``/``.xyzn``/``.xyzrgb``/
    ``.pts``/``.pwn``/``.txt`` text (white space or commas), or the vertices of an ``.off``/``.obj``
    file) as a float32 ``(N, 3)`` array.

    A file that does not read, holds no point or has a non-finite coordinate is a :class:`PointCloudError`
    naming it."""
    return read_cloud(path)[0]


def read_cloud(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`read_points`, with the points' colours when the file holds them: ``(N, 3)`` float32 in
    [0, 1] from a ``.ply`` / ``.pcd`` with colours or the r g b columns of ``.xyzrgb`` text (0..255
    values scaled), else ``None``."""
    path = Path(path)
    if not path.is_file():
        raise PointCloudError(f"{path}: no such file")
    ext = path.suffix.lower()
    if ext in (".xyz", ".xyzn", ".xyzrgb", ".pts", ".pwn", ".txt"):
        data = _read_xyz_text(path)
        colors = data[:, 3:6] if ext == ".xyzrgb" and data.shape[1] >= 6 else None
        if colors is not None and colors.max(initial=0.0) > 1.0:
            colors = colors / 255.0
        return check_points(data[:, :3], str(path)), _colors(colors)
    if ext == ".npy":
        return check_points(_read_npy(path), str(path)), None
    if ext in (".off", ".obj", ".stl"):
        with native_messages() as said:
            mesh = _o3d().io.read_triangle_mesh(str(path))
        pts = np.asarray(mesh.vertices)
        if len(pts) == 0 and ext == ".off":
            pts = _read_off_vertices(path)
        return check_points(_read_or_say(pts, path, said), str(path)), None
    if ext in (".ply", ".pcd"):
        if ext == ".ply" and not path.read_bytes()[:4].startswith(b"ply"):
            raise PointCloudError(f"{path}: not a PLY file (it does not start with 'ply')")
        with native_messages() as said:
            pc = _o3d().io.read_point_cloud(str(path))
        pts = check_points(_read_or_say(np.asarray(pc.points), path, said), str(path))
        return pts, _colors(np.asarray(pc.colors)) if pc.has_colors() else None
    raise PointCloudError(f"{path}: unknown point-cloud format {ext!r} (known: {', '.join(CLOUD_FORMATS)})")


def _colors(colors: np.ndarray | None) -> np.ndarray | None:
    """Colours as float32 clipped to [0, 1], or ``None`` when there are none or they are not finite."""
    if colors is None or not np.isfinite(colors).all():
        return None
    return np.clip(colors, 0.0, 1.0).astype(np.float32)


def _read_or_say(points: np.ndarray, path: Path, said: list[str]) -> np.ndarray:
    """``points``, or an error naming the file when the reader found none or reported an error (a
    truncated PLY file reads as points of uninitialised memory, with only RPly's message to tell)."""
    if said:
        raise PointCloudError(f"{path}: not a readable file ({'; '.join(said[:2])})")
    if len(points) == 0:
        raise PointCloudError(f"{path}: no points (an empty or unreadable file)")
    return points


@contextlib.contextmanager
def native_messages() -> Iterator[list[str]]:
    """Collect what native code (Open3D's file readers, RPly) prints on the process's standard error
    while the block runs, instead of letting it through: the list receives its non-empty lines."""
    said: list[str] = []
    fd = 2  # the descriptor native code writes to, whatever sys.stderr is in Python
    with contextlib.suppress(AttributeError, OSError, ValueError):
        sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), fd)
        try:
            yield said
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode(errors="replace")
            said += [re.sub(r"\x1b\[[0-9;]*m", "", ln).strip() for ln in text.splitlines() if ln.strip()]


def _read_npy(path: Path) -> np.ndarray:
    """An ``(N, 3+)`` numeric array saved by ``numpy.save`` (the first three columns are x, y, z)."""
    with path.open("rb") as f:
        if f.read(6) != b"\x93NUMPY":
            raise PointCloudError(f"{path}: not a .npy file (no NumPy header; save points with numpy.save)")
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise PointCloudError(f"{path}: not a readable .npy array ({err})") from None
    if not np.issubdtype(data.dtype, np.number):
        raise PointCloudError(f"{path}: expected a numeric array of points, got dtype {data.dtype}")
    if data.ndim != 2 or data.shape[1] < 3:
        raise PointCloudError(f"{path}: expected an array of shape (N, 3) (x y z [...]), got {data.shape}")
    if data.shape[0] == 0:
        raise PointCloudError(f"{path}: empty point set (0 points)")
    return data[:, :3]


def _read_off_vertices(path: Path) -> np.ndarray:
    """The vertices of an OFF file, read as text (for the files Open3D does not read)."""
    lines = [ln.split("#")[0].strip() for ln in path.read_text(errors="replace").splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines or not lines[0].upper().endswith("OFF"):
        raise PointCloudError(f"{path}: not an OFF file (first line {lines[0][:20] if lines else ''!r})")
    head = lines[0][3:].split() if len(lines[0]) > 3 and lines[0][:3].upper() == "OFF" else []
    rest = lines[1:]
    try:
        if not head:
            head, rest = rest[0].split(), rest[1:]
        nv = int(head[0])
        return np.array([[float(v) for v in ln.split()[:3]] for ln in rest[:nv]]).reshape(-1, 3)
    except (IndexError, ValueError) as err:
        raise PointCloudError(f"{path}: not a readable OFF file ({err})") from None


def read_mesh(path: str | Path) -> Mesh:
    """Read a triangle mesh (``.obj``, ``.off``, ``.ply``, ``.stl``); raises if it has no faces."""
    path = Path(path)
    if not path.is_file():
        raise PointCloudError(f"{path}: no such file")
    ext = path.suffix.lower()
    if ext not in MESH_FORMATS:
        raise PointCloudError(f"{path}: unknown mesh format {ext!r} (known: {', '.join(MESH_FORMATS)})")
    with native_messages() as said:
        m = _o3d().io.read_triangle_mesh(str(path))
    v, f = np.asarray(m.vertices, dtype=np.float64), np.asarray(m.triangles, dtype=np.int64)
    if len(v) == 0:
        why = f": {said[0]}" if said else ""
        raise PointCloudError(f"{path}: mesh has no vertices (an empty or unreadable file{why})")
    if len(f) == 0:
        raise PointCloudError(f"{path}: mesh has no faces ({len(v)} vertices): a point set, not a mesh")
    if not np.isfinite(v).all():
        raise PointCloudError(f"{path}: mesh has non-finite vertex coordinates")
    return Mesh(v, f, name=path.stem)


def write_points(
    path: str | Path, points: np.ndarray, normals: np.ndarray | None = None, colors: np.ndarray | None = None
) -> Path:
    """Write points (and optional normals, and ``(N, 3)`` colours in [0, 1]) as ``.ply``, ``.pcd``,
    ``.xyz`` or ``.npy`` (by the suffix; colours are kept in ``.ply`` and ``.pcd`` only)."""
    path = Path(path)
    pts = check_points(points, str(path))
    ext = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if ext in (".xyz", ".npy"):
        cols = pts if normals is None else np.concatenate([pts, np.asarray(normals, dtype=np.float32)], 1)
        np.savetxt(path, cols, fmt="%.6f") if ext == ".xyz" else np.save(path, cols)
        return path
    if ext not in (".ply", ".pcd"):
        raise PointCloudError(f"{path}: cannot write format {ext!r} (use {', '.join(WRITE_FORMATS)})")
    o3d = _o3d()
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts.astype(np.float64)))
    if normals is not None:
        pc.normals = o3d.utility.Vector3dVector(np.asarray(normals, dtype=np.float64))
    if colors is not None:
        pc.colors = o3d.utility.Vector3dVector(np.asarray(colors, dtype=np.float64))
    if not o3d.io.write_point_cloud(str(path), pc):
        raise PointCloudError(f"{path}: Open3D could not write the file")
    return path


def write_mesh(path: str | Path, mesh: Mesh) -> Path:
    """Write a mesh as ``.obj``, ``.off``, ``.ply`` or ``.stl``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not _o3d().io.write_triangle_mesh(str(path), mesh.to_open3d()):
        raise PointCloudError(f"{path}: Open3D could not write the mesh")
    return path


def sample_mesh(mesh: Mesh, n: int, rng: np.random.Generator | int = 0) -> np.ndarray:
    """``n`` points uniformly on the surface (area-weighted triangle choice, uniform barycentric
    coordinates), float32 ``(n, 3)``. Seeded, unlike Open3D's ``sample_points_uniformly``."""
    rng = np.random.default_rng(rng)
    v, f = mesh.vertices, mesh.triangles
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    if not area.sum() > 0:
        raise PointCloudError(f"{mesh.name or '<mesh>'}: all faces have zero area")
    idx = rng.choice(len(f), size=n, p=area / area.sum())
    r1, r2 = rng.random(n), rng.random(n)
    s = np.sqrt(r1)
    u, w = 1 - s, s * r2
    pts = u[:, None] * a[idx] + (s * (1 - r2))[:, None] * b[idx] + w[:, None] * c[idx]
    return pts.astype(np.float32)


def normalize_unit_sphere(points: np.ndarray, ref: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Centre at the bounding-box centre of ``ref`` (default ``points``) and scale its farthest point to
    radius 1 (the denoising protocol). Returns ``(normalised, centre (3,), scale)``."""
    ref = points if ref is None else ref
    centre = (ref.max(0) + ref.min(0)) / 2
    scale = float(np.linalg.norm(ref - centre, axis=1).max())
    if not scale > 0:
        raise PointCloudError("cannot normalise a point set whose points all coincide")
    return ((points - centre) / scale).astype(np.float32), centre, scale


def normalize_mesh(mesh: Mesh) -> Mesh:
    """The mesh moved and scaled into the unit sphere (bounding-box centre, farthest vertex at 1)."""
    v, _, _ = normalize_unit_sphere(mesh.vertices)
    return Mesh(v.astype(np.float64), mesh.triangles, mesh.name)


def resample(points: np.ndarray, n: int, rng: np.random.Generator | int = 0, source: str = "<array>") -> np.ndarray:
    """Exactly ``n`` points: a random subset, or (with a warning) all points plus repeats with a small
    jitter when the cloud has fewer than ``n``."""
    rng = np.random.default_rng(rng)
    pts = check_points(points, source)
    if len(pts) >= n:
        return pts[rng.choice(len(pts), n, replace=False)]
    warnings.warn(f"{source}: {len(pts)} points, fewer than the {n} requested: resampled with repeats", stacklevel=2)
    extra = pts[rng.choice(len(pts), n - len(pts), replace=True)]
    scale = 1e-3 * float(np.linalg.norm(pts.max(0) - pts.min(0)) or 1.0)
    extra = extra + rng.normal(0, scale, extra.shape).astype(np.float32)
    return np.concatenate([pts, extra]).astype(np.float32)


def voxel_down_sample(points: np.ndarray, voxel: float) -> np.ndarray:
    """Open3D voxel-grid down-sampling (one averaged point per occupied voxel)."""
    o3d = _o3d()
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(check_points(points).astype(np.float64)))
    return np.asarray(pc.voxel_down_sample(float(voxel)).points, dtype=np.float32)


def estimate_normals(points: np.ndarray, k: int = 16) -> np.ndarray:
    """Unit normals from the PCA of ``k`` neighbours (Open3D), oriented consistently by a tangent plane walk."""
    o3d = _o3d()
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(check_points(points).astype(np.float64)))
    pc.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(k))
    try:
        pc.orient_normals_consistent_tangent_plane(min(k, len(points) - 1))
    except RuntimeError:  # pragma: no cover - degenerate inputs
        pass
    return np.asarray(pc.normals, dtype=np.float32)


def point_to_mesh_distance(points: np.ndarray, mesh: Mesh) -> np.ndarray:
    """Unsigned Euclidean distance of every point to the mesh surface (Open3D ``RaycastingScene``), ``(N,)``."""
    o3d = _o3d()
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(
        o3d.core.Tensor(mesh.vertices.astype(np.float32)), o3d.core.Tensor(mesh.triangles.astype(np.uint32))
    )
    q = o3d.core.Tensor(np.asarray(points, dtype=np.float32))
    return scene.compute_distance(q).numpy().astype(np.float64)
