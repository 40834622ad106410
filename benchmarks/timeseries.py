"""Side-by-side benchmark of difflab.timeseries on the held-out taylor demand (one process, one run).

Trains each diffusion variant for the same number of steps on CPU, then prints CRPS, CRPS-sum,
exact ensemble CRPS, coverage and sampling time for: GP and OU stochastic-process diffusion
(discrete), continuous GP (CSPD), the CSDI-style model with white noise, the FALDA-style
decomposition, seasonal naive and ETS, with each CRPS as a ratio to seasonal naive.

    python benchmarks/timeseries.py --max_steps 400 --samples 32
"""

from __future__ import annotations

import argparse
import time

import torch

from difflab.timeseries.data import ForecastDataModule
from difflab.timeseries.demo import CONTEXT, HORIZON, build, train
from difflab.timeseries.evaluate import baseline_samples, model_samples, score
from difflab.timeseries.metrics import format_table
from difflab.timeseries.models.spd import StochasticProcessDiffusion
from difflab.timeseries.networks.csdi import CSDIDenoiser


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--max_steps", type=int, default=400)
    p.add_argument("--samples", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    ns = p.parse_args()
    dm = ForecastDataModule("taylor", context_length=CONTEXT, prediction_length=HORIZON, batch_size=32)
    dm.setup()
    test = dm.test_set
    rows = {}
    for name in ("seasonal_naive", "ets"):
        t0 = time.perf_counter()
        s = baseline_samples(test, name, dm.seasonality, ns.samples, ns.seed)
        rows[name] = score(s, test, time.perf_counter() - t0)
    variants = {
        "spd_gp (DSPD)": lambda: build("spd_gp", ns.seed),
        "spd_ou (DSPD)": lambda: build("spd_ou", ns.seed),
        "cspd_gp (continuous)": lambda: StochasticProcessDiffusion(
            CSDIDenoiser(1, channels=32, n_blocks=2, heads=4, time_emb_dim=32, feature_emb_dim=8, diffusion_emb_dim=32),
            noise="gp",
            diffusion="continuous",
            sampler="euler_maruyama",
            sample_steps=50,
            val_samples=0,
            optimizer=lambda q: torch.optim.Adam(q, 2e-3),
        ),
        "csdi (white)": lambda: build("csdi", ns.seed),
        "falda_gp (decomposition)": lambda: build("falda_gp", ns.seed),
    }
    for name, make in variants.items():
        torch.manual_seed(ns.seed)
        model = train(make(), dm, ns.max_steps, ns.seed)
        t0 = time.perf_counter()
        s = model_samples(model, test, num_samples=ns.samples, seed=ns.seed)
        rows[name] = score(s, test, time.perf_counter() - t0)
    base = rows["seasonal_naive"]["crps"]
    for r in rows.values():
        r["crps/naive"] = r["crps"] / base
    print(
        f"taylor test period, {len(test)} windows, {CONTEXT}+{HORIZON} steps, {ns.max_steps} training steps, "
        f"{ns.samples} samples; seconds = forecasting time of the test set"
    )
    print(format_table(rows, keys=("crps", "crps/naive", "crps_sum", "crps_ens", "cov50", "cov90", "seconds")))


if __name__ == "__main__":
    main()
