"""The background back-fill of kept activity, for any profile store.

A publish whose rules read more activity than the stored profiles keep (another event
type, another property, a longer window) finds them short of it: until a profile is
completed from the visitor's event log, its activity clauses count only what was kept.
A ``Backfill`` runs one worker thread per store that completes them:

1. count: ``source.uncovered(coverage)`` says which coverage keys (and how many
   profiles) do not cover the declaration (``server.profiles.folding``);
2. complete: ``source.backfill_some(coverage, uncovered, limit)`` completes up to
   ``batch`` of those profiles in one transaction, and again until none is left; then
   it counts again, which also finds profiles whose key moved meanwhile (new events
   folded with the new declaration keep them incomplete, under another key).

Bounds: one transaction of at most ``batch`` visitors at a time, and after each the
worker waits as long as the batch took, so it uses at most half of one core and
ingest gets the write lock between batches. A new declaration (another publish) ends
the pass and starts over with it. ``close`` stops the worker after the batch in hand.
Nothing is remembered across restarts: the first declaration a server gives counts
again, so the work resumes from what is not covered yet; the worker also counts every
``recount`` seconds, which finds profiles another process wrote with other rules.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from server.logs import FaultLog
from server.profiles.folding import Coverage

__all__ = ["BATCH", "RECOUNT_INTERVAL", "Backfill", "BackfillSource", "BackfillStatus", "Uncovered"]

logger = logging.getLogger("decide.server")

BATCH = 100
"""Visitors completed per transaction: about 0.5 ms each for a 90-day history, so a
batch holds the write lock for tens of milliseconds."""

RECOUNT_INTERVAL = 300.0
"""Seconds between counts when nothing is pending (one index scan each)."""

RETRY_INTERVAL = 1.0
"""Seconds before a failed count or batch is tried again."""


@dataclass(frozen=True, slots=True)
class Uncovered:
    """What a count found: the coverage keys that do not cover the declaration, whether
    some profiles have no key yet (written without one: they are checked one by one),
    and how many profiles that is in all."""

    keys: tuple[str, ...] = ()
    unkeyed: bool = False
    count: int = 0


@dataclass(frozen=True, slots=True)
class BackfillStatus:
    """Where the back-fill stands. ``complete``: every stored profile keeps what the
    declaration reads. ``pending``: profiles still to complete, as last counted less
    those completed since (0 before the first count). ``backfilled``: profiles this
    process completed. ``last_error``: why the last count or batch failed (it is
    retried), empty when it did not."""

    complete: bool = True
    pending: int = 0
    backfilled: int = 0
    last_error: str = ""


class BackfillSource(Protocol):
    """What a profile store gives the worker."""

    def uncovered(self, coverage: Coverage) -> Uncovered:
        """Count the stored profiles that do not cover ``coverage.needs``."""
        ...

    def backfill_some(self, coverage: Coverage, uncovered: Uncovered, limit: int) -> int:
        """Complete up to ``limit`` of the profiles ``uncovered`` names, in one
        transaction (each checked again first); returns how many it took out of the
        uncovered set (0: none was left)."""
        ...


class Backfill:
    """The worker thread of one store; started by the first ``declare``."""

    def __init__(
        self,
        source: BackfillSource,
        *,
        batch: int = BATCH,
        recount: float = RECOUNT_INTERVAL,
        name: str = "profile store",
    ) -> None:
        if batch < 1:
            raise ValueError("batch must be >= 1")
        self._source = source
        self._batch = batch
        self._recount = recount
        self._coverage: Coverage | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._faults = FaultLog(logger, f"{name}: activity back-fill", "backfill_failed")
        self.status = BackfillStatus()

    @property
    def started(self) -> bool:
        """Whether a declaration was given (the worker runs from then on)."""
        return self._thread is not None

    def declare(self, coverage: Coverage) -> None:
        """Back-fill for ``coverage`` from now on (ends a pass for an older one)."""
        with self._lock:
            if self._stopping.is_set():
                return
            self._coverage = coverage
            self.status = BackfillStatus(False, 0, self.status.backfilled, "")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="decide-activity-backfill", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def close(self) -> None:
        """Stop the worker after the batch in hand. Idempotent."""
        with self._lock:
            self._stopping.set()
            thread = self._thread
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    # -- the worker ---------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self._recount)
            self._wake.clear()
            if self._stopping.is_set():
                return
            coverage = self._coverage
            if coverage is not None:
                try:
                    self._pass(coverage)
                # A store fault (busy, full, damaged): say so and try again soon; the
                # worker must outlive it.
                except Exception as exc:  # noqa: BLE001
                    self._failed(exc)
                    if self._stopping.wait(RETRY_INTERVAL):
                        return
                    self._wake.set()

    def _pass(self, coverage: Coverage) -> None:
        """Count, then complete batch after batch until a count finds nothing left."""
        found = self._source.uncovered(coverage)
        self._report(coverage, pending=found.count, counted=True)
        while found.count:
            done = 0
            while not self._stopping.is_set() and coverage is self._coverage:
                started = time.monotonic()
                taken = self._source.backfill_some(coverage, found, self._batch)
                if not taken:
                    break
                done += taken
                self._report(coverage, pending=max(self.status.pending - taken, 0), done=taken)
                # Duty cycle: rest as long as the batch took.
                if self._stopping.wait(time.monotonic() - started):
                    return
            if self._stopping.is_set() or coverage is not self._coverage:
                return
            found = self._source.uncovered(coverage)
            self._report(coverage, pending=found.count, counted=True)
            if found.count and not done:
                # Nothing could be taken although some are counted: another writer keeps
                # writing them (a process serving other rules). Count again later.
                return

    def _report(
        self, coverage: Coverage, *, pending: int, done: int = 0, counted: bool = False
    ) -> None:
        # Complete only when a count says so: profiles may join the short ones after a
        # count. An error stays reported until the work moves on again (a count alone,
        # which reads, does not show that the batches can write).
        complete = counted and pending == 0
        moved = bool(done) or complete
        with self._lock:
            if coverage is not self._coverage:
                return  # a newer declaration reset the status
            status = self.status
            error = "" if moved else status.last_error
            self.status = BackfillStatus(complete, pending, status.backfilled + done, error)
        if moved:
            self._faults.ok()

    def _failed(self, exc: Exception) -> None:
        self._faults.failed(exc)
        with self._lock:
            status = self.status
            self.status = BackfillStatus(False, status.pending, status.backfilled, str(exc))
