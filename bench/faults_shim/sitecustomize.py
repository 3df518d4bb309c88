"""Bench only: a full disk for ``bench/faults.py`` when it cannot mount a small tmpfs.

With this folder first on a server's ``PYTHONPATH`` and ``DECIDE_FAULTS_PAGE_LIMIT``
naming a file, every SQLite connection the process opens applies
``PRAGMA max_page_count = N``, N read from that file, before its next statement
whenever the file changed. SQLite then refuses to grow the database past N pages with
SQLITE_FULL ("database or disk is full"), the error a full disk gives; N below the
file's size holds it at its size. Writing a large N is space coming back. Nothing
changes while the file is empty.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

_LIMIT = os.environ.get("DECIDE_FAULTS_PAGE_LIMIT")

if _LIMIT:
    _connect = sqlite3.connect

    class _Limited(sqlite3.Connection):
        """A connection that applies the page limit in ``_LIMIT`` when it changes."""

        _seen: int | None = None

        def _apply(self) -> None:
            try:
                stamp = os.stat(_LIMIT).st_mtime_ns
                if stamp == self._seen:
                    return
                with open(_LIMIT) as f:
                    text = f.read().strip()
            except OSError:
                return
            self._seen = stamp
            if text:
                sqlite3.Connection.execute(self, f"PRAGMA max_page_count = {int(text)}")

        def execute(self, *args: Any, **kwargs: Any) -> sqlite3.Cursor:
            self._apply()
            return super().execute(*args, **kwargs)

        def executemany(self, *args: Any, **kwargs: Any) -> sqlite3.Cursor:
            self._apply()
            return super().executemany(*args, **kwargs)

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        kwargs.setdefault("factory", _Limited)
        return _connect(*args, **kwargs)

    sqlite3.connect = connect  # type: ignore[assignment]
