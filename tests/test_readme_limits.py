"""The README's "Errors and limits" table agrees with the constants in code, both ways:
every row names a constant holding its value, and every bound constant has a row."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
MODULES = (
    "server.limits",
    "decision.profile",
    "decision.rules",
    "decision.filters",
    "decision.model",
)
"""Where bounds are defined: each public ``MAX_*``, ``MIN_*`` and ``DEFAULT_*`` constant
there is a documented bound."""

_BOUND_NAME = re.compile(r"(MAX|MIN|DEFAULT)_[A-Z0-9_]+")
_VALUE = re.compile(
    r"(?P<sign>±)?(?P<number>\d{4}-\d{2}-\d{2}|\d+\^\d+|\d[\d,]*)(?:\s+(?P<unit>KiB|MiB|hours))?"
)
_UNITS = {None: 1, "KiB": 1024, "MiB": 1024 * 1024}


def limits_table() -> list[tuple[str, str, str]]:
    """``(limit, value, constant)`` for each row of the table in "### Errors and limits"."""
    text = README.read_text("utf-8")
    section = text.split("### Errors and limits", 1)[1].split("\n### ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    header, separator, *body = rows
    assert ["limit", "value", "why this value", "constant"] == _cells(header)
    assert set(separator) <= set("|-")
    return [(cells[0], cells[1], cells[3].strip("`")) for cells in map(_cells, body)]


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def documented(value: str) -> Any:
    """The quantity a table value states: ``64 KiB`` is 65536, ``10^12`` 10**12,
    ``24 hours`` a timedelta, ``2000-01-01`` that date; words after it are commentary."""
    found = _VALUE.match(value)
    assert found is not None, f"no quantity at the start of {value!r}"
    number, unit = found["number"], found["unit"]
    if "-" in number:
        return datetime.fromisoformat(number).date()
    if "^" in number:
        base, exponent = number.split("^")
        return int(base) ** int(exponent)
    if unit == "hours":
        return timedelta(hours=int(number.replace(",", "")))
    return int(number.replace(",", "")) * _UNITS[unit]


def constant(qualified: str) -> Any:
    """The value of ``module.NAME``, a datetime as its date."""
    module, name = qualified.rsplit(".", 1)
    value = getattr(importlib.import_module(module), name)
    return value.date() if isinstance(value, datetime) else value


def bound_constants() -> set[str]:
    """Every public bound constant assigned at the top level of MODULES, qualified
    (names a module imports from another are that other module's)."""
    names = set()
    for module_name in MODULES:
        tree = ast.parse(inspect.getsource(importlib.import_module(module_name)))
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            names |= {
                f"{module_name}.{target.id}"
                for target in targets
                if isinstance(target, ast.Name) and _BOUND_NAME.fullmatch(target.id)
            }
    return names


class TestLimitsTable:
    @pytest.mark.parametrize(
        ("limit", "value", "qualified"), limits_table(), ids=[row[2] for row in limits_table()]
    )
    def test_row_states_the_constant(self, limit: str, value: str, qualified: str):
        """Each row's value is the value of the constant it names."""
        expected = constant(qualified)

        actual = documented(value)

        assert expected == actual, limit

    def test_every_bound_has_a_row(self):
        """Every MAX_/MIN_/DEFAULT_ constant where bounds live is documented, once."""
        names = [row[2] for row in limits_table()]
        expected = sorted(bound_constants())

        actual = sorted(names)

        assert expected == actual
