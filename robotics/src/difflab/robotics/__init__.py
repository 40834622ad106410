"""difflab.robotics: Diffusion Policy on Meta-World with RTI-DP warm starts and ParaDiGMS sampling.

* :mod:`~difflab.robotics.envs`: Meta-World tasks (state observations) and a gymnasium adapter;
* :mod:`~difflab.robotics.data`: zarr replay buffers (diffusion_policy's layout), edge-padded
  windows, min-max normalisation, expert collection, :class:`DemoDataModule`;
* :mod:`~difflab.robotics.networks`: the conditional 1-D temporal U-Net and the BC MLP;
* :mod:`~difflab.robotics.models`: :class:`DiffusionPolicy` (DDPM, squared-cosine, clipped x0,
  core samplers) and :class:`BCPolicy`;
* :mod:`~difflab.robotics.policy`: receding-horizon controllers, RTI-DP, rollouts and metrics.
"""

from difflab.robotics.data import DemoDataModule, ReplayBuffer
from difflab.robotics.models import BCPolicy, DiffusionPolicy
from difflab.robotics.policy import ChunkController, RTIController, evaluate

__version__ = "0.1.0"
BUILT = True

__all__ = [
    "DemoDataModule",
    "ReplayBuffer",
    "DiffusionPolicy",
    "BCPolicy",
    "ChunkController",
    "RTIController",
    "evaluate",
]
