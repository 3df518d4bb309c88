"""Daily segment sizes: one count of every segment over the stored profiles per UTC day.

``SizeSnapshots`` (a background thread of the server) counts every segment's stored
profiles once per UTC day into ``segment_sizes(day, segment_id, size, profiles,
taken_at, ruleset_version)``. That is the size the segment had, as it was defined that
day; days before the first snapshot (or when no server ran) are simply absent, never
interpolated.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any

from server.analytics import scans as audiences
from server.rules.snapshot import Snapshot

__all__ = ["SIZES_SCHEMA", "SizeSnapshots", "read_sizes"]

logger = logging.getLogger("decide.server")

Clock = Callable[[], datetime]

SIZES_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS segment_sizes (day TEXT NOT NULL, segment_id TEXT NOT NULL,"
    " size INTEGER NOT NULL, profiles INTEGER NOT NULL, taken_at TEXT NOT NULL,"
    " ruleset_version INTEGER NOT NULL, PRIMARY KEY (day, segment_id))"
)


def read_sizes(
    conn: sqlite3.Connection, segment_ids: Sequence[str], start: datetime, end: datetime
) -> dict[str, list[tuple[str, int]]]:
    """Snapshot sizes of ``segment_ids`` for the UTC days from start's to end's."""
    sizes: dict[str, list[tuple[str, int]]] = {s: [] for s in segment_ids}
    marks = ", ".join("?" * len(segment_ids))
    try:
        rows = conn.execute(
            f"SELECT day, segment_id, size FROM segment_sizes WHERE segment_id IN ({marks})"
            " AND day >= ? AND day <= ? ORDER BY day",
            [*segment_ids, start.date().isoformat(), end.date().isoformat()],
        ).fetchall()
    except sqlite3.OperationalError:  # no snapshot was ever taken on this file
        return sizes
    for day, segment_id, size in rows:
        sizes[segment_id].append((day, size))
    return sizes


class SizeSnapshots:
    """Counts every segment's stored profiles once per UTC day (``segment_sizes``).

    A background thread checks ``first_check`` seconds after start and then every
    ``check_interval`` seconds whether today has a snapshot, and takes one if not.
    ``take(now)`` does it at once (tests, or an operator). Several server processes on
    one file may each take one; the last write of a day wins.
    """

    def __init__(
        self,
        path: str | Path,
        source: Any,
        clock: Clock,
        *,
        first_check: float = 60.0,
        check_interval: float = 3600.0,
    ) -> None:
        self.path = Path(path)
        self._source = source
        self._clock = clock
        self._first_check = first_check
        self._check_interval = check_interval
        self._stopping = threading.Event()
        with closing(sqlite3.connect(str(self.path), timeout=5.0)) as conn:
            conn.execute(SIZES_SCHEMA)
            conn.commit()
        self._thread = threading.Thread(target=self._run, name="decide-segment-sizes", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def take(self, now: datetime | None = None) -> int:
        """Record today's sizes (the day of ``now``); returns the segments recorded."""
        snapshot: Snapshot | None = self._source.snapshot
        if snapshot is None:
            return 0
        now = now or self._clock()
        with closing(audiences.connect(self.path)) as conn:
            profiles, sizes = audiences.segment_sizes(conn, snapshot.ruleset, now)
        day = now.date().isoformat()
        with closing(sqlite3.connect(str(self.path), timeout=5.0)) as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO segment_sizes VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (day, segment_id, size, profiles, now.isoformat(), snapshot.version)
                    for segment_id, size in sizes.items()
                ],
            )
            conn.commit()
        return len(sizes)

    def _taken(self, day: str) -> bool:
        with closing(sqlite3.connect(str(self.path), timeout=5.0)) as conn:
            return (
                conn.execute("SELECT 1 FROM segment_sizes WHERE day = ?", (day,)).fetchone()
                is not None
            )

    def _run(self) -> None:
        wait = self._first_check
        while not self._stopping.wait(wait):
            wait = self._check_interval
            try:
                now = self._clock()
                if not self._taken(now.date().isoformat()):
                    self.take(now)
            except Exception:  # the job must survive a busy or broken file; logged
                logger.exception("segment size snapshot failed", extra={"event": "sizes_error"})
