"""``decide store``: prepare a store (``migrate``) and check it for damage (``check``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cli.common import EXIT_ERROR, EXIT_OK, EXIT_USAGE, CliError, Parser, usage

STORE_HELP = (
    "a SQLite file (PATH or sqlite:///PATH) or a postgresql://USER@HOST:PORT/DB URL"
    " (default: DECIDE_STORE, else DECIDE_DB_PATH)"
)


def add_parsers(commands: Any) -> None:
    """Add ``store`` and its subcommands to the ``decide`` subcommands."""
    store = commands.add_parser("store", help="prepare and check the store")
    store_commands = store.add_subparsers(
        title="store commands", metavar="COMMAND", parser_class=Parser
    )
    store.set_defaults(handler=lambda _args: usage(store))
    migrate = store_commands.add_parser(
        "migrate",
        help="bring the store's schema to this version (PostgreSQL: apply migrations)",
    )
    migrate.add_argument("--store", metavar="STORE", help=STORE_HELP)
    migrate.add_argument("--db", metavar="PATH", help="a SQLite store (as --store)")
    migrate.set_defaults(handler=cmd_store_migrate)
    check = store_commands.add_parser(
        "check",
        help="check the store: every page of SQLite files (integrity_check); a PostgreSQL"
        " database's reachability and schema version",
    )
    check.add_argument("--store", metavar="STORE", help=STORE_HELP)
    check.add_argument("--db", metavar="PATH", help="rules store (default: DECIDE_DB_PATH)")
    check.add_argument(
        "--profile-db", metavar="PATH", help="profile store, when it has a file of its own"
    )
    check.set_defaults(handler=cmd_store_check)


def _config(args: argparse.Namespace, **extra: Any) -> Any:
    from server.config import ConfigError, ServerConfig

    try:
        return ServerConfig.from_env(store=args.store, db_path=args.db, **extra)
    except ConfigError as e:
        raise CliError(f"invalid configuration: {e}", EXIT_USAGE) from e


def cmd_store_migrate(args: argparse.Namespace) -> int:
    """PostgreSQL: apply the schema migrations the database lacks. SQLite creates its
    tables when a store is opened: this opens it, which creates them."""
    from server.errors import StoreError

    config = _config(args)
    try:
        if config.location.backend == "sqlite":
            from server.storage import open_storage

            open_storage(config).close()
            print(f"sqlite store {config.db_path}: ready")
            return EXIT_OK
        from server.postgres.connections import Database
        from server.postgres.schema import migrate

        db = Database(config.location.url, min_size=1, max_size=1, name="decide-migrate")
        db.open(wait=True, timeout=max(config.pg_connect_timeout, 1.0))
        try:
            with db.connection() as conn:
                before, after = migrate(conn, db.where)
        finally:
            db.close()
    except StoreError as e:
        raise CliError(str(e)) from e
    if before == after:
        print(f"{db.where}: schema version {after}, nothing to migrate")
    else:
        print(f"{db.where}: migrated schema version {before} -> {after}")
    return EXIT_OK


def cmd_store_check(args: argparse.Namespace) -> int:
    """Check each SQLite file whole, or the database's schema; print ``ok`` or the
    problem; exit 1 when damaged or not usable."""
    from server.errors import StoreError

    config = _config(args, profile_db_path=getattr(args, "profile_db", None))
    if config.location.backend != "sqlite":
        from server.postgres.connections import Database
        from server.postgres.schema import SCHEMA_VERSION, check_schema

        db = Database(config.location.url, min_size=1, max_size=1, name="decide-check")
        try:
            db.open(wait=True, timeout=max(config.pg_connect_timeout, 1.0))
            with db.connection() as conn:
                check_schema(conn, db.where)
        except StoreError as e:
            print(e)
            return EXIT_ERROR
        finally:
            db.close()
        print(f"{db.where}: schema version {SCHEMA_VERSION}: ok")
        return EXIT_OK
    from server.sqlite import check_file

    files = [("rules store", config.db_path)]
    if config.profile_db_path:
        files.append(("profile store", config.profile_db_path))
    damaged = 0
    for store, path in files:
        if not Path(path).is_file():
            raise CliError(f"{path}: no such file")
        try:
            check_file(path, store, full=True)
        except StoreError as e:
            print(f"{store} {path}: {e}")
            damaged += 1
        else:
            print(f"{store} {path}: ok")
    return EXIT_ERROR if damaged else EXIT_OK
