"""What every exposure recorder shares: a bounded buffer, a writer thread, durable waits.

``record`` (Decide's path) appends to a deque and never blocks. A writer thread writes
what is pending every ``flush_interval`` (200 ms) or as soon as ``batch_size`` rows
wait, one batch per transaction; ``flush`` writes from the calling thread; ``close``
(server stop, after the last call finished) writes everything still pending, so a clean
stop loses no exposure. If the writer falls behind (a slow or unreachable store) the
buffer is bounded by ``max_pending``: further exposures are dropped, counted in
``decide_exposures_dropped_total`` and logged once; Decide never waits.

**Durable mode** (``durable``, ``DECIDE_EXPOSURES_DURABLE``): Decide awaits
``record_durably``, which returns once the exposure is committed (and, for the embedded
store, synced). Waiting calls share one commit (group commit): exposures are numbered as
they are queued, batches are written in queue order under one lock, and each waiting
call holds the number of its last exposure. A write that fails fails its calls with the
store error and drops their exposures: a call that was answered with an error never
has its exposure written later.

Backends implement ``_commit`` (one batch, one transaction) and ``_close_store``; a
``_commit`` raises ``RetryLater`` when the rows may be written on a later pass (the
store is busy or unreachable) and ``Refused`` when they never can be.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeAlias

from server.errors import OverloadedError, StoreUnavailableError
from server.logs import FaultLog

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_CHANNEL",
    "DEFAULT_FLUSH_INTERVAL",
    "DEFAULT_MAX_PENDING",
    "ExposureBuffer",
    "Pending",
    "Refused",
    "RetryLater",
]

logger = logging.getLogger("decide.server")

DEFAULT_FLUSH_INTERVAL = 0.2
DEFAULT_BATCH_SIZE = 5000
"""Rows written per transaction at most (more per commit: fewer index pages per row)."""
DEFAULT_MAX_PENDING = 200_000
"""Exposures waiting to be written before new ones are dropped (about 60 MB)."""
DEFAULT_CHANNEL = "web"
"""The channel of Decide's exposures (a storefront's page); a recorded DecideBatch
writes its own (``"email"``) with a send id."""

Pending: TypeAlias = tuple[str, str, str, str, tuple[str, ...], str, datetime]
"""One exposure as Decide hands it over: ``(decision_id, visitor_id, campaign, variant,
segments, placement, time)``."""


class RetryLater(Exception):
    """A batch could not be written now; ``error`` is the store error saying why."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class Refused(Exception):
    """A batch can never be written (the store refuses its content)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class ExposureBuffer:
    """Buffers exposures and writes them in batches from a background thread (see the
    module docstring). ``metrics`` (a ``server.metrics.Metrics``) counts written and
    dropped exposures. Subclasses call ``_start()`` once they can write."""

    def __init__(
        self,
        where: str,
        *,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_pending: int = DEFAULT_MAX_PENDING,
        metrics: Any = None,
        durable: bool = False,
        listener: Any = None,
    ) -> None:
        if batch_size < 1 or max_pending < batch_size:
            raise ValueError("need 1 <= batch_size <= max_pending")
        self.where = where
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.durable = durable
        """Whether Decide must ``await record_durably``."""
        self._metrics = metrics
        self.listener = listener
        """Told of every committed batch: ``listener.written(batch, channel)``
        (``server.activation`` records assignments and served events from it)."""
        self._pending: deque[Pending] = deque()
        self._queued = 0
        self._settled = 0
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._waiters_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._closed = False
        self._write_lock = threading.Lock()  # the writer thread and flush() share a store
        self._drop_lock = threading.Lock()
        self._faults = FaultLog(logger, f"writing exposures to {where}", "exposures_write_failed")
        self.dropped = 0
        self._warned = False  # the buffer-full warning is logged once
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="decide-exposures", daemon=True)

    def _start(self) -> None:
        self._thread.start()

    # -- what backends implement ---------------------------------------------------------

    def _commit(self, batch: Sequence[Pending]) -> None:
        """Write ``batch`` in one transaction (the caller holds the write lock)."""
        raise NotImplementedError

    def _close_store(self) -> None:
        """Release the store's connections (after the last write)."""

    # -- the request path ---------------------------------------------------------------

    def record(self, exposures: Sequence[Pending]) -> None:
        """Queue exposures for writing; never blocks. Drops (and counts) them when the
        buffer is full or the recorder is closed."""
        pending = self._pending
        if self._closed or len(pending) + len(exposures) > self.max_pending:
            self._drop(len(exposures))
            return
        pending.extend(exposures)
        self._queued += len(exposures)
        # Once woken, the writer may wait for the GIL behind many calls: setting the
        # event again on each of them (a lock and a notify) would only slow them down.
        if len(pending) >= self.batch_size and not self._wake.is_set():
            self._wake.set()

    async def record_durably(self, exposures: Sequence[Pending]) -> None:
        """Queue exposures and return once they are committed (durable mode; call it
        from the event loop). Raises the store error that kept them from the store (they
        are then dropped), ``OverloadedError`` when the buffer is full."""
        if self._closed:
            raise StoreUnavailableError("exposure store", self.where, "the server is stopping")
        if len(self._pending) + len(exposures) > self.max_pending:
            self._drop(len(exposures))
            raise OverloadedError(
                f"{len(self._pending)} exposures are waiting to be written, the most this"
                " server buffers; retry"
            )
        future = asyncio.get_running_loop().create_future()
        self._pending.extend(exposures)
        self._queued += len(exposures)
        with self._waiters_lock:
            self._waiters.append((self._queued, future.get_loop(), future))
        if not self._wake.is_set():  # group commit: the writer takes all pending now
            self._wake.set()
        await future

    def _settle(self, count: int, error: BaseException | None) -> None:
        """``count`` more exposures, in queue order, were committed (``error`` None) or
        dropped: wake the calls that waited for them."""
        self._settled += count
        settled = self._settled
        with self._waiters_lock:
            if not self._waiters:
                return
            done = [w for w in self._waiters if w[0] <= settled]
            self._waiters = [w for w in self._waiters if w[0] > settled]
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for _, loop, future in done:
            by_loop.setdefault(loop, []).append(future)
        for loop, futures in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, futures, error)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

    def _drop(self, count: int, *, warn: bool = True) -> None:
        with self._drop_lock:
            self.dropped += count
            first = warn and not self._warned
            self._warned |= warn
        if self._metrics is not None:
            self._metrics.exposures_dropped.inc(count)
        if first:
            logger.warning(
                "exposure buffer full (%d pending) or closed: dropping exposures; reports"
                " will undercount until the writer catches up",
                len(self._pending),
                extra={"event": "exposures_dropped", "pending": len(self._pending)},
            )

    # -- writing ------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Exposures waiting to be written."""
        return len(self._pending)

    def flush(self) -> int:
        """Write everything pending now, from the calling thread; returns rows written."""
        written = 0
        while self._pending:
            # Taken and written under one lock: batches reach the store in queue order,
            # which is what durable mode's numbering relies on.
            with self._write_lock:
                batch = self._take()
                if not batch:
                    break
                outcome = self._write(batch)
            if outcome is None and not self.durable:
                break  # the rows went back to the queue: retry on the next wake
            written += outcome or 0
        return written

    def _take(self) -> list[Pending]:
        batch: list[Pending] = []
        popleft = self._pending.popleft
        try:
            for _ in range(self.batch_size):
                batch.append(popleft())
        except IndexError:
            pass
        return batch

    def _write(self, batch: list[Pending]) -> int | None:
        """One batch (the caller holds ``_write_lock``): the rows written, 0 when they
        were dropped, None when they went back to the front of the queue."""
        try:
            self._commit(batch)
        except RetryLater as exc:
            self._faults.failed(exc.error)
            if self.durable:
                self._drop(len(batch), warn=False)  # the fault log said why, the calls fail
                self._settle(len(batch), exc.error)
                return 0
            self._pending.extendleft(reversed(batch))
            return None
        except Refused as exc:
            self._faults.failed(exc.error)
            self._drop(len(batch), warn=False)
            self._settle(len(batch), exc.error)
            return 0
        self._after_commit(batch, DEFAULT_CHANNEL)
        self._settle(len(batch), None)
        return len(batch)

    def _after_commit(self, batch: Sequence[Pending], channel: str) -> None:
        """Count a committed batch and tell the listener."""
        self._faults.ok()
        self.written += len(batch)
        if self._metrics is not None:
            self._metrics.exposures_written.inc(len(batch))
        if self.listener is not None:
            try:
                self.listener.written(batch, channel)
            except Exception:  # the exposures are stored; what follows from them is logged
                logger.exception(
                    "recording what follows from written exposures failed",
                    extra={"event": "exposure_listener_error"},
                )

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            if self._stopping.is_set():
                break
            try:
                self.flush()
            except Exception:  # the writer must survive; logged
                logger.exception("exposure writer failed", extra={"event": "exposures_error"})

    def close(self) -> None:
        """Stop the writer thread and write everything still pending (once: a store
        that is down keeps what is pending unwritten). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()
        self.flush()
        with self._write_lock:
            self._close_store()


def _resolve(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    """On the waiters' loop: finish each future not already cancelled."""
    for future in futures:
        if not future.done():
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)
