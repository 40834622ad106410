"""Small network pieces shared by the domains' denoisers: time embeddings, conditioning layers and the
skeleton of a DDPM-style U-Net.

Plain ``torch.nn`` modules only (no Lightning).
"""

from difflab.core.nn.embeddings import GaussianFourierEmbedding, SinusoidalTimeEmbedding
from difflab.core.nn.modulation import AdaLayerNorm, FiLM
from difflab.core.nn.unet import UNetLevels, run_unet

__all__ = [
    "SinusoidalTimeEmbedding",
    "GaussianFourierEmbedding",
    "FiLM",
    "AdaLayerNorm",
    "UNetLevels",
    "run_unet",
]
