"""Forward processes: continuous linear Gaussian (VP/VE/sub-VP, OU, residual shift, flow, correlated) and discrete."""

from difflab.core.processes.base import LinearGaussianProcess
from difflab.core.processes.correlated import (
    CorrelatedNoise,
    gp_kernel,
    kernel_cholesky,
    ou_kernel,
    ou_recursion_sample,
)
from difflab.core.processes.discrete import GIDD, MaskedDiffusion, SpindleMaskedDiffusion, UniformDiffusion
from difflab.core.processes.flow import ConditionalFlow, FlowMatching, reflow_pairs
from difflab.core.processes.gaussian import VESDE, VPSDE, CosineVP, DiscreteVP, SubVPSDE
from difflab.core.processes.ou import OUVESDE
from difflab.core.processes.residual import RDDMProcess, ResfusionProcess, ResidualShift

__all__ = [
    "LinearGaussianProcess",
    "VPSDE",
    "SubVPSDE",
    "VESDE",
    "CosineVP",
    "DiscreteVP",
    "OUVESDE",
    "ResidualShift",
    "RDDMProcess",
    "ResfusionProcess",
    "FlowMatching",
    "ConditionalFlow",
    "reflow_pairs",
    "CorrelatedNoise",
    "gp_kernel",
    "ou_kernel",
    "kernel_cholesky",
    "ou_recursion_sample",
    "MaskedDiffusion",
    "SpindleMaskedDiffusion",
    "UniformDiffusion",
    "GIDD",
]
