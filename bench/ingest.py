"""Event ingest and Decide with stored profiles, through gRPC, client and server on one box.

Ingest: ``decide serve --demo`` runs in its own process(es) on a fresh SQLite file (WAL,
synchronous=FULL: every acknowledged batch is durable). Clients send pre-serialized
batches of 100 events (sessions of page and product views, carts and purchases from
many visitors, interleaved by time as a collector would batch them) with ``Track`` from
several threads, or one ``TrackStream`` per thread. Reported per run: events per second
and the server's CPU time per event (user + system, from /proc), which is what to
compare when the machine is shared: throughput moves with the neighbours' load, CPU per
event much less. The summary gives medians over ``--runs`` runs.

Decide: against the ingested store, one client thread measures per-call latency and
four threads measure throughput for three paths:

- ``override``: a visitor without a stored profile, the same profile sent as
  ``profile_overrides`` (the path before profiles existed);
- ``stored, warm``: visitors with stored profiles, read again within the cache TTL;
- ``stored, cold``: the same with the profile cache off, so every call reads SQLite.

    .venv/bin/python bench/ingest.py [--events 100000] [--threads 4] [--runs 3]
                                     [--processes 1] [--profile-server] [--skip-decide]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from protos import decisioning_pb2 as pb

BATCH = 100
PLACEMENTS = ["home_hero", "product_recommendations", "popup", "email_block"]
TRACK = "/decisioning.v1.EventService/Track"
TRACK_STREAM = "/decisioning.v1.EventService/TrackStream"
DECIDE = "/decisioning.v1.DecisionService/Decide"
GET_PROFILE = "/decisioning.v1.ProfileService/GetProfile"
ADMIN_TOKEN = "bench"


# -- the server, in its own process(es) ------------------------------------------------


class ServerProcess:
    """``decide serve --demo`` on a free port, as ``make serve`` runs it; a context manager.

    ``processes`` > 1 runs that many server processes on the port (``--processes``);
    ``cache_size`` 0 turns the profile cache off.
    """

    def __init__(self, db_path: Path, *, cache_size: int = 100_000, processes: int = 1) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = {**os.environ, "DECIDE_PROFILE_CACHE_SIZE": str(cache_size)}
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("decide")),
                "serve",
                "--demo",
                "--db",
                str(db_path),
                "--port",
                str(port),
                "--admin-token",
                ADMIN_TOKEN,
                "--processes",
                str(processes),
                "--log-level",
                "WARNING",
            ],
            env=env,
            cwd=ROOT,
        )
        self.target = f"127.0.0.1:{port}"
        self.pid = self.process.pid
        _wait_serving(self.target)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def _wait_serving(target: str, timeout: float = 30) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                response = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if response.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.1)


# -- events ---------------------------------------------------------------------------


def generate(total: int, visitors: int, seed: int = 7) -> list[pb.Event]:
    """About ``total`` events: sessions of one visitor each, placed at random times over
    30 days and interleaved by timestamp, as a collector would batch them."""
    rng = random.Random(seed)
    # Sale flags from a stream of their own: the other draws stay those of earlier runs.
    sale = random.Random(seed + 1)
    end = datetime.now(UTC) - timedelta(hours=1)
    events: list[tuple[float, pb.Event]] = []
    orders = 0
    while len(events) < total:
        visitor = f"visitor-{rng.randrange(visitors)}"
        t = (end - timedelta(days=30 * rng.random())).timestamp()

        def add(kind: int, t: float = t, visitor: str = visitor, **oneof: Any) -> None:
            message = pb.Event(event_id=f"e{len(events)}", visitor_id=visitor, type=kind, **oneof)
            message.timestamp.seconds = int(t)
            events.append((t, message))

        add(pb.EVENT_TYPE_SESSION_START, session_start=pb.SessionStart(landing_page="/"))
        cart: list[tuple[str, float]] = []
        for _ in range(rng.randint(2, 8)):
            t += rng.uniform(5, 90)
            if rng.random() < 0.3:
                add(
                    pb.EVENT_TYPE_PAGE_VIEW,
                    t,
                    page_view=pb.PageView(url="/c", page_type="category"),
                )
                continue
            sku = f"SKU-{rng.randrange(5000)}"
            price = round(rng.uniform(10, 400), 2)
            add(
                pb.EVENT_TYPE_PRODUCT_VIEW,
                t,
                product_view=pb.ProductView(
                    sku=sku,
                    category=f"cat-{rng.randrange(40)}",
                    brand=f"b-{rng.randrange(30)}",
                    price=price,
                    on_sale=sale.random() < 0.2,
                ),
            )
            if rng.random() < 0.25:
                t += rng.uniform(5, 60)
                add(
                    pb.EVENT_TYPE_ADD_TO_CART,
                    t,
                    cart=pb.CartChange(sku=sku, quantity=1, price=price),
                )
                cart.append((sku, price))
        if cart and rng.random() < 0.5:
            orders += 1
            add(
                pb.EVENT_TYPE_PURCHASE,
                t + 60,
                purchase=pb.Purchase(
                    order_id=f"o{orders}",
                    value=sum(p for _, p in cart),
                    currency="EUR",
                    articles=len(cart),
                ),
            )
    events.sort(key=lambda item: item[0])
    return [message for _, message in events[:total]]


def batches(events: list[pb.Event]) -> list[bytes]:
    """Serialized TrackRequests of BATCH events: the client spends no time encoding."""
    return [
        pb.TrackRequest(events=events[i : i + BATCH]).SerializeToString()
        for i in range(0, len(events), BATCH)
    ]


# -- ingest ---------------------------------------------------------------------------


def _raw(channel: grpc.Channel, method: str, streaming: bool = False) -> Any:
    kind = channel.stream_unary if streaming else channel.unary_unary
    return kind(method, request_serializer=None, response_deserializer=None)


def ingest(target: str, payloads: list[bytes], threads: int, stream: bool) -> float:
    """Send every payload from ``threads`` threads; returns the seconds it took."""
    chunks = [payloads[i::threads] for i in range(threads)]
    errors: list[BaseException] = []
    channels = [grpc.insecure_channel(target) for _ in range(threads)]
    for channel in channels:
        grpc.channel_ready_future(channel).result(timeout=10)

    def work(channel: grpc.Channel, mine: list[bytes]) -> None:
        try:
            if stream:
                _raw(channel, TRACK_STREAM, streaming=True)(iter(mine), timeout=600)
            else:
                call = _raw(channel, TRACK)
                for payload in mine:
                    call(payload, timeout=60)
        except Exception as e:  # noqa: BLE001 - re-raised in the main thread after the run
            errors.append(e)

    workers = [
        threading.Thread(target=work, args=(channel, mine))
        for channel, mine in zip(channels, chunks, strict=True)
    ]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    for channel in channels:
        channel.close()
    if errors:
        raise errors[0]
    return elapsed


# -- decide ---------------------------------------------------------------------------


def _decide_payloads(target: str, visitors: list[str]) -> dict[str, list[bytes]]:
    """Serialized DecideRequests for each path; overrides carry the stored profiles."""
    channel = grpc.insecure_channel(target)
    get = channel.unary_unary(
        GET_PROFILE,
        request_serializer=pb.GetProfileRequest.SerializeToString,
        response_deserializer=pb.GetProfileResponse.FromString,
    )
    stored, override = [], []
    for visitor in visitors:
        response = get(
            pb.GetProfileRequest(visitor_id=visitor),
            metadata=(("authorization", f"Bearer {ADMIN_TOKEN}"),),
            timeout=10,
        )
        profile = json.loads(response.profile_json)
        request = pb.DecideRequest(visitor_id=visitor, placements=PLACEMENTS)
        request.context.update({"device": "mobile", "page_type": "home"})
        stored.append(request.SerializeToString())
        request.visitor_id = f"anonymous-{visitor}"
        request.profile_overrides.update(profile)
        override.append(request.SerializeToString())
    channel.close()
    return {"stored": stored, "override": override}


def latency(target: str, payloads: list[bytes], calls: int) -> list[float]:
    """Per-call seconds of ``calls`` sequential Decide calls cycling through payloads."""
    channel = grpc.insecure_channel(target)
    call = _raw(channel, DECIDE)
    for payload in payloads[:50]:
        call(payload, timeout=10)  # connect, warm up
    times = []
    for i in range(calls):
        start = time.perf_counter()
        call(payloads[i % len(payloads)], timeout=10)
        times.append(time.perf_counter() - start)
    channel.close()
    return times


def throughput(target: str, payloads: list[bytes], threads: int, seconds: float) -> float:
    """Decide calls per second from ``threads`` threads for about ``seconds``."""
    count = [0] * threads
    stop = time.perf_counter() + seconds

    def work(n: int) -> None:
        channel = grpc.insecure_channel(target)
        call = _raw(channel, DECIDE)
        i = n
        while time.perf_counter() < stop:
            call(payloads[i % len(payloads)], timeout=10)
            i += threads
            count[n] += 1
        channel.close()

    start = time.perf_counter()
    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(count) / (time.perf_counter() - start)


# -- main -----------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_ingest(
    args: argparse.Namespace, tmp: Path, payloads: list[bytes], stream: bool
) -> tuple[float, float]:
    """Median events/s over the runs, and the median server CPU microseconds per event."""
    rates, costs = [], []
    for run in range(args.runs):
        db = tmp / f"ingest-{'stream' if stream else 'unary'}-{run}.db"
        with ServerProcess(db, processes=args.processes) as server:
            if args.profile_server and run == 0:
                _py_spy(server.pid, tmp, stream)
            cpu_before = cpu_seconds(server.pid)
            seconds = ingest(server.target, payloads, args.threads, stream)
            cpu = cpu_seconds(server.pid) - cpu_before
        rates.append(args.events / seconds)
        costs.append(cpu / args.events * 1e6)
        print(
            f"  run {run + 1}: {args.events} events in {seconds:.2f} s = {rates[-1]:,.0f}/s"
            f"  (server CPU {costs[-1]:.1f} us/event, load average {_load()})"
        )
    return statistics.median(rates), statistics.median(costs)


def _load() -> str:
    """The 1-minute load average: the box is shared, so each figure says how busy it was."""
    return Path("/proc/loadavg").read_text().split()[0]


def _py_spy(pid: int, tmp: Path, stream: bool) -> None:
    out = ROOT / f"ingest-{'stream' if stream else 'unary'}.speedscope.json"
    subprocess.Popen(
        [
            "py-spy",
            "record",
            "-p",
            str(pid),
            "-o",
            str(out),
            "-f",
            "speedscope",
            "-r",
            "200",
            "-d",
            "10",
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1)
    print(f"  (py-spy profile of the server: {out})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--visitors", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=4, help="client threads")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--decide-calls", type=int, default=2000)
    parser.add_argument("--decide-seconds", type=float, default=5.0)
    parser.add_argument("--skip-decide", action="store_true")
    parser.add_argument("--profile-server", action="store_true", help="py-spy the server")
    parser.add_argument(
        "--processes", type=int, default=1, help="server processes (decide serve --processes)"
    )
    args = parser.parse_args()

    print(f"{os.cpu_count()} CPUs; {args.events:,} events from {args.visitors:,} visitors,")
    print(
        f"batches of {BATCH}, {args.threads} client threads, "
        f"{args.processes} server process(es) of their own"
    )
    events = generate(args.events, args.visitors)
    payloads = batches(events)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        print("\nTrack (unary), durable:")
        unary, unary_cpu = run_ingest(args, tmp, payloads, stream=False)
        print("TrackStream (one stream per client thread), durable:")
        streamed, streamed_cpu = run_ingest(args, tmp, payloads, stream=True)
        print(
            f"\ningest median: Track {unary:,.0f} events/s ({unary_cpu:.1f} us server CPU"
            f" per event), TrackStream {streamed:,.0f} events/s ({streamed_cpu:.1f} us)"
        )
        if args.skip_decide:
            return 0

        db = tmp / "ingest-unary-0.db"
        visitors = sorted({e.visitor_id for e in events})[:500]
        results: dict[str, tuple[list[float], float]] = {}
        with ServerProcess(db) as server:
            payload_sets = _decide_payloads(server.target, visitors)
            for path in ("override", "stored"):
                times = latency(server.target, payload_sets[path], args.decide_calls)
                rate = throughput(server.target, payload_sets[path], 4, args.decide_seconds)
                results["stored, warm" if path == "stored" else path] = (times, rate)
        with ServerProcess(db, cache_size=0) as server:
            times = latency(server.target, payload_sets["stored"], args.decide_calls)
            rate = throughput(server.target, payload_sets["stored"], 4, args.decide_seconds)
            results["stored, cold"] = (times, rate)

    base_median = statistics.median(results["override"][0])
    base_rate = results["override"][1]
    print(f"\nDecide, {len(PLACEMENTS)} placements, demo rules, {len(visitors)} visitors:")
    print(
        f"  {'path':<14}{'median':>10}{'p99':>10}{'vs override':>13}{'calls/s':>10}{'vs override':>13}"
    )
    for path, (times, rate) in results.items():
        median = statistics.median(times)
        print(
            f"  {path:<14}{_ms(median):>10}{_ms(_quantile(times, 0.99)):>10}"
            f"{median / base_median:>12.2f}x{rate:>10,.0f}{rate / base_rate:>12.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
