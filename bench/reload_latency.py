"""Reload latency: time from a publish's commit to the first Decide response naming it.

Starts a real server on 127.0.0.1:0 with a SQLite store in a temporary directory, keeps
one thread sending Decide calls in a loop, and publishes N versions of the demo rules
through a second RulesStore (another connection, as the CLI or another server would).
Publishes are spaced by a random pause, so they land at random points of the poll
cycle. Prints the median, 90th percentile and worst latency.

    .venv/bin/python bench/reload_latency.py [--publishes 50] [--poll-interval 0.2]
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import decision
from protos import decisioning_pb2 as pb
from protos import decisioning_pb2_grpc as pb_grpc
from server.app import create_server
from server.config import ServerConfig
from server.rules.sqlite import SQLiteRulesStore as RulesStore


def _document(i: int) -> str:
    document = copy.deepcopy(decision.demo_document())
    document["placements"][0]["fallback"] = {"headline": f"edition {i}"}
    return json.dumps(document, indent=2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--publishes", type=int, default=50)
    parser.add_argument("--poll-interval", type=float, default=0.2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "bench.db"
        config = ServerConfig(
            db_path=str(db_path),
            port=0,
            poll_interval=args.poll_interval,
            grace=0,
            admin_token="bench",
        )
        with RulesStore(db_path) as writer:
            writer.publish(_document(0))
            server, port = create_server(config)
            first_seen: dict[int, float] = {}
            stop = threading.Event()
            failures: list[str] = []
            calls = 0

            def traffic() -> None:
                nonlocal calls
                with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                    stub = pb_grpc.DecisionServiceStub(channel)
                    request = pb.DecideRequest(visitor_id="bench", placements=["home_hero"])
                    while not stop.is_set():
                        try:
                            response = stub.Decide(request, timeout=5)
                        except grpc.RpcError as error:
                            failures.append(str(error.code()))
                            continue
                        calls += 1
                        first_seen.setdefault(response.ruleset_version, time.monotonic())

            thread = threading.Thread(target=traffic, daemon=True)
            thread.start()
            latencies: list[float] = []
            try:
                for i in range(1, args.publishes + 1):
                    time.sleep(random.uniform(0, args.poll_interval))
                    info = writer.publish(_document(i))
                    committed = time.monotonic()
                    deadline = committed + 5
                    while info.version not in first_seen and time.monotonic() < deadline:
                        time.sleep(0.0005)
                    if info.version not in first_seen:
                        print(f"version {info.version} not served within 5 s", file=sys.stderr)
                        return 1
                    latencies.append(first_seen[info.version] - committed)
            finally:
                stop.set()
                thread.join(10)
                server.stop(None).wait(10)

    ms = sorted(x * 1000 for x in latencies)
    print(
        f"reload latency over {len(ms)} publishes (poll interval {args.poll_interval * 1000:.0f} ms)"
    )
    print(f"  median {statistics.median(ms):7.1f} ms")
    print(f"  p90    {ms[int(len(ms) * 0.9) - 1]:7.1f} ms")
    print(f"  worst  {ms[-1]:7.1f} ms")
    print(f"  best   {ms[0]:7.1f} ms")
    print(f"  Decide calls during the run: {calls}, failed: {len(failures)}")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
