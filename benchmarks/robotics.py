"""Side-by-side benchmark of difflab.robotics: samplers of one Diffusion Policy and the BC baseline.

Collects expert demonstrations of a Meta-World task, trains one small Diffusion Policy (EMA weights)
and the behaviour-cloning baseline for the same number of steps, then rolls every controller out on
the same fixed seed list (10000, 10001, ...) in one process:

* DDPM-100 (the full chain, executing Ta = 8 actions per chunk), DDIM-10 (Ta = 8);
* RTI-DP (full DDPM on the first call, then the shifted previous chunk denoised over a short
  step list, executing one action per call), for several step lists;
* ParaDiGMS over the DDPM-100 chain (window 20, tolerance 0.1): NFE and sequential rounds;
* BC (one MLP call per chunk);
* streaming (TEDi Policy): a second diffusion policy of the same size and training steps trained
  with TEDi's per-token noise levels (``noise_levels="tedi"``), sampled as a stream (one denoising
  step of the rolling 15-action buffer per control step, 1 NFE; the buffer is filled at the start
  of each episode), and, on the same network, DDIM-10 (``--no_stream`` leaves this group out).

It prints success rate, mean return, latency per control step, the longest call, NFE and rounds per
control step, latency ratios to DDPM-100, and the warm-start error behind the choice of RTI-DP's
initial step; ``--figure`` writes the rollout figure.

    python benchmarks/robotics.py --episodes 50 --max_steps 1500 --eval_episodes 20 --figure robotics/docs/rollouts.png

``--pretrained`` instead rolls out the shipped defaults (``difflab/robotics/pretrained/``, written by
``python scripts/pretrain.py robotics``) on held-out seeds: per task the scripted expert, the shipped BC
baseline, and the shipped Diffusion Policy with DDIM-10 and RTI-DP [3, 2, 1], side by side, with the
ratios of success and ms per control step to BC.

    python benchmarks/robotics.py --pretrained --eval_episodes 40
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from difflab.core.tables import markdown_table
from difflab.robotics.demo import train_policies
from difflab.robotics.envs import MetaWorldEnv
from difflab.robotics.figures import plot_rollouts
from difflab.robotics.metrics import format_table, wilson_interval
from difflab.robotics.policy import (
    ChunkController,
    RTIController,
    StreamController,
    demo_shift_error,
    evaluate,
    rti_shift_error,
    suggest_rti_start,
)


def pretrained_table(eval_episodes: int) -> None:
    """The shipped defaults against the scripted expert and the shipped BC baseline, per task."""
    torch.set_num_threads(1)
    from difflab.core.lightning.pretrained import pretrained_info, recommended_sampling, shipped_path
    from difflab.robotics.inference import default_name, load_policy
    from difflab.robotics.pretrain import EPISODE_STEPS, EVAL_SEED0, RECIPES, evaluate_controllers

    for task in RECIPES:
        path = shipped_path("robotics", default_name(task))
        if not path.is_file():
            print(f"{task}: no shipped default ({path}); run python scripts/pretrain.py robotics")
            continue
        info = pretrained_info(path)
        run = {"dp": load_policy(path)[0], "bc": load_policy(shipped_path("robotics", default_name(task, "bc")))[0]}
        rows = evaluate_controllers(run, task, eval_episodes)
        print(
            f"\n{task}: shipped {path.name} ({info.get('steps')} steps, {info.get('wall_minutes')} min; "
            f"default sampling {recommended_sampling(path)}); {eval_episodes} held-out episodes "
            f"(seeds {EVAL_SEED0}..{EVAL_SEED0 + eval_episodes - 1}), limit {EPISODE_STEPS} steps\n"
        )
        print(format_table(rows))
        bc = rows["BC"]
        ratios = []
        for name, s in rows.items():
            k = round(s["success_rate"] * s["episodes"])
            lo, hi = wilson_interval(k, int(s["episodes"]))
            ratios.append(
                [
                    name,
                    f"{lo:.2f}-{hi:.2f}",
                    s["success_rate"] / max(bc["success_rate"], 1e-9),
                    s["latency_ms"] / bc["latency_ms"],
                ]
            )
        print()
        print(
            markdown_table(
                ratios, ["controller", "success 95% CI", "success / BC", "ms per step / BC"], ".2f", align="lrrr"
            )
        )


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="reach-v3")
    p.add_argument("--episodes", type=int, default=50, help="expert demonstrations")
    p.add_argument("--max_steps", type=int, default=1500, help="training steps per policy")
    p.add_argument("--eval_episodes", type=int, default=20)
    p.add_argument("--episode_steps", type=int, default=100)
    p.add_argument("--rti", default="1;2,1;3,2,1;6,5,4,3,2,1", help="RTI-DP step lists, ';'-separated")
    p.add_argument("--window", type=int, default=20)
    p.add_argument("--tolerance", type=float, default=0.1)
    p.add_argument("--figure", type=Path, default=None)
    p.add_argument("--quick", action="store_true", help="short run: 400 training steps, 6 episodes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no_stream", action="store_true", help="leave out the TEDi-trained streaming policy")
    p.add_argument("--no_full_chain", action="store_true", help="leave out DDPM-100 and ParaDiGMS (the slow rows)")
    p.add_argument("--pretrained", action="store_true", help="evaluate the shipped defaults instead of training")
    ns = p.parse_args()
    if ns.quick:
        ns.max_steps, ns.eval_episodes = 400, 6
    return ns


def controllers(ns: argparse.Namespace, dp, bc) -> dict:
    """Every controller of the table, by row name (the TEDi-level policy is trained here)."""
    ctrls = {} if ns.no_full_chain else {"DDPM-100": ChunkController(dp, "ddpm", 100, seed=ns.seed)}
    ctrls["DDIM-10"] = ChunkController(dp, "ddim", 10, seed=ns.seed)
    for lst in ns.rti.split(";"):
        steps = [int(k) for k in lst.split(",")]
        ctrls[f"RTI-DP {steps}"] = RTIController(dp, rti_steps=steps, seed=ns.seed)
    if not ns.no_full_chain:
        ctrls[f"ParaDiGMS DDPM-100 (w{ns.window})"] = ChunkController(
            dp, "paradigms", 100, seed=ns.seed, window=ns.window, tolerance=ns.tolerance
        )
    ctrls["BC"] = ChunkController(bc, seed=ns.seed)
    if not ns.no_stream:
        tedi = train_policies(ns.env, ns.episodes, ns.max_steps, bc=False, seed=ns.seed, noise_levels="tedi")
        print(f"trained the TEDi-level policy in {tedi['seconds']['dp']:.0f} s")
        ctrls["TEDi-trained: stream (1 NFE/step)"] = StreamController(tedi["dp"], seed=ns.seed)
        ctrls["TEDi-trained: DDIM-10"] = ChunkController(tedi["dp"], "ddim", 10, seed=ns.seed)
    return ctrls


def print_warm_start_errors(dp, buffer) -> None:
    demo_err = demo_shift_error(dp, buffer, execute=1)
    model_err = rti_shift_error(dp, buffer, execute=1)
    print(
        f"RTI-DP warm-start error (normalised rms, one action executed per call): expert chunks {demo_err:.3f} "
        f"-> k = {suggest_rti_start(dp, demo_err)}; two policy samples {model_err:.3f} "
        f"-> k = {suggest_rti_start(dp, model_err)}"
    )


def print_ratios(rows: dict) -> None:
    """Success intervals and latency relative to the full chain (DDIM-10 without it)."""
    ref_name = "DDPM-100" if "DDPM-100" in rows else "DDIM-10"
    ref = rows[ref_name]["latency_ms"]
    ci_rows = []
    for name, s in rows.items():
        k = round(s["success_rate"] * s["episodes"])
        lo, hi = wilson_interval(k, int(s["episodes"]))
        ci_rows.append([name, f"{lo:.2f}-{hi:.2f}", s["latency_ms"] / ref])
    print()
    print(markdown_table(ci_rows, ["sampler", "success 95% CI", f"latency / {ref_name}"], ".3f", align="llr"))


def main() -> None:
    ns = parse_args()
    if ns.pretrained:
        return pretrained_table(ns.eval_episodes)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    run = train_policies(ns.env, ns.episodes, ns.max_steps, seed=ns.seed)
    dp, bc, data = run["dp"], run["bc"], run["data"]
    print(
        f"collected {data.buffer.n_episodes} {ns.env} demos, trained DP {run['seconds']['dp']:.0f} s, "
        f"BC {run['seconds']['bc']:.0f} s"
    )
    print_warm_start_errors(dp, data.buffer)
    env = MetaWorldEnv(ns.env, max_steps=ns.episode_steps)
    seeds = list(range(10_000, 10_000 + ns.eval_episodes))
    rows, results = {}, []
    for name, ctrl in controllers(ns, dp, bc).items():
        res = evaluate(ctrl, env, seeds, name=name)
        rows[name] = res.summary()
        results.append(res)
        s = rows[name]
        print(f"  {name}: success {s['success_rate']:.2f}, {s['latency_ms']:.2f} ms/step", flush=True)
    print(
        f"\n{ns.env}: {len(seeds)} episodes (seeds {seeds[0]}..{seeds[-1]}), limit {ns.episode_steps} steps, "
        f"{ns.max_steps} training steps, {torch.get_num_threads()} thread\n"
    )
    print(format_table(rows))
    print_ratios(rows)
    if ns.figure is not None:
        keep = [r for r in results if r.name in ("DDPM-100", "DDIM-10", f"RTI-DP {dp.rti_steps}", "BC")]
        fig = plot_rollouts(keep, ns.figure, title=f"{ns.env}: end-effector paths (top view), star = goal")
        print(f"\nfigure: {fig}")
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
