"""``difflab-video``: command line of difflab.video (temporal action detection by proposal denoising).

Lightning verbs (``fit``, ``validate``, ``test``, ``predict``) through core's ``run_cli`` with the
shipped configs (``--config difftad_mocap``), and the domain verbs:

* ``make-dataset OUT``: compose the pybullet_data mocap clips into untrimmed videos, written as an
  ActivityNet/ActionFormer annotation JSON plus one ``.npy`` feature file per video;
* ``detect FEATURES.npy|DIR [--ckpt CKPT] [--steps 4] [--sampler NAME]``: ActivityNet results JSON
  (without ``--ckpt`` the shipped pretrained DiffTAD; files longer than ``--window`` by overlapping windows);
* ``demo``: train briefly on the default data, detect on held-out videos, print mAP, draw timelines.

This module parses arguments only; loading and the verbs live in :mod:`difflab.video.inference`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from difflab.core.cli import PackageCLI
from difflab.core.progress import artifact
from difflab.core.verbs import (
    VerbParser,
    check_output,
    count,
    existing_path,
    positive_float,
    sampler_option,
    seed_option,
)

DESCRIPTION = (
    "difflab-video: temporal action detection by proposal denoising diffusion (DiffTAD) and its "
    "deterministic DETR-style baseline, on ActivityNet/ActionFormer-format features."
)


def make_dataset_main(argv: list[str]) -> int:
    """write the mocap action-detection set (annotation JSON + .npy features) from pybullet_data clips"""
    from difflab.video.data.mocap import ACTIONS

    p = VerbParser(prog="difflab-video make-dataset", description=make_dataset_main.__doc__)
    p.add_output("output folder", Path("outputs/data/video/mocap"))
    p.add_argument("--n_train", type=count(1), default=160, help="training videos")
    p.add_argument("--n_val", type=count(1), default=32, help="validation videos")
    p.add_argument("--n_test", type=count(1), default=32, help="test videos")
    p.add_argument(
        "--actions", nargs="+", default=list(ACTIONS), choices=ACTIONS, metavar="ACTION", help="action classes"
    )
    p.add_argument(
        "--num_actions", type=count(1), nargs=2, default=[2, 4], metavar=("MIN", "MAX"), help="actions per video"
    )
    p.add_argument("--render", action="store_true", help="features from frames rendered by pybullet (TinyRenderer)")
    seed_option(p, "the generated videos")
    p.add_argument("--overwrite", action="store_true", help="replace the files of a non-empty output folder")
    ns = p.parse_args(argv)
    if ns.num_actions[0] > ns.num_actions[1]:
        p.error(f"--num_actions {ns.num_actions[0]} {ns.num_actions[1]}: MIN must not exceed MAX")
    check_output(ns.out, ns.overwrite)
    from difflab.video.data.mocap import make_dataset

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
    artifact(path, f"ActivityNet-format annotations of {ns.n_train + ns.n_val + ns.n_test} mocap videos")
    artifact(path.parent / "features", "one (T, C) .npy feature file per video")
    return 0


def detect_main(argv: list[str]) -> int:
    """detect actions in FEATURES.npy or a folder of .npy files; writes ActivityNet results JSON"""
    p = VerbParser(prog="difflab-video detect", description=detect_main.__doc__)
    p.add_argument("features", type=existing_path, help="a (T, C) .npy feature file or a folder of them")
    p.add_argument(
        "--ckpt",
        default=None,
        help="checkpoint written by fit, its run folder, or 'last' (default: the shipped pretrained DiffTAD, "
        "trained on the mocap default data)",
    )
    p.add_argument(
        "--steps",
        type=count(1),
        default=None,
        help="sampler steps (DiffTAD; default: those recorded with a pretrained checkpoint, else the model's)",
    )
    sampler_option(p, "the pretrained checkpoint's, else the model's; ddim is the only one that renews proposals")
    p.add_argument(
        "--selective",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="cross-step selective conditioning (DiffTAD; default: the pretrained checkpoint's, else the model's)",
    )
    p.add_argument(
        "--window",
        type=count(16),
        default=256,
        help="feature steps per detection window: longer files are detected by half-overlapping windows (memory "
        "bounded by one batch of windows and the output)",
    )
    p.add_argument("--fps", type=positive_float, default=None, help="frames per second (default: the training data's)")
    p.add_output("results JSON", Path("detections.json"))
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    seed_option(p, "the noisy proposals DiffTAD starts from")
    ns = p.parse_args(argv)
    check_output(ns.out, ns.overwrite, "--overwrite")
    from difflab.video.inference import detect

    options = vars(ns)
    for key in ("overwrite", "debug"):
        options.pop(key)
    return detect(options.pop("features"), options.pop("ckpt"), **options)


LINKS = [
    ("data.input_dim", "model.init_args.network.init_args.input_dim"),
    ("data.num_classes", "model.init_args.network.init_args.num_classes"),
]
"""What the data decides: the feature dimension and the class count (every model of the package has a
:class:`~difflab.video.networks.detr_tad.DetrTADNet` network). The class names are taken from the data
module when a run starts (:meth:`~difflab.video.models.common.TADMixin.setup`) and kept in the checkpoint."""


main = PackageCLI(
    "video",
    DESCRIPTION,
    {"make-dataset": make_dataset_main, "detect": detect_main},
    "train briefly on the mocap default data, detect on held-out videos, print mAP, draw timelines",
    datamodule_default="difflab.video.data.datamodule:MocapTADDataModule",
    links=LINKS,
).main
"""``difflab-video``: the package's command line (Lightning verbs and the domain verbs)."""


if __name__ == "__main__":
    raise SystemExit(main())
