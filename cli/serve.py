"""``decide serve``: run the gRPC server."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cli.common import EXIT_USAGE, CliError


def add_parsers(commands: Any) -> None:
    """Add ``serve`` to the ``decide`` subcommands."""
    serve = commands.add_parser("serve", help="run the gRPC server")
    serve.add_argument(
        "--store",
        metavar="STORE",
        help="where rules, profiles and exposures live: a SQLite file (PATH or sqlite:///PATH)"
        " or a PostgreSQL database shared by every decider (postgresql://USER@HOST:PORT/DB);"
        " or DECIDE_STORE",
    )
    serve.add_argument("--db", dest="db_path", metavar="PATH", help="a SQLite store (as --store)")
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
        type=_processes,
        metavar="auto|N",
        help="server processes sharing the port (SO_REUSEPORT, Linux); default auto: one per core",
    )
    serve.add_argument(
        "--webhook-allow",
        dest="webhook_allow",
        action="append",
        metavar="ORIGIN",
        help="an origin webhooks may be delivered to, e.g. https://crm.example.com (repeatable)",
    )
    serve.add_argument(
        "--webhook-secrets-file",
        metavar="FILE",
        help="webhook signing secrets, one ID=SECRET per line (or DECIDE_WEBHOOK_SECRETS)",
    )
    serve.set_defaults(handler=cmd_serve)


def _processes(text: str) -> int:
    """``auto`` (0: one per core) or a count."""
    if text.strip().lower() == "auto":
        return 0
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto or a number, got {text!r}") from None


def cmd_serve(args: argparse.Namespace) -> int:
    """Build the config (arguments over DECIDE_* variables over defaults) and serve."""
    from server.config import ConfigError, ServerConfig
    from server.processes import serve

    overrides = {
        name: getattr(args, name)
        for name in (
            "store",
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
            "webhook_allow",
            "webhook_secrets_file",
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
