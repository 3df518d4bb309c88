"""Finding segment changes: after events, and by sweeping every stored profile.

Segments marked ``"notify": true`` have their members stored (``ChangeLog``). Two ways
find a visitor entering or leaving one:

- ``detect_once`` (every ``poll_interval``, 200 ms): the visitors with events since the
  last look (the event log's order), each evaluated on their stored profile at the
  server's ``now``, exactly as Decide without request context would (the filters of
  ``server.analytics.scans``). Changes are recorded in the same transaction that moves
  the detector's position, so each event is looked at once even when a process stops
  halfway: a change is recorded within about ``poll_interval`` of the event's commit.
- ``sweep_once`` (every ``segment_sweep_interval``, 10 minutes): every stored profile,
  in id order and chunks of ``SWEEP_CHUNK``. It finds what time alone changes (a
  ``$daysAgo`` boundary passing without an event: "no purchase in 60 days" becomes
  true at some instant), and anything else missed (profiles rebuilt from the log,
  visitors deleted). A time-driven change is found at most one sweep interval (plus the
  sweep's own duration) after the instant it happens: the sweep's *granularity*.

A segment newly marked, or whose definition changed (its filter or a segment it
references), starts from a *silent baseline*: the next sweep stores its members without
recording changes, and until that sweep completes its changes are not recorded either.
Changes are about behaviour, not about someone editing a segment. A segment no longer
marked is forgotten (its memberships deleted).

Changes are ordered by their sequence number; a visitor's changes are recorded in the
order they were found, so each visitor's stream is ordered. Changes older than
``retention`` are pruned by the sweep.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from decision import Ruleset
from decision.filters import Predicate
from server.activation.store import ChangeLog, SegmentChange
from server.analytics.scans import Test, compile_for_scan
from server.rules.snapshot import Snapshot

__all__ = ["DETECT_BATCH", "SWEEP_CHUNK", "SegmentWatcher", "definition"]

logger = logging.getLogger("decide.server")

DETECT_BATCH = 5000
"""Events looked at per detection round at most (the rest wait for the next round)."""

SWEEP_CHUNK = 1000
"""Profiles per sweep transaction: each holds the store's write lock for a few ms."""

Clock = Callable[[], datetime]


class _Source(Protocol):
    @property
    def snapshot(self) -> Snapshot | None: ...


def definition(ruleset: Ruleset, segment_id: str) -> str:
    """A hash of what decides membership of ``segment_id``: its filter and those of the
    segments it references, directly or not."""
    filters = ruleset.segment_filters
    seen: dict[str, Any] = {}
    stack = [segment_id]
    while stack:
        current = stack.pop()
        if current in seen or current not in filters:
            continue
        predicate: Predicate = filters[current]
        seen[current] = predicate.spec
        stack.extend(sorted(predicate.references))
    text = json.dumps(sorted(seen.items()), separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class SegmentWatcher:
    """Finds segment changes and records them; see the module docstring.

    ``on_changes`` is called with the changes each round recorded (streams and webhooks
    are woken by it).
    """

    def __init__(
        self,
        changes: ChangeLog,
        source: _Source,
        clock: Clock,
        *,
        retention: timedelta = timedelta(days=7),
        on_changes: Callable[[list[SegmentChange]], None] | None = None,
    ) -> None:
        self.changes = changes
        self._source = source
        self._clock = clock
        self.retention = retention
        self._on_changes = on_changes
        # One sweep at a time (a baseline sweep and a due one may be asked together);
        # detection does not wait for it: the detector's cursor keeps rounds apart.
        self._sweeping = threading.Lock()

    def _tests(self, ruleset: Ruleset, now: datetime) -> dict[str, Test]:
        filters = ruleset.segment_filters
        specs = {segment_id: p.spec for segment_id, p in filters.items()}
        return {
            segment_id: compile_for_scan(filters[segment_id], specs, filters).at(filters, now)
            for segment_id in ruleset.notify_segments
        }

    @staticmethod
    def _members(document: Mapping[str, Any] | None, tests: Mapping[str, Test]) -> set[str]:
        if document is None:
            return set()
        doc = dict(document)
        doc["context"] = {}  # as Decide without a request context
        return {segment_id for segment_id, test in tests.items() if test(doc)}

    def unbaselined(self) -> list[str]:
        """Notify segments of the current rules whose baseline is not complete."""
        snapshot = self._source.snapshot
        if snapshot is None:
            return []
        ruleset = snapshot.ruleset
        if not ruleset.notify_segments:
            return []
        # Read every time (a small query): a cached copy could predate a sweep that
        # completed in another thread, and keep a segment silent until the next one.
        baselines = self.changes.baselines()
        return [s for s in ruleset.notify_segments if baselines.get(s) != definition(ruleset, s)]

    def detect_once(self) -> list[SegmentChange]:
        """One detection round: the visitors with events since the last one."""
        snapshot = self._source.snapshot
        cursor = self.changes.changed_visitors(DETECT_BATCH)
        if cursor.end == cursor.start:
            return []
        if snapshot is None or not snapshot.ruleset.notify_segments:
            self.changes.reconcile({}, (), reason="event", at=self._clock(), cursor=cursor)
            return []
        ruleset = snapshot.ruleset
        now = self._clock()
        tests = self._tests(ruleset, now)
        documents = self.changes.documents(cursor.visitors)
        members = {v: self._members(documents.get(v), tests) for v in cursor.visitors}
        found = self.changes.reconcile(
            members,
            ruleset.notify_segments,
            reason="event",
            at=now,
            silent=self.unbaselined(),
            cursor=cursor,
        )
        self._tell(found)
        return found

    def sweep_once(self) -> list[SegmentChange]:
        """One sweep over every stored profile (see the module docstring)."""
        with self._sweeping:
            return self._sweep()

    def _sweep(self) -> list[SegmentChange]:
        snapshot = self._source.snapshot
        if snapshot is None:
            return []
        ruleset = snapshot.ruleset
        notify = ruleset.notify_segments
        now = self._clock()
        self.changes.drop_segments(notify)
        silent = self.unbaselined()
        found: list[SegmentChange] = []
        if notify:
            tests = self._tests(ruleset, now)
            after = ""
            while True:
                rows = self.changes.scan(after, SWEEP_CHUNK)
                if not rows:
                    break
                members = {visitor_id: self._members(doc, tests) for visitor_id, doc in rows}
                found += self._recorded(members, notify, now, silent)
                after = rows[-1][0]
            while True:
                orphans = self.changes.orphans(SWEEP_CHUNK)
                if not orphans:
                    break
                found += self._recorded(
                    {visitor_id: set() for visitor_id in orphans}, notify, now, silent
                )
        for segment_id in silent:
            self.changes.set_baseline(segment_id, definition(ruleset, segment_id))
        self.changes.prune(now - self.retention)
        return found

    def _recorded(
        self,
        members: Mapping[str, set[str]],
        notify: Sequence[str],
        now: datetime,
        silent: Sequence[str],
    ) -> list[SegmentChange]:
        found = self.changes.reconcile(members, notify, reason="sweep", at=now, silent=silent)
        self._tell(found)
        return found

    def _tell(self, found: list[SegmentChange]) -> None:
        if found and self._on_changes is not None:
            self._on_changes(found)
