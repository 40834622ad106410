"""Progress of long work, visible with or without a terminal.

On a terminal :func:`progress` is a ``tqdm`` bar (the one progress library of difflab); without one
(a log file, a pipe, a batch job) it prints one line every ``every`` seconds (default 5, or
``DIFFLAB_PROGRESS_SECONDS``): ``<desc>: 12/40 files (30%), 8.1 s elapsed, about 19 s left``.
:class:`StepProgress` is the same display advanced by hand (sampler steps, chunks, tiles).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

T = TypeVar("T")


def interval_seconds() -> float:
    """Seconds between progress lines without a terminal (``DIFFLAB_PROGRESS_SECONDS``, default 5)."""
    try:
        return max(float(os.environ.get("DIFFLAB_PROGRESS_SECONDS", "5")), 0.0)
    except ValueError:
        return 5.0


def progress_line(desc: str, done: int, total: int | None, unit: str, elapsed: float) -> str:
    """One line of progress: ``desc: done/total unit (pct), elapsed, about ... left``."""
    if total:
        left = elapsed / done * (total - done) if done else float("nan")
        eta = f", about {left:.0f} s left" if 0 < done < total else ""
        return f"{desc}: {done}/{total} {unit} ({100 * done / total:.0f}%), {elapsed:.1f} s elapsed{eta}"
    return f"{desc}: {done} {unit}, {elapsed:.1f} s elapsed"


class LineProgress:
    """Progress lines every ``every`` seconds (and one at the end) on ``stream``; no terminal needed."""

    def __init__(
        self, desc: str, total: int | None, unit: str = "it", every: float | None = None, stream: TextIO | None = None
    ) -> None:
        self.desc, self.total, self.unit = desc, total, unit
        self.every = interval_seconds() if every is None else every
        self.stream = stream or sys.stderr
        self.done = 0
        self.start = self.last = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            self.write(progress_line(self.desc, self.done, self.total, self.unit, now - self.start))

    def close(self) -> None:
        self.write(progress_line(self.desc, self.done, self.total, self.unit, time.monotonic() - self.start))

    def write(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


def progress(
    iterable: Iterable[T], desc: str, *, total: int | None = None, unit: str = "it", every: float | None = None
) -> Iterator[T]:
    """Iterate ``iterable`` showing progress: a tqdm bar on a terminal, a line every few seconds otherwise."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    if sys.stderr.isatty():
        from tqdm.auto import tqdm

        yield from tqdm(iterable, desc=desc, total=total, unit=unit)
        return
    bar = LineProgress(desc, total, unit, every)
    for item in iterable:
        yield item
        bar.update()
    bar.close()


class StepProgress:
    """Progress advanced by hand: ``update(n)`` after each piece of work, ``close()`` at the end; a
    tqdm bar on a terminal, :class:`LineProgress` otherwise. Called with any arguments (a sampler's
    ``callback(state)``) it counts one step."""

    def __init__(self, desc: str, total: int | None, unit: str = "steps", every: float | None = None) -> None:
        if sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit)
        else:
            self.bar = LineProgress(desc, total, unit, every)

    def update(self, n: int = 1) -> None:
        self.bar.update(n)

    def __call__(self, *_: object) -> None:
        self.update(1)

    def close(self) -> None:
        self.bar.close()


def note(text: str) -> None:
    """Print a message without breaking a progress bar (``tqdm.write`` on a terminal)."""
    if sys.stderr.isatty():
        from tqdm.auto import tqdm

        tqdm.write(text)
    else:
        print(text, flush=True)


def artifact(path: object, what: str) -> None:
    """Announce a written file as ``artifact: <path> | <what it shows>``, the line demos and verbs end with.

    ``scripts/demo_all.py`` and the tests read this format; every package writes it through here.
    """
    note(f"artifact: {path} | {what}")


__all__ = ["LineProgress", "StepProgress", "artifact", "interval_seconds", "note", "progress", "progress_line"]
