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


def test_predict_help_explains_each_mode_and_the_rules(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["predict", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for mode in ("--onset A --apex B", "--frames FOLDER", "--video FILE", "--clips FOLDER, --dataset ROOT"):
        assert mode in out
    assert "The onset is the first frame" in out and "the last frame as its offset" in out
    assert "nothing predicted, exit status 1" in out


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        ([], "give --onset A --apex B, --frames FOLDER, --video FILE"),
        (["--frames", "f", "--video", "v.avi"], "--frames scores one clip; leave out --video"),
        (["--onset", "a", "--apex", "b", "--frames", "f"], "--onset/--apex scores one clip; leave out --frames"),
        (["--video", "v.avi", "--clips", "c"], "--video scores one clip; leave out --clips"),
        (["--frames", "f", "--offset", "c.jpg"], "--offset goes with --onset and --apex"),
    ],
)
def test_predict_refuses_a_mix_of_modes_before_any_work(
    argv: list[str], said: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no model file or face model here: the check comes first
    assert main(["predict", *argv]) == 1
    assert said in capsys.readouterr().err
