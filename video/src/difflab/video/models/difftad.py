r"""DiffTAD: temporal action detection by proposal denoising diffusion (Nag et al., ICCV 2023).

Detection as denoising of temporal proposals, following DiffusionDet's recipe transposed to 1-D
segments (the author's stated recipe; no reference code is public):

Training. The ground-truth segments of a video, as (centre, width) in [0, 1], are padded to
``num_proposals`` with placeholders drawn from ``N(0.5, (1/6)^2)`` (clamped to [1e-4, 1]), scaled to
``x0 = (2 b - 1) * signal_scale``, diffused with the core Gaussian process (a DDPM chain with the
cosine schedule, T = 1000),

.. math:: x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\,\varepsilon,

clamped to ``[-scale, scale]`` and mapped back to proposals ``b_t = (x_t / scale + 1) / 2``. The DETR-style
decoder, conditioned on ``t``, predicts class logits and refined segments (an ``x0`` prediction);
the loss is the Hungarian-matched set loss (:mod:`difflab.video.matching`).

Inference (:meth:`DiffTAD.raw_detections`). ``x ~ N(0, I)`` of ``(B, N, 2)``; the video is encoded
once, and each of ``steps`` DDIM steps on the uniform grid ``1 -> 0`` decodes the current proposals
to ``(x0_hat, scores)``, takes the implied noise ``eps_hat = (x_t - a_t x0_hat) / s_t`` and moves
with core's DDIM posterior (``eta``, :meth:`~difflab.core.processes.base.LinearGaussianProcess.posterior_from_parts`):

* proposal renewal (DiffusionDet): proposals whose best class score is below ``renewal_threshold``
  are replaced by fresh draws from the prior;
* cross-step selective conditioning (DiffTAD): a proposal whose denoised segment agrees with its
  previous step's (tIoU >= ``selective_iou``) and scores above ``selective_score`` is taken as
  settled: its next state is the noise-free ``a_s x0_hat`` (it conditions the next step on the
  previous estimate instead of being re-noised), so few steps suffice. This is our reading of the
  paper's description, since the code is not public.

Detections of every step are ensembled (``ensemble=True``) and then filtered by per-class NMS or
soft-NMS (plain torch, :mod:`difflab.video.segments`).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor

from difflab.core.lightning import DiffusionModule
from difflab.core.processes import DiscreteVP
from difflab.core.processes.base import LinearGaussianProcess
from difflab.core.samplers.base import Denoiser, step_time
from difflab.core.samplers.ddim import sample_ddim
from difflab.core.samplers.select import SamplerName, run_sampler
from difflab.video.matching import set_loss
from difflab.video.models.common import TADMixin
from difflab.video.networks.detr_tad import DetrTADNet
from difflab.video.segments import cw_to_se, elementwise_tiou


class DiffTAD(TADMixin, DiffusionModule):
    """DiffTAD (see the module docstring).

    Args:
        network: :class:`~difflab.video.networks.detr_tad.DetrTADNet` with ``time_conditioned=True``.
        num_proposals: proposals per video in training (GT padded with placeholders).
        eval_proposals: proposals per video at inference (default ``num_proposals``).
        signal_scale: DiffusionDet's scale of ``x0`` (2.0).
        process: the forward process (default: ``DiscreteVP("cosine", 1000, whole_steps=False)``,
            trained at continuous times).
        sample_steps: default sampler steps.
        eta: DDIM eta (DiffusionDet: 1.0).
        sampler: ``ddim`` (DiffusionDet's, with proposal renewal and selective conditioning) or any
            other core sampler by name (the same grid and ensemble, without renewal).
        renewal_threshold: score below which a proposal is renewed (0 disables).
        selective_conditioning: enable cross-step selective conditioning by default.
        selective_iou, selective_score: its agreement and score thresholds.
        ensemble: keep the detections of every step (else only the last).
        nms: ``nms``, ``soft`` or ``none``; nms_iou: NMS threshold; max_detections: per video.
        classes: class names (filled from the data module when training).
        loss weights: w_cls, w_l1, w_giou.
        optimizer, lr_scheduler: optimiser factories (default ``torch.optim.AdamW``; the configs use
            lr 5e-4, weight decay 1e-4).
    """

    def __init__(
        self,
        network: DetrTADNet,
        num_proposals: int = 30,
        eval_proposals: int | None = None,
        signal_scale: float = 2.0,
        process: LinearGaussianProcess | None = None,
        sample_steps: int = 4,
        eta: float = 1.0,
        sampler: SamplerName = "ddim",
        renewal_threshold: float = 0.1,
        selective_conditioning: bool = False,
        selective_iou: float = 0.8,
        selective_score: float = 0.3,
        ensemble: bool = True,
        nms: Literal["nms", "soft", "none"] = "soft",
        nms_iou: float = 0.5,
        max_detections: int = 100,
        classes: list[str] | None = None,
        w_cls: float = 2.0,
        w_l1: float = 5.0,
        w_giou: float = 2.0,
        optimizer: OptimizerCallable = torch.optim.AdamW,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        if nms not in ("nms", "soft", "none"):
            raise ValueError(f"DiffTAD: nms must be 'nms', 'soft' or 'none', got {nms!r}")
        if num_proposals < 1 or signal_scale <= 0:
            raise ValueError(
                f"DiffTAD: need num_proposals >= 1 and signal_scale > 0, got {num_proposals}, {signal_scale}"
            )
        super().__init__(
            network,
            process if process is not None else DiscreteVP("cosine", 1000, whole_steps=False),
            prediction="x0",
            optimizer=optimizer,
            lr_scheduler=lr_scheduler,
            sampler=sampler,
            sample_steps=sample_steps,
        )
        self.num_proposals, self.eval_proposals = num_proposals, eval_proposals or num_proposals
        self.scale, self.eta = float(signal_scale), float(eta)
        self.renewal_threshold = renewal_threshold
        self.selective_conditioning, self.selective_iou, self.selective_score = (
            selective_conditioning,
            selective_iou,
            selective_score,
        )
        self.ensemble = ensemble
        self.nms, self.nms_iou, self.max_detections = nms, nms_iou, max_detections
        self.classes = list(classes) if classes else None
        self.w = dict(w_cls=w_cls, w_l1=w_l1, w_giou=w_giou)

    # ------------------------------------------------------------------ training
    def padded_x0(self, batch: dict[str, Any], generator: torch.Generator | None) -> Tensor:
        """GT (centre, width) padded with N(0.5, 1/6^2) placeholders and scaled: ``(B, N, 2)``."""
        gt, valid = batch["gt_segments"], batch["gt_valid"]
        b, n = gt.shape[0], self.num_proposals
        pad = 0.5 + torch.randn(b, n, 2, generator=generator, device=gt.device) / 6.0
        boxes = pad.clamp(1e-4, 1.0)
        for i in range(b):
            g = gt[i][valid[i]]
            if g.shape[0] > n:
                g = g[torch.randperm(g.shape[0], generator=generator, device=gt.device)[:n]]
            boxes[i, : g.shape[0]] = g
        return (2 * boxes - 1) * self.scale

    def proposals_from_x(self, x: Tensor) -> Tensor:
        p = (x.clamp(-self.scale, self.scale) / self.scale + 1) / 2
        return torch.stack([p[..., 0], p[..., 1].clamp_min(1e-3)], -1)

    def training_loss(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> Tensor:
        x0 = self.padded_x0(batch, generator)
        t = self.sample_time(x0, generator)
        x_t, _ = self.process.sample_marginal(x0, t, generator=generator)
        out = self.network(batch["feats"], batch["mask"], self.proposals_from_x(x_t), t)
        losses = set_loss(
            out["logits"], out["segments"], batch["gt_segments"], batch["gt_labels"], batch["gt_valid"], **self.w
        )
        if self.training and self._trainer is not None:
            bs = len(batch["video_id"])
            for k in ("focal", "l1", "giou"):
                self.log(f"train/{k}", losses[k], batch_size=bs)
        return losses["loss"]

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def raw_detections(
        self,
        batch: dict[str, Any],
        generator: torch.Generator | None = None,
        *,
        steps: int | None = None,
        selective_conditioning: bool | None = None,
        num_proposals: int | None = None,
        eta: float | None = None,
        sampler: SamplerName | None = None,
    ) -> list[tuple[Tensor, Tensor]]:
        """DDIM with proposal renewal (and optionally cross-step selective conditioning), or another core
        sampler; per video ``(segments (P, 2), probs (P, K))`` ensembled over every network call.

        The sampler moves the proposals over the first ``steps - 1`` steps of the uniform grid
        ``t_max -> 0``; the last grid point before 0 is decoded once more for the final detections.
        With ``ddim`` (DiffusionDet), renewal and selective conditioning run in core's
        :func:`~difflab.core.samplers.ddim.sample_ddim` ``step_hook``; other samplers
        (:func:`~difflab.core.samplers.select.run_sampler`, ``sampler`` by name) have no step hook, so
        they run without renewal.
        """
        steps = int(steps or self.sample_steps)
        name = sampler or self.sampler_name
        selective = self.selective_conditioning if selective_conditioning is None else selective_conditioning
        eta = self.eta if eta is None else float(eta)
        n = int(num_proposals or self.eval_proposals)
        feats, mask = batch["feats"], batch["mask"]
        b = feats.shape[0]
        enc = self.network.encode(feats, mask)
        x = torch.randn(b, n, 2, generator=generator, device=feats.device, dtype=feats.dtype)
        grid = torch.linspace(float(self.process.t_max), 0.0, steps + 1, dtype=torch.float64)
        collected: list[tuple[Tensor, Tensor]] = []

        def decode(x_t: Tensor, t: Tensor) -> Tensor:
            out = self.network.decode(enc, self.proposals_from_x(x_t), t)
            collected.append((out["segments"][-1], torch.sigmoid(out["logits"][-1])))
            return (2 * collected[-1][0] - 1) * self.scale

        def renew(step: dict[str, Any]) -> Tensor:
            x_new, (seg, prob) = step["x"], collected[-1]
            score = prob.max(-1).values
            if self.renewal_threshold > 0:
                fresh = torch.randn(x_new.shape, generator=generator, device=x_new.device, dtype=x_new.dtype)
                x_new = torch.where((score < self.renewal_threshold)[..., None], fresh, x_new)
            if selective and len(collected) > 1:
                agree = elementwise_tiou(cw_to_se(seg), cw_to_se(collected[-2][0])) >= self.selective_iou
                settled = agree & (score >= self.selective_score)
                x_new = torch.where(settled[..., None], step["parts"][0] * step["x0"], x_new)
            return x_new

        if steps > 1:
            den = Denoiser(decode, self.process, "x0")
            if name == "ddim":
                x = sample_ddim(den, x, grid[:-1], eta=eta, generator=generator, step_hook=renew).sample
            else:
                options = self.sampler_kwargs(name, {})
                x = run_sampler(name, den, x, steps=steps - 1, grid=grid[:-1], generator=generator, **options).sample
        decode(x, step_time(grid, steps - 1, x).to(x.dtype))
        used = collected if self.ensemble else collected[-1:]
        segs = torch.cat([s for s, _ in used], 1)
        probs = torch.cat([p for _, p in used], 1)
        return [(segs[i], probs[i]) for i in range(b)]


__all__ = ["DiffTAD"]
