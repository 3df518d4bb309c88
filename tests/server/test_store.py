"""RulesStore: immutable versions, one active pointer, atomic conditional publishes."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest

from server.errors import InvalidRulesError, StaleVersionError, VersionNotFoundError
from server.rules.sqlite import SQLiteRulesStore as RulesStore


class TestPublish:
    def test_publish_creates_the_next_active_version(self, store, make_rules):
        """Each publish stores a new version number and makes it active."""
        info = store.publish(make_rules("v2"), comment="second", author="ana")

        assert (2, True, "second", "ana", 0) == (
            info.version,
            info.active,
            info.comment,
            info.author,
            info.restored_from,
        )
        assert 2 == store.active_version()

    def test_document_is_kept_exactly_as_published(self, store):
        """GetRules returns the published text byte for byte, whitespace included."""
        text = '{"segments":[],   "placements": [], "exclusion_groups": [], "campaigns": []}'

        info = store.publish(text)

        assert text == store.get(info.version)[1]

    def test_invalid_document_is_not_written(self, store, invalid_rules):
        """A document with problems raises InvalidRulesError listing them; nothing changes."""
        with pytest.raises(InvalidRulesError) as info:
            store.publish(invalid_rules)

        assert info.value.problems
        assert all(p.path.startswith("campaigns[0]") for p in info.value.problems)
        assert [1] == [v.version for v in store.list_versions()]

    def test_stale_expected_version_is_refused(self, store, make_rules):
        """expected_version must still be active; otherwise nothing is written."""
        store.publish(make_rules("v2"))

        with pytest.raises(StaleVersionError) as info:
            store.publish(make_rules("v3"), expected_version=1)

        assert (1, 2) == (info.value.expected, info.value.active)
        assert 2 == store.active_version()

    def test_matching_expected_version_publishes(self, store, make_rules):
        """A publish expecting the active version goes through."""
        assert 2 == store.publish(make_rules("v2"), expected_version=1).version

    def test_concurrent_conditional_publishes_have_one_winner(self, db_path, store, make_rules):
        """Writers on separate connections expecting the same version: exactly one wins."""
        stores = [RulesStore(db_path, seed=False) for _ in range(6)]
        results: list[str] = []
        barrier = threading.Barrier(len(stores))

        def publish(s: RulesStore, i: int) -> None:
            barrier.wait()
            try:
                s.publish(make_rules(f"w{i}"), expected_version=1)
                results.append("won")
            except StaleVersionError:
                results.append("stale")

        threads = [threading.Thread(target=publish, args=(s, i)) for i, s in enumerate(stores)]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join(10)
        finally:
            for s in stores:
                s.close()

        assert ["won"] + ["stale"] * 5 == sorted(results, key=lambda r: r != "won")
        assert 2 == store.active_version()


class TestRollback:
    def test_rollback_is_a_new_version_copying_the_old_document(self, store, make_rules):
        """Rolling back to 1 stores version 3 with version 1's document, restored_from=1."""
        store.publish(make_rules("v2"))

        info = store.rollback(1, comment="undo")

        assert (3, 1, "undo") == (info.version, info.restored_from, info.comment)
        assert store.get(1)[1] == store.get(3)[1]
        assert [3, 2, 1] == [v.version for v in store.list_versions()]

    def test_rollback_to_missing_version(self, store):
        """Rolling back to a version that does not exist raises VersionNotFoundError."""
        with pytest.raises(VersionNotFoundError):
            store.rollback(42)

    def test_rollback_checks_expected_version(self, store, make_rules):
        """Rollback honours expected_version like publish."""
        store.publish(make_rules("v2"))

        with pytest.raises(StaleVersionError):
            store.rollback(1, expected_version=1)

    def test_rollback_refuses_a_row_that_no_longer_validates(self, db_path, store, invalid_rules):
        """A version written around the API with a bad document cannot be reactivated."""
        with sqlite3.connect(db_path) as raw:
            raw.execute(
                "INSERT INTO versions (document, content_hash, created_at) VALUES (?, 'x', ?)",
                [invalid_rules, "2026-01-01T00:00:00Z"],
            )
        raw.close()

        with pytest.raises(InvalidRulesError):
            store.rollback(2)
        assert 1 == store.active_version()


class TestReads:
    def test_get_without_version_returns_the_active_one(self, store, make_rules):
        """get() with no version answers with the active version's metadata and text."""
        store.publish(make_rules("v2"))

        info, text = store.get()

        assert (2, True) == (info.version, info.active)
        assert "v2" in text

    def test_get_missing_version(self, store):
        """get(n) for an unknown n raises VersionNotFoundError (also a LookupError)."""
        with pytest.raises(LookupError):
            store.get(9)

    def test_list_is_newest_first_and_limited(self, store, make_rules):
        """list_versions returns at most ``limit`` versions, newest first, active flagged."""
        for i in range(4):
            store.publish(make_rules(f"n{i}"))

        versions = store.list_versions(limit=3)

        assert [(5, True), (4, False), (3, False)] == [(v.version, v.active) for v in versions]

    def test_created_at_is_aware_utc(self, store):
        """Timestamps come back timezone-aware, in UTC."""
        info, _ = store.get()

        assert 0 == info.created_at.utcoffset().total_seconds()


class TestFile:
    def test_file_uses_wal_and_keeps_history_tables(self, db_path, store):
        """The file is in WAL mode with the versions and active tables."""
        with sqlite3.connect(db_path) as raw:
            mode = raw.execute("PRAGMA journal_mode").fetchone()[0]
            tables = {
                r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        raw.close()

        assert "wal" == mode
        assert {"versions", "active"} <= tables

    def test_empty_store_is_seeded_with_the_default_document(self, tmp_path):
        """A new store starts with decision.default_document() as version 1."""
        import decision

        with RulesStore(tmp_path / "new.db") as fresh:
            info, text = fresh.get()

        assert (1, "decide") == (info.version, info.author)
        assert decision.default_document() == json.loads(text)

    def test_reopening_does_not_seed_again(self, db_path, store):
        """Opening an existing store leaves its history alone."""
        with RulesStore(db_path) as again:
            assert [1] == [v.version for v in again.list_versions()]

    def test_publish_if_pristine_replaces_only_the_seed(self, tmp_path, make_rules):
        """--demo's publish goes into a store holding only the seed, never over real rules."""
        with RulesStore(tmp_path / "new.db") as fresh:
            first = fresh.publish_if_pristine(make_rules("demo"))
            second = fresh.publish_if_pristine(make_rules("demo-again"))

        assert (2, None) == (first.version if first else None, second)
