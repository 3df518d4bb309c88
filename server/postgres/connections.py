"""One bounded connection pool per decider, and PostgreSQL errors as store errors.

``Database`` wraps a ``psycopg_pool.ConnectionPool`` (psycopg 3, sync API: every caller
is a pool thread, the CLI or a worker process; docs/postgres-driver.md). Connections
are in autocommit; ``transaction()`` opens one transaction, ``connection()`` lends a
connection for single statements. A connection is checked (an empty query) when it
leaves the pool, so one broken by a server restart is replaced instead of failing the
call that got it.

Errors, by SQLSTATE (``map_error``)::

    08xxx connection exception, 57P01-57P03 shutdown or starting up,
    53300 too many connections, no SQLSTATE (refused,
    timed out, closed), PoolTimeout, PoolClosed       StoreUnavailableError  (UNAVAILABLE)
    40001 serialization failure, 40P01 deadlock,
    55P03 lock not available, 57014 query cancelled   StoreBusyError         (UNAVAILABLE)
    53100 disk full                                   StoreFullError         (RESOURCE_EXHAUSTED)
    XX001 data corrupted, XX002 index corrupted       StoreCorruptError      (DATA_LOSS)

Anything else (a malformed statement, a constraint we did not expect) is a bug and is
left as it is. Messages name the store and the database, never its password.

Failing fast while the database is down: when a call finds the database unreachable,
the next ``UNREACHABLE_RETRY`` seconds of calls fail at once with
StoreUnavailableError instead of each waiting ``pool_timeout`` for a connection (which
would fill the write pool's queue, and shed calls as RESOURCE_EXHAUSTED instead of
answering UNAVAILABLE); then one call tries again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from server.config import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_POOL_MAX,
    DEFAULT_POOL_MIN,
    DEFAULT_POOL_TIMEOUT,
)
from server.errors import (
    StoreBusyError,
    StoreCorruptError,
    StoreFullError,
    StoreUnavailableError,
)

__all__ = [
    "UNREACHABLE_RETRY",
    "Database",
    "conninfo",
    "is_unreachable",
    "map_error",
    "redact",
    "reraise",
]

logger = logging.getLogger("decide.server")

UNREACHABLE_RETRY = 1.0
"""Seconds after a call found the database unreachable during which calls fail at once."""

# libpq settings we add to a URL that does not set them itself: a name in
# pg_stat_activity, and TCP keepalives so a vanished server is noticed in about a
# minute rather than the kernel's two hours.
_DEFAULTS = {
    "application_name": "decide",
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
}

_UNAVAILABLE = frozenset({"57P01", "57P02", "57P03", "53300", "53000"})
_BUSY = frozenset({"40001", "40P01", "55P03", "57014"})
_FULL = frozenset({"53100"})
_CORRUPT = frozenset({"XX001", "XX002"})


def conninfo(url: str, *, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT) -> str:
    """``url`` with our defaults for the libpq settings it leaves out."""
    given = conninfo_to_dict(url)
    extra = {key: value for key, value in _DEFAULTS.items() if key not in given}
    if "connect_timeout" not in given:
        extra["connect_timeout"] = str(max(1, round(connect_timeout)))
    return make_conninfo(url, **extra)


def redact(url: str) -> str:
    """``postgresql://user@host:port/dbname``: where a database is, for messages (no
    password, no other settings)."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(unparseable URL)"
    user = str(parts.get("user") or "")
    host = parts.get("host") or parts.get("hostaddr") or "localhost"
    port = parts.get("port")
    where = f"{host}:{port}" if port else str(host)
    return f"postgresql://{user + '@' if user else ''}{where}/{parts.get('dbname') or ''}"


def is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached now (not that a statement failed)."""
    if isinstance(exc, (PoolTimeout, PoolClosed)):
        return True
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in _UNAVAILABLE


def map_error(exc: psycopg.Error, store: str, where: str) -> Exception:
    """The store error ``exc`` means, or ``exc`` itself when it is not a store fault."""
    state = exc.sqlstate or ""
    if is_unreachable(exc):
        return StoreUnavailableError(store, where, _unreachable_reason(exc))
    if state in _BUSY:
        return StoreBusyError(store)
    if state in _FULL:
        return StoreFullError(store, where)
    if state in _CORRUPT:
        return StoreCorruptError(store, where, str(exc).strip())
    return exc


def _unreachable_reason(exc: psycopg.Error) -> str:
    if isinstance(exc, PoolClosed):
        return "the store is closed"
    if isinstance(exc, PoolTimeout):
        return "no database connection became free in time (is the database up?)"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def reraise(exc: psycopg.Error, store: str, where: str) -> NoReturn:
    """Raise the store error ``exc`` means (chained from it), or ``exc`` itself."""
    mapped = map_error(exc, store, where)
    if mapped is exc:
        raise exc
    raise mapped from exc


class Database:
    """A bounded pool of connections to one database, shared by a decider's stores.

    ``where`` (the redacted URL) names the database in messages. ``open(wait=True)``
    waits until ``min_size`` connections are up (the server's start-up check) and
    raises StoreUnavailableError when they cannot be made.
    """

    def __init__(
        self,
        url: str,
        *,
        min_size: int = DEFAULT_POOL_MIN,
        max_size: int = DEFAULT_POOL_MAX,
        timeout: float = DEFAULT_POOL_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        name: str = "decide",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = conninfo(url, connect_timeout=connect_timeout)
        self.where = redact(url)
        self.timeout = timeout
        self._clock = clock
        self._retry_at = 0.0
        self._reason = "the database is unreachable"
        self._lock = threading.Lock()
        self.pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            self.url,
            min_size=min(min_size, max_size),
            max_size=max_size,
            timeout=timeout,
            kwargs={"autocommit": True},
            configure=_configure,
            check=ConnectionPool.check_connection,
            name=name,
            open=False,
        )

    def open(self, *, wait: bool = True, timeout: float | None = None) -> None:
        """Open the pool; with ``wait``, until its first connections are up."""
        try:
            self.pool.open(wait=wait, timeout=timeout or max(self.timeout, 5.0))
        except psycopg.Error as exc:
            self.pool.close()
            reraise(exc, "store", self.where)

    @contextmanager
    def connection(self, store: str = "store") -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection (autocommit) for the block; errors mapped."""
        self._fail_fast(store)
        try:
            with self.pool.connection() as conn:
                yield conn
        except psycopg.Error as exc:
            self._observe(exc)
            reraise(exc, store, self.where)
        else:
            self._retry_at = 0.0

    @contextmanager
    def transaction(self, store: str = "store") -> Iterator[psycopg.Connection[Any]]:
        """One transaction on a pooled connection, committed at the end of the block
        and rolled back on any exception; errors mapped."""
        with self.connection(store) as conn, conn.transaction():
            yield conn

    def close(self) -> None:
        """Close every connection. Idempotent."""
        self.pool.close()

    def _fail_fast(self, store: str) -> None:
        with self._lock:
            if self._retry_at and self._clock() < self._retry_at:
                # The cause the last attempt met, word for word: whoever logs "once per
                # distinct message" (the reloader) logs an outage once.
                raise StoreUnavailableError(store, self.where, self._reason)
            if self._retry_at:
                # This call is the one that tries again; the others keep failing fast.
                self._retry_at = self._clock() + UNREACHABLE_RETRY

    def _observe(self, exc: psycopg.Error) -> None:
        if is_unreachable(exc) and not isinstance(exc, PoolClosed):
            with self._lock:
                self._reason = _unreachable_reason(exc)
                if not self._retry_at:
                    logger.warning(
                        "the database %s is unreachable: %s",
                        self.where,
                        str(exc).strip().splitlines()[0] if str(exc).strip() else exc,
                        extra={"event": "database_unreachable", "database": self.where},
                    )
                self._retry_at = self._clock() + UNREACHABLE_RETRY


def _configure(conn: psycopg.Connection[Any]) -> None:
    """Session settings of every pooled connection: timestamps in UTC."""
    conn.execute(sql.SQL("SET TimeZone TO 'UTC'"))
