"""Exposures: which visitor was served which arm of which campaign, recorded off the call path.

Every Decide that serves a campaign (reason CAMPAIGN, or HOLDOUT: the visitor is in the
campaign's holdout arm) records one exposure per placement: decision id, visitor,
campaign, variant (``"holdout"`` for the holdout arm), the audience segments matched,
placement and the decision's time. Attribution and the campaign reports
(``server.analytics.attribution``) join them with the event log.

Off the critical path: ``ExposureRecorder.record`` only appends to a buffer; a thread
writes the rows in batches (``server.analytics.exposure_buffer``: the buffer, its
bound, the writer thread and durable mode, shared with the PostgreSQL recorder),
formatting timestamps and segment lists there, not on the request path.

What a stop loses: a clean stop (SIGTERM, ``close()``) nothing; a crash (kill -9, OOM
killer) the exposures still buffered, at most ``flush_interval`` of them plus the
batch being written (SQLite rolls an unfinished transaction back); a power cut also
the commits since the last checkpoint, with ``synchronous = NORMAL``. Durable mode
commits with ``synchronous = FULL`` (the WAL is synced on every commit) before Decide
answers; a write that fails (disk full, the file locked past the busy timeout) fails
its calls with that store error.

Schema (in the profile store's SQLite file; ``SQLiteProfileStore`` creates it)::

    exposures(seq INTEGER PRIMARY KEY, decision_id, visitor_id, source_id, campaign,
              variant, segments, placement, ts, channel, send_id)
      index (campaign, ts)     campaign reports: one campaign's exposures of a period
      index (ts)               segment reports: every exposure of a period
      index (visitor_id)       identity merges, deletion and export of one visitor

Indexes: every exposure is written to each index, and a key that lands at a random
place in a large index dirties a page of its own per row, which SQLite then writes to
the WAL: that, not the row, is what an exposure costs. (campaign, ts) and (ts) grow at
their ends (a few pages per batch); only (visitor_id) is random. Earlier versions also
kept (campaign, visitor_id, ts), (visitor_id, ts) and (source_id): measured on 120,000
rows, 40 us of writer CPU per row against 9 us now. Reports sort a campaign's rows by
visitor themselves; ``visitor_id`` is always the canonical id of ``source_id`` (set
from ``aliases`` when written, re-pointed by identity merges), so the visitor index also
finds every exposure made for an alias.

``visitor_id`` is the canonical id (resolved through ``aliases`` when the row is written,
and re-pointed by the profile store when an ``identify`` merges two profiles, exactly as
the events are), ``source_id`` the id Decide was called with, ``ts`` the fixed-width
ISO-8601 UTC text the events table uses (so the two compare as text), ``segments`` a
JSON array of segment ids. ``channel`` is ``"web"`` for Decide's exposures and the
request's channel for a recorded DecideBatch (``"email"``), with its ``send_id``.

``listener`` (``server.activation.recording``) is told about every batch once it is
committed: that is where stored assignments and served campaigns are recorded.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from decision.profile import format_timestamp
from server.analytics.exposure_buffer import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_CHANNEL,
    DEFAULT_FLUSH_INTERVAL,
    DEFAULT_MAX_PENDING,
    ExposureBuffer,
    Pending,
    RetryLater,
)
from server.errors import StoreUnavailableError
from server.sqlite import reraise, store_error

logger = logging.getLogger("decide.server")

HOLDOUT_VARIANT = "holdout"
"""The variant recorded for a visitor held out of a campaign (reason HOLDOUT)."""

CACHE_KIB = 16 * 1024
"""The writer connection's page cache: the hot index pages stay in it between batches."""

BUSY_TIMEOUT = 5.0

SCHEMA = (
    (
        "CREATE TABLE IF NOT EXISTS exposures ("
        " seq INTEGER PRIMARY KEY, decision_id TEXT NOT NULL, visitor_id TEXT NOT NULL,"
        " source_id TEXT NOT NULL, campaign TEXT NOT NULL, variant TEXT NOT NULL,"
        " segments TEXT NOT NULL, placement TEXT NOT NULL, ts TEXT NOT NULL)"
    ),
    "CREATE INDEX IF NOT EXISTS exposures_by_campaign ON exposures (campaign, ts)",
    "CREATE INDEX IF NOT EXISTS exposures_by_visitor ON exposures (visitor_id)",
    "CREATE INDEX IF NOT EXISTS exposures_ts ON exposures (ts)",
    # Indexes of earlier versions, dropped: see "Indexes" in the module docstring.
    "DROP INDEX IF EXISTS exposures_campaign",
    "DROP INDEX IF EXISTS exposures_visitor",
    "DROP INDEX IF EXISTS exposures_source",
)
"""Statements creating the exposures table and its indexes; idempotent."""

_COLUMNS_ADDED = (
    ("channel", f"TEXT NOT NULL DEFAULT '{DEFAULT_CHANNEL}'"),
    ("send_id", "TEXT NOT NULL DEFAULT ''"),
)
"""Columns added after the table first shipped: added to older files when opened."""

_INSERT = (
    "INSERT INTO exposures"
    " (decision_id, visitor_id, source_id, campaign, variant, segments, placement, ts)"
    " VALUES (?1, coalesce((SELECT canonical FROM aliases WHERE alias = ?2), ?2),"
    " ?2, ?3, ?4, ?5, ?6, ?7)"
)
"""One row per statement: ``executemany`` takes the rows of ``_RowEncoder``."""

_INSERT_JSON = (
    "INSERT INTO exposures"
    " (decision_id, visitor_id, source_id, campaign, variant, segments, placement, ts)"
    " SELECT json_extract(value, '$[0]'),"
    " coalesce((SELECT canonical FROM aliases WHERE alias = json_extract(value, '$[1]')),"
    " json_extract(value, '$[1]')), json_extract(value, '$[1]'),"
    " json_extract(value, '$[2]'), json_extract(value, '$[3]'), json_extract(value, '$[4]'),"
    " json_extract(value, '$[5]'), json_extract(value, '$[6]')"
    " FROM json_each(?) ORDER BY key"
)

_INSERT_TAGGED = (
    "INSERT INTO exposures (decision_id, visitor_id, source_id, campaign, variant, segments,"
    " placement, ts, channel, send_id)"
    " VALUES (?1, coalesce((SELECT canonical FROM aliases WHERE alias = ?2), ?2),"
    " ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
)
"""``_INSERT`` with a channel and send id (``ExposureRecorder.write``), row by row: the
fallback of ``_INSERT_TAGGED_JSON``."""

_INSERT_TAGGED_JSON = (
    "INSERT INTO exposures (decision_id, visitor_id, source_id, campaign, variant, segments,"
    " placement, ts, channel, send_id)"
    " SELECT json_extract(value, '$[0]'),"
    " coalesce((SELECT canonical FROM aliases WHERE alias = json_extract(value, '$[1]')),"
    " json_extract(value, '$[1]')), json_extract(value, '$[1]'),"
    " json_extract(value, '$[2]'), json_extract(value, '$[3]'), json_extract(value, '$[4]'),"
    " json_extract(value, '$[5]'), json_extract(value, '$[6]'), ?2, ?3"
    " FROM json_each(?1) ORDER BY key"
)
"""``_INSERT_JSON`` with a channel and send id (``ExposureRecorder.write``): one
statement per batch, for the reason given there (a row-by-row insert from a batch
send's thread waits for the GIL at every row while other threads compute)."""
"""A whole batch in one statement: its one parameter is a JSON array of the rows.

Why: sqlite3 releases the GIL around every step, and ``executemany`` steps once per
row. Under load each of those re-acquisitions waits behind the request threads, so a
1,000-row batch meant 1,000 hand-offs of the interpreter; measured with h2load, that
made recording cost ~150 us of server CPU per 3-placement Decide, against ~60 us with
one statement per batch (and ~25 us in a quiet single-threaded loop either way)."""

_NUL = json.dumps("\x00")[1:-1]
"""How JSON writes a NUL character. SQLite's JSON functions end text at a NUL, so a
batch holding one is written row by row instead (with ``_INSERT``)."""


def create_schema(conn: sqlite3.Connection | Any) -> None:
    """Create the exposures table and its indexes (``conn``: sqlite3 or sqlite_utils)."""
    for statement in SCHEMA:
        conn.execute(statement)
    present = {row[1] for row in conn.execute("PRAGMA table_info(exposures)")}
    for name, declaration in _COLUMNS_ADDED:
        if name not in present:
            conn.execute(f"ALTER TABLE exposures ADD COLUMN {name} {declaration}")


def _segments_json(segments: Sequence[str]) -> str:
    return json.dumps(list(segments), separators=(",", ":"))


MAX_CACHED_SEGMENT_LISTS = 4096
"""Distinct matched-segment lists whose JSON the writer keeps (a ruleset has few)."""


class _RowEncoder:
    """Turns pending exposures into rows for ``_INSERT`` and ``_INSERT_JSON``.

    A row is ``(decision_id, visitor_id, campaign, variant, segments JSON, placement,
    timestamp)``; the statements resolve the visitor id through ``aliases`` and store
    it as ``source_id``.

    The writer thread holds the GIL while it encodes, so this competes with Decide for
    the interpreter. Matched-segment lists repeat (they come from a few campaigns'
    audiences), so their JSON is kept by value; the exposures of one Decide call share
    one ``now`` object and sit next to each other in the queue, so a timestamp is
    formatted once per call.
    """

    def __init__(self) -> None:
        self._segments: dict[Any, str] = {}

    def rows(self, batch: Sequence[Pending]) -> list[tuple[str, ...]]:
        texts = self._segments
        last_moment: datetime | None = None
        stamp = ""
        rows: list[tuple[str, ...]] = []
        for decision_id, visitor_id, campaign, variant, segments, placement, moment in batch:
            try:
                text = texts.get(segments)
            except TypeError:  # an unhashable list: encode it every time
                text = _segments_json(segments)
            if text is None:
                if len(texts) >= MAX_CACHED_SEGMENT_LISTS:
                    texts.clear()
                text = texts[segments] = _segments_json(segments)
            if moment is not last_moment:
                last_moment, stamp = moment, format_timestamp(moment)
            rows.append((decision_id, visitor_id, campaign, variant, text, placement, stamp))
        return rows


def _has_json(conn: sqlite3.Connection) -> bool:
    """Whether this SQLite has the JSON functions (built in since 3.38, an option before)."""
    try:
        conn.execute("SELECT json_extract('[1]', '$[0]') FROM json_each('[]')").fetchall()
    except sqlite3.OperationalError:
        return False
    return True


class ExposureRecorder(ExposureBuffer):
    """Exposures written to the profile store's SQLite file (``server.analytics.
    exposure_buffer`` does the buffering, the writer thread and durable waits).

    Call ``close()`` once nothing records any more; it writes what is left.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_pending: int = DEFAULT_MAX_PENDING,
        metrics: Any = None,
        start: bool = True,
        durable: bool = False,
        listener: Any = None,
    ) -> None:
        self.path = Path(path)
        super().__init__(
            str(self.path),
            flush_interval=flush_interval,
            batch_size=batch_size,
            max_pending=max_pending,
            metrics=metrics,
            durable=durable,
            listener=listener,
        )
        self._encoder = _RowEncoder()  # used under the write lock
        self._conn = sqlite3.connect(
            str(self.path), timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
        self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
        # Analytics rows: losing the last few hundred milliseconds to a power cut is
        # acceptable, an fsync per batch is not needed (WAL keeps the file consistent).
        # Durable mode promises more: every commit is synced before Decide answers.
        self._conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
        self._conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        create_schema(self._conn)
        self._json = _has_json(self._conn)
        if start:
            self._start()

    def _commit(self, batch: Sequence[Pending]) -> None:
        rows = self._encoder.rows(batch)
        payload = json.dumps(rows, ensure_ascii=False, separators=(",", ":"))
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if self._json and _NUL not in payload:
                    conn.execute(_INSERT_JSON, (payload,))
                else:
                    conn.executemany(_INSERT, rows)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise RetryLater(store_error(exc, "exposure store", self.path)) from exc

    def _close_store(self) -> None:
        self._conn.close()

    def write(self, batch: Sequence[Pending], *, channel: str, send_id: str) -> None:
        """Write ``batch`` tagged with ``channel`` and ``send_id`` now, from the calling
        thread, in one transaction (a batch send: it waits for the disk instead of
        being dropped). Raises the store's error when the write fails."""
        with self._write_lock:
            if self._closed:
                raise StoreUnavailableError("exposure store", str(self.path), "it is closed")
            rows = self._encoder.rows(batch)
            payload = json.dumps(rows, ensure_ascii=False, separators=(",", ":"))
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    if self._json and _NUL not in payload:
                        self._conn.execute(_INSERT_TAGGED_JSON, (payload, channel, send_id))
                    else:
                        tagged = [(*row, channel, send_id) for row in rows]
                        self._conn.executemany(_INSERT_TAGGED, tagged)
                    self._conn.execute("COMMIT")
                except BaseException:
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                reraise(exc, "exposure store", self.path)
        self._after_commit(batch, channel)


def exposures_of(conn: sqlite3.Connection, ids: Iterable[str]) -> list[dict[str, Any]]:
    """Every stored exposure of the visitors ``ids`` (canonical ids: an alias's exposures
    are stored under its canonical id), oldest first (for ExportVisitor)."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    marks = ", ".join("?" * len(wanted))
    rows = conn.execute(
        "SELECT decision_id, source_id, campaign, variant, segments, placement, ts,"
        f" channel, send_id FROM exposures WHERE visitor_id IN ({marks}) ORDER BY ts, seq",
        wanted,
    )
    return [
        {
            "decision_id": decision_id,
            "visitor_id": source_id,
            "campaign": campaign,
            "variant": variant,
            "segments": json.loads(segments),
            "placement": placement,
            "timestamp": ts,
            "channel": channel,
            "send_id": send_id,
        }
        for decision_id, source_id, campaign, variant, segments, placement, ts, channel, send_id in rows
    ]
