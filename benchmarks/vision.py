"""difflab-vision benchmark: ResShift-4, ResShift-15, SR3 (DDIM 10 / 50, DPM-Solver++ 10), InvSR-style
1- and 3-step starts and SAM-DiffSR-style noise, side by side in one process on the held-out default
photographs.

Each model is trained for ``--steps`` Adam steps on random crops of the training photographs (same
data, network size and optimiser for all; the InvSR-style noise predictor is trained through the
frozen SR3 model), then every variant super-resolves the centred crops of the held-out photographs.
Printed (as a Markdown table): PSNR / SSIM on Y (border = scale), the mean PSNR-Y of the three
natural photographs, the gain over bicubic and the wall time, with the time ratio to SR3 + DDIM-50
(the many-step diffusion baseline).

    python benchmarks/vision.py                       # x2, 300 steps per model, CPU
    python benchmarks/vision.py --steps 2000 --device cuda --figure vision/docs/benchmark_crops.png
    python benchmarks/vision.py --field                # time and peak memory of upscale at 512 and 2048 px

``--field``: wall time and peak resident memory (RSS) of ``upscale``'s tiled path on a 512 x 512 and a
2048 x 2048 photograph-like input at x2 and x4 (outputs up to 8192 x 8192), each in a fresh process,
with a small ResShift network (8 channels, one level, untrained: its zero head returns bicubic, the
compute per tile is the real one) and ``--field_steps`` sampler steps; the memory of the float32
output image is printed beside it.
"""

from __future__ import annotations

import argparse
import platform
from datetime import date
from functools import partial

import torch

from difflab.core.progress import artifact
from difflab.core.tables import markdown_table

REFERENCE = "SR3 DDIM-50"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=int, default=2)
    p.add_argument("--steps", type=int, default=300, help="training steps per model")
    p.add_argument(
        "--invsr_steps", type=int, default=None, help="training steps of the InvSR predictor (default steps // 2)"
    )
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--patch", type=int, default=32)
    p.add_argument("--eval_size", type=int, default=96)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--figure", default=None, help="write a crops figure of the main variants here")
    p.add_argument("--field", action="store_true", help="time and peak memory of upscale on large inputs instead")
    p.add_argument("--field_sizes", type=int, nargs="+", default=[512, 2048], help="input sizes of --field (px)")
    p.add_argument("--field_steps", type=int, default=1, help="sampler steps of --field")
    p.add_argument("--field_tile", type=int, default=128, help="tile size of --field (LR px)")
    return p


def _data(a: argparse.Namespace):
    from difflab.vision.data import SRDataModule

    return SRDataModule(
        scale=a.scale,
        patch_size=a.patch,
        batch_size=a.batch_size,
        eval_size=a.eval_size,
        eval_batch_size=4,
        samples_per_epoch=a.batch_size * a.steps,
    )


def _fit(model, steps: int, a: argparse.Namespace) -> float:
    from difflab.core.lightning.train import train_briefly

    accelerator = "gpu" if a.device.startswith("cuda") else "cpu"
    seconds = train_briefly(model, _data(a), max_steps=steps, seed=a.seed, accelerator=accelerator)
    model.to(a.device).eval()
    return seconds


def train_models(a: argparse.Namespace) -> tuple[dict, dict[str, float]]:
    """Every compared model trained on the same data with the same network size and optimiser (the
    InvSR-style predictor through the frozen SR3): ``(models by name, training seconds by name)``."""
    from difflab.vision.models import SR3, InvSRStart, ResShiftSR, SAMDiffSR
    from difflab.vision.networks import UNet

    opt = partial(torch.optim.Adam, lr=a.lr)

    def net(c=6):
        return UNet.from_preset("small", in_channels=c)

    models = {
        "ResShift-4": ResShiftSR(net(), scale=a.scale, num_steps=4, kappa=1.0, min_noise=0.2, optimizer=opt),
        "ResShift-15": ResShiftSR(net(), scale=a.scale, num_steps=15, kappa=1.0, min_noise=0.04, optimizer=opt),
        "SR3": SR3(net(), scale=a.scale, num_train_steps=1000, optimizer=opt),
        "SAM-DiffSR-style": SAMDiffSR(
            net(), scale=a.scale, num_train_steps=100, region_px=64, prediction="x0", optimizer=opt
        ),
    }
    train_s = {name: _fit(m, a.steps, a) for name, m in models.items()}
    models["InvSR-style"] = InvSRStart(
        net(3), teacher=models["SR3"], scale=a.scale, start_t=0.2, optimizer=partial(torch.optim.Adam, lr=a.lr / 2)
    )
    train_s["InvSR-style"] = _fit(models["InvSR-style"], a.invsr_steps or a.steps // 2, a)
    return models, train_s


def evaluate_variants(models: dict, a: argparse.Namespace) -> dict[str, tuple[int, dict]]:
    """``{variant: (NFE, held-out results)}`` of every sampler setting compared."""
    from difflab.vision.evaluate import evaluate_heldout

    def sr(model, **kw):
        def fn(y, g):
            gen = torch.Generator(a.device).manual_seed(a.seed)
            return model.super_resolve(y.to(a.device), generator=gen, **kw).sample.cpu()

        return fn

    variants = [
        ("ResShift-4", 4, sr(models["ResShift-4"])),
        ("ResShift-15", 15, sr(models["ResShift-15"])),
        ("SR3 DDIM-10", 10, sr(models["SR3"], steps=10)),
        ("SR3 DDIM-50", 50, sr(models["SR3"], steps=50)),
        ("SR3 DPM-Solver++-10", 10, sr(models["SR3"], steps=10, sampler="dpm_solver")),
        ("InvSR-style 1 step", 1, sr(models["InvSR-style"], steps=1)),
        ("InvSR-style 3 steps", 3, sr(models["InvSR-style"], steps=3)),
        ("SAM-DiffSR-style DDIM-10", 10, sr(models["SAM-DiffSR-style"], steps=10)),
    ]
    return {name: (nfe, evaluate_heldout(fn, _data(a), a.scale, seed=a.seed)) for name, nfe, fn in variants}


def results_table(results: dict[str, tuple[int, dict]], nat: list[int]) -> str:
    """The Markdown table: bicubic first, then every variant, times relative to :data:`REFERENCE`."""
    ref = results[REFERENCE][1]
    bic = ref["bicubic"]
    nat_b = sum(ref["per_image_bicubic_psnr_y"][i] for i in nat) / len(nat)
    rows = [["bicubic", "0", f"{bic['psnr_y']:.2f}", f"{bic['ssim_y']:.4f}", f"{nat_b:.2f}", "0.00", "-", "-"]]
    for name, (nfe, r) in results.items():
        nat_p = sum(r["per_image_psnr_y"][i] for i in nat) / len(nat)
        rows.append(
            [
                name,
                str(nfe),
                f"{r['sr']['psnr_y']:.2f}",
                f"{r['sr']['ssim_y']:.4f}",
                f"{nat_p:.2f}",
                f"{r['sr']['psnr_y'] - bic['psnr_y']:+.2f}",
                f"{r['time_s']:.2f}",
                f"{r['time_s'] / ref['time_s']:.3f}",
            ]
        )
    head = ["variant", "NFE", "PSNR-Y", "SSIM-Y", "PSNR-Y natural", "PSNR-Y gain", "time s", f"time / {REFERENCE}"]
    return markdown_table(rows, head, align="l")


def crops_png(path: str, results: dict[str, tuple[int, dict]], names: list[str], a: argparse.Namespace) -> None:
    from difflab.core.figures import save_figure
    from difflab.vision.figures import crops_figure
    from difflab.vision.metrics import from_model_range

    ref = results[REFERENCE][1]
    batch = next(iter(_data(a).val_dataloader()))
    show = ["ResShift-4", "ResShift-15", "SR3 DDIM-50", "InvSR-style 1 step"]
    fig = crops_figure(
        lr=None,
        bicubic=from_model_range(batch["y"]),
        hr=from_model_range(batch["x0"]),
        sr={k: results[k][1]["outputs"] for k in show},
        names=names,
        psnrs={"bicubic": ref["per_image_bicubic_psnr_y"], **{k: results[k][1]["per_image_psnr_y"] for k in show}},
    )
    save_figure(fig, path, dpi=60)
    artifact(path, "held-out crops: bicubic, ResShift-4/15, SR3 DDIM-50, InvSR-style 1 step, HR")


FIELD_CODE = """
import resource, sys, time, torch
torch.set_num_threads(int(sys.argv[6]))
from pathlib import Path
from difflab.core.progress import StepProgress
from difflab.vision.inference import upscale_image
from difflab.vision.pretrain import build_model
from difflab.vision.upscale import model_sr_fn, tile_count
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
scale, steps, tile = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
model = build_model(scale, 0, 1, channels=8, channel_mults=(1,)).eval()
from PIL import Image
w, h = Image.open(src).size
ticks = StepProgress("upscale", tile_count(h, w, tile, 16), "tiles", every=30.0)
sr = model_sr_fn(model, scale, steps=steps, sampler="ddim")
def fn(t, i):
    out = sr(t, i)
    ticks.update(t.shape[0])
    return out
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
upscale_image(fn, src, dst, scale, tile=tile, overlap=16, tile_batch=4)
ticks.close()
print("RESULT", time.perf_counter() - t0, before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def field_size(a: argparse.Namespace) -> None:
    """Wall time and peak RSS of the tiled upscale of 512 and 2048 px inputs at x2 and x4 (fresh processes)."""
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    import numpy as np
    from PIL import Image

    from difflab.core.tables import markdown_table
    from difflab.vision.data.photos import TRAIN_PHOTOS
    from difflab.vision.upscale import tile_count

    base = np.asarray(Image.fromarray(TRAIN_PHOTOS["astronaut"]()).convert("RGB"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in a.field_sizes:
            src = Path(tmp) / f"in_{size}.png"
            Image.fromarray(np.resize(base, (size, size, 3)) if size > 512 else base[:size, :size]).save(src)
            for scale in (2, 4):
                dst = Path(tmp) / f"out_{size}_x{scale}.png"
                args = [str(src), str(dst), str(scale), str(a.field_steps), str(a.field_tile), str(a.threads)]
                res = subprocess.run([sys.executable, "-c", FIELD_CODE, *args], capture_output=True, text=True)
                line = [x for x in res.stdout.splitlines() if x.startswith("RESULT")]
                if res.returncode != 0 or not line:
                    raise SystemExit(f"upscale failed: {res.stderr[-2000:]}")
                _, sec, before, peak = line[0].split()
                out_mib = 3 * 4 * (size * scale) ** 2 / 2**20
                tiles = tile_count(size, size, a.field_tile, 16)
                rows.append(
                    [f"{size}x{size}", f"x{scale}", f"{size * scale}x{size * scale}", tiles, float(sec),
                     float(before) / 1024, float(peak) / 1024, out_mib]
                )  # fmt: skip
                print(rows[-1], flush=True)
    print(
        f"\ndifflab-vision upscale at field size, {date.today()}, {platform.processor() or platform.machine()} CPU, "
        f"{a.threads} torch thread(s); ResShift (8 channels, one level), {a.field_steps} DDIM step(s), "
        f"tile {a.field_tile} overlap 16, 4 tiles per batch"
    )
    head = ["input", "scale", "output", "tiles", "wall s", "RSS before MiB", "peak RSS MiB", "float32 output MiB"]
    print(markdown_table(rows, head, ".1f", align="l"))


def main() -> None:
    a = _parser().parse_args()
    torch.set_num_threads(a.threads)
    if a.field:
        field_size(a)
        return
    from difflab.vision.data import HELDOUT_PHOTOS

    models, train_s = train_models(a)
    results = evaluate_variants(models, a)
    if a.device.startswith("cuda"):
        device = torch.cuda.get_device_name(0)
    else:
        device = f"{platform.processor() or platform.machine()} CPU, {a.threads} torch thread(s)"
    names = list(HELDOUT_PHOTOS)
    print(
        f"\ndifflab-vision benchmark, {date.today()}, {device}; x{a.scale} bicubic, {a.steps} training steps per "
        f"model, held-out {', '.join(names)} (centred {a.eval_size} px crops)"
    )
    print(results_table(results, [i for i, n in enumerate(names) if n != "retina_crop"]))
    print("training wall time s: " + ", ".join(f"{k} {v:.0f}" for k, v in train_s.items()))
    print(
        "PSNR-Y natural: mean over coffee, rocket and china (the retina crop is nearly flat: bicubic reaches "
        "about 52 dB at x2); PSNR-Y gain: mean over all four minus bicubic"
    )
    if a.figure:
        crops_png(a.figure, results, names, a)


if __name__ == "__main__":
    main()
