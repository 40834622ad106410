"""difflab.timeseries: probabilistic forecasting with diffusion.

* :class:`~difflab.timeseries.models.spd.StochasticProcessDiffusion`: GP / OU / white-noise diffusion
  (discrete DSPD and continuous CSPD) with a CSDI-style denoiser, forecasting and imputation;
* :class:`~difflab.timeseries.models.falda.DecomposedDiffusion`: FALDA-style deterministic mean +
  diffusion on the residual;
* :class:`~difflab.timeseries.data.ForecastDataModule`: wide / long CSV, GluonTS JSON lines and the
  offline default series (pmdarima taylor, pvlib TMY3, vega-datasets temperatures);
* :mod:`~difflab.timeseries.metrics`: GluonTS-style CRPS, CRPS-sum, exact ensemble CRPS, coverage.
"""

__version__ = "0.1.0"
BUILT = True
