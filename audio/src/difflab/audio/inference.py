"""``difflab-audio enhance``: enhance recordings of any length, sample rate and channel count.

A recording is read, enhanced and written in chunks, so memory is bounded by one chunk however
long the file (an hour at 44.1 kHz stereo as a few seconds): each chunk of ``chunk_seconds`` (at
the file's rate, overlapping the next by ``overlap_seconds``) of each channel is resampled to the
model's rate, enhanced, resampled back, and joined to its neighbours by overlap-add with linear
cross-fades (weights summing to one). The output is wav at the input's rate, length, channel count
and sample format (:func:`output_subtype`: 24- and 32-bit PCM and float kept, 16-bit otherwise)::

    difflab-audio enhance noisy.wav enhanced.wav
    difflab-audio enhance noisy.wav enhanced.wav --ckpt model.ckpt
    difflab-audio enhance recordings/ enhanced/ --ckpt model.ckpt --sampler pc --steps 30

Without ``--ckpt`` the shipped pretrained denoising model is used (``difflab/audio/pretrained/denoise.ckpt``,
written by ``python scripts/pretrain.py audio``), with the sampler and step count recorded with it
unless ``--sampler`` / ``--steps`` are given.

Before the model is loaded every input's header is read and every output is checked (nothing is
replaced without ``--overwrite``). One input that is not audio, or holds no samples, is an error;
a folder goes on past such a file (a note says why) and ends with a one-line error naming every
file that failed (exit status 2). A recording at another rate than the model's is resampled to the
model's rate and back, with one note per rate naming both (as SGMSE+'s own enhancement script
resamples; a model enhances the band it was trained on). Silence stays silent.

Nothing is clipped silently. By default (``--overs scale``) an output that would exceed full scale
is scaled down as a whole, by one gain, to a peak of -1 dBFS (the level changes, the waveform is
not distorted), and the file's line says by how many dB; ``--overs clip`` keeps the model's level
and clips the samples beyond full scale, with a warning giving their share. Progress counts chunks
over all files (a bar on a terminal, a line every few seconds without one).

Loading a checkpoint goes through core's one loader (:func:`difflab.core.lightning.load_checkpoint`, with
``weights_only=True``); the command line in :mod:`difflab.audio.cli` only parses arguments.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from difflab.audio.data.io import AUDIO_SUFFIXES, AudioFileError, AudioReader, audio_info, read_audio, resample
from difflab.core.errors import UserError

PEAK = 10 ** (-1 / 20)
"""The peak an output beyond full scale is scaled to (``overs="scale"``, the default): -1 dBFS."""

Overs = Literal["scale", "clip"]
OVERS: tuple[str, ...] = ("scale", "clip")
"""What :func:`enhance_file` does with an output beyond full scale: scale the whole file down to a
peak of -1 dBFS (the default), or keep the level and clip those samples (reported)."""


def load_model(ckpt: str | Path, device: str = "cpu"):
    """A :class:`~difflab.audio.models.SpeechEnhancer` from a checkpoint of ``difflab-audio fit`` or the demo."""
    import difflab.audio.models  # noqa: F401  (the method classes a checkpoint may name)
    from difflab.audio.models.base import SpeechEnhancer
    from difflab.core.lightning import load_checkpoint

    return load_checkpoint(ckpt, SpeechEnhancer, map_location=device)


PRETRAINED_NAME = "denoise"
"""File name (without ``.ckpt``) of the shipped default, ``difflab/audio/pretrained/denoise.ckpt``."""


def default_checkpoint(ckpt: str | Path | None, sampler: str | None, steps: int | None):
    """``(checkpoint, sampler, steps)``: ``ckpt`` with ``sampler`` / ``steps`` as given, or, without
    ``ckpt``, the shipped default (:mod:`difflab.audio.pretrain`) with its recorded sampling filling
    in what is not given. No ``ckpt`` and no shipped default is a one-line error."""
    from difflab.core.lightning.pretrained import checkpoint_or_default, recommended_sampling

    if ckpt is not None and str(ckpt) != "":
        return Path(ckpt), sampler, steps
    path = checkpoint_or_default(None, "audio", PRETRAINED_NAME)
    recorded = recommended_sampling(path)
    sampler = sampler if sampler is not None else recorded.get("sampler")
    steps = steps if steps is not None else recorded.get("steps")
    return path, sampler, steps


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


class OverlapAdd:
    """Streaming overlap-add of weighted blocks.

    Blocks ``x_k`` of shape ``(L_k, C)`` with weights ``w_k`` of shape ``(L_k,)`` are added at sample
    offsets ``s_k`` that never decrease; the output at sample ``p`` is ``Σ_k w_k x_k / Σ_k w_k`` over
    the blocks covering ``p``. :meth:`pop` hands back (and forgets) the samples before an offset that
    no later block reaches, so what is held is at most one block's span, whatever the total length."""

    def __init__(self, channels: int) -> None:
        self.start = 0
        self.acc = np.zeros((0, channels), np.float32)
        self.weight = np.zeros(0, np.float32)

    def add(self, offset: int, block: np.ndarray, weight: np.ndarray) -> None:
        """Add ``block`` ``(L, C)`` weighted by ``weight`` ``(L,)`` at absolute sample ``offset``."""
        if offset < self.start:
            raise ValueError(f"offset {offset} is before the samples already handed back ({self.start})")
        i, j = offset - self.start, offset - self.start + block.shape[0]
        if j > self.weight.shape[0]:
            grow = j - self.weight.shape[0]
            self.acc = np.concatenate([self.acc, np.zeros((grow, self.acc.shape[1]), np.float32)])
            self.weight = np.concatenate([self.weight, np.zeros(grow, np.float32)])
        self.acc[i:j] += block * weight[:, None]
        self.weight[i:j] += weight

    def pop(self, upto: int) -> np.ndarray:
        """The normalised samples ``start .. upto`` as ``(upto - start, C)``; they are forgotten."""
        k = upto - self.start
        out = self.acc[:k] / self.weight[:k, None]
        self.acc, self.weight, self.start = self.acc[k:], self.weight[k:], upto
        return out


@dataclass
class Written:
    """What :func:`enhance_file` wrote: the file, the fraction of its samples beyond full scale
    (written clipped: ``overs="clip"`` only), the gain applied to keep it below full scale (dB, 0 for
    none) and the channels that were silent throughout."""

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
            text += f" (beyond full scale: the whole file scaled by {self.gain_db:.1f} dB to a peak of -1 dBFS)"
        if self.clipped > 0:
            text = (
                f"warning: {text}: {100 * self.clipped:.2f}% of its samples are beyond full scale and clipped "
                "(--overs clip; the default --overs scale scales such an output to a peak of -1 dBFS instead)"
            )
        return text


KEPT_SUBTYPES = {"PCM_24": "PCM_24", "PCM_32": "PCM_32", "FLOAT": "FLOAT", "DOUBLE": "FLOAT"}


def output_subtype(subtype: str) -> str:
    """The wav sample format an enhanced copy of an input in ``subtype`` is written in: 24- and 32-bit
    PCM stay so, float (32 or 64 bit) is written as 32-bit float, and everything else (16- and 8-bit
    PCM, mu-law, A-law, G.722, compressed formats such as Vorbis or MP3) as 16-bit PCM, which loses
    nothing those hold."""
    return KEPT_SUBTYPES.get(subtype, "PCM_16")


class LevelWriter:
    """Writes an output block by block as wav in ``subtype`` (16-bit PCM by default), with what
    ``overs`` says for samples beyond full scale (float output too: players clip it).

    ``"clip"``: straight into ``dst``, samples beyond ±1 clipped and counted. ``"scale"``: first into
    a float32 file beside ``dst`` (RF64, so any length fits) while the peak ``p`` is tracked; then
    :meth:`finish` writes ``dst`` from it in blocks, multiplied by ``g = 10^(-1/20) / p`` when
    ``p > 1`` (one gain for the whole file: no distortion, the level falls to a peak of -1 dBFS),
    by 1 otherwise. Memory is one block either way; the temporary file is removed."""

    BLOCK = 1 << 16

    def __init__(self, dst: Path, rate: int, channels: int, overs: Overs = "scale", subtype: str = "PCM_16") -> None:
        import soundfile as sf

        if overs not in OVERS:
            raise ValueError(f"overs={overs!r}: must be one of {', '.join(OVERS)}")
        self.dst, self.rate, self.channels, self.subtype = Path(dst), rate, channels, subtype
        self.dst.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.dst.with_name(f".{self.dst.name}.partial") if overs == "scale" else None
        kind = ("RF64", "FLOAT") if self.tmp is not None else ("WAV", subtype)
        self.file = sf.SoundFile(str(self.tmp or self.dst), "w", rate, channels, kind[1], format=kind[0])
        self.peak, self.beyond, self.count = 0.0, 0, 0

    def write(self, block: np.ndarray) -> None:
        """Append ``(n, C)`` samples."""
        mag = np.abs(block)
        if mag.size:
            self.peak = max(self.peak, float(mag.max()))
        self.beyond += int((mag > 1.0).sum())
        self.count += block.size
        self.file.write(block if self.tmp is not None else np.clip(block, -1.0, 1.0))

    def finish(self) -> tuple[float, float]:
        """Close the output: ``(fraction of samples written clipped, gain applied in dB)``."""
        import soundfile as sf

        self.file.close()
        if self.tmp is None:
            return self.beyond / max(self.count, 1), 0.0
        gain = PEAK / self.peak if self.peak > 1.0 else 1.0
        with (
            sf.SoundFile(str(self.tmp)) as f,
            sf.SoundFile(str(self.dst), "w", self.rate, self.channels, self.subtype, format="WAV") as g,
        ):
            for block in f.blocks(self.BLOCK, dtype="float32", always_2d=True):
                g.write(np.clip(block * gain, -1.0, 1.0))
        self.tmp.unlink()
        return 0.0, 20 * math.log10(gain)

    def abort(self) -> None:
        """Close and remove what was written (after an error)."""
        self.file.close()
        for p in (self.tmp, self.dst):
            if p is not None:
                p.unlink(missing_ok=True)


def _enhance_channel(model, x: np.ndarray, rate: int, options: dict) -> np.ndarray | None:
    """One channel's block ``(L,)`` at the file's ``rate``, enhanced at the model's rate and back to
    ``(L,)``; ``None`` for a silent block (peak below 1e-6: written silent)."""
    if x.size == 0 or np.abs(x).max() < 1e-6:
        return None
    y = model.enhance(resample(torch.from_numpy(np.ascontiguousarray(x)), rate, model.sample_rate), **options).cpu()
    y = resample(y, model.sample_rate, rate)[: x.shape[0]]
    out = np.zeros(x.shape[0], np.float32)
    out[: y.shape[0]] = y.numpy()
    return out


def enhance_file(
    model,
    src: Path,
    dst: Path,
    *,
    overs: Overs = "scale",
    on_chunk: Callable[[], None] | None = None,
    chunk_seconds: float = 10.0,
    overlap_seconds: float = 1.0,
    **options,
) -> Written:
    """Enhance every channel of ``src`` and write ``dst`` (wav at ``src``'s rate, length, channels and
    sample format, :func:`output_subtype`), streaming: memory is bounded by one chunk, whatever the file's length.

    The file is cut at its own rate into the chunks of :func:`chunk_starts`; each chunk of each
    channel is resampled to the model's rate, enhanced (``options``: ``sampler``, ``steps``,
    ``generator``), resampled back, and laid into the output by overlap-add with the linear
    cross-fades of :func:`crossfade_weights` (:class:`OverlapAdd`); every finished stretch is written
    at once (:class:`LevelWriter`, which applies ``overs``). A silent block stays silent (peak
    normalisation would only amplify rounding noise). ``on_chunk()`` is called per channel and chunk.
    On an error nothing is left at ``dst``."""
    with AudioReader(src) as reader:
        rate, channels, n = reader.rate, reader.channels, reader.frames
        chunk, starts = chunk_starts(n, rate, chunk_seconds, overlap_seconds)
        ola, heard = OverlapAdd(channels), [False] * channels
        out = LevelWriter(Path(dst), rate, channels, overs, output_subtype(reader.subtype))
        try:
            for k, s in enumerate(starts):
                block = reader.read(s, chunk)
                est = np.zeros_like(block)
                for c in range(channels):
                    y = _enhance_channel(model, block[:, c], rate, options)
                    if y is not None:
                        est[:, c], heard[c] = y, True
                    if on_chunk is not None:
                        on_chunk()
                fade_in = 0 if k == 0 else starts[k - 1] + chunk - s
                fade_out = 0 if k == len(starts) - 1 else s + chunk - starts[k + 1]
                ola.add(s, est, crossfade_weights(block.shape[0], fade_in, fade_out).numpy())
                out.write(ola.pop(starts[k + 1] if k + 1 < len(starts) else s + block.shape[0]))
            clipped, gain_db = out.finish()
        except BaseException:
            out.abort()
            raise
    return Written(Path(dst), clipped, gain_db, [c for c in range(channels) if not heard[c]])


def resampled_length(frames: int, rate: int, new_rate: int) -> int:
    """Samples of ``frames`` samples at ``rate`` resampled to ``new_rate`` (torchaudio's length)."""
    g = math.gcd(rate, new_rate)
    return math.ceil(frames * (new_rate // g) / (rate // g))


def count_chunks(files: list[Path], infos: list[tuple[int, int, int | None]], chunking) -> int:
    """Chunks :func:`enhance_file` enhances for ``files`` (headers ``infos``): channels × chunks, cut
    at each file's own rate."""
    total = 0
    for path, (file_rate, channels, frames) in zip(files, infos):
        if frames is None:  # the header does not say (G.722): decode it
            frames = read_audio(path)[0].shape[0]
        total += channels * len(chunk_starts(frames, file_rate, *chunking)[1])
    return total


def enhance_targets(source: Path, output: Path, overwrite: bool = False) -> tuple[list[Path], list[Path]]:
    """The files to enhance and the wavs to write; a folder without audio files, an output that is
    not a wav, or an output file that exists (without ``overwrite``) is a :class:`UserError`.

    ``output`` is a folder for a folder input, or for a file input when it exists as a folder or has
    no suffix; otherwise it is the output file."""
    from difflab.core.verbs import check_output, folder_inputs

    if source.is_dir():
        files = folder_inputs(source, AUDIO_SUFFIXES, "audio files", AudioFileError)
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
    ckpt: str | Path | None = None,
    *,
    sampler: str | None = None,
    steps: int | None = None,
    chunk_seconds: float = 10.0,
    overlap_seconds: float = 1.0,
    seed: int = 0,
    device: str = "cpu",
    overwrite: bool = False,
    overs: Overs = "scale",
) -> int:
    """Enhance an audio file or a folder of them into ``output`` (a wav for one file, or a folder),
    with the model of ``ckpt`` or, without it, the shipped default and its recorded sampling
    (:func:`default_checkpoint`).

    The inputs (their headers) and outputs are checked before the model is loaded; a recording at
    another rate than the model's is noted once per rate; outputs beyond full scale are scaled to a
    peak of -1 dBFS (or, ``overs="clip"``, written clipped), reported per file and counted at the end.
    One input file that cannot be read is an error at once. A folder goes on past a file that
    cannot be read or enhanced (a note names it and why) and ends with a one-line
    :class:`UserError` naming every file that failed (exit status 2)."""
    from difflab.core.progress import note

    files, targets = enhance_targets(Path(source), Path(output), overwrite)
    single = not Path(source).is_dir()
    failed: list[str] = []

    def skip(src: Path, err: AudioFileError) -> None:
        if single:
            raise err
        failed.append(src.name)
        note(f"skipped: {err}")

    jobs = []
    for src, dst in zip(files, targets):
        try:
            jobs.append((src, dst, audio_info(src)))
        except AudioFileError as err:
            skip(src, err)
    if jobs:
        ckpt, sampler, steps = default_checkpoint(ckpt, sampler, steps)
        _enhance_jobs(jobs, ckpt, sampler, steps, (chunk_seconds, overlap_seconds), seed, device, overs, skip)
    if failed:
        raise UserError(
            f"{source}: {len(failed)} of {len(files)} recordings failed and were skipped ({', '.join(failed)}; "
            f"reasons above); the other {len(files) - len(failed)} were written"
        )
    return 0


def _enhance_jobs(jobs, ckpt, sampler, steps, chunking, seed, device, overs, skip) -> None:
    """Load the model and enhance ``jobs`` ``[(src, dst, header)]`` (see :func:`enhance_files`)."""
    from difflab.core.progress import StepProgress, note

    model = load_model(ckpt, device)
    gen = torch.Generator(device=device).manual_seed(seed)
    total = count_chunks([j[0] for j in jobs], [j[2] for j in jobs], chunking)
    ticks = StepProgress("enhancing", total, "chunks")
    noted: set[int] = set()
    results = []
    kw = dict(chunk_seconds=chunking[0], overlap_seconds=chunking[1], sampler=sampler, steps=steps, generator=gen)
    for src, dst, (rate, _, _) in jobs:
        if rate != model.sample_rate and rate not in noted:
            noted.add(rate)
            note(
                f"{src}: {rate} Hz, the model works at {model.sample_rate} Hz: recordings at {rate} Hz are "
                f"resampled to {model.sample_rate} Hz for the model and the outputs back to {rate} Hz"
            )
        try:
            written = enhance_file(model, src, dst, overs=overs, on_chunk=ticks, **kw)
        except AudioFileError as err:
            skip(src, err)
            continue
        note(written.describe())
        results.append(written)
    ticks.close()
    scaled = sum(1 for r in results if r.gain_db)
    clipped = sum(1 for r in results if r.clipped > 0)
    if scaled:
        note(f"{scaled} of {len(jobs)} outputs were beyond full scale and scaled to a peak of -1 dBFS")
    if clipped:
        note(
            f"warning: {clipped} of {len(jobs)} outputs were clipped at full scale (--overs clip; "
            "the default --overs scale scales such outputs to a peak of -1 dBFS instead)"
        )


__all__ = [
    "OVERS",
    "PEAK",
    "PRETRAINED_NAME",
    "LevelWriter",
    "OverlapAdd",
    "Written",
    "chunk_starts",
    "count_chunks",
    "crossfade_weights",
    "default_checkpoint",
    "enhance_file",
    "enhance_files",
    "enhance_signal",
    "enhance_targets",
    "load_model",
    "resampled_length",
]
