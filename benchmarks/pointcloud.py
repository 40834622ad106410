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

from difflab.core.tables import markdown_table

GENERATION_COLUMNS = [
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
]
FILTERING_COLUMNS = ["method", "noise", "cd_x1e4", "cd / noisy", "p2m_x1e4", "p2m / noisy", "seconds", "time vs PFN"]


def _table(rows: list[dict], cols: list[str]) -> str:
    return markdown_table([[r.get(c, "") for c in cols] for r in rows], cols, align="l")


def generation(scale: float, seed: int) -> tuple[dict, dict]:
    """Train the generators, print the generation table with times relative to one-step PSF."""
    from difflab.pointcloud.demo import generation_rows, generation_variants, train_generators

    g = train_generators(scale, seed)
    print("training seconds:", {k: round(v, 1) for k, v in g["times"].items()})
    variants = generation_variants(g, seed=seed)
    rows = generation_rows(g, variants)
    base = rows[0]["seconds"]
    for r in rows:
        r["time vs PSF"] = r["seconds"] / base
    print("\n## Generation\n")
    print(_table(rows, GENERATION_COLUMNS))
    return g, variants


def filtering(scale: float, seed: int) -> tuple[dict, dict, dict]:
    """Train the filters, print the filtering table (ratios to the noisy input and IterativePFN) and
    the real-scan table."""
    from difflab.pointcloud.demo import filtering_rows, scan_rows, train_filters

    f = train_filters(scale, seed, single_step=True)
    print("\ntraining seconds:", {k: round(v, 1) for k, v in f["times"].items()})
    rows, keep = filtering_rows(f)
    for r in rows:
        ref = next(x for x in rows if x["noise"] == r["noise"] and x["method"] == "noisy input")
        pfn = next(x for x in rows if x["noise"] == r["noise"] and x["method"].startswith("IterativePFN"))
        r["cd / noisy"] = r["cd_x1e4"] / ref["cd_x1e4"]
        r["p2m / noisy"] = r["p2m_x1e4"] / ref["p2m_x1e4"]
        r["time vs PFN"] = r["seconds"] / pfn["seconds"] if r["method"] != "noisy input" else float("nan")
    print("\n## Filtering\n")
    print(_table(rows, FILTERING_COLUMNS))
    scans, skeep = scan_rows(f)
    print("\n## Real scans + 2 % noise (Chamfer x1e4 to the scan)\n")
    print(_table(scans, list(scans[0])))
    return f, keep, skeep


def renders(folder: Path, g: dict, variants: dict, f: dict, keep: dict, skeep: dict) -> None:
    """Render the compared generators' samples, the filtered bunny and the filtered kitten scan."""
    from difflab.pointcloud.figures import render_grid

    clouds, titles = list(g["data"].val_set.clouds[:4].numpy()), ["held-out shapes (data)"] + [""] * 3
    for name, (s, _, _) in variants.items():
        clouds += list(s[:4].numpy())
        titles += [name] + [""] * 3
    print(render_grid(clouds, folder / "generation.png", titles=titles, ncols=4, up="z", cell=2.2))
    names = list(keep)
    print(
        render_grid(
            [keep[names[0]][0]] + [keep[n][1] for n in names],
            folder / "filtering_bunny.png",
            titles=["clean (ground truth)", *names],
            ncols=len(names) + 1,
            cell=2.6,
        )
    )
    names = ["scan", "noisy input", *f["models"]]
    print(
        render_grid(
            [skeep[n] for n in names], folder / "filtering_kitten.png", titles=names, ncols=len(names), cell=2.6
        )
    )


def main() -> None:
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
    g, variants = generation(ns.scale, ns.seed)
    f, keep, skeep = filtering(ns.scale, ns.seed)
    if ns.renders is not None:
        renders(ns.renders, g, variants, f, keep, skeep)


if __name__ == "__main__":
    main()
