"""Reading and writing audio files, with errors that name the file and the problem.

:func:`load_audio` reads any format libsndfile knows (wav, flac, ogg, ...) and G.722 (``.g722``, the
format of the Asterisk prompts, decoded with PyAV), mixes multi-channel audio down to mono with a
warning, and resamples to the requested rate with ``torchaudio.functional.resample``.
:func:`check_clip` rejects silent and too-short clips.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from difflab.core.errors import UserError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".g722")


class AudioFileError(UserError, ValueError):
    """A file that cannot be used as audio; the message names the file and the problem (a user error:
    the command line prints it in one line)."""


def resample(wav: np.ndarray | torch.Tensor, orig_sr: int, new_sr: int) -> torch.Tensor:
    """Resample ``(..., L)`` from ``orig_sr`` to ``new_sr`` (band-limited sinc, torchaudio)."""
    import torchaudio.functional as AF

    x = torch.as_tensor(wav, dtype=torch.float32)
    if orig_sr == new_sr:
        return x
    return AF.resample(x, int(orig_sr), int(new_sr))


def _read_g722(path: Path) -> tuple[np.ndarray, int]:
    try:
        import av
    except ImportError as err:  # pragma: no cover - optional dependency
        raise AudioFileError(f"{path}: reading G.722 needs PyAV: pip install 'difflab-audio[data]'") from err
    chunks = []
    with av.open(str(path), format="g722") as container:
        for frame in container.decode(audio=0):
            chunks.append(frame.to_ndarray().reshape(-1))
            rate = frame.sample_rate
    if not chunks:
        raise AudioFileError(f"{path}: no audio frames could be decoded")
    data = np.concatenate(chunks).astype(np.float32)
    if np.abs(data).max() > 1.5:  # integer samples
        data = data / 32768.0
    return data[:, None], int(rate)


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """``(samples (L, C) float32, sample rate)`` of a file, or :class:`AudioFileError`."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise AudioFileError(f"{path}: no such file")
    if path.suffix.lower() == ".g722":
        try:
            return _read_g722(path)
        except AudioFileError:
            raise
        except Exception as err:
            raise AudioFileError(f"{path}: not a readable G.722 file ({err})") from err
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:
        raise AudioFileError(f"{path}: not a readable audio file or corrupt ({type(err).__name__}: {err})") from err
    if data.size == 0:
        raise AudioFileError(f"{path}: the file holds no samples")
    if not np.isfinite(data).all():
        raise AudioFileError(f"{path}: the file holds NaN or infinite samples")
    return data, int(rate)


def audio_info(path: str | Path) -> tuple[int, int, int | None]:
    """``(sample rate, channels, frames)`` of an audio file from its header (frames ``None`` where the
    format does not say: G.722, always 16 kHz mono), or :class:`AudioFileError` naming the file."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise AudioFileError(f"{path}: no such file")
    if path.suffix.lower() == ".g722":
        return 16000, 1, None
    try:
        info = sf.info(str(path))
    except Exception as err:
        raise AudioFileError(f"{path}: not a readable audio file or corrupt ({type(err).__name__}: {err})") from err
    if info.frames == 0:
        raise AudioFileError(f"{path}: the file holds no samples")
    return int(info.samplerate), int(info.channels), int(info.frames)


def load_audio(
    path: str | Path, sample_rate: int | None = None, *, warn_stereo: bool = True
) -> tuple[torch.Tensor, int]:
    """Mono waveform ``(L,)`` float32 at ``sample_rate`` (the file's own rate if None), and the file's rate.

    Multi-channel files are averaged to mono (with a warning if ``warn_stereo``).
    """
    data, rate = read_audio(path)
    if data.shape[1] > 1:
        if warn_stereo:
            warnings.warn(f"{path}: {data.shape[1]} channels mixed down to mono", stacklevel=2)
        data = data.mean(axis=1, keepdims=True)
    wav = torch.from_numpy(np.ascontiguousarray(data[:, 0]))
    if sample_rate is not None and sample_rate != rate:
        wav = resample(wav, rate, sample_rate)
    return wav, rate


def check_clip(wav: torch.Tensor, path: str | Path, sample_rate: int, *, min_seconds: float = 0.25) -> None:
    """Raise :class:`AudioFileError` for a clip shorter than ``min_seconds`` or silent (peak below 1e-5)."""
    n = wav.shape[-1]
    if n < min_seconds * sample_rate:
        raise AudioFileError(
            f"{path}: too short ({n / sample_rate:.3f} s at {sample_rate} Hz; at least {min_seconds} s needed)"
        )
    peak = float(wav.abs().max())
    if peak < 1e-5:
        raise AudioFileError(f"{path}: silent clip (peak amplitude {peak:.2e})")


class AudioReader:
    """Random access to the samples of an audio file, one block at a time, so a recording of any
    length is read with memory bounded by the block: ``reader.read(start, n)`` gives ``(n', C)``
    float32 (``n' <= n`` at the end of the file). libsndfile formats are read from disk block by
    block; G.722 (short telephony prompts, no frame count in a header) is decoded whole.

    Attributes: ``rate``, ``channels``, ``frames``, ``subtype`` (libsndfile's sample encoding:
    ``"PCM_16"``, ``"PCM_24"``, ``"FLOAT"``, ``"VORBIS"`` ...). A file that is not audio, or holds no samples, is
    an :class:`AudioFileError` when it is opened; a block with NaN or infinite samples when it is read.
    Use as a context manager (it closes the file)."""

    def __init__(self, path: str | Path) -> None:
        import soundfile as sf

        self.path = Path(path)
        self._file = None
        self._data: np.ndarray | None = None
        if not self.path.is_file():
            raise AudioFileError(f"{self.path}: no such file")
        if self.path.suffix.lower() == ".g722":
            self._data, self.rate = read_audio(self.path)
            self.channels, self.frames, self.subtype = 1, self._data.shape[0], "G722"
            return
        try:
            self._file = sf.SoundFile(str(self.path))
        except Exception as err:
            raise AudioFileError(
                f"{self.path}: not a readable audio file or corrupt ({type(err).__name__}: {err})"
            ) from err
        self.rate, self.channels, self.frames = int(self._file.samplerate), int(self._file.channels), self._file.frames
        self.subtype = str(self._file.subtype)
        if self.frames == 0:
            self.close()
            raise AudioFileError(f"{self.path}: the file holds no samples")

    def read(self, start: int, n: int) -> np.ndarray:
        """Samples ``start .. start + n`` as ``(n, C)`` float32 (fewer at the end of the file)."""
        if self._data is not None:
            block = self._data[start : start + n]
        else:
            try:
                self._file.seek(start)
                block = self._file.read(n, dtype="float32", always_2d=True)
            except Exception as err:
                raise AudioFileError(
                    f"{self.path}: unreadable at {start / self.rate:.2f} s ({type(err).__name__}: {err})"
                ) from err
        if not np.isfinite(block).all():
            raise AudioFileError(f"{self.path}: NaN or infinite samples after {start / self.rate:.2f} s")
        return block

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> AudioReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_wav(path: str | Path, wav: np.ndarray | torch.Tensor, sample_rate: int) -> Path:
    """Write ``(L,)`` or ``(L, C)`` samples in [-1, 1] as 16-bit PCM wav (clipped)."""
    import soundfile as sf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = wav.detach().cpu().numpy() if isinstance(wav, torch.Tensor) else np.asarray(wav)
    sf.write(str(path), np.clip(x, -1.0, 1.0).astype(np.float32), int(sample_rate), subtype="PCM_16")
    return path


def list_audio(folder: str | Path) -> list[Path]:
    """Audio files of a folder (by suffix), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AudioFileError(f"{folder}: no such folder")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())


__all__ = [
    "AUDIO_SUFFIXES",
    "AudioFileError",
    "AudioReader",
    "audio_info",
    "check_clip",
    "list_audio",
    "load_audio",
    "read_audio",
    "resample",
    "write_wav",
]
