"""Drive Decide with h2load, the C HTTP/2 load generator, instead of the Python client.

The Python client needs about as much CPU per call as the server, and on a small
machine both share the cores, so the figures of ``decide loadtest`` measure the pair.
h2load (Debian's ``nghttp2-client``: ``apt-get install -y nghttp2-client``) spends a
few microseconds per call, which leaves the cores to the server: its figures are the
server's own ceiling.

A gRPC call is an HTTP/2 POST to ``/<package>.<Service>/<Method>`` with
``content-type: application/grpc`` and ``te: trailers``, whose body is a 5-byte prefix
(a compression flag byte 0, then the message length as a big-endian uint32) followed
by the serialized request. h2load sends one fixed body, so every call asks for the
same visitor and context. It checks only the HTTP status, which is 200 for every gRPC
call: the gRPC status travels in the trailers, which h2load does not read. Check for
errors another way (a Python run, or the server's ``grpc_server_handled_total``).

The request is a preview (no exposure recorded, not counted in decide_decisions_total)
unless ``--allow-writes`` is given: the target may be a store with real experiments.

    python -m loadtest.h2load body --out decide.bin [--placements-per-call 3] [--allow-writes]
    python -m loadtest.h2load run --target 127.0.0.1:50051 [--duration 10] [--streams 16]
        [--allow-writes]
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from loadtest.recording import new_histogram, percentiles_ms
from loadtest.workload import DECIDE_METHOD, WorkloadSpec, decide_requests

GRPC_HEADERS = ("content-type: application/grpc", "te: trailers")
INSTALL_HINT = "h2load is not installed (Debian/Ubuntu: apt-get install -y nghttp2-client)"


def frame(message: bytes) -> bytes:
    """A gRPC length-prefixed message: flag 0 (uncompressed), uint32 length, bytes."""
    return b"\x00" + struct.pack(">I", len(message)) + message


def decide_body(
    placements_per_call: int = 3, seed: int = 1, *, writes: bool = False, **workload: Any
) -> bytes:
    """One framed DecideRequest drawn like the load tester draws them; a preview unless
    ``writes`` (then the server records an exposure per call, as for a storefront)."""
    spec = WorkloadSpec(
        placements_per_call=(placements_per_call, placements_per_call),
        writes=writes,
        **workload,
    )
    return frame(decide_requests(spec, seed, 1)[0])


def available() -> bool:
    """Whether an ``h2load`` executable is on PATH."""
    return shutil.which("h2load") is not None


def command(
    target: str,
    body_path: Path,
    *,
    duration: float,
    warmup: float = 0.0,
    connections: int = 1,
    streams: int = 16,
    threads: int = 1,
    log_path: Path | None = None,
    method: str = DECIDE_METHOD,
) -> list[str]:
    """The h2load command line for a timed run against ``target`` (HOST:PORT)."""
    # h2load takes whole seconds.
    argv = ["h2load", "-D", str(max(1, round(duration))), "-c", str(connections)]
    argv += ["-m", str(streams), "-t", str(threads), "-d", str(body_path)]
    if warmup > 0:
        argv.append(f"--warm-up-time={max(1, round(warmup))}")
    for header in GRPC_HEADERS:
        argv += ["-H", header]
    if log_path is not None:
        argv.append(f"--log-file={log_path}")
    argv.append(f"http://{target}{method}")
    return argv


def parse_output(text: str) -> dict[str, Any]:
    """Calls/s and the request counts from h2load's summary."""
    result: dict[str, Any] = {}
    for line in text.splitlines():
        words = line.split()
        if line.startswith("finished in"):
            result["calls_per_second"] = float(words[3].replace(",", ""))
        elif line.startswith("requests:"):
            result["requests"] = int(words[1])
            result["succeeded"] = int(words[7])
            result["failed"] = int(words[9])
            result["errored"] = int(words[11])
            result["timeout"] = int(words[13])
    return result


def latency_from_log(log_path: Path) -> dict[str, float]:
    """Latency percentiles (ms) from h2load's per-request log (third column: us)."""
    histogram = new_histogram()
    with log_path.open() as log:
        for line in log:
            columns = line.split("\t")
            if len(columns) >= 3:
                histogram.record_value(max(1, int(columns[2])))
    return percentiles_ms(histogram)


def run(
    target: str,
    *,
    duration: float = 10.0,
    warmup: float = 2.0,
    connections: int = 1,
    streams: int = 16,
    threads: int = 1,
    body: bytes | None = None,
) -> dict[str, Any]:
    """Run h2load against ``target``'s Decide; calls/s, counts and latency percentiles."""
    if not available():
        raise FileNotFoundError(INSTALL_HINT)
    with tempfile.TemporaryDirectory(prefix="decide-h2load-") as tmp:
        body_path = Path(tmp) / "decide.bin"
        body_path.write_bytes(body if body is not None else decide_body())
        log_path = Path(tmp) / "requests.tsv"
        argv = command(
            target,
            body_path,
            duration=duration,
            warmup=warmup,
            connections=connections,
            streams=streams,
            threads=threads,
            log_path=log_path,
        )
        done = subprocess.run(
            argv, check=False, capture_output=True, text=True, timeout=duration + warmup + 60
        )
        if done.returncode != 0:
            raise RuntimeError(f"h2load failed ({done.returncode}): {done.stderr or done.stdout}")
        result = parse_output(done.stdout)
        result["latency_ms"] = latency_from_log(log_path)
    result["in_flight"] = connections * streams
    return result


def main(argv: list[str] | None = None) -> int:
    """``body``: write a framed request; ``run``: run h2load and print a JSON summary."""
    parser = argparse.ArgumentParser(prog="python -m loadtest.h2load", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    body = sub.add_parser("body", help="write one gRPC-framed DecideRequest")
    body.add_argument("--out", type=Path, required=True)
    body.add_argument("--placements-per-call", type=int, default=3)
    body.add_argument("--seed", type=int, default=1)
    body.add_argument("--allow-writes", action="store_true", help="record exposures")
    go = sub.add_parser("run", help="run h2load against a server's Decide")
    go.add_argument("--target", default="127.0.0.1:50051")
    go.add_argument("--duration", type=float, default=10.0)
    go.add_argument("--warmup", type=float, default=2.0)
    go.add_argument("--connections", type=int, default=1)
    go.add_argument("--streams", type=int, default=16, help="concurrent calls per connection")
    go.add_argument("--placements-per-call", type=int, default=3)
    go.add_argument("--allow-writes", action="store_true", help="record exposures")
    args = parser.parse_args(argv)
    if args.command == "body":
        args.out.write_bytes(
            decide_body(args.placements_per_call, args.seed, writes=args.allow_writes)
        )
        return 0
    from loadtest.targets import TargetError, check_loopback

    try:
        check_loopback(args.target)
    except TargetError as e:
        print(f"h2load: {e}", file=sys.stderr)
        return 2
    try:
        result = run(
            args.target,
            duration=args.duration,
            warmup=args.warmup,
            connections=args.connections,
            streams=args.streams,
            body=decide_body(args.placements_per_call, writes=args.allow_writes),
        )
    except FileNotFoundError as e:
        print(str(e), file=sys.stderr)
        return 3
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
