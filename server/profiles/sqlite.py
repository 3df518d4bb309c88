"""The visitor profile store: an append-only event log and one profile row per visitor.

Schema (created on first open, next to the rules tables in the same file by default)::

    events(seq INTEGER PRIMARY KEY, event_id TEXT UNIQUE, visitor_id TEXT, source_id TEXT,
           type TEXT, ts TEXT, properties TEXT)          -- index (visitor_id, ts, event_id)
    aliases(alias TEXT PRIMARY KEY, canonical TEXT)      -- index (canonical)
    profiles(visitor_id TEXT PRIMARY KEY, document TEXT, state TEXT, activity_key TEXT)
                                                         -- index (activity_key, visitor_id)
    exposures(...)                                       -- see server.analytics.exposures
    assignments(...), segment_members(...), ...          -- see server.activation.sqlite

``events.visitor_id`` is the canonical id (after identify merges), ``source_id`` the id
the event was sent with. ``profiles.state`` is ``decision.profile``'s fold state and
``document`` its rendering, which is what ``get`` returns; ``activity_key`` the
coverage key of the state (``server.profiles.folding``; null in rows written before the
column existed).

Writes. ``track`` is one ``BEGIN IMMEDIATE`` transaction per batch: insert the events
whose ``event_id`` is new, merge profiles on new ``identify`` events, fold the new
events into the affected states (loaded in one query) and upsert state and document,
commit, then drop this process's cache entries for those visitors. It returns only
after the commit.

Durability: WAL with ``synchronous=FULL`` on the writing connection. In WAL mode FULL
syncs the WAL at every commit, so an acknowledged batch survives a process crash and
a power loss (on a disk that honours fsync). ``NORMAL`` would survive a process crash
only: a power cut could lose the last commits. The price is one fsync per batch, about
1 ms here, which is why events are tracked in batches.

Checkpoints run off the commit path: a background thread (its own connection, also
``synchronous=FULL``, so the database file is synced before the WAL is reused) copies
the WAL into the database file every ``CHECKPOINT_INTERVAL`` seconds without blocking
writers. Once the WAL holds ``WAL_RESTART_FRAMES`` frames, it finishes the pass while
holding this store's write lock (only the frames of the last moments are left), so
that the next commit starts the WAL over from its beginning: the WAL stays about
16 MiB and is overwritten in place, and syncing an overwrite is cheaper than syncing a
file that grows. The writer's own ``wal_autocheckpoint`` stays as the fallback (another
process's writes can keep the WAL from restarting), and ``journal_size_limit`` cuts a
WAL that grew back to 64 MiB at its next restart.

Identify: an ``identify`` event (``visitor_id`` anonymous, ``properties.customer_id``
known) merges the profile the anonymous id resolves to into the one the customer id
resolves to: their events are re-pointed to the customer's canonical id, aliases that
pointed to the merged id point to the new one, its profile row is deleted and the
canonical profile is rebuilt from all its events. Aliases always point at a canonical
id, never at another alias, so a chain a→b, b→c resolves to c in one lookup. An
identify between two ids that already resolve to the same profile is stored and
changes nothing: that is how cycles (c→a after a→c) are ignored. A device shared by two
customers therefore joins them; there is no un-merge.

Reads and cache coherence: ``get`` reads through a per-thread connection and a
``cachetools.TTLCache`` (misses are cached too). After each of its own commits a store
drops the cache entries of the visitors it wrote, and a read that raced with a write
does not fill the cache, so a process never reads a profile older than its own last
write. Another process's writes are seen once the entry expires: ``cache_ttl``
(default 1 s) bounds the staleness. (Polling ``PRAGMA data_version`` instead would
clear the whole cache on every foreign commit, i.e. hundreds of times a second under
ingest, for a gain of under a second.)

Kept activity (README, "Activity kept for the rules"): ``use_activity(needs)`` gives
the store the served rules' declaration; every fold, rebuild and merge keeps what it
reads, and a ``server.profiles.backfill.Backfill`` worker completes, in the background,
the stored profiles that do not cover it (``uncovered`` counts them by their indexed
``activity_key``; ``backfill_some`` completes a batch in one transaction).

Identify also merges the activation state (``server.activation.sqlite.merge_identity``):
the anonymous id's stored assignments move to the customer id, winning where both
hold one, and it leaves its segments.

Right to be forgotten: ``delete_visitor`` removes the profile, every event and exposure
stored under or sent with the visitor's ids, their assignments and segment changes,
and every alias to or from them, with
``secure_delete`` on so the freed pages are zeroed, then checkpoints the WAL.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import orjson
import sqlite_utils
from cachetools import TTLCache

from decision import ActivityNeeds, InvalidRequestError, Problem
from decision.profile import (
    Event,
    format_timestamp,
    render,
    validate_events,
)
from server.activation import sqlite as activation
from server.analytics.exposures import create_schema as create_exposures_schema
from server.analytics.exposures import exposures_of
from server.errors import StoreUnavailableError
from server.logs import FaultLog
from server.profiles.backfill import Backfill, BackfillStatus, Uncovered
from server.profiles.folding import Coverage, backfilled, fold_new, rebuilt
from server.profiles.store import MISSING, TrackResult
from server.sqlite import immediate, reraise, store_error

__all__ = ["BUSY_TIMEOUT", "SQLiteProfileStore", "TrackResult"]

logger = logging.getLogger("decide.server")

BUSY_TIMEOUT = 5.0
"""Seconds a writer waits for another connection's write lock before StoreBusyError."""

WAL_AUTOCHECKPOINT_PAGES = 10_000
"""Pages of WAL (4 KiB each) after which the writer's commit checkpoints (the fallback:
the background checkpointer normally restarts the WAL well before)."""

CHECKPOINT_INTERVAL = 0.2
"""Seconds between the background checkpointer's passes."""

WAL_RESTART_FRAMES = 4096
"""WAL frames after which the checkpointer completes a pass under the write lock, so
that the next commit restarts the WAL."""

WAL_SIZE_LIMIT = 64 * 2**20
"""Bytes a WAL file is cut back to when it restarts (``journal_size_limit``)."""

DEFAULT_CACHE_SIZE = 100_000
DEFAULT_CACHE_TTL = 1.0

_CHUNK = 500  # ids per "IN (...)" query: well under SQLite's variable limit
_MAX_GROUP_BATCHES = 32  # batches committed together at most
_INSERT_ROWS = 150  # events per INSERT statement: 900 variables, under the old 999 limit
_ROW_MARKS = "(?, ?, ?, ?, ?, ?)"

_GET = (
    "SELECT document FROM profiles WHERE visitor_id ="
    " coalesce((SELECT canonical FROM aliases WHERE alias = ?), ?)"
)
_UPSERT_HEAD = "INSERT INTO profiles (visitor_id, document, state, activity_key) VALUES"
_UPSERT_TAIL = (
    "ON CONFLICT (visitor_id) DO UPDATE SET document = excluded.document,"
    " state = excluded.state, activity_key = excluded.activity_key"
)
_UPSERT_ROWS = 225  # profiles per upsert statement: 900 variables
_EVENT_COLUMNS = "event_id, source_id, type, ts, properties"
_json_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _dumps(value: Any) -> str:
    """Compact JSON text. orjson is about ten times faster than ``json``, but refuses
    integers beyond 64 bits (which ``json`` writes exactly, and orjson would read back
    as floats): those values are written by ``json`` after a leading space, which
    ``_loads`` recognises."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return " " + _json_dumps(value)


def _loads(text: str) -> Any:
    """The value of JSON text written by ``_dumps``. (Rows written before the store used
    orjson read the same, except integers beyond 64 bits, which come back as floats:
    ``decide profiles rebuild`` rewrites them. The event log is always read with
    ``json``, exactly.)"""
    return json.loads(text) if text[:1] == " " else orjson.loads(text)


@dataclass(slots=True)
class _Batch:
    """One ``track`` call waiting for (or done by) a group commit. ``unique`` maps
    each event id to its first event, its ``ts`` text and its properties as JSON: the
    row is prepared before the write lock is taken, the lock holder only inserts it."""

    events: Sequence[Event]
    unique: dict[str, tuple[Event, str, str]]
    done: bool = False
    result: TrackResult | None = None
    error: BaseException | None = None


class SQLiteProfileStore:
    """Profiles on one SQLite file. Thread-safe; several processes may share the file.

    Implements ``server.profiles.cache.ProfileStore``. Use as a context manager or ``close()``.
    ``cache_size`` or ``cache_ttl`` 0 disables the read cache.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
        cache_ttl: float = DEFAULT_CACHE_TTL,
    ) -> None:
        self.path = Path(path)
        self._write_lock = threading.RLock()
        self._queue: list[_Batch] = []
        self._queue_lock = threading.Lock()
        self._closed = False
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._cache_enabled = cache_size > 0 and cache_ttl > 0
        self._cache: TTLCache[str, Any] = TTLCache(
            maxsize=max(cache_size, 1), ttl=cache_ttl if cache_ttl > 0 else 1
        )
        self._cache_lock = threading.Lock()
        self._generation = 0  # bumped on every invalidation; see get()
        # What folds keep (use_activity swaps it; a transaction reads it once).
        self._coverage = Coverage()
        self._activity_lock = threading.Lock()
        self._backfill = Backfill(self, name=f"profile store {self.path}")
        # isolation_level=None: we issue BEGIN IMMEDIATE / COMMIT ourselves.
        try:
            conn = sqlite3.connect(
                str(self.path),
                timeout=BUSY_TIMEOUT,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            reraise(exc, "profile store", self.path)
        self._db = sqlite_utils.Database(conn)
        try:
            self._setup()
            self._checkpoint_db = sqlite3.connect(
                str(self.path), timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            conn.close()
            reraise(exc, "profile store", self.path)
        except BaseException:
            conn.close()
            raise
        self._checkpoint_db.execute("PRAGMA synchronous = FULL")
        self._stop = threading.Event()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop, name="decide-profile-checkpoint", daemon=True
        )
        self._checkpointer.start()

    def _setup(self) -> None:
        db = self._db
        db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
        if db.journal_mode != "wal":
            db.enable_wal()
        db.execute("PRAGMA synchronous = FULL")  # see the module docstring
        # Checkpoint every ~40 MB of WAL instead of 4 MB: a batch dirties pages all over
        # the profile table, and fewer, larger checkpoints write each hot page once.
        # Measured: commits ~25 % cheaper under random-visitor ingest.
        db.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
        db.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
        db.execute("PRAGMA secure_delete = ON")  # deleted visitors leave no bytes behind
        # Group commits give each batch a savepoint, whose statement journal holds the
        # original of every page the batch changes: in memory, not in a temporary file
        # (measured: 40 % of the writer's pwrite calls under random-visitor ingest).
        db.execute("PRAGMA temp_store = MEMORY")
        with self._write():
            db.table("events").create(
                {
                    "seq": int,
                    "event_id": str,
                    "visitor_id": str,
                    "source_id": str,
                    "type": str,
                    "ts": str,
                    "properties": str,
                },
                pk="seq",
                not_null={"event_id", "visitor_id", "source_id", "type", "ts", "properties"},
                if_not_exists=True,
            )
            db.table("events").create_index(["event_id"], unique=True, if_not_exists=True)
            db.table("events").create_index(["visitor_id", "ts", "event_id"], if_not_exists=True)
            db.table("aliases").create(
                {"alias": str, "canonical": str},
                pk="alias",
                not_null={"canonical"},
                if_not_exists=True,
            )
            db.table("aliases").create_index(["canonical"], if_not_exists=True)
            db.table("profiles").create(
                {"visitor_id": str, "document": str, "state": str, "activity_key": str},
                pk="visitor_id",
                not_null={"document", "state"},
                if_not_exists=True,
            )
            if "activity_key" not in db.table("profiles").columns_dict:
                db.execute("ALTER TABLE profiles ADD COLUMN activity_key TEXT")
            db.table("profiles").create_index(["activity_key", "visitor_id"], if_not_exists=True)
            create_exposures_schema(db)  # written by server.analytics.exposures, forgotten here
            activation.create_schema(db)  # written by server.activation, merged and forgotten here

    # -- reads --------------------------------------------------------------------------

    def get(self, visitor_id: str) -> dict[str, Any] | None:
        """The profile document of ``visitor_id`` (or of the profile it was merged into),
        None for an unknown visitor. The dict is shared with the cache: do not mutate."""
        if not self._cache_enabled:
            return self._load(visitor_id)
        with self._cache_lock:
            cached = self._cache.get(visitor_id, MISSING)
            generation = self._generation
        if cached is not MISSING:
            return cached  # type: ignore[no-any-return]
        profile = self._load(visitor_id)
        with self._cache_lock:
            # A write committed while we read may have invalidated this very entry
            # before we got here: caching what we read could then hide that write.
            if generation == self._generation:
                self._cache[visitor_id] = profile
        return profile

    def peek(self, visitor_id: str) -> dict[str, Any] | None:
        """``get``: a cache miss is one point read of the local file, which in WAL mode
        does not wait for writers, so it is answered at once, never ``MISSING``."""
        return self.get(visitor_id)

    def _load(self, visitor_id: str) -> dict[str, Any] | None:
        try:
            row = self._reader().execute(_GET, (visitor_id, visitor_id)).fetchone()
        except sqlite3.Error as exc:
            reraise(exc, "profile store", self.path)
        return None if row is None else _loads(row[0])

    def export_visitor(self, visitor_id: str) -> dict[str, Any]:
        """Everything held about the visitor: ``{"visitor_id", "aliases", "profile",
        "events"}``. ``visitor_id`` is the canonical id; events are in ``(timestamp,
        event_id)`` order, each with the visitor id it was sent with."""
        try:
            return self._export(visitor_id)
        except sqlite3.Error as exc:
            reraise(exc, "profile store", self.path)

    def _export(self, visitor_id: str) -> dict[str, Any]:
        conn = self._reader()
        conn.execute("BEGIN")
        try:
            canonical = _resolve_with(conn, visitor_id)
            aliases = [
                row[0]
                for row in conn.execute(
                    "SELECT alias FROM aliases WHERE canonical = ? ORDER BY alias", (canonical,)
                )
            ]
            row = conn.execute(
                "SELECT document FROM profiles WHERE visitor_id = ?", (canonical,)
            ).fetchone()
            events = [
                _event_from_row(row_).as_dict()
                for row_ in conn.execute(
                    f"SELECT {_EVENT_COLUMNS} FROM events WHERE visitor_id = ?"
                    " ORDER BY ts, event_id",
                    (canonical,),
                )
            ]
            exposures = exposures_of(conn, [canonical, *aliases])
            activated = activation.export(conn, [canonical, *aliases])
        finally:
            conn.execute("COMMIT")
        return {
            "visitor_id": canonical,
            "aliases": aliases,
            "profile": None if row is None else _loads(row[0]),
            "events": events,
            "exposures": exposures,
            **activated,
        }

    # -- writes -------------------------------------------------------------------------

    def track(self, events: Sequence[Event]) -> TrackResult:
        """Store a validated batch and update the profiles it touches, durably.

        Events whose ``event_id`` is already stored (or repeated in the batch) are
        duplicates and change nothing. Returns after the commit.
        """
        if not events:
            return TrackResult(0, 0)
        unique: dict[str, tuple[Event, str, str]] = {}
        for event in events:
            if event.event_id not in unique:
                unique[event.event_id] = (
                    event,
                    format_timestamp(event.timestamp),
                    _dumps(event.properties),
                )
        batch = _Batch(events, unique)
        with self._queue_lock:
            self._queue.append(batch)
        with self._write_lock:
            # Group commit: whoever holds the write lock commits every batch queued so
            # far in one transaction (one fsync). A batch queued while another group
            # committed is usually done by the time its thread gets the lock.
            if not batch.done:
                with self._queue_lock:
                    group, self._queue = self._queue, []
                self._commit_group(group)
        if batch.error is not None:
            raise batch.error
        assert batch.result is not None
        return batch.result

    def _commit_group(self, group: list[_Batch]) -> None:
        """Track ``group`` in one transaction, each batch in its own savepoint: a batch
        that fails is rolled back alone and its caller gets the error. Batches queued
        while the group was tracked join it before the commit (up to
        ``_MAX_GROUP_BATCHES``): one commit, one fsync, for all of them."""
        touched: set[str] = set()
        # A group of one needs no savepoint: its transaction is its batch. (A savepoint
        # makes SQLite copy every page it changes to a statement journal first.)
        savepoints = len(group) > 1
        pending = group
        try:
            with self._write():
                while True:
                    for batch in pending:
                        self._track_batch(batch, savepoints, touched)
                    if len(group) >= _MAX_GROUP_BATCHES:
                        break
                    with self._queue_lock:
                        pending = self._queue[: _MAX_GROUP_BATCHES - len(group)]
                        del self._queue[: len(pending)]
                    if not pending:
                        break
                    group += pending
                    savepoints = True
        except BaseException as exc:
            for batch in group:  # nothing of the group was committed
                batch.result = None
                batch.error = batch.error or exc
            if not isinstance(exc, Exception):
                raise
        finally:
            self._invalidate(touched)
            for batch in group:
                batch.done = True

    def _track_batch(self, batch: _Batch, savepoint: bool, touched: set[str]) -> None:
        """One batch of a group, in a savepoint when it must be undone alone on error."""
        mine: set[str] = set()
        if savepoint:
            self._db.execute("SAVEPOINT batch")
        try:
            accepted = self._track(batch.unique, mine)
        except Exception as exc:  # the batch's caller gets it
            if not savepoint:
                raise  # rolls the transaction back: it holds this batch only
            self._db.execute("ROLLBACK TO batch")
            self._db.execute("RELEASE batch")
            batch.error = exc
            return
        if savepoint:
            self._db.execute("RELEASE batch")
        touched |= mine
        batch.result = TrackResult(accepted, len(batch.events) - accepted)

    def set_attributes(
        self, visitor_id: str, attributes: Mapping[str, Any], now: datetime
    ) -> dict[str, Any]:
        """Set shop attributes (a null value removes one) as of ``now``; returns the new
        profile. Recorded as a ``set_attributes`` event, so rebuilds keep them. Raises
        ``InvalidRequestError`` with paths such as ``attributes.tier``."""
        raw = {
            "event_id": f"attributes-{uuid.uuid4().hex}",
            "visitor_id": visitor_id,
            "type": "set_attributes",
            "timestamp": now,
            "properties": {"attributes": attributes},
        }
        try:
            events = validate_events([raw], now, allow_internal=True)
        except InvalidRequestError as exc:
            prefixes = ("events[0].properties.", "events[0].")
            raise InvalidRequestError(
                [Problem(_strip(p.path, prefixes), p.message) for p in exc.problems]
            ) from None
        self.track(events)
        profile = self._load(visitor_id)
        assert profile is not None
        return profile

    def delete_visitor(self, visitor_id: str) -> int:
        """Forget the visitor: profile, events and aliases of the person ``visitor_id``
        resolves to. Returns the number of rows deleted (0 for an unknown visitor)."""
        with self._write():
            canonical = self._resolve(visitor_id, {})
            ids = [canonical] + [
                row[0]
                for row in self._db.execute(
                    "SELECT alias FROM aliases WHERE canonical = ?", (canonical,)
                )
            ]
            if visitor_id not in ids:
                ids.append(visitor_id)
            deleted = 0
            for chunk in _chunks(ids):
                marks = _marks(chunk)
                for statement in (
                    f"DELETE FROM events WHERE visitor_id IN ({marks})",
                    f"DELETE FROM events WHERE source_id IN ({marks})",
                    f"DELETE FROM aliases WHERE alias IN ({marks})",
                    f"DELETE FROM aliases WHERE canonical IN ({marks})",
                    f"DELETE FROM profiles WHERE visitor_id IN ({marks})",
                    f"DELETE FROM exposures WHERE visitor_id IN ({marks})",
                ):
                    deleted += self._db.execute(statement, chunk).rowcount
            deleted += activation.forget(self._db.conn, ids)
        self._invalidate(ids)
        # Best effort: move the zeroed pages into the main file and empty the WAL, so
        # the deleted rows' old page images do not linger there. Busy readers make it a
        # partial checkpoint; the next one completes it.
        with self._write_lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return deleted

    def rebuild(self, visitor_id: str) -> dict[str, Any] | None:
        """Recompute one profile from the event log; returns it (None: no events)."""
        with self._write():
            canonical = self._resolve(visitor_id, {})
            self._rebuild_visitors([canonical], self._coverage)
            aliases = [
                row[0]
                for row in self._db.execute(
                    "SELECT alias FROM aliases WHERE canonical = ?", (canonical,)
                )
            ]
        self._invalidate([canonical, visitor_id, *aliases])
        return self._load(visitor_id)

    def rebuild_all(self, batch: int = 1000, *, needs: ActivityNeeds | None = None) -> int:
        """Recompute every profile from the event log, ``batch`` visitors per
        transaction (tracking goes on in between); returns how many were rebuilt.
        Profile rows without events are deleted. ``needs``: the activity to keep
        (default: the declaration given to ``use_activity``)."""
        if batch < 1:
            raise ValueError("batch must be >= 1")
        coverage = self._coverage if needs is None else Coverage(needs)
        rebuilt = 0
        after = ""
        while True:
            with self._write():
                ids = [
                    row[0]
                    for row in self._db.execute(
                        "SELECT DISTINCT visitor_id FROM events WHERE visitor_id > ?"
                        " ORDER BY visitor_id LIMIT ?",
                        (after, batch),
                    )
                ]
                self._rebuild_visitors(ids, coverage)
            self._clear_cache()
            if not ids:
                break
            rebuilt += len(ids)
            after = ids[-1]
        with self._write():
            self._db.execute(
                "DELETE FROM profiles WHERE NOT EXISTS"
                " (SELECT 1 FROM events WHERE events.visitor_id = profiles.visitor_id)"
            )
        self._clear_cache()
        return rebuilt

    # -- kept activity ------------------------------------------------------------------

    def use_activity(self, needs: ActivityNeeds) -> None:
        """Keep what ``needs`` reads (the served rules' ``Ruleset.activity``) from the
        next transaction on, and complete the stored profiles that do not cover it in
        the background. Thread-safe; a declaration equal to the current one changes
        nothing once given."""
        with self._activity_lock:
            current = self._coverage
            if self._backfill.started and current.needs.record == needs.record:
                return
            coverage = self._coverage = Coverage(needs)
        self._backfill.declare(coverage)

    def activity_status(self) -> BackfillStatus:
        """Where the back-fill of the declaration given to ``use_activity`` stands."""
        return self._backfill.status

    def uncovered(self, coverage: Coverage) -> Uncovered:
        """The stored profiles that do not cover ``coverage.needs``, by coverage key
        (one scan of the ``activity_key`` index; one state read per key not seen
        before). For the back-fill worker."""
        try:
            conn = self._reader()
            keys: list[str] = []
            unkeyed = False
            count = 0
            for key, n in conn.execute(
                "SELECT activity_key, count(*) FROM profiles GROUP BY activity_key"
            ).fetchall():
                if key is None:
                    unkeyed = True
                    count += n
                    continue
                covered = coverage.known(key)
                if covered is None:
                    row = conn.execute(
                        "SELECT state FROM profiles WHERE activity_key = ? LIMIT 1", (key,)
                    ).fetchone()
                    if row is None:
                        continue  # gone since the count
                    covered = coverage.learn(key, _loads(row[0]))
                if not covered:
                    keys.append(key)
                    count += n
        except sqlite3.Error as exc:
            reraise(exc, "profile store", self.path)
        return Uncovered(tuple(keys), unkeyed, count)

    def backfill_some(self, coverage: Coverage, uncovered: Uncovered, limit: int) -> int:
        """Complete up to ``limit`` profiles that ``uncovered`` names from their event
        logs, in one transaction; each is checked again first (a profile keyed before
        this store keyed them may cover the declaration already: it only gets its key).
        Returns how many left the uncovered set. For the back-fill worker."""
        keys = uncovered.keys[:_CHUNK]
        where = []
        if keys:
            where.append(f"activity_key IN ({_marks(keys)})")
        if uncovered.unkeyed:
            where.append("activity_key IS NULL")
        if not where:
            return 0
        touched: list[str] = []
        with self._write():
            ids = [
                row[0]
                for row in self._db.execute(
                    f"SELECT visitor_id FROM profiles WHERE {' OR '.join(where)} LIMIT ?",
                    [*keys, limit],
                )
            ]
            states = self._states(ids)
            keyed = []
            todo = []
            for visitor_id in ids:
                state = states[visitor_id]
                if coverage.covers(state):
                    keyed.append((coverage.key(state), visitor_id))
                else:
                    todo.append(visitor_id)
            self._db.conn.executemany(
                "UPDATE profiles SET activity_key = ? WHERE visitor_id = ?", keyed
            )
            rows = []
            empty: list[tuple[str]] = []
            for visitor_id, log in self._logs(todo):
                complete = backfilled(states[visitor_id], log, coverage.needs)
                if complete is None:
                    empty.append((visitor_id,))
                else:
                    rows.append(_profile_row(visitor_id, complete, coverage))
            self._upsert(rows)
            if empty:
                self._db.conn.executemany("DELETE FROM profiles WHERE visitor_id = ?", empty)
            if todo:
                touched = todo + [
                    row[0]
                    for chunk in _chunks(todo)
                    for row in self._db.execute(
                        f"SELECT alias FROM aliases WHERE canonical IN ({_marks(chunk)})", chunk
                    )
                ]
        self._invalidate(touched)
        return len(ids)

    # -- maintenance --------------------------------------------------------------------

    def checkpoint(self) -> tuple[int, int]:
        """One pass of the background checkpointer: copy the WAL into the database
        file without blocking writers; once the WAL holds ``WAL_RESTART_FRAMES``
        frames, complete the copy under the write lock so that the next commit
        restarts the WAL. Returns ``(frames in the WAL, frames copied)``."""
        _, frames, copied = self._checkpoint_db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if frames >= WAL_RESTART_FRAMES:
            with self._write_lock:
                if not self._closed:
                    _, frames, copied = self._checkpoint_db.execute(
                        "PRAGMA wal_checkpoint(PASSIVE)"
                    ).fetchone()
        return frames, copied

    def _checkpoint_loop(self) -> None:
        faults = FaultLog(
            logger, f"profile store {self.path}: background checkpoint", "checkpoint_failed"
        )
        while not self._stop.wait(CHECKPOINT_INTERVAL):
            try:
                self.checkpoint()
            except sqlite3.Error as exc:  # the writer's autocheckpoint is the fallback
                faults.failed(store_error(exc, "profile store", self.path))
            else:
                faults.ok()

    def close(self) -> None:
        """Stop the back-fill and the checkpointer, close every connection. Idempotent."""
        self._backfill.close()
        self._stop.set()
        if self._checkpointer is not threading.current_thread():
            self._checkpointer.join()
        with self._write_lock:
            if self._closed:
                return
            self._closed = True
            self._db.close()
            self._checkpoint_db.close()
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------

    def _track(self, unique: dict[str, tuple[Event, str, str]], touched: set[str]) -> int:
        """The body of ``track``, inside its transaction; fills ``touched`` with every
        id whose cached profile is now stale. Returns the number of new events."""
        db = self._db
        aliases = self._load_aliases({event.visitor_id for event, _, _ in unique.values()})
        rows = [
            (event_id, aliases[event.visitor_id], event.visitor_id, event.type, ts, properties)
            for event_id, (event, ts, properties) in unique.items()
        ]
        # One multi-row INSERT per chunk. When it stored every row (the usual case) all
        # are new; otherwise the new ones are the rows it added, which hold the highest
        # seq values (the write lock is ours). Not RETURNING: the sqlite3 module releases
        # and retakes the GIL for every row fetched, and under load each retake can
        # wait for another thread (the lock holder is what every batch queues behind).
        conn = db.conn
        inserted: set[str] | None = None  # None: all of them
        for start in range(0, len(rows), _INSERT_ROWS):
            part = rows[start : start + _INSERT_ROWS]
            stored = conn.execute(
                "INSERT INTO events (event_id, visitor_id, source_id, type, ts, properties)"
                f" VALUES {', '.join([_ROW_MARKS] * len(part))}"
                " ON CONFLICT (event_id) DO NOTHING",
                [value for row in part for value in row],
            ).rowcount
            if stored == len(part) and inserted is None:
                continue
            if inserted is None:
                inserted = {row[0] for row in rows[:start]}
            if stored:
                inserted.update(
                    row[0]
                    for row in conn.execute(
                        "SELECT event_id FROM events ORDER BY seq DESC LIMIT ?", (stored,)
                    )
                )
        if inserted is None:
            new = [item[0] for item in unique.values()]
        else:
            new = [item[0] for event_id, item in unique.items() if event_id in inserted]
        if not new:
            return 0
        touched.update(event.visitor_id for event in new)
        merged: set[str] = set()
        for event in new:
            if event.type == "identify":
                self._merge(event, aliases, merged, touched)
        by_visitor: dict[str, list[Event]] = {}
        for event in new:
            canonical = aliases.get(event.visitor_id, event.visitor_id)
            if canonical not in merged:
                by_visitor.setdefault(canonical, []).append(event)
        touched.update(by_visitor)
        # get() caches by the id it was asked for, which may be an alias.
        canonicals = list(by_visitor)
        for chunk in _chunks(canonicals):
            touched.update(
                row[0]
                for row in db.execute(
                    f"SELECT alias FROM aliases WHERE canonical IN ({_marks(chunk)})", chunk
                )
            )
        coverage = self._coverage
        self._rebuild_visitors(sorted(merged), coverage)
        self._apply_new(by_visitor, coverage)
        return len(new)

    def _merge(
        self, event: Event, aliases: dict[str, str], merged: set[str], touched: set[str]
    ) -> None:
        """Merge the profile of ``event.visitor_id`` into that of its customer id."""
        db = self._db
        source = self._resolve(event.visitor_id, aliases)
        target = self._resolve(str(event.properties["customer_id"]), aliases)
        if source == target:
            return  # already one profile (this is also how cycles are ignored)
        db.execute("UPDATE events SET visitor_id = ? WHERE visitor_id = ?", (target, source))
        db.execute("UPDATE exposures SET visitor_id = ? WHERE visitor_id = ?", (target, source))
        moved = [
            row[0] for row in db.execute("SELECT alias FROM aliases WHERE canonical = ?", (source,))
        ]
        db.execute("UPDATE aliases SET canonical = ? WHERE canonical = ?", (target, source))
        db.execute(
            "INSERT INTO aliases (alias, canonical) VALUES (?, ?)"
            " ON CONFLICT (alias) DO UPDATE SET canonical = excluded.canonical",
            (source, target),
        )
        db.execute("DELETE FROM profiles WHERE visitor_id = ?", (source,))
        activation.merge_identity(db.conn, source, target, datetime.now(UTC))
        for alias in (*moved, source):
            aliases[alias] = target
        for alias, canonical in list(aliases.items()):
            if canonical == source:
                aliases[alias] = target
        target_aliases = [
            row[0] for row in db.execute("SELECT alias FROM aliases WHERE canonical = ?", (target,))
        ]
        touched.update((source, target, *moved, *target_aliases))
        merged.discard(source)
        merged.add(target)

    def _resolve(self, visitor_id: str, aliases: dict[str, str]) -> str:
        """The canonical id of ``visitor_id``; ``aliases`` memoizes within a transaction."""
        if visitor_id not in aliases:
            row = self._db.execute(
                "SELECT canonical FROM aliases WHERE alias = ?", (visitor_id,)
            ).fetchone()
            aliases[visitor_id] = row[0] if row else visitor_id
        return aliases[visitor_id]

    def _load_aliases(self, ids: Iterable[str]) -> dict[str, str]:
        """``{id: canonical}`` for every id of ``ids`` (ids without an alias map to
        themselves), in one query per chunk."""
        resolved = {visitor_id: visitor_id for visitor_id in ids}
        for chunk in _chunks(list(resolved)):
            for alias, canonical in self._db.execute(
                f"SELECT alias, canonical FROM aliases WHERE alias IN ({_marks(chunk)})", chunk
            ):
                resolved[alias] = canonical
        return resolved

    def _apply_new(self, by_visitor: dict[str, list[Event]], coverage: Coverage) -> None:
        """Fold new events into the stored states of their (canonical) visitors; a
        state that must start again from the log is rebuilt, in the same transaction."""
        if not by_visitor:
            return
        states = self._states(list(by_visitor))
        rows = []
        again = []
        for visitor_id, events in by_visitor.items():
            state = fold_new(states.get(visitor_id), events, coverage.needs)
            if state is None:
                again.append(visitor_id)
            else:
                rows.append(_profile_row(visitor_id, state, coverage))
        self._upsert(rows)
        self._rebuild_visitors(again, coverage)

    def _states(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The stored states of ``ids`` (canonical) that have one."""
        states: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(ids):
            # One row for the chunk (see _track on fetching rows): {visitor_id: state}.
            (found,) = self._db.conn.execute(
                "SELECT json_group_object(visitor_id, state) FROM profiles"
                f" WHERE visitor_id IN ({_marks(chunk)})",
                chunk,
            ).fetchone()
            for visitor_id, state_json in orjson.loads(found).items():
                states[visitor_id] = _loads(state_json)
        return states

    def _logs(self, ids: list[str]) -> Iterator[tuple[str, list[Event]]]:
        """``(visitor_id, events)`` of every id of ``ids`` (canonical), chunk by chunk;
        events in ``(timestamp, event_id)`` order, empty for a visitor without any."""
        for chunk in _chunks(ids):
            events: dict[str, list[Event]] = {visitor_id: [] for visitor_id in chunk}
            for row in self._db.execute(
                f"SELECT visitor_id, {_EVENT_COLUMNS} FROM events"
                f" WHERE visitor_id IN ({_marks(chunk)}) ORDER BY visitor_id, ts, event_id",
                chunk,
            ):
                events[row[0]].append(_event_from_row(row[1:]))
            yield from events.items()

    def _rebuild_visitors(self, ids: Sequence[str], coverage: Coverage) -> None:
        """Recompute the states of ``ids`` (canonical) from all their stored events."""
        rows = []
        empty = []
        for visitor_id, log in self._logs(list(ids)):
            state = rebuilt(log, coverage.needs)
            if state is None:
                empty.append((visitor_id,))
            else:
                rows.append(_profile_row(visitor_id, state, coverage))
        self._upsert(rows)
        if empty:
            self._db.conn.executemany("DELETE FROM profiles WHERE visitor_id = ?", empty)

    def _upsert(self, rows: Sequence[tuple[str, str, str, str]]) -> None:
        """Write profile rows, a multi-row statement per chunk (one step, not one per row)."""
        for start in range(0, len(rows), _UPSERT_ROWS):
            part = rows[start : start + _UPSERT_ROWS]
            self._db.conn.execute(
                f"{_UPSERT_HEAD} {', '.join(['(?, ?, ?, ?)'] * len(part))} {_UPSERT_TAIL}",
                [value for row in part for value in row],
            )

    def _invalidate(self, ids: Iterable[str]) -> None:
        with self._cache_lock:
            self._generation += 1
            for visitor_id in ids:
                self._cache.pop(visitor_id, None)

    def _clear_cache(self) -> None:
        with self._cache_lock:
            self._generation += 1
            self._cache.clear()

    def _reader(self) -> sqlite3.Connection:
        """This thread's read connection (opened on first use, closed by ``close``)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            raise StoreUnavailableError("profile store", str(self.path), "the store is closed")
        conn = sqlite3.connect(
            str(self.path), timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA query_only = ON")
        with self._readers_lock:
            if self._closed:
                conn.close()
                raise StoreUnavailableError("profile store", str(self.path), "the store is closed")
            self._readers.append(conn)
        self._local.conn = conn
        return conn

    def _write(self) -> AbstractContextManager[None]:
        """One IMMEDIATE transaction: the write lock is taken before anything is read."""
        return immediate(
            self._db.conn,
            self._write_lock,
            store="profile store",
            path=self.path,
            closed=lambda: self._closed,
        )


def _resolve_with(conn: sqlite3.Connection, visitor_id: str) -> str:
    row = conn.execute("SELECT canonical FROM aliases WHERE alias = ?", (visitor_id,)).fetchone()
    return str(row[0]) if row else visitor_id


def _event_from_row(row: Sequence[Any]) -> Event:
    """An Event from ``(event_id, source_id, type, ts, properties)``; the event's
    ``visitor_id`` is the id it was sent with."""
    event_id, source_id, kind, ts, properties = row
    return Event(event_id, source_id, kind, datetime.fromisoformat(ts), json.loads(properties))


def _profile_row(
    visitor_id: str, state: dict[str, Any], coverage: Coverage
) -> tuple[str, str, str, str]:
    return visitor_id, _dumps(render(state)), _dumps(state), coverage.key(state)


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _marks(chunk: Sequence[str]) -> str:
    return ", ".join("?" * len(chunk))


def _strip(path: str, prefixes: Sequence[str]) -> str:
    for prefix in prefixes:
        if path.startswith(prefix):
            return path[len(prefix) :]
    return path
