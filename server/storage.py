"""The storage seam: everything a server keeps, from one backend chosen by ``config.store``.

A ``Storage`` groups what a backend provides: the rules store, the profile store, an
exposure recorder, a watcher that tells the reloader about publishes, a check and a
close. ``open_storage(config)`` picks the backend from ``config.location``:

- a SQLite file (``--store PATH``, ``sqlite:///PATH``, or the old ``--db PATH``): the
  embedded default, one machine (``server.sqlite_storage``);
- a PostgreSQL database (``--store postgresql://...``): shared by any number of
  deciders on any number of machines (``server.postgres.storage``).

Nothing above this module (``server.app``, the servicers) asks which one it has.
``scan_file`` is the one exception, and a temporary one: the analytics code (reports,
estimates, exports, daily segment sizes) still reads a SQLite file. A backend without
one (PostgreSQL, until issue 11's part 2 gives it the queries docs/storage.md lists)
returns None, and those calls answer FAILED_PRECONDITION (``NotOnThisStoreError``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from server.analytics.exposure_buffer import Pending
from server.config import ServerConfig
from server.profiles.store import ProfileStore
from server.rules.store import RulesStore, RulesWatcher

__all__ = ["ExposureSink", "Storage", "open_storage"]


class ExposureSink(Protocol):
    """Where Decide's exposures go: ``record`` never blocks; a thread of the sink's own
    writes them in batches."""

    @property
    def durable(self) -> bool:
        """Whether Decide must ``await record_durably`` instead of ``record``."""
        ...

    def record(self, exposures: Sequence[Pending]) -> None:
        """Queue exposures; drops (and counts) them when the buffer is full."""
        ...

    async def record_durably(self, exposures: Sequence[Pending]) -> None:
        """Queue exposures and return once they are committed."""
        ...

    def flush(self) -> int:
        """Write everything pending now, from the calling thread; rows written."""
        ...

    def close(self) -> None:
        """Stop the writer and write what is pending. Idempotent."""
        ...


class Storage(Protocol):
    """One backend's stores, opened together and closed together."""

    @property
    def backend(self) -> str:
        """The backend's name for messages: ``"SQLite"`` or ``"PostgreSQL"``."""
        ...

    @property
    def location(self) -> str:
        """Where the stores live, for messages: a file path, or a database URL
        without its password."""
        ...

    @property
    def rules(self) -> RulesStore: ...

    @property
    def profiles(self) -> ProfileStore: ...

    @property
    def exposures(self) -> ExposureSink | None:
        """None when the caller brought its own profile store (an embedder's or a
        test's), which then records no exposures."""
        ...

    @property
    def scan_file(self) -> Path | None:
        """The SQLite file reports scan; None where reports are not available yet."""
        ...

    def watch_rules(self) -> RulesWatcher:
        """A new watcher for one reloader (which closes it)."""
        ...

    def check(self, *, full: bool = False) -> list[str]:
        """Check the stores (``full``: every page, where that means something); raise
        a store error on damage or a wrong schema; the lines ``decide store check``
        prints."""
        ...

    def close(self) -> None:
        """Write pending exposures, then close what this storage opened. Idempotent."""
        ...


def open_storage(
    config: ServerConfig,
    *,
    metrics: Any = None,
    rules: RulesStore | None = None,
    profiles: ProfileStore | None = None,
) -> Storage:
    """Open the stores ``config`` names (checked first: a damaged file, an unreachable
    database or a schema of another version raises a store error). ``rules`` and
    ``profiles``: stores the caller opened and keeps (tests, embedders); the storage
    uses them instead of opening its own and never closes them. ``metrics`` counts
    exposures."""
    location = config.location
    if location.backend == "postgresql":
        from server.postgres.storage import PostgresStorage

        return PostgresStorage(config, metrics=metrics, rules=rules, profiles=profiles)
    from server.sqlite_storage import SQLiteStorage

    return SQLiteStorage(config, metrics=metrics, rules=rules, profiles=profiles)
