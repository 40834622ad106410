"""Side-by-side benchmark of difflab.video on held-out mocap action videos.

Trains DiffTAD and the deterministic baseline (same network size, same number of steps) on the
mocap default data, then prints detection mAP (ActivityNet protocol) and milliseconds per video for
DiffTAD with 1, 2, 4 and 8 DDIM steps, with and without cross-step selective conditioning, against
the deterministic baseline and random proposals; ratios are to the baseline. Optionally writes the
detection timeline figure.

    python benchmarks/video.py --max_steps 300 --figure video/docs/timeline.png

``--pretrained`` instead evaluates the shipped defaults (``difflab/video/pretrained/``, written by
``python scripts/pretrain.py video``) on the 32 held-out test videos of the same mocap data: DiffTAD with
1, 2, 4 and 8 DDIM steps (selective conditioning) against the shipped DETR baseline, with ratios to the
baseline. ``--long MINUTES`` runs ``difflab-video detect`` (shipped default, no ``--ckpt``) on a feature
file of that many minutes (the held-out videos' real features tiled) and on one of a minute, each in a
fresh process, and prints wall time and peak resident memory of both.

    python benchmarks/video.py --pretrained --long 60
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from difflab.core.progress import artifact
from difflab.core.tables import markdown_table
from difflab.video.data import MocapTADDataModule
from difflab.video.demo import evaluate, fit, small_models, timeline_videos


def pretrained_table(root: str) -> None:
    """The shipped DiffTAD against the shipped DETR baseline on the held-out test videos."""
    from difflab.core.lightning.pretrained import pretrained_info, shipped_path
    from difflab.video.inference import load_detector
    from difflab.video.pretrain import DATA, KEYS, evaluate_detectors

    dm = MocapTADDataModule(root=root, batch_size=8, seed=0, **DATA)
    dm.setup()
    diff_path, det_path = shipped_path("video", "difftad_mocap"), shipped_path("video", "detr_mocap")
    rows = evaluate_detectors(load_detector(diff_path)[0], load_detector(det_path)[0], dm)
    info = pretrained_info(diff_path)
    print(
        f"# {time.strftime('%Y-%m-%d')} | {platform.processor() or platform.machine()} | torch threads "
        f"{torch.get_num_threads()} | shipped defaults, {info.get('steps')} training steps each | "
        f"{len(dm.test_set)} held-out videos, {dm.num_classes} classes | default sampling {info.get('sampling')}"
    )
    base = rows["DETR baseline"]
    cells = [
        [n, *(100 * r[k] for k in KEYS), r["detector_ms"], r["mAP@0.5:0.95"] / base["mAP@0.5:0.95"]]
        for n, r in rows.items()
    ]
    head = ["detector", *KEYS, "detector ms/video", "mAP@0.5:0.95 / baseline"]
    print(markdown_table(cells, head, ".2f", align="l"))


def long_video(minutes: float, root: str) -> None:
    """Wall time and peak memory of ``detect`` (shipped default) on ``minutes`` of tiled real features."""
    import subprocess
    import sys
    import tempfile

    import numpy as np

    from difflab.video.pretrain import DATA

    dm = MocapTADDataModule(root=root, batch_size=8, seed=0, **DATA)
    dm.setup()
    base = np.concatenate([dm.test_set.features(r.video_id) for r in dm.test_set.records]).astype(np.float32)
    code = (
        "import resource, sys, time, torch; torch.set_num_threads(1); from difflab.video.cli import main; "
        "t = time.perf_counter(); rc = main(sys.argv[1:]); "
        "print('RESULT', rc, time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for length_min in (1.0, minutes):
            steps = int(length_min * 60 * 30 / 4)  # 30 fps, feature stride 4
            feats = np.resize(base, (steps, base.shape[1]))
            path = Path(tmp) / f"long_{length_min:g}min.npy"
            np.save(path, feats)
            out = Path(tmp) / f"det_{length_min:g}.json"
            args = [str(path), "--out", str(out), "--overwrite"]
            res = subprocess.run([sys.executable, "-c", code, "detect", *args], capture_output=True, text=True)
            line = [x for x in res.stdout.splitlines() if x.startswith("RESULT")]
            if res.returncode != 0 or not line:
                raise SystemExit(f"detect failed: {res.stderr[-2000:]}")
            _, rc, sec, rss_kb = line[0].split()
            n = len(json.loads(out.read_text())["results"][path.stem])
            rows.append(
                [f"{length_min:g} min", steps, float(sec), float(rss_kb) / 1024, n, path.stat().st_size / 2**20]
            )
    print()
    head = ["features", "feature steps", "detect wall s (incl. loading)", "peak RSS MiB", "detections", "file MiB"]
    print(markdown_table(rows, head, ".1f", align="l"))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--max_steps", type=int, default=300, help="training steps of each detector")
    p.add_argument("--root", default="outputs/data/video/mocap_bench", help="where the mocap set is generated")
    p.add_argument("--figure", type=Path, default=None, help="write the timeline PNG here")
    p.add_argument("--json", type=Path, default=None, help="write the table as JSON here")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--pretrained", action="store_true", help="evaluate the shipped defaults instead of training")
    p.add_argument("--long", type=float, default=None, metavar="MINUTES", help="time detect on long features")
    return p.parse_args()


def detector_rows(diff, det, dm) -> tuple[list[tuple], dict]:
    """``(name, steps, selective, metrics, ms/video, soft-NMS ms)`` per detector (the baseline first,
    random proposals last) and the predictions the timeline figure draws."""
    rows, preds = [], {}
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
    return rows, preds


def print_table(rows: list[tuple]) -> None:
    """The detectors' table with mAP and detector time relative to the baseline (the first row)."""
    base, base_ms = rows[0][3]["mAP@0.5"], rows[0][4]
    cells = [
        [
            name,
            steps,
            sel,
            *(100 * m[k] for k in ("mAP@0.5", "mAP@0.7", "mAP@0.3:0.7", "mAP@0.5:0.95")),
            ms,
            post,
            f"{m['mAP@0.5'] / max(base, 1e-9):.2f}",
            f"{ms / max(base_ms, 1e-9):.2f}",
        ]
        for name, steps, sel, m, ms, post in rows
    ]
    head = ["detector", "steps", "selective cond.", "mAP@0.5", "mAP@0.7", "mAP@0.3:0.7", "mAP@0.5:0.95"]
    head += ["detector ms/video", "+ soft-NMS ms/video", "mAP@0.5 / baseline", "detector time / baseline"]
    print(markdown_table(cells, head, ".1f", align="l"))


def main() -> None:
    ns = parse_args()
    torch.set_num_threads(ns.threads)
    if ns.pretrained or ns.long:
        if ns.pretrained:
            pretrained_table(ns.root)
        if ns.long:
            long_video(ns.long, ns.root)
        return
    dm = MocapTADDataModule(root=ns.root, n_train=160, n_val=16, n_test=32, batch_size=8, seed=ns.seed)
    dm.setup()
    diff, det = small_models(dm.input_dim, dm.num_classes, dm.classes)
    t_diff = fit(diff, dm, ns.max_steps, ns.seed)
    t_det = fit(det, dm, ns.max_steps, ns.seed)
    rows, preds = detector_rows(diff, det, dm)
    print(
        f"# {time.strftime('%Y-%m-%d')} | {platform.processor() or platform.machine()} | torch threads "
        f"{torch.get_num_threads()} | {ns.max_steps} training steps each (DiffTAD {t_diff:.0f} s, baseline "
        f"{t_det:.0f} s) | {len(dm.test_set)} held-out videos, {dm.num_classes} classes"
    )
    print_table(rows)
    if ns.json:
        keys = ("detector", "steps", "selective")
        records = [{**dict(zip(keys, r[:3])), **r[3], "ms_per_video": r[4], "post_ms": r[5]} for r in rows]
        ns.json.write_text(json.dumps(records, indent=1))
    if ns.figure:
        from difflab.video.figures import save_timelines

        fig = save_timelines(
            ns.figure,
            timeline_videos(dm, preds),
            dm.classes,
            title="held-out mocap videos: ground truth vs detections (score >= 0.3)",
        )
        artifact(fig, "detection timelines: ground truth vs DiffTAD (4 steps) and the baseline")


if __name__ == "__main__":
    main()
