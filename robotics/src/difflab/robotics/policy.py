r"""Running a trained policy in an environment: receding horizon, RTI-DP, ParaDiGMS, evaluation.

Receding horizon (Diffusion Policy). The controller keeps the last ``To`` observations (the first
observation repeated at the start of an episode). When its action queue is empty it predicts a
chunk of ``Tp`` actions whose index 0 is aligned with observation step ``t - (To - 1)``, and queues
``actions[To - 1 : To - 1 + Ta]``. :class:`ChunkController` does this with any core sampler
(``ddpm`` with 100 steps is the full chain, ``ddim`` with 10 steps the usual fast variant,
``paradigms`` the full DDPM chain by parallel Picard iteration) or with the BC baseline.

RTI-DP (Duan et al. 2025, "Real-Time Iteration Scheme for Diffusion Policy"). :class:`RTIController`
samples the first chunk of an episode with the full chain. Every later call executes only
``execute`` actions (1 in the paper), then starts from the previous normalised chunk *shifted* by
those ``execute`` steps (its last action repeated at the tail) as the state at chain step
``k_0 = rti_steps[0]``, without re-noising, and runs the DDPM steps ``k_0 -> k_1 -> ... -> 0``
(``len(rti_steps)`` NFE per call). Discrete actions (the gripper), the paper's "clip" handling:
the executed discrete action is binarised to the demonstrations' two extreme values, and the stored
guess's discrete dimensions are set to ``+-1 / factor`` (normalised) so that a few small denoising
steps can still flip them.

Choosing the initial step (:func:`suggest_rti_start`). The shifted guess differs from the chunk the
full sampler would produce now by ``delta``; used as the state ``x_k = a_k a_0 + s_k eps`` at step
``k`` it is consistent with the chain only if that difference is no larger than the noise the
network expects there, ``s_k = sqrt(1 - abar_k)`` per element, and the denoiser is contractive on
errors of that size (the paper's contractivity condition). We measure ``rms(delta)`` on
demonstration states (two full samples ``execute`` steps apart) and take the smallest ``k`` with
``s_k >= rms(delta)``.

Streaming (TEDi Policy, Høeg & Tingelstad 2024; Diffusion Forcing). :class:`StreamController` keeps
a buffer of the ``L = Tp - To + 1`` future actions at increasing noise levels across the control
steps of an episode (core's :mod:`difflab.core.samplers.stream`). The first call of an episode
fills it (``ladder``: ``n - 1`` NFE); every call then denoises the whole buffer by one step under
the current observation (1 NFE), executes the ``m = stream_chunk`` actions that became clean and
appends fresh noise, so with ``m = 1`` the policy replans at every step for one network evaluation.
The executed discrete (gripper) action is binarised as in RTI-DP.

:func:`evaluate` rolls a controller out over a fixed list of seeds and reports success rate, mean
return, latency per control step (ms; the controller's wall time averaged over every environment
step), the mean latency of the steps that ran the network (ms per inference call) and NFE per
control step (plus ParaDiGMS's sequential rounds).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from difflab.robotics.envs import PolicyEnv


class ChunkController:
    """Receding-horizon execution of a chunk policy.

    Args:
        model: a :class:`~difflab.robotics.models.DiffusionPolicy` or
            :class:`~difflab.robotics.models.BCPolicy`.
        sampler: core sampler name (ignored by BC).
        steps: sampler steps (100 with ``ddpm`` / ``paradigms`` is the full chain).
        n_action_steps: actions executed per chunk (the model's ``Ta`` by default).
        seed: seed of the sampling noise (re-seeded at every :meth:`reset` with ``seed + episode seed``).
        **options: sampler options (``window``, ``tolerance`` for ParaDiGMS, ``eta`` for DDIM ...).
    """

    def __init__(
        self,
        model: Any,
        sampler: str = "ddim",
        steps: int = 10,
        n_action_steps: int | None = None,
        seed: int = 0,
        **options: Any,
    ) -> None:
        self.model = model.eval()
        self.sampler, self.steps, self.options = sampler, steps, options
        self.n_action_steps = int(n_action_steps or model.n_action_steps)
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self.history: deque = deque(maxlen=model.n_obs_steps)
        self.queue: deque = deque()
        self.nfe = 0
        self.rounds = 0
        self.calls = 0

    def reset(self, seed: int = 0) -> None:
        self.generator.manual_seed(self.seed * 1_000_003 + seed)
        self.history.clear()
        self.queue.clear()

    def _obs_window(self, obs: np.ndarray) -> Tensor:
        obs = np.asarray(obs, dtype=np.float32)
        self.model.check_dims(obs, where="environment observation")
        if not self.history:
            self.history.extend([obs] * self.history.maxlen)
        else:
            self.history.append(obs)
        return torch.from_numpy(np.stack(self.history))[None]

    def _account(self, result) -> None:
        self.nfe += int(result.nfe)
        self.rounds += int(result.info.get("rounds", result.nfe))
        self.calls += 1

    def _chunk(self, window: Tensor) -> Tensor:
        result = self.model.sample_chunk(
            window, sampler=self.sampler, steps=self.steps, generator=self.generator, **self.options
        )
        self._account(result)
        return result.sample

    def _enqueue(self, nchunk: Tensor, count: int) -> None:
        actions = self.model.action_normalizer.unnormalize(nchunk)[0].numpy()
        start = self.model.n_obs_steps - 1
        self.queue.extend(actions[start : start + count])

    def act(self, obs: np.ndarray) -> np.ndarray:
        window = self._obs_window(obs)
        if not self.queue:
            self._enqueue(self._chunk(window), self.n_action_steps)
        return self.queue.popleft()


class ExpertController:
    """Meta-World's scripted expert of ``task`` as a controller (``reset`` / ``act``): the demonstrator,
    the upper reference of a policy learned from its demonstrations. No network, so ``nfe`` stays 0."""

    def __init__(self, task: str) -> None:
        from difflab.robotics.data.collect import ShowOnce
        from difflab.robotics.envs import expert_policy

        self.policy = expert_policy(task)
        self.once = ShowOnce()
        self.nfe = 0

    def reset(self, seed: int = 0) -> None:
        pass

    def act(self, obs: np.ndarray) -> np.ndarray:
        return np.asarray(self.once(self.policy.get_action, obs), dtype=np.float64)


class StillController:
    """The controller that does nothing: a zero action at every step, the lower reference a learned
    policy must clear (on ``reach`` it shows how often the goal is met without moving). ``nfe`` is 0."""

    def __init__(self, action_dim: int = 4) -> None:
        self.action_dim = int(action_dim)
        self.nfe = 0

    def reset(self, seed: int = 0) -> None:
        pass

    def act(self, obs: np.ndarray) -> np.ndarray:
        return np.zeros(self.action_dim)


class RTIController(ChunkController):
    """RTI-DP: full chain on the first call, then a few DDPM steps from the shifted previous chunk.

    Args:
        model: a :class:`~difflab.robotics.models.DiffusionPolicy`.
        rti_steps: decreasing chain steps to run from the warm start (model's ``rti_steps`` by default).
        execute: actions executed per call (model's ``rti_execute``, 1 in the paper).
        initial_sampler, initial_steps: the first call of an episode (full DDPM chain).
        discrete_action_dims, discrete_factor: discrete (gripper) handling (model's by default).
        seed: sampling-noise seed.
    """

    def __init__(
        self,
        model: Any,
        rti_steps: list[int] | None = None,
        execute: int | None = None,
        initial_sampler: str = "ddpm",
        initial_steps: int = 100,
        discrete_action_dims: list[int] | None = None,
        discrete_factor: float | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(model, sampler=initial_sampler, steps=initial_steps, seed=seed)
        self.rti_steps = [int(k) for k in (rti_steps or model.rti_steps)]
        self.execute = int(execute or model.rti_execute)
        T = model.num_train_steps
        if any(not 1 <= k <= T for k in self.rti_steps) or sorted(self.rti_steps, reverse=True) != self.rti_steps:
            raise ValueError(f"rti_steps must be decreasing steps in [1, {T}], got {self.rti_steps}")
        self.grid = torch.tensor([*self.rti_steps, 0], dtype=torch.float64) / T
        dims = model.discrete_action_dims if discrete_action_dims is None else discrete_action_dims
        wide = model.action_normalizer.wide_dims()
        self.discrete = [d for d in dims if bool(wide[d])]  # a constant dimension is not a switch
        self.factor = float(discrete_factor or model.discrete_factor)
        self.guess: Tensor | None = None

    def reset(self, seed: int = 0) -> None:
        super().reset(seed)
        self.guess = None

    def _chunk(self, window: Tensor) -> Tensor:
        if self.guess is None:
            return super()._chunk(window)
        e = self.execute
        x = torch.cat([self.guess[:, e:], self.guess[:, -1:].expand(-1, e, -1)], dim=1)
        result = self.model.sample_chunk(window, sampler="ddpm", grid=self.grid, x_init=x, generator=self.generator)
        self._account(result)
        return result.sample

    def act(self, obs: np.ndarray) -> np.ndarray:
        window = self._obs_window(obs)
        if not self.queue:
            nchunk = self._chunk(window)
            self.guess = nchunk.clone()
            if self.discrete:
                d = self.discrete
                self.guess[..., d] = torch.where(self.guess[..., d] > 0, 1.0, -1.0) / self.factor
                nchunk = nchunk.clone()
                nchunk[..., d] = torch.where(nchunk[..., d] > 0, 1.0, -1.0)
            self._enqueue(nchunk, self.execute)
        return self.queue.popleft()


class StreamController(ChunkController):
    """Streaming denoising: one step of the rolling action buffer per control step (1 NFE).

    Args:
        model: a :class:`~difflab.robotics.models.DiffusionPolicy` trained with per-token noise levels.
        seed: sampling-noise seed (re-seeded at every :meth:`reset`).
    """

    def __init__(self, model: Any, seed: int = 0) -> None:
        super().__init__(model, sampler="stream", steps=1, n_action_steps=model.stream_chunk, seed=seed)
        model._require_stream()
        wide = model.action_normalizer.wide_dims()
        self.discrete = [d for d in model.discrete_action_dims if bool(wide[d])]
        self.state = None
        self.start_nfe = 0

    def reset(self, seed: int = 0) -> None:
        super().reset(seed)
        self.state = None

    def act(self, obs: np.ndarray) -> np.ndarray:
        window = self._obs_window(obs)
        if not self.queue:
            nfe = 0
            if self.state is None:
                self.state, nfe = self.model.stream_start(window, generator=self.generator)
                self.start_nfe += nfe
            out = self.model.stream_step(window, self.state, generator=self.generator)
            self.state = out.state
            self.nfe += nfe + out.nfe
            self.rounds += nfe + out.nfe
            self.calls += 1
            nchunk = out.emitted
            if self.discrete:
                nchunk = nchunk.clone()
                nchunk[..., self.discrete] = torch.where(nchunk[..., self.discrete] > 0, 1.0, -1.0)
            self.queue.extend(self.model.action_normalizer.unnormalize(nchunk)[0].numpy())
        return self.queue.popleft()


@dataclass
class EvalResult:
    """Rollouts of one controller over a seed list."""

    name: str
    success: list[bool] = field(default_factory=list)
    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    paths: list[np.ndarray] = field(default_factory=list)
    goals: list[np.ndarray] = field(default_factory=list)
    seconds: float = 0.0
    nfe: int = 0
    rounds: int = 0
    calls: int = 0
    call_seconds: float = 0.0
    max_call_ms: float = 0.0

    @property
    def steps(self) -> int:
        return int(sum(self.lengths))

    def summary(self) -> dict[str, float]:
        n = max(self.steps, 1)
        return {
            "success_rate": float(np.mean(self.success)) if self.success else 0.0,
            "mean_return": float(np.mean(self.returns)) if self.returns else 0.0,
            "latency_ms": 1000.0 * self.seconds / n,
            "max_call_ms": self.max_call_ms,
            "ms_per_call": 1000.0 * self.call_seconds / max(self.calls, 1),
            "nfe_per_step": self.nfe / n,
            "rounds_per_step": self.rounds / n,
            "episodes": len(self.success),
        }


def evaluate(
    controller: Any,
    env: PolicyEnv,
    seeds: list[int],
    *,
    name: str = "policy",
    max_steps: int | None = None,
    keep_paths: bool = True,
) -> EvalResult:
    """Roll ``controller`` out once per seed (episodes end at success or after ``max_steps``)."""
    from difflab.core.progress import progress

    out = EvalResult(name)
    limit = int(max_steps or env.max_steps)
    for seed in progress(seeds, f"{name} on {getattr(env, 'name', 'env')}", unit="episodes"):
        obs = env.reset(int(seed))
        controller.reset(int(seed))
        path = [env.end_effector(obs)]
        total, success, k = 0.0, False, 0
        calls0 = getattr(controller, "calls", 0)
        nfe0, rounds0 = getattr(controller, "nfe", 0), getattr(controller, "rounds", 0)
        for step in range(1, limit + 1):
            k = step
            t0 = time.perf_counter()
            action = controller.act(obs)
            dt = time.perf_counter() - t0
            out.seconds += dt
            if getattr(controller, "calls", 0) > calls0:  # this step ran the network (a new chunk)
                out.calls += 1
                out.call_seconds += dt
                calls0 = controller.calls
            out.max_call_ms = max(out.max_call_ms, 1000.0 * dt)
            obs, reward, success, truncated = env.step(action)
            total += reward
            path.append(env.end_effector(obs))
            if success or truncated:
                break
        out.nfe += getattr(controller, "nfe", 0) - nfe0
        out.rounds += getattr(controller, "rounds", 0) - rounds0
        out.success.append(bool(success))
        out.returns.append(total)
        out.lengths.append(k)
        if keep_paths:
            out.paths.append(np.asarray(path))
            goal = getattr(env, "goal", None)
            out.goals.append(np.asarray(goal(obs)) if goal is not None else np.full(3, np.nan))
    return out


@torch.no_grad()
def rti_shift_error(
    model: Any, buffer: Any, *, execute: int = 1, n_states: int = 64, steps: int = 10, seed: int = 0
) -> float:
    """RMS (normalised units, continuous action dimensions) of the warm-start error of RTI-DP.

    For ``n_states`` demonstration states ``t``, draws a chunk at ``t`` and at ``t + execute`` with
    DDIM-``steps`` and compares the second with the first shifted by ``execute`` (tail repeated).
    """
    rng = np.random.default_rng(seed)
    To = model.n_obs_steps
    w0, w1 = [], []
    for _ in range(n_states):
        e = int(rng.integers(buffer.n_episodes))
        obs = buffer.episode(e)["obs"]
        t = int(rng.integers(0, max(1, len(obs) - execute)))
        last = len(obs) - 1
        w0.append(obs[np.clip(np.arange(t - To + 1, t + 1), 0, last)])
        t1 = min(t + execute, last)
        w1.append(obs[np.clip(np.arange(t1 - To + 1, t1 + 1), 0, last)])
    g = torch.Generator().manual_seed(seed)
    c0 = model.sample_chunk(torch.from_numpy(np.stack(w0)), sampler="ddim", steps=steps, generator=g).sample
    c1 = model.sample_chunk(torch.from_numpy(np.stack(w1)), sampler="ddim", steps=steps, generator=g).sample
    shifted = torch.cat([c0[:, execute:], c0[:, -1:].expand(-1, execute, -1)], dim=1)
    keep = [
        d
        for d in range(model.action_dim)
        if d not in model.discrete_action_dims and bool(model.action_normalizer.wide_dims()[d])
    ]
    return float((c1 - shifted)[..., keep].pow(2).mean().sqrt())


def suggest_rti_start(model: Any, error_rms: float) -> int:
    """Smallest chain step ``k`` whose noise level ``s_k = sqrt(1 - abar_k)`` is at least ``error_rms``."""
    T = model.num_train_steps
    s = (1 - model.process.alphas_cumprod[1:]).sqrt()  # s_k for k = 1..T
    ok = (s >= error_rms).nonzero()
    return int(ok[0]) + 1 if len(ok) else T


def demo_shift_error(model: Any, buffer: Any, *, execute: int = 1) -> float:
    """RMS (normalised, continuous dimensions) of ``chunk(t + execute) - shift(chunk(t))`` on the demonstrations.

    The expert's own chunks at consecutive calls: the part of the warm-start error that no sampler
    noise causes (the new tail, and the change of plan between the two calls).
    """
    Tp = model.horizon
    norm = model.action_normalizer
    keep = [d for d in range(model.action_dim) if d not in model.discrete_action_dims and bool(norm.wide_dims()[d])]
    errs = []
    for e in range(buffer.n_episodes):
        act = norm.normalize(torch.from_numpy(buffer.episode(e)["action"]).double()).numpy()
        n = len(act)
        for t in range(n):
            c0 = act[np.clip(np.arange(t, t + Tp), 0, n - 1)]
            c1 = act[np.clip(np.arange(t + execute, t + execute + Tp), 0, n - 1)]
            shifted = np.concatenate([c0[execute:], np.repeat(c0[-1:], execute, 0)])
            errs.append(((c1 - shifted)[:, keep] ** 2).mean())
    return float(np.sqrt(np.mean(errs)))


__all__ = [
    "ChunkController",
    "ExpertController",
    "StillController",
    "RTIController",
    "StreamController",
    "EvalResult",
    "evaluate",
    "rti_shift_error",
    "demo_shift_error",
    "suggest_rti_start",
]
