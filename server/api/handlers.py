"""Registering servicers on a grpc.aio server, each method wrapped in the edge once.

Handlers are built from the service descriptors in ``protos``, not from the generated
``add_*Servicer_to_server`` functions, for two reasons: every method is wrapped in
``server.api.interceptors.Edge`` when it is registered (not per call), and requests are
parsed by a deserializer that never raises. gRPC's own would log "Exception
deserializing request!" with a traceback and answer INTERNAL for bytes that are not a
valid message (a truncated body, a string that is not UTF-8, a Struct nested past
protobuf's recursion limit); ours hands the handler a ``Malformed`` value, which the
edge answers with INVALID_ARGUMENT, logging nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor

from protos import decisioning_pb2 as pb
from server.api.interceptors import Edge, Malformed
from server.errors import MalformedRequestError

__all__ = ["register", "service_descriptor"]


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
