"""``difflab-pointcloud``: command line of difflab.pointcloud (point-cloud generation with Point Straight
Flow and a DDPM baseline; filtering with IterativePFN and a score-based baseline).

Lightning verbs (``fit``, ``validate``, ``test``, ``predict``) through core's ``run_cli`` with the
shipped configs (``--config psf_flow_pybullet``), and the domain verbs:

* ``sample --ckpt CKPT --num 16 [--steps 1] OUT_DIR``: clouds as ``.ply`` files and a render;
* ``denoise IN.ply|DIR OUT --ckpt CKPT``: filter one cloud or a folder of clouds, with before/after renders;
* ``make-pairs --ckpt CKPT --num 256 --steps 100 OUT.pt``: (noise, sample) pairs for reflow / distillation;
* ``demo``: train briefly, sample with 1 and many steps, denoise noisy shapes and real scans, print a table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from difflab.core.cli import exit_code, run_cli

DESCRIPTION = (
    "difflab-pointcloud: point-cloud generation (Point Straight Flow: flow -> reflow -> one-step distillation; "
    "DDPM baseline) and filtering (IterativePFN; score-based baseline)."
)


def load_model(ckpt: str | Path):
    """The LightningModule saved in a checkpoint written by ``fit`` (class from its ``_class_path``)."""
    import importlib

    import torch

    import difflab.pointcloud.models  # noqa: F401  (every method class is importable)

    path = Path(ckpt)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    state = torch.load(path, map_location="cpu", weights_only=False)
    class_path = (state.get("hyper_parameters") or {}).get("_class_path")
    if not class_path:
        raise ValueError(f"{path}: not a checkpoint written by difflab-pointcloud fit (no _class_path)")
    module, _, name = class_path.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    model = cls.load_from_checkpoint(str(path), map_location="cpu")
    model.eval()
    return model


def sample_main(argv: list[str]) -> int:
    """generate clouds with a trained flow / DDPM: OUT_DIR/sample_NNN.ply and OUT_DIR/samples.png"""
    import torch

    from difflab.pointcloud.figures import render_grid
    from difflab.pointcloud.io import write_points
    from difflab.pointcloud.models.psf import PointCloudDiffusion

    p = argparse.ArgumentParser(prog="difflab-pointcloud sample", description=sample_main.__doc__)
    p.add_argument("out", type=Path, help="output folder")
    p.add_argument("--ckpt", required=True, help="checkpoint written by fit (PointStraightFlow or PointDDPM)")
    p.add_argument("--num", type=int, default=16, help="clouds to generate")
    p.add_argument("--steps", type=int, default=None, help="sampler steps (default: the model's; 1 after distill)")
    p.add_argument("--sampler", default=None, help="core sampler name (default: the model's)")
    p.add_argument("--points", type=int, default=512, help="points per cloud")
    p.add_argument("--label", type=int, default=None, help="class index for class-conditional models")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--up", choices=("y", "z"), default="z", help="axis drawn vertically (z: pybullet objects; y: ShapeNet meshes)"
    )
    ns = p.parse_args(argv)
    model = load_model(ns.ckpt)
    if not isinstance(model, PointCloudDiffusion):
        raise SystemExit(f"{ns.ckpt}: a {type(model).__name__} checkpoint cannot sample (need a generation model)")
    g = torch.Generator().manual_seed(ns.seed)
    label = None if ns.label is None else torch.full((ns.num,), ns.label, dtype=torch.long)
    res = model.generate(ns.num, ns.points, steps=ns.steps, sampler=ns.sampler, label=label, generator=g)
    clouds = res.sample.numpy()
    for i, c in enumerate(clouds):
        write_points(ns.out / f"sample_{i:03d}.ply", c)
    print(f"artifact: {ns.out}/sample_000.ply | {ns.num} generated clouds of {ns.points} points (.ply), NFE {res.nfe}")
    png = render_grid(
        list(clouds),
        ns.out / "samples.png",
        suptitle=f"{ns.num} samples, NFE {res.nfe}",
        titles=[f"#{i}" for i in range(len(clouds))],
        up=ns.up,
    )
    print(f"artifact: {png} | render of the generated clouds")
    return 0


def denoise_main(argv: list[str]) -> int:
    """filter a noisy cloud or a folder of clouds with a trained IterativePFN / score denoiser"""
    from difflab.pointcloud.figures import render_grid
    from difflab.pointcloud.io import POINT_FORMATS, read_points, write_points
    from difflab.pointcloud.models.iterativepfn import PointFilter

    p = argparse.ArgumentParser(prog="difflab-pointcloud denoise", description=denoise_main.__doc__)
    p.add_argument("input", type=Path, help="a point file (.ply/.pcd/.xyz) or a folder of them")
    p.add_argument("out", type=Path, help="output file (for one input file) or folder")
    p.add_argument("--ckpt", required=True, help="checkpoint written by fit (IterativePFN or ScoreDenoiser)")
    p.add_argument("--repeat", type=int, default=1, help="apply the filter this many times")
    ns = p.parse_args(argv)
    model = load_model(ns.ckpt)
    if not isinstance(model, PointFilter):
        raise SystemExit(f"{ns.ckpt}: a {type(model).__name__} checkpoint cannot denoise (need a filtering model)")
    if ns.input.is_dir():
        files = sorted(f for f in ns.input.iterdir() if f.suffix.lower() in POINT_FORMATS)
        if not files:
            raise SystemExit(f"{ns.input}: no point files ({', '.join(POINT_FORMATS)})")
        outs = [ns.out / (f.stem + ".ply") for f in files]
    else:
        files = [ns.input]
        outs = [ns.out if ns.out.suffix.lower() in (".ply", ".pcd", ".xyz") else ns.out / (ns.input.stem + ".ply")]
    for f, o in zip(files, outs):
        noisy = read_points(f)
        clean = model.denoise(noisy, repeat=ns.repeat)
        write_points(o, clean)
        print(f"artifact: {o} | {f.name} filtered ({len(clean)} points)")
        png = render_grid([noisy, clean], o.with_suffix(".png"), titles=["input", "filtered"], ncols=2)
        print(f"artifact: {png} | before / after render of {f.name}")
    return 0


def make_pairs_main(argv: list[str]) -> int:
    """write (noise, ODE sample) pairs of a trained flow for reflow / distillation"""
    import torch

    from difflab.pointcloud.models.psf import PointCloudDiffusion, make_pairs

    p = argparse.ArgumentParser(prog="difflab-pointcloud make-pairs", description=make_pairs_main.__doc__)
    p.add_argument("out", type=Path, help="output .pt file")
    p.add_argument("--ckpt", required=True, help="checkpoint of the flow (stage flow or reflow)")
    p.add_argument("--num", type=int, default=256, help="pairs")
    p.add_argument("--steps", type=int, default=100, help="Euler steps of the ODE")
    p.add_argument("--points", type=int, default=512, help="points per cloud")
    p.add_argument("--num_classes", type=int, default=0, help="draw labels uniformly from this many classes")
    p.add_argument("--seed", type=int, default=0)
    ns = p.parse_args(argv)
    model = load_model(ns.ckpt)
    if not isinstance(model, PointCloudDiffusion):
        raise SystemExit(f"{ns.ckpt}: not a generation model")
    g = torch.Generator().manual_seed(ns.seed)
    labels = torch.randint(ns.num_classes, (ns.num,), generator=g) if ns.num_classes > 0 else None
    pairs = make_pairs(model, ns.num, ns.points, ns.steps, labels=labels, generator=g)
    ns.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(pairs, ns.out)
    print(f"artifact: {ns.out} | {ns.num} (noise, sample) pairs from {ns.steps} Euler steps")
    return 0


def demo_main(argv: list[str]) -> int:
    """train briefly, sample with 1 and many steps, denoise noisy shapes and real scans, print the metric table"""
    from difflab.pointcloud.demo import run_demo

    p = argparse.ArgumentParser(prog="difflab-pointcloud demo", description=demo_main.__doc__)
    p.add_argument("--out", type=Path, default=Path("outputs/demo/pointcloud"), help="output folder")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every training budget by this")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--fast",
        action="store_true",
        help="reduced run checking the whole pipeline in well under a minute (tiny budgets; numbers mean nothing)",
    )
    ns = p.parse_args(argv)
    run_demo(ns.out, scale=ns.scale, seed=ns.seed, fast=ns.fast)
    return 0


def main(args: list[str] | None = None) -> int:
    from lightning.pytorch import LightningDataModule, LightningModule

    result = run_cli(
        LightningModule,
        LightningDataModule,
        package="pointcloud",
        args=sys.argv[1:] if args is None else args,
        extra_commands={
            "sample": sample_main,
            "denoise": denoise_main,
            "make-pairs": make_pairs_main,
            "demo": demo_main,
        },
        description=DESCRIPTION,
    )
    return exit_code(result)


if __name__ == "__main__":
    raise SystemExit(main())
