r"""Online evaluation with delayed ground truth (the evaluation rule of Proceed, Zhao & Shen 2025,
"Proactive Model Adaptation Against Concept Drift for Online Time Series Forecasting").

Forecasts are issued at every ``stride``-th step ``T`` of the test period for ``T+1 .. T+H``. The truth
of step ``T + H`` is only known at time ``T + H``, so a model that adapts online at time ``T`` may use
only windows whose *whole horizon* ends at or before ``T``: the freshest usable window is the one
issued at ``T - H``. Using the window issued at ``T - 1`` would leak ``H - 1`` future values.

:func:`online_evaluate` runs this loop: at each forecast time it first (optionally) fine-tunes the
model for ``finetune_steps`` gradient steps on the ``finetune_windows`` most recent windows whose
horizon has fully arrived, then forecasts. With a trained :class:`~difflab.timeseries.proceed.Proceed`
it then adapts the network proactively before forecasting: the drift between the windows issued up to
``T`` (their contexts are known at ``T``, their truths are not) and the latest ``k`` windows whose truth
has arrived (horizon starts ``s <= T - H``) is turned into per-layer scale / shift adaptations. The
fine-tuning steps update the unadapted network (the generator stays fixed, as in the reference).

The pool of windows that fine-tuning and Proceed read holds every window of the table (training,
validation and test splits), so the first test forecasts learn from the validation period just before.
"""

from __future__ import annotations

import time
from contextlib import nullcontext

import numpy as np
import torch

from difflab.core.progress import progress
from difflab.timeseries.data.windows import WindowDataset
from difflab.timeseries.metrics import metric_table


def available_windows(starts: np.ndarray, horizon: int, now: int) -> np.ndarray:
    """Horizon starts whose horizon ``[s, s + H)`` has fully arrived by time ``now`` (``s + H <= now``)."""
    return starts[starts + horizon <= now]


def online_evaluate(
    model,
    dm,
    *,
    stride: int | None = None,
    finetune_steps: int = 0,
    finetune_windows: int = 32,
    lr: float = 1e-4,
    num_samples: int = 32,
    seed: int = 0,
    max_forecasts: int | None = None,
    proceed=None,
) -> dict:
    """Rolling forecasts over the test split of ``dm`` with delayed truth; returns the metrics (with
    ``cpu_s``, CPU seconds per forecast including its adaptation), the samples ``(S, N, H, D)``, truths
    and masks ``(N, H, D)``. ``proceed``: a trained :class:`~difflab.timeseries.proceed.Proceed` of
    ``model.network`` (None: no proactive adaptation)."""
    test = dm.windows("test", stride=stride or dm.prediction_length)
    pool = [dm.windows(split, stride=1).starts for split in ("train", "val", "test")]
    pool = np.unique(np.concatenate(pool)).astype(np.int64)
    H = dm.prediction_length
    series = None if proceed is None else proceed.series(dm.table.values)
    opt = torch.optim.Adam(model.parameters(), lr=lr) if finetune_steps > 0 else None
    gen = torch.Generator().manual_seed(seed)
    samples, truths, masks = [], [], []
    starts = test.starts if max_forecasts is None else test.starts[:max_forecasts]
    desc = f"online, {finetune_steps} fine-tuning steps per forecast{', Proceed' if proceed is not None else ''}"
    cpu = time.process_time()
    for k, now in enumerate(progress(starts, desc, unit="forecasts")):
        if opt is not None:
            usable = available_windows(pool, H, int(now))[-finetune_windows:]
            ds = WindowDataset(dm.table, dm.context_length, H, usable, scaling=dm.scaling)
            batch = {key: torch.stack([ds[i][key] for i in range(len(ds))]) for key in ds[0]}
            model.train()
            for step in range(finetune_steps):
                loss = model.training_loss(batch, torch.Generator().manual_seed(seed * 7919 + k * 101 + step))
                opt.zero_grad()
                loss.backward()
                opt.step()
        one = WindowDataset(dm.table, dm.context_length, H, np.array([now]), scaling=dm.scaling)
        batch = {key: v[None] for key, v in one[0].items()}
        with proactive(proceed, model, series, pool, H, int(now)):
            s = model.forecast(batch, num_samples, generator=gen)
        s = model.unscale(s, batch)[:, 0, dm.context_length :]
        samples.append(s.numpy())
        y = batch["x0"] * batch["scale"] + batch["loc"]
        truths.append(y[0, dm.context_length :].numpy())
        masks.append(batch["target_mask"][0, dm.context_length :].numpy())
    cpu_s = (time.process_time() - cpu) / len(starts)
    s = np.stack(samples, axis=1)
    y, m = np.stack(truths), np.stack(masks)
    return {"metrics": {**metric_table(s, y, m), "cpu_s": cpu_s}, "samples": s, "target": y, "mask": m}


def proactive(proceed, model, series, pool: np.ndarray, horizon: int, now: int):
    """The context in which ``model.network`` forecasts at ``now``: adapted by ``proceed`` from the
    drift between the windows issued up to ``now`` and the latest ``k`` of ``pool`` whose horizon has
    arrived (:func:`available_windows`), or unchanged without ``proceed``."""
    if proceed is None:
        return nullcontext()
    recent, _ = proceed.window_starts(now, horizon)
    training = available_windows(pool, horizon, now)[-proceed.windows :]
    if len(training) < proceed.windows or recent.min() < int(pool.min()):
        raise ValueError(f"Proceed: fewer than {proceed.windows} windows before forecast time {now}")
    with torch.no_grad():
        adaptations = proceed.adaptation(series, recent[None], training[None])
    return proceed.applied(model.network, adaptations)


__all__ = ["available_windows", "online_evaluate", "proactive"]
