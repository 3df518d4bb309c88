"""Rules documents as JSON text: strict parsing and validation, with a path for every problem.

``json.loads`` quietly keeps the last of two equal keys and accepts NaN; in a rules
document both hide mistakes, so both are problems here. Syntax errors name their line
and column.
"""

from __future__ import annotations

import json
from typing import Any

import decision
from decision import Problem, Ruleset, RulesetError
from server import limits
from server.errors import InvalidRulesError


class _Object(dict[str, Any]):
    """A parsed JSON object that remembers which of its keys appeared more than once."""

    __slots__ = ("duplicates",)

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        self.duplicates: list[str] = []
        if len(self) != len(pairs):
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen and key not in self.duplicates:
                    self.duplicates.append(key)
                seen.add(key)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_document(text: str) -> tuple[Any, list[Problem]]:
    """Parse JSON text. Returns ``(document, problems)``; ``document`` is None when the
    text does not parse. Objects in the result are plain dicts."""
    size = len(text.encode("utf-8"))
    if size > limits.MAX_DOCUMENT_BYTES:
        return None, [Problem("", f"document is {size} bytes; at most {limits.MAX_DOCUMENT_BYTES}")]
    if not text.strip():
        return None, [Problem("", "document is empty")]
    problems: list[Problem] = []
    try:
        raw = json.loads(text, object_pairs_hook=_Object, parse_constant=_reject_constant)
        document = _plain(raw, "", problems)
    except json.JSONDecodeError as exc:
        return None, [
            Problem("", f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")
        ]
    except ValueError as exc:  # NaN / Infinity
        return None, [Problem("", str(exc))]
    except RecursionError:
        return None, [Problem("", "document nests too deeply")]
    return document, problems


def _plain(value: Any, path: str, problems: list[Problem]) -> Any:
    """Report duplicate keys at their path and convert ``_Object`` back to ``dict``."""
    if isinstance(value, _Object):
        for key in value.duplicates:
            problems.append(Problem(_join(path, key), f"duplicate key {key!r}"))
        return {k: _plain(v, _join(path, k), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def validate_text(text: str) -> tuple[list[Problem], str]:
    """Every problem of a rules document given as JSON text, and its content hash when
    it has none (else ``""``)."""
    document, problems = parse_document(text)
    if problems:
        return problems, ""
    try:
        ruleset = decision.compile_ruleset(document)
    except RulesetError as exc:
        return list(exc.problems), ""
    return [], ruleset.version


def compile_text(text: str) -> Ruleset:
    """Parse and compile a rules document; raises ``InvalidRulesError`` listing every problem."""
    document, problems = parse_document(text)
    if problems:
        raise InvalidRulesError(problems)
    try:
        return decision.compile_ruleset(document)
    except RulesetError as exc:
        raise InvalidRulesError(exc.problems) from exc


def dump_document(document: Any) -> str:
    """Serialize a rules document the way the store keeps documents it writes itself."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
