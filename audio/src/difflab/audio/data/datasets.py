"""Paired clean / degraded speech on disk as a torch Dataset.

Item dict (one utterance):

==========  ==========  ===============================================================
key         shape       meaning
==========  ==========  ===============================================================
``clean``   ``(L,)``    clean (or anechoic) speech at the data module's rate, float32
``noisy``   ``(L,)``    the degraded input (noisy or reverberant), same length
``length``  int         number of valid samples (before padding in a batch)
``name``    str         file name shared by the pair
==========  ==========  ===============================================================

Training items are random crops of ``crop_samples`` samples (zero-padded when the file is
shorter, as SGMSE+ does); evaluation items are whole files. :func:`collate_pairs` pads a batch to
its longest item.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from difflab.audio.data.io import AudioFileError, check_clip, list_audio, load_audio


def pair_folders(clean_dir: str | Path, noisy_dir: str | Path) -> list[tuple[Path, Path]]:
    """Match the files of two folders by name; a name present on one side only is an error."""
    clean = {p.name: p for p in list_audio(clean_dir)}
    noisy = {p.name: p for p in list_audio(noisy_dir)}
    if not clean and not noisy:
        raise AudioFileError(f"{clean_dir} and {noisy_dir}: no audio files")
    only_clean = sorted(set(clean) - set(noisy))
    only_noisy = sorted(set(noisy) - set(clean))
    if only_clean or only_noisy:
        parts = []
        if only_clean:
            parts.append(
                f"{Path(clean_dir) / only_clean[0]} has no partner in {noisy_dir} ({len(only_clean)} such files)"
            )
        if only_noisy:
            parts.append(
                f"{Path(noisy_dir) / only_noisy[0]} has no partner in {clean_dir} ({len(only_noisy)} such files)"
            )
        raise AudioFileError("clean/noisy file names do not match: " + "; ".join(parts))
    return [(clean[n], noisy[n]) for n in sorted(clean)]


class PairedAudioDataset(Dataset):
    """Clean / degraded pairs read from disk (decoded once and kept in memory when ``cache``).

    Args:
        pairs: ``[(clean path, noisy path)]`` with matching names.
        sample_rate: rate every file is resampled to.
        crop_samples: random crops of this many samples (training); ``None`` gives whole files.
        min_seconds: shorter files are rejected with an error naming them.
        cache: keep decoded waveforms in memory.
        warn_stereo: warn for every multi-channel file mixed down to mono (the data modules warn
            once for the whole data set instead).
    """

    def __init__(
        self,
        pairs: list[tuple[Path, Path]],
        sample_rate: int = 16000,
        crop_samples: int | None = None,
        *,
        min_seconds: float = 0.25,
        cache: bool = True,
        warn_stereo: bool = True,
    ) -> None:
        if not pairs:
            raise AudioFileError("empty dataset: no clean/noisy pairs")
        self.pairs = list(pairs)
        self.sample_rate = int(sample_rate)
        self.crop_samples = crop_samples
        self.min_seconds = min_seconds
        self.cache = cache
        self.warn_stereo = warn_stereo
        self._store: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def __len__(self) -> int:
        return len(self.pairs)

    def load_pair(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if i in self._store:
            return self._store[i]
        cpath, npath = self.pairs[i]
        clean, _ = load_audio(cpath, self.sample_rate, warn_stereo=self.warn_stereo)
        noisy, _ = load_audio(npath, self.sample_rate, warn_stereo=self.warn_stereo)
        if clean.shape[0] != noisy.shape[0]:
            raise AudioFileError(
                f"{cpath} and {npath}: lengths differ ({clean.shape[0]} vs {noisy.shape[0]} samples at "
                f"{self.sample_rate} Hz); a clean/noisy pair must be sample-aligned"
            )
        check_clip(noisy, npath, self.sample_rate, min_seconds=self.min_seconds)
        check_clip(clean, cpath, self.sample_rate, min_seconds=self.min_seconds)
        if self.cache:
            self._store[i] = (clean, noisy)
        return clean, noisy

    def validate(self) -> None:
        """Load every pair once (raising on the first bad file)."""
        for i in range(len(self)):
            self.load_pair(i)

    def __getitem__(self, i: int) -> dict:
        clean, noisy = self.load_pair(i)
        n = clean.shape[0]
        if self.crop_samples is not None:
            c = self.crop_samples
            if n >= c:
                start = int(torch.randint(0, n - c + 1, ()))
                clean, noisy = clean[start : start + c], noisy[start : start + c]
            else:
                clean = torch.nn.functional.pad(clean, (0, c - n))
                noisy = torch.nn.functional.pad(noisy, (0, c - n))
            n = min(n, c)
        return {"clean": clean, "noisy": noisy, "length": n, "name": self.pairs[i][0].name}


def collate_pairs(items: list[dict]) -> dict:
    """Stack items, zero-padding ``clean`` / ``noisy`` to the longest: ``(B, L_max)``; ``length`` ``(B,)``."""
    longest = max(it["clean"].shape[0] for it in items)

    def pad(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.pad(x, (0, longest - x.shape[0]))

    return {
        "clean": torch.stack([pad(it["clean"]) for it in items]),
        "noisy": torch.stack([pad(it["noisy"]) for it in items]),
        "length": torch.tensor([it["length"] for it in items]),
        "name": [it["name"] for it in items],
    }


__all__ = ["PairedAudioDataset", "collate_pairs", "pair_folders"]
