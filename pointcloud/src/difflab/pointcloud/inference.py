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

from difflab.core.errors import UserError
from difflab.core.progress import StepProgress, artifact

DEFAULT_FILTER = "iterativepfn"
"""The shipped filter ``denoise`` uses without ``--ckpt`` (``difflab/pointcloud/pretrained/iterativepfn.ckpt``,
written by ``python scripts/pretrain.py pointcloud``)."""


def load_model(ckpt: str | Path, expected_base: type | tuple[type, ...] | None = None):
    """The model saved in a checkpoint written by ``fit`` (any point-cloud method, or ``expected_base``)."""
    from difflab.core.lightning import load_checkpoint
    from difflab.pointcloud.models import PointCloudDiffusion, PointFilter

    return load_checkpoint(ckpt, expected_base or (PointCloudDiffusion, PointFilter))


def check_label(model, label: int | None, option: str = "--label") -> None:
    """A :class:`UserError` when ``label`` is given but the model is unconditional or has fewer classes."""
    classes = int(getattr(model.network, "num_classes", 0) or 0)
    if label is None:
        return
    if classes == 0:
        raise UserError(f"{option} {label}: the model is not class-conditional (trained without labels); leave it out")
    if label >= classes:
        raise UserError(f"{option} {label}: the model knows {classes} classes (labels 0 to {classes - 1})")


def check_guidance(model, labels, guidance: float | None, adaptive: float | None) -> dict[str, float]:
    """The guidance options of ``generate``, or a :class:`UserError` naming the option when the model
    cannot be guided (no ``--label``, or a model without a trained "no class" output)."""
    if guidance is None:
        if adaptive is not None:
            raise UserError("--adaptive_guidance: needs --guidance (the weight it starts with)")
        return {}
    if labels is None:
        raise UserError("--guidance: needs --label (the class to guide towards)")
    if model.null_condition({"label": labels}) is None:
        raise UserError(
            '--guidance: the model was trained without label dropout, so its "no class" output is untrained; '
            "fit a class-conditional model with --model.label_dropout 0.1"
        )
    out = {"guidance": float(guidance)}
    if adaptive is not None:
        out["guidance_threshold"] = float(adaptive)
    return out


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
    overwrite: bool = False,
    guidance: float | None = None,
    adaptive_guidance: float | None = None,
) -> int:
    """Generate ``num`` clouds: ``out/sample_NNN.ply`` and a render ``out/samples.png`` (``out`` must not
    hold files unless ``overwrite``). ``guidance``: classifier-free guidance weight for ``label`` (a
    class-conditional model trained with ``label_dropout``); ``adaptive_guidance``: the cosine
    similarity at which guidance stops (adaptive guidance)."""
    from difflab.core.verbs import check_output
    from difflab.pointcloud.figures import render_grid
    from difflab.pointcloud.io import write_points
    from difflab.pointcloud.models import PointCloudDiffusion

    if Path(out).is_file():
        raise UserError(f"{out}: is a file; sample writes a folder of clouds")
    check_output(out, overwrite)
    model = load_model(ckpt, PointCloudDiffusion)
    check_label(model, label)
    g = torch.Generator().manual_seed(seed)
    labels = None if label is None else torch.full((num,), label, dtype=torch.long)
    guided = check_guidance(model, labels, guidance, adaptive_guidance)
    bar = StepProgress(f"sample {num} clouds", steps or int(model.sample_steps))
    res = model.generate(num, points, steps=steps, sampler=sampler, label=labels, generator=g, callback=bar, **guided)
    bar.close()
    clouds = res.sample.numpy()
    for i, c in enumerate(clouds):
        write_points(out / f"sample_{i:03d}.ply", c)
    artifact(out / "sample_000.ply", f"{num} generated clouds of {points} points (.ply), NFE {res.nfe}")
    png = render_grid(
        list(clouds),
        out / "samples.png",
        suptitle=f"{num} samples, NFE {res.nfe}",
        titles=[f"#{i}" for i in range(len(clouds))],
        up=up,
    )
    artifact(png, "render of the generated clouds")
    return 0


def denoise_targets(source: Path, out: Path, overwrite: bool = False) -> tuple[list[Path], list[Path]]:
    """The clouds to filter and the ``.ply`` files to write (each with a ``.png`` render beside it); a
    folder without point files, or an output that exists (without ``overwrite``), is a :class:`UserError`.

    ``out`` is the output file for one input when it has a point suffix, otherwise a folder."""
    from difflab.core.verbs import check_output, folder_inputs
    from difflab.pointcloud.io import CLOUD_FORMATS, WRITE_FORMATS

    if source.is_dir():
        files = folder_inputs(source, CLOUD_FORMATS, "point files")
        if out.is_file():
            raise UserError(f"{out}: is a file; the output of a folder of clouds is a folder")
        targets = [out / (f.stem + ".ply") for f in files]
    else:
        files = [source]
        targets = [out if out.suffix.lower() in WRITE_FORMATS else out / (source.stem + ".ply")]
    if len(set(targets)) < len(targets):
        raise UserError(f"{source}: two clouds share a name (their outputs would replace each other)")
    for t in targets:
        check_output(t, overwrite)
        check_output(t.with_suffix(".png"), overwrite)
    return files, targets


def check_patch_size(path: Path, points, patch: int) -> None:
    """A :class:`UserError` naming ``path`` when its cloud has fewer points than the model's patch."""
    if len(points) < patch:
        raise UserError(
            f"{path}: {len(points)} points, fewer than the model's patch of {patch} points (it was trained with "
            f"--data.init_args.patch_size {patch}); give a cloud of at least {patch} points or a model "
            f"trained with --data.init_args.patch_size {len(points)} or less"
        )


def denoise_files(source: Path, out: Path, ckpt: str | Path | None, *, repeat: int = 1, overwrite: bool = False) -> int:
    """Filter one cloud or a folder of clouds; writes the filtered ``.ply`` and a before/after render.

    ``ckpt`` None: the shipped default filter (:data:`DEFAULT_FILTER`). One input file is read (and
    must hold at least a patch of points) before the model is loaded. A folder is read one cloud at a
    time: a cloud that cannot be read or filtered is skipped with a note, the others are written, and
    the verb ends with a one-line error listing the skipped files. A big cloud shows progress over
    its patches."""
    from difflab.core.lightning.pretrained import checkpoint_or_default
    from difflab.core.progress import note, progress
    from difflab.pointcloud.io import read_cloud
    from difflab.pointcloud.models import PointFilter

    files, outs = denoise_targets(Path(source), Path(out), overwrite)
    first = read_cloud(files[0]) if len(files) == 1 else None
    model = load_model(checkpoint_or_default(ckpt, "pointcloud", DEFAULT_FILTER), PointFilter)
    patch = int(getattr(model, "patch_size", 1))
    if first is not None:
        check_patch_size(files[0], first[0], patch)
    failed: list[str] = []
    pairs = list(zip(files, outs))
    for f, o in progress(pairs, desc="denoise", unit="cloud") if len(pairs) > 1 else pairs:
        try:
            noisy, colors = first if first is not None else read_cloud(f)
            check_patch_size(f, noisy, patch)
            _denoise_one(model, f, o, noisy, repeat, colors)
        except UserError as err:
            if first is not None:
                raise
            failed.append(f.name)
            note(f"skipped: {err}")
    if failed:
        raise UserError(
            f"{source}: {len(failed)} of {len(files)} clouds failed and were skipped ({', '.join(failed)}; "
            f"reasons above); the other {len(files) - len(failed)} were written"
        )
    return 0


def _denoise_one(model, f: Path, o: Path, noisy, repeat: int, colors=None) -> None:
    """Filter one read cloud, write it (each point keeps its colour: the filter moves points one to
    one) and its before / after render."""
    from difflab.pointcloud.figures import render_grid
    from difflab.pointcloud.io import write_points

    clean = model.denoise(noisy, repeat=repeat, desc=f"denoise {f.name}")
    write_points(o, clean, colors=colors)
    artifact(o, f"{f.name} filtered ({len(clean)} points)")
    png = render_grid([noisy, clean], o.with_suffix(".png"), titles=["input", "filtered"], ncols=2)
    artifact(png, f"before / after render of {f.name}")


def write_pairs(
    out: Path,
    ckpt: str | Path,
    *,
    num: int = 256,
    steps: int = 100,
    points: int = 512,
    num_classes: int = 0,
    seed: int = 0,
    overwrite: bool = False,
) -> int:
    """Write ``num`` (noise, ODE sample) pairs of a trained flow to ``out`` for reflow / distillation
    (``num_classes``: labels drawn uniformly from that many of the model's classes)."""
    from difflab.core.verbs import check_output
    from difflab.pointcloud.models import PointCloudDiffusion, make_pairs

    if Path(out).is_dir():
        raise UserError(f"{out}: is a folder; make-pairs writes one .pt file")
    check_output(out, overwrite)
    model = load_model(ckpt, PointCloudDiffusion)
    known = int(getattr(model.network, "num_classes", 0) or 0)
    if num_classes > known:
        hint = "it is not class-conditional; pass 0" if known == 0 else f"pass at most {known}"
        raise UserError(f"--num_classes {num_classes}: the model knows {known} classes ({hint})")
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(num_classes, (num,), generator=g) if num_classes > 0 else None
    bar = StepProgress(f"make-pairs {num}", steps * -(-num // 32))
    pairs = make_pairs(model, num, points, steps, batch=32, labels=labels, generator=g, callback=bar)
    bar.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(pairs, out)
    artifact(out, f"{num} (noise, sample) pairs from {steps} Euler steps")
    return 0


__all__ = [
    "DEFAULT_FILTER",
    "check_label",
    "check_patch_size",
    "denoise_files",
    "denoise_targets",
    "load_model",
    "sample_clouds",
    "write_pairs",
]
