"""Loading a trained super-resolution model and the domain verb ``upscale``.

Checkpoints are read by core's one loader (:func:`difflab.core.lightning.load_checkpoint`, with
``weights_only=True``); the tiling itself is :func:`difflab.vision.upscale.upscale_tiled`. The command
line in :mod:`difflab.vision.cli` only parses arguments.
"""

from __future__ import annotations

from pathlib import Path

import torch

from difflab.core.errors import UserError
from difflab.core.progress import StepProgress
from difflab.vision.data.degradations import bicubic_upsample
from difflab.vision.upscale import model_sr_fn, tile_count, upscale_tiled


def load_model(ckpt: str | Path, device: str = "cpu"):
    """An SR model from a checkpoint written by ``difflab-vision fit`` (or the demo)."""
    import difflab.vision.models  # noqa: F401  (the method classes a checkpoint may name)
    from difflab.core.lightning import load_checkpoint
    from difflab.vision.models.base import SRDiffusion

    return load_checkpoint(ckpt, SRDiffusion, map_location=device)


def upscale_targets(source: Path, output: Path, overwrite: bool = False) -> tuple[list[Path], list[Path]]:
    """The images to upscale and the files to write; a folder without images, or an output file
    that exists (without ``overwrite``), is a :class:`UserError` naming it.

    ``output`` is the output file for one image when it has an image suffix, otherwise a folder."""
    from difflab.core.verbs import check_output, folder_inputs
    from difflab.vision.data.io import IMAGE_EXTENSIONS

    if source.is_dir():
        files = folder_inputs(source, IMAGE_EXTENSIONS, "image files")
        targets = [output / (f.stem + ".png") for f in files]
    elif output.suffix.lower() in IMAGE_EXTENSIONS:
        files, targets = [source], [output]
    else:
        files, targets = [source], [output / (source.stem + ".png")]
    if source.is_dir() and output.is_file():
        raise UserError(f"{output}: is a file; the output of a folder of images is a folder")
    for dst in targets:
        check_output(dst, overwrite)
    if len(set(targets)) < len(targets):
        raise UserError(f"{source}: two images share a name (their outputs would replace each other)")
    return files, targets


def readable_inputs(files: list[Path], targets: list[Path], folder: bool):
    """``(files, targets, sizes, failed)``: the inputs whose header reads, their outputs and
    ``(height, width)``, and ``failed``, ``[(file, reason)]`` of the others. One input that does not
    read, or a folder of which none does, is a :class:`UserError` (nothing to do)."""
    from difflab.vision.data.io import ImageReadError, image_size

    good, failed = [], []
    for src, dst in zip(files, targets):
        try:
            good.append((src, dst, image_size(src)))
        except ImageReadError as err:
            if not folder:
                raise
            failed.append((src, str(err).removeprefix(f"{src}: ")))
    if not good:
        raise UserError(f"{files[0].parent}: none of its {len(files)} images can be read ({failed[0][1]}, ...)")
    return [g[0] for g in good], [g[1] for g in good], [g[2] for g in good], failed


def default_checkpoint(ckpt: str | Path | None, scale: int | None) -> Path:
    """``ckpt``, or the shipped default of factor ``scale`` (x4 when None): :mod:`difflab.vision.pretrain`."""
    from difflab.core.lightning.pretrained import checkpoint_or_default
    from difflab.vision.pretrain import DEFAULT_SCALE, NAMES

    if ckpt is not None and str(ckpt) != "":
        return Path(ckpt)
    scale = DEFAULT_SCALE if scale is None else scale
    if scale not in NAMES:
        shipped = ", ".join(f"x{k}" for k in sorted(NAMES))
        raise UserError(f"--scale {scale}: difflab-vision ships defaults for {shipped} only; pass --ckpt for x{scale}")
    return checkpoint_or_default(None, "vision", NAMES[scale])


def check_scale(model, scale: int | None, ckpt: str | Path) -> int:
    """The model's SR factor; ``scale`` (``--scale``) must be it when given."""
    trained = int(getattr(model, "scale", 4))
    if scale is not None and scale != trained:
        raise UserError(f"--scale {scale}: the checkpoint {ckpt} was trained for x{trained}; pass --scale {trained}")
    return trained


def upscale_image(fn, src: Path, dst: Path, scale: int, *, tile: int, overlap: int, tile_batch: int):
    """Super-resolve the image ``src`` tile by tile with ``fn`` and write ``dst`` (alpha upscaled
    bicubically). Returns the loaded input and the output size ``(H, W)``.

    Memory beyond a batch of tiles: the input, the float32 output (where the tiles are summed) and
    its 8-bit copy for writing; the conversions work in place."""
    from difflab.vision.data.io import read_image, write_image

    img = read_image(src)
    lr = torch.from_numpy(img.rgb).permute(2, 0, 1)[None].mul(2).sub_(1)
    with torch.no_grad():
        hr = upscale_tiled(fn, lr, scale, tile=tile, overlap=overlap, tile_batch=tile_batch)
    hr = hr[0].add_(1).mul_(127.5).round_().clamp_(0, 255)  # [-1, 1] -> 8-bit levels, in place
    rgb = hr.to(torch.uint8).permute(1, 2, 0).numpy()
    del hr
    alpha = None
    if img.alpha is not None:
        a = torch.from_numpy(img.alpha)[None, None].double()
        alpha = bicubic_upsample(a, scale)[0, 0].clamp(0, 1).numpy()
    write_image(dst, rgb, alpha, grey=img.grey)
    return img, rgb.shape[:2]


def upscale_files(
    source: Path,
    output: Path,
    ckpt: str | Path | None = None,
    *,
    scale: int | None = None,
    steps: int | None = None,
    sampler: str | None = None,
    tile: int = 64,
    overlap: int = 16,
    tile_batch: int = 4,
    device: str = "cpu",
    seed: int = 0,
    overwrite: bool = False,
) -> int:
    """Upscale an image or a folder of images into ``output`` (a file for one image, or a folder).

    Without ``ckpt`` the shipped default of factor ``scale`` (x4 without one) is used, and ``steps``
    / ``sampler`` not given fall back to the sampling recorded with it. Inputs (their headers) and
    outputs are checked before the model is loaded; ``scale`` must be the model's. Progress counts
    tiles over all images (a bar on a terminal, a line every few seconds without one).

    A folder goes on past an image that cannot be read or upscaled and ends with a one-line summary
    on stderr naming each failed file; the return value is then 1 (0 when every image was written).
    """
    from difflab.core.progress import note

    if not 0 <= overlap < tile:
        raise UserError(f"--overlap {overlap}: must lie in [0, --tile {tile})")
    folder = Path(source).is_dir()
    files, targets = upscale_targets(Path(source), Path(output), overwrite)
    files, targets, sizes, failed = readable_inputs(files, targets, folder)
    for src, reason in failed:
        note(f"{src}: skipped, {reason}")
    model, scale, steps, sampler = _upscaler(ckpt, scale, steps, sampler, device)
    ticks = StepProgress("upscale", sum(tile_count(h, w, tile, overlap) for h, w in sizes), "tiles")
    sr = model_sr_fn(model, scale, steps=steps, sampler=sampler, seed=seed)

    def fn(tiles, index):
        out = sr(tiles, index)
        ticks.update(tiles.shape[0])
        return out

    for src, dst in zip(files, targets):
        try:
            img, (H, W) = upscale_image(fn, src, dst, scale, tile=tile, overlap=overlap, tile_batch=tile_batch)
        except (UserError, OSError, ValueError, MemoryError) as err:
            if not folder:
                raise
            failed.append((src, str(err).removeprefix(f"{src}: ") or type(err).__name__))
            note(f"{src}: failed, {failed[-1][1]}")
            continue
        if img.note:
            note(f"{src}: {img.note}")
        note(f"{src} ({img.rgb.shape[1]}x{img.rgb.shape[0]}) -> {dst} ({W}x{H})")
    ticks.close()
    return _summary(files, failed)


def _upscaler(ckpt, scale: int | None, steps: int | None, sampler: str | None, device: str):
    """Load the model for ``upscale_files``: ``(model, scale, steps, sampler)``.

    Without ``ckpt`` the shipped default of factor ``scale`` is used, and ``steps`` / ``sampler`` not
    given fall back to the sampling recorded with it; ``scale`` must be the model's.
    """
    from difflab.core.lightning.pretrained import recommended_sampling

    shipped = ckpt is None or str(ckpt) == ""
    ckpt = default_checkpoint(ckpt, scale)
    if shipped:
        recorded = recommended_sampling(ckpt)
        steps = steps if steps is not None else recorded.get("steps")
        sampler = sampler if sampler is not None else recorded.get("sampler")
    model = load_model(ckpt, device)
    return model, check_scale(model, scale, ckpt), steps, sampler


def _summary(files: list[Path], failed: list[tuple[Path, str]]) -> int:
    """``upscale_files``' exit status: 0 when every image was written, else 1 after one stderr line
    naming each failed file (skipped inputs are not in ``files``)."""
    if not failed:
        return 0
    import sys

    total = len(files) + sum(1 for f in failed if f[0] not in files)
    names = "; ".join(f"{f.name} ({why})" for f, why in failed)
    print(
        f"difflab-vision upscale: {total - len(failed)} of {total} images written; failed: {names}",
        file=sys.stderr,
        flush=True,
    )
    return 1


__all__ = [
    "check_scale",
    "default_checkpoint",
    "load_model",
    "readable_inputs",
    "upscale_files",
    "upscale_image",
    "upscale_targets",
]
