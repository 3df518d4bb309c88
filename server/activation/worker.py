"""The activation worker: change detection, the sweep and webhook delivery, in one process.

With ``--processes N`` every server process starts a worker, but only the one holding
the ``activation`` lease (``Leases``, a row in the profile store's file) works: it
detects changes every ``poll_interval``, sweeps every ``sweep_interval`` (and at once
when a notify segment has no baseline yet) and runs the webhook delivery threads. The
lease lasts ``LEASE_TTL`` seconds and is renewed every round; a process that stops
cleanly releases it, and one that dies loses it after ``LEASE_TTL``, when another
process takes over. Delivery is therefore by one process at a time; if two ever
overlap (a holder stalled past its lease), the cursors moved in the same transactions
as the changes and deliveries they cover make the second one's work a no-op, and a
receiver sees at most a delivery twice, with the same ``X-Decide-Delivery`` id.

The worker is its own thread: nothing in it runs on the event loop, and Decide and
Track never wait for it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from server.activation.changes import SegmentWatcher
from server.activation.feed import ChangeFeed
from server.activation.store import Leases, SegmentChange
from server.activation.webhooks import Webhooks
from server.logs import FaultLog

__all__ = ["LEASE", "LEASE_TTL", "ActivationWorker"]

logger = logging.getLogger("decide.server")

LEASE = "activation"
LEASE_TTL = 10.0
"""Seconds a lease lasts without renewal: how long a dead holder's work waits."""


class ActivationWorker:
    """See the module docstring. ``start`` runs the thread; ``stop`` ends it (and the
    webhook threads) and releases the lease."""

    def __init__(
        self,
        watcher: SegmentWatcher,
        webhooks: Webhooks,
        leases: Leases,
        feed: ChangeFeed,
        *,
        poll_interval: float,
        sweep_interval: float,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.watcher = watcher
        self.webhooks = webhooks
        self.leases = leases
        self.feed = feed
        self.poll_interval = poll_interval
        self.sweep_interval = sweep_interval
        self._wall_clock = wall_clock
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.holding = False
        self.last_sweep: float | None = None
        """When this worker last finished a sweep (wall clock), None before its first."""
        self._next_sweep = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="decide-activation", daemon=True)
        self._faults = FaultLog(logger, "activation worker", "activation_failed")

    def start(self) -> None:
        self._thread.start()

    def changes_recorded(self, changes: list[SegmentChange]) -> None:
        """``SegmentWatcher``'s ``on_changes``: wake the streams and the webhooks."""
        self.feed.notify()
        self.webhooks.wake()

    def run_once(self) -> list[SegmentChange]:
        """One round: take or renew the lease; if held, detect, sweep when due, and keep
        the webhook threads in step with the rules. The changes recorded."""
        now = self._wall_clock()
        held = self.leases.acquire(LEASE, self.owner, LEASE_TTL, now)
        if held != self.holding:
            self.holding = held
            logger.info(
                "activation worker %s the lease",
                "holds" if held else "lost",
                extra={"event": "activation_lease", "holding": held},
            )
            if not held:
                self.webhooks.stop()
        if not held:
            return []
        found = self.watcher.detect_once()
        if now >= self._next_sweep or self.watcher.unbaselined():
            found += self.watcher.sweep_once()
            self._next_sweep = now + self.sweep_interval
            self.last_sweep = now
        self.webhooks.sync()
        return found

    def _run(self) -> None:
        while not self._stop.wait(self.poll_interval):
            try:
                self.run_once()
            except Exception as exc:  # a store fault: logged once a minute, retried
                self._faults.failed(exc)
            else:
                self._faults.ok()

    def stop(self) -> None:
        """Stop the thread and the webhook threads; release the lease. Idempotent."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()
        self.webhooks.stop()
        if self.holding:
            try:
                self.leases.release(LEASE, self.owner)
            except Exception:  # the store may be gone; the lease expires by itself
                logger.debug("releasing the activation lease failed", exc_info=True)
            self.holding = False


def build_worker(
    stores: Any,
    source: Any,
    clock: Callable[[], datetime],
    *,
    settings: Any,
    poll_interval: float,
    sweep_interval: float,
    retention_days: float,
    feed: ChangeFeed,
) -> ActivationWorker:
    """The worker of ``stores`` (``SQLiteActivation``-like: ``changes``, ``webhooks``,
    ``leases``)."""
    from datetime import timedelta

    webhooks = Webhooks(
        stores.webhooks, stores.changes, source, settings, clock, poll_interval=poll_interval
    )
    worker: ActivationWorker | None = None

    def recorded(changes: list[SegmentChange]) -> None:
        if worker is not None:
            worker.changes_recorded(changes)

    watcher = SegmentWatcher(
        stores.changes,
        source,
        clock,
        retention=timedelta(days=retention_days),
        on_changes=recorded,
    )
    worker = ActivationWorker(
        watcher,
        webhooks,
        stores.leases,
        feed,
        poll_interval=poll_interval,
        sweep_interval=sweep_interval,
    )
    return worker
