"""The per-decider profile cache of a shared (networked) profile store.

A decider keeps the profiles it read for ``ttl`` seconds (1 s by default) and answers
Decide from them without I/O (``fresh``). Its own writes drop the entries they make
stale at once; another decider's writes are seen once the entry expires, so ``ttl``
bounds how stale a profile can be. A read that raced with one of this decider's own
writes does not fill the cache (``generation``), so a decider never reads a profile
older than its own last write.

Stale if error: an expired entry is kept (until the cache is full and it is the least
recently used) and ``stale`` returns it, so while the database cannot be reached a
decider keeps deciding with the last profile it read instead of failing.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from server.profiles.store import MISSING

__all__ = ["ProfileCache"]


class ProfileCache:
    """Profiles (or None for a visitor the store does not know) by the id they were
    asked for, with the time they were read. ``maxsize`` or ``ttl`` 0 disables it."""

    def __init__(
        self, *, maxsize: int, ttl: float, timer: Callable[[], float] = time.monotonic
    ) -> None:
        self.maxsize = maxsize
        self.ttl = ttl
        self.enabled = maxsize > 0 and ttl > 0
        self._timer = timer
        self._entries: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.generation = 0
        """Bumped by every invalidation: a read that started before one must not fill."""

    def fresh(self, visitor_id: str) -> Any:
        """The entry when it is younger than ``ttl``; else ``MISSING``."""
        if not self.enabled:
            return MISSING
        with self._lock:
            entry = self._entries.get(visitor_id)
            if entry is None or self._timer() - entry[0] >= self.ttl:
                return MISSING
            self._entries.move_to_end(visitor_id)
            return entry[1]

    def stale(self, visitor_id: str) -> Any:
        """The entry however old (stale if error); ``MISSING`` when there is none."""
        with self._lock:
            entry = self._entries.get(visitor_id)
        return MISSING if entry is None else entry[1]

    def put(self, visitor_id: str, profile: Any, generation: int) -> None:
        """Keep ``profile``, read when the cache was at ``generation``, unless a write
        invalidated entries since."""
        if not self.enabled:
            return
        with self._lock:
            if generation != self.generation:
                return
            self._entries[visitor_id] = (self._timer(), profile)
            self._entries.move_to_end(visitor_id)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def invalidate(self, ids: Iterable[str]) -> None:
        with self._lock:
            self.generation += 1
            for visitor_id in ids:
                self._entries.pop(visitor_id, None)

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._entries.clear()
