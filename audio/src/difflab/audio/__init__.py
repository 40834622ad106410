"""difflab.audio: diffusion speech enhancement and dereverberation.

Methods: SGMSE+ (:class:`~difflab.audio.models.SGMSE`), StoRM (:class:`~difflab.audio.models.StoRM`)
and the predictive baseline (:class:`~difflab.audio.models.PredictiveEnhancer`), on an NCSN++-style
U-Net (:class:`~difflab.audio.networks.NCSNpp`); classical baselines (Wiener filter with the
decision-directed a priori SNR, stationary spectral gate) in :mod:`difflab.audio.baselines`.
Data: VoiceBank-DEMAND layout, generic paired
folders and the offline default data (``difflab-audio make-dataset``). Command line:
``difflab-audio fit|validate|test|predict|enhance|make-dataset|demo``.
"""

__version__ = "0.1.0"
BUILT = True
