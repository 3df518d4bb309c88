"""The README's activity clauses, sequences and calendar windows compile as printed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from decision import compile_filter

README = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")


def _section(title: str) -> str:
    """The README text from heading ``title`` to the next heading of any level."""
    start = README.index(f"\n### {title}\n")
    end = README.index("\n#", start + 1)
    return README[start:end]


def _inline_json(text: str, opening: str) -> list[Any]:
    """Every inline code span in ``text`` that starts with ``opening``, parsed."""
    pattern = re.compile(r"`(" + re.escape(opening) + r"[^`]*)`")
    return [json.loads(span) for span in pattern.findall(text)]


CLAUSES = _inline_json(_section("Activity in time windows"), '{"$activity"') + [
    json.loads(block)
    for block in re.findall(r"```json\n(.*?)```", _section("Sequences"), flags=re.DOTALL)
]
WINDOWS = _inline_json(_section("Seasons"), '{"yearsAgo"') + _inline_json(
    _section("Seasons"), '{"monthsAgo"'
)


def test_the_examples_are_found():
    """The extraction is not vacuous: nine clauses and a sequence, six windows."""
    assert (10, 6) == (len(CLAUSES), len(WINDOWS))


@pytest.mark.parametrize("clause", CLAUSES, ids=lambda c: json.dumps(c)[:60])
def test_clause_compiles(clause: dict[str, Any]):
    """Each printed clause is a valid filter that declares what it reads."""
    predicate = compile_filter(clause)

    assert predicate.activity


@pytest.mark.parametrize("window", WINDOWS, ids=lambda w: json.dumps(w))
def test_calendar_window_compiles(window: dict[str, Any]):
    """Each printed calendar window is valid in an $activity clause."""
    predicate = compile_filter({"$activity": {"type": "purchase", "during": window}})

    assert predicate.uses_now
