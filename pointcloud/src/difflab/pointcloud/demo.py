"""``difflab-pointcloud demo``: brief CPU training of every method on the offline default data.

Generation (pybullet_data's procedural objects, 256 points): rectified flow -> reflow on its own ODE
pairs -> one-step distillation (PSF), and the DDPM baseline; samples with 1 and many steps, scored by
MMD / COV / 1-NNA (Chamfer and EMD) against held-out shapes. Filtering (CGAL meshes + 1-3 % Gaussian
noise): IterativePFN and the score-based baseline (and, in the benchmark, one iteration module applied
repeatedly) on held-out meshes (Chamfer and point-to-mesh x 1e4) and on real CGAL scans with added
noise. Prints a metric table and one ``artifact:`` line per file written.
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path

import numpy as np
import torch

from difflab.core.progress import artifact
from difflab.core.tables import markdown_table
from difflab.core.verbs import VerbParser, seed_option

GEN_POINTS = 256


def _opt(lr: float = 2e-3):
    return functools.partial(torch.optim.Adam, lr=lr)


def train_generators(
    scale: float = 1.0, seed: int = 0, pairs_path: Path | None = None, num_shapes: int = 32, num_val_shapes: int = 16
) -> dict:
    """Flow, reflow + distill (PSF) and DDPM, each trained briefly. Returns models, data and times."""
    from difflab.core.lightning import train_briefly
    from difflab.pointcloud.data import PairsDataModule, ShapeDataModule
    from difflab.pointcloud.models import PointDDPM, PointStraightFlow, make_pairs
    from difflab.pointcloud.networks import PointSetDenoiser

    steps = lambda n: max(2, int(n * scale))  # noqa: E731
    torch.manual_seed(seed)  # the networks' initialisation (train_briefly seeds only the training)
    dm = ShapeDataModule(
        num_points=GEN_POINTS, num_shapes=num_shapes, num_val_shapes=num_val_shapes, batch_size=16, seed=seed
    )
    dm.setup()
    times = {}
    flow = PointStraightFlow(PointSetDenoiser("tiny"), optimizer=_opt(), sample_steps=50)
    times["flow"] = train_briefly(flow, dm, max_steps=steps(400), seed=seed)
    t = time.perf_counter()
    pairs = make_pairs(
        flow, max(32, int(96 * min(scale, 1))), GEN_POINTS, steps=50, generator=torch.Generator().manual_seed(seed + 1)
    )
    times["pairs"] = time.perf_counter() - t
    pairs_path = pairs_path or Path("outputs/pointcloud/demo_pairs.pt")
    pairs_path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(pairs, pairs_path)
    pdm = PairsDataModule(str(pairs_path), batch_size=16, seed=seed)
    psf = PointStraightFlow(PointSetDenoiser("tiny"), stage="reflow", optimizer=_opt())
    psf.load_state_dict(flow.state_dict())
    times["reflow"] = train_briefly(psf, pdm, max_steps=steps(200), seed=seed)
    psf.stage = "distill"
    times["distill"] = train_briefly(psf, pdm, max_steps=steps(200), seed=seed)
    ddpm = PointDDPM(PointSetDenoiser("tiny"), num_steps=1000, sample_steps=100, optimizer=_opt())
    times["ddpm"] = train_briefly(ddpm, dm, max_steps=steps(300), seed=seed)
    return {"flow": flow, "psf": psf, "ddpm": ddpm, "data": dm, "times": times}


def generation_variants(g: dict, num: int = 16, seed: int = 0) -> dict[str, tuple[torch.Tensor, float, int]]:
    """``{name: (samples, seconds, NFE)}`` for one-step PSF, 1- and 50-step flow, DDPM (100 ancestral steps)."""
    from difflab.pointcloud.models import euler_sample

    out = {}
    z = torch.randn(num, GEN_POINTS, 3, generator=torch.Generator().manual_seed(seed + 7))
    for name, model, steps in (
        ("PSF 1 step (reflow + distill)", g["psf"], 1),
        ("flow 1 Euler step", g["flow"], 1),
        ("flow 50 Euler steps", g["flow"], 50),
    ):
        t = time.perf_counter()
        s = euler_sample(model, z, steps)
        out[name] = (s, time.perf_counter() - t, steps)
    t = time.perf_counter()
    res = g["ddpm"].generate(num, GEN_POINTS, generator=torch.Generator().manual_seed(seed + 7))
    out["DDPM 100 ancestral steps"] = (res.sample, time.perf_counter() - t, res.nfe)
    return out


def generation_rows(g: dict, variants: dict, emd: bool = True) -> list[dict]:
    from difflab.pointcloud.metrics import generation_metrics, nearest_training_chamfer

    ref = g["data"].val_set.clouds
    train = g["data"].train_set.clouds
    rows, cache = [], {}
    for name, (s, sec, nfe) in variants.items():
        m = generation_metrics(s, ref, metrics=("cd", "emd") if emd else ("cd",), ref_cache=cache)
        m["nn_train_cd"] = nearest_training_chamfer(s, train).mean().item()
        rows.append({"method": name, "nfe": nfe, "seconds": sec, **m})
    return rows


def train_filters(scale: float = 1.0, seed: int = 0, single_step: bool = False, num_points: int = 4096) -> dict:
    from difflab.core.lightning import train_briefly
    from difflab.pointcloud.data import FilterDataModule
    from difflab.pointcloud.models import IterativePFN, ScoreDenoiser

    steps = lambda n: max(2, int(n * scale))  # noqa: E731
    torch.manual_seed(seed)  # the networks' initialisation (train_briefly seeds only the training)
    dm = FilterDataModule(num_points=num_points, patch_size=128, batch_size=8, patches_per_epoch=100_000, seed=seed)
    dm.setup()
    times, models = {}, {}
    models["IterativePFN (4 modules)"] = IterativePFN(k=8, width=32, layers=2, patch_size=128, optimizer=_opt())
    models["score-based (30 ascent steps)"] = ScoreDenoiser(k=8, width=32, layers=2, patch_size=128, optimizer=_opt())
    if single_step:
        models["one module x4"] = IterativePFN(
            num_iterations=1, k=8, width=32, layers=2, patch_size=128, optimizer=_opt()
        )
    for name, m in models.items():
        times[name] = train_briefly(m, dm, max_steps=steps(220), seed=seed)
    return {"models": models, "data": dm, "times": times}


def filtering_rows(
    f: dict, sigmas=(0.01, 0.02, 0.03), num_points: int = 4096, max_meshes: int | None = None
) -> tuple[list[dict], dict]:
    """Chamfer / P2M x 1e4 per method and noise level on the held-out meshes (the first ``max_meshes``;
    bunny first), with the noisy input as row 0."""
    from difflab.pointcloud.data import noisy_copy
    from difflab.pointcloud.io import sample_mesh
    from difflab.pointcloud.metrics import filtering_chamfer, filtering_p2m

    meshes = f["data"].val_meshes_[:max_meshes]
    rows, keep = [], {}
    for sigma in sigmas:
        cases = []
        for i, mesh in enumerate(meshes):
            clean = sample_mesh(mesh, num_points, rng=100 + i)
            cases.append((mesh, clean, noisy_copy(clean, sigma, seed=i)))
        variants = {"noisy input": None, **f["models"]}
        for name, model in variants.items():
            t = time.perf_counter()
            outs = [
                c[2] if model is None else model.denoise(c[2], repeat=4 if name == "one module x4" else 1)
                for c in cases
            ]
            sec = (time.perf_counter() - t) / len(cases)
            cd = np.mean([filtering_chamfer(o, c[1]) for o, c in zip(outs, cases)])
            p2m = np.mean([filtering_p2m(o, c[0]) for o, c in zip(outs, cases)])
            rows.append({"method": name, "noise": sigma, "cd_x1e4": cd, "p2m_x1e4": p2m, "seconds": sec})
            if sigma == 0.02:
                keep[name] = (cases[0][1], outs[0])
    return rows, keep


def scan_rows(
    f: dict, sigma: float = 0.02, num_points: int = 4096, scans: tuple[str, ...] = ("kitten.xyz", "oni.ply")
) -> tuple[list[dict], dict]:
    """Real CGAL scans (kitten, oni) normalised, with added noise: Chamfer x 1e4 to the original scan.
    The kitten (5.2 k points) is resampled to ``num_points``; the first scan's outputs are kept for renders."""
    from difflab.pointcloud.data import noisy_copy
    from difflab.pointcloud.data.sources import cgal_scan_path
    from difflab.pointcloud.io import normalize_unit_sphere, read_points, resample
    from difflab.pointcloud.metrics import filtering_chamfer

    rows, keep = [], {}
    for j, name in enumerate(scans):
        scan = normalize_unit_sphere(
            resample(read_points(cgal_scan_path(name)), num_points, rng=j)
            if name == "kitten.xyz"
            else read_points(cgal_scan_path(name))
        )[0]
        noisy = noisy_copy(scan, sigma, seed=50 + j)
        row = {"scan": name, "noisy input": filtering_chamfer(noisy, scan)}
        for mname, model in f["models"].items():
            out = model.denoise(noisy, repeat=4 if mname == "one module x4" else 1)
            row[mname] = filtering_chamfer(out, scan)
            if j == 0:
                keep[mname] = out
        if j == 0:
            keep["noisy input"], keep["scan"] = noisy, scan
        rows.append(row)
    return rows, keep


def _table(rows: list[dict], cols: list[str]) -> str:
    return markdown_table([[r.get(c, "") for c in cols] for r in rows], cols, align="l")


GENERATION_COLUMNS = [
    "method",
    "nfe",
    "seconds",
    "mmd_cd",
    "cov_cd",
    "1nna_cd",
    "mmd_emd",
    "cov_emd",
    "1nna_emd",
    "nn_train_cd",
]


def _report_generation(out: Path, g: dict, variants: dict, num: int) -> list[dict]:
    """Print the generation table; render the held-out shapes and 4 samples per generator; write PSF samples."""
    from difflab.pointcloud.figures import render_grid
    from difflab.pointcloud.io import write_points

    gen = generation_rows(g, variants)
    print(
        f"\nGeneration ({num} samples of {GEN_POINTS} points vs {num} held-out pybullet objects; CD squared, "
        "EMD Euclidean, exact on all points):"
    )
    print(_table(gen, GENERATION_COLUMNS))
    clouds, titles = list(g["data"].val_set.clouds[:4].numpy()), ["held-out shapes (data)"] + [""] * 3
    for name, (s, _, _) in variants.items():
        clouds += list(s[:4].numpy())
        titles += [name] + [""] * 3
    png = render_grid(clouds, out / "generation.png", titles=titles, ncols=4, up="z", cell=2.2)
    artifact(
        png, "held-out data shapes, then 4 samples per generator (rows): one-step PSF, one / many flow steps, DDPM"
    )
    for i, c in enumerate(variants["PSF 1 step (reflow + distill)"][0][:4]):
        write_points(out / f"psf_sample_{i}.ply", c.numpy())
    artifact(out / "psf_sample_0.ply", "one-step PSF samples as .ply (4 files)")
    return gen


def _report_filtering(out: Path, f: dict, filter_points: int, fast: bool) -> tuple[list[dict], list[dict]]:
    """Print the mesh-filtering and real-scan tables and render the bunny and the kitten scan."""
    from difflab.pointcloud.figures import render_grid

    filt, keep = filtering_rows(
        f, sigmas=(0.02,), num_points=filter_points, max_meshes=1 if fast else None
    )  # the benchmark adds 1 % and 3 %
    meshes = "bunny" if fast else "bunny / fandisk / hand / helmet"
    print(f"\nFiltering (held-out CGAL meshes {meshes}, {filter_points} points, 2 % noise; x1e4, unit sphere):")
    print(_table(filt, ["method", "noise", "cd_x1e4", "p2m_x1e4", "seconds"]))
    names = list(keep)
    png = render_grid(
        [keep[names[0]][0]] + [keep[n][1] for n in names],
        out / "filtering_bunny.png",
        titles=["clean (ground truth)", *names],
        ncols=len(names) + 1,
        cell=2.6,
    )
    artifact(png, "bunny (held out): clean, with 2 % noise, and each filter's output")
    scans, skeep = scan_rows(f, num_points=filter_points, scans=("kitten.xyz",) if fast else ("kitten.xyz", "oni.ply"))
    print("\nReal scans with 2 % added noise (Chamfer x1e4 to the original scan):")
    print(_table(scans, ["scan", "noisy input", *f["models"]]))
    names = ["scan", "noisy input", *f["models"]]
    png = render_grid([skeep[n] for n in names], out / "filtering_kitten.png", titles=names, ncols=len(names), cell=2.6)
    artifact(png, "real kitten scan: original, with 2 % noise, and filtered by each method")
    return filt, scans


def run_demo(out: Path, scale: float = 1.0, seed: int = 0, fast: bool = False) -> dict:
    """Train, evaluate, print the tables and one ``artifact:`` line per file written under ``out``.

    ``fast``: a reduced run (training budgets x0.02, 16 training shapes, 8 samples vs 8 held-out shapes, filtering on
    1024-point clouds of the bunny and the kitten scan only) that checks the whole pipeline in well
    under a minute; its numbers mean nothing.
    """
    torch.manual_seed(seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if fast:
        scale = min(scale, 0.02)
    num = 8 if fast else 16
    filter_points = 1024 if fast else 4096
    g = train_generators(scale, seed, pairs_path=out / "pairs.pt", num_shapes=16 if fast else 32, num_val_shapes=num)
    artifact(out / "pairs.pt", "reflow / distillation pairs (noise, 50-step ODE sample) of the flow")
    variants = generation_variants(g, num=num, seed=seed)
    gen = _report_generation(out, g, variants, num)
    f = train_filters(scale, seed, num_points=filter_points)
    filt, scans = _report_filtering(out, f, filter_points, fast)
    result = {"generation": gen, "filtering": filt, "scans": scans, "train_seconds": {**g["times"], **f["times"]}}
    (out / "metrics.json").write_text(json.dumps(result, indent=1))
    artifact(out / "metrics.json", "every number of the tables above")
    return result


def main(argv: list[str] | None = None) -> int:
    """``difflab-pointcloud demo``: train briefly, sample with 1 and many steps, denoise noisy shapes and
    real scans, print the metric table."""

    p = VerbParser(prog="difflab-pointcloud demo", description=main.__doc__)
    p.add_argument("--out", type=Path, default=Path("outputs/demo/pointcloud"), help="output folder")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every training budget by this")
    seed_option(p, "the data, the training and the sampling")
    p.add_argument(
        "--fast",
        action="store_true",
        help="reduced run checking the whole pipeline in well under a minute (tiny budgets; numbers mean nothing)",
    )
    ns = p.parse_args(argv)
    run_demo(ns.out, scale=ns.scale, seed=ns.seed, fast=ns.fast)
    return 0


__all__ = ["main", "run_demo"]
