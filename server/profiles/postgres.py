"""Visitor profiles in PostgreSQL, shared by every decider: the event log, aliases, profiles.

Tables (``server.postgres.schema``; the same rows as the SQLite store's)::

    events(seq, event_id UNIQUE, visitor_id, source_id, type, ts, properties)
    aliases(alias PRIMARY KEY, canonical)
    profiles(visitor_id PRIMARY KEY, document, state, activity_key)
                                         -- index (activity_key, visitor_id)
    exposures(...)                       written by server.analytics.exposures_postgres

Any decider accepts any event. ``track`` is one transaction per batch:

1. resolve the batch's visitor ids (and the customer ids of its ``identify`` events)
   to their canonical ids, and lock those visitors;
2. resolve again: a merge that committed while we waited for a lock may have moved an
   id to another canonical; lock those too, until nothing moves (a merge locks both of
   its visitors, so once we hold a visitor's lock, nothing re-points its ids);
3. insert the events (``ON CONFLICT (event_id) DO NOTHING RETURNING``: an event id is
   stored once across all deciders, and a second decider inserting the same id waits
   for the first's commit and then finds it there);
4. merge profiles on new ``identify`` events, fold the new events into the locked
   visitors' states and upsert them; commit.

Locks: a transaction-level advisory lock per visitor, ``pg_advisory_xact_lock(class,
crc32(id))``, taken in key order. Not row locks on ``profiles``: a visitor's first
events have no row to lock yet, and two deciders creating the same profile at once
would each fold their events into an empty state, and the later upsert would drop the
earlier's. Two visitors whose keys collide share a lock, which only serializes them.
Because every write to a visitor's events and state happens under its lock, the
stored profile is always the fold of exactly the events stored for it, in some order;
the fold does not depend on the order (the SQLite store's tests and the contract
suite check that the incremental profile equals the rebuilt one). A deadlock (possible
when step 2 adds locks out of order) or a serialization failure retries the batch, at
most ``RETRIES`` times.

Reads: ``peek`` answers from this decider's cache only (``server.profiles.
shared_cache``; never blocks); ``get`` reads through it. Staleness: this decider's own
writes invalidate its entries at once; another decider's writes are seen within
``cache_ttl`` (1 s by default). While the database cannot be reached, ``get`` serves
the last profile it read, however old, and raises StoreUnavailableError only for a
visitor it never read.

Kept activity (README, "Activity kept for the rules"): as in the SQLite store, folds keep
what the declaration given to ``use_activity`` reads (``server.profiles.folding``), and a
``server.profiles.backfill.Backfill`` worker completes the stored profiles that do not
cover it. Every decider runs one; a batch locks its visitors as ``track`` does, so two
workers (or a worker and an ingest) never write one visitor at once, and a profile
another worker completed meanwhile is found covered and only re-keyed.

Right to be forgotten: ``delete_visitor`` removes, under the visitor's lock, the
profile, every event stored under or sent with its ids, its aliases and its
exposures. An exposure another decider buffered for the visitor less than its flush
interval (0.2 s) before may still be written after the delete. PostgreSQL keeps
deleted rows' bytes until VACUUM reuses their space (it has no secure_delete).
"""

from __future__ import annotations

import logging
import threading
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import psycopg

from decision.profile import Event, format_timestamp
from decision.retention import ActivityNeeds
from server.analytics.exposures_postgres import exposures_of
from server.errors import StoreBusyError, StoreUnavailableError
from server.postgres.connections import Database
from server.profiles import codec
from server.profiles.backfill import Backfill, BackfillStatus, Uncovered
from server.profiles.folding import Coverage, backfilled, fold_new, rebuilt
from server.profiles.shared_cache import ProfileCache
from server.profiles.store import MISSING, TrackResult

__all__ = ["DEFAULT_CACHE_SIZE", "DEFAULT_CACHE_TTL", "RETRIES", "PostgresProfileStore"]

logger = logging.getLogger("decide.server")

STORE = "profile store"
DEFAULT_CACHE_SIZE = 100_000
DEFAULT_CACHE_TTL = 1.0
RETRIES = 5
"""Attempts of a batch that meets a deadlock or a serialization failure."""

LOCK_CLASS = 0x0DEC1DF
"""The advisory lock class of visitor locks (the key's first int4)."""

_GET = (
    "SELECT document FROM profiles WHERE visitor_id ="
    " coalesce((SELECT canonical FROM aliases WHERE alias = %s), %s)"
)
_EVENT_COLUMNS = "event_id, source_id, type, ts, properties"
_UPSERT = (
    "INSERT INTO profiles (visitor_id, document, state, activity_key)"
    " SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[])"
    " ON CONFLICT (visitor_id) DO UPDATE SET document = excluded.document,"
    " state = excluded.state, activity_key = excluded.activity_key"
)

Conn = psycopg.Connection[Any]
T = TypeVar("T")


def lock_key(visitor_id: str) -> int:
    """The advisory lock key (an int4) of a visitor."""
    key = zlib.crc32(visitor_id.encode("utf-8", "surrogatepass"))
    return key - 2**32 if key >= 2**31 else key


class PostgresProfileStore:
    """A ``ProfileStore`` in PostgreSQL. Thread-safe; any number of deciders may share
    the database. The ``Database`` belongs to the caller. ``cache_size`` or
    ``cache_ttl`` 0 disables the read cache."""

    def __init__(
        self,
        db: Database,
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
        cache_ttl: float = DEFAULT_CACHE_TTL,
        cache: ProfileCache | None = None,
    ) -> None:
        self._db = db
        self.location = db.where
        self.cache = cache or ProfileCache(maxsize=cache_size, ttl=cache_ttl)
        self._closed = False
        self._stale_served = threading.Event()
        # What folds keep (use_activity swaps it; a transaction reads it once).
        self._coverage = Coverage()
        self._activity_lock = threading.Lock()
        self._backfill = Backfill(self, name=f"profile store {db.where}")

    # -- reads --------------------------------------------------------------------------

    def peek(self, visitor_id: str) -> dict[str, Any] | None:
        """The cached profile when it is fresh; else ``MISSING`` (never blocks)."""
        return self.cache.fresh(visitor_id)  # type: ignore[no-any-return]

    def get(self, visitor_id: str) -> dict[str, Any] | None:
        """The profile of ``visitor_id`` (or of the profile it was merged into), None for
        an unknown visitor; read through the cache. The dict is shared: do not mutate."""
        cached = self.cache.fresh(visitor_id)
        if cached is not MISSING:
            return cached  # type: ignore[no-any-return]
        generation = self.cache.generation
        try:
            profile = self._load(visitor_id)
        except StoreUnavailableError:
            stale = self.cache.stale(visitor_id)
            if stale is MISSING:
                raise
            if not self._stale_served.is_set():
                self._stale_served.set()
                logger.warning(
                    "the profile store is unreachable: serving cached profiles",
                    extra={"event": "profiles_stale"},
                )
            return stale  # type: ignore[no-any-return]
        self._stale_served.clear()
        self.cache.put(visitor_id, profile, generation)
        return profile

    def _load(self, visitor_id: str) -> dict[str, Any] | None:
        self._check_open()
        with self._db.connection(STORE) as conn:
            row = conn.execute(_GET, (visitor_id, visitor_id)).fetchone()
        return None if row is None else codec.loads(row[0])

    def export_visitor(self, visitor_id: str) -> dict[str, Any]:
        """Everything held about the visitor, read in one snapshot: ``{"visitor_id",
        "aliases", "profile", "events", "exposures"}`` (as the SQLite store exports)."""
        self._check_open()
        with self._db.transaction(STORE) as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            canonical = _resolve(conn, [visitor_id])[visitor_id]
            aliases = [
                row[0]
                for row in conn.execute(
                    "SELECT alias FROM aliases WHERE canonical = %s ORDER BY alias", (canonical,)
                )
            ]
            row = conn.execute(
                "SELECT document FROM profiles WHERE visitor_id = %s", (canonical,)
            ).fetchone()
            events = [
                codec.event_from_row(event_row).as_dict()
                for event_row in conn.execute(
                    f"SELECT {_EVENT_COLUMNS} FROM events WHERE visitor_id = %s"
                    " ORDER BY ts, event_id",
                    (canonical,),
                )
            ]
            exposures = exposures_of(conn, [canonical, *aliases])
        return {
            "visitor_id": canonical,
            "aliases": aliases,
            "profile": None if row is None else codec.loads(row[0]),
            "events": events,
            "exposures": exposures,
            # Stored assignments and segment changes (server.activation) are kept by
            # the SQLite store only so far: a PostgreSQL store holds none to export.
            "assignments": [],
            "segment_changes": [],
        }

    # -- writes -------------------------------------------------------------------------

    def track(self, events: Sequence[Event]) -> TrackResult:
        """Store a validated batch and update the profiles it touches, in one
        transaction; returns after the commit. Events whose ``event_id`` is stored
        already (by any decider) or repeated in the batch are duplicates."""
        if not events:
            return TrackResult(0, 0)
        unique: dict[str, Event] = {}
        for event in events:
            unique.setdefault(event.event_id, event)
        touched: set[str] = set()
        accepted = self._write(lambda conn: self._track(conn, unique, touched), touched)
        return TrackResult(accepted, len(events) - accepted)

    def set_attributes(
        self, visitor_id: str, attributes: Mapping[str, Any], now: datetime
    ) -> dict[str, Any]:
        """Set shop attributes (a null value removes one) as of ``now``; returns the new
        profile. Recorded as a ``set_attributes`` event, so rebuilds keep them."""
        self.track([codec.attributes_event(visitor_id, attributes, now)])
        profile = self._load(visitor_id)
        assert profile is not None
        return profile

    def delete_visitor(self, visitor_id: str) -> int:
        """Forget the visitor: profile, events, aliases and exposures of the person
        ``visitor_id`` resolves to. Returns the number of rows deleted."""
        touched: set[str] = set()

        def delete(conn: Conn) -> int:
            canonical = _lock_resolved(conn, [visitor_id])[visitor_id]
            ids = [canonical, *_aliases_of(conn, [canonical])]
            if visitor_id not in ids:
                ids.append(visitor_id)
            touched.update(ids)
            deleted = 0
            for statement in (
                "DELETE FROM events WHERE visitor_id = ANY(%b::text[])",
                "DELETE FROM events WHERE source_id = ANY(%b::text[])",
                "DELETE FROM aliases WHERE alias = ANY(%b::text[])",
                "DELETE FROM aliases WHERE canonical = ANY(%b::text[])",
                "DELETE FROM profiles WHERE visitor_id = ANY(%b::text[])",
                "DELETE FROM exposures WHERE visitor_id = ANY(%b::text[])",
            ):
                deleted += conn.execute(statement, (ids,)).rowcount
            return deleted

        return self._write(delete, touched)

    def rebuild(self, visitor_id: str) -> dict[str, Any] | None:
        """Recompute one profile from the event log; returns it (None: no events)."""
        touched: set[str] = set()

        coverage = self._coverage

        def rebuild_one(conn: Conn) -> None:
            canonical = _lock_resolved(conn, [visitor_id])[visitor_id]
            _rebuild_visitors(conn, [canonical], coverage)
            touched.update([canonical, visitor_id, *_aliases_of(conn, [canonical])])

        self._write(rebuild_one, touched)
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

            def step(conn: Conn, after: str = after) -> list[str]:
                ids = [
                    row[0]
                    for row in conn.execute(
                        "SELECT DISTINCT visitor_id FROM events WHERE visitor_id > %s"
                        " ORDER BY visitor_id LIMIT %s",
                        (after, batch),
                    )
                ]
                _lock(conn, ids)
                _rebuild_visitors(conn, ids, coverage)
                return ids

            ids = self._write(step, set())
            self.cache.clear()
            if not ids:
                break
            rebuilt += len(ids)
            after = ids[-1]

        def orphans(conn: Conn) -> None:
            conn.execute(
                "DELETE FROM profiles AS p WHERE NOT EXISTS"
                " (SELECT 1 FROM events AS e WHERE e.visitor_id = p.visitor_id)"
            )

        self._write(orphans, set())
        self.cache.clear()
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
        self._check_open()
        keys: list[str] = []
        unkeyed = False
        count = 0
        with self._db.connection(STORE) as conn:
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
                        "SELECT state FROM profiles WHERE activity_key = %s LIMIT 1", (key,)
                    ).fetchone()
                    if row is None:
                        continue  # gone since the count
                    covered = coverage.learn(key, codec.loads(row[0]))
                if not covered:
                    keys.append(key)
                    count += n
        return Uncovered(tuple(keys), unkeyed, count)

    def backfill_some(self, coverage: Coverage, uncovered: Uncovered, limit: int) -> int:
        """Complete up to ``limit`` profiles that ``uncovered`` names from their event
        logs, in one transaction holding their visitors' locks; each is checked again
        first (another worker or an ingest may have completed it: it only gets its key).
        Returns how many left the uncovered set. For the back-fill worker."""
        keys = list(uncovered.keys)
        if not keys and not uncovered.unkeyed:
            return 0
        touched: set[str] = set()

        def complete(conn: Conn) -> int:
            ids = [
                row[0]
                for row in conn.execute(
                    "SELECT visitor_id FROM profiles WHERE activity_key = ANY(%b::text[])"
                    + (" OR activity_key IS NULL" if uncovered.unkeyed else "")
                    + " ORDER BY visitor_id LIMIT %s",
                    (keys, limit),
                )
            ]
            if not ids:
                return 0
            _lock(conn, ids)
            states = _states(conn, ids)
            keyed: list[list[str]] = [[], []]
            todo = []
            for visitor_id in ids:
                state = states.get(visitor_id)
                if state is None:
                    continue  # merged or deleted since it was chosen
                if coverage.covers(state):
                    keyed[0].append(visitor_id)
                    keyed[1].append(coverage.key(state))
                else:
                    todo.append(visitor_id)
            if keyed[0]:
                conn.execute(
                    "UPDATE profiles AS p SET activity_key = u.k"
                    " FROM unnest(%b::text[], %b::text[]) AS u(v, k) WHERE p.visitor_id = u.v",
                    keyed,
                )
            rows = []
            empty = []
            for visitor_id, log in _logs(conn, todo).items():
                done = backfilled(states[visitor_id], log, coverage.needs)
                if done is None:
                    empty.append(visitor_id)
                else:
                    rows.append(codec.profile_row(visitor_id, done, coverage))
            _upsert(conn, rows)
            if empty:
                conn.execute("DELETE FROM profiles WHERE visitor_id = ANY(%b::text[])", (empty,))
            touched.update(todo)
            touched.update(_aliases_of(conn, todo))
            return len(ids)

        return self._write(complete, touched)

    def close(self) -> None:
        """Stop the back-fill worker and refuse further calls; the ``Database`` is the
        caller's to close. Idempotent."""
        self._backfill.close()
        self._closed = True

    # -- internals ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailableError(STORE, self.location, "the store is closed")

    def _write(self, body: Callable[[Conn], T], touched: set[str]) -> T:
        """``body(conn)`` in one transaction, retried on a deadlock or serialization
        failure; the cache entries of ``touched`` are dropped after it (committed or not)."""
        self._check_open()
        try:
            for attempt in range(RETRIES):
                try:
                    with self._db.transaction(STORE) as conn:
                        return body(conn)
                except StoreBusyError:
                    if attempt == RETRIES - 1:
                        raise
            raise AssertionError("unreachable")
        finally:
            self.cache.invalidate(touched)

    def _track(self, conn: Conn, unique: dict[str, Event], touched: set[str]) -> int:
        """The body of ``track``, inside its transaction (see the module docstring)."""
        ids = {event.visitor_id for event in unique.values()}
        ids.update(
            str(event.properties["customer_id"])
            for event in unique.values()
            if event.type == "identify"
        )
        canon = _lock_resolved(conn, ids)
        columns: list[list[str]] = [[], [], [], [], [], []]
        for event_id, event in unique.items():
            row = (
                event_id,
                canon[event.visitor_id],
                event.visitor_id,
                event.type,
                format_timestamp(event.timestamp),
                codec.dumps(event.properties),
            )
            for column, value in zip(columns, row, strict=True):
                column.append(value)
        inserted = {
            row[0]
            for row in conn.execute(
                "INSERT INTO events (event_id, visitor_id, source_id, type, ts, properties)"
                " SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[],"
                " %b::text[], %b::text[]) ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
                columns,
            )
        }
        new = [event for event_id, event in unique.items() if event_id in inserted]
        if not new:
            return 0
        touched.update(event.visitor_id for event in new)
        merged: set[str] = set()
        for event in new:
            if event.type == "identify":
                _merge(conn, event, canon, merged, touched)
        by_visitor: dict[str, list[Event]] = {}
        for event in new:
            canonical = canon[event.visitor_id]
            if canonical not in merged:
                by_visitor.setdefault(canonical, []).append(event)
        touched.update(by_visitor)
        # get() caches by the id it was asked for, which may be an alias.
        touched.update(_aliases_of(conn, list(by_visitor)))
        coverage = self._coverage
        _rebuild_visitors(conn, sorted(merged), coverage)
        _apply_new(conn, by_visitor, coverage)
        return len(new)


def _resolve(conn: Conn, ids: Iterable[str]) -> dict[str, str]:
    """``{id: canonical}`` (an id without an alias maps to itself), in one query."""
    resolved = {visitor_id: visitor_id for visitor_id in ids}
    if resolved:
        for alias, canonical in conn.execute(
            "SELECT alias, canonical FROM aliases WHERE alias = ANY(%b::text[])",
            (list(resolved),),
        ):
            resolved[alias] = canonical
    return resolved


def _lock(conn: Conn, visitors: Iterable[str]) -> None:
    """Take the advisory locks of ``visitors`` in key order (one statement; unnest
    yields the array in order and nothing sorts it again)."""
    keys = sorted({lock_key(v) for v in visitors})
    if keys:
        conn.execute(
            "SELECT pg_advisory_xact_lock(%s, k) FROM unnest(%b::int4[]) AS k", (LOCK_CLASS, keys)
        )


def _lock_resolved(conn: Conn, ids: Iterable[str]) -> dict[str, str]:
    """Lock the canonical visitors of ``ids`` and return ``{id: canonical}`` as it holds
    under those locks (see the module docstring, steps 1 and 2)."""
    ids = list(ids)
    locked: set[str] = set()
    while True:
        resolved = _resolve(conn, ids)
        wanted = set(resolved.values()) - locked
        if not wanted:
            return resolved
        _lock(conn, wanted)
        locked |= wanted


def _aliases_of(conn: Conn, canonicals: Sequence[str]) -> list[str]:
    if not canonicals:
        return []
    return [
        row[0]
        for row in conn.execute(
            "SELECT alias FROM aliases WHERE canonical = ANY(%b::text[])", (list(canonicals),)
        )
    ]


def _merge(
    conn: Conn, event: Event, canon: dict[str, str], merged: set[str], touched: set[str]
) -> None:
    """Merge the profile of ``event.visitor_id`` into that of its customer id (both
    locked by ``_lock_resolved``)."""
    source = canon[event.visitor_id]
    target = canon[str(event.properties["customer_id"])]
    if source == target:
        return  # already one profile (this is also how cycles are ignored)
    moved = _aliases_of(conn, [source])
    conn.execute("UPDATE events SET visitor_id = %s WHERE visitor_id = %s", (target, source))
    # An exposure written while an earlier merge committed may still name a merged id
    # (server.analytics.exposures_postgres): re-point those with the rest.
    conn.execute(
        "UPDATE exposures SET visitor_id = %s WHERE visitor_id = ANY(%b::text[])",
        (target, [source, *moved]),
    )
    conn.execute("UPDATE aliases SET canonical = %s WHERE canonical = %s", (target, source))
    conn.execute(
        "INSERT INTO aliases (alias, canonical) VALUES (%s, %s)"
        " ON CONFLICT (alias) DO UPDATE SET canonical = excluded.canonical",
        (source, target),
    )
    conn.execute("DELETE FROM profiles WHERE visitor_id = %s", (source,))
    for alias in (*moved, source):
        canon[alias] = target
    for alias, canonical in list(canon.items()):
        if canonical == source:
            canon[alias] = target
    touched.update((source, target, *moved, *_aliases_of(conn, [target])))
    merged.discard(source)
    merged.add(target)


def _states(conn: Conn, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The stored states of ``ids`` (canonical) that have one."""
    return {
        visitor_id: codec.loads(state)
        for visitor_id, state in conn.execute(
            "SELECT visitor_id, state FROM profiles WHERE visitor_id = ANY(%b::text[])",
            (list(ids),),
        )
    }


def _logs(conn: Conn, ids: Sequence[str]) -> dict[str, list[Event]]:
    """Every id's events (canonical) in ``(timestamp, event_id)`` order; an empty list
    for a visitor without any."""
    events: dict[str, list[Event]] = {visitor_id: [] for visitor_id in ids}
    if ids:
        for row in conn.execute(
            f"SELECT visitor_id, {_EVENT_COLUMNS} FROM events WHERE visitor_id = ANY(%b::text[])"
            " ORDER BY visitor_id, ts, event_id",
            (list(ids),),
        ):
            events[row[0]].append(codec.event_from_row(row[1:]))
    return events


def _apply_new(conn: Conn, by_visitor: dict[str, list[Event]], coverage: Coverage) -> None:
    """Fold new events into the stored states of their (canonical) visitors; a state
    that must start again from the log is rebuilt, in the same transaction."""
    if not by_visitor:
        return
    states = _states(conn, list(by_visitor))
    rows = []
    again = []
    for visitor_id, events in by_visitor.items():
        state = fold_new(states.get(visitor_id), events, coverage.needs)
        if state is None:
            again.append(visitor_id)
        else:
            rows.append(codec.profile_row(visitor_id, state, coverage))
    _upsert(conn, rows)
    _rebuild_visitors(conn, again, coverage)


def _rebuild_visitors(conn: Conn, ids: Sequence[str], coverage: Coverage) -> None:
    """Recompute the states of ``ids`` (canonical, locked) from all their events."""
    if not ids:
        return
    rows = []
    empty = []
    for visitor_id, log in _logs(conn, ids).items():
        state = rebuilt(log, coverage.needs)
        if state is None:
            empty.append(visitor_id)
        else:
            rows.append(codec.profile_row(visitor_id, state, coverage))
    _upsert(conn, rows)
    if empty:
        conn.execute("DELETE FROM profiles WHERE visitor_id = ANY(%b::text[])", (empty,))


def _upsert(conn: Conn, rows: Sequence[tuple[str, str, str, str]]) -> None:
    """Write profile rows in one statement."""
    if rows:
        conn.execute(_UPSERT, [list(column) for column in zip(*rows, strict=True)])
