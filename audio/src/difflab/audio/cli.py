"""``difflab-audio``: the command line of difflab.audio (speech enhancement and dereverberation).

Lightning verbs through core's :func:`difflab.core.cli.run_cli` (a config's ``model.class_path``
picks the method, any :class:`~difflab.audio.models.base.SpeechEnhancer` subclass; ``data.class_path``
the data module)::

    difflab-audio fit --config sgmse_denoise
    difflab-audio test --config sgmse_denoise --ckpt_path last

and the domain verbs ``enhance`` (files or folders, any length / rate / channels), ``make-dataset``
(the offline default data) and ``demo``. This module parses arguments only; loading and the verbs
live in :mod:`difflab.audio.inference`.
"""

from __future__ import annotations

from difflab.core.cli import PackageCLI

DESCRIPTION = (
    "difflab-audio: diffusion speech enhancement and dereverberation (SGMSE+, StoRM, predictive baseline) "
    "on VoiceBank-DEMAND style folders or the offline default data (synthetic speech + real noise / simulated rooms)."
)


def enhance_command(argv: list[str]) -> int:
    """enhance a wav file or a folder (the shipped default model, or --ckpt; chunked, any rate / channels)"""
    from pathlib import Path

    from difflab.audio import inference
    from difflab.core.verbs import (
        VerbParser,
        count,
        existing_path,
        non_negative_float,
        positive_float,
        sampler_option,
        seed_option,
    )

    text = inference.__doc__.split("\n\nLoading a checkpoint")[0]  # what enhance does, with examples
    p = VerbParser(prog="difflab-audio enhance", description=text)
    p.add_argument("input", type=existing_path, help="an audio file or a folder of audio files")
    p.add_argument("output", type=Path, help="output wav (for one file) or folder")
    p.add_argument(
        "--ckpt",
        type=existing_path,
        default=None,
        help="checkpoint (or run folder) of fit or demo (default: the shipped pretrained denoising model, "
        "python scripts/pretrain.py audio)",
    )
    sampler_option(p, "without --ckpt the shipped default's recorded one, else the model's, pc")
    p.add_argument(
        "--steps",
        type=count(1),
        default=None,
        help="sampler steps (default: without --ckpt the shipped default's recorded number, else the model's)",
    )
    p.add_argument(
        "--chunk_seconds",
        type=positive_float,
        default=10.0,
        help="seconds enhanced at a time (memory is one chunk, whatever the recording's length)",
    )
    p.add_argument("--overlap_seconds", type=non_negative_float, default=1.0, help="linear cross-fade between chunks")
    seed_option(p, "the sampler's noise")
    p.add_argument("--device", default="cpu", help="torch device to run the model on (e.g. cuda)")
    p.add_argument("--overwrite", action="store_true", help="replace output files that exist already")
    p.add_argument(
        "--overs",
        choices=inference.OVERS,
        default="scale",
        help="an output that would exceed full scale: 'scale' (default) scales the whole file down to a peak of "
        "-1 dBFS, one gain, no distortion; 'clip' keeps the model's level and clips those samples, with a warning",
    )
    ns = p.parse_args(argv)
    options = vars(ns)
    options.pop("debug")
    return inference.enhance_files(options.pop("input"), options.pop("output"), options.pop("ckpt"), **options)


def make_dataset_command(argv: list[str]) -> int:
    """write the offline default data (synthetic speech + real noise or simulated rooms; real-speech test set)"""

    from difflab.audio.data.datamodule import default_data_root
    from difflab.audio.data.synth import make_dataset
    from difflab.core.verbs import VerbParser, count, seed_option

    parser = VerbParser(prog="difflab-audio make-dataset", description=make_dataset_command.__doc__)
    parser.add_output(
        "output folder (default ~/.cache/difflab/audio/<task>, or $DIFFLAB_AUDIO_DATA/<task>); "
        "with --task both, <out>/<task>"
    )
    parser.add_argument(
        "--task", choices=["denoise", "dereverb", "both"], default="both", help="which data set to write (default both)"
    )
    parser.add_argument("--num_train", type=count(1), default=400, help="training pairs (clean, degraded)")
    parser.add_argument("--num_valid", type=count(1), default=20, help="validation pairs")
    parser.add_argument("--num_test", type=count(0), default=24, help="real-speech test pairs (0: none)")
    seed_option(parser, "the generated data (texts, voices, noise and room draws)")
    parser.add_argument("--workers", type=count(1), default=2, help="parallel text-to-speech processes")
    parser.add_argument("--overwrite", action="store_true", help="replace the splits of an existing data set")
    ns = parser.parse_args(argv)
    out = ns.out
    tasks = ["denoise", "dereverb"] if ns.task == "both" else [ns.task]
    roots = [default_data_root(t) if out is None else (out / t if ns.task == "both" else out) for t in tasks]
    for root in roots:
        _check_data_folder(root, ns.overwrite)
    for task, root in zip(tasks, roots):
        make_dataset(
            root,
            task,
            num_train=ns.num_train,
            num_valid=ns.num_valid,
            num_test=ns.num_test,
            seed=ns.seed,
            workers=ns.workers,
        )
    return 0


def _check_data_folder(root, overwrite: bool) -> None:
    """Refuse a data-set folder that holds files unless ``overwrite``; with it, remove the splits
    the data set is made of (``train``, ``valid``, ``test``, ``README.txt``) so no old file stays."""
    import shutil

    from difflab.core.verbs import check_output

    check_output(root, overwrite)
    if overwrite and root.is_dir():
        for name in ("train", "valid", "test"):
            if (root / name).is_dir():
                shutil.rmtree(root / name)
        (root / "README.txt").unlink(missing_ok=True)


HARMLESS_WARNINGS = (r"You have overridden `on_after_batch_transfer` in `LightningModule`",)
"""Lightning's note that the model's batch hook is used with a data module (the models turn waveform
batches into spectrograms there on purpose, :class:`~difflab.audio.models.base.SpeechEnhancer`)."""


main = PackageCLI(
    "audio",
    DESCRIPTION,
    {"enhance": enhance_command, "make-dataset": make_dataset_command},
    "train briefly on the default data, enhance real-speech test mixtures, write wavs, a figure, a metric table",
    model="difflab.audio.models.base:SpeechEnhancer",
    datamodule="difflab.audio.data.datamodule:SpeechDataModule",
    model_default="difflab.audio.models.sgmse:SGMSE",
    datamodule_default="difflab.audio.data.datamodule:DefaultSpeechDataModule",
    ignore_warnings=HARMLESS_WARNINGS,
).main
"""``difflab-audio``: the package's command line (Lightning verbs and the domain verbs)."""


if __name__ == "__main__":
    raise SystemExit(main())
