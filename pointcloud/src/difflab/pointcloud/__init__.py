"""difflab.pointcloud: point-cloud generation (Point Straight Flow) and filtering (IterativePFN).

* Generation: rectified flow on point sets -> reflow on its own ODE pairs -> one-step distillation
  (:class:`~difflab.pointcloud.models.PointStraightFlow`), and a DDPM baseline
  (:class:`~difflab.pointcloud.models.PointDDPM`), on a CPU point-set network with size presets.
* Filtering: :class:`~difflab.pointcloud.models.IterativePFN` and the score-based baseline
  :class:`~difflab.pointcloud.models.ScoreDenoiser`, patch-wise over whole clouds.
* Open3D I/O (:mod:`difflab.pointcloud.io`), data modules (:mod:`difflab.pointcloud.data`), metrics
  (:mod:`difflab.pointcloud.metrics`), the ``difflab-pointcloud`` command.
"""

__version__ = "0.1.0"
BUILT = True

from difflab.pointcloud.io import (  # noqa: E402
    Mesh,
    PointCloudError,
    read_mesh,
    read_points,
    sample_mesh,
    write_mesh,
    write_points,
)

__all__ = ["BUILT", "Mesh", "PointCloudError", "read_mesh", "read_points", "sample_mesh", "write_mesh", "write_points"]
