"""PostgreSQL drivers for the grpc.aio server: psycopg 3 (async, psycopg-pool) against asyncpg.

Everything runs from one asyncio event loop, the way the server will, against a throwaway
cluster (tests/postgres_cluster.py) or ``--dsn``. For each driver:

- ``read``: a point read by primary key of a ~1 KB JSON text row (a profile fetch), one
  at a time and 16 at once through a pool of 16 connections; also one at a time on a
  bare connection, to tell the driver's cost from the pool's.
- ``batch``: one transaction that inserts 100 events (ON CONFLICT DO NOTHING on the event
  id) and upserts the 100 visitors' profiles (an ingest batch), one batch at a time and
  4 at once; as two ``executemany`` calls (both drivers pipeline them) and as two
  statements over ``unnest`` of arrays.
- ``notify``: from ``pg_notify`` on one pooled connection to the notification seen by a
  task listening on another connection.
- ``rpc``: a grpc.aio unary method served from the same loop, called by a client in
  another process with 16 calls in flight: answering with a constant ~1 KB document,
  and with the visitor's profile read through the pool. The difference is what a
  profile read adds to an RPC in the server's CPU.

For each: wall time per operation (latency), operations per second, and CPU time of this
Python process per operation (``time.process_time``: what the event loop pays, and the
loop is shared with gRPC). Every figure is a median of ``--runs`` runs; the drivers
alternate order each run; the load average is printed with each run.

    .venv/bin/python bench/pg_driver.py [--runs 5] [--scale 1.0] [--dsn URI] [--json out.json]

Needs ``pip install 'psycopg[binary,pool]' asyncpg`` (the one not chosen is not a
dependency of decide).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PROFILES = 10_000
BATCH = 100
POOL = 16

SCHEMA = """
DROP TABLE IF EXISTS events, profiles;
CREATE TABLE profiles (
    visitor_id text PRIMARY KEY,
    doc text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE events (
    event_id text PRIMARY KEY,
    visitor_id text NOT NULL,
    payload text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
"""

# psycopg spells placeholders %s, asyncpg $n; the statements are otherwise the same.
READ = "SELECT doc FROM profiles WHERE visitor_id = {0}"
INSERT_EVENT = (
    "INSERT INTO events (event_id, visitor_id, payload) VALUES ({0}, {1}, {2}) "
    "ON CONFLICT (event_id) DO NOTHING"
)
UPSERT_PROFILE = (
    "INSERT INTO profiles (visitor_id, doc) VALUES ({0}, {1}) "
    "ON CONFLICT (visitor_id) DO UPDATE SET doc = excluded.doc, updated_at = now()"
)
INSERT_EVENTS_UNNEST = (
    "INSERT INTO events (event_id, visitor_id, payload) "
    "SELECT * FROM unnest({0}::text[], {1}::text[], {2}::text[]) "
    "ON CONFLICT (event_id) DO NOTHING"
)
UPSERT_PROFILES_UNNEST = (
    "INSERT INTO profiles (visitor_id, doc) SELECT * FROM unnest({0}::text[], {1}::text[]) "
    "ON CONFLICT (visitor_id) DO UPDATE SET doc = excluded.doc, updated_at = now()"
)
NOTIFY = "SELECT pg_notify('bench', {0})"


def psycopg_sql(template: str) -> str:
    return template.format(*["%s"] * 3)


def asyncpg_sql(template: str) -> str:
    return template.format("$1", "$2", "$3")


def profile_doc(rng: random.Random, visitor: str) -> str:
    """A ~1 KB JSON profile, shaped like the ones the profile store keeps."""
    doc = {
        "visitor_id": visitor,
        "traits": {"country": rng.choice(["FR", "DE", "US", "GB"]), "tier": "gold",
                   "device": rng.choice(["mobile", "desktop"])},
        "counters": {f"event_{i}": rng.randrange(100) for i in range(12)},
        "last_seen": {f"category_{i}": 1_700_000_000 + rng.randrange(10**6) for i in range(10)},
        "recent": [{"type": "view", "sku": f"sku-{rng.randrange(10**6)}",
                    "at": 1_700_000_000 + i} for i in range(8)],
    }
    return json.dumps(doc, separators=(",", ":"))


def visitor_id(i: int) -> str:
    return f"visitor-{i:06d}"


@dataclass
class Measure:
    """One scenario's run: operations, wall seconds, CPU seconds of this process."""

    ops: int
    wall: float
    cpu: float
    latencies: list[float] = field(default_factory=list)

    def figures(self) -> dict[str, float]:
        out = {
            "ops_per_s": self.ops / self.wall,
            "wall_us_per_op": self.wall / self.ops * 1e6,
            "cpu_us_per_op": self.cpu / self.ops * 1e6,
        }
        if self.latencies:
            ordered = sorted(self.latencies)
            out["p50_us"] = ordered[len(ordered) // 2] * 1e6
            out["p99_us"] = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e6
        return out


async def measure(op: Callable[[int], Awaitable[Any]], ops: int, concurrency: int) -> Measure:
    """Run ``op(i)`` for i in range(ops) over ``concurrency`` tasks; time it all."""
    latencies: list[float] = []
    counter = iter(range(ops))

    async def worker() -> None:
        for i in counter:
            began = time.perf_counter()
            await op(i)
            latencies.append(time.perf_counter() - began)

    wall0, cpu0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Measure(ops, time.perf_counter() - wall0, time.process_time() - cpu0, latencies)


class Batches:
    """Ingest batches with fresh event ids: 100 events from 100 visitors."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.next_event = 0
        self.docs = [profile_doc(self.rng, visitor_id(i)) for i in range(200)]

    def make(self) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
        events, profiles = [], []
        for _ in range(BATCH):
            self.next_event += 1
            visitor = visitor_id(self.rng.randrange(PROFILES))
            events.append((f"ev-{os.getpid()}-{self.next_event}", visitor,
                           '{"type":"purchase","value":42.5,"sku":"sku-1"}'))
            profiles.append((visitor, self.rng.choice(self.docs)))
        # One visitor twice in one upsert statement is an error for the unnest form, and
        # concurrent batches must lock rows in one order or they deadlock.
        return events, sorted(dict(profiles).items())


# -- psycopg -------------------------------------------------------------------------


async def run_psycopg(dsn: str, scale: float, seed: int) -> dict[str, Measure]:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

    results: dict[str, Measure] = {}
    rng = random.Random(seed)
    reads = [visitor_id(rng.randrange(PROFILES)) for _ in range(int(4000 * scale))]
    read_sql = psycopg_sql(READ)

    # autocommit: a SELECT is one round trip (no BEGIN, no COMMIT when the pool takes it
    # back); transactions are explicit.
    pool = AsyncConnectionPool(dsn, min_size=POOL, max_size=POOL, open=False,
                               kwargs={"autocommit": True})
    await pool.open(wait=True)
    try:
        async with await AsyncConnection.connect(dsn, autocommit=True) as bare:

            async def read_bare(i: int) -> None:
                cur = await bare.execute(read_sql, (reads[i],))
                await cur.fetchone()

            await measure(read_bare, 100, 1)  # warm: statements get prepared after 5 uses
            results["read 1 conn"] = await measure(read_bare, len(reads), 1)

        async def read_pool(i: int) -> None:
            async with pool.connection() as conn:
                cur = await conn.execute(read_sql, (reads[i % len(reads)],))
                await cur.fetchone()

        await measure(read_pool, 400, POOL)
        results["read 1 pool"] = await measure(read_pool, len(reads), 1)
        results["read 16 pool"] = await measure(read_pool, len(reads) * 2, POOL)

        batches = Batches(seed)
        n_batches = int(60 * scale)
        ev_sql, up_sql = psycopg_sql(INSERT_EVENT), psycopg_sql(UPSERT_PROFILE)

        async def batch_many(_: int) -> None:
            events, profiles = batches.make()
            async with pool.connection() as conn, conn.transaction():
                cur = conn.cursor()
                await cur.executemany(ev_sql, events)
                await cur.executemany(up_sql, profiles)

        # %b: arrays go in binary format. In text format psycopg escapes every quote of
        # every JSON document with a Python regular expression: 13 ms of CPU per batch
        # instead of 0.9 ms.
        ev_un = INSERT_EVENTS_UNNEST.format("%b", "%b", "%b")
        up_un = UPSERT_PROFILES_UNNEST.format("%b", "%b")

        async def batch_unnest(_: int) -> None:
            events, profiles = batches.make()
            async with pool.connection() as conn, conn.transaction():
                await conn.execute(ev_un, [list(c) for c in zip(*events, strict=True)])
                await conn.execute(up_un, [list(c) for c in zip(*profiles, strict=True)])

        async def batch_pipeline(_: int) -> None:
            # BEGIN, both executemany and COMMIT in one pipeline: one wait for the lot.
            events, profiles = batches.make()
            async with pool.connection() as conn, conn.pipeline(), conn.transaction():
                cur = conn.cursor()
                await cur.executemany(ev_sql, events)
                await cur.executemany(up_sql, profiles)

        await measure(batch_many, 8, 4)
        await measure(batch_unnest, 8, 4)
        await measure(batch_pipeline, 8, 4)
        results["batch executemany 1"] = await measure(batch_many, n_batches, 1)
        results["batch executemany 4"] = await measure(batch_many, n_batches, 4)
        results["batch pipeline 1"] = await measure(batch_pipeline, n_batches, 1)
        results["batch pipeline 4"] = await measure(batch_pipeline, n_batches, 4)
        results["batch unnest 1"] = await measure(batch_unnest, n_batches, 1)
        results["batch unnest 4"] = await measure(batch_unnest, n_batches, 4)

        results["notify"] = await notify_psycopg(dsn, pool, int(300 * scale))

        async def fetch_doc(visitor: str) -> str:
            async with pool.connection() as conn:
                cur = await conn.execute(read_sql, (visitor,))
                row = await cur.fetchone()
                assert row is not None
                return str(row[0])

        results["rpc constant 16"] = await rpc_measure(None, int(3000 * scale))
        results["rpc + read 16"] = await rpc_measure(fetch_doc, int(3000 * scale))
    finally:
        await pool.close()
    return results


async def notify_psycopg(dsn: str, pool: Any, count: int) -> Measure:
    from psycopg import AsyncConnection

    waiting: dict[str, asyncio.Future[float]] = {}
    listener = await AsyncConnection.connect(dsn, autocommit=True)
    await listener.execute("LISTEN bench")

    async def listen() -> None:
        async for note in listener.notifies():
            future = waiting.pop(note.payload, None)
            if future is not None and not future.done():
                future.set_result(time.perf_counter())

    task = asyncio.create_task(listen())
    sql = psycopg_sql(NOTIFY)
    loop = asyncio.get_running_loop()

    async def one(i: int) -> None:
        waiting[str(i)] = future = loop.create_future()
        async with pool.connection() as conn:
            await conn.execute(sql, (str(i),))
        await asyncio.wait_for(future, 5)

    try:
        await measure(one, 20, 1)
        return await measure(one, count, 1)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await listener.close()


# -- asyncpg -------------------------------------------------------------------------


async def run_asyncpg(dsn: str, scale: float, seed: int, reset: bool) -> dict[str, Measure]:
    import asyncpg

    results: dict[str, Measure] = {}
    rng = random.Random(seed)
    reads = [visitor_id(rng.randrange(PROFILES)) for _ in range(int(4000 * scale))]
    read_sql = asyncpg_sql(READ)

    async def no_reset(conn: Any) -> None:
        """Skip the reset query (UNLISTEN *, RESET ALL, ...) asyncpg runs on every release."""

    pool = await asyncpg.create_pool(dsn, min_size=POOL, max_size=POOL,
                                     **({} if reset else {"reset": no_reset}))
    try:
        bare = await asyncpg.connect(dsn)
        try:

            async def read_bare(i: int) -> None:
                await bare.fetchval(read_sql, reads[i])

            await measure(read_bare, 100, 1)
            results["read 1 conn"] = await measure(read_bare, len(reads), 1)
        finally:
            await bare.close()

        async def read_pool(i: int) -> None:
            await pool.fetchval(read_sql, reads[i % len(reads)])

        await measure(read_pool, 400, POOL)
        results["read 1 pool"] = await measure(read_pool, len(reads), 1)
        results["read 16 pool"] = await measure(read_pool, len(reads) * 2, POOL)

        batches = Batches(seed)
        n_batches = int(60 * scale)
        ev_sql, up_sql = asyncpg_sql(INSERT_EVENT), asyncpg_sql(UPSERT_PROFILE)

        async def batch_many(_: int) -> None:
            events, profiles = batches.make()
            async with pool.acquire() as conn, conn.transaction():
                await conn.executemany(ev_sql, events)
                await conn.executemany(up_sql, profiles)

        ev_un, up_un = asyncpg_sql(INSERT_EVENTS_UNNEST), asyncpg_sql(UPSERT_PROFILES_UNNEST)

        async def batch_unnest(_: int) -> None:
            events, profiles = batches.make()
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(ev_un, *[list(c) for c in zip(*events, strict=True)])
                await conn.execute(up_un, *[list(c) for c in zip(*profiles, strict=True)])

        await measure(batch_many, 8, 4)
        await measure(batch_unnest, 8, 4)
        results["batch executemany 1"] = await measure(batch_many, n_batches, 1)
        results["batch executemany 4"] = await measure(batch_many, n_batches, 4)
        results["batch unnest 1"] = await measure(batch_unnest, n_batches, 1)
        results["batch unnest 4"] = await measure(batch_unnest, n_batches, 4)

        results["notify"] = await notify_asyncpg(dsn, pool, int(300 * scale))

        async def fetch_doc(visitor: str) -> str:
            return str(await pool.fetchval(read_sql, visitor))

        results["rpc constant 16"] = await rpc_measure(None, int(3000 * scale))
        results["rpc + read 16"] = await rpc_measure(fetch_doc, int(3000 * scale))
    finally:
        await pool.close()
    return results


async def notify_asyncpg(dsn: str, pool: Any, count: int) -> Measure:
    import asyncpg

    waiting: dict[str, asyncio.Future[float]] = {}
    listener = await asyncpg.connect(dsn)

    def on_note(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
        future = waiting.pop(payload, None)
        if future is not None and not future.done():
            future.set_result(time.perf_counter())

    await listener.add_listener("bench", on_note)
    sql = asyncpg_sql(NOTIFY)
    loop = asyncio.get_running_loop()

    async def one(i: int) -> None:
        waiting[str(i)] = future = loop.create_future()
        await pool.execute(sql, str(i))
        await asyncio.wait_for(future, 5)

    try:
        await measure(one, 20, 1)
        return await measure(one, count, 1)
    finally:
        await listener.close()


# -- in a grpc.aio server ----------------------------------------------------------

# A client in another process, so only the server's work counts in our CPU time: 16
# calls in flight, each sending a visitor id and getting the profile document back.
RPC_CLIENT = r"""
import asyncio, random, sys, time, grpc
async def main(port, calls, concurrency):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        get = channel.unary_unary("/bench.Bench/Get")
        rng = random.Random(7)
        ids = [f"visitor-{rng.randrange(10000):06d}".encode() for _ in range(calls)]
        for visitor in ids[:200]:
            await get(visitor)
        print("start", flush=True)
        todo = iter(ids)
        async def worker():
            for visitor in todo:
                await get(visitor)
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        print("end", flush=True)
asyncio.run(main(*map(int, sys.argv[1:4])))
"""

_CONSTANT = profile_doc(random.Random(0), visitor_id(0)).encode()


async def rpc_measure(fetch: Callable[[str], Awaitable[str]] | None, calls: int) -> Measure:
    """A grpc.aio unary method on this loop that answers a visitor id with its profile
    (``fetch``) or with a constant document (None): the server's CPU time per call."""
    import grpc

    async def get(request: bytes, _context: Any) -> bytes:
        if fetch is None:
            return _CONSTANT
        return (await fetch(request.decode())).encode()

    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "bench.Bench", {"Get": grpc.unary_unary_rpc_method_handler(get)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        client = await asyncio.create_subprocess_exec(
            sys.executable, "-c", RPC_CLIENT, str(port), str(calls), str(POOL),
            stdout=asyncio.subprocess.PIPE)
        assert client.stdout is not None
        assert (await client.stdout.readline()).strip() == b"start"
        wall0, cpu0 = time.perf_counter(), time.process_time()
        assert (await client.stdout.readline()).strip() == b"end"
        measured = Measure(calls, time.perf_counter() - wall0, time.process_time() - cpu0)
        if await client.wait() != 0:
            raise RuntimeError("the gRPC client failed")
        return measured
    finally:
        await server.stop(None)


# -- driver ------------------------------------------------------------------------


async def seed_database(dsn: str) -> None:
    import psycopg

    rng = random.Random(1)
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(SCHEMA)
        async with conn.cursor().copy("COPY profiles (visitor_id, doc) FROM STDIN") as copy:
            for i in range(PROFILES):
                await copy.write_row((visitor_id(i), profile_doc(rng, visitor_id(i))))
        await conn.execute("VACUUM ANALYZE profiles")
        size = await (await conn.execute("SELECT avg(length(doc)) FROM profiles")).fetchone()
        assert size is not None
        print(f"seeded {PROFILES} profiles, {float(size[0]):.0f} bytes of JSON each")


# "asyncpg" is its pool as it comes: every release runs a reset query (UNLISTEN *,
# RESET ALL, ...), one more round trip per pooled call; "asyncpg-noreset" passes a no-op
# reset (safe when the code never changes session state on pooled connections).
DRIVERS: dict[str, Callable[[str, float, int], Awaitable[dict[str, Measure]]]] = {
    "psycopg": run_psycopg,
    "asyncpg": lambda dsn, scale, seed: run_asyncpg(dsn, scale, seed, reset=True),
    "asyncpg-noreset": lambda dsn, scale, seed: run_asyncpg(dsn, scale, seed, reset=False),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every op count")
    parser.add_argument("--dsn", help="an existing database (its tables are replaced)")
    parser.add_argument("--drivers", default=",".join(DRIVERS))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    drivers = args.drivers.split(",")

    if args.dsn:
        report(args, drivers, args.dsn)
        return
    from tests.postgres_cluster import running_cluster

    with running_cluster() as cluster:
        print(f"throwaway cluster {cluster.dsn()} ({cluster.bindir}), "
              f"started in {cluster.start_seconds:.2f} s")
        report(args, drivers, cluster.dsn())


def report(args: argparse.Namespace, drivers: list[str], dsn: str) -> None:
    import asyncpg
    import psycopg
    import psycopg_pool

    print(f"psycopg {psycopg.__version__} ({psycopg.pq.__impl__}), psycopg-pool "
          f"{psycopg_pool.__version__}, asyncpg {asyncpg.__version__}, "
          f"Python {sys.version.split()[0]}, {os.cpu_count()} cores")
    asyncio.run(seed_database(dsn))
    runs: dict[str, list[dict[str, dict[str, float]]]] = {d: [] for d in drivers}
    for run in range(args.runs):
        order = drivers[run % len(drivers):] + drivers[:run % len(drivers)]
        for name in order:
            load = os.getloadavg()[0]
            measures = asyncio.run(DRIVERS[name](dsn, args.scale, run))
            runs[name].append({k: m.figures() for k, m in measures.items()})
            print(f"run {run + 1}/{args.runs} {name:14} load {load:.2f}", flush=True)

    medians = {
        name: {
            scenario: {
                metric: statistics.median(r[scenario][metric] for r in results)
                for metric in results[0][scenario]
            }
            for scenario in results[0]
        }
        for name, results in runs.items()
    }
    scenarios = list(dict.fromkeys(s for m in medians.values() for s in m))
    print(f"\nmedians of {args.runs} runs (load average now {os.getloadavg()[0]:.2f})")
    print(f"{'':22}" + "".join(f"{name:>30}" for name in drivers))
    tables = [
        ("CPU us per op (this process)", lambda f: f"{f['cpu_us_per_op']:,.1f}"),
        ("operations per second", lambda f: f"{f['ops_per_s']:,.0f}"),
        ("latency p50 / p99 us", lambda f: f"{f['p50_us']:,.0f} / {f['p99_us']:,.0f}"
         if "p50_us" in f else "-"),
    ]
    for title, cell in tables:
        print(title)
        for scenario in scenarios:
            print(f"  {scenario:20}" + "".join(
                f"{cell(medians[n][scenario]) if scenario in medians[n] else '-':>30}"
                for n in drivers))
    if args.json:
        args.json.write_text(json.dumps({"medians": medians, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
