"""The README's commands run as written: every line of its ```bash blocks is executed in a copy of the tiny
reproduced project (``tiny_project``), in README order, unless it installs software, runs this test suite, needs
a remote or names a placeholder; those are reported as skipped with the reason.

The commands are read from README.md when the tests are collected, so the README can change without this file.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from dvcproject import dvc, env, sh

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
FENCE = re.compile(r"^```(\w*)\s*$")
SHELLS = {"bash", "sh", "shell"}
OPERATORS = {"&&", "||", ";", "|"}

# (what a simple command starts with, why it is not executed); the first match wins
SKIPS: list[tuple[tuple[str, ...], str]] = [
    (("python3", "-m", "venv"), "creates a virtual environment and installs memix (.ci/run does, on a fresh machine)"),
    (("pip", "install"), "installs packages (.ci/run does, on a fresh machine)"),
    (("pytest",), "runs the test suite this test is part of"),
    (("git", "clone"), "clones a repository you name"),
    (("git", "push"), "needs a git server"),
    (("dvc", "remote", "add"), "configures a shared remote (tests/test_pipeline_dvc.py does a remote round trip)"),
    (("dvc", "push"), "needs a shared DVC remote (tests/test_pipeline_dvc.py does a remote round trip)"),
    (("dvc", "pull"), "needs a shared DVC remote (tests/test_pipeline_dvc.py does a remote round trip)"),
]


@dataclass(frozen=True)
class Command:
    line: int  # 1-based line in README.md
    text: str  # exactly as written, comment included (bash drops it)
    skip: str | None  # why it is not executed; None: executed

    @property
    def id(self) -> str:
        code = " ".join(shlex.split(self.text, comments=True))
        return f"L{self.line}-" + re.sub(r"[^A-Za-z0-9_.=@/-]+", "_", code)[:60]


def simple_commands(text: str) -> list[list[str]]:
    """The simple commands of a shell line (split at &&, ||, ; and |), comments dropped."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    out: list[list[str]] = [[]]
    for token in lexer:
        if token in OPERATORS:
            out.append([])
        else:
            out[-1].append(token)
    return [c for c in out if c]


def skip_reason(text: str) -> str | None:
    for cmd in simple_commands(text):
        if any(re.fullmatch(r"<[^>]+>", word) for word in cmd):
            return f"placeholder {next(w for w in cmd if w.startswith('<'))} stands for your own value"
        for start, reason in SKIPS:
            if tuple(cmd[: len(start)]) == start:
                return reason
    return None


def readme_commands(path: Path = README) -> list[Command]:
    """Every line of every shell block (a trailing backslash joins the next line)."""
    commands: list[Command] = []
    in_shell = in_block = False
    pending, start = "", 0
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fence = FENCE.match(line)
        if fence:
            in_block = not in_block
            in_shell = in_block and fence.group(1) in SHELLS
            continue
        if not in_shell or (not pending and not line.strip()):
            continue
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        text = (pending + line).strip()
        pending = ""
        commands.append(Command(start, text, skip_reason(text)))
    return commands


COMMANDS = readme_commands()


@pytest.fixture(scope="module")
def workspace(tiny_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the reproduced tiny project (experiments and plots land here), clean as after a clone."""
    root = tmp_path_factory.mktemp("readme") / "project"
    shutil.copytree(tiny_project, root, symlinks=True)
    if sh(root, "git", "status", "--porcelain").strip():  # another test left a change behind
        sh(root, "git", "checkout", "--", ".")
        dvc(root, "checkout")
    venv = Path(sys.prefix)
    if (venv / "bin" / "activate").is_file() and not (root / ".venv").exists():
        (root / ".venv").symlink_to(venv)  # `. .venv/bin/activate` as in the README
    return root


def test_the_readme_has_commands_to_run() -> None:
    run = [c for c in COMMANDS if c.skip is None]
    assert len(run) >= 5, f"only {len(run)} runnable commands found in {README}'s ```bash blocks"


def test_readme_clips_exist_in_the_synthetic_default() -> None:
    """A clip the README names (``--clip``) is one the synthetic default really has."""
    from memix.config import load_params
    from memix.synth.plan import plan_dataset

    named = set(re.findall(r"--clip[ =](\S+?)`?(?:\s|$)", README.read_text()))
    assert named, "the README names no clip"
    have = {c.folder for c in plan_dataset(load_params(REPO / "params.yaml").synth)}
    assert named <= have, f"clips in README.md but not in the synthetic default: {sorted(named - have)}"


@pytest.mark.parametrize("command", COMMANDS, ids=[c.id for c in COMMANDS])
def test_readme_command_runs_as_written(command: Command, workspace: Path) -> None:
    if command.skip:
        pytest.skip(f"README line {command.line}: {command.skip}")
    proc = subprocess.run(
        ["bash", "-c", command.text], cwd=workspace, env=env(), capture_output=True, text=True, check=False,
        timeout=900,
    )
    assert proc.returncode == 0, (
        f"README line {command.line}: `{command.text}` exited with {proc.returncode} in {workspace}\n"
        f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )


def test_the_readme_commands_leave_no_untracked_file(workspace: Path) -> None:
    """What the README's commands write lands where git ignores it (data/, models/, ...) or is tracked: a user who
    follows the README has no stray file to commit by mistake (run after the commands above, in the same copy)."""
    status = sh(workspace, "git", "status", "--porcelain", "--untracked-files=all")
    untracked = [line[3:] for line in status.splitlines() if line.startswith("??") and line[3:] != ".venv"]
    # (.venv: this test's link to the environment, which .gitignore's /.venv/ matches as a folder only)
    assert not untracked, untracked
