"""The speech-enhancement methods (LightningModules), one file per method."""

from difflab.audio.models.base import SpeechEnhancer, complex_ouve
from difflab.audio.models.predictive import PredictiveEnhancer
from difflab.audio.models.sgmse import SGMSE
from difflab.audio.models.storm import StoRM

__all__ = ["PredictiveEnhancer", "SGMSE", "SpeechEnhancer", "StoRM", "complex_ouve"]
