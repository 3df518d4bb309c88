"""Insights benchmark: EstimateSegment over 1,000,000 stored profiles, and what recording
exposures adds to Decide.

Store: ``bench/profile_store.py``'s fast builder (1,000,000 profiles from 100 realistic
event-stream shapes, written with executemany), then ``server.audiences.estimate`` with
the demo rules' eleven segments: once with an empty size cache (every segment evaluated
on every profile) and three times with the sizes cached (segments evaluated only on
matching profiles; median reported); then ``segment_sizes`` and a full ``export``, each
timed once after one warm-up read of the file (the OS page cache holds it, as on a busy
server).

Decide: ``DecisionServicer.Decide`` called in-process (no network) for the demo's
``home_hero`` and ``popup`` placements, with and without an ``ExposureRecorder``
behind it; reported as microseconds per call, median of 5 runs of 20,000 calls.

    .venv/bin/python bench/estimate.py [--visitors 1000000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
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
from server import audiences
from server.documents import dump_document
from server.exposures import ExposureRecorder
from server.profile_store import SQLiteProfileStore
from server.profiles import EmptyProfileStore
from server.servicer import DecisionServicer
from server.snapshot import build_snapshot

FILTER = {"customer_segment.outbounds_value_total": {"$gte": 500}, "visits": {"$gte": 2}}


def bench_scan(directory: Path, visitors: int) -> None:
    path = directory / "profiles.db"
    built = build_store(path, visitors)
    for file in directory.glob("profiles.db*"):
        with file.open("rb") as f:
            while f.read(1 << 24):
                pass
    ruleset = decision.compile_ruleset(decision.demo_document())
    predicate = decision.compile_filter(FILTER)
    print(f"store: {visitors:,} profiles built in {built:.1f} s")
    with closing(audiences.connect(path)) as conn:
        audiences._SIZES.clear()
        started = time.perf_counter()
        audiences.estimate(conn, predicate, ruleset, NOW)
        cold_s = time.perf_counter() - started
        warm = []
        for _ in range(3):
            started = time.perf_counter()
            result = audiences.estimate(conn, predicate, ruleset, NOW)
            warm.append(time.perf_counter() - started)
        estimate_s = statistics.median(warm)
        started = time.perf_counter()
        total, _sizes = audiences.segment_sizes(conn, ruleset, NOW)
        sizes_s = time.perf_counter() - started
        started = time.perf_counter()
        exported = sum(len(p) for p in audiences.export(conn, "new_visitors", ruleset, NOW, 1000))
        export_s = time.perf_counter() - started
    print(
        f"  EstimateSegment  {estimate_s:6.2f} s  ({estimate_s / visitors * 1e6:.1f} us/profile;"
        f" {result.matching:,} match; segment sizes cached; median of 3)"
    )
    print(
        f"  (cold size cache {cold_s:6.2f} s: filter + 11 segments on every profile;"
        f" load {os.getloadavg()[0]:.2f})"
    )
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        bench_decide(Path(tmp))
        bench_scan(Path(tmp), args.visitors)
    return 0


if __name__ == "__main__":
    sys.exit(main())
