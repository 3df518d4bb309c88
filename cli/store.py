"""``decide store``: check a store's files for damage."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cli.common import EXIT_ERROR, EXIT_OK, CliError, Parser, usage


def add_parsers(commands: Any) -> None:
    """Add ``store`` and its subcommands to the ``decide`` subcommands."""
    store = commands.add_parser("store", help="check the store")
    store_commands = store.add_subparsers(
        title="store commands", metavar="COMMAND", parser_class=Parser
    )
    store.set_defaults(handler=lambda _args: usage(store))
    check = store_commands.add_parser(
        "check", help="check every page of the store's files (SQLite integrity_check)"
    )
    check.add_argument("--db", metavar="PATH", help="rules store (default: DECIDE_DB_PATH)")
    check.add_argument(
        "--profile-db", metavar="PATH", help="profile store, when it has a file of its own"
    )
    check.set_defaults(handler=cmd_store_check)


def cmd_store_check(args: argparse.Namespace) -> int:
    """Check each file whole; print ``ok`` or the first problems; exit 1 when damaged."""
    from server.config import ConfigError, ServerConfig
    from server.errors import StoreError
    from server.sqlite import check_file

    try:
        config = ServerConfig.from_env(
            db_path=args.db, profile_db_path=getattr(args, "profile_db", None)
        )
    except ConfigError as e:
        raise CliError(f"invalid configuration: {e}") from e
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
