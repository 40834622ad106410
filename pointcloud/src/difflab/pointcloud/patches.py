"""Farthest-point sampling, kNN patches and stitching (IterativePFN's patch pipeline).

A cloud of ``N`` points is covered by patches of ``P`` points around seeds chosen by farthest-point
sampling (Open3D's ``farthest_point_down_sample``); each patch is the seed's ``P`` nearest points (a
KD-tree query, scipy's ``cKDTree``), centred at its seed and scaled by ``1 / radius`` (its largest
distance to the seed) so that the network sees patches of unit size. After filtering, every point takes
its output from the patch, among those that hold it, whose seed is nearest (IterativePFN's stitching),
so each input point gets exactly one output. Memory grows linearly with ``N`` (about ``coverage N``
patch entries); no ``N x seeds`` distance matrix is formed.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor

PROGRESS_BATCHES = 8
"""Clouds that take more calls of the filter than this show progress over their patches."""


def farthest_point_sample(x: Tensor | np.ndarray, m: int, start: int = 0) -> Tensor:
    """Indices ``(m,)`` of ``m`` farthest-point-sampled points of ``x`` (N, 3), in increasing order.

    Open3D's ``farthest_point_down_sample`` from point ``start`` (it returns the selected points, not
    the visiting order); each point's index travels through the selection in its normal's first
    component, exact in float64.
    """
    from difflab.pointcloud.io import _o3d

    o3d = _o3d()  # Open3D with its messages below errors silenced
    pts = np.asarray(x, dtype=np.float64)
    m = min(m, len(pts))
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts))
    index = np.repeat(np.arange(len(pts), dtype=np.float64)[:, None], 3, axis=1)
    cloud.normals = o3d.utility.Vector3dVector(index)
    picked = cloud.farthest_point_down_sample(m, start)
    return torch.from_numpy(np.asarray(picked.normals)[:, 0].astype(np.int64))


def group_patches(x: np.ndarray, patch_size: int, coverage: float = 3.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeds and their kNN patches covering every point of ``x`` (N, 3).

    Seeds: ``ceil(coverage N / P)`` by farthest-point sampling, plus, while some points lie in no
    patch (isolated points), farthest-point seeds among the uncovered points.

    Returns:
        ``(seeds (S,), patches (S, P) point indices, distances (S, P) of each patch point to its seed)``,
        each patch's points nearest first.
    """
    n, p = len(x), min(patch_size, len(x))
    tree = cKDTree(x)
    seeds = farthest_point_sample(x, max(1, math.ceil(coverage * n / p))).numpy()
    dist, nb = _knn(tree, x[seeds], p)
    covered = np.zeros(n, dtype=bool)
    covered[nb.reshape(-1)] = True
    while not covered.all():
        rest = np.flatnonzero(~covered)
        extra = rest[farthest_point_sample(x[rest], max(1, math.ceil(len(rest) / p))).numpy()]
        d_extra, nb_extra = _knn(tree, x[extra], p)
        seeds, nb = np.concatenate([seeds, extra]), np.concatenate([nb, nb_extra])
        dist = np.concatenate([dist, d_extra])
        covered[nb_extra.reshape(-1)] = True
    return seeds, nb, dist


def _knn(tree: cKDTree, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    dist, idx = tree.query(queries, k=k)
    return dist.reshape(len(queries), k), idx.reshape(len(queries), k)


def stitch_owner(nb: np.ndarray, dist: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """For every point ``0..n-1``: the patch, among those that hold it, whose seed is nearest, and the
    point's position in that patch. ``nb``, ``dist``: (S, P) as from :func:`group_patches`."""
    flat_point, flat_dist = nb.reshape(-1), dist.reshape(-1)
    order = np.lexsort((flat_dist, flat_point))  # by point, then by distance to the seed
    first = order[np.r_[True, flat_point[order][1:] != flat_point[order][:-1]]]
    if len(first) != n:
        raise ValueError(f"the patches cover {len(first)} of {n} points")
    return np.divmod(first, nb.shape[1])


def normalise_patch(patch: Tensor, centre: Tensor) -> tuple[Tensor, Tensor]:
    """``(patch - centre) / radius`` and the radius, per patch: ``patch`` (B, P, 3), ``centre`` (B, 3)."""
    p = patch - centre[:, None]
    r = p.norm(dim=-1).amax(1).clamp_min(1e-8)
    return p / r[:, None, None], r


def filter_cloud(
    points: np.ndarray | Tensor,
    filter_fn,
    patch_size: int = 256,
    coverage: float = 3.0,
    batch: int = 32,
    desc: str | None = None,
) -> np.ndarray:
    """Filter a whole cloud patch by patch.

    Args:
        points: (N, 3) noisy cloud (any scale).
        filter_fn: maps normalised patches (B, P, 3) to filtered patches (B, P, 3) (normalised units).
        patch_size: points per patch ``P``.
        coverage: seeds = ceil(coverage N / P) (each point lies in about ``coverage`` patches).
        batch: patches per call of ``filter_fn``.
        desc: a name to show progress under (a bar on a terminal, a line every few seconds without
            one) when the cloud takes more than ``PROGRESS_BATCHES`` calls of ``filter_fn``.

    Returns:
        the filtered cloud (N, 3), each point from the patch with the nearest seed.
    """
    x = torch.as_tensor(np.asarray(points), dtype=torch.float32)
    seeds, nb, dist = group_patches(x.numpy(), patch_size, coverage)
    centres, nb_t = x[torch.from_numpy(seeds)], torch.from_numpy(nb)
    filtered = []
    starts = range(0, len(seeds), batch)
    if desc is not None and len(starts) > PROGRESS_BATCHES:
        from difflab.core.progress import progress

        starts = progress(starts, desc, unit="batches")
    with torch.no_grad():
        for s in starts:
            patch, r = normalise_patch(x[nb_t[s : s + batch]], centres[s : s + batch])
            y = filter_fn(patch)
            filtered.append(y * r[:, None, None] + centres[s : s + batch, None])
    filtered_t = torch.cat(filtered)  # (S, P, 3)
    patch, pos = stitch_owner(nb, dist, x.shape[0])
    return filtered_t[torch.from_numpy(patch), torch.from_numpy(pos)].numpy()
