"""The console script holds the user commands (params, show); each has its own --help; errors are one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from memix import __version__
from memix.cli import build_parser, main

SUBCOMMANDS = ["show", "params", "predict", "export"]


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"memix {__version__}"


@pytest.mark.parametrize("argv", [["params"], ["show", "flow"], ["show", "mix"], ["predict"], ["export"]])
def test_each_subcommand_has_its_own_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([*argv, "--help"])
    assert info.value.code == 0
    assert "usage: memix " + " ".join(argv) in capsys.readouterr().out


def test_invalid_params_give_a_one_line_error_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "params.yaml"
    bad.write_text("train: {epochs: 0}\n")
    assert main(["--params", str(bad), "params"]) == 1
    err = capsys.readouterr().err
    assert "train.epochs" in err and str(bad) in err
