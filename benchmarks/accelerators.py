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

Per-domain rows (``--domains``): each domain's briefly trained model of
``benchmarks/sampler_matrix.py`` (loaded from its cache, never retrained: a missing cache file
leaves the domain out with the reason), scored by that script's held-out metric at the domain's
default sampler with the step count nearest NFE 20, under these settings side by side: the
baseline; step skipping (``AdaptiveSkipDenoiser`` at each ``--thresholds`` value, ``C_max = 4``,
real network calls counted); score calibration (``CalibratedDenoiser`` with an eps-mean table of
21 times estimated on training examples, where the network is unconditional and its training
data is cheap to rebuild; otherwise the row says why not); feature caching (``FeatureCache`` on the
model's network, profiled on one untimed run, planned at each ``--cache_thresholds`` value, at most
3 reuses in a row); int8 (``quantize_network``: PTQ4DM's static int8 Linear / Conv layers,
calibrated on every network input of one untimed scoring run, i.e. the whole trajectory with its
conditions; the layers at the network's input and output stay float unless ``--int8_all_layers``;
``--no_int8`` leaves it out). A setting the model cannot run is a row with the reason.
The wrappers go in through the model
instance's ``make_denoiser`` (monkeypatched for the run); DiffTAD (video) builds its ``Denoiser``
inside ``sample_proposals``, so the benchmark swaps the ``Denoiser`` name of its module instead.

``--noise_unconditional`` (with ``--domains``): each domain's model trained again with core's
``NoiseUnconditional`` around its network (the time input replaced by a constant; same data, steps
and seed; cached as ``*_nu.pt``, trained on the first run), scored next to the conditioned model.

Usage: ``python benchmarks/accelerators.py [--samples 4000] [--threads 1]``;
``python benchmarks/accelerators.py --domains pointcloud robotics video timeseries [--quick]``;
``python benchmarks/accelerators.py --domains pointcloud robotics timeseries --noise_unconditional --quick``.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from difflab.core.accelerate import (
    AdaptiveSkipDenoiser,
    CalibratedDenoiser,
    FeatureCache,
    collect_calibration_inputs,
    estimate_eps_mean,
    model_size_bytes,
    quantize_denoiser,
    quantize_network,
    sample_skipping,
)
from difflab.core.processes import VPSDE
from difflab.core.samplers import Denoiser, SampleResult, sample_ddim, sample_euler, time_grid
from difflab.core.tables import markdown_header, markdown_row
from difflab.core.toy import GaussianMixture


def mixture(dtype: torch.dtype) -> GaussianMixture:
    return GaussianMixture.three_modes_2d(dtype)


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
    from difflab.core.toy import fit_eps_network

    gm, proc = mixture(torch.float32), VPSDE()
    torch.manual_seed(0)
    net = fit_eps_network(ToyMLP(2, hidden=64, depth=2, embed_dim=32), gm, proc, steps=1500, generator=g)
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


# ---------------------------------------------------------------------------------------------------- domains
DOMAIN_STEPS_NFE = 20


def _matrix():
    """``benchmarks/sampler_matrix.py`` as a module (the domains' models, data and metrics)."""
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    import sampler_matrix

    return sampler_matrix


CACHE_FILES = {
    "audio": "audio_sgmse_800.pt",
    "vision": "vision_sr3_300.pt",
    "timeseries": "timeseries_spd_gp_600.pt",
    "pointcloud": "pointcloud_ddpm_300.pt",
    "robotics": "robotics_dp_600.pt",
    "video": "video_difftad_150.pt",
    "text": "text_diffuseq_1600.pt",
}


def samples_per_run(name: str, ctx: dict[str, Any]) -> int:
    """The number of generated examples of one scoring run (the "per sample" of the timings)."""
    counts = {
        "audio": lambda: len(ctx["items"]),
        "timeseries": lambda: len(ctx["test"]) * ctx["samples"],
        "pointcloud": lambda: ctx["num"],
        "robotics": lambda: ctx["obs"].shape[0],
        "video": lambda: len(ctx["data"].test_set),
        "text": lambda: len(ctx["src"]),
    }
    try:
        return int(counts[name]())
    except (KeyError, TypeError, AttributeError):
        return 1  # vision: the times are per evaluation run over the held-out photographs


@contextlib.contextmanager
def wrapped_denoisers(name: str, model, wrap: Callable[[Denoiser], Denoiser] | None):
    """Inside the block every denoiser the domain's sampling builds is ``wrap(denoiser)``; yields
    the list of wrapped denoisers made. ``wrap=None`` leaves sampling as it is."""
    made: list[Denoiser] = []
    if wrap is None:
        yield made
        return

    def build(den: Denoiser) -> Denoiser:
        made.append(wrap(den))
        return made[-1]

    if name == "video":  # DiffTAD builds Denoiser(decode, process, "x0") inside sample_proposals
        import difflab.video.models.difftad as difftad

        plain = difftad.Denoiser
        difftad.Denoiser = lambda *a, **k: build(plain(*a, **k))
        try:
            yield made
        finally:
            difftad.Denoiser = plain
        return
    inner = model.make_denoiser
    model.make_denoiser = lambda batch=None, y=None: build(inner(batch, y))
    try:
        yield made
    finally:
        del model.make_denoiser


def _pointcloud_table(ctx: dict[str, Any], seed: int):
    """The unconditional PointDDPM's table on the 32 training clouds of the sampler matrix."""
    from difflab.pointcloud.data import ShapeDataModule
    from difflab.pointcloud.demo import GEN_POINTS

    dm = ShapeDataModule(num_points=GEN_POINTS, num_shapes=32, num_val_shapes=16, batch_size=16, seed=seed)
    dm.setup()
    data = torch.as_tensor(dm.train_set.clouds).float()
    model = ctx["model"]
    fn = lambda x, t: model.network_forward(x, t, None)
    return fn, data, f"21 times, {data.shape[0]} training clouds"


def _robotics_table(ctx: dict[str, Any], seed: int):
    """Diffusion Policy's table on training windows (the training collection seed), its observation
    condition held per window: ``eta_t`` is the mean over windows *and* conditions (one table for
    every observation)."""
    from difflab.robotics.data import DemoDataModule

    dm = DemoDataModule(env="reach-v3", episodes=8, collect_seed=0, val_episodes=0)
    dm.setup("fit")
    idx = torch.linspace(0, len(dm.train_set) - 1, 256).long().unique().tolist()
    items = [dm.train_set[i] for i in idx]
    obs = torch.stack([torch.as_tensor(it["obs"]) for it in items]).float()
    act = torch.stack([torch.as_tensor(it["action"]) for it in items]).float()
    model = ctx["model"]
    cond, data = model.normalize_batch({"obs": obs, "action": act})
    fn = lambda x, t: model.network_forward(x, t, {"cond": cond})
    return fn, data, f"21 times, {data.shape[0]} training windows (8 episodes), one table for all observations"


NO_CALIBRATION = {
    "video": "DiffTAD predicts x0 of box proposals conditioned on each video's features; no training "
    "examples are kept in the cached context to average over",
    "timeseries": "the GP-noise process (DSPD-GP) is not the white-noise process the table assumes, and "
    "the network is conditioned on each window's context",
    "audio": "not wired: SGMSE+'s OUVE process is conditioned on each noisy recording (its mean drifts "
    "to y), so the table would need clean / noisy training pairs passed with their y",
    "text": "not wired: DiffuSeq diffuses only the target half of each source/target embedding "
    "sequence, conditioned on its source, and self-conditions on its last x0",
    "vision": "not wired: SR3 is conditioned on each low-resolution image, so the table would need "
    "training pairs passed as the condition",
}


def calibration_likelihood(name: str, ctx: dict[str, Any], seed: int, clouds: int = 8) -> str | None:
    """Where the domain reports a likelihood (the point clouds' PF-ODE NLL per point, as
    ``difflab-pointcloud nll``), that number of ``clouds`` held-out clouds with and without score
    calibration (16 RK4 steps, one Hutchinson probe, the same probe noise); a markdown line, or None."""
    if name != "pointcloud":
        return None
    from difflab.pointcloud.likelihood import cloud_log_likelihood

    table, _ = calibration_table(name, ctx, seed)
    model = ctx["model"]
    x = torch.as_tensor(ctx["ref"][:clouds]).float()
    nll = {}
    for label, wrap in (("uncalibrated", None), ("calibrated", lambda d: CalibratedDenoiser(d, table))):
        with wrapped_denoisers(name, model, wrap):
            lp = cloud_log_likelihood(model, x, steps=16, generator=torch.Generator().manual_seed(seed))
        nll[label] = float(-lp.mean()) / x.shape[1]
    return (
        f"pointcloud PF-ODE NLL per point of {len(x)} held-out clouds (16 RK4 steps, 1 probe): "
        f"uncalibrated {nll['uncalibrated']:.4f}, calibrated {nll['calibrated']:.4f} nats"
    )


def calibration_table(name: str, ctx: dict[str, Any], seed: int):
    """The eps-mean table of the domain's network on training examples, or ``(None, reason)``; estimated
    once per prepared domain (kept in ``ctx``)."""
    builders = {"pointcloud": _pointcloud_table, "robotics": _robotics_table}
    if name not in builders:
        return None, NO_CALIBRATION.get(name, "not measured")
    if "_calibration" not in ctx:
        fn, data, note = builders[name](ctx, seed)
        model, g = ctx["model"], torch.Generator().manual_seed(seed)
        with torch.no_grad():
            table = estimate_eps_mean(fn, model.process, data, prediction=model.prediction, times=21, generator=g)
        ctx["_calibration"] = (table, note)
    return ctx["_calibration"]


@contextlib.contextmanager
def planned(cache: FeatureCache, schedule: torch.Tensor):
    """``cache`` installed with ``schedule`` for one run."""
    cache.schedule = schedule
    with cache:
        yield


@contextlib.contextmanager
def swapped_network(model, network: torch.nn.Module):
    """``model.network`` replaced by ``network`` inside the block."""
    old = model.network
    model.network = network
    try:
        yield
    finally:
        model.network = old


def caching_settings(name: str, ctx: dict[str, Any], thresholds: tuple[float, ...], seed: int) -> list[tuple]:
    """Feature-caching settings of one domain: a :class:`FeatureCache` on the model's network, profiled on
    one untimed scoring run, planned at each threshold (max 3 reuses in a row); ``[]`` without one."""
    sm = _matrix()
    domain, model = sm.DOMAINS[name], ctx["model"]
    network = getattr(model, "network", None)
    if network is None:
        return []
    try:
        cache = FeatureCache(network)
    except ValueError:
        return []
    sampler = sm.default_sampler(ctx)
    steps = sm.steps_for_nfe(sampler, DOMAIN_STEPS_NFE)
    with torch.no_grad(), cache, wrapped_denoisers(name, model, cache.denoiser):
        cache.profiling = True
        domain.score(ctx, sampler, steps, seed)
        cache.finish_profile()
    out = []
    for th in thresholds:
        schedule = cache.plan(th, max_reuse=3).clone()
        share = float((~schedule).float().mean())
        note = f"threshold {th}, max 3 reuses; {share:.0%} of the calls of {len(cache.names)} blocks reused"
        out.append(("feature caching", note, cache.denoiser, lambda c=cache, s=schedule: planned(c, s)))
    return out


def int8_setting(name: str, ctx: dict[str, Any], seed: int, float_io: bool = True) -> tuple[tuple | None, str]:
    """PTQ4DM int8 of the domain's network (``quantize_network``), calibrated on every network input of
    one untimed scoring run (the whole denoising trajectory, conditions included); ``float_io`` as in
    ``quantize_network`` (``--int8_all_layers`` sets False); ``(setting, "")`` or ``(None, reason)``."""
    sm = _matrix()
    domain, model = sm.DOMAINS[name], ctx["model"]
    network = getattr(model, "network", None)
    if network is None:
        return None, "the model has no network attribute"
    sampler = sm.default_sampler(ctx)
    steps = sm.steps_for_nfe(sampler, DOMAIN_STEPS_NFE)

    def calibrate(prepared: torch.nn.Module) -> None:
        with swapped_network(model, prepared):
            domain.score(ctx, sampler, steps, seed)

    try:
        qnet, names = quantize_network(network, calibrate, float_io=float_io)
    except Exception as err:  # an op the eager int8 flow cannot convert leaves the row out, with the reason
        return None, f"{type(err).__name__}: {str(err).splitlines()[0][:120]}"
    size = model_size_bytes(qnet) / model_size_bytes(network)
    note = f"{len(names)} int8 layers, size {size:.2f} x fp32, calibrated on one scoring run"
    return ("int8 (PTQ4DM)", note, None, lambda: swapped_network(model, qnet)), ""


def timed_score(name: str, ctx: dict[str, Any], wrap, context, steps: int, seed: int) -> tuple:
    """One scoring run under ``wrap`` and inside ``context()`` (a feature cache, a swapped network), if
    given: ``(metric, nfe, wall s, cpu s, asked calls, real calls)``."""
    sm = _matrix()
    domain, model = sm.DOMAINS[name], ctx["model"]
    sampler = sm.default_sampler(ctx)
    w0, c0 = time.perf_counter(), time.process_time()
    with context() if context else contextlib.nullcontext(), torch.no_grad():
        with wrapped_denoisers(name, model, wrap) as made:
            metric, nfe = domain.score(ctx, sampler, steps, seed)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    asked = sum(getattr(d, "calls", 0) for d in made)
    real = sum(getattr(d, "network_calls", 0) for d in made)
    return metric, nfe, wall, cpu, asked, real


def timed_row(name: str, ctx: dict[str, Any], setting: tuple, steps: int, seed: int, n: int, metric_name: str) -> dict:
    """One row of ``domain_rows``: the metric, calls and per-sample wall / CPU milliseconds of one
    ``(method, setting, wrap, context)``; a setting the domain's model cannot run is a row with the reason."""
    method, note, wrap, context = setting
    try:
        metric, nfe, wall, cpu, asked, real = timed_score(name, ctx, wrap, context, steps, seed)
    except Exception as err:
        reason = f"{type(err).__name__}: {str(err).splitlines()[0][:120]}"
        print(f"  {method} {note}: failed: {reason}", flush=True)
        return dict(domain=name, method=method, setting=f"{note}; failed: {reason}")
    if asked:
        note += f"; {real}/{asked} calls evaluated"
    print(f"  {method} {note}: {metric_name} {metric:.4g}, {nfe} calls, {wall:.1f} s", flush=True)
    return dict(
        domain=name,
        method=method,
        setting=note,
        metric=metric,
        calls=nfe,
        wall_ms=1e3 * wall / n,
        cpu_ms=1e3 * cpu / n,
    )


def domain_rows(
    name: str,
    ctx: dict[str, Any],
    thresholds: tuple[float, ...],
    seed: int,
    cache_thresholds: tuple[float, ...] = (),
    int8_rows: bool = True,
    int8_float_io: bool = True,
) -> list[dict]:
    """Baseline, step-skipping, calibration, feature-caching and int8 rows of one prepared domain."""
    sm = _matrix()
    domain = sm.DOMAINS[name]
    sampler = sm.default_sampler(ctx)
    steps = sm.steps_for_nfe(sampler, DOMAIN_STEPS_NFE)
    n = samples_per_run(name, ctx)
    settings: list[tuple] = [(f"baseline ({sampler}, {steps} steps)", "", None, None)]
    for th in thresholds:
        wrap = lambda d, th=th: AdaptiveSkipDenoiser(d, skip_threshold=th, max_skips=4)
        settings.append(("step skipping", f"delta {th}, C_max 4", wrap, None))
    table, note = calibration_table(name, ctx, seed)
    if table is not None:
        settings.append(("score calibration", note, lambda d: CalibratedDenoiser(d, table), None))
    caching = caching_settings(name, ctx, cache_thresholds, seed) if cache_thresholds else []
    settings += caching
    int8, int8_reason = int8_setting(name, ctx, seed, int8_float_io) if int8_rows else (None, "")
    if int8 is not None:
        settings.append(int8)
    with torch.no_grad():  # one untimed run first: the baseline's time is not the warm-up's
        domain.score(ctx, sampler, steps, seed)
    rows = [timed_row(name, ctx, setting, steps, seed, n, domain.metric) for setting in settings]
    if table is None:
        rows.append(dict(domain=name, method="score calibration", setting=f"not run: {note}"))
    if cache_thresholds and not caching:
        rows.append(dict(domain=name, method="feature caching", setting="not run: the network has no block list"))
    if int8_reason:
        rows.append(dict(domain=name, method="int8 (PTQ4DM)", setting=f"not run: {int8_reason}"))
    base = rows[0]
    for r in rows:
        if "metric" in r:
            r["ratio"] = r["wall_ms"] / base["wall_ms"]
    return rows


def run_domains(
    names: list[str],
    cache: Path,
    quick: bool,
    thresholds: tuple[float, ...],
    seed: int,
    cache_thresholds=(),
    int8_rows: bool = True,
    int8_float_io: bool = True,
) -> None:
    """Prepare each domain from the cache and print the per-domain table (markdown)."""
    sm = _matrix()
    st = sm.Settings(quick=quick, seed=seed)
    rows: list[dict] = []
    notes: list[str] = []
    for name in names:
        path = cache / CACHE_FILES[name]
        if not path.is_file():
            print(f"== {name} left out: no cached model {path} (this benchmark never trains)", flush=True)
            continue
        print(f"== {name}: {sm.DOMAINS[name].model}", flush=True)
        try:
            ctx = sm.DOMAINS[name].prepare(cache, st)
        except Exception as err:  # a cached model that no longer loads leaves the domain out, with the reason
            print(f"  {name} left out: {type(err).__name__}: {err}", flush=True)
            rows.append(dict(domain=name, method="(all)", setting=f"left out: {type(err).__name__}: {err}"))
            continue
        rows += domain_rows(name, ctx, thresholds, seed, tuple(cache_thresholds), int8_rows, int8_float_io)
        line = calibration_likelihood(name, ctx, seed)
        if line:
            notes.append(line)
            print(f"  {line}", flush=True)
    print(f"\ntorch {torch.__version__}, {platform.processor() or platform.machine()}, 1 thread, quick={quick}")
    head = ["domain (metric)", "method", "setting", "metric", "network calls", "wall ms/sample", "CPU ms/sample"]
    print("\n" + markdown_header([*head, "wall / baseline"], "lll" + "r" * 5))
    for r in rows:
        label = f"{r['domain']} ({sm.DOMAINS[r['domain']].metric})"
        numbers = [r.get(k) for k in ("metric", "calls", "wall_ms", "cpu_ms", "ratio")]
        print(markdown_row([label, r["method"], r["setting"], *numbers], ["", "", "", ".4g", "", ".1f", ".1f", ".2f"]))
    for line in notes:
        print(f"\n{line}")


NOT_NOISE_UNCONDITIONAL = {
    "video": "DiffTAD's time enters through its decoder method (network.decode), not the network call the "
    "wrapper replaces",
    "text": "DiffuSeq calls its network's encode / decode methods (the time enters in decode), not the "
    "network call the wrapper replaces",
}


def noise_unconditional_rows(names: list[str], cache: Path, quick: bool, seed: int, samplers: list[str]) -> list[dict]:
    """Each domain's model trained again with core's ``NoiseUnconditional`` around its network (same data,
    steps and seed as the cached conditioned model; trained here if its ``_nu`` cache file is missing),
    scored next to the conditioned one at NFE 20 with the domain's default sampler and ``samplers``."""
    from difflab.core.accelerate import NoiseUnconditional

    sm = _matrix()
    st = sm.Settings(quick=quick, seed=seed)
    rows: list[dict] = []
    for name in names:
        if name in NOT_NOISE_UNCONDITIONAL:
            rows.append(
                dict(domain=name, method="noise-unconditional", setting=f"not run: {NOT_NOISE_UNCONDITIONAL[name]}")
            )
            continue
        ctxs = {}
        for label, variant in (("conditioned", (None, "")), ("noise-unconditional", (NoiseUnconditional, "_nu"))):
            sm.NETWORK_VARIANT.update(wrap=variant[0], suffix=variant[1])
            try:
                ctxs[label] = sm.DOMAINS[name].prepare(cache, st)
            finally:
                sm.NETWORK_VARIANT.update(wrap=None, suffix="")
        for sampler in dict.fromkeys([sm.default_sampler(ctxs["conditioned"]), *samplers]):
            steps = sm.steps_for_nfe(sampler, DOMAIN_STEPS_NFE)
            for label, ctx in ctxs.items():
                ctx_s = {**ctx, "default": sampler}
                with torch.no_grad():
                    metric, nfe = sm.DOMAINS[name].score(ctx_s, sampler, steps, seed)
                rows.append(
                    dict(domain=name, method=label, setting=f"{sampler}, {steps} steps", metric=metric, calls=nfe)
                )
                print(f"  {name} {label} {sampler} {steps}: {sm.DOMAINS[name].metric} {metric:.4g}", flush=True)
    return rows


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--domains",
        nargs="+",
        choices=list(CACHE_FILES),
        default=None,
        help="per-domain rows instead of the mixture table",
    )
    parser.add_argument("--thresholds", nargs="+", type=float, default=[0.01, 0.05])
    parser.add_argument(
        "--cache_thresholds", nargs="*", type=float, default=[0.05, 0.1], help="feature caching's (none: no rows)"
    )
    parser.add_argument("--quick", action="store_true", help="fewer held-out examples per domain")
    parser.add_argument("--no_int8", action="store_true", help="leave out the per-domain int8 rows")
    parser.add_argument(
        "--int8_all_layers",
        action="store_true",
        help="per-domain int8 rows: quantize the layers at the network's input and output too (default: float)",
    )
    parser.add_argument(
        "--noise_unconditional",
        action="store_true",
        help="with --domains: train each model again without its time input (cached as *_nu.pt) and compare",
    )
    parser.add_argument("--nu_samplers", nargs="*", default=["ddim", "heun"], help="samplers of --noise_unconditional")
    parser.add_argument("--cache", type=Path, default=Path("outputs/sampler_matrix"))
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def print_noise_unconditional(rows: list[dict]) -> None:
    sm = _matrix()
    print("\n" + markdown_header(["domain (metric)", "model", "sampler", "metric", "network calls"], "lllrr"))
    for r in rows:
        label = f"{r['domain']} ({sm.DOMAINS[r['domain']].metric})"
        print(markdown_row([label, r["method"], r["setting"], r.get("metric"), r.get("calls")], ".4g"))


def print_mixture_table(samples: int, threads: int) -> None:
    """Step skipping, calibration and int8 on the toy mixture, against the fp32 network."""
    g = torch.Generator().manual_seed(0)
    rows = skipping_rows(samples, g) + calibration_rows(samples, g)
    qrows, ratio = quantization_rows(samples, g)
    rows += qrows
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {threads} thread(s), "
        f"{samples} samples, quantized engine {torch.backends.quantized.engine}"
    )
    head = ["method", "setting", "network calls", "mixture error", "displacement", "wall us/sample", "CPU us/sample"]
    print("\n" + markdown_header(head, "ll" + "r" * 5))
    keys = ("method", "setting", "calls", "error", "moved", "wall_us", "cpu_us")
    for r in rows:
        print(markdown_row([r[k] for k in keys], ["", "", "", ".4f", ".4f", ".1f", ".1f"]))
    print(f"\nint8 / fp32 serialised size of the ToyMLP: {ratio:.2f}")


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    if args.domains and args.noise_unconditional:
        print_noise_unconditional(
            noise_unconditional_rows(args.domains, args.cache, args.quick, args.seed, args.nu_samplers)
        )
    elif args.domains:
        run_domains(
            args.domains,
            args.cache,
            args.quick,
            tuple(args.thresholds),
            args.seed,
            args.cache_thresholds,
            not args.no_int8,
            not args.int8_all_layers,
        )
    else:
        print_mixture_table(args.samples, args.threads)


if __name__ == "__main__":
    main()
