"""Demonstrations in diffusion_policy's zarr replay-buffer layout.

On disk (a zarr group, directory store ``*.zarr``)::

    data/obs           (N, obs_dim)     float32   observations of all episodes, concatenated
    data/action        (N, action_dim)  float32   the action taken at each observation
    meta/episode_ends  (E,)             int64     cumulative end index of every episode

Episode ``e`` occupies rows ``episode_ends[e-1] : episode_ends[e]`` (``0`` for the first). Optional
extras written by ``difflab-robotics collect``: ``meta/episode_seeds`` (E,) (the reset seed of each
episode), ``data/reward`` (N,), ``data/success`` (N,), and group attributes (``env``, ``action_noise``).
Files are written as zarr format 2, which the reference implementation reads; both formats are read.

:class:`ReplayBuffer` is the in-memory form. :meth:`ReplayBuffer.validate` rejects what would
silently corrupt training, naming the episode and field: ``data/obs`` and ``data/action`` of
different lengths, episode ends that are not increasing or do not end at the data length, empty
episodes, NaN or infinite values.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from difflab.core.errors import UserError


class DemoDataError(UserError, ValueError):
    """Bad demonstration data (the message names the file, episode and field); the command line
    prints it in one line."""


@dataclass
class ReplayBuffer:
    """Episodes of observations and actions (the replay-buffer layout, in memory).

    Attributes:
        obs: ``(N, obs_dim)``.
        action: ``(N, action_dim)``.
        episode_ends: ``(E,)`` cumulative ends.
        extras: optional ``data/<key>`` arrays of length ``N`` (reward, success).
        meta: optional ``meta/<key>`` arrays of length ``E`` (episode_seeds).
        attrs: group attributes (env name, action noise, ...).
        source: where it came from (used in error messages).
    """

    obs: np.ndarray
    action: np.ndarray
    episode_ends: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, np.ndarray] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)
    source: str = "<memory>"

    @property
    def n_episodes(self) -> int:
        return int(len(self.episode_ends))

    @property
    def obs_dim(self) -> int:
        return int(self.obs.shape[1])

    @property
    def action_dim(self) -> int:
        return int(self.action.shape[1])

    @property
    def task(self) -> str | None:
        """The task the demonstrations were collected on (the ``env`` attribute), if recorded."""
        env = self.attrs.get("env")
        return str(env) if env else None

    def episode_slice(self, e: int) -> slice:
        start = 0 if e == 0 else int(self.episode_ends[e - 1])
        return slice(start, int(self.episode_ends[e]))

    def episode(self, e: int) -> dict[str, np.ndarray]:
        s = self.episode_slice(e)
        return {"obs": self.obs[s], "action": self.action[s]}

    def lengths(self) -> np.ndarray:
        return np.diff(np.concatenate([[0], self.episode_ends]))

    @classmethod
    def from_episodes(cls, episodes: list[dict[str, np.ndarray]], **kw: Any) -> ReplayBuffer:
        """Concatenate episodes ``{"obs": (L, Do), "action": (L, Da), [reward, success]: (L,)}``."""
        for e, ep in enumerate(episodes):
            if len(ep["obs"]) != len(ep["action"]):
                raise DemoDataError(
                    f"episode {e}: field 'obs' has {len(ep['obs'])} steps but 'action' has {len(ep['action'])}"
                )
        if not episodes:
            raise DemoDataError("no episodes given")
        ends = np.cumsum([len(ep["obs"]) for ep in episodes]).astype(np.int64)
        extras = {k: np.concatenate([ep[k] for ep in episodes]) for k in episodes[0] if k not in ("obs", "action")}
        buf = cls(
            obs=np.concatenate([ep["obs"] for ep in episodes]).astype(np.float32),
            action=np.concatenate([ep["action"] for ep in episodes]).astype(np.float32),
            episode_ends=ends,
            extras=extras,
            **kw,
        )
        buf.validate()
        return buf

    def validate(self) -> None:
        """Raise :class:`DemoDataError` naming the file, episode and field of the first problem."""
        src = self.source
        for name, arr in (("data/obs", self.obs), ("data/action", self.action)):
            if arr.ndim != 2:
                raise DemoDataError(f"{src}: field '{name}' must be 2-D (steps, dim), got shape {arr.shape}")
        if len(self.obs) != len(self.action):
            raise DemoDataError(
                f"{src}: field 'data/obs' has {len(self.obs)} steps but 'data/action' has {len(self.action)}"
            )
        ends = np.asarray(self.episode_ends)
        if ends.ndim != 1 or len(ends) == 0:
            raise DemoDataError(f"{src}: field 'meta/episode_ends' must be a non-empty 1-D array, got {ends.shape}")
        lengths = np.diff(np.concatenate([[0], ends]))
        if (lengths <= 0).any():
            e = int(np.argmax(lengths <= 0))
            raise DemoDataError(
                f"{src}: episode {e} is empty or 'meta/episode_ends' decreases there "
                f"(episode_ends[{e}] = {int(ends[e])} after {0 if e == 0 else int(ends[e - 1])})"
            )
        if int(ends[-1]) != len(self.obs):
            raise DemoDataError(
                f"{src}: 'meta/episode_ends' ends at {int(ends[-1])} but 'data/obs' and 'data/action' have "
                f"{len(self.obs)} steps (episode {len(ends) - 1} has a mismatched length)"
            )
        for name, arr in (("data/obs", self.obs), ("data/action", self.action)):
            bad = ~np.isfinite(arr).all(axis=1)
            if bad.any():
                row = int(np.argmax(bad))
                e = int(np.searchsorted(ends, row, side="right"))
                s = self.episode_slice(e)
                col = int(np.argmax(~np.isfinite(arr[row])))
                raise DemoDataError(
                    f"{src}: episode {e}, field '{name}': non-finite value {arr[row, col]} at step "
                    f"{row - s.start} (dimension {col})"
                )
        for name, arr in self.extras.items():
            if len(arr) != len(self.obs):
                raise DemoDataError(f"{src}: field 'data/{name}' has {len(arr)} steps, 'data/obs' {len(self.obs)}")
        for name, arr in self.meta.items():
            if len(arr) != len(ends):
                raise DemoDataError(f"{src}: field 'meta/{name}' has {len(arr)} entries for {len(ends)} episodes")

    # ------------------------------------------------------------------ zarr I/O
    def save(self, path: str | Path) -> Path:
        """Write the buffer as a zarr group (format 2) at ``path``."""
        import zarr

        self.validate()
        path = Path(path)
        root = zarr.open_group(str(path), mode="w", zarr_format=2)
        data, meta = root.create_group("data"), root.create_group("meta")
        arrays = {"obs": self.obs, "action": self.action, **self.extras}
        for key, arr in arrays.items():
            chunks = (min(len(arr), 10000),) + tuple(arr.shape[1:])
            a = data.create_array(key, shape=arr.shape, dtype=arr.dtype, chunks=chunks)
            a[...] = arr
        for key, arr in {"episode_ends": np.asarray(self.episode_ends, dtype=np.int64), **self.meta}.items():
            a = meta.create_array(key, shape=arr.shape, dtype=arr.dtype, chunks=arr.shape)
            a[...] = arr
        root.attrs.update({k: v for k, v in self.attrs.items()})
        return path

    @classmethod
    def load(cls, path: str | Path, obs_keys: Sequence[str] = ("obs",), action_key: str = "action") -> ReplayBuffer:
        """Read a zarr replay buffer; raises :class:`DemoDataError` for a missing field or bad data.

        The observation is ``data/<key>`` of each of ``obs_keys``, trailing dimensions flattened and
        concatenated in order; ``"key[a:b]"`` takes columns ``a:b`` of the flattened field. Push-T's
        low-dimensional observation (9 keypoints and the agent's xy) is ``("keypoint", "state[0:2]")``.
        Other 1- and 2-D ``data/`` fields are kept as extras (images are not read)."""
        import zarr

        path = Path(path)
        if not path.exists():
            raise DemoDataError(f"{path}: no replay buffer there (write one with 'difflab-robotics collect')")
        root = zarr.open_group(str(path), mode="r")
        fields = sorted(root["data"].array_keys()) if "data" in root else []
        specs = [_column_spec(spec) for spec in obs_keys]
        if not specs:
            raise DemoDataError(f"{path}: no observation field given (--data.init_args.obs_keys is empty)")
        hints = {
            "obs": "--data.init_args.obs_keys names the observation fields, e.g. [keypoint, 'state[0:2]']",
            "action": "--data.init_args.action_key names the action",
        }
        for key, role in [*((k, "obs") for k, _ in specs), (action_key, "action")]:
            if key not in fields:
                raise DemoDataError(
                    f"{path}: missing field 'data/{key}' (its fields: {', '.join(fields) or 'none'}); {hints[role]}"
                )
        if "meta/episode_ends" not in root:
            raise DemoDataError(f"{path}: missing field 'meta/episode_ends' (the cumulative end of each episode)")
        columns = [_columns(root["data"][key], key, cols, path) for key, cols in specs]
        action = np.asarray(root["data"][action_key][...])
        used = {key for key, _ in specs} | {action_key}
        arrays = {k: root["data"][k] for k in fields if k not in used}
        buf = cls(
            obs=np.concatenate(columns, axis=1).astype(np.float32),
            action=(action[:, None] if action.ndim == 1 else action).astype(np.float32),
            episode_ends=np.asarray(root["meta/episode_ends"][...]).astype(np.int64),
            extras={k: np.asarray(a[...]) for k, a in arrays.items() if a.ndim <= 2},
            meta={k: np.asarray(root["meta"][k][...]) for k in root["meta"].array_keys() if k != "episode_ends"},
            attrs=dict(root.attrs),
            source=str(path),
        )
        buf.validate()
        return buf


_COLUMNS = re.compile(r"^(?P<key>[^\[\]]+)(\[(?P<a>-?\d*):(?P<b>-?\d*)\])?$")


def _column_spec(spec: str) -> tuple[str, slice | None]:
    """``"key"`` -> ``("key", None)``; ``"key[a:b]"`` -> ``("key", slice(a, b))``."""
    m = _COLUMNS.match(spec)
    if m is None:
        raise DemoDataError(f"--data.init_args.obs_keys: {spec!r} is not 'key' or 'key[a:b]'")
    if m["a"] is None:
        return m["key"], None
    return m["key"], slice(int(m["a"]) if m["a"] else None, int(m["b"]) if m["b"] else None)


def _columns(array, key: str, cols: slice | None, path: Path) -> np.ndarray:
    """A field as ``(N, D)``: trailing dimensions flattened, then the columns ``cols``."""
    arr = np.asarray(array[...])
    flat = arr.reshape(len(arr), -1)
    if cols is None:
        return flat
    flat = flat[:, cols]
    if flat.shape[1] == 0:
        raise DemoDataError(
            f"{path}: {key}[{cols.start}:{cols.stop}] selects no column of 'data/{key}' ({arr.shape[1:]} per step)"
        )
    return flat


__all__ = ["ReplayBuffer", "DemoDataError"]
