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
from difflab.core.errors import UserError


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


def enhance_file(model, src: Path, dst: Path, **kwargs) -> tuple[Path, float]:
    """Enhance every channel of ``src`` and write ``dst`` (16-bit wav at ``src``'s rate).

    Returns ``dst`` and the fraction of output samples beyond full scale, which the 16-bit file
    holds clipped at +-1 (the level is kept as the model produced it, not scaled)."""
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
    clipped = float((out.abs() > 1.0).float().mean())
    return write_wav(dst, out.numpy() if out.shape[1] > 1 else out[:, 0].numpy(), rate), clipped


def enhance_targets(source: Path, output: Path, overwrite: bool = False) -> tuple[list[Path], list[Path]]:
    """The files to enhance and the wavs to write; a folder without audio files, an output that is
    not a wav, or an output file that exists (without ``overwrite``) is a :class:`UserError`.

    ``output`` is a folder for a folder input, or for a file input when it exists as a folder or has
    no suffix; otherwise it is the output file."""
    from difflab.core.verbs import check_output

    if source.is_dir():
        files = sorted(f for f in source.iterdir() if f.suffix.lower() in AUDIO_SUFFIXES and f.is_file())
        if not files:
            raise AudioFileError(f"{source}: no audio files ({', '.join(AUDIO_SUFFIXES)})")
        targets = [output / (f.stem + ".wav") for f in files]
    elif not source.is_file():
        raise AudioFileError(f"{source}: no such file or folder")
    else:
        files = [source]
        targets = [output / (source.stem + ".wav") if output.is_dir() or not output.suffix else output]
    if output.is_file() and source.is_dir():
        raise UserError(f"{output}: is a file; the output of a folder of recordings is a folder")
    for dst in targets:
        if dst.suffix.lower() != ".wav":
            raise UserError(f"{dst}: the output is written as 16-bit wav; name it .wav (or give a folder)")
        check_output(dst, overwrite)
    if len(set(targets)) < len(targets):
        raise UserError(f"{source}: two recordings share a name (their outputs would replace each other)")
    return files, targets


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
    overwrite: bool = False,
) -> int:
    """Enhance an audio file or a folder of them into ``output`` (a wav for one file, or a folder).

    The inputs and outputs are checked before the model is loaded; outputs beyond full scale are
    written clipped and reported (per file, and how many files in all)."""
    from difflab.core.progress import note, progress

    files, targets = enhance_targets(Path(source), Path(output), overwrite)
    model = load_model(ckpt, device)
    gen = torch.Generator(device=device).manual_seed(seed)
    clipped_files = 0
    for src, dst in progress(list(zip(files, targets)), desc="enhancing", unit="file"):
        _, clipped = enhance_file(
            model,
            src,
            dst,
            chunk_seconds=chunk_seconds,
            overlap_seconds=overlap_seconds,
            sampler=sampler,
            steps=steps,
            generator=gen,
        )
        if clipped > 0:
            clipped_files += 1
            note(f"wrote {dst} ({100 * clipped:.2f}% of its samples clipped at full scale)")
        else:
            note(f"wrote {dst}")
    if clipped_files:
        note(f"{clipped_files} of {len(files)} outputs were clipped at full scale (the model's level is kept)")
    return 0


__all__ = ["crossfade_weights", "enhance_file", "enhance_files", "enhance_signal", "enhance_targets", "load_model"]
