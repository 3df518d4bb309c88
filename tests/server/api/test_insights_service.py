"""InsightsService on a real server: attribution, campaign and segment reports, estimates,
exports and auth, against hand-built scenarios and brute force."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

import decision
from client import AsyncDecisionClient, DecisionClient
from insights import VariantCounts, analyze_campaign
from protos import decisioning_pb2 as pb
from protos import decisioning_pb2_grpc as pb_grpc
from server.analytics.attribution import attribute

T0 = datetime(2026, 11, 1, tzinfo=UTC)
WEEK = timedelta(days=7)
ADMIN = "server-test-admin-token"

RULES = {
    "segments": [
        {"id": "everyone", "filter": {}},
        {"id": "new_visitors", "filter": {"visits": {"$not": {"$gt": 1}}}},
        {"id": "buyers", "filter": {"customer_segment.outbounds_number_total": {"$gte": 1}}},
        {"id": "big_spenders", "filter": {"customer_segment.outbounds_value_total": {"$gte": 200}}},
    ],
    "placements": [{"id": "hero", "fallback": None}, {"id": "side", "fallback": None}],
    "exclusion_groups": [],
    "campaigns": [
        {
            "id": "exp",
            "placements": ["hero"],
            "audience": {"segments": ["everyone"]},
            "variants": [
                {"id": "control", "weight": 1, "control": True},
                {"id": "treat", "weight": 1, "content": {"t": 1}},
            ],
        },
        {"id": "other", "placements": ["side"], "variants": [{"id": "only", "content": {}}]},
    ],
}
RULESET = decision.compile_ruleset(RULES)


class Clock:
    """The server's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def arm_of(visitor: str) -> str:
    """The arm of campaign ``exp`` the engine gives ``visitor``."""
    (d,) = decision.decide(RULESET, visitor, {}, ["hero"], {}, T0)
    return d.variant_id or "holdout"


def visitors_in(arm: str, count: int) -> list[str]:
    found = [f"{arm}-{i}" for i in range(200) if arm_of(f"{arm}-{i}") == arm]
    return found[:count]


class Scenario:
    """A server with the RULES above, a movable clock and helpers to decide and track."""

    def __init__(self, running: Any, clock: Clock) -> None:
        self.running = running
        self.clock = clock
        self.insights = pb_grpc.InsightsServiceStub(running.channel)
        self.events = pb_grpc.EventServiceStub(running.channel)
        self.seq = 0

    def decide(self, visitor: str, at: datetime, *placements: str) -> list[pb.Decision]:
        self.clock.now = at
        return list(self.running.decide(*(placements or ("hero",)), visitor=visitor).decisions)

    def track(self, *events: tuple[str, str, datetime, dict[str, Any]]) -> None:
        raw = []
        for visitor, kind, at, properties in events:
            self.seq += 1
            raw.append(
                {
                    "event_id": f"e{self.seq}",
                    "visitor_id": visitor,
                    "type": kind,
                    "timestamp": at,
                    "properties": properties,
                }
            )
        self.clock.now = max(self.clock.now, *(event["timestamp"] for event in raw))
        with DecisionClient(self.running.target) as client:
            client.track(raw)

    def report(self, campaign: str, start: datetime, end: datetime, **kwargs: Any) -> Any:
        request = pb.CampaignReportRequest(campaign=campaign, **kwargs)
        request.period.start.FromDatetime(start)
        request.period.end.FromDatetime(end)
        return self.insights.CampaignReport(
            request, metadata=(("authorization", f"Bearer {ADMIN}"),)
        )


@pytest.fixture
def scenario(store: Any, start_server: Callable[..., Any], admin_metadata: Any) -> Scenario:
    """A fresh server (fixed, movable clock) serving RULES."""
    clock = Clock(T0 + timedelta(days=10))
    running = start_server(clock=clock)
    running.admin.PublishRules(
        pb.PublishRulesRequest(document_json=json.dumps(RULES)), metadata=admin_metadata
    )
    return Scenario(running, clock)


def exposure(ts: datetime, decision_id: str = "") -> tuple[str, str, str, str]:
    stamp = decision.profile.format_timestamp(ts)
    return ("v", stamp, "arm", decision_id)


def stamp(ts: datetime) -> str:
    return decision.profile.format_timestamp(ts)


class TestAttributionRules:
    def test_decision_id_picks_its_exposure(self):
        """An event naming a decision goes to that exposure, not the latest one."""
        rows = [exposure(T0, "d1"), exposure(T0 + timedelta(hours=1), "d2")]

        got = attribute(rows, [r[1] for r in rows], stamp(T0 + timedelta(hours=2)), "d1", WEEK)

        assert rows[0] == got

    def test_without_decision_id_the_latest_exposure_wins(self):
        """No decision id: the latest exposure at or before the event."""
        rows = [exposure(T0, "d1"), exposure(T0 + timedelta(hours=1), "d2")]

        got = attribute(rows, [r[1] for r in rows], stamp(T0 + timedelta(hours=2)), "", WEEK)

        assert rows[1] == got

    @pytest.mark.parametrize(
        ("after", "attributed"),
        [(WEEK, True), (WEEK + timedelta(microseconds=1), False), (timedelta(0), True)],
        ids=["exactly-7-days", "just-past-7-days", "same-instant"],
    )
    def test_window_boundary(self, after: timedelta, attributed: bool):
        """The window is inclusive: 7 days after counts, a microsecond more does not."""
        rows = [exposure(T0, "d1")]

        got = attribute(rows, [r[1] for r in rows], stamp(T0 + after), "d1", WEEK)

        assert attributed == (got is not None)

    def test_stale_decision_id_falls_back_to_the_latest_exposure(self):
        """A decision id outside the window falls back to the latest exposure in it."""
        rows = [exposure(T0, "d1"), exposure(T0 + timedelta(days=6), "d2")]

        got = attribute(rows, [r[1] for r in rows], stamp(T0 + timedelta(days=8)), "d1", WEEK)

        assert rows[1] == got

    def test_events_before_every_exposure_go_nowhere(self):
        """An event that precedes the visitor's exposures is not attributed."""
        rows = [exposure(T0, "d1")]

        assert None is attribute(
            rows, [r[1] for r in rows], stamp(T0 - timedelta(seconds=1)), "", WEEK
        )


class TestCampaignReport:
    def test_numbers_equal_the_hand_computed_ones(self, scenario: Scenario):
        """Exposed, clicks, conversions and revenue per arm follow the rules by hand, and
        the statistics equal insights.analyze_campaign on the same counts."""
        c1, c2, c3 = visitors_in("control", 3)
        t1, t2, t3 = visitors_in("treat", 3)
        at = T0 + timedelta(hours=1)
        scenario.decide(c1, T0 - timedelta(days=1))  # before the period: arm is kept
        ids = {v: scenario.decide(v, at)[0].decision_id for v in (c1, c2, c3, t1, t2, t3)}
        h = timedelta(hours=1)
        scenario.track(
            (c1, "campaign_click", at + h, {"campaign": "exp", "decision_id": ids[c1]}),
            (c2, "purchase", at + 2 * h, {"order_id": "o1", "value": 100, "articles": 1}),
            (c2, "purchase", at + 3 * h, {"order_id": "o1", "value": 100, "articles": 1}),
            (
                c3,
                "purchase",
                at - timedelta(minutes=1),
                {"order_id": "o2", "value": 5, "articles": 1},
            ),
            (t1, "campaign_click", at + h, {"campaign": "exp"}),
            (t1, "campaign_conversion", at + 3 * h, {"campaign": "exp", "value": 30}),
            (t2, "purchase", at + h, {"order_id": "o3", "value": 50, "articles": 1}),
            (t2, "purchase", at + 4 * h, {"order_id": "o4", "value": 70, "articles": 1}),
            (t3, "campaign_click", at + h, {"campaign": "other"}),
        )

        response = scenario.report("exp", T0, T0 + WEEK, min_sample=1)

        expected = [
            VariantCounts(
                "control", control=True, exposed=3, clicks=1, conversions=1, revenue=100.0
            ),
            VariantCounts("treat", exposed=3, clicks=1, conversions=2, revenue=150.0),
        ]
        by_hand = analyze_campaign(expected, campaign_id="exp", min_sample=1)
        assert [
            (c.variant_id, c.control, c.exposed, c.clicks, c.conversions, c.revenue)
            for c in expected
        ] == [
            (v.variant_id, v.control, v.exposed, v.clicks, v.conversions, v.revenue)
            for v in response.variants
        ]
        assert (by_hand.variants[1].lift, by_hand.variants[1].p_value, by_hand.srm.p_value) == (
            response.variants[1].lift,
            response.variants[1].p_value,
            response.srm.p_value,
        )
        assert pb.REPORT_STATUS_OK == response.status

    def test_a_purchase_counts_for_every_campaign_within_the_window(self, scenario: Scenario):
        """Last touch per campaign: one purchase converts both campaigns the visitor saw
        in the window before it; one a microsecond too late converts neither."""
        at = T0 + timedelta(hours=1)
        scenario.decide("in-time", at, "hero", "side")
        scenario.decide("too-late", at, "hero", "side")
        scenario.track(
            ("in-time", "purchase", at + WEEK, {"order_id": "a", "value": 10, "articles": 1}),
            (
                "too-late",
                "purchase",
                at + WEEK + timedelta(microseconds=1),
                {"order_id": "b", "value": 10, "articles": 1},
            ),
        )

        conversions = [
            sum(v.conversions for v in scenario.report(c, T0, T0 + 2 * WEEK).variants)
            for c in ("exp", "other")
        ]

        assert [1, 1] == conversions

    def test_holdout_weights_are_explained(self, scenario: Scenario, admin_metadata: Any):
        """With a holdout the split check expects holdout * sum(w) against
        (10000 - holdout) * w_i, and says so."""
        rules = json.loads(json.dumps(RULES))
        rules["campaigns"][0]["holdout"] = 10
        scenario.running.admin.PublishRules(
            pb.PublishRulesRequest(document_json=json.dumps(rules)), metadata=admin_metadata
        )
        scenario.decide("someone", T0 + timedelta(hours=1))

        response = scenario.report("exp", T0, T0 + WEEK)

        assert [("control", 9), ("treat", 9), ("holdout", 2)] == [
            (v.variant_id, v.weight) for v in response.variants
        ]
        assert "10.00% holdout" in response.srm.expected_weights

    def test_unknown_campaign_is_not_found(self, scenario: Scenario):
        """A campaign neither in the rules nor exposed is NOT_FOUND."""
        with pytest.raises(grpc.RpcError) as info:
            scenario.report("nope", T0, T0 + WEEK)

        assert grpc.StatusCode.NOT_FOUND == info.value.code()


class TestPeriods:
    """Periods any Timestamp can express, answered with INVALID_ARGUMENT at their path
    (found by tests/server/api/test_fuzz.py: seconds past the year 9999, or an end in the
    first two weeks of the year 1, overflowed a datetime and answered INTERNAL)."""

    @pytest.mark.parametrize(
        ("field", "seconds", "nanos", "path"),
        [
            ("end", 2**63 - 1, 0, "period.end.seconds"),
            ("start", -(2**63), 0, "period.start.seconds"),
            ("end", 0, 10**9, "period.end.nanos"),
            ("end", -62134387201, 0, "period.end"),  # 0001-01-14: start - window underflowed
            ("start", -62135596800, 0, "period.start"),  # 0001-01-01
        ],
        ids=["huge-end", "huge-start", "nanos", "year-1-end", "year-1-start"],
    )
    @pytest.mark.parametrize("report", ["CampaignReport", "SegmentReport"])
    def test_out_of_range_is_invalid_argument(
        self, scenario: Scenario, report: str, field: str, seconds: int, nanos: int, path: str
    ):
        """A bound no Timestamp defines, or before 1970-01-01, is refused at its path."""
        request = (
            pb.CampaignReportRequest(campaign="exp")
            if report == "CampaignReport"
            else pb.SegmentReportRequest(segments=["everyone"])
        )
        bound = getattr(request.period, field)
        bound.seconds, bound.nanos = seconds, nanos

        with pytest.raises(grpc.RpcError) as info:
            getattr(scenario.insights, report)(
                request, metadata=(("authorization", f"Bearer {ADMIN}"),), timeout=5
            )

        assert (grpc.StatusCode.INVALID_ARGUMENT, path) == (
            info.value.code(),
            _violation_fields(info.value)[0],
        )

    def test_the_widest_period_is_accepted(self, scenario: Scenario):
        """From 1970-01-01 to the last second a Timestamp holds: a report."""
        earliest = datetime(1970, 1, 1, tzinfo=UTC)
        latest = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)

        response = scenario.report("exp", earliest, latest)

        assert "exp" == response.campaign


def _violation_fields(error: grpc.RpcError) -> list[str]:
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    status = rpc_status.from_call(error)
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    return [v.field for v in bad_request.field_violations]


class TestSegmentReport:
    def test_sizes_overlap_and_journeys(self, scenario: Scenario):
        """Sizes now, the overlap, a new visitor's journey into buyers, snapshots and the
        members' conversion come out as the event streams say."""
        day = timedelta(days=1)
        buy = {"order_id": "x", "value": 80, "articles": 1}
        scenario.clock.now = T0 + WEEK
        scenario.track(
            ("a", "session_start", T0 - 2 * day, {}),
            ("a", "session_start", T0 + day, {}),
            ("b", "session_start", T0 - 2 * day, {}),
            ("b", "purchase", T0 - 2 * day, {"order_id": "y", "value": 20, "articles": 1}),
            ("c", "session_start", T0 + 2 * day, {}),
            ("d", "session_start", T0 - 3 * day, {}),
            ("d", "session_start", T0 - 2 * day, {}),
        )
        scenario.decide("a", T0 + day)
        scenario.track(("a", "purchase", T0 + day + timedelta(hours=1), buy))
        scenario.clock.now = T0 + WEEK
        scenario.running.server.sizes.take(T0 + WEEK)
        request = pb.SegmentReportRequest(segments=["new_visitors", "buyers"])
        request.period.start.FromDatetime(T0)
        request.period.end.FromDatetime(T0 + WEEK)

        response = scenario.insights.SegmentReport(
            request, metadata=(("authorization", f"Bearer {ADMIN}"),)
        )

        assert [[2, 1], [1, 2]] == [list(row.visitors) for row in response.overlap]
        assert [("new_visitors", "buyers", 1)] == [
            (j.from_segment, j.to_segment, j.visitors) for j in response.journeys
        ]
        assert [
            ("new_visitors", 2, [("2026-11-08", 2)], 0, False, None),
            ("buyers", 2, [("2026-11-08", 2)], 1, True, 80.0),
        ] == [
            (
                s.segment_id,
                s.size_now,
                [(d.day, d.size) for d in s.sizes_over_time],
                s.exposures,
                s.HasField("conversion_rate"),
                s.revenue_per_visitor if s.HasField("revenue_per_visitor") else None,
            )
            for s in response.segments
        ]


@pytest.fixture
def populated(
    store: Any,
    db_path: Path,
    start_server: Callable[..., Any],
    admin_metadata: Any,
    populate: Callable[..., None],
) -> Any:
    """A server over 3,000 varied profiles, serving RULES."""
    now = T0 + timedelta(days=30)
    populate(db_path, 3000, seed=7, start=T0, spacing=timedelta(minutes=1), now=now)
    running = start_server(clock=Clock(T0 + timedelta(days=30)))
    running.admin.PublishRules(
        pb.PublishRulesRequest(document_json=json.dumps(RULES)), metadata=admin_metadata
    )
    return running


def brute_force(
    path: Path, spec: dict[str, Any], now: datetime
) -> tuple[set[str], dict[str, set[str]]]:
    """Every profile evaluated one by one, as Decide would see it without context."""
    predicate = decision.compile_filter(spec)
    filters = RULESET.segment_filters
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT visitor_id, document FROM profiles").fetchall()
    docs = {v: {**json.loads(d), "context": {}} for v, d in rows}
    matched = {v for v, doc in docs.items() if predicate(doc, now, segments=filters)}
    members = {
        s: {v for v, doc in docs.items() if p(doc, now, segments=filters)}
        for s, p in filters.items()
    }
    return matched, members


class TestEstimate:
    @pytest.mark.parametrize(
        "spec",
        [
            {"customer_segment.outbounds_value_total": {"$gte": 100}, "visits": {"$gte": 2}},
            {"$or": [{"$segment": "big_spenders"}, {"cart.items.0": {"$exists": True}}]},
            {"visits": {"$not": {"$gt": 1}}},
        ],
        ids=["fields", "segment-or-cart", "negation"],
    )
    def test_equals_brute_force(self, populated: Any, db_path: Path, spec: dict[str, Any]):
        """Count, sample and overlaps equal evaluating every stored profile one by one."""
        matched, members = brute_force(db_path, spec, T0 + timedelta(days=30))
        with DecisionClient(populated.target, admin_token=ADMIN) as client:
            estimate = client.estimate_segment(spec, sample_size=20)

        overlaps = sorted(
            (
                (len(matched & m) / len(matched | m), len(matched & m), s, len(m))
                for s, m in members.items()
                if matched & m
            ),
            key=lambda o: (-o[0], -o[1], o[2]),
        )[:5]
        assert (3000, len(matched), True) == (
            estimate.profiles,
            estimate.matching,
            set(estimate.sample_ids) <= matched,
        )
        assert [(s, size, both) for _, both, s, size in overlaps] == [
            (o.segment_id, o.segment_size, o.both) for o in estimate.overlaps
        ]

    def test_unknown_segment_reference_is_invalid(self, populated: Any):
        """A $segment the rules do not define is INVALID_ARGUMENT, named."""
        stub = pb_grpc.InsightsServiceStub(populated.channel)

        with pytest.raises(grpc.RpcError) as info:
            stub.EstimateSegment(
                pb.EstimateSegmentRequest(filter_json='{"$segment": "ghost"}'),
                metadata=(("authorization", f"Bearer {ADMIN}"),),
            )

        assert (grpc.StatusCode.INVALID_ARGUMENT, True) == (
            info.value.code(),
            "ghost" in info.value.details(),
        )


class TestExport:
    @pytest.mark.parametrize("aio", [False, True], ids=["sync", "aio"])
    def test_streams_every_id(self, populated: Any, db_path: Path, aio: bool):
        """ExportSegment streams exactly the segment's visitor ids, over many pages."""
        _, members = brute_force(db_path, {}, T0 + timedelta(days=30))
        if aio:
            import asyncio

            async def collect() -> list[str]:
                async with AsyncDecisionClient(populated.target, admin_token=ADMIN) as client:
                    return [v async for v in client.export_segment("buyers", page_size=97)]

            ids = asyncio.run(collect())
        else:
            with DecisionClient(populated.target, admin_token=ADMIN) as client:
                ids = list(client.export_segment("buyers", page_size=97))

        assert (sorted(members["buyers"]), len(ids)) == (sorted(ids), len(set(ids)))


class TestAuth:
    @pytest.mark.parametrize(
        "method", ["CampaignReport", "SegmentReport", "EstimateSegment", "ExportSegment"]
    )
    def test_admin_token_is_required(self, scenario: Scenario, method: str):
        """Every Insights call without the admin token is UNAUTHENTICATED."""
        requests = {
            "CampaignReport": pb.CampaignReportRequest(campaign="exp"),
            "SegmentReport": pb.SegmentReportRequest(segments=["buyers"]),
            "EstimateSegment": pb.EstimateSegmentRequest(filter_json="{}"),
            "ExportSegment": pb.ExportSegmentRequest(segment="buyers"),
        }
        call = getattr(scenario.insights, method)

        with pytest.raises(grpc.RpcError) as info:
            result = call(requests[method], timeout=5)
            list(result) if method == "ExportSegment" else None

        assert grpc.StatusCode.UNAUTHENTICATED == info.value.code()


class TestPeriods:
    def test_a_period_outside_the_timestamp_range_is_invalid_argument(
        self, running: Any, admin_metadata: Any
    ):
        """A period whose Timestamp has nanos or seconds outside the documented range is
        INVALID_ARGUMENT naming the field, not INTERNAL."""
        stub = pb_grpc.InsightsServiceStub(running.channel)
        request = pb.CampaignReportRequest(campaign="main")
        request.period.start.nanos = 2_000_000_000
        request.period.end.seconds = 10**15

        with pytest.raises(grpc.RpcError) as info:
            stub.CampaignReport(request, metadata=admin_metadata, timeout=10)

        assert grpc.StatusCode.INVALID_ARGUMENT == info.value.code()
        assert "period.end.seconds" in info.value.details()
