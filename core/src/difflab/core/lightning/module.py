r"""``DiffusionModule``: the LightningModule every difflab diffusion method derives from.

It owns a forward process, a network and the network's parameterisation, and provides:

* **training**: :meth:`DiffusionModule.training_loss` draws ``t ~ U(t_eps, t_max)`` (the process's
  ``train_times``: whole steps for a discrete chain; one time per example, or per element of the
  first ``time_dims`` axes), ``x_t = a(t) x0 + b(t) y + s(t) eps``
  from :meth:`~difflab.core.processes.base.LinearGaussianProcess.sample_marginal`, and regresses the
  chosen target (:func:`difflab.core.parameterization.from_x0_eps`) with a mean squared error
  (:func:`difflab.core.losses.time_weighted_mse`; Ho et al. 2020 for ``eps``; Salimans & Ho 2022
  for ``v``; Song et al. 2021 for ``score``; Lipman et al. 2023 for ``velocity``):

  .. math:: L = \mathbb E_{t, x_0, \varepsilon}\, w(t)\,
            \lVert f_\theta(x_t, t) - \mathrm{target}(x_0, \varepsilon, t) \rVert^2 .

  Subclasses change the objective by overriding :meth:`~DiffusionModule.training_loss`, the
  network call by :meth:`~DiffusionModule.network_forward`, the time law by
  :meth:`~DiffusionModule.sample_time` and the weight by :meth:`~DiffusionModule.loss_weight`.
* **sampling**: :meth:`DiffusionModule.sample` runs any core sampler by name through
  :func:`difflab.core.samplers.select.run_sampler`, from a prior draw or a given start state
  (``x_init``), on the sampler's default grid or a given one, with the network conditioned on a
  batch; :meth:`~DiffusionModule.make_denoiser` and :meth:`~DiffusionModule.sampler_kwargs` are
  the hooks a method overrides. :func:`eval_mode` is the one way to evaluate in eval mode.
* **validation / test**: the same loss on held-out data (with fixed noise), subclass metrics from
  :meth:`~DiffusionModule.validation_metrics`, and once per epoch a batch of samples scored by
  :meth:`~DiffusionModule.sample_metrics` and handed to :meth:`~DiffusionModule.log_samples`
  (figures go to the logger through :meth:`~DiffusionModule.log_figure`).
* **optimiser, randomness, hyper-parameters, figures, loading**: inherited from
  :class:`~difflab.core.lightning.base.TrainedModule`, the base of every trained model.

Batch dict contract (what every DataModule feeding a DiffusionModule yields):

=========  ===================  ==========================================================
key        shape                meaning
=========  ===================  ==========================================================
``x0``     ``(B, *D)``          clean data; required for fit / validate / test. In predict
                                its shape (and device) sets the shape of the samples.
``y``      ``(B, *D)``          the process condition (noisy speech for OUVE, upsampled
                                low-resolution image for ResShift); required exactly when
                                ``process.conditional``.
others     any                  network conditioning read by a subclass's
                                :meth:`~DiffusionModule.network_forward` (class labels,
                                context, masks, timestamps, ...).
=========  ===================  ==========================================================

Reproducibility and resuming. Every random draw of a step (times, noise) comes from a generator
seeded by ``(noise seed, global step, batch index, rank)``; the noise seed (``PL_GLOBAL_SEED``, i.e.
``--seed_everything``) is stored in the checkpoint. A run resumed from a checkpoint therefore draws
exactly the noise the uninterrupted run would have drawn, whatever the seed of the resumed process.
Validation uses fixed generators, so its numbers are comparable between epochs.

EMA. Keep an exponential moving average of the weights with Lightning's own
``lightning.pytorch.callbacks.EMAWeightAveraging`` callback (in YAML under ``trainer.callbacks``):
it swaps the averaged weights in for validation (so :meth:`validation_step`, and the samples drawn
there, use them), copies them into the module when training ends, and writes them to the
checkpoint's ``state_dict`` (online weights under ``current_model_state``), so ``validate`` /
``test`` / ``predict`` / ``load_from_checkpoint`` use the averaged weights and ``fit --ckpt_path``
restores both.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from difflab.core.lightning.base import NoiseStream, TrainedModule, cli_given_hparams, eval_mode
from difflab.core.likelihood import log_likelihood
from difflab.core.losses import time_weighted_mse
from difflab.core.parameterization import PREDICTIONS, Prediction, from_x0_eps
from difflab.core.processes.base import LinearGaussianProcess
from difflab.core.processes.discrete import DiscreteProcess
from difflab.core.processes.gaussian import VPSDE
from difflab.core.samplers.base import Denoiser, SampleResult
from difflab.core.samplers.select import (
    DISCRETE_SAMPLER_NAMES,
    SAMPLER_NAMES,
    DiscreteSamplerName,
    SamplerName,
    run_sampler,
)

_TRAIN, _VAL, _TEST, _PREDICT, _SAMPLE = NoiseStream


@contextmanager
def frozen_parameters(module: nn.Module) -> Iterator[None]:
    """The module's trainable parameters with ``requires_grad`` off for the block (gradients w.r.t. the
    input only, no graph kept for the weights), restored afterwards."""
    params = [p for p in module.parameters() if p.requires_grad]
    try:
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


DENOISER_OPTIONS = ("threshold", "threshold_max", "rederive_eps")
GUIDANCE_OPTIONS = ("guidance", "guidance_threshold")
"""Options of :meth:`DiffusionModule.sample` that make a classifier-free guided denoiser."""


def _sample_shape(shape: Any, batch: dict[str, Any] | None, y: Tensor | None) -> tuple[int, ...]:
    """The sample shape of :meth:`DiffusionModule.sample`: ``shape``, else ``batch["x0"]``'s, else ``y``'s."""
    if shape is not None:
        return tuple(shape)
    if batch is not None and isinstance(batch.get("x0"), Tensor):
        return tuple(batch["x0"].shape)
    if y is not None:
        return tuple(y.shape)
    raise ValueError("sample: give a shape, an x_init, or a batch with an 'x0' (or 'y') entry")


class DiffusionModule(TrainedModule):
    """Base LightningModule of a diffusion method.

    Args:
        network: the denoiser, called as ``network(x_t, t)`` with ``x_t`` of shape ``(B, *D)`` and
            ``t`` of shape ``(B,)`` or per element (see ``time_dims``); returns a ``(B, *D)``
            prediction of kind ``prediction``. Subclasses with conditioning override
            :meth:`network_forward`.
        process: the forward process; ``None`` means ``VPSDE()`` (beta 0.1 -> 20). A discrete token
            process (:data:`~difflab.core.processes.discrete.DiscreteProcess`) is sampled by a
            subclass through :func:`~difflab.core.samplers.select.run_discrete_sampler`.
        prediction: what the network predicts: ``eps``, ``x0``, ``v``, ``score`` or ``velocity``.
        optimizer: optimiser factory ``params -> Optimizer`` (default ``torch.optim.Adam``, lr 1e-3).
        lr_scheduler: optional scheduler factory ``optimizer -> LRScheduler``.
        lr_interval: step the scheduler every optimiser ``step`` or every ``epoch``.
        time_dims: number of leading axes of ``x0`` with their own time: 1 gives ``t`` of shape
            ``(B,)``, 2 gives ``(B, L)`` (one noise level per token / frame).
        t_eps: smallest training time; ``None`` means ``process.t_min`` (or 1e-5 if that is 0).
        sampler: default sampler name for :meth:`sample` (validation samples, predict); one of
            ``SAMPLER_NAMES``, or of ``DISCRETE_SAMPLER_NAMES`` for a discrete process.
        sample_steps: default number of sampler steps.
        sampler_options: extra keyword options for the default sampler (``eta``, ``order``, ...).
        num_val_samples: samples drawn once per validation epoch for :meth:`sample_metrics` and
            :meth:`log_samples` (0: none).
        clip_x0: clamp the denoised estimate to ``[-clip_x0, clip_x0]`` while sampling.

    EMA: train with Lightning's ``EMAWeightAveraging`` callback. With ``use_buffers=True`` it copies
    the module before :meth:`setup` and swaps *buffers* as well as weights for validation, so data
    statistics fitted in ``setup`` (normalisers) must not live in registered buffers: keep them as
    plain tensors saved through ``on_save_checkpoint``, or register them with ``persistent=False``
    and refit them after the swap.
    """

    def __init__(
        self,
        network: nn.Module,
        process: LinearGaussianProcess | DiscreteProcess | None = None,
        prediction: Prediction = "eps",
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        lr_interval: Literal["step", "epoch"] = "step",
        time_dims: int = 1,
        t_eps: float | None = None,
        sampler: SamplerName | DiscreteSamplerName = "ddim",
        sample_steps: int = 50,
        sampler_options: dict[str, Any] | None = None,
        num_val_samples: int = 0,
        clip_x0: float | None = None,
    ) -> None:
        super().__init__(optimizer, lr_scheduler, lr_interval)
        if prediction not in PREDICTIONS:
            raise ValueError(f"{type(self).__name__}: prediction must be one of {PREDICTIONS}, got {prediction!r}")
        forward = process if process is not None else VPSDE()
        names = SAMPLER_NAMES if isinstance(forward, LinearGaussianProcess) else DISCRETE_SAMPLER_NAMES
        if sampler not in names:
            raise ValueError(
                f"{type(self).__name__}: sampler must be one of {names} for {type(forward).__name__}, got {sampler!r}"
            )
        if time_dims < 1:
            raise ValueError(f"{type(self).__name__}: time_dims must be >= 1, got {time_dims}")
        if sample_steps < 1:
            raise ValueError(f"{type(self).__name__}: sample_steps must be >= 1, got {sample_steps}")
        if num_val_samples < 0:
            raise ValueError(f"{type(self).__name__}: num_val_samples must be >= 0, got {num_val_samples}")
        self.save_init_hyperparameters(("network", "process", "optimizer", "lr_scheduler"))
        self.network = network
        self.process = forward
        self.prediction: Prediction = prediction
        self.time_dims = time_dims
        t_min = float(self.process.t_min)
        self.t_eps = float(t_eps) if t_eps is not None else (t_min if t_min > 0 else 1e-5)
        if not 0 <= self.t_eps < self.process.t_max:
            raise ValueError(f"{type(self).__name__}: t_eps must lie in [0, t_max), got {self.t_eps}")
        self.sampler_name = sampler
        self.sample_steps = sample_steps
        self.sampler_options = dict(sampler_options or {})
        self.num_val_samples = num_val_samples
        self.clip_x0 = clip_x0

    # ------------------------------------------------------------------ network
    def network_forward(self, x_t: Tensor, t: Tensor, batch: dict[str, Any] | None = None) -> Tensor:
        """One network evaluation; override to pass conditioning from ``batch`` (``batch`` may be None)."""
        return self.network(x_t, t)

    def forward(self, x_t: Tensor, t: Tensor, batch: dict[str, Any] | None = None) -> Tensor:
        return self.network_forward(x_t, t, batch)

    # ------------------------------------------------------------------ loss
    def sample_time(self, x0: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Training times, shape ``x0.shape[:time_dims]``: the process's own law
        (:meth:`~difflab.core.processes.base.LinearGaussianProcess.train_times`: ``U(t_eps, t_max)``,
        or whole steps of a discrete chain)."""
        return self.process.train_times(x0, generator, time_dims=self.time_dims, t_eps=self.t_eps)

    def loss_weight(self, t: Tensor) -> Tensor | None:
        """Per-time weight ``w(t)`` of the regression (shape of ``t``); ``None`` means 1."""
        return None

    def process_condition(self, batch: dict[str, Any]) -> Tensor | None:
        """The process condition ``y`` of a batch (``batch["y"]``); override where it is another entry."""
        return batch.get("y")

    def null_condition(self, batch: dict[str, Any] | None) -> dict[str, Any] | None:
        """``batch`` with its network condition replaced by the null condition that classifier-free
        guidance's unconditional branch uses (the "no class" label of a model trained with condition
        dropout); ``None`` (the default): the model has none, and guidance is refused."""
        return None

    def guided_denoiser(
        self, batch: dict[str, Any] | None, y: Tensor | None, scale: float, threshold: float | None = None
    ) -> Denoiser:
        r"""The classifier-free guided :class:`Denoiser` of ``batch``: the network's own prediction
        ``out_u + w (out_c - out_u)`` from :meth:`make_denoiser` of ``batch`` (conditional) and of
        :meth:`null_condition` (unconditional), Ho & Salimans 2022; with ``threshold`` (a cosine
        similarity), core's :class:`~difflab.core.guidance.AdaptiveGuidance` (Castillo et al. 2023),
        which drops the unconditional pass once the two predictions agree. NFE counts both passes."""
        from difflab.core.guidance import AdaptiveGuidance, ClassifierFreeGuidance

        null = self.null_condition(batch)
        if null is None:
            raise ValueError(
                f"{type(self).__name__} has no null condition for classifier-free guidance (a model trained "
                "with condition dropout on a conditional batch is needed)"
            )
        cond, uncond = self.make_denoiser(batch, y), self.make_denoiser(null, y)
        if threshold is None:
            model: Any = ClassifierFreeGuidance(cond.model, uncond.model, scale)
        else:
            model = AdaptiveGuidance(cond.model, uncond.model, scale, threshold=threshold)
        return Denoiser(model, cond.process, cond.prediction, **cond.settings())

    def diffusion_loss(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> Tensor:
        """The denoising regression loss on ``batch`` (see the module docstring), a scalar
        (:func:`difflab.core.losses.time_weighted_mse` with :meth:`loss_weight`)."""
        x0 = batch["x0"]
        y = self.process_condition(batch)
        if self.process.conditional and y is None:
            raise ValueError(f"{type(self.process).__name__} is conditional: the batch needs a 'y' entry")
        t = self.sample_time(x0, generator)
        x_t, eps = self.process.sample_marginal(x0, t, y, generator=generator)
        target = from_x0_eps(self.process, self.prediction, x0, eps, t, y)
        out = self.network_forward(x_t, t, batch)
        return time_weighted_mse(out, target, t, self.loss_weight(t))

    def training_loss(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> Tensor:
        """The objective minimised in ``training_step`` and reported in validation; override to change it."""
        return self.diffusion_loss(batch, generator)

    @staticmethod
    def _batch_size(batch: dict[str, Any]) -> int:
        x0 = batch.get("x0") if isinstance(batch, dict) else None
        return int(x0.shape[0]) if isinstance(x0, Tensor) else 1

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        loss = self.training_loss(batch, self.noise_generator(_TRAIN, self.global_step, batch_idx))
        bs = self._batch_size(batch)
        self.log("train/loss_step", loss, prog_bar=True, on_step=True, on_epoch=False, batch_size=bs)
        self.log("train/loss_epoch", loss, on_step=False, on_epoch=True, sync_dist=True, batch_size=bs)
        return loss

    # ------------------------------------------------------------------ sampling
    def make_denoiser(self, batch: dict[str, Any] | None = None, y: Tensor | None = None) -> Denoiser:
        """The core :class:`Denoiser` that :meth:`sample` runs: :meth:`network_forward` on ``batch``
        for ``self.process`` with the module's prediction, process condition ``y`` and ``clip_x0``.

        Override to sample with another model callable (a cached encoder, self-conditioning) or a
        process bound to the batch (correlated noise over its timestamps); it runs in eval mode.
        """
        return Denoiser(
            lambda x_t, t: self.network_forward(x_t, t, batch),
            self.process,
            self.prediction,
            y=y,
            clip_x0=self.clip_x0,
        )

    def sampler_kwargs(self, name: SamplerName, options: dict[str, Any]) -> dict[str, Any]:
        """Options for sampler ``name``: ``sampler_options`` (for the default sampler) updated by ``options``.

        Override to add a method's own defaults for a sampler (the PC sampler's ``snr``, ...).
        """
        return {**self.sampler_options, **options} if name == self.sampler_name else dict(options)

    @torch.no_grad()
    def sample(
        self,
        shape: tuple[int, ...] | torch.Size | None = None,
        *,
        batch: dict[str, Any] | None = None,
        y: Tensor | None = None,
        x_init: Tensor | None = None,
        grid: Tensor | None = None,
        sampler: SamplerName | None = None,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        callback=None,
        **options: Any,
    ) -> SampleResult:
        """Run a core sampler from ``x_init`` (default: a prior draw at ``t_max``) down to the data.

        Args:
            shape: sample shape ``(B, *D)``; defaults to the shape of ``x_init``, else of
                ``batch["x0"]``, else of ``y``.
            batch: conditioning batch (passed to :meth:`network_forward` through
                :meth:`make_denoiser`; its :meth:`process_condition` is the process condition
                unless ``y`` is given).
            y: process condition ``(B, *D)`` for conditional processes.
            x_init: the start state at ``grid[0]`` (a warm start, or noise drawn by the caller);
                ``None`` draws ``process.prior_sample`` with ``generator``.
            grid: a ready time grid ``(N + 1,)`` or ``(N + 1, *t_shape)`` (then ``steps`` is only
                passed on); ``None`` uses the sampler's default grid of ``steps`` steps.
            sampler: sampler name (default: the module's ``sampler``); see
                :data:`difflab.core.samplers.select.SAMPLER_NAMES`.
            steps: number of steps (default ``sample_steps``).
            generator: the randomness of the prior draw and of stochastic samplers.
            callback: per-step callback ``{"step", "t", "x", "x0"}``.
            **options: sampler options, merged by :meth:`sampler_kwargs`; ``threshold``,
                ``threshold_max`` and ``rederive_eps`` (dynamic thresholding of ``x0_hat``, see
                :class:`~difflab.core.samplers.base.Denoiser`) go to the denoiser instead;
                ``guidance`` (a weight ``w``) and ``guidance_threshold`` sample with
                :meth:`guided_denoiser` (classifier-free, or adaptive guidance with the threshold).

        Returns:
            the :class:`SampleResult` (``sample`` of shape ``shape``, ``nfe``, ``info``).
        """
        name = sampler or self.sampler_name
        opts = self.sampler_kwargs(name, options)
        if y is None and batch is not None:
            y = self.process_condition(batch)
        guidance = {key: opts.pop(key) for key in GUIDANCE_OPTIONS if key in opts}
        with eval_mode(self):
            if guidance.get("guidance") is not None:
                denoiser = self.guided_denoiser(batch, y, guidance["guidance"], guidance.get("guidance_threshold"))
            else:
                denoiser = self.make_denoiser(batch, y)
            for key in DENOISER_OPTIONS:  # x0 thresholding options act on the denoiser, not the sampler
                if key in opts:
                    setattr(denoiser, key, opts.pop(key))
            if x_init is None:
                shape = _sample_shape(shape, batch, y)
                x_init = denoiser.process.prior_sample(
                    shape, y=y, generator=generator, device=self.device, dtype=self.dtype
                )
            return run_sampler(
                name,
                denoiser,
                x_init,
                steps=steps or self.sample_steps,
                grid=grid,
                generator=generator,
                callback=callback,
                **opts,
            )

    def log_likelihood(
        self,
        batch: dict[str, Any],
        *,
        steps: int = 32,
        divergence: Literal["exact", "hutchinson"] = "hutchinson",
        probes: int = 1,
        t_start: float | None = None,
        prior_log_prob=None,
        generator: torch.Generator | None = None,
        callback=None,
        grid: Tensor | None = None,
        inset: float = 0.0,
    ) -> Tensor:
        r"""``log p(x0)`` per example ``(B,)`` in nats under the model's probability-flow ODE
        (:func:`difflab.core.likelihood.log_likelihood`): ``x0 = batch["x0"]`` ``(B, *D)`` is taken as
        the state at ``t_start`` and carried to ``t_max`` with ``steps`` RK4 steps,

        .. math:: \log p_{t_0}(x_0) = \log p_{T}(x_T) + \int_{t_0}^{T} \nabla\cdot v_\theta(x_t, t)\,dt,
                  \qquad v_\theta = f(x, t) - \tfrac12 g(t)^2 \nabla\log p_t ,

        with the network conditioned on ``batch`` (:meth:`make_denoiser`, the process condition
        :meth:`process_condition`), in eval mode, with the parameters frozen (gradients w.r.t. the
        input only) and without ``clip_x0`` (clipping is not part of the ODE). Works inside
        Lightning's ``test`` (inference mode is lifted for the call).

        Args:
            batch: a batch with ``x0`` (and whatever :meth:`make_denoiser` needs).
            steps: RK4 steps; cost ``4 * steps`` network evaluations with a backward pass each,
                times ``probes`` for ``hutchinson`` or times ``prod(D)`` for ``exact``.
            divergence: ``exact`` (small ``D`` only) or ``hutchinson`` (Rademacher probes; unbiased).
            probes: Hutchinson probes per evaluation.
            t_start: the time of the data (default the module's ``t_eps``: the smallest trained time,
                ``1 / T`` of a DDPM chain, where the marginal is the data slightly blurred).
            prior_log_prob: ``(x_T, T) -> (B,)``; default the process's Gaussian prior at ``t_max``.
            generator: randomness of the probes.
            callback: called after every RK4 step (``{"step", "t", "x"}``), e.g. a
                :class:`~difflab.core.progress.StepProgress`.
            grid, inset: an explicit increasing time grid of the RK4 steps (then ``steps`` and
                ``t_start`` are not used) and the inset of its stages at inner grid points
                (:func:`difflab.core.likelihood.log_likelihood`).

        A discrete chain (``DiscreteVP``) runs the PF-ODE of its own continuous-time interpolation
        (``log alpha_bar`` linear between steps: a piecewise-constant ``beta(t)``); a network trained at
        whole steps only is then evaluated between them too. Discrete token processes have no PF-ODE:
        a ``ValueError``.
        """
        if not isinstance(self.process, LinearGaussianProcess):
            raise ValueError(
                f"log_likelihood: {type(self.process).__name__} is a discrete token process; the "
                "probability-flow ODE needs a continuous (Gaussian) process"
            )
        if steps < 1 or probes < 1:
            raise ValueError(f"log_likelihood: steps and probes must be >= 1, got {steps}, {probes}")
        if prior_log_prob is None:
            self._warn_if_prior_keeps_data()
        # Lightning's test / predict loops run in inference mode, where no input can take a gradient
        with frozen_parameters(self), torch.inference_mode(False), eval_mode(self), torch.no_grad():
            batch = {k: v.clone() if isinstance(v, Tensor) and v.is_inference() else v for k, v in batch.items()}
            denoiser = self.make_denoiser(batch, self.process_condition(batch))
            denoiser.clip_x0 = None
            return log_likelihood(
                denoiser,
                batch["x0"],
                steps=steps,
                t_start=self.t_eps if t_start is None else t_start,
                divergence_method=divergence,
                probes=probes,
                prior_log_prob=prior_log_prob,
                generator=generator,
                callback=callback,
                grid=grid,
                inset=inset,
            )

    def _warn_if_prior_keeps_data(self, tolerance: float = 0.1) -> None:
        """Warn when the data's share ``a(t_max)`` of the end state is above ``tolerance``: the default
        prior ``N(b y, s^2 I)`` leaves it out, so the likelihood is then only approximate (a short
        DDPM chain: 100 linear-beta steps keep ``a(T)^2 = 0.37``)."""
        t_end = torch.full((1,), float(self.process.t_max), dtype=torch.float64)
        a_end = float(self.process.coefficients(t_end)[0].abs().max())
        if a_end > tolerance:
            warnings.warn(
                f"log_likelihood: the process keeps a(t_max) = {a_end:.3g} of the data at its end, which the "
                "Gaussian prior leaves out: the log-likelihood is approximate (more diffusion steps or a "
                "larger noise level at t_max make the prior exact)",
                stacklevel=3,
            )

    def sample_for_validation(self, batch: dict[str, Any], generator: torch.Generator) -> SampleResult:
        """Samples scored once per validation epoch: ``num_val_samples`` draws, conditioned on ``batch``
        (its first ``num_val_samples`` examples) when the process or network is conditional."""
        n = self.num_val_samples
        x0 = batch["x0"]
        if self.process.conditional or set(batch) - {"x0"}:
            part = {
                k: (v[:n] if isinstance(v, Tensor) and v.shape[:1] == x0.shape[:1] else v) for k, v in batch.items()
            }
            return self.sample(batch=part, generator=generator)
        return self.sample((n, *x0.shape[1:]), generator=generator)

    # ------------------------------------------------------------------ evaluation hooks
    def validation_metrics(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Tensor | float]:
        """Per-batch metrics besides the loss (averaged over the epoch); override in subclasses."""
        return {}

    def sample_metrics(self, samples: Tensor, batch: dict[str, Any]) -> dict[str, Tensor | float]:
        """Metrics of the validation samples against the data (override in subclasses)."""
        return {}

    def log_samples(self, samples: Tensor, batch: dict[str, Any], stage: str) -> None:
        """Send a picture of the samples to the logger (override; use :meth:`log_figure`)."""

    def _evaluate(self, batch: dict[str, Any], batch_idx: int, stage: str) -> Tensor:
        bs = self._batch_size(batch)
        stream = _VAL if stage == "val" else _TEST
        loss = self.training_loss(batch, self.noise_generator(stream, batch_idx))
        self.log(f"{stage}/loss", loss, prog_bar=stage == "val", sync_dist=True, batch_size=bs)
        for key, value in self.validation_metrics(batch, batch_idx).items():
            self.log(f"{stage}/{key}", value, sync_dist=True, batch_size=bs)
        if batch_idx == 0 and self.num_val_samples > 0:
            result = self.sample_for_validation(batch, self.noise_generator(_SAMPLE, 0))
            for key, value in self.sample_metrics(result.sample, batch).items():
                self.log(f"{stage}/{key}", value, sync_dist=True, batch_size=1)
            if self._trainer is not None and not self.trainer.sanity_checking and self.trainer.is_global_zero:
                self.log_samples(result.sample, batch, stage)
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        return self._evaluate(batch, batch_idx, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        return self._evaluate(batch, batch_idx, "test")

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """Samples with the shape (and conditioning) of ``batch``, ``(B, *D)``."""
        return self.sample(batch=batch, generator=self.noise_generator(_PREDICT, batch_idx)).sample


__all__ = ["DiffusionModule", "NoiseStream", "TrainedModule", "cli_given_hparams", "eval_mode"]
