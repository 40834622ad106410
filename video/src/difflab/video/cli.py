"""``difflab-video``: command line of difflab.video (temporal action detection by proposal denoising).

Lightning verbs (``fit``, ``validate``, ``test``, ``predict``) through core's ``run_cli`` with the
shipped configs (``--config difftad_mocap``), and the domain verbs:

* ``make-dataset OUT``: compose the pybullet_data mocap clips into untrimmed videos, written as an
  ActivityNet/ActionFormer annotation JSON plus one ``.npy`` feature file per video;
* ``detect FEATURES.npy|DIR --ckpt CKPT [--steps 4]``: ActivityNet results JSON;
* ``demo``: train briefly on the default data, detect on held-out videos, print mAP, draw timelines.

This module parses arguments only; loading and the verbs live in :mod:`difflab.video.inference`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from difflab.core.cli import Command, exit_code, run_cli

DESCRIPTION = (
    "difflab-video: temporal action detection by proposal denoising diffusion (DiffTAD) and its "
    "deterministic DETR-style baseline, on ActivityNet/ActionFormer-format features."
)


def make_dataset_main(argv: list[str]) -> int:
    """write the mocap action-detection set (annotation JSON + .npy features) from pybullet_data clips"""
    from difflab.video.data.mocap import ACTIONS, make_dataset

    p = argparse.ArgumentParser(prog="difflab-video make-dataset", description=make_dataset_main.__doc__)
    p.add_argument("out", type=Path, nargs="?", default=Path("outputs/data/video/mocap"), help="output folder")
    p.add_argument("--n_train", type=int, default=160)
    p.add_argument("--n_val", type=int, default=32)
    p.add_argument("--n_test", type=int, default=32)
    p.add_argument("--actions", nargs="*", default=list(ACTIONS), help=f"action classes (of {', '.join(ACTIONS)})")
    p.add_argument("--num_actions", type=int, nargs=2, default=[2, 4], metavar=("MIN", "MAX"))
    p.add_argument("--render", action="store_true", help="features from frames rendered by pybullet (TinyRenderer)")
    p.add_argument("--seed", type=int, default=0)
    ns = p.parse_args(argv)
    path = make_dataset(
        ns.out,
        n_train=ns.n_train,
        n_val=ns.n_val,
        n_test=ns.n_test,
        classes=ns.actions,
        num_actions=tuple(ns.num_actions),
        render=ns.render,
        seed=ns.seed,
    )
    print(f"artifact: {path} | ActivityNet-format annotations of {ns.n_train + ns.n_val + ns.n_test} mocap videos")
    print(f"artifact: {path.parent / 'features'} | one (T, C) .npy feature file per video")
    return 0


def detect_main(argv: list[str]) -> int:
    """detect actions in FEATURES.npy or a folder of .npy files; writes ActivityNet results JSON"""
    from difflab.video.inference import detect

    p = argparse.ArgumentParser(prog="difflab-video detect", description=detect_main.__doc__)
    p.add_argument("features", type=Path, help="a (T, C) .npy feature file or a folder of them")
    p.add_argument("--ckpt", required=True, help="checkpoint written by fit")
    p.add_argument("--steps", type=int, default=None, help="DDIM steps (DiffTAD; default: the model's)")
    p.add_argument(
        "--selective",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="cross-step selective conditioning (DiffTAD; default: the model's)",
    )
    p.add_argument("--fps", type=float, default=None, help="frames per second (default: the training data's)")
    p.add_argument("--out", type=Path, default=Path("detections.json"), help="results JSON")
    p.add_argument("--seed", type=int, default=0)
    ns = p.parse_args(argv)
    options = vars(ns)
    return detect(options.pop("features"), options.pop("ckpt"), **options)


DEMO = Command(
    "difflab.video.demo:main",
    "train briefly on the mocap default data, detect on held-out videos, print mAP, draw timelines",
)
"""The ``demo`` verb: named, not imported, so the command line never depends on the demo."""


def main(args: list[str] | None = None) -> int:
    from lightning.pytorch import LightningDataModule

    from difflab.core.lightning import TrainedModule
    from difflab.video.data.datamodule import MocapTADDataModule

    result = run_cli(
        TrainedModule,
        LightningDataModule,
        package="video",
        args=sys.argv[1:] if args is None else args,
        extra_commands={"make-dataset": make_dataset_main, "detect": detect_main, "demo": DEMO},
        datamodule_default=MocapTADDataModule,
        description=DESCRIPTION,
    )
    return exit_code(result)


if __name__ == "__main__":
    raise SystemExit(main())
