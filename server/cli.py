"""The ``decide`` command: run a server, manage rules, query decisions.

    decide serve [--demo] [--db PATH] [--port N] [--processes N] [--admin-token T] [--api-key K]
    decide rules validate FILE
    decide rules apply FILE [--db PATH | --target ADDR] [--expected-version N] [--comment C]
    decide rules export [--version N] [--db PATH | --target ADDR]
    decide rules history [--limit N] [--db PATH | --target ADDR] [--json]
    decide rules rollback VERSION [--db PATH | --target ADDR] [--expected-version N]
    decide rules schema
    decide query --target ADDR --visitor V --placement P [...] [--context k=v ...] [--json]
    decide status --target ADDR [--json]
    decide loadtest [--target ADDR] [--concurrency N | --rate R] [--baseline] [--json]
    decide track FILE.jsonl [--target ADDR] [--batch N]
    decide profile [show|delete|export] VISITOR [--target ADDR] [--json]
    decide profiles rebuild [--db PATH]
    decide insights campaign|segments|estimate|export ... [--target ADDR] [--json]
    decide report --out report.html [--target ADDR] [--campaign C ...] [--demo-data]

Rules commands work on a store file directly (``--db``) or through a running server's
RulesAdmin service (``--target``, with ``--admin-token`` or DECIDE_ADMIN_TOKEN). The
event and profile commands live in ``server.cli_profiles``, the insights and report
commands in ``server.cli_insights``. User
errors print one line on stderr and exit non-zero (see the ``EXIT_*`` constants); they
never print a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn, TextIO

PROG = "decide"

EXIT_OK = 0
EXIT_ERROR = 1
"""Invalid input: a missing or unreadable file, bad JSON, invalid rules, unknown version."""
EXIT_USAGE = 2
"""Bad command-line arguments or configuration (argparse uses 2 as well)."""
EXIT_UNAVAILABLE = 3
"""The server could not be reached, or did not answer in time."""
EXIT_CONFLICT = 4
"""``--expected-version`` is no longer the active version: re-read and try again."""
EXIT_AUTH = 5
"""The server refused the credentials (admin token or api key)."""

ENV_TARGET = "DECIDE_TARGET"
ENV_ADMIN_TOKEN = "DECIDE_ADMIN_TOKEN"
ENV_API_KEY = "DECIDE_API_KEY"

DEFAULT_CLI_TIMEOUT = 5.0
"""Seconds a CLI call may take: generous, since a person (not a page render) waits."""


class CliError(Exception):
    """A user error: printed as one line on stderr, exiting with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# -- entry point --------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return handler(args)
    except CliError as e:
        _error(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        return 130


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


class _Parser(argparse.ArgumentParser):
    """argparse, but with exit code EXIT_USAGE spelled out for readers of this module."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``decide`` argument parser with every subcommand."""
    parser = _Parser(prog=PROG, description="Personalization decisioning over gRPC.")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=_Parser)

    serve = commands.add_parser("serve", help="run the gRPC server")
    serve.add_argument("--db", dest="db_path", metavar="PATH", help="rules store (SQLite file)")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 50051; 0: any)")
    serve.add_argument(
        "--demo", action="store_true", default=None, help="seed an empty store with demo rules"
    )
    serve.add_argument("--admin-token", metavar="T", help="bearer token for RulesAdmin calls")
    serve.add_argument(
        "--api-key",
        dest="api_keys",
        action="append",
        metavar="K",
        help="require this x-api-key on decision calls (repeatable)",
    )
    serve.add_argument("--metrics-port", type=int, metavar="N", help="Prometheus port")
    serve.add_argument("--tls-cert", metavar="FILE", help="PEM certificate chain")
    serve.add_argument("--tls-key", metavar="FILE", help="PEM private key")
    serve.add_argument(
        "--log-json", action="store_true", default=None, help="log one JSON object per line"
    )
    serve.add_argument("--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING, ERROR")
    serve.add_argument(
        "--processes",
        type=int,
        metavar="N",
        help="server processes sharing the port (SO_REUSEPORT, Linux; default 1)",
    )
    serve.set_defaults(handler=cmd_serve)

    rules = commands.add_parser("rules", help="validate, publish and inspect rules")
    rules_commands = rules.add_subparsers(
        title="rules commands", metavar="COMMAND", parser_class=_Parser
    )
    rules.set_defaults(handler=lambda _args: _usage(rules))

    validate = rules_commands.add_parser("validate", help="check a rules file locally")
    validate.add_argument("file", metavar="FILE", help="rules document (JSON; - for stdin)")
    validate.set_defaults(handler=cmd_rules_validate)

    apply = rules_commands.add_parser("apply", help="publish a rules file as the new version")
    apply.add_argument("file", metavar="FILE", help="rules document (JSON; - for stdin)")
    _add_store_arguments(apply)
    apply.add_argument("--expected-version", type=int, metavar="N", help="fail if not active")
    apply.add_argument("--comment", default="", metavar="C", help="why; kept in the history")
    apply.set_defaults(handler=cmd_rules_apply)

    export = rules_commands.add_parser("export", help="print a version's rules document")
    export.add_argument("--version", type=int, metavar="N", help="default: the active version")
    _add_store_arguments(export)
    export.set_defaults(handler=cmd_rules_export)

    history = rules_commands.add_parser("history", help="list stored versions, newest first")
    history.add_argument("--limit", type=int, default=50, metavar="N")
    history.add_argument("--json", action="store_true", help="print JSON")
    _add_store_arguments(history)
    history.set_defaults(handler=cmd_rules_history)

    rollback = rules_commands.add_parser("rollback", help="make an earlier version active")
    rollback.add_argument("version", type=int, metavar="VERSION")
    _add_store_arguments(rollback)
    rollback.add_argument("--expected-version", type=int, metavar="N", help="fail if not active")
    rollback.add_argument("--comment", default="", metavar="C", help="why; kept in the history")
    rollback.set_defaults(handler=cmd_rules_rollback)

    schema = rules_commands.add_parser("schema", help="print the rules JSON Schema")
    schema.set_defaults(handler=cmd_rules_schema)

    query = commands.add_parser("query", help="ask a running server for decisions")
    _add_target_arguments(query, admin=False)
    query.add_argument("--visitor", required=True, metavar="V", help="visitor id")
    query.add_argument(
        "--placement",
        dest="placements",
        action="append",
        required=True,
        metavar="P",
        help="placement id (repeatable)",
    )
    query.add_argument(
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="request context entry; VALUE is JSON when it parses, else a string; "
        "dotted keys nest (repeatable)",
    )
    query.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="profile override, parsed like --context (repeatable)",
    )
    query.add_argument("--explain", action="store_true", help="show why each campaign won or not")
    query.add_argument(
        "--record",
        action="store_true",
        help="record exposures as a storefront's call would (default: a preview, not counted)",
    )
    query.add_argument("--json", action="store_true", help="print one JSON document")
    query.set_defaults(handler=cmd_query)

    status = commands.add_parser("status", help="show what a running server is serving")
    _add_target_arguments(status, admin=True)
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=cmd_status)

    from server import cli_profiles  # imports this module: load it once this one is

    cli_profiles.add_parsers(commands)

    from server import cli_insights

    cli_insights.add_parsers(commands)

    from loadtest import cli as loadtest_cli  # argparse only; the run imports the rest

    loadtest_cli.add_parser(commands)
    return parser


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _add_target_arguments(parser: argparse.ArgumentParser, *, admin: bool) -> None:
    parser.add_argument(
        "--target", metavar="ADDR", help=f"server address host:port (or {ENV_TARGET})"
    )
    if admin:
        parser.add_argument("--admin-token", metavar="T", help=f"or {ENV_ADMIN_TOKEN}")
    else:
        parser.add_argument("--api-key", metavar="K", help=f"or {ENV_API_KEY}")
    parser.add_argument("--tls-ca", metavar="FILE", help="use TLS, trusting these PEM roots")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_CLI_TIMEOUT,
        metavar="SECONDS",
        help=f"deadline per call (default {DEFAULT_CLI_TIMEOUT:g})",
    )


def _add_store_arguments(parser: argparse.ArgumentParser) -> None:
    """``--db PATH | --target ADDR``; with neither, DECIDE_TARGET, else the configured db."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--db", metavar="PATH", help="work on this store file directly")
    where.add_argument(
        "--target", metavar="ADDR", help=f"go through a running server (or {ENV_TARGET})"
    )
    parser.add_argument("--admin-token", metavar="T", help=f"with --target; or {ENV_ADMIN_TOKEN}")
    parser.add_argument("--tls-ca", metavar="FILE", help="with --target: TLS with these roots")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_CLI_TIMEOUT,
        metavar="SECONDS",
        help=f"with --target: deadline per call (default {DEFAULT_CLI_TIMEOUT:g})",
    )


# -- serve --------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    """Build the config (arguments over DECIDE_* variables over defaults) and serve."""
    from server.app import serve
    from server.config import ConfigError, ServerConfig

    overrides = {
        name: getattr(args, name)
        for name in (
            "db_path",
            "host",
            "port",
            "demo",
            "admin_token",
            "api_keys",
            "metrics_port",
            "tls_cert",
            "tls_key",
            "log_json",
            "log_level",
            "processes",
        )
    }
    try:
        config = ServerConfig.from_env(**overrides)
    except ConfigError as e:
        raise CliError(f"invalid configuration: {e}", EXIT_USAGE) from e
    for path in (config.tls_cert, config.tls_key):
        if path is not None and not Path(path).is_file():
            raise CliError(f"{path}: no such file", EXIT_USAGE)
    return serve(config)


# -- rules --------------------------------------------------------------------------------


def cmd_rules_validate(args: argparse.Namespace) -> int:
    """Print every problem with its path; exit 1 when there are any.

    Uses the server's own check (``server.documents.validate_text``: strict JSON, then
    the engine's validation), so a file that passes here publishes.
    """
    from server.documents import validate_text

    text = _read_text(args.file)
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
    text = _read_document(args.file)
    where = _store_or_target(args)
    if isinstance(where, _Remote):
        with where.client() as client, _client_errors(where):
            version = _version_dict(
                client.publish_rules(
                    text, expected_version=args.expected_version, comment=args.comment
                )
            )
    else:
        with _store_errors(), _open_store(where.path, create=True) as store:
            version = _version_dict(
                store.publish(
                    text,
                    expected_version=args.expected_version,
                    comment=args.comment,
                    author=_author(),
                )
            )
    print(f"published version {version['version']} ({version['content_hash']})")
    return EXIT_OK


def cmd_rules_export(args: argparse.Namespace) -> int:
    """Print a version's document exactly as it was published."""
    where = _store_or_target(args)
    if isinstance(where, _Remote):
        with where.client() as client, _client_errors(where):
            text = client.get_rules(args.version).document_json
    else:
        with _store_errors(), _open_store(where.path) as store:
            _info, text = store.get(args.version)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return EXIT_OK


def cmd_rules_history(args: argparse.Namespace) -> int:
    """List stored versions, newest first, marking the active one."""
    where = _store_or_target(args)
    if isinstance(where, _Remote):
        with where.client() as client, _client_errors(where):
            versions = [_version_dict(v) for v in client.list_versions(args.limit).versions]
    else:
        with _store_errors(), _open_store(where.path) as store:
            versions = [_version_dict(v) for v in store.list_versions(limit=args.limit)]
    if args.json:
        _print_json(versions)
        return EXIT_OK
    if not versions:
        print("no versions stored")
        return EXIT_OK
    rows = [
        [
            ("* " if v["active"] else "  ") + str(v["version"]),
            _short_time(v["created_at"]),
            str(v["content_hash"])[:12],
            str(v["author"] or ""),
            (f"(rollback to {v['restored_from']}) " if v["restored_from"] else "")
            + str(v["comment"] or ""),
        ]
        for v in versions
    ]
    _print_table(["  VERSION", "CREATED", "HASH", "AUTHOR", "COMMENT"], rows)
    return EXIT_OK


def cmd_rules_rollback(args: argparse.Namespace) -> int:
    """Make an earlier version's document active again, as a new version."""
    where = _store_or_target(args)
    if isinstance(where, _Remote):
        with where.client() as client, _client_errors(where):
            version = _version_dict(
                client.rollback(
                    args.version, comment=args.comment, expected_version=args.expected_version
                )
            )
    else:
        with _store_errors(), _open_store(where.path) as store:
            version = _version_dict(
                store.rollback(
                    args.version,
                    comment=args.comment,
                    expected_version=args.expected_version,
                    author=_author(),
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


# -- query and status ---------------------------------------------------------------------


def cmd_query(args: argparse.Namespace) -> int:
    """Ask a server for decisions and print them as text or one JSON document."""
    context = parse_assignments(args.context, "--context")
    profile = parse_assignments(args.profile, "--profile") if args.profile else None
    remote = _remote(args, admin=False)
    with remote.client() as client, _client_errors(remote):
        result = client.decide(
            args.visitor,
            args.placements,
            context,
            explain=args.explain,
            profile_overrides=profile,
            preview=not args.record,
        )
    if args.json:
        _print_json(_jsonable(result))
        return EXIT_OK
    print(
        f"visitor {args.visitor}: ruleset version {result.ruleset_version} "
        f"({result.ruleset_hash[:12]})"
    )
    for decision in result.decisions:
        print()
        print(f"{decision.placement}: {decision.reason}")
        if decision.campaign_id:
            variant = decision.variant_id or "-"
            control = " (control)" if decision.control else ""
            print(f"  campaign  {decision.campaign_id}  variant {variant}{control}")
        if decision.matched_segments:
            print(f"  segments  {', '.join(decision.matched_segments)}")
        print(f"  content   {json.dumps(decision.content, ensure_ascii=False)}")
        if decision.decision_id:
            print(f"  decision  {decision.decision_id}")
        if decision.explanation is not None:
            print("  explanation:")
            for trace in decision.explanation:
                bucket = f" bucket={trace.bucket}" if trace.bucket is not None else ""
                detail = f"  {trace.detail}" if trace.detail else ""
                print(f"    {trace.campaign_id}: {trace.outcome}{bucket}{detail}")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    """Print what a server is serving, and its last reload problem."""
    remote = _remote(args, admin=True)
    with remote.client() as client, _client_errors(remote):
        status = client.status()
    if args.json:
        _print_json(_jsonable(status))
        return EXIT_OK
    print(f"server          {remote.target} (version {status.server_version or '?'})")
    print(f"serving         version {status.active_version} ({status.content_hash[:12]})")
    print(f"loaded at       {_short_time(status.loaded_at)}")
    print(f"store version   {status.store_version}")
    print(f"reloads         {status.reload_count} ok, {status.reload_error_count} failed")
    if status.last_reload_error:
        print(
            f"last error      {_short_time(status.last_reload_error_at)}: "
            f"{status.last_reload_error}"
        )
    return EXIT_OK


def parse_assignments(items: Sequence[str], option: str) -> dict[str, Any]:
    """``["visits=3", "page.type=home"]`` to ``{"visits": 3, "page": {"type": "home"}}``.

    A value is JSON when it parses as JSON (``3``, ``true``, ``["a"]``, ``"3"``), else
    the string as typed; dotted keys build nested objects.
    """
    result: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        parts = key.split(".")
        if not sep or not all(parts):
            raise CliError(f"{option} {item!r}: expected KEY=VALUE", EXIT_USAGE)
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        node = result
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                prefix = ".".join(parts[: depth + 1])
                raise CliError(f"{option} {item!r}: {prefix} is already a value", EXIT_USAGE)
            node = child
        if isinstance(node.get(parts[-1]), dict):
            raise CliError(f"{option} {item!r}: {key} already has nested keys", EXIT_USAGE)
        node[parts[-1]] = value
    return result


# -- where rules live: a store file or a server -------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Local:
    path: str


@dataclasses.dataclass(frozen=True)
class _Remote:
    target: str
    admin: bool
    admin_token: str | None = None
    api_key: str | None = None
    root_certificates: bytes | None = None
    timeout: float = DEFAULT_CLI_TIMEOUT

    def client(self) -> Any:
        from client import DecisionClient

        return DecisionClient(
            self.target,
            admin_token=self.admin_token,
            api_key=self.api_key,
            root_certificates=self.root_certificates,
            decide_timeout=self.timeout,
            admin_timeout=self.timeout,
        )


def _store_or_target(args: argparse.Namespace) -> _Local | _Remote:
    """``--db`` or ``--target``; with neither, DECIDE_TARGET, else the server's db_path."""
    if args.db:
        return _Local(args.db)
    if args.target or os.environ.get(ENV_TARGET):
        return _remote(args, admin=True)
    from server.config import ConfigError, ServerConfig

    try:
        return _Local(ServerConfig.from_env().db_path)
    except ConfigError as e:
        raise CliError(f"invalid configuration: {e}", EXIT_USAGE) from e


def _remote(args: argparse.Namespace, *, admin: bool) -> _Remote:
    target = args.target or os.environ.get(ENV_TARGET)
    if not target:
        raise CliError(f"no server given: pass --target HOST:PORT or set {ENV_TARGET}", EXIT_USAGE)
    roots = None
    if args.tls_ca:
        roots = _read_bytes(args.tls_ca)
    if admin:
        token = args.admin_token or os.environ.get(ENV_ADMIN_TOKEN)
        return _Remote(
            target, True, admin_token=token, root_certificates=roots, timeout=args.timeout
        )
    key = args.api_key or os.environ.get(ENV_API_KEY)
    return _Remote(target, False, api_key=key, root_certificates=roots, timeout=args.timeout)


@contextmanager
def _open_store(path: str, *, create: bool = False) -> Iterator[Any]:
    from server.store import RulesStore

    if not create and not Path(path).is_file():
        raise CliError(f"{path}: no such rules store (create one with `decide rules apply`)")
    store = RulesStore(path)
    try:
        yield store
    finally:
        close = getattr(store, "close", None)
        if callable(close):
            close()


@contextmanager
def _store_errors() -> Iterator[None]:
    """Turn store exceptions into one-line CLI errors."""
    import sqlite3

    from server.store import (
        InvalidRulesError,
        StaleVersionError,
        StoreBusyError,
        VersionNotFoundError,
    )

    try:
        yield
    except InvalidRulesError as e:
        for problem in e.problems:
            print(f"  {problem.path or '(document)'}: {problem.message}", file=sys.stderr)
        noun = "problem" if len(e.problems) == 1 else "problems"
        raise CliError(f"invalid rules document ({len(e.problems)} {noun})") from e
    except StaleVersionError as e:
        raise CliError(f"stale version: {e}", EXIT_CONFLICT) from e
    except VersionNotFoundError as e:
        raise CliError(str(e)) from e
    except StoreBusyError as e:
        raise CliError(f"the rules store is busy: {e}", EXIT_UNAVAILABLE) from e
    except (OSError, sqlite3.Error) as e:
        raise CliError(f"cannot open the rules store: {e}") from e


@contextmanager
def _client_errors(remote: _Remote) -> Iterator[None]:
    """Turn client exceptions into one-line CLI errors with a fitting exit code."""
    import grpc

    from client import errors

    target = remote.target
    if remote.admin:
        hint = f"pass --admin-token or set {ENV_ADMIN_TOKEN}"
    else:
        hint = f"pass --api-key or set {ENV_API_KEY}"

    try:
        yield
    except errors.InvalidArgument as e:
        for field, description in e.violations:
            print(f"  {field or '(document)'}: {description}", file=sys.stderr)
        # With violations listed above, keep only the headline ("invalid rules document
        # (2 problems)") rather than repeat them.
        head, sep, _quoted = e.details.partition("): ")
        headline = head + ")" if e.violations and sep else e.details
        raise CliError(f"rejected by the server: {headline}") from e
    except errors.Unauthenticated as e:
        raise CliError(f"authentication failed: {e.details} ({hint})", EXIT_AUTH) from e
    except errors.PermissionDenied as e:
        raise CliError(f"permission denied: {e.details}", EXIT_AUTH) from e
    except errors.NotFound as e:
        raise CliError(f"not found: {e.details}") from e
    except errors.FailedPrecondition as e:
        raise CliError(f"stale version: {e.details}", EXIT_CONFLICT) from e
    except errors.Unavailable as e:
        if e.code == grpc.StatusCode.DEADLINE_EXCEEDED:
            message = f"the server at {target} did not answer within {remote.timeout:g}s"
        else:
            message = f"cannot reach the server at {target}: {e.details}"
        raise CliError(message, EXIT_UNAVAILABLE) from e
    except errors.DecideError as e:
        raise CliError(f"server error: {e.details}") from e


# -- small helpers ------------------------------------------------------------------------


def _read_text(path: str) -> str:
    """A file's text (``-``: standard input); CliError when it cannot be read."""
    if path == "-":
        return sys.stdin.read()
    data = _read_bytes(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CliError(f"{path}: not UTF-8 text (byte {e.start})") from e


def _read_document(path: str) -> str:
    """A rules file's text, checked to be JSON: CliError naming line and column if not."""
    text = _read_text(path)
    try:
        json.loads(text)
    except json.JSONDecodeError as e:
        raise CliError(f"{path}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from e
    return text


def _read_bytes(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as e:
        raise CliError(f"{path}: no such file") from e
    except IsADirectoryError as e:
        raise CliError(f"{path}: is a directory") from e
    except OSError as e:
        raise CliError(f"{path}: {e.strerror or e}") from e


def _author() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return ""


def _version_dict(version: Any) -> dict[str, Any]:
    """A stored version's metadata as a dict, whether from the store or the client."""
    if dataclasses.is_dataclass(version) and not isinstance(version, type):
        data = {f.name: getattr(version, f.name) for f in dataclasses.fields(version)}
    elif isinstance(version, Mapping):
        data = dict(version)
    else:
        data = dict(vars(version))
    data.setdefault("restored_from", None)
    data.setdefault("active", False)
    data.setdefault("author", "")
    data.setdefault("comment", "")
    data.setdefault("created_at", None)
    return data


def _jsonable(value: Any) -> Any:
    """Dataclasses, tuples and datetimes as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _print_json(value: Any, out: TextIO | None = None) -> None:
    print(json.dumps(_jsonable(value), indent=2, ensure_ascii=False), file=out or sys.stdout)


def _short_time(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value) if value else "-"


def _print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


if __name__ == "__main__":
    sys.exit(main())
