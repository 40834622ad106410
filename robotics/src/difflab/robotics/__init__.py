"""difflab.robotics: diffusion policy (RTI-DP, ParaDiGMS).

Status: package skeleton. The command line ``difflab-robotics`` and the package layout are in place;
the methods, data modules and demo are not built yet.
"""

__version__ = "0.1.0"
BUILT = False
