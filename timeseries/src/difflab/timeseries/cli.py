"""``difflab-timeseries``: command line of difflab.timeseries (probabilistic forecasting with diffusion).

Lightning verbs (``fit``, ``validate``, ``test``, ``predict``) through core's ``run_cli`` with the
shipped configs (``--config spd_gp_taylor``), and the domain verbs:

* ``forecast DATA --ckpt CKPT --horizon 24 --samples 100 OUT``: forecast past the end of a series
  (wide / long CSV or GluonTS JSON lines): ``OUT/forecast.csv`` (mean and quantiles 0.05..0.95 per step
  and series) and ``OUT/fan_chart.png``;
* ``demo``: train briefly on the default data, score the held-out period against the baselines,
  write fan charts;
* ``online``: rolling evaluation with delayed ground truth (optionally fine-tuning online).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from difflab.core.cli import exit_code, run_cli

DESCRIPTION = (
    "difflab-timeseries: probabilistic forecasting with stochastic-process diffusion (GP / OU noise), "
    "a CSDI-style denoiser and a FALDA-style decomposition."
)


def load_checkpoint(path: str | Path):
    """``(model, datamodule hyperparameters)`` from a checkpoint written by ``fit``."""
    import torch

    import difflab.timeseries.models.falda  # noqa: F401  (every method class is importable for the checkpoint)
    from difflab.timeseries.models.spd import StochasticProcessDiffusion

    ckpt = torch.load(str(path), map_location="cpu", weights_only=False)
    model = StochasticProcessDiffusion.load_from_checkpoint(str(path), map_location="cpu")
    data_hp = dict(ckpt.get("datamodule_hyper_parameters") or {})
    if "init_args" in data_hp:
        data_hp = dict(data_hp["init_args"])
    return model, data_hp


def forecast_main(argv: list[str]) -> int:
    """forecast past the end of a series: CSV of quantiles per step and a fan-chart PNG"""
    import torch

    from difflab.timeseries.data.table import read_table
    from difflab.timeseries.evaluate import future_batch, write_quantile_csv
    from difflab.timeseries.plots import save_fan_charts

    p = argparse.ArgumentParser(prog="difflab-timeseries forecast", description=forecast_main.__doc__)
    p.add_argument("data", help="wide CSV, long CSV or GluonTS JSON lines")
    p.add_argument("out", type=Path, help="output folder")
    p.add_argument("--ckpt", required=True, help="checkpoint written by fit")
    p.add_argument("--horizon", type=int, default=None, help="steps to forecast (default: the model's)")
    p.add_argument("--samples", type=int, default=100, help="sample paths")
    p.add_argument("--context", type=int, default=None, help="context length (default: the training config's)")
    p.add_argument("--columns", nargs="*", default=None, help="series to forecast (default: all)")
    p.add_argument("--freq", default=None, help="pandas frequency (default: inferred)")
    p.add_argument("--format", default="auto", choices=["auto", "wide", "long", "jsonl"])
    p.add_argument("--sampler", default=None, help="core sampler name (default: the model's)")
    p.add_argument("--steps", type=int, default=None, help="sampler steps")
    p.add_argument("--seed", type=int, default=0)
    ns = p.parse_args(argv)
    model, data_hp = load_checkpoint(ns.ckpt)
    model.eval()
    table = read_table(ns.data, format=ns.format, columns=ns.columns, freq=ns.freq)
    context = ns.context or int(data_hp.get("context_length", 96))
    horizon = ns.horizon or int(data_hp.get("prediction_length", 24))
    batch, fut_t = future_batch(table, context, horizon, scaling=data_hp.get("scaling", "standard"), freq=ns.freq)
    gen = torch.Generator().manual_seed(ns.seed)
    s = model.forecast(batch, ns.samples, sampler=ns.sampler, steps=ns.steps, generator=gen)
    paths = model.unscale(s, batch)[:, 0, context:].numpy()  # (S, H, D)
    csv = write_quantile_csv(ns.out / "forecast.csv", fut_t, table.names, paths)
    print(
        f"artifact: {csv} | mean and quantiles 0.05..0.95 of {ns.samples} sample paths, "
        f"{horizon} steps x {len(table.names)} series"
    )
    show = min(len(table.names), 8)
    ctx_t = table.timestamps[-context:]
    panels = [
        dict(
            context_t=ctx_t,
            context_y=table.values[-context:, j],
            future_t=fut_t,
            samples=paths[:, :, j],
            title=table.names[j],
        )
        for j in range(show)
    ]
    png = save_fan_charts(ns.out / "fan_chart.png", panels, suptitle=f"forecast of {Path(ns.data).name}")
    print(f"artifact: {png} | fan chart: context, median, 50% and 90% intervals of the forecast")
    return 0


def demo_main(argv: list[str]) -> int:
    """train briefly on the default data, score the held-out period against the baselines, write fan charts"""
    from difflab.timeseries.demo import run_demo

    p = argparse.ArgumentParser(prog="difflab-timeseries demo", description=demo_main.__doc__)
    p.add_argument("--out", type=Path, default=Path("outputs/demo/timeseries"), help="output folder")
    p.add_argument("--max_steps", type=int, default=600, help="training steps per diffusion model")
    p.add_argument("--samples", type=int, default=50, help="sample paths per forecast")
    p.add_argument("--seed", type=int, default=0)
    ns = p.parse_args(argv)
    run_demo(ns.out, max_steps=ns.max_steps, num_samples=ns.samples, seed=ns.seed)
    return 0


def online_main(argv: list[str]) -> int:
    """rolling forecasts over the test period with delayed ground truth, optionally fine-tuning online"""
    from difflab.timeseries.online import run_online_cli

    return run_online_cli(argv)


def main(args: list[str] | None = None) -> int:
    from difflab.timeseries.data.datamodule import ForecastDataModule
    from difflab.timeseries.models.spd import StochasticProcessDiffusion

    result = run_cli(
        StochasticProcessDiffusion,
        ForecastDataModule,
        package="timeseries",
        args=sys.argv[1:] if args is None else args,
        extra_commands={"forecast": forecast_main, "demo": demo_main, "online": online_main},
        datamodule_default=ForecastDataModule,
        description=DESCRIPTION,
    )
    return exit_code(result)


if __name__ == "__main__":
    raise SystemExit(main())
