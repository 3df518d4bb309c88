"""Kept activity in the SQLite profile store and the backend-neutral steps it calls
(``server.profiles.folding``): coverage keys, counting and completing short profiles,
rebuilds with a declaration, and files written before profiles had a coverage key."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from decision import NO_ACTIVITY, ActivityNeeds, compile_ruleset, validate_events
from decision import profile as fold
from server.profiles import sqlite as profile_store
from server.profiles.folding import STALE_KEY, Coverage, coverage_key, fold_new
from server.profiles.sqlite import SQLiteProfileStore

NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


def needs_of(*clauses: dict[str, Any]) -> ActivityNeeds:
    """The declaration of a ruleset whose segments are ``clauses``."""
    document = {
        "segments": [{"id": f"s{i}", "filter": {"$activity": c}} for i, c in enumerate(clauses)],
        "placements": [{"id": "p"}],
        "campaigns": [],
    }
    return compile_ruleset(document).activity


SHOES = needs_of(
    {"type": "product_view", "properties": {"category": "shoes"},
     "timestamp": {"$gte": {"$daysAgo": 7}}}
)  # fmt: skip
SHOES_AND_ORDERS = needs_of(
    {"type": "product_view", "properties": {"category": "shoes"},
     "timestamp": {"$gte": {"$daysAgo": 7}}},
    {"type": "purchase", "timestamp": {"$gte": {"$daysAgo": 365}}, "sum": {"value": 1}},
)  # fmt: skip


def log(visitor: str = "v-1") -> list[fold.Event]:
    """A visitor's events: two sessions, shoe views, an order."""
    raw = [
        ("a", "session_start", 40, {}),
        ("b", "product_view", 40, {"sku": "S1", "category": "shoes"}),
        ("c", "purchase", 39, {"order_id": "O1", "value": 120, "articles": 1}),
        ("d", "session_start", 2, {}),
        ("e", "product_view", 2, {"sku": "S2", "category": "shoes"}),
    ]
    return validate_events(
        [
            {"event_id": f"{visitor}-{i}", "visitor_id": visitor, "type": kind,
             "timestamp": NOW - timedelta(hours=hours), "properties": props}
            for i, kind, hours, props in raw
        ],
        NOW,
    )  # fmt: skip


def rows(path: Path) -> dict[str, tuple[Any, Any, Any]]:
    """``{visitor: (document, state, activity_key)}`` as stored."""
    with sqlite3.connect(path) as conn:
        return {
            v: (json.loads(d), json.loads(s), k)
            for v, d, s, k in conn.execute(
                "SELECT visitor_id, document, state, activity_key FROM profiles"
            )
        }


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition never held")
        time.sleep(0.02)


class TestCoverageKeys:
    def test_states_complete_for_one_declaration_share_a_key(self):
        """States complete for one declaration share a key; another one has another."""
        first, second = fold.rebuild(log("a"), SHOES), fold.rebuild(log("b"), SHOES)

        assert coverage_key(first) == coverage_key(second)
        assert coverage_key(first) != coverage_key(fold.rebuild(log("a"), SHOES_AND_ORDERS))

    def test_the_cheap_key_is_the_key(self):
        """Coverage.key (no hash for its own declaration) agrees with coverage_key."""
        coverage = Coverage(SHOES)
        states = [fold.rebuild(log(), SHOES), fold.rebuild(log(), SHOES_AND_ORDERS)]

        assert [coverage_key(s) for s in states] == [coverage.key(s) for s in states]

    def test_a_key_covers_what_its_state_covers(self):
        """What ``learn`` concludes from one state of a key is ``covers`` of that state."""
        wider = fold.rebuild(log(), SHOES_AND_ORDERS)
        narrower = fold.rebuild(log(), SHOES)
        coverage = Coverage(SHOES_AND_ORDERS)

        learned = (
            coverage.learn(coverage_key(wider), wider),
            coverage.learn(coverage_key(narrower), narrower),
        )

        assert (True, False) == learned
        assert (True, False) == (
            coverage.known(coverage_key(wider)),
            coverage.known(coverage_key(narrower)),
        )

    def test_a_state_to_rebuild_covers_only_nothing(self):
        """A state of another fold version is stale: it covers only an empty declaration."""
        state = fold.rebuild(log(), SHOES)
        state["v"] = 2

        assert STALE_KEY == coverage_key(state)
        assert (False, True) == (Coverage(SHOES).covers(state), Coverage(NO_ACTIVITY).covers(state))


class TestFoldNew:
    def test_out_of_order_events_fold_like_a_rebuild(self):
        """New events in any order give the state a rebuild gives."""
        events = log()

        state = fold_new(None, list(reversed(events)), SHOES)

        assert state is not None
        assert fold.render(fold.rebuild(events, SHOES)) == fold.render(state)

    def test_a_stale_state_asks_for_a_rebuild(self):
        """A stored state of another fold version is not folded into: None."""
        state = fold.rebuild(log(), SHOES)
        state["v"] = 2

        assert None is fold_new(state, log("other"), SHOES)


class TestStore:
    def test_ingest_keeps_the_declared_activity(self, tmp_path: Path):
        """Tracked events are folded with the declaration given to use_activity."""
        with SQLiteProfileStore(tmp_path / "p.db") as store:
            store.use_activity(SHOES)
            store.track(log())

            stored = store.get("v-1")

        assert fold.render(fold.rebuild(log(), SHOES)) == stored
        assert ["product_view"] == list(stored["activity"])

    def test_short_profiles_are_counted_and_completed(self, tmp_path: Path):
        """Short profiles are counted, then completed batch by batch as a rebuild would."""
        path = tmp_path / "p.db"
        with SQLiteProfileStore(path) as store:
            store.track(log("a") + log("b") + log("c"))
        wider = Coverage(SHOES_AND_ORDERS)
        with SQLiteProfileStore(path) as store:  # not declared: no worker, steps by hand
            found = store.uncovered(wider)
            taken = [store.backfill_some(wider, found, 2), store.backfill_some(wider, found, 2)]
            after = store.uncovered(wider)

        assert (3, [2, 1], 0) == (found.count, taken, after.count)
        expected = {v: fold.render(fold.rebuild(log(v), SHOES_AND_ORDERS)) for v in "abc"}
        assert expected == {v: row[0] for v, row in rows(path).items()}

    def test_worker_completes_what_a_new_declaration_reads(self, tmp_path: Path):
        """A declaration that reads more is back-filled in the background."""
        path = tmp_path / "p.db"
        with SQLiteProfileStore(path) as store:
            store.use_activity(SHOES)
            store.track(log("a") + log("b"))
            store.use_activity(SHOES_AND_ORDERS)
            wait_until(lambda: store.activity_status().complete)

            status = store.activity_status()

        assert (0, 2) == (status.pending, status.backfilled)
        assert fold.render(fold.rebuild(log("a"), SHOES_AND_ORDERS)) == rows(path)["a"][0]

    def test_a_failing_batch_is_reported_and_retried(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ):
        """A batch kept from the write lock is reported failing, then retried."""
        monkeypatch.setattr(profile_store, "BUSY_TIMEOUT", 0.05)
        path = tmp_path / "p.db"
        with SQLiteProfileStore(path) as store:
            store.use_activity(SHOES)
            store.track(log("a"))
            wait_until(lambda: store.activity_status().complete)
            blocker = sqlite3.connect(path, isolation_level=None)
            blocker.execute("BEGIN IMMEDIATE")
            try:
                store.use_activity(SHOES_AND_ORDERS)
                wait_until(lambda: store.activity_status().last_error != "")
                during = store.activity_status()
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            wait_until(lambda: store.activity_status().complete)

            after = store.activity_status()

        assert (False, 1, "the profile store is busy; retry shortly") == (
            during.complete,
            during.pending,
            during.last_error,
        )
        assert (True, 0, "") == (after.complete, after.pending, after.last_error)

    def test_rebuild_all_keeps_the_given_activity(self, tmp_path: Path):
        """``rebuild_all(needs=...)`` rebuilds every profile keeping that activity."""
        path = tmp_path / "p.db"
        with SQLiteProfileStore(path) as store:
            store.track(log("a"))
            rebuilt = store.rebuild_all(needs=SHOES_AND_ORDERS)

        assert 1 == rebuilt
        assert fold.render(fold.rebuild(log("a"), SHOES_AND_ORDERS)) == rows(path)["a"][0]

    def test_a_profile_without_events_is_removed_by_the_backfill(self, tmp_path: Path):
        """A profile row without events is deleted, as a rebuild deletes it."""
        path = tmp_path / "p.db"
        with SQLiteProfileStore(path) as store:
            store.track(log("a"))
        with sqlite3.connect(path) as conn:
            conn.execute("DELETE FROM events")
        wider = Coverage(SHOES_AND_ORDERS)
        with SQLiteProfileStore(path) as store:
            taken = store.backfill_some(wider, store.uncovered(wider), 10)

        assert (1, {}) == (taken, rows(path))


class TestFilesWithoutKeys:
    @pytest.fixture
    def old_file(self, tmp_path: Path) -> Path:
        """A store file as written before profiles had an ``activity_key`` column,
        with the states that version folded (no activity kept)."""
        path = tmp_path / "old.db"
        with SQLiteProfileStore(path) as store:
            store.track(log("a") + log("b"))
        with sqlite3.connect(path) as conn:
            conn.execute("DROP INDEX idx_profiles_activity_key_visitor_id")
            conn.execute("ALTER TABLE profiles DROP COLUMN activity_key")
        return path

    def test_the_column_is_added_and_old_rows_are_completed(self, old_file: Path):
        """Opening adds the column; the back-fill completes and keys the old rows."""
        with SQLiteProfileStore(old_file) as store:
            unkeyed = store.uncovered(Coverage(SHOES))
            store.use_activity(SHOES)
            wait_until(lambda: store.activity_status().complete)

        stored = rows(old_file)
        assert (True, 2) == (unkeyed.unkeyed, unkeyed.count)
        assert fold.render(fold.rebuild(log("b"), SHOES)) == stored["b"][0]
        assert {Coverage(SHOES).key(stored["a"][1])} == {row[2] for row in stored.values()}

    def test_rows_that_cover_already_only_get_their_key(self, old_file: Path):
        """An old row that covers the declaration only gets its key."""
        with sqlite3.connect(old_file) as conn:
            before = {
                v: (json.loads(d), json.loads(s))
                for v, d, s in conn.execute("SELECT visitor_id, document, state FROM profiles")
            }
        nothing = Coverage(NO_ACTIVITY)
        with SQLiteProfileStore(old_file) as store:
            taken = store.backfill_some(nothing, store.uncovered(nothing), 10)
            after = store.uncovered(nothing)

        stored = rows(old_file)
        assert (2, 0) == (taken, after.count)
        assert before == {v: row[:2] for v, row in stored.items()}
        assert {nothing.key(before["a"][1])} == {row[2] for row in stored.values()}
