"""Run servers as processes: one per core on one port, signals, graceful stop.

``serve(config)`` is the process main of ``decide serve``: it runs
``config.process_count`` servers (``--processes auto``, the default, is one per core
this process may run on; ``--processes 1`` runs the server in this process, which is
what to debug with) and returns the exit code once SIGTERM or SIGINT has stopped them
gracefully: health turns NOT_SERVING, calls in flight get the grace period, buffered
exposures are written, exit 0.

With several processes the supervisor (this process) checks the port (and picks one
for ``--port 0``), prepares the stores once, and spawns the servers, which listen with
SO_REUSEPORT: the kernel spreads connections over them. Each hot-reloads from the
shared store on its own and serves metrics on ``--metrics-port`` + i. A server that
dies stops the others (exit 1), for the process manager to restart the group.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import signal
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from server.app import create_server, publish_demo
from server.config import ConfigError, ServerConfig
from server.errors import StoreError
from server.logs import configure_logging
from server.memory import tune_malloc
from server.storage import open_storage

logger = logging.getLogger("decide.server")

__all__ = ["serve", "serve_processes"]


def serve(config: ServerConfig) -> int:
    """Run the server(s) until SIGTERM or SIGINT; returns the process exit code.

    0 after a graceful shutdown; 1 when a server cannot start (the reason is logged).
    Must be called from the main thread (it installs signal handlers).
    """
    configure_logging(config.log_level, config.log_json)
    count = config.process_count
    if count > 1 and not hasattr(socket, "SO_REUSEPORT"):
        logger.warning(
            "this platform has no SO_REUSEPORT: serving in one process",
            extra={"event": "processes_unsupported"},
        )
        count = 1
    if count > 1:
        return serve_processes(config, count)
    return _serve_one(config)


@contextmanager
def _stop_signals(grace: float) -> Iterator[threading.Event]:
    """An event set by SIGTERM or SIGINT while the block runs."""
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        logger.info(
            "received %s; shutting down (grace %.1fs)",
            signal.Signals(signum).name,
            grace,
            extra={"event": "shutdown", "signal": signal.Signals(signum).name},
        )
        stop_requested.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop_requested
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve_one(config: ServerConfig, ready: Any = None) -> int:
    """One server in this process; ``ready`` (a pipe end) is sent the bound port."""
    tune_malloc()  # keeps the heap from creeping up over days (server/memory.py)
    with _stop_signals(config.grace) as stop_requested:
        try:
            server, port = create_server(config)
        except (OSError, ConfigError, ValueError, sqlite3.Error, StoreError) as exc:
            logger.error("cannot start: %s", exc, extra={"event": "start_failed"})
            return 1
        try:
            if ready is not None:
                ready.send(port)
                ready.close()
            # Wake regularly: a bare Event.wait() can delay signal handling on some platforms.
            while not stop_requested.wait(0.5):
                pass
        finally:
            server.stop(config.grace).wait()
    return 0


START_TIMEOUT = 60.0
"""Seconds each ``--processes`` child gets to open the stores and start listening."""


def serve_processes(config: ServerConfig, count: int) -> int:
    """Run ``count`` server processes sharing one port, until SIGTERM or SIGINT.

    The port is checked and, for port 0, chosen here first; a socket bound with
    SO_REUSEPORT holds it until every child listens on it too (also with SO_REUSEPORT),
    and the kernel then spreads incoming connections over the children. The stores are
    created (and the demo rules published) once here, so the children never race to set
    them up; each child hot-reloads from the shared SQLite file on its own. Children are
    spawned, not forked (gRPC does not survive a fork). SIGTERM or SIGINT is passed on
    to every child, each stops gracefully within ``grace`` seconds, and the exit code is
    0 when all of them exited 0. A child that dies unexpectedly stops the others: exit 1,
    for the process manager to restart the whole group.
    """
    try:
        holder, port = _reserve_port(config.host, config.port)
        _prepare_stores(config)
    except (OSError, ConfigError, ValueError, sqlite3.Error, StoreError) as exc:
        logger.error("cannot start: %s", exc, extra={"event": "start_failed"})
        return 1
    context = multiprocessing.get_context("spawn")
    children: list[Any] = []
    code = 0
    with holder, _stop_signals(config.grace) as stop_requested:
        try:
            for i in range(count):
                child_config = dataclasses.replace(
                    config,
                    port=port,
                    demo=False,
                    processes=1,
                    reuse_port=True,
                    metrics_port=config.metrics_port and config.metrics_port + i,
                )
                receiver, sender = context.Pipe(duplex=False)
                child = context.Process(
                    target=_child_main, args=(child_config, sender), name=f"decide-serve-{i}"
                )
                child.start()
                sender.close()
                children.append((child, receiver))
            if not _await_children(children, stop_requested):
                code = 1
            else:
                holder.close()
                logger.info(
                    "%d server processes on %s:%d",
                    len(children),
                    config.host,
                    port,
                    extra={
                        "event": "processes_started",
                        "port": port,
                        "pids": [child.pid for child, _ in children],
                    },
                )
                while not stop_requested.wait(0.5):
                    dead = [child for child, _ in children if not child.is_alive()]
                    if dead:
                        logger.error(
                            "server process %d exited with code %s; stopping the others",
                            dead[0].pid,
                            dead[0].exitcode,
                            extra={"event": "process_died", "pid": dead[0].pid},
                        )
                        code = 1
                        break
        finally:
            for child, _ in children:
                if child.is_alive():
                    child.terminate()  # SIGTERM: the child's own graceful shutdown
            deadline = time.monotonic() + config.grace + 10
            for child, _ in children:
                child.join(max(0.0, deadline - time.monotonic()))
                if child.is_alive():
                    child.kill()
                    child.join(5)
                if child.exitcode != 0:
                    code = 1
    return code


def _child_main(config: ServerConfig, ready: Any) -> None:
    """A ``--processes`` child: serve until SIGTERM; the exit code is serve's."""
    configure_logging(config.log_level, config.log_json)
    sys.exit(_serve_one(config, ready))


def _await_children(children: list[Any], stop_requested: threading.Event) -> bool:
    """Whether every child reported that it listens (False: one failed, or stop asked)."""
    deadline = time.monotonic() + START_TIMEOUT
    for child, receiver in children:
        while not receiver.poll(0.2):
            if stop_requested.is_set() or not child.is_alive() or time.monotonic() > deadline:
                if not stop_requested.is_set():
                    logger.error(
                        "server process %d did not start",
                        child.pid,
                        extra={"event": "start_failed"},
                    )
                return False
        try:
            receiver.recv()
        except EOFError:  # it exited before reporting; it logged why
            return False
        finally:
            receiver.close()
    return True


def _reserve_port(host: str, port: int) -> tuple[socket.socket, int]:
    """A socket holding ``host:port`` for SO_REUSEPORT listeners, and the port number.

    A plain bind first fails if anything holds the port (which SO_REUSEPORT alone would
    not notice when the holder also set it), and picks a free port for port 0.
    """
    family, kind, _, _, address = socket.getaddrinfo(
        host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    with socket.socket(family, kind) as check:
        try:
            check.bind(address)
        except OSError as exc:
            raise OSError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
        port = check.getsockname()[1]
    holder = socket.socket(family, kind)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind((address[0], port, *address[2:]))
    return holder, port


def _prepare_stores(config: ServerConfig) -> None:
    """Create (or check) the stores and publish the demo rules before any child."""
    storage = open_storage(config)
    try:
        if config.demo:
            publish_demo(storage.rules)
    finally:
        storage.close()
