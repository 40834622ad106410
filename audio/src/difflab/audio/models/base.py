r"""``SpeechEnhancer``: what every speech-enhancement method of difflab.audio shares.

A subclass of :class:`~difflab.core.lightning.DiffusionModule` that works on waveforms:

* :meth:`~SpeechEnhancer.on_after_batch_transfer` turns the data modules' waveform batches into
  the core batch contract. Both signals are divided by the noisy signal's peak (SGMSE+'s
  normalisation) and mapped to compressed complex spectrograms by
  :class:`~difflab.audio.spectral.SpecTransform`:

  ==========  ===================  ==========================================================
  key         shape                meaning
  ==========  ===================  ==========================================================
  ``clean``   ``(B, L)``           clean waveform (from the data module; absent in inference)
  ``noisy``   ``(B, L)``           degraded waveform
  ``length``  ``(B,)``             valid samples of each item
  ``norm``    ``(B,)``             ``max |noisy|`` of each item (added here)
  ``y``       ``(B, 2, F, T)``     compressed spectrogram of ``noisy / norm`` (added here)
  ``x0``      ``(B, 2, F, T)``     compressed spectrogram of ``clean / norm`` (added here)
  ==========  ===================  ==========================================================

* :meth:`~SpeechEnhancer.enhance_spec` maps ``y`` to the estimate of ``x0`` (the diffusion methods
  through core's :meth:`~difflab.core.lightning.DiffusionModule.sample`);
  :meth:`~SpeechEnhancer.enhance` does the same on waveforms.
* Validation and test enhance whole files and log PESQ (wb), ESTOI and SI-SDR of the output and
  of the unprocessed input (``input_pesq``...), so the improvement is visible in every log; the
  first validation file's before / after spectrograms go to the logger.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from difflab.audio.spectral import SpecTransform
from difflab.core.lightning import DiffusionModule, eval_mode
from difflab.core.parameterization import edm_loss_weight, precondition_x0
from difflab.core.processes import OUVESDE
from difflab.core.samplers.base import SampleResult
from difflab.core.samplers.select import SamplerName

SQRT_HALF = 0.5**0.5
PC_SNR = 0.5
"""SGMSE+'s Langevin corrector signal-to-noise ratio, the default of the ``pc`` sampler in audio."""

PREDICTIONS = ("eps", "x0", "x0_precond", "x0_residual")


def complex_ouve(theta: float, sigma_min: float, sigma_max: float, t_eps: float) -> OUVESDE:
    """SGMSE+'s OUVE SDE acting on real / imaginary channels.

    SGMSE+ adds *complex* Gaussian noise of variance ``sigma^2`` (``sigma^2 / 2`` per real and
    imaginary part). On the real channel representation that is real noise of std ``sigma / sqrt 2``,
    and since the OUVE variance is proportional to ``sigma_min^2`` at a fixed ratio
    ``sigma_max / sigma_min``, it is exactly :class:`~difflab.core.processes.OUVESDE` with both
    sigmas divided by ``sqrt 2``.
    """
    return OUVESDE(theta=theta, sigma_min=sigma_min * SQRT_HALF, sigma_max=sigma_max * SQRT_HALF, t_min=t_eps)


def tile(cond: Tensor, x: Tensor) -> Tensor:
    """``cond`` repeated along the batch to match ``x`` (samplers such as ParaDiGMS batch several
    time positions of each example into one network call)."""
    if cond.shape[0] == x.shape[0]:
        return cond
    return cond.repeat(x.shape[0] // cond.shape[0], *([1] * (cond.ndim - 1)))


class SpeechEnhancer(DiffusionModule):
    """Base class of the audio methods (the CLI's ``model.class_path`` picks a subclass).

    Args:
        network: the network (see each method for its input channels).
        theta, sigma_min, sigma_max, t_eps: the OUVE SDE (SGMSE+: 1.5, 0.05, 0.5, 0.03).
        sampler: core sampler name (``pc`` = reverse diffusion + annealed Langevin corrector).
        sample_steps: sampler steps ``N``.
        sampler_options: options of the default sampler (``pc`` gets ``snr`` :data:`PC_SNR` unless given).
        n_fft, hop_length, spec_alpha, spec_beta: the STFT and its amplitude compression.
        sample_rate: the model's rate (the data module must match).
        val_enhance_batches: validation batches enhanced and scored per epoch (test: all).
        val_metrics: metrics logged in validation / test (``pesq``, ``estoi``, ``si_sdr``).
        optimizer, lr_scheduler, lr_interval: as in :class:`~difflab.core.lightning.DiffusionModule`.
        prediction: what the score network outputs: ``eps`` (the noise ``z``; score ``-net / s(t)``,
            SGMSE+'s score matching), ``x0`` (the clean spectrogram, a data-prediction variant in
            the spirit of SGMSE's later ``ncsnpp_v2`` backbone; score ``-(x_t - mu(net, y, t)) / s^2``)
            or ``x0_precond``: the clean spectrogram with EDM's preconditioning (Karras et al. 2022)
            ``x0_hat = c_skip (x_t - b y)/a + c_out net`` at the VE noise level ``sigma = s/a``,
            ``c_skip = sd^2/(sigma^2+sd^2)``, ``c_out = sigma sd/sqrt(sigma^2+sd^2)``, loss weight
            ``1/c_out^2`` (so the regression target of ``net`` has unit scale; the skip makes the
            small-``t`` estimate the input itself).
            ``x0_residual``: the same preconditioning applied to the residual ``x0 - y`` around the
            process's condition ``y`` (the noisy spectrogram for SGMSE+, the predictor's estimate for
            StoRM): ``x0_hat = y + c_skip ((x_t - b y)/a - y) + c_out net``, so that a zero network
            output returns ``y`` at large ``t`` and the nearly clean input at small ``t``.
        sigma_data: ``sd`` of ``x0_precond`` (std of a real/imaginary part of the compressed clean
            spectrogram, about 0.09 for peak-normalised speech) or of the residual for
            ``x0_residual`` (measured: 0.072 for ``x0 - y`` on the default data, 0.045 for
            ``x0 - y_hat`` of the demo's predictor).
    """

    DATA_SETTINGS = {"sample_rate": "the model works at {} Hz"}  # the data decides the sample rate

    def __init__(
        self,
        network: nn.Module,
        theta: float = 1.5,
        sigma_min: float = 0.05,
        sigma_max: float = 0.5,
        t_eps: float = 0.03,
        sampler: SamplerName = "pc",
        sample_steps: int = 30,
        sampler_options: dict[str, Any] | None = None,
        n_fft: int = 510,
        hop_length: int = 128,
        spec_alpha: float = 0.5,
        spec_beta: float = 0.15,
        sample_rate: int = 16000,
        val_enhance_batches: int = 4,
        val_metrics: list[str] | None = None,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        lr_interval: Literal["step", "epoch"] = "step",
        prediction: Literal["eps", "x0", "x0_precond", "x0_residual"] = "eps",
        sigma_data: float = 0.1,
    ) -> None:
        if prediction not in PREDICTIONS:
            raise ValueError(f"{type(self).__name__}: prediction must be one of {PREDICTIONS}, got {prediction!r}")
        if not sigma_data > 0:
            raise ValueError(f"{type(self).__name__}: sigma_data must be > 0, got {sigma_data}")
        if sampler_options is None:
            sampler_options = {"corrector": "ald"} if sampler == "pc" else {}
        super().__init__(
            network,
            complex_ouve(theta, sigma_min, sigma_max, t_eps),
            "x0" if prediction in ("x0_precond", "x0_residual") else prediction,
            optimizer=optimizer,
            lr_scheduler=lr_scheduler,
            lr_interval=lr_interval,
            t_eps=t_eps,
            sampler=sampler,
            sample_steps=sample_steps,
            sampler_options=sampler_options,
            num_val_samples=0,
        )
        self.precondition = prediction in ("x0_precond", "x0_residual")
        self.residual = prediction == "x0_residual"
        self.sigma_data = float(sigma_data)
        self.spec = SpecTransform(n_fft, hop_length, spec_alpha, spec_beta)
        self.sample_rate = int(sample_rate)
        self.val_enhance_batches = int(val_enhance_batches)
        self.val_metrics = list(val_metrics) if val_metrics is not None else ["pesq", "estoi", "si_sdr"]

    # ------------------------------------------------------------------ preconditioning
    def to_x0(self, out: Tensor, x_t: Tensor, t: Tensor, y: Tensor) -> Tensor:
        """The network output as the core's prediction: ``x0_hat`` of core's EDM preconditioning
        (:func:`~difflab.core.parameterization.precondition_x0`; ``residual`` for ``x0_residual``) with
        ``y`` the process condition (the noisy ``y`` for SGMSE+, ``y_hat`` for StoRM), else ``out`` itself."""
        if not self.precondition:
            return out
        kind = "residual" if self.residual else "x0"
        return precondition_x0(self.process, out, x_t, t, y, self.sigma_data, kind)

    def loss_weight(self, t: Tensor) -> Tensor | None:
        """``1 / c_out^2`` for ``x0_precond`` / ``x0_residual`` (EDM's weighting), else none."""
        return edm_loss_weight(self.process, t, self.sigma_data) if self.precondition else None

    # ------------------------------------------------------------------ batches
    def prepare_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Add ``norm``, ``y`` and (with ``clean``) ``x0`` to a waveform batch (see the module docstring)."""
        if "noisy" not in batch or "y" in batch:
            return batch
        noisy = batch["noisy"]
        norm = noisy.abs().amax(dim=-1).clamp_min(1e-8)
        batch["norm"] = norm
        batch["y"] = self.spec.wav_to_spec(noisy / norm[:, None])
        if "clean" in batch:
            batch["x0"] = self.spec.wav_to_spec(batch["clean"] / norm[:, None])
        return batch

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        return self.prepare_batch(batch) if isinstance(batch, dict) else batch

    # ------------------------------------------------------------------ enhancement
    def sampler_kwargs(self, name: SamplerName, options: dict[str, Any]) -> dict[str, Any]:
        """The module's sampler options, with :data:`PC_SNR` (SGMSE+'s corrector ``snr``) for ``pc`` unless given."""
        opts = super().sampler_kwargs(name, options)
        if name == "pc" and "snr" not in opts:
            opts["snr"] = PC_SNR
        return opts

    def enhance_spec(
        self,
        y: Tensor,
        *,
        sampler: SamplerName | None = None,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> SampleResult:
        """Estimate the clean compressed spectrogram ``(B, 2, F, T)`` from the noisy one ``y``
        (:meth:`~difflab.core.lightning.DiffusionModule.sample` conditioned on ``{"y": y}``)."""
        return self.sample(batch={"y": y}, sampler=sampler, steps=steps, generator=generator, **options)

    @torch.no_grad()
    def enhance(
        self,
        noisy: Tensor,
        *,
        sampler: SamplerName | None = None,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> Tensor:
        """Enhance waveforms ``(B, L)`` (or ``(L,)``) at :attr:`sample_rate`; returns the same shape."""
        single = noisy.ndim == 1
        wav = noisy[None] if single else noisy
        wav = wav.to(self.device, torch.float32)
        batch = self.prepare_batch({"noisy": wav})
        with eval_mode(self):
            result = self.enhance_spec(batch["y"], sampler=sampler, steps=steps, generator=generator, **options)
        out = self.spec.spec_to_wav(result.sample, wav.shape[-1]) * batch["norm"][:, None]
        return out[0] if single else out

    # ------------------------------------------------------------------ evaluation
    def _score_batch(self, batch: dict[str, Any], enhanced: Tensor) -> dict[str, float]:
        from difflab.audio.metrics import score

        lengths = batch.get("length")
        sums: dict[str, list[float]] = {}
        for i in range(enhanced.shape[0]):
            n = int(lengths[i]) if lengths is not None else enhanced.shape[-1]
            clean = batch["clean"][i, :n].cpu()
            for prefix, sig in (("", enhanced[i, :n].cpu()), ("input_", batch["noisy"][i, :n].cpu())):
                for k, v in score(sig, clean, self.sample_rate, self.val_metrics).items():
                    sums.setdefault(prefix + k, []).append(v)
        return {k: float(torch.tensor(v).nanmean()) for k, v in sums.items()}

    def validation_metrics(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Tensor | float]:
        testing = self._trainer is not None and self.trainer.testing
        if not testing and batch_idx >= self.val_enhance_batches:
            return {}
        if "clean" not in batch:
            return {}
        from difflab.core.lightning import NoiseStream

        gen = self.noise_generator(NoiseStream.SAMPLE, batch_idx)
        result = self.enhance_spec(batch["y"], generator=gen)
        wav = self.spec.spec_to_wav(result.sample, batch["noisy"].shape[-1]) * batch["norm"][:, None]
        if batch_idx == 0 and self._trainer is not None and not self.trainer.sanity_checking:
            self.log_samples(result.sample, batch, "test" if testing else "val")
        return self._score_batch(batch, wav)

    def on_validation_end(self) -> None:
        if getattr(self.trainer.state.fn, "value", None) == "validate":  # not the validations inside fit
            self._print_comparison("val")

    def on_test_end(self) -> None:
        self._print_comparison("test")

    def _print_comparison(self, stage: str) -> None:
        """The model's metrics beside the unprocessed input's, in one line on the console."""
        from difflab.audio.metrics import comparison_line

        line = comparison_line(self.trainer.callback_metrics, stage, self.val_metrics)
        if line and self.trainer.is_global_zero:
            print(line, flush=True)

    def log_samples(self, samples: Tensor, batch: dict[str, Any], stage: str) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from difflab.audio.figures import spectrogram_figure

        n = int(batch["length"][0]) if "length" in batch else batch["noisy"].shape[-1]
        wav = self.spec.spec_to_wav(samples[:1], batch["noisy"].shape[-1])[0] * batch["norm"][0]
        panels = {"noisy": batch["noisy"][0, :n], "enhanced": wav[:n]}
        if "clean" in batch:
            panels["clean"] = batch["clean"][0, :n]
        fig = spectrogram_figure(panels, self.sample_rate)
        self.log_figure(f"{stage}/spectrograms", fig)
        plt.close(fig)

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """Enhanced waveforms of a batch: ``{"name": [...], "enhanced": [(L_i,)]}``."""
        from difflab.core.lightning import NoiseStream

        result = self.enhance_spec(batch["y"], generator=self.noise_generator(NoiseStream.PREDICT, batch_idx))
        wav = self.spec.spec_to_wav(result.sample, batch["noisy"].shape[-1]) * batch["norm"][:, None]
        lengths = batch.get("length", torch.full((wav.shape[0],), wav.shape[-1]))
        return {"name": batch.get("name"), "enhanced": [wav[i, : int(n)].cpu() for i, n in enumerate(lengths)]}


__all__ = ["SpeechEnhancer", "complex_ouve", "tile"]
