"""``decide rules``: validate, publish, export, list and roll back rules, on a store or a server."""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from typing import Any

from cli.common import (
    EXIT_OK,
    CliError,
    Parser,
    Remote,
    add_store_arguments,
    author,
    client_errors,
    open_store,
    print_json,
    print_table,
    read_document,
    read_text,
    short_time,
    store_errors,
    store_or_target,
    usage,
    version_dict,
)


def add_parsers(commands: Any) -> None:
    """Add ``rules`` and its subcommands to the ``decide`` subcommands."""
    rules = commands.add_parser("rules", help="validate, publish and inspect rules")
    rules_commands = rules.add_subparsers(
        title="rules commands", metavar="COMMAND", parser_class=Parser
    )
    rules.set_defaults(handler=lambda _args: usage(rules))

    validate = rules_commands.add_parser("validate", help="check a rules file locally")
    validate.add_argument("file", metavar="FILE", help="rules document (JSON; - for stdin)")
    validate.set_defaults(handler=cmd_rules_validate)

    apply = rules_commands.add_parser("apply", help="publish a rules file as the new version")
    apply.add_argument("file", metavar="FILE", help="rules document (JSON; - for stdin)")
    add_store_arguments(apply)
    apply.add_argument("--expected-version", type=int, metavar="N", help="fail if not active")
    apply.add_argument("--comment", default="", metavar="C", help="why; kept in the history")
    apply.set_defaults(handler=cmd_rules_apply)

    export = rules_commands.add_parser("export", help="print a version's rules document")
    export.add_argument("--version", type=int, metavar="N", help="default: the active version")
    add_store_arguments(export)
    export.set_defaults(handler=cmd_rules_export)

    history = rules_commands.add_parser("history", help="list stored versions, newest first")
    history.add_argument("--limit", type=int, default=50, metavar="N")
    history.add_argument("--json", action="store_true", help="print JSON")
    add_store_arguments(history)
    history.set_defaults(handler=cmd_rules_history)

    rollback = rules_commands.add_parser("rollback", help="make an earlier version active")
    rollback.add_argument("version", type=int, metavar="VERSION")
    add_store_arguments(rollback)
    rollback.add_argument("--expected-version", type=int, metavar="N", help="fail if not active")
    rollback.add_argument("--comment", default="", metavar="C", help="why; kept in the history")
    rollback.set_defaults(handler=cmd_rules_rollback)

    schema = rules_commands.add_parser("schema", help="print the rules JSON Schema")
    schema.set_defaults(handler=cmd_rules_schema)


def cmd_rules_validate(args: argparse.Namespace) -> int:
    """Print every problem with its path; exit 1 when there are any.

    Uses the server's own check (``server.rules.documents.validate_text``: strict JSON, then
    the engine's validation), so a file that passes here publishes.
    """
    from server.rules.documents import validate_text

    text = read_text(args.file)
    problems, content_hash = validate_text(text)
    if not problems:
        print(f"{args.file}: valid (content hash {content_hash})")
        return EXIT_OK
    for problem in problems:
        where = f"{args.file}: {problem.path}" if problem.path else args.file
        print(f"{where}: {problem.message}", file=sys.stderr)
    noun = "problem" if len(problems) == 1 else "problems"
    raise CliError(f"{args.file}: invalid rules document ({len(problems)} {noun})")


def cmd_rules_apply(args: argparse.Namespace) -> int:
    """Publish a rules file, directly into a store or through a server."""
    text = read_document(args.file)
    where = store_or_target(args)
    if isinstance(where, Remote):
        with where.client() as client, client_errors(where):
            version = version_dict(
                client.publish_rules(
                    text, expected_version=args.expected_version, comment=args.comment
                )
            )
    else:
        with store_errors(), open_store(where.path, create=True) as store:
            version = version_dict(
                store.publish(
                    text,
                    expected_version=args.expected_version,
                    comment=args.comment,
                    author=author(),
                )
            )
    print(f"published version {version['version']} ({version['content_hash']})")
    return EXIT_OK


def cmd_rules_export(args: argparse.Namespace) -> int:
    """Print a version's document exactly as it was published."""
    where = store_or_target(args)
    if isinstance(where, Remote):
        with where.client() as client, client_errors(where):
            text = client.get_rules(args.version).document_json
    else:
        with store_errors(), open_store(where.path) as store:
            _info, text = store.get(args.version)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return EXIT_OK


def cmd_rules_history(args: argparse.Namespace) -> int:
    """List stored versions, newest first, marking the active one."""
    where = store_or_target(args)
    if isinstance(where, Remote):
        with where.client() as client, client_errors(where):
            versions = [version_dict(v) for v in client.list_versions(args.limit).versions]
    else:
        with store_errors(), open_store(where.path) as store:
            versions = [version_dict(v) for v in store.list_versions(limit=args.limit)]
    if args.json:
        print_json(versions)
        return EXIT_OK
    if not versions:
        print("no versions stored")
        return EXIT_OK
    rows = [
        [
            ("* " if v["active"] else "  ") + str(v["version"]),
            short_time(v["created_at"]),
            str(v["content_hash"])[:12],
            str(v["author"] or ""),
            (f"(rollback to {v['restored_from']}) " if v["restored_from"] else "")
            + str(v["comment"] or ""),
        ]
        for v in versions
    ]
    print_table(["  VERSION", "CREATED", "HASH", "AUTHOR", "COMMENT"], rows)
    return EXIT_OK


def cmd_rules_rollback(args: argparse.Namespace) -> int:
    """Make an earlier version's document active again, as a new version."""
    where = store_or_target(args)
    if isinstance(where, Remote):
        with where.client() as client, client_errors(where):
            version = version_dict(
                client.rollback(
                    args.version, comment=args.comment, expected_version=args.expected_version
                )
            )
    else:
        with store_errors(), open_store(where.path) as store:
            version = version_dict(
                store.rollback(
                    args.version,
                    comment=args.comment,
                    expected_version=args.expected_version,
                    author=author(),
                )
            )
    print(f"rolled back to version {args.version}: now version {version['version']}")
    return EXIT_OK


def cmd_rules_schema(args: argparse.Namespace) -> int:
    """Print the JSON Schema of rules documents (for editors and CI checks)."""
    schema = resources.files("decision") / "rules.schema.json"
    try:
        text = schema.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise CliError("the rules schema (decision/rules.schema.json) is not installed") from e
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return EXIT_OK
