"""``decisioning.v1.ActivationService``: batch decisions, segment-change streams, webhook logs.

Proto <-> model conversion and request checks; the work is in ``server.activation``.
Every method needs the admin token (``server.api.interceptors``): a batch names the
visitors of a segment, a change stream says who entered which segment.

DecideBatch and WatchSegmentChanges are response streams (async generators): each page
is computed in a pool thread (a batch's decisions in the report pool; a stream's reads
in the read pool) and the next is asked for only once the previous one was sent, so a
slow reader costs neither memory beyond a page nor a thread while it reads (gRPC's flow
control holds the generator at its ``yield``).
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from decision import InvalidRequestError, Problem
from protos import decisioning_pb2 as pb
from server import limits
from server.activation.batch import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Batch,
    BatchRequest,
    content_fields,
    new_send_id,
)
from server.activation.feed import POLL_INTERVAL, ChangeFeed
from server.activation.moments import requested_moment
from server.activation.store import (
    AssignmentStore,
    ChangeLog,
    Delivery,
    DeliveryStatus,
    SegmentChange,
    WebhookLog,
)
from server.api.convert import StructCache, timestamp
from server.errors import (
    OverloadedError,
    PreconditionError,
    ResumeTokenExpiredError,
    RulesNotLoadedError,
)
from server.executors import Pool
from server.profiles.store import ProfileReader
from server.rules.snapshot import Snapshot

__all__ = ["ActivationServicer"]

Clock = Callable[[], datetime]

MAX_MESSAGE_BYTES = 2 * 1024 * 1024
"""A batch page is split into messages of about this size at most: half of the 4 MiB
a gRPC client receives by default."""

CHANGES_PAGE = 500
"""Changes per stream message at most."""

HEARTBEAT = 15.0
"""Seconds a caught-up stream waits before sending an empty message with its token."""

DEFAULT_DELIVERY_LIMIT = 50
MAX_DELIVERY_LIMIT = 1000

_CHANNEL = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_SEND_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_KINDS = {True: pb.CHANGE_KIND_ENTERED, False: pb.CHANGE_KIND_LEFT}


class ActivationServicer:
    """The four ActivationService methods; see the module docstring."""

    def __init__(
        self,
        source: Any,
        *,
        profiles: ProfileReader,
        assignments: AssignmentStore,
        changes: ChangeLog,
        webhooks: WebhookLog,
        feed: ChangeFeed,
        profile_path: str | Path,
        exposures: Any,
        reports: Pool,
        reads: Pool,
        writes: Pool,
        clock: Clock,
        max_visitors: int,
        max_placements: int = limits.MAX_PLACEMENTS,
    ) -> None:
        self._source = source
        self._profiles = profiles
        self._assignments = assignments
        self._changes = changes
        self._webhooks = webhooks
        self._feed = feed
        self._path = Path(profile_path)
        self._exposures = exposures
        self._reports = reports
        self._reads = reads
        self._writes = writes
        self._clock = clock
        self._max_visitors = max_visitors
        self._max_placements = max_placements
        self._contexts = StructCache()

    def _snapshot(self) -> Snapshot:
        snapshot: Snapshot | None = self._source.snapshot
        if snapshot is None:
            raise RulesNotLoadedError()
        return snapshot

    # -- DecideBatch --------------------------------------------------------------------

    async def DecideBatch(
        self, request: pb.DecideBatchRequest, context: Any
    ) -> AsyncIterator[pb.DecideBatchResponse]:
        snapshot = self._snapshot()
        checked = self._batch_request(request, snapshot)
        batch = Batch(
            checked,
            snapshot,
            profiles=self._profiles,
            assignments=self._assignments,
            path=self._path,
            exposures=self._exposures,
            max_visitors=self._max_visitors,
        )
        header: pb.BatchHeader | None = pb.BatchHeader(
            ruleset_version=snapshot.version,
            ruleset_hash=snapshot.content_hash,
            now=timestamp(checked.now),
            recorded=checked.record,
            channel=checked.channel,
            send_id=checked.send_id,
            fields=[
                pb.PlacementFields(placement=p, content_fields=content_fields(snapshot.ruleset, p))
                for p in checked.placements
            ],
        )
        try:
            while True:
                page = await self._reports.run(batch.next_page)
                if page is None:
                    break
                for rows in _split(page.rows):
                    yield pb.DecideBatchResponse(header=header, rows=rows)
                    header = None
        finally:
            # Waits for a page still being recorded (a cancelled call records what it
            # decided); off the loop, on a thread of its own if the pool is full.
            try:
                await self._reports.run(batch.close)
            except OverloadedError:
                threading.Thread(target=batch.close, daemon=True).start()
        more = checked.segment is not None and not batch.complete
        yield pb.DecideBatchResponse(
            header=header,
            summary=pb.BatchSummary(
                visitors=batch.visitors,
                exposures=batch.exposures,
                complete=not more,
                next_start_after=batch.last_visitor if more else "",
            ),
        )

    def _batch_request(self, request: pb.DecideBatchRequest, snapshot: Snapshot) -> BatchRequest:
        """The request, checked once; ``InvalidRequestError`` naming every problem."""
        problems: list[Problem] = []
        placements = list(request.placements)
        limits.check_placements(placements, self._max_placements, problems)
        problems += [
            Problem(f"placements[{i}]", f"duplicate {p!r}")
            for i, p in enumerate(placements)
            if placements.index(p) != i
        ]
        which = request.WhichOneof("visitors")
        segment = None
        ids: tuple[str, ...] = ()
        if which is None:
            problems.append(Problem("visitors", "give a segment or visitor_ids"))
        elif which == "segment":
            segment = request.segment
            if segment not in snapshot.ruleset.segment_filters:
                problems.append(Problem("segment", f"unknown segment {segment!r}"))
        else:
            ids = tuple(dict.fromkeys(request.visitor_ids.ids))
            if not ids:
                problems.append(Problem("visitor_ids.ids", "at least one visitor id is required"))
            elif len(ids) > self._max_visitors:
                problems.append(
                    Problem(
                        "visitor_ids.ids",
                        f"{len(ids)} visitors; at most {self._max_visitors} per call",
                    )
                )
            bad = 0
            for i, visitor_id in enumerate(request.visitor_ids.ids):
                found: list[Problem] = []
                limits.check_visitor_id(visitor_id, found)
                if found and bad < 20:
                    problems += [Problem(f"visitor_ids.ids[{i}]", p.message) for p in found]
                bad += bool(found)
        if request.start_after and which != "segment":
            problems.append(Problem("start_after", "continues a segment batch only"))
        if not 0 <= request.page_size <= MAX_PAGE_SIZE:
            problems.append(Problem("page_size", f"must be 0-{MAX_PAGE_SIZE}"))
        channel, send_id = request.channel, request.send_id
        if request.record:
            if self._exposures is None:
                raise PreconditionError("this server records no exposures: batches are previews")
            if not _CHANNEL.fullmatch(channel):
                problems.append(
                    Problem("channel", "is required when recording: 1-64 letters, digits, _ . -")
                )
            if send_id and not _SEND_ID.fullmatch(send_id):
                problems.append(Problem("send_id", "must be 1-128 letters, digits, _ . : -"))
            send_id = send_id or new_send_id()
        elif channel or send_id:
            problems.append(Problem("channel", "channel and send_id tag recorded batches only"))
        context = (
            self._contexts.convert(request.context, "context", problems)
            if request.HasField("context")
            else {}
        )
        try:
            now = requested_moment(request, clock_now=self._clock(), recorded=request.record)
        except InvalidRequestError as exc:
            problems += exc.problems
            now = self._clock()
        if problems:
            raise InvalidRequestError(problems)
        return BatchRequest(
            placements=tuple(placements),
            context=context,
            now=now,
            segment=segment,
            visitor_ids=ids,
            record=request.record,
            channel=channel if request.record else "",
            send_id=send_id if request.record else "",
            start_after=request.start_after,
            page_size=request.page_size or DEFAULT_PAGE_SIZE,
        )

    # -- WatchSegmentChanges ------------------------------------------------------------

    async def WatchSegmentChanges(
        self, request: pb.WatchSegmentChangesRequest, context: Any
    ) -> AsyncIterator[pb.SegmentChanges]:
        snapshot = self._snapshot()
        notify = snapshot.ruleset.notify_segments
        segments = list(dict.fromkeys(request.segments))
        problems = [
            Problem(f"segments[{i}]", f'{s!r} is not a segment marked "notify": true')
            for i, s in enumerate(segments)
            if s not in notify
        ]
        token = request.resume_token
        if token and not token.isdigit():
            problems.append(Problem("resume_token", "is not a token this server gave"))
        if problems:
            raise InvalidRequestError(problems)
        chosen = segments or None
        seq, pruned = await self._reads.run(self._start, token, request.from_start)
        if token and seq < pruned:
            raise ResumeTokenExpiredError(
                f"changes after resume token {token} were pruned (they are kept"
                " for DECIDE_CHANGE_RETENTION_DAYS); start again from now"
            )
        waiter = self._feed.subscribe()
        try:
            last_sent = time.monotonic()
            while True:
                found, newest = await self._reads.run(self._page, seq, chosen)
                if found:
                    seq = found[-1].seq
                    yield pb.SegmentChanges(
                        changes=[_change_message(c) for c in found], resume_token=str(seq)
                    )
                    last_sent = time.monotonic()
                    continue
                seq = max(seq, newest)
                if time.monotonic() - last_sent >= HEARTBEAT:
                    yield pb.SegmentChanges(resume_token=str(seq))
                    last_sent = time.monotonic()
                try:
                    await asyncio.wait_for(waiter.wait(), POLL_INTERVAL)
                except TimeoutError:
                    pass
                waiter.clear()
        finally:
            self._feed.unsubscribe(waiter)

    def _start(self, token: str, from_start: bool) -> tuple[int, int]:
        """``(seq to read after, pruned through)`` for a new stream."""
        pruned = self._changes.pruned_through()
        if token:
            return int(token), pruned
        if from_start:
            return pruned, pruned
        return self._changes.last_seq(), pruned

    def _page(self, seq: int, segments: Sequence[str] | None) -> tuple[list[SegmentChange], int]:
        """The next changes after ``seq``, and the newest seq before they were read (all
        changes up to it are in the answer or are of other segments)."""
        newest = self._changes.last_seq()
        return self._changes.changes_after(seq, segments, CHANGES_PAGE), newest

    # -- webhook deliveries -------------------------------------------------------------

    async def ListWebhookDeliveries(
        self, request: pb.ListWebhookDeliveriesRequest, context: Any
    ) -> pb.ListWebhookDeliveriesResponse:
        problems = []
        if request.status and request.status not in DeliveryStatus.ALL:
            choices = ", ".join(DeliveryStatus.ALL)
            problems.append(Problem("status", f"must be one of {choices}"))
        if not 0 <= request.limit <= MAX_DELIVERY_LIMIT:
            problems.append(Problem("limit", f"must be 0-{MAX_DELIVERY_LIMIT}"))
        if problems:
            raise InvalidRequestError(problems)
        found = await self._reads.run(
            self._webhooks.deliveries,
            request.webhook,
            request.status,
            request.limit or DEFAULT_DELIVERY_LIMIT,
        )
        return pb.ListWebhookDeliveriesResponse(deliveries=[_delivery_message(d) for d in found])

    async def RedeliverWebhook(
        self, request: pb.RedeliverWebhookRequest, context: Any
    ) -> pb.RedeliverWebhookResponse:
        if not request.delivery_id:
            raise InvalidRequestError([Problem("delivery_id", "is required")])
        try:
            delivery = await self._writes.run(
                self._webhooks.redeliver, request.delivery_id, self._clock()
            )
        except ValueError as exc:
            raise PreconditionError(str(exc)) from None
        return pb.RedeliverWebhookResponse(delivery=_delivery_message(delivery))


def _split(rows: list[pb.BatchRow]) -> list[list[pb.BatchRow]]:
    """``rows`` in runs of about ``MAX_MESSAGE_BYTES`` at most (one row is never split)."""
    runs: list[list[pb.BatchRow]] = [[]]
    size = 0
    for row in rows:
        row_size = row.ByteSize()
        if runs[-1] and size + row_size > MAX_MESSAGE_BYTES:
            runs.append([])
            size = 0
        runs[-1].append(row)
        size += row_size + 4
    return runs


def _change_message(change: SegmentChange) -> pb.SegmentChange:
    return pb.SegmentChange(
        seq=change.seq,
        visitor_id=change.visitor_id,
        segment=change.segment,
        kind=_KINDS[change.entered],
        at=timestamp(change.at),
        reason=change.reason,
        merged_into=change.merged_into,
    )


def _delivery_message(delivery: Delivery) -> pb.WebhookDelivery:
    return pb.WebhookDelivery(
        delivery_id=delivery.delivery_id,
        webhook=delivery.webhook,
        url=delivery.url,
        first_seq=delivery.first_seq,
        last_seq=delivery.last_seq,
        changes=delivery.changes,
        attempts=delivery.attempts,
        status=delivery.status,
        http_status=delivery.http_status,
        error=delivery.error,
        created_at=timestamp(delivery.created_at),
        updated_at=timestamp(delivery.updated_at),
    )
