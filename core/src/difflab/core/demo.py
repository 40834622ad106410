"""``difflab-core demo``: train the toy model briefly, then sample it with every core sampler.

Trains :class:`~difflab.core.lightning.toy.ToyDiffusion` on the 8-mode Gaussian mixture of
:class:`~difflab.core.lightning.data.ToyDataModule` on the CPU (about a minute), then draws 2000
samples with each sampler at a small step budget and writes to ``--out``:

* ``samplers.png``: one scatter panel per sampler over the data, with NFE and the mode metrics;
* ``metrics.csv``: sampler, steps, NFE, fraction near a mode, mode-weight error, spread error.

The same samples from the exact (Bayes-optimal) denoiser of the mixture are shown as the reference
row, so the difference between the rows is what the network has not yet learnt.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path

import torch

from difflab.core.progress import artifact
from difflab.core.samplers.select import SAMPLER_NAMES, sampler_function
from difflab.core.tables import markdown_table
from difflab.core.verbs import VerbParser, seed_option

# sampler -> number of steps used in the demo (multi-evaluation samplers get fewer steps)
DEMO_STEPS = {
    "ddpm": 100,
    "ddim": 25,
    "dpm_solver": 15,
    "euler": 25,
    "heun": 13,
    "euler_ancestral": 25,
    "dpmpp_2m_sde": 15,
    "dpmpp_3m_sde": 15,
    "unipc": 15,
    "lms": 25,
    "deis": 15,
    "lcm": 8,
    "tcd": 8,
    "probability_flow": 25,
    "euler_maruyama": 100,
    "pc": 50,
    "adaptive": 0,
}


def train_toy(max_steps: int, seed: int):
    """The toy model trained ``max_steps`` steps on the 8-mode mixture, with EMA weights: ``(model, data)``."""
    import lightning as L
    from lightning.pytorch.callbacks import EMAWeightAveraging

    from difflab.core.lightning import ToyDataModule, ToyDiffusion
    from difflab.core.lightning.callbacks import progress_bar
    from difflab.core.lightning.train import quiet_trainer

    L.seed_everything(seed, verbose=False)
    data = ToyDataModule(kind="mixture", n_train=32768, n_val=2048, batch_size=256, seed=seed, mode_std=0.05)
    model = ToyDiffusion(
        hidden=128,
        depth=3,
        optimizer=functools.partial(torch.optim.Adam, lr=3e-3),
        lr_scheduler=functools.partial(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=max_steps, eta_min=1e-4),
        num_val_samples=0,
    )
    # a bar on a terminal, a line every few seconds without one
    trainer = quiet_trainer(
        max_steps=max_steps,
        accelerator="cpu",
        enable_progress_bar=True,
        callbacks=[EMAWeightAveraging(decay=0.995), progress_bar()],
    )
    trainer.fit(model, data)  # ends with the EMA weights in the model
    model.eval()
    return model, data


def sample_every_sampler(model, mixture, names: list[str], sample_steps: int | None, seed: int):
    """2000 samples per sampler from the network and from the mixture's exact denoiser, each from the
    same seeded prior: ``(metric rows, panels (source, sampler, result, metrics))``."""
    from difflab.core.lightning.toy import mixture_metrics
    from difflab.core.samplers.base import Denoiser
    from difflab.core.samplers.select import run_sampler

    rows: list[dict] = []
    panels = []
    for source in ("network", "exact"):
        for name in names:
            steps = sample_steps if sample_steps else DEMO_STEPS.get(name, 25)
            gen = torch.Generator().manual_seed(seed + 1)
            if source == "network":
                result = model.sample((2000, 2), sampler=name, steps=steps, generator=gen)
            else:
                exact = mixture.to(torch.float32).exact_model(model.process, "eps")
                x = model.process.prior_sample((2000, 2), generator=gen)
                result = run_sampler(name, Denoiser(exact, model.process, "eps"), x, steps=steps, generator=gen)
            metrics = mixture_metrics(mixture, result.sample)
            rows.append({"denoiser": source, "sampler": name, "steps": steps, "nfe": result.nfe, **metrics})
            panels.append((source, name, result, metrics))
    return rows, panels


def samplers_figure(panels: list, ref: torch.Tensor, columns: int):
    """Scatter panels (2 rows: network, exact) of the samples over the data ``ref`` (N, 2) in grey."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2.4 * columns, 5.0))
    for i, (source, name, result, metrics) in enumerate(panels):
        ax = fig.add_subplot(2, columns, i + 1)
        ax.scatter(ref[:, 0], ref[:, 1], s=1, c="0.75")
        s = result.sample.detach().float()
        ax.scatter(s[:, 0], s[:, 1], s=1, c="tab:blue" if source == "network" else "tab:green")
        ax.set_xlim(-1.6, 1.6)
        ax.set_ylim(-1.6, 1.6)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{name} ({source})\nNFE {result.nfe}, near {metrics['near_mode']:.2f}", fontsize=7)
    fig.tight_layout()
    return fig


def run_demo(out: Path, *, max_steps: int = 2000, sample_steps: int | None = None, seed: int = 0) -> list[dict]:
    """Train, sample, write ``samplers.png`` and ``metrics.csv`` into ``out``; returns the metric rows."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model, data = train_toy(max_steps, seed)
    names = [n for n in SAMPLER_NAMES if _available(n)]
    rows, panels = sample_every_sampler(model, data.mixture, names, sample_steps, seed)
    with open(out / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    samplers_figure(panels, data.val_set.points, len(names)).savefig(out / "samplers.png", dpi=110)
    keys = ("sampler", "denoiser", "nfe", "near_mode", "mode_weight_error")
    print()
    print(
        markdown_table(
            [[r[k] for k in keys] for r in rows],
            ["sampler", "denoiser", "NFE", "near_mode", "weight_err"],
            ".3f",
            "llrrr",
        )
    )
    artifact(out / "samplers.png", "samples of every core sampler, trained network vs exact denoiser")
    artifact(out / "metrics.csv", "NFE and mode metrics per sampler")
    return rows


def _available(name: str) -> bool:
    try:
        sampler_function(name)
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    """``difflab-core demo``: train the toy model on the 8-mode mixture and plot samples of every sampler."""

    parser = VerbParser(prog="difflab-core demo", description=main.__doc__)
    parser.add_argument("--out", type=Path, default=Path("outputs/core/demo"), help="output folder")
    parser.add_argument("--max_steps", type=int, default=2000, help="training steps")
    parser.add_argument("--steps", type=int, default=None, help="sampler steps (default: a budget per sampler)")
    seed_option(parser, "the training and the samplers' noise")
    ns = parser.parse_args(argv)
    run_demo(ns.out, max_steps=ns.max_steps, sample_steps=ns.steps, seed=ns.seed)
    return 0


__all__ = ["main", "run_demo"]
