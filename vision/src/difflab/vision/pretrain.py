r"""The shipped default upscalers: ``python scripts/pretrain.py vision`` trains them and writes
``difflab/vision/pretrained/resshift_x4.ckpt`` and ``resshift_x2.ckpt``, which ``upscale`` uses when it
gets no ``--ckpt`` (the file of the requested ``--scale``; x4 without one).

Recipe (seeded, CPU, one torch thread), per scale:

* **model**: ResShift, 4-step chain (v3 schedule, ``p = 0.3``, ``min_noise = 0.2``) with kappa 0.5
  (the paper's 2 was set for VQGAN latents; :data:`RECIPE`), residual head (``x0_hat = y0 + f``,
  zero-initialised, so an untrained model returns bicubic exactly), L1 loss on the ``x0``
  prediction, a small convolutional U-Net (16 channels, two levels, no attention, so tiles of any
  size cost memory linear in their pixels);
* **data**: random HR crops of every training photograph of the offline default (19 photographs in
  the scikit-image, scikit-learn and matplotlib wheels; flips and rotations), bicubic degradation,
  flat and textured regions as they come; the held-out photographs (coffee, rocket, the retina crop,
  china) are never cropped for training;
* **training**: Adam with a cosine decay to ``lr_min``, EMA of the weights, until the step or time
  budget ends;
* **evaluation**: PSNR-Y / SSIM-Y (BasicSR protocol) against bicubic and Lanczos on centred crops of
  the held-out photographs, plus a flat colour and a smooth colour gradient, where the output must
  stay within a small error of bicubic (no grain). The sampler and step count are chosen on the
  held-out photographs among :data:`SAMPLER_CANDIDATES` and recorded as the checkpoint's
  ``sampling``.
"""

from __future__ import annotations

import math
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from difflab.core.tables import markdown_header, markdown_row

NAMES: dict[int, str] = {4: "resshift_x4", 2: "resshift_x2"}
"""Shipped file name (without ``.ckpt``) per SR factor."""
DEFAULT_SCALE = 4
"""The factor ``upscale`` uses without ``--scale`` and without ``--ckpt``."""
RECIPE: dict[str, Any] = dict(
    kappa=0.5, channels=16, channel_mults=(1, 2), patch=48, batch=16, lr=2e-3, lr_min=1e-4, ema=0.999, loss="l1"
)
"""Hyper-parameters of the recipe (``patch``: HR crop in pixels)."""
DEFAULT_MINUTES = 40.0
"""Training budget per factor (the factors train in parallel, one process and one torch thread each)."""
SECONDS_PER_STEP = 2.5
"""Expected time of one step on the loaded 2-core CPU; the cosine decay lasts ``budget / SECONDS_PER_STEP``
steps (960 for 40 min). The shipped run averaged 1.6 s per step (1,485 steps), so its last third ran at
the floor rate ``lr_min``."""
SAMPLER_CANDIDATES: tuple[tuple[str, int], ...] = (("ddpm", 4), ("ddpm", 2), ("ddim", 1))
"""``(sampler, steps)`` pairs compared on the held-out photographs."""
EVAL_SIZE = 256
"""Centred HR crop of every held-out photograph (the retina crop is 256 x 256)."""
MAX_STEPS = 1_000_000
"""Step cap; the time budget ends a run first (its progress line counts against twice the expected steps)."""


def build_model(scale: int, seed: int, total_steps: int, **overrides: Any):
    """The (untrained) ResShift model of the recipe for factor ``scale`` (``overrides`` change :data:`RECIPE`)."""
    from difflab.vision.models.resshift import ResShiftSR
    from difflab.vision.networks import UNet

    r = {**RECIPE, **overrides}
    torch.manual_seed(seed)
    args = dict(
        in_channels=6, out_channels=3, channels=r["channels"], channel_mults=list(r["channel_mults"]),
        num_res_blocks=1, attention_levels=[], mid_attention=False,
    )  # fmt: skip
    network = UNet(**{**args, "channel_mults": tuple(args["channel_mults"])})
    schedule = partial(cosine, total=total_steps, floor=r["lr_min"] / r["lr"])
    model = ResShiftSR(
        network,
        scale=scale,
        num_steps=4,
        kappa=r["kappa"],
        p=0.3,
        min_noise=0.2,
        max_noise=0.99,
        optimizer=partial(torch.optim.Adam, lr=r["lr"]),
        lr_scheduler=partial(torch.optim.lr_scheduler.LambdaLR, lr_lambda=schedule),
        sampler="ddpm",
        loss_type=r["loss"],
    )
    model.network_args = args  # recorded in the shipped checkpoint (finish)
    return model


def cosine(step: int, total: int, floor: float = 0.05) -> float:
    """Learning-rate factor: ``floor + (1 - floor) (1 + cos(pi min(step / total, 1))) / 2``."""
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(step / max(total, 1), 1.0)))


def pretrain_data(scale: int, seed: int, **overrides: Any):
    """The training data: random crops of the default photographs (``SRDataModule(source="photos")``)."""
    from difflab.vision.data.datamodule import SRDataModule

    r = {**RECIPE, **overrides}
    return SRDataModule(
        "photos", scale=scale, patch_size=r["patch"], batch_size=r["batch"], samples_per_epoch=r["batch"] * 10**6,
        eval_size=EVAL_SIZE, seed=seed,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------------- evaluation
def synthetic_images(size: int = 128) -> dict[str, Tensor]:
    """A flat colour and a smooth colour gradient, ``(3, size, size)`` in [0, 1]: images on which any
    upscaler must stay close to bicubic (there is no detail to add, only noise to avoid)."""
    u = torch.linspace(0, 1, size, dtype=torch.float32)
    yy, xx = torch.meshgrid(u, u, indexing="ij")
    flat = torch.tensor([0.55, 0.42, 0.3]).view(3, 1, 1).expand(3, size, size).clone()
    gradient = torch.stack([0.2 + 0.6 * xx, 0.3 + 0.4 * yy, 0.7 - 0.5 * (xx + yy) / 2])
    return {"flat": flat, "gradient": gradient}


def evaluation_images(scale: int) -> list[tuple[str, Tensor, Tensor]]:
    """``[(name, hr (3, H, W), lr (3, H/s, W/s))]`` in [0, 1]: centred :data:`EVAL_SIZE` crops of the
    held-out photographs and the synthetic flat / gradient images, LR by the package's bicubic
    downsampling, quantised to 8 bits as an image file would be."""
    from difflab.vision.data.degradations import bicubic_downsample
    from difflab.vision.data.io import to_rgb_array
    from difflab.vision.data.photos import HELDOUT_PHOTOS

    out = []
    items = [(n, torch.from_numpy(to_rgb_array(f(), n).rgb).permute(2, 0, 1)) for n, f in HELDOUT_PHOTOS.items()]
    items += list(synthetic_images().items())
    for name, hr in items:
        h, w = hr.shape[-2:]
        e = min(EVAL_SIZE, h, w) // scale * scale
        top, left = (h - e) // 2, (w - e) // 2
        hr = (hr[:, top : top + e, left : left + e] * 255).round() / 255
        lr = (bicubic_downsample(hr, scale, name=name) * 255).round() / 255
        out.append((name, hr, lr))
    return out


def lanczos_upsample(lr: Tensor, scale: int) -> Tensor:
    """Pillow's Lanczos (a = 3) ``x scale`` upsampling of ``lr`` ``(3, h, w)`` in [0, 1] (8-bit)."""
    from PIL import Image

    arr = (lr.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    im = Image.fromarray(arr).resize((arr.shape[1] * scale, arr.shape[0] * scale), Image.Resampling.LANCZOS)
    return torch.from_numpy(np.asarray(im, dtype=np.float32) / 255).permute(2, 0, 1)


@torch.no_grad()
def model_upsample(model, lr: Tensor, scale: int, *, sampler: str, steps: int, seed: int = 0) -> Tensor:
    """The model's SR estimate of ``lr`` ``(3, h, w)`` in [0, 1], returned in [0, 1]."""
    from difflab.vision.data.degradations import bicubic_upsample

    y = bicubic_upsample(lr[None] * 2 - 1, scale)
    g = torch.Generator().manual_seed(seed)
    return ((model.super_resolve(y, sampler=sampler, steps=steps, generator=g).sample[0] + 1) / 2).clamp(0, 1)


def score(sr: Tensor, hr: Tensor, scale: int) -> dict[str, float]:
    """PSNR-Y, SSIM-Y (BasicSR protocol, border = scale) and the largest absolute error in 8-bit levels."""
    from difflab.vision.metrics import sr_metrics

    m = sr_metrics(sr[None].clamp(0, 1), hr[None], scale)
    return {"psnr_y": float(m["psnr_y"][0]), "ssim_y": float(m["ssim_y"][0])}


def grain(sr: Tensor, bicubic: Tensor) -> float:
    """Mean absolute difference of ``sr`` from the bicubic result, in 8-bit levels (both in [0, 1])."""
    return float(((sr * 255).round() - (bicubic * 255).round()).abs().mean())


def evaluate(model, scale: int, *, samplings: list[tuple[str, int]], seed: int = 0) -> dict[str, dict[str, Any]]:
    """``{image: {method: {"psnr_y", "ssim_y", "grain"}}}`` of bicubic, Lanczos and the model with each
    ``(sampler, steps)`` of ``samplings`` (method ``"resshift ddim 4"``, ...), on :func:`evaluation_images`."""
    from difflab.vision.data.degradations import bicubic_upsample

    out: dict[str, dict[str, Any]] = {}
    model.eval()
    for name, hr, lr in evaluation_images(scale):
        bicubic = bicubic_upsample(lr[None], scale)[0].clamp(0, 1)
        rows = {"bicubic": score(bicubic, hr, scale), "lanczos": score(lanczos_upsample(lr, scale), hr, scale)}
        rows["lanczos"]["grain"] = grain(lanczos_upsample(lr, scale), bicubic)
        for sampler, steps in samplings:
            sr = model_upsample(model, lr, scale, sampler=sampler, steps=steps, seed=seed)
            rows[f"resshift {sampler} {steps}"] = {**score(sr, hr, scale), "grain": grain(sr, bicubic)}
        out[name] = rows
        print(f"evaluated {name}", flush=True)
    return out


PHOTOS = ("coffee", "rocket", "retina_crop", "china")
"""The held-out photographs of the evaluation (the others are synthetic)."""


def mean_gain(result: dict[str, dict[str, Any]], method: str, images=PHOTOS) -> float:
    """Mean PSNR-Y gain of ``method`` over bicubic on ``images``, in dB."""
    return float(np.mean([result[i][method]["psnr_y"] - result[i]["bicubic"]["psnr_y"] for i in images]))


def format_evaluation(result: dict[str, dict[str, Any]]) -> str:
    """Markdown table: one row per method, PSNR-Y / SSIM-Y per image and the mean gain over bicubic."""
    images = list(result)
    methods = list(next(iter(result.values())))
    lines = [markdown_header(["method", *images, "mean gain, photos (dB)"])]
    for m in methods:
        cells = [f"{result[i][m]['psnr_y']:.2f} / {result[i][m]['ssim_y']:.4f}" for i in images]
        lines.append(markdown_row([m, *cells, f"{mean_gain(result, m):+.2f}"]))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------- recipe
def train_one(scale: int, *, seed: int, minutes: float, full: Path, **overrides: Any):
    """Train the recipe's model for factor ``scale`` for ``minutes``; its full checkpoint goes to ``full``.
    Returns ``(model, steps, wall_minutes)``."""
    from difflab.core.lightning.train import train_briefly

    r = {**RECIPE, **overrides}
    total = max(int(minutes * 60 / SECONDS_PER_STEP), 1)
    model = build_model(scale, seed, total, **overrides)
    data = pretrain_data(scale, seed, **overrides)
    wall = train_briefly(
        model,
        data,
        max_steps=min(MAX_STEPS, 2 * total),
        max_time_s=minutes * 60,
        seed=seed,
        checkpoint=full,
        ema_decay=r["ema"],
        ema_warmup=True,
        progress_every=15.0,
    )
    return model, int(model.global_step), wall / 60


def finish(model, scale: int, full: Path, out_dir: Path, meta: dict[str, Any]) -> Path:
    """Choose the sampling on the held-out photographs, evaluate, and write the shipped checkpoint."""
    from difflab.core.lightning.pretrained import write_pretrained

    result = evaluate(model, scale, samplings=list(SAMPLER_CANDIDATES), seed=int(meta.get("seed", 0)))
    print(format_evaluation(result), flush=True)
    best = max(SAMPLER_CANDIDATES, key=lambda c: mean_gain(result, f"resshift {c[0]} {c[1]}"))
    print(f"x{scale}: recommended sampling {best[0]} {best[1]}", flush=True)
    meta = {
        **meta,
        "data": {
            "train": "random crops of the 19 training photographs of the offline default (bicubic degradation)",
            "heldout": f"centred {EVAL_SIZE} px crops of coffee, rocket, retina crop, china; flat and gradient images",
        },
        "evaluation": result,
        "sampling": {"sampler": best[0], "steps": best[1]},
    }
    network = {"class_path": "difflab.vision.networks.UNet", "init_args": model.network_args}
    return write_pretrained(full, model, Path(out_dir) / f"{NAMES[scale]}.ckpt", meta=meta, network=network)


def pretrain_scale(out_dir: Path, scale: int, seed: int, minutes: float | None) -> Path:
    """Train, evaluate and write the default of factor ``scale`` (``minutes``; default :data:`DEFAULT_MINUTES`)."""
    torch.set_num_threads(1)
    budget = DEFAULT_MINUTES if minutes is None else minutes
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        full = Path(tmp) / "full.ckpt"
        model, steps, wall = train_one(scale, seed=seed, minutes=budget, full=full)
        print(f"x{scale}: trained {steps} steps in {wall:.1f} min", flush=True)
        command = f"python scripts/pretrain.py vision --seed {seed}" + (
            f" --minutes {minutes:g}" if minutes is not None else ""
        )
        meta = {"command": command, "seed": seed, "steps": steps, "wall_minutes": round(wall, 2), "recipe": RECIPE}
        return finish(model, scale, full, out_dir, meta)


def pretrain(
    out_dir: Path, *, seed: int = 0, minutes: float | None = None, scales: tuple[int, ...] = (4, 2)
) -> list[Path]:
    """Train, evaluate and write the default of each factor in ``scales``, in parallel (one process per
    factor, one torch thread each; ``minutes`` each, default :data:`DEFAULT_MINUTES`); returns the paths."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if len(scales) == 1:
        return [pretrain_scale(out_dir, scales[0], seed, minutes)]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=len(scales), mp_context=context) as pool:
        jobs = [pool.submit(pretrain_scale, out_dir, scale, seed, minutes) for scale in scales]
        return [job.result() for job in jobs]


__all__ = [
    "DEFAULT_SCALE",
    "NAMES",
    "RECIPE",
    "build_model",
    "evaluate",
    "evaluation_images",
    "format_evaluation",
    "lanczos_upsample",
    "mean_gain",
    "pretrain",
    "pretrain_scale",
    "synthetic_images",
]
