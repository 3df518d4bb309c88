"""Server interceptors: authentication and per-call metrics.

Authentication by service:

- ``decisioning.v1.RulesAdmin`` needs ``authorization: Bearer <admin_token>``. With no
  admin token configured every admin call is refused, and the error says how to
  configure one: an admin API that is open by default is one misconfigured bind away
  from being open to the network.
- ``decisioning.v1.DecisionService`` needs ``x-api-key: <key>`` when API keys are
  configured, and is open otherwise.
- Health and reflection are always open: load balancers and tools must reach them.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

import grpc

from server.errors import AuthenticationError, handles_errors
from server.metrics import Metrics

ADMIN_SERVICE = "decisioning.v1.RulesAdmin"
DECISION_SERVICE = "decisioning.v1.DecisionService"
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
        if service == ADMIN_SERVICE:
            problem = self._check_admin(metadata)
        elif service == DECISION_SERVICE:
            problem = self._check_api_key(metadata)
        else:
            problem = None
        if problem is None:
            return continuation(handler_call_details)
        # Every method of both services is unary-unary; the request is never parsed.
        return grpc.unary_unary_rpc_method_handler(_Rejection(problem).reject)

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
    """Counts every unary call by method and status code, and times it."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler  # unknown methods and streams (health Watch, reflection)
        inner = handler.unary_unary
        method = handler_call_details.method
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

        return grpc.unary_unary_rpc_method_handler(
            behavior,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
