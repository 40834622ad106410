"""Demonstrations from Meta-World's scripted expert policies (``difflab-robotics collect``).

Episode ``e`` resets the task with seed ``seed + e`` (recorded in ``meta/episode_seeds``), then
runs the expert; with ``action_noise > 0`` Gaussian noise of that std (from a generator seeded by
the episode seed) is added to the executed action for diversity, and the *executed* (noisy,
clipped) action is recorded, so the data are exactly what the robot did. An episode stops
``extra_steps`` steps after the first success (so the policy also learns to stay at the goal) or
after ``max_steps``; episodes the expert does not finish are kept only with ``keep_failures``.
"""

from __future__ import annotations

import numpy as np

from difflab.robotics.data.replay_buffer import ReplayBuffer
from difflab.robotics.envs import MetaWorldEnv, expert_policy


def collect_demos(
    env_name: str,
    episodes: int,
    *,
    seed: int = 0,
    action_noise: float = 0.0,
    max_steps: int = 200,
    extra_steps: int = 10,
    keep_failures: bool = False,
) -> ReplayBuffer:
    """Roll out the scripted expert of ``env_name`` for ``episodes`` successful episodes.

    Returns:
        a :class:`ReplayBuffer` with ``data/{obs,action,reward,success}``, ``meta/episode_ends``,
        ``meta/episode_seeds`` and attributes ``env``, ``action_noise``, ``seed``, ``attempts``.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if action_noise < 0:
        raise ValueError(f"action_noise must be >= 0, got {action_noise}")
    env = MetaWorldEnv(env_name, max_steps=min(500, max_steps))
    policy = expert_policy(env_name)
    out, seeds = [], []
    s = seed
    attempts = 0
    while len(out) < episodes:
        if attempts >= 3 * episodes + 10:
            raise RuntimeError(
                f"{env_name}: the expert succeeded in only {len(out)} of {attempts} episodes "
                f"(action_noise={action_noise}); lower the noise or pass keep_failures"
            )
        attempts += 1
        rng = np.random.default_rng(s)
        obs = env.reset(s)
        rows: dict[str, list] = {"obs": [], "action": [], "reward": [], "success": []}
        first = None
        for k in range(env.max_steps):
            a = np.asarray(policy.get_action(obs), dtype=np.float64)
            if action_noise > 0:
                a = a + action_noise * rng.standard_normal(a.shape)
            a = env.clip(a)
            rows["obs"].append(obs)
            rows["action"].append(a)
            obs, r, success, _ = env.step(a)
            rows["reward"].append(r)
            rows["success"].append(success)
            if success and first is None:
                first = k
            if first is not None and k >= first + extra_steps:
                break
        if first is not None or keep_failures:
            out.append(
                {
                    "obs": np.asarray(rows["obs"], np.float32),
                    "action": np.asarray(rows["action"], np.float32),
                    "reward": np.asarray(rows["reward"], np.float32),
                    "success": np.asarray(rows["success"], bool),
                }
            )
            seeds.append(s)
        s += 1
    return ReplayBuffer.from_episodes(
        out,
        meta={"episode_seeds": np.asarray(seeds, np.int64)},
        attrs={"env": env_name, "action_noise": float(action_noise), "seed": int(seed), "attempts": attempts},
        source=f"collect({env_name})",
    )


__all__ = ["collect_demos"]
