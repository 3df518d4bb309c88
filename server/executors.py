"""Bounded thread pools for the blocking work of an asyncio server.

The event loop runs every call's Python; anything that can block it (a SQLite commit
with its fsync, a scan of every stored profile, a report) runs in one of these pools
instead, and the call awaits the result. Each pool has a fixed number of threads and
a bound on the calls waiting for one: past it, ``run`` raises ``OverloadedError``
(RESOURCE_EXHAUSTED, retry with backoff) at once instead of queueing without end, so
a flood of one kind of work cannot hold memory or delay everything behind it.

Three pools, so that slow work never waits behind, or delays, quick work:

- ``writes``: event ingest, profile and rules administration (each a short
  transaction; SQLite serializes writers, so few threads suffice);
- ``reports``: campaign and segment reports, estimates and exports (seconds of CPU
  over the whole store; large estimates fan out to worker processes themselves);
- ``reads``: profile reads that must wait for a networked store (an embedded store
  answers Decide's read at once, without this pool).

Threads share the interpreter with the loop: while a report computes, the loop gets
the GIL back every switch interval (5 ms), which bounds the latency it adds to
Decide; Decide itself never waits for a pool.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from server.errors import OverloadedError

__all__ = ["WRITE_SHUTDOWN_TIMEOUT", "Pool", "Pools"]

logger = logging.getLogger("decide.server")

WRITE_SHUTDOWN_TIMEOUT = 30.0
"""Seconds a stopping server waits for a running write (a commit) to finish."""

T = TypeVar("T")


class Pool:
    """``threads`` threads and at most ``queue`` calls waiting for one."""

    def __init__(self, name: str, *, threads: int, queue: int) -> None:
        if threads < 1 or queue < 0:
            raise ValueError("need threads >= 1 and queue >= 0")
        self.name = name
        self.threads = threads
        self.capacity = threads + queue
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        self._busy = 0

    @property
    def busy(self) -> int:
        """Calls running or waiting in this pool."""
        return self._busy

    async def run(self, function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``function(*args, **kwargs)`` on a pool thread; ``OverloadedError`` when full.

        Must be awaited on the event loop (the count it keeps is the loop's own)."""
        if self._busy >= self.capacity:
            raise OverloadedError(f"the server's {self.name} queue is full; retry shortly")
        self._busy += 1
        try:
            loop = asyncio.get_running_loop()
            call = functools.partial(contextvars.copy_context().run, function, *args, **kwargs)
            return await loop.run_in_executor(self._executor, call)
        finally:
            self._busy -= 1

    def shutdown(self, timeout: float | None = None) -> bool:
        """Cancel queued work and let the threads finish what runs, waiting at most
        ``timeout`` seconds (None: until done); whether everything finished."""
        stopper = threading.Thread(
            target=self._executor.shutdown,
            kwargs={"wait": True, "cancel_futures": True},
            name=f"{self.name}-stop",
            daemon=True,
        )
        stopper.start()
        stopper.join(timeout)
        return not stopper.is_alive()


class Pools:
    """The server's three pools (see the module docstring)."""

    def __init__(
        self,
        *,
        write_threads: int,
        write_queue: int,
        report_threads: int,
        report_queue: int,
        read_threads: int,
        read_queue: int,
    ) -> None:
        self.writes = Pool("decide-writes", threads=write_threads, queue=write_queue)
        self.reports = Pool("decide-reports", threads=report_threads, queue=report_queue)
        self.reads = Pool("decide-reads", threads=read_threads, queue=read_queue)

    def shutdown(self, write_timeout: float = WRITE_SHUTDOWN_TIMEOUT) -> None:
        """Stop every pool. A write that runs is given ``write_timeout`` seconds to
        commit (the stores close next); reads and reports are not waited for: their
        calls are gone, and a scan stops at its next batch once the scan pool closes."""
        self.reads.shutdown(0)
        self.reports.shutdown(0)
        if not self.writes.shutdown(write_timeout):
            logger.warning(
                "a write was still running %.0f s after the server stopped",
                write_timeout,
                extra={"event": "write_pool_stuck"},
            )
