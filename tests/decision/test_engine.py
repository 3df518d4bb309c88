"""Deciding: resolution cases, request validation, determinism and lazy segments."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decision import (
    Decision,
    EvalContext,
    InvalidRequestError,
    Outcome,
    Predicate,
    ProfileMemo,
    Reason,
    Ruleset,
    compile_ruleset,
    decide,
    demo_document,
    visitor_segments,
)

CASES = json.loads((Path(__file__).parent / "cases" / "resolution.json").read_text("utf-8"))
NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)

SMALL: dict[str, Any] = {
    "segments": [
        {"id": "vip", "filter": {"ltv": {"$gte": 1000}}},
        {"id": "new", "filter": {"visits": 1}},
    ],
    "placements": [{"id": "hero", "fallback": {"headline": "Default"}}, {"id": "popup"}],
    "campaigns": [
        {
            "id": "vip_hero",
            "placements": ["hero"],
            "priority": 10,
            "audience": {"segments": ["vip"]},
            "variants": [
                {"id": "a", "content": {"headline": "A"}},
                {"id": "b", "content": {"headline": "B"}},
            ],
        },
        {
            "id": "all_hero",
            "placements": ["hero", "popup"],
            "variants": [{"id": "x", "content": 1}],
        },
    ],
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Feeds each case of cases/resolution.json to the ``resolution_case`` fixture."""
    if "resolution_case" in metafunc.fixturenames:
        cases = CASES["cases"]
        metafunc.parametrize("resolution_case", cases, ids=[c["name"] for c in cases])


@cache
def case_ruleset(name: str) -> Ruleset:
    return compile_ruleset(CASES["rulesets"][name])


DEMO = compile_ruleset(demo_document())


@cache
def small() -> Ruleset:
    return compile_ruleset(SMALL)


def observed(decision: Decision, expected: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``decision`` that ``expected`` (a case's decision) pins."""
    actual: dict[str, Any] = {
        "placement": decision.placement,
        "reason": decision.reason.value,
        "campaign_id": decision.campaign_id,
        "variant_id": decision.variant_id,
    }
    for key in ("content", "control"):
        if key in expected:
            actual[key] = getattr(decision, key)
    if "matched_segments" in expected:
        actual["matched_segments"] = list(decision.matched_segments)
    if "trace" in expected:
        assert decision.trace is not None
        actual["trace"] = []
        for entry, wanted in zip(decision.trace, expected["trace"] + [{}] * len(decision.trace)):
            item = {"campaign_id": entry.campaign_id, "outcome": entry.outcome.value}
            for key in ("detail", "bucket"):
                if key in wanted:
                    item[key] = getattr(entry, key)
            actual["trace"].append(item)
    return actual


class TestResolutionCases:
    def test_case(self, resolution_case: dict[str, Any]) -> None:
        """The language-neutral case resolves as pinned in cases/resolution.json."""
        expected = resolution_case["expected"]

        decisions = decide(
            case_ruleset(resolution_case["ruleset"]),
            resolution_case["visitor_id"],
            resolution_case["profile"],
            resolution_case["placements"],
            resolution_case["context"],
            datetime.fromisoformat(resolution_case["now"]),
            explain=resolution_case.get("explain", False),
        )
        actual = [observed(d, e) for d, e in zip(decisions, expected, strict=True)]

        assert expected == actual

    def test_every_outcome_is_covered(self) -> None:
        """The case file exercises every Outcome and every Reason."""
        seen_outcomes = {
            entry["outcome"]
            for case in CASES["cases"]
            for decision in case["expected"]
            for entry in decision.get("trace", [])
        }
        seen_reasons = {d["reason"] for case in CASES["cases"] for d in case["expected"]}

        assert {o.value for o in Outcome} == seen_outcomes
        assert {r.value for r in Reason} == seen_reasons


class TestDecisions:
    def test_one_decision_per_placement_in_request_order(self) -> None:
        """Decisions come back in request order, unknown placements included."""
        expected = ["popup", "nowhere", "hero"]

        decisions = decide(small(), "v1", {}, ["popup", "nowhere", "hero"], {}, NOW)

        assert expected == [d.placement for d in decisions]

    def test_decision_fields(self) -> None:
        """A campaign decision carries the version, campaign, variant and content."""
        ruleset = small()
        [decision] = decide(ruleset, "v1", {}, ["popup"], {}, NOW)
        expected = Decision(
            placement="popup",
            reason=Reason.CAMPAIGN,
            content=1,
            ruleset_version=ruleset.version,
            campaign_id="all_hero",
            variant_id="x",
        )

        assert expected == decision

    def test_no_trace_unless_explaining(self) -> None:
        """Without explain, no decision carries a trace (not even an empty one)."""
        decisions = decide(small(), "v1", {"ltv": 5000}, ["hero", "popup", "nowhere"], {}, NOW)

        assert [None, None, None] == [d.trace for d in decisions]

    def test_unknown_placement(self) -> None:
        """An unknown placement is data, not an error: no content, an empty trace."""
        [decision] = decide(small(), "v1", {}, ["footer"], {}, NOW, explain=True)

        assert (Reason.UNKNOWN_PLACEMENT, None, ()) == (
            decision.reason,
            decision.content,
            decision.trace,
        )

    def test_now_in_another_zone(self) -> None:
        """An aware now in any zone decides like the same instant in UTC."""
        berlin = NOW.astimezone(timezone(timedelta(hours=2)))
        expected = decide(small(), "v1", {"ltv": 5000}, ["hero"], {}, NOW)

        actual = decide(small(), "v1", {"ltv": 5000}, ["hero"], {}, berlin)

        assert expected == actual

    def test_profile_and_context_not_mutated(self) -> None:
        """Deciding neither changes the profile nor the context."""
        profile = {"ltv": 5000, "context": {"device": "tv"}, "tags": ["a"]}
        context = {"device": "mobile"}
        expected = (copy.deepcopy(profile), copy.deepcopy(context))

        decide(small(), "v1", profile, ["hero"], context, NOW, explain=True)

        assert expected == (profile, context)


class TestRequestValidation:
    @pytest.mark.parametrize(
        ("arguments", "paths"),
        [
            ({"visitor_id": ""}, ["visitor_id"]),
            ({"visitor_id": 42}, ["visitor_id"]),
            ({"visitor_id": None}, ["visitor_id"]),
            ({"placements": []}, ["placements"]),
            ({"placements": "hero"}, ["placements"]),
            ({"placements": ["hero", ""]}, ["placements[1]"]),
            ({"placements": ["hero", 3]}, ["placements[1]"]),
            ({"placements": ["hero", "popup", "hero"]}, ["placements[2]"]),
            ({"profile": None}, ["profile"]),
            ({"profile": [("ltv", 1)]}, ["profile"]),
            ({"context": "mobile"}, ["context"]),
            ({"now": datetime(2026, 7, 1)}, ["now"]),
            ({"now": "2026-07-01T00:00:00Z"}, ["now"]),
            ({"now": NOW.date()}, ["now"]),
        ],
        ids=repr,
    )
    def test_invalid_argument(self, arguments: dict[str, Any], paths: list[str]) -> None:
        """Each unusable argument is reported with its path."""
        call = {
            "visitor_id": "v1",
            "profile": {},
            "placements": ["hero"],
            "context": {},
            "now": NOW,
        }
        call.update(arguments)

        with pytest.raises(InvalidRequestError) as raised:
            decide(small(), **call)

        assert paths == [p.path for p in raised.value.problems]

    def test_every_problem_at_once(self) -> None:
        """All unusable arguments are reported together."""
        expected = ["profile", "context", "now", "visitor_id", "placements[0]"]

        with pytest.raises(InvalidRequestError) as raised:
            decide(small(), "", None, [""], [], datetime(2026, 1, 1))  # type: ignore[arg-type]

        assert expected == [p.path for p in raised.value.problems]

    def test_visitor_segments_validates(self) -> None:
        """visitor_segments rejects the same profile, context and now problems."""
        with pytest.raises(InvalidRequestError) as raised:
            visitor_segments(small(), {}, None, NOW)  # type: ignore[arg-type]

        assert ["context"] == [p.path for p in raised.value.problems]


class TestDeterminism:
    @settings(max_examples=200, deadline=None)
    @given(st.text(min_size=1, max_size=30), st.integers(0, 3000))
    def test_same_inputs_same_decisions(self, visitor_id: str, ltv: int) -> None:
        """Deciding twice, or with a recompiled ruleset, gives equal decisions."""
        ruleset = DEMO
        args = (
            visitor_id,
            {"customer_segment": {"outbounds_value_total": ltv}, "visits": 2},
            ["home_hero", "popup"],
            {"device": "mobile"},
            NOW,
        )

        first = decide(ruleset, *args, explain=True)
        again = decide(ruleset, *args, explain=True)
        recompiled = decide(compile_ruleset(demo_document()), *args, explain=True)

        assert first == again == recompiled

    def test_explain_does_not_change_the_decision(self) -> None:
        """With and without explain the decisions match, apart from the trace."""
        ruleset = DEMO
        placements = ["home_hero", "product_recommendations", "popup", "email_block"]
        for i in range(300):
            profile = {
                "visits": i % 4,
                "customer_segment": {
                    "outbounds_number_total": i % 3,
                    "outbounds_value_total": i * 10,
                },
            }
            plain = decide(ruleset, f"v{i}", profile, placements, {}, NOW)
            explained = decide(ruleset, f"v{i}", profile, placements, {}, NOW, explain=True)

            assert plain == [dataclasses.replace(d, trace=None) for d in explained]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
profile_keys = st.sampled_from(
    ["visits", "attributes", "categories_viewed", "cart", "customer_segment", "context", "x"]
)


class TestRobustness:
    @settings(max_examples=300, deadline=None)
    @given(st.dictionaries(profile_keys, json_values, max_size=6), json_values)
    def test_any_json_profile_decides(self, profile: dict[str, Any], device: Any) -> None:
        """Arbitrary JSON in the profile and context never makes deciding raise."""
        placements = ["home_hero", "product_recommendations", "popup", "email_block", "nope"]

        decisions = decide(DEMO, "visitor", profile, placements, {"device": device}, NOW, True)

        assert placements == [d.placement for d in decisions]


class TestBucketedResolution:
    GROUPED: ClassVar[dict[str, Any]] = {
        "placements": [{"id": "p1"}, {"id": "p2"}],
        "exclusion_groups": [{"id": "g"}],
        "campaigns": [
            {
                "id": "c1",
                "placements": ["p1"],
                "exclusion_group": "g",
                "traffic_allocation": 50,
                "variants": [{"id": "v", "content": 1}],
            },
            {
                "id": "c2",
                "placements": ["p2"],
                "exclusion_group": "g",
                "traffic_allocation": 40,
                "variants": [{"id": "v", "content": 2}],
            },
        ],
    }

    def test_exclusion_group_across_placements(self) -> None:
        """Campaigns of one group never share a visitor, even on different placements,
        and each gets about its traffic allocation."""
        ruleset = compile_ruleset(self.GROUPED)
        shown = Counter()
        for i in range(5000):
            decisions = decide(ruleset, f"v{i}", {}, ["p1", "p2"], {}, NOW)
            winners = tuple(d.campaign_id for d in decisions if d.reason is Reason.CAMPAIGN)
            assert len(winners) <= 1
            shown[winners] += 1

        assert 2350 < shown[("c1",)] < 2650
        assert 1850 < shown[("c2",)] < 2150

    def test_pausing_a_group_member_moves_nobody(self) -> None:
        """A paused campaign keeps its slots: the others keep exactly their visitors."""
        paused = copy.deepcopy(self.GROUPED)
        paused["campaigns"][0]["status"] = "paused"
        before, after = compile_ruleset(self.GROUPED), compile_ruleset(paused)
        visitors = [f"v{i}" for i in range(2000)]

        def c2_visitors(ruleset: Ruleset) -> set[str]:
            return {v for v in visitors if decide(ruleset, v, {}, ["p2"], {}, NOW)[0].campaign_id}

        assert c2_visitors(before) == c2_visitors(after)

    def test_raising_traffic_only_adds_visitors_and_keeps_variants(self) -> None:
        """From 30 % to 60 % traffic nobody leaves, and nobody changes variant."""

        def ruleset(traffic: float) -> Ruleset:
            return compile_ruleset(
                {
                    "placements": [{"id": "p"}],
                    "campaigns": [
                        {
                            "id": "c",
                            "placements": ["p"],
                            "traffic_allocation": traffic,
                            "variants": [{"id": "a", "content": 1}, {"id": "b", "content": 2}],
                        }
                    ],
                }
            )

        def assignments(traffic: float) -> dict[str, str | None]:
            rules = ruleset(traffic)
            return {
                f"v{i}": decide(rules, f"v{i}", {}, ["p"], {}, NOW)[0].variant_id
                for i in range(2000)
            }

        low, high = assignments(30), assignments(60)
        in_low = {v for v, variant in low.items() if variant}
        in_high = {v for v, variant in high.items() if variant}

        assert in_low < in_high
        assert all(low[v] == high[v] for v in in_low)

    def test_holdout_share(self) -> None:
        """About holdout % of the campaign's visitors are held out."""
        rules = compile_ruleset(
            {
                "placements": [{"id": "p", "fallback": "f"}],
                "campaigns": [
                    {
                        "id": "c",
                        "placements": ["p"],
                        "holdout": 20,
                        "variants": [{"id": "a", "content": 1}],
                    }
                ],
            }
        )
        reasons = Counter(decide(rules, f"v{i}", {}, ["p"], {}, NOW)[0].reason for i in range(5000))

        assert 900 < reasons[Reason.HOLDOUT] < 1100
        assert 5000 == reasons[Reason.HOLDOUT] + reasons[Reason.CAMPAIGN]


class _CountingPredicates(dict[str, Predicate]):
    """Wraps each segment predicate so every evaluation is counted."""

    def __init__(self, predicates: dict[str, Predicate]) -> None:
        self.calls: Counter[str] = Counter()
        super().__init__({k: self._spy(k, p) for k, p in predicates.items()})

    def _spy(self, segment_id: str, predicate: Predicate) -> Predicate:
        def match(doc: Any, ctx: EvalContext) -> bool:
            self.calls[segment_id] += 1
            return predicate.evaluate(ctx)

        return Predicate(predicate.spec, match, predicate.references, predicate.uses_now)


class TestLazySegments:
    DOCUMENT: ClassVar[dict[str, Any]] = {
        "segments": [{"id": f"s{i}", "filter": {"n": {"$gte": i}}} for i in range(1, 7)]
        + [{"id": "s7", "filter": {"$or": [{"$segment": "s1"}, {"$segment": "s6"}]}}],
        "placements": [{"id": "p1"}, {"id": "p2"}, {"id": "p3"}],
        "campaigns": [
            # p1: s5 misses (n = 2), then s1 matches and s6 does not exclude; s3 is
            # evaluated once, for the winner's matched segments; c loses, so s4 is not.
            {
                "id": "a",
                "placements": ["p1"],
                "priority": 9,
                "audience": {"segments": ["s5"]},
                "variants": [{"id": "v", "content": 1}],
            },
            {
                "id": "b",
                "placements": ["p1"],
                "priority": 8,
                "audience": {"segments": ["s1", "s3"], "match": "any", "exclude": ["s6"]},
                "variants": [{"id": "v", "content": 1}],
            },
            {
                "id": "c",
                "placements": ["p1", "p2"],
                "priority": 1,
                "audience": {"segments": ["s4"]},
                "variants": [{"id": "v", "content": 1}],
            },
            # p2: s5 again (memoized) fails "all", so s2 is not needed; then s7 -> s1
            # (memoized) matches.
            {
                "id": "d",
                "placements": ["p2"],
                "priority": 9,
                "audience": {"segments": ["s5", "s2"], "match": "all"},
                "variants": [{"id": "v", "content": 1}],
            },
            {
                "id": "e",
                "placements": ["p2"],
                "priority": 5,
                "audience": {"segments": ["s7"]},
                "variants": [{"id": "v", "content": 1}],
            },
            # p3: paused, so its segment is never evaluated.
            {
                "id": "f",
                "placements": ["p3"],
                "status": "paused",
                "audience": {"segments": ["s3"]},
                "variants": [{"id": "v", "content": 1}],
            },
        ],
    }

    @pytest.mark.parametrize("explain", [False, True])
    def test_only_needed_segments_once_each(self, explain: bool) -> None:
        """Only segments a candidate needs are evaluated, each at most once per call,
        shared across placements; explaining evaluates nothing more."""
        ruleset = compile_ruleset(self.DOCUMENT)
        spies = _CountingPredicates(dict(ruleset.segment_filters))
        spied = dataclasses.replace(ruleset, segment_filters=MappingProxyType(spies))
        expected = {"s5": 1, "s1": 1, "s6": 1, "s3": 1, "s7": 1}

        decisions = decide(spied, "v1", {"n": 2}, ["p1", "p2", "p3"], {}, NOW, explain=explain)

        assert ["b", "e", None] == [d.campaign_id for d in decisions]
        assert expected == dict(spies.calls)

    def test_matched_segments_of_an_any_audience(self) -> None:
        """The winner's matched segments are complete: remaining include segments are
        evaluated for the winner only."""
        ruleset = compile_ruleset(self.DOCUMENT)
        spies = _CountingPredicates(dict(ruleset.segment_filters))
        spied = dataclasses.replace(ruleset, segment_filters=MappingProxyType(spies))

        [decision] = decide(spied, "v1", {"n": 3}, ["p1"], {}, NOW)

        assert ("s1", "s3") == decision.matched_segments
        assert 1 == spies.calls["s3"]

    def test_new_memo_per_call(self) -> None:
        """Segment results are not cached across calls."""
        ruleset = compile_ruleset(self.DOCUMENT)
        spies = _CountingPredicates(dict(ruleset.segment_filters))
        spied = dataclasses.replace(ruleset, segment_filters=MappingProxyType(spies))

        decide(spied, "v1", {"n": 2}, ["p1"], {}, NOW)
        decide(spied, "v1", {"n": 2}, ["p1"], {}, NOW)

        assert 2 == spies.calls["s5"]


class TestProfileMemo:
    DOCUMENT: ClassVar[dict[str, Any]] = {
        "segments": [
            {"id": "big", "filter": {"n": {"$gte": 3}}},
            {"id": "mobile", "filter": {"context.device": "mobile"}},
            {"id": "recent", "filter": {"seen": {"$gte": {"$daysAgo": 7}}}},
            {
                "id": "big_or_mobile",
                "filter": {"$or": [{"$segment": "big"}, {"$segment": "mobile"}]},
            },
            {"id": "big_and_tagged", "filter": {"$segment": "big", "tags": "x"}},
            {"id": "of_of_recent", "filter": {"$segment": "of_recent"}},
            {"id": "of_recent", "filter": {"$nor": [{"$segment": "recent"}]}},
            {"id": "items", "filter": {"items": {"$elemMatch": {"context": 1, "q": {"$gt": 0}}}}},
            {"id": "everyone", "filter": {}},
        ],
        "placements": [{"id": "p1"}, {"id": "p2"}, {"id": "p3"}],
        "campaigns": [
            {
                "id": f"c{i}",
                "placements": [f"p{i % 3 + 1}"],
                "priority": i,
                "audience": {"segments": segments, "match": match},
                "variants": [{"id": "a", "content": i}, {"id": "b", "content": -i}],
            }
            for i, (segments, match) in enumerate(
                [
                    (["big"], "any"),
                    (["mobile", "items"], "any"),
                    (["recent", "big_and_tagged"], "all"),
                    (["big_or_mobile"], "any"),
                    (["of_of_recent", "items"], "any"),
                    (["everyone"], "any"),
                    (["big", "everyone"], "any"),
                ]
            )
        ],
    }

    def test_profile_segments(self) -> None:
        """Profile-only: no context field, no relative date, and only such segments
        referenced, directly or not; fields inside $elemMatch are the elements'."""
        ruleset = compile_ruleset(self.DOCUMENT)

        assert {"big", "big_and_tagged", "items", "everyone"} == ruleset.profile_segments

    def test_profile_audiences(self) -> None:
        """Profile-only audiences: include and exclude segments profile-only, and an
        inline filter that reads neither context nor a relative date."""
        document = copy.deepcopy(self.DOCUMENT)
        audiences = {
            "a": {"segments": ["big"], "exclude": ["items"], "filter": {"tags": "x"}},
            "b": {"segments": ["big"], "exclude": ["mobile"]},
            "c": {"filter": {"context.page": "home"}},
            "d": {"filter": {"seen": {"$lt": {"$daysAgo": 1}}}},
            "e": {"filter": {"$segment": "of_recent"}},
            "f": {"filter": {"$segment": "big_and_tagged"}},
            "g": {},
        }
        variants = [{"id": "v", "content": 1}]
        document["campaigns"] = [
            {"id": key, "placements": ["p1"], "audience": audience, "variants": variants}
            for key, audience in audiences.items()
        ]

        ruleset = compile_ruleset(document)

        assert {"a", "f", "g"} == ruleset.profile_audiences

    @settings(max_examples=200, deadline=None)
    @given(
        st.lists(
            st.tuples(
                st.integers(0, 5),
                st.sampled_from(["mobile", "desktop", None]),
                st.integers(0, 20),
            ),
            min_size=1,
            max_size=6,
        ),
        st.sampled_from([{}, {"tags": "x"}, {"items": [{"q": 1}]}, {"tags": ["x", "y"]}]),
    )
    def test_same_decisions_as_without(
        self, calls: list[tuple[int, str | None, int]], extra: dict[str, Any]
    ) -> None:
        """Calls that share one memo for one profile decide exactly as fresh calls do,
        whatever their contexts and times; the memo holds only profile-only results."""
        ruleset = compile_ruleset(self.DOCUMENT)
        memo = ProfileMemo()
        for visitor, device, days in calls:
            profile = {"n": 4, "seen": (NOW - timedelta(days=9)).isoformat(), **extra}
            context = {} if device is None else {"device": device}
            now = NOW - timedelta(days=days)
            args = (ruleset, f"v{visitor}", profile, ["p1", "p2", "p3"], context, now)

            fresh = decide(*args, explain=True)
            shared = decide(*args, profile_memo=memo)
            explained = decide(*args, explain=True, profile_memo=memo)

            assert [dataclasses.replace(d, trace=None) for d in fresh] == shared
            assert fresh == explained
            assert set(memo.segments) <= ruleset.profile_segments
            assert set(memo.audiences) <= ruleset.profile_audiences

    def test_memo_results_are_not_evaluated_again(self) -> None:
        """A second call with the same memo evaluates only segments outside it."""
        ruleset = compile_ruleset(TestLazySegments.DOCUMENT)
        spies = _CountingPredicates(dict(ruleset.segment_filters))
        spied = dataclasses.replace(ruleset, segment_filters=MappingProxyType(spies))
        memo = ProfileMemo()

        first = decide(spied, "v1", {"n": 2}, ["p1", "p2"], {}, NOW, profile_memo=memo)
        evaluated = dict(spies.calls)
        second = decide(spied, "v2", {"n": 2}, ["p1", "p2"], {}, NOW, profile_memo=memo)

        assert first[0].matched_segments == second[0].matched_segments
        assert evaluated == dict(spies.calls)
        assert {"s1": True, "s3": False, "s5": False, "s6": False, "s7": True} == memo.segments
        not_matched = Outcome.AUDIENCE_NOT_MATCHED
        assert {"a": not_matched, "b": None, "d": not_matched, "e": None} == memo.audiences

    def test_known_misses_are_not_tried_again(self) -> None:
        """Each placement's remembered candidates are its own, in order, less the
        campaigns whose audience is known to miss."""
        ruleset = compile_ruleset(TestLazySegments.DOCUMENT)
        memo = ProfileMemo()

        decide(ruleset, "v1", {"n": 2}, ["p1", "p2", "p3"], {}, NOW, profile_memo=memo)

        assert {"p1": ("b", "c"), "p2": ("e", "c"), "p3": ("f",)} == {
            placement: tuple(c.id for c in candidates)
            for placement, candidates in memo.candidates.items()
        }


class TestVisitorSegments:
    def test_in_document_order(self) -> None:
        """Every segment the visitor is in, in document order."""
        ruleset = compile_ruleset(TestLazySegments.DOCUMENT)
        expected = ("s1", "s2", "s3", "s7")

        actual = visitor_segments(ruleset, {"n": 3}, {}, NOW)

        assert expected == actual

    def test_context_is_visible(self) -> None:
        """Segment filters see the request context under context.*."""
        ruleset = compile_ruleset(
            {"segments": [{"id": "mobile", "filter": {"context.device": "mobile"}}]}
        )

        assert ("mobile",) == visitor_segments(ruleset, {}, {"device": "mobile"}, NOW)
        assert () == visitor_segments(ruleset, {}, {"device": "desktop"}, NOW)


@pytest.fixture(name="demo")
def fixture_demo() -> Ruleset:
    return DEMO


class TestDemoDocument:
    """The demo rules give sensible decisions for typical visitors."""

    PLACEMENTS: ClassVar[list[str]] = [
        "home_hero",
        "product_recommendations",
        "popup",
        "email_block",
    ]

    def winners(
        self,
        demo: Ruleset,
        profile: dict[str, Any],
        context: dict[str, Any],
        now: datetime = NOW,
        visitor_id: str = "demo-visitor",
    ) -> dict[str, str | None]:
        decisions = decide(demo, visitor_id, profile, self.PLACEMENTS, context, now)
        return {d.placement: d.campaign_id for d in decisions}

    def test_vip(self, demo: Ruleset) -> None:
        """A VIP with few returns gets the VIP hero and the loyalty email."""
        profile = {
            "visits": 12,
            "customer_segment": {
                "outbounds_number_total": 8,
                "outbounds_value_total": 2400,
                "outbounds_avg_time_delta": 10,
                "returns_articles_ratio": 2,
            },
        }

        winners = self.winners(demo, profile, {"device": "desktop"})

        assert "vip_early_access" == winners["home_hero"]
        assert "loyalty_club" == winners["email_block"]

    def test_high_return_vip(self, demo: Ruleset) -> None:
        """A VIP with a high return rate is excluded from VIP hero and gets fit advice."""
        profile = {
            "visits": 5,
            "customer_segment": {
                "outbounds_number_total": 4,
                "outbounds_value_total": 3000,
                "returns_articles_ratio": 45,
            },
        }

        winners = self.winners(demo, profile, {})

        assert "vip_early_access" != winners["home_hero"]
        assert "fit_service_email" == winners["email_block"]

    def test_new_visitor_in_summer(self, demo: Ruleset) -> None:
        """A first visit gets the welcome offer (or its control) during the summer sale."""
        [decision] = decide(demo, "first-timer", {"visits": 1}, ["home_hero"], {}, NOW)

        assert ("welcome_offer", Reason.CAMPAIGN) == (decision.campaign_id, decision.reason)
        if decision.control:
            assert demo.placements["home_hero"].fallback == decision.content

    def test_seasonal_hero(self, demo: Ruleset) -> None:
        """A returning non-VIP sees the summer sale in July and the fallback in October."""
        profile = {
            "visits": 3,
            "customer_segment": {"outbounds_number_total": 1, "outbounds_value_total": 80},
        }
        october = datetime(2026, 10, 1, tzinfo=UTC)

        [july] = decide(demo, "v", profile, ["home_hero"], {}, NOW)
        [autumn] = decide(demo, "v", profile, ["home_hero"], {}, october)

        assert ("summer_sale", Reason.CAMPAIGN) == (july.campaign_id, july.reason)
        assert (None, Reason.FALLBACK) == (autumn.campaign_id, autumn.reason)
        assert demo.placements["home_hero"].fallback == autumn.content

    def test_mobile_cart_abandoner(self, demo: Ruleset) -> None:
        """A mobile visitor with a cart idle for 2 hours gets the cart rescue popup."""
        cart = {"items": [{"sku": "TEE-1", "qty": 1}], "updated_at": "2026-07-01T10:00:00Z"}
        profile = {"visits": 2, "cart": cart}

        mobile = self.winners(demo, profile, {"device": "mobile"})
        desktop = self.winners(demo, profile, {"device": "desktop"})

        assert "cart_rescue_mobile" == mobile["popup"]
        assert desktop["popup"] in {"exit_intent_discount", "newsletter_signup", None}

    def test_lapsed_buyer(self, demo: Ruleset) -> None:
        """A lapsed frequent buyer gets the win-back email or is held out of it."""
        profile = {
            "visits": 9,
            "customer_segment": {
                "outbounds_number_total": 12,
                "outbounds_avg_time_delta": 9,
                "last_purchase_date": "2026-03-01",
            },
        }

        reasons = Counter(
            (d.campaign_id, d.reason)
            for i in range(400)
            for d in decide(demo, f"lapsed-{i}", profile, ["email_block"], {}, NOW)
        )

        assert {("winback_email", Reason.CAMPAIGN), ("winback_email", Reason.HOLDOUT)} == set(
            reasons
        )
        assert 20 < reasons["winback_email", Reason.HOLDOUT] < 65

    def test_popup_group_split(self, demo: Ruleset) -> None:
        """Non-returning desktop visitors split over the two popup experiments."""
        counts = Counter(
            decide(demo, f"p{i}", {"visits": 1}, ["popup"], {}, NOW)[0].campaign_id
            for i in range(2000)
        )

        assert {"exit_intent_discount", "newsletter_signup"} == set(counts)
        assert 900 < counts["exit_intent_discount"] < 1100

    def test_recommendation_test(self, demo: Ruleset) -> None:
        """Returning customers see all three arms, the holdout and the traffic remainder."""
        profile = {"visits": 3, "customer_segment": {"outbounds_number_total": 2}}
        outcomes = Counter()
        for i in range(4000):
            [d] = decide(demo, f"r{i}", profile, ["product_recommendations"], {}, NOW)
            outcomes[d.reason, d.variant_id] += 1

        assert {
            (Reason.CAMPAIGN, "control"),
            (Reason.CAMPAIGN, "personalized"),
            (Reason.CAMPAIGN, "bought_together"),
            (Reason.HOLDOUT, None),
            (Reason.FALLBACK, None),
        } == set(outcomes)
        assert 700 < outcomes[Reason.FALLBACK, None] < 900  # 20 % outside traffic
