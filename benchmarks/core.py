"""difflab-core benchmarks: ParaDiGMS sequential rounds against the sequential DDIM sampler.

Run ``python benchmarks/core.py`` (add ``--quick`` for one step count). Prints a markdown table of
ParaDiGMS (Picard iteration over DDIM, eta = 0) on the exact-score 2-D Gaussian mixture
(:mod:`difflab.core.toy`): sequential rounds (batched network calls), total NFE and the deviation
from the sequential DDIM output, per step count, window and tolerance.

The accuracy of every sampler per NFE and the time per step against diffusers and k-diffusion are
in ``benchmarks/samplers.py``.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from difflab.core.processes import VPSDE
from difflab.core.samplers import Denoiser, sample_ddim, sample_paradigms, time_grid
from difflab.core.tables import markdown_table
from difflab.core.toy import GaussianMixture

DT = torch.float64


def mixture_2d() -> GaussianMixture:
    return GaussianMixture.three_modes_2d(DT)


# ------------------------------------------------------------------------------------------ ParaDiGMS
def table_paradigms(quick: bool) -> None:
    gm = mixture_2d()
    proc = VPSDE()
    den = Denoiser(gm.exact_model(proc), proc)
    n = 1000
    x = proc.prior_sample((n, 2), generator=torch.Generator().manual_seed(0), dtype=DT)
    print("\n### ParaDiGMS over DDIM (eta = 0), exact-score 2-D mixture (VP SDE, 1000 samples)\n")
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
    parser.add_argument("--quick", action="store_true", help="one step count instead of four")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"## difflab-core benchmarks ({time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
        f"torch {torch.__version__}, {args.threads} thread)"
    )
    table_paradigms(args.quick)


if __name__ == "__main__":
    main()
