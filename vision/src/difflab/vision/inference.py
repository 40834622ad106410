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
    from difflab.core.verbs import check_output
    from difflab.vision.data.io import IMAGE_EXTENSIONS

    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        if not files:
            raise UserError(f"{source}: no image files ({', '.join(IMAGE_EXTENSIONS)})")
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


def check_scale(model, scale: int | None, ckpt: str | Path) -> int:
    """The model's SR factor; ``scale`` (``--scale``) must be it when given."""
    trained = int(getattr(model, "scale", 4))
    if scale is not None and scale != trained:
        raise UserError(f"--scale {scale}: the checkpoint {ckpt} was trained for x{trained}; pass --scale {trained}")
    return trained


def upscale_image(fn, src: Path, dst: Path, scale: int, *, tile: int, overlap: int, tile_batch: int):
    """Super-resolve the image ``src`` tile by tile with ``fn`` and write ``dst`` (alpha upscaled bicubically)."""
    from difflab.vision.data.io import read_image, write_image

    img = read_image(src)
    lr = torch.from_numpy(img.rgb).permute(2, 0, 1)[None] * 2 - 1
    with torch.no_grad():
        hr = upscale_tiled(fn, lr, scale, tile=tile, overlap=overlap, tile_batch=tile_batch)
    rgb = ((hr[0] + 1) / 2).clamp(0, 1).permute(1, 2, 0).numpy()
    alpha = None
    if img.alpha is not None:
        a = torch.from_numpy(img.alpha)[None, None].double()
        alpha = bicubic_upsample(a, scale)[0, 0].clamp(0, 1).numpy()
    write_image(dst, rgb, alpha, grey=img.grey)
    return img, rgb


def upscale_files(
    source: Path,
    output: Path,
    ckpt: str | Path,
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

    Inputs (their headers) and outputs are checked before the model is loaded; ``scale`` must be the
    model's. Progress counts tiles over all images (a bar on a terminal, a line every few seconds
    without one)."""
    from difflab.core.progress import note
    from difflab.vision.data.io import image_size

    if not 0 <= overlap < tile:
        raise UserError(f"--overlap {overlap}: must lie in [0, --tile {tile})")
    files, targets = upscale_targets(Path(source), Path(output), overwrite)
    sizes = [image_size(f) for f in files]
    model = load_model(ckpt, device)
    scale = check_scale(model, scale, ckpt)
    ticks = StepProgress("upscale", sum(tile_count(h, w, tile, overlap) for h, w in sizes), "tiles")
    sr = model_sr_fn(model, scale, steps=steps, sampler=sampler, seed=seed)

    def fn(tiles, index):
        out = sr(tiles, index)
        ticks.update(tiles.shape[0])
        return out

    for src, dst in zip(files, targets):
        img, rgb = upscale_image(fn, src, dst, scale, tile=tile, overlap=overlap, tile_batch=tile_batch)
        if img.note:
            note(f"{src}: {img.note}")
        note(f"{src} ({img.rgb.shape[1]}x{img.rgb.shape[0]}) -> {dst} ({rgb.shape[1]}x{rgb.shape[0]})")
    ticks.close()
    return 0


__all__ = ["check_scale", "load_model", "upscale_files", "upscale_image", "upscale_targets"]
