"""Rules documents: validation with paths, compilation, immutability and versions."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from decision import (
    BUCKETS,
    Problem,
    Ruleset,
    RulesetError,
    compile_ruleset,
    default_document,
    demo_document,
    validate_ruleset,
)
from decision.rules import ruleset_version

BASE: dict[str, Any] = {
    "segments": [
        {"id": "new", "filter": {"visits": 1}},
        {"id": "vip", "name": "VIPs", "filter": {"ltv": {"$gte": 1000}}},
    ],
    "placements": [{"id": "hero", "fallback": {"headline": "Welcome"}}, {"id": "popup"}],
    "exclusion_groups": [{"id": "tests"}],
    "campaigns": [
        {"id": "c1", "placements": ["hero"], "variants": [{"id": "a", "content": {"h": "A"}}]},
        {
            "id": "c2",
            "placements": ["hero", "popup"],
            "priority": 5,
            "audience": {"segments": ["vip"]},
            "exclusion_group": "tests",
            "traffic_allocation": 40,
            "variants": [
                {"id": "control", "control": True},
                {"id": "b", "weight": 3, "content": {"h": "B"}},
            ],
        },
    ],
}

_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _steps(path: str) -> list[str | int]:
    return [name if name else int(index) for name, index in _TOKEN.findall(path)]


def edited(path: str, value: Any = None, *, delete: bool = False, doc: Any = None) -> Any:
    """A copy of ``doc`` (default BASE) with ``path`` set to ``value`` or deleted."""
    result = copy.deepcopy(BASE if doc is None else doc)
    *parents, last = _steps(path)
    target = result
    for step in parents:
        target = target[step]
    if delete:
        del target[last]
    else:
        target[last] = value
    return result


def problems_of(document: Any) -> list[tuple[str, str]]:
    with pytest.raises(RulesetError) as raised:
        compile_ruleset(document)
    return [(p.path, p.message) for p in raised.value.problems]


def with_segments(*segments: dict[str, Any]) -> dict[str, Any]:
    return {"segments": list(segments)}


# (id, document, [(path, fragment of the message), ...])
PROBLEM_CASES: list[tuple[str, Any, list[tuple[str, str]]]] = [
    ("document-not-object", [], [("", "must be a JSON object")]),
    ("top-level-typo", edited("campaign", []), [("campaign", "unknown key")]),
    (
        "segments-not-list",
        edited("segments", {}),
        [("segments", "must be a list"), ("campaigns[1].audience.segments[0]", "unknown segment")],
    ),
    ("schema-not-string", edited("$schema", 3), [("$schema", "must be a string")]),
    ("segment-not-object", edited("segments[0]", "new"), [("segments[0]", "must be an object")]),
    ("segment-missing-id", edited("segments[0].id", delete=True), [("segments[0].id", "required")]),
    (
        "segment-missing-filter",
        edited("segments[0].filter", delete=True),
        [("segments[0].filter", "is required")],
    ),
    (
        "segment-unknown-key",
        edited("segments[0].descripton", "typo"),
        [("segments[0].descripton", "unknown key")],
    ),
    ("segment-id-space", edited("segments[0].id", "new visitors"), [("segments[0].id", "letters")]),
    ("segment-id-empty", edited("segments[0].id", ""), [("segments[0].id", "non-empty")]),
    ("segment-id-number", edited("segments[0].id", 7), [("segments[0].id", "non-empty string")]),
    (
        "segment-duplicate-id",
        edited("segments[1].id", "new"),
        [
            ("segments[1].id", "duplicate segment id 'new' (first at segments[0].id)"),
            ("campaigns[1].audience.segments[0]", "unknown segment 'vip'"),
        ],
    ),
    ("segment-name-type", edited("segments[0].name", 1), [("segments[0].name", "string")]),
    (
        "segment-description-type",
        edited("segments[0].description", None),
        [("segments[0].description", "string")],
    ),
    (
        "segment-filter-not-object",
        edited("segments[0].filter", [1]),
        [("segments[0].filter", "must be an object")],
    ),
    (
        "segment-unknown-reference",
        edited("segments[1].filter", {"$segment": "ghost"}),
        [("segments[1].filter", "unknown segment 'ghost'")],
    ),
    (
        "segment-cycle",
        with_segments(
            {"id": "x", "filter": {}},
            {"id": "a", "filter": {"$segment": "b"}},
            {"id": "b", "filter": {"$segment": "a"}},
        ),
        [("segments[1].filter", "reference cycle a -> b -> a")],
    ),
    (
        "segment-self-cycle",
        with_segments({"id": "a", "filter": {"$segment": "a"}}),
        [("segments[0].filter", "reference cycle a -> a")],
    ),
    (
        "segment-long-cycle",
        with_segments(
            {"id": "a", "filter": {"$segment": "b"}},
            {"id": "b", "filter": {"$or": [{"$segment": "c"}, {"visits": 1}]}},
            {"id": "c", "filter": {"$segment": "a"}},
        ),
        [("segments[0].filter", "reference cycle a -> b -> c -> a")],
    ),
    (
        "placement-duplicate-id",
        edited("placements[1].id", "hero"),
        [
            ("placements[1].id", "duplicate placement id 'hero'"),
            ("campaigns[1].placements[1]", "unknown placement 'popup'"),
        ],
    ),
    (
        "placement-unknown-key",
        edited("placements[0].fallbak", None),
        [("placements[0].fallbak", "unknown key")],
    ),
    (
        "placement-missing-id",
        edited("placements[1]", {}),
        [("placements[1].id", "is required"), ("campaigns[1].placements[1]", "unknown")],
    ),
    (
        "group-empty-salt",
        edited("exclusion_groups[0].salt", ""),
        [("exclusion_groups[0].salt", "empty")],
    ),
    (
        "group-unknown-key",
        edited("exclusion_groups[0].size", 2),
        [("exclusion_groups[0].size", "unknown")],
    ),
    (
        "campaign-missing-id",
        edited("campaigns[0].id", delete=True),
        [("campaigns[0].id", "required")],
    ),
    (
        "campaign-duplicate-id",
        edited("campaigns[1].id", "c1"),
        [("campaigns[1].id", "duplicate campaign id 'c1'")],
    ),
    (
        "campaign-missing-placements",
        edited("campaigns[0].placements", delete=True),
        [("campaigns[0].placements", "is required")],
    ),
    (
        "campaign-no-placements",
        edited("campaigns[0].placements", []),
        [("campaigns[0].placements", "must not be empty")],
    ),
    (
        "campaign-unknown-placement",
        edited("campaigns[1].placements", ["hero", "footer"]),
        [("campaigns[1].placements[1]", "unknown placement 'footer'")],
    ),
    (
        "campaign-duplicate-placement",
        edited("campaigns[0].placements", ["hero", "hero"]),
        [("campaigns[0].placements[1]", "duplicate placement 'hero'")],
    ),
    ("campaign-typo", edited("campaigns[0].prority", 3), [("campaigns[0].prority", "unknown key")]),
    (
        "status",
        edited("campaigns[0].status", "live"),
        [("campaigns[0].status", "'active' or 'paused'")],
    ),
    (
        "schedule-not-object",
        edited("campaigns[0].schedule", "2026-06-01"),
        [("campaigns[0].schedule", "must be an object")],
    ),
    (
        "schedule-bad-date",
        edited("campaigns[0].schedule", {"start": "June 1st"}),
        [("campaigns[0].schedule.start", "not an ISO-8601 timestamp")],
    ),
    (
        "schedule-naive-date",
        edited("campaigns[0].schedule", {"end": "2026-06-01T00:00:00"}),
        [("campaigns[0].schedule.end", "UTC offset")],
    ),
    (
        "schedule-number",
        edited("campaigns[0].schedule", {"end": 1780000000}),
        [("campaigns[0].schedule.end", "timestamp string or null")],
    ),
    (
        "schedule-start-after-end",
        edited(
            "campaigns[0].schedule",
            {"start": "2026-06-02T00:00:00Z", "end": "2026-06-01T00:00:00Z"},
        ),
        [("campaigns[0].schedule", "must be before end")],
    ),
    (
        "schedule-start-equals-end",
        edited(
            "campaigns[0].schedule",
            {"start": "2026-06-01T02:00:00+02:00", "end": "2026-06-01T00:00:00Z"},
        ),
        [("campaigns[0].schedule", "must be before end")],
    ),
    (
        "schedule-typo",
        edited("campaigns[0].schedule", {"stop": None}),
        [("campaigns[0].schedule.stop", "unknown key")],
    ),
    (
        "priority-string",
        edited("campaigns[0].priority", "10"),
        [("campaigns[0].priority", "integer")],
    ),
    (
        "priority-bool",
        edited("campaigns[0].priority", True),
        [("campaigns[0].priority", "integer")],
    ),
    (
        "priority-float",
        edited("campaigns[0].priority", 1.5),
        [("campaigns[0].priority", "integer")],
    ),
    (
        "audience-unknown-segment",
        edited("campaigns[1].audience.segments", ["vip", "vips"]),
        [("campaigns[1].audience.segments[1]", "unknown segment 'vips'")],
    ),
    (
        "audience-unknown-exclude",
        edited("campaigns[1].audience.exclude", ["ghost"]),
        [("campaigns[1].audience.exclude[0]", "unknown segment 'ghost'")],
    ),
    (
        "audience-segments-not-list",
        edited("campaigns[1].audience.segments", "vip"),
        [("campaigns[1].audience.segments", "must be a list")],
    ),
    (
        "audience-segment-not-string",
        edited("campaigns[1].audience.segments", [3]),
        [("campaigns[1].audience.segments[0]", "must be a segment id")],
    ),
    (
        "audience-match",
        edited("campaigns[1].audience.match", "some"),
        [("campaigns[1].audience.match", "'any' or 'all'")],
    ),
    (
        "audience-typo",
        edited("campaigns[1].audience.segment", ["vip"]),
        [("campaigns[1].audience.segment", "unknown key")],
    ),
    (
        "audience-filter-not-object",
        edited("campaigns[1].audience.filter", "mobile"),
        [("campaigns[1].audience.filter", "must be an object")],
    ),
    (
        "audience-filter-unknown-reference",
        edited("campaigns[1].audience.filter", {"$segment": "ghost"}),
        [("campaigns[1].audience.filter", "unknown segment 'ghost'")],
    ),
    (
        "unknown-exclusion-group",
        edited("campaigns[1].exclusion_group", "test"),
        [("campaigns[1].exclusion_group", "unknown exclusion group 'test'")],
    ),
    (
        "exclusion-group-null",
        edited("campaigns[1].exclusion_group", None),
        [("campaigns[1].exclusion_group", "must be an exclusion group id")],
    ),
    (
        "traffic-negative",
        edited("campaigns[0].traffic_allocation", -1),
        [("campaigns[0].traffic_allocation", "from 0 to 100")],
    ),
    (
        "traffic-over-100",
        edited("campaigns[0].traffic_allocation", 100.5),
        [("campaigns[0].traffic_allocation", "from 0 to 100")],
    ),
    (
        "traffic-string",
        edited("campaigns[0].traffic_allocation", "50"),
        [("campaigns[0].traffic_allocation", "must be a number")],
    ),
    (
        "traffic-bool",
        edited("campaigns[0].traffic_allocation", True),
        [("campaigns[0].traffic_allocation", "must be a number")],
    ),
    (
        "traffic-three-decimals",
        edited("campaigns[0].traffic_allocation", 12.345),
        [("campaigns[0].traffic_allocation", "at most 2 decimals")],
    ),
    (
        "traffic-nan",
        edited("campaigns[0].traffic_allocation", float("nan")),
        [("campaigns[0].traffic_allocation", "from 0 to 100")],
    ),
    (
        "holdout-over-100",
        edited("campaigns[0].holdout", 101),
        [("campaigns[0].holdout", "0 to 100")],
    ),
    ("holdout-null", edited("campaigns[0].holdout", None), [("campaigns[0].holdout", "a number")]),
    ("salt-empty", edited("campaigns[0].salt", ""), [("campaigns[0].salt", "must not be empty")]),
    ("salt-number", edited("campaigns[0].salt", 3), [("campaigns[0].salt", "must be a string")]),
    (
        "variants-missing",
        edited("campaigns[0].variants", delete=True),
        [("campaigns[0].variants", "is required")],
    ),
    (
        "variants-empty",
        edited("campaigns[0].variants", []),
        [("campaigns[0].variants", "not be empty")],
    ),
    (
        "variants-not-list",
        edited("campaigns[0].variants", {}),
        [("campaigns[0].variants", "a list")],
    ),
    (
        "variant-negative-weight",
        edited("campaigns[1].variants[1].weight", -3),
        [("campaigns[1].variants[1].weight", "non-negative integer")],
    ),
    (
        "variant-float-weight",
        edited("campaigns[1].variants[1].weight", 0.5),
        [("campaigns[1].variants[1].weight", "non-negative integer")],
    ),
    (
        "variant-bool-weight",
        edited("campaigns[1].variants[1].weight", True),
        [("campaigns[1].variants[1].weight", "non-negative integer")],
    ),
    (
        "variant-weights-sum-zero",
        edited("campaigns[0].variants[0].weight", 0),
        [("campaigns[0].variants", "add up to more than 0")],
    ),
    (
        "two-controls",
        edited("campaigns[1].variants[1].control", True),
        [("campaigns[1].variants[1].control", "only one control variant")],
    ),
    (
        "control-not-bool",
        edited("campaigns[0].variants[0].control", "yes"),
        [("campaigns[0].variants[0].control", "true or false")],
    ),
    (
        "variant-missing-content",
        edited("campaigns[0].variants[0].content", delete=True),
        [("campaigns[0].variants[0].content", "only a control may omit it")],
    ),
    (
        "variant-duplicate-id",
        edited("campaigns[1].variants[1].id", "control"),
        [("campaigns[1].variants[1].id", "duplicate variant id 'control'")],
    ),
    (
        "variant-typo",
        edited("campaigns[0].variants[0].contents", {}),
        [("campaigns[0].variants[0].contents", "unknown key")],
    ),
    (
        "variant-missing-id",
        edited("campaigns[0].variants[0].id", delete=True),
        [("campaigns[0].variants[0].id", "is required")],
    ),
    (
        "group-over-100",
        edited(
            "campaigns[0]",
            {**BASE["campaigns"][0], "exclusion_group": "tests", "traffic_allocation": 60.5},
        ),
        [("exclusion_groups[0]", "add up to 100.5% (c1 60.5%, c2 40%)")],
    ),
]


class TestValidDocuments:
    def test_base_compiles(self) -> None:
        """The reference document of these tests is valid."""
        expected: list[Problem] = []

        actual = validate_ruleset(BASE)

        assert expected == actual

    @pytest.mark.parametrize("document", [{}, {"segments": [], "campaigns": []}], ids=str)
    def test_empty_documents(self, document: dict[str, Any]) -> None:
        """Every top-level list is optional."""
        ruleset = compile_ruleset(document)

        assert ({}, {}) == (dict(ruleset.placements), dict(ruleset.campaigns))

    @pytest.mark.parametrize("make", [default_document, demo_document], ids=lambda f: f.__name__)
    def test_shipped_documents_compile(self, make: Any) -> None:
        """The default and demo documents are valid."""
        expected: list[Problem] = []

        actual = validate_ruleset(make())

        assert expected == actual

    def test_defaults(self) -> None:
        """Optional keys take their documented defaults."""
        campaign = compile_ruleset(BASE).campaigns["c1"]
        expected = ("c1", True, 0, BUCKETS, 0, "c1", "any", (), None, None)

        actual = (
            campaign.name,
            campaign.active,
            campaign.priority,
            campaign.traffic,
            campaign.holdout,
            campaign.salt,
            campaign.audience.match,
            campaign.audience.segments,
            campaign.schedule.start,
            campaign.exclusion_group,
        )

        assert expected == actual

    def test_names_default_to_ids(self) -> None:
        """Segments, placements and groups without a name are named by their id."""
        ruleset = compile_ruleset(BASE)
        expected = ("new", "VIPs", "hero", "tests")

        actual = (
            ruleset.segments["new"].name,
            ruleset.segments["vip"].name,
            ruleset.placements["hero"].name,
            ruleset.exclusion_groups["tests"].name,
        )

        assert expected == actual

    def test_candidates_in_resolution_order(self) -> None:
        """Candidates: priority descending, ties by campaign id, paused ones included."""
        document = {
            "placements": [{"id": "p"}, {"id": "empty"}],
            "campaigns": [
                {
                    "id": i,
                    "placements": ["p"],
                    "priority": prio,
                    "status": status,
                    "variants": [{"id": "v", "content": None}],
                }
                for i, prio, status in [
                    ("b", 1, "active"),
                    ("a", 1, "paused"),
                    ("z", 9, "active"),
                    ("m", -2, "active"),
                ]
            ],
        }
        expected = {"p": ["z", "a", "b", "m"], "empty": []}

        ruleset = compile_ruleset(document)
        actual = {p: [c.id for c in cs] for p, cs in ruleset.candidates.items()}

        assert expected == actual

    def test_percentages_in_buckets(self) -> None:
        """Traffic and holdout percentages become basis points exactly."""
        document = edited("campaigns[0].traffic_allocation", 12.34)
        document["campaigns"][0]["holdout"] = 0.01
        campaign = compile_ruleset(document).campaigns["c1"]
        expected = (1234, 1)

        actual = (campaign.traffic, campaign.holdout)

        assert expected == actual

    def test_schedule_parsed_to_utc(self) -> None:
        """Schedule instants with an offset or Z become aware UTC datetimes."""
        document = edited(
            "campaigns[0].schedule",
            {"start": "2026-06-01T02:00:00+02:00", "end": "2026-07-01T00:00:00Z"},
        )
        schedule = compile_ruleset(document).campaigns["c1"].schedule
        expected = (
            datetime(2026, 6, 1, tzinfo=UTC),
            datetime(2026, 7, 1, tzinfo=UTC),
        )

        actual = (schedule.start, schedule.end)

        assert expected == actual
        assert schedule.start.tzinfo is UTC

    def test_open_schedule(self) -> None:
        """A null or absent side of a schedule stays open."""
        document = edited("campaigns[0].schedule", {"start": None})
        schedule = compile_ruleset(document).campaigns["c1"].schedule

        assert (None, None) == (schedule.start, schedule.end)

    def test_variants_and_bounds(self) -> None:
        """Variants keep their order; a control without content serves the fallback."""
        campaign = compile_ruleset(BASE).campaigns["c2"]
        expected = (
            [("control", 1, True, True), ("b", 3, False, False)],
            (2500, 10000),
        )

        actual = (
            [(v.id, v.weight, v.control, v.uses_fallback) for v in campaign.variants],
            campaign.variant_bounds,
        )

        assert expected == actual

    def test_control_with_content(self) -> None:
        """A control that declares content serves it."""
        document = edited("campaigns[1].variants[0].content", {"h": "C"})
        variant = compile_ruleset(document).campaigns["c2"].variants[0]

        assert (True, False, {"h": "C"}) == (
            variant.control,
            variant.uses_fallback,
            variant.content,
        )

    def test_group_slots_in_document_order(self) -> None:
        """Grouped campaigns own contiguous slot ranges sized by traffic, in document order."""
        document = edited(
            "campaigns[0]",
            {**BASE["campaigns"][0], "exclusion_group": "tests", "traffic_allocation": 25},
        )
        ruleset = compile_ruleset(document)
        expected = (("c1", "c2"), (0, 2500), (2500, 6500))

        actual = (
            ruleset.exclusion_groups["tests"].campaigns,
            ruleset.campaigns["c1"].group_slots,
            ruleset.campaigns["c2"].group_slots,
        )

        assert expected == actual

    def test_salts_seed_the_draws(self) -> None:
        """Campaign and group salts (default: the ids) seed every bucketing draw."""
        document = edited("exclusion_groups[0].salt", "tests-v2")
        document["campaigns"][1]["salt"] = "c2-v2"
        campaign = compile_ruleset(document).campaigns["c2"]
        expected = ("group:tests-v2:", "c2-v2:traffic:", "c2-v2:holdout:", "c2-v2:variant:")

        actual = (
            campaign.group_prefix,
            campaign.traffic_prefix,
            campaign.holdout_prefix,
            campaign.variant_prefix,
        )

        assert expected == actual

    def test_segment_references_compile(self) -> None:
        """Segments may reuse each other with $segment, in any order."""
        document = with_segments(
            {"id": "a", "filter": {"$or": [{"$segment": "b"}, {"$segment": "c"}]}},
            {"id": "b", "filter": {"$segment": "c"}},
            {"id": "c", "filter": {"visits": 1}},
        )

        ruleset = compile_ruleset(document)

        assert ["a", "b", "c"] == list(ruleset.segment_filters)


class TestProblems:
    @pytest.mark.parametrize(
        ("document", "expected"),
        [case[1:] for case in PROBLEM_CASES],
        ids=[case[0] for case in PROBLEM_CASES],
    )
    def test_reported_with_path(self, document: Any, expected: list[tuple[str, str]]) -> None:
        """Each problem is reported once, at its JSON path, with a telling message."""
        actual = problems_of(document)

        assert [path for path, _ in expected] == [path for path, _ in actual]
        for (_, fragment), (_, message) in zip(expected, actual, strict=True):
            assert fragment in message

    def test_filter_error_gets_the_filter_path(self) -> None:
        """A FilterError is reported under its filter's path."""
        document = edited("segments[1].filter", {"$and": [{"visits": 1}, {"x": {"$lte2": 3}}]})

        [(path, message)] = problems_of(document)

        assert path.startswith("segments[1].filter.$and[1]")
        assert "$lte2" in message

    def test_audience_filter_error_gets_the_filter_path(self) -> None:
        """A broken inline audience filter is reported under the audience's path."""
        document = edited("campaigns[1].audience.filter", {"context.device": {"$equals": "mobile"}})

        [(path, message)] = problems_of(document)

        assert path.startswith("campaigns[1].audience.filter")
        assert "$equals" in message

    def test_many_problems_at_once(self) -> None:
        """Every problem of a document is collected, in document order."""
        document = copy.deepcopy(BASE)
        document["segments"][0]["id"] = "bad id"
        document["segments"][1]["filter"] = {"$segment": "ghost"}
        document["placements"][0]["colour"] = "red"
        document["campaigns"][0]["priority"] = "high"
        document["campaigns"][0]["variants"][0]["weight"] = -1
        document["campaigns"][1]["placements"] = ["hero", "nowhere"]
        document["campaigns"][1]["holdout"] = 120
        expected = [
            "segments[0].id",
            "segments[1].filter",
            "placements[0].colour",
            "campaigns[0].priority",
            "campaigns[0].variants[0].weight",
            "campaigns[1].placements[1]",
            "campaigns[1].holdout",
        ]

        actual = [path for path, _ in problems_of(document)]

        assert expected == actual

    def test_error_message_lists_every_problem(self) -> None:
        """RulesetError's message names each problem with its path."""
        document = edited("campaigns[0].priority", None)
        document["campaigns"][1]["status"] = "on"

        with pytest.raises(RulesetError) as raised:
            compile_ruleset(document)

        assert "campaigns[0].priority: must be an integer" in str(raised.value)
        assert "campaigns[1].status: must be 'active' or 'paused'" in str(raised.value)
        assert "2 problem(s)" in str(raised.value)

    def test_validate_matches_compile(self) -> None:
        """validate_ruleset returns the problems compile_ruleset raises."""
        document = edited("campaigns[0].status", "off")

        with pytest.raises(RulesetError) as raised:
            compile_ruleset(document)

        assert list(raised.value.problems) == validate_ruleset(document)

    def test_not_json(self) -> None:
        """Values JSON cannot represent are reported at their path, not hashed by accident."""
        document = edited("placements[0].fallback", {"at": datetime(2026, 1, 1)})

        [(path, message)] = problems_of(document)

        assert ("placements[0].fallback.at", "is not a JSON value (datetime)") == (path, message)

    def test_problem_in_failed_item_does_not_cascade(self) -> None:
        """A segment with a broken name is still known to the campaigns that use it."""
        document = edited("segments[1].name", 5)

        assert ["segments[1].name"] == [path for path, _ in problems_of(document)]


class TestImmutability:
    def test_input_not_mutated(self) -> None:
        """Compiling leaves the document exactly as it was."""
        document = demo_document()
        expected = copy.deepcopy(document)

        compile_ruleset(document)

        assert expected == document

    def test_later_edits_do_not_leak_in(self) -> None:
        """Mutating the input after compiling changes nothing in the ruleset."""
        document = copy.deepcopy(BASE)
        ruleset = compile_ruleset(document)

        document["campaigns"][0]["variants"][0]["content"]["h"] = "changed"
        document["placements"][0]["fallback"]["headline"] = "changed"

        assert {"h": "A"} == ruleset.campaigns["c1"].variants[0].content
        assert {"headline": "Welcome"} == ruleset.placements["hero"].fallback
        assert BASE == dict(ruleset.document)

    @pytest.mark.parametrize(
        "field",
        [
            "segments",
            "placements",
            "campaigns",
            "exclusion_groups",
            "candidates",
            "document",
            "segment_filters",
        ],
    )
    def test_mappings_are_read_only(self, field: str) -> None:
        """Every mapping of a Ruleset refuses assignment."""
        mapping = getattr(compile_ruleset(BASE), field)

        with pytest.raises(TypeError):
            mapping["new"] = None

    def test_values_are_frozen(self) -> None:
        """Ruleset and campaigns are frozen dataclasses holding tuples."""
        ruleset = compile_ruleset(BASE)
        campaign = ruleset.campaigns["c2"]

        with pytest.raises(dataclasses.FrozenInstanceError):
            ruleset.version = "x"  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            campaign.priority = 99  # type: ignore[misc]
        assert all(
            isinstance(value, tuple)
            for value in (
                campaign.placements,
                campaign.variants,
                campaign.variant_bounds,
                campaign.audience.segments,
                ruleset.candidates["hero"],
            )
        )


class TestVersion:
    def test_is_sha256_prefix_of_compact_json(self) -> None:
        """version = first 16 hex digits of SHA-256 over compact, unsorted JSON."""
        text = json.dumps(BASE, separators=(",", ":"), ensure_ascii=False)
        expected = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

        actual = compile_ruleset(BASE).version

        assert expected == actual

    def test_stable(self) -> None:
        """Equal documents, compiled twice or copied, share a version."""
        expected = compile_ruleset(BASE).version

        actual = compile_ruleset(copy.deepcopy(BASE)).version

        assert expected == actual
        assert re.fullmatch(r"[0-9a-f]{16}", actual)

    def test_pinned(self) -> None:
        """The version of a fixed document never changes between releases."""
        expected = "295e9bd1eaa67dff"

        actual = ruleset_version({"segments": [{"id": "é", "filter": {}}]})

        assert expected == actual

    def test_changes_with_content(self) -> None:
        """Any content change gives a new version."""
        expected = compile_ruleset(BASE).version

        actual = compile_ruleset(edited("campaigns[0].variants[0].content", {"h": "A2"})).version

        assert expected != actual

    def test_key_order_is_content(self) -> None:
        """Reordering keys changes the version: MongoDB equality on objects is ordered."""
        first = {"segments": [{"id": "s", "filter": {"a": {"x": 1, "y": 2}}}]}
        second = {"segments": [{"id": "s", "filter": {"a": {"y": 2, "x": 1}}}]}

        assert compile_ruleset(first).version != compile_ruleset(second).version

    def test_is_a_ruleset(self) -> None:
        """compile_ruleset returns a Ruleset whose document equals its input."""
        ruleset = compile_ruleset(BASE)

        assert isinstance(ruleset, Ruleset)
        assert BASE == dict(ruleset.document)
