r"""The shipped default forecaster: ``python scripts/pretrain.py timeseries`` trains it and writes
``difflab/timeseries/pretrained/forecaster.ckpt``, which ``forecast``, ``online`` and ``nll`` use
when they get no ``--ckpt``.

Recipe (seeded, CPU, one torch thread):

* **model**: continuous stochastic-process diffusion (CSPD: VP SDE 0.1 -> 20, GP noise with length
  scale 2 steps) with the CSDI-style denoiser (64 channels, 2 blocks), **one series at a time**
  (``num_series = 1``, ``series_independent``): a file of any number of series is forecast series by
  series, each scaled by its own context (mean / std). No calendar features, no recorded frequency:
  the network sees only relative time in steps, so it takes data of any frequency;
* **data**: every series of the offline defaults ``taylor`` (half-hourly demand) and ``tmy3``
  (8 hourly weather series), training windows of 96 context + 48 horizon steps from their
  training periods, drawn with equal weight per dataset; ``sf_temps`` (hourly San Francisco
  temperature) is kept out as a dataset the model never saw;
* **training**: Adam 2e-3 with a cosine decay to 1e-4, batch 64, gradient clipping 1, EMA of the
  weights (decay 0.995), until the step or time budget ends;
* **evaluation**: held-out test windows (96 + 48) of the three datasets, scored per series with CRPS
  (mean weighted quantile loss) and 90 % interval coverage against seasonal naive, last-value naive,
  ETS and SARIMA (:mod:`difflab.timeseries.models.baselines`); the sampler and step count are chosen
  on the validation windows and recorded as the checkpoint's ``sampling``.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, WeightedRandomSampler

from difflab.core.tables import markdown_header, markdown_row
from difflab.timeseries.data import ForecastDataModule
from difflab.timeseries.data.sources import SEASONALITY
from difflab.timeseries.data.windows import WindowDataset
from difflab.timeseries.evaluate import baseline_samples, horizon_truth, model_samples
from difflab.timeseries.metrics import metric_table

NAME = "forecaster"
"""File name (without ``.ckpt``) of the shipped default."""
CONTEXT, HORIZON = 96, 48
TRAIN_DATA: dict[str, float] = {"taylor": 1.0, "tmy3": 1.0}
"""Training datasets and their share of the drawn windows."""
UNSEEN = "sf_temps"
"""An offline dataset kept out of training, to score the default on data it never saw."""
BASELINES = ("seasonal_naive", "naive", "ets", "sarima")
SAMPLER_CANDIDATES: tuple[tuple[str, int], ...] = (("euler_maruyama", 50), ("euler_maruyama", 20), ("ddim", 20))
"""``(sampler, steps)`` pairs compared on the validation windows; the best CRPS is recorded."""
MAX_STEPS = 100_000
"""Step cap of the recipe; the time budget (``minutes``) ends it first on a CPU."""
DEFAULT_MINUTES = 30.0
EVAL_SAMPLES = 24
"""Sample paths per window in the evaluation (and of the ETS / SARIMA baselines)."""


def series_windows(dataset: str, split: str, *, stride: int | None = None, per_series: int | None = None):
    """``[(series name, WindowDataset of that one series)]`` of an offline dataset's ``split`` (96 + 48
    windows; evaluation windows every ``stride`` rows, at most ``per_series`` evenly spaced)."""
    dm = ForecastDataModule(dataset, context_length=CONTEXT, prediction_length=HORIZON, scaling="standard")
    table = dm.load()
    out = []
    for name in table.names:
        one = ForecastDataModule(
            dataset, columns=[name], context_length=CONTEXT, prediction_length=HORIZON, scaling="standard"
        )
        ds = one.windows(split, stride=stride)  # type: ignore[arg-type]
        if per_series is not None and len(ds.starts) > per_series:
            keep = np.linspace(0, len(ds.starts) - 1, per_series).round().astype(int)
            ds = WindowDataset(ds.table, CONTEXT, HORIZON, ds.starts[keep], scaling="standard")
        out.append((str(name), ds))
    return out


class PretrainData(pl.LightningDataModule):
    """Training windows of every series of ``datasets`` (one series per window, ``D = 1``), drawn with
    replacement, each dataset with its share ``weights`` of the draws.

    Batches: as :class:`~difflab.timeseries.data.windows.WindowDataset` (``x0`` ``(B, 144, 1)`` ...)."""

    def __init__(
        self,
        datasets: Sequence[str] = tuple(TRAIN_DATA),
        weights: Sequence[float] = tuple(TRAIN_DATA.values()),
        context_length: int = CONTEXT,
        prediction_length: int = HORIZON,
        scaling: str = "standard",
        batch_size: int = 64,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.datasets, self.weights = list(datasets), list(weights)
        self.batch_size, self.seed = batch_size, seed

    def train_dataloader(self) -> DataLoader:
        parts, w = [], []
        for name, share in zip(self.datasets, self.weights, strict=True):
            sets = [ds for _, ds in series_windows(name, "train")]
            total = sum(len(ds) for ds in sets)
            parts += sets
            w += [share / total] * total
        gen = torch.Generator().manual_seed(self.seed)
        sampler = WeightedRandomSampler(torch.tensor(w, dtype=torch.float64), 10**7, generator=gen)
        return DataLoader(ConcatDataset(parts), batch_size=self.batch_size, sampler=sampler, drop_last=True)


class LineLogger(pl.Callback):
    """Prints ``step, mean loss since the last line, elapsed minutes`` every ``every`` seconds."""

    def __init__(self, every: float = 10.0) -> None:
        self.every, self.losses = every, []
        self.start = self.last = time.perf_counter()
        self.curve: list[tuple[int, float, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.losses.append(float(loss))
        now = time.perf_counter()
        if now - self.last >= self.every:
            mean = float(np.mean(self.losses))
            self.curve.append((trainer.global_step, mean, (now - self.start) / 60))
            print(f"step {trainer.global_step:6d}  loss {mean:.4f}  {(now - self.start) / 60:5.1f} min", flush=True)
            self.losses, self.last = [], now


def build_model(seed: int, total_steps: int = MAX_STEPS):
    """The default's (untrained) model, see the module docstring."""
    from difflab.timeseries.models.spd import StochasticProcessDiffusion
    from difflab.timeseries.networks.csdi import CSDIDenoiser

    torch.manual_seed(seed)
    network = CSDIDenoiser(**NETWORK_ARGS)
    return StochasticProcessDiffusion(
        network,
        noise="gp",
        kernel_scale=2.0,
        diffusion="continuous",
        sampler="euler_maruyama",
        sample_steps=50,
        num_samples=100,
        val_samples=0,
        context_length=CONTEXT,
        prediction_length=HORIZON,
        series_independent=True,
        optimizer=lambda p: torch.optim.Adam(p, 2e-3),
        lr_scheduler=lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda s: cosine(s, total_steps)),
    )


NETWORK_ARGS: dict[str, Any] = dict(
    num_series=1, channels=64, n_blocks=2, heads=4, time_emb_dim=32, feature_emb_dim=4, diffusion_emb_dim=64,
    calendar_dim=0,
)  # fmt: skip
"""The denoiser of the default (:class:`~difflab.timeseries.networks.csdi.CSDIDenoiser`)."""


def cosine(step: int, total: int, floor: float = 0.05) -> float:
    """Learning-rate factor: ``floor + (1 - floor) (1 + cos(pi min(step / total, 1))) / 2``."""
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(step / max(total, 1), 1.0)))


# ---------------------------------------------------------------------------------------------------- scoring
def score_sets(paths_of, sets, season: int) -> dict[str, float]:
    """CRPS and coverage of one method over ``sets`` (``[(name, WindowDataset)]``): the mean over the
    series of each series' CRPS (each normalised by its own ``sum |y|``), and the pooled coverage."""
    crps, n50, n90, count = [], 0.0, 0.0, 0.0
    for _, ds in sets:
        y, m = horizon_truth(ds)
        row = metric_table(paths_of(ds, season), y, m)
        crps.append(row["crps"])
        n50, n90, count = n50 + row["cov50"] * m.sum(), n90 + row["cov90"] * m.sum(), count + m.sum()
    return {"crps": float(np.mean(crps)), "cov50": float(n50 / count), "cov90": float(n90 / count)}


def evaluation_sets(split: str) -> dict[str, list]:
    """Held-out windows per dataset: ``taylor`` (all 14 test windows), ``tmy3`` (3 per series, 24),
    ``sf_temps`` (12, never trained on), evenly spaced over the test period."""
    caps = {"taylor": None, "tmy3": 3, UNSEEN: 12}
    return {name: series_windows(name, split, per_series=cap) for name, cap in caps.items()}


def evaluate(
    model,
    sets: dict[str, list],
    *,
    samples: int = EVAL_SAMPLES,
    seed: int = 0,
    sampler: str | None = None,
    steps: int | None = None,
    baselines: Sequence[str] = BASELINES,
) -> dict[str, dict[str, dict[str, float]]]:
    """``{dataset: {method: {"crps", "cov50", "cov90", "seconds"}}}`` of the model and the baselines."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, group in sets.items():
        season = SEASONALITY[name]
        rows: dict[str, dict[str, float]] = {}
        for method in baselines:
            t0 = time.perf_counter()
            rows[method] = score_sets(lambda ds, m, b=method: baseline_samples(ds, b, m, samples, seed), group, season)
            rows[method]["seconds"] = time.perf_counter() - t0
        if model is not None:
            t0 = time.perf_counter()
            rows["pretrained"] = score_sets(
                lambda ds, m: model_samples(model, ds, num_samples=samples, seed=seed, sampler=sampler, steps=steps),
                group,
                season,
            )
            rows["pretrained"]["seconds"] = time.perf_counter() - t0
        out[name] = rows
    return out


def choose_sampling(model, seed: int, samples: int = 8) -> tuple[dict[str, Any], dict[str, float]]:
    """The ``(sampler, steps)`` of :data:`SAMPLER_CANDIDATES` with the lowest mean CRPS over the
    validation windows of the training datasets; returns it and every candidate's CRPS."""
    sets = {"taylor": series_windows("taylor", "val"), "tmy3": series_windows("tmy3", "val", per_series=1)}
    crps = {}
    for sampler, steps in SAMPLER_CANDIDATES:
        res = evaluate(model, sets, samples=samples, seed=seed, sampler=sampler, steps=steps, baselines=())
        crps[f"{sampler} {steps}"] = float(np.mean([r["pretrained"]["crps"] for r in res.values()]))
        print(f"validation CRPS, {sampler} {steps} steps: {crps[f'{sampler} {steps}']:.4f}", flush=True)
    best = min(SAMPLER_CANDIDATES, key=lambda c: crps[f"{c[0]} {c[1]}"])
    return {"sampler": best[0], "steps": best[1]}, crps


def format_evaluation(result: dict[str, dict[str, dict[str, float]]]) -> str:
    """Markdown table: one row per method, CRPS, CRPS / seasonal naive and cov90 per dataset."""
    names = list(result)
    methods = list(next(iter(result.values())))
    lines = [markdown_header(["method", *(f"{n} {c}" for n in names for c in ("CRPS", "/ snaive", "cov90"))])]
    for method in methods:
        cells = []
        for n in names:
            r, base = result[n].get(method), result[n]["seasonal_naive"]["crps"]
            cells += ["—"] * 3 if r is None else [f"{r['crps']:.4f}", f"{r['crps'] / base:.3f}", f"{r['cov90']:.2f}"]
        lines.append(markdown_row([method, *cells]))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------- recipe
def pretrain(
    out_dir: Path, *, seed: int = 0, minutes: float | None = None, keep_full: Path | None = None
) -> list[Path]:
    """Train the default forecaster for ``minutes`` (default :data:`DEFAULT_MINUTES`), choose its sampler
    on validation windows, score it against the baselines on the test windows and write
    ``out_dir/forecaster.ckpt``; returns ``[path]``. ``keep_full``: also keep the full training
    checkpoint there."""
    from difflab.core.lightning.train import train_briefly

    torch.set_num_threads(1)
    minutes = DEFAULT_MINUTES if minutes is None else minutes
    steps_guess = int(minutes * 60 / 0.65)  # the cosine decay's length: about the budget's step count
    model = build_model(seed, steps_guess)
    data = PretrainData(seed=seed)
    log = LineLogger()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        full = Path(tmp) / "full.ckpt"
        if keep_full is not None:
            full = Path(keep_full)
        wall = train_briefly(
            model,
            data,
            max_steps=MAX_STEPS,
            max_time_s=minutes * 60,
            seed=seed,
            checkpoint=full,
            ema_decay=0.995,
            gradient_clip_val=1.0,
            callbacks=[log],
        )
        print(f"trained {int(model.global_step)} steps in {wall / 60:.1f} min", flush=True)
        command = f"python scripts/pretrain.py timeseries --seed {seed}" + (
            f" --minutes {minutes:g}" if minutes != DEFAULT_MINUTES else ""
        )
        meta = {"command": command, "seed": seed, "steps": int(model.global_step), "wall_minutes": round(wall / 60, 2)}
        return [finish(model, full, out_dir, meta, loss_curve=log.curve)]


def finish(model, full: Path, out_dir: Path, meta: dict[str, Any], *, loss_curve=()) -> Path:
    """Choose the sampler of the trained ``model`` on validation windows, score it against the baselines
    on the test windows and write ``out_dir/forecaster.ckpt`` from its full checkpoint ``full``, with
    ``meta`` (command, seed, steps, wall minutes) completed by the data, evaluation and sampling."""
    from difflab.core.lightning.pretrained import write_pretrained

    seed = int(meta.get("seed", 0))
    model.eval()
    sampling, val_crps = choose_sampling(model, seed)
    result = evaluate(model, evaluation_sets("test"), seed=seed, **sampling)
    print(format_evaluation(result), flush=True)
    meta = {
        **meta,
        "data": {
            "train": {k: f"training period of every series, share {v:g}" for k, v in TRAIN_DATA.items()},
            "unseen": UNSEEN,
            "windows": f"{CONTEXT} context + {HORIZON} horizon steps, standard scaling per series and window",
        },
        "evaluation": {"test": result, "validation_crps_by_sampler": val_crps, "samples": EVAL_SAMPLES},
        "loss_curve": list(loss_curve)[:: max(1, len(loss_curve) // 40)],
        "sampling": sampling,
    }
    network = {"class_path": "difflab.timeseries.networks.csdi.CSDIDenoiser", "init_args": NETWORK_ARGS}
    return write_pretrained(full, model, Path(out_dir) / f"{NAME}.ckpt", meta=meta, network=network)


__all__ = [
    "NAME",
    "PretrainData",
    "build_model",
    "choose_sampling",
    "evaluate",
    "evaluation_sets",
    "format_evaluation",
    "pretrain",
    "series_windows",
]
