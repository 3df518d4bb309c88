"""The profile store seam: stored visitor profiles in, events and visitor administration.

Decide reads a profile on every call, so reading has two steps: ``peek`` answers at
once when the store can without waiting (its cache, or for an embedded store a local
read that never waits on another process), else ``MISSING``; ``get`` may wait on I/O
and is called from a pool thread. Everything else blocks (disk or network) and is
called from a pool thread too. ``server.profiles.sqlite.SQLiteProfileStore`` is the
embedded backend; nothing above this interface asks which backend it has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from decision import ActivityNeeds
from decision.profile import Event
from server.profiles.backfill import BackfillStatus

__all__ = ["MISSING", "ProfileReader", "ProfileStore", "TrackResult"]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final[Any] = _Missing()
"""What ``peek`` returns when it cannot answer without waiting."""


@dataclass(frozen=True, slots=True)
class TrackResult:
    """What ``track`` did: events stored, and events already stored (same event_id)."""

    accepted: int
    duplicates: int


class ProfileReader(Protocol):
    """A source of stored profiles. A profile is a document (a dict shared with the
    store's cache: never mutate it) or None for a visitor the store does not know."""

    def peek(self, visitor_id: str) -> dict[str, Any] | None:
        """The profile, if the store can answer without waiting; else ``MISSING``."""
        ...

    def get(self, visitor_id: str) -> dict[str, Any] | None:
        """The profile; may block."""
        ...


class ProfileStore(ProfileReader, Protocol):
    """Profiles built from events, and the administration of stored visitors."""

    def track(self, events: Sequence[Event]) -> TrackResult:
        """Store a validated batch atomically and durably; returns after the commit."""
        ...

    def set_attributes(
        self, visitor_id: str, attributes: Mapping[str, Any], now: datetime
    ) -> dict[str, Any]:
        """Set shop attributes (null removes one) as of ``now``; the new profile."""
        ...

    def delete_visitor(self, visitor_id: str) -> int:
        """Forget everything held about the visitor; the number of records removed."""
        ...

    def export_visitor(self, visitor_id: str) -> dict[str, Any]:
        """Everything held about the visitor, as one JSON-ready document."""
        ...

    def use_activity(self, needs: ActivityNeeds) -> None:
        """Keep what ``needs`` (the served rules' ``Ruleset.activity``) reads in every
        fold from now on, and complete the stored profiles that do not cover it from
        the event log in the background. Called on every rules load; thread-safe."""
        ...

    def activity_status(self) -> BackfillStatus:
        """Where that back-fill stands (``complete`` when nothing is left)."""
        ...

    def close(self) -> None:
        """Release the store's connections and threads. Idempotent."""
        ...
