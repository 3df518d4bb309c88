"""Errors raised by the decision engine.

    DecisionError
     ├── FilterError(ValueError)       a segment filter is malformed (names its path)
     ├── RulesetError(ValueError)      a rules document has problems (lists every one)
     └── InvalidRequestError(ValueError)  a decide() call's arguments are unusable

Outcomes that are not errors (no campaign applies, a holdout, an unknown placement) are
data: a ``Decision`` with a ``Reason``.
"""

from __future__ import annotations

from dataclasses import dataclass


class DecisionError(Exception):
    """Base class of every error the engine raises."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input, and where: ``path`` is a JSON path such as
    ``campaigns[2].variants[0].weight`` or ``$and[1].customer_segment.ratio``."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class FilterError(DecisionError, ValueError):
    """A segment filter cannot be compiled. ``path`` names the offending place."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


class _ProblemsError(DecisionError, ValueError):
    """An error that carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...], summary: str) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{summary} ({len(self.problems)} problem(s)):\n{lines}")


class RulesetError(_ProblemsError):
    """A rules document is invalid. ``problems`` lists each problem with its path."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        super().__init__(problems, "invalid rules document")


class InvalidRequestError(_ProblemsError):
    """A decide() call cannot be answered as asked (e.g. an empty visitor id)."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        super().__init__(problems, "invalid decision request")
