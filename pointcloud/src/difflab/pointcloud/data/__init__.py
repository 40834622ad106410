"""Data modules and offline sources of difflab.pointcloud."""

from difflab.pointcloud.data.filtering import FilterDataModule, NoisyPatchDataset, load_meshes, noisy_copy
from difflab.pointcloud.data.shapes import CloudDataset, PairsDataModule, ShapeDataModule, mesh_folder_items

__all__ = [
    "CloudDataset",
    "FilterDataModule",
    "NoisyPatchDataset",
    "PairsDataModule",
    "ShapeDataModule",
    "load_meshes",
    "mesh_folder_items",
    "noisy_copy",
]
