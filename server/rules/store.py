"""The rules store seam: what every rules backend provides, and what it returns.

A store keeps immutable versions of the rules document and one active pointer;
publishing and rolling back are transactional, with an optimistic-concurrency check
(``expected_version``). ``server.rules.sqlite.SQLiteRulesStore`` is the embedded
backend. Nothing above this interface asks which backend it has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from decision import Ruleset

__all__ = ["SEED_AUTHOR", "RulesStore", "VersionInfo"]

SEED_AUTHOR = "decide"
"""Author recorded on versions the server writes by itself (the initial seed, --demo)."""


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """Metadata of one stored version. ``restored_from`` is 0 unless it is a rollback."""

    version: int
    content_hash: str
    created_at: datetime
    comment: str
    author: str
    restored_from: int
    active: bool
    ruleset: Ruleset | None = field(default=None, compare=False, repr=False)
    """The compiled document, when this call compiled it (publish, rollback): the
    reloader adopts it instead of compiling the same text again."""


class RulesStore(Protocol):
    """Versioned rules documents. Methods block (disk or network): call them from a
    pool thread, not the event loop. Raise ``server.errors`` store errors."""

    @property
    def path(self) -> Path:
        """Where the store lives, for messages and for the reloader's own connection."""
        ...

    def publish(
        self,
        document_json: str,
        *,
        expected_version: int | None = None,
        comment: str = "",
        author: str = "",
    ) -> VersionInfo:
        """Validate, store as a new version and make it active, atomically."""
        ...

    def rollback(
        self,
        version: int,
        *,
        comment: str = "",
        expected_version: int | None = None,
        author: str = "",
    ) -> VersionInfo:
        """Make an earlier version's document active again, as a new version."""
        ...

    def publish_if_pristine(
        self,
        document_json: str,
        *,
        comment: str = "",
        author: str = SEED_AUTHOR,
        replace_default: bool = True,
    ) -> VersionInfo | None:
        """Publish only into a store nobody has published to yet."""
        ...

    def get(self, version: int | None = None) -> tuple[VersionInfo, str]:
        """The metadata and exact text of a version (default: the active one)."""
        ...

    def list_versions(self, limit: int = 50) -> list[VersionInfo]:
        """Up to ``limit`` versions, newest first."""
        ...

    def active_version(self) -> int:
        """The active version number; 0 for an empty store."""
        ...

    def close(self) -> None:
        """Release the store's connections. Idempotent."""
        ...
