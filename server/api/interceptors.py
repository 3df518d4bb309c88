"""Server interceptors: authentication and per-call metrics.

Authentication by service:

- ``decisioning.v1.RulesAdmin`` and ``decisioning.v1.ProfileService`` need
  ``authorization: Bearer <admin_token>``. With no admin token configured every admin
  call is refused, and the error says how to configure one: an admin API that is open
  by default is one misconfigured bind away from being open to the network.
  ProfileService is admin-only because it reads, exports and deletes personal data.
  ``decisioning.v1.InsightsService`` too: its samples and exports name visitors.
- ``decisioning.v1.DecisionService`` and ``decisioning.v1.EventService`` need
  ``x-api-key: <key>`` when API keys are configured, and are open otherwise: the
  storefront backend that asks for decisions also reports what visitors do.
- Health and reflection are always open: load balancers and tools must reach them.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

import grpc

from server.api.status import handles_errors
from server.errors import AuthenticationError
from server.metrics import Metrics

ADMIN_SERVICE = "decisioning.v1.RulesAdmin"
DECISION_SERVICE = "decisioning.v1.DecisionService"
EVENT_SERVICE = "decisioning.v1.EventService"
PROFILE_SERVICE = "decisioning.v1.ProfileService"
INSIGHTS_SERVICE = "decisioning.v1.InsightsService"

ADMIN_SERVICES = frozenset({ADMIN_SERVICE, PROFILE_SERVICE, INSIGHTS_SERVICE})
"""Services that need the admin token."""
API_KEY_SERVICES = frozenset({DECISION_SERVICE, EVENT_SERVICE})
"""Services that need an API key when keys are configured."""
AUTHORIZATION_KEY = "authorization"
API_KEY_KEY = "x-api-key"

NO_ADMIN_TOKEN_MESSAGE = (
    "the admin API is disabled: this server has no admin token configured "
    "(start it with --admin-token or DECIDE_ADMIN_TOKEN)"
)

# A string: types-grpcio makes RpcMethodHandler generic, the runtime class is not.
Continuation: TypeAlias = (
    "Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None]"
)


def _service_of(method: str) -> str:
    """``/decisioning.v1.RulesAdmin/GetStatus`` -> ``decisioning.v1.RulesAdmin``."""
    return method.lstrip("/").rpartition("/")[0]


def _metadata_value(metadata: Sequence[tuple[str, Any]] | None, key: str) -> str | None:
    for name, value in metadata or ():
        if name == key:
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return None


def _matches(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


class _Rejection:
    """A handler object whose only job is to fail the call with UNAUTHENTICATED."""

    def __init__(self, message: str) -> None:
        self.message = message

    @handles_errors
    def reject(self, request: Any, context: grpc.ServicerContext) -> Any:
        raise AuthenticationError(self.message)

    def handler(self, kind: grpc.RpcMethodHandler[Any, Any] | None) -> Any:
        """A handler of the same streaming kind as ``kind``; the request is never read."""
        if kind is not None and kind.request_streaming:
            return grpc.stream_unary_rpc_method_handler(self.reject)
        if kind is not None and kind.response_streaming:
            return grpc.unary_stream_rpc_method_handler(self.reject)
        return grpc.unary_unary_rpc_method_handler(self.reject)


class AuthInterceptor(grpc.ServerInterceptor):
    """Checks the admin token and API keys before a call reaches its servicer."""

    def __init__(self, admin_token: str | None, api_keys: Sequence[str]) -> None:
        self._admin_token = admin_token
        self._api_keys = tuple(api_keys)

    def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        service = _service_of(handler_call_details.method)
        metadata = handler_call_details.invocation_metadata
        if service in ADMIN_SERVICES:
            problem = self._check_admin(metadata)
        elif service in API_KEY_SERVICES:
            problem = self._check_api_key(metadata)
        else:
            problem = None
        handler = continuation(handler_call_details)
        if problem is None or handler is None:
            return handler
        # Answer with a handler of the method's kind (TrackStream streams its requests).
        return _Rejection(problem).handler(handler)  # type: ignore[no-any-return]

    def _check_admin(self, metadata: Sequence[tuple[str, Any]] | None) -> str | None:
        if self._admin_token is None:
            return NO_ADMIN_TOKEN_MESSAGE
        header = _metadata_value(metadata, AUTHORIZATION_KEY)
        if header is None:
            return "missing admin credentials: send 'authorization: Bearer <admin token>'"
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "malformed authorization metadata: expected 'Bearer <admin token>'"
        if not _matches(token.strip(), self._admin_token):
            return "invalid admin token"
        return None

    def _check_api_key(self, metadata: Sequence[tuple[str, Any]] | None) -> str | None:
        if not self._api_keys:
            return None
        key = _metadata_value(metadata, API_KEY_KEY)
        if key is None:
            return f"missing API key: send it in '{API_KEY_KEY}' metadata"
        # Compare with every key, without stopping early, so timing says nothing about
        # which (if any) key is a near miss.
        valid = False
        for expected in self._api_keys:
            valid |= _matches(key.strip(), expected)
        return None if valid else "invalid API key"


class MetricsInterceptor(grpc.ServerInterceptor):
    """Counts every unary-response call (unary and client-streaming) by method and
    status code, and times it."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        # method -> (the handler it wrapped, the wrapper). A registered method's handler
        # is the same object on every call, so the wrapper is built once per method, not
        # once per call; a rejection (a new handler each time) is simply wrapped afresh.
        self._wrapped: dict[str, tuple[Any, Any]] = {}

    def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None or handler.response_streaming:
            return handler  # unknown methods and response streams (health Watch, reflection)
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]  # type: ignore[no-any-return]
        wrapped: grpc.RpcMethodHandler[Any, Any] = self._wrap(handler, method)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap(self, handler: Any, method: str) -> Any:
        streaming = handler.request_streaming
        inner = handler.stream_unary if streaming else handler.unary_unary
        if inner is None:
            return handler
        observe = self._metrics.observe_call

        def behavior(request: Any, context: grpc.ServicerContext) -> Any:
            start = time.perf_counter()
            failed = False
            try:
                return inner(request, context)
            except BaseException:
                failed = True
                raise
            finally:
                code = context.code()  # type: ignore[attr-defined]  # grpc >= 1.38
                if code is None:
                    name = "UNKNOWN" if failed else "OK"
                else:
                    name = code.name
                observe(method, name, time.perf_counter() - start)

        wrap = (
            grpc.stream_unary_rpc_method_handler
            if streaming
            else grpc.unary_unary_rpc_method_handler
        )
        return wrap(
            behavior,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
