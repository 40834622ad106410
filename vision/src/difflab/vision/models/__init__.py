"""LightningModules, one file per method."""

from difflab.vision.models.base import SRDiffusion
from difflab.vision.models.invsr import InvSRStart
from difflab.vision.models.resshift import RESSHIFT_PRESETS, ResShiftSR
from difflab.vision.models.sam_diffsr import SAMDiffSR
from difflab.vision.models.sr3 import SR3

__all__ = ["SRDiffusion", "ResShiftSR", "RESSHIFT_PRESETS", "SR3", "SAMDiffSR", "InvSRStart"]
