"""Kept activity through a real server: the served rules' declaration reaches every fold,
rebuild and merge, and a publish that reads more is back-filled in the background."""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from client import DecisionClient
from decision import compile_ruleset, validate_events
from decision import profile as fold
from insights import SegmentEngagement
from server.rules.sqlite import SQLiteRulesStore

ADMIN_TOKEN = "server-test-admin-token"  # tests/server/conftest.py
NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)

SHOE_FANS = {
    "id": "shoe_fans",
    "filter": {
        "$activity": {
            "type": "product_view",
            "properties": {"category": "shoes"},
            "timestamp": {"$gte": {"$daysAgo": 7}},
            "count": {"$gte": 3},
        }
    },
}
BIG_SPENDERS = {
    "id": "big_spenders",
    "filter": {
        "$activity": {
            "type": "purchase",
            "timestamp": {"$gte": {"$daysAgo": 365}},
            "sum": {"value": {"$gte": 100}},
        }
    },
}
BUYERS = {"id": "buyers", "filter": {"customer_segment.outbounds_number_total": {"$gte": 1}}}


def rules(*segments: dict[str, Any]) -> dict[str, Any]:
    """A rules document with ``segments`` and one campaign for shoe fans."""
    return {
        "segments": list(segments),
        "placements": [{"id": "home", "fallback": {"headline": "hello"}}],
        "campaigns": [
            {
                "id": "shoes",
                "placements": ["home"],
                "audience": {"segments": ["shoe_fans"]},
                "variants": [{"id": "only", "content": {"headline": "new shoes"}}],
            }
        ],
    }


V1 = rules(SHOE_FANS, BUYERS)
V2 = rules(SHOE_FANS, BUYERS, BIG_SPENDERS)  # also reads purchases: a back-fill


def event(event_id: str, kind: str, ago: timedelta, visitor: str = "ann", **props: Any) -> dict:
    """One event as the client sends it, ``ago`` before NOW."""
    return {
        "event_id": event_id,
        "visitor_id": visitor,
        "type": kind,
        "timestamp": (NOW - ago).isoformat(),
        "properties": props,
    }


def shoe(event_id: str, days: float, visitor: str = "ann") -> dict:
    return event(event_id, "product_view", timedelta(days=days), visitor, sku=event_id,
                 category="shoes")  # fmt: skip


def order(event_id: str, days: float, value: float, visitor: str = "ann") -> dict:
    return event(event_id, "purchase", timedelta(days=days), visitor, order_id=event_id,
                 value=value, articles=1)  # fmt: skip


def expected_profile(raw: list[dict], document: dict[str, Any]) -> dict[str, Any]:
    """What a rebuild of ``raw`` with ``document``'s declaration renders, as JSON reads it."""
    needs = compile_ruleset(document).activity
    return json.loads(json.dumps(fold.render(fold.rebuild(validate_events(raw, NOW), needs))))


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition never held")
        time.sleep(0.02)


def stored_states(path: Path) -> dict[str, dict[str, Any]]:
    """Every stored fold state in the file, by visitor."""
    with sqlite3.connect(path) as conn:
        return {v: json.loads(s) for v, s in conn.execute("SELECT visitor_id, state FROM profiles")}


@pytest.fixture
def paths(tmp_path: Path) -> tuple[Path, Path]:
    """A rules store holding V1, and where the profiles live (a file of their own, so a
    test can hold the profile store's write lock while rules are published)."""
    rules_path = tmp_path / "rules.db"
    with SQLiteRulesStore(rules_path, seed=False) as store:
        store.publish(json.dumps(V1), comment="v1", author="tests")
    return rules_path, tmp_path / "profiles.db"


@pytest.fixture
def serve(start_server: Any, paths: tuple[Path, Path]) -> Iterator[Callable[..., Any]]:
    """``serve(**config)``: a server on ``paths`` with the clock at NOW, and a client."""
    clients: list[DecisionClient] = []

    def start(**config: Any) -> tuple[Any, DecisionClient]:
        rules_path, profile_path = paths
        running = start_server(
            db_path=str(rules_path), profile_db_path=str(profile_path), clock=lambda: NOW, **config
        )
        client = DecisionClient(running.target, admin_token=ADMIN_TOKEN)
        clients.append(client)
        return running, client

    try:
        yield start
    finally:
        for client in clients:
            client.close()


def segments_of(client: DecisionClient, visitor: str) -> list[str]:
    return list(client.visitor_segments(visitor).segment_ids)


class TestIngest:
    def test_activity_segment_matches_once_the_events_arrive(self, serve):
        """Three shoe views in 7 days put a visitor in the segment; older ones do not count."""
        _, client = serve()
        client.track([shoe("old-1", 9), shoe("old-2", 8), shoe("s1", 3)])
        before = segments_of(client, "ann")

        client.track([shoe("s2", 2), shoe("s3", 1)])

        assert ([], ["shoe_fans"]) == (before, segments_of(client, "ann"))
        assert "new shoes" == client.decide("ann", ["home"]).decisions[0].content["headline"]

    def test_late_event_gives_the_profile_of_a_rebuild(self, serve, paths):
        """An event too late for the fold is placed by a rebuild in the same transaction."""
        _, client = serve()
        raw = [
            event("a1", "session_start", timedelta(days=6)),
            shoe("a2", 5),
            event("b1", "session_start", timedelta(days=1)),
            shoe("b2", 1),
            shoe("b3", 1),
        ]
        late = shoe("late", 5.5)  # before a2, which the fold no longer holds in full
        client.track(raw)

        client.track([late])

        assert expected_profile([*raw, late], V1) == client.get_profile("ann")
        assert False is fold.needs_rebuild(stored_states(paths[1])["ann"])
        assert ["shoe_fans"] == segments_of(client, "ann")

    def test_batch_out_of_order_is_folded_in_time_order(self, serve, paths):
        """A batch whose events run backwards over days is folded as a rebuild would."""
        _, client = serve()
        raw = [shoe("c3", 1), event("c2", "session_start", timedelta(days=5)), shoe("c1", 6)]

        client.track(raw)

        assert expected_profile(raw, V1) == client.get_profile("ann")
        assert False is fold.needs_rebuild(stored_states(paths[1])["ann"])

    def test_identity_merge_keeps_activity(self, serve):
        """Two guest views and one as the customer: the merged profile counts three."""
        _, client = serve()
        client.track([shoe("g1", 2, "guest"), shoe("g2", 2, "guest"), shoe("c1", 1, "cus")])
        before = (segments_of(client, "guest"), segments_of(client, "cus"))

        client.track([event("id", "identify", timedelta(hours=1), "guest", customer_id="cus")])

        assert ([], []) == before
        assert (["shoe_fans"], ["shoe_fans"]) == (
            segments_of(client, "guest"),
            segments_of(client, "cus"),
        )


class TestBackfill:
    def test_nothing_to_complete_is_reported_complete(self, serve):
        """With every profile keeping what the rules read, the status says complete."""
        _, client = serve()
        client.track([shoe("s1", 1)])

        wait_until(lambda: client.status().activity_backfill.complete)

        assert 0 == client.status().activity_backfill.pending

    def test_publish_reading_more_is_backfilled_and_reported(self, serve, paths):
        """Status and metric count short profiles until the back-fill completes them."""
        running, client = serve(metrics_port=0)
        ann = [shoe("a1", 2), order("a2", 30, 80), order("a3", 20, 40)]
        bob = [shoe("b1", 2, "bob"), order("b2", 10, 20, "bob")]
        client.track(ann + bob)
        wait_until(lambda: client.status().activity_backfill.complete)
        blocker = sqlite3.connect(paths[1], isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # the back-fill cannot write meanwhile
        try:
            client.publish_rules(V2)
            wait_until(lambda: client.status().activity_backfill.pending == 2)
            during = (
                client.status().activity_backfill.complete,
                _gauge(running, "decide_activity_backfill_pending"),
                segments_of(client, "ann"),
            )
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()

        wait_until(lambda: client.status().activity_backfill.complete)

        assert (False, 2.0, ["buyers"]) == during
        status = client.status().activity_backfill
        assert (True, 0, 2) == (status.complete, status.pending, status.backfilled)
        assert 0.0 == _gauge(running, "decide_activity_backfill_pending")
        assert ["buyers", "big_spenders"] == segments_of(client, "ann")
        assert expected_profile(ann, V2) == client.get_profile("ann")
        assert expected_profile(bob, V2) == client.get_profile("bob")

    def test_restart_resumes_from_what_is_not_covered(self, serve, paths):
        """Rules published while no server runs are back-filled by the next one to start."""
        running, client = serve()
        client.track([order("o1", 3, 150)])
        running.server.stop(None).wait(10)
        with SQLiteRulesStore(paths[0], seed=False) as store:
            store.publish(json.dumps(V2), comment="v2", author="tests")

        _, client = serve()
        wait_until(lambda: client.status().activity_backfill.complete)

        assert ["buyers", "big_spenders"] == segments_of(client, "ann")
        assert expected_profile([order("o1", 3, 150)], V2) == client.get_profile("ann")

    def test_stop_ends_the_worker(self, serve):
        """Stopping the server stops the back-fill thread with it."""
        running, client = serve()
        client.track([shoe("s1", 1)])
        worker = running.server.profiles._backfill._thread

        running.server.stop(None).wait(10)

        assert (True, False) == (worker is not None, worker.is_alive())


class TestJourneys:
    def test_rebuilt_past_profiles_keep_the_declared_activity(self, serve):
        """A shoe fan at the period's start who bought since goes from shoe_fans to buyers."""
        _, client = serve()
        client.track([shoe("s1", 5), shoe("s2", 5), shoe("s3", 5), order("o1", 1, 30)])

        report = client.segment_report(["shoe_fans", "buyers"], start=NOW - timedelta(days=4))

        assert (("shoe_fans", "buyers", 1),) == report.journeys


class TestEngagementInReports:
    def test_members_engagement_is_their_profiles_added_up(self, serve):
        """The buyers' engagement is their profiles' added up; a non-buyer's is not."""
        _, client = serve()

        def at(minutes: float, kind: str, visitor: str, **props: Any) -> dict:
            name = f"{visitor}-{minutes}"
            return event(name, kind, timedelta(minutes=-minutes), visitor, **props)

        client.track(
            [
                at(-300, "session_start", "ann"),
                at(-298, "product_view", "ann", sku="A"),
                at(-290, "purchase", "ann", order_id="o-ann", value=10, articles=1),
                at(-60, "session_start", "ann"),
                at(-55, "product_view", "ann", sku="B"),
                at(-180, "session_start", "bob"),
                at(-179, "product_view", "bob", sku="A"),
                at(-177, "product_view", "bob", sku="B"),
                at(-176, "purchase", "bob", order_id="o-bob", value=10, articles=1),
                at(-120, "session_start", "carl"),
                at(-100, "product_view", "carl", sku="C"),
            ]
        )

        (buyers,) = client.segment_report(["buyers"]).segments

        assert SegmentEngagement(2, 3, 4, 1140.0) == buyers.engagement
        assert (1.5, 570.0) == (
            buyers.engagement.sessions_per_member,
            buyers.engagement.time_on_site_per_member,
        )


def _gauge(running: Any, name: str) -> float:
    url = f"http://127.0.0.1:{running.server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    raise AssertionError(f"no sample {name}")
