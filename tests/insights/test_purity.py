"""insights/ stays pure: standard library only, no I/O, no environment, no clock, no global RNG."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

INSIGHTS = Path(__file__).resolve().parents[2] / "insights"

FORBIDDEN_MODULES = {
    "asyncio", "http", "os", "pathlib", "shutil", "socket", "sqlite3", "ssl",
    "subprocess", "sys", "tempfile", "threading", "time", "urllib",
}  # fmt: skip
"""Standard-library modules insights/ must not import: I/O, processes, environment, clock."""

FORBIDDEN_CALLS = {"now", "utcnow", "today", "getenv", "time", "monotonic", "perf_counter"}
"""Attribute calls that read the clock or the environment, e.g. ``datetime.now()``."""

FORBIDDEN_BUILTINS = {"open", "input", "print", "exec", "eval"}
"""Built-in calls that read or write outside the process's values."""


def _sources() -> list[Path]:
    return sorted(INSIGHTS.rglob("*.py"))


def _import_violation(module: str) -> str | None:
    top = module.split(".")[0]
    if top == "insights":
        return None
    if top not in sys.stdlib_module_names:
        return f"{module} (not in the standard library)"
    if top in FORBIDDEN_MODULES:
        return module
    return None


def _violations(tree: ast.AST) -> list[str]:
    found: list[str | None] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [_import_violation(a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(_import_violation(node.module))
            if node.module == "random":
                # Seeded ``random.Random(seed)`` instances only; the module's functions
                # share one global, unseeded generator.
                found += [f"random.{a.name}" for a in node.names if a.name != "Random"]
        elif isinstance(node, ast.Attribute) and node.attr == "environ":
            found.append("environ")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            func = node.func
            if func.attr in FORBIDDEN_CALLS or (
                isinstance(func.value, ast.Name)
                and func.value.id == "random"
                and func.attr != "Random"
            ):
                found.append(f"{ast.unparse(func)}()")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in FORBIDDEN_BUILTINS
        ):
            found.append(f"{node.func.id}()")
    return [v for v in found if v is not None]


class TestPurity:
    def test_there_is_code_to_check(self):
        """The check would pass vacuously if insights/ were empty or moved."""
        assert len(_sources()) >= 4

    @pytest.mark.parametrize("path", _sources(), ids=lambda p: p.name)
    def test_module_is_pure(self, path: Path):
        """No module in insights/ imports outside the standard library or does I/O."""
        tree = ast.parse(path.read_text("utf-8"), filename=str(path))

        assert [] == _violations(tree)

    @pytest.mark.parametrize(
        "source",
        [
            "import grpc",
            "import numpy as np",
            "from decision.model import Decision",
            "from server.rules.sqlite import Store",
            "import sqlite3",
            "import os\nx = os.environ['A']",
            "from datetime import datetime\nx = datetime.now()",
            "import time\nx = time.time()",
            "import random\nx = random.random()",
            "from random import choice",
            "with open('report.html', 'w') as f:\n    pass",
        ],
    )
    def test_checker_catches_violations(self, source: str):
        """The checker itself flags each kind of impurity it claims to catch."""
        assert _violations(ast.parse(source))

    def test_checker_allows_seeded_generators(self):
        """A seeded ``random.Random`` and ordinary stdlib imports are fine."""
        source = "import math\nimport random\nrng = random.Random(7)\nx = rng.random()"

        assert [] == _violations(ast.parse(source))
