r"""Post-training int8 quantization of a denoising network (PTQ4DM; Shang, Yuan, Xie, Wu & Yan 2023,
"Post-training Quantization on Diffusion Models", CVPR 2023, arXiv:2211.15736).

A trained network is converted to 8-bit integer weights and activations without retraining. What is
special about diffusion models is the *calibration set*: the activations a denoiser sees change with
the noise level, so ranges calibrated at one ``t`` (or on forward-noised training data) do not fit the
inputs met during sampling. PTQ4DM's recipe, followed here:

* **Inputs from the denoising process itself.** :func:`collect_calibration_inputs` runs a sampler
  from prior noise and records every network input ``(x_t, t)`` along the trajectories.
* **Normally distributed time-step calibration (NDTC).** Each trajectory contributes one input, at
  the recorded time nearest to a draw :math:`\tau \sim \mathcal N(\mu, \sigma^2)` (in units of
  ``t_max``, clipped to the grid), so the calibration set covers all noise levels, weighted toward
  the middle and the cleaner half of the trajectory (the paper asks for :math:`\mu \le T/2`; its
  released scripts use :math:`\mu = 0.4 T`, :math:`\sigma = 0.4 T`, the defaults here).
* **Quantized operations and metric.** Every ``Linear`` / ``Conv1d-3d`` layer gets int8 per-channel
  symmetric weights and uint8 per-tensor affine input activations (static ranges); the rest of the
  network (normalisation, embeddings, nonlinearities) stays in float. Activation ranges are chosen by
  ``torch.ao``'s histogram observer, which minimises the squared quantization error of the collected
  activations (the paper's MSE calibration metric).
* **The network's own input and output stay float** (``float_io``), as in the reference PTQ code
  bases built on BRECQ, which quantize neither the image fed to the first layer nor the network's
  output. A static range calibrated on finitely many trajectories clips the tails of the prior: a
  state beyond it is read as if it were at the edge, its predicted noise is too small, and the
  sample runs away (on the 2-D mixture, with the first and last layers in int8, 93 of 4000 samples
  switched modes and one ended at :math:`|x| = 110` for one of five network seeds). The layers that
  read the network's first argument or write its returned tensor are found by tracing one
  calibration pass.

Implementation: PyTorch's eager static post-training flow (``torch.ao.quantization``: ``QuantStub`` /
``DeQuantStub`` around each quantized layer, ``prepare``, calibration forward passes, ``convert``),
which runs int8 kernels on CPU through the ``x86`` / ``fbgemm`` / ``qnnpack`` / ``onednn`` engines.
The installed torch (2.14) still ships it, with a deprecation warning pointing to ``torchao`` (not
installed here); the warnings are silenced inside :func:`quantize_denoiser`. The quantized network
runs on CPU only and under the quantized engine active at conversion
(``torch.backends.quantized.engine``); it takes and returns float tensors (float64 inputs are
computed in float32 and cast back), so it drops into a :class:`~difflab.core.samplers.base.Denoiser`.

Shapes: ``x`` ``(B, ...)``; ``t`` ``(B,)``; a calibration set is ``(x (N, ...), t (N,))``.
"""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor, nn

from difflab.core.samplers.base import Denoiser, SampleResult

Observer = Literal["histogram", "minmax"]
_QUANTIZABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_FLOAT_PARENTS = (nn.MultiheadAttention, nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)
"""Modules whose forward reads their sublayers' weights: their sublayers are not converted."""


@torch.no_grad()
def collect_calibration_inputs(
    denoiser: Denoiser,
    sampler: Callable[..., SampleResult],
    x: Tensor,
    grid: Tensor,
    *,
    mean: float = 0.4,
    std: float = 0.4,
    generator: torch.Generator | None = None,
    **options: Any,
) -> tuple[Tensor, Tensor]:
    """PTQ4DM's time-step-aware calibration set from sampler trajectories.

    Runs ``sampler(denoiser', x, grid, generator=generator, **options)`` with ``denoiser'`` recording
    every network input, then keeps for each example ``b`` the input at the recorded time nearest to
    ``tau_b ~ N(mean, std^2) * t_max`` (clipped to the recorded times).

    Args:
        denoiser: the full-precision denoiser (its network is what will be quantized).
        sampler: a core sampler function.
        x: prior samples ``(B, ...)`` at ``grid[0]``, one trajectory each.
        grid: the sampler's time grid ``(N + 1,)``.
        mean, std: the normal law of the calibration times, in units of ``process.t_max``.
        generator: for the sampler's noise and the time draws.

    Returns:
        ``(xs, ts)``: ``xs`` ``(B, ...)`` network inputs and ``ts`` ``(B,)`` their times.
    """
    if not std > 0:
        raise ValueError(f"std must be > 0, got {std!r}")
    calls: list[tuple[Tensor, Tensor]] = []
    model = denoiser.model

    def recording(xx: Tensor, tt: Tensor) -> Tensor:
        tt = torch.as_tensor(tt, dtype=xx.dtype, device=xx.device)
        if xx.shape[0] == x.shape[0] and tt.ndim <= 1:
            calls.append((xx.detach().clone(), tt.expand(xx.shape[0]).detach().clone()))
        return model(xx, tt)

    rec = Denoiser(recording, denoiser.process, denoiser.prediction, **denoiser.settings())
    sampler(rec, x, grid, generator=generator, **options)
    if not calls:
        raise ValueError("the sampler made no network call with one time per example: nothing to calibrate on")
    xs = torch.stack([c[0] for c in calls])  # (C, B, ...)
    ts = torch.stack([c[1] for c in calls])  # (C, B)
    tau = mean + std * torch.randn(x.shape[0], generator=generator, dtype=torch.float64)
    tau = (tau * denoiser.process.t_max).to(device=ts.device, dtype=ts.dtype)
    pick = (ts - tau[None]).abs().argmin(dim=0)  # (B,)
    idx = torch.arange(x.shape[0], device=ts.device)
    return xs[pick, idx], ts[pick, idx]


class _QuantizedLayer(nn.Module):
    """``dequantize(layer(quantize(x)))``: one layer in int8 between float neighbours."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        from torch.ao.quantization import DeQuantStub, QuantStub

        self.quant = QuantStub()
        self.layer = layer
        self.dequant = DeQuantStub()

    def forward(self, x: Tensor) -> Tensor:
        return self.dequant(self.layer(self.quant(x)))


class QuantizedNetwork(nn.Module):
    """A converted int8 network behind a float interface: inputs cast to float32, output cast back.

    Attributes:
        network: the converted module (CPU only).
        quantized_layers: names of the layers that run in int8.
    """

    def __init__(self, network: nn.Module, quantized_layers: list[str]) -> None:
        super().__init__()
        self.network = network
        self.quantized_layers = quantized_layers

    def forward(self, x: Tensor, t: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        t = torch.as_tensor(t, device=x.device)
        if t.is_floating_point():
            t = t.float()
        return self.network(x.float(), t, *args, **kwargs).to(x.dtype)


def _qconfig(observer: Observer, reduce_range: bool):
    from torch.ao.quantization import (
        HistogramObserver,
        MinMaxObserver,
        PerChannelMinMaxObserver,
        QConfig,
    )

    act = HistogramObserver if observer == "histogram" else MinMaxObserver
    return QConfig(
        activation=act.with_args(dtype=torch.quint8, qscheme=torch.per_tensor_affine, reduce_range=reduce_range),
        weight=PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_channel_symmetric),
    )


def _io_layers(network: nn.Module, calibrate: Callable[[nn.Module], Any]) -> list[str]:
    """Names of the quantizable layers of ``network`` that read its first argument or whose output it
    returns (also as a view), found with hooks during ``calibrate(network)`` (float, no observers).
    The tensors met are held until each call ends, so a freed buffer reused by a later one cannot be
    taken for the same tensor."""
    found: set[str] = set()
    call: dict[str, Any] = {}

    def before(module: nn.Module, args: tuple, kwargs: dict) -> None:
        first = args[0] if args else next(iter(kwargs.values()), None)
        call.clear()
        call["x"] = first if isinstance(first, Tensor) else None
        call["outputs"] = {}

    def after(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        if isinstance(output, Tensor):
            found.update(n for n, out in call["outputs"].items() if out.data_ptr() == output.data_ptr())
        call.clear()

    def layer_hook(name: str) -> Callable:
        def hook(module: nn.Module, args: tuple, output: Any) -> None:
            x = call.get("x")
            if x is not None and args and isinstance(args[0], Tensor) and args[0].data_ptr() == x.data_ptr():
                found.add(name)
            if isinstance(output, Tensor) and "outputs" in call:
                call["outputs"][name] = output

        return hook

    handles = [
        network.register_forward_pre_hook(before, with_kwargs=True),
        network.register_forward_hook(after, with_kwargs=True),
    ]
    handles += [
        m.register_forward_hook(layer_hook(n)) for n, m in network.named_modules() if isinstance(m, _QUANTIZABLE)
    ]
    try:
        calibrate(network)
    finally:
        for h in handles:
            h.remove()
    return sorted(found)


def _wrap_layers(module: nn.Module, qconfig: Any, skip: tuple[str, ...], prefix: str = "") -> list[str]:
    """Replace every quantizable child by a :class:`_QuantizedLayer` with ``qconfig``; return their names.
    The layers inside ``nn.MultiheadAttention`` and torch's transformer layers stay float: their forward
    reads the weights of their projections directly (torch's own eager flow marks them non-quantizable)."""
    names = []
    for name, child in module.named_children():
        full = f"{prefix}{name}"
        if isinstance(child, _FLOAT_PARENTS):
            continue
        if isinstance(child, _QUANTIZABLE) and full not in skip:
            wrapped = _QuantizedLayer(child)
            wrapped.qconfig = qconfig
            setattr(module, name, wrapped)
            names.append(full)
        else:
            names += _wrap_layers(child, qconfig, skip, prefix=f"{full}.")
    return names


@torch.no_grad()
def quantize_denoiser(
    network: nn.Module,
    calibration_inputs: tuple[Tensor, Tensor],
    *,
    observer: Observer = "histogram",
    skip: tuple[str, ...] = (),
    reduce_range: bool = True,
    float_io: bool = True,
    batch_size: int = 512,
) -> QuantizedNetwork:
    """Static int8 post-training quantization of ``network(x, t)`` calibrated on ``(x, t)`` inputs.

    Args:
        network: the float network (left unchanged; a copy is converted on CPU).
        calibration_inputs: ``(xs (N, ...), ts (N,))``, e.g. from :func:`collect_calibration_inputs`.
        observer: activation range estimation: ``histogram`` (squared-error optimal ranges) or
            ``minmax``.
        skip: qualified names of layers to keep in float (e.g. the output layer).
        reduce_range: 7-bit activations (default), which the ``x86`` / ``fbgemm`` kernels need on CPUs
            without VNNI to avoid saturating their 16-bit accumulation; ``False`` for full 8 bits.
        float_io: keep the layers that read the network's input ``x`` or write its output in float
            (default; see the module docstring); ``False`` quantizes them too.
        batch_size: calibration batch size.

    Returns:
        a :class:`QuantizedNetwork` computing ``network`` with int8 ``Linear`` / ``Conv`` layers.
    """
    xs, ts = calibration_inputs
    if xs.shape[0] != ts.shape[0] or ts.ndim != 1:
        raise ValueError(f"calibration inputs must be x (N, ...) and t (N,), got {tuple(xs.shape)}, {tuple(ts.shape)}")

    def calibrate(prepared: nn.Module) -> None:
        for i in range(0, xs.shape[0], batch_size):
            prepared(xs[i : i + batch_size].cpu().float(), ts[i : i + batch_size].cpu().float())

    converted, names = quantize_network(
        network, calibrate, observer=observer, skip=skip, reduce_range=reduce_range, float_io=float_io
    )
    return QuantizedNetwork(converted, names).eval()


@torch.no_grad()
def quantize_network(
    network: nn.Module,
    calibrate: Callable[[nn.Module], Any],
    *,
    observer: Observer = "histogram",
    skip: tuple[str, ...] = (),
    reduce_range: bool = True,
    float_io: bool = True,
) -> tuple[nn.Module, list[str]]:
    """The int8 conversion of :func:`quantize_denoiser` for a network of any call signature:
    ``calibrate(prepared)`` runs the prepared copy on the calibration inputs however the network is
    called (for a domain model: one sampling run with the copy in place of its network, so the
    observers see the inputs of the whole denoising trajectory, conditions included). Returns the
    converted copy (float32 in and out, CPU; same class and attributes as ``network``) and the names
    of its int8 layers. With ``float_io`` (default) ``calibrate`` runs twice: once on a float copy to
    find the layers at the network's input and output, which stay float, then for the ranges."""
    if observer not in ("histogram", "minmax"):
        raise ValueError(f"observer must be 'histogram' or 'minmax', got {observer!r}")
    engine = torch.backends.quantized.engine
    if engine not in torch.backends.quantized.supported_engines or engine == "none":
        raise RuntimeError(
            f"no int8 CPU engine: torch.backends.quantized.engine is {engine!r}, "
            f"supported {torch.backends.quantized.supported_engines}"
        )
    from torch.ao.quantization import convert, prepare

    net = copy.deepcopy(network).cpu().float().eval()
    if not any(isinstance(m, _QUANTIZABLE) for m in net.modules()):
        raise ValueError(f"{type(network).__name__} has no Linear or Conv layer to quantize")
    if float_io:
        skip = (*skip, *_io_layers(net, calibrate))
    names = _wrap_layers(net, _qconfig(observer, reduce_range), tuple(skip))
    if not names:
        raise ValueError(f"{type(network).__name__} has no Linear or Conv layer to quantize (kept float: {list(skip)})")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = prepare(net, inplace=False)
        calibrate(prepared)
        converted = convert(prepared, inplace=False)
    return converted, names


def model_size_bytes(module: nn.Module) -> int:
    """Size of ``module``'s serialised ``state_dict`` in bytes (packed int8 weights included)."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(module.state_dict(), buf)
    return buf.getbuffer().nbytes


__all__ = [
    "QuantizedNetwork",
    "collect_calibration_inputs",
    "model_size_bytes",
    "quantize_denoiser",
    "quantize_network",
]
