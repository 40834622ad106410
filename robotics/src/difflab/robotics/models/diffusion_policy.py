r"""Diffusion Policy (Chi et al. 2023): DDPM over action chunks, conditioned on the last observations.

Training. Windows ``{"obs": (B, To, Do), "action": (B, Tp, Da)}`` are min-max normalised to
``[-1, 1]`` (statistics of the training demonstrations, kept in the checkpoint). The action chunk
is noised by the discrete DDPM chain of ``T`` steps (``T = 100``, squared-cosine betas; core's
:class:`~difflab.core.processes.DiscreteVP`, step ``k`` at ``t = k / T``), at an integer step
``k ~ U{1..T}``:

.. math:: x_k = \sqrt{\bar\alpha_k}\, a_{0} + \sqrt{1 - \bar\alpha_k}\,\varepsilon, \qquad
          L = \lVert \varepsilon_\theta(x_k, k, o_{t-T_o+1:t}) - \varepsilon \rVert^2 ,

with the flattened observations as a global FiLM condition of the
:class:`~difflab.robotics.networks.ConditionalUnet1D`.

Sampling goes through core's samplers (``ddpm``, ``ddim``, ``dpm_solver``, ``paradigms`` ...) with
the clean estimate clipped to ``[-1, 1]`` (``clip_x0``). The chain's own grids follow its training
steps (``DiscreteVP.default_grid``): ``steps`` integer steps spread uniformly ("trailing") over
``T..0``, so DDPM with 100 steps is the full chain and DDIM-10 visits ``k = 100, 90, ..., 10, 0``.
Receding-horizon execution, RTI-DP and the evaluation loop are in :mod:`difflab.robotics.policy`.

Per-token noise levels (``noise_levels``; Diffusion Forcing, Chen et al. 2024; TEDi Policy, Høeg &
Tingelstad 2024). The chunk's first ``To - 1`` positions are the past (already executed) actions;
the ``L = Tp - To + 1`` others are the future, the streaming buffer. With ``shared`` (default, the
reference) one ``k`` noises the whole chunk. Otherwise every future action ``l`` has its own level
``k_l`` (the network gets ``t`` of shape ``(B, Tp)``), and the past positions are given to the
network as ``x = 0`` at ``t = 1`` (no information) and left out of the loss:

* ``per_token`` (Diffusion Forcing): ``k_l ~ U{1..T}`` independently;
* ``tedi`` (TEDi Policy's mix): per example, with probability ``tedi_constant`` (0.2) one level
  ``k ~ U{1..T}`` for all future actions, otherwise the buffer's ladder shifted by a random
  offset, ``k_l = floor(T (c_l + 1) / n) - j`` with ``c_l = floor(l / m)`` the rung of action ``l``
  (``m = stream_chunk`` actions per rung, ``n = L / m`` rungs) and ``j ~ U{0..floor(T/n) - 1}``
  (the paper's "chunk-wise" scheme: 0.8 chunk-wise, 0.2 constant). The paper draws the regime
  once per batch; here it is drawn per example (the same mixture, less variance per batch).

Streaming (:meth:`DiffusionPolicy.stream_start`, :meth:`DiffusionPolicy.stream_step`): core's
:mod:`difflab.core.samplers.stream` over the ``L`` future actions on TEDi's ladder
(:func:`~difflab.core.samplers.stream.chain_ladder_grid`, ``n`` rungs); one network evaluation per
call emits ``m`` clean actions. The controller is :class:`difflab.robotics.policy.StreamController`.

EMA: add Lightning's ``EMAWeightAveraging`` callback (the shipped configs do); the checkpoint then
holds the averaged weights, which evaluation uses.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from difflab.core.errors import UserError
from difflab.core.lightning.base import eval_mode
from difflab.core.lightning.module import DiffusionModule
from difflab.core.processes import DiscreteVP
from difflab.core.samplers.base import Denoiser, SampleResult
from difflab.core.samplers.select import SamplerName
from difflab.core.samplers.stream import StreamInit, StreamOutput, StreamState, chain_ladder_grid
from difflab.core.samplers.stream import stream_start as core_stream_start
from difflab.core.samplers.stream import stream_step as core_stream_step
from difflab.robotics.data.windows import MinMaxNormalizer, check_chunk_sizes


class PolicyDataError(UserError, ValueError):
    """Data, environment or checkpoint that do not fit the policy (one line naming both values)."""


class PolicyIOMixin:
    """Normalisers, horizons and input checks shared by the diffusion policy and the BC baseline."""

    obs_dim: int
    action_dim: int
    horizon: int
    n_obs_steps: int
    n_action_steps: int
    task: str | None = None
    """The task of the training demonstrations (from the data module; kept in the checkpoint)."""

    def _init_io(self, obs_dim: int, action_dim: int, horizon: int, n_obs_steps: int, n_action_steps: int) -> None:
        check_chunk_sizes(horizon, n_obs_steps, n_action_steps)
        self.obs_dim, self.action_dim = int(obs_dim), int(action_dim)
        self.horizon, self.n_obs_steps, self.n_action_steps = int(horizon), int(n_obs_steps), int(n_action_steps)
        self.obs_normalizer = MinMaxNormalizer(obs_dim)
        self.action_normalizer = MinMaxNormalizer(action_dim)

    def fit_normalizers(self, obs: np.ndarray, action: np.ndarray) -> None:
        """Min-max statistics from raw training data ``obs (N, Do)``, ``action (N, Da)``."""
        self.check_dims(obs, action, where="training data")
        self.obs_normalizer.fit(obs)
        self.action_normalizer.fit(action)

    def _setup_normalizers(self) -> None:
        trainer = getattr(self, "_trainer", None)
        dm = getattr(trainer, "datamodule", None) if trainer is not None else None
        if dm is not None and getattr(dm, "task", None):
            self.task = str(dm.task)
        if dm is not None and hasattr(dm, "obs_dim") and hasattr(dm, "action_dim"):
            self.check_data_dims(int(dm.obs_dim), int(dm.action_dim), f"data {getattr(dm, 'path', None) or self.task}")
        self.check_network()
        if not self.obs_normalizer.fitted and dm is not None and hasattr(dm, "stats"):
            stats = dm.stats()
            self.fit_normalizers(stats["obs"], stats["action"])

    def check_data_dims(self, obs_dim: int, action_dim: int, where: str) -> None:
        """A :class:`PolicyDataError` for data of other sizes than the policy's, naming every option
        to set for a policy of the data's sizes (the policy's and its network's)."""
        if (obs_dim, action_dim) == (self.obs_dim, self.action_dim):
            return
        fix = [f"--model.init_args.obs_dim {obs_dim}", f"--model.init_args.action_dim {action_dim}"]
        net = getattr(self, "network", None)
        if getattr(net, "global_cond_dim", None):
            fix.append(f"--model.init_args.network.init_args.global_cond_dim {self.n_obs_steps * obs_dim}")
        if getattr(net, "action_dim", None) is not None:
            fix.append(f"--model.init_args.network.init_args.action_dim {action_dim}")
        raise PolicyDataError(
            f"{where}: observations of {obs_dim} and actions of {action_dim} dimensions, the policy is built for "
            f"{self.obs_dim} and {self.action_dim}; for a policy of the data's sizes pass {' '.join(fix)}"
        )

    def check_network(self) -> None:
        """A :class:`PolicyDataError` naming both values when the network's sizes disagree with the
        policy's (``n_obs_steps * obs_dim`` condition numbers, ``action_dim`` actions)."""
        net = getattr(self, "network", None)
        want = self.n_obs_steps * self.obs_dim
        have = getattr(net, "global_cond_dim", None)
        if have and have != want:
            raise PolicyDataError(
                f"--model.init_args.network.init_args.global_cond_dim {have}: the policy conditions on n_obs_steps x "
                f"obs_dim = {self.n_obs_steps} x {self.obs_dim} = {want} numbers; set it to {want}"
            )
        have = getattr(net, "action_dim", None)
        if have is not None and have != self.action_dim:
            raise PolicyDataError(
                f"--model.init_args.network.init_args.action_dim {have}: the policy has action_dim="
                f"{self.action_dim}; set both to the data's action size"
            )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)  # type: ignore[misc]
        checkpoint["normalizers"] = {
            "obs": self.obs_normalizer.state_dict(),
            "action": self.action_normalizer.state_dict(),
        }
        checkpoint["difflab_robotics"] = {"task": self.task}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)  # type: ignore[misc]
        if "normalizers" in checkpoint:
            try:
                self.obs_normalizer.load_state_dict(checkpoint["normalizers"]["obs"])
                self.action_normalizer.load_state_dict(checkpoint["normalizers"]["action"])
            except ValueError as err:
                raise PolicyDataError(
                    f"checkpoint and data disagree: {err} (the policy is built for the data's sizes: "
                    "--data.init_args.path, --data.init_args.obs_keys)"
                ) from err
        saved = (checkpoint.get("difflab_robotics") or {}).get("task")
        if saved and self.task and saved != self.task:
            raise PolicyDataError(
                f"checkpoint: trained on {saved} demonstrations, the data is {self.task} "
                "(--data.init_args.path / --data.init_args.env)"
            )
        self.task = saved or self.task

    def check_dims(self, obs: Any, action: Any = None, *, where: str = "input") -> None:
        """Raise a ValueError naming the field when observation / action sizes disagree with the model."""
        if obs is not None and obs.shape[-1] != self.obs_dim:
            raise PolicyDataError(
                f"{where}: field 'obs' has {obs.shape[-1]} dimensions but the policy was built for "
                f"obs_dim={self.obs_dim} (checkpoint and environment / data disagree; --model.init_args.obs_dim)"
            )
        if action is not None and action.shape[-1] != self.action_dim:
            raise PolicyDataError(
                f"{where}: field 'action' has {action.shape[-1]} dimensions but the policy was built for "
                f"action_dim={self.action_dim} (--model.init_args.action_dim)"
            )

    def normalize_batch(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor | None]:
        """``(flattened normalised observations (B, To*Do), normalised actions (B, Tp, Da) or None)``."""
        obs = batch["obs"]
        self.check_dims(obs, batch.get("action"), where="batch")
        if obs.ndim != 3 or obs.shape[1] < self.n_obs_steps:
            raise ValueError(
                f"field 'obs' must have shape (B, >= {self.n_obs_steps}, {self.obs_dim}), got {tuple(obs.shape)}"
            )
        if not self.obs_normalizer.fitted:
            raise RuntimeError("the policy's normalisers are not fitted (train it with a DemoDataModule first)")
        nobs = self.obs_normalizer.normalize(obs[:, : self.n_obs_steps]).flatten(1)
        act = batch.get("action")
        return nobs, None if act is None else self.action_normalizer.normalize(act)


NoiseLevels = Literal["shared", "per_token", "tedi"]


class DiffusionPolicy(PolicyIOMixin, DiffusionModule):
    """Args:
    network: the denoiser ``network(x (B, Tp, Da), t (B,), cond (B, To*Do))``, usually
        :class:`~difflab.robotics.networks.ConditionalUnet1D`.
    obs_dim, action_dim: ``Do``, ``Da``.
    horizon, n_obs_steps, n_action_steps: ``Tp``, ``To``, ``Ta`` (16, 2, 8).
    num_train_steps: ``T`` of the DDPM chain (100).
    schedule: beta schedule (``cosine`` is diffusers' ``squaredcos_cap_v2``).
    prediction: network output (``eps`` as the reference).
    optimizer, lr_scheduler: optimiser / scheduler factories.
    sampler, sample_steps, sampler_options: default sampler (``ddim``, 10 steps).
    clip_x0: clamp of the clean estimate while sampling (``clip_sample``; 1.0).
    rti_steps: RTI-DP's denoising steps, integer chain positions from high to low, e.g.
        ``[3, 2, 1]``: the warm start is taken as the state at ``k = 3`` and denoised to 0 in 3 NFE.
    rti_execute: actions executed per RTI call (the shift of the warm start); 1 as in the paper.
    discrete_action_dims: action dimensions that are binary (Meta-World's gripper effort is 3).
    discrete_factor: RTI-DP "clip" handling: a discrete dimension of the stored guess is set to
        ``+-1 / discrete_factor`` (normalised) before the next warm start.
    noise_levels: ``shared`` (one level per chunk), ``per_token`` (Diffusion Forcing) or ``tedi``
        (see the module docstring); the per-token modes need a network built with
        ``per_token_time=True``.
    tedi_constant: share of examples with one constant level in the ``tedi`` mix (0.2).
    stream_chunk: actions per rung of the streaming buffer ``m`` (emitted per call); must divide
        ``Tp - To + 1``. 1: one action per control step and NFE.
    stream_eta: 0 for DDIM steps in the stream, 1 for DDPM steps.
    stream_init: how a stream is filled at the start of an episode: ``ladder`` (``n - 1`` NFE of the
        same per-token chain) or ``renoise`` (TEDi's: the full shared chain of ``n`` steps, then noised
        to the ladder).
    """

    def __init__(
        self,
        network: nn.Module,
        obs_dim: int = 39,
        action_dim: int = 4,
        horizon: int = 16,
        n_obs_steps: int = 2,
        n_action_steps: int = 8,
        num_train_steps: int = 100,
        schedule: Literal["linear", "scaled_linear", "cosine", "sigmoid"] = "cosine",
        prediction: Literal["eps", "x0", "v"] = "eps",
        optimizer: OptimizerCallable = torch.optim.AdamW,
        lr_scheduler: LRSchedulerCallable | None = None,
        sampler: SamplerName = "ddim",
        sample_steps: int = 10,
        sampler_options: dict[str, Any] | None = None,
        clip_x0: float | None = 1.0,
        rti_steps: list[int] | None = None,
        rti_execute: int = 1,
        discrete_action_dims: list[int] | None = None,
        discrete_factor: float = 2.0,
        noise_levels: NoiseLevels = "shared",
        tedi_constant: float = 0.2,
        stream_chunk: int = 1,
        stream_eta: float = 0.0,
        stream_init: StreamInit = "ladder",
    ) -> None:
        process = DiscreteVP(schedule, num_train_steps)
        super().__init__(
            network,
            process=process,
            prediction=prediction,
            optimizer=optimizer,
            lr_scheduler=lr_scheduler,
            sampler=sampler,
            sample_steps=sample_steps,
            sampler_options=sampler_options,
            clip_x0=clip_x0,
            time_dims=1 if noise_levels == "shared" else 2,
        )
        self._init_io(obs_dim, action_dim, horizon, n_obs_steps, n_action_steps)
        self.num_train_steps = int(num_train_steps)
        self.rti_steps = [int(k) for k in (rti_steps if rti_steps is not None else [3, 2, 1])]
        if (
            not self.rti_steps
            or any(not 1 <= k <= num_train_steps for k in self.rti_steps)
            or sorted(self.rti_steps, reverse=True) != self.rti_steps
            or len(set(self.rti_steps)) != len(self.rti_steps)
        ):
            raise ValueError(f"rti_steps must be distinct decreasing steps in [1, {num_train_steps}], got {rti_steps}")
        if not 1 <= rti_execute <= horizon - n_obs_steps + 1:
            raise ValueError(f"rti_execute must lie in [1, {horizon - n_obs_steps + 1}], got {rti_execute}")
        self.rti_execute = int(rti_execute)
        self.discrete_action_dims = [int(d) for d in (discrete_action_dims or [])]
        if any(not 0 <= d < action_dim for d in self.discrete_action_dims):
            raise PolicyDataError(
                f"--model.init_args.discrete_action_dims {self.discrete_action_dims}: the actions have {action_dim} "
                f"dimensions (0 to {action_dim - 1}); name the binary ones (a gripper), or pass []"
            )
        if discrete_factor <= 0:
            raise ValueError(f"discrete_factor must be > 0, got {discrete_factor}")
        self.discrete_factor = float(discrete_factor)
        self._init_noise_levels(network, noise_levels, tedi_constant, stream_chunk, stream_eta, stream_init)

    def _init_noise_levels(
        self, network: nn.Module, noise_levels: str, constant: float, chunk: int, eta: float, init: str
    ) -> None:
        if noise_levels not in ("shared", "per_token", "tedi"):
            raise ValueError(f"noise_levels must be 'shared', 'per_token' or 'tedi', got {noise_levels!r}")
        if noise_levels != "shared" and not getattr(network, "per_token_time", False):
            raise ValueError(
                f"noise_levels={noise_levels!r} needs a network that takes one time per action step "
                "(ConditionalUnet1D(per_token_time=True))"
            )
        if not 0 <= constant <= 1:
            raise ValueError(f"tedi_constant must lie in [0, 1], got {constant}")
        future = self.horizon - self.n_obs_steps + 1
        if chunk < 1 or future % chunk or future // chunk > self.num_train_steps:
            raise ValueError(f"stream_chunk must divide Tp - To + 1 = {future} into at most T levels, got {chunk}")
        if init not in ("ladder", "renoise"):
            raise ValueError(f"stream_init must be 'ladder' or 'renoise', got {init!r}")
        if not eta >= 0:
            raise ValueError(f"stream_eta must be >= 0, got {eta}")
        self.noise_levels, self.tedi_constant = noise_levels, float(constant)
        self.stream_chunk, self.stream_eta, self.stream_init = int(chunk), float(eta), init

    @property
    def n_past(self) -> int:
        """Positions of the chunk before the current step (``To - 1``)."""
        return self.n_obs_steps - 1

    # ------------------------------------------------------------------ training
    def setup(self, stage: str) -> None:
        super().setup(stage)
        self._setup_normalizers()

    def training_loss(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> Tensor:
        cond, nact = self.normalize_batch(batch)
        return self.diffusion_loss({"x0": nact, "cond": cond}, generator)

    @staticmethod
    def _batch_size(batch: dict[str, Any]) -> int:
        obs = batch.get("obs") if isinstance(batch, dict) else None
        return int(obs.shape[0]) if isinstance(obs, Tensor) else DiffusionModule._batch_size(batch)

    def sample_time(self, x0: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Training times: ``(B,)`` for ``shared``, else ``(B, Tp)`` per the module docstring (past positions at 1)."""
        if self.noise_levels == "shared":
            return super().sample_time(x0, generator)
        B, T, p = x0.shape[0], self.num_train_steps, self.n_past
        k = torch.randint(1, T + 1, (B, self.horizon), generator=generator, device=x0.device)
        if self.noise_levels == "tedi":
            n = (self.horizon - p) // self.stream_chunk
            rung = torch.arange(self.horizon - p, device=x0.device) // self.stream_chunk
            j = torch.randint(0, max(T // n, 1), (B, 1), generator=generator, device=x0.device)
            ladder = torch.floor(T * (rung + 1) / n).long() - j
            const = torch.randint(1, T + 1, (B, 1), generator=generator, device=x0.device)
            use_const = torch.rand(B, 1, generator=generator, device=x0.device) < self.tedi_constant
            k[:, p:] = torch.where(use_const, const, ladder)
        k[:, :p] = T
        return k.to(x0.dtype) / T

    def loss_weight(self, t: Tensor) -> Tensor | None:
        """0 on the past positions of the per-token modes (rescaled so the mean weight is 1), else None."""
        if self.noise_levels == "shared" or t.ndim < 2 or not self.n_past:
            return None
        w = torch.full_like(t, self.horizon / (self.horizon - self.n_past))
        w[:, : self.n_past] = 0
        return w

    def network_forward(self, x_t: Tensor, t: Tensor, batch: dict[str, Any] | None = None) -> Tensor:
        cond = None if batch is None else batch.get("cond")
        if cond is not None and cond.shape[0] != x_t.shape[0]:  # ParaDiGMS evaluates window * B states at once
            cond = cond.repeat(x_t.shape[0] // cond.shape[0], 1)
        if self.noise_levels != "shared":
            x_t, t = self._blank_past(x_t, t)
        return self.network(x_t, t, cond)

    def _blank_past(self, x_t: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """Per-token modes: ``t`` as ``(B, Tp)``, the past positions set to ``x = 0`` at ``t = 1``."""
        B = x_t.shape[0]
        t = t.to(x_t.dtype)
        t = t.reshape(B, 1).expand(B, self.horizon) if t.ndim <= 1 else t.expand(B, self.horizon)
        if not self.n_past:
            return x_t, t
        x_t, t = x_t.clone(), t.clone()
        x_t[:, : self.n_past] = 0
        t[:, : self.n_past] = self.process.t_max
        return x_t, t

    # ------------------------------------------------------------------ sampling
    def sampler_kwargs(self, name: SamplerName, options: dict[str, Any]) -> dict[str, Any]:
        """The module's sampler options; ParaDiGMS runs the DDPM chain (``step="ddpm"``) unless told otherwise."""
        opts = super().sampler_kwargs(name, options)
        if name == "paradigms":
            opts.setdefault("step", "ddpm")
        return opts

    @torch.no_grad()
    def sample_chunk(
        self,
        obs: Tensor,
        *,
        sampler: SamplerName | None = None,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        x_init: Tensor | None = None,
        grid: Tensor | None = None,
        **options: Any,
    ) -> SampleResult:
        """A normalised action chunk ``(B, Tp, Da)`` for raw observations ``obs (B, To, Do)``.

        ``x_init`` is the start state at ``grid[0]`` (``N(0, I)`` noise from ``generator`` if None);
        ``grid`` defaults to the chain's grid for the sampler (``process.default_grid``: whole steps
        for the DDPM / DDIM / DPM-Solver / ParaDiGMS chains). Sampling is core's
        :meth:`~difflab.core.lightning.DiffusionModule.sample` with ``batch = {"cond": ...}``.
        """
        steps = steps or self.sample_steps
        cond, _ = self.normalize_batch({"obs": obs})
        if x_init is None:
            shape = (obs.shape[0], self.horizon, self.action_dim)
            x_init = torch.randn(shape, generator=generator, device=self.device, dtype=self.dtype)
        return self.sample(
            batch={"cond": cond},
            x_init=x_init,
            grid=grid,
            sampler=sampler,
            steps=steps,
            generator=generator,
            **options,
        )

    # ------------------------------------------------------------------ streaming
    def stream_grid(self) -> Tensor:
        """The ladder ``(n + 1,)`` of the streaming buffer: TEDi's rungs on the ``T``-step chain."""
        return chain_ladder_grid(self.num_train_steps, (self.horizon - self.n_past) // self.stream_chunk)

    def stream_denoiser(self, cond: Tensor) -> Denoiser:
        """The network on the buffer ``(B, L, Da)`` of future actions with times ``(B, L)``: the past
        positions are put in front (blank, see :meth:`_blank_past`) and cut from the output."""
        p = self.n_past

        def model(x: Tensor, t: Tensor) -> Tensor:
            pad = x.new_zeros(x.shape[0], p, x.shape[2])
            tt = torch.cat([t.new_full((x.shape[0], p), self.process.t_max), t.expand(x.shape[0], -1)], dim=1)
            return self.network_forward(torch.cat([pad, x], dim=1), tt, {"cond": cond})[:, p:]

        return Denoiser(model, self.process, self.prediction, clip_x0=self.clip_x0)

    def _require_stream(self) -> None:
        if self.noise_levels == "shared":
            raise PolicyDataError(
                "--sampler stream: the policy was trained with noise_levels='shared' (one noise level per chunk); "
                "train it with --model.init_args.noise_levels tedi (or per_token) to sample it as a stream"
            )

    @torch.no_grad()
    def stream_start(self, obs: Tensor, *, generator: torch.Generator | None = None) -> tuple[StreamState, int]:
        """Fill a streaming buffer for raw observations ``obs (B, To, Do)``: ``(state, nfe)``."""
        self._require_stream()
        cond, _ = self.normalize_batch({"obs": obs})
        shape = (obs.shape[0], self.horizon - self.n_past, self.action_dim)
        x = self.process.prior_sample(shape, generator=generator, device=self.device, dtype=self.dtype)
        with eval_mode(self):
            return core_stream_start(
                self.stream_denoiser(cond),
                x,
                self.stream_grid(),
                chunk=self.stream_chunk,
                eta=self.stream_eta,
                init=self.stream_init,
                generator=generator,
            )

    @torch.no_grad()
    def stream_step(self, obs: Tensor, state: StreamState, *, generator: torch.Generator | None = None) -> StreamOutput:
        """One streaming step conditioned on ``obs (B, To, Do)``; ``emitted`` holds ``stream_chunk``
        clean normalised actions ``(B, m, Da)``, the first one for the current control step."""
        self._require_stream()
        cond, _ = self.normalize_batch({"obs": obs})
        with eval_mode(self):
            return core_stream_step(self.stream_denoiser(cond), state, eta=self.stream_eta, generator=generator)

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """Raw action chunks ``(B, Tp, Da)`` for the observations of ``batch``."""
        out = self.sample_chunk(batch["obs"], generator=self.noise_generator(3, batch_idx))
        return self.action_normalizer.unnormalize(out.sample)


__all__ = ["DiffusionPolicy", "PolicyIOMixin"]
