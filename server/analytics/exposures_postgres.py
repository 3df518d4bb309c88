"""Exposures written to PostgreSQL from a background thread, in batches.

The same contract as ``server.analytics.exposures.ExposureRecorder`` (read its
docstring for what an exposure is): ``record`` appends to a deque and never blocks; a
thread writes what is pending every ``flush_interval`` (0.2 s) or as soon as
``batch_size`` rows wait; ``flush`` writes from the calling thread; ``close`` writes
everything left, so a clean stop loses none; a full buffer drops (and counts) new
exposures rather than making Decide wait.

A batch is one statement: ``INSERT ... SELECT ... FROM unnest(arrays)`` joined with
``aliases``, so the stored ``visitor_id`` is the canonical id of the id Decide was
called with (``source_id``), and the arrays travel in binary (psycopg would otherwise
escape every value in Python). While the database is unreachable the batch goes back
to the front of the queue and is retried on the next pass; the buffer's bound then
decides what is dropped. A batch the database refuses for its content (which the
server's own checks make impossible) is dropped and counted, not retried for ever.

Merges: the row is written with the canonical id the alias table had when the
statement ran. A merge committing between that moment and the batch's commit leaves
the row under the merged id, which is an alias from then on; readers that resolve
``visitor_id`` through ``aliases`` (export, deletion, which look under every alias,
and the next merge of that person, which re-points them) find it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

from decision.profile import format_timestamp
from server.analytics.exposures import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_FLUSH_INTERVAL,
    DEFAULT_MAX_PENDING,
    Pending,
)
from server.errors import StoreError
from server.logs import FaultLog
from server.postgres.connections import Database

__all__ = ["PostgresExposureRecorder", "exposures_of"]

logger = logging.getLogger("decide.server")

STORE = "exposure store"

_INSERT = (
    "INSERT INTO exposures"
    " (decision_id, visitor_id, source_id, campaign, variant, segments, placement, ts)"
    " SELECT u.d, coalesce(a.canonical, u.v), u.v, u.c, u.var, u.seg, u.p, u.ts"
    " FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[],"
    " %b::text[]) WITH ORDINALITY AS u(d, v, c, var, seg, p, ts, n)"
    " LEFT JOIN aliases AS a ON a.alias = u.v ORDER BY u.n"
)


class PostgresExposureRecorder:
    """Buffers exposures and writes them to PostgreSQL in batches from a thread.

    ``metrics`` (a ``server.metrics.Metrics``) counts written and dropped exposures.
    Call ``close()`` once nothing records any more; it writes what is left. The
    ``Database`` belongs to the caller (close it after this)."""

    def __init__(
        self,
        db: Database,
        *,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_pending: int = DEFAULT_MAX_PENDING,
        metrics: Any = None,
        start: bool = True,
    ) -> None:
        if batch_size < 1 or max_pending < batch_size:
            raise ValueError("need 1 <= batch_size <= max_pending")
        self._db = db
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.max_pending = max_pending
        self._metrics = metrics
        self._pending: deque[Pending] = deque()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._closed = False
        self._write_lock = threading.Lock()
        self._drop_lock = threading.Lock()
        self._segments: dict[Any, str] = {}
        self._faults = FaultLog(
            logger, f"writing exposures to {db.where}", "exposures_write_failed"
        )
        self.dropped = 0
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="decide-exposures", daemon=True)
        if start:
            self._thread.start()

    # -- the request path ---------------------------------------------------------------

    def record(self, exposures: Sequence[Pending]) -> None:
        """Queue exposures for writing; never blocks. Drops (and counts) them when the
        buffer is full or the recorder is closed."""
        pending = self._pending
        if self._closed or len(pending) + len(exposures) > self.max_pending:
            self._drop(len(exposures))
            return
        pending.extend(exposures)
        if len(pending) >= self.batch_size and not self._wake.is_set():
            self._wake.set()

    def _drop(self, count: int) -> None:
        with self._drop_lock:
            first = self.dropped == 0
            self.dropped += count
        if self._metrics is not None:
            self._metrics.exposures_dropped.inc(count)
        if first:
            logger.warning(
                "exposure buffer full (%d pending) or closed: dropping exposures; reports"
                " will undercount until the writer catches up",
                len(self._pending),
                extra={"event": "exposures_dropped", "pending": len(self._pending)},
            )

    # -- writing ------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Exposures waiting to be written."""
        return len(self._pending)

    def flush(self) -> int:
        """Write everything pending now, from the calling thread; returns rows written."""
        written = 0
        while self._pending:
            batch = self._take()
            if not batch or not self._write(batch):
                break
            written += len(batch)
        return written

    def _take(self) -> list[Pending]:
        batch: list[Pending] = []
        popleft = self._pending.popleft
        try:
            for _ in range(self.batch_size):
                batch.append(popleft())
        except IndexError:
            pass
        return batch

    def _columns(self, batch: Sequence[Pending]) -> list[list[str]]:
        columns: list[list[str]] = [[], [], [], [], [], [], []]
        d, v, c, var, seg, p, ts = columns
        texts = self._segments
        for decision_id, visitor_id, campaign, variant, segments, placement, moment in batch:
            try:
                text = texts.get(segments)
            except TypeError:  # an unhashable list
                text = json.dumps(list(segments), separators=(",", ":"))
            if text is None:
                if len(texts) >= 4096:
                    texts.clear()
                text = texts[segments] = json.dumps(list(segments), separators=(",", ":"))
            d.append(decision_id)
            v.append(visitor_id)
            c.append(campaign)
            var.append(variant)
            seg.append(text)
            p.append(placement)
            ts.append(format_timestamp(moment))
        return columns

    def _write(self, batch: list[Pending]) -> bool:
        """One statement; on an unreachable database the rows go back to the front."""
        with self._write_lock:
            columns = self._columns(batch)
            try:
                with self._db.connection(STORE) as conn:
                    conn.execute(_INSERT, columns)
            except StoreError as exc:
                self._pending.extendleft(reversed(batch))
                self._faults.failed(exc)
                return False
            except psycopg.DataError as exc:
                self._faults.failed(exc)
                self._drop(len(batch))
                return True
        self._faults.ok()
        self.written += len(batch)
        if self._metrics is not None:
            self._metrics.exposures_written.inc(len(batch))
        return True

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            if self._stopping.is_set():
                break
            try:
                self.flush()
            except Exception:  # the writer must survive; logged
                logger.exception("exposure writer failed", extra={"event": "exposures_error"})

    def close(self) -> None:
        """Stop the writer thread and write everything still pending (once; a
        database that is down keeps what is pending unwritten). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()
        self.flush()


def exposures_of(conn: psycopg.Connection[Any], ids: Iterable[str]) -> list[dict[str, Any]]:
    """Every stored exposure of the visitors ``ids`` (a canonical id and its aliases),
    oldest first (for ExportVisitor)."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    rows = conn.execute(
        "SELECT decision_id, source_id, campaign, variant, segments, placement, ts"
        " FROM exposures WHERE visitor_id = ANY(%b::text[]) ORDER BY ts, seq",
        (wanted,),
    )
    return [
        {
            "decision_id": decision_id,
            "visitor_id": source_id,
            "campaign": campaign,
            "variant": variant,
            "segments": json.loads(segments),
            "placement": placement,
            "timestamp": ts,
        }
        for decision_id, source_id, campaign, variant, segments, placement, ts in rows
    ]
