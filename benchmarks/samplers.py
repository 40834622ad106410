r"""difflab-core sampler benchmarks: NFE versus error of every registered sampler, time per step against
diffusers and k-diffusion.

Run ``python benchmarks/samplers.py`` (``--quick`` for fewer samples, step counts and repeats;
``--out DIR`` for the plot, default ``core/docs``). Prints markdown tables:

1. **NFE versus error** of every continuous sampler in the registry
   (:data:`difflab.core.samplers.registry.SAMPLERS`, so a new sampler appears here by itself), each on
   its default grid (:func:`~difflab.core.samplers.select.run_sampler`), at several step counts, on two
   exact-score Gaussian mixtures under a VP SDE: a 2-D mixture of three modes and a 256-dimensional
   mixture of four narrow modes (component std 0.05). The network is the Bayes-optimal denoiser
   (:mod:`difflab.core.toy`), so every error is the sampler's own discretisation error. Samplers whose
   default grid is the two end points (the adaptive solver) sweep their tolerance instead of the
   step count. NFE is :attr:`SampleResult.nfe` (batched calls count once).

   Error measure, the per-mode spread error: with the nearest-mean assignment of samples to the
   components ``k`` of the target (the exact marginal at the sampler's end time, means ``m_k`` and
   stds ``v_k``), :math:`r_k = \sqrt{\mathrm{mean}_{x \in k} \|x - m_k\|^2 / (v_k^2 D)}` is 1 for exact
   samples (a sample's squared distance to its mean is ``v_k^2 chi^2_D``); residual noise makes it
   larger, over-contraction smaller, a shifted mode mean by ``delta`` gives ``sqrt(1 + delta^2 /
   (v_k^2 D))``. The error is :math:`\sum_k w_k |r_k - 1|`. The same measure on exact samples of the
   same size is the noise floor. The largest mode-weight error ``max_k |hat w_k - w_k|`` over the step
   counts is listed beside it (its floor is about ``sqrt(w (1 - w) / n)``).
2. **Wall and CPU time per step** of our sampler loops against diffusers' scheduler loops and
   k-diffusion's sampling functions with the same tiny network (a 4x4 linear layer on one float32
   sample, so the loop overhead dominates), on a ``DiscreteVP`` linear chain of 1000 steps: warm-up,
   then round-robin repeats of all variants (so load changes hit every variant alike), medians of
   ``time.perf_counter`` and ``time.process_time`` per step, and the ratio ours / peer. Each side
   builds its grid inside the timing (our ``run_sampler``, the scheduler's ``set_timesteps``,
   k-diffusion's ``get_sigmas_karras``).
3. An error-versus-NFE plot (log-log, one line per sampler, 2-D and D = 256 panels) written to
   ``OUT/samplers_nfe.png``.

k-diffusion's package imports much more than its sampling module needs, so its ``sampling.py`` is
loaded alone (:func:`difflab.core.testing.kdiffusion_sampling`, shared with the parity tests).
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.metadata
import importlib.util
import inspect
import io
import math
import platform
import pstats
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from difflab.core.processes import VPSDE, DiscreteVP
from difflab.core.samplers import Denoiser, run_sampler
from difflab.core.samplers.registry import SAMPLERS
from difflab.core.tables import markdown_table
from difflab.core.toy import GaussianMixture

DT = torch.float64
ROOT = Path(__file__).resolve().parents[1]
STEPS = (5, 10, 20, 50)
TOLERANCES = (0.2, 0.1, 0.05, 0.02)  # rel_tol of samplers that choose their own steps, one per step count


# ------------------------------------------------------------------------------------------ (1) accuracy
@dataclass
class Setting:
    """One accuracy benchmark: a mixture, a process, a sample count and how the adaptive solver batches."""

    label: str
    mixture: GaussianMixture
    process: VPSDE
    n: int
    group: int = 1  # samples of ``group`` points each for samplers with per-sample step control


def mixture_2d() -> GaussianMixture:
    """Three modes in 2-D, stds 0.25 / 0.2 / 0.15, weights 0.5 / 0.3 / 0.2."""
    return GaussianMixture.three_modes_2d(DT)


def mixture_256() -> GaussianMixture:
    """Four modes in D = 256 with means ``0.5 N(0, I)`` (about 11 apart), std 0.05, weights 0.1 .. 0.4."""
    g = torch.Generator().manual_seed(0)
    means = torch.randn(4, 256, generator=g, dtype=DT) * 0.5
    return GaussianMixture(means, 0.05, torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=DT))


def settings(quick: bool) -> list[Setting]:
    """The 2-D mixture (VP SDE, t_min 1e-3) and the D = 256 mixture (t_min 1e-5, so that the noise left
    at the end time, ``s(t_min) = 0.001``, is small against the component std 0.05). In 2-D the
    adaptive solver's per-sample error control runs on samples of 32 points (64 elements)."""
    return [
        Setting("2-D", mixture_2d(), VPSDE(), 1024 if quick else 4096, group=32),
        Setting("D = 256", mixture_256(), VPSDE(t_min=1e-5), 200 if quick else 1000),
    ]


def spread_error(target: GaussianMixture, samples: torch.Tensor) -> tuple[float, str]:
    """``(sum_k w_k |r_k - 1|, sign)`` with ``r_k`` the rms distance of the samples nearest to mean ``k``
    in units of ``std_k sqrt(D)`` (module docstring) and ``sign`` that of ``sum_k w_k (r_k - 1)``:
    ``+`` too wide (residual noise), ``-`` too narrow; ``inf`` for non-finite samples. ``samples`` (n, D)."""
    if not bool(torch.isfinite(samples).all()):
        return math.inf, ""
    labels = target.assign(samples)
    d2 = (samples - target.means[labels]).pow(2).sum(-1) / (target.stds[labels] ** 2 * target.dim)
    err, signed = 0.0, 0.0
    for k in range(target.num_components):
        mine = d2[labels == k]
        dev = float(mine.mean().sqrt()) - 1.0 if mine.numel() else -1.0  # a lost mode counts fully
        err += float(target.weights[k]) * abs(dev)
        signed += float(target.weights[k]) * dev
    return err, "+" if signed >= 0 else "-"


def weight_error(target: GaussianMixture, samples: torch.Tensor) -> float:
    """``max_k |hat w_k - w_k|`` of the nearest-mean assignment; ``inf`` for non-finite samples."""
    if not bool(torch.isfinite(samples).all()):
        return math.inf
    return float((target.mode_weights(samples) - target.weights).abs().max())


@dataclass
class Run:
    """One sampler at one step count (or tolerance): its NFE, errors and extras."""

    steps: int
    nfe: int
    error: float
    weight_error: float
    note: str = ""
    sign: str = ""


@dataclass
class SamplerRuns:
    name: str
    runs: list[Run] = field(default_factory=list)
    skipped: str = ""


def run_sampler_on(setting: Setting, name: str, steps: int, tol: float, x: torch.Tensor) -> Run:
    """Run sampler ``name`` from the prior draw ``x`` (n, D) on its default grid and score it."""
    proc = setting.process
    den = Denoiser(setting.mixture.exact_model(proc), proc)
    _, _, kind, to_zero = SAMPLERS[name]
    target = setting.mixture.marginal_mixture(0.0 if to_zero else proc.t_min, proc)
    options, start, note = {}, x, ""
    if kind == "endpoints":  # chooses its own steps: sweep the tolerance, per-sample control on groups
        options["rel_tol"] = tol
        start = x.reshape(-1, setting.group, x.shape[-1]) if setting.group > 1 else x
        note = f"tol {tol:g}"
    with torch.inference_mode():
        res = run_sampler(name, den, start, steps=steps, generator=torch.Generator().manual_seed(1), **options)
    sample = res.sample.reshape(-1, x.shape[-1])
    if "rounds" in res.info and not note:  # ParaDiGMS: sequential batched calls
        note = f"{res.info['rounds']} rounds"
    err, sign = spread_error(target, sample)
    return Run(steps, res.nfe, err, weight_error(target, sample), note, sign)


def accuracy(setting: Setting, names: Sequence[str], steps: Sequence[int]) -> tuple[list[SamplerRuns], Run]:
    """Every sampler of ``names`` at every step count on one setting, and the exact-sample noise floor.

    A sampler that raises is kept with the reason (``SamplerRuns.skipped``)."""
    proc = setting.process
    x = proc.prior_sample((setting.n, setting.mixture.dim), generator=torch.Generator().manual_seed(0), dtype=DT)
    tols = dict(zip(sorted(steps), TOLERANCES))
    out = []
    for name in names:
        entry = SamplerRuns(name)
        try:
            for n in steps:
                entry.runs.append(run_sampler_on(setting, name, n, tols.get(n, 0.05), x))
        except Exception as err:  # reported in the table, not hidden
            entry.skipped = f"cannot run: {type(err).__name__}: {str(err).splitlines()[0][:90]}"
            entry.runs = []
        out.append(entry)
    floor = noise_floor(setting)
    return out, floor


def noise_floor(setting: Setting, draws: int = 5) -> Run:
    """Mean spread and weight errors of ``draws`` sets of ``n`` exact samples of the mixture."""
    g = torch.Generator().manual_seed(7)
    errs, werrs = [], []
    for _ in range(draws):
        exact = setting.mixture.sample(setting.n, g)
        errs.append(spread_error(setting.mixture, exact)[0])
        werrs.append(weight_error(setting.mixture, exact))
    return Run(0, 0, statistics.fmean(errs), statistics.fmean(werrs))


def format_cell(run: Run) -> str:
    err = "diverged" if not math.isfinite(run.error) else f"{run.sign}{run.error:.3g}"
    extra = f", {run.note}" if run.note else ""
    return f"{err} ({run.nfe}{extra})"


def accuracy_table(results: list[SamplerRuns], floor: Run, steps: Sequence[int]) -> str:
    """One row per sampler: ``error (NFE)`` per step count, and the largest weight error."""
    rows = []
    for entry in results:
        if entry.skipped:
            rows.append([entry.name, *(["-"] * len(steps)), entry.skipped])
            continue
        werr = max(r.weight_error for r in entry.runs)
        rows.append([entry.name, *(format_cell(r) for r in entry.runs), "diverged" if math.isinf(werr) else werr])
    rows.append(["exact samples (noise floor)", *([f"{floor.error:.3g}"] * len(steps)), floor.weight_error])
    head = ["sampler", *(f"{n} steps" for n in steps), "max weight err"]
    return markdown_table(rows, head, ".3f")


def table_accuracy(quick: bool, names: Sequence[str] | None = None) -> dict[str, tuple[list[SamplerRuns], Run]]:
    """Print the NFE-versus-error tables of both settings; return their results for the plot."""
    names = list(SAMPLERS) if names is None else list(names)
    steps = (5, 20) if quick else STEPS
    results = {}
    for k, setting in enumerate(settings(quick)):
        t0 = time.perf_counter()
        res, floor = accuracy(setting, names, steps)
        results[setting.label] = (res, floor)
        mix = setting.mixture
        print(f"\n### 1.{k + 1} NFE versus error, exact-score mixture, {setting.label} ", end="")
        print(f"({mix.num_components} modes, {setting.n} samples, VP SDE t_min {setting.process.t_min:g})\n")
        print("Cells: spread error, signed + too wide / - too narrow (NFE). Adaptive: tolerance instead of")
        print("steps; ParaDiGMS: total NFE and sequential rounds. Noise floor: the same measures on")
        print(f"{setting.n} exact samples (mean of 5 draws).")
        print(f"({time.perf_counter() - t0:.0f} s)\n")
        print(accuracy_table(res, floor, steps))
    return results


# ------------------------------------------------------------------------------------------ (3) plot
def plot_accuracy(results: dict[str, tuple[list[SamplerRuns], Run]], path: Path) -> None:
    """Error against NFE, log-log, one line per sampler, one panel per setting, the noise floor dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [e.name for e in next(iter(results.values()))[0]]
    colors = [plt.get_cmap("tab20")(i) for i in range(20)] + ["#000000", "#8c6d31", "#17becf", "#e7969c"]
    colors = [colors[i % len(colors)] for i in range(len(names))]
    styles = ["-", "--", "-.", ":"]
    markers = "os^vD<>pP*Xh"
    fig, axes = plt.subplots(1, len(results), figsize=(6.2 * len(results) + 2.6, 5.6), squeeze=False)
    for ax, (label, (res, floor)) in zip(axes[0], results.items()):
        for i, entry in enumerate(res):
            pts = sorted((r.nfe, r.error) for r in entry.runs if math.isfinite(r.error) and r.error > 0)
            if not pts:
                continue
            ax.plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                linestyle=styles[i % len(styles)],
                marker=markers[i % len(markers)],
                color=colors[i],
                label=entry.name,
                markersize=5,
            )
        ax.axhline(floor.error, color="grey", linestyle="--", linewidth=2, label="exact samples (floor)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(max(floor.error / 3, 1e-4), 3.0)
        ax.set_xlabel("NFE (network evaluations)")
        ax.set_ylabel("per-mode spread error")
        ax.set_title(f"exact-score mixture, {label}")
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    right = 1 - 2.3 / fig.get_figwidth()
    fig.tight_layout(rect=(0, 0, right, 1))
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(right, 0.5), fontsize=8, frameon=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------------------ (2) timing
TIMING_STEPS = 25
DIFFUSERS_PEERS: dict[str, tuple[str, dict]] = {
    "ddpm": ("DDPMScheduler", {"clip_sample": False}),
    "ddim": ("DDIMScheduler", {"clip_sample": False}),
    "dpm_solver": ("DPMSolverMultistepScheduler", {}),
    "dpm_solver_singlestep": ("DPMSolverSinglestepScheduler", {}),
    "pndm": ("PNDMScheduler", {"skip_prk_steps": True}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_ancestral": ("EulerAncestralDiscreteScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "lms": ("LMSDiscreteScheduler", {}),
    "deis": ("DEISMultistepScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "lcm": ("LCMScheduler", {}),
    "tcd": ("TCDScheduler", {}),
}
KDIFFUSION_PEERS: dict[str, str] = {
    "euler": "sample_euler",
    "heun": "sample_heun",
    "euler_ancestral": "sample_euler_ancestral",
    "dpm_solver": "sample_dpmpp_2m",
    "dpmpp_2s_ancestral": "sample_dpmpp_2s_ancestral",
    "dpmpp_sde": "sample_dpmpp_sde",
    "dpmpp_2m_sde": "sample_dpmpp_2m_sde",
    "dpmpp_3m_sde": "sample_dpmpp_3m_sde",
    "lms": "sample_lms",
}
# our options that match the peer's defaults: k-diffusion's DPM++ SDE samplers draw their noise from a
# Brownian tree; LCM's scheduler applies its consistency boundary condition
OUR_OPTIONS: dict[str, dict] = {
    "dpmpp_2m_sde": {"noise": "brownian"},
    "dpmpp_3m_sde": {"noise": "brownian"},
}


def load_kdiffusion():
    """k-diffusion's ``sampling`` module (:func:`difflab.core.testing.kdiffusion_sampling`), or None."""
    from difflab.core.testing import kdiffusion_sampling

    return kdiffusion_sampling()


@dataclass
class Timed:
    """A zero-argument run and its NFE per call."""

    run: Callable[[], object]
    nfe: int


def _ours(name: str, net, proc, x: torch.Tensor, n: int) -> Timed:
    den = Denoiser(lambda y, t: net(y), proc, "eps")
    options = dict(OUR_OPTIONS.get(name, {}))
    if name == "lcm":
        from difflab.core.samplers.consistency import lcm_boundary

        options["boundary"] = lcm_boundary(proc.num_steps)

    def run():
        g = torch.Generator().manual_seed(0)
        return run_sampler(name, den, x, steps=n, generator=g, **options).sample

    return Timed(run, run_sampler(name, den, x, steps=n, **options).nfe)


def _diffusers(cls_name: str, kwargs: dict, net, x: torch.Tensor, n: int) -> Timed:
    import diffusers

    diffusers.utils.logging.set_verbosity_error()  # its notes on adjusted settings are not results
    sched = getattr(diffusers, cls_name)(num_train_timesteps=1000, beta_schedule="linear", **kwargs)
    takes_generator = "generator" in inspect.signature(sched.step).parameters

    def run():
        sched.set_timesteps(n)
        y = x * sched.init_noise_sigma
        kw = {"generator": torch.Generator().manual_seed(0)} if takes_generator else {}
        for t in sched.timesteps:
            y = sched.step(net(sched.scale_model_input(y, t)), t, y, **kw).prev_sample
        return y

    sched.set_timesteps(n)
    return Timed(run, len(sched.timesteps))


def _kdiffusion(kd, fn_name: str, net, proc, x: torch.Tensor, n: int) -> Timed:
    """k-diffusion's sampler on the VE view of the same eps network: ``D(x, sigma) = x - sigma
    eps(x / sqrt(1 + sigma^2))``, sigmas from ``get_sigmas_karras`` over the chain's range."""
    ends = proc.sigma(torch.tensor([1.0, 1.0 / proc.num_steps], dtype=DT))
    smax, smin = float(ends[0]), float(ends[1])
    calls = [0]

    def model(y, sigma):
        calls[0] += 1
        s = sigma.reshape(-1, *([1] * (y.ndim - 1)))
        return y - s * net(y * (s * s + 1).rsqrt())

    fn = getattr(kd, fn_name)

    def run():
        sigmas = kd.get_sigmas_karras(n, smin, smax, device=x.device)
        return fn(model, x * sigmas[0], sigmas, disable=True)

    run()
    return Timed(run, calls[0])


def timing_variants(n: int) -> tuple[dict[str, Timed], list[tuple[str, str, str]]]:
    """All timed runs by label, and the (sampler, our label, peer label) pairs to report."""
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 4)
    proc = DiscreteVP("linear", 1000)
    x = torch.randn(1, 4)
    runs: dict[str, Timed] = {}
    pairs = []
    kd = load_kdiffusion()
    for name in SAMPLERS:
        peers = []
        if name in DIFFUSERS_PEERS:
            cls_name, kw = DIFFUSERS_PEERS[name]
            peers.append(
                (f"diffusers {cls_name}", lambda cls_name=cls_name, kw=kw: _diffusers(cls_name, kw, net, x, n))
            )
        if name in KDIFFUSION_PEERS and kd is not None:
            fn_name = KDIFFUSION_PEERS[name]
            peers.append((f"k-diffusion {fn_name}", lambda fn_name=fn_name: _kdiffusion(kd, fn_name, net, proc, x, n)))
        if not peers:
            continue
        runs[f"ours {name}"] = _ours(name, net, proc, x, n)
        for label, make in peers:
            runs[label] = make()
            pairs.append((name, f"ours {name}", label))

    def network_only():
        y = x
        for _ in range(n):
            y = net(y)
        return y

    runs["network only"] = Timed(network_only, n)
    return runs, pairs


def measure(runs: dict[str, Timed], repeats: int, warmup: int = 3) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds per call of each run: ``warmup`` calls each, then ``repeats`` rounds
    that call every run once in turn."""
    wall: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for r in runs.values():
            for _ in range(warmup):
                r.run()
        for _ in range(repeats):
            for name, r in runs.items():
                c0, t0 = time.process_time(), time.perf_counter()
                r.run()
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
    return {k: (statistics.median(wall[k]), statistics.median(cpu[k])) for k in runs}


def table_timing(quick: bool, profile: str | None = None) -> None:
    n = TIMING_STEPS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runs, pairs = timing_variants(n)
    repeats = 7 if quick else 31
    med = measure(runs, repeats)
    us = {k: (w / n * 1e6, c / n * 1e6) for k, (w, c) in med.items()}
    net_w, net_c = us["network only"]
    print(f"\n### 2. Time per step against diffusers and k-diffusion ({n} steps, 1 x 4 float32, 4x4 linear network)\n")
    print(f"Medians of {repeats} round-robin repeats after 3 warm-up calls, microseconds per step (total / {n});")
    print(f"the network alone takes {net_w:.1f} us wall / {net_c:.1f} us CPU per call. NFE per run: ours / peer.\n")
    rows = []
    for name, ours, peer in pairs:
        (ow, oc), (pw, pc) = us[ours], us[peer]
        rows.append([name, peer, f"{runs[ours].nfe} / {runs[peer].nfe}", ow, pw, ow / pw, oc, pc, oc / pc])
    head = ["sampler", "peer", "NFE", "ours wall", "peer wall", "wall ratio", "ours CPU", "peer CPU", "CPU ratio"]
    fmt = ["", "", "", ".1f", ".1f", ".2f", ".1f", ".1f", ".2f"]
    print(markdown_table(rows, head, fmt))
    if profile:
        print_profile(runs[f"ours {profile}"].run, profile)


def print_profile(run: Callable[[], object], name: str, calls: int = 20) -> None:
    """cProfile of ``calls`` runs of our loop, top 8 functions by own time."""
    prof = cProfile.Profile()
    with torch.inference_mode():
        prof.enable()
        for _ in range(calls):
            run()
        prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).strip_dirs().sort_stats("tottime").print_stats(8)
    print(f"\nProfile of our {name} loop (top 8 by own time):\n\n```")
    print("\n".join(line for line in buf.getvalue().splitlines() if line.strip())[-2000:])
    print("```")


def versions() -> str:
    parts = [f"torch {torch.__version__}"]
    for dist in ("diffusers", "k-diffusion", "torchsde", "matplotlib"):
        try:
            parts.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            parts.append(f"{dist} absent")
    return ", ".join(parts)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples, step counts and repeats")
    parser.add_argument("--out", type=Path, default=ROOT / "core" / "docs", help="folder of the plot (core/docs)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--only", choices=["accuracy", "timing"], help="run one part instead of both")
    parser.add_argument("--samplers", nargs="+", choices=list(SAMPLERS), help="accuracy of these samplers only")
    parser.add_argument("--profile", choices=list(SAMPLERS), help="also profile our loop of this sampler")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    machine = f"{platform.platform()}, {platform.processor() or platform.machine()}"
    print(f"## difflab-core sampler benchmarks ({time.strftime('%Y-%m-%d')}, {machine}, {args.threads} thread)")
    print(f"\n{versions()}")
    t0 = time.perf_counter()
    if args.only in (None, "accuracy"):
        results = table_accuracy(args.quick, args.samplers)
        path = args.out / "samplers_nfe.png"
        plot_accuracy(results, path)
        print(f"\nPlot: {path}")
    if args.only in (None, "timing"):
        table_timing(args.quick, args.profile)
    print(f"\nTotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
