"""difflab-pointcloud benchmark: generation and filtering variants side by side in one process.

Generation (pybullet_data objects, 256 points, 16 samples vs 16 held-out shapes): one-step PSF (flow ->
reflow -> distill), the flow with 1 and 50 Euler steps, DDPM with 100 ancestral steps. Quality: MMD
(squared Chamfer; Euclidean EMD, exact on all points), COV, 1-NNA; time per batch of 16 and its ratio to one-step PSF.

Filtering (held-out CGAL meshes, 4096 points, noise 1/2/3 % of the bounding-sphere radius): IterativePFN
(4 modules), the score-based baseline (30 ascent steps), one iteration module applied 4 times; Chamfer and
point-to-mesh x 1e4 and time per cloud, with ratios to the noisy input / to IterativePFN.

Field size (``--field-size``): ``denoise``'s whole-cloud pipeline (farthest-point seeds, KD-tree
patches, batches of patches through the filter, stitching) on the bunny sampled at 100 k, 300 k and 1 M
points with 1 % noise, each size in a fresh process: wall time, the seconds of farthest-point
sampling, and peak memory (the process's peak resident set above its resident set before the cloud
was made, and tracemalloc's peak of Python / NumPy allocations).

Pretrained default (``--pretrained``): the shipped filter against the noisy input, the 16-NN mean and
the best kNN-mean and bilateral variants on the held-out CGAL meshes at 1, 2 and 3 % noise.

    python benchmarks/pointcloud.py [--scale 1.0] [--seed 0]
    python benchmarks/pointcloud.py --field-size [--sizes 100000 300000 1000000]
    python benchmarks/pointcloud.py --pretrained
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from difflab.core.tables import markdown_table
from difflab.pointcloud.demo import GENERATION_COLUMNS as DEMO_COLUMNS

GENERATION_COLUMNS = [*DEMO_COLUMNS[:3], "time vs PSF", *DEMO_COLUMNS[3:]]
"""The demo's generation table with the time relative to PSF's one step."""
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


def field_size_one(n: int, seed: int) -> dict:
    """Filter the bunny sampled at ``n`` points (+1 % noise) with the shipped default (or an untrained
    IterativePFN of the same size when none is shipped); times and peak memory."""
    import resource
    import tracemalloc

    from difflab.core.lightning.pretrained import shipped_path
    from difflab.pointcloud import patches
    from difflab.pointcloud.data import noisy_copy
    from difflab.pointcloud.data.filtering import load_meshes
    from difflab.pointcloud.inference import DEFAULT_FILTER, load_model
    from difflab.pointcloud.io import sample_mesh
    from difflab.pointcloud.models import IterativePFN

    path = shipped_path("pointcloud", DEFAULT_FILTER)
    model = load_model(path) if path.is_file() else IterativePFN(k=8, width=32, layers=2, patch_size=128, normal_k=16)
    mesh = load_meshes("cgal", ["bunny00"], None, "test")[0]
    fps_seconds, fps = [0.0], patches.farthest_point_sample

    def timed_fps(*a, **k):
        t = time.perf_counter()
        out = fps(*a, **k)
        fps_seconds[0] += time.perf_counter() - t
        return out

    patches.farthest_point_sample = timed_fps
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    noisy = noisy_copy(sample_mesh(mesh, n, rng=seed), 0.01, seed=seed)
    t = time.perf_counter()
    out = model.denoise(noisy, desc=f"denoise {n} points")
    seconds = time.perf_counter() - t
    traced = tracemalloc.get_traced_memory()[1]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert out.shape == noisy.shape
    return {
        "points": n,
        "seconds": seconds,
        "fps seconds": fps_seconds[0],
        "peak RSS above start MB": (rss - rss0) / 1024,
        "tracemalloc peak MB": traced / 2**20,
        "cloud MB": noisy.nbytes / 2**20,
        "model": "shipped" if path.is_file() else "untrained, same size, normal_k 16",
    }


def field_size(sizes: list[int], seed: int) -> None:
    """One fresh process per size (a clean peak-memory reading); print the table."""
    import json
    import subprocess
    import sys

    rows = []
    for n in sizes:
        run = subprocess.run(
            [sys.executable, __file__, "--field-size-one", str(n), "--seed", str(seed)],
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append(json.loads(run.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    print("\n## Field size (denoise, bunny + 1 % noise)\n")
    print(_table(rows, list(rows[0])))


def pretrained_table() -> None:
    """The shipped filter against the classical filters on the held-out meshes."""
    from difflab.core.lightning.pretrained import pretrained_info, shipped_path
    from difflab.pointcloud.inference import DEFAULT_FILTER, load_model
    from difflab.pointcloud.pretrain import evaluate

    path = shipped_path("pointcloud", DEFAULT_FILTER)
    info = pretrained_info(path)
    print(f"shipped: {path.name}, {info.get('steps')} steps, {info.get('wall_minutes')} min; {info.get('command')}")
    rows = evaluate(load_model(path))
    for r in rows:
        ref = next(x for x in rows if x["noise"] == r["noise"] and x["method"] == "noisy input")
        r["cd / noisy"], r["p2m / noisy"] = r["cd_x1e4"] / ref["cd_x1e4"], r["p2m_x1e4"] / ref["p2m_x1e4"]
    print("\n## Pretrained default vs classical filters (held-out CGAL meshes, 4096 points, x1e4)\n")
    print(_table(rows, ["method", "noise", "cd_x1e4", "cd / noisy", "p2m_x1e4", "p2m / noisy"]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", type=float, default=1.0, help="multiply the training budgets")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--renders", type=Path, default=None, help="folder for the renders of the compared variants")
    p.add_argument("--field-size", action="store_true", help="time and memory of denoise on big clouds")
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    p.add_argument("--field-size-one", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--pretrained", action="store_true", help="the shipped filter against the classical filters")
    ns = p.parse_args()
    torch.set_num_threads(1)
    if ns.field_size_one is not None:
        import json

        print(json.dumps(field_size_one(ns.field_size_one, ns.seed)))
        return
    print(
        f"# difflab-pointcloud benchmark {time.strftime('%Y-%m-%d')}, {platform.machine()} "
        f"{platform.processor() or ''}, torch {torch.__version__}, 1 intra-op thread, scale {ns.scale}"
    )
    if ns.field_size:
        field_size(ns.sizes, ns.seed)
        return
    if ns.pretrained:
        pretrained_table()
        return
    g, variants = generation(ns.scale, ns.seed)
    f, keep, skeep = filtering(ns.scale, ns.seed)
    if ns.renders is not None:
        renders(ns.renders, g, variants, f, keep, skeep)


if __name__ == "__main__":
    main()
