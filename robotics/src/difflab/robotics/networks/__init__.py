"""Plain nn.Modules: the conditional 1-D U-Net (Diffusion Policy) and the chunk MLP (BC baseline)."""

from difflab.robotics.networks.mlp import ChunkMLP
from difflab.robotics.networks.unet1d import ConditionalUnet1D

__all__ = ["ConditionalUnet1D", "ChunkMLP"]
