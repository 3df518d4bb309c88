"""Issue 12, finding 2, at the server: the issue's document is refused at publish, and
the scans behind EstimateSegment, SegmentReport and ExportSegment evaluate a document
at the nesting limits within a few hundred frames."""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from decision import Event, compile_filter, compile_ruleset
from decision.filters import MAX_FILTER_DEPTH
from decision.rules import MAX_SEGMENT_REFERENCE_DEPTH
from server.analytics import estimates
from server.analytics import scans as audiences
from server.errors import InvalidRulesError
from server.profiles.sqlite import SQLiteProfileStore
from server.rules.sqlite import SQLiteRulesStore as RulesStore

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
HEADROOM = 300
"""Frames allowed above the caller: under a third of CPython's default limit of 1000."""


def _rules(count: int, base: dict[str, Any]) -> dict[str, Any]:
    """Segments s0..s<count-1>, s0 filtering with ``base`` and each next one referring to
    the one before; a campaign targets the last."""
    segments = [{"id": "s0", "filter": base}]
    segments += [{"id": f"s{i}", "filter": {"$segment": f"s{i - 1}"}} for i in range(1, count)]
    return {
        "segments": segments,
        "placements": [{"id": "p"}],
        "campaigns": [
            {
                "id": "c",
                "placements": ["p"],
                "audience": {"segments": [f"s{count - 1}"]},
                "variants": [{"id": "v", "content": {}}],
            }
        ],
    }


def _nor_chain(levels: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"visits": {"$gte": 1}}
    while levels > 2:
        spec = {"$nor": [{"$nor": [spec]}]}
        levels -= 2
    return spec


@contextmanager
def recursion_limit(headroom: int) -> Iterator[None]:
    """The interpreter's recursion limit set to ``headroom`` frames above the caller."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack(0)) + headroom)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


@pytest.fixture
def profiles(tmp_path):
    """A profile store with three visitors, one of them without visits."""
    path = tmp_path / "profiles.db"
    moment = NOW - timedelta(days=1)
    with SQLiteProfileStore(path) as store:
        store.track(
            [
                Event("e1", "a", "session_start", moment, {}),
                Event("e2", "b", "session_start", moment, {}),
                Event("e3", "c", "page_view", moment, {}),
            ]
        )
    return path


def test_the_issue_document_is_not_published(tmp_path):
    """The 500-segment chain of the issue is refused by publish, naming the segment."""
    document = _rules(500, {"visits": {"$gte": 0}})
    store = RulesStore(tmp_path / "rules.db", seed=False)
    try:
        with pytest.raises(InvalidRulesError) as caught:
            store.publish(json.dumps(document), comment="issue 12", author="tests")
    finally:
        store.close()

    limit = MAX_SEGMENT_REFERENCE_DEPTH
    assert [f"segments[{limit + 1}].filter"] == [p.path for p in caught.value.problems]


def test_scans_at_the_limits_need_few_frames(profiles):
    """Estimate, segment sizes, memberships and export evaluate a chain of 32 references
    over a filter as deep as the limit allows, 300 frames above the caller."""
    refs = MAX_SEGMENT_REFERENCE_DEPTH
    ruleset = compile_ruleset(_rules(refs + 1, _nor_chain(MAX_FILTER_DEPTH - refs)))
    top = f"s{refs}"

    with recursion_limit(HEADROOM):
        predicate = compile_filter({"$or": [{"$segment": top}, {"visits": 0}]})
        found = estimates.estimate(profiles, predicate, ruleset, NOW)
        with closing(audiences.connect(profiles)) as conn:
            total, sizes = audiences.segment_sizes(conn, ruleset, NOW)
            members = audiences.memberships(
                conn, [top], ruleset, start=NOW - timedelta(days=2), end=NOW, now=NOW
            )
            exported = [v for page in audiences.export(conn, top, ruleset, NOW, 10) for v in page]

    assert (2, 3) == (found.matching, found.profiles)
    assert (3, 2) == (total, sizes[top])
    assert 3 == members.profiles
    assert ["a", "b"] == sorted(exported)
