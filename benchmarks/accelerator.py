"""Training throughput of every domain's main method on CPU and on a GPU (fp32 and bf16-mixed).

Two steps, so that the GPU machine needs neither the offline data nor its system packages:

1. ``python benchmarks/accelerator.py capture DIR`` (where the default data can be built) resolves
   each shipped config listed in :data:`CONFIGS` exactly as ``difflab-<pkg> fit --config NAME``
   would (core's ``run_cli`` with ``run=False``), draws a few training batches from its data module
   and saves ``DIR/<pkg>__<config>.pt``: the freshly built LightningModule and the real batches.
2. ``python benchmarks/accelerator.py run DIR [--steps 60]`` trains each saved module with
   ``lightning.Trainer(accelerator=..., precision=...)`` -- the same Trainer arguments that
   ``--trainer.accelerator gpu --trainer.precision bf16-mixed`` set on the command line -- over the
   saved batches (cycled), side by side on the CPU (fp32) and, when CUDA is present, on the GPU in
   fp32 and bf16-mixed. It prints one markdown table: optimizer steps and samples per second after
   a warm-up, peak GPU memory, and the speed-up of each GPU run over the CPU run of the same module.
   A run that fails (an op without a bf16 kernel, say) is reported with its error instead of a rate.

Validation, checkpointing, logging and the configs' callbacks (EMA) are left out: the table measures
the training step alone.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import sys
import time
from pathlib import Path

import torch

from difflab.core.tables import markdown_header, markdown_row

# (package, shipped config, label, extra command-line arguments): each domain's main diffusion
# method on its offline default data, plus SGMSE+'s published network size ("sgmse_vbdmd"'s NCSN++,
# 128 channels, 7 levels) on the default data with its 2 s crops.
_SGMSE_LARGE = [
    "--model.init_args.network.init_args.channels=128",
    "--model.init_args.network.init_args.channel_mults=[1,1,2,2,2,2,2]",
    "--model.init_args.network.init_args.num_res_blocks=2",
    "--model.init_args.network.init_args.attention_resolutions=[16]",
    "--data.init_args.crop_samples=32640",
]
CONFIGS = [
    ("audio", "sgmse_denoise", "sgmse_denoise", []),
    ("audio", "sgmse_denoise", "sgmse_denoise_large", _SGMSE_LARGE),
    ("audio", "storm_denoise", "storm_denoise", []),
    ("vision", "resshift15_photos", "resshift15_photos", []),
    ("text", "mdlm_kjv", "mdlm_kjv", []),
    ("text", "diffuseq_kjv", "diffuseq_kjv", []),
    ("video", "difftad_mocap", "difftad_mocap", []),
    ("pointcloud", "psf_flow_pybullet", "psf_flow_pybullet", []),
    ("pointcloud", "iterativepfn_cgal", "iterativepfn_cgal", []),
    ("timeseries", "csdi_taylor", "csdi_taylor", []),
    ("robotics", "diffusion_policy_push", "diffusion_policy_push", []),
]


def _batch_size(batch) -> int:
    if torch.is_tensor(batch):
        return int(batch.shape[0]) if batch.dim() else 1
    if isinstance(batch, dict):
        batch = list(batch.values())
    if isinstance(batch, (list, tuple)):
        for item in batch:
            if torch.is_tensor(item) and item.dim():
                return int(item.shape[0])
    return 1


def _detach_from_parser(module) -> None:
    """Make the module picklable: the parser hands optimizer / scheduler factories over as partials
    bound to its own instantiator; rebind each to the plain class with the same arguments."""
    import functools

    for key, value in list(vars(module).items()):
        if isinstance(value, functools.partial) and len(value.args) == 2 and isinstance(value.args[1], type):
            setattr(module, key, functools.partial(value.args[1], **value.keywords))
    module._hparams.pop("_instantiator", None) if hasattr(module, "_hparams") else None


def _strip_parameters(module: torch.nn.Module) -> None:
    """Replace every parameter by a meta tensor of its shape, so the saved file holds the module's
    structure and buffers but not its (freshly initialised, so arbitrary) weights."""
    for mod in module.modules():
        for name, p in list(mod.named_parameters(recurse=False)):
            mod._parameters[name] = torch.nn.Parameter(
                torch.empty_like(p, device="meta"), requires_grad=p.requires_grad
            )


def _materialise_parameters(module: torch.nn.Module, seed: int = 0) -> None:
    """Undo :func:`_strip_parameters` with a fresh initialisation: each layer's own
    ``reset_parameters`` where it has one, N(0, 0.02) otherwise."""
    torch.manual_seed(seed)
    for mod in module.modules():
        stripped = False
        for name, p in list(mod.named_parameters(recurse=False)):
            if p.is_meta:
                data = torch.empty(p.shape, dtype=p.dtype).normal_(0.0, 0.02)
                mod._parameters[name] = torch.nn.Parameter(data, requires_grad=p.requires_grad)
                stripped = True
        if stripped and hasattr(mod, "reset_parameters"):
            mod.reset_parameters()


def capture(out: Path, configs: list[tuple[str, str, str, list[str]]], num_batches: int) -> None:
    from lightning import LightningDataModule, LightningModule

    from difflab.core.cli import run_cli
    from difflab.core.lightning.train import quiet_trainer

    out.mkdir(parents=True, exist_ok=True)
    for pkg, name, label, extra in configs:
        cli = run_cli(LightningModule, LightningDataModule, package=pkg, args=["--config", name, *extra], run=False)
        dm = cli.datamodule
        # Lightning's set-up hooks (data-dependent state such as a policy's normalisers) without a step.
        quiet_trainer(max_steps=0, callbacks=[]).fit(cli.model, datamodule=dm)
        cli.model._trainer = None
        _strip_parameters(cli.model)
        batches = list(itertools.islice(iter(dm.train_dataloader()), num_batches))
        _detach_from_parser(cli.model)
        path = out / f"{pkg}__{label}.pt"
        torch.save({"package": pkg, "config": label, "model": cli.model, "batches": batches}, path)
        print(f"captured {path.name}: {len(batches)} batches of {_batch_size(batches[0])}", flush=True)


class _Timer:
    """Lightning callback: wall time of the optimizer steps after ``warmup`` of them."""

    def __init__(self, warmup: int, cuda: bool):
        from lightning.pytorch.callbacks import Callback

        timer = self

        class _CB(Callback):
            def on_train_batch_end(self, trainer, pl_module, outputs, *args):
                loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
                if torch.is_tensor(loss):
                    timer.losses.append(loss.detach())
                if trainer.global_step == warmup:
                    if cuda:
                        torch.cuda.synchronize()
                    timer.start = time.perf_counter()

            def on_train_end(self, trainer, *args):
                if cuda:
                    torch.cuda.synchronize()
                timer.end = time.perf_counter()

        self.callback = _CB()
        self.start = self.end = None
        self.losses: list[torch.Tensor] = []


def train_rate(path: Path, accelerator: str, precision: str, steps: int, warmup: int) -> dict:
    """Train the saved module for ``steps`` optimizer steps; rates over the steps after ``warmup``."""
    from difflab.core.lightning.train import quiet_trainer

    saved = torch.load(path, weights_only=False, map_location="cpu")
    model, batches = saved["model"], saved["batches"]
    _materialise_parameters(model)
    loader = torch.utils.data.DataLoader(
        [batches[i % len(batches)] for i in range(steps)], batch_size=None, shuffle=False
    )
    cuda = accelerator == "gpu"
    timer = _Timer(warmup, cuda)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    trainer = quiet_trainer(accelerator=accelerator, precision=precision, max_steps=steps, callbacks=[timer.callback])
    trainer.fit(model, train_dataloaders=loader)
    timed = steps - warmup
    seconds = timer.end - timer.start
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "batch": _batch_size(batches[0]),
        "steps_per_s": timed / seconds,
        "peak_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else float("nan"),
        "loss": [float(v) for v in timer.losses[:1] + timer.losses[-1:]],
    }


def run(folder: Path, steps: int, cpu_steps: int, only: list[str] | None) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    cuda = torch.cuda.is_available()
    setups = [("cpu", "32-true", cpu_steps)]
    if cuda:
        setups += [("gpu", "32-true", steps), ("gpu", "bf16-mixed", steps)]
    gpu_name = torch.cuda.get_device_name(0) if cuda else "none"
    print(
        f"\ntorch {torch.__version__}; CPU: {platform.processor() or platform.machine()} "
        f"({torch.get_num_threads()} threads); GPU: {gpu_name}\n"
    )
    head = ["package", "config", "params (M)", "batch", "device", "precision", "steps/s", "samples/s"]
    print(markdown_header([*head, "peak GPU MB", "vs CPU", "loss first → last"], "llrrllrrrrl"))
    for path in sorted(folder.glob("*.pt")):
        if only and not any(o in path.stem for o in only):
            continue
        pkg, name = path.stem.split("__", 1)
        cpu_rate = None
        for accelerator, precision, n in setups:
            try:
                r = train_rate(path, accelerator, precision, n, warmup=max(2, n // 6))
            except Exception as err:  # reported, so one op without a kernel does not hide the rest
                msg = f"{type(err).__name__}: {str(err).splitlines()[0][:90]}"
                failed = [pkg, name, "", "", accelerator, precision, f"failed: {msg}", "", "", "", ""]
                print(markdown_row(failed), flush=True)
                continue
            if accelerator == "cpu":
                cpu_rate = r["steps_per_s"]
            ratio = f"{r['steps_per_s'] / cpu_rate:.1f}x" if cpu_rate else ""
            peak = "" if r["peak_mb"] != r["peak_mb"] else f"{r['peak_mb']:.0f}"
            loss = " → ".join(f"{v:.3g}" for v in r["loss"])
            cells = [pkg, name, r["params"] / 1e6, r["batch"], accelerator, precision, r["steps_per_s"]]
            cells += [r["steps_per_s"] * r["batch"], peak, ratio, loss]
            print(markdown_row(cells, ["", "", ".2f", "", "", "", ".1f", ".0f", "", "", ""]), flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("capture", help="build each config's module and save it with real training batches")
    c.add_argument("out", type=Path)
    c.add_argument("--batches", type=int, default=4, help="training batches saved per config (cycled when run)")
    c.add_argument("--only", nargs="*", help="substrings of 'package__config' to capture")
    r = sub.add_parser("run", help="train the saved modules on CPU and GPU and print the table")
    r.add_argument("folder", type=Path)
    r.add_argument("--steps", type=int, default=60, help="optimizer steps per GPU run")
    r.add_argument("--cpu_steps", type=int, default=12, help="optimizer steps per CPU run")
    r.add_argument("--only", nargs="*", help="substrings of 'package__config' to run")
    args = p.parse_args(argv)
    if args.cmd == "capture":
        configs = [c for c in CONFIGS if not args.only or any(o in f"{c[0]}__{c[2]}" for o in args.only)]
        capture(args.out, configs, args.batches)
    else:
        run(args.folder, args.steps, args.cpu_steps, args.only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
