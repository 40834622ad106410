"""Plain nn.Modules of difflab.text (no Lightning)."""

from difflab.text.networks.transformer import ARTransformer, Block, DiffusionTransformer

__all__ = ["ARTransformer", "Block", "DiffusionTransformer"]
