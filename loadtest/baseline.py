"""The no-logic baselines: gRPC servers that answer Decide (and Track) with a constant.

They are what the transport alone costs: the same proto, the same message limit and
server options as ``decide serve``, requests parsed as they would be, and a response
that was serialized once before the first call. There are two kinds, each made as fast
as we could make it, because decide's figures are reported as ratios of the faster one
measured in the same run: a change of server kind must not flatter the ratio.

- ``sync``: ``grpc.server`` on a thread pool (``--workers``, default 2: on the 2-core
  development machine 2 threads served more calls with less CPU per call than 1 or 4;
  see bench/README.md "Two baselines").
- ``aio``: ``grpc.aio.server``, a coroutine handler on one event loop: uvloop's when
  uvloop is installed (``--loop auto``, the default), which grpc.aio runs on and which
  served more calls with less CPU per call than asyncio's own loop.

``--processes N`` runs N of them on one port with SO_REUSEPORT, as ``decide serve
--processes N`` does, so that a multi-process decide is compared with a multi-process
baseline.

    python -m loadtest.baseline [--kind sync|aio] [--processes N] [--port 0]
        [--workers 2] [--loop auto|asyncio|uvloop] [--response-file FILE]

It prints ``{"event": "baseline_started", "kind": K, "port": N, "pid": P, "pids": [...],
"loop": L}`` as one line on stdout once every process listens, and stops on SIGTERM or
SIGINT. ``/loadtest.Baseline/Pid`` answers with the answering process's pid (bytes), so
a test can tell which of several processes took a connection.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable
from concurrent import futures
from pathlib import Path
from types import FrameType
from typing import Any

import grpc

from protos import decisioning_pb2 as pb

KINDS = ("sync", "aio")
LOOPS = ("auto", "asyncio", "uvloop")

DEFAULT_WORKERS = 2
"""Threads of the sync baseline's pool (decide's default is 4; see the module docstring)."""

DECISION_SERVICE = "decisioning.v1.DecisionService"
EVENT_SERVICE = "decisioning.v1.EventService"
BASELINE_SERVICE = "loadtest.Baseline"
PID_METHOD = f"/{BASELINE_SERVICE}/Pid"

PARENT_CHECK_SECONDS = 0.5
"""How often a ``--processes`` child checks that its parent is still there."""


def canned_decide_response(placements: int = 3) -> bytes:
    """A DecideResponse shaped like a real one, for when no real one was captured."""
    return pb.DecideResponse(
        decisions=[
            pb.Decision(
                placement=f"placement_{i}",
                decision_id="01KAQ6B7D8E9F0G1H2J3K4M5N6",
                reason=pb.REASON_CAMPAIGN,
                campaign_id=f"camp_{i}",
                variant_id="treatment",
                content_json='{"headline":"Offer"}',
                matched_segments=["seg_1", "seg_2"],
            )
            for i in range(placements)
        ],
        ruleset_version=1,
        ruleset_hash="0" * 64,
    ).SerializeToString()


def server_options(reuse_port: bool = False) -> list[tuple[str, Any]]:
    """``decide serve``'s server options with its default configuration (the same
    message limit, connection and stream limits, keepalive), and SO_REUSEPORT only when
    several processes share the port on purpose."""
    from server.app import server_options as decide_options
    from server.config import ServerConfig

    return decide_options(ServerConfig(reuse_port=reuse_port))


def _responses(decide_response: bytes | None) -> dict[tuple[str, str], tuple[bytes, Any]]:
    """(service, method) -> (serialized response, request parser)."""
    decide = decide_response if decide_response is not None else canned_decide_response()
    track = pb.TrackResponse(accepted=10).SerializeToString()
    return {
        (DECISION_SERVICE, "Decide"): (decide, pb.DecideRequest.FromString),
        (EVENT_SERVICE, "Track"): (track, pb.TrackRequest.FromString),
        (BASELINE_SERVICE, "Pid"): (str(os.getpid()).encode(), None),
    }


def _sync_handler(response: bytes) -> Callable[[Any, Any], bytes]:
    def handler(request: Any, context: Any) -> bytes:
        return response

    return handler


def _aio_handler(response: bytes) -> Callable[[Any, Any], Awaitable[bytes]]:
    async def handler(request: Any, context: Any) -> bytes:
        return response

    return handler


def _add_handlers(server: Any, decide_response: bytes | None, make: Callable[[bytes], Any]) -> None:
    by_service: dict[str, dict[str, grpc.RpcMethodHandler]] = {}
    for (service, method), (response, parse) in _responses(decide_response).items():
        # The request is parsed like any server parses it; the response is already bytes.
        by_service.setdefault(service, {})[method] = grpc.unary_unary_rpc_method_handler(
            make(response), request_deserializer=parse, response_serializer=None
        )
    for service, methods in by_service.items():
        # Registered as decide's generated add_*Servicer_to_server registers them (gRPC
        # matches the path in C first); a generic handler measured the same. No
        # interceptors: a no-logic server has nothing to intercept.
        server.add_registered_method_handlers(service, methods)


def _bind(server: Any, host: str, port: int) -> int:
    bound: int = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port}")
    return bound


def create_sync_baseline(
    port: int = 0,
    *,
    host: str = "127.0.0.1",
    workers: int = DEFAULT_WORKERS,
    decide_response: bytes | None = None,
    reuse_port: bool = False,
) -> tuple[grpc.Server, int]:
    """Start the sync baseline (``grpc.server`` on a thread pool); returns it and its port."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="baseline"),
        options=server_options(reuse_port),
    )
    _add_handlers(server, decide_response, _sync_handler)
    bound = _bind(server, host, port)
    server.start()
    return server, bound


async def create_aio_baseline(
    port: int = 0,
    *,
    host: str = "127.0.0.1",
    decide_response: bytes | None = None,
    reuse_port: bool = False,
) -> tuple[grpc.aio.Server, int]:
    """Start the asyncio baseline (``grpc.aio.server``) on the running loop."""
    server = grpc.aio.server(options=server_options(reuse_port))
    _add_handlers(server, decide_response, _aio_handler)
    bound = _bind(server, host, port)
    await server.start()
    return server, bound


# -- one process ---------------------------------------------------------------------------


def _started(kind: str, port: int, pids: list[int], loop: str | None = None) -> None:
    line = {"event": "baseline_started", "kind": kind, "port": port, "pid": os.getpid()}
    print(json.dumps(line | {"pids": pids, "loop": loop}), flush=True)


def loop_name(loop: str) -> str:
    """The event loop ``--loop`` asks for: ``auto`` is uvloop when it is installed."""
    if loop == "auto":
        return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
    return loop


def _orphaned(parent: int | None) -> bool:
    """Whether this ``--processes`` child lost its parent (killed without passing SIGTERM
    on): the child then stops instead of holding the port forever."""
    return parent is not None and os.getppid() != parent


def _serve_sync(args: argparse.Namespace, response: bytes | None, parent: int | None) -> int:
    server, port = create_sync_baseline(
        args.port,
        host=args.host,
        workers=args.workers,
        decide_response=response,
        reuse_port=args.reuse_port,
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, request_stop)
    _started("sync", port, [os.getpid()])
    while not stop.wait(PARENT_CHECK_SECONDS) and not _orphaned(parent):
        pass
    server.stop(1).wait()
    return 0


async def _serve_aio(args: argparse.Namespace, response: bytes | None, parent: int | None) -> int:
    server, port = await create_aio_baseline(
        args.port, host=args.host, decide_response=response, reuse_port=args.reuse_port
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    _started("aio", port, [os.getpid()], type(loop).__module__.partition(".")[0])
    while not _orphaned(parent):
        try:
            await asyncio.wait_for(stop.wait(), PARENT_CHECK_SECONDS)
            break
        except TimeoutError:
            continue
    await server.stop(1)
    return 0


# -- several processes on one port -------------------------------------------------------


def _reserve_port(host: str, port: int) -> tuple[socket.socket, int]:
    """A socket bound with SO_REUSEPORT that holds the port (and picks one for port 0)
    until every child listens on it too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    holder = socket.socket(family, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        holder.bind((host, port))
    except OSError:
        holder.close()
        raise
    return holder, int(holder.getsockname()[1])


def _serve_processes(args: argparse.Namespace) -> int:
    """``args.processes`` children on one port; SIGTERM or SIGINT is passed on to them."""
    holder, port = _reserve_port(args.host, args.port)
    command = [sys.executable, "-m", "loadtest.baseline", "--kind", args.kind]
    command += ["--host", args.host, "--port", str(port), "--workers", str(args.workers)]
    command += ["--loop", args.loop, "--reuse-port", "--parent", str(os.getpid())]
    if args.response_file:
        command += ["--response-file", str(args.response_file)]
    children: list[subprocess.Popen[str]] = []
    loops: set[str | None] = set()
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, request_stop)
    code = 0
    try:
        with holder:
            for _ in range(args.processes):
                child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
                children.append(child)
                assert child.stdout is not None
                line = child.stdout.readline()  # its started line, or EOF if it failed
                if not line:
                    return 1
                loops.add(json.loads(line).get("loop"))
        _started(args.kind, port, [child.pid for child in children], loops.pop())
        while not stop.wait(PARENT_CHECK_SECONDS):
            if any(child.poll() is not None for child in children):
                code = 1
                break
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(5)
    return code


def main(argv: list[str] | None = None) -> int:
    """Run a baseline until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m loadtest.baseline", description=__doc__)
    parser.add_argument("--kind", choices=KINDS, default="sync")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--processes", type=int, default=1, help="processes on one port")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="sync: threads")
    parser.add_argument("--loop", choices=LOOPS, default="auto", help="aio: the event loop")
    parser.add_argument("--response-file", type=Path, help="serialized DecideResponse to send")
    # Set by the --processes parent for its children.
    parser.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--parent", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.processes < 1 or args.workers < 1:
        parser.error("--processes and --workers must be at least 1")
    if args.processes > 1:
        return _serve_processes(args)
    response = args.response_file.read_bytes() if args.response_file else None
    if args.kind == "sync":
        return _serve_sync(args, response, args.parent)
    if loop_name(args.loop) == "uvloop":
        import uvloop

        return int(uvloop.run(_serve_aio(args, response, args.parent)))
    return asyncio.run(_serve_aio(args, response, args.parent))


if __name__ == "__main__":
    sys.exit(main())
