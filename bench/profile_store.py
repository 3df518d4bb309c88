"""Profile store benchmark, at the store level (no gRPC): durable ingest and GetProfile.

Ingest: ``SQLiteProfileStore.track`` in batches of 100 validated events (sessions, page
and product views, carts, purchases, returns, campaign interactions; about 1 identify
per 1,000 events) over 10,000 visitors, from one thread, on a fresh file with WAL and
synchronous=FULL: every batch is one fsynced transaction. Validation is timed
separately. Run twice: visitors drawn at random for every event (each batch touches
~100 profiles: the worst case), and 10 visitors per batch (a collector batching by
session). Reported: events per second.

Reads: a store of ``--visitors`` profiles (default 1,000,000). Building that through
``track`` would take minutes, so the file is built directly: one realistic event
stream per *profile shape* (100 shapes, 1 to 125 events, median 11) is folded with ``decision.profile`` and the
rendered document and state are written with ``executemany`` for every visitor,
cycling through the shapes; the events table holds one event per visitor, so the
file's indexes and page layout look like a real store's. Then ``get`` is timed for
random visitors: cold (the store's cache cleared before every call: a SQLite read and
a JSON parse, with the file in the OS page cache, as on a busy server), warm (the same
visitors read again within the TTL), and cold with the file's pages dropped from the
OS page cache first (``posix_fadvise(DONTNEED)``, as after a reboot). Reported: p50
and p99 in microseconds, and the file size.

    .venv/bin/python bench/profile_store.py [--visitors 1000000] [--events 50000]
        [--reads 20000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from decision import profile as fold
from decision import validate_events
from server.profiles.sqlite import SQLiteProfileStore

NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
BATCH = 100


def raw_events(
    count: int, visitors: int, seed: int = 1, clustered: int = 0
) -> list[dict[str, Any]]:
    """``count`` raw events of a storefront's mix over ``visitors`` visitor ids; with
    ``clustered``, each run of BATCH events comes from only that many visitors (as from
    a collector that batches by session)."""
    rng = random.Random(seed)
    events = []
    for index in range(count):
        if clustered:
            base = index // BATCH * clustered
            visitor = f"visitor-{(base + rng.randrange(clustered)) % visitors:07d}"
        else:
            visitor = f"visitor-{rng.randrange(visitors):07d}"
        roll = rng.random()
        properties: dict[str, Any] = {}
        if roll < 0.10:
            kind = "session_start"
            properties = {"referrer": "https://search.example.com/"}
        elif roll < 0.35:
            kind = "page_view"
            properties = {"url": f"/c/{rng.randrange(40)}", "category": f"cat-{rng.randrange(40)}"}
        elif roll < 0.65:
            kind = "product_view"
            properties = {
                "sku": f"SKU-{rng.randrange(5000)}",
                "category": f"cat-{rng.randrange(40)}",
                "brand": f"brand-{rng.randrange(60)}",
                "price": rng.choice([9.99, 19.99, 49.0, 120.0]),
            }
        elif roll < 0.77:
            kind = "add_to_cart"
            properties = {"sku": f"SKU-{rng.randrange(5000)}", "quantity": 1, "price": 19.99}
        elif roll < 0.80:
            kind = "remove_from_cart"
            properties = {"sku": f"SKU-{rng.randrange(5000)}"}
        elif roll < 0.84:
            kind = "purchase"
            properties = {
                "order_id": f"O-{index}",
                "value": rng.choice([25.0, 80.0, 240.0]),
                "currency": "EUR",
                "articles": rng.randrange(1, 5),
            }
        elif roll < 0.85:
            kind = "return"
            properties = {"order_id": f"O-{rng.randrange(index + 1)}", "articles": 1}
        elif roll < 0.999 or visitors < 2:
            kind = rng.choice(["campaign_impression", "campaign_click", "campaign_conversion"])
            properties = {"campaign": f"campaign-{rng.randrange(12)}", "variant": "a"}
        else:
            kind = "identify"
            properties = {"customer_id": f"customer-{rng.randrange(visitors // 2)}"}
        events.append(
            {
                "event_id": f"bench-{seed}-{index}",
                "visitor_id": visitor,
                "type": kind,
                "timestamp": (NOW - timedelta(seconds=count - index)).isoformat(),
                "properties": properties,
            }
        )
    return events


def bench_ingest(directory: Path, count: int, runs: int, clustered: int = 0) -> None:
    raw = raw_events(count, visitors=10_000, clustered=clustered)
    batches = [raw[i : i + BATCH] for i in range(0, len(raw), BATCH)]
    started = time.perf_counter()
    validated = [validate_events(batch, NOW) for batch in batches]
    validate_seconds = time.perf_counter() - started
    timings = []
    cpu = []
    for run in range(runs):
        with SQLiteProfileStore(directory / f"ingest-{clustered}-{run}.db") as store:
            accepted = 0
            started, cpu_started = time.perf_counter(), time.process_time()
            for batch in validated:
                accepted += store.track(batch).accepted
            timings.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
        assert accepted == count, f"{count - accepted} events were not new"
    track_seconds = statistics.median(timings)
    spread = f"{clustered} visitors per batch" if clustered else "visitors at random"
    print(
        f"ingest: {count:,} events, {len(batches):,} batches of {BATCH}, 10,000 visitors"
        f" ({spread}), one thread, median of {runs} runs on fresh files"
    )
    print(f"  validate_events        {count / validate_seconds:>10,.0f} events/s")
    print(
        f"  track (durable)        {count / track_seconds:>10,.0f} events/s"
        f"   ({track_seconds / len(batches) * 1000:.2f} ms per batch,"
        f" {statistics.median(cpu) / count * 1e6:.0f} us CPU per event)"
    )
    print(f"  validate + track       {count / (validate_seconds + track_seconds):>10,.0f} events/s")


def build_store(path: Path, visitors: int) -> float:
    """Write ``visitors`` profiles straight into a fresh store's tables; returns seconds."""
    shapes = []
    for shape in range(100):
        # 1 to 125 events per visitor, median 11: most visitors come once or twice.
        mine = raw_events(max(1, int(1.05**shape)), visitors=1, seed=100 + shape)
        state = fold.rebuild(validate_events(mine, NOW))
        shapes.append(
            (
                json.dumps(fold.render(state), separators=(",", ":")),
                json.dumps(state, separators=(",", ":")),
            )
        )
    started = time.perf_counter()
    with SQLiteProfileStore(path) as store:
        db = store._db.conn  # bulk load: bypasses track on purpose (see the docstring)
        db.execute("PRAGMA synchronous = OFF")
        chunk = 50_000
        for start in range(0, visitors, chunk):
            ids = [f"visitor-{i:07d}" for i in range(start, min(start + chunk, visitors))]
            db.execute("BEGIN")
            db.executemany(
                "INSERT INTO profiles (visitor_id, document, state) VALUES (?, ?, ?)",
                [(vid, *shapes[i % 100]) for i, vid in enumerate(ids, start)],
            )
            db.executemany(
                "INSERT INTO events (event_id, visitor_id, source_id, type, ts, properties)"
                " VALUES (?, ?, ?, 'session_start', '2026-06-01T00:00:00.000000Z', '{}')",
                [(f"seed-{vid}", vid, vid) for vid in ids],
            )
            db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return time.perf_counter() - started


def percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49] * 1e6, cuts[98] * 1e6


def bench_reads(directory: Path, visitors: int, reads: int) -> None:
    path = directory / "profiles.db"
    seconds = build_store(path, visitors)
    size = sum(p.stat().st_size for p in directory.glob("profiles.db*"))
    print(
        f"store: {visitors:,} profiles built in {seconds:.1f} s (executemany of "
        f"pre-rendered profiles, 100 shapes), file {size / 2**20:,.0f} MiB "
        f"({size / visitors:,.0f} bytes per visitor incl. one event row)"
    )
    rng = random.Random(3)
    wanted = [f"visitor-{rng.randrange(visitors):07d}" for _ in range(reads)]
    others = [f"visitor-{rng.randrange(visitors):07d}" for _ in range(reads)]
    files = sorted(directory.glob("profiles.db*"))
    for file in files:  # the OS page cache holds the file, as on a busy server
        with file.open("rb") as f:
            while f.read(1 << 24):
                pass
    with SQLiteProfileStore(path, cache_size=max(reads, 1), cache_ttl=600) as store:
        assert store.get(wanted[0]) is not None
        cold = timed_gets(store, wanted, clear=True)
        timed_gets(store, wanted, clear=False)  # fill the cache
        warm = timed_gets(store, wanted, clear=False)
        for file in files:  # as after a reboot: this file's pages leave the OS cache
            with file.open("rb") as f:
                os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        disk = timed_gets(store, others, clear=True)
    for name, samples in (
        ("cold (cache cleared)", cold),
        ("warm (cached)", warm),
        ("cold, file not in RAM", disk),
    ):
        p50, p99 = percentiles(samples)
        print(f"  get {name:<22} p50 {p50:>7.1f} us   p99 {p99:>7.1f} us   ({reads:,} reads)")


def timed_gets(store: SQLiteProfileStore, visitors: list[str], *, clear: bool) -> list[float]:
    """Seconds per ``get``; with ``clear``, the store's cache is emptied before each."""
    samples = []
    for visitor in visitors:
        if clear:
            store._clear_cache()
        started = time.perf_counter()
        store.get(visitor)
        samples.append(time.perf_counter() - started)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--visitors", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--reads", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3, help="ingest runs (median)")
    parser.add_argument("--dir", type=Path, default=None, help="where the files go")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        bench_ingest(Path(tmp), args.events, args.runs)
        bench_ingest(Path(tmp), args.events, args.runs, clustered=10)
        bench_reads(Path(tmp), args.visitors, args.reads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
