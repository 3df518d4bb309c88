"""Many deciders, one state: two `decide serve` processes on one PostgreSQL database.

A publish through one is served by both; events tracked on both make one profile; a
merge or a deletion through one is seen by the other within the profile cache's
staleness bound (1 s); a decider killed with SIGKILL during ingest loses no event it
acknowledged."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from server.postgres.schema import migrate
from tests.deciders import Decider, eventually

pytestmark = pytest.mark.slow

NOW = datetime.now(UTC).replace(microsecond=0)


def rules(marker: str) -> str:
    return json.dumps(
        {
            "segments": [],
            "placements": [{"id": "slot_0", "fallback": None}],
            "exclusion_groups": [],
            "campaigns": [
                {
                    "id": "main",
                    "placements": ["slot_0"],
                    "variants": [{"id": "only", "content": {"marker": marker}}],
                }
            ],
        }
    )


def event(event_id: str, visitor: str, kind: str = "session_start", **properties) -> dict:
    return {
        "event_id": event_id,
        "visitor_id": visitor,
        "type": kind,
        "timestamp": (NOW - timedelta(minutes=1)).isoformat(),
        "properties": properties,
    }


@pytest.fixture
def database(postgres_dsn: str) -> str:
    """The test's database, migrated to the current schema."""
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        migrate(conn, postgres_dsn)
    return postgres_dsn


@pytest.fixture
def deciders(database, tmp_path):
    """Two deciders on the database, each in its own process; stopped at the end."""
    started = []
    try:
        for name in ("a", "b"):
            folder = tmp_path / name
            folder.mkdir()
            started.append(Decider(database, folder).start())
        yield started
    finally:
        for decider in started:
            decider.stop()


def stored_event_ids(database: str) -> set[str]:
    with psycopg.connect(database) as conn:
        return {row[0] for row in conn.execute("SELECT event_id FROM events")}


class TestTwoDeciders:
    def test_a_publish_through_one_is_served_by_both(self, deciders):
        """Each decider answers with the version published through the other."""
        a, b = deciders
        with a.client() as on_a, b.client() as on_b:
            version = on_a.publish_rules(rules("published-on-a")).version

            served_a = on_a.decide("v", ["slot_0"]).ruleset_version
            served_b = eventually(
                lambda: on_b.decide("v", ["slot_0"]).ruleset_version, lambda v: v == version
            )
            content = on_b.decide("v", ["slot_0"]).decisions[0].content

        assert (version, version) == (served_a, served_b)
        assert {"marker": "published-on-a"} == content

    def test_events_tracked_on_both_are_one_profile(self, deciders):
        """Three sessions through one decider and two through the other: five visits,
        read through either."""
        a, b = deciders
        with a.client() as on_a, b.client() as on_b:
            on_a.track([event(f"a{i}", "shopper") for i in range(3)])
            on_b.track([event(f"b{i}", "shopper") for i in range(2)])

            visits = [
                eventually(lambda c=c: c.get_profile("shopper")["visits"], lambda n: n == 5)
                for c in (on_a, on_b)
            ]

        assert [5, 5] == visits

    def test_a_merge_on_one_is_a_merge_on_the_other(self, deciders):
        """An identify through one decider merges the two profiles for the other too."""
        a, b = deciders
        with a.client() as on_a, b.client() as on_b:
            on_a.track([event("a1", "anon")])
            on_b.track([event("c1", "cust"), event("c2", "cust")])
            assert 1 == on_b.get_profile("anon")["visits"]  # cached by b before the merge

            on_a.track([event("i", "anon", "identify", customer_id="cust")])

            merged = eventually(
                lambda: on_b.get_profile("anon"), lambda p: p is not None and p["visits"] == 3
            )
            exported = on_b.export_visitor("anon")
            customer = on_b.get_profile("cust")

        assert customer == merged
        assert ("cust", ["anon"]) == (exported["visitor_id"], exported["aliases"])

    def test_delete_on_one_is_seen_on_the_other(self, deciders):
        """DeleteVisitor through one decider: the other stops finding the visitor once
        its cached copy expires."""
        a, b = deciders
        with a.client() as on_a, b.client() as on_b:
            on_a.track([event("s1", "forget-me"), event("s2", "forget-me")])
            assert 2 == eventually(
                lambda: (on_b.get_profile("forget-me") or {}).get("visits"), lambda n: n == 2
            )

            deleted = on_a.delete_visitor("forget-me")

            gone = eventually(lambda: on_b.get_profile("forget-me"), lambda p: p is None)

        assert (3, None) == (deleted, gone)  # two events and the profile


class TestFaults:
    def test_kill_9_during_ingest_loses_no_acknowledged_event(self, deciders, database):
        """A decider killed with SIGKILL while it ingests: every batch it acknowledged is
        stored, and the other decider goes on accepting events."""
        a, b = deciders
        acknowledged: list[str] = []
        batches_done = threading.Event()
        stop = threading.Event()

        def ingest() -> None:
            with a.client(max_attempts=1) as on_a:
                for n in range(10_000):
                    if stop.is_set():
                        return
                    batch = [event(f"k{n}-{i}", f"visitor-{(n + i) % 7}") for i in range(20)]
                    try:
                        on_a.track(batch)
                    except Exception:  # the decider died under this call: not acknowledged
                        return
                    acknowledged.extend(e["event_id"] for e in batch)
                    if n == 10:
                        batches_done.set()

        sender = threading.Thread(target=ingest)
        sender.start()
        assert batches_done.wait(60)
        a.kill()
        stop.set()
        sender.join(60)
        with b.client() as on_b:
            after = on_b.track([event("after-kill", "visitor-1")])

        missing = set(acknowledged) - stored_event_ids(database)
        assert set() == missing
        assert len(acknowledged) >= 220
        assert 1 == after.accepted
