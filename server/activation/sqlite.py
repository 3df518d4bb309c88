"""The activation stores on SQLite, in the profile store's file (next to ``aliases``,
``profiles``, ``events`` and ``exposures``, which they read).

Schema (``create_schema``, idempotent; ``SQLiteProfileStore`` runs it when it opens)::

    assignments(visitor_id, campaign, variant, salt, ts)   PK (visitor_id, campaign)
    segment_members(visitor_id, segment, since)            PK (visitor_id, segment)
    segment_changes(seq INTEGER PRIMARY KEY AUTOINCREMENT, visitor_id, segment, entered,
                    ts, reason, merged_into)               index (visitor_id), (ts)
    activation_state(name PRIMARY KEY, value)              the detector's event position,
                                                           baselines, pruned_through
    webhook_cursors(webhook PRIMARY KEY, seq)
    webhook_deliveries(n INTEGER PRIMARY KEY, delivery_id UNIQUE, webhook, url, segments,
                       first_seq, last_seq, changes, attempts, status, http_status, error,
                       created_at, updated_at)             index (webhook, n), (status)
    activation_leases(name PRIMARY KEY, owner, expires)

``visitor_id`` is always a canonical id. ``segment_changes.seq`` is AUTOINCREMENT, so a
seq is never used twice, even after pruning: resume tokens stay unambiguous. The
detector's position is an ``events.seq`` (the events table's rowid): events appended
after it are new. (A rowid can be reused only when the newest event is deleted, by
``DeleteVisitor``; the sweep finds any change missed that way.)

Reads go through a connection per thread (WAL: a reader never waits for a writer, so
Decide can read assignments on the event loop); writes through one connection, each in
one ``BEGIN IMMEDIATE`` transaction under a lock. ``merge_identity``, ``forget`` and
``export`` are run by the profile store inside its own transactions.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import orjson

from decision import Assignment
from decision.profile import format_timestamp
from server.activation.store import (
    Delivery,
    DeliveryStatus,
    EventCursor,
    Identity,
    SegmentChange,
    Served,
)
from server.errors import StoreUnavailableError, SubjectNotFoundError
from server.sqlite import immediate, reraise

__all__ = [
    "SCHEMA",
    "SQLiteActivation",
    "SQLiteAssignments",
    "SQLiteChangeLog",
    "SQLiteLeases",
    "SQLiteWebhookLog",
    "create_schema",
    "export",
    "forget",
    "merge_identity",
]

BUSY_TIMEOUT = 5.0
_CHUNK = 500
_STORE = "activation store"

SCHEMA = (
    (
        "CREATE TABLE IF NOT EXISTS assignments (visitor_id TEXT NOT NULL, campaign TEXT NOT NULL,"
        " variant TEXT NOT NULL, salt TEXT NOT NULL, ts TEXT NOT NULL,"
        " PRIMARY KEY (visitor_id, campaign)) WITHOUT ROWID"
    ),
    (
        "CREATE TABLE IF NOT EXISTS segment_members (visitor_id TEXT NOT NULL,"
        " segment TEXT NOT NULL, since TEXT NOT NULL, PRIMARY KEY (visitor_id, segment))"
        " WITHOUT ROWID"
    ),
    "CREATE INDEX IF NOT EXISTS segment_members_by_segment ON segment_members (segment)",
    (
        "CREATE TABLE IF NOT EXISTS segment_changes (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        " visitor_id TEXT NOT NULL, segment TEXT NOT NULL, entered INTEGER NOT NULL,"
        " ts TEXT NOT NULL, reason TEXT NOT NULL, merged_into TEXT NOT NULL DEFAULT '')"
    ),
    "CREATE INDEX IF NOT EXISTS segment_changes_by_visitor ON segment_changes (visitor_id)",
    "CREATE INDEX IF NOT EXISTS segment_changes_ts ON segment_changes (ts)",
    "CREATE TABLE IF NOT EXISTS activation_state (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS webhook_cursors (webhook TEXT PRIMARY KEY, seq INTEGER NOT NULL)",
    (
        "CREATE TABLE IF NOT EXISTS webhook_deliveries (n INTEGER PRIMARY KEY,"
        " delivery_id TEXT NOT NULL UNIQUE, webhook TEXT NOT NULL, url TEXT NOT NULL,"
        " segments TEXT NOT NULL, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL,"
        " changes INTEGER NOT NULL, attempts INTEGER NOT NULL, status TEXT NOT NULL,"
        " http_status INTEGER NOT NULL, error TEXT NOT NULL, created_at TEXT NOT NULL,"
        " updated_at TEXT NOT NULL)"
    ),
    "CREATE INDEX IF NOT EXISTS webhook_deliveries_by_webhook ON webhook_deliveries (webhook, n)",
    "CREATE INDEX IF NOT EXISTS webhook_deliveries_by_status ON webhook_deliveries (status)",
    (
        "CREATE TABLE IF NOT EXISTS activation_leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL,"
        " expires REAL NOT NULL)"
    ),
)
"""Statements creating the activation tables; idempotent."""

_EVENT_CURSOR = "event_cursor"
_PRUNED = "pruned_through"
_BASELINE = "baseline:"

_RECORD = (
    "INSERT INTO assignments (visitor_id, campaign, variant, salt, ts)"
    " VALUES (coalesce((SELECT canonical FROM aliases WHERE alias = ?1), ?1), ?2, ?3, ?4, ?5)"
    " ON CONFLICT (visitor_id, campaign) DO UPDATE SET variant = excluded.variant,"
    " salt = excluded.salt, ts = excluded.ts"
    " WHERE assignments.variant != excluded.variant OR assignments.salt != excluded.salt"
)
_RECORD_JSON = (
    "INSERT INTO assignments (visitor_id, campaign, variant, salt, ts)"
    " SELECT coalesce((SELECT canonical FROM aliases WHERE alias = json_extract(value, '$[0]')),"
    " json_extract(value, '$[0]')), json_extract(value, '$[1]'), json_extract(value, '$[2]'),"
    " json_extract(value, '$[3]'), json_extract(value, '$[4]') FROM json_each(?) WHERE true"
    " ON CONFLICT (visitor_id, campaign) DO UPDATE SET variant = excluded.variant,"
    " salt = excluded.salt, ts = excluded.ts"
    " WHERE assignments.variant != excluded.variant OR assignments.salt != excluded.salt"
)
"""``_RECORD`` for a whole batch in one statement (one GIL hand-off instead of one per
row: see ``server.analytics.exposures``)."""

_CHANGE_COLUMNS = "seq, visitor_id, segment, entered, ts, reason, merged_into"
_DELIVERY_COLUMNS = (
    "delivery_id, webhook, url, segments, first_seq, last_seq, changes, attempts, status,"
    " http_status, error, created_at, updated_at"
)


def create_schema(conn: sqlite3.Connection | Any) -> None:
    """Create the activation tables (``conn``: sqlite3 or sqlite_utils)."""
    for statement in SCHEMA:
        conn.execute(statement)


# -- run by the profile store, inside its transactions -----------------------------------


def merge_identity(conn: Any, source: str, target: str, at: datetime) -> None:
    """``source`` is merged into ``target`` (see ``server.activation.store``): its
    assignments move (``source``'s win), and it leaves its segments (reason merge)."""
    conn.execute(
        "INSERT INTO assignments (visitor_id, campaign, variant, salt, ts)"
        " SELECT ?2, campaign, variant, salt, ts FROM assignments WHERE visitor_id = ?1"
        " ON CONFLICT (visitor_id, campaign) DO UPDATE SET variant = excluded.variant,"
        " salt = excluded.salt, ts = excluded.ts",
        (source, target),
    )
    conn.execute("DELETE FROM assignments WHERE visitor_id = ?", (source,))
    conn.execute(
        "INSERT INTO segment_changes (visitor_id, segment, entered, ts, reason, merged_into)"
        " SELECT visitor_id, segment, 0, ?2, 'merge', ?3 FROM segment_members"
        " WHERE visitor_id = ?1 ORDER BY segment",
        (source, format_timestamp(at), target),
    )
    conn.execute("DELETE FROM segment_members WHERE visitor_id = ?", (source,))


def forget(conn: Any, ids: Sequence[str]) -> int:
    """Delete the assignments, memberships and changes of ``ids``; rows deleted."""
    deleted = 0
    for chunk in _chunks(list(ids)):
        marks = _marks(chunk)
        for statement in (
            f"DELETE FROM assignments WHERE visitor_id IN ({marks})",
            f"DELETE FROM segment_members WHERE visitor_id IN ({marks})",
            f"DELETE FROM segment_changes WHERE visitor_id IN ({marks})",
            f"DELETE FROM segment_changes WHERE merged_into IN ({marks})",
        ):
            deleted += conn.execute(statement, chunk).rowcount
    return deleted


def export(conn: sqlite3.Connection, ids: Sequence[str]) -> dict[str, Any]:
    """``{"assignments": [...], "segment_changes": [...]}`` of ``ids`` (ExportVisitor)."""
    wanted = list(dict.fromkeys(ids))
    marks = _marks(wanted)
    assignments = [
        {"campaign": c, "variant": v, "salt": s, "timestamp": ts}
        for c, v, s, ts in conn.execute(
            f"SELECT campaign, variant, salt, ts FROM assignments WHERE visitor_id IN ({marks})"
            " ORDER BY ts, campaign",
            wanted,
        )
    ]
    changes = [
        {
            "visitor_id": visitor_id,
            "segment": segment,
            "change": "entered" if entered else "left",
            "timestamp": ts,
            "reason": reason,
        }
        for visitor_id, segment, entered, ts, reason in conn.execute(
            "SELECT visitor_id, segment, entered, ts, reason FROM segment_changes"
            f" WHERE visitor_id IN ({marks}) ORDER BY seq",
            wanted,
        )
    ]
    return {"assignments": assignments, "segment_changes": changes}


# -- the stores -----------------------------------------------------------------------


class _Database:
    """Connections to one file: a read connection per thread, one write connection."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._closed = False
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(
                str(self.path), timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
            self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
            self._conn.execute("PRAGMA synchronous = FULL")
            with self._write():
                create_schema(self._conn)
        except sqlite3.Error as exc:
            reraise(exc, _STORE, self.path)

    def close(self) -> None:
        """Close every connection. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._conn.close()
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()

    # -- plumbing ---------------------------------------------------------------------

    def _state(self, name: str) -> str | None:
        try:
            row = (
                self._reader()
                .execute("SELECT value FROM activation_state WHERE name = ?", (name,))
                .fetchone()
            )
        except sqlite3.Error as exc:
            reraise(exc, _STORE, self.path)
        return None if row is None else str(row[0])

    def _set_state(self, name: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO activation_state (name, value) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    def _reader(self) -> sqlite3.Connection:
        """This thread's read connection (opened on first use, closed by ``close``)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            raise StoreUnavailableError(_STORE, str(self.path), "the store is closed")
        try:
            conn = sqlite3.connect(
                str(self.path), timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA query_only = ON")
        except sqlite3.Error as exc:
            reraise(exc, _STORE, self.path)
        with self._readers_lock:
            if self._closed:
                conn.close()
                raise StoreUnavailableError(_STORE, str(self.path), "the store is closed")
            self._readers.append(conn)
        self._local.conn = conn
        return conn

    def _write(self) -> AbstractContextManager[None]:
        return immediate(
            self._conn, self._lock, store=_STORE, path=self.path, closed=lambda: self._closed
        )


class _Store:
    """A store sharing a ``_Database`` with the others."""

    def __init__(self, db: _Database) -> None:
        self.db = db
        self.path = db.path
        self._conn = db._conn
        self._reader = db._reader
        self._write = db._write
        self._state = db._state
        self._set_state = db._set_state


class SQLiteAssignments(_Store):
    """``AssignmentStore`` on SQLite."""

    def identities(self, visitor_ids: Sequence[str]) -> dict[str, Identity]:
        wanted = list(dict.fromkeys(visitor_ids))
        canonical = {visitor_id: visitor_id for visitor_id in wanted}
        pins: dict[str, dict[str, Assignment]] = {}
        try:
            conn = self._reader()
            for chunk in _chunks(wanted):
                for alias, target in conn.execute(
                    f"SELECT alias, canonical FROM aliases WHERE alias IN ({_marks(chunk)})",
                    chunk,
                ):
                    canonical[alias] = target
            targets = list(dict.fromkeys(canonical.values()))
            for chunk in _chunks(targets):
                for visitor_id, campaign, variant, salt in conn.execute(
                    "SELECT visitor_id, campaign, variant, salt FROM assignments"
                    f" WHERE visitor_id IN ({_marks(chunk)})",
                    chunk,
                ):
                    pins.setdefault(visitor_id, {})[campaign] = Assignment(variant, salt)
        except sqlite3.Error as exc:
            reraise(exc, _STORE, self.path)
        return {
            visitor_id: Identity(target, pins.get(target, {}))
            for visitor_id, target in canonical.items()
        }

    def record(self, served: Sequence[Served]) -> int:
        latest = {(s.visitor_id, s.campaign): s for s in served}
        if not latest:
            return 0
        stamps: dict[datetime, str] = {}  # a batch's rows share a few moments
        rows = []
        for s in latest.values():
            stamp = stamps.get(s.at)
            if stamp is None:
                stamp = stamps[s.at] = format_timestamp(s.at)
            rows.append((s.visitor_id, s.campaign, s.variant, s.salt, stamp))
        payload = json.dumps(rows, ensure_ascii=False, separators=(",", ":"))
        written = 0
        with self._write():
            if "\\u0000" in payload:  # SQLite's JSON functions stop at a NUL
                for row in rows:
                    written += self._conn.execute(_RECORD, row).rowcount
            else:
                written = self._conn.execute(_RECORD_JSON, (payload,)).rowcount
        return written


class SQLiteChangeLog(_Store):
    """``ChangeLog`` on SQLite."""

    def changed_visitors(self, limit: int) -> EventCursor:
        conn = self._reader()
        try:
            row = conn.execute(
                "SELECT value FROM activation_state WHERE name = ?", (_EVENT_CURSOR,)
            ).fetchone()
            if row is None:
                (end,) = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
                with self._write():
                    self._conn.execute(
                        "INSERT INTO activation_state (name, value) VALUES (?, ?)"
                        " ON CONFLICT (name) DO NOTHING",
                        (_EVENT_CURSOR, str(end)),
                    )
                return self.changed_visitors(limit)
            start = int(row[0])
            rows = conn.execute(
                "SELECT seq, visitor_id FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                (start, limit),
            ).fetchall()
            if not rows:
                return EventCursor(start, start, ())
            ids = list(dict.fromkeys(visitor_id for _, visitor_id in rows))
            resolved = dict.fromkeys(ids)
            for chunk in _chunks(ids):
                for alias, target in conn.execute(
                    f"SELECT alias, canonical FROM aliases WHERE alias IN ({_marks(chunk)})",
                    chunk,
                ):
                    resolved[alias] = target
        except sqlite3.Error as exc:
            reraise(exc, _STORE, self.path)
        visitors = tuple(dict.fromkeys(target or v for v, target in resolved.items()))
        return EventCursor(start, rows[-1][0], visitors)

    def documents(self, visitor_ids: Collection[str]) -> dict[str, dict[str, object]]:
        found: dict[str, dict[str, object]] = {}
        try:
            conn = self._reader()
            for chunk in _chunks(list(visitor_ids)):
                for visitor_id, text in conn.execute(
                    f"SELECT visitor_id, document FROM profiles WHERE visitor_id IN ({_marks(chunk)})",
                    chunk,
                ):
                    found[visitor_id] = _document(text)
        except sqlite3.Error as exc:
            reraise(exc, _STORE, self.path)
        return found

    def scan(self, after: str, limit: int) -> list[tuple[str, dict[str, object]]]:
        try:
            rows = (
                self._reader()
                .execute(
                    "SELECT visitor_id, document FROM profiles WHERE visitor_id > ?"
                    " ORDER BY visitor_id LIMIT ?",
                    (after, limit),
                )
                .fetchall()
            )
        except sqlite3.Error as exc:
            reraise(exc, _STORE, self.path)
        return [(visitor_id, _document(text)) for visitor_id, text in rows]

    def orphans(self, limit: int) -> list[str]:
        try:
            rows = (
                self._reader()
                .execute(
                    "SELECT DISTINCT visitor_id FROM segment_members WHERE NOT EXISTS"
                    " (SELECT 1 FROM profiles WHERE profiles.visitor_id ="
                    " segment_members.visitor_id) LIMIT ?",
                    (limit,),
                )
                .fetchall()
            )
        except sqlite3.Error as exc:
            reraise(exc, _STORE, self.path)
        return [row[0] for row in rows]

    def reconcile(
        self,
        members: Mapping[str, Collection[str]],
        segments: Collection[str],
        *,
        reason: str,
        at: datetime,
        silent: Collection[str] = (),
        cursor: EventCursor | None = None,
    ) -> list[SegmentChange]:
        watched = set(segments)
        quiet = set(silent)
        stamp = format_timestamp(at)
        changes: list[SegmentChange] = []
        with self._write():
            conn = self._conn
            if cursor is not None:
                moved = conn.execute(
                    "UPDATE activation_state SET value = ? WHERE name = ? AND value = ?",
                    (str(cursor.end), _EVENT_CURSOR, str(cursor.start)),
                ).rowcount
                if not moved:
                    return []
            ids = list(members)
            stored: dict[str, set[str]] = {visitor_id: set() for visitor_id in ids}
            for chunk in _chunks(ids):
                for visitor_id, segment in conn.execute(
                    "SELECT visitor_id, segment FROM segment_members"
                    f" WHERE visitor_id IN ({_marks(chunk)})",
                    chunk,
                ):
                    if segment in watched:
                        stored[visitor_id].add(segment)
            for visitor_id in ids:
                now_in = watched.intersection(members[visitor_id])
                before = stored[visitor_id]
                for segment in sorted(now_in - before):
                    conn.execute(
                        "INSERT INTO segment_members (visitor_id, segment, since) VALUES (?, ?, ?)",
                        (visitor_id, segment, stamp),
                    )
                    if segment not in quiet:
                        changes.append(self._change(visitor_id, segment, True, stamp, reason))
                for segment in sorted(before - now_in):
                    conn.execute(
                        "DELETE FROM segment_members WHERE visitor_id = ? AND segment = ?",
                        (visitor_id, segment),
                    )
                    if segment not in quiet:
                        changes.append(self._change(visitor_id, segment, False, stamp, reason))
        return changes

    def _change(
        self, visitor_id: str, segment: str, entered: bool, stamp: str, reason: str
    ) -> SegmentChange:
        seq = self._conn.execute(
            "INSERT INTO segment_changes (visitor_id, segment, entered, ts, reason)"
            " VALUES (?, ?, ?, ?, ?)",
            (visitor_id, segment, int(entered), stamp, reason),
        ).lastrowid
        assert seq is not None
        return SegmentChange(seq, visitor_id, segment, entered, _moment(stamp), reason)

    def changes_after(
        self, seq: int, segments: Collection[str] | None, limit: int
    ) -> list[SegmentChange]:
        where, params = "seq > ?", [str(seq)]
        if segments is not None:
            chosen = list(segments)
            if not chosen:
                return []
            where += f" AND segment IN ({_marks(chosen)})"
            params += chosen
        try:
            rows = (
                self._reader()
                .execute(
                    f"SELECT {_CHANGE_COLUMNS} FROM segment_changes WHERE {where}"
                    " ORDER BY seq LIMIT ?",
                    [*params, limit],
                )
                .fetchall()
            )
        except sqlite3.Error as exc:
            reraise(exc, _STORE, self.path)
        return [_change_of(row) for row in rows]

    def last_seq(self) -> int:
        try:
            conn = self._reader()
            row = conn.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'segment_changes'"
            ).fetchone()
        except sqlite3.Error as exc:
            reraise(exc, _STORE, self.path)
        return int(row[0]) if row else 0

    def pruned_through(self) -> int:
        return int(self._state(_PRUNED) or 0)

    def prune(self, before: datetime) -> int:
        with self._write():
            row = self._conn.execute(
                "SELECT max(seq) FROM segment_changes WHERE ts < ?", (format_timestamp(before),)
            ).fetchone()
            if row[0] is None:
                return 0
            through = max(int(row[0]), self.pruned_through())
            deleted = self._conn.execute(
                "DELETE FROM segment_changes WHERE seq <= ?", (through,)
            ).rowcount
            self._set_state(_PRUNED, str(through))
        return int(deleted)

    def baselines(self) -> dict[str, str]:
        try:
            rows = (
                self._reader()
                .execute(
                    "SELECT name, value FROM activation_state WHERE name LIKE ?",
                    (_BASELINE + "%",),
                )
                .fetchall()
            )
        except sqlite3.Error as exc:
            reraise(exc, _STORE, self.path)
        return {name[len(_BASELINE) :]: value for name, value in rows}

    def set_baseline(self, segment: str, definition: str) -> None:
        with self._write():
            self._set_state(_BASELINE + segment, definition)

    def drop_segments(self, keep: Collection[str]) -> int:
        kept = list(keep)
        marks = _marks(kept) if kept else "''"
        with self._write():
            dropped = self._conn.execute(
                f"DELETE FROM segment_members WHERE segment NOT IN ({marks})", kept
            ).rowcount
            names = [_BASELINE + s for s in kept]
            self._conn.execute(
                "DELETE FROM activation_state WHERE name LIKE ?"
                f" AND name NOT IN ({_marks(names) if names else chr(39) * 2})",
                [_BASELINE + "%", *names],
            )
        return int(dropped)


class SQLiteWebhookLog(_Store):
    """``WebhookLog`` on SQLite."""

    def cursor(self, webhook: str, default: int) -> int:
        row = (
            self._reader()
            .execute("SELECT seq FROM webhook_cursors WHERE webhook = ?", (webhook,))
            .fetchone()
        )
        if row is not None:
            return int(row[0])
        with self._write():
            self._conn.execute(
                "INSERT INTO webhook_cursors (webhook, seq) VALUES (?, ?)"
                " ON CONFLICT (webhook) DO NOTHING",
                (webhook, default),
            )
            (seq,) = self._conn.execute(
                "SELECT seq FROM webhook_cursors WHERE webhook = ?", (webhook,)
            ).fetchone()
        return int(seq)

    def create(
        self,
        webhook: str,
        url: str,
        segments: Sequence[str],
        changes: Sequence[SegmentChange],
        *,
        expected_cursor: int,
        at: datetime,
    ) -> Delivery | None:
        if not changes:
            raise ValueError("a delivery carries at least one change")
        stamp = format_timestamp(at)
        delivery = Delivery(
            delivery_id=uuid.uuid4().hex,
            webhook=webhook,
            url=url,
            segments=tuple(segments),
            first_seq=changes[0].seq,
            last_seq=changes[-1].seq,
            changes=len(changes),
            attempts=0,
            status=DeliveryStatus.PENDING,
            http_status=0,
            error="",
            created_at=_moment(stamp),
            updated_at=_moment(stamp),
        )
        with self._write():
            moved = self._conn.execute(
                "UPDATE webhook_cursors SET seq = ? WHERE webhook = ? AND seq = ?",
                (delivery.last_seq, webhook, expected_cursor),
            ).rowcount
            if not moved:
                return None
            self._conn.execute(
                f"INSERT INTO webhook_deliveries ({_DELIVERY_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, 0, '', ?, ?)",
                (
                    delivery.delivery_id,
                    webhook,
                    url,
                    json.dumps(list(segments)),
                    delivery.first_seq,
                    delivery.last_seq,
                    delivery.changes,
                    delivery.status,
                    stamp,
                    stamp,
                ),
            )
        return delivery

    def unfinished(self, webhook: str) -> list[Delivery]:
        return self._deliveries(
            "webhook = ? AND status IN (?, ?) ORDER BY n",
            [webhook, *DeliveryStatus.UNFINISHED],
        )

    def update(
        self,
        delivery_id: str,
        *,
        status: str,
        attempts: int,
        http_status: int,
        error: str,
        at: datetime,
    ) -> None:
        with self._write():
            self._conn.execute(
                "UPDATE webhook_deliveries SET status = ?, attempts = ?, http_status = ?,"
                " error = ?, updated_at = ? WHERE delivery_id = ?",
                (status, attempts, http_status, error[:1000], format_timestamp(at), delivery_id),
            )

    def deliveries(self, webhook: str, status: str, limit: int) -> list[Delivery]:
        where, params = "1", []
        if webhook:
            where += " AND webhook = ?"
            params.append(webhook)
        if status:
            where += " AND status = ?"
            params.append(status)
        return self._deliveries(f"{where} ORDER BY n DESC LIMIT ?", [*params, limit])

    def get(self, delivery_id: str) -> Delivery | None:
        found = self._deliveries("delivery_id = ?", [delivery_id])
        return found[0] if found else None

    def redeliver(self, delivery_id: str, at: datetime) -> Delivery:
        with self._write():
            row = self._conn.execute(
                "SELECT status FROM webhook_deliveries WHERE delivery_id = ?", (delivery_id,)
            ).fetchone()
            if row is None:
                raise SubjectNotFoundError(f"no webhook delivery {delivery_id!r}")
            if row[0] not in DeliveryStatus.REDELIVERABLE:
                raise ValueError(
                    f"delivery {delivery_id} is {row[0]}: only dead or blocked deliveries"
                    " are sent again"
                )
            self._conn.execute(
                "UPDATE webhook_deliveries SET status = ?, attempts = 0, error = '',"
                " updated_at = ? WHERE delivery_id = ?",
                (DeliveryStatus.PENDING, format_timestamp(at), delivery_id),
            )
        found = self.get(delivery_id)
        assert found is not None
        return found

    def prune(self, before: datetime) -> int:
        with self._write():
            deleted = self._conn.execute(
                "DELETE FROM webhook_deliveries WHERE updated_at < ? AND status NOT IN (?, ?)",
                (format_timestamp(before), *DeliveryStatus.UNFINISHED),
            ).rowcount
        return int(deleted)

    def _deliveries(self, where: str, params: Sequence[Any]) -> list[Delivery]:
        try:
            rows = (
                self._reader()
                .execute(
                    f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries WHERE {where}", params
                )
                .fetchall()
            )
        except sqlite3.Error as exc:
            reraise(exc, _STORE, self.path)
        return [_delivery_of(row) for row in rows]


class SQLiteLeases(_Store):
    """``Leases`` on SQLite."""

    def acquire(self, name: str, owner: str, ttl: float, now: float) -> bool:
        with self._write():
            self._conn.execute(
                "INSERT INTO activation_leases (name, owner, expires) VALUES (?1, ?2, ?3)"
                " ON CONFLICT (name) DO UPDATE SET owner = ?2, expires = ?3"
                " WHERE activation_leases.owner = ?2 OR activation_leases.expires < ?4",
                (name, owner, now + ttl, now),
            )
            (holder,) = self._conn.execute(
                "SELECT owner FROM activation_leases WHERE name = ?", (name,)
            ).fetchone()
        return bool(holder == owner)

    def release(self, name: str, owner: str) -> None:
        with self._write():
            self._conn.execute(
                "UPDATE activation_leases SET expires = 0 WHERE name = ? AND owner = ?",
                (name, owner),
            )


class SQLiteActivation:
    """Every activation store on one SQLite file, sharing its connections: thread-safe,
    and several processes may share the file. Use as a context manager or ``close()``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db = _Database(path)
        self.assignments = SQLiteAssignments(self._db)
        self.changes = SQLiteChangeLog(self._db)
        self.webhooks = SQLiteWebhookLog(self._db)
        self.leases = SQLiteLeases(self._db)

    def close(self) -> None:
        """Close every connection. Idempotent."""
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _document(text: str) -> dict[str, object]:
    # The profile store writes large integers with json after a space (its _dumps).
    value: dict[str, object] = json.loads(text) if text[:1] == " " else orjson.loads(text)
    return value


def _moment(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp).astimezone(UTC)


def _change_of(row: Sequence[Any]) -> SegmentChange:
    seq, visitor_id, segment, entered, ts, reason, merged_into = row
    return SegmentChange(seq, visitor_id, segment, bool(entered), _moment(ts), reason, merged_into)


def _delivery_of(row: Sequence[Any]) -> Delivery:
    (
        delivery_id,
        webhook,
        url,
        segments,
        first_seq,
        last_seq,
        changes,
        attempts,
        status,
        http_status,
        error,
        created_at,
        updated_at,
    ) = row
    return Delivery(
        delivery_id,
        webhook,
        url,
        tuple(json.loads(segments)),
        first_seq,
        last_seq,
        changes,
        attempts,
        status,
        http_status,
        error,
        _moment(created_at),
        _moment(updated_at),
    )


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _marks(chunk: Iterable[object]) -> str:
    return ", ".join("?" for _ in chunk)
