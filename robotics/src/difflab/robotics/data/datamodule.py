"""``DemoDataModule``: windows of expert demonstrations for training a policy.

The demonstrations come from a zarr replay buffer (``path``) or, when no path is given, are collected
in memory from the Meta-World expert of ``env`` (``episodes`` successful episodes from seeds
``collect_seed, collect_seed + 1, ...``; reach-v3 takes about 1.5 ms per step). The last
``val_episodes`` episodes are held out for validation. Batches::

    obs     (B, n_obs_steps, obs_dim)  float32  raw observations
    action  (B, horizon, action_dim)    float32  raw actions

(The policy normalises them with min-max statistics it takes from :meth:`DemoDataModule.stats` when fitting
starts and stores in its checkpoint.)
"""

from __future__ import annotations

import warnings

from difflab.core.errors import UserError
from difflab.core.lightning.data import SplitDataModule
from difflab.robotics.data.replay_buffer import ReplayBuffer
from difflab.robotics.data.windows import SequenceWindows


class DemoDataModule(SplitDataModule):
    """Args:
    path: a zarr replay buffer; ``None`` collects from the expert of ``env``.
    obs_keys: the ``data/`` fields of the buffer that make the observation, concatenated in order
        (``key`` or ``key[a:b]`` for columns ``a:b``; Push-T's low-dimensional observation is
        ``[keypoint, "state[0:2]"]``).
    action_key: the ``data/`` field of the action.
    env: Meta-World task to collect from when ``path`` is None. A replay buffer that records its
        task (``collect`` writes it) decides the task itself (:attr:`task`): a different ``env`` is
        then ignored with a warning.
    episodes: number of episodes to collect when ``path`` is None.
    action_noise: std of the Gaussian noise added to the expert's actions while collecting.
    collect_seed: seed of the first collected episode.
    horizon, n_obs_steps, n_action_steps: the window (prediction horizon Tp, To, Ta).
    val_episodes: episodes held out for validation.
    batch_size: training batch size.
    seed: seed of the training order.
    num_workers: loader workers.
    """

    def __init__(
        self,
        path: str | None = None,
        obs_keys: list[str] | None = None,
        action_key: str = "action",
        env: str = "reach-v3",
        episodes: int = 50,
        action_noise: float = 0.0,
        collect_seed: int = 0,
        horizon: int = 16,
        n_obs_steps: int = 2,
        n_action_steps: int = 8,
        val_episodes: int = 2,
        batch_size: int = 256,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.path, self.env_name, self.episodes = path, env, episodes
        self.obs_keys, self.action_key = list(obs_keys or ["obs"]), action_key
        self.action_noise, self.collect_seed = action_noise, collect_seed
        self.horizon, self.n_obs_steps, self.n_action_steps = horizon, n_obs_steps, n_action_steps
        self.val_episodes = val_episodes
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers
        self.buffer: ReplayBuffer | None = None

    def load_buffer(self) -> ReplayBuffer:
        if self.buffer is None:
            if self.path:
                self.buffer = ReplayBuffer.load(self.path, self.obs_keys, self.action_key)
                recorded = self.buffer.task
                if recorded is None:
                    warnings.warn(
                        f"{self.path}: the replay buffer records no task (attribute 'env'); taking "
                        f"--data.init_args.env {self.env_name}",
                        stacklevel=2,
                    )
                elif recorded != self.env_name:
                    warnings.warn(
                        f"{self.path}: the demonstrations were collected on {recorded}; --data.init_args.env "
                        f"{self.env_name} is ignored and the policy is trained (and evaluated) for {recorded}",
                        stacklevel=2,
                    )
            else:
                from difflab.robotics.data.collect import collect_demos

                self.buffer = collect_demos(
                    self.env_name, self.episodes, seed=self.collect_seed, action_noise=self.action_noise
                )
            n = self.buffer.n_episodes
            if not 0 <= self.val_episodes < n:
                raise UserError(
                    f"--data.init_args.val_episodes {self.val_episodes}: must lie in [0, {n - 1}] for the "
                    f"{n} episodes of {self.path or self.env_name}"
                )
        return self.buffer

    @property
    def task(self) -> str:
        """The task of the demonstrations: the one a replay buffer records, else ``env``."""
        if self.path:
            return self.load_buffer().task or self.env_name
        return self.env_name

    @property
    def obs_dim(self) -> int:
        return self.load_buffer().obs_dim

    @property
    def action_dim(self) -> int:
        return self.load_buffer().action_dim

    @property
    def global_cond_dim(self) -> int:
        """Numbers a policy conditions on: ``n_obs_steps * obs_dim``."""
        return self.n_obs_steps * self.obs_dim

    @property
    def train_episodes(self) -> list[int]:
        n = self.load_buffer().n_episodes
        return list(range(n - self.val_episodes))

    def stats(self) -> dict:
        """Raw training observations and actions ``{"obs": (N, Do), "action": (N, Da)}`` for the normaliser."""
        buf = self.load_buffer()
        end = int(buf.episode_ends[len(self.train_episodes) - 1])
        return {"obs": buf.obs[:end], "action": buf.action[:end]}

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        buf = self.load_buffer()
        kw = dict(horizon=self.horizon, n_obs_steps=self.n_obs_steps, n_action_steps=self.n_action_steps)
        n = buf.n_episodes
        self.train_set = SequenceWindows(buf, episodes=self.train_episodes, **kw)
        val = list(range(n - self.val_episodes, n)) or self.train_episodes[-1:]
        self.val_set = SequenceWindows(buf, episodes=val, **kw)


__all__ = ["DemoDataModule"]
