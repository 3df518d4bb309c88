"""``decisioning.v1.EventService``: behavioural events in, committed to the profile store.

Track stores one batch atomically. TrackStream treats every streamed ``TrackRequest`` as
its own atomic batch, committed as it arrives, and answers with the totals; a bad batch
ends the call with INVALID_ARGUMENT (``BatchRejectedError``) naming
``batches[B].events[I]...``, and the batches before it stay committed. This is the
simplest semantics a caller can resume from: everything before batch B is stored,
nothing from B on is.

Batches are converted and checked on the event loop (pure Python, no waiting) and
committed in the server's write pool (the commit waits for the disk). A stream that
sends no batch for ``idle_timeout`` seconds is closed by the server with
DEADLINE_EXCEEDED (``StreamIdleError``, with how much it stored), so an idle client
cannot hold a stream slot for ever.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from decision import InvalidRequestError
from decision.profile import Event
from protos import decisioning_pb2 as pb
from server import limits
from server.api.event_messages import convert_batch
from server.api.interceptors import Malformed
from server.errors import BatchRejectedError, MalformedRequestError, StreamIdleError
from server.executors import Pool
from server.metrics import Metrics
from server.profiles.store import TrackResult

Clock = Callable[[], datetime]

DEFAULT_IDLE_TIMEOUT = 60.0
"""Seconds a TrackStream may go without a batch before the server closes it."""


class EventSink(Protocol):
    """Where validated events go: ``track`` commits before returning."""

    def track(self, events: Sequence[Event]) -> TrackResult: ...


class EventServicer:
    """Validates batches of events and stores them; counts what it stored."""

    def __init__(
        self,
        sink: EventSink,
        *,
        clock: Clock,
        pool: Pool,
        metrics: Metrics | None = None,
        max_events: int = limits.MAX_EVENTS_PER_BATCH,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        self._sink = sink
        self._clock = clock
        self._pool = pool
        self._metrics = metrics
        self._max_events = max_events
        self._idle_timeout = idle_timeout

    async def _store(self, events: list[Event]) -> TrackResult:
        result = await self._pool.run(self._sink.track, events)
        if self._metrics is not None:
            self._metrics.observe_events(events, result.duplicates)
        return result

    async def Track(self, request: pb.TrackRequest, context: Any) -> Any:
        events = convert_batch(request.events, self._clock(), max_events=self._max_events)
        result = await self._store(events)
        return pb.TrackResponse(accepted=result.accepted, duplicates=result.duplicates)

    async def TrackStream(self, requests: AsyncIterator[Any], context: Any) -> Any:
        accepted = duplicates = 0
        batch = 0
        while True:
            try:
                request = await asyncio.wait_for(anext(requests), self._idle_timeout)
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise StreamIdleError(
                    self._idle_timeout, batches=batch, accepted=accepted, duplicates=duplicates
                ) from None
            if type(request) is Malformed:
                problem = MalformedRequestError("TrackRequest", str(request.error)[:200])
                raise BatchRejectedError(
                    [p.__class__(f"batches[{batch}]", p.message) for p in problem.problems],
                    batch=batch,
                    accepted=accepted,
                    duplicates=duplicates,
                )
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
            result = await self._store(events)
            accepted += result.accepted
            duplicates += result.duplicates
            batch += 1
        return pb.TrackResponse(accepted=accepted, duplicates=duplicates)
