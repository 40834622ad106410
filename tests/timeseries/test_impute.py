"""Imputation with the CSDI-style model (``task: impute``) and the linear-interpolation baseline."""

import numpy as np
import torch

from difflab.timeseries.data import ForecastDataModule
from difflab.timeseries.evaluate import imputation_samples, imputation_truth, interpolation_samples
from difflab.timeseries.metrics import metric_table
from difflab.timeseries.models.spd import StochasticProcessDiffusion
from difflab.timeseries.networks.csdi import CSDIDenoiser


def impute_dm(**kw):
    dm = ForecastDataModule(
        "taylor", context_length=16, prediction_length=8, batch_size=4, task="impute", impute_ratio=0.5, **kw
    )
    dm.setup()
    return dm


def test_interpolation_baseline_is_linear_between_given_values():
    dm = impute_dm()
    ds = dm.test_set
    item = ds[0]
    x = (item["x0"] * item["scale"] + item["loc"]).numpy()[:, 0]
    given = item["cond_mask"].numpy()[:, 0] > 0
    filled = interpolation_samples(ds)[0, 0, :, 0]
    assert np.allclose(filled[given], x[given], rtol=1e-5)
    single = np.flatnonzero(~given[1:-1] & given[:-2] & given[2:]) + 1
    assert len(single) > 0
    i = int(single[0])  # a single hidden value between two given ones (unit spacing) is their mean
    assert np.isclose(filled[i], 0.5 * (x[i - 1] + x[i + 1]), rtol=1e-5)
    y, m = imputation_truth(ds)
    assert y.shape == m.shape == (len(ds), 24, 1)
    assert m.sum() > 0 and not (m[0, :, 0] * given).any()  # scored cells are hidden from the model


def test_csdi_imputes_hidden_values_and_keeps_given_ones():
    dm = impute_dm(max_eval_windows=3)
    ds = dm.test_set
    net = CSDIDenoiser(1, channels=8, n_blocks=1, heads=2, time_emb_dim=8, feature_emb_dim=4, diffusion_emb_dim=8)
    model = StochasticProcessDiffusion(net, noise="white", num_steps=10, sample_steps=10)
    batch = next(iter(dm.train_dataloader()))
    loss = model.training_loss(batch, torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and batch["target_mask"].sum() > 0
    s = imputation_samples(model, ds, num_samples=4, seed=0)
    y, m = imputation_truth(ds)
    assert s.shape == (4, len(ds), 24, 1) and np.isfinite(s).all()
    given = np.stack([ds[k]["cond_mask"].numpy() for k in range(len(ds))]) > 0
    assert np.allclose(s[:, given], y[given][None], rtol=1e-4, atol=1e-2)
    assert s[:, m > 0].std(0).mean() > 0  # hidden values are sampled
    row = metric_table(s, y, m)
    assert np.isfinite(row["crps"]) and 0 <= row["cov90"] <= 1
