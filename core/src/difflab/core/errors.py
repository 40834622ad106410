"""User errors: what a command line reports in one line instead of a traceback.

A :class:`UserError` is a mistake in what the user gave (a file that does not exist or does not decode,
a count below 1, a checkpoint of another package, data that does not fit the model). Every difflab
command line (:func:`difflab.core.cli.run_cli`) prints it as ``difflab-<pkg>: error: <message>`` on
stderr and exits with status 2; with ``--debug`` (or ``DIFFLAB_DEBUG=1``) the traceback is shown
instead. Any other exception is a programming error and keeps its traceback.

The message names what is wrong first (the file, the option) and then the problem, in one line:
``--horizon 0: must be at least 1``; ``data/train.txt: not UTF-8 (byte 0xe9 at line 3); pass
--encoding latin-1``.
"""

from __future__ import annotations

import os


class UserError(Exception):
    """A mistake in the user's input; its message is one line naming the file or option."""


def debug_requested(argv: list[str] | None = None) -> bool:
    """True when ``--debug`` is among ``argv`` or ``DIFFLAB_DEBUG`` is set to a true value."""
    if argv is not None and "--debug" in argv:
        return True
    return os.environ.get("DIFFLAB_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


def at_least(value: int, minimum: int, option: str) -> int:
    """``value`` if it is at least ``minimum``, else a :class:`UserError` naming ``option``."""
    if value < minimum:
        raise UserError(f"{option} {value}: must be at least {minimum}")
    return value


__all__ = ["UserError", "at_least", "debug_requested"]
