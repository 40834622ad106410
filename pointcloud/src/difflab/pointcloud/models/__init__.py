"""LightningModules of difflab.pointcloud, one file per method."""

from difflab.pointcloud.models.ddpm import PointDDPM
from difflab.pointcloud.models.iterativepfn import IterativePFN, PointFilter
from difflab.pointcloud.models.psf import PointCloudDiffusion, PointStraightFlow, euler_sample, make_pairs
from difflab.pointcloud.models.score_denoise import ScoreDenoiser, langevin_ascent

__all__ = [
    "IterativePFN",
    "PointCloudDiffusion",
    "PointDDPM",
    "PointFilter",
    "PointStraightFlow",
    "ScoreDenoiser",
    "euler_sample",
    "langevin_ascent",
    "make_pairs",
]
