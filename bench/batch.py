"""DecideBatch throughput: visitor decisions per second through a real server, against the
in-process engine's own rate on the same visitors.

    .venv/bin/python bench/batch.py [--visitors 50000] [--runs 3] [--skip-record]

Store: ``bench/profile_store.py``'s builder (``--visitors`` profiles from 100 realistic
event-stream shapes) in a temporary folder, with the demo rules plus an email placement
and a newsletter campaign (a control, a variant and a 10 % holdout) for everyone. Then, each a
median of ``--runs`` runs, printed with the 1-minute load average when it started:

- **engine**: ``decision.decide_trusted`` in this process for every stored profile
  (parsed from the store's JSON first, not timed), two placements (``email_hero`` and
  ``home_hero``): the ceiling, with no I/O, no protobuf and no transport;
- **batch preview**: ``DecideBatch`` for segment ``everyone`` through a server started
  by this script on 127.0.0.1 (its own process, ``decide serve --processes 1``), read
  by the Python client in this process: the server scans the profiles, resolves
  identities and assignments, decides, encodes and streams rows; the client parses them.
  Client and server share the machine's cores;
- **batch recorded**: the same with ``record=True, channel="email"``: exposures,
  assignments and the ``campaign_served`` events (each one a profile update) are
  written as the batch goes. Each run starts from a fresh copy of the store, so every
  run writes every exposure, assignment and served campaign anew.

The target is >= 5,000 visitor decisions per second for a batch.

Then the segment sweep (``server.activation.changes``) over the same store with three
segments marked ``notify`` (``at_risk_customers``, ``lapsed_frequent_buyers``,
``high_value_customers``): the baseline sweep and a second one, in this process, as
microseconds per stored profile (``--skip-sweep`` leaves it out).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from profile_store import build_store

import decision
from client import DecisionClient
from server.rules.sqlite import SQLiteRulesStore

TOKEN = "bench-batch-token"
PLACEMENTS = ["email_hero", "home_hero"]


def rules() -> dict[str, Any]:
    """The demo rules, an email placement and a newsletter campaign for everyone."""
    document = decision.demo_document()
    document["placements"].append({"id": "email_hero", "fallback": {"headline": "Hello"}})
    document["campaigns"].append(
        {
            "id": "newsletter_email",
            "placements": ["email_hero"],
            "audience": {"segments": ["everyone"]},
            "holdout": 10,
            "variants": [
                {"id": "control", "control": True},
                {"id": "discount", "content": {"headline": "We miss you", "code": "BACK15"}},
            ],
        }
    )
    return document


def load() -> float:
    return os.getloadavg()[0]


def engine_rate(path: Path, document: dict[str, Any]) -> float:
    """Visitor decisions per second of decide_trusted over every stored profile."""
    import sqlite3

    import orjson

    ruleset = decision.compile_ruleset(document)
    with sqlite3.connect(path) as conn:
        rows = [(v, orjson.loads(d)) for v, d in conn.execute("SELECT visitor_id, document FROM profiles")]
    now = datetime.now(UTC)
    started = time.perf_counter()
    for visitor_id, profile in rows:
        decision.decide_trusted(ruleset, visitor_id, {**profile, "context": {}}, PLACEMENTS, now)
    return len(rows) / (time.perf_counter() - started)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(db: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``decide serve`` on a free loopback port over ``db``; waits until it answers."""
    port = free_port()
    env = {**os.environ, "DECIDE_MAX_BATCH_VISITORS": "10000000", "DECIDE_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", "--db", str(db), "--host", "127.0.0.1",
         "--port", str(port), "--admin-token", TOKEN, "--processes", "1"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    target = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    with DecisionClient(target, admin_token=TOKEN) as client:
        while True:
            try:
                if client.health() == "SERVING":
                    return process, target
            except Exception:
                if time.monotonic() > deadline or process.poll() is not None:
                    process.kill()
                    raise
            time.sleep(0.1)


def batch_rate(target: str, *, record: bool) -> tuple[float, int]:
    """Visitor decisions per second of one DecideBatch over segment everyone."""
    with DecisionClient(target, admin_token=TOKEN) as client:
        started = time.perf_counter()
        call = client.decide_batch(
            PLACEMENTS,
            segment="everyone",
            record=record,
            channel="email" if record else "",
            page_size=1000,
            timeout=3600,
        )
        rows = sum(1 for _ in call)
        elapsed = time.perf_counter() - started
    assert call.summary is not None and call.summary.complete
    return rows / elapsed, call.summary.exposures


def sweep(folder: Path, pristine: Path, visitors: int, runs: int) -> None:
    """Time the baseline sweep and a second sweep with three notify segments."""
    from server.activation.changes import SegmentWatcher
    from server.activation.sqlite import SQLiteActivation
    from server.profiles.sqlite import SQLiteProfileStore
    from server.rules.snapshot import build_snapshot

    document = rules()
    for segment in document["segments"]:
        if segment["id"] in ("at_risk_customers", "lapsed_frequent_buyers", "high_value_customers"):
            segment["notify"] = True
    snapshot = build_snapshot(1, json.dumps(document), datetime.now(UTC))

    class Source:
        pass

    source = Source()
    source.snapshot = snapshot  # type: ignore[attr-defined]
    for run in range(runs):
        db = folder / f"sweep-{run}.db"
        shutil.copy(pristine, db)
        with SQLiteProfileStore(db), SQLiteActivation(db) as stores:
            watcher = SegmentWatcher(stores.changes, source, lambda: datetime.now(UTC))
            at = load()
            started = time.perf_counter()
            watcher.sweep_once()
            baseline = time.perf_counter() - started
            started = time.perf_counter()
            watcher.sweep_once()
            again = time.perf_counter() - started
        print(
            f"  sweep    run {run + 1}: baseline {baseline / visitors * 1e6:.1f} us/profile,"
            f" then {again / visitors * 1e6:.1f} us/profile (load {at:.1f})"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visitors", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-record", action="store_true")
    parser.add_argument("--skip-sweep", action="store_true")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="decide-bench-batch-"))
    try:
        pristine = folder / "pristine.db"
        build_store(pristine, args.visitors)
        store = SQLiteRulesStore(pristine, seed=False)
        try:
            store.publish(json.dumps(rules()), comment="bench", author="bench")
        finally:
            store.close()
        print(f"{args.visitors:,} stored profiles, placements {', '.join(PLACEMENTS)}")

        engine = []
        for run in range(args.runs):
            at = load()
            rate = engine_rate(pristine, rules())
            engine.append(rate)
            print(f"  engine   run {run + 1}: {rate:10,.0f} visitors/s (load {at:.1f})")

        results: dict[str, list[float]] = {"preview": [], "recorded": []}
        for mode in ("preview", "recorded"):
            if mode == "recorded" and args.skip_record:
                continue
            for run in range(args.runs):
                db = folder / f"{mode}-{run}.db"
                shutil.copy(pristine, db)
                process, target = serve(db)
                try:
                    at = load()
                    rate, exposures = batch_rate(target, record=mode == "recorded")
                finally:
                    process.terminate()
                    process.wait(60)
                results[mode].append(rate)
                print(
                    f"  {mode:8} run {run + 1}: {rate:10,.0f} visitors/s,"
                    f" {exposures:,} exposures (load {at:.1f})"
                )

        if not args.skip_sweep:
            sweep(folder, pristine, args.visitors, args.runs)

        base = statistics.median(engine)
        print()
        print(f"engine (in-process decide_trusted)   {base:10,.0f} visitors/s")
        for mode, rates in results.items():
            if rates:
                median = statistics.median(rates)
                verdict = "meets" if median >= 5000 else "MISSES"
                print(
                    f"DecideBatch {mode:9} (server)     {median:10,.0f} visitors/s"
                    f"  {median / base:.2f}x the engine; {verdict} the 5,000/s target"
                )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
