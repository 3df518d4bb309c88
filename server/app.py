"""Assemble and run the server: services, health, reflection, interceptors, reloader, metrics.

``create_server(config)`` returns a started server and its bound port (port 0 picks a
free one), which is what tests and embedders need. ``serve(config)`` is the process
main: it starts a server, waits for SIGTERM or SIGINT, then shuts down gracefully.

Shutdown order: health turns NOT_SERVING (load balancers stop sending), the server
stops accepting calls and gives in-flight ones ``grace`` seconds, the reloader stops;
then the estimate workers are killed (a scan still running ends), the metrics endpoint
closes.

``serve`` with ``config.processes`` > 1 runs that many server processes on one port
(SO_REUSEPORT), supervised by the calling process: see ``serve_processes``.

Health: ``""`` and ``decisioning.v1.DecisionService`` are NOT_SERVING until the first
good ruleset is loaded. ``decisioning.v1.RulesAdmin`` is SERVING from the start: it is
how an operator fixes a store whose active document is bad. ``decisioning.v1.
EventService`` and ``decisioning.v1.ProfileService`` need no rules and are SERVING from
the start too; they are registered only when the profile backend can store events
(``SQLiteProfileStore`` by default; an injected read-only backend gets neither).
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
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any, Protocol, TypeGuard

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

import decision
from protos import decisioning_pb2 as pb
from protos import decisioning_pb2_grpc as pb_grpc
from server import limits
from server.analytics.exposures import ExposureRecorder
from server.analytics.scan_pool import ScanPool
from server.api.decision_service import DecisionServicer, RulesAdminServicer, utcnow
from server.api.event_service import EventServicer, EventSink
from server.api.insights_service import InsightsServicer, SizeSnapshots
from server.api.interceptors import (
    ADMIN_SERVICE,
    DECISION_SERVICE,
    EVENT_SERVICE,
    INSIGHTS_SERVICE,
    PROFILE_SERVICE,
    AuthInterceptor,
    MetricsInterceptor,
)
from server.api.profile_service import ProfileAdmin, ProfileServicer
from server.config import ConfigError, ServerConfig
from server.logs import configure_logging
from server.memory import tune_malloc
from server.metrics import Metrics
from server.profiles.cache import CachedProfileStore, ProfileStore
from server.profiles.sqlite import SQLiteProfileStore
from server.rules.documents import dump_document
from server.rules.reloader import Reloader
from server.rules.snapshot import Snapshot
from server.rules.sqlite import SEED_AUTHOR, RulesStore

logger = logging.getLogger("decide.server")

OVERALL = ""
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

SERVICE_NAMES = (
    pb.DESCRIPTOR.services_by_name["DecisionService"].full_name,
    pb.DESCRIPTOR.services_by_name["RulesAdmin"].full_name,
    health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
    reflection.SERVICE_NAME,
)
PROFILE_SERVICE_NAMES = (
    pb.DESCRIPTOR.services_by_name["EventService"].full_name,
    pb.DESCRIPTOR.services_by_name["ProfileService"].full_name,
)
INSIGHTS_SERVICE_NAMES = (pb.DESCRIPTOR.services_by_name["InsightsService"].full_name,)
_PROFILE_OPERATIONS = ("track", "set_attributes", "delete_visitor", "export_visitor")


class _EventStore(EventSink, ProfileAdmin, Protocol):
    """A profile backend that also stores events and manages visitors."""


def _stores_events(profiles: object) -> TypeGuard[_EventStore]:
    """Whether a profile backend supports EventService and ProfileService."""
    return all(callable(getattr(profiles, name, None)) for name in _PROFILE_OPERATIONS)


class DecideServer(grpc.Server):
    """A started ``grpc.Server`` that also owns the reloader, metrics and health state.

    ``stop(grace)`` shuts all of it down; the returned event is set once everything has
    stopped.
    """

    def __init__(
        self,
        server: grpc.Server,
        *,
        config: ServerConfig,
        port: int,
        store: RulesStore,
        owns_store: bool,
        profiles: ProfileStore,
        owns_profiles: bool,
        reloader: Reloader,
        health: health.HealthServicer,
        metrics: Metrics,
        metrics_port: int | None,
        exposures: ExposureRecorder | None = None,
        sizes: SizeSnapshots | None = None,
        scan_pool: ScanPool | None = None,
    ) -> None:
        self.server = server
        self.exposures = exposures
        self.sizes = sizes
        self.scan_pool = scan_pool
        self.config = config
        self.port = port
        self.store = store
        self.profiles = profiles
        self.reloader = reloader
        self.health = health
        self.metrics = metrics
        self.metrics_port = metrics_port
        self._owns_store = owns_store
        self._owns_profiles = owns_profiles
        self._stop_lock = threading.Lock()
        self._stopped: threading.Event | None = None

    # grpc.Server interface: delegate to the real server.
    def add_generic_rpc_handlers(self, generic_rpc_handlers: Any) -> None:
        self.server.add_generic_rpc_handlers(generic_rpc_handlers)

    def add_registered_method_handlers(self, service_name: str, method_handlers: Any) -> None:
        self.server.add_registered_method_handlers(service_name, method_handlers)

    def add_insecure_port(self, address: str) -> int:
        return self.server.add_insecure_port(address)

    def add_secure_port(self, address: str, server_credentials: grpc.ServerCredentials) -> int:
        return self.server.add_secure_port(address, server_credentials)

    def start(self) -> None:
        self.server.start()

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        return self.server.wait_for_termination(timeout)

    def stop(self, grace: float | None) -> threading.Event:
        """Stop gracefully: NOT_SERVING first, then in-flight calls get ``grace`` seconds."""
        with self._stop_lock:
            if self._stopped is not None:
                return self._stopped
            self._stopped = done = threading.Event()
        self.health.enter_graceful_shutdown()
        terminated = self.server.stop(grace)
        self.reloader.stop()
        if self.sizes is not None:
            self.sizes.stop()

        def finish() -> None:
            terminated.wait()
            if self.scan_pool is not None:
                # After the grace period: an estimate still scanning stops now (its
                # call was cancelled) instead of holding the process for seconds.
                self.scan_pool.close()
            if self.exposures is not None:
                # No call is running any more: write every exposure still buffered
                # before the store closes (a clean stop loses none).
                self.exposures.close()
            self.metrics.shutdown()
            if self._owns_store:
                self.store.close()
            if self._owns_profiles and isinstance(self.profiles, SQLiteProfileStore):
                self.profiles.close()
            logger.info("server stopped", extra={"event": "server_stopped", "port": self.port})
            done.set()

        threading.Thread(target=finish, name="decide-shutdown", daemon=True).start()
        return done


def create_server(
    config: ServerConfig,
    *,
    store: RulesStore | None = None,
    profiles: ProfileStore | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> tuple[DecideServer, int]:
    """Build, bind and start a server; returns it and its bound port.

    ``store``: share an open store (the caller keeps ownership); by default the server
    opens ``config.db_path`` and closes it on stop. ``profiles``: the profile backend
    (the caller keeps ownership); by default a ``SQLiteProfileStore`` on
    ``config.profile_db_path``, else on the rules store's file, closed on stop. A
    ``SQLiteProfileStore`` caches reads itself and invalidates on write; any other
    backend is wrapped in a TTL cache sized by the config. ``clock`` gives decisions
    their ``now``.
    """
    owns_store = store is None
    if store is None:
        store = RulesStore(config.db_path)
    owns_profiles = profiles is None
    metrics = Metrics()
    reloader: Reloader | None = None
    server: grpc.Server | None = None
    exposures: ExposureRecorder | None = None
    sizes: SizeSnapshots | None = None
    scan_pool: ScanPool | None = None
    try:
        if profiles is None:
            profiles = SQLiteProfileStore(
                # By default the rules store's file (config.db_path unless injected).
                config.profile_db_path or store.path,
                cache_size=config.profile_cache_size,
                cache_ttl=config.profile_cache_ttl,
            )
        if config.demo:
            _publish_demo(store)
        if isinstance(profiles, SQLiteProfileStore):
            exposures = ExposureRecorder(profiles.path, metrics=metrics)
        health_servicer = health.HealthServicer(experimental_non_blocking=True)
        for name in (OVERALL, DECISION_SERVICE):
            health_servicer.set(name, NOT_SERVING)
        health_servicer.set(ADMIN_SERVICE, SERVING)

        def on_load(snapshot: Snapshot) -> None:
            metrics.observe_load(snapshot.version, snapshot.loaded_at.timestamp())
            for name in (OVERALL, DECISION_SERVICE):
                health_servicer.set(name, SERVING)

        reloader = Reloader(
            store.path,
            poll_interval=config.poll_interval,
            clock=clock,
            on_load=on_load,
            on_error=lambda version, message: metrics.observe_reload_error(),
        )
        reloader.poll_once()  # serve from the first call if the store is good

        server = grpc.server(
            futures.ThreadPoolExecutor(
                max_workers=config.max_workers, thread_name_prefix="decide-rpc"
            ),
            interceptors=[
                MetricsInterceptor(metrics),  # outermost: counts rejected calls too
                AuthInterceptor(config.admin_token, config.api_keys),
            ],
            options=[
                ("grpc.max_receive_message_length", limits.MAX_RECEIVE_MESSAGE_BYTES),
                # Without this, Linux lets a second server bind a port already in use.
                # --processes N turns it on: its N processes share one port on purpose.
                ("grpc.so_reuseport", 1 if config.processes > 1 else 0),
            ],
        )
        cached: ProfileStore = (
            profiles
            if isinstance(profiles, SQLiteProfileStore)
            else CachedProfileStore(
                profiles,
                maxsize=config.profile_cache_size,
                ttl=config.profile_cache_ttl,
            )
        )
        pb_grpc.add_DecisionServiceServicer_to_server(  # type: ignore[no-untyped-call]
            DecisionServicer(
                reloader,
                cached,
                max_placements=config.max_placements,
                clock=clock,
                metrics=metrics,
                exposures=exposures,
            ),
            server,
        )
        pb_grpc.add_RulesAdminServicer_to_server(  # type: ignore[no-untyped-call]
            RulesAdminServicer(store, reloader), server
        )
        service_names: tuple[str, ...] = SERVICE_NAMES
        if _stores_events(profiles):
            pb_grpc.add_EventServiceServicer_to_server(  # type: ignore[no-untyped-call]
                EventServicer(profiles, clock=clock, metrics=metrics),
                server,
            )
            pb_grpc.add_ProfileServiceServicer_to_server(  # type: ignore[no-untyped-call]
                ProfileServicer(
                    profiles if exposures is None else _FlushFirst(profiles, exposures),
                    clock=clock,
                ),
                server,
            )
            for name in (EVENT_SERVICE, PROFILE_SERVICE):
                health_servicer.set(name, SERVING)
            service_names = SERVICE_NAMES[:2] + PROFILE_SERVICE_NAMES + SERVICE_NAMES[2:]
        if isinstance(profiles, SQLiteProfileStore):
            # Worker processes start with the first large estimate, not here.
            scan_pool = ScanPool(
                config.scan_processes or None, min_profiles=config.scan_min_profiles
            )
            pb_grpc.add_InsightsServiceServicer_to_server(  # type: ignore[no-untyped-call]
                InsightsServicer(
                    reloader,
                    profiles.path,
                    clock=clock,
                    window_days=config.attribution_window_days,
                    exposures=exposures,
                    scan_pool=scan_pool,
                ),
                server,
            )
            sizes = SizeSnapshots(profiles.path, reloader, clock)
            health_servicer.set(INSIGHTS_SERVICE, SERVING)
            service_names = service_names[:-2] + INSIGHTS_SERVICE_NAMES + service_names[-2:]
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection(service_names, server)

        port = _bind(server, config)
        server.start()
        reloader.start()
        if sizes is not None:
            sizes.start()
        metrics_port = (
            metrics.serve(config.metrics_port, config.host)
            if config.metrics_port is not None
            else None
        )
    except BaseException:
        if server is not None:
            server.stop(None)
        if reloader is not None:
            reloader.stop()
        if sizes is not None:
            sizes.stop()
        if scan_pool is not None:
            scan_pool.close()
        metrics.shutdown()
        if exposures is not None:
            exposures.close()
        if owns_profiles and isinstance(profiles, SQLiteProfileStore):
            profiles.close()
        if owns_store:
            store.close()
        raise
    snapshot = reloader.snapshot
    logger.info(
        "server started on %s:%d (rules version %s)",
        config.host,
        port,
        snapshot.version if snapshot else "none",
        extra={
            "event": "server_started",
            "host": config.host,
            "port": port,
            "metrics_port": metrics_port,
            "tls": config.tls,
            "rules_version": snapshot.version if snapshot else 0,
        },
    )
    if config.admin_token is None:
        logger.warning(
            "no admin token configured: RulesAdmin calls are refused",
            extra={"event": "admin_disabled"},
        )
    wrapper = DecideServer(
        server,
        config=config,
        port=port,
        store=store,
        owns_store=owns_store,
        profiles=profiles,
        owns_profiles=owns_profiles,
        reloader=reloader,
        health=health_servicer,
        metrics=metrics,
        metrics_port=metrics_port,
        exposures=exposures,
        sizes=sizes,
        scan_pool=scan_pool,
    )
    return wrapper, port


class _FlushFirst:
    """ProfileService's view of the profile store: pending exposures are written before
    a visitor is exported or deleted, so an exposure buffered just before DeleteVisitor
    cannot reach the file after it (and an export shows everything)."""

    def __init__(self, profiles: _EventStore, exposures: ExposureRecorder) -> None:
        self._profiles = profiles
        self._exposures = exposures

    def get(self, visitor_id: str) -> dict[str, Any] | None:
        return self._profiles.get(visitor_id)

    def set_attributes(self, visitor_id: str, attributes: Any, now: datetime) -> dict[str, Any]:
        return self._profiles.set_attributes(visitor_id, attributes, now)

    def delete_visitor(self, visitor_id: str) -> int:
        self._exposures.flush()
        return self._profiles.delete_visitor(visitor_id)

    def export_visitor(self, visitor_id: str) -> dict[str, Any]:
        self._exposures.flush()
        return self._profiles.export_visitor(visitor_id)


def _publish_demo(store: RulesStore) -> None:
    """--demo: publish the demo rules into a store nobody has published to yet."""
    info = store.publish_if_pristine(
        dump_document(decision.demo_document()),
        comment="demo rules (--demo)",
        author=SEED_AUTHOR,
    )
    if info is None:
        logger.info(
            "--demo: the store already holds published rules; leaving them active",
            extra={"event": "demo_skipped"},
        )
    else:
        logger.info(
            "--demo: published the demo rules as version %d",
            info.version,
            extra={"event": "demo_published", "version": info.version},
        )


def _bind(server: grpc.Server, config: ServerConfig) -> int:
    host = (
        f"[{config.host}]"
        if ":" in config.host and not config.host.startswith("[")
        else config.host
    )
    address = f"{host}:{config.port}"
    try:
        if config.tls_cert is not None and config.tls_key is not None:
            credentials = grpc.ssl_server_credentials(
                [(_read(config.tls_key, "tls_key"), _read(config.tls_cert, "tls_cert"))]
            )
            port = server.add_secure_port(address, credentials)
        else:
            port = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise OSError(f"cannot listen on {address}: {exc}") from exc
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    return port


def _read(path: str, key: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(key, f"cannot read {path}: {exc.strerror}") from exc


def serve(config: ServerConfig) -> int:
    """Run a server until SIGTERM or SIGINT; returns the process exit code.

    0 after a graceful shutdown; 1 when the server cannot start (the reason is logged).
    With ``config.processes`` > 1, runs that many server processes instead (see
    ``serve_processes``). Must be called from the main thread (it installs signal
    handlers).
    """
    configure_logging(config.log_level, config.log_json)
    if config.processes > 1:
        return serve_processes(config)
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
    """One server process; ``ready`` (a pipe end) is sent the bound port once serving."""
    tune_malloc()  # keeps the heap from creeping up over days (server/memory.py)
    with _stop_signals(config.grace) as stop_requested:
        try:
            server, port = create_server(config)
        except (OSError, ConfigError, ValueError, sqlite3.Error) as exc:
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


# -- several processes on one port --------------------------------------------------------

START_TIMEOUT = 60.0
"""Seconds each ``--processes`` child gets to open the stores and start listening."""


def serve_processes(config: ServerConfig) -> int:
    """Run ``config.processes`` server processes sharing one port, until SIGTERM or SIGINT.

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
    if not hasattr(socket, "SO_REUSEPORT"):
        logger.error(
            "cannot start: --processes needs SO_REUSEPORT", extra={"event": "start_failed"}
        )
        return 1
    try:
        holder, port = _reserve_port(config.host, config.port)
        _prepare_stores(config)
    except (OSError, ConfigError, ValueError, sqlite3.Error) as exc:
        logger.error("cannot start: %s", exc, extra={"event": "start_failed"})
        return 1
    context = multiprocessing.get_context("spawn")
    children: list[Any] = []
    code = 0
    with holder, _stop_signals(config.grace) as stop_requested:
        try:
            for i in range(config.processes):
                child_config = dataclasses.replace(
                    config,
                    port=port,
                    demo=False,
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
    """Create the rules and profile stores (and publish the demo rules) before any child."""
    store = RulesStore(config.db_path)
    try:
        if config.demo:
            _publish_demo(store)
        SQLiteProfileStore(config.profile_db_path or store.path).close()
    finally:
        store.close()
