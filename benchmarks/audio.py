"""difflab-audio benchmark: SGMSE+, StoRM and the predictive baseline side by side in one run.

The three models are loaded from checkpoints (``--ckpt_dir``, e.g. the demo's output folder with
``predictive.ckpt``, ``sgmse.ckpt``, ``storm.ckpt``) or trained here for ``--steps`` steps each on
the offline default data (same small network, crops and optimiser for all). Then, on the
real-speech test mixtures (Asterisk prompts + held-out noises):

1. **Speed and memory** on CPU: real-time factor (seconds of compute per second of audio) and the
   extra peak resident memory of enhancing one ``--seconds`` long utterance, each variant measured
   in a fresh process (SGMSE+ PC N=30 and probability flow N=3, StoRM PC N=10 / N=30 and probability
   flow N=3, predictive).
2. **Quality versus steps**: PESQ (wb) and SI-SDR of SGMSE+ and StoRM with the PC sampler at
   N = 5, 10, 30, 50 (NFE = 2N, plus 1 for StoRM's predictor) and with the probability-flow ODE at
   N = 3, 5, 10 (NFE N, plus 1), next to the predictive baseline and the unprocessed input, and the
   ratio of StoRM's SI-SDR gain to SGMSE+'s at each N.

3. **Classical baselines beside the models**: PESQ (wb), ESTOI and SI-SDR (mean ± std) and RTF of
   the unprocessed input, the Wiener filter with the decision-directed a priori SNR and the
   stationary spectral gate (:mod:`difflab.audio.baselines`), the predictive model and both
   diffusion models with the probability-flow ODE (N=3), on the same test mixtures. ``--classical``
   runs only this evaluation, with the models of ``--ckpt_dir`` if given, else the classical rows
   and the input alone (no training).
4. **The shipped default** (``--pretrained``, instead of 1-3): the pretrained denoiser of
   ``difflab/audio/pretrained/denoise.ckpt`` with its recorded sampling against the input, the
   Wiener filter, the spectral gate and its own predictor stage alone (the predictive baseline of
   the same training run, NFE 1), on all 24 real-speech test mixtures (and their first
   ``--num_eval``), and on the first ``--num_eval`` test recordings with babble and with tonal noise
   at 0-10 dB (:func:`difflab.audio.heldout.extra_test_mixtures`, noises the test split lacks).
5. **Field size** (``--field``, instead of 1 and 2): ``difflab-audio enhance`` on generated
   recordings of one minute and of ``--field_hours`` hours (real speech prompts with gaps, in
   coloured noise at 5 dB SNR), 16 kHz mono and 44.1 kHz stereo: wall time, real-time factor and
   the peak resident memory of the whole process (model, reading, enhancing and writing), for the
   predictive model and SGMSE+ with the probability-flow ODE (N=3), each run in a fresh process.
   Without ``--ckpt_dir`` the models are the demo's network after one training step (the timing
   depends on the network's size, not on its weights).

    python benchmarks/audio.py --ckpt_dir outputs/demo/audio --figure audio/docs/benchmark_nfe.png
    python benchmarks/audio.py --field --field_hours 1
    python benchmarks/audio.py --pretrained --num_eval 8
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import platform
import resource
import time
from datetime import date
from pathlib import Path

from difflab.core.tables import markdown_table


def _rss_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _speed_worker(ckpt: str, sampler: str | None, steps: int | None, seconds: float, threads: int, queue) -> None:
    import torch

    from difflab.audio.data.io import load_audio
    from difflab.audio.data.synth import real_speech_files
    from difflab.audio.inference import load_model

    torch.set_num_threads(threads)
    model = load_model(ckpt)
    wavs = [load_audio(f, 16000)[0] for f in real_speech_files()[:40]]
    wav = torch.cat(wavs)[: int(seconds * 16000)]
    model.enhance(wav[:16000], sampler=sampler, steps=2)  # warm-up
    before = _rss_peak_mb()
    t0 = time.perf_counter()
    model.enhance(wav, sampler=sampler, steps=steps, generator=torch.Generator().manual_seed(0))
    dt = time.perf_counter() - t0
    queue.put((dt / (wav.shape[0] / 16000), _rss_peak_mb() - before))


def speed(ckpt: Path, sampler: str | None, steps: int | None, seconds: float, threads: int) -> tuple[float, float]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_speed_worker, args=(str(ckpt), sampler, steps, seconds, threads, q))
    p.start()
    out = q.get()
    p.join()
    return out


SPEED_VARIANTS = [
    ("SGMSE+ (PC, N=30)", "sgmse", "pc", 30),
    ("SGMSE+ (probability flow, N=3)", "sgmse", "probability_flow", 3),
    ("StoRM (PC, N=10)", "storm", "pc", 10),
    ("StoRM (PC, N=30)", "storm", "pc", 30),
    ("StoRM (probability flow, N=3)", "storm", "probability_flow", 3),
    ("predictive", "predictive", None, None),
]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ckpt_dir", type=Path, default=None, help="folder with predictive/sgmse/storm .ckpt (else train)")
    p.add_argument("--data_root", type=Path, default=None, help="default-layout data (default: the offline default)")
    p.add_argument("--steps", type=int, default=None, help="training steps per model when training here (demo's)")
    p.add_argument("--out", type=Path, default=Path("outputs/benchmarks/audio"))
    p.add_argument("--num_eval", type=int, default=12)
    p.add_argument("--seconds", type=float, default=4.0, help="utterance length of the speed measurement")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--nfe_steps", type=int, nargs="+", default=[5, 10, 30, 50], help="PC steps")
    p.add_argument("--ode_steps", type=int, nargs="+", default=[3, 5, 10], help="probability-flow steps")
    p.add_argument("--figure", type=Path, default=None)
    p.add_argument("--classical", action="store_true", help="only the evaluation of the classical baselines")
    p.add_argument("--pretrained", action="store_true", help="evaluate the shipped default denoiser instead")
    p.add_argument("--field", action="store_true", help="measure enhance on generated long recordings instead")
    p.add_argument("--field_hours", type=float, default=1.0, help="length of the long field recording")
    p.add_argument(
        "--field_long_stereo",
        nargs="+",
        choices=["predictive", "sgmse"],
        default=["predictive", "sgmse"],
        help="the models run on the long 44.1 kHz stereo recording (the slowest row)",
    )
    p.add_argument("--field_dir", type=Path, default=None, help="where the field recordings go (default --out/field)")
    return p


def load_or_train(ns: argparse.Namespace):
    """The three models from ``--ckpt_dir``, or trained here with the demo's settings (StoRM starts from
    the predictive checkpoint written first): ``(checkpoints, models, datamodule)``."""

    from difflab.audio.demo import METHOD_CONFIGS, TRAINING, build, method_args
    from difflab.audio.inference import load_model
    from difflab.core.lightning import train_briefly

    ckpts: dict[str, Path] = {}
    models = {}
    dm = None
    for method, config in METHOD_CONFIGS.items():
        if ns.ckpt_dir is not None:
            ckpts[method] = ns.ckpt_dir / f"{method}.ckpt"
            models[method] = load_model(ckpts[method])
            if dm is None:
                _, dm = build(config, data_root=ns.data_root)
            continue
        ns.out.mkdir(parents=True, exist_ok=True)
        model, dm = build(
            config,
            data_root=ns.data_root,
            lr=TRAINING["lr"],
            batch_size=TRAINING["batch_size"],
            extra=method_args(method, ns.out),
        )
        ckpts[method] = ns.out / f"{method}.ckpt"
        train_briefly(
            model,
            dm,
            max_steps=ns.steps or TRAINING[method]["steps"],
            gradient_clip_val=1.0,
            checkpoint=ckpts[method],
            ema_decay=TRAINING[method].get("ema") or None,
        )
        models[method] = model.eval()
    return ckpts, models, dm


def speed_table(ckpts: dict[str, Path], seconds: float, threads: int) -> str:
    """Real-time factor and extra peak memory of every variant of :data:`SPEED_VARIANTS`, each in a
    fresh process, as a Markdown table."""
    rows = []
    for label, method, sampler, steps in SPEED_VARIANTS:
        rtf, mem = speed(ckpts[method], sampler, steps, seconds, threads)
        nfe = 1 if steps is None else (2 * steps if sampler == "pc" else steps) + (method == "storm")
        rows.append([label, nfe, rtf, rtf / (rows[0][2] if rows else rtf), mem])
    head = ["variant", "NFE", "RTF", "RTF / SGMSE+", "extra peak memory (MB)"]
    return markdown_table(rows, head, ["", "", ".3f", ".2f", ".0f"])


def quality_curves(models: dict, dm, ns: argparse.Namespace):
    """PESQ and SI-SDR of SGMSE+ and StoRM per sampler and step count, and of the predictive baseline and
    the input: ``(number of files, {"unprocessed", "predictive"} scores, {method/sampler: [(NFE, PESQ, SI-SDR)]})``."""
    from difflab.audio.demo import enhance_test_set
    from difflab.audio.metrics import evaluate

    clean, noisy, pred, *_ = enhance_test_set(models["predictive"], dm, limit=ns.num_eval)
    base = evaluate({"predictive": pred}, clean, noisy, metrics=("pesq", "si_sdr"))
    curves: dict[str, list[tuple[int, float, float]]] = {}
    for method in ("sgmse", "storm"):
        for sampler, grid in (("pc", ns.nfe_steps), ("probability_flow", ns.ode_steps)):
            key = f"{method}/{sampler}"
            curves[key] = []
            for n in grid:
                _, _, enh, _, _, nfe = enhance_test_set(models[method], dm, limit=ns.num_eval, sampler=sampler, steps=n)
                r = evaluate({method: enh}, clean, noisy, metrics=("pesq", "si_sdr"))[method]
                curves[key].append((nfe, r["pesq"][0], r["si_sdr"][0]))
    return len(clean), base, curves


def quality_table(curves: dict, unprocessed_si_sdr: float, ns: argparse.Namespace) -> str:
    rows = []
    for sampler, grid in (("pc", ns.nfe_steps), ("probability_flow", ns.ode_steps)):
        for n, a, b in zip(grid, curves[f"sgmse/{sampler}"], curves[f"storm/{sampler}"]):
            ga, gb = a[2] - unprocessed_si_sdr, b[2] - unprocessed_si_sdr
            # a ratio of gains only means something when SGMSE+ improves on the input
            ratio = f"{gb / ga:.2f}" if ga > 0.1 else "-"
            rows.append([sampler, n, a[0], a[1], a[2], b[0], b[1], b[2], ratio])
    head = ["sampler", "N", "SGMSE+ NFE", "SGMSE+ PESQ", "SGMSE+ SI-SDR", "StoRM NFE", "StoRM PESQ", "StoRM SI-SDR"]
    return markdown_table(rows, [*head, "StoRM / SGMSE+ SI-SDR gain"], floatfmt=".2f")


# ---------------------------------------------------------------------------------------------------- classical
CLASSICAL = {"Wiener filter (decision-directed)": "wiener_filter", "spectral gate (stationary)": "spectral_gate"}
MODEL_ROWS = [
    ("predictive", "predictive", {}),
    ("SGMSE+ (probability flow N=3)", "sgmse", {"sampler": "probability_flow", "steps": 3}),
    ("StoRM (probability flow N=3)", "storm", {"sampler": "probability_flow", "steps": 3}),
]


def test_mixtures(dm, limit: int):
    """``(clean, noisy)`` lists of the first ``limit`` test mixtures of the data module."""
    dm.setup("test")
    ds = dm.test_set or dm.val_set
    items = [ds[i] for i in range(min(limit, len(ds)))]
    return [it["clean"] for it in items], [it["noisy"] for it in items]


def classical_table(models: dict | None, dm, ns: argparse.Namespace) -> str:
    """PESQ / ESTOI / SI-SDR and RTF of the input, the classical baselines and (``models`` not None)
    the three models on the first ``--num_eval`` test mixtures, as a Markdown table."""
    from difflab.audio import baselines
    from difflab.audio.demo import enhance_test_set
    from difflab.audio.metrics import evaluate, format_table

    clean, noisy = test_mixtures(dm, ns.num_eval)
    seconds = sum(x.shape[0] for x in noisy) / 16000
    outputs, rtf = {}, {}
    for label, name in CLASSICAL.items():
        fn = getattr(baselines, name)
        t0 = time.perf_counter()
        outputs[label] = [fn(x, 16000) for x in noisy]
        rtf[label] = (time.perf_counter() - t0) / seconds
    for label, method, options in MODEL_ROWS if models is not None else []:
        _, _, enh, _, compute, nfe = enhance_test_set(models[method], dm, limit=ns.num_eval, **options)
        outputs[label], rtf[label] = enh, compute / seconds
        label_nfe = f"{label}, NFE {nfe}"
        outputs[label_nfe] = outputs.pop(label)
        rtf[label_nfe] = rtf.pop(label)
    results = evaluate(outputs, clean, noisy)
    return format_table(results, {k: {"RTF (CPU)": f"{v:.3f}"} for k, v in rtf.items()})


# ---------------------------------------------------------------------------------------------------- shipped default
def pretrained_systems(seed: int = 0) -> tuple[dict, str]:
    """The systems of the ``--pretrained`` tables (classical baselines, the default's predictor stage
    when it is StoRM, the default with its recorded sampling) and a line describing the default."""
    from difflab.audio.inference import default_checkpoint, load_model
    from difflab.audio.scoring import classical_systems, model_system
    from difflab.core.lightning.pretrained import pretrained_info

    path, sampler, steps = default_checkpoint(None, None, None)
    model, info = load_model(path), pretrained_info(path)
    systems = classical_systems()
    name = type(model).__name__
    if hasattr(model, "predict_mean"):
        systems["predictive baseline (its predictor stage), NFE 1"] = model_system(model, ("predictor", 1), seed)
        label = f"shipped default ({name}, {sampler} N={steps}), NFE {steps + 1}"
    else:
        label = f"shipped default ({name}), NFE 1"
    systems[label] = model_system(model, (sampler, steps), seed)
    trained = ", ".join(f"{k} {v} steps" for k, v in info.get("steps", {}).items())
    return systems, f"{path.name}: {name}, {trained}; `{info.get('command', '')}`"


def pretrained_tables(ns: argparse.Namespace) -> str:
    """PESQ / ESTOI / SI-SDR and RTF of :func:`pretrained_systems` on the real-speech test mixtures
    (all 24, and the first ``--num_eval`` of the same run) and on babble and tonal mixtures of the
    first ``--num_eval`` recordings."""
    from difflab.audio.data import DefaultSpeechDataModule
    from difflab.audio.heldout import extra_test_mixtures
    from difflab.audio.metrics import evaluate, format_table
    from difflab.audio.pretrain import test_mixtures
    from difflab.audio.scoring import run_systems

    systems, which = pretrained_systems()
    mixtures = test_mixtures()
    dm = DefaultSpeechDataModule()
    dm.setup("fit")
    talkers = [dm.val_set[i]["clean"] for i in range(len(dm.val_set))]
    extra = extra_test_mixtures([c for c, _, _ in mixtures[: ns.num_eval]], talkers)
    sets = {
        "test split, all {n} real-speech mixtures": mixtures,
        "babble (6 synthetic talkers) on the first {n} test recordings, 0-10 dB": extra["babble"],
        "tonal noise (hum + whine) on the first {n} test recordings, 0-10 dB": extra["tonal"],
    }
    parts = [which]
    for title, group in sets.items():
        clean, noisy = [c for c, _, _ in group], [x for _, x, _ in group]
        outputs, rtf = run_systems(systems, noisy)
        cols = {k: {"RTF (CPU)": f"{v:.3f}"} for k, v in rtf.items()}
        subsets = [len(group)] + ([ns.num_eval] if group is mixtures and ns.num_eval < len(group) else [])
        for n in subsets:
            table = evaluate({k: v[:n] for k, v in outputs.items()}, clean[:n], noisy[:n])
            head = title.format(n=n) if n == len(group) else f"test split, first {n} real-speech mixtures"
            parts.append(f"### {head}\n\n" + format_table(table, cols))
            print(parts[-1] + "\n", flush=True)
    return "\n\n".join(parts)


# ---------------------------------------------------------------------------------------------------- field size
FIELD_VARIANTS = [
    ("predictive", "predictive", None, None),
    ("SGMSE+ (probability flow, N=3)", "sgmse", "probability_flow", 3),
]


def write_field_recording(path: Path, seconds: float, rate: int, channels: int, seed: int = 0) -> Path:
    """A long noisy recording written block by block (memory of one minute): the real speech prompts
    in turn with 0.2-1.5 s gaps, each channel in its own coloured noise (exponent 0-1.5) at 5 dB SNR
    over the speech, peak about 0.5. Reused when it exists with the right length."""
    import numpy as np
    import soundfile as sf
    import torch

    from difflab.audio.data.io import load_audio, resample
    from difflab.audio.data.synth import coloured_noise, real_speech_files

    n = int(seconds * rate)
    if path.is_file() and sf.info(str(path)).frames == n and sf.info(str(path)).channels == channels:
        return path
    rng = np.random.default_rng(seed)
    speech = [resample(load_audio(f, 16000)[0], 16000, rate).numpy() for f in real_speech_files()[:40]]
    path.parent.mkdir(parents=True, exist_ok=True)
    with sf.SoundFile(str(path), "w", rate, channels, "PCM_16", format="WAV") as out:
        done, k = 0, 0
        while done < n:
            parts, m = [], 0
            while m < 60 * rate:
                gap = np.zeros(int(rng.uniform(0.2, 1.5) * rate), np.float32)
                parts += [gap, speech[k % len(speech)]]
                m, k = m + gap.size + speech[k % len(speech)].size, k + 1
            clean = np.concatenate(parts)[: min(60 * rate, n - done)]
            clean = 0.3 * clean / (np.abs(clean).max() + 1e-9)
            block = np.empty((clean.size, channels), np.float32)
            for c in range(channels):
                noise = coloured_noise(clean.size, float(rng.uniform(0, 1.5)), rng)
                noise = noise.numpy() if isinstance(noise, torch.Tensor) else noise
                noise = noise * np.sqrt(np.mean(clean**2) / np.mean(noise**2) / 10 ** (5 / 10))
                block[:, c] = np.clip(clean + noise, -0.95, 0.95)
            out.write(block)
            done += clean.size
    return path


def _field_worker(ckpt: str, src: str, dst: str, sampler: str | None, steps: int | None, threads: int, queue) -> None:
    import torch

    from difflab.audio.inference import enhance_files, load_model

    torch.set_num_threads(threads)
    load_model(ckpt)  # imports and one model: the memory before any audio
    loaded = _rss_peak_mb()
    t0 = time.perf_counter()
    enhance_files(Path(src), Path(dst), ckpt, sampler=sampler, steps=steps, overwrite=True)
    queue.put((time.perf_counter() - t0, _rss_peak_mb(), loaded))


def field_run(ckpt: Path, src: Path, dst: Path, sampler, steps, threads: int) -> tuple[float, float, float]:
    """``(seconds, peak RSS in MB, RSS in MB after the imports and loading the model)`` of
    ``enhance_files`` on ``src`` in a fresh process."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_field_worker, args=(str(ckpt), str(src), str(dst), sampler, steps, threads, q))
    p.start()
    out = q.get()
    p.join()
    return out


def field_checkpoints(ns: argparse.Namespace) -> tuple[dict[str, Path], str]:
    """The predictive and SGMSE+ checkpoints of ``--ckpt_dir``, or the demo network after one training
    step (timing only), and a note saying which."""
    if ns.ckpt_dir is not None:
        return {m: ns.ckpt_dir / f"{m}.ckpt" for m in ("predictive", "sgmse")}, f"checkpoints of {ns.ckpt_dir}"
    from difflab.audio.demo import METHOD_CONFIGS, build, method_args
    from difflab.audio.inference import load_model
    from difflab.core.lightning import train_briefly

    ckpts = {}
    (ns.out / "field").mkdir(parents=True, exist_ok=True)
    for method in ("predictive", "sgmse"):
        ckpts[method] = ns.out / "field" / f"{method}_1step.ckpt"
        if not ckpts[method].is_file():
            model, dm = build(METHOD_CONFIGS[method], data_root=ns.data_root, extra=method_args(method, ns.out))
            train_briefly(model, dm, max_steps=1, checkpoint=ckpts[method])
    n = sum(p.numel() for p in load_model(ckpts["sgmse"]).parameters())
    return ckpts, f"the demo network (width 8, 3 levels, {n / 1e3:.0f} k parameters) after one training step"


def field_table(ns: argparse.Namespace) -> str:
    """Time, real-time factor and peak RSS of ``enhance`` per recording and variant (Markdown)."""
    from difflab.core.progress import note

    ckpts, which = field_checkpoints(ns)
    folder = ns.field_dir or ns.out / "field"
    recordings = []
    for seconds, label in ((60.0, "1 min"), (ns.field_hours * 3600, f"{ns.field_hours:g} h")):
        for rate, channels in ((16000, 1), (44100, 2)):
            name = f"field_{int(seconds)}s_{rate}_{channels}ch.wav"
            note(f"writing {name}")
            src = write_field_recording(folder / name, seconds, rate, channels)
            recordings.append((f"{label}, {rate / 1000:g} kHz {'mono' if channels == 1 else 'stereo'}", src, seconds))
    rows = []
    # the short recordings first, then the long ones with the fastest model first (so the cheap rows
    # are there even when the slowest is stopped)
    jobs = [(r, v) for v in FIELD_VARIANTS for r in recordings]
    jobs.sort(key=lambda j: (j[0][2] > 60, FIELD_VARIANTS.index(j[1]) if j[0][2] > 60 else 0))
    for (label, src, seconds), (variant, method, sampler, steps) in jobs:
        if seconds > 60 and "stereo" in label and method not in ns.field_long_stereo:
            continue
        dt, rss, loaded = field_run(ckpts[method], src, folder / "out" / src.name, sampler, steps, ns.threads)
        note(f"{label} | {variant}: {dt:.1f} s, peak RSS {rss:.0f} MB ({loaded:.0f} MB with the model loaded)")
        rows.append([label, variant, dt, dt / seconds, rss, rss - loaded])
    head = ["recording", "model", "wall time (s)", "RTF", "peak RSS (MB)", "peak RSS over the loaded model (MB)"]
    return f"models: {which}\n\n" + markdown_table(rows, head, ["", "", ".1f", ".3f", ".0f", ".0f"])


def main() -> None:
    import torch

    ns = _parser().parse_args()
    torch.set_num_threads(ns.threads)
    if ns.field:
        print(
            f"# difflab-audio field-size benchmark, {date.today()}, {platform.machine()}, torch {torch.__version__}, "
            f"{ns.threads} thread(s)\n"
        )
        print(field_table(ns))
        return
    if ns.pretrained:
        print(
            f"## Shipped default, {date.today()}, {platform.machine()}, torch {torch.__version__}, "
            f"{ns.threads} thread(s)\n"
        )
        pretrained_tables(ns)
        return
    if ns.classical:
        models, dm = None, None
        if ns.ckpt_dir is not None:
            _, models, dm = load_or_train(ns)
        else:
            from difflab.audio.demo import METHOD_CONFIGS, build

            dm = build(METHOD_CONFIGS["predictive"], data_root=ns.data_root)[1]
        print(f"## Classical baselines ({ns.num_eval} real-speech test mixtures, {date.today()})\n")
        print(classical_table(models, dm, ns))
        return
    ckpts, models, dm = load_or_train(ns)
    print(
        f"# difflab-audio benchmark, {date.today()}, {platform.machine()} {platform.processor() or ''}, "
        f"torch {torch.__version__}, {ns.threads} thread(s)\n"
    )
    print(f"## Speed on CPU ({ns.seconds:.0f} s utterance)\n")
    print(speed_table(ckpts, ns.seconds, ns.threads))
    n_files, base, curves = quality_curves(models, dm, ns)
    u, pr = base["unprocessed"], base["predictive"]
    print(f"\n## Quality versus sampler steps ({n_files} real-speech test mixtures)\n")
    print(
        f"unprocessed: PESQ {u['pesq'][0]:.2f}, SI-SDR {u['si_sdr'][0]:.2f} dB; "
        f"predictive (NFE 1): PESQ {pr['pesq'][0]:.2f}, SI-SDR {pr['si_sdr'][0]:.2f} dB\n"
    )
    print(quality_table(curves, u["si_sdr"][0], ns))
    print(f"\n## Classical baselines beside the models ({ns.num_eval} real-speech test mixtures)\n")
    print(classical_table(models, dm, ns))
    if ns.figure is not None:
        from difflab.audio.figures import quality_vs_nfe_figure
        from difflab.core.figures import save_figure

        fig = quality_vs_nfe_figure(curves, {k: (pr[k][0], u[k][0]) for k in ("pesq", "si_sdr")})
        save_figure(fig, ns.figure, dpi=100)
        print(f"\nfigure: {ns.figure}")


if __name__ == "__main__":
    main()
