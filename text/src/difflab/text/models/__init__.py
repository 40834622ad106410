"""LightningModules of difflab.text, one file per method."""

from difflab.text.models.ar import ARLanguageModel
from difflab.text.models.ddpd import DDPDLM
from difflab.text.models.diffuseq import DiffuSeq
from difflab.text.models.gidd import GIDDLM
from difflab.text.models.hyperschedule import HyperscheduleLM
from difflab.text.models.mdlm import MaskedDiffusionLM
from difflab.text.models.neodiff import NeoDiff

__all__ = ["ARLanguageModel", "DDPDLM", "DiffuSeq", "GIDDLM", "HyperscheduleLM", "MaskedDiffusionLM", "NeoDiff"]
