"""``difflab-pointcloud``: command line of difflab.pointcloud (point-cloud generation with Point Straight
Flow and a DDPM baseline; filtering with IterativePFN and a score-based baseline).

Lightning verbs (``fit``, ``validate``, ``test``, ``predict``) through core's ``run_cli`` with the
shipped configs (``--config psf_flow_pybullet``), and the domain verbs:

* ``sample --ckpt CKPT --num 16 [--steps 1] OUT_DIR``: clouds as ``.ply`` files and a render;
* ``denoise IN.ply|DIR OUT [--ckpt CKPT]``: filter one cloud or a folder of clouds, with before/after renders
  (without ``--ckpt``: the shipped pretrained IterativePFN);
* ``make-pairs --ckpt CKPT --num 256 --steps 100 OUT.pt``: (noise, sample) pairs for reflow / distillation;
* ``nll CLOUDS --ckpt CKPT``: negative log-likelihood of held-out clouds under a DDPM (PF-ODE);
* ``demo``: train briefly, sample with 1 and many steps, denoise noisy shapes and real scans, print a table.

This module parses arguments only; loading and the verbs live in :mod:`difflab.pointcloud.inference`.
"""

from __future__ import annotations

from pathlib import Path

from difflab.core.cli import PackageCLI

DESCRIPTION = (
    "difflab-pointcloud: point-cloud generation (Point Straight Flow: flow -> reflow -> one-step distillation; "
    "DDPM baseline) and filtering (IterativePFN; score-based baseline)."
)


def sample_main(argv: list[str]) -> int:
    """generate clouds with a trained flow / DDPM: OUT_DIR/sample_NNN.ply and OUT_DIR/samples.png"""
    from difflab.core.verbs import VerbParser, count, existing_path, positive_float, sampler_option, seed_option
    from difflab.pointcloud.inference import sample_clouds

    p = VerbParser(prog="difflab-pointcloud sample", description=sample_main.__doc__)
    p.add_argument("out", type=Path, help="output folder")
    p.add_argument("--ckpt", type=existing_path, required=True, help="checkpoint (or run folder) written by fit")
    p.add_argument("--num", type=count(1), default=16, help="clouds to generate")
    p.add_argument("--steps", type=count(1), default=None, help="sampler steps (default: the model's; 1 after distill)")
    sampler_option(p, "the model's")
    p.add_argument("--points", type=count(1), default=512, help="points per cloud")
    p.add_argument("--label", type=count(0), default=None, help="class index for class-conditional models")
    p.add_argument(
        "--guidance",
        type=positive_float,
        default=None,
        help="classifier-free guidance weight w for --label (1: conditional only; needs a model fit with "
        "--model.label_dropout > 0; doubles the network calls)",
    )
    p.add_argument(
        "--adaptive_guidance",
        type=positive_float,
        default=None,
        help="with --guidance: stop guiding once the guided and conditional predictions reach this cosine "
        "similarity (adaptive guidance, e.g. 0.99; saves the unconditional calls after it)",
    )
    seed_option(p, "the sampling noise")
    p.add_argument(
        "--up", choices=("y", "z"), default="z", help="axis drawn vertically (z: pybullet objects; y: ShapeNet meshes)"
    )
    p.add_argument("--overwrite", action="store_true", help="write into an output folder that holds files")
    options = vars(p.parse_args(argv))
    options.pop("debug")
    return sample_clouds(options.pop("out"), options.pop("ckpt"), **options)


def denoise_main(argv: list[str]) -> int:
    """filter a noisy cloud or a folder of clouds with a trained IterativePFN / score denoiser (by default
    the shipped IterativePFN)

    Without --ckpt the IterativePFN shipped with the package, trained on the CGAL meshes, filters. A
    folder goes on past a cloud that cannot be read or filtered and ends with an error listing the
    skipped files."""
    from difflab.core.verbs import VerbParser, count, existing_path
    from difflab.pointcloud.inference import denoise_files

    p = VerbParser(prog="difflab-pointcloud denoise", description=denoise_main.__doc__)
    p.add_argument(
        "input",
        type=existing_path,
        help="a point file (.ply/.pcd/.xyz/.npy, or the vertices of .off/.obj) or a folder of them",
    )
    p.add_argument("out", type=Path, help="output file (for one input file) or folder")
    p.add_argument(
        "--ckpt",
        type=existing_path,
        default=None,
        help="checkpoint (or run folder) written by fit (default: the shipped pretrained IterativePFN)",
    )
    p.add_argument("--repeat", type=count(1), default=1, help="apply the filter this many times")
    p.add_argument("--overwrite", action="store_true", help="replace output files that exist already")
    ns = p.parse_args(argv)
    return denoise_files(ns.input, ns.out, ns.ckpt, repeat=ns.repeat, overwrite=ns.overwrite)


def make_pairs_main(argv: list[str]) -> int:
    """write (noise, ODE sample) pairs of a trained flow for reflow / distillation"""
    from difflab.core.verbs import VerbParser, count, existing_path, seed_option
    from difflab.pointcloud.inference import write_pairs

    p = VerbParser(prog="difflab-pointcloud make-pairs", description=make_pairs_main.__doc__)
    p.add_argument("out", type=Path, help="output .pt file")
    p.add_argument("--ckpt", type=existing_path, required=True, help="checkpoint of the flow (stage flow or reflow)")
    p.add_argument("--num", type=count(1), default=256, help="pairs")
    p.add_argument("--steps", type=count(1), default=100, help="Euler steps of the ODE")
    p.add_argument("--points", type=count(1), default=512, help="points per cloud")
    p.add_argument(
        "--num_classes", type=count(0), default=0, help="draw labels uniformly from this many classes (0: none)"
    )
    seed_option(p, "the noise the pairs start from")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    options = vars(p.parse_args(argv))
    options.pop("debug")
    return write_pairs(options.pop("out"), options.pop("ckpt"), **options)


def nll_main(argv: list[str]) -> int:
    """negative log-likelihood of held-out clouds under a trained PointDDPM: nats per point and per cloud,
    bits per dimension

    The likelihood is that of the probability-flow ODE (RK4 from t = 1/T to 1, Hutchinson divergence).

    Cost: 4 x STEPS network evaluations with one backward pass per probe, per batch of clouds (the
    defaults, 32 steps and 1 probe, take 128 evaluations + 128 backward passes per batch). The estimate
    is unbiased; its spread over --seed shrinks with --probes and more clouds."""
    from difflab.core.verbs import VerbParser, count, existing_path, positive_float, seed_option
    from difflab.pointcloud.likelihood import nll_files

    p = VerbParser(prog="difflab-pointcloud nll", description=nll_main.__doc__)
    p.add_argument(
        "clouds", type=existing_path, help="a point file (.ply/.pcd/.xyz/.npy/.off/.obj) or a folder of them"
    )
    p.add_argument(
        "--ckpt", type=existing_path, required=True, help="PointDDPM checkpoint (or run folder) written by fit"
    )
    p.add_argument("--points", type=count(8), default=2048, help="points per cloud (resampled; default 2048)")
    p.add_argument("--steps", type=count(1), default=32, help="RK4 steps of the ODE (default 32)")
    p.add_argument("--probes", type=count(1), default=1, help="Hutchinson probes per evaluation (default 1)")
    p.add_argument("--batch", type=count(1), default=8, help="clouds per batch")
    p.add_argument(
        "--scale", type=positive_float, default=1.0, help="the training data's scale (--data.init_args.scale)"
    )
    p.add_argument("--label", type=count(0), default=None, help="class index for class-conditional models")
    seed_option(p, "the resampling and the probes")
    p.add_argument("--out", type=Path, default=None, help="write the table as CSV here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    options = vars(p.parse_args(argv))
    options.pop("debug")
    return nll_files(options.pop("clouds"), options.pop("ckpt"), **options)


LINKS = [("data.patch_size", "model.init_args.patch_size")]
"""What the data decides: the filters' patch size (points per patch), given by the filtering data
module to the model when both are built (and recorded in its checkpoint)."""

VERBS = {"sample": sample_main, "denoise": denoise_main, "make-pairs": make_pairs_main, "nll": nll_main}

main = PackageCLI(
    "pointcloud",
    DESCRIPTION,
    VERBS,
    "train briefly, sample with 1 and many steps, denoise noisy shapes and real scans, print the metric table",
    links=LINKS,
).main
"""``difflab-pointcloud``: the package's command line (Lightning verbs and the domain verbs)."""


if __name__ == "__main__":
    raise SystemExit(main())
