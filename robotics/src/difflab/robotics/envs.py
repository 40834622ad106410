"""Environments: Meta-World tasks (MuJoCo, state observations) behind one small adapter.

Every environment the package drives is a :class:`PolicyEnv`:

* ``reset(seed) -> obs``: a new episode whose randomness (goal and object positions) depends only
  on ``seed``; ``obs`` is a float64 vector of ``obs_dim``;
* ``step(action) -> (obs, reward, success, truncated)``: one control step with an action vector of
  ``action_dim`` in ``[-1, 1]``;
* ``end_effector(obs) -> (3,)``: the end-effector position (for the rollout figures);
* ``max_steps``: the episode length used for evaluation.

:class:`MetaWorldEnv` wraps a Meta-World v3 task in its goal-observable form (39-D observation:
hand xyz, gripper opening, two object poses, the previous frame's copy of those 18 numbers, goal
xyz; 4-D action: end-effector displacement xyz and gripper effort). Meta-World freezes the task
randomisation after construction and ignores ``reset(seed=...)``; the adapter unfreezes it and
seeds the environment's own generator, so that ``reset(seed)`` draws the goal and object placement
of that seed, the same every time. :class:`GymnasiumEnv` adapts any ``gymnasium`` environment with a
flat ``Box`` observation and action space and an ``info["success"]`` flag (or none: then success
is never reported) to the same interface.

:func:`expert_policy` returns the scripted expert that Meta-World ships for a task (used by
``difflab-robotics collect``).
"""

from __future__ import annotations

import warnings
from typing import Any, Protocol

import numpy as np

from difflab.core.errors import UserError

_INSTALL = "pip install 'metaworld>=3.1' (it brings mujoco and gymnasium)"


class PolicyEnv(Protocol):
    obs_dim: int
    action_dim: int
    max_steps: int
    name: str

    def reset(self, seed: int) -> np.ndarray: ...

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool]: ...

    def end_effector(self, obs: np.ndarray) -> np.ndarray: ...


class TaskError(UserError, ValueError):
    """An unknown task or an episode limit outside Meta-World's (one line naming the value)."""


def _metaworld():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import metaworld  # noqa: F401
            from metaworld.env_dict import ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE
            from metaworld.policies import ENV_POLICY_MAP
    except ImportError as err:  # pragma: no cover - depends on the installation
        raise ImportError(f"Meta-World is not installed: {_INSTALL}") from err
    return ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE, ENV_POLICY_MAP


def metaworld_tasks() -> list[str]:
    """Names of the Meta-World v3 tasks (``reach-v3``, ``push-v3``, ...)."""
    envs, _ = _metaworld()
    return sorted(k.removesuffix("-goal-observable") for k in envs)


class MetaWorldEnv:
    """A Meta-World v3 task with the goal in the observation and per-seed task randomisation.

    Args:
        name: task name such as ``reach-v3`` or ``push-v3``.
        max_steps: episode length for evaluation (Meta-World's own limit is 500).
    """

    def __init__(self, name: str, max_steps: int = 150) -> None:
        envs, _ = _metaworld()
        key = f"{name}-goal-observable"
        if key not in envs:
            raise TaskError(f"--env {name}: unknown Meta-World task; known tasks: {', '.join(metaworld_tasks())}")
        if not 1 <= max_steps <= 500:
            raise TaskError(f"--max_steps {max_steps}: must lie in [1, 500] (Meta-World's limit)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.env = envs[key](seed=0)
        self.env._freeze_rand_vec = False  # new goal / object placement on every reset(seed) ...
        self.env.seeded_rand_vec = True  # ... drawn from the env's own generator, not numpy's global one
        self.name = name
        self.max_steps = int(max_steps)
        self.obs_dim = int(self.env.observation_space.shape[0])
        self.action_dim = int(self.env.action_space.shape[0])
        self._low = self.env.action_space.low.astype(np.float64)
        self._high = self.env.action_space.high.astype(np.float64)

    def reset(self, seed: int) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.env.seed(int(seed))  # Meta-World ignores reset(seed=...)
            obs, _ = self.env.reset()
        return np.asarray(obs, dtype=np.float64)

    def clip(self, action: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(action, dtype=np.float64), self._low, self._high)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool]:
        action = self.clip(action)
        if action.shape != (self.action_dim,):
            raise ValueError(f"{self.name}: action must have shape ({self.action_dim},), got {action.shape}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obs, reward, _, truncated, info = self.env.step(action)
        return np.asarray(obs, dtype=np.float64), float(reward), bool(info.get("success", 0.0)), bool(truncated)

    def end_effector(self, obs: np.ndarray) -> np.ndarray:
        return np.asarray(obs[..., :3])

    def goal(self, obs: np.ndarray) -> np.ndarray:
        return np.asarray(obs[..., -3:])


class GymnasiumEnv:
    """Adapter for any gymnasium environment with flat ``Box`` observation and action spaces.

    Args:
        env: a ``gymnasium.Env`` (or an id for ``gymnasium.make``).
        max_steps: episode length for evaluation.
        end_effector_slice: which observation entries hold the end-effector position (for figures).
    """

    def __init__(self, env: Any, max_steps: int = 200, end_effector_slice: tuple[int, int] = (0, 3)) -> None:
        import gymnasium as gym

        self.env = gym.make(env) if isinstance(env, str) else env
        for field in ("observation_space", "action_space"):
            space = getattr(self.env, field)
            if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
                raise ValueError(f"GymnasiumEnv needs a flat Box {field}, got {space}")
        self.name = str(getattr(getattr(self.env, "spec", None), "id", type(self.env).__name__))
        self.max_steps = int(max_steps)
        self.obs_dim = int(self.env.observation_space.shape[0])
        self.action_dim = int(self.env.action_space.shape[0])
        self._ee = slice(*end_effector_slice)

    def reset(self, seed: int) -> np.ndarray:
        obs, _ = self.env.reset(seed=int(seed))
        return np.asarray(obs, dtype=np.float64)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool]:
        space = self.env.action_space
        action = np.clip(np.asarray(action, dtype=space.dtype), space.low, space.high)
        obs, reward, terminated, truncated, info = self.env.step(action)
        success = bool(info.get("success", info.get("is_success", False)))
        return np.asarray(obs, dtype=np.float64), float(reward), success, bool(truncated or terminated)

    def end_effector(self, obs: np.ndarray) -> np.ndarray:
        return np.asarray(obs[..., self._ee])


def make_env(name: str, max_steps: int = 150) -> PolicyEnv:
    """A Meta-World task (``reach-v3``, ``push-v3``, ...) or, for any other id, a gymnasium env."""
    if name.endswith("-v3") or name.endswith("-v2"):
        return MetaWorldEnv(name, max_steps=max_steps)
    return GymnasiumEnv(name, max_steps=max_steps)


def expert_policy(name: str):
    """The scripted expert Meta-World ships for task ``name``: ``policy.get_action(obs) -> (4,)``."""
    _, policies = _metaworld()
    if name not in policies:
        raise TaskError(f"--env {name}: Meta-World has no scripted expert policy for this task")
    return policies[name]()


__all__ = ["TaskError", "PolicyEnv", "MetaWorldEnv", "GymnasiumEnv", "make_env", "expert_policy", "metaworld_tasks"]
