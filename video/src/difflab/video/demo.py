"""``difflab-video demo``: train DiffTAD and the deterministic baseline briefly on the mocap default data,
detect on held-out videos, print mAP against a random-proposal baseline, draw detection timelines."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from difflab.core.progress import artifact
from difflab.core.tables import markdown_table
from difflab.video.data.datamodule import MocapTADDataModule
from difflab.video.metrics import results_json
from difflab.video.models import DeterministicTAD, DiffTAD
from difflab.video.models.common import evaluate_map, postprocess, random_proposal_detections
from difflab.video.networks.detr_tad import DetrTADNet


def small_models(
    input_dim: int, num_classes: int, classes: list[str], d_model: int = 64
) -> tuple[DiffTAD, DeterministicTAD]:
    """The CPU-sized DiffTAD and baseline used by the demo, the learning tests and the benchmark."""
    from functools import partial

    opt = partial(torch.optim.AdamW, lr=5e-4, weight_decay=1e-4)
    diff = DiffTAD(
        DetrTADNet(input_dim, num_classes, d_model=d_model),
        num_proposals=30,
        sample_steps=4,
        classes=classes,
        optimizer=opt,
    )
    det = DeterministicTAD(
        DetrTADNet(input_dim, num_classes, d_model=d_model, time_conditioned=False, num_queries=30),
        classes=classes,
        optimizer=opt,
    )
    return diff, det


def fit(model, dm, max_steps: int, seed: int = 0) -> float:
    from difflab.core.lightning import train_briefly

    return train_briefly(model, dm, max_steps=max_steps, seed=seed, gradient_clip_val=1.0)


@torch.no_grad()
def evaluate(
    model, dm, *, split: str = "test", seed: int = 0, **options: Any
) -> tuple[dict, dict[str, float], float, float]:
    """``(predictions, mAP dict, detector ms per video, post-processing ms per video)`` of ``model`` on a
    split (``"random"`` for the random-proposal baseline). Detector time covers the network passes
    (encoder and every sampling step); post-processing is top-k selection, soft-NMS and conversion."""
    loader = dm.test_dataloader() if split == "test" else dm.val_dataloader()
    gen = torch.Generator().manual_seed(seed)
    gt, preds = {}, {}
    t_net, t_post, n = 0.0, 0.0, 0
    for batch in loader:
        gt.update({v: m["gt"] for v, m in zip(batch["video_id"], batch["meta"])})
        start = time.perf_counter()
        if model == "random":
            raw = random_proposal_detections(batch, dm.num_classes, 30, gen)
            names, kw = dm.classes, {}
        else:
            model.eval()
            raw = model.raw_detections(batch, gen, **options)
            names = model.class_names(raw[0][1].shape[1])
            kw = dict(nms=model.nms, nms_iou=model.nms_iou, max_detections=model.max_detections)
        mid = time.perf_counter()
        for v, m, (s, p) in zip(batch["video_id"], batch["meta"], raw):
            preds[v] = postprocess(s, p, m, names, **kw)
        t_net += mid - start
        t_post += time.perf_counter() - mid
        n += len(batch["video_id"])
    return preds, evaluate_map(gt, preds), 1000 * t_net / max(n, 1), 1000 * t_post / max(n, 1)


def timeline_videos(dm, rows: dict[str, dict], count: int = 3) -> list[dict[str, Any]]:
    dm.setup()
    out = []
    for r in dm.test_set.records[:count]:
        out.append(
            {
                "video_id": r.video_id,
                "duration": r.duration,
                "gt": [{"label": lab, "segment": list(seg)} for seg, lab in zip(r.segments.tolist(), r.labels)],
                "rows": {name: preds[r.video_id] for name, preds in rows.items()},
            }
        )
    return out


def run_demo(out: Path, *, max_steps: int = 150, steps: int = 4, seed: int = 0) -> dict[str, dict[str, float]]:
    from difflab.video.figures import save_timelines

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dm = MocapTADDataModule(root=str(out / "data"), n_train=160, n_val=16, n_test=32, batch_size=8, seed=seed)
    dm.setup()
    print(
        f"data: {len(dm.train_set)} training and {len(dm.test_set)} held-out mocap videos, "
        f"{dm.num_classes} action classes, features {dm.input_dim}-d"
    )
    torch.manual_seed(seed)  # the networks' initialisation (train_briefly seeds only the training)
    diff, det = small_models(dm.input_dim, dm.num_classes, dm.classes)
    t_diff = fit(diff, dm, max_steps, seed)
    t_det = fit(det, dm, max_steps, seed)
    print(f"trained DiffTAD {max_steps} steps in {t_diff:.0f} s, baseline {max_steps} steps in {t_det:.0f} s")
    results = {}
    p_diff, results[f"DiffTAD ({steps} steps)"], *_ = evaluate(diff, dm, steps=steps, selective_conditioning=False)
    _, results[f"DiffTAD ({steps} steps, selective cond.)"], *_ = evaluate(
        diff, dm, steps=steps, selective_conditioning=True
    )
    p_det, results["deterministic baseline"], *_ = evaluate(det, dm)
    _, results["random proposals"], *_ = evaluate("random", dm)
    keys = ["mAP@0.5", "mAP@0.7", "mAP@0.3:0.7", "mAP@0.5:0.95"]
    print()
    rows = [[name, *(100 * r[k] for k in keys)] for name, r in results.items()]
    print(markdown_table(rows, ["detector", *keys], ".1f"))
    print()
    res_path = out / "detections_difftad.json"
    res_path.write_text(json.dumps(results_json(p_diff), indent=1))
    artifact(res_path, "DiffTAD detections on the held-out videos (ActivityNet results JSON)")
    fig = save_timelines(
        out / "timeline.png",
        timeline_videos(dm, {"DiffTAD": p_diff, "baseline": p_det}),
        dm.classes,
        title="held-out mocap videos: ground truth vs detections (score >= 0.3)",
    )
    artifact(fig, "timelines of 3 held-out videos: ground truth vs DiffTAD and baseline detections per class")
    table = out / "metrics.json"
    table.write_text(json.dumps(results, indent=1))
    artifact(table, "detection mAP of DiffTAD, the baseline and random proposals")
    return results


def main(argv: list[str] | None = None) -> int:
    """``difflab-video demo``: train briefly on the mocap default data, detect on held-out videos, print
    mAP, draw timelines."""
    from difflab.core.verbs import VerbParser, count, seed_option

    p = VerbParser(prog="difflab-video demo", description=main.__doc__)
    p.add_argument("--out", type=Path, default=Path("outputs/demo/video"), help="output folder")
    p.add_argument("--max_steps", type=count(1), default=150, help="training steps per detector")
    p.add_argument("--steps", type=count(1), default=4, help="DiffTAD sampling steps")
    seed_option(p, "the data, the training and the sampling")
    p.add_argument("--threads", type=count(1), default=1, help="torch CPU threads (1 is fastest on a busy machine)")
    ns = p.parse_args(argv)
    torch.set_num_threads(ns.threads)
    run_demo(ns.out, max_steps=ns.max_steps, steps=ns.steps, seed=ns.seed)
    return 0


__all__ = ["evaluate", "fit", "run_demo", "small_models", "timeline_videos", "main"]
