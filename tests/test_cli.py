"""The console script: every stage is a subcommand with its own --help; errors are one clear line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from memix.cli import build_parser, main

SUBCOMMANDS = ["face-model", "synth", "ingest", "faces", "flow", "train", "evaluate", "compare", "show", "params"]
REPO = Path(__file__).resolve().parents[1]


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in out


ARGVS = [[name] for name in SUBCOMMANDS if name != "show"] + [["show", "flow"], ["show", "mix"]]


@pytest.mark.parametrize("argv", ARGVS)
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


def test_every_dvc_stage_script_dispatches_to_a_subcommand() -> None:
    import yaml

    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        script = REPO / stage["cmd"].split()[1]
        assert script.is_file(), name
        text = script.read_text()
        assert "from memix.cli import main" in text
        # the subcommand is the script's stem, "_" spelled "-" (stages/face_model.py -> memix face-model)
        calls = re.findall(r"""main\(\[\s*["']([^"']+)["']""", text)
        assert calls == [script.stem.replace("_", "-")], (name, calls)
        assert calls[0] in SUBCOMMANDS
