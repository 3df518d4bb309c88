"""``decisioning.v1.EventService``: behavioural events in, committed to the profile store.

Track stores one batch atomically. TrackStream treats every streamed ``TrackRequest`` as
its own atomic batch, committed as it arrives, and answers with the totals; a bad batch
ends the call with INVALID_ARGUMENT (``BatchRejectedError``) naming
``batches[B].events[I]...``, and the batches before it stay committed. This is the
simplest semantics a caller can resume from: everything before batch B is stored,
nothing from B on is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, Protocol

import grpc

from decision import InvalidRequestError
from decision.profile import Event
from protos import decisioning_pb2 as pb
from protos import decisioning_pb2_grpc as pb_grpc
from server import limits
from server.api.event_messages import convert_batch
from server.api.status import handles_errors
from server.errors import BatchRejectedError
from server.metrics import Metrics

Clock = Callable[[], datetime]


class TrackOutcome(Protocol):
    """What the profile store reports for a committed batch."""

    @property
    def accepted(self) -> int: ...

    @property
    def duplicates(self) -> int: ...


class EventSink(Protocol):
    """Where validated events go: ``SQLiteProfileStore.track`` commits before returning."""

    def track(self, events: Sequence[Event]) -> TrackOutcome: ...


class EventServicer(pb_grpc.EventServiceServicer):
    """Validates batches of events and stores them; counts what it stored."""

    def __init__(
        self,
        sink: EventSink,
        *,
        clock: Clock,
        metrics: Metrics | None = None,
        max_events: int = limits.MAX_EVENTS_PER_BATCH,
    ) -> None:
        self._sink = sink
        self._clock = clock
        self._metrics = metrics
        self._max_events = max_events

    def _store(self, events: list[Event]) -> TrackOutcome:
        result = self._sink.track(events)
        if self._metrics is not None:
            self._metrics.observe_events(events, result.duplicates)
        return result

    @handles_errors
    def Track(self, request: pb.TrackRequest, context: grpc.ServicerContext) -> Any:
        events = convert_batch(request.events, self._clock(), max_events=self._max_events)
        result = self._store(events)
        return pb.TrackResponse(accepted=result.accepted, duplicates=result.duplicates)

    @handles_errors
    def TrackStream(
        self, request_iterator: Iterator[pb.TrackRequest], context: grpc.ServicerContext
    ) -> Any:
        accepted = duplicates = 0
        batch = 0
        for batch, request in enumerate(_requests(request_iterator)):
            try:
                events = convert_batch(
                    request.events,
                    self._clock(),
                    max_events=self._max_events,
                    path=f"batches[{batch}].events",
                )
            except InvalidRequestError as e:
                raise BatchRejectedError(
                    e.problems, batch=batch, accepted=accepted, duplicates=duplicates
                ) from None
            result = self._store(events)
            accepted += result.accepted
            duplicates += result.duplicates
        return pb.TrackResponse(accepted=accepted, duplicates=duplicates)


def _requests(request_iterator: Iterator[pb.TrackRequest]) -> Iterator[pb.TrackRequest]:
    """The streamed requests; ends quietly when the client cancels mid-stream (nobody
    is left to read a status, and what was committed stays committed)."""
    try:
        yield from request_iterator
    except grpc.RpcError:
        return
