"""Offline default data: Debian libcgal-demo's meshes and scans, pybullet_data's procedural objects.

* libcgal-demo ships ``/usr/share/doc/libcgal-dev/data.tar.gz`` (meshes in ``data/meshes``, scanned
  point sets in ``data/points_3``); :func:`cgal_data_dir` unpacks it once into the cache folder
  (``$DIFFLAB_DATA/pointcloud`` or ``~/.cache/difflab/pointcloud``). Install: ``apt-get install libcgal-demo``.
* pybullet_data ships ``random_urdfs/000..999/NNN.obj``: 1,000 procedural objects. Install:
  ``pip install pybullet``.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path

CGAL_TARBALL = Path("/usr/share/doc/libcgal-dev/data.tar.gz")

# Real meshes used for filtering (clean surface samples + synthetic noise). Train / held-out split.
CGAL_TRAIN_MESHES = (
    "armadillo",
    "ChineseDragon-10kv",
    "elephant",
    "camel",
    "cow",
    "dino",
    "homer",
    "lion",
    "bull",
    "pig",
    "triceratops",
    "mannequin-devil",
    "elk",
    "man",
    "femur",
    "head",
)
CGAL_TEST_MESHES = ("bunny00", "fandisk", "hand", "helmet")
# Real scanned point sets (generalisation test of the filters).
CGAL_SCANS = ("kitten.xyz", "hippo1.ply", "oni.ply", "ball.ply")


def cache_dir() -> Path:
    root = os.environ.get("DIFFLAB_DATA")
    return (Path(root) if root else Path.home() / ".cache" / "difflab") / "pointcloud"


def cgal_data_dir(tarball: Path = CGAL_TARBALL) -> Path:
    """The unpacked ``data`` folder of libcgal-demo (unpacking it into the cache on first use)."""
    dest = cache_dir() / "cgal"
    if (dest / "data" / "meshes").is_dir():
        return dest / "data"
    if not tarball.is_file():
        raise FileNotFoundError(
            f"{tarball} not found: the CGAL meshes come from Debian's libcgal-demo (run: apt-get install libcgal-demo)"
        )
    dest.mkdir(parents=True, exist_ok=True)
    # unpack into a folder of this process's own, then rename: concurrent first uses do not collide
    tmp = Path(tempfile.mkdtemp(prefix="partial-", dir=dest))
    try:
        with tarfile.open(tarball) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith(("data/meshes", "data/points_3"))]
            tar.extractall(tmp, members=members, filter="data")
        try:
            (tmp / "data").rename(dest / "data")
        except OSError:  # another process finished first
            if not (dest / "data" / "meshes").is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest / "data"


def cgal_mesh_path(name: str) -> Path:
    p = cgal_data_dir() / "meshes" / (name if "." in name else f"{name}.off")
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such CGAL mesh")
    return p


def cgal_scan_path(name: str) -> Path:
    p = cgal_data_dir() / "points_3" / name
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such CGAL point set")
    return p


def pybullet_objects_dir() -> Path:
    try:
        import pybullet_data
    except ImportError as err:
        raise ImportError(
            "the procedural objects come from pybullet_data: pip install pybullet "
            "(or pip install 'difflab-pointcloud[data]')"
        ) from err
    return Path(pybullet_data.getDataPath()) / "random_urdfs"


def readable_pybullet_meshes(count: int, start: int = 0) -> tuple[list, int]:
    """The first ``count`` procedural objects from index ``start`` on that read as valid meshes.

    A broken object is skipped with a warning naming the file (``random_urdfs/168/168.obj`` of
    pybullet_data 3.2 has non-finite vertex coordinates). Returns ``(meshes, next_index)``, where
    ``next_index`` is where a following split starts, so splits never share an object.
    """
    import warnings

    from difflab.pointcloud.io import PointCloudError, read_mesh

    meshes, index = [], start
    while len(meshes) < count:
        if index >= 1000:
            raise ValueError(f"pybullet_data: fewer than {count} readable objects from index {start} on")
        path = pybullet_object_paths(1, index)[0]
        try:
            meshes.append(read_mesh(path))
        except PointCloudError as err:
            warnings.warn(f"skipping {err}", stacklevel=2)
        index += 1
    return meshes, index


def pybullet_object_paths(count: int = 1000, start: int = 0) -> list[Path]:
    """Paths of the procedural objects ``start .. start + count - 1`` (``random_urdfs/NNN/NNN.obj``)."""
    root = pybullet_objects_dir()
    paths = [root / f"{i:03d}" / f"{i:03d}.obj" for i in range(start, min(start + count, 1000))]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{missing[0]}: missing from pybullet_data ({len(missing)} objects missing)")
    return paths
