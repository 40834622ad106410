"""Data: the ActionFormer / ActivityNet layout (annotation JSON + per-video .npy) and the offline
mocap default (pybullet_data DeepMimic clips composed into untrimmed videos)."""

from difflab.video.data.annotations import AnnotationError, FeatureSpec, VideoRecord, read_annotations
from difflab.video.data.datamodule import MocapTADDataModule, TADDataModule, TADDataset, collate_videos

__all__ = [
    "AnnotationError",
    "FeatureSpec",
    "MocapTADDataModule",
    "TADDataModule",
    "TADDataset",
    "VideoRecord",
    "collate_videos",
    "read_annotations",
]
