r"""Classical point-cloud filters, the baselines a learned filter has to beat.

* :func:`knn_mean_filter`: every point replaced by the mean of its ``k`` nearest points (itself
  included), :math:`p_i' = \frac1k \sum_{j \in \mathrm{kNN}(i)} p_j`, applied ``iterations`` times.
* :func:`bilateral_filter`: the point-set bilateral filter (Fleishman et al. 2003, "Bilateral mesh
  denoising", as used on point sets by Digne & de Franchis 2017): each point moves along its PCA normal
  :math:`n_i` (the direction of least variance of its ``k`` neighbours) by

  .. math:: \delta_i = \frac{\sum_j w_c(\lVert p_j - p_i\rVert)\, w_s(h_{ij})\, h_{ij}}
                           {\sum_j w_c(\lVert p_j - p_i\rVert)\, w_s(h_{ij})},\qquad
            h_{ij} = \langle n_i, p_j - p_i \rangle,

  with Gaussian weights :math:`w_c(d) = e^{-d^2 / 2\sigma_c^2}` (spatial, :math:`\sigma_c` the mean
  neighbour distance of the point) and :math:`w_s(h) = e^{-h^2 / 2\sigma_s^2}` (range,
  :math:`\sigma_s` the standard deviation of the :math:`h_{ij}` of the point), so edges are kept.

Both take a cloud ``(N, 3)`` in any units and return a new ``(N, 3)`` float32 array; neighbourhoods come
from a KD-tree (scipy's ``cKDTree``) in chunks of points, so memory grows linearly with ``N``.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

CHUNK = 65536
"""Points whose neighbourhoods are held at once."""


def _check(points: np.ndarray, k: int) -> np.ndarray:
    x = np.asarray(points, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 3:
        raise ValueError(f"expected points of shape (N, 3), got {x.shape}")
    if k < 2 or k > len(x):
        raise ValueError(f"k must be in [2, {len(x)}] for a cloud of {len(x)} points, got {k}")
    return x


def pca_normals(points: np.ndarray, k: int = 16) -> np.ndarray:
    """Unit normals (N, 3) float64: the direction of least variance of each point's ``k`` nearest points
    (the eigenvector of the smallest eigenvalue of their covariance; the sign is arbitrary)."""
    x = _check(points, k)
    tree, out = cKDTree(x), np.empty_like(x)
    for s in range(0, len(x), CHUNK):
        _, nb = tree.query(x[s : s + CHUNK], k=k)
        centred = x[nb] - x[nb].mean(1, keepdims=True)
        out[s : s + CHUNK] = np.linalg.eigh(np.einsum("cki,ckj->cij", centred, centred))[1][:, :, 0]
    return out


def normal_displacement(before: np.ndarray, after: np.ndarray, k: int = 16) -> np.ndarray:
    r"""``before`` moved by only the normal part of its displacement to ``after``:
    :math:`p_i + \langle q_i - p_i, n_i\rangle n_i`, with :math:`n_i` the PCA normal of ``after`` at
    :math:`q_i` (``k`` neighbours). Keeps the points' spacing along the surface (no clustering) while
    taking their distance to it from the filter."""
    p, q = np.asarray(before, np.float64), np.asarray(after, np.float64)
    n = pca_normals(q, k)
    return (p + n * ((q - p) * n).sum(1, keepdims=True)).astype(np.float32)


def knn_mean_filter(points: np.ndarray, k: int = 16, iterations: int = 1) -> np.ndarray:
    """The mean of each point's ``k`` nearest points (itself included), ``iterations`` times."""
    x = _check(points, k)
    for _ in range(iterations):
        tree, out = cKDTree(x), np.empty_like(x)
        for s in range(0, len(x), CHUNK):
            _, nb = tree.query(x[s : s + CHUNK], k=k)
            out[s : s + CHUNK] = x[nb].mean(1)
        x = out
    return x.astype(np.float32)


def bilateral_filter(points: np.ndarray, k: int = 16, iterations: int = 2) -> np.ndarray:
    """The point-set bilateral filter (module docstring), ``iterations`` times."""
    x = _check(points, k)
    for _ in range(iterations):
        tree, out = cKDTree(x), np.empty_like(x)
        for s in range(0, len(x), CHUNK):
            p = x[s : s + CHUNK]
            dist, nb = tree.query(p, k=k)
            rel = x[nb] - p[:, None]  # (C, k, 3)
            centred = rel - rel.mean(1, keepdims=True)
            normal = np.linalg.eigh(np.einsum("cki,ckj->cij", centred, centred))[1][:, :, 0]  # least variance
            h = np.einsum("cki,ci->ck", rel, normal)
            sc = dist[:, 1:].mean(1, keepdims=True) + 1e-12
            ss = h.std(1, keepdims=True) + 1e-12
            w = np.exp(-(dist**2) / (2 * sc**2) - h**2 / (2 * ss**2))
            out[s : s + CHUNK] = p + normal * ((w * h).sum(1) / w.sum(1))[:, None]
        x = out
    return x.astype(np.float32)


__all__ = ["bilateral_filter", "knn_mean_filter", "normal_displacement", "pca_normals"]
