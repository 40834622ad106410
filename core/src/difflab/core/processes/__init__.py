"""Forward processes: continuous linear Gaussian (VP/VE/sub-VP, OU, residual shift, flow) and discrete."""

from difflab.core.processes.base import LinearGaussianProcess
from difflab.core.processes.gaussian import VESDE, VPSDE, CosineVP, DiscreteVP, SubVPSDE

__all__ = ["LinearGaussianProcess", "VPSDE", "SubVPSDE", "VESDE", "CosineVP", "DiscreteVP"]
