"""``difflab-robotics demo``: collect expert demos, train briefly, compare samplers in rollouts.

Steps (a few minutes on a 2-core CPU): collect ``--episodes`` reach-v3 demonstrations from
Meta-World's scripted expert, train a small Diffusion Policy (EMA weights) and the BC baseline
for ``--max_steps`` steps each, then roll out on the fixed evaluation seeds ``10000, 10001, ...``
with full DDPM sampling (100 steps), DDIM-10, RTI-DP and BC. Prints the metric table and writes a
figure of the end-effector paths (top view, success in green) and the table as markdown.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from difflab.core.progress import artifact


def train_policies(
    env: str = "reach-v3",
    episodes: int = 50,
    max_steps: int = 600,
    *,
    down_dims: tuple[int, ...] = (32, 64, 128),
    batch_size: int = 64,
    lr: float = 1e-3,
    ema_decay: float = 0.99,
    rti_steps: list[int] | None = None,
    bc: bool = True,
    seed: int = 0,
    noise_levels: str = "shared",
    network_wrapper: Callable[[nn.Module], nn.Module] | None = None,
) -> dict[str, Any]:
    """Collect demos and train a small diffusion policy (and the BC baseline) with ``train_briefly``.

    ``noise_levels`` (``shared``, ``per_token``, ``tedi``) is the diffusion policy's training mode; the
    per-token modes build the U-Net with ``per_token_time=True`` (for ``--sampler stream``).
    ``network_wrapper``: applied to the U-Net before training (e.g. core's ``NoiseUnconditional``).

    Returns ``{"data": DemoDataModule, "dp": DiffusionPolicy, "bc": BCPolicy | None,
    "seconds": {"collect", "dp", "bc"}}``.
    """
    from difflab.core.lightning.train import train_briefly
    from difflab.robotics.data import DemoDataModule
    from difflab.robotics.models import BCPolicy, DiffusionPolicy
    from difflab.robotics.networks import ChunkMLP, ConditionalUnet1D

    t0 = time.perf_counter()
    data = DemoDataModule(env=env, episodes=episodes, batch_size=batch_size, val_episodes=0, seed=seed)
    data.setup("fit")
    seconds = {"collect": time.perf_counter() - t0}
    buf = data.buffer
    cond_dim = data.n_obs_steps * buf.obs_dim
    opt = partial(torch.optim.AdamW, lr=lr, betas=(0.95, 0.999), weight_decay=1e-6)
    torch.manual_seed(seed)
    per_token = noise_levels != "shared"
    net = ConditionalUnet1D(buf.action_dim, cond_dim, down_dims=down_dims, step_embed_dim=32, per_token_time=per_token)
    if network_wrapper is not None:
        net = network_wrapper(net)
    dp = DiffusionPolicy(
        net,
        obs_dim=buf.obs_dim,
        action_dim=buf.action_dim,
        optimizer=opt,
        rti_steps=rti_steps or [3, 2, 1],
        discrete_action_dims=[3] if buf.action_dim == 4 else [],
        noise_levels=noise_levels,  # type: ignore[arg-type]
    )
    seconds["dp"] = train_briefly(dp, data, max_steps=max_steps, seed=seed, ema_decay=ema_decay)
    model_bc = None
    if bc:
        torch.manual_seed(seed)
        model_bc = BCPolicy(
            ChunkMLP(cond_dim, data.horizon, buf.action_dim),
            obs_dim=buf.obs_dim,
            action_dim=buf.action_dim,
            optimizer=opt,
        )
        seconds["bc"] = train_briefly(model_bc, data, max_steps=max_steps, seed=seed, ema_decay=ema_decay)
    return {"data": data, "dp": dp.eval(), "bc": None if model_bc is None else model_bc.eval(), "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    from difflab.core.verbs import VerbParser, count, seed_option
    from difflab.robotics.envs import MetaWorldEnv
    from difflab.robotics.figures import plot_rollouts
    from difflab.robotics.metrics import format_table
    from difflab.robotics.policy import ChunkController, RTIController, demo_shift_error, evaluate, suggest_rti_start

    p = VerbParser(prog="difflab-robotics demo", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("outputs/demo/robotics"), help="output folder")
    p.add_argument("--env", default="reach-v3", help="Meta-World v3 task (reach-v3, push-v3, ...)")
    p.add_argument("--episodes", type=count(1), default=50, help="expert demonstrations")
    p.add_argument("--max_steps", type=count(1), default=800, help="training steps of each policy")
    p.add_argument("--eval_episodes", type=count(1), default=10, help="evaluation episodes per sampler")
    p.add_argument("--episode_steps", type=count(1), default=100, help="step limit of an evaluation episode")
    seed_option(p, "the demonstrations, the training and the rollouts")
    ns = p.parse_args(argv)
    torch.set_num_threads(1)  # batch-1 inference and a small network: one thread is fastest on a shared CPU

    run = train_policies(ns.env, ns.episodes, ns.max_steps, seed=ns.seed)
    dp, bc, data = run["dp"], run["bc"], run["data"]
    sec = run["seconds"]
    print(
        f"{ns.env}: {data.buffer.n_episodes} expert episodes ({int(data.buffer.lengths().sum())} steps) "
        f"collected in {sec['collect']:.0f} s; diffusion policy trained {ns.max_steps} steps in {sec['dp']:.0f} s, "
        f"BC in {sec['bc']:.0f} s"
    )
    err = demo_shift_error(dp, data.buffer, execute=dp.rti_execute)
    print(
        f"RTI-DP warm-start error on the demonstrations: rms {err:.3f} (normalised) -> smallest step with "
        f"noise level >= error: k = {suggest_rti_start(dp, err)}; using rti_steps {dp.rti_steps}"
    )
    env = MetaWorldEnv(ns.env, max_steps=ns.episode_steps)
    seeds = list(range(10_000, 10_000 + ns.eval_episodes))
    controllers = {
        "DDPM-100": ChunkController(dp, "ddpm", 100, seed=ns.seed),
        "DDIM-10": ChunkController(dp, "ddim", 10, seed=ns.seed),
        f"RTI-DP {dp.rti_steps}": RTIController(dp, seed=ns.seed),
        "BC": ChunkController(bc, seed=ns.seed),
    }
    results, rows = [], {}
    for name, ctrl in controllers.items():
        res = evaluate(ctrl, env, seeds, name=name)
        results.append(res)
        rows[name] = res.summary()
    table = format_table(rows)
    print(
        f"\n{ns.env}, {len(seeds)} evaluation episodes (seeds {seeds[0]}..{seeds[-1]}), "
        f"limit {ns.episode_steps} steps\n"
    )
    print(table)
    ns.out.mkdir(parents=True, exist_ok=True)
    table_path = ns.out / "table.md"
    table_path.write_text(table + "\n")
    fig = plot_rollouts(results, ns.out / "rollouts.png", title=f"{ns.env}: end-effector paths (top view); star = goal")
    artifact(
        fig, f"end-effector paths of {len(seeds)} {ns.env} rollouts per sampler (top view), success green, failure red"
    )
    artifact(table_path, "success rate, return, latency and NFE per control step for each sampler")
    return 0


__all__ = ["train_policies", "main"]
