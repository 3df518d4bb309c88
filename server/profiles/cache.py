"""A cache in front of a profile reader, per-visitor decision memos, and merging overrides.

Decide evaluates filters over the visitor's stored profile with the request's
``profile_overrides`` applied on top (top-level fields replaced) and the request
context under ``context``. The server's backend is ``server.profiles.sqlite.
SQLiteProfileStore`` (events in, profiles out, its own cache invalidated on write);
``EmptyProfileStore`` knows nobody, and ``CachedProfileStore`` puts a TTL cache in front
of any other backend.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from cachetools import TTLCache

from decision import ProfileMemo
from server.profiles.store import MISSING, ProfileReader


class EmptyProfileStore:
    """A profile reader that knows no visitor."""

    def peek(self, visitor_id: str) -> dict[str, Any] | None:
        return None

    def get(self, visitor_id: str) -> dict[str, Any] | None:
        return None


class CachedProfileStore:
    """A TTL cache in front of another profile reader; caches misses (None) too.

    ``peek`` answers from the cache only; ``get`` asks the backend on a miss and fills
    the cache. ``maxsize`` 0 or ``ttl`` 0 disables caching. Two threads missing the
    same key at once may both ask the backend; that is cheaper than a per-key lock.
    """

    def __init__(self, backend: ProfileReader, *, maxsize: int, ttl: float) -> None:
        self.backend = backend
        self._enabled = maxsize > 0 and ttl > 0
        self._cache: TTLCache[str, Any] = TTLCache(maxsize=max(maxsize, 1), ttl=ttl or 1)
        self._lock = threading.Lock()  # TTLCache is not thread-safe

    def peek(self, visitor_id: str) -> dict[str, Any] | None:
        if not self._enabled:
            return MISSING  # type: ignore[no-any-return]
        with self._lock:
            return self._cache.get(visitor_id, MISSING)  # type: ignore[no-any-return]

    def get(self, visitor_id: str) -> dict[str, Any] | None:
        if not self._enabled:
            return self.backend.get(visitor_id)
        with self._lock:
            cached = self._cache.get(visitor_id, MISSING)
        if cached is not MISSING:
            return cached  # type: ignore[no-any-return]
        profile = self.backend.get(visitor_id)
        with self._lock:
            self._cache[visitor_id] = profile
        return profile


def merge_profile(stored: Mapping[str, Any] | None, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The stored profile with each top-level field of ``overrides`` replacing its own."""
    return {**(stored or {}), **overrides}


DEFAULT_PROFILE_MEMOS = 2048
"""Visitors whose ``decision.ProfileMemo`` ``ProfileMemos`` keeps. A memo is only good
while the profile store returns the same profile object (at most its cache TTL, 1 s by
default), so this needs to cover the visitors of about a second."""


class ProfileMemos:
    """Per visitor, the ``decision.ProfileMemo`` of the stored profile last seen, for
    ``decision.decide(profile_memo=...)``.

    A memo belongs to one profile object and one ruleset: when the store returns
    another object (a write invalidated it, or its cache entry expired) or another
    ruleset is served, the visitor starts a fresh memo. Identity, not equality: equal
    documents may still differ in types (``1`` and ``True``) that filters tell apart.
    Threads may share a memo: its results are the same whoever computes them.
    """

    def __init__(self, maxsize: int = DEFAULT_PROFILE_MEMOS) -> None:
        self.maxsize = maxsize
        self._entries: dict[str, tuple[object, object, ProfileMemo]] = {}

    def get(self, visitor_id: str, stored: object, ruleset: object) -> ProfileMemo | None:
        """The memo of ``visitor_id``'s ``stored`` profile under ``ruleset``; None when
        memos are disabled (``maxsize`` 0)."""
        entries = self._entries
        entry = entries.get(visitor_id)
        if entry is not None and entry[0] is stored and entry[1] is ruleset:
            return entry[2]
        if self.maxsize <= 0:
            return None
        if entry is None and len(entries) >= self.maxsize:
            # The oldest entry; another thread may have removed it already.
            entries.pop(next(iter(entries), ""), None)
        memo = ProfileMemo()
        entries[visitor_id] = (stored, ruleset, memo)
        return memo

    def __len__(self) -> int:
        return len(self._entries)
