r"""Point Straight Flow (PSF; Wu et al. 2023, "Fast Point Cloud Generation with Straight Flows").

Three stages, each a :class:`PointStraightFlow` with its ``stage``:

1. ``flow``: rectified flow on point sets. In difflab's direction (``t = 0`` data, ``t = 1`` noise;
   PSF writes ``x_t = t x1 + (1 - t) z0`` with data at ``t = 1``),
   :math:`x_t = (1 - t) x_0 + t x_1`, :math:`x_1 \sim N(0, I)`, and the network regresses the
   velocity :math:`u = x_1 - x_0` (core :class:`~difflab.core.processes.FlowMatching`).
2. ``reflow``: the same regression on coupled pairs ``(x1, x0 = ODE(x1))`` produced by the stage-1
   model with many Euler steps (core :func:`~difflab.core.processes.flow.reflow_pairs`; written by
   ``difflab-pointcloud make-pairs``): the flow becomes straighter, so few steps suffice.
3. ``distill``: one step. The network is trained at ``t = 1`` only so that
   :math:`\hat x_0 = x_1 - v_\theta(x_1, 1)` (one Euler step) matches the paired sample, with a Chamfer
   loss (PSF) or a point-wise MSE.

Sampling integrates :math:`dx/dt = v_\theta(x, t)` from ``t = 1`` to 0 with core samplers; ``ddim``
(eta 0) on a uniform grid *is* the Euler method for this process:
``x_{t'} = x_t + (t' - t) v``. Batch dict: ``x0`` (B, N, 3); ``x1`` (B, N, 3) for reflow / distill;
``label`` (B,) optional class index.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor

from difflab.core.errors import UserError
from difflab.core.lightning import DiffusionModule
from difflab.core.processes import FlowMatching
from difflab.core.samplers.base import SampleResult
from difflab.core.samplers.select import SamplerName
from difflab.pointcloud.metrics import chamfer_distance, chamfer_loss
from difflab.pointcloud.models.base import load_weights_from
from difflab.pointcloud.networks.point_denoiser import PointSetDenoiser


class PointCloudDiffusion(DiffusionModule):
    """Base of the generative point-cloud methods: passes ``label`` to the network, samples clouds.

    Args: see :class:`~difflab.core.lightning.DiffusionModule`; ``init_from``: a checkpoint whose
    weights initialise this module when ``fit`` starts (the previous stage; ignored on resume);
    ``label_dropout``: in training, each label is replaced by the "no class" label with this
    probability (classifier-free guidance's condition dropout, Ho & Salimans 2022, who use 0.1-0.2),
    so the same network also learns the unconditional model that guided sampling
    (``generate(..., guidance=w)``) needs.
    """

    def __init__(
        self,
        network: PointSetDenoiser,
        *args: Any,
        init_from: str | None = None,
        label_dropout: float = 0.0,
        **kwargs: Any,
    ) -> None:
        if not 0.0 <= label_dropout < 1.0:
            raise ValueError(f"label_dropout must be in [0, 1), got {label_dropout}")
        super().__init__(network, *args, **kwargs)
        self.init_from = init_from
        self.label_dropout = float(label_dropout)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        data = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        check_classes(int(getattr(self.network, "num_classes", 0) or 0), data)

    def on_fit_start(self) -> None:
        # the previous stage's weights, unless this run resumes from its own checkpoint
        if self.init_from and getattr(self.trainer, "ckpt_path", None) is None:
            load_weights_from(self, self.init_from)

    def network_forward(self, x_t: Tensor, t: Tensor, batch: dict[str, Any] | None = None) -> Tensor:
        label = batch.get("label") if batch else None
        if label is not None and getattr(self.network, "num_classes", 0) == 0:
            label = None
        if label is not None and self.training and self.label_dropout > 0:
            drop = torch.rand(label.shape, device=label.device) < self.label_dropout
            label = torch.where(drop, torch.full_like(label, self.network.num_classes), label)
        return self.network(x_t, t, label)

    def null_condition(self, batch: dict[str, Any] | None) -> dict[str, Any] | None:
        """The batch with every label set to the network's "no class" label, for a class-conditional
        network trained with ``label_dropout > 0`` (else ``None``: no guidance)."""
        classes = int(getattr(self.network, "num_classes", 0) or 0)
        if not batch or batch.get("label") is None or classes == 0 or self.label_dropout == 0:
            return None
        return {**batch, "label": torch.full_like(batch["label"], classes)}

    def generate(
        self,
        num: int,
        num_points: int,
        *,
        steps: int | None = None,
        sampler: SamplerName | None = None,
        label: Tensor | None = None,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> SampleResult:
        """``num`` clouds of ``num_points`` points, (num, num_points, 3)."""
        batch = {"label": label} if label is not None else None
        return self.sample(
            (num, num_points, 3), batch=batch, sampler=sampler, steps=steps, generator=generator, **options
        )

    def sample_metrics(self, samples: Tensor, batch: dict[str, Any]) -> dict[str, Tensor | float]:
        ref = batch["x0"][: len(samples)]
        return {"sample_cd": chamfer_distance(samples, ref[: len(samples)]).mean()}


def check_classes(network_classes: int, data: Any) -> None:
    """The data decides the classes of a class-conditional network: a network built for another number
    of classes than the data module's categories is a one-line :class:`UserError` naming both; an
    unconditional network on data of several categories is warned about once (its labels are unused)."""
    given = getattr(data, "num_classes", None)
    if given is None or given == network_classes:
        return
    names = list(getattr(data, "class_names", []) or [])
    option = "--model.init_args.network.init_args.num_classes"
    if network_classes == 0:
        warnings.warn(
            f"the data has {given} categories {names}; the network is unconditional, so their labels are "
            f"not used (pass {option} {given} for class-conditional generation)",
            stacklevel=2,
        )
        return
    what = f"{given} categories {names}" if given else "no categories (one class)"
    raise UserError(
        f"{option} {network_classes}: the data has {what} (--data.init_args.categories); pass {option} {given}"
    )


class PointStraightFlow(PointCloudDiffusion):
    """PSF (module docstring).

    Args:
        network: the point-set network (velocity prediction).
        stage: ``flow``, ``reflow`` or ``distill``.
        distill_loss: ``chamfer`` (PSF) or ``mse`` for the distillation stage.
        init_from: checkpoint of the previous stage.
        sampler, sample_steps: default core sampler (``ddim`` with a uniform grid = Euler) and steps
            (50, or 1 when constructed with ``stage='distill'``; changing ``stage`` later keeps it).
    """

    def __init__(
        self,
        network: PointSetDenoiser,
        stage: Literal["flow", "reflow", "distill"] = "flow",
        distill_loss: Literal["chamfer", "mse"] = "chamfer",
        init_from: str | None = None,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        sampler: SamplerName = "ddim",
        sample_steps: int = 50,
        num_val_samples: int = 0,
    ) -> None:
        if stage not in ("flow", "reflow", "distill"):
            raise ValueError(f"PointStraightFlow: stage must be flow, reflow or distill, got {stage!r}")
        if distill_loss not in ("chamfer", "mse"):
            raise ValueError(f"PointStraightFlow: distill_loss must be chamfer or mse, got {distill_loss!r}")
        super().__init__(
            network,
            FlowMatching(),
            "velocity",
            optimizer,
            lr_scheduler,
            init_from=init_from,
            sampler=sampler,
            sample_steps=1 if stage == "distill" and sample_steps == 50 else sample_steps,
            sampler_options={"grid_kind": "uniform"},
            num_val_samples=num_val_samples,
        )
        self.stage, self.distill_loss = stage, distill_loss

    def training_loss(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> Tensor:
        if self.stage == "flow":
            return self.diffusion_loss(batch, generator)
        if "x1" not in batch:
            raise ValueError(f"stage {self.stage!r} needs (noise, sample) pairs: a batch with 'x1' (PairsDataModule)")
        x0, x1 = batch["x0"], batch["x1"]
        if self.stage == "reflow":
            t = self.sample_time(x0, generator)
            tt = t[:, None, None]
            v = self.network_forward((1 - tt) * x0 + tt * x1, t, batch)
            return (v - (x1 - x0)).pow(2).mean()
        t = torch.ones(x0.shape[0], device=x0.device, dtype=x0.dtype)
        x0_hat = x1 - self.network_forward(x1, t, batch)
        if self.distill_loss == "mse":
            return (x0_hat - x0).pow(2).mean()
        return chamfer_loss(x0_hat, x0)


def euler_sample(
    model: PointCloudDiffusion, noise: Tensor, steps: int, label: Tensor | None = None, callback=None
) -> Tensor:
    """Deterministic Euler integration of the learned flow from ``noise`` (t = 1) to t = 0 (core DDIM, eta 0,
    uniform grid, which is Euler for this process); ``callback``: the sampler's per-step callback."""
    batch = {"label": label} if label is not None else None
    opts = {"grid_kind": "uniform", "eta": 0.0, "callback": callback}
    return model.sample(batch=batch, x_init=noise, sampler="ddim", steps=steps, **opts).sample


def make_pairs(
    model: PointCloudDiffusion,
    num: int,
    num_points: int,
    steps: int = 100,
    batch: int = 32,
    labels: Tensor | None = None,
    generator: torch.Generator | None = None,
    callback=None,
) -> dict[str, Tensor]:
    """``{"noise", "sample"[, "label"]}``: ``num`` reflow pairs from ``steps`` Euler steps of ``model``
    (core :func:`~difflab.core.processes.flow.reflow_pairs`), ``batch`` at a time; ``callback``: the
    sampler's per-step callback."""
    from difflab.core.processes.flow import reflow_pairs

    noise_all, samples = [], []
    for s in range(0, num, batch):
        nb = min(batch, num - s)
        noise = torch.randn(nb, num_points, 3, generator=generator)
        lab = None if labels is None else labels[s : s + nb]
        z, x = reflow_pairs(lambda z, lab=lab: euler_sample(model, z, steps, lab, callback), noise)
        noise_all.append(z)
        samples.append(x)
    out = {"noise": torch.cat(noise_all), "sample": torch.cat(samples)}
    if labels is not None:
        out["label"] = labels[:num].long()
    return out
