"""What a speech data set decides, read from the file headers before any audio is decoded.

:func:`survey_pairs` reads the header of every clean and noisy file of the splits (sample rate,
channels, length; a corrupt file or a clip shorter than ``min_seconds`` is an error naming it) and
returns the sample rate the data module works at:

* no rate requested: the files' own rate, which all files must share (otherwise a one-line error
  naming two files, their rates and the option that resamples them to one rate);
* a requested rate (``--data.init_args.sample_rate``): every file is resampled to it, with one
  warning that says how many files and from which rates.

Multi-channel files are mixed down to mono with one warning for the whole data set (the methods
enhance one channel; ``enhance`` treats each channel of a file separately).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

from difflab.audio.data.io import AudioFileError, audio_info

MANY_FILES = 2000
"""Data sets of more files show the progress of reading their headers."""


def _headers(files: list[Path], min_seconds: float) -> dict[Path, tuple[int, int]]:
    """``{file: (rate, channels)}``; a clip shorter than ``min_seconds`` is an error naming it."""
    from difflab.core.progress import progress

    out = {}
    shown = progress(files, desc="reading audio headers", unit="files") if len(files) > MANY_FILES else files
    for path in shown:
        rate, channels, frames = audio_info(path)
        if frames is not None and frames < min_seconds * rate:
            raise AudioFileError(
                f"{path}: too short ({frames / rate:.3f} s at {rate} Hz; at least {min_seconds} s needed)"
            )
        out[path] = (rate, channels)
    return out


def survey_pairs(
    pairs: Iterable[tuple[Path, Path]], requested_rate: int | None, *, min_seconds: float = 0.25
) -> int | None:
    """The sample rate of the data set made of ``pairs`` (module docstring); ``None`` for no files."""
    files = [p for pair in pairs for p in pair]
    headers = _headers(files, min_seconds)
    if not headers:
        return requested_rate
    first_of_rate: dict[int, Path] = {}
    for path, (rate, _) in headers.items():
        first_of_rate.setdefault(rate, path)
    multi = [p for p, (_, c) in headers.items() if c > 1]
    if multi:
        warnings.warn(
            f"{len(multi)} of {len(headers)} files have more than one channel (first: {multi[0]}): "
            "each is mixed down to mono",
            stacklevel=2,
        )
    if requested_rate is not None:
        other = {r: p for r, p in first_of_rate.items() if r != requested_rate}
        if other:
            count = sum(1 for rate, _ in headers.values() if rate != requested_rate)
            rates = ", ".join(f"{r} Hz" for r in sorted(other))
            warnings.warn(
                f"{count} of {len(headers)} files ({rates}; first: {next(iter(other.values()))}) are resampled "
                f"to --data.init_args.sample_rate {requested_rate}",
                stacklevel=2,
            )
        return requested_rate
    if len(first_of_rate) > 1:
        (ra, pa), (rb, pb) = sorted(first_of_rate.items())[:2]
        raise AudioFileError(
            f"{pa} is {ra} Hz but {pb} is {rb} Hz: the files of a data set share one rate; "
            f"pass --data.init_args.sample_rate {max(first_of_rate)} (or another rate) to resample every file to it"
        )
    return next(iter(first_of_rate))


__all__ = ["survey_pairs"]
