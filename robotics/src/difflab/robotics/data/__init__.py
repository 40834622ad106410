"""Demonstration data: zarr replay buffers, edge-padded windows, the expert collector, the data module."""

from difflab.robotics.data.datamodule import DemoDataModule
from difflab.robotics.data.replay_buffer import DemoDataError, ReplayBuffer
from difflab.robotics.data.windows import MinMaxNormalizer, SequenceWindows, window_indices

__all__ = ["DemoDataModule", "DemoDataError", "ReplayBuffer", "MinMaxNormalizer", "SequenceWindows", "window_indices"]
