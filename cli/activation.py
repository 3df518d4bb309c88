"""The activation commands of ``decide``: batch decisions, segment changes, webhook logs.

    decide batch --placement P [--placement P2] (--segment S | --visitors FILE | --visitor V ...)
                 [--context k=v ...] [--now T] [--record --channel email [--send-id ID]]
                 [--format jsonl|csv] [--out FILE]
    decide changes watch [--segment S ...] [--resume TOKEN | --from-start] [--for SECONDS]
    decide webhooks deliveries [--webhook W] [--status dead] [--limit N] [--json]
    decide webhooks redeliver DELIVERY_ID

Every command needs the admin token (``--admin-token`` or DECIDE_ADMIN_TOKEN): a batch
names a segment's visitors, a change says who entered which segment.

``batch`` writes one line per visitor: JSONL (``{"visitor_id", "<placement>": {"campaign",
"variant", "reason", "decision_id", "content"}, ...}``) or CSV for an email tool's
import (``visitor_id``, then per placement ``<p>.campaign``, ``<p>.variant``,
``<p>.reason``, ``<p>.decision_id`` and one ``<p>.<field>`` column per top-level content
field, nested values as JSON). A segment larger than the server's cap per call is
fetched in several calls, each continuing where the last stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Parser,
    add_target_arguments,
    client_errors,
    parse_assignments,
    parse_instant,
    print_json,
    print_table,
    read_text,
    remote_for,
    short_time,
    usage,
)

DEFAULT_BATCH_TIMEOUT = 3600.0
"""Seconds one batch call may take from the CLI."""


def add_parsers(commands: Any) -> None:
    """Add ``batch``, ``changes`` and ``webhooks`` to the ``decide`` subcommands."""
    batch = commands.add_parser("batch", help="decide placements for a segment or a list")
    batch.add_argument(
        "--placement", dest="placements", action="append", required=True, metavar="P",
        help="placement id (repeatable)",
    )  # fmt: skip
    who = batch.add_mutually_exclusive_group(required=True)
    who.add_argument("--segment", metavar="S", help="every stored visitor of this segment")
    who.add_argument("--visitors", metavar="FILE", help="visitor ids, one per line (- stdin)")
    who.add_argument(
        "--visitor", dest="visitor_list", action="append", metavar="V", help="a visitor id"
    )
    batch.add_argument(
        "--context", action="append", default=[], metavar="KEY=VALUE",
        help="request context for every visitor, as in query (repeatable)",
    )  # fmt: skip
    batch.add_argument("--now", metavar="TIME", help="decide at this moment (ISO-8601)")
    batch.add_argument(
        "--record", action="store_true",
        help="record exposures (a send; default: a preview that records nothing)",
    )  # fmt: skip
    batch.add_argument("--channel", default="", help="with --record: e.g. email")
    batch.add_argument("--send-id", default="", metavar="ID", help="with --record: the send")
    batch.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    batch.add_argument("--out", metavar="FILE", help="write here instead of stdout")
    add_target_arguments(batch, admin=True)
    batch.set_defaults(handler=cmd_batch, timeout=DEFAULT_BATCH_TIMEOUT)

    changes = commands.add_parser("changes", help="segment changes (entered, left)")
    changes_sub = changes.add_subparsers(
        title="changes commands", metavar="COMMAND", parser_class=Parser
    )
    changes.set_defaults(handler=lambda _args: usage(changes))
    watch = changes_sub.add_parser("watch", help="print changes as JSON lines as they happen")
    watch.add_argument("--segment", dest="segments", action="append", default=[], metavar="S")
    watch.add_argument("--resume", default="", metavar="TOKEN", help="after this token")
    watch.add_argument("--from-start", action="store_true", help="first every change still kept")
    watch.add_argument(
        "--for", dest="seconds", type=float, metavar="SECONDS", help="stop after this long"
    )
    add_target_arguments(watch, admin=True)
    watch.set_defaults(handler=cmd_watch)

    webhooks = commands.add_parser("webhooks", help="the webhook delivery log")
    sub = webhooks.add_subparsers(title="webhooks commands", metavar="COMMAND", parser_class=Parser)
    webhooks.set_defaults(handler=lambda _args: usage(webhooks))
    deliveries = sub.add_parser("deliveries", help="deliveries, newest first")
    deliveries.add_argument("--webhook", default="", metavar="W")
    deliveries.add_argument(
        "--status", default="", metavar="S",
        help="pending, retrying, delivered, dead (the dead letters) or blocked",
    )  # fmt: skip
    deliveries.add_argument("--limit", type=int, default=0, metavar="N")
    deliveries.add_argument("--json", action="store_true", help="print JSON")
    add_target_arguments(deliveries, admin=True)
    deliveries.set_defaults(handler=cmd_deliveries)
    redeliver = sub.add_parser("redeliver", help="send a dead or blocked delivery again")
    redeliver.add_argument("delivery_id", metavar="DELIVERY_ID")
    add_target_arguments(redeliver, admin=True)
    redeliver.set_defaults(handler=cmd_redeliver)


# -- batch ----------------------------------------------------------------------------------


def _listed(args: argparse.Namespace) -> list[str] | None:
    if args.visitor_list:
        return list(args.visitor_list)
    if args.visitors:
        return [line.strip() for line in read_text(args.visitors).splitlines() if line.strip()]
    return None


def _moment(text: str | None) -> Any:
    return parse_instant(text, "--now") if text else None


def cmd_batch(args: argparse.Namespace) -> int:
    """Decide for a segment or a list and write JSONL or CSV."""
    if not args.record and (args.channel or args.send_id):
        raise CliError("--channel and --send-id tag a recorded send: add --record", EXIT_USAGE)
    if args.record and not args.channel:
        raise CliError("--record needs --channel (e.g. email)", EXIT_USAGE)
    context = parse_assignments(args.context, "--context")
    listed = _listed(args)
    if listed is not None and not listed:
        raise CliError("no visitor ids given")
    now = _moment(args.now)
    remote = remote_for(args, admin=True)
    with _output(args.out) as out, remote.client() as client, client_errors(remote):
        writer = _Writer(out, args.format, args.placements)
        send_id = args.send_id
        after = ""
        while True:
            call = client.decide_batch(
                args.placements,
                segment=args.segment,
                visitor_ids=listed,
                context=context,
                now=now,
                record=args.record,
                channel=args.channel,
                send_id=send_id,
                start_after=after,
                timeout=args.timeout,
            )
            for row in call:
                writer.write(call.header, row)
            if call.header is not None:
                send_id = call.header.send_id  # the next call records the same send
            summary = call.summary
            if summary is None or summary.complete:
                break
            after = summary.next_start_after
    sent = f", send {send_id} ({args.channel})" if args.record else " (preview)"
    noun = "visitor" if writer.rows == 1 else "visitors"
    print(f"decided {writer.rows:,} {noun}{sent}", file=sys.stderr)
    return EXIT_OK


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[TextIO]:
    if not path or path == "-":
        yield sys.stdout
        return
    try:
        handle = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed below
    except OSError as e:
        raise CliError(f"{path}: cannot write: {e.strerror}") from e
    with handle:
        yield handle


class _Writer:
    """Rows as JSON lines or CSV (the header written with the first row)."""

    def __init__(self, out: TextIO, kind: str, placements: Sequence[str]) -> None:
        self.out = out
        self.kind = kind
        self.placements = list(placements)
        self.rows = 0
        self._csv: Any = None
        self._fields: dict[str, tuple[str, ...]] = {}

    def write(self, header: Any, row: Any) -> None:
        self.rows += 1
        if self.kind == "jsonl":
            record: dict[str, Any] = {"visitor_id": row.visitor_id}
            for d in row.decisions:
                record[d.placement] = {
                    "campaign": d.campaign_id,
                    "variant": d.variant_id,
                    "reason": d.reason,
                    "decision_id": d.decision_id,
                    "content": d.content,
                }
            self.out.write(json.dumps(record, ensure_ascii=False) + "\n")
            return
        if self._csv is None:
            self._fields = dict(header.fields) if header is not None else {}
            self._csv = csv.writer(self.out)
            columns = ["visitor_id"]
            for p in self.placements:
                columns += [f"{p}.{c}" for c in ("campaign", "variant", "reason", "decision_id")]
                columns += [f"{p}.{f}" for f in self._fields.get(p, ())]
            self._csv.writerow(columns)
        cells: list[str] = [row.visitor_id]
        for p in self.placements:
            d = row[p]
            cells += [d.campaign_id or "", d.variant_id or "", d.reason, d.decision_id]
            content = d.content if isinstance(d.content, dict) else {}
            for f in self._fields.get(p, ()):
                value = content.get(f)
                if value is None:
                    cells.append("")
                elif isinstance(value, str):
                    cells.append(value)
                else:
                    cells.append(json.dumps(value, ensure_ascii=False))
        self._csv.writerow(cells)


# -- changes ------------------------------------------------------------------------------


def cmd_watch(args: argparse.Namespace) -> int:
    """Print segment changes as JSON lines; the last line of a run is a resume token."""
    remote = remote_for(args, admin=True)
    deadline = None if args.seconds is None else time.monotonic() + args.seconds
    token = args.resume
    with remote.client() as client, client_errors(remote):
        stream = client.watch_segment_changes(
            args.segments,
            resume_token=args.resume,
            from_start=args.from_start,
            timeout=args.seconds,
        )
        try:
            for message in stream:
                for c in message.changes:
                    line = {
                        "seq": c.seq,
                        "visitor_id": c.visitor_id,
                        "segment": c.segment,
                        "change": c.change,
                        "at": c.at.isoformat().replace("+00:00", "Z"),
                        "reason": c.reason,
                    }
                    if c.merged_into:
                        line["merged_into"] = c.merged_into
                    print(json.dumps(line), flush=True)
                token = message.resume_token
                if deadline is not None and time.monotonic() >= deadline:
                    break
        except Exception as e:
            from client import Unavailable

            if not (isinstance(e, Unavailable) and deadline is not None):
                raise  # a deadline reached is how --for ends
    print(json.dumps({"resume_token": token}), flush=True)
    return EXIT_OK


# -- webhooks -----------------------------------------------------------------------------


def cmd_deliveries(args: argparse.Namespace) -> int:
    """Print the webhook delivery log, newest first."""
    remote = remote_for(args, admin=True)
    with remote.client() as client, client_errors(remote):
        found = client.webhook_deliveries(
            args.webhook, status=args.status, limit=args.limit, timeout=args.timeout
        )
    if args.json:
        print_json([_delivery_dict(d) for d in found])
        return EXIT_OK
    if not found:
        print("no deliveries")
        return EXIT_OK
    print_table(
        ["DELIVERY", "WEBHOOK", "STATUS", "ATTEMPTS", "HTTP", "CHANGES", "SEQ", "UPDATED", "ERROR"],
        [
            [
                d.delivery_id,
                d.webhook,
                d.status,
                str(d.attempts),
                str(d.http_status or "-"),
                str(d.changes),
                f"{d.first_seq}-{d.last_seq}",
                short_time(d.updated_at),
                d.error or "-",
            ]
            for d in found
        ],
    )
    return EXIT_OK


def cmd_redeliver(args: argparse.Namespace) -> int:
    """Queue a dead or blocked delivery again."""
    remote = remote_for(args, admin=True)
    with remote.client() as client, client_errors(remote):
        delivery = client.redeliver_webhook(args.delivery_id, timeout=args.timeout)
    print(f"delivery {delivery.delivery_id} to {delivery.webhook} is {delivery.status} again")
    return EXIT_OK


def _delivery_dict(d: Any) -> dict[str, Any]:
    return {
        "delivery_id": d.delivery_id,
        "webhook": d.webhook,
        "url": d.url,
        "status": d.status,
        "attempts": d.attempts,
        "http_status": d.http_status,
        "error": d.error,
        "changes": d.changes,
        "first_seq": d.first_seq,
        "last_seq": d.last_seq,
        "created_at": short_time(d.created_at),
        "updated_at": short_time(d.updated_at),
    }
