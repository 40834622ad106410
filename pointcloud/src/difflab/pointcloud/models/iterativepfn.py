r"""IterativePFN (de Silva Edirimuni et al. 2023, "IterativePFN: True Iterative Point Cloud Filtering").

A chain of ``T`` iteration modules (:class:`~difflab.pointcloud.networks.DisplacementNet`, kNN graph
convolutions) inside one network. Module ``i`` maps the current patch ``p_i`` to a displacement
``d_i`` and ``p_{i+1} = p_i + d_i`` (``p_0`` the noisy patch).

Adaptive ground-truth targets: with the patch's noise std ``sigma_0``, module ``i`` (1-based) aims at a
less noisy copy of the clean patch, :math:`\sigma_i = \sigma_{i-1} / 4` (``decay``), and the last one at
the clean patch itself: its target displacement is :math:`\mathrm{NN}(p_{i-1,j}, X + \sigma_i z) - p_{i-1,j}`,
the nearest point of the (re-noised) clean patch minus the current point. The loss sums over modules
and points with weights :math:`w_j \propto \exp(-\lVert p_j - s\rVert^2 / (r^2/9))` that favour points
near the patch seed ``s`` (``r``: the patch radius, 1 after normalisation).

Whole clouds are filtered patch by patch (:func:`difflab.pointcloud.patches.filter_cloud`: farthest-
point seeds, kNN patches, each point stitched back from its nearest seed's patch).

Batch dict: ``y`` (B, P, 3) noisy patch, ``x0`` (B, P, 3) clean patch, ``sigma`` (B,) noise std
(patch units). Test metric: Chamfer of the patches (squared, x 1e4 in patch units), with the noisy
input's as reference.
"""

from __future__ import annotations

import numpy as np
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from difflab.core.errors import UserError
from difflab.core.lightning import NoiseStream, TrainedModule, eval_mode
from difflab.pointcloud.metrics import chamfer_distance
from difflab.pointcloud.networks.filter_net import DisplacementNet
from difflab.pointcloud.networks.graph import gather_neighbours, knn
from difflab.pointcloud.patches import filter_cloud


class PointFilter(TrainedModule):
    """Base of the filtering methods: ``filter_patches`` maps normalised noisy patches to filtered ones.

    The data decides ``patch_size`` (the command line links it from the data module; the checkpoint
    records it): a checkpoint of another patch size is refused in one line by :meth:`on_load_checkpoint`
    when ``test``, ``validate``, ``predict`` or a resumed ``fit`` reads it with a data module."""

    patch_size: int = 256
    normal_k: int = 0
    """> 0: keep only the normal part of each point's displacement (normals of the filtered cloud from
    this many neighbours, :func:`~difflab.pointcloud.baselines.normal_displacement`); 0: keep it all."""

    def filter_patches(self, patches: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def denoise(
        self, points: np.ndarray, repeat: int = 1, coverage: float = 3.0, batch: int = 32, desc: str | None = None
    ) -> np.ndarray:
        """Filter a whole cloud (N, 3) (any scale), ``repeat`` times in a row (``desc``: show progress
        over the patches of a big cloud under this name); with ``normal_k`` > 0 each pass moves the
        points only along the normals of its output."""
        from difflab.pointcloud.baselines import normal_displacement

        with eval_mode(self):
            out = np.asarray(points, dtype=np.float32)
            for i in range(repeat):
                name = desc if desc is None or repeat == 1 else f"{desc} (pass {i + 1}/{repeat})"
                new = filter_cloud(out, self.filter_patches, self.patch_size, coverage, batch, desc=name)
                k = min(int(self.normal_k), len(out))
                out = normal_displacement(out, new, k) if k >= 3 else new
            return out

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Refuse a checkpoint trained on patches of another size than the data module's."""
        super().on_load_checkpoint(checkpoint)
        trained = (checkpoint.get("hyper_parameters") or {}).get("patch_size")
        data = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        given = getattr(data, "patch_size", None)
        if trained is None or given is None or int(trained) == int(given):
            return
        raise UserError(
            f"--data.init_args.patch_size {given}: the checkpoint's filter was trained on patches of {trained} "
            f"points; pass --data.init_args.patch_size {trained}"
        )

    def _eval(self, batch: dict[str, Tensor], stage: str) -> Tensor:
        out = self.filter_patches(batch["y"])
        cd = chamfer_distance(out, batch["x0"]).mean() * 1e4
        cd_noisy = chamfer_distance(batch["y"], batch["x0"]).mean() * 1e4
        bs = batch["y"].shape[0]
        self.log(f"{stage}/cd_x1e4", cd, prog_bar=True, batch_size=bs)
        self.log(f"{stage}/cd_noisy_x1e4", cd_noisy, batch_size=bs)
        return cd

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        return self._eval(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        return self._eval(batch, "test")

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        return self.filter_patches(batch["y"])


def seed_weights(p: Tensor) -> Tensor:
    """IterativePFN's point weights ``exp(-|p|^2 / (max|p|^2 / 9))``, normalised per patch: (B, P)."""
    d2 = p.pow(2).sum(-1)
    w = torch.exp(-d2 / (d2.amax(1, keepdim=True).clamp_min(1e-12) / 9))
    return w / w.sum(1, keepdim=True)


def nearest_target(p: Tensor, target_set: Tensor) -> Tensor:
    """``NN(p_j, target_set) - p_j`` for every point: (B, P, 3)."""
    idx = knn(p, 1, target_set)
    return gather_neighbours(target_set, idx)[:, :, 0] - p


class IterativePFN(PointFilter):
    """Args:
    num_iterations: modules in the chain ``T`` (IterativePFN: 4).
    k, width, layers: size of each :class:`DisplacementNet`.
    decay: ``sigma_i = sigma_{i-1} / decay`` of the adaptive targets (4).
    adaptive_targets: False trains every module towards the clean patch (ablation).
    patch_size: points per patch when filtering whole clouds (the command line takes it from the data).
    normal_k: when filtering whole clouds, keep only the displacement along the normals of the
        filtered cloud (from ``normal_k`` neighbours; 0 keeps the whole displacement). Training is
        unchanged; the shipped default uses it (moving points along the surface clusters them).
    optimizer, lr_scheduler: factories.
    """

    def __init__(
        self,
        num_iterations: int = 4,
        k: int = 16,
        width: int = 48,
        layers: int = 3,
        decay: float = 4.0,
        adaptive_targets: bool = True,
        patch_size: int = 256,
        normal_k: int = 0,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__(optimizer, lr_scheduler)
        if num_iterations < 1:
            raise ValueError(f"IterativePFN: num_iterations must be >= 1, got {num_iterations}")
        if normal_k < 0:
            raise ValueError(f"IterativePFN: normal_k must be >= 0, got {normal_k}")
        if decay <= 1:
            raise ValueError(f"IterativePFN: decay must be > 1, got {decay}")
        self.save_init_hyperparameters()
        self.modules_ = nn.ModuleList(DisplacementNet(k, width, layers) for _ in range(num_iterations))
        self.decay, self.adaptive_targets, self.patch_size = decay, adaptive_targets, patch_size
        self.normal_k = normal_k

    def iterate(self, patches: Tensor) -> list[Tensor]:
        """``[p_1, ..., p_T]``: the patch after each module."""
        out, p = [], patches
        for m in self.modules_:
            p = p + m(p)
            out.append(p)
        return out

    def filter_patches(self, patches: Tensor) -> Tensor:
        with torch.no_grad():
            return self.iterate(patches)[-1]

    def training_loss(self, batch: dict[str, Tensor], generator: torch.Generator | None = None) -> Tensor:
        y, x0, sigma = batch["y"], batch["x0"], batch["sigma"]
        p = y
        w = seed_weights(y)
        loss = y.new_zeros(())
        t = len(self.modules_)
        for i, m in enumerate(self.modules_):
            d = m(p)
            if self.adaptive_targets and i < t - 1:
                s_i = sigma / self.decay ** (i + 1)
                tgt_set = x0 + s_i[:, None, None] * torch.randn(x0.shape, generator=generator, device=x0.device)
            else:
                tgt_set = x0
            target = nearest_target(p.detach(), tgt_set)
            loss = loss + (w * (d - target).pow(2).sum(-1)).sum(1).mean()
            p = p + d
        return loss

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = self.training_loss(batch, self.noise_generator(NoiseStream.TRAIN, self.global_step, batch_idx))
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["y"].shape[0])
        return loss
