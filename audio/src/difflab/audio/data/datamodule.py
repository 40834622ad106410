"""Lightning data modules for paired speech: VoiceBank-DEMAND layout, generic folders, offline default.

* :class:`VoiceBankDataModule`: ``ROOT/{train,valid,test}/{clean,noisy}/*.wav`` with identical
  names (the layout of VoiceBank-DEMAND as SGMSE+ uses it; for dereverberation data pass
  ``clean_dir="anechoic", noisy_dir="reverb"``).
* :class:`PairedFolderDataModule`: any clean / noisy folder pair per split.
* :class:`DefaultSpeechDataModule`: the offline default (``difflab-audio make-dataset``), written on
  first use when its folder is missing.

The data decides the sample rate: without ``sample_rate`` the module works at the files' own rate
(all files must share it; :mod:`.survey` reads the headers before any audio is decoded), and the
model takes it when training starts (a trained model must match it). With ``sample_rate`` every file
is resampled to it with torchaudio (one warning). Multi-channel files are mixed down to mono (one
warning for the data set). A training set smaller than ``batch_size`` trains in batches of all its
pairs (with a note), so a config works on a data set of any size.

Training batches are random crops of ``crop_samples`` (32,640 samples = 256 STFT frames at hop
128, SGMSE+'s crop; shorter clips are zero-padded, as SGMSE+ does); evaluation batches are whole
files (``eval_batch_size`` 1 by default; larger batches are zero-padded, with the true lengths in
``length``). Batches follow :func:`~difflab.audio.data.datasets.collate_pairs`: ``clean`` /
``noisy`` ``(B, L)``, ``length`` ``(B,)``, ``name`` list.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from difflab.audio.data.datasets import PairedAudioDataset, collate_pairs, pair_folders
from difflab.audio.data.io import AudioFileError
from difflab.audio.data.survey import survey_pairs
from difflab.core.lightning.data import SplitDataModule


def default_data_root(task: str) -> Path:
    """Where the offline default data of ``task`` lives: ``$DIFFLAB_AUDIO_DATA/<task>`` or
    ``~/.cache/difflab/audio/<task>``."""
    base = os.environ.get("DIFFLAB_AUDIO_DATA")
    return (Path(base) if base else Path.home() / ".cache" / "difflab" / "audio") / task


class SpeechDataModule(SplitDataModule):
    """Base of the speech data modules (the CLI's ``data.class_path`` picks a subclass).

    Args:
        sample_rate: rate every file is resampled to; ``None`` (default): the files' own rate, which
            they must share. After :meth:`setup` it holds the rate the data works at (the model's).
        crop_samples: length of the random training crops.
        batch_size: training batch size.
        eval_batch_size: validation / test batch size (whole files, padded).
        limit_eval_files: use only the first N validation / test files (None: all).
        num_workers: DataLoader workers.
        seed: seed of the training order.
        cache: keep decoded audio in memory.
    """

    def __init__(
        self,
        sample_rate: int | None = None,
        crop_samples: int = 32640,
        batch_size: int = 8,
        eval_batch_size: int = 1,
        limit_eval_files: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
        cache: bool = True,
    ) -> None:
        super().__init__()
        if sample_rate is not None and sample_rate < 8000:
            raise ValueError(f"{type(self).__name__}: sample_rate must be >= 8000, got {sample_rate}")
        if crop_samples < 1024:
            raise ValueError(f"{type(self).__name__}: crop_samples must be >= 1024, got {crop_samples}")
        if batch_size < 1 or eval_batch_size < 1:
            raise ValueError(f"{type(self).__name__}: batch sizes must be >= 1, got {batch_size}, {eval_batch_size}")
        self.requested_rate = int(sample_rate) if sample_rate is not None else None
        self.sample_rate, self.crop_samples = self.requested_rate, int(crop_samples)
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.limit_eval_files = limit_eval_files
        self.num_workers, self.seed, self.cache = num_workers, seed, cache
        self.collate_fn = collate_pairs

    def split_pairs(self, split: Literal["train", "valid", "test"]) -> list[tuple[Path, Path]] | None:
        """``[(clean, noisy)]`` of a split, or None if the split does not exist."""
        raise NotImplementedError

    def _dataset(self, pairs: list[tuple[Path, Path]] | None, train: bool) -> PairedAudioDataset | None:
        if pairs is None:
            return None
        crop = self.crop_samples if train else None
        return PairedAudioDataset(pairs, self.sample_rate, crop, cache=self.cache, warn_stereo=False)

    def setup(self, stage: str | None = None) -> None:
        if self.val_set is not None:
            return
        self.prepare()
        splits = {name: self.split_pairs(name) for name in ("train", "valid", "test")}  # type: ignore[misc]
        for name in ("valid", "test"):
            if splits[name] is not None and self.limit_eval_files is not None:
                splits[name] = splits[name][: self.limit_eval_files]
        self.sample_rate = survey_pairs([p for ps in splits.values() for p in ps or []], self.requested_rate)
        self.train_set = self._dataset(splits["train"], True)
        self.val_set = self._dataset(splits["valid"], False)
        self.test_set = self._dataset(splits["test"], False)
        if self.train_set is not None and len(self.train_set) < self.batch_size:
            from difflab.core.progress import note

            note(
                f"--data.init_args.batch_size {self.batch_size}: the training set has {len(self.train_set)} pairs; "
                f"training in batches of {len(self.train_set)}"
            )
            self.batch_size = len(self.train_set)

    def prepare(self) -> None:
        """Hook run before the datasets are built (the default module writes its data here)."""


class VoiceBankDataModule(SpeechDataModule):
    """VoiceBank-DEMAND layout: ``root/{train,valid,test}/{clean_dir,noisy_dir}/*.wav``.

    Args:
        root: dataset folder.
        clean_dir, noisy_dir: sub-folder names of the targets and inputs (``anechoic`` / ``reverb``
            for SGMSE+'s dereverberation layout).
        (the rest: see :class:`SpeechDataModule`)
    """

    def __init__(self, root: str, clean_dir: str = "clean", noisy_dir: str = "noisy", **kwargs) -> None:
        super().__init__(**kwargs)
        self.root = Path(root)
        self.clean_dir, self.noisy_dir = clean_dir, noisy_dir

    def split_pairs(self, split):
        folder = self.root / split
        if not folder.is_dir():
            if split == "test":
                return None
            raise AudioFileError(
                f"{folder}: missing split folder "
                f"(expected {self.root}/{split}/{{{self.clean_dir},{self.noisy_dir}}}/*.wav)"
            )
        return pair_folders(folder / self.clean_dir, folder / self.noisy_dir)


class PairedFolderDataModule(SpeechDataModule):
    """Any clean / noisy folder pairs: one pair of folders for each of train, valid and (optionally) test."""

    def __init__(
        self,
        train_clean: str,
        train_noisy: str,
        valid_clean: str,
        valid_noisy: str,
        test_clean: str | None = None,
        test_noisy: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if (test_clean is None) != (test_noisy is None):
            raise ValueError("PairedFolderDataModule: give both test_clean and test_noisy, or neither")
        self.folders = {
            "train": (train_clean, train_noisy),
            "valid": (valid_clean, valid_noisy),
            "test": (test_clean, test_noisy),
        }

    def split_pairs(self, split):
        clean, noisy = self.folders[split]
        return None if clean is None else pair_folders(clean, noisy)


class DefaultSpeechDataModule(VoiceBankDataModule):
    """The offline default data of ``task`` (written by :func:`~difflab.audio.data.synth.make_dataset`
    on first use): synthetic speech for train / valid, real recorded speech for test.

    Args:
        task: ``denoise`` or ``dereverb``.
        root: data folder; None means :func:`default_data_root` (``~/.cache/difflab/audio/<task>``).
        num_train, num_valid, num_test: sizes used when the data has to be written.
        data_seed: seed of the data generation.
    """

    def __init__(
        self,
        task: Literal["denoise", "dereverb"] = "denoise",
        root: str | None = None,
        num_train: int = 400,
        num_valid: int = 20,
        num_test: int = 24,
        data_seed: int = 0,
        **kwargs,
    ) -> None:
        if task not in ("denoise", "dereverb"):
            raise ValueError(f"DefaultSpeechDataModule: task must be 'denoise' or 'dereverb', got {task!r}")
        super().__init__(root=str(root) if root is not None else str(default_data_root(task)), **kwargs)
        self.task = task
        self.sizes = (num_train, num_valid, num_test)
        self.data_seed = data_seed

    def prepare(self) -> None:
        from difflab.audio.data.synth import is_complete, make_dataset

        if not is_complete(self.root):
            taken = self.root.is_dir() and any(self.root.iterdir())
            if taken and not (self.root / "README.txt").is_file():  # not a default data set: never write into it
                raise AudioFileError(
                    f"{self.root}: holds files but no complete train/ and valid/ clean/noisy folders, so the default "
                    "data is not written there; for your own recordings in the VoiceBank-DEMAND layout pass "
                    "--data.class_path difflab.audio.data.VoiceBankDataModule --data.init_args.root "
                    f"{self.root} (or remove the folder to write the default data)"
                )
            n_train, n_valid, n_test = self.sizes
            make_dataset(
                self.root, self.task, num_train=n_train, num_valid=n_valid, num_test=n_test, seed=self.data_seed
            )


__all__ = [
    "DefaultSpeechDataModule",
    "PairedFolderDataModule",
    "SpeechDataModule",
    "VoiceBankDataModule",
    "default_data_root",
]
