"""The shipped default filter of ``difflab-pointcloud denoise``: IterativePFN trained on every CGAL
training mesh, evaluated against the classical filters on the held-out meshes.

Run as ``python scripts/pretrain.py pointcloud`` (writes ``difflab/pointcloud/pretrained/iterativepfn.ckpt``).

Recipe (:data:`RECIPE`): 4 iteration modules (kNN 8, width 32, 2 EdgeConv layers each: small, so that
many steps fit in the CPU budget), patches of 128 points from 4096-point samples of the meshes, noise
std uniform in 0.5-3 % of the bounding-sphere radius (the low end teaches the modules to move
clean-ish points little), Adam 2e-3, EMA 0.999 (with warm-up), gradient clipping 1, for a fixed wall
time. Then ``normal_k`` (keep only the displacement along the filtered surface's normals, which stops
the filter from clustering points along the surface) is chosen among 0, 16 and 32 on noisy samples of
three training meshes (:func:`choose_normal_k`).

Evaluation (:func:`evaluate`): the held-out CGAL meshes (bunny, fandisk, hand, helmet), 4096 points,
Gaussian noise of 1, 2 and 3 % of the bounding-sphere radius, two noise draws each; Chamfer (squared)
and point-to-mesh (squared) x 1e4 in the unit sphere, for the noisy input, the filter, the 16-NN
mean, and the best (on these very clouds, so an optimistic baseline) kNN mean over k in {8, 16, 32}
and point-set bilateral filter over k in {16, 32} and 1-3 iterations.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

RECIPE = {
    "num_points": 4096,
    "patch_size": 128,
    "noise_range": (0.005, 0.03),
    "batch_size": 16,
    "k": 8,
    "width": 32,
    "layers": 2,
    "lr": 2e-3,
    "minutes": 55.0,
}
"""The training recipe of the shipped filter (module docstring)."""

EVAL_SIGMAS = (0.01, 0.02, 0.03)
NAME = "iterativepfn"


def evaluation_cases(
    num_points: int = 4096, sigmas=EVAL_SIGMAS, draws: int = 2, names: list[str] | None = None
) -> list[tuple]:
    """``(sigma, mesh, clean (N, 3), noisy (N, 3))`` for every held-out CGAL mesh (or the CGAL meshes
    ``names``), noise level and draw."""
    from difflab.pointcloud.data import noisy_copy
    from difflab.pointcloud.data.filtering import load_meshes
    from difflab.pointcloud.io import sample_mesh

    meshes = load_meshes("cgal", names, None, "test")
    cases = []
    for sigma in sigmas:
        for i, mesh in enumerate(meshes):
            clean = sample_mesh(mesh, num_points, rng=100 + i)
            for d in range(draws):
                cases.append((sigma, mesh, clean, noisy_copy(clean, sigma, seed=1000 * d + i)))
    return cases


def baseline_filters() -> dict[str, dict]:
    """``{family: {variant: filter}}`` of the classical filters compared (each maps (N, 3) -> (N, 3))."""
    from difflab.pointcloud.baselines import bilateral_filter, knn_mean_filter

    knn = {f"k {k}": functools.partial(knn_mean_filter, k=k) for k in (8, 16, 32)}
    bil = {
        f"k {k}, {it} it": functools.partial(bilateral_filter, k=k, iterations=it) for k in (16, 32) for it in (1, 2, 3)
    }
    return {"kNN mean": knn, "bilateral": bil}


def _score(fn, cases: list[tuple]) -> tuple[float, float]:
    from difflab.pointcloud.metrics import filtering_chamfer, filtering_p2m

    outs = [fn(c[3]) for c in cases]
    cd = float(np.mean([filtering_chamfer(o, c[2]) for o, c in zip(outs, cases)]))
    return cd, float(np.mean([filtering_p2m(o, c[1]) for o, c in zip(outs, cases)]))


def evaluate(model, cases: list[tuple] | None = None) -> list[dict]:
    """Rows ``{method, noise, cd_x1e4, p2m_x1e4}`` per noise level: noisy input, ``model`` (a
    :class:`~difflab.pointcloud.models.PointFilter`, or None to score the baselines only), the 16-NN
    mean and the best variant of each baseline family (by Chamfer, chosen per noise level)."""
    from difflab.pointcloud.baselines import knn_mean_filter

    cases = evaluation_cases() if cases is None else cases
    rows = []
    for sigma in sorted({c[0] for c in cases}):
        sub = [c for c in cases if c[0] == sigma]
        named = {"noisy input": lambda x: x, "kNN mean (k 16)": functools.partial(knn_mean_filter, k=16)}
        if model is not None:
            named = {"IterativePFN (shipped)": model.denoise, **named}
        for name, fn in named.items():
            cd, p2m = _score(fn, sub)
            rows.append({"method": name, "noise": sigma, "cd_x1e4": cd, "p2m_x1e4": p2m})
        for family, variants in baseline_filters().items():
            scored = {v: _score(fn, sub) for v, fn in variants.items()}
            best = min(scored, key=lambda v: scored[v][0])
            rows.append(
                {
                    "method": f"{family} (best: {best})",
                    "noise": sigma,
                    "cd_x1e4": scored[best][0],
                    "p2m_x1e4": scored[best][1],
                }
            )
    return rows


def train_filter(seed: int, minutes: float, checkpoint: Path, recipe: dict = RECIPE):
    """Train the recipe's IterativePFN for ``minutes`` of wall time; the full checkpoint goes to
    ``checkpoint``. Returns ``(model, steps, wall seconds)``."""
    from difflab.core.lightning import train_briefly
    from difflab.pointcloud.data import FilterDataModule
    from difflab.pointcloud.models import IterativePFN

    torch.manual_seed(seed)
    dm = FilterDataModule(
        num_points=recipe["num_points"],
        patch_size=recipe["patch_size"],
        noise_range=recipe["noise_range"],
        batch_size=recipe["batch_size"],
        patches_per_epoch=1_000_000,
        seed=seed,
    )
    max_steps = 10_000_000
    model = IterativePFN(
        k=recipe["k"],
        width=recipe["width"],
        layers=recipe["layers"],
        patch_size=recipe["patch_size"],
        optimizer=functools.partial(torch.optim.Adam, lr=recipe["lr"]),
        lr_scheduler=None,
    )
    wall = train_briefly(
        model,
        dm,
        max_steps=max_steps,
        max_time_s=minutes * 60,
        seed=seed,
        checkpoint=checkpoint,
        ema_decay=0.999,
        ema_warmup=True,
        gradient_clip_val=1.0,
        progress_every=10.0,
    )
    return model, int(model.global_step), wall


SELECTION_MESHES = ["armadillo", "elephant", "homer"]
"""Training meshes on which the shipped filter's ``normal_k`` is chosen (never the held-out ones)."""


def choose_normal_k(model, candidates=(0, 16, 32)) -> dict[int, float]:
    """Score each ``normal_k`` on noisy samples of training meshes (:data:`SELECTION_MESHES`): the mean
    over 1-3 % noise of Chamfer / noisy Chamfer + point-to-mesh / noisy point-to-mesh (lower is better)."""
    cases = evaluation_cases(names=SELECTION_MESHES, draws=1)
    scores = {}
    for k in candidates:
        model.normal_k = k
        total = []
        for sigma in EVAL_SIGMAS:
            sub = [c for c in cases if c[0] == sigma]
            (cd, p2m), (cd0, p2m0) = _score(model.denoise, sub), _score(lambda x: x, sub)
            total.append(cd / cd0 + p2m / p2m0)
        scores[k] = float(np.mean(total))
        print(f"normal_k {k}: selection score {scores[k]:.4f}", flush=True)
    return scores


def finalize(full: Path, model, out: Path, meta: dict) -> Path:
    """Choose ``normal_k`` on training meshes, evaluate on the held-out meshes, print the table and write
    the slim checkpoint ``out`` (``normal_k`` in its hyperparameters, the evaluation in its metadata)."""
    from difflab.core.lightning.pretrained import write_pretrained
    from difflab.core.tables import markdown_table

    scores = choose_normal_k(model)
    model.normal_k = min(scores, key=scores.get)
    rows = evaluate(model)
    cols = ["method", "noise", "cd_x1e4", "p2m_x1e4"]
    print(markdown_table([[r[c] for c in cols] for r in rows], cols, align="l"), flush=True)
    checkpoint = torch.load(full, map_location="cpu", weights_only=False)
    checkpoint.setdefault("hyper_parameters", {})["normal_k"] = model.normal_k
    torch.save(checkpoint, full)
    meta = {**meta, "normal_k_selection": {str(k): v for k, v in scores.items()}, "evaluation": rows}
    return write_pretrained(full, model, out, meta=meta)


def pretrain(out_dir: Path, *, seed: int = 0, minutes: float | None = None) -> list[Path]:
    """Train, evaluate against the classical filters on held-out meshes, print the table and write
    ``out_dir/iterativepfn.ckpt`` (slim, float16) with the evaluation in its metadata."""
    torch.set_num_threads(1)
    minutes = RECIPE["minutes"] if minutes is None else minutes
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    full = out_dir / f".{NAME}_full.ckpt"
    model, steps, wall = train_filter(seed, minutes, full)
    print(f"trained {steps} steps in {wall / 60:.1f} min", flush=True)
    meta = {
        "command": f"python scripts/pretrain.py pointcloud --seed {seed} --minutes {minutes:g}",
        "seed": seed,
        "steps": steps,
        "wall_minutes": round(wall / 60, 2),
        "data": "CGAL training meshes (libcgal-demo), 4096-point samples, 128-point patches, noise 0.5-3 %",
        "recipe": {k: list(v) if isinstance(v, tuple) else v for k, v in RECIPE.items()},
    }
    path = finalize(full, model, out_dir / f"{NAME}.ckpt", meta)
    full.unlink(missing_ok=True)
    return [path]


__all__ = [
    "EVAL_SIGMAS",
    "RECIPE",
    "baseline_filters",
    "choose_normal_k",
    "evaluate",
    "evaluation_cases",
    "finalize",
    "pretrain",
    "train_filter",
]
