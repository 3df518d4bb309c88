"""The edge every call passes: credentials, load shedding, metrics and the status of errors.

These are interceptors in function, but built once per method when the services are
registered (``server.api.handlers``) rather than run through grpc.aio's interceptor
chain, which adds a coroutine and a handler lookup to every call. Each wrapped handler,
in order:

1. **sheds**: when the method already has its cap of calls in flight
   (``ServerConfig.max_in_flight``), the call is answered RESOURCE_EXHAUSTED at once, so
   a burst is refused in microseconds instead of queueing until every call is late;
2. **parses**: a request whose bytes are not a valid message (``handlers`` hands it over
   as a ``Malformed`` value instead of failing in gRPC's deserializer, which would log a
   traceback and answer INTERNAL) is INVALID_ARGUMENT;
3. **checks credentials**:

   - ``decisioning.v1.RulesAdmin``, ``ProfileService``, ``InsightsService`` and
     ``ActivationService`` need
     ``authorization: Bearer <admin_token>``; with no admin token configured every
     admin call is refused, with a message saying how to configure one;
   - ``decisioning.v1.DecisionService`` and ``EventService`` need ``x-api-key: <key>``
     when API keys are configured, and are open otherwise;
   - what the decision API reveals about a stored visitor beyond the content to show
     (which segments they are in) is personal data, like a profile:
     ``GetVisitorSegments`` needs an API key when keys are configured and the admin
     token otherwise, and Decide answers an anonymous caller (a server without API
     keys, a call without the admin token) with its content, campaign and variant
     but no ``matched_segments``, and refuses ``explain`` (which names segments) with
     UNAUTHENTICATED (``caller_may_see_segments``);
   - health and reflection are always open (load balancers and tools must reach them);

4. runs the servicer method, and turns any exception into its status
   (``server.api.status``), setting the code on the call instead of raising;
5. counts the call by method and status code, and times it.

Admin tokens and keys are compared in constant time; every configured key is compared,
so timing says nothing about which key (if any) was a near miss.
"""

from __future__ import annotations

import contextvars
import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

from server.api.status import ErrorLog, grpc_status
from server.errors import AuthenticationError, OverloadedError
from server.metrics import Metrics

ADMIN_SERVICE = "decisioning.v1.RulesAdmin"
DECISION_SERVICE = "decisioning.v1.DecisionService"
EVENT_SERVICE = "decisioning.v1.EventService"
PROFILE_SERVICE = "decisioning.v1.ProfileService"
INSIGHTS_SERVICE = "decisioning.v1.InsightsService"
ACTIVATION_SERVICE = "decisioning.v1.ActivationService"

ADMIN_SERVICES = frozenset({ADMIN_SERVICE, PROFILE_SERVICE, INSIGHTS_SERVICE, ACTIVATION_SERVICE})
"""Services that need the admin token."""
API_KEY_SERVICES = frozenset({DECISION_SERVICE, EVENT_SERVICE})
"""Services that need an API key when keys are configured."""
PERSONAL_METHODS = frozenset({f"/{DECISION_SERVICE}/GetVisitorSegments"})
"""Decision methods that reveal a stored visitor's data: an API key when keys are
configured, else the admin token."""
AUTHORIZATION_KEY = "authorization"
API_KEY_KEY = "x-api-key"

NO_ADMIN_TOKEN_MESSAGE = (
    "the admin API is disabled: this server has no admin token configured "
    "(start it with --admin-token or DECIDE_ADMIN_TOKEN)"
)

_KEY_VERIFIED: contextvars.ContextVar[bool] = contextvars.ContextVar("key_verified", default=False)
"""Set in a call's own context when the edge verified its API key."""

Unary = Callable[[Any, Any], Awaitable[Any]]
ServerStream = Callable[[Any, Any], AsyncIterator[Any]]


def service_of(method: str) -> str:
    """``/decisioning.v1.RulesAdmin/GetStatus`` -> ``decisioning.v1.RulesAdmin``."""
    return method.lstrip("/").rpartition("/")[0]


def _metadata_value(metadata: Sequence[tuple[str, Any]] | None, key: str) -> str | None:
    for name, value in metadata or ():
        if name == key:
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return None


def _matches(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


class Credentials:
    """The admin token and API keys calls are checked against."""

    def __init__(self, admin_token: str | None, api_keys: Sequence[str]) -> None:
        self.admin_token = admin_token
        self.api_keys = tuple(api_keys)

    def checker(self, method: str) -> Callable[[Any], str | None] | None:
        """A function of a call's metadata giving what is wrong with its credentials
        (None: nothing); None when ``method`` needs no credentials."""
        service = service_of(method)
        if service in ADMIN_SERVICES:
            return self.check_admin
        if method in PERSONAL_METHODS:
            return self.check_api_key if self.api_keys else self.check_admin
        if service in API_KEY_SERVICES and self.api_keys:
            return self.check_api_key
        return None

    def check_admin(self, metadata: Sequence[tuple[str, Any]] | None) -> str | None:
        if self.admin_token is None:
            return NO_ADMIN_TOKEN_MESSAGE
        header = _metadata_value(metadata, AUTHORIZATION_KEY)
        if header is None:
            return "missing admin credentials: send 'authorization: Bearer <admin token>'"
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "malformed authorization metadata: expected 'Bearer <admin token>'"
        if not _matches(token.strip(), self.admin_token):
            return "invalid admin token"
        return None

    def check_api_key(self, metadata: Sequence[tuple[str, Any]] | None) -> str | None:
        key = _metadata_value(metadata, API_KEY_KEY)
        if key is None:
            return f"missing API key: send it in '{API_KEY_KEY}' metadata"
        valid = False
        for expected in self.api_keys:
            valid |= _matches(key.strip(), expected)
        if not valid:
            return "invalid API key"
        _KEY_VERIFIED.set(True)
        return None

    def caller_may_see_segments(self, context: Any) -> bool:
        """Whether this decision call may learn a visitor's segments: it carried a
        verified API key, or the admin token."""
        if _KEY_VERIFIED.get():
            return True
        return (
            self.admin_token is not None and self.check_admin(context.invocation_metadata()) is None
        )


class Malformed:
    """A request whose bytes did not parse (see ``server.api.handlers``)."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


class Edge:
    """Wraps servicer methods in the steps of the module docstring."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        metrics: Metrics | None,
        max_in_flight: Mapping[str, int],
        errors: ErrorLog | None = None,
    ) -> None:
        self.credentials = credentials
        self.metrics = metrics
        self.max_in_flight = dict(max_in_flight)
        self.errors = errors or ErrorLog()
        self.in_flight: dict[str, list[int]] = {}
        """Method path -> a one-element list: the calls in flight now."""

    def _cap(self, method: str) -> int:
        name = method.rpartition("/")[2]
        return self.max_in_flight.get(name, self.max_in_flight.get("*", 1_000_000))

    def unary(self, method: str, behavior: Unary, parse_error: Callable[[Any], Exception]) -> Unary:
        """Wrap a unary-response method (unary or client-streaming requests)."""
        counter = self.in_flight.setdefault(method, [0])
        cap = self._cap(method)
        check = self.credentials.checker(method)
        observe = self.metrics.observe_call if self.metrics is not None else None
        errors = self.errors
        perf_counter = time.perf_counter

        async def handler(request: Any, context: Any) -> Any:
            start = perf_counter()
            code = "OK"
            if counter[0] >= cap:
                _refuse(context, method, cap, errors, observe, start)
                return None
            counter[0] += 1
            try:
                _admit(request, context, check, parse_error)
                return await behavior(request, context)
            except Exception as exc:
                code = _fail(context, exc, method, errors)
                return None
            finally:
                counter[0] -= 1
                if observe is not None:
                    observe(method, code, perf_counter() - start)

        return handler

    def server_stream(
        self, method: str, behavior: ServerStream, parse_error: Callable[[Any], Exception]
    ) -> ServerStream:
        """Wrap a response-streaming method: an async generator of responses."""
        counter = self.in_flight.setdefault(method, [0])
        cap = self._cap(method)
        check = self.credentials.checker(method)
        observe = self.metrics.observe_call if self.metrics is not None else None
        errors = self.errors

        async def handler(request: Any, context: Any) -> AsyncIterator[Any]:
            start = time.perf_counter()
            code = "OK"
            if counter[0] >= cap:
                _refuse(context, method, cap, errors, observe, start)
                return
            counter[0] += 1
            try:
                _admit(request, context, check, parse_error)
                async for response in behavior(request, context):
                    yield response
            except Exception as exc:
                code = _fail(context, exc, method, errors)
            finally:
                counter[0] -= 1
                if observe is not None:
                    observe(method, code, time.perf_counter() - start)

        return handler


def _admit(
    request: Any,
    context: Any,
    check: Callable[[Any], str | None] | None,
    parse_error: Callable[[Any], Exception],
) -> None:
    """Raise what is wrong with a call before its method runs: bytes that did not parse,
    missing or wrong credentials."""
    if type(request) is Malformed:
        raise parse_error(request.error)
    if check is not None:
        problem = check(context.invocation_metadata())
        if problem is not None:
            raise AuthenticationError(problem)


def _refuse(
    context: Any,
    method: str,
    cap: int,
    errors: ErrorLog,
    observe: Callable[[str, str, float], None] | None,
    start: float,
) -> None:
    """Shed a call: ``cap`` calls of ``method`` are in flight already."""
    name = method.rpartition("/")[2]
    shed = OverloadedError(f"{cap} {name} calls are in flight, the most this server takes; retry")
    code = _fail(context, shed, method, errors)
    if observe is not None:
        observe(method, code, time.perf_counter() - start)


def _fail(context: Any, exc: BaseException, method: str, errors: ErrorLog) -> str:
    """Set the status of ``exc`` on the call (no exception reaches gRPC); its code name."""
    status = grpc_status(exc, method, errors)
    context.set_code(status.code)
    context.set_details(status.details)
    context.set_trailing_metadata(status.trailing_metadata)
    return str(status.code.name)
