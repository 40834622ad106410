"""Plain ``nn.Module`` networks of difflab.audio."""

from difflab.audio.networks.ncsnpp import PRESETS, NCSNpp

__all__ = ["NCSNpp", "PRESETS"]
