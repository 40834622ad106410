"""Speech data: file I/O, paired datasets, data modules and the offline default data."""

from difflab.audio.data.datamodule import (
    DefaultSpeechDataModule,
    PairedFolderDataModule,
    SpeechDataModule,
    VoiceBankDataModule,
    default_data_root,
)
from difflab.audio.data.datasets import PairedAudioDataset, collate_pairs, pair_folders
from difflab.audio.data.io import AudioFileError, load_audio, write_wav

__all__ = [
    "AudioFileError",
    "DefaultSpeechDataModule",
    "PairedAudioDataset",
    "PairedFolderDataModule",
    "SpeechDataModule",
    "VoiceBankDataModule",
    "collate_pairs",
    "default_data_root",
    "load_audio",
    "pair_folders",
    "write_wav",
]
