"""Checks that every package's tests make of its command line (as ``numpy.testing`` is to numpy).

* :func:`user_error_line`: a command that must fail as a user error exits with status 2 and prints one
  line on stderr (``difflab-<pkg>: error: <what>: <problem>``), never a traceback.
* :func:`readme_commands`: the shell commands of a README's fenced ``bash`` block after a marker
  comment, split as a shell would, so that a test can run what the README tells a user to paste.
* :func:`run_readme_commands`: run those commands through a package's ``main`` as pasted, with the
  test's stand-ins (a smoke config for the recipe, small counts), each of which must exit 0.
* :func:`kdiffusion_sampling`: k-diffusion's ``sampling`` module, the oracle of the samplers' parity tests
  and benchmark, loaded on its own (the package's ``__init__`` imports far more than the samplers need).

pytest is imported only when :func:`user_error_line` runs (it is a test dependency, not a core one).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import re
import shlex
import sys
import types
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


def run_readme_commands(
    readme: Path,
    main: Callable[[list[str]], Any],
    prog: str,
    words: dict[str, str] | None = None,
    parts: dict[str, str] | None = None,
    around: Callable[[list[str]], Any] | None = None,
) -> None:
    """Run a README's own-data commands (:func:`readme_commands`, one to four) through ``main``.

    Each command must start with ``prog``. Before it runs, an argument equal to a key of ``words`` is
    replaced whole, then every key of ``parts`` inside an argument is replaced (the test's stand-ins:
    the smoke config for the recipe, small counts). ``around(argv)``, if given, is a context manager
    entered around the call (for a warning the command must give). Every command must return 0.
    """
    import contextlib

    commands = readme_commands(readme)
    assert 1 <= len(commands) <= 4, f"{readme}: {len(commands)} own-data commands, want 1 to 4"
    for argv in commands:
        assert argv[0] == prog, f"{readme}: {argv[0]!r} is not {prog}"
        args = [(words or {}).get(a, a) for a in argv[1:]]
        for old, new in (parts or {}).items():
            args = [a.replace(old, new) for a in args]
        with around(args) if around is not None else contextlib.nullcontext():
            assert main(args) == 0, args


def kdiffusion_sampling() -> types.ModuleType | None:
    """``k_diffusion.sampling`` loaded alone with a stub of the one utility it uses (``append_dims``), or
    None when k-diffusion or torchsde (its Brownian-tree dependency) is not installed. k-diffusion is a
    test-only dependency, installed without its own dependencies."""
    if "k_diffusion.sampling" in sys.modules:
        return sys.modules["k_diffusion.sampling"]
    try:
        importlib.import_module("torchsde")
        root = importlib.metadata.distribution("k-diffusion").locate_file("k_diffusion")
    except (ImportError, importlib.metadata.PackageNotFoundError):
        return None
    package = types.ModuleType("k_diffusion")
    package.__path__ = [str(root)]
    utils = types.ModuleType("k_diffusion.utils")
    utils.append_dims = lambda x, n: x[(...,) + (None,) * (n - x.ndim)]
    package.utils = utils
    sys.modules.update({"k_diffusion": package, "k_diffusion.utils": utils})
    spec = importlib.util.spec_from_file_location("k_diffusion.sampling", root / "sampling.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


__all__ = ["kdiffusion_sampling", "readme_commands", "user_error_line"]
