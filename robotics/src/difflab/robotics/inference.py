"""Loading a trained policy and the domain verb ``eval`` (rollouts over a fixed seed list).

Checkpoints are read by core's one loader (:func:`difflab.core.lightning.load_checkpoint`, with
``weights_only=True``); the command line in :mod:`difflab.robotics.cli` only parses arguments.
"""

from __future__ import annotations

from pathlib import Path

import torch

from difflab.core.progress import artifact
from difflab.core.samplers.select import SAMPLER_NAMES

EVAL_SAMPLERS = (*SAMPLER_NAMES, "rti", "stream")
"""Samplers ``eval`` accepts: every core sampler by name, ``rti`` (RTI-DP warm starts) and ``stream`` (
the rolling buffer of a policy trained with per-token noise levels, 1 NFE per control step)."""

DEFAULT_TASK = "reach-v3"
"""The task ``eval`` rolls out on when it gets neither ``--ckpt`` nor ``--env``."""


def default_name(task: str, method: str = "diffusion_policy") -> str:
    """File stem of the shipped default of ``task`` (``reach-v3`` -> ``diffusion_policy_reach``)."""
    stem, _, version = task.rpartition("-v")
    return f"{method}_{stem if stem and version.isdigit() else task}"


def policy_checkpoint(ckpt: str | Path | None, env: str | None) -> Path:
    """The checkpoint file of ``ckpt`` (a run folder: its newest ``last.ckpt``), or without one the shipped
    pretrained policy of ``env`` (``reach-v3`` when not given);
    a :class:`~difflab.core.lightning.checkpoint.CheckpointError` when that task ships none."""
    from difflab.core.lightning.checkpoint import checkpoint_file
    from difflab.core.lightning.pretrained import checkpoint_or_default, pretrained_info
    from difflab.core.progress import note

    path = checkpoint_file(checkpoint_or_default(ckpt, "robotics", default_name(env or DEFAULT_TASK)))
    if ckpt is None or str(ckpt) == "":
        info = pretrained_info(path)
        note(f"--ckpt not given: using the shipped pretrained policy {path.name} ({info.get('data', '')})")
    return path


def sampler_settings(path: str | Path, sampler: list[str] | None, steps: int | None, rti_steps: list[int] | None):
    """``(samplers, steps_of, rti_steps)``: what the user gave, and for what they left out the sampling
    recorded with a pretrained checkpoint (``ddim`` when it records none). ``steps_of(name)`` is ``steps``
    or, for the recorded sampler only, its recorded step count."""
    from difflab.core.lightning.pretrained import recommended_sampling

    rec = recommended_sampling(path)
    samplers = list(sampler) if sampler else [rec.get("sampler", "ddim")]
    if rti_steps is None and rec.get("rti_steps"):
        rti_steps = [int(k) for k in rec["rti_steps"]]

    def steps_of(name: str) -> int | None:
        if steps is not None or name != rec.get("sampler") or rec.get("steps") is None:
            return steps
        return int(rec["steps"])

    return samplers, steps_of, rti_steps


def load_policy(path: str | Path):
    """``(model, datamodule hyperparameters)``: a :class:`DiffusionPolicy` or :class:`BCPolicy` from a
    checkpoint written by ``fit`` (or its run folder); ``model.task`` is the task it was trained on."""
    from difflab.core.lightning import load_checkpoint, read_checkpoint
    from difflab.core.lightning.checkpoint import checkpoint_file
    from difflab.robotics.models import BCPolicy, DiffusionPolicy

    path = checkpoint_file(path)
    model = load_checkpoint(path, (DiffusionPolicy, BCPolicy))
    data_hp = dict(read_checkpoint(path).get("datamodule_hyper_parameters") or {})
    if "init_args" in data_hp:
        data_hp = dict(data_hp["init_args"])
    if not model.task:  # a checkpoint written before the task was recorded
        model.task = data_hp.get("env")
    return model, data_hp


def evaluation_task(model, env: str | None, allow_other_env: bool = False) -> str:
    """The task to evaluate on: the checkpoint's training task, or ``env`` when it agrees (or when
    ``allow_other_env``); a :class:`UserError` naming both when they differ."""
    from difflab.core.errors import UserError
    from difflab.core.progress import note

    trained = model.task
    if env is None or trained is None or env == trained:
        return env or trained or "reach-v3"
    if not allow_other_env:
        raise UserError(
            f"--env {env}: the checkpoint was trained on {trained}; leave --env out, or pass "
            "--allow_other_env to evaluate it on another task"
        )
    note(f"warning: evaluating a policy trained on {trained} on another task, {env} (--allow_other_env)")
    return env


def make_controller(
    model, sampler: str, steps: int | None = None, rti_steps: list[int] | None = None, seed: int = 0, **opts
):
    """The controller for ``sampler`` (``rti`` -> RTI-DP, ``stream`` -> the streaming buffer; a BC model
    ignores the sampler)."""
    from difflab.robotics.models import BCPolicy
    from difflab.robotics.policy import ChunkController, RTIController, StreamController

    if isinstance(model, BCPolicy):
        return ChunkController(model, seed=seed)
    if sampler == "stream":
        return StreamController(model, seed=seed)
    if sampler == "rti":
        return RTIController(model, rti_steps=rti_steps, seed=seed)
    if sampler in ("ddpm", "paradigms"):
        return ChunkController(model, sampler, steps or model.num_train_steps, seed=seed, **opts)
    return ChunkController(model, sampler, steps or model.sample_steps, seed=seed, **opts)


def evaluate_checkpoint(
    ckpt: str | Path | None,
    *,
    env: str | None = None,
    episodes: int = 50,
    sampler: list[str] | tuple[str, ...] | None = None,
    steps: int | None = None,
    rti_steps: list[int] | None = None,
    window: int = 20,
    tolerance: float = 0.1,
    max_steps: int = 150,
    seed0: int = 10_000,
    seed: int = 0,
    out: Path | None = None,
    allow_other_env: bool = False,
) -> int:
    """Roll out the policy of ``ckpt`` on ``env`` (default: its training task) for the seeds
    ``seed0 ..``; prints success, return, latency and NFE per sampler, and draws the rollouts in ``out``.

    Without ``ckpt`` the shipped pretrained policy of ``env`` is used (:func:`policy_checkpoint`); without
    ``sampler`` / ``steps`` / ``rti_steps`` the ones recorded with a pretrained checkpoint (else DDIM-10)."""
    from difflab.robotics.envs import make_env
    from difflab.robotics.figures import plot_rollouts
    from difflab.robotics.metrics import format_table
    from difflab.robotics.models import BCPolicy
    from difflab.robotics.policy import evaluate

    torch.set_num_threads(1)  # one sample per call: extra threads only add synchronisation
    ckpt = policy_checkpoint(ckpt, env)
    sampler, steps_of, rti_steps = sampler_settings(ckpt, sampler, steps, rti_steps)
    model, data_hp = load_policy(ckpt)
    world = make_env(evaluation_task(model, env, allow_other_env), max_steps=max_steps)
    model.check_dims(torch.zeros(world.obs_dim), torch.zeros(world.action_dim), where=f"environment {world.name}")
    seeds = list(range(seed0, seed0 + episodes))
    rows, results = {}, []
    for name in ["bc"] if isinstance(model, BCPolicy) else sampler:
        opts = {"window": window, "tolerance": tolerance} if name == "paradigms" else {}
        ctrl = make_controller(model, name, steps_of(name), rti_steps, seed, **opts)
        res = evaluate(ctrl, world, seeds, name=name)
        rows[name] = res.summary()
        results.append(res)
    print(f"{world.name}: {episodes} episodes, seeds {seeds[0]}..{seeds[-1]}, limit {max_steps} steps")
    print(format_table(rows))
    if out is not None:
        fig = plot_rollouts(results, out / "rollouts.png", title=f"{world.name} rollouts (top view)")
        artifact(fig, f"end-effector paths of {episodes} {world.name} rollouts per sampler, success in green")
    return 0


__all__ = [
    "DEFAULT_TASK",
    "EVAL_SAMPLERS",
    "default_name",
    "evaluate_checkpoint",
    "load_policy",
    "make_controller",
    "policy_checkpoint",
    "sampler_settings",
]
