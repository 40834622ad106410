"""Sampling-time accelerators of ``difflab.core.accelerate`` side by side on the exact-score 2-D mixture.

One run, one table (markdown): for each method and setting, the network calls of one sampling run,
the mixture error of its 4000 samples (max of |mode weight error|, per-mode mean error and
|per-mode std ratio - 1| against the known mixture, the metric of tests/core/test_accel_*.py), the
mean displacement from the reference run of the same initial noise, and the wall and CPU time per
sample. The rows:

* DDIM 50 steps (VP SDE) on the exact score: the reference;
* AdaptiveDiffusion step skipping (``AdaptiveSkipDenoiser``) over DDIM and over Euler (Karras grid)
  at several thresholds;
* score calibration (``CalibratedDenoiser``) of a model with a constant eps bias, against the same
  biased model uncalibrated (the reference here is the unbiased run);
* PTQ4DM int8 quantization (``quantize_denoiser``) of a ToyMLP fitted to the mixture, against the
  same MLP in fp32 (reference: the fp32 MLP run). The exact-score rows evaluate a closed form, so
  their timings say nothing about network cost; the MLP rows are the ones where int8 kernels matter.

Per-domain rows (each domain's shipped model under the same wrappers) are future rows, not yet here.

Usage: ``python benchmarks/accelerators.py [--samples 4000] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import torch

from difflab.core.accelerate import (
    AdaptiveSkipDenoiser,
    CalibratedDenoiser,
    collect_calibration_inputs,
    estimate_eps_mean,
    model_size_bytes,
    quantize_denoiser,
    sample_skipping,
)
from difflab.core.processes import VPSDE
from difflab.core.samplers import Denoiser, SampleResult, sample_ddim, sample_euler, time_grid
from difflab.core.toy import GaussianMixture


def mixture(dtype: torch.dtype) -> GaussianMixture:
    means = torch.tensor([[1.5, 0.0], [-1.5, 0.0], [0.0, 1.5]])
    return GaussianMixture(means, torch.tensor([0.25, 0.2, 0.15]), torch.tensor([0.5, 0.3, 0.2])).to(dtype)


def timed(run: Callable[[], SampleResult]) -> tuple[SampleResult, float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    with torch.no_grad():
        res = run()
    return res, time.perf_counter() - w0, time.process_time() - c0


def row(method, setting, res, wall, cpu, gm, ref, n) -> dict:
    return {
        "method": method,
        "setting": setting,
        "calls": res.nfe,
        "error": gm.mode_error(res.sample),
        "moved": float((res.sample - ref).norm(dim=-1).mean()) if ref is not None else 0.0,
        "wall_us": 1e6 * wall / n,
        "cpu_us": 1e6 * cpu / n,
    }


def skipping_rows(n: int, g: torch.Generator) -> list[dict]:
    gm, proc = mixture(torch.float64), VPSDE()
    x = torch.randn(n, 2, generator=g, dtype=torch.float64)
    rows = []
    for name, sampler, kind, thresholds in (
        ("ddim", sample_ddim, "uniform", (0.005, 0.01, 0.02)),
        ("euler", sample_euler, "karras", (0.01, 0.02, 0.05)),
    ):
        grid = time_grid(50, t_start=1.0, t_end=1e-3, kind=kind, process=proc)
        full, wall, cpu = timed(lambda s=sampler, gr=grid: s(Denoiser(gm.exact_model(proc), proc), x, gr))
        rows.append(row(f"{name} 50 steps (exact score)", "reference", full, wall, cpu, gm, full.sample, n))
        for th in thresholds:
            den = AdaptiveSkipDenoiser(Denoiser(gm.exact_model(proc), proc), skip_threshold=th, max_skips=4)
            res, wall, cpu = timed(lambda d=den, s=sampler, gr=grid: sample_skipping(s, d, x, gr))
            rows.append(row(f"  + step skipping ({name})", f"delta {th}, C_max 4", res, wall, cpu, gm, full.sample, n))
    return rows


def calibration_rows(n: int, g: torch.Generator) -> list[dict]:
    gm, proc = mixture(torch.float64), VPSDE()
    exact = gm.exact_model(proc)
    bias = torch.tensor([0.3, -0.2], dtype=torch.float64)
    biased = lambda x, t: exact(x, t) + bias
    x = torch.randn(n, 2, generator=g, dtype=torch.float64)
    grid = time_grid(50, t_start=1.0, t_end=1e-3)
    ref = sample_ddim(Denoiser(exact, proc), x, grid).sample
    table = estimate_eps_mean(biased, proc, gm.sample(4000, g), times=21, generator=g)
    rows = []
    for setting, den in (
        ("eps + (0.3, -0.2), uncalibrated", Denoiser(biased, proc)),
        ("eps + (0.3, -0.2), calibrated (21 t, 4000 data)", CalibratedDenoiser(Denoiser(biased, proc), table)),
    ):
        res, wall, cpu = timed(lambda den=den: sample_ddim(den, x, grid))
        rows.append(row("calibration (ddim 50)", setting, res, wall, cpu, gm, ref, n))
    return rows


def quantization_rows(n: int, g: torch.Generator) -> tuple[list[dict], float]:
    from difflab.core.lightning.toy import ToyMLP

    gm, proc = mixture(torch.float32), VPSDE()
    torch.manual_seed(0)
    net = ToyMLP(2, hidden=64, depth=2, embed_dim=32)
    opt = torch.optim.Adam(net.parameters(), 2e-3)
    for _ in range(1500):
        t = 1e-3 + (1 - 1e-3) * torch.rand(256, generator=g)
        xt, _ = proc.sample_marginal(gm.sample(256, g), t, generator=g)
        loss = (net(xt, t) - gm.eps_t(xt, t, proc)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    grid = time_grid(50, t_start=1.0, t_end=1e-3)
    cal = collect_calibration_inputs(
        Denoiser(net, proc), sample_ddim, torch.randn(4096, 2, generator=g), grid, generator=g
    )
    qnet = quantize_denoiser(net, cal)
    x = torch.randn(n, 2, generator=g)
    fp, wall, cpu = timed(lambda: sample_ddim(Denoiser(net, proc), x, grid))
    rows = [row("ToyMLP fp32 (ddim 50)", "reference", fp, wall, cpu, gm, fp.sample, n)]
    q, wall, cpu = timed(lambda: sample_ddim(Denoiser(qnet, proc), x, grid))
    rows.append(row("  + PTQ4DM int8", "4096 trajectory inputs, t ~ N(0.4, 0.4)", q, wall, cpu, gm, fp.sample, n))
    return rows, model_size_bytes(qnet) / model_size_bytes(net)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    rows = skipping_rows(args.samples, g) + calibration_rows(args.samples, g)
    qrows, ratio = quantization_rows(args.samples, g)
    rows += qrows
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {args.threads} thread(s), "
        f"{args.samples} samples, quantized engine {torch.backends.quantized.engine}"
    )
    print("\n| method | setting | network calls | mixture error | displacement | wall us/sample | CPU us/sample |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['method']} | {r['setting']} | {r['calls']} | {r['error']:.4f} | {r['moved']:.4f} "
            f"| {r['wall_us']:.1f} | {r['cpu_us']:.1f} |"
        )
    print(f"\nint8 / fp32 serialised size of the ToyMLP: {ratio:.2f}")


if __name__ == "__main__":
    main()
