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
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import date
from functools import partial

import torch


def main() -> None:
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
    a = p.parse_args()
    torch.set_num_threads(a.threads)

    import lightning.pytorch as pl

    from difflab.vision.data import HELDOUT_PHOTOS, SRDataModule
    from difflab.vision.evaluate import evaluate_heldout
    from difflab.vision.models import SR3, InvSRStart, ResShiftSR, SAMDiffSR
    from difflab.vision.networks import UNet

    def data():
        return SRDataModule(
            scale=a.scale,
            patch_size=a.patch,
            batch_size=a.batch_size,
            eval_size=a.eval_size,
            eval_batch_size=4,
            samples_per_epoch=a.batch_size * a.steps,
        )

    def fit(model, steps):
        pl.seed_everything(a.seed, verbose=False)
        t0 = time.perf_counter()
        pl.Trainer(
            max_steps=steps,
            accelerator="gpu" if a.device.startswith("cuda") else "cpu",
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            limit_val_batches=0,
            num_sanity_val_steps=0,
        ).fit(model, datamodule=data())
        model.to(a.device).eval()
        return time.perf_counter() - t0

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
    train_s = {name: fit(m, a.steps) for name, m in models.items()}
    invsr = InvSRStart(
        net(3), teacher=models["SR3"], scale=a.scale, start_t=0.2, optimizer=partial(torch.optim.Adam, lr=a.lr / 2)
    )
    train_s["InvSR-style"] = fit(invsr, a.invsr_steps or a.steps // 2)

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
        ("InvSR-style 1 step", 1, sr(invsr, steps=1)),
        ("InvSR-style 3 steps", 3, sr(invsr, steps=3)),
        ("SAM-DiffSR-style DDIM-10", 10, sr(models["SAM-DiffSR-style"], steps=10)),
    ]
    results = {name: (nfe, evaluate_heldout(fn, data(), a.scale, seed=a.seed)) for name, nfe, fn in variants}
    ref_name = "SR3 DDIM-50"
    ref = results[ref_name][1]
    bic = ref["bicubic"]
    if a.device.startswith("cuda"):
        device = torch.cuda.get_device_name(0)
    else:
        device = f"{platform.processor() or platform.machine()} CPU, {a.threads} torch thread(s)"
    names = list(HELDOUT_PHOTOS)
    nat = [i for i, n in enumerate(names) if n != "retina_crop"]
    print(
        f"\ndifflab-vision benchmark, {date.today()}, {device}; x{a.scale} bicubic, {a.steps} training steps per "
        f"model, held-out {', '.join(names)} (centred {a.eval_size} px crops)"
    )
    print(f"| variant | NFE | PSNR-Y | SSIM-Y | PSNR-Y natural | PSNR-Y gain | time s | time / {ref_name} |")
    print("|" + "---|" * 8)
    nat_b = sum(ref["per_image_bicubic_psnr_y"][i] for i in nat) / len(nat)
    print(f"| bicubic | 0 | {bic['psnr_y']:.2f} | {bic['ssim_y']:.4f} | {nat_b:.2f} | 0.00 | - | - |")
    for name, (nfe, r) in results.items():
        nat_p = sum(r["per_image_psnr_y"][i] for i in nat) / len(nat)
        print(
            f"| {name} | {nfe} | {r['sr']['psnr_y']:.2f} | {r['sr']['ssim_y']:.4f} | {nat_p:.2f} | "
            f"{r['sr']['psnr_y'] - bic['psnr_y']:+.2f} | {r['time_s']:.2f} | {r['time_s'] / ref['time_s']:.3f} |"
        )
    print("training wall time s: " + ", ".join(f"{k} {v:.0f}" for k, v in train_s.items()))
    print(
        "PSNR-Y natural: mean over coffee, rocket and china (the retina crop is nearly flat: bicubic reaches "
        "about 52 dB at x2); PSNR-Y gain: mean over all four minus bicubic"
    )
    if a.figure:
        import matplotlib

        matplotlib.use("Agg")
        from difflab.vision.figures import crops_figure
        from difflab.vision.metrics import from_model_range

        batch = next(iter(data().val_dataloader()))
        show = ["ResShift-4", "ResShift-15", "SR3 DDIM-50", "InvSR-style 1 step"]
        fig = crops_figure(
            lr=None,
            bicubic=from_model_range(batch["y"]),
            hr=from_model_range(batch["x0"]),
            sr={k: results[k][1]["outputs"] for k in show},
            names=names,
            psnrs={"bicubic": ref["per_image_bicubic_psnr_y"], **{k: results[k][1]["per_image_psnr_y"] for k in show}},
        )
        fig.savefig(a.figure, dpi=60)
        print(f"artifact: {a.figure} | held-out crops: bicubic, ResShift-4/15, SR3 DDIM-50, InvSR-style 1 step, HR")


if __name__ == "__main__":
    main()
