"""``difflab-vision demo``: train ResShift briefly on the default photographs, upscale held-out images.

Steps (CPU, a few minutes):

1. build ResShift-4 (x2, small U-Net) and the photo DataModule from the shipped config
   ``resshift4_photos_x2`` through the command line's parser, and train it for ``--max_steps`` steps;
2. super-resolve the centred crops of the held-out photographs (coffee, rocket, retina, china) and
   print PSNR / SSIM (Y, border = scale; and RGB) beside the bicubic baseline;
3. write a figure of crops (LR, bicubic, ResShift, HR) and a whole held-out photograph upscaled
   with overlapping tiles (the ``upscale`` path) beside its bicubic version.

Every file written is announced on a line ``artifact: <path> | <what it shows>``.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from difflab.core.figures import save_figure
from difflab.core.progress import artifact
from difflab.core.tables import markdown_table
from difflab.core.verbs import VerbParser, seed_option
from difflab.vision.evaluate import BRIEF_TRAINING


def _table(rows: list[tuple[str, dict[str, float], float | None]]) -> str:
    cells = [[name, m["psnr_y"], m["ssim_y"], m["psnr_rgb"], m["ssim_rgb"], t] for name, m, t in rows]
    return markdown_table(
        cells, ["method", "PSNR-Y", "SSIM-Y", "PSNR-RGB", "SSIM-RGB", "time s"], ["", ".2f", ".4f", ".2f", ".4f", ".2f"]
    )


def train_resshift4(out: Path, max_steps: int, seed: int, eval_size: int):
    """The demo's ResShift-4 trained for ``max_steps`` steps and saved: ``(model, datamodule, seconds, ckpt)``."""
    from lightning.pytorch.callbacks import TQDMProgressBar

    from difflab.core.lightning import train_briefly
    from difflab.vision.evaluate import BRIEF_TRAINING, build_resshift4

    model, dm = build_resshift4(steps=max_steps, seed=seed, eval_size=eval_size)
    print(f"training ResShift-4 (x{dm.scale}) for {max_steps} steps on the default photographs ...")
    ckpt = out / f"resshift4_x{dm.scale}.ckpt"
    train_s = train_briefly(
        model,
        dm,
        max_steps=max_steps,
        seed=seed,
        checkpoint=ckpt,
        ema_decay=BRIEF_TRAINING["ema_decay"],
        default_root_dir=str(out),
        enable_progress_bar=True,
        callbacks=[TQDMProgressBar()],  # tqdm, the progress library of every package
    )
    model.eval()
    return model, dm, train_s, ckpt


def _print_heldout(res: dict, model, names: list[str], eval_size: int, scale: int, max_steps: int, train_s: float):
    print(
        f"\nheld-out photographs ({', '.join(names)}; centred {eval_size} px crops, x{scale} bicubic degradation), "
        f"after {max_steps} training steps ({train_s:.0f} s):"
    )
    print(
        _table(
            [("bicubic", res["bicubic"], None), (f"ResShift-4 ({model.sample_steps} NFE)", res["sr"], res["time_s"])]
        )
    )
    print(
        "per image PSNR-Y (bicubic -> ResShift): "
        + ", ".join(
            f"{n} {b:.2f} -> {s:.2f}"
            for n, b, s in zip(names, res["per_image_bicubic_psnr_y"], res["per_image_psnr_y"])
        )
    )


def _crops_png(png: Path, res: dict, dm, names: list[str]) -> Path:
    from difflab.vision.figures import crops_figure
    from difflab.vision.metrics import from_model_range

    batch = next(iter(dm.val_dataloader()))
    n = len(names)
    fig = crops_figure(
        lr=from_model_range(batch["lr"][:n]),
        bicubic=from_model_range(batch["y"][:n]),
        sr={"ResShift-4": res["outputs"][:n]},
        hr=from_model_range(batch["x0"][:n]),
        names=names,
        psnrs={"bicubic": res["per_image_bicubic_psnr_y"], "ResShift-4": res["per_image_psnr_y"]},
    )
    return save_figure(fig, png, dpi=90)


def _tiled_png(png: Path, model, scale: int, seed: int) -> Path:
    """A quarter of the held-out 'rocket' photograph through the tiled upscale path, beside bicubic and HR."""
    from difflab.vision.data.degradations import bicubic_downsample, bicubic_upsample
    from difflab.vision.data.photos import load_photos
    from difflab.vision.figures import images_row
    from difflab.vision.metrics import from_model_range
    from difflab.vision.upscale import model_sr_fn, upscale_tiled

    name, rgb = [p for p in load_photos("heldout") if p[0] == "rocket"][0]
    hr = torch.from_numpy(rgb).permute(2, 0, 1)
    h, w = (hr.shape[1] // (2 * scale)) * scale, (hr.shape[2] // (2 * scale)) * scale  # a quarter of the photo
    hr = hr[:, :h, :w]
    lr = bicubic_downsample(hr, scale)
    t0 = time.perf_counter()
    with torch.no_grad():
        sr = upscale_tiled(model_sr_fn(model, scale, seed=seed), lr[None] * 2 - 1, scale, tile=48, overlap=12)
    tile_s = time.perf_counter() - t0
    sr01 = from_model_range(sr)[0]
    bic = bicubic_upsample(lr[None], scale)[0].clamp(0, 1)
    fig = images_row([(bic, "bicubic"), (sr01, f"ResShift-4, tiled 48 px / overlap 12 ({tile_s:.0f} s)"), (hr, "HR")])
    return save_figure(fig, png, dpi=90)


def run_demo(out: Path, *, max_steps: int | None = None, seed: int = 0, eval_size: int = 96) -> dict:
    """Train ResShift-4, print held-out metrics, write the crops and tiled figures and the checkpoint."""
    from difflab.vision.data.photos import HELDOUT_PHOTOS
    from difflab.vision.evaluate import evaluate_heldout

    max_steps = BRIEF_TRAINING["steps"] if max_steps is None else max_steps
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)  # one intra-op thread: a shared 2-core machine thrashes with more
    model, dm, train_s, ckpt = train_resshift4(out, max_steps, seed, eval_size)
    scale = dm.scale
    res = evaluate_heldout(lambda y, g: model.super_resolve(y, generator=g).sample, dm, scale, seed=seed)
    names = list(HELDOUT_PHOTOS)
    _print_heldout(res, model, names, eval_size, scale, max_steps, train_s)
    crops_png = _crops_png(out / "crops.png", res, dm, names)
    tiled_png = _tiled_png(out / "tiled_rocket.png", model, scale, seed)
    artifact(crops_png, "held-out crops: LR, bicubic, ResShift-4 and HR with PSNR-Y per image")
    artifact(
        tiled_png,
        f"a quarter of the held-out 'rocket' photo upscaled x{scale} with overlapping tiles, beside bicubic and HR",
    )
    artifact(ckpt, "the trained ResShift-4 checkpoint (use with difflab-vision upscale --ckpt)")
    return {"metrics": res, "train_s": train_s, "ckpt": ckpt}


def main(argv: list[str] | None = None) -> int:
    p = VerbParser(prog="difflab-vision demo", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("outputs/demo/vision"), help="output folder")
    p.add_argument("--max_steps", type=int, default=BRIEF_TRAINING["steps"], help="training steps")
    seed_option(p, "the training and the sampling")
    ns = p.parse_args(argv)
    run_demo(ns.out, max_steps=ns.max_steps, seed=ns.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
