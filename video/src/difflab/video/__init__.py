"""difflab.video: temporal action detection by proposal denoising diffusion (DiffTAD).

* :class:`~difflab.video.models.DiffTAD`: detection as denoising of temporal (centre, width)
  proposals with a DETR-style decoder, DDIM sampling with proposal renewal and cross-step selective
  conditioning; :class:`~difflab.video.models.DeterministicTAD`: the same network with learned queries.
* data in the ActionFormer / ActivityNet layout (:class:`~difflab.video.data.TADDataModule`) and the
  offline mocap default (:class:`~difflab.video.data.MocapTADDataModule`, pybullet_data DeepMimic clips);
* ActivityNet-protocol detection mAP (:func:`~difflab.video.metrics.detection_map`).
"""

from difflab.video.data import MocapTADDataModule, TADDataModule
from difflab.video.metrics import detection_map
from difflab.video.models import DeterministicTAD, DiffTAD

__version__ = "0.1.0"
BUILT = True

__all__ = ["BUILT", "DeterministicTAD", "DiffTAD", "MocapTADDataModule", "TADDataModule", "detection_map"]
