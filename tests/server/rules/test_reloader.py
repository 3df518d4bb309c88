"""The reloader: notices commits from any connection, compiles off the request path,
keeps the last good snapshot when a bad document arrives."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from server.rules.reloader import Reloader
from server.rules.sqlite_watcher import SQLiteRulesWatcher


def _write_raw(db_path: Path, document: str) -> int:
    """Insert a version and point `active` at it the way the sqlite3 shell would."""
    raw = sqlite3.connect(db_path)
    try:
        with raw:
            cursor = raw.execute(
                "INSERT INTO versions (document, content_hash, created_at, comment, author)"
                " VALUES (?, 'raw', '2026-01-01T00:00:00Z', 'raw', 'sqlite3')",
                [document],
            )
            raw.execute("UPDATE active SET version = ? WHERE id = 1", [cursor.lastrowid])
        return int(cursor.lastrowid)
    finally:
        raw.close()


@pytest.fixture
def reloader(store):
    r = Reloader(SQLiteRulesWatcher(store.path), poll_interval=0.02)
    try:
        yield r
    finally:
        r.stop()


class TestPollOnce:
    def test_first_poll_loads_the_active_version(self, reloader):
        """The first poll builds a snapshot of the active version."""
        assert reloader.poll_once()

        assert (1, 1) == (reloader.snapshot.version, reloader.status.reload_count)

    def test_nothing_changes_without_a_commit(self, reloader):
        """Polling again without any commit keeps the same snapshot object."""
        reloader.poll_once()
        before = reloader.snapshot

        assert not reloader.poll_once()
        assert before is reloader.snapshot

    def test_a_publish_from_another_connection_is_picked_up(self, reloader, store, make_rules):
        """A commit by another connection is seen on the next poll."""
        reloader.poll_once()

        store.publish(make_rules("v2"))

        assert reloader.poll_once()
        assert 2 == reloader.snapshot.version
        assert '{"marker":"v2"}' in [text for _, text in reloader.snapshot.texts.values()]

    def test_bad_document_keeps_last_good_and_reports_once(
        self, reloader, db_path, invalid_rules, caplog
    ):
        """An invalid document written around the API is logged once and not served."""
        reloader.poll_once()
        bad = _write_raw(db_path, invalid_rules)

        assert not reloader.poll_once()
        _write_raw_touch(db_path)
        assert not reloader.poll_once()

        status = reloader.status
        assert (1, bad, 1) == (reloader.snapshot.version, status.store_version, status.error_count)
        assert status.last_error.startswith(f"version {bad}: invalid rules document")
        assert 1 == sum("rules reload failed" in r.getMessage() for r in caplog.records)

    def test_a_good_version_after_a_bad_one_clears_the_error(
        self, reloader, db_path, store, invalid_rules, make_rules
    ):
        """Publishing a good version after a bad one serves it and clears last_error."""
        reloader.poll_once()
        _write_raw(db_path, invalid_rules)
        reloader.poll_once()

        info = store.publish(make_rules("v3"))
        reloader.poll_once()

        assert (info.version, "") == (reloader.snapshot.version, reloader.status.last_error)
        assert reloader.status.last_error_at is not None

    def test_unparseable_json_is_reported(self, reloader, db_path):
        """Text that is not JSON at all is a reload error with line and column."""
        reloader.poll_once()
        _write_raw(db_path, "{not json")

        reloader.poll_once()

        assert "invalid JSON at line 1" in reloader.status.last_error

    def test_on_load_and_on_error_callbacks(self, store, db_path, invalid_rules):
        """The callbacks report each load and each failed reload."""
        events = []
        r = Reloader(
            SQLiteRulesWatcher(db_path),
            on_load=lambda s: events.append(("load", s.version)),
            on_error=lambda v, m: events.append(("error", v)),
        )
        try:
            r.poll_once()
            bad = _write_raw(db_path, invalid_rules)
            r.poll_once()
        finally:
            r.stop()

        assert [("load", 1), ("error", bad)] == events


def _write_raw_touch(db_path: Path) -> None:
    """Commit something unrelated, so data_version changes without a new active row."""
    raw = sqlite3.connect(db_path)
    try:
        with raw:
            raw.execute("UPDATE active SET updated_at = updated_at WHERE id = 1")
    finally:
        raw.close()


class TestThread:
    def test_poller_thread_notices_commits(self, reloader, store, make_rules):
        """With the thread running, a publish is served within a few poll intervals."""
        reloader.poll_once()
        reloader.start()

        store.publish(make_rules("v2"))
        deadline = time.monotonic() + 1.0
        while reloader.snapshot.version != 2 and time.monotonic() < deadline:
            time.sleep(0.005)

        assert 2 == reloader.snapshot.version

    def test_stop_is_prompt(self, store):
        """stop() wakes the loop at once even with a long poll interval."""
        r = Reloader(SQLiteRulesWatcher(store.path), poll_interval=30)
        r.start()
        started = time.monotonic()

        r.stop()

        assert time.monotonic() - started < 1.0
