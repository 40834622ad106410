"""Loading a trained point-cloud model and the domain verbs ``sample``, ``denoise`` and ``make-pairs``.

Checkpoints are read by core's one loader (:func:`difflab.core.lightning.load_checkpoint`, with
``weights_only=True``): ``sample`` and ``make-pairs`` need a generation model
(:class:`~difflab.pointcloud.models.PointCloudDiffusion`), ``denoise`` a filtering model
(:class:`~difflab.pointcloud.models.PointFilter`). The command line in :mod:`difflab.pointcloud.cli`
only parses arguments.
"""

from __future__ import annotations

from pathlib import Path

import torch


def load_model(ckpt: str | Path, expected_base: type | tuple[type, ...] | None = None):
    """The model saved in a checkpoint written by ``fit`` (any point-cloud method, or ``expected_base``)."""
    from difflab.core.lightning import load_checkpoint
    from difflab.pointcloud.models import PointCloudDiffusion, PointFilter

    return load_checkpoint(ckpt, expected_base or (PointCloudDiffusion, PointFilter))


def sample_clouds(
    out: Path,
    ckpt: str | Path,
    *,
    num: int = 16,
    steps: int | None = None,
    sampler: str | None = None,
    points: int = 512,
    label: int | None = None,
    seed: int = 0,
    up: str = "z",
) -> int:
    """Generate ``num`` clouds: ``out/sample_NNN.ply`` and a render ``out/samples.png``."""
    from difflab.pointcloud.figures import render_grid
    from difflab.pointcloud.io import write_points
    from difflab.pointcloud.models import PointCloudDiffusion

    model = load_model(ckpt, PointCloudDiffusion)
    g = torch.Generator().manual_seed(seed)
    labels = None if label is None else torch.full((num,), label, dtype=torch.long)
    res = model.generate(num, points, steps=steps, sampler=sampler, label=labels, generator=g)
    clouds = res.sample.numpy()
    for i, c in enumerate(clouds):
        write_points(out / f"sample_{i:03d}.ply", c)
    print(f"artifact: {out}/sample_000.ply | {num} generated clouds of {points} points (.ply), NFE {res.nfe}")
    png = render_grid(
        list(clouds),
        out / "samples.png",
        suptitle=f"{num} samples, NFE {res.nfe}",
        titles=[f"#{i}" for i in range(len(clouds))],
        up=up,
    )
    print(f"artifact: {png} | render of the generated clouds")
    return 0


def _denoise_targets(source: Path, out: Path) -> tuple[list[Path], list[Path]]:
    from difflab.pointcloud.io import POINT_FORMATS

    if source.is_dir():
        files = sorted(f for f in source.iterdir() if f.suffix.lower() in POINT_FORMATS)
        if not files:
            raise SystemExit(f"{source}: no point files ({', '.join(POINT_FORMATS)})")
        return files, [out / (f.stem + ".ply") for f in files]
    target = out if out.suffix.lower() in (".ply", ".pcd", ".xyz") else out / (source.stem + ".ply")
    return [source], [target]


def denoise_files(source: Path, out: Path, ckpt: str | Path, *, repeat: int = 1) -> int:
    """Filter one cloud or a folder of clouds; writes the filtered ``.ply`` and a before/after render."""
    from difflab.pointcloud.figures import render_grid
    from difflab.pointcloud.io import read_points, write_points
    from difflab.pointcloud.models import PointFilter

    model = load_model(ckpt, PointFilter)
    files, outs = _denoise_targets(source, out)
    for f, o in zip(files, outs):
        noisy = read_points(f)
        clean = model.denoise(noisy, repeat=repeat)
        write_points(o, clean)
        print(f"artifact: {o} | {f.name} filtered ({len(clean)} points)")
        png = render_grid([noisy, clean], o.with_suffix(".png"), titles=["input", "filtered"], ncols=2)
        print(f"artifact: {png} | before / after render of {f.name}")
    return 0


def write_pairs(
    out: Path,
    ckpt: str | Path,
    *,
    num: int = 256,
    steps: int = 100,
    points: int = 512,
    num_classes: int = 0,
    seed: int = 0,
) -> int:
    """Write ``num`` (noise, ODE sample) pairs of a trained flow to ``out`` for reflow / distillation."""
    from difflab.pointcloud.models import PointCloudDiffusion, make_pairs

    model = load_model(ckpt, PointCloudDiffusion)
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(num_classes, (num,), generator=g) if num_classes > 0 else None
    pairs = make_pairs(model, num, points, steps, labels=labels, generator=g)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(pairs, out)
    print(f"artifact: {out} | {num} (noise, sample) pairs from {steps} Euler steps")
    return 0


__all__ = ["denoise_files", "load_model", "sample_clouds", "write_pairs"]
