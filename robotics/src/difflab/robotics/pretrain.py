"""The shipped defaults of difflab-robotics: one Diffusion Policy per Meta-World task (``python
scripts/pretrain.py robotics``), used by ``difflab-robotics eval`` when it gets no ``--ckpt``.

The environment decides the observation and action (Meta-World's 39-D / 4-D for every task) and the
policy records the task it was trained on, which ``eval`` rolls out on; the package has no task
conditioning, so each task gets its own policy: ``diffusion_policy_<task>.ckpt`` (``reach``, ``push``).
The behaviour-cloning baseline trained on the same data for the same steps ships beside it as
``bc_<task>.ckpt`` (small), so the comparison can be rerun without training.

Recipe per task (seeded): ``difflab-robotics fit`` of the shipped config ``diffusion_policy_reach``
(and ``bc_reach``) pointed at the task, so a shipped default is an ordinary ``fit`` checkpoint:
``episodes`` successful expert demonstrations from reset seeds ``0, 1, ...`` (the package's offline
default data, collected in memory), windows ``Tp = 16, To = 2, Ta = 8``, a U-Net of widths
(32, 64, 128) (1.2 M parameters, 2.4 MB in float16), batch 64, AdamW 1e-3 with cosine decay to 5e-5,
gradient clipping 1, EMA of the weights (decay 0.995), ``steps`` optimiser steps; the BC MLP
(0.87 M) with the same data, optimiser, schedule and steps. Evaluation on held-out reset seeds
``10000 ..`` (never used by a demonstration; at most ``EPISODE_STEPS`` steps, an episode ends at
success): the scripted expert, BC,
DDIM-10 and RTI-DP [3, 2, 1] of the diffusion policy; success rate, mean return, ms per control step
and NFE per control step. The sampler with the highest success (ties: lower ms per control step) is
recorded as the default ``sampling``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from difflab.robotics.inference import default_name

RECIPES: dict[str, dict[str, int]] = {
    "reach-v3": {"episodes": 100, "steps": 3000},
    "push-v3": {"episodes": 100, "steps": 3000},
}
"""Tasks with a shipped default and their demonstrations / optimiser steps."""

EVAL_SEED0 = 10_000
EVAL_EPISODES = 40
EPISODE_STEPS = 150  # eval's default limit


def evaluate_controllers(run: dict[str, Any], task: str, episodes: int = EVAL_EPISODES) -> dict[str, dict]:
    """Held-out rollouts (seeds ``EVAL_SEED0 ..``) of the expert, BC, DDIM-10 and RTI-DP: name -> summary."""
    from difflab.robotics.envs import MetaWorldEnv
    from difflab.robotics.policy import ChunkController, ExpertController, RTIController, evaluate

    env = MetaWorldEnv(task, max_steps=EPISODE_STEPS)
    seeds = list(range(EVAL_SEED0, EVAL_SEED0 + episodes))
    ctrls = {
        "scripted expert": ExpertController(task),
        "BC": ChunkController(run["bc"]),
        "DDIM-10": ChunkController(run["dp"], "ddim", 10),
        "RTI-DP [3, 2, 1]": RTIController(run["dp"], rti_steps=[3, 2, 1]),
    }
    rows = {}
    for name, ctrl in ctrls.items():
        rows[name] = evaluate(ctrl, env, seeds, name=f"{task} {name}", keep_paths=False).summary()
        s = rows[name]
        print(f"  {task} {name}: success {s['success_rate']:.2f}, {s['latency_ms']:.2f} ms/step", flush=True)
    return rows


def best_sampling(rows: dict[str, dict]) -> dict[str, Any]:
    """The diffusion policy's sampler with the highest success (ties: fewer ms per control step)."""
    options = {"DDIM-10": {"sampler": "ddim", "steps": 10}, "RTI-DP [3, 2, 1]": {"sampler": "rti", "steps": None}}
    best = max(options, key=lambda n: (rows[n]["success_rate"], -rows[n]["latency_ms"]))
    out = dict(options[best])
    if out["sampler"] == "rti":
        out["rti_steps"] = [3, 2, 1]
    return out


def fit_config(task: str, method: str, steps: int, episodes: int, seed: int, root: Path) -> dict[str, Any]:
    """The shipped config ``<method>_reach`` made the recipe's: task, demos, steps, a small U-Net (32, 64, 128),
    batch 64, cosine decay of the learning rate, no validation, progress lines, outputs under ``root``."""
    import yaml

    from difflab.core.cli import config_dir

    cfg = yaml.safe_load((config_dir("robotics") / f"{method}_reach.yaml").read_text())
    cfg["seed_everything"] = seed
    tr = cfg["trainer"]
    tr.update(max_steps=steps, default_root_dir=str(root), limit_val_batches=0, num_sanity_val_steps=0)
    tr.update(enable_progress_bar=True, enable_model_summary=False, logger=False)
    tr["callbacks"][0]["init_args"]["decay"] = 0.995  # EMA
    tr["callbacks"][1]["init_args"]["every_n_train_steps"] = steps
    tr["callbacks"].append({"class_path": "difflab.core.lightning.LineProgressBar", "init_args": {"every": 5.0}})
    model = cfg["model"]["init_args"]
    if method == "diffusion_policy":
        model["network"]["init_args"].update(down_dims=[32, 64, 128], step_embed_dim=32)
    model["lr_scheduler"] = {
        "class_path": "torch.optim.lr_scheduler.CosineAnnealingLR",
        "init_args": {"T_max": steps, "eta_min": 5e-5},
    }
    cfg["data"]["init_args"].update(env=task, episodes=episodes, val_episodes=0, batch_size=64, seed=seed)
    return cfg


def train_task(task: str, method: str, root: Path, *, seed: int, minutes: float | None) -> Path:
    """``difflab-robotics fit`` of :func:`fit_config` into ``root``; returns its ``last.ckpt``."""
    import yaml

    from difflab.core.lightning.checkpoint import checkpoint_file
    from difflab.robotics.cli import main

    recipe = RECIPES[task]
    cfg = fit_config(task, method, recipe["steps"], recipe["episodes"], seed, root)
    if minutes is not None:
        cfg["trainer"]["max_time"] = {"seconds": int(60 * minutes)}
    path = root / "pretrain.yaml"
    root.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg))
    if main(["fit", "--config", str(path)]) != 0:
        raise RuntimeError(f"pretraining {method} on {task} failed")
    return checkpoint_file(root)


def pretrain_task(task: str, out_dir: Path, *, seed: int = 0, minutes: float | None = None) -> list[Path]:
    """Train, evaluate and write ``diffusion_policy_<task>.ckpt`` and ``bc_<task>.ckpt`` into ``out_dir``."""
    from difflab.core.lightning.checkpoint import read_checkpoint
    from difflab.core.lightning.pretrained import write_pretrained
    from difflab.robotics.data import DemoDataModule
    from difflab.robotics.inference import load_policy
    from difflab.robotics.metrics import format_table

    with tempfile.TemporaryDirectory() as tmp:
        run, full, minutes_used = {}, {}, {}
        for key, method in (("dp", "diffusion_policy"), ("bc", "bc")):
            t0 = time.perf_counter()
            full[key] = train_task(task, method, Path(tmp) / key, seed=seed, minutes=minutes)
            minutes_used[key] = round((time.perf_counter() - t0) / 60, 2)
            run[key] = load_policy(full[key])[0]
        rows = evaluate_controllers(run, task)
        print(f"\n{task}: {EVAL_EPISODES} held-out episodes (seeds {EVAL_SEED0}..), limit {EPISODE_STEPS} steps")
        print(format_table(rows), flush=True)
        buf = DemoDataModule(env=task, episodes=RECIPES[task]["episodes"]).load_buffer()
        common = {
            "seed": seed,
            "task": task,
            "data": (
                f"{buf.n_episodes} scripted-expert demonstrations of {task} (reset seeds 0.., "
                f"{int(buf.lengths().sum())} steps), collected offline"
            ),
            "evaluation": {
                "episodes": EVAL_EPISODES,
                "seeds": f"{EVAL_SEED0}..{EVAL_SEED0 + EVAL_EPISODES - 1}",
                "episode_steps": EPISODE_STEPS,
                "rows": {n: {k: round(float(v), 4) for k, v in s.items()} for n, s in rows.items()},
            },
        }
        written = []
        for key, method in (("dp", "diffusion_policy"), ("bc", "bc")):
            meta = {
                **common,
                "command": f"python scripts/pretrain.py robotics --seed {seed}",
                "steps": int(read_checkpoint(full[key])["global_step"]),
                "wall_minutes": minutes_used[key],
            }
            if key == "dp":
                meta["sampling"] = best_sampling(rows)
            out = Path(out_dir) / f"{default_name(task, method)}.ckpt"
            written.append(write_pretrained(full[key], run[key], out, meta=meta))
    return written


def pretrain(out_dir: Path, *, seed: int = 0, minutes: float | None = None) -> list[Path]:
    """Every task of :data:`RECIPES` in turn; ``minutes`` caps the training time of each policy."""
    torch.set_num_threads(1)
    written = []
    for task in RECIPES:
        written += pretrain_task(task, Path(out_dir), seed=seed, minutes=minutes)
    return written


__all__ = ["RECIPES", "best_sampling", "default_name", "evaluate_controllers", "pretrain"]
