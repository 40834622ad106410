"""difflab.text: text diffusion (masked diffusion LM, GIDD, DiffuSeq-style seq2seq).

Status: package skeleton. The command line ``difflab-text`` and the package layout are in place;
the methods, data modules and demo are not built yet.
"""

__version__ = "0.1.0"
BUILT = False
