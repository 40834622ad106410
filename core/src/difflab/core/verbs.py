"""The pieces every domain verb (``enhance``, ``upscale``, ``forecast``, ``generate``, ``eval``, ...)
is built from, so that all of them parse, validate and write the same way.

* :class:`VerbParser`: ``argparse`` whose errors are one line, ``<prog>: error: <message>``, exit 2.
* Argument types that reject bad values while parsing, before anything is loaded:
  :func:`count` (a whole number of at least ``minimum``: steps, samples, episodes, lengths),
  :func:`positive_float`, :func:`non_negative_float`, :func:`existing_file`, :func:`existing_path`.
* :func:`check_output`: a file or a non-empty folder is never overwritten without ``--overwrite``.

Errors found later (a file that does not decode, data that does not fit the model) are raised as
:class:`~difflab.core.errors.UserError`, which the command line prints in one line too.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from difflab.core.errors import UserError


class VerbParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` for a domain verb: the description keeps its line breaks (a
    docstring's indentation removed), an error
    is one line on stderr (``<prog>: error: <message>``) with exit status 2, and ``--debug`` (show
    tracebacks of user errors) is accepted by every verb."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        if kwargs.get("description"):
            kwargs["description"] = inspect.cleandoc(kwargs["description"])
        super().__init__(*args, **kwargs)
        self.add_argument("--debug", action="store_true", help="show the traceback of an error")

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)

    def add_output(self, what: str, default: Path | None = None) -> None:
        """An optional output, given either as the last positional argument or as ``--out`` (both
        naming different paths is an error); :meth:`parse_args` leaves it in ``ns.out`` (``default``
        when neither is given). The verbs whose output is required take it positionally only."""
        shown = "" if default is None else f" (default: {default})"
        self.add_argument("output", type=Path, nargs="?", default=None, help=f"{what}{shown}; the same as --out")
        self.add_argument("--out", type=Path, default=None, help=f"{what}{shown}")
        self._output_default = default

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        ns = super().parse_args(args, namespace)
        if hasattr(self, "_output_default"):
            given = ns.__dict__.pop("output")
            if given is not None and ns.out is not None and given != ns.out:
                self.error(f"two outputs given: {given} and --out {ns.out}; give one")
            ns.out = ns.out or given or self._output_default
        return ns


def seed_option(parser: argparse.ArgumentParser, what: str, default: int = 0) -> None:
    """``--seed``, saying what it seeds (``what``: "the sampling noise", "the generated data" ...)."""
    parser.add_argument("--seed", type=int, default=default, help=f"seed of {what} (default {default})")


def sampler_option(parser: argparse.ArgumentParser, default: str = "the model's") -> None:
    """``--sampler NAME``: a core sampler by name (:data:`~difflab.core.samplers.select.SAMPLER_NAMES`),
    checked while parsing, so an unknown name is one line naming the option; ``default`` says what
    is used without it."""
    from difflab.core.samplers.select import SAMPLER_NAMES

    parser.add_argument(
        "--sampler",
        default=None,
        choices=SAMPLER_NAMES,
        metavar="NAME",
        help=f"core sampler (default: {default}): {', '.join(SAMPLER_NAMES)}",
    )


def count(minimum: int = 1) -> Callable[[str], int]:
    """Argument type: a whole number of at least ``minimum`` (``--steps``, ``--samples``, ``--horizon``)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value}: must be at least {minimum}")
        return value

    parse.__name__ = f"count>={minimum}"
    return parse


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def positive_float(text: str) -> float:
    """Argument type: a number greater than 0."""
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value}: must be greater than 0")
    return value


def non_negative_float(text: str) -> float:
    """Argument type: a number of at least 0 (an overlap, a noise level)."""
    value = _number(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{value}: must be at least 0")
    return value


def existing_file(text: str) -> Path:
    """Argument type: a path to an existing file."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: {'is a folder' if path.is_dir() else 'no such file'}")
    return path


def existing_path(text: str) -> Path:
    """Argument type: a path to an existing file or folder."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file or folder")
    return path


def check_output(path: str | Path, overwrite: bool, option: str = "--overwrite") -> Path:
    """``path`` if writing there replaces nothing (it does not exist, or is an empty folder) or
    ``overwrite`` is set; otherwise a :class:`UserError` naming the path and ``option``."""
    path = Path(path)
    taken = path.is_file() or (path.is_dir() and any(path.iterdir()))
    if taken and not overwrite:
        what = "a file" if path.is_file() else "a folder with files"
        raise UserError(f"{path}: is already {what}; pass {option} to replace it, or choose another path")
    return path


def folder_inputs(folder: Path, suffixes: tuple[str, ...], what: str, error: type[UserError] = UserError) -> list[Path]:
    """The files of ``folder`` a verb reads: those with one of ``suffixes`` (any case), sorted by name.

    A folder without any is ``error`` naming it and the suffixes; the other files (hidden ones aside)
    are left alone with a note naming them, so that nothing in the folder is passed over silently.
    """
    from difflab.core.progress import note

    files, others = [], []
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in suffixes:
            files.append(path)
        elif path.is_file() and not path.name.startswith("."):
            others.append(path.name)
    if not files:
        raise error(f"{folder}: no {what} ({', '.join(suffixes)})")
    if others:
        listed = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
        note(f"{folder}: {len(others)} file(s) of another suffix left alone ({listed})")
    return files


__all__ = [
    "VerbParser",
    "check_output",
    "count",
    "existing_file",
    "existing_path",
    "folder_inputs",
    "non_negative_float",
    "positive_float",
    "sampler_option",
    "seed_option",
]
