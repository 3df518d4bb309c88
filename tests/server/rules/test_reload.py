"""Hot reload under traffic: new versions are served within 1 s, bad ones never are."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from typing import Self

import grpc
import pytest

from protos import decisioning_pb2 as pb

pytestmark = pytest.mark.slow

NOTICE_WITHIN = 1.0


class _Traffic:
    """Sends Decide calls in a loop and records what each response said."""

    def __init__(self, running) -> None:
        self.running = running
        self.first_seen: dict[int, float] = {}
        self.pairs: set[tuple[int, str]] = set()
        self.failures: list[grpc.StatusCode] = []
        self.calls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        request = pb.DecideRequest(visitor_id="shopper", placements=["slot_0"])
        while not self._stop.is_set():
            try:
                response = self.running.decisions.Decide(request, timeout=5)
            except grpc.RpcError as error:
                self.failures.append(error.code())
                continue
            self.calls += 1
            version = response.ruleset_version
            self.first_seen.setdefault(version, time.monotonic())
            self.pairs.add((version, response.decisions[0].content_json))

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def wait_for(self, version: int, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if version in self.first_seen:
                return self.first_seen[version]
            time.sleep(0.002)
        return None


def test_new_versions_are_served_and_bad_ones_are_not(
    start_server, store, db_path, make_rules, invalid_rules
):
    """Publishes by another connection are served within 1 s with no failed call; a bad
    document written with raw sqlite3 is never served and GetStatus reports it."""
    from server.rules.sqlite import SQLiteRulesStore as RulesStore

    server = start_server(poll_interval=0.2)  # the default interval
    markers = {1: "v1"}
    latencies = []
    with _Traffic(server) as traffic, RulesStore(db_path, seed=False) as other:
        for i in range(2, 7):
            info = other.publish(make_rules(f"v{i}"), comment=f"publish {i}")
            committed = time.monotonic()
            markers[info.version] = f"v{i}"
            seen = traffic.wait_for(info.version, NOTICE_WITHIN + 0.5)
            assert seen is not None, f"version {info.version} never served"
            latencies.append(seen - committed)

        raw = sqlite3.connect(db_path)
        try:
            with raw:
                cursor = raw.execute(
                    "INSERT INTO versions (document, content_hash, created_at, comment)"
                    " VALUES (?, 'bogus', '2026-01-01T00:00:00Z', 'raw write')",
                    [invalid_rules],
                )
                bad_version = int(cursor.lastrowid)
                raw.execute("UPDATE active SET version = ? WHERE id = 1", [bad_version])
        finally:
            raw.close()
        time.sleep(0.6)  # three poll intervals
        status = server.status()

        info = other.publish(make_rules("recovered"))
        markers[info.version] = "recovered"
        recovered = traffic.wait_for(info.version, NOTICE_WITHIN + 0.5)

    assert [] == traffic.failures
    assert max(latencies) < NOTICE_WITHIN, latencies
    assert bad_version not in traffic.first_seen
    assert (6, bad_version) == (status.active_version, status.store_version)
    assert status.last_reload_error.startswith(f"version {bad_version}: invalid rules document")
    assert 1 == status.reload_error_count
    assert recovered is not None
    # Each response's content comes from the version it names: no torn reads.
    assert all(
        json.loads(content) == {"marker": markers[version]} for version, content in traffic.pairs
    )
    assert traffic.calls > 50


def test_in_flight_call_finishes_on_the_version_it_started_with(
    start_server, store, gate, gated_profiles, make_rules
):
    """A call that read version 1 answers from version 1 even if version 2 loads meanwhile."""
    server = start_server(profiles=gated_profiles)
    outcome: dict = {}

    def call() -> None:
        outcome["response"] = server.decisions.Decide(
            pb.DecideRequest(visitor_id="slow-1", placements=["slot_0"]), timeout=10
        )

    thread = threading.Thread(target=call)
    thread.start()
    assert gate.entered.wait(5)
    store.publish(make_rules("v2"))
    server.server.reloader.poll_once()
    gate.release()
    thread.join(5)

    response = outcome["response"]
    assert 2 == server.server.reloader.snapshot.version
    assert (1, {"marker": "v1"}) == (
        response.ruleset_version,
        json.loads(response.decisions[0].content_json),
    )
