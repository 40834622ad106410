"""What the data decides for a forecaster, and the checks of other data against it.

A forecaster is trained on ``D`` named series of one frequency, in windows of ``context_length +
prediction_length`` steps. The command line links these from the data module into the model
(:data:`difflab.timeseries.cli.LINKS`), so they are the model's hyper-parameters and its checkpoint
records them. Data given later must match them:

* **series**: the network embeds each series by its position, so a model of ``D`` series takes
  exactly ``D`` series, in its order (a model of one series takes any one series);
* **frequency**: the GP / OU kernels, the timestamp embedding and the calendar features are in steps
  of the training frequency, so hourly data given to a half-hourly model would be forecast as if
  its steps were half-hours: refused;
* **window lengths**: fixed only for models whose backbone maps ``C`` steps to ``H`` steps (the
  decomposition, ``FIXED_LENGTHS``); the others forecast any context and horizon.

Every check raises a one-line :class:`~difflab.core.errors.UserError` naming both values and the option
that changes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from difflab.core.errors import UserError
from difflab.timeseries.data.table import same_freq


def series_text(names: Sequence[str] | None, count: int | None = None) -> str:
    """``3 series ['a', 'b', 'c']`` (at most six names shown)."""
    names = list(names or [])
    n = count if count is not None else len(names)
    if not names:
        return f"{n} series"
    shown = ", ".join(repr(str(x)) for x in names[:6]) + (", ..." if len(names) > 6 else "")
    return f"{n} series [{shown}]"


def recorded_settings(hparams: dict[str, Any]) -> dict[str, Any]:
    """The data settings a checkpoint's hyper-parameters record (``None`` where it records none)."""
    network = hparams.get("network")
    init = network.get("init_args", {}) if isinstance(network, dict) else {}
    return {
        "num_series": init.get("num_series"),
        "series_names": hparams.get("series_names"),
        "frequency": hparams.get("frequency"),
        "context_length": hparams.get("context_length"),
        "prediction_length": hparams.get("prediction_length"),
    }


def model_settings(model: Any) -> dict[str, Any]:
    """The data settings of a built forecaster."""
    return {
        "num_series": getattr(getattr(model, "network", None), "num_series", None),
        "series_names": getattr(model, "series_names", None),
        "frequency": getattr(model, "frequency", None),
        "context_length": getattr(model, "context_length", None),
        "prediction_length": getattr(model, "prediction_length", None),
    }


def series_differ(trained: dict[str, Any], given: dict[str, Any]) -> bool:
    """True when data of ``given``'s series cannot go to a model trained on ``trained``'s."""
    n_old, n_new = trained.get("num_series"), given.get("num_series")
    if n_old is not None and n_new is not None and int(n_old) != int(n_new):
        return True
    old, new = trained.get("series_names"), given.get("series_names")
    return bool(old and new and len(old) > 1 and [str(x) for x in old] != [str(x) for x in new])


def check_test_data(trained: dict[str, Any], given: dict[str, Any], dataset: Any, fixed_lengths: bool) -> None:
    """A trained model (settings ``trained``) evaluated on a data module (``given``, built from
    ``--data.init_args.dataset dataset``): a :class:`UserError` for the first setting that differs."""
    where = f"--data.init_args.dataset {dataset}"
    if series_differ(trained, given):
        raise UserError(
            f"{where}: the data has {series_text(given['series_names'], given['num_series'])}, the checkpoint's "
            f"model was trained on {series_text(trained['series_names'], trained['num_series'])}; give it data "
            "with those series, in that order (--data.init_args.dataset, --data.init_args.columns)"
        )
    old, new = trained.get("frequency"), given.get("frequency")
    if old is not None and not same_freq(old, new):
        raise UserError(
            f"{where}: the data's frequency is {new or 'irregular'}, the checkpoint's model was trained on {old} "
            f"data; give it data of frequency {old} (--data.init_args.dataset; --data.init_args.freq for "
            "timestamps whose frequency is not inferred)"
        )
    for name in ("context_length", "prediction_length") if fixed_lengths else ():
        old, new = trained.get(name), given.get(name)
        if old is not None and new is not None and int(old) != int(new):
            raise UserError(
                f"--data.init_args.{name} {new}: the checkpoint's model was trained for {name}={old} and "
                f"supports only that; pass --data.init_args.{name} {old}"
            )


def check_forecast_frequency(trained: str | None, data_freq: str | None, given_freq: str | None, data: str) -> None:
    """A series to forecast has the model's frequency (``given_freq``: ``--freq``, else the inferred one)."""
    if trained is None:
        return
    new = given_freq or data_freq
    if new is None or same_freq(trained, new):
        return
    what = f"--freq {given_freq}:" if given_freq else f"{data}: the series' frequency is {new}, but"
    raise UserError(
        f"{what} the model was trained on {trained} data; forecast a series of frequency {trained} "
        f"(or give a model trained on {new} data with --ckpt)"
    )


__all__ = [
    "check_forecast_frequency",
    "check_test_data",
    "model_settings",
    "recorded_settings",
    "series_differ",
    "series_text",
]
