"""What the SQLite stores share: write transactions, and SQLite errors as store errors.

Every store writes through ``immediate``: one ``BEGIN IMMEDIATE`` transaction (SQLite's
write lock is taken before anything is read), committed at the end of the block or
rolled back on any exception. When SQLite itself has already rolled the transaction
back (a failed COMMIT on a full disk does), no second ROLLBACK is sent: its "cannot
rollback - no transaction is active" would hide the real cause.

``store_error`` turns a ``sqlite3.Error`` into the ``server.errors`` class that says what
happened and where, by SQLite's primary result code:

    SQLITE_BUSY, SQLITE_LOCKED       StoreBusyError         another writer holds the lock
    SQLITE_FULL                      StoreFullError         the disk (or quota) is full
    SQLITE_READONLY, SQLITE_CANTOPEN,
    SQLITE_PERM, SQLITE_IOERR,
    SQLITE_AUTH                      StoreUnavailableError  the file cannot be used now
    SQLITE_CORRUPT, SQLITE_NOTADB    StoreCorruptError      the file is damaged

Anything else (a bug such as a malformed statement) is left as it is. Each message
names the store and its file, so an operator knows which file to look at.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from server.errors import (
    StoreBusyError,
    StoreCorruptError,
    StoreError,
    StoreFullError,
    StoreUnavailableError,
)

__all__ = [
    "QUICK_CHECK_PAGES",
    "check_file",
    "check_integrity",
    "immediate",
    "reraise",
    "store_error",
]

# SQLite primary result codes (the low byte of an extended code).
_BUSY = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED
_FULL = 13
_UNAVAILABLE = (3, 8, 10, 14, 23)  # PERM, READONLY, IOERR, CANTOPEN, AUTH
_CORRUPT = (11, 26)  # CORRUPT, NOTADB

QUICK_CHECK_PAGES = 100_000
"""``check_integrity`` checks files of up to this many pages (400 MB of 4 KiB pages)
whole at start-up; larger files get their first ``quick_check`` errors only, which
bounds the time the check may take (``PRAGMA quick_check(N)`` stops after N errors,
not N pages, so the bound is on the size it is run on)."""


def store_error(exc: sqlite3.Error, store: str, path: str | Path) -> Exception:
    """The store error ``exc`` means, or ``exc`` itself when it is not a store fault."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(exc)
    if primary is None:  # sqlite3 sets no code on some errors: fall back on the text
        lowered = text.lower()
        if "locked" in lowered or "busy" in lowered:
            primary = _BUSY[0]
        elif "disk is full" in lowered or "database or disk is full" in lowered:
            primary = _FULL
        elif "unable to open" in lowered or "readonly" in lowered:
            primary = _UNAVAILABLE[1]
        elif "malformed" in lowered or "not a database" in lowered:
            primary = _CORRUPT[0]
    if primary in _BUSY:
        return StoreBusyError(store)
    if primary == _FULL:
        return StoreFullError(store, str(path))
    if primary in _UNAVAILABLE:
        return StoreUnavailableError(store, str(path), text)
    if primary in _CORRUPT:
        return StoreCorruptError(store, str(path), text)
    return exc


def reraise(exc: sqlite3.Error, store: str, path: str | Path) -> NoReturn:
    """Raise the store error ``exc`` means (chained from it), or ``exc`` itself."""
    mapped = store_error(exc, store, path)
    if mapped is exc:
        raise exc
    raise mapped from exc


@contextmanager
def immediate(
    conn: sqlite3.Connection,
    lock: threading.Lock | threading.RLock,
    *,
    store: str,
    path: str | Path,
    closed: Callable[[], bool] | None = None,
) -> Iterator[None]:
    """One ``BEGIN IMMEDIATE`` transaction on ``conn`` under ``lock``; store errors mapped.

    ``closed``: asked under the lock; when it says the store is closed, the block does
    not run.
    """
    with lock:
        if closed is not None and closed():
            raise StoreUnavailableError(store, str(path), "the store is closed")
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            reraise(exc, store, path)
        try:
            yield
        except sqlite3.Error as exc:
            _rollback(conn)
            reraise(exc, store, path)
        except BaseException:
            _rollback(conn)
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(conn)
            reraise(exc, store, path)


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back unless SQLite already did (it does after some failed statements)."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # the connection is unusable; the original error is what matters


def check_file(path: str | Path, store: str, *, full: bool = False) -> None:
    """``check_integrity`` on a read-only connection of its own to the file at ``path``
    (``full``: SQLite's complete ``integrity_check``, whatever the file's size)."""
    from urllib.parse import quote

    uri = f"file:{quote(str(Path(path).resolve()))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=5.0)
    except sqlite3.Error as exc:
        reraise(exc, store, path)
    try:
        if full:
            try:
                rows = [row[0] for row in conn.execute("PRAGMA integrity_check(20)")]
            except sqlite3.Error as exc:
                reraise(exc, store, path)
            if rows != ["ok"]:
                raise StoreCorruptError(store, str(path), "; ".join(rows))
        else:
            check_integrity(conn, store, path)
    finally:
        conn.close()


def check_integrity(conn: sqlite3.Connection, store: str, path: str | Path) -> None:
    """Raise ``StoreCorruptError`` naming the first problems when the file is damaged.

    ``PRAGMA quick_check`` reads every page of a file up to ``QUICK_CHECK_PAGES``
    pages (about a second per few hundred MB here); a larger file is checked by
    ``decide store check`` instead, and only its schema is read here.
    """
    try:
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        if pages > QUICK_CHECK_PAGES:
            conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()
            return
        rows = [row[0] for row in conn.execute("PRAGMA quick_check(5)")]
    except sqlite3.Error as exc:
        mapped = store_error(exc, store, path)
        if isinstance(mapped, StoreError):
            raise mapped from exc
        raise
    if rows != ["ok"]:
        raise StoreCorruptError(store, str(path), "; ".join(rows))
