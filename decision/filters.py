"""MongoDB query filters, compiled once into closures and evaluated many times.

CONTRACT (kept by the implementation below; other modules rely on it):

- ``compile_filter(spec) -> Predicate`` validates the whole spec, raising ``FilterError``
  with ``.path`` naming the offending place.
- ``Predicate(doc, now=None, *, segments=None) -> bool`` evaluates one document.
  ``now`` is an aware UTC ``datetime``; a predicate with ``uses_now`` raises ValueError
  without it. ``segments`` maps segment ids to Predicates, needed when ``references``
  is non-empty.
- ``Predicate.evaluate(ctx)`` evaluates ``ctx.root`` inside a per-call ``EvalContext``,
  which memoizes segment results so each segment is evaluated at most once per call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from decision.errors import FilterError

Matcher = Callable[[Any, "EvalContext"], bool]
"""A compiled filter node: ``matcher(document, ctx) -> bool``."""


class EvalContext:
    """State of one evaluation call: the root document, ``now`` and segment results."""

    __slots__ = ("memo", "now", "root", "segments")

    def __init__(
        self,
        root: Any,
        now: datetime | None = None,
        segments: Mapping[str, Predicate] | None = None,
    ) -> None:
        self.root = root
        self.now = now
        self.segments = segments
        self.memo: dict[str, bool] = {}

    def segment(self, segment_id: str) -> bool:
        """Whether the root document is in ``segment_id``; evaluated at most once."""
        memo = self.memo
        result = memo.get(segment_id)
        if result is None:
            if self.segments is None or segment_id not in self.segments:
                raise ValueError(f"segment {segment_id!r} is not defined for this evaluation")
            predicate = self.segments[segment_id]
            result = memo[segment_id] = predicate._match(self.root, self)
        return result


class Predicate:
    """A compiled filter. Call it with a document; it never raises on document data."""

    __slots__ = ("_match", "references", "spec", "uses_now")

    def __init__(
        self, spec: Any, match: Matcher, references: frozenset[str], uses_now: bool
    ) -> None:
        self.spec = spec
        self._match = match
        self.references = references
        self.uses_now = uses_now

    def __call__(
        self,
        doc: Any,
        now: datetime | None = None,
        *,
        segments: Mapping[str, Predicate] | None = None,
    ) -> bool:
        if now is None and self.uses_now:
            raise ValueError("this filter compares relative dates; pass now=")
        if self.references and segments is None:
            raise ValueError(
                f"this filter references segments {sorted(self.references)}; pass segments="
            )
        return self._match(doc, EvalContext(doc, now, segments))

    def evaluate(self, ctx: EvalContext) -> bool:
        """Evaluate ``ctx.root`` within an existing per-call context."""
        return self._match(ctx.root, ctx)

    def __repr__(self) -> str:
        return f"Predicate({self.spec!r})"


def compile_filter(spec: Any) -> Predicate:
    """Validate ``spec`` and compile it into a Predicate."""
    raise FilterError("", "not implemented yet")  # replaced by the filter compiler
