"""Exceptions raised by the clients, one per kind of failure a caller handles differently.

    DecideError                  base class; .code and .details of the failed call
     ├── InvalidArgument          INVALID_ARGUMENT, OUT_OF_RANGE; .violations
     │    └── BatchRejected        a track_stream batch was bad; .batch, .accepted,
     │                             .duplicates say what the earlier batches stored
     ├── Unauthenticated          UNAUTHENTICATED: missing or wrong api key / admin token
     ├── PermissionDenied         PERMISSION_DENIED
     ├── NotFound                 NOT_FOUND: e.g. an unknown rules version
     ├── FailedPrecondition       FAILED_PRECONDITION, ABORTED, ALREADY_EXISTS:
     │                            e.g. a stale expected_version
     ├── Unavailable              UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED,
     │                            CANCELLED: retryable (.retryable is True)
     └── InternalError            INTERNAL, UNKNOWN, DATA_LOSS, UNIMPLEMENTED, OK, and
                                  responses the client cannot read

Every exception raised for a failed call is chained ``from`` the ``grpc.RpcError``;
``map_rpc_error`` is the one place that chooses the class.
"""

from __future__ import annotations

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

_STATUS_DETAILS_KEY = "grpc-status-details-bin"


class DecideError(Exception):
    """Base class of every client error. ``code`` is ``None`` when no call failed."""

    retryable: bool = False
    """Whether the same call may succeed when made again later."""

    def __init__(self, details: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(details)
        self.details = details
        self.code = code


class InvalidArgument(DecideError, ValueError):
    """The request is malformed: a bug in the caller, never retried or failed open.

    ``violations`` lists ``(field, description)`` pairs from the server's
    ``google.rpc.BadRequest`` details, e.g. ``("campaigns[0].variants", "must not be
    empty")`` for an invalid rules document.
    """

    def __init__(
        self,
        details: str,
        code: grpc.StatusCode | None = None,
        violations: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(details, code)
        self.violations: list[tuple[str, str]] = list(violations or [])

    def __str__(self) -> str:
        if not self.violations:
            return self.details
        lines = "\n".join(f"  - {f}: {d}" if f else f"  - {d}" for f, d in self.violations)
        return f"{self.details}\n{lines}"


class BatchRejected(InvalidArgument):
    """A ``track_stream`` batch was invalid, so the stream stopped there.

    Batches ``0 .. batch-1`` were committed: ``accepted`` new events, plus
    ``duplicates`` that were already stored. Nothing of batch ``batch`` or later was stored, so resume from
    it once fixed. ``violations`` name ``batches[B].events[I]...``. Raised with
    ``code`` ``None`` when the client itself found the batch unsendable.
    """

    def __init__(
        self,
        details: str,
        code: grpc.StatusCode | None = None,
        violations: list[tuple[str, str]] | None = None,
        *,
        batch: int,
        accepted: int,
        duplicates: int,
    ) -> None:
        super().__init__(details, code, violations)
        self.batch = batch
        self.accepted = accepted
        self.duplicates = duplicates


class Unauthenticated(DecideError):
    """The call carried no credentials or wrong ones (api key or admin token)."""


class PermissionDenied(DecideError):
    """The credentials are valid but do not allow this call."""


class NotFound(DecideError, LookupError):
    """The thing asked for does not exist, e.g. an unknown rules version."""


class FailedPrecondition(DecideError):
    """The system is not in the state the call requires, e.g. ``expected_version`` is
    no longer the active version: re-read, merge, and try again."""


class Unavailable(DecideError):
    """The server could not be reached or did not answer in time. Retryable."""

    retryable = True


class InternalError(DecideError):
    """The server failed, or answered something the client cannot read."""


_STATUS_TO_ERROR: dict[grpc.StatusCode, type[DecideError]] = {
    grpc.StatusCode.OK: InternalError,  # an RpcError with OK is itself a bug
    grpc.StatusCode.CANCELLED: Unavailable,
    grpc.StatusCode.UNKNOWN: InternalError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.DEADLINE_EXCEEDED: Unavailable,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: FailedPrecondition,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.RESOURCE_EXHAUSTED: Unavailable,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.ABORTED: FailedPrecondition,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgument,
    grpc.StatusCode.UNIMPLEMENTED: InternalError,
    grpc.StatusCode.INTERNAL: InternalError,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DATA_LOSS: InternalError,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
}
"""Every ``grpc.StatusCode`` and the exception it becomes (a test checks it is total)."""


def map_rpc_error(error: grpc.RpcError) -> DecideError:
    """The client exception for a failed call; raise it ``from`` ``error``.

    Works for both ``grpc.RpcError`` calls and ``grpc.aio.AioRpcError``.
    """
    code = _call_attr(error, "code")
    details = _call_attr(error, "details")
    if not isinstance(code, grpc.StatusCode):
        code = grpc.StatusCode.UNKNOWN
    if not isinstance(details, str) or not details:
        details = code.name
    cls = _STATUS_TO_ERROR.get(code, InternalError)
    if cls is InvalidArgument:
        violations, info = _status_details(error)
        if info.get("reason") == _BATCH_REJECTED:
            return BatchRejected(
                details,
                code,
                violations,
                batch=_int(info.get("batch")),
                accepted=_int(info.get("accepted")),
                duplicates=_int(info.get("duplicates")),
            )
        return InvalidArgument(details, code, violations=violations)
    return cls(details, code)


_BATCH_REJECTED = "BATCH_REJECTED"
"""``google.rpc.ErrorInfo.reason`` of a TrackStream batch rejection."""


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


def _call_attr(error: grpc.RpcError, name: str) -> object:
    # A bare grpc.RpcError (raised by some channel failures) is not a grpc.Call.
    method = getattr(error, name, None)
    return method() if callable(method) else None


def _status_details(error: grpc.RpcError) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """``(field, description)`` pairs from a ``google.rpc.BadRequest`` in the trailers,
    and the reason and metadata of a ``google.rpc.ErrorInfo`` (empty without one).

    Read by hand rather than with ``grpc_status.rpc_status.from_call``, which raises when
    the rich status and the call disagree; a malformed detail yields nothing.
    """
    trailers = _call_attr(error, "trailing_metadata") or ()
    violations: list[tuple[str, str]] = []
    info: dict[str, str] = {}
    for key, value in trailers:  # type: ignore[attr-defined]
        if key != _STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        try:
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad_request = error_details_pb2.BadRequest()
                    detail.Unpack(bad_request)
                    violations += [(v.field, v.description) for v in bad_request.field_violations]
                elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    error_info = error_details_pb2.ErrorInfo()
                    detail.Unpack(error_info)
                    info = {**error_info.metadata, "reason": error_info.reason}
        except DecodeError:
            return [], {}
    return violations, info
