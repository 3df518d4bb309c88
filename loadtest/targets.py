"""Servers a load run starts and stops itself, and what it reads about their processes.

``start_decide`` runs ``decide serve`` in a subprocess on an ephemeral loopback port,
with a SQLite store in a temporary folder (demo rules, or a rules file published before
start), passing only options that checkout's ``decide serve`` has. ``start_baseline``
runs a no-logic server (``loadtest.baseline``, sync or asyncio). All log to a file,
which is read for the bound port and shown when start-up fails. Process CPU and memory
come from ``/proc`` (Linux); elsewhere they are simply not reported.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from loadtest.workload import DECIDE_METHOD, TRACK_METHOD, seed_batches

START_TIMEOUT = 60.0

SERVE_COMMANDS = (("-m", "cli", "serve"), ("-m", "server.cli", "serve"))
"""How a checkout's ``decide serve`` is started (by module: no installed script needed):
today's layout, then the one before the CLI got its own package (``--before-pythonpath``
may name such a checkout)."""


class TargetError(RuntimeError):
    """A server could not be started, reached or seeded; the message says why."""


def check_loopback(target: str) -> None:
    """Raise ``TargetError`` unless ``target`` is on this machine (loopback or unix socket)."""
    host = target
    for prefix in ("dns:///", "dns:", "ipv4:", "ipv6:"):
        host = host.removeprefix(prefix)
    if host.startswith(("unix:", "unix-abstract:")):
        return
    if host.startswith("["):
        host = host[1 : host.find("]")]
    elif host.count(":") == 1:
        host = host.rpartition(":")[0]
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise TargetError(
        f"refusing to load {target}: it is not a loopback address (127.0.0.0/8, ::1, "
        "localhost). A load test sends thousands of calls per second; pass --allow-remote "
        "if you own that server and mean to load it"
    )


@dataclass
class ServerProcess:
    """A server subprocess: its address, log file and (for decide) store and admin token."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    db_path: Path | None = None
    admin_token: str | None = None
    info: dict[str, object] = field(default_factory=dict)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        """The server's process and its descendants (``--processes`` children)."""
        return process_tree(self.process.pid)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait up to ``timeout`` seconds, then kill; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


def _wait_for_event(
    process: subprocess.Popen[bytes], log_path: Path, events: set[str], name: str
) -> dict[str, object]:
    """The first JSON log line whose ``event`` is in ``events``."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        for line in log_path.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("event") in events:
                return entry
        if process.poll() is not None:
            break
        time.sleep(0.05)
    if process.poll() is None:
        process.kill()
        process.wait(5)
    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
    raise TargetError(f"{name} did not start (exit code {process.returncode}):\n{tail}")


def serve_flags() -> tuple[tuple[str, ...], frozenset[str]]:
    """The command that starts ``decide serve`` in the checkout this process would start
    (the working directory and PYTHONPATH decide which), and the options it accepts,
    read from its ``--help``.

    An older checkout (``bench/load.py --before-pythonpath``) lacks some of today's
    options, and argparse refuses an unknown one: ask before passing it.
    """
    key = (os.getcwd(), os.environ.get("PYTHONPATH", ""))
    found = _SERVE_FLAGS.get(key)
    if found is None:
        # A checkout from before the cli package has server/cli.py instead; started from
        # its folder, "-m cli" would find this checkout's installed package instead.
        here = Path.cwd()
        old = not (here / "cli" / "__main__.py").exists() and (here / "server" / "cli.py").exists()
        command = SERVE_COMMANDS[1] if old else SERVE_COMMANDS[0]
        done = subprocess.run(
            [sys.executable, *command, "--help"],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            raise TargetError(f"decide serve --help failed: {done.stderr.strip()[-500:]}")
        flags = frozenset(re.findall(r"(?<![\w-])--[a-z][\w-]*", done.stdout))
        found = _SERVE_FLAGS[key] = (command, flags)
    return found


_SERVE_FLAGS: dict[tuple[str, str], tuple[tuple[str, ...], frozenset[str]]] = {}


def serve_command(
    db_path: Path,
    admin_token: str,
    *,
    demo: bool,
    processes: int,
    flags: frozenset[str],
    extra_args: tuple[str, ...] = (),
    command: tuple[str, ...] = SERVE_COMMANDS[0],
) -> list[str]:
    """The ``decide serve`` command line for a checkout whose serve has ``flags``.

    ``--processes`` is passed whenever the server has it (its default may be one process
    per core); an older server without it runs one process, so asking for more raises.
    """
    if "--processes" in flags:
        processes_flag = ["--processes", str(processes)]
    elif processes == 1:
        processes_flag = []
    else:
        raise TargetError("this decide serve has no --processes option: it runs one process")
    return [
        sys.executable,
        *command,
        "--db",
        str(db_path),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--admin-token",
        admin_token,
        "--log-json",
        *(["--demo"] if demo else []),
        *processes_flag,
        *extra_args,
    ]


def start_decide(
    workdir: Path,
    *,
    rules_file: Path | None = None,
    processes: int = 1,
    max_workers: int | None = None,
    extra_args: tuple[str, ...] = (),
) -> ServerProcess:
    """``decide serve`` on 127.0.0.1:0 with a fresh store in ``workdir``, in ``processes``
    processes."""
    db_path = workdir / "loadtest.db"
    log_path = workdir / "decide-server.log"
    token = secrets.token_hex(16)  # hex: a token starting with "-" would read as an option
    serve, flags = serve_flags()
    command = serve_command(
        db_path,
        token,
        demo=rules_file is None,
        processes=processes,
        flags=flags,
        extra_args=extra_args,
        command=serve,
    )
    if rules_file is not None:
        from server.rules.sqlite import SQLiteRulesStore as RulesStore

        store = RulesStore(str(db_path), seed=False)
        try:
            store.publish(rules_file.read_text(), comment="decide loadtest", author="loadtest")
        finally:
            store.close()
    env = dict(os.environ)
    if max_workers is not None:
        env["DECIDE_MAX_WORKERS"] = str(max_workers)
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=log, env=env)
    # Several processes: the parent's line, once every child listens (each child logs its
    # own server_started before that).
    wanted = {"processes_started"} if processes > 1 else {"server_started", "processes_started"}
    info = _wait_for_event(process, log_path, wanted, "decide serve")
    return ServerProcess(
        "decide", process, int(str(info["port"])), log_path, db_path, token, dict(info)
    )


def start_baseline(
    workdir: Path,
    *,
    kind: str = "sync",
    processes: int = 1,
    workers: int | None = None,
    decide_response: bytes | None = None,
) -> ServerProcess:
    """A no-logic baseline server (``loadtest.baseline``) of ``kind`` on 127.0.0.1:0, in
    ``processes`` processes sharing the port."""
    log_path = workdir / f"baseline-{kind}.log"
    command = [sys.executable, "-m", "loadtest.baseline", "--kind", kind, "--port", "0"]
    command += ["--processes", str(processes)]
    if workers is not None:
        command += ["--workers", str(workers)]
    if decide_response is not None:
        response_path = workdir / "baseline-response.bin"
        response_path.write_bytes(decide_response)
        command += ["--response-file", str(response_path)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=log)
    info = _wait_for_event(process, log_path, {"baseline_started"}, f"the {kind} baseline server")
    return ServerProcess(
        f"baseline-{kind}", process, int(str(info["port"])), log_path, info=dict(info)
    )


# -- talking to a target ------------------------------------------------------------------


def _metadata(api_key: str | None) -> tuple[tuple[str, str], ...] | None:
    return (("x-api-key", api_key),) if api_key else None


def sample_response(target: str, request: bytes, api_key: str | None) -> bytes | None:
    """One real Decide response (serialized) from ``target``, or None if the call fails."""
    with grpc.insecure_channel(target) as channel:
        try:
            decide: Any = channel.unary_unary(DECIDE_METHOD)  # bytes in, bytes out
            response: bytes = decide(request, timeout=10, metadata=_metadata(api_key))
        except grpc.RpcError:
            return None
    return response


@dataclass(frozen=True)
class SeedResult:
    """What seeding stored: batches sent, events accepted and duplicates, seconds taken."""

    batches: int
    accepted: int
    duplicates: int
    seconds: float


def seed_profiles(target: str, visitors: int, api_key: str | None) -> SeedResult | None:
    """Give visitors 1..``visitors`` stored profiles through EventService.Track.

    Returns None when the target has no EventService (UNIMPLEMENTED).
    """
    from protos import decisioning_pb2 as pb

    started = time.perf_counter()
    accepted = duplicates = batches = 0
    with grpc.insecure_channel(target) as channel:
        track: Any = channel.unary_unary(TRACK_METHOD)
        for payload in seed_batches(visitors):
            try:
                raw = track(payload, timeout=60, metadata=_metadata(api_key))
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                    return None
                raise TargetError(f"seeding profiles failed: {exc.code().name}: {exc.details()}")
            response = pb.TrackResponse.FromString(raw)
            accepted += response.accepted
            duplicates += response.duplicates
            batches += 1
    return SeedResult(batches, accepted, duplicates, time.perf_counter() - started)


# -- /proc --------------------------------------------------------------------------------

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()  # fields from 3 (state) on


def process_tree(pid: int) -> list[int]:
    """``pid`` and every descendant still running (empty when /proc is unavailable)."""
    if not Path(f"/proc/{pid}").exists():
        return []
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None:
                parents.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(parents.get(current, []))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU seconds the processes have used so far."""
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _CLOCK_TICKS


def rss_bytes(pids: list[int]) -> int:
    """Resident memory of the processes, added up."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total
