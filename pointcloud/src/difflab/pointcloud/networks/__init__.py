"""Plain nn.Modules of difflab.pointcloud."""

from difflab.pointcloud.networks.filter_net import DisplacementNet
from difflab.pointcloud.networks.graph import EdgeConv, gather_neighbours, knn
from difflab.pointcloud.networks.point_denoiser import PRESETS, PointSetDenoiser

__all__ = ["DisplacementNet", "EdgeConv", "PointSetDenoiser", "PRESETS", "gather_neighbours", "knn"]
