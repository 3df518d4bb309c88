"""Worker processes for scans of the profile store: started on first use, kept warm,
killed when the server stops.

A scan of every stored profile is CPU-bound Python (parse, evaluate), so one process
uses one core whatever its threads do. ``ScanPool`` runs the parts of a scan (rowid
ranges: ``server.analytics.estimates``) in worker processes, one per core by default. The workers
are spawned, never forked: the server runs gRPC threads, and a forked gRPC runtime is
unsafe (as for ``decide serve --processes``). Each task carries plain data (file path,
filters as JSON text, rowid bounds); the worker opens the SQLite file read-only itself.

``close()`` kills the workers at once (they only read), so a server stop never waits
for a scan: a caller waiting on the pool gets ``ScanCancelledError``, and a scan running
in the caller's own thread sees ``cancelled`` set and stops at its next batch of rows.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from server.errors import ScanCancelledError

__all__ = ["DEFAULT_MIN_PROFILES", "ScanPool"]

logger = logging.getLogger("decide.server")

DEFAULT_MIN_PROFILES = 50_000
"""Stores smaller than this are scanned in the calling thread: a 50,000-profile scan
takes about 0.1 to 0.25 s on one core, and the first parallel one would first spend
about as long starting the workers."""

T = TypeVar("T")
R = TypeVar("R")


class ScanPool:
    """Up to ``processes`` worker processes (default: one per core), created on first
    use. ``wants(profiles)`` says whether a scan is worth splitting; ``run`` runs the
    tasks, one per worker at a time, and returns their results in task order."""

    def __init__(
        self,
        processes: int | None = None,
        *,
        min_profiles: int = DEFAULT_MIN_PROFILES,
        start_method: str = "spawn",
    ) -> None:
        if start_method not in {"spawn", "forkserver"}:
            raise ValueError("start_method must be 'spawn' or 'forkserver' (never fork)")
        self.processes = processes or os.cpu_count() or 1
        if self.processes < 1:
            raise ValueError(f"processes must be >= 1, got {processes}")
        self.min_profiles = min_profiles
        self.cancelled = threading.Event()
        """Set by ``close()``: scans in the calling thread check it between batches."""
        self._context = multiprocessing.get_context(start_method)
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._in_flight = 0

    @property
    def started(self) -> bool:
        """Whether worker processes exist (they start with the first ``run``)."""
        return self._executor is not None

    @property
    def in_flight(self) -> int:
        """Tasks submitted by ``run`` calls that have not returned yet."""
        return self._in_flight

    def pids(self) -> list[int]:
        """The worker processes' ids (none before the first ``run`` or after ``close``)."""
        executor = self._executor
        return sorted(getattr(executor, "_processes", None) or ())

    def wants(self, profiles: int) -> bool:
        """Whether a scan of about ``profiles`` rows should be split over the workers."""
        return self.processes > 1 and profiles >= self.min_profiles

    def run(self, function: Callable[[T], R], tasks: Sequence[T]) -> list[R]:
        """``[function(task) for task in tasks]``, computed in the worker processes.

        ``function`` must be importable by name (a module-level function). A task that
        raises re-raises here. ``ScanCancelledError`` when the pool is closed before or
        while the tasks run."""
        executor = self._executor_for_run()
        futures: list[Future[R]] = []
        with self._lock:
            self._in_flight += len(tasks)
        try:
            for task in tasks:
                futures.append(executor.submit(function, task))
            return [future.result() for future in futures]
        except (BrokenProcessPool, RuntimeError) as exc:
            # RuntimeError: submit() after a concurrent close() shut the executor down.
            if self.cancelled.is_set():
                raise ScanCancelledError() from exc
            if isinstance(exc, BrokenProcessPool):
                # A worker died (killed, out of memory): start afresh next time.
                logger.error("a scan worker process died", extra={"event": "scan_pool_broken"})
                self._discard(executor)
            raise
        finally:
            for future in futures:
                future.cancel()
            with self._lock:
                self._in_flight -= len(tasks)

    def close(self) -> None:
        """Kill the workers and refuse further work (idempotent). Callers waiting on
        ``run`` get ``ScanCancelledError`` at once."""
        self.cancelled.set()
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            _kill(executor)

    def __enter__(self) -> ScanPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _executor_for_run(self) -> ProcessPoolExecutor:
        with self._lock:
            if self.cancelled.is_set():
                raise ScanCancelledError()
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    max_workers=self.processes, mp_context=self._context
                )
            return self._executor

    def _discard(self, executor: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is executor:
                self._executor = None
        _kill(executor)


def _kill(executor: ProcessPoolExecutor) -> None:
    """Stop ``executor`` now: pending tasks are dropped and running ones killed (a scan
    only reads, so nothing is left half-written). Its waiting futures then fail with
    ``BrokenProcessPool``."""
    # ProcessPoolExecutor has no public way to stop running tasks before Python 3.14
    # (terminate_workers); its process table is the only handle on them.
    processes: dict[Any, Any] = dict(getattr(executor, "_processes", None) or {})
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes.values():
        if process.is_alive():
            process.terminate()
    for process in processes.values():
        process.join(timeout=5)
    executor.shutdown(wait=True)
