"""difflab-core benchmarks: sampler accuracy per NFE, loop overhead against diffusers, ParaDiGMS rounds.

Run ``python benchmarks/core.py`` (add ``--quick`` for fewer step counts and repeats). Prints three
markdown tables:

1. Per-step time of our DDIM and DPM-Solver++ (2M) loops against diffusers' ``DDIMScheduler`` and
   ``DPMSolverMultistepScheduler`` loops with the same tiny network (a 4x4 linear layer on one
   sample, so the loop overhead dominates): warm-up, interleaved repeats, medians. The overhead
   column subtracts the time of the network calls alone. Our samplers evaluate the process
   coefficients of the whole grid once per call (``prepare_grid``); that set-up is inside the timing.
2. NFE versus error of every sampler on the exact-score Gaussian mixture (VP SDE), plus the
   adaptive solver against Euler–Maruyama on a 256-dimensional mixture with narrow components.
   The network is the Bayes-optimal denoiser (:mod:`difflab.core.toy`), so every error is the
   sampler's own.
3. ParaDiGMS sequential rounds (batched network calls) against the sequential DDIM sampler.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import platform
import pstats
import statistics
import time

import torch

from difflab.core.processes import VPSDE, DiscreteVP
from difflab.core.samplers import (
    Denoiser,
    sample_adaptive,
    sample_ddim,
    sample_ddpm,
    sample_dpm_solver,
    sample_euler,
    sample_euler_maruyama,
    sample_heun,
    sample_paradigms,
    sample_predictor_corrector,
    sample_probability_flow,
    time_grid,
)
from difflab.core.tables import markdown_table
from difflab.core.toy import GaussianMixture

DT = torch.float64


def mixture_2d() -> GaussianMixture:
    means = torch.tensor([[1.5, 0.0], [-1.5, 0.0], [0.0, 1.5]], dtype=DT)
    return GaussianMixture(means, torch.tensor([0.25, 0.2, 0.15], dtype=DT), torch.tensor([0.5, 0.3, 0.2], dtype=DT))


def mode_errors(target: GaussianMixture, samples: torch.Tensor) -> tuple[float, float, float]:
    """Max |weight error|, max |per-mode mean error|, max |per-mode std / true std - 1|."""
    w, m, c = target.mode_statistics(samples)
    sd = torch.stack([c[k].diagonal().sqrt() for k in range(target.num_components)]) / target.stds[:, None]
    return float((w - target.weights).abs().max()), float((m - target.means).abs().max()), float((sd - 1).abs().max())


# ------------------------------------------------------------------------------------------ (2) NFE vs error
def table_accuracy(quick: bool) -> None:
    gm = mixture_2d()
    proc = VPSDE()
    n = 4000
    den = Denoiser(gm.exact_model(proc), proc)
    # name, function, step counts, options, grid kind, ends at t = 0
    cases = [
        ("DDPM", sample_ddpm, [25, 50, 100, 250], {}, "uniform", True),
        ("DDIM eta=0", sample_ddim, [10, 25, 50, 100], {}, "log_snr", True),
        ("DDIM eta=1", sample_ddim, [25, 50, 100, 250], {"eta": 1.0}, "uniform", True),
        ("DPM-Solver++ 2M", sample_dpm_solver, [10, 15, 25, 50], {}, "log_snr", True),
        ("Euler (Karras)", sample_euler, [10, 25, 50, 100], {}, "karras", True),
        ("Heun (Karras)", sample_heun, [5, 10, 25, 50], {}, "karras", True),
        ("PF-ODE RK4", sample_probability_flow, [5, 10, 20], {"method": "rk4"}, "uniform", False),
        ("Euler-Maruyama", sample_euler_maruyama, [50, 100, 250, 500], {}, "uniform", False),
        ("PC (reverse diffusion + ALD)", sample_predictor_corrector, [25, 50, 100, 250], {}, "uniform", False),
    ]
    if quick:
        cases = [(a, b, s[-2:], o, k, z) for a, b, s, o, k, z in cases]
    print("\n### 2. NFE versus error, exact-score 2-D mixture (VP SDE, 4000 samples)\n")
    print("Errors against the exact marginal at the sampler's end time: mode weights, per-mode means,")
    print("per-mode std ratio (nearest-mode assignment).\n")
    rows = []
    x_prior = proc.prior_sample((n, 2), generator=torch.Generator().manual_seed(0), dtype=DT)
    for name, fn, steps_list, options, kind, to_zero in cases:
        t_end = 0.0 if to_zero else proc.t_min
        target = gm.marginal_mixture(t_end, proc)
        for steps in steps_list:
            grid = time_grid(steps, t_end=t_end, kind=kind, process=proc)
            res = fn(den, x_prior, grid, generator=torch.Generator().manual_seed(1), **options)
            w, m, s = mode_errors(target, res.sample)
            rows.append([name, steps, res.nfe, w, m, s])
    # the adaptive solver: samples of 32 points so its per-sample error control sees 64 elements
    x32 = x_prior.reshape(n // 32, 32, 2)
    for rel in [0.1, 0.05, 0.02] if not quick else [0.05]:
        res = sample_adaptive(den, x32, rel_tol=rel, generator=torch.Generator().manual_seed(1))
        w, m, s = mode_errors(gm, res.sample.reshape(-1, 2))
        nfe = f"{res.nfe} (per sample {res.info['per_sample_nfe_mean']:.0f})"
        rows.append([f"adaptive (rel_tol {rel})", "-", nfe, w, m, s])
    w, m, s = mode_errors(gm, gm.sample(n, torch.Generator().manual_seed(7)))
    rows.append(["exact samples (noise floor)", "-", "-", w, m, s])
    print(markdown_table(rows, ["sampler", "steps", "NFE", "weight err", "mean err", "std ratio err"], ".3f"))

    table_adaptive_high_dim(quick)


def table_adaptive_high_dim(quick: bool) -> None:
    """The adaptive solver against Euler-Maruyama on a 256-dimensional mixture with narrow components."""
    g = torch.Generator().manual_seed(0)
    d, k, nh = 256, 4, 200
    gmh = GaussianMixture(torch.randn(k, d, generator=g, dtype=DT) * 0.5, 0.05, torch.tensor([0.1, 0.2, 0.3, 0.4]))
    proch = VPSDE(t_min=1e-5)
    denh = Denoiser(gmh.exact_model(proch), proch)
    xh = proch.prior_sample((nh, d), generator=g, dtype=DT)
    print("\n#### Adaptive SDE solver vs Euler-Maruyama, D = 256, component std 0.05 (200 samples)\n")
    print("Spread error: |rms(distance to nearest mean) / (std sqrt D) - 1| (0 for exact samples).\n")
    rows = []
    for steps in [100, 200, 400, 800] if not quick else [200, 400]:
        res = sample_euler_maruyama(
            denh, xh, time_grid(steps, t_end=proch.t_min), generator=torch.Generator().manual_seed(1)
        )
        werr = float((gmh.mode_weights(res.sample) - gmh.weights).abs().max())
        rows.append([f"Euler-Maruyama {steps}", res.nfe, res.nfe, f"{gmh.spread_error(res.sample):.4f}", werr])
    for rel in [0.1, 0.05, 0.02] if not quick else [0.05]:
        res = sample_adaptive(denh, xh, rel_tol=rel, generator=torch.Generator().manual_seed(1))
        werr = float((gmh.mode_weights(res.sample) - gmh.weights).abs().max())
        per_sample = f"{res.info['per_sample_nfe_mean']:.0f}"
        rows.append([f"adaptive rel_tol {rel}", res.nfe, per_sample, f"{gmh.spread_error(res.sample):.4f}", werr])
    head = ["sampler", "NFE (batched)", "per-sample NFE", "spread error", "weight err"]
    print(markdown_table(rows, head, ".3f"))


# ------------------------------------------------------------------------------------------ (1) overhead
def _overhead_runs(n_steps: int) -> dict:
    """Our DDIM and DPM-Solver++ (2M) loops, diffusers' scheduler loops and the network alone, as
    zero-argument callables over the same 4x4 linear network and 1 x 4 input."""
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

    torch.manual_seed(0)
    net = torch.nn.Linear(4, 4)

    def model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return net(x)

    proc = DiscreteVP("linear", 1000)
    x = torch.randn(1, 4)
    grid = time_grid(n_steps, t_end=0.0)

    def ours(fn):
        def run():
            return fn(Denoiser(model, proc, "eps"), x, grid).sample

        return run

    def theirs(sched):
        def run():
            sched.set_timesteps(n_steps)
            y = x
            for t in sched.timesteps:
                y = sched.step(model(y, t), t, y).prev_sample
            return y

        return run

    def model_only():
        t = torch.zeros(1)
        y = x
        for _ in range(n_steps):
            y = model(y, t)
        return y

    ddim = DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear", clip_sample=False, set_alpha_to_one=True)
    dpm = DPMSolverMultistepScheduler(
        num_train_timesteps=1000, beta_schedule="linear", algorithm_type="dpmsolver++", solver_order=2
    )
    return {
        "ours DDIM": ours(sample_ddim),
        "diffusers DDIM": theirs(ddim),
        "ours DPM-Solver++ 2M": ours(sample_dpm_solver),
        "diffusers DPM-Solver++ 2M": theirs(dpm),
        "network only": model_only,
    }


def _median_us_per_step(runs: dict, repeats: int, n_steps: int) -> dict[str, float]:
    """Median microseconds per step of each run: 5 warm-up calls each, then interleaved repeats."""
    times: dict[str, list[float]] = {k: [] for k in runs}
    with torch.inference_mode():
        for f in runs.values():
            for _ in range(5):
                f()
        for _ in range(repeats):  # interleaved, so load changes hit every variant alike
            for name, f in runs.items():
                t0 = time.perf_counter()
                f()
                times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) / n_steps * 1e6 for k, v in times.items()}


def _print_profile(run, calls: int = 20) -> None:
    prof = cProfile.Profile()
    with torch.inference_mode():
        prof.enable()
        for _ in range(calls):
            run()
        prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).strip_dirs().sort_stats("tottime").print_stats(8)
    print("\nProfile of our DDIM loop (top 8 by own time):\n\n```")
    print("\n".join(line for line in buf.getvalue().splitlines() if line.strip())[-2000:])
    print("```")


def table_overhead(quick: bool) -> None:
    n_steps = 50
    runs = _overhead_runs(n_steps)
    repeats = 15 if quick else 41
    per_step = _median_us_per_step(runs, repeats, n_steps)
    net_us = per_step["network only"]
    print(f"\n### 1. Per-step loop time against diffusers ({n_steps} steps, 1 x 4 float32, 4x4 linear network)\n")
    print(f"Median of {repeats} interleaved repeats after 5 warm-up runs; network alone {net_us:.1f} us/step.\n")
    rows = []
    for label in ("DDIM", "DPM-Solver++ 2M"):
        a, b = per_step[f"ours {label}"], per_step[f"diffusers {label}"]
        rows.append([label, a, b, a / b, a - net_us, b - net_us, (a - net_us) / (b - net_us)])
    head = ["sampler", "ours us/step", "diffusers us/step", "ratio", "ours overhead", "diffusers overhead"]
    print(markdown_table(rows, [*head, "overhead ratio"], ["", ".1f", ".1f", ".2f", ".1f", ".1f", ".2f"]))
    _print_profile(runs["ours DDIM"])  # where our time goes


# ------------------------------------------------------------------------------------------ (3) ParaDiGMS
def table_paradigms(quick: bool) -> None:
    gm = mixture_2d()
    proc = VPSDE()
    den = Denoiser(gm.exact_model(proc), proc)
    n = 1000
    x = proc.prior_sample((n, 2), generator=torch.Generator().manual_seed(0), dtype=DT)
    print("\n### 3. ParaDiGMS over DDIM (eta = 0), exact-score 2-D mixture (VP SDE, 1000 samples)\n")
    print("Rounds = sequential batched network calls (the sequential sampler needs one per step);")
    print("deviation = per-sample RMS difference from the sequential DDIM output.\n")
    rows = []
    for steps in [25, 50, 100, 200] if not quick else [100]:
        grid = time_grid(steps, t_end=0.0)
        ref = sample_ddim(den, x, grid)
        for window in (10, 20):
            for tol in (0.1, 0.01):
                res = sample_paradigms(den, x, grid, window=window, tolerance=tol)
                dev = (res.sample - ref.sample).pow(2).mean(-1).sqrt()
                rounds = res.info["rounds"]
                spread = [float(dev.median()), float(torch.quantile(dev, 0.99)), float(dev.max())]
                rows.append([steps, window, str(tol), rounds, f"{steps / rounds:.1f}x", res.nfe, *spread])
    head = ["steps", "window", "tolerance", "rounds", "speed-up in rounds", "total NFE"]
    head += ["deviation median", "99%", "max"]
    print(markdown_table(rows, head, ".1e", align="r"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer step counts and repeats")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument(
        "--only", choices=["overhead", "accuracy", "paradigms"], help="run one table instead of all three"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"## difflab-core benchmarks ({time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
        f"torch {torch.__version__}, {args.threads} thread)"
    )
    tables = {"overhead": table_overhead, "accuracy": table_accuracy, "paradigms": table_paradigms}
    for name, table in tables.items():
        if args.only in (None, name):
            table(args.quick)


if __name__ == "__main__":
    main()
