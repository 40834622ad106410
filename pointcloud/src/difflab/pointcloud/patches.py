"""Farthest-point sampling, kNN patches and stitching (IterativePFN's patch pipeline).

A cloud of ``N`` points is covered by patches of ``P`` points around seeds chosen by farthest-point
sampling (Open3D's ``farthest_point_down_sample``); each patch is the seed's ``P`` nearest points (a
KD-tree query, scipy's ``cKDTree``), centred at its seed and scaled by ``1 / radius`` (its largest
distance to the seed) so that the network sees patches of unit size. After filtering, every point takes
its output from the patch, among those that hold it, whose seed is nearest (IterativePFN's stitching),
so each input point gets exactly one output. :func:`filter_cloud` streams batches of patches: its memory
is the cloud, the output and one batch (no ``N x seeds`` distance matrix, no table of all patches).
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
    """Filter a whole cloud patch by patch, streaming: memory is the cloud, the output and one batch.

    Seeds as :func:`group_patches` (farthest-point seeds, then seeds among the points no patch holds);
    each batch of seeds gets its kNN patches from the KD-tree, is filtered, and every point of it whose
    seed is nearer than that of any patch seen before takes its output from it (ties: the earlier
    patch), which is :func:`stitch_owner`'s choice without keeping the ``(S, P)`` patch table.

    Args:
        points: (N, 3) noisy cloud (any scale).
        filter_fn: maps normalised patches (B, P, 3) to filtered patches (B, P, 3) (normalised units).
        patch_size: points per patch ``P``.
        coverage: seeds = ceil(coverage N / P) (each point lies in about ``coverage`` patches).
        batch: patches per call of ``filter_fn``.
        desc: a name to show progress under (a bar on a terminal, a line every few seconds without
            one) when the cloud takes more than ``PROGRESS_BATCHES`` calls of ``filter_fn``.

    Returns:
        the filtered cloud (N, 3) float32, each point from the patch with the nearest seed.
    """
    x = np.ascontiguousarray(np.asarray(points, dtype=np.float32))
    n, p = len(x), min(patch_size, len(x))
    tree, m = cKDTree(x), max(1, math.ceil(coverage * n / p))
    if desc is not None and math.ceil(m / batch) > PROGRESS_BATCHES:
        from difflab.core.progress import note

        note(f"{desc}: choosing {m} patch seeds among {n} points (farthest-point sampling)")
    seeds = farthest_point_sample(x, m).numpy()
    out, best = np.empty_like(x), np.full(n, np.inf)
    bar = _patch_progress(desc, len(seeds), batch)
    with torch.no_grad():
        while len(seeds):
            for s in range(0, len(seeds), batch):
                _filter_batch(x, tree, seeds[s : s + batch], p, filter_fn, out, best)
                if bar is not None:
                    bar.update(1)
            rest = np.flatnonzero(np.isinf(best))  # isolated points: seeds of their own
            seeds = rest[farthest_point_sample(x[rest], math.ceil(len(rest) / p)).numpy()] if len(rest) else rest
    if bar is not None:
        bar.close()
    return out


def _patch_progress(desc: str | None, seeds: int, batch: int):
    calls = math.ceil(seeds / batch)
    if desc is None or calls <= PROGRESS_BATCHES:
        return None
    from difflab.core.progress import StepProgress

    return StepProgress(desc, calls, unit="batches")


def _filter_batch(x, tree, seeds, p, filter_fn, out, best) -> None:
    """Filter the patches of ``seeds`` and write each point whose seed is nearer than ``best`` into ``out``."""
    dist, nb = _knn(tree, x[seeds], p)
    centres = torch.from_numpy(x[seeds])
    patch, r = normalise_patch(torch.from_numpy(x[nb]), centres)
    y = (filter_fn(patch) * r[:, None, None] + centres[:, None]).numpy()
    flat_point, flat_dist = nb.reshape(-1), dist.reshape(-1)
    order = np.lexsort((flat_dist, flat_point))  # by point, then by distance to the seed (stable)
    first = order[np.r_[True, flat_point[order][1:] != flat_point[order][:-1]]]
    first = first[flat_dist[first] < best[flat_point[first]]]
    best[flat_point[first]] = flat_dist[first]
    out[flat_point[first]] = y.reshape(-1, 3)[first]
