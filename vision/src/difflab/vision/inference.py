"""Loading a trained super-resolution model and the domain verb ``upscale``.

Checkpoints are read by core's one loader (:func:`difflab.core.lightning.load_checkpoint`, with
``weights_only=True``); the tiling itself is :func:`difflab.vision.upscale.upscale_tiled`. The command
line in :mod:`difflab.vision.cli` only parses arguments.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from difflab.vision.data.degradations import bicubic_upsample
from difflab.vision.upscale import model_sr_fn, upscale_tiled


def load_model(ckpt: str | Path, device: str = "cpu"):
    """An SR model from a checkpoint written by ``difflab-vision fit`` (or the demo)."""
    import difflab.vision.models  # noqa: F401  (the method classes a checkpoint may name)
    from difflab.core.lightning import load_checkpoint
    from difflab.vision.models.base import SRDiffusion

    return load_checkpoint(ckpt, SRDiffusion, map_location=device)


def _targets(source: Path, output: Path) -> tuple[list[Path], list[Path]]:
    from difflab.vision.data.io import IMAGE_EXTENSIONS, list_images

    if source.is_dir():
        files = list_images(source)
        output.mkdir(parents=True, exist_ok=True)
        return files, [output / (f.stem + ".png") for f in files]
    if output.suffix.lower() in IMAGE_EXTENSIONS:
        return [source], [output]
    output.mkdir(parents=True, exist_ok=True)
    return [source], [output / (source.stem + ".png")]


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
    write_image(dst, rgb, alpha)
    return img, rgb


def upscale_files(
    source: Path,
    output: Path,
    ckpt: str | Path,
    *,
    scale: int = 4,
    steps: int | None = None,
    sampler: str | None = None,
    tile: int = 64,
    overlap: int = 16,
    tile_batch: int = 4,
    device: str = "cpu",
    seed: int = 0,
) -> int:
    """Upscale an image or a folder of images into ``output`` (a file for one image, or a folder)."""
    from tqdm.auto import tqdm

    model = load_model(ckpt, device)
    if getattr(model, "scale", scale) != scale:
        print(
            f"difflab-vision upscale: error: --scale {scale} but the checkpoint {ckpt} was trained for x{model.scale}",
            file=sys.stderr,
        )
        raise SystemExit(2)
    files, targets = _targets(source, output)
    fn = model_sr_fn(model, scale, steps=steps, sampler=sampler, seed=seed)
    for src, dst in tqdm(list(zip(files, targets)), desc="upscale", unit="image"):
        img, rgb = upscale_image(fn, src, dst, scale, tile=tile, overlap=overlap, tile_batch=tile_batch)
        if img.note:
            tqdm.write(f"{src}: {img.note}")
        tqdm.write(f"{src} ({img.rgb.shape[1]}x{img.rgb.shape[0]}) -> {dst} ({rgb.shape[1]}x{rgb.shape[0]})")
    return 0


__all__ = ["load_model", "upscale_files", "upscale_image"]
