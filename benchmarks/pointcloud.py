"""difflab-pointcloud benchmark: generation and filtering variants side by side in one process.

Generation (pybullet_data objects, 256 points, 16 samples vs 16 held-out shapes): one-step PSF (flow ->
reflow -> distill), the flow with 1 and 50 Euler steps, DDPM with 100 ancestral steps. Quality: MMD
(squared Chamfer; Euclidean EMD, exact on all points), COV, 1-NNA; time per batch of 16 and its ratio to one-step PSF.

Filtering (held-out CGAL meshes, 4096 points, noise 1/2/3 % of the bounding-sphere radius): IterativePFN
(4 modules), the score-based baseline (30 ascent steps), one iteration module applied 4 times; Chamfer and
point-to-mesh x 1e4 and time per cloud, with ratios to the noisy input / to IterativePFN.

    python benchmarks/pointcloud.py [--scale 1.0] [--seed 0]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch


def main() -> None:
    from difflab.pointcloud.demo import (
        _table,
        filtering_rows,
        generation_rows,
        generation_variants,
        scan_rows,
        train_filters,
        train_generators,
    )

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", type=float, default=1.0, help="multiply the training budgets")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--renders", type=Path, default=None, help="folder for the renders of the compared variants")
    ns = p.parse_args()
    torch.set_num_threads(1)
    print(
        f"# difflab-pointcloud benchmark {time.strftime('%Y-%m-%d')}, {platform.machine()} "
        f"{platform.processor() or ''}, torch {torch.__version__}, 1 intra-op thread, scale {ns.scale}"
    )
    g = train_generators(ns.scale, ns.seed)
    print("training seconds:", {k: round(v, 1) for k, v in g["times"].items()})
    variants = generation_variants(g, seed=ns.seed)
    rows = generation_rows(g, variants)
    base = rows[0]["seconds"]
    for r in rows:
        r["time vs PSF"] = r["seconds"] / base
    print("\n## Generation\n")
    print(
        _table(
            rows,
            [
                "method",
                "nfe",
                "seconds",
                "time vs PSF",
                "mmd_cd",
                "cov_cd",
                "1nna_cd",
                "mmd_emd",
                "cov_emd",
                "1nna_emd",
                "nn_train_cd",
            ],
        )
    )
    f = train_filters(ns.scale, ns.seed, single_step=True)
    print("\ntraining seconds:", {k: round(v, 1) for k, v in f["times"].items()})
    rows, keep = filtering_rows(f)
    for r in rows:
        ref = next(x for x in rows if x["noise"] == r["noise"] and x["method"] == "noisy input")
        pfn = next(x for x in rows if x["noise"] == r["noise"] and x["method"].startswith("IterativePFN"))
        r["cd / noisy"] = r["cd_x1e4"] / ref["cd_x1e4"]
        r["p2m / noisy"] = r["p2m_x1e4"] / ref["p2m_x1e4"]
        r["time vs PFN"] = r["seconds"] / pfn["seconds"] if r["method"] != "noisy input" else float("nan")
    print("\n## Filtering\n")
    print(
        _table(rows, ["method", "noise", "cd_x1e4", "cd / noisy", "p2m_x1e4", "p2m / noisy", "seconds", "time vs PFN"])
    )
    scans, skeep = scan_rows(f)
    print("\n## Real scans + 2 % noise (Chamfer x1e4 to the scan)\n")
    print(_table(scans, list(scans[0])))
    if ns.renders is not None:
        from difflab.pointcloud.figures import render_grid

        clouds, titles = list(g["data"].val_set.clouds[:4].numpy()), ["held-out shapes (data)"] + [""] * 3
        for name, (s, _, _) in variants.items():
            clouds += list(s[:4].numpy())
            titles += [name] + [""] * 3
        print(render_grid(clouds, ns.renders / "generation.png", titles=titles, ncols=4, up="z", cell=2.2))
        names = list(keep)
        print(
            render_grid(
                [keep[names[0]][0]] + [keep[n][1] for n in names],
                ns.renders / "filtering_bunny.png",
                titles=["clean (ground truth)", *names],
                ncols=len(names) + 1,
                cell=2.6,
            )
        )
        names = ["scan", "noisy input", *f["models"]]
        print(
            render_grid(
                [skeep[n] for n in names], ns.renders / "filtering_kitten.png", titles=names, ncols=len(names), cell=2.6
            )
        )


if __name__ == "__main__":
    main()
