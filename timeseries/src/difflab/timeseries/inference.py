"""Loading a trained forecaster and the domain verbs ``forecast`` and ``online``.

Checkpoints are read by core's one loader (:func:`difflab.core.lightning.load_checkpoint`, with
``weights_only=True``); the command line in :mod:`difflab.timeseries.cli` only parses arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from difflab.core.errors import UserError


def load_checkpoint(path: str | Path):
    """``(model, datamodule hyperparameters)`` from a checkpoint written by ``fit``."""
    import difflab.timeseries.models.falda  # noqa: F401  (the method classes a checkpoint may name)
    from difflab.core.lightning import load_checkpoint as load
    from difflab.core.lightning import read_checkpoint
    from difflab.timeseries.models.spd import StochasticProcessDiffusion

    model = load(path, StochasticProcessDiffusion)
    data_hp = dict(read_checkpoint(path).get("datamodule_hyper_parameters") or {})
    if "init_args" in data_hp:
        data_hp = dict(data_hp["init_args"])
    return model, data_hp


def _fan_panels(table, paths, fut_t, context: int) -> list[dict[str, Any]]:
    ctx_t = table.timestamps[-context:]
    return [
        dict(
            context_t=ctx_t,
            context_y=table.values[-context:, j],
            future_t=fut_t,
            samples=paths[:, :, j],
            title=table.names[j],
        )
        for j in range(min(len(table.names), 8))
    ]


def _check_lengths(model, context: int, horizon: int) -> None:
    """A model built for fixed window lengths (FALDA's linear backbone) forecasts only those."""
    for option, value, attr in (("--context", context, "context_length"), ("--horizon", horizon, "prediction_length")):
        fixed = getattr(model, attr, None)
        if isinstance(fixed, int) and value != fixed:
            raise UserError(
                f"{option} {value}: {type(model).__name__} was trained for {attr}={fixed} and supports only that; "
                f"pass {option} {fixed} (or leave it out)"
            )


def _check_context(table, context: int, data: str) -> None:
    """A series with no observed value in the last ``context`` steps cannot be forecast."""
    observed = ~np.isnan(np.asarray(table.values[-context:], dtype=float))
    empty = [name for name, seen in zip(table.names, observed.any(axis=0), strict=True) if not seen]
    if empty:
        raise UserError(
            f"{data}: series {', '.join(map(str, empty[:5]))}{' ...' if len(empty) > 5 else ''} "
            f"have no observed value in the last {context} steps (--context); nothing to forecast from"
        )


def forecast(
    data: str,
    out: Path,
    ckpt: str | Path,
    *,
    horizon: int | None = None,
    samples: int = 100,
    context: int | None = None,
    columns: list[str] | None = None,
    freq: str | None = None,
    format: str = "auto",
    sampler: str | None = None,
    steps: int | None = None,
    seed: int = 0,
) -> int:
    """Forecast past the end of the series in ``data``: ``out/forecast.csv`` (mean and quantiles
    0.05..0.95 per step and series) and ``out/fan_chart.png``."""
    from difflab.timeseries.data.table import read_table
    from difflab.timeseries.evaluate import future_batch, write_quantile_csv
    from difflab.timeseries.figures import save_fan_charts

    model, data_hp = load_checkpoint(ckpt)
    table = read_table(data, format=format, columns=columns, freq=freq)
    context = context or int(getattr(model, "context_length", None) or data_hp.get("context_length", 96))
    horizon = horizon or int(getattr(model, "prediction_length", None) or data_hp.get("prediction_length", 24))
    _check_lengths(model, context, horizon)
    _check_context(table, context, data)
    batch, fut_t = future_batch(table, context, horizon, scaling=data_hp.get("scaling", "standard"), freq=freq)
    gen = torch.Generator().manual_seed(seed)
    s = model.forecast(batch, samples, sampler=sampler, steps=steps, generator=gen)
    paths = model.unscale(s, batch)[:, 0, context:].numpy()  # (S, H, D)
    csv = write_quantile_csv(out / "forecast.csv", fut_t, table.names, paths)
    print(
        f"artifact: {csv} | mean and quantiles 0.05..0.95 of {samples} sample paths, "
        f"{horizon} steps x {len(table.names)} series"
    )
    panels = _fan_panels(table, paths, fut_t, context)
    png = save_fan_charts(out / "fan_chart.png", panels, suptitle=f"forecast of {Path(data).name}")
    print(f"artifact: {png} | fan chart: context, median, 50% and 90% intervals of the forecast")
    return 0


def online(
    ckpt: str | Path,
    *,
    finetune_steps: int = 2,
    finetune_windows: int = 32,
    lr: float = 1e-4,
    samples: int = 32,
    max_forecasts: int | None = None,
    out: Path | None = None,
) -> int:
    """Rolling forecasts over the test period with delayed ground truth, frozen and fine-tuned online;
    prints the metric table (and writes it to ``out``)."""
    from difflab.timeseries.data import ForecastDataModule
    from difflab.timeseries.metrics import format_table
    from difflab.timeseries.online import online_evaluate

    _, data_hp = load_checkpoint(ckpt)
    dm = ForecastDataModule(**{k: v for k, v in data_hp.items() if not k.startswith("_")})
    dm.setup()
    rows = {}
    for name, steps in (("frozen", 0), (f"finetune x{finetune_steps}", finetune_steps)):
        if name != "frozen" and steps == 0:
            continue
        model, _ = load_checkpoint(ckpt)
        rows[name] = online_evaluate(
            model,
            dm,
            finetune_steps=steps,
            finetune_windows=finetune_windows,
            lr=lr,
            num_samples=samples,
            max_forecasts=max_forecasts,
        )["metrics"]
    table = format_table(rows)
    print(table)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(table + "\n")
        print(f"artifact: {out} | online metrics with delayed ground truth")
    return 0


__all__ = ["forecast", "load_checkpoint", "online"]
