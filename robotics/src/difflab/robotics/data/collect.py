"""Demonstrations from Meta-World's scripted expert policies (``difflab-robotics collect``).

Episode ``e`` resets the task with seed ``seed + e`` (recorded in ``meta/episode_seeds``), then
runs the expert; with ``action_noise > 0`` Gaussian noise of that std (from a generator seeded by
the episode seed) is added to the executed action for diversity, and the *executed* (noisy,
clipped) action is recorded, so the data are exactly what the robot did. An episode stops
``extra_steps`` steps after the first success (so the policy also learns to stay at the goal) or
after ``max_steps``; episodes the expert does not finish are kept only with ``keep_failures``.
"""

from __future__ import annotations

import re
import warnings

import numpy as np

from difflab.core.errors import UserError
from difflab.core.progress import progress
from difflab.robotics.data.replay_buffer import ReplayBuffer
from difflab.robotics.envs import MetaWorldEnv, expert_policy

HARMLESS_WARNINGS = (r"Constant\(s\) may be too high",)
"""Messages of Meta-World's scripted experts repeated at nearly every step (the environment clips the
action anyway): shown once per run instead of thousands of times."""


class ShowOnce:
    """Calls a function and passes on its warnings, those matching ``patterns`` only the first time.

    (``warnings``' own ``"once"`` action does not hold here: the environment adapter enters
    ``warnings.catch_warnings`` at every step, which resets the registry that action relies on.)
    """

    def __init__(self, patterns: tuple[str, ...] = HARMLESS_WARNINGS) -> None:
        self.patterns = [re.compile(p) for p in patterns]
        self.seen: set[str] = set()

    def __call__(self, fn, *args):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = fn(*args)
        for w in caught:
            text = str(w.message)
            if any(p.match(text) for p in self.patterns):
                if text in self.seen:
                    continue
                self.seen.add(text)
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return result


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
    once = ShowOnce()
    for _ in progress(range(episodes), f"collect {env_name}", unit="episodes"):
        while True:
            if attempts >= 3 * episodes + 10:
                raise UserError(
                    f"--action_noise {action_noise}: the {env_name} expert succeeded in only {len(out)} of "
                    f"{attempts} episodes; lower the noise"
                )
            attempts += 1
            episode = expert_episode(env, policy, s, action_noise, extra_steps, keep_failures, once)
            s += 1
            if episode is not None:
                out.append(episode)
                seeds.append(s - 1)
                break
    return ReplayBuffer.from_episodes(
        out,
        meta={"episode_seeds": np.asarray(seeds, np.int64)},
        attrs={"env": env_name, "action_noise": float(action_noise), "seed": int(seed), "attempts": attempts},
        source=f"collect({env_name})",
    )


def expert_episode(
    env: MetaWorldEnv,
    policy,
    seed: int,
    action_noise: float,
    extra_steps: int,
    keep_failures: bool,
    call=lambda fn, *args: fn(*args),
) -> dict[str, np.ndarray] | None:
    """One episode of the expert from reset seed ``seed``; ``None`` if it failed (and failures are dropped)."""
    rng = np.random.default_rng(seed)
    obs = env.reset(seed)
    rows: dict[str, list] = {"obs": [], "action": [], "reward": [], "success": []}
    first = None
    for k in range(env.max_steps):
        a = np.asarray(call(policy.get_action, obs), dtype=np.float64)
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
    if first is None and not keep_failures:
        return None
    return {
        "obs": np.asarray(rows["obs"], np.float32),
        "action": np.asarray(rows["action"], np.float32),
        "reward": np.asarray(rows["reward"], np.float32),
        "success": np.asarray(rows["success"], bool),
    }


__all__ = ["HARMLESS_WARNINGS", "ShowOnce", "collect_demos", "expert_episode"]
