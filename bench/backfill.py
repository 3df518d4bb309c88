"""The activity back-fill at the store level: what completing a profile costs, and what a
count of the profiles still short costs.

Back-fill: ``--visitors`` visitors with realistic 90-day histories
(``synthetic.visitor_history``: median 32 events) are tracked into a fresh SQLite
profile store keeping no activity, as a server did before the rules read any; then the
default document's declaration (the journey segments) is given and the store's two
back-fill steps run by hand, as the worker runs them: ``uncovered`` (count), then
``backfill_some`` in batches of ``server.profiles.backfill.BATCH`` visitors until none is
left. Reported: CPU and wall time per visitor, and per batch (the time a batch holds the
write lock), medians over ``--rounds`` fresh stores.

Count: a store of ``--profiles`` profile rows (small documents, three distinct coverage
keys, as after two publishes) is built directly, and ``uncovered`` is timed: one scan of
the ``activity_key`` index, which the worker repeats after each pass and every five
minutes. No timing is asserted.

    .venv/bin/python bench/backfill.py [--visitors 2000] [--profiles 1000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import synthetic

from decision import Event, compile_ruleset, default_document
from server.profiles.backfill import BATCH
from server.profiles.folding import Coverage
from server.profiles.sqlite import SQLiteProfileStore


def histories(visitors: int, seed: int = 11) -> list[Event]:
    """Every visitor's 90-day history, with distinct event ids."""
    rng = random.Random(seed)
    events = []
    for v in range(visitors):
        for i, e in enumerate(synthetic.visitor_history(rng)):
            events.append(Event(f"v{v}-{i}", f"v{v}", e.type, e.timestamp, e.properties))
    return events


def backfill_round(
    path: Path, events: list[Event], coverage: Coverage
) -> tuple[float, float, list[float]]:
    """(CPU seconds, wall seconds, wall seconds of each batch) to complete every profile."""
    with SQLiteProfileStore(path, cache_size=0) as store:
        for start in range(0, len(events), 1000):
            store.track(events[start : start + 1000])
    with SQLiteProfileStore(path, cache_size=0) as store:  # not declared: no worker
        cpu, wall = time.process_time(), time.perf_counter()
        found = store.uncovered(coverage)
        batches = []
        while True:
            started = time.perf_counter()
            taken = store.backfill_some(coverage, found, BATCH)
            if not taken:
                break
            batches.append(time.perf_counter() - started)
        return time.process_time() - cpu, time.perf_counter() - wall, batches


def count_round(path: Path, profiles: int, coverage: Coverage) -> float:
    """Seconds of one ``uncovered`` over ``profiles`` rows."""
    with SQLiteProfileStore(path, cache_size=0) as store:
        started = time.perf_counter()
        found = store.uncovered(coverage)
        elapsed = time.perf_counter() - started
    assert found.count == profiles - (profiles + 2) // 3, found  # rows i with i % 3 != 0
    return elapsed


def build_count_store(path: Path, profiles: int, coverage: Coverage) -> None:
    """``profiles`` copies of one stored profile (kept without activity) under three
    coverage keys: the declaration's own (row i with i % 3 == 0) and two others, which
    the count resolves by reading that state: it covers nothing the rules read."""
    from decision.profile import rebuild

    events = histories(1, seed=5)
    own = coverage.key(rebuild(events, coverage.needs))
    keys = [own, "0" * 16, "1" * 16]
    with SQLiteProfileStore(path, cache_size=0) as store:
        store.track(events)
    with sqlite3.connect(path) as conn:
        document, state = conn.execute("SELECT document, state FROM profiles").fetchone()
        conn.execute("DELETE FROM profiles")
        conn.executemany(
            "INSERT INTO profiles (visitor_id, document, state, activity_key) VALUES (?, ?, ?, ?)",
            ((f"p{i:08d}", document, state, keys[i % 3]) for i in range(profiles)),
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--visitors", type=int, default=2000)
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    coverage = Coverage(compile_ruleset(default_document()).activity)
    events = histories(args.visitors)
    print(
        f"back-fill: {args.visitors:,} visitors, {len(events):,} events"
        f" ({len(events) / args.visitors:.1f} per visitor), default rules' declaration,"
        f" batches of {BATCH}"
    )
    cpus, walls, per_batch = [], [], []
    for round_ in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            cpu, wall, batches = backfill_round(Path(tmp) / "b.db", events, coverage)
        cpus.append(cpu / args.visitors * 1e3)
        walls.append(wall / args.visitors * 1e3)
        per_batch.append(statistics.median(batches) * 1e3)
        print(
            f"  round {round_ + 1}: {cpus[-1]:.2f} ms CPU and {walls[-1]:.2f} ms wall per visitor,"
            f" median batch {per_batch[-1]:.0f} ms (max {max(batches) * 1e3:.0f} ms)"
        )
    print(
        f"median: {statistics.median(cpus):.2f} ms CPU per visitor,"
        f" {statistics.median(walls):.2f} ms wall, batch {statistics.median(per_batch):.0f} ms"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "count.db"
        build_count_store(path, args.profiles, coverage)
        times = [count_round(path, args.profiles, coverage) for _ in range(args.rounds)]
    print(
        f"count over {args.profiles:,} profiles (3 coverage keys):"
        f" median {statistics.median(times) * 1e3:.0f} ms ({', '.join(f'{t * 1e3:.0f}' for t in times)})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
