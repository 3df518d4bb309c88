"""Fuzzing the rules language (Hypothesis): validation either names every problem with a
path, or the document compiles and deciding over arbitrary profiles never raises."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from decision import (
    ProfileMemo,
    RulesetError,
    compile_ruleset,
    decide,
    validate_ruleset,
    visitor_segments,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

SEGMENT_IDS = ["s0", "s1", "s2", "s3"]
PLACEMENT_IDS = ["hero", "popup"]
FIELDS = [
    "visits",
    "attributes.tier",
    "customer_segment.outbounds_value_total",
    "cart.items",
    "cart.items.0.sku",
    "categories_viewed",
    "last_seen",
    "context.device",
    "a.0.b",
]


def _mostly(good: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` about three times in four, else ``odd``."""
    return st.one_of(good, good, good, odd)


# -- values: ordinary ones, and what breaks naive code ------------------------------------

_odd_strings = st.sampled_from(
    ["", " ", "\x00", "ß", "☃", "2026-11-20", "2026-11-20T10:00:00+02:00", "x" * 300, "$gt", "a.b"]
)
_huge_numbers = st.sampled_from(
    [
        10**400,
        -(10**400),
        2**53 + 1,
        1e308,
        -1e308,
        float("inf"),
        float("-inf"),
        float("nan"),
        5e-324,
    ]
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(-10, 10, allow_nan=False),
    st.sampled_from(["mobile", "gold", "DE", "shoes"]),
    _odd_strings,
    _huge_numbers,
)
_json = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["b", "sku", "x", "0", "$gt"]), children, max_size=3)
    ),
    max_leaves=6,
)

# -- filters ----------------------------------------------------------------------------

_date_operands = st.one_of(
    st.builds(lambda n: {"$daysAgo": n}, st.one_of(st.integers(-2, 400), _huge_numbers)),
    st.builds(lambda n: {"$hoursAgo": n}, st.floats(0, 48, allow_nan=False)),
    st.builds(lambda d: {"$date": d}, st.one_of(_odd_strings, st.integers(-(10**15), 10**15))),
)
_regexes = st.sampled_from(["^a", "(?i)gold", "[", "a{1000}", "(?=x)", "ß+", "\\d+$"])


def _operator_objects(filters: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """One operator object over a field: the real operators with plausible operands, and
    operators with wrong operands."""
    comparison = st.builds(
        lambda op, operand: {op: operand},
        st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]),
        st.one_of(_json, _date_operands),
    )
    return st.one_of(
        comparison,
        st.builds(
            lambda op, v: {op: v},
            st.sampled_from(["$in", "$nin", "$all"]),
            st.lists(st.one_of(_scalars, st.builds(lambda r: {"$regex": r}, _regexes)), max_size=4),
        ),
        st.builds(lambda v: {"$exists": v}, _scalars),
        st.builds(
            lambda r, o: {"$regex": r, "$options": o},
            _regexes,
            st.sampled_from(["", "i", "imsx", "q"]),
        ),
        st.builds(lambda v: {"$size": v}, st.one_of(st.integers(-1, 3), _huge_numbers)),
        st.builds(
            lambda v: {"$type": v},
            st.one_of(
                st.sampled_from(["number", "string", "array", "date", "nope", 2]),
                st.lists(st.sampled_from(["null", "object", 99]), max_size=2),
            ),
        ),
        st.builds(
            lambda v: {"$mod": v},
            st.one_of(st.just([3, 1]), st.just([0, 1]), st.lists(_scalars, max_size=3)),
        ),
        st.builds(lambda inner: {"$not": inner}, comparison),
        st.builds(lambda inner: {"$elemMatch": inner}, st.one_of(filters, comparison)),
        st.builds(
            lambda op, v: {op: v},
            st.sampled_from(["$foo", "$where", "$expr", "$daysAgo"]),
            _scalars,
        ),
    )


def _filters() -> st.SearchStrategy[Any]:
    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        field_clause = st.builds(
            lambda field, condition: {field: condition},
            _mostly(st.sampled_from(FIELDS), st.sampled_from(["", "a..b", "$x", "x" * 200])),
            st.one_of(_json, _operator_objects(children)),
        )
        logical = st.builds(
            lambda op, subs: {op: subs},
            st.sampled_from(["$and", "$or", "$nor"]),
            _mostly(st.lists(children, min_size=1, max_size=3), st.one_of(st.just([]), _json)),
        )
        reference = st.builds(
            lambda ref: {"$segment": ref}, _mostly(st.sampled_from(SEGMENT_IDS), _scalars)
        )
        return st.one_of(
            field_clause,
            logical,
            reference,
            st.builds(lambda a, b: {**a, **b}, field_clause, st.one_of(reference, logical)),
        )

    leaf = st.one_of(st.just({}), st.builds(lambda f: {f: 1}, st.sampled_from(FIELDS)))
    return _mostly(st.recursive(leaf, extend, max_leaves=8), _json)


def _deep(levels: int, base: dict[str, Any]) -> dict[str, Any]:
    spec = base
    for _ in range(levels):
        spec = {"$or": [spec, {"visits": 0}]}
    return spec


FILTERS = st.one_of(
    _filters(),
    _filters(),
    _filters(),
    # Deep nesting around the limits, and reference chains.
    st.builds(_deep, st.integers(55, 70), st.just({"visits": {"$gte": 1}})),
    st.builds(_deep, st.integers(20, 40), st.just({"$segment": "s0"})),
)

# -- documents --------------------------------------------------------------------------


def _without_none(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


_segments = st.lists(
    st.builds(
        lambda i, f, name: _without_none(id=i, filter=f, name=name),
        _mostly(st.sampled_from(SEGMENT_IDS), st.sampled_from(["", "bad id", 3, "x" * 200])),
        FILTERS,
        st.one_of(st.none(), st.text(max_size=4), st.integers()),
    ),
    max_size=4,
)
_placements = st.lists(
    st.builds(
        lambda i, fallback: {"id": i, "fallback": fallback},
        _mostly(st.sampled_from(PLACEMENT_IDS), st.sampled_from(["", "h@ro"])),
        _json,
    ),
    max_size=2,
)
_variants = st.lists(
    st.builds(
        lambda i, weight, control, content: _without_none(
            id=i, weight=weight, control=control, content=content
        ),
        st.sampled_from(["a", "b", "c"]),
        _mostly(st.integers(0, 5), st.one_of(_huge_numbers, st.just(-1), st.just(0.5))),
        st.one_of(st.none(), st.booleans(), st.just("yes")),
        _mostly(_json, st.none()),
    ),
    min_size=1,
    max_size=3,
)
_audiences = st.builds(
    lambda segments, exclude, match, inline: _without_none(
        segments=segments, exclude=exclude, match=match, filter=inline
    ),
    st.one_of(st.none(), st.lists(st.sampled_from([*SEGMENT_IDS, "ghost"]), max_size=2)),
    st.one_of(st.none(), st.lists(st.sampled_from(SEGMENT_IDS), max_size=1)),
    st.one_of(st.none(), st.sampled_from(["any", "all", "some"])),
    st.one_of(st.none(), FILTERS),
)
_campaigns = st.lists(
    st.builds(
        lambda i, placements, priority, audience, traffic, holdout, variants, extra: {
            "id": i,
            "placements": placements,
            "variants": variants,
            **_without_none(
                priority=priority, audience=audience, traffic_allocation=traffic, holdout=holdout
            ),
            **extra,
        },
        st.sampled_from(["c0", "c1", "c2"]),
        _mostly(
            st.lists(st.sampled_from(PLACEMENT_IDS), min_size=1, max_size=2, unique=True),
            st.one_of(st.just([]), st.just(["nowhere"]), _scalars),
        ),
        st.one_of(st.none(), st.integers(-3, 3), _huge_numbers),
        st.one_of(st.none(), _audiences),
        st.one_of(st.none(), st.sampled_from([0, 50, 99.99, 100, 100.5, 12.345]), _huge_numbers),
        st.one_of(st.none(), st.sampled_from([0, 5, 100])),
        _variants,
        st.one_of(
            st.just({}),
            st.just({"status": "paused"}),
            st.just({"schedule": {"start": "2026-11-01T00:00:00Z", "end": None}}),
            st.just({"schedule": {"start": "2027-01-01T00:00:00Z"}}),
            st.just({"exclusion_group": "g"}),
            st.just({"salt": "x"}),
            st.builds(lambda v: {"sneaky": v}, _scalars),
        ),
    ),
    max_size=3,
)
DOCUMENTS = st.builds(
    lambda segments, placements, campaigns, groups, extra: {
        "segments": segments,
        "placements": placements,
        "exclusion_groups": groups,
        "campaigns": campaigns,
        **extra,
    },
    _segments,
    _placements,
    _campaigns,
    st.one_of(st.just([]), st.just([{"id": "g"}])),
    _mostly(st.just({}), st.builds(lambda v: {"extra": v}, _json)),
)

# -- well-formed documents (most of them valid), and the same with one node replaced -------

_exact = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["mobile", "gold", "DE", "shoes"]),
    _odd_strings,
)
_exact_json = st.recursive(
    _exact,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["b", "sku", "x", "0"]), children, max_size=3)
    ),
    max_leaves=6,
)
_valid_regexes = st.sampled_from(["^a", "(?i)gold", "ß+", "\\d+$", "a|b", ""])


def _valid_operators(elements: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    comparison = st.builds(
        lambda op, operand: {op: operand},
        st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]),
        st.one_of(
            _exact_json,
            st.builds(lambda n: {"$daysAgo": n}, st.integers(0, 400)),
            st.builds(lambda n: {"$hoursAgo": n}, st.floats(0, 48, allow_nan=False)),
            st.just({"$date": "2026-11-01T00:00:00Z"}),
        ),
    )
    return st.one_of(
        comparison,
        st.builds(
            lambda op, v: {op: v},
            st.sampled_from(["$in", "$nin"]),
            st.lists(st.one_of(_exact, st.builds(lambda r: {"$regex": r}, _valid_regexes))),
        ),
        st.builds(lambda v: {"$all": v}, st.lists(_exact, max_size=3)),
        st.builds(lambda v: {"$exists": v}, _exact),
        st.builds(
            lambda r, o: {"$regex": r, "$options": o}, _valid_regexes, st.sampled_from(["", "i"])
        ),
        st.builds(lambda v: {"$size": v}, st.integers(0, 3)),
        st.builds(lambda v: {"$type": v}, st.sampled_from(["number", "string", ["null", "array"]])),
        st.builds(lambda d, r: {"$mod": [d, r]}, st.integers(1, 5), st.integers(-2, 2)),
        st.builds(lambda inner: {"$not": inner}, comparison),
        st.builds(lambda inner: {"$elemMatch": inner}, st.one_of(elements, comparison)),
    )


@functools.cache
def _valid_filters(refs: tuple[str, ...], with_refs: bool = True) -> st.SearchStrategy[Any]:
    """Filters that compile: real operators with valid operands, $segment to ``refs``
    (none inside $elemMatch, where MongoDB's grammar has no place for it)."""

    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        elements = _valid_filters((), False) if with_refs else children
        options = [
            st.builds(
                lambda field, condition: {field: condition},
                st.sampled_from(FIELDS),
                st.one_of(_exact_json, _valid_operators(elements)),
            ),
            st.builds(
                lambda op, subs: {op: subs},
                st.sampled_from(["$and", "$or", "$nor"]),
                st.lists(children, min_size=1, max_size=3),
            ),
        ]
        if with_refs and refs:
            options.append(st.builds(lambda r: {"$segment": r}, st.sampled_from(refs)))
        return st.one_of(options)

    leaf = st.one_of(st.just({}), st.builds(lambda f: {f: 1}, st.sampled_from(FIELDS)))
    return st.recursive(leaf, extend, max_leaves=6)


@st.composite
def well_formed_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A document built to be valid: segments referring only to earlier ones, campaigns
    on declared placements and segments, at most one control, a positive weight."""
    segments = []
    for index in range(draw(st.integers(0, 4))):
        earlier = [s["id"] for s in segments]
        segments.append({"id": f"s{index}", "filter": draw(_valid_filters(tuple(earlier)))})
    segment_ids = [s["id"] for s in segments]
    placements = [{"id": p, "fallback": draw(_exact_json)} for p in PLACEMENT_IDS]
    campaigns = []
    for index in range(draw(st.integers(0, 3))):
        weights = draw(st.lists(st.integers(0, 5), min_size=1, max_size=3))
        weights[0] = max(weights[0], 1)
        control = draw(st.integers(-1, len(weights) - 1))
        variants = [
            {"id": f"v{i}", "weight": w, "control": True}
            if i == control
            else {"id": f"v{i}", "weight": w, "content": draw(_exact_json)}
            for i, w in enumerate(weights)
        ]
        audience = {
            "segments": draw(st.lists(st.sampled_from(segment_ids), unique=True))
            if segment_ids
            else [],
            "match": draw(st.sampled_from(["any", "all"])),
            "filter": draw(_valid_filters(tuple(segment_ids))),
        }
        campaign = {
            "id": f"c{index}",
            "placements": draw(st.lists(st.sampled_from(PLACEMENT_IDS), min_size=1, unique=True)),
            "priority": draw(st.integers(-(10**6), 10**6)),
            "audience": audience,
            "traffic_allocation": draw(st.sampled_from([0, 0.01, 33.33, 50])),
            "holdout": draw(st.sampled_from([0, 5, 100])),
            "status": draw(st.sampled_from(["active", "active", "paused"])),
            "variants": variants,
        }
        if draw(st.booleans()):
            campaign["exclusion_group"] = "g"
        campaigns.append(campaign)
    return {
        "segments": segments,
        "placements": placements,
        "exclusion_groups": [{"id": "g"}],
        "campaigns": campaigns,
    }


def _nodes(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every node below the root of a JSON value."""
    children: list[tuple[Any, Any]] = []
    if isinstance(value, dict):
        children = list(value.items())
    elif isinstance(value, list):
        children = list(enumerate(value))
    found = []
    for key, child in children:
        found.append((*path, key))
        found += _nodes(child, (*path, key))
    return found


@st.composite
def mutated_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A well-formed document with one node replaced by an odd value."""
    document = draw(well_formed_documents())
    nodes = _nodes(document)
    if nodes:
        *parents, last = draw(st.sampled_from(nodes))
        target: Any = document
        for key in parents:
            target = target[key]
        target[last] = draw(st.one_of(_json, FILTERS, _huge_numbers, _odd_strings))
    return document


PROFILES = st.dictionaries(
    st.sampled_from(
        ["visits", "attributes", "customer_segment", "cart", "categories_viewed", "last_seen", "a"]
    ),
    st.one_of(
        _json,
        st.datetimes(timezones=st.just(UTC)),
        st.builds(lambda d: (NOW - timedelta(days=d)).isoformat(), st.integers(0, 60)),
    ),
    max_size=6,
)
CONTEXTS = st.dictionaries(st.sampled_from(["device", "country", "page"]), _json, max_size=3)


class TestRulesFuzz:
    @settings(
        max_examples=200,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        document=st.one_of(well_formed_documents(), mutated_documents(), DOCUMENTS),
        profile=PROFILES,
        context=CONTEXTS,
        visitor=st.sampled_from(["v", "visitor-7", "ß☃", "x" * 256]),
        explain=st.booleans(),
    )
    def test_refused_with_paths_or_evaluates_without_raising(
        self, document, profile, context, visitor, explain
    ):
        """Every problem of a refused document has a path; a valid document compiles,
        and decide (with and without explain and a memo) and visitor_segments never
        raise over arbitrary profiles and contexts."""
        problems = validate_ruleset(document)
        event("refused" if problems else "valid")

        if problems:
            assert [] == [p for p in problems if not p.path]
            try:
                compile_ruleset(document)
            except RulesetError as error:
                assert problems == list(error.problems)
            else:
                raise AssertionError("validate_ruleset refused what compile_ruleset took")
            return
        ruleset = compile_ruleset(document)
        event(f"{len(ruleset.segments)} segments, {len(ruleset.campaigns)} campaigns")
        placements = [*ruleset.placements, "unknown"]
        memo = ProfileMemo()
        decisions = decide(ruleset, visitor, profile, placements, context, NOW, explain=explain)
        again = decide(ruleset, visitor, profile, placements, context, NOW, profile_memo=memo)
        segments = visitor_segments(ruleset, profile, context, NOW)

        assert placements == [d.placement for d in decisions]
        assert [(d.reason, d.variant_id) for d in decisions] == [
            (d.reason, d.variant_id) for d in again
        ]
        assert set(segments) <= set(ruleset.segments)
