"""Registering servicers on a grpc.aio server, each method wrapped in the edge once.

Handlers are built from the service descriptors in ``protos``, not from the generated
``add_*Servicer_to_server`` functions, for two reasons: every method is wrapped in
``server.api.interceptors.Edge`` when it is registered (not per call), and requests are
parsed by a deserializer that never raises. gRPC's own would log "Exception
deserializing request!" with a traceback and answer INTERNAL for bytes that are not a
valid message (a truncated body, a string that is not UTF-8, a Struct nested past
protobuf's recursion limit); ours hands the handler a ``Malformed`` value, which the
edge answers with INVALID_ARGUMENT, logging nothing.

The services we did not write, health and reflection, are registered by their own
packages' helpers, which use gRPC's deserializer. ``register_guarded`` hands those
helpers a view of the server that swaps in our parser, so bytes that are not a valid
health or reflection request are INVALID_ARGUMENT too (instead of UNKNOWN and a
traceback per call), and ``HealthServicer`` adds the ``List`` method grpc's asyncio
health service lacks (its generated base answers UNIMPLEMENTED and logs a traceback).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from protos import decisioning_pb2 as pb
from server.api.interceptors import Edge, Malformed
from server.api.status import ErrorLog, grpc_status
from server.errors import MalformedRequestError

__all__ = [
    "HealthServicer",
    "register",
    "register_guarded",
    "register_health_and_reflection",
    "service_descriptor",
]


def service_descriptor(name: str) -> ServiceDescriptor:
    """The descriptor of ``decisioning.v1.<name>``."""
    return pb.DESCRIPTOR.services_by_name[name]


def _parser(message_class: Any) -> Callable[[bytes], Any]:
    parse = message_class.FromString

    def deserialize(raw: bytes) -> Any:
        try:
            return parse(raw)
        except Exception as exc:  # DecodeError, RecursionError in deeply nested messages
            return Malformed(exc)

    return deserialize


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


def register(server: grpc.aio.Server, servicer: object, service: ServiceDescriptor, edge: Edge) -> None:
    """Add every method of ``service`` that ``servicer`` implements to ``server``.

    A servicer method is a coroutine function for unary responses (its request is the
    message, or an async iterator of messages for client streams) and an async
    generator function for response streams."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in service.methods:
        behavior = getattr(servicer, method.name, None)
        if behavior is None:
            continue
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        path = f"/{service.full_name}/{method.name}"
        type_name = method.input_type.name

        def parse_error(exc: Exception, type_name: str = type_name) -> Exception:
            return MalformedRequestError(type_name, _reason(exc))

        deserialize = _parser(request_class)
        serialize = response_class.SerializeToString
        if method.server_streaming:
            handlers[method.name] = grpc.unary_stream_rpc_method_handler(
                edge.server_stream(path, behavior, parse_error),
                request_deserializer=deserialize,
                response_serializer=serialize,
            )
        elif method.client_streaming:
            handlers[method.name] = grpc.stream_unary_rpc_method_handler(
                edge.unary(path, behavior, parse_error),
                request_deserializer=deserialize,
                response_serializer=serialize,
            )
        else:
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                edge.unary(path, behavior, parse_error),
                request_deserializer=deserialize,
                response_serializer=_serializer(serialize),
            )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))


def _serializer(serialize: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
    """``serialize``, letting a handler return its response already as bytes (Decide
    assembles its response from pre-encoded parts)."""

    def to_bytes(message: Any) -> bytes:
        if type(message) is bytes:
            return message
        return serialize(message)

    return to_bytes


# -- services we did not write: health, reflection ------------------------------------------


class HealthServicer(health.aio.HealthServicer):  # type: ignore[misc]
    """grpc's asyncio health service, with ``List``: every service's status."""

    async def List(self, request: Any, context: Any) -> Any:
        # The statuses ``set`` keeps (grpc's own table; it offers no accessor).
        statuses = dict(self._server_status)
        return health_pb2.HealthListResponse(
            statuses={
                name: health_pb2.HealthCheckResponse(status=status)
                for name, status in statuses.items()
            }
        )


def register_health_and_reflection(
    server: grpc.aio.Server, health_servicer: HealthServicer, service_names: Sequence[str]
) -> None:
    """Add the health service and server reflection (for ``service_names`` and itself),
    both guarded (``register_guarded``)."""
    names = (*service_names, reflection.SERVICE_NAME)
    register_guarded(
        server, lambda view: health_pb2_grpc.add_HealthServicer_to_server(health_servicer, view)
    )
    register_guarded(
        server,
        lambda view: reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
            reflection.aio.ReflectionServicer(names), view
        ),
    )


def register_guarded(server: grpc.aio.Server, add: Callable[[Any], object]) -> None:
    """Run ``add(view)``, a package's helper that registers its service on a server
    (``add_HealthServicer_to_server``), with a view of ``server`` whose handlers parse
    requests with our parser: a request that does not parse is INVALID_ARGUMENT."""
    add(_GuardedServer(server, ErrorLog()))


class _GuardedServer:
    """What registration helpers call on a server, with every handler guarded."""

    def __init__(self, server: grpc.aio.Server, errors: ErrorLog) -> None:
        self._server = server
        self._errors = errors

    def add_generic_rpc_handlers(self, handlers: Sequence[Any]) -> None:
        self._server.add_generic_rpc_handlers(
            tuple(_GuardedGeneric(h, self._errors) for h in handlers)
        )

    def add_registered_method_handlers(
        self, service: str, handlers: Mapping[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        self._server.add_registered_method_handlers(
            service,
            {
                name: _guard(handler, f"/{service}/{name}", self._errors)
                for name, handler in handlers.items()
            },
        )


class _GuardedGeneric(grpc.GenericRpcHandler):
    """A generic handler whose method handlers are guarded (built once per method)."""

    def __init__(self, inner: Any, errors: ErrorLog) -> None:
        self._inner = inner
        self._errors = errors
        self._guarded: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def service(self, details: grpc.HandlerCallDetails) -> Any:
        method = details.method
        guarded = self._guarded.get(method)
        if guarded is None:
            handler = self._inner.service(details)
            if handler is None:
                return None  # not one of its methods; never kept: callers choose names
            guarded = self._guarded[method] = _guard(handler, method, self._errors)
        return guarded


def _guard(
    handler: grpc.RpcMethodHandler[Any, Any], method: str, errors: ErrorLog
) -> grpc.RpcMethodHandler[Any, Any]:
    """``handler`` with our parser; Malformed requests aborted with INVALID_ARGUMENT."""
    deserialize = handler.request_deserializer
    behavior: Any = (
        handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream
    )
    streams_out = inspect.isasyncgenfunction(behavior)
    if deserialize is None or not (streams_out or inspect.iscoroutinefunction(behavior)):
        return handler  # nothing to parse, or not an asyncio handler: left as it is
    message_class = getattr(deserialize, "__self__", None)
    type_name = getattr(getattr(message_class, "DESCRIPTOR", None), "name", "request")

    def deserializer(raw: bytes) -> Any:
        try:
            return deserialize(raw)
        except Exception as exc:  # DecodeError, RecursionError
            return Malformed(exc)

    async def refuse(malformed: Malformed, context: Any) -> None:
        problem = MalformedRequestError(type_name, _reason(malformed.error))
        status = grpc_status(problem, method, errors)
        await context.abort(status.code, status.details, status.trailing_metadata)

    async def checked(requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
        async for request in requests:
            if type(request) is Malformed:
                await refuse(request, context)
            yield request

    if handler.request_streaming:

        def take(request: Any, context: Any) -> Any:
            return behavior(checked(request, context), context)

    else:

        def take(request: Any, context: Any) -> Any:
            return behavior(request, context)

    if streams_out:

        async def wrapped(request: Any, context: Any) -> Any:
            if type(request) is Malformed:
                await refuse(request, context)
            async for response in take(request, context):
                yield response

    else:

        async def wrapped(request: Any, context: Any) -> Any:  # type: ignore[misc]
            if type(request) is Malformed:
                await refuse(request, context)
            return await take(request, context)

    kinds = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }
    make: Any = kinds[(handler.request_streaming, handler.response_streaming)]
    return make(  # type: ignore[no-any-return]
        wrapped,
        request_deserializer=deserializer,
        response_serializer=handler.response_serializer,
    )
