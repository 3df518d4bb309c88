"""The engine in decision/ stays pure: no transport, no storage, no environment, no clock."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DECISION = Path(__file__).resolve().parent.parent / "decision"

FORBIDDEN_MODULES = {"grpc", "protos", "sqlite3", "sqlite_utils", "server", "client", "os", "time"}
"""Top-level modules decision/ must not import (os and time: environment and clock)."""

FORBIDDEN_CALLS = {"now", "utcnow", "today", "getenv", "time", "monotonic", "perf_counter"}
"""Attribute calls that read the clock or the environment, e.g. ``datetime.now()``."""


def _sources() -> list[Path]:
    return sorted(DECISION.rglob("*.py"))


def _violations(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in FORBIDDEN_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in FORBIDDEN_MODULES:
                found.append(node.module)
        elif isinstance(node, ast.Attribute) and node.attr == "environ":
            found.append("environ")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in FORBIDDEN_CALLS
        ):
            found.append(f"{ast.unparse(node.func)}()")
    return found


def test_there_is_engine_code_to_check():
    """The check below would pass vacuously if decision/ were empty or moved."""
    assert len(_sources()) >= 3


@pytest.mark.parametrize("path", _sources(), ids=lambda p: p.name)
def test_engine_module_is_pure(path: Path):
    """No module in decision/ imports I/O packages or reads the environment or clock."""
    tree = ast.parse(path.read_text(), filename=str(path))

    assert [] == _violations(tree)


@pytest.mark.parametrize(
    "source",
    [
        "import grpc",
        "from sqlite_utils import Database",
        "import os\nx = os.environ['A']",
        "from datetime import datetime\nx = datetime.now()",
        "import time\nx = time.time()",
        "from server.rules.sqlite import Store",
    ],
)
def test_checker_catches_violations(source: str):
    """The checker itself flags each kind of impurity it claims to catch."""
    assert _violations(ast.parse(source))
