"""``difflab-audio demo``: train briefly on the default data, enhance held-out real speech, show it.

1. Writes the offline default data of ``--task`` (denoise or dereverb) if it is missing. For
   denoising, first enhances the test mixtures with the shipped pretrained default (no training;
   ``python scripts/pretrain.py audio`` wrote it) and prints its scores beside the input's at once.
2. Trains the predictive baseline, SGMSE+ and StoRM on CPU with a small NCSN++-style network on
   short crops (a few minutes in all; settings in :data:`TRAINING`); StoRM starts from the trained
   predictive baseline.
3. Enhances the test split — *real recorded speech* (Asterisk prompts) mixed with held-out noise
   recordings and coloured noise, or reverberated in held-out simulated rooms — and prints PESQ /
   ESTOI / SI-SDR for the unprocessed input and every method (the diffusion models both with a
   few-step probability-flow sampler and with the papers' PC sampler), with NFE and real-time factor.
4. Writes wavs (noisy, each method, clean) for a few files, a before / after spectrogram figure and
   the checkpoints (usable with ``difflab-audio enhance``). One ``artifact:`` line per file.
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path
from typing import Any

import torch

from difflab.core.progress import artifact
from difflab.core.verbs import VerbParser, seed_option

# the network the demo and the learning tests train on two CPU cores: NCSN++-style, 3 levels, width 8
DEMO_NETWORK = {"channels": 8, "channel_mults": [1, 2, 2], "num_res_blocks": 1, "attention_resolutions": []}
DEMO_CROP = 31 * 128  # 32 STFT frames (0.25 s): short crops keep CPU training fast
METHOD_CONFIGS = {"predictive": "predictive_denoise", "sgmse": "sgmse_denoise", "storm": "storm_denoise"}
LABELS = {"predictive": "predictive baseline", "sgmse": "SGMSE+", "storm": "StoRM"}
# What learns in CPU minutes on two cores: Adam 2e-3, batch 4, gradient clip 1 and an EMA of the
# weights (0.99) for every model; the diffusion models use the residual preconditioning (sigma_data is
# the measured std of the residual); the predictive baseline predicts the correction; StoRM trains on
# its frozen predictor. The measurements behind each choice: audio/README.md, "What learns in CPU minutes".
TRAINING: dict = {
    "lr": 2e-3,
    "batch_size": 4,
    "predictive": {"steps": 400, "ema": 0.99, "residual": True},
    "sgmse": {"steps": 800, "ema": 0.99, "prediction": "x0_residual", "sigma_data": 0.072},
    "storm": {
        "steps": 100,
        "ema": 0.99,
        "prediction": "x0_residual",
        "sigma_data": 0.045,
        "training_mode": "frozen_predictor",
        "predictor_residual": True,
    },
}
# the few-step deterministic settings at which the CPU-trained diffusion models beat the input
FEW_STEPS = {"sgmse": ("probability_flow", 3), "storm": ("probability_flow", 3)}
# what the demo reports for each method: (label suffix, sampler options)
DEMO_VARIANTS = {
    "predictive": [("", {})],
    "sgmse": [
        ("probability flow N=3", {"sampler": "probability_flow", "steps": 3}),
        ("pc N=30", {"sampler": "pc", "steps": 30}),
    ],
    "storm": [
        ("probability flow N=3", {"sampler": "probability_flow", "steps": 3}),
        ("pc N=10", {"sampler": "pc", "steps": 10}),
    ],
}


def build(
    config: str,
    *,
    data_root: str | Path | None = None,
    lr: float = 2e-3,
    batch_size: int = 4,
    crop_samples: int = DEMO_CROP,
    network: dict | None = None,
    seed: int = 0,
    extra: list[str] | None = None,
):
    """``(model, datamodule)`` from a shipped config through the real command line (so checkpoints
    written from the model reload with ``enhance``), with the small demo network and short crops."""
    from difflab.audio.data.datamodule import SpeechDataModule
    from difflab.audio.models.base import SpeechEnhancer
    from difflab.core.cli import run_cli

    net = network or DEMO_NETWORK
    args = [
        "-c",
        config,
        f"--seed_everything={seed}",
        f"--data.init_args.batch_size={batch_size}",
        f"--data.init_args.crop_samples={crop_samples}",
        "--data.init_args.num_workers=0",
        f"--model.init_args.optimizer.init_args.lr={lr}",
    ]
    if data_root is not None:
        args.append(f"--data.init_args.root={data_root}")
    for key, value in net.items():
        args.append(f"--model.init_args.network.init_args.{key}={value}")
        if config.startswith("storm"):
            args.append(f"--model.init_args.predictor.init_args.{key}={value}")
    args += extra or []
    cli = run_cli(SpeechEnhancer, SpeechDataModule, package="audio", args=args, run=False)
    return cli.model, cli.datamodule


@torch.no_grad()
def enhance_test_set(model, datamodule, *, limit: int | None = None, seed: int = 0, **options: Any):
    """Enhance the test split: ``(clean list, noisy list, enhanced list, names, compute seconds, nfe)``."""
    datamodule.setup("test")
    ds = datamodule.test_set or datamodule.val_set
    n = len(ds) if limit is None else min(limit, len(ds))
    gen = torch.Generator().manual_seed(seed)
    clean, noisy, enhanced, names = [], [], [], []
    model.eval()
    nfe, seconds = 0, 0.0
    for i in range(n):
        item = ds[i]
        t0 = time.perf_counter()
        batch = model.prepare_batch({"noisy": item["noisy"][None]})
        res = model.enhance_spec(batch["y"], generator=gen, **options)
        out = model.spec.spec_to_wav(res.sample, item["noisy"].shape[0])[0] * batch["norm"][0]
        seconds += time.perf_counter() - t0
        nfe = res.nfe
        clean.append(item["clean"])
        noisy.append(item["noisy"])
        enhanced.append(out)
        names.append(item["name"])
    return clean, noisy, enhanced, names, seconds, nfe


def method_args(method: str, out: Path) -> list[str]:
    """Command-line overrides of the shipped config that give the demo's training setting."""
    cfg = TRAINING[method]
    args = []
    for key in ("prediction", "sigma_data", "training_mode", "residual", "predictor_residual"):
        if key in cfg:
            value = str(cfg[key]).lower() if isinstance(cfg[key], bool) else cfg[key]
            args.append(f"--model.init_args.{key}={value}")
    if method == "storm":
        args.append(f"--model.init_args.predictor_init={out / 'predictive.ckpt'}")
    return args


def _parser() -> argparse.ArgumentParser:
    p = VerbParser(prog="difflab-audio demo", description=__doc__)
    p.add_argument("--out", type=Path, default=Path("outputs/demo/audio"), help="output folder")
    p.add_argument("--task", choices=["denoise", "dereverb"], default="denoise", help="which task to train and enhance")
    p.add_argument(
        "--max_steps",
        type=int,
        default=None,
        help="training steps per method (default: predictive 400, SGMSE+ 800, StoRM 100)",
    )
    p.add_argument(
        "--methods",
        nargs="+",
        choices=list(METHOD_CONFIGS),
        default=list(METHOD_CONFIGS),
        help="methods to train (default: all)",
    )
    p.add_argument("--data_root", type=Path, default=None, help="default-layout data (default: the offline default)")
    p.add_argument("--num_eval", type=int, default=12, help="real-speech test mixtures to enhance")
    seed_option(p, "the data, the training and the sampling")
    return p


def train_method(method: str, ns: argparse.Namespace, out: Path):
    """Build ``method`` for ``ns.task``, train it briefly and write ``<out>/<method>.ckpt``:
    ``(model, datamodule, steps)``."""

    from difflab.core.lightning import train_briefly

    config = METHOD_CONFIGS[method].replace("_denoise", f"_{ns.task}")
    model, dm = build(
        config,
        data_root=ns.data_root,
        seed=ns.seed,
        lr=TRAINING["lr"],
        batch_size=TRAINING["batch_size"],
        extra=method_args(method, out),
    )
    steps = ns.max_steps or TRAINING[method]["steps"]
    print(f"training {LABELS[method]} for {steps} steps on {dm.root} ...", flush=True)
    ckpt = out / f"{method}.ckpt"
    ema = TRAINING[method].get("ema") or None
    wall = train_briefly(
        model, dm, max_steps=steps, seed=ns.seed, gradient_clip_val=1.0, checkpoint=ckpt, ema_decay=ema
    )
    artifact(
        ckpt,
        f"{LABELS[method]} checkpoint after {steps} steps ({wall:.0f} s); use with difflab-audio enhance",
    )
    return model, dm, steps


def _write_wavs(wav_dir: Path, clean: list, noisy: list, names: list, results: dict[str, list]) -> int:
    """Noisy, clean and every method's output of the first three test files; returns how many."""
    from difflab.audio.data.io import write_wav

    count = min(3, len(clean))
    for i in range(count):
        stem = Path(names[i]).stem
        write_wav(wav_dir / f"{stem}_noisy.wav", noisy[i], 16000)
        write_wav(wav_dir / f"{stem}_clean.wav", clean[i], 16000)
        for label, sigs in results.items():
            tag = re.sub(r"[^a-z0-9]+", "_", label.lower().replace("+", "plus").replace("=", "")).strip("_")
            write_wav(wav_dir / f"{stem}_{tag}.wav", sigs[i], 16000)
    return count


def _report(out: Path, ns: argparse.Namespace, ref: tuple, results: dict, extra: dict, steps_done: dict) -> None:
    """Print and write the metric table, the wavs and the spectrogram figure, one artifact line each."""
    from difflab.audio.figures import spectrogram_figure
    from difflab.audio.metrics import evaluate, format_table
    from difflab.core.figures import save_figure

    clean, noisy, names = ref
    table = evaluate(results, clean, noisy)
    what = "held-out noise" if ns.task == "denoise" else "held-out simulated rooms (reverberant -> anechoic)"
    trained = ", ".join(f"{LABELS[m]} {n}" for m, n in steps_done.items())
    print(
        f"\nreal recorded speech (Asterisk prompts) + {what}, {len(clean)} files, "
        f"after CPU training on synthetic speech ({trained} steps):"
    )
    print(format_table(table, extra))
    (out / "metrics.md").write_text(format_table(table, extra) + "\n")
    artifact(out / "metrics.md", "metric table (PESQ wb, ESTOI, SI-SDR) of the unprocessed input and each method")
    count = _write_wavs(out / "wavs", clean, noisy, names, results)
    artifact(out / "wavs", f"noisy, enhanced (each method) and clean wavs of {count} real-speech test mixtures")
    k = max(range(min(len(clean), 6)), key=lambda j: clean[j].shape[0])
    panels = {"noisy input" if ns.task == "denoise" else "reverberant input": noisy[k]}
    panels.update({lab: sig[k] for lab, sig in results.items()})
    panels["clean"] = clean[k]
    fig = spectrogram_figure(panels, 16000, title=f"{names[k]}: real speech + {what}")
    fig_path = save_figure(fig, out / "spectrograms.png", dpi=110, bbox_inches="tight")
    artifact(fig_path, "before/after log spectrograms of one real-speech test mixture")


def shipped_default_rows(ns: argparse.Namespace) -> tuple[str, list, dict[str, str], tuple] | None:
    """The shipped default on the first ``--num_eval`` test mixtures (denoising only, when it is
    installed): ``(label, enhanced, extra columns, (clean, noisy, names))``; its scores are printed at once."""
    from difflab.audio.inference import PRETRAINED_NAME, default_checkpoint, load_model
    from difflab.audio.metrics import evaluate, format_table
    from difflab.core.lightning.pretrained import shipped_path

    if ns.task != "denoise" or not shipped_path("audio", PRETRAINED_NAME).is_file():
        return None
    path, sampler, steps = default_checkpoint(None, None, None)
    model = load_model(path)
    dm = build(METHOD_CONFIGS["predictive"], data_root=ns.data_root, seed=ns.seed)[1]
    clean, noisy, enh, names, secs, nfe = enhance_test_set(
        model, dm, limit=ns.num_eval, seed=ns.seed, sampler=sampler, steps=steps
    )
    how = f", {sampler} N={steps}" if sampler else ""
    label = f"shipped default ({type(model).__name__}{how}, pretrained)"
    extra = {"NFE": str(nfe), "RTF (CPU)": f"{secs / (sum(c.shape[0] for c in clean) / model.sample_rate):.2f}"}
    print(f"\nthe shipped default on {len(clean)} real-speech test mixtures, before any training here:")
    print(format_table(evaluate({label: enh}, clean, noisy), {label: extra}) + "\n", flush=True)
    return label, enh, extra, (clean, noisy, names)


def main(argv: list[str] | None = None) -> int:
    ns = _parser().parse_args(argv)
    out = ns.out
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    methods = [m for m in METHOD_CONFIGS if m in ns.methods]
    if "storm" in methods and "predictive" not in methods and not (out / "predictive.ckpt").is_file():
        methods.insert(0, "predictive")  # StoRM starts from the trained predictive baseline
    results: dict[str, list] = {}
    extra: dict[str, dict[str, str]] = {}
    ref = None
    steps_done: dict[str, int] = {}
    shipped = shipped_default_rows(ns)
    if shipped is not None:
        results[shipped[0]], extra[shipped[0]], ref = shipped[1], shipped[2], shipped[3]
    for method in methods:
        model, dm, steps_done[method] = train_method(method, ns, out)
        for suffix, options in DEMO_VARIANTS[method]:
            clean, noisy, enh, names, secs, nfe = enhance_test_set(
                model, dm, limit=ns.num_eval, seed=ns.seed, **options
            )
            ref = (clean, noisy, names)
            label = LABELS[method] + (f" ({suffix})" if suffix else "")
            results[label] = enh
            audio_s = sum(c.shape[0] for c in clean) / model.sample_rate
            extra[label] = {"NFE": str(nfe), "RTF (CPU)": f"{secs / audio_s:.2f}"}
    assert ref is not None
    _report(out, ns, ref, results, extra, steps_done)
    return 0


__all__ = ["DEMO_CROP", "DEMO_NETWORK", "DEMO_VARIANTS", "FEW_STEPS", "TRAINING", "build", "enhance_test_set", "main"]
