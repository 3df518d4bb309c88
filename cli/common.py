"""What every ``decide`` command shares: exit codes, errors, argument groups, output.

Each command module (``cli.serve``, ``cli.rules``, ``cli.query``, ``cli.profiles``,
``cli.insights``, ``loadtest.cli``) imports its helpers from here, by public name.
User errors are ``CliError``: ``cli.main`` prints them as one line on stderr and exits
with their code; a command never prints a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
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
EXIT_BROKEN_PIPE = 141
"""Standard output was closed before the command finished writing (``| head``): what a
shell reports for a program that SIGPIPE ends (128 + 13)."""

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


def error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


class Parser(argparse.ArgumentParser):
    """argparse, but with exit code EXIT_USAGE spelled out for readers of this module."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def add_target_arguments(parser: argparse.ArgumentParser, *, admin: bool) -> None:
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


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    """``--db PATH | --target ADDR``; with neither, DECIDE_TARGET, else the configured db."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--db",
        "--store",
        metavar="STORE",
        help="work on this store directly: a SQLite file or a postgresql:// URL",
    )
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
class Local:
    path: str


@dataclasses.dataclass(frozen=True)
class Remote:
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


def store_or_target(args: argparse.Namespace) -> Local | Remote:
    """``--db`` or ``--target``; with neither, DECIDE_TARGET, else the server's db_path."""
    if args.db:
        return Local(args.db)
    if args.target or os.environ.get(ENV_TARGET):
        return remote_for(args, admin=True)
    from server.config import ConfigError, ServerConfig

    try:
        config = ServerConfig.from_env()
        return Local(config.store or config.db_path)
    except ConfigError as e:
        raise CliError(f"invalid configuration: {e}", EXIT_USAGE) from e


def remote_for(args: argparse.Namespace, *, admin: bool) -> Remote:
    target = args.target or os.environ.get(ENV_TARGET)
    if not target:
        raise CliError(f"no server given: pass --target HOST:PORT or set {ENV_TARGET}", EXIT_USAGE)
    roots = None
    if args.tls_ca:
        roots = read_bytes(args.tls_ca)
    if admin:
        token = args.admin_token or os.environ.get(ENV_ADMIN_TOKEN)
        return Remote(
            target, True, admin_token=token, root_certificates=roots, timeout=args.timeout
        )
    key = args.api_key or os.environ.get(ENV_API_KEY)
    # Sent with decision calls too: on a server without API keys, the admin token is
    # what shows a visitor's segments and explanations (personal data).
    token = getattr(args, "admin_token", None) or os.environ.get(ENV_ADMIN_TOKEN)
    return Remote(
        target,
        False,
        api_key=key,
        admin_token=token,
        root_certificates=roots,
        timeout=args.timeout,
    )


@contextmanager
def open_store(path: str, *, create: bool = False) -> Iterator[Any]:
    """The rules store at ``path``: a SQLite file, or a ``postgresql://`` URL (through
    the storage seam, which checks the database's schema first)."""
    from server.config import ConfigError, ServerConfig

    try:
        config = ServerConfig.from_env(store=path)
    except ConfigError as e:
        raise CliError(f"invalid store: {e}", EXIT_USAGE) from e
    if config.location.backend != "sqlite":
        from server.postgres.storage import rules_only

        with store_errors(), rules_only(config) as shared:
            yield shared
        return
    from server.rules.sqlite import SQLiteRulesStore as RulesStore

    if not create and not Path(path).is_file():
        raise CliError(f"{path}: no such rules store (create one with `decide rules apply`)")
    store = RulesStore(config.db_path)
    try:
        yield store
    finally:
        close = getattr(store, "close", None)
        if callable(close):
            close()



@contextmanager
def store_errors() -> Iterator[None]:
    """Turn store exceptions into one-line CLI errors."""
    import sqlite3

    from server.errors import (
        InvalidRulesError,
        StaleVersionError,
        StoreBusyError,
        StoreError,
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
    except StoreError as e:
        raise CliError(str(e)) from e
    except BrokenPipeError:
        raise  # standard output was closed (``| head``): not a store problem
    except (OSError, sqlite3.Error) as e:
        raise CliError(f"cannot open the rules store: {e}") from e


@contextmanager
def client_errors(remote: Remote) -> Iterator[None]:
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
        if "not available on the" in e.details:  # server.errors.NotOnThisStoreError
            raise CliError(f"refused by the server: {e.details}") from e
        raise CliError(f"stale version: {e.details}", EXIT_CONFLICT) from e
    except errors.Unavailable as e:
        if e.code == grpc.StatusCode.DEADLINE_EXCEEDED:
            message = f"the server at {target} did not answer within {remote.timeout:g}s"
        else:
            message = f"cannot reach the server at {target}: {e.details}"
            hint = tls_hint(e.details, tls=remote.root_certificates is not None)
            if hint:
                message += f"; {hint}"
        raise CliError(message, EXIT_UNAVAILABLE) from e
    except errors.DecideError as e:
        raise CliError(f"server error: {e.details}") from e


def tls_hint(details: str, *, tls: bool) -> str:
    """What to try when a connection failed as ``details`` says, when TLS (or its
    absence) is the likely cause; "" otherwise.

    gRPC reports these cases in transport terms: a plaintext client's HTTP/2 preface
    makes a TLS server hang up ("Socket closed"); a TLS client at a plaintext server
    reads an HTTP/2 frame where a TLS record should be (WRONG_VERSION_NUMBER)."""
    lowered = details.lower()
    if not tls:
        if "socket closed" in lowered or "connection reset" in lowered:
            return (
                "the server hung up while connecting: if it serves TLS (decide serve"
                " --tls-cert), pass --tls-ca FILE with its certificate or the CA that signed it"
            )
        return ""
    if "wrong_version_number" in lowered:
        return "the server does not speak TLS: leave out --tls-ca"
    if "certificate_verify_failed" in lowered:
        return (
            "the server's certificate is not trusted: --tls-ca must name the server's"
            " certificate or the CA that signed it"
        )
    if "handshake" in lowered:
        return "the TLS handshake failed: check --tls-ca and that the server serves TLS"
    return ""


# -- small helpers ------------------------------------------------------------------------


def read_text(path: str) -> str:
    """A file's text (``-``: standard input); CliError when it cannot be read."""
    if path == "-":
        return sys.stdin.read()
    data = read_bytes(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CliError(f"{path}: not UTF-8 text (byte {e.start})") from e


def read_document(path: str) -> str:
    """A rules file's text, checked to be JSON: CliError naming line and column if not."""
    text = read_text(path)
    try:
        json.loads(text)
    except json.JSONDecodeError as e:
        raise CliError(f"{path}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from e
    return text


def read_bytes(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as e:
        raise CliError(f"{path}: no such file") from e
    except IsADirectoryError as e:
        raise CliError(f"{path}: is a directory") from e
    except OSError as e:
        raise CliError(f"{path}: {e.strerror or e}") from e


def author() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return ""


def version_dict(version: Any) -> dict[str, Any]:
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


def jsonable(value: Any) -> Any:
    """Dataclasses, tuples and datetimes as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def print_json(value: Any, out: TextIO | None = None) -> None:
    print(json.dumps(jsonable(value), indent=2, ensure_ascii=False), file=out or sys.stdout)


def parse_instant(text: str, option: str) -> datetime:
    """An ISO-8601 date or time given to ``option`` (UTC when it names no offset)."""
    from datetime import UTC

    try:
        moment = datetime.fromisoformat(text)
    except ValueError as e:
        raise CliError(f"{option} {text!r}: not an ISO-8601 date or time", EXIT_USAGE) from e
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def short_time(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value) if value else "-"


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
