"""Segment filters evaluated over every stored profile: filter analysis, exports, sizes,
memberships (EstimateSegment's scan, split over worker processes: ``server.analytics.estimates``).

One pass over ``profiles`` per question: each document is parsed with orjson and the
compiled predicates (``decision.filters``) are called on it, with the request context
taken as empty and ``now`` the server's clock, so a profile matches here exactly when
Decide would find it in the segment without context. Cost is linear in stored
profiles: about 1.5 to 3 us per profile to read and parse, plus about 0.5 to 2.5 us
per filter evaluated (``bench/estimate.py``). Two things keep the per-profile work
small:

- ``required_keys``: the top-level fields a filter cannot match without (a
  ``$gte`` on ``customer_segment.outbounds_value_total`` needs ``customer_segment``).
  A profile lacking one is rejected with a dict lookup, without calling the filter:
  most stored profiles are one-visit visitors with few fields, so most segments are
  decided that way.
- Time-independent filters are evaluated once per profile even when a report needs
  several moments (journeys evaluate at the period's start, end and now); only filters
  using ``$daysAgo``/``$hoursAgo`` (directly or through ``$segment``) are re-evaluated.

Why not SQLite's ``json_extract`` of the needed keys: measured on 1,000,000 stored
profiles, extracting three keys in SQL took longer (4.3 s) than reading whole
documents and parsing them with orjson (3.9 s), because SQLite 3.40 parses the whole
document per call anyway; the Python side then parses the same bytes either way.

Journeys need each visitor's segments at the period's start: a visitor without events
since then has the same document now, evaluated with ``now`` = start; a visitor with
events since then is rebuilt from the event log up to that moment
(``decision.profile.rebuild``, keeping the activity the ruleset's clauses read), as the
profile store itself would have held it.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from decision import ActivityNeeds, Ruleset
from decision.filters import Predicate
from decision.profile import Event, format_timestamp, rebuild, render

Test = Callable[[dict[str, Any]], bool]

_FALSE_ON_MISSING = frozenset(
    {"$gt", "$gte", "$lt", "$lte", "$regex", "$size", "$all", "$elemMatch", "$mod"}
)
"""Operators that never match a missing field, whatever their operand."""

_CHUNK = 500
PLAIN_KEY = re.compile(r"[A-Za-z0-9_\-]+")
"""Field names that any JSON writer leaves unescaped (``server.analytics.estimates.markers``)."""

MMAP_SIZE = 2**31


def connect(path: str | Path) -> sqlite3.Connection:
    """A read-only connection for one report (closed by the caller)."""
    # Quoted: a path holding '?', '#' or '%' would otherwise end or garble the URI.
    uri = f"file:{quote(str(Path(path).resolve()))}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=5.0, check_same_thread=False)
    conn.execute("PRAGMA query_only = ON")
    # Scans read the file through a memory map instead of one pread per page (measured:
    # a third less SQLite time on 1,000,000 profiles; SQLite caps the map at 2 GiB).
    conn.execute(f"PRAGMA mmap_size = {MMAP_SIZE}")
    return conn


# -- filter analysis ---------------------------------------------------------------------


def required_keys(
    spec: Any, segments: Mapping[str, Any], _seen: frozenset[str] = frozenset()
) -> frozenset[str]:
    """Top-level document fields without which ``spec`` cannot match (conservative:
    a field is listed only when its absence makes the filter false for certain).

    ``segments`` maps segment ids to their filter specs, for ``$segment`` clauses.
    """
    if not isinstance(spec, dict):
        return frozenset()
    needed: set[str] = set()
    for key, value in spec.items():
        if key == "$and" and isinstance(value, list):
            for sub in value:
                needed |= required_keys(sub, segments, _seen)
        elif key == "$or" and isinstance(value, list) and value:
            options = [required_keys(sub, segments, _seen) for sub in value]
            needed |= frozenset.intersection(*options)
        elif key == "$segment" and isinstance(value, str) and value not in _seen:
            needed |= required_keys(segments.get(value), segments, _seen | {value})
        elif not key.startswith("$") and _false_when_missing(value):
            needed.add(key.split(".", 1)[0])
    return frozenset(needed)


def _false_when_missing(condition: Any) -> bool:
    """Whether a field condition is false for a document without the field."""
    if isinstance(condition, dict) and condition and all(k.startswith("$") for k in condition):
        for op, operand in condition.items():
            if op in _FALSE_ON_MISSING:
                return True
            if op == "$eq" and operand is not None:
                return True
            if op == "$exists" and operand is True:
                return True
            if op == "$in" and isinstance(operand, list) and None not in operand:
                return True
        return False
    return condition is not None  # implicit equality: only null matches a missing field


def _time_dependent(predicate: Predicate, filters: Mapping[str, Predicate]) -> bool:
    seen: set[str] = set()
    stack = [predicate]
    while stack:
        current = stack.pop()
        if current.uses_now:
            return True
        for ref in current.references:
            if ref not in seen and ref in filters:
                seen.add(ref)
                stack.append(filters[ref])
    return False


@dataclass(frozen=True, slots=True)
class _Compiled:
    """One filter, ready for the scan loop."""

    predicate: Predicate
    required: tuple[str, ...]
    timed: bool
    everyone: bool

    def at(self, filters: Mapping[str, Predicate], now: datetime) -> Test:
        """``doc -> bool`` evaluating at ``now``."""
        predicate, required = self.predicate, self.required
        if self.everyone:
            return _always
        if predicate.uses_now or predicate.references:

            def call(doc: dict[str, Any]) -> bool:
                return predicate(doc, now, segments=filters)

        else:
            call = predicate
        if not required:
            return call
        if len(required) == 1:
            (key,) = required

            def one(doc: dict[str, Any]) -> bool:
                return key in doc and call(doc)

            return one

        def many(doc: dict[str, Any]) -> bool:
            for k in required:
                if k not in doc:
                    return False
            return call(doc)

        return many


def _always(doc: dict[str, Any]) -> bool:
    return True


def compile_for_scan(
    predicate: Predicate, specs: Mapping[str, Any], filters: Mapping[str, Predicate]
) -> _Compiled:
    """Analyse a compiled filter once: required fields, time dependence, ``{}``."""
    return _Compiled(
        predicate=predicate,
        required=tuple(sorted(required_keys(predicate.spec, specs))),
        timed=_time_dependent(predicate, filters),
        everyone=predicate.spec == {},
    )


def _specs(ruleset: Ruleset) -> dict[str, Any]:
    return {segment_id: p.spec for segment_id, p in ruleset.segment_filters.items()}


def _documents(conn: sqlite3.Connection) -> Iterator[tuple[str, dict[str, Any]]]:
    loads = orjson.loads
    for visitor_id, text in conn.execute("SELECT visitor_id, document FROM profiles"):
        doc = loads(text)
        doc["context"] = {}  # Decide without a request context
        yield visitor_id, doc


def export(
    conn: sqlite3.Connection, segment_id: str, ruleset: Ruleset, now: datetime, page_size: int
) -> Iterator[list[str]]:
    """The visitor ids of the segment's stored profiles, ``page_size`` at a time."""
    filters = ruleset.segment_filters
    test = compile_for_scan(filters[segment_id], _specs(ruleset), filters).at(filters, now)
    page: list[str] = []
    conn.execute("BEGIN")
    try:
        for visitor_id, doc in _documents(conn):
            if test(doc):
                page.append(visitor_id)
                if len(page) >= page_size:
                    yield page
                    page = []
        if page:
            yield page
    finally:
        conn.execute("COMMIT")


def segment_sizes(
    conn: sqlite3.Connection, ruleset: Ruleset, now: datetime
) -> tuple[int, dict[str, int]]:
    """``(profiles, {segment id: stored profiles in it})`` for every segment."""
    filters = ruleset.segment_filters
    specs = _specs(ruleset)
    tests = [
        (i, compile_for_scan(filters[s], specs, filters).at(filters, now))
        for i, s in enumerate(filters)
    ]
    sizes = [0] * len(tests)
    total = 0
    conn.execute("BEGIN")
    try:
        for _, doc in _documents(conn):
            total += 1
            for i, test in tests:
                if test(doc):
                    sizes[i] += 1
    finally:
        conn.execute("COMMIT")
    return total, dict(zip(filters, sizes, strict=True))


# -- memberships for segment reports ----------------------------------------------------


@dataclass(slots=True)
class Memberships:
    """Chosen segments' memberships: now, at the period's start and at its end.

    Masks have bit ``i`` set for ``segment_ids[i]``. ``overlap`` counts visitors in both
    segments now; ``journeys[(a, b)]`` visitors in ``a`` and not ``b`` at the start and
    in ``b`` at the end; ``members_at_end`` the mask at the end of every visitor in at
    least one segment then; ``engagement[i]`` the sessions, page views and time on site
    (seconds) of ``segment_ids[i]``'s members now, added up from their profiles.
    """

    segment_ids: tuple[str, ...]
    profiles: int = 0
    overlap: list[list[int]] = field(default_factory=list)
    journeys: dict[tuple[str, str], int] = field(default_factory=dict)
    members_at_end: dict[str, int] = field(default_factory=dict)
    engagement: list[tuple[int, int, float]] = field(default_factory=list)


def memberships(
    conn: sqlite3.Connection,
    segment_ids: Sequence[str],
    ruleset: Ruleset,
    *,
    start: datetime,
    end: datetime,
    now: datetime,
) -> Memberships:
    """Evaluate ``segment_ids`` over every profile now, at ``start`` and at ``end``
    (``end`` is capped at ``now``); see the module docstring for how the past is known."""
    end = min(end, now)
    filters = ruleset.segment_filters
    specs = _specs(ruleset)
    compiled = [compile_for_scan(filters[s], specs, filters) for s in segment_ids]
    at_now = [c.at(filters, now) for c in compiled]
    at_start = [c.at(filters, start) if c.timed else None for c in compiled]
    at_end = [c.at(filters, end) if c.timed else None for c in compiled]
    bits = [1 << i for i in range(len(segment_ids))]
    conn.execute("BEGIN")
    try:
        needs = ruleset.activity
        start_masks = _rebuilt_masks(conn, compiled, filters, needs, start)
        end_masks = _rebuilt_masks(conn, compiled, filters, needs, end) if end < now else {}
        by_mask: dict[int, int] = {}
        moves: dict[tuple[int, int], int] = {}
        members: dict[str, int] = {}
        engaged: dict[int, list[float]] = {}  # mask now -> [sessions, page views, seconds]
        total = 0
        for visitor_id, doc in _documents(conn):
            total += 1
            mask_now = mask_start = mask_end = 0
            for i, test in enumerate(at_now):
                hit = test(doc)
                if hit:
                    mask_now |= bits[i]
                start_test, end_test = at_start[i], at_end[i]
                if start_test is None:
                    if hit:
                        mask_start |= bits[i]
                elif start_test(doc):
                    mask_start |= bits[i]
                if end_test is None:
                    if hit:
                        mask_end |= bits[i]
                elif end_test(doc):
                    mask_end |= bits[i]
            mask_start = start_masks.pop(visitor_id, mask_start)
            mask_end = end_masks.pop(visitor_id, mask_end)
            if mask_now:
                by_mask[mask_now] = by_mask.get(mask_now, 0) + 1
                engagement = doc.get("engagement")
                if type(engagement) is dict:
                    sums = engaged.setdefault(mask_now, [0, 0, 0.0])
                    sums[0] += engagement.get("sessions", 0)
                    sums[1] += engagement.get("page_views", 0)
                    sums[2] += engagement.get("time_on_site", 0.0)
            if mask_end:
                members[visitor_id] = mask_end
                if mask_end & ~mask_start:
                    key = (mask_start, mask_end)
                    moves[key] = moves.get(key, 0) + 1
        # Visitors merged away since (their profile is gone) still count as they were.
        for visitor_id, mask_start in start_masks.items():
            mask_end = end_masks.get(visitor_id, 0)
            if mask_end & ~mask_start:
                moves[(mask_start, mask_end)] = moves.get((mask_start, mask_end), 0) + 1
    finally:
        conn.execute("COMMIT")
    n = len(segment_ids)
    overlap = [[0] * n for _ in range(n)]
    for mask, count in by_mask.items():
        present = [i for i in range(n) if mask & bits[i]]
        for i in present:
            for j in present:
                overlap[i][j] += count
    totals = [[0, 0, 0.0] for _ in range(n)]
    for mask, sums in engaged.items():
        for i in range(n):
            if mask & bits[i]:
                for k in range(3):
                    totals[i][k] += sums[k]
    journeys: dict[tuple[str, str], int] = {}
    for (before, after), count in moves.items():
        gained = after & ~before
        for a in range(n):
            if not before & bits[a]:
                continue
            for b in range(n):
                if a != b and gained & bits[b]:
                    pair = (segment_ids[a], segment_ids[b])
                    journeys[pair] = journeys.get(pair, 0) + count
    engagement = [(int(s), int(p), float(t)) for s, p, t in totals]
    return Memberships(tuple(segment_ids), total, overlap, journeys, members, engagement)


def _rebuilt_masks(
    conn: sqlite3.Connection,
    compiled: Sequence[_Compiled],
    filters: Mapping[str, Predicate],
    needs: ActivityNeeds,
    moment: datetime,
) -> dict[str, int]:
    """Masks at ``moment`` of every visitor with events at or after it, each profile
    rebuilt from its events before ``moment`` keeping what ``needs`` reads (0: the
    visitor did not exist yet)."""
    stamp = format_timestamp(moment)
    changed = [
        row[0]
        for row in conn.execute("SELECT DISTINCT visitor_id FROM events WHERE ts >= ?", (stamp,))
    ]
    tests = [c.at(filters, moment) for c in compiled]
    masks: dict[str, int] = {}
    for start in range(0, len(changed), _CHUNK):
        chunk = changed[start : start + _CHUNK]
        logs: dict[str, list[Event]] = {visitor_id: [] for visitor_id in chunk}
        marks = ", ".join("?" * len(chunk))
        for visitor_id, event_id, source_id, kind, ts, properties in conn.execute(
            "SELECT visitor_id, event_id, source_id, type, ts, properties FROM events"
            f" WHERE visitor_id IN ({marks}) AND ts < ? ORDER BY visitor_id, ts, event_id",
            [*chunk, stamp],
        ):
            logs[visitor_id].append(
                Event(
                    event_id,
                    source_id,
                    kind,
                    datetime.fromisoformat(ts),
                    orjson.loads(properties),
                )
            )
        for visitor_id, log in logs.items():
            mask = 0
            if log:
                doc = render(rebuild(log, needs))
                doc["context"] = {}
                for i, test in enumerate(tests):
                    if test(doc):
                        mask |= 1 << i
            masks[visitor_id] = mask
    return masks


def days_between(start: datetime, end: datetime) -> list[str]:
    """ISO dates from ``start``'s to ``end``'s, inclusive."""
    first, last = start.date(), end.date()
    return [(first + timedelta(days=d)).isoformat() for d in range((last - first).days + 1)]
