"""LightningModules: the diffusion policy and the behaviour-cloning baseline."""

from difflab.robotics.models.bc import BCPolicy
from difflab.robotics.models.diffusion_policy import DiffusionPolicy

__all__ = ["DiffusionPolicy", "BCPolicy"]
