"""The versioned rules store in PostgreSQL, and how every decider learns of a publish.

Tables (``server.postgres.schema``)::

    rules_versions(version integer PRIMARY KEY, document, content_hash, created_at,
                   comment, author, restored_from)
    rules_active(id integer PRIMARY KEY CHECK (id = 1), version, updated_at)

Every publish and rollback is one transaction that first takes ``LOCK TABLE
rules_versions IN SHARE ROW EXCLUSIVE MODE``: that mode conflicts with itself, so
writers on every decider queue behind each other (as SQLite's write lock makes them),
while readers, which take ACCESS SHARE, never wait. Under that lock the
``expected_version`` check, the insert of version ``max + 1`` and the move of the
active pointer are atomic, and version numbers have no gaps (a sequence would leave
one for every rolled-back publish). A store opened on an empty database seeds the
default document, under the same lock, so two deciders starting at once seed it once.

Propagation: the publishing transaction runs ``pg_notify('decide_rules', version)``,
which PostgreSQL delivers to every listener when (and only if) it commits.
``PostgresRulesWatcher`` keeps a dedicated connection in ``LISTEN decide_rules`` and
wakes its reloader on each notification. Notifications are lost while that
connection is down; so the reloader also polls every ``poll_interval`` (one
primary-key read of ``rules_active``), and the watcher wakes it after each reconnect.
A decider therefore serves a publish within ``poll_interval`` (0.2 s by default) even
when no notification reaches it, and within milliseconds when one does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg

import decision
from server.errors import StaleVersionError, VersionNotFoundError
from server.logs import FaultLog
from server.postgres.connections import Database
from server.rules import documents
from server.rules.store import SEED_AUTHOR, VersionInfo

__all__ = ["CHANNEL", "PostgresRulesStore", "PostgresRulesWatcher"]

logger = logging.getLogger("decide.reloader")

CHANNEL = "decide_rules"
"""The notification channel of publishes; the payload is the new active version."""

STORE = "rules store"

_COLUMNS = "version, content_hash, created_at, comment, author, restored_from"
_ACTIVE = "(SELECT version FROM rules_active WHERE id = 1)"


class PostgresRulesStore:
    """A ``RulesStore`` in a PostgreSQL database, shared by every decider using it.
    Thread-safe (each call borrows a pooled connection). The ``Database`` belongs to
    the caller."""

    def __init__(self, db: Database, *, seed: bool = True) -> None:
        self._db = db
        self.location = db.where
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

        Raises ``InvalidRulesError`` (nothing is written), ``StaleVersionError``, and
        the store errors of ``server.postgres.connections``."""
        ruleset = documents.compile_text(document_json)
        with self._db.transaction(STORE) as conn:
            _lock(conn)
            _check_expected(conn, expected_version)
            return _insert(conn, document_json, ruleset, comment, author, None)

    def rollback(
        self,
        version: int,
        *,
        comment: str = "",
        expected_version: int | None = None,
        author: str = "",
    ) -> VersionInfo:
        """Make the document of ``version`` active again, as a new version whose
        ``restored_from`` is ``version``. Raises like ``publish``, and
        ``VersionNotFoundError``."""
        _, document_json = self.get(version)
        ruleset = documents.compile_text(document_json)  # it may predate an engine change
        if not comment:
            comment = f"rollback to version {version}"
        with self._db.transaction(STORE) as conn:
            _lock(conn)
            _check_expected(conn, expected_version)
            return _insert(conn, document_json, ruleset, comment, author, version)

    def publish_if_pristine(
        self,
        document_json: str,
        *,
        comment: str = "",
        author: str = SEED_AUTHOR,
        replace_default: bool = True,
    ) -> VersionInfo | None:
        """Publish only into a store nobody has published to yet (see the SQLite
        store); None otherwise."""
        ruleset = documents.compile_text(document_json)
        with self._db.transaction(STORE) as conn:
            _lock(conn)
            rows = conn.execute(
                "SELECT version, author FROM rules_versions ORDER BY version LIMIT 2"
            ).fetchall()
            pristine = not rows or (
                replace_default and len(rows) == 1 and rows[0][1] == SEED_AUTHOR
            )
            if not pristine:
                return None
            return _insert(conn, document_json, ruleset, comment, author, None)

    # -- reads ----------------------------------------------------------------------

    def get(self, version: int | None = None) -> tuple[VersionInfo, str]:
        """The metadata and exact document text of ``version`` (default: the active one)."""
        with self._db.connection(STORE) as conn:
            # One statement: the active pointer and the row agree.
            row = conn.execute(
                f"SELECT {_COLUMNS}, document, {_ACTIVE} FROM rules_versions WHERE version ="
                f" coalesce(%s, {_ACTIVE})",
                (version,),
            ).fetchone()
        if row is None:
            raise VersionNotFoundError(version or 0)
        return _info(row, row[7] or 0), row[6]

    def list_versions(self, limit: int = 50) -> list[VersionInfo]:
        """Up to ``limit`` versions, newest first."""
        with self._db.connection(STORE) as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS}, {_ACTIVE} AS active FROM rules_versions"
                " ORDER BY version DESC LIMIT %s",
                (limit,),
            ).fetchall()
        return [_info(row, row[6] or 0) for row in rows]

    def active_version(self) -> int:
        """The active version number; 0 for a store with no version."""
        with self._db.connection(STORE) as conn:
            row = conn.execute("SELECT version FROM rules_active WHERE id = 1").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        """Nothing of its own to release: the ``Database`` is the caller's."""


class PostgresRulesWatcher:
    """A ``RulesWatcher``: LISTEN on a dedicated connection, polling through the pool.

    ``poll`` reads the active version and its row's ``xmin`` (the id of the
    transaction that wrote the row), so a row rewritten in place by hand is noticed as
    well as a new version; the document is read only when that pair changed.
    ``reconnect_delay``: seconds between attempts to re-establish the listening
    connection.
    """

    def __init__(self, db: Database, *, reconnect_delay: float = 1.0) -> None:
        self._db = db
        self._reconnect_delay = reconnect_delay
        self._seen: tuple[Any, ...] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listening = threading.Event()

    @property
    def listening(self) -> bool:
        """Whether the LISTEN connection is up (notifications arrive)."""
        return self._listening.is_set()

    def start(self, wake: Callable[[], None]) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._listen, args=(wake,), name="decide-rules-listen", daemon=True
        )
        self._thread.start()

    def poll(self) -> tuple[int, str] | None:
        with self._db.connection(STORE) as conn:
            key = conn.execute(
                "SELECT a.version, v.xmin::text FROM rules_active AS a"
                " JOIN rules_versions AS v ON v.version = a.version WHERE a.id = 1"
            ).fetchone()
            if key is None or key == self._seen:
                return None
            row = conn.execute(
                "SELECT version, document FROM rules_versions WHERE version = %s", (key[0],)
            ).fetchone()
        if row is None:  # the version went away between the two reads: next poll
            return None
        self._seen = key
        return int(row[0]), str(row[1])

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)

    def _listen(self, wake: Callable[[], None]) -> None:
        faults = FaultLog(
            logger, f"listening for rules changes on {self._db.where}", "listen_failed"
        )
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._db.url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    faults.ok()
                    wake()  # whatever was published while nobody listened
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=0.5):
                            wake()
            except psycopg.Error as exc:
                faults.failed(exc)
            finally:
                self._listening.clear()
            wake()  # notifications may have been lost: poll now, and on every interval
            self._stop.wait(self._reconnect_delay)


def _lock(conn: psycopg.Connection[Any]) -> None:
    """Queue behind every other rules writer (see the module docstring)."""
    conn.execute("LOCK TABLE rules_versions IN SHARE ROW EXCLUSIVE MODE")


def _check_expected(conn: psycopg.Connection[Any], expected_version: int | None) -> None:
    if expected_version is None:
        return
    row = conn.execute("SELECT version FROM rules_active WHERE id = 1").fetchone()
    active = int(row[0]) if row else 0
    if expected_version != active:
        raise StaleVersionError(expected_version, active)


def _insert(
    conn: psycopg.Connection[Any],
    document_json: str,
    ruleset: decision.Ruleset,
    comment: str,
    author: str,
    restored_from: int | None,
) -> VersionInfo:
    now = datetime.now(UTC)
    row = conn.execute(
        "INSERT INTO rules_versions"
        " (version, document, content_hash, created_at, comment, author, restored_from)"
        " SELECT coalesce(max(version), 0) + 1, %s, %s, %s, %s, %s, %s FROM rules_versions"
        " RETURNING version",
        (document_json, ruleset.version, now, comment, author, restored_from),
    ).fetchone()
    assert row is not None
    version = int(row[0])
    conn.execute(
        "INSERT INTO rules_active (id, version, updated_at) VALUES (1, %s, %s)"
        " ON CONFLICT (id) DO UPDATE SET version = excluded.version,"
        " updated_at = excluded.updated_at",
        (version, now),
    )
    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(version)))
    return VersionInfo(
        version=version,
        content_hash=ruleset.version,
        created_at=now,
        comment=comment,
        author=author,
        restored_from=restored_from or 0,
        active=True,
        ruleset=ruleset,
    )


def _info(row: tuple[Any, ...], active: int) -> VersionInfo:
    version, content_hash, created_at, comment, author, restored_from = row[:6]
    return VersionInfo(
        version=int(version),
        content_hash=content_hash,
        created_at=created_at.astimezone(UTC),
        comment=comment or "",
        author=author or "",
        restored_from=restored_from or 0,
        active=version == active,
    )
