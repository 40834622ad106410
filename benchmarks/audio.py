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


def main() -> None:
    import torch
    from lightning.pytorch.callbacks import EMAWeightAveraging

    from difflab.audio.demo import METHOD_CONFIGS, TRAINING, build, enhance_test_set, method_args
    from difflab.audio.inference import load_model
    from difflab.audio.metrics import evaluate
    from difflab.core.lightning import train_briefly

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
    ns = p.parse_args()
    torch.set_num_threads(ns.threads)
    ckpts: dict[str, Path] = {}
    models = {}
    dm = None
    for method, config in METHOD_CONFIGS.items():
        if ns.ckpt_dir is not None:
            ckpts[method] = ns.ckpt_dir / f"{method}.ckpt"
            models[method] = load_model(ckpts[method])
            if dm is None:
                _, dm = build(config, data_root=ns.data_root)
        else:  # the demo's training settings (StoRM starts from the predictive checkpoint written first)
            ns.out.mkdir(parents=True, exist_ok=True)
            model, dm = build(
                config,
                data_root=ns.data_root,
                lr=TRAINING["lr"],
                batch_size=TRAINING["batch_size"],
                extra=method_args(method, ns.out),
            )
            ckpts[method] = ns.out / f"{method}.ckpt"
            ema = TRAINING[method].get("ema")
            train_briefly(
                model,
                dm,
                max_steps=ns.steps or TRAINING[method]["steps"],
                gradient_clip_val=1.0,
                checkpoint=ckpts[method],
                callbacks=[EMAWeightAveraging(decay=ema)] if ema else [],
            )
            models[method] = model.eval()

    print(
        f"# difflab-audio benchmark, {date.today()}, {platform.machine()} {platform.processor() or ''}, "
        f"torch {torch.__version__}, {ns.threads} thread(s)\n"
    )
    rows = []
    for label, method, sampler, steps in [
        ("SGMSE+ (PC, N=30)", "sgmse", "pc", 30),
        ("SGMSE+ (probability flow, N=3)", "sgmse", "probability_flow", 3),
        ("StoRM (PC, N=10)", "storm", "pc", 10),
        ("StoRM (PC, N=30)", "storm", "pc", 30),
        ("StoRM (probability flow, N=3)", "storm", "probability_flow", 3),
        ("predictive", "predictive", None, None),
    ]:
        rtf, mem = speed(ckpts[method], sampler, steps, ns.seconds, ns.threads)
        nfe = 1 if steps is None else (2 * steps if sampler == "pc" else steps) + (method == "storm")
        rows.append((label, nfe, rtf, mem))
    base_rtf = rows[0][2]
    print(f"## Speed on CPU ({ns.seconds:.0f} s utterance)\n")
    print("| variant | NFE | RTF | RTF / SGMSE+ | extra peak memory (MB) |\n|---|---:|---:|---:|---:|")
    for label, nfe, rtf, mem in rows:
        print(f"| {label} | {nfe} | {rtf:.3f} | {rtf / base_rtf:.2f} | {mem:.0f} |")

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
    u, pr = base["unprocessed"], base["predictive"]
    print(f"\n## Quality versus sampler steps ({len(clean)} real-speech test mixtures)\n")
    print(
        f"unprocessed: PESQ {u['pesq'][0]:.2f}, SI-SDR {u['si_sdr'][0]:.2f} dB; "
        f"predictive (NFE 1): PESQ {pr['pesq'][0]:.2f}, SI-SDR {pr['si_sdr'][0]:.2f} dB\n"
    )
    print(
        "| sampler | N | SGMSE+ NFE | SGMSE+ PESQ | SGMSE+ SI-SDR | StoRM NFE | StoRM PESQ | StoRM SI-SDR "
        "| StoRM / SGMSE+ SI-SDR gain |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for sampler, grid in (("pc", ns.nfe_steps), ("probability_flow", ns.ode_steps)):
        for n, a, b in zip(grid, curves[f"sgmse/{sampler}"], curves[f"storm/{sampler}"]):
            ga, gb = a[2] - u["si_sdr"][0], b[2] - u["si_sdr"][0]
            # a ratio of gains only means something when SGMSE+ improves on the input
            ratio = f"{gb / ga:.2f}" if ga > 0.1 else "-"
            print(
                f"| {sampler} | {n} | {a[0]} | {a[1]:.2f} | {a[2]:.2f} | {b[0]} | {b[1]:.2f} | {b[2]:.2f} | {ratio} |"
            )
    if ns.figure is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
        for ax, k, name in ((axes[0], 1, "PESQ (wb)"), (axes[1], 2, "SI-SDR (dB)")):
            for key, label, c, ls in (
                ("sgmse/pc", "SGMSE+ (PC)", "C0", "o-"),
                ("sgmse/probability_flow", "SGMSE+ (ODE)", "C0", "s--"),
                ("storm/pc", "StoRM (PC)", "C3", "o-"),
                ("storm/probability_flow", "StoRM (ODE)", "C3", "s--"),
            ):
                pts = curves[key]
                ax.plot([q[0] for q in pts], [q[k] for q in pts], ls, color=c, label=label)
            key = "pesq" if k == 1 else "si_sdr"
            ax.axhline(pr[key][0], color="C2", ls="--", label="predictive (NFE 1)")
            ax.axhline(u[key][0], color="gray", ls=":", label="unprocessed")
            ax.set_xscale("log")
            ax.set_xlabel("network evaluations (NFE)")
            ax.set_ylabel(name)
        axes[0].legend(fontsize=8)
        fig.suptitle("quality versus NFE on real-speech test mixtures (CPU-trained small models)", fontsize=10)
        fig.tight_layout()
        ns.figure.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(ns.figure, dpi=100)
        print(f"\nfigure: {ns.figure}")


if __name__ == "__main__":
    main()
