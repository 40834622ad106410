"""Classical filters against their definitions: the kNN mean against a dense computation, PCA normals
and the point-set bilateral filter on a noisy plane, the normal-only displacement."""

import numpy as np
import pytest
import torch

from difflab.pointcloud.baselines import bilateral_filter, knn_mean_filter, normal_displacement, pca_normals


def _noisy_plane(n: int = 2000, sigma: float = 0.01, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.c_[rng.uniform(-1, 1, (n, 2)), sigma * rng.normal(size=n)]


def test_knn_mean_equals_the_dense_definition():
    x = np.random.default_rng(1).normal(size=(400, 3))
    d = torch.cdist(torch.as_tensor(x), torch.as_tensor(x))
    nb = d.topk(8, largest=False).indices.numpy()
    once = x[nb].mean(1)
    np.testing.assert_allclose(knn_mean_filter(x, k=8), once, atol=1e-6)
    d2 = torch.cdist(torch.as_tensor(once), torch.as_tensor(once)).topk(8, largest=False).indices.numpy()
    np.testing.assert_allclose(knn_mean_filter(x, k=8, iterations=2), once[d2].mean(1), atol=1e-5)


def test_pca_normals_of_a_plane_are_its_normal():
    n = pca_normals(_noisy_plane(sigma=0.001), k=16)
    assert np.abs(n[:, 2]).min() > 0.99


@pytest.mark.parametrize("sigma", [0.01, 0.03])
def test_bilateral_filter_brings_a_noisy_plane_closer_to_it(sigma):
    x = _noisy_plane(sigma=sigma)
    out = bilateral_filter(x, k=16, iterations=2)
    assert np.abs(out[:, 2]).mean() < 0.6 * np.abs(x[:, 2]).mean()
    assert np.abs(out[:, :2] - x[:, :2]).mean() < 0.25 * sigma  # moves mostly along the normal


def test_normal_displacement_keeps_the_points_along_the_surface():
    x = _noisy_plane()
    flat = x * [1, 1, 0] + [0.05, -0.02, 0]  # a filter that flattens and also slides the points
    out = normal_displacement(x, flat, k=16)
    np.testing.assert_allclose(out[:, :2], x[:, :2], atol=1e-6)
    np.testing.assert_allclose(out[:, 2], 0, atol=1e-6)


def test_a_bad_neighbourhood_size_is_refused():
    with pytest.raises(ValueError, match="k must be"):
        knn_mean_filter(np.zeros((5, 3)), k=8)
