"""The rules store seam: what every rules backend provides, and what it returns.

A store keeps immutable versions of the rules document and one active pointer;
publishing and rolling back are transactional, with an optimistic-concurrency check
(``expected_version``). ``server.rules.sqlite.SQLiteRulesStore`` is the embedded
backend, ``server.rules.postgres.PostgresRulesStore`` the shared one. Nothing above this
interface asks which backend it has.

``RulesWatcher`` is how a server's reloader learns of a publish, whoever made it: each
backend has one (SQLite: ``PRAGMA data_version``; PostgreSQL: LISTEN/NOTIFY with
polling as the fallback).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from decision import Ruleset

__all__ = ["SEED_AUTHOR", "RulesStore", "RulesWatcher", "VersionInfo"]

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


class RulesWatcher(Protocol):
    """Notices changes of the active rules, for one reloader (which calls it from its
    own thread). Raises ``server.errors`` store errors; after one, the next call starts
    over (a fresh connection)."""

    def start(self, wake: Callable[[], None]) -> None:
        """Begin watching: call ``wake`` (from any thread) whenever the active rules may
        have changed, so the reloader polls at once instead of at its next interval. A
        backend without notifications calls it never; polling alone then finds changes."""
        ...

    def poll(self) -> tuple[int, str] | None:
        """``(version, document)`` of the active rules when the store changed since the
        last call that returned them (the first call: whatever is active); None when
        nothing changed or nothing is active. Cheap when nothing changed."""
        ...

    def close(self) -> None:
        """Stop watching and release connections. Idempotent."""
        ...
