r"""Speech-enhancement metrics as the field reports them: PESQ (wideband), ESTOI and SI-SDR.

All three go through ``torchmetrics.functional.audio`` (which wraps the ``pesq`` and ``pystoi``
packages; argument order *prediction first*), one utterance at a time, and are reported as the
per-utterance mean and standard deviation:

* **PESQ** (ITU-T P.862.2 wideband) at 16 kHz; other rates are resampled to 16 kHz first. An
  utterance that PESQ rejects (no speech found, too short) gives NaN and is left out of the mean
  (the count is reported).
* **ESTOI** (Jensen & Taal 2016; ``pystoi`` with ``extended=True``) at the signal's own rate.
* **SI-SDR** (Le Roux et al. 2019): ``10 log10(|a s|^2 / |a s - s_hat|^2)`` with
  ``a = <s_hat, s> / |s|^2``, no mean removal (``zero_mean=False``, as SGMSE+ reports it).

:func:`evaluate` scores enhanced signals *and* the unprocessed input against the clean reference,
so every table shows the improvement.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from difflab.core.tables import markdown_table

METRICS = ("pesq", "estoi", "si_sdr")


def _as_tensor(x: Tensor | np.ndarray) -> Tensor:
    return torch.as_tensor(x, dtype=torch.float64).flatten()


def si_sdr(pred: Tensor | np.ndarray, target: Tensor | np.ndarray) -> float:
    """SI-SDR in dB of one utterance ``(L,)`` (no mean removal)."""
    from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio

    p, t = _as_tensor(pred), _as_tensor(target)
    return float(scale_invariant_signal_distortion_ratio(p, t, zero_mean=False))


def pesq_wb(pred: Tensor | np.ndarray, target: Tensor | np.ndarray, sample_rate: int = 16000) -> float:
    """Wideband PESQ (MOS-LQO) of one utterance; NaN when PESQ finds no utterance in it."""
    try:
        from torchmetrics.functional.audio.pesq import perceptual_evaluation_speech_quality
    except ImportError as err:  # pragma: no cover
        raise ImportError("PESQ needs the pesq package: pip install 'difflab-audio[metrics]'") from err
    p, t = _as_tensor(pred).float(), _as_tensor(target).float()
    if sample_rate != 16000:
        from difflab.audio.data.io import resample

        p, t = resample(p, sample_rate, 16000), resample(t, sample_rate, 16000)
    try:
        return float(perceptual_evaluation_speech_quality(p, t, 16000, "wb"))
    except Exception as err:  # pesq's NoUtterancesError / BufferTooShortError
        warnings.warn(f"PESQ could not score an utterance ({type(err).__name__}: {err}); counted as NaN", stacklevel=2)
        return math.nan


def estoi(pred: Tensor | np.ndarray, target: Tensor | np.ndarray, sample_rate: int = 16000) -> float:
    """Extended STOI of one utterance at ``sample_rate``."""
    from torchmetrics.functional.audio.stoi import short_time_objective_intelligibility

    p, t = _as_tensor(pred).float(), _as_tensor(target).float()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(short_time_objective_intelligibility(p, t, sample_rate, extended=True))


def pause_noise(
    pred: Tensor | np.ndarray,
    target: Tensor | np.ndarray,
    sample_rate: int = 16000,
    frame_s: float = 0.032,
    floor_db: float = -40.0,
) -> float:
    """Residual energy in the speech pauses of one utterance, in dB relative to the clean energy.

    The pauses are the frames (``frame_s`` long, not overlapping) of the clean reference whose
    energy is more than ``-floor_db`` dB below its loudest frame;
    ``10 log10(sum over pauses of pred^2 / sum of target^2)``. Lower is better: it measures the
    noise an enhancer leaves where there is no speech (the quantity that generative enhancement is
    said to clean up best), independently of how the speech itself is reproduced. NaN without pauses.
    """
    p, t = _as_tensor(pred), _as_tensor(target)
    n = min(p.numel(), t.numel())
    p, t = p[:n], t[:n]
    size = max(int(round(frame_s * sample_rate)), 1)
    if n < size:
        return math.nan
    ft, fp = t.unfold(0, size, size).pow(2).sum(-1), p.unfold(0, size, size).pow(2).sum(-1)
    pauses = ft < ft.max() * 10 ** (floor_db / 10)
    if not bool(pauses.any()):
        return math.nan
    return float(10 * torch.log10(fp[pauses].sum().clamp_min(1e-20) / t.pow(2).sum().clamp_min(1e-20)))


def score(
    pred: Tensor | np.ndarray, target: Tensor | np.ndarray, sample_rate: int = 16000, metrics: Sequence[str] = METRICS
) -> dict[str, float]:
    """The chosen metrics of one utterance ``(L,)`` against its clean reference (:data:`METRICS`,
    and ``pause_noise``: :func:`pause_noise`)."""
    fns = {
        "pesq": lambda: pesq_wb(pred, target, sample_rate),
        "estoi": lambda: estoi(pred, target, sample_rate),
        "si_sdr": lambda: si_sdr(pred, target),
        "pause_noise": lambda: pause_noise(pred, target, sample_rate),
    }
    unknown = set(metrics) - set(fns)
    if unknown:
        raise ValueError(f"unknown metrics {sorted(unknown)}; expected a subset of {sorted(fns)}")
    return {m: fns[m]() for m in metrics}


def summarise(values: Sequence[float]) -> tuple[float, float, int]:
    """``(mean, std, count)`` over the finite values."""
    arr = np.asarray([v for v in values if np.isfinite(v)], dtype=np.float64)
    if arr.size == 0:
        return math.nan, math.nan, 0
    return float(arr.mean()), float(arr.std()), int(arr.size)


def evaluate(
    enhanced: dict[str, Sequence[Tensor | np.ndarray]],
    clean: Sequence[Tensor | np.ndarray],
    noisy: Sequence[Tensor | np.ndarray] | None = None,
    sample_rate: int = 16000,
    metrics: Sequence[str] = METRICS,
) -> dict[str, dict[str, tuple[float, float, int]]]:
    """Score several systems on the same utterances.

    Args:
        enhanced: ``{system name: [enhanced waveform (L_i,) per utterance]}``.
        clean: the clean references ``[(L_i,)]``.
        noisy: the unprocessed inputs; if given they are scored as the system ``unprocessed``.
    Returns:
        ``{system: {metric: (mean, std, n)}}``, ``unprocessed`` first.
    """
    systems = ({"unprocessed": noisy} if noisy is not None else {}) | dict(enhanced)
    out: dict[str, dict[str, tuple[float, float, int]]] = {}
    for name, signals in systems.items():
        if len(signals) != len(clean):
            raise ValueError(f"system {name!r} has {len(signals)} signals for {len(clean)} references")
        per = [score(s, c, sample_rate, metrics) for s, c in zip(signals, clean)]
        out[name] = {m: summarise([p[m] for p in per]) for m in metrics}
    return out


def format_table(
    results: dict[str, dict[str, tuple[float, float, int]]], extra: dict[str, dict[str, str]] | None = None
) -> str:
    """A Markdown table ``system | PESQ | ESTOI | SI-SDR (dB) [| extra columns]`` with mean ± std."""
    names = {"pesq": "PESQ (wb)", "estoi": "ESTOI", "si_sdr": "SI-SDR (dB)", "pause_noise": "pause noise (dB)"}
    metrics = list(next(iter(results.values())).keys()) if results else []
    extra_cols = sorted({k for v in (extra or {}).values() for k in v})
    head = ["system", *[names.get(m, m) for m in metrics], *extra_cols]
    rows = []
    for system, vals in results.items():
        cells = [system]
        for m in metrics:
            mean, std, _ = vals[m]
            cells.append(f"{mean:.2f} ± {std:.2f}" if m != "estoi" else f"{mean:.3f} ± {std:.3f}")
        cells += [(extra or {}).get(system, {}).get(c, "") for c in extra_cols]
        rows.append(cells)
    return markdown_table(rows, head)


LABELS = {"pesq": "PESQ", "estoi": "ESTOI", "si_sdr": "SI-SDR"}


def comparison_line(metrics: dict, stage: str, names: Sequence[str]) -> str:
    """``stage: PESQ 2.31 (unprocessed 1.97), ...``: each logged ``stage/<name>`` beside
    ``stage/input_<name>``; "" when none of them was logged."""
    cells = []
    for name in names:
        ours, base = metrics.get(f"{stage}/{name}"), metrics.get(f"{stage}/input_{name}")
        if ours is None or base is None:
            continue
        unit = " dB" if name == "si_sdr" else ""
        label = LABELS.get(name, name)
        cells.append(f"{label} {float(ours):.3f}{unit} (unprocessed {float(base):.3f}{unit})")
    return f"{stage}: " + ", ".join(cells) if cells else ""


__all__ = [
    "LABELS",
    "METRICS",
    "comparison_line",
    "estoi",
    "evaluate",
    "format_table",
    "pause_noise",
    "pesq_wb",
    "score",
    "si_sdr",
    "summarise",
]
