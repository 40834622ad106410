"""Domain verbs of the shared command line: named verbs run when called, checkpoint errors are one line."""

from __future__ import annotations

import pytest

from difflab.core.cli import Command, run_cli


def test_a_named_verb_is_imported_only_when_it_runs(tmp_path, monkeypatch, capsys):
    import sys

    (tmp_path / "difflab_lazy_verb.py").write_text("def main(argv):\n    return len(argv)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    verb = Command("difflab_lazy_verb:main", "count the arguments")
    assert run_cli(object, object, package="core", args=[], extra_commands={"count": verb}) is None
    assert "  count          count the arguments" in capsys.readouterr().out
    assert "difflab_lazy_verb" not in sys.modules
    assert run_cli(object, object, package="core", args=["count", "a", "b"], extra_commands={"count": verb}) == 2
    assert "difflab_lazy_verb" in sys.modules
    monkeypatch.delitem(sys.modules, "difflab_lazy_verb")


def test_a_checkpoint_error_of_a_verb_is_one_line_and_status_2(tmp_path, capsys):
    from difflab.core.lightning import DiffusionModule, load_checkpoint

    missing = tmp_path / "gone.ckpt"

    def verb(argv):
        """load a checkpoint"""
        return load_checkpoint(missing, DiffusionModule)

    with pytest.raises(SystemExit) as exc:
        run_cli(object, object, package="core", args=["load"], extra_commands={"load": verb})
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"difflab-core: error: {missing}: no such file")


def test_other_errors_of_a_verb_keep_their_traceback():
    def verb(argv):
        """fail"""
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        run_cli(object, object, package="core", args=["fail"], extra_commands={"fail": verb})
