r"""Training windows over episodes (diffusion_policy's sequence sampler) and min-max normalisation.

A window is ``horizon`` consecutive steps of one episode. Windows start at every index from
``-pad_before`` to ``L - horizon + pad_after`` of an episode of length ``L``; indices outside the
episode are *edge-padded* (the first / last step repeated), with ``pad_before = n_obs_steps - 1``
and ``pad_after = n_action_steps - 1`` as in the reference. So the first window of an episode holds
the first observation twice (the policy at ``t = 0`` sees ``[o_0, o_0]``) and the last windows
repeat the final action (stay at the goal).

Each item: ``{"obs": (n_obs_steps, obs_dim), "action": (horizon, action_dim)}`` float32; the
observations are the first ``n_obs_steps`` rows of the window, aligned with its first actions.

:class:`MinMaxNormalizer` maps each dimension's ``[min, max]`` to ``[-1, 1]``:
``x_n = scale x + offset`` with ``scale = 2 / (max - min)``, ``offset = -1 - scale min``; a dimension
whose range is below ``1e-4`` is only centred (``scale = 1``, ``offset = -(max + min)/2``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from difflab.robotics.data.replay_buffer import ReplayBuffer


def check_chunk_sizes(horizon: int, n_obs_steps: int, n_action_steps: int) -> None:
    """Raise ``ValueError`` unless ``1 <= n_obs_steps <= horizon`` and ``1 <= n_action_steps <=
    horizon - n_obs_steps + 1`` (the executed actions start at the last observed step)."""
    if not 1 <= n_obs_steps <= horizon:
        raise ValueError(f"n_obs_steps must lie in [1, horizon={horizon}], got {n_obs_steps}")
    if not 1 <= n_action_steps <= horizon - n_obs_steps + 1:
        raise ValueError(
            f"n_action_steps must lie in [1, horizon - n_obs_steps + 1 = {horizon - n_obs_steps + 1}], "
            f"got {n_action_steps}"
        )


def window_indices(episode_ends: np.ndarray, horizon: int, pad_before: int, pad_after: int) -> np.ndarray:
    """``(W, 3)`` rows ``(episode start, episode end, window start)`` of every window (start may be < 0)."""
    rows = []
    start = 0
    for end in np.asarray(episode_ends, dtype=np.int64):
        length = int(end) - start
        for w in range(-pad_before, length - horizon + pad_after + 1):
            rows.append((start, int(end), w))
        start = int(end)
    return np.asarray(rows, dtype=np.int64).reshape(-1, 3)


class SequenceWindows(Dataset):
    """Edge-padded windows over a :class:`ReplayBuffer` (optionally a subset of its episodes)."""

    def __init__(
        self,
        buffer: ReplayBuffer,
        *,
        horizon: int = 16,
        n_obs_steps: int = 2,
        n_action_steps: int = 8,
        episodes: list[int] | None = None,
    ) -> None:
        check_chunk_sizes(horizon, n_obs_steps, n_action_steps)
        self.horizon, self.n_obs_steps, self.n_action_steps = horizon, n_obs_steps, n_action_steps
        eps = list(range(buffer.n_episodes)) if episodes is None else list(episodes)
        obs, act, ends = [], [], []
        n = 0
        for e in eps:
            ep = buffer.episode(e)
            obs.append(ep["obs"])
            act.append(ep["action"])
            n += len(ep["obs"])
            ends.append(n)
        self.obs = np.concatenate(obs).astype(np.float32)
        self.action = np.concatenate(act).astype(np.float32)
        self.index = window_indices(np.asarray(ends), horizon, n_obs_steps - 1, n_action_steps - 1)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        start, end, w = (int(v) for v in self.index[i])
        rows = np.clip(np.arange(w, w + self.horizon) + start, start, end - 1)
        return {
            "obs": torch.from_numpy(self.obs[rows[: self.n_obs_steps]]),
            "action": torch.from_numpy(self.action[rows]),
        }


class MinMaxNormalizer:
    """Per-dimension ``[min, max] -> [-1, 1]``.

    Its statistics are plain tensors, not module buffers: weight averaging (EMA) must never average
    or swap them. A policy stores them in its checkpoint through :meth:`state_dict`.

    Args:
        dim: number of dimensions.
    """

    def __init__(self, dim: int) -> None:
        self.dim = int(dim)
        self.scale = torch.ones(dim, dtype=torch.float64)
        self.offset = torch.zeros(dim, dtype=torch.float64)
        self.wide = torch.zeros(dim, dtype=torch.bool)
        self.fitted = False

    @torch.no_grad()
    def fit(self, data: np.ndarray | Tensor, range_eps: float = 1e-4) -> MinMaxNormalizer:
        x = torch.as_tensor(np.asarray(data), dtype=torch.float64).reshape(-1, self.dim)
        lo, hi = x.min(0).values, x.max(0).values
        span = hi - lo
        wide = span >= range_eps
        self.wide = wide.clone()
        self.scale = torch.where(wide, 2.0 / span.clamp_min(range_eps), torch.ones_like(span))
        self.offset = torch.where(wide, -1.0 - self.scale * lo, -(hi + lo) / 2)
        self.fitted = True
        return self

    def normalize(self, x: Tensor) -> Tensor:
        return x * self.scale.to(x.device, x.dtype) + self.offset.to(x.device, x.dtype)

    def unnormalize(self, x: Tensor) -> Tensor:
        return (x - self.offset.to(x.device, x.dtype)) / self.scale.to(x.device, x.dtype)

    def wide_dims(self) -> Tensor:
        """Dimensions that were actually scaled (range >= 1e-4), as a boolean mask."""
        return self.wide.clone()

    def state_dict(self) -> dict:
        return {
            "scale": self.scale.clone(),
            "offset": self.offset.clone(),
            "wide": self.wide.clone(),
            "fitted": bool(self.fitted),
        }

    def load_state_dict(self, state: dict) -> None:
        scale = torch.as_tensor(state["scale"], dtype=torch.float64)
        if scale.shape != (self.dim,):
            raise ValueError(f"normaliser statistics have {scale.numel()} dimensions, the model expects {self.dim}")
        self.scale, self.offset = scale, torch.as_tensor(state["offset"], dtype=torch.float64)
        self.wide = torch.as_tensor(state["wide"], dtype=torch.bool)
        self.fitted = bool(state["fitted"])


__all__ = ["window_indices", "SequenceWindows", "MinMaxNormalizer"]
