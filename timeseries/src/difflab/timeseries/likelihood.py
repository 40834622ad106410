r"""The ``nll`` verb: negative log-likelihood of held-out forecast windows given their context.

For every window of a split of the checkpoint's own data (the data module recorded by ``fit``), the
conditional model's probability-flow ODE gives ``log p(horizon | context)``
(:meth:`~difflab.timeseries.models.spd.StochasticProcessDiffusion.forecast_log_likelihood`: RK4 from
the smallest trained time to 1, Hutchinson's divergence with Rademacher probes, the coloured-noise
prior over the horizon's timestamps). Reported in nats per forecast value,

.. math:: \mathrm{NLL} = -\frac{\sum_w \log p(y_w \mid c_w)}{\sum_w |H_w|},

in data units (the density of the values as given) and in the windows' scaled units (comparable
across series of other magnitudes). Windows with a missing horizon value are left out and counted.

Cost: ``4 * steps`` network evaluations, each with one backward pass per probe, per batch of windows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch

from difflab.core.errors import UserError
from difflab.core.progress import StepProgress, artifact, note


def split_nll(
    model,
    windows,
    *,
    steps: int = 32,
    probes: int = 1,
    batch_size: int = 16,
    seed: int = 0,
    progress: StepProgress | None = None,
) -> dict[str, float]:
    """``{"nll", "nll_scaled", "values", "windows", "left_out"}`` of a window dataset (module docstring)."""
    from torch.utils.data import DataLoader

    g = torch.Generator(device=model.device).manual_seed(seed)
    nll = nll_scaled = values = 0.0
    kept = left = 0
    for batch in DataLoader(windows, batch_size=batch_size, shuffle=False):
        batch = {k: v.to(model.device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
        log_p, log_p_scaled, n = model.forecast_log_likelihood(
            batch, steps=steps, probes=probes, generator=g, callback=progress
        )
        ok = torch.isfinite(log_p)
        nll -= float(log_p[ok].double().sum())
        nll_scaled -= float(log_p_scaled[ok].double().sum())
        values += float(n[ok].double().sum())
        kept, left = kept + int(ok.sum()), left + int((~ok).sum())
    if kept == 0:
        raise UserError(f"every one of the {left} windows has a missing horizon value: no likelihood to report")
    return {"nll": nll / values, "nll_scaled": nll_scaled / values, "values": values, "windows": kept, "left_out": left}


def nll(
    ckpt: str | Path | None = None,
    *,
    split: Literal["val", "test"] = "test",
    steps: int = 32,
    probes: int = 1,
    batch_size: int = 16,
    max_windows: int | None = None,
    seed: int = 0,
    out: Path | None = None,
) -> int:
    """Print (and with ``out`` write) the NLL per forecast value of a split's windows (without ``ckpt``:
    the shipped default forecaster on the taylor windows)."""
    from difflab.timeseries.data import ForecastDataModule
    from difflab.timeseries.inference import default_checkpoint, evaluation_data, load_checkpoint

    ckpt = default_checkpoint(ckpt)
    model, data_hp = load_checkpoint(ckpt)
    if not data_hp:
        raise UserError(f"{ckpt}: the checkpoint records no data module; nll scores the data it was trained on")
    dm = ForecastDataModule(**evaluation_data(data_hp))
    dm.setup()
    windows = dm.test_set if split == "test" else dm.val_set
    if max_windows is not None and len(windows) > max_windows:
        windows = torch.utils.data.Subset(windows, range(max_windows))
    batches = -(-len(windows) // batch_size)
    bar = StepProgress(f"nll of {len(windows)} {split} windows", steps * batches, unit="RK4 steps")
    result = split_nll(model, windows, steps=steps, probes=probes, batch_size=batch_size, seed=seed, progress=bar)
    bar.close()
    line = (
        f"{split}: NLL {result['nll']:.4f} nats per forecast value (data units), {result['nll_scaled']:.4f} "
        f"(scaled units), over {result['windows']} windows, {int(result['values'])} values "
        f"({steps} RK4 steps, {probes} Hutchinson probe(s))"
    )
    if result["left_out"]:
        line += f"; {result['left_out']} windows with a missing horizon value left out"
    note(line)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(line + "\n")
        artifact(out, f"NLL of the {split} windows")
    return 0


__all__ = ["nll", "split_nll"]
