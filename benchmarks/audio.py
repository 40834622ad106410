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

    python benchmarks/audio.py --ckpt_dir outputs/demo/audio --figure audio/docs/benchmark_nfe.png
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


def main() -> None:
    import torch

    ns = _parser().parse_args()
    torch.set_num_threads(ns.threads)
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
    if ns.figure is not None:
        from difflab.audio.figures import quality_vs_nfe_figure
        from difflab.core.figures import save_figure

        fig = quality_vs_nfe_figure(curves, {k: (pr[k][0], u[k][0]) for k in ("pesq", "si_sdr")})
        save_figure(fig, ns.figure, dpi=100)
        print(f"\nfigure: {ns.figure}")


if __name__ == "__main__":
    main()
