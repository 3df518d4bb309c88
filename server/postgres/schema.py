"""Versioned schema migrations of the PostgreSQL store, and the check a server runs at start.

``decide store migrate --store URL`` applies every migration the database has not had,
in order, each in its own transaction, under an advisory lock (two migrators never
interleave). ``decide_schema`` records one row per applied migration. A server checks
the version at start and refuses a database whose schema is older or newer than the
one it knows (``StoreSchemaError``, naming both versions and what to run), so a
decider never writes rows another version of decide would misread.

Text columns that hold ids and timestamps are ``COLLATE "C"``: byte order, which for
UTF-8 is code point order, the order Python sorts strings in. The analytics code
merges rows sorted by the database with rows it sorts itself, and timestamps are the
fixed-width ISO-8601 text of ``decision.profile.format_timestamp`` (as in the SQLite
store), which sorts chronologically only byte by byte: a database created with a
natural-language collation would otherwise sort them its own way.

Events and profiles keep their JSON as ``text``, not ``jsonb``: jsonb reorders keys and
drops duplicates, and key order is part of a profile (MongoDB equality of embedded
documents is order-sensitive), so a profile rebuilt from jsonb could differ from the
one folded from the events as sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from server.errors import StoreSchemaError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Migration", "check_schema", "migrate", "schema_version"]

_LOCK = (0x0DEC1DE, 1)
"""Advisory lock key held while migrating (decide's class id, object 1)."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One step of the schema: ``version`` is the schema version once it is applied."""

    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "rules versions, the event log, aliases, profiles and exposures",
        (
            """CREATE TABLE rules_versions (
                version integer PRIMARY KEY,
                document text NOT NULL,
                content_hash text NOT NULL,
                created_at timestamptz NOT NULL,
                comment text NOT NULL DEFAULT '',
                author text NOT NULL DEFAULT '',
                restored_from integer REFERENCES rules_versions (version))""",
            """CREATE TABLE rules_active (
                id integer PRIMARY KEY CHECK (id = 1),
                version integer NOT NULL REFERENCES rules_versions (version),
                updated_at timestamptz NOT NULL)""",
            """CREATE TABLE events (
                seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                event_id text COLLATE "C" NOT NULL UNIQUE,
                visitor_id text COLLATE "C" NOT NULL,
                source_id text COLLATE "C" NOT NULL,
                type text COLLATE "C" NOT NULL,
                ts text COLLATE "C" NOT NULL,
                properties text NOT NULL)""",
            "CREATE INDEX events_by_visitor ON events (visitor_id, ts, event_id)",
            # DeleteVisitor also removes the events sent with an id (source_id).
            "CREATE INDEX events_by_source ON events (source_id)",
            """CREATE TABLE aliases (
                alias text COLLATE "C" PRIMARY KEY,
                canonical text COLLATE "C" NOT NULL)""",
            "CREATE INDEX aliases_by_canonical ON aliases (canonical)",
            """CREATE TABLE profiles (
                visitor_id text COLLATE "C" PRIMARY KEY,
                document text NOT NULL,
                state text NOT NULL)""",
            """CREATE TABLE exposures (
                seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                decision_id text COLLATE "C" NOT NULL,
                visitor_id text COLLATE "C" NOT NULL,
                source_id text COLLATE "C" NOT NULL,
                campaign text COLLATE "C" NOT NULL,
                variant text COLLATE "C" NOT NULL,
                segments text NOT NULL,
                placement text COLLATE "C" NOT NULL,
                ts text COLLATE "C" NOT NULL)""",
            "CREATE INDEX exposures_by_campaign ON exposures (campaign, ts)",
            "CREATE INDEX exposures_ts ON exposures (ts)",
            "CREATE INDEX exposures_by_visitor ON exposures (visitor_id)",
        ),
    ),
    Migration(
        2,
        "profiles.activity_key: which activity declarations a stored state covers",
        (
            'ALTER TABLE profiles ADD COLUMN activity_key text COLLATE "C"',
            "CREATE INDEX profiles_by_activity_key ON profiles (activity_key, visitor_id)",
        ),
    ),
    Migration(
        3,
        "exposures.channel and send_id: web decisions and tagged batch sends (email)",
        (
            """ALTER TABLE exposures ADD COLUMN channel text COLLATE "C" NOT NULL
                DEFAULT 'web'""",
            "ALTER TABLE exposures ADD COLUMN send_id text NOT NULL DEFAULT ''",
        ),
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1].version
"""The schema version this code reads and writes."""

_CREATE_SCHEMA_TABLE = """CREATE TABLE IF NOT EXISTS decide_schema (
    version integer PRIMARY KEY,
    description text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now())"""


def schema_version(conn: psycopg.Connection[Any]) -> int:
    """The database's schema version; 0 when decide has never migrated it."""
    (table,) = conn.execute("SELECT to_regclass('decide_schema')").fetchone() or (None,)
    if table is None:
        return 0
    row = conn.execute("SELECT coalesce(max(version), 0) FROM decide_schema").fetchone()
    return int(row[0]) if row else 0


def check_schema(conn: psycopg.Connection[Any], where: str) -> None:
    """Raise ``StoreSchemaError`` unless the database is at ``SCHEMA_VERSION``."""
    found = schema_version(conn)
    if found != SCHEMA_VERSION:
        raise StoreSchemaError(where, found, SCHEMA_VERSION)


def migrate(conn: psycopg.Connection[Any], where: str) -> tuple[int, int]:
    """Apply the migrations ``conn``'s database lacks; ``(version before, after)``.

    ``conn`` must be in autocommit (each migration is its own transaction). A database
    newer than this code is refused (``StoreSchemaError``) and left as it is.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", _LOCK)
        conn.execute(_CREATE_SCHEMA_TABLE)
    before = current = schema_version(conn)
    if current > SCHEMA_VERSION:
        raise StoreSchemaError(where, current, SCHEMA_VERSION)
    for migration in MIGRATIONS:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", _LOCK)
            current = schema_version(conn)  # another migrator may have applied it meanwhile
            if migration.version <= current:
                continue
            for statement in migration.statements:
                conn.execute(statement)  # constants of this module, never input
            conn.execute(
                "INSERT INTO decide_schema (version, description) VALUES (%s, %s)",
                (migration.version, migration.description),
            )
    return before, schema_version(conn)
