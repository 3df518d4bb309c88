"""Issue 12, finding 3: every number, string and list of a rules document has a bound;
the bound itself is accepted and one past it is refused with the path of the value."""

from __future__ import annotations

import copy
import json
import re
from importlib import resources
from typing import Any

import pytest

from decision import validate_ruleset
from decision.filters import MAX_ARRAY_OPERAND, MAX_REGEX_LENGTH
from decision.model import MAX_EXACT_INTEGER
from decision.rules import (
    MAX_CAMPAIGNS,
    MAX_CONTENT_BYTES,
    MAX_CONTENT_DEPTH,
    MAX_DESCRIPTION_LENGTH,
    MAX_DOCUMENT_DEPTH,
    MAX_EXCLUSION_GROUPS,
    MAX_ID_LENGTH,
    MAX_NAME_LENGTH,
    MAX_PLACEMENTS,
    MAX_PRIORITY,
    MAX_SEGMENTS,
    MAX_VARIANTS,
    MAX_WEIGHT,
)

BASE: dict[str, Any] = {
    "segments": [{"id": "s", "name": "S", "description": "", "filter": {"a": 1}}],
    "placements": [{"id": "p", "fallback": None}, {"id": "spare"}],
    "exclusion_groups": [{"id": "g", "salt": "g"}],
    "campaigns": [
        {
            "id": "c",
            "placements": ["p"],
            "priority": 0,
            "salt": "c",
            "variants": [{"id": "v", "weight": 1, "content": {}}],
        }
    ],
}

_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def edited(path: str, value: Any) -> dict[str, Any]:
    """A copy of BASE with the value at ``path`` (``campaigns[0].priority``) replaced."""
    document = copy.deepcopy(BASE)
    steps: list[Any] = [name or int(index) for name, index in _TOKEN.findall(path)]
    target: Any = document
    for step in steps[:-1]:
        target = target[step]
    target[steps[-1]] = value
    return document


def nested(levels: int) -> list[Any]:
    """A list nesting ``levels`` levels deep: ``[[...[]...]]``."""
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


def sized(size: int) -> dict[str, str]:
    """An object of exactly ``size`` bytes as compact JSON."""
    return {"t": "x" * (size - len('{"t":""}'))}


# (id, path, value at the bound, value past it, path of the problem, its message)
CASES: list[tuple[str, str, Any, Any, str, str]] = [
    *[
        (
            f"{kind}-id",
            path,
            "i" * MAX_ID_LENGTH,
            "i" * (MAX_ID_LENGTH + 1),
            path,
            f"must be at most {MAX_ID_LENGTH} characters, not {MAX_ID_LENGTH + 1}",
        )
        for kind, path in [
            ("segment", "segments[0].id"),
            ("placement", "placements[1].id"),
            ("group", "exclusion_groups[0].id"),
            ("campaign", "campaigns[0].id"),
            ("variant", "campaigns[0].variants[0].id"),
        ]
    ],
    *[
        (
            f"{kind}-length",
            path,
            "n" * MAX_NAME_LENGTH,
            "n" * (MAX_NAME_LENGTH + 1),
            path,
            f"must be at most {MAX_NAME_LENGTH} characters, not {MAX_NAME_LENGTH + 1}",
        )
        for kind, path in [
            ("name", "segments[0].name"),
            ("campaign-salt", "campaigns[0].salt"),
            ("group-salt", "exclusion_groups[0].salt"),
            ("schema", "$schema"),
        ]
    ],
    (
        "description",
        "segments[0].description",
        "d" * MAX_DESCRIPTION_LENGTH,
        "d" * (MAX_DESCRIPTION_LENGTH + 1),
        "segments[0].description",
        f"must be at most {MAX_DESCRIPTION_LENGTH} characters, not {MAX_DESCRIPTION_LENGTH + 1}",
    ),
    (
        "priority-2-70",
        "campaigns[0].priority",
        MAX_PRIORITY,
        2**70,
        "campaigns[0].priority",
        f"must be from {-MAX_PRIORITY} to {MAX_PRIORITY}, not {2**70}",
    ),
    (
        "priority-negative",
        "campaigns[0].priority",
        -MAX_PRIORITY,
        -MAX_PRIORITY - 1,
        "campaigns[0].priority",
        f"must be from {-MAX_PRIORITY} to {MAX_PRIORITY}, not {-MAX_PRIORITY - 1}",
    ),
    (
        "weight-10-30",
        "campaigns[0].variants[0].weight",
        MAX_WEIGHT,
        10**30,
        "campaigns[0].variants[0].weight",
        f"must be at most {MAX_WEIGHT}, not {10**30}",
    ),
    (
        "content-bytes",
        "campaigns[0].variants[0].content",
        sized(MAX_CONTENT_BYTES),
        sized(MAX_CONTENT_BYTES + 1),
        "campaigns[0].variants[0].content",
        f"is {MAX_CONTENT_BYTES + 1} bytes as JSON; at most {MAX_CONTENT_BYTES}",
    ),
    (
        "fallback-bytes",
        "placements[0].fallback",
        sized(MAX_CONTENT_BYTES),
        sized(MAX_CONTENT_BYTES + 1),
        "placements[0].fallback",
        f"is {MAX_CONTENT_BYTES + 1} bytes as JSON; at most {MAX_CONTENT_BYTES}",
    ),
    (
        "content-depth",
        "campaigns[0].variants[0].content",
        nested(MAX_CONTENT_DEPTH),
        nested(MAX_CONTENT_DEPTH + 1),
        "campaigns[0].variants[0].content" + "[0]" * MAX_CONTENT_DEPTH,
        f"nests deeper than {MAX_CONTENT_DEPTH} levels",
    ),
    (
        "content-integer",
        "campaigns[0].variants[0].content",
        {"n": MAX_EXACT_INTEGER},
        {"n": MAX_EXACT_INTEGER + 1},
        "campaigns[0].variants[0].content.n",
        f"must be an integer from {-MAX_EXACT_INTEGER} to {MAX_EXACT_INTEGER}",
    ),
    (
        "content-nan",
        "placements[0].fallback",
        {"x": 1e308},
        {"x": [float("nan")]},
        "placements[0].fallback.x[0]",
        "must be a finite number",
    ),
    (
        "filter-integer",
        "segments[0].filter",
        {"a": -MAX_EXACT_INTEGER},
        {"a": {"$gt": -(2**60)}},
        "segments[0].filter.a.$gt",
        f"must be an integer from {-MAX_EXACT_INTEGER} to {MAX_EXACT_INTEGER}",
    ),
    (
        "filter-infinity",
        "segments[0].filter",
        {"a": {"$in": [1.5]}},
        {"a": {"$in": [float("inf")]}},
        "segments[0].filter.a.$in[0]",
        "must be a finite number",
    ),
    (
        "in-values",
        "segments[0].filter",
        {"a": {"$in": list(range(MAX_ARRAY_OPERAND))}},
        {"a": {"$in": list(range(MAX_ARRAY_OPERAND + 1))}},
        "segments[0].filter.a.$in",
        f"$in has {MAX_ARRAY_OPERAND + 1} values; at most {MAX_ARRAY_OPERAND}",
    ),
    (
        "nin-values",
        "segments[0].filter",
        {"a": {"$nin": ["x"] * MAX_ARRAY_OPERAND}},
        {"a": {"$nin": ["x"] * (MAX_ARRAY_OPERAND + 1)}},
        "segments[0].filter.a.$nin",
        f"$nin has {MAX_ARRAY_OPERAND + 1} values; at most {MAX_ARRAY_OPERAND}",
    ),
    (
        "all-values",
        "segments[0].filter",
        {"a": {"$all": [1] * MAX_ARRAY_OPERAND}},
        {"a": {"$all": [1] * (MAX_ARRAY_OPERAND + 1)}},
        "segments[0].filter.a.$all",
        f"$all has {MAX_ARRAY_OPERAND + 1} values; at most {MAX_ARRAY_OPERAND}",
    ),
    (
        "regex-length",
        "segments[0].filter",
        {"a": {"$regex": "x" * MAX_REGEX_LENGTH}},
        {"a": {"$regex": "x" * (MAX_REGEX_LENGTH + 1)}},
        "segments[0].filter.a.$regex",
        f"$regex is {MAX_REGEX_LENGTH + 1} characters long; at most {MAX_REGEX_LENGTH}",
    ),
    (
        "variants",
        "campaigns[0].variants",
        [{"id": f"v{i}", "content": None} for i in range(MAX_VARIANTS)],
        [{"id": f"v{i}", "content": None} for i in range(MAX_VARIANTS + 1)],
        "campaigns[0].variants",
        f"has {MAX_VARIANTS + 1} variants; at most {MAX_VARIANTS}",
    ),
    *[
        (
            key,
            key,
            [{"id": f"x{i}", **extra} for i in range(bound)],
            [{"id": f"x{i}", **extra} for i in range(bound + 1)],
            key,
            f"has {bound + 1} items; at most {bound}",
        )
        for key, bound, extra in [
            ("segments", MAX_SEGMENTS, {"filter": {}}),
            ("exclusion_groups", MAX_EXCLUSION_GROUPS, {}),
        ]
    ],
]


class TestBounds:
    @pytest.mark.parametrize(
        ("path", "value"), [case[1:3] for case in CASES], ids=[case[0] for case in CASES]
    )
    def test_the_bound_is_accepted(self, path: str, value: Any):
        """A value at its bound is valid."""
        assert [] == validate_ruleset(edited(path, value))

    @pytest.mark.parametrize(
        ("path", "value", "expected"),
        [(case[1], case[3], case[4:]) for case in CASES],
        ids=[case[0] for case in CASES],
    )
    def test_past_the_bound_is_refused_with_its_path(self, path, value, expected):
        """One past a bound is one problem, at the path of the value, naming the bound."""
        actual = [(p.path, p.message) for p in validate_ruleset(edited(path, value))]

        assert [expected] == actual

    @pytest.mark.parametrize(
        ("key", "bound"),
        [("placements", MAX_PLACEMENTS), ("campaigns", MAX_CAMPAIGNS)],
    )
    def test_placements_and_campaigns(self, key: str, bound: int):
        """A document with one placement or campaign too many is refused at the list."""
        document = {
            "placements": [{"id": f"p{i}"} for i in range(bound + (key == "placements"))],
            "campaigns": [
                {"id": f"c{i}", "placements": ["p0"], "variants": [{"id": "v", "content": 1}]}
                for i in range(bound + (key == "campaigns"))
            ],
        }

        assert [(key, f"has {bound + 1} items; at most {bound}")] == [
            (p.path, p.message) for p in validate_ruleset(document)
        ]


class TestPlainJson:
    def test_a_document_deeper_than_any_serializer_goes_is_refused(self):
        """A fallback nested 100,000 deep (RecursionError in json.dumps before) is one
        problem, at the level that goes over MAX_DOCUMENT_DEPTH."""
        document = edited("placements[0].fallback", nested(100_000))
        depth_of_fallback = 3  # the document, "placements", placements[0]

        [problem] = validate_ruleset(document)

        assert (
            "placements[0].fallback" + "[0]" * (MAX_DOCUMENT_DEPTH - depth_of_fallback),
            f"nests deeper than {MAX_DOCUMENT_DEPTH} levels",
        ) == (problem.path, problem.message)

    def test_keys_must_be_strings(self):
        """A non-string key (possible from Python, never from JSON) is named with its
        object's path."""
        document = edited("campaigns[0].variants[0].content", {1: "one"})

        assert [("campaigns[0].variants[0].content", "keys must be strings, not 1")] == [
            (p.path, p.message) for p in validate_ruleset(document)
        ]

    def test_unpaired_surrogate(self):
        """A string that is not valid Unicode cannot be stored as UTF-8: named at its path."""
        document = edited("segments[0].name", "bad\ud800")

        assert [("segments[0].name", "is not valid Unicode (an unpaired surrogate)")] == [
            (p.path, p.message) for p in validate_ruleset(document)
        ]

    def test_messages_echo_at_most_80_characters_of_a_value(self):
        """A megabyte of bad status is refused without a megabyte of message."""
        document = edited("campaigns[0].priority", "x" * 1_000_000)

        [problem] = validate_ruleset(document)

        assert ("campaigns[0].priority", 80) == (
            problem.path,
            len(problem.message.removeprefix("must be an integer, not ")),
        )


class TestEditorSchema:
    def test_schema_states_the_same_bounds(self):
        """rules.schema.json tells editors the bounds the compiler enforces."""
        schema = json.loads(resources.files("decision").joinpath("rules.schema.json").read_text())
        defs = schema["$defs"]
        campaign = defs["campaign"]["properties"]
        expected = {
            "id": MAX_ID_LENGTH,
            "names": {MAX_NAME_LENGTH},
            "description": MAX_DESCRIPTION_LENGTH,
            "salts": {MAX_NAME_LENGTH},
            "$schema": MAX_NAME_LENGTH,
            "lists": [MAX_SEGMENTS, MAX_PLACEMENTS, MAX_EXCLUSION_GROUPS, MAX_CAMPAIGNS],
            "variants": MAX_VARIANTS,
            "priority": (-MAX_PRIORITY, MAX_PRIORITY),
            "weight": MAX_WEIGHT,
        }

        actual = {
            "id": defs["id"]["maxLength"],
            "names": {
                defs[kind]["properties"]["name"]["maxLength"]
                for kind in ("segment", "placement", "exclusion_group", "campaign")
            },
            "description": defs["segment"]["properties"]["description"]["maxLength"],
            "salts": {
                defs["exclusion_group"]["properties"]["salt"]["maxLength"],
                campaign["salt"]["maxLength"],
            },
            "$schema": schema["properties"]["$schema"]["maxLength"],
            "lists": [
                schema["properties"][key]["maxItems"]
                for key in ("segments", "placements", "exclusion_groups", "campaigns")
            ],
            "variants": campaign["variants"]["maxItems"],
            "priority": (campaign["priority"]["minimum"], campaign["priority"]["maximum"]),
            "weight": defs["variant"]["properties"]["weight"]["maximum"],
        }

        assert expected == actual


class TestFoundByFuzzing:
    def test_huge_integer_percentage_is_a_problem(self):
        """traffic_allocation 10**400 (math.isfinite raised OverflowError on it) is refused
        with its path."""
        document = edited("campaigns[0].variants[0].weight", 1)
        document["campaigns"][0]["traffic_allocation"] = 10**400

        [problem] = validate_ruleset(document)

        assert ("campaigns[0].traffic_allocation", True) == (
            problem.path,
            problem.message.startswith("must be from 0 to 100, not 1000"),
        )
