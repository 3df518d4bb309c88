"""The ``decide`` command: run a server, manage rules, query decisions, events, insights.

    decide serve [--demo] [--store STORE] [--port N] [--processes N] [--admin-token T] [--api-key K]
    decide rules validate|apply|export|history|rollback|schema ...
    decide query --target ADDR --visitor V --placement P [...] [--context k=v ...] [--now T] [--json]
    decide batch --placement P (--segment S | --visitors FILE) [--record --channel C] [--format csv]
    decide changes watch [--segment S ...] [--resume TOKEN]
    decide webhooks deliveries|redeliver ...
    decide status --target ADDR [--json]
    decide track FILE.jsonl [--target ADDR] [--batch N]
    decide profile [show|delete|export] VISITOR [--target ADDR] [--json]
    decide profiles rebuild [--store STORE] [--profile-db PATH]
    decide insights campaign|segments|estimate|export ... [--target ADDR] [--json]
    decide report --out report.html [--target ADDR] [--campaign C ...] [--demo-data]
    decide store migrate [--store STORE]
    decide store check [--store STORE | --db PATH] [--profile-db PATH]
    decide loadtest [--target ADDR] [--concurrency N | --rate R] [--baseline] [--json]

One module per command group (``cli.serve``, ``cli.rules``, ``cli.query``,
``cli.profiles``, ``cli.insights``, ``cli.activation``, ``loadtest.cli``), each adding its parsers; what
they share is in ``cli.common``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from cli import activation, insights, profiles, query, rules, serve, store
from cli.common import EXIT_BROKEN_PIPE, EXIT_USAGE, PROG, CliError, Parser, error


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        code = handler(args)
        sys.stdout.flush()  # a reader that went away is found here, not at exit
        return code
    except BrokenPipeError:
        return _reader_gone()
    except CliError as e:
        error(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        return 130


def _reader_gone() -> int:
    """Standard output's reader closed it (``decide insights export S | head``): stop
    quietly, as a program that SIGPIPE ends does. Standard output then points at
    /dev/null, so the interpreter's flush at exit cannot fail a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # not a real file (tests capture it)
        pass
    return EXIT_BROKEN_PIPE


def build_parser() -> argparse.ArgumentParser:
    """The ``decide`` argument parser with every subcommand."""
    parser = Parser(prog=PROG, description="Personalization decisioning over gRPC.")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=Parser)
    for group in (serve, rules, query, profiles, insights, activation, store):
        group.add_parsers(commands)

    from loadtest import cli as loadtest_cli  # argparse only; the run imports the rest

    loadtest_cli.add_parser(commands)
    return parser


if __name__ == "__main__":
    sys.exit(main())
