"""EstimateSegment: how many stored profiles a filter matches, a sample of them, and the
existing segments it overlaps most.

One pass over ``profiles``. Each row is read as raw JSON bytes, and SQLite itself drops
the rows whose bytes lack a field the filter requires (``instr(document, '"visits"')``
for ``{"visits": {"$gte": 2}}``: a document without the key cannot match, see
``audiences.required_keys``), so those never reach Python. The others are parsed with
orjson and filtered, and the ruleset's segments are evaluated on the matching ones only
(``both``). Segment sizes, for the Jaccard ranking, come from a ``SizeCache`` filled by an
earlier full pass; without one, this pass reads every row and evaluates every segment on
every profile.

Large stores are scanned by a ``ScanPool``: the rowid space is cut into one range per
worker process, each worker compiles the filter and the segments from their JSON text,
scans its range in its own read transaction and returns counts, matching ids (in rowid
order) and overlap counts, which are summed here. A store below the pool's threshold is
scanned in the calling thread. Both paths run the same ``_scan``, so they give the same
answer: the same counts, and the same sample (``random.Random(matching).sample`` of the
matching ids in rowid order). Under concurrent writes each range is a snapshot of its
own; the workers start within milliseconds of one another, so the snapshots are that
far apart. A profile is still counted once, as it lives in one range and updates keep
its rowid; only an identity merge in those milliseconds, between profiles in two
ranges, can count the visitor twice or not at all.
"""

from __future__ import annotations

import functools
import json
import random
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import orjson

import decision
from decision import Ruleset
from decision.filters import Predicate
from server.analytics import scans as audiences
from server.analytics.scan_pool import ScanPool
from server.errors import ScanCancelledError

__all__ = ["SIZES_MAX_AGE", "Estimate", "Overlap", "SizeCache", "estimate"]

SIZES_MAX_AGE = timedelta(minutes=5)
"""How long ``estimate`` reuses the segment sizes of an earlier full pass (``SizeCache``)."""

_FETCH = 2048

Test = audiences.Test


@dataclass(frozen=True, slots=True)
class Overlap:
    """How an estimated filter overlaps an existing segment."""

    segment_id: str
    segment_size: int
    both: int
    jaccard: float


@dataclass(frozen=True, slots=True)
class Estimate:
    """What a filter matches among the stored profiles. ``sizes_at``: when the overlaps'
    ``segment_size`` were counted (this call's ``now``, or an earlier full pass)."""

    matching: int
    profiles: int
    sample_ids: tuple[str, ...]
    overlaps: tuple[Overlap, ...]
    sizes_at: datetime


class SizeCache:
    """Segment sizes from the last full pass over a store file, for one ruleset.

    Reused for ``max_age`` after the pass whatever was written since: sizes are then
    those of the pass's moment, which the estimate reports (``Estimate.sizes_at``), and
    an overlap's size is never below the profiles found in both now. A new ruleset, or
    a clock before the pass, misses the cache."""

    def __init__(self, max_age: timedelta = SIZES_MAX_AGE) -> None:
        self.max_age = max_age
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[Ruleset, datetime, dict[str, int]]] = {}

    def get(
        self, path: str | Path, ruleset: Ruleset, now: datetime
    ) -> tuple[datetime, dict[str, int]] | None:
        """``(counted_at, sizes)``, or None when there are none fresh enough."""
        with self._lock:
            entry = self._entries.get(str(Path(path).resolve()))
        if entry is None or entry[0] is not ruleset:
            return None
        if not timedelta(0) <= now - entry[1] <= self.max_age:
            return None
        return entry[1], entry[2]

    def put(
        self, path: str | Path, ruleset: Ruleset, counted_at: datetime, sizes: dict[str, int]
    ) -> None:
        with self._lock:
            self._entries[str(Path(path).resolve())] = (ruleset, counted_at, sizes)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def estimate(
    path: str | Path,
    predicate: Predicate,
    ruleset: Ruleset,
    now: datetime,
    *,
    sample_size: int = 10,
    top: int = 5,
    pool: ScanPool | None = None,
    sizes: SizeCache | None = None,
) -> Estimate:
    """Count the stored profiles ``predicate`` matches in the file at ``path``, sample
    them, and rank the ruleset's segments by Jaccard index with the match.

    ``pool``: worker processes for a store of at least ``pool.min_profiles`` rows (by
    rowid); ``sizes``: segment sizes of an earlier pass, filled by this one when empty.
    """
    filters = ruleset.segment_filters
    ids = list(filters)
    cached = sizes.get(path, ruleset, now) if sizes is not None else None
    with closing(audiences.connect(path)) as conn:
        first, last = conn.execute("SELECT min(rowid), max(rowid) FROM profiles").fetchone()
        tasks = None
        if pool is not None and first is not None and pool.wants(last - first + 1):
            tasks = _tasks(
                str(Path(path).resolve()),
                predicate,
                filters,
                now,
                (first, last),
                pool.processes,
                cached is None,
            )
        if pool is not None and tasks is not None:
            partials = pool.run(_run, tasks)
        else:
            plan = _plan(predicate, filters, now)
            cancelled = pool.cancelled if pool is not None else None
            partials = [_scan(conn, plan, None, None, sizes=cached is None, cancelled=cancelled)]
    matched = [visitor_id for p in partials for visitor_id in p.matched]
    both = _column_sums([p.both for p in partials], len(ids))
    if cached is None:
        sizes_at, size_of = now, dict(
            zip(ids, _column_sums([p.sizes for p in partials], len(ids)), strict=True)
        )
        if sizes is not None:
            sizes.put(path, ruleset, now, size_of)
    else:
        sizes_at, size_of = cached
    count = len(matched)
    overlaps = [
        Overlap(s, size, both[i], both[i] / (count + size - both[i]))
        for i, s in enumerate(ids)
        if both[i]
        # Cached sizes may predate writes: never below the profiles found in both now.
        for size in (max(size_of[s], both[i]),)
    ]
    overlaps.sort(key=lambda o: (-o.jaccard, -o.both, o.segment_id))
    sample = random.Random(count).sample(matched, min(sample_size, count))
    profiles = sum(p.profiles for p in partials)
    return Estimate(count, profiles, tuple(sample), tuple(overlaps[:top]), sizes_at)


def _column_sums(rows: Sequence[Sequence[int]], width: int) -> list[int]:
    return [sum(row[i] for row in rows) for i in range(width)]


# -- one rowid range ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Plan:
    """A filter and the segments, ready for the scan loop."""

    test: Test
    markers: tuple[bytes, ...]
    segments: tuple[tuple[int, Test], ...]


def _plan(predicate: Predicate, filters: Mapping[str, Predicate], now: datetime) -> _Plan:
    specs = {segment_id: p.spec for segment_id, p in filters.items()}
    compiled = audiences.compile_for_scan(predicate, specs, filters)
    return _Plan(
        compiled.at(filters, now),
        markers(compiled.required),
        tuple(
            (i, audiences.compile_for_scan(p, specs, filters).at(filters, now))
            for i, p in enumerate(filters.values())
        ),
    )


def markers(required: Sequence[str]) -> tuple[bytes, ...]:
    """The encoded keys ``b'"name"'`` whose absence from a document's raw JSON proves the
    field absent. Only plain ASCII names: every JSON writer leaves them unescaped.
    ``context`` is added after parsing, so it is never one."""
    plain = audiences.PLAIN_KEY.fullmatch
    return tuple(f'"{k}"'.encode() for k in required if k != "context" and plain(k))


@dataclass(frozen=True, slots=True)
class _Partial:
    """What one range holds: rows, matching ids in rowid order, per-segment counts."""

    profiles: int
    matched: list[str]
    both: list[int]
    sizes: list[int]


def _scan(
    conn: sqlite3.Connection,
    plan: _Plan,
    low: int | None,
    high: int | None,
    *,
    sizes: bool,
    cancelled: threading.Event | None = None,
) -> _Partial:
    """Scan the profiles with ``low < rowid <= high`` (None: unbounded) in one read
    transaction. With ``sizes``, every row is read and every segment evaluated on it;
    otherwise rows lacking a required field are dropped by SQLite (``plan.markers``)
    and the segments are evaluated on matching profiles only."""
    bounds: list[str] = []
    params: list[Any] = []
    if low is not None:
        bounds.append("rowid > ?")
        params.append(low)
    if high is not None:
        bounds.append("rowid <= ?")
        params.append(high)
    test, segments, parse = plan.test, plan.segments, _parse
    both = [0] * len(segments)
    counted = [0] * len(segments)
    matched: list[str] = []
    conn.execute("BEGIN")
    try:
        if sizes:
            total = 0
            for rows in _rows(conn, bounds, params, cancelled):
                total += len(rows)
                for visitor_id, raw in rows:
                    doc = parse(raw)
                    if test(doc):
                        matched.append(visitor_id)
                        for i, segment_test in segments:
                            if segment_test(doc):
                                counted[i] += 1
                                both[i] += 1
                    else:
                        for i, segment_test in segments:
                            if segment_test(doc):
                                counted[i] += 1
        else:
            (total,) = conn.execute(
                f"SELECT count(*) FROM profiles{_where(bounds)}", params
            ).fetchone()
            # instr on the document as a BLOB: a byte search, no UTF-8 decoding.
            found = ["instr(CAST(document AS BLOB), ?)"] * len(plan.markers)
            for rows in _rows(conn, bounds + found, params + list(plan.markers), cancelled):
                for visitor_id, raw in rows:
                    doc = parse(raw)
                    if test(doc):
                        matched.append(visitor_id)
                        for i, segment_test in segments:
                            if segment_test(doc):
                                both[i] += 1
    finally:
        conn.execute("COMMIT")
    return _Partial(total, matched, both, counted)


def _where(conditions: Sequence[str]) -> str:
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""


def _rows(
    conn: sqlite3.Connection,
    conditions: Sequence[str],
    params: Sequence[Any],
    cancelled: threading.Event | None,
) -> Iterator[list[tuple[str, bytes]]]:
    """``(visitor_id, raw JSON bytes)`` of the rows meeting ``conditions``, in rowid
    order and in chunks (bytes: no UTF-8 decoding of documents that are not parsed)."""
    cursor = conn.execute(
        "SELECT visitor_id, CAST(document AS BLOB) FROM profiles"
        f"{_where(conditions)} ORDER BY rowid",
        params,
    )
    while rows := cursor.fetchmany(_FETCH):
        if cancelled is not None and cancelled.is_set():
            raise ScanCancelledError()
        yield rows


def _parse(raw: bytes) -> dict[str, Any]:
    # A leading space marks a document the store wrote with ``json`` (integers beyond
    # 64 bits, which orjson would read as floats): ``server.profiles.sqlite._dumps``.
    doc: dict[str, Any] = json.loads(raw) if raw[:1] == b" " else orjson.loads(raw)
    doc["context"] = {}  # Decide without a request context
    return doc


# -- worker processes --------------------------------------------------------------------


class _Task(NamedTuple):
    """One rowid range for a worker: plain data only (it compiles the filters itself)."""

    path: str
    filter_json: str
    segments_json: str
    now: str
    low: int | None
    high: int | None
    sizes: bool


def _tasks(
    path: str,
    predicate: Predicate,
    filters: Mapping[str, Predicate],
    now: datetime,
    rowids: tuple[int, int],
    parts: int,
    sizes: bool,
) -> list[_Task] | None:
    """One task per rowid range (the first and last unbounded, so rows added meanwhile
    are not lost); None when a filter is not JSON (a ``datetime`` in a spec built in
    Python): the caller scans in-process then."""
    try:
        filter_json = json.dumps(predicate.spec)
        segments_json = json.dumps({s: p.spec for s, p in filters.items()})
    except (TypeError, ValueError):
        return None
    first, last = rowids
    parts = max(1, min(parts, last - first + 1))
    edges = [first - 1 + (last - first + 1) * k // parts for k in range(parts + 1)]
    return [
        _Task(
            path,
            filter_json,
            segments_json,
            now.isoformat(),
            low=None if k == 0 else edges[k],
            high=None if k == parts - 1 else edges[k + 1],
            sizes=sizes,
        )
        for k in range(parts)
    ]


@functools.lru_cache(maxsize=8)
def _compiled(filter_json: str, segments_json: str) -> tuple[Predicate, dict[str, Predicate]]:
    filters = {s: decision.compile_filter(spec) for s, spec in json.loads(segments_json).items()}
    return decision.compile_filter(json.loads(filter_json)), filters


def _run(task: _Task) -> _Partial:
    """A worker's part of an estimate: its range of the file, in its own connection."""
    path, filter_json, segments_json, now, low, high, sizes = task
    predicate, filters = _compiled(filter_json, segments_json)
    plan = _plan(predicate, filters, datetime.fromisoformat(now))
    with closing(audiences.connect(path)) as conn:
        return _scan(conn, plan, low, high, sizes=sizes)
