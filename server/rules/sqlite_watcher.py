"""Changes of a SQLite rules store, seen through ``PRAGMA data_version``.

The watcher owns a read-only connection and reads ``PRAGMA data_version``, which SQLite
changes on this connection only when another connection commits, whoever it is (this
server's admin API, the CLI, another server process, the sqlite3 shell): an idle poll
costs one pragma. On a change it reads the active row. SQLite has no notifications:
the reloader's polling interval bounds how soon a change is seen.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from server.errors import StoreError, StoreUnavailableError
from server.rules.sqlite import read_active
from server.sqlite import store_error

__all__ = ["SQLiteRulesWatcher"]


class SQLiteRulesWatcher:
    """A ``RulesWatcher`` on one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._data_version: int | None = None

    def start(self, wake: Callable[[], None]) -> None:
        """Nothing to start: SQLite cannot notify; polling finds every change."""

    def poll(self) -> tuple[int, str] | None:
        try:
            conn = self._connection()
            data_version = conn.execute("PRAGMA data_version").fetchone()[0]
            if data_version == self._data_version:
                return None
            # Remember the value before reading: a commit after this line changes it again.
            self._data_version = data_version
            return read_active(conn)
        except sqlite3.Error as exc:
            # A broken or replaced file: start over with a fresh connection next time.
            self.close()
            mapped = store_error(exc, "rules store", self.path)
            if isinstance(mapped, StoreError):
                raise mapped from exc
            raise StoreUnavailableError("rules store", str(self.path), str(exc)) from exc

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
            self._data_version = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            uri = self.path.resolve().as_uri() + "?mode=ro"
            self._conn = sqlite3.connect(
                uri, uri=True, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA busy_timeout = 1000")
            self._data_version = None
        return self._conn
