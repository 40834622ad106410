"""difflab.audio: speech enhancement and dereverberation (SGMSE+, StoRM).

Status: package skeleton. The command line ``difflab-audio`` and the package layout are in place;
the methods, data modules and demo are not built yet.
"""

__version__ = "0.1.0"
BUILT = False
