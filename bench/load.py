"""Load benchmarks: decide against the no-logic baselines, on all cores, under publishes, soak.

Every figure is a median of ``--runs`` runs, and every comparison is against the
baselines measured in the same invocation on the same machine (the issue's reasoning: a
Python gRPC server that does nothing is the ceiling here, and the load generator shares
the cores). There are two baselines, sync (``grpc.server``, thread pool) and asyncio
(``grpc.aio``); each run's ratio is against the faster of the two in that run, and the
summary says which that was. Nothing here asserts; it prints figures and a verdict per
target.

    .venv/bin/python bench/load.py [--scenarios target,h2load,processes,publish,soak]
        [--runs 3] [--duration 10] [--soak-seconds 600] [--json results.json]

Scenarios (rules: ``synthetic.make_document(200, 100)``; visitors' profiles seeded
through EventService.Track first):

- ``target``: Decide with 3 placements and a stored profile, 16 calls in flight from
  the Python load tester; decide vs the faster baseline, calls/s and p99.
- ``h2load``: the same calls from h2load (a C client, so the cores go to the server);
  skipped with an install hint when h2load is missing (apt-get install nghttp2-client).
- ``processes``: ``decide serve --processes 2`` vs 1 process, 64 calls in flight (h2load
  when installed, else two Python client processes), and both baselines at the same
  process counts (SO_REUSEPORT), so each count has its own ratio.
- ``workers``: the ``target`` load against servers with 16, 8, 4 and 2 request threads.
- ``publish``: 100 rule publishes through RulesAdmin during a 60-second load of the
  default mix (Decide, 10% Track); counts failed calls.
- ``soak``: the default mix for ``--soak-seconds``; server RSS sampled every 30 s,
  failed calls counted.

``--server-pythonpath DIR`` runs decide from another checkout (e.g. ``git worktree add
/tmp/before <commit>``) to compare before and after a change; the baselines always run
from this one, so every arm is compared with the same no-logic servers. Only options
the other checkout's ``decide serve`` has are passed to it.
``--before-pythonpath DIR`` adds a third server to the ``target`` and ``h2load``
scenarios, decide from that checkout, measured in the same runs (the order rotates
each run): on a machine shared with other jobs, before and after measured minutes
apart differ more than most changes do.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import synthetic

from loadtest import h2load
from loadtest.baseline import KINDS as BASELINE_KINDS
from loadtest.runner import RunSummary, measure
from loadtest.targets import (
    ServerProcess,
    rss_bytes,
    sample_response,
    seed_profiles,
    start_baseline,
    start_decide,
)
from loadtest.worker import WorkerSpec
from loadtest.workload import WorkloadSpec, decide_requests

TARGET_CPS_RATIO = 0.85
TARGET_P99_RATIO = 1.3
TARGET_PROCESSES_RATIO = 1.2
SCENARIOS = ("target", "h2load", "processes", "workers", "publish", "soak")
WORKER_COUNTS = (16, 8, 4, 2)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


@contextmanager
def server_pythonpath(path: str | None) -> Iterator[None]:
    """Servers started inside the block import their code from ``path`` first.

    They are started as ``python -m``, which puts the working directory ahead of
    PYTHONPATH: run from a checkout, they would import that checkout's code whatever
    PYTHONPATH says. So the block also runs in ``path`` (a child process keeps the
    directory it was started in).
    """
    if path is None:
        yield
        return
    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = path + (os.pathsep + previous if previous else "")
    cwd = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(cwd)
        if previous is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = previous


class Bench:
    """Shared set-up: the rules file, the work folder, the workloads and the results."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.rules = workdir / "rules-200x100.json"
        self.rules.write_text(json.dumps(synthetic.make_document(200, 100)))
        self.alternate_rules = json.dumps(synthetic.make_document(200, 100, seed=8))
        self.decide_only = WorkloadSpec(
            visitors=args.visitors,
            placements=tuple(synthetic.PLACEMENTS),
            placements_per_call=(3, 3),
            track_ratio=0.0,
        )
        self.mixed = WorkloadSpec(
            visitors=args.visitors,
            placements=tuple(synthetic.PLACEMENTS),
            placements_per_call=(1, 4),
            track_ratio=0.1,
        )
        self.results: dict[str, Any] = {"settings": vars(args) | {"python": sys.version}}
        self.counter = 0

    def server(
        self, processes: int = 1, workers: int | None = None, pythonpath: str | None = None
    ) -> ServerProcess:
        self.counter += 1
        folder = self.workdir / f"server-{self.counter}"
        folder.mkdir()
        with server_pythonpath(pythonpath or self.args.server_pythonpath):
            server = start_decide(
                folder,
                rules_file=self.rules,
                processes=processes,
                max_workers=workers or self.args.server_workers,
            )
        seeded = seed_profiles(server.target, self.args.visitors, None)
        note = f"{seeded.accepted:,d} events in {seeded.seconds:.1f} s" if seeded else "no"
        print(f"  started decide ({processes} process(es)) on {server.target}; seeded: {note}")
        return server

    def before(self) -> ServerProcess | None:
        """decide from ``--before-pythonpath``, or None without that option."""
        if self.args.before_pythonpath is None:
            return None
        return self.server(pythonpath=self.args.before_pythonpath)

    def baselines(self, server: ServerProcess, processes: int = 1) -> dict[str, ServerProcess]:
        """Each kind of no-logic server in ``processes`` processes, answering Decide with
        a response captured from ``server``; run from this checkout."""
        request = decide_requests(self.decide_only, 1, 1)[0]
        response = sample_response(server.target, request, None)
        started: dict[str, ServerProcess] = {}
        try:
            for kind in BASELINE_KINDS:
                started[kind] = start_baseline(
                    self.workdir,
                    kind=kind,
                    processes=processes,
                    workers=self.args.server_workers,
                    decide_response=response,
                )
        except BaseException:
            for base in started.values():
                base.stop()
            raise
        loop = started["aio"].info.get("loop")
        self.results["aio_loop"] = loop
        print(f"  started baselines: sync, aio on {loop}; {processes} process(es) each")
        return started

    def load(
        self,
        target: ServerProcess,
        workload: WorkloadSpec,
        *,
        duration: float | None = None,
        concurrency: int = 16,
        processes: int = 1,
    ) -> RunSummary:
        spec = WorkerSpec(
            target=target.target,
            workload=workload,
            warmup=self.args.warmup,
            duration=duration or self.args.duration,
            concurrency=concurrency,
            connections=max(4, concurrency // 4),
            run_id=f"b{time.time_ns():x}",
        )
        return measure(spec, processes, None, target.pids)


def _row(label: str, s: RunSummary) -> str:
    cpu = s.server.get("cpu_us_per_call", 0)
    errors = sum(s.errors.values())
    return (
        f"    {label:9} {s.calls_per_second:9,.0f} calls/s  p50 {s.latency_ms['p50']:6.2f}  "
        f"p99 {s.latency_ms['p99']:6.2f}  p99.9 {s.latency_ms['p99.9']:6.2f} ms  "
        f"server {cpu:5.0f} us/call  client CPU {s.client_cpu_percent:3.0f}%  errors {errors}"
    )


def compare(
    bench: Bench,
    title: str,
    ours: Callable[[], dict[str, float]],
    baselines: dict[str, Callable[[], dict[str, float]]],
    before: Callable[[], dict[str, float]] | None = None,
) -> dict[str, Any]:
    """Run each arm ``runs`` times, rotating which goes first; medians and median ratios.

    Each run's ratios are against the faster baseline of that run (by calls/s), and the
    summary counts which kind that was. ``before`` (decide from ``--before-pythonpath``)
    adds an arm, and ratios of decide to it: calls/s, and server CPU per call (the
    figure least disturbed by other jobs on the machine).
    """
    arms = [("decide", ours)] + [(f"baseline_{kind}", fn) for kind, fn in baselines.items()]
    if before is not None:
        arms.append(("before", before))
    runs: list[dict[str, Any]] = []
    for i in range(bench.args.runs):
        shift = i % len(arms)
        order = arms[shift:] + arms[:shift]
        figures: dict[str, Any] = {label: fn() for label, fn in order}
        faster = max(baselines, key=lambda kind: figures[f"baseline_{kind}"]["cps"])
        base = figures[f"baseline_{faster}"]
        figures["faster"] = faster
        figures["ratio_cps"] = figures["decide"]["cps"] / base["cps"]
        figures["ratio_p99"] = figures["decide"]["p99"] / base["p99"]
        figures["ratio_cpu"] = figures["decide"]["server_us_per_call"] / max(
            base["server_us_per_call"], 1e-9
        )
        line = (
            f"  run {i + 1}: against {faster} (the faster): calls/s ratio "
            f"{figures['ratio_cps']:.3f}, p99 ratio {figures['ratio_p99']:.3f}, "
            f"server us/call ratio {figures['ratio_cpu']:.3f}"
        )
        if before is not None:
            figures["vs_before_cps"] = figures["decide"]["cps"] / figures["before"]["cps"]
            figures["vs_before_cpu"] = figures["decide"]["server_us_per_call"] / max(
                figures["before"]["server_us_per_call"], 1e-9
            )
            line += (
                f"; vs before: calls/s {figures['vs_before_cps']:.3f}, "
                f"server us/call {figures['vs_before_cpu']:.3f}"
            )
        runs.append(figures)
        print(line)
    summary: dict[str, Any] = {"runs": runs, "load_average": os.getloadavg()[0]}
    for label, _ in arms:
        summary[label] = {
            key: round(median([r[label][key] for r in runs]), 3) for key in runs[0][label]
        }
    ratios = ["ratio_cps", "ratio_p99", "ratio_cpu"]
    ratios += ["vs_before_cps", "vs_before_cpu"] if before else []
    for key in ratios:
        summary[key] = round(median([r[key] for r in runs]), 3)
    wins = {kind: sum(1 for r in runs if r["faster"] == kind) for kind in baselines}
    summary["faster_baseline_runs"] = wins
    summary["faster_baseline"] = max(wins, key=lambda kind: wins[kind])
    if before is not None:
        print(
            f"  {title}: vs before (medians of per-run ratios): calls/s "
            f"{summary['vs_before_cps']:.2f}x, server us/call {summary['vs_before_cpu']:.2f}x; "
            f"before {summary['before']['cps']:,.0f} calls/s, "
            f"{summary['before']['server_us_per_call']:.0f} us/call"
        )
    cps_ok = summary["ratio_cps"] >= TARGET_CPS_RATIO
    p99_ok = summary["ratio_p99"] <= TARGET_P99_RATIO
    bases = ", ".join(f"{kind} {summary[f'baseline_{kind}']['cps']:,.0f}" for kind in baselines)
    faster_in = ", ".join(f"{kind} in {n}" for kind, n in wins.items() if n)
    print(
        f"  {title}: medians of {len(runs)}: decide {summary['decide']['cps']:,.0f} calls/s, "
        f"baselines {bases}; faster baseline: {faster_in} of {len(runs)} runs; ratio to the "
        f"faster {summary['ratio_cps']:.2f}x (target >= {TARGET_CPS_RATIO}: "
        f"{'met' if cps_ok else 'MISSED'}); p99 ratio {summary['ratio_p99']:.2f}x (target <= "
        f"{TARGET_P99_RATIO}: {'met' if p99_ok else 'MISSED'}); server us/call ratio "
        f"{summary['ratio_cpu']:.2f}x; load average {summary['load_average']:.2f}"
    )
    return summary


def _figures(s: RunSummary) -> dict[str, float]:
    return {
        "cps": s.calls_per_second,
        "p50": s.latency_ms["p50"],
        "p99": s.latency_ms["p99"],
        "p99.9": s.latency_ms["p99.9"],
        "server_us_per_call": s.server.get("cpu_us_per_call", 0.0),
        "client_cpu_percent": s.client_cpu_percent,
        "errors": float(sum(s.errors.values())),
    }


def scenario_target(bench: Bench) -> None:
    print(
        "\n[target] Decide, 3 placements, stored profiles, 200 segments / 100 campaigns, 16 in flight"
    )
    server = bench.server()
    bases = bench.baselines(server)
    old = bench.before()
    try:

        def run(target: ServerProcess, label: str) -> dict[str, float]:
            summary = bench.load(target, bench.decide_only)
            print(_row(label, summary))
            return _figures(summary)

        bench.results["target"] = compare(
            bench,
            "target",
            lambda: run(server, "decide"),
            {kind: partial(run, base, kind) for kind, base in bases.items()},
            None if old is None else lambda: run(old, "before"),
        )
    finally:
        for base in bases.values():
            base.stop()
        server.stop()
        if old is not None:
            old.stop()


def _h2load_figures(
    target: ServerProcess, label: str, connections: int, streams: int, bench: Bench
) -> dict[str, float]:
    from loadtest.targets import cpu_seconds

    # Recorded decisions, as a storefront's: the bench's servers have throwaway stores.
    body = h2load.decide_body(3, visitors=bench.args.visitors, writes=True)
    options = {"connections": connections, "streams": streams, "body": body}
    if bench.args.warmup > 0:  # a separate warm-up, so the CPU below is the measured run's
        h2load.run(target.target, duration=bench.args.warmup, warmup=0, **options)
    pids = target.pids()
    before = cpu_seconds(pids)
    result = h2load.run(target.target, duration=bench.args.duration, warmup=0, **options)
    used = cpu_seconds(pids) - before
    figures = {
        "cps": result["calls_per_second"],
        "p50": result["latency_ms"]["p50"],
        "p99": result["latency_ms"]["p99"],
        "p99.9": result["latency_ms"]["p99.9"],
        "server_us_per_call": round(used * 1e6 / max(1, result["requests"]), 1),
        "errors": float(result["failed"] + result["errored"] + result["timeout"]),
    }
    print(
        f"    {label:9} {figures['cps']:9,.0f} calls/s  p50 {figures['p50']:6.2f}  "
        f"p99 {figures['p99']:6.2f}  p99.9 {figures['p99.9']:6.2f} ms  "
        f"server {figures['server_us_per_call']:5.0f} us/call (h2load, {connections}x{streams})"
    )
    return figures


def scenario_h2load(bench: Bench) -> None:
    print("\n[h2load] the same Decide from h2load (C client): the server's own ceiling")
    if not h2load.available():
        print(f"  skipped: {h2load.INSTALL_HINT}")
        bench.results["h2load"] = {"skipped": h2load.INSTALL_HINT}
        return
    server = bench.server()
    bases = bench.baselines(server)
    old = bench.before()
    try:
        bench.results["h2load"] = compare(
            bench,
            "h2load",
            lambda: _h2load_figures(server, "decide", 1, 16, bench),
            {
                kind: partial(_h2load_figures, base, kind, 1, 16, bench)
                for kind, base in bases.items()
            },
            None if old is None else lambda: _h2load_figures(old, "before", 1, 16, bench),
        )
    finally:
        for base in bases.values():
            base.stop()
        server.stop()
        if old is not None:
            old.stop()


def scenario_processes(bench: Bench) -> None:
    print(
        "\n[processes] decide serve --processes 2 vs 1 process, 64 calls in flight; "
        "the baselines in as many processes"
    )
    use_h2load = h2load.available()
    arms = ("decide", *(f"baseline_{kind}" for kind in BASELINE_KINDS))
    results: dict[str, dict[str, list[dict[str, float]]]] = {
        count: {arm: [] for arm in arms} for count in ("1", "2")
    }
    for i in range(bench.args.runs):
        for processes in (1, 2) if i % 2 == 0 else (2, 1):
            server = bench.server(processes)
            bases = bench.baselines(server, processes)
            targets = {"decide": server} | {f"baseline_{k}": b for k, b in bases.items()}
            try:
                for arm, target in targets.items():
                    label = f"{arm.removeprefix('baseline_')} x{processes}"
                    if use_h2load:
                        figures = _h2load_figures(target, label, 16, 4, bench)
                    else:
                        summary = bench.load(target, bench.decide_only, concurrency=32, processes=2)
                        print(_row(label, summary))
                        figures = _figures(summary)
                    results[str(processes)][arm].append(figures)
            finally:
                for base in bases.values():
                    base.stop()
                server.stop()
    one, two = results["1"]["decide"], results["2"]["decide"]
    ratios = [b["cps"] / a["cps"] for a, b in zip(one, two, strict=True)]
    summary: dict[str, Any] = {
        "client": "h2load 16 connections x 4 streams" if use_h2load else "2 Python processes x 32",
        "one": {k: median([r[k] for r in one]) for k in one[0]},
        "two": {k: median([r[k] for r in two]) for k in two[0]},
        "ratio_cps": round(median(ratios), 3),
        "ratios": [round(r, 3) for r in ratios],
        "load_average": os.getloadavg()[0],
    }
    for count, by_arm in results.items():
        # Against the faster baseline of each run, as in the other scenarios.
        against = [
            max(BASELINE_KINDS, key=lambda kind: by_arm[f"baseline_{kind}"][run]["cps"])
            for run in range(bench.args.runs)
        ]
        summary[f"baselines_{count}"] = {
            kind: {k: median([r[k] for r in by_arm[f"baseline_{kind}"]]) for k in one[0]}
            for kind in BASELINE_KINDS
        }
        summary[f"ratio_to_baseline_{count}"] = round(
            median(
                [
                    by_arm["decide"][run]["cps"] / by_arm[f"baseline_{kind}"][run]["cps"]
                    for run, kind in enumerate(against)
                ]
            ),
            3,
        )
        summary[f"faster_baseline_{count}"] = against
    ok = summary["ratio_cps"] >= TARGET_PROCESSES_RATIO
    print(
        f"  processes: medians: 1 process {summary['one']['cps']:,.0f} calls/s, 2 processes "
        f"{summary['two']['cps']:,.0f}; ratio {summary['ratio_cps']:.2f}x "
        f"(target >= {TARGET_PROCESSES_RATIO}: {'met' if ok else 'MISSED'}); against the faster "
        f"baseline in as many processes: 1 process {summary['ratio_to_baseline_1']:.2f}x "
        f"({', '.join(summary['faster_baseline_1'])}), 2 processes "
        f"{summary['ratio_to_baseline_2']:.2f}x ({', '.join(summary['faster_baseline_2'])}); "
        f"load average {summary['load_average']:.2f}"
    )
    bench.results["processes"] = summary


def scenario_workers(bench: Bench) -> None:
    print(f"\n[workers] request threads {WORKER_COUNTS}: the target load, decide only")
    servers = {w: bench.server(workers=w) for w in WORKER_COUNTS}
    results: dict[int, list[dict[str, float]]] = {w: [] for w in WORKER_COUNTS}
    try:
        for i in range(bench.args.runs):
            order = (
                WORKER_COUNTS[i % len(WORKER_COUNTS) :] + WORKER_COUNTS[: i % len(WORKER_COUNTS)]
            )
            for w in order:
                summary = bench.load(servers[w], bench.decide_only)
                print(_row(f"{w} thr", summary))
                results[w].append(_figures(summary))
    finally:
        for server in servers.values():
            server.stop()
    medians = {
        str(w): {k: round(median([r[k] for r in runs]), 3) for k in runs[0]}
        for w, runs in results.items()
    }
    for w, figures in medians.items():
        print(
            f"  {w:>2} threads: median {figures['cps']:,.0f} calls/s, p99 {figures['p99']:.2f} ms, "
            f"server {figures['server_us_per_call']:.0f} us/call"
        )
    bench.results["workers"] = medians


def scenario_publish(bench: Bench) -> None:
    print("\n[publish] 100 rule publishes during a 60-second load (Decide + 10% Track)")
    import grpc

    from protos import decisioning_pb2 as pb
    from protos import decisioning_pb2_grpc as pb_grpc

    server = bench.server()
    documents = [bench.rules.read_text(), bench.alternate_rules]
    published: list[int] = []
    failures: list[str] = []
    duration = 60.0
    metadata = (("authorization", f"Bearer {server.admin_token}"),)

    def publisher() -> None:
        time.sleep(bench.args.warmup + 1)
        interval = (duration - 2) / 100
        with grpc.insecure_channel(server.target) as channel:
            stub = pb_grpc.RulesAdminStub(channel)
            for i in range(100):
                started = time.monotonic()
                try:
                    response = stub.PublishRules(
                        pb.PublishRulesRequest(
                            document_json=documents[i % 2], comment=f"bench {i}"
                        ),
                        metadata=metadata,
                        timeout=10,
                    )
                    published.append(response.version.version)
                except grpc.RpcError as exc:
                    failures.append(f"{exc.code().name}: {exc.details()}")
                time.sleep(max(0.0, interval - (time.monotonic() - started)))

    thread = threading.Thread(target=publisher, daemon=True)
    try:
        thread.start()
        summary = bench.load(server, bench.mixed, duration=duration)
        thread.join(30)
        with grpc.insecure_channel(server.target) as channel:
            status = pb_grpc.RulesAdminStub(channel).GetStatus(
                pb.GetStatusRequest(), metadata=metadata, timeout=5
            )
    finally:
        server.stop()
    print(_row("decide", summary))
    failed = sum(summary.errors.values())
    result = {
        "publishes": len(published),
        "publish_failures": failures,
        "calls": summary.calls,
        "failed_calls": failed,
        "errors": summary.errors,
        "reloads": status.reload_count,
        "serving_version": status.active_version,
        "last_published": published[-1] if published else None,
        "figures": _figures(summary),
    }
    ok = failed == 0 and len(published) == 100
    print(
        f"  publish: {len(published)} publishes ({len(failures)} failed), {status.reload_count} "
        f"reloads, {summary.calls:,d} calls, {failed} failed (target 0: {'met' if ok else 'MISSED'})"
    )
    bench.results["publish"] = result


def scenario_soak(bench: Bench) -> None:
    seconds = bench.args.soak_seconds
    print(f"\n[soak] {seconds:g} s of the default mix (Decide + 10% Track); RSS every 30 s")
    server = bench.server()
    samples: list[tuple[float, float]] = []
    stop = threading.Event()
    started = time.monotonic()

    def sampler() -> None:
        while not stop.wait(30 if samples else bench.args.warmup):
            rss = rss_bytes(server.pids()) / 2**20
            samples.append((round(time.monotonic() - started), round(rss, 1)))

    thread = threading.Thread(target=sampler, daemon=True)
    try:
        thread.start()
        summary = bench.load(server, bench.mixed, duration=seconds)
        stop.set()
        thread.join(5)
    finally:
        server.stop()
    print(_row("decide", summary))
    failed = sum(summary.errors.values())
    first, last = samples[0][1], samples[-1][1]
    result = {
        "seconds": seconds,
        "calls": summary.calls,
        "failed_calls": failed,
        "errors": summary.errors,
        "rss_mb": samples,
        "rss_mb_start": first,
        "rss_mb_end": last,
        "rss_mb_max": max(rss for _, rss in samples),
        "figures": _figures(summary),
    }
    print(
        f"  soak: RSS {first:.1f} MB after warm-up, {last:.1f} MB at the end "
        f"(max {result['rss_mb_max']:.1f}); {summary.calls:,d} calls, {failed} failed"
    )
    print("  RSS samples (s, MB): " + ", ".join(f"{t}:{mb}" for t, mb in samples))
    bench.results["soak"] = result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--visitors", type=int, default=10_000)
    parser.add_argument("--soak-seconds", type=float, default=600.0)
    parser.add_argument(
        "--server-workers", type=int, help="thread pool of decide and the sync baseline"
    )
    parser.add_argument("--server-pythonpath", help="run the servers from this checkout")
    parser.add_argument(
        "--before-pythonpath",
        help="target and h2load: also run decide from this checkout, in the same runs",
    )
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    args = parser.parse_args()
    chosen = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(unknown)}")
    print(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} cores, load average "
        f"{Path('/proc/loadavg').read_text().split()[0] if Path('/proc/loadavg').exists() else '?'}"
    )
    with tempfile.TemporaryDirectory(prefix="decide-bench-") as tmp:
        bench = Bench(args, Path(tmp))
        for name in chosen:
            globals()[f"scenario_{name}"](bench)
    if args.json:
        args.json.write_text(json.dumps(bench.results, indent=2, default=str))
        print(f"\nfigures written to {args.json}")


if __name__ == "__main__":
    main()
