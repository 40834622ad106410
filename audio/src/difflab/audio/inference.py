"""``difflab-audio enhance``: enhance recordings of any length, sample rate and channel count.

Each channel is resampled to the model's rate, cut into chunks of ``chunk_seconds`` that overlap by
``overlap_seconds``, enhanced chunk by chunk (so memory stays flat however long the file), and
put back together by overlap-add with linear cross-fades (weights summing to one). The result is
resampled back to the file's own rate and written as 16-bit PCM wav with the input's channels::

    difflab-audio enhance noisy.wav enhanced.wav --ckpt model.ckpt
    difflab-audio enhance recordings/ enhanced/ --ckpt model.ckpt --sampler pc --steps 30

Before the model is loaded every input's header is read (a file that is not audio is an error
naming it) and every output is checked (nothing is replaced without ``--overwrite``). A recording at
another rate than the model's is resampled to the model's rate and back, with one note per rate
naming both (as SGMSE+'s own enhancement script resamples; a model enhances the band it was trained
on). A silent channel is written silent. An output beyond full scale is reported per file, with how
many samples the 16-bit file clips; ``--normalize`` scales such an output down to just below full
scale instead. Progress counts chunks over all files (a bar on a terminal, a line every few seconds
without one).

Loading a checkpoint goes through core's one loader (:func:`difflab.core.lightning.load_checkpoint`, with
``weights_only=True``); the command line in :mod:`difflab.audio.cli` only parses arguments.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from difflab.audio.data.io import AUDIO_SUFFIXES, AudioFileError, audio_info, read_audio, resample, write_wav
from difflab.core.errors import UserError

PEAK = 10 ** (-0.1 / 20)
"""The peak ``--normalize`` scales a loud output to: -0.1 dB below full scale."""


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


def chunk_starts(n: int, rate: int, chunk_seconds: float, overlap_seconds: float) -> tuple[int, list[int]]:
    """``(chunk length, start offsets)`` of the chunks :func:`enhance_signal` cuts ``n`` samples at
    ``rate`` into (at least 4096 samples each, overlap at most half a chunk; the last chunk ends at
    the end of the signal; one chunk, the whole signal, when it is not longer than a chunk)."""
    chunk = max(int(chunk_seconds * rate), 4096)
    if n <= chunk:
        return n, [0]
    overlap = min(int(overlap_seconds * rate), chunk // 2)
    return chunk, list(range(0, n - chunk, chunk - overlap)) + [n - chunk]


def enhance_signal(
    model,
    wav: Tensor,
    *,
    chunk_seconds: float = 10.0,
    overlap_seconds: float = 1.0,
    sampler: str | None = None,
    steps: int | None = None,
    generator: torch.Generator | None = None,
    on_chunk: Callable[[], None] | None = None,
) -> Tensor:
    """Enhance a mono waveform ``(L,)`` at the model's rate, chunk by chunk with overlap-add
    (:func:`chunk_starts`); ``on_chunk()`` is called after every chunk."""
    n = wav.shape[0]
    chunk, starts = chunk_starts(n, model.sample_rate, chunk_seconds, overlap_seconds)
    if len(starts) == 1:
        out = model.enhance(wav, sampler=sampler, steps=steps, generator=generator).cpu()
        if on_chunk is not None:
            on_chunk()
        return out
    out = torch.zeros(n)
    weight = torch.zeros(n)
    for k, s in enumerate(starts):
        est = model.enhance(wav[s : s + chunk], sampler=sampler, steps=steps, generator=generator).cpu()
        if on_chunk is not None:
            on_chunk()
        fade_in = 0 if k == 0 else starts[k - 1] + chunk - s
        fade_out = 0 if k == len(starts) - 1 else s + chunk - starts[k + 1]
        w = crossfade_weights(chunk, fade_in, fade_out)
        out[s : s + chunk] += est * w
        weight[s : s + chunk] += w
    return out / weight


@dataclass
class Written:
    """What :func:`enhance_file` wrote: the file, the fraction of its samples beyond full scale
    (written clipped), the gain ``--normalize`` applied (dB, 0 for none) and the silent channels."""

    path: Path
    clipped: float = 0.0
    gain_db: float = 0.0
    silent: list[int] = field(default_factory=list)

    def describe(self) -> str:
        """One line for the console."""
        text = f"wrote {self.path}"
        if self.silent:
            text += f" (silent channel {', '.join(map(str, self.silent))} written silent)"
        if self.gain_db:
            text += f" (scaled by {self.gain_db:.1f} dB to stay below full scale)"
        if self.clipped > 0:
            text = (
                f"warning: {text}: {100 * self.clipped:.2f}% of its samples are beyond full scale and clipped "
                "(--normalize scales such an output below full scale instead)"
            )
        return text


def enhance_file(
    model, src: Path, dst: Path, *, normalize: bool = False, on_chunk: Callable[[], None] | None = None, **kwargs
) -> Written:
    """Enhance every channel of ``src`` and write ``dst`` (16-bit wav at ``src``'s rate); ``kwargs``
    go to :func:`enhance_signal`.

    The level is kept as the model produced it: samples beyond full scale are written clipped and
    counted, unless ``normalize`` scales the whole output to a peak just below full scale. A silent
    channel is written silent (peak normalisation would only amplify rounding noise)."""
    data, rate = read_audio(src)
    chans, silent = [], []
    for c in range(data.shape[1]):
        x = resample(torch.from_numpy(data[:, c].copy()), rate, model.sample_rate)
        if x.abs().max() < 1e-6:
            silent.append(c)
            chans.append(torch.zeros(data.shape[0]))
            for _ in chunk_starts(x.shape[0], model.sample_rate, *_chunking(kwargs))[1]:
                if on_chunk is not None:
                    on_chunk()
            continue
        y = enhance_signal(model, x, on_chunk=on_chunk, **kwargs)
        chans.append(resample(y, model.sample_rate, rate)[: data.shape[0]])
    out = torch.stack(chans, dim=1)
    if out.shape[0] < data.shape[0]:
        out = torch.nn.functional.pad(out, (0, 0, 0, data.shape[0] - out.shape[0]))
    peak, gain_db = float(out.abs().max()), 0.0
    if normalize and peak > 1.0:
        out = out * (PEAK / peak)
        gain_db = 20 * math.log10(PEAK / peak)
    clipped = float((out.abs() > 1.0).float().mean())
    write_wav(dst, out.numpy() if out.shape[1] > 1 else out[:, 0].numpy(), rate)
    return Written(Path(dst), clipped, gain_db, silent)


def _chunking(kwargs: dict) -> tuple[float, float]:
    return kwargs.get("chunk_seconds", 10.0), kwargs.get("overlap_seconds", 1.0)


def resampled_length(frames: int, rate: int, new_rate: int) -> int:
    """Samples of ``frames`` samples at ``rate`` resampled to ``new_rate`` (torchaudio's length)."""
    g = math.gcd(rate, new_rate)
    return math.ceil(frames * (new_rate // g) / (rate // g))


def count_chunks(files: list[Path], infos: list[tuple[int, int, int | None]], rate: int, chunking) -> int:
    """Chunks :func:`enhance_file` enhances for ``files`` (headers ``infos``) with a model at ``rate``."""
    total = 0
    for path, (file_rate, channels, frames) in zip(files, infos):
        if frames is None:  # the header does not say (G.722): decode it
            frames = read_audio(path)[0].shape[0]
        n = resampled_length(frames, file_rate, rate)
        total += channels * len(chunk_starts(n, rate, *chunking)[1])
    return total


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
    normalize: bool = False,
) -> int:
    """Enhance an audio file or a folder of them into ``output`` (a wav for one file, or a folder).

    The inputs (their headers) and outputs are checked before the model is loaded; a recording at
    another rate than the model's is noted once per rate; outputs beyond full scale are written
    clipped and reported (per file, and how many files in all), or scaled below it with ``normalize``."""
    from difflab.core.progress import StepProgress, note

    files, targets = enhance_targets(Path(source), Path(output), overwrite)
    infos = [audio_info(f) for f in files]
    model = load_model(ckpt, device)
    gen = torch.Generator(device=device).manual_seed(seed)
    chunking = (chunk_seconds, overlap_seconds)
    ticks = StepProgress("enhancing", count_chunks(files, infos, model.sample_rate, chunking), "chunks")
    noted: set[int] = set()
    results = []
    for src, dst, (rate, _, _) in zip(files, targets, infos):
        if rate != model.sample_rate and rate not in noted:
            noted.add(rate)
            note(
                f"{src}: {rate} Hz, the model works at {model.sample_rate} Hz: recordings at {rate} Hz are "
                f"resampled to {model.sample_rate} Hz for the model and the outputs back to {rate} Hz"
            )
        kw = dict(chunk_seconds=chunk_seconds, overlap_seconds=overlap_seconds, sampler=sampler, steps=steps)
        written = enhance_file(model, src, dst, normalize=normalize, on_chunk=ticks, generator=gen, **kw)
        note(written.describe())
        results.append(written)
    ticks.close()
    clipped = sum(1 for r in results if r.clipped > 0)
    if clipped:
        note(
            f"warning: {clipped} of {len(files)} outputs were clipped at full scale (the model's level is kept; "
            "--normalize scales such outputs below full scale instead)"
        )
    return 0


__all__ = [
    "Written",
    "chunk_starts",
    "count_chunks",
    "crossfade_weights",
    "enhance_file",
    "enhance_files",
    "enhance_signal",
    "enhance_targets",
    "load_model",
    "resampled_length",
]
