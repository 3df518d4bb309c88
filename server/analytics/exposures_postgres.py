"""Exposures written to PostgreSQL from a background thread, in batches.

The same contract as ``server.analytics.exposures.ExposureRecorder`` (read its
docstring for what an exposure is), with the same buffer, writer thread and durable
mode (``server.analytics.exposure_buffer``).

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
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

from decision.profile import format_timestamp
from server.analytics.exposure_buffer import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_FLUSH_INTERVAL,
    DEFAULT_MAX_PENDING,
    ExposureBuffer,
    Pending,
    Refused,
    RetryLater,
)
from server.errors import StoreError
from server.postgres.connections import Database

__all__ = ["PostgresExposureRecorder", "exposures_of"]

STORE = "exposure store"

_INSERT = (
    "INSERT INTO exposures"
    " (decision_id, visitor_id, source_id, campaign, variant, segments, placement, ts)"
    " SELECT u.d, coalesce(a.canonical, u.v), u.v, u.c, u.var, u.seg, u.p, u.ts"
    " FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[],"
    " %b::text[]) WITH ORDINALITY AS u(d, v, c, var, seg, p, ts, n)"
    " LEFT JOIN aliases AS a ON a.alias = u.v ORDER BY u.n"
)


class PostgresExposureRecorder(ExposureBuffer):
    """Exposures written to PostgreSQL in batches from a thread (the buffering, the
    writer thread and durable waits: ``server.analytics.exposure_buffer``).

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
        durable: bool = False,
    ) -> None:
        super().__init__(
            db.where,
            flush_interval=flush_interval,
            batch_size=batch_size,
            max_pending=max_pending,
            metrics=metrics,
            durable=durable,
        )
        self._db = db
        self._segments: dict[Any, str] = {}
        if start:
            self._start()

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

    def _commit(self, batch: Sequence[Pending]) -> None:
        """One statement (autocommit: one transaction). With ``synchronous_commit`` on
        (PostgreSQL's default) the commit is flushed to the WAL before it returns."""
        columns = self._columns(batch)
        try:
            with self._db.connection(STORE) as conn:
                conn.execute(_INSERT, columns)
        except StoreError as exc:
            raise RetryLater(exc) from exc
        except psycopg.DataError as exc:
            raise Refused(exc) from exc


def exposures_of(conn: psycopg.Connection[Any], ids: Iterable[str]) -> list[dict[str, Any]]:
    """Every stored exposure of the visitors ``ids`` (a canonical id and its aliases),
    oldest first (for ExportVisitor)."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    rows = conn.execute(
        "SELECT decision_id, source_id, campaign, variant, segments, placement, ts,"
        " channel, send_id FROM exposures WHERE visitor_id = ANY(%b::text[]) ORDER BY ts, seq",
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
            "channel": channel,
            "send_id": send_id,
        }
        for (
            decision_id,
            source_id,
            campaign,
            variant,
            segments,
            placement,
            ts,
            channel,
            send_id,
        ) in rows
    ]
