"""CLI fixtures: a clean DECIDE_* environment and a helper running ``main`` in-process."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli import main


@dataclass(frozen=True)
class Run:
    """What one ``decide`` invocation did."""

    code: int
    out: str
    err: str

    def json(self) -> object:
        return json.loads(self.out)


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No DECIDE_* variable from the developer's shell leaks into a test."""
    for key in list(os.environ):
        if key.startswith("DECIDE_"):
            monkeypatch.delenv(key)
    yield


@pytest.fixture
def decide(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """Run ``decide ARGS...`` through ``main`` and capture its exit code and output."""

    def run(*args: str | Path) -> Run:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def demo_file(tmp_path: Path) -> Path:
    """The demo rules document written to a file."""
    import decision

    path = tmp_path / "demo.json"
    path.write_text(json.dumps(decision.demo_document(), indent=2))
    return path
