"""PostgreSQL restarting under load: Decide keeps answering from the last good rules and
cached profiles, Track answers UNAVAILABLE (retryable, never INTERNAL) while the
database is down, and the server recovers by itself; nothing acknowledged is lost."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import psycopg
import pytest

from client import DecisionClient
from client.errors import DecideError, Unavailable
from server.app import create_server
from server.config import ServerConfig
from server.postgres.schema import migrate
from tests.deciders import eventually
from tests.postgres_cluster import PostgresCluster

pytestmark = pytest.mark.slow

ADMIN = "restart-admin-token"
NOW = datetime.now(UTC).replace(microsecond=0)


def event(event_id: str, visitor: str) -> dict:
    return {
        "event_id": event_id,
        "visitor_id": visitor,
        "type": "session_start",
        "timestamp": (NOW - timedelta(minutes=1)).isoformat(),
        "properties": {},
    }


@pytest.fixture
def cluster(postgres_bindir: Path) -> Iterator[PostgresCluster]:
    """A cluster of this test's own: it is stopped and started again under the server."""
    own = PostgresCluster(postgres_bindir)
    own.start()
    try:
        yield own
    finally:
        own.stop()


@pytest.fixture
def served(cluster: PostgresCluster) -> Iterator[tuple[str, DecisionClient]]:
    """A server on the cluster's database (profiles cached for 5 minutes, so cached
    ones outlast the outage), and a client that retries nothing itself."""
    dsn = cluster.create_database("shop")
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn, dsn)
    config = ServerConfig(
        store=dsn,
        host="127.0.0.1",
        port=0,
        demo=True,
        admin_token=ADMIN,
        poll_interval=0.05,
        grace=0,
        profile_cache_ttl=300,
    )
    server, port = create_server(config)
    try:
        with DecisionClient(f"127.0.0.1:{port}", admin_token=ADMIN, max_attempts=1) as client:
            yield dsn, client
    finally:
        server.stop(None).wait(30)


def stored_event_ids(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        return {row[0] for row in conn.execute("SELECT event_id FROM events")}


class TestRestart:
    def test_decide_serves_on_track_fails_retryably_then_recovers(self, cluster, served):
        """Down: Decide answers for a cached visitor with the last rules, Track is
        UNAVAILABLE. Back up: Track succeeds again without a server restart, and every
        acknowledged event is stored."""
        dsn, client = served
        client.track([event("before-1", "known"), event("before-2", "known")])
        before = client.decide("known", ["home_hero"])
        acknowledged = ["before-1", "before-2"]
        errors: list[grpc.StatusCode] = []
        stop = threading.Event()

        def load() -> None:  # Track under load, across the outage
            n = 0
            while not stop.is_set():
                batch = [event(f"load-{n}-{i}", f"v{i}") for i in range(10)]
                n += 1
                try:
                    client.track(batch)
                except DecideError as exc:
                    errors.append(exc.code)
                else:
                    acknowledged.extend(e["event_id"] for e in batch)

        sender = threading.Thread(target=load)
        sender.start()
        try:
            cluster.shutdown("fast")
            down_decide = client.decide("known", ["home_hero"])
            with pytest.raises(Unavailable) as down_track:
                client.track([event("while-down", "known")])
            cluster.resume()
            recovered = eventually(
                lambda: _track_or_none(client, event("after", "known")), lambda r: r is not None
            )
        finally:
            stop.set()
            sender.join(60)
            if cluster.postmaster_pid is None:
                cluster.resume()
        acknowledged.append("after")

        assert _served(before) == _served(down_decide)
        assert grpc.StatusCode.UNAVAILABLE == down_track.value.code
        assert set() == set(errors) - {grpc.StatusCode.UNAVAILABLE}
        assert 1 == recovered.accepted
        assert set() == set(acknowledged) - stored_event_ids(dsn)
        assert "while-down" not in stored_event_ids(dsn)


def _served(result) -> tuple:
    """What a Decide served, without its per-call decision ids."""
    return result.ruleset_version, [
        (d.placement, d.reason, d.campaign_id, d.variant_id, d.content) for d in result.decisions
    ]


def _track_or_none(client: DecisionClient, one: dict):
    try:
        return client.track([one])
    except Unavailable:
        return None
