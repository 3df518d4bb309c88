"""DecideBatch: one or more placements decided for many visitors at one moment.

For an email send: every stored visitor of a segment (the profiles an export scans, in
visitor id order), or a list of visitor ids. Each visitor is decided exactly as Decide
decides them (``decision.decide_trusted`` on the canonical id with the stored profile,
the request context under ``context`` and their stored assignments), at the
request's ``now``. A preview records nothing; a recorded batch writes every served
campaign as an exposure tagged with its channel and send id, page by page, and those
exposures store assignments and served campaigns like Decide's
(``server.activation.recording``).

Bounded: a call decides at most ``max_visitors`` (``DECIDE_MAX_BATCH_VISITORS``); a
segment batch that has more says where to continue (``next_start_after``). The work
is done one page at a time in the server's report pool (``Batch.next_page``): the
servicer asks for the next page only after the previous one was sent, so a slow reader
holds no more than a page in memory and no thread while it reads. A recorded page is
written by a thread of the call's own while the next page is decided (one page at a
time, in order: SQLite's work runs without the GIL), and the call ends only once every
page is written.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from decision import HOLDOUT_ARM, Decision, Reason, Ruleset, decide_trusted
from protos import decisioning_pb2 as pb
from server.activation.store import AssignmentStore
from server.analytics import scans
from server.analytics.exposure_buffer import Pending
from server.api.convert import new_decision_ids
from server.profiles.store import ProfileReader
from server.rules.snapshot import Snapshot

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "Batch",
    "BatchRequest",
    "content_fields",
]

DEFAULT_PAGE_SIZE = 500
MAX_PAGE_SIZE = 5000
SCAN_CHUNK = 2000
"""Stored profiles read per query while looking for a segment's members."""

_REASONS: dict[Reason, Any] = {r: pb.Reason.Value(f"REASON_{r.name}") for r in Reason}


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """A checked DecideBatch request."""

    placements: tuple[str, ...]
    context: dict[str, Any]
    now: datetime
    segment: str | None = None
    visitor_ids: tuple[str, ...] = ()
    record: bool = False
    channel: str = ""
    send_id: str = ""
    start_after: str = ""
    page_size: int = DEFAULT_PAGE_SIZE


@dataclass(slots=True)
class Page:
    """One page: its rows, and the exposures recorded for it."""

    rows: list[pb.BatchRow] = field(default_factory=list)
    exposures: int = 0


def content_fields(ruleset: Ruleset, placement_id: str) -> list[str]:
    """Top-level keys of the placement's fallback and of its candidates' variant
    content, in first-seen order: the columns a CSV needs."""
    found: dict[str, None] = {}
    placement = ruleset.placements.get(placement_id)
    if placement is None:
        return []
    contents = [placement.fallback]
    for campaign in ruleset.candidates.get(placement_id, ()):
        contents += [v.content for v in campaign.variants if not v.uses_fallback]
    for content in contents:
        if isinstance(content, dict):
            found.update(dict.fromkeys(content))
    return list(found)


class Batch:
    """One DecideBatch call's work: ``next_page`` (from a pool thread) until None."""

    def __init__(
        self,
        request: BatchRequest,
        snapshot: Snapshot,
        *,
        profiles: ProfileReader,
        assignments: AssignmentStore,
        path: Path,
        exposures: Any,
        max_visitors: int,
    ) -> None:
        self.request = request
        self.snapshot = snapshot
        self._profiles = profiles
        self._assignments = assignments
        self._path = path
        self._exposures = exposures
        self.max_visitors = max_visitors
        self.visitors = 0
        self.exposures = 0
        self.complete = False
        self.last_visitor = ""
        self._source = self._segment_rows() if request.segment else self._listed_rows()
        self._writer: ThreadPoolExecutor | None = None
        self._recording: Future[None] | None = None

    # -- visitors -------------------------------------------------------------------------

    def _segment_rows(self) -> Iterator[tuple[str, dict[str, Any] | None]]:
        """``(canonical id, profile)`` of the segment's stored members after
        ``start_after``, in id order."""
        ruleset = self.snapshot.ruleset
        segment = self.request.segment or ""
        filters = ruleset.segment_filters
        specs = {segment_id: p.spec for segment_id, p in filters.items()}
        test = scans.compile_for_scan(filters[segment], specs, filters).at(
            filters, self.request.now
        )
        after = self.request.start_after
        conn = scans.connect(self._path)
        try:
            while True:
                rows = conn.execute(
                    "SELECT visitor_id, document FROM profiles WHERE visitor_id > ?"
                    " ORDER BY visitor_id LIMIT ?",
                    (after, SCAN_CHUNK),
                ).fetchall()
                if not rows:
                    return
                for visitor_id, text in rows:
                    document = orjson.loads(text) if text[:1] != " " else _slow_json(text)
                    document["context"] = {}
                    if test(document):
                        del document["context"]
                        yield visitor_id, document
                after = rows[-1][0]
        finally:
            conn.close()

    def _listed_rows(self) -> Iterator[tuple[str, dict[str, Any] | None]]:
        """``(visitor id, profile or None)`` of the listed visitors, in order."""
        for visitor_id in self.request.visitor_ids:
            yield visitor_id, self._profiles.get(visitor_id)

    # -- deciding ---------------------------------------------------------------------

    def next_page(self) -> Page | None:
        """Decide the next page of visitors; None when the call is done (and every page
        recorded)."""
        page = self._next_page()
        if page is None:
            self.wait_recorded()
        return page

    def _next_page(self) -> Page | None:
        if self.complete:
            return None
        room = self.max_visitors - self.visitors
        if room <= 0:
            return None
        take = min(self.request.page_size, room)
        listed: list[tuple[str, dict[str, Any] | None]] = []
        for item in self._source:
            listed.append(item)
            if len(listed) >= take:
                break
        else:
            self.complete = True
        if not listed:
            return None
        page = self._decide(listed)
        self.visitors += len(listed)
        self.last_visitor = listed[-1][0]
        if self.visitors >= self.max_visitors and not self.complete:
            # Another visitor left? (The next call starts after the last one decided.)
            self.complete = next(self._source, None) is None
        return page

    def _decide(self, listed: Sequence[tuple[str, dict[str, Any] | None]]) -> Page:
        request = self.request
        ruleset = self.snapshot.ruleset
        identities = self._assignments.identities([visitor_id for visitor_id, _ in listed])
        placements = list(request.placements)
        now = request.now
        page = Page()
        served: list[Pending] = []
        # Ids for the whole page at once (ULIDs, ordered within a millisecond).
        all_ids = iter(new_decision_ids(len(listed) * len(placements)))
        for visitor_id, profile in listed:
            identity = identities[visitor_id]
            document = (
                {**profile, "context": request.context} if profile else {"context": request.context}
            )
            decisions = decide_trusted(
                ruleset,
                identity.canonical,
                document,
                placements,
                now,
                False,
                None,
                identity.assignments or None,
            )
            ids = [next(all_ids) for _ in decisions]
            page.rows.append(
                pb.BatchRow(
                    visitor_id=visitor_id,
                    canonical_id=identity.canonical,
                    known=profile is not None,
                    decisions=[self._message(d, i) for d, i in zip(decisions, ids, strict=True)],
                )
            )
            if request.record:
                served += [
                    (
                        i,
                        visitor_id,
                        d.campaign_id,
                        d.variant_id or HOLDOUT_ARM,
                        d.matched_segments,
                        d.placement,
                        now,
                    )
                    for d, i in zip(decisions, ids, strict=True)
                    if d.campaign_id is not None
                ]
        if served:
            self._record(served)
            page.exposures = len(served)
            self.exposures += len(served)
        return page

    def _record(self, served: list[Pending]) -> None:
        """Write ``served`` on the recording thread while the next page is decided; one
        page is recorded at a time, in order (the previous one must be done first)."""
        self.wait_recorded()
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="decide-batch-record")
        request = self.request
        self._recording = self._writer.submit(
            self._exposures.write, served, channel=request.channel, send_id=request.send_id
        )

    def wait_recorded(self) -> None:
        """Wait until every page decided so far is recorded (its error, if any, raised)."""
        recording, self._recording = self._recording, None
        if recording is not None:
            recording.result()

    def close(self) -> None:
        """Finish recording and stop the recording thread."""
        try:
            self.wait_recorded()
        finally:
            if self._writer is not None:
                self._writer.shutdown(wait=True)

    def _message(self, d: Decision, decision_id: str) -> pb.Decision:
        return pb.Decision(
            placement=d.placement,
            decision_id=decision_id,
            reason=_REASONS[d.reason],
            campaign_id=d.campaign_id or "",
            variant_id=d.variant_id or "",
            control=d.control,
            content_json=self.snapshot.content_json(d.content),
            matched_segments=d.matched_segments,
        )


def new_send_id() -> str:
    """A send id for a recorded batch that names none."""
    return f"send-{uuid.uuid4().hex[:16]}"


def _slow_json(text: str) -> dict[str, Any]:
    import json

    value: dict[str, Any] = json.loads(text)
    return value
