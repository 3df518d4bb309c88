"""Server configuration: one frozen ``ServerConfig``, read from arguments and DECIDE_* variables.

Precedence: an explicit argument beats the environment, which beats the default. An
argument given as ``None`` counts as not given, so a CLI can pass its unset options
straight through. A bad value raises ``ConfigError`` naming the variable (or field).
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from server import limits
from server.analytics.scan_pool import DEFAULT_MIN_PROFILES

ENV_PREFIX = "DECIDE_"

DEFAULT_DB_PATH = "decide.db"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 50051
DEFAULT_POLL_INTERVAL = 0.2
DEFAULT_GRACE = 5.0
DEFAULT_LOG_LEVEL = "INFO"
# Threads of a synchronous gRPC server's pool: what loadtest's synchronous baseline
# uses (decide itself serves on an event loop).
DEFAULT_MAX_WORKERS = 4
# Server processes: 0 is "auto", one per core this process may run on.
DEFAULT_PROCESSES = 0
MAX_PROCESSES = 64
# Connections and streams (server/app.py, "Limits"). Each is a gRPC core setting.
DEFAULT_MAX_CONCURRENT_STREAMS = 100  # per connection (HTTP/2 SETTINGS)
DEFAULT_IDLE_STREAM_TIMEOUT = 60.0  # seconds a client stream may send nothing
DEFAULT_KEEPALIVE_TIME = 30.0  # the server pings a connection idle this long...
DEFAULT_KEEPALIVE_TIMEOUT = 10.0  # ...and closes it if the ping is not answered in this
DEFAULT_MIN_PING_INTERVAL = 10.0  # client pings closer than this are strikes
DEFAULT_MAX_CONNECTION_IDLE = 300.0  # a connection with no call this long is closed
DEFAULT_MAX_CONNECTION_AGE = 1800.0  # every connection is closed (GOAWAY) after this...
DEFAULT_MAX_CONNECTION_AGE_GRACE = 30.0  # ...its calls get this long to finish
DEFAULT_HANDSHAKE_TIMEOUT = 10.0  # a connection must finish its handshake in this
# Calls in flight per method before new ones are answered RESOURCE_EXHAUSTED; "*" is
# every method not named. One process runs one call at a time: 256 Decide calls
# queued behind each other already wait ~25 ms.
DEFAULT_MAX_IN_FLIGHT: tuple[tuple[str, int], ...] = (
    ("Decide", 256),
    ("GetVisitorSegments", 256),
    ("Track", 128),
    ("TrackStream", 256),
    ("CampaignReport", 8),
    ("SegmentReport", 8),
    ("EstimateSegment", 4),
    ("ExportSegment", 8),
    ("DecideBatch", 4),
    ("*", 64),
)
# The event loop: "uvloop" (libuv; less CPU per call), "asyncio" (the standard
# library's), or "auto": uvloop when it is installed.
DEFAULT_EVENT_LOOP = "auto"
EVENT_LOOPS = ("auto", "uvloop", "asyncio")
# Blocking work (server/executors.py): threads, and calls that may wait for one.
DEFAULT_WRITE_THREADS = 4
DEFAULT_WRITE_QUEUE = 256
DEFAULT_REPORT_THREADS = 2
DEFAULT_REPORT_QUEUE = 16
DEFAULT_READ_THREADS = 8
DEFAULT_READ_QUEUE = 512
DEFAULT_PROFILE_CACHE_SIZE = 100_000
# At most this many seconds may pass before a process sees a profile another process
# wrote to the shared file (its own writes invalidate at once): keep it about 1 s.
DEFAULT_PROFILE_CACHE_TTL = 1.0
# Clicks, conversions and purchases up to this many days after an exposure are
# attributed to it (README, "Attribution").
DEFAULT_ATTRIBUTION_WINDOW_DAYS = 7.0
MAX_ATTRIBUTION_WINDOW_DAYS = 365.0
MAX_SECONDS = 7 * 24 * 3600.0
"""Longest time any timeout or age setting may name: a week."""
# EstimateSegment splits its scan over this many worker processes (0: one per core),
# for stores of at least DEFAULT_SCAN_MIN_PROFILES profiles (server.analytics.scan_pool).
DEFAULT_SCAN_PROCESSES = 0
DEFAULT_SCAN_MIN_PROFILES = DEFAULT_MIN_PROFILES
# A PostgreSQL store (server/postgres/connections.py): connections per decider, at most
# the write (4), read (8) and report (2) pools' threads plus the exposure writer and the
# rules poll, so no thread waits for one with the default pool sizes.
DEFAULT_POOL_MIN = 2
DEFAULT_POOL_MAX = 16
DEFAULT_POOL_TIMEOUT = 2.0  # seconds a call waits for a pooled connection
DEFAULT_CONNECT_TIMEOUT = 5.0  # seconds to connect, unless the URL says (connect_timeout)

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
SQLITE_SCHEME = "sqlite:///"

# Activation (server.activation; README, "Triggers" and "Batch decisions").
DEFAULT_MAX_BATCH_VISITORS = 100_000  # visitors one DecideBatch call decides at most
DEFAULT_SEGMENT_SWEEP_INTERVAL = 600.0  # seconds between sweeps for time-driven changes
DEFAULT_CHANGE_RETENTION_DAYS = 7.0  # segment changes kept for resuming streams
DEFAULT_WEBHOOK_TIMEOUT = 5.0  # seconds a webhook POST may take
DEFAULT_WEBHOOK_ATTEMPTS = 8  # attempts before a delivery is dead-lettered
DEFAULT_WEBHOOK_BACKOFF = 1.0  # seconds before the first retry; doubles, capped at 5 min

_LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(ValueError):
    """A configuration value is unusable. ``key`` names the variable or field."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(f"{key}: {message}")


@dataclass(frozen=True, slots=True)
class StoreLocation:
    """Where the stores live: ``backend`` is ``"sqlite"`` (``path``: the file) or
    ``"postgresql"`` (``url``: a libpq URL)."""

    backend: str
    path: str = ""
    url: str = ""


def parse_store(text: str) -> StoreLocation:
    """``--store``/``DECIDE_STORE``: ``postgresql://...`` (or ``postgres://``) is the
    PostgreSQL store; ``sqlite:///PATH`` (SQLAlchemy's form: ``sqlite:///rel.db``,
    ``sqlite:////abs/path.db``) or a bare path is the SQLite store. ``ValueError``
    naming the accepted forms for anything else."""
    if text.startswith(POSTGRES_SCHEMES):
        return StoreLocation("postgresql", url=text)
    if text.startswith(SQLITE_SCHEME):
        path = text[len(SQLITE_SCHEME) :]
        if not path:
            raise ValueError("sqlite:/// needs a file path after it")
        return StoreLocation("sqlite", path=path)
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise ValueError(
            f"unknown store {scheme}://: expected a file path, sqlite:///PATH or "
            "postgresql://USER@HOST:PORT/DB"
        )
    return StoreLocation("sqlite", path=text)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything a server needs to start. Validated on construction.

    ``admin_token``: the bearer token RulesAdmin calls must carry; ``None`` refuses every
    admin call (there is no unauthenticated admin mode). ``api_keys``: when non-empty,
    DecisionService calls must carry one of them in ``x-api-key``. ``metrics_port``:
    ``None`` disables the Prometheus endpoint; 0 picks a free port. ``processes``: server
    processes sharing the port (SO_REUSEPORT); process i serves metrics on
    ``metrics_port + i``. ``profile_db_path``: where visitor events and profiles live;
    ``None`` keeps them in ``db_path``, in tables of their own.
    ``store``: where every store lives (``parse_store``): a SQLite file (``db_path`` is
    its alias, which ``store`` replaces) or a PostgreSQL URL, shared by every decider
    using it; ``pg_pool_min``/``pg_pool_max`` bound each decider's connections to it,
    ``pg_pool_timeout`` is how long a call waits for one and ``pg_connect_timeout``
    how long connecting may take (``server.postgres.connections``).
    ``attribution_window_days``: how long after an exposure a click, conversion or
    purchase is attributed to it. ``scan_processes``: worker processes an estimate's
    scan is split over (0: one per core; 1: none, scans run in the request thread), for
    stores of at least ``scan_min_profiles`` profiles. ``reuse_port``: listen with
    SO_REUSEPORT (set by ``server.processes`` for its children; otherwise Linux would
    let a second server bind a port already in use). ``exposures_durable``: Decide
    answers only once its exposures are committed and synced to disk, so a crash loses
    none (``server.analytics.exposures``, "Durable mode"). The connection and stream limits
    and the pools are described in ``server.app`` and ``server.executors``.
    """

    db_path: str = DEFAULT_DB_PATH
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    demo: bool = False
    admin_token: str | None = None
    api_keys: tuple[str, ...] = ()
    metrics_port: int | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    poll_interval: float = DEFAULT_POLL_INTERVAL
    grace: float = DEFAULT_GRACE
    log_json: bool = False
    log_level: str = DEFAULT_LOG_LEVEL
    max_placements: int = limits.MAX_PLACEMENTS
    profile_cache_size: int = DEFAULT_PROFILE_CACHE_SIZE
    profile_cache_ttl: float = DEFAULT_PROFILE_CACHE_TTL
    processes: int = DEFAULT_PROCESSES
    profile_db_path: str | None = None
    attribution_window_days: float = DEFAULT_ATTRIBUTION_WINDOW_DAYS
    exposures_durable: bool = False
    scan_processes: int = DEFAULT_SCAN_PROCESSES
    scan_min_profiles: int = DEFAULT_SCAN_MIN_PROFILES
    max_concurrent_streams: int = DEFAULT_MAX_CONCURRENT_STREAMS
    idle_stream_timeout: float = DEFAULT_IDLE_STREAM_TIMEOUT
    keepalive_time: float = DEFAULT_KEEPALIVE_TIME
    keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT
    min_ping_interval: float = DEFAULT_MIN_PING_INTERVAL
    max_connection_idle: float = DEFAULT_MAX_CONNECTION_IDLE
    max_connection_age: float = DEFAULT_MAX_CONNECTION_AGE
    max_connection_age_grace: float = DEFAULT_MAX_CONNECTION_AGE_GRACE
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT
    max_in_flight: tuple[tuple[str, int], ...] = DEFAULT_MAX_IN_FLIGHT
    write_threads: int = DEFAULT_WRITE_THREADS
    write_queue: int = DEFAULT_WRITE_QUEUE
    report_threads: int = DEFAULT_REPORT_THREADS
    report_queue: int = DEFAULT_REPORT_QUEUE
    read_threads: int = DEFAULT_READ_THREADS
    read_queue: int = DEFAULT_READ_QUEUE
    reuse_port: bool = False
    event_loop: str = DEFAULT_EVENT_LOOP
    store: str | None = None
    pg_pool_min: int = DEFAULT_POOL_MIN
    pg_pool_max: int = DEFAULT_POOL_MAX
    pg_pool_timeout: float = DEFAULT_POOL_TIMEOUT
    pg_connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    # Activation: webhook_allow are the origins ("https://crm.example.com",
    # "http://127.0.0.1:8080") webhooks may be delivered to; webhook_secrets the signing
    # secrets by webhook id (or read from webhook_secrets_file, "id=secret" lines).
    max_batch_visitors: int = DEFAULT_MAX_BATCH_VISITORS
    segment_sweep_interval: float = DEFAULT_SEGMENT_SWEEP_INTERVAL
    change_retention_days: float = DEFAULT_CHANGE_RETENTION_DAYS
    webhook_allow: tuple[str, ...] = ()
    webhook_secrets: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    webhook_secrets_file: str | None = None
    webhook_timeout: float = DEFAULT_WEBHOOK_TIMEOUT
    webhook_attempts: int = DEFAULT_WEBHOOK_ATTEMPTS
    webhook_backoff: float = DEFAULT_WEBHOOK_BACKOFF

    def __post_init__(self) -> None:
        if self.store is not None:
            try:
                location = parse_store(self.store)
            except ValueError as exc:
                raise ConfigError("store", str(exc)) from None
            if location.backend == "sqlite":
                object.__setattr__(self, "db_path", location.path)
            elif self.profile_db_path is not None:
                raise ConfigError("profile_db_path", "is for a SQLite store only")
        if not self.db_path:
            raise ConfigError("db_path", "must not be empty")
        if not 0 <= self.pg_pool_min <= self.pg_pool_max:
            raise ConfigError("pg_pool_min", "must be >= 0 and <= pg_pool_max")
        if not 1 <= self.pg_pool_max <= 1000:
            raise ConfigError("pg_pool_max", f"must be 1-1000, got {self.pg_pool_max}")
        for name in ("pg_pool_timeout", "pg_connect_timeout"):
            if not 0 < getattr(self, name) <= MAX_SECONDS:
                raise ConfigError(name, f"must be > 0 and <= {MAX_SECONDS:g} seconds")
        if not self.host:
            raise ConfigError("host", "must not be empty")
        _check_port("port", self.port)
        if self.metrics_port is not None:
            _check_port("metrics_port", self.metrics_port)
        if self.admin_token is not None and not self.admin_token.strip():
            raise ConfigError("admin_token", "must not be blank")
        if any(not key.strip() for key in self.api_keys):
            raise ConfigError("api_keys", "must not contain blank keys")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("tls_cert", "tls_cert and tls_key must be given together")
        if not self.poll_interval > 0:
            raise ConfigError("poll_interval", f"must be > 0, got {self.poll_interval}")
        if not self.grace >= 0:
            raise ConfigError("grace", f"must be >= 0, got {self.grace}")
        # Frozen: normalise through object.__setattr__ so "info" works as well as "INFO".
        object.__setattr__(self, "log_level", str(self.log_level).upper())
        object.__setattr__(self, "api_keys", tuple(self.api_keys))
        if self.log_level not in _LOG_LEVELS:
            raise ConfigError("log_level", f"must be one of {', '.join(_LOG_LEVELS)}")
        if self.max_placements < 1:
            raise ConfigError("max_placements", f"must be >= 1, got {self.max_placements}")
        if self.profile_cache_size < 0:
            raise ConfigError("profile_cache_size", "must be >= 0")
        if not self.profile_cache_ttl >= 0:
            raise ConfigError("profile_cache_ttl", "must be >= 0")
        if not 0 < self.attribution_window_days <= MAX_ATTRIBUTION_WINDOW_DAYS:
            raise ConfigError(
                "attribution_window_days",
                f"must be > 0 and <= {MAX_ATTRIBUTION_WINDOW_DAYS:g}, "
                f"got {self.attribution_window_days}",
            )
        if not 0 <= self.processes <= MAX_PROCESSES:
            raise ConfigError(
                "processes", f"must be auto (0) or 1-{MAX_PROCESSES}, got {self.processes}"
            )
        if not 0 <= self.scan_processes <= MAX_PROCESSES:
            raise ConfigError(
                "scan_processes", f"must be 0-{MAX_PROCESSES}, got {self.scan_processes}"
            )
        if self.scan_min_profiles < 0:
            raise ConfigError("scan_min_profiles", f"must be >= 0, got {self.scan_min_profiles}")

        for name in (
            "idle_stream_timeout",
            "keepalive_time",
            "keepalive_timeout",
            "min_ping_interval",
            "max_connection_idle",
            "max_connection_age",
            "max_connection_age_grace",
            "handshake_timeout",
        ):
            value = getattr(self, name)
            if not 0 < value <= MAX_SECONDS:
                raise ConfigError(name, f"must be > 0 and <= {MAX_SECONDS:g} seconds, got {value}")
        if not 1 <= self.max_concurrent_streams <= 2**31 - 1:
            raise ConfigError("max_concurrent_streams", "must be >= 1")
        limits_ = dict(self.max_in_flight)
        object.__setattr__(self, "max_in_flight", tuple(limits_.items()))
        for method, cap in limits_.items():
            if not method or cap < 1:
                raise ConfigError("max_in_flight", f"{method or '(empty)'}: must be >= 1, got {cap}")
        for name in ("write_threads", "report_threads", "read_threads"):
            if not 1 <= getattr(self, name) <= 256:
                raise ConfigError(name, f"must be 1-256, got {getattr(self, name)}")
        if self.event_loop not in EVENT_LOOPS:
            raise ConfigError("event_loop", f"must be one of {', '.join(EVENT_LOOPS)}")
        for name in ("write_queue", "report_queue", "read_queue"):
            if not 0 <= getattr(self, name) <= 1_000_000:
                raise ConfigError(name, f"must be 0-1000000, got {getattr(self, name)}")
        self._check_activation()

    def _check_activation(self) -> None:
        if not 1 <= self.max_batch_visitors <= 10_000_000:
            raise ConfigError("max_batch_visitors", "must be 1-10000000")
        for name in ("segment_sweep_interval", "webhook_timeout", "webhook_backoff"):
            value = getattr(self, name)
            if not 0 < value <= MAX_SECONDS:
                raise ConfigError(name, f"must be > 0 and <= {MAX_SECONDS:g} seconds, got {value}")
        if not 0 < self.change_retention_days <= 365:
            raise ConfigError("change_retention_days", "must be > 0 and <= 365")
        if not 1 <= self.webhook_attempts <= 100:
            raise ConfigError("webhook_attempts", "must be 1-100")
        object.__setattr__(self, "webhook_allow", tuple(self.webhook_allow))
        for origin in self.webhook_allow:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
                raise ConfigError(
                    "webhook_allow", f"{origin!r}: expected an origin such as https://host[:port]"
                )
        secrets = tuple((str(k), str(v)) for k, v in dict(self.webhook_secrets).items())
        object.__setattr__(self, "webhook_secrets", secrets)
        if any(not key or not value.strip() for key, value in secrets):
            raise ConfigError("webhook_secrets", "expected id=secret pairs with non-blank secrets")

    @property
    def location(self) -> StoreLocation:
        """Where the stores live: ``store`` when given, else the SQLite file ``db_path``."""
        if self.store is not None:
            return parse_store(self.store)
        return StoreLocation("sqlite", path=self.db_path)

    @property
    def process_count(self) -> int:
        """Server processes to run: ``processes``, or for auto (0) one per core this
        process may run on (its CPU affinity, not the machine's core count)."""
        if self.processes:
            return self.processes
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            cores = os.cpu_count() or 1
        return max(1, min(cores, MAX_PROCESSES))

    @property
    def loopback_only(self) -> bool:
        """Whether the server listens only on the loopback interface."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host.strip("[]")).is_loopback
        except ValueError:
            return False

    @property
    def tls(self) -> bool:
        """Whether the gRPC port serves TLS."""
        return self.tls_cert is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ServerConfig:
        """Build a config from ``overrides``, then ``DECIDE_<FIELD>`` variables, then defaults.

        ``DECIDE_API_KEYS`` is comma-separated; ``DECIDE_METRICS_PORT`` accepts ``off``;
        booleans accept 1/0, true/false, yes/no, on/off.
        """
        environ = os.environ if environ is None else environ
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ConfigError(unknown[0], "is not a configuration field")
        values: dict[str, Any] = {}
        for name, parse in _PARSERS.items():
            if overrides.get(name) is not None:
                value = overrides[name]
                values[name] = tuple(value) if name in ("api_keys", "webhook_allow") else value
                continue
            env_key = ENV_PREFIX + name.upper()
            raw = environ.get(env_key)
            if raw is None:
                continue
            try:
                parsed = parse(raw.strip())
            except ValueError as exc:
                raise ConfigError(env_key, f"{exc} (got {raw!r})") from None
            values[name] = parsed
        try:
            return cls(**values)
        except ConfigError as exc:
            # Name the variable the bad value came from, when it came from one.
            if exc.key in values and overrides.get(exc.key) is None:
                env_key = ENV_PREFIX + exc.key.upper()
                raise ConfigError(env_key, str(exc).split(": ", 1)[1]) from None
            raise


def _check_port(key: str, port: int) -> None:
    if not 0 <= port <= 65535:
        raise ConfigError(key, f"must be 0-65535, got {port}")


def _parse_bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("expected a boolean (1/0, true/false, yes/no, on/off)")


def _parse_int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError("expected an integer") from None


def _parse_float(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError("expected a number") from None


def _parse_optional_port(raw: str) -> int | None:
    if raw.lower() in {"", "off", "none"}:
        return None
    return _parse_int(raw)


def _parse_optional_str(raw: str) -> str | None:
    return raw or None


def _parse_keys(raw: str) -> tuple[str, ...]:
    return tuple(key.strip() for key in raw.split(",") if key.strip())


def _parse_processes(raw: str) -> int:
    """``auto`` (0: one per core) or a count."""
    if raw.lower() == "auto":
        return 0
    return _parse_int(raw)


def _parse_in_flight(raw: str) -> tuple[tuple[str, int], ...]:
    """``Decide=512,Track=64``: caps over the defaults, by method name (``*``: others)."""
    caps = dict(DEFAULT_MAX_IN_FLIGHT)
    for item in raw.split(","):
        if not item.strip():
            continue
        method, sep, value = item.partition("=")
        if not sep or not method.strip():
            raise ValueError("expected METHOD=N[,METHOD=N...]")
        caps[method.strip()] = _parse_int(value.strip())
    return tuple(caps.items())


def _parse_secrets(raw: str) -> tuple[tuple[str, str], ...]:
    """``crm=s3cret,ops=other``: signing secrets by webhook id."""
    pairs = []
    for item in raw.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError("expected ID=SECRET[,ID=SECRET...]")
        pairs.append((key.strip(), value.strip()))
    return tuple(pairs)


def _parse_level(raw: str) -> str:
    level = raw.upper()
    if level not in _LOG_LEVELS or not isinstance(logging.getLevelName(level), int):
        raise ValueError(f"expected one of {', '.join(_LOG_LEVELS)}")
    return level


_PARSERS: dict[str, Callable[[str], Any]] = {
    "db_path": str,
    "host": str,
    "port": _parse_int,
    "demo": _parse_bool,
    "admin_token": _parse_optional_str,
    "api_keys": _parse_keys,
    "metrics_port": _parse_optional_port,
    "tls_cert": _parse_optional_str,
    "tls_key": _parse_optional_str,
    "poll_interval": _parse_float,
    "grace": _parse_float,
    "log_json": _parse_bool,
    "log_level": _parse_level,
    "max_placements": _parse_int,
    "profile_cache_size": _parse_int,
    "profile_cache_ttl": _parse_float,
    "profile_db_path": _parse_optional_str,
    "processes": lambda raw: _parse_processes(raw),
    "attribution_window_days": _parse_float,
    "exposures_durable": _parse_bool,
    "scan_processes": _parse_int,
    "scan_min_profiles": _parse_int,
    "max_concurrent_streams": _parse_int,
    "idle_stream_timeout": _parse_float,
    "keepalive_time": _parse_float,
    "keepalive_timeout": _parse_float,
    "min_ping_interval": _parse_float,
    "max_connection_idle": _parse_float,
    "max_connection_age": _parse_float,
    "max_connection_age_grace": _parse_float,
    "handshake_timeout": _parse_float,
    "max_in_flight": lambda raw: _parse_in_flight(raw),
    "write_threads": _parse_int,
    "write_queue": _parse_int,
    "report_threads": _parse_int,
    "report_queue": _parse_int,
    "read_threads": _parse_int,
    "read_queue": _parse_int,
    "event_loop": lambda raw: raw.lower(),
    "store": _parse_optional_str,
    "pg_pool_min": _parse_int,
    "pg_pool_max": _parse_int,
    "pg_pool_timeout": _parse_float,
    "pg_connect_timeout": _parse_float,
    "max_batch_visitors": _parse_int,
    "segment_sweep_interval": _parse_float,
    "change_retention_days": _parse_float,
    "webhook_allow": _parse_keys,
    "webhook_secrets": _parse_secrets,
    "webhook_secrets_file": _parse_optional_str,
    "webhook_timeout": _parse_float,
    "webhook_attempts": _parse_int,
    "webhook_backoff": _parse_float,
}
