"""The command line every difflab package shares, and ``difflab-core`` itself.

Each domain's ``cli.py`` declares its command line with :class:`PackageCLI` and parses the
arguments of its own verbs; nothing else::

    main = PackageCLI(
        "audio", DESCRIPTION, {"enhance": enhance_command}, "train briefly and enhance the test mixtures",
        model="difflab.audio.models.base:SpeechEnhancer", model_default="difflab.audio.models.sgmse:SGMSE",
    ).main

:meth:`PackageCLI.main` calls :func:`run_cli`, which runs ``LightningCLI`` in subclass mode, so a
config's ``model.class_path`` / ``data.class_path`` picks the method and the data module (any
subclass of the two base classes), with the Lightning verbs ``fit``, ``validate``, ``test`` and
``predict``:

* ``--config NAME`` (or ``-c NAME``, repeatable, composed left to right) accepts a file path or the
  name of a config shipped with the package: ``difflab/<package>/configs/NAME.yaml``, or the unique
  ``NAME*.yaml`` there. Names are resolved by rewriting the argument list before Lightning parses it.
* ``--print_config`` prints the resolved configuration; the same file is saved to the log folder
  (overwriting an earlier one of the same run folder).
* ``--seed_everything N`` seeds Python, NumPy and torch (default 0, so a command is reproducible).
* Domain verbs (``demo``, ``make-dataset``, ``benchmark``, ...) given in ``extra_commands`` are
  dispatched before Lightning when they are the first argument; each receives the remaining
  arguments and parses them with its own ``argparse`` (so ``VERB --help`` works). The top-level
  ``--help`` lists them next to the Lightning verbs (build their parsers from
  :mod:`difflab.core.verbs`).
* Outputs follow ``--trainer.default_root_dir`` (the shipped configs set ``outputs/<pkg>/<config>``):
  every ``fit`` writes into its own folder ``<default_root_dir>/lightning_logs/version_N``
  (``checkpoints/``, ``config.yaml``, metrics), so two runs never overwrite each other, and
  ``last.ckpt`` holds the final step (:class:`~difflab.core.lightning.callbacks.ResumableCheckpoint`).
* Resume a stopped run with ``fit ... --ckpt_path last``: the newest ``last.ckpt`` under
  ``default_root_dir`` (with none, an error that says where it looked); with ``EMAWeightAveraging``
  and a ``ResumableCheckpoint`` in the config, model, EMA, optimiser, LR scheduler, loop counters and
  the data order are restored. A checkpoint trained on other data (data-module settings that differ)
  is not resumed. ``--ckpt_path`` of any verb, and a domain verb's ``--ckpt``, also take a run
  folder (its newest ``last.ckpt``).
* A user error (:class:`~difflab.core.errors.UserError`: a missing or unreadable file, a bad value,
  a checkpoint of another package) is one line, ``difflab-<pkg>: error: <what>: <problem>``, with
  exit status 2; ``--debug`` (or ``DIFFLAB_DEBUG=1``) shows its traceback.
* Progress: Lightning's tqdm bar on a terminal, a line every few seconds without one; ``fit`` ends
  with a line of the last validation metrics. Lightning's tips and known-harmless third-party
  warnings are not shown (:mod:`difflab.core.quiet`).

``difflab-core`` (``main``) is the toy instance: :class:`~difflab.core.lightning.toy.ToyDiffusion`
on :class:`~difflab.core.lightning.data.ToyDataModule` by default, plus ``demo``.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

from difflab.core.errors import UserError, debug_requested
from difflab.core.quiet import quiet_third_party

_LIGHTNING_VERBS = {
    "fit": "train a model (resume with --ckpt_path last)",
    "validate": "run one evaluation epoch on the validation set",
    "test": "run one evaluation epoch on the test set",
    "predict": "draw samples / predictions for the predict set",
}
_CONFIG_FLAGS = ("--config", "-c")


# ---------------------------------------------------------------------------------------------------- configs
def config_dir(package: str) -> Path | None:
    """Folder of the configs shipped with ``difflab.<package>`` (``None`` if it has none)."""
    try:
        root = resources.files(f"difflab.{package}")
    except ModuleNotFoundError:
        return None
    folder = Path(str(root)) / "configs"
    return folder if folder.is_dir() else None


def builtin_configs(package: str) -> list[str]:
    """Names (without ``.yaml``) of the configs shipped with ``difflab.<package>``."""
    folder = config_dir(package)
    if folder is None:
        return []
    return sorted(p.stem for p in folder.iterdir() if p.suffix in (".yaml", ".yml"))


def resolve_config(value: str, package: str) -> str:
    """Map ``--config`` ``value`` to a file: an existing path is kept, otherwise it names a shipped config.

    A shipped config matches as ``NAME``, ``NAME.yaml`` or the unique ``NAME*.yaml``. Inline YAML
    (a value containing ``:``, ``{`` or a newline) is kept as it is.

    Raises:
        ValueError: the name matches no shipped config, or several.
    """
    if Path(value).is_file() or any(ch in value for ch in ":{\n"):
        return value
    folder = config_dir(package)
    stem = value[:-5] if value.endswith(".yaml") else value[:-4] if value.endswith(".yml") else value
    if folder is not None and "/" not in stem:
        for candidate in (folder / f"{stem}.yaml", folder / f"{stem}.yml"):
            if candidate.is_file():
                return str(candidate)
        matches = sorted(p for p in folder.glob(f"{stem}*.y*ml") if p.suffix in (".yaml", ".yml"))
        if len(matches) == 1:
            return str(matches[0])
        if len(matches) > 1:
            names = ", ".join(p.stem for p in matches)
            raise ValueError(f"--config {value!r} is ambiguous in difflab.{package}: it matches {names}")
    available = ", ".join(builtin_configs(package)) or "none"
    raise ValueError(
        f"--config {value!r}: no such file, and no config of that name ships with difflab.{package} "
        f"(available: {available})"
    )


def rewrite_config_args(argv: Sequence[str], package: str) -> list[str]:
    """``argv`` with every ``--config X`` / ``-c X`` / ``--config=X`` value resolved by :func:`resolve_config`."""
    out: list[str] = []
    i = 0
    argv = list(argv)
    while i < len(argv):
        arg = argv[i]
        if arg in _CONFIG_FLAGS and i + 1 < len(argv):
            out += [arg, resolve_config(argv[i + 1], package)]
            i += 2
            continue
        if arg.startswith("--config="):
            out.append("--config=" + resolve_config(arg[len("--config=") :], package))
        else:
            out.append(arg)
        i += 1
    return out


# ---------------------------------------------------------------------------------------------------- verbs
def _named(target: str) -> Any:
    """The object a ``"module:name"`` target names, its module imported now."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Command:
    """A domain verb named by where it lives, ``"module:function"``, and imported only when it runs.

    :class:`PackageCLI` names each package's ``demo`` this way (``difflab.<pkg>.demo:main``), so the
    command line never imports the demo (an import-linter contract), while ``difflab-<pkg> demo``
    still runs it. ``function(argv)`` parses its own arguments.
    """

    target: str
    help: str

    def __call__(self, argv: list[str]) -> Any:
        return _named(self.target)(argv)


def _help_line(fn: Callable) -> str:
    """A verb's summary in the commands list: ``Command.help``, or the first paragraph of its docstring."""
    if isinstance(fn, Command):
        return fn.help
    return " ".join((fn.__doc__ or "").strip().split("\n\n")[0].split())


# ---------------------------------------------------------------------------------------------------- help
def _verbs_text(prog: str, extra_commands: dict[str, Callable] | None, package: str) -> str:
    lines = ["commands:"]
    for verb, text in _LIGHTNING_VERBS.items():
        lines.append(f"  {verb:<14} {text}")
    width = max(60, min(100, shutil.get_terminal_size().columns))
    for verb, fn in (extra_commands or {}).items():
        first = f"  {verb:<14} "
        if len(first) > 17:  # a long name stands on its own line, as argparse does
            lines.append(first.rstrip())
            first = " " * 17
        lines.append(
            textwrap.fill(
                _help_line(fn), width, initial_indent=first, subsequent_indent=" " * 17, break_on_hyphens=False
            )
        )
    configs = builtin_configs(package)
    lines.append("")
    listed = f"built-in configs (--config NAME): {', '.join(configs) if configs else 'none'}"
    lines.append(textwrap.fill(listed, width, subsequent_indent="  ", break_on_hyphens=False))
    lines.append(f"run '{prog} COMMAND --help' for the options of a command")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------- main helper
def run_cli(
    model_class: type,
    datamodule_class: type,
    *,
    package: str,
    args: Sequence[str] | None = None,
    extra_commands: dict[str, Callable[[list[str]], Any]] | None = None,
    model_default: type | None = None,
    datamodule_default: type | None = None,
    description: str | None = None,
    run: bool = True,
    links: Sequence[tuple[str, str]] = (),
    **cli_kwargs: Any,
):
    """Run the command line of ``difflab.<package>``.

    Args:
        model_class: base class of the package's models (a ``TrainedModule``); any subclass can be
            chosen with ``model.class_path``.
        datamodule_class: base class of its data modules.
        package: the package name (``core``, ``audio``, ...): where ``--config NAME`` is looked up.
        args: the arguments (``sys.argv[1:]`` if None).
        extra_commands: domain verbs ``{name: fn}``; ``fn(remaining_args)`` runs instead of
            Lightning when ``name`` is the first argument. The first line of ``fn.__doc__`` is its
            one-line help.
        model_default, datamodule_default: classes used when no ``class_path`` is given.
        description: text shown at the top of ``--help``.
        run: False builds the classes without running a Trainer method (as ``LightningCLI(run=False)``).
        links: ``(source, target)`` settings the data decides, linked after the data module is built
            (jsonargparse's ``link_arguments(..., apply_on="instantiate")``), such as
            ``("data.num_classes", "model.init_args.num_classes")``: the data module's attribute is
            given to the model, and the option disappears from the model's command-line options.
        **cli_kwargs: further ``LightningCLI`` arguments (``trainer_defaults``, ...).

    Returns:
        the ``LightningCLI`` object for a Lightning command (``cli.trainer``, ``cli.model``), the
        return value of an extra command, or ``None`` after printing the top-level help.
    """
    argv = list(sys.argv[1:] if args is None else args)
    prog = f"difflab-{package}"
    debug = debug_requested(argv)
    argv = [a for a in argv if a != "--debug"]
    quiet_third_party()
    extra_commands = dict(extra_commands or {})
    if argv and argv[0] in extra_commands:
        return run_extra_command(prog, extra_commands[argv[0]], argv[1:], debug=debug)

    verbs = _verbs_text(prog, extra_commands, package)
    text = (description.strip() + "\n\n" if description else "") + verbs
    _CLI = _lightning_cli_class(model_default, datamodule_default, links)
    if not argv:
        print(f"usage: {prog} [-h] COMMAND [options]\n")
        if description:
            print(description.strip() + "\n")
        print(verbs)
        return None
    try:
        argv = rewrite_config_args(argv, package)
    except ValueError as err:
        _user_error(prog, err)
    kwargs = _lightning_cli_kwargs(prog, text, cli_kwargs)
    # Lightning reads sys.argv when it relaunches the command for multi-device runs, so the
    # resolved arguments are put there for the duration of the run.
    saved_argv = sys.argv
    sys.argv = [saved_argv[0] if saved_argv else prog, *argv]
    try:
        return _CLI(model_class, datamodule_class, args=None, run=run, **kwargs)
    except UserError as err:
        if debug:
            raise
        _user_error(prog, err)
    finally:
        sys.argv = saved_argv


def _lightning_cli_kwargs(prog: str, description: str, cli_kwargs: dict[str, Any]) -> dict[str, Any]:
    """``LightningCLI`` arguments of every difflab command line (subclass mode, seed 0, the help text),
    updated by ``cli_kwargs``."""
    from jsonargparse import DefaultHelpFormatter

    class _HelpFormatter(DefaultHelpFormatter, argparse.RawDescriptionHelpFormatter):
        pass

    parser_kwargs = {"prog": prog, "description": description, "formatter_class": _HelpFormatter}
    parser_kwargs.update(cli_kwargs.pop("parser_kwargs", {}))
    kwargs: dict[str, Any] = {
        "subclass_mode_model": True,
        "subclass_mode_data": True,
        "save_config_kwargs": {"overwrite": True},
        "seed_everything_default": 0,
        "auto_configure_optimizers": False,
        "parser_kwargs": parser_kwargs,
    }
    kwargs.update(cli_kwargs)
    return kwargs


def _lightning_cli_class(
    model_default: type | None, datamodule_default: type | None, links: Sequence[tuple[str, str]] = ()
) -> type:
    """``LightningCLI`` with ``model_default`` / ``datamodule_default`` as the default class paths, the
    progress and metrics callbacks of every run, and ``fit --ckpt_path last`` that finds the newest
    ``last.ckpt`` of any earlier run under ``default_root_dir`` (or says where it looked)."""
    from lightning.pytorch.cli import LightningCLI

    from difflab.core.lightning.resume import (
        check_resume_data,
        checkpoint_globals,
        resolve_cli_ckpt_path,
        run_callbacks,
    )

    class _CLI(LightningCLI):
        def instantiate_classes(self) -> None:
            """Build the configured classes; a :class:`UserError` a constructor raises (a setting that
            does not fit the others) reaches the user as its one line, not inside jsonargparse's
            report of every subclass it tried."""
            try:
                super().instantiate_classes()
            except ValueError as err:
                cause: BaseException = err
                while cause.__cause__ is not None and not isinstance(cause, UserError):
                    cause = cause.__cause__
                if isinstance(cause, UserError):
                    raise cause from err
                raise

        def add_arguments_to_parser(self, parser) -> None:
            defaults = {}
            if model_default is not None:
                defaults["model"] = {"class_path": f"{model_default.__module__}.{model_default.__qualname__}"}
            if datamodule_default is not None:
                defaults["data"] = {"class_path": f"{datamodule_default.__module__}.{datamodule_default.__qualname__}"}
            if defaults:
                parser.set_defaults(defaults)
            for source, target in links:
                parser.link_arguments(source, target, apply_on="instantiate")

        def _instantiate_trainer(self, config: dict[str, Any], callbacks: list) -> Any:
            callbacks = [*callbacks, *run_callbacks(config, self.subcommand)]
            return super()._instantiate_trainer(config, callbacks)

        def _parse_ckpt_path(self) -> None:
            self.given_ckpt_path = resolve_cli_ckpt_path(self.config)
            with checkpoint_globals():
                super()._parse_ckpt_path()

        def before_fit(self) -> None:
            check_resume_data(self.config_init["fit"].get("ckpt_path"), self.datamodule, self.given_ckpt_path)

    return _CLI


def run_extra_command(prog: str, command: Callable[[list[str]], Any], argv: list[str], debug: bool = False) -> Any:
    """Run a domain verb; a user error (:class:`~difflab.core.errors.UserError`: a bad file or value, a
    checkpoint it cannot load) ends the program with one line on stderr, ``<prog>: error: <what>:
    <problem>``, and exit status 2 (with ``debug``, its traceback instead)."""
    try:
        return command(argv)
    except UserError as err:
        if debug:
            raise
        _user_error(prog, err)


def _user_error(prog: str, err: Exception) -> NoReturn:
    message = " ".join(str(err).split()) or type(err).__name__
    print(f"{prog}: error: {message}", file=sys.stderr)
    raise SystemExit(2) from None


def exit_code(result: Any) -> int:
    """Process exit status for a :func:`run_cli` result (0 unless an extra command returned an int)."""
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


# ---------------------------------------------------------------------------------------------------- declared
@dataclass(frozen=True)
class PackageCLI:
    """A package's command line, declared in its ``cli.py``: ``main = PackageCLI(...).main``.

    Classes are named ``"module:Class"`` and imported only when the command line runs, so a domain
    verb's ``--help`` imports neither Lightning nor the models.

    Args:
        package: ``audio``, ``vision``, ...: the program is ``difflab-<package>``.
        description: text at the top of ``--help``.
        verbs: the domain verbs ``{name: fn(argv)}`` (:func:`run_cli`'s ``extra_commands``).
        demo: one-line help of the ``demo`` verb, ``difflab.<package>.demo:main``, which is named, not
            imported (:class:`Command`), so the command line never depends on the demo.
        model, datamodule: base classes a config's ``class_path`` may pick a subclass of.
        model_default, datamodule_default: the classes used when a config names none.
        links: settings the data decides (:func:`run_cli`'s ``links``).
        ignore_warnings: message patterns of warnings the package knows to be harmless.
    """

    package: str
    description: str
    verbs: dict[str, Callable[[list[str]], Any]]
    demo: str
    model: str = "difflab.core.lightning:TrainedModule"
    datamodule: str = "lightning.pytorch:LightningDataModule"
    model_default: str | None = None
    datamodule_default: str | None = None
    links: Sequence[tuple[str, str]] = ()
    ignore_warnings: Sequence[str] = ()

    def main(self, args: Sequence[str] | None = None) -> int:
        """Run ``difflab-<package>`` on ``args`` (``sys.argv[1:]`` if None); returns the exit status."""
        import warnings

        for pattern in self.ignore_warnings:
            warnings.filterwarnings("ignore", message=pattern)
        demo = Command(f"difflab.{self.package}.demo:main", self.demo)
        result = run_cli(
            _named(self.model),
            _named(self.datamodule),
            package=self.package,
            args=args,
            extra_commands={**self.verbs, "demo": demo},
            model_default=_named(self.model_default) if self.model_default else None,
            datamodule_default=_named(self.datamodule_default) if self.datamodule_default else None,
            description=self.description,
            links=self.links,
        )
        return exit_code(result)


# ---------------------------------------------------------------------------------------------------- difflab-core
main = PackageCLI(
    "core",
    "difflab-core: diffusion on 2-D toy data (Gaussian mixture, two moons) with any core sampler.",
    {},
    "train the toy model on the 8-mode mixture (about a minute on CPU) and plot samples of every sampler",
    model="difflab.core.lightning:DiffusionModule",
    model_default="difflab.core.lightning:ToyDiffusion",
    datamodule_default="difflab.core.lightning:ToyDataModule",
).main
"""``difflab-core``: toy diffusion on 2-D data through the shared command line."""


if __name__ == "__main__":
    raise SystemExit(main())
