r"""``ToyDiffusion``: a small MLP denoiser on 2-D toy data (:class:`~difflab.core.lightning.data.ToyDataModule`).

The network (:class:`ToyMLP`) embeds the time with
:class:`~difflab.core.nn.embeddings.SinusoidalTimeEmbedding`, projects it, and modulates every hidden
layer with :class:`~difflab.core.nn.modulation.FiLM`:

.. math:: h_0 = W_{in} x_t + e(t), \qquad h_{l+1} = h_l + W_l\, \mathrm{SiLU}(\mathrm{FiLM}(\mathrm{LN}(h_l), e(t))),
          \qquad f_\theta(x_t, t) = W_{out}\, \mathrm{SiLU}(h_L).

Validation scores samples against the data law when the data module knows it:

* mixture: ``near_mode`` = fraction of samples within 3 component stds of their nearest mean
  (0.989 for exact samples in 2-D: ``1 - exp(-9/2)``), ``mode_weight_error`` = total variation
  ``1/2 sum_k |p_hat_k - w_k|`` between the nearest-mode frequencies and the true weights, and
  ``mode_spread_error`` (:meth:`difflab.core.toy.GaussianMixture.spread_error`);
* moons: ``nn_distance`` = mean distance from a sample to its nearest validation point.

Shapes: ``x_t`` ``(B, 2)`` (any ``(B, D)``), ``t`` ``(B,)``.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from difflab.core.lightning.module import DiffusionModule
from difflab.core.nn import FiLM, SinusoidalTimeEmbedding
from difflab.core.parameterization import Prediction
from difflab.core.processes.base import LinearGaussianProcess
from difflab.core.samplers.select import SamplerName


class ToyMLP(nn.Module):
    """Residual MLP with FiLM time conditioning for ``(B, D)`` points.

    Args:
        dim: data dimension ``D``.
        hidden: hidden width.
        depth: number of residual blocks.
        embed_dim: size of the sinusoidal time embedding.
    """

    def __init__(self, dim: int = 2, hidden: int = 128, depth: int = 3, embed_dim: int = 64) -> None:
        super().__init__()
        self.time_embed = nn.Sequential(SinusoidalTimeEmbedding(embed_dim), nn.Linear(embed_dim, hidden), nn.SiLU())
        self.inp = nn.Linear(dim, hidden)
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(depth))
        self.films = nn.ModuleList(FiLM(hidden, hidden, channel_axis=-1) for _ in range(depth))
        self.layers = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(depth))
        self.out = nn.Linear(hidden, dim)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        c = self.time_embed(t)
        h = self.inp(x) + c
        for norm, film, layer in zip(self.norms, self.films, self.layers):
            h = h + layer(torch.nn.functional.silu(film(norm(h), c)))
        return self.out(torch.nn.functional.silu(h))


class ToyDiffusion(DiffusionModule):
    """Diffusion on 2-D toy points with a :class:`ToyMLP` denoiser.

    Args:
        hidden: MLP width.
        depth: number of residual blocks.
        embed_dim: time-embedding size.
        dim: data dimension.
        process: forward process (``None``: ``VPSDE()``).
        prediction: network parameterisation.
        optimizer: optimiser factory (default Adam, lr 1e-3).
        lr_scheduler: optional LR scheduler factory.
        sampler: sampler used for validation samples and ``predict``.
        sample_steps: its number of steps.
        sampler_options: its options.
        num_val_samples: samples drawn per validation epoch and scored against the data.
    """

    def __init__(
        self,
        hidden: int = 128,
        depth: int = 3,
        embed_dim: int = 64,
        dim: int = 2,
        process: LinearGaussianProcess | None = None,
        prediction: Prediction = "eps",
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        sampler: SamplerName = "ddim",
        sample_steps: int = 50,
        sampler_options: dict[str, Any] | None = None,
        num_val_samples: int = 1000,
    ) -> None:
        super().__init__(
            ToyMLP(dim, hidden, depth, embed_dim),
            process=process,
            prediction=prediction,
            optimizer=optimizer,
            lr_scheduler=lr_scheduler,
            sampler=sampler,
            sample_steps=sample_steps,
            sampler_options=sampler_options,
            num_val_samples=num_val_samples,
        )

    def _datamodule(self):
        return getattr(self._trainer, "datamodule", None) if self._trainer is not None else None

    def sample_metrics(self, samples: Tensor, batch: dict[str, Any]) -> dict[str, Tensor | float]:
        dm = self._datamodule()
        mixture = getattr(dm, "mixture", None)
        if mixture is not None:
            return mixture_metrics(mixture, samples)
        ref = getattr(dm, "val_set", None)
        if ref is not None:
            d = torch.cdist(samples.float(), ref.points.to(samples.device))
            return {"nn_distance": d.min(dim=1).values.mean()}
        return {}

    def log_samples(self, samples: Tensor, batch: dict[str, Any], stage: str) -> None:
        fig = scatter_figure(samples, batch["x0"], title=f"{stage} samples, step {self.global_step}")
        self.log_figure(f"{stage}/samples", fig)


def mixture_metrics(mixture, samples: Tensor) -> dict[str, float]:
    """``near_mode``, ``mode_weight_error``, ``mode_spread_error`` of ``samples`` ``(n, D)`` (module docstring)."""
    s = samples.detach().to(torch.float64).cpu()
    mix = mixture.to(torch.float64)
    dist = mix.distance_to_nearest_mode(s, relative=False)
    k = mix.assign(s)
    near = (dist <= 3 * mix.stds[k]).to(torch.float64).mean()
    tv = 0.5 * (mix.mode_weights(s) - mix.weights).abs().sum()
    return {"near_mode": float(near), "mode_weight_error": float(tv), "mode_spread_error": mix.spread_error(s)}


def scatter_figure(samples: Tensor, data: Tensor | None = None, title: str = ""):
    """A matplotlib figure with the samples (and the data, grey) as scatter plots."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4, 4))
    ax = fig.add_subplot(1, 1, 1)
    if data is not None:
        d = data.detach().float().cpu()
        ax.scatter(d[:, 0], d[:, 1], s=3, c="0.7", label="data")
    s = samples.detach().float().cpu()
    ax.scatter(s[:, 0], s[:, 1], s=3, c="tab:blue", label="samples")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


__all__ = ["ToyDiffusion", "ToyMLP", "mixture_metrics", "scatter_figure"]
