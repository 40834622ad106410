r"""Classifier-free guidance and adaptive guidance as network callables.

**Classifier-free guidance** (Ho & Salimans 2022) combines a conditional and an unconditional
prediction of the same network:

.. math:: \tilde\varepsilon = \varepsilon_u + w\,(\varepsilon_c - \varepsilon_u),

so ``w = 1`` is purely conditional and ``w = 0`` purely unconditional. Ho & Salimans write the same
thing as :math:`(1 + w')\varepsilon_c - w'\varepsilon_u` with :math:`w' = w - 1`; the ``scale``
here is ``w`` (the diffusers ``guidance_scale`` convention). The weights sum to one, so the
combination commutes with every parameterisation that is affine in the network output at fixed
``(x_t, t)``: it may be applied to ``eps``, ``x0``, ``v``, ``score`` or ``velocity`` outputs alike.

**Adaptive guidance** (Castillo et al. 2023, "Adaptive Guidance: Training-free Acceleration of
Conditional Diffusion Models") observes that late in sampling the guided and the conditional
predictions point the same way. It measures their cosine similarity
:math:`\gamma = \cos(\tilde\varepsilon, \varepsilon_c)` at every call and, once it exceeds a threshold
:math:`\bar\gamma` for every sample of the batch, drops the unconditional evaluation for the rest
of the run and returns :math:`\varepsilon_c`.

Both wrappers are ordinary model callables ``model(x, t) -> prediction`` to be wrapped in a
:class:`~difflab.core.samplers.base.Denoiser`. NFE accounting: each wrapper sets ``last_nfe`` after
every call, which the Denoiser adds to its count. Two separate network calls (conditional and
unconditional) count 2; the single-call option concatenates ``[x, x]`` along the batch and runs one
network call on the doubled batch, which counts as **1 batched NFE** (it costs the same latency on
parallel hardware but twice the FLOPs). The per-sample work is available as ``evaluations``
(conditional plus unconditional batch evaluations, each counted once per call).

Shapes: ``x`` ``(B, ...)``; ``t`` ``(B,)`` or per element. A joint model receives ``(2B, ...)`` and
``t`` repeated, the first ``B`` rows conditional and the last ``B`` unconditional.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

ModelFn = Callable[[Tensor, Tensor], Tensor]


def guided_combination(cond: Tensor, uncond: Tensor, scale: float) -> Tensor:
    r"""``uncond + scale (cond - uncond)``."""
    return uncond + scale * (cond - uncond)


def rescale_guidance(guided: Tensor, cond: Tensor, rescale: float) -> Tensor:
    r"""Guidance rescale (Lin et al. 2023, "Common Diffusion Noise Schedules and Sample Steps are
    Flawed", Sec. 3.4): the guided prediction scaled to the per-example standard deviation of the
    conditional one, mixed with the unscaled guided prediction,

    .. math:: \phi \cdot \hat\epsilon \,\mathrm{std}(\epsilon_c) / \mathrm{std}(\hat\epsilon)
              + (1 - \phi)\, \hat\epsilon, \qquad \phi = 	ext{rescale},

    standard deviations over every axis but the first (diffusers' ``guidance_rescale``)."""
    if rescale == 0:
        return guided
    dims = tuple(range(1, guided.ndim))
    factor = cond.std(dim=dims, keepdim=True) / guided.std(dim=dims, keepdim=True)
    return rescale * guided * factor + (1 - rescale) * guided


def _joint_call(joint_model: ModelFn, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    b = x.shape[0]
    t2 = torch.cat([t, t], dim=0) if t.ndim else t
    out = joint_model(torch.cat([x, x], dim=0), t2)
    if out.shape[0] != 2 * b:
        raise ValueError(f"joint model returned batch {out.shape[0]}, expected {2 * b} (conditional, unconditional)")
    return out[:b], out[b:]


class ClassifierFreeGuidance:
    r"""The guided model ``x, t -> eps_u + scale (eps_c - eps_u)``.

    Args:
        model_cond: conditional network ``(x, t) -> prediction`` (condition closed over).
        model_uncond: the same network with the null condition.
        scale: guidance weight ``w`` (1 = conditional only).
        rescale: guidance rescale ``phi`` in [0, 1] (:func:`rescale_guidance`; 0 = none; Lin et al.
            recommend 0.7 with a zero-terminal-SNR schedule and v prediction).
        joint_model: instead of the two callables, one network taking the doubled batch
            ``[x, x]`` (first half conditional, second half unconditional): one batched call per step.

    Attributes:
        last_nfe: network calls made by the last call (2 for two callables, 1 for a joint model).
        evaluations: total batch evaluations so far (conditional + unconditional).
    """

    def __init__(
        self,
        model_cond: ModelFn | None = None,
        model_uncond: ModelFn | None = None,
        scale: float = 1.0,
        *,
        rescale: float = 0.0,
        joint_model: ModelFn | None = None,
    ) -> None:
        if not 0 <= rescale <= 1:
            raise ValueError(f"rescale must be in [0, 1], got {rescale!r}")
        if joint_model is None and (model_cond is None or model_uncond is None):
            raise ValueError("pass model_cond and model_uncond, or joint_model")
        if joint_model is not None and model_uncond is not None:
            raise ValueError("pass either model_uncond or joint_model, not both")
        self.model_cond = model_cond
        self.model_uncond = model_uncond
        self.joint_model = joint_model
        self.scale = float(scale)
        self.rescale = float(rescale)
        self.last_nfe = 0
        self.evaluations = 0

    def predictions(self, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """``(cond, uncond)`` predictions; sets ``last_nfe``."""
        if self.joint_model is not None:
            cond, uncond = _joint_call(self.joint_model, x, t)
            self.last_nfe = 1
        else:
            cond, uncond = self.model_cond(x, t), self.model_uncond(x, t)  # type: ignore[misc]
            self.last_nfe = 2
        self.evaluations += 2
        return cond, uncond

    def __call__(self, x: Tensor, t: Tensor) -> Tensor:
        cond, uncond = self.predictions(x, t)
        return rescale_guidance(guided_combination(cond, uncond, self.scale), cond, self.rescale)


def classifier_free_guidance(
    model_cond: ModelFn | None,
    model_uncond: ModelFn | None,
    scale: float,
    *,
    rescale: float = 0.0,
    joint_model: ModelFn | None = None,
) -> ClassifierFreeGuidance:
    r"""Classifier-free guided model callable ``eps_u + w (eps_c - eps_u)`` (see :class:`ClassifierFreeGuidance`).

    ``classifier_free_guidance(None, None, w, joint_model=net)`` uses one call on the doubled batch.
    """
    return ClassifierFreeGuidance(model_cond, model_uncond, scale, rescale=rescale, joint_model=joint_model)


class AdaptiveGuidance(ClassifierFreeGuidance):
    r"""Classifier-free guidance that drops the unconditional evaluation once it stops mattering.

    While guiding, each call computes ``eps_c``, ``eps_u``, the guided ``eps_g`` and the per-sample
    cosine similarity ``gamma = <eps_g, eps_c> / (|eps_g| |eps_c|)`` over all non-batch elements.
    When ``min(gamma) > threshold`` over the batch (after ``warmup`` calls), the call returns ``eps_g``
    and every later call evaluates the conditional network only and returns ``eps_c`` (Castillo et
    al. 2023). The similarity is measured on the networks' own outputs (their parameterisation).

    The switch is state kept across calls of one sampling run; call :meth:`reset` before reusing the
    object for another run.

    Args:
        model_cond, model_uncond, scale, joint_model: as :class:`ClassifierFreeGuidance`;
            ``model_cond`` is required (it serves the conditional-only phase).
        threshold: ``bar gamma``, the cosine similarity above which guidance stops (close to 1).
        warmup: number of first calls that always guide without testing. With eps-prediction the
            first steps from pure noise give ``eps_c ~ eps_u ~ x`` and a trivially high similarity;
            x0- or v-predictions differ there, so they need no warm-up.

    Attributes:
        switched_at: index of the call after which the unconditional branch was dropped (None while guiding).
        similarities: the minimum cosine similarity of each guided call.
        calls: number of calls in this run.
        last_nfe, evaluations: as :class:`ClassifierFreeGuidance`.
    """

    def __init__(
        self,
        model_cond: ModelFn,
        model_uncond: ModelFn | None = None,
        scale: float = 1.0,
        *,
        threshold: float = 0.99,
        warmup: int = 0,
        joint_model: ModelFn | None = None,
    ) -> None:
        if model_cond is None:
            raise ValueError("AdaptiveGuidance needs model_cond for the conditional-only phase")
        super().__init__(model_cond, model_uncond, scale, joint_model=joint_model)
        if not -1.0 <= threshold <= 1.0:
            raise ValueError(f"threshold is a cosine similarity in [-1, 1], got {threshold}")
        if warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {warmup}")
        self.threshold = float(threshold)
        self.warmup = int(warmup)
        self.reset()

    def reset(self) -> None:
        """Start a new sampling run: guide again from the next call."""
        self.switched_at: int | None = None
        self.similarities: list[float] = []
        self.calls = 0
        self.evaluations = 0
        self.last_nfe = 0

    @property
    def guiding(self) -> bool:
        return self.switched_at is None

    def __call__(self, x: Tensor, t: Tensor) -> Tensor:
        self.calls += 1
        if not self.guiding:
            self.last_nfe = 1
            self.evaluations += 1
            return self.model_cond(x, t)  # type: ignore[misc]
        cond, uncond = self.predictions(x, t)
        guided = guided_combination(cond, uncond, self.scale)
        b = x.shape[0]
        sim = torch.nn.functional.cosine_similarity(guided.reshape(b, -1), cond.reshape(b, -1), dim=-1, eps=1e-12)
        gamma = float(sim.min())
        self.similarities.append(gamma)
        if self.calls > self.warmup and gamma > self.threshold:
            self.switched_at = self.calls - 1
        return guided


__all__ = ["ClassifierFreeGuidance", "AdaptiveGuidance", "classifier_free_guidance", "guided_combination"]
