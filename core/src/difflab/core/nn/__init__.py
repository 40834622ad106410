"""Small network pieces shared by the domains' denoisers: time embeddings and conditioning layers.

Plain ``torch.nn`` modules only (no Lightning).
"""

from difflab.core.nn.embeddings import GaussianFourierEmbedding, SinusoidalTimeEmbedding
from difflab.core.nn.modulation import AdaLayerNorm, FiLM

__all__ = ["SinusoidalTimeEmbedding", "GaussianFourierEmbedding", "FiLM", "AdaLayerNorm"]
