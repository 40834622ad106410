"""Farthest-point sampling (Open3D), KD-tree patches and stitching against dense definitions."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch

from difflab.pointcloud.patches import (
    farthest_point_sample,
    filter_cloud,
    group_patches,
    normalise_patch,
    stitch_owner,
)


def _greedy_fps(x: np.ndarray, m: int, start: int = 0) -> list[int]:
    """The definition: repeatedly take the point farthest from those taken."""
    taken, dist = [start], np.sum((x - x[start]) ** 2, axis=1)
    while len(taken) < m:
        taken.append(int(dist.argmax()))
        dist = np.minimum(dist, np.sum((x - x[taken[-1]]) ** 2, axis=1))
    return taken


@pytest.mark.parametrize("start", [0, 17])
def test_fps_selects_the_greedy_farthest_points(start):
    x = np.random.default_rng(1).normal(size=(500, 3))
    idx = farthest_point_sample(torch.as_tensor(x), 25, start=start)
    assert idx.dtype == torch.long and sorted(idx.tolist()) == sorted(_greedy_fps(x, 25, start))
    assert len(farthest_point_sample(x[:5], 10)) == 5


def test_patches_and_owner_equal_the_dense_definition():
    x = np.random.default_rng(0).normal(size=(700, 3)).astype(np.float32)
    x[:3] += 30  # isolated points get their own seeds
    seeds, nb, dist = group_patches(x, patch_size=64)
    d = torch.cdist(torch.as_tensor(x[seeds]).double(), torch.as_tensor(x).double())  # (S, N): fine at this size
    dense_nb = d.topk(64, largest=False).indices.numpy()
    assert all(set(a) == set(b) for a, b in zip(nb, dense_nb))
    assert np.allclose(dist, np.take_along_axis(d.numpy(), nb, 1), atol=1e-9)
    patch, pos = stitch_owner(nb, dist, len(x))
    assert (nb[patch, pos] == np.arange(len(x))).all()
    holds = np.zeros((len(seeds), len(x)), dtype=bool)
    np.put_along_axis(holds, nb, True, 1)
    nearest_holder = np.where(holds, d.numpy(), np.inf).argmin(0)
    assert (patch == nearest_holder).all()


def test_a_200k_point_cloud_is_grouped_without_a_dense_matrix(monkeypatch):
    x = np.random.default_rng(0).normal(size=(200_000, 3)).astype(np.float32)
    tracemalloc.start()
    seeds, nb, dist = group_patches(x, patch_size=256)
    patch, pos = stitch_owner(nb, dist, len(x))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    dense = len(seeds) * len(x) * 4  # one float32 seeds x points distance matrix: 1.9 GB
    assert peak < dense / 10, f"peak {peak / 2**20:.0f} MB"
    monkeypatch.setattr(torch, "cdist", lambda *a, **k: pytest.fail("dense distance matrix"))
    assert np.allclose(filter_cloud(x, lambda p: p), x, atol=1e-5)


def _filter_all_at_once(x: np.ndarray, filter_fn, patch_size: int, batch: int = 32) -> np.ndarray:
    """The earlier pipeline: every patch filtered and kept, then each point taken from its owner patch."""
    seeds, nb, dist = group_patches(x, patch_size)
    xt = torch.as_tensor(x)
    centres = xt[torch.from_numpy(seeds)]
    patches, r = normalise_patch(xt[torch.from_numpy(nb)], centres)
    filtered = torch.cat([filter_fn(patches[s : s + batch]) for s in range(0, len(seeds), batch)])
    filtered = filtered * r[:, None, None] + centres[:, None]
    patch, pos = stitch_owner(nb, dist, len(x))
    return filtered[torch.from_numpy(patch), torch.from_numpy(pos)].numpy()


def test_streamed_filtering_equals_keeping_every_patch():
    """Streaming batches of patches changes memory, not results: same owner patch, same outputs."""
    x = np.random.default_rng(3).normal(size=(1500, 3)).astype(np.float32)
    x[:4] += 25  # isolated points: the extra-seed round
    fn = lambda p: 0.7 * p + 0.3 * p.mean(1, keepdim=True)  # noqa: E731 - depends on the whole patch
    new = filter_cloud(x, fn, patch_size=48, batch=7)
    assert np.array_equal(new, _filter_all_at_once(x, fn, 48, batch=7))
