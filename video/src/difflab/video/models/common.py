r"""What DiffTAD and its deterministic baseline share: post-processing, evaluation and prediction.

A method implements :meth:`TADMixin.training_loss` (batch -> scalar) and
:meth:`TADMixin.raw_detections` (batch -> per video ``(segments (P, 2) (centre, width) in [0, 1],
class probabilities (P, K))``). The mixin turns raw detections into ActivityNet-style detections in
seconds (top candidates over (query, class) pairs, per-class NMS or soft-NMS), evaluates detection
mAP over the validation / test set (ActivityNet protocol, :mod:`difflab.video.metrics`), and returns
detections from ``predict``.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor

from difflab.core.errors import UserError
from difflab.core.lightning import NoiseStream, eval_mode
from difflab.core.progress import artifact
from difflab.video.data.annotations import FeatureSpec
from difflab.video.metrics import ANET_TIOUS, THUMOS_TIOUS, detection_map
from difflab.video.segments import batched_nms_1d, cw_to_se


def to_seconds(segments_cw: Tensor, meta: dict[str, Any]) -> Tensor:
    """Normalised (centre, width) ``(P, 2)`` -> (start, end) seconds, clipped to the video."""
    spec = FeatureSpec(
        ".", feat_stride=meta["feat_stride"], num_frames=meta["num_frames"], resize_to=meta.get("resize_to")
    )
    se = cw_to_se(segments_cw.double().cpu()) * meta["length"] + meta.get("offset", 0)
    sec = torch.as_tensor(spec.grid_to_sec(se.numpy(), meta["fps"], meta["duration"], meta["length"]))
    return sec.clamp(0, meta["duration"])


def postprocess(
    segments_cw: Tensor,
    probs: Tensor,
    meta: dict[str, Any],
    classes: list[str],
    *,
    nms: str = "nms",
    nms_iou: float = 0.5,
    sigma: float = 0.5,
    max_candidates: int = 200,
    max_detections: int = 100,
    min_score: float = 1e-3,
) -> list[dict[str, Any]]:
    """ActivityNet detections ``[{"label", "score", "segment": [s, e]}]`` of one video, best first."""
    p, k = probs.shape
    flat = probs.reshape(-1)
    top = flat.topk(min(max_candidates, flat.numel())).indices
    top = top[flat[top] > min_score]
    q, c = top // k, top % k
    sec = to_seconds(segments_cw[q], meta)
    ok = (sec[:, 1] - sec[:, 0]) > 1e-3
    sec, scores, labels = sec[ok].float(), flat[top][ok].float().cpu(), c[ok].cpu()
    if nms != "none" and len(scores):
        sec, scores, labels = batched_nms_1d(
            sec,
            scores,
            labels,
            kind="soft" if nms == "soft" else "nms",
            iou_threshold=nms_iou,
            sigma=sigma,
            max_keep=max_detections,
        )
    order = scores.argsort(descending=True, stable=True)[:max_detections]
    return [
        {
            "label": classes[int(labels[i])] if classes else str(int(labels[i])),
            "score": round(float(scores[i]), 6),
            "segment": [round(float(sec[i, 0]), 4), round(float(sec[i, 1]), 4)],
        }
        for i in order
    ]


class TADMixin:
    """Evaluation and prediction for temporal action detectors (see module docstring).

    Expects attributes ``classes`` (list[str] or None), ``nms``, ``nms_iou``, ``max_detections``.
    """

    classes: list[str] | None
    nms: str
    nms_iou: float
    max_detections: int

    # ---------------------------------------------------------------- to implement
    def training_loss(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError

    def raw_detections(
        self, batch: dict[str, Any], generator: torch.Generator | None = None, **options: Any
    ) -> list[tuple[Tensor, Tensor]]:
        raise NotImplementedError

    # ---------------------------------------------------------------- detection
    def class_names(self, k: int) -> list[str]:
        names = list(self.classes or [])
        return names if len(names) == k else [str(i) for i in range(k)]

    @torch.no_grad()
    def detect(
        self, batch: dict[str, Any], generator: torch.Generator | None = None, **options: Any
    ) -> dict[str, list[dict[str, Any]]]:
        """``{video_id: detections}`` for a collated batch (``options`` go to :meth:`raw_detections`)."""
        with eval_mode(self):
            raw = self.raw_detections(batch, generator, **options)
        out = {}
        for vid, meta, (seg, prob) in zip(batch["video_id"], batch["meta"], raw):
            out[vid] = postprocess(
                seg,
                prob,
                meta,
                self.class_names(prob.shape[1]),
                nms=self.nms,
                nms_iou=self.nms_iou,
                max_detections=self.max_detections,
            )
        return out

    # ---------------------------------------------------------------- Lightning hooks
    def _eval_step(self, batch: dict[str, Any], batch_idx: int, stage: str) -> Tensor:
        gen = self.noise_generator(NoiseStream.VAL if stage == "val" else NoiseStream.TEST, batch_idx)
        loss = self.training_loss(batch, gen)
        self.log(f"{stage}/loss", loss, prog_bar=stage == "val", batch_size=len(batch["video_id"]))
        preds = self.detect(batch, generator=gen)
        store = self.__dict__.setdefault("_eval_store", {"gt": {}, "pred": {}})
        for vid, meta in zip(batch["video_id"], batch["meta"]):
            store["gt"][vid] = meta["gt"]
            store["pred"][vid] = preds[vid]
        return loss

    def _eval_end(self, stage: str) -> None:
        store = self.__dict__.pop("_eval_store", None)
        if not store or not any(store["gt"].values()):
            return
        res = detection_map(store["gt"], store["pred"], THUMOS_TIOUS)
        self.log(f"{stage}/mAP@0.5", float(res["mAP"][2]), prog_bar=True)
        self.log(f"{stage}/avg_mAP", res["average_mAP"])
        if stage == "test":
            anet = detection_map(store["gt"], store["pred"], ANET_TIOUS)
            self.log(f"{stage}/mAP@0.5:0.95", anet["average_mAP"])
            self._write_test_detections(store["pred"])

    def _write_test_detections(self, predictions: dict[str, list[dict[str, Any]]]) -> None:
        """The test split's detections as an ActivityNet results JSON next to the run's logs."""
        import json

        from difflab.video.metrics import results_json

        if getattr(self, "_trainer", None) is None or self.trainer.global_rank != 0 or not self.trainer.loggers:
            return
        path = self.artifact_dir() / "test_detections.json"  # type: ignore[attr-defined]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results_json(predictions), indent=1))
        artifact(path, f"ActivityNet results JSON of the test split ({len(predictions)} videos)")

    # ---------------------------------------------------------------- what the data decides
    def setup(self, stage: str) -> None:
        """Take the class list from the data module (or check it against the model's) and refuse to
        evaluate a split without ground truth, before any step runs."""
        super().setup(stage)  # type: ignore[misc]
        dm = getattr(getattr(self, "_trainer", None), "datamodule", None)
        if dm is None or not getattr(dm, "classes", None):
            return
        if self.classes is None:
            self.classes = list(dm.classes)
        elif list(self.classes) != list(dm.classes):
            raise UserError(
                f"--model.init_args.classes {list(self.classes)}: the data has the classes {list(dm.classes)}; "
                "leave the option out (the data decides)"
            )
        check_network(self.network, len(self.classes), getattr(dm, "input_dim", None))  # type: ignore[attr-defined]
        split = {"test": "test", "validate": "val", "fit": "val"}.get(stage)
        if split is not None and hasattr(dm, "ground_truth") and not any(dm.ground_truth(split).values()):
            subsets = getattr(dm, f"{split}_subsets", None)
            message = (
                f"{getattr(dm, 'annotation_file', 'data')}: the {split} subsets {subsets} hold no ground-truth "
                f"segments, so mAP cannot be measured; choose annotated subsets with "
                f"--data.init_args.{split}_subsets, or run 'difflab-video detect' on unannotated videos"
            )
            if stage != "fit":
                raise UserError(message)
            warnings.warn(message + " (validation mAP is not logged)", stacklevel=2)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        return self._eval_step(batch, batch_idx, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        return self._eval_step(batch, batch_idx, "test")

    def on_validation_epoch_end(self) -> None:
        self._eval_end("val")

    def on_test_epoch_end(self) -> None:
        self._eval_end("test")

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, list[dict[str, Any]]]:
        gen = torch.Generator(device=self.device).manual_seed(2000 + batch_idx)
        return self.detect(batch, generator=gen)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)  # type: ignore[misc]
        dm = getattr(getattr(self, "_trainer", None), "datamodule", None)
        if dm is not None and getattr(dm, "classes", None) and self.classes is None:
            self.classes = list(dm.classes)
        spec = getattr(dm, "spec", None)
        checkpoint["difflab_video"] = {
            "classes": self.classes,
            "input_dim": int(self.network.input_dim),  # type: ignore[attr-defined]
            "feature_spec": None
            if spec is None
            else {
                "feat_stride": spec.feat_stride,
                "num_frames": spec.num_frames,
                "resize_to": spec.resize_to,
                "transpose": spec.transpose,
            },
            "default_fps": getattr(dm, "default_fps", None),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)  # type: ignore[misc]
        info = checkpoint.get("difflab_video") or {}
        saved = info.get("classes")
        if saved and self.classes is None:
            self.classes = list(saved)
        elif saved and list(saved) != list(self.classes or []):
            raise UserError(
                f"checkpoint: trained on the classes {list(saved)}, the data has {list(self.classes or [])}; "
                "evaluate it on data with its classes (--data.init_args.classes)"
            )
        dim = info.get("input_dim")
        if dim is not None and int(dim) != int(self.network.input_dim):  # type: ignore[attr-defined]
            raise UserError(
                f"checkpoint: trained on {dim}-d features, the data has {self.network.input_dim}-d "  # type: ignore[attr-defined]
                "features (--data: another feature set)"
            )


def check_network(network: Any, num_classes: int, input_dim: int | None) -> None:
    """A :class:`UserError` naming both values when the network was built for other data."""
    if getattr(network, "num_classes", num_classes) != num_classes:
        raise UserError(
            f"--model.init_args.network.init_args.num_classes {network.num_classes}: the data has {num_classes} "
            "classes; leave the option out (the data decides)"
        )
    if input_dim is not None and getattr(network, "input_dim", input_dim) != input_dim:
        raise UserError(
            f"--model.init_args.network.init_args.input_dim {network.input_dim}: the data's features are "
            f"{input_dim}-d; leave the option out (the data decides)"
        )


def random_proposal_detections(
    batch: dict[str, Any], num_classes: int, num: int, generator: torch.Generator
) -> list[tuple[Tensor, Tensor]]:
    """The trivial baseline: ``num`` uniformly random proposals with random class scores per video."""
    out = []
    for _ in batch["video_id"]:
        s = torch.rand(num, 2, generator=generator).sort(-1).values
        cw = torch.stack([(s[:, 0] + s[:, 1]) / 2, s[:, 1] - s[:, 0]], -1)
        out.append((cw, torch.rand(num, num_classes, generator=generator)))
    return out


def evaluate_map(ground_truth: dict, predictions: dict) -> dict[str, float]:
    """mAP@0.5, THUMOS average (0.3:0.7) and ActivityNet average (0.5:0.95)."""
    from difflab.video.metrics import ANET_TIOUS

    th = detection_map(ground_truth, predictions, THUMOS_TIOUS)
    an = detection_map(ground_truth, predictions, ANET_TIOUS)
    return {
        "mAP@0.5": float(th["mAP"][2]),
        "mAP@0.3:0.7": th["average_mAP"],
        "mAP@0.5:0.95": an["average_mAP"],
        "mAP@0.7": float(th["mAP"][4]),
    }


__all__ = ["TADMixin", "evaluate_map", "postprocess", "random_proposal_detections", "to_seconds"]
