"""Faults against real ``decide serve`` processes: what a crash, a clean stop, a full disk
and a damaged file cost, counted as acknowledged against stored.

    .venv/bin/python bench/faults.py                 # every scenario, full length
    .venv/bin/python bench/faults.py --quick         # short runs (CI: tests/bench)
    .venv/bin/python bench/faults.py --only kill-track,disk-full

Scenarios (each starts its own servers and stops or kills them itself):

kill-track           kill -9 while clients Track batches: every event of an
                     acknowledged batch must be stored (loses 0)
kill-decide          kill -9 under Decide load: exposures of answered Decides against the
                     exposures stored; the difference is the write buffer's window
kill-decide-durable  the same with DECIDE_EXPOSURES_DURABLE=1: loses 0
sigterm-decide       SIGTERM under Decide load: exit 0 and loses 0
disk-full            Track until the disk is full: RESOURCE_EXHAUSTED naming the file,
                     nothing acknowledged lost, Track works again once space returns. A
                     small tmpfs when this runs as root and may mount one; otherwise
                     SQLite's max_page_count through ``bench/faults_shim``
corrupt-file         pages of a store overwritten: ``decide serve`` refuses to start
                     with a message naming the file; ``decide store check`` reports it

Servers listen on 127.0.0.1 (a free port), keep their stores in a temporary folder that
is removed at the end, and run with ``--processes 1`` so that kill -9 hits the process
holding the buffers. Counts come from the store files themselves (read after the
server is gone). The exit code is 0 when every scenario met its expectation, else 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: protos and server from this checkout
    sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402

from protos import decisioning_pb2 as pb  # noqa: E402
from protos import decisioning_pb2_grpc as pb_grpc  # noqa: E402

SHIM = ROOT / "bench" / "faults_shim"
ADMIN_TOKEN = "faults-admin-token"
PLACEMENTS = ["home_hero", "product_recommendations", "popup", "email_block"]
START_TIMEOUT = 60.0
CALL_TIMEOUT = 10.0


# -- servers --------------------------------------------------------------------------------


@dataclass
class Server:
    """A ``decide serve`` process and what it logged."""

    process: subprocess.Popen[str]
    db: Path
    lines: queue.Queue[str]
    log: list[str] = field(default_factory=list)
    port: int = 0

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def wait_for(self, event: str, timeout: float = START_TIMEOUT) -> dict[str, Any] | None:
        """The first logged record of ``event``; None when the process ended first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.process.poll() is not None and self.lines.empty():
                    return None
                continue
            self.log.append(line)
            if line.startswith("{"):
                record = json.loads(line)
                if record.get("event") == event:
                    return record  # type: ignore[no-any-return]
        raise TimeoutError(f"no {event} from decide serve within {timeout:g}s")

    def drain(self) -> list[str]:
        """Every line logged so far."""
        while True:
            try:
                self.log.append(self.lines.get_nowait())
            except queue.Empty:
                return self.log

    def kill(self) -> None:
        """kill -9, and wait for the process to be gone."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM; the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def start(db: Path, *, env: dict[str, str] | None = None, expect_start: bool = True) -> Server:
    """``decide serve --demo`` on ``db``, on a free loopback port; waits until it listens
    (or, with ``expect_start`` false, until it exits)."""
    extra = dict(env or {})
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DECIDE_")}
    paths = (extra.pop("PYTHONPATH", ""), environ.get("PYTHONPATH", ""), str(ROOT))
    environ.update(
        {
            "PYTHONPATH": os.pathsep.join(p for p in paths if p),
            "DECIDE_LOG_JSON": "1",
            "DECIDE_PROCESSES": "1",
            "DECIDE_SCAN_PROCESSES": "1",
            "DECIDE_GRACE": "5",
            **extra,
        }
    )
    command = [
        sys.executable, "-m", "cli", "serve", "--db", str(db), "--host", "127.0.0.1",
        "--port", "0", "--demo", "--admin-token", ADMIN_TOKEN,
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, env=environ, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=read, name="faults-log", daemon=True).start()
    server = Server(process, db, lines)
    if expect_start:
        started = server.wait_for("server_started")
        if started is None:
            raise RuntimeError("decide serve exited at start:\n" + "\n".join(server.drain()))
        server.port = int(started["port"])
    return server


@contextlib.contextmanager
def running(db: Path, **kwargs: Any) -> Iterator[Server]:
    """A started server that is certainly gone when the block ends."""
    server = start(db, **kwargs)
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.kill()


# -- load -----------------------------------------------------------------------------------


class Load:
    """Client threads calling ``call(stub_channel, thread, n)`` in a loop until stopped;
    each call's result (None for a failed call) is collected."""

    def __init__(self, target: str, call: Callable[[grpc.Channel, int, int], Any], threads: int):
        self.results: list[Any] = []
        self.errors: dict[str, int] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(target, call, t), daemon=True)
            for t in range(threads)
        ]

    def _run(self, target: str, call: Callable[[grpc.Channel, int, int], Any], thread: int) -> None:
        with grpc.insecure_channel(target) as channel:
            n = 0
            while not self._stop.is_set():
                try:
                    result = call(channel, thread, n)
                except grpc.RpcError as exc:
                    with self._lock:
                        name = exc.code().name
                        self.errors[name] = self.errors.get(name, 0) + 1
                    if exc.code() == grpc.StatusCode.UNAVAILABLE:
                        self._stop.wait(0.05)
                else:
                    with self._lock:
                        self.results.append(result)
                n += 1

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(CALL_TIMEOUT + 5)

    def wait_until(self, count: int, timeout: float) -> None:
        """Until ``count`` calls succeeded, or ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        while len(self.results) < count and time.monotonic() < deadline:
            time.sleep(0.02)


def _track(padding: int = 0, batch: int = 10) -> Callable[[grpc.Channel, int, int], Any]:
    """A Track call of ``batch`` page views with fresh ids; returns the acknowledged ids."""

    def call(channel: grpc.Channel, thread: int, n: int) -> list[str]:
        request = pb.TrackRequest()
        now = datetime.now(UTC)
        ids = [f"fault-{thread}-{n}-{i}" for i in range(batch)]
        for i, event_id in enumerate(ids):
            event = request.events.add(event_id=event_id, visitor_id=f"visitor-{thread}-{i}")
            event.type = pb.EVENT_TYPE_PAGE_VIEW
            event.timestamp.FromDatetime(now)
            event.page_view.url = "/p/" + "x" * padding
        response = pb_grpc.EventServiceStub(channel).Track(request, timeout=CALL_TIMEOUT)
        if response.accepted + response.duplicates != batch:
            raise RuntimeError(f"Track acknowledged {response.accepted} of {batch}")
        return ids

    return call


def _decide(channel: grpc.Channel, thread: int, n: int) -> list[str]:
    """A Decide for a fresh visitor; returns the decision ids that are exposures."""
    request = pb.DecideRequest(visitor_id=f"visitor-{thread}-{n}", placements=PLACEMENTS)
    response = pb_grpc.DecisionServiceStub(channel).Decide(request, timeout=CALL_TIMEOUT)
    return [d.decision_id for d in response.decisions if d.campaign_id]


def _flatten(results: list[list[str]]) -> set[str]:
    return {item for result in results for item in result}


def stored(db: Path, table: str, column: str) -> set[str]:
    """Every value of ``column`` in ``table`` of the store file (opened after the server
    is gone, so SQLite recovers its WAL as the next server would)."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return {row[0] for row in conn.execute(f"SELECT {column} FROM {table}")}


def quick_check(db: Path) -> str:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return ", ".join(row[0] for row in conn.execute("PRAGMA quick_check(5)"))


# -- scenarios --------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One scenario's counts and whether it met its expectation."""

    name: str
    ok: bool
    summary: str
    details: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Sizes:
    """How long and how hard each scenario loads its server."""

    seconds: float
    threads: int


def kill_track(folder: Path, sizes: Sizes) -> Outcome:
    """kill -9 during Track ingest: acknowledged events against stored ones."""
    db = folder / "kill-track.db"
    with running(db) as server, Load(server.target, _track(), sizes.threads) as load:
        load.wait_until(10, START_TIMEOUT)
        time.sleep(sizes.seconds)
        server.kill()
        load.stop()
    acknowledged = _flatten(load.results)
    kept = stored(db, "events", "event_id")
    lost = acknowledged - kept
    check = quick_check(db)
    with running(db) as again:  # the next server recovers the file and serves
        restarted = again.terminate() == 0
    ok = not lost and check == "ok" and restarted and len(acknowledged) > 0
    return Outcome(
        "kill-track",
        ok,
        f"acknowledged {len(acknowledged):,} events, stored {len(kept):,}, lost {len(lost):,}",
        [
            f"stored but never acknowledged (calls in flight at the kill): "
            f"{len(kept - acknowledged):,}",
            f"quick_check after the kill: {check}; a new server started on the file and"
            f" stopped cleanly: {'yes' if restarted else 'NO'}",
        ],
    )


@dataclass
class DecideRun:
    """What a Decide load ended by a kill or a stop served and stored."""

    served: set[str]
    stored: set[str]
    rate: float
    """Exposures served per second."""
    errors: dict[str, int]
    code: int | None = None
    """The exit code after SIGTERM."""
    stop_seconds: float = 0.0
    """From SIGTERM to the process's exit."""


def _decide_under(
    folder: Path, sizes: Sizes, name: str, stop: str, env: dict[str, str] | None = None
) -> DecideRun:
    """Decide load on a fresh server, ended by ``stop`` ("kill" or "term")."""
    db = folder / f"{name}.db"
    code, stop_seconds = None, 0.0
    with running(db, env=env) as server, Load(server.target, _decide, sizes.threads) as load:
        load.wait_until(10, START_TIMEOUT)
        began, before = time.monotonic(), len(load.results)
        time.sleep(sizes.seconds)
        rate = sum(map(len, load.results[before:])) / (time.monotonic() - began)
        if stop == "kill":
            server.kill()
        else:
            stopping = time.monotonic()
            code = server.terminate()
            stop_seconds = time.monotonic() - stopping
        load.stop()
    kept = stored(db, "exposures", "decision_id")
    return DecideRun(_flatten(load.results), kept, rate, load.errors, code, stop_seconds)


def kill_decide(folder: Path, sizes: Sizes, *, durable: bool = False) -> Outcome:
    """kill -9 under Decide load: exposures served against stored."""
    name = "kill-decide-durable" if durable else "kill-decide"
    env = {"DECIDE_EXPOSURES_DURABLE": "1"} if durable else None
    run = _decide_under(folder, sizes, name, "kill", env)
    served, kept, rate, errors = run.served, run.stored, run.rate, run.errors
    lost = served - kept
    share = len(lost) / len(served) if served else 0.0
    window = 1000 * len(lost) / rate if rate else 0.0
    summary = (
        f"served {len(served):,} exposures, stored {len(kept & served):,}, lost {len(lost):,}"
        f" ({share:.1%}, about {window:.0f} ms of exposures at {rate:,.0f}/s)"
    )
    return Outcome(
        name,
        bool(served) and (not lost if durable else True),
        summary,
        [
            "stored but never answered (calls in flight at the kill): "
            f"{len(kept - served):,}; failed calls: {errors or 'none'}",
        ],
    )


def sigterm_decide(folder: Path, sizes: Sizes) -> Outcome:
    """SIGTERM under Decide load: a clean stop writes every exposure it answered."""
    run = _decide_under(folder, sizes, "sigterm-decide", "term")
    lost = run.served - run.stored
    return Outcome(
        "sigterm-decide",
        bool(run.served) and not lost and run.code == 0,
        f"served {len(run.served):,} exposures, stored {len(run.stored & run.served):,},"
        f" lost {len(lost):,}; exit code {run.code}",
        [
            f"stopped {run.stop_seconds:.1f} s after SIGTERM; calls refused once the stop"
            f" began: {run.errors or 'none'}; stored but never answered:"
            f" {len(run.stored - run.served):,}"
        ],
    )


@contextlib.contextmanager
def small_disk(folder: Path, mode: str) -> Iterator[tuple[Path, str, dict[str, str]]]:
    """A folder on a small file system of its own (``tmpfs``), or an ordinary folder and
    the environment that makes SQLite treat the store as full (``page-limit``). Yields
    the folder, the mode used and the server's extra environment."""
    disk = folder / "disk"
    disk.mkdir()
    if mode in ("auto", "tmpfs") and os.geteuid() == 0:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", str(disk)],
            capture_output=True,
            text=True,
        )
        if mounted.returncode == 0:
            try:
                yield disk, "tmpfs", {}
            finally:
                subprocess.run(["umount", "-l", str(disk)], capture_output=True)
            return
        if mode == "tmpfs":
            raise RuntimeError(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    elif mode == "tmpfs":
        raise RuntimeError("mounting a tmpfs needs root")
    limit = folder / "page-limit"
    limit.write_text("")
    env = {
        "PYTHONPATH": str(SHIM),
        "DECIDE_FAULTS_PAGE_LIMIT": str(limit),
    }
    yield disk, "page-limit", env


class _Space:
    """Fills and frees the small disk: a ballast file (tmpfs) or the page limit."""

    def __init__(self, disk: Path, mode: str, folder: Path) -> None:
        self.disk, self.mode = disk, mode
        self.ballast = disk / "ballast"
        self.limit = folder / "page-limit"

    def fill(self, leave: int) -> None:
        if self.mode == "tmpfs":
            free = os.statvfs(self.disk).f_bavail * os.statvfs(self.disk).f_frsize
            with self.ballast.open("wb") as f:
                f.truncate(0)
                chunk = b"\0" * (1 << 20)
                remaining = max(0, free - leave)
                while remaining > 0:
                    remaining -= f.write(chunk[: min(len(chunk), remaining)])
        else:
            self.limit.write_text("1")  # clamped to the file's size now: no page more

    def free(self) -> None:
        if self.mode == "tmpfs":
            self.ballast.unlink()
        else:
            self.limit.write_text("1073741823")


def disk_full(folder: Path, sizes: Sizes, mode: str) -> Outcome:
    """Track into a full disk, then free space and Track again."""
    with small_disk(folder, mode) as (disk, used, env):
        db = disk / "disk-full.db"
        space = _Space(disk, used, folder)
        track = _track(padding=1500, batch=50)
        acknowledged: set[str] = set()
        full_errors: list[str] = []
        other: dict[str, int] = {}
        with running(db, env=env) as server, grpc.insecure_channel(server.target) as channel:
            for n in range(5):  # some data before the disk fills
                acknowledged.update(track(channel, 0, n))
            space.fill(leave=512 * 1024)
            n = 5
            while len(full_errors) < 3 and n < 5000:
                try:
                    acknowledged.update(track(channel, 0, n))
                except grpc.RpcError as exc:
                    if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                        full_errors.append(exc.details())
                    else:
                        other[exc.code().name] = other.get(exc.code().name, 0) + 1
                n += 1
            # Decisions while the disk is full: answered at once; their exposures wait
            # in the buffer (the writer fails, logs once, retries) until space returns.
            served = _flatten([_decide(channel, 9, k) for k in range(20)])
            time.sleep(0.5)  # the writer tries (and fails) at least twice
            space.free()
            recovered = False
            for attempt in range(50):
                try:
                    acknowledged.update(track(channel, 1, attempt))
                    recovered = True
                    break
                except grpc.RpcError:
                    time.sleep(0.1)
            code = server.terminate()
            warnings = sum(
                1
                for line in server.drain()
                if line.startswith("{") and json.loads(line).get("level") == "WARNING"
            )
        kept = stored(db, "events", "event_id")
        exposures = stored(db, "exposures", "decision_id")
    lost = acknowledged - kept
    lost_exposures = served - exposures
    names_file = bool(full_errors) and all(str(db) in e for e in full_errors)
    ok = (
        bool(full_errors)
        and names_file
        and recovered
        and not lost
        and not lost_exposures
        and code == 0
        and not other
    )
    return Outcome(
        "disk-full",
        ok,
        f"acknowledged {len(acknowledged):,} events, stored {len(kept):,}, lost {len(lost):,};"
        f" full: {'RESOURCE_EXHAUSTED' if full_errors else 'never'},"
        f" after space returned: {'OK' if recovered else 'still failing'} ({used})",
        [
            f"Track on the full disk: {full_errors[0] if full_errors else '-'}",
            f"exposures served while full {len(served):,}, stored once space returned"
            f" {len(served & exposures):,}, lost {len(lost_exposures):,}",
            f"other failures: {other or 'none'}; warnings logged: {warnings};"
            f" exit code after SIGTERM: {code}",
        ],
    )


def corrupt_file(folder: Path, sizes: Sizes) -> Outcome:
    """A store with pages overwritten: refused at start, reported by ``store check``."""
    db = folder / "corrupt.db"
    with running(db) as server, grpc.insecure_channel(server.target) as channel:
        track = _track(padding=200, batch=100)
        for n in range(30):
            track(channel, 0, n)
        server.terminate()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    with db.open("r+b") as f:  # three pages in the middle of the file: garbage
        for page in range(pages // 2, pages // 2 + 3):
            f.seek(page * page_size)
            f.write(bytes([0xA5]) * page_size)
    refused = start(db, expect_start=False)
    try:
        failed = refused.wait_for("start_failed", timeout=START_TIMEOUT)
        code = refused.process.wait(30)
    finally:
        if refused.process.poll() is None:
            refused.kill()
    message = failed["msg"] if failed else "(no start_failed line)"
    check = subprocess.run(
        [sys.executable, "-m", "cli", "store", "check", "--db", str(db)],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("DECIDE_")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = check.stdout.strip()
    ok = code != 0 and str(db) in message and check.returncode == 1 and "damaged" in report
    return Outcome(
        "corrupt-file",
        ok,
        f"decide serve: exit {code}; decide store check: exit {check.returncode}",
        [f"serve: {message}", f"store check: {report}"],
    )


SCENARIOS: dict[str, Callable[..., Outcome]] = {
    "kill-track": kill_track,
    "kill-decide": kill_decide,
    "kill-decide-durable": lambda folder, sizes: kill_decide(folder, sizes, durable=True),
    "sigterm-decide": sigterm_decide,
    "disk-full": disk_full,
    "corrupt-file": corrupt_file,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs (about 30 s in all)")
    parser.add_argument(
        "--only", metavar="A,B", help=f"these scenarios ({', '.join(SCENARIOS)})"
    )
    parser.add_argument("--seconds", type=float, help="load before each kill or stop")
    parser.add_argument("--threads", type=int, default=4, help="client threads (default 4)")
    parser.add_argument(
        "--disk",
        choices=["auto", "tmpfs", "page-limit"],
        default="auto",
        help="how disk-full fills the disk (auto: tmpfs when root may mount one)",
    )
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {unknown[0]!r}")
    sizes = Sizes(seconds=args.seconds or (0.7 if args.quick else 5.0), threads=args.threads)
    print(
        f"decide faults: {', '.join(names)}; {sizes.seconds:g} s of load with"
        f" {sizes.threads} client threads before each kill or stop",
        flush=True,
    )
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="decide-faults-") as tmp:
        for name in names:
            folder = Path(tmp) / name
            folder.mkdir()
            began = time.monotonic()
            scenario = SCENARIOS[name]
            try:
                if name == "disk-full":
                    outcome = scenario(folder, sizes, args.disk)
                else:
                    outcome = scenario(folder, sizes)
            except Exception as exc:  # a broken scenario is a failed one, reported
                outcome = Outcome(name, False, f"did not run: {type(exc).__name__}: {exc}")
            outcomes.append(outcome)
            verdict = "ok" if outcome.ok else "FAILED"
            print(f"{name:<20} {outcome.summary}  [{verdict}, {time.monotonic() - began:.1f} s]")
            for line in outcome.details:
                print(f"{'':<20} {line}")
            sys.stdout.flush()
    failed = [o.name for o in outcomes if not o.ok]
    print(f"failed: {', '.join(failed)}" if failed else "every scenario met its expectation")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
