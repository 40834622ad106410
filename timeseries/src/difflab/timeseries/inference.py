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
from difflab.core.progress import StepProgress, artifact, note


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
    """A series with no observed value in the last ``context`` steps cannot be forecast; one with some
    missing values there is forecast from the others (masked, never filled), with a note naming it."""
    observed = ~np.isnan(np.asarray(table.values[-context:], dtype=float))
    empty = [name for name, seen in zip(table.names, observed.any(axis=0), strict=True) if not seen]
    if empty:
        raise UserError(
            f"{data}: series {', '.join(map(str, empty[:5]))}{' ...' if len(empty) > 5 else ''} "
            f"have no observed value in the last {context} steps (--context); nothing to forecast from"
        )
    missing = [(name, int(n)) for name, n in zip(table.names, (~observed).sum(axis=0), strict=True) if n]
    if missing:
        listed = ", ".join(f"{name} ({n} of {context})" for name, n in missing[:5])
        more = f" and {len(missing) - 5} more series" if len(missing) > 5 else ""
        note(f"{data}: missing values in the context, masked (not filled): {listed}{more}")


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


def default_checkpoint(ckpt: str | Path | None) -> Path:
    """``ckpt`` (a run folder: its newest ``last.ckpt``), or the shipped default forecaster when none is given."""
    from difflab.core.lightning.checkpoint import checkpoint_file
    from difflab.core.lightning.pretrained import checkpoint_or_default

    return checkpoint_file(checkpoint_or_default(ckpt, "timeseries", "forecaster"))


def sampling_settings(path: Path, sampler: str | None, steps: int | None) -> tuple[str | None, int | None]:
    """``(sampler, steps)``: those given, else the ones a shipped default recommends (else None: the model's)."""
    from difflab.core.lightning.pretrained import recommended_sampling

    if sampler is not None and steps is not None:
        return sampler, steps
    rec = recommended_sampling(path)
    if sampler is None:
        return rec.get("sampler"), steps if steps is not None else rec.get("steps")
    return sampler, steps  # a sampler chosen by hand keeps the model's steps unless given


def forecast(
    data: str,
    out: Path,
    ckpt: str | Path | None = None,
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
    0.05..0.95 per step and series) and ``out/fan_chart.png``. Without ``ckpt`` the shipped default
    forecaster (:mod:`difflab.timeseries.pretrain`) with its recommended sampler."""
    from difflab.timeseries.data.table import read_table
    from difflab.timeseries.evaluate import future_batch
    from difflab.timeseries.models.data_settings import check_forecast_frequency

    path = default_checkpoint(ckpt)
    sampler, steps = sampling_settings(path, sampler, steps)
    model, data_hp = load_checkpoint(path)
    table = read_table(data, format=format, columns=columns, freq=freq)
    if not getattr(model, "series_independent", False):
        table = match_series(table, model, data, bool(columns))
    check_forecast_frequency(getattr(model, "frequency", None), table.freq, freq, data)
    context = context or int(getattr(model, "context_length", None) or data_hp.get("context_length", 96))
    horizon = horizon or int(getattr(model, "prediction_length", None) or data_hp.get("prediction_length", 24))
    _check_lengths(model, context, horizon)
    _check_context(table, context, data)
    batch, fut_t = future_batch(table, context, horizon, scaling=data_hp.get("scaling", "standard"), freq=freq)
    gen = torch.Generator().manual_seed(seed)
    n_steps = steps or model.sample_steps
    groups = _series_groups(model, len(table.names), samples)
    calls = sum(-(-len(g) * samples // model.sample_chunk) for g in groups)
    bar = StepProgress(f"forecast {Path(data).name}", n_steps * calls)
    shown: list[np.ndarray] = []
    csv = out / "forecast.csv"
    for k, group in enumerate(groups):
        part = _series_batch(batch, group) if getattr(model, "series_independent", False) else batch
        s = model.forecast(part, samples, sampler=sampler, steps=steps, generator=gen, callback=bar)
        paths = model.unscale(s, part)[:, :, context:].numpy()  # (S, B, H, D)
        paths = paths.transpose(0, 2, 1, 3).reshape(samples, horizon, -1)  # (S, H, series of the group)
        _append_quantile_csv(csv, fut_t, [table.names[j] for j in group], paths, first=k == 0)
        if sum(x.shape[-1] for x in shown) < 8:
            shown.append(paths[..., : 8 - sum(x.shape[-1] for x in shown)])
    bar.close()
    artifact(
        csv, f"mean and quantiles 0.05..0.95 of {samples} sample paths, {horizon} steps x {len(table.names)} series"
    )
    _write_fan_chart(out / "fan_chart.png", table, np.concatenate(shown, axis=-1), fut_t, context, data)
    return 0


def _series_groups(model, num_series: int, samples: int) -> list[list[int]]:
    """Column groups forecast together: all columns for a multivariate model; for a series-independent
    one, as many series as fill one sampling chunk (``sample_chunk // samples``, at least 1)."""
    if not getattr(model, "series_independent", False):
        return [list(range(num_series))]
    size = max(1, model.sample_chunk // max(samples, 1))
    return [list(range(lo, min(lo + size, num_series))) for lo in range(0, num_series, size)]


def _series_batch(batch: dict[str, torch.Tensor], columns: list[int]) -> dict[str, torch.Tensor]:
    """The one-window, ``D``-series ``batch`` as a batch of ``len(columns)`` one-series windows:
    ``(1, L, D)`` cell tensors become ``(B, L, 1)``, ``loc`` / ``scale`` ``(B, 1, 1)``, ``times``
    ``(B, L)``, ``calendar`` ``(B, L, F)``."""
    idx = torch.tensor(columns)
    b = len(columns)
    out = {}
    for key, value in batch.items():
        if key in ("x0", "observed", "cond_mask", "target_mask", "loc", "scale"):
            out[key] = value[0][:, idx].T[:, :, None].contiguous()
        elif key in ("times", "calendar"):
            out[key] = value.expand(b, *value.shape[1:]).contiguous()
        else:
            out[key] = value.expand(b, *value.shape[1:]).contiguous() if value.ndim else value
    return out


def _append_quantile_csv(path: Path, timestamps, names, paths: np.ndarray, *, first: bool) -> None:
    """Rows of :func:`~difflab.timeseries.evaluate.write_quantile_csv` for ``names``, appended to ``path``
    (written anew with its header when ``first``): the output grows by one group at a time."""
    import pandas as pd

    from difflab.timeseries.evaluate import CSV_FLOATS
    from difflab.timeseries.metrics import QUANTILES, sample_quantiles

    qs = sample_quantiles(paths, QUANTILES)  # (Q, H, n)
    h, n = paths.shape[1], paths.shape[2]
    frame = {
        "timestamp": np.repeat(pd.DatetimeIndex(timestamps), n),
        "series": np.tile(np.asarray([str(x) for x in names], dtype=object), h),
        "mean": paths.mean(0).reshape(-1),
    }
    frame.update({f"q{q:.2f}": qs[k].reshape(-1) for k, q in enumerate(QUANTILES)})
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(frame).to_csv(path, index=False, mode="w" if first else "a", header=first, float_format=CSV_FLOATS)


def _write_fan_chart(png: Path, table, paths: np.ndarray, fut_t, context: int, data: str) -> None:
    from difflab.timeseries.figures import save_fan_charts

    panels = _fan_panels(table, paths, fut_t, context)
    save_fan_charts(png, panels, suptitle=f"forecast of {Path(data).name}")
    artifact(png, "fan chart: context, median, 50% and 90% intervals of the forecast")


def evaluation_data(data_hp: dict[str, Any]) -> dict[str, Any]:
    """:class:`~difflab.timeseries.data.ForecastDataModule` arguments of the data a checkpoint records:
    its data module's own, or for the shipped default (trained on several datasets, one series at a
    time) the first training dataset's, ``taylor``, with its window lengths."""
    hp = {k: v for k, v in data_hp.items() if not k.startswith("_")}
    if "datasets" not in hp:
        return hp
    keep = ("context_length", "prediction_length", "scaling", "batch_size", "seed")
    return {"dataset": list(hp["datasets"])[0], **{k: hp[k] for k in keep if k in hp}}


def online(
    ckpt: str | Path | None = None,
    *,
    dataset: str | None = None,
    finetune_steps: int = 2,
    finetune_windows: int = 32,
    lr: float = 1e-4,
    proceed_steps: int = 0,
    proceed_lr: float = 3e-4,
    samples: int = 32,
    seed: int = 0,
    max_forecasts: int | None = None,
    out: Path | None = None,
) -> int:
    """Rolling forecasts over the test period with delayed ground truth: frozen, fine-tuned online and,
    with ``proceed_steps``, adapted proactively by Proceed (its generator trained for that many steps on
    the training split first); prints the metric table (and writes it to ``out``)."""
    from difflab.timeseries.metrics import format_table
    from difflab.timeseries.online import online_evaluate

    ckpt = default_checkpoint(ckpt)
    dm = _online_data(ckpt, dataset)
    proceed = _fit_proceed(ckpt, dm, proceed_steps, proceed_lr, seed) if proceed_steps > 0 else None
    variants: dict[str, tuple[int, Any]] = {"frozen": (0, None)}
    if finetune_steps:
        variants[f"finetune x{finetune_steps}"] = (finetune_steps, None)
    if proceed is not None:
        variants["Proceed"] = (0, proceed)
        if finetune_steps:
            variants[f"Proceed + finetune x{finetune_steps}"] = (finetune_steps, proceed)
    rows = {}
    for name, (steps, adapter) in variants.items():
        model, _ = load_checkpoint(ckpt)
        options = dict(finetune_steps=steps, finetune_windows=finetune_windows, lr=lr, num_samples=samples, seed=seed)
        rows[name] = online_evaluate(model, dm, **options, max_forecasts=max_forecasts, proceed=adapter)["metrics"]
    table = format_table(rows, keys=("crps", "crps_ens", "mae", "mse", "cov50", "cov90", "cpu_s"))
    print(table)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(table + "\n")
        artifact(out, "online metrics with delayed ground truth")
    return 0


def _online_data(ckpt: Path, dataset: str | None):
    """The data module of the online run: the checkpoint's data, or ``dataset`` with its window lengths."""
    from difflab.timeseries.data import ForecastDataModule
    from difflab.timeseries.models.data_settings import model_settings

    model, data_hp = load_checkpoint(ckpt)
    hp = evaluation_data(data_hp)
    if dataset is not None:
        hp = {k: v for k, v in hp.items() if k in ("context_length", "prediction_length", "scaling", "seed")}
        hp["dataset"] = dataset
    dm = ForecastDataModule(**hp)
    dm.setup()
    count = model_settings(model)["num_series"]
    if dataset is not None and count is not None and dm.num_series != count:
        raise UserError(f"--dataset {dataset}: {dm.num_series} series, but the model forecasts {count} at once")
    return dm


def _fit_proceed(ckpt: Path, dm, steps: int, lr: float, seed: int):
    """Proceed's encoder and generator for the checkpoint's network, trained on ``dm``'s training split."""
    from difflab.timeseries.proceed import Proceed, fit_proceed

    model, _ = load_checkpoint(ckpt)
    torch.manual_seed(seed)
    proceed = Proceed(model.network, dm.context_length, dm.num_series)
    fit_proceed(proceed, model, dm, steps=steps, lr=lr, seed=seed)
    return proceed


__all__ = ["default_checkpoint", "evaluation_data", "forecast", "load_checkpoint", "online", "sampling_settings"]
