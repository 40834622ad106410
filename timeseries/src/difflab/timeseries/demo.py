"""``difflab-timeseries demo``: brief CPU training on the taylor electricity demand, held-out scoring
against seasonal naive and ETS, and fan charts of the test period."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from difflab.core.lightning.train import train_briefly
from difflab.core.progress import artifact
from difflab.core.verbs import VerbParser, seed_option
from difflab.timeseries.data import ForecastDataModule
from difflab.timeseries.evaluate import baseline_samples, model_samples, score
from difflab.timeseries.figures import save_fan_charts
from difflab.timeseries.metrics import format_table
from difflab.timeseries.models.falda import DecomposedDiffusion
from difflab.timeseries.models.spd import StochasticProcessDiffusion
from difflab.timeseries.networks.csdi import CSDIDenoiser

CONTEXT, HORIZON = 96, 48


def small_network(num_series: int = 1) -> CSDIDenoiser:
    return CSDIDenoiser(
        num_series, channels=32, n_blocks=2, heads=4, time_emb_dim=32, feature_emb_dim=8, diffusion_emb_dim=32
    )


def build(method: str, seed: int, lr: float = 2e-3):
    """The demo's models: ``spd_gp``, ``spd_ou``, ``csdi`` (white noise) and ``falda_gp``."""
    torch.manual_seed(seed)
    opt = lambda p: torch.optim.Adam(p, lr)  # noqa: E731
    common = dict(num_steps=50, optimizer=opt, sampler="ddpm", sample_steps=50, val_samples=0)
    if method == "falda_gp":
        return DecomposedDiffusion(small_network(), CONTEXT, HORIZON, noise="gp", **common)
    noise = {"spd_gp": "gp", "spd_ou": "ou", "csdi": "white"}[method]
    return StochasticProcessDiffusion(small_network(), noise=noise, **common)


def train(model, dm, max_steps: int, seed: int):
    train_briefly(model, dm, max_steps=max_steps, seed=seed, gradient_clip_val=1.0)
    return model


def run_demo(
    out: Path,
    *,
    max_steps: int = 600,
    num_samples: int = 50,
    seed: int = 0,
    methods: tuple[str, ...] = ("falda_gp", "spd_gp"),
) -> dict[str, dict[str, float]]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dm = ForecastDataModule("taylor", context_length=CONTEXT, prediction_length=HORIZON, batch_size=32, seed=seed)
    dm.setup()
    test = dm.test_set
    season = dm.seasonality
    rows: dict[str, dict[str, float]] = {}
    paths: dict[str, np.ndarray] = {}
    t0 = time.perf_counter()
    paths["seasonal_naive"] = baseline_samples(test, "seasonal_naive", season)
    rows["seasonal_naive"] = score(paths["seasonal_naive"], test, time.perf_counter() - t0)
    t0 = time.perf_counter()
    paths["ets"] = baseline_samples(test, "ets", season, num_samples, seed)
    rows["ets"] = score(paths["ets"], test, time.perf_counter() - t0)
    for method in methods:
        model = build(method, seed)
        t0 = time.perf_counter()
        train(model, dm, max_steps, seed)
        t_train = time.perf_counter() - t0
        t0 = time.perf_counter()
        paths[method] = model_samples(model, test, num_samples=num_samples, seed=seed)
        rows[method] = score(paths[method], test, time.perf_counter() - t0)
        rows[method]["train_s"] = t_train
    table = format_table(rows)
    print(
        f"taylor electricity demand, test period from {dm.split_dates()[1].date()}: {len(test)} windows of "
        f"{CONTEXT} context + {HORIZON} steps; CRPS = mean weighted quantile loss (0.05..0.95, nearest rank); "
        f"seconds = sampling / forecasting time"
    )
    print(table)
    (out / "metrics.txt").write_text(table + "\n")
    artifact(out / "metrics.txt", "metric table of the diffusion models vs seasonal naive and ETS")
    tb = dm.table
    show = [0, len(test) // 3, 2 * len(test) // 3, len(test) - 1]
    for name in [m for m in methods] + ["ets"]:
        panels = []
        for k in show:
            h = int(test.starts[k])
            panels.append(
                dict(
                    context_t=tb.timestamps[h - CONTEXT : h],
                    context_y=tb.values[h - CONTEXT : h, 0],
                    future_t=tb.timestamps[h : h + HORIZON],
                    samples=paths[name][:, k, :, 0],
                    truth=tb.values[h : h + HORIZON, 0],
                    title=f"{name}: window {k} (MW)",
                )
            )
        png = save_fan_charts(out / f"fan_{name}.png", panels, suptitle=f"{name} on taylor test windows")
        artifact(png, f"fan charts of {name} on 4 held-out taylor windows with the truth")
    return rows


def main(argv: list[str] | None = None) -> int:
    """``difflab-timeseries demo``: train briefly on the default data, score the held-out period against
    the baselines, write fan charts."""

    p = VerbParser(prog="difflab-timeseries demo", description=main.__doc__)
    p.add_argument("--out", type=Path, default=Path("outputs/demo/timeseries"), help="output folder")
    p.add_argument("--max_steps", type=int, default=600, help="training steps per diffusion model")
    p.add_argument("--samples", type=int, default=50, help="sample paths per forecast")
    seed_option(p, "the training and the sampling")
    ns = p.parse_args(argv)
    run_demo(ns.out, max_steps=ns.max_steps, num_samples=ns.samples, seed=ns.seed)
    return 0


__all__ = ["run_demo", "build", "train", "small_network", "main"]
