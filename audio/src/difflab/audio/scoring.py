"""Scoring a trained enhancer beside the input and the classical baselines on sets of mixtures.

A *system* maps a noisy waveform ``(L,)`` at 16 kHz to an estimate ``(L,)``: the classical
baselines (:mod:`difflab.audio.baselines`), a model with a sampling (:func:`enhance_wave`), or a
StoRM model's predictor stage alone. :func:`score_systems` runs every system on every mixture of
a set ``[(clean, noisy, label)]`` and returns PESQ (wb) / ESTOI / SI-SDR (mean, std, n) and the
real-time factor (seconds of compute per second of audio, one CPU thread) per system.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import Tensor

System = Callable[[Tensor], Tensor]
"""A noisy waveform ``(L,)`` -> its estimate ``(L,)``."""


@torch.no_grad()
def enhance_wave(model, noisy: Tensor, option: tuple[str, int | None], seed: int = 0) -> Tensor:
    """``model``'s estimate of one waveform ``(L,)``. ``option``: ``("predictor", 1)`` is a StoRM
    model's predictor ``y_hat = D(y)`` alone (or a predictive model's one pass); otherwise
    ``(sampler, steps)`` (``(None, None)``: the model's own defaults)."""
    model.eval()
    if option[0] == "predictor":
        batch = model.prepare_batch({"noisy": noisy[None].float()})
        estimate = model.predict_mean if hasattr(model, "predict_mean") else model.estimate
        return model.spec.spec_to_wav(estimate(batch["y"]), noisy.shape[0])[0] * batch["norm"][0]
    gen = torch.Generator().manual_seed(seed)
    return model.enhance(noisy.float(), sampler=option[0], steps=option[1], generator=gen)


def option_label(option: tuple[str, int | None], name: str = "storm") -> str:
    """``predictor`` or ``<name> <sampler> <steps>``."""
    if option[0] == "predictor":
        return "predictor"
    return f"{name} {option[0]} {option[1]}" if option[0] is not None else name


def classical_systems() -> dict[str, System]:
    """The Wiener filter (decision-directed) and the stationary spectral gate at their defaults."""
    from difflab.audio.baselines import spectral_gate, wiener_filter

    return {"Wiener filter": wiener_filter, "spectral gate": spectral_gate}


def model_system(model, option: tuple[str, int | None], seed: int = 0) -> System:
    """The system of ``model`` with ``option`` (see :func:`enhance_wave`)."""
    return lambda noisy: enhance_wave(model, noisy, option, seed)


def run_systems(
    systems: dict[str, System], noisy: list[Tensor], sample_rate: int = 16000
) -> tuple[dict[str, list[Tensor]], dict[str, float]]:
    """``({system: [estimate per input]}, {system: RTF})`` of every system on the inputs ``noisy``."""
    audio_s = sum(n.shape[0] for n in noisy) / sample_rate
    outputs, rtf = {}, {}
    for name, fn in systems.items():
        t0 = time.perf_counter()
        outputs[name] = [fn(n) for n in noisy]
        rtf[name] = (time.perf_counter() - t0) / audio_s
    return outputs, rtf


def score_systems(
    systems: dict[str, System], mixtures: list[tuple[Tensor, Tensor, str]], sample_rate: int = 16000
) -> tuple[dict[str, dict[str, tuple[float, float, int]]], dict[str, float]]:
    """``(metric table, {system: RTF})`` of every system on ``mixtures``; the table has the
    unprocessed input first (:func:`difflab.audio.metrics.evaluate`)."""
    from difflab.audio.metrics import evaluate

    noisy = [n for _, n, _ in mixtures]
    outputs, rtf = run_systems(systems, noisy, sample_rate)
    return evaluate(outputs, [c for c, _, _ in mixtures], noisy, sample_rate), rtf


def mean_table(table: dict[str, dict[str, tuple[float, float, int]]]) -> dict[str, dict[str, float]]:
    """The means of a metric table, ``{system: {metric: mean}}`` (JSON-friendly)."""
    return {k: {m: round(v[0], 4) for m, v in row.items()} for k, row in table.items()}


__all__ = [
    "System",
    "classical_systems",
    "enhance_wave",
    "mean_table",
    "model_system",
    "option_label",
    "run_systems",
    "score_systems",
]
