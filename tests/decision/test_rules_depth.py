"""Issue 12, finding 2: a rules document validates only if the engine can evaluate it,
and evaluation at the limits does not lean on the interpreter's recursion limit."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from decision import Problem, compile_ruleset, decide, validate_ruleset, visitor_segments
from decision.filters import MAX_FILTER_DEPTH, compile_filter
from decision.rules import MAX_SEGMENT_REFERENCE_DEPTH

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
HEADROOM = 300
"""Frames allowed above the caller while compiling and evaluating at the limits, under a
third of CPython's default recursion limit of 1000 (measured: compiling needs up to 265,
evaluating up to about 100)."""


def chain(count: int, base: dict[str, Any], link: Callable[[str], dict[str, Any]]) -> list:
    """Segments s0..s<count-1>: s0's filter is ``base``, each next one ``link(previous id)``."""
    segments = [{"id": "s0", "filter": base}]
    segments += [{"id": f"s{i}", "filter": link(f"s{i - 1}")} for i in range(1, count)]
    return segments


def document(segments: list[dict[str, Any]], audience: str) -> dict[str, Any]:
    """A rules document whose one campaign on placement p targets segment ``audience``."""
    return {
        "segments": segments,
        "placements": [{"id": "p", "fallback": None}],
        "campaigns": [
            {
                "id": "c",
                "placements": ["p"],
                "audience": {"segments": [audience]},
                "variants": [{"id": "v", "content": {"shown": True}}],
            }
        ],
    }


def nor_chain(levels: int) -> dict[str, Any]:
    """A filter ``levels`` deep built from $nor, the construct with the most Python frames
    per level; it matches ``{"a": 1}`` for even ``levels``."""
    spec: dict[str, Any] = {"a": 1}
    while levels > 1:
        spec = {"$nor": [spec]}
        levels -= 1
    return spec


def direct(previous: str) -> dict[str, Any]:
    return {"$segment": previous}


def negated(previous: str) -> dict[str, Any]:
    return {"$nor": [{"$nor": [{"$segment": previous}]}]}


@contextmanager
def recursion_limit(headroom: int) -> Iterator[None]:
    """The interpreter's recursion limit set to ``headroom`` frames above the caller."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack(0)) + headroom)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


class TestReferenceDepth:
    def test_the_issue_document_is_refused(self):
        """Issue 12: s1..s499 each referencing the one before validated, then every Decide
        raised RecursionError. The segment where the chain goes over the limit is named."""
        segments = chain(500, {"visits": {"$gte": 0}}, direct)
        limit = MAX_SEGMENT_REFERENCE_DEPTH
        expected = [
            Problem(
                f"segments[{limit + 1}].filter",
                f"$segment references nest {limit + 1} deep; at most {limit}",
            )
        ]

        actual = validate_ruleset(document(segments, "s499"))

        assert expected == actual

    def test_a_chain_at_the_limit_is_valid(self):
        """s0..s32: s32's references nest 32 deep, which is allowed."""
        count = MAX_SEGMENT_REFERENCE_DEPTH + 1
        segments = chain(count, {"visits": {"$gte": 0}}, direct)

        assert [] == validate_ruleset(document(segments, f"s{count - 1}"))

    def test_inline_audience_filter_counts_its_references(self):
        """A campaign's inline filter referring to the last segment of a full chain is
        one reference too deep, at campaigns[0].audience.filter."""
        count = MAX_SEGMENT_REFERENCE_DEPTH + 1
        rules = document(chain(count, {"visits": 1}, direct), "s0")
        rules["campaigns"][0]["audience"]["filter"] = {"$segment": f"s{count - 1}"}
        limit = MAX_SEGMENT_REFERENCE_DEPTH
        expected = [
            Problem(
                "campaigns[0].audience.filter",
                f"$segment references nest {limit + 1} deep; at most {limit}",
            )
        ]

        assert expected == validate_ruleset(rules)

    def test_cycles_are_still_reported_once(self):
        """A reference cycle is reported as a cycle, and the depth check terminates."""
        segments = [
            {"id": "a", "filter": {"$segment": "b"}},
            {"id": "b", "filter": {"$segment": "a"}},
        ]

        problems = validate_ruleset(document(segments, "a"))

        assert ["reference cycle a -> b -> a"] == [p.message for p in problems]


class TestDepthThroughReferences:
    def test_levels_add_up_through_references(self):
        """A segment one level inside others adds its levels to theirs: the first segment
        whose filter, counted through its references, nests too deep is named."""
        base = nor_chain(MAX_FILTER_DEPTH - 3)  # 61 levels
        segments = chain(6, base, direct)  # s_i: 61 + i levels
        expected = [
            Problem(
                "segments[4].filter",
                f"nests {MAX_FILTER_DEPTH + 1} levels deep counting the segments it "
                f"references; at most {MAX_FILTER_DEPTH}",
            )
        ]

        assert expected == validate_ruleset(document(segments, "s5"))

    def test_reference_level_is_where_the_clause_sits(self):
        """A $segment clause one level down puts the referenced filter two levels down,
        however deep the filter's other clauses go."""
        wide = {
            "$or": [
                {"$segment": "base"},
                {"$and": [{"$and": [{"$and": [{"x": 1}]}]}]},
            ]
        }

        predicate = compile_filter(wide)

        assert (5, {"base": 1}) == (predicate.depth, dict(predicate.reference_depths))

    def test_dotted_paths_count_a_level_per_part(self):
        """A path of 66 parts nests as deep as the document it walks: refused."""
        path = ".".join(["a"] * (MAX_FILTER_DEPTH + 2))

        problems = validate_ruleset(document([{"id": "s", "filter": {path: 1}}], "s"))

        assert [f"segments[0].filter.{path}"] == [p.path for p in problems]


def _at_the_limits() -> list[tuple[str, dict[str, Any], str]]:
    """Documents at both limits, each built from a frame-heavy construct."""
    refs = MAX_SEGMENT_REFERENCE_DEPTH
    base_levels = MAX_FILTER_DEPTH - refs
    return [
        (
            "direct-refs",
            document(chain(refs + 1, nor_chain(base_levels), direct), f"s{refs}"),
            f"s{refs}",
        ),
        (
            "nor-refs",
            document(chain(refs // 3 + 1, nor_chain(base_levels), negated), f"s{refs // 3}"),
            f"s{refs // 3}",
        ),
        ("one-filter", document([{"id": "s0", "filter": nor_chain(MAX_FILTER_DEPTH)}], "s0"), "s0"),
        (
            "elem-match",
            document([{"id": "s0", "filter": _elem_match(MAX_FILTER_DEPTH // 2 - 1)}], "s0"),
            "s0",
        ),
    ]


def _elem_match(levels: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"a": 1}
    for _ in range(levels):
        spec = {"a": {"$elemMatch": spec}}
    return spec


def _nested_profile(levels: int) -> dict[str, Any]:
    profile: dict[str, Any] = {"a": 1}
    for _ in range(levels):
        profile = {"a": [profile]}
    return profile


class TestEvaluationAtTheLimits:
    @pytest.mark.parametrize(
        ("rules", "top"),
        [(rules, top) for _, rules, top in _at_the_limits()],
        ids=[name for name, _, _ in _at_the_limits()],
    )
    def test_every_engine_entry_needs_few_frames(self, rules, top):
        """compile_ruleset, decide, visitor_segments and a filter called with the segments
        (how the server's estimates and reports evaluate) all work 300 frames above the
        caller."""
        profile = _nested_profile(MAX_FILTER_DEPTH)

        with recursion_limit(HEADROOM):
            ruleset = compile_ruleset(rules)
            estimate = compile_filter({"$segment": top})
            decisions = decide(ruleset, "visitor", profile, ["p"], {}, NOW)
            segments = visitor_segments(ruleset, profile, {}, NOW)
            counted = estimate(profile, NOW, segments=ruleset.segment_filters)

        assert ["p"] == [d.placement for d in decisions]
        assert counted == (top in segments)
