"""Waking the segment-change streams of this process when changes are recorded.

The change log is the source of truth: a stream reads it after its resume token. When
this process records changes (it holds the worker's lease) it calls ``notify`` and its
streams read at once; changes recorded by another process of ``--processes N`` are
found by each stream's own poll (``POLL_INTERVAL``). ``notify`` may be called from any
thread; a waiter is an ``asyncio.Event`` of the server's loop, set through
``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import threading

__all__ = ["POLL_INTERVAL", "ChangeFeed"]

POLL_INTERVAL = 0.25
"""Seconds a stream waits for a notification before it reads the log anyway."""


class ChangeFeed:
    """Events of waiting streams, set when changes are recorded."""

    def __init__(self) -> None:
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._lock = threading.Lock()

    def subscribe(self) -> asyncio.Event:
        """An event (of the running loop) set by every ``notify`` until ``unsubscribe``."""
        event = asyncio.Event()
        with self._lock:
            self._waiters.add((asyncio.get_running_loop(), event))
        return event

    def unsubscribe(self, event: asyncio.Event) -> None:
        with self._lock:
            self._waiters = {(loop, e) for loop, e in self._waiters if e is not event}

    def notify(self) -> None:
        """Wake every waiting stream."""
        with self._lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            if not loop.is_closed():
                try:
                    loop.call_soon_threadsafe(event.set)
                except RuntimeError:  # closed between the check and the call
                    pass
