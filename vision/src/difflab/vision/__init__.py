"""difflab.vision: diffusion image super-resolution.

Methods (``difflab.vision.models``, one LightningModule per file):

* :class:`~difflab.vision.models.ResShiftSR` -- ResShift's residual-shifting chain (15- and 4-step presets);
* :class:`~difflab.vision.models.SR3` -- SR3-style conditional DDPM sampled with core's DDIM / DPM-Solver++;
* :class:`~difflab.vision.models.InvSRStart` -- InvSR-style noise-predictor start for 1-5 steps;
* :class:`~difflab.vision.models.SAMDiffSR` -- SAM-DiffSR-style region-modulated training noise (SLIC masks).

Data (``difflab.vision.data``): BasicSR-style paired folders, HR folders degraded on the fly
(bicubic, Real-ESRGAN second-order), and the offline default photographs. Metrics: PSNR / SSIM
under the BasicSR protocol (``difflab.vision.metrics``). Command line: ``difflab-vision``.
"""

__version__ = "0.1.0"
BUILT = True

__all__ = ["__version__", "BUILT"]
