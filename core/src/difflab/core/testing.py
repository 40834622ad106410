"""Checks that every package's tests make of its command line (as ``numpy.testing`` is to numpy).

* :func:`user_error_line`: a command that must fail as a user error exits with status 2 and prints one
  line on stderr (``difflab-<pkg>: error: <what>: <problem>``), never a traceback.
* :func:`readme_commands`: the shell commands of a README's fenced ``bash`` block after a marker
  comment, split as a shell would, so that a test can run what the README tells a user to paste.

pytest is imported only when :func:`user_error_line` runs (it is a test dependency, not a core one).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def user_error_line(
    main: Callable[[list[str]], Any], capsys: Any, argv: Sequence[str], keep: Callable[[str], bool] | None = None
) -> str:
    """The one stderr line of ``main(argv)``, which must raise ``SystemExit(2)``.

    Args:
        main: a package's command-line entry point.
        capsys: pytest's ``capsys`` fixture (output before the call is discarded).
        argv: the arguments.
        keep: which stderr lines count (e.g. leave out progress lines of work done before the error);
            all of them if None.
    """
    import pytest

    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(list(argv))
    err = capsys.readouterr().err.strip().splitlines()
    assert not any(line.startswith("Traceback") for line in err), "\n".join(err)
    if keep is not None:
        err = [line for line in err if keep(line)]
    assert stop.value.code == 2 and len(err) == 1, err
    return err[0]


def readme_commands(readme: Path, marker: str = "<!-- own-data -->") -> list[list[str]]:
    """The commands of the first fenced ``bash`` block after ``marker`` in ``readme``, one per line."""
    text = Path(readme).read_text()
    if marker not in text:
        raise ValueError(f"{readme}: no {marker} marker")
    found = re.search(r"```bash\n(.*?)```", text.split(marker, 1)[1], re.S)
    if found is None:
        raise ValueError(f"{readme}: no ```bash block after {marker}")
    return [shlex.split(line) for line in found.group(1).strip().splitlines()]


__all__ = ["readme_commands", "user_error_line"]
