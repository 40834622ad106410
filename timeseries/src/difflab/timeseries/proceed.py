r"""Proceed: proactive model adaptation against concept drift (Zhao & Shen, KDD 2025, "Proactive
Model Adaptation Against Concept Drift for Online Time Series Forecasting").

Online, the truth of a window issued at ``T`` arrives only at ``T + H``; at forecast time ``T`` the
freshest windows a model can learn from were issued at ``T - H`` or earlier, and the concept may have
moved since. Proceed estimates that move and turns it into parameter adjustments *before* the truth
arrives:

* **concept encoder** (shared by both sides, so that equal windows give a zero drift): a window's
  context ``X`` ``(D, C)`` (values standardised by the training split's mean / std per series, a missing
  value read as 0) maps to ``c(X) = mean_d W_2 GELU(W_1 x_d + b_1) + b_2`` ``(d_c,)``;
* **drift** between the ``k`` recent windows ``R = {T-k+1, .., T}`` (issued, truth not arrived) and the
  ``k`` training windows ``A = {T-H-k+1, .., T-H}`` (the latest whose truth has arrived):
  ``delta = clip(mean_{s in R} c(X_s) - mean_{s in A} c(X_s))``, clipped to norm <= 1 as the reference does;
* **adaptation generator** (a bottleneck per group of layers with the same adaptation size ``m``):
  ``a_l = U_g sigmoid(D_g delta + e_l) + s_l`` ``(m,)``, with ``U_g`` ``(m, r)`` and the static part
  ``s_l`` initialised to zero, so an untrained generator leaves the model exactly as it is;
* **adapted layer** (every ``nn.Linear`` / ``nn.Conv1d`` whose forward runs, i.e. not the projections
  ``nn.MultiheadAttention`` reads directly): ``a_l = [alpha (F_in) ; gamma (F_out) ; beta (F_out)]`` and
  ``y = ((x * (1 + alpha)) W^T) * (1 + gamma) + b + beta`` (per-channel scale of the input and output,
  shift of the output), applied by forward hooks while :meth:`Proceed.applied` is active.

Training (the paper's: the forecaster frozen, the encoder and generator trained on the training split):
each step draws current windows ``t`` and compares them with reference windows that are, per window,
either the delayed ones (``t - H``, the online gap) or, with probability ``synthetic``, those of a random
other time of the training split (synthetic diverse drifts, as the reference's shuffled batches give);
the loss is the forecaster's own training loss on the current windows through the adapted network.

Differences from the reference: one encoder for both sides over the windows' contexts (the reference
encodes the recent batch's ``[X ; Y]`` and the current ``X`` with two MLPs); since ``C >= H`` here, the
arrived truths ``Y`` of the training windows lie inside the recent contexts. The forecaster adapted here
is the package's diffusion denoiser (its layers get the scale / shift), not a deterministic model.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import Tensor, nn

ADAPTED_LAYERS = (nn.Linear, nn.Conv1d)


def adapted_layers(network: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, layer)`` of every ``nn.Linear`` / ``nn.Conv1d`` whose own forward runs: the projections of
    ``nn.MultiheadAttention`` (read as weights by its functional forward) are left out."""
    inside_attention: set[str] = set()
    for name, module in network.named_modules():
        if isinstance(module, nn.MultiheadAttention):
            inside_attention.update(f"{name}.{sub}" if name else sub for sub, _ in module.named_modules() if sub)
    return [(n, m) for n, m in network.named_modules() if isinstance(m, ADAPTED_LAYERS) and n not in inside_attention]


def layer_widths(layer: nn.Module) -> tuple[int, int]:
    """``(F_in, F_out)`` of a linear or 1-d convolution layer."""
    if isinstance(layer, nn.Linear):
        return layer.in_features, layer.out_features
    return layer.in_channels, layer.out_channels


def channelwise(x: Tensor, scale: Tensor, offset: Tensor | None, channel_dim: int) -> Tensor:
    """``x * scale + offset`` along ``channel_dim`` with one ``(F,)`` row of ``scale`` / ``offset``
    ``(B, F)`` per sample: ``x`` ``(N, ...)`` holds ``N = B k`` rows, sample-major (as the denoiser's
    reshapes ``(B*D, L, C)`` / ``(B*L, D, C)`` and the sampler's ``B*S`` repeats keep them)."""
    b = scale.shape[0]
    if x.shape[0] % b:
        raise ValueError(f"Proceed: a layer input of {x.shape[0]} rows is not a multiple of the {b} adapted samples")
    xs = x.reshape(b, x.shape[0] // b, *x.shape[1:])
    shape = [b] + [1] * (xs.dim() - 1)
    shape[channel_dim % x.dim() + 1] = scale.shape[1]
    y = xs * scale.reshape(shape)
    if offset is not None:
        y = y + offset.reshape(shape)
    return y.reshape(x.shape)


class ConceptEncoder(nn.Module):
    """``c(X) = mean_d W_2 GELU(W_1 x_d + b_1) + b_2``: contexts ``(..., D, C)`` -> concepts ``(..., d_c)``."""

    def __init__(self, context_length: int, concept_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(context_length, concept_dim), nn.GELU(), nn.Linear(concept_dim, concept_dim))

    def forward(self, contexts: Tensor) -> Tensor:
        return self.net(contexts).mean(-2)


class AdaptationGenerator(nn.Module):
    """Drift ``(B, d_c)`` -> one adaptation ``(B, m_l)`` per layer: ``a_l = U_g sigmoid(D_g delta + e_l) + s_l``.

    Layers with the same size ``m`` form a group ``g`` sharing the down- (``D_g``, ``(r, d_c)``) and
    up-projection (``U_g``, ``(m, r)``, zero at initialisation); ``e_l`` ``(r,)`` tells the layers of a
    group apart and ``s_l`` ``(m,)`` (zero at initialisation) is a static adaptation of each layer.
    """

    def __init__(self, sizes: list[int], concept_dim: int, bottleneck_dim: int) -> None:
        super().__init__()
        self.sizes = list(sizes)
        self.groups = sorted(set(sizes))
        self.members = [[i for i, m in enumerate(sizes) if m == size] for size in self.groups]
        r = bottleneck_dim
        self.down = nn.ModuleList(nn.Linear(concept_dim, r, bias=False) for _ in self.groups)
        bound = 1.0 / concept_dim**0.5
        self.layer_bias = nn.ParameterList(
            nn.Parameter(torch.empty(len(m), r).uniform_(-bound, bound)) for m in self.members
        )
        self.up = nn.ParameterList(nn.Parameter(torch.zeros(size, r)) for size in self.groups)
        self.static = nn.ParameterList(
            nn.Parameter(torch.zeros(len(m), size)) for m, size in zip(self.members, self.groups)
        )

    def forward(self, drift: Tensor) -> list[Tensor]:
        out: list[Tensor | None] = [None] * len(self.sizes)
        for g, members in enumerate(self.members):
            hidden = torch.sigmoid(self.down[g](drift)[:, None, :] + self.layer_bias[g][None])  # (B, n_g, r)
            adapt = hidden @ self.up[g].T + self.static[g][None]  # (B, n_g, m)
            for j, layer in enumerate(members):
                out[layer] = adapt[:, j]
        return out  # type: ignore[return-value]


def clip_norm(x: Tensor, max_norm: float = 1.0) -> Tensor:
    """Rows of ``x`` scaled down to norm ``max_norm`` where longer (the reference's drift clipping)."""
    return x * (max_norm / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)).clamp(max=1.0)


class ConceptSeries:
    """A table's values standardised by the training split's per-series ``mean`` / ``std`` (missing: 0),
    read as window contexts: :meth:`contexts` of horizon starts ``s`` are the rows ``[s - C, s)``."""

    def __init__(self, values: np.ndarray, context_length: int, mean: Tensor, std: Tensor) -> None:
        z = (np.asarray(values, dtype=np.float64) - mean.double().numpy()) / std.double().numpy()
        self.z = torch.from_numpy(np.nan_to_num(z, nan=0.0).astype(np.float32))  # (N, D)
        self.C = context_length

    def contexts(self, starts: np.ndarray) -> Tensor:
        """Contexts ``(..., D, C)`` of the windows whose horizons start at ``starts`` ``(...)``."""
        starts = np.asarray(starts, dtype=np.int64)
        if starts.min() < self.C or starts.max() > len(self.z):
            raise ValueError(
                f"Proceed: window starts must lie in [{self.C}, {len(self.z)}], got {starts.min()}..{starts.max()}"
            )
        idx = torch.from_numpy(starts)[..., None] - self.C + torch.arange(self.C)
        return self.z[idx].transpose(-1, -2)


class Proceed(nn.Module):
    """Concept encoder + adaptation generator for the layers of ``network`` (see module docstring).

    Args:
        network: the forecaster's network whose :func:`adapted_layers` get scale / shift adaptations
            (kept by name only: the network is not part of this module's state).
        context_length: ``C`` of the contexts the concept encoder reads.
        num_series: ``D`` (the training split's mean / std per series are buffers of that size).
        concept_dim: ``d_c`` (the reference's default is 200; small windows need less).
        bottleneck_dim: ``r`` of the generator.
        windows: ``k``, recent and training windows averaged on each side of the drift.
    """

    def __init__(
        self,
        network: nn.Module,
        context_length: int,
        num_series: int = 1,
        concept_dim: int = 64,
        bottleneck_dim: int = 16,
        windows: int = 24,
    ) -> None:
        super().__init__()
        if min(context_length, num_series, concept_dim, bottleneck_dim, windows) < 1:
            raise ValueError(
                "Proceed: context_length, num_series, concept_dim, bottleneck_dim and windows must be >= 1, got "
                f"{context_length}, {num_series}, {concept_dim}, {bottleneck_dim}, {windows}"
            )
        layers = adapted_layers(network)
        self.layer_names = [name for name, _ in layers]
        sizes = [sum(layer_widths(layer)) + layer_widths(layer)[1] for _, layer in layers]
        self.context_length, self.windows = context_length, windows
        self.encoder = ConceptEncoder(context_length, concept_dim)
        self.generator = AdaptationGenerator(sizes, concept_dim, bottleneck_dim)
        self.register_buffer("mean", torch.zeros(num_series))
        self.register_buffer("std", torch.ones(num_series))

    def standardise_with(self, values: np.ndarray) -> None:
        """Set the per-series mean / std from the training split's ``values`` ``(N, D)`` (NaN: missing)."""
        self.mean.copy_(torch.from_numpy(np.nanmean(values, axis=0)).float())
        self.std.copy_(torch.from_numpy(np.nanstd(values, axis=0)).float().clamp_min(1e-8))

    def series(self, values: np.ndarray) -> ConceptSeries:
        """``values`` ``(N, D)`` standardised as the training split was, for :meth:`contexts`."""
        return ConceptSeries(values, self.context_length, self.mean, self.std)

    def window_starts(self, now: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        """``(recent, training)`` horizon starts ``(k,)`` at forecast time ``now``: the ``k`` windows issued
        up to ``now`` (truth not arrived) and the ``k`` latest whose horizon ended by ``now`` (``s + H <= now``)."""
        k = np.arange(-self.windows + 1, 1)
        return now + k, now - horizon + k

    def drift(self, series: ConceptSeries, recent: np.ndarray, training: np.ndarray) -> Tensor:
        """``delta`` ``(B, d_c)`` between the recent and the training windows, starts ``(B, k)`` each."""
        c_recent = self.encoder(series.contexts(recent)).mean(-2)
        c_train = self.encoder(series.contexts(training)).mean(-2)
        return clip_norm(c_recent - c_train)

    def adaptation(self, series: ConceptSeries, recent: np.ndarray, training: np.ndarray) -> list[Tensor]:
        """One adaptation ``(B, F_in + 2 F_out)`` per adapted layer, from the drift of :meth:`drift`."""
        return self.generator(self.drift(series, recent, training))

    @contextmanager
    def applied(self, network: nn.Module, adaptations: list[Tensor]) -> Iterator[None]:
        """Within the block, every adapted layer of ``network`` computes
        ``((x * (1 + alpha)) W^T) * (1 + gamma) + b + beta`` with its ``[alpha ; gamma ; beta]``."""
        handles = []
        try:
            for name, a in zip(self.layer_names, adaptations, strict=True):
                handles.extend(_hook_layer(network.get_submodule(name), a))
            yield
        finally:
            for h in handles:
                h.remove()


def _hook_layer(layer: nn.Module, a: Tensor) -> list:
    """Forward pre-hook (input scale) and hook (output scale and shift) of one layer."""
    f_in, f_out = layer_widths(layer)
    alpha, gamma, beta = a.split([f_in, f_out, f_out], dim=-1)
    ch = -1 if isinstance(layer, nn.Linear) else 1

    def scale_input(module, args):
        return (channelwise(args[0], 1 + alpha, None, ch), *args[1:])

    def scale_output(module, args, out):
        offset = beta if module.bias is None else beta - module.bias * gamma  # (y - b)(1 + gamma) + b + beta
        return channelwise(out, 1 + gamma, offset, ch)

    return [layer.register_forward_pre_hook(scale_input), layer.register_forward_hook(scale_output)]


def training_values(dm) -> np.ndarray:
    """The rows ``(N, D)`` of ``dm``'s table up to the end of its last training horizon."""
    train = dm.windows("train", stride=1)
    return dm.table.values[: int(train.starts.max()) + dm.prediction_length]


def reference_starts(
    current: np.ndarray, valid: np.ndarray, horizon: int, synthetic: float, rng: np.random.Generator
) -> np.ndarray:
    """The reference time of each current window ``(B,)``: ``t - H`` (the online delay) or, with
    probability ``synthetic``, a random time of ``valid`` (a synthetic drift of arbitrary size)."""
    random_time = rng.choice(valid, size=len(current))
    return np.where(rng.random(len(current)) < synthetic, random_time, current - horizon)


def fit_proceed(
    proceed: Proceed,
    model,
    dm,
    *,
    steps: int = 200,
    batch_size: int = 32,
    lr: float = 3e-4,
    synthetic: float = 0.5,
    seed: int = 0,
) -> list[float]:
    """Train ``proceed``'s encoder and generator on ``dm``'s training split with ``model`` frozen (Adam,
    ``lr`` cosine-decayed to 0 over ``steps``); returns the losses. ``model`` is a forecaster with
    ``network`` and ``training_loss(batch, generator)``."""
    from difflab.core.progress import progress

    ds = dm.windows("train", stride=1)
    C, H, k = dm.context_length, dm.prediction_length, proceed.windows
    values = training_values(dm)
    proceed.standardise_with(values)
    series = proceed.series(values)
    starts = ds.starts
    valid = np.flatnonzero(starts >= C + H + k - 1)
    if len(valid) == 0:
        raise ValueError(f"Proceed: the training split holds no window with {k} + {H} windows before it")
    frozen = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)
    model.train()
    opt = torch.optim.Adam(proceed.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))
    rng, gen = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    offsets = np.arange(-k + 1, 1)
    losses = []
    try:
        for _ in progress(range(steps), "Proceed generator", unit="steps"):
            idx = rng.choice(valid, size=batch_size)
            current = starts[idx]
            reference = reference_starts(current, starts[valid], H, synthetic, rng)
            batch = {key: torch.stack([ds[int(i)][key] for i in idx]) for key in ds[0]}
            adaptations = proceed.adaptation(series, current[:, None] + offsets, reference[:, None] + offsets)
            with proceed.applied(model.network, adaptations):
                loss = model.training_loss(batch, gen)
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
            losses.append(float(loss.detach()))
    finally:
        for p, flag in zip(model.parameters(), frozen, strict=True):
            p.requires_grad_(flag)
    return losses


__all__ = [
    "AdaptationGenerator",
    "ConceptEncoder",
    "ConceptSeries",
    "Proceed",
    "adapted_layers",
    "channelwise",
    "clip_norm",
    "fit_proceed",
    "reference_starts",
    "training_values",
]
