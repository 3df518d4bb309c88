"""The event and profile commands of ``decide``.

    decide track FILE.jsonl [--target ADDR] [--batch N]
    decide profile [show] VISITOR [--target ADDR] [--json]
    decide profile delete VISITOR [--target ADDR]
    decide profile export VISITOR [--target ADDR]
    decide profiles rebuild [--store STORE] [--profile-db PATH]

``track`` reads one event per line in the JSON event shape (``{"event_id",
"visitor_id", "type", "timestamp", "properties"}``; blank lines are skipped) and checks
the whole file with the server's own validation before sending anything, so a bad
line is reported with its line number and nothing is stored. Then it sends the events
in batches of ``--batch`` (each stored atomically); re-running after a failure is safe,
since events already stored count as duplicates. It needs the API key when the server
has keys; the profile commands need the admin token.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    CliError,
    Parser,
    add_target_arguments,
    client_errors,
    print_json,
    read_text,
    remote_for,
    usage,
)
from server.limits import MAX_EVENTS_PER_BATCH

DEFAULT_BATCH = 500
"""Events per Track call from ``decide track``."""

MAX_REPORTED_LINES = 50
"""Bad lines printed by ``decide track``; the count covers the rest."""

PROFILE_ACTIONS = ("show", "delete", "export")

_EVENT_INDEX = re.compile(r"events\[(\d+)\]")


def add_parsers(commands: Any) -> None:
    """Add ``track``, ``profile`` and ``profiles`` to the ``decide`` subcommands."""
    track = commands.add_parser("track", help="send behavioural events from a JSONL file")
    track.add_argument("file", metavar="FILE", help="one JSON event per line (- for stdin)")
    add_target_arguments(track, admin=False)
    track.add_argument(
        "--batch",
        type=int,
        default=DEFAULT_BATCH,
        metavar="N",
        help=f"events per call (default {DEFAULT_BATCH}, at most {MAX_EVENTS_PER_BATCH})",
    )
    track.set_defaults(handler=cmd_track)

    profile = commands.add_parser(
        "profile", help="show, export or delete a visitor's stored profile"
    )
    profile.add_argument("first", metavar="[show|delete|export]", help="the action (default: show)")
    profile.add_argument("visitor", nargs="?", metavar="VISITOR", help="the visitor id")
    add_target_arguments(profile, admin=True)
    profile.add_argument("--json", action="store_true", help="show: print the profile as JSON")
    profile.set_defaults(handler=cmd_profile)

    profiles = commands.add_parser("profiles", help="maintain the profile store")
    profiles_commands = profiles.add_subparsers(
        title="profiles commands", metavar="COMMAND", parser_class=Parser
    )
    profiles.set_defaults(handler=lambda _args: usage(profiles))
    rebuild = profiles_commands.add_parser(
        "rebuild", help="recompute every profile from the event log"
    )
    rebuild.add_argument(
        "--db",
        "--store",
        metavar="STORE",
        help="a SQLite file or a postgresql:// URL (default: DECIDE_STORE, DECIDE_DB_PATH)",
    )
    rebuild.add_argument(
        "--profile-db", metavar="PATH", help="profile store, when it has a file of its own"
    )
    rebuild.set_defaults(handler=cmd_profiles_rebuild)


# -- track --------------------------------------------------------------------------------


def cmd_track(args: argparse.Namespace) -> int:
    """Check a JSONL file of events, then send it in batches; print what was stored."""
    if not 1 <= args.batch <= MAX_EVENTS_PER_BATCH:
        raise CliError(f"--batch must be between 1 and {MAX_EVENTS_PER_BATCH}", EXIT_USAGE)
    name = args.file
    events, lines = read_events(name)
    if not events:
        print(f"{name}: no events")
        return EXIT_OK
    remote = remote_for(args, admin=False)
    accepted = duplicates = 0
    with remote.client() as client:
        for start in range(0, len(events), args.batch):
            batch = events[start : start + args.batch]
            batch_lines = lines[start : start + args.batch]
            try:
                with client_errors(remote):
                    result = _send(client, batch, batch_lines)
            except CliError as e:
                if not start:
                    raise
                raise CliError(
                    f"{e}; the lines before line {batch_lines[0]} were stored ({accepted} new,"
                    f" {duplicates} duplicates), and re-running the file is safe",
                    e.exit_code,
                ) from e
            accepted += result.accepted
            duplicates += result.duplicates
    print(f"{name}: {len(events)} events sent, {accepted} stored, {duplicates} duplicates")
    return EXIT_OK


def _send(client: Any, batch: list[dict[str, Any]], lines: list[int]) -> Any:
    """One Track call; the violations of a rejection name file lines, not events[I]."""
    from client import InvalidArgument

    try:
        return client.track(batch)
    except InvalidArgument as e:
        located = []
        for field, description in e.violations:
            line, rest = _locate(field, lines)
            where = field if line is None else f"line {line}" + (f": {rest}" if rest else "")
            located.append((where, description))
        e.violations = located
        raise


def read_events(name: str) -> tuple[list[dict[str, Any]], list[int]]:
    """The events of a JSONL file and the line number of each, validated as the server
    validates them; ``CliError`` after printing every bad line."""
    from decision import InvalidRequestError
    from decision.profile import validate_events

    text = read_text(name)
    events: list[dict[str, Any]] = []
    lines: list[int] = []
    problems: list[tuple[int, str]] = []
    for number, text_line in enumerate(text.splitlines(), start=1):
        if not text_line.strip():
            continue
        try:
            value = json.loads(text_line)
        except json.JSONDecodeError as e:
            problems.append((number, f"invalid JSON at column {e.colno}: {e.msg}"))
            continue
        if not isinstance(value, Mapping):
            problems.append((number, f"expected a JSON object, got {type(value).__name__}"))
            continue
        events.append(dict(value))
        lines.append(number)
    try:
        validate_events(events, datetime.now(UTC))
    except InvalidRequestError as e:
        for problem in e.problems:
            line, field = _locate(problem.path, lines)
            message = _EVENT_INDEX.sub(lambda m: f"line {lines[int(m[1])]}", problem.message)
            problems.append((line or 0, f"{field}: {message}" if field else message))
    if problems:
        problems.sort(key=lambda p: p[0])
        for number, message in problems[:MAX_REPORTED_LINES]:
            print(f"{name}:{number}: {message}", file=sys.stderr)
        if len(problems) > MAX_REPORTED_LINES:
            print(f"  ... and {len(problems) - MAX_REPORTED_LINES} more", file=sys.stderr)
        bad = len({number for number, _ in problems})
        noun = "line" if bad == 1 else "lines"
        raise CliError(f"{name}: {bad} bad {noun}; nothing was sent")
    return events, lines


def _locate(path: str, lines: Sequence[int]) -> tuple[int | None, str]:
    """``events[3].properties.price`` -> (the file line of event 3, ``properties.price``);
    ``(None, path)`` for a path that names no event."""
    match = _EVENT_INDEX.match(path)
    if match is None or int(match[1]) >= len(lines):
        return None, path
    return lines[int(match[1])], path[match.end() :].lstrip(".")


# -- profile ------------------------------------------------------------------------------


def cmd_profile(args: argparse.Namespace) -> int:
    """``profile [show] V``, ``profile delete V``, ``profile export V``."""
    if args.visitor is None:
        action, visitor = "show", args.first
    elif args.first in PROFILE_ACTIONS:
        action, visitor = args.first, args.visitor
    else:
        raise CliError(
            f"unknown action {args.first!r}: expected {', '.join(PROFILE_ACTIONS)}", EXIT_USAGE
        )
    remote = remote_for(args, admin=True)
    with remote.client() as client, client_errors(remote):
        if action == "delete":
            deleted = client.delete_visitor(visitor)
            if not deleted:
                print(f"nothing stored for visitor {visitor}")
            else:
                print(f"deleted visitor {visitor}: {deleted} stored records removed")
            return EXIT_OK
        if action == "export":
            print_json(client.export_visitor(visitor))
            return EXIT_OK
        profile = client.get_profile(visitor)
    if profile is None:
        raise CliError(f"no profile stored for visitor {visitor}", EXIT_ERROR)
    if args.json:
        print_json(profile)
    else:
        print(f"visitor {visitor}")
        rows = list(_flatten(profile))
        width = max(len(key) for key, _ in rows)
        for key, value in rows:
            print(f"  {key.ljust(width)}  {value}")
    return EXIT_OK


def _flatten(value: Mapping[str, Any], prefix: str = "") -> Any:
    """``(dotted.path, text)`` for every leaf; lists stay whole, as JSON. The kept
    activity (an internal layout: timestamps in microseconds) is one line of counts."""
    for key, item in value.items():
        path = f"{prefix}{key}"
        if path == "activity" and isinstance(item, Mapping):
            counts = [f"{kind} {len(kept.get('t') or ())}" for kind, kept in item.items()]
            yield "activity (events kept)", ", ".join(counts)
        elif isinstance(item, Mapping) and item:
            yield from _flatten(item, path + ".")
        elif isinstance(item, str):
            yield path, item
        else:
            yield path, json.dumps(item, ensure_ascii=False)


# -- profiles rebuild ---------------------------------------------------------------------


def cmd_profiles_rebuild(args: argparse.Namespace) -> int:
    """Recompute every profile from the event log, directly on the store file, keeping
    the activity the active rules read."""
    import sqlite3

    from server.config import ConfigError, ServerConfig
    from server.errors import StoreBusyError
    from server.profiles.sqlite import SQLiteProfileStore

    try:
        config = ServerConfig.from_env(
            store=args.db,
            profile_db_path=getattr(args, "profile_db", None),
            profile_cache_size=0,
        )
    except ConfigError as e:
        raise CliError(f"invalid configuration: {e}", EXIT_USAGE) from e
    if config.location.backend != "sqlite":
        return _rebuild_shared(config)
    path = config.profile_db_path or config.db_path
    for file in {config.db_path, path}:
        if not Path(file).is_file():
            raise CliError(f"{file}: no such store file")
    needs = _active_activity(config.db_path)
    try:
        with SQLiteProfileStore(path, cache_size=0, cache_ttl=0) as store:
            rebuilt = store.rebuild_all(needs=needs)
    except StoreBusyError as e:
        raise CliError(f"the store is busy: {e}", EXIT_UNAVAILABLE) from e
    except (OSError, sqlite3.Error) as e:
        raise CliError(f"cannot rebuild the profiles in {path}: {e}") from e
    print(f"rebuilt {rebuilt} profiles in {path}")
    return EXIT_OK


def _rebuild_shared(config: Any) -> int:
    """``profiles rebuild`` on a store shared by deciders (they may keep serving)."""
    from server.errors import StoreError
    from server.storage import open_storage

    try:
        storage = open_storage(config)
        try:
            rebuilt = storage.profiles.rebuild_all()  # type: ignore[attr-defined]
        finally:
            storage.close()
    except StoreError as e:
        raise CliError(f"cannot rebuild the profiles: {e}", EXIT_UNAVAILABLE) from e
    print(f"rebuilt {rebuilt} profiles in {storage.location}")
    return EXIT_OK


def _active_activity(rules_path: str) -> Any:
    """The activity declaration of the rules active in the store at ``rules_path``: what
    a server on it keeps (an empty store's server seeds the default document)."""
    import sqlite3

    import decision
    from server.errors import InvalidRulesError
    from server.rules.documents import compile_text
    from server.rules.sqlite import read_active

    try:
        with closing(
            sqlite3.connect(f"{Path(rules_path).resolve().as_uri()}?mode=ro", uri=True)
        ) as conn:
            active = read_active(conn)
    except sqlite3.OperationalError:
        active = None  # no rules tables yet
    if active is None:
        return decision.compile_ruleset(decision.default_document()).activity
    version, document = active
    try:
        return compile_text(document).activity
    except InvalidRulesError as e:
        raise CliError(
            f"the active rules (version {version}) in {rules_path} do not compile, so what"
            f" they keep is unknown; fix them first: {e}"
        ) from e
