"""The versioned rules store: immutable versions and one active pointer in a SQLite file.

Schema (created on first open)::

    versions(version INTEGER PRIMARY KEY, document TEXT, content_hash TEXT,
             created_at TEXT, comment TEXT, author TEXT, restored_from INTEGER)
    active(id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER, updated_at TEXT)

Every publish and rollback is one ``BEGIN IMMEDIATE`` transaction: it takes SQLite's
write lock before reading the active version, so the ``expected_version`` check and the
insert are atomic across threads and processes sharing the file. Versions are never
updated or deleted; a rollback stores a copy of the old document as a new version.

Documents are validated before they are written: through this API an invalid document
never becomes active. (A document written by another route, e.g. the sqlite3 shell, is
caught by the reloader, which keeps serving the last good version.)

A store opened on an empty file is seeded with ``decision.default_document()`` as
version 1, so a server always has something valid to serve.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import sqlite_utils

import decision
from server.errors import (
    StaleVersionError,
    VersionNotFoundError,
)
from server.rules import documents
from server.rules.store import SEED_AUTHOR, VersionInfo
from server.sqlite import immediate, reraise

__all__ = [
    "BUSY_TIMEOUT",
    "SQLiteRulesStore",
    "read_active",
]

BUSY_TIMEOUT = 5.0
"""Seconds a writer waits for another process's write lock before StoreBusyError."""

SCHEMA_VERSION = 1

_VERSION_COLUMNS = "version, content_hash, created_at, comment, author, restored_from"


class SQLiteRulesStore:
    """A ``RulesStore`` on one SQLite file. Thread-safe; safe to share the file between
    processes. Use as a context manager or call ``close()``."""

    def __init__(self, path: str | Path, *, seed: bool = True) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        # isolation_level=None: we issue BEGIN IMMEDIATE / COMMIT ourselves.
        try:
            conn = sqlite3.connect(
                str(self.path),
                timeout=BUSY_TIMEOUT,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            reraise(exc, "rules store", self.path)
        self._db = sqlite_utils.Database(conn)
        try:
            self._setup(seed)
        except sqlite3.Error as exc:
            conn.close()
            reraise(exc, "rules store", self.path)
        except BaseException:
            conn.close()
            raise

    def _setup(self, seed: bool) -> None:
        db = self._db
        db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
        db.execute("PRAGMA foreign_keys = ON")
        if db.journal_mode != "wal":
            db.enable_wal()
        with self._write():
            db.table("versions").create(
                {
                    "version": int,
                    "document": str,
                    "content_hash": str,
                    "created_at": str,
                    "comment": str,
                    "author": str,
                    "restored_from": int,
                },
                pk="version",
                not_null={"document", "content_hash", "created_at"},
                defaults={"comment": "", "author": ""},
                foreign_keys=[("restored_from", "versions", "version")],
                if_not_exists=True,
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS active ("
                " id INTEGER PRIMARY KEY CHECK (id = 1),"
                " version INTEGER NOT NULL REFERENCES versions(version),"
                " updated_at TEXT NOT NULL)"
            )
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        if seed:
            self.publish_if_pristine(
                documents.dump_document(decision.default_document()),
                comment="initial rules (default document)",
                author=SEED_AUTHOR,
                replace_default=False,
            )

    # -- writes ---------------------------------------------------------------------

    def publish(
        self,
        document_json: str,
        *,
        expected_version: int | None = None,
        comment: str = "",
        author: str = "",
    ) -> VersionInfo:
        """Store ``document_json`` as a new version and make it active, atomically.

        Raises ``InvalidRulesError`` (nothing is written), ``StaleVersionError`` when
        ``expected_version`` is given and is not the active version, ``StoreBusyError``.
        """
        ruleset = documents.compile_text(document_json)
        with self._write():
            self._check_expected(expected_version)
            return self._insert(document_json, ruleset, comment, author, None)

    def rollback(
        self,
        version: int,
        *,
        comment: str = "",
        expected_version: int | None = None,
        author: str = "",
    ) -> VersionInfo:
        """Make the document of ``version`` active again, stored as a new version whose
        ``restored_from`` is ``version``. Raises like ``publish``, and
        ``VersionNotFoundError``."""
        _, document_json = self.get(version)
        # Re-validate: the row may predate an engine change, or come from outside the API.
        ruleset = documents.compile_text(document_json)
        if not comment:
            comment = f"rollback to version {version}"
        with self._write():
            self._check_expected(expected_version)
            return self._insert(document_json, ruleset, comment, author, version)

    def publish_if_pristine(
        self,
        document_json: str,
        *,
        comment: str = "",
        author: str = SEED_AUTHOR,
        replace_default: bool = True,
    ) -> VersionInfo | None:
        """Publish only into a store nobody has published to yet; returns None otherwise.

        A store is pristine when it has no version, or (with ``replace_default``) when
        its only version is the seeded default document. ``--demo`` uses this, so demo
        rules never overwrite rules someone published.
        """
        ruleset = documents.compile_text(document_json)
        with self._write():
            rows = list(
                self._db.query("SELECT version, author FROM versions ORDER BY version LIMIT 2")
            )
            pristine = not rows or (
                replace_default and len(rows) == 1 and rows[0]["author"] == SEED_AUTHOR
            )
            if not pristine:
                return None
            return self._insert(document_json, ruleset, comment, author, None)

    # -- reads ----------------------------------------------------------------------

    def get(self, version: int | None = None) -> tuple[VersionInfo, str]:
        """The metadata and exact document text of ``version`` (default: the active one)."""
        with self._read():
            active = self._active()
            wanted = active if version is None else version
            rows = list(
                self._db.query(
                    f"SELECT {_VERSION_COLUMNS}, document FROM versions WHERE version = ?",
                    [wanted],
                )
            )
        if not rows:
            raise VersionNotFoundError(wanted)
        row = rows[0]
        return _info(row, active), row["document"]

    def list_versions(self, limit: int = 50) -> list[VersionInfo]:
        """Up to ``limit`` versions, newest first."""
        with self._read():
            active = self._active()
            rows = self._db.query(
                f"SELECT {_VERSION_COLUMNS} FROM versions ORDER BY version DESC LIMIT ?",
                [limit],
            )
            return [_info(row, active) for row in rows]

    def active_version(self) -> int:
        """The active version number; 0 for a store with no version."""
        with self._read():
            return self._active()

    def close(self) -> None:
        """Close the connection. Idempotent."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------

    def _write(self) -> AbstractContextManager[None]:
        """One IMMEDIATE transaction: the write lock is taken before anything is read."""
        return immediate(self._db.conn, self._lock, store="rules store", path=self.path)

    @contextmanager
    def _read(self) -> Iterator[None]:
        """One read transaction, so the active pointer and the rows read agree."""
        with self._lock:
            try:
                self._db.execute("BEGIN")
                try:
                    yield
                finally:
                    self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                reraise(exc, "rules store", self.path)

    def _active(self) -> int:
        row = self._db.execute("SELECT version FROM active WHERE id = 1").fetchone()
        return int(row[0]) if row else 0

    def _check_expected(self, expected_version: int | None) -> None:
        if expected_version is None:
            return
        active = self._active()
        if expected_version != active:
            raise StaleVersionError(expected_version, active)

    def _insert(
        self,
        document_json: str,
        ruleset: decision.Ruleset,
        comment: str,
        author: str,
        restored_from: int | None,
    ) -> VersionInfo:
        content_hash = ruleset.version
        now = _now()
        created_at = _format_time(now)
        cursor = self._db.execute(
            "INSERT INTO versions (document, content_hash, created_at, comment, author,"
            " restored_from) VALUES (?, ?, ?, ?, ?, ?)",
            [document_json, content_hash, created_at, comment, author, restored_from],
        )
        version = int(cursor.lastrowid or 0)
        self._db.execute(
            "INSERT INTO active (id, version, updated_at) VALUES (1, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET version = excluded.version,"
            " updated_at = excluded.updated_at",
            [version, created_at],
        )
        return VersionInfo(
            version=version,
            content_hash=content_hash,
            created_at=now,
            comment=comment,
            author=author,
            restored_from=restored_from or 0,
            active=True,
            ruleset=ruleset,
        )


def read_active(conn: sqlite3.Connection) -> tuple[int, str] | None:
    """``(version, document)`` of the active version, read in one statement, or None.

    The reloader calls this on its own read-only connection.
    """
    row = conn.execute(
        "SELECT v.version, v.document FROM active AS a"
        " JOIN versions AS v ON v.version = a.version WHERE a.id = 1"
    ).fetchone()
    if row is None:
        return None
    return int(row[0]), str(row[1])


def _info(row: dict[str, Any], active: int) -> VersionInfo:
    return VersionInfo(
        version=row["version"],
        content_hash=row["content_hash"],
        created_at=_parse_time(row["created_at"]),
        comment=row["comment"] or "",
        author=row["author"] or "",
        restored_from=row["restored_from"] or 0,
        active=row["version"] == active,
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _format_time(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
