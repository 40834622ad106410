"""Plain ``nn.Module`` networks (no Lightning)."""

from difflab.vision.networks.unet import UNET_PRESETS, UNet

__all__ = ["UNet", "UNET_PRESETS"]
