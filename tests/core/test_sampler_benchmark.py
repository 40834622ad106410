"""benchmarks/samplers.py runs: one tiny accuracy configuration gives finite errors and one table row per
sampler (no timing is asserted)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]


def load_benchmark():
    if "sampler_benchmark" in sys.modules:
        return sys.modules["sampler_benchmark"]
    spec = importlib.util.spec_from_file_location("sampler_benchmark", ROOT / "benchmarks" / "samplers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_tiny_accuracy_run_gives_finite_errors_and_a_row_per_sampler():
    bench = load_benchmark()
    setting = bench.Setting("2-D", bench.mixture_2d(), bench.VPSDE(), 64, group=32)
    names = ["ddim", "adaptive"]
    results, floor = bench.accuracy(setting, names, [10])
    assert [r.name for r in results] == names
    for entry in results:
        assert not entry.skipped, entry.skipped
        assert len(entry.runs) == 1
        run = entry.runs[0]
        assert run.nfe >= 1 and math.isfinite(run.error) and math.isfinite(run.weight_error)
    assert results[0].runs[0].nfe == 10
    assert math.isfinite(floor.error) and floor.error >= 0
    table = bench.accuracy_table(results, floor, [10]).splitlines()
    assert len(table) == 2 + len(names) + 1  # header, rule, one row per sampler, the noise floor
    for name, line in zip(names, table[2:]):
        assert line.startswith(f"| {name} |")


def test_spread_error_is_zero_mean_for_exact_samples_and_flags_non_finite_ones():
    bench = load_benchmark()
    gm = bench.mixture_256()
    exact = gm.sample(400, torch.Generator().manual_seed(0))
    err, _ = bench.spread_error(gm, exact)
    assert err < 0.01
    wide, sign = bench.spread_error(gm, exact + 0.05 * torch.randn(exact.shape, generator=torch.Generator()))
    assert sign == "+" and wide > 0.3  # noise of the component std doubles the variance: r = sqrt(2)
    exact[0, 0] = float("nan")
    assert bench.spread_error(gm, exact)[0] == math.inf
