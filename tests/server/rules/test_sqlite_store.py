"""The SQLite rules store's own file: WAL and its tables, and rows written around the API.
(What every rules store does is in tests/contract/test_rules_store.py.)"""

from __future__ import annotations

import sqlite3

import pytest

from server.errors import InvalidRulesError


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
