r"""Feature caching: reuse block outputs of the network across adjacent denoiser calls, with the reuse
schedule chosen by profiling how much each block's output changes from call to call.

Two observations behind it: "Faster Diffusion: Rethinking the Role of the Encoder" (Li et al. 2023)
and DeepCache (Ma et al. 2024) find that the deep features of a U-Net change little between adjacent
sampling steps, so they can be computed at some steps and reused at the next ones while the shallow
path is recomputed; "Model Reveals What to Cache" (profiling-based feature reuse, 2025) chooses per
block and per step what to reuse from a profile of the block outputs' change over a sampling run.

The mechanism here is the profiling form, for any ``torch.nn.Module``:

* **blocks**: the cache candidates, by default every direct child of every ``nn.ModuleList`` of the
  network (the U-Nets' down / middle / up blocks, the transformers' layers; :func:`cache_blocks`),
  or the ones a network lists in a ``cache_blocks()`` method. Blocks nested in another candidate are
  not candidates.
* **reuse** of block ``b`` at call ``k``: a block whose output has the shape of its first input
  (a residual block, a transformer layer) reuses its cached *residual*,
  ``out_k = in_k + (out_j - in_j)``; any other block reuses its cached output ``out_j``, where ``j``
  is the last call at which it was computed. The reused block's forward is not run. A block returning
  a tuple (a residual and a skip output, as in WaveNet / CSDI blocks) reuses its first output this way
  and its further outputs as they were.
* **profile**: one sampling run computing every block records, for each call ``k >= 1`` and block
  ``b``, the change of what a reuse would hand on (the residual ``r = out - in`` of a residual block,
  the output ``r = out`` of any other), relative to the block's output,

  .. math:: c_{k,b} = \frac{\lVert r_{k,b} - r_{k-1,b}\rVert_1}{\lVert o_{k,b}\rVert_1} ,

  the error one reuse step would put into the block's output.

* **schedule** (:meth:`FeatureCache.plan`): per block, the first call computes; at each later call
  the change accumulated since the block's last computation, :math:`\sum c`, including this call's,
  decides: reuse while it stays at most ``threshold`` and fewer than ``max_reuse`` reuses are in a
  row, otherwise compute (and restart the sum). ``threshold = 0`` computes everything, so the wrapped
  sampler is reproduced exactly (the oracle test). The schedule is fixed per call index, so it applies
  to every later run of the same sampler and grid.

Use: ``with FeatureCache(network) as cache:`` installs the reuse on the blocks (removed on exit);
``cache.denoiser(den)`` wraps a :class:`~difflab.core.samplers.base.Denoiser` whose network calls go
through ``network`` and starts a new run (call index 0); :func:`profile_and_plan` runs a sampler once
to profile and returns the schedule; :func:`sample_cached` runs a sampler through the cache. Several
network forwards inside one denoiser call (guidance's conditional and unconditional passes) are kept
apart by their order within the call. Counting: ``computed`` and ``reused`` block evaluations of the
current run; a reused block saves its own cost only, so the benchmark reports wall time next to them.
Shapes: whatever the network takes; a reuse whose cached tensor no longer fits the input (another
batch size) computes instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from difflab.core.samplers.base import Denoiser, SampleResult


def cache_blocks(network: nn.Module) -> dict[str, nn.Module]:
    """The cache candidates of ``network``: its ``cache_blocks()`` if it has one, else every child of
    every ``nn.ModuleList`` (a list inside a list counts through its own children) that has parameters
    and is not nested in another candidate, by qualified name, in order."""
    own = getattr(network, "cache_blocks", None)
    if callable(own):
        return dict(own())
    found: dict[str, nn.Module] = {}
    for name, module in network.named_modules():
        if any(name.startswith(f"{prefix}.") for prefix in found):
            continue
        if isinstance(module, nn.ModuleList):  # a nested list is never called: its own children count
            for child, block in module.named_children():
                if not isinstance(block, nn.ModuleList) and any(True for _ in block.parameters()):
                    found[f"{name}.{child}" if name else child] = block
    return found


class FeatureCache:
    """Block-output reuse on ``network`` across the calls of one sampling run (see the module doc).

    Args:
        network: the module whose blocks are cached; its own forwards are counted, to tell apart
            several network passes inside one denoiser call.
        blocks: ``{name: module}`` candidates; default :func:`cache_blocks`.

    Attributes:
        schedule: ``None`` (compute every block, the profiling and plain mode) or a bool tensor
            ``(calls, blocks)``, ``True`` where the block is computed at that call.
        changes: after a profiled run, ``(calls, blocks)`` relative changes ``c_{k,b}`` (row 0 is
            ``inf``; ``nan`` where the block did not run at that call, which the schedule computes).
        computed, reused: block evaluations run and reused in the current run.
    """

    def __init__(self, network: nn.Module, blocks: Mapping[str, nn.Module] | None = None) -> None:
        self.network = network
        self.blocks = dict(cache_blocks(network) if blocks is None else blocks)
        if not self.blocks:
            raise ValueError(f"{type(network).__name__} has no cache candidates (no nn.ModuleList blocks)")
        self.names = list(self.blocks)
        self.schedule: Tensor | None = None
        self.changes: Tensor | None = None
        self.profiling = False
        self._installed: list[tuple[nn.Module, Any]] = []
        self.start_run()

    # ------------------------------------------------------------------------------------------ run state
    def start_run(self) -> None:
        """Forget the cached features: the next denoiser call is call 0 of a new run."""
        self.call = -1
        self.sub = 0
        self.computed = 0
        self.reused = 0
        self._store: dict[tuple[str, int], tuple[str, Tensor, tuple[Tensor, ...] | None]] = {}
        self._last: dict[tuple[str, int], tuple[Tensor, ...]] = {}
        self._rows: list[list[float]] = []

    def next_call(self) -> None:
        """Advance to the next denoiser call (called by :class:`CachedDenoiser`)."""
        self.call += 1
        self.sub = 0
        if self.profiling:
            self._rows.append([float("nan")] * len(self.names))

    def _compute_now(self, j: int, key: tuple[str, int], first: Tensor | None) -> bool:
        if self.schedule is None or self.call < 0 or self.call >= self.schedule.shape[0]:
            return True
        if bool(self.schedule[self.call, j]) or key not in self._store:
            return True
        kind, head, _ = self._store[key]
        if first is None:  # no tensor input: only a stored output can stand in
            return kind == "delta"
        if kind == "delta":
            return first.shape != head.shape
        return first.shape[:1] != head.shape[:1]  # another batch: the stored output does not fit

    # ------------------------------------------------------------------------------------------ the hook
    def _wrap(self, j: int, name: str, forward: Callable[..., Any]) -> Callable[..., Any]:
        def cached_forward(*args: Any, **kwargs: Any) -> Any:
            key = (name, self.sub)
            first = args[0] if args and isinstance(args[0], Tensor) else None
            if not self._compute_now(j, key, first):
                self.reused += 1
                kind, head, rest = self._store[key]
                main = first + head if kind == "delta" else head  # type: ignore[operator]
                return main if rest is None else (main, *rest)
            out = forward(*args, **kwargs)
            self.computed += 1
            if self.schedule is None and not self.profiling:  # nothing will be reused: keep nothing
                return out
            parts = out if isinstance(out, tuple) else (out,)
            if parts and all(isinstance(o, Tensor) for o in parts):
                self._remember(j, key, first, parts, isinstance(out, tuple))
            return out

        return cached_forward

    def _remember(
        self, j: int, key: tuple[str, int], first: Tensor | None, parts: tuple[Tensor, ...], is_tuple: bool
    ) -> None:
        """Store what a reuse hands on: the residual of the first output where it has the first input's
        shape (else the output itself), and any further outputs of a tuple (a skip connection) as they
        are; when profiling, record ``c_{k,b}``."""
        head, rest = parts[0].detach(), tuple(o.detach() for o in parts[1:]) if is_tuple else None
        if first is not None and first.shape == head.shape:
            self._store[key] = ("delta", head - first.detach(), rest)
        else:
            self._store[key] = ("output", head, rest)
        if not self.profiling or self.call < 0:
            return
        kept = (self._store[key][1], *(rest or ()))
        prev = self._last.get(key)
        change = float("inf")
        if prev is not None and all(p.shape == k.shape for p, k in zip(prev, kept, strict=True)):
            moved = sum(float((k - p).abs().sum()) for p, k in zip(prev, kept, strict=True))
            change = moved / max(sum(float(o.abs().sum()) for o in parts), 1e-30)
        row = self._rows[self.call]
        row[j] = change if self.call == 0 or math.isnan(row[j]) else max(row[j], change)
        self._last[key] = kept

    def _count_pass(self, *_: Any) -> None:
        self.sub += 1

    def __enter__(self) -> FeatureCache:
        for j, name in enumerate(self.names):
            block = self.blocks[name]
            self._installed.append((block, block.__dict__.get("forward")))
            block.forward = self._wrap(j, name, block.forward)  # type: ignore[method-assign]
        handle = self.network.register_forward_hook(self._count_pass)
        self._installed.append((self.network, handle))
        return self

    def __exit__(self, *exc: Any) -> None:
        for module, saved in reversed(self._installed):
            if module is self.network and hasattr(saved, "remove"):
                saved.remove()
            elif saved is None:
                del module.forward
            else:
                module.forward = saved  # type: ignore[method-assign]
        self._installed.clear()
        self._store, self._last = {}, {}  # free the features; the run's counts stay readable

    # ------------------------------------------------------------------------------------------ planning
    def denoiser(self, denoiser: Denoiser) -> CachedDenoiser:
        """``denoiser`` with its calls counted by this cache; starts a new run."""
        return CachedDenoiser(denoiser, self)

    def finish_profile(self) -> Tensor:
        """End a profiled run: ``changes`` from its records (``(calls, blocks)``)."""
        self.profiling = False
        self.changes = torch.tensor(self._rows, dtype=torch.float64).reshape(-1, len(self.names))
        return self.changes

    def plan(self, threshold: float, max_reuse: int = 4) -> Tensor:
        """Set and return the schedule from the profiled ``changes`` (module doc): per block, reuse while
        the change accumulated since its last computation is ``<= threshold`` and fewer than
        ``max_reuse`` reuses are in a row."""
        if self.changes is None:
            raise RuntimeError("plan needs a profiled run first (profile_and_plan)")
        if not threshold >= 0 or max_reuse < 1:
            raise ValueError(f"threshold must be >= 0 and max_reuse >= 1, got {threshold!r}, {max_reuse!r}")
        calls, nb = self.changes.shape
        schedule = torch.ones(calls, nb, dtype=torch.bool)
        for b in range(nb):
            acc, run = 0.0, 0
            for k in range(1, calls):
                c = float(self.changes[k, b])
                if math.isnan(c):  # not run at this call in the profile
                    continue
                acc += c
                if threshold > 0 and acc <= threshold and run < max_reuse:
                    schedule[k, b], run = False, run + 1
                else:
                    acc, run = 0.0, 0
        self.schedule = schedule
        return schedule

    @property
    def reuse_fraction(self) -> float:
        """Share of the block evaluations of the current run that were reused."""
        return self.reused / max(self.reused + self.computed, 1)


class CachedDenoiser(Denoiser):
    """A :class:`Denoiser` whose calls advance a :class:`FeatureCache` (one call = one schedule row);
    constructing it starts a new run of the cache. Outputs are those of ``denoiser``'s model with the
    cache's reuse applied inside the network."""

    def __init__(self, denoiser: Denoiser, cache: FeatureCache) -> None:
        super().__init__(denoiser.model, denoiser.process, denoiser.prediction, **denoiser.settings())
        self.cache = cache
        cache.start_run()

    def raw(self, x: Tensor, t: Tensor) -> Tensor:
        self.cache.next_call()
        return super().raw(x, t)


def sample_cached(
    sampler: Callable[..., SampleResult], denoiser: Denoiser, cache: FeatureCache, x: Tensor, grid: Tensor, **kw: Any
) -> SampleResult:
    """``sampler`` through ``cache`` (installed for the run); ``info`` gets ``blocks_computed``,
    ``blocks_reused`` and ``reuse_fraction``."""
    with cache:
        den = cache.denoiser(denoiser)
        result = sampler(den, x, grid, **kw)
    result.info.update(blocks_computed=cache.computed, blocks_reused=cache.reused, reuse_fraction=cache.reuse_fraction)
    return result


def profile_and_plan(
    sampler: Callable[..., SampleResult],
    denoiser: Denoiser,
    cache: FeatureCache,
    x: Tensor,
    grid: Tensor,
    threshold: float,
    max_reuse: int = 4,
    **kw: Any,
) -> Tensor:
    """One profiled run of ``sampler`` (every block computed, changes recorded), then
    :meth:`FeatureCache.plan`; returns the schedule ``(calls, blocks)``."""
    cache.schedule = None
    with cache, torch.no_grad():
        cache.profiling = True
        sampler(cache.denoiser(denoiser), x, grid, **kw)
        cache.finish_profile()
    return cache.plan(threshold, max_reuse)


__all__ = ["CachedDenoiser", "FeatureCache", "cache_blocks", "profile_and_plan", "sample_cached"]
