"""The insights commands of ``decide``.

    decide insights campaign CAMPAIGN [--since 7d | --start T --end T] [--by-segment]
                                      [--baseline ARM] [--channel C] [--json]
    decide insights segments SEG [SEG ...] [--since 7d | --start T --end T] [--json]
    decide insights estimate FILTER_JSON_OR_FILE [--sample N] [--json]
    decide insights export SEGMENT [--page-size N]          (one visitor id per line)
    decide report --out report.html [--target ADDR] [--campaign C ...] [--segment S ...]
                  [--since 7d] [--demo-data]

All but ``report --demo-data`` ask a running server's InsightsService, with the admin
token (``--admin-token`` or DECIDE_ADMIN_TOKEN): the reports name visitors.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Parser,
    add_target_arguments,
    client_errors,
    print_json,
    print_table,
    read_text,
    remote_for,
    usage,
)

DEFAULT_REPORT_TIMEOUT = 120.0
"""Seconds an insights call may take from the CLI: reports scan the whole store."""

_SINCE = re.compile(r"^(\d+(?:\.\d+)?)([dhm])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def add_parsers(commands: Any) -> None:
    """Add ``insights`` and ``report`` to the ``decide`` subcommands."""
    insights = commands.add_parser("insights", help="campaign and segment reports from a server")
    sub = insights.add_subparsers(title="insights commands", metavar="COMMAND", parser_class=Parser)
    insights.set_defaults(handler=lambda _args: usage(insights))

    campaign = sub.add_parser("campaign", help="one campaign's arms, lift and split check")
    campaign.add_argument("campaign", metavar="CAMPAIGN")
    _add_period_arguments(campaign)
    campaign.add_argument("--by-segment", action="store_true", help="break down by segment")
    campaign.add_argument("--baseline", default="", metavar="ARM", help="compare with this arm")
    campaign.add_argument(
        "--channel", default="", metavar="C", help="only exposures of this channel (web, email...)"
    )
    campaign.add_argument("--json", action="store_true", help="print JSON")
    add_target_arguments(campaign, admin=True)
    campaign.set_defaults(handler=cmd_campaign, timeout=DEFAULT_REPORT_TIMEOUT)

    segments = sub.add_parser("segments", help="segment sizes, overlap and journeys")
    segments.add_argument("segments", nargs="+", metavar="SEG")
    _add_period_arguments(segments)
    segments.add_argument("--json", action="store_true", help="print JSON")
    add_target_arguments(segments, admin=True)
    segments.set_defaults(handler=cmd_segments, timeout=DEFAULT_REPORT_TIMEOUT)

    estimate = sub.add_parser("estimate", help="how many stored profiles a filter matches")
    estimate.add_argument("filter", metavar="FILTER_JSON_OR_FILE", help="JSON text, a file or -")
    estimate.add_argument("--sample", type=int, default=0, metavar="N", help="ids to sample")
    estimate.add_argument("--json", action="store_true", help="print JSON")
    add_target_arguments(estimate, admin=True)
    estimate.set_defaults(handler=cmd_estimate, timeout=DEFAULT_REPORT_TIMEOUT)

    export = sub.add_parser("export", help="print a segment's visitor ids, one per line")
    export.add_argument("segment", metavar="SEGMENT")
    export.add_argument("--page-size", type=int, default=0, metavar="N")
    add_target_arguments(export, admin=True)
    export.set_defaults(handler=cmd_export, timeout=DEFAULT_REPORT_TIMEOUT)

    report = commands.add_parser("report", help="write a self-contained HTML insights report")
    report.add_argument("--out", required=True, metavar="FILE", help="the HTML file to write")
    report.add_argument(
        "--campaign", dest="campaigns", action="append", default=[], metavar="C",
        help="campaign to include (repeatable; default: every campaign with exposures)",
    )  # fmt: skip
    report.add_argument(
        "--segment", dest="segments", action="append", default=[], metavar="S",
        help="segment to include (repeatable; default: the rules' segments, up to 8)",
    )  # fmt: skip
    _add_period_arguments(report)
    report.add_argument("--title", default="decide insights", help="the report's title")
    report.add_argument(
        "--demo-data", action="store_true", help="no server: the simulated demo dataset"
    )
    add_target_arguments(report, admin=True)
    report.set_defaults(handler=cmd_report, timeout=DEFAULT_REPORT_TIMEOUT)


def _add_period_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since", metavar="AGE", help="period ending now, e.g. 7d, 24h (default 7d)"
    )
    parser.add_argument("--start", metavar="TIME", help="period start, ISO-8601 (UTC if no offset)")
    parser.add_argument("--end", metavar="TIME", help="period end, ISO-8601 (default now)")


def parse_period(args: argparse.Namespace) -> tuple[datetime | None, datetime | None]:
    """``(start, end)`` from ``--since`` or ``--start``/``--end``; None: server default."""
    if args.since and (args.start or args.end):
        raise CliError("give --since or --start/--end, not both", EXIT_USAGE)
    if args.since:
        match = _SINCE.match(args.since.strip())
        if match is None:
            raise CliError(f"--since {args.since!r}: expected e.g. 7d, 24h or 30m", EXIT_USAGE)
        delta = timedelta(**{_UNITS[match[2]]: float(match[1])})
        return datetime.now(UTC) - delta, None
    return _instant(args.start, "--start"), _instant(args.end, "--end")


def _instant(text: str | None, option: str) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as e:
        raise CliError(f"{option} {text!r}: not an ISO-8601 date or time", EXIT_USAGE) from e
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# -- formatting ---------------------------------------------------------------------------


def _pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.1%}" if signed else f"{value:.1%}"


def _span(bounds: tuple[float, float] | None, signed: bool = False) -> str:
    if bounds is None:
        return ""
    return f" ({_pct(bounds[0], signed)} to {_pct(bounds[1], signed)})"


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:,.1f} min"


def _variant_rows(results: Sequence[Any]) -> list[list[str]]:
    rows = []
    for r in results:
        c = r.counts
        rows.append(
            [
                c.variant_id + (" *" if c.control else ""),
                f"{c.exposed:,}",
                f"{c.clicks:,}",
                _pct(r.ctr),
                f"{c.conversions:,}",
                _pct(r.conversion_rate) + _span(r.conversion_ci),
                _money(c.revenue),
                _money(r.revenue_per_visitor),
                _pct(r.lift, True) + _span(r.lift_ci, True) if r.lift is not None else "-",
                "-" if r.p_value is None else f"{r.p_value:.3g}",
                _pct(r.prob_beat_control),
            ]
        )
    return rows


_HEADER = [
    "ARM", "EXPOSED", "CLICKS", "CTR", "CONV", "CONV RATE (95% CI)", "REVENUE",
    "REV/VISITOR", "LIFT (95% CI)", "P", "P(BEATS *)",
]  # fmt: skip


def print_campaign(report: Any, extras: dict[str, Any]) -> None:
    """A campaign report as readable text."""
    window = extras["attribution_window_days"]
    print(
        f"campaign {report.campaign_id}: {_when(report.period_start)} to"
        f" {_when(report.period_end)} UTC, attribution window {window:g} days"
    )
    status = "ok" if report.status == "ok" else "NOT ENOUGH DATA (comparisons withheld)"
    print(f"status: {status}; minimum sample {report.min_sample} exposed visitors per arm")
    print()
    print_table(_HEADER, _variant_rows(report.variants))
    srm = report.srm
    verdict = "MISMATCH: check the split before trusting results" if srm.mismatch else "ok"
    print()
    print(f"split check: chi2 {srm.chi2:.2f}, p {srm.p_value:.3g}: {verdict}")
    print(f"  expected: {extras['expected_weights']}")
    for segment_id, results in (report.by_segment or {}).items():
        print()
        print(f"segment {segment_id}:")
        print_table(_HEADER, _variant_rows(results))
    print()
    print("* the baseline the other arms are compared with")


def cmd_campaign(args: argparse.Namespace) -> int:
    """Print one campaign's report as a table or JSON."""
    from client import _insights
    from protos import decisioning_pb2 as pb

    start, end = parse_period(args)
    remote = remote_for(args, admin=True)
    with remote.client() as client, client_errors(remote):
        # The raw call keeps the response's extras (expected weights, window).
        request = pb.CampaignReportRequest(
            campaign=args.campaign,
            period=_insights.period(start, end),
            by_segment=args.by_segment,
            baseline=args.baseline,
            channel=args.channel,
        )
        response = client._insights_call("CampaignReport", request, args.timeout)
    report = _insights.campaign_report(response)
    extras = _insights.campaign_extras(response)
    if args.json:
        print_json({**report.to_dict(), **extras})
    else:
        print_campaign(report, extras)
    return EXIT_OK


def print_segments(report: Any) -> None:
    """A segment report as readable text."""
    print(f"segments: {_when(report.period_start)} to {_when(report.period_end)} UTC")
    print()
    rows = [
        [
            s.segment_id,
            f"{s.size_now:,}",
            f"{s.exposures:,}",
            _pct(s.conversion_rate),
            _money(s.revenue_per_visitor),
        ]
        for s in report.segments
    ]
    print_table(["SEGMENT", "SIZE NOW", "EXPOSURES", "CONV RATE", "REV/VISITOR"], rows)
    engaged = [s for s in report.segments if s.engagement is not None]
    if engaged:
        print()
        print("engagement of the members now:")
        print_table(
            ["SEGMENT", "MEMBERS", "SESSIONS/MEMBER", "PAGES/SESSION", "TIME ON SITE/MEMBER"],
            [
                [
                    s.segment_id,
                    f"{s.engagement.members:,}",
                    _ratio(s.engagement.sessions_per_member),
                    _ratio(s.engagement.pages_per_session),
                    _minutes(s.engagement.time_on_site_per_member),
                ]
                for s in engaged
            ],
        )
    print()
    print("size over time (daily snapshots):")
    for s in report.segments:
        points = ", ".join(f"{day} {size:,}" for day, size in s.sizes_over_time)
        print(f"  {s.segment_id}: {points or 'no snapshot in the period'}")
    print()
    print("overlap now (visitors in both):")
    ids = list(report.segment_ids)
    print_table(
        ["", *ids],
        [[a, *(f"{n:,}" for n in row)] for a, row in zip(ids, report.overlap, strict=True)],
    )
    print()
    print("journeys over the period (in A, not in B at the start; in B at the end):")
    if not report.journeys:
        print("  none")
    for src, dst, visitors in report.journeys:
        print(f"  {src} -> {dst}: {visitors:,}")


def cmd_segments(args: argparse.Namespace) -> int:
    """Print a segment report as text or JSON."""
    start, end = parse_period(args)
    remote = remote_for(args, admin=True)
    with remote.client() as client, client_errors(remote):
        report = client.segment_report(args.segments, start=start, end=end, timeout=args.timeout)
    if args.json:
        print_json(report.to_dict())
    else:
        print_segments(report)
    return EXIT_OK


def _filter_text(value: str) -> str:
    """The filter as JSON text: given inline, or read from a file (``-``: stdin)."""
    text = value.strip()
    if text.startswith("{"):
        return text
    if value == "-" or Path(value).is_file():
        return read_text(value)
    raise CliError(f"{value!r} is neither a JSON object nor a file")


def cmd_estimate(args: argparse.Namespace) -> int:
    """Print how many stored profiles a filter matches, a sample and its overlaps."""
    text = _filter_text(args.filter)
    try:
        json.loads(text)
    except ValueError as e:
        raise CliError(f"the filter is not JSON: {e}") from e
    remote = remote_for(args, admin=True)
    with remote.client() as client, client_errors(remote):
        estimate = client.estimate_segment(text, sample_size=args.sample, timeout=args.timeout)
    if args.json:
        print_json(estimate)
        return EXIT_OK
    share = estimate.matching / estimate.profiles if estimate.profiles else 0.0
    print(f"matches {estimate.matching:,} of {estimate.profiles:,} stored profiles ({share:.1%})")
    if estimate.sample_ids:
        print(f"sample: {', '.join(estimate.sample_ids)}")
    if estimate.overlaps:
        print()
        when = estimate.segment_sizes_at
        as_of = f" (segment sizes as of {when:%Y-%m-%d %H:%M:%S} UTC)" if when else ""
        print(f"overlaps most with{as_of}:")
        print_table(
            ["SEGMENT", "SIZE", "BOTH", "JACCARD"],
            [
                [o.segment_id, f"{o.segment_size:,}", f"{o.both:,}", f"{o.jaccard:.3f}"]
                for o in estimate.overlaps
            ],
        )
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """Print every visitor id of a segment, one per line."""
    remote = remote_for(args, admin=True)
    with remote.client() as client, client_errors(remote):
        # A whole export may take longer than one ordinary call.
        for visitor_id in client.export_segment(
            args.segment, page_size=args.page_size, timeout=max(args.timeout, 600.0)
        ):
            sys.stdout.write(visitor_id + "\n")
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    """Fetch campaign and segment reports (or the demo data) and write one HTML file."""
    from insights import render_html

    now = datetime.now(UTC)
    if args.demo_data:
        from insights.demo import demo_campaign_reports, demo_segment_report

        campaigns: list[Any] = list(demo_campaign_reports())
        segments: Any = demo_segment_report()
    else:
        campaigns, segments = _fetch_reports(args)
    html = render_html(campaigns, segments, title=args.title, generated_at=now)
    try:
        Path(args.out).write_text(html, encoding="utf-8")
    except OSError as e:
        raise CliError(f"{args.out}: {e.strerror or e}") from e
    what = f"{len(campaigns)} campaigns" + (
        f", {len(segments.segments)} segments" if segments is not None else ""
    )
    print(f"wrote {args.out} ({what}, {len(html.encode('utf-8')):,} bytes)")
    return EXIT_OK


def _fetch_reports(args: argparse.Namespace) -> tuple[list[Any], Any]:
    from client import errors

    start, end = parse_period(args)
    remote = remote_for(args, admin=True)
    with remote.client() as client, client_errors(remote):
        document = client.get_rules(timeout=args.timeout).document
        wanted = args.campaigns or [c["id"] for c in document.get("campaigns", [])]
        campaigns = []
        for campaign in wanted:
            try:
                report = client.campaign_report(
                    campaign, start=start, end=end, by_segment=True, timeout=args.timeout
                )
            except errors.NotFound:
                if args.campaigns:
                    raise
                continue
            if args.campaigns or any(v.counts.exposed for v in report.variants):
                campaigns.append(report)
        segment_ids = (
            args.segments
            or [s["id"] for s in document.get("segments", []) if s["id"] != "everyone"][:8]
        )
        segments = (
            client.segment_report(segment_ids, start=start, end=end, timeout=args.timeout)
            if segment_ids
            else None
        )
    return campaigns, segments
