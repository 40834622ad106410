"""Side-by-side benchmark of difflab.timeseries on the held-out taylor demand.

Three parts (``--part``, default all, in this order):

* ``forecast``: trains each diffusion variant for the same number of steps on CPU, then prints CRPS,
  CRPS-sum, exact ensemble CRPS, coverage and sampling time for GP and OU stochastic-process
  diffusion (discrete), continuous GP (CSPD), the CSDI-style model with white noise, the FALDA-style
  decomposition, seasonal naive and ETS, with each CRPS as a ratio to seasonal naive;
* ``samplers``: one trained DSPD-GP model sampled with DDPM (transition variance, the default, and
  posterior variance) and DDIM (on the chain's integer steps, and on core's default log-SNR grid);
* ``impute``: the CSDI-style model trained with ``task: impute`` (hidden values drawn per window)
  against linear interpolation on the test windows, CRPS and MAE on the hidden values.

    python benchmarks/timeseries.py --max_steps 300 --samples 32

Two modes on the shipped default forecaster (``pretrained/forecaster.ckpt``):

* ``--pretrained``: its evaluation table against seasonal naive, last-value naive, ETS and SARIMA on
  held-out windows of taylor, tmy3 and the never-seen sf_temps (as recorded by ``scripts/pretrain.py``;
  ``--rerun`` scores it again here);
* ``--field N``: ``difflab-timeseries forecast`` without ``--ckpt`` on a generated wide CSV of ``N``
  hourly series (``--samples``, ``--steps``), in a child process: wall time and peak resident memory,
  against the same for a tenth of the series (memory that grows with the series beyond the output
  would show as a ratio near 10).

``--online``: the shipped default scored online over each test period with delayed ground truth
(``online.online_evaluate``; forecasts every 48 steps, the truth of a horizon used only once it has
passed) with no adaptation, plain online fine-tuning (``--finetune_steps`` Adam steps at 1e-4 per
forecast on the 32 latest arrived windows), Proceed (generator trained ``--proceed_steps`` steps on the
training split), Proceed with its drift set to zero (what its learned constant part alone does) and
Proceed with fine-tuning: CRPS and its ratio to no adaptation, MAE, coverage and CPU seconds per
forecast (adaptation included), on ``--online_data`` (default ``sf_temps``, a series the default never
saw, with a seasonal drift from its training to its test period, and ``taylor``).

    python benchmarks/timeseries.py --online --samples 16
"""

from __future__ import annotations

import argparse
import time

import torch

from difflab.core.samplers.select import default_grid
from difflab.core.tables import markdown_header, markdown_row
from difflab.timeseries.data import ForecastDataModule
from difflab.timeseries.demo import CONTEXT, HORIZON, build, small_network, train
from difflab.timeseries.evaluate import (
    baseline_samples,
    imputation_samples,
    imputation_truth,
    interpolation_samples,
    model_samples,
    score,
)
from difflab.timeseries.metrics import format_table, metric_table
from difflab.timeseries.models.spd import StochasticProcessDiffusion


def cspd(seed: int) -> StochasticProcessDiffusion:
    torch.manual_seed(seed)
    return StochasticProcessDiffusion(
        small_network(),
        noise="gp",
        diffusion="continuous",
        sampler="euler_maruyama",
        sample_steps=50,
        val_samples=0,
        optimizer=lambda q: torch.optim.Adam(q, 2e-3),
    )


def forecast_part(ns, dm) -> None:
    test = dm.test_set
    rows = {}
    for name in ("seasonal_naive", "ets"):
        t0 = time.perf_counter()
        s = baseline_samples(test, name, dm.seasonality, ns.samples, ns.seed)
        rows[name] = score(s, test, time.perf_counter() - t0)
    variants = {
        "spd_gp (DSPD)": lambda: build("spd_gp", ns.seed),
        "spd_ou (DSPD)": lambda: build("spd_ou", ns.seed),
        "cspd_gp (continuous)": lambda: cspd(ns.seed),
        "csdi (white)": lambda: build("csdi", ns.seed),
        "falda_gp (decomposition)": lambda: build("falda_gp", ns.seed),
    }
    for name, make in variants.items():
        model = train(make(), dm, ns.max_steps, ns.seed)
        t0 = time.perf_counter()
        s = model_samples(model, test, num_samples=ns.samples, seed=ns.seed)
        rows[name] = score(s, test, time.perf_counter() - t0)
        print(f"  {name}: crps {rows[name]['crps']:.4f}", flush=True)
    base = rows["seasonal_naive"]["crps"]
    for r in rows.values():
        r["crps/naive"] = r["crps"] / base
    print(
        f"FORECAST: taylor test period, {len(test)} windows, {CONTEXT}+{HORIZON} steps, {ns.max_steps} training "
        f"steps, {ns.samples} samples; seconds = forecasting time of the test set"
    )
    print(format_table(rows, keys=("crps", "crps/naive", "crps_sum", "crps_ens", "mae", "cov50", "cov90", "seconds")))


def sampler_part(ns, dm) -> None:
    test = dm.test_set
    model = train(build("spd_gp", ns.seed), dm, ns.max_steps, ns.seed)
    k = model.num_steps
    runs = {
        "ddpm 50, transition variance (default)": dict(sampler="ddpm", steps=k),
        "ddpm 50, posterior variance": dict(sampler="ddpm", steps=k, variance="fixed_small"),
        "ddim 50, integer steps (default)": dict(sampler="ddim", steps=k),
        "ddim 10, integer steps": dict(sampler="ddim", steps=10),
        "ddim 50, core log-SNR grid": dict(sampler="ddim", steps=k, grid=default_grid("ddim", model.process, k)),
        "ddim 10, core log-SNR grid": dict(sampler="ddim", steps=10, grid=default_grid("ddim", model.process, 10)),
    }
    rows = {}
    for name, kw in runs.items():
        opts = {key: kw.pop(key) for key in ("variance", "grid") if key in kw}
        model.sampler_name, model.sampler_options = kw["sampler"], opts
        t0 = time.perf_counter()
        s = model_samples(model, test, num_samples=ns.samples, seed=ns.seed, steps=kw["steps"])
        rows[name] = score(s, test, time.perf_counter() - t0)
        rows[name]["spread"] = float(s.std(0).mean())
        print(f"  {name}: crps {rows[name]['crps']:.4f}", flush=True)
    print(
        f"SAMPLERS: DSPD-GP, {ns.max_steps} training steps, taylor test period, {ns.samples} samples; "
        "spread = mean std of the samples per step (MW)"
    )
    print(format_table(rows, keys=("crps", "mae", "cov50", "cov90", "spread", "seconds")))


def impute_part(ns) -> None:
    dm = ForecastDataModule(
        "taylor",
        context_length=CONTEXT,
        prediction_length=HORIZON,
        batch_size=32,
        task="impute",
        impute_ratio=ns.impute_ratio,
        seed=ns.seed,
    )
    dm.setup()
    test = dm.test_set
    y, m = imputation_truth(test)
    rows = {"linear interpolation": metric_table(interpolation_samples(test), y, m)}
    model = train(build("csdi", ns.seed), dm, ns.max_steps, ns.seed)
    t0 = time.perf_counter()
    s = imputation_samples(model, test, num_samples=ns.samples, seed=ns.seed)
    rows["csdi (white)"] = metric_table(s, y, m)
    rows["csdi (white)"]["seconds"] = time.perf_counter() - t0
    print(
        f"IMPUTE: taylor test period, {len(test)} windows of {CONTEXT + HORIZON} steps, {ns.impute_ratio:.0%} of the "
        f"values hidden ({int(m.sum())} values), {ns.max_steps} training steps, {ns.samples} samples"
    )
    print(format_table(rows, keys=("crps", "crps_ens", "mae", "mse", "cov50", "cov90", "seconds")))


def pretrained_part(ns) -> None:
    from difflab.core.lightning.pretrained import pretrained_info, shipped_path
    from difflab.timeseries.inference import load_checkpoint
    from difflab.timeseries.pretrain import evaluate, evaluation_sets, format_evaluation

    path = shipped_path("timeseries", "forecaster")
    info = pretrained_info(path)
    print(
        f"PRETRAINED: {path.name} ({path.stat().st_size / 2**20:.2f} MiB), {info['steps']} steps in "
        f"{info['wall_minutes']} min, sampling {info['sampling']}; CRPS = mean over series of each series' "
        "CRPS; snaive = CRPS / seasonal naive's; cov90 = coverage of the 90 % interval"
    )
    if ns.rerun:
        torch.set_num_threads(1)
        model, _ = load_checkpoint(path)
        result = evaluate(model, evaluation_sets("test"), samples=ns.samples, seed=ns.seed, **info["sampling"])
    else:
        result = info["evaluation"]["test"]
    print(format_evaluation(result))


def field_part(ns) -> None:
    import os
    import subprocess
    import sys
    import tempfile

    import numpy as np
    import pandas as pd

    def run(n: int, folder: str) -> tuple[float, float]:
        rng = np.random.default_rng(0)
        t = np.arange(24 * 14)
        data = np.sin(2 * np.pi * t[:, None] / 24 + rng.uniform(0, 6, n)) * rng.uniform(1, 5, n)
        data = data + rng.normal(0, 0.3, (len(t), n)) + rng.uniform(0, 50, n)
        frame = pd.DataFrame(data, columns=[f"s{j}" for j in range(n)])
        frame.insert(0, "date", pd.date_range("2024-01-01", periods=len(t), freq="h"))
        csv = os.path.join(folder, f"field{n}.csv")
        frame.to_csv(csv, index=False, float_format="%.3f")
        code = (
            "import resource, sys, time, torch; torch.set_num_threads(1); "
            "from difflab.timeseries.cli import main; t = time.perf_counter(); "
            f"rc = main(['forecast', {csv!r}, {os.path.join(folder, f'out{n}')!r}, '--samples', '{ns.samples}', "
            f"'--steps', '{ns.steps}', '--context', '96', '--horizon', '24']); "
            "print('RESULT', time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        line = [x for x in out.splitlines() if x.startswith("RESULT")][-1].split()
        return float(line[1]), float(line[2])

    with tempfile.TemporaryDirectory() as folder:
        rows = {n: run(n, folder) for n in (max(ns.field // 10, 1), ns.field)}
    print(
        f"FIELD: forecast without --ckpt, hourly wide CSV of 336 rows, context 96, horizon 24, {ns.samples} "
        f"samples, {ns.steps} steps; one torch thread"
    )
    print(markdown_header(["series", "wall s", "s per series", "peak RSS MiB"], "r"))
    for n, (wall, rss) in rows.items():
        print(markdown_row([n, wall, wall / n, rss], [".0f", ".1f", ".3f", ".0f"]))


class WithoutDrift:
    """A trained Proceed whose drift is replaced by zero: its adaptation is then the same for every
    forecast, ``a_l = U_g sigmoid(e_l) + s_l`` (the ablation of the drift)."""

    def __init__(self, proceed) -> None:
        self.proceed, self.windows = proceed, proceed.windows

    def __getattr__(self, name: str):
        return getattr(self.proceed, name)

    def adaptation(self, series, recent, training):
        concept_dim = self.proceed.generator.down[0].in_features
        return self.proceed.generator(torch.zeros(len(recent), concept_dim))


def online_part(ns) -> None:
    from difflab.core.lightning.pretrained import shipped_path
    from difflab.timeseries.inference import load_checkpoint
    from difflab.timeseries.online import online_evaluate
    from difflab.timeseries.proceed import Proceed, fit_proceed

    torch.set_num_threads(1)
    path = shipped_path("timeseries", "forecaster")
    for name in ns.online_data:
        dm = ForecastDataModule(name, context_length=96, prediction_length=48)
        dm.setup()
        model, _ = load_checkpoint(path)
        torch.manual_seed(ns.seed)
        proceed = Proceed(model.network, dm.context_length, dm.num_series)
        start = time.process_time()
        fit_proceed(proceed, model, dm, steps=ns.proceed_steps, lr=3e-4, seed=ns.seed)
        fit_s = time.process_time() - start
        variants = {"no adaptation": (0, None), f"fine-tuning x{ns.finetune_steps}": (ns.finetune_steps, None)}
        variants.update(
            {
                "Proceed": (0, proceed),
                "Proceed, drift set to 0": (0, WithoutDrift(proceed)),
                f"Proceed + fine-tuning x{ns.finetune_steps}": (ns.finetune_steps, proceed),
            }
        )
        rows = {}
        for label, (steps, adapter) in variants.items():
            model, _ = load_checkpoint(path)
            r = online_evaluate(model, dm, finetune_steps=steps, num_samples=ns.samples, seed=ns.seed, proceed=adapter)
            rows[label] = r["metrics"]
        base = rows["no adaptation"]["crps"]
        for row in rows.values():
            row["crps / none"] = row["crps"] / base
        n = len(dm.windows("test").starts)
        print(
            f"ONLINE {name}: shipped default, {n} forecasts of 48 steps (96-step contexts), {ns.samples} paths; "
            f"Proceed generator {ns.proceed_steps} steps on the training split, {fit_s:.0f} CPU s"
        )
        print(format_table(rows, keys=("crps", "crps / none", "crps_ens", "mae", "cov50", "cov90", "cpu_s")))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--max_steps", type=int, default=300)
    p.add_argument("--samples", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--impute_ratio", type=float, default=0.5)
    p.add_argument("--part", choices=("all", "forecast", "samplers", "impute"), default="all")
    p.add_argument("--pretrained", action="store_true", help="the shipped default against the baselines")
    p.add_argument("--rerun", action="store_true", help="with --pretrained: score it again instead of reading")
    p.add_argument("--field", type=int, default=None, help="forecast N generated series with the shipped default")
    p.add_argument("--steps", type=int, default=10, help="sampler steps of --field")
    p.add_argument("--online", action="store_true", help="online adaptation of the shipped default (see above)")
    p.add_argument("--online_data", nargs="+", default=["sf_temps", "taylor"], help="series of --online")
    p.add_argument("--finetune_steps", type=int, default=2, help="fine-tuning steps per forecast of --online")
    p.add_argument("--proceed_steps", type=int, default=150, help="Proceed generator training steps of --online")
    ns = p.parse_args()
    if ns.online:
        online_part(ns)
        return
    if ns.pretrained or ns.field:
        if ns.pretrained:
            pretrained_part(ns)
        if ns.field:
            field_part(ns)
        return
    dm = ForecastDataModule("taylor", context_length=CONTEXT, prediction_length=HORIZON, batch_size=32, seed=ns.seed)
    dm.setup()
    if ns.part in ("all", "forecast"):
        forecast_part(ns, dm)
    if ns.part in ("all", "samplers"):
        sampler_part(ns, dm)
    if ns.part in ("all", "impute"):
        impute_part(ns)


if __name__ == "__main__":
    main()
