"""``difflab-vision``: the command line of difflab.vision (image super-resolution).

Lightning verbs through core's :func:`difflab.core.cli.run_cli` (a config's ``model.class_path`` picks
the method, any :class:`~difflab.vision.models.base.SRDiffusion` subclass)::

    difflab-vision fit --config resshift4_photos
    difflab-vision validate --config resshift4_photos --ckpt_path outputs/vision/resshift4_photos/checkpoints/last.ckpt

and the domain verbs ``upscale`` (tiled inference on images of any size) and ``demo``.
"""

from __future__ import annotations

from collections.abc import Sequence

from difflab.core.cli import exit_code, run_cli

DESCRIPTION = (
    "difflab-vision: diffusion image super-resolution (ResShift, SR3, InvSR-style start, "
    "SAM-DiffSR-style region-modulated noise) on BasicSR-style folders or the offline default photographs."
)


def demo_main(argv: list[str]) -> int:
    """train ResShift briefly on the default photographs, upscale held-out images, write crops and a metric table"""
    from difflab.vision.demo import main as demo

    return demo(argv)


def upscale_command(argv: list[str]) -> int:
    """upscale an image or a folder with a trained model (overlapping tiles, any size)"""
    from difflab.vision.upscale import upscale_main

    return upscale_main(argv)


def main(args: Sequence[str] | None = None) -> int:
    from difflab.vision.data.datamodule import SRDataModule
    from difflab.vision.models.base import SRDiffusion
    from difflab.vision.models.resshift import ResShiftSR

    result = run_cli(
        SRDiffusion,
        SRDataModule,
        package="vision",
        args=args,
        extra_commands={"demo": demo_main, "upscale": upscale_command},
        model_default=ResShiftSR,
        datamodule_default=SRDataModule,
        description=DESCRIPTION,
    )
    return exit_code(result)


if __name__ == "__main__":
    raise SystemExit(main())
