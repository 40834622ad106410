r"""Stochastic process diffusion for probabilistic forecasting (Bilos et al. 2023, "Modeling Temporal
Data as Continuous Functions with Stochastic Process Diffusion"), with a CSDI-style conditional
denoiser (Tashiro et al. 2021).

A window ``x0`` ``(B, L, D)`` (context + horizon, scaled per window) is corrupted with noise that is
*correlated over its timestamps* ``t_1..t_L``:

.. math:: x_k = a_k x_0 + s_k\, L z, \qquad L L^\top = \Sigma(t_1..t_L),\quad z \sim \mathcal N(0, I)

with the GP kernel ``exp(-((t_i - t_j)/sigma)^2)`` or the OU kernel ``exp(-theta |t_i - t_j|)`` of
:mod:`difflab.core.processes.correlated` (timestamps in steps of the series' frequency, so irregular
series use their real spacing), or white noise (``noise="white"``: plain CSDI).

* **discrete (DSPD)**: the DDPM chain of ``K`` steps with betas linear from ``1e-4`` to ``min(20 / K, 0.5)``
  (``DiscreteVP``), training times on the integer steps ``t = k / K``, ancestral sampling whose fresh
  noise is a new GP / OU draw (core's ``ddpm`` sampler draws noise through ``process.noise_like``);
* **continuous (CSPD)**: the VP SDE (beta 0.1 -> 20) with covariance ``s(t)^2 Sigma``; any core
  sampler (``euler_maruyama``, ``probability_flow``, ``ddim``, ...). The reverse SDE's
  ``g^2 Sigma nabla log p`` reduces to ``-g^2 eps / s`` with coloured noise ``L z``, which is what
  core's samplers compute from an ``eps`` prediction.

Forecasting is conditional generation (CSDI): the network sees the given values
``cond_mask * x0`` (the observed context) and the noisy values of the other cells, and predicts the
coloured noise ``eps = L z``; the loss is the mean squared error over the *target* cells only
(``target_mask``: observed horizon values, or hidden values for imputation),
``sum((eps_hat - eps)^2 m) / sum(m)``. Sampling generates the whole window and keeps the given cells.

Likelihood (:meth:`StochasticProcessDiffusion.forecast_log_likelihood`): the log-density of the
generated cells of a window given its given cells, through the probability-flow ODE of the
conditional model. Only the generated cells move (the network never sees the noisy given cells), so
the ODE lives on them; with coloured noise its velocity is
``f(t) x + g(t)^2 eps_hat / (2 s(t))`` (``Sigma_GG`` times the score of the cells ``G``) and its prior
at ``t = 1`` is ``N(0, s(1)^2 Sigma_GG)`` per series (white noise: ``Sigma = I``). The ``test`` stage
logs it per forecast value when ``test_nll_steps > 0``.

Subclasses may subtract a deterministic mean first (:meth:`mean_component`,
:class:`~difflab.timeseries.models.falda.DecomposedDiffusion`).

Batch keys: see :mod:`difflab.timeseries.data.windows` (``x0, observed, cond_mask, target_mask,
times, calendar, loc, scale``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from difflab.core.broadcast import expand_like
from difflab.core.lightning import DiffusionModule, NoiseStream
from difflab.core.processes.base import LinearGaussianProcess
from difflab.core.processes.correlated import CorrelatedNoise
from difflab.core.processes.gaussian import VPSDE, DiscreteVP
from difflab.core.samplers.base import Denoiser
from difflab.core.samplers.select import SamplerName
from difflab.timeseries.metrics import metric_table
from difflab.timeseries.models.data_settings import check_test_data, model_settings, recorded_settings

NoiseKind = Literal["white", "gp", "ou"]
DiffusionKind = Literal["discrete", "continuous"]
DATA_SOURCES = {
    "context_length": "context_length",
    "prediction_length": "prediction_length",
    "frequency": "frequency",
    "series_names": "series_names",
}
"""The model's data settings and the data-module attributes they come from."""


class FixedCells:
    """A process whose cells outside ``mask`` (the given values of a window) stay where they are: its
    probability-flow velocity is ``mask`` times the process's; everything else is the process's."""

    def __init__(self, process, mask: Tensor) -> None:
        self.process, self.mask = process, mask

    def reverse_drift(self, x: Tensor, t: Tensor, score: Tensor, y: Tensor | None = None, **kwargs: Any) -> Tensor:
        return self.process.reverse_drift(x, t, score, y, **kwargs) * self.mask

    def __getattr__(self, name: str) -> Any:
        if "process" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.__dict__["process"], name)


def masked_prior_log_prob(process, x: Tensor, t: Tensor, mask: Tensor) -> Tensor:
    r"""``log N(x_G; 0, s(t)^2 Sigma_GG)`` per window ``(B,)``: the prior of the cells ``G`` where
    ``mask`` ``(B, L, D)`` is 1, for every series ``d`` with the time covariance ``Sigma`` of a
    :class:`~difflab.core.processes.correlated.CorrelatedNoise` bound to the window's times (the
    identity for white noise). ``Sigma_GG`` of each series is written as the ``(L, L)`` matrix
    ``M Sigma M + (I - M)``, ``M = diag(mask[:, :, d])``, which has the same determinant and inverse
    on ``G``."""
    b, n, d = x.shape
    _, _, s = process.coefficients_like(t, x)
    m = mask.to(torch.float64).transpose(1, 2)  # (B, D, L)
    z = (x.to(torch.float64) / s.to(torch.float64)).transpose(1, 2) * m  # (B, D, L)
    count = m.sum((1, 2))
    log_s = (torch.log(s.to(torch.float64)).expand_as(x).transpose(1, 2) * m).sum((1, 2))
    if not hasattr(process, "covariance"):
        quad, logdet = (z**2).sum((1, 2)), torch.zeros_like(count)
    else:
        sigma = process.covariance().to(x.device)  # (L, L) or (B, L, L)
        sigma = sigma.expand(b, n, n)[:, None] * m[..., :, None] * m[..., None, :]
        sigma = sigma + torch.diag_embed(1 - m)  # (B, D, L, L)
        chol = torch.linalg.cholesky(sigma)
        w = torch.linalg.solve_triangular(chol, z[..., None], upper=False)[..., 0]
        quad = (w**2).sum((1, 2))
        logdet = 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum((1, 2))
    out = -0.5 * quad - log_s - 0.5 * logdet - 0.5 * count * np.log(2 * np.pi)
    return out.to(x.dtype)


def _check_sampling(name: str, test_nll_steps: int, num_samples: int, ddpm_variance: str) -> None:
    """Refuse a forecaster's sampling options that cannot run, naming the model and the option."""
    if test_nll_steps < 0:
        raise ValueError(f"{name}: test_nll_steps must be >= 0, got {test_nll_steps}")
    if num_samples < 1:
        raise ValueError(f"{name}: num_samples must be >= 1, got {num_samples}")
    if ddpm_variance not in ("fixed_small", "fixed_large"):
        raise ValueError(f"{name}: ddpm_variance must be fixed_small or fixed_large, got {ddpm_variance!r}")


def forecast_process(
    name: str,
    noise: NoiseKind,
    kernel_scale: float,
    diffusion: DiffusionKind,
    num_steps: int,
    beta_start: float,
    beta_end: float | None,
    beta_min: float,
    beta_max: float,
) -> LinearGaussianProcess:
    """The forward process of a forecaster ``name``: a linear-beta :class:`DiscreteVP` of ``num_steps``
    (``beta_end`` default ``min(20 / num_steps, 0.5)``) or a :class:`VPSDE`, with white noise or
    :class:`CorrelatedNoise` (GP / OU kernel of ``kernel_scale``) along the time axis."""
    if noise not in ("white", "gp", "ou"):
        raise ValueError(f"{name}: noise must be white, gp or ou, got {noise!r}")
    if diffusion not in ("discrete", "continuous"):
        raise ValueError(f"{name}: diffusion must be discrete or continuous, got {diffusion!r}")
    if kernel_scale <= 0 or num_steps < 1:
        raise ValueError(f"{name}: need kernel_scale > 0 and num_steps >= 1; got {kernel_scale}, {num_steps}")
    if diffusion == "discrete":
        end = beta_end if beta_end is not None else min(20.0 / num_steps, 0.5)
        base: LinearGaussianProcess = DiscreteVP("linear", num_steps, beta_start, end)
    else:
        base = VPSDE(beta_min, beta_max)
    return base if noise == "white" else CorrelatedNoise(base, noise, kernel_scale, time_dim=1)


class StochasticProcessDiffusion(DiffusionModule):
    """Forecasting / imputation with GP-, OU- or white-noise diffusion and a CSDI-style denoiser.

    Args:
        network: the denoiser, called ``network(x_t, t, cond, cond_mask, times, calendar)``
            (:class:`~difflab.timeseries.networks.csdi.CSDIDenoiser`).
        noise: ``gp``, ``ou`` or ``white``.
        kernel_scale: GP length scale ``sigma`` or OU rate ``theta``, in steps of the series' frequency.
        diffusion: ``discrete`` (DSPD) or ``continuous`` (CSPD).
        num_steps: ``K`` of the discrete chain.
        beta_start, beta_end: discrete betas (``beta_end`` None: ``20 / K``, SPD's choice, capped at 0.5
            so that short chains stay valid).
        beta_min, beta_max: the continuous VP SDE's beta range.
        optimizer, lr_scheduler, lr_interval: see :class:`~difflab.core.lightning.DiffusionModule`.
        sampler, sample_steps, sampler_options: core sampler used for forecasts (``sample_steps``
            None: ``K`` for discrete, 50 for continuous). On the discrete chain the DDPM / DDIM family
            runs on the chain's integer steps (``DiscreteVP.default_grid``).
        ddpm_variance: the ``ddpm`` sampler's fresh-noise variance: ``fixed_large`` (``beta_k``, SPD's
            ``sqrt(beta) xi``; the default) or ``fixed_small`` (DDPM's posterior ``beta-tilde``, which
            narrows the samples of a 50-step chain by about 8 % in std even with an exact denoiser).
        num_samples: sample paths per forecast (test / predict).
        val_samples: sample paths for the validation CRPS (first validation batch; 0 disables it).
        sample_chunk: most windows x samples denoised at once (memory bound).
        context_length, prediction_length: the window lengths of the training data (the data decides;
            forecasts default to them, and any other lengths work).
        frequency: the pandas frequency of the training series (the data decides; other data must have it).
        series_names: the names of the ``D`` training series, in the network's order (the data decides).
        test_nll_steps: RK4 steps of the PF-ODE likelihood logged by ``test`` as ``test/nll`` (nats per
            forecast value, data units) and ``test/nll_scaled`` (per-window scaled units); 0: not
            computed. Cost per test batch: ``4 * test_nll_steps`` network evaluations and backward
            passes (one Hutchinson probe).
        series_independent: a univariate model (``num_series = 1``) applied to every series of a file
            on its own (the shipped default): ``forecast`` takes any number of series, of any names,
            each scaled by its own context, instead of refusing a file whose series differ from the
            training data's.

    The command line links the last four, and the network's ``num_series``, from the data module
    (:mod:`~difflab.timeseries.models.data_settings`); a model built in Python takes them from the
    data module of its first ``fit`` where they are not given.
    """

    FIXED_LENGTHS = False
    """True for a model that forecasts only the window lengths it was trained for."""

    def __init__(
        self,
        network: nn.Module,
        noise: NoiseKind = "gp",
        kernel_scale: float = 2.0,
        diffusion: DiffusionKind = "discrete",
        num_steps: int = 50,
        beta_start: float = 1e-4,
        beta_end: float | None = None,
        beta_min: float = 0.1,
        beta_max: float = 20.0,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        lr_interval: Literal["step", "epoch"] = "step",
        sampler: SamplerName = "ddpm",
        sample_steps: int | None = None,
        sampler_options: dict[str, Any] | None = None,
        ddpm_variance: Literal["fixed_small", "fixed_large"] = "fixed_large",
        num_samples: int = 100,
        val_samples: int = 16,
        sample_chunk: int = 512,
        context_length: int | None = None,
        prediction_length: int | None = None,
        frequency: str | None = None,
        series_names: list[str] | None = None,
        test_nll_steps: int = 0,
        series_independent: bool = False,
    ) -> None:
        name = type(self).__name__
        _check_sampling(name, test_nll_steps, num_samples, ddpm_variance)
        process = forecast_process(
            name, noise, kernel_scale, diffusion, num_steps, beta_start, beta_end, beta_min, beta_max
        )
        steps = sample_steps or (num_steps if diffusion == "discrete" else 50)
        super().__init__(
            network,
            process,
            "eps",
            optimizer,
            lr_scheduler,
            lr_interval,
            1,
            None if diffusion == "continuous" else 1.0 / num_steps,
            sampler,
            steps,
            sampler_options,
            0,
        )
        self.noise_kind, self.kernel_scale = noise, kernel_scale
        self.diffusion_kind, self.num_steps = diffusion, num_steps
        self.num_samples, self.val_samples, self.sample_chunk = num_samples, val_samples, sample_chunk
        self.ddpm_variance = ddpm_variance
        self.context_length, self.prediction_length = context_length, prediction_length
        self.frequency = frequency
        self.series_names = None if series_names is None else [str(x) for x in series_names]
        self._bound_key: tuple | None = None
        self._bound = None
        self._test_out: list[dict[str, np.ndarray]] = []
        self.test_nll_steps, self.series_independent = test_nll_steps, bool(series_independent)

    # ------------------------------------------------------------------ what the data decides
    def setup(self, stage: str) -> None:
        """Record the data module's settings that the model does not have yet (a model built in Python)."""
        super().setup(stage)
        data = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        if data is None:
            return
        for name, source in DATA_SOURCES.items():
            value = getattr(data, source, None)
            if getattr(self, name) is None and value is not None:
                setattr(self, name, value)
                self.hparams[name] = value
                if getattr(self, "_hparams_initial", None) is not None:  # what the loggers record
                    self._hparams_initial[name] = value

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse a checkpoint trained on other data than the trainer's data module (other series,
        frequency, or window lengths of a model fixed to them) in one line, before its weights load."""
        super().on_load_checkpoint(checkpoint)
        data = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        if data is None:
            return
        check_test_data(
            recorded_settings(checkpoint.get("hyper_parameters") or {}),
            model_settings(self),
            getattr(data, "dataset", None),
            self.FIXED_LENGTHS,
        )

    # ------------------------------------------------------------------ process bound to timestamps
    def process_for(self, times: Tensor):
        """The process with its noise bound to ``times`` ``(B, L)`` (shared rows bind once, cached)."""
        if self.noise_kind == "white":
            return self.process
        shared = bool((times == times[:1]).all())
        key_t = times[0] if shared else times
        key = (shared, tuple(key_t.shape), key_t.detach().cpu().numpy().tobytes())
        if key != self._bound_key:
            self._bound = self.process.with_times(key_t.detach().to(torch.float64))
            self._bound_key = key
        return self._bound

    # ------------------------------------------------------------------ decomposition hook
    def mean_component(self, batch: dict[str, Tensor]) -> Tensor | None:
        """A deterministic mean ``(B, L, D)`` subtracted before diffusion (None: no decomposition)."""
        return None

    def extra_loss(self, batch: dict[str, Tensor], mean: Tensor | None) -> Tensor | None:
        """A loss added to the diffusion loss (the decomposition's backbone regression)."""
        return None

    # ------------------------------------------------------------------ network and loss
    def call_network(self, x_t: Tensor, t: Tensor, batch: dict[str, Tensor], cond: Tensor) -> Tensor:
        return self.network(x_t, t, cond, batch["cond_mask"], batch["times"], batch.get("calendar"))

    def training_loss(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> Tensor:
        x0 = batch["x0"]
        mean = self.mean_component(batch)
        r0 = x0 if mean is None else x0 - mean.detach()  # the mean is fitted by extra_loss only
        process = self.process_for(batch["times"])
        t = self.sample_time(r0, generator)
        # the noise is drawn on CPU-float64 kernels inside colour(); generator must match the data device
        x_t, eps = process.sample_marginal(r0, t, generator=generator)
        out = self.call_network(x_t, t, batch, r0)
        m = batch["target_mask"]
        loss = ((out - eps) ** 2 * m).sum() / m.sum().clamp_min(1.0)
        extra = self.extra_loss(batch, mean)
        return loss if extra is None else loss + extra

    # ------------------------------------------------------------------ forecasting
    def make_denoiser(self, batch: dict[str, Any] | None = None, y: Tensor | None = None) -> Denoiser:
        """The network on a forecast batch (its ``given`` values ``(B, L, D)`` are the condition)
        for the process bound to the batch's ``times``; with a ``moving`` mask ``(B, L, D)`` in the
        batch, only those cells move (:class:`FixedCells`, for the likelihood)."""
        if batch is None or "given" not in batch or "times" not in batch:
            raise ValueError(f"{type(self).__name__} samples a batch with 'given' values and 'times'")
        process = self.process_for(batch["times"])
        return Denoiser(
            lambda x_t, t: self.call_network(x_t, t, batch, batch["given"]),
            process if "moving" not in batch else FixedCells(process, batch["moving"]),
            self.prediction,
            clip_x0=self.clip_x0,
        )

    def forecast_log_likelihood(
        self,
        batch: dict[str, Tensor],
        *,
        steps: int = 32,
        divergence: Literal["exact", "hutchinson"] = "hutchinson",
        probes: int = 1,
        generator: torch.Generator | None = None,
        callback: Callable[[dict[str, Any]], None] | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        r"""``(log p, log p scaled, n)`` per window ``(B,)``: the log-density in nats of the window's
        generated cells ``G`` (``cond_mask = 0``: the horizon of a forecast) given its given cells, in
        data units and in the window's scaled units, and the number of cells ``n = |G|``.

        The PF-ODE of :meth:`~difflab.core.lightning.DiffusionModule.log_likelihood` moves the cells
        ``G`` only (module docstring) from ``t_eps`` to 1, with the prior
        :func:`masked_prior_log_prob`. A decomposition's mean depends on the given cells only, so it
        shifts without changing the density; data units add ``-sum_G log scale``.
        ``log p`` is NaN for a window with a missing value among ``G`` (it would have to be
        marginalised out).
        """
        x0, cm = batch["x0"], batch["cond_mask"]
        mean = self.mean_component(batch)
        r0 = x0 if mean is None else x0 - mean
        moving = (1 - cm).to(r0.dtype)
        process = self.process_for(batch["times"])
        part = {**batch, "x0": r0, "given": r0, "moving": moving}
        log_p = self.log_likelihood(
            part,
            steps=steps,
            divergence=divergence,
            probes=probes,
            prior_log_prob=lambda z, t: masked_prior_log_prob(process, z, t, moving),
            generator=generator,
            callback=callback,
        )
        missing = ((moving > 0) & (batch["target_mask"] <= 0)).flatten(1).any(1)
        log_p = torch.where(missing, torch.full_like(log_p, float("nan")), log_p)
        log_scale = (moving * expand_like(batch["scale"], x0).log()).flatten(1).sum(1)
        return log_p - log_scale, log_p, moving.flatten(1).sum(1)

    def sampler_kwargs(self, name: SamplerName, options: dict[str, Any]) -> dict[str, Any]:
        """The module's sampler options; ``ddpm`` draws fresh noise of variance ``ddpm_variance``."""
        opts = super().sampler_kwargs(name, options)
        if name == "ddpm":
            opts.setdefault("variance", self.ddpm_variance)
        return opts

    @torch.no_grad()
    def forecast(
        self,
        batch: dict[str, Tensor],
        num_samples: int | None = None,
        *,
        sampler: SamplerName | None = None,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        callback: Callable[[dict[str, Any]], None] | None = None,
    ) -> Tensor:
        """Sample paths of the whole window in *scaled* units, given cells kept: ``(S, B, L, D)``.

        The ``B * S`` windows are sampled ``sample_chunk`` at a time by core's
        :meth:`~difflab.core.lightning.DiffusionModule.sample`; ``callback`` is the sampler's, called
        after every step of every chunk (``{"step", "t", "x", "x0"}``)."""
        s = num_samples or self.num_samples
        x0 = batch["x0"]
        b = x0.shape[0]
        mean = self.mean_component(batch)
        r0 = x0 if mean is None else x0 - mean
        name = sampler or self.sampler_name
        n = steps or self.sample_steps
        rep = {
            k: v.repeat_interleave(s, dim=0) if isinstance(v, Tensor) and v.shape[:1] == (b,) else v
            for k, v in batch.items()
        }
        rep["given"] = r0.repeat_interleave(s, dim=0)
        outs = []
        for lo in range(0, b * s, self.sample_chunk):
            hi = min(lo + self.sample_chunk, b * s)
            part = {k: (v[lo:hi] if isinstance(v, Tensor) and v.shape[:1] == (b * s,) else v) for k, v in rep.items()}
            res = self.sample(
                part["given"].shape, batch=part, sampler=name, steps=n, generator=generator, callback=callback
            )
            outs.append(res.sample)
        r = torch.cat(outs).reshape(b, s, *x0.shape[1:]).transpose(0, 1)
        r = torch.where(batch["cond_mask"][None] > 0, r0[None], r)
        return r if mean is None else r + mean[None]

    @staticmethod
    def unscale(x: Tensor, batch: dict[str, Tensor]) -> Tensor:
        """Scaled values ``(..., B, L, D)`` back to data units."""
        return x * batch["scale"] + batch["loc"]

    def _score(self, samples: Tensor, batch: dict[str, Tensor]) -> dict[str, np.ndarray]:
        y = self.unscale(batch["x0"], batch)
        return {
            "samples": self.unscale(samples, batch).cpu().numpy(),
            "target": y.cpu().numpy(),
            "mask": batch["target_mask"].cpu().numpy(),
        }

    # ------------------------------------------------------------------ Lightning steps
    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        loss = self.training_loss(batch, self.noise_generator(NoiseStream.VAL, batch_idx))
        bs = batch["x0"].shape[0]
        self.log("val/loss", loss, prog_bar=True, batch_size=bs)
        if batch_idx == 0 and self.val_samples > 0:
            samples = self.forecast(batch, self.val_samples, generator=self.noise_generator(NoiseStream.SAMPLE, 0))
            r = self._score(samples, batch)
            m = metric_table(r["samples"], r["target"], r["mask"])
            self.log("val/crps", m["crps"], prog_bar=True, batch_size=bs)
            self.log("val/cov90", m["cov90"], batch_size=bs)
        return loss

    def on_test_epoch_start(self) -> None:
        self._test_out = []

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        loss = self.training_loss(batch, self.noise_generator(NoiseStream.TEST, batch_idx))
        self.log("test/loss", loss, batch_size=batch["x0"].shape[0])
        samples = self.forecast(batch, generator=self.noise_generator(NoiseStream.SAMPLE, batch_idx))
        self._test_out.append(self._score(samples, batch))
        if self.test_nll_steps > 0:
            g = self.noise_generator(NoiseStream.TEST, batch_idx, 1)
            log_p, log_p_scaled, n = self.forecast_log_likelihood(batch, steps=self.test_nll_steps, generator=g)
            self._test_out[-1]["nll"] = torch.stack([-log_p, -log_p_scaled, n]).cpu().numpy()
        return loss

    def on_test_epoch_end(self) -> None:
        if not self._test_out:
            return
        s = np.concatenate([o["samples"] for o in self._test_out], axis=1)
        y = np.concatenate([o["target"] for o in self._test_out], axis=0)
        m = np.concatenate([o["mask"] for o in self._test_out], axis=0)
        for key, value in metric_table(s, y, m).items():
            self.log(f"test/{key}", value)
        if self.test_nll_steps > 0:
            self._log_test_nll(np.concatenate([o["nll"] for o in self._test_out], axis=1))
        self.test_results = {"samples": s, "target": y, "mask": m}

    def _log_test_nll(self, nll: np.ndarray) -> None:
        """``test/nll`` and ``test/nll_scaled``: nats per forecast value over the windows without a
        missing value in their horizon (a warning counts the others)."""
        ok = np.isfinite(nll[0])
        if not ok.all():
            warnings.warn(
                f"test/nll: {int((~ok).sum())} of {ok.size} windows have missing horizon values and are left out",
                stacklevel=2,
            )
        if ok.any():
            n = nll[2, ok].sum()
            self.log("test/nll", float(nll[0, ok].sum() / n))
            self.log("test/nll_scaled", float(nll[1, ok].sum() / n))

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """Sample paths in data units ``(S, B, L, D)``."""
        return self.unscale(self.forecast(batch, generator=self.noise_generator(NoiseStream.PREDICT, batch_idx)), batch)


__all__ = ["StochasticProcessDiffusion", "NoiseKind", "DiffusionKind"]
