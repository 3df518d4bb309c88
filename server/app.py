"""Assemble and run one server: stores, reloader, pools, and the grpc.aio server on its loop.

``create_server(config)`` returns a started server and its bound port (port 0 picks a
free one), which is what tests and embedders need. The gRPC server runs on an asyncio
event loop in a thread of its own ("decide-loop"); every call's Python runs there, one
at a time, so no call ever waits for a thread another call holds. Blocking work goes
to bounded pools (``server.executors``): commits, store administration, reports.
``server.processes`` runs one such server per core and handles signals.

**Limits** (each a ``ServerConfig`` field and a ``DECIDE_*`` variable; README,
"Operations"): per connection at most ``max_concurrent_streams`` calls at once
(HTTP/2 SETTINGS); a connection must finish its handshake within
``handshake_timeout``; a connection with no call for ``max_connection_idle`` is closed,
and every connection is closed after ``max_connection_age`` (plus a grace for its
calls), which also rebalances clients over the processes of ``--processes``; the
server pings a connection silent for ``keepalive_time`` and drops it when the ping
goes unanswered for ``keepalive_timeout`` (a vanished peer), and refuses client pings
closer than ``min_ping_interval`` (two strikes: GOAWAY); a client stream that sends
nothing for ``idle_stream_timeout`` is closed; each method has a cap on calls in
flight past which calls are shed with RESOURCE_EXHAUSTED (``server.api.interceptors``).

Storage: the stores come from ``server.storage.open_storage(config)``, a SQLite file
or a PostgreSQL database shared by many deciders; nothing here asks which. Reports,
estimates, exports and the daily segment sizes read the storage's ``scan_file``; a
storage without one (PostgreSQL, until issue 11's part 2) answers those calls
FAILED_PRECONDITION and takes no size snapshots.

Shutdown order (``DecideServer.stop``): health turns NOT_SERVING (load balancers stop
sending), the server stops accepting calls and gives in-flight ones ``grace`` seconds,
the reloader and the size snapshots stop; then the estimate workers are killed (a scan
still running ends), the pools finish, every buffered exposure is written, the metrics
endpoint and the stores close, and the loop stops.

Health: ``""`` and ``decisioning.v1.DecisionService`` are NOT_SERVING until the first
good ruleset is loaded. ``decisioning.v1.RulesAdmin`` is SERVING from the start: it is
how an operator fixes a store whose active document is bad. The event, profile and
insights services need no rules and are SERVING from the start too.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2

import decision
from server import limits
from server.activation.runtime import Activation
from server.analytics.scan_pool import ScanPool
from server.analytics.sizes import SizeSnapshots
from server.api.activation_service import ActivationServicer
from server.api.convert import utcnow
from server.api.decision_service import DecisionServicer
from server.api.event_service import EventServicer
from server.api.handlers import (
    HealthServicer,
    register,
    register_health_and_reflection,
    service_descriptor,
)
from server.api.insights_service import InsightsServicer
from server.api.interceptors import (
    ACTIVATION_SERVICE,
    ADMIN_SERVICE,
    DECISION_SERVICE,
    EVENT_SERVICE,
    INSIGHTS_SERVICE,
    PROFILE_SERVICE,
    Credentials,
    Edge,
)
from server.api.profile_service import ProfileServicer
from server.api.rules_admin import RulesAdminServicer
from server.config import ConfigError, ServerConfig
from server.executors import Pools
from server.metrics import Metrics
from server.profiles.store import ProfileStore
from server.rules.documents import dump_document
from server.rules.reloader import Reloader
from server.rules.snapshot import Snapshot
from server.rules.store import SEED_AUTHOR, RulesStore
from server.storage import ExposureSink, Storage, open_storage

logger = logging.getLogger("decide.server")

OVERALL = ""
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

SERVICES = (
    "DecisionService",
    "RulesAdmin",
    "EventService",
    "ProfileService",
    "InsightsService",
    "ActivationService",
)

T = TypeVar("T")


def new_event_loop(kind: str) -> asyncio.AbstractEventLoop:
    """An event loop of ``kind`` (``ServerConfig.event_loop``): uvloop, the standard
    library's, or for "auto" uvloop when it is installed."""
    if kind in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise ConfigError("event_loop", "uvloop is not installed") from None
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


class _Loop:
    """An asyncio event loop running in its own thread."""

    def __init__(self, kind: str = "auto") -> None:
        self.loop = new_event_loop(kind)
        self._thread = threading.Thread(target=self._run, name="decide-loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coroutine`` on the loop and wait for its result (from another thread)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def soon(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` on the loop soon; harmless once the loop is closed."""
        if not self.loop.is_closed():
            try:
                self.loop.call_soon_threadsafe(callback)
            except RuntimeError:  # closed between the check and the call
                pass

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        if self._thread is not threading.current_thread():
            self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()


class _Health:
    """The health service's statuses, settable from any thread."""

    def __init__(self, loop: _Loop, servicer: Any) -> None:
        self._loop = loop
        self.servicer = servicer

    def set(self, service: str, status: Any) -> None:
        def apply() -> None:
            asyncio.ensure_future(self.servicer.set(service, status))

        self._loop.soon(apply)


class DecideServer:
    """A running server: the grpc.aio server on its loop, and everything it owns.

    ``stop(grace)`` shuts all of it down; the returned event is set once everything has
    stopped.
    """

    def __init__(
        self,
        *,
        loop: _Loop,
        server: grpc.aio.Server,
        config: ServerConfig,
        port: int,
        storage: Storage,
        owns_storage: bool,
        reloader: Reloader,
        health: _Health,
        metrics: Metrics,
        metrics_port: int | None,
        pools: Pools,
        edge: Edge,
        sizes: SizeSnapshots | None,
        scan_pool: ScanPool | None,
        activation: Activation | None = None,
    ) -> None:
        self.loop = loop
        self.server = server
        self.config = config
        self.port = port
        self.storage = storage
        self.store = storage.rules
        self.profiles = storage.profiles
        self.reloader = reloader
        self.health = health
        self.metrics = metrics
        self.metrics_port = metrics_port
        self.pools = pools
        self.edge = edge
        self.exposures = storage.exposures
        self.sizes = sizes
        self.scan_pool = scan_pool
        self.activation = activation
        self._owns_storage = owns_storage
        self._stop_lock = threading.Lock()
        self._stopped: threading.Event | None = None

    def stop(self, grace: float | None) -> threading.Event:
        """Stop gracefully: NOT_SERVING first, then in-flight calls get ``grace`` seconds."""
        with self._stop_lock:
            if self._stopped is not None:
                return self._stopped
            self._stopped = done = threading.Event()

        async def stop_serving() -> None:
            await self.health.servicer.enter_graceful_shutdown()
            await self.server.stop(grace)

        terminated = self.loop.submit(stop_serving())
        self.reloader.stop()
        if self.sizes is not None:
            self.sizes.stop()

        def finish() -> None:
            try:
                terminated.result()
            except Exception:  # the server is stopping either way; say why it was untidy
                logger.exception("stopping the gRPC server failed", extra={"event": "stop_error"})
            if self.scan_pool is not None:
                # After the grace period: an estimate still scanning stops now (its
                # call was cancelled) instead of holding the process for seconds.
                self.scan_pool.close()
            self.pools.shutdown()
            if self.activation is not None:
                self.activation.stop_worker()  # no detection or deliveries any more
            # No call is running any more: write every exposure still buffered before
            # the stores close (a clean stop loses none); the storage's close does it.
            # The activation stores stay open meanwhile: the last exposures written
            # still record their assignments.
            if self._owns_storage:
                self.storage.close()
            elif self.exposures is not None:
                self.exposures.flush()
            if self.activation is not None:
                self.activation.close()
            self.metrics.shutdown()
            self.loop.close()
            logger.info("server stopped", extra={"event": "server_stopped", "port": self.port})
            done.set()

        threading.Thread(target=finish, name="decide-shutdown", daemon=True).start()
        return done


def server_options(config: ServerConfig) -> list[tuple[str, Any]]:
    """The gRPC core settings of the module docstring's "Limits"."""

    def ms(seconds: float) -> int:
        return int(seconds * 1000)

    return [
        ("grpc.max_receive_message_length", limits.MAX_RECEIVE_MESSAGE_BYTES),
        ("grpc.max_concurrent_streams", config.max_concurrent_streams),
        ("grpc.server_handshake_timeout_ms", ms(config.handshake_timeout)),
        ("grpc.max_connection_idle_ms", ms(config.max_connection_idle)),
        ("grpc.max_connection_age_ms", ms(config.max_connection_age)),
        ("grpc.max_connection_age_grace_ms", ms(config.max_connection_age_grace)),
        ("grpc.keepalive_time_ms", ms(config.keepalive_time)),
        ("grpc.keepalive_timeout_ms", ms(config.keepalive_timeout)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", ms(config.min_ping_interval)),
        ("grpc.http2.min_ping_interval_without_data_ms", ms(config.min_ping_interval)),
        ("grpc.http2.max_ping_strikes", 2),
        # Without this, Linux lets a second server bind a port already in use.
        # --processes N turns it on: its N processes share one port on purpose.
        ("grpc.so_reuseport", 1 if config.reuse_port else 0),
    ]


def create_server(
    config: ServerConfig,
    *,
    storage: Storage | None = None,
    store: RulesStore | None = None,
    profiles: ProfileStore | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> tuple[DecideServer, int]:
    """Build, bind and start a server; returns it and its bound port.

    ``storage``: share an open storage (the caller keeps ownership); by default the
    server opens the one ``config.store`` names (``server.storage.open_storage``) and
    closes it on stop. ``store`` and ``profiles``: a rules store and a profile store
    the caller opened and keeps, used instead of the storage's own (an injected
    profile store records no exposures). ``clock`` gives decisions their ``now``.
    """
    owns_storage = storage is None
    metrics = Metrics()
    opened: list[Callable[[], object]] = []  # undone in reverse on a failed start
    try:
        if storage is None:
            # A damaged file, an unreachable database or a schema of another version is
            # refused here, rather than answering some calls with errors while serving.
            storage = open_storage(config, metrics=metrics, rules=store, profiles=profiles)
            opened.append(storage.close)
        store = storage.rules
        profiles = storage.profiles
        exposures = storage.exposures
        if config.demo:
            publish_demo(store)
        # Activation (batch decisions, segment changes, webhooks, stored assignments) keeps
        # its tables in the SQLite profile file (server.activation); a PostgreSQL store
        # has none yet, and an injected profile store records no exposures to follow.
        activation: Activation | None = None
        if exposures is not None and storage.scan_file is not None:
            activation = Activation(config, storage.scan_file, profiles, clock)
            opened.append(activation.close)
        loop = _Loop(config.event_loop)
        opened.append(loop.close)
        health_servicer = HealthServicer()
        health_state = _Health(loop, health_servicer)

        def on_load(snapshot: Snapshot) -> None:
            metrics.observe_load(snapshot.version, snapshot.loaded_at.timestamp())
            # Keep what the served rules' activity clauses read; a publish that reads
            # more is back-filled in the background (GetStatus says how far).
            profiles.use_activity(snapshot.ruleset.activity)
            for name in (OVERALL, DECISION_SERVICE):
                health_state.set(name, SERVING)

        reloader = Reloader(
            storage.watch_rules(),
            poll_interval=config.poll_interval,
            clock=clock,
            on_load=on_load,
            on_error=lambda version, message: metrics.observe_reload_error(),
        )
        opened.append(reloader.stop)
        metrics.watch_backfill(profiles.activity_status)
        reloader.poll_once()  # serve from the first call if the store is good
        if activation is not None:
            activation.attach(reloader, exposures)
        tracking = profiles if activation is None else activation.tracking_profiles()
        pools = Pools(
            write_threads=config.write_threads,
            write_queue=config.write_queue,
            report_threads=config.report_threads,
            report_queue=config.report_queue,
            read_threads=config.read_threads,
            read_queue=config.read_queue,
        )
        opened.append(pools.shutdown)
        scan_pool = ScanPool(config.scan_processes or None, min_profiles=config.scan_min_profiles)
        opened.append(scan_pool.close)
        credentials = Credentials(config.admin_token, config.api_keys)
        edge = Edge(credentials, metrics=metrics, max_in_flight=dict(config.max_in_flight))
        servicers = {
            "DecisionService": DecisionServicer(
                reloader,
                profiles,
                reads=pools.reads,
                max_placements=config.max_placements,
                clock=clock,
                metrics=metrics,
                exposures=exposures,
                credentials=credentials,
                identities=None if activation is None else activation.identities,
            ),
            "RulesAdmin": RulesAdminServicer(
                store, reloader, pool=pools.writes, backfill=profiles.activity_status
            ),
            "EventService": EventServicer(
                tracking,
                clock=clock,
                pool=pools.writes,
                metrics=metrics,
                idle_timeout=config.idle_stream_timeout,
            ),
            "ProfileService": ProfileServicer(
                tracking if exposures is None else _FlushFirst(tracking, exposures),
                clock=clock,
                pool=pools.writes,
            ),
            "InsightsService": InsightsServicer(
                reloader,
                storage.scan_file,
                backend=storage.backend,
                clock=clock,
                window_days=config.attribution_window_days,
                pool=pools.reports,
                exposures=exposures,
                scan_pool=scan_pool,
            ),
        }
        if activation is not None:
            servicers["ActivationService"] = ActivationServicer(
                reloader,
                profiles=profiles,
                assignments=activation.stores.assignments,
                changes=activation.stores.changes,
                webhooks=activation.stores.webhooks,
                feed=activation.feed,
                profile_path=activation.profile_path,
                exposures=exposures,
                reports=pools.reports,
                reads=pools.reads,
                writes=pools.writes,
                clock=clock,
                max_visitors=config.max_batch_visitors,
                max_placements=config.max_placements,
            )

        async def start() -> tuple[grpc.aio.Server, int]:
            server = grpc.aio.server(options=server_options(config))
            for name, servicer in servicers.items():
                register(server, servicer, service_descriptor(name), edge)
            for name in (OVERALL, DECISION_SERVICE):
                await health_servicer.set(
                    name, SERVING if reloader.snapshot is not None else NOT_SERVING
                )
            for name in (ADMIN_SERVICE, EVENT_SERVICE, PROFILE_SERVICE, INSIGHTS_SERVICE):
                await health_servicer.set(name, SERVING)
            if activation is not None:
                await health_servicer.set(ACTIVATION_SERVICE, SERVING)
            names = [service_descriptor(name).full_name for name in SERVICES]
            names += [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name]
            register_health_and_reflection(server, health_servicer, names)
            port = bind(server, config)
            await server.start()
            return server, port

        server, port = loop.call(start())
        reloader.start()
        sizes: SizeSnapshots | None = None
        if storage.scan_file is not None:
            sizes = SizeSnapshots(storage.scan_file, reloader, clock)
            sizes.start()
            opened.append(sizes.stop)
        metrics_port = (
            metrics.serve(config.metrics_port, config.host)
            if config.metrics_port is not None
            else None
        )
    except BaseException:
        metrics.shutdown()
        for undo in reversed(opened):
            undo()
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
        loop=loop,
        server=server,
        config=config,
        port=port,
        storage=storage,
        owns_storage=owns_storage,
        reloader=reloader,
        health=health_state,
        metrics=metrics,
        metrics_port=metrics_port,
        pools=pools,
        edge=edge,
        sizes=sizes,
        scan_pool=scan_pool,
        activation=activation,
    )
    return wrapper, port


class _FlushFirst:
    """ProfileService's view of the profile store: pending exposures are written before
    a visitor is exported or deleted, so an exposure buffered just before DeleteVisitor
    cannot reach the file after it (and an export shows everything)."""

    def __init__(self, profiles: ProfileStore, exposures: ExposureSink) -> None:
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


def publish_demo(store: RulesStore) -> None:
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


def bind(server: grpc.aio.Server, config: ServerConfig) -> int:
    """Listen on ``config.host:port``; the bound port. ``OSError`` saying why not."""
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
        raise OSError(f"cannot listen on {address}: {_bind_reason(config)}") from exc
    if port == 0:
        raise OSError(f"cannot listen on {address}: {_bind_reason(config)}")
    return port


def _bind_reason(config: ServerConfig) -> str:
    """Why a bind failed, found by trying it ourselves (gRPC only says that it did)."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(
            config.host.strip("[]"), config.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        return f"cannot resolve {config.host!r}: {exc.strerror}"
    family, kind, _, _, address = infos[0]
    with socket.socket(family, kind) as probe:
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return "the address is already in use (is another server running on this port?)"
            if exc.errno == errno.EACCES:
                return "permission denied (ports below 1024 need privileges)"
            if exc.errno == errno.EADDRNOTAVAIL:
                return f"{config.host} is not an address of this machine"
            return exc.strerror or str(exc)
    return "gRPC could not listen there (GRPC_VERBOSITY=debug says more)"


def _read(path: str, key: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(key, f"cannot read {path}: {exc.strerror}") from exc


__all__ = ["DecideServer", "bind", "create_server", "publish_demo", "server_options"]
