"""``difflab-vision``: the command line of difflab.vision (image super-resolution).

Lightning verbs through core's :func:`difflab.core.cli.run_cli` (a config's ``model.class_path`` picks
the method, any :class:`~difflab.vision.models.base.SRDiffusion` subclass)::

    difflab-vision fit --config resshift4_photos
    difflab-vision validate --config resshift4_photos --ckpt_path last

and the domain verbs ``upscale`` (tiled inference on images of any size) and ``demo``. This module
parses arguments only; loading and the verbs live in :mod:`difflab.vision.inference`.
"""

from __future__ import annotations

from difflab.core.cli import PackageCLI

DESCRIPTION = (
    "difflab-vision: diffusion image super-resolution (ResShift, SR3, InvSR-style start, "
    "SAM-DiffSR-style region-modulated noise) on BasicSR-style folders or the offline default photographs."
)


def upscale_command(argv: list[str]) -> int:
    """upscale an image or a folder (overlapping tiles, any size) with a trained model, by default the
    shipped pretrained ResShift

    A folder goes on past files that fail and names them at the end (exit status 1)."""
    from pathlib import Path

    from difflab.core.verbs import VerbParser, count, existing_path, sampler_option, seed_option

    p = VerbParser(prog="difflab-vision upscale", description=upscale_command.__doc__)
    p.add_argument("input", type=existing_path, help="an image file or a folder of images")
    p.add_argument("output", type=Path, help="output file (for one image) or folder")
    p.add_argument(
        "--ckpt",
        type=existing_path,
        default=None,
        help="checkpoint (or run folder) from fit / demo; default: the shipped pretrained ResShift of --scale "
        "(x4 or x2; python scripts/pretrain.py vision), sampled with its recorded sampler and steps",
    )
    p.add_argument(
        "--scale",
        type=count(1),
        default=None,
        help="SR factor; must be the model's (default: the model's; x4 without --ckpt)",
    )
    p.add_argument(
        "--steps", type=count(1), default=None, help="sampler steps (default: the model's, or the shipped default's)"
    )
    sampler_option(p, "the model's, or the shipped default's recorded one")
    p.add_argument("--tile", type=count(1), default=64, help="tile size in LR pixels")
    p.add_argument("--overlap", type=count(0), default=16, help="tile overlap in LR pixels (smaller than --tile)")
    p.add_argument("--tile_batch", type=count(1), default=4, help="tiles per network batch")
    p.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    seed_option(p, "the sampler's noise")
    p.add_argument("--overwrite", action="store_true", help="replace output images that exist already")
    ns = p.parse_args(argv)
    if ns.overlap >= ns.tile:
        p.error(f"argument --overlap: {ns.overlap} must be smaller than --tile {ns.tile}")
    if ns.device is None:
        import torch

        ns.device = "cuda" if torch.cuda.is_available() else "cpu"
    options = vars(ns)
    options.pop("debug")
    from difflab.vision.inference import upscale_files

    return upscale_files(options.pop("input"), options.pop("output"), options.pop("ckpt"), **options)


main = PackageCLI(
    "vision",
    DESCRIPTION,
    {"upscale": upscale_command},
    "train ResShift briefly on the default photographs, upscale held-out images, write crops and a metric table",
    model="difflab.vision.models.base:SRDiffusion",
    datamodule="difflab.vision.data.datamodule:SRDataModule",
    model_default="difflab.vision.models.resshift:ResShiftSR",
    datamodule_default="difflab.vision.data.datamodule:SRDataModule",
).main
"""``difflab-vision``: the package's command line (Lightning verbs and the domain verbs)."""


if __name__ == "__main__":
    raise SystemExit(main())
