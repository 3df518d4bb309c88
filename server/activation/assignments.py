"""Who a visitor is at Decide: their canonical id and stored assignments, cached.

Decide draws buckets on the canonical id (after identity merges) and passes the stored
assignments to the engine, which keeps every assigned visitor in their arm
(``decision.engine``). ``IdentityCache`` answers from a TTL cache (``ttl`` seconds, like
the profile cache: another process's new assignments are seen within it) and otherwise
reads the store, which for SQLite is a local read that never waits for a writer, so
Decide reads it on the event loop, as it reads profiles.

An assignment is stored by the exposure writer after Decide (``server.activation.
recording``), up to 200 ms later; ``learn`` puts what a Decide served into the cache at
once, so the same process keeps the arm even before the row is written.

``IdentityAwareProfiles`` is the profile store Track writes through: before a batch with
an ``identify`` event it writes the exposures still buffered (so the identifying
visitor's assignments are stored when the merge moves them) and afterwards drops the
merged ids from the cache.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from cachetools import TTLCache

from decision import HOLDOUT_ARM, Assignment, Decision, Ruleset
from decision.profile import Event
from decision.retention import ActivityNeeds
from server.activation.store import AssignmentStore, Identity
from server.profiles.backfill import BackfillStatus
from server.profiles.store import ProfileStore, TrackResult

__all__ = ["IdentityAwareProfiles", "IdentityCache"]

DEFAULT_SIZE = 100_000
DEFAULT_TTL = 1.0


class IdentityCache:
    """Per visitor id, the ``Identity`` Decide uses; see the module docstring."""

    def __init__(
        self, store: AssignmentStore, *, maxsize: int = DEFAULT_SIZE, ttl: float = DEFAULT_TTL
    ) -> None:
        self.store = store
        self._enabled = maxsize > 0 and ttl > 0
        self._cache: TTLCache[str, Identity] = TTLCache(maxsize=max(maxsize, 1), ttl=ttl or 1)
        self._lock = threading.Lock()  # TTLCache is not thread-safe
        self._generation = 0

    def get(self, visitor_id: str) -> Identity:
        """The visitor's identity: from the cache, else read from the store."""
        if self._enabled:
            with self._lock:
                cached = self._cache.get(visitor_id)
                generation = self._generation
            if cached is not None:
                return cached
        identity = self.store.identities([visitor_id])[visitor_id]
        if self._enabled:
            with self._lock:
                # A merge dropped entries while we read: what we read may predate it.
                if generation == self._generation:
                    self._cache[visitor_id] = identity
        return identity

    def learn(
        self, visitor_id: str, identity: Identity, decisions: Sequence[Decision], ruleset: Ruleset
    ) -> None:
        """Add what ``decisions`` served (and will be stored) to the visitor's cached
        assignments, when it differs from what they hold."""
        if not self._enabled:
            return
        held = identity.assignments
        fresh: dict[str, Assignment] | None = None
        for d in decisions:
            campaign_id = d.campaign_id
            if campaign_id is None:
                continue
            campaign = ruleset.campaigns.get(campaign_id)
            if campaign is None:
                continue
            arm = Assignment(d.variant_id or HOLDOUT_ARM, campaign.salt)
            if held.get(campaign_id) != arm:
                if fresh is None:
                    fresh = dict(held)
                fresh[campaign_id] = arm
        if fresh is not None:
            with self._lock:
                self._cache[visitor_id] = Identity(identity.canonical, fresh)

    def forget(self, visitor_ids: Sequence[str]) -> None:
        """Drop cached identities (after identity merges or deletions)."""
        with self._lock:
            self._generation += 1
            for visitor_id in visitor_ids:
                self._cache.pop(visitor_id, None)

    def clear(self) -> None:
        """Drop every cached identity."""
        with self._lock:
            self._generation += 1
            self._cache.clear()


class IdentityAwareProfiles:
    """A ``ProfileStore`` for Track: identify batches write buffered exposures first and
    drop the ids they merge from the identity cache afterwards; everything else goes
    straight to ``profiles``."""

    def __init__(self, profiles: ProfileStore, exposures: Any, identities: IdentityCache) -> None:
        self._profiles = profiles
        self._exposures = exposures
        self._identities = identities

    def track(self, events: Sequence[Event]) -> TrackResult:
        identifies = any(e.type == "identify" for e in events)
        if identifies and self._exposures is not None:
            self._exposures.flush()
        try:
            return self._profiles.track(events)
        finally:
            if identifies:
                # Every id whose canonical id may have moved: aliases of either side
                # are cached under their own ids, so start over.
                self._identities.clear()

    def peek(self, visitor_id: str) -> dict[str, Any] | None:
        return self._profiles.peek(visitor_id)

    def get(self, visitor_id: str) -> dict[str, Any] | None:
        return self._profiles.get(visitor_id)

    def set_attributes(
        self, visitor_id: str, attributes: Mapping[str, Any], now: datetime
    ) -> dict[str, Any]:
        return self._profiles.set_attributes(visitor_id, attributes, now)

    def delete_visitor(self, visitor_id: str) -> int:
        try:
            return self._profiles.delete_visitor(visitor_id)
        finally:
            self._identities.clear()

    def export_visitor(self, visitor_id: str) -> dict[str, Any]:
        return self._profiles.export_visitor(visitor_id)

    def use_activity(self, needs: ActivityNeeds) -> None:
        self._profiles.use_activity(needs)

    def activity_status(self) -> BackfillStatus:
        return self._profiles.activity_status()

    def close(self) -> None:
        self._profiles.close()
