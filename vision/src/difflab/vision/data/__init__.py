"""Data for super-resolution: image I/O, degradations, datasets, the default photographs, the DataModule."""

from difflab.vision.data.datamodule import SRDataModule
from difflab.vision.data.datasets import DegradedImageDataset, PairedFolderDataset, folder_sources, make_item
from difflab.vision.data.degradations import RealESRGANDegradation, bicubic_downsample, bicubic_upsample, resize
from difflab.vision.data.io import ImageReadError, LoadedImage, read_image, write_image
from difflab.vision.data.photos import HELDOUT_PHOTOS, TRAIN_PHOTOS, load_photos

__all__ = [
    "SRDataModule",
    "DegradedImageDataset",
    "PairedFolderDataset",
    "folder_sources",
    "make_item",
    "RealESRGANDegradation",
    "bicubic_downsample",
    "bicubic_upsample",
    "resize",
    "ImageReadError",
    "LoadedImage",
    "read_image",
    "write_image",
    "HELDOUT_PHOTOS",
    "TRAIN_PHOTOS",
    "load_photos",
]
