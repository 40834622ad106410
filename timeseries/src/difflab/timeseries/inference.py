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
from difflab.core.progress import StepProgress


def load_checkpoint(path: str | Path):
    """``(model, datamodule hyperparameters)`` from a checkpoint written by ``fit``, or from a run
    folder (its newest ``last.ckpt``)."""
    import difflab.timeseries.models.falda  # noqa: F401  (the method classes a checkpoint may name)
    from difflab.core.lightning import load_checkpoint as load
    from difflab.core.lightning import read_checkpoint
    from difflab.core.lightning.checkpoint import checkpoint_file
    from difflab.timeseries.models.spd import StochasticProcessDiffusion

    model = load(path, StochasticProcessDiffusion)
    path = checkpoint_file(path)
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
    if not getattr(model, "FIXED_LENGTHS", False):
        return
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


def match_series(table, model, data: str, columns_given: bool):
    """``table`` with the model's series in the model's order.

    Without ``--columns`` the model's series are picked by name (in its order); a model of one series
    takes a file of one series whatever its name. With ``--columns`` the chosen series are taken in
    the given order, and only their number must match. Anything else is a one-line error naming both
    sets of series and ``--columns``.
    """
    from difflab.timeseries.models.data_settings import model_settings, series_text

    trained = model_settings(model)
    names, count = trained["series_names"], trained["num_series"]
    count = count if count is not None else (len(names) if names else None)
    if count is None:
        return table
    if not columns_given and names and len(names) == count and set(map(str, names)) <= set(map(str, table.names)):
        by_text = {str(n): n for n in table.names}
        return table.select([by_text[str(n)] for n in names])
    if len(table.names) == count and (columns_given or count == 1 or not names):
        return table
    what = f"--columns {' '.join(map(str, table.names))}" if columns_given else data
    raise UserError(
        f"{what}: {series_text(table.names)}, but the model forecasts {series_text(names, count)}; "
        f"choose {'one' if count == 1 else count} with --columns (in the model's order)"
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
    from difflab.timeseries.models.data_settings import check_forecast_frequency

    model, data_hp = load_checkpoint(ckpt)
    table = match_series(read_table(data, format=format, columns=columns, freq=freq), model, data, bool(columns))
    check_forecast_frequency(getattr(model, "frequency", None), table.freq, freq, data)
    context = context or int(getattr(model, "context_length", None) or data_hp.get("context_length", 96))
    horizon = horizon or int(getattr(model, "prediction_length", None) or data_hp.get("prediction_length", 24))
    _check_lengths(model, context, horizon)
    _check_context(table, context, data)
    batch, fut_t = future_batch(table, context, horizon, scaling=data_hp.get("scaling", "standard"), freq=freq)
    gen = torch.Generator().manual_seed(seed)
    n_steps = steps or model.sample_steps
    bar = StepProgress(f"forecast {Path(data).name}", n_steps * -(-samples // model.sample_chunk))
    s = model.forecast(batch, samples, sampler=sampler, steps=steps, generator=gen, callback=bar)
    bar.close()
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
