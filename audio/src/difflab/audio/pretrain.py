r"""The shipped default speech enhancer: ``python scripts/pretrain.py audio`` trains it and writes
``difflab/audio/pretrained/denoise.ckpt``, which ``enhance`` uses when it gets no ``--ckpt``.

Recipe (seeded, CPU, one torch thread), StoRM trained in its two stages:

* **data**: the full offline default denoising data (``DefaultSpeechDataModule``: 400 synthetic
  utterances of espeak-ng and flite voices in real noise recordings or coloured noise at -5 to 15 dB),
  random crops of :data:`RECIPE` ``crop`` samples;
* **stage 1, predictor** (:data:`PREDICTOR_SHARE` of the budget): the predictive NCSN++ baseline with
  a residual output ``y_hat = y + D(y)``, MSE on the compressed complex STFT, Adam, gradient clipping 1,
  an EMA of the weights (warm-up capped, decay :data:`RECIPE` ``ema``);
* **stage 2, regeneration** (the rest): StoRM's score network on the frozen predictor (the reference's
  "regen-freeze-denoiser"), OUVE process drifting towards ``y_hat``, the ``x0_residual``
  preconditioning with ``sigma_d`` the measured std of ``x0 - y_hat`` on training crops;
* **choice**: on :func:`~difflab.audio.heldout.selection_mixtures` (recorded prompts that the test
  split does not use, in held-out noise) the predictor alone and StoRM with each ``(sampler, steps)``
  of :data:`SAMPLER_CANDIDATES` are scored; the best mean PESQ decides what is shipped: StoRM with
  that sampling (recorded as the checkpoint's ``sampling``), or the predictive model alone if no
  sampling beats it;
* **evaluation**: PESQ / ESTOI / SI-SDR on the 24 real-speech test mixtures against the input, the
  Wiener filter and the spectral gate (:mod:`difflab.audio.baselines`).

The full training checkpoints are kept in ``<tmp>/difflab-audio-pretrain-<seed>/`` so that
:func:`finish` can be rerun on them.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from difflab.audio.inference import PRETRAINED_NAME as NAME  # the file name, without .ckpt

NETWORK: dict[str, Any] = {
    "channels": 16,
    "channel_mults": [1, 2, 2, 2],
    "num_res_blocks": 1,
    "attention_resolutions": [],
}
"""Both networks (predictor and score network): NCSN++-style, width 16, four levels, no attention."""
RECIPE: dict[str, Any] = {"crop": 63 * 128, "batch": 8, "lr": 1e-3, "ema": 0.999}
"""Training crop (samples: 64 STFT frames, 0.5 s), batch size, Adam learning rate, EMA decay."""
DEFAULT_MINUTES = 75.0
"""Training budget of both stages together."""
PREDICTOR_SHARE = 0.6
"""Share of the budget that trains the predictor; StoRM's score network gets the rest."""
SAMPLER_CANDIDATES: tuple[tuple[str, int], ...] = (
    ("probability_flow", 1),
    ("probability_flow", 2),
    ("probability_flow", 3),
    ("probability_flow", 5),
    ("pc", 5),
)
"""StoRM ``(sampler, steps)`` pairs compared with the predictor alone on the selection mixtures."""
SELECTION_COUNT = 12
"""Held-out real-speech mixtures the choice is made on."""
SECONDS_PER_STEP = 2.5
"""Expected time of one training step on the loaded 2-core CPU (measured when the shipped run started);
a stage's step cap is three times the steps its budget would then allow, so the time budget ends it."""
CONFIGS = {"predictive": "predictive_denoise", "storm": "storm_denoise"}


def work_dir(seed: int) -> Path:
    """Where the full training checkpoints of a run of ``seed`` are kept."""
    path = Path(tempfile.gettempdir()) / f"difflab-audio-pretrain-{seed}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_stage(method: str, seed: int, extra: list[str]):
    """``(model, datamodule)`` of ``method`` (``predictive`` or ``storm``) from its shipped config with
    the recipe's network, crops, batch and learning rate (``extra``: more command-line overrides)."""
    from difflab.audio.demo import build

    torch.manual_seed(seed)
    return build(
        CONFIGS[method],
        seed=seed,
        lr=RECIPE["lr"],
        batch_size=RECIPE["batch"],
        crop_samples=RECIPE["crop"],
        network=NETWORK,
        extra=extra,
    )


def train_stage(model, datamodule, *, seed: int, seconds: float, full: Path) -> tuple[int, float]:
    """Train for ``seconds`` (EMA, gradient clipping 1, a progress line every 15 s); the full
    checkpoint goes to ``full``. Returns ``(steps, wall minutes)``."""
    from difflab.core.lightning.train import train_briefly

    wall = train_briefly(
        model,
        datamodule,
        max_steps=max(3 * int(seconds / SECONDS_PER_STEP), 1),
        max_time_s=seconds,
        seed=seed,
        checkpoint=full,
        ema_decay=RECIPE["ema"],
        ema_warmup=True,
        progress_every=15.0,
        gradient_clip_val=1.0,
    )
    return int(model.global_step), wall / 60


@torch.no_grad()
def residual_std(predictive, datamodule, batches: int = 16, seed: int = 0) -> float:
    """``sigma_d`` for StoRM's ``x0_residual``: the std of ``x0 - y_hat`` (real and imaginary parts) of
    the trained predictor over ``batches`` training batches."""
    datamodule.setup("fit")
    torch.manual_seed(seed)
    loader = iter(datamodule.train_dataloader())
    predictive.eval()
    sq, count = 0.0, 0
    for _ in range(batches):
        batch = predictive.prepare_batch(next(loader))
        r = batch["x0"] - predictive.estimate(batch["y"])
        sq, count = sq + float(r.pow(2).sum()), count + r.numel()
    return float(np.sqrt(sq / count))


def choose(model, mixtures, seed: int = 0) -> tuple[tuple[str, int], dict[str, dict]]:
    """The option (predictor alone, or a StoRM sampling of :data:`SAMPLER_CANDIDATES`) with the best
    mean PESQ on ``mixtures`` ``[(clean, noisy, label)]``; returns it and every option's mean scores."""
    from difflab.audio.scoring import mean_table, model_system, option_label, score_systems

    options = [("predictor", 1), *SAMPLER_CANDIDATES]
    table, _ = score_systems({option_label(o): model_system(model, o, seed) for o in options}, mixtures)
    for name, row in table.items():
        print(f"selection {name}: " + ", ".join(f"{m} {v[0]:.3f}" for m, v in row.items()), flush=True)
    best = max(options, key=lambda o: table[option_label(o)]["pesq"][0])
    return best, mean_table(table)


def test_mixtures() -> list[tuple[Tensor, Tensor, str]]:
    """The test split of the offline default denoising data: 24 real-speech mixtures ``(clean, noisy, name)``."""
    from difflab.audio.data import DefaultSpeechDataModule

    dm = DefaultSpeechDataModule()
    dm.setup("test")
    return [(it["clean"], it["noisy"], it["name"]) for it in (dm.test_set[i] for i in range(len(dm.test_set)))]


def test_evaluation(model, option: tuple[str, int], seed: int = 0) -> dict[str, dict]:
    """Input, Wiener filter, spectral gate, the predictor and the chosen ``option`` on the test split's
    24 real-speech mixtures: ``{system: {metric: (mean, std, n)}}``."""
    from difflab.audio.metrics import format_table
    from difflab.audio.scoring import classical_systems, model_system, option_label, score_systems

    systems = {**classical_systems(), "predictor": model_system(model, ("predictor", 1), seed)}
    if option[0] != "predictor":
        systems[option_label(option)] = model_system(model, option, seed)
    table, _ = score_systems(systems, test_mixtures())
    print(format_table(table), flush=True)
    return table


def clear_predictor_init(full: Path) -> None:
    """Drop the (temporary) ``predictor_init`` path from a StoRM checkpoint's hyperparameters: the
    predictor's weights are in the state dict."""
    ckpt = torch.load(full, map_location="cpu", weights_only=False)
    hp = ckpt.get("hyper_parameters", {})
    target = hp.get("init_args", hp)
    if target.get("predictor_init"):
        target["predictor_init"] = None
        torch.save(ckpt, full)


def finish(out_dir: Path, seed: int, meta: dict[str, Any]) -> Path:
    """Choose between the trained predictor and StoRM samplings on the selection mixtures, score the
    choice on the test split and write ``out_dir/denoise.ckpt`` from the kept full checkpoints."""
    from difflab.audio.data.datamodule import default_data_root
    from difflab.audio.heldout import selection_mixtures, test_speech_names
    from difflab.audio.inference import load_model
    from difflab.audio.scoring import mean_table
    from difflab.core.lightning.pretrained import write_pretrained

    work = work_dir(seed)
    clear_predictor_init(work / "storm.ckpt")
    storm = load_model(work / "storm.ckpt")
    mixtures = selection_mixtures(SELECTION_COUNT, exclude=test_speech_names(default_data_root("denoise")), seed=seed)
    best, selection = choose(storm, mixtures, seed)
    print(f"chosen on the selection mixtures: {best[0]} {best[1]}", flush=True)
    table = test_evaluation(storm, best, seed)
    shipped = "predictive" if best[0] == "predictor" else "storm"
    model = load_model(work / f"{shipped}.ckpt")
    meta = {
        **meta,
        "model": shipped,
        "data": {
            "train": "offline default denoising data, 400 synthetic utterances (espeak-ng, flite) in noise",
            "selection": f"{SELECTION_COUNT} recorded prompts not in the test split, held-out noise, -5 to 15 dB",
            "test": "the test split's 24 real-speech mixtures",
        },
        "evaluation": {"selection": selection, "test": mean_table(table)},
        "sampling": {} if shipped == "predictive" else {"sampler": best[0], "steps": best[1]},
    }
    return write_pretrained(work / f"{shipped}.ckpt", model, Path(out_dir) / f"{NAME}.ckpt", meta=meta)


def pretrain(out_dir: Path, *, seed: int = 0, minutes: float | None = None) -> list[Path]:
    """Train the predictor and StoRM's score network for ``minutes`` together (default
    :data:`DEFAULT_MINUTES`), choose and evaluate (:func:`finish`) and write ``out_dir/denoise.ckpt``."""
    torch.set_num_threads(1)
    budget = (DEFAULT_MINUTES if minutes is None else minutes) * 60
    work = work_dir(seed)
    predictive, dm = build_stage("predictive", seed, ["--model.init_args.residual=true"])
    print(f"stage 1: predictor, {budget * PREDICTOR_SHARE / 60:.1f} min", flush=True)
    steps_p, wall_p = train_stage(
        predictive, dm, seed=seed, seconds=budget * PREDICTOR_SHARE, full=work / "predictive.ckpt"
    )
    sigma = residual_std(predictive, dm, seed=seed)
    print(f"predictor: {steps_p} steps in {wall_p:.1f} min; residual std {sigma:.4f}", flush=True)
    storm_args = [
        "--model.init_args.training_mode=frozen_predictor",
        "--model.init_args.predictor_residual=true",
        "--model.init_args.prediction=x0_residual",
        f"--model.init_args.sigma_data={sigma:.5f}",
        f"--model.init_args.predictor_init={work / 'predictive.ckpt'}",
    ]
    storm, dm = build_stage("storm", seed, storm_args)
    remaining = max(budget - wall_p * 60, budget * (1 - PREDICTOR_SHARE) / 2)  # stage 1 may overrun its share
    print(f"stage 2: StoRM score network, {remaining / 60:.1f} min", flush=True)
    steps_s, wall_s = train_stage(storm, dm, seed=seed, seconds=remaining, full=work / "storm.ckpt")
    print(f"StoRM: {steps_s} steps in {wall_s:.1f} min", flush=True)
    command = "python scripts/pretrain.py audio" + (f" --seed {seed}" if seed else "")
    command += f" --minutes {minutes:g}" if minutes is not None else ""
    meta = {
        "command": command,
        "seed": seed,
        "steps": {"predictor": steps_p, "storm": steps_s},
        "wall_minutes": {"predictor": round(wall_p, 2), "storm": round(wall_s, 2)},
        "recipe": {**RECIPE, "network": NETWORK, "sigma_data": round(sigma, 5), "predictor_share": PREDICTOR_SHARE},
    }
    (work / "meta.json").write_text(json.dumps(meta, indent=1))
    return [finish(Path(out_dir), seed, meta)]


__all__ = [
    "DEFAULT_MINUTES",
    "NAME",
    "NETWORK",
    "RECIPE",
    "SAMPLER_CANDIDATES",
    "choose",
    "finish",
    "pretrain",
    "test_evaluation",
    "test_mixtures",
]
