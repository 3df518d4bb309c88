"""Insights benchmark: EstimateSegment over 1,000,000 stored profiles, and what recording
exposures adds to Decide.

Store: ``bench/profile_store.py``'s fast builder (1,000,000 profiles from 100 realistic
event-stream shapes, written with executemany; ``--store PATH`` keeps the file and
reuses it on the next run), read once so that the OS page cache holds it (as on a busy
server). Then ``server.analytics.estimates.estimate`` with the demo rules' eleven segments, in
the calling thread (``--processes 1``) and over a ``ScanPool`` of worker processes
(default: one per core): cold (size cache emptied before each run: every segment
evaluated on every profile) and warm (sizes cached: segments evaluated only on matching
profiles); the pool's first call, which starts the workers, is timed apart. Medians of
``--runs`` runs, each printed with the 1-minute load average when it started, and the
CPU seconds the scan took in all processes (the figure least disturbed by other jobs
on a shared machine). Then ``segment_sizes`` and a full ``export``, each timed once.

Decide: ``DecisionServicer.Decide`` called in-process (no network) for the demo's
``home_hero`` and ``popup`` placements, with and without an ``ExposureRecorder``
behind it; reported as microseconds per call, median of 5 runs of 20,000 calls.

    .venv/bin/python bench/estimate.py [--visitors 1000000] [--dir DIR | --store PATH]
        [--processes 1,2] [--runs 5] [--skip-decide]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from profile_store import NOW, build_store

import decision
from protos import decisioning_pb2 as pb
from server.analytics import estimates
from server.analytics import scans as audiences
from server.analytics.exposures import ExposureRecorder
from server.analytics.scan_pool import ScanPool
from server.api.decision_service import DecisionServicer
from server.profiles.cache import EmptyProfileStore
from server.profiles.sqlite import SQLiteProfileStore
from server.rules.documents import dump_document
from server.rules.snapshot import build_snapshot

FILTER = {"customer_segment.outbounds_value_total": {"$gte": 500}, "visits": {"$gte": 2}}


def _cpu_seconds(pool: ScanPool | None) -> float:
    """CPU seconds used so far by this process and the pool's worker processes."""
    total = time.process_time()
    executor = getattr(pool, "_executor", None)
    for pid in getattr(executor, "_processes", None) or {}:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _busy_seconds() -> float:
    """CPU seconds every process on the machine has used so far (``/proc/stat``)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _timed(
    run: Callable[[], Any], pool: ScanPool | None, runs: int, before: Callable[[], None]
) -> tuple[float, float, list[str]]:
    """Median wall and CPU seconds of ``runs`` calls, and each run's line: with the load
    average when it started and the cores other processes kept busy meanwhile."""
    walls, cpus, lines = [], [], []
    for _ in range(runs):
        before()
        load = os.getloadavg()[0]
        busy, cpu, started = _busy_seconds(), _cpu_seconds(pool), time.perf_counter()
        run()
        walls.append(time.perf_counter() - started)
        cpus.append(_cpu_seconds(pool) - cpu)
        others = max(0.0, _busy_seconds() - busy - cpus[-1]) / walls[-1]
        lines.append(
            f"{walls[-1]:.2f} s (cpu {cpus[-1]:.2f} s, load {load:.2f}, others {others:.1f} cores)"
        )
    return statistics.median(walls), statistics.median(cpus), lines


def bench_scan(path: Path, visitors: int, processes: list[int], runs: int) -> None:
    if not path.exists():
        built = build_store(path, visitors)
        print(f"store: {visitors:,} profiles built in {built:.1f} s")
    for file in path.parent.glob(path.name + "*"):
        with file.open("rb") as f:
            while f.read(1 << 24):
                pass
    ruleset = decision.compile_ruleset(decision.demo_document())
    predicate = decision.compile_filter(FILTER)
    with closing(audiences.connect(path)) as conn:
        (stored,) = conn.execute("SELECT count(*) FROM profiles").fetchone()
    print(f"EstimateSegment on {stored:,} profiles, {FILTER}, 11 segments; median of {runs}")
    result = None
    for count in processes:
        pool = ScanPool(count, min_profiles=0) if count > 1 else None
        sizes = estimates.SizeCache()

        def run() -> None:
            nonlocal result
            result = estimates.estimate(path, predicate, ruleset, NOW, pool=pool, sizes=sizes)

        try:
            label = f"{count} process{'es' if count > 1 else ''}"
            if pool is not None:
                load, started = os.getloadavg()[0], time.perf_counter()
                run()
                print(
                    f"  {label}: first call (starts the workers, cold sizes)"
                    f" {time.perf_counter() - started:.2f} s (load {load:.2f})"
                )
            for name, before in (("cold", sizes.clear), ("warm", lambda: None)):
                if name == "warm":
                    run()  # fill the size cache
                wall, cpu, lines = _timed(run, pool, runs, before)
                print(
                    f"  {label}: {name} {wall:6.2f} s, cpu {cpu:.2f} s"
                    f" ({cpu / stored * 1e6:.1f} us CPU/profile)  runs: {'; '.join(lines)}"
                )
        finally:
            if pool is not None:
                pool.close()
    assert result is not None
    print(f"  ({result.matching:,} match, {result.profiles:,} profiles)")
    with closing(audiences.connect(path)) as conn:
        started = time.perf_counter()
        total, _sizes = audiences.segment_sizes(conn, ruleset, NOW)
        sizes_s = time.perf_counter() - started
        started = time.perf_counter()
        exported = sum(len(p) for p in audiences.export(conn, "new_visitors", ruleset, NOW, 1000))
        export_s = time.perf_counter() - started
    print(f"  segment sizes    {sizes_s:6.2f} s  (11 segments, {total:,} profiles)")
    print(f"  ExportSegment    {export_s:6.2f} s  ({exported:,} ids of new_visitors)")


class _Source:
    def __init__(self) -> None:
        self.snapshot = build_snapshot(
            1, dump_document(decision.demo_document()), datetime.now(UTC)
        )


class _Context:
    def abort_with_status(self, status: Any) -> None:  # pragma: no cover - never fails here
        raise RuntimeError(status)

    def code(self) -> None:
        return None


def bench_decide(directory: Path, calls: int = 20_000, runs: int = 5) -> None:
    path = directory / "exposures.db"
    SQLiteProfileStore(path).close()
    request = pb.DecideRequest(visitor_id="", placements=["home_hero", "popup"])
    results = {}
    for label in ("without exposures", "with exposures"):
        recorder = ExposureRecorder(path) if label == "with exposures" else None
        servicer = DecisionServicer(_Source(), EmptyProfileStore(), exposures=recorder)
        timings = []
        for run in range(runs):
            started = time.perf_counter()
            for i in range(calls):
                request.visitor_id = f"visitor-{run}-{i}"
                servicer.Decide(request, _Context())  # type: ignore[arg-type]
            timings.append((time.perf_counter() - started) / calls * 1e6)
        if recorder is not None:
            recorder.close()
            print(f"  ({recorder.written:,} exposures written, {recorder.dropped} dropped)")
        results[label] = statistics.median(timings)
    base, recorded = results["without exposures"], results["with exposures"]
    print(f"Decide in-process, 2 placements, median of {runs} x {calls:,} calls")
    print(f"  without exposures {base:6.1f} us/call")
    print(
        f"  with exposures    {recorded:6.1f} us/call  (+{recorded - base:.1f} us on the call path)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--visitors", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None, help="where the files go")
    parser.add_argument(
        "--store", type=Path, default=None, help="a store file to reuse (built if absent, kept)"
    )
    parser.add_argument(
        "--processes",
        default=f"1,{os.cpu_count() or 1}",
        help="comma-separated worker counts to time (1: in the calling thread)",
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-decide", action="store_true")
    args = parser.parse_args()
    processes = sorted({int(p) for p in args.processes.split(",")})
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        if not args.skip_decide:
            bench_decide(Path(tmp))
        bench_scan(args.store or Path(tmp) / "profiles.db", args.visitors, processes, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
