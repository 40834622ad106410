"""Side-by-side benchmark of difflab.video on held-out mocap action videos.

Trains DiffTAD and the deterministic baseline (same network size, same number of steps) on the
mocap default data, then prints detection mAP (ActivityNet protocol) and milliseconds per video for
DiffTAD with 1, 2, 4 and 8 DDIM steps, with and without cross-step selective conditioning, against
the deterministic baseline and random proposals; ratios are to the baseline. Optionally writes the
detection timeline figure.

    python benchmarks/video.py --max_steps 300 --figure video/docs/timeline.png
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from difflab.core.tables import markdown_table
from difflab.video.data import MocapTADDataModule
from difflab.video.demo import evaluate, fit, small_models, timeline_videos


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--max_steps", type=int, default=300, help="training steps of each detector")
    p.add_argument("--root", default="outputs/data/video/mocap_bench", help="where the mocap set is generated")
    p.add_argument("--figure", type=Path, default=None, help="write the timeline PNG here")
    p.add_argument("--json", type=Path, default=None, help="write the table as JSON here")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ns = p.parse_args()
    torch.set_num_threads(ns.threads)
    dm = MocapTADDataModule(root=ns.root, n_train=160, n_val=16, n_test=32, batch_size=8, seed=ns.seed)
    dm.setup()
    diff, det = small_models(dm.input_dim, dm.num_classes, dm.classes)
    t_diff = fit(diff, dm, ns.max_steps, ns.seed)
    t_det = fit(det, dm, ns.max_steps, ns.seed)
    rows = []
    preds = {}
    pr, m, ms, post = evaluate(det, dm)
    rows.append(("deterministic baseline", "-", "-", m, ms, post))
    preds["baseline"] = pr
    for steps in (1, 2, 4, 8):
        for sel in (False, True):
            pr, m, ms, post = evaluate(diff, dm, steps=steps, selective_conditioning=sel)
            rows.append(("DiffTAD", steps, "yes" if sel else "no", m, ms, post))
            if steps == 4 and not sel:
                preds["DiffTAD (4 steps)"] = pr
    _, m, ms, post = evaluate("random", dm)
    rows.append(("random proposals", "-", "-", m, ms, post))
    base = rows[0][3]["mAP@0.5"]
    print(
        f"# {time.strftime('%Y-%m-%d')} | {platform.processor() or platform.machine()} | torch threads "
        f"{torch.get_num_threads()} | {ns.max_steps} training steps each (DiffTAD {t_diff:.0f} s, baseline "
        f"{t_det:.0f} s) | {len(dm.test_set)} held-out videos, {dm.num_classes} classes"
    )
    cells = [
        [
            name,
            steps,
            sel,
            *(100 * m[k] for k in ("mAP@0.5", "mAP@0.7", "mAP@0.3:0.7", "mAP@0.5:0.95")),
            ms,
            post,
            f"{m['mAP@0.5'] / max(base, 1e-9):.2f}",
            f"{ms / max(rows[0][4], 1e-9):.2f}",
        ]
        for name, steps, sel, m, ms, post in rows
    ]
    head = ["detector", "steps", "selective cond.", "mAP@0.5", "mAP@0.7", "mAP@0.3:0.7", "mAP@0.5:0.95"]
    head += ["detector ms/video", "+ soft-NMS ms/video", "mAP@0.5 / baseline", "detector time / baseline"]
    print(markdown_table(cells, head, ".1f", align="l"))
    if ns.json:
        ns.json.write_text(
            json.dumps(
                [
                    {"detector": r[0], "steps": r[1], "selective": r[2], **r[3], "ms_per_video": r[4], "post_ms": r[5]}
                    for r in rows
                ],
                indent=1,
            )
        )
    if ns.figure:
        from difflab.video.figures import save_timelines

        fig = save_timelines(
            ns.figure,
            timeline_videos(dm, preds),
            dm.classes,
            title="held-out mocap videos: ground truth vs detections (score >= 0.3)",
        )
        print(f"artifact: {fig} | detection timelines: ground truth vs DiffTAD (4 steps) and the baseline")


if __name__ == "__main__":
    main()
