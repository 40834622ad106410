"""difflab.vision: image super-resolution (ResShift, SR3, InvSR-style, SAM-DiffSR-style).

Status: package skeleton. The command line ``difflab-vision`` and the package layout are in place;
the methods, data modules and demo are not built yet.
"""

__version__ = "0.1.0"
BUILT = False
