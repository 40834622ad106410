"""Sampling-time accelerators and corrections that wrap a trained denoiser, one module per method.

* :mod:`~difflab.core.accelerate.step_skipping`: AdaptiveDiffusion's training-free skipping of network
  calls by the third-order latent difference (:class:`AdaptiveSkipDenoiser`, :func:`sample_skipping`).
* :mod:`~difflab.core.accelerate.calibration`: score calibration by the mean noise prediction
  (Pang et al. 2023: :func:`estimate_eps_mean`, :class:`CalibratedDenoiser`).
* :mod:`~difflab.core.accelerate.quantization`: PTQ4DM int8 post-training quantization with a
  time-step-aware calibration set (:func:`collect_calibration_inputs`, :func:`quantize_denoiser`).
* :mod:`~difflab.core.accelerate.feature_cache`: block-output reuse across adjacent calls with a
  schedule chosen by profiling each block's change (:class:`FeatureCache`, :func:`profile_and_plan`,
  :func:`sample_cached`).
* :mod:`~difflab.core.accelerate.noise_unconditional`: the noise-unconditional option
  (:class:`NoiseUnconditional`) and the Bayes-optimal noise-unconditional model of a Gaussian mixture.

Every wrapper is a :class:`~difflab.core.samplers.base.Denoiser` or a network, so any core sampler
runs on it unchanged. The modules import torch only (``torch.ao`` where quantizing).
"""

from difflab.core.accelerate.calibration import CalibratedDenoiser, CalibratedModel, EpsMeanTable, estimate_eps_mean
from difflab.core.accelerate.feature_cache import (
    CachedDenoiser,
    FeatureCache,
    cache_blocks,
    profile_and_plan,
    sample_cached,
)
from difflab.core.accelerate.noise_unconditional import (
    NoiseUnconditional,
    noise_level_posterior,
    noise_unconditional_oracle,
)
from difflab.core.accelerate.quantization import (
    QuantizedNetwork,
    collect_calibration_inputs,
    model_size_bytes,
    quantize_denoiser,
    quantize_network,
)
from difflab.core.accelerate.step_skipping import AdaptiveSkipDenoiser, sample_skipping

__all__ = [
    "AdaptiveSkipDenoiser",
    "CachedDenoiser",
    "CalibratedDenoiser",
    "CalibratedModel",
    "EpsMeanTable",
    "FeatureCache",
    "NoiseUnconditional",
    "QuantizedNetwork",
    "cache_blocks",
    "collect_calibration_inputs",
    "estimate_eps_mean",
    "model_size_bytes",
    "noise_level_posterior",
    "noise_unconditional_oracle",
    "profile_and_plan",
    "quantize_denoiser",
    "quantize_network",
    "sample_cached",
    "sample_skipping",
]
