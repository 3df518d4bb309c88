"""``decide loadtest``: arguments, and the run from start-up to report.

A run: start a server unless ``--target`` names one (``decide serve --demo`` on an
ephemeral loopback port, a store in a temporary folder), seed the visitors' profiles
through EventService.Track, run the load, then with ``--baseline`` run the same load
against each no-logic server (sync and asyncio, as many processes as decide's), stop
what was started, and print the report. It exits 0 when every call succeeded, 1 when
some failed, 2 for bad arguments, 3 when a server could not be started or reached.

A server named by ``--target`` holds someone's data: unless ``--allow-writes`` is given,
the load writes nothing into it (Decide with ``preview`` set, so no exposure is recorded
and no decision counted; no Track calls; no profiles seeded). A server the run starts
itself has a throwaway store, so there the load writes as a storefront would.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

MAX_SECONDS = 3600.0
"""Longest run (warm-up plus duration): every run stops by itself."""

DEFAULTS: dict[str, Any] = {
    "concurrency": 16,
    "duration": 10.0,
    "warmup": 2.0,
    "processes": 1,
    "connections": 4,
    "timeout": 5.0,
    "visitors": 10_000,
    "zipf": 1.1,
    "placements_per_call": "1-5",
    "track_ratio": 0.1,  # 0 when the run may not write (see build_settings)
    "track_batch": 10,
    "max_in_flight": 1000,
    "seed": 1,
}


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add the ``loadtest`` subcommand to ``decide``'s subparsers."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "loadtest",
        help="load a server and report calls/s and latency percentiles",
        description=(
            "Load a decide server with a mix of Decide and Track calls and report calls/s, "
            "latency percentiles (HDR histogram) and errors by status code. Without --target "
            "it starts `decide serve --demo` on a free loopback port and stops it at the end."
        ),
    )
    where = parser.add_argument_group("target")
    where.add_argument("--target", metavar="ADDR", help="HOST:PORT to load (default: start one)")
    where.add_argument(
        "--allow-remote", action="store_true", help="allow a target that is not loopback"
    )
    where.add_argument(
        "--allow-writes",
        action="store_true",
        help=(
            "with --target: record decisions as exposures, send Track calls and seed "
            "profiles (default: Decide previews only, nothing written)"
        ),
    )
    where.add_argument("--api-key", metavar="K", help="x-api-key for Decide and Track calls")
    where.add_argument("--rules", type=Path, metavar="FILE", help="started server: these rules")
    where.add_argument(
        "--server-processes",
        type=_processes,
        default=1,
        metavar="N|auto",
        help="started server: --processes (auto: one per available core; default 1)",
    )
    where.add_argument(
        "--server-workers", type=int, metavar="N", help="started and sync baseline: threads"
    )
    where.add_argument(
        "--baseline-processes",
        type=int,
        metavar="N",
        help="processes of each baseline (default: the started server's, else 1)",
    )

    load = parser.add_argument_group("load")
    mode = load.add_mutually_exclusive_group()
    mode.add_argument(
        "--concurrency", type=int, metavar="N", help="closed loop: N calls in flight (default 16)"
    )
    mode.add_argument("--rate", type=float, metavar="R", help="open loop: R calls/s in total")
    load.add_argument(
        "--max-in-flight", type=int, metavar="N", help="open loop: cap per process (default 1000)"
    )
    load.add_argument("--duration", type=float, metavar="S", help="measured seconds (default 10)")
    load.add_argument("--warmup", type=float, metavar="S", help="unmeasured seconds first (2)")
    load.add_argument("--processes", type=int, metavar="P", help="client processes (default 1)")
    load.add_argument(
        "--connections", type=int, metavar="C", help="connections per process (default 4)"
    )
    load.add_argument("--timeout", type=float, metavar="S", help="per-call deadline (default 5)")

    mix = parser.add_argument_group("mix")
    mix.add_argument("--visitors", type=int, metavar="N", help="population size (default 10000)")
    mix.add_argument("--zipf", type=float, metavar="S", help="Zipf exponent (default 1.1)")
    mix.add_argument("--placements", metavar="A,B,...", help="placement ids (default: demo's)")
    mix.add_argument(
        "--placements-per-call", metavar="N|MIN-MAX", help="placements per Decide (default 1-5)"
    )
    mix.add_argument(
        "--track-ratio", type=float, metavar="F", help="share of Track calls (default 0.1)"
    )
    mix.add_argument("--track-batch", type=int, metavar="N", help="events per Track (default 10)")
    mix.add_argument("--no-seed", action="store_true", help="do not seed profiles first")
    mix.add_argument("--seed", type=int, metavar="N", help="random seed (default 1)")

    out = parser.add_argument_group("report")
    out.add_argument(
        "--baseline",
        action="store_true",
        help="also load the no-logic servers (sync, asyncio); ratios against the faster",
    )
    out.add_argument("--json", action="store_true", help="print the report as JSON")
    out.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    parser.set_defaults(handler=cmd_loadtest)
    return parser


def _option(args: argparse.Namespace, name: str) -> Any:
    value = getattr(args, name, None)
    return DEFAULTS[name] if value is None else value


def _processes(text: str) -> int:
    if text == "auto":
        # The cores this process may run on, which is what a server started from here gets.
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or auto, got {text!r}") from None


def _range(text: str) -> tuple[int, int]:
    low, sep, high = text.partition("-")
    try:
        return (int(low), int(high)) if sep else (int(low), int(low))
    except ValueError:
        raise ValueError(f"--placements-per-call {text!r}: expected N or MIN-MAX") from None


def build_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The run's settings from the arguments, checked; ValueError names the bad option."""
    s = {name: _option(args, name) for name in DEFAULTS}
    s["rate"] = args.rate
    # A started server's store is thrown away; a --target's is someone's data.
    s["writes"] = args.target is None or args.allow_writes
    if not s["writes"]:
        if args.track_ratio:
            raise ValueError(
                "--track-ratio: Track calls store events in the target's store; "
                "add --allow-writes if that is what you want"
            )
        s["track_ratio"] = 0.0
    s["placements_per_call"] = _range(str(s["placements_per_call"]))
    if args.placements:
        s["placements"] = tuple(p.strip() for p in args.placements.split(",") if p.strip())
    else:
        from loadtest.workload import DEFAULT_PLACEMENTS

        s["placements"] = DEFAULT_PLACEMENTS
    low, high = s["placements_per_call"]
    if high > len(s["placements"]):
        # A request may not name a placement twice, so a call asks for at most them all.
        s["placements_per_call"] = (min(low, len(s["placements"])), len(s["placements"]))
    checks = [
        ("--duration", s["duration"] > 0),
        ("--warmup", s["warmup"] >= 0),
        ("--concurrency", s["concurrency"] >= 1),
        ("--rate", args.rate is None or args.rate > 0),
        ("--processes", 1 <= s["processes"] <= 64),
        ("--connections", s["connections"] >= 1),
        ("--timeout", s["timeout"] > 0),
        ("--visitors", s["visitors"] >= 1),
        ("--zipf", s["zipf"] >= 0),
        ("--max-in-flight", s["max_in_flight"] >= 1),
        ("--server-processes", args.server_processes >= 1),
        ("--baseline-processes", args.baseline_processes is None or args.baseline_processes >= 1),
    ]
    for option, ok in checks:
        if not ok:
            raise ValueError(f"{option}: out of range")
    if s["duration"] + s["warmup"] > MAX_SECONDS:
        raise ValueError(f"--warmup plus --duration must be at most {MAX_SECONDS:g} s")
    if args.target and (args.rules or args.server_processes != 1):
        raise ValueError("--rules and --server-processes apply only to a server it starts")
    s["target"] = args.target
    s["baseline"] = args.baseline
    s["baseline_processes"] = args.baseline_processes or (
        1 if args.target else args.server_processes
    )
    return s


def cmd_loadtest(args: argparse.Namespace) -> int:
    """Run a load test as the arguments say; see the module docstring for exit codes."""
    from cli import EXIT_ERROR, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE, CliError

    try:
        settings = build_settings(args)
        from loadtest.workload import WorkloadSpec

        workload = WorkloadSpec(
            visitors=settings["visitors"],
            writes=settings["writes"],
            zipf_s=settings["zipf"],
            placements=settings["placements"],
            placements_per_call=settings["placements_per_call"],
            track_ratio=settings["track_ratio"],
            track_batch=settings["track_batch"],
            seed=settings["seed"],
        )
    except ValueError as e:
        raise CliError(str(e), EXIT_USAGE) from e
    from loadtest.targets import TargetError, check_loopback

    if args.target and not args.allow_remote:
        try:
            check_loopback(args.target)
        except TargetError as e:
            raise CliError(str(e), EXIT_USAGE) from e
    try:
        report = run(settings, workload, args)
    except TargetError as e:
        raise CliError(str(e), EXIT_UNAVAILABLE) from e
    if args.json:
        print(report.to_json())
    else:
        print(report.to_text())
    return EXIT_ERROR if report.failed_calls else EXIT_OK


def run(settings: dict[str, Any], workload: Any, args: argparse.Namespace) -> Any:
    """Start what is needed, seed, load, compare, stop; returns the ``Report``."""
    from loadtest.report import Report
    from loadtest.targets import start_decide

    api_key = args.api_key or os.environ.get("DECIDE_API_KEY")
    notes: list[str] = []
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="decide-lt-")))
        server = None
        target = settings["target"]
        if target is None:
            server = start_decide(
                workdir,
                rules_file=args.rules,
                processes=args.server_processes,
                max_workers=args.server_workers,
            )
            stack.callback(server.stop)
            target = server.target
        settings["seeded"] = _seed(target, settings, workload, api_key, args, notes)
        ours = _load(
            "decide", target, settings, workload, api_key, args, server.pids if server else None
        )
        baselines = {}
        if args.baseline:
            baselines = _load_baselines(settings, workload, args, target, api_key, workdir)
        if server is not None:
            code = server.stop()
            if code != 0:
                notes.append(f"note: the started server exited with code {code}")
    report_settings = {k: v for k, v in settings.items() if k not in ("placements",)} | {
        "placements": list(settings["placements"]),
        "target": target,
    }
    return Report(report_settings, ours, baselines, notes)


def _load_baselines(
    settings: dict[str, Any],
    workload: Any,
    args: argparse.Namespace,
    target: str,
    api_key: str | None,
    workdir: Path,
) -> dict[str, Any]:
    """The same load against each kind of no-logic server, one after the other, each
    answering Decide with a response captured from ``target``."""
    from loadtest.baseline import KINDS
    from loadtest.targets import sample_response, start_baseline
    from loadtest.workload import decide_requests

    response = sample_response(target, decide_requests(workload, workload.seed, 1)[0], api_key)
    summaries = {}
    for kind in KINDS:
        base = start_baseline(
            workdir,
            kind=kind,
            processes=settings["baseline_processes"],
            workers=args.server_workers,
            decide_response=response,
        )
        if base.info.get("loop"):
            settings["aio_loop"] = base.info["loop"]  # uvloop when installed
        try:
            summaries[kind] = _load(
                f"baseline {kind}", base.target, settings, workload, None, args, base.pids
            )
        finally:
            base.stop()
    return summaries


def _seed(
    target: str,
    settings: dict[str, Any],
    workload: Any,
    api_key: str | None,
    args: argparse.Namespace,
    notes: list[str],
) -> str | None:
    from loadtest.targets import TargetError, seed_profiles

    if args.no_seed or not settings["writes"]:
        return None
    seeded = seed_profiles(target, workload.visitors, api_key)
    if seeded is None:
        if workload.track_ratio > 0:
            raise TargetError(
                f"{target} has no EventService: run with --track-ratio 0 (and --no-seed)"
            )
        notes.append("note: the target has no EventService; profiles were not seeded")
        return None
    if not args.quiet:
        print(
            f"seeded {workload.visitors:,d} visitors: {seeded.accepted:,d} events stored, "
            f"{seeded.duplicates:,d} already there, in {seeded.seconds:.1f} s",
            file=sys.stderr,
        )
    return f"{seeded.accepted + seeded.duplicates:,d} events"


def _load(
    label: str,
    target: str,
    settings: dict[str, Any],
    workload: Any,
    api_key: str | None,
    args: argparse.Namespace,
    pids: Callable[[], list[int]] | None,
) -> Any:
    from loadtest.runner import ProgressLine, measure
    from loadtest.worker import WorkerSpec

    spec = WorkerSpec(
        target=target,
        workload=workload,
        warmup=settings["warmup"],
        duration=settings["duration"],
        concurrency=settings["concurrency"],
        rate=settings["rate"],
        connections=settings["connections"],
        timeout=settings["timeout"],
        api_key=api_key,
        max_in_flight=settings["max_in_flight"],
        run_id=f"{int(time.time() * 1000):x}",
    )
    progress = None if args.quiet else ProgressLine(label, settings["processes"])
    return measure(spec, settings["processes"], progress, pids)
