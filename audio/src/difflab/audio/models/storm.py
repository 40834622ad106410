r"""StoRM (Lemercier, Richter, Welker, Gerkmann 2023, "StoRM: A Diffusion-based Stochastic
Regeneration Model for Speech Enhancement and Dereverberation", IEEE/ACM TASLP).

Two stages:

1. a predictive network gives an estimate ``y_hat = D_phi(y)`` (2 -> 2 channels, no time input);
2. a score network regenerates the speech from that estimate: the OUVE SDE of SGMSE+ with its mean
   drifting towards ``y_hat`` instead of ``y`` (``x_t = e^{-theta t} x0 + (1 - e^{-theta t}) y_hat
   + s(t) z``), the network seeing ``[x_t, y, y_hat]`` (6 channels).

Joint training ("regen-joint-training" in the paper) minimises

.. math:: L = a\,\lVert D_\phi(y) - x_0 \rVert^2 + (1 - a)\,\lVert \mathrm{net}([x_t, y, \hat y], t) - z \rVert^2,
          \qquad a = 0.5,

with gradients of the second term flowing into the predictor through ``y_hat``
(``training_mode="frozen_predictor"`` detaches ``y_hat`` and drops the first term, for a
pre-trained predictor). Enhancement starts at ``y_hat + s(1) z``: the predictor has already done
most of the work, so the reverse process needs far fewer steps than SGMSE+ (default ``N = 10``
predictor-corrector steps, against SGMSE+'s 30).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from difflab.audio.models.base import SpeechEnhancer, tile
from difflab.core.lightning import eval_mode
from difflab.core.samplers.base import SampleResult


class StoRM(SpeechEnhancer):
    """Stochastic regeneration: predictor ``D_phi`` + score network on ``[x_t, y, y_hat]``.

    Args:
        network: score network, 6 input channels, 2 output channels, time-conditional.
        predictor: predictive network, 2 -> 2 channels (time input ignored).
        supervised_weight: ``a`` of the joint loss (0.5).
        training_mode: ``joint`` (both networks) or ``frozen_predictor`` (score network only; the
            reference's "regen-freeze-denoiser").
        predictor_init: checkpoint of a trained predictive baseline (or StoRM model) whose weights
            initialise the predictor when ``fit`` starts.
        predictor_residual: the predictor outputs the correction, ``y_hat = y + D_phi(y)`` (as the
            predictive baseline with ``residual=True``); must match the checkpoint of ``predictor_init``.
        (the rest: see :class:`~difflab.audio.models.base.SpeechEnhancer`; ``sample_steps`` 10.)
    """

    def __init__(
        self,
        network: nn.Module,
        predictor: nn.Module,
        supervised_weight: float = 0.5,
        training_mode: Literal["joint", "frozen_predictor"] = "joint",
        sample_steps: int = 10,
        predictor_init: str | None = None,
        predictor_residual: bool = False,
        **kwargs: Any,
    ) -> None:
        if not 0 <= supervised_weight < 1:
            raise ValueError(f"StoRM: supervised_weight must lie in [0, 1), got {supervised_weight}")
        if training_mode not in ("joint", "frozen_predictor"):
            raise ValueError(f"StoRM: training_mode must be 'joint' or 'frozen_predictor', got {training_mode!r}")
        with warnings.catch_warnings():  # the predictor module is saved in the state dict, not the hparams
            warnings.filterwarnings("ignore", message=".*is an instance of `nn.Module`.*")
            super().__init__(network, sample_steps=sample_steps, **kwargs)
        for store in (
            self._hparams,
            getattr(self, "_hparams_initial", {}),
        ):  # a module built in Python lives in the state dict
            if isinstance(store.get("predictor"), nn.Module):
                del store["predictor"]
        self.predictor = predictor
        self.supervised_weight = float(supervised_weight)
        self.training_mode = training_mode
        self.predictor_init = predictor_init
        self.predictor_residual = bool(predictor_residual)
        if training_mode == "frozen_predictor":
            self.predictor.requires_grad_(False)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        # when fit starts (setup runs before Lightning restores a checkpoint, so a resumed run then
        # puts its own weights over these)
        if stage == "fit" and self.predictor_init:
            self.load_predictor(self.predictor_init)

    def load_predictor(self, path: str | Path) -> None:
        """Initialise the predictor from a checkpoint of the predictive baseline (its ``network.*``
        weights) or of another StoRM model (``predictor.*``), as the StoRM reference can start from
        a pre-trained predictive model."""
        if not Path(path).is_file():
            raise FileNotFoundError(f"StoRM predictor_init: {path}: no such checkpoint")
        from difflab.core.lightning import read_checkpoint

        ckpt = read_checkpoint(path, expected="a predictive or StoRM checkpoint", lightning=False)
        state = ckpt.get("state_dict", ckpt)
        hp = ckpt.get("hyper_parameters", {}) if isinstance(ckpt, dict) else {}
        hp = hp.get("init_args", hp) if isinstance(hp, dict) else {}
        saved = hp.get("predictor_residual", hp.get("residual")) if isinstance(hp, dict) else None
        if saved is not None and bool(saved) != self.predictor_residual:
            raise ValueError(
                f"StoRM predictor_init: {path} was trained with a {'residual' if saved else 'direct'} output, "
                f"but predictor_residual={self.predictor_residual}"
            )
        for prefix in ("predictor.", "network."):
            sub = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            if sub:
                try:
                    self.predictor.load_state_dict(sub)
                except RuntimeError as err:
                    raise ValueError(f"StoRM predictor_init: {path} does not fit the predictor network: {err}") from err
                return
        raise ValueError(f"StoRM predictor_init: {path} holds no 'network.*' or 'predictor.*' weights")

    def predict_mean(self, y: Tensor) -> Tensor:
        """The predictive estimate ``y_hat = D_phi(y)`` (``y + D_phi(y)`` with ``predictor_residual``),
        ``(B, 2, F, T)``."""
        out = self.predictor(y, None)
        return y + out if self.predictor_residual else out

    def network_forward(self, x_t: Tensor, t: Tensor, batch: dict[str, Any] | None = None) -> Tensor:
        if batch is None or "y" not in batch or "y_hat" not in batch:
            raise ValueError("StoRM's score network needs batch['y'] and batch['y_hat']")
        y_hat = tile(batch["y_hat"], x_t)
        out = self.network(torch.cat([x_t, tile(batch["y"], x_t), y_hat], dim=1), t)
        return self.to_x0(out, x_t, t, y_hat)

    def process_condition(self, batch: dict[str, Any]) -> Tensor | None:
        """StoRM's process runs towards the predictor's estimate: ``batch["y_hat"]``."""
        return batch.get("y_hat")

    def training_loss(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> Tensor:
        """The module's denoising loss towards ``y_hat`` (``a * |y_hat - x0|^2 + (1 - a) * DSM`` when joint)."""
        x0, y = batch["x0"], batch["y"]
        y_hat = self.predict_mean(y)
        if self.training_mode == "frozen_predictor":
            y_hat = y_hat.detach()
        dsm = self.diffusion_loss({"x0": x0, "y": y, "y_hat": y_hat}, generator)
        if self.training_mode == "frozen_predictor":
            return dsm
        sup = (y_hat - x0).pow(2).mean()
        a = self.supervised_weight
        return a * sup + (1 - a) * dsm

    def sample(self, shape=None, *, batch=None, y=None, **kwargs: Any) -> SampleResult:
        """Enhancement of ``batch["y"]`` (the noisy spectrogram): the predictor's ``y_hat = D_phi(y)``
        (one more NFE) is the process condition and the prior mean; then core's
        :meth:`~difflab.core.lightning.DiffusionModule.sample` with ``batch = {y, y_hat}``."""
        if batch is None or "y" not in batch:
            raise ValueError("StoRM.sample needs the noisy spectrogram batch['y']")
        with eval_mode(self):
            y_hat = self.predict_mean(batch["y"])
        result = super().sample(shape, batch={**batch, "y_hat": y_hat}, **kwargs)
        result.nfe += 1  # the predictor
        return result


__all__ = ["StoRM"]
