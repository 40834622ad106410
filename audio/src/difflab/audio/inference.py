"""``difflab-audio enhance``: enhance recordings of any length, sample rate and channel count.

Each channel is resampled to the model's rate, cut into chunks of ``chunk_seconds`` that overlap by
``overlap_seconds``, enhanced chunk by chunk (so memory stays flat however long the file), and
put back together by overlap-add with linear cross-fades (weights summing to one). The result is
resampled back to the file's own rate and written as 16-bit PCM wav with the input's channels::

    difflab-audio enhance noisy.wav enhanced.wav --ckpt model.ckpt
    difflab-audio enhance recordings/ enhanced/ --ckpt model.ckpt --sampler pc --steps 30

Loading a checkpoint goes through core's one loader (:func:`difflab.core.lightning.load_checkpoint`, with
``weights_only=True``); the command line in :mod:`difflab.audio.cli` only parses arguments.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from difflab.audio.data.io import AUDIO_SUFFIXES, AudioFileError, read_audio, resample, write_wav


def load_model(ckpt: str | Path, device: str = "cpu"):
    """A :class:`~difflab.audio.models.SpeechEnhancer` from a checkpoint of ``difflab-audio fit`` or the demo."""
    import difflab.audio.models  # noqa: F401  (the method classes a checkpoint may name)
    from difflab.audio.models.base import SpeechEnhancer
    from difflab.core.lightning import load_checkpoint

    return load_checkpoint(ckpt, SpeechEnhancer, map_location=device)


def crossfade_weights(n: int, fade_in: int, fade_out: int) -> Tensor:
    """``(n,)`` weights: linear ramp up over ``fade_in`` samples, 1, ramp down over ``fade_out``."""
    w = torch.ones(n)
    if fade_in > 0:
        w[:fade_in] = (torch.arange(fade_in) + 0.5) / fade_in
    if fade_out > 0:
        w[n - fade_out :] = torch.minimum(w[n - fade_out :], (torch.arange(fade_out, 0, -1) - 0.5) / fade_out)
    return w


def enhance_signal(
    model,
    wav: Tensor,
    *,
    chunk_seconds: float = 10.0,
    overlap_seconds: float = 1.0,
    sampler: str | None = None,
    steps: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Enhance a mono waveform ``(L,)`` at the model's rate, chunk by chunk with overlap-add."""
    sr = model.sample_rate
    n = wav.shape[0]
    chunk = max(int(chunk_seconds * sr), 4096)
    overlap = min(int(overlap_seconds * sr), chunk // 2)
    if n <= chunk:
        return model.enhance(wav, sampler=sampler, steps=steps, generator=generator).cpu()
    hop = chunk - overlap
    starts = list(range(0, n - chunk, hop)) + [n - chunk]  # the last chunk ends at the end of the signal
    out = torch.zeros(n)
    weight = torch.zeros(n)
    for k, s in enumerate(starts):
        est = model.enhance(wav[s : s + chunk], sampler=sampler, steps=steps, generator=generator).cpu()
        fade_in = 0 if k == 0 else starts[k - 1] + chunk - s
        fade_out = 0 if k == len(starts) - 1 else s + chunk - starts[k + 1]
        w = crossfade_weights(chunk, fade_in, fade_out)
        out[s : s + chunk] += est * w
        weight[s : s + chunk] += w
    return out / weight


def enhance_file(model, src: Path, dst: Path, **kwargs) -> Path:
    """Enhance every channel of ``src`` and write ``dst`` (16-bit wav at ``src``'s rate)."""
    data, rate = read_audio(src)
    chans = []
    for c in range(data.shape[1]):
        x = resample(torch.from_numpy(data[:, c].copy()), rate, model.sample_rate)
        if x.abs().max() < 1e-6:
            raise AudioFileError(f"{src}: channel {c} is silent")
        y = enhance_signal(model, x, **kwargs)
        chans.append(resample(y, model.sample_rate, rate)[: data.shape[0]])
    out = torch.stack(chans, dim=1)
    if out.shape[0] < data.shape[0]:
        out = torch.nn.functional.pad(out, (0, 0, 0, data.shape[0] - out.shape[0]))
    return write_wav(dst, out.numpy() if out.shape[1] > 1 else out[:, 0].numpy(), rate)


def _targets(source: Path, output: Path) -> tuple[list[Path], list[Path]]:
    if source.is_dir():
        files = sorted(f for f in source.iterdir() if f.suffix.lower() in AUDIO_SUFFIXES)
        if not files:
            raise AudioFileError(f"{source}: no audio files ({', '.join(AUDIO_SUFFIXES)})")
        return files, [output / (f.stem + ".wav") for f in files]
    if not source.is_file():
        raise AudioFileError(f"{source}: no such file or folder")
    return [source], [output / (source.stem + ".wav") if output.is_dir() else output]


def enhance_files(
    source: Path,
    output: Path,
    ckpt: str | Path,
    *,
    sampler: str | None = None,
    steps: int | None = None,
    chunk_seconds: float = 10.0,
    overlap_seconds: float = 1.0,
    seed: int = 0,
    device: str = "cpu",
) -> int:
    """Enhance an audio file or a folder of them into ``output`` (a wav for one file, or a folder)."""
    from tqdm.auto import tqdm

    model = load_model(ckpt, device)
    files, targets = _targets(source, output)
    gen = torch.Generator(device=device).manual_seed(seed)
    for src, dst in tqdm(list(zip(files, targets)), desc="enhancing", unit="file"):
        enhance_file(
            model,
            src,
            dst,
            chunk_seconds=chunk_seconds,
            overlap_seconds=overlap_seconds,
            sampler=sampler,
            steps=steps,
            generator=gen,
        )
        tqdm.write(f"wrote {dst}")
    return 0


__all__ = ["crossfade_weights", "enhance_file", "enhance_files", "enhance_signal", "load_model"]
