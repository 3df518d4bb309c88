"""The README's email walkthrough ("An email from segment to report"), replayed command by
command against a server configured like ``make serve``: same commands, same output
(decision ids and times aside)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SECTION = "#### An email from segment to report"
MAKE_SERVE_ADMIN_TOKEN = "dev-admin-token"
MAKE_SERVE_TARGET = "127.0.0.1:50051"

_ULID = re.compile(r"\b[0-9A-HJKMNP-TV-Z]{26}\b")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?Z?)?")
_SAMPLE = re.compile(r"^sample: (.*)$")


def _section() -> str:
    text = README.read_text("utf-8")
    start = text.index(SECTION)
    return text[start : text.index("\n### ", start)]


def _steps() -> list[tuple[str, list[str]]]:
    """``(command, expected output lines)`` for every ``$`` line of the section's console
    blocks (a trailing backslash continues a command)."""
    steps: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```console\n(.*?)```", _section(), flags=re.DOTALL):
        lines = block.splitlines()
        while lines:
            line = lines.pop(0)
            if line.startswith("$ "):
                command = line[2:]
                while command.endswith("\\"):
                    command = command[:-1] + lines.pop(0).strip()
                steps.append((command, []))
            else:
                steps[-1][1].append(line)
    return steps


def _scripts() -> dict[str, str]:
    """The section's Python blocks, by the file name their first comment gives."""
    blocks = re.findall(r"```python\n(.*?)```", _section(), flags=re.DOTALL)
    return {block.split(":", 1)[0].removeprefix("# ").strip(): block for block in blocks}


def _normalized(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        line = _TIME.sub("TIME", _ULID.sub("ULID", line.rstrip()))
        sample = _SAMPLE.match(line)
        if sample:  # a random sample of the matching visitors
            line = "sample: " + ", ".join(sorted(sample[1].split(", ")))
        out.append(line)
    return out


@pytest.fixture
def make_serve(tmp_path: Path) -> Iterator[str]:
    """A demo server as ``make serve`` starts it, on a free port."""
    from server.app import create_server
    from server.config import ServerConfig

    config = ServerConfig(
        db_path=str(tmp_path / "decide.db"),
        host="127.0.0.1",
        port=0,
        demo=True,
        admin_token=MAKE_SERVE_ADMIN_TOKEN,
        grace=0,
    )
    server, port = create_server(config)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None).wait()


class TestEmailWalkthrough:
    def test_section_goes_from_segment_to_report(self):
        """The section exports a segment, previews, records a send, tracks clicks, reads the report."""
        commands = " | ".join(command for command, _ in _steps())

        for step in ("insights export", "batch", "--record --channel email", "--channel email"):
            assert step in commands

    def test_every_command_prints_what_the_readme_shows(
        self, make_serve, decide, monkeypatch, tmp_path
    ):
        """Each command exits 0 and prints the README's output (ids and times aside)."""
        shutil.copytree(ROOT / "examples", tmp_path / "examples")
        for name, source in _scripts().items():
            (tmp_path / name).write_text(source)
        monkeypatch.chdir(tmp_path)
        for command, expected in _steps():
            printed: list[str] = []
            for part in command.split(" && "):
                words = [make_serve if w == MAKE_SERVE_TARGET else w for w in shlex.split(part)]
                if words[0] == "export":
                    for assignment in words[1:]:
                        name, _, value = assignment.partition("=")
                        monkeypatch.setenv(
                            name, make_serve if value == MAKE_SERVE_TARGET else value
                        )
                elif words[0] == ".venv/bin/decide":
                    run = decide(*words[1:])
                    assert 0 == run.code, (command, run.err)
                    printed += run.out.splitlines() + run.err.splitlines()
                else:  # .venv/bin/python script.py, cut ...
                    if words[0] == ".venv/bin/python":
                        words[0] = sys.executable
                    done = subprocess.run(words, capture_output=True, text=True, check=True)
                    printed += done.stdout.splitlines()

            assert _normalized(expected) == _normalized(printed), command
