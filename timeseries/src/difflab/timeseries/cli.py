"""``difflab-timeseries``: command line of difflab.timeseries (probabilistic forecasting with diffusion).

Lightning verbs (``fit``, ``validate``, ``test``, ``predict``) through core's ``run_cli`` with the
shipped configs (``--config spd_gp_taylor``), and the domain verbs:

* ``forecast DATA [--ckpt CKPT] --horizon 24 --samples 100 OUT``: forecast past the end of a series
  (wide / long CSV or GluonTS JSON lines): ``OUT/forecast.csv`` (mean and quantiles 0.05..0.95 per step
  and series) and ``OUT/fan_chart.png``;
* ``demo``: train briefly on the default data, score the held-out period against the baselines,
  write fan charts;
* ``online [--ckpt CKPT]``: rolling evaluation with delayed ground truth (optionally fine-tuning online, and
  with ``--proceed_steps`` Proceed's proactive adaptation);
* ``nll [--ckpt CKPT]``: negative log-likelihood per forecast value of the held-out windows (PF-ODE).

Without ``--ckpt`` the domain verbs use the shipped default (``pretrained/forecaster.ckpt``, see
:mod:`difflab.timeseries.pretrain`) and, unless ``--sampler`` / ``--steps`` are given, its recommended
sampler. This module parses arguments only; loading and the verbs live in :mod:`difflab.timeseries.inference`.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from difflab.core.cli import PackageCLI
from difflab.core.verbs import (
    VerbParser,
    check_output,
    count,
    existing_path,
    positive_float,
    sampler_option,
    seed_option,
)

DESCRIPTION = (
    "difflab-timeseries: probabilistic forecasting with stochastic-process diffusion (GP / OU noise), "
    "a CSDI-style denoiser and a FALDA-style decomposition."
)


def pandas_freq(text: str) -> str:
    """Argument type: a pandas frequency (``h``, ``30min``, ``D``, ``W-SUN``, ``MS``)."""
    from pandas.tseries.frequencies import to_offset

    try:
        to_offset(text)
    except ValueError as err:
        hint = re.findall(r"Did you mean ([^?'\"]+)\?", str(err))
        more = f" (for its unit, did you mean {hint[-1]!r}?)" if hint else ""
        raise argparse.ArgumentTypeError(f"{text!r} is not a pandas frequency{more}") from None
    return text


CKPT_HELP = (
    "checkpoint written by fit (default: the shipped pretrained forecaster, a univariate model applied "
    "to each series; python scripts/pretrain.py timeseries trains it)"
)


def forecast_main(argv: list[str]) -> int:
    """forecast past the end of a series: CSV of quantiles per step and a fan-chart PNG"""
    from difflab.timeseries.inference import forecast

    p = VerbParser(prog="difflab-timeseries forecast", description=forecast_main.__doc__)
    p.add_argument("data", type=existing_path, help="wide CSV, long CSV or GluonTS JSON lines")
    p.add_argument("out", type=Path, help="output folder")
    p.add_argument("--ckpt", default=None, help=CKPT_HELP)
    p.add_argument("--horizon", type=count(1), default=None, help="steps to forecast (default: the model's)")
    p.add_argument("--samples", type=count(1), default=100, help="sample paths")
    p.add_argument("--context", type=count(1), default=None, help="context length (default: the training config's)")
    p.add_argument(
        "--columns", nargs="+", default=None, help="series to forecast, in the model's order (default: the model's)"
    )
    p.add_argument("--freq", type=pandas_freq, default=None, help="pandas frequency (default: inferred)")
    p.add_argument(
        "--format",
        default="auto",
        choices=["auto", "wide", "long", "jsonl"],
        help="data layout (auto: .json/.jsonl are JSON lines, a CSV with item_id and value columns is long, "
        "any other CSV wide; wide: a column per series; jsonl: GluonTS {start, target} lines)",
    )
    sampler_option(p, "the model's; for the shipped default its recommended one")
    p.add_argument(
        "--steps",
        type=count(1),
        default=None,
        help="sampler steps (default: the model's, or the default's recommended)",
    )
    seed_option(p, "the sample paths")
    p.add_argument("--overwrite", action="store_true", help="replace the files of a non-empty output folder")
    ns = p.parse_args(argv)
    check_output(ns.out, ns.overwrite)
    options = {k: v for k, v in vars(ns).items() if k not in ("data", "out", "ckpt", "overwrite", "debug")}
    return forecast(str(ns.data), ns.out, ns.ckpt, **options)


def online_main(argv: list[str]) -> int:
    """rolling forecasts over the test period with delayed ground truth: frozen, fine-tuned online, and
    adapted proactively by Proceed (--proceed_steps)

    The truth of a forecast's horizon is used only once the horizon has passed. Proceed turns the drift
    between the latest arrived windows and the recent ones into a per-layer scale / shift of the
    network before each forecast."""
    from difflab.timeseries.inference import online

    p = VerbParser(prog="difflab-timeseries online", description=online_main.__doc__)
    p.add_argument("--ckpt", default=None, help=CKPT_HELP)
    p.add_argument("--dataset", default=None, help="built-in series name or CSV (default: the checkpoint's data)")
    p.add_argument("--finetune_steps", type=count(0), default=2, help="gradient steps per forecast (0: frozen model)")
    p.add_argument(
        "--finetune_windows", type=count(1), default=32, help="most recent revealed windows each fine-tuning uses"
    )
    p.add_argument("--lr", type=positive_float, default=1e-4, help="learning rate of the fine-tuning")
    p.add_argument(
        "--proceed_steps",
        type=count(0),
        default=0,
        help="train Proceed's drift-to-adaptation generator this many steps on the training split and add "
        "its rows (0: no Proceed rows)",
    )
    p.add_argument("--proceed_lr", type=positive_float, default=3e-4, help="learning rate of Proceed's generator")
    p.add_argument("--samples", type=count(1), default=32, help="sample paths per forecast")
    seed_option(p, "Proceed's training and of the sampling noise")
    p.add_argument(
        "--max_forecasts",
        type=count(1),
        default=None,
        help="stop after this many forecasts (default: the whole test span)",
    )
    p.add_argument("--out", type=Path, default=None, help="write the metric table here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    ns = p.parse_args(argv)
    if ns.out is not None:
        check_output(ns.out, ns.overwrite)
    return online(**{k: v for k, v in vars(ns).items() if k not in ("overwrite", "debug")})


def nll_main(argv: list[str]) -> int:
    """negative log-likelihood of the held-out windows' horizons given their context, per forecast value

    The likelihood is that of the model's probability-flow ODE (RK4 from the smallest trained time to 1,
    Hutchinson divergence), on the data the checkpoint was trained on (its recorded data module).

    Cost: 4 x STEPS network evaluations with one backward pass per probe, per batch of windows (the
    defaults, 32 steps and 1 probe, take 128 evaluations + 128 backward passes per batch). The estimate
    is unbiased; its spread over --seed shrinks with --probes and more windows."""
    from difflab.timeseries.likelihood import nll

    p = VerbParser(prog="difflab-timeseries nll", description=nll_main.__doc__)
    p.add_argument("--ckpt", default=None, help=CKPT_HELP + "; it is scored on the taylor windows")
    p.add_argument("--split", choices=("val", "test"), default="test", help="held-out windows to score")
    p.add_argument("--steps", type=count(1), default=32, help="RK4 steps of the ODE (default 32)")
    p.add_argument("--probes", type=count(1), default=1, help="Hutchinson probes per evaluation (default 1)")
    p.add_argument("--batch_size", type=count(1), default=16, help="windows per batch")
    p.add_argument("--max_windows", type=count(1), default=None, help="score only the first windows")
    seed_option(p, "the probes")
    p.add_argument("--out", type=Path, default=None, help="write the result line here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    ns = p.parse_args(argv)
    if ns.out is not None:
        check_output(ns.out, ns.overwrite)
    return nll(**{k: v for k, v in vars(ns).items() if k not in ("overwrite", "debug")})


LINKS = [
    ("data.num_series", "model.init_args.network.init_args.num_series"),
    ("data.series_names", "model.init_args.series_names"),
    ("data.frequency", "model.init_args.frequency"),
    ("data.context_length", "model.init_args.context_length"),
    ("data.prediction_length", "model.init_args.prediction_length"),
]
"""What the data decides: the number of series, their names and order, the frequency and the window
lengths, given by the data module to the model when both are built (and recorded in its checkpoint;
see :mod:`difflab.timeseries.models.data_settings`)."""


main = PackageCLI(
    "timeseries",
    DESCRIPTION,
    {"forecast": forecast_main, "online": online_main, "nll": nll_main},
    "train briefly on the default data, score the held-out period against the baselines, write fan charts",
    model="difflab.timeseries.models.spd:StochasticProcessDiffusion",
    datamodule="difflab.timeseries.data.datamodule:ForecastDataModule",
    datamodule_default="difflab.timeseries.data.datamodule:ForecastDataModule",
    links=LINKS,
).main
"""``difflab-timeseries``: the package's command line (Lightning verbs and the domain verbs)."""


if __name__ == "__main__":
    raise SystemExit(main())
