"""The README's "Visitor profiles from events" walkthrough, replayed command by command
against a server configured like ``make serve``: same commands, same output."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SECTION = "## Visitor profiles from events"
MAKE_SERVE_ADMIN_TOKEN = "dev-admin-token"  # the Makefile's DEV_ADMIN_TOKEN
MAKE_SERVE_TARGET = "127.0.0.1:50051"

# Decision ids are fresh ULIDs on every call; the ruleset hash follows the demo rules'
# wording. Neither is part of what the walkthrough shows.
_DECISION_LINE = re.compile(r"^\s+decision\s+[0-9A-Z]{26}$")
_HASH = re.compile(r"\(([0-9a-f]{12})\)$")


def _section_text() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return text[start : end if end != -1 else None]


def _steps() -> list[tuple[str, list[str]]]:
    """``(command, expected output lines)`` for every ``$`` line of the section's console
    blocks, with backslash continuations joined."""
    steps: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```console\n(.*?)```", _section_text(), flags=re.DOTALL):
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            assert line.startswith("$ "), f"console block line without a command: {line!r}"
            command = line[2:]
            while command.endswith("\\"):
                i += 1
                command = command[:-1].rstrip() + " " + lines[i].strip()
            i += 1
            output = []
            while i < len(lines) and not lines[i].startswith("$ "):
                output.append(lines[i])
                i += 1
            steps.append((command, output))
    return steps


def _normalized(lines: list[str]) -> list[str]:
    return [_HASH.sub("(HASH)", line) for line in lines if not _DECISION_LINE.match(line)]


@pytest.fixture
def make_serve(tmp_path, monkeypatch):
    """A demo server as ``make serve`` starts it (demo rules, the dev admin token, no API
    keys), on a free port, with the working directory at the repository root."""
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
    monkeypatch.chdir(ROOT)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None).wait()


class TestReadmeWalkthrough:
    def test_section_has_the_walkthrough(self):
        """The section shows queries before and after tracking, and a track command."""
        commands = [command for command, _ in _steps()]

        assert any(" track examples/events/" in c for c in commands)
        assert sum(" query " in c for c in commands) >= 3

    def test_every_command_prints_what_the_readme_shows(self, make_serve, decide, monkeypatch):
        """Each README command, run against a make-serve-like server, exits 0 and prints
        exactly the README's output (decision ids and the rules hash aside)."""
        for command, expected in _steps():
            words = shlex.split(command)
            if words[0] == "export":
                name, _, value = words[1].partition("=")
                monkeypatch.setenv(name, value)
                continue
            assert words[0] == ".venv/bin/decide", command
            args = [make_serve if w == MAKE_SERVE_TARGET else w for w in words[1:]]

            run = decide(*args)

            assert (0, "") == (run.code, run.err), command
            assert _normalized(expected) == _normalized(run.out.splitlines()), command

    def test_example_files_are_valid_events(self):
        """Every examples/events/*.jsonl line is an event the server accepts."""
        from cli.profiles import read_events

        files = sorted((ROOT / "examples" / "events").glob("*.jsonl"))

        assert files
        for path in files:
            events, _lines = read_events(str(path))
            assert events, path
