"""ActivationService for both clients: requests, plain result values, streamed results.

A batch is streamed: ``BatchCall`` yields ``BatchRow`` values as pages arrive; its
``header`` (ruleset, moment, send id, content fields) is set with the first one and
its ``summary`` (visitors, exposures, where to continue) once the stream ended.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf import timestamp_pb2

from client._convert import _decision, _struct
from client.errors import map_rpc_error
from client.types import JSON, Decision
from protos import decisioning_pb2 as pb

DEFAULT_BATCH_TIMEOUT = 3600.0
"""Seconds a whole batch call may take by default (100,000 visitors at 5,000/s: 20 s)."""


@dataclass(frozen=True, slots=True)
class BatchRow:
    """One visitor's decisions in a batch; ``row["email_hero"]`` is one placement's."""

    visitor_id: str
    canonical_id: str
    known: bool
    decisions: tuple[Decision, ...]

    def __getitem__(self, placement: str) -> Decision:
        for decision in self.decisions:
            if decision.placement == placement:
                return decision
        raise KeyError(placement)


@dataclass(frozen=True, slots=True)
class BatchHeader:
    """What a batch was decided with: ``fields`` maps each placement to the top-level
    content keys its decisions can carry (CSV columns)."""

    ruleset_version: int
    ruleset_hash: str
    now: datetime
    recorded: bool
    channel: str
    send_id: str
    fields: dict[str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class BatchSummary:
    """What a batch call did; when not ``complete``, continue after ``next_start_after``."""

    visitors: int
    exposures: int
    complete: bool
    next_start_after: str


@dataclass(frozen=True, slots=True)
class SegmentChange:
    """A visitor entering (``change == "entered"``) or leaving a segment."""

    seq: int
    visitor_id: str
    segment: str
    change: str
    at: datetime
    reason: str
    merged_into: str = ""


@dataclass(frozen=True, slots=True)
class SegmentChanges:
    """Changes in order and the token to resume after them (empty: a heartbeat)."""

    changes: tuple[SegmentChange, ...]
    resume_token: str


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One webhook delivery and what became of it."""

    delivery_id: str
    webhook: str
    url: str
    first_seq: int
    last_seq: int
    changes: int
    attempts: int
    status: str
    http_status: int
    error: str
    created_at: datetime
    updated_at: datetime


def _stamp(moment: datetime | None) -> timestamp_pb2.Timestamp | None:
    if moment is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    return stamp


def _moment(stamp: timestamp_pb2.Timestamp) -> datetime:
    value: datetime = stamp.ToDatetime(tzinfo=UTC)
    return value


def batch_request(
    placements: Sequence[str],
    *,
    segment: str | None,
    visitor_ids: Sequence[str] | None,
    context: Mapping[str, JSON] | None,
    now: datetime | None,
    record: bool,
    channel: str,
    send_id: str,
    start_after: str,
    page_size: int,
) -> pb.DecideBatchRequest:
    """A ``DecideBatchRequest``: exactly one of ``segment`` and ``visitor_ids``."""
    if isinstance(placements, str):
        raise TypeError("placements must be a sequence of placement ids, not a str")
    if (segment is None) == (visitor_ids is None):
        raise TypeError("give exactly one of segment and visitor_ids")
    request = pb.DecideBatchRequest(
        placements=list(placements),
        context=_struct("context", context),
        now=_stamp(now),
        record=record,
        channel=channel,
        send_id=send_id,
        start_after=start_after,
        page_size=page_size,
    )
    if segment is not None:
        request.segment = segment
    else:
        request.visitor_ids.ids.extend(visitor_ids or ())
        request.visitor_ids.SetInParent()
    return request


def _row(message: pb.BatchRow) -> BatchRow:
    return BatchRow(
        visitor_id=message.visitor_id,
        canonical_id=message.canonical_id,
        known=message.known,
        decisions=tuple(_decision(d) for d in message.decisions),
    )


def _header(message: pb.BatchHeader) -> BatchHeader:
    return BatchHeader(
        ruleset_version=message.ruleset_version,
        ruleset_hash=message.ruleset_hash,
        now=_moment(message.now),
        recorded=message.recorded,
        channel=message.channel,
        send_id=message.send_id,
        fields={f.placement: tuple(f.content_fields) for f in message.fields},
    )


def _summary(message: pb.BatchSummary) -> BatchSummary:
    return BatchSummary(
        visitors=message.visitors,
        exposures=message.exposures,
        complete=message.complete,
        next_start_after=message.next_start_after,
    )


class _Batch:
    """What both kinds of batch call keep: the header and summary as they arrive."""

    header: BatchHeader | None = None
    summary: BatchSummary | None = None

    def _take(self, response: pb.DecideBatchResponse) -> list[BatchRow]:
        if response.HasField("header"):
            self.header = _header(response.header)
        if response.HasField("summary"):
            self.summary = _summary(response.summary)
        return [_row(r) for r in response.rows]


class BatchCall(_Batch):
    """The rows of a ``DecisionClient.decide_batch`` call, as they arrive."""

    def __init__(self, responses: Any) -> None:
        self._responses = responses

    def __iter__(self) -> Iterator[BatchRow]:
        try:
            for response in self._responses:
                yield from self._take(response)
        except grpc.RpcError as e:
            raise map_rpc_error(e) from e

    def cancel(self) -> None:
        """Stop the call (rows not read yet are not decided)."""
        self._responses.cancel()


class AsyncBatchCall(_Batch):
    """The rows of an ``AsyncDecisionClient.decide_batch`` call, as they arrive."""

    def __init__(self, responses: Any) -> None:
        self._responses = responses

    async def __aiter__(self) -> AsyncIterator[BatchRow]:
        try:
            async for response in self._responses:
                for row in self._take(response):
                    yield row
        except grpc.RpcError as e:
            raise map_rpc_error(e) from e


def watch_request(
    segments: Sequence[str], resume_token: str, from_start: bool
) -> pb.WatchSegmentChangesRequest:
    """A ``WatchSegmentChangesRequest``."""
    if isinstance(segments, str):
        raise TypeError("segments must be a sequence of segment ids, not a str")
    return pb.WatchSegmentChangesRequest(
        segments=list(segments), resume_token=resume_token, from_start=from_start
    )


def segment_changes(message: pb.SegmentChanges) -> SegmentChanges:
    """The plain form of one stream message."""
    return SegmentChanges(
        changes=tuple(
            SegmentChange(
                seq=c.seq,
                visitor_id=c.visitor_id,
                segment=c.segment,
                change=pb.ChangeKind.Name(c.kind).removeprefix("CHANGE_KIND_").lower(),
                at=_moment(c.at),
                reason=c.reason,
                merged_into=c.merged_into,
            )
            for c in message.changes
        ),
        resume_token=message.resume_token,
    )


def delivery(message: pb.WebhookDelivery) -> WebhookDelivery:
    """The plain form of a delivery."""
    return WebhookDelivery(
        delivery_id=message.delivery_id,
        webhook=message.webhook,
        url=message.url,
        first_seq=message.first_seq,
        last_seq=message.last_seq,
        changes=message.changes,
        attempts=message.attempts,
        status=message.status,
        http_status=message.http_status,
        error=message.error,
        created_at=_moment(message.created_at),
        updated_at=_moment(message.updated_at),
    )
