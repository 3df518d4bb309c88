"""Channel settings shared by both clients: deadlines, retry policy, credentials, metadata."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc

from client.errors import DecideError, InvalidArgument, PermissionDenied, Unauthenticated
from client.types import JSON

DEFAULT_DECIDE_TIMEOUT = 0.1
"""Seconds a ``decide``/``visitor_segments`` call may take: a page render cannot wait."""

DEFAULT_ADMIN_TIMEOUT = 10.0
"""Seconds an admin call (validate, publish, history...) or a health check may take."""

DEFAULT_TRACK_TIMEOUT = 10.0
"""Seconds a ``track`` call, or a whole ``track_stream`` call, may take."""

DEFAULT_MAX_ATTEMPTS = 3
"""Attempts per call, the first included, when the server answers UNAVAILABLE."""

DECISION_SERVICE = "decisioning.v1.DecisionService"
ADMIN_SERVICE = "decisioning.v1.RulesAdmin"
EVENT_SERVICE = "decisioning.v1.EventService"
PROFILE_SERVICE = "decisioning.v1.ProfileService"
HEALTH_SERVICE = "grpc.health.v1.Health"

RETRIED_METHODS: tuple[dict[str, str], ...] = (
    {"service": DECISION_SERVICE},
    {"service": ADMIN_SERVICE, "method": "ValidateRules"},
    {"service": ADMIN_SERVICE, "method": "GetRules"},
    {"service": ADMIN_SERVICE, "method": "ListVersions"},
    {"service": ADMIN_SERVICE, "method": "GetStatus"},
    {"service": EVENT_SERVICE, "method": "Track"},
    {"service": PROFILE_SERVICE, "method": "GetProfile"},
    {"service": PROFILE_SERVICE, "method": "ExportVisitor"},
    {"service": HEALTH_SERVICE},
)
"""Methods gRPC retries on UNAVAILABLE. PublishRules and Rollback are left out: they are
not idempotent, and a connection lost after the server committed would publish twice.
Track is idempotent by event_id (a replayed batch counts as duplicates); TrackStream is
left out because gRPC cannot replay a stream it has not buffered."""

FAIL_CLOSED: tuple[type[DecideError], ...] = (InvalidArgument, Unauthenticated, PermissionDenied)
"""Errors ``decide`` raises even when fallbacks are configured: they are bugs in the
caller (a bad request, a missing or wrong api key) that serving fallbacks would hide.
Everything else (unreachable, deadline exceeded, server errors) fails open."""


def service_config(max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> str:
    """The ``grpc.service_config`` JSON: retry UNAVAILABLE with exponential backoff.

    gRPC retries within the call's deadline and caps ``maxAttempts`` at 5; an attempt
    count below 2 turns retries off.
    """
    method_config: dict[str, Any] = {"name": list(RETRIED_METHODS)}
    if max_attempts >= 2:
        method_config["retryPolicy"] = {
            "maxAttempts": max_attempts,
            "initialBackoff": "0.01s",
            "maxBackoff": "0.2s",
            "backoffMultiplier": 2,
            "retryableStatusCodes": ["UNAVAILABLE"],
        }
    return json.dumps({"methodConfig": [method_config]})


def channel_options(
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    extra: Sequence[tuple[str, Any]] = (),
) -> tuple[tuple[str, Any], ...]:
    """Options for ``grpc.*_channel``: the retry policy, then ``extra`` (which wins)."""
    return (
        ("grpc.enable_retries", 1 if max_attempts >= 2 else 0),
        ("grpc.service_config", service_config(max_attempts)),
        *extra,
    )


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """Everything a client needs besides its channel; built once per client."""

    target: str
    api_key: str | None = None
    admin_token: str | None = None
    root_certificates: bytes | None = None
    secure: bool = False
    fallbacks: Mapping[str, JSON] | None = None
    decide_timeout: float = DEFAULT_DECIDE_TIMEOUT
    admin_timeout: float = DEFAULT_ADMIN_TIMEOUT
    track_timeout: float = DEFAULT_TRACK_TIMEOUT
    options: tuple[tuple[str, Any], ...] = field(default_factory=channel_options)

    @property
    def use_tls(self) -> bool:
        """TLS when asked for, or implied by root certificates."""
        return self.secure or self.root_certificates is not None

    def credentials(self) -> grpc.ChannelCredentials:
        """TLS credentials; ``None`` roots means the system's trust store."""
        return grpc.ssl_channel_credentials(root_certificates=self.root_certificates)

    def decision_metadata(self) -> tuple[tuple[str, str], ...]:
        """Metadata for DecisionService and EventService calls: the API key, and the
        admin token when the client has one (on a server without API keys, the admin
        token is what lets a caller see segments and explanations)."""
        return (
            (("x-api-key", self.api_key),) if self.api_key else ()
        ) + self.admin_metadata()

    def admin_metadata(self) -> tuple[tuple[str, str], ...]:
        """Metadata for RulesAdmin and ProfileService calls."""
        return (("authorization", f"Bearer {self.admin_token}"),) if self.admin_token else ()

    def fallbacks_for(self, per_call: Mapping[str, JSON] | None) -> Mapping[str, JSON] | None:
        """The fallbacks of one call (per-call entries win), or ``None``: fail closed."""
        if self.fallbacks is None and per_call is None:
            return None
        return {**(self.fallbacks or {}), **(per_call or {})}


def resolve_timeout(timeout: float | None, default: float) -> float:
    """The deadline of one call: ``timeout`` when given, else the client's default."""
    return default if timeout is None else timeout
