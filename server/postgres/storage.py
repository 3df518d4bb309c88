"""The PostgreSQL storage: every decider on one database, sharing rules, profiles, exposures.

Opening it opens the decider's connection pool (``server.postgres.connections``) and
waits for its first connections, checks the schema version (a database migrated by
another version of decide, or never migrated, is refused with what to run:
``server.postgres.schema``), and seeds the default rules into an empty store. The
stores share the pool; the rules watcher adds one connection of its own for LISTEN.

Connections per decider: at most ``pg_pool_max`` (16) in the pool plus one listening;
``--processes N`` multiplies that by N. PostgreSQL's ``max_connections`` (100 by
default) bounds deciders times that, less what other clients need.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from server.analytics.exposures_postgres import PostgresExposureRecorder
from server.config import ServerConfig
from server.postgres.connections import Database
from server.postgres.schema import SCHEMA_VERSION, check_schema
from server.profiles.postgres import PostgresProfileStore
from server.profiles.store import ProfileStore
from server.rules.postgres import PostgresRulesStore, PostgresRulesWatcher
from server.rules.store import RulesStore, RulesWatcher

__all__ = ["PostgresStorage", "rules_only"]


class PostgresStorage:
    """A ``Storage`` in one PostgreSQL database (see the module docstring)."""

    backend = "PostgreSQL"

    def __init__(
        self,
        config: ServerConfig,
        *,
        metrics: Any = None,
        rules: RulesStore | None = None,
        profiles: ProfileStore | None = None,
        db: Database | None = None,
    ) -> None:
        self.db = db or Database(
            config.location.url,
            min_size=config.pg_pool_min,
            max_size=config.pg_pool_max,
            timeout=config.pg_pool_timeout,
            connect_timeout=config.pg_connect_timeout,
        )
        self._owned: list[Any] = []
        try:
            self.db.open(wait=True, timeout=max(config.pg_connect_timeout, 1.0))
            self._owned.append(self.db)
            with self.db.connection() as conn:
                check_schema(conn, self.db.where)
            if rules is None:
                rules = PostgresRulesStore(self.db)
                self._owned.insert(0, rules)
            self.exposures: PostgresExposureRecorder | None = None
            if profiles is None:
                profiles = PostgresProfileStore(
                    self.db,
                    cache_size=config.profile_cache_size,
                    cache_ttl=config.profile_cache_ttl,
                )
                self._owned.insert(0, profiles)
                self.exposures = PostgresExposureRecorder(
                    self.db, metrics=metrics, durable=config.exposures_durable
                )
                self._owned.insert(0, self.exposures)
        except BaseException:
            self.close()
            raise
        self.rules: RulesStore = rules
        self.profiles: ProfileStore = profiles

    @property
    def location(self) -> str:
        return self.db.where

    @property
    def scan_file(self) -> Path | None:
        return None  # reports on PostgreSQL: issue 11, part 2

    def watch_rules(self) -> RulesWatcher:
        return PostgresRulesWatcher(self.db)

    def check(self, *, full: bool = False) -> list[str]:
        with self.db.connection() as conn:
            check_schema(conn, self.db.where)
            (version,) = conn.execute("SHOW server_version").fetchone() or ("?",)
        return [f"{self.db.where}: PostgreSQL {version}, schema version {SCHEMA_VERSION}: ok"]

    def close(self) -> None:
        owned, self._owned = self._owned, []
        for thing in owned:
            thing.close()


@contextmanager
def rules_only(config: ServerConfig) -> Iterator[PostgresRulesStore]:
    """The rules store alone, on a pool of at most two connections (the CLI's
    ``decide rules ... --store postgresql://...``); the schema is checked first."""
    db = Database(
        config.location.url,
        min_size=1,
        max_size=2,
        timeout=config.pg_pool_timeout,
        connect_timeout=config.pg_connect_timeout,
        name="decide-cli",
    )
    db.open(wait=True, timeout=max(config.pg_connect_timeout, 1.0))
    try:
        with db.connection() as conn:
            check_schema(conn, db.where)
        yield PostgresRulesStore(db)
    finally:
        db.close()
