"""``decide query`` and ``decide status``: ask a running server for decisions and its state."""

from __future__ import annotations

import argparse
import json
from typing import Any

from cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    add_target_arguments,
    client_errors,
    jsonable,
    parse_assignments,
    parse_instant,
    print_json,
    remote_for,
    short_time,
)


def add_parsers(commands: Any) -> None:
    """Add ``query`` and ``status`` to the ``decide`` subcommands."""
    query = commands.add_parser("query", help="ask a running server for decisions")
    add_target_arguments(query, admin=False)
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
    query.add_argument(
        "--admin-token",
        metavar="T",
        help="or DECIDE_ADMIN_TOKEN; shows segments and --explain on a server without API keys",
    )
    query.add_argument("--explain", action="store_true", help="show why each campaign won or not")
    query.add_argument(
        "--record",
        action="store_true",
        help="record exposures as a storefront's call would (default: a preview, not counted)",
    )
    query.add_argument(
        "--now",
        metavar="TIME",
        help="decide as at this moment, ISO-8601 (a preview: e.g. when a campaign starts)",
    )
    query.add_argument("--json", action="store_true", help="print one JSON document")
    query.set_defaults(handler=cmd_query)

    status = commands.add_parser("status", help="show what a running server is serving")
    add_target_arguments(status, admin=True)
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=cmd_status)


def cmd_query(args: argparse.Namespace) -> int:
    """Ask a server for decisions and print them as text or one JSON document."""
    context = parse_assignments(args.context, "--context")
    profile = parse_assignments(args.profile, "--profile") if args.profile else None
    if args.now and args.record:
        raise CliError("--now previews a moment; it cannot be --record-ed", EXIT_USAGE)
    now = parse_instant(args.now, "--now") if args.now else None
    remote = remote_for(args, admin=False)
    with remote.client() as client, client_errors(remote):
        result = client.decide(
            args.visitor,
            args.placements,
            context,
            explain=args.explain,
            profile_overrides=profile,
            preview=not args.record,
            now=now,
        )
    if args.json:
        print_json(jsonable(result))
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
    remote = remote_for(args, admin=True)
    with remote.client() as client, client_errors(remote):
        status = client.status()
    if args.json:
        print_json(jsonable(status))
        return EXIT_OK
    print(f"server          {remote.target} (version {status.server_version or '?'})")
    print(f"serving         version {status.active_version} ({status.content_hash[:12]})")
    print(f"loaded at       {short_time(status.loaded_at)}")
    print(f"store version   {status.store_version}")
    print(f"reloads         {status.reload_count} ok, {status.reload_error_count} failed")
    if status.last_reload_error:
        print(
            f"last error      {short_time(status.last_reload_error_at)}: {status.last_reload_error}"
        )
    backfill = status.activity_backfill
    if backfill is not None:
        if backfill.complete:
            print("activity        every profile keeps what the rules read")
        else:
            print(f"activity        back-filling: {backfill.pending:,} profiles to complete")
        if backfill.last_error:
            print(f"back-fill error {backfill.last_error}")
    return EXIT_OK
